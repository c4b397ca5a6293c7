#!/bin/sh
# make-picture.sh - boot Labyrinth once, keep the serial log, draw one PNG per lmm-map block,
# and check that each picture shows exactly the serial map the kernel printed.
#
# usage: sh tests/picture/make-picture.sh --iso ISO --tool MMPICTURE --out DIR
#            [--timeout S] [--cmdline 'mode=demo ... mm_map=0']
#
# The check compares the tool's --text rows (the cells it drew) with the kernel's plain
# map rows (mm_map=0) in the same log; with colour on, only the pictures are made.

set -u
prog=make-picture
die() {
	echo "$prog: $*" >&2
	exit 1
}

iso="" tool="" out="" timeout_s=120 cmdline="mode=demo stress_seconds=2 mm_map=0"
while [ $# -gt 0 ]; do
	case $1 in
	--iso) iso=$2; shift 2 ;;
	--tool) tool=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--cmdline) cmdline=$2; shift 2 ;;
	*) die "unknown argument '$1'" ;;
	esac
done
[ -n "$iso" ] && [ -n "$tool" ] && [ -n "$out" ] || die "--iso, --tool and --out are required"

mkdir -p "$out" || exit 1
log=$out/serial.log
echo "$prog: booting $iso with '$cmdline' (serial log: $log)"
if ! sh tests/qemu/qemu-boot.sh --iso "$iso" --mem 256M --smp 1 --timeout "$timeout_s" \
	--cmdline "$cmdline" >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	die "the boot failed; no pictures drawn"
fi
for label in boot after-stress; do
	grep -q "^--- lmm-map v1 begin $label ---" "$log" || die "no '$label' block in $log"
done
rm -f "$out"/memory-*.png
"$tool" "$out/serial.log" "$out" || die "$tool could not draw $log"

case " $cmdline " in
*" mm_map=0 "*)
	for label in boot after-stress; do
		sh tests/picture/compare-maps.sh "$tool" "$log" "$label" "$out" >&2 ||
			die "memory-$label.png does not show the serial map of the same block"
		echo "$prog: memory-$label.png shows the serial map ($(wc -l <"$out/kernel-$label.txt") rows), cell for cell"
	done
	;;
esac

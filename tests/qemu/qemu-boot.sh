#!/bin/sh
# qemu-boot.sh - boot the Labyrinth ISO in QEMU, headless, serial console on stdout.
#
# usage: sh tests/qemu/qemu-boot.sh --iso build/labyrinth.iso [--mem 256M] [--smp 1]
#            [--timeout SECONDS] [--cmdline 'key=value ...'] [--module FILE]...
#            [--gdb build/labyrinth.elf] [--raw-status] [--iso-only] [-- QEMU ARGS...]
#
#   --cmdline, --module  boot a variant ISO whose grub.cfg appends the command line to
#                        the `multiboot2 /boot/labyrinth.elf` line and adds one
#                        `module2 /boot/modules/NAME NAME` line per module; variants are
#                        cached as build/iso-variants/<hash>.iso (hash of the base ISO,
#                        the command line, the modules and this script).
#   --timeout S          kill QEMU after S seconds (0 = never); default 120.
#   --gdb ELF            start halted with a gdb stub on :1234 (-s -S), no timeout, and
#                        print the gdb command to attach.
#   --raw-status         exit with QEMU's own status (124 = timeout), print no verdict;
#                        for test runners that judge the status themselves.
#   --iso-only           only build (or find) the ISO to boot and print its path.
#
# Exit status: 0 only when the kernel wrote the success code to isa-debug-exit (QEMU
# status 33).  Anything else is a failure, explained in one line on stderr: 35 is the
# kernel's own failure code, 0 a reset or triple fault (-no-reboot turns them into a
# clean QEMU exit), 124 a timeout.  Environment: QEMU (the binary to run).

set -u

prog="qemu-boot"
die() {
	echo "$prog: $*" >&2
	exit 2
}

iso="" mem="256M" smp="1" timeout_s="120" cmdline="" gdb_elf="" raw=0 iso_only=0
modules="" # newline-separated paths

while [ $# -gt 0 ]; do
	case $1 in
	--iso) [ $# -ge 2 ] || die "--iso needs a value"; iso=$2; shift 2 ;;
	--mem) [ $# -ge 2 ] || die "--mem needs a value"; mem=$2; shift 2 ;;
	--smp) [ $# -ge 2 ] || die "--smp needs a value"; smp=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "--timeout needs a value"; timeout_s=$2; shift 2 ;;
	--cmdline) [ $# -ge 2 ] || die "--cmdline needs a value"; cmdline=$2; shift 2 ;;
	--module)
		[ $# -ge 2 ] || die "--module needs a file"
		[ -f "$2" ] || die "module '$2' is not a file"
		modules="${modules}$2
"
		shift 2
		;;
	--gdb) [ $# -ge 2 ] || die "--gdb needs the kernel ELF"; gdb_elf=$2; shift 2 ;;
	--raw-status) raw=1; shift ;;
	--iso-only) iso_only=1; shift ;;
	--) shift; break ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (QEMU arguments go after --)" ;;
	esac
done
# "$@" is now the extra QEMU arguments.

[ -n "$iso" ] || die "--iso is required"
[ -f "$iso" ] || die "no ISO at '$iso' (run make first)"
case $timeout_s in '' | *[!0-9]*) die "--timeout must be a number of seconds" ;; esac
case $smp in '' | *[!0-9]*) die "--smp must be a number" ;; esac

# GRUB's config language gives meaning to quotes, $, ;, {}, |, & and backslashes: keep
# command lines and module names to characters that pass through it unchanged.
safe_words() {
	case $1 in *[!A-Za-z0-9_=.,:/+@%\ -]*) return 1 ;; esac
	return 0
}
safe_words "$cmdline" || die "command line '$cmdline' has characters GRUB would interpret \
(allowed: letters, digits, space and _=.,:/+@%-)"

# ---- The ISO to boot: the base one, or a cached variant ------------------------------

boot_iso=$iso
if [ -n "$cmdline" ] || [ -n "$modules" ]; then
	base_dir=$(dirname "$iso")
	isodir=$base_dir/isodir
	vdir=$base_dir/iso-variants
	[ -f "$isodir/boot/grub/grub.cfg" ] || die "no $isodir/boot/grub/grub.cfg (run make first)"
	mkdir -p "$vdir" || die "cannot create $vdir"
	# Variants of an older base ISO can never be used again.
	find "$vdir" -maxdepth 1 -name '*.iso' ! -newer "$iso" -exec rm -f {} + 2>/dev/null

	hash=$(
		{
			printf 'cmdline=%s\n' "$cmdline"
			sha256sum <"$iso"
			sha256sum <"$0"
			printf '%s' "$modules" | while IFS= read -r m; do
				printf 'module=%s\n' "$(basename "$m")"
				sha256sum <"$m"
			done
		} | sha256sum | cut -c1-16
	)
	boot_iso=$vdir/$hash.iso
	if [ ! -f "$boot_iso" ]; then
		tmp=$(mktemp -d "$vdir/tmp.XXXXXX") || die "mktemp failed"
		trap 'rm -rf "$tmp"' EXIT
		cp -R "$isodir" "$tmp/root" || die "cannot copy $isodir"
		names=""
		if [ -n "$modules" ]; then
			mkdir -p "$tmp/root/boot/modules"
			names=$(printf '%s' "$modules" | while IFS= read -r m; do
				n=$(basename "$m")
				safe_words "$n" && [ "${n#* }" = "$n" ] || {
					echo "$prog: module name '$n' has characters GRUB would interpret" >&2
					exit 1
				}
				cp "$m" "$tmp/root/boot/modules/$n" || exit 1
				echo "$n"
			done) || exit 2
		fi
		awk -v extra="$cmdline" -v mods="$names" '
			/^[ \t]*multiboot2[ \t]+\/boot\/labyrinth\.elf[ \t]*$/ {
				sub(/[ \t]*$/, "")
				if (extra != "")
					$0 = $0 " " extra
				print
				n = split(mods, m, "\n")
				for (i = 1; i <= n; i++)
					if (m[i] != "")
						print "\tmodule2 /boot/modules/" m[i] " " m[i]
				found = 1
				next
			}
			{ print }
			END { if (!found) exit 3 }
		' "$isodir/boot/grub/grub.cfg" >"$tmp/root/boot/grub/grub.cfg" ||
			die "no plain 'multiboot2 /boot/labyrinth.elf' line in boot/grub/grub.cfg to extend"
		if ! grub-mkrescue -o "$tmp/out.iso" "$tmp/root" >"$tmp/mkrescue.log" 2>&1; then
			cat "$tmp/mkrescue.log" >&2
			die "grub-mkrescue failed for the variant ISO"
		fi
		mv -f "$tmp/out.iso" "$boot_iso" || die "cannot store $boot_iso"
		rm -rf "$tmp"
		trap - EXIT
	fi
fi

if [ "$iso_only" = 1 ]; then
	echo "$boot_iso"
	exit 0
fi

# ---- Run QEMU --------------------------------------------------------------------------

qemu=${QEMU:-qemu-system-x86_64}
# TCG always: the nested /dev/kvm on the CI machines is far slower than TCG.  One host
# thread per vCPU (thread=multi), so -smp N really runs N CPUs at once; it must be in
# the same -accel option, or QEMU ignores it.
set -- "$qemu" -accel tcg,thread=multi -cdrom "$boot_iso" -m "$mem" -smp "$smp" -serial stdio \
	-display none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 "$@"

if [ -n "$gdb_elf" ]; then
	echo "$prog: QEMU is halted at reset with a gdb stub on localhost:1234. Attach with:" >&2
	echo "    gdb $gdb_elf -ex 'target remote :1234'" >&2
	"$@" -s -S
	status=$?
elif [ "$timeout_s" -gt 0 ]; then
	# --foreground: QEMU stays in the terminal's process group, so it can own the tty
	# under `make run` and Ctrl-C reaches it; it is still killed at the deadline.
	timeout --foreground -k 10 "$timeout_s" "$@"
	status=$?
else
	"$@"
	status=$?
fi

[ "$raw" = 1 ] && exit "$status"

case $status in
33) exit 0 ;;
35) echo "$prog: the kernel reported a failure (isa-debug-exit 0x11, QEMU status 35)" >&2 ;;
0) echo "$prog: QEMU exited with status 0: the guest reset or triple-faulted" \
	"(-no-reboot) without writing the success code; this is a failure" >&2 ;;
124 | 137) echo "$prog: timed out after $timeout_s s (QEMU killed)" >&2 ;;
1) echo "$prog: QEMU failed (status 1): bad arguments or a QEMU error," \
	"or the guest wrote 0 to isa-debug-exit" >&2 ;;
*)
	if [ "$status" -lt 128 ] && [ $((status % 2)) = 1 ]; then
		echo "$prog: the guest wrote $(((status - 1) / 2)) to isa-debug-exit" \
			"(QEMU status $status); only 0x10 (status 33) is success" >&2
	else
		echo "$prog: QEMU exited with status $status" >&2
	fi
	;;
esac
[ "$status" = 0 ] && exit 1
exit "$status"

#!/bin/sh
# run-cross.sh [VARIANT...] - the same mm/ sources and host test suite on several hosts,
# one "PASS host-VARIANT: ..." / "FAIL host-VARIANT: why" line each (make test runs it).
#
# Variants (tests/cross/cross.mk): gcc-O0 gcc-O2 clang-O0 clang-O2 (x86-64), gcc-m32
# (i386: 32-bit pointers, 64-bit physical addresses), aarch64, riscv64 and big-endian
# s390x (Debian's cross compilers, run under qemu-user), and kernel: mm/ built with the
# kernel's freestanding flags as build/libmm/libmm.a and linked into the Labyrinth kernel in place of its own
# mm/ objects.  Every tests/host/test_mm_*.c present now and both example ports of
# tests/embed/ (embed-example, embed-teach) are built and run for each variant; the inner
# PASS/FAIL lines are kept in build/cross/VARIANT/log (shown, indented, on failure).  For
# aarch64, riscv64 and s390x, a freestanding libmm.a also goes through tests/embed/isolation.sh's
# symbol check with that target's nm (mm/README.md section 1 gives the table).
#
# Knobs: BUILD (build), CROSS_TIMEOUT (seconds per test program, 240).

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
CROSS_TIMEOUT=${CROSS_TIMEOUT:-240}
variants=${*:-gcc-O0 gcc-O2 clang-O0 clang-O2 gcc-m32 aarch64 riscv64 s390x kernel}
cross=$BUILD/cross
mkdir -p "$cross" || exit 1
failed=0
ran=""
start_all=$(date +%s)

fail() {
	echo "FAIL host-$1: $2"
	failed=1
}

# The compilers and qemu-user: installed here when possible (as make does for its other
# tools), otherwise ensure-tools names the apt-get command and the variants fail with it.
if ! tools_msg=$(sh tests/scripts/ensure-tools.sh cross 2>&1); then
	echo "$tools_msg" | sed 's/^/    /'
	tools_why=$(echo "$tools_msg" | tail -n 1)
else
	tools_why=""
fi

# Build every variant at once (-k: a broken one does not stop the others; -j2 keeps both
# cores busy across variants), then ask make which variants are complete.
build_all() {
	targets=""
	for v in $variants; do
		case $v in kernel) targets="$targets kernel libmm $BUILD/libmm/labyrinth-libmm.elf" ;;
		*) targets="$targets cross-build-$v" ;;
		esac
	done
	# shellcheck disable=SC2086 # a list of targets
	make -k -j2 BUILD="$BUILD" $targets >"$cross/build.log" 2>&1
}

# built VARIANT TARGET...: make them again, for this variant alone: nothing to do when the
# build above succeeded, and the variant's own errors when it did not (then a FAIL line).
built() {
	v=$1
	shift
	mkdir -p "$cross/$v"
	if ! make BUILD="$BUILD" "$@" >"$cross/$v/build.log" 2>&1; then
		why=$(grep -m1 -E 'error:|\*\*\*|undefined reference' "$cross/$v/build.log")
		fail "$v" "build failed: ${why:-see $cross/$v/build.log}"
		return 1
	fi
}

run_variant() {
	v=$1
	case $v in
	aarch64 | riscv64 | s390x)
		runner="qemu-$v -L /usr/$v-linux-gnu"
		# qemu-user's own page tables would pay for a 65 GiB MAP_NORESERVE arena:
		# map only the windows that hold RAM (tests/host/port_host.h).
		arena_max=0x40000000
		;;
	*)
		runner=""
		arena_max=""
		;;
	esac
	log=$cross/$v/log
	rm -rf "$cross/$v/out"
	mkdir -p "$cross/$v/out"
	: >"$log"
	programs=0
	cases=0
	first_fail=""
	for src in tests/host/test_mm_*.c embed-example embed-teach; do
		name=$(basename "$src" .c)
		bin=$cross/$v/$name
		programs=$((programs + 1))
		if [ ! -x "$bin" ]; then
			first_fail=${first_fail:-"$name: not built"}
			continue
		fi
		out=$cross/$v/out/$name
		t0=$(date +%s)
		# shellcheck disable=SC2086 # $runner is a command prefix, empty for native runs
		# OPS: test_mm_model's operations; the native host suite runs its million, and
		# a fifth of them under qemu-user keeps each program well inside CROSS_TIMEOUT.
		OPS=${CROSS_MODEL_OPS:-200000} LMM_HOST_ARENA_MAX=$arena_max timeout -k 10 "$CROSS_TIMEOUT" $runner "$bin" >"$out" 2>&1
		rc=$?
		echo "== $bin: exit $rc, $(($(date +%s) - t0)) s" >>"$log"
		cat "$out" >>"$log"
		cases=$((cases + $(grep -c '^PASS ' "$out")))
		if [ "$rc" != 0 ] || grep -q '^FAIL ' "$out"; then
			why=$(grep -m1 '^FAIL ' "$out" | cut -c6-)
			case $rc in
			124 | 137) why=${why:-"timed out after $CROSS_TIMEOUT s"} ;;
			esac
			first_fail=${first_fail:-"$name: ${why:-exit $rc}"}
		fi
	done
	# The freestanding library's symbols, with this target's nm (not a case of out/:
	# only these hosts have it).
	libmm_note=""
	if [ -f "$cross/$v/libmm.a" ]; then
		iso=$(NM=$v-linux-gnu-nm sh tests/embed/isolation.sh "$cross/$v/libmm.a" 2>&1)
		echo "$iso" >>"$log"
		if echo "$iso" | grep -q '^PASS libmm-symbols: '; then
			libmm_note="; freestanding libmm.a $(echo "$iso" | sed -n 's/^PASS libmm-symbols: [^ ]* //p')"
		else
			first_fail=${first_fail:-"libmm.a: $(echo "$iso" | grep -m1 '^FAIL ' | cut -c6-)"}
		fi
	fi
	grep -h -E '^(PASS|FAIL) ' "$cross/$v"/out/* 2>/dev/null | sed -E 's/^(PASS|FAIL) //; s/:.*//' |
		sort -u >"$cross/$v/cases"
	ran="$ran $v"
	if [ -n "$first_fail" ]; then
		sed 's/^/    /' "$log"
		fail "$v" "$first_fail"
	else
		echo "PASS host-$v: $programs programs, $cases cases$libmm_note"
	fi
}

# mm/ in the Labyrinth kernel: the kernel builds it with its freestanding flags, and the
# kernel also links against build/libmm/libmm.a (make libmm) instead of its own objects.
run_kernel() {
	built kernel kernel libmm "$BUILD/libmm/labyrinth-libmm.elf" || return
	elf=$BUILD/libmm/labyrinth-libmm.elf
	missing=""
	for sym in lmm_begin lmm_init lmm_alloc_pages lmm_free_pages; do
		nm "$BUILD/labyrinth.elf" | grep -q " T $sym\$" || continue # not used by the kernel
		nm "$elf" | grep -q " T $sym\$" || missing="$missing $sym"
	done
	if [ -n "$missing" ]; then
		fail kernel "$elf lacks$missing, which $BUILD/labyrinth.elf has"
		return
	fi
	n=$(nm "$elf" | grep -c ' T lmm_')
	echo "PASS host-kernel: mm/ built with the kernel's flags; libmm.a links into the kernel ELF ($n lmm_ functions)"
}

s=$(date +%s)
build_all
echo "    (build: $(($(date +%s) - s)) s)"
for v in $variants; do
	s=$(date +%s)
	case $v in
	kernel) run_kernel ;;
	gcc-O0 | gcc-O2 | clang-O0 | clang-O2 | gcc-m32 | aarch64 | riscv64 | s390x)
		case $v in
		clang-*) have=$(command -v clang) ;;
		gcc-m32) have=$(ls /usr/lib/gcc/x86_64-linux-gnu/*/32/libgcc.a 2>/dev/null) ;;
		aarch64 | riscv64 | s390x) have=$(command -v "$v-linux-gnu-gcc" && command -v "qemu-$v") ;;
		*) have=yes ;;
		esac
		if [ -z "$have" ]; then
			fail "$v" "compiler or emulator missing: ${tools_why:-see tests/scripts/ensure-tools.sh}"
			continue
		fi
		built "$v" "cross-build-$v" && run_variant "$v"
		;;
	*) fail "$v" "unknown variant (gcc-O0 gcc-O2 clang-O0 clang-O2 gcc-m32 aarch64 riscv64 s390x kernel)" ;;
	esac
	echo "    ($v: $(($(date +%s) - s)) s)"
done
# A case that one host runs and another does not is reported, never silently absent.
if [ -n "$ran" ]; then
	# shellcheck disable=SC2086 # a list of variants
	all=$(for v in $ran; do cat "$cross/$v/cases"; done | sort -u)
	for v in $ran; do
		echo "$all" | comm -23 - "$cross/$v/cases" | while read -r c; do
			[ -n "$c" ] && echo "SKIP host-$v/$c: run on another host, not by this host's test programs"
		done
	done
fi
echo "    (cross suite: $(($(date +%s) - start_all)) s)"
exit "$failed"

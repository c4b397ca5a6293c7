#!/bin/sh
# run-embed.sh - mm/ as a drop-in library, one PASS/FAIL line per check (make test runs it):
#
#   libmm-build       make libmm: mm/ alone, for the kernel's target, freestanding
#   libmm-includes    } tests/embed/isolation.sh: what mm/ includes, what libmm.a needs
#   libmm-symbols     }
#   guide-*           every C block of mm/README.md, extracted as printed, compiled with
#                     the kernel's flags, then run on Linux with tests/embed/guide_shim.c
#   embed-*           tests/embed/example_*.c: a port written from the guide alone, through
#                     every public entry point; embed-example-inline: the same with its
#                     hooks on the common path static inline (LMM_PORT_INLINE_HEADER)
#   teach-*           tests/embed/teach_*.c: a teaching kernel's port (push_off/pop_off locks,
#                     three harts as threads, a timer signal on each, panicking kfree)
#
# Builds go through make (tests/embed/embed.mk); a build that fails is a FAIL line.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
failed=0

# build NAME TARGET...: make them quietly; on failure a FAIL line with the first error.
build() {
	name=$1
	shift
	log=$BUILD/embed/$name.build.log
	mkdir -p "$BUILD/embed"
	if make BUILD="$BUILD" "$@" >"$log" 2>&1; then
		return 0
	fi
	sed 's/^/    /' "$log" | tail -n 20
	echo "FAIL $name: build failed: $(grep -m1 -E 'error:|\*\*\*|undefined reference' "$log")"
	failed=1
	return 1
}

# run NAME PROGRAM: run it; its own PASS/FAIL lines stand; a crash becomes a FAIL line.
run() {
	out=$BUILD/embed/$1.out
	timeout -k 5 60 "$2" >"$out" 2>&1
	rc=$?
	cat "$out"
	if [ "$rc" != 0 ]; then
		failed=1
		grep -q '^FAIL ' "$out" || echo "FAIL $1: $2 exited with status $rc"
	fi
}

if build libmm-build libmm; then
	echo "PASS libmm-build: $BUILD/libmm/libmm.a ($(find "$BUILD/libmm/obj" -name '*.o' | wc -l) objects, kernel flags, freestanding)"
	sh tests/embed/isolation.sh "$BUILD/libmm/libmm.a" || failed=1
fi
build guide-example "$BUILD/embed/guide-example" && run guide-example "$BUILD/embed/guide-example"
build guide-smp-example "$BUILD/embed/guide-smp-example" && run guide-smp-example "$BUILD/embed/guide-smp-example"
build embed-example "$BUILD/embed/example" && run embed-example "$BUILD/embed/example"
if build embed-example-inline "$BUILD/embed/example-inline"; then
	run embed-example-inline "$BUILD/embed/example-inline"
	# Inline for real: of the twelve hooks, only the five that stay functions are linked.
	linked=$(nm "$BUILD/embed/example-inline" | awk '$2 == "T" && $3 ~ /^lmm_port_/ { print $3 }' | sort | tr '\n' ' ')
	want="lmm_port_fatal lmm_port_lock_init lmm_port_log lmm_port_phys_to_virt lmm_port_report "
	if [ "$linked" = "$want" ]; then
		echo "PASS embed-inline-hooks: only the five other hooks are functions ($linked)"
	else
		echo "FAIL embed-inline-hooks: linked hooks are '$linked', want '$want'"
		failed=1
	fi
fi
build embed-teach "$BUILD/embed/teach" && run embed-teach "$BUILD/embed/teach"
exit "$failed"

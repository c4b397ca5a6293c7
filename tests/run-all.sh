#!/bin/sh
# run-all.sh - every test suite, one after the other, and one verdict at the end.
#
# usage: sh tests/run-all.sh [SUITE...]      (make test builds everything, then runs this)
#
# Each suite prints "PASS name" / "FAIL name: reason" lines (other lines are commentary).
# A suite command that exits non-zero without printing any FAIL line, or that prints no
# PASS line at all, gets a FAIL line added for it, so a crash never passes quietly.  The last line is exactly "N passed, M failed";
# the exit status is 1 if M > 0 or N == 0.
#
# Adding a suite: one `suite NAME COMMAND...` line in suites() below.  The command runs
# from the top of the tree with its output streamed.

set -u
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
HOST_TEST_TIMEOUT=${HOST_TEST_TIMEOUT:-900}

suites() {
	suite host sh tests/run-all.sh --host-binaries
	suite picture sh tests/picture/run-tests.sh
	suite fuzz-replay sh tests/fuzz/run-fuzz.sh replay
	suite coverage sh tests/coverage/gate.sh
	suite boot sh tests/qemu/boot-tests.sh
	suite embed sh tests/embed/run-embed.sh
	suite cross sh tests/cross/run-cross.sh
}

# --host-binaries: run the test program of every tests/host/test_*.c (built with the
# sanitizers by tests/host/host.mk into $BUILD/host), and test_mm_atomic's ThreadSanitizer
# build, streaming the output.  The list comes from the sources, so a program whose source
# is gone never runs stale and a program that was not built fails.  A non-zero exit
# without a FAIL line (a sanitizer report, a crash, a timeout), or a program that printed
# no PASS line at all, becomes "FAIL <program>: reason".
if [ "${1:-}" = "--host-binaries" ]; then
	failed=0
	progs=""
	for src in tests/host/test_*.c; do
		progs="$progs $(basename "$src" .c)"
	done
	[ -n "$progs" ] || { echo "FAIL host-tests: no tests/host/test_*.c"; exit 1; }
	for prog in $progs test_mm_atomic_tsan; do
		bin=$BUILD/host/$prog
		if [ ! -x "$bin" ]; then
			echo "FAIL $bin: not built (run make host-tests-build)"
			failed=1
			continue
		fi
		out=$(mktemp) || exit 1
		echo "== $bin"
		{
			timeout -k 10 "$HOST_TEST_TIMEOUT" "$bin" 2>&1
			echo $? >"$out.rc"
		} | tee "$out"
		rc=$(cat "$out.rc")
		if [ "$rc" != 0 ]; then
			failed=1
			if ! grep -q '^FAIL ' "$out"; then
				case $rc in
				124 | 137) echo "FAIL $bin: timed out after $HOST_TEST_TIMEOUT s" ;;
				*) echo "FAIL $bin: exit $rc" ;;
				esac
			fi
		elif ! grep -q '^PASS ' "$out"; then
			echo "FAIL $bin: exit 0 without a PASS line"
			failed=1
		fi
		rm -f "$out" "$out.rc"
	done
	exit "$failed"
fi

all=$(mktemp) || exit 1
trap 'rm -f "$all" "$all.suite" "$all.rc"' EXIT

# suite NAME COMMAND...: run it (if selected), streaming and recording its output.
suite() {
	name=$1
	shift
	if [ -n "$wanted" ]; then
		case " $wanted " in *" $name "*) ;; *) return 0 ;; esac
	fi
	ran="$ran $name"
	echo "==== $name: $*"
	start=$(date +%s)
	{
		"$@" 2>&1
		echo $? >"$all.rc"
	} | tee "$all.suite"
	rc=$(cat "$all.rc")
	if [ "$rc" != 0 ] && ! grep -q '^FAIL ' "$all.suite"; then
		echo "FAIL $name: exit $rc without a FAIL line" | tee -a "$all.suite"
	elif ! grep -q '^PASS ' "$all.suite"; then
		echo "FAIL $name: no PASS line" | tee -a "$all.suite"
	fi
	cat "$all.suite" >>"$all"
	echo "==== $name: $(($(date +%s) - start)) s"
}

wanted="$*"
ran=""
suites
for w in $wanted; do
	case " $ran " in *" $w "*) ;; *) echo "FAIL run-all: no suite named '$w'" | tee -a "$all" ;; esac
done
passed=$(grep -c '^PASS ' "$all")
failed=$(grep -c '^FAIL ' "$all")
if [ "$failed" -gt 0 ]; then
	echo
	echo "Failures:"
	grep '^FAIL ' "$all"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

#!/bin/sh
# gate.sh - run the coverage build of the host mm tests, report mm/'s coverage per file,
# and hold it to the gates.
#
#   LINE_MIN=100 BRANCH_MIN=95 sh tests/coverage/gate.sh      (the defaults)
#
# Prints the gcovr tables (per file: lines, branches, and the missing line numbers, so
# the gap can be closed file by file), then
#   PASS coverage-tests                 or FAIL coverage-tests: <binary> exit N
#   PASS coverage-lines: 100.0% >= 100% or FAIL coverage-lines: mm/x.c 97.1% < 100%
#   PASS coverage-branches: ...         or FAIL coverage-branches: mm/x.c 80.2% < 95%
# A file below a gate gets its own FAIL line.  The gcov data is cleared first, so the
# figures are those of this run only.  Full reports: $BUILD/coverage/{lines,branches}.txt.

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
LINE_MIN=${LINE_MIN:-100}
BRANCH_MIN=${BRANCH_MIN:-95}
TIMEOUT=${COVERAGE_TEST_TIMEOUT:-300}
dir=$BUILD/coverage
failed=0

# One coverage program per tests/host/test_mm_*.c (tests/coverage/coverage.mk): the list
# comes from the sources, so a stale program never runs and a missing one fails.
bins=""
for src in tests/host/test_mm_*.c; do
	bins="$bins $dir/$(basename "$src" .c)"
done
for b in $bins; do
	if [ ! -x "$b" ]; then
		echo "FAIL coverage: $b not built (run make coverage-build)"
		exit 1
	fi
done
if ! command -v gcovr >/dev/null 2>&1; then
	echo "FAIL coverage: gcovr not installed (sh tests/scripts/ensure-tools.sh coverage)"
	exit 1
fi

find "$dir" -name '*.gcda' -delete
# The tests' own PASS lines belong to the host suite; here only whether they all ran.
tests_ok=1
nbins=0
for b in $bins; do
	nbins=$((nbins + 1))
	log=$dir/$(basename "$b").log
	timeout -k 10 "$TIMEOUT" "$b" >"$log" 2>&1
	rc=$?
	if [ "$rc" != 0 ]; then
		echo "FAIL coverage-tests: $b exit $rc (log: $log)"
	elif ! grep -q '^PASS ' "$log"; then
		echo "FAIL coverage-tests: $b printed no PASS line (log: $log)"
	else
		continue
	fi
	tests_ok=0
	failed=1
done
[ "$tests_ok" = 1 ] && echo "PASS coverage-tests: $nbins programs"

# gcovr --txt lists, per file, the lines (or with --branches, the branches' lines)
# not covered.  Only mm/ is measured: the tests and the port are scaffolding.
#
# Not counted, each because no input can reach it in a correct mm/ (a test could only
# reach it by corrupting the code itself, which is the mutation gate's business):
#   - the failing side of LMM_ASSERT_LOCKED in each *_locked function (debug assertion:
#     every caller holds the lock; test_mm_unit's locked_function_asserts_lock proves the
#     assertion fires, once);
#   - alloc.c gfp_class()'s NOWAIT and KERNEL arms: only reserve frames are counted, and
#     only LMM_GFPB_RESERVE callers ever receive one (what reserve_to[KERNEL] == 0 checks);
#   - alloc.c alloc_refusal()'s final "return LMM_ERR_BAD_CONTEXT;": it is called only when
#     one of the three reasons above it holds;
#   - walk.c kind_of()'s "case LMM_FRAME_TAIL": callers resolve tails to heads first.
# Each pattern matches exactly those lines in mm/ today (one tab: not pool.c's return).
EXCL_LINES='^\treturn LMM_ERR_BAD_CONTEXT;$|^\s*: LMM_CLASS_KERNEL;$|^\s*: \(gfp & LMM_GFPB_NOWAIT\) \? LMM_CLASS_NOWAIT$|^\tcase LMM_FRAME_TAIL: break; /\* callers resolve'
EXCL_BRANCHES='.*LMM_ASSERT_LOCKED\('
common="--root . --filter mm/ --object-directory $dir"
# shellcheck disable=SC2086 # $common is a word list
gcovr $common --exclude-lines-by-pattern "$EXCL_LINES" --exclude-branches-by-pattern "$EXCL_BRANCHES" \
	--txt "$dir/lines.txt" --json-summary "$dir/summary.json" >/dev/null 2>"$dir/gcovr.log" &&
	gcovr $common --exclude-lines-by-pattern "$EXCL_LINES" --exclude-branches-by-pattern "$EXCL_BRANCHES" \
		--branches --txt "$dir/branches.txt" >/dev/null 2>>"$dir/gcovr.log"
if [ $? != 0 ] || [ ! -s "$dir/summary.json" ]; then
	echo "FAIL coverage: gcovr failed:"
	cat "$dir/gcovr.log"
	exit 1
fi
echo "-- line coverage of mm/ (Missing: uncovered lines)"
cat "$dir/lines.txt"
echo "-- branch coverage of mm/ (Missing: lines with an untaken branch)"
cat "$dir/branches.txt"

# One line per file: name, line %, branch %; then the totals.  json-summary carries the
# exact counts, so the percentages here are recomputed, not re-parsed from the tables.
# Every mm/*.c must be in the summary: a file no test program reached is not 100% covered.
# shellcheck disable=SC2046 # one argument per source file
python3 - "$dir/summary.json" "$LINE_MIN" "$BRANCH_MIN" $(ls mm/*.c) <<'PY' || failed=1
import json, sys
summary, line_min, branch_min = json.load(open(sys.argv[1])), float(sys.argv[2]), float(sys.argv[3])
expected = set(sys.argv[4:])

def pct(covered, total):
    # Floored to one decimal, so 99.96% prints (and gates) as 99.9%, never as 100.0%.
    return int(1000.0 * covered / total) / 10 if total else 100.0

bad = {"lines": [], "branches": []}
print("-- per file: lines, branches")
for f in sorted(summary["files"], key=lambda f: f["filename"]):
    lp = pct(f["line_covered"], f["line_total"])
    bp = pct(f["branch_covered"], f["branch_total"])
    print("%-14s lines %5.1f%% (%d/%d)  branches %5.1f%% (%d/%d)" % (
        f["filename"], lp, f["line_covered"], f["line_total"], bp, f["branch_covered"], f["branch_total"]))
    if lp < line_min:
        bad["lines"].append("%s %.1f%% < %g%%" % (f["filename"], lp, line_min))
    if bp < branch_min:
        bad["branches"].append("%s %.1f%% < %g%%" % (f["filename"], bp, branch_min))
measured = set(f["filename"] for f in summary["files"])
for missing in sorted(expected - measured):
    bad["lines"].append("%s not measured (no test program reached it)" % missing)
    bad["branches"].append("%s not measured (no test program reached it)" % missing)
tl = pct(summary["line_covered"], summary["line_total"])
tb = pct(summary["branch_covered"], summary["branch_total"])
print("mm/ total      lines %5.1f%%  branches %5.1f%%" % (tl, tb))
failed = False
for kind, gate, total in (("lines", line_min, tl), ("branches", branch_min, tb)):
    if bad[kind]:
        for b in bad[kind]:
            print("FAIL coverage-%s: %s" % (kind, b))
        failed = True
    else:
        print("PASS coverage-%s: every file >= %g%% (mm/ total %.1f%%)" % (kind, gate, total))
sys.exit(1 if failed else 0)
PY
exit "$failed"

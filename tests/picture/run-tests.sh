#!/bin/sh
# run-tests.sh - host tests of mmpicture (built with ASan/UBSan by make picture-tool):
# one "PASS picture-NAME" / "FAIL picture-NAME: why" line per case in tests/picture/cases/.
#
#   NAME.log + NAME.expect  a malformed log: mmpicture must exit 1, write no picture, and
#                           print exactly one line, "mmpicture: LOG:" then NAME.expect
#                           (so a sanitizer report or a crash fails the case)
#   NAME.log + NAME.cells   a good log: exit 0, nothing on stderr, one PNG per block, and
#                           the cells it draws (--text) exactly NAME.cells
#   real-boot.log           a real kernel log (mm_map=0): the pictures' cells are the
#                           kernel's own serial map, row for row, for every block

set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
tool=$BUILD/picture/mmpicture
# Every run has a time limit: a loop in the tool fails its case instead of hanging the suite.
TIMEOUT=${PICTURE_TIMEOUT:-60}
run_tool() { timeout -k 5 "$TIMEOUT" "$tool" "$@"; }
cases=tests/picture/cases
if [ ! -x "$tool" ]; then
	echo "FAIL picture-tool: $tool not built (make picture-tool)"
	exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0

pass() { echo "PASS picture-$1"; }
fail() {
	echo "FAIL picture-$1: $2"
	failed=1
}

# A PNG: the signature, then IHDR; ends with an IEND chunk.
is_png() {
	[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
		[ "$(tail -c 12 "$1" | head -c 8 | tail -c 4)" = IEND ]
}

for log in "$cases"/*.log; do
	name=$(basename "$log" .log)
	rm -rf "$tmp/out" && mkdir "$tmp/out"
	if [ -f "$cases/$name.expect" ]; then
		run_tool "$log" "$tmp/out" >"$tmp/stdout" 2>"$tmp/stderr"
		rc=$?
		want="mmpicture: $log:$(cat "$cases/$name.expect")"
		case $(head -c 1 "$cases/$name.expect") in [0-9]) ;; *) want="mmpicture: $log: $(cat "$cases/$name.expect")" ;; esac
		if [ "$rc" != 1 ]; then
			fail "$name" "exit $rc, expected 1 ($(head -n 1 "$tmp/stderr"))"
		elif [ "$(cat "$tmp/stderr")" != "$want" ]; then
			fail "$name" "stderr '$(head -n 3 "$tmp/stderr")', expected '$want'"
		elif [ -n "$(ls "$tmp/out")" ]; then
			fail "$name" "wrote $(ls "$tmp/out") despite the error"
		else
			pass "$name"
		fi
		continue
	fi
	run_tool "$log" "$tmp/out" >"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	blocks=$(grep -c '^--- lmm-map v1 begin ' "$log")
	pngs=$(ls "$tmp/out" | grep -c '^memory-.*\.png$')
	bad=""
	for p in "$tmp"/out/*.png; do [ -f "$p" ] && ! is_png "$p" && bad="$bad $(basename "$p")"; done
	if [ "$rc" != 0 ] || [ -s "$tmp/stderr" ]; then
		fail "$name" "exit $rc: $(head -n 3 "$tmp/stderr")"
	elif [ "$pngs" != "$blocks" ]; then
		fail "$name" "$pngs PNGs for $blocks blocks"
	elif [ -n "$bad" ]; then
		fail "$name" "not a complete PNG:$bad"
	elif [ -f "$cases/$name.cells" ]; then
		if run_tool --text "$log" >"$tmp/cells" 2>&1 && cmp -s "$tmp/cells" "$cases/$name.cells"; then
			pass "$name"
		else
			fail "$name" "cells differ from $name.cells: $(diff "$cases/$name.cells" "$tmp/cells" | head -n 3 | tr '\n' ' ')"
		fi
	else
		why=""
		for label in $(sed -n 's/^--- lmm-map v1 begin \(.*\) ---$/\1/p' "$log"); do
			sh tests/picture/compare-maps.sh "$tool" "$log" "$label" "$tmp" >"$tmp/diff" ||
				why="$why block '$label' differs from the kernel's map: $(head -n 2 "$tmp/diff" | tr '\n' ' ')"
		done
		if [ -n "$why" ]; then fail "$name" "$why"; else pass "$name"; fi
	fi
done
exit "$failed"

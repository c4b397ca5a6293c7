#!/bin/sh
# find-kills.sh - refresh the kills-<mutant> inputs of the fuzz_mm corpus.
#
# usage: make mutants; sh tests/fuzz/find-kills.sh      (BUILD=build, FUZZ_CC=clang)
#   KILL_FUZZ_SECONDS=20   fuzzing time per mutant that no committed input kills
#   KILL_MUTANTS="a b"     only these mutants
#
# For every mutant that make mutants prepared ($BUILD/mutants/<name>/mm), build fuzz_mm
# against it and replay the committed corpus (the kills-* inputs first); the first input
# that fails (its own kills-<name> first) becomes tests/fuzz/corpus/fuzz_mm/kills-<name>.  When none does, fuzz the
# mutant for KILL_FUZZ_SECONDS and keep the crash it finds, if the unmodified fuzz_mm
# ($BUILD/fuzz/fuzz_mm) passes it.  kills-* files naming no current mutant are removed.
# Prints one line per mutant: "kills <name>: <input>" or "none <name>".

set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
FUZZ_CC=${FUZZ_CC:-clang}
SECS=${KILL_FUZZ_SECONDS:-20}
SAN="-std=gnu11 -Iinclude -Itests/host -g -O1 -pthread -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CORPUS=tests/fuzz/corpus/fuzz_mm
OUT=$BUILD/fuzz-kills
REF=$BUILD/fuzz/fuzz_mm
[ -x "$REF" ] || { echo "find-kills: $REF not built (make fuzz-build)"; exit 1; }
mkdir -p "$OUT" || exit 1
# shellcheck disable=SC2086
$FUZZ_CC $SAN -c -o "$OUT/model.o" tests/host/model.c && $FUZZ_CC $SAN -c -o "$OUT/port_host.o" tests/host/port_host.c || exit 1

names=$(sed -n 's/^name: //p' tests/mutants/mutants.txt)
for k in "$CORPUS"/kills-*; do
	n=${k#"$CORPUS"/kills-}
	echo "$names" | grep -qx "$n" || { rm -f "$k"; echo "removed stale $k"; }
done

# KILL_MUTANTS="a b": only these.
for name in ${KILL_MUTANTS:-$names}; do
	src=$BUILD/mutants/$name/mm
	[ -d "$src" ] || { echo "none $name (not prepared: run make mutants)"; continue; }
	bin=$OUT/$name
	# shellcheck disable=SC2086
	if ! $FUZZ_CC $SAN -fsanitize=fuzzer -o "$bin" tests/fuzz/fuzz_mm.c "$src"/*.c "$OUT/model.o" \
		"$OUT/port_host.o" -lrt >"$OUT/$name.build.log" 2>&1; then
		echo "none $name (fuzz_mm does not build against it)"
		continue
	fi
	found=""
	# Its own input first (kept when it still kills), then the others.
	own=""
	[ -f "$CORPUS/kills-$name" ] && own=$CORPUS/kills-$name
	for f in $own $(ls "$CORPUS"/kills-* 2>/dev/null) $(ls "$CORPUS" | grep -v '^kills-' | sed "s|^|$CORPUS/|"); do
		if ! timeout -k 5 60 "$bin" "$f" >/dev/null 2>&1; then
			found=$f
			break
		fi
	done
	if [ -z "$found" ]; then
		art=$OUT/$name.art/
		rm -rf "$art" && mkdir -p "$art" "$OUT/$name.corpus"
		timeout -k 10 $((SECS + 30)) "$bin" -max_total_time="$SECS" -artifact_prefix="$art" \
			"$OUT/$name.corpus" "$CORPUS" >"$OUT/$name.fuzz.log" 2>&1
		crash=$(ls "$art" 2>/dev/null | head -1)
		if [ -n "$crash" ] && timeout -k 5 60 "$REF" "$art$crash" >/dev/null 2>&1; then
			found=$art$crash
		fi
	fi
	if [ -n "$found" ]; then
		[ "$found" = "$CORPUS/kills-$name" ] || cp "$found" "$CORPUS/kills-$name"
		echo "kills $name: $(basename "$found")"
	else
		echo "none $name"
	fi
done

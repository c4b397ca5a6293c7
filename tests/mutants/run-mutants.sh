#!/bin/sh
# run-mutants.sh - the mutation gate: every mutant of mm/ must make the host tests fail.
#
# usage: sh tests/mutants/run-mutants.sh        (make mutants sets the variables below)
#   MUTANTS=a,b        run only these entries of tests/mutants/mutants.txt
#   MUT_CFLAGS=...     compile flags (make passes host.mk's, sanitizers included)
#   HOSTCC=gcc, BUILD=build, MUTANT_TIMEOUT=120 (seconds per test program)
#   MUTANTS_LIST=file  another list (default tests/mutants/mutants.txt)
#   TSAN_CC=clang, MUT_TSAN_CFLAGS=...  the ThreadSanitizer build of test_mm_atomic
#                      (make passes host.mk's), run against each mutant the ASan
#                      tests miss: an ordering mutant (a release or acquire dropped)
#                      is visible only there; a kill there is "by test_mm_atomic_tsan"
#   CROSS_CC_S390X=s390x-linux-gnu-gcc, MUT_CROSS_CFLAGS=...  the big-endian build
#                      (make passes tests/cross/cross.mk's) for entries with
#                      "host: s390x": the byte-order branches of mm/ run on no
#                      little-endian host, so such a mutant is built with the cross
#                      compiler and run under qemu-s390x (no TSan there)
#   MUTANTS_FUZZ=1     also replay the committed fuzz_mm corpus (tests/fuzz/corpus/fuzz_mm)
#                      against each mutant the host tests miss, built with clang and
#                      FUZZ_CC/FUZZ_FLAGS/FUZZ_SAN (make passes tests/fuzz/fuzz.mk's);
#                      a kill there is reported as "by fuzz-replay".  Off by default:
#                      the gate is the host tier.
#
# For each mutant: copy mm/ to $BUILD/mutants/<name>/mm, apply the literal edit (its
# original text must occur exactly once, else the entry is "stale" and the run fails),
# compile the copy, link it with the host mm tests (compiled once), and run them,
# fastest first, stopping at the first that fails: "killed <name> by <test>".  A mutant
# no test notices is "SURVIVED <name>".  Before any mutant, the unmodified copy must
# pass, or every kill would be meaningless.  Ends with exactly
#   mutants: N killed, M survived
# then the survivors by name; exits 1 if any survived or was stale.

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
HOSTCC=${HOSTCC:-gcc}
MUTANT_TIMEOUT=${MUTANT_TIMEOUT:-120}
MUT_CFLAGS=${MUT_CFLAGS:--std=gnu11 -Iinclude -Itests/host -pthread -Wall -Wextra -Werror -O1 -g \
-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer}
LIST=${MUTANTS_LIST:-tests/mutants/mutants.txt}
OUT=$BUILD/mutants
# Fastest first: most mutants die in the unit tests, in well under a second.
TESTS="test_mm_unit test_mm_gates test_mm_layouts test_mm_walk test_mm_model test_mm_atomic"
TSAN_CC=${TSAN_CC:-clang}
MUT_TSAN_CFLAGS=${MUT_TSAN_CFLAGS:--std=gnu11 -Iinclude -Itests/host -pthread -Wall -Wextra -Werror -O1 -g \
-DLMM_PORT_MAX_CPUS=16 -fsanitize=thread -fno-omit-frame-pointer}

CROSS_CC_S390X=${CROSS_CC_S390X:-s390x-linux-gnu-gcc}
MUT_CROSS_CFLAGS=${MUT_CROSS_CFLAGS:--std=gnu11 -Iinclude -Itests/host -pthread -Wall -Wextra -Werror \
-DLMM_PORT_MAX_CPUS=16 -O2 -g -fsanitize=undefined -fsanitize-undefined-trap-on-error}
mkdir -p "$OUT/common" || exit 1

# Apply the selected entries: one directory per mutant holding its mm/ copy, and a
# line "name<TAB>ok<TAB>host<TAB>promise" or "name<TAB>stale: why" per entry on stdout.
# Python for exact literal matching.
prepare() {
	python3 - "$LIST" "$OUT" "${MUTANTS:-}" <<'PY'
import os, shutil, sys
path, out, wanted = sys.argv[1], sys.argv[2], [w for w in sys.argv[3].split(",") if w]
entries, cur = [], {}
for raw in open(path).read().split("\n") + [""]:
    if raw.startswith("#"):
        continue
    if not raw.strip():
        if cur:
            entries.append(cur)
        cur = {}
        continue
    key, sep, value = raw.partition(": ")
    if not sep:
        key, value = raw.rstrip(":"), ""
    cur[key.strip()] = value

def unescape(s):
    return s.replace("\\n", "\n").replace("\\t", "\t")

names = [e.get("name", "?") for e in entries]
for w in wanted:
    if w not in names:
        print("%s\tstale: no such mutant in %s" % (w, path))
seen = set()
for e in entries:
    name = e.get("name", "")
    if wanted and name not in wanted:
        continue
    missing = [k for k in ("name", "promise", "file", "kill", "original", "replacement") if k not in e]
    host = e.get("host", "native")
    if host not in ("native", "s390x"):
        print("%s\tstale: host %s is neither native nor s390x" % (name, host))
        continue
    if missing or name in seen:
        print("%s\tstale: %s" % (name or "?", "missing " + ", ".join(missing) if missing else "duplicate name"))
        continue
    seen.add(name)
    src = e["file"]
    if not src.startswith("mm/") or not os.path.isfile(src):
        print("%s\tstale: %s is not a file under mm/" % (name, src))
        continue
    text = open(src).read()
    orig, repl = unescape(e["original"]), unescape(e["replacement"])
    n = text.count(orig)
    if n != 1:
        print("%s\tstale: original text occurs %d times in %s" % (name, n, src))
        continue
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree("mm", os.path.join(d, "mm"))
    open(os.path.join(d, src), "w").write(text.replace(orig, repl))
    print("%s\tok\t%s\t%s" % (name, host, e["promise"]))
PY
}

# build DIR [s390x]: compile DIR/mm/*.c and link every test against it into DIR/ (for
# s390x: build_s390x()).
build() {
	if [ "${2:-native}" = s390x ]; then
		build_s390x "$1"
		return
	fi
	for c in "$1"/mm/*.c; do
		# shellcheck disable=SC2086 # flag lists
		$HOSTCC $MUT_CFLAGS -c -o "${c%.c}.o" "$c" || return 1
	done
	for t in $TESTS; do
		# shellcheck disable=SC2086
		$HOSTCC $MUT_CFLAGS -o "$1/$t" "$OUT/common/$t.o" "$1"/mm/*.o "$OUT/common/port_host.o" "$OUT/common/model.o" -lrt || return 1
	done
}

# build_s390x DIR: everything from DIR, the host tests too: they include mm/internal.h by a
# path relative to their source ("../../mm/internal.h"), so copies of them beside DIR/mm
# inline the mutant's header, as the cross suite would build it.
build_s390x() {
	mkdir -p "$1/s390x" "$1/tests" && rm -rf "$1/tests/host" && cp -r tests/host "$1/tests/host" || return 1
	for c in "$1"/mm/*.c "$1"/tests/host/port_host.c "$1"/tests/host/model.c; do
		o=$1/s390x/$(basename "${c%.c}").o
		# shellcheck disable=SC2086 # flag lists
		$CROSS_CC_S390X $MUT_CROSS_CFLAGS -c -o "$o" "$c" || return 1
	done
	for t in $TESTS; do
		# shellcheck disable=SC2086
		$CROSS_CC_S390X $MUT_CROSS_CFLAGS -o "$1/$t" "$1/tests/host/$t.c" "$1"/s390x/*.o -lrt || return 1
	done
}

# fuzz_replay DIR: build fuzz_mm against DIR/mm and replay the committed corpus;
# prints "fuzz-replay (...)" if an input fails.
fuzz_replay() {
	# shellcheck disable=SC2086
	$FUZZ_CC $FUZZ_FLAGS -o "$1/fuzz_mm" tests/fuzz/fuzz_mm.c "$1"/mm/*.c "$OUT/common/fz_model.o" \
		"$OUT/common/fz_port_host.o" -lrt >"$1/fuzz-build.log" 2>&1 || { echo "fuzz-replay (does not build)"; return; }
	if ! find tests/fuzz/corpus/fuzz_mm -type f | sort | xargs timeout -k 5 "$MUTANT_TIMEOUT" "$1/fuzz_mm" \
		>"$1/fuzz.log" 2>&1; then
		why=$(grep -m1 -E '^fuzz_mm: |^SUMMARY: ' "$1/fuzz.log" | cut -c1-150)
		echo "fuzz-replay (${why:-exit})"
	fi
}

# tsan DIR: build test_mm_atomic under ThreadSanitizer against DIR/mm and run it through
# the launcher (tests/host/test_mm_atomic.c, LMM_TSAN_LAUNCHER); prints
# "test_mm_atomic_tsan (...)" if it fails.  Only for mutants the ASan tests miss: it
# takes half a minute.
tsan() {
	mkdir -p "$1/tsan" && cp "$OUT/common/test_mm_atomic_tsan" "$1/" || return
	# shellcheck disable=SC2086
	if ! $TSAN_CC $MUT_TSAN_CFLAGS -o "$1/tsan/test_mm_atomic" tests/host/test_mm_atomic.c "$1"/mm/*.c \
		tests/host/port_host.c -lrt >"$1/tsan-build.log" 2>&1; then
		echo "test_mm_atomic_tsan (does not build)"
		return
	fi
	timeout -k 5 "$MUTANT_TIMEOUT" "$1/test_mm_atomic_tsan" >"$1/tsan.log" 2>&1
	rc=$?
	[ "$rc" != 0 ] && failed test_mm_atomic_tsan "$1/tsan.log" "$rc"
}

# failed TEST LOG RC: "TEST (why)", why the first FAIL line, sanitizer summary or fatal
# error in LOG, else the timeout or the exit status.  A hang or a sanitizer report is a
# kill too; this says which it was.
failed() {
	why=$(grep -m1 -E '^FAIL |^SUMMARY: |^lmm fatal' "$2" | cut -c1-150)
	case $3 in 124 | 137) why=${why:-timed out after $MUTANT_TIMEOUT s} ;; esac
	echo "$1 (${why:-exit $3})"
}

# run DIR [s390x]: the first test that fails, or nothing if all pass.  Under qemu-user
# as tests/cross/run-cross.sh runs them: RAM windows only, a fifth of the model's ops.
run() {
	for t in $TESTS; do
		if [ "${2:-native}" = s390x ]; then
			OPS=200000 LMM_HOST_ARENA_MAX=0x40000000 timeout -k 5 "$MUTANT_TIMEOUT" \
				qemu-s390x -L /usr/s390x-linux-gnu "$1/$t" >"$1/$t.log" 2>&1
		else
			timeout -k 5 "$MUTANT_TIMEOUT" "$1/$t" >"$1/$t.log" 2>&1
		fi
		rc=$?
		if [ "$rc" != 0 ]; then
			label=$t
			[ "${2:-native}" = s390x ] && label="$t on s390x"
			failed "$label" "$1/$t.log" "$rc"
			return
		fi
	done
	[ "${2:-native}" = s390x ] && return
	killer=$(tsan "$1")
	if [ -n "$killer" ]; then
		echo "$killer"
		return
	fi
	[ "${MUTANTS_FUZZ:-0}" = 1 ] && [ "$1" != "$OUT/baseline" ] && fuzz_replay "$1"
}

# The tests and the port do not change between mutants: compile them once.
for t in $TESTS; do
	# shellcheck disable=SC2086
	$HOSTCC $MUT_CFLAGS -c -o "$OUT/common/$t.o" "tests/host/$t.c" || exit 1
done
# shellcheck disable=SC2086
$HOSTCC $MUT_CFLAGS -c -o "$OUT/common/port_host.o" tests/host/port_host.c || exit 1
# shellcheck disable=SC2086
$HOSTCC $MUT_CFLAGS -c -o "$OUT/common/model.o" tests/host/model.c || exit 1
# The TSan launcher, no sanitizer: it finds the build to run in tsan/ beside itself.
# shellcheck disable=SC2086
$HOSTCC $MUT_CFLAGS -fno-sanitize=all -DLMM_TSAN_LAUNCHER -o "$OUT/common/test_mm_atomic_tsan" \
	tests/host/test_mm_atomic.c || exit 1

if [ "${MUTANTS_FUZZ:-0}" = 1 ]; then
	FUZZ_CC=${FUZZ_CC:-clang}
	FUZZ_SAN=${FUZZ_SAN:-$MUT_CFLAGS}
	FUZZ_FLAGS=${FUZZ_FLAGS:-$FUZZ_SAN -fsanitize=fuzzer}
	for f in model port_host; do
		# shellcheck disable=SC2086
		$FUZZ_CC $FUZZ_SAN -c -o "$OUT/common/fz_$f.o" "tests/host/$f.c" || exit 1
	done
fi

rm -rf "$OUT/baseline" && mkdir -p "$OUT/baseline" && cp -r mm "$OUT/baseline/mm"
if ! build "$OUT/baseline"; then
	echo "FAIL mutants: the unmodified mm/ does not build with these flags"
	exit 1
fi
killer=$(run "$OUT/baseline")
if [ -n "$killer" ]; then
	echo "FAIL mutants: the unmodified mm/ fails $killer; fix that first"
	exit 1
fi
plan=$(prepare) || exit 1
tab=$(printf '\t')
# The big-endian baseline too, when an entry selected runs there.
if echo "$plan" | grep -q "${tab}ok${tab}s390x${tab}"; then
	if ! command -v "$CROSS_CC_S390X" >/dev/null 2>&1 || ! command -v qemu-s390x >/dev/null 2>&1; then
		echo "FAIL mutants: $CROSS_CC_S390X or qemu-s390x missing: sh tests/scripts/ensure-tools.sh cross"
		exit 1
	fi
	rm -rf "$OUT/baseline-s390x" && mkdir -p "$OUT/baseline-s390x" && cp -r mm "$OUT/baseline-s390x/mm"
	if ! build "$OUT/baseline-s390x" s390x; then
		echo "FAIL mutants: the unmodified mm/ does not build for s390x"
		exit 1
	fi
	killer=$(run "$OUT/baseline-s390x" s390x)
	if [ -n "$killer" ]; then
		echo "FAIL mutants: the unmodified mm/ fails $killer; fix that first"
		exit 1
	fi
fi

killed=0
survived=0
stale=0
survivors=""
while IFS="$tab" read -r name status host promise; do
	[ -n "$name" ] || continue
	case $status in
	ok) ;;
	*)
		echo "FAIL mutant $name: stale mutant: ${status#stale: }"
		stale=$((stale + 1))
		continue
		;;
	esac
	start=$(date +%s)
	if ! build "$OUT/$name" "$host" >"$OUT/$name/build.log" 2>&1; then
		# A mutant that does not compile tests nothing: that is a broken entry, not a kill.
		echo "FAIL mutant $name: does not build (see $OUT/$name/build.log)"
		stale=$((stale + 1))
		continue
	fi
	killer=$(run "$OUT/$name" "$host")
	if [ -n "$killer" ]; then
		killed=$((killed + 1))
		echo "killed $name by $killer [$(($(date +%s) - start)) s]"
	else
		survived=$((survived + 1))
		survivors="$survivors $name"
		echo "SURVIVED $name: $promise [$(($(date +%s) - start)) s]"
	fi
done <<EOF_PLAN
$plan
EOF_PLAN

[ "$stale" -gt 0 ] && echo "FAIL mutants: $stale stale or broken entries in $LIST"
echo "mutants: $killed killed, $survived survived"
for s in $survivors; do
	echo "survivor: $s"
done
[ "$survived" -eq 0 ] && [ "$stale" -eq 0 ] && [ "$killed" -gt 0 ]

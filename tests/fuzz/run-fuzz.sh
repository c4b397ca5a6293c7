#!/bin/sh
# run-fuzz.sh MODE - drive the libFuzzer targets built by tests/fuzz/fuzz.mk.
#
#   replay  run each target once over its committed corpus, tests/fuzz/corpus/<target>/
#           (make test): "PASS fuzz-replay-<target>: N inputs" or FAIL with the input
#   fuzz    fuzz each target for its share of FUZZ_SECONDS (make fuzz), growing
#           build/fuzz/corpus/<target>/ from the committed seeds; crashes are kept in
#           build/fuzz/artifacts/<target>/ and named in the FAIL line
#   seeds   rebuild the committed corpus: a short run (SEED_SECONDS, default 30),
#           then -merge=1 into an empty directory, which keeps only inputs that add
#           coverage, then at most SEEDS_MAX (default 40) of them, the largest (they
#           reach deepest): the corpus is replayed by every make test and lives in git,
#           so it stays small.  Files named kills-<mutant> are kept as they are: each is
#           an input that made fuzz_mm fail on that mutant of tests/mutants/mutants.txt
#           (and passes on mm/), so the replay kills the mutant without fuzzing
#
# Reproduce a crash: build/fuzz/<target> build/fuzz/artifacts/<target>/crash-...

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-180}
SEEDS_MAX=${SEEDS_MAX:-40}
SEED_SECONDS=${SEED_SECONDS:-30}
TARGETS="fuzz_mm fuzz_multiboot2 fuzz_cmdline"
mode=${1:-replay}
failed=0

# Extra libFuzzer options per target.
opts_for() {
	case $1 in
	fuzz_cmdline) echo "-dict=tests/fuzz/cmdline.dict" ;;
	*) echo "" ;;
	esac
}

# fuzz_mm gets half of the time (the model makes it the slowest and the deepest),
# the parsers a quarter each.
seconds_for() {
	case $1 in
	fuzz_mm) echo $((FUZZ_SECONDS / 2 > 0 ? FUZZ_SECONDS / 2 : 1)) ;;
	*) echo $((FUZZ_SECONDS / 4 > 0 ? FUZZ_SECONDS / 4 : 1)) ;;
	esac
}

for t in $TARGETS; do
	bin=$BUILD/fuzz/$t
	seeds=tests/fuzz/corpus/$t
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz-$mode-$t: $bin not built (make fuzz-build)"
		failed=1
		continue
	fi
	log=$(mktemp) || exit 1
	case $mode in
	replay)
		n=$(find "$seeds" -type f 2>/dev/null | wc -l)
		if [ "$n" -eq 0 ]; then
			echo "FAIL fuzz-replay-$t: no committed corpus in $seeds"
			failed=1
		# Files, not the directory: libFuzzer then runs each exactly once, in order,
		# and names the one that fails.
		elif find "$seeds" -type f | sort | xargs timeout -k 5 120 "$bin" >"$log" 2>&1; then
			echo "PASS fuzz-replay-$t: $n inputs"
		else
			bad=$(grep '^Running: ' "$log" | tail -1 | sed 's/^Running: //')
			echo "FAIL fuzz-replay-$t: ${bad:-$bin} (log follows)"
			tail -40 "$log"
			failed=1
		fi
		;;
	fuzz)
		s=$(seconds_for "$t")
		corpus=$BUILD/fuzz/corpus/$t
		art=$BUILD/fuzz/artifacts/$t
		mkdir -p "$corpus" "$art"
		# shellcheck disable=SC2046 # opts_for prints zero or more words
		if timeout -k 10 $((s + 60)) "$bin" -max_total_time="$s" -print_final_stats=1 \
			-artifact_prefix="$art/" $(opts_for "$t") "$corpus" "$seeds" >"$log" 2>&1; then
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
			rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
			echo "PASS fuzz-$t: ${runs:-?} executions in $s s (${rate:-?}/s), corpus $(find "$corpus" -type f | wc -l) inputs"
		else
			crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
			echo "FAIL fuzz-$t: ${crash:-see log} (reproduce: $bin ${crash:-<input>})"
			grep -E '^(fuzz_|model: |==[0-9]+==|    #[0-9]|SUMMARY)' "$log" | head -40
			failed=1
		fi
		;;
	seeds)
		tmp=$(mktemp -d) || exit 1
		# shellcheck disable=SC2046
		timeout -k 10 $((SEED_SECONDS + 60)) "$bin" -max_total_time="$SEED_SECONDS" -max_len=256 $(opts_for "$t") "$tmp" "$seeds" \
			>"$log" 2>&1
		rm -rf "$seeds.new" && mkdir -p "$seeds.new"
		if "$bin" -merge=1 "$seeds.new" "$tmp" "$seeds" >>"$log" 2>&1; then
			# ls -S: largest first; names are libFuzzer's hashes (no spaces).
			# shellcheck disable=SC2012
			ls -S "$seeds.new" | tail -n +$((SEEDS_MAX + 1)) | while read -r f; do
				rm -f "$seeds.new/$f"
			done
			for k in "$seeds"/kills-*; do
				[ -f "$k" ] && cp "$k" "$seeds.new/"
			done
			rm -rf "$seeds" && mv "$seeds.new" "$seeds"
			echo "PASS fuzz-seeds-$t: $(find "$seeds" -type f | wc -l) inputs in $seeds"
		else
			echo "FAIL fuzz-seeds-$t: merge failed"
			tail -20 "$log"
			failed=1
		fi
		rm -rf "$tmp" "$seeds.new"
		;;
	*)
		echo "usage: sh tests/fuzz/run-fuzz.sh replay|fuzz|seeds" >&2
		exit 2
		;;
	esac
	rm -f "$log"
done
exit "$failed"

#!/bin/sh
# bench-ir.sh OUTDIR BIN... - run each callgrind build of the mm/ benchmark under
# callgrind and print instructions per operation (make bench-ir).
#
# The binary dumps one profile per measured region, named "workload|allocator|phase|ops";
# collection is off outside the regions.  This script totals each dump, sums the
# inclusive cost and call count of every function called inside it, prints the table
# and writes OUTDIR/bench-ir.csv.  Profiles stay in OUTDIR/ir/BIN/ for callgrind_annotate.
# Then it runs the host-port build natively for the timed 2-thread figure (--mt-only) and
# prints one "TARGET <name> <value> <goal> met|missed" line per target of issue 10, the
# instruction targets judged on the first binary (bench-ir-minimal: the minimal port),
# with the profile of the mm/ region behind every miss.

set -eu

if [ $# -lt 2 ]; then
	echo "usage: sh tests/bench/bench-ir.sh OUTDIR BIN..." >&2
	exit 2
fi
out=$1
shift
command -v valgrind >/dev/null 2>&1 || {
	echo "bench-ir: valgrind is missing: sh tests/scripts/ensure-tools.sh bench" >&2
	exit 1
}

# One dump -> "R label total" and "C label callee calls inclusive" lines (tab-separated).
# fn= and cfn= share one name-compression table: "(id) name" defines, "(id)" refers.
parse_dump() {
	awk '
	function fname(s,   id, rest) {
		match(s, /\([0-9]+\)/)
		if (RSTART == 0)
			return s
		id = substr(s, RSTART + 1, RLENGTH - 2)
		rest = substr(s, RSTART + RLENGTH)
		sub(/^ /, "", rest)
		if (rest != "")
			names[id] = rest
		return names[id]
	}
	BEGIN { OFS = "\t"; want = 0 }
	want { calls[callee] += ncalls; incl[callee] += $2; want = 0; next }
	/^desc: Trigger: Client Request: / { label = substr($0, 32); next }
	/^totals: / { total = $2; next }
	/^fn=/ { fname(substr($0, 4)); next }
	/^cfn=/ { callee = fname(substr($0, 5)); next }
	/^calls=/ { split(substr($0, 7), a, " "); ncalls = a[1]; want = 1; next }
	END {
		print "R", label, total
		for (c in calls)
			print "C", label, c, calls[c], incl[c]
	}' "$1"
}

mkdir -p "$out"
# Two runs in one build tree would delete each other's profiles: one at a time.
lock=$out/ir.lock
if ! mkdir "$lock" 2>/dev/null; then
	echo "bench-ir: another make bench-ir is using $out (if none is, remove $lock)" >&2
	exit 1
fi
trap 'rmdir "$lock" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
csv=$out/bench-ir.csv
figures=$out/figures.tsv
: >"$figures"

# The buddy code, by source lines, so that it is found even when inlined: every function of
# mm/ named *buddy_*_locked or lmm_list_{add,del}_locked, as "path first last name" lines.
buddy_ranges() {
	for f in mm/*.c mm/*.h; do
		awk -v path="$f" '
		!inside && /^[A-Za-z].*(buddy_[a-z_]*_locked|lmm_list_(add|del)_locked)\(/ && !/;[ \t]*$/ {
			inside = 1; start = FNR
			match($0, /[a-z_]*(buddy_[a-z_]*_locked|lmm_list_(add|del)_locked)\(/)
			name = substr($0, RSTART, RLENGTH - 1)
		}
		inside && /^}/ { print path, start, FNR, name; inside = 0 }' "$f"
	done
}

# Instructions a dump executed on the lines of those functions (self cost, per line).
buddy_ir() {
	callgrind_annotate --threshold=100 --inclusive=no --auto=yes --context=10000000 "$1" 2>/dev/null |
		awk -v ranges="$2" '
		BEGIN { n = split(ranges, r, "\n") }
		/^-- Auto-annotated source: / { file = substr($0, 27); line = -3; next }
		file == "" { next }
		/^-----/ && line > 0 { file = ""; next }
		{
			if (line < 0) { line++; next }
			if ($0 ~ /^ *[0-9,]+ (\([ 0-9.]+%\) +)?=> /) next
			line++
			cost = $1; gsub(/,/, "", cost)
			if (cost !~ /^[0-9]+$/) next
			for (i = 1; i <= n; i++) {
				split(r[i], x, " ")
				tail = substr(file, length(file) - length(x[1]))
				if ((file == x[1] || tail == "/" x[1]) && line >= x[2] && line <= x[3])
					total += cost
			}
		}
		END { print total + 0 }'
}
ranges=$(buddy_ranges)
echo "build,workload,allocator,phase,ops,instructions,ir_per_op,ratio_vs_freelist_tas,port_ir_per_op,alloc_calls,alloc_ir_per_call,free_calls,free_ir_per_call" >"$csv"

for bin in "$@"; do
	name=$(basename "$bin")
	dir=$out/ir/$name
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "== $name under valgrind --tool=callgrind (profiles in $dir)"
	if ! valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$dir/callgrind.out" \
		"$bin" --ir >"$dir/stdout" 2>"$dir/valgrind.log"; then
		cat "$dir/stdout" "$dir/valgrind.log" >&2
		echo "bench-ir: $name failed under callgrind" >&2
		exit 1
	fi
	i=1
	: >"$dir/regions.tsv"
	while [ -f "$dir/callgrind.out.$i" ]; do
		if grep -q '^desc: Trigger: Client Request: set-up, discarded' "$dir/callgrind.out.$i"; then
			rm -f "$dir/callgrind.out.$i"
		else
			parse_dump "$dir/callgrind.out.$i" >>"$dir/regions.tsv"
		fi
		i=$((i + 1))
	done
	if ! grep -q '^R' "$dir/regions.tsv"; then
		echo "bench-ir: no measured region in $dir: callgrind dumps missing" >&2
		exit 1
	fi
	grep -v '^mm/ benchmark' "$dir/stdout" | sed 's/^/  /'

	# W5 must never run buddy code; W1 cold must (else the line attribution is broken).
	w5_dump=$(grep -l '^desc: Trigger: Client Request: W5[^|]*|mm/' "$dir"/callgrind.out.* | head -n 1)
	w1c_dump=$(grep -l '^desc: Trigger: Client Request: W1 cold[^|]*|mm/' "$dir"/callgrind.out.* | head -n 1)
	w5_buddy=$(buddy_ir "$w5_dump" "$ranges")
	w1c_buddy=$(buddy_ir "$w1c_dump" "$ranges")
	buddy_names=$(echo "$ranges" | awk '{ printf "%s%s", sep, $4; sep = ", " }')

	build=$(sed -n 's/^mm\/ benchmark: \([^ ]*\) build.*/\1/p' "$dir/stdout")
	# Line-by-line profiles of every mm/ region, for whoever tunes mm/.
	for f in "$dir"/callgrind.out.*; do
		i=${f##*.}
		if grep -q '^desc: Trigger: Client Request: [^|]*|mm/' "$dir/callgrind.out.$i"; then
			callgrind_annotate --threshold=100 --inclusive=yes --auto=yes --context=1 \
				"$f" >"$dir/annotate.$i.txt" 2>/dev/null || true
		fi
	done

	status=0
	awk -F '\t' -v build="$build" -v csv="$csv" -v w5_buddy="$w5_buddy" -v w1c_buddy="$w1c_buddy" \
		-v buddy_names="$buddy_names" -v bin="$name" -v figures="$figures" '
	function fns(alloc, which) {
		if (alloc == "freelist") return "bench_freelist_" which
		if (alloc == "freelist+tas") return "bench_freelist_" which "_tas"
		if (alloc == "freelist+portlock") return "bench_freelist_" which "_irqsave"
		if (alloc == "checked list+tas") return "bench_checked_" which
		if (alloc == "mm/ atomic-excl") return "bench_lmm_atomic_" which
		return "bench_lmm_" which
	}
	function per(a, b) { return b > 0 ? a / b : 0 }
	function target(ok, text) {
		printf "  %-6s %s\n", ok ? "MET" : "MISSED", text
		if (!ok) missed++
	}
	function need(wl, al, ph) {
		if (!((wl, al, ph) in value)) {
			printf "bench-ir: no figure for %s / %s / %s\n", wl, al, ph > "/dev/stderr"
			bad = 1
		}
	}
	FNR == NR {
		# What the binary printed: W3 failures, W4 metadata sizes.
		if ($0 ~ /^W3 [0-9]+% [a-z]+: [0-9]+ fragmentation failures/) {
			split($0, w, " ")
			w3[w[2] " " substr(w[3], 1, length(w[3]) - 1)] = w[4] + 0
		}
		if ($0 ~ /^W4 [0-9a-z]+: [0-9]+ frames, /) {
			split($0, w, " ")
			if (w[5] + 0 > maxmeta) maxmeta = w[5] + 0
		}
		next
	}
	$1 == "R" { order[++n] = $2; total[$2] = $3 }
	$1 == "C" {
		calls[$2 SUBSEP $3] = $4; incl[$2 SUBSEP $3] = $5
		if ($3 ~ /^lmm_port_/) port[$2] += $5
	}
	END {
		printf "\n  %-24s %-17s %-14s %8s %9s %8s %13s %13s\n", "workload", "allocator", "phase",
		       "Ir/op", "vs locked", "port/op", "Ir/alloc call", "Ir/free call"
		for (i = 1; i <= n; i++) {
			split(order[i], f, "|")
			wl = f[1]; al = f[2]; ph = f[3]; ops = f[4]
			irop = per(total[order[i]], ops)
			value[wl, al, ph] = irop
			portop = per(port[order[i]], ops)
			portv[wl, al, ph] = portop
			ratio = ""
			for (j = 1; j <= n; j++) {
				split(order[j], g, "|")
				if (g[1] == wl && g[2] == "freelist+tas" && g[3] == ph && g[4] > 0 && al != "freelist+tas" && wl !~ /^W3|^W4/)
					ratio = sprintf("%.2fx", irop / per(total[order[j]], g[4]))
			}
			ac = calls[order[i], fns(al, "alloc")] + 0; ai = incl[order[i], fns(al, "alloc")] + 0
			fc = calls[order[i], fns(al, "free")] + 0; fi = incl[order[i], fns(al, "free")] + 0
			if (wl ~ /^W4/) { ac = 0; fc = 0 }
			if (wl != last && i > 1)
				print ""
			printf "  %-24s %-17s %-14s %8.1f %9s %8s %13s %13s\n", wl == last ? "" : wl, al, ph, irop, ratio,
			       (portop > 0 ? sprintf("%.1f", portop) : ""), ac ? sprintf("%.1f", ai / ac) : "",
			       fc ? sprintf("%.1f", fi / fc) : ""
			last = wl
			printf "%s,%s,%s,%s,%d,%d,%.2f,%s,%.2f,%d,%.2f,%d,%.2f\n", build, wl, al, ph, ops, total[order[i]],
			       irop, ratio, portop, ac, per(ai, ac), fc, per(fi, fc) >> csv
			printf "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%s\n", bin, wl, al, ph, irop, portop, build >> figures
			if (wl ~ /^W5/ && al == "mm/ atomic-excl") w5 = order[i]
			if (wl ~ /^W1 cold/ && al == "mm/") w1c = order[i]
		}
		print "\n  Instruction counts repeat exactly from run to run (fixed seeds, no timing in the"
		print "  workloads): they are the figures to compare over time.  Ir/op counts everything in"
		print "  the measured loop (call overhead included); Ir/alloc call and Ir/free call are the"
		print "  inclusive cost of one call to the allocator (wrapper, mm/ and port hooks); port/op"
		print "  is the part spent in the port hooks (lmm_port_*: lock, unlock, irq save/restore,"
		print "  cpu id, context, owner).  \"vs locked\" is against freelist+tas, the cheap locked list."
		print "  mm/ no-cache is the single-lock build (cache_high = pool_slice = LMM_CPU_OFF)." 
		need("W1 warm order-0", "freelist+tas", "pair"); need("W1 warm order-0", "mm/", "pair")
		need("W1 cold order-0", "mm/ no-cache", "pair"); need("W2 exhaust+rand free", "mm/ no-cache", "free")
		need("W5 atomic pool pair", "freelist+tas", "pair"); need("W5 atomic pool pair", "mm/ atomic-excl", "pair")
		need("W4 init 1 GiB", "mm/", "init per frame"); need("W4 init 16 GiB sparse", "mm/", "init per frame")
		if (bad)
			exit 4
		print "\n  Checks kept from issue 6, this build (the targets of issue 10 follow the last build):"
		ba = calls[w5, "lmm_buddy_alloc_locked"] + calls[w5, "buddy_alloc_locked"]
		bf = calls[w5, "lmm_buddy_free_locked"] + calls[w5, "buddy_free_locked"]
		if (w1c_buddy + 0 == 0)
			printf "  %-6s %s\n", "?", "W5 never enters buddy code: inconclusive, no buddy-code lines found executed even in W1 cold"
		else
			target(w5_buddy + 0 == 0 && ba + bf == 0,
			       sprintf("W5 never enters buddy code: %d instructions on the lines of %s (W1 cold: %d); %d calls to the buddy alloc/free functions",
				       w5_buddy, buddy_names, w1c_buddy, ba + bf))
		f50 = w3["50% geometric"] + w3["50% uniform"]
		target(f50 == 0, sprintf("W3 no fragmentation failures at 50%%: %d geometric, %d uniform", w3["50% geometric"], w3["50% uniform"]))
		printf "  %-6s W3 at 90%%: %d fragmentation failures with geometric draws, %d with uniform\n", "REPORT", w3["90% geometric"], w3["90% uniform"]
		target(maxmeta > 0 && maxmeta <= 16, sprintf("W4 metadata %.2f bytes/frame <= 16", maxmeta))
		v = value["W4 init 1 GiB", "mm/", "init per frame"]
		target(v < 10, sprintf("W4 init 1 GiB %.2f Ir/frame < 10", v))
		v = value["W4 init 16 GiB sparse", "mm/", "init per frame"]
		target(v < 10, sprintf("W4 init 16 GiB sparse %.2f Ir/frame < 10", v))
		exit missed ? 3 : 0
	}' "$dir/stdout" "$dir/regions.tsv" || status=$?
	if [ "$status" != 0 ] && [ "$status" != 3 ]; then
		echo "bench-ir: $name: incomplete results" >&2
		exit 1
	fi
	echo
done
echo "CSV: $csv"

# ---- The 2-thread figure: timed, natively, with the host port ------------------------------
mtbin=
for bin in "$@"; do
	[ "$(basename "$bin")" = bench-ir ] && mtbin=$bin
done
mt=$out/mt.txt
: >"$mt"
if [ -n "$mtbin" ]; then
	echo
	echo "== $(basename "$mtbin") natively: 2 threads on 2 cores (wall-clock time, noisy under load)"
	if ! "$mtbin" --mt-only >"$mt" 2>"$out/mt.err"; then
		cat "$mt" "$out/mt.err" >&2
		echo "bench-ir: the 2-thread run failed" >&2
		exit 1
	fi
	sed 's/^/  /' "$mt"
fi

# ---- Targets of issue 10 ---------------------------------------------------------------------
judged=$(basename "$1")
echo
echo "== Targets (issue 10).  Instruction targets judged on $judged; the others for comparison."
# The mm/ region behind a missed target: self instructions per operation, by function.
profile() { # bin workload allocator phase
	d=$out/ir/$1
	f=$(grep -l "^desc: Trigger: Client Request: $2|$3|$4|" "$d"/callgrind.out.* 2>/dev/null | head -n 1)
	[ -n "$f" ] || return 0
	ops=$(sed -n "s/^desc: Trigger: Client Request: .*|\([0-9]*\)\$/\1/p" "$f")
	echo "    where the instructions go ($1, $2 / $3 / $4; self Ir per op by function, from $f):"
	# Self cost by function; the frames above main (and main itself) carry the region's total.
	callgrind_annotate --threshold=100 --inclusive=no --auto=no "$f" 2>/dev/null |
		awk -v ops="$ops" '
		/^ *[0-9,]+ .*(mm\/|tests\/)[^ ]*:/ && !/bench\.c:main/ {
			c = $1; gsub(/,/, "", c)
			if (c / ops < 0.5) next
			name = $0; sub(/^ *[0-9,]+ (\([ 0-9.]+%\) +)?/, "", name); sub(/ \[[^]]*\]$/, "", name)
			printf "      %8.1f  %s\n", c / ops, name
		}'
	ann=$(ls "$d"/annotate."${f##*.}".txt 2>/dev/null || true)
	[ -n "$ann" ] && echo "    (line by line: $ann)"
	return 0
}
awk -F '\t' -v judged="$judged" '
FNR == NR { v[$1, $2, $3, $4] = $5; port[$1, $2, $3, $4] = $6; bins[$1] = $7; next }
/^MT mm\/: median scaling/ { match($0, /scaling [0-9.]+x/); mt = substr($0, RSTART + 8, RLENGTH - 9) + 0; mtline = $0 }
/^MT mm\/ no-cache.*median scaling/ { mtnc = $0 }
/^MT mm\/: median CPU-time ratio/ { mtcpu = $0 }
/^MT mm\/ no-cache.*median CPU-time ratio/ { mtnccpu = $0 }
/^MT private.*median scaling/ { mtown = $0 }
function t(name, val, goal, ok, wl, al, ph) {
	printf "TARGET %s %s %s %s\n", name, val, goal, ok ? "met" : "missed"
	if (!ok && wl != "") printf "MISS\t%s\t%s\t%s\t%s\n", judged, wl, al, ph > "/dev/stderr"
}
END {
	for (b in bins)
		if (((b, "W1 warm order-0", "freelist+tas", "pair") in v))
			printf "  %-22s %-36s W1 warm pair %6.1f Ir vs cheap locked list %5.1f: %.2fx; W5 pair %6.1f vs %5.1f: %.2fx; W1 cold (no cache) %6.1f; W2 free (no cache) %6.1f\n",
			       b, "(" bins[b] ")", v[b, "W1 warm order-0", "mm/", "pair"], v[b, "W1 warm order-0", "freelist+tas", "pair"],
			       v[b, "W1 warm order-0", "mm/", "pair"] / v[b, "W1 warm order-0", "freelist+tas", "pair"],
			       v[b, "W5 atomic pool pair", "mm/ atomic-excl", "pair"], v[b, "W5 atomic pool pair", "freelist+tas", "pair"],
			       v[b, "W5 atomic pool pair", "mm/ atomic-excl", "pair"] / v[b, "W5 atomic pool pair", "freelist+tas", "pair"],
			       v[b, "W1 cold order-0", "mm/ no-cache", "pair"], v[b, "W2 exhaust+rand free", "mm/ no-cache", "free"]
	if (mtline != "") print "  " mtline
	if (mtnc != "") print "  " mtnc
	if (mtcpu != "") print "  " mtcpu
	if (mtnccpu != "") print "  " mtnccpu
	if (mtown != "") print "  " mtown " (the baseline: what two threads get here when they share nothing)"
	print ""
	j = judged
	r = v[j, "W1 warm order-0", "mm/", "pair"] / v[j, "W1 warm order-0", "freelist+tas", "pair"]
	t("W1_warm_pair_vs_cheap_locked_list", sprintf("%.2fx", r), "<=1.5x", r <= 1.5, "W1 warm order-0", "mm/", "pair")
	c = v[j, "W1 warm order-0", "checked list+tas", "pair"]
	if (c > 0)
		printf "  (for reference, not a target: the same locked list refusing double and foreign frees, checked list+tas, %.1f Ir = %.2fx of it; mm/ W1 = %.2fx of that)\n",
		       c, c / v[j, "W1 warm order-0", "freelist+tas", "pair"], v[j, "W1 warm order-0", "mm/", "pair"] / c
	r = v[j, "W5 atomic pool pair", "mm/ atomic-excl", "pair"] / v[j, "W5 atomic pool pair", "freelist+tas", "pair"]
	t("W5_atomic_exclusive_pair_vs_cheap_locked_list", sprintf("%.2fx", r), "<=1.6x", r <= 1.6, "W5 atomic pool pair", "mm/ atomic-excl", "pair")
	for (b in bins)
		if (bins[b] == "LMM_DEBUG=0/minimal-port/MAX_CPUS=16")
			rel = b
	if (rel != "")
		printf "  (for reference, not judged: %s, the same port with LMM_DEBUG=0 - no KERNEL-from-handler refusal, lock assertions or CPU-index check: W1 %.2fx, W5 %.2fx)\n",
		       rel, v[rel, "W1 warm order-0", "mm/", "pair"] / v[rel, "W1 warm order-0", "freelist+tas", "pair"],
		       v[rel, "W5 atomic pool pair", "mm/ atomic-excl", "pair"] / v[rel, "W5 atomic pool pair", "freelist+tas", "pair"]
	x = v[j, "W1 cold order-0", "mm/ no-cache", "pair"]
	t("W1_cold_pair_no_cache_instructions", sprintf("%.1f", x), "<=650", x <= 650, "W1 cold order-0", "mm/ no-cache", "pair")
	x = v[j, "W2 exhaust+rand free", "mm/ no-cache", "free"]
	t("W2_random_free_no_cache_instructions", sprintf("%.1f", x), "<=140", x <= 140, "W2 exhaust+rand free", "mm/ no-cache", "free")
	if (mtline != "")
		t("MT_2_threads_vs_1_thread_per_cpu_layer", sprintf("%.2fx", mt), ">=1.7x", mt >= 1.7, "", "", "")
	else
		print "TARGET MT_2_threads_vs_1_thread_per_cpu_layer none >=1.7x missed (no host-port build was run)"
}' "$figures" "$mt" 2>"$out/misses.txt"
tab=$(printf '\t')
while IFS=$tab read -r tag bin wl al ph; do
	[ "$tag" = MISS ] && profile "$bin" "$wl" "$al" "$ph"
done <"$out/misses.txt"
# Missed targets are findings, not failures of the benchmark.
exit 0

#!/bin/sh
# boot-tests.sh - boot the kernel under a list of QEMU configurations and judge each run.
#
# usage: sh tests/qemu/boot-tests.sh [--list] [NAME-PATTERN...]
#   (no argument: every configuration; patterns are shell globs: 'fault-*')
# env:   BUILD (build), ISO ($BUILD/labyrinth.iso), LOGDIR ($BUILD/test-logs), BOOT_JOBS (2),
#        BOOT_TIMEOUT (180 s per boot, TCG on a slow CI machine)
#
# Prints exactly one line per configuration, in the order of the list below, "PASS name"
# or "FAIL name: reason", each followed by a "#" line with the time it took and its
# serial log (build/test-logs/NAME.log, kept, with CRs and terminal escapes removed).
# Exit status 1 if any configuration failed.
#
# Every run is judged on:
#   - QEMU's exit status: the expected one (33 = the kernel's success code by default;
#     35 for a deliberate fault); 0 (reset/triple fault), 124 (timeout) and QEMU
#     errors are failures with their own reason;
#   - "Labyrinth: long mode OK" in the log;
#   - every KTAP block in the log: a "KTAP version 1" line, a plan "1..N", exactly
#     one result for each of 1..N, all "ok" (a "# SKIP" counts as ok);
#   - a stress summary, if the log has "stress:" lines: the last verdict must be
#     "stress: PASS";
#   - the configuration's own checks (below).

set -u
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
ISO=${ISO:-$BUILD/labyrinth.iso}
LOGDIR=${LOGDIR:-$BUILD/test-logs}
JOBS=${BOOT_JOBS:-2}
TIMEOUT=${BOOT_TIMEOUT:-180}
FILES=$LOGDIR/files

# A small module for the module configuration: deterministic, so its ISO is cached.
MODNAME=labyrinth-test-module.bin
MODSIZE=12345

# ==== The configurations ===============================================================
#
# config NAME [key=value]...
#   mem=SIZE       QEMU -m (default 128M); check_ram compares the kernel's figure to it
#   qemu='ARGS'    more QEMU arguments, e.g. qemu='-machine q35 -cpu max'
#   smp=N          QEMU -smp (default 1)
#   cmdline='...'  kernel command line (appended to the multiboot2 line in grub.cfg)
#   module=FILE    a multiboot2 module (repeatable)
#   status=N       the QEMU exit status that counts as success (default 33; 35 = the
#                  kernel's failure code, for configurations that must fail)
#   timeout=S      per-configuration timeout (default $BOOT_TIMEOUT)
#   check='FN ARGS'  one more assertion (repeatable): a shell function below that
#                  returns non-zero with the reason in $why.  The log is $LOG; the
#                  configuration's memory in bytes is $MEM_BYTES.
#
# Adding a configuration is one line here; a new kind of assertion is one function in
# the "Checks" section.

# The default mode (demo) runs the in-kernel KTAP tests and the stress test: the RAM
# configurations require both, so a kernel that quietly skips them does not pass.
DEMO="check=require_ktap check=require_stress check=large_blocks_kept"

configs() {
	# shellcheck disable=SC2086 # $DEMO is two words
	{
	config mem-32M   mem=32M  check=check_ram $DEMO
	config mem-128M  mem=128M check=check_ram $DEMO
	config mem-1G    mem=1G   check=check_ram $DEMO
	config mem-4G    mem=4G   check=check_ram $DEMO # PCI hole: 1 GiB above 4 GiB
	config q35-6G    mem=6G   qemu='-machine q35' check=check_ram $DEMO # 4 GiB above 4 GiB
	config smp-2     mem=256M smp=2 check=check_ram $DEMO check="check_cpus 2"
	# The same ISO through UEFI GRUB (OVMF firmware) instead of BIOS GRUB.
	config uefi-q35  mem=512M qemu='-machine q35 -bios /usr/share/ovmf/OVMF.fd -net none' \
		check=check_ram $DEMO
	}

	# Several CPUs (one host thread each, -accel tcg,thread=multi): every CPU's handler
	# allocates, pages cross CPUs, memory is exhausted in turns; pc and q35.  Without
	# ACPI there is no MADT: one CPU, and the log must say so.
	config smp-4       mem=256M smp=4 cmdline='mode=stress stress_seconds=2 seed=5' \
		check="check_stress_summary exhausted" check="check_cpus 4"
	config q35-smp-2   mem=512M smp=2 qemu='-machine q35' cmdline='mode=stress stress_seconds=2 seed=9' \
		check="check_stress_summary exhausted" check="check_cpus 2"
	config q35-smp-4   mem=1G   smp=4 qemu='-machine q35' cmdline='mode=stress stress_seconds=2 seed=13' \
		check="check_stress_summary exhausted" check="check_cpus 4"
	# Four CPUs on an 8-page reserve: atomic failures on every CPU, each judged.
	config smp-4-pool8 mem=32M smp=4 cmdline='mode=stress pool_pages=8 pool_low=4 stress_seconds=2 atomic_per_tick=8' \
		check="check_stress_summary exhausted" check="check_cpus 4" \
		check="grep_log '^  atomic failures +[1-9][0-9]*: justified [1-9]'"
	# A CPU that never answers the SIPIs (an APIC id with no CPU): reported, left out.
	config smp-absent-cpu mem=128M smp=2 cmdline='mode=stress stress_seconds=1 smp_absent_apic=9' \
		check="check_stress_summary exhausted" check="check_cpus 2" \
		check="grep_log '^smp: cpu 2 \\(APIC id 9\\) did not come up within 1000 ms: left out$'" \
		check="grep_log '^smp: 2 of 3 CPU\\(s\\) online$'"
	config no-acpi     mem=128M smp=2 qemu='-no-acpi' cmdline='mode=stress stress_seconds=2' \
		check="check_stress_summary exhausted" check="check_cpus 1" \
		check="grep_log '^acpi: cannot use the ACPI tables: no RSDP'" \
		check="grep_log 'runs on the boot CPU alone'"

	config mode-test   mem=128M cmdline='mode=test mm_poison=1' check=require_ktap \
		check="no_log '^stress:'"
	config mode-stress mem=128M cmdline='mode=stress seed=7' check=require_stress \
		check="no_log '^KTAP version'"

	# The timer stress test of the atomic path under pressure: a small machine where
	# exhaustion comes fast and the pool must carry the handler, a normal one, 4 GiB,
	# a high timer rate, and a pool of four pages.  "exhausted" additionally requires
	# that normal memory was driven to exhaustion and the pool served the handlers: every
	# stress configuration, 4 GiB included, must get there.
	config stress-24M   mem=24M  cmdline='mode=stress stress_seconds=3' \
		check="check_stress_summary exhausted"
	config stress-256M  mem=256M cmdline='mode=stress stress_seconds=3 seed=3' \
		check="check_stress_summary exhausted"
	config stress-4G    mem=4G   cmdline='mode=stress stress_seconds=3 seed=11' \
		check="check_stress_summary exhausted"
	config stress-10kHz mem=64M  cmdline='mode=stress pit_hz=10000 stress_ticks=20000 atomic_per_tick=2' \
		check="check_stress_summary exhausted"
	config stress-pool4 mem=32M  cmdline='mode=stress pool_pages=4 pool_low=2 stress_seconds=2 atomic_per_tick=8' \
		check="check_stress_summary exhausted"

	# The memory map at boot and after the stress test, in letters (mm_map=0); 4 GiB for
	# the PCI hole, which the map must show as a hole.
	config memmap-4G mem=4G cmdline='mode=stress stress_seconds=1 mm_map=0' check=check_memmap
	# Holder records on: the half-way list must name the stress test's own call sites.
	config holders   mem=128M cmdline='mode=stress stress_seconds=2 mm_holders=1' check=require_stress \
		check=check_holders

	config module    mem=128M module="$FILES/$MODNAME" check="check_module $MODNAME $MODSIZE"

	config bad-cmdline mem=128M cmdline='bogus_key=1 pit_hz=abc' check=check_ram \
		check="grep_log \"'bogus_key=1': unknown option\"" \
		check="grep_log \"'pit_hz=abc': not a number\""

	config fault-pagefault   cmdline=fault=pagefault   status=35 \
		check="check_fault '#PF'" check="grep_log 'CR2=ffffe00000001000'"
	config fault-ud          cmdline=fault=ud          status=35 check="check_fault '#UD'"
	config fault-divide      cmdline=fault=divide      status=35 check="check_fault '#DE'"
	config fault-gpf         cmdline=fault=gpf         status=35 check="check_fault '#GP'"
	config fault-doublefault cmdline=fault=doublefault status=35 check="check_fault '#DF'"
	# A fault on an AP: its report names it, and the boot CPU was stopped (NMI) first.
	config fault-ap-gpf smp=2 cmdline='fault=gpf fault_cpu=1' status=35 check="check_fault '#GP'" \
		check="grep_log 'EXCEPTION 13: .* on cpu 1$'" check="grep_log '^  other cpus stopped: 1 of 1$'"
}

# ==== Checks ===========================================================================
# Each returns 0, or sets $why and returns 1.  $LOG is the cleaned serial log.

# grep_log ERE: the log has a line matching the extended regular expression.
grep_log() {
	grep -Eq -- "$1" "$LOG" && return 0
	why="log has no line matching /$1/"
	return 1
}

# no_log ERE: no line matches.
no_log() {
	line=$(grep -E -m1 -- "$1" "$LOG") || return 0
	why="log has a line matching /$1/: $line"
	return 1
}

# check_memmap: both lmm-map blocks are complete, and each map has 1..32 rows of an
# address and 64 cells, no longer than 80 columns, with a hole somewhere when RAM has one.
check_memmap() {
	for label in boot after-stress; do
		grep_log "^--- lmm-map v1 begin $label ---\$" || return 1
		rows=$(sed -n "/^memory map ($label): /,/^legend:/p" "$LOG" | grep -cE '^0x[0-9a-f]{8,16} [.FfAXPCR%]{1,64}$')
		long=$(sed -n "/^memory map ($label): /,/^legend:/p" "$LOG" | awk 'length > 80' | head -n 1)
		if [ "$rows" -lt 1 ] || [ "$rows" -gt 32 ] || [ -n "$long" ]; then
			why="map '$label': $rows rows${long:+, a line over 80 columns: $long}"
			return 1
		fi
	done
	[ "$(grep -c '^--- lmm-map v1 end ---$' "$LOG")" = 2 ] || { why="lmm-map end markers missing"; return 1; }
	if [ "$MEM_BYTES" -gt $((3 << 30)) ]; then
		sed -n '/^memory map (boot): /,/^legend:/p' "$LOG" | grep -q '^0x[0-9a-f]* [^.]*\.\.' ||
			{ why="no hole in the boot map of a machine with a PCI hole"; return 1; }
	fi
	return 0
}

# check_ram: "usable RAM: <bytes> bytes" is within the firmware's reserved areas of what
# QEMU was given: at most all of it, at least 97% of it less 1 MiB (BIOS areas, ACPI
# tables, the PCI hole's displaced RAM that QEMU re-maps above 4 GiB all included).
check_ram() {
	line=$(grep -E -m1 '^usable RAM: [0-9]+ bytes' "$LOG") || {
		why="no 'usable RAM: <bytes> bytes' line"
		return 1
	}
	got=$(echo "$line" | sed -E 's/^usable RAM: ([0-9]+) bytes.*/\1/')
	low=$((MEM_BYTES * 97 / 100 - 1048576))
	if [ "$got" -gt "$MEM_BYTES" ] || [ "$got" -lt "$low" ]; then
		why="usable RAM $got bytes ($((got >> 20)) MiB) not within [$low, $MEM_BYTES] for -m $MEM"
		return 1
	fi
	return 0
}

# check_fault VECTOR: the exception report names the vector and shows RIP and CR2, and
# the run ended with it: one report, and its last line is the last of the log.  A
# handler that returns re-raises the fault and only the nested-exception guard's exit
# (status 35 too) would end the run.
check_fault() {
	grep -Eq "EXCEPTION.*$1|$1.*EXCEPTION" "$LOG" || {
		why="no exception report naming $1"
		return 1
	}
	grep -Eq 'RIP=' "$LOG" || { why="exception report without RIP"; return 1; }
	grep -Eq 'CR2=' "$LOG" || { why="exception report without CR2"; return 1; }
	reports=$(grep -c '^\*\*\* EXCEPTION ' "$LOG")
	[ "$reports" = 1 ] || { why="$reports exception reports, expected one"; return 1; }
	no_log 'nested exception' || return 1
	last=$(grep -v '^[[:space:]]*$' "$LOG" | tail -n 1)
	[ "$last" = "*** halting: unhandled exception" ] && return 0
	why="the run did not end with the exception report; last line: '$last'"
	return 1
}

# check_module NAME [SIZE]: the kernel lists the module; if its line shows the range
# as [0xSTART-0xEND), the size matches; and its contents at the end of the run have the
# checksum of the file ($FILES/NAME), by cksum(1): the kernel never handed its pages out.
check_module() {
	check_module_listed "$@" || return 1
	idx=$(grep -F -m1 "'$1'" "$LOG" | sed -nE 's/^  module ([0-9]+): .*/\1/p')
	want=$(cksum <"$FILES/$1" | awk '{ print $1 " " $2 }')
	grep -q "^module ${idx:-?}: cksum $want at the end" "$LOG" && return 0
	why="module $1 (${idx:-not numbered}) does not end the run as the file is (cksum $want): $(grep -m1 "^module ${idx:-?}: cksum" "$LOG" || echo no cksum line)"
	return 1
}

check_module_listed() {
	line=$(grep -F -m1 "'$1'" "$LOG") || line=$(grep -F -m1 "$1" "$LOG") || {
		why="module $1 not listed"
		return 1
	}
	[ $# -ge 2 ] || return 0
	range=$(echo "$line" | sed -nE 's/.*\[(0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+)\).*/\1 \2/p')
	[ -n "$range" ] || return 0
	# shellcheck disable=SC2086 # two words
	set -- "$1" "$2" $range
	if [ $(($4 - $3)) -ne "$2" ]; then
		why="module $1 listed with $(($4 - $3)) bytes, the file has $2: $line"
		return 1
	fi
	return 0
}

# require_ktap [N]: a KTAP block must be present (with a plan of N tests if given);
# its results are judged by check_ktap, which runs for every configuration.
require_ktap() {
	grep -q '^KTAP version 1$' "$LOG" || { why="no 'KTAP version 1' line"; return 1; }
	[ $# -ge 1 ] || return 0
	grep -q "^1\.\.$1\$" "$LOG" && return 0
	why="no KTAP plan '1..$1' (found: $(grep -E -m1 '^1\.\.[0-9]+$' "$LOG" || echo none))"
	return 1
}

# walk_large LABEL: frames in free blocks of order >= 9 in lmm-map block LABEL: a walk of
# the frame metadata, so it does not take mm/'s own counters on trust.  Empty if absent.
walk_large() {
	grep -q "^--- lmm-map v1 begin $1 ---\$" "$LOG" || return 0
	sed -n "/^--- lmm-map v1 begin $1 ---\$/,/^total frames /p" "$LOG" | tr ' ' '\n' |
		awk -F: '/^F[0-9]+:[0-9]+$/ { if (substr($1, 2) + 0 >= 9) s += $2 } END { print s + 0 }'
}

# large_blocks_kept: after the tests, free memory in blocks of order >= 9 is within 5%
# of its value at boot (the reserve and the per-CPU caches must not break large blocks),
# by mm/'s counters and, where the memory maps were drawn, by the walk behind them; at
# boot (nothing cached yet) the two agree exactly, and after the stress test too (its
# teardown drains every CPU's cache, and nothing allocates between the after-stress map
# and the line), so a "now" that is not mm/'s figure fails even when it looks kept.
large_blocks_kept() {
	line=$(grep -E -m1 '^mm: free memory in blocks of order >= 9: ' "$LOG") || {
		why="no 'mm: free memory in blocks of order >= 9' line"
		return 1
	}
	boot=$(echo "$line" | sed -E 's/.*: ([0-9]+) pages at boot, ([0-9]+) now.*/\1/')
	now=$(echo "$line" | sed -E 's/.*: ([0-9]+) pages at boot, ([0-9]+) now.*/\2/')
	[ $((now * 100)) -ge $((boot * 95)) ] || { why="large free blocks not kept: $line"; return 1; }
	walk_boot=$(walk_large boot)
	walk_after=$(walk_large after-stress)
	if [ -n "$walk_boot" ] && [ "$walk_boot" != "$boot" ]; then
		why="the boot map's walk finds $walk_boot pages in blocks of order >= 9, the counters $boot"
		return 1
	fi
	if [ -n "$walk_after" ] && [ "$walk_after" != "$now" ]; then
		why="the after-stress map's walk finds $walk_after pages in blocks of order >= 9, the counters $now"
		return 1
	fi
	if [ -n "$walk_boot" ] && [ -n "$walk_after" ] && [ $((walk_after * 100)) -lt $((walk_boot * 95)) ]; then
		why="large free blocks not kept by the walk: $walk_boot pages at boot, $walk_after after the stress test"
		return 1
	fi
	return 0
}

# require_stress: a stress summary must be present (check_stress judges it).
require_stress() {
	grep -Eq '^stress: (PASS|FAIL)' "$LOG" && return 0
	why="no 'stress: PASS' or 'stress: FAIL' summary line"
	return 1
}

# stress_value LABEL: the first word after LABEL in the stress summary table.
stress_value() {
	awk -v label="$1" 'index($0, "  " label " ") == 1 {
		rest = substr($0, length(label) + 3); sub(/^ +/, "", rest); split(rest, w, " "); v = w[1]
	} END { print v }' "$LOG"
}

# check_stress_summary [exhausted]: the stress summary shows no lost page, no signature
# mismatch, a clean lmm_check, every deliberate violation caught, and no atomic failure
# while the pool or the buddy lists still had a page.  With "exhausted": normal memory
# was driven to exhaustion at least once and the pool served the handler.
check_stress_summary() {
	require_stress || return 1
	for pair in "lost pages=0" "signature mismatches=0" "lmm_check problems=0"; do
		label=${pair%=*}
		got=$(stress_value "$label")
		[ "$got" = "${pair##*=}" ] || { why="stress summary: $label is '${got:-missing}', expected ${pair##*=}"; return 1; }
	done
	caught=$(grep -E -m1 '^  violations caught ' "$LOG" |
		sed -E 's/.* ([0-9]+) of ([0-9]+)( \[required [^]]*\])?$/\1 \2/')
	# shellcheck disable=SC2086 # two words
	set -- "${1:-}" $caught
	if [ $# -ne 3 ] || [ "$2" != "$3" ] || [ "$3" = 0 ]; then
		why="stress summary: violations caught '${caught:-missing}' (need all, and at least one)"
		return 1
	fi
	unjust=$(stress_value "unjustified atomic failures")
	[ "$unjust" = 0 ] || {
		why="stress summary: unjustified atomic failures '${unjust:-missing}': they failed while the pool or buddy had pages"
		return 1
	}
	[ "$1" = exhausted ] || return 0
	ex=$(stress_value "normal memory driven to exhaustion")
	hits=$(stress_value "emergency pool hits")
	if [ "${ex:-0}" -gt 0 ] && [ "${hits:-0}" -gt 0 ]; then
		return 0
	fi
	why="stress summary: exhaustion ${ex:-missing} times, pool hits ${hits:-missing}: the pool was not exercised"
	return 1
}

# check_cpus N: "cpus online: N" in the stress summary, and N rows in its per-cpu table,
# each with atomic allocations made by that CPU's timer handler.
# check_holders: lmm_dump_holders() listed call sites, and addr2line on the kernel ELF
# names the stress test's handler and main loop among them (tests/scripts/symbolize.sh).
check_holders() {
	grep -Eq '^lmm: holders: [1-9][0-9]* call sites hold allocated memory' "$LOG" ||
		{ why="no 'lmm: holders: N call sites' line"; return 1; }
	named=$(sh tests/scripts/symbolize.sh "$BUILD/labyrinth.elf" "$LOG" | grep -E '  <- ' | grep -c 'stress\.c')
	[ "$named" -ge 2 ] && return 0
	why="holders list names $named call sites in kernel/stress.c (want the handler and the main loop)"
	return 1
}

check_cpus() {
	line=$(grep -E -m1 '^cpus online: [0-9]+$' "$LOG") || { why="no 'cpus online: N' line"; return 1; }
	got=${line#cpus online: }
	[ "$got" = "$1" ] || { why="cpus online: $got, expected $1 (-smp)"; return 1; }
	rows=$(awk '
		/^stress: per cpu/ { t = 1; next }
		t && /^  cpu / { next }
		t && /^ +[0-9]+ +[0-9]+ / { n++; if ($4 + 0 == 0) bad = bad " " $1; next }
		t { t = 0 }
		END { print n + 0 "|" bad }' "$LOG")
	[ "${rows%%|*}" = "$1" ] || { why="per-cpu table has ${rows%%|*} rows, expected $1"; return 1; }
	[ -z "${rows#*|}" ] || { why="cpu(s)${rows#*|} made no atomic allocation from their handler"; return 1; }
	return 0
}

# -- Always applied ---------------------------------------------------------------

check_ktap() {
	why=$(awk '
		function fail(msg) { if (reason == "") reason = msg }
		function finish(   i) {
			if (!inblock)
				return
			if (plan < 0) {
				fail("KTAP block at line " start " has no plan line 1..N")
			} else {
				for (i = 1; i <= plan; i++)
					if (!(i in seen)) {
						fail("KTAP test " i " of plan 1.." plan " never ran" \
						     (last != "" ? " (last result: " last ")" : ""))
						break
					}
			}
			inblock = 0
		}
		{ sub(/\r$/, "") }
		/^KTAP version 1$/ { finish(); inblock = 1; plan = -1; start = NR; last = ""
		                      split("", seen); next }
		!inblock { next }
		/^1\.\.[0-9]+$/ {
			if (plan >= 0) fail("KTAP block at line " start " has two plans")
			plan = substr($0, 4) + 0
			next
		}
		/^(not )?ok [0-9]+/ {
			ok = ($1 == "ok")
			n = ok ? $2 + 0 : $3 + 0
			rest = $0
			sub(/^(not )?ok [0-9]+ ?(- )?/, "", rest)
			name = rest; directive = ""
			if (index(rest, " # ")) {
				name = substr(rest, 1, index(rest, " # ") - 1)
				directive = substr(rest, index(rest, " # ") + 3)
			} else if (rest ~ /^# /) {
				name = ""; directive = substr(rest, 3)
			}
			if (n in seen) fail("KTAP test " n " (" name ") reported twice")
			if (plan >= 0 && n > plan) fail("KTAP test " n " (" name ") beyond the plan 1.." plan)
			seen[n] = 1
			last = $0
			if (!ok && directive !~ /^SKIP/)
				fail("KTAP test " n " (" name ") failed" (directive != "" ? ": " directive : ""))
		}
		END { finish(); if (reason != "") { print reason; exit 1 } }
	' "$LOG")
}

check_stress() {
	grep -q '^stress:' "$LOG" || return 0
	verdict=$(grep -E '^stress: (PASS|FAIL)' "$LOG" | tail -n 1)
	case $verdict in
	"stress: PASS"*) return 0 ;;
	"stress: FAIL"*) why="stress test failed: $verdict" ;;
	*) why="stress output but no final 'stress: PASS' line" ;;
	esac
	return 1
}

# ==== Running one configuration ======================================================

to_bytes() {
	case $1 in
	*[Gg]) echo $((${1%?} << 30)) ;;
	*[Mm]) echo $((${1%?} << 20)) ;;
	*[Kk]) echo $((${1%?} << 10)) ;;
	*) echo $(($1 << 20)) ;; # QEMU's default unit is MiB
	esac
}

now_ms() {
	t=$(date +%s%N 2>/dev/null)
	case $t in *N | '') echo $(($(date +%s) * 1000)) ;; *) echo $((t / 1000000)) ;; esac
}

# run_one NAME KEY=VALUE...: boots, judges, and writes the verdict line to
# $LOGDIR/NAME.result and the elapsed milliseconds to $LOGDIR/NAME.ms.
run_one() {
	name=$1
	shift
	MEM=128M qemu_args="" smp=1 cmdline="" expect=33 tmo=$TIMEOUT checks="" modargs=""
	for kv; do
		case $kv in
		mem=*) MEM=${kv#mem=} ;;
		qemu=*) qemu_args=${kv#qemu=} ;;
		smp=*) smp=${kv#smp=} ;;
		cmdline=*) cmdline=${kv#cmdline=} ;;
		module=*) modargs="$modargs --module ${kv#module=}" ;;
		status=*) expect=${kv#status=} ;;
		timeout=*) tmo=${kv#timeout=} ;;
		check=*) checks="$checks${kv#check=}
" ;;
		*) echo "FAIL $name: bad configuration word '$kv'" >"$LOGDIR/$name.result"; return ;;
		esac
	done
	MEM_BYTES=$(to_bytes "$MEM")
	LOG=$LOGDIR/$name.log
	t0=$(now_ms)
	# shellcheck disable=SC2086 # $modargs and $qemu_args are word lists
	sh tests/qemu/qemu-boot.sh --raw-status --iso "$ISO" --mem "$MEM" --smp "$smp" \
		--timeout "$tmo" --cmdline "$cmdline" $modargs -- $qemu_args \
		</dev/null >"$LOG.raw" 2>&1
	status=$?
	echo $(($(now_ms) - t0)) >"$LOGDIR/$name.ms"
	esc=$(printf '\033')
	sed -e 's/\r$//' -e 's/\r/\n/g' -e "s/$esc\[[0-9;?]*[A-Za-z]//g" "$LOG.raw" >"$LOG"
	rm -f "$LOG.raw"

	why=""
	judge_status "$status" "$expect" "$tmo"
	[ -z "$why" ] && { grep -q 'Labyrinth: long mode OK' "$LOG" || why="no 'Labyrinth: long mode OK' line"; }
	[ -z "$why" ] && check_ktap
	[ -z "$why" ] && check_stress
	if [ -z "$why" ]; then
		old_ifs=$IFS
		IFS='
'
		for c in $checks; do
			IFS=$old_ifs
			eval "$c" || { [ -n "$why" ] || why="check '$c' failed"; break; }
		done
		IFS=$old_ifs
	fi
	if [ -z "$why" ]; then
		echo "PASS $name" >"$LOGDIR/$name.result"
	else
		echo "FAIL $name: $why (log: $LOG)" >"$LOGDIR/$name.result"
	fi
}

last_line() {
	l=$(grep -v '^[[:space:]]*$' "$LOG" | tail -n 1 | cut -c1-120)
	[ -n "$l" ] && echo "; last line: '$l'"
}

judge_status() {
	[ "$1" = "$2" ] && return 0
	case $1 in
	124 | 137) why="timed out after $3 s$(last_line)" ;;
	0) why="QEMU exited 0: reset or triple fault (-no-reboot), no exit code written$(last_line)" ;;
	1) why="QEMU error or guest wrote 0 (status 1): $(grep -m1 -i 'qemu' "$LOG" | cut -c1-160)" ;;
	33) why="the kernel exited with success (33), expected status $2$(last_line)" ;;
	35) why="the kernel reported failure (status 35), expected $2$(last_line)" ;;
	*) why="QEMU exit status $1, expected $2$(last_line)" ;;
	esac
}

# ==== Scheduling: JOBS at a time, results printed in list order =========================

mode=run
# selected NAME PATTERN...: no patterns selects everything.
selected() {
	[ $# -le 1 ] && return 0
	n=$1
	shift
	for p; do
		# shellcheck disable=SC2254 # the patterns are globs on purpose
		case $n in $p) return 0 ;; esac
	done
	return 1
}

queue=""   # "name:pid name:pid ..." oldest first
passed=0 failed=0

reap_oldest() {
	# shellcheck disable=SC2086 # a word list
	set -- $queue
	entry=$1
	shift
	queue="$*"
	wait "${entry#*:}"
	n=${entry%%:*}
	result=$(cat "$LOGDIR/$n.result" 2>/dev/null) || result="FAIL $n: runner died without a verdict"
	echo "$result"
	ms=$(cat "$LOGDIR/$n.ms" 2>/dev/null || echo 0)
	echo "#   $n: $((ms / 1000)).$((ms % 1000 / 100)) s, log $LOGDIR/$n.log"
	case $result in PASS*) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
}

config() {
	[ "$mode" = list ] && { echo "$1"; return; }
	# shellcheck disable=SC2086
	selected "$1" $patterns || return 0
	rm -f "$LOGDIR/$1.result" "$LOGDIR/$1.ms" "$LOGDIR/$1.log"
	run_one "$@" &
	queue="$queue $1:$!"
	# shellcheck disable=SC2086
	set -- $queue
	[ $# -ge "$JOBS" ] && reap_oldest
	return 0
}

patterns=""
for a; do
	case $a in
	--list) mode=list ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) patterns="$patterns $a" ;;
	esac
done
if [ "$mode" = list ]; then
	configs
	exit 0
fi

if [ ! -f "$ISO" ]; then
	echo "FAIL boot-tests: no ISO at $ISO (run make)"
	exit 1
fi
sh tests/scripts/ensure-tools.sh kernel || { echo "FAIL boot-tests: tools missing"; exit 1; }
mkdir -p "$LOGDIR" "$FILES"
# The module: a fixed text pattern of exactly MODSIZE bytes.
awk -v n="$MODSIZE" 'BEGIN { s = ""; while (length(s) < n) s = s "Labyrinth test module. "
                          printf "%s", substr(s, 1, n) }' >"$FILES/$MODNAME"

configs
while [ -n "$queue" ]; do
	reap_oldest
done
[ $((passed + failed)) -gt 0 ] || echo "FAIL boot-tests: no configuration matches:$patterns"
echo "boot tests: $passed of $((passed + failed)) configurations passed"
[ "$failed" = 0 ] && [ $((passed + failed)) -gt 0 ]

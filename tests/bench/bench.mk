# tests/bench/bench.mk - the host benchmark of mm/ (tests/bench/bench.c, workloads.c).
#
#   make bench        timed run: one table per build on stdout, CSV under build/bench/
#   make bench-ir     the same workloads, smaller, under callgrind: instructions per operation
#   make bench-build  build the binaries only (make test does this; it never runs them)
#
# mm/ is compiled -O2 with no sanitizers: with the host port as shipped (LMM_DEBUG default,
# 1) and with -DLMM_DEBUG=0, and (bench-ir) with the minimal port of tests/bench/port_minimal.c (also with
# -DLMM_DEBUG=0, for reference).  The flags are fixed, not HOSTCFLAGS, so figures
# stay comparable; BENCH_ARGS passes options to the timed runs (e.g. --rounds 11).

BENCH_BUILD   := $(BUILD)/bench
# LMM_PORT_MAX_CPUS=16 as in the host tests (the 2-thread run needs more than one CPU);
# the -1cpu build is the uniprocessor port (no lmm_port_irq_save_cpu() call at all).
BENCH_FLAGS   := -std=gnu11 -O2 -g -Iinclude -Itests/host -Itests/bench -pthread $(HOST_WARN) $(HOST_IRQFLAGS)
BENCH_CPUS    := -DLMM_PORT_MAX_CPUS=16
BENCH_COMMON  := tests/bench/bench.c tests/bench/workloads.c $(MM_SRCS)
BENCH_SRCS    := $(BENCH_COMMON) $(HOST_PORT)
BENCH_MIN_SRCS := $(BENCH_COMMON) tests/bench/port_minimal.c
BENCH_DEPS    := $(BENCH_COMMON) $(HOST_PORT) tests/bench/port_minimal.c tests/bench/port_minimal_hooks.h \
                 tests/bench/workloads.h \
                 tests/host/port_host.h $(wildcard include/labyrinth/*.h mm/*.h) tests/bench/bench.mk
BENCH_BINS    := $(BENCH_BUILD)/bench $(BENCH_BUILD)/bench-nodebug
# The minimal-port builds first: bench-ir.sh judges the targets on bench-ir-minimal.
BENCH_IR_BINS := $(BENCH_BUILD)/bench-ir-minimal $(BENCH_BUILD)/bench-ir-minimal-1cpu \
                 $(BENCH_BUILD)/bench-ir-minimal-inline $(BENCH_BUILD)/bench-ir-minimal-nodebug \
                 $(BENCH_BUILD)/bench-ir $(BENCH_BUILD)/bench-ir-nodebug
BENCH_ARGS    ?=

.PHONY: bench bench-ir bench-build tools-bench

bench-build: $(BENCH_BINS) $(BENCH_IR_BINS)

tools-bench:
	@sh tests/scripts/ensure-tools.sh bench

$(BENCH_BUILD)/bench: $(BENCH_DEPS) | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -o $@ $(BENCH_SRCS)

$(BENCH_BUILD)/bench-nodebug: $(BENCH_DEPS) | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DLMM_DEBUG=0 -o $@ $(BENCH_SRCS)

# The callgrind builds differ only in the driver's region markers (valgrind/callgrind.h).
$(BENCH_BUILD)/bench-ir: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DBENCH_CALLGRIND=1 -o $@ $(BENCH_SRCS)

$(BENCH_BUILD)/bench-ir-nodebug: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DBENCH_CALLGRIND=1 -DLMM_DEBUG=0 -o $@ $(BENCH_SRCS)

# The same mm/ sources and flags linked with tests/bench/port_minimal.c instead of the host port.
$(BENCH_BUILD)/bench-ir-minimal: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DBENCH_CALLGRIND=1 -DBENCH_PORT_MINIMAL=1 -o $@ $(BENCH_MIN_SRCS)

# The minimal port's hooks on the common path static inline (mm_port.h, LMM_PORT_INLINE_HEADER).
$(BENCH_BUILD)/bench-ir-minimal-inline: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DBENCH_CALLGRIND=1 -DBENCH_PORT_MINIMAL=1 \
		'-DLMM_PORT_INLINE_HEADER="port_minimal_hooks.h"' -o $@ $(BENCH_MIN_SRCS)

# What a released embedding kernel would ship: the minimal port with LMM_DEBUG=0 (no debug
# CPU-index check, no KERNEL-from-handler check, no poisoning).  For reference, not judged.
$(BENCH_BUILD)/bench-ir-minimal-nodebug: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) $(BENCH_CPUS) -DBENCH_CALLGRIND=1 -DBENCH_PORT_MINIMAL=1 -DLMM_DEBUG=0 -o $@ $(BENCH_MIN_SRCS)

$(BENCH_BUILD)/bench-ir-minimal-1cpu: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) -DLMM_PORT_MAX_CPUS=1 -DBENCH_CALLGRIND=1 -DBENCH_PORT_MINIMAL=1 -o $@ $(BENCH_MIN_SRCS)

bench: $(BENCH_BINS)
	@$(BENCH_BUILD)/bench --csv $(BENCH_BUILD)/bench.csv $(BENCH_ARGS)
	@printf '\n== The same with -DLMM_DEBUG=0 (not the shipped configuration)\n'
	@$(BENCH_BUILD)/bench-nodebug --csv $(BENCH_BUILD)/bench-nodebug.csv $(BENCH_ARGS)

# The 2-thread figure is timed, not counted: bench-ir.sh runs the host-port build natively
# (--mt-only) for it after the callgrind runs.
bench-ir: $(BENCH_IR_BINS) | tools-bench
	@sh tests/bench/bench-ir.sh $(BENCH_BUILD) $(BENCH_IR_BINS)


# tests/bench/bench.mk - the host benchmark of mm/ (tests/bench/bench.c, workloads.c).
#
#   make bench        timed run: one table per build on stdout, CSV under build/bench/
#   make bench-ir     the same workloads, smaller, under callgrind: instructions per operation
#   make bench-build  build the binaries only (make test does this; it never runs them)
#
# mm/ is compiled -O2 with the host port and no sanitizers, twice: as shipped (LMM_DEBUG
# default, 1) and with -DLMM_DEBUG=0.  The flags are fixed, not HOSTCFLAGS, so figures
# stay comparable; BENCH_ARGS passes options to the timed runs (e.g. --rounds 11).

BENCH_BUILD   := $(BUILD)/bench
BENCH_FLAGS   := -std=gnu11 -O2 -g -Iinclude -Itests/host -Itests/bench -pthread $(HOST_WARN)
BENCH_SRCS    := tests/bench/bench.c tests/bench/workloads.c $(MM_SRCS) $(HOST_PORT)
BENCH_DEPS    := $(BENCH_SRCS) tests/bench/workloads.h tests/host/port_host.h \
                 $(wildcard include/labyrinth/*.h mm/*.h) tests/bench/bench.mk
BENCH_BINS    := $(BENCH_BUILD)/bench $(BENCH_BUILD)/bench-nodebug
BENCH_IR_BINS := $(BENCH_BUILD)/bench-ir $(BENCH_BUILD)/bench-ir-nodebug
BENCH_ARGS    ?=

.PHONY: bench bench-ir bench-build tools-bench

bench-build: $(BENCH_BINS) $(BENCH_IR_BINS)

tools-bench:
	@sh tests/scripts/ensure-tools.sh bench

$(BENCH_BUILD)/bench: $(BENCH_DEPS) | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) -o $@ $(BENCH_SRCS)

$(BENCH_BUILD)/bench-nodebug: $(BENCH_DEPS) | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) -DLMM_DEBUG=0 -o $@ $(BENCH_SRCS)

# The callgrind builds differ only in the driver's region markers (valgrind/callgrind.h).
$(BENCH_BUILD)/bench-ir: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) -DBENCH_CALLGRIND=1 -o $@ $(BENCH_SRCS)

$(BENCH_BUILD)/bench-ir-nodebug: $(BENCH_DEPS) | tools-host tools-bench
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_FLAGS) -DBENCH_CALLGRIND=1 -DLMM_DEBUG=0 -o $@ $(BENCH_SRCS)

bench: $(BENCH_BINS)
	@$(BENCH_BUILD)/bench --csv $(BENCH_BUILD)/bench.csv $(BENCH_ARGS)
	@printf '\n== The same with -DLMM_DEBUG=0 (not the shipped configuration)\n'
	@$(BENCH_BUILD)/bench-nodebug --csv $(BENCH_BUILD)/bench-nodebug.csv $(BENCH_ARGS)

bench-ir: $(BENCH_IR_BINS) | tools-bench
	@sh tests/bench/bench-ir.sh $(BENCH_BUILD) $(BENCH_IR_BINS)

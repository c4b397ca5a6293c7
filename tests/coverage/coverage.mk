# tests/coverage/coverage.mk - line and branch coverage of mm/ by the host mm tests.
#
#   make coverage         build, run, report per file, and apply the gates
#                         (LINE_MIN, default 100; BRANCH_MIN, default 95)
#   make coverage-build   build only (make test runs the gate through tests/run-all.sh)
#
# gcc --coverage, no sanitizers (their instrumentation adds branches of its own), -O0 so
# lines map one to one.  mm/ objects are compiled once and linked into every test, so
# the .gcda counts are the union over all tests.  -fprofile-update=atomic: test_mm_atomic
# runs mm/ on several threads, and racy counter updates would lose counts.
# -DLMM_COVERAGE_BUILD: alloc.c's forced-inline entry functions are ordinary functions
# here, so their branches are counted once, not once per constant-folded copy
# (mm/internal.h, lmm_inline_entry).

COV_BUILD  := $(BUILD)/coverage
COV_FLAGS  := -std=gnu11 -Iinclude -Itests/host -pthread $(HOST_WARN) -O0 -g -DLMM_PORT_MAX_CPUS=16 -DLMM_COVERAGE_BUILD $(HOST_IRQFLAGS)
COV_MM_OBJ := $(patsubst mm/%.c,$(COV_BUILD)/mm/%.o,$(MM_SRCS))
COV_BINS   := $(patsubst tests/host/%.c,$(COV_BUILD)/%,$(MM_TESTS))

.PHONY: coverage coverage-build tools-coverage
tools-coverage:
	@sh tests/scripts/ensure-tools.sh coverage

coverage-build: $(COV_BINS)
# Pattern-built objects would otherwise be deleted as intermediates (and rebuilt each run).
.SECONDARY: $(COV_MM_OBJ) $(COV_BUILD)/port_host.o $(COV_BUILD)/model.o

$(COV_BUILD)/mm/%.o: mm/%.c mm/internal.h include/labyrinth/*.h | tools-coverage
	@mkdir -p $(dir $@)
	$(HOSTCC) $(COV_FLAGS) --coverage -fprofile-update=atomic -c -o $@ $<

$(COV_BUILD)/port_host.o: $(HOST_PORT) tests/host/port_host.h include/labyrinth/*.h | tools-coverage
	@mkdir -p $(dir $@)
	$(HOSTCC) $(COV_FLAGS) -c -o $@ $<

$(COV_BUILD)/model.o: $(HOST_MODEL) tests/host/*.h include/labyrinth/*.h | tools-coverage
	@mkdir -p $(dir $@)
	$(HOSTCC) $(COV_FLAGS) -c -o $@ $<

$(COV_BUILD)/test_mm_%: tests/host/test_mm_%.c $(COV_MM_OBJ) $(COV_BUILD)/port_host.o $(COV_BUILD)/model.o tests/host/*.h | tools-coverage
	@mkdir -p $(dir $@)
	$(HOSTCC) $(COV_FLAGS) --coverage -o $@ $< $(COV_MM_OBJ) $(COV_BUILD)/port_host.o $(COV_BUILD)/model.o -lrt

coverage: coverage-build
	@BUILD=$(BUILD) sh tests/coverage/gate.sh

# tests/host/host.mk - host (Linux) builds of mm/ and the freestanding kernel parsers.
#
# Every tests/host/test_mm_*.c is one test program linked with mm/ and the host port;
# every tests/host/test_kernel_*.c is linked with the kernel's freestanding parsers.
# All of them are built with AddressSanitizer and UBSan; each prints one
# "PASS name" / "FAIL name: reason" line per case and exits non-zero on any failure.

HOST_BUILD  := $(BUILD)/host
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HOST_WARN   := -Wall -Wextra -Werror
# Threads play CPUs: up to 16 at once (port_host.c gives each live thread a slot).
# port_host.c saves "interrupts were off" as 1 and runs its handlers with them off:
# mm_port.h's LMM_PORT_IRQFLAGS_* (the bench's minimal port saves them the same way).
HOST_IRQFLAGS := -DLMM_PORT_IRQFLAGS_MASK=1 -DLMM_PORT_IRQFLAGS_ENABLED=0
HOST_COMMON := -std=gnu11 -Iinclude -Itests/host -pthread $(HOST_WARN) -DLMM_PORT_MAX_CPUS=16 $(HOST_IRQFLAGS)

MM_SRCS      := $(sort $(wildcard mm/*.c))
# Named as prerequisites: each binary is compiled and linked in one command, so there is
# no per-object dependency file, and an edit to mm/internal.h must still rebuild it.
MM_HDRS      := $(wildcard mm/*.h)
HOST_PORT    := tests/host/port_host.c
# The reference model (tests/host/model.h), linked into every mm test; test_mm_model drives it.
HOST_MODEL   := tests/host/model.c
KPARSE_SRCS  := kernel/multiboot2.c kernel/cmdline.c kernel/acpi.c

MM_TESTS     := $(sort $(wildcard tests/host/test_mm_*.c))
KERNEL_TESTS := $(sort $(wildcard tests/host/test_kernel_*.c))
HOST_TEST_BINS := $(patsubst tests/host/%.c,$(HOST_BUILD)/%,$(MM_TESTS) $(KERNEL_TESTS))
# The ThreadSanitizer build of test_mm_atomic (rules below).  Added before any rule
# names $(HOST_TEST_BINS): make expands a rule's prerequisites when it reads the rule.
HOST_TEST_BINS += $(HOST_BUILD)/test_mm_atomic_tsan

.PHONY: host-tests-build host-tests
host-tests-build: $(HOST_TEST_BINS)

$(HOST_BUILD)/test_mm_%: tests/host/test_mm_%.c $(MM_SRCS) $(MM_HDRS) $(HOST_PORT) $(HOST_MODEL) tests/host/*.h include/labyrinth/*.h | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_COMMON) $(HOSTCFLAGS) $(SAN_FLAGS) -o $@ $< $(MM_SRCS) $(HOST_PORT) $(HOST_MODEL) -lrt

$(HOST_BUILD)/test_kernel_%: tests/host/test_kernel_%.c $(KPARSE_SRCS) kernel/bytes.h tests/host/*.h include/labyrinth/*.h | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_COMMON) $(HOSTCFLAGS) $(SAN_FLAGS) -o $@ $< $(KPARSE_SRCS)

# test_mm_atomic also runs under ThreadSanitizer: the same sources built with
# -fsanitize=thread into $(HOST_BUILD)/tsan/, started by a small launcher (the same file
# with -DLMM_TSAN_LAUNCHER, no sanitizer) that turns off ASLR for it (some TSan runtimes
# cannot map some randomised layouts) and turns a TSan report into a FAIL line.  Built
# with clang (Debian's clang and libclang-rt-dev): gcc 12's TSan reports no race between
# two threads whose only link is a relaxed atomic flag (a memset on each side: clang's
# reports it, gcc's does not), so a missing release/acquire in mm/ would pass unseen.
TSAN_CC    ?= clang
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

$(HOST_BUILD)/tsan/test_mm_atomic: tests/host/test_mm_atomic.c $(MM_SRCS) $(MM_HDRS) $(HOST_PORT) tests/host/*.h include/labyrinth/*.h | tools-host
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(HOST_COMMON) $(HOSTCFLAGS) $(TSAN_FLAGS) -o $@ $< $(MM_SRCS) $(HOST_PORT) -lrt

$(HOST_BUILD)/test_mm_atomic_tsan: tests/host/test_mm_atomic.c $(HOST_BUILD)/tsan/test_mm_atomic | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_COMMON) $(HOSTCFLAGS) -DLMM_TSAN_LAUNCHER -o $@ $<

host-tests: host-tests-build
	@set -e; for t in $(HOST_TEST_BINS); do echo "== $$t"; $$t; done

# The model test at length: OPS=10000000 on each of MODEL_LONG_SEEDS, timed (not in make test).
MODEL_LONG_SEEDS ?= 1 2 3
MODEL_LONG_OPS ?= 10000000
.PHONY: model-long
model-long: $(HOST_BUILD)/test_mm_model
	@set -e; for s in $(MODEL_LONG_SEEDS); do \
		t0=$$(date +%s); SEED=$$s OPS=$(MODEL_LONG_OPS) $(HOST_BUILD)/test_mm_model; \
		echo "model-long: SEED=$$s OPS=$(MODEL_LONG_OPS): $$(($$(date +%s) - t0)) s"; done

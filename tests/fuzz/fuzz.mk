# tests/fuzz/fuzz.mk - libFuzzer targets (clang): mm/ against the reference model, and the
# kernel's two boot-input parsers.
#
#   make fuzz          fuzz each target for a share of FUZZ_SECONDS (default 180 in all),
#                      corpus kept in build/fuzz/corpus/<target>, crashes in build/fuzz/artifacts/
#   make fuzz-build    build the targets only (make test replays tests/fuzz/corpus/ with them)
#   make fuzz-seeds    regenerate the committed seed corpus (short run, then -merge=1)
#
# Same sanitizers as the host tier; clang because libFuzzer is clang's.

FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 180
FUZZ_SAN     := -std=gnu11 -Iinclude -Itests/host -g -O1 -pthread -Wall -Wextra -Werror \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS   := $(FUZZ_SAN) -fsanitize=fuzzer
FUZZ_TARGETS := fuzz_mm fuzz_multiboot2 fuzz_cmdline
FUZZ_BINS    := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build fuzz-seeds tools-fuzz
tools-fuzz:
	@sh tests/scripts/ensure-tools.sh fuzz

fuzz-build: $(FUZZ_BINS)
.SECONDARY: $(FUZZ_BUILD)/obj/model.o $(FUZZ_BUILD)/obj/port_host.o

# The model and the port are scaffolding: sanitized, but without libFuzzer's coverage
# instrumentation, so its feedback is about mm/ and the decoder (and the model's page
# loops do not spend most of each run in comparison tracing).
FUZZ_SCAFFOLD := $(FUZZ_BUILD)/obj/model.o $(FUZZ_BUILD)/obj/port_host.o

$(FUZZ_BUILD)/obj/%.o: tests/host/%.c tests/host/*.h include/labyrinth/*.h | tools-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_mm: tests/fuzz/fuzz_mm.c $(FUZZ_SCAFFOLD) $(MM_SRCS) $(MM_HDRS) tests/host/*.h include/labyrinth/*.h | tools-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_mm.c $(MM_SRCS) $(FUZZ_SCAFFOLD) -lrt

$(FUZZ_BUILD)/fuzz_multiboot2: tests/fuzz/fuzz_multiboot2.c kernel/multiboot2.c kernel/bytes.h include/labyrinth/*.h | tools-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)

$(FUZZ_BUILD)/fuzz_cmdline: tests/fuzz/fuzz_cmdline.c kernel/cmdline.c tests/host/cmdline_table.h include/labyrinth/*.h | tools-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) sh tests/fuzz/run-fuzz.sh fuzz

fuzz-seeds: fuzz-build
	@BUILD=$(BUILD) sh tests/fuzz/run-fuzz.sh seeds


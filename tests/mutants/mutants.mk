# tests/mutants/mutants.mk - the mutation gate (tests/mutants/run-mutants.sh).
#
#   make mutants                      every mutant in tests/mutants/mutants.txt
#   make mutants MUTANTS=a,b          a subset, by name
#   make mutants MUTANTS_FUZZ=1       also replay the fuzz_mm corpus against survivors
#
# Each mutant is a copy of mm/ with one literal edit, built with the host tier's flags
# and sanitizers and run against the host mm tests; one they all miss is run against
# the ThreadSanitizer build of test_mm_atomic too.  An entry with "host: s390x" is built
# with the s390x cross compiler (tests/cross/cross.mk's flags) and run under qemu-s390x.  The summary line is exactly
# "mutants: N killed, M survived", followed by one "survivor: name" line per survivor.

MUTANTS ?=
MUTANTS_FUZZ ?= 0

.PHONY: mutants
mutants: | tools-host tools-cross
	@BUILD=$(BUILD) HOSTCC='$(HOSTCC)' MUTANTS='$(MUTANTS)' MUTANTS_FUZZ='$(MUTANTS_FUZZ)' \
		CROSS_CC_S390X='$(CROSS_CC.s390x)' \
		MUT_CROSS_CFLAGS='$(filter-out -MMD -MP,$(CROSS_COMMON)) $(CROSS_HOSTCPUS) $(CROSS_CFLAGS.s390x)' \
		FUZZ_CC='$(FUZZ_CC)' FUZZ_SAN='$(FUZZ_SAN)' FUZZ_FLAGS='$(FUZZ_FLAGS)' \
		MUT_CFLAGS='$(HOST_COMMON) $(HOSTCFLAGS) $(SAN_FLAGS)' \
		TSAN_CC='$(TSAN_CC)' MUT_TSAN_CFLAGS='$(HOST_COMMON) $(HOSTCFLAGS) $(TSAN_FLAGS)' \
		sh tests/mutants/run-mutants.sh

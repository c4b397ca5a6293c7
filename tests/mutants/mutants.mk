# tests/mutants/mutants.mk - the mutation gate (tests/mutants/run-mutants.sh).
#
#   make mutants                      every mutant in tests/mutants/mutants.txt
#   make mutants MUTANTS=a,b          a subset, by name
#
# Each mutant is a copy of mm/ with one literal edit, built with the host tier's flags
# and sanitizers and run against the host mm tests; the last line is exactly
# "mutants: N killed, M survived".

MUTANTS ?=

.PHONY: mutants
mutants: | tools-host
	@BUILD=$(BUILD) HOSTCC='$(HOSTCC)' MUTANTS='$(MUTANTS)' \
		MUT_CFLAGS='$(filter-out -MMD -MP,$(HOST_COMMON)) $(HOSTCFLAGS) $(SAN_FLAGS)' \
		sh tests/mutants/run-mutants.sh

# tests/cross/cross.mk - the same mm/ sources and host test suite on several hosts.
#
#   make cross-build    build every variant below into build/cross/VARIANT/
#   make cross-tests    build and run them: one PASS/FAIL line per host (make test runs
#                       them too, through tests/cross/run-cross.sh)
#
# Variants: gcc and clang for x86-64 at -O0 and -O2; gcc -m32 (i386: pointers are 32
# bits, physical addresses stay 64); aarch64, riscv64 and s390x (the one big-endian host:
# the frame word's byte order) with Debian's cross compilers, run under qemu-user.
# Every tests/host/test_mm_*.c present when make runs is built, with tests/host/port_host.c, and so are both example ports of tests/embed/ (embed-example,
# embed-teach: each with mm/ compiled for its own LMM_PORT_* knobs).  For the cross
# compilers, libmm.a is also built freestanding (as a kernel would) for the nm check of
# tests/embed/isolation.sh.  All carry UBSan in trap mode, which needs no runtime library
# (the host suite proper, tests/host/host.mk, already runs under ASan+UBSan and TSan).

CROSS_DIR      := $(BUILD)/cross
CROSS_VARIANTS := gcc-O0 gcc-O2 clang-O0 clang-O2 gcc-m32 aarch64 riscv64 s390x
CROSS_TESTS    := $(sort $(wildcard tests/host/test_mm_*.c))
CROSS_LIBSRCS  := $(sort $(wildcard mm/*.c)) tests/host/port_host.c tests/host/model.c
CROSS_COMMON   := -std=gnu11 -Iinclude -Itests/host -pthread -Wall -Wextra -Werror -MMD -MP
CROSS_UBTRAP   := -fsanitize=undefined -fsanitize-undefined-trap-on-error
# The host suite's threads are CPUs: as many slots as tests/host/host.mk gives them.
CROSS_HOSTCPUS := -DLMM_PORT_MAX_CPUS=16

CROSS_CC.gcc-O0       := gcc
CROSS_CFLAGS.gcc-O0   := -O0 -g $(CROSS_UBTRAP)
CROSS_CC.gcc-O2       := gcc
CROSS_CFLAGS.gcc-O2   := -O2 -g $(CROSS_UBTRAP)
CROSS_CC.clang-O0     := clang
CROSS_CFLAGS.clang-O0 := -O0 -g $(CROSS_UBTRAP)
CROSS_CC.clang-O2     := clang
CROSS_CFLAGS.clang-O2 := -O2 -g $(CROSS_UBTRAP)
CROSS_CC.gcc-m32      := gcc
CROSS_CFLAGS.gcc-m32  := -m32 -O2 -g $(CROSS_UBTRAP) -idirafter $(CROSS_DIR)/gcc-m32/include
# Debian's gcc-multilib, which links /usr/include/asm to the x86 kernel headers (one set
# for both word sizes), conflicts with the cross compilers; gcc-12-multilib does not but
# lacks the link, so the build makes its own.
CROSS_PREREQ.gcc-m32  := $(CROSS_DIR)/gcc-m32/include/asm
$(CROSS_DIR)/gcc-m32/include/asm:
	@mkdir -p $(dir $@)
	ln -sfn /usr/include/x86_64-linux-gnu/asm $@
CROSS_CC.aarch64      := aarch64-linux-gnu-gcc
CROSS_CFLAGS.aarch64  := -O2 -g $(CROSS_UBTRAP)
CROSS_CC.riscv64      := riscv64-linux-gnu-gcc
CROSS_CFLAGS.riscv64  := -O2 -g $(CROSS_UBTRAP)
CROSS_CC.s390x        := s390x-linux-gnu-gcc
CROSS_CFLAGS.s390x    := -O2 -g $(CROSS_UBTRAP)

# The example ports: one program each, from their sources and mm/'s, with their knobs.
CROSS_EMBED.embed-example := tests/embed/example_port.c tests/embed/example_main.c
CROSS_EFLAGS.embed-example :=
CROSS_EMBED.embed-teach   := tests/embed/teach_port.c tests/embed/teach_main.c
CROSS_EFLAGS.embed-teach  := -DLMM_PORT_MAX_CPUS=3 -DLMM_PORT_PHYS_BITS=56
CROSS_EMBEDS := embed-example embed-teach

# libmm.a, freestanding, for the hosts whose nm table mm/README.md gives (section 1).
CROSS_LIBMM_FLAGS.aarch64 := -mgeneral-regs-only -mno-outline-atomics -DLMM_PORT_MAX_CPUS=4
CROSS_LIBMM_FLAGS.riscv64 := -mcmodel=medany -fno-pic -DLMM_PORT_MAX_CPUS=4 -DLMM_PORT_PHYS_BITS=56
CROSS_LIBMM_FLAGS.s390x   := -msoft-float -DLMM_PORT_MAX_CPUS=4
CROSS_LIBMM_VARIANTS := aarch64 riscv64 s390x

# cross_variant NAME: objects, test programs and a cross-build-NAME target.  The flags
# are kept in a file the objects depend on, so changing them rebuilds the variant.
define cross_variant
$(CROSS_DIR)/$(1)/flags: FORCE
	@mkdir -p $$(dir $$@)
	@echo '$$(CROSS_CC.$(1)) $$(CROSS_COMMON) $$(CROSS_HOSTCPUS) $$(CROSS_CFLAGS.$(1))' | cmp -s - $$@ || \
		echo '$$(CROSS_CC.$(1)) $$(CROSS_COMMON) $$(CROSS_HOSTCPUS) $$(CROSS_CFLAGS.$(1))' >$$@

$(CROSS_DIR)/$(1)/obj/%.o: %.c $(CROSS_DIR)/$(1)/flags | tools-cross $(CROSS_PREREQ.$(1))
	@mkdir -p $$(dir $$@)
	$$(CROSS_CC.$(1)) $$(CROSS_COMMON) $$(CROSS_HOSTCPUS) $$(CROSS_CFLAGS.$(1)) -c $$< -o $$@

$(CROSS_DIR)/$(1)/test_mm_%: $(CROSS_DIR)/$(1)/obj/tests/host/test_mm_%.o \
		$(patsubst %.c,$(CROSS_DIR)/$(1)/obj/%.o,$(CROSS_LIBSRCS))
	$$(CROSS_CC.$(1)) $$(CROSS_CFLAGS.$(1)) -pthread -o $$@ $$^ -lrt

.PHONY: cross-build-$(1)
cross-build-$(1): $(patsubst tests/host/%.c,$(CROSS_DIR)/$(1)/%,$(CROSS_TESTS)) \
	$(addprefix $(CROSS_DIR)/$(1)/,$(CROSS_EMBEDS)) $(if $(filter $(1),$(CROSS_LIBMM_VARIANTS)),$(CROSS_DIR)/$(1)/libmm.a)
endef

# cross_embed VARIANT PORT: one example port for one variant.
define cross_embed
$(CROSS_DIR)/$(1)/$(2): $(CROSS_EMBED.$(2)) $(sort $(wildcard mm/*.c)) mm/internal.h include/labyrinth/mm.h \
		include/labyrinth/mm_port.h tests/embed/example.h tests/embed/example_hooks.h tests/embed/teach.h $(CROSS_DIR)/$(1)/flags \
		| tools-cross $(CROSS_PREREQ.$(1))
	@mkdir -p $$(dir $$@)
	$$(CROSS_CC.$(1)) $$(filter-out -MMD -MP,$$(CROSS_COMMON)) $$(CROSS_CFLAGS.$(1)) $(CROSS_EFLAGS.$(2)) -o $$@ \
		$(CROSS_EMBED.$(2)) $(sort $(wildcard mm/*.c)) -lrt
endef
$(foreach v,$(CROSS_VARIANTS),$(foreach e,$(CROSS_EMBEDS),$(eval $(call cross_embed,$(v),$(e)))))

# cross_libmm NAME: mm/*.c freestanding for that compiler, into $(CROSS_DIR)/NAME/libmm.a.
define cross_libmm
$(CROSS_DIR)/$(1)/libmm/%.o: mm/%.c mm/internal.h include/labyrinth/mm.h include/labyrinth/mm_port.h \
		$(CROSS_DIR)/$(1)/flags | tools-cross
	@mkdir -p $$(dir $$@)
	$$(CROSS_CC.$(1)) -std=gnu11 -O2 -ffreestanding -nostdinc -isystem $$$$($$(CROSS_CC.$(1)) -print-file-name=include) \
		-Iinclude -Wall -Wextra -Werror $$(CROSS_LIBMM_FLAGS.$(1)) -c $$< -o $$@

$(CROSS_DIR)/$(1)/libmm.a: $(patsubst mm/%.c,$(CROSS_DIR)/$(1)/libmm/%.o,$(sort $(wildcard mm/*.c)))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach v,$(CROSS_LIBMM_VARIANTS),$(eval $(call cross_libmm,$(v))))
$(foreach v,$(CROSS_VARIANTS),$(eval $(call cross_variant,$(v))))

.PHONY: cross-build cross-tests tools-cross FORCE
FORCE:
cross-build: $(addprefix cross-build-,$(CROSS_VARIANTS))
cross-tests:
	@sh tests/cross/run-cross.sh
tools-cross:
	@sh tests/scripts/ensure-tools.sh cross

-include $(wildcard $(CROSS_DIR)/*/obj/mm/*.d $(CROSS_DIR)/*/obj/tests/host/*.d)

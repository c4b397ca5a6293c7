# tests/embed/embed.mk - mm/ as a drop-in library (issue 7; guide: mm/README.md).
#
#   make libmm           build/libmm/libmm.a: mm/ alone, compiled for the kernel's target
#                        with its freestanding flags, seeing only the compiler's
#                        freestanding headers and the two public headers (copied alone
#                        into build/libmm/include: nothing else in include/ is reachable)
#   make embed-build     everything tests/embed/run-embed.sh runs: the kernel relinked
#                        against libmm.a, the porting guide's example as printed, and
#                        the example port in tests/embed/
#   make embed-tests     build and run them (PASS/FAIL lines; make test runs them too)

LIBMM_DIR    := $(BUILD)/libmm
LIBMM        := $(LIBMM_DIR)/libmm.a
LIBMM_INC    := $(LIBMM_DIR)/include
LIBMM_HDRS   := $(LIBMM_INC)/labyrinth/mm.h $(LIBMM_INC)/labyrinth/mm_port.h
LIBMM_SRCS   := $(sort $(wildcard mm/*.c))
LIBMM_OBJ    := $(patsubst mm/%.c,$(LIBMM_DIR)/obj/%.o,$(LIBMM_SRCS))
# The kernel's own flags, less its include paths.
LIBMM_CFLAGS := $(filter-out -I%,$(KERNEL_CFLAGS)) -I$(LIBMM_INC)

AR ?= ar
ifeq ($(origin AR),default)
AR := ar
endif

$(LIBMM_INC)/labyrinth/%.h: include/labyrinth/%.h
	@mkdir -p $(dir $@)
	cp $< $@

$(LIBMM_DIR)/obj/%.o: mm/%.c $(LIBMM_HDRS) | tools-host
	@mkdir -p $(dir $@)
	$(CC) $(LIBMM_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIBMM): $(LIBMM_OBJ)
	@rm -f $@
	$(AR) rcs $@ $(LIBMM_OBJ)

# "In the Labyrinth kernel itself": the kernel's objects less its own mm/ objects,
# linked against libmm.a with the kernel's linker script.
LIBMM_KERNEL := $(LIBMM_DIR)/labyrinth-libmm.elf
$(LIBMM_KERNEL): $(filter-out $(BUILD)/kobj/mm/%,$(KERNEL_OBJ)) $(LIBMM) linker.ld
	$(LD) $(KERNEL_LDFLAGS) -o $@ $(filter-out $(BUILD)/kobj/mm/%,$(KERNEL_OBJ)) $(LIBMM)

# ---- The porting guide's code, exactly as printed -------------------------------------

EMBED_DIR    := $(BUILD)/embed
# guide_port.c/guide_irq.c (one CPU) and guide_port_smp.c (several) define the same hooks:
# each is linked into its own program; guide_pushoff.c is compiled only.
GUIDE_COMMON := guide_init guide_e820 guide_uefi guide_limine
GUIDE_BLOCKS := guide_irq guide_port guide_port_smp guide_pushoff $(GUIDE_COMMON)
GUIDE_SRCS   := $(patsubst %,$(EMBED_DIR)/guide/%.c,$(GUIDE_BLOCKS))
GUIDE_UP     := $(patsubst %,$(EMBED_DIR)/guide/%.c,guide_irq guide_port $(GUIDE_COMMON))
GUIDE_SMP    := $(patsubst %,$(EMBED_DIR)/guide/%.c,guide_port_smp $(GUIDE_COMMON))
GUIDE_SMP_CPUS := 8
EMBED_WARN   := -Wall -Wextra -Werror
# Hosted builds see the public headers only (the copies above), never tests/host/.
EMBED_HOSTCFLAGS := -std=c11 -O2 -g $(EMBED_WARN) -I$(LIBMM_INC) -fsanitize=address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer

# The programs below compile the extracted sources themselves: keep them after the build.
.SECONDARY: $(GUIDE_SRCS)
$(EMBED_DIR)/guide/%.c: mm/README.md tests/embed/extract.sh
	@mkdir -p $(dir $@)
	sh tests/embed/extract.sh mm/README.md $*.c >$@

# Compiled as a kernel would: freestanding, the kernel's flags, public headers only, with
# the CPU count each port is written for (the guide's one-CPU port asserts 1)...
GUIDE_KCFLAGS := $(filter-out -DLMM_PORT_MAX_CPUS=%,$(LIBMM_CFLAGS))
$(EMBED_DIR)/guide/%.o: $(EMBED_DIR)/guide/%.c $(LIBMM_HDRS) | tools-host
	$(CC) $(GUIDE_KCFLAGS) $(CFLAGS) $(if $(filter guide_port_smp,$*),-DLMM_PORT_MAX_CPUS=$(GUIDE_SMP_CPUS)) \
		-c $< -o $@

# ...and linked into Linux programs with a tiny shim standing for the rest of the kernel.
$(EMBED_DIR)/guide-example: $(GUIDE_SRCS:.c=.o) tests/embed/guide_shim.c $(LIBMM_SRCS) \
		$(LIBMM_HDRS) mm/internal.h | tools-host
	$(HOSTCC) $(EMBED_HOSTCFLAGS) -pthread -o $@ $(GUIDE_UP) tests/embed/guide_shim.c $(LIBMM_SRCS)

$(EMBED_DIR)/guide-smp-example: $(GUIDE_SRCS:.c=.o) tests/embed/guide_shim.c $(LIBMM_SRCS) \
		$(LIBMM_HDRS) mm/internal.h | tools-host
	$(HOSTCC) $(EMBED_HOSTCFLAGS) -pthread -DGUIDE_SMP -DLMM_PORT_MAX_CPUS=$(GUIDE_SMP_CPUS) -o $@ \
		$(GUIDE_SMP) tests/embed/guide_shim.c $(LIBMM_SRCS)

# ---- The example port: a newcomer's port, from the guide alone ------------------------

EMBED_EXAMPLE := $(EMBED_DIR)/example
$(EMBED_EXAMPLE): tests/embed/example_port.c tests/embed/example_main.c tests/embed/example.h \
		tests/embed/example_hooks.h $(LIBMM_SRCS) $(LIBMM_HDRS) mm/internal.h | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(EMBED_HOSTCFLAGS) -o $@ tests/embed/example_port.c tests/embed/example_main.c \
		$(LIBMM_SRCS)

# The same port with its seven hooks on the common path static inline in mm/ (mm_port.h,
# LMM_PORT_INLINE_HEADER): one header, example_hooks.h, serves both builds.
EMBED_EXAMPLE_INLINE := $(EMBED_DIR)/example-inline
$(EMBED_EXAMPLE_INLINE): tests/embed/example_port.c tests/embed/example_main.c tests/embed/example.h \
		tests/embed/example_hooks.h $(LIBMM_SRCS) $(LIBMM_HDRS) mm/internal.h | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(EMBED_HOSTCFLAGS) -Itests/embed '-DLMM_PORT_INLINE_HEADER="example_hooks.h"' -o $@ \
		tests/embed/example_port.c tests/embed/example_main.c $(LIBMM_SRCS)

# ---- The second example port: a teaching kernel (xv6 style, RISC-V layout) -------------

TEACH_FLAGS   := -DLMM_PORT_MAX_CPUS=3 -DLMM_PORT_PHYS_BITS=56
EMBED_TEACH   := $(EMBED_DIR)/teach
$(EMBED_TEACH): tests/embed/teach_port.c tests/embed/teach_main.c tests/embed/teach.h \
		$(LIBMM_SRCS) $(LIBMM_HDRS) mm/internal.h | tools-host
	@mkdir -p $(dir $@)
	$(HOSTCC) $(EMBED_HOSTCFLAGS) $(TEACH_FLAGS) -pthread -o $@ tests/embed/teach_port.c \
		tests/embed/teach_main.c $(LIBMM_SRCS)

.PHONY: embed-build embed-tests
embed-build: $(LIBMM) $(LIBMM_KERNEL) $(EMBED_DIR)/guide-example $(EMBED_DIR)/guide-smp-example $(EMBED_EXAMPLE) \
             $(EMBED_EXAMPLE_INLINE) $(EMBED_TEACH)
embed-tests:
	@sh tests/embed/run-embed.sh

-include $(LIBMM_OBJ:.o=.d) $(GUIDE_SRCS:.c=.d)

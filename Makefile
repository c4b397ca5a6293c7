# Labyrinth - top-level build.
#
#   make            build build/labyrinth.iso
#   make run        boot it in QEMU, serial console on this terminal
#   make debug      boot it halted with a gdb stub
#   make test       every test: host (mm/ under sanitizers), kernel boot tests
#   make libmm      build/libmm/libmm.a: mm/ alone for the kernel's target (mm/README.md)
#   make picture    boot once, draw build/pictures/memory-{boot,after-stress}.png
#   make fuzz       fuzz mm/ (against the reference model) and the boot parsers, FUZZ_SECONDS
#   make coverage   line and branch coverage of mm/ by the host tests, against the gates
#   make mutants    the mutation gate: each mutant of mm/ in tests/mutants/mutants.txt must fail
#                   the host tests (MUTANTS=a,b for a subset)
#   make model-long the model test for 10M operations on three seeds (minutes; not in make test)
#   make clean      remove build/
#
# User-overridable: CC, HOSTCC, CFLAGS, HOSTCFLAGS, QEMU_MEM, QEMU_SMP, CMDLINE, QEMU_TIMEOUT.
# The flags the kernel *needs* live in KERNEL_CFLAGS and are not overridable.

MAKEFLAGS += -rR --no-print-directory
.SUFFIXES:
.DELETE_ON_ERROR:

BUILD   ?= build
CC      ?= gcc
ifeq ($(origin CC),default)
CC      := gcc
endif
HOSTCC  ?= gcc
LD      ?= ld
ifeq ($(origin LD),default)
LD      := ld
endif
NASM    ?= nasm
CFLAGS  ?= -O2 -g
HOSTCFLAGS ?= -O1 -g

# ---- The kernel ----------------------------------------------------------------

KERNEL_CFLAGS := -std=gnu11 -ffreestanding -fno-builtin -nostdlib -nostdinc \
	-isystem $(shell $(CC) -print-file-name=include) \
	-mno-red-zone -mcmodel=kernel -fno-pic -fno-pie -fno-stack-protector \
	-mgeneral-regs-only -mno-mmx -mno-sse -mno-sse2 -fno-omit-frame-pointer \
	-fno-asynchronous-unwind-tables -Wall -Wextra -Werror -Iinclude -Iarch/x86_64 -Itests/bench \
	-DLMM_PORT_MAX_CPUS=16 \
	-MMD -MP
# kernel/mm_port.c saves RFLAGS, and its handlers run with IF clear (interrupt gates, no
# sti inside): mm_port.h's LMM_PORT_IRQFLAGS_*.  Not in KERNEL_CFLAGS: embed.mk builds
# other ports' mm/ with those.
KERNEL_MM_PORT := -DLMM_PORT_IRQFLAGS_MASK=0x200 -DLMM_PORT_IRQFLAGS_ENABLED=0x200
KERNEL_LDFLAGS := -n -nostdlib -static -z max-page-size=0x1000 -z noexecstack -T linker.ld

# tests/bench/workloads.c: the benchmark loops, shared with the host benchmark (mode=bench).
KERNEL_C   := $(sort $(wildcard kernel/*.c arch/x86_64/*.c mm/*.c)) tests/bench/workloads.c
KERNEL_ASM := $(sort $(wildcard boot/*.asm arch/x86_64/*.asm))
KERNEL_OBJ := $(patsubst %.c,$(BUILD)/kobj/%.o,$(KERNEL_C)) \
              $(patsubst %.asm,$(BUILD)/kobj/%.asm.o,$(KERNEL_ASM))

KERNEL_ELF := $(BUILD)/labyrinth.elf
ISO        := $(BUILD)/labyrinth.iso

.PHONY: all iso kernel run debug bench-qemu test test-host clean tools tools-host
all: iso
iso: $(ISO)
kernel: $(KERNEL_ELF)

$(BUILD)/kobj/%.o: %.c | tools
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) $(KERNEL_MM_PORT) $(CFLAGS) -c $< -o $@

$(BUILD)/kobj/%.asm.o: %.asm | tools
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -w+all -w+error -Iboot/ -o $@ $<

$(KERNEL_ELF): $(KERNEL_OBJ) linker.ld
	$(LD) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJ)

$(ISO): $(KERNEL_ELF) boot/grub.cfg
	@rm -rf $(BUILD)/isodir && mkdir -p $(BUILD)/isodir/boot/grub
	cp $(KERNEL_ELF) $(BUILD)/isodir/boot/labyrinth.elf
	cp boot/grub.cfg $(BUILD)/isodir/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(BUILD)/isodir >$(BUILD)/grub-mkrescue.log 2>&1 || \
		{ cat $(BUILD)/grub-mkrescue.log; exit 1; }

# Installs what is missing (apt-get as root or via sudo) or stops with the command to run.
tools:
	@sh tests/scripts/ensure-tools.sh kernel
tools-host:
	@sh tests/scripts/ensure-tools.sh host

# ---- Running it -----------------------------------------------------------------

QEMU_MEM     ?= 256M
QEMU_SMP     ?= 2
QEMU_TIMEOUT ?= 300
CMDLINE      ?=
QEMU_EXTRA   ?=

run: $(ISO)
	@sh tests/qemu/qemu-boot.sh --iso $(ISO) --mem '$(QEMU_MEM)' --smp '$(QEMU_SMP)' \
		--timeout '$(QEMU_TIMEOUT)' --cmdline '$(CMDLINE)' -- $(QEMU_EXTRA)

# The in-kernel benchmarks (W1, W2, W5 against free-list baselines) on their own boot.
bench-qemu: $(ISO)
	@sh tests/qemu/qemu-boot.sh --iso $(ISO) --mem 256M --smp 1 --timeout '$(QEMU_TIMEOUT)' \
		--cmdline 'mode=bench' -- $(QEMU_EXTRA)

debug: $(ISO)
	@sh tests/qemu/qemu-boot.sh --iso $(ISO) --mem '$(QEMU_MEM)' --smp '$(QEMU_SMP)' \
		--timeout 0 --cmdline '$(CMDLINE)' --gdb $(KERNEL_ELF) -- $(QEMU_EXTRA)

# ---- Host builds of mm/ and the tests -------------------------------------------

include tests/host/host.mk
include tests/bench/bench.mk
include tests/fuzz/fuzz.mk
include tests/coverage/coverage.mk
include tests/mutants/mutants.mk

# ---- mm/ as a library, its porting guide's example, and the multi-host proof ------

include tests/embed/embed.mk
include tests/cross/cross.mk

# ---- The picture of physical memory (make picture) ---------------------------------

include tests/picture/picture.mk

.PHONY: libmm
libmm: $(LIBMM)

test: $(ISO) host-tests-build bench-build $(MMPICTURE) fuzz-build coverage-build
	@sh tests/run-all.sh

clean:
	rm -rf $(BUILD)

-include $(KERNEL_OBJ:.o=.d)

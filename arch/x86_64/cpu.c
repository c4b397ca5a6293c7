/*
 * cpu.c - small CPU-wide services: per-CPU state, halting, leaving QEMU.
 */
#include "internal.h"

#define QEMU_EXIT_PORT 0xf4

struct percpu percpu[ARCH_MAX_CPUS];

unsigned arch_in_interrupt(void)
{
	return this_cpu()->irq_depth;
}

_Noreturn void arch_halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

_Noreturn void arch_exit_qemu(uint8_t code)
{
	cli();
	/* QEMU with isa-debug-exit stops here; elsewhere the write is ignored. */
	outb(QEMU_EXIT_PORT, code);
	arch_halt_forever();
}

void arch_wait_for_interrupt(void)
{
	sti_hlt();
}

uint64_t arch_read_tsc(void)
{
	return rdtsc();
}

void arch_cpu_init(void)
{
	gdt_init();
	idt_init();
	pic_init();
}

/*
 * cpu.c - small CPU-wide services: per-CPU state, halting, leaving QEMU.
 */
#include <stddef.h>

#include "internal.h"

#define QEMU_EXIT_PORT 0xf4

_Static_assert(offsetof(struct percpu, id) == ARCH_PERCPU_ID_OFFSET,
	       "arch_cpu_id() reads percpu.id at ARCH_PERCPU_ID_OFFSET");

/* CPU 0's block is all zeroes until arch_cpu_init: id 0, which is what it must read. */
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
	/*
	 * Whoever ends the run stops the other CPUs first: QEMU's exit takes them all, but on
	 * real hardware the write below is ignored and they would run on.
	 */
	arch_stop_other_cpus();
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
	gdt_init_cpu(0);
	idt_init();
	pic_init();
}

bool arch_hypervisor_present(void)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	return (c >> 31) & 1;
}

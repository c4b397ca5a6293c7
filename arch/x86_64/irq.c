/*
 * irq.c - legacy IRQ dispatch: spurious check, handler, EOI.
 *
 * The stubs in isr.asm enter arch_irq_dispatch through interrupt gates, so IF=0 for
 * the whole handler and nothing re-enters it; irq_depth tells arch_in_interrupt()
 * callers (the allocator's context check) that they are inside a handler.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

static arch_irq_handler_t handlers[ARCH_NR_IRQS];
static struct arch_irq_stats stats;

bool arch_irq_register(unsigned irq, arch_irq_handler_t handler)
{
	if (irq >= ARCH_NR_IRQS || !handler)
		return false;

	arch_irqflags_t flags = arch_irq_save();
	bool ok = handlers[irq] == NULL;
	if (ok) {
		handlers[irq] = handler;
		pic_set_mask(irq, false);
	}
	arch_irq_restore(flags);
	return ok;
}

static void irq_set_masked(unsigned irq, bool masked)
{
	if (irq >= ARCH_NR_IRQS)
		return;
	arch_irqflags_t flags = arch_irq_save();
	pic_set_mask(irq, masked);
	arch_irq_restore(flags);
}

void arch_irq_mask(unsigned irq)
{
	irq_set_masked(irq, true);
}

void arch_irq_unmask(unsigned irq)
{
	irq_set_masked(irq, false);
}

void arch_irq_get_stats(struct arch_irq_stats *out)
{
	arch_irqflags_t flags = arch_irq_save();
	*out = stats;
	arch_irq_restore(flags);
}

_Noreturn static void irq_fatal(unsigned irq, const char *why, const struct arch_regs *regs)
{
	cli();
	kprintf("\nirq: FATAL: IRQ %u %s (interrupted RIP=%016lx, depth %u)\n", irq, why, regs->rip,
		this_cpu()->irq_depth);
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

void arch_irq_dispatch(uint64_t vector, struct arch_regs *regs)
{
	unsigned irq = (unsigned)(vector - ARCH_IRQ_BASE);
	struct percpu *cpu = this_cpu();

	if (irq >= ARCH_NR_IRQS)
		return; /* the stubs only cover 32..47: cannot happen */

	if ((irq == 7 || irq == 15) && pic_irq_is_spurious(irq)) {
		if (irq == 7)
			stats.spurious_master++;
		else
			stats.spurious_slave++;
		return;
	}

	/* Interrupt gates clear IF: arriving here nested means a handler enabled interrupts. */
	if (cpu->irq_depth != 0)
		irq_fatal(irq, "entered while another interrupt handler was running", regs);

	cpu->irq_depth++;
	stats.count[irq]++;
	if (handlers[irq])
		handlers[irq](irq, regs);
	else
		stats.unhandled++; /* masked lines cannot get here, but a race with mask can */
	if (arch_irqs_enabled())
		irq_fatal(irq, "handler returned with interrupts enabled", regs);
	pic_eoi(irq);
	cpu->irq_depth--;
}

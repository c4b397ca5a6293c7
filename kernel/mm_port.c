/*
 * mm_port.c - mm/'s eight port hooks for the Labyrinth kernel.
 *
 * Locks are arch/'s ticket spinlocks (named, holder-checked, irqsave-nesting), the
 * direct map is arch/'s, and the context comes from the CPU's interrupt flag and the
 * interrupt nesting depth arch/ keeps.  Owner tags: one per CPU and context, so a page
 * taken by a timer handler is owned by "cpu 0, interrupt", not by the code it interrupted.
 */
#include <labyrinth/arch.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/mm_port.h>
#include <labyrinth/panic.h>
#include <labyrinth/spinlock.h>

static struct spinlock *as_spinlock(lmm_port_lock_t *l)
{
	return (struct spinlock *)(void *)l->opaque;
}

void lmm_port_lock_init(lmm_port_lock_t *lock, const char *name)
{
	spin_lock_init(as_spinlock(lock), name);
}

lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *lock)
{
	return spin_lock_irqsave(as_spinlock(lock));
}

void lmm_port_unlock_irqrestore(lmm_port_lock_t *lock, lmm_irqflags_t flags)
{
	spin_unlock_irqrestore(as_spinlock(lock), flags);
}

void *lmm_port_phys_to_virt(uint64_t phys)
{
	return arch_phys_to_virt(phys);
}

enum lmm_context lmm_port_context(void)
{
	if (arch_in_interrupt())
		return LMM_CTX_INTERRUPT;
	return arch_irqs_enabled() ? LMM_CTX_NORMAL : LMM_CTX_IRQS_OFF;
}

uint16_t lmm_port_owner(void)
{
	return KMM_OWNER(arch_cpu_id(), arch_in_interrupt() != 0);
}

/*
 * mm/ logs every refused call, and the stress test refuses thousands on purpose: let a
 * burst of LOG_BURST refusal lines through per second, count the rest, and say how many
 * were dropped when the next one gets through.  Every refusal is still counted by mm/;
 * other lines (init, dump, check) always print.
 */
#define LOG_BURST 3

static bool is_refusal(const char *line)
{
	const char *p = "lmm: refused";
	while (*p && *line == *p)
		p++, line++;
	return *p == '\0';
}

void lmm_port_log(const char *line)
{
	static uint64_t window_start, in_window, suppressed;
	uint64_t second = arch_tsc_hz(), now = arch_read_tsc(), dropped = 0;
	bool print = true;

	if (!is_refusal(line)) {
		kprintf("%s\n", line);
		return;
	}

	arch_irqflags_t f = arch_irq_save();
	if (now - window_start > second) {
		window_start = now;
		in_window = 0;
		dropped = suppressed;
		suppressed = 0;
	}
	print = in_window++ < LOG_BURST;
	if (!print)
		suppressed++;
	arch_irq_restore(f);

	if (dropped)
		kprintf("lmm: (%lu more refusal lines suppressed)\n", dropped);
	if (print)
		kprintf("%s\n", line);
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	kpanic("mm: %s", reason);
}

/*
 * mm_port.c - mm/'s port hooks for the Labyrinth kernel.
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

_Static_assert(LMM_PORT_MAX_CPUS >= ARCH_MAX_CPUS, "every CPU the kernel starts needs an mm/ slot");

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

lmm_irqflags_t lmm_port_irq_save(void)
{
	return arch_irq_save();
}

void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	arch_irq_restore(flags);
}

lmm_irq_cpu_t lmm_port_irq_save_cpu(void)
{
	lmm_irqflags_t flags = arch_irq_save();
	return (lmm_irq_cpu_t){ flags, arch_cpu_id() }; /* interrupts off: no migration */
}

void lmm_port_log(const char *line)
{
	kprintf("%s\n", line);
}

/*
 * Refusals.  mm/ has counted each one already (stats.refused[]); this decides which to
 * show.  The first REPORTS_SHOWN of each reason are printed, the rest only counted here
 * and summed up by kernel_mm_report_summary(): the stress test refuses thousands on
 * purpose.  A record from a handler or with interrupts off is queued, never printed
 * there (a polled UART line is ~17 ms at 115200 baud), and printed by the next
 * normal-context report or kernel_mm_flush_reports().
 */
#define REPORTS_SHOWN 3
#define REPORT_QUEUE 32

static uint64_t reports_seen[LMM_STATUS_COUNT];
static struct {
	struct spinlock lock;
	struct lmm_report slot[REPORT_QUEUE];
	unsigned head, tail; /* head: next to print; both only under lock */
	uint64_t dropped;
} queue = { .lock = SPINLOCK_INIT("mm reports") };

static void print_report(const struct lmm_report *r)
{
	char line[224];
	lmm_report_format(r, line, sizeof(line));
	kprintf("%s\n", line);
}

void kernel_mm_flush_reports(void)
{
	for (;;) {
		struct lmm_report r;
		arch_irqflags_t f = spin_lock_irqsave(&queue.lock);
		bool have = queue.head != queue.tail;
		if (have)
			r = queue.slot[queue.head++ % REPORT_QUEUE];
		uint64_t dropped = queue.dropped;
		queue.dropped = 0;
		spin_unlock_irqrestore(&queue.lock, f);
		if (dropped)
			kprintf("lmm: %lu refusal reports from handlers not shown (queue full)\n", dropped);
		if (!have)
			return;
		print_report(&r);
	}
}

void lmm_port_report(const struct lmm_report *r)
{
	if (__atomic_fetch_add(&reports_seen[r->reason], 1, __ATOMIC_RELAXED) >= REPORTS_SHOWN)
		return;
	if (r->context == LMM_CTX_NORMAL) {
		kernel_mm_flush_reports();
		print_report(r);
		return;
	}
	arch_irqflags_t f = spin_lock_irqsave(&queue.lock);
	if (queue.tail - queue.head < REPORT_QUEUE)
		queue.slot[queue.tail++ % REPORT_QUEUE] = *r;
	else
		queue.dropped++;
	spin_unlock_irqrestore(&queue.lock, f);
}

void kernel_mm_report_summary(void)
{
	kernel_mm_flush_reports();
	for (unsigned st = 1; st < LMM_STATUS_COUNT; st++) {
		uint64_t n = __atomic_load_n(&reports_seen[st], __ATOMIC_RELAXED);
		if (n > REPORTS_SHOWN)
			kprintf("lmm: %lu refusals '%s': first %u shown\n", n, lmm_status_str((enum lmm_status)st),
				REPORTS_SHOWN);
	}
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	kpanic("mm: %s", reason);
}

/*
 * lapic.c - the local APIC in xAPIC mode: per-CPU enable, EOI, IPIs, and the timer that
 * ticks every AP (the boot CPU's tick stays the PIT through the 8259).
 *
 * The registers are 4 KiB of MMIO at the physical base IA32_APIC_BASE names (0xFEE00000
 * by default), mapped uncached at ARCH_HHDM_BASE + base by arch_paging_init().  Every CPU
 * sees its own APIC at the same address, so the mapping is shared.
 *
 * Vectors: 0xF0 the timer, 0xF1 a wakeup IPI (an AP sleeping in hlt), 0xFE the APIC
 * error interrupt, 0xFF the spurious vector.  A spurious interrupt gets no EOI (the APIC
 * did not set an in-service bit for it); every other local vector gets a LAPIC EOI, and
 * the 8259 lines keep their 8259 EOI in irq.c.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

#define REG_ID 0x020
#define REG_VERSION 0x030
#define REG_TPR 0x080
#define REG_EOI 0x0B0
#define REG_SVR 0x0F0
#define REG_ESR 0x280
#define REG_ICR_LOW 0x300
#define REG_ICR_HIGH 0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_LINT0 0x350
#define REG_LVT_LINT1 0x360
#define REG_LVT_ERROR 0x370
#define REG_TIMER_INIT 0x380
#define REG_TIMER_CUR 0x390
#define REG_TIMER_DIV 0x3E0

#define SVR_ENABLE (1u << 8)
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define ICR_PENDING (1u << 12)
#define TIMER_DIV_16 0x3u
#define CALIBRATE_US 10000u
/* Polls of the delivery-status bit before an IPI counts as lost. */
#define IPI_POLL_LIMIT 1000000u

static uint64_t lapic_base_phys;

static volatile uint32_t *reg(unsigned off)
{
	return (volatile uint32_t *)arch_phys_to_virt(lapic_base_phys + off);
}

static uint32_t rd(unsigned off) { return *reg(off); }
static void wr(unsigned off, uint32_t v) { *reg(off) = v; }

bool lapic_present(void)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	if (!((d >> 9) & 1))
		return false;
	/* Firmware left the APIC in x2APIC mode: MMIO is dead then, and x2APIC is not done here. */
	return !(rdmsr(X86_MSR_APIC_BASE) & X86_APIC_BASE_X2APIC);
}

uint64_t lapic_phys(void)
{
	return rdmsr(X86_MSR_APIC_BASE) & 0x000FFFFFFFFFF000ull;
}

void lapic_init_cpu(bool boot_cpu)
{
	if (!lapic_base_phys)
		lapic_base_phys = lapic_phys();
	uint64_t msr = rdmsr(X86_MSR_APIC_BASE);
	if (!(msr & X86_APIC_BASE_ENABLE))
		wrmsr(X86_MSR_APIC_BASE, msr | X86_APIC_BASE_ENABLE);

	wr(REG_TPR, 0);
	wr(REG_LVT_TIMER, LVT_MASKED | LAPIC_VEC_TIMER);
	wr(REG_LVT_ERROR, LAPIC_VEC_ERROR);
	/*
	 * The boot CPU keeps the firmware's LINT0 (ExtINT: the 8259 in virtual-wire mode,
	 * which carries the PIT) and LINT1 (NMI).  APs take no legacy interrupt at all.
	 */
	if (!boot_cpu) {
		wr(REG_LVT_LINT0, LVT_MASKED);
		wr(REG_LVT_LINT1, LVT_MASKED);
	}
	wr(REG_SVR, SVR_ENABLE | LAPIC_VEC_SPURIOUS);
	/* ESR latches on write: two writes clear anything firmware left. */
	wr(REG_ESR, 0);
	wr(REG_ESR, 0);
	lapic_eoi();
}

uint32_t lapic_id(void)
{
	return rd(REG_ID) >> 24;
}

void lapic_eoi(void)
{
	wr(REG_EOI, 0);
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low)
{
	arch_irqflags_t f = arch_irq_save();
	/* ICR high then low: the write to the low half sends. */
	wr(REG_ICR_HIGH, apic_id << 24);
	wr(REG_ICR_LOW, icr_low);
	uint32_t polls = 0;
	while ((rd(REG_ICR_LOW) & ICR_PENDING) && ++polls < IPI_POLL_LIMIT)
		cpu_pause();
	arch_irq_restore(f);
	return polls < IPI_POLL_LIMIT;
}

uint64_t lapic_timer_calibrate(void)
{
	static uint64_t hz; /* measured once, at boot, on the boot CPU */

	if (hz)
		return hz;
	arch_irqflags_t f = arch_irq_save();
	wr(REG_TIMER_DIV, TIMER_DIV_16);
	wr(REG_LVT_TIMER, LVT_MASKED | LAPIC_VEC_TIMER); /* one-shot, masked: just count */
	wr(REG_TIMER_INIT, 0xFFFFFFFFu);
	pit_wait_us(CALIBRATE_US);
	uint32_t left = rd(REG_TIMER_CUR);
	wr(REG_TIMER_INIT, 0);
	arch_irq_restore(f);
	hz = (uint64_t)(0xFFFFFFFFu - left) * (1000000 / CALIBRATE_US);
	return hz;
}

bool arch_local_timer_start(uint32_t hz, arch_irq_handler_t handler)
{
	uint64_t lhz = lapic_timer_calibrate();
	struct percpu *cpu = this_cpu();

	if (!lhz || !hz || !handler || !lapic_base_phys)
		return false;
	uint64_t count = (lhz + hz / 2) / hz;
	if (count == 0 || count > 0xFFFFFFFFu)
		return false;
	arch_irqflags_t f = arch_irq_save();
	cpu->timer_handler = handler;
	wr(REG_TIMER_DIV, TIMER_DIV_16);
	wr(REG_LVT_TIMER, LVT_PERIODIC | LAPIC_VEC_TIMER);
	wr(REG_TIMER_INIT, (uint32_t)count);
	arch_irq_restore(f);
	return true;
}

void arch_local_timer_stop(void)
{
	arch_irqflags_t f = arch_irq_save();
	if (lapic_base_phys) {
		wr(REG_LVT_TIMER, LVT_MASKED | LAPIC_VEC_TIMER);
		wr(REG_TIMER_INIT, 0);
	}
	this_cpu()->timer_handler = NULL;
	arch_irq_restore(f);
}

_Noreturn static void lapic_fatal(const char *why, const struct arch_regs *regs)
{
	kprintf("\nlapic: FATAL: cpu %u: %s (interrupted RIP=%016lx)\n", arch_cpu_id(), why,
		regs->rip);
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

void arch_lapic_dispatch(uint64_t vector, struct arch_regs *regs)
{
	struct percpu *cpu = this_cpu();

	switch (vector) {
	case LAPIC_VEC_SPURIOUS:
		cpu->lapic_spurious++;
		return; /* no EOI: nothing is in service */
	case LAPIC_VEC_ERROR:
		wr(REG_ESR, 0); /* latch the error bits, then read them */
		cpu->last_esr = rd(REG_ESR);
		cpu->lapic_errors++;
		break;
	case LAPIC_VEC_TIMER:
		if (cpu->irq_depth != 0)
			lapic_fatal("timer entered while another handler was running", regs);
		cpu->irq_depth++;
		cpu->lapic_ticks++;
		if (cpu->timer_handler)
			cpu->timer_handler(0, regs);
		if (arch_irqs_enabled())
			lapic_fatal("timer handler returned with interrupts enabled", regs);
		cpu->irq_depth--;
		break;
	case LAPIC_VEC_WAKEUP:
	default:
		break;
	}
	lapic_eoi();
}

void arch_lapic_get_stats(unsigned cpu, struct arch_lapic_stats *out)
{
	const struct percpu *c = &percpu[cpu < ARCH_MAX_CPUS ? cpu : 0];

	out->timer_ticks = c->lapic_ticks;
	out->errors = c->lapic_errors;
	out->spurious = c->lapic_spurious;
	out->last_esr = c->last_esr;
}

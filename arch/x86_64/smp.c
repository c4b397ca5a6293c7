/*
 * smp.c - bringing up the other CPUs (INIT-SIPI-SIPI), giving them work, stopping them.
 *
 * Start-up, one AP at a time (the trampoline's parameter block is shared):
 *   1. the boot CPU copies trampoline.asm's code to TRAMPOLINE_PHYS and builds a
 *      temporary PML4 beside it: the kernel's higher-half PML4 entries (the same lower
 *      tables, so the same mappings) plus an identity map of the low 2 MiB, through
 *      which the AP's first instruction after enabling paging is fetched;
 *   2. it fills the parameter block (CPU index, stack, CR0/CR4/EFER of its own) and
 *      sends INIT, waits 10 ms, sends a SIPI for page TRAMPOLINE_PHYS >> 12, and a second
 *      SIPI if the AP is not up 200 us later (Intel's MP start-up sequence);
 *   3. the AP runs ap_entry() on its own stack: the kernel's page tables, its own GDT,
 *      TSS and IST stacks, GS at its per-CPU block, the shared IDT, its local APIC;
 *      then it says it is online and sleeps until it is given work;
 *   4. an AP that is not online within AP_TIMEOUT_MS (timed by the PIT) is sent INIT
 *      again, which parks it, so it can never run the trampoline with the next AP's
 *      parameters; it is reported and left out.
 *
 * Low memory used: [TRAMPOLINE_PHYS, TRAMPOLINE_PHYS + 16 KiB) = code and parameters,
 * the temporary PML4, PDPT and PD.  kernel/mm_setup.c reserves the whole first MiB from
 * mm/ before lmm_init() and arch_paging_init() takes no page table below 1 MiB, so
 * nothing else ever owns these pages; the direct map reaches them because the boot
 * memory map lists them as available RAM (checked below).  The APs' stacks are static
 * arrays in the kernel image.
 *
 * Stopping: the first CPU to panic or fault claims the run (arch_claim_panic), sets the
 * stop flag and sends an NMI to every other CPU; their NMI handler sees the flag and
 * halts with interrupts off, so a dead or dying CPU never keeps the others running.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

#define TRAMPOLINE_PHYS ARCH_TRAMPOLINE_PHYS
#define TEMP_PML4 (TRAMPOLINE_PHYS + 0x1000)
#define TEMP_PDPT (TRAMPOLINE_PHYS + 0x2000)
#define TEMP_PD (TRAMPOLINE_PHYS + 0x3000)
#define AP_STACK_SIZE 16384
#define AP_TIMEOUT_MS 1000
#define STOP_WAIT_POLLS 10000000u

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PS (1ull << 7)

_Static_assert(TRAMPOLINE_PHYS % 4096 == 0 && TRAMPOLINE_PHYS < 0x100000,
	       "the SIPI vector is a page number below 1 MiB");
_Static_assert(TRAMPOLINE_PHYS + ARCH_TRAMPOLINE_LEN <= 0x100000,
	       "the trampoline must stay inside the first MiB that mm_setup.c reserves");

/* trampoline.asm's parameter block (same layout). */
struct trampoline_params {
	uint32_t cr3, cr4, cr0, efer, cpu, pad;
	uint64_t stack, entry;
};

extern const uint8_t trampoline_start[], trampoline_end[], trampoline_params[];

static _Alignas(16) uint8_t ap_stacks[ARCH_MAX_CPUS][AP_STACK_SIZE];
static uint64_t kernel_cr3;
static unsigned ncpus_online = 1; /* the boot CPU */

/* Work for each AP: set by the boot CPU (arg, then fn with release), cleared by the AP. */
static struct {
	void (*volatile fn)(void *arg);
	void *arg;
} work[ARCH_MAX_CPUS];

static int32_t panic_cpu = -1;
static volatile bool stop_requested;

_Noreturn void ap_entry(unsigned idx);

unsigned arch_cpus_online(void)
{
	return __atomic_load_n(&ncpus_online, __ATOMIC_ACQUIRE);
}

uint32_t arch_cpu_apic_id(unsigned cpu)
{
	return cpu < ARCH_MAX_CPUS ? percpu[cpu].apic_id : 0;
}

/* ---- Stopping everyone -------------------------------------------------------------- */

bool arch_claim_panic(void)
{
	int32_t expected = -1, me = (int32_t)arch_cpu_id();

	if (__atomic_compare_exchange_n(&panic_cpu, &expected, me, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return true;
	return expected == me; /* a nested fault on the CPU that already owns the end */
}

int arch_panic_cpu(void)
{
	return __atomic_load_n(&panic_cpu, __ATOMIC_ACQUIRE);
}

bool arch_stop_requested(void)
{
	return stop_requested;
}

_Noreturn void arch_stopped_here(void)
{
	this_cpu()->stopped = true;
	arch_halt_forever();
}

void arch_stop_other_cpus(void)
{
	unsigned n = arch_cpus_online();

	if (n <= 1 || stop_requested)
		return;
	stop_requested = true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	lapic_send_ipi(0, LAPIC_ICR_NMI | LAPIC_ICR_ALL_BUT_SELF);
	/* Wait (bounded: a CPU may be wedged with NMIs blocked) until they are quiet. */
	for (unsigned i = 0; i < n; i++) {
		if (i == arch_cpu_id())
			continue;
		for (uint32_t polls = 0; !percpu[i].stopped && polls < STOP_WAIT_POLLS; polls++)
			cpu_pause();
	}
}

unsigned arch_cpus_stopped(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < arch_cpus_online(); i++)
		n += percpu[i].stopped;
	return n;
}

/* ---- Work for the APs ------------------------------------------------------------------- */

void arch_smp_run(void (*fn)(void *arg), void *arg)
{
	for (unsigned i = 1; i < arch_cpus_online(); i++) {
		work[i].arg = arg;
		__atomic_store_n(&work[i].fn, fn, __ATOMIC_RELEASE);
		lapic_send_ipi(percpu[i].apic_id, LAPIC_ICR_FIXED | LAPIC_VEC_WAKEUP);
	}
}

unsigned arch_smp_busy(void)
{
	unsigned busy = 0;

	for (unsigned i = 1; i < arch_cpus_online(); i++)
		busy += __atomic_load_n(&work[i].fn, __ATOMIC_ACQUIRE) != NULL;
	return busy;
}

/*
 * An AP between jobs: interrupts on (so the wakeup IPI and its timer can arrive), hlt
 * until there is work.  cli before the check and sti;hlt after it: an IPI sent between
 * the two is taken by the hlt, not lost.
 */
_Noreturn static void ap_idle(unsigned idx)
{
	for (;;) {
		cli();
		void (*fn)(void *) = __atomic_load_n(&work[idx].fn, __ATOMIC_ACQUIRE);
		if (!fn) {
			sti_hlt();
			continue;
		}
		sti();
		fn(work[idx].arg);
		__atomic_store_n(&work[idx].fn, NULL, __ATOMIC_RELEASE);
	}
}

_Noreturn void ap_entry(unsigned idx)
{
	/* No arch_cpu_id() before gdt_init_cpu(): GS does not point at our block yet. */
	write_cr3(kernel_cr3);
	gdt_init_cpu(idx);
	idt_load();
	lapic_init_cpu(false);
	__atomic_store_n(&percpu[idx].online, true, __ATOMIC_RELEASE);
	ap_idle(idx);
}

/* ---- Start-up ----------------------------------------------------------------------------- */

static bool prepare_trampoline(void)
{
	for (uint64_t p = TRAMPOLINE_PHYS; p < TRAMPOLINE_PHYS + ARCH_TRAMPOLINE_LEN; p += 4096) {
		if (!arch_virt_is_mapped(arch_phys_to_virt(p))) {
			kprintf("smp: low page 0x%lx is not RAM in the boot memory map: no trampoline\n", p);
			return false;
		}
	}
	size_t len = (size_t)(trampoline_end - trampoline_start);
	if (len > 4096) {
		kprintf("smp: trampoline is %zu bytes, more than its page\n", len);
		return false;
	}
	uint8_t *dst = arch_phys_to_virt(TRAMPOLINE_PHYS);
	for (size_t i = 0; i < len; i++)
		dst[i] = trampoline_start[i];

	uint64_t *pml4 = arch_phys_to_virt(TEMP_PML4), *pdpt = arch_phys_to_virt(TEMP_PDPT);
	uint64_t *pd = arch_phys_to_virt(TEMP_PD);
	const uint64_t *kpml4 = arch_phys_to_virt(kernel_cr3 & 0x000FFFFFFFFFF000ull);
	for (unsigned i = 0; i < 512; i++) {
		pml4[i] = i >= 256 ? kpml4[i] : 0;
		pdpt[i] = 0;
		pd[i] = 0;
	}
	pml4[0] = TEMP_PDPT | PTE_P | PTE_W;
	pdpt[0] = TEMP_PD | PTE_P | PTE_W;
	pd[0] = 0 | PTE_P | PTE_W | PTE_PS; /* [0, 2 MiB) identity, executable */
	return true;
}

static struct trampoline_params *params(void)
{
	return arch_phys_to_virt(TRAMPOLINE_PHYS + (uint64_t)(trampoline_params - trampoline_start));
}

/* What became of an AP asked to start. */
enum ap_start { AP_ONLINE, AP_LEFT_OUT, AP_UNPARKED };

/*
 * Start the AP with local APIC id @apic_id as CPU @idx.  AP_LEFT_OUT: it did not come up
 * in time and was parked again.  AP_UNPARKED: not even the parking INIT was delivered,
 * so it may still run the trampoline late, with whatever parameters (CPU index, stack)
 * the next AP is given: no further AP may be started.
 */
static enum ap_start start_ap(unsigned idx, uint32_t apic_id, unsigned *waited_ms)
{
	struct trampoline_params *tp = params();

	percpu[idx].id = idx;
	percpu[idx].apic_id = apic_id;
	percpu[idx].online = false;
	*tp = (struct trampoline_params){
		.cr3 = (uint32_t)TEMP_PML4,
		.cr4 = (uint32_t)read_cr4(),
		.cr0 = (uint32_t)read_cr0(),
		.efer = (uint32_t)(rdmsr(X86_MSR_EFER) & (X86_EFER_LME | X86_EFER_NXE)),
		.cpu = idx,
		.stack = (uint64_t)(ap_stacks[idx] + AP_STACK_SIZE),
		.entry = (uint64_t)ap_entry,
	};
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	uint32_t sipi = LAPIC_ICR_STARTUP | (TRAMPOLINE_PHYS >> 12);
	lapic_send_ipi(apic_id, LAPIC_ICR_INIT);
	pit_wait_us(10000);
	lapic_send_ipi(apic_id, sipi);
	pit_wait_us(200);
	if (!__atomic_load_n(&percpu[idx].online, __ATOMIC_ACQUIRE))
		lapic_send_ipi(apic_id, sipi);
	for (*waited_ms = 0; *waited_ms < AP_TIMEOUT_MS; ++*waited_ms) {
		if (__atomic_load_n(&percpu[idx].online, __ATOMIC_ACQUIRE))
			return AP_ONLINE;
		pit_wait_us(1000);
	}
	/* Too late: park it in wait-for-SIPI so it cannot run the next AP's parameters. */
	return lapic_send_ipi(apic_id, LAPIC_ICR_INIT) ? AP_LEFT_OUT : AP_UNPARKED;
}

unsigned arch_smp_start(const uint32_t *apic_ids, unsigned n)
{
	if (!lapic_present()) {
		kprintf("smp: no usable local APIC (CPUID, or left in x2APIC mode): running on "
			"the boot CPU alone\n");
		return 1;
	}
	kernel_cr3 = read_cr3();
	lapic_init_cpu(true);
	percpu[0].apic_id = lapic_id();
	uint64_t lhz = lapic_timer_calibrate();
	kprintf("smp: boot cpu 0 is APIC id %u; local APIC at 0x%lx, timer %lu kHz (divide by 16, "
		"calibrated against the PIT)\n", percpu[0].apic_id, lapic_phys(), lhz / 1000);
	if (n <= 1)
		return 1;
	if (!prepare_trampoline()) {
		kprintf("smp: running on the boot CPU alone\n");
		return 1;
	}

	unsigned idx = 1;
	for (unsigned i = 0; i < n; i++) {
		uint32_t id = apic_ids[i];
		unsigned ms = 0;
		if (id == percpu[0].apic_id)
			continue;
		if (idx == ARCH_MAX_CPUS) {
			kprintf("smp: APIC id %u left out: this kernel runs at most %u CPUs\n", id,
				ARCH_MAX_CPUS);
			continue;
		}
		if (id > 0xFE) {
			kprintf("smp: APIC id %u left out: needs x2APIC mode, which this kernel does "
				"not use\n", id);
			continue;
		}
		enum ap_start st = start_ap(idx, id, &ms);
		if (st == AP_UNPARKED) {
			kprintf("smp: cpu %u (APIC id %u) did not come up within %u ms and could not be "
				"parked: no further CPU is started\n", idx, id, AP_TIMEOUT_MS);
			break;
		}
		if (st == AP_LEFT_OUT) {
			kprintf("smp: cpu %u (APIC id %u) did not come up within %u ms: left out\n", idx,
				id, AP_TIMEOUT_MS);
			continue;
		}
		kprintf("smp: cpu %u (APIC id %u) online after %u ms\n", idx, id, ms);
		idx++;
		__atomic_store_n(&ncpus_online, idx, __ATOMIC_RELEASE);
	}
	return idx;
}

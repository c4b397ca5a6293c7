/*
 * arch.h - what the rest of the kernel may ask of the CPU and the PC platform.
 *
 * A thin set of arch_* services implemented in arch/x86_64/: interrupt state, the
 * serial console, descriptor tables and exceptions, the 8259 PIC and PIT, the direct
 * map of physical memory, and QEMU's exit device.  Nothing outside arch/ writes inline
 * assembly; the instruction wrappers live in arch/x86_64/cpu.h.
 *
 * Virtual memory layout once arch_paging_init() has run (drawn once, here):
 *
 *   0x0000000000000000 .. 0x00007fffffffffff   unmapped (the boot identity map is gone)
 *   0xffff800000000000 .. 0xffffbfffffffffff   direct map: virt = phys + ARCH_HHDM_BASE,
 *                                              available RAM only (64 TiB window)
 *   0xffffe00000000000                         ARCH_UNMAPPED_PROBE: never mapped
 *   0xffffffff80000000 + phys                  the kernel image (linked at 1 MiB physical)
 */
#ifndef LABYRINTH_ARCH_H
#define LABYRINTH_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cpu.h>

#define ARCH_PAGE_SIZE 4096ul
#define ARCH_KERNEL_VMA 0xFFFFFFFF80000000ul
#define ARCH_HHDM_BASE 0xFFFF800000000000ul
#define ARCH_HHDM_LIMIT (1ul << 46) /* physical addresses the direct map can hold */
#define ARCH_UNMAPPED_PROBE 0xFFFFE00000001000ul
#define ARCH_PHYS_INVALID UINT64_MAX
#define ARCH_MAX_CPUS 16
/* arch_cpu_id() reads this offset of the per-CPU block GS points at (asserted in cpu.c). */
#define ARCH_PERCPU_ID_OFFSET 0

/* QEMU isa-debug-exit (iobase 0xf4): QEMU's exit status is (code << 1) | 1. */
#define ARCH_QEMU_EXIT_SUCCESS 0x10 /* status 33 */
#define ARCH_QEMU_EXIT_FAILURE 0x11 /* status 35 */

/* ---- Interrupt state --------------------------------------------------------------- */

typedef uint64_t arch_irqflags_t;

/*
 * Save RFLAGS, then disable interrupts.  Saves nest: each caller keeps its own flags
 * and restores them in reverse order.  Any context.
 */
static inline arch_irqflags_t arch_irq_save(void)
{
	arch_irqflags_t f = read_rflags();
	cli();
	return f;
}

/* Re-enable interrupts only if they were enabled in @flags: never a blind sti.  Any context. */
static inline void arch_irq_restore(arch_irqflags_t flags)
{
	if (flags & X86_RFLAGS_IF)
		sti();
}

static inline bool arch_irqs_enabled(void) { return (read_rflags() & X86_RFLAGS_IF) != 0; }

/*
 * Enable interrupts for good: the end of early boot.  Every 8259 line without a handler
 * is masked, so only registered handlers can run.  Normal context, once.
 */
static inline void arch_irq_enable(void) { sti(); }

/*
 * Index of the calling CPU, 0 .. ARCH_MAX_CPUS - 1: 0 on the boot CPU, APs numbered in
 * the order they came up.  One GS-relative load; valid in any context from the first
 * instruction of kmain (boot.asm points GS at CPU 0's block) and on an AP from its
 * first C call on.  The calling code must not migrate, which this kernel never does.
 */
static inline unsigned arch_cpu_id(void) { return gs_read32(ARCH_PERCPU_ID_OFFSET); }

/* Nesting depth of interrupt/exception handlers running on this CPU (0 = normal code). */
unsigned arch_in_interrupt(void);

/* A spin-wait hint (pause): in every busy-wait loop.  Any context. */
static inline void arch_cpu_relax(void) { cpu_pause(); }

/* Leave QEMU with @code (see ARCH_QEMU_EXIT_*); on real hardware, halt instead. */
_Noreturn void arch_exit_qemu(uint8_t code);
/* Interrupts off, hlt forever.  Any context. */
_Noreturn void arch_halt_forever(void);
/* Interrupts on for one instruction and hlt until the next one arrives.  Normal only. */
void arch_wait_for_interrupt(void);
uint64_t arch_read_tsc(void);

/* CPUID leaf 1 ECX bit 31: running under a hypervisor (or an emulator that says so). */
bool arch_hypervisor_present(void);

/* An interrupt handler (8259 line or local timer; struct arch_regs below).  Runs with
 * interrupts disabled; never re-entered; must not enable interrupts. */
struct arch_regs;
typedef void (*arch_irq_handler_t)(unsigned irq, struct arch_regs *regs);

/* ---- Several CPUs: start-up, work, stopping (smp.c, lapic.c) ------------------------ */

/* Low memory the AP trampoline uses (code, parameters, a temporary PML4/PDPT/PD). */
#define ARCH_TRAMPOLINE_PHYS 0x8000ul
#define ARCH_TRAMPOLINE_LEN 0x4000ul

/*
 * Enable the boot CPU's local APIC, calibrate the LAPIC timer against the PIT once, and
 * start every CPU in @apic_ids (the boot CPU's own id is skipped) one after another with
 * INIT-SIPI-SIPI.  A CPU that is not online within a PIT-timed second is reported and
 * left out.  Returns the CPUs online, the boot CPU included (1 when there is no usable
 * local APIC or no low page for the trampoline, said on the console).  Normal context,
 * boot CPU, once, after arch_paging_init() and with [ARCH_TRAMPOLINE_PHYS, +LEN)
 * owned by nobody (the first MiB is reserved from mm/).
 */
unsigned arch_smp_start(const uint32_t *apic_ids, unsigned n);
/* CPUs online (boot CPU included); their ids are 0 .. n - 1.  Any context. */
unsigned arch_cpus_online(void);
uint32_t arch_cpu_apic_id(unsigned cpu);

/*
 * Have every online AP call @fn(@arg) once, in normal context with interrupts on, and
 * return at once; arch_smp_busy() counts the APs still inside it.  An AP runs one job at
 * a time: call again only when arch_smp_busy() is 0.  Boot CPU, normal context.
 */
void arch_smp_run(void (*fn)(void *arg), void *arg);
unsigned arch_smp_busy(void);

/*
 * This CPU's local APIC timer, periodic at @hz (from the one calibration), calling
 * @handler like an IRQ handler (interrupts off, never re-entered; irq argument 0).  For
 * APs: the boot CPU's tick is the PIT.  False without a calibrated LAPIC.  Normal context.
 */
bool arch_local_timer_start(uint32_t hz, arch_irq_handler_t handler);
void arch_local_timer_stop(void);

struct arch_lapic_stats {
	uint64_t timer_ticks, errors, spurious, last_esr;
};
void arch_lapic_get_stats(unsigned cpu, struct arch_lapic_stats *out);

/*
 * The end of a run.  arch_claim_panic(): true for the first CPU that calls it (and again
 * for that CPU), false for every other, which should then arch_stopped_here().  Then
 * arch_stop_other_cpus() NMIs the rest, whose NMI handler halts them, and waits (bounded)
 * until they have.  arch_panic_cpu() is the claimant or -1.  Any context.
 */
bool arch_claim_panic(void);
/* CPUs halted by a stop request so far. */
unsigned arch_cpus_stopped(void);
int arch_panic_cpu(void);
bool arch_stop_requested(void);
_Noreturn void arch_stopped_here(void);
void arch_stop_other_cpus(void);

/* ---- Serial console (COM1, 16550, 115200 8N1, polled) -------------------------------- */

/* Program COM1.  Call once, first thing in kmain; nothing is printed before it. */
void arch_serial_init(void);
/* Write bytes, '\n' as CR LF.  Unlocked: kprintf() provides the lock.  Any context. */
void arch_serial_write(const char *s, size_t n);

/* ---- CPU tables: GDT + TSS (IST1 = double fault, IST2 = NMI), IDT, PIC --------------- */


/*
 * Load the GDT, TSS and IDT (all 32 exception vectors print a register dump and exit
 * QEMU with failure; 32..47 go to the IRQ dispatcher), remap the 8259 PIC to 32..47 with
 * every line masked.  Interrupts stay disabled.  Init only; must run before
 * arch_paging_init() (the boot GDT lives in memory the new page tables do not map).
 */
void arch_cpu_init(void);

/* Saved state of an interrupted context, as the assembly stubs push it. */
struct arch_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* ---- Legacy IRQs (8259 lines 0..15 on vectors 32..47) -------------------------------- */

#define ARCH_IRQ_BASE 32
#define ARCH_NR_IRQS 16

/*
 * Install @handler for 8259 line @irq (0..15) and unmask the line (and the cascade for
 * 8..15).  Returns false if @irq is out of range or already has a handler.  Normal
 * context, before interrupts are enabled or with them off.
 */
bool arch_irq_register(unsigned irq, arch_irq_handler_t handler);
void arch_irq_mask(unsigned irq);
void arch_irq_unmask(unsigned irq);

/* Counters for the tests. */
struct arch_irq_stats {
	uint64_t count[ARCH_NR_IRQS];  /* handled (or unhandled) real interrupts per line */
	uint64_t spurious_master;      /* spurious IRQ 7s: no EOI sent                    */
	uint64_t spurious_slave;       /* spurious IRQ 15s: EOI to the master only        */
	uint64_t unhandled;            /* real interrupts on a line without a handler     */
};
void arch_irq_get_stats(struct arch_irq_stats *out);

/* Called by the assembly stubs for vectors 32..47; not for other callers. */
void arch_irq_dispatch(uint64_t vector, struct arch_regs *regs);

/*
 * Program PIT channel 0 as a rate generator at about @hz: divisor = 1193182 / hz rounded,
 * clamped to 1..65536.  Prints the requested and actual rate; returns the actual rate in
 * millihertz.  Does not unmask IRQ 0 (arch_irq_register does).  Interrupts off.
 */
uint64_t arch_pit_init(uint32_t hz);

/*
 * TSC cycles per second, measured once against a 10 ms one-shot of PIT channel 2
 * (which no interrupt uses).  0 if the PIT did not respond.  The first call takes
 * ~10 ms with interrupts off and must be made in normal context during boot (kmain
 * does it); later calls return the cached value in any context.
 */
uint64_t arch_tsc_hz(void);

/*
 * The ACPI PM timer, a free-running ARCH_PM_TIMER_HZ counter that keeps counting when
 * interrupts are lost (the PIT's ticks do not): port and width from the FADT, given
 * once at boot by kmain.  arch_pm_timer_mask() is 0 when there is none; reads wrap at
 * the mask (every 4.7 s when 24-bit).  Any context.
 */
#define ARCH_PM_TIMER_HZ 3579545u
void arch_pm_timer_init(uint32_t port, bool bits32);
uint32_t arch_pm_timer_mask(void);
uint32_t arch_pm_timer_read(void);

/* ---- Physical memory: the direct map ---------------------------------------------- */

struct arch_phys_range {
	uint64_t base, len; /* [base, base + len) */
};

/*
 * Build and load 4-level page tables that map every @ram range (the boot map's available
 * RAM) at ARCH_HHDM_BASE + phys, and the kernel image at ARCH_KERNEL_VMA + phys with
 * per-section permissions and an unmapped guard page below the boot stack; the boot
 * identity map is dropped.  Page-table frames come from @ram above 1 MiB and below
 * 4 GiB, never from the kernel image or any @exclude range (boot information, modules);
 * they are recorded for arch_early_frames_used().  On failure prints why and exits QEMU
 * with failure.  Init only, after arch_cpu_init(); anything read through the identity
 * map (the multiboot2 information) must be copied first.
 */
void arch_paging_init(const struct arch_phys_range *ram, size_t nram,
		      const struct arch_phys_range *exclude, size_t nexclude);

/*
 * The physical ranges the early page-table allocator consumed, merged, in allocation
 * order: they hold live page tables and must be reserved from any page allocator.
 * Copies at most @max into @out; returns the total number of ranges.
 */
size_t arch_early_frames_used(struct arch_phys_range *out, size_t max);

/* [base, end) physical of the loaded kernel image, page aligned (from the linker script). */
struct arch_phys_range arch_kernel_image(void);

/* Direct map translation.  Valid after arch_paging_init(); any context; no checks. */
static inline void *arch_phys_to_virt(uint64_t phys) { return (void *)(uintptr_t)(phys + ARCH_HHDM_BASE); }
/* ARCH_PHYS_INVALID for addresses in neither the direct map nor the kernel image window. */
uint64_t arch_virt_to_phys(const void *virt);
/* Whether @virt is mapped in the current page tables (walks them).  Any context. */
bool arch_virt_is_mapped(const void *virt);

/* ---- Deliberate faults, for the boot tests ------------------------------------------ */

enum arch_fault {
	ARCH_FAULT_PAGE,   /* read ARCH_UNMAPPED_PROBE                         */
	ARCH_FAULT_UD,     /* ud2                                              */
	ARCH_FAULT_DIVIDE, /* divide by zero                                   */
	ARCH_FAULT_GP,     /* read a non-canonical address                     */
	ARCH_FAULT_DOUBLE, /* overflow the boot stack into its unmapped guard  */
};

/* Raise @fault.  Does not return: the exception handler exits QEMU with failure. */
_Noreturn void arch_trigger_fault(enum arch_fault fault);

#endif /* LABYRINTH_ARCH_H */

/*
 * internal.h - what the files of arch/x86_64/ share with each other and nobody else.
 */
#ifndef LABYRINTH_ARCH_X86_64_INTERNAL_H
#define LABYRINTH_ARCH_X86_64_INTERNAL_H

#include <labyrinth/arch.h>

/* GDT selectors (gdt.c); the boot GDT in boot.asm uses the same two kernel ones. */
#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_USER_DATA 0x1B
#define GDT_USER_CODE 0x23
#define GDT_TSS 0x28

/* Interrupt stack table slots (1-based, as the IDT encodes them). */
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2

/*
 * Per-CPU state, one block per CPU; GS points at the running CPU's block (boot.asm for
 * CPU 0, gdt_init_cpu() for every CPU once its GDT is loaded).  Each field is written
 * only by its own CPU, with interrupts off where a handler also writes it, except
 * where noted.
 */
struct percpu {
	uint32_t id;          /* ARCH_PERCPU_ID_OFFSET: written by the boot CPU before the AP starts */
	uint32_t apic_id;     /* local APIC id; written by the boot CPU before the AP starts      */
	unsigned irq_depth;   /* handlers (IRQ or exception) running on this CPU                   */
	volatile bool online; /* set by the CPU itself once it runs on its own tables           */
	volatile bool stopped;/* halted by a stop request (another CPU's panic)                 */
	arch_irq_handler_t timer_handler; /* LAPIC timer callback; NULL = timer off             */
	uint64_t lapic_ticks, lapic_errors, lapic_spurious, last_esr;
};
extern struct percpu percpu[ARCH_MAX_CPUS];

static inline struct percpu *this_cpu(void) { return &percpu[arch_cpu_id()]; }

/* Load @cpu's GDT and TSS (its own IST stacks) and point GS at percpu[cpu]. */
void gdt_init_cpu(unsigned cpu);
bool gdt_loaded(void);
/* Build the shared IDT (boot CPU, once) / load it (every CPU). */
void idt_init(void);
void idt_load(void);

/* Local APIC vectors (lapic.c); the stubs are in isr.asm. */
#define LAPIC_VEC_TIMER 0xF0
#define LAPIC_VEC_WAKEUP 0xF1
#define LAPIC_VEC_ERROR 0xFE
#define LAPIC_VEC_SPURIOUS 0xFF
#define LAPIC_STUB_COUNT 4
extern const uint64_t lapic_stub_table[LAPIC_STUB_COUNT];
extern const uint8_t lapic_stub_vectors[LAPIC_STUB_COUNT];
void arch_lapic_dispatch(uint64_t vector, struct arch_regs *regs);

/* Local APIC (lapic.c), xAPIC through MMIO at ARCH_HHDM_BASE + its physical base. */
bool lapic_present(void);           /* CPUID says so and it is usable in xAPIC mode */
uint64_t lapic_phys(void);          /* from IA32_APIC_BASE                          */
void lapic_init_cpu(bool boot_cpu); /* enable, spurious/error vectors, timer masked */
uint32_t lapic_id(void);
void lapic_eoi(void);
/* Send @icr_low to @apic_id (shorthand in @icr_low overrides it); false if never delivered. */
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low);
#define LAPIC_ICR_INIT 0x00004500u    /* INIT, level assert                    */
#define LAPIC_ICR_STARTUP 0x00004600u /* SIPI; low byte = start page           */
#define LAPIC_ICR_NMI 0x00004400u
#define LAPIC_ICR_FIXED 0x00004000u
#define LAPIC_ICR_ALL_BUT_SELF (3u << 18)
/* Timer ticks per second at the divider used, measured once against the PIT; 0 if not. */
uint64_t lapic_timer_calibrate(void);

/* PIT channel 2 as a busy-wait clock (pit.c); interrupts off; boot CPU only. */
void pit_wait_us(uint32_t us);

/* 8259 PIC (pic.c). */
void pic_init(void);
void pic_eoi(unsigned irq);
bool pic_irq_is_spurious(unsigned irq);
void pic_set_mask(unsigned irq, bool masked);

/* Entry points of the assembly stubs (isr.asm), vectors 0..47. */
#define ISR_STUB_COUNT 48
extern const uint64_t isr_stub_table[ISR_STUB_COUNT];

/* Called from isr.asm for vectors 0..31. */
void arch_exception_dispatch(struct arch_regs *regs);

/* Linker script symbols (virtual addresses unless named _phys). */
extern char __kernel_phys_start[], __kernel_phys_end[];
extern char __text_start[], __text_end[], __rodata_start[], __rodata_end[];
extern char __data_start[], __data_end[], __bss_start[], __bss_end[];
extern char __stack_guard_start[], __stack_guard_end[];
extern char boot_stack_top[];

#endif /* LABYRINTH_ARCH_X86_64_INTERNAL_H */

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

/* Per-CPU state; indexed by arch_cpu_id(). */
struct percpu {
	unsigned irq_depth; /* handlers (IRQ or exception) running on this CPU */
};
extern struct percpu percpu[ARCH_MAX_CPUS];

static inline struct percpu *this_cpu(void) { return &percpu[arch_cpu_id()]; }

void gdt_init(void);
bool gdt_loaded(void);
void idt_init(void);

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

/*
 * cpu.h - x86-64 instruction wrappers, the only inline assembly in the tree.
 *
 * Each wrapper is one instruction (or one idiom) with the compiler told exactly what
 * it reads, writes and clobbers; everything with policy lives in arch_* functions.
 * Like xv6's x86.h: include it from arch/ code, or indirectly via <labyrinth/arch.h>.
 */
#ifndef LABYRINTH_ARCH_X86_64_CPU_H
#define LABYRINTH_ARCH_X86_64_CPU_H

#include <stdint.h>

/* RFLAGS bits. */
#define X86_RFLAGS_IF (1ul << 9)

/* Control register bits. */
#define X86_CR0_WP (1ul << 16)
#define X86_CR0_PG (1ul << 31)
#define X86_CR4_PAE (1ul << 5)

/* Model-specific registers. */
#define X86_MSR_EFER 0xC0000080u
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_NXE (1ull << 11)
#define X86_MSR_APIC_BASE 0x1Bu
#define X86_APIC_BASE_ENABLE (1ull << 11)
#define X86_APIC_BASE_X2APIC (1ull << 10)
#define X86_APIC_BASE_BSP (1ull << 8)
#define X86_MSR_GS_BASE 0xC0000101u

/* ---- Port I/O ------------------------------------------------------------------ */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* A write to the unused POST port: ~1 us, for old devices (8259) that need settling. */
static inline void io_wait(void) { outb(0x80, 0); }

/* ---- Interrupt flag, halting ------------------------------------------------------ */

/* "memory" clobbers: no access may be moved across a change of the interrupt state. */
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
/* sti takes effect after the next instruction, so no interrupt slips in before the hlt. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
static inline void cpu_pause(void) { __asm__ volatile("pause" : : : "memory"); }

static inline uint64_t read_rflags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f) : : "memory");
	return f;
}

/* ---- Control registers ------------------------------------------------------------ */

static inline uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static inline void invlpg(const void *va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }

/* ---- Time stamp counter, MSRs, CPUID --------------------------------------------- */

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			 uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

/*
 * A 32-bit load at @off from the GS base: per-CPU data (arch/x86_64/internal.h).  Not
 * volatile: the GS base of a CPU never changes once set, so the compiler may reuse it.
 */
static inline uint32_t gs_read32(uint64_t off)
{
	uint32_t v;
	__asm__("movl %%gs:(%1), %0" : "=r"(v) : "r"(off));
	return v;
}

/* ---- Descriptor tables --------------------------------------------------------------- */

struct __attribute__((packed)) x86_desc_ptr {
	uint16_t limit;
	uint64_t base;
};

static inline void lgdt(const struct x86_desc_ptr *p) { __asm__ volatile("lgdt %0" : : "m"(*p) : "memory"); }
static inline void lidt(const struct x86_desc_ptr *p) { __asm__ volatile("lidt %0" : : "m"(*p) : "memory"); }
static inline void ltr(uint16_t sel) { __asm__ volatile("ltr %0" : : "r"(sel) : "memory"); }

/*
 * Reload every segment register after lgdt: CS through a far return (the only way to
 * change it in 64-bit mode), the data segments directly.
 */
static inline void load_segments(uint16_t cs, uint16_t ds)
{
	__asm__ volatile("pushq %q0\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movw %w1, %%ds\n\t"
			 "movw %w1, %%es\n\t"
			 "movw %w1, %%ss\n\t"
			 "movw %w1, %%fs\n\t"
			 "movw %w1, %%gs"
			 :
			 : "r"((uint64_t)cs), "r"((uint32_t)ds)
			 : "rax", "memory");
}

#endif /* LABYRINTH_ARCH_X86_64_CPU_H */

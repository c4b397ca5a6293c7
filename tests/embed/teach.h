/*
 * teach.h - a second example port of mm/, written the way a teaching kernel (xv6-riscv)
 * is built: harts with push_off/pop_off interrupt nesting, acquire/release spinlocks,
 * no idle task, kalloc()/kfree() with panic-on-bad-free.  On the host, each hart is a
 * thread (its struct cpu behind a thread-local "tp"), the timer interrupt a signal.
 * Build with -DLMM_PORT_MAX_CPUS=3 -DLMM_PORT_PHYS_BITS=56 (RISC-V physical addresses).
 */
#ifndef TEACH_H
#define TEACH_H

#include <labyrinth/mm.h>

#define NCPU 3
#define PGSIZE 4096
#define KERNBASE 0x80000000ull              /* RAM starts here, as on qemu's virt board */
#define PHYSTOP (KERNBASE + (16ull << 20))  /* 16 MiB of RAM                            */
#define KERNEL_END (KERNBASE + (1ull << 20)) /* the kernel image: the first MiB          */

struct cpu {
	unsigned id;      /* hart id: 0 .. NCPU-1                          */
	int noff;         /* depth of push_off() nesting                   */
	int intena;       /* were interrupts enabled before push_off()?    */
	int intr_depth;   /* inside a trap handler: the interrupt count    */
	int mm_off;       /* inside mm/'s lmm_port_irq_save() sections      */
	unsigned long traps_in_mm; /* traps taken inside one: must stay 0 */
	char report[224]; /* the last refusal mm/ reported on this hart    */
};

struct spinlock {
	unsigned locked;
	const char *name;
	struct cpu *cpu; /* holder */
};

/* The "hardware" and the kernel's own layer. */
struct cpu *mycpu(void);
struct cpu *cpu_of(unsigned id);
unsigned cpuid(void);
void hart_start(unsigned id);              /* the calling thread becomes hart @id       */
void intr_on(void), intr_off(void);
int intr_get(void);
void push_off(void), pop_off(void);
void initlock(struct spinlock *lk, const char *name);
void acquire(struct spinlock *lk), release(struct spinlock *lk);
int holding(struct spinlock *lk);
void timer_install(void (*clockintr)(void)); /* signal handler = the trap vector          */
_Noreturn void panic(const char *s);
void printf_locked(const char *s);           /* one console line under the print lock     */

/* kalloc.c */
extern struct lmm kmem;
void kinit(void);
void *kalloc(void);        /* one page, KERNEL: any context but a trap handler; 0 if none */
void *kalloc_atomic(void); /* one page from the reserve first: trap handlers             */
void kfree(void *pa);      /* panics on a refused free, with mm/'s report                 */

extern unsigned char ram[]; /* physical [KERNBASE, PHYSTOP) */

#endif

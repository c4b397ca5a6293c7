/*
 * teach_port.c - the teaching kernel of teach.h: its harts, push_off/pop_off and
 * spinlocks (as xv6's spinlock.c), and mm/'s twelve hooks plus kalloc()/kfree() on top
 * of them (as xv6's kalloc.c would be, with mm/ inside), written from mm/README.md.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "teach.h"

/* ---- The "hardware": harts, their interrupt-enable bit, the timer trap ------------- */

_Alignas(4096) unsigned char ram[PHYSTOP - KERNBASE];
static struct cpu cpus[NCPU];
static __thread struct cpu *tp;               /* the tp register: this hart's struct cpu */
static __thread volatile sig_atomic_t sie;    /* sstatus.SIE                             */
static __thread volatile sig_atomic_t pending; /* a timer interrupt waiting for SIE       */
static void (*clock_handler)(void);

struct cpu *cpu_of(unsigned id)
{
	return &cpus[id];
}

struct cpu *mycpu(void)
{
	return tp;
}

unsigned cpuid(void)
{
	return tp->id;
}

void hart_start(unsigned id)
{
	tp = &cpus[id];
	tp->id = id;
	sie = 0;
}

int intr_get(void)
{
	return sie;
}

void intr_off(void)
{
	sie = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* The trap: the hardware clears SIE on entry and sret restores it. */
static void kerneltrap(void)
{
	sie = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (tp->mm_off) /* a trap inside mm/'s interrupts-off section: hooks 4-5 are broken */
		tp->traps_in_mm++;
	tp->intr_depth++;
	clock_handler();
	tp->intr_depth--;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	sie = 1;
}

void intr_on(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	sie = 1;
	while (pending && sie) { /* taken as soon as SIE is set, as on real hardware */
		pending = 0;
		kerneltrap();
	}
}

static void on_timer(int sig)
{
	(void)sig;
	if (!tp || !clock_handler)
		return;
	if (!sie)
		pending = 1;
	else
		kerneltrap();
}

void timer_install(void (*clockintr)(void))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	clock_handler = clockintr;
	sigaction(SIGUSR1, &sa, NULL);
}

/* ---- spinlock.c, as in xv6 ----------------------------------------------------------- */

void push_off(void)
{
	int old = intr_get();
	intr_off();
	if (mycpu()->noff == 0)
		mycpu()->intena = old;
	mycpu()->noff += 1;
}

void pop_off(void)
{
	struct cpu *c = mycpu();
	if (intr_get())
		panic("pop_off - interruptible");
	if (c->noff < 1)
		panic("pop_off");
	c->noff -= 1;
	if (c->noff == 0 && c->intena)
		intr_on();
}

void initlock(struct spinlock *lk, const char *name)
{
	lk->name = name;
	lk->locked = 0;
	lk->cpu = 0;
}

int holding(struct spinlock *lk)
{
	return __atomic_load_n(&lk->locked, __ATOMIC_RELAXED) && lk->cpu == mycpu();
}

void acquire(struct spinlock *lk)
{
	push_off();
	if (holding(lk))
		panic("acquire");
	while (__atomic_exchange_n(&lk->locked, 1, __ATOMIC_ACQUIRE))
		sched_yield(); /* harts are threads: let the holder run */
	lk->cpu = mycpu();
}

void release(struct spinlock *lk)
{
	if (!holding(lk))
		panic("release");
	lk->cpu = 0;
	__atomic_store_n(&lk->locked, 0, __ATOMIC_RELEASE);
	pop_off();
}

static struct spinlock pr = { 0, "pr", 0 };

void printf_locked(const char *s)
{
	acquire(&pr);
	fputs(s, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	release(&pr);
}

_Noreturn void panic(const char *s)
{
	printf("panic: %s\n", s); /* no lock: xv6 sets panicked and prints */
	fflush(stdout);
	_exit(3);
}

/* ---- mm/'s hooks: the lock is acquire/release, interrupts are push_off/pop_off --------- */

_Static_assert(LMM_PORT_MAX_CPUS == NCPU, "build with -DLMM_PORT_MAX_CPUS=3: one slot per hart");
_Static_assert(sizeof(struct spinlock) <= LMM_PORT_LOCK_BYTES, "spinlock fits in lmm_port_lock_t");

static struct spinlock *as_lock(lmm_port_lock_t *l)
{
	return (struct spinlock *)(void *)l->opaque;
}

void lmm_port_lock_init(lmm_port_lock_t *lock, const char *name)
{
	initlock(as_lock(lock), name);
}

lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *lock)
{
	acquire(as_lock(lock)); /* push_off keeps the interrupt state: nothing to return */
	return 0;
}

void lmm_port_unlock_irqrestore(lmm_port_lock_t *lock, lmm_irqflags_t flags)
{
	(void)flags;
	release(as_lock(lock));
}

/* TEACH_BREAK_IRQ_SAVE: the mistake of forgetting push_off here (the test must fail). */
lmm_irqflags_t lmm_port_irq_save(void)
{
#ifndef TEACH_BREAK_IRQ_SAVE
	push_off(); /* the same count as acquire(): mm/'s sections nest with the kernel's */
#endif
	mycpu()->mm_off++; /* a witness for the test, not part of a port */
	return 0;
}

void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	(void)flags;
	mycpu()->mm_off--;
#ifndef TEACH_BREAK_IRQ_SAVE
	pop_off();
#endif
}

lmm_irq_cpu_t lmm_port_irq_save_cpu(void)
{
	lmm_irqflags_t flags = lmm_port_irq_save();
	return (lmm_irq_cpu_t){ flags, cpuid() }; /* interrupts off now: no migration */
}

void *lmm_port_phys_to_virt(uint64_t phys)
{
	if (phys < KERNBASE || phys >= PHYSTOP)
		panic("phys_to_virt: not RAM");
	return ram + (phys - KERNBASE);
}

enum lmm_context lmm_port_context(void)
{
	push_off();
	struct cpu *c = mycpu();
	int in_trap = c->intr_depth != 0, was_on = c->noff == 1 && c->intena;
	pop_off();
	return in_trap ? LMM_CTX_INTERRUPT : was_on ? LMM_CTX_NORMAL : LMM_CTX_IRQS_OFF;
}

uint16_t lmm_port_owner(void)
{
	push_off();
	struct cpu *c = mycpu();
	uint16_t tag = (uint16_t)(((c->id << 1) | (c->intr_depth != 0)) + 1);
	pop_off();
	return tag;
}

/* Kept per hart for kfree()'s panic; formatting is fine here (no lock, interrupts as
 * the caller had them).  Nothing is printed: most refusals come from traps. */
void lmm_port_report(const struct lmm_report *r)
{
	push_off();
	lmm_report_format(r, mycpu()->report, sizeof(mycpu()->report));
	pop_off();
}

void lmm_port_log(const char *line)
{
	if (getenv("TEACH_VERBOSE"))
		printf_locked(line);
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	panic(reason);
}

/* ---- kalloc.c ------------------------------------------------------------------------------ */

struct lmm kmem;

void kinit(void)
{
	lmm_begin(&kmem, NULL); /* defaults: a reserve of free/128 pages for the traps */
	lmm_add_range(&kmem, KERNEL_END, PHYSTOP - KERNEL_END);
	if (lmm_init(&kmem) != LMM_OK)
		panic("kinit");
}

void *kalloc(void)
{
	void *p = lmm_alloc_pages(&kmem, 0, LMM_GFP_KERNEL); /* interrupts off and locks held: fine */
	if (p)
		memset(p, 5, PGSIZE); /* fill with junk */
	return p;
}

void *kalloc_atomic(void)
{
	return lmm_alloc_pages(&kmem, 0, LMM_GFP_ATOMIC);
}

void kfree(void *pa)
{
	char why[256];
	if (lmm_free_pages(&kmem, pa, 0) == LMM_OK)
		return;
	push_off();
	snprintf(why, sizeof(why), "kfree: %s", mycpu()->report);
	pop_off();
	panic(why);
}

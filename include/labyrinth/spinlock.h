/*
 * spinlock.h - ticket spinlocks that know their name and their holder.
 *
 * The one idiom:  flags = spin_lock_irqsave(&l); ...; spin_unlock_irqrestore(&l, flags);
 * Saves nest and release never blindly enables interrupts.  Taking a lock this CPU
 * already holds, or spinning far too long, is a fatal report naming the lock (and the
 * holder), never a silent hang.  Implemented in arch/x86_64/spinlock.c.
 */
#ifndef LABYRINTH_SPINLOCK_H
#define LABYRINTH_SPINLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/arch.h>

/* Fits in mm/'s LMM_PORT_LOCK_BYTES (64, 16-byte aligned): asserted in spinlock.c. */
struct spinlock {
	uint32_t next;       /* next ticket to hand out                        */
	uint32_t owner;      /* ticket being served; free when owner == next   */
	int32_t cpu;         /* holding CPU, -1 when free                      */
	uint32_t magic;      /* SPINLOCK_MAGIC once initialised                */
	const char *name;    /* static string, for reports                     */
	uintptr_t holder_pc; /* return address of the acquiring call           */
	uint64_t since_tsc;  /* TSC when acquired                              */
	/* Contention, written by the CPU that just got the lock (so under it): */
	uint32_t contended;  /* acquisitions that had to wait                   */
	uint32_t listed;     /* 1 once in the contention table (spinlock.c)     */
	uint64_t spins;      /* pause iterations spent waiting                  */
	uint64_t wait_cycles;/* TSC cycles spent waiting                        */
};

#define SPINLOCK_MAGIC 0x5350494eu /* "SPIN" */
#define SPINLOCK_INIT(n) { 0, 0, -1, SPINLOCK_MAGIC, (n), 0, 0, 0, 0, 0, 0 }

/* Any context (a lock in static storage can use SPINLOCK_INIT instead). */
void spin_lock_init(struct spinlock *l, const char *name);

/*
 * Take @l.  The caller must already have interrupts disabled if a handler can take the
 * same lock; prefer spin_lock_irqsave().  Fatal if this CPU already holds @l.
 */
void spin_lock(struct spinlock *l);
/* Release @l; fatal if this CPU does not hold it.  Does not touch the interrupt flag. */
void spin_unlock(struct spinlock *l);
/* Take @l only if it is free; true when taken.  Fatal on recursion, like spin_lock. */
bool spin_trylock(struct spinlock *l);

/* Whether this CPU holds @l.  Call with interrupts disabled for a stable answer. */
bool spin_holding(const struct spinlock *l);

/* Save the interrupt state, disable interrupts, take @l.  Any context. */
arch_irqflags_t spin_lock_irqsave(struct spinlock *l);
/* Release @l, then restore the state saved by the matching spin_lock_irqsave().  Any context. */
void spin_unlock_irqrestore(struct spinlock *l, arch_irqflags_t flags);

/*
 * Lock contention: every lock that ever had to wait is listed (up to SPIN_TABLE_MAX)
 * with its counters.  spin_contention_get() copies at most @max entries and returns how
 * many locks are listed; spin_contention_reset() zeroes the counters of listed locks and
 * must only be called while nobody contends them (e.g. before a test starts its CPUs).
 * The figures are read without the locks: exact once the contending CPUs are quiet.
 * Any context.
 */
#define SPIN_TABLE_MAX 16
struct spin_contention {
	const char *name;
	const void *lock;
	uint64_t contended, spins, wait_cycles;
};
size_t spin_contention_get(struct spin_contention *out, size_t max);
void spin_contention_reset(void);

#endif /* LABYRINTH_SPINLOCK_H */

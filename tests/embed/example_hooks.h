/*
 * example_hooks.h - the example port's seven hooks on the common path (mm_port.h hooks
 * 2-6, 8 and 9), written once.  example_port.c includes this file and they are linked
 * functions (build/embed/example); built with -DLMM_PORT_INLINE_HEADER='"example_hooks.h"'
 * they are static inline in every file of mm/ instead (build/embed/example-inline), as
 * section 2 of mm/README.md describes.
 */
#ifndef EXAMPLE_HOOKS_H
#define EXAMPLE_HOOKS_H

#include <stdatomic.h>
#include <stdio.h>

#ifdef LMM_PORT_INLINE_HEADER
#define EXAMPLE_HOOK static inline
#else
#define EXAMPLE_HOOK
#endif

/* The pretend CPU of example_port.c. */
extern int irqs_on, irq_depth;
extern uint16_t task;
uintptr_t cpu_irq_save(void);
void cpu_irq_restore(uintptr_t state);

/* My lock: one flag, plus the name for the report when it is taken twice. */
struct my_lock {
	atomic_flag held;
	const char *name;
};
_Static_assert(sizeof(struct my_lock) <= LMM_PORT_LOCK_BYTES, "lock does not fit in lmm_port_lock_t");

static inline struct my_lock *my_lock(lmm_port_lock_t *l)
{
	return (struct my_lock *)(void *)l->opaque;
}

EXAMPLE_HOOK lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *lock)
{
	struct my_lock *l = my_lock(lock);
	lmm_irqflags_t flags = cpu_irq_save();
	/* One CPU: if the flag is already set, nobody will ever clear it. */
	if (atomic_flag_test_and_set_explicit(&l->held, memory_order_acquire)) {
		char why[96];
		snprintf(why, sizeof(why), "lock '%s' taken twice", l->name);
		lmm_port_fatal(why);
	}
	return flags;
}

EXAMPLE_HOOK void lmm_port_unlock_irqrestore(lmm_port_lock_t *lock, lmm_irqflags_t flags)
{
	atomic_flag_clear_explicit(&my_lock(lock)->held, memory_order_release);
	cpu_irq_restore(flags);
}

EXAMPLE_HOOK lmm_irqflags_t lmm_port_irq_save(void)
{
	return cpu_irq_save();
}

EXAMPLE_HOOK void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	cpu_irq_restore(flags);
}

/* One CPU: LMM_PORT_MAX_CPUS is 1, so hook 6 (lmm_port_irq_save_cpu) is never called. */

EXAMPLE_HOOK enum lmm_context lmm_port_context(void)
{
	if (irq_depth)
		return LMM_CTX_INTERRUPT;
	return irqs_on ? LMM_CTX_NORMAL : LMM_CTX_IRQS_OFF;
}

/* Tasks own pages as themselves; a handler as 0x8000 | the task it interrupted. */
EXAMPLE_HOOK uint16_t lmm_port_owner(void)
{
	return irq_depth ? (uint16_t)(0x8000u | task) : task;
}

#endif /* EXAMPLE_HOOKS_H */

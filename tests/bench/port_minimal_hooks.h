/*
 * port_minimal_hooks.h - the minimal port's seven hooks on the common path (mm_port.h
 * hooks 2-6, 8, 9), written once.  port_minimal.c includes this file and they are linked
 * functions (bench-ir-minimal); a build that names it as LMM_PORT_INLINE_HEADER gets them
 * static inline in every file of mm/ instead (bench-ir-minimal-inline).
 *
 * A test-and-set lock; interrupt save/restore as a plain per-thread flag (the host has no
 * interrupts to mask: a kernel's pushf/cli/popf is a few instructions more); the CPU
 * index, the context and the owner from thread-locals.
 */
#ifndef PORT_MINIMAL_HOOKS_H
#define PORT_MINIMAL_HOOKS_H

#ifdef LMM_PORT_INLINE_HEADER
#define MINPORT_HOOK static inline
#else
#define MINPORT_HOOK
#endif

/*
 * Defined in port_minimal.c.  Every thread is CPU 0, owner 1, outside any handler.
 * local-exec: one %fs-relative access, as when they were static to port_minimal.c.
 */
#define MINPORT_TLS __thread __attribute__((tls_model("local-exec")))
extern MINPORT_TLS unsigned minport_irq_off, minport_in_irq, minport_cpu;
extern MINPORT_TLS uint16_t minport_owner;

struct tas_lock {
	unsigned locked;
};
_Static_assert(sizeof(struct tas_lock) <= LMM_PORT_LOCK_BYTES, "lock too big");

MINPORT_HOOK lmm_irqflags_t lmm_port_irq_save(void)
{
	lmm_irqflags_t was = minport_irq_off;
	minport_irq_off = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return was;
}

MINPORT_HOOK void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	minport_irq_off = (unsigned)flags;
}

MINPORT_HOOK lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *l)
{
	struct tas_lock *t = (struct tas_lock *)l->opaque;
	lmm_irqflags_t flags = lmm_port_irq_save();
	while (__atomic_exchange_n(&t->locked, 1u, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&t->locked, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	return flags;
}

MINPORT_HOOK void lmm_port_unlock_irqrestore(lmm_port_lock_t *l, lmm_irqflags_t flags)
{
	__atomic_store_n(&((struct tas_lock *)l->opaque)->locked, 0u, __ATOMIC_RELEASE);
	lmm_port_irq_restore(flags);
}

MINPORT_HOOK lmm_irq_cpu_t lmm_port_irq_save_cpu(void)
{
	return (lmm_irq_cpu_t){ lmm_port_irq_save(), minport_cpu };
}

MINPORT_HOOK enum lmm_context lmm_port_context(void)
{
	return minport_in_irq ? LMM_CTX_INTERRUPT : minport_irq_off ? LMM_CTX_IRQS_OFF : LMM_CTX_NORMAL;
}

MINPORT_HOOK uint16_t lmm_port_owner(void)
{
	return minport_owner;
}

#endif /* PORT_MINIMAL_HOOKS_H */

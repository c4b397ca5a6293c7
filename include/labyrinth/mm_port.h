/*
 * mm_port.h - everything mm/ needs from the kernel that embeds it.
 *
 * mm/ is freestanding C11: it calls exactly the eight hooks below and nothing else.
 * A host kernel implements them once (see mm/README.md for a complete minimal port).
 * The hooks are plain functions resolved at link time, so a port costs no indirection.
 */
#ifndef LABYRINTH_MM_PORT_H
#define LABYRINTH_MM_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Storage for one port spinlock, embedded in struct lmm.  mm/ never looks inside;
 * the port casts it to its own lock type.  A port whose lock is larger than this
 * defines LMM_PORT_LOCK_BYTES before including any labyrinth header (or with -D).
 */
#ifndef LMM_PORT_LOCK_BYTES
#define LMM_PORT_LOCK_BYTES 64
#endif

typedef struct lmm_port_lock {
	_Alignas(16) unsigned char opaque[LMM_PORT_LOCK_BYTES];
} lmm_port_lock_t;

/* Whatever the port needs to restore the interrupt state (x86: RFLAGS). */
typedef uintptr_t lmm_irqflags_t;

/* The execution context of the caller, as the port sees it. */
enum lmm_context {
	LMM_CTX_NORMAL = 0,    /* thread/kernel context, interrupts enabled: may do slow work */
	LMM_CTX_IRQS_OFF = 1,  /* interrupts disabled, not inside a handler                  */
	LMM_CTX_INTERRUPT = 2, /* inside an interrupt (or signal) handler                      */
};

/*
 * 1. Initialise a lock.  @name is a static string the port may keep for reports.
 *    Called from lmm_begin() only (normal context, single-threaded).
 */
void lmm_port_lock_init(lmm_port_lock_t *lock, const char *name);

/*
 * 2. Save the interrupt state, disable interrupts on this CPU, then take @lock.
 *    Any context.  Must nest with interrupts already off and must never enable them.
 *    mm/ holds a lock only for short, bounded sections and never takes two at once.
 */
lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *lock);

/*
 * 3. Release @lock, then restore the interrupt state saved in @flags (never a blind
 *    "enable": if interrupts were off before the matching irqsave they stay off).
 */
void lmm_port_unlock_irqrestore(lmm_port_lock_t *lock, lmm_irqflags_t flags);

/*
 * 4. The kernel-virtual address of physical address @phys.  Called at init for the
 *    base of every usable region; each region must then be mapped virtually
 *    contiguous (a direct map / HHDM satisfies this).  Any context.
 */
void *lmm_port_phys_to_virt(uint64_t phys);

/* 5. The context of the caller right now.  Any context; must be cheap. */
enum lmm_context lmm_port_context(void);

/*
 * 6. The owner tag of the caller, recorded in exclusive pages it allocates without
 *    naming an owner.  Any context.  0 is reserved for "no owner".  A kernel might
 *    return (cpu << 8 | in_interrupt) + 1, or a thread id.
 */
uint16_t lmm_port_owner(void);

/*
 * 7. Write one complete, NUL-terminated log line (no trailing newline).  Never called
 *    with an mm/ lock held, but may be called from any context, including interrupt
 *    handlers that report a refused operation.
 */
void lmm_port_log(const char *line);

/*
 * 8. Unrecoverable corruption (a canary overwritten, an impossible metadata state).
 *    Must not return.  Any context.
 */
_Noreturn void lmm_port_fatal(const char *reason);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_MM_PORT_H */

/*
 * mm_port.h - everything mm/ needs from the kernel that embeds it.
 *
 * mm/ is freestanding C11: it calls exactly the twelve hooks below and nothing else.
 * A host kernel implements them once (mm/README.md has a complete minimal port, for one
 * CPU and for several).  The hooks are plain functions resolved at link time, so a port
 * costs no indirection; the seven on the common path may be static inline instead
 * (LMM_PORT_INLINE_HEADER below).  Compile-time knobs (LMM_PORT_*) are set with -D or
 * before the first labyrinth header is included, identically for every file that
 * includes it.
 */
#ifndef LABYRINTH_MM_PORT_H
#define LABYRINTH_MM_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Compile-time knobs ----------------------------------------------------------- */

/*
 * Most CPUs that will ever call mm/ at once.  Each one gets a per-CPU cache and pool
 * slice inside struct lmm (128 bytes each on 64-bit hosts, 64 on 32-bit: a power of two,
 * so a shift finds a CPU's slot).  1 (the default) is a uniprocessor port:
 * lmm_port_irq_save_cpu() (hook 6) is then never called.
 */
#ifndef LMM_PORT_MAX_CPUS
#define LMM_PORT_MAX_CPUS 1
#endif

/*
 * Width of a physical address on this machine: ranges at or above 2^LMM_PORT_PHYS_BITS
 * are refused as absurd.  52 covers x86-64 and AArch64; RISC-V Sv57 needs 56.
 */
#ifndef LMM_PORT_PHYS_BITS
#define LMM_PORT_PHYS_BITS 52
#endif

/*
 * Storage for one port spinlock, embedded in struct lmm.  mm/ never looks inside;
 * the port casts it to its own lock type.  A larger lock: raise this.
 */
#ifndef LMM_PORT_LOCK_BYTES
#define LMM_PORT_LOCK_BYTES 64
#endif

/*
 * Optional, both or neither: how a saved interrupt state (hooks 2 and 4) tells that
 * interrupts were enabled, (flags & LMM_PORT_IRQFLAGS_MASK) == LMM_PORT_IRQFLAGS_ENABLED
 * (x86 RFLAGS: 0x200 and 0x200).  Define them only if interrupt handlers run with
 * interrupts disabled on their CPU (x86 interrupt gates, RISC-V and Arm trap entry do,
 * unless a handler enables them again).  Debug builds then ask hook 8 whether a KERNEL
 * allocation comes from a handler only when interrupts were off at the call: in normal
 * context it costs no call.  Without them, hook 8 is asked on every such allocation.
 */
/* #define LMM_PORT_IRQFLAGS_MASK 0x200 */
/* #define LMM_PORT_IRQFLAGS_ENABLED 0x200 */
#if defined(LMM_PORT_IRQFLAGS_MASK) != defined(LMM_PORT_IRQFLAGS_ENABLED)
#error "mm_port.h: define both LMM_PORT_IRQFLAGS_MASK and LMM_PORT_IRQFLAGS_ENABLED, or neither"
#endif

/*
 * Optional: the seven hooks on the common path (2-6, 8 and 9) as static inline functions
 * in a header of the port's own, so that mm/ makes no call for them.  Define this to its
 * name, e.g. -DLMM_PORT_INLINE_HEADER='"my_mm_hooks.h"', for every file that includes this
 * one; it is included at the end of this file, after everything else here, and those
 * seven are not declared here.  Same contracts.  The other five stay linked functions.
 */
/* #define LMM_PORT_INLINE_HEADER "my_mm_hooks.h" */

typedef struct lmm_port_lock {
	_Alignas(16) unsigned char opaque[LMM_PORT_LOCK_BYTES];
} lmm_port_lock_t;

/*
 * Whatever the port needs to restore the interrupt state it saved (x86: RFLAGS;
 * RISC-V: sstatus.SIE; a push_off/pop_off kernel: nothing, return 0).  mm/ only stores
 * it and hands it back, in strict LIFO order.
 */
typedef uintptr_t lmm_irqflags_t;

/*
 * What hook 6 returns: two words, so that the common ABIs (x86-64, AArch64, RISC-V)
 * return it in two registers.
 */
typedef struct lmm_irq_cpu {
	lmm_irqflags_t flags; /* the interrupt state before the call, for hook 5 */
	uintptr_t cpu;        /* the calling CPU's index                         */
} lmm_irq_cpu_t;

/* The execution context of the caller, as the port sees it. */
enum lmm_context {
	LMM_CTX_NORMAL = 0,    /* thread/kernel context, interrupts enabled                 */
	LMM_CTX_IRQS_OFF = 1,  /* interrupts disabled, not inside a handler                 */
	LMM_CTX_INTERRUPT = 2, /* inside an interrupt (or signal) handler                    */
};

struct lmm_report; /* a refused call, described in <labyrinth/mm.h> */

/* ---- Locks and interrupts ---------------------------------------------------------- */

/*
 * 1. Initialise a lock.  @name is a static string the port may keep for reports.
 *    Called from lmm_begin() only: init, single-threaded; interrupts may be off.
 */
void lmm_port_lock_init(lmm_port_lock_t *lock, const char *name);

#ifndef LMM_PORT_INLINE_HEADER /* else hooks 2-6 are the port's, static inline (end of file) */
/*
 * 2. Save the interrupt state, disable interrupts on this CPU, then take @lock.
 *    Any context.  Must nest with interrupts already off and must never enable them.
 *    mm/ has one lock per struct lmm, holds it only for bounded work and never takes it
 *    twice, so a lock that keeps its own interrupt nesting (push_off/pop_off) may
 *    return 0 here and ignore the flags in hook 3.
 */
lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *lock);

/*
 * 3. Release @lock, then restore the interrupt state saved in @flags (never a blind
 *    "enable": if interrupts were off before the matching irqsave they stay off).
 */
void lmm_port_unlock_irqrestore(lmm_port_lock_t *lock, lmm_irqflags_t flags);

/*
 * 4. Disable interrupts on this CPU and return the previous state; 5. put it back.
 *    Any context; must nest (mm/ may take the lock, hook 2, inside such a section).
 *    The per-CPU caches rely on this alone: between 4 and 5 the caller cannot be
 *    preempted or migrated, and no handler on this CPU can run.
 */
lmm_irqflags_t lmm_port_irq_save(void);
void lmm_port_irq_restore(lmm_irqflags_t flags);

/*
 * 6. Hook 4 and the calling CPU's index, 0 .. LMM_PORT_MAX_CPUS-1, in one call: disable
 *    interrupts on this CPU, then say which CPU this is (stable until hook 5 puts the
 *    state back).  Every allocation and free makes this call, so it must be cheap.  Same
 *    context rules as hook 4, and it may run with the mm/ lock held: take no lock, call
 *    nothing that does.  Never called when LMM_PORT_MAX_CPUS is 1 (hook 4 is, instead).
 */
lmm_irq_cpu_t lmm_port_irq_save_cpu(void);
#endif

/* ---- Memory and identity --------------------------------------------------------------- */

/*
 * 7. The kernel-virtual address of physical address @phys.  Init only: lmm_init(), for
 *    the first and last page of every usable range and for the metadata, and, where two
 *    usable ranges touch, the pages either side (lmm_init(), or lmm_add_range() when
 *    the table is full).  A range must be mapped virtually contiguous (a direct map /
 *    HHDM is); touching ranges mapped apart stay separate regions.
 */
void *lmm_port_phys_to_virt(uint64_t phys);

#ifndef LMM_PORT_INLINE_HEADER /* likewise hooks 8 and 9 */
/*
 * 8. The context of the caller right now.  Any context; must be cheap.  Needs an
 *    interrupt-nesting count kept by the kernel's interrupt entry (mm/README.md shows
 *    the few lines it takes).  Asked only when the answer decides something or is
 *    recorded: debug builds refusing a KERNEL allocation from a handler (with
 *    LMM_PORT_IRQFLAGS_* defined, only when interrupts were off), the calls that are
 *    not allowed in every context (mm/README.md section 7), every refusal's record,
 *    and holder records.
 */
enum lmm_context lmm_port_context(void);

/*
 * 9. The owner tag of the caller, recorded in exclusive pages it allocates without
 *    naming an owner and checked when it frees one.  Any context, and possibly with the
 *    mm/ lock held (a free that names no owner asks under it): take no lock, call
 *    nothing that does.  0 means "no owner".
 *    One tag per CPU and context works well: ((cpu << 1) | in_interrupt) + 1 (the recipe
 *    of mm/README.md and of the Labyrinth kernel's KMM_OWNER); or a thread id.
 */
uint16_t lmm_port_owner(void);
#endif

/* ---- Reporting --------------------------------------------------------------------------- */

/*
 * 10. A refused call (a bad free, a wrong owner, a bad order ...), as a structured
 *     record that mm/ has already counted.  Called from the context of the refused
 *     call, interrupt handlers included, but never with the mm/ lock held or with
 *     interrupts disabled on mm/'s behalf.  mm/ formats no text for it: the port
 *     decides whether and when to print it (lmm_report_format() makes the line), e.g.
 *     print at once in normal context and queue it from a handler.  @r is valid only
 *     during the call.  mm/ holds nothing while it runs, so the hook may call mm/ back
 *     with any call its context allows (lmm_report_format(), lmm_get_stats()); a call
 *     refused there reports again, so it must make none that could be refused.
 */
void lmm_port_report(const struct lmm_report *r);

/*
 * 11. Write one complete, NUL-terminated log line (no trailing newline, at most 191
 *     characters): init messages, lmm_dump(), lmm_check(), lmm_dump_holders().  Only
 *     ever called from those calls, never from a handler (they refuse there), never
 *     with the mm/ lock held or interrupts off on mm/'s behalf; interrupts may be off
 *     if the caller had them off (early init often does), so a console that sleeps
 *     must not assume normal context.
 */
void lmm_port_log(const char *line);

/*
 * 12. Unrecoverable corruption (a canary overwritten, an impossible frame state, a
 *     *_locked function entered without the lock).  Must not return and must not call
 *     back into mm/.  Any context, possibly with the mm/ lock held.
 */
_Noreturn void lmm_port_fatal(const char *reason);

#ifdef __cplusplus
}
#endif

#ifdef LMM_PORT_INLINE_HEADER
#include LMM_PORT_INLINE_HEADER /* hooks 2-6, 8 and 9, static inline */
#endif

#endif /* LABYRINTH_MM_PORT_H */

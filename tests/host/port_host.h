/*
 * port_host.h - the Linux host port of mm/, for tests, fuzzing and benchmarks.
 *
 * Threads play CPUs and a POSIX signal plays the interrupt.  "Disabling interrupts"
 * is a per-thread flag: a signal that arrives while it is set is held pending and its
 * handler runs when the flag is restored, exactly like a masked IRQ (and far cheaper
 * than sigprocmask, so benchmarks measure the allocator, not a system call).
 * Physical memory is an mmap'd arena: phys = virt - offset.
 */
#ifndef LABYRINTH_PORT_HOST_H
#define LABYRINTH_PORT_HOST_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/mm.h>

/* Reserve @bytes of address space (MAP_NORESERVE: untouched pages cost nothing) that
 * stands for physical [0, bytes), replacing any earlier arena.  Returns the virtual
 * base; aborts on failure. */
void *host_arena_map(uint64_t bytes);
/* Add a separate mapping standing for physical [phys, phys+bytes) (at most 64): lets a
 * 32-bit host place RAM at 64 GiB without 64 GiB of address space. */
void *host_arena_map_window(uint64_t phys, uint64_t bytes);
/* Largest single arena worth mapping on this host (1 GiB on 32-bit hosts, else 64 TiB;
 * the environment variable LMM_HOST_ARENA_MAX overrides it, e.g. under qemu-user, whose
 * own page tables would pay for a 65 GiB hole).  Beyond it, map windows over the RAM
 * ranges only, as mm_setup() in mm_harness.h does. */
uint64_t host_arena_max(void);
void host_arena_unmap(void);
/* Touch every page of [phys, phys+len) so that timings do not include page faults. */
void host_arena_touch(uint64_t phys, uint64_t len);
uint64_t host_virt_to_phys(const void *p);

/* The simulated interrupt: @handler runs in "interrupt context" on the thread that
 * receives @signo, or later when that thread re-enables interrupts. */
void host_irq_install(int signo, void (*handler)(void));
void host_irq_uninstall(int signo);

/* Interrupt state of the calling thread, as the port hooks see it. */
lmm_irqflags_t host_irq_save(void);
void host_irq_restore(lmm_irqflags_t flags);
bool host_in_interrupt(void);
uint64_t host_irqs_deferred(void); /* signals held pending then run on restore */

/* Owner tag for the calling thread (default: thread number + 1; 0x8000|n in a handler). */
void host_set_owner(uint16_t owner);
uint16_t host_thread_owner(void);
/* While on, lmm_port_owner() says 0 (no owner), as a port that breaks its contract would. */
void host_owner_zero(bool on);

/* CPUs: each thread claims a slot below LMM_PORT_MAX_CPUS; a single-threaded test may
 * pretend to move to another CPU (nothing else may be using that slot). */
/* The calling thread's CPU slot (claimed on first use), as hook 6 gives it to mm/. */
unsigned host_cpu_id(void);
void host_set_cpu(unsigned cpu);

/* Refusal reports: the port keeps the last 64 records (and logs their text). */
uint64_t host_report_count(void);
const struct lmm_report *host_report_last(void); /* NULL if none */
void host_reports_clear(void);

/* Logging: lines are captured; printed to stderr when verbose or LMM_VERBOSE=1. */
void host_log_verbose(bool on);
uint64_t host_log_count(void);
const char *host_log_last(void); /* last line logged by this process */
bool host_log_contains(const char *needle); /* in any of the last 64 lines */
void host_log_clear(void);

/* Fatal hook: when armed, lmm_port_fatal() longjmps back instead of aborting. */
#include <setjmp.h>
extern __thread sigjmp_buf *host_fatal_jmp;
const char *host_fatal_reason(void);

/* Called once (then cleared) right after the next lock release, interrupts still as the
 * releaser had them: a single-threaded test plays another CPU that was waiting for it. */
extern void (*host_after_unlock)(void);

/* Lock statistics: reports of locks spun on too long. */
uint64_t host_lock_slow_reports(void);
/* Every lock taken through the port, by any thread: proves the per-CPU fast path takes none. */
uint64_t host_lock_acquisitions(void);

#endif /* LABYRINTH_PORT_HOST_H */

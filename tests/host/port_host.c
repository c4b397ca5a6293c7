/*
 * port_host.c - mm/'s twelve port hooks for a Linux process (see port_host.h).
 *
 * The lock is a ticket lock on C11 atomics with the holder's thread recorded, so
 * ThreadSanitizer understands it and re-acquisition by the holder is a fatal report
 * rather than a hang.  Interrupt state is per thread; see host_irq_*.
 */
#define _GNU_SOURCE
#include "port_host.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- Arena ------------------------------------------------------------------------ */

/*
 * Physical memory is a small table of windows, each one mmap standing for physical
 * [phys, phys + bytes).  Usually there is a single window at phys 0; a 32-bit host,
 * whose address space cannot hold a 65 GiB arena, maps only the windows that hold
 * RAM, so physical addresses stay 64-bit while pointers are 32 bits.
 */
#define HOST_WINDOWS 64

static struct host_window {
	uint64_t phys, bytes;
	uintptr_t base;
} windows[HOST_WINDOWS];
static unsigned nwindows;

static const struct host_window *window_of_phys(uint64_t phys)
{
	for (unsigned i = 0; i < nwindows; i++)
		if (phys - windows[i].phys < windows[i].bytes)
			return &windows[i];
	return NULL;
}

void *host_arena_map_window(uint64_t phys, uint64_t bytes)
{
	for (unsigned i = 0; i < nwindows; i++)
		if (phys < windows[i].phys + windows[i].bytes && windows[i].phys < phys + bytes) {
			fprintf(stderr, "host_arena_map_window: [0x%llx +0x%llx) overlaps a window\n",
				(unsigned long long)phys, (unsigned long long)bytes);
			abort();
		}
	if (nwindows == HOST_WINDOWS || bytes == 0 || bytes > SIZE_MAX) {
		fprintf(stderr, "host_arena_map_window: cannot map [0x%llx +0x%llx) (%u windows)\n",
			(unsigned long long)phys, (unsigned long long)bytes, nwindows);
		abort();
	}
	void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("host_arena_map: mmap");
		abort();
	}
	windows[nwindows++] = (struct host_window){ phys, bytes, (uintptr_t)p };
	return p;
}

uint64_t host_arena_max(void)
{
	const char *env = getenv("LMM_HOST_ARENA_MAX");
	if (env && *env)
		return strtoull(env, NULL, 0);
	return UINTPTR_MAX > 0xffffffffu ? 1ull << 46 : 1ull << 30;
}

void *host_arena_map(uint64_t bytes)
{
	host_arena_unmap();
	return host_arena_map_window(0, bytes);
}

void host_arena_unmap(void)
{
	for (unsigned i = 0; i < nwindows; i++)
		munmap((void *)windows[i].base, (size_t)windows[i].bytes);
	nwindows = 0;
}

void host_arena_touch(uint64_t phys, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 4096)
		*(volatile char *)lmm_port_phys_to_virt(phys + off) = 0;
}

uint64_t host_virt_to_phys(const void *p)
{
	uintptr_t va = (uintptr_t)p;
	for (unsigned i = 0; i < nwindows; i++)
		if (va - windows[i].base < windows[i].bytes)
			return windows[i].phys + (va - windows[i].base);
	/* Not in any window: what a single arena at phys 0 would say (tests of bad frees). */
	return (uint64_t)(va - (nwindows ? windows[0].base : 0));
}

void *lmm_port_phys_to_virt(uint64_t phys)
{
	const struct host_window *w = window_of_phys(phys);
	if (!w) {
		fprintf(stderr, "port_host: phys 0x%llx outside the arena's %u windows\n",
			(unsigned long long)phys, nwindows);
		abort();
	}
	return (void *)(w->base + (uintptr_t)(phys - w->phys));
}

/* ---- Interrupts ----------------------------------------------------------------------- */

static __thread volatile sig_atomic_t irq_off;     /* interrupts "disabled" on this thread */
static __thread volatile sig_atomic_t irq_pending; /* a signal arrived while disabled      */
static __thread volatile sig_atomic_t in_irq;
static void (*irq_handler)(void);
static atomic_ullong irqs_deferred;

/*
 * Interrupts go off before the handler context is entered and come back on only after
 * it is left, so a signal landing between the two steps is deferred, never nested.
 */
static void run_handler(void)
{
	irq_off = 1;
	atomic_signal_fence(memory_order_seq_cst);
	in_irq = 1;
	atomic_signal_fence(memory_order_seq_cst);
	irq_handler();
	atomic_signal_fence(memory_order_seq_cst);
	in_irq = 0;
	atomic_signal_fence(memory_order_seq_cst);
	irq_off = 0;
}

static void on_signal(int signo)
{
	(void)signo;
	int saved_errno = errno;
	if (irq_handler) {
		if (irq_off)
			irq_pending = 1;
		else
			run_handler();
	}
	errno = saved_errno;
}

void host_irq_install(int signo, void (*handler)(void))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	irq_handler = handler;
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(signo, &sa, NULL);
}

void host_irq_uninstall(int signo)
{
	signal(signo, SIG_IGN);
	irq_handler = NULL;
}

lmm_irqflags_t host_irq_save(void)
{
	lmm_irqflags_t was = (lmm_irqflags_t)irq_off;
	irq_off = 1;
	atomic_signal_fence(memory_order_seq_cst);
	return was;
}

void host_irq_restore(lmm_irqflags_t flags)
{
	atomic_signal_fence(memory_order_seq_cst);
	irq_off = (sig_atomic_t)flags;
	/* Deliver what arrived while masked, as the CPU would on sti. */
	while (!flags && irq_pending && irq_handler) {
		irq_pending = 0;
		atomic_fetch_add_explicit(&irqs_deferred, 1, memory_order_relaxed);
		run_handler();
	}
}

bool host_in_interrupt(void)
{
	return in_irq;
}

uint64_t host_irqs_deferred(void)
{
	return atomic_load(&irqs_deferred);
}

enum lmm_context lmm_port_context(void)
{
	if (in_irq)
		return LMM_CTX_INTERRUPT;
	return irq_off ? LMM_CTX_IRQS_OFF : LMM_CTX_NORMAL;
}

lmm_irqflags_t lmm_port_irq_save(void)
{
	return host_irq_save();
}

void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	host_irq_restore(flags);
}

/* ---- CPUs: one slot per live thread ------------------------------------------------------- */

/*
 * A thread is a CPU: it claims a free slot below LMM_PORT_MAX_CPUS the first time mm/
 * asks, and gives it back when it exits, so tests may start any number of threads over
 * time but never more than LMM_PORT_MAX_CPUS at once (that would be two CPUs sharing one
 * per-CPU cache: a fatal report, not a silent race).
 */
static atomic_uint cpu_slots_used;
static pthread_key_t cpu_slot_key;
static pthread_once_t cpu_slot_once = PTHREAD_ONCE_INIT;
static __thread int cpu_slot = -1;

static void cpu_slot_release(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg - 1;
	atomic_fetch_and(&cpu_slots_used, ~(1u << slot));
}

static void cpu_slot_key_create(void)
{
	pthread_key_create(&cpu_slot_key, cpu_slot_release);
}

static int cpu_slot_claim(void)
{
	_Static_assert(LMM_PORT_MAX_CPUS <= 32, "the host port keeps CPU slots in a 32-bit mask");
	pthread_once(&cpu_slot_once, cpu_slot_key_create);
	for (;;) {
		unsigned used = atomic_load(&cpu_slots_used);
		unsigned slot = 0;
		while (slot < LMM_PORT_MAX_CPUS && (used & (1u << slot)))
			slot++;
		if (slot == LMM_PORT_MAX_CPUS)
			lmm_port_fatal("host port: more live threads than LMM_PORT_MAX_CPUS");
		if (atomic_compare_exchange_weak(&cpu_slots_used, &used, used | (1u << slot))) {
			pthread_setspecific(cpu_slot_key, (void *)(uintptr_t)(slot + 1));
			return (int)slot;
		}
	}
}

unsigned host_cpu_id(void)
{
	if (cpu_slot < 0)
		cpu_slot = cpu_slot_claim();
	return (unsigned)cpu_slot;
}

lmm_irq_cpu_t lmm_port_irq_save_cpu(void)
{
	lmm_irqflags_t flags = host_irq_save();
	return (lmm_irq_cpu_t){ flags, host_cpu_id() };
}

void host_set_cpu(unsigned cpu)
{
	cpu_slot = (int)cpu; /* the test promises no other thread uses it meanwhile */
}

/* ---- Owners ------------------------------------------------------------------------------ */

static atomic_uint next_thread_no;
static __thread uint16_t thread_owner;

uint16_t host_thread_owner(void)
{
	if (!thread_owner)
		thread_owner = (uint16_t)(atomic_fetch_add(&next_thread_no, 1) + 1);
	return thread_owner;
}

void host_set_owner(uint16_t owner)
{
	thread_owner = owner;
}

static __thread bool owner_zero;

void host_owner_zero(bool on)
{
	owner_zero = on;
}

uint16_t lmm_port_owner(void)
{
	if (owner_zero)
		return 0;
	uint16_t o = host_thread_owner();
	return in_irq ? (uint16_t)(0x8000u | o) : o;
}

/* ---- Lock ---------------------------------------------------------------------------------- */

/*
 * Test-and-test-and-set with a bounded spin before yielding: the host has fewer cores
 * than tests have threads, and a waiter that never yields starves the holder.  The
 * holder is a fixed per-thread number (not the owner tag, which tests may change).
 */
struct host_lock {
	atomic_int locked;
	atomic_int holder; /* thread number of the holder, 0 when free */
	const char *name;
};
_Static_assert(sizeof(struct host_lock) <= LMM_PORT_LOCK_BYTES, "host lock too big");

static atomic_ullong slow_reports;
static atomic_ullong lock_acquisitions;

/* Spin-wait hint: PAUSE on x86; elsewhere give the CPU away (qemu-user runs threads
 * on fewer cores than it emulates, and a spinning waiter would starve the holder). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	sched_yield();
#endif
}
#define SPIN_REPORT_AFTER (1ull << 28)

#define SPINS_BEFORE_YIELD 256

static atomic_int next_lock_thread;
static __thread int lock_thread_no;

static int thread_no(void)
{
	if (!lock_thread_no)
		lock_thread_no = atomic_fetch_add(&next_lock_thread, 1) + 1;
	return lock_thread_no;
}

void lmm_port_lock_init(lmm_port_lock_t *l, const char *name)
{
	struct host_lock *h = (struct host_lock *)l->opaque;
	atomic_init(&h->locked, 0);
	atomic_init(&h->holder, 0);
	h->name = name;
}

lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *l)
{
	struct host_lock *h = (struct host_lock *)l->opaque;
	lmm_irqflags_t flags = host_irq_save();
	int me = thread_no();

	if (atomic_load_explicit(&h->holder, memory_order_relaxed) == me) {
		char msg[128];
		snprintf(msg, sizeof(msg), "lock '%s' taken again by its holder (thread %d)", h->name, me);
		lmm_port_fatal(msg);
	}
	uint64_t spins = 0;
	while (atomic_exchange_explicit(&h->locked, 1, memory_order_acquire)) {
		while (atomic_load_explicit(&h->locked, memory_order_relaxed)) {
			if (++spins == SPIN_REPORT_AFTER) {
				atomic_fetch_add(&slow_reports, 1);
				fprintf(stderr, "port_host: lock '%s' spun on for %llu iterations (holder %d)\n",
					h->name, (unsigned long long)spins, atomic_load(&h->holder));
			}
			if (spins % SPINS_BEFORE_YIELD == 0)
				sched_yield();
			else
				cpu_relax();
		}
	}
	atomic_store_explicit(&h->holder, me, memory_order_relaxed);
	atomic_fetch_add_explicit(&lock_acquisitions, 1, memory_order_relaxed);
	return flags;
}

void (*host_after_unlock)(void);

void lmm_port_unlock_irqrestore(lmm_port_lock_t *l, lmm_irqflags_t flags)
{
	struct host_lock *h = (struct host_lock *)l->opaque;
	atomic_store_explicit(&h->holder, 0, memory_order_relaxed);
	atomic_store_explicit(&h->locked, 0, memory_order_release);
	/* A test's stand-in for "another CPU takes the lock the moment it is free". */
	void (*after)(void) = host_after_unlock;
	if (after) {
		host_after_unlock = NULL;
		after();
	}
	host_irq_restore(flags);
}

uint64_t host_lock_slow_reports(void)
{
	return atomic_load(&slow_reports);
}

uint64_t host_lock_acquisitions(void)
{
	return atomic_load(&lock_acquisitions);
}

/* ---- Log and fatal ------------------------------------------------------------------------ */

#define LOG_KEEP 64
static char log_lines[LOG_KEEP][256];
static atomic_ullong log_n;
static atomic_int verbose = -1;

void host_log_verbose(bool on)
{
	verbose = on;
}

void lmm_port_log(const char *line)
{
	if (verbose < 0) {
		const char *v = getenv("LMM_VERBOSE");
		verbose = v && *v == '1';
	}
	unsigned long long n = atomic_fetch_add(&log_n, 1);
	/* Lines from concurrent threads may tear in the capture; tests that inspect
	 * the log do so single-threaded. */
	snprintf(log_lines[n % LOG_KEEP], sizeof(log_lines[0]), "%s", line);
	if (verbose)
		fprintf(stderr, "  | %s\n", line);
}

uint64_t host_log_count(void)
{
	return atomic_load(&log_n);
}

const char *host_log_last(void)
{
	unsigned long long n = atomic_load(&log_n);
	return n ? log_lines[(n - 1) % LOG_KEEP] : "";
}

bool host_log_contains(const char *needle)
{
	unsigned long long n = atomic_load(&log_n);
	for (unsigned long long i = n > LOG_KEEP ? n - LOG_KEEP : 0; i < n; i++)
		if (strstr(log_lines[i % LOG_KEEP], needle))
			return true;
	return false;
}

void host_log_clear(void)
{
	atomic_store(&log_n, 0);
	memset(log_lines, 0, sizeof(log_lines));
}

__thread sigjmp_buf *host_fatal_jmp;
static char fatal_reason[256];

const char *host_fatal_reason(void)
{
	return fatal_reason;
}

/* ---- Refusal reports ------------------------------------------------------------------------ */

#define REPORT_KEEP 64
static struct lmm_report reports[REPORT_KEEP];
static atomic_ullong report_n;

/*
 * Records are kept for the tests (the last REPORT_KEEP; concurrent threads may tear an
 * entry, tests that inspect them do so single-threaded) and their text is put in the
 * log capture like any line, so LMM_VERBOSE=1 shows them.
 */
void lmm_port_report(const struct lmm_report *r)
{
	char line[256];
	unsigned long long n = atomic_fetch_add(&report_n, 1);
	reports[n % REPORT_KEEP] = *r;
	lmm_report_format(r, line, sizeof(line));
	lmm_port_log(line);
}

uint64_t host_report_count(void)
{
	return atomic_load(&report_n);
}

const struct lmm_report *host_report_last(void)
{
	unsigned long long n = atomic_load(&report_n);
	return n ? &reports[(n - 1) % REPORT_KEEP] : NULL;
}

void host_reports_clear(void)
{
	atomic_store(&report_n, 0);
	memset(reports, 0, sizeof(reports));
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	snprintf(fatal_reason, sizeof(fatal_reason), "%s", reason);
	if (host_fatal_jmp) {
		sigjmp_buf *j = host_fatal_jmp;
		host_fatal_jmp = NULL;
		irq_off = 0;
		siglongjmp(*j, 1);
	}
	fprintf(stderr, "lmm fatal: %s\n", reason);
	abort();
}

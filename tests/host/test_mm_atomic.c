/*
 * test_mm_atomic.c - the atomic path under fire: the five emergency-pool properties, every
 * exclusive-ownership violation, a lock re-taken by its holder, and millions of mixed
 * operations from threads (the CPUs) and a high-frequency timer signal (the interrupt).
 *
 * Built twice: with ASan+UBSan (build/host/test_mm_atomic) and with ThreadSanitizer
 * (build/host/tsan/test_mm_atomic, started by build/host/test_mm_atomic_tsan, which is
 * this same file compiled with -DLMM_TSAN_LAUNCHER; see the end of the file).
 * Stress knobs: SEED=n (default fixed), OPS=n per thread, THREADS=n, IRQ_HZ=n per thread,
 * STRESS_SECONDS=n (time cap).  Cases that find a bug in mm/ or the port name the line.
 */
#define _GNU_SOURCE

#ifndef LMM_TSAN_LAUNCHER

#include "mm_harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id /* glibc < 2.35 spells it only this way */
#define sigev_notify_thread_id _sigev_un._tid
#endif

#ifdef __SANITIZE_THREAD__
#define SAN_TSAN 1
#define CASE_PREFIX "tsan/"
#else
#define SAN_TSAN 0
#define CASE_PREFIX ""
#endif

/*
 * Operations per stress thread: millions in all under ASan, fewer under the slower TSan.
 * STRESS_SECONDS caps the stress phase for slow builds (-O0, qemu-user); it is a safety
 * net, not the bound: the summary line says how many operations actually ran.
 */
#ifndef STRESS_OPS
#if SAN_TSAN
#define STRESS_OPS 150000
#else
#define STRESS_OPS 1000000
#endif
#endif
#ifndef STRESS_SECONDS
#if SAN_TSAN
#define STRESS_SECONDS 45
#else
#define STRESS_SECONDS 15
#endif
#endif

#define IRQ_SIGNO SIGUSR1
#define POOL_TARGET 64
#define POOL_LOW 16
#define HANDLER_BIT 0x8000u /* the host port tags a handler's owner with it */

static struct lmm mm;

#define RUN_CASE(fn) testlib_run(CASE_PREFIX #fn, fn)

/* ---- Fixtures ------------------------------------------------------------------------- */

/* @arena bytes of RAM, the first 64 KiB reserved; the pool marks as given; the default mm. */
static enum lmm_status setup_with(uint64_t arena, uint32_t target, uint32_t low, uint32_t flags)
{
	struct range use[] = { { 0, arena } };
	struct range res[] = { { 0, 64 * 1024 } };
	struct lmm_config cfg = { .pool_target = target, .pool_low = low, .flags = LMM_CFG_QUIET | flags };
	enum lmm_status st = mm_setup(&mm, arena, use, 1, res, 1, &cfg);
	if (st == LMM_OK)
		lmm_set_default(&mm);
	return st;
}

static enum lmm_status setup(void)
{
	return setup_with(16 * MiB, POOL_TARGET, POOL_LOW, 0);
}

static uint64_t phys(const void *p)
{
	return host_virt_to_phys(p);
}

/* Kernel-virtual address of frame @idx, from the public struct (mirrors mm/internal.h). */
static void *frame_virt(uint32_t idx)
{
	const struct lmm_region *r = &mm.regions[mm.frames[idx].region];
	return (void *)(r->vbase + ((uintptr_t)(idx - r->first_index) << LMM_PAGE_SHIFT));
}

/*
 * The pages the pool holds right now, read from its private list.  Single-threaded
 * cases only: it is how a test names the exact pages kept in reserve.
 */
static size_t pool_snapshot(void **out, size_t max)
{
	size_t n = 0;
	for (uint32_t i = mm.pool_head; i != LMM_NIL && n < max; i = mm.frames[i].next)
		out[n++] = frame_virt(i);
	return n;
}

static bool in_set(void *const *set, size_t n, const void *p)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* Allocate with @gfp at order 0 until NULL; returns how many, pointers in *out (malloc'd). */
static size_t exhaust(lmm_gfp_t gfp, void ***out)
{
	size_t cap = (size_t)mm_stats(&mm).managed + 1, n = 0;
	void **v = calloc(cap, sizeof(*v));
	void *p;
	while (n < cap && (p = lmm_alloc_pages(&mm, 0, gfp)) != NULL)
		v[n++] = p;
	*out = v;
	return n;
}

static void free_all(void **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lmm_free_pages(&mm, v[i], 0);
	free(v);
}

static bool bytes_are(const void *p, size_t len, unsigned char c)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i] != c)
			return false;
	return true;
}

/* Signature written into a few words of every page of a block, checked before it goes back. */
static void sig_fill(void *p, unsigned order, uint64_t sig)
{
	for (uint64_t k = 0; k < (1ull << order); k++) {
		uint64_t *w = (uint64_t *)((char *)p + (k << LMM_PAGE_SHIFT));
		w[0] = sig ^ k;
		w[257] = ~sig + k;
		w[511] = sig * 0x9e3779b97f4a7c15ull + k;
	}
}

static bool sig_ok(const void *p, unsigned order, uint64_t sig)
{
	for (uint64_t k = 0; k < (1ull << order); k++) {
		const uint64_t *w = (const uint64_t *)((const char *)p + (k << LMM_PAGE_SHIFT));
		if (w[0] != (sig ^ k) || w[257] != ~sig + k || w[511] != sig * 0x9e3779b97f4a7c15ull + k)
			return false;
	}
	return true;
}

static uint64_t cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char hexbuf[64];
static const char *hex_phys(const void *p)
{
	snprintf(hexbuf, sizeof(hexbuf), "phys 0x%" PRIx64, phys(p));
	return hexbuf;
}

/* ---- The simulated interrupt ----------------------------------------------------------- */

/*
 * One handler for the whole program: the port runs irq_entry() in interrupt context;
 * it calls whatever work the current case installed.  interrupt(work) raises the signal
 * on this thread, so the handler has run (or is deferred, if interrupts are off here)
 * by the time raise() returns.
 */
static void (*volatile irq_work)(void);
static __thread volatile sig_atomic_t irq_ran;

static void irq_entry(void)
{
	void (*w)(void) = irq_work;
	irq_ran++;
	if (w)
		w();
}

static int interrupt(void (*work)(void))
{
	irq_ran = 0;
	irq_work = work;
	raise(IRQ_SIGNO);
	irq_work = NULL;
	return irq_ran;
}

/*
 * Handler inputs and outputs for the single-threaded cases (same thread, no races).
 * Volatile, as anything a signal handler writes must be: the compiler cannot see that
 * raise() runs the handler and would otherwise keep stale copies in registers.
 */
static void *volatile irq_ptrs[4 * POOL_TARGET];
static volatile size_t irq_nptrs, irq_want;
static volatile uint32_t irq_u32;
static volatile enum lmm_status irq_st;
static volatile uint16_t irq_owner, irq_to;

static void run_on_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	if (pthread_create(&t, NULL, fn, arg) != 0) {
		perror("pthread_create");
		abort();
	}
	pthread_join(t, NULL);
}

/* ---- Pool property 1: KERNEL allocations never take the reserve ------------------------- */

static void pool_kernel_never_takes_reserve(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.pool == POOL_TARGET && s0.pool_target == POOL_TARGET, "pool %" PRIu64 "/%u at init",
		s0.pool, s0.pool_target);
	void *reserve[POOL_TARGET], *after[POOL_TARGET];
	ASSERT(pool_snapshot(reserve, POOL_TARGET) == POOL_TARGET, "pool list shorter than its count");

	void **v;
	size_t n = exhaust(LMM_GFP_KERNEL, &v);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(n == s0.free, "KERNEL got %zu pages, buddy had %" PRIu64, n, s0.free);
	CHECK(s1.free == 0 && s1.pool == POOL_TARGET, "after exhaustion free %" PRIu64 " pool %" PRIu64,
	       s1.free, s1.pool);
	CHECK(s1.pool_hits == s0.pool_hits, "KERNEL allocations hit the pool");
	for (size_t i = 0; i < n; i++)
		if (in_set(reserve, POOL_TARGET, v[i])) {
			CHECK(0, "KERNEL allocation returned pool page %s", hex_phys(v[i]));
			break;
		}
	CHECK(pool_snapshot(after, POOL_TARGET) == POOL_TARGET &&
		       memcmp(after, reserve, sizeof(reserve)) == 0,
	       "the pool's pages changed under KERNEL pressure");
	/* Larger orders and the other non-reserve flag respect the reserve too. */
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(!lmm_alloc_pages(&mm, o, LMM_GFP_KERNEL), "KERNEL order %u succeeded on empty buddy", o);
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT), "NOWAIT took the reserve");
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_ZERO), "KERNEL|ZERO took the reserve");
	CHECK(mm_stats(&mm).pool == POOL_TARGET, "pool drained by non-reserve callers");

	free_all(v, n);
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(s2.free == s0.free && s2.pool == s0.pool && s2.allocated == 0, "not back to the start");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* ---- Pool property 2: with normal memory gone, ATOMIC still gets exactly the reserve ----- */

static void take_reserve_in_handler(void)
{
	/* Named routine: ATOMIC|EXCLUSIVE, owned by this handler. */
	for (size_t i = 0; i < irq_want; i++) {
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		if (!p)
			break;
		irq_ptrs[irq_nptrs++] = p;
	}
	irq_owner = lmm_port_owner();
	/* One more must fail at once. */
	irq_ptrs[irq_nptrs] = labyrinth_void_alloc_page_gfp_atomic_exclusive();
}

static void free_in_handler(void)
{
	irq_u32 = 0;
	for (size_t i = 0; i < irq_nptrs; i++)
		if (labyrinth_free_page_atomic_exclusive(irq_ptrs[i]) != LMM_OK)
			irq_u32++;
}

static void pool_atomic_gets_reserve_after_kernel_exhaustion(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *reserve[POOL_TARGET];
	ASSERT(pool_snapshot(reserve, POOL_TARGET) == POOL_TARGET, "fixture: pool not full");
	void **v;
	size_t n = exhaust(LMM_GFP_KERNEL, &v);
	ASSERT(n > 0 && !lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL), "fixture: KERNEL not exhausted");
	struct lmm_stats s0 = mm_stats(&mm);

	/* Half the reserve from normal context... */
	size_t got = 0, half = POOL_TARGET / 2;
	void *mine[POOL_TARGET];
	for (size_t i = 0; i < half; i++) {
		void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
		CHECK(p, "normal-context ATOMIC #%zu failed with the pool at %" PRIu64, i, mm_stats(&mm).pool);
		if (!p)
			break;
		CHECK(in_set(reserve, POOL_TARGET, p), "ATOMIC page %s was not from the pool", hex_phys(p));
		mine[got++] = p;
	}
	CHECK(!lmm_alloc_pages(&mm, 1, LMM_GFP_ATOMIC), "ATOMIC order 1 succeeded: the pool is order 0 only");
	/* ...the rest from the interrupt handler, and not one page more. */
	irq_nptrs = 0;
	irq_want = POOL_TARGET; /* asks for more than is left */
	ASSERT(interrupt(take_reserve_in_handler) == 1, "handler did not run");
	CHECK(irq_nptrs == POOL_TARGET - half, "handler got %zu pages, %zu were left", irq_nptrs,
	       (size_t)POOL_TARGET - half);
	CHECK(irq_ptrs[irq_nptrs] == NULL, "handler got a page beyond the reserve");
	CHECK((irq_owner & HANDLER_BIT) != 0, "handler owner 0x%04x has no handler tag", irq_owner);
	for (size_t i = 0; i < irq_nptrs; i++) {
		CHECK(in_set(reserve, POOL_TARGET, irq_ptrs[i]), "handler page %s not from the pool",
		       hex_phys(irq_ptrs[i]));
		CHECK(lmm_page_owner(&mm, irq_ptrs[i]) == irq_owner, "handler page not owned by the handler");
	}
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC), "ATOMIC succeeded after the reserve was used up");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(got + irq_nptrs == POOL_TARGET, "ATOMIC got %zu pages beyond KERNEL's NULL, pool target %d",
	       got + irq_nptrs, POOL_TARGET);
	CHECK(s1.pool == 0 && s1.pool_hits == s0.pool_hits + POOL_TARGET, "pool %" PRIu64 ", hits +%" PRIu64,
	       s1.pool, s1.pool_hits - s0.pool_hits);
	CHECK(s1.pool_low_water == 0, "low-water mark %u after draining", s1.pool_low_water);

	ASSERT(interrupt(free_in_handler) == 1, "handler did not run");
	CHECK(irq_u32 == 0, "%u handler pages refused when their owner freed them", irq_u32);
	for (size_t i = 0; i < got; i++)
		CHECK(lmm_free_pages(&mm, mine[i], 0) == LMM_OK, "free refused");
	free_all(v, n);
	lmm_pool_refill(&mm); /* the normal-context frees above have already topped it up */
	CHECK(mm_stats(&mm).pool == POOL_TARGET, "pool %" PRIu64 " after frees and refill", mm_stats(&mm).pool);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* ---- Pool property 3: the atomic path is O(1) from the pool ------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static long context_switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

#if defined(__x86_64__) || defined(__i386__)
#define CYCLE_UNIT "cycles"
#else
#define CYCLE_UNIT "ns"
#endif

/*
 * Property 3.  The structural part is asserted: a pool allocation changes no buddy
 * counter.  The time is only printed (a behaviour test must not assert a timing bound):
 * the worst case over all samples, and over the rounds in which the host did not switch
 * this thread out (host preemption is not the allocator's cost).
 */
static void pool_atomic_path_is_o1(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	enum { ROUNDS = 2000, K = POOL_TARGET };
	uint64_t *ta = malloc(sizeof(uint64_t) * ROUNDS * K), *tf = malloc(sizeof(uint64_t) * ROUNDS * K);
	size_t na = 0, nf = 0;
	uint64_t clean_worst_a = 0, clean_worst_f = 0;
	int clean_rounds = 0;
	void *pages[K];
	bool structural_ok = true;

	for (int r = 0; r < ROUNDS && structural_ok; r++) {
		uint64_t worst_a = 0, worst_f = 0;
		long csw0 = context_switches();
		lmm_irqflags_t fl = host_irq_save();
		struct lmm_stats s0 = mm_stats(&mm);
		for (int k = 0; k < K; k++) {
			uint64_t t0 = cycles();
			pages[k] = labyrinth_void_alloc_page_gfp_atomic_exclusive();
			uint64_t dt = cycles() - t0;
			ta[na++] = dt;
			worst_a = dt > worst_a ? dt : worst_a;
		}
		struct lmm_stats s1 = mm_stats(&mm);
		/* Structural O(1): every page came off the pool; no buddy list was touched. */
		bool lists_same = memcmp(s0.free_blocks, s1.free_blocks, sizeof(s0.free_blocks)) == 0;
		if (!lists_same || s1.free != s0.free || s1.pool_hits != s0.pool_hits + K ||
		    s1.pool != s0.pool - K) {
			structural_ok = false;
			CHECK(0, "round %d: pool alloc touched the buddy lists (free %" PRIu64 "->%" PRIu64
				  ", hits +%" PRIu64 ", lists %s)", r, s0.free, s1.free,
			       s1.pool_hits - s0.pool_hits, lists_same ? "same" : "changed");
		}
		for (int k = 0; k < K; k++) {
			if (!pages[k]) {
				structural_ok = false;
				CHECK(0, "round %d: pool alloc %d returned NULL", r, k);
				continue;
			}
			uint64_t t0 = cycles();
			enum lmm_status st = labyrinth_free_page_atomic_exclusive(pages[k]);
			uint64_t dt = cycles() - t0;
			tf[nf++] = dt;
			worst_f = dt > worst_f ? dt : worst_f;
			CHECK(st == LMM_OK, "free refused: %s", lmm_status_str(st));
		}
		/* Frees with interrupts off go to the buddy lists, never into the pool. */
		CHECK(mm_stats(&mm).pool == 0, "irqs-off free refilled the pool");
		host_irq_restore(fl);
		if (context_switches() == csw0) {
			clean_rounds++;
			clean_worst_a = worst_a > clean_worst_a ? worst_a : clean_worst_a;
			clean_worst_f = worst_f > clean_worst_f ? worst_f : clean_worst_f;
		}
		CHECK(lmm_pool_refill(&mm) == K, "refill did not restore %d pages", K);
	}
	if (na && nf) {
		qsort(ta, na, sizeof(*ta), cmp_u64);
		qsort(tf, nf, sizeof(*tf), cmp_u64);
		fprintf(stderr,
			"atomic exclusive path with interrupts off (%s), " CYCLE_UNIT ": alloc from the pool: "
			"median %" PRIu64 ", p99 %" PRIu64 ", p99.9 %" PRIu64 ", worst %" PRIu64
			" (%" PRIu64 " in the %d of %d rounds the host did not preempt); free to the buddy "
			"lists: median %" PRIu64 ", p99 %" PRIu64 ", worst %" PRIu64 " (%" PRIu64 " unpreempted)\n",
			SAN_TSAN ? "TSan build" : "non-TSan build", ta[na / 2], ta[na * 99 / 100],
			ta[na * 999 / 1000], ta[na - 1], clean_worst_a, clean_rounds, ROUNDS, tf[nf / 2],
			tf[nf * 99 / 100], tf[nf - 1], clean_worst_f);
	}
	free(ta);
	free(tf);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* ---- Pool property 4: all empty -> NULL at once, counted -------------------------------- */

static void atomic_alloc_in_handler(void)
{
	irq_ptrs[0] = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	irq_ptrs[1] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
}

static void pool_all_empty_atomic_fails_at_once(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void **v, **w;
	size_t n = exhaust(LMM_GFP_KERNEL, &v);
	size_t m = exhaust(LMM_GFP_ATOMIC, &w);
	CHECK(m == POOL_TARGET, "ATOMIC got %zu after KERNEL's NULL, want %d", m, POOL_TARGET);
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.free == 0 && s0.pool == 0, "fixture: not empty");
	uint64_t logs0 = host_log_count();

	uint64_t t0 = cycles();
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
	uint64_t dt = cycles() - t0;
	void *b = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	lmm_irqflags_t fl = host_irq_save();
	void *c = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_ZERO);
	host_irq_restore(fl);
	irq_ptrs[0] = irq_ptrs[1] = (void *)1;
	ASSERT(interrupt(atomic_alloc_in_handler) == 1, "handler did not run");
	CHECK(!a && !b && !c && !irq_ptrs[0] && !irq_ptrs[1], "an ATOMIC allocation succeeded on empty memory");

	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.alloc_failures == s0.alloc_failures + 5, "alloc_failures +%" PRIu64 ", want +5",
	       s1.alloc_failures - s0.alloc_failures);
	CHECK(s1.pool_empty_failures == s0.pool_empty_failures + 5, "pool_empty_failures +%" PRIu64 ", want +5",
	       s1.pool_empty_failures - s0.pool_empty_failures);
	CHECK(s1.refused_total == s0.refused_total, "running out of memory counted as a refusal");
	CHECK(host_log_count() == logs0, "the atomic path logged: %s", host_log_last());
	fprintf(stderr, "ATOMIC on empty pool and buddy: NULL after %" PRIu64 " cycles\n", dt);

	free_all(w, m);
	free_all(v, n);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * pool_empty_failures counts "atomic allocations that found pool AND buddy empty"
 * (mm.h).  An ATOMIC request the pool cannot serve (order > 0) that fails while the
 * pool is full is an ordinary failure, not an empty-pool one: counting it there would
 * tell whoever sizes the pool that it ran dry when it never did.
 */
static void pool_empty_failures_count_only_an_empty_pool(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void **v;
	size_t n = exhaust(LMM_GFP_KERNEL, &v);
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.free == 0 && s0.pool == POOL_TARGET, "fixture: buddy not empty or pool not full");
	CHECK(!lmm_alloc_pages(&mm, 1, LMM_GFP_ATOMIC), "ATOMIC order 1 succeeded on an empty buddy");
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT), "NOWAIT succeeded on an empty buddy");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.alloc_failures == s0.alloc_failures + 2, "alloc_failures +%" PRIu64 ", want +2",
	       s1.alloc_failures - s0.alloc_failures);
	CHECK(s1.pool_empty_failures == s0.pool_empty_failures,
	       "pool_empty_failures +%" PRIu64 " with the pool full (%" PRIu64 " pages): the order-1 ATOMIC "
	       "failure was counted as an empty pool (mm/buddy.c take_block_locked)",
	       s1.pool_empty_failures - s0.pool_empty_failures, s1.pool);
	free_all(v, n);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* alloc_calls / free_calls (mm.h: struct lmm_stats) count every call, on every path. */
static void stats_count_every_call(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);           /* order-0 fast path */
	void *b = lmm_alloc_pages(&mm, 3, LMM_GFP_KERNEL);           /* general path */
	void *c = labyrinth_void_alloc_page_gfp_atomic_exclusive(); /* the pool */
	ASSERT(a && b && c, "allocation failed");
	lmm_free_pages(&mm, a, 0);
	lmm_free_pages(&mm, b, 3);
	labyrinth_free_page_atomic_exclusive(c);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.alloc_calls == s0.alloc_calls + 3 && s1.free_calls == s0.free_calls + 3,
	       "3 allocations and 3 frees counted as alloc_calls +%" PRIu64 ", free_calls +%" PRIu64,
	       s1.alloc_calls - s0.alloc_calls, s1.free_calls - s0.free_calls);
}

/* ---- Pool property 5: refilled only in normal context; marks ----------------------------- */

static void refill_in_handler(void)
{
	irq_u32 = lmm_pool_refill(&mm);
	irq_st = lmm_pool_set_marks(&mm, 1, 2);
}

static void free_one_in_handler(void)
{
	irq_st = lmm_free_pages(&mm, irq_ptrs[0], 0);
}

static void pool_refill_refused_outside_normal_context(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p[10];
	for (int i = 0; i < 10; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.pool == POOL_TARGET - 10, "fixture: pool %" PRIu64, s0.pool);

	irq_u32 = 99;
	host_log_clear();
	ASSERT(interrupt(refill_in_handler) == 1, "handler did not run");
	CHECK(irq_u32 == 0, "refill from the handler added %u pages", irq_u32);
	CHECK(irq_st == LMM_ERR_BAD_CONTEXT, "set_marks from the handler: %s", lmm_status_str(irq_st));
	CHECK(host_log_contains("refused pool refill"), "handler refill refusal not logged");
	lmm_irqflags_t fl = host_irq_save();
	uint32_t added = lmm_pool_refill(&mm);
	host_irq_restore(fl);
	CHECK(added == 0, "refill with interrupts off added %u pages", added);

	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_BAD_CONTEXT] == s0.refused[LMM_ERR_BAD_CONTEXT] + 3,
	       "BAD_CONTEXT refusals +%" PRIu64 ", want +3 (2 refills, 1 set_marks)",
	       s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT]);
	CHECK(s1.pool == s0.pool && s1.pool_refills == s0.pool_refills && s1.free == s0.free,
	       "a refused refill moved pages");
	CHECK(s1.pool_target == POOL_TARGET && s1.pool_low == POOL_LOW, "refused set_marks changed the marks");

	/* An order-0 free in the handler or with interrupts off goes to the buddy lists. */
	irq_ptrs[0] = p[0];
	ASSERT(interrupt(free_one_in_handler) == 1, "handler did not run");
	CHECK(irq_st == LMM_OK, "handler free refused: %s", lmm_status_str(irq_st));
	fl = host_irq_save();
	CHECK(lmm_free_pages(&mm, p[1], 0) == LMM_OK, "irqs-off free refused");
	host_irq_restore(fl);
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(s2.pool == s1.pool, "a free outside normal context went into the pool (%" PRIu64 " -> %" PRIu64 ")",
	       s1.pool, s2.pool);
	CHECK(s2.free == s1.free + 2, "those frees did not reach the buddy lists");

	/* A normal-context free while below target tops the pool up, one page. */
	CHECK(lmm_free_pages(&mm, p[2], 0) == LMM_OK, "normal free refused");
	struct lmm_stats s3 = mm_stats(&mm);
	CHECK(s3.pool == s2.pool + 1 && s3.free == s2.free, "normal free below target: pool %" PRIu64
	       " -> %" PRIu64 ", free %" PRIu64 " -> %" PRIu64, s2.pool, s3.pool, s2.free, s3.free);

	/* The explicit refill, in normal context, tops up to target and is counted. */
	uint32_t want = (uint32_t)(POOL_TARGET - s3.pool);
	CHECK(lmm_pool_refill(&mm) == want, "refill did not add the %u missing pages", want);
	struct lmm_stats s4 = mm_stats(&mm);
	CHECK(s4.pool == POOL_TARGET, "pool %" PRIu64 " after refill", s4.pool);
	CHECK(s4.pool_refills == s3.pool_refills + 1 && s4.pool_refill_pages == s3.pool_refill_pages + want,
	       "refill not counted (refills +%" PRIu64 ", pages +%" PRIu64 ")", s4.pool_refills - s3.pool_refills,
	       s4.pool_refill_pages - s3.pool_refill_pages);
	CHECK(lmm_pool_refill(&mm) == 0 && mm_stats(&mm).pool_refills == s4.pool_refills,
	       "a refill of a full pool added pages or was counted");
	/* At target, a normal free goes to the buddy lists. */
	CHECK(lmm_free_pages(&mm, p[3], 0) == LMM_OK, "free refused");
	CHECK(mm_stats(&mm).pool == POOL_TARGET, "pool grew past its target");
	for (int i = 4; i < 10; i++)
		lmm_free_pages(&mm, p[i], 0);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void pool_marks_configurable(void)
{
	ASSERT(setup_with(16 * MiB, 40, 10, 0) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.pool_target == 40 && s.pool_low == 10 && s.pool == 40, "config marks: target %u low %u fill %"
	       PRIu64, s.pool_target, s.pool_low, s.pool);
	CHECK(!lmm_pool_needs_refill(&mm), "full pool needs a refill");
	void *p[41];
	for (int i = 0; i < 30; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	CHECK(!lmm_pool_needs_refill(&mm), "fill 10 == low 10 already needs a refill");
	ASSERT((p[30] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	CHECK(lmm_pool_needs_refill(&mm), "fill 9 < low 10 does not need a refill");
	CHECK(mm_stats(&mm).pool_low_water == 9, "low-water %u, want 9", mm_stats(&mm).pool_low_water);

	/* Raise both marks: nothing moves until the refill, which converges on the new target. */
	CHECK(lmm_pool_set_marks(&mm, 20, 100) == LMM_OK, "set_marks refused");
	s = mm_stats(&mm);
	CHECK(s.pool_target == 100 && s.pool_low == 20 && s.pool == 9, "after set_marks: target %u low %u fill %"
	       PRIu64, s.pool_target, s.pool_low, s.pool);
	CHECK(lmm_pool_needs_refill(&mm), "fill 9 < low 20 does not need a refill");
	CHECK(lmm_pool_refill(&mm) == 91 && mm_stats(&mm).pool == 100, "refill did not reach the new target");
	CHECK(!lmm_pool_needs_refill(&mm), "full pool needs a refill");

	/* Shrink: the surplus goes straight back to the buddy lists. */
	uint64_t free0 = mm_stats(&mm).free;
	CHECK(lmm_pool_set_marks(&mm, 2, 8) == LMM_OK, "set_marks refused");
	s = mm_stats(&mm);
	CHECK(s.pool == 8 && s.free == free0 + 92, "shrink to 8: fill %" PRIu64 ", free +%" PRIu64, s.pool,
	       s.free - free0);
	CHECK(lmm_pool_set_marks(&mm, 10, 5) == LMM_ERR_STATE, "low above target accepted");
	CHECK(mm_stats(&mm).pool_target == 8, "refused set_marks changed the target");
	for (int i = 0; i <= 30; i++)
		lmm_free_pages(&mm, p[i], 0);
	CHECK(mm_stats(&mm).pool == 8, "frees overfilled the pool");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");

	/* Automatic marks: target scaled to RAM within [16, 4096], low = target / 2. */
	ASSERT(setup_with(64 * MiB, LMM_POOL_AUTO, LMM_POOL_AUTO, 0) == LMM_OK, "init failed");
	s = mm_stats(&mm);
	CHECK(s.pool_target >= 16 && s.pool_target <= 4096 && s.pool_low == s.pool_target / 2 &&
		       s.pool == s.pool_target, "auto marks: target %u low %u fill %" PRIu64, s.pool_target,
	       s.pool_low, s.pool);
}

/* ---- Exclusive ownership ------------------------------------------------------------------- */

static void exclusive_page_owned_by_caller(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "named routine returned NULL");
	CHECK(lmm_page_owner(&mm, p) == lmm_port_owner() && lmm_port_owner() != 0, "owner 0x%04x, caller 0x%04x",
	       lmm_page_owner(&mm, p), lmm_port_owner());
	CHECK(((uintptr_t)p & (LMM_PAGE_SIZE - 1)) == 0, "page not aligned");
	void *q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(lmm_page_owner(&mm, q) == 0, "non-exclusive page reports an owner");
	lmm_free_pages(&mm, q, 0);
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "owner's free refused");
	CHECK(lmm_page_owner(&mm, p) == 0, "freed page still has an owner");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void exclusive_second_reference_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "alloc failed");
	memset(p, 0x5c, LMM_PAGE_SIZE);
	struct lmm_stats s0 = mm_stats(&mm);
	host_log_clear();
	CHECK(lmm_page_get(&mm, p) == LMM_ERR_EXCLUSIVE, "second reference to an exclusive page granted");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_EXCLUSIVE] == s0.refused[LMM_ERR_EXCLUSIVE] + 1, "refusal not counted");
	CHECK(host_log_contains(hex_phys(p)), "refusal not logged with the address: %s", host_log_last());
	CHECK(lmm_page_owner(&mm, p) == lmm_port_owner(), "page lost its owner");
	CHECK(bytes_are(p, LMM_PAGE_SIZE, 0x5c), "refusal changed the page");
	/* The get did not add a reference: the owner's single free releases it. */
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "owner's free refused");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

struct foreign_free {
	void *page;
	enum lmm_status st_free, st_named;
	uint16_t owner;
};

static void *free_from_other_thread(void *arg)
{
	struct foreign_free *ff = arg;
	ff->owner = lmm_port_owner();
	ff->st_free = lmm_free_pages(&mm, ff->page, 0);
	ff->st_named = labyrinth_free_page_atomic_exclusive(ff->page);
	return NULL;
}

static void exclusive_free_by_other_owner_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "alloc failed");
	memset(p, 0xa7, LMM_PAGE_SIZE);
	uint16_t me = lmm_port_owner(), other = (uint16_t)(me + 0x100);
	struct lmm_stats s0 = mm_stats(&mm);
	char owner_s[32], other_s[32];
	snprintf(owner_s, sizeof(owner_s), "owner 0x%04x", me);
	snprintf(other_s, sizeof(other_s), "caller 0x%04x", other);

	/* A named other owner. */
	host_log_clear();
	CHECK(lmm_free_pages_owned(&mm, p, 0, other) == LMM_ERR_WRONG_OWNER, "free by owner 0x%04x accepted", other);
	CHECK(host_log_contains(hex_phys(p)), "not logged with the page's address: %s", host_log_last());
	CHECK(host_log_contains(owner_s) && host_log_contains(other_s), "both owners not logged: %s",
	       host_log_last());

	/* Another thread: both the generic free and the named counterpart. */
	struct foreign_free ff = { p, LMM_OK, LMM_OK, 0 };
	host_log_clear();
	run_on_thread(free_from_other_thread, &ff);
	CHECK(ff.owner != me, "fixture: thread has the same owner tag");
	CHECK(ff.st_free == LMM_ERR_WRONG_OWNER, "another thread's free: %s", lmm_status_str(ff.st_free));
	CHECK(ff.st_named == LMM_ERR_WRONG_OWNER, "another thread's named free: %s", lmm_status_str(ff.st_named));
	snprintf(other_s, sizeof(other_s), "caller 0x%04x", ff.owner);
	CHECK(host_log_contains(hex_phys(p)) && host_log_contains(owner_s) && host_log_contains(other_s),
	       "thread's refusal not logged with address and both owners: %s", host_log_last());

	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_WRONG_OWNER] == s0.refused[LMM_ERR_WRONG_OWNER] + 3, "WRONG_OWNER +%" PRIu64
	       ", want +3", s1.refused[LMM_ERR_WRONG_OWNER] - s0.refused[LMM_ERR_WRONG_OWNER]);
	CHECK(s1.allocated == s0.allocated && s1.free == s0.free && s1.pool == s0.pool,
	       "a refused free moved pages");
	CHECK(lmm_page_owner(&mm, p) == me, "page changed owner");
	CHECK(bytes_are(p, LMM_PAGE_SIZE, 0xa7), "refused free changed the page's contents");
	CHECK(mm_conserved(&mm) && lmm_check(&mm) == 0, "allocator damaged by the refusals");
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "the owner's own free refused");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void exclusive_double_free_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	/* Once into the pool (normal free, pool below target), once into the buddy lists. */
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			ASSERT(lmm_pool_refill(&mm) == 0 && mm_stats(&mm).pool == POOL_TARGET, "fixture: pool not full");
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		ASSERT(p, "alloc failed");
		if (round == 1)
			lmm_pool_refill(&mm); /* the page came from the pool: top it up so the free skips it */
		CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "first free refused");
		struct lmm_stats s0 = mm_stats(&mm);
		host_log_clear();
		enum lmm_status st = labyrinth_free_page_atomic_exclusive(p);
		struct lmm_stats s1 = mm_stats(&mm);
		CHECK(st != LMM_OK, "round %d: double free accepted", round);
		CHECK(st == LMM_ERR_ALREADY_FREE, "round %d: double free refused as '%s'", round,
		      lmm_status_str(st));
		CHECK(s1.refused_total == s0.refused_total + 1, "round %d: double free not counted", round);
		CHECK(s1.free == s0.free && s1.pool == s0.pool && s1.allocated == s0.allocated,
		       "round %d: double free moved pages", round);
		CHECK(host_log_contains(hex_phys(p)), "round %d: not logged with the address: %s", round,
		       host_log_last());
		CHECK(lmm_check(&mm) == 0, "round %d: check failed", round);
	}
}

static void alloc_and_transfer_in_handler(void)
{
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	irq_ptrs[0] = p;
	irq_owner = lmm_port_owner();
	if (!p)
		return;
	sig_fill(p, 0, 0x1235);
	/* Hand the page from the handler to the thread that will consume it. */
	irq_st = lmm_page_transfer(&mm, p, lmm_port_owner(), irq_to);
}

struct consumer {
	_Atomic uint16_t owner;
	_Atomic(void *) page;
	enum lmm_status st;
	bool sig_ok, owner_ok;
};

static void *consume_page(void *arg)
{
	struct consumer *c = arg;
	atomic_store(&c->owner, lmm_port_owner());
	void *p;
	while (!(p = atomic_load(&c->page)))
		usleep(100);
	c->owner_ok = lmm_page_owner(&mm, p) == lmm_port_owner();
	c->sig_ok = sig_ok(p, 0, 0x1235);
	c->st = labyrinth_free_page_atomic_exclusive(p);
	return NULL;
}

static void exclusive_transfer_handler_to_thread(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct consumer c = { 0, NULL, LMM_ERR_STATE, false, false };
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, consume_page, &c) == 0, "pthread_create");
	while (!atomic_load(&c.owner))
		usleep(100);
	irq_to = atomic_load(&c.owner);
	irq_st = LMM_ERR_STATE;
	int ran = interrupt(alloc_and_transfer_in_handler);
	void *p = irq_ptrs[0];
	CHECK(ran == 1 && p, "handler did not allocate");
	CHECK(irq_st == LMM_OK, "transfer by the handler (owner 0x%04x) refused: %s", irq_owner,
	       lmm_status_str(irq_st));
	if (p) {
		CHECK(lmm_page_owner(&mm, p) == irq_to, "owner 0x%04x after transfer, want 0x%04x",
		       lmm_page_owner(&mm, p), irq_to);
		/* The handler's owner has given it away: its own free is now refused. */
		CHECK(lmm_free_pages_owned(&mm, p, 0, irq_owner) == LMM_ERR_WRONG_OWNER,
		       "previous owner could still free it");
	}
	atomic_store(&c.page, p ? p : (void *)-1);
	pthread_join(t, NULL);
	CHECK(c.owner_ok && c.sig_ok, "consumer saw owner %s, contents %s", c.owner_ok ? "ok" : "wrong",
	       c.sig_ok ? "ok" : "damaged");
	CHECK(c.st == LMM_OK, "new owner's free refused: %s", lmm_status_str(c.st));
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void exclusive_transfer_by_non_owner_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "alloc failed");
	sig_fill(p, 0, 77);
	uint16_t me = lmm_port_owner(), thief = (uint16_t)(me + 0x200);
	struct lmm_stats s0 = mm_stats(&mm);
	host_log_clear();
	CHECK(lmm_page_transfer(&mm, p, thief, thief) == LMM_ERR_WRONG_OWNER, "transfer by a non-owner accepted");
	CHECK(host_log_contains(hex_phys(p)), "not logged with the address: %s", host_log_last());
	CHECK(lmm_page_transfer(&mm, p, me, 0) == LMM_ERR_BAD_OWNER, "transfer to owner 0 accepted");
	CHECK(lmm_page_unexclusive(&mm, p, thief) == LMM_ERR_WRONG_OWNER, "unexclusive by a non-owner accepted");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_WRONG_OWNER] == s0.refused[LMM_ERR_WRONG_OWNER] + 2 &&
		       s1.refused[LMM_ERR_BAD_OWNER] == s0.refused[LMM_ERR_BAD_OWNER] + 1,
	       "refusals not counted");
	CHECK(lmm_page_owner(&mm, p) == me && sig_ok(p, 0, 77), "page changed by refused transfers");
	void *q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(lmm_page_transfer(&mm, q, 0, me) == LMM_ERR_NOT_EXCLUSIVE, "transfer of a shared page accepted");
	lmm_free_pages(&mm, q, 0);
	CHECK(lmm_page_transfer(&mm, q, me, me) == LMM_ERR_ALREADY_FREE || lmm_page_owner(&mm, q) == 0,
	       "transfer of a free page accepted");
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "owner's free refused");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void exclusive_unexclusive_then_shared(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "alloc failed");
	uint16_t me = lmm_port_owner();
	CHECK(lmm_page_unexclusive(&mm, p, me) == LMM_OK, "owner's unexclusive refused");
	CHECK(lmm_page_owner(&mm, p) == 0, "page still exclusive");
	CHECK(lmm_page_transfer(&mm, p, me, me) == LMM_ERR_NOT_EXCLUSIVE, "transfer after unexclusive accepted");
	CHECK(lmm_page_get(&mm, p) == LMM_OK, "get on an ordinary page refused");
	uint64_t alloc0 = mm_stats(&mm).allocated;
	CHECK(lmm_page_put(&mm, p, 0) == LMM_OK, "first put refused");
	CHECK(mm_stats(&mm).allocated == alloc0, "freed with a reference left");
	CHECK(lmm_page_put(&mm, p, 0) == LMM_OK, "second put refused");
	CHECK(mm_stats(&mm).allocated == alloc0 - 1, "not freed at zero references");
	CHECK(lmm_page_put(&mm, p, 0) != LMM_OK, "third put accepted");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void kernel_alloc_in_handler(void)
{
	irq_ptrs[0] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	irq_ptrs[1] = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	irq_ptrs[2] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
}

static void kernel_alloc_in_handler_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	host_log_clear();
	ASSERT(interrupt(kernel_alloc_in_handler) == 1, "handler did not run");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(!irq_ptrs[0] && !irq_ptrs[1], "KERNEL allocation in the handler succeeded");
	CHECK(irq_ptrs[2], "ATOMIC allocation in the handler failed");
	CHECK(s1.refused[LMM_ERR_BAD_CONTEXT] == s0.refused[LMM_ERR_BAD_CONTEXT] + 2, "BAD_CONTEXT +%" PRIu64
	       ", want +2", s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT]);
	CHECK(s1.allocated == s0.allocated + 1 && s1.free == s0.free, "a refused allocation moved pages");
	CHECK(host_log_contains("refused alloc"), "refusal not logged: %s", host_log_last());
	lmm_free_pages(&mm, irq_ptrs[2], 0);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* ---- Locks ---------------------------------------------------------------------------------- */

struct relock {
	bool fatal, returned;
	char reason[256];
};

static void *take_lock_twice(void *arg)
{
	struct relock *r = arg;
	sigjmp_buf jb;
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm.lock);
	if (sigsetjmp(jb, 1) == 0) {
		host_fatal_jmp = &jb;
		lmm_irqflags_t fl2 = lmm_port_lock_irqsave(&mm.lock);
		host_fatal_jmp = NULL;
		r->returned = true; /* re-acquired: undo so the case can go on */
		lmm_port_unlock_irqrestore(&mm.lock, fl2);
	} else {
		r->fatal = true;
		snprintf(r->reason, sizeof(r->reason), "%s", host_fatal_reason());
	}
	lmm_port_unlock_irqrestore(&mm.lock, fl);
	return NULL;
}

static bool join_within(pthread_t t, double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

static void lock_retaken_by_holder_is_fatal(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct relock r = { false, false, "" };
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, take_lock_twice, &r) == 0, "pthread_create");
	if (!join_within(t, 10)) {
		printf("FAIL %slock_retaken_by_holder_is_fatal: the holder re-taking its lock hung\n", CASE_PREFIX);
		fflush(stdout);
		_exit(1);
	}
	CHECK(r.fatal && !r.returned, "re-acquisition by the holder was %s", r.returned ? "granted" : "?");
	CHECK(strstr(r.reason, "'lmm'") != NULL, "fatal report does not name the lock: '%s'", r.reason);
	/* The lock was released by its holder: the allocator still works. */
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(p && lmm_free_pages(&mm, p, 0) == LMM_OK, "allocator unusable afterwards");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/*
 * The lock's "holder" must be the CPU (thread), not the owner tag: owner tags are a
 * policy of the embedding kernel and two CPUs may well share one.  Thread A holds the
 * lock for a while; thread B, tagged like A, must simply wait for it.
 */
struct holder {
	_Atomic int held;
	uint16_t tag;
};

static void *hold_lock_a_while(void *arg)
{
	struct holder *h = arg;
	host_set_owner(h->tag);
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm.lock);
	atomic_store(&h->held, 1);
	usleep(50000);
	lmm_port_unlock_irqrestore(&mm.lock, fl);
	return NULL;
}

static void lock_holder_is_the_cpu_not_the_owner_tag(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	uint16_t mine = host_thread_owner();
	struct holder h = { 0, 0x0777 };
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, hold_lock_a_while, &h) == 0, "pthread_create");
	while (!atomic_load(&h.held))
		usleep(100);
	host_set_owner(h.tag);
	sigjmp_buf jb;
	volatile bool fatal = false;
	struct lmm_stats s;
	if (sigsetjmp(jb, 1) == 0) {
		host_fatal_jmp = &jb;
		lmm_get_stats(&mm, &s); /* waits for the lock */
		host_fatal_jmp = NULL;
	} else {
		fatal = true;
	}
	host_set_owner(mine);
	pthread_join(t, NULL);
	CHECK(!fatal, "waiting for a lock held by another thread with the same owner tag was reported as "
		       "re-acquisition: '%s'", host_fatal_reason());
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* ---- The port's interrupt emulation ------------------------------------------------------- */

#if !SAN_TSAN && defined(__x86_64__)
/*
 * An interrupt can arrive between any two instructions, including those of the port's
 * own deferred delivery.  Single-step host_irq_restore() with the trap flag and inject
 * the interrupt at the first instruction where the port says "in a handler": every run
 * of the handler must then still see interrupt context (and the handler's owner tag).
 */
#define X86_TF 0x100
static volatile sig_atomic_t step_count, step_injected;
static volatile sig_atomic_t ctx_runs, ctx_wrong;

static void on_step(int sig, siginfo_t *si, void *uc_)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = uc_;
	step_count++;
	if (host_in_interrupt() || step_count > 1000000) {
		if (host_in_interrupt() && !step_injected) {
			step_injected = 1;
			raise(IRQ_SIGNO); /* blocked here: delivered on return, before the next instruction */
		}
		uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)X86_TF;
		return;
	}
	uc->uc_mcontext.gregs[REG_EFL] |= X86_TF;
}

static void record_context(void)
{
	ctx_runs++;
	if (lmm_port_context() != LMM_CTX_INTERRUPT || !(lmm_port_owner() & HANDLER_BIT))
		ctx_wrong++;
}

static void port_interrupt_during_deferred_delivery(void)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_step;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, IRQ_SIGNO);
	sigaction(SIGTRAP, &sa, &old);
	step_count = step_injected = ctx_runs = ctx_wrong = 0;

	irq_work = record_context;
	lmm_irqflags_t fl = host_irq_save();
	raise(IRQ_SIGNO); /* held pending: interrupts are off */
	int deferred_ran = ctx_runs;
	raise(SIGTRAP);   /* start single-stepping */
	host_irq_restore(fl);
	irq_work = NULL;
	sigaction(SIGTRAP, &old, NULL);

	CHECK(deferred_ran == 0, "interrupt ran while interrupts were off");
	CHECK(step_injected, "never reached the handler (%d steps)", (int)step_count);
	CHECK(ctx_runs == 2, "%d handler runs, want 2 (deferred + injected)", (int)ctx_runs);
	CHECK(ctx_wrong == 0, "%d of %d handler runs did not see interrupt context: an interrupt arriving "
	       "between 'in_irq = 1' and 'irq_off = 1' in port_host.c run_handler() nests and then clears both",
	       (int)ctx_wrong, (int)ctx_runs);
}
#endif

/* ---- Stress: threads and timer interrupts together ----------------------------------------- */

#define LIVE_MAX 40
#define EXCL_MAX 16
#define BOX_MAX 8
#define RING 8

struct block {
	void *p;
	uint64_t sig;
	uint8_t order, refs;
};

struct parcel {
	void *p;
	uint64_t sig;
};

struct worker {
	int id;
	pthread_t thread;
	uint16_t owner;
	uint64_t rng;
	uint64_t nops;
	struct block live[LIVE_MAX];
	unsigned nlive;
	struct parcel excl[EXCL_MAX];
	unsigned nexcl;
	pthread_mutex_t box_mu;
	struct parcel box[BOX_MAX];
	unsigned nbox;

	/* Results, read by main after join. */
	uint64_t ops, kernel_allocs, kernel_null, atomic_allocs, atomic_null, transfers, refills, checks;
	uint64_t mismatches, unexpected;
	uint64_t expect_refused[LMM_STATUS_COUNT];
	uint64_t irq_runs, irq_in_mm, irq_allocs, irq_null, irq_bad_ctx, irq_errors, irq_mismatches;
	double loop_end; /* when this thread finished its operations */
	char why[200];
};

static struct worker *workers;
static int nworkers;
static pthread_barrier_t stress_barrier;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER; /* the port's log capture is not thread-safe */
static long irq_period_ns;
static double stress_deadline; /* a safety net for slow builds (qemu-user, -O0): ops are the real bound */

/* Per-thread state of the interrupt handler (it runs on the thread it interrupts). */
static __thread struct worker *volatile irq_self;
static __thread volatile struct parcel irq_ring[RING];
static __thread volatile unsigned irq_ring_n, irq_ring_head;
static __thread uint64_t irq_seq;
static __thread volatile sig_atomic_t irq_stop, in_mm;

static void note(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct worker *w, const char *fmt, ...)
{
	if (!w->unexpected++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->why, sizeof(w->why), fmt, ap);
		va_end(ap);
	}
}

static uint64_t rnd(struct worker *w)
{
	uint64_t x = w->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void stress_irq(void)
{
	struct worker *w = irq_self;
	if (!w)
		return;
	w->irq_runs++;
	if (in_mm)
		w->irq_in_mm++;
	if (!host_in_interrupt() || lmm_port_context() != LMM_CTX_INTERRUPT) {
		w->irq_bad_ctx++; /* port bug: no allocator work in a context we cannot trust */
		return;
	}
	if (irq_stop)
		return;

	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	uint64_t sig = 0x1400000000000000ull | ((uint64_t)w->id << 40) | irq_seq++;
	if (p) {
		w->irq_allocs++;
		sig_fill(p, 0, sig);
	} else {
		w->irq_null++;
	}
	/* Free the oldest when the ring is full, or when memory ran out. */
	if (irq_ring_n == RING || (!p && irq_ring_n)) {
		struct parcel q = irq_ring[irq_ring_head];
		if (!sig_ok(q.p, 0, q.sig))
			w->irq_mismatches++;
		if (lmm_page_owner(&mm, q.p) != lmm_port_owner())
			w->irq_errors++;
		if (labyrinth_free_page_atomic_exclusive(q.p) != LMM_OK)
			w->irq_errors++;
		irq_ring_head = (irq_ring_head + 1) % RING;
		irq_ring_n--;
	}
	if (p) {
		unsigned slot = (irq_ring_head + irq_ring_n) % RING;
		irq_ring[slot] = (struct parcel){ p, sig };
		irq_ring_n++;
	}
}

/* Allocator calls made with "inside the allocator" marked, so the handler can count it. */
static void *mm_alloc(unsigned order, lmm_gfp_t gfp)
{
	in_mm = 1;
	void *p = lmm_alloc_pages(&mm, order, gfp);
	in_mm = 0;
	return p;
}

static enum lmm_status mm_free(void *p, unsigned order)
{
	in_mm = 1;
	enum lmm_status st = lmm_free_pages(&mm, p, order);
	in_mm = 0;
	return st;
}

static uint64_t next_sig(struct worker *w)
{
	return ((uint64_t)(w->id + 1) << 48) ^ ++w->nops;
}

static void block_release(struct worker *w, unsigned i)
{
	struct block *b = &w->live[i];
	if (!sig_ok(b->p, b->order, b->sig)) {
		w->mismatches++;
		note(w, "block phys 0x%" PRIx64 " order %u lost its signature", phys(b->p), b->order);
	}
	while (b->refs--) {
		enum lmm_status st = mm_free(b->p, b->order);
		if (st != LMM_OK)
			note(w, "free of own block refused: %s", lmm_status_str(st));
	}
	w->live[i] = w->live[--w->nlive];
}

static void excl_release(struct worker *w, unsigned i)
{
	struct parcel *e = &w->excl[i];
	if (!sig_ok(e->p, 0, e->sig)) {
		w->mismatches++;
		note(w, "exclusive page lost its signature");
	}
	in_mm = 1;
	enum lmm_status st = labyrinth_free_page_atomic_exclusive(e->p);
	in_mm = 0;
	if (st != LMM_OK)
		note(w, "owner's free of exclusive page refused: %s", lmm_status_str(st));
	w->excl[i] = w->excl[--w->nexcl];
}

static void take_delivery(struct worker *w)
{
	pthread_mutex_lock(&w->box_mu);
	while (w->nbox) {
		struct parcel e = w->box[--w->nbox];
		if (lmm_page_owner(&mm, e.p) != w->owner)
			note(w, "received page owned by 0x%04x, not by me (0x%04x)", lmm_page_owner(&mm, e.p), w->owner);
		if (w->nexcl == EXCL_MAX)
			excl_release(w, (unsigned)(rnd(w) % w->nexcl));
		w->excl[w->nexcl++] = e;
	}
	pthread_mutex_unlock(&w->box_mu);
}

/* Deliberate violations, serialised because each one is logged. */
static void violate(struct worker *w)
{
	pthread_mutex_lock(&log_mu);
	uint64_t r = rnd(w) % 4;
	if (w->nexcl && r < 3) {
		struct parcel *e = &w->excl[rnd(w) % w->nexcl];
		enum lmm_status st, want;
		if (r == 0) {
			st = lmm_free_pages_owned(&mm, e->p, 0, (uint16_t)(w->owner ^ 0x2000));
			want = LMM_ERR_WRONG_OWNER;
		} else if (r == 1) {
			st = lmm_page_get(&mm, e->p);
			want = LMM_ERR_EXCLUSIVE;
		} else {
			st = lmm_page_transfer(&mm, e->p, (uint16_t)(w->owner ^ 0x2000), w->owner);
			want = LMM_ERR_WRONG_OWNER;
		}
		w->expect_refused[want]++;
		if (st != want)
			note(w, "violation %u answered '%s'", (unsigned)r, lmm_status_str(st));
		if (lmm_page_owner(&mm, e->p) != w->owner || !sig_ok(e->p, 0, e->sig))
			note(w, "refused violation changed the page");
	} else if (w->nlive) {
		struct block *b = &w->live[rnd(w) % w->nlive];
		unsigned bad = b->order == LMM_MAX_ORDER ? 0 : b->order + 1;
		enum lmm_status st = lmm_free_pages(&mm, b->p, bad);
		w->expect_refused[LMM_ERR_WRONG_ORDER]++;
		if (st != LMM_ERR_WRONG_ORDER)
			note(w, "free with the wrong order answered '%s'", lmm_status_str(st));
	}
	pthread_mutex_unlock(&log_mu);
}

static void one_op(struct worker *w)
{
	uint64_t r = rnd(w) % 1000;

	if (r < 300) { /* KERNEL, random order 0..5, sometimes zeroed */
		if (w->nlive == LIVE_MAX)
			block_release(w, (unsigned)(rnd(w) % w->nlive));
		unsigned order = (unsigned)(rnd(w) % 6);
		bool zero = rnd(w) % 8 == 0;
		void *p = mm_alloc(order, LMM_GFP_KERNEL | (zero ? LMM_GFP_ZERO : 0));
		if (!p) {
			w->kernel_null++;
			return;
		}
		w->kernel_allocs++;
		if (zero && !bytes_are(p, LMM_PAGE_SIZE << order, 0))
			note(w, "ZERO block not zeroed");
		struct block *b = &w->live[w->nlive++];
		*b = (struct block){ p, next_sig(w), (uint8_t)order, 1 };
		sig_fill(p, order, b->sig);
	} else if (r < 550) { /* free a block */
		if (w->nlive)
			block_release(w, (unsigned)(rnd(w) % w->nlive));
	} else if (r < 650) { /* the named atomic routine, from normal context */
		if (w->nexcl == EXCL_MAX)
			excl_release(w, (unsigned)(rnd(w) % w->nexcl));
		in_mm = 1;
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		in_mm = 0;
		if (!p) {
			w->atomic_null++;
			return;
		}
		w->atomic_allocs++;
		if (lmm_page_owner(&mm, p) != w->owner)
			note(w, "named routine's page not owned by the caller");
		w->excl[w->nexcl] = (struct parcel){ p, next_sig(w) };
		sig_fill(p, 0, w->excl[w->nexcl].sig);
		w->nexcl++;
	} else if (r < 720) { /* free an exclusive page */
		if (w->nexcl)
			excl_release(w, (unsigned)(rnd(w) % w->nexcl));
	} else if (r < 800) { /* hand an exclusive page to another thread */
		if (!w->nexcl || nworkers < 2)
			return;
		struct worker *to = &workers[(w->id + 1 + (int)(rnd(w) % (uint64_t)(nworkers - 1))) % nworkers];
		unsigned i = (unsigned)(rnd(w) % w->nexcl);
		pthread_mutex_lock(&to->box_mu);
		if (to->nbox < BOX_MAX) {
			in_mm = 1;
			enum lmm_status st = lmm_page_transfer(&mm, w->excl[i].p, w->owner, to->owner);
			in_mm = 0;
			if (st != LMM_OK) {
				note(w, "transfer refused: %s", lmm_status_str(st));
			} else {
				to->box[to->nbox++] = w->excl[i];
				w->excl[i] = w->excl[--w->nexcl];
				w->transfers++;
			}
		}
		pthread_mutex_unlock(&to->box_mu);
	} else if (r < 860) { /* take what others sent */
		take_delivery(w);
	} else if (r < 880) { /* refill, as a kernel main loop would */
		if (lmm_pool_needs_refill(&mm) || r < 865) {
			in_mm = 1;
			lmm_pool_refill(&mm);
			in_mm = 0;
			w->refills++;
		}
	} else if (r < 920) { /* share a block: two references, two puts */
		if (w->nlive) {
			struct block *b = &w->live[rnd(w) % w->nlive];
			if (b->refs == 1) {
				enum lmm_status st = lmm_page_get(&mm, b->p);
				if (st != LMM_OK)
					note(w, "get on own block refused: %s", lmm_status_str(st));
				else
					b->refs = 2;
			}
		}
	} else if (r < 950) { /* the atomic path with interrupts off */
		lmm_irqflags_t fl = host_irq_save();
		void *p = mm_alloc(0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
		if (p) {
			sig_fill(p, 0, 42);
			if (!sig_ok(p, 0, 42))
				note(w, "irqs-off page changed under us");
			if (labyrinth_free_page_atomic_exclusive(p) != LMM_OK)
				note(w, "irqs-off free refused");
		}
		host_irq_restore(fl);
	} else if (r < 965) { /* give up exclusivity: the page joins the ordinary blocks */
		if (w->nexcl && w->nlive < LIVE_MAX) {
			struct parcel e = w->excl[--w->nexcl];
			if (lmm_page_unexclusive(&mm, e.p, w->owner) != LMM_OK)
				note(w, "unexclusive by the owner refused");
			w->live[w->nlive++] = (struct block){ e.p, e.sig, 0, 1 };
		}
	} else if (r < 995) { /* order-0 round trip: the hottest path */
		void *p = mm_alloc(0, LMM_GFP_KERNEL);
		if (p) {
			*(volatile uint64_t *)p = 1;
			mm_free(p, 0);
		}
	} else if (r < 998) {
		violate(w);
	} else {
		/* Mid-run self-checks: conservation holds at every lock release. */
		if (!mm_conserved(&mm))
			note(w, "conservation broken mid-run");
		if (w->id == 0 && rnd(w) % 8 == 0) {
			w->checks++;
			if (lmm_check(&mm) != 0)
				note(w, "lmm_check failed mid-run");
		}
	}
}

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	w->owner = host_thread_owner(); /* fixed before any handler can ask */
	irq_self = w;
	irq_stop = 0;
	irq_ring_n = irq_ring_head = 0;
	irq_seq = 0;

	timer_t timer;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = IRQ_SIGNO;
	sev.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
		note(w, "timer_create: %s", strerror(errno));
		pthread_barrier_wait(&stress_barrier);
		pthread_barrier_wait(&stress_barrier);
		return NULL;
	}
	pthread_barrier_wait(&stress_barrier); /* every owner is known */
	struct timespec period = { irq_period_ns / 1000000000, irq_period_ns % 1000000000 };
	struct itimerspec its = { period, period };
	if (timer_settime(timer, 0, &its, NULL) != 0)
		note(w, "timer_settime: %s", strerror(errno));

	uint64_t done = 0;
	while (done < w->ops) {
		one_op(w);
		if ((++done & 31) == 0 && now_s() > stress_deadline)
			break;
	}
	w->ops = done;
	w->loop_end = now_s();

	pthread_barrier_wait(&stress_barrier); /* no more transfers from here on */
	timer_delete(timer);
	lmm_irqflags_t fl = host_irq_save();
	irq_stop = 1;
	uint16_t hown = (uint16_t)(HANDLER_BIT | w->owner);
	while (irq_ring_n) {
		struct parcel q = irq_ring[irq_ring_head];
		if (!sig_ok(q.p, 0, q.sig))
			w->irq_mismatches++;
		if (lmm_free_pages_owned(&mm, q.p, 0, hown) != LMM_OK)
			note(w, "handler's page refused at drain");
		irq_ring_head = (irq_ring_head + 1) % RING;
		irq_ring_n--;
	}
	host_irq_restore(fl);
	take_delivery(w);
	while (w->nexcl)
		excl_release(w, w->nexcl - 1);
	while (w->nlive)
		block_release(w, w->nlive - 1);
	irq_self = NULL;
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : def;
}

static void stress_threads_and_timer_interrupts(void)
{
	/* 4 MiB: small enough that KERNEL runs dry now and then and handlers live off the pool. */
	ASSERT(setup_with(4 * MiB, POOL_TARGET, POOL_LOW, 0) == LMM_OK, "init failed");
	uint64_t seed = env_u64("SEED", 0x1abe11e5c0ffeeull);
	uint64_t ops = env_u64("OPS", STRESS_OPS);
	/*
	 * One thread per CPU by default (2 to 4).  More threads than CPUs turns the port's
	 * ticket lock into a convoy: a preempted waiter whose turn comes stalls everyone.
	 */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	nworkers = (int)env_u64("THREADS", (uint64_t)(ncpu < 2 ? 2 : ncpu > 4 ? 4 : ncpu));
	uint64_t hz = env_u64("IRQ_HZ", 10000);
	ASSERT(nworkers >= 1 && nworkers <= 64 && hz >= 1 && hz <= 1000000, "bad THREADS / IRQ_HZ");
	irq_period_ns = (long)(1000000000ull / hz);

	struct lmm_stats s0 = mm_stats(&mm);
	uint64_t deferred0 = host_irqs_deferred();
	workers = calloc((size_t)nworkers, sizeof(*workers));
	pthread_barrier_init(&stress_barrier, NULL, (unsigned)nworkers);
	irq_work = stress_irq;
	double t0 = now_s();
	stress_deadline = t0 + (double)env_u64("STRESS_SECONDS", STRESS_SECONDS);
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		w->ops = ops;
		w->rng = (seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1))) | 1;
		pthread_mutex_init(&w->box_mu, NULL);
		ASSERT(pthread_create(&w->thread, NULL, stress_worker, w) == 0, "pthread_create");
	}
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	double secs = now_s() - t0;
	irq_work = NULL;
	uint64_t deferred = host_irqs_deferred() - deferred0;

	struct worker sum;
	memset(&sum, 0, sizeof(sum));
	double last_loop_end = t0;
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		CHECK(!w->unexpected, "thread %d: %" PRIu64 " unexpected results, first: %s", i, w->unexpected, w->why);
		sum.ops += w->ops;
		last_loop_end = w->loop_end > last_loop_end ? w->loop_end : last_loop_end;
		sum.kernel_allocs += w->kernel_allocs;
		sum.kernel_null += w->kernel_null;
		sum.atomic_allocs += w->atomic_allocs;
		sum.atomic_null += w->atomic_null;
		sum.transfers += w->transfers;
		sum.refills += w->refills;
		sum.checks += w->checks;
		sum.mismatches += w->mismatches;
		sum.irq_runs += w->irq_runs;
		sum.irq_in_mm += w->irq_in_mm;
		sum.irq_allocs += w->irq_allocs;
		sum.irq_null += w->irq_null;
		sum.irq_bad_ctx += w->irq_bad_ctx;
		sum.irq_errors += w->irq_errors;
		sum.irq_mismatches += w->irq_mismatches;
		for (int s = 0; s < LMM_STATUS_COUNT; s++)
			sum.expect_refused[s] += w->expect_refused[s];
		pthread_mutex_destroy(&w->box_mu);
	}
	pthread_barrier_destroy(&stress_barrier);
	free(workers);
	workers = NULL;

	lmm_pool_refill(&mm);
	struct lmm_stats s1 = mm_stats(&mm);
	fprintf(stderr,
		"stress (%s): %d threads, %" PRIu64 " operations%s, seed 0x%" PRIx64 ", %.2f s (last thread done "
		"at %.2f s); interrupts %" PRIu64
		" (%" PRIu64 " inside the allocator, %" PRIu64 " deferred), handler pages %" PRIu64 " (NULL %" PRIu64
		"); KERNEL %" PRIu64 " (NULL %" PRIu64 "), ATOMIC|EXCL %" PRIu64 " (NULL %" PRIu64 "), transfers %"
		PRIu64 ", pool hits %" PRIu64 ", empty-pool failures %" PRIu64 ", refills %" PRIu64 ", checks %" PRIu64
		"\n", SAN_TSAN ? "TSan" : "non-TSan build", nworkers, sum.ops,
		sum.ops < ops * (uint64_t)nworkers ? " (cut short by STRESS_SECONDS)" : "", seed, secs,
		last_loop_end - t0, sum.irq_runs, sum.irq_in_mm,
		deferred, sum.irq_allocs, sum.irq_null, sum.kernel_allocs, sum.kernel_null, sum.atomic_allocs,
		sum.atomic_null, sum.transfers, s1.pool_hits - s0.pool_hits,
		s1.pool_empty_failures - s0.pool_empty_failures, s1.pool_refills - s0.pool_refills, sum.checks);

	CHECK(sum.mismatches == 0 && sum.irq_mismatches == 0, "%" PRIu64 " signature mismatches (%" PRIu64
	       " in handlers)", sum.mismatches + sum.irq_mismatches, sum.irq_mismatches);
	CHECK(sum.irq_errors == 0, "%" PRIu64 " handler frees refused or pages with the wrong owner", sum.irq_errors);
	CHECK(sum.irq_bad_ctx == 0, "%" PRIu64 " of %" PRIu64 " handler runs were not in interrupt context "
	       "(port_host.c run_handler)", sum.irq_bad_ctx, sum.irq_runs);
	CHECK(sum.irq_runs > 0 && sum.irq_in_mm > 0, "interrupts: %" PRIu64 ", inside the allocator %" PRIu64,
	       sum.irq_runs, sum.irq_in_mm);
	CHECK(deferred > 0, "no interrupt was ever held pending by the allocator's lock");
	CHECK(sum.irq_allocs > 0 && s1.pool_hits > s0.pool_hits, "handlers never allocated from the pool");

	CHECK(s1.allocated == 0, "%" PRIu64 " pages still allocated", s1.allocated);
	CHECK(s1.free + s1.pool == s0.free + s0.pool, "free+pool %" PRIu64 ", was %" PRIu64,
	       s1.free + s1.pool, s0.free + s0.pool);
	CHECK(s1.pool == s0.pool, "pool %" PRIu64 " after refill, was %" PRIu64, s1.pool, s0.pool);
	CHECK(s1.poison_errors == 0, "poison errors");
	for (int s = 1; s < LMM_STATUS_COUNT; s++)
		CHECK(s1.refused[s] - s0.refused[s] == sum.expect_refused[s], "refused '%s' +%" PRIu64 ", provoked %"
		       PRIu64, lmm_status_str((enum lmm_status)s), s1.refused[s] - s0.refused[s], sum.expect_refused[s]);
	CHECK(mm_conserved(&mm), "conservation broken");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	host_irq_install(IRQ_SIGNO, irq_entry);
	host_thread_owner();

	RUN_CASE(pool_kernel_never_takes_reserve);
	RUN_CASE(pool_atomic_gets_reserve_after_kernel_exhaustion);
	RUN_CASE(pool_atomic_path_is_o1);
	RUN_CASE(pool_all_empty_atomic_fails_at_once);
	RUN_CASE(pool_empty_failures_count_only_an_empty_pool);
	RUN_CASE(stats_count_every_call);
	RUN_CASE(pool_refill_refused_outside_normal_context);
	RUN_CASE(pool_marks_configurable);
	RUN_CASE(exclusive_page_owned_by_caller);
	RUN_CASE(exclusive_second_reference_refused);
	RUN_CASE(exclusive_free_by_other_owner_refused);
	RUN_CASE(exclusive_double_free_refused);
	RUN_CASE(exclusive_transfer_handler_to_thread);
	RUN_CASE(exclusive_transfer_by_non_owner_refused);
	RUN_CASE(exclusive_unexclusive_then_shared);
	RUN_CASE(kernel_alloc_in_handler_refused);
	RUN_CASE(lock_retaken_by_holder_is_fatal);
	RUN_CASE(lock_holder_is_the_cpu_not_the_owner_tag);
#if !SAN_TSAN && defined(__x86_64__)
	RUN_CASE(port_interrupt_during_deferred_delivery); /* TSan delays signals: x86 ASan build only */
#endif
	RUN_CASE(stress_threads_and_timer_interrupts);

	host_irq_uninstall(IRQ_SIGNO);
	host_arena_unmap();
	return testlib_exit();
}

#else /* LMM_TSAN_LAUNCHER */

/*
 * build/host/test_mm_atomic_tsan: runs the ThreadSanitizer build (tsan/test_mm_atomic next
 * to this binary) with address-space randomisation off, because gcc 12's TSan aborts with
 * "unexpected memory mapping" under some ASLR layouts (newer TSan re-execs itself the same
 * way), and turns a TSan report (exit status 66) into a FAIL line the runner counts.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	(void)argc;
	char self[PATH_MAX], real[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		perror("readlink /proc/self/exe");
		return 2;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(real, sizeof(real), "%s/tsan/test_mm_atomic", self);
	setenv("TSAN_OPTIONS", "exitcode=66", 0);
	fflush(stdout);

	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		int cur = personality(0xffffffff);
		if (cur != -1 && !(cur & ADDR_NO_RANDOMIZE))
			personality((unsigned long)cur | ADDR_NO_RANDOMIZE);
		argv[0] = real;
		execv(real, argv);
		fprintf(stderr, "exec %s: %s\n", real, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 2;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 66) {
		printf("FAIL tsan/no_thread_sanitizer_reports: ThreadSanitizer reported problems (see stderr)\n");
		return 1;
	}
	if (WIFSIGNALED(status)) {
		printf("FAIL tsan/test_mm_atomic: killed by signal %d\n", WTERMSIG(status));
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 127)
		printf("PASS tsan/no_thread_sanitizer_reports\n");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

#endif /* LMM_TSAN_LAUNCHER */

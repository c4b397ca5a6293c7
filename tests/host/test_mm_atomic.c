/*
 * test_mm_atomic.c - the atomic path under fire: the emergency-pool (reserve) properties,
 * the per-CPU layer (no lock on a warm pair, draining a CPU, two CPUs at once), every
 * exclusive-ownership violation, a lock re-taken by its holder, and millions of mixed
 * operations from threads (the CPUs) and a high-frequency timer signal (the interrupt).
 *
 * Built twice: with ASan+UBSan (build/host/test_mm_atomic) and with ThreadSanitizer
 * (build/host/tsan/test_mm_atomic, started by build/host/test_mm_atomic_tsan, which is
 * this same file compiled with -DLMM_TSAN_LAUNCHER; see the end of the file).
 * Stress knobs: SEED=n (default fixed), OPS=n per thread, THREADS=n, IRQ_HZ=n per thread,
 * STRESS_SECONDS=n (time cap); CASE=substring runs only the cases whose name contains it.  Cases that find a bug in mm/ or the port name the line.
 */
#define _GNU_SOURCE

#ifndef LMM_TSAN_LAUNCHER

#include "mm_harness.h"
#include "../../mm/internal.h" /* LMM_FRAME_F_RESERVE: which frames belong to the reserve */

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

#if defined(__SANITIZE_THREAD__) /* gcc */
#define SAN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) /* clang */
#define SAN_TSAN 1
#endif
#endif
#ifdef SAN_TSAN
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
#define STRESS_SECONDS 25
#else
#define STRESS_SECONDS 15
#endif
#endif

#define IRQ_SIGNO SIGUSR1
#define POOL_TARGET 64
#define POOL_LOW 16
#define HANDLER_BIT 0x8000u /* the host port tags a handler's owner with it */

static struct lmm mm;

/* CASE=substring runs only the cases whose name contains it. */
#define RUN_CASE(fn)                                                                       \
	do {                                                                               \
		const char *only_ = getenv("CASE");                                        \
		if (!only_ || !*only_ || strstr(#fn, only_))                               \
			testlib_run(CASE_PREFIX #fn, fn);                                  \
	} while (0)

/* ---- Fixtures ------------------------------------------------------------------------- */

/* @arena bytes of RAM, the first 64 KiB reserved; the pool marks as given; the default mm. */
static enum lmm_status setup_slice(uint64_t arena, uint32_t target, uint32_t low, uint32_t slice, uint32_t flags)
{
	struct range use[] = { { 0, arena } };
	struct range res[] = { { 0, 64 * 1024 } };
	struct lmm_config cfg = { .pool_target = target, .pool_low = low, .pool_slice = slice,
				  .flags = LMM_CFG_QUIET | flags };
	enum lmm_status st = mm_setup(&mm, arena, use, 1, res, 1, &cfg);
	if (st == LMM_OK)
		lmm_set_default(&mm);
	return st;
}

/* The default pool slice (capped at target / (2 * LMM_PORT_MAX_CPUS): 2 for POOL_TARGET). */
static enum lmm_status setup_with(uint64_t arena, uint32_t target, uint32_t low, uint32_t flags)
{
	return setup_slice(arena, target, low, 0, flags);
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

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
	return x < y ? -1 : x > y;
}

/* Most pages a reserve snapshot can hold: the target plus a full slice on every CPU. */
#define RESERVE_MAX (4 * POOL_TARGET + 16 * LMM_PORT_MAX_CPUS)

/*
 * The pages the reserve holds right now, as a sorted set: the shared pool (mm.pool_head)
 * plus every CPU's slice, all linked through mm.frames[].next.  Quiescent points only
 * (no other CPU running mm/ code): it is how a test names the exact frames kept in
 * reserve.  Order is meaningless (slices are LIFO stacks fed by frees), so compare sets.
 */
static size_t pool_snapshot(void **out, size_t max)
{
	size_t n = 0;
	uint32_t i = mm.pool_head;
	for (uint32_t k = 0; k < mm.npool && i != LMM_NIL && n < max; k++, i = mm.frames[i].next)
		out[n++] = frame_virt(i);
	for (unsigned c = 0; c < LMM_PORT_MAX_CPUS; c++) {
		i = mm.cpu[c].slice_head;
		for (uint32_t k = 0; k < mm.cpu[c].slice_count && i != LMM_NIL && n < max; k++, i = mm.frames[i].next)
			out[n++] = frame_virt(i);
	}
	qsort(out, n, sizeof(*out), cmp_ptr);
	return n;
}

static bool same_set(void *const *a, size_t na, void *const *b, size_t nb)
{
	return na == nb && memcmp(a, b, na * sizeof(*a)) == 0;
}

/* Index of the frame holding @p (a managed page). */
static uint32_t frame_index(const void *p)
{
	for (uint32_t r = 0; r < mm.nregions; r++) {
		uintptr_t off = (uintptr_t)p - mm.regions[r].vbase;
		if ((uintptr_t)p >= mm.regions[r].vbase && off < (mm.regions[r].npages << LMM_PAGE_SHIFT))
			return mm.regions[r].first_index + (uint32_t)(off >> LMM_PAGE_SHIFT);
	}
	return LMM_NIL;
}

/* Does the frame at @p belong to the reserve (mm/internal.h LMM_FRAME_F_RESERVE)? */
static bool is_reserve_frame(const void *p)
{
	uint32_t i = frame_index(p);
	return i != LMM_NIL && (__atomic_load_n(&mm.frames[i].flags, __ATOMIC_RELAXED) & LMM_FRAME_F_RESERVE);
}

/* Free memory, in pages, held in buddy blocks of order >= @order. */
static uint64_t free_pages_in_blocks(const struct lmm_stats *s, unsigned order)
{
	uint64_t n = 0;
	for (unsigned o = order; o <= LMM_MAX_ORDER; o++)
		n += s->free_blocks[o] << o;
	return n;
}

/* Every CPU slot's cache and slice back to the core: threads that ran have exited. */
static void drain_all_cpus(void)
{
	for (unsigned c = 0; c < LMM_PORT_MAX_CPUS; c++)
		lmm_cpu_drain(&mm, c);
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
	static void *reserve[RESERVE_MAX], *after[RESERVE_MAX];
	size_t nres = pool_snapshot(reserve, RESERVE_MAX);
	ASSERT(nres == POOL_TARGET, "reserve lists hold %zu pages, its count says %d", nres, POOL_TARGET);

	void **v;
	size_t n = exhaust(LMM_GFP_KERNEL, &v);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(n == s0.free, "KERNEL got %zu pages, buddy had %" PRIu64, n, s0.free);
	CHECK(s1.free == 0 && s1.pool == POOL_TARGET, "after exhaustion free %" PRIu64 " pool %" PRIu64,
	       s1.free, s1.pool);
	CHECK(s1.pool_hits == s0.pool_hits, "KERNEL allocations hit the pool");
	CHECK(s1.reserve_to[LMM_CLASS_KERNEL] == 0, "%" PRIu64 " reserve pages handed to KERNEL",
	      s1.reserve_to[LMM_CLASS_KERNEL]);
	for (size_t i = 0; i < n; i++)
		if (in_set(reserve, nres, v[i]) || is_reserve_frame(v[i])) {
			CHECK(0, "KERNEL allocation returned pool page %s", hex_phys(v[i]));
			break;
		}
	size_t nafter = pool_snapshot(after, RESERVE_MAX);
	CHECK(same_set(after, nafter, reserve, nres), "the reserve's pages changed under KERNEL pressure");
	/* Larger orders and the other non-reserve flag respect the reserve too. */
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(!lmm_alloc_pages(&mm, o, LMM_GFP_KERNEL), "KERNEL order %u succeeded on empty buddy", o);
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT), "NOWAIT took the reserve");
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_ZERO), "KERNEL|ZERO took the reserve");
	CHECK(mm_stats(&mm).pool == POOL_TARGET, "pool drained by non-reserve callers");

	free_all(v, n);
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(s2.available == s0.available && s2.pool == s0.pool && s2.allocated == 0,
	      "not back to the start: available %" PRIu64 " (was %" PRIu64 "), pool %" PRIu64 ", allocated %" PRIu64,
	      s2.available, s0.available, s2.pool, s2.allocated);
	/* Freed KERNEL pages went to this CPU's cache or the lists, never into the reserve. */
	nafter = pool_snapshot(after, RESERVE_MAX);
	CHECK(same_set(after, nafter, reserve, nres), "KERNEL frees changed the reserve's pages");
	lmm_cpu_drain(&mm, host_cpu_id());
	s2 = mm_stats(&mm);
	CHECK(s2.free == s0.free && s2.cached == 0 &&
		      memcmp(s2.free_blocks, s0.free_blocks, sizeof(s0.free_blocks)) == 0,
	      "after a drain: free %" PRIu64 " (was %" PRIu64 "), cached %" PRIu64 ", lists %s", s2.free, s0.free,
	      s2.cached, memcmp(s2.free_blocks, s0.free_blocks, sizeof(s0.free_blocks)) ? "differ" : "same");
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
	static void *reserve[RESERVE_MAX];
	size_t nres = pool_snapshot(reserve, RESERVE_MAX);
	ASSERT(nres == POOL_TARGET, "fixture: pool not full");
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
		CHECK(in_set(reserve, nres, p), "ATOMIC page %s was not from the pool", hex_phys(p));
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
		CHECK(in_set(reserve, nres, irq_ptrs[i]), "handler page %s not from the pool",
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
	/* Every reserve page came back where it was freed (handler, normal): no refill needed. */
	CHECK(mm_stats(&mm).pool == POOL_TARGET, "pool %" PRIu64 " after the frees, before any refill",
	      mm_stats(&mm).pool);
	free_all(v, n);
	CHECK(lmm_pool_refill(&mm) == 0, "a refill found pages missing from the reserve");
	static void *after[RESERVE_MAX];
	size_t nafter = pool_snapshot(after, RESERVE_MAX);
	CHECK(same_set(after, nafter, reserve, nres), "the reserve is not the same %zu frames (%zu now)", nres,
	      nafter);
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
 * Property 3.  The bound on interrupts-off work of the atomic exclusive pair (mm.h):
 *   alloc: a pop from this CPU's slice (O(1), no lock), or one lock hold that moves
 *          ceil(pool_slice / 2) frames from the shared pool into the slice (with the
 *          reserve empty: one pop from this CPU's cache, or one buddy allocation of
 *          O(LMM_MAX_ORDER) splits);
 *   free:  a push onto this CPU's slice (O(1), no lock), or one lock hold that pushes
 *          it on the shared pool (or merges a page from outside the reserve: the next
 *          case).  Never a loop over memory, never a refill, never a cache batch.
 * The structural part is asserted: a reserve allocation and its free, with interrupts
 * off, change no buddy counter, take the lock at most once per call, and leave the
 * reserve as full as before.  The time is only printed (a behaviour test must not
 * assert a timing bound): the worst case over all samples, and over the rounds in which
 * the host did not switch this thread out (host preemption is not the allocator's cost).
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
		uint64_t locks0 = host_lock_acquisitions();
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
		uint64_t locks = host_lock_acquisitions() - locks0 - 1; /* - the mm_stats() above */
		/* Frees with interrupts off return reserve frames to the reserve, not the lists. */
		struct lmm_stats s2 = mm_stats(&mm);
		if (s2.pool != s0.pool || s2.free != s0.free ||
		    memcmp(s0.free_blocks, s2.free_blocks, sizeof(s0.free_blocks)) != 0 || locks > 2 * K) {
			structural_ok = false;
			CHECK(0, "round %d: irqs-off frees: pool %" PRIu64 " -> %" PRIu64 ", free %" PRIu64 " -> %" PRIu64
				  ", %" PRIu64 " lock holds for %d calls", r, s0.pool, s2.pool, s0.free, s2.free, locks, 2 * K);
		}
		host_irq_restore(fl);
		if (context_switches() == csw0) {
			clean_rounds++;
			clean_worst_a = worst_a > clean_worst_a ? worst_a : clean_worst_a;
			clean_worst_f = worst_f > clean_worst_f ? worst_f : clean_worst_f;
		}
		CHECK(lmm_pool_refill(&mm) == 0, "round %d: a refill found reserve pages missing", r);
	}
	if (na && nf) {
		qsort(ta, na, sizeof(*ta), cmp_u64);
		qsort(tf, nf, sizeof(*tf), cmp_u64);
		fprintf(stderr,
			"atomic exclusive path with interrupts off (%s), " CYCLE_UNIT ": alloc from the pool: "
			"median %" PRIu64 ", p99 %" PRIu64 ", p99.9 %" PRIu64 ", worst %" PRIu64
			" (%" PRIu64 " in the %d of %d rounds the host did not preempt); free back to the reserve: "
			"median %" PRIu64 ", p99 %" PRIu64 ", worst %" PRIu64 " (%" PRIu64 " unpreempted); bound: "
			"per call one slice push/pop, or one lock hold (frames moved per hold: at most %u)\n",
			SAN_TSAN ? "TSan build" : "non-TSan build", ta[na / 2], ta[na * 99 / 100],
			ta[na * 999 / 1000], ta[na - 1], clean_worst_a, clean_rounds, ROUNDS, tf[nf / 2],
			tf[nf * 99 / 100], tf[nf - 1], clean_worst_f, (mm_stats(&mm).pool_slice + 1) / 2);
	}
	free(ta);
	free(tf);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * Property 3, the free's other branch: with the reserve empty the routine's page comes
 * from outside it, and its free, with this CPU's cache full, merges that one page into
 * the lists under one lock hold; it never drains a cache batch.
 */
static void atomic_free_never_drains_a_cache_batch(void)
{
	ASSERT(setup_with(16 * MiB, 0, 0, 0) == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	ASSERT(p, "no page with the reserve empty");
	const unsigned cpu = host_cpu_id();
	const uint32_t high = mm_stats(&mm).cache_high;
	enum { N = 1024 };
	void *v[N];
	unsigned n = 0, kept = 0;
	struct lmm_cpu_stats c;
	ASSERT(2 * high <= N, "fixture: high mark %u", high);
	while (n < 2 * high && (v[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL)
		n++;
	/* Free until the cache is exactly full. */
	for (lmm_get_cpu_stats(&mm, cpu, &c); kept < n && c.cache_pages < high; lmm_get_cpu_stats(&mm, cpu, &c))
		lmm_free_pages(&mm, v[kept++], 0);
	ASSERT(c.cache_pages == high, "fixture: cache %u of %u", c.cache_pages, high);
	struct lmm_stats s0 = mm_stats(&mm);
	uint64_t locks0 = host_lock_acquisitions();
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "free refused");
	uint64_t locks = host_lock_acquisitions() - locks0;
	struct lmm_stats s1 = mm_stats(&mm);
	lmm_get_cpu_stats(&mm, cpu, &c);
	CHECK(s1.cache_drains == s0.cache_drains && c.cache_pages == high && s1.free == s0.free + 1 && locks == 1,
	      "the routine's free drained %" PRIu64 " batches, cache %u -> %u, free +%" PRIu64 ", %" PRIu64 " lock holds",
	      s1.cache_drains - s0.cache_drains, high, c.cache_pages, s1.free - s0.free, locks);
	for (unsigned i = kept; i < n; i++)
		lmm_free_pages(&mm, v[i], 0);
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

/* ---- Pool property 5: refilled anywhere but in a handler; frees return reserve pages ----- */

static void refill_in_handler(void)
{
	irq_u32 = lmm_pool_refill(&mm);
}

static void set_marks_in_handler(void)
{
	irq_st = lmm_pool_set_marks(&mm, 1, 2);
}

static void free_one_in_handler(void)
{
	irq_st = lmm_free_pages(&mm, irq_ptrs[0], 0);
}

/* The last refusal record is the one expected: @reason, @op, from @ctx, no page. */
static bool last_report_is(enum lmm_status reason, const char *op, enum lmm_context ctx)
{
	const struct lmm_report *r = host_report_last();
	return r && r->reason == reason && r->op && strcmp(r->op, op) == 0 && r->context == ctx &&
	       r->phys == LMM_PHYS_INVALID && r->caller != NULL;
}

static volatile uint64_t irq_u64;

static void check_in_handler(void)
{
	irq_u64 = lmm_check(&mm);
}

static void dump_in_handler(void)
{
	lmm_dump(&mm);
}

static void dump_holders_in_handler(void)
{
	irq_u32 = lmm_dump_holders(&mm, 8);
}

/*
 * lmm_check, lmm_dump and lmm_dump_holders walk memory or format text: refused in a
 * handler (counted, one record each, nothing logged, a check never "healthy"), allowed
 * with interrupts off (boot code, a kernel whose code all runs so).
 */
static void observers_refused_only_in_handler(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	host_reports_clear();
	uint64_t lines = host_log_count();

	irq_u64 = 0;
	ASSERT(interrupt(check_in_handler) == 1, "handler did not run");
	CHECK(irq_u64 == 1, "lmm_check from a handler returned %" PRIu64 ", want 1 (refused)", irq_u64);
	CHECK(last_report_is(LMM_ERR_BAD_CONTEXT, "check", LMM_CTX_INTERRUPT), "handler check not reported");
	ASSERT(interrupt(dump_in_handler) == 1, "handler did not run");
	CHECK(last_report_is(LMM_ERR_BAD_CONTEXT, "dump", LMM_CTX_INTERRUPT), "handler dump not reported");
	irq_u32 = 99;
	ASSERT(interrupt(dump_holders_in_handler) == 1, "handler did not run");
	CHECK(irq_u32 == 0, "lmm_dump_holders from a handler returned %u", irq_u32);
	CHECK(last_report_is(LMM_ERR_BAD_CONTEXT, "dump holders", LMM_CTX_INTERRUPT),
	      "handler dump_holders not reported");
	CHECK(host_report_count() == 3, "%" PRIu64 " reports, want 3", host_report_count());
	/* The port logs each refusal: one line each, none of the dump's own. */
	CHECK(host_log_count() == lines + 3 && !host_log_contains("free blocks by order"),
	      "a refused observer logged %" PRIu64 " lines", host_log_count() - lines);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_BAD_CONTEXT] == s0.refused[LMM_ERR_BAD_CONTEXT] + 3,
	      "BAD_CONTEXT refusals +%" PRIu64 ", want +3",
	      s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT]);

	/* With interrupts off (not a handler) all three run. */
	host_reports_clear();
	lmm_irqflags_t fl = host_irq_save();
	uint64_t problems = lmm_check(&mm);
	lmm_dump(&mm);
	lmm_dump_holders(&mm, 8);
	host_irq_restore(fl);
	CHECK(problems == 0, "lmm_check with interrupts off found %" PRIu64 " problems", problems);
	CHECK(host_log_contains("free blocks by order"), "lmm_dump with interrupts off logged nothing");
	CHECK(host_report_count() == 0, "interrupts-off observers refused (%" PRIu64 " reports)", host_report_count());
	CHECK(lmm_check(&mm) == 0, "check failed afterwards");
}

static void pool_refill_refused_only_in_handler(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p[10];
	for (int i = 0; i < 10; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	void *k = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(k && !is_reserve_frame(k), "fixture: KERNEL page");
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.pool == POOL_TARGET - 10, "fixture: pool %" PRIu64, s0.pool);

	/* From a handler: refill and set_marks refused, counted, reported as records. */
	irq_u32 = 99;
	host_reports_clear();
	ASSERT(interrupt(refill_in_handler) == 1, "handler did not run");
	CHECK(irq_u32 == 0, "refill from the handler added %u pages", irq_u32);
	CHECK(host_report_count() == 1 && last_report_is(LMM_ERR_BAD_CONTEXT, "pool refill", LMM_CTX_INTERRUPT),
	      "handler refill: %" PRIu64 " reports, last reason %s", host_report_count(),
	      host_report_last() ? lmm_status_str(host_report_last()->reason) : "-");
	CHECK(host_log_contains("pool refill"), "the port did not log the refusal's text: %s", host_log_last());
	ASSERT(interrupt(set_marks_in_handler) == 1, "handler did not run");
	CHECK(irq_st == LMM_ERR_BAD_CONTEXT, "set_marks from the handler: %s", lmm_status_str(irq_st));
	CHECK(last_report_is(LMM_ERR_BAD_CONTEXT, "pool marks", LMM_CTX_INTERRUPT), "handler set_marks not reported");
	/* set_marks is normal only: refused with interrupts off too. */
	lmm_irqflags_t fl = host_irq_save();
	enum lmm_status st = lmm_pool_set_marks(&mm, 1, 2);
	host_irq_restore(fl);
	CHECK(st == LMM_ERR_BAD_CONTEXT, "set_marks with interrupts off: %s", lmm_status_str(st));
	CHECK(last_report_is(LMM_ERR_BAD_CONTEXT, "pool marks", LMM_CTX_IRQS_OFF), "irqs-off set_marks not reported");

	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.refused[LMM_ERR_BAD_CONTEXT] == s0.refused[LMM_ERR_BAD_CONTEXT] + 3,
	       "BAD_CONTEXT refusals +%" PRIu64 ", want +3 (1 refill, 2 set_marks)",
	       s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT]);
	CHECK(s1.pool == s0.pool && s1.pool_refills == s0.pool_refills && s1.free == s0.free,
	       "a refused refill moved pages");
	CHECK(s1.pool_target == POOL_TARGET && s1.pool_low == POOL_LOW, "refused set_marks changed the marks");

	/* A reserve page freed in a handler, with interrupts off, or normally: back to the reserve. */
	irq_ptrs[0] = p[0];
	ASSERT(interrupt(free_one_in_handler) == 1, "handler did not run");
	CHECK(irq_st == LMM_OK, "handler free refused: %s", lmm_status_str(irq_st));
	fl = host_irq_save();
	CHECK(lmm_free_pages(&mm, p[1], 0) == LMM_OK, "irqs-off free refused");
	host_irq_restore(fl);
	CHECK(lmm_free_pages(&mm, p[2], 0) == LMM_OK, "normal free refused");
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(s2.pool == s1.pool + 3 && s2.free == s1.free && s2.cached == s1.cached,
	      "3 reserve frees (handler, irqs off, normal): pool %" PRIu64 " -> %" PRIu64 ", free %" PRIu64 " -> %" PRIu64
	      ", cached %" PRIu64 " -> %" PRIu64, s1.pool, s2.pool, s1.free, s2.free, s1.cached, s2.cached);
	static void *res[RESERVE_MAX];
	size_t nres = pool_snapshot(res, RESERVE_MAX);
	for (int i = 0; i < 3; i++)
		CHECK(in_set(res, nres, p[i]), "reserve page %d freed but not back in the reserve", i);
	/* An ordinary page freed with interrupts off goes to the cache, never into the reserve. */
	fl = host_irq_save();
	CHECK(lmm_free_pages(&mm, k, 0) == LMM_OK, "irqs-off free of a KERNEL page refused");
	host_irq_restore(fl);
	struct lmm_stats s3 = mm_stats(&mm);
	nres = pool_snapshot(res, RESERVE_MAX);
	CHECK(s3.pool == s2.pool && s3.available == s2.available + 1 && !in_set(res, nres, k),
	      "a KERNEL page's free: pool %" PRIu64 " -> %" PRIu64 ", available +%" PRIu64, s2.pool, s3.pool,
	      s3.available - s2.available);

	/* The reserve is a fixed budget: frames merely out are not missing, so nothing to add. */
	CHECK(s3.reserve_held == 7 && s3.pool + s3.reserve_held == POOL_TARGET,
	      "reserve: %" PRIu64 " waiting + %" PRIu64 " out, target %d", s3.pool, s3.reserve_held, POOL_TARGET);
	CHECK(lmm_pool_refill(&mm) == 0, "a refill replaced reserve frames that are only held");

	/* With interrupts off the explicit refill works: after the target is raised it tops
	 * the budget up to the new target, counted once. */
	CHECK(lmm_pool_set_marks(&mm, POOL_LOW, POOL_TARGET + 8) == LMM_OK, "raising the target refused");
	fl = host_irq_save();
	uint32_t added = lmm_pool_refill(&mm);
	host_irq_restore(fl);
	CHECK(added == 8, "irqs-off refill added %u pages after the target was raised by 8", added);
	struct lmm_stats s4 = mm_stats(&mm);
	CHECK(s4.pool == s3.pool + 8 && s4.reserve_held == 7, "pool %" PRIu64 " after refill", s4.pool);
	CHECK(s4.pool_refills == s3.pool_refills + 1 && s4.pool_refill_pages == s3.pool_refill_pages + 8,
	       "refill not counted (refills +%" PRIu64 ", pages +%" PRIu64 ")", s4.pool_refills - s3.pool_refills,
	       s4.pool_refill_pages - s3.pool_refill_pages);
	CHECK(lmm_pool_refill(&mm) == 0 && mm_stats(&mm).pool_refills == s4.pool_refills,
	       "a refill of a full pool added pages or was counted");
	/* The frames still out come back too: the reserve ends at its (new) target. */
	for (int i = 3; i < 10; i++)
		CHECK(lmm_free_pages(&mm, p[i], 0) == LMM_OK, "free refused");
	struct lmm_stats s5 = mm_stats(&mm);
	CHECK(s5.pool == POOL_TARGET + 8 && s5.reserve_held == 0, "pool %" PRIu64 " (+%" PRIu64 " out) after the frees, "
	      "target %d", s5.pool, s5.reserve_held, POOL_TARGET + 8);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void pool_marks_configurable(void)
{
	/* A one-page slice: the low-water mark is exact (mm/alloc.c slice_refill_locked). */
	ASSERT(setup_slice(16 * MiB, 40, 10, 1, 0) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.pool_target == 40 && s.pool_low == 10 && s.pool == 40 && s.pool_slice == 1,
	      "config marks: target %u low %u fill %" PRIu64 " slice %u", s.pool_target, s.pool_low, s.pool,
	      s.pool_slice);
	CHECK(!lmm_pool_needs_refill(&mm), "full pool needs a refill");
	void *p[41];
	for (int i = 0; i < 31; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	s = mm_stats(&mm);
	CHECK(s.pool == 9 && s.reserve_held == 31, "31 taken: %" PRIu64 " waiting, %" PRIu64 " out", s.pool,
	      s.reserve_held);
	CHECK(s.pool_low_water == 9, "low-water %u, want 9", s.pool_low_water);
	/* The budget counts frames out with their holders: none is missing, none to refill. */
	CHECK(!lmm_pool_needs_refill(&mm), "fill 9 with 31 out (budget 40, low 10) needs a refill");
	CHECK(lmm_pool_refill(&mm) == 0, "refill replaced frames that are only out");

	/* Raise both marks: nothing moves until the refill, which brings the budget to the new target. */
	CHECK(lmm_pool_set_marks(&mm, 50, 100) == LMM_OK, "set_marks refused");
	s = mm_stats(&mm);
	CHECK(s.pool_target == 100 && s.pool_low == 50 && s.pool == 9, "after set_marks: target %u low %u fill %"
	       PRIu64, s.pool_target, s.pool_low, s.pool);
	CHECK(lmm_pool_needs_refill(&mm), "budget 40 < low 50 does not need a refill");
	CHECK(lmm_pool_refill(&mm) == 60 && mm_stats(&mm).pool == 69, "refill did not bring the budget to 100");
	CHECK(!lmm_pool_needs_refill(&mm), "full budget needs a refill");
	/* A budget at the low mark is not below it. */
	CHECK(lmm_pool_set_marks(&mm, 100, 100) == LMM_OK && !lmm_pool_needs_refill(&mm),
	      "budget 100 at low mark 100 needs a refill");
	CHECK(lmm_pool_set_marks(&mm, 50, 100) == LMM_OK, "set_marks refused");
	for (int i = 0; i < 31; i++)
		lmm_free_pages(&mm, p[i], 0);
	s = mm_stats(&mm);
	CHECK(s.pool == 100 && s.reserve_held == 0, "after the frees: %" PRIu64 " waiting, %" PRIu64 " out", s.pool,
	      s.reserve_held);

	/* Shrink: the surplus goes straight back to the buddy lists. */
	uint64_t free0 = s.free;
	CHECK(lmm_pool_set_marks(&mm, 2, 8) == LMM_OK, "set_marks refused");
	s = mm_stats(&mm);
	CHECK(s.pool == 8 && s.free == free0 + 92, "shrink to 8: fill %" PRIu64 ", free +%" PRIu64, s.pool,
	      s.free - free0);
	CHECK(lmm_pool_set_marks(&mm, 10, 5) == LMM_ERR_BAD_MARKS, "low above target accepted");
	CHECK(mm_stats(&mm).pool_target == 8, "refused set_marks changed the target");
	CHECK(lmm_pool_set_marks(&mm, LMM_POOL_AUTO, 8) == LMM_OK && mm_stats(&mm).pool_low == 4,
	      "set_marks(LMM_POOL_AUTO, 8): low mark %u, want 4 (target / 2)", mm_stats(&mm).pool_low);
	/* Shrink while frames are out: those come back and the budget settles on the target. */
	for (int i = 0; i < 8; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	CHECK(lmm_pool_set_marks(&mm, 1, 3) == LMM_OK, "set_marks refused");
	for (int i = 0; i < 8; i++)
		lmm_free_pages(&mm, p[i], 0);
	s = mm_stats(&mm);
	CHECK(s.pool == 3 && s.reserve_held == 0, "frees after shrinking to 3: fill %" PRIu64, s.pool);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");

	/* Automatic marks: target scaled to RAM within [16, 4096], low = target / 2. */
	ASSERT(setup_with(64 * MiB, LMM_POOL_AUTO, LMM_POOL_AUTO, 0) == LMM_OK, "init failed");
	s = mm_stats(&mm);
	CHECK(s.pool_target >= 16 && s.pool_target <= 4096 && s.pool_low == s.pool_target / 2 &&
		       s.pool == s.pool_target, "auto marks: target %u low %u fill %" PRIu64, s.pool_target,
	       s.pool_low, s.pool);
}

/*
 * A reserve never takes more than half of the pages free at init (stats.pool_most):
 * marks beyond that, or a low mark above the target, are refused with a record naming
 * them, at lmm_init (then cut to fit) and in lmm_pool_set_marks (then unchanged); before
 * lmm_init there are no marks to set.
 */
static void pool_marks_out_of_range_refused(void)
{
	/* 16 MiB: 4096 pages, less 16 reserved and 16 of frame records. */
	const uint32_t most = (4096 - 16 - 16) / 2;
	ASSERT(setup_with(16 * MiB, POOL_TARGET, POOL_LOW, 0) == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	CHECK(s0.pool_most == most, "pool_most %u, want %u", s0.pool_most, most);
	host_reports_clear();
	CHECK(lmm_pool_set_marks(&mm, LMM_POOL_AUTO, LMM_POOL_AUTO) == LMM_ERR_BAD_MARKS, "target ~0 accepted");
	const struct lmm_report *r = host_report_last();
	char line[200] = "";
	if (r)
		lmm_report_format(r, line, sizeof(line));
	CHECK(r && r->reason == LMM_ERR_BAD_MARKS && r->marks_target == LMM_POOL_AUTO &&
		      r->marks_low == LMM_POOL_AUTO / 2 && strstr(line, "refused pool marks (low 2147483647, target 4294967295)"),
	      "record: %s", line);
	CHECK(lmm_pool_set_marks(&mm, 0, most + 1) == LMM_ERR_BAD_MARKS, "target %u accepted", most + 1);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.pool_target == POOL_TARGET && s1.pool_low == POOL_LOW &&
		      s1.refused[LMM_ERR_BAD_MARKS] == s0.refused[LMM_ERR_BAD_MARKS] + 2,
	      "refused marks: target %u low %u, %" PRIu64 " counted", s1.pool_target, s1.pool_low,
	      s1.refused[LMM_ERR_BAD_MARKS] - s0.refused[LMM_ERR_BAD_MARKS]);
	CHECK(lmm_pool_set_marks(&mm, 0, most) == LMM_OK && lmm_pool_refill(&mm) == most - POOL_TARGET,
	      "target pool_most refused or not filled");
	CHECK(lmm_pool_set_marks(&mm, POOL_LOW, POOL_TARGET) == LMM_OK && lmm_check(&mm) == 0, "back to the marks");

	/* At init: refused, cut to fit, and KERNEL callers keep the other half. */
	host_reports_clear();
	ASSERT(setup_with(16 * MiB, 0xfffffffeu, LMM_POOL_AUTO, 0) == LMM_OK, "init with target ~0 failed");
	r = host_report_last();
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(r && r->reason == LMM_ERR_BAD_MARKS && r->marks_target == 0xfffffffeu &&
		      strcmp(r->op, "init pool marks") == 0 && s2.refused[LMM_ERR_BAD_MARKS] == 1,
	      "init's refusal: %s", r ? lmm_status_str(r->reason) : "none");
	CHECK(s2.pool_target == most && s2.pool_low == most / 2 && s2.pool == most, "init marks: target %u low %u fill %"
	      PRIu64, s2.pool_target, s2.pool_low, s2.pool);
	uint32_t got = 0;
	while (lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL) != NULL)
		got++;
	CHECK(got >= 4096 - 32 - most, "KERNEL got %u pages, want %u", got, 4096 - 32 - most);
	host_reports_clear();
	ASSERT(setup_with(16 * MiB, 10, 50, 0) == LMM_OK, "init with low above target failed");
	r = host_report_last();
	s2 = mm_stats(&mm);
	CHECK(r && r->reason == LMM_ERR_BAD_MARKS && r->marks_low == 50 && r->marks_target == 10 &&
		      s2.pool_target == 10 && s2.pool_low == 5,
	      "init low 50 target 10: %s, target %u low %u", r ? lmm_status_str(r->reason) : "no record",
	      s2.pool_target, s2.pool_low);

	/* Before lmm_init: nothing to set. */
	static struct lmm fresh;
	lmm_begin(&fresh, NULL);
	host_reports_clear();
	CHECK(lmm_pool_set_marks(&fresh, 1, 3) == LMM_ERR_STATE && host_report_last() &&
		      host_report_last()->reason == LMM_ERR_STATE,
	      "set_marks before init accepted");
}

/*
 * Lowering the target reaches every slice: what waits in the shared pool and this CPU's
 * slice leaves at once; frames out with callers leave when freed, however many slices
 * had room for them; another CPU's slice leaves when that CPU is drained.  Meanwhile
 * no reserve frame returns to a slice (pool_slice 0), and then slices come back.
 */
static void pool_shrink_reaches_every_slice(void)
{
	ASSERT(setup_slice(16 * MiB, 256, 16, 8, 0) == LMM_OK, "init failed");
	unsigned me = host_cpu_id(), other = (me + 3) % LMM_PORT_MAX_CPUS;
	struct lmm_stats s = mm_stats(&mm);
	ASSERT(s.pool == 256 && s.pool_slice == 8, "fixture: fill %" PRIu64 " slice %u", s.pool, s.pool_slice);
	void *p[64];
	host_set_cpu(other); /* the other CPU's slice gets 2 waiting frames */
	for (int i = 0; i < 2; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	for (int i = 0; i < 2; i++)
		lmm_free_pages(&mm, p[i], 0);
	host_set_cpu(me);
	for (int i = 0; i < 64; i++)
		ASSERT((p[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL, "atomic alloc failed");
	for (int i = 60; i < 64; i++) /* and this CPU's slice has 4 */
		lmm_free_pages(&mm, p[i], 0);
	struct lmm_cpu_stats c_me, c_other;
	lmm_get_cpu_stats(&mm, me, &c_me);
	lmm_get_cpu_stats(&mm, other, &c_other);
	ASSERT(c_me.pool_pages > 0 && c_other.pool_pages > 0, "fixture: slices %u and %u", c_me.pool_pages,
	       c_other.pool_pages);

	CHECK(lmm_pool_set_marks(&mm, 0, 0) == LMM_OK, "set_marks refused");
	s = mm_stats(&mm);
	lmm_get_cpu_stats(&mm, me, &c_me);
	CHECK(s.pool == c_other.pool_pages && c_me.pool_pages == 0,
	      "target 0: %" PRIu64 " frames wait (this CPU's slice %u), want only the other CPU's %u", s.pool,
	      c_me.pool_pages, c_other.pool_pages);
	CHECK(s.pool_slice == 0, "slices stay on (%u) while a surplus is out", s.pool_slice);
	for (int i = 0; i < 60; i++)
		CHECK(lmm_free_pages(&mm, p[i], 0) == LMM_OK, "free refused");
	s = mm_stats(&mm);
	CHECK(s.pool == c_other.pool_pages && s.reserve_held == 0,
	      "target 0, every frame back: %" PRIu64 " wait (want %u), %" PRIu64 " out", s.pool, c_other.pool_pages,
	      s.reserve_held);
	uint64_t hits = s.reserve_to[LMM_CLASS_ATOMIC];
	void *q = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
	CHECK(q && mm_stats(&mm).reserve_to[LMM_CLASS_ATOMIC] == hits, "target 0, yet ATOMIC took a reserve frame");
	lmm_free_pages(&mm, q, 0);
	lmm_cpu_drain(&mm, other);
	s = mm_stats(&mm);
	CHECK(s.pool == 0 && s.pool_slice == 0 && mm.reserve_frames == 0, "after draining the other CPU: fill %" PRIu64
	      ", %u reserve frames", s.pool, mm.reserve_frames);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm) && s.allocated == 0, "not healthy at target 0");

	/* Raised again: slices are back, and the refill makes the whole budget. */
	CHECK(lmm_pool_set_marks(&mm, 16, 256) == LMM_OK && lmm_pool_refill(&mm) == 256, "refill to 256");
	CHECK(mm_stats(&mm).pool_slice == 8, "slice %u after raising the target", mm_stats(&mm).pool_slice);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "not healthy at target 256");
}

/* After the target is raised, every non-ATOMIC slow path tops the reserve up: larger orders, no cache. */
/*
 * A KERNEL request that finds the reserve below its low mark and only a few pages free:
 * the top-up comes after the request, so the request gets its page first.
 */
static void topup_leaves_the_request_its_page(void)
{
	ASSERT(setup_slice(4 * MiB, 16, 0, LMM_CPU_OFF, 0) == LMM_OK, "init failed");
	static void *held[1024];
	unsigned n = 0;
	while (n < 1024 && (held[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL)
		n++;
	ASSERT(n > 5 && n < 1024, "fixture: %u pages before exhaustion", n);
	for (int i = 0; i < 5; i++)
		lmm_free_pages(&mm, held[--n], 0);
	lmm_cpu_drain(&mm, host_cpu_id());
	ASSERT(mm_stats(&mm).free == 5, "fixture: %" PRIu64 " pages free, want 5", mm_stats(&mm).free);
	ASSERT(lmm_pool_set_marks(&mm, 100, 200) == LMM_OK, "raising the marks refused");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	struct lmm_stats s = mm_stats(&mm);
	CHECK(p != NULL, "KERNEL got NULL with 5 pages free: the reserve's top-up took them first (pool %" PRIu64
	      ", free %" PRIu64 ")", s.pool, s.free);
	CHECK(s.available == 16 + 4, "available %" PRIu64 " after taking one of 5 pages, want the reserve's 16 + 4",
	      s.available);
	if (p)
		held[n++] = p;
	while (n)
		lmm_free_pages(&mm, held[--n], 0);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * With the target lowered, an exclusive page freed with interrupts off leaves the
 * reserve: one merge into the lists, never this CPU's cache (which, full, would drain a
 * batch with interrupts off: more than mm.h allows the routine's free).
 */
static void surplus_reserve_page_skips_the_cache(void)
{
	ASSERT(setup_with(16 * MiB, 512, 256, 0) == LMM_OK, "init failed");
	static void *ex[100], *k[200];
	for (int i = 0; i < 100; i++)
		ASSERT((ex[i] = labyrinth_void_alloc_page_gfp_atomic_exclusive()) != NULL, "atomic alloc failed");
	ASSERT(lmm_pool_set_marks(&mm, 0, 32) == LMM_OK, "lowering the target refused");
	for (int i = 0; i < 200; i++)
		ASSERT((k[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL, "alloc failed");
	for (int i = 0; i < 200; i++)
		lmm_free_pages(&mm, k[i], 0); /* this CPU's cache is now at or near its high mark */
	unsigned cpu = host_cpu_id();
	struct lmm_cpu_stats c0, c1;
	lmm_get_cpu_stats(&mm, cpu, &c0);
	uint64_t free0 = mm_stats(&mm).free;
	lmm_irqflags_t fl = host_irq_save();
	enum lmm_status st = labyrinth_free_page_atomic_exclusive(ex[0]);
	host_irq_restore(fl);
	lmm_get_cpu_stats(&mm, cpu, &c1);
	CHECK(st == LMM_OK, "the owner's free refused: %s", lmm_status_str(st));
	CHECK(c1.cache_drains == c0.cache_drains && c1.cache_pages == c0.cache_pages,
	      "the surplus frame went through the cache: %u -> %u pages, drains %" PRIu64 " -> %" PRIu64,
	      c0.cache_pages, c1.cache_pages, c0.cache_drains, c1.cache_drains);
	CHECK(mm_stats(&mm).free == free0 + 1, "the surplus frame is not on the lists: free %" PRIu64 " -> %" PRIu64,
	      free0, mm_stats(&mm).free);
	for (int i = 1; i < 100; i++)
		labyrinth_free_page_atomic_exclusive(ex[i]);
	CHECK(mm_stats(&mm).allocated == 0 && mm_stats(&mm).pool_target == 32 && lmm_check(&mm) == 0,
	      "not healthy afterwards");
}

static void pool_topped_up_by_every_slow_path(void)
{
	for (int no_cache = 0; no_cache <= 1; no_cache++) {
		struct range use[] = { { 0, 16 * MiB } };
		struct lmm_config cfg = { .pool_target = 16, .pool_low = 8, .flags = LMM_CFG_QUIET,
					  .cache_high = no_cache ? LMM_CPU_OFF : 0 };
		ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
		ASSERT(lmm_pool_set_marks(&mm, 64, 128) == LMM_OK && lmm_pool_needs_refill(&mm), "raise");
		unsigned order = no_cache ? 0 : 1; /* with a cache, order 0 is tested in pool_marks_configurable */
		void *b[8];
		for (int i = 0; i < 8 && lmm_pool_needs_refill(&mm); i++)
			ASSERT((b[i] = lmm_alloc_pages(&mm, order, LMM_GFP_KERNEL)) != NULL, "alloc failed");
		struct lmm_stats s = mm_stats(&mm);
		CHECK(!lmm_pool_needs_refill(&mm) && s.pool >= 64 && s.reserve_to[LMM_CLASS_KERNEL] == 0,
		      "%s: order-%u KERNEL slow paths left the reserve at %" PRIu64 " (low 64)",
		      no_cache ? "no cache" : "cache", order, s.pool);
		for (int i = 0; i < 8; i++)
			if (b[i])
				lmm_free_pages(&mm, b[i], order);
		CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "not healthy afterwards");
	}
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

/*
 * A free of a page that is free again - back in the reserve, in this CPU's cache, or in
 * the buddy lists - is a double free, whichever of the three holds it (LMM_ERR_IN_POOL is
 * gone), and the record says where it was found.
 */
/*
 * The exclusive routine's free takes only exclusive pages: an ordinary page, alone or
 * shared, is refused (LMM_ERR_NOT_EXCLUSIVE), in any context, and is left as it was.
 */
static void exclusive_free_of_ordinary_page_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *plain = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *shared = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *big = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
	ASSERT(plain && shared && big && lmm_page_get(&mm, shared) == LMM_OK, "fixture");
	void *const pages[] = { plain, shared, big };
	for (int ctx = 0; ctx < 2; ctx++) { /* normal, then interrupts off */
		lmm_irqflags_t fl = ctx ? host_irq_save() : 0;
		for (int i = 0; i < 3; i++) {
			struct lmm_stats s0 = mm_stats(&mm);
			host_reports_clear();
			enum lmm_status st = labyrinth_free_page_atomic_exclusive(pages[i]);
			const struct lmm_report *r = host_report_last();
			struct lmm_stats s1 = mm_stats(&mm);
			CHECK(st == LMM_ERR_NOT_EXCLUSIVE && r && r->reason == LMM_ERR_NOT_EXCLUSIVE &&
				      r->phys == phys(pages[i]),
			      "page %d, context %d: '%s'", i, ctx, lmm_status_str(st));
			CHECK(s1.allocated == s0.allocated && s1.refused[LMM_ERR_NOT_EXCLUSIVE] == s0.refused[LMM_ERR_NOT_EXCLUSIVE] + 1,
			      "page %d, context %d: allocated %" PRIu64 " -> %" PRIu64, i, ctx, s0.allocated, s1.allocated);
		}
		if (ctx)
			host_irq_restore(fl);
	}
	/* Untouched: the shared page still has both references. */
	CHECK(lmm_free_pages(&mm, shared, 0) == LMM_OK && lmm_free_pages(&mm, shared, 0) == LMM_OK &&
		      lmm_free_pages(&mm, plain, 0) == LMM_OK && lmm_free_pages(&mm, big, 2) == LMM_OK,
	      "the pages were not left as they were");
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

static void exclusive_double_free_refused(void)
{
	static const struct {
		lmm_gfp_t gfp;
		bool drain;
		uint8_t found;
		const char *where;
	} rounds[] = {
		{ LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, false, LMM_FRAME_POOL, "the reserve" },
		{ LMM_GFP_NOWAIT | LMM_GFP_EXCLUSIVE, false, LMM_FRAME_CACHED, "this CPU's cache" },
		{ LMM_GFP_NOWAIT | LMM_GFP_EXCLUSIVE, true, LMM_FRAME_FREE, "the buddy lists" },
	};
	ASSERT(setup() == LMM_OK, "init failed");
	for (int round = 0; round < 3; round++) {
		void *p = lmm_alloc_pages(&mm, 0, rounds[round].gfp);
		ASSERT(p, "alloc failed");
		CHECK(lmm_free_pages(&mm, p, 0) == LMM_OK, "first free refused");
		if (rounds[round].drain)
			lmm_cpu_drain(&mm, host_cpu_id());
		struct lmm_stats s0 = mm_stats(&mm);
		host_reports_clear();
		host_log_clear();
		enum lmm_status st = labyrinth_free_page_atomic_exclusive(p);
		struct lmm_stats s1 = mm_stats(&mm);
		const struct lmm_report *r = host_report_last();
		/* Merged into a larger free block or not, it is a double free; the record names
		 * the state of the free block that holds the page now. */
		uint8_t found = rounds[round].found;
		enum lmm_status want = LMM_ERR_ALREADY_FREE;
		CHECK(st == want, "%s: double free answered '%s'", rounds[round].where, lmm_status_str(st));
		CHECK(s1.refused_total == s0.refused_total + 1 && s1.refused[want] == s0.refused[want] + 1,
		      "%s: double free not counted", rounds[round].where);
		CHECK(s1.free == s0.free && s1.pool == s0.pool && s1.cached == s0.cached && s1.allocated == s0.allocated,
		       "%s: double free moved pages", rounds[round].where);
		CHECK(host_report_count() == 1 && r && r->reason == want && r->phys == phys(p) &&
			      r->ptr == p && r->found_state == found && strcmp(r->op, "free") == 0 &&
			      r->context == LMM_CTX_NORMAL && r->caller != NULL,
		      "%s: record %s, phys 0x%" PRIx64 ", found state %u (want %u)", rounds[round].where,
		      r ? lmm_status_str(r->reason) : "missing", r ? r->phys : 0, r ? r->found_state : 0,
		      found);
		CHECK(host_log_contains(hex_phys(p)), "%s: the port's text lacks the address: %s", rounds[round].where,
		       host_log_last());
		CHECK(lmm_check(&mm) == 0, "%s: check failed", rounds[round].where);
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
	CHECK(host_report_last() && host_report_last()->phys == lmm_virt_to_phys(&mm, p),
	      "the refused transfer to owner 0 does not name page %s", hex_phys(p));
	CHECK(host_report_last() && host_report_last()->found_state == LMM_FRAME_EXCLUSIVE &&
		      host_report_last()->owner == me,
	      "the refused transfer to owner 0 does not say the page is exclusive to its owner");
	CHECK(lmm_page_get(&mm, (char *)p + 8) == LMM_ERR_NOT_ALIGNED, "get of an unaligned pointer accepted");
	CHECK(host_report_last() && host_report_last()->phys == lmm_virt_to_phys(&mm, p),
	      "the refused get of an unaligned pointer does not name page %s", hex_phys(p));
	/* An unaligned pointer into the third page of an order-2 block: the block is named. */
	char *blk = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
	ASSERT(blk, "order-2 alloc failed");
	CHECK(lmm_page_get(&mm, blk + 2 * 4096 + 5) == LMM_ERR_NOT_ALIGNED, "get of an unaligned pointer accepted");
	CHECK(host_report_last() && host_report_last()->phys == lmm_virt_to_phys(&mm, blk) + 2 * 4096 &&
		      host_report_last()->found_state == LMM_FRAME_ALLOCATED && host_report_last()->found_order == 2,
	      "the refused get inside an order-2 block reads state %u order %u",
	      host_report_last() ? host_report_last()->found_state : 99u,
	      host_report_last() ? host_report_last()->found_order : 99u);
	lmm_free_pages(&mm, blk, 2);
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

/*
 * Two holders of a shared page; the one that drops the last reference (on the per-CPU
 * path, without the lock) reuses the page at once.  The other holder wrote the page
 * before its put.  The reference itself is handed over properly (release, acquire); that
 * the other holder is done is signalled with relaxed atomics only, so the one ordering
 * between its writes and the reuse is mm/'s: under ThreadSanitizer
 * (test_mm_atomic_tsan) a missing release/acquire on the count is a reported race.
 */
#define HANDOVER_ROUNDS 500
static void *_Atomic handover_page;
static atomic_int handover_turn;

static void *last_holder(void *arg)
{
	(void)arg;
	for (int i = 0; i < HANDOVER_ROUNDS; i++) {
		void *p;
		while (!(p = atomic_load_explicit(&handover_page, memory_order_acquire)))
			;
		atomic_store_explicit(&handover_page, NULL, memory_order_relaxed);
		while (atomic_load_explicit(&handover_turn, memory_order_relaxed) != 2 * i + 1)
			; /* the other holder has put its reference */
		if (lmm_page_put(&mm, p, 0) != LMM_OK)
			return p;
		char *q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* this CPU's cache: most likely p */
		if (q == NULL)
			return p;
		memset(q, 0x22, 4096);
		lmm_free_pages(&mm, q, 0);
		atomic_store_explicit(&handover_turn, 2 * i + 2, memory_order_relaxed);
	}
	return NULL;
}

static void shared_page_last_put_hands_over_its_writes(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	atomic_store(&handover_page, NULL);
	atomic_store(&handover_turn, 0);
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, last_holder, NULL) == 0, "pthread_create");
	enum lmm_status st = LMM_OK;
	for (int i = 0; i < HANDOVER_ROUNDS && st == LMM_OK; i++) {
		while (atomic_load_explicit(&handover_turn, memory_order_relaxed) != 2 * i)
			;
		char *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
		ASSERT(p && lmm_page_get(&mm, p) == LMM_OK, "fixture: a page with two references");
		atomic_store_explicit(&handover_page, p, memory_order_release); /* the second reference */
		memset(p, 0x11, 4096);
		st = lmm_page_put(&mm, p, 0); /* 2 -> 1, under the lock */
		atomic_store_explicit(&handover_turn, 2 * i + 1, memory_order_relaxed);
	}
	void *stuck;
	pthread_join(t, &stuck);
	CHECK(st == LMM_OK && stuck == NULL, "a put or the reuse failed (page %p)", stuck);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * Two CPUs freeing the same page at the same moment.  The per-CPU path takes no atomic
 * read-modify-write, so there both frees can pass the check (mm/README, section 8);
 * with the cache off every free takes the lock, and exactly one of the two succeeds.
 */
#define RACE_ROUNDS 2000
static pthread_barrier_t race_start, race_done;
static void *_Atomic race_page;
static enum lmm_status race_peer_st[RACE_ROUNDS];

static void *race_free_peer(void *arg)
{
	(void)arg;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		pthread_barrier_wait(&race_start);
		race_peer_st[i] = lmm_free_pages(&mm, atomic_load_explicit(&race_page, memory_order_acquire), 0);
		pthread_barrier_wait(&race_done);
	}
	return NULL;
}

static void racing_double_free_refused_with_the_cache_off(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .cache_high = LMM_CPU_OFF, .pool_slice = LMM_CPU_OFF, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	pthread_barrier_init(&race_start, NULL, 2);
	pthread_barrier_init(&race_done, NULL, 2);
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, race_free_peer, NULL) == 0, "pthread_create");
	unsigned both = 0, neither = 0, wrong = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
		atomic_store_explicit(&race_page, p, memory_order_release);
		pthread_barrier_wait(&race_start);
		enum lmm_status mine = lmm_free_pages(&mm, p, 0);
		pthread_barrier_wait(&race_done);
		enum lmm_status peer = race_peer_st[i];
		both += mine == LMM_OK && peer == LMM_OK;
		neither += mine != LMM_OK && peer != LMM_OK;
		wrong += (mine != LMM_OK && mine != LMM_ERR_ALREADY_FREE) || (peer != LMM_OK && peer != LMM_ERR_ALREADY_FREE);
	}
	pthread_join(t, NULL);
	pthread_barrier_destroy(&race_start);
	pthread_barrier_destroy(&race_done);
	CHECK(both == 0 && neither == 0 && wrong == 0,
	      "%d racing double frees: both accepted %u times, both refused %u, a wrong reason %u", RACE_ROUNDS, both,
	      neither, wrong);
	CHECK(mm_stats(&mm).refused[LMM_ERR_ALREADY_FREE] == RACE_ROUNDS, "%" PRIu64 " double frees counted, want %d",
	      mm_stats(&mm).refused[LMM_ERR_ALREADY_FREE], RACE_ROUNDS);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * stats.available while another CPU refills and drains its cache in batches, holding
 * at most one page at a time: every snapshot is within that page of the quiet figure.
 */
static atomic_int avail_stop;

static void *refill_and_drain(void *arg)
{
	(void)arg;
	while (!atomic_load(&avail_stop)) {
		void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* refills a batch into the cache */
		lmm_free_pages(&mm, p, 0);
		lmm_cpu_drain(&mm, host_cpu_id()); /* the batch goes back */
	}
	return NULL;
}

static void available_steady_while_caches_move(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	lmm_cpu_drain(&mm, host_cpu_id());
	const uint64_t base = mm_stats(&mm).available;
	atomic_store(&avail_stop, 0);
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, refill_and_drain, NULL) == 0, "pthread_create");
	uint64_t lo = base, hi = base, moves = 0;
	for (int i = 0; i < 200000; i++) {
		struct lmm_stats s = mm_stats(&mm);
		lo = s.available < lo ? s.available : lo;
		hi = s.available > hi ? s.available : hi;
		moves = s.cache_refills;
	}
	atomic_store(&avail_stop, 1);
	pthread_join(t, NULL);
	CHECK(moves > 0, "the other CPU never refilled its cache: the test proves nothing");
	CHECK(lo + 1 >= base && hi == base,
	      "available %" PRIu64 " when quiet, %" PRIu64 "..%" PRIu64 " while a cache was refilled and drained %" PRIu64
	      " times",
	      base, lo, hi, moves);
	CHECK(mm_stats(&mm).available == base && lmm_check(&mm) == 0, "not healthy afterwards");
}

/*
 * lmm_dump_holders while another CPU allocates and frees blocks of every small order
 * (with holder records): under ThreadSanitizer any unordered access is a reported race.
 */
static void *holders_churn(void *arg)
{
	(void)arg;
	unsigned n = 0;
	while (!atomic_load(&avail_stop)) {
		unsigned order = n++ % 4;
		void *p = lmm_alloc_pages(&mm, order, LMM_GFP_KERNEL);
		if (p)
			lmm_free_pages(&mm, p, order);
	}
	return NULL;
}

static void holders_dumped_while_others_allocate(void)
{
	ASSERT(setup_with(16 * MiB, POOL_TARGET, POOL_LOW, LMM_CFG_HOLDERS) == LMM_OK, "init failed");
	void *mine = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL); /* one site that is always there */
	ASSERT(mine, "alloc failed");
	atomic_store(&avail_stop, 0);
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, holders_churn, NULL) == 0, "pthread_create");
	unsigned least = ~0u;
	for (int i = 0; i < 200; i++) {
		unsigned found = lmm_dump_holders(&mm, 2);
		least = found < least ? found : least;
	}
	atomic_store(&avail_stop, 1);
	pthread_join(t, NULL);
	CHECK(least >= 1, "a dump found no call site although this one holds an order-2 block");
	lmm_free_pages(&mm, mine, 2);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* Blocks of order 2 and 3 only: an odd page is never the head of an allocated block. */
static void *big_churn(void *arg)
{
	(void)arg;
	host_set_cpu(1);
	unsigned n = 0;
	while (!atomic_load(&avail_stop)) {
		unsigned order = 2 + n++ % 2;
		void *p = lmm_alloc_pages(&mm, order, LMM_GFP_KERNEL);
		if (p)
			lmm_free_pages(&mm, p, order);
	}
	return NULL;
}

/*
 * Bad frees aimed at pages another CPU is splitting and merging: each is refused, and
 * its record tells what the verdict saw (a tail of an allocated block: NOT_HEAD, its
 * head ALLOCATED; anything free: ALREADY_FREE, its block FREE, CACHED or POOL; the
 * metadata: RESERVED), read in
 * the same lock hold.  Under ThreadSanitizer, a record read after the unlock races with
 * the other CPU's buddy work.
 */
static void bad_free_records_agree_while_others_merge(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	const unsigned me = host_cpu_id();
	host_set_cpu(0);
	atomic_store(&avail_stop, 0);
	pthread_t t;
	ASSERT(pthread_create(&t, NULL, big_churn, NULL) == 0, "pthread_create");
	const struct lmm_region *r = &mm.regions[0];
	uint64_t refused = 0, disagree = 0, accepted = 0;
	for (uint64_t i = 0; i < 20000; i++) {
		uint64_t page = (i * 2 * 37 + 1) % r->npages | 1; /* an odd page of the region */
		void *p = (char *)r->vbase + page * 4096;
		if (((r->base_pfn + page) & 1) == 0)
			continue;
		host_reports_clear();
		enum lmm_status st = lmm_free_pages(&mm, p, 0);
		const struct lmm_report *rep = host_report_last();
		if (st == LMM_OK) {
			accepted++;
			continue;
		}
		refused++;
		bool ok = rep && rep->reason == st &&
			  ((st == LMM_ERR_NOT_HEAD && rep->found_state == LMM_FRAME_ALLOCATED) ||
			   (st == LMM_ERR_RESERVED && rep->found_state == LMM_FRAME_RESERVED) ||
			   (st == LMM_ERR_ALREADY_FREE &&
			    (rep->found_state == LMM_FRAME_FREE || rep->found_state == LMM_FRAME_CACHED ||
			     rep->found_state == LMM_FRAME_POOL)));
		if (!ok && disagree++ < 3)
			fprintf(stderr, "free of page %" PRIu64 ": '%s', record %s, state %u order %u\n", page,
				lmm_status_str(st), rep ? lmm_status_str(rep->reason) : "none",
				rep ? rep->found_state : 0u, rep ? rep->found_order : 0u);
	}
	atomic_store(&avail_stop, 1);
	pthread_join(t, NULL);
	host_set_cpu(me);
	CHECK(accepted == 0 && disagree == 0 && refused > 0,
	      "%" PRIu64 " bad frees: %" PRIu64 " accepted, %" PRIu64 " records that disagree with the verdict",
	      refused + accepted, accepted, disagree);
	lmm_cpu_drain(&mm, 0);
	lmm_cpu_drain(&mm, 1);
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

/* A kalloc(), an order-0 and an order-2 request with other flags (three ways in), and an ATOMIC one. */
static void kernel_alloc_in_handler(void)
{
	irq_ptrs[0] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	irq_ptrs[3] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	irq_ptrs[1] = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	irq_ptrs[2] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
}

static void kernel_alloc_in_handler_refused(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	host_log_clear();
	host_reports_clear();
	ASSERT(interrupt(kernel_alloc_in_handler) == 1, "handler did not run");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(!irq_ptrs[0] && !irq_ptrs[3] && !irq_ptrs[1], "KERNEL allocation in the handler succeeded");
	CHECK(irq_ptrs[2], "ATOMIC allocation in the handler failed");
	CHECK(s1.refused[LMM_ERR_BAD_CONTEXT] == s0.refused[LMM_ERR_BAD_CONTEXT] + 3, "BAD_CONTEXT +%" PRIu64
	       ", want +3", s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT]);
	CHECK(s1.allocated == s0.allocated + 1 && s1.free == s0.free, "a refused allocation moved pages");
	const struct lmm_report *r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_BAD_CONTEXT && strcmp(r->op, "alloc") == 0 && r->context == LMM_CTX_INTERRUPT &&
		      r->order == 2 && r->gfp == (LMM_GFP_KERNEL | LMM_GFP_ZERO) && r->phys == LMM_PHYS_INVALID,
	      "refusal record: %s, order %u, context %d", r ? lmm_status_str(r->reason) : "missing", r ? r->order : 0,
	      r ? (int)r->context : -1);
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

/* ---- The reserve under the issue's scenario: exhaustion, every free with interrupts off ---- */

/*
 * A small teaching kernel (issue 10): a "user program" in normal context takes every page
 * it can and keeps taking as pages appear; a timer handler allocates one ATOMIC|EXCLUSIVE
 * page per tick and frees one; every free the main code makes runs with interrupts off.
 * Half the handler's pages are handed to the main code (lmm_page_transfer), which frees
 * them with interrupts off; the other half the handler frees itself.  All state below is
 * touched by the main code only with interrupts off, so the handler never sees it torn.
 */
#define EX_RING 4 /* pages the handler keeps at most */
#define EX_INBOX 4 /* pages handed to the main code, waiting for its free */

static volatile sig_atomic_t ex_stop;
static void *volatile ex_ring[EX_RING];
static volatile unsigned ex_ring_n, ex_ring_head;
static void *volatile ex_inbox[EX_INBOX];
static volatile unsigned ex_inbox_n;
static volatile uint16_t ex_main_owner;
/* The handler's own ledger: reserve frames it or the main code's inbox holds right now. */
static volatile uint32_t ex_reserve_held;
static volatile uint64_t ex_ticks, ex_allocs, ex_null, ex_null_unjustified, ex_nonreserve, ex_errors;
static volatile uint64_t ex_null_pool_seen; /* the reserve's level seen at an unjustified NULL */

static void ex_irq(void)
{
	if (ex_stop)
		return;
	ex_ticks++;
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	if (p) {
		ex_allocs++;
		if (is_reserve_frame(p))
			ex_reserve_held++;
		else
			ex_nonreserve++;
		if (ex_ring_n == EX_RING) { /* cannot happen: one free per tick below */
			ex_errors++;
			labyrinth_free_page_atomic_exclusive(p);
		} else {
			ex_ring[(ex_ring_head + ex_ring_n++) % EX_RING] = p;
		}
	} else {
		/* NULL is justified only when every reserve frame is out: held by us. */
		ex_null++;
		struct lmm_stats s;
		lmm_get_stats(&mm, &s); /* any context */
		if (s.pool != 0 || ex_reserve_held < s.pool_target) {
			ex_null_unjustified++;
			ex_null_pool_seen = s.pool;
		}
	}
	/* One free per tick, the oldest page, once two are kept. */
	if (ex_ring_n > 2 || (!p && ex_ring_n)) {
		void *q = ex_ring[ex_ring_head];
		ex_ring_head = (ex_ring_head + 1) % EX_RING;
		ex_ring_n--;
		if ((ex_ticks & 1) && ex_inbox_n < EX_INBOX) {
			if (lmm_page_transfer(&mm, q, lmm_port_owner(), ex_main_owner) != LMM_OK)
				ex_errors++;
			ex_inbox[ex_inbox_n++] = q; /* still counted in ex_reserve_held until freed */
		} else {
			bool rsv = is_reserve_frame(q);
			if (labyrinth_free_page_atomic_exclusive(q) != LMM_OK)
				ex_errors++;
			else if (rsv)
				ex_reserve_held--;
		}
	}
}

/* Start a POSIX timer delivering IRQ_SIGNO to this thread every @period_ns. */
static bool timer_start(timer_t *t, long period_ns)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = IRQ_SIGNO;
	sev.sigev_notify_thread_id = gettid();
	if (timer_create(CLOCK_MONOTONIC, &sev, t) != 0)
		return false;
	struct timespec period = { period_ns / 1000000000, period_ns % 1000000000 };
	struct itimerspec its = { period, period };
	return timer_settime(*t, 0, &its, NULL) == 0;
}

static void reserve_kept_under_exhaustion_with_irqs_off_frees(void)
{
	ASSERT(setup_with(4 * MiB, POOL_TARGET, POOL_LOW, 0) == LMM_OK, "init failed");
	static void *reserve0[RESERVE_MAX], *reserve1[RESERVE_MAX];
	size_t nres0 = pool_snapshot(reserve0, RESERVE_MAX);
	ASSERT(nres0 == POOL_TARGET, "fixture: reserve %zu pages", nres0);
	struct lmm_stats s0 = mm_stats(&mm);
	size_t cap = (size_t)s0.managed, nmine = 0;
	void **mine = calloc(cap, sizeof(*mine));
	uint64_t rng = 0x5eed1234abcdull, kernel_nulls = 0, kernel_got_reserve = 0, frees = 0, bad_frees = 0;

	ex_stop = 0;
	ex_ring_n = ex_ring_head = ex_inbox_n = 0;
	ex_reserve_held = 0;
	ex_ticks = ex_allocs = ex_null = ex_null_unjustified = ex_nonreserve = ex_errors = ex_null_pool_seen = 0;
	ex_main_owner = lmm_port_owner();
	irq_work = ex_irq;
	timer_t timer;
	bool timer_ok = timer_start(&timer, 250000); /* 4 kHz */
	CHECK(timer_ok, "timer: %s", strerror(errno));
	double t0 = now_s();
	while (timer_ok && now_s() - t0 < 2.0) {
		/* The user program: take every page there is, and whatever appears. */
		void *p;
		while (nmine < cap && (p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL) {
			if (is_reserve_frame(p))
				kernel_got_reserve++;
			mine[nmine++] = p;
		}
		kernel_nulls++;
		/* Every free with interrupts off: the handler's hand-offs, and a few of its own. */
		lmm_irqflags_t fl = host_irq_save();
		while (ex_inbox_n) {
			void *q = ex_inbox[--ex_inbox_n];
			bool rsv = is_reserve_frame(q);
			if (lmm_free_pages(&mm, q, 0) != LMM_OK)
				bad_frees++;
			else if (rsv)
				ex_reserve_held--;
			frees++;
		}
		for (int j = 0; j < 8 && nmine; j++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			size_t i = (size_t)(rng % nmine);
			if (lmm_free_pages(&mm, mine[i], 0) != LMM_OK)
				bad_frees++;
			mine[i] = mine[--nmine];
			frees++;
		}
		host_irq_restore(fl);
	}
	if (timer_ok)
		timer_delete(timer);

	/* Stop the handler, take back what it holds (still with interrupts off). */
	lmm_irqflags_t fl = host_irq_save();
	ex_stop = 1;
	uint16_t hown = (uint16_t)(HANDLER_BIT | lmm_port_owner());
	while (ex_ring_n) {
		if (lmm_free_pages_owned(&mm, ex_ring[ex_ring_head], 0, hown) != LMM_OK)
			bad_frees++;
		ex_ring_head = (ex_ring_head + 1) % EX_RING;
		ex_ring_n--;
	}
	while (ex_inbox_n)
		if (lmm_free_pages(&mm, ex_inbox[--ex_inbox_n], 0) != LMM_OK)
			bad_frees++;
	host_irq_restore(fl);
	irq_work = NULL;

	struct lmm_stats s1 = mm_stats(&mm);
	size_t nres1 = pool_snapshot(reserve1, RESERVE_MAX);
	size_t kernel_in_reserve = 0;
	for (size_t i = 0; i < nmine; i++)
		kernel_in_reserve += in_set(reserve1, nres1, mine[i]);
	fprintf(stderr,
		"exhaustion with irqs-off frees: %.2f s, %" PRIu64 " ticks, handler pages %" PRIu64 " (NULL %" PRIu64
		", not from the reserve %" PRIu64 "), main frees %" PRIu64 ", KERNEL ran dry %" PRIu64
		" times, holds %zu pages; reserve %" PRIu64 "/%u, low water %u\n",
		now_s() - t0, ex_ticks, ex_allocs, ex_null, ex_nonreserve, frees, kernel_nulls, nmine, s1.pool,
		s1.pool_target, s1.pool_low_water);
	CHECK(ex_ticks >= 100 && ex_allocs > 0, "the handler ran %" PRIu64 " times", ex_ticks);
	CHECK(kernel_nulls > 100, "the user program ran dry only %" PRIu64 " times", kernel_nulls);
	CHECK(ex_null_unjustified == 0, "the handler got NULL %" PRIu64 " times with reserve pages left (level %" PRIu64
	      " at one of them, the handler held %u)", ex_null_unjustified, ex_null_pool_seen, ex_reserve_held);
	CHECK(ex_errors == 0 && bad_frees == 0, "%" PRIu64 " handler errors, %" PRIu64 " refused frees", ex_errors,
	      bad_frees);
	CHECK(s1.reserve_to[LMM_CLASS_KERNEL] == 0 && kernel_got_reserve == 0,
	      "KERNEL received reserve pages: reserve_to[KERNEL] %" PRIu64 ", %" PRIu64 " seen by the program",
	      s1.reserve_to[LMM_CLASS_KERNEL], kernel_got_reserve);
	CHECK(kernel_in_reserve == 0, "%zu of the program's pages are in the reserve", kernel_in_reserve);
	CHECK(s1.pool == s1.pool_target, "the reserve ended at %" PRIu64 " pages, its target is %u", s1.pool,
	      s1.pool_target);
	CHECK(same_set(reserve1, nres1, reserve0, nres0), "the reserve is not the frames it started with");

	for (size_t i = 0; i < nmine; i++)
		lmm_free_pages(&mm, mine[i], 0);
	free(mine);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* ---- A reserve that stays compact ------------------------------------------------------------ */

#define COMPACT_HELD 6

struct churn {
	uint64_t rng, iters, pairs, errors;
	uint16_t owner;
	unsigned cpu;
};

static __thread struct churn *volatile churn_self;

/* A handler pair on the interrupted CPU: one or two ATOMIC|EXCLUSIVE pages, freed at once. */
static void churn_irq(void)
{
	struct churn *c = churn_self;
	if (!c)
		return;
	void *a = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	void *b = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	if (!a || !b)
		c->errors++;
	if (labyrinth_free_page_atomic_exclusive(b) != LMM_OK || labyrinth_free_page_atomic_exclusive(a) != LMM_OK)
		c->errors++;
}

static uint64_t churn_rnd(struct churn *c)
{
	c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
	return c->rng;
}

/*
 * ATOMIC pairs whose two halves run in different contexts (normal, interrupts off, a
 * handler), with KERNEL blocks of order 0..3 churning the buddy lists around them.
 */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	c->owner = lmm_port_owner();
	churn_self = c;
	void *held[COMPACT_HELD];
	void *blocks[8];
	unsigned orders[8];
	unsigned nheld = 0, nblocks = 0;
	for (uint64_t it = 0; it < c->iters; it++) {
		uint64_t r = churn_rnd(c);
		bool off = r & 1;
		lmm_irqflags_t fl = off ? host_irq_save() : 0;
		if (nheld < COMPACT_HELD && (r & 2)) {
			void *p = lmm_alloc_pages_owned(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, c->owner);
			if (p)
				held[nheld++] = p;
			else
				c->errors++;
		} else if (nheld) {
			if (lmm_free_pages_owned(&mm, held[--nheld], 0, c->owner) != LMM_OK)
				c->errors++;
			c->pairs++;
		}
		if (off)
			host_irq_restore(fl);
		if ((r >> 8) % 8 == 0)
			raise(IRQ_SIGNO);
		if ((r >> 12) % 4 == 0) {
			if (nblocks < 8 && (r & 0x10000)) {
				unsigned o = (unsigned)((r >> 20) % 4);
				void *b = lmm_alloc_pages(&mm, o, LMM_GFP_KERNEL);
				if (b) {
					blocks[nblocks] = b;
					orders[nblocks++] = o;
				}
			} else if (nblocks) {
				nblocks--;
				if (lmm_free_pages(&mm, blocks[nblocks], orders[nblocks]) != LMM_OK)
					c->errors++;
			}
		}
	}
	while (nheld)
		if (lmm_free_pages_owned(&mm, held[--nheld], 0, c->owner) != LMM_OK)
			c->errors++;
	while (nblocks) {
		nblocks--;
		if (lmm_free_pages(&mm, blocks[nblocks], orders[nblocks]) != LMM_OK)
			c->errors++;
	}
	c->cpu = host_cpu_id();
	churn_self = NULL;
	return NULL;
}

static void reserve_stays_compact(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	static void *reserve0[RESERVE_MAX], *reserve1[RESERVE_MAX];
	size_t nres0 = pool_snapshot(reserve0, RESERVE_MAX);
	struct lmm_stats s0 = mm_stats(&mm);
	uint64_t big0 = free_pages_in_blocks(&s0, 9);
	ASSERT(nres0 == POOL_TARGET && big0 > 0, "fixture: reserve %zu, order>=9 %" PRIu64, nres0, big0);

	enum { NT = 2 };
	struct churn c[NT + 1];
	pthread_t t[NT];
	irq_work = churn_irq;
	for (int i = 0; i <= NT; i++)
		c[i] = (struct churn){ .rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), .iters = SAN_TSAN ? 20000 : 100000 };
	for (int i = 0; i < NT; i++)
		ASSERT(pthread_create(&t[i], NULL, churn_thread, &c[i]) == 0, "pthread_create");
	churn_thread(&c[NT]); /* this thread is a third CPU */
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	irq_work = NULL;

	uint64_t errors = 0, pairs = 0;
	for (int i = 0; i <= NT; i++)
		errors += c[i].errors, pairs += c[i].pairs;
	drain_all_cpus();
	struct lmm_stats s1 = mm_stats(&mm);
	size_t nres1 = pool_snapshot(reserve1, RESERVE_MAX);
	uint64_t big1 = free_pages_in_blocks(&s1, 9);
	fprintf(stderr, "compact reserve: %" PRIu64 " pairs on %d CPUs (+ handlers), reserve %zu -> %zu frames, "
		"free in order>=9 blocks %" PRIu64 " -> %" PRIu64 " pages\n", pairs, NT + 1, nres0, nres1, big0, big1);
	CHECK(errors == 0, "%" PRIu64 " failed or refused calls", errors);
	uint64_t flagged = 0;
	for (uint64_t i = 0; i < mm.nframes; i++)
		flagged += (mm.frames[i].flags & LMM_FRAME_F_RESERVE) != 0;
	CHECK(same_set(reserve1, nres1, reserve0, nres0), "the reserve drifted: %zu frames, not the %zu it started with "
	      "(pool %" PRIu64 ", out %" PRIu64 ", %" PRIu64 " frames flagged)", nres1, nres0, s1.pool, s1.reserve_held,
	      flagged);
	CHECK(big1 * 100 >= big0 * 95 && big1 * 100 <= big0 * 105, "order>=9 free memory %" PRIu64 " pages, was %"
	      PRIu64 " (more than 5%% off)", big1, big0);
	CHECK(s1.allocated == 0 && s1.available == s0.available, "allocated %" PRIu64 ", available %" PRIu64 " (was %"
	      PRIu64 ")", s1.allocated, s1.available, s0.available);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* ---- The per-CPU layer ------------------------------------------------------------------------ */

static void handler_pairs(void)
{
	irq_u32 = 0;
	for (int i = 0; i < 100; i++) {
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		if (!p || labyrinth_free_page_atomic_exclusive(p) != LMM_OK)
			irq_u32++;
	}
}

/* A warm pair - this CPU's slice (ATOMIC) or cache (KERNEL) has a page - takes no lock. */
static void atomic_pair_takes_no_lock(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive(); /* warms the slice */
	ASSERT(p && labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "warm-up pair failed");
	struct lmm_cpu_stats c0;
	lmm_get_cpu_stats(&mm, host_cpu_id(), &c0);
	ASSERT(c0.pool_pages > 0, "fixture: the slice is empty after a pair");
	struct lmm_stats s0 = mm_stats(&mm);

	uint64_t l0 = host_lock_acquisitions(), bad = 0;
	for (int i = 0; i < 1000; i++) {
		p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		if (!p || labyrinth_free_page_atomic_exclusive(p) != LMM_OK)
			bad++;
	}
	uint64_t normal = host_lock_acquisitions() - l0;
	lmm_irqflags_t fl = host_irq_save();
	l0 = host_lock_acquisitions();
	for (int i = 0; i < 100; i++) {
		p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		if (!p || labyrinth_free_page_atomic_exclusive(p) != LMM_OK)
			bad++;
	}
	uint64_t irqs_off = host_lock_acquisitions() - l0;
	host_irq_restore(fl);
	l0 = host_lock_acquisitions();
	ASSERT(interrupt(handler_pairs) == 1, "handler did not run");
	uint64_t handler = host_lock_acquisitions() - l0;
	CHECK(bad == 0 && irq_u32 == 0, "%" PRIu64 " pairs failed (%u in the handler)", bad, irq_u32);
	CHECK(normal == 0 && irqs_off == 0 && handler == 0, "warm ATOMIC|EXCLUSIVE pairs took the lock: %" PRIu64
	      " times in 1000 (normal), %" PRIu64 " in 100 (irqs off), %" PRIu64 " in 100 (handler)", normal, irqs_off,
	      handler);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.pool_hits == s0.pool_hits + 1200 && s1.reserve_to[LMM_CLASS_ATOMIC] == s0.reserve_to[LMM_CLASS_ATOMIC] + 1200,
	      "the pairs were not served by the reserve: hits +%" PRIu64, s1.pool_hits - s0.pool_hits);

	/* The same for an order-0 KERNEL pair once the cache has been refilled. */
	p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(p && lmm_free_pages(&mm, p, 0) == LMM_OK, "warm-up pair failed");
	l0 = host_lock_acquisitions();
	for (int i = 0; i < 1000; i++) {
		p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
		if (!p || lmm_free_pages(&mm, p, 0) != LMM_OK)
			bad++;
	}
	uint64_t kernel = host_lock_acquisitions() - l0;
	CHECK(bad == 0 && kernel == 0, "warm KERNEL order-0 pairs took the lock %" PRIu64 " times in 1000 (%" PRIu64
	      " failed)", kernel, bad);
	CHECK(mm_stats(&mm).allocated == 0 && lmm_check(&mm) == 0, "not healthy afterwards");
}

/* Fill the calling CPU's cache and slice: a KERNEL pair and an ATOMIC pair. */
static void fill_this_cpu(void)
{
	void *k = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
	lmm_free_pages(&mm, k, 0);
	lmm_free_pages(&mm, a, 0);
}

static void cpu_drain_returns_cache_and_slice(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	unsigned me = host_cpu_id(), parked = (me + 5) % LMM_PORT_MAX_CPUS;
	fill_this_cpu();
	host_set_cpu(parked); /* pretend to run on another CPU, then leave it parked */
	fill_this_cpu();
	host_set_cpu(me);
	struct lmm_cpu_stats c_me, c_parked;
	lmm_get_cpu_stats(&mm, me, &c_me);
	lmm_get_cpu_stats(&mm, parked, &c_parked);
	ASSERT(c_me.cache_pages > 0 && c_me.pool_pages > 0 && c_parked.cache_pages > 0 && c_parked.pool_pages > 0,
	       "fixture: cpu %u cache %u slice %u, cpu %u cache %u slice %u", me, c_me.cache_pages, c_me.pool_pages,
	       parked, c_parked.cache_pages, c_parked.pool_pages);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.cached == (uint64_t)c_me.cache_pages + c_parked.cache_pages && s1.pool == s0.pool &&
		      s1.available == s0.available && s1.free < s0.free,
	      "before the drains: cached %" PRIu64 ", pool %" PRIu64 ", available %" PRIu64, s1.cached, s1.pool,
	      s1.available);

	lmm_cpu_drain(&mm, me);
	lmm_get_cpu_stats(&mm, me, &c_me);
	struct lmm_stats s2 = mm_stats(&mm);
	CHECK(c_me.cache_pages == 0 && c_me.pool_pages == 0, "after draining this CPU: cache %u slice %u",
	      c_me.cache_pages, c_me.pool_pages);
	CHECK(s2.cached == c_parked.cache_pages && s2.pool == s0.pool, "this CPU's drain: cached %" PRIu64 ", pool %"
	      PRIu64, s2.cached, s2.pool);
	CHECK(lmm_check(&mm) == 0, "check failed after draining this CPU");

	lmm_cpu_drain(&mm, parked);
	lmm_get_cpu_stats(&mm, parked, &c_parked);
	struct lmm_stats s3 = mm_stats(&mm);
	CHECK(c_parked.cache_pages == 0 && c_parked.pool_pages == 0, "after draining the parked CPU: cache %u slice %u",
	      c_parked.cache_pages, c_parked.pool_pages);
	CHECK(s3.cached == 0 && s3.pool == s0.pool && s3.free == s0.free && s3.allocated == 0 &&
		      memcmp(s3.free_blocks, s0.free_blocks, sizeof(s0.free_blocks)) == 0,
	      "after both drains: cached %" PRIu64 ", pool %" PRIu64 ", free %" PRIu64 " (was %" PRIu64 ")", s3.cached,
	      s3.pool, s3.free, s0.free);
	/* Every slice is empty: the reserve is all in the shared pool. */
	CHECK(mm.npool == s0.pool, "shared pool %u, reserve %" PRIu64, mm.npool, s0.pool);
	CHECK(mm_conserved(&mm) && lmm_check(&mm) == 0, "check failed after both drains");
	/* An index past the last slot: refused, named in the record, nothing moved. */
	host_reports_clear();
	struct lmm_stats s4 = mm_stats(&mm);
	enum lmm_status st = lmm_cpu_drain(&mm, LMM_PORT_MAX_CPUS + 3);
	const struct lmm_report *r = host_report_last();
	struct lmm_stats s5 = mm_stats(&mm);
	CHECK(st == LMM_ERR_BAD_CPU && r && r->reason == LMM_ERR_BAD_CPU && r->cpu_named == LMM_PORT_MAX_CPUS + 3 &&
		      strcmp(r->op, "cpu drain") == 0,
	      "out-of-range drain: status %d, report %s", st, r ? lmm_status_str(r->reason) : "none");
	CHECK(s5.refused[LMM_ERR_BAD_CPU] == s4.refused[LMM_ERR_BAD_CPU] + 1 && s5.free == s4.free &&
		      s5.pool == s4.pool && s5.cached == s4.cached,
	      "out-of-range drain: refused %" PRIu64 " -> %" PRIu64 ", free %" PRIu64 " -> %" PRIu64,
	      s4.refused[LMM_ERR_BAD_CPU], s5.refused[LMM_ERR_BAD_CPU], s4.free, s5.free);
	CHECK(lmm_check(&mm) == 0, "an out-of-range drain did something");
}

/* Two threads, two CPUs, order-0 pairs at once; checked once both have stopped. */
struct pairs_thread {
	pthread_barrier_t *start;
	uint64_t iters, bad;
	unsigned cpu;
};

static void *pairs_thread(void *arg)
{
	struct pairs_thread *t = arg;
	void *held[32];
	unsigned n = 0;
	uint64_t sig = (uint64_t)(uintptr_t)t;
	t->cpu = host_cpu_id();
	pthread_barrier_wait(t->start);
	for (uint64_t i = 0; i < t->iters; i++) {
		/* Hold up to 32 pages so the cache refills and drains in batches under the lock. */
		if (n < 32 && (i % 97) < 60) {
			void *p = lmm_alloc_pages(&mm, 0, (i & 7) ? LMM_GFP_KERNEL : LMM_GFP_ATOMIC);
			if (!p) {
				t->bad++;
				continue;
			}
			*(volatile uint64_t *)p = sig ^ i;
			held[n++] = p;
			((volatile uint64_t *)p)[1] = sig ^ i;
		} else if (n) {
			void *p = held[--n];
			if (((volatile uint64_t *)p)[0] != ((volatile uint64_t *)p)[1])
				t->bad++;
			if (lmm_free_pages(&mm, p, 0) != LMM_OK)
				t->bad++;
		}
	}
	while (n)
		if (lmm_free_pages(&mm, held[--n], 0) != LMM_OK)
			t->bad++;
	return NULL;
}

static void two_cpus_order0_pairs(void)
{
	ASSERT(setup() == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, 2);
	struct pairs_thread t[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		t[i] = (struct pairs_thread){ &start, SAN_TSAN ? 100000 : 500000, 0, 0 };
		ASSERT(pthread_create(&th[i], NULL, pairs_thread, &t[i]) == 0, "pthread_create");
	}
	double t0 = now_s();
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	double secs = now_s() - t0;
	pthread_barrier_destroy(&start);
	fprintf(stderr, "two CPUs (%u, %u): %" PRIu64 " order-0 calls each in %.2f s\n", t[0].cpu, t[1].cpu, t[0].iters,
		secs);
	CHECK(t[0].cpu != t[1].cpu, "both threads ran as CPU %u", t[0].cpu);
	CHECK(t[0].bad == 0 && t[1].bad == 0, "%" PRIu64 " + %" PRIu64 " failed calls or damaged pages", t[0].bad,
	      t[1].bad);
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.allocated == 0 && s1.available == s0.available && mm_conserved(&mm),
	      "after join: allocated %" PRIu64 ", available %" PRIu64 " (was %" PRIu64 ")", s1.allocated, s1.available,
	      s0.available);
	CHECK(lmm_check(&mm) == 0, "check failed with the caches full");
	drain_all_cpus();
	s1 = mm_stats(&mm);
	CHECK(s1.cached == 0 && s1.free + s1.pool == s0.free + s0.pool, "after draining: cached %" PRIu64, s1.cached);
	CHECK(lmm_check(&mm) == 0, "check failed after draining");
}

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
		/* Statistics while the others run: any context, each figure a snapshot.  The
		 * exact checks (conservation, lmm_check) run at the checkpoints. */
		struct lmm_stats s = mm_stats(&mm);
		struct lmm_cpu_stats c;
		lmm_get_cpu_stats(&mm, host_cpu_id(), &c);
		if (s.allocated > s.managed || s.available > s.managed)
			note(w, "stats: allocated %" PRIu64 ", available %" PRIu64 " of %" PRIu64 " managed", s.allocated,
			     s.available, s.managed);
		if (c.cache_pages > s.cache_high || c.pool_pages > s.pool_slice)
			note(w, "this CPU's cache %u / slice %u above their bounds", c.cache_pages, c.pool_pages);
	}
}

/*
 * A stop-the-world checkpoint.  Per-CPU counters summed while other CPUs run cannot
 * add up exactly, so conservation and lmm_check() run only here: every worker parks on
 * the barrier with interrupts off (its timer's signals are held pending, so no handler
 * runs on a parked CPU), and worker 0 checks.  Conservation is read with interrupts off
 * too, so worker 0's own handler cannot land between the locked and the per-CPU part of
 * lmm_get_stats(); lmm_check() (normal only) holds the lock, with interrupts off, for
 * its whole walk.
 */
#define CHECKPOINTS 8

static void checkpoint(struct worker *w)
{
	lmm_irqflags_t fl = host_irq_save();
	pthread_barrier_wait(&stress_barrier); /* every CPU parked */
	if (w->id == 0) {
		w->checks++;
		struct lmm_stats s = mm_stats(&mm);
		if (s.free + s.allocated + s.pool + s.cached + s.reserved != s.managed)
			note(w, "conservation broken at checkpoint %" PRIu64 ": free %" PRIu64 " + allocated %" PRIu64
			     " + pool %" PRIu64 " + cached %" PRIu64 " + reserved %" PRIu64 " != managed %" PRIu64, w->checks,
			     s.free, s.allocated, s.pool, s.cached, s.reserved, s.managed);
		host_irq_restore(fl);
		if (lmm_check(&mm) != 0)
			note(w, "lmm_check failed at checkpoint %" PRIu64, w->checks);
		fl = host_irq_save();
	}
	pthread_barrier_wait(&stress_barrier); /* checked: go on */
	host_irq_restore(fl);
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
		for (int cp = 0; cp < CHECKPOINTS; cp++)
			checkpoint(w);
		pthread_barrier_wait(&stress_barrier);
		return NULL;
	}
	pthread_barrier_wait(&stress_barrier); /* every owner is known */
	struct timespec period = { irq_period_ns / 1000000000, irq_period_ns % 1000000000 };
	struct itimerspec its = { period, period };
	if (timer_settime(timer, 0, &its, NULL) != 0)
		note(w, "timer_settime: %s", strerror(errno));

	/* Every worker runs the same number of phases (a phase cut short by the deadline
	 * still ends at its checkpoint), so the barriers always meet. */
	uint64_t done = 0;
	for (int cp = 0; cp < CHECKPOINTS; cp++) {
		uint64_t until = w->ops * (uint64_t)(cp + 1) / CHECKPOINTS;
		while (done < until) {
			one_op(w);
			if ((++done & 31) == 0 && now_s() > stress_deadline)
				break;
		}
		checkpoint(w);
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

	/* Every thread has exited: their CPU slots' caches and slices go back to the core. */
	drain_all_cpus();
	struct lmm_stats s_end = mm_stats(&mm);
	uint32_t refilled = lmm_pool_refill(&mm);
	struct lmm_stats s1 = mm_stats(&mm);
	fprintf(stderr,
		"stress (%s): %d threads, %" PRIu64 " operations%s, seed 0x%" PRIx64 ", %.2f s (last thread done "
		"at %.2f s); interrupts %" PRIu64
		" (%" PRIu64 " inside the allocator, %" PRIu64 " deferred), handler pages %" PRIu64 " (NULL %" PRIu64
		"); KERNEL %" PRIu64 " (NULL %" PRIu64 "), ATOMIC|EXCL %" PRIu64 " (NULL %" PRIu64 "), transfers %"
		PRIu64 ", pool hits %" PRIu64 ", empty-pool failures %" PRIu64 ", refills %" PRIu64 ", checkpoints %" PRIu64
		", reserve at the end %" PRIu64 "/%u (final refill added %u)\n", SAN_TSAN ? "TSan" : "non-TSan build", nworkers, sum.ops,
		sum.ops < ops * (uint64_t)nworkers ? " (cut short by STRESS_SECONDS)" : "", seed, secs,
		last_loop_end - t0, sum.irq_runs, sum.irq_in_mm,
		deferred, sum.irq_allocs, sum.irq_null, sum.kernel_allocs, sum.kernel_null, sum.atomic_allocs,
		sum.atomic_null, sum.transfers, s1.pool_hits - s0.pool_hits,
		s1.pool_empty_failures - s0.pool_empty_failures, s1.pool_refills - s0.pool_refills, sum.checks,
		s_end.pool, s_end.pool_target, refilled);

	CHECK(sum.mismatches == 0 && sum.irq_mismatches == 0, "%" PRIu64 " signature mismatches (%" PRIu64
	       " in handlers)", sum.mismatches + sum.irq_mismatches, sum.irq_mismatches);
	CHECK(sum.irq_errors == 0, "%" PRIu64 " handler frees refused or pages with the wrong owner", sum.irq_errors);
	CHECK(sum.irq_bad_ctx == 0, "%" PRIu64 " of %" PRIu64 " handler runs were not in interrupt context "
	       "(port_host.c run_handler)", sum.irq_bad_ctx, sum.irq_runs);
	CHECK(sum.irq_runs > 0 && sum.irq_in_mm > 0, "interrupts: %" PRIu64 ", inside the allocator %" PRIu64,
	       sum.irq_runs, sum.irq_in_mm);
	CHECK(deferred > 0, "no interrupt was ever held pending by the allocator's lock");
	CHECK(sum.irq_allocs > 0 && s1.pool_hits > s0.pool_hits, "handlers never allocated from the pool");

	CHECK(sum.checks == CHECKPOINTS, "%" PRIu64 " checkpoints ran, want %d", sum.checks, CHECKPOINTS);
	CHECK(s1.allocated == 0 && s1.reserve_held == 0, "%" PRIu64 " pages still allocated (%" PRIu64 " reserve)",
	      s1.allocated, s1.reserve_held);
	CHECK(s_end.cached == 0 && s1.free + s1.pool == s0.free + s0.pool && s1.available == s0.available,
	      "after draining every CPU: cached %" PRIu64 ", free+pool %" PRIu64 ", was %" PRIu64, s_end.cached,
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
	RUN_CASE(atomic_free_never_drains_a_cache_batch);
	RUN_CASE(pool_all_empty_atomic_fails_at_once);
	RUN_CASE(pool_empty_failures_count_only_an_empty_pool);
	RUN_CASE(stats_count_every_call);
	RUN_CASE(pool_refill_refused_only_in_handler);
	RUN_CASE(observers_refused_only_in_handler);
	RUN_CASE(pool_marks_configurable);
	RUN_CASE(pool_marks_out_of_range_refused);
	RUN_CASE(pool_shrink_reaches_every_slice);
	RUN_CASE(pool_topped_up_by_every_slow_path);
	RUN_CASE(topup_leaves_the_request_its_page);
	RUN_CASE(surplus_reserve_page_skips_the_cache);
	RUN_CASE(exclusive_page_owned_by_caller);
	RUN_CASE(exclusive_second_reference_refused);
	RUN_CASE(exclusive_free_by_other_owner_refused);
	RUN_CASE(exclusive_free_of_ordinary_page_refused);
	RUN_CASE(exclusive_double_free_refused);
	RUN_CASE(exclusive_transfer_handler_to_thread);
	RUN_CASE(exclusive_transfer_by_non_owner_refused);
	RUN_CASE(exclusive_unexclusive_then_shared);
	RUN_CASE(shared_page_last_put_hands_over_its_writes);
	RUN_CASE(racing_double_free_refused_with_the_cache_off);
	RUN_CASE(available_steady_while_caches_move);
	RUN_CASE(holders_dumped_while_others_allocate);
	RUN_CASE(bad_free_records_agree_while_others_merge);
	RUN_CASE(kernel_alloc_in_handler_refused);
	RUN_CASE(lock_retaken_by_holder_is_fatal);
	RUN_CASE(lock_holder_is_the_cpu_not_the_owner_tag);
#if !SAN_TSAN && defined(__x86_64__)
	RUN_CASE(port_interrupt_during_deferred_delivery); /* TSan delays signals: x86 ASan build only */
#endif
	RUN_CASE(atomic_pair_takes_no_lock);
	RUN_CASE(cpu_drain_returns_cache_and_slice);
	RUN_CASE(two_cpus_order0_pairs);
	RUN_CASE(reserve_stays_compact);
	RUN_CASE(reserve_kept_under_exhaustion_with_irqs_off_frees);
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

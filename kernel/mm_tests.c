/*
 * mm_tests.c - in-kernel tests of mm/ on the real machine, reported in KTAP.
 *
 * Two kinds: tests of the live kernel allocator (its state after boot, allocating every
 * page of RAM), and tests that need to run memory out or break rules, which get a
 * private allocator over a 4 MiB block borrowed from the live one, so an out-of-memory
 * test never starves the kernel (the idea of Zircon's ManagedPmmNode).
 */
#include <labyrinth/arch.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/ktest.h>
#include <labyrinth/spinlock.h>

#include "tests.h"

#define PAGE 4096ul
#define GOLDEN 0x9E3779B97F4A7C15ull

static struct lmm_stats stats_of(struct lmm *mm)
{
	struct lmm_stats s;
	lmm_get_stats(mm, &s);
	return s;
}

static bool conserved(const struct lmm_stats *s)
{
	return s->free + s->allocated + s->pool + s->cached + s->reserved == s->managed;
}

/* ---- The live allocator --------------------------------------------------------------- */

static void boot_state(struct ktest_ctx *t)
{
	struct lmm_stats s = stats_of(&kernel_mm);
	KT_EXPECT(lmm_check(&kernel_mm) == 0, "lmm_check found problems after boot");
	KT_EXPECT(conserved(&s), "free %lu + allocated %lu + pool %lu + cached %lu + reserved %lu != managed %lu",
		  s.free, s.allocated, s.pool, s.cached, s.reserved, s.managed);
	KT_EXPECT(s.free > 0 && s.pool == s.pool_target, "free %lu, pool %lu of %u", s.free, s.pool,
		  s.pool_target);
	KT_EXPECT(sizeof(struct lmm_frame) == 16, "frame record is %lu bytes",
		  (unsigned long)sizeof(struct lmm_frame));
}

static void page_pattern(uint64_t *w, uint64_t phys)
{
	for (unsigned i = 1; i < PAGE / 8; i++)
		w[i] = phys ^ (i * GOLDEN);
}

static bool page_pattern_ok(const uint64_t *w, uint64_t phys)
{
	for (unsigned i = 1; i < PAGE / 8; i++)
		if (w[i] != (phys ^ (i * GOLDEN)))
			return false;
	return true;
}

/*
 * Allocate every page of RAM one by one (the buddy lists with KERNEL, then the pool
 * with ATOMIC), write into each a pattern made of its own address, verify them all,
 * free them all, and require every counter to come back exactly.  The pages are
 * chained through their first word, so the test needs no memory of its own.
 */
static void alloc_every_page(struct ktest_ctx *t)
{
	lmm_cpu_drain(&kernel_mm, arch_cpu_id()); /* so "before" and "after" compare lists */
	struct lmm_stats before = stats_of(&kernel_mm);
	uint64_t head = LMM_PHYS_INVALID, n = 0, reserved_hits = 0, tsc0 = arch_read_tsc();

	for (int pass = 0; pass < 2; pass++) {
		lmm_gfp_t gfp = pass == 0 ? LMM_GFP_KERNEL : LMM_GFP_ATOMIC;
		uint64_t *w;
		while ((w = lmm_alloc_pages(&kernel_mm, 0, gfp))) {
			uint64_t phys = lmm_virt_to_phys(&kernel_mm, w);
			if (kernel_mm_is_reserved(phys, PAGE))
				reserved_hits++;
			w[0] = head;
			page_pattern(w, phys);
			head = phys;
			n++;
		}
	}
	struct lmm_stats full = stats_of(&kernel_mm);
	kprintf("# allocated %lu pages (%lu MiB) in %lu Mcycles\n", n, n >> 8,
		(arch_read_tsc() - tsc0) >> 20);
	KT_EXPECT(n == before.available, "got %lu pages, %lu were available", n, before.available);
	KT_EXPECT(full.available == 0, "free %lu pool %lu cached %lu left at exhaustion", full.free, full.pool,
		  full.cached);
	KT_EXPECT(full.reserve_to[LMM_CLASS_KERNEL] == 0, "KERNEL took %lu reserve pages",
		  full.reserve_to[LMM_CLASS_KERNEL]);
	KT_EXPECT(reserved_hits == 0, "%lu reserved pages handed out", reserved_hits);
	KT_EXPECT(lmm_check(&kernel_mm) == 0, "lmm_check failed at exhaustion");

	uint64_t bad = 0, freed = 0;
	while (head != LMM_PHYS_INVALID) {
		uint64_t *w = lmm_phys_to_virt(&kernel_mm, head);
		uint64_t next = w[0];
		if (!page_pattern_ok(w, head) && bad++ < 4)
			ktest_fail(t, "page 0x%lx lost its pattern (handed out twice?)", head);
		if (lmm_free_pages(&kernel_mm, w, 0) != LMM_OK)
			ktest_fail(t, "free of 0x%lx refused", head);
		head = next;
		freed++;
	}
	lmm_pool_refill(&kernel_mm);
	lmm_cpu_drain(&kernel_mm, arch_cpu_id());
	struct lmm_stats after = stats_of(&kernel_mm);
	KT_EXPECT(freed == n, "freed %lu of %lu", freed, n);
	KT_EXPECT(after.free == before.free && after.pool == before.pool && after.allocated == before.allocated,
		  "counters did not return: free %lu->%lu pool %lu->%lu allocated %lu->%lu", before.free,
		  after.free, before.pool, after.pool, before.allocated, after.allocated);
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		KT_EXPECT(after.free_blocks[o] == before.free_blocks[o], "order %u: %lu free blocks, was %lu", o,
			  after.free_blocks[o], before.free_blocks[o]);
	KT_EXPECT(lmm_check(&kernel_mm) == 0, "lmm_check failed after freeing everything");
}

/*
 * KERNEL is the flag behind a general kalloc(): with interrupts off (a lock held) it
 * must work, and it must not touch the reserve.  (From a handler it is refused: the
 * stress test checks that, from a real timer interrupt.)
 */
static void kernel_alloc_with_irqs_off_allowed(struct ktest_ctx *t)
{
	struct lmm_stats before = stats_of(&kernel_mm);
	arch_irqflags_t f = arch_irq_save();
	void *p = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	arch_irq_restore(f);
	KT_EXPECT(p != NULL, "KERNEL allocation with interrupts off was refused");
	struct lmm_stats after = stats_of(&kernel_mm);
	KT_EXPECT(after.refused_total == before.refused_total, "a refusal was counted");
	KT_EXPECT(after.reserve_to[LMM_CLASS_KERNEL] == 0, "KERNEL took %lu reserve pages",
		  after.reserve_to[LMM_CLASS_KERNEL]);
	if (!p)
		return;
	const uint64_t *w = p;
	uint64_t nonzero = 0;
	for (size_t i = 0; i < PAGE / sizeof(*w); i++)
		nonzero += w[i] != 0;
	KT_EXPECT(nonzero == 0, "ZERO page has %lu non-zero words", nonzero);
	KT_EXPECT(lmm_free_pages(&kernel_mm, p, 0) == LMM_OK, "free refused");
}

static void named_routine_roundtrip(struct ktest_ctx *t)
{
	struct lmm_stats before = stats_of(&kernel_mm);
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	KT_EXPECT(p != NULL, "no page");
	if (!p)
		return;
	KT_EXPECT(lmm_page_owner(&kernel_mm, p) == KMM_OWNER(arch_cpu_id(), 0), "owner 0x%x",
		  lmm_page_owner(&kernel_mm, p));
	KT_EXPECT(stats_of(&kernel_mm).pool_hits == before.pool_hits + 1, "not served by the pool");
	KT_EXPECT(stats_of(&kernel_mm).reserve_to[LMM_CLASS_ATOMIC] == before.reserve_to[LMM_CLASS_ATOMIC] + 1,
		  "reserve page not counted for the ATOMIC class");
	KT_EXPECT(lmm_page_get(&kernel_mm, p) == LMM_ERR_EXCLUSIVE, "exclusive page shared");
	KT_EXPECT(labyrinth_free_page_atomic_exclusive(p) == LMM_OK, "free refused");
	enum lmm_status again = labyrinth_free_page_atomic_exclusive(p);
	KT_EXPECT(again == LMM_ERR_ALREADY_FREE, "double free gave '%s'", lmm_status_str(again));
	struct lmm_stats after = stats_of(&kernel_mm);
	KT_EXPECT(after.available == before.available && after.pool == before.pool &&
		  after.allocated == before.allocated, "counters moved");
}

static void spinlock_irqsave_nests(struct ktest_ctx *t)
{
	static struct spinlock l = SPINLOCK_INIT("ktest");
	KT_EXPECT(arch_irqs_enabled(), "tests must run with interrupts enabled");

	arch_irqflags_t f1 = spin_lock_irqsave(&l);
	KT_EXPECT(!arch_irqs_enabled() && spin_holding(&l), "lock held with interrupts on");
	spin_unlock_irqrestore(&l, f1);
	KT_EXPECT(arch_irqs_enabled() && !spin_holding(&l), "interrupts not restored");

	arch_irqflags_t f0 = arch_irq_save();
	arch_irqflags_t f2 = spin_lock_irqsave(&l);
	spin_unlock_irqrestore(&l, f2);
	KT_EXPECT(!arch_irqs_enabled(), "unlock enabled interrupts that were off before the lock");
	arch_irq_restore(f0);
	KT_EXPECT(arch_irqs_enabled(), "outer restore lost");
}

/* ---- A private allocator over a borrowed 4 MiB block ----------------------------------- */

static struct lmm arena;
static void *arena_block;

#define ARENA_ORDER 10
#define ARENA_POOL 8

static bool arena_begin_flags(struct ktest_ctx *t, uint32_t flags)
{
	arena_block = lmm_alloc_pages(&kernel_mm, ARENA_ORDER, LMM_GFP_KERNEL);
	if (!arena_block) {
		ktest_fail(t, "cannot borrow a 4 MiB block from the kernel allocator");
		return false;
	}
	struct lmm_config cfg = { .pool_target = ARENA_POOL, .pool_low = ARENA_POOL / 2,
				  .flags = LMM_CFG_QUIET | flags };
	lmm_begin(&arena, &cfg);
	lmm_add_range(&arena, lmm_virt_to_phys(&kernel_mm, arena_block), PAGE << ARENA_ORDER);
	if (lmm_init(&arena) != LMM_OK) {
		ktest_fail(t, "private allocator did not initialise");
		lmm_free_pages(&kernel_mm, arena_block, ARENA_ORDER);
		return false;
	}
	return true;
}

static bool arena_begin(struct ktest_ctx *t)
{
	return arena_begin_flags(t, 0);
}

static void arena_end(struct ktest_ctx *t)
{
	struct lmm_stats s = stats_of(&arena);
	KT_EXPECT(lmm_check(&arena) == 0, "private allocator check failed");
	KT_EXPECT(conserved(&s), "private allocator lost pages");
	KT_EXPECT(s.allocated == 0, "%lu pages still allocated", s.allocated);
	lmm_free_pages(&kernel_mm, arena_block, ARENA_ORDER);
}

/* Allocate with @gfp until NULL; pages chained through their first word. */
static uint64_t drain(struct lmm *mm, lmm_gfp_t gfp, void **chain)
{
	uint64_t n = 0;
	void **p;
	while ((p = lmm_alloc_pages(mm, 0, gfp))) {
		*p = *chain;
		*chain = p;
		n++;
	}
	return n;
}

static void release(struct lmm *mm, void *chain)
{
	while (chain) {
		void *next = *(void **)chain;
		lmm_free_pages(mm, chain, 0);
		chain = next;
	}
}

static void pool_survives_kernel_exhaustion(struct ktest_ctx *t)
{
	if (!arena_begin(t))
		return;
	void *chain = NULL;
	uint64_t normal = drain(&arena, LMM_GFP_KERNEL, &chain);
	struct lmm_stats s = stats_of(&arena);
	KT_EXPECT(normal > 0 && s.free == 0, "KERNEL drain left %lu free", s.free);
	KT_EXPECT(s.pool == ARENA_POOL, "KERNEL allocations took the reserve: pool %lu", s.pool);
	uint64_t atomic = drain(&arena, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, &chain);
	s = stats_of(&arena);
	KT_EXPECT(atomic == ARENA_POOL, "ATOMIC got %lu pages from a pool of %u", atomic, ARENA_POOL);
	KT_EXPECT(s.pool_empty_failures == 1, "empty-pool failure counted %lu times", s.pool_empty_failures);
	KT_EXPECT(s.pool_low_water == 0, "low-water mark %u", s.pool_low_water);
	release(&arena, chain);
	KT_EXPECT(lmm_pool_refill(&arena) == 0 && stats_of(&arena).pool == ARENA_POOL,
		  "frees did not return the reserve's pages to it");
	arena_end(t);
}

static void bad_frees_refused(struct ktest_ctx *t)
{
	if (!arena_begin(t))
		return;
	char *blk = lmm_alloc_pages(&arena, 2, LMM_GFP_KERNEL);
	struct lmm_stats before = stats_of(&arena);
	static const struct {
		long offset;
		unsigned order;
		enum lmm_status want;
	} cases[] = {
		{ 8, 2, LMM_ERR_NOT_ALIGNED },
		{ (long)PAGE, 0, LMM_ERR_NOT_HEAD },
		{ 0, 1, LMM_ERR_WRONG_ORDER },
		{ 0, 30, LMM_ERR_BAD_ORDER },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum lmm_status st = lmm_free_pages(&arena, blk + cases[i].offset, cases[i].order);
		KT_EXPECT(st == cases[i].want, "case %u: '%s', want '%s'", i, lmm_status_str(st),
			  lmm_status_str(cases[i].want));
	}
	KT_EXPECT(lmm_free_pages(&arena, (void *)&arena, 0) != LMM_OK, "kernel image address accepted");
	KT_EXPECT(lmm_free_pages(&arena, blk, 2) == LMM_OK, "good free refused");
	KT_EXPECT(lmm_free_pages(&arena, blk, 2) == LMM_ERR_ALREADY_FREE, "double free accepted");
	struct lmm_stats after = stats_of(&arena);
	KT_EXPECT(after.refused_total == before.refused_total + 6, "refusals counted %lu",
		  after.refused_total - before.refused_total);
	arena_end(t);
}

static void exclusive_ownership_enforced(struct ktest_ctx *t)
{
	if (!arena_begin(t))
		return;
	const uint16_t irq = KMM_OWNER(0, 1), main = KMM_OWNER(0, 0);
	uint64_t *p = lmm_alloc_pages_owned(&arena, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, irq);
	KT_EXPECT(p != NULL, "no page");
	if (p) {
		p[0] = 0x1234;
		KT_EXPECT(lmm_free_pages_owned(&arena, p, 0, main) == LMM_ERR_WRONG_OWNER, "non-owner freed it");
		KT_EXPECT(lmm_page_get(&arena, p) == LMM_ERR_EXCLUSIVE, "second reference granted");
		KT_EXPECT(lmm_page_transfer(&arena, p, main, main) == LMM_ERR_WRONG_OWNER, "non-owner transferred it");
		KT_EXPECT(p[0] == 0x1234 && lmm_page_owner(&arena, p) == irq, "page changed by refused calls");
		KT_EXPECT(lmm_page_transfer(&arena, p, irq, main) == LMM_OK, "handover refused");
		KT_EXPECT(lmm_free_pages_owned(&arena, p, 0, irq) == LMM_ERR_WRONG_OWNER, "old owner freed it");
		KT_EXPECT(lmm_free_pages_owned(&arena, p, 0, main) == LMM_OK, "new owner's free refused");
		KT_EXPECT(lmm_free_pages_owned(&arena, p, 0, main) != LMM_OK, "double free accepted");
	}
	KT_EXPECT(stats_of(&arena).refused[LMM_ERR_WRONG_OWNER] == 3, "wrong-owner refusals %lu",
		  stats_of(&arena).refused[LMM_ERR_WRONG_OWNER]);
	arena_end(t);
}

/* ---- The walk on the live allocator ----------------------------------------------------- */

struct walk_sums {
	uint64_t next_pfn, gaps, pages[LMM_RUN_KIND_COUNT];
};

static void sum_run(const struct lmm_run *run, void *ctx)
{
	struct walk_sums *w = ctx;
	if (run->base_pfn != w->next_pfn || run->npages == 0 || run->kind >= LMM_RUN_KIND_COUNT)
		w->gaps++;
	else
		w->pages[run->kind] += run->npages;
	w->next_pfn = run->base_pfn + run->npages;
}

/*
 * On the real machine, with one CPU and no timer yet, nothing moves during the walk: its
 * runs must tile memory from pfn 0 and add up, kind by kind, to the allocator's counters.
 */
static void walk_matches_stats(struct ktest_ctx *t)
{
	struct walk_sums w = { 0 };
	uint64_t runs = lmm_walk(&kernel_mm, sum_run, &w);
	struct lmm_stats s = stats_of(&kernel_mm);
	KT_EXPECT(runs > 0 && w.gaps == 0, "%lu runs, %lu out of order or empty", runs, w.gaps);
	KT_EXPECT(w.pages[LMM_RUN_FREE] == s.free, "free: walk %lu, stats %lu", w.pages[LMM_RUN_FREE], s.free);
	KT_EXPECT(w.pages[LMM_RUN_POOL] == s.pool, "pool: walk %lu, stats %lu", w.pages[LMM_RUN_POOL], s.pool);
	KT_EXPECT(w.pages[LMM_RUN_CACHED] == s.cached, "cached: walk %lu, stats %lu",
		  w.pages[LMM_RUN_CACHED], s.cached);
	KT_EXPECT(w.pages[LMM_RUN_RESERVED] == s.reserved, "reserved: walk %lu, stats %lu",
		  w.pages[LMM_RUN_RESERVED], s.reserved);
	KT_EXPECT(w.pages[LMM_RUN_ALLOCATED] + w.pages[LMM_RUN_EXCLUSIVE] == s.allocated,
		  "allocated: walk %lu + %lu exclusive, stats %lu", w.pages[LMM_RUN_ALLOCATED],
		  w.pages[LMM_RUN_EXCLUSIVE], s.allocated);
	KT_EXPECT(w.next_pfn - w.pages[LMM_RUN_HOLE] == s.managed, "walk covers %lu managed frames of %lu",
		  w.next_pfn - w.pages[LMM_RUN_HOLE], s.managed);
}


/* A shared block goes back only with its last reference; a reserved page is never freed. */
static void references_and_reserved_pages(struct ktest_ctx *t)
{
	uint64_t *p = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL);
	KT_EXPECT(p != NULL, "no page");
	if (!p)
		return;
	KT_EXPECT(lmm_page_get(&kernel_mm, p) == LMM_OK, "second reference refused");
	KT_EXPECT(lmm_free_pages(&kernel_mm, p, 0) == LMM_OK, "first put refused");
	KT_EXPECT(lmm_page_get(&kernel_mm, p) == LMM_OK, "page freed while a reference was left");
	KT_EXPECT(lmm_free_pages(&kernel_mm, p, 0) == LMM_OK && lmm_free_pages(&kernel_mm, p, 0) == LMM_OK,
		  "puts refused");
	KT_EXPECT(lmm_free_pages(&kernel_mm, p, 0) == LMM_ERR_ALREADY_FREE, "a put past the last reference");
	/* Page 1 is in the first MiB, which mm_setup reserves: managed, never handed out. */
	void *low = lmm_phys_to_virt(&kernel_mm, 0x1000);
	KT_EXPECT(low != NULL, "the first MiB is not managed");
	enum lmm_status st = lmm_free_pages(&kernel_mm, low, 0);
	KT_EXPECT(st == LMM_ERR_RESERVED, "free of a reserved page: '%s'", lmm_status_str(st));
}

/* Debug poisoning: a page written after its free is reported at its next allocation. */
static void poison_catches_use_after_free(struct ktest_ctx *t)
{
	if (!arena_begin_flags(t, LMM_CFG_POISON))
		return;
	uint64_t *p = lmm_alloc_pages(&arena, 0, LMM_GFP_KERNEL);
	KT_EXPECT(p != NULL, "no page");
	if (p) {
		lmm_free_pages(&arena, p, 0);
		uint64_t errors = stats_of(&arena).poison_errors;
		p[7] = 1; /* the use after free */
		uint64_t *q = lmm_alloc_pages(&arena, 0, LMM_GFP_KERNEL);
		KT_EXPECT(q == p, "the cache did not hand the page back first");
		KT_EXPECT(stats_of(&arena).poison_errors == errors + 1, "write after free not reported");
		lmm_free_pages(&arena, q, 0);
	}
	arena_end(t);
}

/*
 * The reserve's frames come back from any context and stay a fixed budget; lowering the
 * target lets frames go, raising it brings the reserve back on the next slow path.
 */
static void reserve_budget_kept_and_marks(struct ktest_ctx *t)
{
	if (!arena_begin(t))
		return;
	void *a = lmm_alloc_pages(&arena, 0, LMM_GFP_ATOMIC);
	KT_EXPECT(a != NULL, "no reserve page");
	arch_irqflags_t f = arch_irq_save();
	KT_EXPECT(lmm_free_pages(&arena, a, 0) == LMM_OK, "irqs-off free refused");
	arch_irq_restore(f);
	struct lmm_stats s = stats_of(&arena);
	KT_EXPECT(s.pool == ARENA_POOL && s.reserve_held == 0, "irqs-off free: reserve %lu (+%lu out) of %u",
		  s.pool, s.reserve_held, ARENA_POOL);

	/* Lowered with frames out: what waits leaves now, the rest of the surplus when freed. */
	void *out[ARENA_POOL - 2];
	for (unsigned i = 0; i < ARENA_POOL - 2; i++)
		out[i] = lmm_alloc_pages(&arena, 0, LMM_GFP_ATOMIC);
	KT_EXPECT(lmm_pool_set_marks(&arena, 2, ARENA_POOL / 2) == LMM_OK, "lowering the target refused");
	s = stats_of(&arena);
	KT_EXPECT(s.pool == 0 && s.reserve_held == ARENA_POOL - 2, "after lowering: %lu waiting, %lu out", s.pool,
		  s.reserve_held);
	for (unsigned i = 0; i < ARENA_POOL - 2; i++)
		KT_EXPECT(lmm_free_pages(&arena, out[i], 0) == LMM_OK, "free after lowering refused");
	s = stats_of(&arena);
	KT_EXPECT(s.pool == ARENA_POOL / 2 && s.reserve_held == 0, "pool %lu (+%lu out) after lowering and the frees",
		  s.pool, s.reserve_held);
	KT_EXPECT(lmm_check(&arena) == 0, "frames that left the reserve are not ordinary again");

	/* Raised: the next slow path brings the reserve back, an order-0 or a larger one. */
	KT_EXPECT(lmm_pool_set_marks(&arena, ARENA_POOL, ARENA_POOL) == LMM_OK, "raising the target refused");
	lmm_cpu_drain(&arena, arch_cpu_id()); /* the next KERNEL allocation takes the slow path */
	void *k = lmm_alloc_pages(&arena, 0, LMM_GFP_KERNEL);
	KT_EXPECT(k != NULL && stats_of(&arena).pool == ARENA_POOL,
		  "a KERNEL slow path below the low mark did not bring the reserve back: pool %lu",
		  stats_of(&arena).pool);
	lmm_free_pages(&arena, k, 0);
	KT_EXPECT(lmm_pool_set_marks(&arena, 2, ARENA_POOL / 2) == LMM_OK &&
			  lmm_pool_set_marks(&arena, ARENA_POOL, ARENA_POOL) == LMM_OK,
		  "marks refused");
	void *big = lmm_alloc_pages(&arena, 1, LMM_GFP_KERNEL);
	KT_EXPECT(big != NULL && stats_of(&arena).pool == ARENA_POOL,
		  "an order-1 KERNEL allocation below the low mark did not bring the reserve back: pool %lu",
		  stats_of(&arena).pool);
	lmm_free_pages(&arena, big, 1);
	arena_end(t);
}

/* A large block held apart only by pages in this CPU's cache is still handed out. */
static void large_block_behind_the_cache(struct ktest_ctx *t)
{
	static void *page[1u << ARENA_ORDER];
	if (!arena_begin(t))
		return;
	struct lmm_stats s0 = stats_of(&arena);
	unsigned top = LMM_MAX_ORDER;
	while (top && !s0.free_blocks[top])
		top--;
	uint64_t base = lmm_virt_to_phys(&kernel_mm, arena_block), n = 0;
	void *p;
	while ((p = lmm_alloc_pages(&arena, 0, LMM_GFP_KERNEL))) {
		page[(lmm_virt_to_phys(&arena, p) - base) / PAGE] = p;
		n++;
	}
	/* Highest addresses first: the last ones freed, kept by the cache, are the lowest. */
	for (unsigned i = 1u << ARENA_ORDER; i-- > 0;)
		if (page[i]) {
			lmm_free_pages(&arena, page[i], 0);
			page[i] = NULL;
		}
	struct lmm_stats s1 = stats_of(&arena);
	KT_EXPECT(n > 0 && s1.cached > 0, "fixture: %lu pages, %lu cached", n, s1.cached);
	void *big = lmm_alloc_pages(&arena, top, LMM_GFP_KERNEL);
	KT_EXPECT(big != NULL, "order %u refused with %lu pages cached (%lu blocks of it at start, %lu now)", top,
		  s1.cached, s0.free_blocks[top], s1.free_blocks[top]);
	lmm_free_pages(&arena, big, top);
	arena_end(t);
}

static const struct ktest mm_tests[] = {
	{ "mm_boot_state", boot_state },
	{ "mm_alloc_every_page", alloc_every_page },
	{ "mm_kernel_alloc_with_irqs_off_allowed", kernel_alloc_with_irqs_off_allowed },
	{ "mm_named_routine_roundtrip", named_routine_roundtrip },
	{ "spinlock_irqsave_nests", spinlock_irqsave_nests },
	{ "mm_pool_survives_kernel_exhaustion", pool_survives_kernel_exhaustion },
	{ "mm_bad_frees_refused", bad_frees_refused },
	{ "mm_exclusive_ownership_enforced", exclusive_ownership_enforced },
	{ "mm_walk_matches_stats", walk_matches_stats },
	{ "mm_references_and_reserved_pages", references_and_reserved_pages },
	{ "mm_poison_catches_use_after_free", poison_catches_use_after_free },
	{ "mm_reserve_budget_kept_and_marks", reserve_budget_kept_and_marks },
	{ "mm_large_block_behind_the_cache", large_block_behind_the_cache },
};

unsigned kernel_run_mm_tests(void)
{
	return ktest_run("mm", mm_tests, sizeof(mm_tests) / sizeof(mm_tests[0]));
}

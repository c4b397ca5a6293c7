/*
 * test_mm_walk.c - lmm_walk(): runs tile physical memory from pfn 0 exactly once, in
 * order, with holes, and every run's kind and free order match an expectation built
 * from what the test itself allocated, reserved and laid out (never from the walk).
 */
#include "mm_harness.h"

static struct lmm mm;

/* ---- Collecting runs ---------------------------------------------------------------------- */

struct runs {
	struct lmm_run *v;
	size_t n, cap;
	/* Optional: called after each run is stored (to change memory mid-walk). */
	void (*hook)(struct runs *r);
};

static void collect(const struct lmm_run *run, void *ctx)
{
	struct runs *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v)
			abort();
	}
	r->v[r->n++] = *run;
	if (r->hook)
		r->hook(r);
}

static struct runs walk(void)
{
	struct runs r = { 0 };
	uint64_t n = lmm_walk(&mm, collect, &r);
	if (n != r.n) {
		fprintf(stderr, "lmm_walk returned %" PRIu64 " but delivered %zu runs\n", n, r.n);
		r.n = (size_t)-1; /* make every caller's tiling check fail */
	}
	return r;
}

/* ---- The independent expectation ------------------------------------------------------------ */

/*
 * One expected kind per pfn below @npfn, built by the test from its own actions:
 * holes and reservations from the layout it passed in, ALLOCATED/EXCLUSIVE from the
 * blocks it holds, and "not held" for everything else: free, pool or per-CPU cache
 * (which frames the pool and the caches took is mm/'s choice; the test checks their
 * counts and each of their frames instead).
 */
#define EXP_UNHELD LMM_RUN_KIND_COUNT

struct expect {
	uint64_t npfn;
	unsigned char *kind;
};

static struct expect expect_new(uint64_t npfn)
{
	struct expect e = { npfn, malloc(npfn) };
	if (!e.kind)
		abort();
	memset(e.kind, LMM_RUN_HOLE, npfn);
	return e;
}

static void expect_set(struct expect *e, uint64_t base, uint64_t len, unsigned kind)
{
	for (uint64_t p = base >> 12; p < (base + len + 4095) >> 12 && p < e->npfn; p++)
		e->kind[p] = (unsigned char)kind;
}

/* Usable RAM, then reservations (widened to pages, as mm/ does), then the metadata. */
static struct expect expect_layout(uint64_t npfn, const struct range *use, size_t nuse,
				   const struct range *res, size_t nres)
{
	struct expect e = expect_new(npfn);
	for (size_t i = 0; i < nuse; i++) {
		uint64_t b = (use[i].base + 4095) & ~4095ull, end = (use[i].base + use[i].len) & ~4095ull;
		if (end > b)
			expect_set(&e, b, end - b, EXP_UNHELD);
	}
	for (size_t i = 0; i < nres; i++) {
		uint64_t b = res[i].base & ~4095ull, end = (res[i].base + res[i].len + 4095) & ~4095ull;
		for (uint64_t p = b >> 12; p < end >> 12 && p < npfn; p++)
			if (e.kind[p] != LMM_RUN_HOLE)
				e.kind[p] = LMM_RUN_RESERVED;
	}
	expect_set(&e, mm.metadata_phys, mm_stats(&mm).metadata_bytes, LMM_RUN_RESERVED);
	return e;
}

static const struct lmm_frame *frame_at(uint64_t pfn)
{
	for (uint32_t i = 0; i < mm.nregions; i++) {
		const struct lmm_region *r = &mm.regions[i];
		if (pfn - r->base_pfn < r->npages)
			return &mm.frames[r->first_index + (pfn - r->base_pfn)];
	}
	return NULL;
}

/*
 * Every promise of lmm_walk() against @e: the runs start at pfn 0, are contiguous,
 * non-empty and in order, end at the expectation's end; each frame's kind matches;
 * no two neighbouring runs could have been one; FREE runs are whole aligned blocks of
 * their order whose heads really are free blocks of that order, and per order they add
 * up to the free-block counters; POOL and CACHED frames are in those states and add up
 * to the pool and the caches.
 */
static void check_runs(const struct runs *r, const struct expect *e)
{
	struct lmm_stats s = mm_stats(&mm);
	uint64_t pfn = 0, pool = 0, cached = 0, free_pages = 0, blocks[LMM_MAX_ORDER + 1] = { 0 };

	ASSERT(r->n != (size_t)-1, "return value differs from the runs delivered");
	for (size_t i = 0; i < r->n; i++) {
		const struct lmm_run *u = &r->v[i];
		ASSERT(u->base_pfn == pfn, "run %zu starts at pfn %" PRIu64 ", expected %" PRIu64, i,
		       u->base_pfn, pfn);
		ASSERT(u->npages > 0, "run %zu is empty", i);
		ASSERT(u->kind < LMM_RUN_KIND_COUNT, "run %zu has kind %d", i, (int)u->kind);
		if (i > 0) {
			const struct lmm_run *p = &r->v[i - 1];
			CHECK(p->kind != u->kind || p->order != u->order,
			      "runs %zu and %zu (pfn %" PRIu64 ") should have been one", i - 1, i, u->base_pfn);
		}
		CHECK(u->kind == LMM_RUN_FREE || u->order == 0, "run %zu: order %u on a non-free run", i,
		      u->order);
		for (uint64_t p = u->base_pfn; p < u->base_pfn + u->npages; p++) {
			ASSERT(p < e->npfn, "run %zu reaches pfn %" PRIu64 ", past the end %" PRIu64, i, p,
			       e->npfn);
			unsigned want = e->kind[p];
			if (want == EXP_UNHELD)
				ASSERT(u->kind == LMM_RUN_FREE || u->kind == LMM_RUN_POOL ||
					       u->kind == LMM_RUN_CACHED,
				       "pfn %" PRIu64 " reported kind %d, expected free, pool or cached", p,
				       (int)u->kind);
			else
				ASSERT(u->kind == want, "pfn %" PRIu64 " reported kind %d, expected %u", p,
				       (int)u->kind, want);
		}
		if (u->kind == LMM_RUN_POOL || u->kind == LMM_RUN_CACHED) {
			uint8_t want = u->kind == LMM_RUN_POOL ? LMM_FRAME_POOL : LMM_FRAME_CACHED;
			for (uint64_t p = u->base_pfn; p < u->base_pfn + u->npages; p++)
				CHECK(frame_at(p)->state == want, "pfn %" PRIu64 " reported kind %d, frame state %u",
				      p, (int)u->kind, frame_at(p)->state);
			*(u->kind == LMM_RUN_POOL ? &pool : &cached) += u->npages;
		}
		if (u->kind == LMM_RUN_FREE) {
			uint64_t bs = 1ull << u->order;
			ASSERT((u->base_pfn & (bs - 1)) == 0 && (u->npages & (bs - 1)) == 0,
			       "free run [%" PRIu64 "+%" PRIu64 ") is not whole order-%u blocks", u->base_pfn,
			       u->npages, u->order);
			for (uint64_t p = u->base_pfn; p < u->base_pfn + u->npages; p += bs) {
				const struct lmm_frame *f = frame_at(p);
				CHECK(f->state == LMM_FRAME_FREE && f->order == u->order,
				      "pfn %" PRIu64 ": no free order-%u block there (state %u order %u)", p,
				      u->order, f->state, f->order);
				blocks[u->order]++;
			}
			free_pages += u->npages;
		}
		pfn += u->npages;
	}
	CHECK(pfn == e->npfn, "runs end at pfn %" PRIu64 ", memory at %" PRIu64, pfn, e->npfn);
	CHECK(pool == s.pool, "%" PRIu64 " pool frames reported, pool holds %" PRIu64, pool, s.pool);
	CHECK(cached == s.cached, "%" PRIu64 " cached frames reported, caches hold %" PRIu64, cached,
	      s.cached);
	CHECK(free_pages == s.free, "%" PRIu64 " free frames reported, %" PRIu64 " free", free_pages, s.free);
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(blocks[o] == s.free_blocks[o], "order %u: %" PRIu64 " free blocks reported, %" PRIu64
		      " on the list", o, blocks[o], s.free_blocks[o]);
}

/* ---- Cases ---------------------------------------------------------------------------------- */

/*
 * An exact layout: [0, 4M) one free order-10 block, then [4M, 8M) reserved (the metadata
 * at its top).  One page allocated at 0 splits the block into one free block per order.
 */
static void exact_runs_after_a_split(void)
{
	struct range use[] = { { 0, 8 * MiB } }, res[] = { { 4 * MiB, 4 * MiB - 32 * 1024 } };
	/* No per-CPU cache: its refill would take a batch of pages, not one. */
	struct lmm_config cfg = { .cache_high = LMM_CPU_OFF, .pool_slice = LMM_CPU_OFF, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 8 * MiB, use, 1, res, 1, &cfg) == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(p && host_virt_to_phys(p) == 0, "fixture: lowest page expected");

	struct runs r = walk();
	ASSERT(r.n == 1 + LMM_MAX_ORDER + 1, "%zu runs", r.n);
	CHECK(r.v[0].kind == LMM_RUN_ALLOCATED && r.v[0].base_pfn == 0 && r.v[0].npages == 1,
	      "run 0: kind %d [%" PRIu64 "+%" PRIu64 ")", (int)r.v[0].kind, r.v[0].base_pfn, r.v[0].npages);
	for (unsigned o = 0; o < LMM_MAX_ORDER; o++) {
		const struct lmm_run *u = &r.v[1 + o];
		CHECK(u->kind == LMM_RUN_FREE && u->order == o && u->base_pfn == 1ull << o &&
		      u->npages == 1ull << o, "run %u: kind %d order %u [%" PRIu64 "+%" PRIu64 ")", 1 + o,
		      (int)u->kind, u->order, u->base_pfn, u->npages);
	}
	const struct lmm_run *last = &r.v[1 + LMM_MAX_ORDER];
	CHECK(last->kind == LMM_RUN_RESERVED && last->base_pfn == 1024 && last->npages == 1024,
	      "last run: kind %d [%" PRIu64 "+%" PRIu64 ")", (int)last->kind, last->base_pfn, last->npages);
	lmm_free_pages(&mm, p, 0);
	free(r.v);
}

/* Holes below the first region and between regions, each one run, at the right place. */
static void holes_between_regions(void)
{
	struct range use[] = { { 1 * MiB, 2 * MiB }, { 5 * MiB, 3 * MiB }, { 12 * MiB, 4 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 3, NULL, 0, NULL) == LMM_OK, "init failed");
	ASSERT(mm.nregions == 3, "fixture: %u regions", mm.nregions);
	struct expect e = expect_layout(16 * MiB >> 12, use, 3, NULL, 0);
	struct runs r = walk();
	check_runs(&r, &e);
	unsigned holes = 0;
	for (size_t i = 0; i < r.n; i++)
		if (r.v[i].kind == LMM_RUN_HOLE)
			holes++;
	CHECK(holes == 3, "%u hole runs, expected 3 ([0,1M), [3M,5M), [8M,12M))", holes);
	CHECK(r.v[0].kind == LMM_RUN_HOLE && r.v[0].npages == 256, "first run is not the 1 MiB hole");
	free(r.v);
	free(e.kind);
}

/*
 * A busy 64 MiB machine: reservations, the emergency pool, exclusive pages and blocks
 * of random orders, half of them freed again, so runs cross chunk and batch limits
 * many times over.
 */
static void kinds_match_a_busy_machine(void)
{
	struct range use[] = { { 0, 64 * MiB } };
	struct range res[] = { { 0, 1 * MiB }, { 9 * MiB + 123, 3 * 4096 }, { 40 * MiB, 1 * MiB } };
	struct lmm_config cfg = { .pool_target = 64, .pool_low = 32, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 64 * MiB, use, 1, res, 3, &cfg) == LMM_OK, "init failed");
	struct expect e = expect_layout(64 * MiB >> 12, use, 1, res, 3);

	enum { N = 3000 };
	static struct held {
		void *p;
		unsigned order;
		bool excl;
	} held[N];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < N; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		bool excl = rng % 5 == 0;
		unsigned order = excl ? 0 : (unsigned)(rng >> 8) % 4;
		held[i] = (struct held){ lmm_alloc_pages(&mm, order, excl ? LMM_GFP_EXCLUSIVE : 0), order, excl };
		ASSERT(held[i].p, "allocation %u failed", i);
	}
	for (unsigned i = 0; i < N; i += 2) {
		ASSERT(lmm_free_pages(&mm, held[i].p, held[i].order) == LMM_OK, "free %u", i);
		held[i].p = NULL;
	}
	for (unsigned i = 0; i < N; i++)
		if (held[i].p)
			expect_set(&e, host_virt_to_phys(held[i].p), 4096ull << held[i].order,
				   held[i].excl ? LMM_RUN_EXCLUSIVE : LMM_RUN_ALLOCATED);
	ASSERT(lmm_check(&mm) == 0, "fixture: allocator inconsistent");

	struct runs r = walk();
	check_runs(&r, &e);
	CHECK(r.n > 1000, "only %zu runs: the fixture is not fragmented enough to test chunking", r.n);
	CHECK(mm_stats(&mm).cached > 0 && mm_stats(&mm).pool > 0, "fixture: cached %" PRIu64 ", pool %" PRIu64,
	      mm_stats(&mm).cached, mm_stats(&mm).pool);
	free(r.v);
	for (unsigned i = 0; i < N; i++)
		if (held[i].p)
			lmm_free_pages(&mm, held[i].p, held[i].order);
	free(e.kind);
}

/*
 * The callback runs outside the lock, so memory may change mid-walk.  Here every page is
 * allocated at first and the first callback frees them all: the resume point is then a
 * tail inside a merged free block.  The runs must still tile memory exactly once, and
 * everything after the first chunk must be reported as the free blocks now there.
 */
static void *everything[4096];
static size_t neverything;

static void free_all_once(struct runs *r)
{
	r->hook = NULL;
	for (size_t i = 0; i < neverything; i++)
		lmm_free_pages(&mm, everything[i], 0);
	neverything = 0;
}

static void memory_changing_between_chunks(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, NULL) == LMM_OK, "init failed");
	void *p;
	neverything = 0;
	/* Alternate plain and exclusive pages: one run per page, so the batch fills early. */
	while (neverything < 4096 &&
	       (p = lmm_alloc_pages(&mm, 0, neverything % 2 ? LMM_GFP_EXCLUSIVE : LMM_GFP_KERNEL)))
		everything[neverything++] = p;
	ASSERT(mm_stats(&mm).free == 0, "fixture: %" PRIu64 " pages left free", mm_stats(&mm).free);

	struct runs r = { .hook = free_all_once };
	uint64_t n = lmm_walk(&mm, collect, &r);
	ASSERT(n == r.n, "returned %" PRIu64 ", delivered %zu", n, r.n);
	uint64_t pfn = 0, held_late = 0;
	bool unaligned_free = false;
	for (size_t i = 0; i < r.n; i++) {
		const struct lmm_run *u = &r.v[i];
		ASSERT(u->base_pfn == pfn && u->npages, "run %zu at pfn %" PRIu64 "+%" PRIu64 ", expected %" PRIu64,
		       i, u->base_pfn, u->npages, pfn);
		if (u->kind == LMM_RUN_FREE && (u->base_pfn & ((1ull << u->order) - 1)))
			unaligned_free = true;
		/* Well past the first batch, nothing is held any more. */
		if (u->base_pfn >= 256 && (u->kind == LMM_RUN_ALLOCATED || u->kind == LMM_RUN_EXCLUSIVE))
			held_late += u->npages;
		pfn += u->npages;
	}
	CHECK(pfn == mm.nframes, "runs cover %" PRIu64 " of %" PRIu64 " frames", pfn, mm.nframes);
	CHECK(held_late == 0, "%" PRIu64 " frames freed mid-walk still reported held", held_late);
	CHECK(unaligned_free, "the walk never resumed inside a merged block (fixture too coarse?)");
	CHECK(r.n < 1000, "%zu runs: the frees mid-walk were not seen", r.n);
	CHECK(lmm_check(&mm) == 0, "allocator inconsistent after the walk");
	free(r.v);
}

static unsigned calls;
static void count_calls(const struct lmm_run *run, void *ctx)
{
	(void)run, (void)ctx;
	calls++;
}

static void refused_outside_normal_context(void)
{
	struct range use[] = { { 0, 4 * MiB } };
	ASSERT(mm_setup(&mm, 4 * MiB, use, 1, NULL, 0, NULL) == LMM_OK, "init failed");
	calls = 0;
	lmm_irqflags_t fl = host_irq_save();
	uint64_t n = lmm_walk(&mm, count_calls, NULL);
	host_irq_restore(fl);
	CHECK(n == 0 && calls == 0, "walk with interrupts off returned %" PRIu64 " and made %u calls", n, calls);
	CHECK(mm_stats(&mm).refused[LMM_ERR_BAD_CONTEXT] == 1, "refusal not counted");
	CHECK(lmm_walk(&mm, count_calls, NULL) == calls && calls > 0, "normal-context walk made no calls");
}

int main(void)
{
	TEST(exact_runs_after_a_split);
	TEST(holes_between_regions);
	TEST(kinds_match_a_busy_machine);
	TEST(memory_changing_between_chunks);
	TEST(refused_outside_normal_context);
	return testlib_exit();
}

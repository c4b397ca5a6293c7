/*
 * test_mm_gates.c - the cases the mutation and coverage gates asked for: lmm_check()
 * against one corruption per invariant it claims (each must be named in its log, not
 * just counted), lmm_dump()'s and the holders' output, and the refusals at init.
 */
#include "mm_harness.h"
#include "../../mm/internal.h" /* LMM_FRAME_F_RESERVE: corrupting a frame's flags */

static struct lmm mm;

/* 8 MiB, first MiB reserved, a small reserve with slices, a small cache. */
static const struct lmm_config cfg = { .pool_target = 64, .pool_low = 32, .pool_slice = 2, .cache_batch = 4,
				       .cache_high = 8, .flags = LMM_CFG_QUIET };

static void setup(void)
{
	struct range use[] = { { 0, 8 * MiB } };
	struct range res[] = { { 0, 1 * MiB } };
	if (mm_setup(&mm, 8 * MiB, use, 1, res, 1, &cfg) != LMM_OK)
		abort();
}

static uint32_t idx_of(const void *p)
{
	return (uint32_t)(host_virt_to_phys(p) >> 12) - (uint32_t)mm.regions[0].base_pfn + mm.regions[0].first_index;
}

/* lmm_check must find a problem and name it (the log keeps its text). */
#define EXPECT_PROBLEM(what)                                                                          \
	do {                                                                                          \
		host_log_clear();                                                                     \
		CHECK(lmm_check(&mm) > 0 && host_log_contains(what), "lmm_check did not report '%s'", \
		      what);                                                                          \
	} while (0)
#define EXPECT_HEALTHY() CHECK(lmm_check(&mm) == 0, "healthy state reported broken: %s", host_log_last())

/* Pages in this CPU's cache and slice, one allocated page, one order-1 block. */
static void *cached_pg, *atomic_pg, *page, *pair;
static void populate(void)
{
	setup();
	cached_pg = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* refills the cache */
	atomic_pg = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC); /* moves half a slice */
	page = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	pair = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	lmm_free_pages(&mm, cached_pg, 0); /* back to the cache */
	lmm_free_pages(&mm, atomic_pg, 0); /* back to the slice */
	if (!page || !pair || !atomic_pg || mm.cpu[0].cache_count == 0 || mm.cpu[0].slice_count == 0)
		abort();
}

static void check_names_counter_corruption(void)
{
	populate();
	EXPECT_HEALTHY();
	mm.reserve_frames++;
	EXPECT_PROBLEM("reserve frames: counter vs flagged frames");
	mm.reserve_frames -= 64;
	EXPECT_PROBLEM("reserve: more frames waiting than in its budget");
	mm.reserve_frames += 63;
	mm.cpu[0].allocated++;
	EXPECT_PROBLEM("allocated pages: counter vs frames");
	EXPECT_PROBLEM("conservation");
	mm.cpu[0].allocated--;
	mm.nreserved_pages++;
	EXPECT_PROBLEM("reserved pages: counter vs frames");
	mm.nreserved_pages--;
	mm.nfree++;
	EXPECT_PROBLEM("free pages: counter vs lists");
	mm.nfree--;
	mm.free_blocks[3]++;
	EXPECT_PROBLEM("free block counter wrong for order");
	mm.free_blocks[3]--;
	EXPECT_HEALTHY();
}

static void check_names_frame_corruption(void)
{
	populate();
	struct lmm_frame *f = &mm.frames[idx_of(page)], *b = &mm.frames[idx_of(pair)], save = *f, bsave = *b;
	f->state = LMM_FRAME_CACHED; /* a cached frame on no cache */
	EXPECT_PROBLEM("cached pages: frames vs caches");
	f->state = LMM_FRAME_POOL;
	EXPECT_PROBLEM("pool pages: frames vs lists");
	f->state = LMM_FRAME_TAIL;
	EXPECT_PROBLEM("frame belongs to no block");
	*f = save;
	f->region = 9;
	EXPECT_PROBLEM("frame records the wrong region");
	*f = save;
	f->order = 40;
	EXPECT_PROBLEM("block head with a bad order");
	*f = save;
	f->refcount = 0;
	EXPECT_PROBLEM("allocated block with no reference");
	*f = save;
	f->state = LMM_FRAME_EXCLUSIVE;
	f->owner = 0;
	EXPECT_PROBLEM("exclusive page without an owner");
	*f = save;
	b->state = LMM_FRAME_EXCLUSIVE;
	b->owner = 1;
	EXPECT_PROBLEM("single-page state on a larger block");
	*b = bsave;
	b->flags |= LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve flag on a block larger than a page");
	*b = bsave;
	mm.frames[idx_of(pair) + 1].state = LMM_FRAME_ALLOCATED;
	EXPECT_PROBLEM("block overlaps another block");
	mm.frames[idx_of(pair) + 1].state = LMM_FRAME_TAIL;
	unsigned fo = 0;
	while (mm.free_head[fo] == LMM_NIL)
		fo++;
	uint32_t fh = mm.free_head[fo];
	mm.frames[fh].flags |= LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve frame on a buddy free list");
	mm.frames[fh].flags &= (uint8_t)~LMM_FRAME_F_RESERVE;
	EXPECT_HEALTHY();
}

static void check_names_list_corruption(void)
{
	populate();
	unsigned o = 0;
	while (mm.free_head[o] == LMM_NIL)
		o++;
	uint32_t h = mm.free_head[o];
	struct lmm_frame save = mm.frames[h];
	unsigned empty = 0;
	while (empty <= LMM_MAX_ORDER && mm.free_head[empty] != LMM_NIL)
		empty++;
	if (empty <= LMM_MAX_ORDER) {
		mm.free_mask ^= 1u << empty;
		EXPECT_PROBLEM("free_mask disagrees with list of order");
		mm.free_mask ^= 1u << empty;
	}
	mm.frames[h].state = LMM_FRAME_ALLOCATED;
	mm.frames[h].refcount = 1;
	EXPECT_PROBLEM("free list holds a non-free frame");
	mm.frames[h] = save;
	mm.frames[h].prev = h;
	EXPECT_PROBLEM("free list back link broken");
	mm.frames[h] = save;
	mm.frames[h].next = (uint32_t)mm.nframes + 7;
	EXPECT_PROBLEM("free list runs out of the frame array");
	mm.frames[h] = save;

	/* An order-1 block seen as two unmerged order-0 buddies, then as a misaligned one. */
	void *blk = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	uint32_t i = idx_of(blk);
	struct lmm_frame a = mm.frames[i], t = mm.frames[i + 1];
	struct lmm_held held;
	lmm_buddy_add_block(&mm, 0, i);
	lmm_buddy_add_block(&mm, 0, i + 1);
	EXPECT_PROBLEM("free block not merged with its free buddy");
	struct lmm_cpu *c = lmm_lock_here(&mm, &held);
	lmm_buddy_alloc_locked(&mm, c, 0); /* LIFO: i + 1, then i */
	lmm_buddy_alloc_locked(&mm, c, 0);
	lmm_unlock_here(&mm, &held);
	mm.frames[i] = a;
	mm.frames[i + 1] = t;
	EXPECT_HEALTHY();
	mm.frames[i + 1] = a;
	lmm_buddy_add_block(&mm, 1, i + 1); /* odd pfn on the order-1 list */
	EXPECT_PROBLEM("free block misaligned");
	c = lmm_lock_here(&mm, &held);
	lmm_buddy_alloc_locked(&mm, c, 1);
	lmm_unlock_here(&mm, &held);
	mm.frames[i + 1] = t;
	EXPECT_HEALTHY();
	lmm_free_pages(&mm, blk, 1);

	/* The last page of the region as an order-1 block: past the region's end. */
	uint32_t last = mm.regions[0].first_index + (uint32_t)mm.regions[0].npages - 1;
	void *lastp = lmm_frame_virt(&mm, last);
	void *got[4096];
	unsigned n = 0;
	/* Take every page until the last one is ours. */
	while (n < 4096 && (got[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT)) != NULL && got[n++] != lastp)
		;
	if (n && got[n - 1] == lastp) {
		struct lmm_frame ls = mm.frames[last];
		lmm_buddy_add_block(&mm, 1, last - 1);
		mm.frames[last - 1].state = LMM_FRAME_FREE;
		host_log_clear();
		lmm_check(&mm);
		CHECK(host_log_contains("free block") , "a free block past the region's end not reported");
		c = lmm_lock_here(&mm, &held);
		lmm_buddy_alloc_locked(&mm, c, 1);
		lmm_unlock_here(&mm, &held);
		mm.frames[last] = ls;
	}
	for (unsigned k = 0; k < n; k++)
		lmm_free_pages(&mm, got[k], 0);
}

static void check_names_stack_corruption(void)
{
	populate();
	struct lmm_cpu *c = &mm.cpu[0];
	uint32_t ch = c->cache_head, sh = c->slice_head;
	struct lmm_frame cs = mm.frames[ch], ss = mm.frames[sh];
	mm.frames[ch].state = LMM_FRAME_POOL;
	EXPECT_PROBLEM("stack holds a frame in the wrong state");
	mm.frames[ch] = cs;
	mm.frames[sh].flags &= (uint8_t)~LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve flag wrong on a cached or pooled frame");
	mm.frames[sh] = ss;
	c->cache_count++;
	EXPECT_PROBLEM("stack count disagrees with its list");
	c->cache_count--;
	mm.frames[ch].next = (uint32_t)mm.nframes + 3;
	EXPECT_PROBLEM("cpu cache runs out of the frame array");
	mm.frames[ch] = cs;
	uint32_t high = mm.cache_high, slice = mm.pool_slice;
	mm.cache_high = 0;
	EXPECT_PROBLEM("cpu cache above its high mark");
	mm.cache_high = high;
	mm.pool_slice = 0;
	EXPECT_PROBLEM("pool slice above its size");
	mm.pool_slice = slice;
	EXPECT_HEALTHY();

	/* Many problems at once: the log keeps the first few and counts the rest. */
	uint64_t save = mm.nfree;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		mm.free_blocks[o] += 1;
	mm.nfree += 3;
	EXPECT_PROBLEM("more problems");
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		mm.free_blocks[o] -= 1;
	mm.nfree = save;
	EXPECT_HEALTHY();

	struct lmm fresh;
	lmm_begin(&fresh, &cfg);
	host_log_clear();
	CHECK(lmm_check(&fresh) == 1 && host_log_contains("not initialised"), "check before init");
}

static void dump_logs_every_counter(void)
{
	populate();
	host_log_clear();
	host_log_verbose(false);
	lmm_free_pages(&mm, page, 3); /* one refusal for the "refused" lines */
	lmm_dump(&mm);
	CHECK(host_log_contains("free blocks by order"), "no free block line");
	CHECK(host_log_contains("reserve pages handed out"), "no reserve line");
	CHECK(host_log_contains("cpu 0: cache"), "no per-CPU line");
	CHECK(host_log_contains("refused 1 x"), "no refusal line");
}

int main(void)
{
	TEST(check_names_counter_corruption);
	TEST(check_names_frame_corruption);
	TEST(check_names_list_corruption);
	TEST(check_names_stack_corruption);
	TEST(dump_logs_every_counter);
	host_arena_unmap();
	return testlib_exit();
}

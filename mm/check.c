/*
 * check.c - observability and self-verification: counters, dump, the full invariant
 * check, and the debug poisoning of freed pages.
 *
 * lmm_check() trusts nothing: it rebuilds every counter from the frame array and the
 * lists and compares.  Tests call it after every phase; it is O(frames) with the lock
 * held, so it is for tests and debugging, never for a hot path.
 */
#include "internal.h"

void lmm_get_stats(struct lmm *mm, struct lmm_stats *out)
{
	unsigned char *p = (unsigned char *)out;
	for (size_t i = 0; i < sizeof(*out); i++)
		p[i] = 0;
	lmm_check_canary(mm);

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	out->managed = mm->nframes;
	out->free = mm->nfree;
	out->allocated = mm->nallocated;
	out->pool = mm->npool;
	out->reserved = mm->nreserved_pages;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		out->free_blocks[o] = mm->free_blocks[o];
	out->alloc_calls = mm->alloc_calls;
	out->alloc_failures = mm->alloc_failures;
	out->free_calls = mm->free_calls;
	out->poison_errors = LMM_READ_ONCE(mm->poison_errors);
	for (unsigned s = 0; s < LMM_STATUS_COUNT; s++) {
		out->refused[s] = mm->refused[s];
		out->refused_total += mm->refused[s];
	}
	out->pool_target = mm->pool_target;
	out->pool_low = mm->pool_low;
	out->pool_low_water = mm->pool_low_water;
	out->pool_hits = mm->pool_hits;
	out->pool_empty_failures = mm->pool_empty_failures;
	out->pool_refills = mm->pool_refills;
	out->pool_refill_pages = mm->pool_refill_pages;
	out->pool_topups = mm->pool_topups;
	out->metadata_bytes = (mm->nframes * sizeof(struct lmm_frame) + LMM_PAGE_SIZE - 1) &
			      ~(uint64_t)(LMM_PAGE_SIZE - 1);
	out->regions = mm->nregions;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
}

void lmm_dump(struct lmm *mm)
{
	struct lmm_stats s;
	lmm_get_stats(mm, &s);

	lmm_logf("lmm: managed %llu pages (%llu MiB) in %u regions, metadata %llu KiB (%u B/frame)",
		 (unsigned long long)s.managed, (unsigned long long)(s.managed >> 8), s.regions,
		 (unsigned long long)(s.metadata_bytes >> 10), (unsigned)sizeof(struct lmm_frame));
	lmm_logf("lmm: free %llu, allocated %llu, pool %llu, reserved %llu",
		 (unsigned long long)s.free, (unsigned long long)s.allocated,
		 (unsigned long long)s.pool, (unsigned long long)s.reserved);

	char line[16 * (LMM_MAX_ORDER + 1) + 16];
	size_t n = 0;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++) {
		unsigned long long v = s.free_blocks[o];
		char tmp[24];
		int k = 0;
		do {
			tmp[k++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		line[n++] = ' ';
		while (k)
			line[n++] = tmp[--k];
	}
	line[n] = '\0';
	lmm_logf("lmm: free blocks by order 0..%u:%s", (unsigned)LMM_MAX_ORDER, line);
	lmm_logf("lmm: pool %llu/%u (low mark %u, low-water %u), hits %llu, empty failures %llu, refills %llu (%llu pages), top-ups by frees %llu",
		 (unsigned long long)s.pool, s.pool_target, s.pool_low, s.pool_low_water,
		 (unsigned long long)s.pool_hits, (unsigned long long)s.pool_empty_failures,
		 (unsigned long long)s.pool_refills, (unsigned long long)s.pool_refill_pages,
		 (unsigned long long)s.pool_topups);
	lmm_logf("lmm: calls: alloc %llu (failed %llu), free %llu; refused %llu",
		 (unsigned long long)s.alloc_calls, (unsigned long long)s.alloc_failures,
		 (unsigned long long)s.free_calls, (unsigned long long)s.refused_total);
	for (unsigned st = 1; st < LMM_STATUS_COUNT; st++)
		if (s.refused[st])
			lmm_logf("lmm:   refused %llu x %s", (unsigned long long)s.refused[st],
				 lmm_status_str((enum lmm_status)st));
}

/* ---- lmm_check ----------------------------------------------------------------------- */

/*
 * Problems are found under the lock but logged after it is dropped, so the check keeps
 * the first few in a small buffer and counts the rest.
 */
#define CHECK_KEEP 8

struct check_ctx {
	uint64_t problems;
	unsigned kept;
	struct check_item {
		const char *what;
		uint64_t a, b;
	} keep[CHECK_KEEP];
};

static void problem(struct check_ctx *c, const char *what, uint64_t a, uint64_t b)
{
	if (c->kept < CHECK_KEEP)
		c->keep[c->kept++] = (struct check_item){ what, a, b };
	c->problems++;
}

static uint64_t phys_of(const struct lmm *mm, uint32_t idx)
{
	return lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
}

/* Walk each free list: right state and order, aligned, not mergeable, count agrees. */
static uint64_t check_free_lists(struct lmm *mm, struct check_ctx *c)
{
	uint64_t pages = 0;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++) {
		uint64_t n = 0;
		uint32_t prev = LMM_NIL;
		if (((mm->free_mask >> o) & 1) != (mm->free_head[o] != LMM_NIL))
			problem(c, "free_mask disagrees with list of order", o, mm->free_mask);
		for (uint32_t i = mm->free_head[o]; i != LMM_NIL; i = mm->frames[i].next) {
			if (i >= mm->nframes || n > mm->nframes) {
				problem(c, "free list runs out of the frame array at order", o, i);
				break;
			}
			const struct lmm_frame *f = &mm->frames[i];
			const struct lmm_region *r = lmm_region_of(mm, i);
			uint64_t pfn = lmm_frame_pfn(mm, i);
			if (f->state != LMM_FRAME_FREE || f->order != o)
				problem(c, "free list holds a non-free frame (phys, order)", phys_of(mm, i), o);
			if (f->prev != prev)
				problem(c, "free list back link broken at phys", phys_of(mm, i), f->prev);
			if (pfn & ((1ull << o) - 1))
				problem(c, "free block misaligned (phys, order)", phys_of(mm, i), o);
			if (pfn + (1ull << o) > r->base_pfn + r->npages)
				problem(c, "free block runs past its region (phys, order)", phys_of(mm, i), o);
			uint64_t bpfn = pfn ^ (1ull << o);
			if (o < LMM_MAX_ORDER && bpfn - r->base_pfn < r->npages) {
				const struct lmm_frame *b = &mm->frames[r->first_index + (bpfn - r->base_pfn)];
				if (b->state == LMM_FRAME_FREE && b->order == o)
					problem(c, "free block not merged with its free buddy (phys, order)",
						phys_of(mm, i), o);
			}
			prev = i;
			n++;
		}
		if (n != mm->free_blocks[o])
			problem(c, "free block counter wrong for order (order, walked)", o, n);
		pages += n << o;
	}
	return pages;
}

/* Walk the frames in order: every head's block is followed by exactly its tails. */
static void check_frames(struct lmm *mm, struct check_ctx *c, uint64_t sums[8])
{
	for (uint32_t ri = 0; ri < mm->nregions; ri++) {
		const struct lmm_region *r = &mm->regions[ri];
		uint64_t k = 0;
		while (k < r->npages) {
			uint32_t idx = r->first_index + (uint32_t)k;
			const struct lmm_frame *f = &mm->frames[idx];
			if (f->region != ri)
				problem(c, "frame records the wrong region (phys, region)", phys_of(mm, idx), f->region);
			if (f->state == LMM_FRAME_TAIL || f->state > LMM_FRAME_RESERVED) {
				problem(c, "frame belongs to no block (phys, state)", phys_of(mm, idx), f->state);
				k++;
				continue;
			}
			unsigned o = f->order;
			if (o > LMM_MAX_ORDER || ((r->base_pfn + k) & ((1ull << o) - 1)) || k + (1ull << o) > r->npages) {
				problem(c, "block head with a bad order (phys, order)", phys_of(mm, idx), o);
				o = 0;
			}
			if ((f->state == LMM_FRAME_POOL || f->state == LMM_FRAME_EXCLUSIVE ||
			     f->state == LMM_FRAME_RESERVED) && o != 0)
				problem(c, "single-page state on a larger block (phys, order)", phys_of(mm, idx), o);
			if (f->state == LMM_FRAME_ALLOCATED && f->refcount == 0)
				problem(c, "allocated block with no reference (phys)", phys_of(mm, idx), 0);
			if (f->state == LMM_FRAME_EXCLUSIVE && f->owner == 0)
				problem(c, "exclusive page without an owner (phys)", phys_of(mm, idx), 0);
			for (uint64_t t = 1; t < (1ull << o); t++)
				if (mm->frames[idx + t].state != LMM_FRAME_TAIL)
					problem(c, "block overlaps another block (head phys, frame phys)",
						phys_of(mm, idx), phys_of(mm, idx + (uint32_t)t));
			sums[f->state] += 1ull << o;
			k += 1ull << o;
		}
	}
}

static uint64_t check_pool(struct lmm *mm, struct check_ctx *c)
{
	uint64_t n = 0;
	for (uint32_t i = mm->pool_head; i != LMM_NIL; i = mm->frames[i].next) {
		if (i >= mm->nframes || n > mm->nframes) {
			problem(c, "pool list runs out of the frame array", i, n);
			break;
		}
		if (mm->frames[i].state != LMM_FRAME_POOL)
			problem(c, "pool holds a frame not in the pool state (phys, state)", phys_of(mm, i),
				mm->frames[i].state);
		n++;
	}
	return n;
}

uint64_t lmm_check(struct lmm *mm)
{
	struct check_ctx c = { 0 };
	uint64_t sums[8] = { 0 };
	lmm_check_canary(mm);
	if (mm->phase != LMM_PHASE_READY) {
		lmm_logf("lmm: check: allocator not initialised");
		return 1;
	}

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	uint64_t list_pages = check_free_lists(mm, &c);
	uint64_t pool_pages = check_pool(mm, &c);
	check_frames(mm, &c, sums);

	if (list_pages != mm->nfree || sums[LMM_FRAME_FREE] != mm->nfree)
		problem(&c, "free pages: counter vs lists (counter, lists)", mm->nfree, list_pages);
	if (pool_pages != mm->npool || sums[LMM_FRAME_POOL] != mm->npool)
		problem(&c, "pool pages: counter vs list (counter, list)", mm->npool, pool_pages);
	uint64_t allocated = sums[LMM_FRAME_ALLOCATED] + sums[LMM_FRAME_EXCLUSIVE];
	if (allocated != mm->nallocated)
		problem(&c, "allocated pages: counter vs frames (counter, frames)", mm->nallocated, allocated);
	if (sums[LMM_FRAME_RESERVED] != mm->nreserved_pages)
		problem(&c, "reserved pages: counter vs frames (counter, frames)", mm->nreserved_pages,
			sums[LMM_FRAME_RESERVED]);
	uint64_t total = mm->nfree + mm->nallocated + mm->npool + mm->nreserved_pages;
	if (total != mm->nframes)
		problem(&c, "conservation: free+allocated+pool+reserved != managed", total, mm->nframes);
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	for (unsigned i = 0; i < c.kept; i++)
		lmm_logf("lmm: check: %s: 0x%llx 0x%llx", c.keep[i].what, (unsigned long long)c.keep[i].a,
			 (unsigned long long)c.keep[i].b);
	if (c.problems > c.kept)
		lmm_logf("lmm: check: ... and %llu more problems", (unsigned long long)(c.problems - c.kept));
	return c.problems;
}

/* ---- Debug poisoning -------------------------------------------------------------------- */

void lmm_poison_block_locked(struct lmm *mm, uint32_t idx, unsigned order)
{
	for (uint32_t k = 0; k < (1u << order); k++) {
		uint64_t *w = lmm_frame_virt(mm, idx + k);
		for (size_t i = 0; i < LMM_PAGE_SIZE / sizeof(*w); i++)
			w[i] = LMM_POISON;
		mm->frames[idx + k].flags |= LMM_FRAME_F_POISONED;
	}
}

/* The block is ours now (the lock is not held): check pages poisoned since their free. */
void lmm_poison_verify(struct lmm *mm, uint32_t idx, unsigned order)
{
	for (uint32_t k = 0; k < (1u << order); k++) {
		struct lmm_frame *f = &mm->frames[idx + k];
		if (!(f->flags & LMM_FRAME_F_POISONED))
			continue;
		f->flags &= (uint8_t)~LMM_FRAME_F_POISONED;
		const uint64_t *w = lmm_frame_virt(mm, idx + k);
		for (size_t i = 0; i < LMM_PAGE_SIZE / sizeof(*w); i++) {
			if (w[i] != LMM_POISON) {
				__atomic_fetch_add(&mm->poison_errors, 1, __ATOMIC_RELAXED);
				lmm_logf("lmm: page phys 0x%llx was written after it was freed (offset 0x%llx)",
					 (unsigned long long)(lmm_frame_pfn(mm, idx + k) << LMM_PAGE_SHIFT),
					 (unsigned long long)(i * sizeof(*w)));
				break;
			}
		}
	}
}

/*
 * walk.c - lmm_walk(): physical memory as runs of frames of one kind, in address order,
 * for maps and pictures drawn by the caller.  Read-only; never formats, never allocates.
 *
 * The lock is held for at most WALK_CHUNK_FRAMES frames or WALK_BATCH finished runs,
 * whichever comes first, so a walk over gigabytes never holds off interrupts for long.
 * Runs finished under the lock wait in a small on-stack batch and are handed to the
 * callback after the lock is dropped (the callback may print, or take its own locks).
 *
 * Between two holds the allocator moves on: a resume point that was a block head may
 * have been merged into a bigger block (it is now a TAIL), or split.  The walk then
 * finds the head that covers the resume point now and reports the rest of that block,
 * so runs still tile every frame exactly once, each chunk consistent in itself.
 */
#include "internal.h"

#define WALK_CHUNK_FRAMES 4096u
#define WALK_BATCH 32u

struct walk {
	lmm_walk_fn fn;
	void *ctx;
	struct lmm_run cur; /* the run being extended; npages == 0 before the first */
	struct lmm_run batch[WALK_BATCH];
	unsigned nbatch;
	uint64_t runs;
};

/*
 * The run kind of a head frame.  No default: with -Wall, a frame state added to the enum
 * without a line here is a compile error, not a silently mislabelled map.
 */
static enum lmm_run_kind kind_of(uint8_t state)
{
	switch ((enum lmm_frame_state)state) {
	case LMM_FRAME_FREE: return LMM_RUN_FREE;
	case LMM_FRAME_ALLOCATED: return LMM_RUN_ALLOCATED;
	case LMM_FRAME_EXCLUSIVE: return LMM_RUN_EXCLUSIVE;
	case LMM_FRAME_POOL: return LMM_RUN_POOL;
	case LMM_FRAME_CACHED: return LMM_RUN_CACHED;
	case LMM_FRAME_RESERVED: return LMM_RUN_RESERVED;
	case LMM_FRAME_TAIL: break; /* callers resolve tails to their head first */
	case LMM_FRAME_STATE_COUNT: break;
	}
	lmm_port_fatal("lmm: walk found a frame in an impossible state");
}

/* Extend the current run, or finish it into the batch and start a new one. */
static void add_run(struct walk *w, enum lmm_run_kind kind, uint64_t pfn, uint64_t n, unsigned order)
{
	struct lmm_run *c = &w->cur;
	if (c->npages && c->kind == kind && c->order == order && c->base_pfn + c->npages == pfn) {
		c->npages += n;
		return;
	}
	if (c->npages)
		w->batch[w->nbatch++] = *c;
	*c = (struct lmm_run){ pfn, n, kind, order };
}

/* Deliver the finished runs; lock not held. */
static void flush(struct walk *w)
{
	for (unsigned i = 0; i < w->nbatch; i++)
		w->fn(&w->batch[i], w->ctx);
	w->runs += w->nbatch;
	w->nbatch = 0;
}

/*
 * The head of the block that covers tail frame @idx of region @r (lock held).  A block of
 * order k starts at a pfn aligned to 2^k and every frame inside it is a TAIL, so the first
 * non-TAIL frame at the aligned pfns below @idx, smallest alignment first, is the head.
 */
static uint32_t head_of_locked(struct lmm *mm, const struct lmm_cpu *c, const struct lmm_region *r,
			       uint32_t idx)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint64_t pfn = r->base_pfn + (idx - r->first_index);
	for (unsigned k = 1; k <= LMM_MAX_ORDER; k++) {
		uint64_t hp = pfn & ~((1ull << k) - 1);
		if (hp < r->base_pfn)
			break;
		uint32_t h = r->first_index + (uint32_t)(hp - r->base_pfn);
		const struct lmm_frame t = { .state_order = LMM_READ_ONCE(mm->frames[h].state_order) };
		if (t.state == LMM_FRAME_TAIL)
			continue;
		if (hp + (1ull << t.order) > pfn)
			return h;
		break;
	}
	lmm_port_fatal("lmm: walk found a tail frame outside any block");
}

/*
 * Walk region @r from frame index @pos for one bounded hold; returns where the next hold
 * starts.  The first frame may be a tail (see the file comment); every later step lands on
 * a head because it advances by whole blocks.
 */
static uint32_t walk_chunk_locked(struct lmm *mm, const struct lmm_cpu *c, struct walk *w,
				  const struct lmm_region *r, uint32_t pos)
{
	LMM_ASSERT_LOCKED(mm, c);
	const uint32_t end = r->first_index + (uint32_t)r->npages;
	uint32_t done = 0;

	while (pos < end && done < WALK_CHUNK_FRAMES && w->nbatch < WALK_BATCH) {
		uint32_t head = pos;
		/*
		 * The per-CPU paths store a page's state and order (its use word) without the
		 * lock: both are read at once, whole.
		 */
		struct lmm_frame t = { .state_order = LMM_READ_ONCE(mm->frames[pos].state_order) };
		if (t.state == LMM_FRAME_TAIL) {
			head = head_of_locked(mm, c, r, pos);
			t.state_order = LMM_READ_ONCE(mm->frames[head].state_order);
		}
		enum lmm_run_kind kind = kind_of(t.state);
		unsigned order = t.order;
		uint64_t block_end = (uint64_t)head + (1ull << order);
		if (block_end > end)
			lmm_port_fatal("lmm: walk found a block running past its region");
		uint32_t n = (uint32_t)(block_end - pos);
		add_run(w, kind, r->base_pfn + (pos - r->first_index), n,
			kind == LMM_RUN_FREE ? order : 0);
		pos += n;
		done += n;
	}
	return pos;
}

uint64_t lmm_walk(struct lmm *mm, lmm_walk_fn fn, void *ctx)
{
	lmm_check_canary(mm);
	if (lmm_refuse_context_above(mm, LMM_CTX_NORMAL, "walk", __builtin_return_address(0)))
		return 0;

	struct walk w = { .fn = fn, .ctx = ctx };
	uint64_t next_pfn = 0;

	/* Regions are sorted and disjoint (lmm_init merges them) and never change after it. */
	for (uint32_t i = 0; i < mm->nregions; i++) {
		const struct lmm_region *r = &mm->regions[i];
		if (r->base_pfn > next_pfn)
			add_run(&w, LMM_RUN_HOLE, next_pfn, r->base_pfn - next_pfn, 0);
		uint32_t pos = r->first_index, end = r->first_index + (uint32_t)r->npages;
		while (pos < end) {
			struct lmm_held h;
			const struct lmm_cpu *c = lmm_lock_here(mm, &h);
			pos = walk_chunk_locked(mm, c, &w, r, pos);
			lmm_unlock_here(mm, &h);
			flush(&w);
		}
		next_pfn = r->base_pfn + r->npages;
	}
	/* The last run is still open: nothing after it could have extended it. */
	if (w.cur.npages)
		w.batch[w.nbatch++] = w.cur;
	flush(&w);
	return w.runs;
}

/*
 * buddy.c - the binary buddy allocator: allocation, freeing, splitting, merging.
 *
 * Memory is a set of blocks of 2^k pages (0 <= k <= LMM_MAX_ORDER), each naturally
 * aligned in *physical* page numbers: a block of order k starts at a pfn that is a
 * multiple of 2^k.  Two blocks of order k whose pfns differ only in bit k are buddies;
 * together they form the aligned block of order k+1 that contains them.  So the buddy
 * of the block at pfn p is simply p ^ (1 << k), found without searching.
 *
 * Free blocks sit on free_head[k], a doubly linked list threaded through the frame
 * metadata (never through the free pages themselves: a free page is never touched).
 * Only the first frame of a block - its head - carries the block's state and order;
 * every other frame is LMM_FRAME_TAIL, whether its block is free or allocated.  That
 * invariant is what makes frees checkable in O(1): a pointer into the middle of a
 * block, or into a block that was already merged away, lands on a TAIL frame.
 *
 * Allocation takes a block of exactly the requested order when one exists (placement
 * decides fragmentation: splitting a big block while a small one is free only makes
 * holes).  Otherwise it takes the smallest larger block and splits it down, keeping
 * the lower half and putting each upper half on its list.  free_mask has bit k set
 * while list k is non-empty, so finding that block is one count-trailing-zeros.
 *
 * Freeing walks the other way: while the buddy is a free block of the same order in
 * the same region, unlink it and merge, then put the result on its list.  Blocks never
 * span regions, so a buddy that falls outside the region simply stops the merge.
 *
 * Both loops are bounded by LMM_MAX_ORDER iterations and never recurse.  Everything in
 * this file that touches lists or frame state runs with mm->lock held.
 */
#include "internal.h"

uint32_t lmm_buddy_alloc_locked(struct lmm *mm, unsigned order)
{
	uint32_t avail = mm->free_mask >> order;
	if (unlikely(!avail))
		return LMM_NIL;

	unsigned o = order + (unsigned)__builtin_ctz(avail);
	uint32_t idx = mm->free_head[o];
	lmm_list_del_locked(mm, o, idx);

	while (o > order) {
		o--;
		lmm_list_add_locked(mm, o, idx + (1u << o));
	}
	mm->frames[idx].order = (uint8_t)order;
	mm->nfree -= 1ull << order;
	return idx;
}

void lmm_buddy_free_locked(struct lmm *mm, uint32_t idx, unsigned order)
{
	struct lmm_frame *f = &mm->frames[idx];
	const struct lmm_region *r = &mm->regions[f->region];
	uint64_t rel = idx - r->first_index; /* pfn relative to the region's base */
	uint64_t base = r->base_pfn;

	mm->nfree += 1ull << order;
	while (order < LMM_MAX_ORDER) {
		/* Buddy of pfn p is p ^ 2^order; work region-relative to stay in bounds. */
		uint64_t buddy_rel = ((base + rel) ^ (1ull << order)) - base;
		if (buddy_rel >= r->npages)
			break;
		uint32_t bidx = r->first_index + (uint32_t)buddy_rel;
		struct lmm_frame *b = &mm->frames[bidx];
		if (b->state != LMM_FRAME_FREE || b->order != order)
			break;
		lmm_list_del_locked(mm, order, bidx);
		/* The lower of the two becomes the head of the merged block. */
		if (bidx < idx) {
			f->state = LMM_FRAME_TAIL;
			f->order = 0;
			f = b;
			idx = bidx;
			rel = buddy_rel;
		} else {
			b->state = LMM_FRAME_TAIL;
			b->order = 0;
		}
		order++;
	}
	lmm_list_add_locked(mm, order, idx);
}

/* ---- Public allocation ----------------------------------------------------------- */

static void *refuse_alloc(struct lmm *mm, enum lmm_status st, unsigned order, lmm_gfp_t gfp,
			  const void *caller)
{
	lmm_count_refusal(mm, st);
	lmm_logf("lmm: refused alloc (order %u, gfp 0x%x, caller %p): %s", order, gfp, caller,
		 lmm_status_str(st));
	return NULL;
}

static void zero_block(void *p, unsigned order)
{
	uint64_t *w = p;
	size_t n = (LMM_PAGE_SIZE << order) / sizeof(*w);
	for (size_t i = 0; i < n; i++)
		w[i] = 0;
}

/* Takes the block off the free structures and stamps its head; lock held. */
static uint32_t take_block_locked(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	uint32_t idx = LMM_NIL;

	/* Reserve users are served from the pool first: O(1), and no splitting. */
	if (order == 0 && (gfp & LMM_GFPB_RESERVE) && mm->pool_head != LMM_NIL) {
		idx = lmm_pool_pop_locked(mm);
		mm->pool_hits++;
	} else {
		idx = lmm_buddy_alloc_locked(mm, order);
	}
	if (unlikely(idx == LMM_NIL)) {
		mm->alloc_failures++;
		if (gfp & LMM_GFPB_RESERVE)
			mm->pool_empty_failures++;
		return LMM_NIL;
	}

	struct lmm_frame *f = &mm->frames[idx];
	if (gfp & LMM_GFPB_EXCLUSIVE) {
		f->state = LMM_FRAME_EXCLUSIVE;
		f->owner = owner;
		f->refcount = 0;
	} else {
		f->state = LMM_FRAME_ALLOCATED;
		f->owner = 0;
		f->refcount = 1;
	}
	mm->nallocated += 1ull << order;
	return idx;
}

void *lmm_alloc_pages_owned(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	if (unlikely(order > LMM_MAX_ORDER))
		return refuse_alloc(mm, LMM_ERR_BAD_ORDER, order, gfp, __builtin_return_address(0));
	if (unlikely((gfp & ~LMM_GFPB_ALL) || ((gfp & LMM_GFPB_EXCLUSIVE) && order != 0)))
		return refuse_alloc(mm, LMM_ERR_BAD_FLAGS, order, gfp, __builtin_return_address(0));
	if (unlikely((gfp & LMM_GFPB_EXCLUSIVE) && owner == 0))
		return refuse_alloc(mm, LMM_ERR_BAD_OWNER, order, gfp, __builtin_return_address(0));
#if LMM_DEBUG
	/* A KERNEL caller may one day wait for memory; it must be in normal context. */
	if (!(gfp & LMM_GFPB_NOWAIT) && unlikely(lmm_port_context() != LMM_CTX_NORMAL))
		return refuse_alloc(mm, LMM_ERR_BAD_CONTEXT, order, gfp, __builtin_return_address(0));
#endif

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->alloc_calls++;
	uint32_t idx = take_block_locked(mm, order, gfp, owner);
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	if (unlikely(idx == LMM_NIL))
		return NULL;
	void *p = lmm_frame_virt(mm, idx);
#if LMM_DEBUG
	if (mm->cfg.flags & LMM_CFG_POISON)
		lmm_poison_verify(mm, idx, order);
#endif
	if (gfp & LMM_GFPB_ZERO)
		zero_block(p, order);
	return p;
}

void *lmm_alloc_pages(struct lmm *mm, unsigned order, lmm_gfp_t gfp)
{
	uint16_t owner = (gfp & LMM_GFPB_EXCLUSIVE) ? lmm_port_owner() : 0;
	return lmm_alloc_pages_owned(mm, order, gfp, owner);
}

/* ---- Public freeing ---------------------------------------------------------------- */

/*
 * Validate and release under the lock.  Returns LMM_OK when the reference was dropped
 * (and the block freed if it was the last); fills @why otherwise.
 */
static enum lmm_status free_locked(struct lmm *mm, uint32_t idx, unsigned order, uint16_t owner,
				   bool ask_owner, bool may_refill, struct lmm_refusal *why)
{
	struct lmm_frame *f = &mm->frames[idx];

	switch (f->state) {
	case LMM_FRAME_ALLOCATED:
		if (unlikely(f->order != order))
			goto refuse_order;
		if (f->refcount > 1) {
			f->refcount--;
			return LMM_OK;
		}
		break;
	case LMM_FRAME_EXCLUSIVE:
		if (unlikely(f->order != order))
			goto refuse_order;
		if (ask_owner)
			owner = lmm_port_owner();
		if (unlikely(f->owner != owner)) {
			why->owner = f->owner;
			why->caller = owner;
			return LMM_ERR_WRONG_OWNER;
		}
		break;
	default:
		why->state = f->state;
		why->found_order = f->order;
		return lmm_state_refusal(f->state);
	}

	f->refcount = 0;
	f->owner = 0;
	mm->nallocated -= 1ull << order;
#if LMM_DEBUG
	if (mm->cfg.flags & LMM_CFG_POISON)
		lmm_poison_block_locked(mm, idx, order);
#endif
	/* Normal-context frees top the pool up first: the cheapest refill there is. */
	if (order == 0 && may_refill && mm->npool < mm->pool_target) {
		lmm_pool_push_locked(mm, idx);
		mm->pool_topups++;
	} else
		lmm_buddy_free_locked(mm, idx, order);
	return LMM_OK;

refuse_order:
	why->state = f->state;
	why->found_order = f->order;
	return LMM_ERR_WRONG_ORDER;
}

/* @ask_owner: the caller did not name an owner; ask the port if the page is exclusive. */
static enum lmm_status free_common(struct lmm *mm, void *ptr, unsigned order, uint16_t owner,
				   bool ask_owner)
{
	if (!ptr)
		return LMM_OK;

	struct lmm_refusal why = { "free", ptr, LMM_PHYS_INVALID, order, 0, 0, 0, owner };
	uint32_t idx;
	enum lmm_status st = lmm_locate(mm, ptr, &idx);
	if (st == LMM_OK && unlikely(order > LMM_MAX_ORDER)) {
		st = LMM_ERR_BAD_ORDER;
		why.phys = lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
	}
	if (unlikely(st != LMM_OK)) {
		lmm_count_refusal(mm, st);
		lmm_report_refusal(mm, st, &why);
		return st;
	}

	/* Only ask the port for the context when the answer could matter. */
	bool may_refill = false;
	if (order == 0 && LMM_READ_ONCE(mm->npool) < LMM_READ_ONCE(mm->pool_target))
		may_refill = lmm_port_context() == LMM_CTX_NORMAL;

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->free_calls++;
	st = free_locked(mm, idx, order, owner, ask_owner, may_refill, &why);
	if (unlikely(st != LMM_OK))
		mm->refused[st]++;
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	if (unlikely(st != LMM_OK)) {
		why.phys = lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
		lmm_report_refusal(mm, st, &why);
	}
	return st;
}

enum lmm_status lmm_free_pages_owned(struct lmm *mm, void *ptr, unsigned order, uint16_t owner)
{
	return free_common(mm, ptr, order, owner, false);
}

enum lmm_status lmm_free_pages(struct lmm *mm, void *ptr, unsigned order)
{
	return free_common(mm, ptr, order, 0, true);
}

enum lmm_status lmm_page_put(struct lmm *mm, void *ptr, unsigned order)
{
	return lmm_free_pages(mm, ptr, order);
}

/* ---- Translation ------------------------------------------------------------------------ */

uint64_t lmm_virt_to_phys(const struct lmm *mm, const void *ptr)
{
	uint32_t idx;
	if (lmm_locate(mm, (const void *)((uintptr_t)ptr & ~(uintptr_t)(LMM_PAGE_SIZE - 1)), &idx) != LMM_OK)
		return LMM_PHYS_INVALID;
	return (lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT) | ((uintptr_t)ptr & (LMM_PAGE_SIZE - 1));
}

void *lmm_phys_to_virt(const struct lmm *mm, uint64_t phys)
{
	uint32_t idx = lmm_pfn_index(mm, phys >> LMM_PAGE_SHIFT);
	if (idx == LMM_NIL)
		return NULL;
	return (char *)lmm_frame_virt(mm, idx) + (phys & (LMM_PAGE_SIZE - 1));
}

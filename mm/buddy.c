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

/*
 * Both loops keep the frame array, the region's geometry and free_mask in locals: the
 * frame state is a byte, and a byte store may alias anything, so fields re-read from
 * *mm on every level would cost a load each.
 */
static inline __attribute__((always_inline)) uint32_t buddy_alloc_locked(struct lmm *mm, unsigned order)
{
	uint32_t mask = mm->free_mask;
	if (unlikely(!(mask >> order)))
		return LMM_NIL;

	struct lmm_frame *const frames = mm->frames;
	unsigned o = order + (unsigned)__builtin_ctz(mask >> order);
	uint32_t idx = mm->free_head[o];
	uint32_t next = frames[idx].next;
	mm->free_head[o] = next;
	if (next != LMM_NIL)
		frames[next].prev = LMM_NIL;
	else
		mask &= ~(1u << o);
	mm->free_blocks[o]--;

	/*
	 * Lists order..o-1 were empty (o is the smallest non-empty order >= order), so
	 * each upper half becomes the only block on its list.
	 */
	while (o > order) {
		o--;
		uint32_t hi = idx + (1u << o);
		struct lmm_frame *h = &frames[hi];
		h->next = LMM_NIL;
		h->prev = LMM_NIL;
		h->state = LMM_FRAME_FREE;
		h->order = (uint8_t)o;
		mm->free_head[o] = hi;
		mm->free_blocks[o] = 1;
		mask |= 1u << o;
	}
	mm->free_mask = mask;
	frames[idx].order = (uint8_t)order;
	mm->nfree -= 1ull << order;
	return idx;
}

static inline __attribute__((always_inline)) void buddy_free_locked(struct lmm *mm, uint32_t idx,
								    unsigned order)
{
	struct lmm_frame *const frames = mm->frames;
	const struct lmm_region *r = &mm->regions[frames[idx].region];
	const uint64_t first = r->first_index, npages = r->npages;
	const uint64_t delta = r->base_pfn - first; /* pfn = index + delta */
	uint32_t mask = mm->free_mask;

	mm->nfree += 1ull << order;
	while (order < LMM_MAX_ORDER) {
		/* Buddy of pfn p is p ^ 2^order; a buddy outside the region stops the merge. */
		uint64_t bidx = ((idx + delta) ^ (1ull << order)) - delta;
		if (bidx - first >= npages)
			break;
		struct lmm_frame *b = &frames[bidx];
		if (b->state != LMM_FRAME_FREE || b->order != order)
			break;
		uint32_t bn = b->next, bp = b->prev;
		if (bp != LMM_NIL) {
			frames[bp].next = bn;
		} else {
			mm->free_head[order] = bn;
			if (bn == LMM_NIL)
				mask &= ~(1u << order);
		}
		if (bn != LMM_NIL)
			frames[bn].prev = bp;
		mm->free_blocks[order]--;
		/* The lower of the two heads the merged block; the higher becomes a tail. */
		uint32_t hi = bidx > idx ? (uint32_t)bidx : idx;
		frames[hi].state = LMM_FRAME_TAIL;
		frames[hi].order = 0;
		idx = bidx < idx ? (uint32_t)bidx : idx;
		order++;
	}

	mm->free_mask = mask;
	lmm_list_add_locked(mm, order, idx);
}

/* Whether the order-0 buddy of allocated page @idx is a free order-0 block. */
static inline bool buddy_is_free_locked(const struct lmm *mm, const struct lmm_frame *f, uint32_t idx)
{
	const struct lmm_region *r = &mm->regions[f->region];
	uint64_t delta = r->base_pfn - r->first_index; /* pfn = index + delta */
	uint64_t bidx = ((idx + delta) ^ 1) - delta;
	if (bidx - r->first_index >= r->npages)
		return false;
	const struct lmm_frame *b = &mm->frames[bidx];
	return b->state == LMM_FRAME_FREE && b->order == 0;
}

/* Out-of-line entry points for pool.c. */
uint32_t lmm_buddy_alloc_locked(struct lmm *mm, unsigned order)
{
	return buddy_alloc_locked(mm, order);
}

void lmm_buddy_free_locked(struct lmm *mm, uint32_t idx, unsigned order)
{
	buddy_free_locked(mm, idx, order);
}

/* ---- Public allocation ----------------------------------------------------------- */

/*
 * The hot paths below are written for the common case (a valid order-0 or small
 * request, a valid free) and push everything else into out-of-line functions, so a
 * pair costs little more than the port's lock.  Validation is not skipped: every
 * check is still made, in as few instructions as the layout allows.
 */
#define cold __attribute__((noinline, cold))

static cold void *refuse_alloc(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner,
			       const void *caller)
{
	enum lmm_status st = LMM_ERR_BAD_CONTEXT;
	if (order > LMM_MAX_ORDER)
		st = LMM_ERR_BAD_ORDER;
	else if ((gfp & ~LMM_GFPB_ALL) || ((gfp & LMM_GFPB_EXCLUSIVE) && order != 0))
		st = LMM_ERR_BAD_FLAGS;
	else if ((gfp & LMM_GFPB_EXCLUSIVE) && owner == 0)
		st = LMM_ERR_BAD_OWNER;
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

/* Out of line: what the common allocation does not need. */
static cold void *alloc_finish_slow(struct lmm *mm, void *p, uint32_t idx, unsigned order,
				    lmm_gfp_t gfp)
{
#if LMM_DEBUG
	if (mm->cfg.flags & LMM_CFG_POISON)
		lmm_poison_verify(mm, idx, order);
#else
	(void)mm;
	(void)idx;
#endif
	if (gfp & LMM_GFPB_ZERO)
		zero_block(p, order);
	return p;
}

/*
 * Take a block for the request and stamp its head; lock held.  Reserve users are
 * served from the pool first: O(1), and no splitting.
 */
static inline uint32_t take_block_locked(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	uint32_t idx;

	if (order == 0 && (gfp & LMM_GFPB_RESERVE) && mm->pool_head != LMM_NIL) {
		idx = lmm_pool_pop_locked(mm);
		mm->pool_hits++;
	} else {
		idx = buddy_alloc_locked(mm, order);
		if (unlikely(idx == LMM_NIL)) {
			mm->alloc_failures++;
			if (order == 0 && (gfp & LMM_GFPB_RESERVE)) /* pool and buddy both empty */
				mm->pool_empty_failures++;
			return LMM_NIL;
		}
	}

	struct lmm_frame *f = &mm->frames[idx];
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;
	f->state = excl ? LMM_FRAME_EXCLUSIVE : LMM_FRAME_ALLOCATED;
	f->owner = owner; /* 0 unless exclusive: lmm_alloc_pages_owned checks */
	f->refcount = !excl;
	mm->nallocated += 1ull << order;
	return idx;
}

/* Every request but a plain order-0 one that finds list 0 non-empty. */
static cold void *alloc_general(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner,
				const void *caller)
{
	/* One test for every malformed request; the cold path finds out which. */
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;
	if (order > LMM_MAX_ORDER || (gfp & ~LMM_GFPB_ALL) || (excl && (order || !owner)))
		return refuse_alloc(mm, order, gfp, owner, caller);
	if (!excl)
		owner = 0;
#if LMM_DEBUG
	if (!(gfp & LMM_GFPB_NOWAIT) && lmm_port_context() != LMM_CTX_NORMAL)
		return refuse_alloc(mm, order, gfp, owner, caller);
#endif
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->alloc_calls++;
	uint32_t idx = take_block_locked(mm, order, gfp, owner);
	lmm_port_unlock_irqrestore(&mm->lock, fl);
	if (idx == LMM_NIL)
		return NULL;
	void *p = lmm_frame_virt(mm, idx);
	if ((gfp & LMM_GFPB_ZERO) || (LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON)))
		return alloc_finish_slow(mm, p, idx, order, gfp);
	return p;
}

/*
 * The common case, open-coded: an order-0 KERNEL or NOWAIT request (no pool, no
 * exclusivity, no zeroing, no poisoning) and a non-empty list 0: pop it, no split.
 */
static inline void *alloc_order0_fast(struct lmm *mm, lmm_gfp_t gfp, const void *caller)
{
#if LMM_DEBUG
	/* A KERNEL caller may one day wait for memory; it must be in normal context. */
	if (!(gfp & LMM_GFPB_NOWAIT) && unlikely(lmm_port_context() != LMM_CTX_NORMAL))
		return refuse_alloc(mm, 0, gfp, 0, caller);
#else
	(void)gfp;
	(void)caller;
#endif
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->alloc_calls++;
	uint32_t idx = mm->free_head[0];
	if (unlikely(idx == LMM_NIL)) {
		idx = take_block_locked(mm, 0, gfp, 0);
		lmm_port_unlock_irqrestore(&mm->lock, fl);
		return idx == LMM_NIL ? NULL : lmm_frame_virt(mm, idx);
	}
	struct lmm_frame *f = &mm->frames[idx];
	uint32_t next = f->next;
	mm->free_head[0] = next;
	if (next != LMM_NIL)
		mm->frames[next].prev = LMM_NIL;
	else
		mm->free_mask &= ~1u;
	mm->free_blocks[0]--;
	mm->nfree--;
	mm->nallocated++;
	f->state = LMM_FRAME_ALLOCATED;
	f->refcount = 1;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
	return lmm_frame_virt(mm, idx);
}

/*
 * The atomic path, open-coded: an order-0 ATOMIC request (exclusive or not) while the
 * pool has a page: one unlink under the lock.  An empty pool takes the general path.
 */
static inline void *alloc_pool_fast(struct lmm *mm, lmm_gfp_t gfp, uint16_t owner, const void *caller)
{
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	uint32_t idx = mm->pool_head;
	if (unlikely(idx == LMM_NIL)) {
		lmm_port_unlock_irqrestore(&mm->lock, fl);
		return alloc_general(mm, 0, gfp, owner, caller);
	}
	struct lmm_frame *f = &mm->frames[idx];
	mm->pool_head = f->next;
	f->next = LMM_NIL;
	LMM_WRITE_ONCE(mm->npool, mm->npool - 1);
	if (mm->npool < mm->pool_low_water)
		mm->pool_low_water = mm->npool;
	mm->pool_hits++;
	mm->alloc_calls++;
	mm->nallocated++;
	f->state = excl ? LMM_FRAME_EXCLUSIVE : LMM_FRAME_ALLOCATED;
	f->owner = excl ? owner : 0;
	f->refcount = !excl;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
	return lmm_frame_virt(mm, idx);
}

/* Requests the open-coded paths take; anything else (and any bad request) is general. */
#define LMM_GFP_POOL_FAST (LMM_GFPB_NOWAIT | LMM_GFPB_RESERVE)

void *lmm_alloc_pages_owned(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	const void *caller = __builtin_return_address(0);
	if (likely(order == 0 && !(LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON)))) {
		if (!(gfp & ~LMM_GFPB_NOWAIT))
			return alloc_order0_fast(mm, gfp, caller);
		if ((gfp & ~LMM_GFPB_EXCLUSIVE) == LMM_GFP_POOL_FAST && (owner || !(gfp & LMM_GFPB_EXCLUSIVE)))
			return alloc_pool_fast(mm, gfp, owner, caller);
	}
	return alloc_general(mm, order, gfp, owner, caller);
}

void *lmm_alloc_pages(struct lmm *mm, unsigned order, lmm_gfp_t gfp)
{
	const void *caller = __builtin_return_address(0);
	if (likely(order == 0 && !(LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON)))) {
		if (!(gfp & ~LMM_GFPB_NOWAIT))
			return alloc_order0_fast(mm, gfp, caller);
		if ((gfp & ~LMM_GFPB_EXCLUSIVE) == LMM_GFP_POOL_FAST)
			return alloc_pool_fast(mm, gfp, (gfp & LMM_GFPB_EXCLUSIVE) ? lmm_port_owner() : 0,
					       caller);
	}
	uint16_t owner = (gfp & LMM_GFPB_EXCLUSIVE) ? lmm_port_owner() : 0;
	return alloc_general(mm, order, gfp, owner, caller);
}

/* ---- Public freeing ---------------------------------------------------------------- */

/*
 * Return a block whose last reference is gone; lock held.  Normal-context frees top
 * the pool up first: the cheapest refill there is.
 */
static inline void release_locked(struct lmm *mm, struct lmm_frame *f, uint32_t idx, unsigned order,
				  bool may_refill)
{
	f->refcount = 0;
	f->owner = 0;
	mm->nallocated -= 1ull << order;
#if LMM_DEBUG
	if (unlikely(mm->cfg.flags & LMM_CFG_POISON))
		lmm_poison_block_locked(mm, idx, order);
#endif
	if (order == 0 && may_refill && mm->npool < mm->pool_target) {
		lmm_pool_push_locked(mm, idx);
		mm->pool_topups++;
	} else {
		buddy_free_locked(mm, idx, order);
	}
}

/*
 * Everything but "the last reference to an ordinary block of the right order": shared
 * blocks, exclusive pages (owner check) and every kind of bad free.  Lock held.
 * Returns LMM_OK when the reference was dropped; fills @why otherwise.
 */
static cold enum lmm_status free_slow_locked(struct lmm *mm, uint32_t idx, unsigned order,
					     uint16_t owner, bool ask_owner, bool may_refill,
					     struct lmm_refusal *why)
{
	struct lmm_frame *f = &mm->frames[idx];

	why->state = f->state;
	why->found_order = f->order;
	switch (f->state) {
	case LMM_FRAME_ALLOCATED:
		if (f->order != order)
			return LMM_ERR_WRONG_ORDER;
		if (f->refcount > 1) {
			f->refcount--;
			return LMM_OK;
		}
		break;
	case LMM_FRAME_EXCLUSIVE:
		if (f->order != order)
			return LMM_ERR_WRONG_ORDER;
		if (ask_owner)
			owner = lmm_port_owner();
		if (f->owner != owner) {
			why->owner = f->owner;
			why->caller = owner;
			return LMM_ERR_WRONG_OWNER;
		}
		break;
	default:
		return lmm_state_refusal(f->state);
	}
	release_locked(mm, f, idx, order, may_refill);
	return LMM_OK;
}

static cold enum lmm_status refuse_free(struct lmm *mm, enum lmm_status st, void *ptr, unsigned order,
					uint32_t idx, struct lmm_refusal *why)
{
	why->op = "free";
	why->ptr = ptr;
	why->order = order;
	why->phys = idx == LMM_NIL ? LMM_PHYS_INVALID : lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
	lmm_report_refusal(mm, st, why);
	return st;
}

/*
 * The common case, open-coded: the last reference to an order-0 page (ordinary, or
 * exclusive and freed by its owner) that goes back to the pool (normal context, pool
 * below target), onto list 0 (its buddy is not free), or merges upward.  Returns false,
 * having changed nothing, for anything else; the general path then starts over.
 */
static inline __attribute__((always_inline)) bool free_order0_fast(struct lmm *mm, void *ptr,
								uint16_t owner, bool ask_owner)
{
	uint32_t idx;
	if (unlikely(lmm_locate(mm, ptr, &idx) != LMM_OK) || (LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON)))
		return false;
	/* Only ask the port for the context when the answer could matter. */
	bool to_pool = LMM_READ_ONCE(mm->npool) < LMM_READ_ONCE(mm->pool_target) &&
		       lmm_port_context() == LMM_CTX_NORMAL;

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	struct lmm_frame *f = &mm->frames[idx];
	bool mine = f->state == LMM_FRAME_ALLOCATED ? f->refcount == 1
		  : f->state == LMM_FRAME_EXCLUSIVE && f->owner == (ask_owner ? lmm_port_owner() : owner);
	if (unlikely(!mine || f->order != 0))
		goto general;
	f->refcount = 0;
	f->owner = 0;
	if (to_pool && mm->npool < mm->pool_target) {
		lmm_pool_push_locked(mm, idx);
		mm->pool_topups++;
	} else if (!buddy_is_free_locked(mm, f, idx)) {
		lmm_list_add_locked(mm, 0, idx);
		mm->nfree++;
	} else {
		lmm_buddy_free_locked(mm, idx, 0); /* merges upward */
	}
	mm->free_calls++;
	mm->nallocated--;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
	return true;

general:
	lmm_port_unlock_irqrestore(&mm->lock, fl);
	return false;
}

/* @ask_owner: the caller did not name an owner; ask the port if the page is exclusive. */
static cold enum lmm_status free_general(struct lmm *mm, void *ptr, unsigned order, uint16_t owner,
					 bool ask_owner)
{
	if (!ptr)
		return LMM_OK;

	struct lmm_refusal why;
	uint32_t idx = LMM_NIL;
	enum lmm_status st = lmm_locate(mm, ptr, &idx);
	if (unlikely(st != LMM_OK || order > LMM_MAX_ORDER)) {
		if (st == LMM_OK)
			st = LMM_ERR_BAD_ORDER;
		else
			idx = LMM_NIL;
		lmm_count_refusal(mm, st);
		why.state = 0;
		why.found_order = 0;
		return refuse_free(mm, st, ptr, order, idx, &why);
	}

	/* Only ask the port for the context when the answer could matter. */
	bool may_refill = false;
	if (order == 0 && LMM_READ_ONCE(mm->npool) < LMM_READ_ONCE(mm->pool_target))
		may_refill = lmm_port_context() == LMM_CTX_NORMAL;

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->free_calls++;
	struct lmm_frame *f = &mm->frames[idx];
	if (likely(f->state == LMM_FRAME_ALLOCATED && f->order == order && f->refcount == 1)) {
		release_locked(mm, f, idx, order, may_refill);
		lmm_port_unlock_irqrestore(&mm->lock, fl);
		return LMM_OK;
	}
	st = free_slow_locked(mm, idx, order, owner, ask_owner, may_refill, &why);
	if (st != LMM_OK)
		mm->refused[st]++;
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	if (st != LMM_OK)
		return refuse_free(mm, st, ptr, order, idx, &why);
	return LMM_OK;
}

enum lmm_status lmm_free_pages_owned(struct lmm *mm, void *ptr, unsigned order, uint16_t owner)
{
	if (order == 0 && ptr && free_order0_fast(mm, ptr, owner, false))
		return LMM_OK;
	return free_general(mm, ptr, order, owner, false);
}

enum lmm_status lmm_free_pages(struct lmm *mm, void *ptr, unsigned order)
{
	if (order == 0 && ptr && free_order0_fast(mm, ptr, 0, true))
		return LMM_OK;
	return free_general(mm, ptr, order, 0, true);
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

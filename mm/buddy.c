/*
 * buddy.c - the binary buddy allocator: the free lists, splitting and merging.
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
 * span regions, so a buddy that falls outside the region simply stops the merge.  A
 * buddy held in a per-CPU cache or the pool is CACHED or POOL, never FREE, so it stops
 * the merge too: those pages are the per-CPU layer's until it gives them back here.
 *
 * Both loops are bounded by LMM_MAX_ORDER iterations and never recurse.  Everything in
 * this file runs with mm->lock held; the list helpers below are the only code that
 * links or unlinks a free block.
 */
#include "internal.h"

static inline void list_push(struct lmm *mm, struct lmm_frame *frames, unsigned order, uint32_t idx)
{
	struct lmm_frame *f = &frames[idx];
	uint32_t head = mm->free_head[order];

	f->order = (uint8_t)order;
	f->next = head;
	f->prev = LMM_NIL;
	LMM_WRITE_ONCE(f->state, LMM_FRAME_FREE);
	if (head != LMM_NIL)
		frames[head].prev = idx;
	mm->free_head[order] = idx;
	mm->free_mask |= 1u << order;
	mm->free_blocks[order]++;
}

/*
 * list_push() onto a list known to be empty (a split's upper half): no old head to
 * link back, and the caller sets the free_mask bits of a whole split at once.
 */
static inline void list_push_alone(struct lmm *mm, struct lmm_frame *frames, unsigned order, uint32_t idx)
{
	struct lmm_frame *f = &frames[idx];

	f->order = (uint8_t)order;
	f->next = LMM_NIL;
	f->prev = LMM_NIL;
	LMM_WRITE_ONCE(f->state, LMM_FRAME_FREE);
	mm->free_head[order] = idx;
	mm->free_blocks[order] = 1;
}

static inline void list_unlink(struct lmm *mm, struct lmm_frame *frames, unsigned order, const struct lmm_frame *f)
{
	uint32_t next = f->next, prev = f->prev;

	if (prev != LMM_NIL) {
		frames[prev].next = next;
	} else {
		mm->free_head[order] = next;
		if (next == LMM_NIL) /* the list is empty now */
			mm->free_mask &= ~(1u << order);
	}
	if (next != LMM_NIL)
		frames[next].prev = prev;
	mm->free_blocks[order]--;
}

void lmm_buddy_add_block(struct lmm *mm, unsigned order, uint32_t idx)
{
	list_push(mm, mm->frames, order, idx);
	mm->nfree += 1ull << order;
}

uint32_t lmm_buddy_alloc_locked(struct lmm *mm, const struct lmm_cpu *c, unsigned order)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint32_t mask = mm->free_mask >> order;
	if (unlikely(!mask))
		return LMM_NIL;

	struct lmm_frame *const frames = mm->frames;
	const unsigned top = order + lmm_ctz32(mask);
	uint32_t idx = mm->free_head[top];
	list_unlink(mm, frames, top, &frames[idx]);

	/*
	 * Split down: keep the lower half, the upper half goes on its list.  Lists
	 * order .. top-1 are empty (top is the smallest non-empty order that fits), so
	 * each half is alone on its list, and their mask bits are set in one go.
	 */
	for (unsigned o = top; o > order;) {
		o--;
		list_push_alone(mm, frames, o, idx + (1u << o));
	}
	mm->free_mask |= (1u << top) - (1u << order);
	frames[idx].order = (uint8_t)order;
	mm->nfree -= 1ull << order;
	return idx;
}

void lmm_buddy_free_locked(struct lmm *mm, const struct lmm_cpu *c, uint32_t idx, unsigned order)
{
	LMM_ASSERT_LOCKED(mm, c);
	struct lmm_frame *const frames = mm->frames;
	const struct lmm_region *r = &mm->regions[frames[idx].region];
	/* Pages are counted from the region's start: frame rf[k] is at pfn base + k. */
	struct lmm_frame *const rf = &frames[r->first_index];
	const uint64_t base = r->base_pfn, npages = r->npages;
	uint64_t pfn = base + (idx - r->first_index), bit = 1ull << order;
	struct lmm_frame *f = &frames[idx]; /* the head of the block being freed, then merged */

	mm->nfree += bit;
	for (; order < LMM_MAX_ORDER; order++, bit <<= 1) {
		/* Buddy of pfn p is p ^ 2^order; a buddy outside the region stops the merge. */
		const uint64_t boff = (pfn ^ bit) - base;
		if (boff >= npages)
			break;
		struct lmm_frame *b = &rf[boff];
		if (LMM_READ_ONCE(b->state) != LMM_FRAME_FREE || b->order != order)
			break;
		list_unlink(mm, frames, order, b);
		/* The lower of the two heads the merged block; the higher becomes a tail. */
		struct lmm_frame *hi = (pfn & bit) ? f : b;
		f = (pfn & bit) ? b : f;
		LMM_WRITE_ONCE(hi->state, LMM_FRAME_TAIL);
		hi->order = 0;
		pfn &= ~bit;
	}
	list_push(mm, frames, order, (uint32_t)(f - frames));
}

/* ---- Translation ------------------------------------------------------------------------ */

uint64_t lmm_virt_to_phys(const struct lmm *mm, const void *ptr)
{
	uint32_t idx;
	if (lmm_locate_page(mm, ptr, &idx) != LMM_OK)
		return LMM_PHYS_INVALID;
	return lmm_frame_phys(mm, idx) | ((uintptr_t)ptr & (LMM_PAGE_SIZE - 1));
}

void *lmm_phys_to_virt(const struct lmm *mm, uint64_t phys)
{
	uint32_t idx = lmm_pfn_index(mm, phys >> LMM_PAGE_SHIFT);
	if (idx == LMM_NIL)
		return NULL;
	return (char *)lmm_frame_virt(mm, idx) + (phys & (LMM_PAGE_SIZE - 1));
}

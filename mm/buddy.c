/*
 * buddy.c - the binary buddy allocator: the free lists, splitting and merging.
 *
 * Memory is a set of blocks of 2^k pages (0 <= k <= LMM_MAX_ORDER), each naturally
 * aligned in *physical* page numbers: a block of order k starts at a pfn that is a
 * multiple of 2^k.  Two blocks of order k whose pfns differ only in bit k are buddies;
 * together they form the aligned block of order k+1 that contains them.  So the buddy
 * of the block at pfn p is simply p ^ (1 << k), found without searching.
 *
 * Free blocks sit on free_list[k], a doubly linked list threaded through the frame
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

/*
 * Push block @f (index @idx) at the head of list @l.  For the list's order k, @mask_bit
 * is free_mask's bit 1 << k and @free_order is lmm_state_order(LMM_FRAME_FREE, k): the
 * merge loop has both at hand, and the head gets its state and order in one store.
 */
static inline void list_push(struct lmm *mm, struct lmm_frame *frames, struct lmm_free_list *l, uint32_t mask_bit,
			     uint16_t free_order, struct lmm_frame *f, uint32_t idx)
{
	uint32_t head = l->head;

	f->next = head;
	f->prev = LMM_NIL;
	LMM_WRITE_ONCE(f->state_order, free_order);
	if (head != LMM_NIL)
		frames[head].prev = idx;
	l->head = idx;
	l->blocks++;
	mm->free_mask |= mask_bit;
}

/*
 * list_push() onto a list known to be empty (a split's upper half): no old head to
 * link back, and the caller sets the free_mask bits of a whole split at once.
 */
static inline void list_push_alone(struct lmm_free_list *l, struct lmm_frame *f, uint32_t idx, uint16_t state_order)
{
	f->next = LMM_NIL;
	f->prev = LMM_NIL;
	LMM_WRITE_ONCE(f->state_order, state_order);
	l->head = idx;
	l->blocks = 1;
}

/* Unlink @f from list @l; @mask_bit is free_mask's bit for the list's order. */
static inline void list_unlink(struct lmm *mm, struct lmm_frame *frames, struct lmm_free_list *l, uint32_t mask_bit,
			       const struct lmm_frame *f)
{
	uint32_t next = f->next, prev = f->prev;

	if (prev != LMM_NIL) {
		frames[prev].next = next;
	} else {
		l->head = next;
		/* The list is empty now.  Its bit was set (f was on it): an xor clears it. */
		if (next == LMM_NIL)
			mm->free_mask ^= mask_bit;
	}
	if (next != LMM_NIL)
		frames[next].prev = prev;
	l->blocks--;
}

void lmm_buddy_add_block(struct lmm *mm, unsigned order, uint32_t idx)
{
	list_push(mm, mm->frames, &mm->free_list[order], 1u << order, lmm_state_order(LMM_FRAME_FREE, order),
		  &mm->frames[idx], idx);
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
	struct lmm_free_list *l = &mm->free_list[top];
	const uint32_t idx = l->head;
	struct lmm_frame *const f = &frames[idx];
	list_unlink(mm, frames, l, 1u << top, f);

	/*
	 * Split down: keep the lower half, the upper half goes on its list.  Lists
	 * order .. top-1 are empty (top is the smallest non-empty order that fits), so
	 * each half is alone on its list, and their mask bits are set in one go.  Each
	 * level steps the list, the state_order word and the half's size in pages and in
	 * bytes (so the upper half is f plus bytes, with no multiply).
	 */
	uint16_t so = lmm_state_order(LMM_FRAME_FREE, top);
	uint32_t half = 1u << top;
	size_t bytes = sizeof(*f) << top;
	while (l > &mm->free_list[order]) {
		l--;
		half >>= 1;
		bytes >>= 1;
		so -= LMM_ORDER_STEP;
		list_push_alone(l, (struct lmm_frame *)((char *)f + bytes), idx + half, so);
	}
	/* half is 1 << order now (top == order: the loop did not run). */
	mm->free_mask |= (1u << top) - half;
	f->order = (uint8_t)order;
	mm->nfree -= half;
	return idx;
}

void lmm_buddy_free_locked(struct lmm *mm, const struct lmm_cpu *c, uint32_t idx, unsigned order)
{
	LMM_ASSERT_LOCKED(mm, c);
	struct lmm_frame *const frames = mm->frames;
	const struct lmm_region *r = &mm->regions[frames[idx].region];
	/* Regions are contiguous in frames[]: the frame at pfn p is frames[p + to_idx]. */
	const uint64_t to_idx = r->first_index - r->base_pfn; /* modulo 2^64 */
	uint64_t pfn = idx - to_idx, bit = 1ull << order;
	/*
	 * Blocks never span regions: the merge at order k needs the order k+1 block that
	 * holds pfn to lie in the region.  That block starts at or above base iff pfn and
	 * base - 1 differ in a bit above k, and ends at or below base + npages iff pfn and
	 * base + npages do: iff both xors are at least 2^(k+1).  So one bound, computed once,
	 * replaces a region test per level: merges may go on while bit <= last (also capped
	 * at LMM_MAX_ORDER).  With base 0, base - 1 is all ones: the lower end never binds.
	 */
	const uint64_t below = pfn ^ (r->base_pfn - 1), above = pfn ^ (r->base_pfn + r->npages);
	uint64_t last = (below < above ? below : above) >> 1;
	last = last < (1ull << (LMM_MAX_ORDER - 1)) ? last : (1ull << (LMM_MAX_ORDER - 1));
	/*
	 * frames + to_idx, as an integer (as a pointer it could lie outside the array): the
	 * frame of pfn p is at pfn0 + p * 16, one shift and one add per level.
	 */
	const uintptr_t pfn0 = (uintptr_t)frames + (uintptr_t)to_idx * sizeof(*frames);
	struct lmm_frame *f = &frames[idx]; /* the head of the block being freed, then merged */
	struct lmm_free_list *l = &mm->free_list[order];
	/* A buddy merges iff it is FREE with our order: both bytes compared in one. */
	uint16_t want = lmm_state_order(LMM_FRAME_FREE, order);

	mm->nfree += bit;
	for (; bit <= last; l++, bit <<= 1, want += LMM_ORDER_STEP) {
		/* Buddy of pfn p is p ^ 2^order. */
		struct lmm_frame *b = (struct lmm_frame *)(pfn0 + (uintptr_t)(pfn ^ bit) * sizeof(*b));
		if (LMM_READ_ONCE(b->state_order) != want)
			break;
		list_unlink(mm, frames, l, (uint32_t)bit, b);
		/* The lower of the two heads the merged block; the higher becomes a tail. */
		if (pfn & bit) {
			struct lmm_frame *t = f;
			f = b;
			b = t;
			pfn -= bit;
		}
		LMM_WRITE_ONCE(b->state_order, lmm_state_order(LMM_FRAME_TAIL, 0));
	}
	list_push(mm, frames, l, (uint32_t)bit, want, f, (uint32_t)(f - frames));
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

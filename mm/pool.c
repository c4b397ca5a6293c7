/*
 * pool.c - the emergency pool, exclusive ownership, and the atomic exclusive routine.
 *
 * Design.  The pool is a LIFO stack of order-0 frames (state POOL) linked through
 * lmm_frame.next, taken from the buddy lists at init and held apart from them:
 *   - KERNEL callers never see it (only LMM_GFPB_RESERVE callers pop from it), so
 *     normal code can drive the buddy lists to empty and handlers still get pages;
 *   - ATOMIC order-0 requests pop from it first: one unlink under the lock, O(1),
 *     no splitting, so the interrupts-off window on that path is a handful of stores;
 *     only when it is empty do they fall back to the buddy lists (O(MAX_ORDER));
 *   - it is refilled only in normal context: by lmm_pool_refill(), which the kernel
 *     calls from its main loop (bounded batches per lock hold), and by order-0 frees
 *     made in normal context while the pool is below target.  Nothing on the atomic
 *     path ever refills, loops over memory, or waits for anything but mm->lock.
 * The pool shares mm->lock with the buddy lists: one lock keeps every frame's state
 * consistent (a merge reads its buddy's state), and the pool's critical sections are
 * as short as any.
 *
 * Exclusive pages record one owner tag.  They cannot gain references; only the owner
 * frees them, hands them to another owner, or turns them into ordinary pages.
 */
#include "internal.h"

#define POOL_REFILL_BATCH 32 /* pages moved per lock hold: bounds the irqs-off time */

uint32_t lmm_pool_auto_target(uint64_t free_pages)
{
	uint64_t t = free_pages / 128;
	if (t < 16)
		t = 16;
	if (t > 4096)
		t = 4096;
	if (t > free_pages / 8) /* tiny machines: never hoard their memory */
		t = free_pages / 8;
	return (uint32_t)t;
}

void lmm_pool_push_locked(struct lmm *mm, uint32_t idx)
{
	struct lmm_frame *f = &mm->frames[idx];
	f->state = LMM_FRAME_POOL;
	f->order = 0;
	f->next = mm->pool_head;
	mm->pool_head = idx;
	LMM_WRITE_ONCE(mm->npool, mm->npool + 1);
}

uint32_t lmm_pool_pop_locked(struct lmm *mm)
{
	uint32_t idx = mm->pool_head;
	mm->pool_head = mm->frames[idx].next;
	mm->frames[idx].next = LMM_NIL;
	LMM_WRITE_ONCE(mm->npool, mm->npool - 1);
	if (mm->npool < mm->pool_low_water)
		mm->pool_low_water = mm->npool;
	return idx;
}

uint32_t lmm_pool_fill(struct lmm *mm)
{
	uint32_t added = 0;
	for (;;) {
		uint32_t n = 0;
		lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
		while (n < POOL_REFILL_BATCH && mm->npool < mm->pool_target) {
			uint32_t idx = lmm_buddy_alloc_locked(mm, 0);
			if (idx == LMM_NIL)
				break;
			lmm_pool_push_locked(mm, idx);
			n++;
		}
		bool more = n == POOL_REFILL_BATCH && mm->npool < mm->pool_target;
		added += n;
		if (!more && added) {
			mm->pool_refills++;
			mm->pool_refill_pages += added;
		}
		lmm_port_unlock_irqrestore(&mm->lock, fl);
		if (!more)
			return added;
	}
}

uint32_t lmm_pool_refill(struct lmm *mm)
{
	if (lmm_port_context() != LMM_CTX_NORMAL) {
		lmm_count_refusal(mm, LMM_ERR_BAD_CONTEXT);
		lmm_logf("lmm: refused pool refill (caller %p): %s", __builtin_return_address(0),
			 lmm_status_str(LMM_ERR_BAD_CONTEXT));
		return 0;
	}
	lmm_check_canary(mm);
	return lmm_pool_fill(mm);
}

bool lmm_pool_needs_refill(struct lmm *mm)
{
	return LMM_READ_ONCE(mm->npool) < LMM_READ_ONCE(mm->pool_low);
}

void lmm_pool_reset_low_water(struct lmm *mm)
{
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	mm->pool_low_water = mm->npool;
	lmm_port_unlock_irqrestore(&mm->lock, fl);
}

enum lmm_status lmm_pool_set_marks(struct lmm *mm, uint32_t low, uint32_t target)
{
	enum lmm_status st = LMM_OK;
	if (lmm_port_context() != LMM_CTX_NORMAL)
		st = LMM_ERR_BAD_CONTEXT;
	else if (low > target)
		st = LMM_ERR_STATE;
	if (st != LMM_OK) {
		lmm_count_refusal(mm, st);
		lmm_logf("lmm: refused pool marks low=%u target=%u: %s", low, target, lmm_status_str(st));
		return st;
	}

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	LMM_WRITE_ONCE(mm->pool_low, low);
	LMM_WRITE_ONCE(mm->pool_target, target);
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	/* Shrinking returns the surplus to the buddy lists now, a bounded batch per hold. */
	bool more = true;
	while (more) {
		fl = lmm_port_lock_irqsave(&mm->lock);
		for (unsigned n = 0; n < POOL_REFILL_BATCH && mm->npool > mm->pool_target; n++)
			lmm_buddy_free_locked(mm, lmm_pool_pop_locked(mm), 0);
		more = mm->npool > mm->pool_target;
		mm->pool_low_water = mm->npool;
		lmm_port_unlock_irqrestore(&mm->lock, fl);
	}
	return LMM_OK;
}

/* ---- Ownership --------------------------------------------------------------------- */

enum own_op { OWN_GET, OWN_TRANSFER, OWN_UNEXCLUSIVE, OWN_QUERY };

/*
 * One locked body for every ownership operation: locate, check the frame's state,
 * then act.  Refusals are counted under the lock and reported after it.
 */
static enum lmm_status ownership_op(struct lmm *mm, const void *ptr, enum own_op op,
				    uint16_t from, uint16_t to, uint16_t *owner_out)
{
	static const char *const names[] = { "get", "transfer", "unexclusive", "owner query" };
	struct lmm_refusal why = { names[op], ptr, LMM_PHYS_INVALID, 0, 0, 0, 0, from };
	uint32_t idx;
	enum lmm_status st = lmm_locate(mm, ptr, &idx);
	if (st == LMM_OK && op == OWN_TRANSFER && to == 0)
		st = LMM_ERR_BAD_OWNER;
	if (st != LMM_OK) {
		if (op == OWN_QUERY)
			return st;
		lmm_count_refusal(mm, st);
		lmm_report_refusal(mm, st, &why);
		return st;
	}

	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
	struct lmm_frame *f = &mm->frames[idx];
	why.state = f->state;
	why.found_order = f->order;
	why.owner = f->owner;
	if (op == OWN_QUERY) {
		*owner_out = f->state == LMM_FRAME_EXCLUSIVE ? f->owner : 0;
	} else if (f->state == LMM_FRAME_ALLOCATED) {
		if (op != OWN_GET)
			st = LMM_ERR_NOT_EXCLUSIVE;
		else if (f->refcount == UINT16_MAX)
			st = LMM_ERR_REFCOUNT;
		else
			f->refcount++;
	} else if (f->state == LMM_FRAME_EXCLUSIVE) {
		if (op == OWN_GET) {
			st = LMM_ERR_EXCLUSIVE;
		} else if (f->owner != from) {
			st = LMM_ERR_WRONG_OWNER;
		} else if (op == OWN_TRANSFER) {
			f->owner = to;
		} else {
			f->state = LMM_FRAME_ALLOCATED;
			f->owner = 0;
			f->refcount = 1;
		}
	} else {
		st = lmm_state_refusal(f->state);
	}
	if (st != LMM_OK && op != OWN_QUERY)
		mm->refused[st]++;
	lmm_port_unlock_irqrestore(&mm->lock, fl);

	if (st != LMM_OK && op != OWN_QUERY) {
		why.phys = lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
		lmm_report_refusal(mm, st, &why);
	}
	return st;
}

enum lmm_status lmm_page_get(struct lmm *mm, void *ptr)
{
	return ownership_op(mm, ptr, OWN_GET, lmm_port_owner(), 0, NULL);
}

enum lmm_status lmm_page_transfer(struct lmm *mm, void *ptr, uint16_t from, uint16_t to)
{
	return ownership_op(mm, ptr, OWN_TRANSFER, from, to, NULL);
}

enum lmm_status lmm_page_unexclusive(struct lmm *mm, void *ptr, uint16_t owner)
{
	return ownership_op(mm, ptr, OWN_UNEXCLUSIVE, owner, 0, NULL);
}

uint16_t lmm_page_owner(struct lmm *mm, const void *ptr)
{
	uint16_t owner = 0;
	ownership_op(mm, ptr, OWN_QUERY, 0, 0, &owner);
	return owner;
}

/* ---- The atomic exclusive routine ----------------------------------------------------- */

/* Written once at init (before interrupts can use it), read from any context. */
static struct lmm *default_mm;

void lmm_set_default(struct lmm *mm)
{
	__atomic_store_n(&default_mm, mm, __ATOMIC_RELEASE);
}

struct lmm *lmm_default(void)
{
	return __atomic_load_n(&default_mm, __ATOMIC_ACQUIRE);
}

void *labyrinth_void_alloc_page_gfp_atomic_exclusive(void)
{
	struct lmm *mm = lmm_default();
	if (unlikely(!mm))
		return NULL;
	return lmm_alloc_pages_owned(mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, lmm_port_owner());
}

enum lmm_status labyrinth_free_page_atomic_exclusive(void *page)
{
	struct lmm *mm = lmm_default();
	if (unlikely(!mm))
		return page ? LMM_ERR_NOT_MANAGED : LMM_OK;
	return lmm_free_pages_owned(mm, page, 0, lmm_port_owner());
}

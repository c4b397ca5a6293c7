/*
 * pool.c - the emergency pool (the reserve), exclusive ownership, and the atomic
 * exclusive routine.
 *
 * Design.  The reserve is a set of order-0 frames, each flagged LMM_FRAME_F_RESERVE
 * and in state POOL while it waits: most in the shared pool (a LIFO stack under the
 * core lock), a few in each CPU's slice (touched by that CPU alone, interrupts off).
 *   - KERNEL and NOWAIT callers never see it (only LMM_GFPB_RESERVE callers pop from
 *     it), so normal code can drive the buddy lists to empty and handlers still get
 *     pages;
 *   - ATOMIC order-0 requests pop from their CPU's slice first: O(1), no lock; an
 *     empty slice takes half a slice from the shared pool under one lock hold;
 *   - the reserve is a fixed budget of pool_target frames: those waiting (its level:
 *     the shared pool plus every slice) and those handed out to ATOMIC callers.  A
 *     reserve frame remembers it (LMM_FRAME_F_RESERVE), and its free, in any context
 *     and on any CPU, puts it back (this CPU's slice, else the shared pool).  So the
 *     reserve does not leak sideways into normal allocations when handlers free with
 *     interrupts off, and it stays the same compact set of frames instead of drifting
 *     across memory and breaking large blocks: it is never "refilled" with other
 *     frames while its own are merely out;
 *   - frames join the budget from the buddy lists only at init, when the target is
 *     raised (lmm_pool_set_marks, then lmm_pool_refill() or the next non-ATOMIC slow
 *     path, a bounded batch at a time), and leave it only when the target is lowered.
 *     Nothing on the atomic path ever refills, loops over memory, or waits for
 *     anything but the core lock.
 * A reserve frame that its holder never frees is lost to the reserve until it is
 * freed: stats.reserve_held shows how many are out.
 *
 * Exclusive pages record one owner tag.  They cannot gain references; only the owner
 * frees them, hands them to another owner, or turns them into ordinary pages.
 */
#include "internal.h"

#define POOL_SLICE_AUTO 16

uint32_t lmm_pool_auto_target(uint64_t free_pages)
{
	uint64_t t = free_pages >> 7; /* free pages at init / 128 */
	if (t < 16)
		t = 16;
	if (t > 4096)
		t = 4096;
	if (t > free_pages >> 3) /* tiny machines: never hoard their memory */
		t = free_pages >> 3;
	return (uint32_t)t;
}

bool lmm_pool_marks_refused(struct lmm *mm, uint32_t low, uint32_t target, const char *op, const void *caller)
{
	if (likely(low <= target && target <= mm->pool_most))
		return false;
	struct lmm_report r = { .reason = LMM_ERR_BAD_MARKS, .op = op, .phys = LMM_PHYS_INVALID,
				.marks_low = low, .marks_target = target, .caller = caller };
	lmm_refuse(mm, &r);
	return true;
}

uint32_t lmm_reserve_level(const struct lmm *mm)
{
	uint32_t level = LMM_READ_ONCE(mm->npool);
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++)
		level += LMM_READ_ONCE(mm->cpu[i].slice_count);
	return level;
}

uint32_t lmm_reserve_held(const struct lmm *mm)
{
	uint32_t frames = LMM_READ_ONCE(mm->reserve_frames), level = lmm_reserve_level(mm);
	return frames > level ? frames - level : 0; /* a snapshot: other CPUs go on */
}

uint32_t lmm_slice_most(const struct lmm *mm)
{
	uint32_t v = mm->cfg.pool_slice;
	return v == 0 ? POOL_SLICE_AUTO : v == LMM_CPU_OFF ? 0 : v;
}

/* A slice never holds more than half the reserve's share of one CPU. */
uint32_t lmm_slice_size(const struct lmm *mm)
{
	uint32_t most = lmm_slice_most(mm), share = mm->pool_target / (2 * LMM_PORT_MAX_CPUS);
	return most < share ? most : share;
}

/*
 * The slice size the per-CPU layer fills to (read there without the lock): none while
 * the reserve holds more frames than its target, so that every reserve frame freed in
 * the meantime reaches the core, which takes it out (core_place_locked()).
 */
static void slice_resize_locked(struct lmm *mm)
{
	LMM_WRITE_ONCE(mm->pool_slice, mm->reserve_frames > mm->pool_target ? 0 : lmm_slice_size(mm));
}

/*
 * A frame leaves the reserve for the buddy lists (the target was lowered).  Frames
 * join and leave only under the lock, so reserve_frames is exact, unlike a sum of
 * per-CPU figures read while other CPUs move frames between their slices and callers.
 */
void lmm_reserve_leave_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t idx)
{
	LMM_ASSERT_LOCKED(mm, c);
	mm->frames[idx].flags &= (uint8_t)~LMM_FRAME_F_RESERVE;
	LMM_WRITE_ONCE(mm->reserve_frames, mm->reserve_frames - 1);
	slice_resize_locked(mm);
}

/*
 * Move up to @max frames from the buddy lists into the shared pool, until the reserve
 * (waiting and handed out) reaches its target.
 */
uint32_t lmm_pool_topup_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t max)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint32_t n = 0;
	while (n < max && mm->reserve_frames < mm->pool_target) {
		uint32_t idx = lmm_buddy_alloc_locked(mm, c, 0);
		if (idx == LMM_NIL)
			break;
		mm->frames[idx].flags |= LMM_FRAME_F_RESERVE;
		LMM_WRITE_ONCE(mm->reserve_frames, mm->reserve_frames + 1);
		lmm_stack_push(mm, &mm->pool_head, &mm->npool, idx, LMM_FRAME_POOL);
		n++;
	}
	if (n) {
		mm->pool_refills++;
		mm->pool_refill_pages += n;
	}
	return n;
}

uint32_t lmm_pool_fill(struct lmm *mm)
{
	uint32_t added = 0, n;
	do {
		struct lmm_held h;
		struct lmm_cpu *c = lmm_lock_here(mm, &h);
		n = lmm_pool_topup_locked(mm, c, LMM_POOL_BATCH);
		lmm_unlock_here(mm, &h);
		added += n;
	} while (n == LMM_POOL_BATCH);
	return added;
}

uint32_t lmm_pool_refill(struct lmm *mm)
{
	lmm_check_canary(mm);
	if (lmm_refuse_context_above(mm, LMM_CTX_IRQS_OFF, "pool refill", __builtin_return_address(0)))
		return 0;
	return lmm_pool_fill(mm);
}

bool lmm_pool_needs_refill(struct lmm *mm)
{
	return LMM_READ_ONCE(mm->reserve_frames) < LMM_READ_ONCE(mm->pool_low);
}

void lmm_pool_reset_low_water(struct lmm *mm)
{
	struct lmm_held h;
	lmm_lock_here(mm, &h);
	mm->pool_low_water = lmm_reserve_level(mm);
	lmm_unlock_here(mm, &h);
}

enum lmm_status lmm_pool_set_marks(struct lmm *mm, uint32_t low, uint32_t target)
{
	if (lmm_refuse_context_above(mm, LMM_CTX_NORMAL, "pool marks", __builtin_return_address(0)))
		return LMM_ERR_BAD_CONTEXT;
	if (mm->phase != LMM_PHASE_READY) { /* no budget to change yet: lmm_init sets it */
		struct lmm_report r = { .reason = LMM_ERR_STATE, .op = "pool marks", .phys = LMM_PHYS_INVALID,
					.caller = __builtin_return_address(0) };
		lmm_refuse(mm, &r);
		return LMM_ERR_STATE;
	}
	if (low == LMM_POOL_AUTO) /* as in struct lmm_config */
		low = target / 2;
	if (lmm_pool_marks_refused(mm, low, target, "pool marks", __builtin_return_address(0)))
		return LMM_ERR_BAD_MARKS;

	/*
	 * Shrinking returns the surplus waiting in the shared pool and in this CPU's slice
	 * to the buddy lists now, a batch per hold.  Other CPUs' slices are theirs alone:
	 * while a surplus is left (there, or out with callers), slices are off, every
	 * reserve frame freed comes through the core, and the core takes it out.
	 */
	bool more = true;
	while (more) {
		struct lmm_held h;
		struct lmm_cpu *c = lmm_lock_here(mm, &h);
		LMM_WRITE_ONCE(mm->pool_low, low);
		LMM_WRITE_ONCE(mm->pool_target, target);
		while (mm->reserve_frames > target && c->slice_count)
			lmm_stack_push(mm, &mm->pool_head, &mm->npool,
				       lmm_stack_pop(mm, &c->slice_head, &c->slice_count), LMM_FRAME_POOL);
		for (unsigned n = 0; n < LMM_POOL_BATCH && mm->npool && mm->reserve_frames > target; n++) {
			uint32_t idx = lmm_stack_pop(mm, &mm->pool_head, &mm->npool);
			lmm_reserve_leave_locked(mm, c, idx);
			lmm_buddy_free_locked(mm, c, idx, 0);
		}
		more = mm->npool && mm->reserve_frames > target;
		slice_resize_locked(mm);
		mm->pool_low_water = lmm_reserve_level(mm);
		lmm_unlock_here(mm, &h);
	}
	return LMM_OK;
}

/* ---- Ownership --------------------------------------------------------------------- */

enum own_op { OWN_GET, OWN_TRANSFER, OWN_UNEXCLUSIVE, OWN_QUERY };

/*
 * One locked body for every ownership operation: locate, check the frame's state,
 * then act.  Refusals are counted and reported after the lock is dropped.  Reference
 * counts above one change only here and in core_free_locked(), under the lock.
 */
static enum lmm_status ownership_op(struct lmm *mm, const void *ptr, enum own_op op, uint16_t from,
				    uint16_t to, uint16_t *owner_out, const void *caller)
{
	static const char *const names[] = { "get", "transfer", "unexclusive", "owner query" };
	struct lmm_report r = { .op = names[op], .ptr = ptr, .phys = LMM_PHYS_INVALID,
				.caller_owner = from, .caller = caller };
	uint32_t idx;
	enum lmm_status st = lmm_locate(mm, ptr, &idx);
	if (st == LMM_OK && op == OWN_TRANSFER && to == 0)
		st = LMM_ERR_BAD_OWNER;
	if (st != LMM_OK) {
		if (op != OWN_QUERY) {
			r.reason = st;
			lmm_report_page(mm, &r);
			lmm_refuse(mm, &r);
		}
		return st;
	}

	struct lmm_held h;
	lmm_lock_here(mm, &h);
	struct lmm_frame *f = &mm->frames[idx];
	uint8_t state = LMM_READ_ONCE(f->state);
	r.found_state = state;
	r.found_order = f->order;
	r.owner = LMM_READ_ONCE(f->owner);
	if (op == OWN_QUERY) {
		*owner_out = state == LMM_FRAME_EXCLUSIVE ? r.owner : 0;
	} else if (state == LMM_FRAME_ALLOCATED) {
		if (op != OWN_GET)
			st = LMM_ERR_NOT_EXCLUSIVE;
		else if (f->refcount == UINT16_MAX)
			st = LMM_ERR_REFCOUNT;
		else
			LMM_WRITE_ONCE(f->refcount, (uint16_t)(f->refcount + 1));
	} else if (state == LMM_FRAME_EXCLUSIVE) {
		if (op == OWN_GET) {
			st = LMM_ERR_EXCLUSIVE;
		} else if (r.owner != from) {
			st = LMM_ERR_WRONG_OWNER;
		} else if (op == OWN_TRANSFER) {
			LMM_WRITE_ONCE(f->owner, to);
		} else {
			LMM_WRITE_ONCE(f->owner, 0);
			LMM_WRITE_ONCE(f->refcount, 1);
			LMM_WRITE_ONCE(f->state, LMM_FRAME_ALLOCATED);
		}
	} else {
		st = lmm_state_refusal(state);
	}
	lmm_unlock_here(mm, &h);

	if (st != LMM_OK && op != OWN_QUERY) {
		r.reason = st;
		r.phys = lmm_frame_phys(mm, idx);
		lmm_refuse(mm, &r);
	}
	return st;
}

enum lmm_status lmm_page_get(struct lmm *mm, void *ptr)
{
	return ownership_op(mm, ptr, OWN_GET, lmm_port_owner(), 0, NULL, __builtin_return_address(0));
}

enum lmm_status lmm_page_transfer(struct lmm *mm, void *ptr, uint16_t from, uint16_t to)
{
	return ownership_op(mm, ptr, OWN_TRANSFER, from, to, NULL, __builtin_return_address(0));
}

enum lmm_status lmm_page_unexclusive(struct lmm *mm, void *ptr, uint16_t owner)
{
	return ownership_op(mm, ptr, OWN_UNEXCLUSIVE, owner, 0, NULL, __builtin_return_address(0));
}

uint16_t lmm_page_owner(struct lmm *mm, const void *ptr)
{
	uint16_t owner = 0;
	ownership_op(mm, ptr, OWN_QUERY, 0, 0, &owner, NULL);
	return owner;
}

/*
 * alloc.c - allocation and freeing: the per-CPU layer in front, the locked core behind,
 * and the one place a block is handed out and the one place it is taken back.
 *
 * Every public call has the same shape:
 *
 *     validate -> interrupts off -> this CPU's cache or slice (no lock)  -> interrupts on
 *                                   `- or: lock once, one core call, unlock -'  -> report
 *
 * The per-CPU layer.  Each CPU keeps a LIFO cache of order-0 frames (CACHED) and a
 * slice of the reserve (POOL frames), both touched only by that CPU with interrupts
 * disabled, so the common order-0 allocation and free take no lock and do no atomic
 * read-modify-write.  A cache that runs dry is refilled, and one that overflows is
 * drained, by cache_batch frames under one hold of the core lock (Linux's pcp lists,
 * Bonwick's magazines).  A slice refills from the shared pool the same way.
 *
 * Ownership.  hand_out() completes the transfer of a block to its caller: after it,
 * only the holder may change the frame (free it, transfer it).  release() is where a
 * block whose last reference is gone starts to belong to mm/ again, and
 * core_place_locked() the place that then puts it; take_back_to_cpu() does both for an
 * order-0 page that this CPU's cache or slice takes, in one store of the frame's word
 * (no lock).  These three are the only writers of a block's allocation state.  The
 * allocated-page figure is derived from the call counters (struct lmm_cpu): the two,
 * and core_free_locked() for a free that takes back nothing, adjust it for a call that
 * moves other than one page.  List counters belong to the list helpers (buddy.c,
 * internal.h).
 *
 * Context rules.  Nothing here waits; the interrupts-off work of an order-0 call is a
 * few stores, or one batch (cache_batch frames, each O(LMM_MAX_ORDER)) when a cache or
 * slice must be refilled or drained, plus, on a KERNEL/NOWAIT slow path while a raised
 * target is being filled, one reserve batch (LMM_POOL_BATCH frames).  ATOMIC callers
 * never refill the reserve.
 */
#include "internal.h"

static inline enum lmm_gfp_class gfp_class(lmm_gfp_t gfp)
{
	return (gfp & LMM_GFPB_RESERVE) ? LMM_CLASS_ATOMIC
	       : (gfp & LMM_GFPB_NOWAIT) ? LMM_CLASS_NOWAIT
					 : LMM_CLASS_KERNEL;
}

/*
 * What the atomic exclusive routine finds while no default allocator is set
 * (lmm_set_default()): a struct lmm never begun, so that the routine reads its
 * allocator with no NULL test (make bench-ir, W5: 4 instructions a pair).  Its stacks
 * are empty and it places no free on the fast path (fast_free_pages 0): every call on
 * it finds its slice empty (alloc_from_cpu_layer()) or goes to free_elsewhere(), and
 * there a test returns before anything is written.  Never written, so any CPU may read
 * it at any time; lmm_default() calls it NULL.
 */
static struct lmm no_default;

/* ---- Hand-out and take-back ------------------------------------------------------- */

/* Where a block being handed out comes from: the fast path knows, the core does not. */
enum lmm_source {
	FROM_CORE,  /* core_alloc_locked(): any list; the frame's flag says if it is reserve */
	FROM_CACHE, /* this CPU's cache: never a reserve frame (lmm_check() verifies it)     */
	FROM_SLICE, /* this CPU's pool slice: always a reserve frame                          */
};

/*
 * FREE/CACHED/POOL -> ALLOCATED/EXCLUSIVE: the block at @idx becomes the caller's.
 * Interrupts off on CPU @c; the block was just unlinked by this CPU.  A FREE block
 * (from the buddy lists) must be handed out with the lock still held: until its state
 * changes, a merge on another CPU would take it for a free buddy.
 *
 * Only what changes is written.  Whoever unlinked the block left its order right (a
 * split sets it; a stack holds order-0 frames), and a frame nobody holds has owner 0
 * and no references (release() sees to it): lmm_check() verifies both.
 */
static inline void hand_out(struct lmm *mm, struct lmm_cpu *c, uint32_t idx, unsigned order,
			    lmm_gfp_t gfp, uint16_t owner, enum lmm_source from)
{
	struct lmm_frame *f = &mm->frames[idx];
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;

	if (excl)
		LMM_WRITE_ONCE(f->owner, owner);
	/* One reference (an exclusive page has its owner instead), the state, the order: one store. */
	LMM_WRITE_ONCE(f->use, lmm_use_word(!excl, excl ? LMM_FRAME_EXCLUSIVE : LMM_FRAME_ALLOCATED, order));
	if (order) /* alloc_calls counts the first page (struct lmm_cpu) */
		LMM_OWN_ADD(c->allocated_adjust, (1ul << order) - 1);
	/* The call is counted here for a page of the layer, in alloc_via_core() for the core's. */
	if (from == FROM_SLICE)
		LMM_INC(c->slice_hits); /* the call and the ATOMIC pool hit: one counter */
	else if (from == FROM_CACHE)
		LMM_INC(c->alloc_calls);
	else if (f->flags & LMM_FRAME_F_RESERVE)
		LMM_INC(c->reserve_to[gfp_class(gfp)]); /* the pool hits, by class */
}

/*
 * LMM_CFG_HOLDERS: the sequence number and CPU of the block just handed out, while this
 * CPU is ours (interrupts off); the caller's part comes after, in alloc_finish_slow().
 */
static void holder_stamp(struct lmm *mm, struct lmm_cpu *c, uint32_t idx)
{
	/* Whole-field stores: lmm_dump_holders() reads live records from another CPU. */
	LMM_WRITE_ONCE(mm->holders[idx].seq, c->holder_seq++);
	LMM_WRITE_ONCE(mm->holders[idx].cpu, (uint8_t)(c - mm->cpu));
}

/*
 * Bookkeeping of a block whose last reference is gone; the caller places it.  A frame
 * nobody holds has no owner and no references: hand_out() relies on it.
 */
static inline void release(struct lmm_cpu *c, struct lmm_frame *f, unsigned order)
{
	LMM_WRITE_ONCE(f->refcount, 0);
	LMM_WRITE_ONCE(f->owner, 0);
	if (order) /* free_calls counts the first page (struct lmm_cpu) */
		LMM_OWN_ADD(c->allocated_adjust, 0 - ((1ul << order) - 1));
}

/*
 * ALLOCATED/EXCLUSIVE -> mm/, the per-CPU half: the last reference to the order-0 page
 * @f (index @idx) is gone, and the stack at @head (this CPU's slice for a reserve frame,
 * its cache for any other) has room.  release() and the stack's state in one store: @word
 * is the frame's word once there (no owner, no references, CACHED or POOL; its flags and
 * region as they are).  No lock; interrupts off on CPU @c, saved in @fl.  The frame by
 * pointer: after the acquire load of its word, &mm->frames[idx] would be loaded again.
 */
static inline enum lmm_status take_back_to_cpu(lmm_irqflags_t fl, struct lmm_frame *f, uint32_t idx,
					       uint32_t *head, uint32_t *count, uint64_t word)
{
	lmm_frame_set_word(f, word);
	lmm_stack_link(f, head, count, idx);
	lmm_port_irq_restore(fl);
	return LMM_OK;
}

/* ---- The per-CPU layer's batches (lock held) ------------------------------------------- */

/* Move up to @n frames from this CPU's cache to the buddy lists, merging each. */
static void cache_drain_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t n)
{
	LMM_ASSERT_LOCKED(mm, c);
	while (n-- && c->cache_count)
		lmm_buddy_free_locked(mm, c, lmm_stack_pop(mm, &c->cache_head, &c->cache_count), 0);
	LMM_INC(c->cache_drains);
}

/* Fill this CPU's cache with up to cache_batch order-0 frames; false if none came. */
static bool cache_refill_locked(struct lmm *mm, struct lmm_cpu *c)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint32_t n = 0;
	while (n < mm->cache_batch) {
		uint32_t idx = lmm_buddy_alloc_locked(mm, c, 0);
		if (idx == LMM_NIL)
			break;
		lmm_stack_push(mm, &c->cache_head, &c->cache_count, idx, LMM_FRAME_CACHED);
		n++;
	}
	if (n)
		LMM_INC(c->cache_refills);
	return n != 0;
}

/*
 * Refill this CPU's pool slice from the shared pool.  Its slice is empty, so the
 * reserve's level right now is the shared pool plus the other slices: the moment to
 * record a low-water mark.  Pops served by a slice between refills are not seen, so
 * the mark is exact to within one slice per CPU, and exact when the reserve runs dry.
 */
static bool slice_refill_locked(struct lmm *mm, struct lmm_cpu *c)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint32_t level = lmm_reserve_level(mm);
	uint32_t n = mm->pool_slice ? (mm->pool_slice + 1) / 2 : 1;
	uint32_t moved = 0;
	while (moved < n && mm->npool) {
		uint32_t idx = lmm_stack_pop(mm, &mm->pool_head, &mm->npool);
		lmm_stack_push(mm, &c->slice_head, &c->slice_count, idx, LMM_FRAME_POOL);
		moved++;
	}
	/* The caller takes one page now: the level it leaves is the one to remember. */
	if (moved)
		level--;
	if (level < mm->pool_low_water)
		mm->pool_low_water = level;
	return moved != 0;
}

/* ---- The locked core -------------------------------------------------------------------- */

/*
 * A block for a request the per-CPU layer could not serve: any order above 0, or an
 * order-0 request whose cache (or, for ATOMIC, slice) is empty.  Returns the index of
 * a block still in the state of the list it came from, or LMM_NIL.  A larger block that
 * is not there makes this CPU's cache drain first (at most cache_high frees): other
 * CPUs' caches cannot be reached, and may keep up to cache_high pages each.
 *
 * ATOMIC order 0 looks, in this order, at: the shared pool (via this CPU's slice),
 * this CPU's cache, one page from the buddy lists.  It refills nothing else; other
 * CPUs' slices (at most pool_slice frames each) are theirs.  KERNEL/NOWAIT order 0
 * refills this CPU's cache in one batch.  core_alloc_locked() then tops the reserve up.
 */
static uint32_t core_take_locked(struct lmm *mm, struct lmm_cpu *c, unsigned order, lmm_gfp_t gfp)
{
	if (order != 0) {
		uint32_t idx = lmm_buddy_alloc_locked(mm, c, order);
		/* Pages waiting in this CPU's cache may be what keeps a block from merging. */
		if (idx == LMM_NIL && c->cache_count) {
			cache_drain_locked(mm, c, c->cache_count);
			idx = lmm_buddy_alloc_locked(mm, c, order);
		}
		return idx;
	}

	if (gfp & LMM_GFPB_RESERVE) {
		if (slice_refill_locked(mm, c))
			return lmm_stack_pop(mm, &c->slice_head, &c->slice_count);
		if (c->cache_count)
			return lmm_stack_pop(mm, &c->cache_head, &c->cache_count);
		uint32_t idx = lmm_buddy_alloc_locked(mm, c, 0);
		if (idx == LMM_NIL)
			mm->pool_empty_failures++;
		return idx;
	}

	if (mm->cache_high == 0)
		return lmm_buddy_alloc_locked(mm, c, 0);
	if (!cache_refill_locked(mm, c))
		return LMM_NIL;
	return lmm_stack_pop(mm, &c->cache_head, &c->cache_count);
}

static uint32_t core_alloc_locked(struct lmm *mm, struct lmm_cpu *c, unsigned order, lmm_gfp_t gfp)
{
	LMM_ASSERT_LOCKED(mm, c);
	uint32_t idx = core_take_locked(mm, c, order, gfp);
	/*
	 * Then, for all but ATOMIC, a batch for a reserve below its low mark (after the
	 * target was raised): after the request, so a top-up never takes the pages the
	 * request needed.  The block taken is still FREE but on no list; a top-up only
	 * splits, it never merges, so it cannot reach it.
	 */
	if (!(gfp & LMM_GFPB_RESERVE) && mm->reserve_frames < mm->pool_low)
		lmm_pool_topup_locked(mm, c, LMM_POOL_BATCH);
	return idx;
}

/*
 * The core's side of a free: a block the per-CPU layer had no room for, or did not
 * decide (an exclusive page whose owner had to be asked).  The one placement policy: a
 * reserve frame goes to this CPU's slice while it has room, else back to the shared
 * pool, unless the target was lowered meanwhile: then it leaves the reserve for the
 * buddy lists; an ordinary order-0 page goes to this CPU's cache, after draining one
 * batch to the buddy lists if it is full; everything else is merged into the lists.
 * @one_op: the free of the atomic routine, whose interrupts-off work mm.h bounds by
 * one buddy operation: a full cache is left as it is, and the page merged.
 */
static void core_place_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t idx, unsigned order, bool one_op)
{
	LMM_ASSERT_LOCKED(mm, c);
	struct lmm_frame *f = &mm->frames[idx];

	if (order == 0 && (f->flags & LMM_FRAME_F_RESERVE)) {
		if (mm->reserve_frames <= mm->pool_target) {
			if (c->slice_count < mm->pool_slice) /* where the per-CPU layer puts it */
				lmm_stack_push(mm, &c->slice_head, &c->slice_count, idx, LMM_FRAME_POOL);
			else
				lmm_stack_push(mm, &mm->pool_head, &mm->npool, idx, LMM_FRAME_POOL);
			return;
		}
		/*
		 * Leaving the reserve: straight to the lists, not the cache, so this free
		 * never drains a cache batch (the atomic routine's free stays one push or one
		 * O(LMM_MAX_ORDER) merge), and the surplus merges back at once.
		 */
		lmm_reserve_leave_locked(mm, c, idx);
		lmm_buddy_free_locked(mm, c, idx, 0);
		return;
	}
	if (order == 0 && mm->cache_high) {
		const bool full = c->cache_count >= mm->cache_high;
		if (!(full && one_op)) {
			if (full)
				cache_drain_locked(mm, c, mm->cache_batch);
			lmm_stack_push(mm, &c->cache_head, &c->cache_count, idx, LMM_FRAME_CACHED);
			return;
		}
	}
	lmm_buddy_free_locked(mm, c, idx, order);
}

/* ---- Allocation ----------------------------------------------------------------------------- */

static lmm_cold void *refuse_alloc(struct lmm *mm, enum lmm_status st, unsigned order, lmm_gfp_t gfp,
				   uint16_t owner, const void *caller)
{
	struct lmm_report r = { .reason = st, .op = "alloc", .phys = LMM_PHYS_INVALID, .order = order,
				.caller_owner = owner, .gfp = gfp, .caller = caller };
	lmm_refuse(mm, &r);
	return NULL;
}

static lmm_cold enum lmm_status alloc_refusal(unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	if (order > LMM_MAX_ORDER)
		return LMM_ERR_BAD_ORDER;
	if ((gfp & ~LMM_GFPB_ALL) || ((gfp & LMM_GFPB_EXCLUSIVE) && order != 0))
		return LMM_ERR_BAD_FLAGS;
	if ((gfp & LMM_GFPB_EXCLUSIVE) && owner == 0)
		return LMM_ERR_BAD_OWNER;
	return LMM_ERR_BAD_CONTEXT;
}

/* An allocation whose arguments are wrong (reached by a tail call): which, then the record. */
static lmm_cold void *refuse_bad_alloc(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner,
				       const void *caller)
{
	return refuse_alloc(mm, alloc_refusal(order, gfp, owner), order, gfp, owner, caller);
}

static void zero_block(void *p, unsigned order)
{
	volatile uint64_t *w = p; /* volatile: no call to memset in a freestanding build */
	size_t n = (LMM_PAGE_SIZE << order) / sizeof(*w);
	for (size_t i = 0; i < n; i++)
		w[i] = 0;
}

/*
 * After interrupts are back on, what the common allocation does not need: the holder
 * record (the block is the caller's, so it needs interrupts no more), the poison check,
 * zeroing.
 */
static lmm_cold void *alloc_finish_slow(struct lmm *mm, uint32_t idx, unsigned order, lmm_gfp_t gfp,
					const void *caller)
{
	void *p = lmm_frame_virt(mm, idx);
	if (mm->holders != NULL)
		lmm_holder_record(mm, idx, order, caller);
	if (LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON))
		lmm_poison_verify(mm, idx, order, caller);
	if (gfp & LMM_GFPB_ZERO)
		zero_block(p, order);
	return p;
}

/* Whether an allocation has more to do than return the block: holders, poison, zeroing. */
static inline bool alloc_has_extras(const struct lmm *mm, lmm_gfp_t gfp)
{
	return unlikely((gfp & LMM_GFPB_ZERO) || (mm->cfg.flags & (LMM_CFG_HOLDERS | LMM_CFG_POISON)));
}

/* The block handed out at @idx, as the caller sees it; interrupts are back on. */
static inline void *alloc_finish(struct lmm *mm, uint32_t idx, unsigned order, lmm_gfp_t gfp, const void *caller)
{
	if (alloc_has_extras(mm, gfp))
		return alloc_finish_slow(mm, idx, order, gfp, caller);
	return lmm_frame_virt(mm, idx);
}

/*
 * A validated request, packed into one register for the out-of-line halves of a call:
 * with at most six arguments, none on the stack, the branch to them is a jump (a tail
 * call), and the common path keeps fewer values live.
 */
typedef uint32_t lmm_req_t; /* owner: bits 0-15, order: 16-23, gfp: 24-30, ask_owner: 31 */
_Static_assert(LMM_GFPB_ALL < (1u << 7) && LMM_MAX_ORDER <= UINT8_MAX, "lmm_req_t holds a request");

static inline lmm_req_t lmm_req(unsigned order, lmm_gfp_t gfp, uint16_t owner, bool ask_owner)
{
	return owner | (order & 0xffu) << 16 | (gfp & 0x7fu) << 24 | (uint32_t)ask_owner << 31;
}

static inline uint16_t req_owner(lmm_req_t rq) { return (uint16_t)rq; }
static inline unsigned req_order(lmm_req_t rq) { return (rq >> 16) & 0xffu; }
static inline lmm_gfp_t req_gfp(lmm_req_t rq) { return (rq >> 24) & 0x7fu; }
static inline bool req_ask_owner(lmm_req_t rq) { return rq >> 31; }
/* A free's request: the exclusive routine's (only an exclusive page is its to free). */
static inline bool req_excl_only(lmm_req_t rq) { return rq & (uint32_t)LMM_GFPB_EXCLUSIVE << 24; }

/*
 * An allocation that found nothing.  The common paths do not look at the canary or the
 * phase; a failure does, so a struct lmm never begun or stomped on is caught at the
 * first NULL, and a call before lmm_init is refused, not a silent NULL.
 */
static lmm_cold void *alloc_failed(struct lmm *mm, lmm_req_t rq, const void *caller)
{
	lmm_check_canary(mm);
	if (mm->phase != LMM_PHASE_READY)
		return refuse_alloc(mm, LMM_ERR_STATE, req_order(rq), req_gfp(rq), req_owner(rq), caller);
	return NULL;
}

/*
 * KERNEL may one day mean "may wait": debug builds keep it out of handlers from the
 * start.  Asked with interrupts off (@fl, the state before).  Where the port says its
 * handlers run with interrupts off (LMM_PORT_IRQFLAGS_*), a call made with them on is
 * in no handler: the common allocation learns that from @fl alone, and only a call made
 * with interrupts off asks the port (out of line: alloc_asking_context()).  Without
 * them, every debug KERNEL call asks.
 */
static inline bool kernel_alloc_may_be_in_handler(lmm_gfp_t gfp, lmm_irqflags_t fl)
{
	if (!LMM_DEBUG || (gfp & LMM_GFPB_NOWAIT))
		return false;
#ifdef LMM_PORT_IRQFLAGS_MASK
	return unlikely((fl & LMM_PORT_IRQFLAGS_MASK) != LMM_PORT_IRQFLAGS_ENABLED);
#else
	(void)fl;
	return true;
#endif
}

/* The port's answer, asked only where kernel_alloc_may_be_in_handler() said it might be. */
static inline bool port_says_in_handler(void)
{
	return lmm_port_context() == LMM_CTX_INTERRUPT;
}

static inline bool kernel_alloc_in_handler(lmm_gfp_t gfp, lmm_irqflags_t fl)
{
	return kernel_alloc_may_be_in_handler(gfp, fl) && port_says_in_handler();
}

/* Its refusal: interrupts back on (saved in @fl), then the record. */
static lmm_cold void *refuse_alloc_in_handler(struct lmm *mm, lmm_irqflags_t fl, lmm_req_t rq, const void *caller)
{
	lmm_port_irq_restore(fl);
	return refuse_alloc(mm, LMM_ERR_BAD_CONTEXT, req_order(rq), req_gfp(rq), req_owner(rq), caller);
}

/* The routine's allocation with no default set (it came through the layer): NULL, nothing said. */
static lmm_cold void *no_default_alloc(lmm_irqflags_t fl)
{
	lmm_port_irq_restore(fl);
	return NULL;
}

/*
 * The rest of an allocation the per-CPU layer could not serve: one lock hold, one core
 * call, the hand-out, the unlock; then interrupts back on (saved in @fl on CPU @c).
 * @c NULL: a request the layer never serves (order above 0), with interrupts still on.
 */
static lmm_outline void *alloc_via_core(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl, lmm_req_t rq,
					const void *caller)
{
	if (c == NULL) {
		c = lmm_enter_cpu(mm, &fl);
		if (unlikely(kernel_alloc_in_handler(req_gfp(rq), fl)))
			return refuse_alloc_in_handler(mm, fl, rq, caller);
	}
	LMM_INC(c->alloc_calls);
	lmm_irqflags_t held = lmm_lock(mm, c);
	uint32_t idx = core_alloc_locked(mm, c, req_order(rq), req_gfp(rq));
	/*
	 * A block from the core is still FREE until hand_out() marks it: it must do so
	 * before the lock goes, or another CPU's merge would find a FREE buddy that is on
	 * no list and take it back.  Cache and slice frames are CACHED/POOL: no lock.
	 */
	if (likely(idx != LMM_NIL)) {
		hand_out(mm, c, idx, req_order(rq), req_gfp(rq), req_owner(rq), FROM_CORE);
		if (mm->holders != NULL)
			holder_stamp(mm, c, idx);
	} else {
		LMM_INC(c->alloc_failures);
	}
	lmm_unlock(mm, held);
	lmm_port_irq_restore(fl);
	if (unlikely(idx == LMM_NIL))
		return alloc_failed(mm, rq, caller);
	return alloc_finish(mm, idx, req_order(rq), req_gfp(rq), caller);
}

/*
 * The return address of the public function: who made the call, for reports and holders.
 * The halves of a call forced inline into it (lmm_inline_entry: alloc_common(),
 * free_common() and what they call) take it as @caller or, from a public function, as
 * CALLER_HERE: then it is read only on a branch that hands it on (caller_or_here()).
 * Read at entry, it is one more value kept across the port's hooks, in a saved register
 * (5 instructions a free).  Inlined, LMM_CALLER is the public function's return
 * address; the coverage build does not force them inline, so there CALLER_HERE is the
 * value read at entry.
 */
#define LMM_CALLER __builtin_return_address(0)
#ifdef LMM_COVERAGE_BUILD
#define CALLER_HERE LMM_CALLER
#define caller_or_here(caller) (caller)
#else
#define CALLER_HERE NULL
#define caller_or_here(caller) ((caller) != NULL ? (caller) : LMM_CALLER)
#endif

/* The rest of a cache or slice hit with extras to do (holders, poison, zeroing). */
static lmm_cold void *alloc_from_cpu_slow(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl, uint32_t idx,
					  lmm_gfp_t gfp, const void *caller)
{
	if (mm->holders != NULL)
		holder_stamp(mm, c, idx);
	lmm_port_irq_restore(fl);
	return alloc_finish_slow(mm, idx, 0, gfp, caller);
}

/*
 * The end of an allocation that this CPU's cache or slice served: @idx was just popped
 * there, with interrupts off (saved in @fl).  No lock.
 */
lmm_inline_entry void *alloc_from_cpu(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl, uint32_t idx,
				   lmm_gfp_t gfp, uint16_t owner, enum lmm_source from, const void *caller)
{
	/*
	 * The region's delta first: after hand_out()'s byte store, which may alias anything,
	 * GCC would load mm->frames and the frame's region again.
	 */
	uintptr_t vdelta = lmm_frame_vdelta(mm, idx);
	hand_out(mm, c, idx, 0, gfp, owner, from);
	if (alloc_has_extras(mm, gfp))
		return alloc_from_cpu_slow(mm, c, fl, idx, gfp, caller_or_here(caller));
	void *p = lmm_index_virt(vdelta, idx);
	lmm_port_irq_restore(fl);
	return p;
}

/*
 * An order-0 request after interrupts went off (saved in @fl) on CPU @c: this CPU's
 * cache, or for ATOMIC its reserve slice, with no lock; else the core.
 */
lmm_inline_entry void *alloc_from_cpu_layer(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl, lmm_gfp_t gfp,
					    uint16_t owner, const void *caller)
{
	if (gfp & LMM_GFPB_RESERVE) {
		if (likely(c->slice_count))
			return alloc_from_cpu(mm, c, fl, lmm_stack_pop(mm, &c->slice_head, &c->slice_count), gfp,
					      owner, FROM_SLICE, caller);
		if (unlikely(mm == &no_default)) /* the routine with no default set: its slice is empty */
			return no_default_alloc(fl);
	} else if (likely(c->cache_count)) {
		return alloc_from_cpu(mm, c, fl, lmm_stack_pop(mm, &c->cache_head, &c->cache_count), gfp, owner,
				      FROM_CACHE, caller);
	}
	return alloc_via_core(mm, c, fl, lmm_req(0, gfp, owner, false), caller_or_here(caller));
}

#ifdef LMM_PORT_IRQFLAGS_MASK
/*
 * A debug KERNEL order-0 request made with interrupts off (kernel_alloc_may_be_in_handler()
 * said so): the port says whether this is a handler.  Out of line, so that no value of
 * the common allocation is kept across the port's call: kalloc() then saves one register,
 * not two, and needs no stack frame (make bench-ir: 4 instructions a call).  Two instances
 * of the one body: a kernel's kalloc() with its flags constant, which keeps four values across
 * the port's call, and one for every other request, which decodes its flags first and
 * keeps five (make bench-ir, W1 irqs-off: 134 instructions a pair, not 152).
 */
lmm_inline_entry void *alloc_asking_context(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl, lmm_gfp_t gfp,
					    uint16_t owner, const void *caller)
{
	if (port_says_in_handler())
		return refuse_alloc_in_handler(mm, fl, lmm_req(0, gfp, owner, false), caller);
	return alloc_from_cpu_layer(mm, c, fl, gfp, owner, caller);
}

static lmm_outline void *kalloc_asking_context(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl,
					       const void *caller)
{
	return alloc_asking_context(mm, c, fl, LMM_GFP_KERNEL, 0, caller);
}

static lmm_outline void *alloc_any_asking_context(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl,
						  lmm_req_t rq, const void *caller)
{
	return alloc_asking_context(mm, c, fl, req_gfp(rq), req_owner(rq), caller);
}
#endif

/*
 * Every allocation (the atomic exclusive routine puts the same pieces in another order).
 * The likely branch: an order-0 request served by this CPU's cache (or, for ATOMIC, its
 * reserve slice) with interrupts off and no lock.  Every other branch ends in a tail call.
 */
lmm_inline_entry void *alloc_common(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner,
				    const void *caller)
{
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;
	if (unlikely(order > LMM_MAX_ORDER || (gfp & ~LMM_GFPB_ALL) || (excl && (order || !owner))))
		return refuse_bad_alloc(mm, order, gfp, owner, caller_or_here(caller));
	owner = excl ? owner : 0;
	if (unlikely(order != 0))
		return alloc_via_core(mm, NULL, 0, lmm_req(order, gfp, owner, false), caller_or_here(caller));

	lmm_irqflags_t fl;
	struct lmm_cpu *c = lmm_enter_cpu(mm, &fl);
#ifdef LMM_PORT_IRQFLAGS_MASK
	if (kernel_alloc_may_be_in_handler(gfp, fl)) {
		if (gfp == LMM_GFP_KERNEL)
			return kalloc_asking_context(mm, c, fl, caller_or_here(caller));
		return alloc_any_asking_context(mm, c, fl, lmm_req(0, gfp, owner, false), caller_or_here(caller));
	}
#else /* every debug KERNEL call asks: in line, where a call keeps values anyway */
	if (unlikely(kernel_alloc_in_handler(gfp, fl)))
		return refuse_alloc_in_handler(mm, fl, lmm_req(0, gfp, owner, false), caller_or_here(caller));
#endif
	return alloc_from_cpu_layer(mm, c, fl, gfp, owner, caller);
}

/* Any allocation but a kernel's one-page kalloc(): one copy of alloc_common() for all of them. */
static lmm_outline void *alloc_any(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner, const void *caller)
{
	return alloc_common(mm, order, gfp, owner, caller);
}

void *lmm_alloc_pages_owned(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	return alloc_any(mm, order, gfp, owner, LMM_CALLER);
}

/*
 * lmm_alloc_pages() but for one KERNEL page.  Here, not in the caller, the port is
 * asked for the owner: values kept across that call would give kalloc() a stack frame.
 */
static lmm_outline void *alloc_any_as_port_owner(struct lmm *mm, unsigned order, lmm_gfp_t gfp,
						 const void *caller)
{
	return alloc_any(mm, order, gfp, (gfp & LMM_GFPB_EXCLUSIVE) ? lmm_port_owner() : 0, caller);
}

void *lmm_alloc_pages(struct lmm *mm, unsigned order, lmm_gfp_t gfp)
{
	/* A kernel's kalloc() of one page: the same function, with the flags' and the
	 * order's tests folded away. */
	if (likely(gfp == LMM_GFP_KERNEL && order == 0))
		return alloc_common(mm, 0, LMM_GFP_KERNEL, 0, CALLER_HERE);
	return alloc_any_as_port_owner(mm, order, gfp, LMM_CALLER);
}

/* ---- Freeing --------------------------------------------------------------------------------- */

/*
 * The head of the block that holds frame @idx: @idx itself unless it is a tail, else
 * the first non-tail frame at a coarser alignment that covers it (O(LMM_MAX_ORDER));
 * LMM_NIL if none does (corrupt metadata).  Refusal paths only.
 */
static lmm_cold uint32_t block_head(const struct lmm *mm, uint32_t idx)
{
	const struct lmm_region *reg = lmm_region_of(mm, idx);
	uint64_t pfn = reg->base_pfn + (idx - reg->first_index);
	for (unsigned k = 0; k <= LMM_MAX_ORDER; k++) {
		uint64_t head = pfn & ~((1ull << k) - 1);
		if (head < reg->base_pfn)
			break;
		uint32_t h = reg->first_index + (uint32_t)(head - reg->base_pfn);
		if (LMM_READ_ONCE(mm->frames[h].state) == LMM_FRAME_TAIL)
			continue;
		return mm->frames[h].order >= k ? h : LMM_NIL;
	}
	return LMM_NIL;
}

/* lmm_report_page() for a record of page @idx, lock held: what it says is what is there. */
static lmm_cold void report_page_locked(struct lmm *mm, const struct lmm_cpu *c, struct lmm_report *r,
					uint32_t idx)
{
	LMM_ASSERT_LOCKED(mm, c);
	r->phys = lmm_frame_phys(mm, idx);
	uint32_t h = block_head(mm, idx);
	const struct lmm_frame *f = &mm->frames[h == LMM_NIL ? idx : h];
	r->found_state = LMM_READ_ONCE(f->state);
	r->found_order = f->order;
	if (r->found_state == LMM_FRAME_EXCLUSIVE)
		r->owner = LMM_READ_ONCE(f->owner);
}

void lmm_report_page(struct lmm *mm, struct lmm_report *r)
{
	uint32_t idx;
	if (lmm_locate_page(mm, r->ptr, &idx) != LMM_OK)
		return;
	struct lmm_held h;
	report_page_locked(mm, lmm_lock_here(mm, &h), r, idx);
	lmm_unlock_here(mm, &h);
}

static bool state_is_free(uint8_t state)
{
	return state == LMM_FRAME_FREE || state == LMM_FRAME_CACHED || state == LMM_FRAME_POOL;
}

/* The verdict on a free that found a state no correct free finds (a free, reserved or tail frame). */
static lmm_cold enum lmm_status free_verdict_unusual(const struct lmm *mm, uint32_t idx, uint8_t state)
{
	if (state == LMM_FRAME_TAIL) {
		uint32_t h = block_head(mm, idx);
		return h != LMM_NIL && state_is_free(LMM_READ_ONCE(mm->frames[h].state)) ? LMM_ERR_ALREADY_FREE
										     : LMM_ERR_NOT_HEAD;
	}
	return lmm_state_refusal(state);
}

/*
 * What a free of the block at @idx with @order by @owner may do, decided under the lock:
 * LMM_OK when it drops the last reference, FREE_DROP_REF for "a shared block: only a
 * reference goes" (never returned to callers), otherwise the refusal.  @ask_owner: the
 * caller named no owner, so an exclusive page asks the port who is calling.  @excl_only
 * (the exclusive routine's free): an ordinary block is not its to free.  A free aimed
 * inside a free block (merged away since, or in a cache or the pool) is a double free;
 * inside an allocated block, not a head.
 */
#define FREE_DROP_REF LMM_ERR_REFCOUNT

/* An exclusive page of the right order: may @owner (or, @ask_owner, the port's) free it? */
static inline enum lmm_status owner_verdict(const struct lmm_frame *f, uint16_t owner, bool ask_owner)
{
	if (ask_owner)
		owner = lmm_port_owner();
	return likely(LMM_READ_ONCE(f->owner) == owner) ? LMM_OK : LMM_ERR_WRONG_OWNER;
}

static inline enum lmm_status free_verdict(const struct lmm *mm, uint32_t idx, unsigned order, uint16_t owner,
					   bool ask_owner, bool excl_only)
{
	const struct lmm_frame *f = &mm->frames[idx];
	/* State and order in one read: the head of an allocated block of this order? */
	const uint16_t so = LMM_READ_ONCE(f->state_order);
	if (likely(so == lmm_state_order(LMM_FRAME_ALLOCATED, order))) {
		if (unlikely(excl_only))
			return LMM_ERR_NOT_EXCLUSIVE;
		return LMM_LOAD_ACQUIRE(f->refcount) > 1 ? FREE_DROP_REF : LMM_OK; /* pairs with the drop below */
	}
	const uint8_t state = lmm_state_in(so);
	if (state == LMM_FRAME_ALLOCATED)
		return excl_only ? LMM_ERR_NOT_EXCLUSIVE : LMM_ERR_WRONG_ORDER;
	if (state == LMM_FRAME_EXCLUSIVE) {
		if (so != lmm_state_order(LMM_FRAME_EXCLUSIVE, order))
			return LMM_ERR_WRONG_ORDER;
		return owner_verdict(f, owner, ask_owner);
	}
	return free_verdict_unusual(mm, idx, state);
}

/*
 * Which of this CPU's stacks may take back, with no lock, the order-0 page whose frame
 * word (lmm_frame_word_of()) is @w: only a page exactly as a correct free of this kind
 * finds it, its last reference or its owner's, so that the one compare is the whole
 * verdict.  Anything else - a shared page, a refusal, an exclusive page whose owner the
 * port must be asked for (a call: every free would then keep its values in saved
 * registers) - goes to the core, whose verdict is final.
 */
enum cpu_stack { TO_CORE, TO_CACHE, TO_SLICE };

static inline enum cpu_stack free_fast_stack(uint64_t w, uint8_t region, uint16_t owner, bool ask_owner,
					     bool excl_only)
{
	const uint8_t res = LMM_FRAME_F_RESERVE;
	/* A free that names its owner (the exclusive routine) most likely frees a reserve page of its own. */
	if (!ask_owner) {
		if (likely(w == lmm_held_word(owner, 0, LMM_FRAME_EXCLUSIVE, res, region)))
			return TO_SLICE;
		if (w == lmm_held_word(owner, 0, LMM_FRAME_EXCLUSIVE, 0, region))
			return TO_CACHE;
	}
	if (!excl_only) {
		if (likely(w == lmm_held_word(0, 1, LMM_FRAME_ALLOCATED, 0, region)))
			return TO_CACHE;
		if (w == lmm_held_word(0, 1, LMM_FRAME_ALLOCATED, res, region))
			return TO_SLICE;
	}
	return TO_CORE;
}

/* The whole free, lock held: the verdict (final now), then the take-back. */
static enum lmm_status core_free_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t idx, unsigned order,
					uint16_t owner, bool ask_owner, bool excl_only)
{
	LMM_ASSERT_LOCKED(mm, c);
	struct lmm_frame *f = &mm->frames[idx];
	enum lmm_status st = free_verdict(mm, idx, order, owner, ask_owner, excl_only);
	if (st != LMM_OK) /* a free call that takes back no page (struct lmm_cpu) */
		LMM_INC(c->allocated_adjust);
	if (st == FREE_DROP_REF) {
		LMM_STORE_RELEASE(f->refcount, (uint16_t)(LMM_READ_ONCE(f->refcount) - 1));
		return LMM_OK;
	}
	/*
	 * The per-CPU layer had no room (only this CPU changes it, with interrupts off),
	 * or the block was still shared when it looked: the core places it.
	 */
	if (st == LMM_OK) {
		release(c, f, order);
		core_place_locked(mm, c, idx, order, excl_only);
	}
	return st;
}

static lmm_cold void poison_block(struct lmm *mm, uint32_t idx, unsigned order)
{
	for (uint32_t k = 0; k < (1u << order); k++)
		lmm_poison_page(mm, idx + k);
}

/*
 * The record of a free refused before any lock (the address or the order is bad).  A caller
 * that named no owner acted as the port's owner of this context.  @order is the one the
 * caller passed (it may be out of range); @rq says who the caller was.
 */
static lmm_cold enum lmm_status refuse_free(struct lmm *mm, enum lmm_status st, const void *ptr, unsigned order,
					    lmm_req_t rq, const void *caller)
{
	lmm_check_canary(mm); /* as alloc_failed(): the common free does not look */
	struct lmm_report r = { .reason = st, .op = "free", .ptr = ptr, .phys = LMM_PHYS_INVALID,
				.order = order, .caller_owner = req_ask_owner(rq) ? lmm_port_owner() : req_owner(rq),
				.caller = caller };
	lmm_report_page(mm, &r);
	lmm_refuse(mm, &r);
	return st;
}

/*
 * The record of a free refused under the lock (@held by CPU @c, interrupts saved in @fl):
 * what the page holds is read before the lock goes, then the record goes to the port.
 */
static lmm_cold enum lmm_status refuse_free_locked(struct lmm *mm, const struct lmm_cpu *c, lmm_irqflags_t held,
						   lmm_irqflags_t fl, enum lmm_status st, uint32_t idx, lmm_req_t rq,
						   const void *caller)
{
	struct lmm_report r = { .reason = st, .op = "free", .ptr = lmm_frame_virt(mm, idx),
				.phys = LMM_PHYS_INVALID, .order = req_order(rq), .caller = caller };
	report_page_locked(mm, c, &r, idx);
	lmm_unlock(mm, held);
	lmm_port_irq_restore(fl);
	lmm_check_canary(mm);
	r.caller_owner = req_ask_owner(rq) ? lmm_port_owner() : req_owner(rq);
	lmm_refuse(mm, &r);
	return st;
}

/*
 * A free the per-CPU layer could not take (no room, a shared page, a refusal): one lock
 * hold for the verdict and the take-back (and a refusal's picture of the page), then
 * interrupts back on (saved in @fl on CPU @c), then the record of a refusal.
 */
static lmm_outline enum lmm_status free_via_core(struct lmm *mm, struct lmm_cpu *c, lmm_irqflags_t fl,
						 uint32_t idx, lmm_req_t rq, const void *caller)
{
	if (c == NULL) { /* a block the layer never takes (order above 0), interrupts on */
		c = lmm_enter_cpu(mm, &fl);
		LMM_INC(c->free_calls);
	}
	lmm_irqflags_t held = lmm_lock(mm, c);
	/* Ask the owner again if needed: the frame may have changed hands since. */
	enum lmm_status st = core_free_locked(mm, c, idx, req_order(rq), req_owner(rq), req_ask_owner(rq),
					      req_excl_only(rq));
	if (unlikely(st != LMM_OK))
		return refuse_free_locked(mm, c, held, fl, st, idx, rq, caller);
	lmm_unlock(mm, held);
	lmm_port_irq_restore(fl);
	return LMM_OK;
}

/*
 * The free of the located block at @idx, in region @region (a constant 0 from the fast
 * path), from interrupts off to interrupts on.  The likely branch: an order-0 page that
 * this CPU's cache (or, for a reserve frame, its slice) has room for, checked and pushed
 * with no lock.  Anything else is decided under the lock, by a verdict made there.
 */
lmm_inline_entry enum lmm_status free_located(struct lmm *mm, uint32_t idx, uint8_t region, unsigned order,
					      uint16_t owner, bool ask_owner, bool excl_only, const void *caller)
{
	/* The core learns @excl_only as the request's EXCLUSIVE bit. */
	const lmm_gfp_t how = excl_only ? LMM_GFPB_EXCLUSIVE : 0;
	if (unlikely(order != 0))
		return free_via_core(mm, NULL, 0, idx, lmm_req(order, how, owner, ask_owner), caller_or_here(caller));

	lmm_irqflags_t fl;
	struct lmm_cpu *c = lmm_enter_cpu(mm, &fl);
	LMM_INC(c->free_calls);
	/*
	 * The word is read before anything says whose the page is: a bogus free may aim at
	 * any frame, and a word not exactly as expected goes to the core.  With the layer
	 * off (no room ever) every free goes there.
	 */
	struct lmm_frame *f = &mm->frames[idx];
	switch (free_fast_stack(lmm_frame_word_of(f), region, owner, ask_owner, excl_only)) {
	case TO_SLICE:
		if (likely(c->slice_count < LMM_READ_ONCE(mm->pool_slice)))
			return take_back_to_cpu(fl, f, idx, &c->slice_head, &c->slice_count,
						lmm_held_word(0, 0, LMM_FRAME_POOL, LMM_FRAME_F_RESERVE, region));
		break;
	case TO_CACHE:
		if (likely(c->cache_count < mm->cache_high))
			return take_back_to_cpu(fl, f, idx, &c->cache_head, &c->cache_count,
						lmm_held_word(0, 0, LMM_FRAME_CACHED, 0, region));
		break;
	case TO_CORE:
		break;
	}
	return free_via_core(mm, c, fl, idx, lmm_req(0, how, owner, ask_owner), caller_or_here(caller));
}

/*
 * Every free lmm_locate_first() did not place: NULL (nothing to do), a page of another
 * region, a bad address or order (refused here, before any lock), and with
 * LMM_CFG_POISON every free (the caller still holds the block: it is poisoned before the
 * free).  One copy for every kind of free; @rq says which, @order is the caller's (it
 * may be out of range).
 */
static lmm_outline enum lmm_status free_elsewhere(struct lmm *mm, void *ptr, unsigned order, lmm_req_t rq,
						  const void *caller)
{
	uint32_t idx = LMM_NIL;
	if (!ptr)
		return LMM_OK;
	if (unlikely(mm == &no_default)) /* the routine's free with no default set: nothing said */
		return LMM_ERR_NOT_MANAGED;
	if (req_excl_only(rq)) /* the exclusive routine's owner, asked late (free_common()) */
		rq |= lmm_port_owner();
	enum lmm_status st = lmm_locate(mm, ptr, &idx);
	if (unlikely(st != LMM_OK || order > LMM_MAX_ORDER))
		return refuse_free(mm, st != LMM_OK ? st : LMM_ERR_BAD_ORDER, ptr, order, rq, caller);
	const bool excl_only = req_excl_only(rq);
	if (LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON) &&
	    free_verdict(mm, idx, order, req_owner(rq), req_ask_owner(rq), excl_only) == LMM_OK)
		poison_block(mm, idx, order);
	return free_located(mm, idx, mm->frames[idx].region, order, req_owner(rq), req_ask_owner(rq), excl_only,
			    caller);
}

/*
 * Every free: find the block, then free_located().  @ask_owner: the caller named no
 * owner; ask the port if the page is exclusive.  @excl_only (the exclusive routine's
 * free, @owner 0): the owner is the port's, asked once the page is found, so that the
 * address is not kept across the call (make bench-ir: 4 instructions a free).  A free
 * of NULL does nothing: never in region 0 for lmm_locate_first() (lmm_fast_free_pages()),
 * it goes to free_elsewhere(), which tests for it, so the common free does not.
 */
lmm_inline_entry enum lmm_status free_common(struct lmm *mm, void *ptr, unsigned order, uint16_t owner,
					     bool ask_owner, bool excl_only, const void *caller)
{
	uint32_t idx = LMM_NIL;
	const bool in_first = lmm_locate_first(mm, ptr, &idx);
	/*
	 * The index hidden from the optimizer, as in lmm_enter_cpu(): GCC otherwise keeps it
	 * twice across the port's hook calls, as the located page number and as its low
	 * half, in two saved registers (make bench-ir: 1 instruction a free with linked hooks,
	 * up to 6 on the atomic pair with inline ones).
	 */
	__asm__("" : "+r"(idx));
	if (unlikely(!in_first || order > LMM_MAX_ORDER))
		return free_elsewhere(mm, ptr, order, lmm_req(order, excl_only ? LMM_GFPB_EXCLUSIVE : 0, owner, ask_owner),
				      caller_or_here(caller));
	if (excl_only)
		owner = lmm_port_owner();
	return free_located(mm, idx, 0, order, owner, ask_owner, excl_only, caller);
}

enum lmm_status lmm_free_pages_owned(struct lmm *mm, void *ptr, unsigned order, uint16_t owner)
{
	return free_common(mm, ptr, order, owner, false, false, CALLER_HERE);
}

/* A free that names no owner, of any order: one copy of free_common() for all of them. */
static lmm_outline enum lmm_status free_any_asking_owner(struct lmm *mm, void *ptr, unsigned order,
							  const void *caller)
{
	return free_common(mm, ptr, order, 0, true, false, caller);
}

enum lmm_status lmm_free_pages(struct lmm *mm, void *ptr, unsigned order)
{
	/* A kernel's kfree() of one page: the same function, with the order's tests folded away. */
	if (likely(order == 0))
		return free_common(mm, ptr, 0, 0, true, false, CALLER_HERE);
	return free_any_asking_owner(mm, ptr, order, LMM_CALLER);
}

enum lmm_status lmm_page_put(struct lmm *mm, void *ptr, unsigned order)
{
	return free_any_asking_owner(mm, ptr, order, LMM_CALLER);
}

/* ---- The atomic exclusive routine ------------------------------------------------------ */

/* Written once at init (before interrupts can use it), read from any context; never NULL. */
static struct lmm *default_mm = &no_default;

void lmm_set_default(struct lmm *mm)
{
	if (mm != NULL) {
		lmm_check_canary(mm);
		/* The routine may run in the next interrupt: never hand it a half-built allocator. */
		if (mm->phase != LMM_PHASE_READY) {
			struct lmm_report r = { .reason = LMM_ERR_STATE, .op = "set default",
						.phys = LMM_PHYS_INVALID, .caller = LMM_CALLER };
			lmm_refuse(mm, &r);
			return;
		}
	}
	__atomic_store_n(&default_mm, mm != NULL ? mm : &no_default, __ATOMIC_RELEASE);
}

/* The allocator the routine uses: the default, or no_default. */
static inline struct lmm *routine_mm(void)
{
	return __atomic_load_n(&default_mm, __ATOMIC_ACQUIRE);
}

struct lmm *lmm_default(void)
{
	struct lmm *mm = routine_mm();
	return mm != &no_default ? mm : NULL;
}

/* Its refusal of the port's owner 0 (no owner), from the default allocator if there is one. */
static lmm_cold void *refuse_ownerless(const void *caller)
{
	struct lmm *mm = lmm_default();
	return mm ? refuse_bad_alloc(mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, 0, caller) : NULL;
}

/*
 * The same allocation and free as lmm_alloc_pages_owned() / lmm_free_pages_owned(),
 * inlined: with the flags constant, the compiler drops every test they decide.  The
 * allocation is alloc_common()'s, in another order: the port is asked who is calling,
 * then interrupts go off, and only then is the default allocator read (once), so that
 * the owner is the one value kept across the interrupt hook (make bench-ir, W5: 4
 * instructions a pair, one saved register and no stack adjustment).  With no default
 * set, both find no_default: NULL as soon as interrupts are back on, LMM_ERR_NOT_MANAGED
 * for a page (LMM_OK for NULL), and no report.  The free is free_common()'s: reordered
 * the same way it keeps more, not fewer, values across the hooks.
 */
void *labyrinth_void_alloc_page_gfp_atomic_exclusive(void)
{
	const uint16_t owner = lmm_port_owner();
	if (unlikely(!owner))
		return refuse_ownerless(LMM_CALLER);
	const struct lmm_irq_cpu ic = lmm_irq_save_cpu();
	struct lmm *mm = routine_mm();
	return alloc_from_cpu_layer(mm, lmm_cpu_slot(mm, ic.cpu), ic.flags, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, owner,
				    CALLER_HERE);
}

enum lmm_status labyrinth_free_page_atomic_exclusive(void *page)
{
	return free_common(routine_mm(), page, 0, 0, false, true, CALLER_HERE);
}

/* ---- Draining a CPU ---------------------------------------------------------------------------- */

enum lmm_status lmm_cpu_drain(struct lmm *mm, unsigned cpu)
{
	if (cpu >= LMM_PORT_MAX_CPUS)
		return lmm_refuse_cpu_index(mm, cpu, "cpu drain", LMM_CALLER);
	/* The lock is recorded as held by the calling CPU; the slot drained may be another. */
	struct lmm_held h;
	struct lmm_cpu *self = lmm_lock_here(mm, &h), *c = &mm->cpu[cpu];
	if (c->cache_count)
		LMM_INC(c->cache_drains); /* the drained CPU is this one or stopped: its counter */
	while (c->cache_count)
		lmm_buddy_free_locked(mm, self, lmm_stack_pop(mm, &c->cache_head, &c->cache_count), 0);
	while (c->slice_count) {
		uint32_t idx = lmm_stack_pop(mm, &c->slice_head, &c->slice_count);
		if (mm->reserve_frames > mm->pool_target) { /* the target was lowered meanwhile */
			lmm_reserve_leave_locked(mm, self, idx);
			lmm_buddy_free_locked(mm, self, idx, 0);
		} else {
			lmm_stack_push(mm, &mm->pool_head, &mm->npool, idx, LMM_FRAME_POOL);
		}
	}
	lmm_unlock_here(mm, &h);
	return LMM_OK;
}

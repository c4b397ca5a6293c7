/*
 * check.c - observability and self-verification: counters, dump, the full invariant
 * check, and the debug poisoning of freed pages.
 *
 * lmm_check() trusts nothing: it rebuilds every counter from the frame array and the
 * lists and compares.  Tests call it after every phase; it is O(frames) with the lock
 * held, so it is for tests and debugging, never for a hot path.
 */
#include "internal.h"

/*
 * Per order k, the share of free-list memory in blocks below 2^k pages (Linux's
 * unusable free space index, in 1/1000).  Multiplies and shifts only.
 */
static void unusable_index(const uint64_t *blocks, uint64_t free, uint32_t *out)
{
	uint64_t usable = free; /* pages in blocks of order >= k */
	for (unsigned k = 0; k <= LMM_MAX_ORDER; k++) {
		if (k)
			usable -= blocks[k - 1] << (k - 1);
		uint64_t unusable = free - usable;
		/* unusable * 1000 / free, by binary long division on the quotient. */
		uint32_t q = 0;
		if (free) {
			uint64_t num = unusable * 1000;
			for (int bit = 10; bit >= 0; bit--)
				if (num >= (free << bit)) {
					num -= free << bit;
					q |= 1u << bit;
				}
		}
		out[k] = q;
	}
}

void lmm_get_stats(struct lmm *mm, struct lmm_stats *out)
{
	*out = (struct lmm_stats){ 0 };
	lmm_check_canary(mm);

	struct lmm_held h;
	lmm_lock_here(mm, &h);
	out->managed = mm->nframes;
	out->free = mm->nfree;
	out->pool = lmm_reserve_level(mm);
	out->reserve_held = lmm_reserve_held(mm);
	out->reserved = mm->nreserved_pages;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		out->free_blocks[o] = mm->free_list[o].blocks;
	out->pool_target = mm->pool_target;
	out->pool_most = mm->pool_most;
	out->pool_low = mm->pool_low;
	out->pool_low_water = mm->pool_low_water;
	out->pool_slice = mm->pool_slice;
	out->pool_empty_failures = mm->pool_empty_failures;
	out->pool_refills = mm->pool_refills;
	out->pool_refill_pages = mm->pool_refill_pages;
	out->cache_batch = mm->cache_batch;
	out->cache_high = mm->cache_high;

	/*
	 * The per-CPU figures under the same hold: a cache refill or drain moves a batch
	 * between the lists and a cache under the lock, so free + cached cannot be read half
	 * way through one.  A CPU's lock-free pop or push may still be in flight: one page.
	 */
	lmm_count_t allocated = 0;
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++) {
		const struct lmm_cpu *c = &mm->cpu[i];
		out->cached += LMM_READ_ONCE(c->cache_count);
		allocated += lmm_cpu_allocated(c);
		out->alloc_calls += lmm_cpu_calls(c);
		out->alloc_failures += LMM_READ_ONCE(c->alloc_failures);
		out->free_calls += LMM_READ_ONCE(c->free_calls);
		out->cache_refills += LMM_READ_ONCE(c->cache_refills);
		out->cache_drains += LMM_READ_ONCE(c->cache_drains);
		for (unsigned k = 0; k < LMM_CLASS_COUNT; k++)
			out->reserve_to[k] += lmm_cpu_reserve_to(c, k);
	}
	lmm_unlock_here(mm, &h);
	for (unsigned k = 0; k < LMM_CLASS_COUNT; k++) /* every reserve hit is counted once, by class */
		out->pool_hits += out->reserve_to[k];
	out->allocated = allocated; /* per-CPU figures wrap; their sum does not */
	out->available = out->free + out->pool + out->cached;
	for (unsigned s = 0; s < LMM_STATUS_COUNT; s++) {
		out->refused[s] = LMM_READ_ONCE(mm->refused[s]);
		out->refused_total += out->refused[s];
	}
	out->poison_errors = out->refused[LMM_ERR_POISONED];
	unusable_index(out->free_blocks, out->free, out->unusable_permille);
	out->metadata_bytes = mm->metadata_bytes;
	out->regions = mm->nregions;
	out->cpus = LMM_PORT_MAX_CPUS;
}

enum lmm_status lmm_get_cpu_stats(struct lmm *mm, unsigned cpu, struct lmm_cpu_stats *out)
{
	*out = (struct lmm_cpu_stats){ 0 };
	if (cpu >= LMM_PORT_MAX_CPUS)
		return lmm_refuse_cpu_index(mm, cpu, "cpu stats", __builtin_return_address(0));
	const struct lmm_cpu *c = &mm->cpu[cpu];
	out->cache_pages = LMM_READ_ONCE(c->cache_count);
	out->pool_pages = LMM_READ_ONCE(c->slice_count);
	out->allocs = lmm_cpu_calls(c);
	out->frees = LMM_READ_ONCE(c->free_calls);
	out->alloc_failures = LMM_READ_ONCE(c->alloc_failures);
	for (unsigned k = 0; k < LMM_CLASS_COUNT; k++)
		out->pool_hits += lmm_cpu_reserve_to(c, k);
	out->cache_refills = LMM_READ_ONCE(c->cache_refills);
	out->cache_drains = LMM_READ_ONCE(c->cache_drains);
	return LMM_OK;
}

void lmm_dump(struct lmm *mm)
{
	struct lmm_stats s;
	lmm_check_canary(mm);
	if (lmm_refuse_context_above(mm, LMM_CTX_IRQS_OFF, "dump", __builtin_return_address(0)))
		return;
	lmm_get_stats(mm, &s);

	lmm_logf("lmm: managed %llu pages (%llu MiB) in %u regions, metadata %llu KiB (%u B/frame)",
		 (unsigned long long)s.managed, (unsigned long long)(s.managed >> 8), s.regions,
		 (unsigned long long)(s.metadata_bytes >> 10), (unsigned)sizeof(struct lmm_frame));
	lmm_logf("lmm: free %llu, allocated %llu, pool %llu, cached %llu, reserved %llu (available %llu)",
		 (unsigned long long)s.free, (unsigned long long)s.allocated,
		 (unsigned long long)s.pool, (unsigned long long)s.cached,
		 (unsigned long long)s.reserved, (unsigned long long)s.available);

	char line[24 * (LMM_MAX_ORDER + 1) + 1];
	size_t n = 0;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		n += lmm_format(line + n, sizeof(line) - n, " %llu", (unsigned long long)s.free_blocks[o]);
	lmm_logf("lmm: free blocks by order 0..%u:%s", (unsigned)LMM_MAX_ORDER, line);
	lmm_logf("lmm: pool %llu/%u (low mark %u, low-water %u, slice %u), hits %llu, empty failures %llu, refills %llu (%llu pages)",
		 (unsigned long long)s.pool, s.pool_target, s.pool_low, s.pool_low_water, s.pool_slice,
		 (unsigned long long)s.pool_hits, (unsigned long long)s.pool_empty_failures,
		 (unsigned long long)s.pool_refills, (unsigned long long)s.pool_refill_pages);
	lmm_logf("lmm: reserve pages handed out: ATOMIC %llu, NOWAIT %llu, KERNEL %llu; caches: %llu refills, %llu drains",
		 (unsigned long long)s.reserve_to[LMM_CLASS_ATOMIC],
		 (unsigned long long)s.reserve_to[LMM_CLASS_NOWAIT],
		 (unsigned long long)s.reserve_to[LMM_CLASS_KERNEL],
		 (unsigned long long)s.cache_refills, (unsigned long long)s.cache_drains);
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++) {
		struct lmm_cpu_stats c;
		lmm_get_cpu_stats(mm, i, &c);
		if (c.allocs || c.frees || c.cache_pages || c.pool_pages)
			lmm_logf("lmm: cpu %u: cache %u, pool slice %u; allocs %llu (failed %llu), frees %llu, reserve hits %llu, cache refills %llu, drains %llu",
				 i, c.cache_pages, c.pool_pages, (unsigned long long)c.allocs,
				 (unsigned long long)c.alloc_failures, (unsigned long long)c.frees,
				 (unsigned long long)c.pool_hits, (unsigned long long)c.cache_refills,
				 (unsigned long long)c.cache_drains);
	}
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

/* How a kept value is printed: a count, a physical address, or a bit pattern. */
enum value_form { AS_COUNT, AS_PHYS, AS_BITS, AS_NONE /* an item with one value */ };

struct check_ctx {
	uint64_t problems;
	unsigned kept;
	struct check_item {
		const char *what;
		uint64_t a, b;
		uint8_t a_form, b_form;
	} keep[CHECK_KEEP];
};

static void note_problem(struct check_ctx *c, const char *what, uint64_t a, enum value_form a_form, uint64_t b,
			 enum value_form b_form)
{
	if (c->kept < CHECK_KEEP)
		c->keep[c->kept++] = (struct check_item){ what, a, b, (uint8_t)a_form, (uint8_t)b_form };
	c->problems++;
}

/* Two counts (or orders, indices, states). */
static void problem(struct check_ctx *c, const char *what, uint64_t a, uint64_t b)
{
	note_problem(c, what, a, AS_COUNT, b, AS_COUNT);
}

/* A frame's physical address, then a count. */
static void problem_at(struct check_ctx *c, const char *what, uint64_t phys, uint64_t b)
{
	note_problem(c, what, phys, AS_PHYS, b, AS_COUNT);
}

/* A frame's physical address alone. */
static void problem_at_page(struct check_ctx *c, const char *what, uint64_t phys)
{
	note_problem(c, what, phys, AS_PHYS, 0, AS_NONE);
}

static void format_value(char *buf, size_t len, uint64_t v, uint8_t form)
{
	if (form == AS_NONE)
		buf[0] = '\0';
	else if (form == AS_PHYS)
		lmm_format(buf, len, "phys 0x%llx", (unsigned long long)v);
	else if (form == AS_BITS)
		lmm_format(buf, len, "0x%llx", (unsigned long long)v);
	else
		lmm_format(buf, len, "%llu", (unsigned long long)v);
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
		if (((mm->free_mask >> o) & 1) != (mm->free_list[o].head != LMM_NIL))
			note_problem(c, "free_mask disagrees with list of order", o, AS_COUNT, mm->free_mask, AS_BITS);
		for (uint32_t i = mm->free_list[o].head; i != LMM_NIL; i = mm->frames[i].next) {
			if (i >= mm->nframes || n > mm->nframes) {
				problem(c, "free list runs out of the frame array at order", o, i);
				break;
			}
			const struct lmm_frame *f = &mm->frames[i];
			const struct lmm_region *r = lmm_region_of(mm, i);
			uint64_t pfn = lmm_frame_pfn(mm, i);
			if (f->state != LMM_FRAME_FREE || f->order != o)
				problem_at(c, "free list holds a non-free frame (phys, order)", phys_of(mm, i), o);
			if (f->prev != prev)
				problem_at(c, "free list back link broken (phys, back link index)", phys_of(mm, i), f->prev);
			if (pfn & ((1ull << o) - 1))
				problem_at(c, "free block misaligned (phys, order)", phys_of(mm, i), o);
			if (pfn + (1ull << o) > r->base_pfn + r->npages)
				problem_at(c, "free block runs past its region (phys, order)", phys_of(mm, i), o);
			uint64_t bpfn = pfn ^ (1ull << o);
			if (o < LMM_MAX_ORDER && bpfn - r->base_pfn < r->npages) {
				const struct lmm_frame *b = &mm->frames[r->first_index + (bpfn - r->base_pfn)];
				if (b->state == LMM_FRAME_FREE && b->order == o)
					problem_at(c, "free block not merged with its free buddy (phys, order)",
						phys_of(mm, i), o);
			}
			prev = i;
			n++;
		}
		if (n != mm->free_list[o].blocks)
			problem(c, "free block counter wrong for order (order, walked)", o, n);
		pages += n << o;
	}
	return pages;
}

/* Walk the frames in order: every head's block is followed by exactly its tails. */
/* sums[state]: pages per head state; sums[LMM_FRAME_STATE_COUNT]: reserve frames. */
static void check_frames(struct lmm *mm, struct check_ctx *c, uint64_t sums[LMM_FRAME_STATE_COUNT + 1])
{
	for (uint32_t ri = 0; ri < mm->nregions; ri++) {
		const struct lmm_region *r = &mm->regions[ri];
		uint64_t k = 0;
		while (k < r->npages) {
			uint32_t idx = r->first_index + (uint32_t)k;
			const struct lmm_frame *f = &mm->frames[idx];
			if (f->region != ri)
				problem_at(c, "frame records the wrong region (phys, region)", phys_of(mm, idx), f->region);
			if (f->state == LMM_FRAME_TAIL || f->state >= LMM_FRAME_STATE_COUNT) {
				problem_at(c, "frame belongs to no block (phys, state)", phys_of(mm, idx), f->state);
				k++;
				continue;
			}
			unsigned o = f->order;
			if (o > LMM_MAX_ORDER || ((r->base_pfn + k) & ((1ull << o) - 1)) || k + (1ull << o) > r->npages) {
				problem_at(c, "block head with a bad order (phys, order)", phys_of(mm, idx), o);
				o = 0;
			}
			if ((f->state == LMM_FRAME_POOL || f->state == LMM_FRAME_EXCLUSIVE ||
			     f->state == LMM_FRAME_CACHED || f->state == LMM_FRAME_RESERVED) && o != 0)
				problem_at(c, "single-page state on a larger block (phys, order)", phys_of(mm, idx), o);
			if (f->state == LMM_FRAME_ALLOCATED && f->refcount == 0)
				problem_at_page(c, "allocated block with no reference (phys)", phys_of(mm, idx));
			if (f->state == LMM_FRAME_EXCLUSIVE && f->owner == 0)
				problem_at_page(c, "exclusive page without an owner (phys)", phys_of(mm, idx));
			/* hand_out() writes only what changes: it relies on these being zero. */
			if ((f->state != LMM_FRAME_EXCLUSIVE && f->owner != 0) ||
			    (f->state != LMM_FRAME_ALLOCATED && f->refcount != 0))
				note_problem(c, "owner or references left on a frame (phys, owner << 16 | refcount)",
					     phys_of(mm, idx), AS_PHYS, (uint64_t)f->owner << 16 | f->refcount, AS_BITS);
			if ((f->flags & LMM_FRAME_F_RESERVE) && o != 0)
				problem_at(c, "reserve flag on a block larger than a page (phys, order)", phys_of(mm, idx), o);
			if ((f->flags & LMM_FRAME_F_RESERVE) && f->state == LMM_FRAME_FREE)
				problem_at_page(c, "reserve frame on a buddy free list (phys)", phys_of(mm, idx));
			if (f->flags & LMM_FRAME_F_RESERVE)
				sums[LMM_FRAME_STATE_COUNT]++;
			for (uint64_t t = 1; t < (1ull << o); t++) {
				const struct lmm_frame *tail = &mm->frames[idx + t];
				if (tail->state != LMM_FRAME_TAIL)
					note_problem(c, "block overlaps another block (head phys, frame phys)",
						     phys_of(mm, idx), AS_PHYS, phys_of(mm, idx + (uint32_t)t), AS_PHYS);
				else if (tail->owner != 0 || tail->refcount != 0)
					note_problem(c, "owner or references left on a frame (phys, owner << 16 | refcount)",
						     phys_of(mm, idx + (uint32_t)t), AS_PHYS,
						     (uint64_t)tail->owner << 16 | tail->refcount, AS_BITS);
			}
			sums[f->state] += 1ull << o;
			k += 1ull << o;
		}
	}
}

/* Walk one LIFO stack: every frame in @state, a reserve frame iff @reserve; count agrees. */
static void check_stack(struct lmm *mm, struct check_ctx *c, const char *what, uint32_t head,
			uint32_t count, uint8_t state, bool reserve)
{
	uint64_t n = 0;
	for (uint32_t i = head; i != LMM_NIL; i = mm->frames[i].next) {
		if (i >= mm->nframes || n > mm->nframes) {
			problem(c, what, i, n);
			return;
		}
		const struct lmm_frame *f = &mm->frames[i];
		if (f->state != state || f->order != 0)
			problem_at(c, "stack holds a frame in the wrong state (phys, state)", phys_of(mm, i), f->state);
		if (!(f->flags & LMM_FRAME_F_RESERVE) != !reserve)
			note_problem(c, "reserve flag wrong on a cached or pooled frame (phys, flags)", phys_of(mm, i),
				     AS_PHYS, f->flags, AS_BITS);
		n++;
	}
	if (n != count)
		problem(c, "stack count disagrees with its list (counter, list)", count, n);
}

/* The shared pool and every CPU's slice and cache; returns pool pages, sets *cached. */
static uint64_t check_stacks(struct lmm *mm, struct check_ctx *c, uint64_t *cached)
{
	uint64_t pool = mm->npool;
	check_stack(mm, c, "pool list runs out of the frame array", mm->pool_head, mm->npool,
		    LMM_FRAME_POOL, true);
	*cached = 0;
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++) {
		const struct lmm_cpu *cpu = &mm->cpu[i];
		check_stack(mm, c, "pool slice runs out of the frame array", cpu->slice_head,
			    cpu->slice_count, LMM_FRAME_POOL, true);
		check_stack(mm, c, "cpu cache runs out of the frame array", cpu->cache_head,
			    cpu->cache_count, LMM_FRAME_CACHED, false);
		if (cpu->cache_count > mm->cache_high)
			problem(c, "cpu cache above its high mark (cpu, pages)", i, cpu->cache_count);
		if (cpu->slice_count > lmm_slice_most(mm)) /* a lowered target may leave more than pool_slice */
			problem(c, "pool slice above its size (cpu, pages)", i, cpu->slice_count);
		pool += cpu->slice_count;
		*cached += cpu->cache_count;
	}
	return pool;
}

uint64_t lmm_check(struct lmm *mm)
{
	struct check_ctx c = { 0 };
	uint64_t sums[LMM_FRAME_STATE_COUNT + 1] = { 0 };
	lmm_check_canary(mm);
	/* Refused, it has verified nothing: one problem, so no caller reads it as healthy. */
	if (lmm_refuse_context_above(mm, LMM_CTX_IRQS_OFF, "check", __builtin_return_address(0)))
		return 1;
	if (mm->phase != LMM_PHASE_READY) {
		lmm_logf("lmm: check: allocator not initialised");
		return 1;
	}

	struct lmm_held h;
	lmm_lock_here(mm, &h);
	uint64_t list_pages = check_free_lists(mm, &c), cached;
	uint64_t pool_pages = check_stacks(mm, &c, &cached);
	check_frames(mm, &c, sums);

	lmm_count_t counted = 0;
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++)
		counted += lmm_cpu_allocated(&mm->cpu[i]);
	uint64_t nallocated = counted;
	if (list_pages != mm->nfree || sums[LMM_FRAME_FREE] != mm->nfree)
		problem(&c, "free pages: counter vs lists (counter, lists)", mm->nfree, list_pages);
	if (sums[LMM_FRAME_POOL] != pool_pages)
		problem(&c, "pool pages: frames vs lists (frames, lists)", sums[LMM_FRAME_POOL], pool_pages);
	if (sums[LMM_FRAME_STATE_COUNT] != mm->reserve_frames)
		problem(&c, "reserve frames: counter vs flagged frames (counter, frames)", mm->reserve_frames,
			sums[LMM_FRAME_STATE_COUNT]);
	if (mm->reserve_frames < pool_pages)
		problem(&c, "reserve: more frames waiting than in its budget (budget, waiting)", mm->reserve_frames,
			pool_pages);
	if (sums[LMM_FRAME_CACHED] != cached)
		problem(&c, "cached pages: frames vs caches (frames, caches)", sums[LMM_FRAME_CACHED], cached);
	uint64_t allocated = sums[LMM_FRAME_ALLOCATED] + sums[LMM_FRAME_EXCLUSIVE];
	if (allocated != nallocated)
		problem(&c, "allocated pages: counter vs frames (counter, frames)", nallocated, allocated);
	if (sums[LMM_FRAME_RESERVED] != mm->nreserved_pages)
		problem(&c, "reserved pages: counter vs frames (counter, frames)", mm->nreserved_pages,
			sums[LMM_FRAME_RESERVED]);
	uint64_t total = mm->nfree + nallocated + pool_pages + cached + mm->nreserved_pages;
	if (total != mm->nframes)
		problem(&c, "conservation: free+allocated+pool+cached+reserved != managed", total, mm->nframes);
	lmm_unlock_here(mm, &h);

	for (unsigned i = 0; i < c.kept; i++) {
		char a[32], b[32];
		format_value(a, sizeof(a), c.keep[i].a, c.keep[i].a_form);
		format_value(b, sizeof(b), c.keep[i].b, c.keep[i].b_form);
		lmm_logf("lmm: check: %s: %s%s%s", c.keep[i].what, a, b[0] ? ", " : "", b);
	}
	if (c.problems > c.kept)
		lmm_logf("lmm: check: ... and %llu more problems", (unsigned long long)(c.problems - c.kept));
	return c.problems;
}

/* ---- Debug poisoning -------------------------------------------------------------------- */

/* The page is still the caller's (its free is under way): fill it, then mark it. */
void lmm_poison_page(struct lmm *mm, uint32_t idx)
{
	volatile uint64_t *w = lmm_frame_virt(mm, idx);
	for (size_t i = 0; i < LMM_PAGE_SIZE / sizeof(*w); i++)
		w[i] = LMM_POISON;
	mm->frames[idx].flags |= LMM_FRAME_F_POISONED;
}

/* The block is ours now (the lock is not held): check pages poisoned since their free. */
void lmm_poison_verify(struct lmm *mm, uint32_t idx, unsigned order, const void *caller)
{
	for (uint32_t k = 0; k < (1u << order); k++) {
		struct lmm_frame *f = &mm->frames[idx + k];
		if (!(f->flags & LMM_FRAME_F_POISONED))
			continue;
		f->flags &= (uint8_t)~LMM_FRAME_F_POISONED;
		const uint64_t *w = lmm_frame_virt(mm, idx + k);
		for (size_t i = 0; i < LMM_PAGE_SIZE / sizeof(*w); i++) {
			if (w[i] != LMM_POISON) {
				/* phys: the first word found overwritten, not just its page. */
				struct lmm_report r = { .reason = LMM_ERR_POISONED, .op = "poison check",
							.ptr = &w[i], .phys = lmm_frame_phys(mm, idx + k) + i * sizeof(*w),
							.order = order, .found_state = LMM_READ_ONCE(f->state),
							.caller = caller };
				lmm_refuse(mm, &r);
				break;
			}
		}
	}
}

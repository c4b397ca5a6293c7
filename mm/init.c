/*
 * init.c - from a bootloader's memory description to ready free lists.
 *
 * The host kernel lists usable ranges and reservations in any order; lmm_init() sorts
 * and merges them into regions (contiguous usable RAM), carves the frame metadata
 * from the top of usable RAM, and hands every remaining page to the buddy lists as
 * the largest naturally aligned blocks that fit.  Init writes metadata only, never a
 * free page, and holes between regions cost nothing.
 */
#include "internal.h"

#define PAGE_MASK (LMM_PAGE_SIZE - 1)

_Static_assert(LMM_MAX_RESERVED >= 1 && LMM_MAX_RANGES >= 1, "the range tables hold at least one range");

static uint64_t align_down(uint64_t x) { return x & ~(uint64_t)PAGE_MASK; }
static uint64_t align_up(uint64_t x) { return (x + PAGE_MASK) & ~(uint64_t)PAGE_MASK; }

void lmm_begin(struct lmm *mm, const struct lmm_config *cfg)
{
	static const struct lmm_config defaults = { .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO };
	unsigned char *p = (unsigned char *)mm;

	for (size_t i = 0; i < sizeof(*mm); i++)
		p[i] = 0;
	mm->canary_head = mm->canary_tail = LMM_CANARY;
	mm->cfg = cfg ? *cfg : defaults;
	mm->phase = LMM_PHASE_INGEST;
	mm->pool_head = LMM_NIL;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		mm->free_list[o].head = LMM_NIL;
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++) {
		mm->cpu[i].cache_head = mm->cpu[i].slice_head = LMM_NIL;
		mm->cpu[i].lock_tag = i + 1;
	}
	lmm_port_lock_init(&mm->lock, "lmm");
}

/*
 * A range refused (@what: "usable range" or "reserved range", the record's op): counted
 * and handed to the port as a record naming it as the caller gave it.  Returns @st.
 */
static enum lmm_status refuse_range(struct lmm *mm, enum lmm_status st, const char *what, uint64_t base,
				    uint64_t len, const void *caller)
{
	struct lmm_report r = { .reason = st, .op = what, .phys = LMM_PHYS_INVALID, .range_base = base,
				.range_len = len, .caller = caller };
	lmm_refuse(mm, &r);
	return st;
}

/* Common checks of a [base, base+len) range; *end gets the exclusive end. */
static enum lmm_status range_sane(struct lmm *mm, const char *what, uint64_t base, uint64_t len,
				  uint64_t *end, const void *caller)
{
	if (mm->phase != LMM_PHASE_INGEST)
		return refuse_range(mm, LMM_ERR_STATE, what, base, len, caller);
	if (len == 0)
		return refuse_range(mm, LMM_ERR_EMPTY_RANGE, what, base, len, caller);
	if (base + len < base || base >= LMM_PHYS_LIMIT)
		return refuse_range(mm, LMM_ERR_ABSURD_RANGE, what, base, len, caller);
	*end = base + len;
	if (*end > LMM_PHYS_LIMIT) {
		lmm_logf("lmm: %s [0x%llx-0x%llx) trimmed at the %u-bit physical limit", what,
			 (unsigned long long)base, (unsigned long long)*end, (unsigned)LMM_PORT_PHYS_BITS);
		*end = LMM_PHYS_LIMIT;
	}
	return LMM_OK;
}

static void sort_ranges(struct lmm_range *r, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		struct lmm_range x = r[i];
		uint32_t j = i;
		while (j > 0 && r[j - 1].base > x.base) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = x;
	}
}

/*
 * Whether @b (sorted after @a, starting at or before its end) joins @a.  Reservations
 * that overlap or touch always do.  Usable ranges that overlap do; ranges that only
 * touch do when the port maps them end to end, since a region must be virtually
 * contiguous: a kernel that maps its RAM in separate windows adds one range per
 * window, and each stays a region of its own.
 */
static bool range_joins(const struct lmm_range *a, const struct lmm_range *b, bool usable)
{
	if (!usable || b->base < a->end)
		return true;
	uintptr_t last = (uintptr_t)lmm_port_phys_to_virt(a->end - LMM_PAGE_SIZE);
	return (uintptr_t)lmm_port_phys_to_virt(b->base) == last + LMM_PAGE_SIZE;
}

/* Sort and merge joining ranges in place (@usable: log overlaps); returns the new count. */
static uint32_t merge_ranges(struct lmm_range *r, uint32_t n, const char *what, bool usable)
{
	if (n == 0)
		return 0;
	sort_ranges(r, n);
	uint32_t out = 0;
	for (uint32_t i = 1; i < n; i++) {
		if (r[i].base <= r[out].end && range_joins(&r[out], &r[i], usable)) {
			if (usable && r[i].base < r[out].end)
				lmm_logf("lmm: %s [0x%llx-0x%llx) overlaps [0x%llx-0x%llx): merged", what,
					 (unsigned long long)r[i].base, (unsigned long long)r[i].end,
					 (unsigned long long)r[out].base, (unsigned long long)r[out].end);
			if (r[i].end > r[out].end)
				r[out].end = r[i].end;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/*
 * A usable range for the table.  A full table is merged first (as lmm_init() would);
 * a range that still finds no room is refused: memory left out, never memory misused.
 */
static enum lmm_status store_usable(struct lmm *mm, uint64_t b, uint64_t e, const void *caller)
{
	if (mm->nranges == LMM_MAX_RANGES)
		mm->nranges = merge_ranges(mm->ranges, mm->nranges, "usable range", true);
	if (mm->nranges == LMM_MAX_RANGES)
		return refuse_range(mm, LMM_ERR_TOO_MANY_RANGES, "usable range", b, e - b, caller);
	mm->ranges[mm->nranges++] = (struct lmm_range){ b, e };
	return LMM_OK;
}

/*
 * Sorted, merged reservations one over the table: join the two closest, reserving the
 * gap between them as well.
 */
static void join_closest_reserved(struct lmm_range *r, uint32_t *n)
{
	uint32_t best = 0;
	for (uint32_t i = 1; i + 1 < *n; i++)
		if (r[i + 1].base - r[i].end < r[best + 1].base - r[best].end)
			best = i;
	lmm_logf("lmm: more than LMM_MAX_RESERVED=%u reserved ranges: [0x%llx-0x%llx) reserved too, to join its neighbours",
		 (unsigned)LMM_MAX_RESERVED, (unsigned long long)r[best].end, (unsigned long long)r[best + 1].base);
	r[best].end = r[best + 1].end;
	for (uint32_t i = best + 1; i + 1 < *n; i++)
		r[i] = r[i + 1];
	(*n)--;
}

/*
 * A reservation for the table, never refused for room: a page the caller reserved must
 * never be handed out, whatever else the map holds.  Past LMM_MAX_RESERVED the table is
 * merged and, if still over, its two closest entries are joined (logged): a little
 * usable memory may be lost, a reserved page never given away.  The table's spare slot
 * (the metadata's, filled only at lmm_init()) holds the newcomer meanwhile.
 */
static void store_reserved(struct lmm *mm, uint64_t b, uint64_t e)
{
	mm->reserved_ranges[mm->nreserved++] = (struct lmm_range){ b, e };
	if (mm->nreserved <= LMM_MAX_RESERVED)
		return;
	mm->nreserved = merge_ranges(mm->reserved_ranges, mm->nreserved, "reserved range", false);
	if (mm->nreserved > LMM_MAX_RESERVED)
		join_closest_reserved(mm->reserved_ranges, &mm->nreserved);
}

enum lmm_status lmm_add_range(struct lmm *mm, uint64_t base, uint64_t len)
{
	const void *caller = __builtin_return_address(0);
	uint64_t end;
	enum lmm_status st = range_sane(mm, "usable range", base, len, &end, caller);
	if (st != LMM_OK)
		return st;

	uint64_t b = align_up(base), e = align_down(end);
	if (b >= e)
		return refuse_range(mm, LMM_ERR_EMPTY_RANGE, "usable range", base, len, caller);
	if (b != base || e != end)
		lmm_logf("lmm: usable range [0x%llx-0x%llx) trimmed to whole pages [0x%llx-0x%llx)",
			 (unsigned long long)base, (unsigned long long)end, (unsigned long long)b,
			 (unsigned long long)e);
	return store_usable(mm, b, e, caller);
}

enum lmm_status lmm_reserve_range(struct lmm *mm, uint64_t base, uint64_t len)
{
	const void *caller = __builtin_return_address(0);
	uint64_t end;
	enum lmm_status st = range_sane(mm, "reserved range", base, len, &end, caller);
	if (st != LMM_OK)
		return st;

	/* Widen outward: a page that is partly reserved is wholly reserved. */
	store_reserved(mm, align_down(base), align_up(end));
	return LMM_OK;
}

/*
 * Pages in the union of the usable ranges, which may overlap until lmm_init() merges
 * them.  Taken in (base, index) order, each range adds what lies past the furthest end
 * of those before it.  O(ranges^2), without sorting the table: init only.
 */
static uint64_t union_pages(const struct lmm *mm)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < mm->nranges; i++) {
		const struct lmm_range *r = &mm->ranges[i];
		uint64_t from = r->base;
		for (uint32_t j = 0; j < mm->nranges; j++) {
			const struct lmm_range *q = &mm->ranges[j];
			bool before = q->base < r->base || (q->base == r->base && j < i);
			if (before && q->end > from)
				from = q->end;
		}
		if (r->end > from)
			n += (r->end - from) >> LMM_PAGE_SHIFT;
	}
	return n;
}

/* Frame records, then (LMM_CFG_HOLDERS) the holder table, each page aligned. */
static uint64_t meta_bytes_for(const struct lmm *mm, uint64_t pages)
{
	uint64_t bytes = align_up(pages * sizeof(struct lmm_frame));
	if (mm->cfg.flags & LMM_CFG_HOLDERS)
		bytes += align_up(pages * sizeof(struct lmm_holder));
	return bytes;
}

uint64_t lmm_metadata_bytes(const struct lmm *mm)
{
	return meta_bytes_for(mm, union_pages(mm));
}

/*
 * Find @bytes of usable, unreserved memory for the metadata, as high as possible
 * (low memory is the scarcer kind for devices).  Reserved ranges are sorted/merged.
 */
static uint64_t find_metadata_home(const struct lmm *mm, uint64_t bytes)
{
	for (uint32_t i = mm->nregions; i-- > 0;) {
		uint64_t rbase = mm->regions[i].base_pfn << LMM_PAGE_SHIFT;
		uint64_t hi = rbase + (mm->regions[i].npages << LMM_PAGE_SHIFT);
		/* Walk the gaps between reservations inside this range, top-down. */
		for (uint32_t j = mm->nreserved + 1; j-- > 0;) {
			uint64_t gap_lo = j > 0 ? mm->reserved_ranges[j - 1].end : 0;
			uint64_t gap_hi = j < mm->nreserved ? mm->reserved_ranges[j].base : UINT64_MAX;
			uint64_t lo = gap_lo > rbase ? gap_lo : rbase;
			uint64_t top = gap_hi < hi ? gap_hi : hi;
			if (top > lo && top - lo >= bytes)
				return top - bytes;
		}
	}
	return LMM_PHYS_INVALID;
}

static void insert_reserved(struct lmm *mm, uint64_t base, uint64_t end)
{
	/* The table has one slot beyond LMM_MAX_RESERVED for exactly this. */
	mm->reserved_ranges[mm->nreserved++] = (struct lmm_range){ base, end };
	mm->nreserved = merge_ranges(mm->reserved_ranges, mm->nreserved, "reserved range", false);
}

/* A merged usable range that init leaves out (the line before it says why): lost memory. */
static void drop_range(struct lmm *mm, enum lmm_status why, const struct lmm_range *r, const void *caller)
{
	refuse_range(mm, why, "usable range", r->base, r->end - r->base, caller);
}

/*
 * Whether the port maps the merged range @r end to end (one region is one linear
 * window: frames become addresses by one add).  In 64 bits: on a 32-bit host a region
 * larger than the address space wraps.
 */
static bool virtually_contiguous(const struct lmm_range *r)
{
	uintptr_t first = (uintptr_t)lmm_port_phys_to_virt(r->base);
	uintptr_t last = (uintptr_t)lmm_port_phys_to_virt(r->end - LMM_PAGE_SIZE);
	uint64_t span = r->end - LMM_PAGE_SIZE - r->base;
	return span <= (uint64_t)(UINTPTR_MAX - first) && (uint64_t)(last - first) == span;
}

/*
 * Regions from merged ranges.  A range init cannot hold (the table of regions is full,
 * frame indices would overflow, the port does not map it end to end) is dropped,
 * logged and refused: memory lost, the rest still managed.
 */
static void build_regions(struct lmm *mm, const void *caller)
{
	uint32_t first = 0;
	for (uint32_t i = 0; i < mm->nranges; i++) {
		const struct lmm_range *rg = &mm->ranges[i];
		uint64_t npages = (rg->end - rg->base) >> LMM_PAGE_SHIFT;
		if (mm->nregions == LMM_MAX_REGIONS) {
			lmm_logf("lmm: usable range [0x%llx-0x%llx) dropped: more than LMM_MAX_REGIONS=%u regions",
				 (unsigned long long)rg->base, (unsigned long long)rg->end, (unsigned)LMM_MAX_REGIONS);
			drop_range(mm, LMM_ERR_TOO_MANY_RANGES, rg, caller);
			continue;
		}
		if ((uint64_t)first + npages >= LMM_NIL) {
			lmm_logf("lmm: usable range [0x%llx-0x%llx) dropped: more than 2^32-1 frames",
				 (unsigned long long)rg->base, (unsigned long long)rg->end);
			drop_range(mm, LMM_ERR_TOO_MANY_RANGES, rg, caller);
			continue;
		}
		if (!virtually_contiguous(rg)) {
			lmm_logf("lmm: usable range [0x%llx-0x%llx) dropped: not virtually contiguous through lmm_port_phys_to_virt",
				 (unsigned long long)rg->base, (unsigned long long)rg->end);
			drop_range(mm, LMM_ERR_NOT_CONTIGUOUS, rg, caller);
			continue;
		}
		const uint32_t ri = mm->nregions++;
		struct lmm_region *r = &mm->regions[ri];
		r->base_pfn = rg->base >> LMM_PAGE_SHIFT;
		r->npages = npages;
		r->first_index = first;
		r->vbase = (uintptr_t)lmm_port_phys_to_virt(rg->base);
		r->vbytes = npages << LMM_PAGE_SHIFT;
		mm->vdelta[ri] = r->vbase - ((uintptr_t)first << LMM_PAGE_SHIFT);
		first += (uint32_t)npages;
	}
	mm->nframes = first;
}

/* Every frame starts as a tail of nothing; heads are written afterwards. */
static void fill_frames(struct lmm *mm)
{
	for (uint32_t i = 0; i < mm->nregions; i++) {
		const struct lmm_region *r = &mm->regions[i];
		struct lmm_frame t = { .next = LMM_NIL, .prev = LMM_NIL, .state = LMM_FRAME_TAIL, .region = (uint8_t)i };
		struct lmm_frame *f = &mm->frames[r->first_index];
		for (uint64_t k = 0; k < r->npages; k++)
			f[k] = t;
	}
}

/* Hand [lo, hi) (pfns inside region @r) to the buddy lists as maximal aligned blocks. */
static void add_free_run(struct lmm *mm, const struct lmm_region *r, uint64_t lo, uint64_t hi)
{
	while (lo < hi) {
		/* Alignment of lo, capped at MAX_ORDER. */
		unsigned order = lmm_ctz32((uint32_t)lo | (1u << LMM_MAX_ORDER));
		while (lo + (1ull << order) > hi)
			order--;
		lmm_buddy_add_block(mm, order, r->first_index + (uint32_t)(lo - r->base_pfn));
		lo += 1ull << order;
	}
}

static void mark_reserved(struct lmm *mm, const struct lmm_region *r, uint64_t lo, uint64_t hi)
{
	for (uint64_t p = lo; p < hi; p++)
		LMM_WRITE_ONCE(mm->frames[r->first_index + (p - r->base_pfn)].state, LMM_FRAME_RESERVED);
	mm->nreserved_pages += hi - lo;
}

/* Split each region into reserved runs and free runs; reservations are sorted. */
static void populate(struct lmm *mm)
{
	for (uint32_t i = 0; i < mm->nregions; i++) {
		const struct lmm_region *r = &mm->regions[i];
		uint64_t pos = r->base_pfn, end = r->base_pfn + r->npages;
		for (uint32_t j = 0; j < mm->nreserved && pos < end; j++) {
			uint64_t rlo = mm->reserved_ranges[j].base >> LMM_PAGE_SHIFT;
			uint64_t rhi = mm->reserved_ranges[j].end >> LMM_PAGE_SHIFT;
			if (rhi <= pos || rlo >= end)
				continue;
			if (rlo < pos)
				rlo = pos;
			if (rhi > end)
				rhi = end;
			add_free_run(mm, r, pos, rlo);
			mark_reserved(mm, r, rlo, rhi);
			pos = rhi;
		}
		add_free_run(mm, r, pos, end);
	}
}

/* Defaults of the per-CPU layer: see struct lmm_config for what each one bounds. */
#define CACHE_BATCH_AUTO 16
#define CACHE_HIGH_AUTO 64

static uint32_t pick(uint32_t v, uint32_t dflt)
{
	return v == 0 ? dflt : v == LMM_CPU_OFF ? 0 : v;
}

static void setup_pool_and_cpus(struct lmm *mm, const void *caller)
{
	/* Half of what is free now: the other half is never the reserve's. */
	mm->pool_most = mm->nfree / 2 < LMM_POOL_AUTO ? (uint32_t)(mm->nfree / 2) : LMM_POOL_AUTO - 1;
	uint32_t target = mm->cfg.pool_target;
	if (target == LMM_POOL_AUTO)
		target = lmm_pool_auto_target(mm->nfree);
	const bool auto_low = mm->cfg.pool_low == LMM_POOL_AUTO;
	uint32_t low = auto_low ? target / 2 : mm->cfg.pool_low;
	/* Marks out of range are refused, as lmm_pool_set_marks() would, then cut to fit:
	 * an automatic low mark is half the target in force. */
	if (lmm_pool_marks_refused(mm, low, target, "init pool marks", caller)) {
		if (target > mm->pool_most)
			target = mm->pool_most;
		if (auto_low || low > target)
			low = target / 2;
	}
	mm->pool_target = target;
	mm->pool_low = low;
	mm->pool_low_water = 0;

	mm->pool_slice = lmm_slice_size(mm);

	uint32_t high = pick(mm->cfg.cache_high, CACHE_HIGH_AUTO);
	uint32_t batch = pick(mm->cfg.cache_batch, CACHE_BATCH_AUTO);
	if (batch > high)
		batch = high;
	if (batch == 0) /* a cache that can never be refilled is no cache */
		high = 0;
	mm->cache_high = high;
	mm->cache_batch = batch;
}

/*
 * A failed lmm_init() leaves no region behind: lmm_locate() tests region 0 before it
 * looks at nregions, and there are no frames behind it.  Every later call then finds
 * no managed memory (a free is refused as NOT_MANAGED) instead of reading frames.
 */
static enum lmm_status forget_regions(struct lmm *mm, enum lmm_status st)
{
	for (uint32_t i = 0; i < LMM_MAX_REGIONS; i++) {
		mm->regions[i] = (struct lmm_region){ 0 };
		mm->vdelta[i] = 0;
	}
	mm->nregions = 0;
	mm->nframes = 0;
	return st;
}

/* lmm_init() refused or failed: counted, and a record for the port (the line before says why). */
static enum lmm_status refuse_init(struct lmm *mm, enum lmm_status st, const void *caller)
{
	struct lmm_report r = { .reason = st, .op = "init", .phys = LMM_PHYS_INVALID, .caller = caller };
	lmm_refuse(mm, &r);
	return st;
}

/*
 * The struct lmm.fast_free_pages that lmm_init() sets: from then on a free in region 0
 * is placed by lmm_locate_first()'s one compare.  None (0, every free takes
 * lmm_locate()) with LMM_CFG_POISON, whose frees all take the general path, which
 * poisons, so that the fast path needs no test for it; and none if NULL would be a page
 * of region 0 (a kernel that maps it at virtual 0): the fast path does not test for
 * NULL, the general one does.  To ask lmm_locate_first() itself, it sets the field to
 * every page of region 0 first; lmm_init() then stores what it returns.
 */
uintptr_t lmm_fast_free_pages(struct lmm *mm)
{
	uint32_t idx;
	if (LMM_DEBUG && (mm->cfg.flags & LMM_CFG_POISON))
		return 0;
	mm->fast_free_pages = (uintptr_t)mm->regions[0].npages;
	return lmm_locate_first(mm, NULL, &idx) ? 0 : mm->fast_free_pages;
}

enum lmm_status lmm_init(struct lmm *mm)
{
	const void *caller = __builtin_return_address(0);
	lmm_check_canary(mm);
	if (mm->phase != LMM_PHASE_INGEST)
		return refuse_init(mm, LMM_ERR_STATE, caller);
	mm->nranges = merge_ranges(mm->ranges, mm->nranges, "usable range", true);
	mm->nreserved = merge_ranges(mm->reserved_ranges, mm->nreserved, "reserved range", false);
	if (mm->nranges == 0) {
		lmm_logf("lmm: init failed: no usable range was given");
		return refuse_init(mm, LMM_ERR_NO_MEMORY, caller);
	}
	build_regions(mm, caller);
	if (mm->nregions == 0) {
		lmm_logf("lmm: init failed: no usable range could be kept");
		return forget_regions(mm, refuse_init(mm, LMM_ERR_NO_MEMORY, caller));
	}
	uint64_t bytes = meta_bytes_for(mm, mm->nframes);
	uint64_t home = find_metadata_home(mm, bytes);
	if (home == LMM_PHYS_INVALID) {
		lmm_logf("lmm: init failed: no unreserved run of %llu bytes for the frame metadata",
			 (unsigned long long)bytes);
		return forget_regions(mm, refuse_init(mm, LMM_ERR_NO_MEMORY, caller));
	}
	insert_reserved(mm, home, home + bytes);
	mm->metadata_phys = home;
	mm->metadata_bytes = bytes;
	mm->frames = (struct lmm_frame *)lmm_port_phys_to_virt(home);
	if (mm->cfg.flags & LMM_CFG_HOLDERS)
		mm->holders = (struct lmm_holder *)lmm_port_phys_to_virt(home + align_up(mm->nframes * sizeof(struct lmm_frame)));

	fill_frames(mm);
	populate(mm);
	setup_pool_and_cpus(mm, caller);
	mm->fast_free_pages = lmm_fast_free_pages(mm);
	mm->phase = LMM_PHASE_READY;
	uint32_t got = lmm_pool_fill(mm);
	mm->pool_low_water = got;
	mm->pool_refills = mm->pool_refill_pages = 0; /* the first fill is not a refill */

	if (!(mm->cfg.flags & LMM_CFG_QUIET))
		lmm_logf("lmm: %llu frames in %u regions, %llu free, %llu reserved, metadata %llu KiB at 0x%llx (%u B/frame%s), pool %u/%u",
			 (unsigned long long)mm->nframes, mm->nregions,
			 (unsigned long long)mm->nfree, (unsigned long long)mm->nreserved_pages,
			 (unsigned long long)(bytes >> 10), (unsigned long long)home,
			 (unsigned)sizeof(struct lmm_frame), mm->holders ? " + holders" : "",
			 (unsigned)mm->npool, mm->pool_target);
	if (!(mm->cfg.flags & LMM_CFG_QUIET))
		lmm_logf("lmm: per CPU (up to %u): cache of %u pages, refilled and drained %u at a time; pool slice of %u",
			 (unsigned)LMM_PORT_MAX_CPUS, mm->cache_high, mm->cache_batch, mm->pool_slice);
	return LMM_OK;
}

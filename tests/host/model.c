/*
 * model.c - the reference model of mm/'s public API (see model.h).
 *
 * Each wrapper: predict (the status, or the set of statuses when the model cannot know
 * which one mm/ will pick, and where the pages go), call mm/, compare, then update the
 * model from what mm/ was entitled to do.  Counter comparisons are in model_compare().
 */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port_host.h"

#define PAGE 4096ull
#define BIT(st) (1u << (st))

/* Bytes a holder writes at both ends of each page of its block, checked on free. */
#define FILL_BYTES 64

static void diverge(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diverge(struct model *m, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (m->divergences++ < 5)
		fprintf(stderr, "model: divergence at op %llu: %s\n", (unsigned long long)m->op_no, what);
	if (m->on_diverge)
		m->on_diverge(what);
}

void *model_page_ptr(const struct model *m, uint64_t pfn)
{
	(void)m;
	return lmm_port_phys_to_virt(pfn * PAGE);
}

uint64_t model_ptr_pfn(const struct model *m, const void *ptr)
{
	(void)m;
	return host_virt_to_phys(ptr) / PAGE;
}

static void refuse(struct model *m, enum lmm_status st);

static struct model_page *pg(struct model *m, uint64_t pfn)
{
	return pfn < m->npages ? &m->page[pfn] : NULL;
}

void model_init(struct model *m, struct lmm *mm, uint64_t arena_bytes, const uint64_t *refused_before)
{
	memset(m, 0, sizeof(*m));
	m->mm = mm;
	for (unsigned st = 0; refused_before && st < LMM_STATUS_COUNT; st++)
		m->refused[st] = refused_before[st];
	m->npages = arena_bytes / PAGE;
	m->page = calloc(m->npages, sizeof(*m->page));
	m->live = calloc(m->npages, sizeof(*m->live));
	if (!m->page || !m->live)
		abort();
	for (uint32_t r = 0; r < mm->nregions; r++)
		for (uint64_t p = 0; p < mm->regions[r].npages; p++)
			m->page[mm->regions[r].base_pfn + p].kind = MP_AVAIL;
	/* lmm_init() has merged the reservations (the metadata's included). */
	for (uint32_t i = 0; i < mm->nreserved; i++)
		for (uint64_t a = mm->reserved_ranges[i].base; a < mm->reserved_ranges[i].end && a / PAGE < m->npages;
		     a += PAGE)
			if (m->page[a / PAGE].kind == MP_AVAIL)
				m->page[a / PAGE].kind = MP_RESERVED;
	for (uint64_t p = 0; p < m->npages; p++) {
		m->avail += m->page[p].kind == MP_AVAIL;
		m->reserved += m->page[p].kind == MP_RESERVED;
	}
	m->managed = m->avail + m->reserved;
	m->avail_at_init = m->avail;

	/* Which pages init put in the pool is mm/'s choice; how many is checked here. */
	struct lmm_stats s;
	lmm_get_stats(mm, &s);
	m->pool_target = s.pool_target;
	uint32_t asked = mm->cfg.pool_target;
	if (s.pool_most != m->avail / 2 || s.pool_target > m->avail / 2 ||
	    (asked != LMM_POOL_AUTO && s.pool_target != (asked < m->avail / 2 ? asked : m->avail / 2)))
		diverge(m, "init: pool target %u (asked %u), pool_most %u, %llu pages available", s.pool_target, asked,
			s.pool_most, (unsigned long long)m->avail);
	/* Marks out of range were refused, then cut to fit. */
	uint32_t t = asked == LMM_POOL_AUTO ? s.pool_target : asked;
	const bool auto_low = mm->cfg.pool_low == LMM_POOL_AUTO;
	uint32_t low = auto_low ? t / 2 : mm->cfg.pool_low;
	if (low > t || t > m->avail / 2) { /* cut to fit: an automatic low is half the new target */
		refuse(m, LMM_ERR_BAD_MARKS);
		low = auto_low || low > s.pool_target ? s.pool_target / 2 : low;
	}
	if (s.pool_low != low)
		diverge(m, "init: low mark %u, want %u (asked %u)", s.pool_low, low, mm->cfg.pool_low);
	m->pool_low = s.pool_low;
	m->pool_slice = s.pool_slice;
	m->slice_most = mm->cfg.pool_slice == 0 ? 16 : mm->cfg.pool_slice == LMM_CPU_OFF ? 0 : mm->cfg.pool_slice;
	m->cache_batch = s.cache_batch;
	m->cache_high = s.cache_high;
	m->shared = m->pool = m->pool_unknown = m->reserve_frames = s.pool;
	m->pool_low_water = (uint32_t)s.pool;
	m->alloc_calls = s.alloc_calls;
	m->free_calls = s.free_calls;
	if (s.pool != (m->pool_target < m->avail ? m->pool_target : m->avail))
		diverge(m, "init filled the pool to %llu, target %u, %llu pages available",
			(unsigned long long)s.pool, m->pool_target, (unsigned long long)m->avail);
	model_compare(m);
}

void model_destroy(struct model *m)
{
	free(m->page);
	free(m->live);
	m->page = NULL;
	m->live = NULL;
}

/* ---- Policy: the per-CPU core ----------------------------------------------------- */

/* KERNEL (no NOWAIT) is refused in a handler only (debug builds); interrupts off is fine. */
static bool kernel_refused_in(enum lmm_context ctx)
{
	return LMM_DEBUG && ctx == LMM_CTX_INTERRUPT;
}

/* Pages in the buddy lists: what is available and neither cached nor in the reserve. */
static uint64_t buddy_pages(const struct model *m)
{
	return m->avail - m->cached - m->pool;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * The slice size: the configured one within half of one CPU's share of the target, and
 * none while the reserve holds more frames than its target (they must reach the core).
 */
static void slice_resize(struct model *m)
{
	uint64_t share = m->pool_target / (2 * LMM_PORT_MAX_CPUS);
	m->pool_slice = m->reserve_frames > m->pool_target ? 0 : (uint32_t)min64(m->slice_most, share);
}

/* @n reserve frames waiting leave the budget for the buddy lists; which ones is mm/'s
 * choice, so forget which pool pages were known. */
static void reserve_leave_waiting(struct model *m, uint64_t n)
{
	if (!n)
		return;
	m->pool -= n;
	m->reserve_frames -= n;
	for (uint64_t p = 0; p < m->npages; p++)
		m->page[p].known_pool = 0;
	m->pool_unknown = m->pool;
	slice_resize(m);
}

/* Frames from the buddy lists join the reserve (shared pool), at most @max. */
static uint64_t topup(struct model *m, uint64_t max)
{
	uint64_t room = m->reserve_frames < m->pool_target ? m->pool_target - m->reserve_frames : 0;
	uint64_t n = min64(min64(max, room), buddy_pages(m));
	m->shared += n;
	m->pool += n;
	m->pool_unknown += n;
	m->reserve_frames += n;
	if (n) {
		m->pool_refills++;
		m->pool_refill_pages += n;
	}
	return n;
}

static void drain_cache(struct model *m, uint64_t n)
{
	m->cached -= min64(n, m->cached);
	m->cache_drains++;
}

/*
 * Where an allocation that passed validation is served from, as the core decides it:
 * the reserve (true), or normal memory (false); *@fails when it must return NULL
 * (order 0: exact), *@maybe when only mm/ knows (a larger block).  Updates the
 * per-CPU and reserve counts for every step the core takes before it looks for pages.
 */
enum source { SRC_RESERVE, SRC_NORMAL, SRC_FAIL, SRC_LARGE };

static enum source alloc_policy(struct model *m, unsigned order, lmm_gfp_t gfp, bool *topup_after)
{
	/* Every slow path but ATOMIC's tops the reserve up, a batch of 32, once the request
	 * has been served (or has failed): see after_core(). */
	*topup_after = !(gfp & LMM_GFPB_RESERVE) && (order != 0 || !m->cached) && m->reserve_frames < m->pool_low;
	if (order != 0)
		return SRC_LARGE;
	if (gfp & LMM_GFPB_RESERVE) {
		if (m->slice) {
			m->slice--;
			m->pool--;
			return SRC_RESERVE;
		}
		/* Slice empty: half a slice from the shared pool; the level left is recorded. */
		uint64_t level = m->shared;
		uint64_t moved = min64(m->pool_slice ? (m->pool_slice + 1) / 2 : 1, m->shared);
		if (moved)
			level--;
		if (level < m->pool_low_water)
			m->pool_low_water = (uint32_t)level;
		if (moved) {
			m->shared -= moved;
			m->slice += moved - 1;
			m->pool--;
			return SRC_RESERVE;
		}
		if (m->cached) {
			m->cached--;
			return SRC_NORMAL;
		}
		if (buddy_pages(m))
			return SRC_NORMAL;
		m->pool_empty_failures++;
		return SRC_FAIL;
	}
	if (m->cached) {
		m->cached--;
		return SRC_NORMAL;
	}
	if (m->cache_high == 0)
		return buddy_pages(m) ? SRC_NORMAL : SRC_FAIL;
	uint64_t n = min64(m->cache_batch, buddy_pages(m));
	if (!n)
		return SRC_FAIL;
	m->cache_refills++;
	m->cached += n - 1;
	return SRC_NORMAL;
}

/* An ordinary order-0 page placed by the core: this CPU's cache, draining it when full. */
static void place_normal_page(struct model *m)
{
	if (!m->cache_high)
		return; /* the buddy lists */
	if (m->cached >= m->cache_high)
		drain_cache(m, m->cache_batch);
	m->cached++;
}

/* A block whose last reference is gone: where it goes.  Returns true if it stays in the
 * reserve (a reserve frame: this CPU's slice, else the shared pool while the budget is
 * within the target, else it leaves the reserve for the buddy lists). */
static bool free_policy(struct model *m, unsigned order, bool reserve)
{
	if (order != 0)
		return false;
	if (reserve) {
		if (m->reserve_frames <= m->pool_target) {
			if (m->slice < m->pool_slice)
				m->slice++;
			else
				m->shared++;
			m->pool++;
			return true;
		}
		m->reserve_frames--; /* leaves the reserve for the buddy lists */
		slice_resize(m);
		return false;
	}
	if (m->cached < m->cache_high)
		m->cached++;
	else
		place_normal_page(m);
	return false;
}

/* What a free of an available page is refused with: free, cached or in the pool, head or
 * inside a free block, it is a double free. */
static uint32_t free_refusal_of_available(void)
{
	return BIT(LMM_ERR_ALREADY_FREE);
}

/* The ownership calls read the frame alone: a free head, or a tail of a free block. */
static uint32_t own_refusal_of_available(void)
{
	return BIT(LMM_ERR_ALREADY_FREE) | BIT(LMM_ERR_NOT_HEAD);
}

/* ---- Shared steps ------------------------------------------------------------------- */

static uint8_t fill_byte(uint64_t pfn)
{
	return (uint8_t)(pfn * 0x9Du + 0x41u);
}

static void fill_block(struct model *m, uint64_t pfn, unsigned order)
{
	for (uint64_t k = 0; k < (1ull << order); k++) {
		uint8_t *p = model_page_ptr(m, pfn + k);
		memset(p, fill_byte(pfn + k), FILL_BYTES);
		memset(p + PAGE - FILL_BYTES, fill_byte(pfn + k), FILL_BYTES);
	}
}

static void check_fill(struct model *m, uint64_t pfn, unsigned order)
{
	for (uint64_t k = 0; k < (1ull << order); k++) {
		const uint8_t *p = model_page_ptr(m, pfn + k);
		for (unsigned i = 0; i < FILL_BYTES; i++)
			if (p[i] != fill_byte(pfn + k) || p[PAGE - FILL_BYTES + i] != fill_byte(pfn + k)) {
				diverge(m, "held block 0x%llx order %u: page 0x%llx changed under its holder",
					(unsigned long long)(pfn * PAGE), order,
					(unsigned long long)((pfn + k) * PAGE));
				return;
			}
	}
}

/* Aligned runs of 2^order available pages that hold no known pool page. */
static uint64_t clean_runs(const struct model *m, unsigned order)
{
	uint64_t n = 1ull << order, runs = 0;
	for (uint64_t p = 0; p + n <= m->npages; p += n) {
		uint64_t k = 0;
		while (k < n && m->page[p + k].kind == MP_AVAIL && !m->page[p + k].known_pool)
			k++;
		runs += k == n;
	}
	return runs;
}

static void refuse(struct model *m, enum lmm_status st)
{
	m->refused[st]++;
}

/* Compare a refused call's status with the allowed set; count what mm/ said. */
static void expect_refusal(struct model *m, const char *op, uint64_t pfn, enum lmm_status got, uint32_t allowed)
{
	if (got == LMM_OK || got >= LMM_STATUS_COUNT || !(allowed & BIT(got))) {
		diverge(m, "%s of 0x%llx returned '%s' (allowed set 0x%x)", op, (unsigned long long)(pfn * PAGE),
			lmm_status_str(got), allowed);
		return;
	}
	refuse(m, got);
}

/*
 * The outcome every state-changing call on one page shares: a refusal when one was
 * expected (the page must be unchanged), else LMM_OK.  Returns true when the call is
 * settled (refused as predicted, or diverged), false when it succeeded and the caller
 * goes on to update the model.
 */
static bool settled(struct model *m, const char *op, uint64_t pfn, enum lmm_status got, uint32_t refusal,
		    bool page_known)
{
	if (refusal) {
		expect_refusal(m, op, pfn, got, refusal);
		if (page_known)
			model_check_page(m, pfn);
		return true;
	}
	if (got != LMM_OK) {
		diverge(m, "%s of 0x%llx refused: '%s'", op, (unsigned long long)(pfn * PAGE), lmm_status_str(got));
		return true;
	}
	return false;
}

/*
 * The refusal every pointer-taking call shares, before the frame state is read:
 * unaligned, unmanaged.  Returns 0 when the pointer names a managed page.
 */
static uint32_t locate_refusal(struct model *m, const void *ptr, uint64_t *pfn)
{
	if ((uintptr_t)ptr & (PAGE - 1))
		return BIT(LMM_ERR_NOT_ALIGNED);
	*pfn = model_ptr_pfn(m, ptr);
	const struct model_page *p = pg(m, *pfn);
	/* host_virt_to_phys of a pointer outside the arena is garbage: check it maps back. */
	if (!p || model_page_ptr(m, *pfn) != ptr || p->kind == MP_HOLE)
		return BIT(LMM_ERR_NOT_MANAGED);
	return 0;
}

/* The refusal a frame-state check gives for a page that is not a held block head. */
static uint32_t state_refusal(const struct model_page *p, bool is_free)
{
	switch (p->kind) {
	case MP_RESERVED: return BIT(LMM_ERR_RESERVED);
	case MP_AVAIL: return is_free ? free_refusal_of_available() : own_refusal_of_available();
	default: return BIT(LMM_ERR_NOT_HEAD); /* held, not its head */
	}
}

static void hold(struct model *m, uint64_t pfn, unsigned order, bool excl, uint16_t owner, bool reserve)
{
	for (uint64_t k = 0; k < (1ull << order); k++) {
		struct model_page *p = &m->page[pfn + k];
		p->kind = MP_HELD;
		p->head = k == 0;
		p->known_pool = 0;
		m->poison_errors += p->scribbled; /* one per page, found as mm/ verifies it */
		m->refused[LMM_ERR_POISONED] += p->scribbled;
		p->poisoned = p->scribbled = 0;
	}
	struct model_page *h = &m->page[pfn];
	h->order = (uint8_t)order;
	h->refs = excl ? 0 : 1;
	h->owner = excl ? owner : 0;
	h->reserve = reserve;
	h->live = (uint32_t)m->nlive;
	m->live[m->nlive++] = pfn;
	m->avail -= 1ull << order;
	m->held += 1ull << order;
}

static void release(struct model *m, uint64_t pfn)
{
	struct model_page *h = &m->page[pfn];
	unsigned order = h->order;
	uint64_t last = m->live[--m->nlive];
	m->live[h->live] = last;
	m->page[last].live = h->live;
	bool to_pool = free_policy(m, order, h->reserve);
	for (uint64_t k = 0; k < (1ull << order); k++)
		m->page[pfn + k] = (struct model_page){ .kind = MP_AVAIL, .poisoned = m->poison };
	h->known_pool = to_pool;
	m->avail += 1ull << order;
	m->held -= 1ull << order;
}

/* ---- The checked API ------------------------------------------------------------------- */

static void *alloc_common(struct model *m, unsigned order, lmm_gfp_t gfp, uint16_t owner, bool named)
{
	enum lmm_context ctx = lmm_port_context();
	bool excl = gfp & LMM_GFPB_EXCLUSIVE;
	if (!named && excl)
		owner = lmm_port_owner();
	enum lmm_status want = LMM_OK;
	if (order > LMM_MAX_ORDER)
		want = LMM_ERR_BAD_ORDER;
	else if ((gfp & ~LMM_GFPB_ALL) || (excl && order != 0))
		want = LMM_ERR_BAD_FLAGS;
	else if (excl && owner == 0)
		want = LMM_ERR_BAD_OWNER;
	else if (!(gfp & LMM_GFPB_NOWAIT) && kernel_refused_in(ctx))
		want = LMM_ERR_BAD_CONTEXT;
	bool topup_after = false;
	enum source src = want == LMM_OK ? alloc_policy(m, order, gfp, &topup_after) : SRC_FAIL;
	uint64_t drains_before = m->cache_drains;
	struct lmm_stats before;
	if (src == SRC_LARGE)
		lmm_get_stats(m->mm, &before);

	void *p = named ? lmm_alloc_pages_owned(m->mm, order, gfp, owner) : lmm_alloc_pages(m->mm, order, gfp);
	m->op_no++;

	if (want != LMM_OK) {
		if (p)
			diverge(m, "alloc order %u gfp 0x%x in context %d succeeded; want refusal '%s'", order, gfp,
				ctx, lmm_status_str(want));
		refuse(m, want);
		return NULL; /* a wrongly granted block is leaked: the divergence is recorded */
	}
	m->alloc_calls++;
	if (src == SRC_LARGE) {
		/* Whether the lists had the block before this CPU's cache was drained is mm/'s
		 * to know: a drain is allowed only with pages cached, and required on failure. */
		struct lmm_stats after;
		lmm_get_stats(m->mm, &after);
		bool drained = after.cache_drains != before.cache_drains;
		if (drained && !m->cached)
			diverge(m, "order %u alloc drained an empty cache", order);
		if (!p && m->cached && !drained)
			diverge(m, "order %u alloc failed with %llu pages cached and did not drain them", order,
				(unsigned long long)m->cached);
		if (drained && m->cached) {
			m->cached = 0;
			m->cache_drains++;
		}
	}
	(void)drains_before;
	if (!p) {
		m->alloc_failures++;
		if (src == SRC_RESERVE || src == SRC_NORMAL)
			diverge(m, "order %u alloc gfp 0x%x failed: the model has %llu pool, %llu cached, %llu buddy pages",
				order, gfp, (unsigned long long)m->pool, (unsigned long long)m->cached,
				(unsigned long long)buddy_pages(m));
		uint64_t runs = clean_runs(m, order);
		if (src == SRC_LARGE && runs > m->pool_unknown)
			diverge(m, "order %u alloc (gfp 0x%x) failed with %llu free aligned runs and %llu pool pages",
				order, gfp, (unsigned long long)runs, (unsigned long long)m->pool_unknown);
		if (topup_after)
			topup(m, 32);
		return NULL;
	}
	if (src == SRC_FAIL) {
		diverge(m, "order %u alloc gfp 0x%x succeeded with nothing the model could serve it from", order, gfp);
		return NULL;
	}

	uint64_t pfn = model_ptr_pfn(m, p);
	if (pfn >= m->npages || model_page_ptr(m, pfn) != p || (pfn & ((1ull << order) - 1))) {
		diverge(m, "order %u alloc returned %p: outside the arena or misaligned", order, p);
		return NULL;
	}
	for (uint64_t k = 0; k < (1ull << order); k++)
		if (pfn + k >= m->npages || m->page[pfn + k].kind != MP_AVAIL) {
			diverge(m, "order %u block at 0x%llx covers page 0x%llx in state %d", order,
				(unsigned long long)(pfn * PAGE), (unsigned long long)((pfn + k) * PAGE),
				pfn + k < m->npages ? m->page[pfn + k].kind : -1);
			return NULL;
		}
	bool was_known_pool = m->page[pfn].known_pool;
	if (src == SRC_RESERVE) {
		m->pool_hits++;
		m->reserve_to[gfp & LMM_GFPB_RESERVE ? LMM_CLASS_ATOMIC : LMM_CLASS_KERNEL]++;
		if (!was_known_pool)
			m->pool_unknown--;
	} else if (was_known_pool) {
		diverge(m, "order %u alloc gfp 0x%x was given pool page 0x%llx", order, gfp,
			(unsigned long long)(pfn * PAGE));
	}
	if (gfp & LMM_GFPB_ZERO) {
		const uint64_t *w = p;
		for (uint64_t i = 0; i < (PAGE << order) / 8; i++)
			if (w[i]) {
				diverge(m, "ZERO block 0x%llx order %u has a non-zero word at offset 0x%llx",
					(unsigned long long)(pfn * PAGE), order, (unsigned long long)(i * 8));
				break;
			}
	}
	hold(m, pfn, order, excl, owner, src == SRC_RESERVE);
	if (topup_after)
		topup(m, 32);
	fill_block(m, pfn, order);
	model_check_page(m, pfn);
	return p;
}

void *model_alloc(struct model *m, unsigned order, lmm_gfp_t gfp)
{
	return alloc_common(m, order, gfp, 0, false);
}

void *model_alloc_owned(struct model *m, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	return alloc_common(m, order, gfp, owner, true);
}

/* The three ways to drop a reference; lmm_page_put is lmm_free_pages by contract. */
enum free_api { FREE_PAGES, FREE_OWNED, PAGE_PUT };

static enum lmm_status free_common(struct model *m, void *ptr, unsigned order, uint16_t owner, enum free_api api)
{
	static const char *const names[] = { "free", "free_owned", "put" };
	if (api != FREE_OWNED)
		owner = lmm_port_owner();
	uint64_t pfn = 0;
	uint32_t refusal = ptr ? locate_refusal(m, ptr, &pfn) : 0;
	if (ptr && !refusal && order > LMM_MAX_ORDER)
		refusal = BIT(LMM_ERR_BAD_ORDER);
	bool counted = ptr && !refusal; /* free_calls counts what reaches the frame check */
	struct model_page *h = counted ? &m->page[pfn] : NULL;
	if (h && !(h->kind == MP_HELD && h->head))
		refusal = state_refusal(h, true);
	else if (h && h->order != order)
		refusal = BIT(LMM_ERR_WRONG_ORDER);
	else if (h && !h->refs && h->owner != owner)
		refusal = BIT(LMM_ERR_WRONG_OWNER);
	if (h && !refusal && h->refs <= 1)
		check_fill(m, pfn, order); /* before mm/ may poison it or put it in the pool */

	enum lmm_status got = api == FREE_OWNED ? lmm_free_pages_owned(m->mm, ptr, order, owner)
			      : api == PAGE_PUT	  ? lmm_page_put(m->mm, ptr, order)
						  : lmm_free_pages(m->mm, ptr, order);
	m->op_no++;
	m->free_calls += counted;

	if (settled(m, names[api], pfn, got, refusal, h != NULL))
		return got;
	if (!h)
		return got; /* NULL */
	if (h->refs > 1)
		h->refs--;
	else
		release(m, pfn);
	model_check_page(m, pfn);
	return got;
}

enum lmm_status model_free(struct model *m, void *ptr, unsigned order)
{
	return free_common(m, ptr, order, 0, FREE_PAGES);
}

enum lmm_status model_free_owned(struct model *m, void *ptr, unsigned order, uint16_t owner)
{
	return free_common(m, ptr, order, owner, FREE_OWNED);
}

enum lmm_status model_page_put(struct model *m, void *ptr, unsigned order)
{
	return free_common(m, ptr, order, 0, PAGE_PUT);
}

/* get / transfer / unexclusive: locate, then the head's state decides. */
enum own_op { OWN_GET, OWN_TRANSFER, OWN_UNEXCLUSIVE };

static enum lmm_status ownership(struct model *m, void *ptr, enum own_op op, uint16_t from, uint16_t to)
{
	static const char *const names[] = { "get", "transfer", "unexclusive" };
	uint64_t pfn = 0;
	uint32_t refusal = locate_refusal(m, ptr, &pfn);
	struct model_page *h = refusal ? NULL : &m->page[pfn];
	if (!refusal && op == OWN_TRANSFER && to == 0)
		refusal = BIT(LMM_ERR_BAD_OWNER);
	else if (h && !(h->kind == MP_HELD && h->head))
		refusal = state_refusal(h, false);
	else if (h && h->refs) /* ordinary block */
		refusal = op != OWN_GET ? BIT(LMM_ERR_NOT_EXCLUSIVE) : h->refs == UINT16_MAX ? BIT(LMM_ERR_REFCOUNT) : 0;
	else if (h) /* exclusive */
		refusal = op == OWN_GET ? BIT(LMM_ERR_EXCLUSIVE) : h->owner != from ? BIT(LMM_ERR_WRONG_OWNER) : 0;

	enum lmm_status got = op == OWN_GET	 ? lmm_page_get(m->mm, ptr)
			      : op == OWN_TRANSFER ? lmm_page_transfer(m->mm, ptr, from, to)
						   : lmm_page_unexclusive(m->mm, ptr, from);
	m->op_no++;
	if (settled(m, names[op], pfn, got, refusal, h != NULL))
		return got;
	if (op == OWN_GET) {
		h->refs++;
	} else if (op == OWN_TRANSFER) {
		h->owner = to;
	} else {
		h->owner = 0;
		h->refs = 1;
	}
	model_check_page(m, pfn);
	return got;
}

enum lmm_status model_page_get(struct model *m, void *ptr)
{
	return ownership(m, ptr, OWN_GET, 0, 0);
}

enum lmm_status model_transfer(struct model *m, void *ptr, uint16_t from, uint16_t to)
{
	return ownership(m, ptr, OWN_TRANSFER, from, to);
}

enum lmm_status model_unexclusive(struct model *m, void *ptr, uint16_t owner)
{
	return ownership(m, ptr, OWN_UNEXCLUSIVE, owner, 0);
}

uint32_t model_pool_refill(struct model *m)
{
	enum lmm_context ctx = lmm_port_context();
	uint64_t want = 0;
	if (ctx != LMM_CTX_INTERRUPT) {
		/* Batches of 32 per lock hold, until one comes back short. */
		uint64_t n;
		do {
			n = topup(m, 32);
			want += n;
		} while (n == 32);
	}
	uint32_t got = lmm_pool_refill(m->mm);
	m->op_no++;
	if (ctx == LMM_CTX_INTERRUPT)
		refuse(m, LMM_ERR_BAD_CONTEXT);
	if (got != want)
		diverge(m, "pool refill in context %d added %u pages, want %llu", ctx, got, (unsigned long long)want);
	return got;
}

enum lmm_status model_pool_set_marks(struct model *m, uint32_t low, uint32_t target)
{
	enum lmm_context ctx = lmm_port_context();
	if (low == LMM_POOL_AUTO)
		low = target / 2;
	enum lmm_status want = ctx != LMM_CTX_NORMAL			   ? LMM_ERR_BAD_CONTEXT
			       : low > target || target > m->avail_at_init / 2 ? LMM_ERR_BAD_MARKS
										 : LMM_OK;
	enum lmm_status got = lmm_pool_set_marks(m->mm, low, target);
	m->op_no++;
	if (got != want)
		diverge(m, "set_marks(%u, %u) in context %d: '%s', want '%s'", low, target, ctx, lmm_status_str(got),
			lmm_status_str(want));
	if (want != LMM_OK) {
		refuse(m, want);
		return got;
	}
	m->pool_low = low;
	m->pool_target = target;
	/* Lowered: frames waiting in this CPU's slice and the shared pool leave the budget
	 * for the buddy lists. */
	if (m->reserve_frames > target) {
		m->shared += m->slice;
		m->slice = 0;
	}
	uint64_t leave = m->reserve_frames > target ? min64(m->reserve_frames - target, m->shared) : 0;
	m->shared -= leave;
	reserve_leave_waiting(m, leave);
	slice_resize(m);
	m->pool_low_water = (uint32_t)m->pool;
	return got;
}

void model_pool_reset_low_water(struct model *m)
{
	lmm_pool_reset_low_water(m->mm);
	m->op_no++;
	m->pool_low_water = (uint32_t)m->pool;
}

void model_drain(struct model *m)
{
	enum lmm_status st = lmm_cpu_drain(m->mm, host_cpu_id());
	m->op_no++;
	if (st != LMM_OK)
		diverge(m, "drain of this CPU refused: %s", lmm_status_str(st));
	if (m->cached) /* a drain of a non-empty cache is one drain */
		m->cache_drains++;
	m->cached = 0;
	/* The slice goes to the shared pool, less what a lowered target left over. */
	uint64_t leave = m->reserve_frames > m->pool_target ? min64(m->reserve_frames - m->pool_target, m->slice) : 0;
	m->shared += m->slice - leave;
	m->slice = 0;
	reserve_leave_waiting(m, leave);
}

bool model_scribble(struct model *m, uint64_t pfn, unsigned offset)
{
	struct model_page *p = pg(m, pfn);
	/* Once per page: a second write at the same offset would undo the first. */
	if (!p || p->kind != MP_AVAIL || !p->poisoned || p->scribbled)
		return false;
	uint8_t *b = (uint8_t *)model_page_ptr(m, pfn) + offset % PAGE;
	*b = (uint8_t)~*b; /* differs from whatever the poison pattern put there */
	p->scribbled = 1;
	return true;
}

/* ---- Comparison ---------------------------------------------------------------------- */

#define EXPECT_EQ(field, want)                                                                    \
	do {                                                                                      \
		if ((uint64_t)(field) != (uint64_t)(want))                                        \
			diverge(m, #field " = %llu, model %llu", (unsigned long long)(field),         \
				(unsigned long long)(want));                                      \
	} while (0)

void model_compare(struct model *m)
{
	struct lmm_stats s;
	lmm_get_stats(m->mm, &s);
	EXPECT_EQ(s.managed, m->managed);
	EXPECT_EQ(s.available, m->avail);
	EXPECT_EQ(s.free, buddy_pages(m));
	EXPECT_EQ(s.cached, m->cached);
	EXPECT_EQ(s.allocated, m->held);
	EXPECT_EQ(s.reserved, m->reserved);
	EXPECT_EQ(s.pool, m->pool);
	EXPECT_EQ(s.reserve_held, m->reserve_frames - m->pool);
	EXPECT_EQ(s.pool_target, m->pool_target);
	EXPECT_EQ(s.pool_low, m->pool_low);
	EXPECT_EQ(s.pool_low_water, m->pool_low_water);
	EXPECT_EQ(s.pool_slice, m->pool_slice);
	EXPECT_EQ(s.cache_batch, m->cache_batch);
	EXPECT_EQ(s.cache_high, m->cache_high);
	EXPECT_EQ(s.pool_hits, m->pool_hits);
	EXPECT_EQ(s.pool_empty_failures, m->pool_empty_failures);
	EXPECT_EQ(s.pool_refills, m->pool_refills);
	EXPECT_EQ(s.pool_refill_pages, m->pool_refill_pages);
	for (unsigned k = 0; k < LMM_CLASS_COUNT; k++)
		EXPECT_EQ(s.reserve_to[k], m->reserve_to[k]);
	EXPECT_EQ(s.cache_refills, m->cache_refills);
	EXPECT_EQ(s.cache_drains, m->cache_drains);
	EXPECT_EQ(s.alloc_calls, m->alloc_calls);
	EXPECT_EQ(s.alloc_failures, m->alloc_failures);
	EXPECT_EQ(s.free_calls, m->free_calls);
	EXPECT_EQ(s.poison_errors, m->poison_errors);
	uint64_t total = 0, blocks = 0;
	for (unsigned st = 0; st < LMM_STATUS_COUNT; st++) {
		if (s.refused[st] != m->refused[st])
			diverge(m, "stats.refused['%s'] = %llu, model %llu", lmm_status_str((enum lmm_status)st),
				(unsigned long long)s.refused[st], (unsigned long long)m->refused[st]);
		total += m->refused[st];
	}
	EXPECT_EQ(s.refused_total, total);
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		blocks += s.free_blocks[o] << o;
	EXPECT_EQ(blocks, s.free);
	struct lmm_cpu_stats cs;
	lmm_get_cpu_stats(m->mm, host_cpu_id(), &cs);
	EXPECT_EQ(cs.cache_pages, m->cached);
	EXPECT_EQ(cs.pool_pages, m->slice);
}

/* The frame record of @pfn (the struct is public; its fields are read, never written). */
static const struct lmm_frame *frame_of(const struct model *m, uint64_t pfn)
{
	const struct lmm *mm = m->mm;
	for (uint32_t r = 0; r < mm->nregions; r++)
		if (pfn >= mm->regions[r].base_pfn && pfn - mm->regions[r].base_pfn < mm->regions[r].npages)
			return &mm->frames[mm->regions[r].first_index + (pfn - mm->regions[r].base_pfn)];
	return NULL;
}

void model_check_page(struct model *m, uint64_t pfn)
{
	const struct model_page *p = pg(m, pfn);
	const struct lmm_frame *f = frame_of(m, pfn);
	if (!p || p->kind == MP_HOLE) {
		if (f)
			diverge(m, "page 0x%llx: a hole in the model has a frame", (unsigned long long)(pfn * PAGE));
		return;
	}
	if (!f) {
		diverge(m, "page 0x%llx has no frame", (unsigned long long)(pfn * PAGE));
		return;
	}
	uint8_t st = f->state;
	bool ok;
	switch (p->kind) {
	case MP_RESERVED: ok = st == LMM_FRAME_RESERVED; break;
	case MP_AVAIL:
		ok = p->known_pool ? st == LMM_FRAME_POOL
				   : st == LMM_FRAME_FREE || st == LMM_FRAME_CACHED || st == LMM_FRAME_POOL ||
					     st == LMM_FRAME_TAIL;
		break;
	default:
		if (!p->head)
			ok = st == LMM_FRAME_TAIL;
		else if (p->refs)
			ok = st == LMM_FRAME_ALLOCATED && f->order == p->order && f->refcount == p->refs && !f->owner;
		else
			ok = st == LMM_FRAME_EXCLUSIVE && f->order == p->order && f->owner == p->owner;
		break;
	}
	if (!ok)
		diverge(m, "page 0x%llx: frame state %u order %u owner 0x%x refs %u; model kind %u head %u order %u "
			   "owner 0x%x refs %u pool %u", (unsigned long long)(pfn * PAGE), st, f->order, f->owner,
			f->refcount, p->kind, p->head, p->order, p->owner, p->refs, p->known_pool);
}

/* The walk against the model, page by page; learns which available pages are POOL. */
struct walk_ctx {
	struct model *m;
	uint64_t next_pfn, pool_pages, cached_pages;
};

static void walk_cb(const struct lmm_run *run, void *vctx)
{
	struct walk_ctx *w = vctx;
	struct model *m = w->m;
	if (run->base_pfn != w->next_pfn)
		diverge(m, "walk: run at pfn 0x%llx, expected 0x%llx", (unsigned long long)run->base_pfn,
			(unsigned long long)w->next_pfn);
	w->next_pfn = run->base_pfn + run->npages;
	for (uint64_t q = run->base_pfn; q < run->base_pfn + run->npages; q++) {
		struct model_page *p = pg(m, q);
		uint8_t kind = p ? p->kind : MP_HOLE;
		bool ok;
		switch (run->kind) {
		case LMM_RUN_HOLE: ok = kind == MP_HOLE; break;
		case LMM_RUN_RESERVED: ok = kind == MP_RESERVED; break;
		case LMM_RUN_FREE: ok = kind == MP_AVAIL && !p->known_pool; break;
		case LMM_RUN_CACHED: ok = kind == MP_AVAIL && !p->known_pool; w->cached_pages++; break;
		case LMM_RUN_POOL:
			ok = kind == MP_AVAIL;
			if (ok)
				p->known_pool = 1;
			w->pool_pages++;
			break;
		default: ok = kind == MP_HELD; break;
		}
		if (!ok) {
			diverge(m, "walk: page 0x%llx is run kind %d, model kind %u", (unsigned long long)(q * PAGE),
				run->kind, kind);
			return;
		}
	}
}

/* Free blocks per order of fully coalesced memory: the maximal aligned runs of buddy
 * pages within each region (blocks never span regions). */
static void expected_free_blocks(const struct model *m, uint64_t *blocks)
{
	const struct lmm *mm = m->mm;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		blocks[o] = 0;
	for (uint32_t r = 0; r < mm->nregions; r++) {
		uint64_t p = mm->regions[r].base_pfn, end = p + mm->regions[r].npages;
		while (p < end) {
			const struct model_page *q = &m->page[p];
			if (q->kind != MP_AVAIL || q->known_pool) {
				p++;
				continue;
			}
			unsigned k = 0;
			while (k < LMM_MAX_ORDER && !(p & ((2ull << k) - 1)) && p + (2ull << k) <= end) {
				uint64_t i = 1ull << k;
				while (i < (2ull << k) && m->page[p + i].kind == MP_AVAIL && !m->page[p + i].known_pool)
					i++;
				if (i < (2ull << k))
					break;
				k++;
			}
			blocks[k]++;
			p += 1ull << k;
		}
	}
}

void model_check(struct model *m)
{
	model_compare(m);
	uint64_t problems = lmm_check(m->mm);
	if (problems)
		diverge(m, "lmm_check found %llu problems (%s)", (unsigned long long)problems, host_log_last());
	/* Every held head; of the other pages, one in 8, a different eighth each time (the
	 * query takes the lock, and a full sweep per check dominated the fuzzer's time). */
	uint64_t phase = m->op_no % 8;
	for (uint64_t p = 0; p < m->npages; p++) {
		const struct model_page *q = &m->page[p];
		if (q->kind == MP_HOLE || (!(q->kind == MP_HELD && q->head) && p % 8 != phase))
			continue;
		uint16_t want = q->kind == MP_HELD && q->head ? q->owner : 0;
		uint16_t got = lmm_page_owner(m->mm, model_page_ptr(m, p));
		if (got != want)
			diverge(m, "owner of 0x%llx is 0x%x, model 0x%x", (unsigned long long)(p * PAGE), got, want);
	}

	/* Exact: the cache drained, the walk names every pool page, and then the buddy
	 * lists must hold exactly the fully coalesced rest. */
	model_drain(m);
	struct walk_ctx w = { .m = m };
	lmm_walk(m->mm, walk_cb, &w);
	EXPECT_EQ(w.pool_pages, m->pool);
	EXPECT_EQ(w.cached_pages, 0);
	m->pool_unknown = 0;
	struct lmm_stats s;
	lmm_get_stats(m->mm, &s);
	uint64_t want[LMM_MAX_ORDER + 1];
	expected_free_blocks(m, want);
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		if (s.free_blocks[o] != want[o])
			diverge(m, "free_blocks[%u] = %llu, fully coalesced model %llu", o,
				(unsigned long long)s.free_blocks[o], (unsigned long long)want[o]);
	model_compare(m);
}

void model_release_all(struct model *m)
{
	/* A valid free that mm/ refuses is already a divergence; the bound stops the loop
	 * retrying it forever.  Each held block needs at most refs + 1 frees. */
	uint64_t bound = 0;
	for (uint64_t i = 0; i < m->nlive; i++)
		bound += m->page[m->live[i]].refs + 1u;
	while (m->nlive && bound--) {
		uint64_t pfn = m->live[m->nlive - 1];
		const struct model_page *h = &m->page[pfn];
		void *ptr = model_page_ptr(m, pfn);
		if (h->refs == 0)
			model_free_owned(m, ptr, h->order, h->owner);
		else
			model_free(m, ptr, h->order);
	}
}

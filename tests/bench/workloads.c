/*
 * workloads.c - the benchmark loops and the free-list baselines (see workloads.h).
 * Freestanding: no libc, nothing host-specific; the loops only call allocators and meters.
 */
#include "workloads.h"

#define BENCH_NOINLINE __attribute__((noinline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* A uniform index below @n (n < 2^32) without a division. */
static uint64_t below(uint64_t *state, uint64_t n)
{
	return ((bench_rand(state) >> 32) * n) >> 32;
}

/* ---- Baselines ------------------------------------------------------------------------- */

void bench_freelist_build(struct bench_freelist *fl, void *base, uint64_t npages)
{
	char *b = base;
	fl->head = NULL;
	for (uint64_t i = npages; i-- > 0;) {
		void **page = (void **)(b + (i << LMM_PAGE_SHIFT));
		*page = fl->head;
		fl->head = page;
	}
}

BENCH_NOINLINE void *bench_freelist_alloc(void *ctx, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	void **page = fl->head;
	if (page)
		fl->head = *page;
	return page;
}

BENCH_NOINLINE void bench_freelist_free(void *ctx, void *page, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	*(void **)page = fl->head;
	fl->head = page;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Test-and-set: spin on a plain load until the exchange finds the lock free. */
static inline void tas_lock(uint32_t *l)
{
	while (__atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			cpu_relax();
}

static inline void tas_unlock(uint32_t *l)
{
	__atomic_store_n(l, 0u, __ATOMIC_RELEASE);
}

BENCH_NOINLINE void *bench_freelist_alloc_tas(void *ctx, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	lmm_irqflags_t flags = lmm_port_irq_save();
	tas_lock(&fl->tas);
	void **page = fl->head;
	if (page)
		fl->head = *page;
	tas_unlock(&fl->tas);
	lmm_port_irq_restore(flags);
	return page;
}

BENCH_NOINLINE void bench_freelist_free_tas(void *ctx, void *page, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	lmm_irqflags_t flags = lmm_port_irq_save();
	tas_lock(&fl->tas);
	*(void **)page = fl->head;
	fl->head = page;
	tas_unlock(&fl->tas);
	lmm_port_irq_restore(flags);
}

BENCH_NOINLINE void *bench_freelist_alloc_irqsave(void *ctx, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	lmm_irqflags_t flags = lmm_port_lock_irqsave(&fl->lock);
	void **page = fl->head;
	if (page)
		fl->head = *page;
	lmm_port_unlock_irqrestore(&fl->lock, flags);
	return page;
}

BENCH_NOINLINE void bench_freelist_free_irqsave(void *ctx, void *page, unsigned order)
{
	struct bench_freelist *fl = ctx;
	(void)order;
	lmm_irqflags_t flags = lmm_port_lock_irqsave(&fl->lock);
	*(void **)page = fl->head;
	fl->head = page;
	lmm_port_unlock_irqrestore(&fl->lock, flags);
}

void bench_checked_build(struct bench_checked_list *cl, void *base, uint64_t npages,
			 struct bench_checked_page *pages)
{
	cl->base = base;
	cl->npages = npages;
	cl->pages = pages;
	for (uint64_t i = 0; i < npages; i++)
		pages[i] = (struct bench_checked_page){ i + 1 < npages ? (uint32_t)(i + 1) : UINT32_MAX, 0 };
	cl->head = npages ? 0 : UINT32_MAX;
	cl->refused = 0;
}

BENCH_NOINLINE void *bench_checked_alloc(void *ctx, unsigned order)
{
	struct bench_checked_list *cl = ctx;
	(void)order;
	lmm_irqflags_t flags = lmm_port_irq_save();
	tas_lock(&cl->tas);
	uint32_t i = cl->head;
	if (i != UINT32_MAX) {
		cl->head = cl->pages[i].next;
		cl->pages[i].allocated = 1;
	}
	tas_unlock(&cl->tas);
	lmm_port_irq_restore(flags);
	return i != UINT32_MAX ? cl->base + ((uint64_t)i << LMM_PAGE_SHIFT) : NULL;
}

BENCH_NOINLINE void bench_checked_free(void *ctx, void *page, unsigned order)
{
	struct bench_checked_list *cl = ctx;
	(void)order;
	uint64_t off = (uint64_t)((char *)page - cl->base);
	if (unlikely(off >= cl->npages << LMM_PAGE_SHIFT || (off & (LMM_PAGE_SIZE - 1)))) {
		cl->refused++;
		return;
	}
	uint32_t i = (uint32_t)(off >> LMM_PAGE_SHIFT);
	lmm_irqflags_t flags = lmm_port_irq_save();
	tas_lock(&cl->tas);
	if (likely(cl->pages[i].allocated)) {
		cl->pages[i].allocated = 0;
		cl->pages[i].next = cl->head;
		cl->head = i;
	} else {
		cl->refused++;
	}
	tas_unlock(&cl->tas);
	lmm_port_irq_restore(flags);
}

/* ---- mm/ ----------------------------------------------------------------------------------- */

BENCH_NOINLINE void *bench_lmm_alloc(void *mm, unsigned order)
{
	return lmm_alloc_pages(mm, order, LMM_GFP_KERNEL);
}

/* The status is not checked here (that would cost mm/ alone a compare per call): mm/
 * counts every refusal, and the drivers check lmm_stats.refused_total after each run. */
BENCH_NOINLINE void bench_lmm_free(void *mm, void *page, unsigned order)
{
	lmm_free_pages(mm, page, order);
}

BENCH_NOINLINE void *bench_lmm_atomic_alloc(void *unused, unsigned order)
{
	(void)unused;
	(void)order;
	return labyrinth_void_alloc_page_gfp_atomic_exclusive();
}

BENCH_NOINLINE void bench_lmm_atomic_free(void *unused, void *page, unsigned order)
{
	(void)unused;
	(void)order;
	labyrinth_free_page_atomic_exclusive(page);
}

/* ---- W1, W5 ------------------------------------------------------------------------------ */

uint64_t bench_pairs(const struct bench_alloc *a, struct bench_meter *m, uint64_t pairs)
{
	void *(*alloc)(void *, unsigned) = a->alloc;
	void (*release)(void *, void *, unsigned) = a->free;
	void *ctx = a->ctx;
	uint64_t failed = 0;

	m->begin(m);
	for (uint64_t i = 0; i < pairs; i++) {
		void *p = alloc(ctx, 0);
		if (unlikely(!p)) {
			failed++;
			continue;
		}
		release(ctx, p, 0);
	}
	m->end(m, "pair", pairs);
	return failed;
}

/* ---- W2 ------------------------------------------------------------------------------------ */

uint64_t bench_exhaust(const struct bench_alloc *a, struct bench_meter *m, void **slots,
		       uint64_t cap, uint64_t seed)
{
	void *(*alloc)(void *, unsigned) = a->alloc;
	void (*release)(void *, void *, unsigned) = a->free;
	void *ctx = a->ctx;
	uint64_t n = 0;
	void *p;

	m->begin(m);
	while (n < cap && (p = alloc(ctx, 0)) != NULL)
		slots[n++] = p;
	m->end(m, "alloc", n);

	/* Fisher-Yates, outside the regions. */
	uint64_t rng = seed | 1;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = below(&rng, i);
		void *t = slots[i - 1];
		slots[i - 1] = slots[j];
		slots[j] = t;
	}

	m->begin(m);
	for (uint64_t i = 0; i < n; i++)
		release(ctx, slots[i], 0);
	m->end(m, "free", n);
	return n;
}

/* ---- W3 ------------------------------------------------------------------------------------- */

static unsigned draw_order(uint64_t *rng, const struct bench_w3_config *c)
{
	uint64_t r = bench_rand(rng);
	if (c->geometric) /* trailing zeros of a uniform word: P(k) = 2^-(k+1) */
		return (unsigned)__builtin_ctzll(r | (1ull << c->max_order));
	return (unsigned)(((r >> 32) * (c->max_order + 1)) >> 32);
}

void bench_w3(const struct bench_alloc *a, struct bench_meter *m, const struct bench_w3_config *c,
	      void **blocks, uint8_t *orders, uint64_t cap, struct bench_w3_result *r)
{
	void *(*alloc)(void *, unsigned) = a->alloc;
	void (*release)(void *, void *, unsigned) = a->free;
	void *ctx = a->ctx;
	uint64_t rng = c->seed | 1;
	uint64_t target = c->avail_pages * c->occupancy_pct / 100;
	uint64_t big = 1ull << c->max_order;
	uint64_t live = 0, n = 0;

	*r = (struct bench_w3_result){ 0 };

	/* Fill: every draw fits until live is within one largest block of the target. */
	uint64_t misses = 0;
	while (live + big <= target && n < cap && misses < 1000) {
		unsigned k = draw_order(&rng, c);
		void *p = alloc(ctx, k);
		if (!p) {
			r->fill_failures++;
			misses++;
			continue;
		}
		blocks[n] = p;
		orders[n++] = (uint8_t)k;
		live += 1ull << k;
	}

	m->begin(m);
	for (uint64_t i = 0; i < c->ops; i++) {
		unsigned k = draw_order(&rng, c);
		uint64_t pages = 1ull << k;
		if ((live + pages <= target && n < cap) || n == 0) {
			void *p = alloc(ctx, k);
			r->allocs++;
			if (unlikely(!p)) {
				if (c->avail_pages - live >= pages)
					r->frag_failures++;
				else
					r->other_failures++;
				continue;
			}
			blocks[n] = p;
			orders[n++] = (uint8_t)k;
			live += pages;
		} else {
			uint64_t j = below(&rng, n);
			release(ctx, blocks[j], orders[j]);
			r->frees++;
			live -= 1ull << orders[j];
			n--;
			blocks[j] = blocks[n];
			orders[j] = orders[n];
		}
	}
	m->end(m, "op", c->ops);
	r->ops = c->ops;
	r->live_pages = live;

	while (n > 0) {
		n--;
		release(ctx, blocks[n], orders[n]);
	}
}

/*
 * workloads.h - the benchmark workloads W1, W2, W3 and W5 and the two free-list
 * baselines, freestanding (no libc) so the host benchmark and an in-kernel one run the
 * very same loops.  Only the driver differs: what a meter reads, where arenas come from.
 */
#ifndef LABYRINTH_BENCH_WORKLOADS_H
#define LABYRINTH_BENCH_WORKLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/mm.h>

/*
 * An allocator as the loops see it.  The loops call through these pointers, and every
 * function behind them is noinline, so each allocation and each free is a real call
 * for every allocator alike: nothing is inlined into a loop.
 */
struct bench_alloc {
	const char *name;
	void *(*alloc)(void *ctx, unsigned order); /* NULL when nothing is left */
	void (*free)(void *ctx, void *page, unsigned order);
	void *ctx;
};

/*
 * Brackets each measured region: begin() just before its first allocator call, end()
 * just after its last, with the phase name and the number of operations in it.  The host
 * driver reads CLOCK_MONOTONIC or toggles callgrind; a kernel would read the TSC.
 * Nothing else (set-up, shuffling, checks) happens between begin() and end().
 */
struct bench_meter {
	void (*begin)(struct bench_meter *m);
	void (*end)(struct bench_meter *m, const char *phase, uint64_t ops);
};

/* ---- Baselines: an intrusive free list of 4 KiB pages ------------------------------- */

/*
 * The free list a kernel writer has in ten minutes: each free page holds the address of
 * the next in its first word.  Order 0 only (the order argument is ignored).  The same
 * list is driven three ways:
 *   bench_freelist_alloc/free          bare: no lock, no interrupt masking;
 *   bench_freelist_*_tas               the cheap locked list, the reference of every
 *                                      ratio: the port's lmm_port_irq_save/restore around
 *                                      a test-and-set lock (one atomic exchange to take,
 *                                      one release store to drop);
 *   bench_freelist_*_irqsave           behind the port's own IRQ-save spinlock
 *                                      (lmm_port_lock_irqsave), as mm/ takes its lock.
 */
struct bench_freelist {
	void *head;
	lmm_port_lock_t lock;
	uint32_t tas; /* the test-and-set lock: 1 while held */
};

/* Thread @npages pages from @base onto the list, lowest address first out.  Writes every page. */
void bench_freelist_build(struct bench_freelist *fl, void *base, uint64_t npages);
void *bench_freelist_alloc(void *fl, unsigned order);
void bench_freelist_free(void *fl, void *page, unsigned order);
void *bench_freelist_alloc_tas(void *fl, unsigned order);
void bench_freelist_free_tas(void *fl, void *page, unsigned order);
void *bench_freelist_alloc_irqsave(void *fl, unsigned order);
void bench_freelist_free_irqsave(void *fl, void *page, unsigned order);

/*
 * The checked list: the same locked list (test-and-set, the port's irq save/restore)
 * over a table of 8-byte page records, so that a free can be refused: a pointer outside
 * the arena or not page aligned, or a page that is not allocated (a double free).  The
 * least a kernel's page allocator checks; a reference for what mm/'s checks cost, not
 * a target (mm/ also checks order, references, owner and reserve, and has per-CPU
 * caches).  Refusals are counted, never printed.  Order 0 only.
 */
struct bench_checked_page {
	uint32_t next;     /* index of the next free page, UINT32_MAX at the end */
	uint32_t allocated; /* 1 while handed out */
};
struct bench_checked_list {
	char *base;    /* the arena; page i is at base + i * 4096 */
	uint64_t npages;
	struct bench_checked_page *pages;
	uint32_t head; /* index of the first free page, UINT32_MAX when none */
	uint32_t tas;
	uint64_t refused;
};

/* Every page free, lowest address first out.  @pages has room for @npages records. */
void bench_checked_build(struct bench_checked_list *cl, void *base, uint64_t npages,
			 struct bench_checked_page *pages);
void *bench_checked_alloc(void *cl, unsigned order);
void bench_checked_free(void *cl, void *page, unsigned order);

/* ---- mm/ adapters -------------------------------------------------------------------- */

/* ctx is the struct lmm.  lmm_alloc_pages(ctx, order, LMM_GFP_KERNEL) / lmm_free_pages(). */
void *bench_lmm_alloc(void *mm, unsigned order);
void bench_lmm_free(void *mm, void *page, unsigned order);
/* ctx unused: labyrinth_void_alloc_page_gfp_atomic_exclusive() and its free (order 0). */
void *bench_lmm_atomic_alloc(void *unused, unsigned order);
void bench_lmm_atomic_free(void *unused, void *page, unsigned order);

/* ---- Workloads ------------------------------------------------------------------------- */

/*
 * W1 and W5: @pairs order-0 allocations, each freed at once.  One region, phase "pair".
 * Returns the number of allocations that failed (0 expected).
 */
uint64_t bench_pairs(const struct bench_alloc *a, struct bench_meter *m, uint64_t pairs);

/*
 * W2: allocate order-0 pages until the allocator says no (region "alloc", one op per
 * page obtained), shuffle them with @seed outside any region, free them all in that order
 * (region "free").  @slots must hold @cap pointers, more than the allocator can hand out.
 * Returns the pages obtained; == @cap means the allocator was not exhausted.
 */
uint64_t bench_exhaust(const struct bench_alloc *a, struct bench_meter *m, void **slots,
		       uint64_t cap, uint64_t seed);

/*
 * W3: random orders 0..max_order at a fixed occupancy.  An untimed fill brings the live
 * pages to within one largest block of occupancy_pct% of @avail_pages; then @ops timed
 * operations (region "op"): draw an order; if it fits under the occupancy, allocate it,
 * else free a live block chosen at random.  Geometric draws take order k with probability
 * 2^-(k+1) (the tail beyond max_order folds into max_order); uniform draws are uniform.
 * A fragmentation failure is an allocation that failed although the free pages
 * (avail_pages minus live pages) numbered at least 2^order.  Everything is freed at the end.
 */
struct bench_w3_config {
	uint64_t avail_pages; /* pages the allocator can hand out when nothing is live */
	unsigned occupancy_pct;
	bool geometric;
	unsigned max_order;
	uint64_t ops;
	uint64_t seed;
};

struct bench_w3_result {
	uint64_t ops, allocs, frees;
	uint64_t frag_failures;  /* in the timed operations */
	uint64_t other_failures; /* failures with too few free pages (none by construction) */
	uint64_t fill_failures;  /* fragmentation failures during the untimed fill */
	uint64_t live_pages;     /* at the end of the timed operations */
};

/* @blocks and @orders hold @cap entries: at least avail_pages * occupancy_pct / 100. */
void bench_w3(const struct bench_alloc *a, struct bench_meter *m, const struct bench_w3_config *c,
	      void **blocks, uint8_t *orders, uint64_t cap, struct bench_w3_result *r);

/* The generator every workload uses (xorshift64*), for drivers that want the same stream. */
uint64_t bench_rand(uint64_t *state);

#endif /* LABYRINTH_BENCH_WORKLOADS_H */

/*
 * model.h - a reference model of mm/'s public API, for the fuzzer (tests/fuzz/fuzz_mm.c)
 * and for model tests: every call goes through a checked wrapper that predicts what
 * mm/ must do, makes the real call, and compares.
 *
 * The model knows, per page of the arena: hole, reserved, available (in the buddy
 * lists, this CPU's cache or the reserve: which one only when it is certain) or held
 * (in an allocated block, with the block's order, references, exclusive owner, and
 * whether it is a reserve frame).  It tracks this CPU's cache and pool slice, the
 * shared pool and the reserve's budget as counts, exactly (one CPU: the simulated
 * handler runs on the thread it interrupts), so it predicts every counter of struct
 * lmm_stats, every refusal reason, and the contents promises (ZERO blocks read as
 * zero; a held block keeps what its holder wrote).  A NULL order-0 allocation is
 * predicted exactly; a NULL larger one must be justified: a divergence when more
 * aligned runs of available pages exist than the pool could spoil.
 *
 * The rules of the core - where a freed page goes, which contexts refuse KERNEL, how
 * the reserve is served and refilled - sit in model.c under "Policy".
 *
 * Single-threaded, one CPU: the wrappers may be called from the simulated interrupt
 * handler (host_irq_*), never from two threads at once, never after host_set_cpu().
 */
#ifndef LABYRINTH_MODEL_H
#define LABYRINTH_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <labyrinth/mm.h>

enum model_page_kind { MP_HOLE = 0, MP_RESERVED, MP_AVAIL, MP_HELD };

struct model_page {
	uint8_t kind;       /* enum model_page_kind */
	uint8_t head;       /* first page of a held block */
	uint8_t order;      /* held head: order of the block */
	uint8_t known_pool; /* available and certainly waiting in the reserve */
	uint8_t reserve;    /* held head: a reserve frame (goes back to the reserve when freed) */
	uint8_t poisoned;   /* freed with poisoning on, not allocated since */
	uint8_t scribbled;  /* poisoned, then written (model_scribble) */
	uint16_t refs;      /* held head, not exclusive: references */
	uint16_t owner;     /* held head, exclusive: the owner; 0 otherwise */
	uint32_t live;      /* held head: its index in model.live */
};

struct model {
	struct lmm *mm;
	uint64_t npages; /* pfns [0, npages) are the arena */
	struct model_page *page;
	uint64_t *live; /* pfns of held block heads, in no order */
	uint64_t nlive;

	/* What mm/'s counters must read. */
	uint64_t avail, held, reserved, managed;
	uint64_t avail_at_init; /* half of it: the largest pool target */
	uint64_t pool, pool_unknown; /* reserve frames waiting, and how many are not known_pool */
	uint64_t shared, slice, cached; /* pool = shared + slice (this CPU's); this CPU's cache */
	uint64_t reserve_frames;        /* the reserve's budget: waiting + held */
	uint32_t pool_target, pool_low, pool_low_water, pool_slice, cache_batch, cache_high;
	uint32_t slice_most; /* the configured slice size; pool_slice is it within the target */
	uint64_t pool_hits, pool_empty_failures, pool_refills, pool_refill_pages;
	uint64_t reserve_to[LMM_CLASS_COUNT];
	uint64_t cache_refills, cache_drains;
	uint64_t alloc_calls, alloc_failures, free_calls;
	uint64_t poison_errors;
	/* Set by the driver when the allocator was configured with LMM_CFG_POISON. */
	bool poison;
	uint64_t refused[LMM_STATUS_COUNT];

	/* Divergences: counted; the first few printed; @on_diverge (if set) runs on each
	 * (the fuzzer aborts there so libFuzzer keeps the input). */
	uint64_t divergences;
	uint64_t op_no;
	void (*on_diverge)(const char *what);
};

/* Build the model of @mm, which lmm_init() has just set up over an arena of @arena_bytes
 * mapped at physical 0 by host_arena_map().  Reads the regions and reservations from the
 * struct (public fields) and the pool figures from lmm_get_stats(). */
/* @refused_before: the statuses (by reason) that the caller's range calls returned, or NULL. */
void model_init(struct model *m, struct lmm *mm, uint64_t arena_bytes, const uint64_t *refused_before);
void model_destroy(struct model *m);

/* The checked API.  Each makes the real call in the caller's current context. */
void *model_alloc(struct model *m, unsigned order, lmm_gfp_t gfp);
void *model_alloc_owned(struct model *m, unsigned order, lmm_gfp_t gfp, uint16_t owner);
enum lmm_status model_free(struct model *m, void *ptr, unsigned order);
enum lmm_status model_free_owned(struct model *m, void *ptr, unsigned order, uint16_t owner);
enum lmm_status model_page_get(struct model *m, void *ptr);
enum lmm_status model_page_put(struct model *m, void *ptr, unsigned order);
enum lmm_status model_transfer(struct model *m, void *ptr, uint16_t from, uint16_t to);
enum lmm_status model_unexclusive(struct model *m, void *ptr, uint16_t owner);
uint32_t model_pool_refill(struct model *m);
enum lmm_status model_pool_set_marks(struct model *m, uint32_t low, uint32_t target);
void model_pool_reset_low_water(struct model *m);
/* lmm_cpu_drain() of the calling CPU: its cache to the buddy lists, its slice to the pool. */
void model_drain(struct model *m);

/* A use after free: write one byte into available page @pfn, which must have been
 * poisoned by its free; the allocation that next takes it must count a poison error.
 * Returns false (and writes nothing) for any other page. */
bool model_scribble(struct model *m, uint64_t pfn, unsigned offset);

/* Every counter against the model (cheap: after every operation). */
void model_compare(struct model *m);
/* The frame record of page @pfn against the model (state, order, owner, refcount). */
void model_check_page(struct model *m, uint64_t pfn);
/* model_compare, lmm_check() == 0, pages' owners as lmm_page_owner() reports them
 * (every held block, an eighth of the rest), then model_drain() and an exact
 * comparison: lmm_walk() against every page, and the free blocks per order against the
 * fully coalesced free memory the model computes (O(pages): periodically).  Normal
 * context only, as lmm_check is. */
void model_check(struct model *m);

/* For drivers choosing targets. */
void *model_page_ptr(const struct model *m, uint64_t pfn);
uint64_t model_ptr_pfn(const struct model *m, const void *ptr);
/* Free every held block (dropping every reference) from normal context. */
void model_release_all(struct model *m);

#endif /* LABYRINTH_MODEL_H */

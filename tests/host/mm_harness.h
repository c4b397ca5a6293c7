/*
 * mm_harness.h - shared scaffolding for the mm/ host tests: the named-case runner of
 * testlib.h (CHECK, ASSERT, TEST, testlib_exit) plus fixtures that build an allocator
 * over a layout of the host arena.
 */
#ifndef LABYRINTH_MM_HARNESS_H
#define LABYRINTH_MM_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/mm.h>
#include "port_host.h"
#include "testlib.h"

/* ---- Allocator fixtures ----------------------------------------------------------------- */

struct range {
	uint64_t base, len;
};

/*
 * An arena too big for this host's address space (65 GiB on a 32-bit host): map one
 * window per run of usable RAM instead, whole pages, merged, clipped to the arena.
 * Physical addresses are unchanged; only the holes go unmapped.
 */
static inline void mm_map_ram_windows(uint64_t arena_bytes, const struct range *use, size_t nuse)
{
	struct range w[64];
	size_t n = 0;
	for (size_t i = 0; i < nuse && n < 64; i++) {
		uint64_t b = use[i].base & ~4095ull, e = (use[i].base + use[i].len + 4095) & ~4095ull;
		if (e > arena_bytes)
			e = arena_bytes;
		if (b >= e)
			continue;
		size_t j = n++;
		for (; j > 0 && w[j - 1].base > b; j--)
			w[j] = w[j - 1];
		w[j] = (struct range){ b, e - b };
	}
	for (size_t i = 0; i < n;) {
		uint64_t b = w[i].base, e = b + w[i].len;
		for (i++; i < n && w[i].base <= e; i++)
			if (w[i].base + w[i].len > e)
				e = w[i].base + w[i].len;
		host_arena_map_window(b, e - b);
	}
}

/*
 * Build @mm over the given usable ranges and reservations inside an arena of
 * @arena_bytes (mapped fresh).  Returns the lmm_init() status.
 */
static inline enum lmm_status mm_setup(struct lmm *mm, uint64_t arena_bytes, const struct range *use,
				       size_t nuse, const struct range *res, size_t nres,
				       const struct lmm_config *cfg)
{
	host_arena_unmap();
	if (arena_bytes <= host_arena_max())
		host_arena_map(arena_bytes);
	else
		mm_map_ram_windows(arena_bytes, use, nuse);
	struct lmm_config c = { .flags = LMM_CFG_QUIET };
	lmm_begin(mm, cfg ? cfg : &c);
	for (size_t i = 0; i < nuse; i++)
		lmm_add_range(mm, use[i].base, use[i].len);
	for (size_t i = 0; i < nres; i++)
		lmm_reserve_range(mm, res[i].base, res[i].len);
	return lmm_init(mm);
}

static inline struct lmm_stats mm_stats(struct lmm *mm)
{
	struct lmm_stats s;
	lmm_get_stats(mm, &s);
	return s;
}

/* Conservation, as every test states it. */
static inline int mm_conserved(struct lmm *mm)
{
	struct lmm_stats s = mm_stats(mm);
	return s.free + s.allocated + s.pool + s.cached + s.reserved == s.managed;
}

/*
 * After a failed lmm_init(), the memory it was given is not managed: a free or a
 * reference is refused as NOT_MANAGED (not a crash on frames never built), translations
 * find nothing, and nothing is handed out.  @pa: a page inside that memory.
 */
static inline int mm_manages_nothing(struct lmm *mm, uint64_t pa)
{
	void *va = lmm_port_phys_to_virt(pa);
	return lmm_free_pages(mm, va, 0) == LMM_ERR_NOT_MANAGED && lmm_page_get(mm, va) == LMM_ERR_NOT_MANAGED &&
	       lmm_virt_to_phys(mm, va) == LMM_PHYS_INVALID && lmm_phys_to_virt(mm, pa) == NULL &&
	       lmm_alloc_pages(mm, 0, LMM_GFP_KERNEL) == NULL;
}

#define MiB (1ull << 20)
#define GiB (1ull << 30)

#endif /* LABYRINTH_MM_HARNESS_H */

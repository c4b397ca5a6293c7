/*
 * internal.h - mm/'s private helpers: frame <-> address translation, the free and
 * pool lists, and reporting.  Included only by the .c files of mm/.
 *
 * Frame indices: every managed frame has a 32-bit index into mm->frames.  Regions are
 * laid out back to back in that array, so a region's frames are contiguous and a block
 * (which never crosses a region) is a contiguous index range.  Indices, not pointers,
 * keep a frame record at 16 bytes.
 */
#ifndef LMM_INTERNAL_H
#define LMM_INTERNAL_H

#include <stdarg.h>
#include <labyrinth/mm.h>

#define LMM_CANARY 0x4c6162797269746eull /* "Labyrint" */

enum lmm_phase {
	LMM_PHASE_INGEST = 0x1a61e57u,
	LMM_PHASE_READY = 0x5eadd1u,
};

#define LMM_FRAME_F_POISONED (1u << 0) /* page filled with LMM_POISON since its free */
#define LMM_POISON 0x5a5a5a5aa5a5a5a5ull

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Counters that are read without the lock as a hint use relaxed atomic accesses. */
#define LMM_READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LMM_WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static inline const struct lmm_region *lmm_region_of(const struct lmm *mm, uint32_t idx)
{
	return &mm->regions[mm->frames[idx].region];
}

static inline uint64_t lmm_frame_pfn(const struct lmm *mm, uint32_t idx)
{
	const struct lmm_region *r = lmm_region_of(mm, idx);
	return r->base_pfn + (idx - r->first_index);
}

static inline void *lmm_frame_virt(const struct lmm *mm, uint32_t idx)
{
	const struct lmm_region *r = lmm_region_of(mm, idx);
	return (void *)(r->vbase + ((uintptr_t)(idx - r->first_index) << LMM_PAGE_SHIFT));
}

/* Index of the frame at physical page @pfn, or LMM_NIL if no region holds it. */
static inline uint32_t lmm_pfn_index(const struct lmm *mm, uint64_t pfn)
{
	for (uint32_t i = 0; i < mm->nregions; i++) {
		const struct lmm_region *r = &mm->regions[i];
		if (pfn - r->base_pfn < r->npages)
			return r->first_index + (uint32_t)(pfn - r->base_pfn);
	}
	return LMM_NIL;
}

/*
 * Index of the frame whose page contains @ptr.  Lock-free: regions never change
 * after lmm_init().  Returns NOT_ALIGNED / NOT_MANAGED for bad pointers.
 */
static inline enum lmm_status lmm_locate(const struct lmm *mm, const void *ptr, uint32_t *idx)
{
	uintptr_t va = (uintptr_t)ptr;
	for (uint32_t i = 0; i < mm->nregions; i++) {
		const struct lmm_region *r = &mm->regions[i];
		uint64_t off = (uint64_t)(va - r->vbase);
		if (va >= r->vbase && off < (r->npages << LMM_PAGE_SHIFT)) {
			if (unlikely(off & (LMM_PAGE_SIZE - 1)))
				return LMM_ERR_NOT_ALIGNED;
			*idx = r->first_index + (uint32_t)(off >> LMM_PAGE_SHIFT);
			return LMM_OK;
		}
	}
	return (va & (LMM_PAGE_SIZE - 1)) ? LMM_ERR_NOT_ALIGNED : LMM_ERR_NOT_MANAGED;
}

/* ---- Buddy free lists (lock held) -------------------------------------------------- */

static inline void lmm_list_add_locked(struct lmm *mm, unsigned order, uint32_t idx)
{
	struct lmm_frame *f = &mm->frames[idx];
	uint32_t head = mm->free_head[order];

	f->state = LMM_FRAME_FREE;
	f->order = (uint8_t)order;
	f->next = head;
	f->prev = LMM_NIL;
	if (head != LMM_NIL)
		mm->frames[head].prev = idx;
	mm->free_head[order] = idx;
	mm->free_mask |= 1u << order;
	mm->free_blocks[order]++;
}

/* buddy.c */
uint32_t lmm_buddy_alloc_locked(struct lmm *mm, unsigned order);
void lmm_buddy_free_locked(struct lmm *mm, uint32_t idx, unsigned order);

/* pool.c */
void lmm_pool_push_locked(struct lmm *mm, uint32_t idx);
uint32_t lmm_pool_pop_locked(struct lmm *mm);
uint32_t lmm_pool_auto_target(uint64_t free_pages);
/* Top the pool up to its target; no context check (init, lmm_pool_refill). */
uint32_t lmm_pool_fill(struct lmm *mm);

/* check.c: poisoning */
void lmm_poison_block_locked(struct lmm *mm, uint32_t idx, unsigned order);
void lmm_poison_verify(struct lmm *mm, uint32_t idx, unsigned order);

/* log.c */
void lmm_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lmm_vlogf(const char *fmt, va_list ap);
void lmm_check_canary(const struct lmm *mm);
/* Map a non-allocated head state to the reason an operation on it is refused. */
enum lmm_status lmm_state_refusal(uint8_t state);
const char *lmm_state_str(uint8_t state);

/* What a refusal found, captured under the lock and reported after releasing it. */
struct lmm_refusal {
	const char *op;
	const void *ptr;
	uint64_t phys;
	unsigned order;         /* order the caller passed                */
	uint8_t state;          /* state of the frame found               */
	unsigned found_order;   /* order of the block found there         */
	uint16_t owner, caller; /* exclusive owner found, and the caller  */
};

void lmm_report_refusal(struct lmm *mm, enum lmm_status st, const struct lmm_refusal *r);
/* Count a refusal; takes the lock.  For refusals detected before locking. */
void lmm_count_refusal(struct lmm *mm, enum lmm_status st);

#endif /* LMM_INTERNAL_H */

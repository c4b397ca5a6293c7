/*
 * mm.h - Labyrinth's physical page allocator: the whole public API of mm/.
 *
 * A buddy allocator over 4 KiB frames with 16 bytes of metadata per frame, an
 * emergency pool for atomic (interrupt-context) single-page allocations, and
 * exclusive (single-owner) pages.  The caller owns the `struct lmm`; everything
 * mm/ needs from the host kernel comes through <labyrinth/mm_port.h>.
 *
 * Contexts, as used in every contract below:
 *   any          - normal code, interrupts disabled, or inside an interrupt handler
 *   normal only  - interrupts enabled, not in a handler (lmm_port_context() == NORMAL)
 *   init only    - before lmm_init() returns, single-threaded
 *
 * Locking: one spinlock per struct lmm, always taken with interrupts disabled, held
 * only for bounded work (O(1) on the pool path, O(MAX_ORDER) on the buddy path).
 * No function here calls the port's log hook with the lock held; the owner hook may be
 * called with it held, and so may the fatal hook (corruption found mid-operation).
 * Lock order, in full:  lmm.lock -> (nothing).
 */
#ifndef LABYRINTH_MM_H
#define LABYRINTH_MM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/mm_port.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Compile-time configuration (override with -D) ------------------------------ */

#define LMM_PAGE_SHIFT 12
#define LMM_PAGE_SIZE (1ul << LMM_PAGE_SHIFT)

/* Largest block is 2^LMM_MAX_ORDER pages (default 10: 4 MiB). At most 31. */
#ifndef LMM_MAX_ORDER
#define LMM_MAX_ORDER 10
#endif

/* Usable / reserved ranges accepted before lmm_init(), and regions after merging. */
#ifndef LMM_MAX_RANGES
#define LMM_MAX_RANGES 128
#endif
#ifndef LMM_MAX_RESERVED
#define LMM_MAX_RESERVED 64
#endif
#ifndef LMM_MAX_REGIONS
#define LMM_MAX_REGIONS 64
#endif

/* Debug checks: KERNEL-from-atomic-context refusal, poisoning, canary. 1 = on. */
#ifndef LMM_DEBUG
#define LMM_DEBUG 1
#endif

/* Physical addresses at or above this are absurd on x86-64 (52-bit limit). */
#define LMM_PHYS_LIMIT (1ull << 52)
#define LMM_PHYS_INVALID UINT64_MAX

/* ---- Allocation flags (GFP-style) ---------------------------------------------- */

typedef uint32_t lmm_gfp_t;

/* Raw bits: what each one permits or asks for. */
#define LMM_GFPB_NOWAIT (1u << 0)    /* caller cannot wait: any context may use it   */
#define LMM_GFPB_RESERVE (1u << 1)   /* may take pages from the emergency pool        */
#define LMM_GFPB_EXCLUSIVE (1u << 2) /* record the page as owned by exactly one owner */
#define LMM_GFPB_ZERO (1u << 3)      /* return the block zero-filled                  */
#define LMM_GFPB_ALL (LMM_GFPB_NOWAIT | LMM_GFPB_RESERVE | LMM_GFPB_EXCLUSIVE | LMM_GFPB_ZERO)

/*
 * The combinations callers use.
 *
 * KERNEL: normal context only.  Never touches the emergency pool, so however hard
 *         normal code drives memory to exhaustion, interrupt handlers keep a reserve.
 *         Called with interrupts off or from a handler, a debug build refuses it.
 * ATOMIC: any context.  Never waits and never refills anything; an order-0 request is
 *         served from the pool first (O(1)), then from the buddy lists.  The reserve
 *         exists for exactly these callers.
 */
#define LMM_GFP_KERNEL 0u
#define LMM_GFP_ATOMIC (LMM_GFPB_NOWAIT | LMM_GFPB_RESERVE)
#define LMM_GFP_NOWAIT LMM_GFPB_NOWAIT /* any context, but leave the reserve alone */

/* Modifiers, or'ed into either of the above. */
#define LMM_GFP_EXCLUSIVE LMM_GFPB_EXCLUSIVE
#define LMM_GFP_ZERO LMM_GFPB_ZERO

/* ---- Results -------------------------------------------------------------------- */

/* Every refusal has a reason; lmm_status_str() spells it for logs. */
enum lmm_status {
	LMM_OK = 0,
	LMM_ERR_NOT_ALIGNED,     /* address is not page aligned                           */
	LMM_ERR_NOT_MANAGED,     /* address is not in memory this allocator manages         */
	LMM_ERR_NOT_HEAD,        /* address is inside a block, not at its first page         */
	LMM_ERR_ALREADY_FREE,    /* block is already free (double free)                     */
	LMM_ERR_IN_POOL,         /* page sits in the emergency pool, it was never handed out */
	LMM_ERR_RESERVED,        /* page is reserved (kernel image, metadata, firmware...)    */
	LMM_ERR_WRONG_ORDER,     /* freed with an order other than the one allocated          */
	LMM_ERR_WRONG_OWNER,     /* exclusive page touched by someone other than its owner   */
	LMM_ERR_EXCLUSIVE,       /* a second reference to an exclusive page was requested     */
	LMM_ERR_NOT_EXCLUSIVE,   /* an ownership operation on a page that is not exclusive    */
	LMM_ERR_BAD_ORDER,       /* order above LMM_MAX_ORDER                                  */
	LMM_ERR_BAD_FLAGS,       /* unknown gfp bits, or EXCLUSIVE with order > 0, ...          */
	LMM_ERR_BAD_OWNER,       /* owner tag 0 where a real owner is required                  */
	LMM_ERR_BAD_CONTEXT,     /* a normal-only call made with interrupts off / in a handler  */
	LMM_ERR_REFCOUNT,        /* reference count would overflow                             */
	LMM_ERR_EMPTY_RANGE,     /* range is empty, or nothing whole-page is left after trimming */
	LMM_ERR_ABSURD_RANGE,    /* range wraps around or lies past the 52-bit physical limit   */
	LMM_ERR_TOO_MANY_RANGES, /* the fixed range table is full                               */
	LMM_ERR_STATE,           /* call made in the wrong phase (e.g. add_range after init)     */
	LMM_ERR_NO_MEMORY,       /* init: no usable memory, or no room for the metadata          */
	LMM_STATUS_COUNT
};

const char *lmm_status_str(enum lmm_status status);

/* ---- Per-frame metadata ------------------------------------------------------------ */

/*
 * One record per managed 4 KiB frame, kept in an array carved from usable RAM at
 * init.  Free-list links live here, not in the free frames, so the allocator never
 * touches a free page.  Frames that are not the first of a block are LMM_FRAME_TAIL,
 * whichever state their block is in; only block heads carry a meaningful order.
 * Fields are private to mm/; the record is public so its size can be asserted.
 */
enum lmm_frame_state {
	LMM_FRAME_TAIL = 0,  /* inside a block whose head is another frame            */
	LMM_FRAME_FREE,      /* head of a free block, on free_list[order]            */
	LMM_FRAME_ALLOCATED, /* head of an allocated block with a reference count    */
	LMM_FRAME_EXCLUSIVE, /* head of an allocated page with exactly one owner      */
	LMM_FRAME_POOL,      /* page held in the emergency pool                       */
	LMM_FRAME_RESERVED,  /* never handed out (firmware, kernel, metadata ...)      */
};

struct lmm_frame {
	uint32_t next;     /* free/pool list link (frame index), LMM_NIL at the end */
	uint32_t prev;     /* free list back link; unused in the pool               */
	uint16_t owner;    /* exclusive owner tag, 0 when none                      */
	uint16_t refcount; /* references to an ALLOCATED block                      */
	uint8_t state;     /* enum lmm_frame_state                                  */
	uint8_t order;     /* order of the block this frame heads                   */
	uint8_t flags;     /* LMM_FRAME_F_*                                         */
	uint8_t region;    /* index of the region holding this frame                */
};

#define LMM_FRAME_BYTES 16
#define LMM_NIL UINT32_MAX

/* ---- The allocator ---------------------------------------------------------------- */

struct lmm_config {
	/* Pages held in the emergency pool. LMM_POOL_AUTO: managed/128, within [16, 4096]. */
	uint32_t pool_target;
	/* lmm_pool_needs_refill() once the fill drops below this; LMM_POOL_AUTO: target/2. */
	uint32_t pool_low;
	/* LMM_CFG_* bits. */
	uint32_t flags;
};
#define LMM_POOL_AUTO UINT32_MAX
#define LMM_CFG_POISON (1u << 0) /* debug: fill freed pages, check them on allocation */
#define LMM_CFG_QUIET (1u << 1)  /* log refusals only, no informational lines        */

/* A contiguous run of usable frames after merging; owned by mm/. */
struct lmm_region {
	uint64_t base_pfn;
	uint64_t npages;
	uint32_t first_index; /* index of its first frame in lmm.frames */
	uintptr_t vbase;      /* lmm_port_phys_to_virt(base) */
};

struct lmm_range {
	uint64_t base, end; /* [base, end) in bytes, page aligned once accepted */
};

/* Snapshot of every counter.  Page counts unless named otherwise. */
struct lmm_stats {
	uint64_t managed;   /* frames with metadata = free + allocated + pool + reserved */
	uint64_t free;      /* in the buddy free lists                                   */
	uint64_t allocated; /* handed out, exclusive or not                              */
	uint64_t pool;      /* held in the emergency pool                                */
	uint64_t reserved;  /* never handed out, including the metadata itself           */
	uint64_t free_blocks[LMM_MAX_ORDER + 1]; /* like /proc/buddyinfo                */
	uint64_t alloc_calls, alloc_failures;    /* failures: NULL for lack of memory    */
	uint64_t free_calls;
	uint64_t poison_errors;                  /* debug: freed pages written after free */
	uint64_t refused[LMM_STATUS_COUNT];      /* refused calls by reason               */
	uint64_t refused_total;
	uint32_t pool_target, pool_low, pool_low_water;
	uint64_t pool_hits;           /* atomic allocations served by the pool          */
	uint64_t pool_empty_failures; /* atomic allocations that found pool AND buddy empty */
	uint64_t pool_refills;        /* refill operations that added at least one page   */
	uint64_t pool_refill_pages;
	uint64_t pool_topups;         /* pages normal-context frees put back in the pool  */
	uint64_t metadata_bytes;
	uint32_t regions;
};

struct lmm {
	/* Private: read them through lmm_get_stats(); layout may change. */
	uint64_t canary_head;
	lmm_port_lock_t lock;
	uint32_t phase;
	struct lmm_config cfg;

	/* Ingest tables, consumed by lmm_init(). */
	uint32_t nranges, nreserved;
	struct lmm_range ranges[LMM_MAX_RANGES];
	struct lmm_range reserved_ranges[LMM_MAX_RESERVED + 1]; /* +1: the metadata */

	uint32_t nregions;
	struct lmm_region regions[LMM_MAX_REGIONS];
	struct lmm_frame *frames;
	uint64_t nframes;
	uint64_t metadata_phys;

	/* Buddy lists: protected by lock. */
	uint32_t free_mask; /* bit k set <=> free_head[k] != LMM_NIL */
	uint32_t free_head[LMM_MAX_ORDER + 1];
	uint64_t free_blocks[LMM_MAX_ORDER + 1];
	uint64_t nfree, nallocated, nreserved_pages;
	uint32_t npool; /* 32-bit: read locklessly, and 8-byte atomics are not free everywhere */

	/* Emergency pool: a LIFO stack of frames linked through lmm_frame.next. */
	uint32_t pool_head;
	uint32_t pool_target, pool_low, pool_low_water;
	uint64_t pool_hits, pool_empty_failures, pool_refills, pool_refill_pages, pool_topups;

	uint64_t alloc_calls, alloc_failures, free_calls;
	uint32_t poison_errors; /* updated outside the lock: 32-bit for the same reason */
	uint64_t refused[LMM_STATUS_COUNT];
	uint64_t canary_tail;
};

/*
 * Initialisation, in this order, before any other call:
 *   lmm_begin(mm, cfg);                 cfg may be NULL for the defaults
 *   lmm_add_range(mm, base, len)...     every usable RAM range, in any order
 *   lmm_reserve_range(mm, base, len)... what must never be handed out
 *   lmm_init(mm);                       carves the metadata, builds the free lists
 * All four: init only.  Ranges are trimmed inward to whole pages (usable) or widened
 * outward (reserved); overlaps are merged; every adjustment and refusal is logged.
 */
void lmm_begin(struct lmm *mm, const struct lmm_config *cfg);
enum lmm_status lmm_add_range(struct lmm *mm, uint64_t base, uint64_t len);
enum lmm_status lmm_reserve_range(struct lmm *mm, uint64_t base, uint64_t len);
/* Returns LMM_ERR_NO_MEMORY when nothing is usable or the metadata fits nowhere. */
enum lmm_status lmm_init(struct lmm *mm);

/* Bytes of metadata lmm_init() will carve for the ranges given so far. Init only. */
uint64_t lmm_metadata_bytes(const struct lmm *mm);

/*
 * Allocate 2^order contiguous, naturally aligned pages.  Returns the kernel-virtual
 * address, or NULL when no block of that order is free (fragmentation included) or
 * the call is refused (bad order or flags: logged and counted).
 * Context: any for NOWAIT/ATOMIC; normal only for KERNEL.  Takes lmm.lock.
 * EXCLUSIVE pages are order 0 and owned by lmm_port_owner() (or @owner).
 */
void *lmm_alloc_pages(struct lmm *mm, unsigned order, lmm_gfp_t gfp);
void *lmm_alloc_pages_owned(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner);

/*
 * Drop one reference to the block at @ptr, freeing it when none are left.  NULL is a
 * no-op.  Any context.  Takes lmm.lock.  Every bad free (unaligned, unmanaged, not a
 * block head, wrong order, already free, reserved, pool page, exclusive page freed by a
 * non-owner) is refused, logged with the address and reason, counted, and changes nothing.
 * An exclusive page may be freed only by its owner: lmm_port_owner(), or @owner.
 */
enum lmm_status lmm_free_pages(struct lmm *mm, void *ptr, unsigned order);
enum lmm_status lmm_free_pages_owned(struct lmm *mm, void *ptr, unsigned order, uint16_t owner);

/*
 * Reference counting for non-exclusive blocks.  lmm_page_get() adds a reference
 * (refused for an exclusive page: it can never be shared); lmm_page_put() is
 * lmm_free_pages().  Any context.
 */
enum lmm_status lmm_page_get(struct lmm *mm, void *ptr);
enum lmm_status lmm_page_put(struct lmm *mm, void *ptr, unsigned order);

/*
 * Exclusive ownership.  lmm_page_transfer() hands an exclusive page from its owner
 * @from to @to (e.g. from an interrupt handler to the main loop); lmm_page_unexclusive()
 * turns it into an ordinary page with one reference.  Refused unless @from / @owner is
 * the current owner.  Any context.
 */
enum lmm_status lmm_page_transfer(struct lmm *mm, void *ptr, uint16_t from, uint16_t to);
enum lmm_status lmm_page_unexclusive(struct lmm *mm, void *ptr, uint16_t owner);
/* Owner of an exclusive page; 0 if the page is not exclusive or not managed. Any context. */
uint16_t lmm_page_owner(struct lmm *mm, const void *ptr);

/* Address translation for managed memory.  Any context; lock-free. */
uint64_t lmm_virt_to_phys(const struct lmm *mm, const void *ptr); /* LMM_PHYS_INVALID if unmanaged */
void *lmm_phys_to_virt(const struct lmm *mm, uint64_t phys);      /* NULL if unmanaged */

/*
 * The emergency pool.  lmm_pool_refill() tops the pool up to its target from the buddy
 * lists, a bounded batch per lock hold; it is the only place that loops to refill.
 * Normal only (refused with 0 otherwise); returns the pages added.  Frees made in
 * normal context also top the pool up, one page at a time.
 */
uint32_t lmm_pool_refill(struct lmm *mm);
bool lmm_pool_needs_refill(struct lmm *mm); /* fill < low mark.  Any context. */
/* Start a new low-water measurement from the current fill.  Any context. */
void lmm_pool_reset_low_water(struct lmm *mm);
/* Change the marks; the pool converges on the next refill.  Normal only. */
enum lmm_status lmm_pool_set_marks(struct lmm *mm, uint32_t low, uint32_t target);

/* ---- Observability ------------------------------------------------------------------ */

void lmm_get_stats(struct lmm *mm, struct lmm_stats *out); /* any context */
void lmm_dump(struct lmm *mm);                             /* any context; logs counters */
/*
 * Walk every frame and list and verify every invariant (list/metadata agreement,
 * alignment, full coalescing, no overlap, conservation).  Logs each violation and
 * returns their number (0 = healthy).  Holds lmm.lock for O(frames): normal only.
 */
uint64_t lmm_check(struct lmm *mm);

/* ---- The memory walk ----------------------------------------------------------------- */

/* What a run of frames is; HOLE is physical address space no region covers. */
enum lmm_run_kind {
	LMM_RUN_HOLE,
	LMM_RUN_FREE,
	LMM_RUN_ALLOCATED,
	LMM_RUN_EXCLUSIVE,
	LMM_RUN_POOL,
	LMM_RUN_CACHED,
	LMM_RUN_RESERVED,
	LMM_RUN_KIND_COUNT
};

/* @npages frames from @base_pfn, all of @kind; @order is the block order of a FREE run, else 0. */
struct lmm_run {
	uint64_t base_pfn, npages;
	enum lmm_run_kind kind;
	unsigned order;
};

typedef void (*lmm_walk_fn)(const struct lmm_run *run, void *ctx);

/*
 * Calls fn for consecutive runs of frames of one kind, in physical order, holes between
 * regions included (from pfn 0).  FREE runs carry the order of their block (adjacent
 * free blocks of different orders are separate runs).  Normal context only; takes the lock
 * in bounded chunks and calls fn outside it.  Returns the number of runs.
 *
 * Each chunk is a consistent snapshot; the whole walk is not (memory may change between
 * chunks), but the runs always tile [0, end of the last region) exactly once, in order.
 * Outside normal context it refuses (counted as LMM_ERR_BAD_CONTEXT) and returns 0.
 */
uint64_t lmm_walk(struct lmm *mm, lmm_walk_fn fn, void *ctx);

/* ---- The atomic exclusive routine ---------------------------------------------------- */

/*
 * The allocator that labyrinth_* entry points use; set once after lmm_init().
 * Any context to read, init only to set.
 */
void lmm_set_default(struct lmm *mm);
struct lmm *lmm_default(void);

/*
 * One 4 KiB page, allocated in atomic context and owned exclusively by the caller
 * (lmm_port_owner()): lmm_alloc_pages(lmm_default(), 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE).
 * Any context; never waits; O(1) when the emergency pool has a page.  Returns NULL at
 * once (and counts it) when the pool and the buddy lists are both empty.
 */
void *labyrinth_void_alloc_page_gfp_atomic_exclusive(void);

/* Its counterpart: free a page from the routine above; only its owner may.  Any context. */
enum lmm_status labyrinth_free_page_atomic_exclusive(void *page);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_MM_H */

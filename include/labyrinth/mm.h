/*
 * mm.h - Labyrinth's physical page allocator: the whole public API of mm/.
 *
 * A buddy allocator over 4 KiB frames with 16 bytes of metadata per frame, a per-CPU
 * layer of order-0 caches in front of it, an emergency pool (the reserve) for atomic
 * single-page allocations, and exclusive (single-owner) pages.  The caller owns the
 * `struct lmm`; everything mm/ needs from the host kernel comes through
 * <labyrinth/mm_port.h>.
 *
 * Contexts, as used in every contract below:
 *   any          - normal code, interrupts disabled, or inside an interrupt handler
 *   not handler  - anything but an interrupt handler (interrupts may be off)
 *   normal only  - interrupts enabled, not in a handler (lmm_port_context() == NORMAL)
 *   init only    - before lmm_init() returns, single-threaded
 *
 * Locking.  One spinlock per struct lmm (the core lock) guards the buddy lists, the
 * shared part of the reserve and every reference count above one.  Each CPU's cache
 * and pool slice is touched only by that CPU with interrupts disabled, and needs no
 * lock.  Lock order, in full:
 *
 *     interrupts off (lmm_port_irq_save)        per-CPU cache and pool slice
 *       -> lmm.lock (lmm_port_lock_irqsave)     buddy lists, shared pool, refcounts
 *            -> nothing
 *
 * No function here formats text or calls lmm_port_report() with the lock held or with
 * interrupts off on its behalf; lmm_port_fatal() may be called with the lock held.
 *
 * Bad input: every value a caller passes (an address, an order, flags, an owner, a CPU
 * index, a range, pool marks) is checked, and a bad one refused with a record.  The
 * pointers mm/ writes or calls through (the struct lmm, a stats buffer, a walk
 * callback) are the caller's to get right, as with any C library.
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
#define LMM_MAX_REGIONS 64 /* at most 256: the frame record keeps it in a byte */
#endif

/* Debug checks: KERNEL-from-handler refusal, poisoning, lock assertions. 1 = on. */
#ifndef LMM_DEBUG
#define LMM_DEBUG 1
#endif

#define LMM_PHYS_LIMIT (1ull << LMM_PORT_PHYS_BITS)
#define LMM_PHYS_INVALID UINT64_MAX

/* ---- Allocation flags (GFP-style) ---------------------------------------------- */

typedef uint32_t lmm_gfp_t;

/* Raw bits: what each one permits or asks for. */
#define LMM_GFPB_NOWAIT (1u << 0)    /* caller may be in a handler: skip the handler check */
#define LMM_GFPB_RESERVE (1u << 1)   /* may take pages from the emergency pool             */
#define LMM_GFPB_EXCLUSIVE (1u << 2) /* record the page as owned by exactly one owner      */
#define LMM_GFPB_ZERO (1u << 3)      /* return the block zero-filled                       */
#define LMM_GFPB_ALL (LMM_GFPB_NOWAIT | LMM_GFPB_RESERVE | LMM_GFPB_EXCLUSIVE | LMM_GFPB_ZERO)

/*
 * The combinations callers use.  mm/ never waits or sleeps, whichever is used.
 *
 * KERNEL: everything but interrupt handlers (interrupts may be off, locks may be held:
 *         this is the flag behind a kernel's general kalloc()).  Never touches the
 *         emergency pool, so however hard normal code drives memory to exhaustion,
 *         handlers keep a reserve.  From a handler, a debug build refuses it.
 * NOWAIT: any context, handlers included, but leaves the reserve alone.
 * ATOMIC: any context.  An order-0 request is served from the reserve first (this
 *         CPU's slice, O(1) without a lock, then the shared pool), then from the normal
 *         lists.  Never refills anything.  The reserve exists for exactly these callers.
 */
#define LMM_GFP_KERNEL 0u
#define LMM_GFP_NOWAIT LMM_GFPB_NOWAIT
#define LMM_GFP_ATOMIC (LMM_GFPB_NOWAIT | LMM_GFPB_RESERVE)

/* Modifiers, or'ed into any of the above. */
#define LMM_GFP_EXCLUSIVE LMM_GFPB_EXCLUSIVE
#define LMM_GFP_ZERO LMM_GFPB_ZERO

/* Caller classes, for per-class statistics (who took pages from the reserve). */
enum lmm_gfp_class { LMM_CLASS_KERNEL, LMM_CLASS_NOWAIT, LMM_CLASS_ATOMIC, LMM_CLASS_COUNT };

/* ---- Results -------------------------------------------------------------------- */

/* Every refusal has a reason; lmm_status_str() spells it for logs. */
enum lmm_status {
	LMM_OK = 0,
	LMM_ERR_NOT_ALIGNED,     /* address is not page aligned                            */
	LMM_ERR_NOT_MANAGED,     /* address is not in memory this allocator manages          */
	LMM_ERR_NOT_HEAD,        /* address is inside a block, not at its first page          */
	LMM_ERR_ALREADY_FREE,    /* block is free: in the lists, a per-CPU cache or the pool  */
	LMM_ERR_RESERVED,        /* page is reserved (kernel image, metadata, firmware...)     */
	LMM_ERR_WRONG_ORDER,     /* freed with an order other than the one allocated           */
	LMM_ERR_WRONG_OWNER,     /* exclusive page touched by someone other than its owner    */
	LMM_ERR_EXCLUSIVE,       /* a second reference to an exclusive page was requested      */
	LMM_ERR_NOT_EXCLUSIVE,   /* an ownership operation on a page that is not exclusive     */
	LMM_ERR_BAD_ORDER,       /* order above LMM_MAX_ORDER                                   */
	LMM_ERR_BAD_FLAGS,       /* unknown gfp bits, or EXCLUSIVE with order > 0               */
	LMM_ERR_BAD_OWNER,       /* owner tag 0 where a real owner is required                   */
	LMM_ERR_BAD_CONTEXT,     /* call made from a context its contract excludes               */
	LMM_ERR_REFCOUNT,        /* reference count would overflow                              */
	LMM_ERR_EMPTY_RANGE,     /* range is empty, or nothing whole-page is left after trimming */
	LMM_ERR_ABSURD_RANGE,    /* range wraps around or lies past LMM_PORT_PHYS_BITS          */
	LMM_ERR_TOO_MANY_RANGES, /* the fixed range table is full                                */
	LMM_ERR_STATE,           /* call made in the wrong phase (e.g. add_range after init)      */
	LMM_ERR_NO_MEMORY,       /* init: no usable memory, or no room for the metadata           */
	LMM_ERR_POISONED,        /* debug: a freed page was written after its free (reported at
	                          * the allocation that found it; the allocation still succeeds) */
	LMM_ERR_BAD_CPU,         /* CPU index not below LMM_PORT_MAX_CPUS                          */
	LMM_ERR_BAD_MARKS,       /* pool low mark above the target, or target above pool_most      */
	LMM_ERR_NOT_CONTIGUOUS,  /* init: a usable range not mapped end to end by phys_to_virt     */
	LMM_STATUS_COUNT
};

const char *lmm_status_str(enum lmm_status status);

/* ---- Per-frame metadata ------------------------------------------------------------ */

/*
 * One record per managed 4 KiB frame, kept in an array carved from usable RAM at
 * init.  List links live here, not in the free frames, so the allocator never touches
 * a free page.  Frames that are not the first of a block are LMM_FRAME_TAIL, whichever
 * state their block is in; only block heads carry a meaningful order.  Fields are
 * private to mm/; the record is public so its size can be asserted.
 */
enum lmm_frame_state {
	LMM_FRAME_TAIL = 0,  /* inside a block whose head is another frame              */
	LMM_FRAME_FREE,      /* head of a free block, on free_list[order]              */
	LMM_FRAME_ALLOCATED, /* head of an allocated block with a reference count      */
	LMM_FRAME_EXCLUSIVE, /* head of an allocated page with exactly one owner        */
	LMM_FRAME_POOL,      /* page held in the emergency pool (shared or a CPU slice) */
	LMM_FRAME_CACHED,    /* free page held in a CPU's order-0 cache                 */
	LMM_FRAME_RESERVED,  /* never handed out (firmware, kernel, metadata ...)        */
	LMM_FRAME_STATE_COUNT
};

struct lmm_frame {
	uint32_t next; /* list link (frame index), LMM_NIL at the end         */
	uint32_t prev; /* buddy free list back link; unused on the LIFO lists */
	union {
		struct {
			union {
				struct {
					uint16_t refcount; /* references to an ALLOCATED block */
					union {
						struct {
							uint8_t state; /* enum lmm_frame_state                */
							uint8_t order; /* order of the block this frame heads */
						};
						uint16_t state_order; /* both: the core's verdict tests them at once */
					};
				};
				uint32_t use; /* all three: a hand-out stores them at once */
			};
			uint16_t owner; /* exclusive owner tag, 0 when none       */
			uint8_t flags;  /* private LMM_FRAME_F_* bits             */
			uint8_t region; /* index of the region holding this frame */
		};
		/*
		 * All eight: the per-CPU free tests them in one compare and takes a page back
		 * in one store.  The use word first, so that on a little-endian CPU an ordinary
		 * page's word (no owner, no flags, region 0) fits a 32-bit immediate.
		 */
		uint64_t word;
	};
};

#define LMM_FRAME_BYTES 16
#define LMM_NIL UINT32_MAX

/*
 * The free blocks of one order: a doubly linked list through lmm_frame.next/prev, and
 * its length.  Together, so that the merge and split loops step one pointer per order;
 * 8 bytes, so that x86 indexes the array by order with no multiply.  A list holds at
 * most 2^32 - 1 blocks: frame indices are 32 bits.
 */
struct lmm_free_list {
	uint32_t head;   /* first block (frame index), LMM_NIL when empty */
	uint32_t blocks; /* blocks on the list, like /proc/buddyinfo       */
};

/* ---- Refusal reports ---------------------------------------------------------------- */

/*
 * What a refused call found.  mm/ counts it, fills this in and passes it to
 * lmm_port_report(); no text is made until someone calls lmm_report_format().
 */
struct lmm_report {
	enum lmm_status reason;
	const char *op;           /* static: "alloc", "free", "get", "transfer", ...    */
	const void *ptr;          /* the address the caller passed (NULL for alloc)     */
	uint64_t phys;            /* its page, LMM_PHYS_INVALID when not managed          */
	unsigned order;           /* order the caller passed                             */
	unsigned found_order;     /* order of the block found there                      */
	uint8_t found_state;      /* enum lmm_frame_state found there                    */
	uint16_t owner;           /* exclusive owner found (0 if none)                   */
	uint16_t caller_owner;    /* owner tag the caller acted as (0 if none)           */
	lmm_gfp_t gfp;            /* alloc only                                          */
	const void *caller;       /* return address of the public call                   */
	enum lmm_context context; /* the caller's context                                */
	unsigned cpu;             /* the CPU it ran on                                   */
	unsigned cpu_named;       /* the CPU index the caller passed (cpu calls only)    */
	uint32_t marks_low, marks_target; /* the pool marks asked for (BAD_MARKS only)   */
	uint64_t range_base, range_len;   /* a range refused: as the caller gave it      */
};

/*
 * One line describing @r, NUL-terminated, truncated to @len; returns its length.
 * Any context (but meant for the port, outside interrupts-off sections).
 */
size_t lmm_report_format(const struct lmm_report *r, char *buf, size_t len);

/* ---- Configuration -------------------------------------------------------------------- */

struct lmm_config {
	/* Frames in the emergency pool's budget.  LMM_POOL_AUTO: the free pages at
	 * lmm_init (managed less reserved and metadata) / 128, within [16, 4096], never
	 * more than 1/8 of them.  0: no reserve at all.  Above half of those free pages
	 * (stats.pool_most): refused as LMM_ERR_BAD_MARKS and cut to that. */
	uint32_t pool_target;
	/* lmm_pool_needs_refill() once the reserve's budget (frames waiting plus frames
	 * handed out) is below this, i.e. after the target was raised; LMM_POOL_AUTO:
	 * target/2.  Non-ATOMIC slow paths then top it up, a batch at a time.  Above the
	 * target: refused as LMM_ERR_BAD_MARKS and set to target/2. */
	uint32_t pool_low;
	/* Per-CPU order-0 cache: pages moved per refill/drain (0: the default, 16) and the
	 * most a CPU keeps (0: the default, 64).  cache_high = LMM_CPU_OFF: no cache. */
	uint32_t cache_batch, cache_high;
	/* Per-CPU pool slice: the most reserve pages one CPU keeps for itself without the
	 * lock (0: the default, 16, capped at target / (2 * LMM_PORT_MAX_CPUS) for the
	 * current target; none while a lowered target leaves the reserve over budget).
	 * LMM_CPU_OFF: no slices, every reserve page comes through the lock. */
	uint32_t pool_slice;
	/* LMM_CFG_* bits. */
	uint32_t flags;
};
#define LMM_POOL_AUTO UINT32_MAX
#define LMM_CPU_OFF UINT32_MAX
#define LMM_CFG_POISON (1u << 0)  /* debug: fill freed pages, check them on allocation   */
#define LMM_CFG_QUIET (1u << 1)   /* no informational log lines at init                   */
#define LMM_CFG_HOLDERS (1u << 2) /* keep an owner record per allocated block (see below) */

/* ---- The allocator ---------------------------------------------------------------- */

/* A contiguous run of usable frames after merging; owned by mm/. */
struct lmm_region {
	uint64_t base_pfn;
	uint64_t npages;
	uint64_t vbytes;      /* npages << LMM_PAGE_SHIFT: the virtual span, for one compare */
	uint32_t first_index; /* index of its first frame in lmm.frames */
	uintptr_t vbase;      /* lmm_port_phys_to_virt(base) */
};

struct lmm_range {
	uint64_t base, end; /* [base, end) in bytes, page aligned once accepted */
};

/* Word-sized counters: a CPU updates its own without an atomic read-modify-write. */
/* A slot is a power of two (a shift finds it) and at least a cache line (no sharing). */
#define LMM_CPU_SLOT_BYTES (sizeof(void *) * 16)
typedef unsigned long lmm_count_t;

/*
 * One CPU's slice of the allocator: its order-0 cache and its share of the reserve,
 * both LIFO stacks through lmm_frame.next.  Touched only by that CPU with interrupts
 * off (others read the counters for statistics), so it needs no lock; a cache line of
 * its own keeps CPUs from sharing one.
 */
struct lmm_cpu {
	_Alignas(LMM_CPU_SLOT_BYTES) uint32_t cache_head;
	uint32_t cache_count, slice_head, slice_count;
	/*
	 * The pages held that were handed out here minus those taken back here (wrapping)
	 * are alloc_calls + slice_hits - alloc_failures - free_calls + allocated_adjust
	 * (lmm_cpu_allocated()): the adjustment counts what a call moves beyond its one page,
	 * so that an order-0 allocation or free that moves exactly one updates one counter,
	 * not two.  For the same reason a page handed out from the slice is counted once, in
	 * slice_hits, both a call and an ATOMIC reserve hit (lmm_cpu_calls(), lmm_cpu_reserve_to()).
	 */
	lmm_count_t alloc_calls, alloc_failures, free_calls, allocated_adjust;
	lmm_count_t cache_refills, cache_drains;
	lmm_count_t reserve_to[LMM_CLASS_COUNT]; /* reserve pages the core handed out (running totals) */
	lmm_count_t slice_hits;                  /* pages handed out from this CPU's slice              */
	uint32_t holder_seq; /* LMM_CFG_HOLDERS: this CPU's allocation sequence numbers */
	uint32_t lock_tag;   /* this slot's index + 1: what lmm.lock_holder says while it holds the lock */
};

/* Snapshot of every counter.  Page counts unless named otherwise. */
struct lmm_stats {
	/* The five below sum to managed exactly while no other CPU is in mm/.  A snapshot
	 * is taken under the lock, so batches moving between the lists and the caches are
	 * never seen half way; only the page another CPU is taking or giving back on its
	 * per-CPU path at that instant may be counted on either side (a page per CPU). */
	uint64_t managed;   /* frames with metadata = free+allocated+pool+cached+reserved */
	uint64_t free;      /* in the buddy free lists                                    */
	uint64_t allocated; /* handed out, exclusive or not                               */
	uint64_t pool;      /* emergency pool: the shared part and every CPU's slice      */
	uint64_t cached;    /* in the per-CPU order-0 caches                              */
	uint64_t reserved;  /* never handed out, including the metadata itself            */
	/* free + pool + cached: what is not held.  Stable whatever the pool and caches
	 * are doing: the figure for leak checks and "free memory" displays. */
	uint64_t available;
	uint64_t free_blocks[LMM_MAX_ORDER + 1]; /* like /proc/buddyinfo                */
	/* Per order k: the share of free-list memory (in 1/1000) in blocks smaller than
	 * 2^k pages, i.e. unusable for an order-k request (Linux's unusable index). */
	uint32_t unusable_permille[LMM_MAX_ORDER + 1];
	uint64_t alloc_calls, alloc_failures;    /* failures: NULL for lack of memory    */
	uint64_t free_calls;
	uint64_t poison_errors;                  /* debug: = refused[LMM_ERR_POISONED]     */
	uint64_t refused[LMM_STATUS_COUNT];      /* refused calls by reason               */
	uint64_t refused_total;
	uint32_t pool_target, pool_low, pool_low_water, pool_slice;
	uint32_t pool_most;           /* the largest target: half the pages free at init  */
	uint64_t pool_hits;           /* reserve allocations (ATOMIC order 0)            */
	uint64_t pool_empty_failures; /* ATOMIC order 0 that found nothing it may take   */
	uint64_t pool_refills;        /* refill operations that added at least one page   */
	uint64_t pool_refill_pages;
	uint64_t reserve_to[LMM_CLASS_COUNT]; /* reserve pages handed out, per class: running
	                                       * totals; [KERNEL] and [NOWAIT] stay 0 */
	uint64_t reserve_held;        /* reserve pages out with their holders now        */
	uint32_t cache_batch, cache_high;
	uint64_t cache_refills, cache_drains;
	uint64_t metadata_bytes; /* frame records, plus the holder table when configured */
	uint32_t regions, cpus;  /* cpus: LMM_PORT_MAX_CPUS */
};

struct lmm_cpu_stats {
	uint32_t cache_pages, pool_pages;
	uint64_t allocs, frees, alloc_failures, pool_hits, cache_refills, cache_drains;
};

/* The optional holder record of an allocated block (LMM_CFG_HOLDERS). */
struct lmm_holder {
	const void *caller; /* return address of the allocating call */
	uint32_t seq;       /* allocation sequence number on its CPU */
	uint8_t cpu, context, order, pad;
};

struct lmm {
	/* Private: read them through lmm_get_stats(); layout may change. */
	uint64_t canary_head;
	lmm_port_lock_t lock;
	uint32_t phase;
	uint32_t lock_holder; /* debug: CPU + 1 holding the lock, 0 when free */
	struct lmm_config cfg;

	/* Ingest tables, consumed by lmm_init(). */
	uint32_t nranges, nreserved;
	struct lmm_range ranges[LMM_MAX_RANGES];
	struct lmm_range reserved_ranges[LMM_MAX_RESERVED + 1]; /* +1: the metadata */

	uint32_t nregions;
	uintptr_t fast_free_pages; /* region 0's pages the free's fast path places; 0: none (see init.c) */
	struct lmm_region regions[LMM_MAX_REGIONS];
	/*
	 * Per region: vbase - (first_index << LMM_PAGE_SHIFT), modulo 2^N, so that a frame's
	 * address is vdelta[region] + (index << LMM_PAGE_SHIFT).  An array of its own: every
	 * allocation reads it, and a word array is indexed with no multiply.
	 */
	uintptr_t vdelta[LMM_MAX_REGIONS];
	struct lmm_frame *frames;
	struct lmm_holder *holders; /* NULL unless LMM_CFG_HOLDERS */
	uint64_t nframes;
	uint64_t metadata_phys, metadata_bytes;

	/* The core: protected by lock. */
	uint32_t free_mask; /* bit k set <=> free_list[k].head != LMM_NIL */
	struct lmm_free_list free_list[LMM_MAX_ORDER + 1];
	uint64_t nfree, nreserved_pages;
	uint32_t pool_head, npool; /* shared part of the reserve */
	uint32_t reserve_frames;   /* frames in the reserve's budget, waiting or handed out */
	uint32_t pool_target, pool_low, pool_low_water, pool_slice, pool_most;
	uint32_t cache_batch, cache_high;
	uint64_t pool_empty_failures, pool_refills, pool_refill_pages;

	lmm_count_t refused[LMM_STATUS_COUNT]; /* atomic adds: refusals are rare */
	struct lmm_cpu cpu[LMM_PORT_MAX_CPUS];
	uint64_t canary_tail;
};

/*
 * Initialisation, before any other call: lmm_begin first, lmm_init last, the ranges
 * in between in any order (a reservation may come before the range it lies in):
 *   lmm_begin(mm, cfg);                 cfg may be NULL for the defaults
 *   lmm_add_range(mm, base, len)...     every usable RAM range
 *   lmm_reserve_range(mm, base, len)... what must never be handed out
 *   lmm_init(mm);                       carves the metadata, builds the free lists
 * All four: init only.  Ranges are trimmed inward to whole pages (usable) or widened
 * outward (reserved); overlaps are merged; every adjustment and refusal is logged.
 * Usable ranges that only touch are merged where lmm_port_phys_to_virt maps them end
 * to end, so RAM in separate windows is added one range per window.  A full table is
 * merged before anything is refused: a usable range that still finds no room is refused
 * (LMM_ERR_TOO_MANY_RANGES); a reservation never is: past LMM_MAX_RESERVED the two
 * closest reservations are joined, reserving the gap between them too (logged).
 */
void lmm_begin(struct lmm *mm, const struct lmm_config *cfg);
enum lmm_status lmm_add_range(struct lmm *mm, uint64_t base, uint64_t len);
enum lmm_status lmm_reserve_range(struct lmm *mm, uint64_t base, uint64_t len);
/*
 * A merged usable range init cannot hold is dropped and refused with its reason
 * (LMM_ERR_TOO_MANY_RANGES: past LMM_MAX_REGIONS regions or 2^32-1 frames;
 * LMM_ERR_NOT_CONTIGUOUS: not mapped end to end); the rest is managed.  Returns
 * LMM_ERR_NO_MEMORY when nothing usable is left or the metadata fits nowhere.
 */
enum lmm_status lmm_init(struct lmm *mm);

/*
 * Bytes of metadata lmm_init() will carve for the ranges given so far: 16 per frame,
 * plus sizeof(struct lmm_holder) per frame with LMM_CFG_HOLDERS (16 on a 64-bit host),
 * each rounded up to a page.  Init only.
 */
uint64_t lmm_metadata_bytes(const struct lmm *mm);

/*
 * Allocate 2^order contiguous, naturally aligned pages.  Returns the kernel-virtual
 * address, or NULL when nothing this request may use is free (fragmentation and pages
 * held in other CPUs' caches included) or the call is refused (bad order or flags;
 * KERNEL from a handler in debug builds: counted and reported).
 * Context: any for NOWAIT/ATOMIC; not handler for KERNEL.  Order 0 is served by this
 * CPU's cache (no lock) and refilled in batches; larger orders take lmm.lock.
 * EXCLUSIVE pages are order 0 and owned by lmm_port_owner() (lmm_alloc_pages) or by
 * @owner (lmm_alloc_pages_owned: 0 is no owner, refused as LMM_ERR_BAD_OWNER).
 */
void *lmm_alloc_pages(struct lmm *mm, unsigned order, lmm_gfp_t gfp);
void *lmm_alloc_pages_owned(struct lmm *mm, unsigned order, lmm_gfp_t gfp, uint16_t owner);

/*
 * Drop one reference to the block at @ptr, freeing it when none are left.  NULL is a
 * no-op.  Any context.  An order-0 page goes to this CPU's cache, or back to the
 * reserve if it came from there (no lock either way, until a batch has to move);
 * shared pages, larger blocks and an exclusive page freed without naming its owner
 * (lmm_free_pages(): the owner is asked under the lock) take lmm.lock.  The exclusive
 * routine's free and lmm_free_pages_owned() name it.  Every bad free (unaligned, unmanaged,
 * not a block head, wrong order, already free, reserved, an exclusive page freed by a
 * non-owner) is refused, counted, reported, and changes nothing; an address that is
 * both unaligned and unmanaged is refused as LMM_ERR_NOT_ALIGNED.  An exclusive page may
 * be freed only by its owner: lmm_port_owner(), or @owner.
 * One exception, the price of a per-CPU path with no atomic read-modify-write: two CPUs
 * freeing the same order-0 page at the same moment can both pass its check there (the
 * page then sits in two caches; lmm_check() reports it).  With cache_high and
 * pool_slice LMM_CPU_OFF every free takes the lock and the second is refused.
 */
enum lmm_status lmm_free_pages(struct lmm *mm, void *ptr, unsigned order);
enum lmm_status lmm_free_pages_owned(struct lmm *mm, void *ptr, unsigned order, uint16_t owner);

/*
 * Reference counting for non-exclusive blocks.  lmm_page_get() adds a reference
 * (refused for an exclusive page: it can never be shared); lmm_page_put() is
 * lmm_free_pages().  Any context; the caller must hold a reference already.
 */
enum lmm_status lmm_page_get(struct lmm *mm, void *ptr);
enum lmm_status lmm_page_put(struct lmm *mm, void *ptr, unsigned order);

/*
 * Exclusive ownership.  lmm_page_transfer() hands an exclusive page from its owner
 * @from to @to (e.g. from an interrupt handler to another CPU's main loop);
 * lmm_page_unexclusive() turns it into an ordinary page with one reference.  Refused
 * unless @from / @owner is the current owner.  Any context.  Takes lmm.lock.
 */
enum lmm_status lmm_page_transfer(struct lmm *mm, void *ptr, uint16_t from, uint16_t to);
enum lmm_status lmm_page_unexclusive(struct lmm *mm, void *ptr, uint16_t owner);
/* Owner of an exclusive page; 0 if the page is not exclusive or not managed. Any context. */
uint16_t lmm_page_owner(struct lmm *mm, const void *ptr);

/* Address translation for managed memory.  Any context; lock-free. */
uint64_t lmm_virt_to_phys(const struct lmm *mm, const void *ptr); /* LMM_PHYS_INVALID if unmanaged */
void *lmm_phys_to_virt(const struct lmm *mm, uint64_t phys);      /* NULL if unmanaged */

/*
 * The emergency pool (the reserve): a fixed budget of pool_target order-0 frames,
 * waiting (stats.pool: the shared pool and every CPU's slice) or out with ATOMIC
 * callers (stats.reserve_held).  Each frame remembers it belongs to the reserve, so
 * when it is freed - in any context, on any CPU - it goes straight back, never to the
 * normal lists, and the reserve stays the same compact set of frames.  Frames join it
 * from the buddy lists only at init and after the target is raised, and leave it only
 * when the target is lowered.
 *
 * lmm_pool_refill(): bring the reserve up to its target (after lmm_pool_set_marks
 * raised it), a bounded batch per lock hold; returns the pages added.  Not handler
 * (refused with 0 there).  Non-ATOMIC slow paths do the same a batch at a time.
 */
uint32_t lmm_pool_refill(struct lmm *mm);
bool lmm_pool_needs_refill(struct lmm *mm); /* budget below the low mark.  Any context. */
/* Start a new low-water measurement from the current fill.  Any context. */
void lmm_pool_reset_low_water(struct lmm *mm);
/*
 * Change the marks.  Normal only, after lmm_init (else LMM_ERR_STATE).  @low
 * LMM_POOL_AUTO: @target / 2.  A @low above @target, or a @target above
 * stats.pool_most (half the pages free at init: the rest is for everyone else), is
 * refused as LMM_ERR_BAD_MARKS.  Shrinking returns the surplus waiting in the shared
 * pool and in this CPU's slice at once; frames out with callers leave the reserve when
 * they are freed, and those waiting in another CPU's slice when it uses or frees them
 * or is drained (lmm_cpu_drain).  Until then slices are off (stats.pool_slice 0): no
 * reserve frame goes back to one.  Growing is filled by lmm_pool_refill() or the slow
 * paths.
 */
enum lmm_status lmm_pool_set_marks(struct lmm *mm, uint32_t low, uint32_t target);

/*
 * Return @cpu's cache and pool slice to the core.  For the calling CPU (any context),
 * or for a CPU that is not running mm/ code (offline, or parked by the caller), e.g.
 * before lmm_check() or when a CPU goes offline.  Takes lmm.lock.  An index not below
 * LMM_PORT_MAX_CPUS names no slot: refused as LMM_ERR_BAD_CPU, nothing drained.
 */
enum lmm_status lmm_cpu_drain(struct lmm *mm, unsigned cpu);

/* ---- Observability ------------------------------------------------------------------ */

/* Counters, summed over every CPU (each read without stopping it).  Any context. */
void lmm_get_stats(struct lmm *mm, struct lmm_stats *out);
/* One CPU's cache, slice and counters.  Any context.  A @cpu not below
 * LMM_PORT_MAX_CPUS is refused (LMM_ERR_BAD_CPU) and reads as zeros. */
enum lmm_status lmm_get_cpu_stats(struct lmm *mm, unsigned cpu, struct lmm_cpu_stats *out);
void lmm_dump(struct lmm *mm); /* logs counters; not in a handler (refused there) */
/*
 * Walk every frame and list and verify every invariant (list/metadata agreement,
 * alignment, full coalescing, no overlap, every cache and slice, conservation).  Logs
 * each violation and returns their number (0 = healthy).  Holds lmm.lock for
 * O(frames): not in a handler (refused there, returning 1), and no other CPU may be
 * allocating (their caches are read).
 */
uint64_t lmm_check(struct lmm *mm);

/*
 * With LMM_CFG_HOLDERS: log the call sites holding the most pages, like Linux's
 * page_owner sorted output, at most @max lines.  Returns the number of call sites
 * found (0 when holder records are off, or refused in a handler).  O(frames).
 */
unsigned lmm_dump_holders(struct lmm *mm, unsigned max);

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
 * Outside normal context it refuses (LMM_ERR_BAD_CONTEXT, reported to the port), returns 0.
 */
uint64_t lmm_walk(struct lmm *mm, lmm_walk_fn fn, void *ctx);

/* ---- The atomic exclusive routine ---------------------------------------------------- */

/*
 * The allocator that labyrinth_* entry points use; set once after lmm_init() (refused,
 * LMM_ERR_STATE, before it: the default is left as it was; NULL unsets it).  Any
 * context to read, init only to set.  With no default the routine returns NULL and
 * the free LMM_ERR_NOT_MANAGED, unreported: there is no allocator to count them.
 */
void lmm_set_default(struct lmm *mm);
struct lmm *lmm_default(void);

/*
 * One 4 KiB page, allocated in atomic context and owned exclusively by the caller
 * (lmm_port_owner()): lmm_alloc_pages(lmm_default(), 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE).
 * Any context; never waits; O(1) and lock-free while this CPU's pool slice has a page.
 * Returns NULL at once (and counts it) when nothing it may take is left: this CPU's
 * slice, the shared pool, this CPU's cache and the lists are empty.  Other CPUs' slices
 * (at most pool_slice frames each) are theirs.
 *
 * Interrupts-off work, worst case: one lock hold that moves half a slice from the
 * shared pool (pool_slice/2 pops), or, with the reserve empty, one pop from this CPU's
 * cache or one buddy allocation (O(LMM_MAX_ORDER) splits).  Its free: a push, or one
 * lock hold that pushes to the shared pool, or merges the frame into the lists
 * (O(LMM_MAX_ORDER): while a lowered target leaves the reserve over budget, or for a
 * page from outside the reserve when this CPU's cache is full; it never drains a
 * cache batch).  Never a loop over memory, never a refill.
 */
void *labyrinth_void_alloc_page_gfp_atomic_exclusive(void);

/* Its counterpart: free a page from the routine above; only its owner may, and only an
 * exclusive page (any other is refused as LMM_ERR_NOT_EXCLUSIVE).  Any context. */
enum lmm_status labyrinth_free_page_atomic_exclusive(void *page);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_MM_H */

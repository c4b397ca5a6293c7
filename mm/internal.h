/*
 * internal.h - mm/'s private helpers: frame <-> address translation, the lock with its
 * assertion, the LIFO lists of the per-CPU layer and the pool, and the few functions
 * the .c files share.  Included only by the .c files of mm/.
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

_Static_assert(sizeof(struct lmm_frame) == LMM_FRAME_BYTES, "a frame record is 16 bytes");
_Static_assert(LMM_MAX_ORDER >= 1 && LMM_MAX_ORDER <= 31, "free_mask is 32 bits: LMM_MAX_ORDER <= 31");
_Static_assert(LMM_MAX_REGIONS >= 1 && LMM_MAX_REGIONS <= 256, "lmm_frame.region is a byte");
_Static_assert(LMM_PORT_MAX_CPUS >= 1 && LMM_PORT_MAX_CPUS <= 256, "holder records keep the CPU in a byte");
_Static_assert(LMM_FRAME_STATE_COUNT <= 256, "lmm_frame.state is a byte");
_Static_assert(sizeof(struct lmm_cpu) == LMM_CPU_SLOT_BYTES, "a per-CPU slot is LMM_CPU_SLOT_BYTES");
_Static_assert(LMM_PORT_PHYS_BITS >= 32 && LMM_PORT_PHYS_BITS <= 63, "physical address width");

#define LMM_CANARY 0x4c6162797269746eull /* "Labyrint" */

enum lmm_phase {
	LMM_PHASE_INGEST = 0x1a61e57u,
	LMM_PHASE_READY = 0x5eadd1u,
};

#define LMM_FRAME_F_POISONED (1u << 0) /* page filled with LMM_POISON since its free   */
#define LMM_FRAME_F_RESERVE (1u << 1)  /* belongs to the reserve: its free returns it  */
#define LMM_POISON 0x5a5a5a5aa5a5a5a5ull

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
/*
 * The out-of-line half of a public call (lmm_outline) or an unlikely branch of one
 * (lmm_cold), reached by a tail call.  GCC must not rewrite their arguments (noipa):
 * split into more than six, some would go on the stack, and the jump would become a
 * call, with its frame, on the common path.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define lmm_outline __attribute__((noinline, noipa))
#else
#define lmm_outline __attribute__((noinline))
#endif
#define lmm_cold lmm_outline __attribute__((cold))

/*
 * alloc.c's one allocation and one free are forced inline into each public entry point,
 * which passes constants (the flags of the atomic routine, whether to ask the owner)
 * that the compiler folds away.  The coverage build (tests/coverage) defines
 * LMM_COVERAGE_BUILD: there each exists once, so its branches are counted once rather
 * than once per inlined copy, where those constants make some of them untakeable.
 * Either way a report names the entry point's own caller (alloc.c: CALLER_HERE).
 */
#ifdef LMM_COVERAGE_BUILD
#define lmm_inline_entry static inline
#else
#define lmm_inline_entry static inline __attribute__((always_inline))
#endif

/*
 * Fields read by a CPU that does not own them (a frame's state, another CPU's
 * counters) are read and written whole, never torn and never cached in a register:
 * LMM_READ_ONCE / LMM_WRITE_ONCE, never a read-modify-write.  Built as Linux's
 * READ_ONCE/WRITE_ONCE are, with volatile accesses of at most a word.  Relaxed __atomic
 * accesses would do as well on paper, but GCC keeps no ordinary value in a register
 * across one: with them, every allocation and free reloaded mm->frames and its CPU slot
 * after each frame store (make bench-ir: 2 instructions a pair, 25 on a cold pair).
 * Neither form orders anything for another CPU; the lock and the interrupt hooks do.
 * ThreadSanitizer builds use the relaxed atomics, so TSan checks every such access.
 *
 * LMM_OWN_ADD: a counter that only one CPU writes (in its own slot with interrupts
 * off, or under the lock) and others only read (statistics, a cache or slice count).
 * A plain += is one instruction (an add to memory on x86), and these run on every
 * allocation and free.  Formally that is a data race with a reader on another CPU, the
 * one kernels accept for per-CPU statistics (Linux's this_cpu_add()): the reader gets
 * the old value or the new, because the compilers mm/ is built with update an aligned
 * word with one store.  ThreadSanitizer builds use the atomic form here too.
 */
#if defined(__SANITIZE_THREAD__)
#define LMM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LMM_TSAN 1
#endif
#endif
#ifdef LMM_TSAN
#define LMM_READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define LMM_WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define LMM_OWN_ADD(x, v) LMM_WRITE_ONCE(x, (x) + (v))
#else
/* A field wider than a word would tear on a 32-bit host: refused at compile time. */
#define LMM_WORD_SIZED(x) ((void)sizeof(char[sizeof(x) <= sizeof(uintptr_t) ? 1 : -1]))
#define LMM_READ_ONCE(x) (LMM_WORD_SIZED(x), *(const volatile __typeof__(x) *)&(x))
#define LMM_WRITE_ONCE(x, v) (LMM_WORD_SIZED(x), (void)(*(volatile __typeof__(x) *)&(x) = (v)))
#define LMM_OWN_ADD(x, v) ((void)((x) += (v)))
#endif
#define LMM_INC(x) LMM_OWN_ADD(x, 1)

/* The allocation calls made on CPU @c: a slice hit is one, counted apart (struct lmm_cpu). */
static inline lmm_count_t lmm_cpu_calls(const struct lmm_cpu *c)
{
	return LMM_READ_ONCE(c->alloc_calls) + LMM_READ_ONCE(c->slice_hits);
}

/* The reserve pages handed out on CPU @c to callers of class @k: a slice hit is ATOMIC's. */
static inline lmm_count_t lmm_cpu_reserve_to(const struct lmm_cpu *c, enum lmm_gfp_class k)
{
	return LMM_READ_ONCE(c->reserve_to[k]) + (k == LMM_CLASS_ATOMIC ? LMM_READ_ONCE(c->slice_hits) : 0);
}

/* The pages handed out on CPU @c minus those taken back there (struct lmm_cpu); wraps. */
static inline lmm_count_t lmm_cpu_allocated(const struct lmm_cpu *c)
{
	return lmm_cpu_calls(c) - LMM_READ_ONCE(c->alloc_failures) - LMM_READ_ONCE(c->free_calls) +
	       LMM_READ_ONCE(c->allocated_adjust);
}

/*
 * The one hand-over between CPUs that no lock orders: a shared block's last reference
 * may be dropped on the per-CPU path, without the lock, by a CPU that reuses the page at
 * once.  Every other reference is dropped under the lock with a release store, and the
 * per-CPU verdict reads the count with an acquire load, so what a holder wrote to the
 * block before its put happens before the next owner's writes (on AArch64 or RISC-V a
 * late store of the old holder could otherwise land in the new owner's page).  On x86
 * both are plain moves.
 */
#define LMM_LOAD_ACQUIRE(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define LMM_STORE_RELEASE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/*
 * Frame @f's word, read once, with acquire ordering for the refcount in it
 * (LMM_LOAD_ACQUIRE above: the CPU orders by instruction, so an acquire load of the
 * word that reads the count's bytes pairs with the release store of the count).  Field
 * by field on a 32-bit host (no one-word load of eight bytes) and under ThreadSanitizer,
 * which pairs an acquire only with a release at the same address: there the count is
 * read by itself.  No torn value matters: only a frame that the caller holds is stable.
 */
static inline uint64_t lmm_frame_word_of(const struct lmm_frame *f)
{
#if UINTPTR_MAX > UINT32_MAX && !defined(LMM_TSAN)
	return LMM_LOAD_ACQUIRE(f->word);
#else
	const struct lmm_frame t = { .owner = LMM_READ_ONCE(f->owner),
				     .refcount = LMM_LOAD_ACQUIRE(f->refcount),
				     .state_order = LMM_READ_ONCE(f->state_order),
				     .flags = LMM_READ_ONCE(f->flags),
				     .region = f->region };
	return t.word;
#endif
}

/*
 * Frame @f's word set to @w, in one store where a word is eight bytes; else, and under
 * ThreadSanitizer (as lmm_frame_word_of()), its owner and use word.  Only for a frame
 * this CPU holds, whose flags and region @w repeats: nobody else writes those.
 */
static inline void lmm_frame_set_word(struct lmm_frame *f, uint64_t w)
{
#if UINTPTR_MAX > UINT32_MAX && !defined(LMM_TSAN)
	LMM_WRITE_ONCE(f->word, w);
#else
	const struct lmm_frame t = { .word = w };
	LMM_WRITE_ONCE(f->owner, t.owner);
	LMM_WRITE_ONCE(f->use, t.use);
#endif
}

/*
 * Its state_order word for @state and @order, and the state in such a word.  Shifts by
 * byte order, not a compound literal as above: with a variable order, GCC builds that
 * one through a 64-bit register (make bench-ir: 5 instructions a core free).
 */
#if !defined(__BYTE_ORDER__) || (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ && __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__)
#error "mm/ needs the compiler's __BYTE_ORDER__ (GCC and clang define it)"
#endif
#define LMM_STATE_SHIFT (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 8)

static inline uint16_t lmm_state_order(uint8_t state, unsigned order)
{
	return (uint16_t)((unsigned)state << LMM_STATE_SHIFT | (order & 0xffu) << (8 - LMM_STATE_SHIFT));
}

/* struct lmm_frame's use word: @refcount references, @state, @order. */
static inline uint32_t lmm_use_word(uint16_t refcount, uint8_t state, unsigned order)
{
	const uint32_t so = lmm_state_order(state, order);
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? refcount | so << 16 : (uint32_t)refcount << 16 | so;
}

/*
 * The word of an order-0 page in region @region held by @owner with @refcount
 * references, in @state, with @flags: what a correct free finds (lmm_frame_word_of()).
 * Constant for constant arguments; the region is part of it so that a free located in
 * region 0 (lmm_locate_first()) compares the frame's word in memory with one constant.
 * Shifts here too: GCC builds a compound literal with a variable owner on the stack.
 */
static inline uint64_t lmm_held_word(uint16_t owner, uint16_t refcount, uint8_t state, uint8_t flags,
				     uint8_t region)
{
	const uint64_t use = lmm_use_word(refcount, state, 0);
	if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
		return use | (uint64_t)owner << 32 | (uint64_t)flags << 48 | (uint64_t)region << 56;
	return use << 32 | (uint64_t)owner << 16 | (uint64_t)flags << 8 | region;
}

/* What adding to a state_order word does to its order: one step is one order up. */
#define LMM_ORDER_STEP ((uint16_t)(1u << (8 - LMM_STATE_SHIFT)))

static inline uint8_t lmm_state_in(uint16_t state_order)
{
	return (uint8_t)(state_order >> LMM_STATE_SHIFT);
}

/*
 * Count trailing zeros of a non-zero word without a compiler runtime helper: the
 * builtin where it is an instruction on every CPU of the architecture (x86 bsf/tzcnt,
 * AArch64 rbit+clz), else a de Bruijn multiply (RISC-V without Zbb, for one, would
 * call libgcc's __ctzsi2).
 */
static inline unsigned lmm_ctz32(uint32_t x)
{
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
	return (unsigned)__builtin_ctz(x);
#else
	static const uint8_t debruijn[32] = { 0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20,
					      15, 25, 17, 4,  8,  31, 27, 13, 23, 21, 19,
					      16, 7,  26, 12, 18, 6,  11, 5,  10, 9 };
	return debruijn[((x & (0u - x)) * 0x077CB531u) >> 27];
#endif
}

/* ---- Translation ------------------------------------------------------------------ */

static inline const struct lmm_region *lmm_region_of(const struct lmm *mm, uint32_t idx)
{
	return &mm->regions[mm->frames[idx].region];
}

static inline uint64_t lmm_frame_pfn(const struct lmm *mm, uint32_t idx)
{
	const struct lmm_region *r = lmm_region_of(mm, idx);
	return r->base_pfn + (idx - r->first_index);
}

static inline uint64_t lmm_frame_phys(const struct lmm *mm, uint32_t idx)
{
	return lmm_frame_pfn(mm, idx) << LMM_PAGE_SHIFT;
}

/* A frame's address: its region's delta (struct lmm, vdelta) plus its index in pages. */
static inline uintptr_t lmm_frame_vdelta(const struct lmm *mm, uint32_t idx)
{
	return mm->vdelta[mm->frames[idx].region];
}

static inline void *lmm_index_virt(uintptr_t vdelta, uint32_t idx)
{
	return (void *)(vdelta + ((uintptr_t)idx << LMM_PAGE_SHIFT));
}

static inline void *lmm_frame_virt(const struct lmm *mm, uint32_t idx)
{
	return lmm_index_virt(lmm_frame_vdelta(mm, idx), idx);
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
	/*
	 * The nregions test comes after a region's compare, so a hit in region 0 (most
	 * kernels have one large region) costs no loop test.  Slots at or past nregions
	 * are zero (vbytes 0): region 0 never matches before lmm_init().  nregions <=
	 * LMM_MAX_REGIONS bounds the loop.
	 */
	for (const struct lmm_region *r = mm->regions;; r++) {
		/* Unsigned: an address below the region wraps to a huge offset. */
		uint64_t off = (uint64_t)(uintptr_t)(va - r->vbase);
		if (likely(off < r->vbytes)) {
			if (unlikely(off & (LMM_PAGE_SIZE - 1)))
				return LMM_ERR_NOT_ALIGNED;
			*idx = r->first_index + (uint32_t)(off >> LMM_PAGE_SHIFT);
			return LMM_OK;
		}
		if (r + 1 >= mm->regions + mm->nregions)
			break;
	}
	return (va & (LMM_PAGE_SIZE - 1)) ? LMM_ERR_NOT_ALIGNED : LMM_ERR_NOT_MANAGED;
}

/*
 * lmm_locate()'s likely case for a free, as one compare: @ptr is a page of region 0
 * (most kernels have one large region), whose frames are numbered from 0, and lmm_init()
 * let the fast path place it (struct lmm, fast_free_pages).  A rotate folds the
 * alignment test into the bound: an offset off a page boundary has its low bits
 * rotated to the top, far above any page count.  The bound is word-sized, as the
 * rotated offset is, so the compare reads it from memory (make bench-ir: 1 instruction
 * a free).  False: ask lmm_locate().
 */
static inline bool lmm_locate_first(const struct lmm *mm, const void *ptr, uint32_t *idx)
{
	const uintptr_t off = (uintptr_t)ptr - mm->regions[0].vbase;
	const uintptr_t page = off >> LMM_PAGE_SHIFT | off << (sizeof(uintptr_t) * 8 - LMM_PAGE_SHIFT);
	if (likely(page < mm->fast_free_pages)) {
		*idx = (uint32_t)page;
		return true;
	}
	return false;
}

/* The page holding @ptr, aligned or not: the one a refusal names (lmm_report.phys). */
static inline enum lmm_status lmm_locate_page(const struct lmm *mm, const void *ptr, uint32_t *idx)
{
	return lmm_locate(mm, (const void *)((uintptr_t)ptr & ~(uintptr_t)(LMM_PAGE_SIZE - 1)), idx);
}

/* ---- The core lock ------------------------------------------------------------------ */

/*
 * The only way mm/ takes its lock.  @c is the calling CPU's slot (interrupts are off
 * already, or go off here), recorded so *_locked functions can assert they hold it.
 */
static inline lmm_irqflags_t lmm_lock(struct lmm *mm, const struct lmm_cpu *c)
{
	lmm_irqflags_t fl = lmm_port_lock_irqsave(&mm->lock);
#if LMM_DEBUG
	mm->lock_holder = c->lock_tag;
#else
	(void)c;
#endif
	return fl;
}

static inline void lmm_unlock(struct lmm *mm, lmm_irqflags_t fl)
{
#if LMM_DEBUG
	mm->lock_holder = 0;
#endif
	lmm_port_unlock_irqrestore(&mm->lock, fl);
}

/*
 * Interrupts off, then the lock, for calls that do not go through the per-CPU layer
 * first: struct lmm_held remembers both saved states and the calling CPU's slot.
 */
struct lmm_held {
	lmm_irqflags_t irq, lock;
	struct lmm_cpu *c;
};

static inline struct lmm_cpu *lmm_enter_cpu(struct lmm *mm, lmm_irqflags_t *fl);

static inline struct lmm_cpu *lmm_lock_here(struct lmm *mm, struct lmm_held *h)
{
	h->c = lmm_enter_cpu(mm, &h->irq);
	h->lock = lmm_lock(mm, h->c);
	return h->c;
}

static inline void lmm_unlock_here(struct lmm *mm, struct lmm_held *h)
{
	lmm_unlock(mm, h->lock);
	lmm_port_irq_restore(h->irq);
}

/* Every *_locked function starts with this. */
#if LMM_DEBUG
#define LMM_ASSERT_LOCKED(mm, c)                                                         \
	do {                                                                             \
		if (unlikely((mm)->lock_holder != (c)->lock_tag))                        \
			lmm_port_fatal("lmm: a *_locked function ran without the lock"); \
	} while (0)
#else
#define LMM_ASSERT_LOCKED(mm, c) ((void)(mm), (void)(c))
#endif

/*
 * Interrupts off (the state before in *@fl), then the calling CPU's slot (lmm_enter_cpu()
 * below): how every allocation, free and per-CPU call starts.  One hook call (6) on a
 * multiprocessor port.
 */
static inline struct lmm_irq_cpu lmm_irq_save_cpu(void)
{
#if LMM_PORT_MAX_CPUS == 1
	return (struct lmm_irq_cpu){ lmm_port_irq_save(), 0 };
#else
	return lmm_port_irq_save_cpu();
#endif
}

/* The slot of CPU @cpu, as lmm_irq_save_cpu() gave it (interrupts off: no migration). */
static inline struct lmm_cpu *lmm_cpu_slot(struct lmm *mm, uintptr_t cpu)
{
	if (LMM_DEBUG && unlikely(cpu >= LMM_PORT_MAX_CPUS))
		lmm_port_fatal("lmm: lmm_port_irq_save_cpu() gave a CPU index not below LMM_PORT_MAX_CPUS");
	/* &mm->cpu[cpu] (a slot is LMM_CPU_SLOT_BYTES: asserted above), with the index widened
	 * first: GCC then scales it with one shift and adds the array's offset in the same
	 * lea, one instruction less than the index form (make bench-ir: 2 a pair). */
	struct lmm_cpu *c = (struct lmm_cpu *)((char *)mm->cpu + cpu * LMM_CPU_SLOT_BYTES);
	/*
	 * An empty asm, no instruction (Linux's OPTIMIZER_HIDE_VAR): GCC otherwise folds the
	 * array's offset into the index and keeps two bases for one slot, its fields and
	 * &c->cache_head, at three instructions each (make bench-ir: 3 to 5 a pair).
	 */
	__asm__("" : "+r"(c));
	return c;
}

static inline struct lmm_cpu *lmm_enter_cpu(struct lmm *mm, lmm_irqflags_t *fl)
{
	struct lmm_irq_cpu ic = lmm_irq_save_cpu();
	*fl = ic.flags;
	return lmm_cpu_slot(mm, ic.cpu);
}

/* ---- LIFO stacks of order-0 frames: caches, slices, the shared pool ------------------ */

/*
 * Link the order-0 frame @f (index @idx) in on top of the stack at *@head; its caller
 * stores its state.  Its order is 0 already: a split or a verdict made it so, and
 * lmm_check() verifies every stack.
 */
static inline void lmm_stack_link(struct lmm_frame *f, uint32_t *head, uint32_t *count, uint32_t idx)
{
	f->next = *head;
	*head = idx;
	LMM_OWN_ADD(*count, 1);
}

/*
 * Push frame @idx with state @state onto the stack at *@head.  The state is stored with
 * a relaxed store: other CPUs read it locklessly (a double free checks it, a merge looks
 * at its buddy) and must see CACHED/POOL, never FREE.
 */
static inline void lmm_stack_push(struct lmm *mm, uint32_t *head, uint32_t *count, uint32_t idx,
				  uint8_t state)
{
	struct lmm_frame *f = &mm->frames[idx];
	LMM_WRITE_ONCE(f->state, state);
	lmm_stack_link(f, head, count, idx);
}

static inline uint32_t lmm_stack_pop(struct lmm *mm, uint32_t *head, uint32_t *count)
{
	uint32_t idx = *head;
	/* Not for other CPUs: a plain store, GCC pairs with the count's in one vector store,
	 * one instruction more than the two stores (make bench-ir). */
	LMM_WRITE_ONCE(*head, mm->frames[idx].next);
	LMM_OWN_ADD(*count, (uint32_t)-1);
	return idx;
}

/* ---- Shared functions ------------------------------------------------------------------ */

/* buddy.c: the buddy lists.  Lock held. */
uint32_t lmm_buddy_alloc_locked(struct lmm *mm, const struct lmm_cpu *c, unsigned order);
void lmm_buddy_free_locked(struct lmm *mm, const struct lmm_cpu *c, uint32_t idx, unsigned order);
void lmm_buddy_add_block(struct lmm *mm, unsigned order, uint32_t idx); /* init: no merge */

/* init.c: struct lmm.fast_free_pages for this allocator (a function: host tests call it). */
uintptr_t lmm_fast_free_pages(struct lmm *mm);

/* pool.c: the reserve.  Lock held. */
uint32_t lmm_pool_auto_target(uint64_t free_pages);
/* Marks outside low <= target <= pool_most: refused (reported as @op's), true. */
bool lmm_pool_marks_refused(struct lmm *mm, uint32_t low, uint32_t target, const char *op, const void *caller);
uint32_t lmm_reserve_level(const struct lmm *mm); /* waiting: shared pool + every slice */
uint32_t lmm_reserve_held(const struct lmm *mm);  /* handed out, not yet back (snapshot) */
void lmm_reserve_leave_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t idx);
uint32_t lmm_slice_most(const struct lmm *mm); /* the configured slice size */
uint32_t lmm_slice_size(const struct lmm *mm); /* ... within the current target */
#define LMM_POOL_BATCH 32 /* reserve frames joining or leaving per lock hold: bounds it */
uint32_t lmm_pool_topup_locked(struct lmm *mm, struct lmm_cpu *c, uint32_t max);
/* Top the pool up to its target; no context check (init, lmm_pool_refill). */
uint32_t lmm_pool_fill(struct lmm *mm);

/* check.c: poisoning */
void lmm_poison_page(struct lmm *mm, uint32_t idx);
void lmm_poison_verify(struct lmm *mm, uint32_t idx, unsigned order, const void *caller);

/* holders.c */
void lmm_holder_record(struct lmm *mm, uint32_t idx, unsigned order, const void *caller);

/* log.c */
void lmm_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t lmm_vformat(char *buf, size_t len, const char *fmt, va_list ap);
size_t lmm_format(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lmm_check_canary(const struct lmm *mm);
/* Map a free-ish head state to the reason a free or ownership call on it is refused. */
enum lmm_status lmm_state_refusal(uint8_t state);
const char *lmm_state_str(uint8_t state);

/*
 * Count a refusal and hand its record to the port.  Never with the lock held or with
 * interrupts off on mm/'s behalf.  Fills in context and cpu.
 */
void lmm_refuse(struct lmm *mm, struct lmm_report *r);

/*
 * What a refusal's record says of the page at r->ptr (unaligned: the page it points
 * into): its phys, and the state, order and owner of the block that holds it, read in
 * one hold of the lock (the caller holds none).  Nothing is filled in when r->ptr is
 * not managed.
 */
void lmm_report_page(struct lmm *mm, struct lmm_report *r);

/* A call naming CPU @cpu, not below LMM_PORT_MAX_CPUS: refused, named in the record. */
enum lmm_status lmm_refuse_cpu_index(struct lmm *mm, unsigned cpu, const char *op, const void *caller);

/*
 * The context gate of the calls that are not for every context: true (and the call
 * refused as LMM_ERR_BAD_CONTEXT, naming @op and @caller) when lmm_port_context() is
 * above @most, e.g. LMM_CTX_IRQS_OFF for "not in a handler".
 */
bool lmm_refuse_context_above(struct lmm *mm, enum lmm_context most, const char *op, const void *caller);

#endif /* LMM_INTERNAL_H */

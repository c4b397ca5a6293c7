/*
 * bench.c - mode=bench: W1, W2 and W5 of the host benchmark, run inside the kernel.
 *
 * The loops are tests/bench/workloads.c, the very code the host benchmark runs; only
 * the meter (the TSC) and the arenas (blocks borrowed from the kernel allocator) differ.
 * Each figure is the median of BENCH_ROUNDS interleaved rounds, in TSC cycles per
 * operation, next to an in-kernel free list of pages: bare, behind a test-and-set lock
 * inside the port's interrupt save/restore (the cheap locked list: every ratio is against
 * it), and behind the kernel's IRQ-save spinlock.  Under QEMU's TCG the TSC measures emulation, so only the ratios
 * between allocators mean anything; the output says so.
 */
#include <labyrinth/arch.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>

#include "tests.h"
#include "workloads.h"

#define BENCH_ROUNDS 5
#define PAIRS 50000
#define ARENA_BLOCKS 4 /* order-LMM_MAX_ORDER blocks per arena: 16 MiB */
#define ARENA_PAGES ((uint64_t)ARENA_BLOCKS << LMM_MAX_ORDER)
#define SLOTS_ORDER 6  /* 256 KiB of pointers: more than ARENA_PAGES */
#define MAX_PHASES 2

/* ---- The meter: TSC per region ------------------------------------------------------------ */

struct tsc_meter {
	struct bench_meter m;
	uint64_t t0;
	unsigned n;
	struct {
		const char *phase;
		uint64_t cycles, ops;
	} region[MAX_PHASES];
};

static void meter_begin(struct bench_meter *m)
{
	((struct tsc_meter *)m)->t0 = arch_read_tsc();
}

static void meter_end(struct bench_meter *m, const char *phase, uint64_t ops)
{
	uint64_t t1 = arch_read_tsc();
	struct tsc_meter *tm = (struct tsc_meter *)m;
	if (tm->n < MAX_PHASES)
		tm->region[tm->n++] = (typeof(tm->region[0])){ phase, t1 - tm->t0, ops };
}

static struct tsc_meter meter_new(void)
{
	return (struct tsc_meter){ .m = { meter_begin, meter_end } };
}

/* Cycles per op of @phase in the last run, x100 for two decimals. */
static uint64_t per_op_x100(const struct tsc_meter *tm, unsigned i)
{
	return tm->region[i].ops ? tm->region[i].cycles * 100 / tm->region[i].ops : 0;
}

/* ---- Arenas ---------------------------------------------------------------------------------- */

static struct lmm arena;
static struct lmm_stats arena_idle; /* after init: the run must return to it */
static struct bench_freelist fl;
static void *borrowed[2 * ARENA_BLOCKS];
static void *fl_block[ARENA_BLOCKS];

static bool borrow_arenas(void)
{
	lmm_begin(&arena, &(struct lmm_config){ .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO, .flags = LMM_CFG_QUIET });
	for (unsigned i = 0; i < 2 * ARENA_BLOCKS; i++) {
		borrowed[i] = lmm_alloc_pages(&kernel_mm, LMM_MAX_ORDER, LMM_GFP_KERNEL);
		if (!borrowed[i]) {
			kprintf("bench: cannot borrow %u blocks of %lu KiB\n", 2 * ARENA_BLOCKS,
				(LMM_PAGE_SIZE << LMM_MAX_ORDER) >> 10);
			return false;
		}
		if (i < ARENA_BLOCKS)
			lmm_add_range(&arena, lmm_virt_to_phys(&kernel_mm, borrowed[i]),
				      LMM_PAGE_SIZE << LMM_MAX_ORDER);
		else
			fl_block[i - ARENA_BLOCKS] = borrowed[i];
	}
	if (lmm_init(&arena) != LMM_OK)
		return false;
	lmm_get_stats(&arena, &arena_idle);
	lmm_port_lock_init(&fl.lock, "bench freelist");
	return true;
}

/* The free list threads all its blocks, in address order within each block. */
static void build_freelist(void)
{
	struct bench_freelist part;
	fl.head = NULL;
	for (unsigned i = ARENA_BLOCKS; i-- > 0;) {
		bench_freelist_build(&part, fl_block[i], 1ull << LMM_MAX_ORDER);
		void **tail = part.head;
		while (*tail)
			tail = *tail;
		*tail = fl.head;
		fl.head = part.head;
	}
}

static void return_arenas(void)
{
	for (unsigned i = 0; i < 2 * ARENA_BLOCKS; i++)
		lmm_free_pages(&kernel_mm, borrowed[i], LMM_MAX_ORDER);
}

/* ---- Reporting ------------------------------------------------------------------------------- */

static uint64_t median(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

struct row {
	const char *workload, *what, *alloc;
	uint64_t v[BENCH_ROUNDS];
};

static void print_rows(struct row *rows, unsigned n, unsigned locked_baseline)
{
	uint64_t base = median(rows[locked_baseline].v, BENCH_ROUNDS);
	for (unsigned i = 0; i < n; i++) {
		uint64_t lo = rows[i].v[0], hi = rows[i].v[0];
		for (unsigned r = 1; r < BENCH_ROUNDS; r++) {
			lo = rows[i].v[r] < lo ? rows[i].v[r] : lo;
			hi = rows[i].v[r] > hi ? rows[i].v[r] : hi;
		}
		uint64_t med = median(rows[i].v, BENCH_ROUNDS);
		uint64_t ratio = base ? med * 100 / base : 0;
		kprintf("  %-22s %-15s %-24s %7lu.%02lu (%lu.%02lu-%lu.%02lu)  %lu.%02lux\n", rows[i].workload,
			rows[i].what, rows[i].alloc, med / 100, med % 100, lo / 100, lo % 100, hi / 100,
			hi % 100, ratio / 100, ratio % 100);
	}
}

/* ---- Workloads --------------------------------------------------------------------------------- */

static const struct bench_alloc A_FL = { "free list", bench_freelist_alloc, bench_freelist_free, &fl };
static const struct bench_alloc A_FLT = { "free list + tas lock", bench_freelist_alloc_tas,
					  bench_freelist_free_tas, &fl };
static const struct bench_alloc A_FLL = { "free list + port lock", bench_freelist_alloc_irqsave,
					  bench_freelist_free_irqsave, &fl };
static const struct bench_alloc A_MM = { "mm/ KERNEL", bench_lmm_alloc, bench_lmm_free, &arena };
static const struct bench_alloc A_ATOMIC = { "mm/ atomic exclusive", bench_lmm_atomic_alloc,
					     bench_lmm_atomic_free, NULL };

/* W1 warm / W5: pairs, rounds interleaved so drift hits every allocator alike. */
static void pairs(const char *workload, const struct bench_alloc *mm_side)
{
	const struct bench_alloc *allocs[4] = { &A_FL, &A_FLT, &A_FLL, mm_side };
	struct row rows[4];
	for (unsigned j = 0; j < 4; j++)
		rows[j] = (struct row){ workload, "alloc+free pair", allocs[j]->name, { 0 } };
	for (unsigned r = 0; r < BENCH_ROUNDS; r++)
		for (unsigned k = 0; k < 4; k++) {
			unsigned j = (k + r) % 4;
			struct tsc_meter tm = meter_new();
			bench_pairs(allocs[j], &tm.m, PAIRS);
			rows[j].v[r] = per_op_x100(&tm, 0);
		}
	print_rows(rows, 4, 1);
}

static void w2(void **slots)
{
	const struct bench_alloc *allocs[4] = { &A_FL, &A_FLT, &A_FLL, &A_MM };
	struct row rows[8];
	for (unsigned j = 0; j < 4; j++) {
		rows[2 * j] = (struct row){ "W2 exhaust", "alloc", allocs[j]->name, { 0 } };
		rows[2 * j + 1] = (struct row){ "W2 exhaust", "free (random)", allocs[j]->name, { 0 } };
	}
	for (unsigned r = 0; r < BENCH_ROUNDS; r++)
		for (unsigned k = 0; k < 4; k++) {
			unsigned j = (k + r) % 4;
			if (allocs[j] != &A_MM)
				build_freelist();
			struct tsc_meter tm = meter_new();
			bench_exhaust(allocs[j], &tm.m, slots, ARENA_PAGES + 1, 0x5eed0002u + r);
			rows[2 * j].v[r] = per_op_x100(&tm, 0);
			rows[2 * j + 1].v[r] = per_op_x100(&tm, 1);
		}
	build_freelist();
	/* Baseline for both lines is the locked list's alloc line: ratios read alike. */
	print_rows(rows, 8, 2);
}

/*
 * W1 cold: everything in the arena allocated but one order-LMM_MAX_ORDER block, so each
 * allocation splits all the way down and each free merges all the way back up.  The
 * held blocks are chained through their own first words.
 */
static void w1_cold(void)
{
	void *chain = NULL, *first = NULL, *p;
	for (int o = LMM_MAX_ORDER; o >= 0; o--)
		while ((p = lmm_alloc_pages(&arena, (unsigned)o, LMM_GFP_KERNEL))) {
			if (!first) {
				first = p;
				continue;
			}
			((void **)p)[0] = chain;
			((uint64_t *)p)[1] = (uint64_t)o;
			chain = p;
		}
	lmm_free_pages(&arena, first, LMM_MAX_ORDER);
	pairs("W1 cold order-0", &A_MM);
	while (chain) {
		void *next = ((void **)chain)[0];
		lmm_free_pages(&arena, chain, (unsigned)((uint64_t *)chain)[1]);
		chain = next;
	}
}

/* The longest interrupts-off stretch of the atomic path: each call timed with IF=0. */
static void atomic_irqs_off_worst(void)
{
	uint64_t worst_alloc = 0, worst_free = 0, sum = 0;
	for (unsigned i = 0; i < PAIRS; i++) {
		arch_irqflags_t f = arch_irq_save();
		uint64_t t0 = arch_read_tsc();
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		uint64_t t1 = arch_read_tsc();
		labyrinth_free_page_atomic_exclusive(p);
		uint64_t t2 = arch_read_tsc();
		arch_irq_restore(f);
		/* A reserve page goes back to the reserve; refill only if it ever runs low. */
		if (lmm_pool_needs_refill(&kernel_mm))
			lmm_pool_refill(&kernel_mm);
		worst_alloc = t1 - t0 > worst_alloc ? t1 - t0 : worst_alloc;
		worst_free = t2 - t1 > worst_free ? t2 - t1 : worst_free;
		sum += t2 - t0;
	}
	kprintf("  atomic path, interrupts off: worst alloc %lu cycles, worst free %lu cycles, mean pair %lu cycles\n",
		worst_alloc, worst_free, sum / PAIRS);
}

bool kernel_run_bench(void)
{
	void **slots = lmm_alloc_pages(&kernel_mm, SLOTS_ORDER, LMM_GFP_KERNEL);
	if (!slots || (LMM_PAGE_SIZE << SLOTS_ORDER) / sizeof(void *) <= ARENA_PAGES || !borrow_arenas()) {
		kprintf("bench: not enough memory for the arenas (boot with at least 128M)\n");
		return false;
	}
	build_freelist();
	kprintf("bench: in-kernel W1/W2/W5, TSC cycles per operation, median (min-max) of %u rounds,\n"
		"bench: ratio against the free list with the test-and-set lock; TSC %lu MHz.\n"
		"bench: under QEMU TCG the TSC counts emulation: compare the ratios, not the cycles.\n",
		BENCH_ROUNDS, arch_tsc_hz() / 1000000);
	kprintf("  %-22s %-15s %-24s %s\n", "workload", "operation", "allocator", "cycles/op           ratio");

	void *pin = lmm_alloc_pages(&arena, 0, LMM_GFP_KERNEL); /* its buddy never merges */
	pairs("W1 warm order-0", &A_MM);
	lmm_free_pages(&arena, pin, 0);
	w1_cold();
	w2(slots);
	pairs("W5 atomic pool pair", &A_ATOMIC);
	atomic_irqs_off_worst();

	/* Freed order-0 pages wait in this CPU's cache: drain it before the full checks, and
	 * compare what is available (free + pool + cached), not the free lists alone. */
	lmm_cpu_drain(&arena, arch_cpu_id());
	bool ok = lmm_check(&arena) == 0 && lmm_check(&kernel_mm) == 0;
	struct lmm_stats s;
	lmm_get_stats(&arena, &s);
	ok = ok && s.allocated == 0 && s.available == arena_idle.available;
	if (!ok)
		kprintf("bench: arena: %lu allocated, %lu available (free %lu pool %lu cached %lu), %lu at init\n",
			s.allocated, s.available, s.free, s.pool, s.cached, arena_idle.available);
	return_arenas();
	lmm_free_pages(&kernel_mm, slots, SLOTS_ORDER);
	kprintf("bench: %s\n", ok ? "done, allocators consistent" : "FAIL: allocator inconsistent after the run");
	return ok;
}

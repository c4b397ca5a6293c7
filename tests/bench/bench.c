/*
 * bench.c - the host benchmark of mm/ (make bench, make bench-ir): drives the workloads
 * of workloads.c over 1 GiB arenas against the free-list baselines, interleaving the
 * allocators round by round, and prints a table of medians (and a CSV) or, built with
 * BENCH_CALLGRIND and run under callgrind, dumps one callgrind profile per measured region.
 * Linked with the host port (port_host.c) or, built with BENCH_PORT_MINIMAL, with the
 * minimal port an embedding kernel would have (port_minimal.c); tests/bench/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <labyrinth/mm.h>
#include "port_host.h"
#include "workloads.h"

#ifndef BENCH_CALLGRIND
#define BENCH_CALLGRIND 0
#endif
#ifndef BENCH_PORT_MINIMAL
#define BENCH_PORT_MINIMAL 0
#endif
#ifdef LMM_PORT_INLINE_HEADER
#define PORT_NAME (BENCH_PORT_MINIMAL ? "minimal-inline" : "host-inline")
#else
#define PORT_NAME (BENCH_PORT_MINIMAL ? "minimal" : "host")
#endif
#if BENCH_CALLGRIND
#include <valgrind/callgrind.h>
#endif

#define MiB (1ull << 20)
#define GiB (1ull << 30)

#define ARENA_BYTES (1 * GiB)
#define ARENA_PAGES (ARENA_BYTES >> LMM_PAGE_SHIFT)
#define HOLDERS_BYTES (64 * MiB) /* the LMM_CFG_HOLDERS instance: W1 warm only */
#define MAX_ROUNDS 64

#define FL_NAME "freelist"
#define FLT_NAME "freelist+tas" /* the cheap locked list: every ratio is taken against it */
#define FLL_NAME "freelist+portlock"
#define FLC_NAME "checked list+tas" /* refuses double and foreign frees: a reference, not a target */
#define LMM_NAME "mm/"
#define LMM_NC_NAME "mm/ no-cache"  /* cache_high = pool_slice = LMM_CPU_OFF: one lock */
#define MT_OWN_NAME "private lists" /* MT only: one freelist+tas per thread */
#define LMM_H_NAME "mm/ +holders"   /* LMM_CFG_HOLDERS */
#define LMM_ATOMIC_NAME "mm/ atomic-excl"

static struct {
	unsigned rounds;
	uint64_t pairs;  /* W1, W5 */
	uint64_t w3_ops; /* per W3 configuration */
	const char *csv;
	bool ir;
	bool mt, mt_only;  /* the 2-thread scaling run (timed only) */
	uint64_t mt_pairs; /* per thread and measurement (the single-lock instance: a quarter) */
	unsigned mt_rounds;
} opt = { 7, 1000000, 1000000, NULL, false, true, false, 16000000, 7 };

#define unlikely_null(p) __builtin_expect((p) == NULL, 0)

static unsigned problems; /* failed sanity checks: the run exits non-zero */

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench: PROBLEM: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	problems++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- Meters: wall clock, or one callgrind dump per region ------------------------------ */

struct region {
	char phase[16];
	uint64_t ops, ns;
};

struct host_meter {
	struct bench_meter m;
	char label[96]; /* "workload|allocator" of the run in progress */
	uint64_t t0;
	unsigned nregions;
	struct region regions[4];
};

static void clock_begin(struct bench_meter *bm)
{
	struct host_meter *hm = (struct host_meter *)bm;
	hm->t0 = now_ns();
}

static void clock_end(struct bench_meter *bm, const char *phase, uint64_t ops)
{
	uint64_t t1 = now_ns();
	struct host_meter *hm = (struct host_meter *)bm;
	if (hm->nregions < 4) {
		struct region *r = &hm->regions[hm->nregions++];
		snprintf(r->phase, sizeof(r->phase), "%s", phase);
		r->ops = ops;
		r->ns = t1 - hm->t0;
	}
}

#if BENCH_CALLGRIND
/*
 * Only the region is collected (valgrind runs with --collect-atstart=no); its dump is
 * named "workload|allocator|phase|ops" for tests/bench/bench-ir.sh to divide by.  Call
 * counts accumulate even while collection is off and CALLGRIND_ZERO_STATS keeps them, so
 * a throw-away dump just before the region is what keeps set-up calls out of its counts.
 */
static void ir_begin(struct bench_meter *bm)
{
	(void)bm;
	CALLGRIND_DUMP_STATS_AT("set-up, discarded");
	CALLGRIND_TOGGLE_COLLECT;
}

static void ir_end(struct bench_meter *bm, const char *phase, uint64_t ops)
{
	CALLGRIND_TOGGLE_COLLECT;
	struct host_meter *hm = (struct host_meter *)bm;
	char name[160];
	snprintf(name, sizeof(name), "%s|%s|%" PRIu64, hm->label, phase, ops);
	CALLGRIND_DUMP_STATS_AT(name);
	clock_end(bm, phase, ops); /* keeps ops for the sanity checks; the time is meaningless */
}
#endif

static struct host_meter meter;

static struct bench_meter *meter_for(const char *workload, const char *alloc)
{
	meter.m = (struct bench_meter){ clock_begin, clock_end };
#if BENCH_CALLGRIND
	if (opt.ir)
		meter.m = (struct bench_meter){ ir_begin, ir_end };
#endif
	snprintf(meter.label, sizeof(meter.label), "%s|%s", workload, alloc);
	meter.nregions = 0;
	return &meter.m;
}

static const struct region *region_of(const char *phase)
{
	for (unsigned i = 0; i < meter.nregions; i++)
		if (!strcmp(meter.regions[i].phase, phase))
			return &meter.regions[i];
	fprintf(stderr, "bench: no region '%s' in %s\n", phase, meter.label);
	exit(2);
}

static double ns_per_op(const char *phase)
{
	const struct region *r = region_of(phase);
	return r->ops ? (double)r->ns / (double)r->ops : 0.0;
}

/* ---- Results: one series of per-round values per (workload, allocator, metric) ----------- */

struct series {
	char workload[32], alloc[24], metric[24], unit[12];
	bool no_ratio; /* counts and sizes are not compared with the free list */
	unsigned n;
	double v[MAX_ROUNDS];
};

static struct series results[128];
static unsigned nresults;

static void record(const char *workload, const char *alloc, const char *metric, const char *unit,
		   bool no_ratio, double value)
{
	struct series *s = NULL;
	for (unsigned i = 0; i < nresults && !s; i++)
		if (!strcmp(results[i].workload, workload) && !strcmp(results[i].alloc, alloc) &&
		    !strcmp(results[i].metric, metric))
			s = &results[i];
	if (!s) {
		if (nresults == sizeof(results) / sizeof(results[0])) {
			fprintf(stderr, "bench: too many series\n");
			exit(2);
		}
		s = &results[nresults++];
		snprintf(s->workload, sizeof(s->workload), "%s", workload);
		snprintf(s->alloc, sizeof(s->alloc), "%s", alloc);
		snprintf(s->metric, sizeof(s->metric), "%s", metric);
		snprintf(s->unit, sizeof(s->unit), "%s", unit);
		s->no_ratio = no_ratio;
	}
	if (s->n < MAX_ROUNDS)
		s->v[s->n++] = value;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void summarize(const struct series *s, double *med, double *min, double *max)
{
	double v[MAX_ROUNDS];
	memcpy(v, s->v, s->n * sizeof(v[0]));
	qsort(v, s->n, sizeof(v[0]), cmp_double);
	*min = v[0];
	*max = v[s->n - 1];
	*med = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

static const struct series *reference_for(const struct series *s)
{
	if (s->no_ratio)
		return NULL;
	for (unsigned i = 0; i < nresults; i++)
		if (!strcmp(results[i].workload, s->workload) && !strcmp(results[i].alloc, FLT_NAME) &&
		    !strcmp(results[i].metric, s->metric))
			return &results[i];
	return NULL;
}

static void fmt_num(char *buf, size_t len, double v)
{
	if (v == 0 || v >= 100000)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else
		snprintf(buf, len, "%.2f", v);
}

static void print_table(void)
{
	printf("\n%-24s %-17s %-19s %-28s %s\n", "workload", "allocator", "metric",
	       "median (min-max)", "vs " FLT_NAME);
	printf("%.*s\n", 110, "----------------------------------------------------------------------"
			      "----------------------------------------------------------------------");
	const char *last = "";
	for (unsigned i = 0; i < nresults; i++) {
		const struct series *s = &results[i];
		double med, min, max;
		summarize(s, &med, &min, &max);
		char a[32], b[32], c[32], val[128], ratio[32] = "";
		fmt_num(a, sizeof(a), med);
		fmt_num(b, sizeof(b), min);
		fmt_num(c, sizeof(c), max);
		if (min == max)
			snprintf(val, sizeof(val), "%s %s", a, s->unit);
		else
			snprintf(val, sizeof(val), "%s (%s\u2013%s) %s", a, b, c, s->unit);
		const struct series *ref = reference_for(s);
		if (ref) {
			double rm, rmin, rmax;
			summarize(ref, &rm, &rmin, &rmax);
			if (rm > 0)
				snprintf(ratio, sizeof(ratio), "%.2fx", med / rm);
		}
		if (strcmp(last, s->workload) && i)
			putchar('\n');
		/* The en dash is 3 bytes and 1 column: pad by hand. */
		int pad = 28 + (strstr(val, "\u2013") ? 2 : 0);
		printf("%-24s %-17s %-19s %-*s %s\n", strcmp(last, s->workload) ? s->workload : "",
		       s->alloc, s->metric, pad, val, ratio);
		last = s->workload;
	}
}

static void write_csv(const char *build)
{
	if (!opt.csv)
		return;
	FILE *f = fopen(opt.csv, "w");
	if (!f) {
		fprintf(stderr, "bench: %s: %s\n", opt.csv, strerror(errno));
		problems++;
		return;
	}
	fprintf(f, "build,workload,allocator,metric,unit,median,min,max,rounds,ratio_vs_freelist_tas\n");
	for (unsigned i = 0; i < nresults; i++) {
		const struct series *s = &results[i];
		double med, min, max;
		summarize(s, &med, &min, &max);
		fprintf(f, "%s,%s,%s,%s,%s,%.4f,%.4f,%.4f,%u,", build, s->workload, s->alloc, s->metric,
			s->unit, med, min, max, s->n);
		const struct series *ref = reference_for(s);
		if (ref) {
			double rm, rmin, rmax;
			summarize(ref, &rm, &rmin, &rmax);
			fprintf(f, "%.4f", rm > 0 ? med / rm : 0.0);
		}
		fputc('\n', f);
	}
	fclose(f);
	printf("\nCSV: %s\n", opt.csv);
}

/* ---- The arenas and the allocators under test ------------------------------------------- */

/*
 * Three instances of mm/, each over its own 1 GiB (the holders one 64 MiB) of one host
 * arena: mm with the shipped defaults (per-CPU caches and pool slices on), mm_nc with
 * the per-CPU layer off (every call takes the one lock: the "single-lock build"), mm_h
 * with holder records.  The free lists get a separate 1 GiB.
 */
static struct lmm mm, mm_nc, mm_h;
static struct bench_freelist fl;
static void *fl_base;
static struct bench_checked_list cl; /* over fl_base's addresses; it never touches a page */

static const struct bench_alloc A_FL = { FL_NAME, bench_freelist_alloc, bench_freelist_free, &fl };
static const struct bench_alloc A_FLT = { FLT_NAME, bench_freelist_alloc_tas, bench_freelist_free_tas, &fl };
static const struct bench_alloc A_FLL = { FLL_NAME, bench_freelist_alloc_irqsave,
					  bench_freelist_free_irqsave, &fl };
static const struct bench_alloc A_FLC = { FLC_NAME, bench_checked_alloc, bench_checked_free, &cl };
static const struct bench_alloc A_LMM = { LMM_NAME, bench_lmm_alloc, bench_lmm_free, &mm };
static const struct bench_alloc A_LMM_NC = { LMM_NC_NAME, bench_lmm_alloc, bench_lmm_free, &mm_nc };
static const struct bench_alloc A_LMM_H = { LMM_H_NAME, bench_lmm_alloc, bench_lmm_free, &mm_h };
static const struct bench_alloc A_LMM_ATOMIC = { LMM_ATOMIC_NAME, bench_lmm_atomic_alloc,
						 bench_lmm_atomic_free, NULL };

static struct lmm_stats stats_of(struct lmm *m)
{
	struct lmm_stats s;
	lmm_get_stats(m, &s);
	return s;
}

static struct lmm_stats stats(void)
{
	return stats_of(&mm);
}

/* The state after init: every workload returns to it. */
static struct lmm_stats idle, idle_nc;

/* Pages a KERNEL caller can take from @m when nothing is held: never the reserve. */
static uint64_t kernel_pages(const struct lmm_stats *s)
{
	return s->available - s->pool;
}

/* The calling thread's CPU index, as the port tells mm/. */
static unsigned this_cpu(void)
{
	lmm_irq_cpu_t ic = lmm_port_irq_save_cpu();
	lmm_port_irq_restore(ic.flags);
	return (unsigned)ic.cpu;
}

/* After each mm/ run: no refusal, invariants hold, nothing leaked, every page back in
 * the lists, the pool or a cache (available: freed order-0 pages wait in caches). */
static void check_instance(struct lmm *m, const struct lmm_stats *at_idle, const char *what,
			   uint64_t allocated)
{
	lmm_cpu_drain(m, this_cpu()); /* lmm_check() wants the caches it reads quiet */
	struct lmm_stats s = stats_of(m);
	if (s.refused_total)
		problem("%s: mm/ refused %" PRIu64 " calls (last log: %s)", what, s.refused_total,
			host_log_last());
	if (s.allocated != allocated)
		problem("%s: %" PRIu64 " pages allocated, expected %" PRIu64, what, s.allocated, allocated);
	if (at_idle && allocated == 0 && s.available != at_idle->available)
		problem("%s: %" PRIu64 " pages available after freeing all, %" PRIu64 " at init", what,
			s.available, at_idle->available);
	uint64_t bad = lmm_check(m);
	if (bad)
		problem("%s: lmm_check found %" PRIu64 " violations", what, bad);
}

static void check_mm(const char *what, uint64_t allocated)
{
	check_instance(&mm, &idle, what, allocated);
}

/* Every page freed: all of them available again (the free lists, the pool, a cache). */
static void check_all_back(struct lmm *m, const struct lmm_stats *at_idle, const char *what)
{
	struct lmm_stats s = stats_of(m);
	if (s.available != at_idle->available || s.allocated != 0)
		problem("%s: %" PRIu64 " available (free %" PRIu64 " pool %" PRIu64 " cached %" PRIu64
			"), %" PRIu64 " allocated after freeing all; %" PRIu64 " available at init",
			what, s.available, s.free, s.pool, s.cached, s.allocated, at_idle->available);
}

static void init_instance(struct lmm *m, const struct lmm_config *cfg, uint64_t base, uint64_t bytes)
{
	lmm_begin(m, cfg);
	if (lmm_add_range(m, base, bytes) != LMM_OK || lmm_init(m) != LMM_OK) {
		fprintf(stderr, "bench: lmm_init failed: %s\n", host_log_last());
		exit(2);
	}
}

static void setup_arenas(void)
{
	uint64_t total = 2 * ARENA_BYTES + HOLDERS_BYTES;
	host_arena_map(total);
	host_arena_touch(0, total);
	init_instance(&mm, NULL, 0, ARENA_BYTES); /* the shipped defaults: automatic pool, caches */
	init_instance(&mm_nc,
		      &(struct lmm_config){ .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO,
					    .cache_high = LMM_CPU_OFF, .pool_slice = LMM_CPU_OFF },
		      ARENA_BYTES, ARENA_BYTES);
	init_instance(&mm_h,
		      &(struct lmm_config){ .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO,
					    .flags = LMM_CFG_HOLDERS },
		      2 * ARENA_BYTES, HOLDERS_BYTES);
	lmm_set_default(&mm);
	idle = stats();
	idle_nc = stats_of(&mm_nc);
	struct lmm_stats sh = stats_of(&mm_h);
	printf("holder records (LMM_CFG_HOLDERS): %zu bytes per frame (struct lmm_holder); "
	       "metadata %.2f bytes per frame with them, %u without\n",
	       sizeof(struct lmm_holder), (double)sh.metadata_bytes / (double)sh.managed,
	       (unsigned)sizeof(struct lmm_frame));

	fl_base = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (fl_base == MAP_FAILED) {
		perror("bench: mmap");
		exit(2);
	}
	for (uint64_t off = 0; off < ARENA_BYTES; off += LMM_PAGE_SIZE)
		((volatile char *)fl_base)[off] = 0;
	lmm_port_lock_init(&fl.lock, "bench freelist");
	bench_freelist_build(&fl, fl_base, ARENA_PAGES);
	struct bench_checked_page *records = malloc(ARENA_PAGES * sizeof(*records));
	if (!records) {
		perror("bench: malloc");
		exit(2);
	}
	bench_checked_build(&cl, fl_base, ARENA_PAGES, records);
}

static bool is_freelist(const struct bench_alloc *a)
{
	return a->ctx == &fl;
}

/* ---- W1, W5: alloc+free pairs --------------------------------------------------------------- */

static void run_pairs(const char *workload, const struct bench_alloc *const *allocs, unsigned n)
{
	for (unsigned r = 0; r < opt.rounds; r++)
		for (unsigned j = 0; j < n; j++) {
			const struct bench_alloc *a = allocs[(j + r) % n];
			struct lmm_stats before = stats();
			uint64_t failed = bench_pairs(a, meter_for(workload, a->name), opt.pairs);
			if (failed)
				problem("%s/%s: %" PRIu64 " allocations failed", workload, a->name, failed);
			record(workload, a->name, "alloc+free pair", "ns", false, ns_per_op("pair"));
			if (a == &A_LMM_ATOMIC) {
				/* Pool-served means: every allocation a pool hit, and the reserve and
				 * what is available exactly as before (each free returned its page
				 * to the reserve: this CPU's slice). */
				struct lmm_stats after = stats();
				if (after.pool_hits - before.pool_hits != opt.pairs ||
				    after.available != before.available || after.pool != before.pool)
					problem("%s: not pool-served (pool hits %" PRIu64 " of %" PRIu64
						", available %" PRIu64 "->%" PRIu64 ", pool %" PRIu64 "->%" PRIu64 ")",
						workload, after.pool_hits - before.pool_hits, opt.pairs,
						before.available, after.available, before.pool, after.pool);
			}
		}
}

static void w1_warm(void)
{
	/* The pinned page keeps its buddy from merging: without a cache (mm_nc), each pair
	 * takes and returns that buddy on the order-0 list, with no split and no merge; with
	 * one, each pair pops and pushes this CPU's cache. */
	void *pin = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *pin_nc = lmm_alloc_pages(&mm_nc, 0, LMM_GFP_KERNEL);
	void *pin_h = lmm_alloc_pages(&mm_h, 0, LMM_GFP_KERNEL);
	const struct bench_alloc *allocs[] = { &A_FL, &A_FLT, &A_FLL, &A_FLC, &A_LMM, &A_LMM_NC, &A_LMM_H };
	run_pairs("W1 warm order-0", allocs, 7);
	if (cl.refused)
		problem("W1 warm: the checked list refused %" PRIu64 " frees", cl.refused);
	lmm_free_pages(&mm, pin, 0);
	lmm_free_pages(&mm_nc, pin_nc, 0);
	lmm_free_pages(&mm_h, pin_h, 0);
	check_mm("W1 warm", 0);
	check_instance(&mm_nc, &idle_nc, "W1 warm, no cache", 0);
	check_instance(&mm_h, NULL, "W1 warm, holders", 0);
}

/*
 * W1 warm with interrupts already off, as in a kernel that allocates under its own
 * irqsave lock.  A debug build then asks the port's context hook whether the KERNEL
 * call comes from a handler, out of line (mm/alloc.c: alloc_asking_context()); with
 * interrupts on, LMM_PORT_IRQFLAGS_* spare the common kalloc() that question.
 */
static void w1_irqs_off(void)
{
	const struct bench_alloc *allocs[] = { &A_FLT, &A_LMM };
	lmm_irqflags_t fl = lmm_port_irq_save();
	run_pairs("W1 warm irqs-off", allocs, 2);
	lmm_port_irq_restore(fl);
	check_mm("W1 warm irqs-off", 0);
}

struct held {
	void **blk;
	uint8_t *ord;
	uint64_t n;
};

/*
 * Everything in @m allocated but one order-LMM_MAX_ORDER block: without a cache each
 * order-0 allocation splits it all the way down and each free merges it all the way
 * back up; with one, the first allocation refills the cache by one batch (one split)
 * and the pairs after it are served by the cache.
 */
static struct held cold_setup(struct lmm *m, const struct lmm_stats *at_idle, const char *what)
{
	uint64_t cap = kernel_pages(at_idle) + 1;
	struct held h = { malloc(cap * sizeof(void *)), malloc(cap), 0 };
	for (int o = LMM_MAX_ORDER; o >= 0; o--) {
		void *p;
		while (h.n < cap && (p = lmm_alloc_pages(m, (unsigned)o, LMM_GFP_KERNEL))) {
			h.blk[h.n] = p;
			h.ord[h.n++] = (uint8_t)o;
		}
	}
	lmm_free_pages(m, h.blk[0], h.ord[0]);
	lmm_cpu_drain(m, this_cpu());
	struct lmm_stats s = stats_of(m);
	if (h.ord[0] != LMM_MAX_ORDER || s.free != 1u << LMM_MAX_ORDER ||
	    s.free_blocks[LMM_MAX_ORDER] != 1)
		problem("%s: set-up left %" PRIu64 " free pages, not one order-%d block", what, s.free,
			LMM_MAX_ORDER);
	return h;
}

static void cold_release(struct lmm *m, struct held *h)
{
	for (uint64_t i = 1; i < h->n; i++)
		lmm_free_pages(m, h->blk[i], h->ord[i]);
	free(h->blk);
	free(h->ord);
}

static void w1_cold(void)
{
	struct held h = cold_setup(&mm, &idle, "W1 cold");
	struct held h_nc = cold_setup(&mm_nc, &idle_nc, "W1 cold, no cache");

	const struct bench_alloc *allocs[] = { &A_FL, &A_FLT, &A_FLL, &A_LMM, &A_LMM_NC };
	run_pairs("W1 cold order-0", allocs, 5);

	cold_release(&mm, &h);
	cold_release(&mm_nc, &h_nc);
	check_mm("W1 cold", 0);
	check_instance(&mm_nc, &idle_nc, "W1 cold, no cache", 0);
}

static void w5(void)
{
	const struct bench_alloc *allocs[] = { &A_FL, &A_FLT, &A_FLL, &A_LMM_ATOMIC };
	run_pairs("W5 atomic pool pair", allocs, 4);
	check_mm("W5", 0);
}

/* ---- W2: exhaust, then free in random order ------------------------------------------------ */

static void w2(void)
{
	const char *wl = "W2 exhaust+rand free";
	uint64_t cap = ARENA_PAGES + 1;
	void **slots = malloc(cap * sizeof(*slots));
	const struct bench_alloc *allocs[] = { &A_FL, &A_FLT, &A_FLL, &A_LMM, &A_LMM_NC };
	const unsigned n = sizeof(allocs) / sizeof(allocs[0]);
	for (unsigned r = 0; r < opt.rounds; r++)
		for (unsigned j = 0; j < n; j++) {
			const struct bench_alloc *a = allocs[(j + r) % n];
			struct lmm *m = a->ctx == &mm_nc ? &mm_nc : &mm;
			const struct lmm_stats *at_idle = m == &mm_nc ? &idle_nc : &idle;
			if (is_freelist(a)) /* every run starts from a list in address order */
				bench_freelist_build(&fl, fl_base, ARENA_PAGES);
			uint64_t expect = is_freelist(a) ? ARENA_PAGES : kernel_pages(at_idle);
			uint64_t got = bench_exhaust(a, meter_for(wl, a->name), slots, cap, 0x5eed0002u + r);
			if (got != expect)
				problem("W2/%s: %" PRIu64 " pages before exhaustion, expected %" PRIu64,
					a->name, got, expect);
			record(wl, a->name, "alloc", "ns/op", false, ns_per_op("alloc"));
			record(wl, a->name, "free (random)", "ns/op", false, ns_per_op("free"));
			record(wl, a->name, "time to exhaust", "ms", false,
			       (double)region_of("alloc")->ns / 1e6);
			record(wl, a->name, "pages", "", true, (double)got);
			if (!is_freelist(a))
				check_all_back(m, at_idle, "W2");
		}
	bench_freelist_build(&fl, fl_base, ARENA_PAGES);
	free(slots);
	check_mm("W2", 0);
	check_instance(&mm_nc, &idle_nc, "W2, no cache", 0);
}

/* ---- W3: random orders at fixed occupancy -------------------------------------------------- */

static void w3(void)
{
	static const struct {
		const char *name;
		unsigned pct;
		bool geometric;
	} cfgs[] = {
		{ "W3 50% geometric", 50, true },
		{ "W3 50% uniform", 50, false },
		{ "W3 90% geometric", 90, true },
		{ "W3 90% uniform", 90, false },
	};
	const unsigned ncfg = sizeof(cfgs) / sizeof(cfgs[0]);
	uint64_t cap = kernel_pages(&idle);
	void **blocks = malloc(cap * sizeof(*blocks));
	uint8_t *orders = malloc(cap);

	for (unsigned r = 0; r < opt.rounds; r++)
		for (unsigned j = 0; j < ncfg; j++) {
			unsigned c = (j + r) % ncfg;
			struct bench_w3_config cfg = {
				.avail_pages = kernel_pages(&idle),
				.occupancy_pct = cfgs[c].pct,
				.geometric = cfgs[c].geometric,
				.max_order = 9,
				.ops = opt.w3_ops,
				.seed = 0x5eed0300u + c, /* the same draws every round */
			};
			struct bench_w3_result res;
			bench_w3(&A_LMM, meter_for(cfgs[c].name, LMM_NAME), &cfg, blocks, orders, cap, &res);
			record(cfgs[c].name, LMM_NAME, "op (alloc or free)", "ns", true, ns_per_op("op"));
			record(cfgs[c].name, LMM_NAME, "frag failures", "", true, (double)res.frag_failures);
			record(cfgs[c].name, LMM_NAME, "frag failures/fill", "", true,
			       (double)res.fill_failures);
			record(cfgs[c].name, LMM_NAME, "allocs attempted", "", true, (double)res.allocs);
			record(cfgs[c].name, LMM_NAME, "occupancy at end", "%", true,
			       100.0 * (double)res.live_pages / (double)kernel_pages(&idle));
			if (opt.ir)
				printf("%s: %" PRIu64 " fragmentation failures in %" PRIu64 " allocations"
				       " (%" PRIu64 " during the fill), %" PRIu64 " frees, %.1f%% occupied at the end\n",
				       cfgs[c].name, res.frag_failures, res.allocs, res.fill_failures, res.frees,
				       100.0 * (double)res.live_pages / (double)kernel_pages(&idle));
			if (res.other_failures)
				problem("%s: %" PRIu64 " allocations failed for lack of free pages",
					cfgs[c].name, res.other_failures);
			check_all_back(&mm, &idle, cfgs[c].name);
		}
	free(blocks);
	free(orders);
	check_mm("W3", 0);
}

/* ---- W4: initialisation, metadata, resident memory -------------------------------------- */

/*
 * The two layouts: 1 GiB of RAM at 0, and 16 GiB split 8 GiB at 0 and 8 GiB at 24 GiB in a
 * 32 GiB MAP_NORESERVE reservation, so the hole costs nothing unless mm/ touches it.
 */
struct w4_layout {
	const char *name;
	uint64_t reservation;
	unsigned nranges;
	struct {
		uint64_t base, len;
	} ranges[2];
	bool touch; /* 1 GiB: touched first, so the time is init's own; sparse: never touched */
};

static const struct w4_layout W4_1G = { "1g", 1 * GiB, 1, { { 0, 1 * GiB } }, true };
static const struct w4_layout W4_16G = { "16g", 32 * GiB, 2, { { 0, 8 * GiB }, { 24 * GiB, 8 * GiB } }, false };

static struct lmm w4mm;

static void w4_init(const struct w4_layout *l)
{
	lmm_begin(&w4mm, NULL);
	for (unsigned i = 0; i < l->nranges; i++)
		lmm_add_range(&w4mm, l->ranges[i].base, l->ranges[i].len);
	if (lmm_init(&w4mm) != LMM_OK) {
		fprintf(stderr, "bench: W4 %s: lmm_init failed: %s\n", l->name, host_log_last());
		exit(2);
	}
}

/* KiB from a "Name:   123 kB" line of /proc/self/status. */
static long proc_status_kib(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(name);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/*
 * Child mode (a fresh exec, so its peak resident memory is its own): map, init twice
 * (the first pays the page faults of the metadata, the second is init alone), report.
 */
static int w4_child(const char *which)
{
	const struct w4_layout *l = !strcmp(which, "1g") ? &W4_1G : !strcmp(which, "16g") ? &W4_16G : NULL;
	if (!l) {
		fprintf(stderr, "bench: unknown W4 layout '%s'\n", which);
		return 2;
	}
	host_arena_map(l->reservation);
	if (l->touch)
		host_arena_touch(0, l->reservation);
	long rss0 = proc_status_kib("VmRSS");
	uint64_t t0 = now_ns();
	w4_init(l);
	uint64_t t1 = now_ns();
	long hwm = proc_status_kib("VmHWM");
	w4_init(l);
	uint64_t t2 = now_ns();
	struct lmm_stats s;
	lmm_get_stats(&w4mm, &s);
	printf("w4 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %ld %ld\n", s.managed,
	       s.metadata_bytes, t1 - t0, t2 - t1, rss0, hwm);
	return 0;
}

static bool w4_spawn(const char *which, uint64_t *frames, uint64_t *meta, uint64_t *ns_first,
		     uint64_t *ns_again, long *rss0, long *hwm)
{
	int fd[2];
	if (pipe(fd)) {
		perror("bench: pipe");
		return false;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execl("/proc/self/exe", "bench", "--w4-child", which, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char buf[256] = "";
	FILE *f = fdopen(fd[0], "r");
	bool ok = f && fgets(buf, sizeof(buf), f);
	if (f)
		fclose(f);
	int status = 0;
	waitpid(pid, &status, 0);
	ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	     sscanf(buf, "w4 %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %ld %ld", frames, meta,
		    ns_first, ns_again, rss0, hwm) == 6;
	if (!ok)
		problem("W4 %s: child failed (status 0x%x, output '%s')", which, status, buf);
	return ok;
}

static void w4(void)
{
	for (unsigned r = 0; r < opt.rounds; r++)
		for (unsigned j = 0; j < 2; j++) {
			const struct w4_layout *l = (j + r) % 2 ? &W4_16G : &W4_1G;
			const char *wl = l == &W4_1G ? "W4 init 1 GiB" : "W4 init 16 GiB sparse";
			uint64_t frames, meta, first, again;
			long rss0, hwm;
			if (!w4_spawn(l->name, &frames, &meta, &first, &again, &rss0, &hwm))
				continue;
			record(wl, LMM_NAME, "frames", "", true, (double)frames);
			record(wl, LMM_NAME, "metadata", "B/frame", true, (double)meta / (double)frames);
			if (l->touch) {
				record(wl, LMM_NAME, "init", "ms", true, (double)again / 1e6);
				record(wl, LMM_NAME, "init per frame", "ns", true, (double)again / (double)frames);
			} else {
				record(wl, LMM_NAME, "init, first touch", "ms", true, (double)first / 1e6);
				record(wl, LMM_NAME, "init, resident", "ms", true, (double)again / 1e6);
				record(wl, LMM_NAME, "init/frame resident", "ns", true,
				       (double)again / (double)frames);
				record(wl, LMM_NAME, "metadata size", "MiB", true, (double)meta / MiB);
				record(wl, LMM_NAME, "peak RSS", "MiB", true, (double)hwm / 1024);
				record(wl, LMM_NAME, "RSS growth by init", "MiB", true,
				       (double)(hwm - rss0) / 1024);
			}
		}
}

#if BENCH_CALLGRIND
/* Under callgrind: in-process, no resident-memory figures (valgrind's own would show). */
static void w4_ir(void)
{
	const struct w4_layout *ls[] = { &W4_1G, &W4_16G };
	for (unsigned i = 0; i < 2; i++) {
		const struct w4_layout *l = ls[i];
		host_arena_map(l->reservation);
		w4_init(l); /* fault the metadata in first */
		uint64_t frames = w4mm.nframes;
		struct bench_meter *m = meter_for(l == &W4_1G ? "W4 init 1 GiB" : "W4 init 16 GiB sparse",
						  LMM_NAME);
		m->begin(m);
		w4_init(l);
		m->end(m, "init per frame", frames);
		struct lmm_stats s;
		lmm_get_stats(&w4mm, &s);
		printf("W4 %s: %" PRIu64 " frames, %.2f bytes of metadata per frame\n", l->name, s.managed,
		       (double)s.metadata_bytes / (double)s.managed);
		host_arena_unmap();
	}
}
#endif

/* ---- 2 threads: order-0 pairs on two CPUs (timed only) -------------------------------- */

#if !BENCH_PORT_MINIMAL
/*
 * Each worker is a CPU to the host port (it claims a slot when mm/ first asks) and does
 * its pairs order-0 pairs on the shared instance, or, for the baseline, on a locked free
 * list of its own that no other worker touches.  Throughput is pairs per
 * second of wall time from the moment every worker is released to the moment the last
 * one ends.
 */
struct mt_arg {
	struct lmm *m;              /* the shared instance, or NULL: */
	struct bench_freelist *own; /* this worker's private locked list */
	pthread_barrier_t *go;
	uint64_t pairs;
	uint64_t failed;
	uint64_t cpu_ns; /* the worker's own CPU time in its loop */
};

/* Two private lists on cache lines of their own, and the pages they hand out. */
static struct {
	_Alignas(128) struct bench_freelist fl;
} mt_own[2];
static _Alignas(4096) unsigned char mt_own_pages[2][4][4096];

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *mt_worker(void *p)
{
	struct mt_arg *a = p;
	if (a->m) {
		void *warm = lmm_alloc_pages(a->m, 0, LMM_GFP_KERNEL); /* claim a CPU slot, fill its cache */
		lmm_free_pages(a->m, warm, 0);
	}
	pthread_barrier_wait(a->go);
	uint64_t c0 = thread_cpu_ns();
	for (uint64_t i = 0; a->m && i < a->pairs; i++) {
		void *pg = bench_lmm_alloc(a->m, 0);
		if (unlikely_null(pg)) {
			a->failed++;
			continue;
		}
		bench_lmm_free(a->m, pg, 0);
	}
	for (uint64_t i = 0; !a->m && i < a->pairs; i++) {
		void *pg = bench_freelist_alloc_tas(a->own, 0);
		if (unlikely_null(pg)) {
			a->failed++;
			continue;
		}
		bench_freelist_free_tas(a->own, pg, 0);
	}
	a->cpu_ns = thread_cpu_ns() - c0;
	return NULL;
}

/*
 * Pairs per second of wall time with @nthreads workers doing @pairs each on @m (NULL:
 * each on its own private list); *@per_cpu_s: pairs per second of each worker's own CPU
 * time (mean), which a busy machine does not dilute.
 */
static double mt_run(struct lmm *m, unsigned nthreads, uint64_t pairs, double *per_cpu_s)
{
	pthread_t t[2];
	struct mt_arg args[2];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, nthreads + 1);
	for (unsigned i = 0; i < nthreads; i++) {
		args[i] = (struct mt_arg){ m, &mt_own[i].fl, &go, pairs, 0, 0 };
		if (pthread_create(&t[i], NULL, mt_worker, &args[i])) {
			fprintf(stderr, "bench: pthread_create failed\n");
			exit(2);
		}
	}
	pthread_barrier_wait(&go);
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	uint64_t t1 = now_ns();
	pthread_barrier_destroy(&go);
	*per_cpu_s = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		if (args[i].failed)
			problem("MT: %" PRIu64 " allocations failed", args[i].failed);
		*per_cpu_s += (double)pairs / ((double)args[i].cpu_ns / 1e9) / nthreads;
	}
	return (double)nthreads * (double)pairs / ((double)(t1 - t0) / 1e9);
}

static double median_of(double *v, unsigned n)
{
	double w[MAX_ROUNDS];
	memcpy(w, v, n * sizeof(w[0]));
	qsort(w, n, sizeof(w[0]), cmp_double);
	return n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
}

/*
 * The per-CPU layer's point: two CPUs doing order-0 pairs should not wait for each
 * other.  Rounds alternate 1 and 2 threads and the instances, so drift in the machine's
 * load hits them alike; each round's scaling is (2-thread throughput) / (1-thread
 * throughput) of that round, and the median of the rounds is printed.  The private
 * lists share nothing: their scaling is what this machine's two CPUs allow at all (two
 * vCPUs that are hyperthreads of one core, say, fall well short of 2x): printed beside
 * mm/'s figure, which is still judged against the 1.7x.
 */
static void mt(void)
{
	/*
	 * A run of 16 M pairs lasts about 0.3 s: long enough that the VM lending a vCPU
	 * elsewhere for a few ms moves a round little.  The single lock is several times
	 * slower, and slower still with two threads: a quarter as many pairs.
	 */
	struct {
		const char *name, *csv_name;
		struct lmm *m;
		const struct lmm_stats *idle;
		uint64_t pairs;
		double one[MAX_ROUNDS], two[MAX_ROUNDS], scale[MAX_ROUNDS], cpu_scale[MAX_ROUNDS];
	} in[3] = { { LMM_NAME, LMM_NAME, &mm, &idle, opt.mt_pairs, { 0 }, { 0 }, { 0 }, { 0 } },
		    { LMM_NC_NAME " (single lock)", LMM_NC_NAME, &mm_nc, &idle_nc, opt.mt_pairs / 4, { 0 }, { 0 },
		      { 0 }, { 0 } },
		    { MT_OWN_NAME " (a freelist+tas each, nothing shared)", MT_OWN_NAME, NULL, NULL, opt.mt_pairs,
		      { 0 }, { 0 }, { 0 }, { 0 } } };
	unsigned rounds = opt.mt_rounds;
	for (unsigned w = 0; w < 2; w++)
		bench_freelist_build(&mt_own[w].fl, mt_own_pages[w], 4);
	printf("MT: 2 threads doing order-0 pairs vs 1 thread, %" PRIu64 " pairs per thread (the single lock %" PRIu64
	       "), %u rounds (wall-clock time on a shared machine: noisy)\n", opt.mt_pairs, opt.mt_pairs / 4, rounds);
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned k = 0; k < 3; k++) {
			unsigned i = (k + r) % 3;
			double c1, c2;
			in[i].one[r] = mt_run(in[i].m, 1, in[i].pairs, &c1);
			in[i].two[r] = mt_run(in[i].m, 2, in[i].pairs, &c2);
			in[i].scale[r] = in[i].two[r] / in[i].one[r];
			in[i].cpu_scale[r] = 2 * c2 / c1;
			printf("MT %s round %u: 1 thread %.2f Mpairs/s, 2 threads %.2f Mpairs/s, scaling %.2fx"
			       " (per CPU-second: %.2f vs %.2f Mpairs, %.2fx)\n", in[i].name, r + 1, in[i].one[r] / 1e6,
			       in[i].two[r] / 1e6, in[i].scale[r], c1 / 1e6, c2 / 1e6, in[i].cpu_scale[r]);
			record("MT order-0 pairs", in[i].csv_name, "1 thread", "Mpairs/s", true, in[i].one[r] / 1e6);
			record("MT order-0 pairs", in[i].csv_name, "2 threads", "Mpairs/s", true, in[i].two[r] / 1e6);
			record("MT order-0 pairs", in[i].csv_name, "scaling 2/1", "x", true, in[i].scale[r]);
		}
	for (unsigned i = 0; i < 3; i++) {
		/* Workers have exited: their caches hold pages nobody is using; return them. */
		for (unsigned cpu = 0; in[i].m && cpu < LMM_PORT_MAX_CPUS; cpu++)
			lmm_cpu_drain(in[i].m, cpu);
		if (in[i].m) {
			check_all_back(in[i].m, in[i].idle, "MT");
			check_instance(in[i].m, in[i].idle, "MT", 0);
		}
		printf("MT %s: median scaling %.2fx (1 thread %.2f Mpairs/s, 2 threads %.2f Mpairs/s, medians of %u rounds)\n",
		       in[i].name, median_of(in[i].scale, rounds), median_of(in[i].one, rounds) / 1e6,
		       median_of(in[i].two, rounds) / 1e6, rounds);
		printf("MT %s: median CPU-time ratio %.2fx (2 x pairs per CPU-second of a worker among 2 /"
		       " of a lone worker; a diagnostic, not the target)\n",
		       in[i].name, median_of(in[i].cpu_scale, rounds));
	}
}
#endif

/* ---- Main ------------------------------------------------------------------------------------ */

static void print_machine(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096], model[256] = "unknown CPU";
	unsigned cpus = 0, family = 0, number = 0, stepping = 0;
	double mhz = 0;
	bool hypervisor = false;
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "processor", 9))
			cpus++;
		char *c = strchr(line, ':');
		if (!c || cpus != 1)
			continue;
		if (!strncmp(line, "model name", 10)) {
			snprintf(model, sizeof(model), "%s", c + 2);
			model[strcspn(model, "\n")] = '\0';
		} else if (!strncmp(line, "cpu family", 10)) {
			family = (unsigned)strtoul(c + 1, NULL, 10);
		} else if (!strncmp(line, "model\t", 6)) {
			number = (unsigned)strtoul(c + 1, NULL, 10);
		} else if (!strncmp(line, "stepping", 8)) {
			stepping = (unsigned)strtoul(c + 1, NULL, 10);
		} else if (!strncmp(line, "cpu MHz", 7)) {
			mhz = strtod(c + 1, NULL);
		} else if (!strncmp(line, "flags", 5)) {
			hypervisor = strstr(c, " hypervisor") != NULL;
		}
	}
	if (f)
		fclose(f);
	printf("machine: %s (family %u model %u stepping %u, %.0f MHz), %u logical CPUs%s\n", model,
	       family, number, stepping, mhz, cpus, hypervisor ? ", virtualised" : "");
	/* Other work on the machine moves timings, never instruction counts: say how busy it was. */
	double load = -1;
	f = fopen("/proc/loadavg", "r");
	if (f && fscanf(f, "%lf", &load) == 1)
		printf("load average (1 min) at start: %.2f%s\n", load,
		       load > 1.0 ? ": other work was running, timings are noisier than usual" : "");
	if (f)
		fclose(f);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench [--rounds N] [--pairs N] [--w3-ops N] [--csv FILE] [--no-mt]"
		" [--mt-only] [--mt-pairs N]%s\n", BENCH_CALLGRIND ? " [--ir]" : "");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--w4-child") && i + 1 < argc)
			return w4_child(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			opt.rounds = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
			opt.pairs = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--w3-ops") && i + 1 < argc)
			opt.w3_ops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc)
			opt.csv = argv[++i];
		else if (!strcmp(argv[i], "--ir") && BENCH_CALLGRIND)
			opt.ir = true;
		else if (!strcmp(argv[i], "--no-mt"))
			opt.mt = false;
		else if (!strcmp(argv[i], "--mt-only") && !BENCH_PORT_MINIMAL)
			opt.mt_only = true;
		else if (!strcmp(argv[i], "--mt-pairs") && i + 1 < argc)
			opt.mt_pairs = strtoull(argv[++i], NULL, 0);
		else
			usage();
	}
	if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.mt_rounds > MAX_ROUNDS)
		usage();
	if (opt.ir) {
		opt.mt = false; /* a timed figure: callgrind serialises threads */
		opt.rounds = 1; /* instruction counts do not vary from round to round */
		opt.pairs = 100000;
		opt.w3_ops = 100000;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	char build[64];
	snprintf(build, sizeof(build), "LMM_DEBUG=%d/%s-port/MAX_CPUS=%d", LMM_DEBUG, PORT_NAME,
		 LMM_PORT_MAX_CPUS);
	printf("mm/ benchmark: %s build, -O2, %s port, LMM_PORT_MAX_CPUS=%d; %u rounds per figure,"
	       " allocators interleaved\n", build, PORT_NAME, LMM_PORT_MAX_CPUS, opt.rounds);
	print_machine();
	printf("W1/W5: %" PRIu64 " pairs, W3: %" PRIu64 " ops per configuration, arena 1 GiB (touched)\n",
	       opt.pairs, opt.w3_ops);

#if !BENCH_PORT_MINIMAL
	if (opt.mt_only) {
		setup_arenas();
		mt();
		if (problems)
			fprintf(stderr, "bench: %u problems (see above): figures are suspect\n", problems);
		return problems ? 1 : 0;
	}
#endif
#if BENCH_CALLGRIND
	if (opt.ir)
		w4_ir();
	else
#endif
		w4(); /* first, in children, while this process is still small */
	setup_arenas();
	printf("mm/: %" PRIu64 " frames, %" PRIu64 " free for KERNEL allocations, pool %" PRIu64
	       " pages\n", idle.managed, idle.free, idle.pool);
	w1_warm();
	w1_irqs_off();
	w1_cold();
	w2();
	w3();
	w5();
#if !BENCH_PORT_MINIMAL
	if (opt.mt)
		mt();
#endif

	if (!opt.ir) {
		print_table();
		write_csv(build);
	}
	if (problems)
		fprintf(stderr, "bench: %u problems (see above): figures are suspect\n", problems);
	return problems ? 1 : 0;
}

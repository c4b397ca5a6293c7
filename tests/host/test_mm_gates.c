/*
 * test_mm_gates.c - the cases the mutation and coverage gates asked for: lmm_check()
 * against one corruption per invariant it claims (each must be named in its log, not
 * just counted), lmm_dump()'s and the holders' output, and the refusals at init.
 */
#include "mm_harness.h"
#include "../../mm/internal.h" /* LMM_FRAME_F_RESERVE, lmm_format: internals under test */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

static struct lmm mm;

/* 8 MiB, first MiB reserved, a small reserve with slices, a small cache. */
static const struct lmm_config cfg = { .pool_target = 64, .pool_low = 32, .pool_slice = 2, .cache_batch = 4,
				       .cache_high = 8, .flags = LMM_CFG_QUIET };

static void setup(void)
{
	struct range use[] = { { 0, 8 * MiB } };
	struct range res[] = { { 0, 1 * MiB } };
	if (mm_setup(&mm, 8 * MiB, use, 1, res, 1, &cfg) != LMM_OK)
		abort();
}

static uint32_t idx_of(const void *p)
{
	return (uint32_t)(host_virt_to_phys(p) >> 12) - (uint32_t)mm.regions[0].base_pfn + mm.regions[0].first_index;
}

/* lmm_check must find a problem and name it (the log keeps its text). */
#define EXPECT_PROBLEM(what)                                                                          \
	do {                                                                                          \
		host_log_clear();                                                                     \
		CHECK(lmm_check(&mm) > 0 && host_log_contains(what), "lmm_check did not report '%s'", \
		      what);                                                                          \
	} while (0)
#define EXPECT_HEALTHY() CHECK(lmm_check(&mm) == 0, "healthy state reported broken: %s", host_log_last())

/* Pages in this CPU's cache and slice, one allocated page, one order-1 block. */
static void *cached_pg, *atomic_pg, *page, *pair;
static void populate(void)
{
	setup();
	cached_pg = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* refills the cache */
	atomic_pg = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC); /* moves half a slice */
	page = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	pair = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	lmm_free_pages(&mm, cached_pg, 0); /* back to the cache */
	lmm_free_pages(&mm, atomic_pg, 0); /* back to the slice */
	if (!page || !pair || !atomic_pg || mm.cpu[0].cache_count == 0 || mm.cpu[0].slice_count == 0)
		abort();
}

/* A fatal report is expected: the port longjmps back; interrupts are put back on. */
#define EXPECT_FATAL(call, why)                                                                  \
	do {                                                                                     \
		sigjmp_buf jb;                                                                   \
		if (sigsetjmp(jb, 1) == 0) {                                                     \
			host_fatal_jmp = &jb;                                                    \
			call;                                                                    \
			host_fatal_jmp = NULL;                                                   \
			CHECK(0, "no fatal report from " #call);                                  \
		} else {                                                                         \
			host_fatal_jmp = NULL;                                                   \
			host_irq_restore(0);                                                     \
			CHECK(strstr(host_fatal_reason(), why), "fatal reason '%s'", host_fatal_reason()); \
		}                                                                                \
	} while (0)

static void walk_cb_nop(const struct lmm_run *run, void *ctx)
{
	(void)run;
	(void)ctx;
}

static void check_names_counter_corruption(void)
{
	populate();
	EXPECT_HEALTHY();
	mm.reserve_frames++;
	EXPECT_PROBLEM("reserve frames: counter vs flagged frames");
	mm.reserve_frames -= 64;
	EXPECT_PROBLEM("reserve: more frames waiting than in its budget");
	mm.reserve_frames += 63;
	mm.cpu[0].allocated_adjust++;
	EXPECT_PROBLEM("allocated pages: counter vs frames");
	EXPECT_PROBLEM("conservation");
	mm.cpu[0].allocated_adjust--;
	mm.nreserved_pages++;
	EXPECT_PROBLEM("reserved pages: counter vs frames");
	mm.nreserved_pages--;
	mm.nfree++;
	EXPECT_PROBLEM("free pages: counter vs lists");
	mm.nfree--;
	mm.free_list[3].blocks++;
	EXPECT_PROBLEM("free block counter wrong for order");
	mm.free_list[3].blocks--;
	EXPECT_HEALTHY();
}

static void check_names_frame_corruption(void)
{
	populate();
	struct lmm_frame *f = &mm.frames[idx_of(page)], *b = &mm.frames[idx_of(pair)], save = *f, bsave = *b;
	f->state = LMM_FRAME_CACHED; /* a cached frame on no cache */
	EXPECT_PROBLEM("cached pages: frames vs caches");
	f->state = LMM_FRAME_POOL;
	EXPECT_PROBLEM("pool pages: frames vs lists");
	f->state = LMM_FRAME_TAIL;
	EXPECT_PROBLEM("frame belongs to no block");
	*f = save;
	f->region = 9;
	EXPECT_PROBLEM("frame records the wrong region");
	*f = save;
	f->order = 40;
	EXPECT_PROBLEM("block head with a bad order");
	*f = save;
	f->refcount = 0;
	EXPECT_PROBLEM("allocated block with no reference");
	*f = save;
	f->state = LMM_FRAME_EXCLUSIVE;
	f->owner = 0;
	EXPECT_PROBLEM("exclusive page without an owner");
	*f = save;
	b->state = LMM_FRAME_EXCLUSIVE;
	b->owner = 1;
	EXPECT_PROBLEM("single-page state on a larger block");
	*b = bsave;
	b->flags |= LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve flag on a block larger than a page");
	*b = bsave;
	mm.frames[idx_of(pair) + 1].state = LMM_FRAME_ALLOCATED;
	EXPECT_PROBLEM("block overlaps another block");
	mm.frames[idx_of(pair) + 1].state = LMM_FRAME_TAIL;
	/* hand_out() writes only what changes: a stale owner or reference would survive it. */
	f->owner = 5; /* on a shared (not exclusive) page */
	EXPECT_PROBLEM("owner or references left on a frame");
	*f = save;
	mm.frames[idx_of(pair) + 1].refcount = 1; /* on a tail */
	EXPECT_PROBLEM("owner or references left on a frame");
	mm.frames[idx_of(pair) + 1].refcount = 0;
	unsigned fo = 0;
	while (mm.free_list[fo].head == LMM_NIL)
		fo++;
	uint32_t fh = mm.free_list[fo].head;
	mm.frames[fh].flags |= LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve frame on a buddy free list");
	{ /* an item with one value prints that value alone */
		char want[128];
		snprintf(want, sizeof(want), "lmm: check: reserve frame on a buddy free list (phys): phys 0x%llx",
			 (unsigned long long)lmm_frame_phys(&mm, fh));
		char more[160];
		snprintf(more, sizeof(more), "%s, ", want);
		CHECK(host_log_contains(want) && !host_log_contains(more), "check line is not '%s' alone", want);
	}
	mm.frames[fh].flags &= (uint8_t)~LMM_FRAME_F_RESERVE;
	EXPECT_HEALTHY();
}

static void check_names_list_corruption(void)
{
	populate();
	unsigned o = 0;
	while (mm.free_list[o].head == LMM_NIL)
		o++;
	uint32_t h = mm.free_list[o].head;
	struct lmm_frame save = mm.frames[h];
	unsigned empty = 0;
	while (empty <= LMM_MAX_ORDER && mm.free_list[empty].head != LMM_NIL)
		empty++;
	if (empty <= LMM_MAX_ORDER) {
		mm.free_mask ^= 1u << empty;
		EXPECT_PROBLEM("free_mask disagrees with list of order");
		mm.free_mask ^= 1u << empty;
	}
	mm.frames[h].state = LMM_FRAME_ALLOCATED;
	mm.frames[h].refcount = 1;
	EXPECT_PROBLEM("free list holds a non-free frame");
	{ /* addresses in hex, counts in decimal */
		char want[128];
		snprintf(want, sizeof(want), "lmm: check: free list holds a non-free frame (phys, order): phys 0x%llx, %u",
			 (unsigned long long)lmm_frame_phys(&mm, h), o);
		CHECK(host_log_contains(want), "check line is not '%s'", want);
	}
	mm.frames[h] = save;
	mm.frames[h].prev = h;
	EXPECT_PROBLEM("free list back link broken");
	mm.frames[h] = save;
	mm.frames[h].next = (uint32_t)mm.nframes + 7;
	EXPECT_PROBLEM("free list runs out of the frame array");
	mm.frames[h] = save;

	/* An order-1 block seen as two unmerged order-0 buddies, then as a misaligned one. */
	void *blk = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	uint32_t i = idx_of(blk);
	struct lmm_frame a = mm.frames[i], t = mm.frames[i + 1];
	struct lmm_held held;
	lmm_buddy_add_block(&mm, 0, i);
	lmm_buddy_add_block(&mm, 0, i + 1);
	EXPECT_PROBLEM("free block not merged with its free buddy");
	struct lmm_cpu *c = lmm_lock_here(&mm, &held);
	lmm_buddy_alloc_locked(&mm, c, 0); /* LIFO: i + 1, then i */
	lmm_buddy_alloc_locked(&mm, c, 0);
	lmm_unlock_here(&mm, &held);
	mm.frames[i] = a;
	mm.frames[i + 1] = t;
	EXPECT_HEALTHY();
	mm.frames[i + 1] = a;
	lmm_buddy_add_block(&mm, 1, i + 1); /* odd pfn on the order-1 list */
	EXPECT_PROBLEM("free block misaligned");
	c = lmm_lock_here(&mm, &held);
	lmm_buddy_alloc_locked(&mm, c, 1);
	lmm_unlock_here(&mm, &held);
	mm.frames[i + 1] = t;
	EXPECT_HEALTHY();
	lmm_free_pages(&mm, blk, 1);


	/* The last page of the region as an order-1 block: past the region's end. */
	uint32_t last = mm.regions[0].first_index + (uint32_t)mm.regions[0].npages - 1;
	void *lastp = lmm_frame_virt(&mm, last);
	void *got[4096];
	unsigned n = 0;
	/* Take every page until the last one is ours. */
	while (n < 4096 && (got[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT)) != NULL && got[n++] != lastp)
		;
	if (n && got[n - 1] == lastp) {
		struct lmm_frame ls = mm.frames[last];
		lmm_buddy_add_block(&mm, 1, last - 1);
		mm.frames[last - 1].state = LMM_FRAME_FREE;
		host_log_clear();
		lmm_check(&mm);
		CHECK(host_log_contains("free block") , "a free block past the region's end not reported");
		c = lmm_lock_here(&mm, &held);
		lmm_buddy_alloc_locked(&mm, c, 1);
		lmm_unlock_here(&mm, &held);
		mm.frames[last] = ls;
	}
	for (unsigned k = 0; k < n; k++)
		lmm_free_pages(&mm, got[k], 0);
}

static void check_names_stack_corruption(void)
{
	populate();
	struct lmm_cpu *c = &mm.cpu[0];
	uint32_t ch = c->cache_head, sh = c->slice_head;
	struct lmm_frame cs = mm.frames[ch], ss = mm.frames[sh];
	mm.frames[ch].state = LMM_FRAME_POOL;
	EXPECT_PROBLEM("stack holds a frame in the wrong state");
	mm.frames[ch] = cs;
	mm.frames[sh].flags &= (uint8_t)~LMM_FRAME_F_RESERVE;
	EXPECT_PROBLEM("reserve flag wrong on a cached or pooled frame");
	mm.frames[sh] = ss;
	c->cache_count++;
	EXPECT_PROBLEM("stack count disagrees with its list");
	c->cache_count--;
	mm.frames[ch].next = (uint32_t)mm.nframes + 3;
	EXPECT_PROBLEM("cpu cache runs out of the frame array");
	mm.frames[ch] = cs;
	uint32_t high = mm.cache_high, slice = mm.cfg.pool_slice;
	mm.cache_high = 0;
	EXPECT_PROBLEM("cpu cache above its high mark");
	mm.cache_high = high;
	/* The bound is the configured size: a lowered target leaves slices above pool_slice. */
	mm.cfg.pool_slice = LMM_CPU_OFF;
	EXPECT_PROBLEM("pool slice above its size");
	mm.cfg.pool_slice = slice;
	EXPECT_HEALTHY();

	/* Many problems at once: the log keeps the first few and counts the rest. */
	uint64_t save = mm.nfree;
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		mm.free_list[o].blocks += 1;
	mm.nfree += 3;
	EXPECT_PROBLEM("more problems");
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		mm.free_list[o].blocks -= 1;
	mm.nfree = save;
	EXPECT_HEALTHY();

	struct lmm fresh;
	lmm_begin(&fresh, &cfg);
	host_log_clear();
	CHECK(lmm_check(&fresh) == 1 && host_log_contains("not initialised"), "check before init");
	CHECK(lmm_walk(&fresh, walk_cb_nop, NULL) == 0, "a walk before init found runs");
}

static void dump_logs_every_counter(void)
{
	populate();
	host_log_clear();
	host_log_verbose(false);
	lmm_free_pages(&mm, page, 3); /* one refusal for the "refused" lines */
	lmm_dump(&mm);
	CHECK(host_log_contains("free blocks by order"), "no free block line");
	CHECK(host_log_contains("reserve pages handed out"), "no reserve line");
	CHECK(host_log_contains("cpu 0: cache"), "no per-CPU line");
	CHECK(host_log_contains("refused 1 x"), "no refusal line");
}

static void check_names_subtler_corruption(void)
{
	populate();
	unsigned o = 0;
	while (mm.free_list[o].head == LMM_NIL)
		o++;
	uint32_t h = mm.free_list[o].head;
	mm.frames[h].next = h; /* a list that loops: the walk stops (after a problem per lap) */
	EXPECT_PROBLEM("more problems");
	populate();
	mm.frames[mm.free_list[o].head].order = (uint8_t)(o + 1);
	EXPECT_PROBLEM("free list holds a non-free frame");
	populate();
	mm.frames[mm.cpu[0].cache_head].next = mm.cpu[0].cache_head;
	EXPECT_PROBLEM("cpu cache runs out of the frame array");
	populate();
	mm.frames[mm.cpu[0].cache_head].order = 1;
	EXPECT_PROBLEM("stack holds a frame in the wrong state");
	populate();
	mm.frames[idx_of(page)].state = 77;
	EXPECT_PROBLEM("frame belongs to no block");
	populate();
	uint32_t i = idx_of(pair);
	mm.frames[i + 1] = mm.frames[i];
	mm.frames[i].order = 0;
	mm.frames[i + 1].order = 1; /* odd pfn, order 1 */
	EXPECT_PROBLEM("block head with a bad order");
	/* A tail after an order-0 head: a free aimed at it is no head's. */
	populate();
	i = idx_of(pair);
	mm.frames[i].order = 0;
	CHECK(lmm_free_pages(&mm, lmm_frame_virt(&mm, i + 1), 0) == LMM_ERR_NOT_HEAD, "uncovered tail");
	/* A CPU that only freed: its line in the dump. */
	populate();
	unsigned cpu = host_cpu_id();
	host_set_cpu(5);
	lmm_free_pages(&mm, page, 0);
	host_set_cpu(cpu);
	host_log_clear();
	lmm_dump(&mm);
	CHECK(host_log_contains("cpu 5: cache 1"), "cpu 5 not dumped");
	lmm_cpu_drain(&mm, 5);
	/* No such CPU: refused, and the record and its line name the index. */
	struct lmm_cpu_stats cs;
	host_reports_clear();
	CHECK(lmm_cpu_drain(&mm, LMM_PORT_MAX_CPUS) == LMM_ERR_BAD_CPU, "drain of cpu %u accepted",
	      (unsigned)LMM_PORT_MAX_CPUS);
	const struct lmm_report *bad = host_report_last();
	char line[200];
	if (bad)
		lmm_report_format(bad, line, sizeof(line));
	CHECK(bad && bad->reason == LMM_ERR_BAD_CPU && bad->cpu_named == LMM_PORT_MAX_CPUS &&
		      strstr(line, "refused cpu drain of cpu ") && strstr(line, "LMM_PORT_MAX_CPUS"),
	      "bad drain record: %s", bad ? line : "none");
	host_reports_clear();
	CHECK(lmm_get_cpu_stats(&mm, ~0u, &cs) == LMM_ERR_BAD_CPU && cs.allocs == 0 && cs.cache_pages == 0,
	      "stats of cpu ~0 accepted");
	bad = host_report_last();
	CHECK(bad && bad->reason == LMM_ERR_BAD_CPU && bad->cpu_named == ~0u && strcmp(bad->op, "cpu stats") == 0,
	      "bad stats record missing");
	CHECK(lmm_get_cpu_stats(&mm, 5, &cs) == LMM_OK, "stats of cpu 5 refused");
	EXPECT_HEALTHY();
	/* An order-10 block whose head is gone: the walk finds no head at any alignment. */
	struct range use16[] = { { 0, 16 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use16, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *big = lmm_alloc_pages(&mm, LMM_MAX_ORDER, LMM_GFP_KERNEL);
	ASSERT(big != NULL, "no order-%u block", LMM_MAX_ORDER);
	mm.frames[idx_of(big)].state = LMM_FRAME_TAIL;
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "tail frame outside any block");
}

static void check_names_region_overrun(void)
{
	setup();
	uint32_t last = mm.regions[0].first_index + (uint32_t)mm.regions[0].npages - 1;
	lmm_buddy_add_block(&mm, 1, last); /* an order-1 block on the region's last page */
	EXPECT_PROBLEM("free block runs past its region");
	struct lmm_cpu_stats cs = { .cache_pages = 7 };
	lmm_get_cpu_stats(&mm, LMM_PORT_MAX_CPUS, &cs);
	CHECK(cs.cache_pages == 0 && cs.allocs == 0, "stats of a CPU that does not exist");
}

/* Holder records: call sites tallied, largest first, contexts named; more than the
 * table's 64 sites are summed as "other". */
static void *alloc_site_a(void) { return lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL); }
static void *alloc_site_b(void) { return lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT); }
/* Only ever with interrupts off. */
static void *alloc_site_d(void)
{
	lmm_irqflags_t fl = host_irq_save();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT);
	host_irq_restore(fl);
	return p;
}
static void *handler_page;
static void handler_allocates(void) { handler_page = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC); }

static void holders_dumped(void)
{
	struct range use[] = { { 0, 8 * MiB } };
	struct lmm_config hc = cfg;
	hc.flags |= LMM_CFG_HOLDERS;
	ASSERT(mm_setup(&mm, 8 * MiB, use, 1, NULL, 0, &hc) == LMM_OK, "init failed");
	CHECK(mm.holders != NULL, "no holder table");
	void *a = alloc_site_a(), *b = alloc_site_b();
	lmm_irqflags_t fl = host_irq_save();
	void *c = alloc_site_b();
	host_irq_restore(fl);
	void *d = alloc_site_d();
	void *e = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE);
	void *several[6];
	for (unsigned i = 0; i < 6; i++)
		several[i] = alloc_site_a();
	handler_page = NULL;
	host_irq_install(SIGRTMIN + 4, handler_allocates);
	raise(SIGRTMIN + 4);
	host_irq_uninstall(SIGRTMIN + 4);
	CHECK(handler_page != NULL, "no allocation in the handler");
	host_log_clear();
	CHECK(lmm_dump_holders(&mm, 1) >= 4 && host_log_contains("top 1"), "holders: top 1");
	host_log_clear();
	unsigned n = lmm_dump_holders(&mm, 50);
	CHECK(host_log_contains(" interrupt"), "a handler's allocation not named");
	for (unsigned i = 0; i < 6; i++)
		lmm_free_pages(&mm, several[i], 2);
	lmm_free_pages(&mm, d, 0);
	lmm_free_pages(&mm, e, 0);
	lmm_free_pages(&mm, handler_page, 0);
	CHECK(n >= 2 && host_log_contains("call sites hold allocated memory"), "holders: %u sites", n);
	CHECK(host_log_contains("irqs-off"), "context of a holder not named");
	/* Seventy made-up call sites: the table keeps 64 and sums the rest. */
	void *many[70];
	for (unsigned i = 0; i < 70; i++) {
		many[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
		mm.holders[idx_of(many[i])].caller = (const void *)(uintptr_t)(0x10000 + 64 * i);
	}
	host_log_clear();
	lmm_dump_holders(&mm, 100);
	CHECK(host_log_contains("other call sites"), "overflowing sites not summed");
	for (unsigned i = 0; i < 70; i++)
		lmm_free_pages(&mm, many[i], 0);
	lmm_free_pages(&mm, a, 2);
	lmm_free_pages(&mm, b, 0);
	lmm_free_pages(&mm, c, 0);
	CHECK(lmm_check(&mm) == 0, "check with holders");

	setup();
	host_log_clear();
	CHECK(lmm_dump_holders(&mm, 5) == 0 && host_log_contains("holders: off"), "holders off");
}

/* lmm_vformat without the printf attribute: the bad conversions are the point. */
static size_t fmt_raw(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = lmm_vformat(buf, len, fmt, ap);
	va_end(ap);
	return n;
}

/* The formatter behind every log line and report: each conversion it claims. */
static void formatter_conversions(void)
{
	char buf[128];
	fmt_raw(buf, sizeof(buf), "%c|%d|%ld|%lld|%5u|%05x|%zu|%%|%s|%q", 'x', -42, 7l, -9ll, 3u, 0xabu,
		(size_t)12, (const char *)NULL);
	CHECK(strcmp(buf, "x|-42|7|-9|    3|000ab|12|%|(null)|?") == 0, "formatted '%s'", buf);
	CHECK(lmm_format(buf, 0, "abc") == 0, "zero-length buffer");
	CHECK(lmm_format(buf, 4, "abcdef") == 3 && strcmp(buf, "abc") == 0, "truncation: '%s'", buf);
	fmt_raw(buf, sizeof(buf), "trailing %");
	CHECK(strcmp(buf, "trailing ?") == 0, "trailing percent: '%s'", buf);

	static const struct {
		uint8_t state;
		const char *word;
	} states[] = { { LMM_FRAME_POOL, "frame pool" },
		       { LMM_FRAME_CACHED, "frame cached" },
		       { LMM_FRAME_RESERVED, "frame reserved" },
		       { 99, "frame corrupt" } };
	for (unsigned i = 0; i < 4; i++) {
		struct lmm_report r = { .reason = LMM_ERR_ALREADY_FREE, .op = "free", .ptr = buf, .phys = 0x5000,
					.found_state = states[i].state, .context = LMM_CTX_IRQS_OFF };
		lmm_report_format(&r, buf, sizeof(buf));
		CHECK(strstr(buf, states[i].word) && strstr(buf, "irqs-off"), "report '%s'", buf);
	}
	struct lmm_report r = { .reason = LMM_ERR_NOT_MANAGED, .op = "free", .ptr = (void *)8, .phys = LMM_PHYS_INVALID,
				.context = LMM_CTX_INTERRUPT };
	lmm_report_format(&r, buf, sizeof(buf));
	CHECK(strstr(buf, "interrupt context"), "report '%s'", buf);
	r.context = (enum lmm_context)7;
	lmm_report_format(&r, buf, sizeof(buf));
	CHECK(strstr(buf, "? context"), "report '%s'", buf);
	/* A call on no page: an allocation's line says what it asked for, any other only its name. */
	struct lmm_report a = { .reason = LMM_ERR_BAD_ORDER, .op = "alloc", .phys = LMM_PHYS_INVALID, .order = 12,
				.gfp = 0x3 };
	lmm_report_format(&a, buf, sizeof(buf));
	CHECK(strncmp(buf, "lmm: refused alloc (order 12, gfp 0x3, owner 0x0000): ", strlen("lmm: refused alloc (order 12, gfp 0x3, owner 0x0000): ")) == 0, "report '%s'", buf);
	struct lmm_report w = { .reason = LMM_ERR_BAD_CONTEXT, .op = "walk", .phys = LMM_PHYS_INVALID };
	lmm_report_format(&w, buf, sizeof(buf));
	CHECK(strncmp(buf, "lmm: refused walk: call not allowed", strlen("lmm: refused walk: call not allowed")) == 0, "report '%s'", buf);
	w.op = "allocate";
	lmm_report_format(&w, buf, sizeof(buf));
	CHECK(strncmp(buf, "lmm: refused allocate: ", strlen("lmm: refused allocate: ")) == 0, "report '%s'", buf);
	struct lmm_report u = { .reason = LMM_ERR_NOT_ALIGNED, .op = "free", .ptr = (void *)0x5010, .phys = 0x5000 };
	lmm_report_format(&u, buf, sizeof(buf));
	CHECK(strncmp(buf, "lmm: refused free of 0x5010 in page phys 0x5000 (order 0): ",
		      strlen("lmm: refused free of 0x5010 in page phys 0x5000 (order 0): ")) == 0,
	      "report '%s'", buf);
	w.op = NULL;
	lmm_report_format(&w, buf, sizeof(buf));
	CHECK(strncmp(buf, "lmm: refused (null): ", strlen("lmm: refused (null): ")) == 0, "report '%s'", buf);
}

/* 8 MiB from pfn 1: a region whose first frame is not aligned to anything. */
static void setup_from_pfn1(void)
{
	struct range use[] = { { 4096, 8 * MiB - 4096 } };
	if (mm_setup(&mm, 8 * MiB, use, 1, NULL, 0, &cfg) != LMM_OK)
		abort();
}

static void corrupt_metadata_is_fatal_or_refused(void)
{
	setup_from_pfn1();
	uint32_t first = mm.regions[0].first_index;
	uint8_t st = mm.frames[first].state;
	mm.frames[first].state = LMM_FRAME_TAIL; /* a tail with no head below it in its region */
	CHECK(lmm_free_pages(&mm, lmm_frame_virt(&mm, first), 0) == LMM_ERR_NOT_HEAD, "tail at a region's start");
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "tail frame outside any block");
	mm.frames[first].state = st;

	setup_from_pfn1();
	mm.frames[mm.regions[0].first_index].order = 12;
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "running past its region");

	setup_from_pfn1();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	mm.frames[idx_of(p)].state = 77;
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "impossible state");
	setup_from_pfn1();
	p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	mm.frames[idx_of(p)].state = LMM_FRAME_STATE_COUNT;
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "impossible state");
	setup_from_pfn1();
	p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	mm.frames[idx_of(p)].state = 77;
	EXPECT_FATAL(lmm_page_get(&mm, p), "impossible state");

	/* A tail after an order-0 head: the head does not cover it. */
	setup();
	void *q[2];
	q[0] = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	lmm_free_pages(&mm, q[0], 1);
	lmm_cpu_drain(&mm, host_cpu_id());
	q[0] = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	uint32_t i = idx_of(q[0]);
	mm.frames[i].order = 0;
	EXPECT_FATAL(lmm_walk(&mm, walk_cb_nop, NULL), "tail frame outside any block");

	/* An order-10 head gone TAIL: no head at any alignment. */
	struct range use16[] = { { 0, 16 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use16, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *big = lmm_alloc_pages(&mm, LMM_MAX_ORDER, LMM_GFP_KERNEL);
	ASSERT(big != NULL, "no order-%u block: %s", LMM_MAX_ORDER, host_log_last());
	mm.frames[idx_of(big)].state = LMM_FRAME_TAIL;
	CHECK(lmm_free_pages(&mm, big, LMM_MAX_ORDER) == LMM_ERR_NOT_HEAD, "headless block");

	/* A CPU number the port should never give. */
	setup();
	unsigned cpu = host_cpu_id();
	host_set_cpu(LMM_PORT_MAX_CPUS);
	EXPECT_FATAL(lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL), "not below LMM_PORT_MAX_CPUS");
	host_set_cpu(cpu);
}

/* The unmerged-buddy check one level below the top: a largest block seen as two free halves. */
static void check_names_unmerged_halves_of_the_largest_block(void)
{
	struct range use[] = { { 0, 16 * MiB } }; /* four blocks of the largest order */
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	const unsigned top = LMM_MAX_ORDER, half = 1u << (top - 1);
	void *big = lmm_alloc_pages(&mm, top, LMM_GFP_KERNEL);
	ASSERT(big, "fixture: no block of the largest order");
	uint32_t i = idx_of(big);
	struct lmm_frame a = mm.frames[i], t = mm.frames[i + half];
	struct lmm_held held;
	lmm_buddy_add_block(&mm, top - 1, i);
	lmm_buddy_add_block(&mm, top - 1, i + half);
	EXPECT_PROBLEM("free block not merged with its free buddy");
	struct lmm_cpu *c = lmm_lock_here(&mm, &held);
	lmm_buddy_alloc_locked(&mm, c, top - 1);
	lmm_buddy_alloc_locked(&mm, c, top - 1);
	lmm_unlock_here(&mm, &held);
	mm.frames[i] = a;
	mm.frames[i + half] = t;
	EXPECT_HEALTHY();
	lmm_free_pages(&mm, big, top);
}

static void refcount_overflow_and_no_default(void)
{
	setup();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	/* The last reference that fits is granted; only the one past it is an overflow. */
	mm.frames[idx_of(p)].refcount = UINT16_MAX - 1;
	CHECK(lmm_page_get(&mm, p) == LMM_OK && mm.frames[idx_of(p)].refcount == UINT16_MAX,
	      "reference %u refused or miscounted", (unsigned)UINT16_MAX);
	CHECK(lmm_page_get(&mm, p) == LMM_ERR_REFCOUNT && mm.frames[idx_of(p)].refcount == UINT16_MAX,
	      "refcount overflow");
	mm.frames[idx_of(p)].refcount = 1;
	/* This program sets no default before here: none reads as NULL, set or unset. */
	struct lmm *was = lmm_default();
	CHECK(was == NULL, "a default (%p) before any was set", (void *)was);
	lmm_set_default(&mm);
	CHECK(lmm_default() == &mm, "default set to %p reads %p", (void *)&mm, (void *)lmm_default());
	lmm_set_default(NULL);
	CHECK(lmm_default() == NULL, "default unset reads %p", (void *)lmm_default());
	/* The routine turns interrupts off before it looks for the allocator: they come back as they were. */
	for (int off = 0; off < 2; off++) {
		lmm_irqflags_t outer = off ? host_irq_save() : 0, before = host_irq_save();
		host_irq_restore(before);
		void *none = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		lmm_irqflags_t after = host_irq_save();
		host_irq_restore(after);
		if (off)
			host_irq_restore(outer);
		CHECK(none == NULL && after == before && before == (lmm_irqflags_t)off,
		      "routine without an allocator, interrupts %s: %p, state %lu -> %lu", off ? "off" : "on", none,
		      (unsigned long)before, (unsigned long)after);
	}
	const uint64_t reports = host_report_count();
	host_owner_zero(true); /* and a port that names no owner: still NULL, with no allocator to report to */
	void *ownerless = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	host_owner_zero(false);
	CHECK(ownerless == NULL && host_report_count() == reports, "routine without an allocator or owner: %p, %" PRIu64
	      " reports", ownerless, host_report_count() - reports);
	CHECK(labyrinth_free_page_atomic_exclusive(p) == LMM_ERR_NOT_MANAGED, "free without an allocator");
	CHECK(labyrinth_free_page_atomic_exclusive(NULL) == LMM_OK, "free NULL without an allocator");
	lmm_set_default(was);
	CHECK(lmm_pool_auto_target(100) == 12 && lmm_pool_auto_target(1000) == 16 &&
		      lmm_pool_auto_target(1ull << 30) == 4096,
	      "auto target: %u %u %u", lmm_pool_auto_target(100), lmm_pool_auto_target(1000),
	      lmm_pool_auto_target(1ull << 30));
}

/*
 * Map [base, base+a) and [base+a, base+a+b) as two windows the port does not place end
 * to end (a third mapping between them, for hosts that place mmaps bottom-up); false,
 * with a note, if they still came out adjacent.
 */
static bool map_two_windows(uint64_t base, uint64_t a, uint64_t b)
{
	host_arena_unmap();
	host_arena_map_window(base, a);
	host_arena_map_window(1ull << 40, 4096);
	host_arena_map_window(base + a, b);
	if ((uintptr_t)lmm_port_phys_to_virt(base + a) != (uintptr_t)lmm_port_phys_to_virt(base + a - 4096) + 4096)
		return true;
	fprintf(stderr, "note: this host placed the two windows end to end; case skipped\n");
	return false;
}

/* A record among the port's last ones: @reason for the range [base, base+len). */
static bool report_seen(enum lmm_status reason, uint64_t base, uint64_t len)
{
	const struct lmm_report *r = host_report_last();
	return r && r->reason == reason && r->range_base == base && r->range_len == len;
}

/* Init refusals: more regions than the table holds, a region not virtually contiguous. */
static void init_drops_what_it_cannot_hold(void)
{
	host_arena_unmap();
	host_arena_map(1 * MiB);
	struct lmm_config qc = { .flags = LMM_CFG_QUIET };
	lmm_begin(&mm, &qc);
	for (unsigned i = 0; i < LMM_MAX_REGIONS + 2; i++)
		lmm_add_range(&mm, (uint64_t)i * 2 * 4096, 4096);
	host_log_clear();
	CHECK(lmm_init(&mm) == LMM_OK, "init with too many regions");
	CHECK(mm.nregions == LMM_MAX_REGIONS && host_log_contains("more than LMM_MAX_REGIONS"), "%u regions",
	      mm.nregions);

	/* 2^32 frames after the first MiB: more than a frame index can name (never touched). */
	host_arena_unmap();
	host_arena_map(1 * MiB);
	lmm_begin(&mm, &qc);
	lmm_add_range(&mm, 0, 1 * MiB);
	lmm_add_range(&mm, 1ull << 44, 1ull << 44);
	host_log_clear();
	CHECK(lmm_init(&mm) == LMM_OK && mm.nregions == 1 && host_log_contains("more than 2^32-1 frames"),
	      "a range of 2^32 frames: %s", host_log_last());

	/* One range across two mappings: dropped, and with it all the memory there was. */
	if (map_two_windows(0, 4 * MiB, 4 * MiB)) {
		lmm_begin(&mm, &qc);
		lmm_add_range(&mm, 0, 8 * MiB);
		host_log_clear();
		host_reports_clear();
		CHECK(lmm_init(&mm) == LMM_ERR_NO_MEMORY && host_log_contains("not virtually contiguous") &&
			      mm.refused[LMM_ERR_NOT_CONTIGUOUS] == 1,
		      "a range across two mappings: %s", host_log_last());
		CHECK(mm_manages_nothing(&mm, 4096), "memory of a failed init still looks managed");
	}
	host_arena_unmap();
}

/*
 * RAM in separate windows, added one range per window (mm/README.md, section 12): two
 * touching ranges that the port maps apart stay two regions, every page of both is
 * handed out at its own address, and a range that itself spans two windows is the only
 * one dropped.
 */
static void ranges_in_separate_windows_stay_regions(void)
{
	struct lmm_config qc = { .flags = LMM_CFG_QUIET };
	if (!map_two_windows(0, 4 * MiB, 4 * MiB))
		return;
	lmm_begin(&mm, &qc);
	ASSERT(lmm_add_range(&mm, 0, 4 * MiB) == LMM_OK && lmm_add_range(&mm, 4 * MiB, 4 * MiB) == LMM_OK,
	       "ranges refused");
	ASSERT(lmm_init(&mm) == LMM_OK, "two windows added piecewise: %s", host_log_last());
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == 2 && s.managed == 8 * MiB / 4096, "%u regions, %" PRIu64 " frames", s.regions, s.managed);
	/* Every page handed out lies where the port maps its frame, in one window or the other. */
	uint64_t pages = 0, bad = 0;
	void *p;
	while ((p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL) {
		uint64_t pa = lmm_virt_to_phys(&mm, p);
		if (pa == LMM_PHYS_INVALID || lmm_port_phys_to_virt(pa) != p || host_virt_to_phys(p) != pa)
			bad++;
		memset(p, 0xa5, 4096);
		pages++;
	}
	CHECK(bad == 0 && pages == s.available - s.pool, "%" PRIu64 " of %" PRIu64 " pages at the wrong address",
	      bad, pages);
	CHECK(lmm_check(&mm) == 0, "check failed");

	/* A good window and a range across two more: only the latter is lost. */
	host_arena_unmap();
	host_arena_map_window(0, 4 * MiB);
	host_arena_map_window(8 * MiB, 4 * MiB);
	host_arena_map_window(1ull << 40, 4096);
	host_arena_map_window(12 * MiB, 4 * MiB);
	bool apart = (uintptr_t)lmm_port_phys_to_virt(12 * MiB) != (uintptr_t)lmm_port_phys_to_virt(12 * MiB - 4096) + 4096;
	lmm_begin(&mm, &qc);
	lmm_add_range(&mm, 0, 4 * MiB);
	lmm_add_range(&mm, 8 * MiB, 8 * MiB);
	host_reports_clear();
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed: %s", host_log_last());
	s = mm_stats(&mm);
	if (apart)
		CHECK(s.regions == 1 && s.managed == 4 * MiB / 4096 && report_seen(LMM_ERR_NOT_CONTIGUOUS, 8 * MiB, 8 * MiB) &&
			      mm.refused[LMM_ERR_NOT_CONTIGUOUS] == 1,
		      "%u regions, %" PRIu64 " frames, %" PRIu64 " refused", s.regions, s.managed,
		      (uint64_t)mm.refused[LMM_ERR_NOT_CONTIGUOUS]);
	CHECK(lmm_check(&mm) == 0, "check failed");
	host_arena_unmap();
}

/* Each public entry point inlines its own copy of the common path: drive every copy
 * through every exit (NULL, unmanaged, bad order, cache or slice with room or full,
 * the core, a shared block), with poisoning and holder records on and off. */
enum free_api { F_FREE, F_OWNED, F_PUT };

static enum lmm_status free_via(enum free_api api, void *p, unsigned order, uint16_t owner)
{
	switch (api) {
	case F_FREE: return lmm_free_pages(&mm, p, order);
	case F_OWNED: return lmm_free_pages_owned(&mm, p, order, owner);
	default: return lmm_page_put(&mm, p, order);
	}
}

static void *alloc_via(bool owned, unsigned order, lmm_gfp_t gfp, uint16_t owner)
{
	return owned ? lmm_alloc_pages_owned(&mm, order, gfp, owner) : lmm_alloc_pages(&mm, order, gfp);
}

static void every_entry_point_every_path(void)
{
	for (unsigned variant = 0; variant < 4; variant++) {
		struct range use[] = { { 0, 8 * MiB } };
		struct lmm_config vc = cfg;
		vc.flags |= (variant & 1 ? LMM_CFG_POISON : 0) | (variant & 2 ? LMM_CFG_HOLDERS : 0);
		ASSERT(mm_setup(&mm, 8 * MiB, use, 1, NULL, 0, &vc) == LMM_OK, "init failed");
		uint16_t me = lmm_port_owner();
		for (unsigned owned = 0; owned < 2; owned++) {
			CHECK(!alloc_via(owned, LMM_MAX_ORDER + 1, LMM_GFP_KERNEL, me), "bad order");
			CHECK(!alloc_via(owned, 0, 1u << 12, me), "unknown flag");
			CHECK(!alloc_via(owned, 1, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE, me), "exclusive order 1");
			CHECK(!alloc_via(owned, 1, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE | (1u << 12), me), "both bad");
			CHECK(!lmm_alloc_pages_owned(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE, 0), "owner 0");
			void *z = alloc_via(owned, 1, LMM_GFP_KERNEL | LMM_GFP_ZERO, me);
			void *x = alloc_via(owned, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE | LMM_GFP_ZERO, me);
			CHECK(z && x && lmm_page_owner(&mm, x) == me, "allocations");
			lmm_free_pages(&mm, z, 1);
			lmm_free_pages_owned(&mm, x, 0, me);
		}
		for (unsigned api = F_FREE; api <= F_PUT; api++) {
			CHECK(free_via(api, NULL, 0, me) == LMM_OK, "NULL");
			CHECK(free_via(api, (char *)lmm_frame_virt(&mm, 0) + 64 * MiB, 0, me) == LMM_ERR_NOT_MANAGED,
			      "unmanaged");
			void *one = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
			CHECK(free_via(api, one, LMM_MAX_ORDER + 1, me) == LMM_ERR_BAD_ORDER, "bad order");
			CHECK(lmm_page_get(&mm, one) == LMM_OK && free_via(api, one, 0, me) == LMM_OK &&
				      free_via(api, one, 0, me) == LMM_OK,
			      "shared page");
			void *p[40];
			for (unsigned k = 0; k < 40; k++) /* more than the slice, then the reserve's own */
				p[k] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
			for (unsigned k = 0; k < 40; k++)
				CHECK(free_via(api, p[k], 0, me) == LMM_OK, "reserve page %u", k);
			for (unsigned k = 0; k < 40; k++) /* more than the cache holds */
				p[k] = lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT);
			for (unsigned k = 0; k < 40; k++)
				CHECK(free_via(api, p[k], 0, me) == LMM_OK, "cached page %u", k);
			void *e = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE);
			CHECK(free_via(api, e, 0, (uint16_t)(me + 1)) == (api == F_OWNED ? LMM_ERR_WRONG_OWNER : LMM_OK),
			      "exclusive");
			if (api == F_OWNED)
				lmm_free_pages(&mm, e, 0);
			void *b = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
			CHECK(free_via(api, b, 2, me) == LMM_OK, "order 2");
		}
		CHECK(lmm_check(&mm) == 0 && mm_stats(&mm).allocated == 0, "variant %u", variant);
	}
}

/*
 * The race fixed in a77e18d, made deterministic: a block taken from the buddy lists must
 * be marked allocated before the core lock is released.  The moment it is released,
 * "CPU 1" (host_after_unlock) frees the block's buddy; a merge then must not find the
 * block FREE.  No cache, no reserve: every call reaches the lists.
 */
static void *race_buddy;
static void free_buddy_on_cpu1(void)
{
	unsigned cpu = host_cpu_id();
	host_set_cpu(1);
	lmm_free_pages(&mm, race_buddy, 0);
	host_set_cpu(cpu);
}

static void block_handed_out_before_unlock(void)
{
	struct range use[] = { { 0, 8 * MiB } };
	struct lmm_config nc = { .pool_target = 0, .cache_high = LMM_CPU_OFF, .pool_slice = LMM_CPU_OFF,
				 .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 8 * MiB, use, 1, NULL, 0, &nc) == LMM_OK, "init failed");
	race_buddy = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* its buddy is now alone on list 0 */
	host_after_unlock = free_buddy_on_cpu1;
	void *b = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	host_after_unlock = NULL;
	ASSERT(b && (host_virt_to_phys(b) ^ host_virt_to_phys(race_buddy)) == 4096, "not the buddy");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(lmm_check(&mm) == 0 && s.allocated == 1, "the block was merged away while handed out: %s",
	      host_log_last());
	lmm_free_pages(&mm, b, 0);
	CHECK(lmm_check(&mm) == 0 && mm_stats(&mm).allocated == 0, "after the free");
}

int main(void)
{
	TEST(check_names_counter_corruption);
	TEST(check_names_frame_corruption);
	TEST(check_names_list_corruption);
	TEST(check_names_unmerged_halves_of_the_largest_block);
	TEST(check_names_stack_corruption);
	TEST(dump_logs_every_counter);
	TEST(check_names_region_overrun);
	TEST(check_names_subtler_corruption);
	TEST(holders_dumped);
	TEST(formatter_conversions);
	TEST(corrupt_metadata_is_fatal_or_refused);
	TEST(refcount_overflow_and_no_default);
	TEST(init_drops_what_it_cannot_hold);
	TEST(ranges_in_separate_windows_stay_regions);
	TEST(every_entry_point_every_path);
	TEST(block_handed_out_before_unlock);
	host_arena_unmap();
	return testlib_exit();
}

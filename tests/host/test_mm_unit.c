/*
 * test_mm_unit.c - one named case per behaviour of mm/: ingesting ranges, the buddy
 * lists, every refused free, reference counts, flags, poisoning, the canary and the
 * invariant checker itself.
 */
#include "mm_harness.h"
#include "../../mm/internal.h" /* lmm_buddy_alloc_locked: the lock assertion */

#include <signal.h>

static struct lmm mm;

/* The buddy lists alone: no per-CPU cache in front, so every call reaches them. */
static const struct lmm_config no_cache = { .cache_high = LMM_CPU_OFF, .flags = LMM_CFG_QUIET };

/* A plain 16 MiB machine with the first MiB reserved, no pool. */
static enum lmm_status setup16(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct range res[] = { { 0, 1 * MiB } };
	return mm_setup(&mm, 16 * MiB, use, 1, res, 1, NULL);
}

static uint64_t phys(const void *p)
{
	return host_virt_to_phys(p);
}

static void frame_record_is_16_bytes(void)
{
	CHECK(sizeof(struct lmm_frame) == 16, "sizeof(struct lmm_frame) = %zu", sizeof(struct lmm_frame));
	CHECK(LMM_FRAME_BYTES == sizeof(struct lmm_frame), "LMM_FRAME_BYTES out of date");
}

/* mm/internal.h builds the frame's state_order word with shifts: they must match the union. */
static void state_order_word_matches_the_frame(void)
{
	for (unsigned state = 0; state < LMM_FRAME_STATE_COUNT; state++)
		for (unsigned order = 0; order <= LMM_MAX_ORDER; order++) {
			struct lmm_frame f = { .state = (uint8_t)state, .order = (uint8_t)order };
			CHECK(lmm_state_order((uint8_t)state, order) == f.state_order,
			      "state %u order %u: word %#x, the frame holds %#x", state, order,
			      lmm_state_order((uint8_t)state, order), f.state_order);
			CHECK(lmm_state_in(f.state_order) == state, "state %u read back as %u", state,
			      lmm_state_in(f.state_order));
		}
}

/*
 * The per-CPU free compares a frame's whole word with lmm_held_word(): every field but
 * the links must count, the region too, whatever the byte order and word size.
 */
static void held_word_matches_the_frame(void)
{
	const struct lmm_frame base = { .owner = 0x1234, .refcount = 1, .state = LMM_FRAME_EXCLUSIVE,
					.flags = LMM_FRAME_F_RESERVE, .region = 7 };
	for (unsigned region = 0; region < 256; region += 51) {
		const uint64_t want = lmm_held_word(0x1234, 1, LMM_FRAME_EXCLUSIVE, LMM_FRAME_F_RESERVE, (uint8_t)region);
		struct lmm_frame f = base;
		f.region = (uint8_t)region;
		f.next = f.prev = region * 977u;
		CHECK(lmm_frame_word_of(&f) == want, "region %u: word %#llx, expected %#llx", region,
		      (unsigned long long)lmm_frame_word_of(&f), (unsigned long long)want);
		f.region = (uint8_t)(region + 1);
		CHECK(lmm_frame_word_of(&f) != want, "region %u: a frame of region %u matched", region, region + 1);
	}
	const uint64_t want = lmm_held_word(0x1234, 1, LMM_FRAME_EXCLUSIVE, LMM_FRAME_F_RESERVE, 7);
	struct lmm_frame changed[5] = { base, base, base, base, base };
	changed[0].owner = 0x1235;
	changed[1].refcount = 2;
	changed[2].state = LMM_FRAME_ALLOCATED;
	changed[3].order = 1;
	changed[4].flags = 0;
	for (unsigned k = 0; k < 5; k++)
		CHECK(lmm_frame_word_of(&changed[k]) != want, "field %u changed, the word did not", k);
}

/* lmm_use_word() builds the refcount, state and order that a hand-out stores at once. */
static void use_word_matches_the_frame(void)
{
	const uint16_t refs[] = { 0, 1, 2, 0x1234, 0xffff };
	for (unsigned r = 0; r < sizeof(refs) / sizeof(refs[0]); r++)
		for (unsigned state = 0; state < LMM_FRAME_STATE_COUNT; state++)
			for (unsigned order = 0; order <= LMM_MAX_ORDER; order++) {
				struct lmm_frame f = { .refcount = refs[r], .state = (uint8_t)state, .order = (uint8_t)order,
						       .owner = 0x5a5a, .flags = 0xff, .region = 0xee };
				CHECK(lmm_use_word(refs[r], (uint8_t)state, order) == f.use,
				      "refcount %u state %u order %u: word %#x, the frame holds %#x", refs[r], state, order,
				      lmm_use_word(refs[r], (uint8_t)state, order), f.use);
			}
}

/*
 * The per-CPU free takes a page back with one lmm_frame_set_word(): it must set every
 * field of the word and leave the links alone.
 */
static void set_word_sets_every_field(void)
{
	const uint64_t w = lmm_held_word(0x1234, 7, LMM_FRAME_CACHED, LMM_FRAME_F_RESERVE, 9);
	struct lmm_frame f = { .next = 11, .prev = 12, .owner = 0x4321, .refcount = 1, .state = LMM_FRAME_ALLOCATED,
			       .order = 0, .flags = LMM_FRAME_F_RESERVE, .region = 9 };
	lmm_frame_set_word(&f, w);
	CHECK(f.owner == 0x1234 && f.refcount == 7 && f.state == LMM_FRAME_CACHED && f.order == 0 &&
		      f.flags == LMM_FRAME_F_RESERVE && f.region == 9,
	      "owner %#x refcount %u state %u order %u flags %#x region %u", f.owner, f.refcount, f.state, f.order,
	      f.flags, f.region);
	CHECK(f.next == 11 && f.prev == 12, "links changed: %u %u", f.next, f.prev);
}

/*
 * A free of NULL does nothing and counts nothing, from every free.  The common free does
 * not test for it: NULL must never be placed in region 0, which lmm_init() sees to even
 * where region 0 starts at virtual address 0 (a kernel that maps it there).
 */
static void free_of_null_is_no_free(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	lmm_set_default(&mm);
	const struct lmm_stats s0 = mm_stats(&mm);
	CHECK(lmm_free_pages(&mm, NULL, 0) == LMM_OK, "lmm_free_pages(NULL) refused");
	CHECK(lmm_free_pages(&mm, NULL, 3) == LMM_OK, "lmm_free_pages(NULL, 3) refused");
	CHECK(lmm_free_pages_owned(&mm, NULL, 0, 5) == LMM_OK, "lmm_free_pages_owned(NULL) refused");
	CHECK(lmm_page_put(&mm, NULL, 0) == LMM_OK, "lmm_page_put(NULL) refused");
	CHECK(labyrinth_free_page_atomic_exclusive(NULL) == LMM_OK, "the exclusive free of NULL refused");
	const struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.free_calls == s0.free_calls && s1.refused_total == s0.refused_total && s1.available == s0.available,
	      "free calls %" PRIu64 " -> %" PRIu64 ", refused %" PRIu64 " -> %" PRIu64, s0.free_calls, s1.free_calls,
	      s0.refused_total, s1.refused_total);
	lmm_set_default(NULL);

	CHECK(lmm_fast_free_pages(&mm) == mm.regions[0].npages, "fast free pages %llu of %llu", (unsigned long long)lmm_fast_free_pages(&mm),
	      (unsigned long long)mm.regions[0].npages);
	struct lmm at_zero = mm; /* the same allocator, as if region 0 were mapped at virtual 0 */
	at_zero.regions[0].vbase = 0;
	CHECK(lmm_fast_free_pages(&at_zero) == 0, "region 0 at virtual 0: the fast path places %llu pages, NULL among them",
	      (unsigned long long)lmm_fast_free_pages(&at_zero));
	CHECK(lmm_check(&mm) == 0, "not healthy");
}

/* A cache_batch above cache_high is cut to it: a refill never overfills the cache. */
static void cache_batch_cut_to_high(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	const struct lmm_config cfg = { .cache_high = 4, .cache_batch = 16, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* one refill */
	struct lmm_stats s = mm_stats(&mm);
	CHECK(p && s.cache_batch == 4 && s.cache_high == 4, "batch %u high %u", s.cache_batch, s.cache_high);
	CHECK(s.cached <= 4, "%" PRIu64 " pages cached with cache_high 4", s.cached);
	lmm_free_pages(&mm, p, 0);
	CHECK(mm_stats(&mm).cached <= 4 && lmm_check(&mm) == 0 && mm_conserved(&mm), "not healthy");
}

/* Adjacent usable ranges are one region (blocks may span the place where they meet). */
static void adjacent_ranges_merged(void)
{
	struct range use[] = { { 0, 5 * MiB }, { 5 * MiB, 11 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 2, NULL, 0, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == 1 && s.managed == 16 * MiB / 4096, "%u regions, %" PRIu64 " pages from two adjacent ranges",
	      s.regions, s.managed);
}

/*
 * What a refused free's record says of the caller: the order it passed (refused under the
 * lock) and, when it named no owner, the port's owner tag (refused before any lock).
 */
static void refused_free_records_the_caller(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	char *p = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	ASSERT(p, "alloc failed");
	host_reports_clear();
	CHECK(lmm_free_pages(&mm, p, 2) == LMM_ERR_WRONG_ORDER, "order-1 block freed as order 2");
	const struct lmm_report *r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_WRONG_ORDER && r->order == 2 && r->found_order == 1,
	      "record: reason %d order %u found order %u", r ? (int)r->reason : -1, r ? r->order : 0,
	      r ? r->found_order : 0);

	const uint16_t was = lmm_port_owner();
	host_set_owner(7);
	host_reports_clear();
	CHECK(lmm_free_pages(&mm, p + 1, 0) == LMM_ERR_NOT_ALIGNED, "unaligned free accepted");
	r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_NOT_ALIGNED && r->caller_owner == 7, "record: reason %d caller_owner %u",
	      r ? (int)r->reason : -1, r ? r->caller_owner : 0);
	/* The exclusive routine's free asks for its owner only once the page is found: a bad
	 * address still names it. */
	lmm_set_default(&mm);
	host_reports_clear();
	CHECK(labyrinth_free_page_atomic_exclusive(p + 1) == LMM_ERR_NOT_ALIGNED, "unaligned exclusive free accepted");
	r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_NOT_ALIGNED && r->caller_owner == 7,
	      "exclusive free's record: reason %d caller_owner %u", r ? (int)r->reason : -1, r ? r->caller_owner : 0);
	lmm_set_default(NULL);
	host_set_owner(was);
	lmm_free_pages(&mm, p, 1);
}

/* Holder records number a CPU's allocations in order, from its cache and from the core alike. */
static void holder_records_count_up(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	const struct lmm_config cfg = { .flags = LMM_CFG_QUIET | LMM_CFG_HOLDERS };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *p[4] = { lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL), lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL),
		       lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL), lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL) };
	uint32_t seq[4];
	for (int k = 0; k < 4; k++) {
		uint32_t idx;
		ASSERT(p[k] && lmm_locate_page(&mm, p[k], &idx) == LMM_OK, "alloc %d failed", k);
		seq[k] = mm.holders[idx].seq;
	}
	CHECK(seq[0] < seq[1] && seq[1] < seq[2] && seq[2] < seq[3], "sequence numbers %u %u %u %u", seq[0], seq[1],
	      seq[2], seq[3]);
	lmm_free_pages(&mm, p[0], 0);
	lmm_free_pages(&mm, p[1], 0);
	lmm_free_pages(&mm, p[2], 2);
	lmm_free_pages(&mm, p[3], 0);
}

/*
 * The porting guide (mm/README.md, section 8) gives sizeof(struct lmm) as a
 * formula in LMM_PORT_MAX_CPUS for the ABIs the cross suite runs; change both together.
 */
static void struct_lmm_size_as_documented(void)
{
#if defined(__x86_64__) || defined(__aarch64__) || (defined(__riscv) && __riscv_xlen == 64)
	const size_t documented = 6912 + 128 * (size_t)LMM_PORT_MAX_CPUS;
#elif defined(__i386__)
	const size_t documented = 5888 + 64 * (size_t)LMM_PORT_MAX_CPUS;
#else
	const size_t documented = sizeof(struct lmm); /* an ABI the guide does not cover */
#endif
	CHECK(sizeof(struct lmm) == documented, "sizeof(struct lmm) = %zu with %u CPUs, mm/README.md says %zu",
	      sizeof(struct lmm), (unsigned)LMM_PORT_MAX_CPUS, documented);
}

/* The last refusal is @reason for the range @base +@len of @op, counted @count times so far. */
static bool range_refused(enum lmm_status reason, const char *op, uint64_t base, uint64_t len, uint64_t count)
{
	const struct lmm_report *r = host_report_last();
	char line[200] = "", want[96];
	if (r)
		lmm_report_format(r, line, sizeof(line));
	snprintf(want, sizeof(want), "refused %s [0x%llx +0x%llx]: ", op, (unsigned long long)base,
		 (unsigned long long)len);
	bool ok = r && r->reason == reason && strcmp(r->op, op) == 0 && r->range_base == base && r->range_len == len &&
		  strstr(line, want) && strstr(line, lmm_status_str(reason)) && mm.refused[reason] == count;
	if (!ok)
		fprintf(stderr, "want a record '%s%s' (%llu counted); got '%s' (%llu counted)\n", want,
			lmm_status_str(reason), (unsigned long long)count, line, (unsigned long long)mm.refused[reason]);
	return ok;
}

static void zero_length_range_refused(void)
{
	host_arena_map(16 * MiB);
	lmm_begin(&mm, NULL);
	CHECK(lmm_add_range(&mm, 0x100000, 0) == LMM_ERR_EMPTY_RANGE, "zero length accepted");
	CHECK(range_refused(LMM_ERR_EMPTY_RANGE, "usable range", 0x100000, 0, 1), "zero length: no record");
	CHECK(lmm_reserve_range(&mm, 0x100000, 0) == LMM_ERR_EMPTY_RANGE, "zero reservation accepted");
	CHECK(range_refused(LMM_ERR_EMPTY_RANGE, "reserved range", 0x100000, 0, 2), "zero reservation: no record");
	host_arena_unmap();
}

static void absurd_ranges_refused_or_trimmed(void)
{
	host_arena_map(16 * MiB);
	lmm_begin(&mm, NULL);
	CHECK(lmm_add_range(&mm, LMM_PHYS_LIMIT, 4096) == LMM_ERR_ABSURD_RANGE, "past 2^52 accepted");
	CHECK(range_refused(LMM_ERR_ABSURD_RANGE, "usable range", LMM_PHYS_LIMIT, 4096, 1), "past 2^52: no record");
	CHECK(lmm_add_range(&mm, UINT64_MAX - 4095, 8192) == LMM_ERR_ABSURD_RANGE, "wrapping range accepted");
	CHECK(range_refused(LMM_ERR_ABSURD_RANGE, "usable range", UINT64_MAX - 4095, 8192, 2), "wrap: no record");
	CHECK(lmm_add_range(&mm, LMM_PHYS_LIMIT - 8192, 1ull << 40) == LMM_OK, "straddling range refused");
	CHECK(host_log_contains("52-bit"), "trim not logged: %s", host_log_last()); /* LMM_PORT_PHYS_BITS */
	CHECK(mm.ranges[0].end == LMM_PHYS_LIMIT, "straddling range not trimmed at the limit");
	host_arena_unmap();
}

static void unaligned_range_trimmed_to_whole_pages(void)
{
	struct range use[] = { { 0x1800, 16 * MiB - 0x2000 } }; /* [0x1800, 0xFFF800) */
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	/* whole pages inside: [0x2000, 0xFFF000) */
	CHECK(s.managed == (0xFFF000 - 0x2000) / 4096, "managed %" PRIu64, s.managed);
	CHECK(host_log_contains("trimmed to whole pages"), "trim not logged");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

static void sub_page_range_refused(void)
{
	host_arena_map(16 * MiB);
	lmm_begin(&mm, NULL);
	CHECK(lmm_add_range(&mm, 0x1001, 0xffe) == LMM_ERR_EMPTY_RANGE, "sub-page range accepted");
	CHECK(lmm_add_range(&mm, 0x1800, 0x1000) == LMM_ERR_EMPTY_RANGE, "page-straddling range accepted");
	CHECK(range_refused(LMM_ERR_EMPTY_RANGE, "usable range", 0x1800, 0x1000, 2), "sub-page: no record");
	host_arena_unmap();
}

static void overlapping_out_of_order_ranges_merged(void)
{
	struct range use[] = { { 8 * MiB, 8 * MiB }, { 0, 6 * MiB }, { 4 * MiB, 6 * MiB }, { 2 * MiB, 1 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 4, NULL, 0, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.managed == 16 * MiB / 4096, "pages counted twice or lost: managed %" PRIu64, s.managed);
	CHECK(s.regions == 1, "adjacent/overlapping ranges not merged: %u regions", s.regions);
	CHECK(host_log_contains("overlaps"), "overlap not logged");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* The estimate before init is what init carves, however the ranges overlap. */
static void metadata_estimate_counts_overlaps_once(void)
{
	host_arena_map(16 * MiB);
	lmm_begin(&mm, &(struct lmm_config){ .flags = LMM_CFG_QUIET });
	ASSERT(lmm_add_range(&mm, 4 * MiB, 8 * MiB) == LMM_OK && lmm_add_range(&mm, 0, 16 * MiB) == LMM_OK &&
		       lmm_add_range(&mm, 0, 16 * MiB) == LMM_OK && lmm_add_range(&mm, 12 * MiB, 2 * MiB) == LMM_OK,
	       "ranges refused");
	uint64_t est = lmm_metadata_bytes(&mm);
	CHECK(est == 16 * MiB / 4096 * 16, "estimate %" PRIu64 " bytes for 16 MiB given as four overlapping ranges", est);
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed");
	CHECK(mm_stats(&mm).metadata_bytes == est, "init carved %" PRIu64 " bytes, estimated %" PRIu64,
	      mm_stats(&mm).metadata_bytes, est);
	host_arena_unmap();
}

static void too_many_ranges_refused(void)
{
	host_arena_map(64 * MiB);
	lmm_begin(&mm, NULL);
	enum lmm_status st = LMM_OK;
	for (unsigned i = 0; i <= LMM_MAX_RANGES && st == LMM_OK; i++)
		st = lmm_add_range(&mm, (uint64_t)i * 2 * 4096, 4096);
	CHECK(st == LMM_ERR_TOO_MANY_RANGES, "range table overflow not refused (%s)", lmm_status_str(st));
	CHECK(range_refused(LMM_ERR_TOO_MANY_RANGES, "usable range", (uint64_t)LMM_MAX_RANGES * 2 * 4096, 4096, 1),
	      "table overflow: no record");
	host_arena_unmap();
}

/* A full table is merged before anything is refused: touching ranges take one slot. */
static void full_range_table_merged_before_refusing(void)
{
	host_arena_map(64 * MiB);
	lmm_begin(&mm, &(struct lmm_config){ .flags = LMM_CFG_QUIET });
	for (unsigned i = 0; i < LMM_MAX_RANGES + 8; i++)
		ASSERT(lmm_add_range(&mm, (uint64_t)i * 4096, 4096) == LMM_OK, "touching range %u refused", i);
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == 1 && s.managed == LMM_MAX_RANGES + 8, "%u regions, %" PRIu64 " frames", s.regions,
	      s.managed);
	host_arena_unmap();
}

/*
 * More reservations than LMM_MAX_RESERVED: none is refused and no reserved page is ever
 * handed out (the kernel's, given last, included); the table joins its closest entries,
 * and what that costs is the gaps it joined, no more.
 */
static void reservations_past_the_table_joined_not_dropped(void)
{
	/* The kernel low, the single pages above it, far away: only joins among those are cheap. */
	enum { N = LMM_MAX_RESERVED + 6, KERNEL = 1 * MiB, KERNEL_LEN = 64 * 1024, SINGLES = 8 * MiB };
	host_arena_map(16 * MiB);
	lmm_begin(&mm, &(struct lmm_config){ .flags = LMM_CFG_QUIET });
	ASSERT(lmm_add_range(&mm, 0, 16 * MiB) == LMM_OK, "RAM refused");
	host_log_clear();
	/* Single pages a page apart: every one is its own entry. */
	for (unsigned i = 0; i < N; i++)
		CHECK(lmm_reserve_range(&mm, SINGLES + (2ull * i + 1) * 4096, 4096) == LMM_OK, "reservation %u refused", i);
	CHECK(lmm_reserve_range(&mm, KERNEL, KERNEL_LEN) == LMM_OK, "the kernel's reservation refused");
	CHECK(host_log_contains("more than LMM_MAX_RESERVED"), "no log of the joins: %s", host_log_last());
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	/* N + 1 entries for LMM_MAX_RESERVED slots: one page-sized gap joined per entry too many. */
	uint64_t joined = N + 1 - LMM_MAX_RESERVED;
	CHECK(s.reserved == N + KERNEL_LEN / 4096 + joined + s.metadata_bytes / 4096,
	      "reserved %" PRIu64 ", want %" PRIu64 " + metadata", s.reserved, N + KERNEL_LEN / 4096 + joined);
	uint64_t n = 0, bad = 0;
	void *p;
	while (n <= s.free && (p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL))) {
		uint64_t a = phys(p);
		if ((a >= SINGLES && a < SINGLES + 2ull * N * 4096 && (a / 4096) % 2 == 1) ||
		    (a >= KERNEL && a < KERNEL + KERNEL_LEN))
			bad++;
		n++;
	}
	CHECK(bad == 0 && n == s.free, "%" PRIu64 " reserved pages handed out (%" PRIu64 " of %" PRIu64 " free)",
	      bad, n, s.free);
	CHECK(lmm_check(&mm) == 0, "check failed");
	host_arena_unmap();
}

/* Ranges past LMM_MAX_REGIONS regions are memory lost: each is refused and counted. */
static void ranges_past_the_region_table_counted(void)
{
	host_arena_map(64 * MiB);
	lmm_begin(&mm, &(struct lmm_config){ .flags = LMM_CFG_QUIET });
	/* Two pages each, a page apart: ranges that never merge. */
	const unsigned n = LMM_MAX_REGIONS + 5;
	for (unsigned i = 0; i < n; i++)
		ASSERT(lmm_add_range(&mm, (uint64_t)i * 3 * 4096, 2 * 4096) == LMM_OK, "range %u refused", i);
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == LMM_MAX_REGIONS && s.managed == (uint64_t)LMM_MAX_REGIONS * 2, "regions %u, managed %" PRIu64,
	      s.regions, s.managed);
	const uint64_t last = (uint64_t)(n - 1) * 3 * 4096;
	CHECK(range_refused(LMM_ERR_TOO_MANY_RANGES, "usable range", last, 2 * 4096, 5), "dropped ranges: no record");
	host_arena_unmap();
}

static void ranges_after_init_refused(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	CHECK(lmm_add_range(&mm, 0, 4096) == LMM_ERR_STATE, "add_range after init accepted");
	CHECK(range_refused(LMM_ERR_STATE, "usable range", 0, 4096, 1), "add_range after init: no record");
	CHECK(lmm_reserve_range(&mm, 0, 4096) == LMM_ERR_STATE, "reserve_range after init accepted");
	CHECK(range_refused(LMM_ERR_STATE, "reserved range", 0, 4096, 2), "reserve_range after init: no record");
	CHECK(lmm_init(&mm) == LMM_ERR_STATE, "second init accepted");
	CHECK(host_report_last() && strcmp(host_report_last()->op, "init") == 0 && mm.refused[LMM_ERR_STATE] == 3,
	      "second init: no record");
}

/* The routine may run in the next interrupt: a default that is not initialised is refused. */
static void default_before_init_refused(void)
{
	static struct lmm other;
	ASSERT(setup16() == LMM_OK, "init failed");
	lmm_set_default(&mm);
	lmm_begin(&other, NULL);
	host_reports_clear();
	lmm_set_default(&other);
	const struct lmm_report *r = host_report_last();
	CHECK(lmm_default() == &mm, "a begun, uninitialised allocator became the default");
	CHECK(host_report_count() == 1 && r->reason == LMM_ERR_STATE && strcmp(r->op, "set default") == 0 &&
		      r->caller != NULL,
	      "the refusal was not reported as a STATE record of \"set default\"");
	CHECK(other.refused[LMM_ERR_STATE] == 1, "the refusal was not counted");
	lmm_set_default(NULL);
	CHECK(lmm_default() == NULL, "NULL did not unset the default");
}

static void no_usable_memory(void)
{
	host_arena_map(1 * MiB);
	lmm_begin(&mm, NULL);
	CHECK(lmm_init(&mm) == LMM_ERR_NO_MEMORY, "init without memory succeeded");
	host_arena_unmap();
}

static void metadata_needs_room(void)
{
	/* Every page reserved: nowhere to put the metadata. */
	struct range use[] = { { 0, 1 * MiB } };
	struct range res[] = { { 0, 1 * MiB } };
	CHECK(mm_setup(&mm, 1 * MiB, use, 1, res, 1, NULL) == LMM_ERR_NO_MEMORY, "init succeeded");
	CHECK(mm_manages_nothing(&mm, 0x5000), "memory of a failed init still looks managed");
}

static void reservations_widen_and_are_never_handed_out(void)
{
	struct range use[] = { { 0, 4 * MiB } };
	struct range res[] = { { 0x1800, 0x1000 }, { 2 * MiB + 0xfff, 2 }, { 64 * MiB, 4096 } };
	ASSERT(mm_setup(&mm, 4 * MiB, use, 1, res, 3, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	uint64_t meta = s.metadata_bytes / 4096;
	/* 0x1000, 0x2000, 0x200000, 0x201000 (each partly covered); the one outside RAM costs nothing. */
	CHECK(s.reserved == 4 + meta, "reserved %" PRIu64 " (metadata %" PRIu64 ")", s.reserved, meta);
	uint64_t n = 0;
	void *p;
	/* Bounded: an allocator that hands pages out twice must fail here, not hang. */
	while (n <= s.free && (p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL))) {
		uint64_t a = phys(p);
		CHECK(a != 0x1000 && a != 0x2000 && a != 0x200000 && a != 0x201000, "reserved page 0x%" PRIx64 " handed out", a);
		CHECK(a < mm.metadata_phys || a >= mm.metadata_phys + s.metadata_bytes,
		       "metadata page 0x%" PRIx64 " handed out", a);
		n++;
	}
	CHECK(n == s.free, "allocated %" PRIu64 " of %" PRIu64 " free pages", n, s.free);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

static void metadata_costs_16_bytes_per_frame(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	host_arena_map(16 * MiB);
	lmm_begin(&mm, NULL);
	lmm_add_range(&mm, use[0].base, use[0].len);
	uint64_t predicted = lmm_metadata_bytes(&mm);
	ASSERT(lmm_init(&mm) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.metadata_bytes == predicted, "predicted %" PRIu64 ", used %" PRIu64, predicted, s.metadata_bytes);
	CHECK(s.metadata_bytes == 16 * MiB / 4096 * 16, "metadata %" PRIu64, s.metadata_bytes);
}

static void every_order_naturally_aligned(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	struct lmm_stats before = mm_stats(&mm);
	void *blocks[LMM_MAX_ORDER + 1];
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++) {
		blocks[o] = lmm_alloc_pages(&mm, o, LMM_GFP_KERNEL);
		ASSERT(blocks[o], "order %u failed", o);
		CHECK((phys(blocks[o]) & ((4096ull << o) - 1)) == 0, "order %u block at 0x%" PRIx64, o, phys(blocks[o]));
		memset(blocks[o], (int)o, 4096ul << o);
	}
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++) {
		const unsigned char *b = blocks[o];
		for (size_t i = 0; i < (4096ul << o); i += 512)
			CHECK(b[i] == o, "order %u block overwritten (blocks overlap)", o);
	}
	CHECK(lmm_check(&mm) == 0, "check failed");
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(lmm_free_pages(&mm, blocks[o], o) == LMM_OK, "free order %u", o);
	lmm_cpu_drain(&mm, host_cpu_id()); /* the order-0 page waits in this CPU's cache */
	struct lmm_stats after = mm_stats(&mm);
	CHECK(after.free == before.free && after.allocated == 0, "pages lost");
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(after.free_blocks[o] == before.free_blocks[o], "order %u not merged back", o);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

static void split_all_the_way_and_merge_back(void)
{
	/* [0, 4M) is one free 4 MiB block; the metadata goes at the top of [4M, 8M). */
	struct range use[] = { { 0, 8 * MiB } }, res[] = { { 4 * MiB, 4 * MiB - 32 * 1024 } };
	ASSERT(mm_setup(&mm, 8 * MiB, use, 1, res, 1, &no_cache) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	ASSERT(s.free_blocks[LMM_MAX_ORDER] == 1 && s.free == 1024, "fixture: free %" PRIu64, s.free);
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(p && phys(p) == 0, "lowest page expected, got 0x%" PRIx64, p ? phys(p) : 0);
	s = mm_stats(&mm);
	for (unsigned o = 0; o < LMM_MAX_ORDER; o++)
		CHECK(s.free_blocks[o] == 1, "after split order %u has %" PRIu64 " blocks", o, s.free_blocks[o]);
	CHECK(lmm_check(&mm) == 0, "check after split");
	lmm_free_pages(&mm, p, 0);
	s = mm_stats(&mm);
	CHECK(s.free_blocks[LMM_MAX_ORDER] == 1 && s.free_blocks[0] == 0, "not merged back");
	CHECK(lmm_check(&mm) == 0, "check after merge");
}

static void exact_order_taken_before_splitting(void)
{
	struct range use[] = { { 0, 16 * MiB } }, res[] = { { 0, 1 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, res, 1, &no_cache) == LMM_OK, "init failed");
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *b = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* a's buddy */
	ASSERT(a && b, "alloc failed");
	void *pin = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	lmm_free_pages(&mm, a, 0); /* a stays order 0: its buddy b is allocated */
	struct lmm_stats before = mm_stats(&mm);
	ASSERT(before.free_blocks[0] >= 1, "fixture: no free order-0 block");
	void *c = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	struct lmm_stats after = mm_stats(&mm);
	CHECK(after.free_blocks[0] == before.free_blocks[0] - 1, "order-0 block not used");
	for (unsigned o = 1; o <= LMM_MAX_ORDER; o++)
		CHECK(after.free_blocks[o] == before.free_blocks[o], "order %u split needlessly", o);
	lmm_free_pages(&mm, c, 0);
	lmm_free_pages(&mm, b, 0);
	lmm_free_pages(&mm, pin, 1);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

static void invalid_order_and_flags_refused(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	CHECK(!lmm_alloc_pages(&mm, LMM_MAX_ORDER + 1, LMM_GFP_KERNEL), "order MAX+1 allocated");
	CHECK(!lmm_alloc_pages(&mm, 200, LMM_GFP_KERNEL), "order 200 allocated");
	CHECK(!lmm_alloc_pages(&mm, 0, 1u << 20), "unknown gfp bit accepted");
	CHECK(!lmm_alloc_pages(&mm, 2, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE), "exclusive order 2 accepted");
	CHECK(!lmm_alloc_pages_owned(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, 0), "owner 0 accepted");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.refused[LMM_ERR_BAD_ORDER] == 2, "bad orders counted %" PRIu64, s.refused[LMM_ERR_BAD_ORDER]);
	CHECK(s.refused[LMM_ERR_BAD_FLAGS] == 2, "bad flags counted %" PRIu64, s.refused[LMM_ERR_BAD_FLAGS]);
	CHECK(s.refused[LMM_ERR_BAD_OWNER] == 1, "bad owner counted %" PRIu64, s.refused[LMM_ERR_BAD_OWNER]);
	CHECK(host_log_contains("order above LMM_MAX_ORDER"), "bad order not logged");
	CHECK(s.allocated == 0 && lmm_check(&mm) == 0, "state changed");
}

/*
 * A refused free must leave everything as it was: same counters (except the refusal
 * count), a healthy check, and a log line with the physical address.
 */
static void expect_refused_free(void *ptr, unsigned order, enum lmm_status want, const char *what)
{
	struct lmm_stats before = mm_stats(&mm);
	host_log_clear();
	enum lmm_status st = lmm_free_pages(&mm, ptr, order);
	struct lmm_stats after = mm_stats(&mm);
	CHECK(st == want, "%s: got '%s', want '%s'", what, lmm_status_str(st), lmm_status_str(want));
	CHECK(after.refused[want] == before.refused[want] + 1, "%s: not counted", what);
	CHECK(after.free == before.free && after.allocated == before.allocated && after.pool == before.pool,
	       "%s: counters changed", what);
	CHECK(host_log_count() >= 1 && strstr(host_log_last(), lmm_status_str(want)), "%s: log '%s'", what,
	       host_log_last());
	/* The record names the caller's pointer and its page, aligned or not. */
	const struct lmm_report *r = host_report_last();
	uint64_t a = lmm_virt_to_phys(&mm, ptr);
	uint64_t page = a == LMM_PHYS_INVALID ? LMM_PHYS_INVALID : a & ~4095ull;
	CHECK(r && r->reason == want && r->ptr == ptr && r->phys == page,
	      "%s: record %s ptr %p phys 0x%" PRIx64 ", want %p 0x%" PRIx64, what,
	      r ? lmm_status_str(r->reason) : "(none)", r ? r->ptr : NULL, r ? r->phys : 0, ptr, page);
	if (a != LMM_PHYS_INVALID && (a & 4095) == 0) {
		char hex[32];
		snprintf(hex, sizeof(hex), "0x%" PRIx64, a);
		CHECK(strstr(host_log_last(), hex), "%s: address %s missing from '%s'", what, hex, host_log_last());
	}
	CHECK(lmm_check(&mm) == 0, "%s: check failed", what);
}

static void every_bad_free_refused(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	char *blk = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
	ASSERT(blk, "alloc failed");
	memset(blk, 0x77, 4 * 4096);
	/* A stack address that is never page aligned (an int is, once in a thousand runs). */
	char on_stack[2];
	char *stack_ptr = ((uintptr_t)on_stack & 4095) ? on_stack : on_stack + 1;

	CHECK(lmm_free_pages(&mm, NULL, 0) == LMM_OK, "free(NULL) not a no-op");
	expect_refused_free(blk + 8, 2, LMM_ERR_NOT_ALIGNED, "unaligned");
	expect_refused_free(stack_ptr, 0, LMM_ERR_NOT_ALIGNED, "stack address");
	expect_refused_free((char *)lmm_port_phys_to_virt(0) + 16 * MiB, 0, LMM_ERR_NOT_MANAGED, "past the end");
	expect_refused_free(blk + 4096, 0, LMM_ERR_NOT_HEAD, "tail page");
	expect_refused_free(blk, 1, LMM_ERR_WRONG_ORDER, "wrong order");
	void *excl = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
	ASSERT(excl, "exclusive alloc failed");
	expect_refused_free(excl, 1, LMM_ERR_WRONG_ORDER, "exclusive page, wrong order");
	CHECK(lmm_free_pages(&mm, excl, 0) == LMM_OK, "exclusive page: good free refused");
	expect_refused_free(blk, LMM_MAX_ORDER + 3, LMM_ERR_BAD_ORDER, "absurd order");
	expect_refused_free(lmm_port_phys_to_virt(0x10000), 0, LMM_ERR_RESERVED, "reserved page");
	expect_refused_free(lmm_port_phys_to_virt(mm.metadata_phys), 0, LMM_ERR_RESERVED, "metadata page");

	for (size_t i = 0; i < 4 * 4096; i++)
		if ((unsigned char)blk[i] != 0x77) {
			CHECK(0, "refused free modified the block at +%zu", i);
			break;
		}
	CHECK(lmm_free_pages(&mm, blk, 2) == LMM_OK, "good free refused");
	expect_refused_free(blk, 2, LMM_ERR_ALREADY_FREE, "double free");
	/* Its block merged into a larger free one: still a double free, not "not a head". */
	expect_refused_free(blk + 4096, 0, LMM_ERR_ALREADY_FREE, "free of a page merged away");
}

static void pool_page_free_refused(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .pool_target = 32, .pool_low = 8, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
	ASSERT(p, "atomic alloc failed");
	ASSERT(lmm_free_pages(&mm, p, 0) == LMM_OK, "free failed"); /* a reserve frame: back to the pool */
	CHECK(mm_stats(&mm).pool == 32, "free did not return the page to the pool");
	/* Freed again while it waits in the pool: a double free, not "never handed out". */
	expect_refused_free(p, 0, LMM_ERR_ALREADY_FREE, "pool page");
}

static void reference_counts(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL);
	ASSERT(p, "alloc failed");
	CHECK(lmm_page_get(&mm, p) == LMM_OK, "get refused");
	CHECK(lmm_page_put(&mm, p, 1) == LMM_OK, "first put refused");
	CHECK(mm_stats(&mm).allocated == 2, "freed while still referenced");
	CHECK(lmm_page_put(&mm, p, 1) == LMM_OK, "last put refused");
	CHECK(mm_stats(&mm).allocated == 0, "not freed at zero references");
	CHECK(lmm_page_get(&mm, p) == LMM_ERR_ALREADY_FREE, "get on a free page accepted");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

static void zero_flag_zeroes(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	unsigned char *p = lmm_alloc_pages(&mm, 3, LMM_GFP_KERNEL);
	ASSERT(p, "alloc failed");
	memset(p, 0xab, 8 * 4096);
	lmm_free_pages(&mm, p, 3);
	unsigned char *q = lmm_alloc_pages(&mm, 3, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	ASSERT(q == p, "fixture: expected the same block back");
	for (size_t i = 0; i < 8 * 4096; i++)
		if (q[i]) {
			CHECK(0, "byte %zu not zero", i);
			break;
		}
	lmm_free_pages(&mm, q, 3);
}

static void poison_catches_use_after_free(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .flags = LMM_CFG_QUIET | LMM_CFG_POISON };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	uint64_t *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(p, "alloc failed");
	lmm_free_pages(&mm, p, 0);
	CHECK(p[10] == 0x5a5a5a5aa5a5a5a5ull, "freed page not poisoned");
	uint64_t *q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(q == p && mm_stats(&mm).poison_errors == 0, "clean page reported");
	lmm_free_pages(&mm, q, 0);
	p[100] = 1; /* use after free */
	host_reports_clear();
	q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(mm_stats(&mm).poison_errors == 1, "use after free not caught");
	const struct lmm_report *r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_POISONED && r->phys == phys(p) + 800,
	      "report: reason %d phys 0x%" PRIx64 ", want the overwritten word 0x%" PRIx64, r ? (int)r->reason : -1,
	      r ? r->phys : 0, phys(p) + 800);
	CHECK(r && r->caller != NULL, "the poison report names no caller");
	CHECK(host_log_contains("word at phys"), "the poison report's line names a page: %s", host_log_last());
	lmm_free_pages(&mm, q, 0);
}

static void canary_catches_stray_write(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	sigjmp_buf jb;
	mm.canary_tail ^= 1;
	if (sigsetjmp(jb, 1) == 0) {
		host_fatal_jmp = &jb;
		lmm_check(&mm);
		host_fatal_jmp = NULL;
		CHECK(0, "canary damage not reported");
	} else {
		CHECK(strstr(host_fatal_reason(), "canary"), "fatal reason '%s'", host_fatal_reason());
	}
	mm.canary_tail ^= 1;
}

/* The common allocation and free do not read the canary; their failures and refusals do. */
static void canary_checked_when_alloc_fails_or_free_refused(void)
{
	static struct lmm never; /* zeroed: lmm_begin never called */
	sigjmp_buf jb;
	for (volatile int which = 0; which < 3; which++) {
		volatile bool returned = false;
		if (sigsetjmp(jb, 1) == 0) {
			host_fatal_jmp = &jb;
			if (which == 0)
				returned = lmm_alloc_pages(&never, 0, LMM_GFP_KERNEL) == NULL;
			else if (which == 1)
				returned = lmm_alloc_pages(&never, 3, LMM_GFP_ATOMIC) == NULL;
			else
				returned = lmm_free_pages(&never, (void *)0x10000, 0) != LMM_OK;
			host_fatal_jmp = NULL;
			CHECK(0, "call %d on a struct lmm never begun returned (%d)", which, (int)returned);
		} else {
			CHECK(strstr(host_fatal_reason(), "canary"), "fatal reason '%s'", host_fatal_reason());
		}
	}
	/* Begun, not initialised: an allocation is refused (LMM_ERR_STATE), not a silent NULL. */
	static struct lmm begun;
	lmm_begin(&begun, NULL);
	host_reports_clear();
	CHECK(lmm_alloc_pages(&begun, 0, LMM_GFP_KERNEL) == NULL && host_report_last() &&
		      host_report_last()->reason == LMM_ERR_STATE && begun.refused[LMM_ERR_STATE] == 1,
	      "allocation before lmm_init not refused");
	CHECK(lmm_alloc_pages(&begun, 2, LMM_GFP_ATOMIC) == NULL && begun.refused[LMM_ERR_STATE] == 2,
	      "order-2 allocation before lmm_init not refused");
}

static void check_detects_corruption(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	uint32_t idx = (uint32_t)(phys(p) >> 12) - (uint32_t)mm.regions[0].base_pfn;
	mm.frames[idx].state = LMM_FRAME_FREE; /* a free frame that is on no list */
	CHECK(lmm_check(&mm) > 0, "corrupt frame state not detected");
	mm.frames[idx].state = LMM_FRAME_ALLOCATED;
	mm.nfree++;
	CHECK(lmm_check(&mm) > 0, "wrong free counter not detected");
	mm.nfree--;
	CHECK(lmm_check(&mm) == 0, "healthy state reported broken");
}

static void *handler_kernel, *handler_nowait;

static void handler_allocates(void)
{
	handler_kernel = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	handler_nowait = lmm_alloc_pages(&mm, 0, LMM_GFP_NOWAIT);
}

/* KERNEL backs a general kalloc(): fine with interrupts off, refused from a handler. */
static void kernel_alloc_context_rules(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	lmm_irqflags_t fl = host_irq_save();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	host_irq_restore(fl);
	CHECK(p, "KERNEL allocation with interrupts off refused");
	CHECK(mm_stats(&mm).refused_total == 0, "a refusal was counted");

	host_reports_clear();
	host_irq_install(SIGUSR1, handler_allocates);
	raise(SIGUSR1);
	host_irq_uninstall(SIGUSR1);
	CHECK(!handler_kernel, "KERNEL allocation from a handler succeeded");
	CHECK(handler_nowait, "NOWAIT allocation from a handler failed");
	CHECK(mm_stats(&mm).refused[LMM_ERR_BAD_CONTEXT] == 1, "not counted");
	const struct lmm_report *r = host_report_last();
	CHECK(r && r->reason == LMM_ERR_BAD_CONTEXT && r->context == LMM_CTX_INTERRUPT && r->caller != NULL &&
		      r->gfp == LMM_GFP_KERNEL,
	      "report: reason %d context %d caller %p", r ? (int)r->reason : -1, r ? (int)r->context : -1,
	      r ? r->caller : NULL);
	lmm_free_pages(&mm, p, 0);
	lmm_free_pages(&mm, handler_nowait, 0);
}

/* ---- The per-CPU layer -------------------------------------------------------------- */

/* A warm order-0 pair is served by this CPU's cache: no lock at all. */
static void cache_pair_takes_no_lock(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* refills the cache once */
	ASSERT(p, "alloc failed");
	lmm_free_pages(&mm, p, 0);
	uint64_t locks = host_lock_acquisitions();
	for (int i = 0; i < 1000; i++) {
		void *q = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
		ASSERT(q == p, "LIFO cache: the page just freed comes back first");
		CHECK(lmm_free_pages(&mm, q, 0) == LMM_OK, "free refused");
	}
	CHECK(host_lock_acquisitions() == locks, "%" PRIu64 " lock acquisitions in 1000 warm pairs",
	      host_lock_acquisitions() - locks);
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.cached == s.cache_batch && s.cache_refills == 1, "cached %" PRIu64 ", refills %" PRIu64, s.cached,
	      s.cache_refills);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
}

/* The cache is bounded: frees past its high mark drain one batch under one lock hold. */
static void cache_bounded_by_high_mark(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	struct lmm_stats start = mm_stats(&mm);
	enum { N = 300 };
	void *pages[N];
	for (int i = 0; i < N; i++)
		ASSERT((pages[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)), "alloc %d failed", i);
	struct lmm_stats s = mm_stats(&mm);
	for (int i = 0; i < N; i++) {
		lmm_free_pages(&mm, pages[i], 0);
		struct lmm_cpu_stats c;
		lmm_get_cpu_stats(&mm, host_cpu_id(), &c);
		CHECK(c.cache_pages <= s.cache_high, "cache holds %u pages, high mark %u", c.cache_pages, s.cache_high);
	}
	s = mm_stats(&mm);
	CHECK(s.cache_drains > 0 && s.cached <= s.cache_high, "drains %" PRIu64 ", cached %" PRIu64, s.cache_drains,
	      s.cached);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
	lmm_cpu_drain(&mm, host_cpu_id());
	s = mm_stats(&mm);
	CHECK(s.cached == 0 && s.free == s.available, "drain left %" PRIu64 " cached", s.cached);
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++)
		CHECK(s.free_blocks[o] == start.free_blocks[o], "order %u not merged back after drain", o);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* A page waiting in a cache or in the pool is free: freeing it again is a double free. */
static void double_free_of_cached_page(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .pool_target = 64, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	void *k = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC);
	ASSERT(k && a, "alloc failed");
	lmm_free_pages(&mm, k, 0);
	lmm_free_pages(&mm, a, 0);
	struct lmm_stats before = mm_stats(&mm);
	host_reports_clear();
	CHECK(lmm_free_pages(&mm, k, 0) == LMM_ERR_ALREADY_FREE, "cached page: not a double free");
	const struct lmm_report *r = host_report_last();
	CHECK(r && r->found_state == LMM_FRAME_CACHED && r->phys == phys(k), "report: state %d",
	      r ? r->found_state : -1);
	CHECK(lmm_free_pages(&mm, a, 0) == LMM_ERR_ALREADY_FREE, "pooled page: not a double free");
	r = host_report_last();
	CHECK(r && r->found_state == LMM_FRAME_POOL && r->phys == phys(a), "report: state %d",
	      r ? r->found_state : -1);
	struct lmm_stats after = mm_stats(&mm);
	CHECK(after.available == before.available && after.cached == before.cached && after.pool == before.pool,
	      "double frees moved pages");
	CHECK(after.refused[LMM_ERR_ALREADY_FREE] == 2, "refusals not counted");
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* A page freed on another CPU goes to that CPU's cache; each CPU's figures say so. */
static void free_on_another_cpu(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	unsigned me = host_cpu_id();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	ASSERT(p, "alloc failed");
	struct lmm_cpu_stats c0, c1;
	lmm_get_cpu_stats(&mm, me + 1, &c1);
	host_set_cpu(me + 1);
	CHECK(lmm_free_pages(&mm, p, 0) == LMM_OK, "free on the other CPU refused");
	host_set_cpu(me);
	lmm_get_cpu_stats(&mm, me, &c0);
	struct lmm_cpu_stats c1b;
	lmm_get_cpu_stats(&mm, me + 1, &c1b);
	CHECK(c1b.cache_pages == c1.cache_pages + 1 && c1b.frees == c1.frees + 1, "cpu %u cache %u frees %" PRIu64,
	      me + 1, c1b.cache_pages, c1b.frees);
	CHECK(mm_stats(&mm).allocated == 0, "allocated count wrong across CPUs");
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
	lmm_cpu_drain(&mm, me + 1); /* a CPU that is not running: allowed */
	lmm_get_cpu_stats(&mm, me + 1, &c1b);
	CHECK(c1b.cache_pages == 0, "drain of cpu %u left %u pages", me + 1, c1b.cache_pages);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* No per-CPU cache and no reserve at all: a port that wants neither gets neither. */
static void cache_and_pool_off(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .pool_target = 0, .cache_high = LMM_CPU_OFF, .pool_slice = LMM_CPU_OFF,
				  .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.pool == 0 && s.cache_high == 0 && s.pool_slice == 0, "pool %" PRIu64 " cache %u", s.pool,
	      s.cache_high);
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
	void *k = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(a && k, "allocations failed without a pool or cache");
	lmm_free_pages(&mm, a, 0);
	lmm_free_pages(&mm, k, 0);
	s = mm_stats(&mm);
	CHECK(s.cached == 0 && s.pool == 0 && s.free == s.available && s.free_blocks[0] == 0,
	      "pages kept aside: cached %" PRIu64 " pool %" PRIu64, s.cached, s.pool);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* Every *_locked function asserts the lock: called without it, a fatal report. */
static void locked_function_asserts_lock(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	sigjmp_buf jb;
	if (sigsetjmp(jb, 1) == 0) {
		host_fatal_jmp = &jb;
		lmm_buddy_alloc_locked(&mm, &mm.cpu[host_cpu_id()], 0);
		host_fatal_jmp = NULL;
		CHECK(0, "unlocked call not reported");
	} else {
		CHECK(strstr(host_fatal_reason(), "without the lock"), "fatal reason '%s'", host_fatal_reason());
	}
}

/* The fragmentation figure: share of free memory unusable for each order. */
static void unusable_index_reported(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &no_cache) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	/* By the definition: pages in blocks smaller than 2^k, over all free pages. */
	for (unsigned k = 0; k <= LMM_MAX_ORDER; k++) {
		uint64_t small = 0;
		for (unsigned o = 0; o < k; o++)
			small += s.free_blocks[o] << o;
		CHECK(s.unusable_permille[k] == small * 1000 / s.free, "order %u: %u, want %" PRIu64, k,
		      s.unusable_permille[k], small * 1000 / s.free);
	}
	CHECK(s.unusable_permille[0] == 0, "order 0 can always be served");
	/* Pin every other page of the first 4 MiB block: 512 free single pages there. */
	void *pages[1024];
	for (int i = 0; i < 1024; i++)
		pages[i] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	for (int i = 0; i < 1024; i += 2)
		lmm_free_pages(&mm, pages[i], 0);
	s = mm_stats(&mm);
	/* 512 order-0 pages (plus the few single pages init left) are useless for order >= 1. */
	uint64_t want = (512 + s.free_blocks[0] - 512) * 1000 / s.free;
	CHECK(s.free_blocks[0] >= 512, "fixture: %" PRIu64 " single pages", s.free_blocks[0]);
	CHECK(s.unusable_permille[0] == 0, "order 0: %u", s.unusable_permille[0]);
	CHECK(s.unusable_permille[1] == want && want >= 512 * 1000 / s.free, "order 1: %u, want %" PRIu64,
	      s.unusable_permille[1], want);
	for (int i = 1; i < 1024; i += 2)
		lmm_free_pages(&mm, pages[i], 0);
	CHECK(lmm_check(&mm) == 0, "check failed");
}

/* ---- Who made the call ------------------------------------------------------------------ */

/*
 * The return address of the call to it: the address just after that call site.  The
 * empty asm is a side effect, so that the compiler treats no two calls as the same.
 */
static __attribute__((noinline)) const void *just_called(void)
{
	__asm__ volatile("" ::: "memory");
	return __builtin_return_address(0);
}

/*
 * Whether @caller, as mm/ recorded it, is the return address of the call made just before
 * the call that returned @after: a few bytes before it (the second call, and perhaps a
 * move of the first one's result).  mm/ naming one of its own functions is far off.
 */
static bool is_call_site(const void *caller, const void *after)
{
	uintptr_t c = (uintptr_t)caller, a = (uintptr_t)after;
	return c < a && a - c <= 32;
}

/* The call site in the holder record of a block mm/ handed out; NULL if none. */
static const void *holder_caller(const void *p)
{
	uint32_t idx;
	return lmm_locate(&mm, p, &idx) == LMM_OK ? mm.holders[idx].caller : NULL;
}

/* Check the last report's reason and caller: the call made just before @after. */
#define CHECK_REPORT_FROM(after, want, what)                                                                 \
	do {                                                                                                 \
		const struct lmm_report *r_ = host_report_last();                                             \
		CHECK(r_ && r_->reason == (want) && is_call_site(r_->caller, (after)),                        \
		      "%s: reason %d, caller %p, the call returned to just before %p", (what),               \
		      r_ ? (int)r_->reason : -1, r_ ? r_->caller : NULL, (after));                            \
		host_reports_clear();                                                                         \
	} while (0)

static const void *handler_after;
static void handler_refused_kernel_alloc(void)
{
	handler_kernel = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	handler_after = just_called();
}

/*
 * Every entry point, on every branch that makes a report or a holder record, names the
 * call that reached mm/: the return address of the public function, however deep in
 * mm/ the report is made.
 */
/* Refusals at ingest and init, and of CPU indices and marks, name their caller too. */
static void init_and_range_reports_name_the_call_site(void)
{
	host_arena_map(16 * MiB);
	/* 4096 pages less 16 of frame records: at most 2040 for the reserve; ask for more. */
	struct lmm_config cfg = { .flags = LMM_CFG_QUIET, .pool_target = 2540, .pool_low = LMM_POOL_AUTO };
	lmm_begin(&mm, &cfg);
	host_reports_clear();
	const void *after;
	(void)lmm_add_range(&mm, 0x100000, 0);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_EMPTY_RANGE, "lmm_add_range, zero length");
	(void)lmm_reserve_range(&mm, UINT64_MAX - 4095, 8192);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_ABSURD_RANGE, "lmm_reserve_range, wrapping");
	ASSERT(lmm_add_range(&mm, 0, 16 * MiB) == LMM_OK, "range refused");
	(void)lmm_init(&mm);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_MARKS, "lmm_init, pool target above pool_most");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.pool_most == 2040 && s.pool_target == 2040 && s.pool_low == 1020,
	      "cut marks: target %u low %u (pool_most %u): an automatic low mark is half the target in force",
	      s.pool_target, s.pool_low, s.pool_most);
	(void)lmm_pool_set_marks(&mm, 10, 5);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_MARKS, "lmm_pool_set_marks, low above target");
	(void)lmm_cpu_drain(&mm, LMM_PORT_MAX_CPUS);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_CPU, "lmm_cpu_drain, no such cpu");
	struct lmm_cpu_stats cs;
	(void)lmm_get_cpu_stats(&mm, ~0u, &cs);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_CPU, "lmm_get_cpu_stats, no such cpu");
	(void)lmm_init(&mm);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_STATE, "lmm_init, twice");
	host_arena_unmap();
}

static void reports_name_the_call_site(void)
{
	struct range use[] = { { 0, 16 * MiB } };
	struct lmm_config cfg = { .flags = LMM_CFG_QUIET | LMM_CFG_HOLDERS, .pool_target = 16 };
	ASSERT(mm_setup(&mm, 16 * MiB, use, 1, NULL, 0, &cfg) == LMM_OK, "init failed");
	lmm_set_default(&mm);
	host_reports_clear();
	const void *after;
	int local;

	/* Allocations: bad arguments, each entry point; KERNEL from a handler. */
	(void)lmm_alloc_pages(&mm, LMM_MAX_ORDER + 1, LMM_GFP_KERNEL);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_ORDER, "lmm_alloc_pages, bad order");
	(void)lmm_alloc_pages(&mm, 1, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_FLAGS, "lmm_alloc_pages, exclusive order 1");
	(void)lmm_alloc_pages_owned(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE, 0);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_OWNER, "lmm_alloc_pages_owned, owner 0");
	host_owner_zero(true); /* the routine asks the port: a port that says "no owner" */
	void *ownerless = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	after = just_called();
	host_owner_zero(false);
	CHECK(ownerless == NULL, "the atomic exclusive routine handed page %p to owner 0", ownerless);
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_OWNER, "labyrinth_void_alloc_page_gfp_atomic_exclusive, owner 0");
	host_irq_install(SIGUSR1, handler_refused_kernel_alloc);
	raise(SIGUSR1);
	host_irq_uninstall(SIGUSR1);
	CHECK(!handler_kernel, "KERNEL allocation from a handler succeeded");
	CHECK_REPORT_FROM(handler_after, LMM_ERR_BAD_CONTEXT, "lmm_alloc_pages, KERNEL in a handler");

	/* Holder records: a cache hit, the core, the atomic routine. */
	void *p0 = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	after = just_called();
	ASSERT(p0, "order-0 allocation failed");
	CHECK(is_call_site(holder_caller(p0), after), "holder of a cache hit: %p",
	      holder_caller(p0));
	void *p2 = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
	after = just_called();
	ASSERT(p2, "order-2 allocation failed");
	CHECK(is_call_site(holder_caller(p2), after), "holder of a core block: %p",
	      holder_caller(p2));
	void *x = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	after = just_called();
	ASSERT(x, "atomic exclusive allocation failed");
	CHECK(is_call_site(holder_caller(x), after), "holder of a reserve page: %p",
	      holder_caller(x));

	/* Frees: refused before the lookup, by the per-CPU layer's core half, by the core. */
	(void)lmm_free_pages(&mm, (void *)((uintptr_t)&local & ~(uintptr_t)4095), 0);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_NOT_MANAGED, "lmm_free_pages, unmanaged");
	(void)lmm_free_pages(&mm, p0, LMM_MAX_ORDER + 1);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_BAD_ORDER, "lmm_free_pages, bad order");
	(void)lmm_free_pages_owned(&mm, x, 0, (uint16_t)(lmm_port_owner() + 1));
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_WRONG_OWNER, "lmm_free_pages_owned, not the owner");
	CHECK(labyrinth_free_page_atomic_exclusive(x) == LMM_OK, "owner's free refused");
	(void)labyrinth_free_page_atomic_exclusive(x);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_ALREADY_FREE, "labyrinth_free_page_atomic_exclusive, double free");
	CHECK(lmm_free_pages(&mm, p0, 0) == LMM_OK, "free refused");
	(void)lmm_page_put(&mm, p0, 0);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_ALREADY_FREE, "lmm_page_put, double free of a cached page");
	CHECK(lmm_free_pages(&mm, p2, 2) == LMM_OK, "free refused");
	(void)lmm_free_pages(&mm, p2, 2);
	after = just_called();
	CHECK_REPORT_FROM(after, LMM_ERR_ALREADY_FREE, "lmm_free_pages, double free of order 2");
	CHECK(lmm_check(&mm) == 0, "check failed");
	lmm_set_default(NULL);
}

static void address_translation(void)
{
	ASSERT(setup16() == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(lmm_virt_to_phys(&mm, p) == phys(p), "virt_to_phys wrong");
	CHECK(lmm_phys_to_virt(&mm, phys(p)) == p, "phys_to_virt wrong");
	CHECK(lmm_phys_to_virt(&mm, 64 * MiB) == NULL, "unmanaged phys translated");
	int local;
	CHECK(lmm_virt_to_phys(&mm, &local) == LMM_PHYS_INVALID, "stack address translated");
	lmm_free_pages(&mm, p, 0);
}

static void status_strings(void)
{
	for (int s = 0; s < LMM_STATUS_COUNT; s++)
		CHECK(strcmp(lmm_status_str((enum lmm_status)s), "unknown status") != 0, "status %d has no name", s);
	CHECK(strcmp(lmm_status_str(LMM_STATUS_COUNT), "unknown status") == 0, "out of range name");
}

int main(void)
{
	TEST(frame_record_is_16_bytes);
	TEST(struct_lmm_size_as_documented);
	TEST(state_order_word_matches_the_frame);
	TEST(held_word_matches_the_frame);
	TEST(use_word_matches_the_frame);
	TEST(set_word_sets_every_field);
	TEST(free_of_null_is_no_free);
	TEST(zero_length_range_refused);
	TEST(absurd_ranges_refused_or_trimmed);
	TEST(unaligned_range_trimmed_to_whole_pages);
	TEST(sub_page_range_refused);
	TEST(overlapping_out_of_order_ranges_merged);
	TEST(metadata_estimate_counts_overlaps_once);
	TEST(too_many_ranges_refused);
	TEST(full_range_table_merged_before_refusing);
	TEST(reservations_past_the_table_joined_not_dropped);
	TEST(ranges_past_the_region_table_counted);
	TEST(ranges_after_init_refused);
	TEST(default_before_init_refused);
	TEST(no_usable_memory);
	TEST(metadata_needs_room);
	TEST(reservations_widen_and_are_never_handed_out);
	TEST(metadata_costs_16_bytes_per_frame);
	TEST(every_order_naturally_aligned);
	TEST(split_all_the_way_and_merge_back);
	TEST(exact_order_taken_before_splitting);
	TEST(invalid_order_and_flags_refused);
	TEST(every_bad_free_refused);
	TEST(refused_free_records_the_caller);
	TEST(cache_batch_cut_to_high);
	TEST(adjacent_ranges_merged);
	TEST(holder_records_count_up);
	TEST(pool_page_free_refused);
	TEST(reference_counts);
	TEST(zero_flag_zeroes);
	TEST(poison_catches_use_after_free);
	TEST(canary_catches_stray_write);
	TEST(canary_checked_when_alloc_fails_or_free_refused);
	TEST(check_detects_corruption);
	TEST(kernel_alloc_context_rules);
	TEST(cache_pair_takes_no_lock);
	TEST(cache_bounded_by_high_mark);
	TEST(double_free_of_cached_page);
	TEST(free_on_another_cpu);
	TEST(cache_and_pool_off);
	TEST(locked_function_asserts_lock);
	TEST(unusable_index_reported);
	TEST(reports_name_the_call_site);
	TEST(init_and_range_reports_name_the_call_site);
	TEST(address_translation);
	TEST(status_strings);
	host_arena_unmap();
	return testlib_exit();
}

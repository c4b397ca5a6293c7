/*
 * test_mm_layouts.c - mm/ over the memory shapes real machines and bootloaders hand
 * over: a single page, a few MiB full of holes, 4 GiB in many regions, and a sparse
 * map with RAM at 0 and at 64 GiB (backed by MAP_NORESERVE, so the 62 GiB hole costs
 * neither RAM here nor metadata in the allocator).
 */
#include "mm_harness.h"

#include <sys/resource.h>

static struct lmm mm;

/*
 * Allocate every page one at a time, check each is new, then free them all and
 * check the counters return exactly to where they were.  With @write, each page gets
 * a pattern encoding its own address that is verified before the frees.
 */
static void alloc_every_page(bool write)
{
	struct lmm_stats before = mm_stats(&mm);
	uint64_t cap = before.available;
	void **pages = calloc(cap + 1, sizeof(*pages));
	uint64_t n = 0;
	void *p;
	while ((p = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) && n <= cap) {
		pages[n++] = p;
		if (write) {
			uint64_t *w = p;
			for (unsigned i = 0; i < 512; i += 64)
				w[i] = host_virt_to_phys(p) ^ i;
		}
	}
	CHECK(n == cap, "allocated %llu pages, expected %llu", (unsigned long long)n, (unsigned long long)cap);
	struct lmm_stats full = mm_stats(&mm);
	CHECK(full.available == 0, "memory left after exhaustion");
	CHECK(lmm_check(&mm) == 0, "check at exhaustion");
	if (write)
		for (uint64_t k = 0; k < n; k++) {
			uint64_t *w = pages[k];
			for (unsigned i = 0; i < 512; i += 64)
				if (w[i] != (host_virt_to_phys(w) ^ i)) {
					CHECK(0, "page 0x%llx pattern damaged (handed out twice?)",
					       (unsigned long long)host_virt_to_phys(w));
					k = n;
					break;
				}
		}
	for (uint64_t k = 0; k < n; k++)
		lmm_free_pages(&mm, pages[k], 0);
	lmm_pool_refill(&mm);
	struct lmm_stats after = mm_stats(&mm);
	CHECK(after.available == before.available && after.pool == before.pool && after.allocated == 0,
	       "counters did not return: available %llu->%llu pool %llu->%llu",
	       (unsigned long long)before.available, (unsigned long long)after.available,
	       (unsigned long long)before.pool, (unsigned long long)after.pool);
	/* Drained, the buddy lists are exactly as they were: every page merged back. */
	lmm_cpu_drain(&mm, host_cpu_id());
	after = mm_stats(&mm);
	CHECK(after.free == before.free + before.cached, "free %llu after draining, %llu before",
	      (unsigned long long)after.free, (unsigned long long)before.free);
	CHECK(lmm_check(&mm) == 0, "check after freeing everything");
	free(pages);
}

static void one_page(void)
{
	/* One page of RAM: it has to hold its own metadata, and nothing is left to give. */
	struct range use[] = { { 1 * MiB, 4096 } };
	ASSERT(mm_setup(&mm, 2 * MiB, use, 1, NULL, 0, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.managed == 1 && s.reserved == 1 && s.free == 0, "managed %llu reserved %llu",
	       (unsigned long long)s.managed, (unsigned long long)s.reserved);
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL), "allocated from an empty machine");
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
}

static void two_pages(void)
{
	struct range use[] = { { 1 * MiB, 8192 } };
	ASSERT(mm_setup(&mm, 2 * MiB, use, 1, NULL, 0, NULL) == LMM_OK, "init failed");
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	CHECK(p && host_virt_to_phys(p) == 1 * MiB, "the one free page was not handed out");
	CHECK(!lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL), "second page out of nowhere");
	lmm_free_pages(&mm, p, 0);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
}

/*
 * A block at a region's end whose buddy would lie past it never merges, even when the
 * frame just past the region's last one (the next region's first, in the frame array)
 * heads a free block of the same order.  Regions of pages [0, 20), [24, 28) and
 * [64, 72) (the metadata at the top): blocks 16-19 and 24-27 are both order 2, and
 * pfn 20, the buddy of 16, is in no region.
 */
static void merges_stop_at_region_ends(void)
{
	struct range use[] = { { 0, 20 * 4096 }, { 24 * 4096, 4 * 4096 }, { 64 * 4096, 8 * 4096 } };
	struct lmm_config cfg = { .pool_target = 0, .cache_high = LMM_CPU_OFF, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 1 * MiB, use, 3, NULL, 0, &cfg) == LMM_OK, "init failed");
	struct lmm_stats s0 = mm_stats(&mm);
	ASSERT(s0.regions == 3 && s0.free_blocks[2] == 3, "fixture: %u regions, %" PRIu64 " order-2 blocks", s0.regions,
	       s0.free_blocks[2]);
	void *b[3], *at16 = NULL, *at24 = NULL;
	for (int i = 0; i < 3; i++) {
		ASSERT((b[i] = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL)) != NULL, "order-2 allocation %d failed", i);
		uint64_t pfn = host_virt_to_phys(b[i]) / 4096;
		if (pfn == 16)
			at16 = b[i];
		else if (pfn == 24)
			at24 = b[i];
	}
	ASSERT(at16 && at24, "the order-2 blocks are not at pfn 16 and 24");
	CHECK(lmm_free_pages(&mm, at24, 2) == LMM_OK && lmm_free_pages(&mm, at16, 2) == LMM_OK, "frees refused");
	struct lmm_stats s1 = mm_stats(&mm);
	CHECK(s1.free_blocks[2] == 2 && s1.free_blocks[3] == 0, "after the frees: %" PRIu64 " order-2, %" PRIu64
	      " order-3 free blocks (a merge across a region's end?)", s1.free_blocks[2], s1.free_blocks[3]);
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check failed");
	for (int i = 0; i < 3; i++)
		if (b[i] != at16 && b[i] != at24)
			lmm_free_pages(&mm, b[i], 2);
	CHECK(mm_stats(&mm).free_blocks[2] == 3 && lmm_check(&mm) == 0, "not back to the three order-2 blocks");
}

static void few_mib_with_holes(void)
{
	struct range use[] = { { 0, 640 * 1024 }, { 1 * MiB, 2 * MiB }, { 3 * MiB + 4096, 123 * 4096 },
			       { 5 * MiB + 100, 1 * MiB }, { 7 * MiB, 1 * MiB - 4096 } };
	struct range res[] = { { 0, 1 * MiB }, { 1 * MiB, 300 * 1024 }, { 5 * MiB + 8 * 4096, 10 } };
	struct lmm_config cfg = { .pool_target = 16, .pool_low = 4, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, 8 * MiB, use, 5, res, 3, &cfg) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == 5, "regions %u", s.regions);
	alloc_every_page(true);
}

static void four_gib_in_many_regions(void)
{
	/*
	 * 62 regions of 68 MiB + odd sizes, separated by holes, like a busy e820 map.  A
	 * 32-bit host cannot map 4 GiB of RAM: it keeps the same 4.3 GiB physical layout
	 * (RAM above 4 GiB, 64-bit physical addresses) with 16 MiB regions, one window each.
	 */
	const uint64_t region = sizeof(void *) >= 8 ? 68 * MiB : 16 * MiB;
	struct range use[62];
	uint64_t base = 0, usable = 0;
	for (int i = 0; i < 62; i++) {
		use[i] = (struct range){ base + (uint64_t)i * 4096, region + (uint64_t)(i % 7) * 4096 };
		usable += use[i].len;
		base += 70 * MiB;
	}
	if (region != 68 * MiB)
		printf("note: four_gib_in_many_regions: %zu-bit host, 62 regions of %llu MiB over %llu MiB of physical space\n",
		       sizeof(void *) * 8, (unsigned long long)(region / MiB), (unsigned long long)(base / MiB));
	struct range res[] = { { 0, 1 * MiB } };
	struct lmm_config cfg = { .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO, .flags = LMM_CFG_QUIET };
	ASSERT(mm_setup(&mm, base + 64 * MiB, use, 62, res, 1, &cfg) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.regions == 62, "regions %u", s.regions);
	CHECK(s.managed * 4096 == usable && usable >= 62 * region, "managed only %llu MiB",
	       (unsigned long long)(s.managed >> 8));
	uint32_t auto_pool = region == 68 * MiB ? 4096 : (uint32_t)((s.free + s.pool) / 128);
	CHECK(s.pool_target == auto_pool && s.pool == auto_pool, "auto pool %u/%llu, expected %u", s.pool_target,
	       (unsigned long long)s.pool, auto_pool);
	/* Large blocks from every region, checked for alignment, then everything page by page. */
	void *big[4096];
	unsigned nbig = 0;
	void *p;
	while (nbig < 4096 && (p = lmm_alloc_pages(&mm, LMM_MAX_ORDER, LMM_GFP_KERNEL))) {
		CHECK((host_virt_to_phys(p) & ((4096ull << LMM_MAX_ORDER) - 1)) == 0, "misaligned");
		big[nbig++] = p;
	}
	CHECK(nbig > (region == 68 * MiB ? 900u : 150u), "only %u max-order blocks in %llu MiB", nbig,
	       (unsigned long long)(usable / MiB));
	CHECK(lmm_check(&mm) == 0, "check with large blocks out");
	while (nbig)
		lmm_free_pages(&mm, big[--nbig], LMM_MAX_ORDER);
	alloc_every_page(false);
}

static long rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void sparse_ram_at_0_and_64_gib(void)
{
	struct range use[] = { { 0, 1 * GiB }, { 64 * GiB, 1 * GiB } };
	struct range res[] = { { 0, 1 * MiB } };
	long rss0 = rss_kib();
	ASSERT(mm_setup(&mm, 65 * GiB, use, 2, res, 1, NULL) == LMM_OK, "init failed");
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.managed == 2 * GiB / 4096, "managed %llu", (unsigned long long)s.managed);
	CHECK(s.metadata_bytes == 2 * GiB / 4096 * 16, "metadata %llu bytes: the hole is paid for",
	       (unsigned long long)s.metadata_bytes);
	CHECK(s.regions == 2, "regions %u", s.regions);
	long grown = rss_kib() - rss0;
	CHECK(grown < (long)(s.metadata_bytes / 1024) + 16 * 1024, "resident memory grew %ld KiB for %llu KiB of metadata",
	       grown, (unsigned long long)(s.metadata_bytes >> 10));

	/* Blocks come from both sides of the hole and never merge across it. */
	bool low = false, high = false;
	void *blocks[600];
	unsigned n = 0;
	void *p;
	while (n < 600 && (p = lmm_alloc_pages(&mm, LMM_MAX_ORDER, LMM_GFP_KERNEL))) {
		uint64_t a = host_virt_to_phys(p);
		low |= a < 1 * GiB;
		high |= a >= 64 * GiB;
		*(uint64_t *)p = a;
		blocks[n++] = p;
	}
	CHECK(low && high, "blocks from one side only (low %d high %d)", low, high);
	CHECK(lmm_check(&mm) == 0, "check failed");
	while (n--)
		CHECK(lmm_free_pages(&mm, blocks[n], LMM_MAX_ORDER) == LMM_OK, "free failed");
	CHECK(lmm_check(&mm) == 0 && mm_conserved(&mm), "check after frees");
}

int main(void)
{
	TEST(one_page);
	TEST(two_pages);
	TEST(merges_stop_at_region_ends);
	TEST(few_mib_with_holes);
	TEST(four_gib_in_many_regions);
	TEST(sparse_ram_at_0_and_64_gib);
	host_arena_unmap();
	return testlib_exit();
}

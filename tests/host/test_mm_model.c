/*
 * test_mm_model.c - mm/ driven side by side with a reference model for a million
 * operations (SEED=n to change the fixed seed, OPS=n to change the count).
 *
 * The model is a page array that knows which pages are free, allocated or reserved.
 * Every allocation must return an aligned block of pages the model has free; every
 * NULL must be justified (no aligned run of free pages of that order exists, which
 * the buddy's full-coalescing invariant guarantees); every deliberately bad free must
 * be refused with the right reason and change nothing.  lmm_check() runs between
 * phases.  Any divergence fails the test and prints the operation number.
 */
#include "mm_harness.h"

enum { M_NONE = 0, M_FREE, M_ALLOC, M_RESERVED };

static struct lmm mm;
static uint8_t *model;   /* one state per page of the arena */
static uint64_t arena_pages, model_free;
static uint64_t rng_state;
static unsigned long long divergences;
static unsigned long long op_no;

struct live {
	uint64_t phys;
	unsigned order;
};
static struct live *live;
static size_t nlive;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

#define DIVERGE(...)                                                                   \
	do {                                                                           \
		if (divergences++ < 5) {                                               \
			fprintf(stderr, "divergence at op %llu: ", op_no);            \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
		}                                                                      \
	} while (0)

static void model_mark(uint64_t phys, unsigned order, uint8_t st)
{
	for (uint64_t p = phys >> 12; p < (phys >> 12) + (1ull << order); p++)
		model[p] = st;
}

/* Is there an aligned run of 2^order free pages anywhere? */
static bool model_has_block(unsigned order)
{
	uint64_t n = 1ull << order;
	for (uint64_t p = 0; p + n <= arena_pages; p += n) {
		uint64_t k = 0;
		while (k < n && model[p + k] == M_FREE)
			k++;
		if (k == n)
			return true;
	}
	return false;
}

static unsigned pick_order(void)
{
	/* Geometric: order k with probability 2^-(k+1), capped. */
	unsigned o = (unsigned)__builtin_ctzll(rnd() | (1ull << LMM_MAX_ORDER));
	return o > LMM_MAX_ORDER ? LMM_MAX_ORDER : o;
}

static uint64_t signature(uint64_t phys)
{
	return phys * 0x9E3779B97F4A7C15ull + 1;
}

static void do_alloc(void)
{
	unsigned order = pick_order();
	lmm_gfp_t gfp = (rnd() & 7) == 0 ? LMM_GFP_NOWAIT : LMM_GFP_KERNEL;
	uint64_t *p = lmm_alloc_pages(&mm, order, gfp);
	if (!p) {
		if (model_has_block(order))
			DIVERGE("order %u allocation failed although the model has a free block", order);
		return;
	}
	uint64_t phys = host_virt_to_phys(p);
	if (phys & ((4096ull << order) - 1))
		DIVERGE("order %u block at 0x%llx is misaligned", order, (unsigned long long)phys);
	for (uint64_t k = 0; k < (1ull << order); k++)
		if (model[(phys >> 12) + k] != M_FREE) {
			DIVERGE("order %u block at 0x%llx covers a page the model has in state %d", order,
				(unsigned long long)phys, model[(phys >> 12) + k]);
			break;
		}
	model_mark(phys, order, M_ALLOC);
	model_free -= 1ull << order;
	p[0] = signature(phys);
	p[(512ull << order) - 1] = signature(phys) ^ order;
	live[nlive++] = (struct live){ phys, order };
}

static void do_free(void)
{
	size_t i = rnd() % nlive;
	struct live b = live[i];
	live[i] = live[--nlive];
	uint64_t *p = lmm_port_phys_to_virt(b.phys);
	if (p[0] != signature(b.phys) || p[(512ull << b.order) - 1] != (signature(b.phys) ^ b.order))
		DIVERGE("block at 0x%llx lost its signature", (unsigned long long)b.phys);
	enum lmm_status st = lmm_free_pages(&mm, p, b.order);
	if (st != LMM_OK)
		DIVERGE("free of 0x%llx order %u refused: %s", (unsigned long long)b.phys, b.order, lmm_status_str(st));
	model_mark(b.phys, b.order, M_FREE);
	model_free += 1ull << b.order;
}

/* A deliberately bad free; the model predicts the reason. */
static void do_bad_free(void)
{
	if (!nlive)
		return;
	struct live b = live[rnd() % nlive];
	char *p = lmm_port_phys_to_virt(b.phys);
	enum lmm_status want, got;
	switch (rnd() % 4) {
	case 0:
		want = LMM_ERR_NOT_ALIGNED;
		got = lmm_free_pages(&mm, p + 8 + (rnd() % 4000), b.order);
		break;
	case 1:
		want = LMM_ERR_WRONG_ORDER;
		got = lmm_free_pages(&mm, p, (b.order + 1 + (unsigned)(rnd() % LMM_MAX_ORDER)) % (LMM_MAX_ORDER + 1));
		break;
	case 2:
		if (b.order == 0)
			return;
		want = LMM_ERR_NOT_HEAD;
		got = lmm_free_pages(&mm, p + 4096 * (1 + rnd() % ((1ull << b.order) - 1)), 0);
		break;
	default: {
		/* Any page the model says is free must be refused as free or inside a free block. */
		uint64_t pg = rnd() % arena_pages;
		if (model[pg] != M_FREE)
			return;
		got = lmm_free_pages(&mm, lmm_port_phys_to_virt(pg << 12), 0);
		if (got != LMM_ERR_ALREADY_FREE && got != LMM_ERR_NOT_HEAD)
			DIVERGE("free of free page 0x%llx gave '%s'", (unsigned long long)(pg << 12), lmm_status_str(got));
		return;
	}
	}
	if (got != want)
		DIVERGE("bad free of 0x%llx: got '%s', want '%s'", (unsigned long long)b.phys, lmm_status_str(got),
			lmm_status_str(want));
}

static void compare_counters(void)
{
	struct lmm_stats s = mm_stats(&mm);
	/* No reserve here: what is not held is in the lists or this CPU's cache. */
	if (s.free + s.cached != model_free || s.available != model_free)
		DIVERGE("free pages: allocator %llu (+%llu cached), model %llu", (unsigned long long)s.free,
			(unsigned long long)s.cached, (unsigned long long)model_free);
	if (s.free + s.allocated + s.pool + s.cached + s.reserved != s.managed)
		DIVERGE("conservation broken");
}

static void model_test(void)
{
	const char *seed = getenv("SEED"), *ops_env = getenv("OPS");
	uint64_t seed_v = seed ? strtoull(seed, NULL, 0) : 20261121;
	uint64_t ops = ops_env ? strtoull(ops_env, NULL, 0) : 1000000;
	rng_state = seed_v | 1;
	fprintf(stderr, "model: seed %llu, %llu operations\n", (unsigned long long)seed_v, (unsigned long long)ops);

	/* A few MiB with holes, unaligned edges and reservations. */
	uint64_t bytes = 12 * MiB;
	struct range use[] = { { 0, 3 * MiB }, { 3 * MiB + 12 * 1024 + 5, 3 * MiB - 7 }, { 7 * MiB, 4 * MiB },
			       { 11 * MiB + 4096, 512 * 1024 } };
	struct range res[] = { { 0, 1 * MiB }, { 2 * MiB + 100, 9000 }, { 8 * MiB, 4096 } };
	ASSERT(mm_setup(&mm, bytes, use, 4, res, 3, NULL) == LMM_OK, "init failed");

	arena_pages = bytes >> 12;
	model = calloc(arena_pages, 1);
	live = calloc(arena_pages, sizeof(*live));
	for (uint32_t r = 0; r < mm.nregions; r++)
		for (uint64_t p = 0; p < mm.regions[r].npages; p++)
			model[mm.regions[r].base_pfn + p] = M_FREE;
	for (uint32_t i = 0; i < mm.nreserved; i++)
		for (uint64_t a = mm.reserved_ranges[i].base; a < mm.reserved_ranges[i].end && (a >> 12) < arena_pages; a += 4096)
			if (model[a >> 12] == M_FREE)
				model[a >> 12] = M_RESERVED;
	for (uint64_t p = 0; p < arena_pages; p++)
		model_free += model[p] == M_FREE;
	compare_counters();

	for (op_no = 0; op_no < ops && divergences < 5; op_no++) {
		/* Alternate filling and draining phases so both ends of occupancy are visited. */
		bool filling = (op_no / 50000) % 2 == 0;
		uint64_t r = rnd() % 100;
		if (r < 2)
			do_bad_free();
		else if (nlive && r < (filling ? 35u : 70u))
			do_free();
		else
			do_alloc();
		compare_counters();
		if (op_no % 50000 == 49999 && lmm_check(&mm) != 0)
			DIVERGE("lmm_check failed");
	}
	while (nlive)
		do_free();
	compare_counters();
	struct lmm_stats s = mm_stats(&mm);
	CHECK(s.allocated == 0, "%llu pages still allocated", (unsigned long long)s.allocated);
	CHECK(lmm_check(&mm) == 0, "final check failed");
	CHECK(divergences == 0, "%llu divergences (first ones on stderr), seed %llu", divergences,
	       (unsigned long long)seed_v);
	fprintf(stderr, "model: %llu ops, %llu refused bad frees, %llu allocation failures\n", op_no,
		(unsigned long long)s.refused_total, (unsigned long long)s.alloc_failures);
	free(model);
	free(live);
}

int main(void)
{
	TEST(model_test);
	host_arena_unmap();
	return testlib_exit();
}

/*
 * test_mm_model.c - mm/ driven side by side with the reference model (model.h) over the
 * whole API, for a million operations (SEED=n for another stream, OPS=n for another
 * count; make model-long runs 10M on three seeds).
 *
 * Every call goes through the model's checked wrappers: ATOMIC, NOWAIT, KERNEL and the
 * bare RESERVE bit, EXCLUSIVE with named owners, transfers and unexclusive, ZERO
 * (checked on the memory), shared references (get/put), the pool (set_marks raising
 * and lowering it, refills, low-water resets), this CPU's drain, and every bad free
 * (unaligned, unmanaged, outside, tail, wrong order, wrong owner, double free, a free
 * page, a reserved page), from normal context, with interrupts off, and inside the
 * simulated interrupt handler (a signal).  After every operation the wrapper compares
 * the touched page's frame record and model_compare() every counter; every CHECK_EVERY
 * operations model_check() drains this CPU and compares lmm_check(), the walk, every
 * page and the free blocks per order exactly.  Seeds are independent (splitmix64).
 */
#include "mm_harness.h"
#include "model.h"

#include <signal.h>

#define IRQ_SIGNO (SIGRTMIN + 2)
#define CHECK_EVERY 20000

static struct lmm mm;
static struct model model;
static uint64_t rng_state;
static unsigned handler_ops;
static uint64_t ctx_ops[3]; /* operations run in normal, irqs-off, handler context */

/*
 * splitmix64 derives the xorshift state from the seed: a bijection, so distinct seeds
 * give distinct streams (the old "seed | 1" made 2k and 2k+1 the same run).
 */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned pick_order(void)
{
	/* Geometric: order k with probability 2^-(k+1), capped; now and then an invalid one. */
	if (rnd() % 512 == 0)
		return LMM_MAX_ORDER + 1 + (unsigned)(rnd() % 3);
	unsigned o = (unsigned)__builtin_ctzll(rnd() | (1ull << LMM_MAX_ORDER));
	return o > LMM_MAX_ORDER ? LMM_MAX_ORDER : o;
}

static uint16_t pick_owner(void)
{
	switch (rnd() % 6) {
	case 0: return 0; /* refused where an owner is needed */
	case 1: return lmm_port_owner();
	default: return (uint16_t)(1 + rnd() % 4);
	}
}

static lmm_gfp_t pick_gfp(unsigned order)
{
	static const lmm_gfp_t base[] = { LMM_GFP_KERNEL, LMM_GFP_NOWAIT, LMM_GFP_ATOMIC, LMM_GFP_ATOMIC,
					  LMM_GFPB_RESERVE };
	lmm_gfp_t g = base[rnd() % 5];
	if (order == 0 ? rnd() % 4 == 0 : rnd() % 64 == 0)
		g |= LMM_GFP_EXCLUSIVE;
	if (rnd() % 8 == 0)
		g |= LMM_GFP_ZERO;
	if (rnd() % 1024 == 0)
		g |= 1u << 9; /* unknown bit */
	return g;
}

static bool pick_held(uint64_t *pfn)
{
	if (!model.nlive)
		return false;
	*pfn = model.live[rnd() % model.nlive];
	return true;
}

static void do_alloc(void)
{
	unsigned order = pick_order();
	lmm_gfp_t gfp = pick_gfp(order);
	if (rnd() % 2)
		model_alloc_owned(&model, order, gfp, pick_owner());
	else
		model_alloc(&model, order, gfp);
}

static void do_free(void)
{
	uint64_t pfn;
	if (!pick_held(&pfn))
		return;
	const struct model_page *h = &model.page[pfn];
	void *p = model_page_ptr(&model, pfn);
	switch (rnd() % 3) {
	case 0: model_free_owned(&model, p, h->order, h->refs ? 0 : h->owner); break;
	case 1: model_page_put(&model, p, h->order); break;
	default: model_free(&model, p, h->order); break;
	}
}

/* A deliberately bad free (or one that may be: the model knows which). */
static void do_bad_free(void)
{
	uint64_t pfn = 0;
	bool held = pick_held(&pfn);
	const struct model_page *h = held ? &model.page[pfn] : NULL;
	char *p = held ? model_page_ptr(&model, pfn) : NULL;
	switch (rnd() % 8) {
	case 0: /* unaligned */
		if (held)
			model_free(&model, p + 1 + rnd() % 4095, h->order);
		break;
	case 1: /* wrong order */
		if (held)
			model_free_owned(&model, p, (h->order + 1 + (unsigned)(rnd() % LMM_MAX_ORDER)) % (LMM_MAX_ORDER + 1),
					 h->owner);
		break;
	case 2: /* a tail */
		if (held && h->order)
			model_free(&model, p + 4096 * (1 + rnd() % ((1ull << h->order) - 1)), 0);
		break;
	case 3: /* wrong owner */
		if (held && !h->refs)
			model_free_owned(&model, p, 0, (uint16_t)(h->owner + 1 + rnd() % 3));
		break;
	case 4: /* double free (the first may be a valid one) */
		if (held) {
			unsigned o = h->order;
			uint16_t w = h->owner;
			model_free_owned(&model, p, o, w);
			model_free_owned(&model, p, o, w);
		}
		break;
	case 5: /* outside the arena, or unmanaged */
		model_free(&model, (char *)model_page_ptr(&model, model.npages - 1) + 4096 * (1 + rnd() % 4), 0);
		break;
	default: /* any page: free, cached, pool, reserved, hole, head or tail */
		model_free(&model, model_page_ptr(&model, rnd() % model.npages), (unsigned)(rnd() % 3));
		break;
	}
}

static void do_ownership(void)
{
	uint64_t pfn;
	if (!pick_held(&pfn)) {
		model_page_get(&model, model_page_ptr(&model, rnd() % model.npages));
		return;
	}
	const struct model_page *h = &model.page[pfn];
	void *p = model_page_ptr(&model, pfn);
	switch (rnd() % 5) {
	case 0:
	case 1: model_page_get(&model, p); break;
	case 2: model_transfer(&model, p, rnd() % 4 ? h->owner : pick_owner(), pick_owner()); break;
	case 3: model_unexclusive(&model, p, rnd() % 4 ? h->owner : pick_owner()); break;
	default: model_page_get(&model, model_page_ptr(&model, rnd() % model.npages)); break;
	}
}

static void do_pool(void)
{
	switch (rnd() % 6) {
	case 0:
	case 1: {
		uint32_t target = (uint32_t)(rnd() % 96), low = (uint32_t)(rnd() % 100);
		if (low == 99)
			low = LMM_POOL_AUTO;
		model_pool_set_marks(&model, low, target); /* low > target: refused; AUTO: target/2 */
		break;
	}
	case 2:
	case 3: model_pool_refill(&model); break;
	case 4: model_pool_reset_low_water(&model); break;
	default: model_drain(&model); break;
	}
}

static void do_scribble(void)
{
	model_scribble(&model, rnd() % model.npages, (unsigned)(rnd() % 4096));
}

static void one_op(bool filling)
{
	uint64_t r = rnd() % 1000;
	ctx_ops[host_in_interrupt() ? 2 : lmm_port_context() == LMM_CTX_NORMAL ? 0 : 1]++;
	if (r < 20)
		do_bad_free();
	else if (r < 60)
		do_ownership();
	else if (r < 70)
		do_pool();
	else if (r < 75)
		do_scribble();
	else if (model.nlive && r < (filling ? 380u : 700u))
		do_free();
	else
		do_alloc();
	model_compare(&model);
}

static bool filling_now;

static void irq_entry(void)
{
	unsigned n = handler_ops;
	handler_ops = 0;
	while (n--)
		one_op(filling_now);
}

static void model_test(void)
{
	const char *seed = getenv("SEED"), *ops_env = getenv("OPS"), *poison_env = getenv("POISON");
	uint64_t seed_v = seed ? strtoull(seed, NULL, 0) : 20261121;
	uint64_t ops = ops_env ? strtoull(ops_env, NULL, 0) : 1000000;
	bool poison = poison_env ? atoi(poison_env) != 0 : true;
	rng_state = splitmix64(seed_v);
	if (rng_state == 0) /* xorshift's one fixed point */
		rng_state = 0x9E3779B97F4A7C15ull;
	fprintf(stderr, "model: seed %llu, %llu operations, poison %d\n", (unsigned long long)seed_v,
		(unsigned long long)ops, poison);

	/* A few MiB with holes, unaligned edges and reservations. */
	uint64_t bytes = 12 * MiB;
	struct range use[] = { { 0, 3 * MiB }, { 3 * MiB + 12 * 1024 + 5, 3 * MiB - 7 }, { 7 * MiB, 4 * MiB },
			       { 11 * MiB + 4096, 512 * 1024 } };
	struct range res[] = { { 0, 1 * MiB }, { 2 * MiB + 100, 9000 }, { 8 * MiB, 4096 } };
	struct lmm_config cfg = { .pool_target = 64, .pool_low = 32, .pool_slice = 2, .cache_batch = 8,
				  .cache_high = 24, .flags = LMM_CFG_QUIET | (poison ? LMM_CFG_POISON : 0) };
	ASSERT(mm_setup(&mm, bytes, use, 4, res, 3, &cfg) == LMM_OK, "init failed");
	model_init(&model, &mm, bytes, NULL);
	model.poison = poison;
	host_irq_install(IRQ_SIGNO, irq_entry);

	lmm_irqflags_t saved = 0;
	bool irqs_off = false;
	uint64_t n;
	for (n = 0; n < ops && model.divergences == 0; n++) {
		/* Alternate filling and draining phases so both ends of occupancy are visited. */
		filling_now = (n / 50000) % 2 == 0;
		uint64_t r = rnd() % 1000;
		if (r < 4 && !irqs_off) {
			saved = host_irq_save();
			irqs_off = true;
		} else if (r < 12 && irqs_off) {
			irqs_off = false;
			host_irq_restore(saved); /* delivers a pending interrupt */
		} else if (r < 18) {
			handler_ops = 1 + (unsigned)(rnd() % 8);
			raise(IRQ_SIGNO); /* now, or at the restore when interrupts are off */
		} else {
			one_op(filling_now);
		}
		if (n % CHECK_EVERY == CHECK_EVERY - 1 && !irqs_off)
			model_check(&model);
	}
	if (irqs_off)
		host_irq_restore(saved);
	model_check(&model);
	model_release_all(&model);
	model_drain(&model);
	model_pool_set_marks(&model, 0, 0);
	model_check(&model);
	struct lmm_stats s = mm_stats(&mm);
	CHECK(model.divergences == 0, "%llu divergences (first ones on stderr), seed %llu",
	      (unsigned long long)model.divergences, (unsigned long long)seed_v);
	CHECK(s.allocated == 0 && s.pool == 0 && s.cached == 0, "%llu allocated, %llu pool, %llu cached at the end",
	      (unsigned long long)s.allocated, (unsigned long long)s.pool, (unsigned long long)s.cached);
	CHECK(s.reserve_to[LMM_CLASS_KERNEL] == 0 && s.reserve_to[LMM_CLASS_NOWAIT] == 0, "reserve to KERNEL/NOWAIT");
	CHECK(ctx_ops[1] && ctx_ops[2], "contexts not all visited: %llu irqs-off, %llu handler ops",
	      (unsigned long long)ctx_ops[1], (unsigned long long)ctx_ops[2]);
	fprintf(stderr,
		"model: %llu ops (%llu normal, %llu irqs off, %llu in handlers), %llu refused, %llu alloc failures, "
		"%llu pool hits, %llu empty-pool failures, %llu refills, %llu poison errors\n",
		(unsigned long long)n, (unsigned long long)ctx_ops[0], (unsigned long long)ctx_ops[1],
		(unsigned long long)ctx_ops[2], (unsigned long long)s.refused_total,
		(unsigned long long)s.alloc_failures, (unsigned long long)s.pool_hits,
		(unsigned long long)s.pool_empty_failures, (unsigned long long)s.pool_refills,
		(unsigned long long)s.poison_errors);
	host_irq_uninstall(IRQ_SIGNO);
	model_destroy(&model);
}

int main(void)
{
	TEST(model_test);
	host_arena_unmap();
	return testlib_exit();
}

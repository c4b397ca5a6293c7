/*
 * example_main.c - the pretend kernel's boot and self-test: brings mm/ up from a small
 * e820-style map (mm/README.md section 4) and goes through every public entry point of
 * <labyrinth/mm.h>, one "PASS embed-STEP" / "FAIL embed-STEP: why" line per step
 * ("embed-inline-STEP" when built with the hooks inline).
 */
#include <stdio.h>
#include <string.h>

#include "example.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

static struct lmm mm;

/* ---- Steps ------------------------------------------------------------------------------ */

static const char *step_why;
static int failures;

/* "embed-", or "embed-inline-" when the port's hooks are inline in mm/ (example_hooks.h). */
#ifdef LMM_PORT_INLINE_HEADER
#define STEP_PREFIX "embed-inline-"
#else
#define STEP_PREFIX "embed-"
#endif

#define CHECK(cond, why)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			step_why = (why);                                                      \
			return;                                                                \
		}                                                                              \
	} while (0)

static void run(const char *name, void (*step)(void))
{
	step_why = NULL;
	step();
	if (step_why) {
		printf("FAIL " STEP_PREFIX "%s: %s (last log line: '%s')\n", name, step_why, console_last());
		failures++;
	} else {
		printf("PASS " STEP_PREFIX "%s\n", name);
	}
	fflush(stdout);
}

static struct lmm_stats stats(void)
{
	struct lmm_stats s;
	lmm_get_stats(&mm, &s);
	return s;
}

static int conserved(void)
{
	struct lmm_stats s = stats();
	return s.free + s.allocated + s.pool + s.cached + s.reserved == s.managed &&
	       s.available == s.free + s.pool + s.cached;
}

/* ---- Boot: the memory map, reservations, init --------------------------------------------- */

struct map_entry {
	uint64_t base, len;
	uint32_t type; /* 1 = usable, as in e820 */
};

static const struct map_entry memory_map[] = {
	{ 0, 0x9fc00, 1 },                  /* low memory, ends mid-page: mm/ trims it   */
	{ 0x9fc00, 0x60400, 2 },            /* EBDA, video, BIOS                         */
	{ 1 * MiB, RAM_SIZE - 1 * MiB, 1 }, /* the rest of RAM                           */
	{ 5 * MiB, 4 * KiB, 2 },            /* a firmware page inside usable RAM         */
};
#define KERNEL_BASE (1 * MiB)
#define KERNEL_SIZE (512 * KiB)

static void boot(void)
{
	struct lmm_config cfg = { .pool_target = 32, .pool_low = 8, .flags = LMM_CFG_POISON };
	lmm_begin(&mm, &cfg);
	for (unsigned i = 0; i < sizeof(memory_map) / sizeof(memory_map[0]); i++) {
		const struct map_entry *e = &memory_map[i];
		enum lmm_status st = e->type == 1 ? lmm_add_range(&mm, e->base, e->len)
						  : lmm_reserve_range(&mm, e->base, e->len);
		CHECK(st == LMM_OK, "the memory map was refused");
	}
	CHECK(lmm_reserve_range(&mm, 0, 1 * MiB) == LMM_OK, "first MiB not reserved");
	CHECK(lmm_reserve_range(&mm, KERNEL_BASE, KERNEL_SIZE) == LMM_OK, "kernel not reserved");
	CHECK(lmm_add_range(&mm, 0x1234, 100) == LMM_ERR_EMPTY_RANGE, "a sub-page range was accepted");

	/* 16 bytes per frame, whole pages: (0x9f000 + 7 MiB) / 4 KiB frames. */
	uint64_t frames = (0x9f000 + RAM_SIZE - 1 * MiB) / 4096;
	CHECK(lmm_metadata_bytes(&mm) == (frames * 16 + 4095) / 4096 * 4096, "metadata estimate is not 16 B/frame");
	CHECK(lmm_init(&mm) == LMM_OK, "lmm_init failed");
	CHECK(lmm_add_range(&mm, 0, 4096) == LMM_ERR_STATE, "add_range accepted after init");
	lmm_set_default(&mm);
	CHECK(lmm_default() == &mm, "lmm_default is not the allocator just set");

	struct lmm_stats s = stats();
	CHECK(s.managed == frames && s.regions == 2, "wrong number of frames or regions");
	CHECK(s.pool == 32 && s.pool_target == 32 && s.pool_low == 8, "pool marks from the config not applied");
	CHECK(conserved() && lmm_check(&mm) == 0, "allocator inconsistent after init");
	CHECK(strcmp(lmm_status_str(LMM_ERR_ALREADY_FREE), "block already free (double free)") == 0,
	      "lmm_status_str");
}

/* ---- Plain allocation: every order, alignment, translation, zeroing, bad frees -------------- */

static void alloc_and_free(void)
{
	for (unsigned order = 0; order <= 8; order++) {
		unsigned char *p = lmm_alloc_pages(&mm, order, LMM_GFP_KERNEL);
		CHECK(p, "allocation failed");
		uint64_t phys = lmm_virt_to_phys(&mm, p);
		CHECK(phys == (uint64_t)(p - ram), "virt_to_phys disagrees with the direct map");
		CHECK(phys % (4096ull << order) == 0, "block not naturally aligned");
		CHECK(lmm_phys_to_virt(&mm, phys + 123) == p + 123, "phys_to_virt round trip");
		CHECK(phys >= 1 * MiB + KERNEL_SIZE || phys + (4096ull << order) <= 1 * MiB, "reserved memory handed out");
		CHECK(phys != 5 * MiB, "the firmware page was handed out");
		memset(p, 0xab, 4096u << order);
		CHECK(lmm_free_pages(&mm, p, order) == LMM_OK, "free refused");
		/* Freed again: free (or merged into a bigger free block, or kept in the pool). */
		enum lmm_status again = lmm_free_pages(&mm, p, order);
		CHECK(again == LMM_ERR_ALREADY_FREE || again == LMM_ERR_NOT_HEAD,
		      "double free not refused");
	}
	unsigned char *z = lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL | LMM_GFP_ZERO);
	CHECK(z, "zeroed allocation failed");
	for (unsigned i = 0; i < 8192; i++)
		CHECK(z[i] == 0, "LMM_GFP_ZERO block not zero");
	CHECK(lmm_free_pages(&mm, z, 0) == LMM_ERR_WRONG_ORDER, "free with the wrong order accepted");
	CHECK(lmm_free_pages(&mm, z + 4096, 0) == LMM_ERR_NOT_HEAD, "free of a block's second page accepted");
	CHECK(lmm_free_pages(&mm, z + 1, 1) == LMM_ERR_NOT_ALIGNED, "unaligned free accepted");
	CHECK(lmm_free_pages(&mm, ram, 0) == LMM_ERR_RESERVED, "free of a reserved page accepted");
	enum lmm_status outside = lmm_free_pages(&mm, &mm, 0);
	CHECK(outside == LMM_ERR_NOT_MANAGED || outside == LMM_ERR_NOT_ALIGNED, "free of unmanaged memory accepted");
	CHECK(lmm_free_pages(&mm, z, 1) == LMM_OK, "free refused");
	CHECK(lmm_free_pages(&mm, NULL, 0) == LMM_OK, "free(NULL) is not a no-op");
	CHECK(!lmm_alloc_pages(&mm, LMM_MAX_ORDER + 1, LMM_GFP_KERNEL), "order above LMM_MAX_ORDER allocated");
	CHECK(console_saw("order above LMM_MAX_ORDER") && console_reports() > 0, "refusal not reported");
	CHECK(stats().allocated == 0 && conserved() && lmm_check(&mm) == 0, "allocator inconsistent");
}

/* ---- Exclusive pages: _owned variants, owner, transfer, unexclusive ----------------------- */

static void owned_pages(void)
{
	set_current_task(7);
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE);
	CHECK(p && lmm_page_owner(&mm, p) == 7, "exclusive page not owned by the current task");
	set_current_task(8);
	CHECK(lmm_free_pages(&mm, p, 0) == LMM_ERR_WRONG_OWNER, "another task freed an exclusive page");
	CHECK(lmm_free_pages_owned(&mm, p, 0, 7) == LMM_OK, "owner could not free by name");

	void *q = lmm_alloc_pages_owned(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE, 42);
	CHECK(q && lmm_page_owner(&mm, q) == 42, "_owned allocation not owned by 42");
	CHECK(!lmm_alloc_pages_owned(&mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE, 0), "owner 0 accepted");
	CHECK(!lmm_alloc_pages(&mm, 1, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE), "exclusive order-1 block allocated");
	CHECK(lmm_page_get(&mm, q) == LMM_ERR_EXCLUSIVE, "second reference to an exclusive page");
	CHECK(lmm_page_transfer(&mm, q, 41, 43) == LMM_ERR_WRONG_OWNER, "transfer by a non-owner");
	CHECK(lmm_page_transfer(&mm, q, 42, 43) == LMM_OK && lmm_page_owner(&mm, q) == 43, "transfer failed");
	CHECK(lmm_page_unexclusive(&mm, q, 42) == LMM_ERR_WRONG_OWNER, "unexclusive by the old owner");
	CHECK(lmm_page_unexclusive(&mm, q, 43) == LMM_OK && lmm_page_owner(&mm, q) == 0, "unexclusive failed");
	CHECK(lmm_page_transfer(&mm, q, 43, 44) == LMM_ERR_NOT_EXCLUSIVE, "transfer of a shared page");

	/* Now an ordinary page with one reference: get/put count. */
	CHECK(lmm_page_get(&mm, q) == LMM_OK, "get refused");
	CHECK(lmm_page_put(&mm, q, 0) == LMM_OK && stats().allocated == 1, "page freed with a reference left");
	CHECK(lmm_page_put(&mm, q, 0) == LMM_OK && stats().allocated == 0, "last put did not free");
	CHECK(lmm_page_put(&mm, q, 0) != LMM_OK, "put after the last reference accepted");
	set_current_task(1);
	CHECK(conserved() && lmm_check(&mm) == 0, "allocator inconsistent");
}

/* ---- Interrupt context: the pool, the labyrinth_* routine, a page handed to a task ----------- */

static void interrupt_context(void)
{
	cpu_enter_interrupt();
	void *k = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *a = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
	void *r = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	uint16_t a_owner = a ? lmm_page_owner(&mm, a) : 0, r_owner = r ? lmm_page_owner(&mm, r) : 0;
	enum lmm_status handed = a ? lmm_page_transfer(&mm, a, a_owner, 1) : LMM_ERR_NOT_MANAGED;
	enum lmm_status r_freed = labyrinth_free_page_atomic_exclusive(r);
	uint32_t refilled = lmm_pool_refill(&mm);
	enum lmm_status marks = lmm_pool_set_marks(&mm, 4, 16);
	cpu_leave_interrupt();

	CHECK(!k && console_saw("not allowed in this context"), "KERNEL allocation in a handler not refused");
	CHECK(a && a_owner == (0x8000u | 1), "handler's exclusive page not owned by the handler");
	CHECK(r && r_owner == (0x8000u | 1), "labyrinth_* page not owned by the handler");
	CHECK(r_freed == LMM_OK, "handler could not free its labyrinth_* page");
	enum lmm_status again = labyrinth_free_page_atomic_exclusive(r);
	CHECK(again == LMM_ERR_ALREADY_FREE || again == LMM_ERR_NOT_HEAD,
	      "double free of a labyrinth_* page accepted");
	CHECK(refilled == 0 && marks == LMM_ERR_BAD_CONTEXT, "pool refill or marks accepted in a handler");
	CHECK(handed == LMM_OK && lmm_page_owner(&mm, a) == 1, "handler could not hand its page to task 1");
	CHECK(lmm_free_pages(&mm, a, 0) == LMM_OK, "task 1 could not free the page handed to it");
	CHECK(stats().pool_hits >= 2, "ATOMIC order-0 allocations did not come from the pool");
	CHECK(cpu_irqs_enabled(), "interrupts left disabled");
	CHECK(conserved() && lmm_check(&mm) == 0, "allocator inconsistent");
}

/* ---- A general kalloc(): KERNEL with interrupts off; a leak check on stats.available --------- */

static void kalloc_irqs_off(void)
{
	struct lmm_stats before = stats();
	/* Boot code and code under an irqsave lock call kalloc() with interrupts off:
	 * LMM_GFP_KERNEL is refused only inside handlers (mm/README.md, section 6). */
	uintptr_t st = cpu_irq_save();
	enum lmm_context ctx = lmm_port_context();
	void *p = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL);
	void *q = lmm_alloc_pages(&mm, 2, LMM_GFP_KERNEL);
	enum lmm_status fp = lmm_free_pages(&mm, p, 0), fq = lmm_free_pages(&mm, q, 2);
	cpu_irq_restore(st);
	CHECK(ctx == LMM_CTX_IRQS_OFF, "the port did not say interrupts are off");
	CHECK(p && q && fp == LMM_OK && fq == LMM_OK, "KERNEL refused with interrupts off (outside a handler)");

	/* Drain the reserve from a handler and give it back: pool and free move, available not. */
	static void *pages[64];
	unsigned n = 0;
	cpu_enter_interrupt();
	while (n < 20 && (pages[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL)
		n++;
	while (n)
		lmm_free_pages(&mm, pages[--n], 0);
	cpu_leave_interrupt();
	void *r = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL); /* may top the reserve up */
	lmm_free_pages(&mm, r, 0);
	struct lmm_stats after = stats();
	CHECK(after.available == before.available && after.allocated == before.allocated,
	      "stats.available moved although nothing is held");
	CHECK(conserved() && lmm_check(&mm) == 0, "allocator inconsistent");
}

/* ---- The pool: marks, drain from a handler, refill from normal context -------------------- */

static void pool(void)
{
	CHECK(lmm_pool_set_marks(&mm, 20, 10) == LMM_ERR_BAD_MARKS, "low mark above target accepted");
	CHECK(lmm_pool_set_marks(&mm, 8, 24) == LMM_OK, "set_marks refused");
	lmm_pool_refill(&mm);
	CHECK(stats().pool == 24 && !lmm_pool_needs_refill(&mm), "pool not refilled to its new target");
	lmm_pool_reset_low_water(&mm);

	/* Use up the free lists from normal code: the pool is untouched by KERNEL callers. */
	static void *pages[RAM_SIZE / 4096];
	unsigned n = 0;
	while ((pages[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_KERNEL)) != NULL)
		n++;
	CHECK(stats().free == 0 && stats().pool == 24, "KERNEL allocations ate into the pool");

	/* A handler still gets pages, from the reserve, down to empty and then NULL. */
	cpu_enter_interrupt();
	unsigned got = 0;
	while ((pages[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL)
		n++, got++;
	cpu_leave_interrupt();
	struct lmm_stats s = stats();
	CHECK(got == 24 && s.pool == 0 && s.pool_low_water == 0, "the reserve did not serve the handler");
	CHECK(s.pool_empty_failures >= 1 && s.reserve_held == 24, "empty pool not reported");
	/* The reserve's frames are out, not gone: nothing to refill. */
	CHECK(!lmm_pool_needs_refill(&mm), "a reserve whose frames are merely held asks for a refill");

	/* Freed (with interrupts on or off alike), they come back by themselves. */
	while (n)
		CHECK(lmm_free_pages(&mm, pages[--n], 0) == LMM_OK, "free refused");
	s = stats();
	CHECK(s.pool == 24 && s.reserve_held == 0 && s.allocated == 0, "reserve pages did not return on free");
	CHECK(lmm_pool_refill(&mm) == 0, "a full reserve was refilled");
	CHECK(conserved() && lmm_check(&mm) == 0, "allocator inconsistent");
}

/* ---- Debugging: poison, stats, dump, check ------------------------------------------------ */

static void debugging(void)
{
	/* Write into a block after freeing it (LMM_CFG_POISON is on): whoever gets that page
	 * next is warned.  Take every page to be sure to get it. */
	uint64_t *p = lmm_alloc_pages(&mm, 3, LMM_GFP_KERNEL);
	CHECK(p, "allocation failed");
	CHECK(lmm_free_pages(&mm, p, 3) == LMM_OK, "free refused");
	p[100] = 0xdead; /* use after free */
	static void *pages[RAM_SIZE / 4096];
	unsigned n = 0;
	while ((pages[n] = lmm_alloc_pages(&mm, 0, LMM_GFP_ATOMIC)) != NULL)
		n++;
	CHECK(stats().poison_errors == 1 && console_saw("written after its free"), "use after free not detected");
	while (n)
		CHECK(lmm_free_pages(&mm, pages[--n], 0) == LMM_OK, "free refused");
	lmm_pool_refill(&mm);

	unsigned before = console_lines();
	lmm_dump(&mm);
	CHECK(console_lines() >= before + 5 && console_saw("free blocks by order"), "lmm_dump logged nothing useful");
	struct lmm_stats s = stats();
	CHECK(s.refused_total >= 10 && s.alloc_failures > 0, "refusal or failure counters not kept");
	CHECK(s.alloc_calls >= s.alloc_failures + 100 && s.free_calls >= 100,
	      "lmm_stats.alloc_calls / free_calls not counted");
	CHECK(s.metadata_bytes == (s.managed * 16 + 4095) / 4096 * 4096, "metadata is not 16 B/frame");
	CHECK(s.reserved >= 256 + 2 + s.metadata_bytes / 4096, "first MiB, kernel or metadata not reserved");
	CHECK(lmm_check(&mm) == 0 && conserved() && s.allocated == 0, "lmm_check found a problem");
}

int main(void)
{
	run("boot", boot);
	if (failures)
		return 1;
	run("alloc-free", alloc_and_free);
	run("owned-pages", owned_pages);
	run("interrupt-context", interrupt_context);
	run("kalloc-irqs-off", kalloc_irqs_off);
	run("pool", pool);
	run("debugging", debugging);
	return failures ? 1 : 0;
}

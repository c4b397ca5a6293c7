/*
 * stress.c - the timer-interrupt stress test of the atomic exclusive path.
 *
 * Two contexts fight over one allocator on one CPU:
 *   - the PIT handler (interrupts off, never re-entered) takes atomic_per_tick pages per
 *     tick with labyrinth_void_alloc_page_gfp_atomic_exclusive(), stamps each with a
 *     signature, keeps them in a bounded ring and frees the oldest after checking its
 *     signature; every few ticks it hands a page over to the main loop instead;
 *   - the main loop churns KERNEL allocations of random orders, fills and verifies
 *     them, refills the pool, and repeatedly drives normal memory to exhaustion and
 *     holds it there for a while, so the handler must live on the emergency pool.
 * Both sides also break the rules on purpose (a free by the wrong owner, a second
 * reference to an exclusive page, a double free, a KERNEL allocation from the handler)
 * and count how many of those mm/ caught.  At the end everything is returned and the
 * allocator must be exactly where it started.
 *
 * Data shared with the handler: the main loop only touches it with interrupts off,
 * except the handover mailbox, a single-producer single-consumer ring whose indices
 * are published with release/acquire atomics.
 */
#include <labyrinth/arch.h>
#include <labyrinth/cmdline.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>

#include "tests.h"

#define PAGE 4096ul
#define SIG_MAGIC 0x5354524553534947ull /* "STRESSIG" */
#define RING_SLOTS 64      /* pages the handler keeps at once                     */
#define MAILBOX_SLOTS 32   /* handler -> main loop handovers in flight            */
#define HANDOVER_EVERY 7   /* ticks between handovers                            */
#define VIOLATE_EVERY 101  /* ticks between deliberate violations in the handler  */
#define HOLD_TICKS_MIN 20  /* ticks the main loop holds memory exhausted          */

static const uint16_t IRQ_OWNER = KMM_OWNER(0, 1), MAIN_OWNER = KMM_OWNER(0, 0);

struct sig {
	uint64_t magic, phys, tick, owner;
};

/* Everything the handler touches. */
static struct {
	volatile uint64_t ticks, target_ticks;
	volatile bool running;
	void *ring[RING_SLOTS];
	unsigned ring_head, ring_len;
	uint64_t allocs, frees, fails, unjustified_fails, mismatches, bad_frees;
	uint64_t max_alloc_cycles, max_free_cycles, sum_alloc_cycles, sum_free_cycles;
	uint64_t handovers, handover_drops;
	uint64_t violations_tried, violations_caught;
	void *volatile main_page; /* an exclusive page owned by the main loop, for violations */
} irq;

static struct {
	void *slot[MAILBOX_SLOTS];
	unsigned head, tail; /* producer: handler writes head; consumer: main writes tail */
} mailbox;

static struct {
	uint64_t allocs, exhaustions, fills_verified, mismatches, refills, received;
	uint64_t violations_tried, violations_caught, held;
	uint64_t rng;
} mainl;

static uint64_t rnd(void)
{
	mainl.rng ^= mainl.rng << 13;
	mainl.rng ^= mainl.rng >> 7;
	mainl.rng ^= mainl.rng << 17;
	return mainl.rng;
}

static void stamp(void *page, uint64_t tick, uint16_t owner)
{
	struct sig *s = page;
	uint64_t phys = lmm_virt_to_phys(&kernel_mm, page);
	*s = (struct sig){ SIG_MAGIC, phys, tick, owner };
	((uint64_t *)page)[PAGE / 8 - 1] = phys ^ tick;
}

static bool stamp_ok(const void *page)
{
	const struct sig *s = page;
	return s->magic == SIG_MAGIC && s->phys == lmm_virt_to_phys(&kernel_mm, page) &&
	       ((const uint64_t *)page)[PAGE / 8 - 1] == (s->phys ^ s->tick);
}

static void note_violation(uint64_t *tried, uint64_t *caught, enum lmm_status st)
{
	(*tried)++;
	if (st != LMM_OK)
		(*caught)++;
}

/* ---- The handler ------------------------------------------------------------------- */

static void irq_free_oldest(void)
{
	void *p = irq.ring[irq.ring_head];
	irq.ring_head = (irq.ring_head + 1) % RING_SLOTS;
	irq.ring_len--;
	if (!stamp_ok(p))
		irq.mismatches++;
	uint64_t t0 = arch_read_tsc();
	enum lmm_status st = labyrinth_free_page_atomic_exclusive(p);
	uint64_t dt = arch_read_tsc() - t0;
	if (dt > irq.max_free_cycles)
		irq.max_free_cycles = dt;
	irq.sum_free_cycles += dt;
	if (st == LMM_OK)
		irq.frees++;
	else
		irq.bad_frees++;
}

static void irq_handover(void)
{
	if (irq.ring_len == 0)
		return;
	unsigned head = mailbox.head;
	if (head - __atomic_load_n(&mailbox.tail, __ATOMIC_ACQUIRE) == MAILBOX_SLOTS) {
		irq.handover_drops++;
		return;
	}
	void *p = irq.ring[irq.ring_head];
	irq.ring_head = (irq.ring_head + 1) % RING_SLOTS;
	irq.ring_len--;
	if (lmm_page_transfer(&kernel_mm, p, IRQ_OWNER, MAIN_OWNER) != LMM_OK) {
		irq.bad_frees++;
		return;
	}
	mailbox.slot[head % MAILBOX_SLOTS] = p;
	__atomic_store_n(&mailbox.head, head + 1, __ATOMIC_RELEASE);
	irq.handovers++;
}

/* Break the rules from interrupt context; each attempt must be refused. */
static void irq_violations(void)
{
	void *mine = irq.main_page;
	if (mine)
		note_violation(&irq.violations_tried, &irq.violations_caught,
			       lmm_free_pages(&kernel_mm, mine, 0)); /* not the owner */
	void *k = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL); /* sleeping path in a handler */
	irq.violations_tried++;
	if (!k)
		irq.violations_caught++;
	else
		lmm_free_pages(&kernel_mm, k, 0);
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	if (p) {
		stamp(p, irq.ticks, IRQ_OWNER);
		labyrinth_free_page_atomic_exclusive(p);
		note_violation(&irq.violations_tried, &irq.violations_caught,
			       labyrinth_free_page_atomic_exclusive(p)); /* double free */
	}
}

static void stress_tick(unsigned line, struct arch_regs *regs)
{
	(void)line;
	(void)regs;
	if (!irq.running)
		return;
	uint64_t tick = ++irq.ticks;

	for (uint64_t i = 0; i < kopts.atomic_per_tick; i++) {
		if (irq.ring_len == RING_SLOTS)
			irq_free_oldest();
		uint64_t t0 = arch_read_tsc();
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		uint64_t dt = arch_read_tsc() - t0;
		if (dt > irq.max_alloc_cycles)
			irq.max_alloc_cycles = dt;
		irq.sum_alloc_cycles += dt;
		if (!p) {
			struct lmm_stats s;
			lmm_get_stats(&kernel_mm, &s);
			irq.fails++;
			struct lmm_cpu_stats cs;
			lmm_get_cpu_stats(&kernel_mm, arch_cpu_id(), &cs);
			/* Justified only if nothing this CPU may take was left: lists, shared
			 * pool (pool minus other CPUs' slices: none run here), its cache. */
			if (s.free || s.pool || cs.cache_pages)
				irq.unjustified_fails++;
			break;
		}
		irq.allocs++;
		stamp(p, tick, IRQ_OWNER);
		irq.ring[(irq.ring_head + irq.ring_len) % RING_SLOTS] = p;
		irq.ring_len++;
	}
	/* Free some each tick too, so the ring turns over even when per_tick is small. */
	if (irq.ring_len > RING_SLOTS / 2)
		irq_free_oldest();
	if (tick % HANDOVER_EVERY == 0)
		irq_handover();
	if (tick % VIOLATE_EVERY == 0)
		irq_violations();
	if (tick >= irq.target_ticks)
		irq.running = false;
}

/* ---- The main loop -------------------------------------------------------------------- */

/* KERNEL blocks the main loop holds, chained through their first page. */
struct held {
	struct held *next;
	uint64_t order, phys, check;
};
static struct held *held_list;

static void held_push(void *p, unsigned order)
{
	struct held *h = p;
	h->next = held_list;
	h->order = order;
	h->phys = lmm_virt_to_phys(&kernel_mm, p);
	h->check = h->phys ^ SIG_MAGIC ^ order;
	/* Fill the first word of every page of the block, checked on free. */
	for (unsigned k = 1; k < (1u << order); k++)
		*(uint64_t *)((char *)p + k * PAGE) = h->phys + k;
	held_list = h;
	mainl.held++;
}

static void held_free_one(void)
{
	struct held *h = held_list;
	held_list = h->next;
	bool ok = h->phys == lmm_virt_to_phys(&kernel_mm, h) && h->check == (h->phys ^ SIG_MAGIC ^ h->order);
	for (unsigned k = 1; ok && k < (1u << h->order); k++)
		ok = *(uint64_t *)((char *)h + k * PAGE) == h->phys + k;
	if (ok)
		mainl.fills_verified++;
	else
		mainl.mismatches++;
	lmm_free_pages(&kernel_mm, h, (unsigned)h->order);
	mainl.held--;
}

static unsigned random_order(void)
{
	unsigned o = (unsigned)__builtin_ctzll(rnd() | (1ull << 5)); /* geometric, 0..5 */
	return o;
}

/* Take handed-over pages: break the rules with each, then free it properly. */
static void drain_mailbox(void)
{
	unsigned tail = mailbox.tail;
	while (tail != __atomic_load_n(&mailbox.head, __ATOMIC_ACQUIRE)) {
		void *p = mailbox.slot[tail % MAILBOX_SLOTS];
		if (!stamp_ok(p))
			mainl.mismatches++;
		note_violation(&mainl.violations_tried, &mainl.violations_caught,
			       lmm_free_pages_owned(&kernel_mm, p, 0, IRQ_OWNER)); /* old owner */
		note_violation(&mainl.violations_tried, &mainl.violations_caught,
			       lmm_page_get(&kernel_mm, p)); /* share an exclusive page */
		if (lmm_free_pages(&kernel_mm, p, 0) != LMM_OK) /* the new owner: fine */
			mainl.mismatches++;
		note_violation(&mainl.violations_tried, &mainl.violations_caught,
			       lmm_free_pages(&kernel_mm, p, 0)); /* double free */
		mainl.received++;
		tail++;
		__atomic_store_n(&mailbox.tail, tail, __ATOMIC_RELEASE);
	}
}

static void publish_main_page(void *p)
{
	arch_irqflags_t f = arch_irq_save();
	irq.main_page = p;
	arch_irq_restore(f);
}

/*
 * One step of the churn: mostly allocate (a random order, filled) until KERNEL says
 * no, then hold memory exhausted for a while so the handler runs on the pool, then
 * give back a random share.
 */
static void churn(uint64_t *hold_until)
{
	if (*hold_until) {
		if (irq.ticks < *hold_until)
			return;
		*hold_until = 0;
		for (uint64_t n = mainl.held / 2 + 1; n && held_list; n--)
			held_free_one();
		return;
	}
	unsigned order = random_order();
	void *p = lmm_alloc_pages(&kernel_mm, order, LMM_GFP_KERNEL);
	if (p) {
		mainl.allocs++;
		held_push(p, order);
	} else if (order == 0) {
		mainl.exhaustions++;
		*hold_until = irq.ticks + HOLD_TICKS_MIN + rnd() % HOLD_TICKS_MIN;
	}
	if (held_list && rnd() % 4 == 0)
		held_free_one();
}

static void progress(uint64_t second)
{
	struct lmm_stats s;
	lmm_get_stats(&kernel_mm, &s);
	kprintf("stress: %3lus ticks %7lu  atomic alloc %8lu free %8lu fail %5lu  pool %4lu/%u low %4u  "
		"kernel held %6lu exhaustions %4lu\n",
		second, irq.ticks, irq.allocs, irq.frees, irq.fails, s.pool, s.pool_target, s.pool_low_water,
		mainl.held, mainl.exhaustions);
}

static void teardown(void)
{
	arch_irq_mask(0);
	irq.running = false;
	while (irq.ring_len) {
		void *p = irq.ring[irq.ring_head];
		irq.ring_head = (irq.ring_head + 1) % RING_SLOTS;
		irq.ring_len--;
		if (!stamp_ok(p))
			irq.mismatches++;
		/* The test owns the handler's pages now; it frees them under the handler's tag. */
		if (lmm_free_pages_owned(&kernel_mm, p, 0, IRQ_OWNER) == LMM_OK)
			irq.frees++;
		else
			irq.bad_frees++;
	}
	drain_mailbox();
	while (held_list)
		held_free_one();
	void *mine = irq.main_page;
	publish_main_page(NULL);
	lmm_free_pages(&kernel_mm, mine, 0);
	lmm_pool_refill(&kernel_mm);
}

bool kernel_run_stress(void)
{
	struct lmm_stats start, end;
	uint64_t hz = kopts.pit_hz;

	irq.target_ticks = kopts.stress_ticks ? kopts.stress_ticks : kopts.stress_seconds * hz;
	mainl.rng = kopts.seed * 0x9E3779B97F4A7C15ull | 1;
	lmm_pool_refill(&kernel_mm);
	lmm_pool_reset_low_water(&kernel_mm);
	lmm_get_stats(&kernel_mm, &start);
	kprintf("stress: %lu ticks at %lu Hz, %lu atomic pages per tick, seed %lu, pool %lu pages\n",
		irq.target_ticks, hz, kopts.atomic_per_tick, kopts.seed, start.pool);

	publish_main_page(lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE));
	arch_pit_init((uint32_t)hz);
	if (!arch_irq_register(0, stress_tick)) {
		kprintf("stress: IRQ 0 already taken\n");
		return false;
	}
	uint64_t tsc_hz = arch_tsc_hz(), t0 = arch_read_tsc(), next_report = hz, hold_until = 0;
	irq.running = true;

	while (irq.running) {
		churn(&hold_until);
		drain_mailbox();
		if (lmm_pool_needs_refill(&kernel_mm) && lmm_pool_refill(&kernel_mm))
			mainl.refills++;
		if (irq.ticks >= next_report) {
			progress(next_report / hz);
			next_report += hz;
		}
	}
	uint64_t cycles = arch_read_tsc() - t0;
	teardown();
	lmm_get_stats(&kernel_mm, &end);

	int64_t lost = (int64_t)start.available - (int64_t)end.available + (int64_t)end.allocated -
		       (int64_t)start.allocated;
	bool counters_back = end.available == start.available && end.allocated == start.allocated;
	uint64_t problems = lmm_check(&kernel_mm);
	uint64_t tried = irq.violations_tried + mainl.violations_tried;
	uint64_t caught = irq.violations_caught + mainl.violations_caught;
	uint64_t mismatches = irq.mismatches + mainl.mismatches;
	uint64_t ms = tsc_hz ? cycles * 1000 / tsc_hz : 0;
	uint64_t rate = ms ? irq.ticks * 1000 / ms : 0;

	kprintf("stress: summary\n");
	kprintf("  %-44s %lu (%lu ms, %lu Hz requested)\n", "timer ticks", irq.ticks, ms, hz);
	kprintf("  %-44s %lu\n", "interrupts per second achieved", rate);
	kprintf("  %-44s %lu (freed %lu, handed over %lu)\n", "atomic exclusive allocations", irq.allocs,
		irq.frees, irq.handovers);
	kprintf("  %-44s %lu\n", "emergency pool hits", end.pool_hits - start.pool_hits);
	kprintf("  %-44s %lu (unjustified: %lu)\n", "atomic failures (pool and buddy empty)",
		irq.fails, irq.unjustified_fails);
	kprintf("  %-44s %lu (%lu pages)\n", "pool refills",
		end.pool_refills - start.pool_refills, end.pool_refill_pages - start.pool_refill_pages);
	kprintf("  %-44s %lu [required 0]\n", "reserve pages handed to KERNEL callers",
		end.reserve_to[LMM_CLASS_KERNEL]);
	kprintf("  %-44s %u of %u pages\n", "pool low-water mark", end.pool_low_water, end.pool_target);
	kprintf("  %-44s %lu\n", "main loop KERNEL allocations", mainl.allocs);
	kprintf("  %-44s %lu\n", "normal memory driven to exhaustion", mainl.exhaustions);
	kprintf("  %-44s alloc %lu, free %lu (TSC at %lu MHz)\n", "max cycles, interrupts off, atomic path",
		irq.max_alloc_cycles, irq.max_free_cycles, tsc_hz / 1000000);
	kprintf("  %-44s alloc %lu, free %lu\n", "mean cycles, atomic path",
		irq.sum_alloc_cycles / (irq.allocs + irq.fails + !(irq.allocs + irq.fails)),
		irq.sum_free_cycles / (irq.frees + !irq.frees));
	kprintf("  %-44s %lu\n", "signature mismatches", mismatches);
	kprintf("  %-44s %ld\n", "lost pages", lost);
	kprintf("  %-44s %lu of %lu\n", "violations caught", caught, tried);
	kprintf("  %-44s %lu\n", "lmm_check problems", problems);

	bool pass = counters_back && lost == 0 && problems == 0 && mismatches == 0 && tried > 0 &&
		    caught == tried && irq.unjustified_fails == 0 && irq.bad_frees == 0 &&
		    irq.ticks >= irq.target_ticks && irq.allocs > 0 && end.reserve_to[LMM_CLASS_KERNEL] == 0;
	if (!counters_back)
		kprintf("stress: counters did not return: available %lu->%lu allocated %lu->%lu\n",
			start.available, end.available, start.allocated, end.allocated);
	if (irq.bad_frees)
		kprintf("stress: %lu legitimate frees or handovers were refused\n", irq.bad_frees);
	kprintf("stress: %s\n", pass ? "PASS" : "FAIL");
	return pass;
}

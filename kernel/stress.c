/*
 * stress.c - the timer-interrupt stress test of the atomic exclusive path, on every CPU.
 *
 * Every online CPU runs two contexts against the one allocator:
 *   - its timer handler (CPU 0: the PIT on IRQ 0; every AP: its local APIC timer at the
 *     same rate) takes atomic_per_tick pages per tick with
 *     labyrinth_void_alloc_page_gfp_atomic_exclusive(), stamps each with a signature,
 *     keeps them in a bounded ring of its own and frees the oldest after checking it;
 *     every few ticks it transfers a page to the NEXT CPU's main loop (lmm_page_transfer
 *     from "cpu A, interrupt" to "cpu B, normal") through a mailbox, and B frees it;
 *   - its main loop churns KERNEL allocations of random orders, fills and verifies them,
 *     refills the pool, and when it is its turn drives normal memory to exhaustion
 *     (largest orders first, so even 4 GiB takes seconds), holds it there for a while so
 *     every handler lives on the emergency pool, releases half and passes the turn on.
 * Both sides break the rules on purpose, and each attempt is checked against the exact
 * reason mm/ must refuse it with: a CPU freeing another CPU's exclusive page without a
 * transfer (WRONG_OWNER), a free under the old owner after a transfer (WRONG_OWNER), a
 * second reference to an exclusive page (EXCLUSIVE), double frees (ALREADY_FREE), and
 * KERNEL allocations from a handler (NULL, and refused[BAD_CONTEXT] grows by exactly the
 * number attempted).  An atomic failure is justified only when the pool and the buddy
 * lists were really empty: checked from the handler with lmm_get_stats, and only judged
 * when no other mm/ call was in flight anywhere in the window (else "unverifiable").  At the
 * end everything is returned and the allocator must be exactly where it started.
 *
 * Sharing rules: a CPU's struct cpu_stress is written by its handler and, with interrupts
 * off or after its timer stopped, its main loop; a mailbox is single-producer (A's
 * handler) single-consumer (B's main loop) with release/acquire indices; the violation
 * tallies and the calls-in-flight counters are atomics.  Teardown runs on CPU 0 after
 * every timer is stopped and every AP has returned.  Durations come from the ACPI PM
 * timer (the PIT's tick count without one; it undercounts when ticks are lost); TSC
 * figures are labelled emulated under a hypervisor and never turned into time then.
 */
#include <labyrinth/arch.h>
#include <labyrinth/cmdline.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/spinlock.h>

#include "tests.h"

#define PAGE 4096ul
#define SIG_MAGIC 0x5354524553534947ull /* "STRESSIG" */
#define RING_SLOTS 64      /* pages one handler keeps at once                      */
#define MAILBOX_SLOTS 32   /* handler -> next CPU's main loop handovers in flight   */
#define HANDOVER_EVERY 7   /* ticks between handovers                              */
#define VIOLATE_EVERY 101  /* ticks between deliberate violations in a handler     */
#define HOLD_TICKS_MIN 20  /* PIT ticks the exhausting CPU holds memory exhausted   */
#define CHURN_MAX_HELD 64  /* blocks a CPU keeps when it is not its turn            */
#define GRAB_ORDER 9       /* exhaustion starts with 2 MiB blocks                   */
#define AP_WAIT_SECONDS 5  /* APs must be ready / finished within this (PIT time)   */
#define TRACK_POOL_EVERY 4 /* ticks between a handler's looks at the pool level      */
#define EXHAUST_GRACE 10   /* the run may last this many times its target, for exhaustion */
#define DOUBLE_FREE_EVERY 8 /* received pages between double frees (they stop the world) */

struct sig {
	uint64_t magic, phys, tick, owner;
};

/* KERNEL blocks a main loop holds, chained through their first page. */
struct held {
	struct held *next;
	uint64_t order, phys, check;
};

struct mailbox {
	void *slot[MAILBOX_SLOTS];
	unsigned head, tail; /* producer: A's handler writes head; consumer: B's main loop tail */
};

enum grab_phase { PHASE_GRAB, PHASE_HOLD };

struct cpu_stress {
	/* the handler */
	void *ring[RING_SLOTS];
	unsigned ring_head, ring_len;
	volatile uint64_t ticks;
	uint64_t allocs, frees, fails, fails_justified, fails_unverified, fails_unjustified;
	uint64_t unjustified_avail; /* pages the first unjustified failure saw */
	uint64_t mismatches, bad_frees, handovers, handover_drops;
	uint64_t max_alloc_cycles, max_free_cycles, sum_alloc_cycles, sum_free_cycles;
	uint64_t max_irqoff_cycles, min_pool_seen;
	struct mailbox mbox; /* to the next CPU */
	/* the main loop */
	struct held *held;
	uint64_t held_n, held_pages;
	uint64_t m_allocs, exhaustions, fills_verified, m_mismatches, refills, received;
	enum grab_phase phase;
	unsigned grab_order;
	uint64_t hold_until, rng;
	void *victim; /* exclusive, owned by this CPU's main loop: the next handler tries to free it */
	volatile bool ready, timer_failed;
};

static struct cpu_stress cs[ARCH_MAX_CPUS];
static unsigned ncpu;
static volatile bool running, go;
static volatile unsigned turn;           /* the CPU driving memory to exhaustion */
static volatile uint64_t idle_ticks;     /* PIT ticks outside the run: for timeouts */
static bool exhausted_once;              /* some main loop got KERNEL refused at order 0 */
static uint64_t target_ticks, hz;

/*
 * mm/ calls the test started / finished on any CPU (counted at the gate, below): an atomic
 * failure is judged only in a quiet window.  Not frees alone: another CPU's allocation can
 * drain its per-CPU cache into the lists and so make pages reachable too.
 */
static uint64_t calls_started, calls_finished;

/* Deliberate violations, each with the one reason it must be refused with. */
enum violation {
	V_CROSS_CPU_FREE,  /* handler frees the previous CPU's main-loop page: WRONG_OWNER  */
	V_OLD_OWNER_FREE,  /* main loop frees a handed-over page as its old owner           */
	V_SHARE_EXCLUSIVE, /* lmm_page_get on an exclusive page: EXCLUSIVE                  */
	V_DOUBLE_FREE_IRQ, /* handler frees its own page twice: ALREADY_FREE                */
	V_DOUBLE_FREE_MAIN,/* main loop frees a handed-over page twice: ALREADY_FREE        */
	V_KERNEL_IN_IRQ,   /* KERNEL allocation from a handler: NULL + BAD_CONTEXT          */
	V_REFILL_IN_IRQ,   /* lmm_pool_refill from a handler: 0 pages + BAD_CONTEXT          */
	V_COUNT
};
static const char *const violation_names[V_COUNT] = {
	"free of another cpu's page", "free as the old owner", "second ref to exclusive",
	"double free in handler", "double free in main loop", "KERNEL alloc in handler",
	"pool refill in handler",
};
static const enum lmm_status violation_reason[V_COUNT] = {
	LMM_ERR_WRONG_OWNER, LMM_ERR_WRONG_OWNER, LMM_ERR_EXCLUSIVE,
	LMM_ERR_ALREADY_FREE, LMM_ERR_ALREADY_FREE, LMM_ERR_BAD_CONTEXT, LMM_ERR_BAD_CONTEXT,
};
static struct {
	uint64_t tried, right;
	int32_t wrong_reason; /* the first wrong answer seen, -1 if none */
	/*
	 * Double frees only: the times one was due (the page to free twice was there).  A
	 * run may have none (a handler that never gets a page has nothing to free twice:
	 * pool_pages=4 on one CPU); a run that had some must have tried at least one.
	 */
	uint64_t due;
} viol[V_COUNT];

static uint16_t irq_owner(unsigned cpu) { return KMM_OWNER(cpu, 1); }
static uint16_t main_owner(unsigned cpu) { return KMM_OWNER(cpu, 0); }
static unsigned next_cpu(unsigned cpu) { return (cpu + 1) % ncpu; }
static unsigned prev_cpu(unsigned cpu) { return (cpu + ncpu - 1) % ncpu; }

static uint64_t rnd(struct cpu_stress *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
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

/*
 * Exactly one reason is right for each.  A double free meets the page in a per-CPU
 * cache, in the pool, as a free block or inside a larger one it merged into: all of
 * them are ALREADY_FREE.
 */
static void note_violation(enum violation v, enum lmm_status st)
{
	__atomic_fetch_add(&viol[v].tried, 1, __ATOMIC_RELAXED);
	if (st == violation_reason[v]) {
		__atomic_fetch_add(&viol[v].right, 1, __ATOMIC_RELAXED);
		return;
	}
	int32_t none = -1;
	__atomic_compare_exchange_n(&viol[v].wrong_reason, &none, (int32_t)st, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * The gate.  A deliberate double free is only a double free if nobody took the page
 * between the two frees, and with several CPUs allocating that is a race the test would
 * lose now and then (the second free then frees someone else's page).  So every mm/
 * call the test makes is bracketed by gate_in()/gate_out(), and a double free is done
 * with the gate closed: no other CPU is inside mm/, none can enter, and the performer
 * has interrupts off.  Closing waits (bounded) for the calls in flight; if one cannot
 * finish (its CPU's handler is the one waiting to close, or spins at the gate with
 * interrupts off over it) closing gives up and the attempt is skipped, never counted.
 */
#define GATE_CLOSE_SPINS 200000u
static uint32_t gate_inflight, gate_closed, gate_owned;

static void gate_in(void)
{
	for (;;) {
		while (__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST))
			arch_cpu_relax();
		__atomic_fetch_add(&gate_inflight, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST)) {
			__atomic_fetch_add(&calls_started, 1, __ATOMIC_SEQ_CST);
			return;
		}
		__atomic_fetch_sub(&gate_inflight, 1, __ATOMIC_SEQ_CST);
	}
}

static void gate_out(void)
{
	__atomic_fetch_add(&calls_finished, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&gate_inflight, 1, __ATOMIC_SEQ_CST);
}

static void gate_open(void)
{
	__atomic_store_n(&gate_closed, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gate_owned, 0, __ATOMIC_RELEASE);
}

/* Interrupts off.  True with the gate closed and nobody inside mm/. */
static bool gate_close(void)
{
	uint32_t free_gate = 0;
	if (!__atomic_compare_exchange_n(&gate_owned, &free_gate, 1, false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return false;
	__atomic_store_n(&gate_closed, 1, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < GATE_CLOSE_SPINS; i++) {
		if (__atomic_load_n(&gate_inflight, __ATOMIC_SEQ_CST) == 0)
			return true;
		arch_cpu_relax();
	}
	gate_open();
	return false;
}

static enum lmm_status raw_free(void *p, unsigned order, uint16_t owner)
{
	return owner ? lmm_free_pages_owned(&kernel_mm, p, order, owner)
		     : lmm_free_pages(&kernel_mm, p, order);
}

static enum lmm_status counted_free(void *p, unsigned order, uint16_t owner)
{
	gate_in();
	enum lmm_status st = raw_free(p, order, owner);
	gate_out();
	return st;
}

/*
 * Free @p (as lmm_port_owner(), a legitimate free) and free it again, with the gate
 * closed so the second free meets the page exactly as the first left it.  Returns the
 * first free's status; the second is checked as violation @v.  If the gate cannot be
 * closed the page is just freed once.  Any context.
 */
static enum lmm_status free_twice_alone(void *p, enum violation v)
{
	arch_irqflags_t f = arch_irq_save();
	__atomic_fetch_add(&viol[v].due, 1, __ATOMIC_RELAXED);
	bool alone = gate_close();
	/* Counted as calls even with the gate closed: a handler may be judging a failure. */
	__atomic_fetch_add(&calls_started, 1, __ATOMIC_SEQ_CST);
	enum lmm_status st = raw_free(p, 0, 0);
	if (alone)
		note_violation(v, lmm_free_pages(&kernel_mm, p, 0));
	__atomic_fetch_add(&calls_finished, 1, __ATOMIC_SEQ_CST);
	if (alone)
		gate_open();
	arch_irq_restore(f);
	return st;
}

/* ---- The handlers ------------------------------------------------------------------ */

static void *ring_pop(struct cpu_stress *c)
{
	void *p = c->ring[c->ring_head];
	c->ring_head = (c->ring_head + 1) % RING_SLOTS;
	c->ring_len--;
	return p;
}

static void irq_free_oldest(struct cpu_stress *c)
{
	void *p = ring_pop(c);
	if (!stamp_ok(p))
		c->mismatches++;
	gate_in();
	uint64_t t0 = arch_read_tsc();
	enum lmm_status st = labyrinth_free_page_atomic_exclusive(p);
	uint64_t dt = arch_read_tsc() - t0;
	gate_out();
	if (dt > c->max_free_cycles)
		c->max_free_cycles = dt;
	c->sum_free_cycles += dt;
	if (st == LMM_OK)
		c->frees++;
	else
		c->bad_frees++;
}

/* Pages an atomic allocation on @cpu could still have used, per the allocator's counters. */
static uint64_t atomic_reachable(unsigned cpu)
{
	struct lmm_stats s;
	lmm_get_stats(&kernel_mm, &s);
	/* The shared pool is the total less every CPU's slice; this CPU's slice and cache count. */
	struct lmm_cpu_stats mine, other;
	uint64_t slices = 0;
	lmm_get_cpu_stats(&kernel_mm, cpu, &mine);
	for (unsigned i = 0; i < ncpu; i++) {
		lmm_get_cpu_stats(&kernel_mm, i, &other);
		slices += other.pool_pages;
	}
	uint64_t shared = s.pool > slices ? s.pool - slices : 0;
	return s.free + shared + mine.pool_pages + mine.cache_pages;
}

/*
 * An atomic allocation failed.  Justified when nothing was reachable; unjustified when
 * something was and no other mm/ call was in flight or started since just before ours
 * (@started0/@finished0 were read before its gate_in; it is the one call started
 * since), so the pages were there when it failed; otherwise a call raced it:
 * unverifiable.
 */
static void judge_failure(struct cpu_stress *c, unsigned cpu, uint64_t started0, uint64_t finished0)
{
	uint64_t avail = atomic_reachable(cpu);
	uint64_t started1 = __atomic_load_n(&calls_started, __ATOMIC_SEQ_CST);

	c->fails++;
	if (avail == 0) {
		c->fails_justified++;
	} else if (started1 == started0 + 1 && finished0 == started0) {
		if (!c->fails_unjustified)
			c->unjustified_avail = avail;
		c->fails_unjustified++;
	} else {
		c->fails_unverified++;
	}
}

static void irq_handover(struct cpu_stress *c, unsigned cpu)
{
	if (c->ring_len == 0)
		return;
	unsigned head = c->mbox.head;
	if (head - __atomic_load_n(&c->mbox.tail, __ATOMIC_ACQUIRE) == MAILBOX_SLOTS) {
		c->handover_drops++;
		return;
	}
	void *p = ring_pop(c);
	gate_in();
	enum lmm_status st = lmm_page_transfer(&kernel_mm, p, irq_owner(cpu), main_owner(next_cpu(cpu)));
	gate_out();
	if (st != LMM_OK) {
		c->bad_frees++;
		return;
	}
	c->mbox.slot[head % MAILBOX_SLOTS] = p;
	__atomic_store_n(&c->mbox.head, head + 1, __ATOMIC_RELEASE);
	c->handovers++;
}

/* Break the rules from interrupt context; each must be refused with its reason. */
static void irq_violations(struct cpu_stress *c, unsigned cpu)
{
	/* The victim is written before the run starts and cleared after every timer stopped. */
	void *theirs = cs[prev_cpu(cpu)].victim;
	gate_in();
	if (theirs)
		note_violation(V_CROSS_CPU_FREE, lmm_free_pages(&kernel_mm, theirs, 0));
	void *k = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL);
	/* Refused outright, or it would loop over the lists with interrupts off. */
	note_violation(V_REFILL_IN_IRQ, lmm_pool_refill(&kernel_mm) == 0 ? LMM_ERR_BAD_CONTEXT : LMM_OK);
	gate_out();
	uint64_t finished0 = __atomic_load_n(&calls_finished, __ATOMIC_SEQ_CST);
	uint64_t started0 = __atomic_load_n(&calls_started, __ATOMIC_SEQ_CST);
	gate_in();
	void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
	gate_out();
	note_violation(V_KERNEL_IN_IRQ, k ? LMM_OK : LMM_ERR_BAD_CONTEXT);
	if (k)
		counted_free(k, 0, 0);
	if (!p) {
		judge_failure(c, cpu, started0, finished0);
		return;
	}
	c->allocs++;
	stamp(p, c->ticks, irq_owner(cpu));
	/* The handler's own page, freed by its owner (this handler), then again. */
	if (free_twice_alone(p, V_DOUBLE_FREE_IRQ) == LMM_OK)
		c->frees++;
	else
		c->bad_frees++;
}

static void track_pool(struct cpu_stress *c)
{
	struct lmm_stats s;
	lmm_get_stats(&kernel_mm, &s);
	if (s.pool < c->min_pool_seen)
		c->min_pool_seen = s.pool;
}

static void stress_tick(unsigned irq, struct arch_regs *regs)
{
	(void)irq;
	(void)regs;
	uint64_t enter = arch_read_tsc();
	unsigned cpu = arch_cpu_id();
	struct cpu_stress *c = &cs[cpu];

	if (!running) {
		if (cpu == 0)
			idle_ticks++;
		return;
	}
	uint64_t tick = ++c->ticks;

	for (uint64_t i = 0; i < kopts.atomic_per_tick; i++) {
		if (c->ring_len == RING_SLOTS)
			irq_free_oldest(c);
		uint64_t finished0 = __atomic_load_n(&calls_finished, __ATOMIC_SEQ_CST);
		uint64_t started0 = __atomic_load_n(&calls_started, __ATOMIC_SEQ_CST);
		gate_in();
		uint64_t t0 = arch_read_tsc();
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		uint64_t dt = arch_read_tsc() - t0;
		gate_out();
		if (dt > c->max_alloc_cycles)
			c->max_alloc_cycles = dt;
		c->sum_alloc_cycles += dt;
		if (!p) {
			judge_failure(c, cpu, started0, finished0);
			break;
		}
		c->allocs++;
		stamp(p, tick, irq_owner(cpu));
		c->ring[(c->ring_head + c->ring_len) % RING_SLOTS] = p;
		c->ring_len++;
	}
	/* Free some each tick too, so the ring turns over even when per_tick is small. */
	if (c->ring_len > RING_SLOTS / 2)
		irq_free_oldest(c);
	if (tick % TRACK_POOL_EVERY == 0)
		track_pool(c);
	if (tick % HANDOVER_EVERY == 0)
		irq_handover(c, cpu);
	if (tick % VIOLATE_EVERY == 0)
		irq_violations(c, cpu);
	/*
	 * The run ends at the target, but not before normal memory was exhausted once (on a
	 * big machine under a slow emulator that can take longer): up to EXHAUST_GRACE times
	 * the target, after which the verdict says exhaustion never came.
	 */
	if (cpu == 0 && tick >= target_ticks &&
	    (__atomic_load_n(&exhausted_once, __ATOMIC_RELAXED) || tick >= target_ticks * EXHAUST_GRACE))
		running = false;
	uint64_t off = arch_read_tsc() - enter;
	if (off > c->max_irqoff_cycles)
		c->max_irqoff_cycles = off;
}

/* ---- The main loops ------------------------------------------------------------------ */

static void held_push(struct cpu_stress *c, void *p, unsigned order)
{
	struct held *h = p;
	h->next = c->held;
	h->order = order;
	h->phys = lmm_virt_to_phys(&kernel_mm, p);
	h->check = h->phys ^ SIG_MAGIC ^ order;
	/* Fill the first word of every page of the block, checked on free. */
	for (unsigned k = 1; k < (1u << order); k++)
		*(uint64_t *)((char *)p + k * PAGE) = h->phys + k;
	c->held = h;
	c->held_n++;
	c->held_pages += 1ull << order;
}

static void held_free_one(struct cpu_stress *c)
{
	struct held *h = c->held;
	c->held = h->next;
	bool ok = h->phys == lmm_virt_to_phys(&kernel_mm, h) && h->check == (h->phys ^ SIG_MAGIC ^ h->order);
	for (unsigned k = 1; ok && k < (1u << h->order); k++)
		ok = *(uint64_t *)((char *)h + k * PAGE) == h->phys + k;
	if (ok)
		c->fills_verified++;
	else
		c->m_mismatches++;
	unsigned order = (unsigned)h->order;
	c->held_n--;
	c->held_pages -= 1ull << order;
	if (counted_free(h, order, 0) != LMM_OK)
		c->m_mismatches++;
}

static bool try_alloc(struct cpu_stress *c, unsigned order)
{
	gate_in();
	void *p = lmm_alloc_pages(&kernel_mm, order, LMM_GFP_KERNEL);
	gate_out();
	if (!p)
		return false;
	c->m_allocs++;
	held_push(c, p, order);
	return true;
}

/*
 * This CPU's turn: grab the largest blocks there are, halving the order on each
 * failure; when even one page is refused normal memory is exhausted.  Hold it there
 * (soaking up whatever the other CPUs free) for a while, then give back half of what
 * is held and pass the turn on.
 */
static void exhaust_step(struct cpu_stress *c, unsigned cpu)
{
	if (c->phase == PHASE_GRAB) {
		if (try_alloc(c, c->grab_order))
			return;
		if (c->grab_order > 0) {
			c->grab_order--;
			return;
		}
		c->exhaustions++;
		__atomic_store_n(&exhausted_once, true, __ATOMIC_RELAXED);
		c->phase = PHASE_HOLD;
		c->hold_until = cs[0].ticks + HOLD_TICKS_MIN + rnd(c) % HOLD_TICKS_MIN;
		return;
	}
	/* One try per tick: a tight loop of refused allocations would only fight for the lock. */
	try_alloc(c, 0);
	if (cs[0].ticks < c->hold_until) {
		arch_wait_for_interrupt();
		return;
	}
	for (uint64_t keep = c->held_pages / 2; c->held && c->held_pages > keep;)
		held_free_one(c);
	c->phase = PHASE_GRAB;
	c->grab_order = GRAB_ORDER < LMM_MAX_ORDER ? GRAB_ORDER : LMM_MAX_ORDER;
	turn = next_cpu(cpu);
}

/*
 * Not this CPU's turn: small random blocks, a bounded number held, one step per tick of
 * its own timer.  Running flat out, N main loops would keep the allocator's lock busy
 * all the time; under emulation with fewer host cores than CPUs a preempted holder then
 * makes every other CPU spin for whole time slices, and the test measures only that.
 */
static void churn_step(struct cpu_stress *c)
{
	if (c->held_n >= CHURN_MAX_HELD)
		held_free_one(c);
	try_alloc(c, (unsigned)__builtin_ctzll(rnd(c) | 8)); /* geometric, 0..3 */
	if (c->held && rnd(c) % 4 == 0)
		held_free_one(c);
	arch_wait_for_interrupt();
}

/* Take the pages the previous CPU's handler handed over: break the rules, then free. */
static void drain_mailbox(struct cpu_stress *c, unsigned cpu)
{
	unsigned from = prev_cpu(cpu);
	struct mailbox *m = &cs[from].mbox;
	unsigned tail = m->tail;

	while (tail != __atomic_load_n(&m->head, __ATOMIC_ACQUIRE)) {
		void *p = m->slot[tail % MAILBOX_SLOTS];
		if (!stamp_ok(p))
			c->m_mismatches++;
		gate_in();
		note_violation(V_OLD_OWNER_FREE, lmm_free_pages_owned(&kernel_mm, p, 0, irq_owner(from)));
		note_violation(V_SHARE_EXCLUSIVE, lmm_page_get(&kernel_mm, p));
		gate_out();
		/* As the new owner (lmm_port_owner() is this CPU's main loop): fine; every
		 * DOUBLE_FREE_EVERY-th page is then freed again, alone. */
		enum lmm_status st = c->received % DOUBLE_FREE_EVERY == 0
					     ? free_twice_alone(p, V_DOUBLE_FREE_MAIN)
					     : counted_free(p, 0, 0);
		if (st != LMM_OK)
			c->m_mismatches++;
		c->received++;
		tail++;
		__atomic_store_n(&m->tail, tail, __ATOMIC_RELEASE);
	}
}

static void progress(uint64_t second)
{
	struct lmm_stats s;
	uint64_t allocs = 0, fails = 0, held = 0, ex = 0;

	lmm_get_stats(&kernel_mm, &s);
	for (unsigned i = 0; i < ncpu; i++) {
		allocs += cs[i].allocs;
		fails += cs[i].fails;
		held += cs[i].held_pages;
		ex += cs[i].exhaustions;
	}
	kprintf("stress: %3lus ticks %7lu  atomic alloc %8lu fail %5lu  pool %4lu/%u low %4u  "
		"kernel held %7lu pages  exhaustions %3lu  turn cpu %u\n",
		second, cs[0].ticks, allocs, fails, s.pool, s.pool_target, s.pool_low_water, held, ex,
		turn);
}

/*
 * Wall time of the run from the ACPI PM timer, which (unlike the PIT's tick count) keeps
 * counting when the boot CPU's handler runs long and PIT interrupts are lost.  CPU 0's
 * main loop folds the wrapping counter in every iteration; 0 without a PM timer.
 */
static uint64_t pm_elapsed;
static uint32_t pm_last;

static void pm_sample(void)
{
	uint32_t now = arch_pm_timer_read();
	pm_elapsed += (now - pm_last) & arch_pm_timer_mask();
	pm_last = now;
}

static void main_loop(unsigned cpu)
{
	struct cpu_stress *c = &cs[cpu];
	uint64_t next_report = hz;

	while (running) {
		if (cpu == 0)
			pm_sample();
		if (turn == cpu)
			exhaust_step(c, cpu);
		else
			churn_step(c);
		drain_mailbox(c, cpu);
		if (lmm_pool_needs_refill(&kernel_mm)) {
			gate_in();
			if (lmm_pool_refill(&kernel_mm))
				c->refills++;
			gate_out();
		}
		if (cpu == 0 && cs[0].ticks >= next_report) {
			progress(next_report / hz);
			/* Half-way, while the test holds memory: who holds it. */
			if (kopts.mm_holders && next_report / hz == (target_ticks / hz + 1) / 2)
				lmm_dump_holders(&kernel_mm, 8);
			next_report += hz;
		}
	}
}

/* What every AP runs (arch_smp_run): its timer, then the main loop until the run ends. */
static void ap_job(void *arg)
{
	(void)arg;
	unsigned cpu = arch_cpu_id();

	if (!arch_local_timer_start((uint32_t)hz, stress_tick)) {
		cs[cpu].timer_failed = true;
		return;
	}
	__atomic_store_n(&cs[cpu].ready, true, __ATOMIC_RELEASE);
	while (!go)
		arch_wait_for_interrupt(); /* its own timer wakes it */
	main_loop(cpu);
	arch_local_timer_stop();
}

/* ---- Set-up, teardown, verdict ---------------------------------------------------------- */

/* Wait on the PIT (interrupts on) until @done or @seconds have passed; true if done. */
static bool wait_pit(bool (*done)(void), uint64_t seconds)
{
	uint64_t until = idle_ticks + seconds * hz;
	while (!done()) {
		if (idle_ticks >= until)
			return false;
		arch_wait_for_interrupt();
	}
	return true;
}

static bool aps_ready(void)
{
	for (unsigned i = 1; i < ncpu; i++)
		if (!cs[i].ready && !cs[i].timer_failed)
			return false;
	return true;
}

static bool aps_finished(void)
{
	return arch_smp_busy() == 0;
}

static void teardown(void)
{
	for (unsigned i = 0; i < ncpu; i++) {
		struct cpu_stress *c = &cs[i];
		while (c->ring_len) {
			void *p = ring_pop(c);
			if (!stamp_ok(p))
				c->mismatches++;
			/* The test owns the handler's pages now; it frees them under the handler's tag. */
			if (counted_free(p, 0, irq_owner(i)) == LMM_OK)
				c->frees++;
			else
				c->bad_frees++;
		}
	}
	/* Mailboxes: as their consumers would, under the consumer's owner tag. */
	for (unsigned i = 0; i < ncpu; i++) {
		struct mailbox *m = &cs[i].mbox;
		unsigned to = next_cpu(i);
		for (; m->tail != m->head; m->tail++) {
			void *p = m->slot[m->tail % MAILBOX_SLOTS];
			if (counted_free(p, 0, main_owner(to)) != LMM_OK)
				cs[to].m_mismatches++;
			cs[to].received++;
		}
	}
	for (unsigned i = 0; i < ncpu; i++) {
		while (cs[i].held)
			held_free_one(&cs[i]);
		void *v = cs[i].victim;
		cs[i].victim = NULL;
		if (v && counted_free(v, 0, main_owner(i)) != LMM_OK)
			cs[i].m_mismatches++;
	}
	/* Every other CPU is idle outside mm/: their caches and slices may be drained from here. */
	for (unsigned i = 0; i < ncpu; i++)
		lmm_cpu_drain(&kernel_mm, i);
	lmm_pool_refill(&kernel_mm);
}

static void reset_state(void)
{
	for (unsigned i = 0; i < ARCH_MAX_CPUS; i++) {
		struct cpu_stress *c = &cs[i];
		*c = (struct cpu_stress){ .min_pool_seen = UINT64_MAX, .phase = PHASE_GRAB,
					  .grab_order = GRAB_ORDER < LMM_MAX_ORDER ? GRAB_ORDER
										   : LMM_MAX_ORDER };
		c->rng = (kopts.seed + i) * 0x9E3779B97F4A7C15ull | 1;
	}
	for (unsigned v = 0; v < V_COUNT; v++)
		viol[v] = (__typeof__(viol[v])){ 0, 0, -1, 0 };
	calls_started = calls_finished = 0;
	exhausted_once = false;
	turn = 0;
	running = go = false;
}

static uint64_t sum_field(size_t off)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < ncpu; i++)
		t += *(const uint64_t *)((const char *)&cs[i] + off);
	return t;
}
#define SUM(field) sum_field(__builtin_offsetof(struct cpu_stress, field))

/* "  label  value [required ...]" - one row; @need is NULL for information only. */
static void row(const char *label, const char *need, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void row(const char *label, const char *need, const char *fmt, ...)
{
	char val[160];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (need)
		kprintf("  %-44s %s [required %s]\n", label, val, need);
	else
		kprintf("  %-44s %s\n", label, val);
}

static void print_cpu_table(uint64_t ms, bool emulated)
{
	kprintf("stress: per cpu (every cpu must show atomic allocations) [required > 0]\n");
	kprintf("  cpu %8s %7s %9s %9s %7s %22s %8s %8s %12s\n", "ticks", "rate/s", "atomic",
		"pool-hits", "fails", "(justif/unverif/unjust)", "handed", "received",
		emulated ? "irqoff-ecyc" : "irqoff-cyc");
	for (unsigned i = 0; i < ncpu; i++) {
		struct cpu_stress *c = &cs[i];
		struct lmm_cpu_stats st;
		lmm_get_cpu_stats(&kernel_mm, i, &st);
		char split[32];
		ksnprintf(split, sizeof(split), "(%lu/%lu/%lu)", c->fails_justified, c->fails_unverified,
			  c->fails_unjustified);
		kprintf("  %3u %8lu %7lu %9lu %9lu %7lu %22s %8lu %8lu %12lu\n", i, c->ticks,
			ms ? c->ticks * 1000 / ms : 0, c->allocs, st.pool_hits, c->fails, split, c->handovers,
			c->received, c->max_irqoff_cycles);
	}
}

static void print_contention(bool emulated)
{
	struct spin_contention t[SPIN_TABLE_MAX];
	size_t n = spin_contention_get(t, SPIN_TABLE_MAX);

	kprintf("stress: lock contention (acquisitions that waited, pauses spun, %s waited)\n",
		emulated ? "emulated cycles" : "cycles");
	if (n == 0)
		kprintf("  (no lock had to wait)\n");
	for (size_t i = 0; i < n && i < SPIN_TABLE_MAX; i++)
		kprintf("  %-20s contended %8lu  spins %10lu  %s %12lu\n", t[i].name, t[i].contended,
			t[i].spins, emulated ? "emulated cycles" : "cycles", t[i].wait_cycles);
}

bool kernel_run_stress(void)
{
	struct lmm_stats start, end;

	ncpu = arch_cpus_online();
	hz = kopts.pit_hz;
	reset_state();
	target_ticks = kopts.stress_ticks ? kopts.stress_ticks : kopts.stress_seconds * hz;
	lmm_pool_refill(&kernel_mm);
	lmm_pool_reset_low_water(&kernel_mm);

	lmm_get_stats(&kernel_mm, &start);
	/* Each main loop's victim page, owned by that CPU's main loop from the start. */
	for (unsigned i = 0; i < ncpu; i++)
		cs[i].victim = lmm_alloc_pages_owned(&kernel_mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE,
						     main_owner(i));
	kprintf("stress: %lu ticks at %lu Hz on %u cpu(s), %lu atomic pages per tick, seed %lu, "
		"pool %lu pages\n", target_ticks, hz, ncpu, kopts.atomic_per_tick, kopts.seed,
		start.pool);

	uint64_t pit_mhz = arch_pit_init((uint32_t)hz);
	if (!arch_irq_register(0, stress_tick)) {
		kprintf("stress: IRQ 0 already taken\n");
		return false;
	}
	if (ncpu > 1) {
		arch_smp_run(ap_job, NULL);
		if (!wait_pit(aps_ready, AP_WAIT_SECONDS)) {
			kprintf("stress: FAIL: not every cpu started its timer within %u s\n", AP_WAIT_SECONDS);
			return false;
		}
	}
	unsigned timers_failed = 0;
	for (unsigned i = 1; i < ncpu; i++)
		timers_failed += cs[i].timer_failed;
	spin_contention_reset();

	uint64_t tsc_hz = arch_tsc_hz(), t0 = arch_read_tsc();
	pm_elapsed = 0;
	pm_last = arch_pm_timer_read();
	running = true;
	go = true;
	main_loop(0);
	pm_sample();
	uint64_t cycles = arch_read_tsc() - t0;
	bool finished = ncpu == 1 || wait_pit(aps_finished, AP_WAIT_SECONDS);
	arch_irq_mask(0);
	if (!finished) {
		kprintf("stress: FAIL: %u cpu(s) did not finish within %u s of the end\n",
			arch_smp_busy(), AP_WAIT_SECONDS);
		return false;
	}
	/* Every timer is off: the handlers' tallies are final. */
	teardown();
	lmm_get_stats(&kernel_mm, &end);
	/* lmm_cpu_drain() of every CPU, from this one: nothing may be left in a cache or slice. */
	uint64_t left_on_cpus = 0;
	for (unsigned i = 0; i < ncpu; i++) {
		struct lmm_cpu_stats c;
		lmm_get_cpu_stats(&kernel_mm, i, &c);
		left_on_cpus += (uint64_t)c.cache_pages + c.pool_pages;
	}

	bool emulated = arch_hypervisor_present() || tsc_hz < 100000000ull || tsc_hz > 10000000000ull;
	/* Without a PM timer, the PIT's own ticks: a lower bound when interrupts were lost. */
	bool have_pm = arch_pm_timer_mask() != 0;
	uint64_t ms = have_pm ? pm_elapsed * 1000 / ARCH_PM_TIMER_HZ
			      : pit_mhz ? cs[0].ticks * 1000000ull / pit_mhz : 0;
	uint64_t allocs = SUM(allocs), fails = SUM(fails), justified = SUM(fails_justified);
	uint64_t unjustified = SUM(fails_unjustified), unverified = SUM(fails_unverified);
	uint64_t mismatches = SUM(mismatches) + SUM(m_mismatches), bad_frees = SUM(bad_frees);
	uint64_t exhaustions = SUM(exhaustions), min_pool = UINT64_MAX, allocs_max_cyc = 0;
	uint64_t cpus_without_allocs = 0;
	for (unsigned i = 0; i < ncpu; i++) {
		if (cs[i].min_pool_seen < min_pool)
			min_pool = cs[i].min_pool_seen;
		if (cs[i].max_alloc_cycles > allocs_max_cyc)
			allocs_max_cyc = cs[i].max_alloc_cycles;
		cpus_without_allocs += cs[i].allocs == 0;
	}
	int64_t lost = (int64_t)start.available - (int64_t)end.available + (int64_t)end.allocated -
		       (int64_t)start.allocated;
	bool counters_back = end.available == start.available && end.allocated == start.allocated;
	uint64_t problems = lmm_check(&kernel_mm);
	uint64_t pool_hits = end.pool_hits - start.pool_hits;
	uint64_t empty_failures = end.pool_empty_failures - start.pool_empty_failures;
	uint64_t bad_context = end.refused[LMM_ERR_BAD_CONTEXT] - start.refused[LMM_ERR_BAD_CONTEXT];
	uint64_t tried = 0, right = 0;
	for (unsigned v = 0; v < V_COUNT; v++) {
		tried += viol[v].tried;
		right += viol[v].right;
	}
	/*
	 * The low-water mark can be no higher than any level a handler saw, give or take
	 * what mm/ documents: it is sampled when a CPU's slice refills, so pops served from
	 * a slice in between are unseen (one slice per CPU); exact (0) once the reserve ran dry.
	 */
	uint64_t slack = (uint64_t)end.pool_slice * ncpu;
	bool low_water_ok = end.pool_low_water <= min_pool + slack &&
			    (justified == 0 || end.pool_low_water == 0);

	kprintf("stress: summary\n");
	kprintf("cpus online: %u\n", ncpu);
	row("timer ticks", NULL, "%lu on cpu 0 (%lu ms by the %s, %lu Hz requested, %lu planned)",
	    cs[0].ticks, ms, have_pm ? "ACPI PM timer" : "PIT's ticks", hz, target_ticks);
	row("interrupts per second achieved", NULL, "%lu on cpu 0 (ticks over %s time; per cpu below)",
	    ms ? cs[0].ticks * 1000 / ms : 0, have_pm ? "PM timer" : "PIT");
	row("cpus whose timer did not start", "0", "%u", timers_failed);
	/*
	 * Three tallies kept at three places (a non-NULL allocation, a free mm/ accepted, a
	 * transfer mm/ accepted): each page a handler got is freed or handed over exactly
	 * once, so a count that is off (a failure counted as an allocation) shows here.
	 */
	uint64_t frees = SUM(frees), handovers = SUM(handovers);
	row("atomic exclusive allocations", "= freed + handed over", "%lu (freed %lu, handed over %lu)", allocs,
	    frees, handovers);
	row("emergency pool hits", exhaustions ? "> 0" : NULL, "%lu", pool_hits);
	row("atomic failures", NULL, "%lu: justified %lu, unverifiable %lu", fails, justified, unverified);
	row("unjustified atomic failures", "0", "%lu%s", unjustified,
	    unjustified ? " (the pool or buddy had pages)" : "");
	row("failures counted by mm/ as pool-and-buddy-empty", "= atomic failures", "%lu", empty_failures);
	row("reserve pages handed to KERNEL callers", "0", "%lu", end.reserve_to[LMM_CLASS_KERNEL]);
	row("reserve pages handed to NOWAIT callers", "0", "%lu", end.reserve_to[LMM_CLASS_NOWAIT]);
	row("pool refills", NULL, "%lu (%lu pages)", end.pool_refills - start.pool_refills,
	    end.pool_refill_pages - start.pool_refill_pages);
	row("pool low-water mark", "<= lowest seen + a slice per cpu, 0 if it ran dry",
	    "%u of %u pages (handlers saw %lu, slices %u x %u)", end.pool_low_water, end.pool_target,
	    min_pool, end.pool_slice, ncpu);
	row("main loop KERNEL allocations", NULL, "%lu", SUM(m_allocs));
	row("normal memory driven to exhaustion", "> 0", "%lu", exhaustions);
	if (emulated)
		row("run length in emulated cycles", NULL, "%lu (no time derived from them)", cycles);
	else
		row("run length in TSC cycles", NULL, "%lu (%lu ms by the TSC)", cycles,
		    tsc_hz ? cycles * 1000 / tsc_hz : 0);
	row(emulated ? "max emulated cycles, atomic alloc" : "max cycles, atomic alloc", NULL,
	    "%lu (TSC %s %lu MHz)", allocs_max_cyc, emulated ? "emulated, calibrated at" : "at",
	    tsc_hz / 1000000);
	/*
	 * Every kind must have been tried: "0 of 0" would pass "all" for a violation the run
	 * never made (a gate that never closes skips every double free).  A double free
	 * needs a page to free twice, so it is owed only where one was due.
	 */
	uint64_t kinds_untried = 0;
	for (unsigned v = 0; v < V_COUNT; v++) {
		const bool double_free = v == V_DOUBLE_FREE_IRQ || v == V_DOUBLE_FREE_MAIN;
		const bool owed = !double_free || viol[v].due > 0;
		char need[96], due[40] = "";
		kinds_untried += owed && viol[v].tried == 0;
		if (double_free)
			ksnprintf(due, sizeof(due), " (%lu due)", viol[v].due);
		ksnprintf(need, sizeof(need), "all, %s, %s", double_free ? "at least one if due" : "at least one",
			  lmm_status_str(violation_reason[v]));
		row(violation_names[v], need, "%lu of %lu refused with the right reason%s%s%s", viol[v].right,
		    viol[v].tried, due, viol[v].wrong_reason >= 0 ? "; first wrong: " : "",
		    viol[v].wrong_reason >= 0 ? lmm_status_str((enum lmm_status)viol[v].wrong_reason) : "");
	}
	uint64_t context_tries = viol[V_KERNEL_IN_IRQ].tried + viol[V_REFILL_IN_IRQ].tried;
	row("refusals counted as BAD_CONTEXT", "= KERNEL allocs and refills in handlers", "%lu (attempted %lu)",
	    bad_context, context_tries);
	/*
	 * mm/'s own count of refusals, reason by reason, against the violations made on
	 * purpose: the test's legitimate calls are never refused, so a refusal nobody
	 * attempted (a stray second free the caller ignored, a free of a page another CPU
	 * had taken meanwhile) shows here even when no tally of the test's noticed it.
	 */
	uint64_t want_refused[LMM_STATUS_COUNT] = { 0 };
	for (unsigned v = 0; v < V_COUNT; v++)
		want_refused[violation_reason[v]] += viol[v].tried;
	uint64_t refused_extra = 0, refused_total = end.refused_total - start.refused_total;
	int first_odd = -1;
	for (unsigned r = 1; r < LMM_STATUS_COUNT; r++)
		if (end.refused[r] - start.refused[r] != want_refused[r]) {
			refused_extra++;
			if (first_odd < 0)
				first_odd = (int)r;
		}
	row("refusals counted by mm/, reason by reason", "= the violations attempted", "%lu (attempted %lu)%s%s",
	    refused_total, tried, first_odd >= 0 ? "; differs for: " : "",
	    first_odd >= 0 ? lmm_status_str((enum lmm_status)first_odd) : "");
	/* The reserve is a fixed budget: all its frames back, none replaced by a refill. */
	uint64_t budget = end.pool + end.reserve_held;
	row("reserve frames at the end", "= target, none refilled", "%lu of %u (%lu pages refilled)", budget,
	    end.pool_target, end.pool_refill_pages - start.pool_refill_pages);
	row("reserve pages counted for ATOMIC callers", "= pool hits", "%lu (pool hits %lu)",
	    end.reserve_to[LMM_CLASS_ATOMIC] - start.reserve_to[LMM_CLASS_ATOMIC], pool_hits);
	row("signature mismatches", "0", "%lu", mismatches);
	row("lost pages", "0", "%ld", lost);
	row("pages left on the cpus after draining them", "0", "%lu (cached in all %lu)", left_on_cpus, end.cached);
	row("violations caught", "all", "%lu of %lu", right, tried);
	row("lmm_check problems", "0", "%lu", problems);
	print_cpu_table(ms, emulated);
	print_contention(emulated);

	bool pass = counters_back && lost == 0 && problems == 0 && mismatches == 0 && tried > 0 &&
		    right == tried && unjustified == 0 && bad_frees == 0 && timers_failed == 0 &&
		    cs[0].ticks >= target_ticks && cpus_without_allocs == 0 && exhaustions > 0 &&
		    pool_hits > 0 && empty_failures == fails && low_water_ok &&
		    bad_context == context_tries && pool_hits <= allocs + ncpu &&
		    budget == end.pool_target && end.pool_refill_pages == start.pool_refill_pages &&
		    end.reserve_to[LMM_CLASS_ATOMIC] - start.reserve_to[LMM_CLASS_ATOMIC] == pool_hits &&
		    end.reserve_to[LMM_CLASS_KERNEL] == 0 && end.reserve_to[LMM_CLASS_NOWAIT] == 0 &&
		    allocs == frees + handovers &&
		    kinds_untried == 0 &&
		    refused_extra == 0 && refused_total == tried && left_on_cpus == 0 && end.cached == 0;
	if (!counters_back)
		kprintf("stress: counters did not return: available %lu->%lu allocated %lu->%lu\n",
			start.available, end.available, start.allocated, end.allocated);
	if (bad_frees)
		kprintf("stress: %lu legitimate frees or handovers were refused\n", bad_frees);
	if (unjustified)
		kprintf("stress: an atomic allocation failed with %lu pages reachable and no other mm/ call in flight\n",
			SUM(unjustified_avail));
	if (cpus_without_allocs)
		kprintf("stress: %lu cpu(s) made no atomic allocation from their handler\n",
			cpus_without_allocs);
	if (!low_water_ok)
		kprintf("stress: the pool low-water mark disagrees with what the handlers saw\n");
	if (empty_failures != fails)
		kprintf("stress: mm/ counted %lu pool-and-buddy-empty failures, the handlers saw %lu\n",
			empty_failures, fails);
	if (!pass)
		lmm_dump_holders(&kernel_mm, 8); /* what is still held, if holder records are on */
	kprintf("stress: %s\n", pass ? "PASS" : "FAIL");
	return pass;
}

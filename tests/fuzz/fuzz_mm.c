/*
 * fuzz_mm.c - libFuzzer target for mm/: the input bytes choose a small arena with holes,
 * reservations and pool marks, then a sequence of API calls, each made through the
 * reference model of tests/host/model.h, from normal context, with interrupts off, or
 * inside the host port's simulated interrupt handler.
 *
 * Any divergence from the model, any lmm_check() problem, any sanitizer report or
 * lmm_port_fatal() aborts, so libFuzzer keeps the input.  Replaying one input:
 *   build/fuzz/fuzz_mm tests/fuzz/corpus/fuzz_mm/<file>     (LMM_VERBOSE=1: mm/'s log)
 *
 * Input layout (bytes past the end read as 0, so every input is valid):
 *   arena:  1 byte  size 1..8 MiB
 *   ranges: 1 byte  count 1..4, then 3 bytes each (start, length, sub-page skew)
 *   reserve:1 byte  count 0..2, then 2 bytes each (start, pages)
 *   config: 3 bytes pool target, pool low, flags (POISON)
 *   ops:    1 byte  opcode, then its argument bytes (decode_op)
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <labyrinth/mm.h>
#include "model.h"
#include "port_host.h"

/* Not SIGUSR1/2: libFuzzer handles those itself. */
#define IRQ_SIGNO (SIGRTMIN + 3)
#define MAX_OPS 4096
#define ARENA_MAX (8ull << 20)

static struct lmm mm;
static struct model model;

static const uint8_t *in;
static size_t in_len, in_pos;
static unsigned handler_ops; /* operations the next simulated interrupt runs */
static bool irqs_off;
static bool poison_on; /* this input's allocator poisons freed pages */
static void *arena_base;
static lmm_irqflags_t saved_flags;

static uint8_t next(void)
{
	return in_pos < in_len ? in[in_pos++] : 0;
}

static void on_diverge(const char *what)
{
	fprintf(stderr, "fuzz_mm: divergence: %s\n", what);
	abort();
}

/* Owner tags: none (refused where one is needed), three fixed ones, or the caller's. */
static uint16_t owner_from(uint8_t b)
{
	switch (b % 5) {
	case 0: return 0;
	case 4: return lmm_port_owner();
	default: return (uint16_t)(b % 5);
	}
}

/* Orders weighted towards small blocks, with the occasional invalid one. */
static unsigned order_from(uint8_t b)
{
	if (b == 0xff)
		return LMM_MAX_ORDER + 1 + (b & 3);
	unsigned o = (unsigned)__builtin_ctz((unsigned)b | 0x100u);
	return o > LMM_MAX_ORDER ? LMM_MAX_ORDER : o;
}

static lmm_gfp_t gfp_from(uint8_t b)
{
	static const lmm_gfp_t base[] = { LMM_GFP_KERNEL, LMM_GFP_NOWAIT, LMM_GFP_ATOMIC, LMM_GFPB_RESERVE };
	lmm_gfp_t g = base[b & 3];
	if (b & 0x04)
		g |= LMM_GFP_EXCLUSIVE;
	if (b & 0x08)
		g |= LMM_GFP_ZERO;
	if ((b & 0xf0) == 0xf0)
		g |= 1u << 7; /* an unknown bit: refused */
	return g;
}

/* A held block chosen by @b, or false when none is held. */
static bool pick_held(uint8_t b, uint64_t *pfn)
{
	if (!model.nlive)
		return false;
	*pfn = model.live[b % model.nlive];
	return true;
}

/* A pointer that is wrong in the way @kind says, for the bad-call operations. */
static void *bad_pointer(uint8_t kind, uint8_t a)
{
	uint64_t pfn;
	switch (kind % 5) {
	case 0: /* any page of the arena: hole, reserved, free, pool, tail or head */
		return model_page_ptr(&model, ((uint64_t)a * 257 + next()) % model.npages);
	case 1: /* unaligned inside a held block */
		if (!pick_held(a, &pfn))
			return NULL;
		return (char *)model_page_ptr(&model, pfn) + 1 + next() % 4095;
	case 2: /* a tail page of a held block */
		if (!pick_held(a, &pfn) || model.page[pfn].order == 0)
			return model_page_ptr(&model, 0);
		return model_page_ptr(&model, pfn + 1 + next() % ((1u << model.page[pfn].order) - 1));
	case 3: /* outside the arena */
		return (char *)model_page_ptr(&model, model.npages - 1) + 4096 * (1 + a);
	default:
		return NULL;
	}
}

static void run_ops(unsigned n);

static void irq_entry(void)
{
	unsigned n = handler_ops;
	handler_ops = 0;
	run_ops(n);
}

/* One operation.  Returns false at the end of the input. */
static bool decode_op(void)
{
	if (in_pos >= in_len)
		return false;
	uint8_t op = next(), a = next(), b = next();
	uint64_t pfn;
	bool in_handler = host_in_interrupt();

	switch (op % 16) {
	case 0:
	case 1: /* allocate, naming the owner or not */
		if (op & 0x10)
			model_alloc_owned(&model, order_from(a), gfp_from(b), owner_from(next()));
		else
			model_alloc(&model, order_from(a), gfp_from(b));
		break;
	case 2:
	case 3: /* free a held block: its owner, or another, or the port's idea of the caller */
		if (!pick_held(a, &pfn))
			break;
		if (b & 1) {
			uint16_t o = (b & 2) ? model.page[pfn].owner : owner_from(next());
			model_free_owned(&model, model_page_ptr(&model, pfn), model.page[pfn].order, o);
		} else {
			model_free(&model, model_page_ptr(&model, pfn), model.page[pfn].order);
		}
		break;
	case 4: /* free with a wrong order */
		if (pick_held(a, &pfn))
			model_free(&model, model_page_ptr(&model, pfn), order_from(b));
		break;
	case 5: /* free of a bad pointer */
		model_free(&model, bad_pointer(b, a), order_from(next()));
		break;
	case 6: /* double free: the second must be refused, however the first went */
		if (pick_held(a, &pfn)) {
			void *p = model_page_ptr(&model, pfn);
			unsigned o = model.page[pfn].order;
			uint16_t w = model.page[pfn].owner;
			model_free_owned(&model, p, o, w);
			model_free_owned(&model, p, o, w);
		}
		break;
	case 7: /* another reference, to a held block or to any page */
		if ((b & 1) && pick_held(a, &pfn))
			model_page_get(&model, model_page_ptr(&model, pfn));
		else
			model_page_get(&model, bad_pointer(b >> 1, a));
		break;
	case 8: /* drop a reference */
		if (pick_held(a, &pfn))
			model_page_put(&model, model_page_ptr(&model, pfn), model.page[pfn].order);
		break;
	case 9: /* transfer: by the owner or not, to an owner or to 0 */
		if (pick_held(a, &pfn)) {
			uint16_t from = (b & 1) ? model.page[pfn].owner : owner_from(b >> 1);
			model_transfer(&model, model_page_ptr(&model, pfn), from, owner_from(next()));
		} else {
			model_transfer(&model, bad_pointer(b, a), 1, 2);
		}
		break;
	case 10: /* unexclusive */
		if (pick_held(a, &pfn)) {
			uint16_t o = (b & 1) ? model.page[pfn].owner : owner_from(b >> 1);
			model_unexclusive(&model, model_page_ptr(&model, pfn), o);
		}
		break;
	case 11:
		model_pool_refill(&model);
		break;
	case 12:
		if (b & 1)
			model_pool_reset_low_water(&model);
		else
			model_pool_set_marks(&model, a % 40, (uint32_t)(b >> 1) % 48);
		break;
	case 13: /* context: normal, interrupts off, or the next few operations in a handler */
		if (in_handler)
			break;
		if (a % 3 == 0 && irqs_off) {
			irqs_off = false;
			host_irq_restore(saved_flags); /* delivers a pending interrupt */
		} else if (a % 3 == 1 && !irqs_off) {
			saved_flags = host_irq_save();
			irqs_off = true;
		} else if (a % 3 == 2) {
			handler_ops = 1 + b % 8;
			raise(IRQ_SIGNO); /* runs now, or at the restore if interrupts are off */
		}
		break;
	case 14:
		if (!in_handler && !irqs_off)
			model_check(&model);
		break;
	default: /* a use after free (poisoning on), or a page's owner against the model */
		if (op & 0x10) {
			model_scribble(&model, ((uint64_t)a * 257 + b) % model.npages, next() * 16u);
		} else if (pick_held(a, &pfn)) {
			uint16_t got = lmm_page_owner(&mm, model_page_ptr(&model, pfn));
			if (got != model.page[pfn].owner) {
				fprintf(stderr, "fuzz_mm: owner 0x%x, model 0x%x\n", got, model.page[pfn].owner);
				abort();
			}
		}
		break;
	}
	model_compare(&model);
	return true;
}

static void run_ops(unsigned n)
{
	while (n-- && model.op_no < MAX_OPS && decode_op())
		;
}

static uint64_t range_refused[LMM_STATUS_COUNT]; /* by the range calls of setup_arena() */

static bool setup_arena(uint64_t *arena_bytes)
{
	uint64_t bytes = (1 + next() % 8) << 20, unit = bytes / 256;
	*arena_bytes = bytes;
	/* Designated: fields the redesign adds (cache, slices) take their defaults. */
	struct lmm_config cfg = { .pool_target = LMM_POOL_AUTO, .pool_low = LMM_POOL_AUTO, .flags = LMM_CFG_QUIET };
	unsigned nuse = 1 + next() % 4;
	uint64_t use[4][2];
	for (unsigned i = 0; i < nuse; i++) {
		uint64_t start = next() * unit, len = (1 + (uint64_t)next()) * unit;
		uint8_t skew = next();
		/* Sub-page skews make edges that must be trimmed inward. */
		start += (skew & 0x0f) * 97;
		len -= (skew >> 4) * 89;
		if (start >= bytes)
			start = bytes - unit;
		if (start + len > bytes)
			len = bytes - start;
		use[i][0] = start;
		use[i][1] = len;
	}
	unsigned nres = next() % 3;
	uint64_t res[2][2];
	for (unsigned i = 0; i < nres; i++) {
		res[i][0] = next() * unit + 11;
		res[i][1] = (1 + (uint64_t)next() % 16) * 4096;
	}
	uint8_t t = next(), l = next(), f = next();
	if (t % 4)
		cfg.pool_target = t % 48;
	if (l % 4)
		cfg.pool_low = l % 40;
	poison_on = f & 1;
	if (poison_on)
		cfg.flags |= LMM_CFG_POISON;

	lmm_begin(&mm, &cfg);
	/* Each range refused is one refusal counted: the model starts from what they returned. */
	memset(range_refused, 0, sizeof(range_refused));
	for (unsigned i = 0; i < nuse; i++)
		range_refused[lmm_add_range(&mm, use[i][0], use[i][1])]++;
	for (unsigned i = 0; i < nres; i++)
		range_refused[lmm_reserve_range(&mm, res[i][0], res[i][1])]++;
	range_refused[LMM_OK] = 0;
	return lmm_init(&mm) == LMM_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	host_irq_install(IRQ_SIGNO, irq_entry);
	/*
	 * One mapping of the largest arena for every input (an input's allocator uses only
	 * its first arena_bytes), emptied after each input so that every input starts from
	 * zeroed memory: a crash must reproduce from its input alone, and dirt left by an
	 * earlier input would decide whether a ZERO bug shows.
	 */
	arena_base = host_arena_map(ARENA_MAX);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in = data;
	in_len = size;
	in_pos = 0;
	handler_ops = 0;
	irqs_off = false;
	host_log_clear();

	uint64_t arena;
	if (!setup_arena(&arena)) {
		madvise(arena_base, ARENA_MAX, MADV_DONTNEED);
		return 0;
	}
	model_init(&model, &mm, arena, range_refused);
	model.on_diverge = on_diverge;
	model.poison = poison_on;

	run_ops(MAX_OPS);
	if (irqs_off) {
		irqs_off = false;
		host_irq_restore(saved_flags);
	}
	model_check(&model);
	model_release_all(&model);
	model_drain(&model);                /* the slice back to the shared pool ... */
	model_pool_set_marks(&model, 0, 0); /* ... and every pool page to the buddy lists */
	model_compare(&model);
	if (lmm_check(&mm) != 0) {
		fprintf(stderr, "fuzz_mm: lmm_check after releasing everything: %s\n", host_log_last());
		abort();
	}
	struct lmm_stats s;
	lmm_get_stats(&mm, &s);
	if (s.allocated || s.pool) {
		fprintf(stderr, "fuzz_mm: after releasing everything: %llu allocated, %llu in the pool\n",
			(unsigned long long)s.allocated, (unsigned long long)s.pool);
		abort();
	}
	model_destroy(&model);
	madvise(arena_base, ARENA_MAX, MADV_DONTNEED); /* anonymous private: reads back as zero */
	return 0;
}

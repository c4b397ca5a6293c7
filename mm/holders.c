/*
 * holders.c - who holds memory: an optional record per allocated block (the caller's
 * return address, its context and CPU, a sequence number) and a page_owner-style report
 * of the call sites holding the most pages.
 *
 * The records live in a side table carved with the frame metadata when LMM_CFG_HOLDERS
 * is set (sizeof(struct lmm_holder) bytes per frame: 16 on 64-bit hosts), so the 16-byte
 * frame record does not grow and a build without it pays one predictable branch.  Only
 * a block's head record means anything, and only while the block is allocated: nothing
 * clears a record on free, the frame state says whether it is live.
 */
#include "internal.h"

/*
 * Called by the allocation once the block is the caller's, back in the caller's own
 * context (interrupts as the caller had them), so the context recorded is the caller's.
 * holder_stamp() wrote the sequence number and CPU already, with interrupts off.
 */
void lmm_holder_record(struct lmm *mm, uint32_t idx, unsigned order, const void *caller)
{
	struct lmm_holder *h = &mm->holders[idx];
	LMM_WRITE_ONCE(h->caller, caller);
	LMM_WRITE_ONCE(h->context, (uint8_t)lmm_port_context());
	LMM_WRITE_ONCE(h->order, (uint8_t)order);
}

#define HOLDER_SITES 64 /* distinct call sites tallied; the rest are counted as "other" */

struct site {
	const void *caller;
	uint64_t pages, blocks;
	uint32_t last_seq;
	uint8_t last_cpu, contexts; /* bit per enum lmm_context seen */
};

/*
 * Add one live block of 2^@order pages to the tally: an open-addressed table keyed by
 * call site.  The record is another CPU's to write (its allocation path fills it in
 * without the lock): each field is read once, whole.
 */
static bool tally(struct site *sites, const struct lmm_holder *rec, unsigned order)
{
	const struct lmm_holder h = { .caller = LMM_READ_ONCE(rec->caller), .seq = LMM_READ_ONCE(rec->seq),
				      .cpu = LMM_READ_ONCE(rec->cpu), .context = LMM_READ_ONCE(rec->context) };
	unsigned slot = (unsigned)(((uintptr_t)h.caller >> 2) * 2654435761u) % HOLDER_SITES;
	for (unsigned probe = 0; probe < HOLDER_SITES; probe++, slot = (slot + 1) % HOLDER_SITES) {
		struct site *s = &sites[slot];
		if (s->blocks && s->caller != h.caller)
			continue;
		s->caller = h.caller;
		s->pages += 1ull << order;
		s->blocks++;
		s->contexts |= (uint8_t)(1u << (h.context & 3));
		if (s->blocks == 1 || h.seq > s->last_seq) { /* the newest block of this site */
			s->last_seq = h.seq;
			s->last_cpu = h.cpu;
		}
		return true;
	}
	return false;
}

/* Frames looked at per lock hold: bounds the interrupts-off time of a dump. */
#define HOLDER_CHUNK 4096u

unsigned lmm_dump_holders(struct lmm *mm, unsigned max)
{
	struct site sites[HOLDER_SITES] = { { 0 } };
	uint64_t other_pages = 0;

	lmm_check_canary(mm);
	if (lmm_refuse_context_above(mm, LMM_CTX_IRQS_OFF, "dump holders", __builtin_return_address(0)))
		return 0;
	if (!mm->holders) {
		lmm_logf("lmm: holders: off (configure LMM_CFG_HOLDERS to record who holds memory)");
		return 0;
	}
	/*
	 * A chunk of frames per lock hold, so no block splits or merges under the walk (the
	 * buddy code writes the orders under the lock).  The per-CPU paths still hand out and
	 * take back single pages meanwhile: such a page is counted or not, either way.
	 */
	for (uint64_t from = 0; from < mm->nframes; from += HOLDER_CHUNK) {
		uint64_t to = mm->nframes - from > HOLDER_CHUNK ? from + HOLDER_CHUNK : mm->nframes;
		struct lmm_held held;
		lmm_lock_here(mm, &held);
		for (uint64_t i = from; i < to; i++) {
			/*
			 * State and order in one whole read: another CPU's per-CPU path may be
			 * storing both (the frame's use word) as we look.
			 */
			const struct lmm_frame t = { .state_order = LMM_READ_ONCE(mm->frames[i].state_order) };
			if (t.state != LMM_FRAME_ALLOCATED && t.state != LMM_FRAME_EXCLUSIVE)
				continue;
			if (!tally(sites, &mm->holders[i], t.order))
				other_pages += 1ull << t.order;
		}
		lmm_unlock_here(mm, &held);
	}

	/* Largest holders first: a selection sort over 64 entries, in place. */
	unsigned found = 0;
	for (unsigned i = 0; i < HOLDER_SITES; i++)
		if (sites[i].blocks)
			sites[found++] = sites[i];
	for (unsigned i = 0; i < found; i++) {
		unsigned best = i;
		for (unsigned j = i + 1; j < found; j++)
			if (sites[j].pages > sites[best].pages)
				best = j;
		struct site t = sites[i];
		sites[i] = sites[best];
		sites[best] = t;
	}

	lmm_logf("lmm: holders: %u call sites hold allocated memory (top %u):", found, max < found ? max : found);
	for (unsigned i = 0; i < found && i < max; i++) {
		const struct site *s = &sites[i];
		lmm_logf("lmm:   %8llu pages in %7llu blocks  caller %p  contexts%s%s%s  newest: cpu %u seq %u of that cpu",
			 (unsigned long long)s->pages, (unsigned long long)s->blocks, s->caller,
			 (s->contexts & 1) ? " normal" : "", (s->contexts & 2) ? " irqs-off" : "",
			 (s->contexts & 4) ? " interrupt" : "", s->last_cpu, s->last_seq);
	}
	if (other_pages)
		lmm_logf("lmm:   %8llu pages from more than %u other call sites", (unsigned long long)other_pages,
			 HOLDER_SITES);
	return found;
}

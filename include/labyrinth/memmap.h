/*
 * memmap.h - the picture of physical memory: what a cell of the map shows, its letter
 * and colour, the grid that turns lmm_walk() runs into cells, and the lmm-map v1 text
 * block the kernel prints for tools.  Shared by kernel/memmap.c (the serial map) and
 * tests/picture/mmpicture.c (the PNG), so both draw the same cells in the same colours.
 *
 * Header-only and freestanding: the host tool includes it unchanged.
 *
 * The lmm-map v1 block, as the kernel prints it (lines of at most MEMMAP_LINE_MAX chars):
 *
 *   --- lmm-map v1 begin <label> ---          label: [a-z0-9-]{1,32}
 *   H256 R1023 F10:1024 A12 X1 P64 ...         the runs, in order from pfn 0: a kind letter
 *   ...                                        and a page count; free runs as F<order>:<count>
 *   total frames <managed> pfn <first> <end> runs <n>
 *   unusable <permille order 0> ... <permille order max>
 *   --- lmm-map v1 end ---
 *
 * `total` checks the runs: they tile [first, end) exactly, the non-hole ones add up to
 * `frames`, and there are `n` of them.
 */
#ifndef LABYRINTH_MEMMAP_H
#define LABYRINTH_MEMMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/mm.h>

/* What one cell shows.  Free memory is split by block size: big blocks are what is left
 * for large requests, small ones are fragmentation. */
enum memmap_class {
	MEMMAP_HOLE,
	MEMMAP_FREE_BIG, /* free, in blocks of order >= MEMMAP_BIG_ORDER */
	MEMMAP_FREE,     /* free, in smaller blocks                     */
	MEMMAP_ALLOCATED,
	MEMMAP_EXCLUSIVE,
	MEMMAP_POOL,
	MEMMAP_CACHED,
	MEMMAP_RESERVED,
	MEMMAP_MIXED, /* no class holds half of the cell's frames */
	MEMMAP_CLASS_COUNT
};

#define MEMMAP_BIG_ORDER (LMM_MAX_ORDER > 0 ? LMM_MAX_ORDER - 1 : 0)

/* The serial map: at most this many cells per row and rows; the PNG uses the same grid. */
#define MEMMAP_COLS 64
#define MEMMAP_MAX_ROWS 32
#define MEMMAP_MAX_CELLS (MEMMAP_COLS * MEMMAP_MAX_ROWS)
#define MEMMAP_LINE_MAX 100

/*
 * Letter (plain map and legend), name, xterm-256 background colour (colour map) and that
 * colour's standard RGB value (the PNG), so the two legends agree by construction.
 */
struct memmap_style {
	char letter;
	const char *name;
	uint8_t xterm;
	uint8_t rgb[3];
};

static const struct memmap_style memmap_styles[MEMMAP_CLASS_COUNT] = {
	[MEMMAP_HOLE] = { '.', "hole", 236, { 0x30, 0x30, 0x30 } },
	[MEMMAP_FREE_BIG] = { 'F', "free, big blocks", 34, { 0x00, 0xaf, 0x00 } },
	[MEMMAP_FREE] = { 'f', "free, small blocks", 120, { 0x87, 0xff, 0x87 } },
	[MEMMAP_ALLOCATED] = { 'A', "allocated", 160, { 0xd7, 0x00, 0x00 } },
	[MEMMAP_EXCLUSIVE] = { 'X', "exclusive", 208, { 0xff, 0x87, 0x00 } },
	[MEMMAP_POOL] = { 'P', "emergency pool", 33, { 0x00, 0x87, 0xff } },
	[MEMMAP_CACHED] = { 'C', "per-CPU cache", 141, { 0xaf, 0x87, 0xff } },
	[MEMMAP_RESERVED] = { 'R', "reserved", 244, { 0x80, 0x80, 0x80 } },
	[MEMMAP_MIXED] = { '%', "mixed", 226, { 0xff, 0xff, 0x00 } },
};

/* White letters on dark cells, black on light ones: in the colour map and the PNG alike. */
static inline bool memmap_ink_is_white(const struct memmap_style *st)
{
	return st->rgb[0] * 299 + st->rgb[1] * 587 + st->rgb[2] * 114 < 100000;
}

/* lmm-map v1 letter of each run kind ('F' is followed by the order). */
static const char memmap_run_letters[LMM_RUN_KIND_COUNT] = {
	[LMM_RUN_HOLE] = 'H',   [LMM_RUN_FREE] = 'F', [LMM_RUN_ALLOCATED] = 'A',
	[LMM_RUN_EXCLUSIVE] = 'X', [LMM_RUN_POOL] = 'P', [LMM_RUN_CACHED] = 'C',
	[LMM_RUN_RESERVED] = 'R',
};

static inline enum memmap_class memmap_class_of(enum lmm_run_kind kind, unsigned order)
{
	switch (kind) {
	case LMM_RUN_HOLE: return MEMMAP_HOLE;
	case LMM_RUN_FREE: return order >= MEMMAP_BIG_ORDER ? MEMMAP_FREE_BIG : MEMMAP_FREE;
	case LMM_RUN_ALLOCATED: return MEMMAP_ALLOCATED;
	case LMM_RUN_EXCLUSIVE: return MEMMAP_EXCLUSIVE;
	case LMM_RUN_POOL: return MEMMAP_POOL;
	case LMM_RUN_CACHED: return MEMMAP_CACHED;
	case LMM_RUN_RESERVED: return MEMMAP_RESERVED;
	case LMM_RUN_KIND_COUNT: break;
	}
	return MEMMAP_MIXED;
}

/* Frames per cell: the smallest power of two that fits @span frames in the map. */
static inline uint64_t memmap_group(uint64_t span)
{
	uint64_t g = 1;
	while (g * MEMMAP_MAX_CELLS < span)
		g <<= 1;
	return g;
}

/*
 * Runs in, cells out.  Runs arrive in pfn order and tile memory, so the grid only keeps
 * the counts of the cell being filled; each finished cell is stored as its dominant
 * class: the one with at least half of the cell's frames, else MIXED.
 */
struct memmap_grid {
	uint64_t group, ncells;
	unsigned char *cell; /* ncells entries of enum memmap_class */
	uint64_t cur, fill;
	uint64_t count[MEMMAP_CLASS_COUNT];
};

static inline void memmap_grid_init(struct memmap_grid *g, uint64_t span, unsigned char *cells)
{
	*g = (struct memmap_grid){ 0 };
	g->group = memmap_group(span);
	g->ncells = (span + g->group - 1) / g->group;
	g->cell = cells;
}

static inline void memmap_grid_close(struct memmap_grid *g)
{
	if (!g->fill)
		return;
	unsigned best = 0;
	for (unsigned c = 1; c < MEMMAP_MIXED; c++)
		if (g->count[c] > g->count[best])
			best = c;
	if (g->cur < g->ncells)
		g->cell[g->cur] = (unsigned char)(g->count[best] * 2 >= g->fill ? best : MEMMAP_MIXED);
	g->cur++;
	g->fill = 0;
	for (unsigned c = 0; c < MEMMAP_CLASS_COUNT; c++)
		g->count[c] = 0;
}

/* Add @n frames of class @c after everything added so far. */
static inline void memmap_grid_add(struct memmap_grid *g, enum memmap_class c, uint64_t n)
{
	while (n) {
		uint64_t take = g->group - g->fill;
		if (take > n)
			take = n;
		g->count[c] += take;
		g->fill += take;
		n -= take;
		if (g->fill == g->group)
			memmap_grid_close(g);
	}
}

/* Hex digits of the row addresses: at least 8, enough for the end of the map. */
static inline int memmap_addr_digits(const struct memmap_grid *g, uint64_t first_pfn)
{
	uint64_t top = (first_pfn + g->ncells * g->group) * LMM_PAGE_SIZE;
	int digits = 8;
	while (digits < 16 && (top >> (4 * digits)))
		digits++;
	return digits;
}

/*
 * kernel/memmap.c: print the lmm-map v1 block labelled @label (see above), then the map
 * (ANSI colour when kopts.mm_map, letters otherwise), its legend and the unusable free
 * space index.  Normal context only; not re-entrant (static buffers).
 */
void kernel_memmap_print(struct lmm *mm, const char *label);

#endif /* LABYRINTH_MEMMAP_H */

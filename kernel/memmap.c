/*
 * memmap.c - physical memory drawn on the serial console: a map of cells coloured by what
 * their frames are doing, the unusable free space index per order, and the same walk as
 * an lmm-map v1 block that tests/picture/mmpicture turns into a PNG.
 *
 * One lmm_walk() feeds both the block and the map, so the two always show the same
 * memory; a first walk only measures where memory ends, which never changes after init,
 * to size the cells.  Normal context only (lmm_walk() is); the buffers are static, so
 * one caller at a time (boot and after the stress test, on one CPU).
 */
#include <labyrinth/cmdline.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/memmap.h>

static unsigned char cells[MEMMAP_MAX_CELLS];

/* The block's run lines: tokens packed up to MEMMAP_LINE_MAX characters. */
struct emit {
	struct memmap_grid grid;
	char line[MEMMAP_LINE_MAX + 1];
	size_t len;
	uint64_t runs, frames, end;
};

static void emit_flush(struct emit *e)
{
	if (e->len)
		kprintf("%s\n", e->line);
	e->len = 0;
	e->line[0] = '\0';
}

static void on_run(const struct lmm_run *run, void *ctx)
{
	struct emit *e = ctx;
	char tok[40];
	int n = run->kind == LMM_RUN_FREE
			? ksnprintf(tok, sizeof(tok), "F%u:%llu", run->order, (unsigned long long)run->npages)
			: ksnprintf(tok, sizeof(tok), "%c%llu", memmap_run_letters[run->kind],
				    (unsigned long long)run->npages);
	if (e->len && e->len + 1 + (size_t)n > MEMMAP_LINE_MAX)
		emit_flush(e);
	e->len += (size_t)ksnprintf(e->line + e->len, sizeof(e->line) - e->len, "%s%s",
				    e->len ? " " : "", tok);

	memmap_grid_add(&e->grid, memmap_class_of(run->kind, run->order), run->npages);
	e->runs++;
	if (run->kind != LMM_RUN_HOLE)
		e->frames += run->npages;
	e->end = run->base_pfn + run->npages;
}

static void on_run_measure(const struct lmm_run *run, void *ctx)
{
	*(uint64_t *)ctx = run->base_pfn + run->npages;
}

/* One row: its physical address, then MEMMAP_COLS cells as letters, coloured or not. */
static void print_row(const struct memmap_grid *g, uint64_t first, int addr_digits, bool colour)
{
	/* Colour: up to 20 bytes of escape per cell, written only where the class changes. */
	static char row[MEMMAP_COLS * 24 + 64];
	size_t n = (size_t)ksnprintf(row, sizeof(row), "0x%0*llx ", addr_digits,
				     (unsigned long long)(first * g->group * LMM_PAGE_SIZE));
	int prev = -1;
	for (uint64_t c = first; c < first + MEMMAP_COLS && c < g->ncells; c++) {
		const struct memmap_style *st = &memmap_styles[g->cell[c]];
		if (colour && g->cell[c] != prev)
			n += (size_t)ksnprintf(row + n, sizeof(row) - n, "\033[38;5;%u;48;5;%um",
					       memmap_ink_is_white(st) ? 231u : 16u, st->xterm);
		prev = g->cell[c];
		n += (size_t)ksnprintf(row + n, sizeof(row) - n, "%c", st->letter);
	}
	if (colour)
		ksnprintf(row + n, sizeof(row) - n, "\033[0m");
	kprintf("%s\n", row);
}

static void print_legend(bool colour)
{
	char line[2][MEMMAP_LINE_MAX * 3];
	size_t n[2] = { 0, 0 };
	for (unsigned c = 0; c < MEMMAP_CLASS_COUNT; c++) {
		const struct memmap_style *st = &memmap_styles[c];
		unsigned l = c < MEMMAP_CLASS_COUNT / 2 ? 0 : 1;
		if (colour)
			n[l] += (size_t)ksnprintf(line[l] + n[l], sizeof(line[l]) - n[l],
						  "  \033[38;5;%u;48;5;%um%c\033[0m %s",
						  memmap_ink_is_white(st) ? 231u : 16u, st->xterm,
						  st->letter, st->name);
		else
			n[l] += (size_t)ksnprintf(line[l] + n[l], sizeof(line[l]) - n[l], "  %c %s",
						  st->letter, st->name);
	}
	kprintf("legend:%s\n       %s\n", line[0], line[1]);
	kprintf("        (big free blocks: order >= %u, %lu KiB and up)\n", (unsigned)MEMMAP_BIG_ORDER,
		(LMM_PAGE_SIZE << MEMMAP_BIG_ORDER) >> 10);
}

/*
 * The unusable free space index of every order, in 1/1000: "unusable 0 0 3 ..." in the
 * block, "0:0 1:0 2:3 ..." under the map.
 */
static void print_unusable(const struct lmm_stats *s, bool block)
{
	char line[MEMMAP_LINE_MAX + 1];
	size_t n = (size_t)ksnprintf(line, sizeof(line), "%s", block ? "unusable" : "       ");
	for (unsigned o = 0; o <= LMM_MAX_ORDER; o++) {
		unsigned u = s->unusable_permille[o];
		n += block ? (size_t)ksnprintf(line + n, sizeof(line) - n, " %u", u)
			   : (size_t)ksnprintf(line + n, sizeof(line) - n, " %u:%u", o, u);
	}
	kprintf("%s\n", line);
}

void kernel_memmap_print(struct lmm *mm, const char *label)
{
	uint64_t span = 0;
	if (lmm_walk(mm, on_run_measure, &span) == 0) {
		kprintf("memory map (%s): not drawn, lmm_walk() refused (not normal context)\n", label);
		return;
	}

	static struct emit e;
	e = (struct emit){ 0 };
	memmap_grid_init(&e.grid, span, cells);

	kprintf("--- lmm-map v1 begin %s ---\n", label);
	lmm_walk(mm, on_run, &e);
	emit_flush(&e);
	memmap_grid_close(&e.grid);
	struct lmm_stats s;
	lmm_get_stats(mm, &s);
	kprintf("total frames %llu pfn 0 %llu runs %llu\n", (unsigned long long)e.frames,
		(unsigned long long)e.end, (unsigned long long)e.runs);
	print_unusable(&s, true);
	kprintf("--- lmm-map v1 end ---\n");

	bool colour = kopts.mm_map;
	int digits = memmap_addr_digits(&e.grid, 0);
	kprintf("memory map (%s): %llu frames in pfn [0, %llu)\n"
		"1 cell = %llu frames (%llu KiB), %llu MiB per row\n", label, (unsigned long long)e.frames, (unsigned long long)e.end,
		(unsigned long long)e.grid.group,
		(unsigned long long)(e.grid.group * LMM_PAGE_SIZE >> 10),
		(unsigned long long)(e.grid.group * MEMMAP_COLS * LMM_PAGE_SIZE >> 20));
	for (uint64_t c = 0; c < e.grid.ncells; c += MEMMAP_COLS)
		print_row(&e.grid, c, digits, colour);
	print_legend(colour);
	kprintf("fragmentation: unusable free space index (1/1000 of free memory too fragmented\n"
		"for a request of that order), order:index\n");
	print_unusable(&s, false);
}

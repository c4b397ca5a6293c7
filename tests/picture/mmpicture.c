/*
 * mmpicture.c - turn a Labyrinth serial log into PNG pictures of physical memory: one
 * image per lmm-map v1 block (format in include/labyrinth/memmap.h), drawn with the same
 * cells, letters and colours as the kernel's serial map, plus a legend strip.
 *
 *   mmpicture [--text] LOG [OUTDIR]
 *
 * Writes OUTDIR/memory-<label>.png for every block (nothing without OUTDIR); --text also
 * prints each block's map as the kernel's plain map rows (mm_map=0), which is how the
 * tests prove picture and serial map agree.  A malformed or truncated block stops the
 * tool before anything is written, with "mmpicture: LOG:LINE: why" and exit status 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <labyrinth/memmap.h>

/* ---- Reading the log ------------------------------------------------------------------- */

/* Larger counts than the 52-bit physical address space holds pages are not a real log. */
#define MAX_PFN (LMM_PHYS_LIMIT >> LMM_PAGE_SHIFT)
#define MAX_BLOCKS 64
#define LABEL_MAX 32

struct block {
	char label[LABEL_MAX + 1];
	long begin_line;
	struct lmm_run *runs;
	size_t nruns, cap;
	uint64_t covered, managed; /* frames in the runs so far; in non-hole runs */
	bool have_total;
	uint64_t frames, first, end, total_runs;
	unsigned nunusable;
	unsigned unusable[32];
};

static const char *log_name;
static long line_no;

static _Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mmpicture: %s:%ld: ", log_name, line_no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A line quoted in an error, cut so a binary line cannot flood the terminal. */
static const char *quote(const char *s)
{
	static char buf[64];
	size_t i = 0;
	for (; s[i] && i < sizeof(buf) - 4; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	if (s[i])
		strcpy(buf + i, "...");
	return buf;
}

/* A decimal count in [min, MAX_PFN]; false if @s is not exactly that. */
static bool parse_count(const char *s, size_t n, uint64_t min, uint64_t *out)
{
	if (n == 0 || n > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > MAX_PFN)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

static enum lmm_run_kind kind_of_letter(char c)
{
	for (unsigned k = 0; k < LMM_RUN_KIND_COUNT; k++)
		if (memmap_run_letters[k] == c)
			return (enum lmm_run_kind)k;
	return LMM_RUN_KIND_COUNT;
}

static void add_run(struct block *b, const char *tok, size_t n)
{
	enum lmm_run_kind kind = kind_of_letter(tok[0]);
	uint64_t order = 0, count = 0;
	bool ok = kind != LMM_RUN_KIND_COUNT;
	if (ok && kind == LMM_RUN_FREE) {
		const char *colon = memchr(tok, ':', n);
		ok = colon && parse_count(tok + 1, (size_t)(colon - tok - 1), 0, &order) &&
		     order <= LMM_MAX_ORDER && parse_count(colon + 1, n - (size_t)(colon + 1 - tok), 1, &count);
	} else if (ok) {
		ok = parse_count(tok + 1, n - 1, 1, &count);
	}
	if (!ok)
		fail("bad run '%.*s' in block '%s' (expected H|A|X|P|C|R<count> or F<order 0..%u>:<count>)",
		     (int)(n > 40 ? 40 : n), tok, b->label, (unsigned)LMM_MAX_ORDER);
	if (b->covered + count > MAX_PFN)
		fail("runs of block '%s' cover more than 2^%u frames", b->label,
		     (unsigned)(52 - LMM_PAGE_SHIFT));
	if (b->nruns == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->runs = realloc(b->runs, b->cap * sizeof(*b->runs));
		if (!b->runs) {
			perror("mmpicture");
			exit(1);
		}
	}
	b->runs[b->nruns++] = (struct lmm_run){ b->covered, count, kind, (unsigned)order };
	b->covered += count;
	if (kind != LMM_RUN_HOLE)
		b->managed += count;
}

/* A run line: tokens separated by single spaces.  Anything else in a block is garbage. */
static void parse_runs(struct block *b, const char *s)
{
	if (kind_of_letter(s[0]) == LMM_RUN_KIND_COUNT || s[1] < '0' || s[1] > '9')
		fail("unexpected line inside block '%s' begun at line %ld: '%s'", b->label,
		     b->begin_line, quote(s));
	while (*s) {
		size_t n = strcspn(s, " ");
		if (n == 0)
			fail("bad run syntax in block '%s': empty token (two spaces?)", b->label);
		add_run(b, s, n);
		s += n;
		if (*s == ' ')
			s++;
	}
}

static void parse_total(struct block *b, const char *s)
{
	char tail;
	unsigned long long frames, first, end, runs;
	if (b->have_total)
		fail("second total line in block '%s'", b->label);
	if (sscanf(s, "total frames %llu pfn %llu %llu runs %llu%c", &frames, &first, &end, &runs, &tail) != 4)
		fail("bad total line '%s' (expected 'total frames N pfn FIRST END runs N')", quote(s));
	if (first > end || end > MAX_PFN || frames > end - first)
		fail("total line of block '%s': impossible pfn range [%llu, %llu) for %llu frames", b->label,
		     first, end, frames);
	b->have_total = true;
	b->frames = frames, b->first = first, b->end = end, b->total_runs = runs;
	if (b->covered > end - first)
		fail("runs of block '%s' cover %" PRIu64 " frames, more than the %llu of pfn [%llu, %llu)",
		     b->label, b->covered, end - first, first, end);
}

static void parse_unusable(struct block *b, const char *s)
{
	const char *p = s + strlen("unusable");
	b->nunusable = 0;
	while (*p == ' ') {
		p++;
		size_t n = strcspn(p, " ");
		uint64_t v;
		if (!parse_count(p, n, 0, &v) || v > 1000 || b->nunusable == 32)
			fail("bad unusable line '%s' (expected up to 32 permille values 0..1000)", quote(s));
		b->unusable[b->nunusable++] = (unsigned)v;
		p += n;
	}
	if (*p || b->nunusable == 0)
		fail("bad unusable line '%s' (expected up to 32 permille values 0..1000)", quote(s));
}

/* The end marker: the block must be complete and consistent with its total line. */
static void finish(struct block *b)
{
	if (!b->have_total)
		fail("block '%s' begun at line %ld ends without its total line", b->label, b->begin_line);
	if (b->covered != b->end - b->first)
		fail("runs of block '%s' cover %" PRIu64 " frames, its pfn range [%" PRIu64 ", %" PRIu64
		     ") has %" PRIu64, b->label, b->covered, b->first, b->end, b->end - b->first);
	if (b->managed != b->frames)
		fail("block '%s': %" PRIu64 " frames in non-hole runs, the total line says %" PRIu64,
		     b->label, b->managed, b->frames);
	if (b->nruns != b->total_runs)
		fail("block '%s' has %zu runs, the total line says %" PRIu64, b->label, b->nruns,
		     b->total_runs);
	for (size_t i = 0; i < b->nruns; i++)
		b->runs[i].base_pfn += b->first;
}

#define MARK "--- lmm-map "

/* "--- lmm-map v1 begin LABEL ---": returns the label's block, fails on anything else. */
static void parse_begin(struct block *b, const char *s)
{
	const char *p = s + strlen(MARK);
	if (*p != 'v' || p[1] < '0' || p[1] > '9')
		fail("malformed lmm-map marker '%s'", quote(s));
	char *end;
	errno = 0;
	unsigned long v = strtoul(p + 1, &end, 10);
	if (errno || *end != ' ')
		fail("malformed lmm-map marker '%s'", quote(s));
	if (v != 1)
		fail("unsupported lmm-map version v%lu (this tool reads v1)", v);
	p = end + 1;
	if (strncmp(p, "begin ", 6) != 0)
		fail("expected a begin marker, found '%s'", quote(s));
	p += 6;
	size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (n == 0 || n > LABEL_MAX || strcmp(p + n, " ---") != 0)
		fail("bad block label in '%s' (expected [a-z0-9-]{1,%d} then ' ---')", quote(s), LABEL_MAX);
	*b = (struct block){ .begin_line = line_no };
	memcpy(b->label, p, n);
	b->label[n] = '\0';
}

static size_t read_log(FILE *f, struct block *blocks)
{
	size_t nblocks = 0;
	struct block *cur = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) >= 0) {
		line_no++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = '\0';
		if ((size_t)len != strlen(line))
			fail("NUL byte in the log%s", cur ? " inside a block" : "");
		if (!cur) {
			if (strncmp(line, MARK, strlen(MARK)) != 0)
				continue; /* the rest of the serial log */
			if (nblocks == MAX_BLOCKS)
				fail("more than %d lmm-map blocks", MAX_BLOCKS);
			cur = &blocks[nblocks];
			parse_begin(cur, line);
			for (size_t i = 0; i < nblocks; i++)
				if (strcmp(blocks[i].label, cur->label) == 0)
					fail("block label '%s' repeated (first at line %ld)", cur->label,
					     blocks[i].begin_line);
			nblocks++;
		} else if (strcmp(line, MARK "v1 end ---") == 0) {
			finish(cur);
			cur = NULL;
		} else if (strncmp(line, MARK, strlen(MARK)) == 0) {
			fail("'%s' inside block '%s' begun at line %ld (missing end marker)", quote(line),
			     cur->label, cur->begin_line);
		} else if (strncmp(line, "total ", 6) == 0) {
			parse_total(cur, line);
		} else if (strncmp(line, "unusable", 8) == 0 && (line[8] == ' ' || !line[8])) {
			if (!cur->have_total)
				fail("unusable line before the total line in block '%s'", cur->label);
			parse_unusable(cur, line);
		} else {
			if (cur->have_total)
				fail("line after the total line in block '%s': '%s'", cur->label, quote(line));
			parse_runs(cur, line);
		}
	}
	free(line);
	if (ferror(f))
		fail("read error: %s", strerror(errno));
	if (cur)
		fail("log ends inside block '%s' begun at line %ld (truncated: no end marker)", cur->label,
		     cur->begin_line);
	return nblocks;
}

/* ---- Drawing ---------------------------------------------------------------------------- */

/* A 5x7 bitmap font: bit 4 is the leftmost column.  Lower case falls back to upper. */
static const struct glyph {
	char c;
	uint8_t rows[7];
} font[] = {
	{ 'A', { 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
	{ 'B', { 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e } },
	{ 'C', { 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e } },
	{ 'D', { 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c } },
	{ 'E', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f } },
	{ 'F', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'G', { 0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f } },
	{ 'H', { 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
	{ 'I', { 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ 'J', { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c } },
	{ 'K', { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 } },
	{ 'L', { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f } },
	{ 'M', { 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11 } },
	{ 'N', { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 } },
	{ 'O', { 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'P', { 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10 } },
	{ 'Q', { 0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d } },
	{ 'R', { 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11 } },
	{ 'S', { 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e } },
	{ 'T', { 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 } },
	{ 'U', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
	{ 'V', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04 } },
	{ 'W', { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a } },
	{ 'X', { 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11 } },
	{ 'Y', { 0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04 } },
	{ 'Z', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f } },
	{ '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e } },
	{ '1', { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e } },
	{ '2', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f } },
	{ '3', { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e } },
	{ '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 } },
	{ '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e } },
	{ '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e } },
	{ '7', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 } },
	{ '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e } },
	{ '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c } },
	{ ':', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00 } },
	{ '.', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c } },
	{ ',', { 0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08 } },
	{ '-', { 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00 } },
	{ '(', { 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 } },
	{ ')', { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 } },
	{ '=', { 0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00 } },
	{ '%', { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 } },
	{ '/', { 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 } },
	{ '>', { 0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08 } },
	{ '<', { 0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02 } },
	{ '[', { 0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e } },
	{ ']', { 0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e } },
	{ '^', { 0x04, 0x0a, 0x11, 0x00, 0x00, 0x00, 0x00 } },
	{ '+', { 0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00 } },
	{ 'x', { 0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11 } },
	{ 'f', { 0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08 } },
};

struct canvas {
	int w, h;
	uint8_t *px; /* RGB, row after row */
};

static const uint8_t INK[3] = { 0x10, 0x10, 0x10 }, PAPER[3] = { 0xff, 0xff, 0xff };
static const uint8_t WHITE[3] = { 0xff, 0xff, 0xff };

static void fill(struct canvas *c, int x, int y, int w, int h, const uint8_t rgb[3])
{
	for (int j = y; j < y + h; j++)
		for (int i = x; i < x + w; i++)
			if (i >= 0 && j >= 0 && i < c->w && j < c->h)
				memcpy(&c->px[((size_t)j * (size_t)c->w + (size_t)i) * 3], rgb, 3);
}

/* Prose is drawn in capitals; a cell's letter exactly ('f' and 'F' differ). */
static const struct glyph *glyph_of(char ch, bool exact)
{
	if (!exact && ch >= 'a' && ch <= 'z')
		ch = (char)(ch - 'a' + 'A');
	for (size_t i = 0; i < sizeof(font) / sizeof(font[0]); i++)
		if (font[i].c == ch)
			return &font[i];
	return exact ? glyph_of(ch, false) : NULL;
}

#define GLYPH_ADVANCE 6 /* 5 columns and a gap, times the scale */
#define MARGIN 16
#define SCALE 2
#define LINE_H (7 * SCALE + 8)
#define CELL 16 /* pitch; the cell is CELL - 1 wide, the last pixel is the grid line */

/* Draw @s at (x, y), each font pixel @scale x @scale; returns the x after it. */
static int draw(struct canvas *c, int x, int y, int scale, const uint8_t rgb[3], const char *s, bool exact)
{
	for (; *s; s++, x += GLYPH_ADVANCE * scale) {
		const struct glyph *g = glyph_of(*s, exact);
		for (int r = 0; g && r < 7; r++)
			for (int k = 0; k < 5; k++)
				if (g->rows[r] & (0x10 >> k))
					fill(c, x + k * scale, y + r * scale, scale, scale, rgb);
	}
	return x;
}


static int text(struct canvas *c, int x, int y, int scale, const uint8_t rgb[3], const char *s)
{
	return draw(c, x, y, scale, rgb, s, false);
}

/* At SCALE if the line fits the picture's width, else at half that. */
static void text_fit(struct canvas *c, int x, int y, const char *s)
{
	bool fits = x + (int)strlen(s) * GLYPH_ADVANCE * SCALE <= c->w - x;
	text(c, x, y + (fits ? 0 : SCALE * 2), fits ? SCALE : 1, INK, s);
}

/* A cell's letter, centred in a CELL - 1 square. */
static void letter(struct canvas *c, int x, int y, const struct memmap_style *st)
{
	char l[2] = { st->letter, 0 };
	fill(c, x, y, CELL - 1, CELL - 1, st->rgb);
	draw(c, x + (CELL - 1 - 5) / 2, y + (CELL - 1 - 7) / 2, 1,
	     memmap_ink_is_white(st) ? WHITE : INK, l, true);
}


static void render(const struct block *b, struct canvas *cv, char *rows_text, size_t rows_len)
{
	static unsigned char cells[MEMMAP_MAX_CELLS];
	struct memmap_grid g;
	memmap_grid_init(&g, b->end - b->first, cells);
	for (size_t i = 0; i < b->nruns; i++)
		memmap_grid_add(&g, memmap_class_of(b->runs[i].kind, b->runs[i].order), b->runs[i].npages);
	memmap_grid_close(&g);

	int digits = memmap_addr_digits(&g, b->first);
	uint64_t nrows = (g.ncells + MEMMAP_COLS - 1) / MEMMAP_COLS;
	int label_w = (digits + 3) * GLYPH_ADVANCE * SCALE; /* "0x", the digits, a gap */
	int grid_x = MARGIN + label_w, grid_y = MARGIN + 2 * LINE_H + 8;
	int legend_y = grid_y + (int)nrows * CELL + 12;
	cv->w = grid_x + MEMMAP_COLS * CELL + MARGIN;
	cv->h = legend_y + 4 * LINE_H + MARGIN;
	cv->px = malloc((size_t)cv->w * (size_t)cv->h * 3);
	if (!cv->px) {
		perror("mmpicture");
		exit(1);
	}
	fill(cv, 0, 0, cv->w, cv->h, PAPER);

	char s[256];
	snprintf(s, sizeof(s), "LABYRINTH PHYSICAL MEMORY: %s", b->label);
	text(cv, MARGIN, MARGIN, SCALE, INK, s);
	snprintf(s, sizeof(s), "%" PRIu64 " frames in pfn [%" PRIu64 ", %" PRIu64 "), 1 cell = %" PRIu64
		 " frames (%" PRIu64 " KiB), %" PRIu64 " MiB per row", b->frames, b->first, b->end, g.group,
		 g.group * LMM_PAGE_SIZE >> 10, g.group * MEMMAP_COLS * LMM_PAGE_SIZE >> 20);
	text_fit(cv, MARGIN, MARGIN + LINE_H, s);

	size_t tl = 0;
	for (uint64_t r = 0; r < nrows; r++) {
		uint64_t addr = (b->first + r * MEMMAP_COLS * g.group) * LMM_PAGE_SIZE;
		int y = grid_y + (int)r * CELL;
		/* Drawn "0x" and upper-case digits (the font has no lower-case a-e). */
		snprintf(s, sizeof(s), "0x%0*" PRIX64, digits, addr);
		draw(cv, MARGIN, y + 1, SCALE, INK, s, true);
		if (rows_text)
			tl += (size_t)snprintf(rows_text + tl, rows_len - tl, "0x%0*" PRIx64 " ", digits, addr);
		for (uint64_t k = 0; k < MEMMAP_COLS && r * MEMMAP_COLS + k < g.ncells; k++) {
			const struct memmap_style *st = &memmap_styles[cells[r * MEMMAP_COLS + k]];
			letter(cv, grid_x + (int)k * CELL, y, st);
			if (rows_text)
				tl += (size_t)snprintf(rows_text + tl, rows_len - tl, "%c", st->letter);
		}
		if (rows_text)
			tl += (size_t)snprintf(rows_text + tl, rows_len - tl, "\n");
	}

	/* The legend strip: swatch with its letter, then the name, wrapped to the width. */
	int x = MARGIN, y = legend_y;
	for (unsigned c = 0; c < MEMMAP_CLASS_COUNT; c++) {
		const struct memmap_style *st = &memmap_styles[c];
		int w = CELL + 6 + (int)strlen(st->name) * GLYPH_ADVANCE * SCALE + 20;
		if (x + w > cv->w - MARGIN)
			x = MARGIN, y += LINE_H;
		letter(cv, x, y, st);
		x = text(cv, x + CELL + 6, y, SCALE, INK, st->name) + 20;
	}
	y += LINE_H;
	snprintf(s, sizeof(s), "big free blocks: order >= %u (%lu KiB and up)", (unsigned)MEMMAP_BIG_ORDER,
		 (unsigned long)((LMM_PAGE_SIZE << MEMMAP_BIG_ORDER) >> 10));
	text_fit(cv, MARGIN, y, s);
	y += LINE_H;
	size_t n = (size_t)snprintf(s, sizeof(s), "unusable free space index (1/1000) by order:");
	for (unsigned o = 0; o < b->nunusable && n < sizeof(s); o++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, " %u:%u", o, b->unusable[o]);
	if (b->nunusable)
		text_fit(cv, MARGIN, y, s);
}

/* ---- PNG: 8-bit RGB, filter 0 on every row, one zlib stream in one IDAT ------------------ */

static void chunk(FILE *f, const char type[4], const unsigned char *data, size_t len)
{
	unsigned char be[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
				(unsigned char)(len >> 8), (unsigned char)len };
	fwrite(be, 1, 4, f);
	fwrite(type, 1, 4, f);
	if (len)
		fwrite(data, 1, len, f);
	uLong crc = crc32(0, (const Bytef *)type, 4);
	if (len)
		crc = crc32(crc, data, (uInt)len);
	unsigned char c[4] = { (unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
			       (unsigned char)(crc >> 8), (unsigned char)crc };
	fwrite(c, 1, 4, f);
}

static void write_png(const char *path, const struct canvas *cv)
{
	size_t stride = (size_t)cv->w * 3 + 1, raw_len = stride * (size_t)cv->h;
	unsigned char *raw = malloc(raw_len);
	uLongf zlen = compressBound((uLong)raw_len);
	unsigned char *z = malloc(zlen);
	if (!raw || !z) {
		perror("mmpicture");
		exit(1);
	}
	for (int y = 0; y < cv->h; y++) {
		raw[(size_t)y * stride] = 0;
		memcpy(&raw[(size_t)y * stride + 1], &cv->px[(size_t)y * (size_t)cv->w * 3], stride - 1);
	}
	if (compress2(z, &zlen, raw, (uLong)raw_len, 9) != Z_OK) {
		fprintf(stderr, "mmpicture: zlib could not compress %s\n", path);
		exit(1);
	}
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "mmpicture: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	fwrite(sig, 1, 8, f);
	unsigned char ihdr[13] = { (unsigned char)(cv->w >> 24), (unsigned char)(cv->w >> 16),
				   (unsigned char)(cv->w >> 8), (unsigned char)cv->w,
				   (unsigned char)(cv->h >> 24), (unsigned char)(cv->h >> 16),
				   (unsigned char)(cv->h >> 8), (unsigned char)cv->h,
				   8, 2, 0, 0, 0 }; /* 8 bits, RGB, deflate, filter set 0, no interlace */
	chunk(f, "IHDR", ihdr, sizeof(ihdr));
	chunk(f, "IDAT", z, zlen);
	chunk(f, "IEND", NULL, 0);
	if (fclose(f) != 0) {
		fprintf(stderr, "mmpicture: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(raw);
	free(z);
}

int main(int argc, char **argv)
{
	bool want_text = argc > 1 && strcmp(argv[1], "--text") == 0;
	int a = want_text ? 2 : 1;
	if (argc - a < 1 || argc - a > 2) {
		fprintf(stderr, "usage: mmpicture [--text] LOG [OUTDIR]\n");
		return 2;
	}
	log_name = argv[a];
	const char *outdir = argc - a == 2 ? argv[a + 1] : NULL;
	FILE *f = fopen(log_name, "r");
	if (!f) {
		fprintf(stderr, "mmpicture: cannot open %s: %s\n", log_name, strerror(errno));
		return 1;
	}
	static struct block blocks[MAX_BLOCKS];
	size_t n = read_log(f, blocks);
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "mmpicture: %s: no lmm-map blocks in the log (booted without them?)\n", log_name);
		return 1;
	}
	static char rows[MEMMAP_MAX_ROWS * (MEMMAP_COLS + 32) + 1];
	for (size_t i = 0; i < n; i++) {
		struct canvas cv;
		rows[0] = '\0';
		render(&blocks[i], &cv, want_text ? rows : NULL, sizeof(rows));
		if (want_text)
			printf("memory map (%s):\n%s", blocks[i].label, rows);
		if (outdir) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/memory-%s.png", outdir, blocks[i].label);
			write_png(path, &cv);
			printf("mmpicture: wrote %s (%dx%d, %zu runs)\n", path, cv.w, cv.h, blocks[i].nruns);
		}
		free(cv.px);
		free(blocks[i].runs);
	}
	return 0;
}

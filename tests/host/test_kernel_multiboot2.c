/*
 * test_kernel_multiboot2.c - mb2_parse() against synthetic multiboot2 structures:
 * well-formed ones (GRUB- and QEMU-like maps, odd entry sizes, modules, unknown tags)
 * and every malformed shape it must refuse, plus a mutation fuzzer; and mb2_ram_plan(),
 * which decides what of a memory map the allocator gets.  Each structure is copied into
 * a heap block of exactly its size so ASan catches any stray read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/multiboot2.h>

#include "testlib.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* ---- Building structures ------------------------------------------------------------ */

struct mb {
	_Alignas(8) uint8_t buf[16384];
	uint32_t len;
};

struct ent {
	uint64_t base, len;
	uint32_t type;
};

static void put32(struct mb *m, uint32_t off, uint32_t v) { memcpy(m->buf + off, &v, 4); }

static void mb_begin(struct mb *m)
{
	memset(m->buf, 0xEE, sizeof(m->buf)); /* padding is garbage, as it may be */
	put32(m, 0, 0);
	put32(m, 4, 0);
	m->len = 8;
}

static void mb_align(struct mb *m)
{
	m->len = (m->len + 7u) & ~7u;
}

/* Append a tag; @size is what its header claims.  Returns the tag's offset. */
static uint32_t mb_tag(struct mb *m, uint32_t type, uint32_t size, const void *payload,
		       uint32_t plen)
{
	mb_align(m);
	uint32_t off = m->len;
	put32(m, off, type);
	put32(m, off + 4, size);
	if (plen)
		memcpy(m->buf + off + 8, payload, plen);
	m->len = off + 8 + plen;
	return off;
}

static uint32_t mb_cmdline(struct mb *m, const char *s)
{
	uint32_t n = (uint32_t)strlen(s) + 1;
	return mb_tag(m, 1, 8 + n, s, n);
}

static uint32_t mb_module(struct mb *m, uint32_t start, uint32_t end, const char *name)
{
	uint8_t p[256];
	uint32_t n = (uint32_t)strlen(name) + 1;
	memcpy(p, &start, 4);
	memcpy(p + 4, &end, 4);
	memcpy(p + 8, name, n);
	return mb_tag(m, 3, 16 + n, p, 8 + n);
}

/* Memory map with entries @entry_size apart; bytes beyond the 24 defined are garbage. */
static uint32_t mb_mmap(struct mb *m, uint32_t entry_size, const struct ent *e, uint32_t n)
{
	static uint8_t p[16384];
	uint32_t hdr[2] = { entry_size, 0 };
	memcpy(p, hdr, 8);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *q = p + 8 + (size_t)i * entry_size;
		memset(q, 0xA5, entry_size);
		memcpy(q, &e[i].base, 8);
		memcpy(q + 8, &e[i].len, 8);
		memcpy(q + 16, &e[i].type, 4);
		memset(q + 20, 0, entry_size >= 24 ? 4 : 0);
	}
	uint32_t plen = 8 + n * entry_size;
	return mb_tag(m, 6, 8 + plen, p, plen);
}

static uint32_t mb_unknown(struct mb *m, uint32_t type, uint32_t plen)
{
	uint8_t p[64];
	memset(p, 0x5A, sizeof(p));
	return mb_tag(m, type, 8 + plen, p, plen);
}

/* End tag and total_size = everything so far. */
static void mb_end(struct mb *m)
{
	mb_tag(m, 0, 8, NULL, 0);
	put32(m, 0, m->len);
}

/* ---- Parsing from an exact-size heap copy ------------------------------------------- */

static struct boot_info bi;
static uint32_t erroff;

/* Copy @copy bytes into a heap block of exactly that size and parse with @avail. */
static enum mb2_status parse_copy(const struct mb *m, size_t copy, size_t avail)
{
	uint8_t *p = malloc(copy ? copy : 1);
	memcpy(p, m->buf, copy);
	erroff = 0xDEADBEEF;
	enum mb2_status s = mb2_parse(p, avail, 0x10000, &bi, &erroff);
	free(p);
	return s;
}

/* The usual case: readable area = exactly total_size as built. */
static enum mb2_status parse(const struct mb *m)
{
	return parse_copy(m, m->len, m->len);
}

#define EXPECT_STATUS(expr, want, want_off)                                                   \
	do {                                                                                  \
		enum mb2_status got_ = (expr);                                                \
		ASSERT(got_ == (want), "status %d (%s), expected %d (%s), offset %u", got_,   \
		       mb2_status_str(got_), (want), mb2_status_str(want), erroff);           \
		ASSERT(erroff == (uint32_t)(want_off), "error offset %u, expected %u",        \
		       erroff, (uint32_t)(want_off));                                         \
	} while (0)

/* QEMU i440fx with 128 MiB as SeaBIOS reports it through GRUB. */
static const struct ent qemu128[] = {
	{ 0x0, 0x9fc00, 1 },
	{ 0x9fc00, 0x400, 2 },
	{ 0xf0000, 0x10000, 2 },
	{ 0x100000, 0x7ee0000, 1 },
	{ 0x7fe0000, 0x20000, 2 },
	{ 0xfffc0000, 0x40000, 2 },
};
#define QEMU128_USABLE (0x9fc00ull + 0x7ee0000ull)

/* ---- Well-formed structures ----------------------------------------------------------- */

/* The parsed memory map holds exactly the six entries of qemu128, in order. */
static void check_qemu128_entries(void)
{
	for (uint32_t i = 0; i < bi.nmmap && i < 6; i++)
		CHECK(bi.mmap[i].base == qemu128[i].base && bi.mmap[i].len == qemu128[i].len &&
		      bi.mmap[i].type == qemu128[i].type, "entry %u differs", i);
}

static void good_structure_parses(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "pit_hz=100 mode=test");
	mb_unknown(&m, 21, 4);  /* load base address */
	mb_unknown(&m, 4, 8);   /* basic meminfo     */
	mb_module(&m, 0x200000, 0x201234, "initrd.img arg");
	mb_unknown(&m, 5, 12);  /* BIOS boot device  */
	mb_mmap(&m, 24, qemu128, 6);
	mb_module(&m, 0x300000, 0x300000, "empty");
	mb_unknown(&m, 14, 20); /* ACPI old RSDP     */
	mb_end(&m);

	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.mbi_phys == 0x10000 && bi.mbi_size == m.len, "phys %#llx size %u",
	      (unsigned long long)bi.mbi_phys, bi.mbi_size);
	CHECK(bi.has_cmdline && strcmp(bi.cmdline, "pit_hz=100 mode=test") == 0, "cmdline '%s'",
	      bi.cmdline);
	CHECK(!bi.cmdline_truncated, "cmdline marked truncated");
	CHECK(bi.has_mmap && bi.nmmap == 6, "nmmap %u", bi.nmmap);
	check_qemu128_entries();
	CHECK(bi.nmodules == 2, "nmodules %u", bi.nmodules);
	CHECK(bi.modules[0].start == 0x200000 && bi.modules[0].end == 0x201234 &&
	      strcmp(bi.modules[0].name, "initrd.img arg") == 0, "module 0: %s", bi.modules[0].name);
	CHECK(bi.modules[1].start == 0x300000 && bi.modules[1].end == 0x300000 &&
	      strcmp(bi.modules[1].name, "empty") == 0, "module 1: %s", bi.modules[1].name);
	CHECK(bi.unknown_tags == 3, "unknown_tags %u", bi.unknown_tags);
	CHECK(bi.acpi_rsdp_tag == 14 && bi.acpi_rsdp_len == 20, "ACPI tag %u, %u bytes",
	      bi.acpi_rsdp_tag, bi.acpi_rsdp_len);
	CHECK(mb2_usable_bytes(&bi) == QEMU128_USABLE, "usable %llu",
	      (unsigned long long)mb2_usable_bytes(&bi));
}

static void minimal_structure_is_empty_but_valid(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(!bi.has_cmdline && !bi.has_mmap && bi.nmmap == 0 && bi.nmodules == 0 &&
	      bi.unknown_tags == 0 && bi.cmdline[0] == '\0', "not empty");
	CHECK(mb2_usable_bytes(&bi) == 0, "usable not 0");
}

/* Tags whose sizes are not multiples of 8 are followed by padding up to the next tag. */
static void tags_are_8_byte_aligned(void)
{
	static struct mb m;
	mb_begin(&m);
	uint32_t a = mb_cmdline(&m, "abcd");    /* size 13 */
	uint32_t b = mb_unknown(&m, 99, 1);     /* size 9  */
	uint32_t c = mb_module(&m, 1, 2, "x");  /* size 18 */
	mb_end(&m);
	CHECK(a == 8 && b == 24 && c == 40, "builder offsets %u %u %u", a, b, c);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(strcmp(bi.cmdline, "abcd") == 0 && bi.unknown_tags == 1 && bi.nmodules == 1 &&
	      strcmp(bi.modules[0].name, "x") == 0, "misread after padding");
}

static void mmap_entry_size_32(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 32, qemu128, 6);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	ASSERT(bi.nmmap == 6, "nmmap %u", bi.nmmap);
	check_qemu128_entries();
	CHECK(mb2_usable_bytes(&bi) == QEMU128_USABLE, "usable differs");
}

/* entry_size 28: entries are 4-byte aligned only; reading them must not be a UB load. */
static void mmap_entry_size_unaligned_28(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 28, qemu128, 6);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	ASSERT(bi.nmmap == 6, "nmmap %u", bi.nmmap);
	check_qemu128_entries();
}

/* A partial entry at the end of the tag is padding, not an entry. */
static void mmap_trailing_partial_entry_ignored(void)
{
	static struct mb m;
	mb_begin(&m);
	uint32_t off = mb_mmap(&m, 24, qemu128, 2);
	put32(&m, off + 4, 16 + 2 * 24 + 20); /* claim 20 more bytes: not a whole entry */
	m.len = off + 16 + 2 * 24 + 20;
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.nmmap == 2, "nmmap %u", bi.nmmap);
}

static void mmap_exactly_max_entries(void)
{
	static struct ent e[MB2_MAX_MMAP];
	static struct mb m;
	for (uint32_t i = 0; i < MB2_MAX_MMAP; i++)
		e[i] = (struct ent){ i * 0x10000ull, 0x8000, i % 2 ? 2 : 1 };
	mb_begin(&m);
	mb_mmap(&m, 24, e, MB2_MAX_MMAP);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.nmmap == MB2_MAX_MMAP, "nmmap %u", bi.nmmap);
	CHECK(mb2_usable_bytes(&bi) == 64 * 0x8000ull, "usable %llu",
	      (unsigned long long)mb2_usable_bytes(&bi));
}

static void mmap_types_kept_verbatim(void)
{
	static const struct ent e[] = {
		{ 0, 0x1000, 1 }, { 0x1000, 0x1000, 2 }, { 0x2000, 0x1000, 3 },
		{ 0x3000, 0x1000, 4 }, { 0x4000, 0x1000, 5 }, { 0x5000, 0x1000, 77 },
	};
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 24, e, 6);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	ASSERT(bi.nmmap == 6, "nmmap %u", bi.nmmap);
	CHECK(bi.mmap[5].type == 77, "type %u", bi.mmap[5].type);
	CHECK(mb2_usable_bytes(&bi) == 0x1000, "only type 1 is usable");
}

static void cmdline_empty(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "");
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.has_cmdline && bi.cmdline[0] == '\0' && !bi.cmdline_truncated, "'%s'", bi.cmdline);
}

/* No NUL inside the tag: the copy stops at the tag's end, never reads past it. */
static void cmdline_without_nul_is_bounded(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_tag(&m, 1, 8 + 5, "hello", 5);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(strcmp(bi.cmdline, "hello") == 0, "'%s'", bi.cmdline);
	CHECK(bi.cmdline_truncated, "not marked truncated");
}

static void cmdline_longer_than_buffer_truncated(void)
{
	static char s[2000];
	static struct mb m;
	memset(s, 'k', sizeof(s) - 1);
	mb_begin(&m);
	mb_cmdline(&m, s);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(strlen(bi.cmdline) == MB2_CMDLINE_MAX - 1, "length %zu", strlen(bi.cmdline));
	CHECK(bi.cmdline_truncated, "not marked truncated");
}

static void module_name_truncated(void)
{
	static char s[200];
	static struct mb m;
	memset(s, 'n', sizeof(s) - 1);
	mb_begin(&m);
	mb_module(&m, 0x1000, 0x2000, s);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(strlen(bi.modules[0].name) == sizeof(bi.modules[0].name) - 1, "length %zu",
	      strlen(bi.modules[0].name));
}

static void exactly_max_modules(void)
{
	static struct mb m;
	mb_begin(&m);
	for (uint32_t i = 0; i < MB2_MAX_MODULES; i++)
		mb_module(&m, i * 0x1000, i * 0x1000 + 10, "m");
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.nmodules == MB2_MAX_MODULES, "nmodules %u", bi.nmodules);
}

/* The end tag may be followed by bytes total_size still covers: they are not read as tags. */
static void bytes_after_end_tag_ignored(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "a=1");
	mb_end(&m);
	memset(m.buf + m.len, 0xFF, 16); /* would be a tag of absurd size */
	m.len += 16;
	put32(&m, 0, m.len);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
}

/* avail unknown (SIZE_MAX), as a kernel without a mapping limit would pass. */
static void avail_unknown_still_bounded_by_total_size(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 24, qemu128, 6);
	mb_end(&m);
	EXPECT_STATUS(parse_copy(&m, m.len, SIZE_MAX), MB2_OK, 0);
	CHECK(bi.nmmap == 6, "nmmap %u", bi.nmmap);
}

/* ---- Usable RAM ----------------------------------------------------------------------- */

/* QEMU (since 2.x) lists a 12 GiB reserved region near 1 TiB for the 64-bit PCI hole. */
static void qemu_1tib_reserved_region_not_counted(void)
{
	static struct ent e[8];
	static struct mb m;
	memcpy(e, qemu128, sizeof(qemu128));
	e[6] = (struct ent){ 0xFD00000000ull, 0x300000000ull, 2 };
	mb_begin(&m);
	mb_mmap(&m, 24, e, 7);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.nmmap == 7, "nmmap %u", bi.nmmap);
	CHECK(mb2_usable_bytes(&bi) == QEMU128_USABLE, "usable %llu, expected %llu",
	      (unsigned long long)mb2_usable_bytes(&bi), (unsigned long long)QEMU128_USABLE);
}

/* i440fx with 4 GiB: 3 GiB below the PCI hole, 1 GiB above 4 GiB. */
static void usable_4g_split_around_pci_hole(void)
{
	static const struct ent e[] = {
		{ 0x0, 0x9fc00, 1 },           { 0x9fc00, 0x400, 2 },
		{ 0xf0000, 0x10000, 2 },       { 0x100000, 0xbfee0000, 1 },
		{ 0xbffe0000, 0x20000, 2 },    { 0xfeffc000, 0x4000, 2 },
		{ 0xfffc0000, 0x40000, 2 },    { 0x100000000, 0x40000000, 1 },
		{ 0xFD00000000, 0x300000000, 2 },
	};
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 24, e, 9);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	uint64_t want = 0x9fc00 + 0xbfee0000ull + 0x40000000ull;
	CHECK(mb2_usable_bytes(&bi) == want, "usable %llu, expected %llu",
	      (unsigned long long)mb2_usable_bytes(&bi), (unsigned long long)want);
	CHECK(want > 4 * GiB - 2 * MiB, "fixture wrong");
}

/* A map listing the same RAM twice (overlapping, or duplicated) counts it once. */
static void usable_overlaps_counted_once(void)
{
	static const struct ent e[] = {
		{ 0x100000, 0x400000, 1 },  /* [1M, 5M)            */
		{ 0x200000, 0x100000, 1 },  /* inside it           */
		{ 0x400000, 0x400000, 1 },  /* [4M, 8M) overlaps   */
		{ 0x100000, 0x400000, 1 },  /* duplicate           */
		{ 0x10000000, 0, 1 },       /* empty               */
		{ 0x20000000, 0x1000, 1 },  /* separate            */
		{ 0x100000, 0x10000000, 2 },/* reserved: ignored   */
	};
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 24, e, 7);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	uint64_t want = 7 * MiB + 0x1000;
	CHECK(mb2_usable_bytes(&bi) == want, "usable %llu, expected %llu",
	      (unsigned long long)mb2_usable_bytes(&bi), (unsigned long long)want);
}

static void usable_wrapping_entry_clipped(void)
{
	static const struct ent e[] = { { UINT64_MAX - 0xfff, 0x2000, 1 }, { 0, 0x1000, 1 } };
	static struct mb m;
	mb_begin(&m);
	mb_mmap(&m, 24, e, 2);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(mb2_usable_bytes(&bi) == 0x1000 + 0xfff, "usable %llu",
	      (unsigned long long)mb2_usable_bytes(&bi));
}

/* ---- mb2_ram_plan: what the allocator is given --------------------------------------- */

#define HHDM_LIMIT (1ull << 46) /* x86-64's ARCH_HHDM_LIMIT */

static struct mb2_ram_plan plans[MB2_MAX_MMAP];

/* Plan every entry of the map @e[0..n) (no parsing: the function reads boot_info only). */
static void plan_map(const struct ent *e, uint32_t n, uint64_t limit)
{
	memset(&bi, 0, sizeof(bi));
	for (uint32_t i = 0; i < n; i++)
		bi.mmap[i] = (struct mb2_mmap_entry){ e[i].base, e[i].len, e[i].type };
	bi.nmmap = n;
	for (uint32_t i = 0; i < n; i++) {
		memset(&plans[i], 0xA5, sizeof(plans[i])); /* every field must be written */
		mb2_ram_plan(&bi, i, limit, &plans[i]);
	}
}

static bool range_is(struct mb2_range r, uint64_t base, uint64_t len)
{
	return len ? r.base == base && r.len == len : r.len == 0;
}

#define EXPECT_PLAN(i, field, base_, len_)                                                      \
	CHECK(range_is(plans[i].field, (base_), (len_)),                                        \
	      "entry %u: " #field " [%#llx +%#llx), expected [%#llx +%#llx)", (i),              \
	      (unsigned long long)plans[i].field.base, (unsigned long long)plans[i].field.len, \
	      (unsigned long long)(base_), (unsigned long long)(len_))

/* A plain map: available entries go to the allocator whole, nothing else does. */
static void ram_plan_uses_available_entries(void)
{
	static const struct ent e[] = {
		{ 0x0, 0x9fc00, 1 },        { 0x9fc00, 0x400, 2 },         { 0xf0000, 0x10000, 2 },
		{ 0x100000, 0xbfee0000, 1 }, { 0xbffe0000, 0x20000, 3 },    { 0xfffc0000, 0x40000, 2 },
		{ 0x100000000, 0x40000000, 1 }, { 0xFD00000000, 0x300000000, 2 },
	};
	plan_map(e, 8, HHDM_LIMIT);
	for (uint32_t i = 0; i < 8; i++) {
		if (e[i].type == 1)
			EXPECT_PLAN(i, use, e[i].base, e[i].len);
		else
			EXPECT_PLAN(i, use, 0, 0);
		EXPECT_PLAN(i, unused, 0, 0);
	}
}

/* RAM at or above the limit is not used, and said so; an empty entry is nothing at all. */
static void ram_plan_beyond_limit_unused(void)
{
	static const struct ent e[] = {
		{ 0x100000, 0x100000, 1 }, { 1ull << 40, 1ull << 30, 1 }, { 1ull << 41, 1ull << 20, 1 },
		{ 0x300000, 0, 1 },
	};
	plan_map(e, 4, 1ull << 40);
	EXPECT_PLAN(0u, use, 0x100000, 0x100000);
	EXPECT_PLAN(0u, unused, 0, 0);
	EXPECT_PLAN(1u, use, 0, 0);
	EXPECT_PLAN(1u, unused, 1ull << 40, 1ull << 30);
	EXPECT_PLAN(2u, use, 0, 0);
	EXPECT_PLAN(2u, unused, 1ull << 41, 1ull << 20);
	EXPECT_PLAN(3u, use, 0, 0);
	EXPECT_PLAN(3u, unused, 0, 0);
}

/*
 * RAM that starts below the limit and ends above it: the allocator gets the part below
 * (arch paging maps nothing above, and mm/ puts its metadata at the top of RAM), the
 * rest is logged as unused.  An entry that wraps past the top of the address space is
 * not mapped at all, so none of it is used.
 */
static void ram_plan_clips_ram_at_limit(void)
{
	const uint64_t lim = 1ull << 40;
	static const struct ent e[] = {
		{ lim - GiB, 2 * GiB, 1 },        /* 0: across the limit                     */
		{ lim - 2 * GiB, GiB, 1 },        /* 1: ends exactly at it                   */
		{ lim - 4 * GiB, UINT64_MAX, 1 }, /* 2: wraps                                */
		{ lim - 0x1000, 0x2000, 2 },      /* 3: reserved across it, over entry 0     */
		{ lim + 0x1000, 0x1000, 2 },      /* 4: reserved over entry 0's unused part  */
	};
	plan_map(e, 5, lim);
	EXPECT_PLAN(0u, use, lim - GiB, GiB);
	EXPECT_PLAN(0u, unused, lim, GiB);
	EXPECT_PLAN(1u, use, lim - 2 * GiB, GiB);
	EXPECT_PLAN(1u, unused, 0, 0);
	EXPECT_PLAN(2u, use, 0, 0);
	EXPECT_PLAN(2u, unused, lim - 4 * GiB, UINT64_MAX);
	EXPECT_PLAN(3u, reserve, lim - 0x1000, 0x1000);
	EXPECT_PLAN(4u, reserve, 0, 0);
}

/*
 * Firmware that lists memory as both available and reserved (or ACPI NVS, or bad RAM):
 * the overlap must be reserved, or the allocator hands it out.  An entry that touches no
 * RAM the allocator gets is not reserved: mm/'s table of reservations is small.
 */
static void ram_plan_reserves_entries_overlapping_ram(void)
{
	const uint64_t lim = 1ull << 40;
	static const struct ent e[] = {
		{ 0x100000, 0x800000, 1 },       /* 0: RAM [1M, 9M)                           */
		{ 0x200000, 0x1000, 2 },         /* 1: reserved, inside it                    */
		{ 0x800000, 0x200000, 4 },       /* 2: NVS [8M, 10M), over its end            */
		{ 0x0, 0x200000, 3 },            /* 3: ACPI reclaimable [0, 2M), over its start */
		{ 0x400000, 0x1000, 5 },         /* 4: bad RAM inside                         */
		{ 0x300000, 0x1000, 7 },         /* 5: a type nobody defined, inside          */
		{ 0x900000, 0x100000, 2 },       /* 6: [9M, 10M): touches the end, no overlap */
		{ 0x20000000, 0x1000, 5 },       /* 7: bad RAM where there is no RAM          */
		{ 0x30000000, 0, 1 },            /* 8: empty RAM entry ...                    */
		{ 0x30000000, 0x1000, 2 },       /* 9: ... overlaps nothing                   */
		{ lim - 0x200000, 0x100000, 1 }, /* 10: RAM just below the limit              */
		{ lim - 0x180000, 0x280000, 2 }, /* 11: reserved across the limit: cut at it  */
		{ lim, 0x40000000, 1 },          /* 12: RAM beyond the limit: not used ...    */
		{ lim + 0x1000, 0x1000, 2 },     /* 13: ... so nothing to keep out of it      */
		{ 0x100000, 0x800000, 1 },       /* 14: RAM listed twice: still one plan each */
		{ UINT64_MAX - 0xfff, 0x2000, 2 }, /* 15: wraps, far above the limit          */
	};
	const uint32_t n = sizeof(e) / sizeof(e[0]);
	plan_map(e, n, lim);
	EXPECT_PLAN(1u, reserve, 0x200000, 0x1000);
	EXPECT_PLAN(2u, reserve, 0x800000, 0x200000);
	EXPECT_PLAN(3u, reserve, 0x0, 0x200000);
	EXPECT_PLAN(4u, reserve, 0x400000, 0x1000);
	EXPECT_PLAN(5u, reserve, 0x300000, 0x1000);
	EXPECT_PLAN(6u, reserve, 0, 0);
	EXPECT_PLAN(7u, reserve, 0, 0);
	EXPECT_PLAN(9u, reserve, 0, 0);
	EXPECT_PLAN(11u, reserve, lim - 0x180000, 0x180000);
	EXPECT_PLAN(13u, reserve, 0, 0);
	EXPECT_PLAN(15u, reserve, 0, 0);
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].type == 1)
			EXPECT_PLAN(i, reserve, 0, 0);
		else
			EXPECT_PLAN(i, use, 0, 0);
		if (e[i].type != 1)
			EXPECT_PLAN(i, unused, 0, 0);
	}
	EXPECT_PLAN(0u, use, 0x100000, 0x800000);
	EXPECT_PLAN(14u, use, 0x100000, 0x800000);
}

/* ---- Malformed structures ------------------------------------------------------------- */

static void null_pointers_refused(void)
{
	erroff = 1;
	CHECK(mb2_parse(NULL, 64, 0, &bi, &erroff) == MB2_ERR_NULL, "NULL mbi accepted");
	CHECK(erroff == 0, "offset %u", erroff);
	static struct mb m;
	mb_begin(&m);
	mb_end(&m);
	CHECK(mb2_parse(m.buf, m.len, 0, NULL, &erroff) == MB2_ERR_NULL, "NULL out accepted");
	CHECK(mb2_parse(m.buf, m.len, 0, &bi, NULL) == MB2_OK, "NULL err_offset not allowed");
}

static void misaligned_base_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_end(&m);
	for (unsigned shift = 1; shift < 8; shift++) {
		uint8_t *p = malloc(m.len + 8);
		memcpy(p + shift, m.buf, m.len);
		erroff = 77;
		enum mb2_status s = mb2_parse(p + shift, m.len, 0, &bi, &erroff);
		free(p);
		CHECK(s == MB2_ERR_MISALIGNED, "shift %u: %s", shift, mb2_status_str(s));
		CHECK(erroff == 0, "offset %u", erroff);
	}
}

static void total_size_below_header_refused(void)
{
	static struct mb m;
	uint32_t sizes[] = { 0, 1, 4, 7 };
	for (unsigned i = 0; i < 4; i++) {
		mb_begin(&m);
		put32(&m, 0, sizes[i]);
		m.len = 8;
		EXPECT_STATUS(parse(&m), MB2_ERR_TOTAL_SIZE, 0);
	}
	/* Fewer than 8 readable bytes: not even the header can be read. */
	mb_begin(&m);
	mb_end(&m);
	EXPECT_STATUS(parse_copy(&m, 4, 4), MB2_ERR_TOTAL_SIZE, 0);
}

/* total_size exactly 8: a header and no room for the end tag. */
static void total_size_header_only_has_no_end_tag(void)
{
	static struct mb m;
	mb_begin(&m);
	put32(&m, 0, 8);
	m.len = 8;
	EXPECT_STATUS(parse(&m), MB2_ERR_NO_END_TAG, 8);
}

static void total_size_beyond_avail_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "x");
	mb_end(&m);
	/* The caller can read only 16 bytes; total_size claims more. */
	EXPECT_STATUS(parse_copy(&m, 16, 16), MB2_ERR_TOTAL_SIZE, 0);
	EXPECT_STATUS(parse_copy(&m, m.len, m.len - 1), MB2_ERR_TOTAL_SIZE, 0);
}

static void total_size_absurd_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_end(&m);
	put32(&m, 0, MB2_MAX_TOTAL_SIZE + 8);
	EXPECT_STATUS(parse_copy(&m, m.len, SIZE_MAX), MB2_ERR_TOTAL_SIZE, 0);
	put32(&m, 0, UINT32_MAX);
	EXPECT_STATUS(parse_copy(&m, m.len, SIZE_MAX), MB2_ERR_TOTAL_SIZE, 0);
}

static void tag_past_end_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "ok");
	uint32_t off = mb_unknown(&m, 42, 16);
	mb_end(&m);
	put32(&m, off + 4, m.len - off + 1); /* one byte past total_size */
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_OVERRUN, off);
	put32(&m, off + 4, UINT32_MAX);      /* would wrap a careless off + size */
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_OVERRUN, off);
}

/* A memory map whose size claims more entries than total_size holds. */
static void mmap_past_end_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	uint32_t off = mb_mmap(&m, 24, qemu128, 6);
	mb_end(&m);
	put32(&m, off + 4, 16 + 100 * 24);
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_OVERRUN, off);
}

static void tag_size_below_header_refused(void)
{
	static struct mb m;
	uint32_t sizes[] = { 0, 1, 7 };
	for (unsigned i = 0; i < 3; i++) {
		mb_begin(&m);
		mb_cmdline(&m, "first");
		uint32_t off = mb_unknown(&m, 42, 8);
		mb_end(&m);
		put32(&m, off + 4, sizes[i]); /* size 0 would never advance */
		EXPECT_STATUS(parse(&m), MB2_ERR_TAG_SIZE, off);
	}
	/* An end tag with a bad size is a bad tag too. */
	mb_begin(&m);
	mb_end(&m);
	put32(&m, 12, 0);
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_SIZE, 8);
}

/* Tags too short for their own fixed fields (tag header fine, payload missing). */
static void known_tags_too_short_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	uint32_t off = mb_tag(&m, 6, 12, "\x18\0\0\0", 4); /* mmap without entry_version */
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_SIZE, off);

	mb_begin(&m);
	off = mb_tag(&m, 3, 12, "\0\0\0\0", 4); /* module without mod_end */
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_SIZE, off);

	/* A bare 8-byte cmdline tag is just an empty command line. */
	mb_begin(&m);
	mb_tag(&m, 1, 8, NULL, 0);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.has_cmdline && bi.cmdline[0] == '\0', "'%s'", bi.cmdline);
}

static void missing_end_tag_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "abc");
	mb_mmap(&m, 24, qemu128, 6);
	mb_align(&m);
	put32(&m, 0, m.len); /* no end tag */
	EXPECT_STATUS(parse(&m), MB2_ERR_NO_END_TAG, m.len);

	/* total_size ends inside the padding after the last tag. */
	mb_begin(&m);
	mb_cmdline(&m, "abcd"); /* ends at 21 */
	put32(&m, 0, m.len);
	EXPECT_STATUS(parse(&m), MB2_ERR_NO_END_TAG, m.len);
}

/* Four bytes left where the end tag should be: not room for a tag header. */
static void truncated_end_tag_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "abc");
	mb_end(&m);
	put32(&m, 0, m.len - 4);
	m.len -= 4;
	EXPECT_STATUS(parse(&m), MB2_ERR_TAG_OVERRUN, m.len - 4);
}

static void mmap_zero_entry_size_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	mb_cmdline(&m, "x");
	uint32_t off = mb_mmap(&m, 24, qemu128, 6);
	mb_end(&m);
	put32(&m, off + 8, 0);
	EXPECT_STATUS(parse(&m), MB2_ERR_MMAP_ENTRY_SIZE, off);
}

static void mmap_entry_size_below_24_refused(void)
{
	static struct mb m;
	uint32_t sizes[] = { 1, 8, 16, 20, 23 };
	for (unsigned i = 0; i < 5; i++) {
		mb_begin(&m);
		uint32_t off = mb_mmap(&m, 24, qemu128, 6);
		mb_end(&m);
		put32(&m, off + 8, sizes[i]);
		EXPECT_STATUS(parse(&m), MB2_ERR_MMAP_ENTRY_SIZE, off);
	}
}

static void too_many_mmap_entries_refused(void)
{
	static struct ent e[MB2_MAX_MMAP + 1];
	static struct mb m;
	for (uint32_t i = 0; i <= MB2_MAX_MMAP; i++)
		e[i] = (struct ent){ i * 0x10000ull, 0x10000, 1 };
	mb_begin(&m);
	uint32_t off = mb_mmap(&m, 24, e, MB2_MAX_MMAP + 1);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_TOO_MANY, off);

	/* Two memory map tags that together overflow the table. */
	mb_begin(&m);
	mb_mmap(&m, 24, e, MB2_MAX_MMAP / 2);
	off = mb_mmap(&m, 24, e, MB2_MAX_MMAP / 2 + 1);
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_TOO_MANY, off);
}

static void too_many_modules_refused(void)
{
	static struct mb m;
	uint32_t off = 0;
	mb_begin(&m);
	for (uint32_t i = 0; i <= MB2_MAX_MODULES; i++)
		off = mb_module(&m, i * 0x1000, i * 0x1000 + 10, "m");
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_TOO_MANY, off);
}

static void module_ending_before_start_refused(void)
{
	static struct mb m;
	mb_begin(&m);
	uint32_t off = mb_module(&m, 0x2000, 0x1fff, "backwards");
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_ERR_BAD_MODULE, off);
}

/* ---- Strings ------------------------------------------------------------------------- */

/* Both ACPI tags: the XSDP (15) is kept whichever comes first; bytes past 36 are dropped. */
static void acpi_new_tag_wins_over_old(void)
{
	static struct mb m;
	uint8_t v1[20], v2[40];
	memset(v1, 0x11, sizeof(v1));
	memset(v2, 0x22, sizeof(v2));
	mb_begin(&m);
	mb_tag(&m, 15, 8 + sizeof(v2), v2, sizeof(v2));
	mb_tag(&m, 14, 8 + sizeof(v1), v1, sizeof(v1));
	mb_end(&m);
	EXPECT_STATUS(parse(&m), MB2_OK, 0);
	CHECK(bi.acpi_rsdp_tag == 15 && bi.acpi_rsdp_len == MB2_ACPI_RSDP_MAX &&
	      bi.acpi_rsdp[0] == 0x22 && bi.acpi_rsdp[35] == 0x22,
	      "tag %u len %u first %#x", bi.acpi_rsdp_tag, bi.acpi_rsdp_len, bi.acpi_rsdp[0]);
}

static void status_strings_distinct(void)
{
	for (int a = MB2_OK; a <= MB2_ERR_BAD_MODULE; a++) {
		const char *sa = mb2_status_str((enum mb2_status)a);
		CHECK(sa && *sa && strcmp(sa, "unknown status") != 0, "status %d has no string", a);
		for (int b = MB2_OK; b < a; b++)
			CHECK(strcmp(sa, mb2_status_str((enum mb2_status)b)) != 0,
			      "statuses %d and %d read the same", a, b);
	}
	CHECK(strcmp(mb2_status_str((enum mb2_status)1000), "unknown status") == 0, "out of range");
}

static void mmap_type_strings(void)
{
	CHECK(strcmp(mb2_mmap_type_str(1), "available") == 0, "1");
	CHECK(strcmp(mb2_mmap_type_str(2), "reserved") == 0, "2");
	CHECK(strcmp(mb2_mmap_type_str(3), "ACPI reclaimable") == 0, "3");
	CHECK(strcmp(mb2_mmap_type_str(4), "ACPI NVS") == 0, "4");
	CHECK(strcmp(mb2_mmap_type_str(5), "bad RAM") == 0, "5");
	CHECK(strcmp(mb2_mmap_type_str(0), "unknown") == 0, "0");
	CHECK(strcmp(mb2_mmap_type_str(6), "unknown") == 0, "6");
	CHECK(strcmp(mb2_mmap_type_str(UINT32_MAX), "unknown") == 0, "max");
}

/* ---- Fuzzing ---------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * Mutate a good structure (bytes, sizes, entry_size, total_size) and parse from an
 * exact-size heap copy: any status is acceptable, a read out of bounds (ASan), UB
 * (UBSan), a hang or a success with impossible counts is not.
 */
static void fuzz_mutations_stay_in_bounds(void)
{
	static struct mb good, m;
	mb_begin(&good);
	mb_cmdline(&good, "mode=test seed=7");
	mb_module(&good, 0x200000, 0x210000, "mod");
	mb_mmap(&good, 24, qemu128, 6);
	mb_unknown(&good, 8, 24);
	mb_mmap(&good, 32, qemu128, 3);
	mb_end(&good);

	unsigned ok = 0;
	for (unsigned iter = 0; iter < 200000; iter++) {
		memcpy(m.buf, good.buf, good.len);
		m.len = good.len;
		unsigned nmut = 1 + (unsigned)(next_rand() % 4);
		for (unsigned k = 0; k < nmut; k++) {
			uint32_t pos = (uint32_t)(next_rand() % m.len);
			switch (next_rand() % 4) {
			case 0: /* random byte */
				m.buf[pos] = (uint8_t)next_rand();
				break;
			case 1: /* small 32-bit value at an aligned spot: a plausible size */
				put32(&m, pos & ~3u, (uint32_t)(next_rand() % 96));
				break;
			case 2: /* a bit flip */
				m.buf[pos] ^= (uint8_t)(1u << (next_rand() % 8));
				break;
			default: /* truncate */
				if (next_rand() % 2)
					put32(&m, 0, pos);
				m.len = pos < 8 ? 8 : pos;
				break;
			}
		}
		/* SIZE_MAX promises total_size is readable: only when the copy holds it. */
		uint32_t total;
		memcpy(&total, m.buf, 4);
		size_t avail = (next_rand() % 8 == 0 && total <= m.len) ? SIZE_MAX : m.len;
		enum mb2_status s = parse_copy(&m, m.len, avail);
		ASSERT(s <= MB2_ERR_BAD_MODULE, "iteration %u: status %d", iter, s);
		if (s == MB2_OK) {
			ok++;
			ASSERT(bi.nmmap <= MB2_MAX_MMAP && bi.nmodules <= MB2_MAX_MODULES &&
			       bi.mbi_size <= m.len && strlen(bi.cmdline) < MB2_CMDLINE_MAX,
			       "iteration %u: impossible result", iter);
		}
	}
	CHECK(ok > 1000 && ok < 199000, "only %u of 200000 mutations parsed: fuzzer not exploring", ok);
}

int main(void)
{
	TEST(good_structure_parses);
	TEST(acpi_new_tag_wins_over_old);
	TEST(minimal_structure_is_empty_but_valid);
	TEST(tags_are_8_byte_aligned);
	TEST(mmap_entry_size_32);
	TEST(mmap_entry_size_unaligned_28);
	TEST(mmap_trailing_partial_entry_ignored);
	TEST(mmap_exactly_max_entries);
	TEST(mmap_types_kept_verbatim);
	TEST(cmdline_empty);
	TEST(cmdline_without_nul_is_bounded);
	TEST(cmdline_longer_than_buffer_truncated);
	TEST(module_name_truncated);
	TEST(exactly_max_modules);
	TEST(bytes_after_end_tag_ignored);
	TEST(avail_unknown_still_bounded_by_total_size);
	TEST(qemu_1tib_reserved_region_not_counted);
	TEST(usable_4g_split_around_pci_hole);
	TEST(usable_overlaps_counted_once);
	TEST(usable_wrapping_entry_clipped);
	TEST(ram_plan_uses_available_entries);
	TEST(ram_plan_beyond_limit_unused);
	TEST(ram_plan_reserves_entries_overlapping_ram);
	TEST(ram_plan_clips_ram_at_limit);
	TEST(null_pointers_refused);
	TEST(misaligned_base_refused);
	TEST(total_size_below_header_refused);
	TEST(total_size_header_only_has_no_end_tag);
	TEST(total_size_beyond_avail_refused);
	TEST(total_size_absurd_refused);
	TEST(tag_past_end_refused);
	TEST(mmap_past_end_refused);
	TEST(tag_size_below_header_refused);
	TEST(known_tags_too_short_refused);
	TEST(missing_end_tag_refused);
	TEST(truncated_end_tag_refused);
	TEST(mmap_zero_entry_size_refused);
	TEST(mmap_entry_size_below_24_refused);
	TEST(too_many_mmap_entries_refused);
	TEST(too_many_modules_refused);
	TEST(module_ending_before_start_refused);
	TEST(status_strings_distinct);
	TEST(mmap_type_strings);
	TEST(fuzz_mutations_stay_in_bounds);
	return testlib_exit();
}

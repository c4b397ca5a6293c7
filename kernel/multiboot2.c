/*
 * multiboot2.c - a defensive reader of the multiboot2 boot information structure.
 *
 * Freestanding (no libc) and host-testable: tests/host/test_kernel_multiboot2.c feeds
 * it synthetic, and deliberately broken, structures under the sanitizers.
 */
#include <labyrinth/multiboot2.h>

#include "bytes.h"

/*
 * Layout (multiboot2 spec 3.6): an 8-byte header { u32 total_size; u32 reserved; },
 * then tags, each starting on an 8-byte boundary relative to the structure, each
 * { u32 type; u32 size; payload }, where size counts the 8-byte tag header but not
 * the padding to the next tag.  An end tag { 0, 8 } closes the list.
 *
 * Trust nothing: total_size is checked against what the caller can read (@avail) and
 * a sanity cap; every tag's size against what is left of total_size; every payload
 * against its own tag.  All reads go through rd32/rd64 with an offset already proven
 * in bounds, byte-wise so that entries with odd entry_size never make an unaligned
 * 64-bit load (which UBSan rejects on the host and which is merely slow on x86).
 */

#define TAG_END 0u
#define TAG_CMDLINE 1u
#define TAG_MODULE 3u
#define TAG_MMAP 6u
#define TAG_ACPI_OLD 14u
#define TAG_ACPI_NEW 15u

#define HDR_SIZE 8u        /* total_size + reserved, and also every tag header */
#define MODULE_FIXED 16u   /* tag header + mod_start + mod_end                  */
#define MMAP_FIXED 16u     /* tag header + entry_size + entry_version           */
#define MMAP_ENTRY_MIN 24u /* base, length, type, reserved                      */

/*
 * Copy the NUL-terminated string in [src, src + srclen) into dst[dstsize], stopping
 * at the NUL or the end of the tag, whichever comes first.  Returns true if the
 * string was cut short (by dst's size, or by a missing NUL inside the tag).
 */
static bool copy_tag_string(char *dst, size_t dstsize, const uint8_t *src, size_t srclen)
{
	size_t i = 0;
	bool cut = true;

	for (; i < srclen; i++) {
		if (src[i] == '\0') {
			cut = false;
			break;
		}
		if (i + 1 >= dstsize)
			break;
		dst[i] = (char)src[i];
	}
	dst[i < dstsize ? i : dstsize - 1] = '\0';
	return cut;
}

static void reset(struct boot_info *out, uint64_t mbi_phys)
{
	/* Field by field: a zeroing loop over the whole struct could become a memset call. */
	out->mbi_phys = mbi_phys;
	out->mbi_size = 0;
	out->has_cmdline = false;
	out->has_mmap = false;
	out->cmdline_truncated = false;
	out->cmdline[0] = '\0';
	out->nmmap = 0;
	out->nmodules = 0;
	out->acpi_rsdp_len = 0;
	out->acpi_rsdp_tag = 0;
	out->unknown_tags = 0;
}

static enum mb2_status parse_mmap(const uint8_t *tag, uint32_t size, struct boot_info *out)
{
	if (size < MMAP_FIXED)
		return MB2_ERR_TAG_SIZE;
	uint32_t entry_size = rd32(tag + 8);
	if (entry_size < MMAP_ENTRY_MIN) /* zero included: it would never advance */
		return MB2_ERR_MMAP_ENTRY_SIZE;

	/* Trailing bytes too short for a whole entry are padding, not an entry. */
	uint32_t n = (size - MMAP_FIXED) / entry_size;
	if (n > MB2_MAX_MMAP - out->nmmap)
		return MB2_ERR_TOO_MANY;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = tag + MMAP_FIXED + (size_t)i * entry_size;
		struct mb2_mmap_entry *m = &out->mmap[out->nmmap++];
		m->base = rd64(e);
		m->len = rd64(e + 8);
		m->type = rd32(e + 16);
	}
	out->has_mmap = true;
	return MB2_OK;
}

static enum mb2_status parse_module(const uint8_t *tag, uint32_t size, struct boot_info *out)
{
	if (size < MODULE_FIXED)
		return MB2_ERR_TAG_SIZE;
	uint32_t start = rd32(tag + 8), end = rd32(tag + 12);
	if (end < start)
		return MB2_ERR_BAD_MODULE;
	if (out->nmodules >= MB2_MAX_MODULES)
		return MB2_ERR_TOO_MANY;
	struct mb2_module *m = &out->modules[out->nmodules++];
	m->start = start;
	m->end = end;
	copy_tag_string(m->name, sizeof(m->name), tag + MODULE_FIXED, size - MODULE_FIXED);
	return MB2_OK;
}

/* Keep the tag's RSDP copy; a new (XSDP) tag wins over an old one, whatever the order. */
static void parse_acpi(const uint8_t *tag, uint32_t type, uint32_t size, struct boot_info *out)
{
	uint32_t len = size - HDR_SIZE;

	if (out->acpi_rsdp_tag == TAG_ACPI_NEW && type == TAG_ACPI_OLD)
		return;
	if (len > MB2_ACPI_RSDP_MAX)
		len = MB2_ACPI_RSDP_MAX;
	for (uint32_t i = 0; i < len; i++)
		out->acpi_rsdp[i] = tag[HDR_SIZE + i];
	out->acpi_rsdp_len = len;
	out->acpi_rsdp_tag = type;
}

static enum mb2_status parse_tag(const uint8_t *tag, uint32_t type, uint32_t size,
				 struct boot_info *out)
{
	switch (type) {
	case TAG_CMDLINE:
		/* A second command line tag replaces the first; GRUB emits one. */
		out->cmdline_truncated = copy_tag_string(out->cmdline, sizeof(out->cmdline),
							 tag + HDR_SIZE, size - HDR_SIZE);
		out->has_cmdline = true;
		return MB2_OK;
	case TAG_MODULE:
		return parse_module(tag, size, out);
	case TAG_MMAP:
		return parse_mmap(tag, size, out);
	case TAG_ACPI_OLD:
	case TAG_ACPI_NEW:
		parse_acpi(tag, type, size, out);
		return MB2_OK;
	default:
		out->unknown_tags++;
		return MB2_OK;
	}
}

enum mb2_status mb2_parse(const void *mbi, size_t avail, uint64_t mbi_phys,
			  struct boot_info *out, uint32_t *err_offset)
{
	uint32_t dummy;
	if (!err_offset)
		err_offset = &dummy;
	*err_offset = 0;
	if (!out)
		return MB2_ERR_NULL;
	reset(out, mbi_phys);
	if (!mbi)
		return MB2_ERR_NULL;
	if ((uintptr_t)mbi & 7)
		return MB2_ERR_MISALIGNED;
	if (avail < HDR_SIZE)
		return MB2_ERR_TOTAL_SIZE;

	const uint8_t *base = mbi;
	uint32_t total = rd32(base);
	/* The smallest valid structure is the header plus an end tag. */
	if (total < HDR_SIZE || total > avail || total > MB2_MAX_TOTAL_SIZE)
		return MB2_ERR_TOTAL_SIZE;
	out->mbi_size = total;

	/*
	 * Invariant at the top of the loop: off is 8-aligned and off <= total.  Sizes are
	 * checked against total - off, so off + size never wraps and never passes total.
	 */
	uint32_t off = HDR_SIZE;
	while (off < total) {
		*err_offset = off;
		if (total - off < HDR_SIZE)
			return MB2_ERR_TAG_OVERRUN; /* not even room for the tag header */
		uint32_t type = rd32(base + off), size = rd32(base + off + 4);
		if (size < HDR_SIZE)
			return MB2_ERR_TAG_SIZE;
		if (size > total - off)
			return MB2_ERR_TAG_OVERRUN;
		if (type == TAG_END) {
			*err_offset = 0;
			return MB2_OK;
		}
		enum mb2_status s = parse_tag(base + off, type, size, out);
		if (s != MB2_OK)
			return s;
		/* total <= MB2_MAX_TOTAL_SIZE, far below 2^32 - 8: rounding up cannot wrap. */
		off += (size + 7u) & ~7u;
	}
	*err_offset = off < total ? off : total;
	return MB2_ERR_NO_END_TAG;
}

uint64_t mb2_usable_bytes(const struct boot_info *bi)
{
	/*
	 * Sum the union of the available ranges, so that a firmware map listing the same
	 * RAM twice (overlapping entries) is not counted twice.  A sweep without a sorted
	 * copy: repeatedly take the available range with the lowest start beyond what has
	 * been counted so far.  O(n^2) with n <= MB2_MAX_MMAP; no stack array.
	 * Reserved ranges are not subtracted: a firmware that marks RAM both available
	 * and reserved is not something to paper over here.
	 */
	uint64_t total = 0, counted_to = 0;
	bool started = false;

	for (;;) {
		bool found = false;
		uint64_t best_start = 0, best_end = 0;
		for (uint32_t i = 0; i < bi->nmmap; i++) {
			const struct mb2_mmap_entry *e = &bi->mmap[i];
			if (e->type != MB2_MEMORY_AVAILABLE || e->len == 0)
				continue;
			uint64_t end = e->base + e->len;
			if (end < e->base) /* wraps: clip at the top of the address space */
				end = UINT64_MAX;
			if (started && end <= counted_to)
				continue;
			uint64_t start = (started && e->base < counted_to) ? counted_to : e->base;
			if (!found || start < best_start || (start == best_start && end > best_end)) {
				found = true;
				best_start = start;
				best_end = end;
			}
		}
		if (!found)
			return total;
		total += best_end - best_start;
		counted_to = best_end;
		started = true;
		if (counted_to == UINT64_MAX)
			return total;
	}
}

/* The end of [base, base + len), clipped at the top of the address space. */
static uint64_t range_end(uint64_t base, uint64_t len)
{
	return base + len < base ? UINT64_MAX : base + len;
}

/*
 * Of the available entry @e, the part the allocator gets (*use) and the part it does not.
 * The same cut as arch paging's direct map: nothing at or above @limit (mm/ puts its
 * metadata at the top of RAM, so one page beyond the map is a fault in lmm_init), and
 * nothing of an entry that wraps past the top of the address space, which paging skips.
 */
static void split_available(const struct mb2_mmap_entry *e, uint64_t limit, struct mb2_range *use,
			    struct mb2_range *unused)
{
	*use = (struct mb2_range){ 0, 0 };
	*unused = (struct mb2_range){ 0, 0 };
	if (e->len == 0)
		return;
	if (e->base >= limit || e->base + e->len < e->base) {
		*unused = (struct mb2_range){ e->base, e->len };
		return;
	}
	/* The allocator trims, merges and refuses bad ranges itself, logging each. */
	uint64_t len = e->len < limit - e->base ? e->len : limit - e->base;
	*use = (struct mb2_range){ e->base, len };
	if (len < e->len)
		*unused = (struct mb2_range){ limit, e->len - len };
}

/*
 * Firmware may list memory as available in one entry and reserved, ACPI NVS or bad in
 * another; the allocator knows only what it is told, so such an overlap must be
 * reserved.  The whole entry below @limit, in one reservation: mm/'s table of them is
 * small, which is also why an entry that overlaps no RAM the allocator gets is left out.
 */
static struct mb2_range reserve_overlap(const struct boot_info *bi, const struct mb2_mmap_entry *e,
					uint64_t limit)
{
	uint64_t end = range_end(e->base, e->len);

	if (end > limit)
		end = limit;
	if (e->len == 0 || e->base >= end)
		return (struct mb2_range){ 0, 0 };
	for (uint32_t j = 0; j < bi->nmmap; j++) {
		struct mb2_range use, unused;
		if (bi->mmap[j].type != MB2_MEMORY_AVAILABLE)
			continue;
		split_available(&bi->mmap[j], limit, &use, &unused);
		if (use.len && use.base < end && e->base < range_end(use.base, use.len))
			return (struct mb2_range){ e->base, end - e->base };
	}
	return (struct mb2_range){ 0, 0 };
}

void mb2_ram_plan(const struct boot_info *bi, uint32_t i, uint64_t limit, struct mb2_ram_plan *out)
{
	const struct mb2_mmap_entry *e = &bi->mmap[i];

	out->reserve = (struct mb2_range){ 0, 0 };
	if (e->type == MB2_MEMORY_AVAILABLE) {
		split_available(e, limit, &out->use, &out->unused);
		return;
	}
	out->use = out->unused = (struct mb2_range){ 0, 0 };
	out->reserve = reserve_overlap(bi, e, limit);
}

const char *mb2_status_str(enum mb2_status s)
{
	switch (s) {
	case MB2_OK:
		return "ok";
	case MB2_ERR_NULL:
		return "no boot information structure";
	case MB2_ERR_MISALIGNED:
		return "structure not 8-byte aligned";
	case MB2_ERR_TOTAL_SIZE:
		return "total_size below the header, beyond the readable area, or absurd";
	case MB2_ERR_TAG_SIZE:
		return "tag size below its header";
	case MB2_ERR_TAG_OVERRUN:
		return "tag runs past total_size";
	case MB2_ERR_NO_END_TAG:
		return "no end tag before total_size";
	case MB2_ERR_MMAP_ENTRY_SIZE:
		return "memory map entry_size is zero or below 24";
	case MB2_ERR_TOO_MANY:
		return "more memory map entries or modules than the tables hold";
	case MB2_ERR_BAD_MODULE:
		return "module ends before it starts";
	}
	return "unknown status";
}

const char *mb2_mmap_type_str(uint32_t type)
{
	switch (type) {
	case MB2_MEMORY_AVAILABLE:
		return "available";
	case MB2_MEMORY_RESERVED:
		return "reserved";
	case MB2_MEMORY_ACPI_RECLAIMABLE:
		return "ACPI reclaimable";
	case MB2_MEMORY_NVS:
		return "ACPI NVS";
	case MB2_MEMORY_BADRAM:
		return "bad RAM";
	default:
		return "unknown";
	}
}

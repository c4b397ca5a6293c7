/*
 * multiboot2.h - the kernel's view of the boot information GRUB hands over.
 *
 * mb2_parse() walks the multiboot2 information structure defensively (every tag is
 * bounds-checked against total_size) and fills a struct boot_info that the rest of
 * the kernel uses; nothing else in the tree reads multiboot2 tags.
 * Implemented in kernel/multiboot2.c; freestanding, host-testable.
 */
#ifndef LABYRINTH_MULTIBOOT2_H
#define LABYRINTH_MULTIBOOT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB2_BOOTLOADER_MAGIC 0x36d76289u

/* Memory map entry types (multiboot2 spec 3.6.8). */
#define MB2_MEMORY_AVAILABLE 1u
#define MB2_MEMORY_RESERVED 2u
#define MB2_MEMORY_ACPI_RECLAIMABLE 3u
#define MB2_MEMORY_NVS 4u
#define MB2_MEMORY_BADRAM 5u

#define MB2_MAX_MMAP 128
#define MB2_MAX_MODULES 16
#define MB2_CMDLINE_MAX 512
/* The ACPI tags (14: RSDP revision 0, 20 bytes; 15: XSDP, 36 bytes) carry a copy of the
 * firmware's RSDP; any bytes past this are ignored (no RSDP revision defines them). */
#define MB2_ACPI_RSDP_MAX 36
/* Sanity cap on total_size: GRUB's structure is a few KiB; more means corruption. */
#define MB2_MAX_TOTAL_SIZE (1u << 20)

struct mb2_mmap_entry {
	uint64_t base;
	uint64_t len;
	uint32_t type;
};

struct mb2_module {
	uint64_t start, end; /* physical, [start, end) */
	char name[64];       /* module command line, truncated */
};

struct boot_info {
	uint64_t mbi_phys;  /* physical address of the information structure */
	uint32_t mbi_size;  /* its total_size */
	bool has_cmdline, has_mmap;
	bool cmdline_truncated; /* longer than MB2_CMDLINE_MAX - 1, or no NUL in its tag */
	char cmdline[MB2_CMDLINE_MAX];
	uint32_t nmmap;
	struct mb2_mmap_entry mmap[MB2_MAX_MMAP];
	uint32_t nmodules;
	struct mb2_module modules[MB2_MAX_MODULES];
	/* A copy of the RSDP from the ACPI tags, the new (XSDP) one if both are present:
	 * acpi_rsdp_tag is 14 or 15 (0 = no tag), acpi_rsdp_len the bytes copied.  The
	 * ACPI parser (kernel/acpi.c) validates it; nothing here trusts its contents. */
	uint8_t acpi_rsdp[MB2_ACPI_RSDP_MAX];
	uint32_t acpi_rsdp_len;
	uint32_t acpi_rsdp_tag;
	uint32_t unknown_tags; /* skipped, counted */
};

enum mb2_status {
	MB2_OK = 0,
	MB2_ERR_NULL,           /* no structure at all                               */
	MB2_ERR_MISALIGNED,     /* structure not 8-byte aligned                      */
	MB2_ERR_TOTAL_SIZE,     /* total_size below the 8-byte header or absurd       */
	MB2_ERR_TAG_SIZE,       /* a tag's size is below its header                   */
	MB2_ERR_TAG_OVERRUN,    /* a tag runs past total_size                         */
	MB2_ERR_NO_END_TAG,     /* the walk reached total_size without an end tag     */
	MB2_ERR_MMAP_ENTRY_SIZE,/* memory map entry_size is zero or below 24          */
	MB2_ERR_TOO_MANY,       /* more mmap entries or modules than the tables hold  */
	MB2_ERR_BAD_MODULE,     /* module end below its start                         */
};

const char *mb2_status_str(enum mb2_status s);

/*
 * Parse the structure at @mbi (virtual address, readable for at least @avail bytes;
 * pass SIZE_MAX when unknown).  On failure returns the reason and, in @err_offset,
 * the byte offset of the offending tag.  Never reads outside [mbi, mbi + total_size).
 */
enum mb2_status mb2_parse(const void *mbi, size_t avail, uint64_t mbi_phys,
			  struct boot_info *out, uint32_t *err_offset);

const char *mb2_mmap_type_str(uint32_t type);

/*
 * Bytes of RAM the map marks available, overlapping entries counted once.  Sized from
 * available entries only, never from the highest address in the map (QEMU lists a
 * 12 GiB reserved hole near 1 TiB even on small machines).  Any context.
 */
uint64_t mb2_usable_bytes(const struct boot_info *bi);

/* [base, base + len) physical; len 0 is nothing. */
struct mb2_range {
	uint64_t base, len;
};

/*
 * What the kernel's allocator setup does with one memory map entry, for a direct map
 * that holds physical addresses below a limit: @use goes to the allocator, @unused is
 * available RAM it leaves out (to be logged), @reserve is a non-available entry (below
 * the limit) that overlaps RAM the allocator gets, to be reserved there.  Any of them
 * may be empty.
 */
struct mb2_ram_plan {
	struct mb2_range use, unused, reserve;
};

/*
 * The plan for entry @i of @bi (i < bi->nmmap) with a direct map below @limit.  Pure:
 * reads @bi only; any context.
 */
void mb2_ram_plan(const struct boot_info *bi, uint32_t i, uint64_t limit, struct mb2_ram_plan *out);

#endif /* LABYRINTH_MULTIBOOT2_H */

/*
 * fuzz_multiboot2.c - libFuzzer target for mb2_parse(): the input is the boot
 * information structure itself, as a bootloader (or a hostile one) would hand it over.
 *
 * The parser must never read outside [mbi, mbi + avail) (ASan sees the exact-size heap
 * copy), and whatever it accepts must satisfy the promises kernel/main.c relies on:
 * bounded tables, NUL-terminated strings, modules that do not end below their start.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/multiboot2.h>

/* A broken promise is a crash, so libFuzzer records the input that showed it. */
#define PROMISE(cond, what)                                                            \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_multiboot2: broken promise: %s\n", what); \
			abort();                                                       \
		}                                                                      \
	} while (0)

static struct boot_info bi;

static void check_accepted(const struct boot_info *b, size_t size)
{
	PROMISE(b->mbi_size <= size, "mbi_size larger than the structure");
	PROMISE(b->nmmap <= MB2_MAX_MMAP, "more mmap entries than the table holds");
	PROMISE(b->nmodules <= MB2_MAX_MODULES, "more modules than the table holds");
	PROMISE(memchr(b->cmdline, '\0', sizeof(b->cmdline)) != NULL, "cmdline not NUL-terminated");
	for (uint32_t i = 0; i < b->nmodules; i++) {
		PROMISE(b->modules[i].end >= b->modules[i].start, "module ends below its start");
		PROMISE(memchr(b->modules[i].name, '\0', sizeof(b->modules[i].name)) != NULL,
			"module name not NUL-terminated");
	}
	(void)mb2_usable_bytes(b);
	for (uint32_t i = 0; i < b->nmmap; i++)
		PROMISE(mb2_mmap_type_str(b->mmap[i].type) != NULL, "mmap type without a name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: malloc's alignment (16) is what the parser requires (8). */
	uint8_t *p = malloc(size ? size : 1);
	memcpy(p, data, size);
	uint32_t off = 0;
	memset(&bi, 0xa5, sizeof(bi)); /* the parser must not rely on a cleared output */
	enum mb2_status st = mb2_parse(size ? p : NULL, size, 0x10000, &bi, &off);
	PROMISE(mb2_status_str(st) != NULL, "status without a name");
	if (st == MB2_OK)
		check_accepted(&bi, size);
	else
		PROMISE(off <= size || off == 0, "error offset outside the structure");

	/*
	 * Readable length unknown (SIZE_MAX, as the kernel passes it): the parser may trust
	 * total_size, so only when total_size fits the copy must it stay inside.
	 */
	uint32_t total;
	if (size >= 4 && (memcpy(&total, data, 4), total <= size)) {
		memset(&bi, 0xa5, sizeof(bi));
		if (mb2_parse(p, SIZE_MAX, 0x10000, &bi, &off) == MB2_OK)
			check_accepted(&bi, size);
	}

	/* The same bytes one word off alignment are refused before being read. */
	if (size >= 8) {
		uint8_t *q = malloc(size + 4);
		memcpy(q + 4, data, size);
		PROMISE(mb2_parse(q + 4, size, 0x10004, &bi, &off) == MB2_ERR_MISALIGNED,
			"misaligned structure accepted");
		free(q);
	}
	free(p);
	return 0;
}

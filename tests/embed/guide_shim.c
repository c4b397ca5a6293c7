/*
 * guide_shim.c - runs the C blocks of mm/README.md, extracted as printed, on Linux: this
 * file stands for "the rest of the kernel" (interrupt state, console, panic, the direct
 * map over a static array playing physical [0, 16 MiB)) and feeds each memory-map
 * recipe a small synthetic map.  Prints one PASS/FAIL line per guide block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/mm.h>

#define MiB (1ull << 20)
#define RAM_BYTES (16 * MiB)

static _Alignas(4096) unsigned char ram[RAM_BYTES];

/* ---- What the guide's port expects from the kernel -------------------------------------- */

uintptr_t hhdm_offset;
static int irqs_on = 1, log_lines;

uintptr_t arch_irq_save(void)
{
	uintptr_t was = (uintptr_t)irqs_on;
	irqs_on = 0;
	return was;
}

void arch_irq_restore(uintptr_t state)
{
	irqs_on = (int)state;
}

int arch_irqs_enabled(void)
{
	return irqs_on;
}

int arch_in_interrupt(void)
{
	return 0;
}

unsigned arch_cpu_id(void)
{
	return 0;
}

void console_write(const char *s)
{
	if (getenv("LMM_VERBOSE"))
		fputs(s, stdout);
	log_lines += s[0] == '\n';
}

_Noreturn void panic(const char *msg)
{
	printf("FAIL guide: panic: %s\n", msg);
	exit(1);
}

/* ---- The guide's blocks ---------------------------------------------------------------- */

extern struct lmm kernel_mm;
void mm_setup_multiboot2(const void *mbi, uint64_t mbi_phys, uint64_t kernel_phys, uint64_t kernel_len);
struct e820_entry {
	uint64_t base, len;
	uint32_t type, acpi_attrs;
} __attribute__((packed));
void mm_add_e820(struct lmm *mm, const struct e820_entry *map, unsigned n, int have_attrs);
void mm_add_uefi(struct lmm *mm, const void *map, uint64_t map_size, uint64_t desc_size);
struct limine_memmap_entry {
	uint64_t base, length, type;
};
void mm_add_limine(struct lmm *mm, struct limine_memmap_entry **entries, uint64_t count);

/* ---- Checks ------------------------------------------------------------------------------ */

static int failures;

static void verdict(const char *name, const char *why)
{
	if (why) {
		printf("FAIL %s: %s\n", name, why);
		failures++;
	} else {
		printf("PASS %s\n", name);
	}
}

struct span {
	uint64_t base, len;
};

/*
 * Allocate every page, check none lies in @forbidden, free them all; then lmm_check.
 * Returns NULL or the reason for failing.
 */
static const char *drain_and_check(struct lmm *mm, const struct span *forbidden, unsigned n,
				   uint64_t want_managed)
{
	static void *pages[RAM_BYTES / 4096];
	static char why[160];
	struct lmm_stats s;
	size_t k = 0;
	void *p;

	lmm_get_stats(mm, &s);
	if (want_managed && s.managed != want_managed) {
		snprintf(why, sizeof(why), "managed %llu pages, expected %llu",
			 (unsigned long long)s.managed, (unsigned long long)want_managed);
		return why;
	}
	while ((p = lmm_alloc_pages(mm, 0, LMM_GFP_ATOMIC)) != NULL) {
		uint64_t phys = lmm_virt_to_phys(mm, p);
		for (unsigned i = 0; i < n; i++)
			if (phys - forbidden[i].base < forbidden[i].len) {
				snprintf(why, sizeof(why), "page 0x%llx handed out from a range that must be reserved",
					 (unsigned long long)phys);
				return why;
			}
		pages[k++] = p;
	}
	if (k < 1000)
		return "fewer than 1000 pages to allocate";
	while (k)
		if (lmm_free_pages(mm, pages[--k], 0) != LMM_OK)
			return "free refused";
	if (lmm_check(mm) != 0)
		return "lmm_check found broken invariants";
	return NULL;
}

/* A multiboot2 information structure, built at physical 4 MiB as GRUB would. */
static uint32_t *put32(uint32_t *w, uint32_t v)
{
	*w = v;
	return w + 1;
}

static uint32_t *put64(uint32_t *w, uint64_t v)
{
	memcpy(w, &v, 8);
	return w + 2;
}

static void guide_multiboot2(void)
{
	const uint64_t mbi_phys = 4 * MiB, kernel = 1 * MiB, kernel_len = 1 * MiB;
	const uint64_t module = 3 * MiB, module_end = 3 * MiB + 10000;
	uint32_t *start = (uint32_t *)(ram + mbi_phys), *w = start + 2;

	w = put32(w, 3); /* module tag */
	w = put32(w, 17);
	w = put32(w, (uint32_t)module);
	w = put32(w, (uint32_t)module_end);
	*(char *)w = '\0';
	w += 2; /* 17 bytes -> padded to 24 */
	uint32_t *mmap = w;
	w = put32(w, 6); /* memory map: entry_size 24, 4 entries */
	w = put32(w, 16 + 4 * 24);
	w = put32(w, 24);
	w = put32(w, 0);
	const uint64_t e[4][3] = { { 0, 0x9fc00, 1 }, { 0x9fc00, 0x60400, 2 }, { 1 * MiB, RAM_BYTES - 2 * MiB, 1 },
				   { RAM_BYTES - 1 * MiB, 1 * MiB, 2 } };
	for (int i = 0; i < 4; i++) {
		w = put64(w, e[i][0]);
		w = put64(w, e[i][1]);
		w = put32(w, (uint32_t)e[i][2]);
		w = put32(w, 0);
	}
	(void)mmap;
	w = put32(w, 0); /* end tag */
	w = put32(w, 8);
	start[0] = (uint32_t)((char *)w - (char *)start);
	start[1] = 0;

	mm_setup_multiboot2(start, mbi_phys, kernel, kernel_len);
	const struct span forbidden[] = { { 0, 1 * MiB }, { kernel, kernel_len }, { module, module_end - module },
					  { mbi_phys, start[0] }, { RAM_BYTES - 1 * MiB, 1 * MiB } };
	const char *why = drain_and_check(&kernel_mm, forbidden, 5, 0);
	if (!why && lmm_default() != &kernel_mm)
		why = "lmm_set_default not called";
	if (!why) {
		void *p = labyrinth_void_alloc_page_gfp_atomic_exclusive();
		if (!p || labyrinth_free_page_atomic_exclusive(p) != LMM_OK)
			why = "the labyrinth_* routine failed through the guide's port";
	}
	verdict("guide-port-and-multiboot2", why);
}

static void guide_e820(void)
{
	static struct lmm mm;
	/* Unsorted, with a reserved entry inside a usable one and one disabled entry. */
	const struct e820_entry map[] = {
		{ 1 * MiB, RAM_BYTES - 1 * MiB, 1, 1 }, { 0x9fc00, 0x400, 2, 1 }, { 0, 0x9fc00, 1, 1 },
		{ 8 * MiB, 4096, 2, 1 },                { 0xf0000, 0x10000, 2, 1 }, { 12 * MiB, 1 * MiB, 1, 0 },
	};
	lmm_begin(&mm, NULL);
	mm_add_e820(&mm, map, 6, 1);
	lmm_reserve_range(&mm, 0, 1 * MiB);
	const char *why = lmm_init(&mm) == LMM_OK ? NULL : "lmm_init failed";
	const struct span forbidden[] = { { 0, 1 * MiB }, { 8 * MiB, 4096 }, { 12 * MiB, 1 * MiB } };
	if (!why)
		why = drain_and_check(&mm, forbidden, 3, (0x9f000 + RAM_BYTES - 1 * MiB) / 4096);
	verdict("guide-e820", why);
}

static void guide_uefi(void)
{
	static struct lmm mm;
	/* 48-byte descriptors (firmware may use more than sizeof): the recipe must step by it. */
	enum { DESC = 48 };
	static _Alignas(8) unsigned char map[8 * DESC];
	const uint64_t d[8][3] = {
		{ 7, 0, 0x9f },                 /* conventional */
		{ 6, 0x9f000, 0x61 },           /* runtime data: never */
		{ 2, 1 * MiB, 256 },            /* loader data: the kernel */
		{ 7, 2 * MiB, 512 },            /* conventional ...    */
		{ 4, 4 * MiB, 512 },            /* ... boot services data, adjacent: one run */
		{ 3, 6 * MiB, 256 },            /* ... boot services code, adjacent */
		{ 10, 7 * MiB, 256 },           /* ACPI NVS: never */
		{ 7, 8 * MiB, (RAM_BYTES - 8 * MiB) / 4096 },
	};
	for (int i = 0; i < 8; i++) {
		unsigned char *e = map + i * DESC;
		uint32_t type = (uint32_t)d[i][0];
		uint64_t start = d[i][1], pages = d[i][2];
		memcpy(e, &type, 4);
		memcpy(e + 8, &start, 8);  /* PhysicalStart */
		memcpy(e + 24, &pages, 8); /* NumberOfPages */
	}
	lmm_begin(&mm, NULL);
	mm_add_uefi(&mm, map, sizeof(map), DESC);
	const char *why = mm.nranges == 3 ? NULL : "adjacent usable descriptors were not coalesced";
	if (!why && lmm_init(&mm) != LMM_OK)
		why = "lmm_init failed";
	const struct span forbidden[] = { { 0x9f000, 0x61000 }, { 1 * MiB, 1 * MiB }, { 7 * MiB, 1 * MiB } };
	if (!why)
		why = drain_and_check(&mm, forbidden, 3, 0x9f + 1280 + (RAM_BYTES - 8 * MiB) / 4096);
	verdict("guide-uefi", why);
}

static void guide_limine(void)
{
	static struct lmm mm;
	struct limine_memmap_entry e[] = {
		{ 0, 0x9f000, 0 },          { 0x9f000, 0x61000, 1 },         { 1 * MiB, 1 * MiB, 6 },
		{ 2 * MiB, 1 * MiB, 5 },    { 3 * MiB, RAM_BYTES - 4 * MiB, 0 }, { RAM_BYTES - 1 * MiB, 1 * MiB, 7 },
	};
	struct limine_memmap_entry *ptrs[6];
	for (int i = 0; i < 6; i++)
		ptrs[i] = &e[i];
	lmm_begin(&mm, NULL);
	mm_add_limine(&mm, ptrs, 6);
	const char *why = lmm_init(&mm) == LMM_OK ? NULL : "lmm_init failed";
	const struct span forbidden[] = { { 0x9f000, 0x61000 }, { 1 * MiB, 2 * MiB }, { RAM_BYTES - 1 * MiB, 1 * MiB } };
	if (!why)
		why = drain_and_check(&mm, forbidden, 3, (0x9f000 + RAM_BYTES - 4 * MiB) / 4096);
	verdict("guide-limine", why);
}

int main(void)
{
	hhdm_offset = (uintptr_t)ram;
	guide_multiboot2();
	guide_e820();
	guide_uefi();
	guide_limine();
	if (!irqs_on)
		verdict("guide-interrupt-state", "interrupts left disabled after the guide's port unlocked");
	return failures ? 1 : 0;
}

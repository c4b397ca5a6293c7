/*
 * mm_setup.c - describe the machine's memory to mm/ and bring the allocator up.
 *
 * GRUB lists the kernel, its own information structure and the modules inside
 * *available* RAM, and the early page tables live there too: every one of them is
 * reserved here, along with the first MiB (BIOS data, EBDA, legacy DMA) and any map
 * entry that is not available yet overlaps available RAM, before lmm_init() may hand a
 * single page out.
 */
#include <labyrinth/arch.h>
#include <labyrinth/cmdline.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/panic.h>

struct lmm kernel_mm;
static uint64_t boot_large_free; /* kernel_mm_large_free_pages() right after init */

#define LOW_MEMORY_END (1ull << 20)
/*
 * The kernel's own list of what it reserved, for the in-kernel test that no page handed
 * out is one of them.  mm/ never drops a reservation (past its table it joins the
 * closest ones); this list is only a test's witness, so one past it is logged, not fatal.
 */
#define MAX_KERNEL_RESERVED (2 * LMM_MAX_RESERVED)

static struct arch_phys_range reserved[MAX_KERNEL_RESERVED];
static size_t nreserved;

static void reserve(const char *what, uint64_t base, uint64_t len)
{
	if (len == 0)
		return;
	if (nreserved < MAX_KERNEL_RESERVED)
		reserved[nreserved++] = (struct arch_phys_range){ base, len };
	else
		kprintf("mm: more than %u reservations: the test of reserved pages will not see this one\n",
			(unsigned)MAX_KERNEL_RESERVED);
	kprintf("mm: reserve [0x%016lx-0x%016lx) %s\n", base, base + len, what);
	if (lmm_reserve_range(&kernel_mm, base, len) != LMM_OK)
		kpanic("mm: cannot reserve %s: the kernel would hand it out", what);
}

bool kernel_mm_is_reserved(uint64_t base, uint64_t len)
{
	for (size_t i = 0; i < nreserved; i++)
		if (base < reserved[i].base + reserved[i].len && reserved[i].base < base + len)
			return true;
	return false;
}

/* What to do with each map entry is mb2_ram_plan()'s decision (host-tested); this acts on it. */
static void add_available_ram(const struct boot_info *bi)
{
	for (uint32_t i = 0; i < bi->nmmap; i++) {
		struct mb2_ram_plan p;
		mb2_ram_plan(bi, i, ARCH_HHDM_LIMIT, &p);
		if (p.unused.len)
			kprintf("mm: RAM [0x%lx +0x%lx) is beyond the direct map: not used\n", p.unused.base,
				p.unused.len);
		/* mm/ trims, merges and refuses bad ranges itself, logging each. */
		if (p.use.len)
			lmm_add_range(&kernel_mm, p.use.base, p.use.len);
		if (p.reserve.len) {
			char what[64];
			ksnprintf(what, sizeof(what), "%s in the memory map, over available RAM",
				  mb2_mmap_type_str(bi->mmap[i].type));
			reserve(what, p.reserve.base, p.reserve.len);
		}
	}
}

static void reserve_boot_memory(const struct boot_info *bi)
{
	struct arch_phys_range img = arch_kernel_image();
	struct arch_phys_range tables[16];
	size_t ntables = arch_early_frames_used(tables, 16);

	/* Also keeps the AP start-up trampoline (ARCH_TRAMPOLINE_PHYS, below 1 MiB) out of mm/. */
	_Static_assert(ARCH_TRAMPOLINE_PHYS + ARCH_PAGE_SIZE <= LOW_MEMORY_END, "trampoline outside the first MiB");
	reserve("first MiB (firmware, legacy DMA, AP trampoline)", 0, LOW_MEMORY_END);
	reserve("kernel image", img.base, img.len);
	reserve("multiboot2 information", bi->mbi_phys, bi->mbi_size);
	for (uint32_t i = 0; i < bi->nmodules; i++)
		reserve("boot module", bi->modules[i].start, bi->modules[i].end - bi->modules[i].start);
	if (ntables > 16)
		kpanic("mm: %lu page-table ranges, more than the 16 this kernel reserves", (unsigned long)ntables);
	for (size_t i = 0; i < ntables; i++)
		reserve("boot page tables", tables[i].base, tables[i].len);
}

void kernel_mm_init(const struct boot_info *bi)
{
	struct lmm_config cfg = {
		.pool_target = kopts.pool_pages ? (uint32_t)kopts.pool_pages : LMM_POOL_AUTO,
		.pool_low = kopts.pool_low ? (uint32_t)kopts.pool_low : LMM_POOL_AUTO,
		.flags = (kopts.mm_poison ? LMM_CFG_POISON : 0) | (kopts.mm_holders ? LMM_CFG_HOLDERS : 0),
	};

	lmm_begin(&kernel_mm, &cfg);
	add_available_ram(bi);
	reserve_boot_memory(bi);
	enum lmm_status st = lmm_init(&kernel_mm);
	if (st != LMM_OK)
		kpanic("mm: init failed: %s", lmm_status_str(st));
	lmm_set_default(&kernel_mm);
	lmm_dump(&kernel_mm);
	boot_large_free = kernel_mm_large_free_pages();
}

/*
 * Free memory in blocks of order >= LARGE_ORDER, after returning this CPU's cache:
 * the figure that shows whether the reserve and the caches keep large blocks intact.
 */
#define LARGE_ORDER 9

uint64_t kernel_mm_large_free_pages(void)
{
	struct lmm_stats s;
	lmm_cpu_drain(&kernel_mm, arch_cpu_id());
	lmm_get_stats(&kernel_mm, &s);
	uint64_t pages = 0;
	for (unsigned o = LARGE_ORDER; o <= LMM_MAX_ORDER; o++)
		pages += s.free_blocks[o] << o;
	return pages;
}

void kernel_mm_report_large_blocks(void)
{
	uint64_t now = kernel_mm_large_free_pages();
	uint64_t permille = boot_large_free ? now * 1000 / boot_large_free : 1000;
	kprintf("mm: free memory in blocks of order >= %u: %lu pages at boot, %lu now (%lu.%lu%%)\n", LARGE_ORDER,
		boot_large_free, now, permille / 10, permille % 10);
}

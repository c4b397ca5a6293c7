/*
 * paging.c - the kernel's own page tables: a direct map of RAM plus the kernel image.
 *
 * boot.asm left an identity map of the low 4 GiB and a 1 GiB window on the kernel.
 * arch_paging_init() replaces both with tables that map exactly the RAM the boot map
 * calls available, at ARCH_HHDM_BASE + phys (1 GiB pages where the CPU has them and
 * alignment allows, else 2 MiB, 4 KiB only at unaligned edges), and the kernel image
 * section by section (text RX, rodata R, data RW, stack guard absent).  Nothing is
 * sized from the highest address in the map: holes and reserved ranges cost nothing.
 *
 * The page-table frames come from a bump allocator over the same available RAM:
 * above 1 MiB (firmware lives below), below 4 GiB (it must be reachable through the
 * boot identity map while the tables are built), and outside the kernel image and
 * every range the caller excludes (boot information, modules).  The frames it hands
 * out stay in use forever; they are recorded so a page allocator can reserve them.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000FFFFFFFFFF000ull

#define SZ_4K 0x1000ull
#define SZ_2M 0x200000ull
#define SZ_1G 0x40000000ull
#define LOW_MEMORY_END 0x100000ull     /* firmware, BIOS data, VGA: never page tables */
#define EARLY_FRAME_LIMIT (4ull << 30) /* covered by boot.asm's identity map */

#define MAX_USED_RUNS 32
#define MAX_EXCLUDE 40

static struct arch_phys_range used_runs[MAX_USED_RUNS];
static size_t nused_runs;

/* Bump allocator state: valid during arch_paging_init() only. */
static const struct arch_phys_range *alloc_ram;
static size_t alloc_nram, alloc_idx;
static uint64_t alloc_cursor;
static struct arch_phys_range excluded[MAX_EXCLUDE];
static size_t nexcluded;

static bool switched;  /* running on our tables: reach them through the direct map */
static bool have_nx;   /* EFER.NXE set by boot.asm */
static bool have_1g;   /* CPUID pdpe1gb */
static uint64_t nx_bit;

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static uint64_t align_down(uint64_t x, uint64_t a) { return x & ~(a - 1); }

_Noreturn static void paging_fatal(const char *why)
{
	kprintf("paging: FATAL: %s\n", why);
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

/* The table at @phys, through the identity map before the switch, the direct map after. */
static uint64_t *table_at(uint64_t phys)
{
	return (uint64_t *)(uintptr_t)(switched ? phys + ARCH_HHDM_BASE : phys);
}

static bool overlaps(uint64_t base, uint64_t end, const struct arch_phys_range *r)
{
	return base < r->base + r->len && r->base < end;
}

/* First excluded or already-used range overlapping [f, f + 4K), or NULL. */
static const struct arch_phys_range *frame_conflict(uint64_t f)
{
	for (size_t i = 0; i < nexcluded; i++)
		if (overlaps(f, f + SZ_4K, &excluded[i]))
			return &excluded[i];
	for (size_t i = 0; i < nused_runs; i++)
		if (overlaps(f, f + SZ_4K, &used_runs[i]))
			return &used_runs[i];
	return NULL;
}

static void record_used(uint64_t f)
{
	if (nused_runs && used_runs[nused_runs - 1].base + used_runs[nused_runs - 1].len == f) {
		used_runs[nused_runs - 1].len += SZ_4K;
		return;
	}
	if (nused_runs == MAX_USED_RUNS)
		paging_fatal("early frame allocator: too many discontiguous runs to record");
	used_runs[nused_runs++] = (struct arch_phys_range){ f, SZ_4K };
}

/* One zeroed 4 KiB frame for a page table.  Fatal when none is left. */
static uint64_t early_frame_alloc(void)
{
	for (; alloc_idx < alloc_nram; alloc_idx++, alloc_cursor = 0) {
		const struct arch_phys_range *r = &alloc_ram[alloc_idx];
		uint64_t lo = align_up(r->base, SZ_4K);
		uint64_t hi = align_down(r->base + r->len, SZ_4K);

		if (r->base + r->len < r->base)
			continue; /* wraps: nonsense entry */
		if (lo < LOW_MEMORY_END)
			lo = LOW_MEMORY_END;
		if (lo < alloc_cursor)
			lo = alloc_cursor;
		if (hi > EARLY_FRAME_LIMIT)
			hi = EARLY_FRAME_LIMIT;

		for (uint64_t f = lo; f + SZ_4K <= hi;) {
			const struct arch_phys_range *c = frame_conflict(f);
			if (c) {
				f = align_up(c->base + c->len, SZ_4K);
				continue;
			}
			alloc_cursor = f + SZ_4K;
			record_used(f);
			uint64_t *t = table_at(f);
			for (unsigned i = 0; i < 512; i++)
				t[i] = 0;
			return f;
		}
	}
	paging_fatal("early frame allocator: no free RAM between 1 MiB and 4 GiB for page tables");
}

/* The table @entry points to, allocating it if the entry is empty. */
static uint64_t *next_table(uint64_t *entry)
{
	if (!(*entry & PTE_P))
		*entry = early_frame_alloc() | PTE_P | PTE_W;
	return table_at(*entry & PTE_ADDR);
}

static unsigned idx(uint64_t virt, unsigned level)
{
	return (virt >> (12 + 9 * level)) & 511;
}

/*
 * Map [virt, virt + len) to [phys, ...) with leaf flags @flags, using the largest pages
 * that alignment, length and the CPU allow.  An existing large page is left alone and
 * skipped (only the direct map overlaps itself, and it maps identically); 4 KiB
 * entries are overwritten.  All of virt, phys, len are 4 KiB aligned.
 */
static void map_range(uint64_t *pml4, uint64_t virt, uint64_t phys, uint64_t len, uint64_t flags)
{
	while (len) {
		uint64_t step;
		uint64_t *pdpt = next_table(&pml4[idx(virt, 3)]);
		uint64_t *pdpte = &pdpt[idx(virt, 2)];

		if ((*pdpte & PTE_P) && (*pdpte & PTE_PS)) {
			step = SZ_1G - (virt & (SZ_1G - 1));
		} else if (have_1g && !(*pdpte & PTE_P) && !((virt | phys) & (SZ_1G - 1)) &&
			   len >= SZ_1G) {
			*pdpte = phys | flags | PTE_PS;
			step = SZ_1G;
		} else {
			uint64_t *pd = next_table(pdpte);
			uint64_t *pde = &pd[idx(virt, 1)];

			if ((*pde & PTE_P) && (*pde & PTE_PS)) {
				step = SZ_2M - (virt & (SZ_2M - 1));
			} else if (!(*pde & PTE_P) && !((virt | phys) & (SZ_2M - 1)) && len >= SZ_2M) {
				*pde = phys | flags | PTE_PS;
				step = SZ_2M;
			} else {
				uint64_t *pt = next_table(pde);
				pt[idx(virt, 0)] = phys | flags;
				step = SZ_4K;
			}
		}
		if (step > len)
			step = len;
		virt += step;
		phys += step;
		len -= step;
	}
}

static uint64_t kphys(const char *sym)
{
	return (uint64_t)sym - ARCH_KERNEL_VMA;
}

static void map_kernel_part(uint64_t *pml4, uint64_t pbase, uint64_t pend, uint64_t flags)
{
	if (pend > pbase)
		map_range(pml4, ARCH_KERNEL_VMA + pbase, pbase, pend - pbase, flags);
}

/* The kernel image at ARCH_KERNEL_VMA + phys, with W^X per section and the stack guard absent. */
static void map_kernel(uint64_t *pml4)
{
	uint64_t start = align_down((uint64_t)__kernel_phys_start, SZ_4K);
	uint64_t end = align_up((uint64_t)__kernel_phys_end, SZ_4K);

	map_kernel_part(pml4, start, kphys(__text_start), PTE_P | nx_bit); /* .boot, now dead */
	map_kernel_part(pml4, kphys(__text_start), kphys(__text_end), PTE_P);
	map_kernel_part(pml4, kphys(__rodata_start), kphys(__rodata_end), PTE_P | nx_bit);
	map_kernel_part(pml4, kphys(__data_start), kphys(__stack_guard_start), PTE_P | PTE_W | nx_bit);
	map_kernel_part(pml4, kphys(__stack_guard_end), end, PTE_P | PTE_W | nx_bit);
}

/* Map every available range at ARCH_HHDM_BASE + phys; returns the bytes mapped. */
static uint64_t map_direct(uint64_t *pml4, const struct arch_phys_range *ram, size_t nram)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < nram; i++) {
		uint64_t base = align_up(ram[i].base, SZ_4K);
		uint64_t end = ram[i].base + ram[i].len;

		if (end < ram[i].base || base >= ARCH_HHDM_LIMIT) {
			kprintf("paging: RAM [0x%lx +0x%lx] not mapped: outside the direct map window\n",
				ram[i].base, ram[i].len);
			continue;
		}
		if (end > ARCH_HHDM_LIMIT) {
			kprintf("paging: RAM above 0x%lx not mapped: outside the direct map window\n",
				ARCH_HHDM_LIMIT);
			end = ARCH_HHDM_LIMIT;
		}
		end = align_down(end, SZ_4K);
		if (end <= base)
			continue;
		map_range(pml4, ARCH_HHDM_BASE + base, base, end - base, PTE_P | PTE_W | nx_bit);
		bytes += end - base;
	}
	return bytes;
}

static void set_exclusions(const struct arch_phys_range *exclude, size_t nexclude)
{
	struct arch_phys_range k = arch_kernel_image();

	nexcluded = 0;
	excluded[nexcluded++] = k;
	for (size_t i = 0; i < nexclude; i++) {
		if (nexcluded == MAX_EXCLUDE)
			paging_fatal("too many excluded ranges");
		excluded[nexcluded++] = exclude[i];
	}
}

static void detect_features(void)
{
	uint32_t a, b, c, d;

	have_nx = (rdmsr(X86_MSR_EFER) & X86_EFER_NXE) != 0;
	nx_bit = have_nx ? PTE_NX : 0;
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	if (a >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		have_1g = (d >> 26) & 1;
	}
}

void arch_paging_init(const struct arch_phys_range *ram, size_t nram,
		      const struct arch_phys_range *exclude, size_t nexclude)
{
	if (!gdt_loaded())
		paging_fatal("arch_cpu_init() must run first: the boot GDT is not in the new tables");
	if (switched)
		paging_fatal("arch_paging_init() called twice");

	detect_features();
	set_exclusions(exclude, nexclude);
	alloc_ram = ram;
	alloc_nram = nram;
	alloc_idx = 0;
	alloc_cursor = 0;

	uint64_t pml4_phys = early_frame_alloc();
	uint64_t *pml4 = table_at(pml4_phys);
	uint64_t mapped = map_direct(pml4, ram, nram);
	map_kernel(pml4);
	/*
	 * The local APIC's registers (MMIO, never RAM) join the direct map, uncached: smp.c
	 * and lapic.c reach them at ARCH_HHDM_BASE + base on every CPU.
	 */
	if (lapic_present())
		map_range(pml4, ARCH_HHDM_BASE + lapic_phys(), lapic_phys(), SZ_4K,
			  PTE_P | PTE_W | PTE_PCD | PTE_PWT | nx_bit);

	write_cr3(pml4_phys);
	switched = true;
	alloc_ram = NULL; /* the caller's array may be gone later; no frame is taken after this */

	uint64_t frames = 0;
	for (size_t i = 0; i < nused_runs; i++)
		frames += used_runs[i].len / SZ_4K;
	kprintf("paging: direct map at 0x%lx: %lu MiB of RAM in %zu ranges; kernel at 0x%lx\n",
		ARCH_HHDM_BASE, mapped >> 20, nram, ARCH_KERNEL_VMA + (uint64_t)__kernel_phys_start);
	kprintf("paging: %lu page-table frames in %zu run(s); NX %s, 1 GiB pages %s; identity map dropped\n",
		frames, nused_runs, have_nx ? "on" : "unsupported", have_1g ? "available" : "unsupported");
	for (size_t i = 0; i < nused_runs; i++)
		kprintf("paging: page tables in [0x%lx-0x%lx)\n", used_runs[i].base,
			used_runs[i].base + used_runs[i].len);
	if (arch_virt_is_mapped((const void *)LOW_MEMORY_END))
		paging_fatal("the identity map is still present after the switch");
}

size_t arch_early_frames_used(struct arch_phys_range *out, size_t max)
{
	for (size_t i = 0; i < nused_runs && i < max; i++)
		out[i] = used_runs[i];
	return nused_runs;
}

struct arch_phys_range arch_kernel_image(void)
{
	uint64_t start = align_down((uint64_t)__kernel_phys_start, SZ_4K);
	uint64_t end = align_up((uint64_t)__kernel_phys_end, SZ_4K);

	return (struct arch_phys_range){ start, end - start };
}

uint64_t arch_virt_to_phys(const void *virt)
{
	uint64_t v = (uint64_t)virt;

	if (v >= ARCH_HHDM_BASE && v - ARCH_HHDM_BASE < ARCH_HHDM_LIMIT)
		return v - ARCH_HHDM_BASE;
	if (v >= ARCH_KERNEL_VMA)
		return v - ARCH_KERNEL_VMA;
	return ARCH_PHYS_INVALID;
}

bool arch_virt_is_mapped(const void *virt)
{
	uint64_t v = (uint64_t)virt;
	uint64_t e = read_cr3();

	for (int level = 3; level >= 0; level--) {
		e = table_at(e & PTE_ADDR)[idx(v, (unsigned)level)];
		if (!(e & PTE_P))
			return false;
		if (level > 0 && level < 3 && (e & PTE_PS))
			return true;
	}
	return true;
}

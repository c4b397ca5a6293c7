/*
 * kernel_mm.h - the kernel's page allocator instance: mm/ fed from the boot memory map.
 *
 * kernel/mm_port.c implements mm/'s twelve port hooks on top of arch/ and kprintf;
 * kernel/mm_setup.c describes RAM to mm/ and reserves what must never be handed out.
 */
#ifndef LABYRINTH_KERNEL_MM_H
#define LABYRINTH_KERNEL_MM_H

#include <labyrinth/mm.h>
#include <labyrinth/multiboot2.h>

extern struct lmm kernel_mm;

/*
 * Hand every available range of @bi to mm/ (as mb2_ram_plan() decides), reserve the
 * map's other entries where they overlap that RAM, the first MiB, the kernel image, the
 * boot information, modules and the page tables arch_paging_init() built, then
 * initialise and make kernel_mm the default for labyrinth_* routines.  Init only,
 * after arch_paging_init().  Stops the kernel if mm/ cannot initialise or reserve.
 */
void kernel_mm_init(const struct boot_info *bi);

/* Whether [base, base+len) overlaps something kernel_mm_init() reserved. */
bool kernel_mm_is_reserved(uint64_t base, uint64_t len);

/*
 * Free pages in blocks of order >= 9 (this CPU's cache drained first), and a line
 * comparing it with the figure right after init.  Normal context.
 */
uint64_t kernel_mm_large_free_pages(void);
void kernel_mm_report_large_blocks(void);

/*
 * Refusal reports from mm/: print the ones queued by handlers (normal context), and a
 * line per reason for those counted but not shown.
 */
void kernel_mm_flush_reports(void);
void kernel_mm_report_summary(void);

/* Owner tags the kernel's port hands out: one per CPU and context, ((cpu << 1) | irq) + 1,
 * the recipe of mm_port.h and mm/README.md. */
#define KMM_OWNER(cpu, in_irq) ((uint16_t)(((((unsigned)(cpu)) << 1) | ((in_irq) ? 1u : 0u)) + 1u))

#endif /* LABYRINTH_KERNEL_MM_H */

/*
 * gdt.c - the long-mode GDT and the TSS, whose only job here is the interrupt stacks.
 *
 * Segmentation is flat in 64-bit mode; the GDT exists for CS/SS privilege and to point
 * at the TSS.  IST1 gives the double-fault handler its own stack, so a kernel stack
 * overflow (a #PF that cannot push its frame) still ends in a register dump instead of
 * a triple fault; IST2 does the same for NMIs, which can arrive on any stack (and are
 * how one CPU stops the others on a panic).
 */
#include "internal.h"

#define IST_STACK_SIZE 16384

struct __attribute__((packed)) tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
};
_Static_assert(sizeof(struct tss64) == 104, "TSS layout");

/*
 * One GDT, TSS and pair of IST stacks per CPU: a busy TSS cannot be loaded by a second
 * CPU, and two CPUs taking an NMI or #DF at once must not share a stack.
 */
static struct tss64 tss[ARCH_MAX_CPUS];
static _Alignas(16) uint8_t ist_double_fault_stack[ARCH_MAX_CPUS][IST_STACK_SIZE];
static _Alignas(16) uint8_t ist_nmi_stack[ARCH_MAX_CPUS][IST_STACK_SIZE];

/* null, kernel code, kernel data, user data, user code, TSS (two slots). */
static uint64_t gdt[ARCH_MAX_CPUS][7];
static bool loaded;

/* Access bytes and flags of the code/data descriptors; base and limit are ignored in 64-bit mode. */
#define SEG_KCODE 0x00AF9A000000FFFFull /* P, DPL0, code, exec/read, L=1 */
#define SEG_KDATA 0x00CF92000000FFFFull /* P, DPL0, data, read/write     */
#define SEG_UDATA 0x00CFF2000000FFFFull /* P, DPL3, data                 */
#define SEG_UCODE 0x00AFFA000000FFFFull /* P, DPL3, code, L=1            */

static void set_tss_descriptor(uint64_t *slot, uint64_t base, uint32_t limit)
{
	slot[0] = (limit & 0xFFFFull) | ((base & 0xFFFFFFull) << 16) |
		  (0x89ull << 40) /* P, DPL0, available 64-bit TSS */ |
		  ((uint64_t)(limit >> 16) & 0xF) << 48 | ((base >> 24) & 0xFF) << 56;
	slot[1] = base >> 32;
}

void gdt_init_cpu(unsigned cpu)
{
	struct tss64 *t = &tss[cpu];
	uint64_t *g = gdt[cpu];

	t->ist[IST_DOUBLE_FAULT - 1] = (uint64_t)(ist_double_fault_stack[cpu] + IST_STACK_SIZE);
	t->ist[IST_NMI - 1] = (uint64_t)(ist_nmi_stack[cpu] + IST_STACK_SIZE);
	t->iomap_base = sizeof(*t); /* no I/O permission bitmap */

	g[0] = 0;
	g[GDT_KERNEL_CODE >> 3] = SEG_KCODE;
	g[GDT_KERNEL_DATA >> 3] = SEG_KDATA;
	g[GDT_USER_DATA >> 3] = SEG_UDATA;
	g[GDT_USER_CODE >> 3] = SEG_UCODE;
	set_tss_descriptor(&g[GDT_TSS >> 3], (uint64_t)t, sizeof(*t) - 1);

	struct x86_desc_ptr p = { sizeof(gdt[cpu]) - 1, (uint64_t)g };
	lgdt(&p);
	load_segments(GDT_KERNEL_CODE, GDT_KERNEL_DATA);
	/* Loading the GS selector reset the GS base: point it at this CPU's block again. */
	wrmsr(X86_MSR_GS_BASE, (uint64_t)&percpu[cpu]);
	ltr(GDT_TSS);
	if (cpu == 0)
		loaded = true;
}

bool gdt_loaded(void)
{
	return loaded;
}

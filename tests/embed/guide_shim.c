/*
 * guide_shim.c - runs the C blocks of mm/README.md, extracted as printed, on Linux: this
 * file stands for "the rest of the kernel" (interrupt state, console, panic, the direct
 * map over a static array playing physical [0, 16 MiB)) and feeds each memory-map
 * recipe a small synthetic map.  Prints one PASS/FAIL line per guide block.
 *
 * Built twice: with guide_port.c and guide_irq.c (one CPU; an interrupt is a call through
 * isr_common), and with -DGUIDE_SMP -DLMM_PORT_MAX_CPUS=8 and guide_port_smp.c, where
 * threads are CPUs, each with its struct percpu behind a thread-local "register".
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/mm.h>

#define MiB (1ull << 20)
#define RAM_BYTES (16 * MiB)

static _Alignas(4096) unsigned char ram[RAM_BYTES];

/* ---- What the guide's ports expect from the kernel ------------------------------------- */

uintptr_t hhdm_offset;
static __thread int irqs_on = 1; /* per thread: each thread is a CPU in the SMP build */
static int log_lines, report_lines;
static pthread_mutex_t console_mutex = PTHREAD_MUTEX_INITIALIZER;

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

void console_write(const char *s)
{
	pthread_mutex_lock(&console_mutex);
	if (getenv("LMM_VERBOSE"))
		fputs(s, stdout);
	log_lines += s[0] == '\n';
	report_lines += strncmp(s, "lmm: refused", 12) == 0;
	pthread_mutex_unlock(&console_mutex);
}

static int reports_printed(void)
{
	pthread_mutex_lock(&console_mutex);
	int n = report_lines;
	pthread_mutex_unlock(&console_mutex);
	return n;
}

_Noreturn void panic(const char *msg)
{
	printf("FAIL guide: panic: %s\n", msg);
	exit(1);
}

void mm_flush_reports(void); /* both ports define it */

#ifdef GUIDE_SMP
/* Section 4: per-CPU data behind a "per-CPU register" (a thread-local pointer here). */
struct percpu {
	unsigned index, irq_nesting;
};
static struct percpu cpus[LMM_PORT_MAX_CPUS];
static __thread struct percpu *cpu_register;

struct percpu *this_cpu(void)
{
	return cpu_register;
}

void arch_cpu_relax(void)
{
	sched_yield();
}
#else
/* Section 3: guide_irq.c's entry path calls this; the test sets what it does. */
void isr_common(unsigned vector);
static void (*interrupt_body)(unsigned vector);

void handle_interrupt(unsigned vector)
{
	interrupt_body(vector);
}
#endif

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

#ifdef GUIDE_SMP
#define VERDICT_PREFIX "smp-" /* the second program: its lines apart from the first's */
#else
#define VERDICT_PREFIX ""
#endif

static void verdict(const char *name, const char *why)
{
	if (why) {
		printf("FAIL " VERDICT_PREFIX "%s: %s\n", name, why);
		failures++;
	} else {
		printf("PASS " VERDICT_PREFIX "%s\n", name);
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

/*
 * A crowded map, as some firmware gives: more reserved entries than LMM_MAX_RESERVED
 * (most of them MMIO above RAM), then the kernel reserved last, as the guide says.  Not
 * one page of the kernel or of a reserved entry inside RAM may be handed out.
 */
static void guide_e820_crowded(void)
{
	static struct lmm mm;
	enum { ABOVE = LMM_MAX_RESERVED + 8 };
	static struct e820_entry map[ABOVE + 3];
	unsigned n = 0;
	map[n++] = (struct e820_entry){ 1 * MiB, RAM_BYTES - 1 * MiB, 1, 1 };
	map[n++] = (struct e820_entry){ 3 * MiB, 8192, 2, 1 };
	map[n++] = (struct e820_entry){ 10 * MiB, 4096, 4, 1 };
	for (unsigned i = 0; i < ABOVE; i++)
		map[n++] = (struct e820_entry){ 0xfe000000ull + i * 0x20000ull, 0x1000, 2, 1 };
	const uint64_t kernel = 6 * MiB, kernel_len = 512 * 1024;
	lmm_begin(&mm, NULL);
	mm_add_e820(&mm, map, n, 1);
	const char *why = NULL;
	if (lmm_reserve_range(&mm, 0, 1 * MiB) != LMM_OK || lmm_reserve_range(&mm, kernel, kernel_len) != LMM_OK)
		why = "a reservation was refused";
	if (!why && lmm_init(&mm) != LMM_OK)
		why = "lmm_init failed";
	const struct span forbidden[] = { { 0, 1 * MiB }, { 3 * MiB, 8192 }, { 10 * MiB, 4096 }, { kernel, kernel_len } };
	if (!why)
		why = drain_and_check(&mm, forbidden, 4, (RAM_BYTES - 1 * MiB) / 4096);
	verdict("guide-e820-crowded", why);
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

#ifndef GUIDE_SMP
/* Section 3 in a handler: KERNEL refused, ATOMIC served, a bad free; reports queued. */
static void *irq_kernel, *irq_atomic;
static enum lmm_status irq_bad_free;
static uint16_t irq_owner;
static enum lmm_context irq_context;

static void timer_body(unsigned vector)
{
	(void)vector;
	irq_context = lmm_port_context();
	irq_kernel = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL);
	irq_atomic = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_ATOMIC | LMM_GFP_EXCLUSIVE);
	irq_owner = irq_atomic ? lmm_page_owner(&kernel_mm, irq_atomic) : 0;
	irq_bad_free = lmm_free_pages(&kernel_mm, ram + 8, 0);
	if (irq_atomic)
		lmm_free_pages(&kernel_mm, irq_atomic, 0);
}

static void guide_interrupt(void)
{
	const char *why = NULL;
	int before = reports_printed();
	interrupt_body = timer_body;
	isr_common(32);
	int during = reports_printed();
	mm_flush_reports();
	int after = reports_printed();
	if (irq_context != LMM_CTX_INTERRUPT)
		why = "lmm_port_context() did not see the handler (guide_irq.c's count)";
	else if (irq_kernel)
		why = "a KERNEL allocation in a handler was not refused";
	else if (!irq_atomic || irq_owner != ((0 << 1) | 1) + 1)
		why = "ATOMIC in a handler failed, or its page is not owned by (cpu 0, interrupt)";
	else if (irq_bad_free != LMM_ERR_NOT_ALIGNED)
		why = "a bad free in a handler was not refused";
	else if (during != before || after != before + 2)
		why = "handler reports were printed in the handler, or not printed by mm_flush_reports()";
	else if (lmm_port_context() != LMM_CTX_NORMAL)
		why = "the nesting count did not come back to 0";
	verdict("guide-irq-count-and-reports", why);
}
#else
/* Section 4: three more CPUs (threads), each allocating in normal code and "in a handler". */
#define SMP_CPUS 4
static const char *smp_why[SMP_CPUS];

static void *smp_cpu(void *arg)
{
	struct percpu *me = arg;
	cpu_register = me;
	for (int round = 0; round < 2000 && !smp_why[me->index]; round++) {
		void *p = lmm_alloc_pages(&kernel_mm, round % 3, LMM_GFP_KERNEL);
		void *x = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL | LMM_GFP_EXCLUSIVE);
		if (!p || !x)
			smp_why[me->index] = "KERNEL allocation failed";
		else if (lmm_page_owner(&kernel_mm, x) != ((me->index << 1) | 0) + 1)
			smp_why[me->index] = "exclusive page not owned by ((cpu << 1) | 0) + 1";
		uintptr_t s = arch_irq_save(); /* a pretend interrupt: entry stub, handler, exit */
		me->irq_nesting++;
		void *a = lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_ATOMIC);
		if (!a || lmm_port_context() != LMM_CTX_INTERRUPT || lmm_alloc_pages(&kernel_mm, 0, LMM_GFP_KERNEL))
			smp_why[me->index] = "ATOMIC failed or KERNEL accepted in a handler";
		lmm_free_pages(&kernel_mm, a, 0);
		me->irq_nesting--;
		arch_irq_restore(s);
		if (lmm_free_pages(&kernel_mm, p, round % 3) != LMM_OK || lmm_free_pages(&kernel_mm, x, 0) != LMM_OK)
			smp_why[me->index] = "free refused";
	}
	return NULL;
}

static void guide_smp(void)
{
	pthread_t t[SMP_CPUS];
	const char *why = NULL;
	struct lmm_stats s0, s1;
	lmm_get_stats(&kernel_mm, &s0);
	int reports0 = reports_printed();
	for (unsigned i = 1; i < SMP_CPUS; i++)
		pthread_create(&t[i], NULL, smp_cpu, &cpus[i]);
	smp_cpu(&cpus[0]);
	for (unsigned i = 1; i < SMP_CPUS; i++)
		pthread_join(t[i], NULL);
	mm_flush_reports();
	for (unsigned i = 0; i < SMP_CPUS && !why; i++)
		why = smp_why[i];
	lmm_get_stats(&kernel_mm, &s1);
	if (!why && (s1.available != s0.available || s1.allocated != s0.allocated))
		why = "stats.available or allocated changed with nothing held";
	if (!why && (s1.refused[LMM_ERR_BAD_CONTEXT] - s0.refused[LMM_ERR_BAD_CONTEXT] != SMP_CPUS * 2000 ||
		     reports_printed() == reports0))
		why = "refusals in handlers not counted, or none queued and printed";
	if (!why && lmm_check(&kernel_mm) != 0)
		why = "lmm_check found broken invariants after the CPUs ran";
	verdict("guide-port-on-4-cpus", why);
}
#endif

int main(void)
{
	hhdm_offset = (uintptr_t)ram;
#ifdef GUIDE_SMP
	for (unsigned i = 0; i < LMM_PORT_MAX_CPUS; i++)
		cpus[i].index = i;
	cpu_register = &cpus[0];
#endif
	guide_multiboot2();
#ifdef GUIDE_SMP
	guide_smp();
#else
	guide_interrupt();
#endif
	guide_e820();
	guide_e820_crowded();
	guide_uefi();
	guide_limine();
	if (!irqs_on)
		verdict("guide-interrupt-state", "interrupts left disabled after the guide's port unlocked");
	return failures ? 1 : 0;
}

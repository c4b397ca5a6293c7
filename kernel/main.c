/*
 * main.c - kmain: from GRUB's handoff to a kernel running on its own page tables.
 *
 * Order matters: the console first (everything else reports through it), the CPU tables
 * next (so a fault anywhere after is a register dump, not a triple fault), the boot
 * information parsed into a copy while boot.asm's identity map still reaches it, and
 * only then the switch to the kernel's own page tables, which drops that identity map.
 * Interrupts stay disabled throughout.
 */
#include <stddef.h>
#include <stdint.h>

#include <labyrinth/acpi.h>
#include <labyrinth/arch.h>
#include <labyrinth/cmdline.h>
#include <labyrinth/kernel_mm.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/memmap.h>
#include <labyrinth/multiboot2.h>

#include "tests.h"

/* boot.asm identity-maps this much; every multiboot2 address is below it anyway. */
#define BOOT_IDENTITY_LIMIT (4ull << 30)

void kmain(uint32_t magic, uint64_t mbi_phys);

/* The parsed boot information: the only copy the kernel keeps after paging init. */
static struct boot_info boot_info;

/* The ACPI tables, read through boot.asm's identity map before paging replaces it. */
static struct acpi_info acpi;
static enum acpi_status acpi_status;

/* Inputs to arch_paging_init(): available RAM, and what page tables must not overwrite. */
static struct arch_phys_range ram_ranges[MB2_MAX_MMAP];
static struct arch_phys_range excluded_ranges[1 + MB2_MAX_MODULES];

_Noreturn static void boot_fail(void)
{
	kprintf("labyrinth: boot failed\n");
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

static void check_magic(uint32_t magic, uint64_t mbi_phys)
{
	if (magic == MB2_BOOTLOADER_MAGIC)
		return;
	kprintf("labyrinth: bad boot loader magic 0x%08x (expected 0x%08x), info at 0x%lx: "
		"not booted by multiboot2\n", magic, MB2_BOOTLOADER_MAGIC, mbi_phys);
	boot_fail();
}

/* Parse through boot.asm's identity map, which must still be live. */
static void parse_boot_info(uint64_t mbi_phys)
{
	uint32_t err_offset = 0;
	size_t avail = mbi_phys < BOOT_IDENTITY_LIMIT ? BOOT_IDENTITY_LIMIT - mbi_phys : 0;
	enum mb2_status st = mb2_parse((const void *)(uintptr_t)mbi_phys, avail, mbi_phys,
				       &boot_info, &err_offset);

	if (st == MB2_OK)
		return;
	kprintf("multiboot2: cannot use the boot information at 0x%lx: %s (at offset %u)\n",
		mbi_phys, mb2_status_str(st), err_offset);
	boot_fail();
}

/*
 * The ACPI tables live in reserved or ACPI-reclaimable memory, which the kernel's direct
 * map leaves out, so they are read now, through boot.asm's identity map of the low
 * 4 GiB: a table (or part of one) above that is "not mapped" to the parser.
 */
static const void *identity_map(void *ctx, uint64_t phys, uint64_t len)
{
	(void)ctx;
	if (phys == 0 || len > BOOT_IDENTITY_LIMIT || phys > BOOT_IDENTITY_LIMIT - len)
		return NULL;
	return (const void *)(uintptr_t)phys;
}

static void parse_acpi(void)
{
	acpi_status = acpi_parse(boot_info.acpi_rsdp, boot_info.acpi_rsdp_len, identity_map, NULL,
				 &acpi);
	if (acpi.xsdt_status != ACPI_OK)
		kprintf("acpi: cannot use the XSDT: %s (table at 0x%lx, offset %u): falling back to "
			"the RSDT\n", acpi_status_str(acpi.xsdt_status), acpi.xsdt_phys,
			acpi.xsdt_err_offset);
	if (acpi_status != ACPI_OK) {
		kprintf("acpi: cannot use the ACPI tables: %s (table at 0x%lx, offset %u): the "
			"kernel runs on the boot CPU alone\n", acpi_status_str(acpi_status),
			acpi.err_phys, acpi.err_offset);
		return;
	}
	uint16_t fl;
	uint32_t gsi0 = acpi_isa_irq_gsi(&acpi, 0, &fl);
	arch_pm_timer_init(acpi.pm_timer_port, acpi.pm_timer_32bit);
	kprintf("acpi: RSDP revision %u (multiboot2 tag %u), %s at 0x%lx, MADT at 0x%lx, PM timer "
		"%s0x%x (%s)\n", acpi.rsdp_revision, boot_info.acpi_rsdp_tag,
		acpi.xsdt ? "XSDT" : "RSDT", acpi.sdt_phys, acpi.madt_phys,
		acpi.pm_timer_port ? "at port " : "none ", acpi.pm_timer_port,
		acpi.pm_timer_32bit ? "32-bit" : "24-bit");
	kprintf("acpi: %u CPU(s) listed (%u disabled, %u beyond the table), local APIC at 0x%lx, "
		"%u I/O APIC(s), %u override(s), IRQ 0 -> GSI %u, %s\n", acpi.ncpus,
		acpi.cpus_disabled, acpi.cpus_dropped, acpi.lapic_phys, acpi.nioapics,
		acpi.noverrides, gsi0, acpi.pcat_compat ? "8259s present" : "no 8259s");
	for (uint32_t i = 0; i < acpi.ncpus; i++)
		kprintf("acpi:   cpu uid %u: %s id %u%s%s\n", acpi.cpus[i].uid,
			acpi.cpus[i].x2apic ? "x2APIC" : "APIC", acpi.cpus[i].apic_id,
			acpi.cpus[i].flags & ACPI_MADT_ENABLED ? ", enabled" : "",
			acpi.cpus[i].flags & ACPI_MADT_ONLINE_CAPABLE ? ", online-capable" : "");
}

/* Every enabled CPU the MADT lists; online-capable but disabled ones are not present yet. */
static void start_cpus(void)
{
	uint32_t ids[ACPI_MAX_CPUS];
	unsigned n = 0;

	if (acpi_status == ACPI_OK) {
		for (uint32_t i = 0; i < acpi.ncpus; i++)
			if (acpi.cpus[i].flags & ACPI_MADT_ENABLED)
				ids[n++] = acpi.cpus[i].apic_id;
	}
	/* A CPU that is not there: it must time out, be reported and left out. */
	if (n && kopts.smp_absent_apic && n < ACPI_MAX_CPUS)
		ids[n++] = (uint32_t)kopts.smp_absent_apic;
	for (uint32_t i = 0; i < boot_info.nmodules; i++) {
		const struct mb2_module *m = &boot_info.modules[i];
		if (m->start < ARCH_TRAMPOLINE_PHYS + ARCH_TRAMPOLINE_LEN && ARCH_TRAMPOLINE_PHYS < m->end) {
			kprintf("smp: module %u lies on the AP trampoline's low pages: the kernel runs "
				"on the boot CPU alone\n", i);
			n = 0;
		}
	}
	unsigned online = arch_smp_start(ids, n);
	kprintf("smp: %u of %u CPU(s) online%s\n", online, n ? n : 1,
		online == 1 ? ": the kernel runs on the boot CPU alone" : "");
}

static size_t collect_ram(void)
{
	size_t n = 0;

	for (uint32_t i = 0; i < boot_info.nmmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		if (e->type == MB2_MEMORY_AVAILABLE && e->len)
			ram_ranges[n++] = (struct arch_phys_range){ e->base, e->len };
	}
	return n;
}

static size_t collect_exclusions(void)
{
	size_t n = 0;

	excluded_ranges[n++] = (struct arch_phys_range){ boot_info.mbi_phys, boot_info.mbi_size };
	for (uint32_t i = 0; i < boot_info.nmodules; i++) {
		const struct mb2_module *m = &boot_info.modules[i];
		excluded_ranges[n++] = (struct arch_phys_range){ m->start, m->end - m->start };
	}
	return n;
}

static void setup_paging(void)
{
	size_t nram = collect_ram();

	if (nram == 0) {
		kprintf("labyrinth: the boot memory map lists no available RAM%s\n",
			boot_info.has_mmap ? "" : " (no memory map tag at all)");
		boot_fail();
	}
	arch_paging_init(ram_ranges, nram, excluded_ranges, collect_exclusions());
}

/* "126.8 MiB": the largest binary unit the size reaches, to one decimal (truncated). */
static void format_size(char *buf, size_t n, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= 1024ull << (10 * u))
		u++;
	uint64_t tenths = u ? (bytes * 10) >> (10 * u) : bytes * 10;
	ksnprintf(buf, n, "%lu.%lu %s", tenths / 10, tenths % 10, units[u]);
}

static void print_memory_map(void)
{
	uint64_t usable = mb2_usable_bytes(&boot_info);
	char size[24];

	kprintf("memory map: %u entries\n", boot_info.nmmap);
	kprintf("  %-18s  %-18s  %12s  %s\n", "base", "end", "size", "type");
	for (uint32_t i = 0; i < boot_info.nmmap; i++) {
		const struct mb2_mmap_entry *e = &boot_info.mmap[i];
		format_size(size, sizeof(size), e->len);
		kprintf("  0x%016lx  0x%016lx  %12s  %s\n", e->base, e->base + e->len, size,
			mb2_mmap_type_str(e->type));
	}
	kprintf("usable RAM: %lu bytes (%lu MiB)\n", usable, usable >> 20);
}

static void print_modules(void)
{
	char size[24];

	kprintf("modules: %u\n", boot_info.nmodules);
	for (uint32_t i = 0; i < boot_info.nmodules; i++) {
		const struct mb2_module *m = &boot_info.modules[i];
		format_size(size, sizeof(size), m->end - m->start);
		kprintf("  module %u: [0x%lx-0x%lx) %s '%s'\n", i, m->start, m->end, size, m->name);
	}
}

/*
 * The modules' contents, as POSIX cksum(1) sums them (CRC-32, polynomial 0x04C11DB7,
 * the length appended, complemented): taken before mm/ may hand a page out and again at
 * the end, and printed then, so the boot test compares it with cksum of the file itself.
 * A module whose pages were handed out (the kernel's own list of reservations would
 * miss it as well) is overwritten by the tests that write every page.
 */
static uint32_t module_sum_at_boot[MB2_MAX_MODULES];

static uint32_t cksum_byte(uint32_t crc, uint8_t b)
{
	crc ^= (uint32_t)b << 24;
	for (int i = 0; i < 8; i++)
		crc = crc & 0x80000000u ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
	return crc;
}

static uint32_t module_cksum(const struct mb2_module *m)
{
	const uint8_t *p = arch_phys_to_virt(m->start);
	uint64_t len = m->end - m->start;
	uint32_t crc = 0;

	for (uint64_t i = 0; i < len; i++)
		crc = cksum_byte(crc, p[i]);
	for (; len; len >>= 8)
		crc = cksum_byte(crc, (uint8_t)len);
	return ~crc;
}

static void modules_sum_at_boot(void)
{
	for (uint32_t i = 0; i < boot_info.nmodules; i++)
		module_sum_at_boot[i] = module_cksum(&boot_info.modules[i]);
}

/* True if every module is as it was at boot. */
static bool modules_intact(void)
{
	bool ok = true;

	for (uint32_t i = 0; i < boot_info.nmodules; i++) {
		const struct mb2_module *m = &boot_info.modules[i];
		uint32_t now = module_cksum(m);
		kprintf("module %u: cksum %u %lu at the end (%u at boot)%s\n", i, now, m->end - m->start,
			module_sum_at_boot[i], now == module_sum_at_boot[i] ? "" : ": CHANGED during the run");
		ok &= now == module_sum_at_boot[i];
	}
	return ok;
}

/* Whether the page at @phys lies in a map entry that must be reserved over RAM. */
static bool page_reserved_in_map(uint64_t phys)
{
	for (uint32_t i = 0; i < boot_info.nmmap; i++) {
		struct mb2_ram_plan p;
		mb2_ram_plan(&boot_info, i, ARCH_HHDM_LIMIT, &p);
		if (phys + ARCH_PAGE_SIZE > p.reserve.base && phys < p.reserve.base + p.reserve.len)
			return true;
	}
	return false;
}

/*
 * Prove the direct map reaches the top of RAM (above 4 GiB when there is any): write a
 * pattern into the highest page the allocator will get through it, read it back,
 * restore the word.  Only RAM the allocator gets (mb2_ram_plan()'s choice), never a page
 * firmware also lists as reserved.
 */
static void direct_map_self_check(void)
{
	uint64_t top = 0;

	for (uint32_t i = 0; i < boot_info.nmmap; i++) {
		struct mb2_ram_plan p;
		mb2_ram_plan(&boot_info, i, ARCH_HHDM_LIMIT, &p);
		uint64_t end = (p.use.base + p.use.len) & ~(ARCH_PAGE_SIZE - 1);
		if (p.use.len && end >= p.use.base + ARCH_PAGE_SIZE && end > top &&
		    !page_reserved_in_map(end - ARCH_PAGE_SIZE))
			top = end;
	}
	if (top == 0) {
		kprintf("direct map self-check: no available page to write\n");
		boot_fail();
	}
	uint64_t page = top - ARCH_PAGE_SIZE;
	volatile uint64_t *p = arch_phys_to_virt(page);
	uint64_t pattern = 0x4C41425952494E54ull ^ page; /* "LABYRINT" */
	uint64_t saved = *p;

	*p = pattern;
	uint64_t got = *p;
	*p = saved;
	kprintf("direct map self-check: highest available page phys 0x%lx at %p: wrote 0x%016lx, "
		"read 0x%016lx: %s\n", page, (void *)p, pattern, got, got == pattern ? "OK" : "MISMATCH");
	if (got != pattern)
		boot_fail();
}

static bool streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static void fault_job(void *arg)
{
	const enum arch_fault *f = arg;
	if (arch_cpu_id() == kopts.fault_cpu)
		arch_trigger_fault(*f);
}

/*
 * fault=<name> on the command line: raise that exception (the handler exits QEMU with 35).
 * With fault_cpu=N (N > 0) the AP numbered N raises it once every CPU is up (@on_ap),
 * while the boot CPU waits: its exception report must stop the boot CPU and the others.
 */
static void maybe_trigger_fault(bool on_ap)
{
	static const struct {
		const char *name;
		enum arch_fault fault;
	} faults[] = {
		{ "pagefault", ARCH_FAULT_PAGE },  { "ud", ARCH_FAULT_UD },
		{ "divide", ARCH_FAULT_DIVIDE },   { "gpf", ARCH_FAULT_GP },
		{ "doublefault", ARCH_FAULT_DOUBLE },
	};

	if (!kopts.fault[0] || on_ap != (kopts.fault_cpu != 0))
		return;
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		if (!streq(kopts.fault, faults[i].name))
			continue;
		if (!on_ap) {
			kprintf("labyrinth: fault=%s requested: raising it now\n", kopts.fault);
			arch_trigger_fault(faults[i].fault);
		}
		if (kopts.fault_cpu >= arch_cpus_online() || faults[i].fault == ARCH_FAULT_DOUBLE) {
			kprintf("labyrinth: fault_cpu=%lu ignored: no such AP online (or a double fault, "
				"which needs the boot stack)\n", kopts.fault_cpu);
			return;
		}
		kprintf("labyrinth: fault=%s requested on cpu %lu: raising it there now\n", kopts.fault,
			kopts.fault_cpu);
		static enum arch_fault which;
		which = faults[i].fault;
		arch_smp_run(fault_job, &which);
		for (;;)
			arch_wait_for_interrupt(); /* the AP's exception report ends the run */
	}
	kprintf("labyrinth: unknown fault '%s' ignored (pagefault, ud, divide, gpf, doublefault)\n",
		kopts.fault);
}

/*
 * mode=: demo (default) runs the in-kernel tests and then the timer stress test, test
 * runs the tests only, stress the stress test only, bench the in-kernel benchmarks, idle
 * none of them.  True if all passed.
 */
static bool run_mode(void)
{
	bool tests = streq(kopts.mode, "demo") || streq(kopts.mode, "test");
	bool stress = streq(kopts.mode, "demo") || streq(kopts.mode, "stress");
	bool bench = streq(kopts.mode, "bench");
	bool ok = true;

	if (!tests && !stress && !bench && !streq(kopts.mode, "idle")) {
		kprintf("labyrinth: unknown mode '%s' (demo, test, stress, bench, idle)\n", kopts.mode);
		return false;
	}
	if (bench)
		ok &= kernel_run_bench();
	if (tests)
		ok &= kernel_run_mm_tests() == 0;
	if (stress) {
		ok &= kernel_run_stress();
		kernel_memmap_print(&kernel_mm, "after-stress");
	}
	kernel_mm_report_summary();
	kernel_mm_report_large_blocks();
	lmm_dump(&kernel_mm);
	return ok;
}

void kmain(uint32_t magic, uint64_t mbi_phys)
{
	arch_serial_init();
	arch_cpu_init();
	kprintf("\nLabyrinth: long mode OK\n");
	kprintf("labyrinth: kernel image at phys [0x%lx-0x%lx), boot info at 0x%lx\n",
		arch_kernel_image().base, arch_kernel_image().base + arch_kernel_image().len,
		mbi_phys);
	check_magic(magic, mbi_phys);
	kprintf("tsc: %lu kHz (calibrated against PIT channel 2)\n", arch_tsc_hz() / 1000);

	parse_boot_info(mbi_phys);
	kprintf("command line: '%s'%s\n", boot_info.cmdline,
		boot_info.cmdline_truncated ? " (truncated)" : "");
	kernel_options_parse(boot_info.cmdline);
	parse_acpi();

	print_memory_map();
	print_modules();
	setup_paging();
	direct_map_self_check();

	maybe_trigger_fault(false);

	modules_sum_at_boot();
	kernel_mm_init(&boot_info);
	start_cpus();
	maybe_trigger_fault(true);
	/* From here on, normal kernel context: interrupts on, handlers registered later. */
	arch_irq_enable();
	kernel_memmap_print(&kernel_mm, "boot");
	bool ok = run_mode();
	ok &= modules_intact();

	kprintf("labyrinth: done: %s\n", ok ? "PASS" : "FAIL");
	arch_exit_qemu(ok ? ARCH_QEMU_EXIT_SUCCESS : ARCH_QEMU_EXIT_FAILURE);
}

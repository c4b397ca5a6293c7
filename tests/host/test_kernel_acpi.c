/*
 * test_kernel_acpi.c - acpi_parse() against synthetic firmware tables: a QEMU-like
 * RSDT and XSDT layout, then every malformed shape it must refuse with its reason
 * (checksums, truncated lengths, entries overrunning the MADT, zero-length entries, no
 * MADT, unmapped tables), an unusable XSDT beside a good RSDT (which must be used),
 * CPUs listed twice, and the FADT's PM timer.  The fake physical memory hands out exactly
 * the bytes asked for from a heap copy, so ASan catches any read past what the parser
 * mapped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/acpi.h>

#include "testlib.h"

/* ---- Fake physical memory: [PHYS_BASE, PHYS_BASE + sizeof(mem)) ---------------------- */

#define PHYS_BASE 0x7fe0000ull
#define XSDT_AT (PHYS_BASE + 0x000)
#define RSDT_AT (PHYS_BASE + 0x100)
#define FACP_AT (PHYS_BASE + 0x200)
#define MADT_AT (PHYS_BASE + 0x400)

static uint8_t mem[0x1000];
static uint8_t *copies[64];
static unsigned ncopies;

static void free_copies(void)
{
	while (ncopies)
		free(copies[--ncopies]);
}

/* Exactly [phys, phys + len) in a fresh heap block: one byte more is an ASan report. */
static const void *fake_map(void *ctx, uint64_t phys, uint64_t len)
{
	(void)ctx;
	if (phys < PHYS_BASE || len > sizeof(mem) || phys - PHYS_BASE > sizeof(mem) - len)
		return NULL;
	if (ncopies == sizeof(copies) / sizeof(copies[0]))
		return NULL;
	uint8_t *c = malloc(len ? len : 1);
	memcpy(c, mem + (phys - PHYS_BASE), len);
	copies[ncopies++] = c;
	return c;
}

static uint8_t *at(uint64_t phys) { return mem + (phys - PHYS_BASE); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static uint8_t csum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)-s;
}

static void sdt_header(uint64_t phys, const char *sig, uint32_t len)
{
	uint8_t *t = at(phys);
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = 1;
	memcpy(t + 10, "BOCHS ", 6);
}

static void sdt_fix_checksum(uint64_t phys)
{
	uint8_t *t = at(phys);
	uint32_t len;
	memcpy(&len, t + 4, 4);
	if (len > sizeof(mem) - (phys - PHYS_BASE))
		return; /* a fuzzed length: leave the checksum wrong */
	t[9] = 0;
	t[9] = csum(t, len);
}

/* ---- The machine: QEMU -smp 4 on pc, plus an x2APIC entry and a disabled CPU -------- */

static uint8_t rsdp[36];
static uint32_t madt_len;
static struct acpi_info info;

static void madt_entry(const uint8_t *e, uint8_t len)
{
	memcpy(at(MADT_AT) + madt_len, e, len);
	madt_len += len;
}

static void build_madt(void)
{
	madt_len = 44;
	put32(at(MADT_AT) + 36, 0xFEE00000u);
	put32(at(MADT_AT) + 40, 1); /* PCAT_COMPAT */
	for (uint8_t i = 0; i < 4; i++) {
		uint8_t lapic[8] = { 0, 8, i, i, 1, 0, 0, 0 };
		madt_entry(lapic, 8);
	}
	uint8_t off[8] = { 0, 8, 4, 4, 0, 0, 0, 0 };        /* neither enabled nor capable */
	madt_entry(off, 8);
	uint8_t hot[8] = { 0, 8, 5, 5, 2, 0, 0, 0 };        /* online-capable              */
	madt_entry(hot, 8);
	uint8_t x2[16] = { 9, 16, 0, 0, 0x00, 0x01, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0 }; /* id 256 */
	madt_entry(x2, 16);
	uint8_t ioapic[12] = { 1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0 };
	madt_entry(ioapic, 12);
	uint8_t iso0[10] = { 2, 10, 0, 0, 2, 0, 0, 0, 0, 0 };  /* IRQ 0 -> GSI 2 */
	madt_entry(iso0, 10);
	uint8_t iso9[10] = { 2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0 }; /* IRQ 9: level, high */
	madt_entry(iso9, 10);
	uint8_t nmi[6] = { 4, 6, 0xFF, 5, 0, 1 };              /* local APIC NMI: skipped */
	madt_entry(nmi, 6);
	sdt_header(MADT_AT, "APIC", madt_len);
	sdt_fix_checksum(MADT_AT);
}

static void build_machine(void)
{
	memset(mem, 0, sizeof(mem));
	sdt_header(FACP_AT, "FACP", 116);
	put32(at(FACP_AT) + 76, 0x608);      /* PM_TMR_BLK                 */
	put32(at(FACP_AT) + 112, 1u << 8);   /* TMR_VAL_EXT: 32-bit timer  */
	sdt_fix_checksum(FACP_AT);
	build_madt();

	sdt_header(RSDT_AT, "RSDT", 36 + 8);
	put32(at(RSDT_AT) + 36, (uint32_t)FACP_AT);
	put32(at(RSDT_AT) + 40, (uint32_t)MADT_AT);
	sdt_fix_checksum(RSDT_AT);

	sdt_header(XSDT_AT, "XSDT", 36 + 16);
	put64(at(XSDT_AT) + 36, FACP_AT);
	put64(at(XSDT_AT) + 44, MADT_AT);
	sdt_fix_checksum(XSDT_AT);
}

/* RSDP revision 0 (RSDT only) or 2 (XSDT too). */
static void build_rsdp(unsigned revision)
{
	memset(rsdp, 0, sizeof(rsdp));
	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "BOCHS ", 6);
	rsdp[15] = (uint8_t)revision;
	put32(rsdp + 16, (uint32_t)RSDT_AT);
	if (revision >= 2) {
		put32(rsdp + 20, 36);
		put64(rsdp + 24, XSDT_AT);
	}
	rsdp[8] = csum(rsdp, 20);
	if (revision >= 2)
		rsdp[32] = csum(rsdp, 36);
}

static enum acpi_status parse(size_t len)
{
	/* The RSDP copy too sits in a block of exactly its size. */
	uint8_t *r = malloc(len ? len : 1);
	memcpy(r, rsdp, len);
	enum acpi_status st = acpi_parse(r, len, fake_map, NULL, &info);
	free(r);
	free_copies();
	return st;
}

#define EXPECT(expr, want)                                                                   \
	do {                                                                                 \
		enum acpi_status got_ = (expr);                                              \
		ASSERT(got_ == (want), "status %d (%s), expected %d (%s)", got_,             \
		       acpi_status_str(got_), want, acpi_status_str(want));                  \
	} while (0)

/* ---- Good tables ---------------------------------------------------------------------- */

static void check_machine(void)
{
	CHECK(info.madt_phys == MADT_AT, "madt at %#llx", (unsigned long long)info.madt_phys);
	CHECK(info.lapic_phys == 0xFEE00000u && info.pcat_compat, "lapic %#llx",
	      (unsigned long long)info.lapic_phys);
	ASSERT(info.ncpus == 6, "ncpus %u", info.ncpus);
	for (unsigned i = 0; i < 4; i++)
		CHECK(info.cpus[i].apic_id == i && info.cpus[i].flags == ACPI_MADT_ENABLED &&
		      !info.cpus[i].x2apic, "cpu %u: id %u flags %u", i, info.cpus[i].apic_id,
		      info.cpus[i].flags);
	CHECK(info.cpus[4].apic_id == 5 && info.cpus[4].flags == ACPI_MADT_ONLINE_CAPABLE,
	      "online-capable cpu: id %u flags %u", info.cpus[4].apic_id, info.cpus[4].flags);
	CHECK(info.cpus[5].apic_id == 256 && info.cpus[5].x2apic && info.cpus[5].uid == 9,
	      "x2apic cpu: id %u uid %u", info.cpus[5].apic_id, info.cpus[5].uid);
	CHECK(info.cpus_disabled == 1, "disabled %u", info.cpus_disabled);
	CHECK(info.nioapics == 1 && info.ioapics[0].phys == 0xFEC00000u &&
	      info.ioapics[0].gsi_base == 0, "ioapics %u", info.nioapics);
	CHECK(info.noverrides == 2, "overrides %u", info.noverrides);
	uint16_t fl = 0xFFFF;
	CHECK(acpi_isa_irq_gsi(&info, 0, &fl) == 2 && fl == 0, "IRQ0 -> GSI %u flags %#x",
	      acpi_isa_irq_gsi(&info, 0, NULL), fl);
	CHECK(acpi_isa_irq_gsi(&info, 9, &fl) == 9 && fl == 0x0D, "IRQ9 flags %#x", fl);
	CHECK(acpi_isa_irq_gsi(&info, 4, &fl) == 4 && fl == 0, "IRQ4 not identity");
	CHECK(info.entries_skipped == 1, "skipped %u", info.entries_skipped);
	CHECK(info.pm_timer_port == 0x608 && info.pm_timer_32bit, "pm timer %#x", info.pm_timer_port);
}

/* A FADT with a bad checksum or cut short gives no PM timer, and is no reason to fail. */
static void bad_fadt_means_no_pm_timer(void)
{
	build_machine();
	build_rsdp(0);
	at(FACP_AT)[76] ^= 1;
	EXPECT(parse(20), ACPI_OK);
	CHECK(info.pm_timer_port == 0, "pm timer %#x from a FADT with a bad checksum", info.pm_timer_port);
	build_machine();
	put32(at(FACP_AT) + 4, 100);
	sdt_fix_checksum(FACP_AT);
	EXPECT(parse(20), ACPI_OK);
	CHECK(info.pm_timer_port == 0, "pm timer %#x from a 100-byte FADT", info.pm_timer_port);
}

static void rsdt_machine_parses(void)
{
	build_machine();
	build_rsdp(0);
	EXPECT(parse(20), ACPI_OK);
	CHECK(!info.xsdt && info.sdt_phys == RSDT_AT && info.rsdp_revision == 0, "used %s",
	      info.xsdt ? "XSDT" : "RSDT");
	check_machine();
}

static void xsdt_preferred_when_present(void)
{
	build_machine();
	build_rsdp(2);
	/* Break the RSDT: a revision 2 RSDP must not even look at it. */
	at(RSDT_AT)[0] = 'X';
	EXPECT(parse(36), ACPI_OK);
	CHECK(info.xsdt && info.sdt_phys == XSDT_AT && info.rsdp_revision == 2, "used %s",
	      info.xsdt ? "XSDT" : "RSDT");
	CHECK(info.xsdt_status == ACPI_OK, "a fallback reported: %s", acpi_status_str(info.xsdt_status));
	check_machine();
}

static void xsdp_without_xsdt_uses_rsdt(void)
{
	build_machine();
	build_rsdp(2);
	put64(rsdp + 24, 0);
	rsdp[32] = 0;
	rsdp[32] = csum(rsdp, 36);
	EXPECT(parse(36), ACPI_OK);
	CHECK(!info.xsdt && info.sdt_phys == RSDT_AT, "used %s", info.xsdt ? "XSDT" : "RSDT");
}

static void lapic_address_override_entry(void)
{
	build_machine();
	uint8_t e[12] = { 5, 12, 0, 0 };
	put64(e + 4, 0xFEE10000ull);
	madt_entry(e, 12);
	sdt_header(MADT_AT, "APIC", madt_len);
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_OK);
	CHECK(info.lapic_phys == 0xFEE10000ull, "lapic %#llx", (unsigned long long)info.lapic_phys);
}

/* ---- The RSDP ------------------------------------------------------------------------- */

static void no_rsdp(void)
{
	EXPECT(acpi_parse(NULL, 0, fake_map, NULL, &info), ACPI_ERR_NO_RSDP);
}

static void rsdp_short(void)
{
	build_machine();
	build_rsdp(0);
	EXPECT(parse(19), ACPI_ERR_RSDP_SHORT);
	build_rsdp(2);
	EXPECT(parse(20), ACPI_ERR_RSDP_SHORT); /* revision 2 needs 36 */
}

static void rsdp_bad_signature(void)
{
	build_machine();
	build_rsdp(0);
	rsdp[3] = 'x';
	EXPECT(parse(20), ACPI_ERR_RSDP_SIGNATURE);
}

static void rsdp_bad_checksum(void)
{
	build_machine();
	build_rsdp(0);
	rsdp[8]++;
	EXPECT(parse(20), ACPI_ERR_RSDP_CHECKSUM);
}

static void xsdp_bad_length_and_checksum(void)
{
	build_machine();
	build_rsdp(2);
	put32(rsdp + 20, 20);
	rsdp[8] = 0;
	rsdp[8] = csum(rsdp, 20);
	EXPECT(parse(36), ACPI_ERR_XSDP_LENGTH);
	build_rsdp(2);
	put32(rsdp + 20, 4096); /* beyond the 36 bytes the tag carried */
	EXPECT(parse(36), ACPI_ERR_XSDP_LENGTH);
	build_rsdp(2);
	rsdp[32]++;
	EXPECT(parse(36), ACPI_ERR_XSDP_CHECKSUM);
}

/* ---- RSDT / XSDT ---------------------------------------------------------------------- */

static void sdt_unmapped(void)
{
	build_machine();
	build_rsdp(0);
	put32(rsdp + 16, 0x1000); /* below the fake memory */
	rsdp[8] = 0;
	rsdp[8] = csum(rsdp, 20);
	EXPECT(parse(20), ACPI_ERR_SDT_UNMAPPED);
	CHECK(info.err_phys == 0x1000, "err_phys %#llx", (unsigned long long)info.err_phys);
	build_rsdp(0);
	put32(rsdp + 16, 0);
	rsdp[8] = 0;
	rsdp[8] = csum(rsdp, 20);
	EXPECT(parse(20), ACPI_ERR_NO_SDT);
}

static void sdt_bad_signature(void)
{
	build_machine();
	build_rsdp(0);
	memcpy(at(RSDT_AT), "XSDT", 4); /* an XSDT where the RSDT should be */
	sdt_fix_checksum(RSDT_AT);
	EXPECT(parse(20), ACPI_ERR_SDT_SIGNATURE);
	CHECK(info.err_phys == RSDT_AT, "err_phys %#llx", (unsigned long long)info.err_phys);
}

/* A revision 2 RSDP with the XSDT at @xsdt (the RSDP's checksums made right again). */
static void rsdp_xsdt_at(uint64_t xsdt)
{
	put64(rsdp + 24, xsdt);
	rsdp[32] = 0;
	rsdp[32] = csum(rsdp, 36);
}

/*
 * An XSDT that cannot be read or trusted, with a good RSDT beside it: the RSDT is used,
 * so the machine still runs on all its CPUs.  Unmapped stands for an XSDT above what
 * the kernel's identity map reaches.
 */
static void xsdt_unusable_falls_back_to_rsdt(void)
{
	static const struct {
		const char *what;
		enum acpi_status why;
	} cases[] = {
		{ "unmapped", ACPI_ERR_SDT_UNMAPPED },   { "bad checksum", ACPI_ERR_SDT_CHECKSUM },
		{ "bad signature", ACPI_ERR_SDT_SIGNATURE }, { "absurd length", ACPI_ERR_SDT_LENGTH },
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		build_machine();
		build_rsdp(2);
		uint64_t xsdt = XSDT_AT;
		switch (cases[c].why) {
		case ACPI_ERR_SDT_UNMAPPED:
			xsdt = 0x100000000ull;
			rsdp_xsdt_at(xsdt);
			break;
		case ACPI_ERR_SDT_CHECKSUM:
			at(XSDT_AT)[44] ^= 1;
			break;
		case ACPI_ERR_SDT_SIGNATURE:
			memcpy(at(XSDT_AT), "RSDT", 4);
			sdt_fix_checksum(XSDT_AT);
			break;
		default:
			put32(at(XSDT_AT) + 4, 0xFFFFFFFFu);
			break;
		}
		enum acpi_status st = parse(36);
		ASSERT(st == ACPI_OK, "XSDT %s: status %s", cases[c].what, acpi_status_str(st));
		CHECK(!info.xsdt && info.sdt_phys == RSDT_AT && info.rsdp_revision == 2,
		      "XSDT %s: used %s at %#llx", cases[c].what, info.xsdt ? "XSDT" : "RSDT",
		      (unsigned long long)info.sdt_phys);
		CHECK(info.xsdt_status == cases[c].why && info.xsdt_phys == xsdt,
		      "XSDT %s: reported as %s at %#llx", cases[c].what,
		      acpi_status_str(info.xsdt_status), (unsigned long long)info.xsdt_phys);
		check_machine();
	}
}

/* Both unusable: the RSDT's problem is the one reported, the XSDT's is kept beside it. */
static void xsdt_and_rsdt_both_unusable(void)
{
	build_machine();
	build_rsdp(2);
	rsdp_xsdt_at(0x100000000ull);
	at(RSDT_AT)[40] ^= 1;
	EXPECT(parse(36), ACPI_ERR_SDT_CHECKSUM);
	CHECK(info.err_phys == RSDT_AT && info.err_offset == 9, "where %#llx+%u",
	      (unsigned long long)info.err_phys, info.err_offset);
	CHECK(info.xsdt_status == ACPI_ERR_SDT_UNMAPPED && info.xsdt_phys == 0x100000000ull,
	      "XSDT reported as %s at %#llx", acpi_status_str(info.xsdt_status),
	      (unsigned long long)info.xsdt_phys);
	/* No RSDT to fall back to: the XSDT's problem, as before. */
	build_machine();
	build_rsdp(2);
	put32(rsdp + 16, 0);
	rsdp[8] = 0;
	rsdp[8] = csum(rsdp, 20);
	rsdp_xsdt_at(0x100000000ull);
	EXPECT(parse(36), ACPI_ERR_SDT_UNMAPPED);
	CHECK(info.xsdt && info.err_phys == 0x100000000ull && info.xsdt_status == ACPI_OK,
	      "err_phys %#llx, xsdt_status %d", (unsigned long long)info.err_phys, info.xsdt_status);
}

static void sdt_bad_checksum(void)
{
	build_machine();
	build_rsdp(0);
	at(RSDT_AT)[40] ^= 1;
	EXPECT(parse(20), ACPI_ERR_SDT_CHECKSUM);
	CHECK(info.err_phys == RSDT_AT && info.err_offset == 9, "where %#llx+%u",
	      (unsigned long long)info.err_phys, info.err_offset);
}

static void sdt_truncated_lengths(void)
{
	build_machine();
	build_rsdp(0);
	put32(at(RSDT_AT) + 4, 35); /* below its own header */
	EXPECT(parse(20), ACPI_ERR_SDT_LENGTH);
	put32(at(RSDT_AT) + 4, 0);
	EXPECT(parse(20), ACPI_ERR_SDT_LENGTH);
	put32(at(RSDT_AT) + 4, 0x10000); /* runs past mapped memory */
	EXPECT(parse(20), ACPI_ERR_SDT_LENGTH);
	put32(at(RSDT_AT) + 4, 0xFFFFFFFFu); /* absurd */
	EXPECT(parse(20), ACPI_ERR_SDT_LENGTH);
}

static void sdt_partial_entry_ignored(void)
{
	build_machine();
	build_rsdp(0);
	/* 36 + 4 + 3: the MADT pointer is cut to 3 bytes: not followed. */
	sdt_header(RSDT_AT, "RSDT", 43);
	sdt_fix_checksum(RSDT_AT);
	EXPECT(parse(20), ACPI_ERR_NO_MADT);
}

static void no_madt(void)
{
	build_machine();
	build_rsdp(0);
	sdt_header(RSDT_AT, "RSDT", 40); /* FACP only */
	sdt_fix_checksum(RSDT_AT);
	EXPECT(parse(20), ACPI_ERR_NO_MADT);
	/* A MADT pointer into unmapped memory is skipped, then there is none. */
	sdt_header(RSDT_AT, "RSDT", 44);
	put32(at(RSDT_AT) + 40, 0x2000);
	sdt_fix_checksum(RSDT_AT);
	EXPECT(parse(20), ACPI_ERR_NO_MADT);
}

/* ---- The MADT ------------------------------------------------------------------------- */

static void madt_bad_checksum(void)
{
	build_machine();
	build_rsdp(0);
	at(MADT_AT)[50]++;
	EXPECT(parse(20), ACPI_ERR_MADT_CHECKSUM);
	CHECK(info.err_phys == MADT_AT, "err_phys %#llx", (unsigned long long)info.err_phys);
}

static void madt_truncated(void)
{
	build_machine();
	build_rsdp(0);
	put32(at(MADT_AT) + 4, 43);
	EXPECT(parse(20), ACPI_ERR_MADT_LENGTH);
	put32(at(MADT_AT) + 4, sizeof(mem)); /* past the end of mapped memory */
	EXPECT(parse(20), ACPI_ERR_MADT_LENGTH);
}

static void madt_zero_length_entry(void)
{
	build_machine();
	at(MADT_AT)[44 + 1] = 0;
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_ERR_MADT_ENTRY_LENGTH);
	CHECK(info.err_offset == 44, "offset %u", info.err_offset);
}

static void madt_entry_shorter_than_type(void)
{
	build_machine();
	/* The x2APIC entry (at 44 + 6 * 8) claims 12 bytes: its flags would be cut. */
	at(MADT_AT)[44 + 48 + 1] = 12;
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_ERR_MADT_ENTRY_LENGTH);
	CHECK(info.err_offset == 92, "offset %u", info.err_offset);
}

static void madt_entry_overruns_table(void)
{
	build_machine();
	/* The last entry (local APIC NMI, 6 bytes) claims 200. */
	at(MADT_AT)[madt_len - 6 + 1] = 200;
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_ERR_MADT_ENTRY_OVERRUN);
	/* One stray byte after the last entry: not even a type and a length. */
	build_machine();
	put32(at(MADT_AT) + 4, madt_len + 1);
	sdt_fix_checksum(MADT_AT);
	EXPECT(parse(20), ACPI_ERR_MADT_ENTRY_OVERRUN);
}

/*
 * A CPU listed twice for one APIC id (as xAPIC and as x2APIC, say), first only
 * online-capable and then enabled: one entry, and it is enabled, or start_cpus() would
 * never start that CPU.  The other order keeps it enabled too.
 */
static void madt_duplicate_cpu_flags_merged(void)
{
	build_machine();
	madt_len = 44;
	uint8_t hot[8] = { 0, 8, 7, 7, 2, 0, 0, 0 };                                  /* capable */
	madt_entry(hot, 8);
	uint8_t x2[16] = { 9, 16, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0 };         /* enabled */
	madt_entry(x2, 16);
	uint8_t on[8] = { 0, 8, 8, 8, 1, 0, 0, 0 };                                   /* enabled */
	madt_entry(on, 8);
	uint8_t hot8[16] = { 9, 16, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0 };       /* capable */
	madt_entry(hot8, 16);
	sdt_header(MADT_AT, "APIC", madt_len);
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_OK);
	ASSERT(info.ncpus == 2, "ncpus %u, expected one entry per APIC id", info.ncpus);
	CHECK(info.cpus[0].apic_id == 7 && info.cpus[0].flags == ACPI_MADT_ENABLED,
	      "id %u flags %u: the enabled duplicate was dropped", info.cpus[0].apic_id,
	      info.cpus[0].flags);
	CHECK(info.cpus[1].apic_id == 8 && info.cpus[1].flags == ACPI_MADT_ENABLED,
	      "id %u flags %u: a later online-capable duplicate changed it", info.cpus[1].apic_id,
	      info.cpus[1].flags);
	CHECK(info.cpus_disabled == 0 && info.cpus_dropped == 0, "disabled %u dropped %u",
	      info.cpus_disabled, info.cpus_dropped);
}

static void madt_without_cpus(void)
{
	build_machine();
	madt_len = 44;
	uint8_t off[8] = { 0, 8, 0, 0, 0, 0, 0, 0 };
	madt_entry(off, 8);
	sdt_header(MADT_AT, "APIC", madt_len);
	sdt_fix_checksum(MADT_AT);
	build_rsdp(0);
	EXPECT(parse(20), ACPI_ERR_NO_CPUS);
}

static void status_strings_distinct(void)
{
	for (int a = 0; a < ACPI_STATUS_COUNT; a++)
		for (int b = a + 1; b < ACPI_STATUS_COUNT; b++)
			CHECK(strcmp(acpi_status_str(a), acpi_status_str(b)) != 0, "%d and %d", a, b);
	CHECK(strcmp(acpi_status_str(ACPI_STATUS_COUNT), "unknown status") == 0, "count");
}

/* Random byte flips in the whole machine: any status is fine, reading out of bounds is not. */
static void fuzz_flips_stay_in_bounds(void)
{
	srand(11);
	for (int round = 0; round < 3000; round++) {
		build_machine();
		build_rsdp(round & 1 ? 2 : 0);
		for (int k = 0; k < 1 + rand() % 4; k++) {
			unsigned where = (unsigned)rand() % (0x600 + 36);
			if (where < 36)
				rsdp[where] = (uint8_t)rand();
			else
				mem[where - 36] = (uint8_t)rand();
		}
		if (rand() % 2) {
			sdt_fix_checksum(MADT_AT);
			sdt_fix_checksum(round & 1 ? XSDT_AT : RSDT_AT);
		}
		enum acpi_status st = parse(round & 1 ? 36 : 20);
		ASSERT(st < ACPI_STATUS_COUNT, "status %d", st);
		if (st == ACPI_OK)
			ASSERT(info.ncpus > 0 && info.ncpus <= ACPI_MAX_CPUS, "ncpus %u", info.ncpus);
	}
}

int main(void)
{
	TEST(rsdt_machine_parses);
	TEST(xsdt_preferred_when_present);
	TEST(xsdp_without_xsdt_uses_rsdt);
	TEST(lapic_address_override_entry);
	TEST(bad_fadt_means_no_pm_timer);
	TEST(no_rsdp);
	TEST(rsdp_short);
	TEST(rsdp_bad_signature);
	TEST(rsdp_bad_checksum);
	TEST(xsdp_bad_length_and_checksum);
	TEST(sdt_unmapped);
	TEST(sdt_bad_signature);
	TEST(xsdt_unusable_falls_back_to_rsdt);
	TEST(xsdt_and_rsdt_both_unusable);
	TEST(sdt_bad_checksum);
	TEST(sdt_truncated_lengths);
	TEST(sdt_partial_entry_ignored);
	TEST(no_madt);
	TEST(madt_bad_checksum);
	TEST(madt_truncated);
	TEST(madt_zero_length_entry);
	TEST(madt_entry_shorter_than_type);
	TEST(madt_entry_overruns_table);
	TEST(madt_duplicate_cpu_flags_merged);
	TEST(madt_without_cpus);
	TEST(status_strings_distinct);
	TEST(fuzz_flips_stay_in_bounds);
	return testlib_exit();
}

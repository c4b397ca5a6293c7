/*
 * acpi.h - the little of ACPI the kernel reads: RSDP -> RSDT/XSDT -> MADT, for the CPUs,
 * the I/O APICs and the legacy IRQ overrides.
 *
 * acpi_parse() trusts nothing: every checksum and length is validated and every read is
 * bounded by what the caller's map function says is readable.  A missing or malformed
 * table is a status naming what was wrong and where; the kernel then runs on the boot
 * CPU alone.  Implemented in kernel/acpi.c; freestanding, host-testable.
 */
#ifndef LABYRINTH_ACPI_H
#define LABYRINTH_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8
#define ACPI_MAX_OVERRIDES 16
/* Sanity cap on a table's length: a MADT for 256 CPUs is a few KiB; more is corruption. */
#define ACPI_MAX_TABLE_LEN (1u << 20)

/* MADT local APIC / x2APIC flags (ACPI 6.5, 5.2.12.2). */
#define ACPI_MADT_ENABLED (1u << 0)
#define ACPI_MADT_ONLINE_CAPABLE (1u << 1)

enum acpi_status {
	ACPI_OK = 0,
	ACPI_ERR_NO_RSDP,           /* the boot loader passed no RSDP (no ACPI tag)         */
	ACPI_ERR_RSDP_SHORT,        /* RSDP copy shorter than its revision's 20/36 bytes    */
	ACPI_ERR_RSDP_SIGNATURE,    /* not "RSD PTR "                                       */
	ACPI_ERR_RSDP_CHECKSUM,     /* the first 20 bytes do not sum to 0                   */
	ACPI_ERR_XSDP_LENGTH,       /* revision >= 2 with a length below 36                 */
	ACPI_ERR_XSDP_CHECKSUM,     /* the extended checksum over the whole XSDP fails      */
	ACPI_ERR_NO_SDT,            /* neither an RSDT nor an XSDT address                  */
	ACPI_ERR_SDT_UNMAPPED,      /* RSDT/XSDT not in readable memory                     */
	ACPI_ERR_SDT_SIGNATURE,     /* not "RSDT" / "XSDT"                                  */
	ACPI_ERR_SDT_LENGTH,        /* length below the header, absurd, or past the mapping */
	ACPI_ERR_SDT_CHECKSUM,      /* RSDT/XSDT bytes do not sum to 0                      */
	ACPI_ERR_NO_MADT,           /* no readable table signed "APIC"                      */
	ACPI_ERR_MADT_LENGTH,       /* MADT length below its 44 fixed bytes, absurd, ...    */
	ACPI_ERR_MADT_CHECKSUM,     /* MADT bytes do not sum to 0                           */
	ACPI_ERR_MADT_ENTRY_LENGTH, /* an entry's length is 0, 1 or below its type's size   */
	ACPI_ERR_MADT_ENTRY_OVERRUN,/* an entry runs past the end of the MADT               */
	ACPI_ERR_NO_CPUS,           /* the MADT lists no usable local APIC                  */
	ACPI_STATUS_COUNT
};

const char *acpi_status_str(enum acpi_status s);

struct acpi_cpu {
	uint32_t apic_id;    /* xAPIC id (type 0) or x2APIC id (type 9) */
	uint32_t uid;        /* ACPI processor UID                      */
	uint32_t flags;      /* ACPI_MADT_*                             */
	bool x2apic;         /* listed by a type 9 entry                */
};

struct acpi_ioapic {
	uint32_t id, phys, gsi_base;
};

/* An ISA IRQ that reaches the I/O APIC on another GSI, or with other polarity/trigger. */
struct acpi_override {
	uint8_t bus, source;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags: bits 0-1 polarity, 2-3 trigger mode */
};

struct acpi_info {
	uint8_t rsdp_revision;
	bool xsdt;            /* the XSDT was used (else the RSDT)     */
	/* The RSDP named an XSDT that could not be used, so the RSDT was tried instead: why
	 * (ACPI_OK when there was no such fallback), the XSDT's address and the offset. */
	enum acpi_status xsdt_status;
	uint64_t xsdt_phys;
	uint32_t xsdt_err_offset;
	uint64_t sdt_phys;    /* the RSDT or XSDT                       */
	uint64_t madt_phys;
	uint64_t lapic_phys;  /* MADT's address, or its type 5 override */
	bool pcat_compat;     /* dual 8259s present (MADT flags bit 0)  */
	uint32_t ncpus;       /* entries kept in cpus[], enabled or online-capable */
	uint32_t cpus_disabled; /* neither enabled nor online-capable: skipped */
	uint32_t cpus_dropped;  /* more than ACPI_MAX_CPUS: skipped           */
	struct acpi_cpu cpus[ACPI_MAX_CPUS];
	uint32_t nioapics;
	struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
	uint32_t noverrides;
	struct acpi_override overrides[ACPI_MAX_OVERRIDES];
	uint32_t entries_skipped; /* entry types this kernel does not use, or beyond the tables */
	/* From the FADT ("FACP"), when there is a valid one: the ACPI PM timer, a free-running
	 * 3.579545 MHz counter in I/O space (0 = none), 32 bits wide or 24. */
	uint32_t pm_timer_port;
	bool pm_timer_32bit;
	/* On failure: the physical address of the offending table and the byte offset in it. */
	uint64_t err_phys;
	uint32_t err_offset;
};

/*
 * Returns a pointer through which [phys, phys + len) can be read, or NULL when that range
 * is not (entirely) mapped.  The parser asks for exactly what it will read.
 */
typedef const void *(*acpi_map_fn)(void *ctx, uint64_t phys, uint64_t len);

/*
 * Validate the RSDP copy @rsdp[0..rsdp_len) and follow it to the MADT through @map.
 * Fills @out (zeroed first) and returns ACPI_OK, or the first problem found with
 * out->err_phys/err_offset saying where.  An unusable XSDT is not that problem when the
 * RSDP also has an RSDT: the RSDT is used, and out->xsdt_status says why.  Never reads outside what @map returned.
 * Any context; takes no lock; no allocation.
 */
enum acpi_status acpi_parse(const uint8_t *rsdp, size_t rsdp_len, acpi_map_fn map, void *ctx,
			    struct acpi_info *out);

/* The GSI ISA IRQ @irq arrives on (its override, or the identity), and the override's flags. */
uint32_t acpi_isa_irq_gsi(const struct acpi_info *info, unsigned irq, uint16_t *flags);

#endif /* LABYRINTH_ACPI_H */

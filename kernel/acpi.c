/*
 * acpi.c - a defensive reader of the ACPI tables that describe the CPUs: RSDP, RSDT or
 * XSDT, MADT.  Freestanding and host-testable (tests/host/test_kernel_acpi.c feeds it
 * good and broken tables under the sanitizers).
 *
 * Layouts (ACPI 6.5, 5.2.5 - 5.2.12):
 *   RSDP  "RSD PTR " [0..8), checksum [8] over bytes 0..19, OEM id, revision [15],
 *         RSDT address (u32) [16]; revision >= 2 adds length (u32) [20], XSDT address
 *         (u64) [24] and an extended checksum [32] over all `length` bytes.
 *   SDT   36-byte header: signature [0..4), length (u32) [4], revision, checksum [9]
 *         (all `length` bytes sum to 0), OEM fields.  The RSDT follows it with u32
 *         table addresses, the XSDT with u64 ones.
 *   MADT  "APIC": header, local APIC address (u32) [36], flags (u32) [40], then entries
 *         { u8 type, u8 length, ... } up to `length`.
 *
 * Trust nothing: each table is first mapped for its header only, then for the length
 * the header claims (capped), and only then checksummed and read.  Every entry's length
 * is checked against its type's minimum and against what is left of the table, so a
 * zero-length entry cannot loop forever and a long one cannot read past the end.  The
 * XSDT is preferred when the RSDP has one (ACPI says so); the RSDT otherwise, and also
 * when the XSDT cannot be read or trusted (above what the caller maps, a bad length,
 * checksum or signature): an RSDT that reads is better than running on one CPU.
 */
#include <labyrinth/acpi.h>

#include "bytes.h"

#define RSDP_V1_LEN 20u
#define RSDP_V2_LEN 36u
#define SDT_HDR_LEN 36u
#define MADT_FIXED_LEN 44u
#define FADT_PM_TMR_BLK 76u  /* u32 I/O port of the PM timer                 */
#define FADT_FLAGS 112u      /* u32; bit 8 TMR_VAL_EXT: the timer is 32-bit */
#define FADT_MIN_LEN 116u

#define MADT_LAPIC 0u
#define MADT_IOAPIC 1u
#define MADT_OVERRIDE 2u
#define MADT_LAPIC_ADDR 5u
#define MADT_X2APIC 9u

static uint8_t sum(const uint8_t *p, uint64_t n)
{
	uint8_t s = 0;
	for (uint64_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static bool sig_is(const uint8_t *p, const char *sig, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i] != (uint8_t)sig[i])
			return false;
	return true;
}

static enum acpi_status fail(struct acpi_info *out, enum acpi_status st, uint64_t phys,
			     uint32_t offset)
{
	out->err_phys = phys;
	out->err_offset = offset;
	return st;
}

/*
 * Map the SDT at @phys: header first, then the length it claims.  On success *len is
 * that length and the returned pointer covers it.  @len_err / @sum_err are the
 * statuses to report for this table's length and checksum problems.
 */
static const uint8_t *map_table(acpi_map_fn map, void *ctx, uint64_t phys, uint32_t min_len,
				enum acpi_status len_err, enum acpi_status sum_err, uint32_t *len,
				struct acpi_info *out, enum acpi_status *st)
{
	const uint8_t *t = map(ctx, phys, SDT_HDR_LEN);

	*st = ACPI_OK;
	if (!t) {
		*st = fail(out, len_err, phys, 0);
		return NULL;
	}
	*len = rd32(t + 4);
	if (*len < min_len || *len > ACPI_MAX_TABLE_LEN) {
		*st = fail(out, len_err, phys, 4);
		return NULL;
	}
	t = map(ctx, phys, *len);
	if (!t) {
		*st = fail(out, len_err, phys, 4);
		return NULL;
	}
	if (sum(t, *len) != 0) {
		*st = fail(out, sum_err, phys, 9);
		return NULL;
	}
	return t;
}

static void reset(struct acpi_info *out)
{
	/* Field by field: a zeroing loop over the whole struct could become a memset call. */
	out->rsdp_revision = 0;
	out->xsdt = false;
	out->sdt_phys = 0;
	out->madt_phys = 0;
	out->lapic_phys = 0;
	out->pcat_compat = false;
	out->ncpus = 0;
	out->cpus_disabled = 0;
	out->cpus_dropped = 0;
	out->nioapics = 0;
	out->noverrides = 0;
	out->entries_skipped = 0;
	out->pm_timer_port = 0;
	out->pm_timer_32bit = false;
	out->xsdt_status = ACPI_OK;
	out->xsdt_phys = 0;
	out->xsdt_err_offset = 0;
	out->err_phys = 0;
	out->err_offset = 0;
}

static void add_cpu(struct acpi_info *out, uint32_t apic_id, uint32_t uid, uint32_t flags, bool x2)
{
	if (!(flags & (ACPI_MADT_ENABLED | ACPI_MADT_ONLINE_CAPABLE))) {
		out->cpus_disabled++;
		return;
	}
	/*
	 * Firmware may list a CPU as both xAPIC and x2APIC: keep the first entry, but with
	 * the flags of both, or an online-capable first listing would hide an enabled second
	 * one and start_cpus() would never start that CPU.  Enabled wins: ACPI reserves the
	 * online-capable bit of an enabled CPU.
	 */
	for (uint32_t i = 0; i < out->ncpus; i++) {
		struct acpi_cpu *c = &out->cpus[i];
		if (c->apic_id != apic_id)
			continue;
		c->flags |= flags;
		if (c->flags & ACPI_MADT_ENABLED)
			c->flags &= ~ACPI_MADT_ONLINE_CAPABLE;
		return;
	}
	if (out->ncpus == ACPI_MAX_CPUS) {
		out->cpus_dropped++;
		return;
	}
	out->cpus[out->ncpus++] = (struct acpi_cpu){ apic_id, uid, flags, x2 };
}

/* Minimum length of each entry type this parser reads; 2 (type + length) for the rest. */
static uint32_t entry_min_len(uint8_t type)
{
	switch (type) {
	case MADT_LAPIC: return 8;
	case MADT_IOAPIC: return 12;
	case MADT_OVERRIDE: return 10;
	case MADT_LAPIC_ADDR: return 12;
	case MADT_X2APIC: return 16;
	default: return 2;
	}
}

static enum acpi_status parse_madt(const uint8_t *t, uint32_t len, struct acpi_info *out)
{
	out->lapic_phys = rd32(t + 36);
	out->pcat_compat = rd32(t + 40) & 1;

	for (uint32_t off = MADT_FIXED_LEN; off < len;) {
		if (len - off < 2)
			return fail(out, ACPI_ERR_MADT_ENTRY_OVERRUN, out->madt_phys, off);
		const uint8_t *e = t + off;
		uint8_t type = e[0], elen = e[1];
		if (elen < entry_min_len(type) || elen < 2)
			return fail(out, ACPI_ERR_MADT_ENTRY_LENGTH, out->madt_phys, off);
		if (elen > len - off)
			return fail(out, ACPI_ERR_MADT_ENTRY_OVERRUN, out->madt_phys, off);

		switch (type) {
		case MADT_LAPIC:
			add_cpu(out, e[3], e[2], rd32(e + 4), false);
			break;
		case MADT_X2APIC:
			add_cpu(out, rd32(e + 4), rd32(e + 12), rd32(e + 8), true);
			break;
		case MADT_IOAPIC:
			if (out->nioapics < ACPI_MAX_IOAPICS)
				out->ioapics[out->nioapics++] =
					(struct acpi_ioapic){ e[2], rd32(e + 4), rd32(e + 8) };
			else
				out->entries_skipped++;
			break;
		case MADT_OVERRIDE:
			if (out->noverrides < ACPI_MAX_OVERRIDES)
				out->overrides[out->noverrides++] =
					(struct acpi_override){ e[2], e[3], rd32(e + 4), rd16(e + 8) };
			else
				out->entries_skipped++;
			break;
		case MADT_LAPIC_ADDR:
			out->lapic_phys = rd64(e + 4);
			break;
		default:
			out->entries_skipped++;
			break;
		}
		off += elen;
	}
	return out->ncpus ? ACPI_OK : fail(out, ACPI_ERR_NO_CPUS, out->madt_phys, MADT_FIXED_LEN);
}

/*
 * The PM timer from a FADT at @phys, if that is one and it is whole and checksummed.
 * Optional: a bad FADT only means no PM timer, so it sets no error.
 */
static void parse_fadt(acpi_map_fn map, void *ctx, uint64_t phys, struct acpi_info *out)
{
	const uint8_t *t = map(ctx, phys, SDT_HDR_LEN);
	if (!t || !sig_is(t, "FACP", 4) || out->pm_timer_port)
		return;
	uint32_t len = rd32(t + 4);
	if (len < FADT_MIN_LEN || len > ACPI_MAX_TABLE_LEN || !(t = map(ctx, phys, len)) ||
	    sum(t, len) != 0)
		return;
	uint32_t port = rd32(t + FADT_PM_TMR_BLK);
	if (port == 0 || port > 0xFFFC)
		return;
	out->pm_timer_port = port;
	out->pm_timer_32bit = (rd32(t + FADT_FLAGS) >> 8) & 1;
}

/*
 * The RSDT/XSDT address from the RSDP copy, after checking it, into out->sdt_phys; the
 * RSDT's address (0 if none) also into *rsdt, to fall back on if the XSDT is unusable.
 */
static enum acpi_status check_rsdp(const uint8_t *r, size_t n, struct acpi_info *out,
				   uint64_t *rsdt)
{
	if (!r || n == 0)
		return ACPI_ERR_NO_RSDP;
	if (n < RSDP_V1_LEN)
		return fail(out, ACPI_ERR_RSDP_SHORT, 0, (uint32_t)n);
	if (!sig_is(r, "RSD PTR ", 8))
		return fail(out, ACPI_ERR_RSDP_SIGNATURE, 0, 0);
	if (sum(r, RSDP_V1_LEN) != 0)
		return fail(out, ACPI_ERR_RSDP_CHECKSUM, 0, 8);
	out->rsdp_revision = r[15];
	*rsdt = rd32(r + 16);
	if (r[15] >= 2) {
		if (n < RSDP_V2_LEN)
			return fail(out, ACPI_ERR_RSDP_SHORT, 0, (uint32_t)n);
		uint32_t xlen = rd32(r + 20);
		if (xlen < RSDP_V2_LEN || xlen > n)
			return fail(out, ACPI_ERR_XSDP_LENGTH, 0, 20);
		if (sum(r, xlen) != 0)
			return fail(out, ACPI_ERR_XSDP_CHECKSUM, 0, 32);
		if (rd64(r + 24)) {
			out->xsdt = true;
			out->sdt_phys = rd64(r + 24);
			return ACPI_OK;
		}
	}
	out->sdt_phys = *rsdt;
	return out->sdt_phys ? ACPI_OK : fail(out, ACPI_ERR_NO_SDT, 0, 16);
}

/* The RSDT or XSDT (out->xsdt) at out->sdt_phys, mapped whole, checksummed and signed. */
static const uint8_t *open_sdt(acpi_map_fn map, void *ctx, uint32_t *len, struct acpi_info *out,
			       enum acpi_status *st)
{
	if (!map(ctx, out->sdt_phys, SDT_HDR_LEN)) {
		*st = fail(out, ACPI_ERR_SDT_UNMAPPED, out->sdt_phys, 0);
		return NULL;
	}
	const uint8_t *sdt = map_table(map, ctx, out->sdt_phys, SDT_HDR_LEN, ACPI_ERR_SDT_LENGTH,
				       ACPI_ERR_SDT_CHECKSUM, len, out, st);
	if (sdt && !sig_is(sdt, out->xsdt ? "XSDT" : "RSDT", 4)) {
		*st = fail(out, ACPI_ERR_SDT_SIGNATURE, out->sdt_phys, 0);
		return NULL;
	}
	return sdt;
}

enum acpi_status acpi_parse(const uint8_t *rsdp, size_t rsdp_len, acpi_map_fn map, void *ctx,
			    struct acpi_info *out)
{
	enum acpi_status st;
	uint32_t len;
	uint64_t rsdt;

	reset(out);
	st = check_rsdp(rsdp, rsdp_len, out, &rsdt);
	if (st != ACPI_OK)
		return st;

	const uint8_t *sdt = open_sdt(map, ctx, &len, out, &st);
	if (!sdt && out->xsdt && rsdt) {
		/* Kept for the caller's log: why the preferred table was passed over. */
		out->xsdt_status = st;
		out->xsdt_phys = out->sdt_phys;
		out->xsdt_err_offset = out->err_offset;
		out->xsdt = false;
		out->sdt_phys = rsdt;
		out->err_phys = 0;
		out->err_offset = 0;
		sdt = open_sdt(map, ctx, &len, out, &st);
	}
	if (!sdt)
		return st;

	unsigned width = out->xsdt ? 8 : 4;
	uint32_t entries = (len - SDT_HDR_LEN) / width; /* a partial trailing entry is ignored */
	for (uint32_t i = 0; i < entries; i++) {
		const uint8_t *ep = sdt + SDT_HDR_LEN + i * width;
		uint64_t phys = width == 8 ? rd64(ep) : rd32(ep);
		if (phys)
			parse_fadt(map, ctx, phys, out);
	}
	for (uint32_t i = 0; i < entries; i++) {
		const uint8_t *ep = sdt + SDT_HDR_LEN + i * width;
		uint64_t phys = width == 8 ? rd64(ep) : rd32(ep);
		const uint8_t *hdr = phys ? map(ctx, phys, SDT_HDR_LEN) : NULL;
		if (!hdr || !sig_is(hdr, "APIC", 4))
			continue; /* another table, or one we cannot read: not ours to judge */
		out->madt_phys = phys;
		const uint8_t *madt = map_table(map, ctx, phys, MADT_FIXED_LEN, ACPI_ERR_MADT_LENGTH,
						ACPI_ERR_MADT_CHECKSUM, &len, out, &st);
		if (!madt)
			return st;
		return parse_madt(madt, len, out);
	}
	return fail(out, ACPI_ERR_NO_MADT, out->sdt_phys, 0);
}

uint32_t acpi_isa_irq_gsi(const struct acpi_info *info, unsigned irq, uint16_t *flags)
{
	for (uint32_t i = 0; i < info->noverrides; i++) {
		if (info->overrides[i].bus == 0 && info->overrides[i].source == irq) {
			if (flags)
				*flags = info->overrides[i].flags;
			return info->overrides[i].gsi;
		}
	}
	if (flags)
		*flags = 0;
	return irq;
}

const char *acpi_status_str(enum acpi_status s)
{
	switch (s) {
	case ACPI_OK: return "ok";
	case ACPI_ERR_NO_RSDP: return "no RSDP from the boot loader (no multiboot2 ACPI tag)";
	case ACPI_ERR_RSDP_SHORT: return "RSDP shorter than its revision requires";
	case ACPI_ERR_RSDP_SIGNATURE: return "RSDP signature is not 'RSD PTR '";
	case ACPI_ERR_RSDP_CHECKSUM: return "RSDP checksum (first 20 bytes) does not sum to 0";
	case ACPI_ERR_XSDP_LENGTH: return "XSDP length below 36 or beyond the copy";
	case ACPI_ERR_XSDP_CHECKSUM: return "XSDP extended checksum does not sum to 0";
	case ACPI_ERR_NO_SDT: return "RSDP has neither an RSDT nor an XSDT address";
	case ACPI_ERR_SDT_UNMAPPED: return "RSDT/XSDT is not in readable memory";
	case ACPI_ERR_SDT_SIGNATURE: return "RSDT/XSDT signature mismatch";
	case ACPI_ERR_SDT_LENGTH: return "RSDT/XSDT length below its header, absurd or unmapped";
	case ACPI_ERR_SDT_CHECKSUM: return "RSDT/XSDT checksum does not sum to 0";
	case ACPI_ERR_NO_MADT: return "no MADT ('APIC' table) listed";
	case ACPI_ERR_MADT_LENGTH: return "MADT length below 44 bytes, absurd or unmapped";
	case ACPI_ERR_MADT_CHECKSUM: return "MADT checksum does not sum to 0";
	case ACPI_ERR_MADT_ENTRY_LENGTH: return "MADT entry length zero or below its type's size";
	case ACPI_ERR_MADT_ENTRY_OVERRUN: return "MADT entry runs past the end of the table";
	case ACPI_ERR_NO_CPUS: return "MADT lists no enabled or online-capable local APIC";
	case ACPI_STATUS_COUNT: break;
	}
	return "unknown status";
}

/*
 * port_minimal.c - the port an embedding kernel would have, for the benchmark only: what
 * mm/ costs with hooks that do the least their contracts allow (make bench-ir builds
 * bench.c with it instead of tests/host/port_host.c, same mm/ sources, same flags).
 *
 * The hooks on the common path are in port_minimal_hooks.h (linked, or inline with
 * LMM_PORT_INLINE_HEADER); here the rest: reports and log lines counted, not kept or
 * printed.  Also the few host_* arena helpers bench.c calls (port_host.h).
 * Single-threaded use only: every thread is CPU 0 unless it says otherwise.
 */
#define _GNU_SOURCE
#include "port_host.h"
#include "port_minimal_hooks.h" /* hooks 2-6, 8, 9: linked here, or inline in mm/ */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

/* ---- Arena: one mapping standing for physical [0, bytes) ---------------------------------- */

static uintptr_t arena_base;
static uint64_t arena_bytes;

void *host_arena_map(uint64_t bytes)
{
	host_arena_unmap();
	void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("port_minimal: mmap");
		abort();
	}
	arena_base = (uintptr_t)p;
	arena_bytes = bytes;
	return p;
}

void host_arena_unmap(void)
{
	if (arena_bytes)
		munmap((void *)arena_base, (size_t)arena_bytes);
	arena_bytes = 0;
}

void host_arena_touch(uint64_t phys, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 4096)
		*(volatile char *)(arena_base + (uintptr_t)(phys + off)) = 0;
}

void *lmm_port_phys_to_virt(uint64_t phys)
{
	return (void *)(arena_base + (uintptr_t)phys);
}

/* ---- Locks and interrupts ---------------------------------------------------------------- */

MINPORT_TLS unsigned minport_irq_off, minport_in_irq, minport_cpu;
MINPORT_TLS uint16_t minport_owner = 1;

void lmm_port_lock_init(lmm_port_lock_t *l, const char *name)
{
	(void)name;
	((struct tas_lock *)l->opaque)->locked = 0;
}

/* ---- Reporting: counted only ------------------------------------------------------------------ */

static uint64_t nreports, nlog;

void lmm_port_report(const struct lmm_report *r)
{
	(void)r;
	nreports++;
}

void lmm_port_log(const char *line)
{
	(void)line;
	nlog++;
}

uint64_t host_log_count(void)
{
	return nlog;
}

const char *host_log_last(void)
{
	return "(the minimal port counts log lines and keeps none)";
}

uint64_t host_report_count(void)
{
	return nreports;
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	fprintf(stderr, "lmm fatal: %s\n", reason);
	abort();
}

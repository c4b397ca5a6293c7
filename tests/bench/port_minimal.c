/*
 * port_minimal.c - the port an embedding kernel would have, for the benchmark only: what
 * mm/ costs with hooks that do the least their contracts allow (make bench-ir builds
 * bench.c with it instead of tests/host/port_host.c, same mm/ sources, same flags).
 *
 * A test-and-set lock; interrupt save/restore as a plain per-thread flag (the host has no
 * interrupts to mask: a kernel's pushf/cli/popf is a few instructions more); the CPU
 * index, the context and the owner from thread-locals; reports and log lines counted,
 * not kept or printed.  Also the few host_* arena helpers bench.c calls (port_host.h).
 * Single-threaded use only: every thread is CPU 0 unless it says otherwise.
 */
#define _GNU_SOURCE
#include "port_host.h"

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

struct tas_lock {
	unsigned locked;
};
_Static_assert(sizeof(struct tas_lock) <= LMM_PORT_LOCK_BYTES, "lock too big");

static __thread unsigned irq_off;
static __thread unsigned in_irq;
static __thread unsigned this_cpu;
static __thread uint16_t owner = 1;

void lmm_port_lock_init(lmm_port_lock_t *l, const char *name)
{
	(void)name;
	((struct tas_lock *)l->opaque)->locked = 0;
}

lmm_irqflags_t lmm_port_irq_save(void)
{
	lmm_irqflags_t was = irq_off;
	irq_off = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return was;
}

void lmm_port_irq_restore(lmm_irqflags_t flags)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	irq_off = (unsigned)flags;
}

lmm_irqflags_t lmm_port_lock_irqsave(lmm_port_lock_t *l)
{
	struct tas_lock *t = (struct tas_lock *)l->opaque;
	lmm_irqflags_t flags = lmm_port_irq_save();
	while (__atomic_exchange_n(&t->locked, 1u, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&t->locked, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
	return flags;
}

void lmm_port_unlock_irqrestore(lmm_port_lock_t *l, lmm_irqflags_t flags)
{
	__atomic_store_n(&((struct tas_lock *)l->opaque)->locked, 0u, __ATOMIC_RELEASE);
	lmm_port_irq_restore(flags);
}

unsigned lmm_port_cpu_id(void)
{
	return this_cpu;
}

enum lmm_context lmm_port_context(void)
{
	return in_irq ? LMM_CTX_INTERRUPT : irq_off ? LMM_CTX_IRQS_OFF : LMM_CTX_NORMAL;
}

uint16_t lmm_port_owner(void)
{
	return owner;
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

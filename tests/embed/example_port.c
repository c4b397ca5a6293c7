/*
 * example_port.c - mm/'s twelve hooks for the pretend kernel of example.h, a uniprocessor
 * (LMM_PORT_MAX_CPUS 1), following section 2 of mm/README.md: a tiny test-and-set lock
 * that also saves and restores the interrupt flag, a console that keeps the last lines
 * (refusal reports are formatted into it too), the direct map over a static array.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"
#include "example_hooks.h" /* hooks 2-6, 8, 9: linked here, or inline in mm/ */

_Alignas(4096) unsigned char ram[RAM_SIZE];

/* ---- The pretend CPU ------------------------------------------------------------------- */

/* Not static: the hooks in example_hooks.h read them, inline in mm/ in one build. */
int irqs_on = 1;   /* the interrupt flag                       */
int irq_depth;     /* kept by the "interrupt entry stub"       */
uint16_t task = 1; /* the task running when no handler is      */

uintptr_t cpu_irq_save(void)
{
	uintptr_t was = (uintptr_t)irqs_on;
	irqs_on = 0;
	return was;
}

void cpu_irq_restore(uintptr_t state)
{
	irqs_on = (int)state;
}

int cpu_irqs_enabled(void)
{
	return irqs_on;
}

void cpu_enter_interrupt(void)
{
	irq_depth++;
	irqs_on = 0;
}

void cpu_leave_interrupt(void)
{
	if (--irq_depth == 0)
		irqs_on = 1;
}

void set_current_task(uint16_t t)
{
	task = t;
}

uint16_t current_task(void)
{
	return task;
}

/* ---- The console ---------------------------------------------------------------------- */

#define KEEP 32
static char lines[KEEP][200];
static unsigned nlines, reports;

unsigned console_lines(void)
{
	return nlines;
}

const char *console_last(void)
{
	return nlines ? lines[(nlines - 1) % KEEP] : "";
}

int console_saw(const char *needle)
{
	for (unsigned i = nlines > KEEP ? nlines - KEEP : 0; i < nlines; i++)
		if (strstr(lines[i % KEEP], needle))
			return 1;
	return 0;
}

/* ---- The hooks ----------------------------------------------------------------------------- */

/* Hooks 1, 7 and 10-12; the seven on the common path are in example_hooks.h. */

void lmm_port_lock_init(lmm_port_lock_t *lock, const char *name)
{
	struct my_lock *l = my_lock(lock);
	atomic_flag_clear(&l->held);
	l->name = name;
}

void *lmm_port_phys_to_virt(uint64_t phys)
{
	if (phys >= RAM_SIZE)
		lmm_port_fatal("phys_to_virt: address outside RAM");
	return ram + phys;
}


void lmm_port_log(const char *line)
{
	snprintf(lines[nlines % KEEP], sizeof(lines[0]), "%s", line);
	nlines++;
	if (getenv("EXAMPLE_VERBOSE"))
		printf("  | %s\n", line);
}

/* Refusals: one line each, made by mm/'s own formatter (this console takes no lock). */
void lmm_port_report(const struct lmm_report *r)
{
	char line[224];
	lmm_report_format(r, line, sizeof(line));
	lmm_port_log(line);
	reports++;
}

unsigned console_reports(void)
{
	return reports;
}

_Noreturn void lmm_port_fatal(const char *reason)
{
	printf("FAIL embed-fatal: mm/ reported corruption: %s\n", reason);
	fflush(stdout);
	abort();
}

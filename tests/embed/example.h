/*
 * example.h - the example port of mm/: a pretend kernel written only from mm/README.md,
 * as someone adopting mm/ would write it.  A static array stands for RAM, a flag for
 * the CPU's interrupt state, a counter for "inside an interrupt handler".
 */
#ifndef EXAMPLE_H
#define EXAMPLE_H

#include <labyrinth/mm.h>

/* Physical memory [0, RAM_SIZE): the direct map is simply ram + phys. */
#define RAM_SIZE (8u << 20)
extern unsigned char ram[RAM_SIZE];

/* The pretend CPU: interrupt flag, handler nesting, current task. */
uintptr_t cpu_irq_save(void);
void cpu_irq_restore(uintptr_t state);
int cpu_irqs_enabled(void);
void cpu_enter_interrupt(void); /* what the interrupt entry stub would do */
void cpu_leave_interrupt(void);
void set_current_task(uint16_t task);
uint16_t current_task(void);

/* The console: lines mm/ logged, kept for inspection. */
unsigned console_lines(void);
const char *console_last(void);
int console_saw(const char *needle); /* in any of the last 32 lines */
unsigned console_reports(void);      /* lmm_port_report() calls so far */

#endif

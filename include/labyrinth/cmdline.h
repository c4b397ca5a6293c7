/*
 * cmdline.h - the kernel command line: `key=value` options, table driven.
 *
 * Every option the kernel understands is one row of a table (kernel/options.c);
 * unknown keys, missing values and malformed or out-of-range values are reported
 * through a callback, never silently ignored.  The parser itself is freestanding and
 * host-testable (kernel/cmdline.c).
 */
#ifndef LABYRINTH_CMDLINE_H
#define LABYRINTH_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kopt_type {
	KOPT_U64,    /* decimal or 0x-hex, checked against [min, max]; dst is uint64_t *   */
	KOPT_STRING, /* copied into a char[max] buffer (max includes the NUL); dst is char * */
	KOPT_BOOL,   /* 0/1/yes/no/on/off/true/false, or a bare key meaning true; dst is bool * */
};

struct kopt {
	const char *key;
	enum kopt_type type;
	void *dst;
	uint64_t min, max;
	const char *help;
	const char *choices; /* KOPT_STRING only: "a|b|c" = the value must be one of these */
};

/*
 * Parse @cmdline (NUL-terminated, whitespace-separated `key=value` words) against the
 * @n options in @table, storing values in their dst.  Each problem is passed to
 * @report as one human-readable line naming the word.  Returns the number of problems
 * (0 = everything understood).  A bad value leaves the option's previous value.
 */
unsigned cmdline_parse(const char *cmdline, const struct kopt *table, size_t n,
		       void (*report)(const char *line));

/* The kernel's options, with their defaults before parsing. */
struct kernel_options {
	char fault[16];          /* deliberate fault: "" | pagefault | ud | divide | gpf | doublefault */
	uint64_t fault_cpu;      /* the CPU that raises it (0 = the boot CPU, before mm/ init) */
	uint64_t smp_absent_apic;/* an APIC id to try to start after the MADT's (tests the timeout) */
	char mode[16];           /* what to run after boot: demo (default) | test | stress | bench | idle */
	uint64_t pit_hz;         /* PIT channel 0 rate, default 1000, 18..20000             */
	uint64_t stress_seconds; /* stress test duration, default 3                          */
	uint64_t stress_ticks;   /* if non-zero, run this many ticks instead of seconds       */
	uint64_t seed;           /* PRNG seed for tests, default 1                           */
	uint64_t pool_pages;     /* emergency pool target, 0 = scaled to RAM                  */
	uint64_t pool_low;       /* pool low mark, 0 = half the target                        */
	uint64_t atomic_per_tick;/* atomic allocations per timer tick, default 4              */
	bool mm_poison;          /* fill freed pages with a pattern, check it on allocation   */
	bool mm_holders;         /* record who holds each block; list the top call sites     */
	bool mm_map;             /* memory map in ANSI colour (default) or, if false, letters  */
	bool help;               /* `help` on the command line: print the option table       */
};

extern struct kernel_options kopts;

/* Parse the boot command line into kopts, printing each problem; returns problem count. */
unsigned kernel_options_parse(const char *cmdline);

/* Print every option with its current value, range and help text.  Normal context. */
void kernel_options_help(void);

#endif /* LABYRINTH_CMDLINE_H */

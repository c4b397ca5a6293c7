/*
 * fuzz_cmdline.c - libFuzzer target for cmdline_parse(): the input is a kernel command
 * line (any bytes; the first NUL ends it, as it would in the multiboot2 tag).
 *
 * Beyond "no out-of-bounds access" (ASan), the parser's promises are checked: every
 * value it stores is one the table allows, strings stay NUL-terminated inside their
 * buffers, each problem is reported exactly once as one bounded line, and a problem
 * leaves the previous value in place.  The table has one option of every type and
 * limit shape, like tests/host/test_kernel_cmdline.c's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <labyrinth/cmdline.h>

#define PROMISE(cond, what)                                                           \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_cmdline: broken promise: %s\n", what);  \
			abort();                                                      \
		}                                                                     \
	} while (0)

#include "cmdline_table.h"

static unsigned nreports;

static void report(const char *line)
{
	/* A report is one line: bounded, and no newline inside it. */
	size_t n = strnlen(line, 4096);
	PROMISE(n < 4096, "report line unbounded");
	PROMISE(memchr(line, '\n', n) == NULL, "report line contains a newline");
	nreports++;
}

static bool is_choice(const char *v, const char *choices)
{
	size_t n = strlen(v);
	for (const char *c = choices;;) {
		const char *bar = strchr(c, '|');
		size_t len = bar ? (size_t)(bar - c) : strlen(c);
		if (len == n && memcmp(c, v, n) == 0)
			return true;
		if (!bar)
			return false;
		c = bar + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';

	table_defaults();
	nreports = 0;

	unsigned problems = cmdline_parse(s, table, NT, report);
	PROMISE(problems == nreports, "problem count differs from the lines reported");
	PROMISE(hz >= 18 && hz <= 20000, "pit_hz outside [18, 20000]");
	PROMISE(small == 5, "small outside [5, 5]");
	PROMISE(memchr(mode, '\0', sizeof(mode)) != NULL, "mode not NUL-terminated");
	PROMISE(is_choice(mode, "demo|test|bench"), "mode not one of its choices");
	PROMISE(memchr(name, '\0', sizeof(name)) != NULL, "name not NUL-terminated");

	/* Without a report hook the same line gives the same count (nothing depends on it). */
	hz = 1000;
	small = 5;
	strcpy(mode, "demo");
	PROMISE(cmdline_parse(s, table, NT, NULL) == problems, "count depends on the report hook");
	free(s);
	return 0;
}

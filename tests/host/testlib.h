/*
 * testlib.h - a tiny named-case runner for host tests: each case prints one line,
 * "PASS name" or "FAIL name: where: why" (first failed expectation), and
 * testlib_exit() makes the program's status non-zero if any case failed.
 *
 *   static void parses_empty(void) { CHECK(f("") == 0, "got %d", f("")); }
 *   int main(void) { TEST(parses_empty); return testlib_exit(); }
 */
#ifndef LABYRINTH_TESTLIB_H
#define LABYRINTH_TESTLIB_H

#include <stdarg.h>
#include <stdio.h>

static int testlib_passed, testlib_failed;
static int testlib_case_failed;
static char testlib_why[512];

static inline __attribute__((format(printf, 3, 4))) void
testlib_fail(const char *file, int line, const char *fmt, ...)
{
	if (!testlib_case_failed) {
		va_list ap;
		int n = snprintf(testlib_why, sizeof(testlib_why), "%s:%d: ", file, line);
		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof(testlib_why))
			vsnprintf(testlib_why + n, sizeof(testlib_why) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	testlib_case_failed = 1;
}

/* Record a failed expectation (the first one in a case is the one reported). */
#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond))                                                               \
			testlib_fail(__FILE__, __LINE__, __VA_ARGS__);                     \
	} while (0)

/* As CHECK, and leave the case at once on failure. */
#define ASSERT(cond, ...)                                                                  \
	do {                                                                               \
		CHECK(cond, __VA_ARGS__);                                                  \
		if (testlib_case_failed)                                                   \
			return;                                                            \
	} while (0)

static inline void testlib_run(const char *name, void (*fn)(void))
{
	testlib_case_failed = 0;
	testlib_why[0] = '\0';
	fn();
	if (testlib_case_failed) {
		testlib_failed++;
		printf("FAIL %s: %s\n", name, testlib_why);
	} else {
		testlib_passed++;
		printf("PASS %s\n", name);
	}
	fflush(stdout);
}

#define TEST(fn) testlib_run(#fn, fn)

/* Summary on stderr (not a PASS/FAIL line); returns the process exit status. */
static inline int testlib_exit(void)
{
	fprintf(stderr, "%d cases passed, %d failed\n", testlib_passed, testlib_failed);
	return testlib_failed ? 1 : 0;
}

#endif /* LABYRINTH_TESTLIB_H */

/*
 * ktest.h - in-kernel tests, reported on serial in KTAP (as Linux's KUnit does):
 *
 *   KTAP version 1
 *   1..N
 *   # diagnostic lines
 *   ok 1 name
 *   not ok 2 name # reason
 *
 * The plan line comes first, so a test that never ran (a hang, a fault) shows up as a
 * missing result line to the harness reading the serial log.
 */
#ifndef LABYRINTH_KTEST_H
#define LABYRINTH_KTEST_H

#include <stdbool.h>
#include <stddef.h>

struct ktest_ctx {
	bool failed;
	char reason[160];
};

struct ktest {
	const char *name;
	void (*run)(struct ktest_ctx *t);
};

/* Mark the running test failed; the first reason is kept for its result line. */
void ktest_fail(struct ktest_ctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Inside a test function, whose context parameter is always named t. */
#define KT_EXPECT(cond, ...)                                                             \
	do {                                                                             \
		if (!(cond))                                                             \
			ktest_fail(t, __VA_ARGS__);                                      \
	} while (0)

/* Run @n tests in order as one KTAP suite named @suite; returns the number that failed. */
unsigned ktest_run(const char *suite, const struct ktest *tests, size_t n);

#endif /* LABYRINTH_KTEST_H */

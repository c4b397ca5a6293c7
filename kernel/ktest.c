/*
 * ktest.c - the KTAP runner for in-kernel tests (see <labyrinth/ktest.h>).
 */
#include <stdarg.h>

#include <labyrinth/kprintf.h>
#include <labyrinth/ktest.h>

void ktest_fail(struct ktest_ctx *t, const char *fmt, ...)
{
	char line[160];
	va_list ap;

	va_start(ap, fmt);
	kvsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	kprintf("# %s\n", line);
	if (!t->failed)
		ksnprintf(t->reason, sizeof(t->reason), "%s", line);
	t->failed = true;
}

unsigned ktest_run(const char *suite, const struct ktest *tests, size_t n)
{
	unsigned failed = 0;

	kprintf("KTAP version 1\n");
	kprintf("# suite: %s\n", suite);
	kprintf("1..%lu\n", (unsigned long)n);
	for (size_t i = 0; i < n; i++) {
		struct ktest_ctx t = { false, "" };
		tests[i].run(&t);
		if (t.failed) {
			failed++;
			kprintf("not ok %lu %s # %s\n", (unsigned long)(i + 1), tests[i].name, t.reason);
		} else {
			kprintf("ok %lu %s\n", (unsigned long)(i + 1), tests[i].name);
		}
	}
	kprintf("# %s: %lu passed, %u failed\n", suite, (unsigned long)(n - failed), failed);
	return failed;
}

/*
 * panic.h - the kernel's way to stop on an unrecoverable error.
 *
 * kpanic() prints "PANIC: <message>" with the caller's return address, then exits QEMU
 * with failure (status 35) or halts.  Any context; it never takes the console lock
 * from a CPU that might hold it.  Implemented in kernel/panic.c.
 */
#ifndef LABYRINTH_PANIC_H
#define LABYRINTH_PANIC_H

_Noreturn void kpanic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Panic with the failed condition, file and line when @cond is false. */
#define KASSERT(cond)                                                                     \
	do {                                                                              \
		if (!(cond))                                                              \
			kpanic("assertion failed: %s at %s:%d", #cond, __FILE__, __LINE__); \
	} while (0)

#endif /* LABYRINTH_PANIC_H */

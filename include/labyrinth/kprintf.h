/*
 * kprintf.h - formatted output to the serial console and into buffers.
 *
 * Conversions: d i u x X o p s c %, with flags '-' '0' '+' ' ' '#', a width and a
 * precision (digits or '*'), and length modifiers hh h l ll z t j.  %p prints 0x and
 * 16 hex digits.  Implemented in arch/x86_64/kprintf.c over the COM1 driver.
 */
#ifndef LABYRINTH_KPRINTF_H
#define LABYRINTH_KPRINTF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Print to the console; returns the number of characters written.  Any context, any
 * CPU, interrupt handlers included.  Output is collected per CPU and context and
 * written a whole line at a time under a lock with interrupts saved, so lines never
 * interleave mid-line (a line without its '\n' yet waits for the rest).  A CPU that
 * re-enters kprintf while holding that lock (an exception inside kprintf), or that
 * owns a panic, prints without it rather than deadlock.
 */
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * Format into @buf (at most @size bytes including the NUL, always terminated when
 * size > 0).  Returns the length the full output would have had, like snprintf.
 * Any context; takes no lock.
 */
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/*
 * Print without taking the console lock: for fatal paths only (panic, a lock report),
 * where the lock's holder may never release it.  Lines may interleave.
 */
int kprintf_emergency(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* LABYRINTH_KPRINTF_H */

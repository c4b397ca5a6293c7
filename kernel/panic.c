/*
 * panic.c - stop the machine with a message: the end of every unrecoverable error.
 */
#include <stdarg.h>

#include <labyrinth/arch.h>
#include <labyrinth/kprintf.h>
#include <labyrinth/panic.h>

_Noreturn void kpanic(const char *fmt, ...)
{
	va_list ap;

	/* Interrupts off first: nothing else may run on this CPU once we decided to stop. */
	(void)arch_irq_save();
	kprintf("\nPANIC: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n  (called from %p, cpu %u, interrupt depth %u)\n", __builtin_return_address(0),
		arch_cpu_id(), arch_in_interrupt());
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

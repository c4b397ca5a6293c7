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
	/*
	 * Then the other CPUs: the first CPU to panic owns the end of the run (and prints
	 * without the console lock, which a stopped CPU may hold); a second one halts.
	 */
	if (!arch_claim_panic())
		arch_stopped_here();
	arch_stop_other_cpus();
	kprintf("\nPANIC: ");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n  (called from %p, cpu %u, interrupt depth %u; other cpus stopped: %u of %u)\n",
		__builtin_return_address(0), arch_cpu_id(), arch_in_interrupt(), arch_cpus_stopped(),
		arch_cpus_online() - 1);
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

/*
 * pit.c - the 8253/8254 programmable interval timer, channel 0 on IRQ 0.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_INPUT_HZ 1193182u
/* channel 0, lobyte/hibyte access, mode 2 (rate generator), binary */
#define PIT_CMD_CH0_RATE 0x34

uint64_t arch_pit_init(uint32_t hz)
{
	uint32_t divisor;

	if (hz == 0)
		hz = 1;
	/* round to nearest; the 16-bit counter reads 0 as 65536 */
	divisor = (PIT_INPUT_HZ + hz / 2) / hz;
	if (divisor < 1)
		divisor = 1;
	if (divisor > 65536)
		divisor = 65536;

	arch_irqflags_t flags = arch_irq_save();
	outb(PIT_CMD, PIT_CMD_CH0_RATE);
	outb(PIT_CH0, divisor & 0xFF);
	outb(PIT_CH0, (divisor >> 8) & 0xFF);
	arch_irq_restore(flags);

	uint64_t actual_mhz = ((uint64_t)PIT_INPUT_HZ * 1000 + divisor / 2) / divisor;
	kprintf("pit: requested %u Hz, divisor %u, actual %lu.%03lu Hz\n", hz, divisor,
		actual_mhz / 1000, actual_mhz % 1000);
	return actual_mhz;
}

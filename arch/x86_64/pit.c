/*
 * pit.c - the 8253/8254 programmable interval timer: channel 0 drives IRQ 0, channel 2
 * (the speaker channel, gated through port 0x61, no interrupt) times the TSC.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_INPUT_HZ 1193182u
/* channel 0, lobyte/hibyte access, mode 2 (rate generator), binary */
#define PIT_CMD_CH0_RATE 0x34
/* channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count: OUT2 rises at 0) */
#define PIT_CMD_CH2_ONESHOT 0xB0
#define PIT_CH2 0x42
#define PORT_61 0x61
#define PORT_61_GATE2 0x01
#define PORT_61_SPEAKER 0x02
#define PORT_61_OUT2 0x20
#define CALIBRATE_MS 10
/* OUT2 never rising (no PIT) must not hang the boot: give up after this many polls. */
#define CALIBRATE_POLL_LIMIT 50000000u

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

/*
 * Run one one-shot of channel 2 of @latch input ticks (< 65536) and return when OUT2 rises;
 * false if it never does (no PIT).  @t0 / @t1 (may be NULL) receive the TSC at the start
 * and at the end, so a caller can time the same interval.
 */
static bool ch2_oneshot(uint32_t latch, uint64_t *t0, uint64_t *t1)
{
	uint8_t saved = inb(PORT_61);

	outb(PORT_61, (saved & ~PORT_61_SPEAKER) | PORT_61_GATE2);
	outb(PIT_CMD, PIT_CMD_CH2_ONESHOT);
	outb(PIT_CH2, latch & 0xFF);
	outb(PIT_CH2, latch >> 8);

	uint64_t start = rdtsc();
	uint32_t polls = 0;
	while (!(inb(PORT_61) & PORT_61_OUT2))
		if (++polls == CALIBRATE_POLL_LIMIT)
			break;
	uint64_t end = rdtsc();

	outb(PORT_61, saved);
	if (t0)
		*t0 = start;
	if (t1)
		*t1 = end;
	return polls != CALIBRATE_POLL_LIMIT;
}

/* Count TSC cycles across one CALIBRATE_MS one-shot of channel 2; 0 if it never ends. */
static uint64_t calibrate_tsc(void)
{
	uint64_t t0, t1;

	if (!ch2_oneshot(PIT_INPUT_HZ / (1000 / CALIBRATE_MS), &t0, &t1))
		return 0;
	return (t1 - t0) * (1000 / CALIBRATE_MS);
}

void pit_wait_us(uint32_t us)
{
	/* 50 ms slices: 59659 input ticks, inside the 16-bit counter. */
	while (us) {
		uint32_t slice = us > 50000 ? 50000 : us;
		uint32_t latch = (uint32_t)(((uint64_t)slice * PIT_INPUT_HZ + 999999) / 1000000);
		if (!ch2_oneshot(latch ? latch : 1, NULL, NULL))
			return;
		us -= slice;
	}
}

/* The ACPI PM timer: port and width from the FADT, set once at boot; read-only after. */
static uint16_t pm_port;
static uint32_t pm_mask;

void arch_pm_timer_init(uint32_t port, bool bits32)
{
	if (port == 0 || port > 0xFFFC)
		return;
	pm_port = (uint16_t)port;
	pm_mask = bits32 ? 0xFFFFFFFFu : 0x00FFFFFFu;
}

uint32_t arch_pm_timer_mask(void)
{
	return pm_mask;
}

uint32_t arch_pm_timer_read(void)
{
	return pm_port ? inl(pm_port) & pm_mask : 0;
}

uint64_t arch_tsc_hz(void)
{
	static uint64_t tsc_hz; /* written once, at the first call during boot */

	if (!tsc_hz) {
		arch_irqflags_t flags = arch_irq_save();
		tsc_hz = calibrate_tsc();
		arch_irq_restore(flags);
	}
	return tsc_hz;
}

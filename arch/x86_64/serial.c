/*
 * serial.c - COM1, a 16550 UART at 115200 8N1, polled: the kernel's console.
 *
 * No interrupts and no buffering, so output survives any crash that leaves the CPU
 * running.  Locking is the caller's business (kprintf).
 */
#include <labyrinth/arch.h>

#define COM1 0x3F8
#define UART_DATA 0      /* DLAB=0: transmit holding / receive buffer */
#define UART_IER 1       /* DLAB=0: interrupt enable                  */
#define UART_DLL 0       /* DLAB=1: divisor low                       */
#define UART_DLM 1       /* DLAB=1: divisor high                      */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LCR_8N1 0x03
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20
#define UART_BASE_HZ 115200

/* A wedged or absent UART must not hang the kernel: give up on a byte after this. */
#define UART_TX_SPIN_LIMIT 1000000

void arch_serial_init(void)
{
	uint16_t divisor = UART_BASE_HZ / 115200;

	outb(COM1 + UART_IER, 0x00);          /* polled: no UART interrupts */
	outb(COM1 + UART_LCR, UART_LCR_DLAB);
	outb(COM1 + UART_DLL, divisor & 0xff);
	outb(COM1 + UART_DLM, divisor >> 8);
	outb(COM1 + UART_LCR, UART_LCR_8N1);
	outb(COM1 + UART_FCR, 0xC7);          /* enable + clear FIFOs, 14-byte threshold */
	outb(COM1 + UART_MCR, 0x03);          /* DTR + RTS; OUT2 stays off: no IRQ 4 */
}

static void serial_putc(char c)
{
	for (unsigned spins = 0; spins < UART_TX_SPIN_LIMIT; spins++) {
		if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
			break;
		cpu_pause();
	}
	outb(COM1 + UART_DATA, (uint8_t)c);
}

void arch_serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			serial_putc('\r');
		serial_putc(s[i]);
	}
}

/*
 * pic.c - the two cascaded 8259 PICs: remapped to vectors 32..47, masked, EOI.
 *
 * Remapping moves the legacy IRQs off the CPU exception vectors they default to.
 * Spurious interrupts: when a request vanishes before the CPU acknowledges it, the PIC
 * still delivers its lowest-priority line (7 on the master, 15 on the slave) with the
 * in-service bit clear.  Those get no EOI from their own PIC (there is nothing in
 * service to end) - but a spurious IRQ 15 did pass through the master's cascade line,
 * which does need its EOI.
 */
#include "internal.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1

#define ICW1_INIT 0x11   /* init, cascade mode, ICW4 follows */
#define ICW4_8086 0x01
#define OCW2_EOI 0x20
#define OCW3_READ_ISR 0x0B
#define PIC_CASCADE_IRQ 2

static uint16_t mask_cache = 0xFFFF; /* bit n set: line n masked */

static void write_masks(void)
{
	outb(PIC1_DATA, mask_cache & 0xFF);
	outb(PIC2_DATA, mask_cache >> 8);
}

void pic_init(void)
{
	outb(PIC1_CMD, ICW1_INIT); io_wait();
	outb(PIC2_CMD, ICW1_INIT); io_wait();
	outb(PIC1_DATA, ARCH_IRQ_BASE); io_wait();      /* master: vectors 32..39 */
	outb(PIC2_DATA, ARCH_IRQ_BASE + 8); io_wait();  /* slave: vectors 40..47  */
	outb(PIC1_DATA, 1u << PIC_CASCADE_IRQ); io_wait(); /* slave on line 2 */
	outb(PIC2_DATA, PIC_CASCADE_IRQ); io_wait();       /* slave's cascade id */
	outb(PIC1_DATA, ICW4_8086); io_wait();
	outb(PIC2_DATA, ICW4_8086); io_wait();
	mask_cache = 0xFFFF;
	write_masks();
}

/* Caller keeps interrupts off: mask_cache is read-modify-written. */
void pic_set_mask(unsigned irq, bool masked)
{
	if (masked)
		mask_cache |= (uint16_t)(1u << irq);
	else
		mask_cache &= (uint16_t)~(1u << irq);
	/* a slave line can only be delivered while the cascade line is open */
	if (irq >= 8 && !masked)
		mask_cache &= (uint16_t)~(1u << PIC_CASCADE_IRQ);
	write_masks();
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, OCW2_EOI);
	outb(PIC1_CMD, OCW2_EOI);
}

static uint8_t read_isr(uint16_t cmd_port)
{
	outb(cmd_port, OCW3_READ_ISR);
	return inb(cmd_port);
}

/*
 * True when @irq (7 or 15) is spurious; also sends the one EOI a spurious IRQ 15
 * needs, so the caller sends none for a spurious line.
 */
bool pic_irq_is_spurious(unsigned irq)
{
	if (irq == 7)
		return !(read_isr(PIC1_CMD) & 0x80);
	if (irq == 15 && !(read_isr(PIC2_CMD) & 0x80)) {
		outb(PIC1_CMD, OCW2_EOI);
		return true;
	}
	return false;
}

/*
 * idt.c - the IDT and the exception handler: every CPU exception is fatal for now.
 *
 * Vectors 0..31 print the vector and its name, the error code (decoded for #PF), the
 * interrupted context, the control registers and every general register, then exit
 * QEMU with failure (status 35).  Vectors 32..47 go to arch_irq_dispatch (irq.c).
 * All gates are interrupt gates, so handlers start with IF=0 and cannot be re-entered
 * by an interrupt; only another exception can nest, and that is caught below.
 */
#include <labyrinth/kprintf.h>

#include "internal.h"

struct __attribute__((packed)) idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate layout");

#define IDT_ENTRIES 256
#define GATE_INTERRUPT 0x8E /* present, DPL 0, 64-bit interrupt gate (clears IF) */

static struct idt_gate idt[IDT_ENTRIES];

static const char *const exception_names[32] = {
	"#DE divide error",
	"#DB debug",
	"NMI",
	"#BP breakpoint",
	"#OF overflow",
	"#BR bound range exceeded",
	"#UD invalid opcode",
	"#NM device not available",
	"#DF double fault",
	"coprocessor segment overrun",
	"#TS invalid TSS",
	"#NP segment not present",
	"#SS stack-segment fault",
	"#GP general protection fault",
	"#PF page fault",
	"reserved (15)",
	"#MF x87 floating-point error",
	"#AC alignment check",
	"#MC machine check",
	"#XM SIMD floating-point exception",
	"#VE virtualization exception",
	"#CP control protection exception",
	"reserved (22)",
	"reserved (23)",
	"reserved (24)",
	"reserved (25)",
	"reserved (26)",
	"reserved (27)",
	"#HV hypervisor injection",
	"#VC VMM communication",
	"#SX security exception",
	"reserved (31)",
};

static void set_gate(unsigned vector, uint64_t handler, unsigned ist)
{
	idt[vector] = (struct idt_gate){
		.offset_lo = handler & 0xFFFF,
		.selector = GDT_KERNEL_CODE,
		.ist = ist & 7,
		.type_attr = GATE_INTERRUPT,
		.offset_mid = (handler >> 16) & 0xFFFF,
		.offset_hi = handler >> 32,
	};
}

void idt_init(void)
{
	for (unsigned v = 0; v < ISR_STUB_COUNT; v++)
		set_gate(v, isr_stub_table[v], 0);
	set_gate(8, isr_stub_table[8], IST_DOUBLE_FAULT);
	set_gate(2, isr_stub_table[2], IST_NMI);
	for (unsigned i = 0; i < LAPIC_STUB_COUNT; i++)
		set_gate(lapic_stub_vectors[i], lapic_stub_table[i], 0);
	/* Other vectors stay not-present: raising one is a #GP naming the vector. */
	idt_load();
}

/* One IDT for every CPU: it is never changed after idt_init(). */
void idt_load(void)
{
	struct x86_desc_ptr p = { sizeof(idt) - 1, (uint64_t)idt };
	lidt(&p);
}

static void dump_page_fault(uint64_t err, uint64_t cr2)
{
	kprintf("  page fault at 0x%016lx: %s, %s access, %s mode%s%s%s\n", cr2,
		(err & 1) ? "protection violation" : "page not present",
		(err & 2) ? "write" : "read", (err & 4) ? "user" : "kernel",
		(err & 8) ? ", reserved bit set" : "", (err & 16) ? ", instruction fetch" : "",
		(err & 32) ? ", protection key" : "");
}

static void hint_stack_overflow(uint64_t cr2)
{
	if (cr2 >= (uint64_t)__stack_guard_start && cr2 < (uint64_t)__stack_guard_end)
		kprintf("  CR2 is in the boot stack's guard page: kernel stack overflow\n");
}

static void dump_selector_error(uint64_t err)
{
	static const char *const tables[4] = { "GDT", "IDT", "LDT", "IDT" };

	if (err)
		kprintf("  selector error: %s index %lu%s\n", tables[(err >> 1) & 3],
			(err >> 3) & 0x1FFF, (err & 1) ? ", external event" : "");
}

static void dump_regs(const struct arch_regs *r)
{
	kprintf("  RIP=%016lx CS=%04lx RFLAGS=%016lx\n", r->rip, r->cs, r->rflags);
	kprintf("  RSP=%016lx SS=%04lx\n", r->rsp, r->ss);
	kprintf("  CR0=%016lx CR2=%016lx CR3=%016lx CR4=%016lx\n", read_cr0(), read_cr2(),
		read_cr3(), read_cr4());
	kprintf("  RAX=%016lx RBX=%016lx RCX=%016lx RDX=%016lx\n", r->rax, r->rbx, r->rcx, r->rdx);
	kprintf("  RSI=%016lx RDI=%016lx RBP=%016lx\n", r->rsi, r->rdi, r->rbp);
	kprintf("  R8 =%016lx R9 =%016lx R10=%016lx R11=%016lx\n", r->r8, r->r9, r->r10, r->r11);
	kprintf("  R12=%016lx R13=%016lx R14=%016lx R15=%016lx\n", r->r12, r->r13, r->r14, r->r15);
}

/*
 * Follow the RBP chain (the kernel is built with frame pointers; boot.asm starts it
 * at 0).  Every frame is checked to be aligned and mapped before it is read, so a
 * corrupt chain ends the walk instead of faulting inside the handler.
 */
static void dump_backtrace(uint64_t rbp)
{
	kprintf("  backtrace:");
	for (unsigned depth = 0; depth < 16 && rbp; depth++) {
		const uint64_t *frame = (const uint64_t *)rbp;
		if ((rbp & 7) || rbp < ARCH_HHDM_BASE || !arch_virt_is_mapped(frame) ||
		    !arch_virt_is_mapped(frame + 1)) {
			kprintf(" [bad frame %016lx]", rbp);
			break;
		}
		kprintf(" %016lx", frame[1]);
		if (frame[0] <= rbp)
			break; /* stacks grow down: callers' frames are above */
		rbp = frame[0];
	}
	kprintf("\n");
}

void arch_exception_dispatch(struct arch_regs *r)
{
	struct percpu *cpu = this_cpu();
	uint64_t v = r->vector;

	/* An NMI after another CPU asked everyone to stop: that is all it means. */
	if (v == 2 && arch_stop_requested())
		arch_stopped_here();
	/*
	 * The first CPU to fault owns the end of the run; one faulting at the same time
	 * halts quietly instead of mixing its report into the first one.
	 */
	if (!arch_claim_panic())
		arch_stopped_here();
	arch_stop_other_cpus();

	/*
	 * A fault inside this handler (a bad pointer while dumping) would recurse until
	 * the stack is gone; after the first nesting level, say so briefly and stop.
	 */
	if (++cpu->irq_depth > 2 && v != 8) {
		kprintf_emergency("\n*** nested exception %lu at RIP=%016lx while handling an "
				  "exception; giving up\n", v, r->rip);
		arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
	}

	kprintf("\n*** EXCEPTION %lu: %s, error code 0x%lx, on cpu %u\n", v,
		v < 32 ? exception_names[v] : "?", r->error, arch_cpu_id());
	if (arch_cpus_online() > 1)
		kprintf("  other cpus stopped: %u of %u\n", arch_cpus_stopped(), arch_cpus_online() - 1);
	if (v == 14)
		dump_page_fault(r->error, read_cr2());
	else if (v == 10 || v == 11 || v == 12 || v == 13)
		dump_selector_error(r->error);
	if (v == 8)
		kprintf("  (handled on the IST1 stack; RIP/RSP are of the context whose fault "
			"could not be delivered)\n");
	if (v == 8 || v == 14)
		hint_stack_overflow(read_cr2());
	dump_regs(r);
	dump_backtrace(r->rbp);
	kprintf("*** halting: unhandled exception\n");
	arch_exit_qemu(ARCH_QEMU_EXIT_FAILURE);
}

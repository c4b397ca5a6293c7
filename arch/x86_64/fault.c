/*
 * fault.c - deliberate CPU exceptions, so boot tests can prove the handlers work.
 */
#include "internal.h"

#define NONCANONICAL_ADDR 0x8000000000000000ull

_Noreturn void arch_trigger_fault(enum arch_fault fault)
{
	switch (fault) {
	case ARCH_FAULT_PAGE:
		(void)*(volatile uint64_t *)ARCH_UNMAPPED_PROBE;
		break;
	case ARCH_FAULT_UD:
		__asm__ volatile("ud2");
		break;
	case ARCH_FAULT_DIVIDE: {
		uint32_t lo = 1, hi = 0;
		__asm__ volatile("divl %2" : "+a"(lo), "+d"(hi) : "r"(0u));
		break;
	}
	case ARCH_FAULT_GP:
		/* a non-canonical address is a #GP, not a #PF */
		(void)*(volatile uint64_t *)NONCANONICAL_ADDR;
		break;
	case ARCH_FAULT_DOUBLE:
		/*
		 * Point RSP at the bottom of the boot stack and push: the write lands in the
		 * unmapped guard page (#PF), and delivering that #PF needs the same stack, so
		 * the CPU raises #DF, which runs on its own IST stack.
		 */
		__asm__ volatile("movq %0, %%rsp\n\tpushq $0" : : "r"(__stack_guard_end) : "memory");
		break;
	}
	arch_halt_forever();
}

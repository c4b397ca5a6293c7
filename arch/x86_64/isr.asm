; isr.asm - entry stubs for vectors 0..47 and the local APIC's: save the interrupted state, call C, return.
;
; Every stub leaves the same frame (struct arch_regs in <labyrinth/arch.h>): the CPU's
; SS RSP RFLAGS CS RIP, an error code (the CPU's, or 0 pushed here so all frames match),
; the vector, then the 15 general registers.  The frame is 22 quadwords on a stack the
; CPU aligned to 16 before pushing (a multiple of 16 in total), so C is entered with
; the stack aligned as the ABI wants.  All gates are interrupt gates: IF=0 throughout.

bits 64
section .text

extern arch_exception_dispatch
extern arch_irq_dispatch
extern arch_lapic_dispatch
global isr_stub_table
global lapic_stub_table
global lapic_stub_vectors

%macro PUSH_REGS 0
	push rax
	push rbx
	push rcx
	push rdx
	push rsi
	push rdi
	push rbp
	push r8
	push r9
	push r10
	push r11
	push r12
	push r13
	push r14
	push r15
%endmacro

%macro POP_REGS 0
	pop r15
	pop r14
	pop r13
	pop r12
	pop r11
	pop r10
	pop r9
	pop r8
	pop rbp
	pop rdi
	pop rsi
	pop rdx
	pop rcx
	pop rbx
	pop rax
%endmacro

; Vectors where the CPU pushes an error code itself.
%macro EXC_ERR 1
isr_%1:
	push qword %1
	jmp exception_common
%endmacro

%macro EXC_NOERR 1
isr_%1:
	push qword 0
	push qword %1
	jmp exception_common
%endmacro

%macro IRQ 1
isr_%1:
	push qword 0
	push qword %1
	jmp irq_common
%endmacro

exception_common:
	PUSH_REGS
	cld
	mov rdi, rsp
	call arch_exception_dispatch    ; fatal: it does not come back, but be tidy if it does
	POP_REGS
	add rsp, 16
	iretq

%macro LAPIC 1
isr_%1:
	push qword 0
	push qword %1
	jmp lapic_common
%endmacro

; Interrupt entry: fn(vector, struct arch_regs *), then back to the interrupted context.
%macro INTERRUPT_COMMON 2
%1:
	PUSH_REGS
	cld
	mov rdi, [rsp + 15 * 8]         ; vector
	mov rsi, rsp                    ; struct arch_regs *
	call %2
	POP_REGS
	add rsp, 16                     ; vector and error code
	iretq
%endmacro

; 8259 lines, and the local APIC vectors (timer, wakeup IPI, error, spurious).
INTERRUPT_COMMON irq_common, arch_irq_dispatch
INTERRUPT_COMMON lapic_common, arch_lapic_dispatch

EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
EXC_NOERR 6
EXC_NOERR 7
EXC_ERR   8
EXC_NOERR 9
EXC_ERR   10
EXC_ERR   11
EXC_ERR   12
EXC_ERR   13
EXC_ERR   14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR   17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR   21
EXC_NOERR 22
EXC_NOERR 23
EXC_NOERR 24
EXC_NOERR 25
EXC_NOERR 26
EXC_NOERR 27
EXC_NOERR 28
EXC_ERR   29
EXC_ERR   30
EXC_NOERR 31

%assign i 32
%rep 16
IRQ %[i]
%assign i i + 1
%endrep

LAPIC 0xF0
LAPIC 0xF1
LAPIC 0xFE
LAPIC 0xFF

section .rodata
align 8
lapic_stub_table:
	dq isr_0xF0, isr_0xF1, isr_0xFE, isr_0xFF
lapic_stub_vectors:
	db 0xF0, 0xF1, 0xFE, 0xFF
align 8
isr_stub_table:
%assign i 0
%rep 48
	dq isr_%[i]
%assign i i + 1
%endrep

section .note.GNU-stack noalloc noexec nowrite progbits

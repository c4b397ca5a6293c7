; trampoline.asm - where an AP starts: 16-bit real mode at TRAMPOLINE_PHYS, out to long mode.
;
; The bytes between trampoline_start and trampoline_end are copied by smp.c to the low
; page TRAMPOLINE_PHYS (the SIPI vector is its page number) and run there, never at the
; address they are linked at, so every address below is T(label): its place in the copy.
; The AP goes real mode -> 32-bit protected mode (a small GDT of its own) -> long mode on
; a temporary PML4 that smp.c builds next to the code (the kernel's higher-half entries
; plus an identity map of the low 2 MiB, so this page stays reachable while paging comes
; on) and jumps to the kernel's ap_entry with its CPU index in EDI and its own stack;
; ap_entry then switches to the kernel's page tables.  Interrupts stay off throughout.

TRAMPOLINE_PHYS equ 0x8000

%define T(x) (TRAMPOLINE_PHYS + (x) - trampoline_start)

global trampoline_start
global trampoline_end
global trampoline_params

section .rodata
align 16
bits 16
trampoline_start:
	cli
	cld
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	o32 lgdt [T(tr_gdt_ptr)]
	mov eax, cr0
	or eax, 1                       ; PE
	mov cr0, eax
	jmp dword 0x08:T(tr_pm32)

bits 32
tr_pm32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov eax, [T(tr_cr4)]            ; the boot CPU's CR4 (PAE at least)
	mov cr4, eax
	mov eax, [T(tr_cr3)]            ; the temporary PML4
	mov cr3, eax
	mov ecx, 0xC0000080             ; EFER: LME, and NXE if the boot CPU has it
	mov eax, [T(tr_efer)]
	xor edx, edx
	wrmsr
	mov eax, [T(tr_cr0)]            ; the boot CPU's CR0: PG, WP, PE
	mov cr0, eax
	jmp 0x18:T(tr_lm64)

bits 64
tr_lm64:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	xor eax, eax
	mov fs, ax
	mov gs, ax
	mov rsp, [abs T(tr_stack)]
	mov edi, [abs T(tr_cpu)]
	mov rax, [abs T(tr_entry)]
	xor ebp, ebp                    ; terminates frame-pointer backtraces
	call rax                        ; ap_entry does not return
.halt:
	cli
	hlt
	jmp .halt

align 8
tr_gdt:
	dq 0
	dq 0x00CF9A000000FFFF           ; 0x08: 32-bit code
	dq 0x00CF92000000FFFF           ; 0x10: data
	dq 0x00AF9A000000FFFF           ; 0x18: 64-bit code
tr_gdt_end:
tr_gdt_ptr:
	dw tr_gdt_end - tr_gdt - 1
	dd T(tr_gdt)

; Filled in by smp.c for each AP (struct trampoline_params there; same layout).
align 8
trampoline_params:
tr_cr3:   dd 0
tr_cr4:   dd 0
tr_cr0:   dd 0
tr_efer:  dd 0
tr_cpu:   dd 0
tr_pad:   dd 0
tr_stack: dq 0
tr_entry: dq 0
trampoline_end:

section .note.GNU-stack noalloc noexec nowrite progbits

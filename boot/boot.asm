; boot.asm - multiboot2 header and the 32-bit entry that takes the CPU to long mode.
;
; GRUB enters _start in 32-bit protected mode, paging off, EAX = multiboot2 magic,
; EBX = physical address of the boot information.  We check both the magic and the CPU,
; identity-map the low 4 GiB (every multiboot2 address is 32-bit, so the information
; structure and modules are reachable from C until arch_paging_init() replaces these
; tables) plus the kernel window at 0xffffffff80000000, enter long mode and call
; kmain(magic, mbi_phys) on the boot stack.  Any failure here is reported on COM1 and
; ends QEMU with status 35 through isa-debug-exit.

MB2_MAGIC       equ 0xE85250D6
MB2_ARCH_I386   equ 0
MB2_BOOT_MAGIC  equ 0x36d76289
KERNEL_VMA      equ 0xFFFFFFFF80000000
BOOT_STACK_SIZE equ 16384

COM1            equ 0x3F8
QEMU_EXIT_PORT  equ 0xf4
QEMU_EXIT_FAIL  equ 0x11

PTE_P           equ 1 << 0
PTE_W           equ 1 << 1
PTE_PS          equ 1 << 7

extern kmain
extern percpu
extern __bss_start
extern __bss_end
global _start
global boot_stack_top

; ---- Multiboot2 header: nothing requested, just the mandatory end tag -----------------

section .multiboot2 progbits alloc noexec nowrite align=8
mb2_header:
	dd MB2_MAGIC
	dd MB2_ARCH_I386
	dd mb2_header_end - mb2_header
	dd -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
	; end tag: type 0, flags 0, size 8
	dw 0
	dw 0
	dd 8
mb2_header_end:

; ---- Early page tables, identity-addressed (this section is never in the higher half) --

section .boot.bss nobits alloc noexec write align=4096
boot_pml4:      resb 4096
boot_pdpt_low:  resb 4096
boot_pdpt_high: resb 4096
boot_pd:        resb 4096 * 4      ; 4 x 1 GiB of 2 MiB pages
boot_pt_end:

section .bss.boot_stack nobits alloc noexec write align=16
boot_stack:     resb BOOT_STACK_SIZE
boot_stack_top:

; ---- 32-bit entry ---------------------------------------------------------------------

section .boot.text progbits alloc exec nowrite align=16
bits 32
_start:
	cli
	cld
	mov esi, ebx                    ; info pointer and magic, kept for kmain (SysV args)
	mov ebp, eax

	; Zero .bss before anything uses the stack that lives in it (C expects a zeroed
	; .bss; GRUB clears it too, but that is its business, not a contract).
	mov edi, __bss_start - KERNEL_VMA
	mov ecx, __bss_end - KERNEL_VMA
	sub ecx, edi
	shr ecx, 2
	xor eax, eax
	rep stosd

	mov edi, ebp
	mov eax, ebp
	mov esp, boot_stack_top - KERNEL_VMA

	cmp eax, MB2_BOOT_MAGIC
	jne .bad_magic

	; CPUID exists if EFLAGS.ID (bit 21) can be toggled.
	pushfd
	pop eax
	mov ecx, eax
	xor eax, 1 << 21
	push eax
	popfd
	pushfd
	pop eax
	push ecx
	popfd
	cmp eax, ecx
	je .no_long_mode

	mov eax, 0x80000000
	cpuid
	cmp eax, 0x80000001
	jb .no_long_mode
	mov eax, 0x80000001
	cpuid
	test edx, 1 << 29               ; LM
	jz .no_long_mode

	call build_page_tables

	mov eax, cr4
	or eax, 1 << 5                  ; PAE
	mov cr4, eax
	mov eax, boot_pml4
	mov cr3, eax

	mov eax, 0x80000001
	cpuid
	mov ebp, edx                    ; NX support is EDX bit 20
	mov ecx, 0xC0000080             ; EFER
	rdmsr
	or eax, 1 << 8                  ; LME
	test ebp, 1 << 20
	jz .no_nx
	or eax, 1 << 11                 ; NXE: page tables may then use the NX bit
.no_nx:
	wrmsr

	mov eax, cr0
	or eax, (1 << 31) | (1 << 16) | 1 ; PG, WP (kernel honours read-only pages), PE
	mov cr0, eax

	lgdt [boot_gdt_ptr]
	jmp 0x08:long_mode_entry

.bad_magic:
	mov ebx, msg_bad_magic
	call serial_puts32
	mov edx, edi
	call serial_hex32
	mov ebx, msg_nl
	call serial_puts32
	jmp fail32

.no_long_mode:
	mov ebx, msg_no_lm
	call serial_puts32
	jmp fail32

; pml4[0] -> pdpt_low -> 4 PDs (identity, 0..4 GiB); pml4[511] -> pdpt_high,
; pdpt_high[510] -> the first PD (0xffffffff80000000 -> physical 0, 1 GiB).
build_page_tables:
	push edi
	mov edi, boot_pml4
	mov ecx, (boot_pt_end - boot_pml4) / 4
	xor eax, eax
	rep stosd
	pop edi

	mov dword [boot_pml4], boot_pdpt_low + (PTE_P | PTE_W)
	mov dword [boot_pml4 + 511 * 8], boot_pdpt_high + (PTE_P | PTE_W)
	mov dword [boot_pdpt_high + 510 * 8], boot_pd + (PTE_P | PTE_W)

	xor ecx, ecx
.pdpt:
	mov eax, ecx
	shl eax, 12
	add eax, boot_pd + (PTE_P | PTE_W)
	mov [boot_pdpt_low + ecx * 8], eax
	inc ecx
	cmp ecx, 4
	jne .pdpt

	; 2048 PD entries: entry i maps i * 2 MiB (bits 32+ of the address go in the high dword)
	xor ecx, ecx
.pd:
	mov eax, ecx
	shl eax, 21
	or eax, PTE_P | PTE_W | PTE_PS
	mov [boot_pd + ecx * 8], eax
	mov eax, ecx
	shr eax, 11
	mov [boot_pd + ecx * 8 + 4], eax
	inc ecx
	cmp ecx, 2048
	jne .pd
	ret

; Print the NUL-terminated string at EBX on COM1, polling the transmitter.
serial_puts32:
	push eax
	push edx
.next:
	mov al, [ebx]
	test al, al
	jz .done
	call serial_putc32
	inc ebx
	jmp .next
.done:
	pop edx
	pop eax
	ret

; Print EDX as 0x + 8 hex digits.
serial_hex32:
	push ecx
	mov al, '0'
	call serial_putc32
	mov al, 'x'
	call serial_putc32
	mov ecx, 8
.digit:
	rol edx, 4
	mov al, dl
	and al, 0x0f
	add al, '0'
	cmp al, '9'
	jbe .emit
	add al, 'a' - '9' - 1
.emit:
	call serial_putc32
	dec ecx
	jnz .digit
	pop ecx
	ret

; AL -> COM1.  The UART is left as firmware/GRUB set it up (GRUB: 115200 8N1); QEMU's
; works unprogrammed.  Bounded wait so a missing UART cannot hang the failure path.
serial_putc32:
	push ecx
	push edx
	push eax
	mov ecx, 100000
.wait:
	mov dx, COM1 + 5
	in al, dx
	test al, 0x20
	jnz .ready
	dec ecx
	jnz .wait
.ready:
	pop eax
	mov dx, COM1
	out dx, al
	pop edx
	pop ecx
	ret

fail32:
	mov dx, QEMU_EXIT_PORT
	mov al, QEMU_EXIT_FAIL
	out dx, al
.halt:
	cli
	hlt
	jmp .halt

; ---- 64-bit trampoline (still identity-addressed) ------------------------------------

bits 64
long_mode_entry:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	xor ax, ax
	mov fs, ax
	mov gs, ax

	; GS -> CPU 0's per-CPU block, before any C runs: arch_cpu_id() reads through it.
	; (After the selector load above: loading GS resets its base.)
	mov rax, percpu
	mov rdx, rax
	shr rdx, 32
	mov ecx, 0xC0000101             ; IA32_GS_BASE
	wrmsr

	mov rsp, boot_stack_top         ; higher-half address of the same stack
	xor ebp, ebp                    ; terminates frame-pointer backtraces
	mov edi, edi                    ; magic, zero-extended
	mov esi, esi                    ; mbi_phys, zero-extended
	mov rax, kmain
	call rax                        ; kmain does not return; if it does, halt

.halt:
	cli
	hlt
	jmp .halt

section .boot.data progbits alloc noexec write align=16
boot_gdt:
	dq 0
	dq 0x00AF9A000000FFFF           ; 0x08: 64-bit code, DPL 0
	dq 0x00CF92000000FFFF           ; 0x10: data, DPL 0
boot_gdt_end:
boot_gdt_ptr:
	dw boot_gdt_end - boot_gdt - 1
	dd boot_gdt

msg_bad_magic: db "Labyrinth boot: not loaded by a multiboot2 boot loader, EAX=", 0
msg_no_lm:     db "Labyrinth boot: this CPU does not support long mode (x86-64); cannot boot", 13, 10, 0
msg_nl:        db 13, 10, 0

section .note.GNU-stack noalloc noexec nowrite progbits

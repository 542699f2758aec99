/*
 * arch/x86_64/trampoline.S - where an application processor (AP) starts:
 * 16-bit real mode -> 32-bit protected mode -> 64-bit long mode -> C.
 *
 * An AP wakes up in real mode at the address the STARTUP IPI names
 * (vector v -> CS = v << 8, IP = 0, i.e. physical v << 12), so this code
 * is copied by smp.c to the page X86_TRAMPOLINE (0x8000, vector 0x08),
 * reserved in boot.c so strata never hands it out.  It is assembled here,
 * in .rodata: the copy in the kernel image is data, never executed.
 *
 *   boot CPU (smp.c)                         AP
 *   ----------------                         --
 *   copy trampoline to 0x8000, fill params
 *   identity-map 0x8000 in the kernel PML4
 *   INIT IPI  ------------------------------> reset, wait for SIPI
 *   wait 10 ms
 *   STARTUP IPI, vector 0x08 ---------------> CS:IP = 0800:0000
 *   wait 200 us                               16-bit: lgdt (trampoline
 *   STARTUP IPI again (ignored if running)      GDT), CR0.PE, far jump
 *   wait for `arrived`                        32-bit: CR4 (PAE, SSE bits),
 *                                               CR3 = kernel PML4 (< 4 GiB),
 *                                               EFER (LME, NXE), CR0 (PG,
 *                                               WP, MP, NE; EM clear),
 *                                               far jump to the 64-bit CS
 *                                             64-bit, still at 0x8xxx
 *                                               (the identity map): GS base
 *                                               = &x86_percpu[cpu], stack,
 *                                               fninit, call x86_ap_main
 *                                               (higher half)
 *                                             x86_ap_main: IDT, own GDT +
 *             <----------------- arrived ---    TSS, then waits
 *   next AP ...
 *   remove the identity map, flush TLB
 *   release --------------------------------> flush TLB,
 *                                             smp_secondary_main(cpu)
 *
 * Addresses: the 16-bit code uses offsets from the start of the page (its
 * CS base is the page); the 32-bit code absolute physical addresses
 * (TRAMP()); the 64-bit code %rip-relative ones, which survive the copy.
 */
#include "x86.h"

#define TRAMP(x)  (X86_TRAMPOLINE + ((x) - x86_trampoline_start))
#define OFF(x)    ((x) - x86_trampoline_start)
#define SEL_CODE32 0x18          /* trampoline GDT only */

	.section .rodata.trampoline, "a", @progbits
	.balign 16
	.globl x86_trampoline_start, x86_trampoline_end, x86_trampoline_params

	.code16
x86_trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl OFF(tr_gdt_ptr)
	movl %cr0, %eax
	orl $X86_CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $TRAMP(tr_pm32)

	.code32
tr_pm32:
	movl $X86_SEL_KDATA, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl TRAMP(tr_cr4), %eax
	movl %eax, %cr4
	movl TRAMP(tr_cr3), %eax
	movl %eax, %cr3
	movl $X86_MSR_EFER, %ecx
	movl TRAMP(tr_efer), %eax
	movl TRAMP(tr_efer) + 4, %edx
	wrmsr
	movl TRAMP(tr_cr0), %eax
	movl %eax, %cr0                 /* paging on: long mode active */
	ljmp $X86_SEL_KCODE, $TRAMP(tr_lm64)

	.code64
tr_lm64:
	movl $X86_MSR_GS_BASE, %ecx     /* after the %gs load above */
	movq tr_percpu(%rip), %rax
	movq %rax, %rdx
	shrq $32, %rdx
	wrmsr
	movq tr_stack(%rip), %rsp
	fninit
	xorl %ebp, %ebp                 /* root frame: backtraces stop here */
	movq tr_percpu(%rip), %rdi      /* arg 0: struct x86_percpu * */
	movq tr_entry(%rip), %rax
	call *%rax                      /* x86_ap_main, never returns */
	ud2

/* null, 64-bit code 0x08 and data 0x10 as in boot.S's x86_gdt, and a
 * 32-bit code segment for the step from real mode. */
	.balign 8
tr_gdt:
	.quad 0
	.quad 0x00af9b000000ffff        /* 0x08 code: 64-bit (L=1), ring 0 */
	.quad 0x00cf93000000ffff        /* 0x10 data: flat 4 GiB, ring 0 */
	.quad 0x00cf9b000000ffff        /* 0x18 code: 32-bit, flat 4 GiB */
tr_gdt_end:
tr_gdt_ptr:
	.word tr_gdt_end - tr_gdt - 1
	.long TRAMP(tr_gdt)

/* Filled in by smp.c before each AP starts: struct x86_trampoline_params. */
	.balign 8
x86_trampoline_params:
tr_cr0:    .quad 0
tr_cr3:    .quad 0                  /* kernel PML4, below 4 GiB */
tr_cr4:    .quad 0
tr_efer:   .quad 0
tr_percpu: .quad 0
tr_stack:  .quad 0
tr_entry:  .quad 0
x86_trampoline_end:

	.section .note.GNU-stack, "", @progbits

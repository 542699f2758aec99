/*
 * arch/x86_64/boot.S - PVH entry: 32-bit protected mode -> 64-bit long mode
 * -> higher half -> C (x86_boot_main in boot.c).
 *
 * How we get here.  `qemu-system-x86_64 -kernel kernel.elf` finds the ELF
 * note XEN_ELFNOTE_PHYS32_ENTRY below, loads every PT_LOAD segment at its
 * *physical* address (p_paddr, set with AT() in linker.ld) and jumps to the
 * 32-bit physical address in the note with:
 *
 *   - 32-bit protected mode, paging off, interrupts off
 *   - CS = flat 32-bit code, DS/ES/SS = flat data (but no stack: %esp is
 *     undefined)
 *   - %ebx = physical address of struct hvm_start_info (pvh.h)
 *
 * The kernel is linked at X86_KERNEL_VMA + physical (0xffffffff80100000),
 * so until paging is on, every absolute address must be converted with
 * PHYS(): the 32-bit code itself only uses relative jumps.
 *
 * Boot page tables (all in .bss, 7 pages; replaced by paging.c later):
 *
 *   boot_pml4
 *     [0]   -> boot_pdpt_low  [0..3] -> boot_pd[0..3]: phys 0..4 GiB
 *                                        identity, 2 MiB pages
 *     [511] -> boot_pdpt_high [510]  -> boot_pd[0]: phys 0..1 GiB
 *                             [511]  -> boot_pd[1]: phys 1..2 GiB
 *                                        at 0xffffffff80000000
 *
 * The identity half lets the instruction after "enable paging" keep running
 * and lets boot.c read the PVH start info (a 32-bit physical address) and
 * write the final page tables.  It maps MMIO as ordinary memory, which is
 * fine for the few microseconds it exists because nothing touches MMIO.
 *
 * CPU state handed to C: long mode, CS = X86_SEL_KCODE, other segments =
 * X86_SEL_KDATA, %rsp = top of the boot stack (in .bss, with an unmapped
 * guard page below once paging.c has run), %rbp = 0 (the root frame, so
 * frame-pointer backtraces stop there), SSE enabled, .bss zeroed,
 * GS base = &x86_percpu[0] (so arch_cpu_id(), `movl %gs:0`, is 0 from the
 * first C instruction on), %rdi = start_info physical address.
 */
#include "x86.h"
#include <kernel/exit.h>

#define PHYS(x) ((x) - X86_KERNEL_VMA)

/* ------------------------------------------------------------------ note */
/* Elf64_Nhdr + "Xen\0" + the entry address.  QEMU reads the descriptor as
 * a host size_t, so it is a .quad; the section is 4-aligned so that the
 * PT_NOTE segment has p_align 4 and the standard 4-byte note padding. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                         /* n_namesz: "Xen\0" */
	.long 8                         /* n_descsz */
	.long 18                        /* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.quad PHYS(pvh_entry)

/* ----------------------------------------------------- 32-bit entry code */
	.section .text.boot, "ax", @progbits
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, %esi                 /* start_info: kept in %esi throughout */
	rdtsc                           /* boot-time measurement (.data: not */
	movl %eax, PHYS(x86_pvh_entry_tsc)      /* cleared with .bss) */
	movl %edx, PHYS(x86_pvh_entry_tsc) + 4

	/* Our own GDT (physical base for now) and flat data segments. */
	lgdt PHYS(boot_gdt_ptr32)
	movl $X86_SEL_KDATA, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $PHYS(__boot_stack_top), %esp

	/* Zero .bss: the page tables below and the stack live there. */
	movl $PHYS(__bss_start), %edi
	movl $PHYS(__bss_end), %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl

	/* Long mode available?  CPUID 0x80000001 EDX bit 29. */
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb no_long_mode
	movl $0x80000001, %eax
	cpuid
	btl $29, %edx
	jnc no_long_mode

	/* Boot page tables (see the diagram above).  Entry = phys | flags,
	 * 0x003 = present + writable, 0x083 = + PS (2 MiB page). */
	movl $PHYS(boot_pdpt_low) + 0x003, PHYS(boot_pml4)
	movl $PHYS(boot_pdpt_high) + 0x003, PHYS(boot_pml4) + 511 * 8
	movl $PHYS(boot_pd) + 0x0003, PHYS(boot_pdpt_low) + 0 * 8
	movl $PHYS(boot_pd) + 0x1003, PHYS(boot_pdpt_low) + 1 * 8
	movl $PHYS(boot_pd) + 0x2003, PHYS(boot_pdpt_low) + 2 * 8
	movl $PHYS(boot_pd) + 0x3003, PHYS(boot_pdpt_low) + 3 * 8
	movl $PHYS(boot_pd) + 0x0003, PHYS(boot_pdpt_high) + 510 * 8
	movl $PHYS(boot_pd) + 0x1003, PHYS(boot_pdpt_high) + 511 * 8
	xorl %ecx, %ecx                 /* boot_pd[i] = i * 2 MiB | 0x083 */
1:	movl %ecx, %eax
	shll $21, %eax
	orl $0x083, %eax
	movl %eax, PHYS(boot_pd)(, %ecx, 8)
	incl %ecx
	cmpl $4 * 512, %ecx
	jb 1b

	/* PAE paging and SSE (FXSAVE/FXRSTOR, #XM for SIMD exceptions). */
	movl %cr4, %eax
	orl $(X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT), %eax
	movl %eax, %cr4
	movl $PHYS(boot_pml4), %eax
	movl %eax, %cr3

	/* EFER.LME: long mode becomes active when paging is switched on. */
	movl $X86_MSR_EFER, %ecx
	rdmsr
	orl $X86_EFER_LME, %eax
	wrmsr

	/* Paging on, write protection honoured in ring 0, FPU/SSE usable
	 * (EM = 0, MP = 1, NE = 1: x87 errors raise #MF, not IRQ 13). */
	movl %cr0, %eax
	andl $~X86_CR0_EM, %eax
	orl $(X86_CR0_PG | X86_CR0_PE | X86_CR0_WP | X86_CR0_MP | X86_CR0_NE), %eax
	movl %eax, %cr0

	/* Now in compatibility mode; a far jump loads the 64-bit CS. */
	ljmp $X86_SEL_KCODE, $PHYS(long_mode_low)

no_long_mode:
	movl $PHYS(msg_no_long_mode), %ebx
	movw $0x3f8, %dx
2:	movb (%ebx), %al
	testb %al, %al
	jz 3f
	outb %al, %dx
	incl %ebx
	jmp 2b
3:	movw $0xf4, %dx                 /* isa-debug-exit */
	movl $EXIT_PANIC, %eax
	outl %eax, %dx
4:	hlt
	jmp 4b

/* ------------------------------------------------------- 64-bit, low half */
	.code64
long_mode_low:
	/* Still executing at the physical (identity-mapped) address. */
	movabsq $higher_half, %rax
	jmp *%rax

/* ---------------------------------------------------- 64-bit, higher half */
	.text
higher_half:
	lgdt boot_gdt_ptr64             /* GDTR base: the virtual address */
	movl $X86_SEL_KDATA, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs                   /* (resets the GS base: set it after) */
	movl $X86_MSR_GS_BASE, %ecx
	movq $x86_percpu, %rax          /* boot CPU: x86_percpu[0], cpu 0 */
	movq %rax, %rdx
	shrq $32, %rdx
	wrmsr
	movq $__boot_stack_top, %rsp
	fninit
	xorl %ebp, %ebp                 /* root frame: backtraces stop here */
	movl %esi, %edi                 /* arg 0: start_info physical address */
	call x86_boot_main              /* never returns */
5:	cli
	hlt
	jmp 5b

/* ------------------------------------------------------------------ data */
	.section .rodata
msg_no_long_mode:
	.asciz "strata: this CPU has no 64-bit long mode\r\n"

	.balign 8
boot_gdt_ptr32:                         /* used before paging: physical */
	.word x86_gdt_end - x86_gdt - 1
	.long PHYS(x86_gdt)
	.balign 8
boot_gdt_ptr64:                         /* used after: virtual */
	.word x86_gdt_end - x86_gdt - 1
	.quad x86_gdt

/* The boot GDT, until cpu.c gives each CPU its own copy with a TSS
 * descriptor (the template for those copies; the trampoline has the same
 * code and data descriptors).  Accessed bits are preset so the CPU never
 * needs to write the code/data entries. */
	.data
	.balign 16
	.globl x86_gdt
x86_gdt:
	.quad 0                         /* 0x00 null */
	.quad 0x00af9b000000ffff        /* 0x08 code: 64-bit (L=1), ring 0 */
	.quad 0x00cf93000000ffff        /* 0x10 data: flat 4 GiB, ring 0 */
	.quad 0, 0                      /* 0x18 TSS (in the per-CPU copies) */
x86_gdt_end:

	.balign 8
	.globl x86_pvh_entry_tsc
x86_pvh_entry_tsc:
	.quad 0

/* ------------------------------------------------------------------- bss */
	.section .bss.boot_pt, "aw", @nobits
	.balign 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096

/* Boot stack.  paging.c leaves the guard page unmapped, so running off the
 * bottom of the stack faults (and the #DF handler's IST stack reports it). */
	.section .bss.boot_stack, "aw", @nobits
	.balign 4096
	.globl __boot_stack_guard, __boot_stack_top
__boot_stack_guard:
	.skip 4096
	.skip X86_BOOT_STACK_SIZE
__boot_stack_top:

	.section .note.GNU-stack, "", @progbits

/*
 * arch/aarch64/vectors.S - the exception vector table (VBAR_EL1).
 *
 * 16 entries of 128 bytes (32 instructions), 2 KiB aligned:
 *
 *   offset  taken from                         Sync   IRQ    FIQ    SError
 *   0x000   current EL, using SP_EL0 (EL1t)    0      1      2      3
 *   0x200   current EL, using SP_ELx (EL1h)    4      5      6      7   <- us
 *   0x400   lower EL, AArch64                  8      9      10     11
 *   0x600   lower EL, AArch32                  12     13     14     15
 *
 * Every entry switches to this CPU's exception stack - so a kernel stack
 * overflow into the guard page can still be reported - saves all registers
 * there as a struct aarch64_regs, and calls aarch64_exception(regs, kind)
 * in traps.c, which prints them and ends in fault_exit(), except for a
 * data abort it can resolve (a guard page of strata's, traps.c): then it
 * returns, and the registers are restored and eret retries the access.
 *
 * Where each CPU's exception stack is: SP_EL0.  The kernel always runs at
 * EL1h (on SP_EL1) and has no EL0, so SP_EL0 is a free per-CPU register;
 * boot.S (CPU 0) and smp_entry.S (the others) load it with the top of the
 * CPU's own exception stack, and an exception (which always lands on
 * SP_EL1) copies it into SP.  Two more scratch registers make the switch
 * possible without losing anything: TPIDR_EL0 holds x0 and TPIDRRO_EL0
 * the interrupted SP while x0 carries the new SP.  TPIDR_EL1 is not
 * touched: it is the CPU number (arch_cpu_id()).
 *
 *   msr tpidr_el0, x0      save x0
 *   mov x0, sp             \ save the interrupted SP
 *   msr tpidrro_el0, x0    /
 *   mrs x0, sp_el0         \ SP = this CPU's exception stack top
 *   mov sp, x0             /
 *
 * The return path puts everything back from the frame, x0 last through
 * TPIDR_EL0 again, since SP must be restored before it:
 *
 *   ELR, SPSR, x1..x30 from the frame
 *   TPIDR_EL0 = saved x0; x0 = saved SP; SP = x0; x0 = TPIDR_EL0; eret
 */
#include "aarch64.h"

.macro VENTRY kind
	.balign	128
	msr	tpidr_el0, x0
	mov	x0, sp
	msr	tpidrro_el0, x0
	mrs	x0, sp_el0
	mov	sp, x0
	mov	x0, #\kind
	b	exc_common
.endm

	.section .text.vectors, "ax"
	.balign	2048
	.global aarch64_vectors
aarch64_vectors:
	VENTRY 0
	VENTRY 1
	VENTRY 2
	VENTRY 3
	VENTRY 4
	VENTRY 5
	VENTRY 6
	VENTRY 7
	VENTRY 8
	VENTRY 9
	VENTRY 10
	VENTRY 11
	VENTRY 12
	VENTRY 13
	VENTRY 14
	VENTRY 15

/* x0 = kind, sp = exception stack, TPIDR_EL0 = x0, TPIDRRO_EL0 = old SP. */
exc_common:
	sub	sp, sp, #REGS_SIZE
	str	x1, [sp, #8]
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	str	x30, [sp, #240]
	mrs	x1, tpidr_el0
	str	x1, [sp, #REGS_X0]
	mrs	x1, tpidrro_el0
	str	x1, [sp, #REGS_SP]
	mrs	x1, sp_el0
	str	x1, [sp, #REGS_SP_EL0]
	mrs	x1, elr_el1
	str	x1, [sp, #REGS_ELR]
	mrs	x1, spsr_el1
	str	x1, [sp, #REGS_SPSR]
	mrs	x1, esr_el1
	str	x1, [sp, #REGS_ESR]
	mrs	x1, far_el1
	str	x1, [sp, #REGS_FAR]

	mov	x1, x0                   /* kind */
	mov	x0, sp                   /* struct aarch64_regs * */
	mov	x29, xzr                 /* the handler is a root frame */
	mov	x30, xzr
	bl	aarch64_exception        /* returns only to retry the access */

	ldr	x1, [sp, #REGS_ELR]
	msr	elr_el1, x1
	ldr	x1, [sp, #REGS_SPSR]
	msr	spsr_el1, x1
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x19, [sp, #144]
	ldp	x20, x21, [sp, #160]
	ldp	x22, x23, [sp, #176]
	ldp	x24, x25, [sp, #192]
	ldp	x26, x27, [sp, #208]
	ldp	x28, x29, [sp, #224]
	ldr	x30, [sp, #240]
	ldr	x0, [sp, #REGS_X0]
	msr	tpidr_el0, x0
	ldr	x1, [sp, #8]
	ldr	x0, [sp, #REGS_SP]
	mov	sp, x0
	mrs	x0, tpidr_el0
	eret

	.section .note.GNU-stack, "", %progbits

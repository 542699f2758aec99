/*
 * arch/aarch64/boot.S - the first instructions of the aarch64 kernel.
 *
 * How QEMU -M virt starts an ELF kernel (-kernel kernel.elf):
 *   - every CPU starts at _start (the ELF entry), but with -smp N only the
 *     boot CPU runs: the others wait in PSCI "off" until CPU_ON;
 *   - MMU and caches off: every data access is Device-nGnRnE, so unaligned
 *     accesses fault on real hardware (we build with -mstrict-align);
 *   - x0 = 0 for an ELF image (a raw Image would get the DTB address), and
 *     the DTB sits at 0x40000000 because we are linked at 0x40200000;
 *   - exception level EL1, or EL2 with -M virt,virtualization=on, or EL3
 *     with secure=on (not supported: we say so and exit);
 *   - interrupts masked (PSTATE.DAIF = 1111), SP undefined.
 *
 * What _start leaves for C (aarch64_start in setup.c):
 *   - EL1h (EL1, using SP_EL1), DAIF masked, SCTLR_EL1: MMU and D-cache off,
 *     I-cache on
 *   - FP/SIMD enabled (CPACR_EL1.FPEN = 11): the compiler may use q0-q31
 *   - SP at the top of the 64 KiB boot stack (a guard page below it)
 *   - .bss zeroed, VBAR_EL1 = aarch64_vectors (vectors.S), SP_EL0 = top of
 *     the exception stack (vectors.S switches to it), TPIDR_EL1 = 0 (the
 *     CPU number, arch_cpu_id())
 *   - x29 = x30 = 0: the frame-pointer chain ends at aarch64_start
 *   - x0 = DTB pointer from the loader (may be 0), x1 = EL we started in
 *
 * Dropping from EL2 to EL1 (we do not stay a hypervisor):
 *
 *   EL2: HCR_EL2 = RW | HCD       EL1 is AArch64; HVC undefined (no EL2 vectors)
 *        CNTHCTL_EL2 = 3, CNTVOFF_EL2 = 0   EL1 sees the counters, CNTVCT == CNTPCT
 *        CPTR_EL2 = 0x33ff        FP/SIMD not trapped to EL2
 *        MDCR_EL2 = PMCR_EL0.N    EL1 owns every PMU counter (HPMN), no
 *                                 PMU trap to EL2 (arch_insns)
 *        VPIDR/VMPIDR = MIDR/MPIDR  (their reset values are UNKNOWN and EL1
 *                                  reads of MIDR/MPIDR would return them)
 *        ICC_SRE_EL2.{SRE,Enable} if a GICv3 system-register interface exists
 *        SPSR_EL2 = EL1h + DAIF, ELR_EL2 = label, eret  ----->  EL1
 */
#include "aarch64.h"

	.section .text.boot, "ax"
	.global _start
	.type _start, %function
_start:
	mov	x19, x0                  /* keep the loader's DTB pointer */

	/* Only the boot CPU (affinity 0.0.0.0) runs; park the others. */
	mrs	x1, mpidr_el1
	mov	x2, #0x00ffffff          /* Aff2..Aff0 */
	orr	x2, x2, #0xff00000000    /* Aff3 */
	tst	x1, x2
	b.ne	park

	mrs	x20, CurrentEL
	lsr	x20, x20, #2             /* x20 = 1, 2 or 3 */
	cmp	x20, #3
	b.eq	el3_unsupported
	bl	aarch64_to_el1           /* from here on: EL1 */
	msr	daifset, #0xf
	/* Known state: MMU, D-cache, alignment checks off.  The I-cache may be
	 * on with the MMU off (fetches are then Normal cacheable), which makes
	 * the MMU-off part of the boot much faster on real hardware; drop any
	 * stale lines from before the kernel was loaded first. */
	ic	iallu
	dsb	nsh
	isb
	ldr	x0, =SCTLR_MMU_OFF
	orr	x0, x0, #SCTLR_I
	msr	sctlr_el1, x0
	mov	x0, #CPACR_FPEN          /* FP/SIMD on before any compiled code */
	msr	cpacr_el1, x0
	isb

	/* Clear .bss before any C runs, 64 bytes a round.  Both ends are page
	 * aligned, so the stores never straddle them.  (No "dc zva" here: it
	 * faults on Device memory, which is all memory while the MMU is off.) */
	adrp	x0, __bss_start
	add	x0, x0, :lo12:__bss_start
	adrp	x1, __bss_end
	add	x1, x1, :lo12:__bss_end
	cmp	x0, x1
	b.hs	3f
2:	stp	xzr, xzr, [x0], #16
	stp	xzr, xzr, [x0], #16
	stp	xzr, xzr, [x0], #16
	stp	xzr, xzr, [x0], #16
	cmp	x0, x1
	b.lo	2b
3:
	adrp	x0, __boot_stack_top
	add	x0, x0, :lo12:__boot_stack_top
	mov	sp, x0
	adrp	x0, __exc_stack_top      /* SP_EL0: where vectors.S takes */
	add	x0, x0, :lo12:__exc_stack_top   /* exceptions (per CPU) */
	msr	sp_el0, x0
	msr	tpidr_el1, xzr           /* arch_cpu_id() = 0 */
	adrp	x0, aarch64_vectors
	add	x0, x0, :lo12:aarch64_vectors
	msr	vbar_el1, x0
	isb

	mov	x29, xzr                 /* root frame: backtraces stop here */
	mov	x30, xzr
	mov	x0, x19
	mov	x1, x20
	bl	aarch64_start            /* never returns */
	b	park
	.size _start, . - _start

/*
 * aarch64_to_el1: continue at EL1 at the return address (x30), dropping
 * from EL2 as described at the top if that is where we are.  Shared with
 * the secondary CPUs (smp_entry.S), which PSCI starts at the EL the boot
 * CPU came in at.  MMU off, no stack needed; clobbers x0.
 */
	.global aarch64_to_el1
	.type aarch64_to_el1, %function
aarch64_to_el1:
	mrs	x0, CurrentEL
	cmp	x0, #(2 << 2)
	b.eq	1f
	ret
1:	mov	x0, #HCR_RW
	orr	x0, x0, #HCR_HCD
	msr	hcr_el2, x0
	mov	x0, #CNTHCTL_EL1PCEN_PCTEN
	msr	cnthctl_el2, x0
	msr	cntvoff_el2, xzr
	mov	x0, #CPTR_EL2_RES1
	msr	cptr_el2, x0
	msr	hstr_el2, xzr
	msr	vttbr_el2, xzr
	mrs	x0, pmcr_el0
	ubfx	x0, x0, #11, #5          /* N: event counters implemented */
	msr	mdcr_el2, x0             /* HPMN = N, TPM = TPMCR = 0 */
	mrs	x0, midr_el1
	msr	vpidr_el2, x0
	mrs	x0, mpidr_el1
	msr	vmpidr_el2, x0
	mrs	x0, id_aa64pfr0_el1
	ubfx	x0, x0, #24, #4          /* GIC field: 1 = GICv3 sysregs present */
	cbz	x0, 2f
	mrs	x0, s3_4_c12_c9_5        /* ICC_SRE_EL2 */
	orr	x0, x0, #0x1             /* SRE: system-register interface */
	orr	x0, x0, #0x8             /* Enable: EL1 may use ICC_SRE_EL1 */
	msr	s3_4_c12_c9_5, x0
	isb
2:	ldr	x0, =SCTLR_MMU_OFF
	msr	sctlr_el1, x0
	mov	x0, #SPSR_EL1H_DAIF
	msr	spsr_el2, x0
	msr	elr_el2, x30
	eret
	.size aarch64_to_el1, . - aarch64_to_el1

/* Secondary CPUs that enter at _start (and a returning aarch64_start)
 * sleep here.  SMP starts them through PSCI CPU_ON at their own entry
 * point instead (smp_entry.S). */
park:
	wfe
	b	park

/* Entered at EL3 (-M virt,secure=on): say so on the PL011, then exit
 * through semihosting with status 2, or park if that is unavailable. */
el3_unsupported:
	ldr	x1, =VIRT_UART_BASE
	adr	x2, el3_msg
4:	ldrb	w3, [x2], #1
	cbz	w3, 6f
5:	ldr	w4, [x1, #0x18]          /* UARTFR */
	tbnz	w4, #5, 5b               /* TXFF: FIFO full */
	str	w3, [x1]                 /* UARTDR */
	b	4b
6:	mov	x0, #2
	bl	aarch64_exit_status_2
	b	park
el3_msg:
	.asciz	"\r\nstrata: entered at EL3 (secure=on?): unsupported, boot at EL1 or EL2\r\n"
	.balign	4

/* The semihosting exit from a stack-less context: {ADP_Stopped_ApplicationExit, 2}. */
aarch64_exit_status_2:
	adr	x1, exit_block_2
	mov	x0, #0x18                /* SYS_EXIT */
	hlt	#0xf000
	ret
	.balign	8
exit_block_2:
	.quad	0x20026, 2

/*
 * uint64_t aarch64_semihost(uint64_t op, uint64_t arg)
 * One semihosting call: x0 = operation, x1 = argument (usually a pointer to
 * a parameter block), result in x0.  QEMU handles "hlt #0xf000" only when
 * started with -semihosting; otherwise it is an undefined instruction,
 * which traps.c recognises by its address (aarch64_semihost_trap).
 */
	.text
	.global aarch64_semihost
	.global aarch64_semihost_trap
	.type aarch64_semihost, %function
aarch64_semihost:
aarch64_semihost_trap:
	hlt	#0xf000
	ret
	.size aarch64_semihost, . - aarch64_semihost

/* ---- stacks (.noinit: not cleared, see linker.ld) ----
 *
 *   __boot_stack_guard   4 KiB  left unmapped: overflow faults cleanly
 *                       64 KiB  boot stack (grows down)
 *   __boot_stack_top
 *   __exc_stack_guard    4 KiB  unmapped
 *                       16 KiB  exception stack (vectors.S switches to it)
 *   __exc_stack_top
 */
	.section .bss.noinit.stack, "aw", %nobits
	.balign	4096
	.global __boot_stack_guard, __boot_stack_top, __exc_stack_guard, __exc_stack_top
__boot_stack_guard:
	.space	4096
	.space	BOOT_STACK_SIZE
__boot_stack_top:
__exc_stack_guard:
	.space	4096
	.space	EXC_STACK_SIZE
__exc_stack_top:

	.section .note.GNU-stack, "", %progbits

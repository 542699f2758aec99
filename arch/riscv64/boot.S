/*
 * arch/riscv64/boot.S - the first instructions of the riscv64 kernel, the
 * secondary harts' entry, the trap vector and the boot stacks.
 *
 * How OpenSBI (QEMU -M virt -bios default, fw_dynamic) starts us:
 *   - one hart (OpenSBI's boot hart: not always hart 0) jumps to _start,
 *     the ELF entry at 0x80200000, in S-mode; the others stay in OpenSBI's
 *     HSM "stopped" state until SBI hart_start (smp.c);
 *   - a0 = hart id, a1 = the DTB's physical address;
 *   - satp = 0 (no translation), interrupts not enabled, sp undefined.
 *
 * What _start leaves for C (riscv_start in setup.c):
 *   - sie = 0 and sstatus.SIE = 0: no interrupt is ever taken
 *   - sstatus.FS = Initial: the compiler may use f0-f31 (lp64d)
 *   - stvec = riscv_trap_entry (direct mode), so even a fault before the
 *     MMU is on is reported
 *   - .bss zeroed, sp = top of the 64 KiB boot stack (guard page below)
 *   - sscratch = top of this hart's exception stack (the trap entry swaps
 *     it with sp), tp = 0 (the CPU number, arch_cpu_id())
 *   - s0 (fp) = ra = 0: the frame-pointer chain ends at riscv_start
 */
#include "riscv64.h"

	.section .text.boot, "ax"
	.global _start
	.type _start, %function
_start:
	csrw	sie, zero
	csrci	sstatus, SSTATUS_SIE
	/* Hart lottery: only the first hart through here boots.  OpenSBI
	 * should send one hart only, but under load a second one has been
	 * seen here (make soak, riscv64, 2 of 128 boots): it zeroed .bss
	 * under the running kernel.  Any later hart parks, interrupts off;
	 * smp.c's hart_start of it then fails and is reported.  The word is
	 * in .data, which _start does not clear. */
	la	t0, riscv_boot_lottery
	li	t1, 1
	amoadd.w t1, t1, (t0)
	bnez	t1, park
	mv	s1, a0                   /* hart id */
	mv	s2, a1                   /* DTB */
	li	t0, SSTATUS_FS_INITIAL   /* FP on before any compiled code */
	csrs	sstatus, t0
	la	t0, riscv_trap_entry
	csrw	stvec, t0

	/* Clear .bss, 32 bytes a round (both ends page aligned). */
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	sd	zero, 8(t0)
	sd	zero, 16(t0)
	sd	zero, 24(t0)
	addi	t0, t0, 32
	j	1b
2:
	la	sp, __boot_stack_top
	la	t0, __exc_stack_top
	csrw	sscratch, t0
	li	tp, 0                    /* arch_cpu_id() = 0 */
	li	s0, 0                    /* root frame: backtraces stop here */
	li	ra, 0
	mv	a0, s1
	mv	a1, s2
	call	riscv_start              /* never returns */
park:
	wfi
	j	park
	.size _start, . - _start

/*
 * riscv_secondary_entry(a0 = hart id, a1 = struct riscv_hart_boot *):
 * where SBI hart_start puts a secondary hart, in S-mode with satp = 0.
 * Same state as _start leaves, then the boot hart's page tables (satp
 * from the record), this CPU's stacks and number, and
 * riscv_secondary_start(record) in smp.c.  RISC-V memory is coherent
 * with or without translation, so the record is simply read.
 */
	.text
	.global riscv_secondary_entry
	.type riscv_secondary_entry, %function
riscv_secondary_entry:
	csrw	sie, zero
	csrci	sstatus, SSTATUS_SIE
	li	t0, SSTATUS_FS_INITIAL
	csrs	sstatus, t0
	la	t0, riscv_trap_entry
	csrw	stvec, t0
	ld	t0, HB_SATP(a1)
	sfence.vma
	csrw	satp, t0                 /* identity map: the next fetch is the same address */
	sfence.vma
	ld	sp, HB_STACK(a1)
	ld	t0, HB_EXC_STACK(a1)
	csrw	sscratch, t0
	ld	tp, HB_CPU(a1)
	li	s0, 0
	li	ra, 0
	mv	a0, a1
	call	riscv_secondary_start    /* never returns */
3:	wfi
	j	3b
	.size riscv_secondary_entry, . - riscv_secondary_entry

/*
 * riscv_trap_entry - stvec (direct mode: every trap comes here).
 *
 * Switch to this hart's exception stack - so a kernel stack overflow into
 * its guard page can still be reported - save every register there as a
 * struct riscv_regs and call riscv_trap(regs) in traps.c, which prints
 * them and ends in fault_exit(), except for a page fault in strata's guard
 * pool (traps.c): then it returns, and every register, sepc and sstatus
 * come back from the frame (sp last) and sret retries the access.
 *
 * sscratch always holds the top of this hart's exception stack (boot.S,
 * smp.c); one csrrw swaps it with sp without losing a register:
 *
 *   csrrw sp, sscratch, sp    sp = exception stack top, sscratch = old sp
 *   ... save x1, x3-x31, then x2 from sscratch ...
 *   csrw sscratch, top        a trap inside the handler lands here again
 *
 * tp is not touched: it is the CPU number (arch_cpu_id()).
 */
	.balign	4
	.global riscv_trap_entry
	.type riscv_trap_entry, %function
riscv_trap_entry:
	csrrw	sp, sscratch, sp
	addi	sp, sp, -REGS_SIZE
	.irp	n, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
	sd	x\n, REGS_X(\n)(sp)
	.endr
	csrr	t0, sscratch
	sd	t0, REGS_X(2)(sp)
	addi	t0, sp, REGS_SIZE
	csrw	sscratch, t0
	csrr	t0, sepc
	sd	t0, REGS_SEPC(sp)
	csrr	t0, sstatus
	sd	t0, REGS_SSTATUS(sp)
	csrr	t0, scause
	sd	t0, REGS_SCAUSE(sp)
	csrr	t0, stval
	sd	t0, REGS_STVAL(sp)
	mv	a0, sp
	li	s0, 0                    /* the handler is a root frame */
	li	ra, 0
	call	riscv_trap               /* returns only to retry the access */
	ld	t0, REGS_SEPC(sp)
	csrw	sepc, t0
	ld	t0, REGS_SSTATUS(sp)
	csrw	sstatus, t0
	.irp	n, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
	ld	x\n, REGS_X(\n)(sp)
	.endr
	ld	sp, REGS_X(2)(sp)        /* sscratch still holds the stack top */
	sret
	.size riscv_trap_entry, . - riscv_trap_entry

/* ---- stacks (.noinit: not cleared, see linker.ld) ----
 *
 *   __boot_stack_guard   4 KiB  left unmapped: overflow faults cleanly
 *                       64 KiB  boot stack (grows down)
 *   __boot_stack_top
 *   __exc_stack_guard    4 KiB  unmapped
 *                       16 KiB  exception stack (the trap entry switches to it)
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

	.section .data
	.balign 4
	.global riscv_boot_lottery
riscv_boot_lottery:                  /* harts that entered _start */
	.word	0

/*
 * arch/riscv64/cpu.S - the per-CPU hooks strata calls on every fast-path
 * allocation and free (kernel/smp.h, through kernel/mm_glue.c), as bare
 * leaf functions.
 *
 * Written in assembly for one reason: gcc 12 with -fno-omit-frame-pointer
 * gives every RISC-V function a frame record, leaves included (4
 * instructions: addi sp / sd s0 / addi s0 ... ld s0 / addi sp), which
 * more than doubles these one-instruction hooks.  A kmalloc+kfree pair
 * calls them six times: 246 -> 214 instructions under -icount with these
 * (a pfa_alloc+pfa_free pair: 263 -> 243).
 * They cannot fault, so no backtrace ever needs their frames.
 *
 *   arch_cpu_id        tp holds the CPU number (boot.S, smp.c)
 *   arch_irq_save      clear sstatus.SIE, return its old value (SIE bit only)
 *   arch_irq_restore   set SIE again if the saved value had it
 */
#include "riscv64.h"

	.text
	.global arch_cpu_id
	.type arch_cpu_id, %function
arch_cpu_id:
	mv	a0, tp
	ret
	.size arch_cpu_id, . - arch_cpu_id

	.global arch_irq_save
	.type arch_irq_save, %function
arch_irq_save:
	csrrci	a0, sstatus, SSTATUS_SIE
	andi	a0, a0, SSTATUS_SIE
	ret
	.size arch_irq_save, . - arch_irq_save

	/* flags is 0 or SSTATUS_SIE (arch_irq_save's result): csrs of 0 is a no-op */
	.global arch_irq_restore
	.type arch_irq_restore, %function
arch_irq_restore:
	andi	a0, a0, SSTATUS_SIE
	csrs	sstatus, a0
	ret
	.size arch_irq_restore, . - arch_irq_restore

	.section .note.GNU-stack, "", %progbits

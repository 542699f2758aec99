/*
 * arch/riscv64/mm_inline.h - strata's CPU and interrupt hooks, inlined.
 *
 * The kernel's libstrata.a is built with
 * -DMM_PLATFORM_INLINE='"mm_inline.h"' (the Makefile; see
 * strata/platform.h), so kmalloc's and kfree's fast paths read the CPU
 * number and switch interrupts without a call: an out-of-line hook costs
 * the call, the return and the registers the caller must save around it
 * (cpu.S explains why the out-of-line ones are leaf assembly).  These are
 * the same instructions as cpu.S's arch_cpu_id / arch_irq_save /
 * arch_irq_restore, which the rest of the kernel calls.
 *
 *   mm_cpu_id       tp holds this CPU's number (boot.S, smp.c)
 *   mm_irq_save     clear sstatus.SIE, return its old value (SIE bit only)
 *   mm_irq_restore  set SIE again if the saved value had it
 *
 *   mm_platform_spin_wait  a contended strata lock: pause, a little longer
 *                  each time (up to 64 pauses), as kernel/mm_glue.c's
 *
 * mm_cpu_count stays out of line (kernel/mm_glue.c): mm/ never calls it.
 * libstrata.a then needs no hook outside the platform contract
 * (scripts/check-lib).
 */
#ifndef ARCH_RISCV64_MM_INLINE_H
#define ARCH_RISCV64_MM_INLINE_H

#define MM_INLINE_SSTATUS_SIE 2ul   /* riscv64.h's SSTATUS_SIE */

/* Every CPU's number is below SMP_MAX_CPUS (16, kernel/smp.c checks it
 * against MM_MAX_CPUS) from its first instruction on (boot.S, smp.c), so
 * mm_cpu_id() is never "none": strata's fast paths may index their
 * per-CPU tables with it untested (strata/platform.h). */
#define MM_CPU_ID_LIMIT MM_MAX_CPUS

/* The fast paths' caller: the link register as it came in (the fast
 * paths make no call and never save it: scripts/check-fastpath checks
 * the build), without __builtin_return_address's stack slot. */
#ifndef __clang__
/* (clang 14 stores ra and s0 at every function's entry for the frame
 * record -fno-omit-frame-pointer asks for, and may then use ra as a
 * scratch register: its build keeps __builtin_return_address) */
#define MM_FAST_CALLER() ({ void *lr_; __asm__("mv %0, ra" : "=r"(lr_)); lr_; })
#endif

static inline unsigned mm_cpu_id(void)
{
	unsigned long id;

	__asm__ volatile("mv %0, tp" : "=r"(id));
	return (unsigned)id;
}

static inline unsigned long mm_irq_save(void)
{
	unsigned long old;

	__asm__ volatile("csrrci %0, sstatus, %1" : "=r"(old) : "i"(MM_INLINE_SSTATUS_SIE) : "memory");
	return old & MM_INLINE_SSTATUS_SIE;
}

static inline void mm_irq_restore(unsigned long flags)
{
	__asm__ volatile("csrs sstatus, %0" : : "r"(flags & MM_INLINE_SSTATUS_SIE) : "memory");
}

static inline void mm_platform_spin_wait(unsigned spins)
{
	for (unsigned i = 0; i < spins && i < 64; i++)
		__asm__ volatile(".insn i 0x0f, 0, x0, x0, 0x010");   /* pause */
}

unsigned mm_cpu_count(void);

#endif

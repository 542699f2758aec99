/*
 * arch/x86_64/mm_inline.h - strata's CPU and interrupt hooks, inlined.
 *
 * The kernel's libstrata.a is built with
 * -DMM_PLATFORM_INLINE='"mm_inline.h"' (the Makefile; see
 * strata/platform.h), so kmalloc's and kfree's fast paths read the CPU
 * number and switch interrupts without a call: an out-of-line hook costs
 * the call, the return and the registers the caller must save around it
 * (the fast path then needs a frame).  These are the same instructions as
 * arch_cpu_id / arch_irq_save / arch_irq_restore in smp.c, which the rest
 * of the kernel calls.
 *
 *   mm_cpu_id       %gs:0 is this CPU's number (smp.c sets GS's base)
 *   mm_irq_save     RFLAGS, then cli
 *   mm_irq_restore  sti if the saved RFLAGS had IF (bit 9), tested in the asm
 *
 *   mm_platform_spin_wait  a contended strata lock: pause, a little longer
 *                  each time (up to 64 pauses), as kernel/mm_glue.c's
 *
 * mm_cpu_count stays out of line (kernel/mm_glue.c): mm/ never calls it.
 * libstrata.a then needs no hook outside the platform contract
 * (scripts/check-lib).
 */
#ifndef ARCH_X86_64_MM_INLINE_H
#define ARCH_X86_64_MM_INLINE_H

/* Every CPU's number is below SMP_MAX_CPUS (16, kernel/smp.c checks it
 * against MM_MAX_CPUS) from its first instruction on (boot.S, smp.c), so
 * mm_cpu_id() is never "none": strata's fast paths may index their
 * per-CPU tables with it untested (strata/platform.h). */
#define MM_CPU_ID_LIMIT MM_MAX_CPUS

static inline unsigned mm_cpu_id(void)
{
	unsigned id;

	__asm__ volatile("movl %%gs:0, %0" : "=r"(id));
	return id;
}

static inline unsigned long mm_irq_save(void)
{
	unsigned long flags;

	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

static inline void mm_irq_restore(unsigned long flags)
{
	/* the IF test in the asm, where the restore is: written in C, gcc
	 * computes flags & IF early in kmalloc's fast path, and the flags
	 * that clobbers turn the sampling countdown's "subl; js" into a
	 * load, a subtract, a store and a test (3 instructions more) */
	__asm__ volatile("testl $0x200, %k0\n\tjz 1f\n\tsti\n1:" : : "r"(flags) : "memory", "cc");
}

static inline void mm_platform_spin_wait(unsigned spins)
{
	for (unsigned i = 0; i < spins && i < 64; i++)
		__asm__ volatile("pause");
}

unsigned mm_cpu_count(void);

#endif

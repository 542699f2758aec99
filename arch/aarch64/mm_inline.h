/*
 * arch/aarch64/mm_inline.h - strata's CPU and interrupt hooks, inlined.
 *
 * The kernel's libstrata.a is built with
 * -DMM_PLATFORM_INLINE='"mm_inline.h"' (the Makefile; see
 * strata/platform.h), so kmalloc's and kfree's fast paths read the CPU
 * number and mask interrupts without a call: an out-of-line hook costs
 * the call, the return and the registers the caller must save around it.
 * These are the same instructions as arch_cpu_id / arch_irq_save /
 * arch_irq_restore in smp.c, which the rest of the kernel calls.
 *
 *   mm_cpu_id       TPIDR_EL1 holds this CPU's number (boot.S, smp.c)
 *   mm_irq_save     DAIF, then mask IRQ and FIQ (daifset #3)
 *   mm_irq_restore  DAIF back as it was
 *
 *   mm_platform_spin_wait  a contended strata lock: pause, a little longer
 *                  each time (up to 64 pauses), as kernel/mm_glue.c's
 *
 * mm_cpu_count stays out of line (kernel/mm_glue.c): mm/ never calls it.
 * libstrata.a then needs no hook outside the platform contract
 * (scripts/check-lib).
 */
#ifndef ARCH_AARCH64_MM_INLINE_H
#define ARCH_AARCH64_MM_INLINE_H

/* Every CPU's number is below SMP_MAX_CPUS (16, kernel/smp.c checks it
 * against MM_MAX_CPUS) from its first instruction on (boot.S, smp.c), so
 * mm_cpu_id() is never "none": strata's fast paths may index their
 * per-CPU tables with it untested (strata/platform.h). */
#define MM_CPU_ID_LIMIT MM_MAX_CPUS

/* The fast paths' caller: the link register as it came in (the fast
 * paths make no call and never save it: scripts/check-fastpath checks
 * the build), without __builtin_return_address's stack slot and its
 * pointer-authentication strip (xpaclri, which works on x30 only). */
#define MM_FAST_CALLER() ({ void *lr_; __asm__("mov %0, x30" : "=r"(lr_)); lr_; })

static inline unsigned mm_cpu_id(void)
{
	unsigned long id;

	__asm__ volatile("mrs %0, tpidr_el1" : "=r"(id));
	return (unsigned)id;
}

static inline unsigned long mm_irq_save(void)
{
	unsigned long daif;

	__asm__ volatile("mrs %0, daif; msr daifset, #3" : "=r"(daif) : : "memory");
	return daif;
}

static inline void mm_irq_restore(unsigned long flags)
{
	__asm__ volatile("msr daif, %0" : : "r"(flags) : "memory");
}

static inline void mm_platform_spin_wait(unsigned spins)
{
	for (unsigned i = 0; i < spins && i < 64; i++)
		__asm__ volatile("yield");
}

unsigned mm_cpu_count(void);

#endif

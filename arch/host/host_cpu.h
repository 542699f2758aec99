/*
 * arch/host/host_cpu.h - strata's CPU and interrupt hooks for a Linux
 * process, inlined into mm/ (libstrata.so is built with
 * -DMM_PLATFORM_INLINE='"host_cpu.h"', see strata/platform.h).
 *
 * A "CPU" is a thread: each thread that reaches strata's slow path asks
 * mm_platform_cpu_attach() (arch/host/libstrata.c) for a free slot id
 * < MM_MAX_CPUS and keeps it in an initial-exec TLS variable until it
 * exits (a pthread key destructor detaches the slot).  Only its own
 * thread ever uses a slot, so "interrupts off" needs nothing: signal
 * handlers must not call malloc anyway.
 *
 * A thread without a slot (before its first slow path, after it began to
 * exit, or the 65th thread alive) has MM_MAX_CPUS, not MM_CPU_NONE, so
 * the id is never above MM_MAX_CPUS and strata's fast paths index their
 * per-CPU tables without testing it (MM_CPU_ID_LIMIT, strata/platform.h):
 * the "no CPU" entry there is always empty, and the slow path attaches.
 */
#ifndef ARCH_HOST_CPU_H
#define ARCH_HOST_CPU_H
#include <sched.h>   /* sched_yield */

extern __thread unsigned host_cpu_slot
	__attribute__((tls_model("initial-exec"), visibility("hidden")));
#define HOST_NO_SLOT MM_MAX_CPUS
#define MM_CPU_ID_LIMIT MM_MAX_CPUS

static inline unsigned mm_cpu_id(void)
{
	return host_cpu_slot;
}

static inline unsigned mm_cpu_count(void)
{
	return MM_MAX_CPUS;
}

static inline unsigned long mm_irq_save(void)
{
	return 0;
}

static inline void mm_irq_restore(unsigned long flags)
{
	(void)flags;
}

/* A strata lock is held by another thread.  Pause the core; after 64
 * looks the holder has most likely been preempted (more threads than
 * cores), so give the CPU away instead of burning the time slice the
 * holder needs to finish. */
static inline void mm_platform_spin_wait(unsigned spins)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
	if (spins > 64)
		sched_yield();
}

#endif

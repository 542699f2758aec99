/*
 * strata/spinlock.h - a test-and-test-and-set spinlock on C11 atomics,
 * interrupt-safe through the platform's mm_irq_save()/mm_irq_restore().
 *
 * <stdatomic.h> is one of the freestanding headers, so this works in any
 * kernel on any architecture the compiler supports.  Acquire on lock,
 * release on unlock: everything written inside the critical section is
 * visible to the next holder.
 *
 * Interrupts are off while a strata lock is held (otherwise an interrupt
 * handler calling kmalloc on the same CPU would spin forever on a lock its
 * own CPU holds).  The interrupt state saved on entry is kept in the lock
 * itself: only the holder touches it, and it makes lock/unlock one call
 * each at every site.  Nested strata locks save "off" and restore "off".
 *
 * Every strata lock carries its level in the lock order (mm/lock_order.h
 * is the one place that order is written; 0 = not ordered, for locks of
 * other code).  Built with -DMM_LOCKDEP=1 (the host tests are), taking a
 * lock while holding one of a lower level is reported (mm/lockdep.c); the
 * level fits in padding, so the lock stays 16 bytes and release builds
 * run exactly the code they ran before.
 *
 * Waiting politely: a CPU that finds the lock held reads it (no writes,
 * so the holder's cache line stays put) and calls the platform's
 * mm_platform_spin_wait(spins) between reads, spins = 1, 2, 3, ... for
 * this acquisition.  The platform pauses the core (x86 PAUSE, Arm YIELD,
 * RISC-V PAUSE), backing off longer as spins grows; where the holder can
 * be preempted while it holds the lock (a thread of a Linux process) it
 * also gives the CPU away after a while, so a waiter does not burn the
 * holder's time slice.  The uncontended path never calls it.
 */
#ifndef STRATA_SPINLOCK_H
#define STRATA_SPINLOCK_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdatomic.h>
#include <strata/platform.h>

typedef struct {
	atomic_uint locked;
	unsigned char level;      /* place in the lock order; 0: unordered */
	unsigned long irqflags;   /* holder's saved interrupt state */
} mm_spinlock_t;

#define MM_SPINLOCK_INIT { 0, 0, 0 }
#define MM_SPINLOCK_INIT_LEVEL(lv) { 0, (lv), 0 }

#ifndef MM_LOCKDEP
#define MM_LOCKDEP 0
#endif
#if MM_LOCKDEP
void mm_lockdep_acquire(const mm_spinlock_t *l, int trylock);
void mm_lockdep_release(const mm_spinlock_t *l);
#else
#define mm_lockdep_acquire(l, t) ((void)0)
#define mm_lockdep_release(l) ((void)0)
#endif

static inline void mm_spin_init(mm_spinlock_t *l, unsigned level)
{
	atomic_store_explicit(&l->locked, 0, memory_order_relaxed);
	l->level = (unsigned char)level;
	l->irqflags = 0;
}

static inline void mm_spin_lock(mm_spinlock_t *l)
{
	unsigned long f = mm_irq_save();

	mm_lockdep_acquire(l, 0);    /* before spinning: a deadlock is reported */
	unsigned spins = 0;
	while (atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) {
		do
			mm_platform_spin_wait(++spins);
		while (atomic_load_explicit(&l->locked, memory_order_relaxed));
	}
	l->irqflags = f;
}

static inline int mm_spin_trylock(mm_spinlock_t *l)
{
	unsigned long f = mm_irq_save();

	if (!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) {
		l->irqflags = f;
		mm_lockdep_acquire(l, 1);
		return 1;
	}
	mm_irq_restore(f);
	return 0;
}

static inline void mm_spin_unlock(mm_spinlock_t *l)
{
	unsigned long f = l->irqflags;

	mm_lockdep_release(l);
	atomic_store_explicit(&l->locked, 0, memory_order_release);
	mm_irq_restore(f);
}

#endif

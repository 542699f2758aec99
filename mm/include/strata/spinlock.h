/*
 * strata/spinlock.h - a test-and-test-and-set spinlock on C11 atomics.
 *
 * <stdatomic.h> is one of the freestanding headers, so this works in any
 * kernel on any architecture the compiler supports.  Acquire on lock,
 * release on unlock: everything written inside the critical section is
 * visible to the next holder.
 */
#ifndef STRATA_SPINLOCK_H
#define STRATA_SPINLOCK_H

#include <stdatomic.h>

typedef struct {
	atomic_uint locked;
} mm_spinlock_t;

#define MM_SPINLOCK_INIT { 0 }

static inline void mm_spin_lock(mm_spinlock_t *l)
{
	for (;;) {
		if (!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire))
			return;
		while (atomic_load_explicit(&l->locked, memory_order_relaxed))
			;
	}
}

static inline int mm_spin_trylock(mm_spinlock_t *l)
{
	return !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}

static inline void mm_spin_unlock(mm_spinlock_t *l)
{
	atomic_store_explicit(&l->locked, 0, memory_order_release);
}

#endif

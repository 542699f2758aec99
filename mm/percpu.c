/*
 * percpu.c - per-CPU caches (see strata/percpu.h).
 */
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#include "kmalloc_internal.h"
#include "pfa_internal.h"

void mm_cpu_drain(void)
{
}

void mm_cpu_detach(unsigned cpu)
{
	(void)cpu;
}

uint64_t mm_reclaim(void)
{
	return kmalloc_trim();
}

void mm_percpu_enable(int on)
{
	(void)on;
}

/* Lock order: km.lock, then the PFA's lock. */
void mm_lock_all(void)
{
	mm_spin_lock(&km.lock);
	mm_spin_lock(&pfa.lock);
}

void mm_unlock_all(void)
{
	mm_spin_unlock(&pfa.lock);
	mm_spin_unlock(&km.lock);
}

/*
 * lockdep.c - base layer: a small lock validator (after Linux's lockdep,
 * at the granularity of levels).  Only built into -DMM_LOCKDEP=1 builds;
 * strata/spinlock.h calls it on every lock and unlock of a strata lock.
 *
 *   CPU n:  held[n].count[level]   how many locks of each level it holds
 *           held[n].mask           bit `level` set while count > 0
 *
 *   mm_spin_lock(l):  any lock held of a level BELOW l->level?
 *                        yes -> mm_report_lock_order(): the order written in
 *                               mm/lock_order.h is broken (a deadlock waiting
 *                               for the other CPU that takes them the right
 *                               way round); reported before spinning
 *                     count it as held
 *
 * Trylocks are counted but not checked (they cannot deadlock).  Locks of
 * level 0 (other code's) and contexts without a CPU id are not tracked.
 * Interrupts are off while a strata lock is held, so a CPU's entry is
 * only ever touched by that CPU.
 */
#include <strata/platform.h>
#include <strata/spinlock.h>

#include "lock_order.h"
#include "report.h"
#include "util.h"

#if MM_LOCKDEP
static struct {
	unsigned mask;
	unsigned short count[MM_LOCK_LEVELS];
} held[MM_MAX_CPUS];

void mm_lockdep_acquire(const mm_spinlock_t *l, int trylock)
{
	unsigned lv = l->level, cpu = mm_cpu_id();

	if (lv == 0 || lv >= MM_LOCK_LEVELS || cpu >= MM_MAX_CPUS)
		return;
	unsigned below = held[cpu].mask & ((1u << lv) - 1);
	if (!trylock && below)
		mm_report_lock_order(l, lv, mm_ctz32(below));
	held[cpu].count[lv]++;
	held[cpu].mask |= 1u << lv;
}

void mm_lockdep_release(const mm_spinlock_t *l)
{
	unsigned lv = l->level, cpu = mm_cpu_id();

	if (lv == 0 || lv >= MM_LOCK_LEVELS || cpu >= MM_MAX_CPUS || !held[cpu].count[lv])
		return;
	if (--held[cpu].count[lv] == 0)
		held[cpu].mask &= ~(1u << lv);
}
#endif

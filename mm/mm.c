/*
 * mm.c - base layer: the whole-allocator operations, over the layers that
 * registered themselves (mm/layer.h).
 *
 *   registered (top first):  debug  trace  caches  per-CPU  pools  pfa
 *                               |      |      |       |       |     |
 *   mm_reclaim()     trim:  quarantine    empty slabs, magazines, parked
 *                           flushed       depots flushed, pools, spare arena,
 *                                         run cache -> pages back to the PFA
 *   mm_lock_all()    lock:  every lock, in THE order (mm/lock_order.h)
 *   mm_unlock_all()  unlock: the reverse
 *   mm_check_all()   check: every layer's own consistency check
 *   mm_cpu_detach()  cpu_detach: that CPU's magazines given back
 *
 * Each walk goes top down, so a layer's hook runs after the layers above
 * it have given back what they took from it (a cache's empty slab frees
 * its pages before the pools are trimmed).  Nothing here names a layer:
 * a kernel that links only the pages and kmalloc links no cache, debug or
 * trace code.
 */
#include <strata/debug.h>
#include <strata/percpu.h>
#include <strata/spinlock.h>

#include "layer.h"
#include "lock_order.h"

static struct mm_layer *layers;      /* by level, highest first */
static mm_spinlock_t reg_lock = MM_SPINLOCK_INIT;

#if defined(MM_PATH_TAGS) && MM_PATH_TAGS
unsigned mm_path_tags, mm_path_pool_returns;   /* util.h, MM_PATH() */
#endif

void mm_layer_register(struct mm_layer *l)
{
	mm_spin_lock(&reg_lock);
	struct mm_layer **at = &layers;
	for (struct mm_layer *x = layers; x; x = x->next)
		if (x == l) {
			mm_spin_unlock(&reg_lock);
			return;
		}
	while (*at && (*at)->level >= l->level)
		at = &(*at)->next;
	l->next = *at;
	__atomic_store_n(at, l, __ATOMIC_RELEASE);   /* walkers take no lock */
	mm_spin_unlock(&reg_lock);
}

static struct mm_layer *first(void)
{
	return __atomic_load_n(&layers, __ATOMIC_ACQUIRE);
}

uint64_t mm_reclaim(void)
{
	uint64_t pages = 0;

	for (struct mm_layer *l = first(); l; l = l->next)
		if (l->trim)
			pages += l->trim();
	return pages;
}

void mm_lock_all(void)
{
	for (struct mm_layer *l = first(); l; l = l->next)
		if (l->lock)
			l->lock();
}

/* The reverse order; the list is short (at most a dozen layers). */
static void unlock_from(struct mm_layer *l)
{
	if (!l)
		return;
	unlock_from(l->next);
	if (l->unlock)
		l->unlock();
}

void mm_unlock_all(void)
{
	unlock_from(first());
}

int mm_check_all(void)
{
	int problems = 0;

	for (struct mm_layer *l = first(); l; l = l->next)
		if (l->check)
			problems += l->check();
	return problems;
}

void mm_cpu_detach(unsigned cpu)
{
	if (cpu >= MM_MAX_CPUS)
		return;
	for (struct mm_layer *l = first(); l; l = l->next)
		if (l->cpu_detach)
			l->cpu_detach(cpu);
}

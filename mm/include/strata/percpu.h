/*
 * strata/percpu.h - per-CPU caches in front of every kmalloc size class
 * and every kmem_cache, and what a kernel calls to manage them.
 *
 *   kmalloc(n) / kmem_cache_alloc(c)
 *        |
 *        v            interrupts off (mm_irq_save), cpu = mm_cpu_id()
 *   [ CPU's loaded magazine ]--empty--> swap with its previous magazine
 *        | pop (no lock, no atomic)      or exchange with the depot (lock)
 *        v                               or fill from the pools (lock)
 *       obj
 *
 * A magazine is a small stack of free objects (Bonwick, 2001).  Each CPU
 * holds two per size class / cache; the depot of each class holds full
 * and empty ones.  Objects in magazines count as allocated to the pool
 * layer below; they return to their owner pools when magazines are
 * flushed (depot too full, mm_reclaim, kmem_cache_shrink, CPU detach).
 *
 * Who may call what:
 *   mm_cpu_drain()       on the CPU whose caches are drained
 *   mm_cpu_detach(cpu)   for a context that will never run again with that
 *                        id (hosted build: thread exit; kernel: CPU offline)
 *   mm_reclaim()         anywhere: drains the calling CPU, flushes every
 *                        depot, empties free slabs and trims arenas.  Other
 *                        CPUs' two magazines per class stay where they are
 *                        until those CPUs call mm_cpu_drain().
 */
#ifndef STRATA_PERCPU_H
#define STRATA_PERCPU_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdint.h>

void mm_cpu_drain(void);
void mm_cpu_detach(unsigned cpu);

/* Returns the number of pages given back to the PFA. */
uint64_t mm_reclaim(void);

/* Take every strata lock (in lock order) and release them: a hosted
 * process calls these around fork() so the child never inherits a lock
 * held halfway through an update. */
void mm_lock_all(void);
void mm_unlock_all(void);

/* Turn the per-CPU layer off (everything then takes the locked path) or
 * back on; used by debug modes and by measurements.  Call before the
 * CPUs start allocating. */
void mm_percpu_enable(int on);

#endif

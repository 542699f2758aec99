/*
 * lock_order.h - THE lock order of strata, written once.
 *
 * A CPU holding a strata lock may take another only if the new one has a
 * LOWER level (or the same level: mm_lock_all takes all the locks of one
 * level in one fixed order, and no other path holds two of one level).
 * Levels follow the layers (mm/LAYERS): an upper layer holds its lock
 * while calling down, never the other way round, so the order is simply
 * "top layer first".  mm_lock_all() (mm/mm.c) walks the registered layers
 * in this order; a -DMM_LOCKDEP=1 build checks every acquisition against
 * it (mm/lockdep.c) and reports the first lock taken out of order.
 *
 *   level  lock                     owner           protects
 *   -----  -----------------------  --------------  -------------------------
 *    12    dbg.lock                 debug.c         live list, quarantine
 *    11    tr.lock                  trace.c         the trace table
 *    10    caches_lock              slab.c          the list of caches
 *     9    c->depot.lock            slab.c (cache)  a cache's magazine depot
 *     8    c->lock                  slab.c (cache)  a cache's slabs
 *     6    depot[c].lock            percpu.c        a size class's depot
 *     4    pools.lock               pool.c          pools, arenas, large runs
 *     3    guard.lock               guard.c         the guarded slots, their FIFO
 *     2    pfa.lock                 pfa.c           the buddy lists
 *     1    report lock              report.c        the last reports
 *
 * The report lock is innermost: a report may be made with any lock held.
 */
#ifndef MM_LOCK_ORDER_H
#define MM_LOCK_ORDER_H

enum mm_lock_level {
	MM_LOCK_UNORDERED = 0,
	MM_LOCK_REPORT    = 1,
	MM_LOCK_PFA       = 2,
	MM_LOCK_GUARD     = 3,
	MM_LOCK_POOLS     = 4,
	MM_LOCK_DEPOT     = 6,
	MM_LOCK_CACHE     = 8,
	MM_LOCK_CACHE_DEPOT = 9,
	MM_LOCK_CACHES    = 10,
	MM_LOCK_TRACE     = 11,
	MM_LOCK_DEBUG     = 12,
	MM_LOCK_LEVELS    = 16
};

#endif

/*
 * report.h - base layer: the one sink every layer's reports go through
 * (mm/report.c).  Three kinds, one lock (the innermost, lock_order.h):
 *
 *   mm_report_pointer()   a bad pointer or a failed request of the public
 *                         calls (kmalloc, kfree, kmem_cache_*): one log line
 *                         for a bad pointer, none for a failure; kept for
 *                         kmalloc_last_report()
 *   mm_report_bug()       a bug found in the heap (debug mode's red zones and
 *                         poison, a corrupted free list, a cache's damaged
 *                         object): a multi-line report with a hex dump, kept
 *                         for mm_debug_last_report(), then a panic unless
 *                         mm_debug_set_panic(0) / ",continue"
 *   mm_report_lock_order() a lock taken out of order (lockdep builds)
 *
 * Nothing here knows a layer above it: the callers fill in the records.
 */
#ifndef MM_REPORT_H
#define MM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/spinlock.h>

void mm_report_pointer(enum kmalloc_report_kind kind, const char *op, const void *ptr,
		       size_t size, void *caller, unsigned owner);
/* Bad pointers and failed requests reported so far. */
void mm_report_counts(uint64_t *bad_pointers, uint64_t *failures);
/* kmalloc_init(): forget the kmalloc reports and their counts. */
void mm_report_reset(void);

/* r->kind, ptr and whatever else is known; the dump is filled in here. */
void mm_report_bug(struct mm_bug_report *r);
/* A bad pointer given to kfree, krealloc or kmalloc_usable_size (`op`)
 * while debug mode is on (after the mm_report_pointer line): as a bug,
 * so a debug run stops at it. */
void mm_report_bad_call(enum kmalloc_report_kind why, const char *op, const void *p,
			void *caller);
/* A free-list link of pool `pool` (class size `size`) at block b decodes
 * to `next`, outside the pool (the pool layer's hardening). */
void mm_report_freelist(const void *pool, size_t size, const void *b, const void *next);

/* A per-CPU magazine of class size `size` held b, which is not a block
 * freed into it (no magazine mark: the magazine layer's hardening). */
void mm_report_magazine(size_t size, const void *b);

/* lockdep.c: lock l (level `level`) taken while holding a lock of level
 * `held` below it. */
void mm_report_lock_order(const mm_spinlock_t *l, unsigned level, unsigned held);
/* Lock-order reports so far (the test of lockdep reads it). */
uint64_t mm_lockdep_reports(void);

#endif

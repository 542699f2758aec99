/*
 * large.h - the large-run layer (level +1, on the PFA): requests over
 * KMALLOC_SMALL_MAX as runs of whole pages, and a small cache of freed
 * runs (mm/large.c has the pictures and the measurements).
 *
 * Its state is private to large.c.  Callers hold the object allocator's
 * lock (pools.lock, pool.h) around every call but large_init(): the front
 * end takes that one lock for pools and runs alike.
 */
#ifndef MM_LARGE_H
#define MM_LARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#include "util.h"

#define KM_LARGE_CACHE_RUNS 256  /* freed runs kept for reuse */
#define KM_LARGE_CACHE_MAX_BYTES (8u << 20)  /* always allowed: this much, and */
#define KM_LARGE_CACHE_RAM_SHIFT 4            /* at most RAM / 16 of it; */
#define KM_LARGE_CACHE_LIVE_SHIFT 0           /* more: up to the live runs' pages */
#define KM_LARGE_CACHE_CEIL_SHIFT 2           /* ... but never above RAM / 4 */
#define KM_LARGE_DECAY_OPS 256   /* a run cached this many large calls ago leaves */
#define KM_LARGE_EVICT_PER_CALL 2 /* a put evicts at most this many runs, */
#ifndef KM_LARGE_PRESSURE_RUNS     /* a failed PFA call at most this many */
#define KM_LARGE_PRESSURE_RUNS 8  /* (0 where a failure grows the heap: libstrata), */
#endif
#define KM_LARGE_RUN_BLOCKS 64    /* and a cached run has at most this many blocks */

/* Pages of a large run for `size` bytes (at least one). */
static inline uint64_t km_pages_for(size_t size)
{
	return size ? ((uint64_t)size + PAGE_SIZE - 1) >> PAGE_SHIFT : 1;
}

struct large_stats {
	uint64_t runs, pages, requested;   /* runs handed out */
	uint64_t cached_pages;             /* pages in the run cache */
	uint64_t pfa_allocs, pfa_frees;
	uint64_t cached_runs;              /* runs in the run cache */
	uint64_t evicted, decayed;         /* runs given back: all, by age */
	uint64_t joined, pressed, grown;   /* runs glued to a neighbour; failed PFA
					      calls that evicted; runs grown in place */
};

/* Forget every run; the run cache may always hold total_pages / 16 (at
 * most 8 MiB), and as much as the live runs' pages up to RAM / 4. */
void large_init(uint64_t total_pages);
void *large_alloc(size_t size, size_t align, int *why);
void large_free(void *p, struct page *pg);
size_t large_usable(const struct page *pg);
/* Resize in place; true on success (the run then has the new size).  A
 * shrink always succeeds. */
bool large_resize(void *p, struct page *pg, size_t size);
/* The same, without the object allocator's lock, when the run keeps its
 * page count; false (nothing done) otherwise. */
bool large_resize_within(struct page *pg, size_t size);
bool large_is_continuation(const struct page *head);
uint64_t large_cache_flush(void);   /* pages given back */
/* Memory pressure (a failed PFA call): the oldest KM_LARGE_PRESSURE_RUNS
 * cached runs at most go back; true if any did (worth a retry). */
bool large_cache_shed(void);
bool large_is_cached(const struct page *head);
void large_get_stats(struct large_stats *st);

#endif

/*
 * arena.h - the arena layer (level +2, below the pools): 1 MiB PFA blocks
 * cut into pools of one size each: 16 KiB pools for the small classes,
 * 32..512 KiB for the medium ones (mm/arena.c explains the buckets and
 * the spare).
 *
 * Its state, struct arena_state, is written only by arena.c, under the
 * pool lock (pools.lock, pool.h) that every caller holds.  Two fields are
 * read without it: an arena's nextpool and carved_end (kfree's fast
 * paths), with relaxed atomics.  Which pools of an arena
 * are parked on the class lists is the pool layer's business (pool.c);
 * this layer never looks at the class lists.
 */
#ifndef MM_ARENA_H
#define MM_ARENA_H

#include "obj_layout.h"

struct arena_state {
	/* per pool kind (all pools of an arena have one size), by nfreepools */
	struct km_arena *bucket[KM_KINDS][KM_ARENA_POOLS + 1];
	uint64_t bucket_map[KM_KINDS][KM_BUCKET_WORDS]; /* bit k: bucket[.][k] != NULL */
	struct km_arena *all;                         /* every arena */
	struct km_arena *spare;                       /* one empty arena kept back */
	uint64_t allocated_total, reclaimed_total;
	uint64_t current, highwater;
	uint64_t pfa_allocs, pfa_frees;
};
extern struct arena_state arenas;

/* Is pool i of a carved and serving a class (its descriptors say so)? */
static inline bool arena_pool_in_use(const struct km_arena *a, unsigned i)
{
	if (i >= a->nextpool)
		return false;
	const struct page *pg = pfa_virt_to_page(km_pool_at(a, i));
	return pg && pg->cls != 0;
}

void arena_init(void);
/* An empty pool of 2^(KM_POOL_SHIFT + kind) bytes (index and arena set,
 * next/prev NULL), or NULL. */
struct km_pool *arena_take_pool(unsigned kind);
/* p serves no class any more: back on its arena's free-pool list. */
void arena_put_pool(struct km_pool *p);
/* Every pool of a is free or about to be put back: a becomes the spare
 * (keep) or goes back to the PFA.  Pages given back. */
uint64_t arena_retire(struct km_arena *a, bool keep);
/* Is there a spare arena other than a? */
bool arena_spare_other_than(const struct km_arena *a);
uint64_t arena_release_spare(void);
/* Record in the page descriptors whether pool p holds blocks. */
void arena_mark_pool(struct km_pool *p, bool in_use);

#endif

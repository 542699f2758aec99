/*
 * magazine.h - per-CPU magazines and their depot (Bonwick & Adams,
 * "Magazines and Vmem", USENIX 2001), shared by the kmalloc size classes
 * (mm/percpu.c) and the kmem caches (mm/slab.c).  It needs only the base
 * layer: everything else comes through the ops its clients pass.
 *
 *     CPU 0                     CPU 1                depot (one per class/cache)
 *   +--------+--------+       +--------+--------+    +------------------------+
 *   | loaded |  prev  |       | loaded |  prev  |    | full:  [m]->[m]->...   |
 *   +---|----+---|----+       +--------+--------+    | empty: [m]->...        |
 *       v        v                                   | lock                   |
 *   [obj obj obj ...  ]  a magazine: a stack of up   +-----------|------------+
 *                        to `cap` free objects                   | too full / empty
 *                                                                v
 *                                           the layer below: pools (kmalloc)
 *                                           or slabs (kmem caches), locked
 *
 * alloc: pop from loaded (fast path: no lock, no atomic; interrupts off so
 *        nothing else runs on this CPU);  loaded empty -> swap with prev if
 *        prev has objects -> else trade loaded for a full one from the
 *        depot -> else fill loaded from the layer below in one locked batch.
 * free:  push on loaded;  loaded full -> swap with prev if prev has room ->
 *        else prev goes to the depot's full list, an empty magazine from the
 *        depot becomes loaded.  A depot that already holds max_full full
 *        magazines takes none: the top `trim` (MAG_TRIM) objects of prev go
 *        back to the layer below and prev, now with room, becomes loaded,
 *        so one free hands at most MAG_TRIM objects below, never a whole
 *        magazine.  Each trade with the depot is one hold of its lock,
 *        and the CPU's slot changes in that same hold (a fork, which
 *        holds every lock, never finds a magazine in a slot and on the
 *        depot's list: mm/magazine.c, slot_drain).
 *
 * Each CPU slot starts with both magazines pointing at mag_none, a shared
 * read-only magazine with count 0 and cap 0: the fast paths need no NULL
 * test, they simply find it empty (alloc) or full (free) and go slow.
 *
 * The layer is generic: it knows neither pools nor slabs.  Its client
 * passes an ops table with the layer below (fill, flush) and where
 * magazines come from (mag_new, mag_delete: the per-CPU layer's pool
 * blocks for both kmalloc classes and kmem caches, mm/percpu.c).  A
 * depot's lock is taken before the client's lock (mm/lock_order.h).
 */
#ifndef MM_MAGAZINE_H
#define MM_MAGAZINE_H

#include <stdbool.h>
#include <stdint.h>
#include <strata/spinlock.h>

#include "util.h"

#define MAG_MAX 30     /* 16-byte header + 30 pointers = one 256-byte block */
#define MAG_TRIM 8     /* objects a free hands below when the depot is full */
#define MAG_FILL 4     /* objects an allocation takes from below at most: a fill of
                          four fits in about 300 instructions (README, Worst case) */

struct mm_mag {
	struct mm_mag *next;
	uint32_t count;    /* objects in obj[0 .. count) */
	uint32_t cap;      /* objects it may hold; 0 only for mag_none */
	void *obj[MAG_MAX];
};

struct mm_cpu_slot {
	struct mm_mag *loaded, *prev;
};

struct mm_depot;
struct mm_depot_ops {
	/* Take up to n objects from the layer below into obj[]; how many. */
	unsigned (*fill)(struct mm_depot *d, void **obj, unsigned n);
	/* Give n objects back to the layer below. */
	void (*flush)(struct mm_depot *d, void **obj, unsigned n);
	/* A magazine's memory (sizeof(struct mm_mag)), or NULL; and back. */
	struct mm_mag *(*mag_new)(void *owner);
	void (*mag_delete)(void *owner, struct mm_mag *m);
};

struct mm_depot {
	mm_spinlock_t lock;
	struct mm_mag *full, *empty;   /* empty ones: count 0, cap `cap` */
	unsigned nfull, nempty;
	unsigned cap;              /* objects per magazine of this depot */
	unsigned max_full;         /* full magazines kept before flushing */
	unsigned trim;             /* min(cap, MAG_TRIM), or less if the client sets it
	                              after depot_init: one free's batch below */
	unsigned fill;             /* min((cap + 1) / 2, MAG_FILL), or less (as trim) */
	const struct mm_depot_ops *ops;
	void *owner;               /* the class index / kmem_cache, for ops */
	/* statistics (under lock; fills: atomic, counted without it) */
	uint64_t fills, flushes, exchanges;
};

extern struct mm_mag mag_none;

/* The depot's lock gets level `lock_level` (mm/lock_order.h). */
void depot_init(struct mm_depot *d, unsigned cap, unsigned max_full,
		const struct mm_depot_ops *ops, void *owner, unsigned lock_level);

/* An empty slot: both magazines the shared empty one. Inline, because a
 * new per-CPU area initialises KMALLOC_MAX_CLASSES of them in a row (on
 * the first kmalloc after every mm_reclaim): a call each was a third of
 * that call's cost. */
static inline void slot_init(struct mm_cpu_slot *s)
{
	s->loaded = s->prev = &mag_none;
}

/* Slow paths; interrupts off, s is the calling CPU's slot. */
void *mag_alloc_slow(struct mm_cpu_slot *s, struct mm_depot *d);
bool mag_free_slow(struct mm_cpu_slot *s, struct mm_depot *d, void *obj);

/* Give every object of slot s back (s's CPU is the caller, or will never
 * run again), leaving s at mag_none.  Then depot_flush() empties the
 * depot: objects to the layer below, magazines freed. */
void slot_drain(struct mm_cpu_slot *s, struct mm_depot *d);

/* For a section whose frees and allocations must not make magazines
 * (kmalloc_reserve): both of slot s's magazines real, and the depot's
 * stack of empty ones full (max_full + 2).  Then a magazine is always
 * to be had without mag_new: at most 2 + max_full are ever loaded or
 * full, and 4 + max_full exist.  false: no memory for them. */
bool slot_stock(struct mm_cpu_slot *s, struct mm_depot *d);
void depot_flush(struct mm_depot *d);

/* Objects held in the depot (full magazines). */
uint64_t depot_objects(struct mm_depot *d);

/* Fast paths (interrupts off).  mag_take: the top object of a magazine
 * the caller saw non-empty (m->count != 0), so the fast path tests the
 * count once and not the object again. */
static inline void *mag_take(struct mm_mag *m)
{
	uint32_t n = m->count - 1;

	m->count = n;
	return m->obj[n];
}

static inline void *mag_pop(struct mm_mag *m)
{
	uint32_t n = m->count;

	if (mm_unlikely(n == 0))
		return (void *)0;
	m->count = --n;
	return m->obj[n];
}

static inline bool mag_push(struct mm_mag *m, void *obj)
{
	uint32_t n = m->count;

	if (mm_unlikely(n >= m->cap))
		return false;
	m->obj[n] = obj;
	m->count = n + 1;
	return true;
}

#endif

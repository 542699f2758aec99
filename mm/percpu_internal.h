/*
 * percpu_internal.h - the per-CPU layer (above the pools, below the
 * kmalloc front end): one magazine slot per size class per CPU, and a
 * depot per class (mm/percpu.c; the magazines themselves: magazine.h).
 *
 * km_pcpu[] is written only by percpu.c.  The front end's fast paths read
 * it, with interrupts off, to pop from or push to the calling CPU's loaded
 * magazine (mag_pop / mag_push) without a call: that is this layer's
 * declared inline interface.  Everything else goes through the calls
 * below.  A CPU without an area (yet, or drained) has PCPU_NONE there,
 * never NULL, so the fast paths test no pointer; so has the extra entry
 * for "no CPU" that a platform bounding its ids gets (MM_CPU_ID_LIMIT,
 * MM_CPU_SLOTS: strata/platform.h), never written.
 */
#ifndef MM_PERCPU_INTERNAL_H
#define MM_PERCPU_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/platform.h>

#include "magazine.h"
#include "obj_layout.h"

struct km_pcpu {
	struct mm_cpu_slot slot[KMALLOC_MAX_CLASSES];
	int32_t sample_left;     /* kmallocs before the next sampled one (kmalloc.c) */
	uint64_t sample_rng;     /* its random generator (mm/guard.c), 0: unseeded */
};
extern struct km_pcpu *km_pcpu[MM_CPU_SLOTS] MM_INTERNAL;   /* "no CPU": PCPU_NONE */

/* The stand-in area of every CPU that has none: each slot's magazines are
 * mag_none (count 0, cap 0), so a fast path finds it empty (kmalloc) or
 * full (kfree) and takes its slow path, which tests for PCPU_NONE; read
 * only (never written: it is const). */
extern const struct km_pcpu pcpu_none;
#define PCPU_NONE ((struct km_pcpu *)&pcpu_none)

/* The area of CPU id `cpu` as mm_cpu_id() gave it (PCPU_NONE for "no
 * CPU"), interrupts off.  The fast paths index km_pcpu[] inline instead,
 * inside their own mm_cpu_indexable() test. */
static inline struct km_pcpu *pcpu_area(unsigned cpu)
{
	return mm_cpu_indexable(cpu) ? km_pcpu[cpu] : PCPU_NONE;
}

/* Slow paths with interrupts handled inside; NULL / false when this
 * context has no per-CPU cache (the caller then takes the locked path). */
void *pcpu_alloc(unsigned c);
bool pcpu_free(unsigned c, void *b);
/* The same slow paths for kmalloc's and kfree's fast paths, which found
 * the loaded magazine of class c empty (full) on the calling CPU's area
 * pc, interrupts still off (the caller restores them).  NULL / false:
 * the layer is off, pc is PCPU_NONE, or no memory (the caller takes the
 * locked path). */
void *pcpu_alloc_empty(struct km_pcpu *pc, unsigned c);
bool pcpu_free_full(struct km_pcpu *pc, unsigned c, void *b);

/* Is b, just popped from a magazine, a block put there?  Every block in
 * a magazine carries km_mag_mark(); an entry that does not (a magazine
 * overwritten by an overflow from the block before it, a forged entry)
 * is reported by pcpu_entry_corrupt() and dropped, never handed out. */
static inline bool pcpu_entry_ok(const struct km_block *b)
{
	return !KM_HARDEN || b->mark == km_mag_mark(b);
}
void pcpu_entry_corrupt(unsigned c, const struct km_block *b);
/* After pool_init_all(): depots sized for the classes; registers the
 * layer (mm/layer.h: trim, lock, CPU detach). */
void pcpu_init(void);
uint64_t pcpu_cached_blocks(unsigned c);   /* in depots (not CPUs) */
/* kmalloc_reserve(): the calling CPU's area and its magazines of class c
 * made now (slot_stock), so the section makes none; *cached: how many
 * blocks of c this CPU's magazines and the depot may hold (taken from
 * the pools but not live).  false: no memory. */
bool pcpu_reserve(unsigned c, unsigned *cached);
/* strata's own blocks (per-CPU areas, magazines): bytes and count;
 * pools.lock held. */
void pcpu_internal_usage(uint64_t *bytes, uint64_t *blocks);

/* Magazine memory for any depot (the kmem caches' too): blocks of the
 * pools taken on the locked path, counted as internal. */
struct mm_mag *pcpu_mag_new(void *owner);
void pcpu_mag_delete(void *owner, struct mm_mag *m);

#endif

/*
 * kmalloc_fast.h - kmalloc's and kfree's fast paths, inline, for the
 * front end (mm/kmalloc.c: kmalloc, kfree and their _caller forms) and
 * for the wrappers above it that are called as often (mm/malloc_std.c:
 * malloc, free), so that malloc's and free's common case is one function
 * with no call in it, not a call to kmalloc_caller (kfree_caller) with
 * its result tested after.
 *
 *   kmalloc_from(size, flags, caller, own, again)
 *     size <= KM_SMALL_MAX, flags 0, no debug, a CPU with an area:
 *       interrupts off; this CPU's loaded magazine of the class;
 *       non-empty: count the sampling countdown, pop, check the entry's
 *       mark, clear it; interrupts back                   -> the block
 *     everything else: one of the named slow paths of kmalloc.c
 *       kmalloc_empty      the magazine is empty (interrupts still off)
 *       kmalloc_sample     the countdown ran out: maybe a guarded slot
 *       kmalloc_bad_entry  the entry carries no magazine mark: reported
 *       kmalloc_slow       flags, large, debug, no per-CPU area
 *
 * Every slow path is a tail call, so the path that finds a block saves
 * no register and sets up no frame.  `again` NULL (kmalloc): what the
 * slow path returns is the answer.  `again` a function (malloc: the
 * growth tries and errno): the slow path hands a NULL it would return to
 * again(size, caller).
 *
 * kfree's fast path (for kfree, kfree_caller and free), the same way:
 *
 *   kfree_from(p, caller, own)
 *     no debug; p's arena in pools.hint[]; p a handed-out block of a
 *     carved pool (pool_of_hinted: carved_end, range, block start):
 *       interrupts off; push on this CPU's loaded magazine of the
 *       pool's class; mark the block; interrupts back          -> 0
 *     magazine full: kfree_full (interrupts still off)
 *     everything else: kfree_generic (NULL, debug, large, bad pointers)
 *
 * Only the front end's own state is read here (km_debug_on) and what the
 * layers below offer their callers inline (pool.h: the size to class
 * table, the arena hints and the block check; percpu_internal.h: the CPU
 * areas and the entry check).
 */
#ifndef MM_KMALLOC_FAST_H
#define MM_KMALLOC_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <strata/kmalloc.h>
#include <strata/platform.h>

#include "kmalloc_front.h"
#include "percpu_internal.h"
#include "pool.h"

/* What malloc does with a slow path's NULL (its growth tries, errno). */
typedef void *(*km_again_fn)(size_t size, void *caller);

/* The slow paths kmalloc_from ends in (mm/kmalloc.c, out of line); each
 * hands a NULL it would return to `again` if there is one. */
void *kmalloc_slow(size_t size, unsigned flags, void *caller, km_again_fn again);
void *kmalloc_sample(size_t size, unsigned flags, void *caller, km_again_fn again);
void *kmalloc_empty(size_t size, unsigned c, void *caller, struct km_pcpu *pc,
		    unsigned long irq, km_again_fn again);
void *kmalloc_bad_entry(size_t size, unsigned c, const struct km_block *b, void *caller,
			km_again_fn again);

/* With `own`, the caller named in reports is the return address of the
 * function this is inlined into (kmalloc's own: MM_FAST_CALLER,
 * strata/platform.h, in an always_inline function names the caller of
 * the function it is inlined into), computed only on the slow branches. */
static inline __attribute__((always_inline)) void *
kmalloc_from(size_t size, unsigned flags, void *caller, bool own, km_again_fn again)
{
#define KM_CALLER (own ? MM_FAST_CALLER() : caller)
	if (mm_likely(size <= KM_SMALL_MAX && (flags | km_debug_on) == 0)) {
		unsigned c = km_size_class(size);
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		if (mm_likely(mm_cpu_indexable(cpu))) {
			struct km_pcpu *pc = km_pcpu[cpu];      /* PCPU_NONE: empty */
			struct mm_mag *m = pc->slot[c].loaded;
			if (mm_likely(m->count != 0)) {
				if (MM_SAMPLING && mm_unlikely(--pc->sample_left < 0)) {
					mm_irq_restore(irq);
					return kmalloc_sample(size, flags, KM_CALLER, again);
				}
				struct km_block *b = mag_take(m);
				mm_irq_restore(irq);
				if (mm_unlikely(!pcpu_entry_ok(b)))
					return kmalloc_bad_entry(size, c, b, KM_CALLER, again);
				b->mark = 0;
				return b;
			}
			return kmalloc_empty(size, c, KM_CALLER, pc, irq, again);
		}
		mm_irq_restore(irq);
	}
	return kmalloc_slow(size, flags, KM_CALLER, again);
#undef KM_CALLER
}

/* kfree's slow paths (mm/kmalloc.c, out of line): the magazine full
 * (interrupts still off, irq to restore), and everything else. */
int kfree_full(unsigned c, const void *p, void *caller, struct km_pcpu *pc, unsigned long irq);
int kfree_generic(const void *p, void *caller);

/*
 * The fast path: p lies in an arena found in pools.hint[] (no page
 * descriptor needed, see mm/arena.c), in a carved pool in use, at a block
 * handed out and not already free (its marks); it goes on this CPU's
 * loaded magazine of its class.  No lock: for a valid p its pool cannot
 * change class or go away under us (p is still allocated), and the
 * fields another CPU may be updating are read with mm_load().
 * Returns KF_DONE, or KF_FULL (p checked, class *cls, magazine full on
 * area *pcp: for kfree_full(), with interrupts still off, *irq to restore)
 * or KF_GENERIC (anything else: for kfree_generic(), which asks the page
 * descriptor).  The callers make those tail calls and
 * compute their caller argument only there, so the fast path saves no
 * register and sets up no frame.
 */
enum { KF_DONE, KF_FULL, KF_GENERIC };

/* The pool in use whose block p is (handed out, not free), found through
 * the arena hints: no lock, no descriptor.  NULL: ask the slow path.
 * `go` false (debug mode, for kfree) skips the search. */
static inline __attribute__((always_inline)) struct km_pool *pool_of_hinted(const void *p,
									   bool go)
{
	uintptr_t base = (uintptr_t)p & ~(KM_ARENA_SIZE - 1);
	uintptr_t kind = mm_load(pools.hint[km_hint_slot(base)]) ^ base;
	struct km_pool *pool;

	/* kind 0 (small pools) first, with its constant mask: a medium
	 * arena's pools are aligned to their size in it (so, with the arena
	 * 1 MiB aligned, the pool is p rounded down to it) and cost the
	 * small path no instruction */
	if (mm_likely(kind == 0))
		pool = km_pool_of(p);
	else if (kind < KM_KINDS)
		pool = (struct km_pool *)((uintptr_t)p & ~((KM_POOL_SIZE << kind) - 1));
	else
		return NULL;
	if (mm_likely(go)) {
		const struct km_arena *a = km_arena_of_base((void *)base);
		/* carved_end: the pool's header was written once; a pool that
		 * serves no class now has nothing carved (pool_release), so
		 * pool_block_ok_fast refuses it without reading pool->live.
		 * The offset is 32-bit (an arena is at most 16 MiB), so the
		 * compare needs no widening */
		if (mm_likely((uint32_t)((uintptr_t)p - base) < mm_load(a->carved_end)) &&
		    mm_likely(pool_block_ok_fast(pool, p)))
			return pool;
	}
	return NULL;
}

static inline __attribute__((always_inline)) int kfree_fast(const void *p, unsigned *cls,
							    struct km_pcpu **pcp,
							    unsigned long *irqp)
{
	struct km_pool *pool = pool_of_hinted(p, !km_debug_on);

	if (mm_likely(pool != NULL)) {
		unsigned c = pool->cls;
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		if (mm_likely(mm_cpu_indexable(cpu))) {
			struct km_pcpu *pc = km_pcpu[cpu];      /* PCPU_NONE: full */
			struct km_block *b = (struct km_block *)p;
			if (mm_likely(mag_push(pc->slot[c].loaded, b))) {
				b->mark = km_mag_mark(b);
				mm_irq_restore(irq);
				return KF_DONE;
			}
			*cls = c;
			*pcp = pc;
			*irqp = irq;
			return KF_FULL;
		}
		mm_irq_restore(irq);
	}
	return KF_GENERIC;
}

/* kfree(), kfree_caller() and free(): the fast path, then a tail call.
 * With `own`, the caller is the return address of the function this is
 * inlined into (kfree's, free's), computed only on the slow branches
 * (MM_FAST_CALLER, as kmalloc_from's). */
static inline __attribute__((always_inline)) int kfree_from(const void *p, void *caller,
							    bool own)
{
	unsigned c;
	struct km_pcpu *pc;
	unsigned long irq;
	int r = kfree_fast(p, &c, &pc, &irq);

	if (mm_likely(r == KF_DONE))
		return 0;
	if (r == KF_FULL)
		return kfree_full(c, p, own ? MM_FAST_CALLER() : caller, pc, irq);
	return kfree_generic(p, own ? MM_FAST_CALLER() : caller);
}

/* realloc()'s fast path: a small block p (not NULL) that keeps its class
 * for `size` (it still fits and wastes under a quarter of the block:
 * krealloc's rule, small_fits in kmalloc.c) is found as kfree finds it,
 * freed blocks refused, and kept: no lock, no call.  false: krealloc
 * decides (any other size, debug or tracing on, a sampled, large or bad
 * p).  Not counted in kmalloc_stats.realloc_in_place: a shared counter
 * would cost this path more than the rest of it. */
static inline __attribute__((always_inline)) bool krealloc_keeps_fast(const void *p,
								      size_t size)
{
	if (mm_unlikely(km_debug_on) || size - 1 >= KM_SMALL_MAX)
		return false;
	const struct km_pool *pool = pool_of_hinted(p, true);
	if (!pool)
		return false;
	size_t old = pools.cls[pool->cls].size;
	return size <= old && 4 * size > 3 * old;
}

#endif

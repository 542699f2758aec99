/*
 * kmalloc_fast.h - kmalloc's fast path, inline, for the front end
 * (mm/kmalloc.c: kmalloc, kmalloc_caller) and for the wrapper above it
 * that is called as often (mm/malloc_std.c: malloc), so that malloc's
 * common case is one function with no call in it, not a call to
 * kmalloc_caller with its result tested after.
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
 * Only the front end's own state is read here (km_debug_on) and what the
 * layers below offer their callers inline (pool.h: the size to class
 * table; percpu_internal.h: the CPU areas and the entry check).
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
 * function this is inlined into (kmalloc's own: RET_ADDR in an
 * always_inline function names the caller of the function it is inlined
 * into), computed only on the slow branches. */
static inline __attribute__((always_inline)) void *
kmalloc_from(size_t size, unsigned flags, void *caller, bool own, km_again_fn again)
{
#define KM_CALLER (own ? RET_ADDR() : caller)
	if (mm_likely(size <= KM_SMALL_MAX && (flags | km_debug_on) == 0)) {
		unsigned c = km_size_class(size);
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		if (mm_likely(cpu < MM_MAX_CPUS)) {
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

#endif

/*
 * kmalloc.c - the front end: kmalloc, kfree, krealloc and friends.
 *
 * Every call is routed by size (allocation) or by address (free):
 *
 *   kmalloc(n)                              kfree(p)
 *      |                                       |
 *      | n <= 32768, no flags, debug off       | pools.hint[p >> 20] == p's
 *      v                                       v arena base | pool kind? pool carved,
 *   c = size2class[(n+15)>>4]                    block in its carved range at a
 *   pop this CPU's loaded magazine of c          multiple of the size, not marked free?
 *   (irqs off, no lock, no atomic)               push on this CPU's magazine
 *      |empty, or n > 32768, or flags             |no, or magazine full
 *      v                                          v
 *   empty magazine: kmalloc_empty, the       kfree_full: swap/trade with the
 *   magazine slow path straight away           depot (percpu.c) straight away
 *   (percpu.c, the fast path's area, irqs
 *   still off); other cases: kmalloc_slow:
 *   debug/trace hooks? magazine slow path,
 *   else
 *   pools.lock + pool_alloc_fast(c)          kfree_generic: hooks, then the
 *   n > 32768: pools.lock + large_alloc()      page descriptor under
 *                                              pools.lock: pool block ->
 *                                              magazine or pool_free_fast;
 *                                              large run -> large_free();
 *                                              anything else -> report
 *
 * The two fast paths make no call and touch no lock; everything else is
 * a named slow path (kmalloc_empty, kmalloc_slow, kfree_full,
 * kfree_generic).  The fast paths are kmalloc_from and kfree_from in
 * kmalloc_fast.h, which malloc and free (mm/malloc_std.c) inline too.  Layers
 * used, all below: per-CPU magazines (percpu_internal.h), pools and
 * arenas (pool.h, arena.h), large runs (large.h), the PFA's descriptors,
 * the report sink (report.h), sampled guarded blocks (guard.h: the
 * fast path counts down this CPU's sample_left; below zero kmalloc_sample()
 * asks mm/guard.c for a slot).  Debug mode and tracing sit above and come
 * in only through the hook table they install (kmalloc_front.h).
 *
 * Semantics decided here (see strata/kmalloc.h for the full list):
 *   kmalloc(0)       a unique 16-byte block (the smallest class)
 *   krealloc(p, 0)   kfree(p), returns NULL
 *   krealloc small   in place while the new size still fits the block and
 *                    wastes under a quarter of it; otherwise move
 *   krealloc large   in place when the run can shrink or grow (mm/large.c);
 *                    into the small classes it moves
 *   KM_NO_MOVE       krealloc only resizes in place, else returns NULL with
 *                    p unchanged (size 0 too: nothing is freed); the C
 *                    library's realloc tries it before a large block moves,
 *                    when the platform can grow the heap past the run
 *   failures         NULL, with a kmalloc_report saying why (no log line:
 *                    a NULL return is the caller's business)
 *   bad pointers     one log line with pointer, reason and caller, a
 *                    kmalloc_report, and nothing freed
 */
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "arena.h"
#include "guard.h"
#include "kmalloc_fast.h"
#include "kmalloc_front.h"
#include "large.h"
#include "percpu_internal.h"
#include "pool.h"
#include "report.h"

static struct {
	bool ready;
	uint64_t realloc_in_place, realloc_moved;     /* relaxed atomics */
	struct km_debug_hooks debug;     /* copies: one load less per hooked call */
	struct km_trace_hooks trace;
} front;

#if MM_DEBUG
unsigned km_debug_on;    /* the hook flags; read by the fast paths */
#endif

void kmalloc_init(void)
{
	struct km_debug_hooks debug = front.debug;
	struct km_trace_hooks trace = front.trace;

	front = (__typeof__(front)){ .debug = debug, .trace = trace };
	/* odd multiplier mix; bit 0..3 set so that no encoded link of an
	 * aligned block equals a plain aligned pointer */
	pool_init_all((uintptr_t)(mm_platform_entropy() * 0xD6E8FEB86659FD93ull) | 0xf);
	large_init(pfa_total_pages());
	pcpu_init();
	mm_report_reset();
	if (debug.reset)
		debug.reset();
	front.ready = true;
}

void kmalloc_front_stats(struct kmalloc_front_stats *st)
{
	st->ready = front.ready;
	st->realloc_in_place = __atomic_load_n(&front.realloc_in_place, __ATOMIC_RELAXED);
	st->realloc_moved = __atomic_load_n(&front.realloc_moved, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* the wrappers' hooks (kmalloc_front.h)                              */
/* ------------------------------------------------------------------ */

void kmalloc_hook_debug(const struct km_debug_hooks *h, unsigned flags)
{
	front.debug = *h;
#if MM_DEBUG
	unsigned old = __atomic_load_n(&km_debug_on, __ATOMIC_RELAXED), want;
	do
		want = (flags & MM_DBG_MASK) | (old & KM_TRACING);
	while (!__atomic_compare_exchange_n(&km_debug_on, &old, want, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
#else
	(void)flags;
#endif
}

void kmalloc_hook_trace(const struct km_trace_hooks *h, bool on)
{
	if (on)
		front.trace = *h;
#if MM_DEBUG
	if (on)
		__atomic_or_fetch(&km_debug_on, KM_TRACING, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&km_debug_on, ~KM_TRACING, __ATOMIC_RELEASE);
#endif
}

unsigned mm_debug_flags(void)
{
	return km_debug_on;
}

static inline void trace_alloc(const void *p, size_t size, void *caller)
{
	if (km_debug_on & KM_TRACING)
		front.trace.alloc(p, size, caller);
}

static inline void trace_free(const void *p)
{
	if (km_debug_on & KM_TRACING)
		front.trace.free(p);
}

/* A live debug block's size asked for, if p is one. */
static inline bool debug_usable(const void *p, size_t *size)
{
	return (km_debug_on & MM_DBG_ALL) && front.debug.usable(p, size);
}

/* ------------------------------------------------------------------ */
/* what is this pointer?                                              */
/* ------------------------------------------------------------------ */

enum km_kind { KM_SMALL, KM_LARGE, KM_BAD };

struct km_lookup {
	enum km_kind kind;
	enum kmalloc_report_kind why;   /* for KM_BAD */
	unsigned owner;
	struct page *pg;
	struct km_pool *pool;           /* for KM_SMALL */
};

/* Who owns the block whose head descriptor is head? (for reports) */
static enum kmalloc_report_kind inside_block(const struct page *head)
{
	if (head->owner == PG_ARENA)
		return KM_BAD_NOT_BLOCK;          /* a free pool, or a header */
	if (head->owner == PG_LARGE || large_is_continuation(head))
		return KM_BAD_INTERIOR;
	return KM_BAD_FOREIGN;
}

/* Slow half: everything that is not a block of a pool in use. */
static void lookup_other(const void *p, struct page *pg, struct km_lookup *l)
{
	l->kind = KM_BAD;
	switch (pg->owner) {
	case PG_LARGE:
		if ((uintptr_t)p & (PAGE_SIZE - 1))
			l->why = KM_BAD_INTERIOR;
		else if (large_is_cached(pg))
			l->why = KM_DOUBLE_FREE;   /* freed, kept in the run cache */
		else
			l->kind = KM_LARGE;
		return;
	case PG_FREE_TAIL: {              /* inside a block: whose? */
		uint32_t dist;
		const struct page *head = pfa_virt_to_head(p, &dist);
		l->why = !head || head->owner == PG_FREE || head->owner == PG_FREE_TAIL ?
			 KM_BAD_FREE_PAGE : inside_block(head);
		return;
	}
	case PG_ARENA:
	case PG_PFA:
		l->why = inside_block(pg);
		return;
	case PG_RESERVED:
		l->why = KM_BAD_RESERVED;
		return;
	case PG_FREE:
		l->why = KM_BAD_FREE_PAGE;
		return;
	default:
		l->why = KM_BAD_FOREIGN;
		return;
	}
}

/* Lock held. */
static inline void lookup(const void *p, struct page *pg, struct km_lookup *l)
{
	l->pg = pg;
	l->owner = pg->owner;
	l->pool = km_pool_lookup(p, pg);
	if (mm_likely(l->pool != NULL)) {
		l->why = pool_check_block(l->pool, p);
		l->kind = mm_likely(l->why == KM_REPORT_NONE) ? KM_SMALL : KM_BAD;
		return;
	}
	lookup_other(p, pg, l);
}

/* ------------------------------------------------------------------ */
/* allocation                                                         */
/* ------------------------------------------------------------------ */

static void *alloc_large(size_t size, size_t align, unsigned flags, void *caller)
{
	int why = KM_FAIL_NOMEM;

	mm_spin_lock(&pools.lock);
	void *p = large_alloc(size, align, &why);
	if (!p)
		mm_report_pointer((enum kmalloc_report_kind)why, "kmalloc", NULL, size, caller, 0);
	mm_spin_unlock(&pools.lock);
	if (p && (flags & KM_ZERO))      /* all of it: krealloc relies on that */
		mm_zero(p, large_usable(pfa_virt_to_page(p)));
	return p;
}

/* A block of class c; the slow path when the class has no used pool. */
static inline void *alloc_class(unsigned c, size_t size, unsigned flags, void *caller)
{
	void *p = pcpu_alloc(c);

	if (mm_unlikely(!p)) {   /* no per-CPU cache here, or out of memory */
		mm_spin_lock(&pools.lock);
		p = pool_alloc_fast(c);
		if (mm_unlikely(!p))
			mm_report_pointer(KM_FAIL_NOMEM, "kmalloc", NULL, size, caller, 0);
		mm_spin_unlock(&pools.lock);
	}
	if (mm_unlikely(flags & KM_ZERO) && p)
		mm_zero(p, pools.cls[c].size);
	return p;
}

static inline __attribute__((always_inline)) void *
km_alloc_raw(size_t size, unsigned flags, void *caller)
{
	if (mm_likely(size <= KM_SMALL_MAX))
		return alloc_class(km_size_class(size), size, flags, caller);
	return alloc_large(size, PAGE_SIZE, flags, caller);
}

void *km_alloc_nodebug(size_t size, unsigned flags, void *caller)
{
	return km_alloc_raw(size, flags, caller);
}

/* Debug blocks and/or tracing (km_debug_on != 0). */
static __attribute__((noinline)) void *km_alloc_hooked(size_t size, unsigned flags,
							void *caller)
{
	void *p = (km_debug_on & MM_DBG_ALL) ? front.debug.alloc(size, flags, caller)
					     : km_alloc_raw(size, flags, caller);
	if (p)
		trace_alloc(p, size, caller);
	return p;
}

/* Contexts with no per-CPU area count down here (atomically). */
static struct {
	int32_t left;
	uint64_t rng;
} sample_shared;

/* This CPU's next sampling countdown (or the shared one's); true if the
 * allocation that ran it out is to be sampled. */
static bool sample_rearm(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct km_pcpu *pc = pcpu_area(cpu);
	bool now;
	if (pc != PCPU_NONE) {
		pc->sample_left = guard_next_countdown(&pc->sample_rng, cpu, &now) - 1;
	} else {
		uint64_t rng = mm_load(sample_shared.rng);
		int32_t n = guard_next_countdown(&rng, MM_MAX_CPUS, &now);
		mm_store(sample_shared.rng, rng);
		mm_store(sample_shared.left, n - 1);
	}
	mm_irq_restore(irq);
	return now;
}

/* The count for requests kmalloc's fast path did not count (flags, sizes
 * over KM_SMALL_MAX, no per-CPU area yet): true if this one is due a
 * guarded slot (the countdown is drawn again then). */
static __attribute__((noinline)) bool sample_tick(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	struct km_pcpu *pc = pcpu_area(cpu);
	bool due = pc != PCPU_NONE ? --pc->sample_left < 0
		      : __atomic_sub_fetch(&sample_shared.left, 1, __ATOMIC_RELAXED) < 0;
	mm_irq_restore(irq);
	return due && sample_rearm();
}

/* Not counted yet: sampled (a page of its own), or as usual. */
static inline __attribute__((always_inline)) void *
km_alloc(size_t size, unsigned flags, void *caller)
{
	if (mm_unlikely(km_debug_on))
		return km_alloc_hooked(size, flags, caller);
	if (MM_SAMPLING && size <= GUARD_MAX_BYTES && sample_tick()) {
		void *p = guard_alloc(size, KMALLOC_MIN_ALIGN, flags & KM_ZERO, caller);
		if (p)
			return p;
	}
	return km_alloc_raw(size, flags, caller);
}

/* A slow path's NULL: the answer, or (malloc's `again`) its growth
 * tries and errno. */
static inline void *or_again(void *p, size_t size, void *caller, km_again_fn again)
{
	return mm_likely(p != NULL) || again == NULL ? p : again(size, caller);
}

__attribute__((noinline)) void *kmalloc_slow(size_t size, unsigned flags, void *caller,
					      km_again_fn again)
{
	return or_again(km_alloc(size, flags, caller), size, caller, again);
}

/* kmalloc's fast path counted this one already (its magazine was empty,
 * or it was sampled and found no slot). */
static __attribute__((noinline)) void *kmalloc_counted(size_t size, unsigned flags,
							void *caller)
{
	if (mm_unlikely(km_debug_on))
		return km_alloc_hooked(size, flags, caller);
	return km_alloc_raw(size, flags, caller);
}

/* A magazine entry that is not a block put there: reported, dropped. */
__attribute__((noinline)) void *kmalloc_bad_entry(size_t size, unsigned c,
						   const struct km_block *b, void *caller,
						   km_again_fn again)
{
	pcpu_entry_corrupt(c, b);
	return kmalloc_slow(size, 0, caller, again);
}

/* This CPU's countdown reached zero: draw the next one, and give this
 * request a guarded slot if sampling is on and a slot is free. */
__attribute__((noinline)) void *kmalloc_sample(size_t size, unsigned flags, void *caller,
						km_again_fn again)
{
	void *p = sample_rearm() ? guard_alloc(size, KMALLOC_MIN_ALIGN, false, caller) : NULL;
	return p ? p : or_again(kmalloc_counted(size, flags, caller), size, caller, again);
}

/* The fast path found its magazine of class c empty: count this
 * allocation down here (out of line, so the compiler cannot hoist the
 * count above the fast path's test), then sample, or go straight to the
 * magazine slow path with the area the fast path holds (interrupts are
 * still off; no second save, area lookup or size-to-class).  Only if that
 * has no block (layer off, no memory) the whole slow path, which reports.
 * c takes the place of flags (0 here), so caller stays in its register.
 * A CPU with no area (PCPU_NONE: its magazines are mag_none, always
 * empty) takes the whole slow path, which counts it on the shared
 * countdown. */
__attribute__((noinline)) void *kmalloc_empty(size_t size, unsigned c, void *caller,
					       struct km_pcpu *pc, unsigned long irq,
					       km_again_fn again)
{
	if (mm_unlikely(pc == PCPU_NONE)) {
		mm_irq_restore(irq);
		return kmalloc_slow(size, 0, caller, again);
	}
	if (MM_SAMPLING && --pc->sample_left < 0) {
		mm_irq_restore(irq);
		return kmalloc_sample(size, 0, caller, again);
	}
	void *b = pcpu_alloc_empty(pc, c);
	mm_irq_restore(irq);
	return mm_likely(b != NULL) ? b : or_again(kmalloc_counted(size, 0, caller), size, caller,
						    again);
}

/* The fast path is kmalloc_from (kmalloc_fast.h), shared with malloc:
 * count down this CPU's sampling countdown, pop a block from its loaded
 * magazine of the class (mm/percpu.c); no lock, no atomic.  The caller
 * named in reports is kmalloc's own return address (as in kfree_from). */
MM_FAST_ENTRY void *kmalloc(size_t size, unsigned flags)
{
	return kmalloc_from(size, flags, NULL, true, NULL);
}

/* kmalloc() for wrappers (malloc()) that name their own caller in
 * reports; the same fast path. */
MM_FAST_ENTRY void *kmalloc_caller(size_t size, unsigned flags, void *caller)
{
	return kmalloc_from(size, flags, caller, false, NULL);
}

void *kzalloc(size_t size, unsigned flags)
{
	return km_alloc(size, flags | KM_ZERO, RET_ADDR());
}

void *kcalloc_caller(size_t n, size_t size, unsigned flags, void *caller)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		mm_report_pointer(KM_FAIL_OVERFLOW, "kcalloc", NULL, n, caller, 0);
		return NULL;
	}
	return km_alloc(bytes, flags | KM_ZERO, caller);
}

void *kcalloc(size_t n, size_t size, unsigned flags)
{
	return kcalloc_caller(n, size, flags, RET_ADDR());
}

/* The smallest class whose blocks all have this alignment and hold size
 * bytes (pools.nclasses if none: a large run). */
static unsigned aligned_class(size_t size, size_t align)
{
	unsigned c = size <= KM_SMALL_MAX ? km_size_class(size) : pools.nclasses;

	while (c < pools.nclasses && pools.cls[c].align < align)
		c++;
	return c;
}

void *kmalloc_aligned(size_t size, size_t align, unsigned flags)
{
	return kmalloc_aligned_caller(size, align, flags, RET_ADDR());
}

void *kmalloc_aligned_caller(size_t size, size_t align, unsigned flags, void *caller)
{
	if (align == 0 || (align & (align - 1))) {
		mm_report_pointer(KM_FAIL_BAD_ALIGN, "kmalloc_aligned", NULL, align, caller, 0);
		return NULL;
	}
	if (align <= KMALLOC_MIN_ALIGN)
		return km_alloc(size, flags, caller);
	/* larger alignments: plain blocks, also in debug mode (debug.h); a
	 * sampled one (no debug mode) a guarded slot, aligned in it */
	void *p = NULL;
	if (!(km_debug_on & MM_DBG_ALL) && size <= GUARD_MAX_BYTES && align <= PAGE_SIZE &&
	    sample_tick())
		p = guard_alloc(size, align, flags & KM_ZERO, caller);
	unsigned c = aligned_class(size, align);
	if (!p && c < pools.nclasses)
		p = alloc_class(c, size, flags, caller);
	if (!p)
		p = alloc_large(size, align, flags, caller);
	if (p)
		trace_alloc(p, size, caller);
	return p;
}

/* ------------------------------------------------------------------ */
/* free                                                               */
/* ------------------------------------------------------------------ */

/* p has no descriptor: outside the PFA's span, or inside it (a hosted
 * heap's reservation, a hole between regions) where nothing is managed. */
static enum kmalloc_report_kind why_unmanaged(const void *p)
{
	return pfa_in_span(p) ? KM_BAD_NOT_IN_USE : KM_BAD_UNMANAGED;
}

/* A bad pointer given to `op`: the one-line report, and in debug mode a
 * bug report too, so that the debug policy (panic or go on) holds for
 * every call, not only kfree.  A debug block waiting in the quarantine
 * is a freed block, whatever the pools think of its address.  No lock. */
static __attribute__((noinline)) void report_bad(enum kmalloc_report_kind why, const char *op,
						 const void *p, unsigned owner, void *caller)
{
	if ((km_debug_on & MM_DBG_ALL) && front.debug.freed(p))
		why = KM_DOUBLE_FREE;
	mm_report_pointer(why, op, p, 0, caller, owner);
	if (km_debug_on & MM_DBG_ALL)
		mm_report_bad_call(why, op, p, caller);
}

/* Quiet lookup for debug.c: usable size of the block starting at p. */
size_t km_block_size_quiet(const void *p)
{
	struct page *pg = pfa_virt_to_page(p);
	struct km_lookup l;
	size_t n = 0;

	if (mm_unlikely(guard_owns(p)))
		return guard_usable(p, &n) ? n : 0;
	if (!pg)
		return 0;
	mm_spin_lock(&pools.lock);
	lookup(p, pg, &l);
	if (l.kind == KM_SMALL)
		n = pools.cls[l.pool->cls].size;
	else if (l.kind == KM_LARGE)
		n = large_usable(pg);
	mm_spin_unlock(&pools.lock);
	return n;
}

/* True and the size of a guarded p, or false and a report (freed, not
 * its start). */
static bool guard_usable_or_report(const void *p, const char *op, void *caller, size_t *n)
{
	if (guard_usable(p, n))
		return true;
	mm_report_pointer(guard_bad_reason(p), op, p, 0, caller, 0);
	return false;
}

/* Everything kfree's fast path does not take: NULL, debug mode, large
 * runs, bad pointers, a full magazine, no per-CPU cache.  0, or -1 for a
 * pointer refused (reported). */
__attribute__((noinline)) int kfree_generic(const void *p, void *caller)
{
	if (mm_unlikely(!p))
		return 0;
	if (mm_unlikely(guard_owns(p))) {
		trace_free(p);
		guard_free(p, caller);
		return 0;
	}
	if (mm_unlikely(km_debug_on)) {
		trace_free(p);
		if (km_debug_on & MM_DBG_ALL) {
			enum km_dbg_free r = front.debug.free(p, caller);
			if (r != KM_DBG_NOT_OURS)
				return r == KM_DBG_REFUSED ? -1 : 0;
		}
	}
	return kfree_nodebug(p, caller);
}

/* A block of an arena of bigger pools (medium classes) that kfree's
 * fast path did not take (debug mode's own blocks, through
 * kfree_nodebug; no per-CPU area yet): found through its tagged hint and
 * checked as the fast path checks, no lock, no descriptor; then the
 * magazines. */
static bool kfree_hinted_kind(const void *p);   /* below kfree_full */

int kfree_nodebug(const void *p, void *caller)
{
	if (kfree_hinted_kind(p))
		return 0;
	struct page *pg = pfa_virt_to_page(p);
	if (mm_unlikely(!pg)) {
		report_bad(why_unmanaged(p), "kfree", p, 0, caller);
		return -1;
	}

	struct km_lookup l;
	mm_spin_lock(&pools.lock);
	lookup(p, pg, &l);
	if (mm_likely(l.kind == KM_SMALL)) {
		unsigned c = l.pool->cls;
		mm_spin_unlock(&pools.lock);
		if (pcpu_free(c, (void *)p))
			return 0;
		/* no per-CPU cache: the block is still ours to give back */
		mm_spin_lock(&pools.lock);
		pool_free_fast(l.pool, (struct km_block *)p);
	} else if (l.kind == KM_LARGE)
		large_free((void *)p, pg);
	mm_spin_unlock(&pools.lock);
	if (mm_likely(l.kind != KM_BAD))
		return 0;
	report_bad(l.why, "kfree", p, l.owner, caller);
	return -1;
}

/* kfree of a checked block whose CPU's loaded magazine is full: straight
 * to the magazine slow path (swap with the previous magazine, trade with
 * the depot, or trim) with the area the fast path holds, interrupts
 * still off; no pools.lock, no descriptor.  The generic path only if the
 * layer is off or this CPU has no area (PCPU_NONE, whose magazines are
 * always full). */
__attribute__((noinline)) int kfree_full(unsigned c, const void *p, void *caller,
					 struct km_pcpu *pc, unsigned long irq)
{
	bool done = pcpu_free_full(pc, c, (void *)p);

	mm_irq_restore(irq);
	return mm_likely(done) ? 0 : kfree_generic(p, caller);
}

static bool kfree_hinted_kind(const void *p)
{
	struct km_pool *pool = pool_of_hinted(p, true);

	return pool && pcpu_free(pool->cls, (void *)p);
}

MM_FAST_ENTRY int kfree(const void *p)
{
	return kfree_from(p, NULL, true);
}

/* kfree() for wrappers (free(), newlib's _free_r) that name their own
 * caller in reports; the same fast path. */
MM_FAST_ENTRY int kfree_caller(const void *p, void *caller)
{
	return kfree_from(p, caller, false);
}

/* ------------------------------------------------------------------ */
/* sized and aligned free (C++'s operator delete)                     */
/* ------------------------------------------------------------------ */

/* Usable size of the block p, if it is one (0: kfree will report it).
 * A small block in a hinted arena costs no lock, as kfree's fast path. */
static size_t block_size_for_check(const void *p)
{
	struct km_pool *pool = pool_of_hinted(p, true);

	return pool ? pools.cls[pool->cls].size : km_block_size_quiet(p);
}

/* Does the block p fit a request of `size` bytes aligned to `align`?
 * A small block: the class that request gets; a large run: it must be
 * one and hold size.  In debug mode, a debug block had exactly `size`
 * asked for and is never aligned beyond 16 bytes; a plain block was. */
static enum mm_bug_kind sized_mismatch(const void *p, size_t size, size_t align, size_t *have)
{
	bool aligned = align > KMALLOC_MIN_ALIGN;
	size_t d;

	if (align && ((uintptr_t)p & (align - 1)))
		return MM_BUG_ALIGNED_DELETE;
	if (mm_unlikely(km_debug_on & MM_DBG_ALL) && debug_usable(p, &d)) {
		*have = d;
		if (aligned)
			return MM_BUG_ALIGNED_DELETE;
		return size && size != d ? MM_BUG_SIZED_DELETE : MM_BUG_NONE;
	}
	size_t n = *have = block_size_for_check(p);
	if (!n)
		return MM_BUG_NONE;
	if (mm_unlikely(km_debug_on & MM_DBG_ALL) && !aligned)
		return MM_BUG_ALIGNED_DELETE;
	if (!size)
		return MM_BUG_NONE;
	unsigned c = aligned_class(size, align);
	if (c < pools.nclasses)
		return pools.cls[c].size == n ? MM_BUG_NONE : MM_BUG_SIZED_DELETE;
	return n > KM_SMALL_MAX && size <= n ? MM_BUG_NONE : MM_BUG_SIZED_DELETE;
}

static __attribute__((noinline)) void report_mismatch(enum mm_bug_kind kind, const void *p,
						      size_t size, size_t align, size_t have,
						      void *caller)
{
	struct mm_bug_report r = {
		.kind = kind, .ptr = p, .block_size = have, .told_size = size,
		.told_align = align, .caller = caller,
	};
	mm_report_bug(&r);
}

int kfree_sized_caller(const void *p, size_t size, size_t align, void *caller)
{
	size_t have = 0;

	if (p) {
		enum mm_bug_kind bad = sized_mismatch(p, size, align, &have);
		if (mm_unlikely(bad != MM_BUG_NONE))
			report_mismatch(bad, p, size, align, have, caller);
	}
	return kfree_caller(p, caller);
}

/* ------------------------------------------------------------------ */
/* sizes and realloc                                                  */
/* ------------------------------------------------------------------ */

/* Usable size of p (lock held); 0 if p is bad (l->kind KM_BAD, l->why:
 * the caller reports it with report_bad() once the lock is dropped). */
static size_t usable_locked(const void *p, struct km_lookup *l)
{
	struct page *pg = pfa_virt_to_page(p);

	if (!pg) {
		l->kind = KM_BAD;
		l->why = why_unmanaged(p);
		l->owner = 0;
		return 0;
	}
	lookup(p, pg, l);
	if (l->kind == KM_SMALL)
		return pools.cls[l->pool->cls].size;
	if (l->kind == KM_LARGE)
		return large_usable(pg);
	return 0;
}

size_t kmalloc_usable_size_caller(const void *p, void *caller)
{
	struct km_lookup l;

	if (!p)
		return 0;
	size_t d;
	if (mm_unlikely(guard_owns(p)))
		return guard_usable_or_report(p, "kmalloc_usable_size", caller, &d) ? d : 0;
	if (mm_unlikely(km_debug_on) && debug_usable(p, &d))
		return d;
	mm_spin_lock(&pools.lock);
	size_t n = usable_locked(p, &l);
	mm_spin_unlock(&pools.lock);
	if (l.kind == KM_BAD)
		report_bad(l.why, "kmalloc_usable_size", p, l.owner, caller);
	return n;
}

bool kmalloc_is_block(const void *p)
{
	struct km_lookup l;
	size_t d;

	if (!p)
		return false;
	if (mm_unlikely(guard_owns(p)))
		return guard_usable(p, &d);
	if (mm_unlikely(km_debug_on) && debug_usable(p, &d))
		return true;
	mm_spin_lock(&pools.lock);
	usable_locked(p, &l);
	mm_spin_unlock(&pools.lock);
	return l.kind != KM_BAD;
}

size_t kmalloc_usable_size(const void *p)
{
	return kmalloc_usable_size_caller(p, RET_ADDR());
}

/* A sampled block moves like a debug block (krealloc_debug). */
static void *krealloc_guarded(void *p, size_t size, unsigned flags, void *caller)
{
	size_t old;
	void *q;

	if (!guard_usable_or_report(p, "krealloc", caller, &old))
		return NULL;
	if (size <= old)
		return p;      /* still against its guard? only if the size is kept */
	if (flags & KM_NO_MOVE)
		return NULL;
	q = km_alloc(size, flags & ~KM_ZERO, caller);
	if (!q)
		return NULL;
	mm_copy(q, p, old);
	if (flags & KM_ZERO)
		mm_zero_bytes((char *)q + old, size - old);
	kfree_caller(p, caller);
	return q;
}

/* Can block p (of usable size `old`, small) hold `size` bytes in place? */
static bool small_fits(size_t old, size_t size)
{
	return size <= old && 4 * size > 3 * old;
}

/* krealloc keeps a small block of class cls while small_fits, or while it
 * shrinks in class 0, which has no smaller class to move to. */
static bool small_keeps(size_t old, size_t size, unsigned cls)
{
	return small_fits(old, size) || (size <= old && cls == 0);
}

/* A debug block: always moves, so stale pointers show (so KM_NO_MOVE
 * never resizes it).  Without memory for the move a shrink still
 * succeeds, as it does without debug mode: the block stays (its red zone
 * still starts at the old size). */
static void *krealloc_debug(void *p, size_t dsize, size_t size, unsigned flags, void *caller)
{
	if (flags & KM_NO_MOVE)
		return NULL;
	void *q = km_alloc(size, flags & ~KM_ZERO, caller);

	if (!q)
		return size <= dsize ? p : NULL;
	mm_copy(q, p, dsize < size ? dsize : size);
	if ((flags & KM_ZERO) && size > dsize)
		mm_zero_bytes((char *)q + dsize, size - dsize);
	kfree_caller(p, caller);
	return q;
}

/* Look p up (a bad p is reported: l->kind == KM_BAD) and resize it in
 * place if it can: a small block while small_fits (or a 16-byte block,
 * which has no smaller class to move to), a large run to a large size
 * (mm/large.c grows or shrinks it).  *old: usable size before. */
static bool krealloc_in_place(void *p, size_t size, struct km_lookup *l, size_t *old,
			      void *caller)
{
	bool in_place = false;

	mm_spin_lock(&pools.lock);
	*old = usable_locked(p, l);
	if (l->kind == KM_SMALL)
		in_place = small_keeps(*old, size, l->pool->cls);
	else if (l->kind == KM_LARGE && size > KM_SMALL_MAX)
		in_place = large_resize(p, l->pg, size);
	mm_spin_unlock(&pools.lock);
	if (l->kind == KM_BAD)
		report_bad(l->why, "krealloc", p, l->owner, caller);
	if (in_place)
		__atomic_add_fetch(&front.realloc_in_place, 1, __ATOMIC_RELAXED);
	return in_place;
}

/* p kept its block: zero the part that grew (KM_ZERO), tell the tracer. */
static void *krealloc_kept(void *p, size_t size, unsigned flags, const struct km_lookup *l,
			   size_t old, void *caller)
{
	size_t now = l->kind == KM_LARGE ? large_usable(l->pg) : old;

	trace_free(p);
	trace_alloc(p, size, caller);
	if ((flags & KM_ZERO) && now > old)
		mm_zero((char *)p + old, now - old);
	return p;
}

/* A new block, the contents copied, the old one freed.  If there is no
 * memory, a shrink still succeeds: the block stays, as small as it can. */
static void *krealloc_move(void *p, size_t size, unsigned flags, const struct km_lookup *l,
			   size_t old, void *caller)
{
	void *q = km_alloc(size, flags & ~KM_ZERO, caller);

	if (!q) {
		if (size > old)
			return NULL;
		if (l->kind == KM_LARGE) {
			mm_spin_lock(&pools.lock);
			large_resize(p, l->pg, size);
			mm_spin_unlock(&pools.lock);
		}
		return p;
	}
	mm_copy(q, p, old < size ? old : size);
	if (flags & KM_ZERO) {
		size_t now = kmalloc_usable_size_caller(q, caller);
		if (now > old)
			mm_zero((char *)q + old, now - old);
	}
	kfree_caller(p, caller);
	__atomic_add_fetch(&front.realloc_moved, 1, __ATOMIC_RELAXED);
	return q;
}

/* A small block found the way kfree's fast path finds it (the arena
 * hints, in a small or a medium arena, checked as kfree checks): no lock,
 * no page descriptor.  A valid p is allocated, so its pool cannot change
 * class or go away under us.  false: ask the descriptor
 * (krealloc_in_place), which also reports a bad p. */
static bool krealloc_small_fast(const void *p, struct km_lookup *l, size_t *old)
{
	struct km_pool *pool = pool_of_hinted(p, true);

	if (!pool)
		return false;
	l->kind = KM_SMALL;
	l->pool = pool;
	*old = pools.cls[pool->cls].size;
	return true;
}

/* A large run that keeps its pages: found through its page descriptor
 * (the head of a run in use), resized with no lock.  A valid p is the
 * caller's run, so its descriptor does not change under us; anything
 * else (a bad p, a run that grows or shrinks by pages) goes to
 * krealloc_in_place. */
static bool krealloc_large_fast(const void *p, size_t size, struct km_lookup *l, size_t *old)
{
	if (size <= KM_SMALL_MAX || ((uintptr_t)p & (PAGE_SIZE - 1)))
		return false;
	struct page *pg = pfa_virt_to_page(p);
	if (!pg || pg->owner != PG_LARGE || large_is_cached(pg))
		return false;
	*old = large_usable(pg);
	if (!large_resize_within(pg, size))
		return false;
	l->kind = KM_LARGE;
	l->pg = pg;
	__atomic_add_fetch(&front.realloc_in_place, 1, __ATOMIC_RELAXED);
	return true;
}

/* krealloc_small_fast's block: kept (counted) or moved. */
static void *krealloc_small(void *p, size_t size, unsigned flags, const struct km_lookup *l,
			    size_t old, void *caller)
{
	if (!small_keeps(old, size, l->pool->cls))
		return flags & KM_NO_MOVE ? NULL : krealloc_move(p, size, flags, l, old, caller);
	__atomic_add_fetch(&front.realloc_in_place, 1, __ATOMIC_RELAXED);
	return krealloc_kept(p, size, flags, l, old, caller);
}

void *krealloc_caller(void *p, size_t size, unsigned flags, void *caller)
{
	struct km_lookup l;
	size_t old, dsize;

	if (!p)
		return flags & KM_NO_MOVE ? NULL : km_alloc(size, flags, caller);
	if (size == 0) {
		if (!(flags & KM_NO_MOVE))
			kfree_caller(p, caller);
		return NULL;
	}
	if (mm_unlikely(guard_owns(p)))
		return krealloc_guarded(p, size, flags, caller);
	if (mm_unlikely(km_debug_on) && debug_usable(p, &dsize))
		return krealloc_debug(p, dsize, size, flags, caller);
	if (krealloc_small_fast(p, &l, &old))
		return krealloc_small(p, size, flags, &l, old, caller);
	if (krealloc_large_fast(p, size, &l, &old))
		return krealloc_kept(p, size, flags, &l, old, caller);
	if (krealloc_in_place(p, size, &l, &old, caller))
		return krealloc_kept(p, size, flags, &l, old, caller);
	if (l.kind == KM_BAD || (flags & KM_NO_MOVE))
		return NULL;
	return krealloc_move(p, size, flags, &l, old, caller);
}

void *krealloc(void *p, size_t size, unsigned flags)
{
	return krealloc_caller(p, size, flags, RET_ADDR());
}

/* The magazines first (they take blocks from the pools), then n blocks
 * of the class made free in pools, with the arenas pinned from now on. */
int kmalloc_reserve(size_t size, unsigned n)
{
	if (size == 0 || size > KM_SMALL_MAX)
		return -1;
	unsigned c = km_size_class(size), cached = 0;
	bool mags = pcpu_reserve(c, &cached);

	mm_spin_lock(&pools.lock);       /* live ones plus what magazines hold */
	unsigned got = pool_reserve(c, n + cached);
	mm_spin_unlock(&pools.lock);
	if (got < n + cached || !mags) {
		kmalloc_unreserve();
		return -1;
	}
	return 0;
}

void kmalloc_unreserve(void)
{
	mm_spin_lock(&pools.lock);
	pool_unreserve();
	mm_spin_unlock(&pools.lock);
}

/* Everything cached back to the PFA: every layer's trim (mm/mm.c), the
 * caches' and the per-CPU layer's before the pools'. */
uint64_t kmalloc_trim(void)
{
	return mm_reclaim();
}

/*
 * kmalloc.c - the front end: kmalloc, kfree, krealloc and friends.
 *
 * Every call is routed by size (allocation) or by page descriptor (free):
 *
 *   kmalloc(n)                           kfree(p)
 *      |                                    |
 *      | n <= 2048        n > 2048          | pg = pfa_virt_to_page(p)   O(1)
 *      v                   v                v
 *   class = size2class[(n+15)>>4]       in a pool in use? (arena    --yes--+
 *   lock                  lock          head + cls, km_pool_lookup)        |
 *                                           |no                        |
 *   pool_alloc_fast(c)    large_alloc()     PG_LARGE head, p aligned?  |
 *   unlock                unlock            |yes -> large_free()       |
 *      |                   |                |no  -> report, ignore     |
 *      +---> p <-----------+                                           v
 *                                     pool = page - pg->data pages;
 *                                     block in carved range, at a
 *                                     multiple of size, not free?
 *                                       yes -> pool_free_fast()
 *                                       no  -> report, ignore
 *
 * The fast paths take one spinlock (km.lock) around the pool operation
 * and nothing else: no division, no loop, no call but pfa_virt_to_page().
 * When per-CPU caches arrive they slot in where the lock is taken.
 *
 * Semantics decided here (see strata/kmalloc.h for the full list):
 *   kmalloc(0)       a unique 16-byte block (the smallest class)
 *   krealloc(p, 0)   kfree(p), returns NULL
 *   krealloc small   in place while the new size still fits the block and
 *                    wastes under a quarter of it; otherwise move
 *   krealloc large   in place when the run can shrink or grow (mm/large.c);
 *                    into the small classes it moves
 *   failures         NULL, with a kmalloc_report saying why (no log line:
 *                    a NULL return is the caller's business)
 *   bad pointers     one log line with pointer, reason and caller, a
 *                    kmalloc_report, and nothing freed
 */
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/percpu.h>
#include <strata/platform.h>

#include "kmalloc_internal.h"

struct km_state km;

#define RET_ADDR() __builtin_return_address(0)

void kmalloc_init(void)
{
	unsigned char *b = (unsigned char *)&km;

	for (size_t i = 0; i < sizeof km; i++)
		b[i] = 0;
	pool_classes_init();
	for (unsigned i = 0; i < KM_HINTS; i++)
		km.hint[i] = KM_HINT_NONE;
	pcpu_init();
	dbg_reset();
	/* odd multiplier mix; bit 0..3 set so that no encoded link of an
	 * aligned block equals a plain aligned pointer */
	km.secret = (uintptr_t)(mm_platform_entropy() * 0xD6E8FEB86659FD93ull) | 0xf;

	static struct pfa_stats ps;      /* large; init runs once */
	pfa_get_stats(&ps);
	km.lc_budget = ps.total_pages >> KM_LARGE_CACHE_RAM_SHIFT;
	if (km.lc_budget > (KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT))
		km.lc_budget = KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT;
	km.ready = true;
}

/* ------------------------------------------------------------------ */
/* reports                                                            */
/* ------------------------------------------------------------------ */

static const char *const report_names[KM_REPORT_KINDS] = {
	[KM_REPORT_NONE]    = "no report",
	[KM_BAD_UNMANAGED]  = "not in managed RAM",
	[KM_BAD_RESERVED]   = "reserved page",
	[KM_BAD_FREE_PAGE]  = "page is free (large run freed twice?)",
	[KM_BAD_FOREIGN]    = "page owned by another allocator",
	[KM_BAD_NOT_BLOCK]  = "inside an arena but not a block handed out",
	[KM_BAD_MISALIGNED] = "not the start of a block",
	[KM_BAD_INTERIOR]   = "inside a large run, not its start",
	[KM_DOUBLE_FREE]    = "block already free (double free)",
	[KM_BAD_WRONG_CACHE] = "object of another cache",
	[KM_FAIL_TOO_LARGE] = "request larger than the largest PFA block",
	[KM_FAIL_NOMEM]     = "out of memory",
	[KM_FAIL_BAD_ALIGN] = "alignment not a power of two or too large",
	[KM_FAIL_OVERFLOW]  = "n * size overflows",
};

const char *kmalloc_report_name(enum kmalloc_report_kind kind)
{
	return (unsigned)kind < KM_REPORT_KINDS ? report_names[kind] : "?";
}

/* Lock held. */
void km_report(enum kmalloc_report_kind kind, const char *op, const void *ptr,
	       size_t size, void *caller, unsigned owner)
{
	struct kmalloc_report *r = &km.last;
	uint64_t serial = r->serial + 1;

	r->kind = kind;
	r->op = op;
	r->ptr = ptr;
	r->size = size;
	r->caller = caller;
	r->page_owner = (uint8_t)owner;
	r->serial = serial;
	if (kind >= KM_FAIL_TOO_LARGE) {
		km.failures++;
		return;
	}
	km.bad_pointers++;
	mm_printf("strata: %s(%p): %s (page owner %u), caller %p\n", op, ptr,
		  report_names[kind], owner, caller);
}

void km_report_unlocked(enum kmalloc_report_kind kind, const char *op,
			    const void *ptr, size_t size, void *caller, unsigned owner)
{
	mm_spin_lock(&km.lock);
	km_report(kind, op, ptr, size, caller, owner);
	mm_spin_unlock(&km.lock);
}

void kmalloc_last_report(struct kmalloc_report *r)
{
	mm_spin_lock(&km.lock);
	*r = km.last;
	mm_spin_unlock(&km.lock);
}

void kmalloc_clear_report(void)
{
	mm_spin_lock(&km.lock);
	uint64_t serial = km.last.serial;
	km.last = (struct kmalloc_report){ .serial = serial };
	mm_spin_unlock(&km.lock);
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
	case PG_TAIL:
		l->why = inside_block(pg - pg->data);
		return;
	case PG_ARENA:
	case PG_PFA:
		l->why = inside_block(pg);
		return;
	case PG_RESERVED:
		l->why = KM_BAD_RESERVED;
		return;
	case PG_FREE:
	case PG_FREE_TAIL:
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
	if (km_likely(l->pool != NULL)) {
		l->why = pool_check_block(l->pool, p);
		l->kind = km_likely(l->why == KM_REPORT_NONE) ? KM_SMALL : KM_BAD;
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

	mm_spin_lock(&km.lock);
	void *p = large_alloc(size, align, flags, &why);
	if (!p)
		km_report((enum kmalloc_report_kind)why, "kmalloc", NULL, size, caller, 0);
	mm_spin_unlock(&km.lock);
	if (p && (flags & KM_ZERO))      /* all of it: krealloc relies on that */
		km_zero(p, large_usable(pfa_virt_to_page(p)));
	return p;
}

/* A block of class c; the slow path when the class has no used pool. */
static inline void *alloc_class(unsigned c, size_t size, unsigned flags, void *caller)
{
	void *p = pcpu_alloc(c);

	if (km_unlikely(!p)) {   /* no per-CPU cache here, or out of memory */
		mm_spin_lock(&km.lock);
		p = pool_alloc_fast(c);
		if (km_unlikely(!p))
			km_report(KM_FAIL_NOMEM, "kmalloc", NULL, size, caller, 0);
		mm_spin_unlock(&km.lock);
	}
	if (km_unlikely(flags & KM_ZERO) && p)
		km_zero(p, km.cls[c].size);
	return p;
}

static inline __attribute__((always_inline)) void *
km_alloc_raw(size_t size, unsigned flags, void *caller)
{
	if (km_likely(size <= KM_SMALL_MAX))
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
	void *p = (km_debug_on & MM_DBG_ALL) ? dbg_alloc(size, flags, caller)
					     : km_alloc_raw(size, flags, caller);
	if (p && (km_debug_on & KM_TRACING))
		trace_alloc(p, size, caller);
	return p;
}

static inline __attribute__((always_inline)) void *
km_alloc(size_t size, unsigned flags, void *caller)
{
	if (km_unlikely(km_debug_on))
		return km_alloc_hooked(size, flags, caller);
	return km_alloc_raw(size, flags, caller);
}

static __attribute__((noinline)) void *kmalloc_slow(size_t size, unsigned flags, void *caller)
{
	return km_alloc(size, flags, caller);
}

/* The fast path: pop a block from this CPU's loaded magazine of the
 * class (mm/percpu.c); no lock, no atomic.  Everything else (an empty
 * magazine, no per-CPU cache, large, zeroing) goes to kmalloc_slow(). */
void *kmalloc(size_t size, unsigned flags)
{
	if (km_likely(size <= KM_SMALL_MAX && (flags | km_debug_on) == 0)) {
		unsigned c = km_size_class(size);
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		if (km_likely(cpu < MM_MAX_CPUS)) {
			struct km_pcpu *pc = km_pcpu[cpu];
			if (km_likely(pc != NULL)) {
				struct km_block *b = mag_pop(pc->slot[c].loaded);
				if (km_likely(b != NULL)) {
					mm_irq_restore(irq);
					b->mark = 0;
					return b;
				}
			}
		}
		mm_irq_restore(irq);
	}
	return kmalloc_slow(size, flags, RET_ADDR());
}

void *kzalloc(size_t size, unsigned flags)
{
	return km_alloc(size, flags | KM_ZERO, RET_ADDR());
}

void *kcalloc(size_t n, size_t size, unsigned flags)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		km_report_unlocked(KM_FAIL_OVERFLOW, "kcalloc", NULL, n, RET_ADDR(), 0);
		return NULL;
	}
	return km_alloc(bytes, flags | KM_ZERO, RET_ADDR());
}

void *kmalloc_aligned(size_t size, size_t align, unsigned flags)
{
	void *caller = RET_ADDR();

	if (align == 0 || (align & (align - 1))) {
		km_report_unlocked(KM_FAIL_BAD_ALIGN, "kmalloc_aligned", NULL, align, caller, 0);
		return NULL;
	}
	if (align <= KMALLOC_MIN_ALIGN)
		return km_alloc(size, flags, caller);
	/* larger alignments: plain blocks, also in debug mode (debug.h) */
	void *p = NULL;
	if (size <= KM_SMALL_MAX) {
		/* the smallest class whose blocks all have this alignment */
		for (unsigned c = km_size_class(size); c < km.nclasses && !p; c++)
			if (km.cls[c].align >= align)
				p = alloc_class(c, size, flags, caller);
	}
	if (!p)
		p = alloc_large(size, align, flags, caller);
	if (p && (km_debug_on & KM_TRACING))
		trace_alloc(p, size, caller);
	return p;
}

/* ------------------------------------------------------------------ */
/* free                                                               */
/* ------------------------------------------------------------------ */

static void free_bad(const void *p, const struct km_lookup *l, void *caller)
{
	km_report(l->why, "kfree", p, 0, caller, l->owner);
}

/* Quiet lookup for debug.c: usable size of the block starting at p. */
size_t km_block_size_quiet(const void *p)
{
	struct page *pg = pfa_virt_to_page(p);
	struct km_lookup l;
	size_t n = 0;

	if (!pg)
		return 0;
	mm_spin_lock(&km.lock);
	lookup(p, pg, &l);
	if (l.kind == KM_SMALL)
		n = km.cls[l.pool->cls].size;
	else if (l.kind == KM_LARGE)
		n = large_usable(pg);
	mm_spin_unlock(&km.lock);
	return n;
}

/* Everything kfree's fast path does not take: NULL, debug mode, large
 * runs, bad pointers, a full magazine, no per-CPU cache. */
static __attribute__((noinline)) void kfree_generic(const void *p, void *caller)
{
	if (km_unlikely(!p))
		return;
	if (km_unlikely(km_debug_on)) {
		if (km_debug_on & KM_TRACING)
			trace_free(p);
		if ((km_debug_on & MM_DBG_ALL) && dbg_free(p, caller))
			return;
	}
	kfree_nodebug(p, caller);
}

void kfree_nodebug(const void *p, void *caller)
{
	struct page *pg = pfa_virt_to_page(p);
	if (km_unlikely(!pg)) {
		km_report_unlocked(KM_BAD_UNMANAGED, "kfree", p, 0, caller, 0);
		if (km_debug_on)
			mm_debug_bad_pointer(KM_BAD_UNMANAGED, p, caller);
		return;
	}

	struct km_lookup l;
	mm_spin_lock(&km.lock);
	lookup(p, pg, &l);
	if (km_likely(l.kind == KM_SMALL)) {
		unsigned c = l.pool->cls;
		mm_spin_unlock(&km.lock);
		if (pcpu_free(c, (void *)p))
			return;
		/* no per-CPU cache: the block is still ours to give back */
		mm_spin_lock(&km.lock);
		pool_free_fast(km_pool_of(p), (struct km_block *)p);
	} else if (l.kind == KM_LARGE)
		large_free((void *)p, pg);
	else
		free_bad(p, &l, caller);
	mm_spin_unlock(&km.lock);
	if (km_unlikely(l.kind == KM_BAD) && km_debug_on)
		mm_debug_bad_pointer(l.why, p, caller);
}

/* kfree of a checked block whose CPU's loaded magazine is full: swap
 * with the previous magazine or trade with the depot (pcpu_free), no
 * km.lock, no descriptor; the locked path only if there is no cache. */
static __attribute__((noinline)) void kfree_full(unsigned c, const void *p, void *caller)
{
	if (!pcpu_free(c, (void *)p))
		kfree_generic(p, caller);
}

/*
 * The fast path: p lies in an arena found in km.hint[] (no page
 * descriptor needed, see mm/arena.c), in a carved pool in use, at a block
 * handed out and not already free (its marks); it goes on this CPU's
 * loaded magazine of its class.  No lock: for a valid p its pool cannot
 * change class or go away under us (p is still allocated), and the
 * fields another CPU may be updating are read with km_load().
 * Returns KF_DONE, or KF_FULL (p checked, class *cls, magazine full: for
 * kfree_full()) or KF_GENERIC (anything else: for kfree_generic(), which
 * asks the page descriptor).  The callers make those tail calls and
 * compute their caller argument only there, so the fast path saves no
 * register and sets up no frame.
 */
enum { KF_DONE, KF_FULL, KF_GENERIC };

static inline __attribute__((always_inline)) int kfree_fast(const void *p, unsigned *cls)
{
	uintptr_t base = (uintptr_t)p & ~(KM_ARENA_SIZE - 1);

	if (km_likely(km_load(km.hint[km_hint_slot(base)]) == base) && km_likely(!km_debug_on)) {
		const struct km_arena *a = km_arena_of_base((void *)base);
		unsigned idx = (unsigned)(((uintptr_t)p - base) >> KM_POOL_SHIFT);
		struct km_pool *pool = (struct km_pool *)(base + ((uintptr_t)idx << KM_POOL_SHIFT));
		if (km_likely(idx < km_load(a->nextpool) && km_load(pool->live)) &&
		    km_likely(pool_block_ok_fast(pool, p))) {
			unsigned c = pool->cls;
			unsigned long irq = mm_irq_save();
			unsigned cpu = mm_cpu_id();
			if (km_likely(cpu < MM_MAX_CPUS)) {
				struct km_pcpu *pc = km_pcpu[cpu];
				struct km_block *b = (struct km_block *)p;
				if (km_likely(pc != NULL)) {
					if (km_likely(mag_push(pc->slot[c].loaded, b))) {
						b->mark = km_mag_mark(b);
						mm_irq_restore(irq);
						return KF_DONE;
					}
					mm_irq_restore(irq);
					*cls = c;
					return KF_FULL;
				}
			}
			mm_irq_restore(irq);
		}
	}
	return KF_GENERIC;
}

void kfree(const void *p)
{
	unsigned c;
	int r = kfree_fast(p, &c);

	if (km_likely(r == KF_DONE))
		return;
	if (r == KF_FULL)
		kfree_full(c, p, RET_ADDR());
	else
		kfree_generic(p, RET_ADDR());
}

/* kfree() for wrappers (free(), newlib's _free_r) that name their own
 * caller in reports; the same fast path. */
void kfree_caller(const void *p, void *caller)
{
	unsigned c;
	int r = kfree_fast(p, &c);

	if (km_likely(r == KF_DONE))
		return;
	if (r == KF_FULL)
		kfree_full(c, p, caller);
	else
		kfree_generic(p, caller);
}

/* ------------------------------------------------------------------ */
/* sizes and realloc                                                  */
/* ------------------------------------------------------------------ */

/* Usable size of p (lock held), 0 and a report if p is bad. */
static size_t usable_locked(const void *p, struct km_lookup *l, const char *op,
			    void *caller)
{
	struct page *pg = pfa_virt_to_page(p);

	if (!pg) {
		l->kind = KM_BAD;
		km_report(KM_BAD_UNMANAGED, op, p, 0, caller, 0);
		return 0;
	}
	lookup(p, pg, l);
	if (l->kind == KM_SMALL)
		return km.cls[l->pool->cls].size;
	if (l->kind == KM_LARGE)
		return large_usable(pg);
	km_report(l->why, op, p, 0, caller, l->owner);
	return 0;
}

size_t kmalloc_usable_size_caller(const void *p, void *caller)
{
	struct km_lookup l;

	if (!p)
		return 0;
	size_t d;
	if (km_unlikely(km_debug_on) && dbg_usable(p, &d))
		return d;
	mm_spin_lock(&km.lock);
	size_t n = usable_locked(p, &l, "kmalloc_usable_size", caller);
	mm_spin_unlock(&km.lock);
	return n;
}

size_t kmalloc_usable_size(const void *p)
{
	return kmalloc_usable_size_caller(p, RET_ADDR());
}

/* Can block p (of usable size `old`, small) hold `size` bytes in place? */
static bool small_fits(size_t old, size_t size)
{
	return size <= old && 4 * size > 3 * old;
}

void *krealloc_caller(void *p, size_t size, unsigned flags, void *caller)
{
	struct km_lookup l;

	if (!p)
		return km_alloc(size, flags, caller);
	if (size == 0) {
		kfree_caller(p, caller);
		return NULL;
	}
	size_t dsize;
	if (km_unlikely(km_debug_on) && dbg_usable(p, &dsize)) {
		/* a debug block: always moves, so stale pointers show */
		void *q = km_alloc(size, flags & ~KM_ZERO, caller);
		if (!q)
			return NULL;
		km_copy(q, p, dsize < size ? dsize : size);
		if ((flags & KM_ZERO) && size > dsize)
			km_zero_bytes((char *)q + dsize, size - dsize);
		kfree_caller(p, caller);
		return q;
	}

	mm_spin_lock(&km.lock);
	size_t old = usable_locked(p, &l, "krealloc", caller);
	bool in_place = false;
	if (l.kind == KM_SMALL)
		in_place = small_fits(old, size) || (size <= old && l.pool->cls == 0);
	else if (l.kind == KM_LARGE && size > KM_SMALL_MAX)
		in_place = large_resize(p, l.pg, size, false);
	if (in_place)
		km.realloc_in_place++;
	mm_spin_unlock(&km.lock);

	if (l.kind == KM_BAD)
		return NULL;
	if (in_place) {
		size_t now = l.kind == KM_LARGE ? large_usable(l.pg) : old;
		if (km_debug_on & KM_TRACING) {
			trace_free(p);
			trace_alloc(p, size, caller);
		}
		if ((flags & KM_ZERO) && now > old)
			km_zero((char *)p + old, now - old);
		return p;
	}

	void *q = km_alloc(size, flags & ~KM_ZERO, caller);
	if (!q) {
		if (size > old)
			return NULL;
		/* a shrink cannot fail: keep the block, as small as we can */
		if (l.kind == KM_LARGE) {
			mm_spin_lock(&km.lock);
			large_resize(p, l.pg, size, true);
			mm_spin_unlock(&km.lock);
		}
		return p;
	}
	km_copy(q, p, old < size ? old : size);
	if (flags & KM_ZERO) {
		size_t now = kmalloc_usable_size_caller(q, caller);
		if (now > old)
			km_zero((char *)q + old, now - old);
	}
	kfree_caller(p, caller);
	mm_spin_lock(&km.lock);
	km.realloc_moved++;
	mm_spin_unlock(&km.lock);
	return q;
}

void *krealloc(void *p, size_t size, unsigned flags)
{
	return krealloc_caller(p, size, flags, RET_ADDR());
}

/* Parked pools, the held and spare arenas (lock not held). */
uint64_t kmalloc_trim_pools(void)
{
	mm_spin_lock(&km.lock);
	uint64_t pages = arena_trim() + large_cache_flush();
	mm_spin_unlock(&km.lock);
	return pages;
}

uint64_t kmalloc_trim(void)
{
	return mm_reclaim();
}

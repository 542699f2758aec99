/*
 * kmalloc_internal.h - state shared by the object allocator's files:
 * mm/pool.c (size classes, pools, blocks), mm/arena.c (arenas),
 * mm/large.c (page runs), mm/kmalloc.c (front end), mm/kmalloc_stats.c.
 *
 * Nothing outside those files includes this header; the public interface
 * is strata/kmalloc.h.  The big picture is in the comment at the top of
 * mm/pool.c; the numbers behind the constants below are there too.
 *
 * One lock (km.lock) protects everything here.  Lock order: km.lock, then
 * the PFA's own lock (taken inside pfa_*() calls).
 */
#ifndef MM_KMALLOC_INTERNAL_H
#define MM_KMALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/spinlock.h>

#define km_likely(x)   __builtin_expect(!!(x), 1)

/* Fields that the lock-free kfree fast path reads while another CPU may
 * update them under km.lock (km.hint[], arena nextpool, pool live and
 * nextoffset) are accessed with relaxed atomics: plain loads and stores
 * in the generated code, and no data race for the C11 model (or TSan). */
#define km_load(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define km_store(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define km_unlikely(x) __builtin_expect(!!(x), 0)

/* ---- geometry (compile-time, overridable for measurements) ---- */
#ifndef KM_POOL_SHIFT
#define KM_POOL_SHIFT 14                 /* 16 KiB pools */
#endif
#ifndef KM_ARENA_SHIFT
#define KM_ARENA_SHIFT 20                /* 1 MiB arenas */
#endif

#define KM_POOL_SIZE      ((uintptr_t)1 << KM_POOL_SHIFT)
#define KM_ARENA_SIZE     ((uintptr_t)1 << KM_ARENA_SHIFT)
#define KM_ARENA_ORDER    (KM_ARENA_SHIFT - PAGE_SHIFT)
#define KM_POOL_PAGES     ((unsigned)(KM_POOL_SIZE >> PAGE_SHIFT))
#define KM_ARENA_POOLS    ((unsigned)(KM_ARENA_SIZE >> KM_POOL_SHIFT))
#define KM_SMALL_MAX      KMALLOC_SMALL_MAX
#define KM_LOOKUP_SLOTS   ((KM_SMALL_MAX >> 4) + 1)

_Static_assert(KM_POOL_SHIFT >= PAGE_SHIFT && KM_POOL_SHIFT <= 15,
	       "pool offsets are 16-bit; a pool is whole pages");
_Static_assert(KM_ARENA_SHIFT > KM_POOL_SHIFT &&
	       KM_ARENA_ORDER <= PFA_MAX_ORDER, "an arena is one PFA block");
_Static_assert(KM_SMALL_MAX % 16 == 0 && KM_SMALL_MAX <= 4096,
	       "size classes are multiples of 16");
_Static_assert(KM_ARENA_POOLS <= 1024, "arena bucket bitmap size");

/* ---- blocks, pools, arenas ---- */

/* A free block: the free list lives inside the free blocks themselves.
 *
 * Hardening (always on, after Linux's SLAB_FREELIST_HARDENED): the link is
 * stored encoded, next ^ km.secret ^ &block->enc, where the secret is
 * drawn at kmalloc_init() (mm_platform_entropy).  A use-after-free write
 * or an overflow from the block before that plants a pointer in a free
 * block yields garbage when decoded, and km_next() is checked on every
 * pop: the next block must be NULL or in the same pool.  A bad one is
 * reported (pool_freelist_corrupt) and never followed. */
struct km_block {
	uintptr_t enc;           /* encoded link, see km_next()/km_set_next() */
	uintptr_t mark;          /* km_free_mark(block) while on a free list */
};

static inline struct km_block *km_next(const struct km_block *b);
static inline void km_set_next(struct km_block *b, const struct km_block *next);

#define KM_FREE_MAGIC ((uintptr_t)0x6b6d6672656521a5ull)
static inline uintptr_t km_free_mark(const struct km_block *b)
{
	return (uintptr_t)b ^ KM_FREE_MAGIC;
}

/* A free block sitting in a per-CPU magazine (mm/percpu.c) carries this
 * mark instead: kfree of it again is a double free, told apart from a
 * block on its pool's free list. */
#define KM_MAG_MAGIC ((uintptr_t)0x6d61672d6361636bull)
static inline uintptr_t km_mag_mark(const struct km_block *b)
{
	return (uintptr_t)b ^ KM_MAG_MAGIC;
}

/* The pool a block lies in: pools are KM_POOL_SIZE-aligned (arenas are
 * naturally aligned PFA blocks, see arena.c). */
static inline struct km_pool *km_pool_of(const void *b)
{
	return (struct km_pool *)((uintptr_t)b & ~(KM_POOL_SIZE - 1));
}

/* The header at the start of every pool (48 bytes). */
struct km_pool {
	struct km_block *freeblock;   /* first free block; NULL: pool is full */
	struct km_pool *next;         /* usedpools[cls] list, or arena free list */
	struct km_pool *prev;         /* usedpools[cls] list */
	struct km_arena *arena;
	uint16_t ref;                 /* blocks handed out */
	uint16_t cls;                 /* size class */
	uint16_t first;               /* offset of block 0 */
	uint16_t nextoffset;          /* first never-carved block (lazy carving) */
	uint16_t maxnextoffset;       /* last offset a block fits at */
	uint16_t index;               /* pool number inside its arena */
	uint32_t live;                /* 1 while the pool serves a class */
};
_Static_assert(sizeof(struct km_pool) == 48, "pool header is 48 bytes");

/* The arena header lives in pool 0, right after that pool's header. */
struct km_arena {
	struct km_pool *freepools;    /* empty pools (singly linked via next) */
	struct km_arena *next, *prev; /* bucket list: arenas with equal nfreepools */
	struct km_arena *anext, *aprev; /* every arena */
	phys_addr_t pa;
	uint16_t nfreepools;          /* free pools, including never-carved ones */
	uint16_t nextpool;            /* first never-carved pool */
	uint32_t pad[3];
};
_Static_assert(sizeof(struct km_arena) == 64, "arena header is 64 bytes");

#define KM_HDR      ((unsigned)sizeof(struct km_pool))
#define KM_HDR0     ((unsigned)(sizeof(struct km_pool) + sizeof(struct km_arena)))
/* Block 0 starts on the cache line after the headers: the lock-free kfree
 * reads a pool's header (and pool 0's arena header) on every call, and a
 * block sharing that line, written by whoever owns it, would bounce the
 * line between CPUs (measured: 28% of kfree's cycles with 2 threads). */
#define KM_LINE     64u
#define KM_FIRST    ((KM_HDR + KM_LINE - 1) / KM_LINE * KM_LINE)
#define KM_FIRST0   ((KM_HDR0 + KM_LINE - 1) / KM_LINE * KM_LINE)

static inline struct km_arena *km_arena_of_base(void *arena_base)
{
	return (struct km_arena *)((char *)arena_base + KM_HDR);
}
static inline void *km_arena_base(const struct km_arena *a)
{
	return (char *)a - KM_HDR;
}
static inline struct km_pool *km_pool_at(const struct km_arena *a, unsigned i)
{
	return (struct km_pool *)((char *)km_arena_base(a) + (uintptr_t)i * KM_POOL_SIZE);
}

/* Per size class constants, computed by pool_classes_init(). */
struct km_class {
	uint32_t size;
	uint32_t recip;     /* floor(2^32 / size) + 1: offset / size by multiply */
	uint16_t first;     /* offset of block 0 in pools 1.. */
	uint16_t first0;    /* ... and in pool 0 (after the arena header) */
	uint16_t cap, cap0; /* blocks per pool */
	uint32_t align;     /* every block of the class is aligned to this */
};

#define KM_LARGE_CACHE_RUNS 256  /* freed runs kept for reuse (large.c) */
#define KM_LARGE_CACHE_MAX_BYTES (8u << 20)  /* ... at most this much, and */
#define KM_LARGE_CACHE_RAM_SHIFT 4            /* at most RAM / 16 */

#define KM_BUCKET_WORDS ((KM_ARENA_POOLS + 1 + 63) / 64)

/* Arena hints: a direct-mapped cache arena base -> "this is an arena",
 * so kfree's fast path finds a pool without the page descriptor. */
#define KM_HINTS     256
#define KM_HINT_NONE ((uintptr_t)1)     /* never an arena base */
static inline unsigned km_hint_slot(uintptr_t base)
{
	return (unsigned)(base >> KM_ARENA_SHIFT) & (KM_HINTS - 1);
}

struct km_state {
	/* --- hot --- */
	mm_spinlock_t lock;
	unsigned nclasses;
	struct km_pool *usedpools[KMALLOC_MAX_CLASSES];
	uint8_t size2class[KM_LOOKUP_SLOTS];     /* (size + 15) >> 4 -> class */
	struct km_class cls[KMALLOC_MAX_CLASSES];

	/* --- arenas --- */
	struct km_arena *bucket[KM_ARENA_POOLS + 1];  /* by nfreepools */
	uint64_t bucket_map[KM_BUCKET_WORDS];         /* bit k: bucket[k] != NULL */
	struct km_arena *all;                         /* every arena */
	struct km_arena *spare;                       /* one empty arena kept back */
	struct km_arena *held;                        /* ... or one with only parked pools */
	uintptr_t hint[KM_HINTS];                     /* arena bases (virtual), or NONE */
	uint64_t arenas_allocated_total, arenas_reclaimed_total;
	uint64_t arenas_current, arenas_highwater;

	/* --- large runs --- */
	uint64_t large_runs, large_pages, large_requested;
	phys_addr_t lc_pa[KM_LARGE_CACHE_RUNS];       /* run cache, FIFO ring */
	uint32_t lc_pages[KM_LARGE_CACHE_RUNS];       /* ... and each run's pages */
	unsigned lc_first, lc_count;
	uint64_t lc_budget;                           /* pages the cache may hold */
	uint64_t large_cached_pages, large_cache_hits;

	uintptr_t secret;                             /* free-list link encoding */

	/* --- counters --- */
	uint64_t internal_bytes, internal_blocks;      /* percpu.c's own blocks */
	uint64_t realloc_in_place, realloc_moved;
	uint64_t pfa_allocs, pfa_frees;
	uint64_t bad_pointers, failures, freelist_corruptions;
	struct kmalloc_report last;
	bool ready;
};

extern struct km_state km;

/* -DKM_HARDEN=0 turns the encoding and the check off: only for measuring
 * what they cost (tests/bench/debug_cost.c). */
#ifndef KM_HARDEN
#define KM_HARDEN 1
#endif

static inline struct km_block *km_next(const struct km_block *b)
{
	if (!KM_HARDEN)
		return (struct km_block *)b->enc;
	return (struct km_block *)(b->enc ^ km.secret ^ (uintptr_t)&b->enc);
}

static inline void km_set_next(struct km_block *b, const struct km_block *next)
{
	b->enc = KM_HARDEN ? (uintptr_t)next ^ km.secret ^ (uintptr_t)&b->enc : (uintptr_t)next;
}

/* May `next` follow a block of pool p on its free list? */
static inline bool km_next_ok(const struct km_pool *p, const struct km_block *next)
{
	return !KM_HARDEN || next == NULL ||
	       (((uintptr_t)next ^ (uintptr_t)p) < KM_POOL_SIZE && ((uintptr_t)next & 15) == 0);
}

/* ---- mm/pool.c ---- */
void pool_classes_init(void);
void *pool_alloc_slow(unsigned c);
void *pool_freelist_corrupt(struct km_pool *p, struct km_block *b, struct km_block *next);
void pool_free_slow(struct km_pool *p, bool was_full);
void pool_full_slow(struct km_pool *p);
bool pool_on_free_list(const struct km_pool *p, const struct km_block *b);

/* Size class of a request of `size` bytes (size <= KM_SMALL_MAX). */
static inline unsigned km_size_class(size_t size)
{
	return km.size2class[(size + 15) >> 4];
}

/* Take a block from the first used pool of class c (lock held). */
static inline void *pool_alloc_fast(unsigned c)
{
	struct km_pool *p = km.usedpools[c];

	if (km_likely(p != NULL)) {
		struct km_block *b = p->freeblock;   /* never NULL in usedpools */
		struct km_block *next = km_next(b);

		if (km_unlikely(!km_next_ok(p, next)))
			return pool_freelist_corrupt(p, b, next);
		p->ref++;
		p->freeblock = next;
		b->mark = 0;
		if (km_unlikely(next == NULL)) {
			/* free list used up: carve the next fresh block, if any */
			unsigned off = p->nextoffset;
			if (off <= p->maxnextoffset) {
				struct km_block *f = (struct km_block *)((char *)p + off);
				km_set_next(f, NULL);
				f->mark = km_free_mark(f);
				p->freeblock = f;
				km_store(p->nextoffset, (uint16_t)(off + km.cls[c].size));
			} else {
				pool_full_slow(p);   /* full: leaves usedpools */
			}
		}
		return b;
	}
	return pool_alloc_slow(c);
}

/* Freeing the last block of p changes nothing but p->ref: p is the only
 * pool of its class (so it stays parked on usedpools) and its arena is
 * the held one already (see arena_pool_parked()). */
static inline bool pool_stays_parked(const struct km_pool *p)
{
	return p->ref == 1 && p->arena == km.held && p->next == NULL &&
	       km.usedpools[p->cls] == p;
}

/* Give block b back to pool p (lock held, b checked by pool_check_block). */
static inline void pool_free_fast(struct km_pool *p, struct km_block *b)
{
	struct km_block *head = p->freeblock;

	km_set_next(b, head);
	b->mark = km_free_mark(b);
	p->freeblock = b;
	p->ref--;
	if (km_likely(head != NULL && p->ref != 0))
		return;
	pool_free_slow(p, head == NULL);
}

/* Is ptr a block pool p handed out and has not taken back?  The block
 * must lie in the carved part [first, nextoffset) at a multiple of the
 * size (division by multiplication: rel < 2^16, so the 32-bit reciprocal
 * is exact), and must not be on the free list.  KM_REPORT_NONE if fine. */
static inline enum kmalloc_report_kind pool_check_block(const struct km_pool *p,
							  const void *ptr)
{
	const struct km_class *k = &km.cls[p->cls];
	uint32_t rel = (uint32_t)((uintptr_t)ptr - (uintptr_t)p) - p->first;

	if (km_unlikely(rel >= (uint32_t)(km_load(p->nextoffset) - p->first)))
		return KM_BAD_NOT_BLOCK;       /* a header, or never carved */
	uint32_t q = (uint32_t)(((uint64_t)rel * k->recip) >> 32);
	if (km_unlikely(q * k->size != rel))
		return KM_BAD_MISALIGNED;
	const struct km_block *b = ptr;
	if (km_unlikely(b->mark == km_free_mark(b)) && pool_on_free_list(p, b))
		return KM_DOUBLE_FREE;
	if (km_unlikely(b->mark == km_mag_mark(b)))
		return KM_DOUBLE_FREE;         /* free in a per-CPU magazine */
	return KM_REPORT_NONE;
}

/* pool_check_block() without the free-list walk: false also when b
 * carries its free mark (a possible double free: the slow path decides).
 * No call in it, so kfree's fast path saves no registers. */
static inline bool pool_block_ok_fast(const struct km_pool *p, const void *ptr)
{
	const struct km_class *k = &km.cls[p->cls];
	uint32_t rel = (uint32_t)((uintptr_t)ptr - (uintptr_t)p) - p->first;
	const struct km_block *b = ptr;

	return rel < (uint32_t)(km_load(p->nextoffset) - p->first) &&
	       (uint32_t)(((uint64_t)rel * k->recip) >> 32) * k->size == rel &&
	       b->mark != km_free_mark(b) && b->mark != km_mag_mark(b);
}

/*
 * The pool holding the byte at va, or NULL if va is not in a pool in use.
 * Arena pages keep the descriptors the PFA gave them (head PG_ARENA, tails
 * PG_TAIL with data = distance to the head; pfa.h forbids touching those);
 * we only set `cls` = class + 1 on the pages of a pool in use.  Pools are
 * aligned inside their arena, so the pool starts (distance mod pool pages)
 * pages before va's page.  A block's descriptors are contiguous (the PFA
 * keeps each block inside one section), so the head is pg - distance.
 */
static inline struct km_pool *km_pool_lookup(const void *va, const struct page *pg)
{
	uint32_t dist = 0;
	const struct page *head = pg;

	if (km_likely(pg->owner == PG_TAIL)) {
		dist = pg->data;
		head = pg - dist;
	}
	if (km_unlikely(head->owner != PG_ARENA || pg->cls == 0))
		return NULL;
	uintptr_t page = (uintptr_t)va & ~(PAGE_SIZE - 1);
	return (struct km_pool *)(page - ((uintptr_t)(dist & (KM_POOL_PAGES - 1)) << PAGE_SHIFT));
}

/* ---- mm/percpu.c: per-CPU magazines in front of each size class ---- */
#include "magazine.h"

struct km_pcpu {
	struct mm_cpu_slot slot[KMALLOC_MAX_CLASSES];
};
extern struct km_pcpu *km_pcpu[MM_MAX_CPUS];
extern bool km_percpu_on;
/* Slow paths with interrupts handled inside; NULL / false when this
 * context has no per-CPU cache (the caller then takes the locked path). */
void *pcpu_alloc(unsigned c);
bool pcpu_free(unsigned c, void *b);
void pcpu_init(void);
uint64_t pcpu_cached_blocks(unsigned c);   /* in depots (not CPUs) */

uint64_t kmalloc_trim_pools(void);

/* ---- mm/slab.c: what the kmalloc side needs of the kmem caches ---- */
void kmem_cache_cpu_detach(unsigned cpu);
uint64_t kmem_cache_reclaim(void);
void kmem_cache_lock_all(void);
void kmem_cache_unlock_all(void);

/* ---- mm/debug.c (strata/debug.h) ---- */
#include <strata/debug.h>
#if MM_DEBUG
extern unsigned km_debug_on;          /* MM_DBG_* flags now in force */
#else
#define km_debug_on 0u                /* every debug branch folds away */
#endif
#define KM_TRACING 0x100u             /* in km_debug_on: mm/trace.c is on */
void trace_alloc(const void *p, size_t size, void *caller);
void trace_free(const void *p);
void *dbg_alloc(size_t size, unsigned flags, void *caller);
bool dbg_free(const void *p, void *caller);
bool dbg_usable(const void *p, size_t *size);   /* false: not a live debug block */
uint64_t dbg_flush_quarantine(void);
void dbg_reset(void);
void mm_debug_report_freelist(const struct km_pool *p, size_t size, const void *b,
			      const void *next);
void mm_debug_bad_pointer(enum kmalloc_report_kind why, const void *p, void *caller);
/* slab.c's debug caches: a damaged red zone or poison of object p of
 * `size` bytes in cache `name`, first bad byte `bad`. */
void mm_debug_report_cache(enum mm_bug_kind kind, const char *name, const void *p,
			   const void *bad, size_t size, size_t slot, void *caller);

/* ---- mm/kmalloc.c: the plain (non-debug) paths, for debug.c ---- */
void *km_alloc_nodebug(size_t size, unsigned flags, void *caller);
void kfree_nodebug(const void *p, void *caller);
/* Usable size if p is the start of a small block in use or of a large run
 * (no report otherwise: 0). */
size_t km_block_size_quiet(const void *p);

/* ---- mm/arena.c ---- */
struct km_pool *arena_take_pool(void);
void arena_return_pool(struct km_pool *p);
void arena_pool_parked(struct km_arena *a);
uint64_t arena_release_spare(void);
uint64_t arena_trim(void);
void arena_mark_pool(struct km_pool *p, bool in_use);

/* ---- mm/large.c ---- */
void *large_alloc(size_t size, size_t align, unsigned flags, int *why);
void large_free(void *p, struct page *pg);
size_t large_usable(const struct page *pg);
/* Resize in place; true on success (the run then has the new size).
 * A shrink always succeeds (force is kept for callers that insist). */
bool large_resize(void *p, struct page *pg, size_t size, bool force);
bool large_is_continuation(const struct page *head);
uint64_t large_cache_flush(void);   /* lock held; pages given back */
bool large_is_cached(const struct page *head);

/* ---- mm/kmalloc.c ---- */
void km_report(enum kmalloc_report_kind kind, const char *op, const void *ptr,
	       size_t size, void *caller, unsigned owner);
void km_report_unlocked(enum kmalloc_report_kind kind, const char *op, const void *ptr,
			size_t size, void *caller, unsigned owner);

/* ---- freestanding helpers (no libc in mm/) ---- */
static inline void km_zero(void *d, size_t n)   /* d, n: multiples of 8 */
{
	uint64_t *w = d;
	for (size_t i = 0; i < n / 8; i++)
		w[i] = 0;
}

static inline void km_zero_bytes(void *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((char *)d)[i] = 0;
}

static inline void km_copy(void *d, const void *s, size_t n)  /* 8-aligned */
{
	uint64_t *dw = d;
	const uint64_t *sw = s;
	size_t i;

	for (i = 0; i < n / 8; i++)
		dw[i] = sw[i];
	for (i *= 8; i < n; i++)
		((char *)d)[i] = ((const char *)s)[i];
}

/* Pages of a large run for `size` bytes (at least one). */
static inline uint64_t km_pages_for(size_t size)
{
	return size ? ((uint64_t)size + PAGE_SIZE - 1) >> PAGE_SHIFT : 1;
}

static inline unsigned km_ceil_log2(uint64_t n)   /* n >= 1 */
{
	return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(n - 1);
}

#endif

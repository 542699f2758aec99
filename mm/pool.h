/*
 * pool.h - the pool layer (level +2, above the arenas): size classes,
 * pools of one class (16 KiB pools for the small classes, 32..512 KiB
 * ones for the medium classes), and blocks (mm/pool.c has the whole
 * picture).
 *
 * Its state, struct pool_state, is written only by pool.c (and the inline
 * fast paths below), under pools.lock (hint[] is read without it).  That one lock also covers the
 * arena layer below (arena.h) and the large runs (large.h), whose callers
 * hold it: one lock for the object allocator, as before the split; it is
 * level MM_LOCK_POOLS in mm/lock_order.h.  Fields that kfree's lock-free
 * fast path reads while another CPU updates them (a pool's live and
 * carved) are accessed with mm_load()/mm_store().
 *
 * Free-list hardening (always on, after Linux's SLAB_FREELIST_HARDENED):
 * a free block's link is stored as next ^ pools.secret ^ &block->enc,
 * where the secret is drawn at kmalloc_init() (mm_platform_entropy).  A
 * use-after-free write or an overflow from the block before that plants a
 * pointer in a free block yields garbage when decoded, and km_next() is
 * checked on every pop: the next block must be NULL or in the same pool.
 * A bad one is reported (pool_freelist_corrupt, report.c) and never
 * followed.  The link is cleared when the block is handed out: a fresh
 * block's encoded NULL is secret ^ &block->enc, so leaving it would hand
 * the secret to the caller (and with it the power to forge links).
 */
#ifndef MM_POOL_H
#define MM_POOL_H

#include <strata/spinlock.h>

#include "arena.h"
#include "obj_layout.h"

/* Arena hints: a direct-mapped cache arena base -> "this is an arena
 * whose pools serve classes", so kfree's fast path finds a pool without
 * the page descriptor.  Kept by the pool layer next to the class table
 * kfree reads right after it (one base address for both).  A hint is
 * the base ORed with the arena's pool kind: the fast path XORs it with
 * the base, takes kind 0 (small pools) with a constant mask and a medium
 * kind with the mask of its pool size (pool_of_hinted, kmalloc_fast.h; also
 * kfree_nodebug's check for frees that did not come through the fast
 * path). */
#define KM_HINTS     256
#define KM_HINT_NONE ((uintptr_t)KM_ARENA_SIZE - 1)   /* never a base | kind */
static inline unsigned km_hint_slot(uintptr_t base)
{
	return (unsigned)(base >> KM_ARENA_SHIFT) & (KM_HINTS - 1);
}

struct pool_state {
	uintptr_t hint[KM_HINTS];                 /* arena bases (virtual), or NONE
	                                             (first: kfree's fast path
	                                             indexes it with no offset) */
	mm_spinlock_t lock;                       /* the object allocator's lock */
	unsigned nclasses;
	struct km_pool *usedpools[KMALLOC_MAX_CLASSES];
	uint8_t size2class[KM_LOOKUP_SLOTS];      /* (size + 15) >> 4 -> class */
	struct km_class cls[KMALLOC_MAX_CLASSES];
	uintptr_t secret;                         /* free-list link encoding */
	struct km_arena *held;                    /* an arena with only parked pools */
	uint64_t freelist_corruptions;
	unsigned reserves;                        /* kmalloc_reserve()s held */
};
extern struct pool_state pools MM_INTERNAL;

static inline struct km_block *km_next(const struct km_block *b)
{
	if (!KM_HARDEN)
		return (struct km_block *)b->enc;
	return (struct km_block *)(b->enc ^ pools.secret ^ (uintptr_t)&b->enc);
}

static inline void km_set_next(struct km_block *b, const struct km_block *next)
{
	b->enc = KM_HARDEN ? (uintptr_t)next ^ pools.secret ^ (uintptr_t)&b->enc : (uintptr_t)next;
}

/* May `next` follow a block of pool p on its free list?  It must lie in
 * p (at most maxnextoffset past its header, a field of the header line
 * the pop reads anyway) on a 16-byte boundary. */
static inline bool km_next_ok(const struct km_pool *p, const struct km_block *next)
{
	return !KM_HARDEN || next == NULL ||
	       ((uintptr_t)next - (uintptr_t)p <= p->maxnextoffset && ((uintptr_t)next & 15) == 0);
}

/* Classes, lists and the secret; the arenas too (kmalloc_init). */
void pool_init_all(uintptr_t secret);
void *pool_alloc_slow(unsigned c);
void *pool_freelist_corrupt(struct km_pool *p, struct km_block *b, struct km_block *next);
void pool_free_slow(struct km_pool *p, bool was_full);
void pool_full_slow(struct km_pool *p);
bool pool_on_free_list(const struct km_pool *p, const struct km_block *b);
/* kmalloc_trim(): every parked pool back, idle arenas emptied, the spare
 * freed (lock held); pages given back. */
uint64_t pool_trim(void);
/* kmalloc_reserve()'s half here (lock held): from now until the matching
 * pool_unreserve() an empty pool stays on its class's usedpools (so no
 * pool changes class and no arena goes back to the PFA), and n blocks of
 * class c are made free in pools (taken, then given back).  Returns how
 * many could be (fewer: out of memory).  The last pool_unreserve() sends
 * the empty pools kept meanwhile back as frees would have. */
unsigned pool_reserve(unsigned c, unsigned n);
void pool_unreserve(void);

/* The per-CPU layer's batches (lock held).  pool_alloc_bulk: up to n
 * blocks of class c into obj[], each marked km_mag_mark() (a block in a
 * magazine), taken a pool's run at a time: its free list, then blocks
 * never carved, with the pool's head and count written once; new pools
 * as needed.  How many (fewer: out of memory).  pool_free_bulk: n blocks
 * of class c that pool_check_block() passed back, a run of the same pool
 * at a time (the class says how to find a block's pool). */
unsigned pool_alloc_bulk(unsigned c, void **obj, unsigned n);
void pool_free_bulk(unsigned c, void **obj, unsigned n);

/* Size class of a request of `size` bytes (size <= KM_SMALL_MAX). */
static inline unsigned km_size_class(size_t size)
{
	return pools.size2class[(size + 15) >> 4];
}

/* Take a block from the first used pool of class c (lock held). */
static inline void *pool_alloc_fast(unsigned c)
{
	struct km_pool *p = pools.usedpools[c];

	if (mm_likely(p != NULL)) {
		struct km_block *b = p->freeblock;   /* never NULL in usedpools */
		struct km_block *next = km_next(b);

		if (mm_unlikely(!km_next_ok(p, next)))
			return pool_freelist_corrupt(p, b, next);
		p->ref++;
		p->freeblock = next;
		if (KM_HARDEN)
			b->enc = 0;  /* the encoded link would give the secret away */
		b->mark = 0;
		if (mm_unlikely(next == NULL)) {
			/* free list used up: carve the next fresh block, if any */
			unsigned off = p->first + p->carved;
			if (off <= p->maxnextoffset) {
				struct km_block *f = (struct km_block *)((char *)p + off);
				km_set_next(f, NULL);
				f->mark = km_free_mark(f);
				p->freeblock = f;
				mm_store(p->carved, p->carved + pools.cls[c].size);
			} else {
				pool_full_slow(p);   /* full: leaves usedpools */
			}
		}
		return b;
	}
	return pool_alloc_slow(c);
}

/* Give block b back to pool p (lock held, b checked by pool_check_block). */
static inline void pool_free_fast(struct km_pool *p, struct km_block *b)
{
	struct km_block *head = p->freeblock;

	km_set_next(b, head);
	b->mark = km_free_mark(b);
	p->freeblock = b;
	p->ref--;
	if (mm_likely(head != NULL && p->ref != 0))
		return;
	pool_free_slow(p, head == NULL);
}

/* Is ptr a block pool p handed out and has not taken back?  The block
 * must lie in the carved part [first, first + carved) at a multiple of
 * the size (mm_divisible: one multiply, one compare), and must not be on
 * the free list.  KM_REPORT_NONE if fine. */
static inline enum kmalloc_report_kind pool_check_block(const struct km_pool *p,
							  const void *ptr)
{
	uint32_t rel = (uint32_t)((uintptr_t)ptr - (uintptr_t)p) - p->first;

	if (mm_unlikely(rel >= mm_load(p->carved)))
		return KM_BAD_NOT_BLOCK;       /* a header, or never carved */
	if (mm_unlikely(!mm_divisible(rel, p->divc)))
		return KM_BAD_MISALIGNED;
	const struct km_block *b = ptr;
	if (mm_unlikely(b->mark == km_free_mark(b)) && pool_on_free_list(p, b))
		return KM_DOUBLE_FREE;
	if (mm_unlikely(b->mark == km_mag_mark(b)))
		return KM_DOUBLE_FREE;         /* free in a per-CPU magazine */
	return KM_REPORT_NONE;
}

/* pool_check_block() without the free-list walk: false also when b
 * carries its free mark (a possible double free: the slow path decides).
 * No call in it, so kfree's fast path saves no registers. */
static inline bool pool_block_ok_fast(const struct km_pool *p, const void *ptr)
{
	uint32_t rel = (uint32_t)((uintptr_t)ptr - (uintptr_t)p) - p->first;

	return rel < mm_load(p->carved) && mm_divisible(rel, p->divc) &&
	       !km_marked_free(ptr);
}

/*
 * The pool holding the byte at va, or NULL if va is not in a pool in use.
 * Arena pages keep the descriptors the PFA gave them (head PG_ARENA, the
 * others PG_FREE_TAIL; pfa.h forbids touching those); the arena layer
 * only sets `cls` = class + 1 on the pages of a pool in use (every other
 * page of memory has cls 0 there, pfa.h).  The arena's head is found by
 * pfa_virt_to_head() (at most 8 probes in an order-8 arena), and pools
 * are aligned inside their arena to their size (the class's pool_pages,
 * a power of two), so the pool starts (distance mod pool pages) pages
 * before va's page.
 */
static inline struct km_pool *km_pool_lookup(const void *va, const struct page *pg)
{
	uint32_t dist = 0;
	const struct page *head = pg;

	if (mm_unlikely(pg->cls == 0))
		return NULL;
	if (mm_likely(pg->owner == PG_FREE_TAIL))
		head = pfa_virt_to_head(va, &dist);
	if (mm_unlikely(!head || head->owner != PG_ARENA || pg->cls > pools.nclasses))
		return NULL;
	uint32_t pages = pools.cls[pg->cls - 1].pool_pages;
	uintptr_t page = (uintptr_t)va & ~(PAGE_SIZE - 1);
	return (struct km_pool *)(page - ((uintptr_t)(dist & (pages - 1)) << PAGE_SHIFT));
}

/* The pool of b, a block handed out (or in a magazine) of class c: a
 * mask for the small classes, the page descriptor for medium ones
 * (whose pools are aligned to their size in the arena, not necessarily
 * in virtual memory). */
static inline struct km_pool *km_pool_of_class(const void *b, unsigned c)
{
	if (mm_likely(pools.cls[c].kind == 0))
		return km_pool_of(b);
	return km_pool_lookup(b, pfa_virt_to_page(b));
}

/* The pool of b, a block of class c in a magazine (pools.lock held).
 * A medium class's pools are aligned to their size inside their arena,
 * so when the arena's hint (written under the same lock, hint_set) names
 * it as a 1 MiB aligned arena of c's pool kind, the pool is b rounded
 * down to the pool size: O(1), where the page-descriptor lookup
 * (km_pool_of_class: the descriptor, then up to PFA_MAX_ORDER probes for
 * the arena's head) cost a trim of medium blocks about 200 instructions
 * a block.  An arena without its hint (slot taken, not aligned) still
 * asks the descriptor, out of line (pool_of_unhinted), so that the
 * callers inlining this save no registers for it. */
struct km_pool *pool_of_unhinted(const void *b, unsigned c);
static inline struct km_pool *pool_of_bulk_block(const void *b, unsigned c)
{
	const struct km_class *k = &pools.cls[c];
	uintptr_t base = (uintptr_t)b & ~(KM_ARENA_SIZE - 1);

	if (mm_likely(k->kind == 0))
		return km_pool_of(b);
	if (mm_likely(pools.hint[km_hint_slot(base)] == (base | k->kind)))
		return (struct km_pool *)((uintptr_t)b & ~((uintptr_t)k->pool_size - 1));
	return pool_of_unhinted(b, c);
}

/* One block of class c from a magazine back to its pool, in the caller's
 * frame: a medium class's trim (T = 1, percpu.c class_flush). */
static inline void pool_free_one(unsigned c, void *b)
{
	pool_free_fast(pool_of_bulk_block(b, c), b);
}

#endif

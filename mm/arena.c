/*
 * arena.c - level +2 of strata: arenas, the PFA blocks pools are cut from.
 *
 * An arena is one naturally aligned PFA block of KM_ARENA_SIZE (1 MiB,
 * order 8) holding KM_ARENA_POOLS (64) pools of 16 KiB.  Pools are carved
 * lazily (nextpool), and an empty pool goes on the arena's free-pool list
 * for any size class to reuse.  The arena's header sits in pool 0 behind
 * that pool's own header (so it costs 64 bytes, not a pool).
 *
 * Which arena gives the next pool?  The MOST USED one that still has a
 * free pool, so that lightly used arenas drain and can go back to the
 * PFA (the lesson of CPython 3.8's arena ordering).  The arenas are kept
 * in buckets by their number of free pools, with a bitmap of non-empty
 * buckets:
 *
 *   nfreepools:  0       1       2       3     ...     63      64
 *               full  bucket[1] bucket[2] ...      bucket[63]  empty
 *              (no    A <-> D    (none)   B              C     -> spare
 *               list)                                             or PFA
 *   bucket_map:   . 1 0 1 ... 1        lowest set bit = the arena to use
 *
 * Taking or returning a pool moves an arena to the neighbouring bucket:
 * O(1) unlink + push, no sorting; finding the fullest usable arena is a
 * find-first-set over (64 + 1) / 64 + 1 words.  (CPython keeps one sorted
 * list plus a "last arena with k free pools" index per k; the buckets are
 * the same ordering, without the list walk at the boundaries.)
 *
 * When no block of an arena is handed out any more (every pool free, or
 * the only ones left are empty pools parked on usedpools, see pool.c),
 * the arena is UNUSED.  One unused arena is kept back, so that a workload
 * oscillating around an arena boundary does not call the PFA every time:
 * either as the SPARE (all pools free) or, if its only pools in use are
 * parked ones, as the HELD arena, pools and all (so a kmalloc(n);
 * kfree(p) loop in an otherwise empty allocator stays on the fast path).
 * Any further unused arena goes straight back to the PFA.
 * kmalloc_trim() returns parked pools, the held arena and the spare.
 *
 * Page descriptors of an arena: owner and data stay as the PFA set them
 * (strata/pfa.h reserves them; pfa_check() verifies them), we use cls:
 *
 *   page 0            PG_ARENA, order 8 (pfa_set_owner)
 *   other pages       PG_TAIL, data = distance to page 0
 *   every page        cls = size class + 1 while its pool is in use, else 0
 *
 * kfree(p): descriptor of p -> (PG_TAIL: head = pg - data) -> the head
 * says PG_ARENA and cls != 0 -> pool = p's page - (data mod 4) pages.  An
 * address in a free pool (cls 0) is told apart from a block that way.
 *
 * kfree's fast path skips the descriptor: km.hint[] caches the virtual
 * base of each arena (direct-mapped on base >> 20, 256 slots; an arena
 * whose slot is taken, or whose virtual base is not 1 MiB aligned, simply
 * goes the descriptor way).  p & ~(1 MiB - 1) found in its slot means p
 * is in our arena; its pool index must be below the arena's nextpool
 * (never-carved pool headers are garbage) and the pool's `live` flag set,
 * then the usual block checks apply.  Anything that fails a check takes
 * the slow path, which asks the descriptor and reports exactly.
 *
 * Arena size: 256 KiB (16 pools) or 1 MiB (64 pools)?  Measured with
 * tests/bench/bench_kmalloc.c --geometry (built with -DKM_ARENA_SHIFT=18
 * or 20, 16 KiB pools, 48 classes):
 *
 *                                         256 KiB arenas   1 MiB arenas
 *   ramps: 50,000 blocks up and down x10   1033 PFA calls    253 PFA calls
 *   churn: 2M steps, 4096 live, peak       24.85 MiB         24.85 MiB
 *   200,000 blocks, then 90% freed         83.0 MiB held     83.0 MiB held
 *     at random (7.9 MiB still in use)     (no arena empties either way)
 *   one block of each class (minimum)      0.75 MiB          1.00 MiB
 *
 * Smaller arenas return memory no better under random frees (a pool of
 * 15 blocks empties with probability 0.9^15 ~ 20%, an arena of 16 or 64
 * pools essentially never), but cost four times the PFA traffic when a
 * workload grows and shrinks, so arenas are 1 MiB: order 8, well below
 * the PFA's 4 MiB blocks, so they stay available in a fragmented PFA.
 */
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "kmalloc_internal.h"

/* ------------------------------------------------------------------ */
/* buckets                                                            */
/* ------------------------------------------------------------------ */

static bool in_buckets(unsigned nfree)
{
	return nfree > 0 && nfree < KM_ARENA_POOLS;
}

static void bucket_unlink(struct km_arena *a)
{
	unsigned k = a->nfreepools;

	if (!in_buckets(k))
		return;
	if (a->prev)
		a->prev->next = a->next;
	else
		km.bucket[k] = a->next;
	if (a->next)
		a->next->prev = a->prev;
	if (!km.bucket[k])
		km.bucket_map[k / 64] &= ~((uint64_t)1 << (k % 64));
}

static void bucket_push(struct km_arena *a)
{
	unsigned k = a->nfreepools;

	a->next = a->prev = NULL;
	if (!in_buckets(k))
		return;
	a->next = km.bucket[k];
	if (a->next)
		a->next->prev = a;
	km.bucket[k] = a;
	km.bucket_map[k / 64] |= (uint64_t)1 << (k % 64);
}

static void set_nfree(struct km_arena *a, unsigned nfree)
{
	bucket_unlink(a);
	a->nfreepools = (uint16_t)nfree;
	bucket_push(a);
}

/* The arena with the fewest free pools that has one, or NULL. */
static struct km_arena *fullest_usable(void)
{
	for (unsigned w = 0; w < KM_BUCKET_WORDS; w++)
		if (km.bucket_map[w])
			return km.bucket[w * 64 + (unsigned)__builtin_ctzll(km.bucket_map[w])];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* arenas from and to the PFA                                         */
/* ------------------------------------------------------------------ */

static struct km_arena *arena_new(void)
{
	phys_addr_t pa = pfa_alloc(KM_ARENA_ORDER, 0);

	if (!pa)
		return NULL;
	km.pfa_allocs++;
	pfa_set_owner(pa, KM_ARENA_ORDER, PG_ARENA);

	struct km_arena *a = km_arena_of_base(pfa_virt(pa));
	a->freepools = NULL;
	a->nfreepools = (uint16_t)KM_ARENA_POOLS;
	km_store(a->nextpool, (uint16_t)0);
	a->pa = pa;
	a->next = a->prev = NULL;
	a->aprev = NULL;
	a->anext = km.all;
	if (km.all)
		km.all->aprev = a;
	km.all = a;

	uintptr_t base = (uintptr_t)km_arena_base(a);
	if ((base & (KM_ARENA_SIZE - 1)) == 0)    /* direct map keeps alignment */
		km_store(km.hint[km_hint_slot(base)], base);
	km.arenas_allocated_total++;
	if (++km.arenas_current > km.arenas_highwater)
		km.arenas_highwater = km.arenas_current;
	return a;
}

static void arena_free(struct km_arena *a)
{
	uintptr_t base = (uintptr_t)km_arena_base(a);
	if (km.hint[km_hint_slot(base)] == base)
		km_store(km.hint[km_hint_slot(base)], KM_HINT_NONE);
	if (a->aprev)
		a->aprev->anext = a->anext;
	else
		km.all = a->anext;
	if (a->anext)
		a->anext->aprev = a->aprev;
	km.arenas_current--;
	km.arenas_reclaimed_total++;
	km.pfa_frees++;
	phys_addr_t pa = a->pa;     /* a lives in the pages being released */
	mm_platform_release(km_arena_base(a), KM_ARENA_SIZE);
	pfa_free(pa, KM_ARENA_ORDER);
}

static unsigned parked_in(const struct km_arena *a);

/* No block of a is handed out: all its pools are free or parked. */
static bool arena_unused(const struct km_arena *a)
{
	unsigned in_use = KM_ARENA_POOLS - a->nfreepools;
	return in_use <= km.nclasses && parked_in(a) == in_use;
}

/* Is there an unused arena other than a (the spare, or the held one)? */
static bool other_unused(const struct km_arena *a)
{
	if (km.spare && km.spare != a)
		return true;
	if (km.held && km.held != a && arena_unused(km.held))
		return true;
	km.held = NULL;
	return false;
}

/* Every pool of a is free: keep it as the spare or give it back. */
static void arena_idle(struct km_arena *a)
{
	bucket_unlink(a);
	a->freepools = NULL;        /* forget the free list: carve afresh */
	km_store(a->nextpool, (uint16_t)0);
	a->next = a->prev = NULL;
	if (km.held == a)
		km.held = NULL;
	if (!other_unused(a))
		km.spare = a;
	else
		arena_free(a);
}

uint64_t arena_release_spare(void)
{
	struct km_arena *a = km.spare;

	if (!a)
		return 0;
	km.spare = NULL;
	arena_free(a);
	return KM_ARENA_SIZE >> PAGE_SHIFT;
}

/* ------------------------------------------------------------------ */
/* pools from and to arenas                                           */
/* ------------------------------------------------------------------ */

/* Record in the page descriptors whether pool p holds blocks. */
void arena_mark_pool(struct km_pool *p, bool in_use)
{
	struct page *pg = pfa_virt_to_page(p);
	uint16_t cls = in_use ? (uint16_t)(p->cls + 1) : 0;

	for (unsigned i = 0; i < KM_POOL_PAGES; i++)
		pg[i].cls = cls;
}

struct km_pool *arena_take_pool(void)
{
	struct km_arena *a = fullest_usable();

	if (!a) {
		a = km.spare;
		km.spare = NULL;
		if (!a)
			a = arena_new();
		if (!a)
			return NULL;
	}

	struct km_pool *p = a->freepools;
	if (p) {
		a->freepools = p->next;
	} else {
		unsigned i = a->nextpool;   /* carve a fresh pool */
		km_store(a->nextpool, (uint16_t)(i + 1));
		p = km_pool_at(a, i);
		p->index = (uint16_t)i;
		p->arena = a;
	}
	p->next = p->prev = NULL;
	set_nfree(a, a->nfreepools - 1u);
	return p;
}

/* Put p on its arena's free-pool list; no further decision. */
static void arena_put_pool(struct km_pool *p)
{
	struct km_arena *a = p->arena;

	arena_mark_pool(p, false);
	km_store(p->live, 0u);
	p->ref = 0;
	p->next = a->freepools;
	a->freepools = p;
	set_nfree(a, a->nfreepools + 1u);
}

/* Pools of a parked on usedpools (each is the head of its class list). */
static unsigned parked_in(const struct km_arena *a)
{
	unsigned n = 0;

	for (unsigned c = 0; c < km.nclasses; c++) {
		const struct km_pool *p = km.usedpools[c];
		n += p && p->ref == 0 && p->arena == a;
	}
	return n;
}

/*
 * a lost a pool in use.  If no block of a is handed out any more, a is
 * "unused": one unused arena is kept (as the spare, or -- when its only
 * pools in use are parked ones -- as it is, the "held" arena, so that its
 * parked pools stay warm for a kmalloc/kfree loop); any other goes back
 * to the PFA, its parked pools first returned.
 */
static void arena_settle(struct km_arena *a)
{
	unsigned in_use = KM_ARENA_POOLS - a->nfreepools;

	if (in_use > km.nclasses || parked_in(a) != in_use)
		return;
	if (in_use > 0 && !other_unused(a)) {
		km.held = a;
		return;
	}
	for (unsigned c = 0; c < km.nclasses; c++) {
		struct km_pool *p = km.usedpools[c];
		if (p && p->ref == 0 && p->arena == a) {
			km.usedpools[c] = p->next;   /* parked: alone on its list */
			if (p->next)
				p->next->prev = NULL;
			arena_put_pool(p);
		}
	}
	arena_idle(a);
}

void arena_return_pool(struct km_pool *p)
{
	struct km_arena *a = p->arena;

	arena_put_pool(p);
	arena_settle(a);
}

/* A pool of a was parked.  If a is the held arena already, settling
 * would change nothing (a held arena means no spare exists, and a stays
 * held whether or not it is unused), so the kmalloc/kfree loop on an
 * otherwise empty allocator costs one compare here. */
void arena_pool_parked(struct km_arena *a)
{
	if (a != km.held)
		arena_settle(a);
}

/* kmalloc_trim(): every parked pool back, idle arenas emptied, spare freed. */
uint64_t arena_trim(void)
{
	uint64_t before = km.arenas_reclaimed_total;

	km.held = NULL;
	for (unsigned c = 0; c < km.nclasses; c++) {
		struct km_pool *p = km.usedpools[c];
		if (p && p->ref == 0) {
			struct km_arena *a = p->arena;
			km.usedpools[c] = p->next;
			if (p->next)
				p->next->prev = NULL;
			arena_put_pool(p);
			if (a->nfreepools == KM_ARENA_POOLS)
				arena_idle(a);
		}
	}
	arena_release_spare();
	return (km.arenas_reclaimed_total - before) * (KM_ARENA_SIZE >> PAGE_SHIFT);
}

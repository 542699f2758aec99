/*
 * arena.c - level +2 of strata, its lower half: arenas, the PFA blocks
 * pools are cut from (arena.h: the interface and the state).
 *
 * An arena is one naturally aligned PFA block of KM_ARENA_SIZE (1 MiB,
 * order 8) holding pools of one size, its KIND: kind 0 is KM_ARENA_POOLS
 * (64) pools of 16 KiB for the small classes, kind k is 64 >> k pools of
 * 16 KiB << k (32 KiB .. 512 KiB) for the medium classes (the class
 * table, pool.c, says which kind each class uses).  An arena takes its
 * kind when its first pool is carved and keeps it until it is empty
 * again (then, as the spare, it may take any kind).  Pools are carved
 * lazily (nextpool), and an empty pool goes on the arena's free-pool list
 * for any size class to reuse.  The arena's header sits in pool 0 behind
 * that pool's own header (so it costs 64 bytes, not a pool).
 *
 * Which arena gives the next pool?  The MOST USED one that still has a
 * free pool, so that lightly used arenas drain and can go back to the
 * PFA (the lesson of CPython 3.8's arena ordering).  The arenas of each
 * kind are kept in buckets by their number of free pools, with a bitmap
 * of non-empty buckets (one set of buckets per kind):
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
 * the only ones left are empty pools parked on usedpools), the arena is
 * UNUSED.  One unused arena is kept back, so that a workload oscillating
 * around an arena boundary does not call the PFA every time: either as
 * the SPARE (all pools free, kept here) or, if its only pools in use are
 * parked ones, as the HELD arena, pools and all (so a kmalloc(n);
 * kfree(p) loop in an otherwise empty allocator stays on the fast path).
 * Parked pools and the held arena belong to the pool layer above (pool.c
 * decides, then calls arena_put_pool / arena_retire here); this file never
 * reads the class lists.  Any further unused arena goes straight back to
 * the PFA.  kmalloc_trim() returns parked pools, the held arena and the
 * spare.
 *
 * Page descriptors of an arena: owners stay as the PFA set them
 * (strata/pfa.h reserves them; pfa_check() verifies them), we use cls:
 *
 *   page 0            PG_ARENA, order 8 (pfa_set_owner)
 *   other pages       PG_FREE_TAIL (the PFA never writes them: creating an
 *                     arena costs one descriptor, not 256)
 *   every page        cls = size class + 1 while its pool is in use, else 0
 *                     (0 again before the arena goes back: pfa.h's rule)
 *
 * kfree(p): descriptor of p has cls != 0 -> pfa_virt_to_head() (at most 8
 * probes) says PG_ARENA at distance d -> pool = p's page - (d mod pool
 * pages) pages, the class's pool pages (4 for 16 KiB pools).
 * An address in a free pool (cls 0) is told apart from a block that way.
 *
 * kfree's fast path skips the descriptor: pools.hint[] (the pool layer's,
 * pool.h) caches the virtual base of each arena, ORed with its kind
 * (direct-mapped on base >> 20, 256 slots; an arena
 * whose slot is taken, or whose virtual base is not 1 MiB aligned, simply
 * goes the descriptor way).  p & ~(1 MiB - 1) found in its slot means p
 * is in our arena; its offset in the arena must be below carved_end
 * (nextpool's pools, in bytes: never-carved pool headers are garbage),
 * then the usual block checks apply (a pool serving no class has an
 * empty carved range, pool.c's pool_release, so `live` is not read).  The fast path takes every kind
 * (hint ^ base is the kind: 0 with the small pool mask a constant, a
 * medium kind with its pool size's mask; pool.h).  Anything that fails a
 * check takes the slow path, which asks the descriptor and reports
 * exactly.
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
#include <strata/fault.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "arena.h"
#include "large.h"
#include "list.h"
#include "util.h"

struct arena_state arenas;

void arena_init(void)
{
	arenas = (struct arena_state){ 0 };
}

/* ------------------------------------------------------------------ */
/* buckets                                                            */
/* ------------------------------------------------------------------ */

static bool in_buckets(const struct km_arena *a)
{
	return a->nfreepools > 0 && a->nfreepools < a->npools;
}

static void bucket_unlink(struct km_arena *a)
{
	unsigned k = a->nfreepools, t = a->kind;

	if (!in_buckets(a))
		return;
	mm_list_unlink(&arenas.bucket[t][k], a);
	if (!arenas.bucket[t][k])
		arenas.bucket_map[t][k / 64] &= ~((uint64_t)1 << (k % 64));
}

static void bucket_push(struct km_arena *a)
{
	unsigned k = a->nfreepools, t = a->kind;

	a->next = a->prev = NULL;
	if (!in_buckets(a))
		return;
	mm_list_push(&arenas.bucket[t][k], a);
	arenas.bucket_map[t][k / 64] |= (uint64_t)1 << (k % 64);
}

static void set_nfree(struct km_arena *a, unsigned nfree)
{
	bucket_unlink(a);
	a->nfreepools = (uint16_t)nfree;
	bucket_push(a);
}

/* The arena of this kind with the fewest free pools that has one, or NULL. */
static struct km_arena *fullest_usable(unsigned kind)
{
	for (unsigned w = 0; w < KM_BUCKET_WORDS; w++)
		if (arenas.bucket_map[kind][w])
			return arenas.bucket[kind][w * 64 + mm_ctz64(arenas.bucket_map[kind][w])];
	return NULL;
}

/* Pools [0, n) of a are carved; kfree's fast paths read both fields
 * without the lock (relaxed), so each is one store. */
static void set_nextpool(struct km_arena *a, unsigned n)
{
	mm_store(a->nextpool, (uint16_t)n);
	mm_store(a->carved_end, (uint32_t)n << a->pool_shift);
}

/* An arena with nothing carved becomes one of pools of this kind. */
static void arena_set_kind(struct km_arena *a, unsigned kind)
{
	a->kind = (uint8_t)kind;
	a->pool_shift = (uint8_t)(KM_POOL_SHIFT + kind);
	a->npools = (uint16_t)(KM_ARENA_POOLS >> kind);
	a->nfreepools = a->npools;
}

/* ------------------------------------------------------------------ */
/* arenas from and to the PFA                                         */
/* ------------------------------------------------------------------ */

static struct km_arena *arena_new(void)
{
	MM_PATH(MM_PATH_NEW_ARENA);
	if (MM_FAULT(MM_FAULT_ARENA))
		return NULL;
	phys_addr_t pa = pfa_alloc(KM_ARENA_ORDER, 0);

	if (!pa && large_cache_shed())   /* pressure: cached large runs give way */
		pa = pfa_alloc(KM_ARENA_ORDER, 0);
	if (!pa)
		return NULL;
	arenas.pfa_allocs++;
	pfa_set_owner(pa, KM_ARENA_ORDER, PG_ARENA);

	struct km_arena *a = km_arena_of_base(pfa_virt(pa));
	a->freepools = NULL;
	arena_set_kind(a, 0);
	set_nextpool(a, 0);
	a->pa = pa;
	a->next = a->prev = NULL;
	mm_list_push_by(&arenas.all, a, anext, aprev);
	arenas.allocated_total++;
	if (++arenas.current > arenas.highwater)
		arenas.highwater = arenas.current;
	return a;
}

static void arena_free(struct km_arena *a)
{
	MM_PATH(MM_PATH_ARENA_FREE);
	mm_list_unlink_by(&arenas.all, a, anext, aprev);
	arenas.current--;
	arenas.reclaimed_total++;
	arenas.pfa_frees++;
	phys_addr_t pa = a->pa;     /* a lives in the pages being released */
	mm_platform_release(km_arena_base(a), KM_ARENA_SIZE);
	pfa_free(pa, KM_ARENA_ORDER);
}

bool arena_spare_other_than(const struct km_arena *a)
{
	return arenas.spare && arenas.spare != a;
}

uint64_t arena_retire(struct km_arena *a, bool keep)
{
	bucket_unlink(a);
	a->freepools = NULL;        /* forget the free list: carve afresh */
	set_nextpool(a, 0);
	a->next = a->prev = NULL;
	if (keep) {
		arenas.spare = a;
		return 0;
	}
	arena_free(a);
	return KM_ARENA_SIZE >> PAGE_SHIFT;
}

uint64_t arena_release_spare(void)
{
	struct km_arena *a = arenas.spare;

	if (!a)
		return 0;
	arenas.spare = NULL;
	arena_free(a);
	return KM_ARENA_SIZE >> PAGE_SHIFT;
}

/* ------------------------------------------------------------------ */
/* pools from and to arenas                                           */
/* ------------------------------------------------------------------ */

void arena_mark_pool(struct km_pool *p, bool in_use)
{
	struct page *pg = pfa_virt_to_page(p);
	uint16_t cls = in_use ? (uint16_t)(p->cls + 1) : 0;
	unsigned pages = 1u << (p->arena->pool_shift - PAGE_SHIFT), i = 0;

	/* up to 128 pages (a 512 KiB pool, new or given back): four
	 * descriptors a step, a quarter of the loop's own instructions */
	for (; i + 4 <= pages; i += 4) {
		pg[i].cls = cls;
		pg[i + 1].cls = cls;
		pg[i + 2].cls = cls;
		pg[i + 3].cls = cls;
	}
	for (; i < pages; i++)   /* pools of 1 or 2 pages (KM_POOL_SHIFT 12, 13) */
		pg[i].cls = cls;
}

struct km_pool *arena_take_pool(unsigned kind)
{
	struct km_arena *a = fullest_usable(kind);

	if (!a) {
		a = arenas.spare;
		arenas.spare = NULL;
		if (a)
			MM_PATH(MM_PATH_SPARE);
		if (!a)
			a = arena_new();
		if (!a)
			return NULL;
		arena_set_kind(a, kind);    /* nothing carved in it */
	}

	struct km_pool *p = a->freepools;
	if (p) {
		a->freepools = p->next;
	} else {
		unsigned i = a->nextpool;   /* carve a fresh pool */
		set_nextpool(a, i + 1);
		p = km_pool_at(a, i);
		p->index = (uint16_t)i;
		p->arena = a;
	}
	p->next = p->prev = NULL;
	set_nfree(a, a->nfreepools - 1u);
	return p;
}

void arena_put_pool(struct km_pool *p)
{
	struct km_arena *a = p->arena;

	arena_mark_pool(p, false);
	p->next = a->freepools;
	a->freepools = p;
	set_nfree(a, a->nfreepools + 1u);
}

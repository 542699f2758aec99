/*
 * pool_check.c - the pool layer's consistency check, kmalloc_check():
 * every counter and list of the pools and arenas re-derived from the
 * pools themselves and from the page descriptors, each disagreement
 * reported.  It is the pool layer's part of mm_check_all() (mm/mm.c),
 * registered by pool_init_all(); the fuzzer runs it every 32 operations.
 *
 *   every arena (arenas.all) -> every pool carved in it:
 *       header (arena, index, class, offsets) sane?  free list inside the
 *       pool, each block marked free, count == capacity - ref?  page
 *       descriptors say the pool's class?
 *   every class list (usedpools[c]) -> each pool of class c with a free
 *       block; an empty (parked) pool only as the head, alone
 *   every bucket (one set per pool kind) -> the bitmap agrees; every
 *       pool's class of its arena's pool kind
 */
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#include "arena.h"
#include "pool.h"

static unsigned pool_capacity(const struct km_pool *p)
{
	const struct km_class *k = &pools.cls[p->cls];
	return (k->pool_size - p->first) / k->size;
}

/* ------------------------------------------------------------------ */
/* consistency check                                                  */
/* ------------------------------------------------------------------ */

#define PROBLEM(...) (mm_printf("kmalloc_check: " __VA_ARGS__), ++problems)

static int check_pool(const struct km_pool *p, const struct km_arena *a, unsigned i)
{
	int problems = 0;

	if (p->arena != a || p->index != i)
		PROBLEM("pool %p: arena %p index %u, expected %p %u\n", (void *)p,
			(void *)p->arena, p->index, (void *)a, i);
	if (p->cls >= pools.nclasses)
		return PROBLEM("pool %p: class %u\n", (void *)p, p->cls);
	const struct km_class *k = &pools.cls[p->cls];
	if (k->kind != a->kind || p->maxnextoffset != k->pool_size - k->size)
		return PROBLEM("pool %p: class %u of pool kind %u in an arena of kind %u\n",
			       (void *)p, p->cls, k->kind, a->kind);
	unsigned cap = pool_capacity(p);
	unsigned carved = p->carved / k->size;
	if (p->live == 2)      /* cut off after a corrupted free list (pool.c) */
		return 0;
	if (p->first != (i ? k->first : k->first0) || carved > cap ||
	    p->ref > carved || p->carved % k->size || p->divc != k->divc)
		return PROBLEM("pool %p: first %u carved %u ref %u cap %u divc %s\n", (void *)p,
			       p->first, p->carved, p->ref, cap,
			       p->divc == k->divc ? "ok" : "wrong");
	unsigned nfree = 0;
	for (const struct km_block *b = p->freeblock; b; b = km_next(b)) {
		uint32_t rel = (uint32_t)((uintptr_t)b - (uintptr_t)p) - p->first;
		if (rel >= p->carved || rel % k->size ||
		    b->mark != km_free_mark(b))
			return PROBLEM("pool %p: free block %p bad\n", (void *)p, (void *)b);
		if (++nfree > carved)
			return PROBLEM("pool %p: free list too long\n", (void *)p);
	}
	if (nfree + p->ref != carved)
		PROBLEM("pool %p: %u free + %u used != %u carved\n", (void *)p, nfree,
			p->ref, carved);
	if ((p->freeblock == NULL) != (p->ref == cap))
		PROBLEM("pool %p: freeblock %p with %u of %u used\n", (void *)p,
			(void *)p->freeblock, p->ref, cap);
	struct page *pg = pfa_virt_to_page(p);
	for (unsigned j = 0; j < k->pool_pages; j++)
		if (km_pool_lookup((char *)p + j * PAGE_SIZE, &pg[j]) != p ||
		    pg[j].cls != p->cls + 1)
			PROBLEM("pool %p: page %u descriptor %u/%u/%u\n", (void *)p, j,
				pg[j].owner, pg[j].cls, (unsigned)pg[j].data);
	return problems;
}

static bool in_bucket(const struct km_arena *a)
{
	for (const struct km_arena *b = arenas.bucket[a->kind][a->nfreepools]; b; b = b->next)
		if (b == a)
			return true;
	return false;
}

static int check_arena(const struct km_arena *a, uint64_t *nonfull_pools)
{
	int problems = 0;
	unsigned used = 0, listed = 0;

	for (unsigned i = 0; i < a->nextpool; i++) {
		if (!arena_pool_in_use(a, i))
			continue;
		const struct km_pool *p = km_pool_at(a, i);
		used++;
		problems += check_pool(p, a, i);
		*nonfull_pools += p->freeblock != NULL;
	}
	for (const struct km_pool *p = a->freepools; p; p = p->next) {
		if (p->index >= a->nextpool || arena_pool_in_use(a, p->index) || ++listed > a->nextpool) {
			PROBLEM("arena %p: bad free pool %p\n", (void *)a, (void *)p);
			break;
		}
	}
	if (a->kind >= KM_KINDS || a->pool_shift != KM_POOL_SHIFT + a->kind ||
	    a->npools != KM_ARENA_POOLS >> a->kind)
		return PROBLEM("arena %p: kind %u, pools of 2^%u bytes, %u pools\n", (void *)a,
			       a->kind, a->pool_shift, a->npools);
	if (used + listed != a->nextpool || a->nfreepools != a->npools - used)
		PROBLEM("arena %p: %u used + %u free != %u carved, nfreepools %u\n",
			(void *)a, used, listed, a->nextpool, a->nfreepools);
	if (a->nfreepools > 0 && a->nfreepools < a->npools && !in_bucket(a))
		PROBLEM("arena %p: not in bucket %u\n", (void *)a, a->nfreepools);
	if (a == arenas.spare && a->nfreepools != a->npools)
		PROBLEM("spare arena %p has pools in use\n", (void *)a);
	return problems;
}

int kmalloc_check(void)
{
	int problems = 0;
	uint64_t narenas = 0, nonfull = 0, listed = 0;

	mm_spin_lock(&pools.lock);
	for (const struct km_arena *a = arenas.all; a; a = a->anext) {
		problems += check_arena(a, &nonfull);
		if (++narenas > arenas.current)
			break;
	}
	if (narenas != arenas.current)
		PROBLEM("%llu arenas listed, %llu counted\n", (unsigned long long)narenas,
			(unsigned long long)arenas.current);
	for (unsigned c = 0; c < pools.nclasses; c++) {
		for (const struct km_pool *p = pools.usedpools[c]; p; p = p->next) {
			const struct page *pg = pfa_virt_to_page(p);
			if (!pg || km_pool_lookup(p, pg) != p || p->cls != c || !p->freeblock ||
			    (p->next && p->next->prev != p)) {
				PROBLEM("usedpools[%u]: bad pool %p\n", c, (void *)p);
				break;
			}
			if (p->ref == 0 && (p != pools.usedpools[c] || p->next) && !pools.reserves)
				PROBLEM("usedpools[%u]: empty pool %p not alone\n", c, (void *)p);
			listed++;
		}
	}
	if (listed != nonfull)
		PROBLEM("%llu pools on usedpools, %llu pools with a free block\n",
			(unsigned long long)listed, (unsigned long long)nonfull);
	for (unsigned t = 0; t < KM_KINDS; t++)
		for (unsigned k = 0; k <= KM_ARENA_POOLS; k++)
			if (!!arenas.bucket[t][k] !=
			    !!(arenas.bucket_map[t][k / 64] & ((uint64_t)1 << (k % 64))))
				PROBLEM("bucket %u of kind %u and its bitmap bit disagree\n", k, t);
	mm_spin_unlock(&pools.lock);
	return problems;
}

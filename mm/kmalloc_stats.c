/*
 * kmalloc_stats.c - what the object allocator holds, and a consistency
 * check of all of it.
 *
 * kmalloc_get_stats() walks every arena and every carved pool (under the
 * lock) and sorts each byte of each arena into exactly one bucket, so the
 * books balance to the byte:
 *
 *   arenas_current * arena_size  ==  bytes in allocated blocks
 *                                  + bytes in available blocks
 *                                  + bytes in unused (empty) pools
 *                                  + pool and arena headers (+ alignment pad)
 *                                  + quantization (pool tails < one block)
 *
 *   pfa_pages == arenas_current * arena pages + large_pages
 *             == what the PFA's free page count dropped by because of us
 *
 * kmalloc_print_stats() prints that in the spirit of CPython's
 * sys._debugmallocstats():
 *
 *   class   size   num pools   blocks in use  avail blocks
 *   -----   ----   ---------   -------------  ------------
 *       0     16           1              12          1009
 *   ...
 *   # arenas allocated total           =                    3
 *   ...
 *
 * kmalloc_check() re-derives every counter and list from the pools and
 * page descriptors and reports each disagreement.
 */
#include <stdarg.h>
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "kmalloc_internal.h"

static bool pool_in_use(const struct km_arena *a, unsigned i)
{
	if (i >= a->nextpool)
		return false;
	const struct page *pg = pfa_virt_to_page(km_pool_at(a, i));
	return pg && pg->cls != 0;
}

static unsigned pool_capacity(const struct km_pool *p)
{
	return (unsigned)((KM_POOL_SIZE - p->first) / km.cls[p->cls].size);
}

static void arena_stats(const struct km_arena *a, struct kmalloc_stats *st)
{
	uint64_t used = 0;

	for (unsigned i = 0; i < KM_ARENA_POOLS; i++) {
		unsigned hdr0 = i == 0 ? KM_HDR0 : 0;   /* the arena header */
		if (!pool_in_use(a, i)) {
			st->unused_pools++;
			st->bytes_unused_pools += KM_POOL_SIZE - hdr0;
			st->bytes_pool_headers += hdr0;
			continue;
		}
		const struct km_pool *p = km_pool_at(a, i);
		const struct km_class *k = &km.cls[p->cls];
		struct kmalloc_class_stats *cs = &st->cls[p->cls];
		unsigned cap = pool_capacity(p);

		cs->pools++;
		cs->full_pools += p->freeblock == NULL;
		cs->blocks_used += p->ref;
		cs->blocks_avail += cap - p->ref;
		st->bytes_allocated_blocks += (uint64_t)p->ref * k->size;
		st->bytes_available_blocks += (uint64_t)(cap - p->ref) * k->size;
		st->bytes_pool_headers += p->first;
		st->bytes_quantization += KM_POOL_SIZE - p->first - (uint64_t)cap * k->size;
		used += p->ref;
	}
	st->arenas_spare += used == 0;
}

void kmalloc_get_stats(struct kmalloc_stats *st)
{
	unsigned char *b = (unsigned char *)st;
	for (size_t i = 0; i < sizeof *st; i++)
		b[i] = 0;

	for (unsigned c = 0; c < km.nclasses; c++) {
		uint64_t n = pcpu_cached_blocks(c);
		st->percpu_cached_blocks += n;
		st->percpu_cached_bytes += n * km.cls[c].size;
	}
	mm_spin_lock(&km.lock);
	st->bytes_internal = km.internal_bytes;
	st->blocks_internal = km.internal_blocks;
	st->nclasses = km.nclasses;
	st->small_max = KM_SMALL_MAX;
	st->pool_size = KM_POOL_SIZE;
	st->arena_size = KM_ARENA_SIZE;
	for (unsigned c = 0; c < km.nclasses; c++) {
		st->cls[c].size = km.cls[c].size;
		st->cls[c].blocks_per_pool = km.cls[c].cap;
	}
	for (const struct km_arena *a = km.all; a; a = a->anext)
		arena_stats(a, st);

	st->arenas_allocated_total = km.arenas_allocated_total;
	st->arenas_reclaimed_total = km.arenas_reclaimed_total;
	st->arenas_highwater = km.arenas_highwater;
	st->arenas_current = km.arenas_current;
	st->large_runs = km.large_runs;
	st->large_pages = km.large_pages;
	st->large_bytes_requested = km.large_requested;
	st->large_bytes_rounding = (km.large_pages << PAGE_SHIFT) - km.large_requested;
	st->large_cached_pages = km.large_cached_pages;
	st->pfa_pages = km.arenas_current * (KM_ARENA_SIZE >> PAGE_SHIFT) + km.large_pages +
			km.large_cached_pages;
	st->realloc_in_place = km.realloc_in_place;
	st->realloc_moved = km.realloc_moved;
	st->pfa_allocs = km.pfa_allocs;
	st->pfa_frees = km.pfa_frees;
	st->bad_pointers = km.bad_pointers;
	st->failures = km.failures;
	mm_spin_unlock(&km.lock);
}

/* ------------------------------------------------------------------ */
/* printing                                                           */
/* ------------------------------------------------------------------ */

struct printer {
	void (*out)(const char *s, size_t n);
};

__attribute__((format(printf, 2, 3)))
static void pr(struct printer *o, const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	int n = mm_vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1)
		n = (int)sizeof buf - 1;
	o->out(buf, (size_t)n);
}

/* 1234567 -> "1,234,567" */
static const char *commas(char *buf, uint64_t v)
{
	char tmp[32];
	int n = 0, k = 0;

	do {
		if (n && n % 3 == 0)
			tmp[k++] = ',';
		tmp[k++] = (char)('0' + v % 10);
		v /= 10;
		n++;
	} while (v);
	for (int i = 0; i < k; i++)
		buf[i] = tmp[k - 1 - i];
	buf[k] = '\0';
	return buf;
}

static void line(struct printer *o, const char *label, uint64_t v)
{
	char num[32];
	pr(o, "%-35s= %20s\n", label, commas(num, v));
}

void kmalloc_print_stats(void (*out)(const char *s, size_t n))
{
	static struct kmalloc_stats st;   /* big: not on a kernel stack */
	struct printer o = { out };
	char label[64];

	kmalloc_get_stats(&st);
	pr(&o, "Small block threshold = %zu, in %u size classes.\n",
	   st.small_max, st.nclasses);
	pr(&o, "Pools of %zu bytes, arenas of %zu bytes.\n\n", st.pool_size,
	   st.arena_size);
	pr(&o, "class   size   num pools   blocks in use  avail blocks\n");
	pr(&o, "-----   ----   ---------   -------------  ------------\n");
	for (unsigned c = 0; c < st.nclasses; c++) {
		const struct kmalloc_class_stats *cs = &st.cls[c];
		if (!cs->pools)
			continue;
		pr(&o, "%5u %6u %11llu %15llu %13llu\n", c, (unsigned)cs->size,
		   (unsigned long long)cs->pools, (unsigned long long)cs->blocks_used,
		   (unsigned long long)cs->blocks_avail);
	}
	pr(&o, "\n");
	line(&o, "# arenas allocated total", st.arenas_allocated_total);
	line(&o, "# arenas reclaimed", st.arenas_reclaimed_total);
	line(&o, "# arenas highwater mark", st.arenas_highwater);
	line(&o, "# arenas allocated current", st.arenas_current);
	line(&o, "# arenas kept back unused", st.arenas_spare);
	mm_snprintf(label, sizeof label, "%llu arenas * %zu bytes/arena",
		    (unsigned long long)st.arenas_current, st.arena_size);
	line(&o, label, st.arenas_current * st.arena_size);
	pr(&o, "\n");
	line(&o, "# bytes in allocated blocks", st.bytes_allocated_blocks);
	line(&o, "#   of which free in per-CPU magazines", st.percpu_cached_bytes);
	line(&o, "#   of which magazines and per-CPU areas", st.bytes_internal);
	line(&o, "# bytes in available blocks", st.bytes_available_blocks);
	mm_snprintf(label, sizeof label, "%llu unused pools * %zu bytes",
		    (unsigned long long)st.unused_pools, st.pool_size);
	line(&o, label, st.bytes_unused_pools);
	line(&o, "# bytes lost to pool headers", st.bytes_pool_headers);
	line(&o, "# bytes lost to quantization", st.bytes_quantization);
	line(&o, "Total", st.bytes_allocated_blocks + st.bytes_available_blocks +
		 st.bytes_unused_pools + st.bytes_pool_headers + st.bytes_quantization);
	pr(&o, "\n");
	line(&o, "# large runs", st.large_runs);
	mm_snprintf(label, sizeof label, "%llu large pages * %lu bytes",
		    (unsigned long long)st.large_pages, (unsigned long)PAGE_SIZE);
	line(&o, label, st.large_pages << PAGE_SHIFT);
	line(&o, "# bytes requested in large runs", st.large_bytes_requested);
	line(&o, "# bytes lost to page rounding", st.large_bytes_rounding);
	line(&o, "# pages held from the PFA", st.pfa_pages);
	pr(&o, "\n");
	line(&o, "# krealloc in place", st.realloc_in_place);
	line(&o, "# krealloc moved", st.realloc_moved);
	line(&o, "# PFA blocks taken by kmalloc", st.pfa_allocs);
	line(&o, "# PFA blocks given back", st.pfa_frees);
	line(&o, "# bad pointers reported", st.bad_pointers);
	line(&o, "# failed allocations", st.failures);
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
	if (p->cls >= km.nclasses)
		return PROBLEM("pool %p: class %u\n", (void *)p, p->cls);
	const struct km_class *k = &km.cls[p->cls];
	unsigned cap = pool_capacity(p);
	unsigned carved = (p->nextoffset - p->first) / k->size;
	if (p->live == 2)      /* cut off after a corrupted free list (pool.c) */
		return 0;
	if (p->first != (i ? k->first : k->first0) || carved > cap ||
	    p->ref > carved || (p->nextoffset - p->first) % k->size)
		return PROBLEM("pool %p: first %u next %u ref %u cap %u\n", (void *)p,
			       p->first, p->nextoffset, p->ref, cap);
	unsigned nfree = 0;
	for (const struct km_block *b = p->freeblock; b; b = km_next(b)) {
		uint32_t rel = (uint32_t)((uintptr_t)b - (uintptr_t)p) - p->first;
		if (rel >= (uint32_t)(p->nextoffset - p->first) || rel % k->size ||
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
	for (unsigned j = 0; j < KM_POOL_PAGES; j++)
		if (km_pool_lookup((char *)p + j * PAGE_SIZE, &pg[j]) != p ||
		    pg[j].cls != p->cls + 1)
			PROBLEM("pool %p: page %u descriptor %u/%u/%u\n", (void *)p, j,
				pg[j].owner, pg[j].cls, (unsigned)pg[j].data);
	return problems;
}

static bool in_bucket(const struct km_arena *a)
{
	for (const struct km_arena *b = km.bucket[a->nfreepools]; b; b = b->next)
		if (b == a)
			return true;
	return false;
}

static int check_arena(const struct km_arena *a, uint64_t *nonfull_pools)
{
	int problems = 0;
	unsigned used = 0, listed = 0;

	for (unsigned i = 0; i < a->nextpool; i++) {
		if (!pool_in_use(a, i))
			continue;
		const struct km_pool *p = km_pool_at(a, i);
		used++;
		problems += check_pool(p, a, i);
		*nonfull_pools += p->freeblock != NULL;
	}
	for (const struct km_pool *p = a->freepools; p; p = p->next) {
		if (p->index >= a->nextpool || pool_in_use(a, p->index) || ++listed > a->nextpool) {
			PROBLEM("arena %p: bad free pool %p\n", (void *)a, (void *)p);
			break;
		}
	}
	if (used + listed != a->nextpool || a->nfreepools != KM_ARENA_POOLS - used)
		PROBLEM("arena %p: %u used + %u free != %u carved, nfreepools %u\n",
			(void *)a, used, listed, a->nextpool, a->nfreepools);
	if (a->nfreepools > 0 && a->nfreepools < KM_ARENA_POOLS && !in_bucket(a))
		PROBLEM("arena %p: not in bucket %u\n", (void *)a, a->nfreepools);
	if (a == km.spare && a->nfreepools != KM_ARENA_POOLS)
		PROBLEM("spare arena %p has pools in use\n", (void *)a);
	return problems;
}

int kmalloc_check(void)
{
	int problems = 0;
	uint64_t narenas = 0, nonfull = 0, listed = 0;

	mm_spin_lock(&km.lock);
	for (const struct km_arena *a = km.all; a; a = a->anext) {
		problems += check_arena(a, &nonfull);
		if (++narenas > km.arenas_current)
			break;
	}
	if (narenas != km.arenas_current)
		PROBLEM("%llu arenas listed, %llu counted\n", (unsigned long long)narenas,
			(unsigned long long)km.arenas_current);
	for (unsigned c = 0; c < km.nclasses; c++) {
		for (const struct km_pool *p = km.usedpools[c]; p; p = p->next) {
			const struct page *pg = pfa_virt_to_page(p);
			if (!pg || km_pool_lookup(p, pg) != p || p->cls != c || !p->freeblock ||
			    (p->next && p->next->prev != p)) {
				PROBLEM("usedpools[%u]: bad pool %p\n", c, (void *)p);
				break;
			}
			if (p->ref == 0 && (p != km.usedpools[c] || p->next))
				PROBLEM("usedpools[%u]: empty pool %p not alone\n", c, (void *)p);
			listed++;
		}
	}
	if (listed != nonfull)
		PROBLEM("%llu pools on usedpools, %llu pools with a free block\n",
			(unsigned long long)listed, (unsigned long long)nonfull);
	for (unsigned k = 0; k <= KM_ARENA_POOLS; k++)
		if (!!km.bucket[k] != !!(km.bucket_map[k / 64] & ((uint64_t)1 << (k % 64))))
			PROBLEM("bucket %u and its bitmap bit disagree\n", k);
	mm_spin_unlock(&km.lock);
	return problems;
}

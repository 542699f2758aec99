/*
 * kmalloc_stats.c - what the object allocator holds, to the byte.
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
 * An observer: it reads the pool, arena, large-run, guard and per-CPU layers
 * through their headers and calls, and nothing calls it.  (The check of
 * the same structures, kmalloc_check(), is the pool layer's: pool_check.c.)
 */
#include <stdarg.h>
#include <strata/format.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "kmalloc_front.h"
#include "large.h"
#include "percpu_internal.h"
#include "pool.h"
#include "report.h"

static void arena_stats(const struct km_arena *a, struct kmalloc_stats *st)
{
	uint64_t used = 0;

	for (unsigned i = 0; i < KM_ARENA_POOLS; i++) {
		unsigned hdr0 = i == 0 ? KM_HDR0 : 0;   /* the arena header */
		if (!arena_pool_in_use(a, i)) {
			st->unused_pools++;
			st->bytes_unused_pools += KM_POOL_SIZE - hdr0;
			st->bytes_pool_headers += hdr0;
			continue;
		}
		const struct km_pool *p = km_pool_at(a, i);
		const struct km_class *k = &pools.cls[p->cls];
		struct kmalloc_class_stats *cs = &st->cls[p->cls];
		unsigned cap = p->index == 0 ? k->cap0 : k->cap;

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

	for (unsigned c = 0; c < pools.nclasses; c++) {
		uint64_t n = pcpu_cached_blocks(c);
		st->percpu_cached_blocks += n;
		st->percpu_cached_bytes += n * pools.cls[c].size;
	}
	mm_spin_lock(&pools.lock);
	pcpu_internal_usage(&st->bytes_internal, &st->blocks_internal);
	st->nclasses = pools.nclasses;
	st->small_max = KM_SMALL_MAX;
	st->pool_size = KM_POOL_SIZE;
	st->arena_size = KM_ARENA_SIZE;
	for (unsigned c = 0; c < pools.nclasses; c++) {
		st->cls[c].size = pools.cls[c].size;
		st->cls[c].blocks_per_pool = pools.cls[c].cap;
	}
	for (const struct km_arena *a = arenas.all; a; a = a->anext)
		arena_stats(a, st);

	struct large_stats ls;
	large_get_stats(&ls);
	st->arenas_allocated_total = arenas.allocated_total;
	st->arenas_reclaimed_total = arenas.reclaimed_total;
	st->arenas_highwater = arenas.highwater;
	st->arenas_current = arenas.current;
	st->large_runs = ls.runs;
	st->large_pages = ls.pages;
	st->large_bytes_requested = ls.requested;
	st->large_bytes_rounding = (ls.pages << PAGE_SHIFT) - ls.requested;
	st->large_cached_pages = ls.cached_pages;
	st->pfa_pages = arenas.current * (KM_ARENA_SIZE >> PAGE_SHIFT) + ls.pages +
			ls.cached_pages;
	st->pfa_allocs = arenas.pfa_allocs + ls.pfa_allocs;
	st->pfa_frees = arenas.pfa_frees + ls.pfa_frees;
	mm_report_counts(&st->bad_pointers, &st->failures);
	mm_spin_unlock(&pools.lock);

	struct kmalloc_front_stats fs;
	kmalloc_front_stats(&fs);
	st->realloc_in_place = fs.realloc_in_place;
	st->realloc_moved = fs.realloc_moved;
	mm_spin_unlock(&pools.lock);
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

/* Sampled guarded allocations (mm/guard.c): how many were due a slot,
 * got one, found none free; how many are guarded now; faults reported. */
static void print_guard_stats(struct printer *o)
{
	struct mm_guard_stats g;
	char label[64];

	mm_guard_get_stats(&g);
	pr(o, "\n");
	if (g.rate)
		mm_snprintf(label, sizeof label, "# sampled allocations (1 in %u)", g.rate);
	else
		mm_snprintf(label, sizeof label, "# sampled allocations (off)");
	line(o, label, g.sampled);
	line(o, "#   given a guarded slot", g.guarded);
	line(o, "#   found every slot in use", g.no_slot);
	line(o, "# guarded blocks live", g.live);
	line(o, "# guard faults reported", g.faults);
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
	print_guard_stats(&o);
}

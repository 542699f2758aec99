/*
 * pfa_check.c - statistics and the invariant check of the page-frame
 * allocator.
 *
 * pfa_check() looks at the state from two independent directions and
 * demands that they agree:
 *
 *   free lists                              descriptors, page by page
 *   ----------                              -------------------------
 *   free_head[k] ─► A ⇄ B ⇄ C ─► NIL        [A: FREE k][FREE_TAIL ...]
 *     every entry a PG_FREE head of          [PFA j][FREE_TAIL ...]
 *     order k, aligned, prev links           [RESERVED] [UNMANAGED] ...
 *     consistent, length == nr_free[k]         heads of order k counted,
 *                                              every other page of a block
 *                                              PG_FREE_TAIL (cls 0 if free),
 *                                              no free buddy pair
 *
 * A list with consistent prev links cannot visit an entry twice, so
 * "n distinct valid heads in list k" plus "n free heads of order k among
 * the descriptors" means every free block is on exactly one list.  The
 * page counts (free, reserved, managed) are recomputed from the
 * descriptors and compared with the running counters.
 *
 * Statistics need no extra bookkeeping on the fast paths except the
 * per-order counters and the low-water mark: free pages per region are
 * computed here by walking the free lists.
 */
#include <stdbool.h>
#include <strata/format.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "layer.h"
#include "lock_order.h"
#include "pfa_internal.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* statistics                                                         */
/* ------------------------------------------------------------------ */

/*
 * The lazy span (fresh mode) as the free blocks it would be carved into:
 * fn(ctx, first page index, order).  Called with pfa.lock held.
 */
static void for_each_lazy_block(void (*fn)(void *ctx, uint32_t idx, unsigned k), void *ctx)
{
	for (uint32_t a = pfa.lazy_next; a < pfa.lazy_end;) {
		unsigned k = a ? mm_ctz32(a) : PFA_MAX_ORDER;
		if (k > PFA_MAX_ORDER)
			k = PFA_MAX_ORDER;
		while (PFA_BLOCK_PAGES(k) > pfa.lazy_end - a)
			k--;
		fn(ctx, a, k);
		a += PFA_BLOCK_PAGES(k);
	}
}

/* Every free block once: the lazy ones, then the free lists. */
static void for_each_free_block(void (*fn)(void *ctx, uint32_t idx, unsigned k), void *ctx)
{
	for_each_lazy_block(fn, ctx);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++) {
		uint64_t n = 0;
		for (uint32_t i = pfa.free_head[k]; i != PFA_NIL && n++ <= pfa.nr_free[k];
		     i = pfa_idx_page(i)->next)
			fn(ctx, i, k);
	}
}

/* A lazy block counted as the free block it will be. */
static void count_lazy_block(void *ctx, uint32_t idx, unsigned k)
{
	struct pfa_stats *st = ctx;
	st->free_blocks[k]++;
	if (k > st->largest_free_order)
		st->largest_free_order = k;
}

void pfa_get_stats(struct pfa_stats *st)
{
	pfa_zero(st, sizeof *st);
	mm_spin_lock(&pfa.lock);
	st->total_pages = pfa.total_pages;
	st->reserved_pages = pfa.reserved_pages;
	st->free_pages = pfa.free_pages;
	st->low_water_pages = pfa.low_water;
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		st->free_blocks[k] = pfa.nr_free[k];
	st->largest_free_order =
		pfa.nonempty ? 31u - mm_clz32(pfa.nonempty) : 0;
	for_each_lazy_block(count_lazy_block, st);
	st->metadata_bytes = pfa.metadata_bytes;
	st->bad_calls = pfa.bad_calls;
	st->nregions = pfa.nregions;
	mm_spin_unlock(&pfa.lock);
}

/* Add the pages of free block (idx, k) that lie in region ctx. */
static void count_block_in_region(void *ctx, uint32_t idx, unsigned k)
{
	struct pfa_region_stats *rs = ctx;
	phys_addr_t pa = pfa_idx_phys(idx);
	phys_addr_t end = pa + ((phys_addr_t)PFA_BLOCK_PAGES(k) << PAGE_SHIFT);
	phys_addr_t a = pa > rs->base ? pa : rs->base;
	phys_addr_t b = end < rs->base + rs->size ? end : rs->base + rs->size;
	if (a < b)
		rs->free_pages += (b - a) >> PAGE_SHIFT;
}

int pfa_get_region_stats(unsigned r, struct pfa_region_stats *rs)
{
	int found = 0;

	pfa_zero(rs, sizeof *rs);
	mm_spin_lock(&pfa.lock);
	if (r < pfa.nregions) {
		rs->base = pfa.region[r].base;
		rs->size = pfa.region[r].end - pfa.region[r].base;
		for_each_free_block(count_block_in_region, rs);
		found = 1;
	}
	mm_spin_unlock(&pfa.lock);
	return found ? 0 : -1;
}

/* "12.345" for x/y in percent, integer arithmetic only */
static void percent(char *buf, size_t n, uint64_t x, uint64_t y)
{
	uint64_t milli = y ? x * 100000 / y : 0;   /* 1/1000 of a percent */
	mm_snprintf(buf, n, "%llu.%03llu%%", (unsigned long long)(milli / 1000),
		    (unsigned long long)(milli % 1000));
}

void pfa_print_stats(void (*out)(const char *s, size_t n))
{
	struct pfa_stats st;
	char line[256], pct[24];
	int len;

	pfa_get_stats(&st);
	uint64_t managed = st.total_pages << PAGE_SHIFT;

#define EMIT(...)                                                       \
	do {                                                            \
		len = mm_snprintf(line, sizeof line, __VA_ARGS__);      \
		out(line, len < (int)sizeof line ? (size_t)len : sizeof line - 1); \
	} while (0)

	EMIT("pfa: %llu pages (%llu KiB) in %u regions, %llu reserved, %llu free, low water %llu\n",
	     (unsigned long long)st.total_pages, (unsigned long long)(managed >> 10),
	     st.nregions, (unsigned long long)st.reserved_pages,
	     (unsigned long long)st.free_pages, (unsigned long long)st.low_water_pages);
	len = mm_snprintf(line, sizeof line, "pfa: free blocks by order:");
	for (unsigned k = 0; k <= PFA_MAX_ORDER && len < (int)sizeof line - 24; k++)
		len += mm_snprintf(line + len, sizeof line - (size_t)len, " %u:%llu", k,
				   (unsigned long long)st.free_blocks[k]);
	if (len < (int)sizeof line - 1)
		line[len++] = '\n';
	out(line, (size_t)len);
	if (st.free_pages)
		EMIT("pfa: largest free block: order %u (%llu KiB)\n", st.largest_free_order,
		     (unsigned long long)((PAGE_SIZE << st.largest_free_order) >> 10));
	percent(pct, sizeof pct, st.metadata_bytes, managed);
	EMIT("pfa: metadata %llu bytes for %llu bytes managed = %s\n",
	     (unsigned long long)st.metadata_bytes, (unsigned long long)managed, pct);
	struct pfa_region_stats rs;
	for (unsigned r = 0; pfa_get_region_stats(r, &rs) == 0; r++)
		EMIT("pfa: region %u: 0x%llx-0x%llx, %llu pages, %llu free\n", r,
		     (unsigned long long)rs.base, (unsigned long long)(rs.base + rs.size),
		     (unsigned long long)(rs.size >> PAGE_SHIFT),
		     (unsigned long long)rs.free_pages);
	if (st.bad_calls)
		EMIT("pfa: %llu bad calls rejected\n", (unsigned long long)st.bad_calls);
#undef EMIT
}

/* ------------------------------------------------------------------ */
/* invariant check                                                    */
/* ------------------------------------------------------------------ */

#define CHECK_MAX_LINES 16

struct check {
	int problems;
};

#define PROBLEM(c, ...)                                                 \
	do {                                                            \
		if ((c)->problems++ < CHECK_MAX_LINES)                  \
			mm_printf("pfa_check: " __VA_ARGS__);           \
	} while (0)

static bool idx_described(uint32_t idx)
{
	if (idx >= pfa.npages)
		return false;
	const struct pfa_section *s = &pfa.section[idx >> pfa.sec_shift];
	return idx >= s->first && idx < s->end;
}

static unsigned long long pa_of(uint32_t idx)
{
	return (unsigned long long)pfa_idx_phys(idx);
}

static void check_free_list(struct check *c, unsigned k)
{
	uint32_t prev = PFA_NIL;
	uint64_t n = 0;

	for (uint32_t i = pfa.free_head[k]; i != PFA_NIL;) {
		if (n++ > pfa.nr_free[k]) {
			PROBLEM(c, "free list %u longer than its count %llu (cycle?)\n",
				k, (unsigned long long)pfa.nr_free[k]);
			return;
		}
		if (!idx_described(i)) {
			PROBLEM(c, "free list %u links to index %u outside RAM\n", k, i);
			return;
		}
		const struct page *pg = pfa_idx_page(i);
		if (pg->owner != PG_FREE || pg->order != k)
			PROBLEM(c, "0x%llx on free list %u has owner %u order %u\n",
				pa_of(i), k, pg->owner, pg->order);
		if (i & (PFA_BLOCK_PAGES(k) - 1))
			PROBLEM(c, "0x%llx on free list %u is not aligned\n", pa_of(i), k);
		if (pg->prev != prev) {
			PROBLEM(c, "0x%llx on free list %u: prev link %u, expected %u\n",
				pa_of(i), k, pg->prev, prev);
			return;
		}
		prev = i;
		i = pg->next;
	}
	if (n != pfa.nr_free[k])
		PROBLEM(c, "free list %u has %llu blocks, count says %llu\n", k,
			(unsigned long long)n, (unsigned long long)pfa.nr_free[k]);
	if (!!(pfa.nonempty & (1u << k)) != (pfa.free_head[k] != PFA_NIL))
		PROBLEM(c, "nonempty bit %u wrong\n", k);
}

struct tally {
	uint64_t heads[PFA_MAX_ORDER + 1];
	uint64_t free_pages, reserved, managed;
};

/* Check the block whose head is at i; return the number of pages it covers. */
static uint32_t check_block(struct check *c, struct tally *t, const struct pfa_section *sec,
			    uint32_t i)
{
	const struct page *pg = pfa_idx_page(i);
	bool is_free = pg->owner == PG_FREE;
	unsigned k = pg->order;

	if (k > PFA_MAX_ORDER || (i & (PFA_BLOCK_PAGES(k) - 1)) ||
	    i + PFA_BLOCK_PAGES(k) > sec->end) {
		PROBLEM(c, "block at 0x%llx (owner %u) has bad order %u\n", pa_of(i), pg->owner, k);
		return 1;
	}
	for (uint32_t j = 1; j < PFA_BLOCK_PAGES(k); j++) {
		const struct page *tp = pg + j;
		if (tp->owner != PG_FREE_TAIL || (is_free && tp->cls)) {
			PROBLEM(c, "page 0x%llx in the %s block at 0x%llx (order %u) has owner %u cls %u\n",
				pa_of(i + j), is_free ? "free" : "allocated", pa_of(i), k,
				tp->owner, tp->cls);
			return j;
		}
	}
	if (is_free) {
		t->heads[k]++;
		t->free_pages += PFA_BLOCK_PAGES(k);
		if (k < PFA_MAX_ORDER) {
			const struct page *bp = pfa_idx_page(i ^ PFA_BLOCK_PAGES(k));
			if (bp->owner == PG_FREE && bp->order == k && (i & PFA_BLOCK_PAGES(k)))
				PROBLEM(c, "free buddies 0x%llx and 0x%llx (order %u) not merged\n",
					pa_of(i ^ PFA_BLOCK_PAGES(k)), pa_of(i), k);
		}
	}
	t->managed += PFA_BLOCK_PAGES(k);
	return PFA_BLOCK_PAGES(k);
}

static void check_descriptors(struct check *c, struct tally *t)
{
	unsigned nsec = pfa.npages ? ((pfa.npages - 1) >> pfa.sec_shift) + 1 : 0;

	for (unsigned s = 0; s < nsec; s++) {
		const struct pfa_section *sec = &pfa.section[s];
		for (uint32_t i = sec->first; i < sec->end;) {
			if (i >= pfa.lazy_next && i < pfa.lazy_end) {
				/* lazy span: free, not described yet */
				uint32_t e = pfa.lazy_end < sec->end ? pfa.lazy_end : sec->end;
				t->free_pages += e - i;
				t->managed += e - i;
				i = e;
				continue;
			}
			if (pfa.fresh && pfa_idx_phys(i) >= pfa.meta.base &&
			    pfa_idx_phys(i) < pfa.meta.end) {
				/* fresh mode: the metadata's own descriptors
				 * are left zero; its pages are reserved */
				t->reserved++;
				t->managed++;
				i++;
				continue;
			}
			unsigned owner = pfa_idx_page(i)->owner;
			if (owner == PG_FREE || pfa_is_allocated_head(owner)) {
				i += check_block(c, t, sec, i);
				continue;
			}
			if (owner == PG_RESERVED) {
				t->reserved++;
				t->managed++;
			} else if (owner != PG_UNMANAGED) {
				PROBLEM(c, "page 0x%llx has owner %u outside any block\n",
					pa_of(i), owner);
				t->managed++;
			}
			i++;
		}
	}
}

int pfa_check(void)
{
	struct check c = { 0 };
	struct tally t = { { 0 }, 0, 0, 0 };

	mm_spin_lock(&pfa.lock);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		check_free_list(&c, k);
	check_descriptors(&c, &t);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		if (t.heads[k] != pfa.nr_free[k])
			PROBLEM(&c, "%llu free blocks of order %u in descriptors, %llu counted\n",
				(unsigned long long)t.heads[k], k,
				(unsigned long long)pfa.nr_free[k]);
	if (t.free_pages != pfa.free_pages)
		PROBLEM(&c, "%llu free pages in descriptors, %llu counted\n",
			(unsigned long long)t.free_pages, (unsigned long long)pfa.free_pages);
	if (t.reserved != pfa.reserved_pages)
		PROBLEM(&c, "%llu reserved pages in descriptors, %llu counted\n",
			(unsigned long long)t.reserved, (unsigned long long)pfa.reserved_pages);
	if (t.managed != pfa.total_pages)
		PROBLEM(&c, "%llu managed pages in descriptors, %llu in regions\n",
			(unsigned long long)t.managed, (unsigned long long)pfa.total_pages);
	if (pfa.low_water > pfa.free_pages)
		PROBLEM(&c, "low water %llu above free pages %llu\n",
			(unsigned long long)pfa.low_water, (unsigned long long)pfa.free_pages);
	if (c.problems > CHECK_MAX_LINES)
		mm_printf("pfa_check: ... %d problems in all\n", c.problems);
	mm_spin_unlock(&pfa.lock);
	return c.problems;
}

/* ------------------------------------------------------------------ */
/* the PFA in the whole-allocator operations (mm/mm.c)                */
/* ------------------------------------------------------------------ */

uint64_t pfa_total_pages(void)
{
	return pfa.total_pages;
}

static void pfa_lock_all(void)
{
	mm_spin_lock(&pfa.lock);
}

static void pfa_unlock_all(void)
{
	mm_spin_unlock(&pfa.lock);
}

static struct mm_layer pfa_layer = {
	.name = "pfa", .level = MM_LOCK_PFA,
	.lock = pfa_lock_all, .unlock = pfa_unlock_all, .check = pfa_check,
};

void pfa_layer_register(void)
{
	mm_layer_register(&pfa_layer);
}

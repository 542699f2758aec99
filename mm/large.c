/*
 * large.c - level +1 of strata: runs of whole pages for requests larger
 * than KMALLOC_SMALL_MAX (2048 bytes).
 *
 * A run is one or more PFA blocks, contiguous, the first one the HEAD
 * block.  The run's size lives in the head block's page descriptor, not
 * in the memory, so the run is all usable and page aligned:
 *
 *   head block    owner PG_LARGE (pfa_set_owner), order = its order,
 *                 data = pages in the run (all blocks), next = bytes asked
 *                 for (statistics), prev = 0
 *   more blocks   owner PG_PFA (as pfa_alloc left it), cls = LARGE_CONT,
 *                 next = distance in pages to the run's head
 *   other pages   PG_FREE_TAIL (the PFA's "not a head"; pfa_head_page()
 *                 finds their block's head)
 *
 * so kfree() of a pointer into a run but not at its start is refused, and
 * kfree() of the run finds every block from the head: walk forward,
 * each block's order is in its head descriptor.
 *
 * Size: the PFA hands out blocks of 2^order pages.  A request of n pages
 * takes the block of order ceil(log2 n), which pfa_split() then halves
 * down so that exactly n pages stay (as the binary decomposition of n)
 * and the rest goes back at once:
 *
 *   kmalloc(5 pages) -> pfa_alloc(order 3), split, split, split:
 *
 *     page  0    1    2    3  |  4  |  5  |  6    7
 *         [ head block order 2 ][o0 ] [o0 ] [ o1     ]
 *           PG_LARGE             more  back to the PFA
 *                                block
 *
 * so a run wastes less than one page (3 MiB costs 3 MiB, not 4).
 *
 * Limits: a run is at most one PFA block of PFA_MAX_ORDER (4 MiB by
 * default).  A larger request fails with KM_FAIL_TOO_LARGE: two adjacent
 * maximal blocks are not guaranteed to exist, and strata does not try.
 *
 * Alignment: a block of order k is aligned to 2^k pages, so a run with
 * alignment A > PAGE_SIZE comes from a block of order >= log2(A / 4096)
 * (kmalloc_aligned(3 pages, 2 MiB) keeps 3 of 512 pages).  Above the
 * largest block's alignment, pfa_alloc_aligned() finds a block of the
 * run's own order at an aligned address, if the memory has one.
 *
 * Resizing in place (krealloc):
 *   shrink  blocks past the new end go back to the PFA, the block holding
 *           the new end is split down to it;
 *   grow    the pages right after the run are taken with pfa_alloc_at(),
 *           as the largest aligned blocks that fit, if every one of them
 *           is free; otherwise krealloc moves the data.
 *
 * The run cache: a freed run is kept, whole and still PG_LARGE (head cls
 * = LARGE_CACHED, so a second kfree is a reported double free), in a FIFO
 * ring of up to KM_LARGE_CACHE_RUNS (256) entries holding at most
 * large.lc_budget pages (8 MiB, or RAM / 16 if that is less).  A request of
 * n pages takes the newest cached run of exactly n pages, else the
 * smallest one of n+1 .. 2n pages, shrunk to n (its tail goes to the
 * PFA); only then does it ask the PFA.  A loop that frees and reallocates
 * a 1 MiB buffer thus never gives the pages back to the PFA (nor, on the
 * host, to the kernel through mm_platform_release()) to fault them in
 * again, and a churn of mixed large sizes mostly reuses its own runs.
 * The oldest entries leave when a new one needs room; mm_reclaim() /
 * kmalloc_trim() empty the cache.  The ring keeps each run's length next
 * to its address, so the search reads no page descriptor.  Measured on
 * the host (tests/bench/workloads.c churn: 4.5% of requests 1..8 KiB,
 * 0.5% 8..256 KiB; 5M steps), ranges sent through madvise:
 *
 *   8 entries, exact size only     32134 (3 GB)
 *   64 entries, best fit <= 2x      2713 (249 MB)
 *   256 entries, best fit <= 2x      847 (81 MB)
 */
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "large.h"
#include "util.h"

static struct {
	uint64_t runs, pages, requested;
	phys_addr_t lc_pa[KM_LARGE_CACHE_RUNS];       /* run cache, FIFO ring */
	uint32_t lc_pages[KM_LARGE_CACHE_RUNS];       /* ... and each run's pages */
	unsigned lc_first, lc_count;
	uint64_t lc_budget;                           /* pages the cache may hold */
	uint64_t cached_pages;
	uint64_t pfa_allocs, pfa_frees;
} large;

void large_init(uint64_t total_pages)
{
	large = (__typeof__(large)){ 0 };
	large.lc_budget = total_pages >> KM_LARGE_CACHE_RAM_SHIFT;
	if (large.lc_budget > (KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT))
		large.lc_budget = KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT;
}

void large_get_stats(struct large_stats *st)
{
	*st = (struct large_stats){
		.runs = large.runs, .pages = large.pages, .requested = large.requested,
		.cached_pages = large.cached_pages,
		.pfa_allocs = large.pfa_allocs, .pfa_frees = large.pfa_frees,
	};
}

#define LARGE_CONT      0x4c43          /* "LC": head of a run's further block */
#define LARGE_CACHED    0x4c46          /* "LF": head of a run in the run cache */
#define LARGE_MAX_PAGES ((uint64_t)1 << PFA_MAX_ORDER)

static inline phys_addr_t page_pa(phys_addr_t pa, uint64_t pages)
{
	return pa + (pages << PAGE_SHIFT);
}

bool large_is_continuation(const struct page *head)
{
	return head->owner == PG_PFA && head->cls == LARGE_CONT;
}

/* Order of the largest aligned piece starting at pa with n pages left. */
static unsigned piece_order(phys_addr_t pa, uint64_t n)
{
	uint64_t idx = pa >> PAGE_SHIFT;
	unsigned k = idx ? mm_ctz64(idx) : PFA_MAX_ORDER;

	if (k > PFA_MAX_ORDER)
		k = PFA_MAX_ORDER;
	while (((uint64_t)1 << k) > n)
		k--;
	return k;
}

static void block_free(phys_addr_t pa, unsigned order)
{
	large.pfa_frees++;
	mm_platform_release(pfa_virt(pa), (size_t)PAGE_SIZE << order);
	pfa_free(pa, order);
}

/* Mark every block of the run at pa ([0, pages)) after the head block as
 * one of its continuation blocks (cls, next: the owner's head fields). */
static void tag_run(phys_addr_t pa, uint64_t pages)
{
	uint64_t at = (uint64_t)1 << pfa_page(pa)->order;

	while (at < pages) {
		struct page *pg = pfa_page(page_pa(pa, at));
		pg->cls = LARGE_CONT;
		pg->next = (uint32_t)at;
		at += (uint64_t)1 << pg->order;
	}
}

/*
 * The allocated block [pa, 2^k) is the last block of a run: keep its
 * first `n` pages (1 <= n <= 2^k), split off and give back the rest.
 * Returns the pages the run keeps from it.
 */
static uint64_t keep_pages(phys_addr_t pa, unsigned k, uint64_t n)
{
	uint64_t kept = 0;

	while (n < ((uint64_t)1 << k)) {
		if (pfa_split(pa, k) != 0)            /* cannot happen: reported */
			return kept + ((uint64_t)1 << k);
		k--;
		phys_addr_t upper = page_pa(pa, (uint64_t)1 << k);
		uint64_t half = (uint64_t)1 << k;
		if (n <= half) {
			block_free(upper, k);         /* not needed */
		} else {
			kept += half;                 /* lower half kept whole */
			n -= half;
			pa = upper;
		}
	}
	return kept + n;
}

static phys_addr_t cache_take(uint64_t n, size_t align, uint64_t *pages);
static uint64_t shrink(phys_addr_t pa, uint64_t pages, uint64_t want);

static void account(int64_t dpages, int64_t dbytes)
{
	large.pages += (uint64_t)dpages;
	large.requested += (uint64_t)dbytes;
}

void *large_alloc(size_t size, size_t align, int *why)
{
	if (size > KMALLOC_MAX_SIZE) {
		*why = KM_FAIL_TOO_LARGE;
		return NULL;
	}
	uint64_t n = km_pages_for(size);
	unsigned order = mm_ceil_log2(n);
	if (order > PFA_MAX_ORDER) {
		*why = KM_FAIL_TOO_LARGE;
		return NULL;
	}
	/* an alignment up to the largest block's comes with the block's
	 * order; above it, the PFA looks for a block at an aligned address */
	bool wide = align > ((size_t)PAGE_SIZE << PFA_MAX_ORDER);
	if (align > PAGE_SIZE && !wide) {
		unsigned aorder = mm_ceil_log2(align >> PAGE_SHIFT);
		if (aorder > order)
			order = aorder;
	}

	uint64_t pages = n;
	phys_addr_t pa = cache_take(n, align, &pages);
	if (!pa) {
		pa = wide ? pfa_alloc_aligned(order, align) : pfa_alloc(order, 0);
		if (!pa) {
			*why = KM_FAIL_NOMEM;
			return NULL;
		}
		large.pfa_allocs++;
		pfa_set_owner(pa, order, PG_LARGE);
		pages = keep_pages(pa, order, n);
		tag_run(pa, pages);
	}

	struct page *head = pfa_page(pa);
	head->data = (uint32_t)pages;
	head->next = (uint32_t)size;
	head->prev = 0;
	head->cls = 0;
	large.runs++;
	account((int64_t)pages, (int64_t)size);
	return pfa_virt(pa);
}

/* Give back the run's blocks from page `from` on (a block boundary). */
static void free_from(phys_addr_t pa, uint64_t from, uint64_t pages)
{
	while (from < pages) {
		phys_addr_t at = page_pa(pa, from);
		unsigned k = pfa_page(at)->order;
		block_free(at, k);
		from += (uint64_t)1 << k;
	}
}

/* ---- the run cache (FIFO ring of large.lc_pa[]) ---- */

static unsigned cache_slot(unsigned i)        /* ring index of the i-th oldest */
{
	return (large.lc_first + i) % KM_LARGE_CACHE_RUNS;
}

static void cache_evict_oldest(void)
{
	phys_addr_t pa = large.lc_pa[large.lc_first];
	uint64_t pages = large.lc_pages[large.lc_first];

	large.lc_first = (large.lc_first + 1) % KM_LARGE_CACHE_RUNS;
	large.lc_count--;
	large.cached_pages -= pages;
	pfa_page(pa)->cls = 0;
	free_from(pa, 0, pages);
}

/* Keep the freed run at pa; false if it does not fit the budget at all. */
static bool cache_put(phys_addr_t pa, struct page *head)
{
	uint64_t pages = head->data;

	if (pages > large.lc_budget)
		return false;
	while (large.lc_count == KM_LARGE_CACHE_RUNS ||
	       large.cached_pages + pages > large.lc_budget)
		cache_evict_oldest();
	head->cls = LARGE_CACHED;
	unsigned at = cache_slot(large.lc_count);
	large.lc_pa[at] = pa;
	large.lc_pages[at] = (uint32_t)pages;
	large.lc_count++;
	large.cached_pages += pages;
	return true;
}

/* Entry i leaves the ring; the newer entries move one step back. */
static void cache_remove(unsigned i, uint64_t pages)
{
	for (unsigned j = i; j + 1 < large.lc_count; j++) {
		large.lc_pa[cache_slot(j)] = large.lc_pa[cache_slot(j + 1)];
		large.lc_pages[cache_slot(j)] = large.lc_pages[cache_slot(j + 1)];
	}
	large.lc_count--;
	large.cached_pages -= pages;
}

/* A cached run for n pages whose address honours align, cut to n pages
 * (*pages says how many it kept); 0 if none fits. */
static phys_addr_t cache_take(uint64_t n, size_t align, uint64_t *pages)
{
	unsigned best = KM_LARGE_CACHE_RUNS;
	uint64_t best_pages = 2 * n + 1;

	for (unsigned i = large.lc_count; i-- > 0;) {   /* newest first */
		unsigned at = cache_slot(i);
		uint64_t have = large.lc_pages[at];
		if (have < n || have >= best_pages ||
		    ((uintptr_t)pfa_virt(large.lc_pa[at]) & (align - 1)))
			continue;
		best = i;
		best_pages = have;
		if (have == n)
			break;
	}
	if (best == KM_LARGE_CACHE_RUNS)
		return 0;
	phys_addr_t pa = large.lc_pa[cache_slot(best)];
	cache_remove(best, best_pages);
	*pages = best_pages > n ? shrink(pa, best_pages, n) : n;
	return pa;
}

void large_free(void *p, struct page *head)
{
	uint64_t pages = head->data;

	large.runs--;
	account(-(int64_t)pages, -(int64_t)head->next);
	if (cache_put(pfa_phys(p), head))
		return;
	free_from(pfa_phys(p), 0, pages);
}

bool large_is_cached(const struct page *head)
{
	return head->owner == PG_LARGE && head->cls == LARGE_CACHED;
}

uint64_t large_cache_flush(void)
{
	uint64_t pages = large.cached_pages;

	while (large.lc_count)
		cache_evict_oldest();
	return pages;
}

size_t large_usable(const struct page *head)
{
	return (size_t)head->data << PAGE_SHIFT;
}

/* Shrink the run at pa to about `want` pages; returns its new length. */
static uint64_t shrink(phys_addr_t pa, uint64_t pages, uint64_t want)
{
	uint64_t at = 0;

	for (;;) {   /* find the block holding page want - 1 */
		unsigned k = pfa_page(page_pa(pa, at))->order;
		uint64_t end = at + ((uint64_t)1 << k);
		if (end >= want) {
			free_from(pa, end, pages);
			uint64_t now = at + keep_pages(page_pa(pa, at), k, want - at);
			tag_run(pa, now);
			return now;
		}
		at = end;
	}
}

/* Take the free block [pa, 2^k pages) from the PFA; false if we can't. */
static bool claim(phys_addr_t pa, unsigned k)
{
	if (!pfa_page(pa) || pfa_alloc_at(pa, k) != 0)
		return false;
	large.pfa_allocs++;
	return true;
}

/* Grow the run at pa from `pages` to at least `want` pages, or fail
 * leaving it as it was. */
static bool grow(phys_addr_t pa, uint64_t pages, uint64_t want, uint64_t *now)
{
	uint64_t at = pages;

	if (want > LARGE_MAX_PAGES)
		return false;
	while (at < want) {
		unsigned k = piece_order(page_pa(pa, at), want - at);
		if (!claim(page_pa(pa, at), k)) {
			free_from(pa, pages, at);   /* undo */
			return false;
		}
		at += (uint64_t)1 << k;
	}
	tag_run(pa, at);
	*now = at;
	return true;
}

bool large_resize(void *p, struct page *head, size_t size)
{
	phys_addr_t pa = pfa_phys(p);
	uint64_t pages = head->data, want = km_pages_for(size), now = pages;

	if (size > KMALLOC_MAX_SIZE)
		return false;
	if (want > pages) {
		if (!grow(pa, pages, want, &now))
			return false;
	} else if (want < pages) {
		now = shrink(pa, pages, want);
	}
	account((int64_t)now - (int64_t)pages, (int64_t)size - (int64_t)head->next);
	head->data = (uint32_t)now;
	head->next = (uint32_t)size;
	return true;
}

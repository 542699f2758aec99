/*
 * large.c - level +1 of strata: runs of whole pages for requests larger
 * than KMALLOC_SMALL_MAX (32768 bytes), and for alignments no class has.
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
 * = LARGE_CACHED, so a second kfree is a reported double free), in one of
 * KM_LARGE_CACHE_RUNS (256) slots (below: "The cache's own index").  It
 * may always hold large.lc_budget pages (8 MiB, or RAM / 16 if that is
 * less), and beyond
 * that as many pages as the live runs hold, up to RAM / 4 (the PFA's pages
 * at the time: the hosted heap grows).  Its pages stay in memory, so a
 * loop that frees and reallocates big buffers does not give them back to
 * the PFA (nor, on the host, to the kernel through mm_platform_release())
 * to fault them in again.  jemalloc's dirty pages and tcmalloc's page heap
 * are the models; the cache is a small page heap of its own:
 *
 *   take    a request of n pages takes a cached run of n pages or more
 *           from the size bins (below), cut to n: the tail stays cached
 *           (with the run's age).  Else a smaller run (the newest runs of
 *           the highest non-empty bin below n's) is grown in place with the free PFA pages right after it
 *           (grow(), below): only those pages are new.  Else, before
 *           asking the PFA, the oldest runs make room for the n new pages
 *           (up to n / 2 of them, 2 runs at most), so that a miss does not
 *           add n pages to the cache's and the live runs' sum.
 *   join    a run put in the cache is glued to the cached runs that end
 *           where it starts and start where it ends (one hash lookup
 *           each in the cache's own index, no page descriptor read): a
 *           run freed next to its own cut-off tail is whole again, and two
 *           neighbours serve a request as large as both.
 *   merge   a run put in the cache has its buddy blocks merged
 *           (pfa_merge(), a binary counter's carries: run_merge_blocks)
 *           and a join merges them at the seam, so every aligned range a
 *           cached run covers whole is one PFA block: it has at most
 *           2 (PFA_MAX_ORDER + 1) blocks (KM_LARGE_RUN_BLOCKS, 64, bounds
 *           every walk of them), however it was cut, glued and grown.
 *           (Before, a run of more than 64 blocks was not cached and a
 *           join that made more was not done: in the large workload the
 *           runs grew blocks with every join, so the hottest run, the one
 *           just freed, often went back to the OS and was faulted in again.)
 *   decay   jemalloc's dirty-page decay, counted in calls, not in time
 *           (mm/ has no clock): every large_alloc/large_free ticks
 *           large.clock; while the cache holds more than lc_budget, a run
 *           untaken for KM_LARGE_DECAY_OPS (256) ticks leaves, at most two
 *           per large_free (the oldest is at the age list's head: O(1) to
 *           check); a glued run has the age of its oldest part.
 *   evict   a put that does not fit evicts at most KM_LARGE_EVICT_PER_CALL
 *           (2) of the oldest runs; if the run still does not fit it goes
 *           to the PFA itself.  So no call gives back more than a constant
 *           number of runs, whatever the budget (issue 19).
 *   pressure a PFA call that fails (large_alloc, and arena_new for small
 *           blocks) sheds up to KM_LARGE_PRESSURE_RUNS (8) of the oldest
 *           runs and tries once more.  libstrata builds with 0: there a
 *           failed PFA call is how the heap grows, and a failed growth
 *           empties every cache anyway (mm_reclaim).  mm_reclaim() /
 *           kmalloc_trim() empty the cache.
 *
 * The cache's own index.  The cache works under the object allocator's
 * lock (large.h), the PFA under its own, and a run's neighbour may be any
 * layer's block that the PFA is marking, splitting or merging right now:
 * so the cache reads no page descriptor it does not own.  A slot keeps
 * its run's head, length, age and block count; the slots are on an age
 * list (the oldest end for eviction and decay), in size bins, and in two
 * hash tables of LC_BUCKETS chains, by head page and by end page:
 *
 *   free run [a, b)  ->  by_end[hash(a)]: the cached run ending at a
 *                        by_start[hash(b)]: the cached run starting at b
 *
 * one chain each (about one entry), and a run leaves in O(1), with no
 * shifting.  Every walk is bounded by the 256 slots, whatever the heap.
 *
 * Size bins (TLSF's two levels): one bin per size below 8 pages, then 8
 * bins per power of two (a bin's runs differ by less than 1/8), each a
 * list newest first, and a bitmap of the non-empty bins.  A put or a
 * removal is O(1).  Best fit in bounded work: the LC_PEEK (4) newest runs
 * of n's own bin (the smallest that fits, the newest of equals), else
 * the newest run of the lowest non-empty bin above (all its runs fit; an
 * alignment may look at LC_PEEK bins).  The promise (test_large's
 * takes_the_smallest_fit): the smallest fitting run is taken when it is
 * among the LC_PEEK newest of n's bin or in a bin above with no other
 * fitting run below it; otherwise (a fitting run deeper in n's bin, or
 * several in the bin above) a larger one may be taken: good fit, not
 * always best.  At most 24 slots and a few
 * bitmap words are looked at, however many runs are cached (before: a
 * walk of up to 256 slots).
 * (A first version found the neighbours through pfa_head_page() and a
 * scan of a ring: ThreadSanitizer caught it reading descriptors that
 * pfa_alloc() was writing on another CPU, and it cost churn 15% more
 * instructions.)  Measured on the host
 * (tests/bench/workloads.c churn: 4.5% of requests 1..8 KiB, 0.5%
 * 8..256 KiB; 5M steps), ranges sent through madvise, with the old fixed
 * 8 MiB budget:
 *
 *   8 entries, exact size only     32134 (3 GB)
 *   64 entries, best fit <= 2x      2713 (249 MB)
 *   256 entries, best fit <= 2x      847 (81 MB)
 *
 * and the large workload (5..25 MiB blocks, 20 live, 1000 replaced, every
 * page written; minor faults and peak RSS):
 *
 *   8 MiB budget, everything else released (main before)   3.85 M   390 MB
 *   budget = live pages, tails kept, decay 64 (speed)      0.77 M   690 MB
 *   + joins (no flush on a failed PFA call)                0.51 M   643 MB
 *   + grow in place                                        0.45 M   553 MB
 *   + room made on a miss                                  0.51 M   492 MB
 *   + decay after 256 calls, not 64                        0.35 M   571 MB
 *   + buddy blocks merged, no cap on joins (this file)     0.22 M   466 MB
 *   glibc 0.36 M 488 MB; tcmalloc 0.17 M 501 MB
 *
 * (decay 128: 0.42 M, 510 MB: the knob trades faults for RSS).
 */
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "large.h"
#include "util.h"

#define LC_NIL     KM_LARGE_CACHE_RUNS   /* no slot */
#define LC_HASH_BITS 8
#define LC_BUCKETS (1u << LC_HASH_BITS)  /* hash buckets of each index */
#define LC_SUB_BITS 3                    /* size bins: 8 per power of two */
#define LC_SUB     (1u << LC_SUB_BITS)
#define LC_BINS    (LC_SUB + (PFA_MAX_ORDER + 1 - LC_SUB_BITS) * LC_SUB)
#define LC_MAP_WORDS ((LC_BINS + 63) / 64)
#define LC_PEEK    4                     /* runs looked at in one bin */

static struct {
	uint64_t runs, pages, requested;
	/* the run cache: slot s holds one cached run */
	phys_addr_t lc_pa[KM_LARGE_CACHE_RUNS];       /* its head */
	uint32_t lc_pages[KM_LARGE_CACHE_RUNS];       /* ... its pages */
	uint64_t lc_stamp[KM_LARGE_CACHE_RUNS];       /* ... when it came in */
	uint16_t lc_older[KM_LARGE_CACHE_RUNS];       /* age list (newer also */
	uint16_t lc_newer[KM_LARGE_CACHE_RUNS];       /*   chains free slots) */
	uint16_t lc_start_next[KM_LARGE_CACHE_RUNS];  /* hash chains: by head, */
	uint16_t lc_end_next[KM_LARGE_CACHE_RUNS];    /*   by end */
	uint16_t lc_by_start[LC_BUCKETS], lc_by_end[LC_BUCKETS];
	uint16_t lc_bin_next[KM_LARGE_CACHE_RUNS];    /* size bins, newest first */
	uint16_t lc_bin_prev[KM_LARGE_CACHE_RUNS];
	uint16_t lc_bin_head[LC_BINS];
	uint64_t lc_bin_map[LC_MAP_WORDS];            /* bit b: bin b not empty */
	uint16_t lc_oldest, lc_newest, lc_free;
	unsigned lc_count;
	uint64_t lc_budget;                           /* pages the cache may always hold */
	uint64_t cached_pages;
	uint64_t clock, decayed;                      /* large calls; runs aged out */
	uint64_t evicted, joined, pressed, grown;     /* runs evicted, glued, shed, grown */
	uint64_t pfa_allocs, pfa_frees;
} large;

/* An empty cache: every slot free, every bucket and the age list empty. */
static void cache_init(void)
{
	/* one store at a time (mm_store): vectorised, clang staged these
	 * arrays through a 1.5 KiB stack frame */
	for (unsigned s = 0; s < KM_LARGE_CACHE_RUNS; s++)
		mm_store(large.lc_newer[s], (uint16_t)(s + 1));   /* the last: LC_NIL */
	for (unsigned b = 0; b < LC_BUCKETS; b++) {
		mm_store(large.lc_by_start[b], (uint16_t)LC_NIL);
		mm_store(large.lc_by_end[b], (uint16_t)LC_NIL);
	}
	for (unsigned b = 0; b < LC_BINS; b++)
		mm_store(large.lc_bin_head[b], (uint16_t)LC_NIL);
	large.lc_free = 0;
	large.lc_oldest = large.lc_newest = LC_NIL;
}

void large_init(uint64_t total_pages)
{
	large = (__typeof__(large)){ 0 };
	cache_init();
	large.lc_budget = total_pages >> KM_LARGE_CACHE_RAM_SHIFT;
	if (large.lc_budget > (KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT))
		large.lc_budget = KM_LARGE_CACHE_MAX_BYTES >> PAGE_SHIFT;
}

void large_get_stats(struct large_stats *st)
{
	*st = (struct large_stats){
		.runs = large.runs, .pages = large.pages, .requested = mm_load(large.requested),
		.cached_pages = large.cached_pages,
		.pfa_allocs = large.pfa_allocs, .pfa_frees = large.pfa_frees,
		.cached_runs = large.lc_count, .evicted = large.evicted,
		.decayed = large.decayed, .joined = large.joined, .pressed = large.pressed,
		.grown = large.grown,
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

/* Mark the blocks [from, pages) of the run at pa (from: a block's first
 * page) as its continuation blocks (cls, next: the owner's head fields). */
static void tag_blocks(phys_addr_t pa, uint64_t from, uint64_t pages)
{
	uint64_t at = from;

	while (at < pages) {
		struct page *pg = pfa_page(page_pa(pa, at));
		pg->cls = LARGE_CONT;
		pg->next = (uint32_t)at;
		at += (uint64_t)1 << pg->order;
	}
}

/* ... every block of the run at pa ([0, pages)) after the head block. */
static void tag_run(phys_addr_t pa, uint64_t pages)
{
	tag_blocks(pa, (uint64_t)1 << pfa_page(pa)->order, pages);
}

/*
 * The allocated block [pa, 2^k) is the last block of a run: keep its
 * first `n` pages (1 <= n <= 2^k), split off and give back the rest.
 * Returns the pages the run keeps from it.
 */
static uint64_t keep_pages(phys_addr_t pa, unsigned k, uint64_t n, bool give_back)
{
	uint64_t kept = 0;

	while (n < ((uint64_t)1 << k)) {
		if (pfa_split(pa, k) != 0)            /* cannot happen: reported */
			return kept + ((uint64_t)1 << k);
		k--;
		phys_addr_t upper = page_pa(pa, (uint64_t)1 << k);
		uint64_t half = (uint64_t)1 << k;
		if (n <= half) {
			if (give_back)                /* not needed */
				block_free(upper, k);

		} else {
			kept += half;                 /* lower half kept whole */
			n -= half;
			pa = upper;
		}
	}
	return kept + n;
}

static phys_addr_t cache_take(uint64_t n, size_t align, uint64_t *pages);
static uint64_t shrink(phys_addr_t pa, uint64_t pages, uint64_t want, bool give_back);
static void cache_decay(void);
static void cache_make_room(uint64_t n);
static bool grow(phys_addr_t pa, uint64_t pages, uint64_t want, uint64_t *now);

/* requested is atomic: large_resize_within changes it without the lock. */
static void account(int64_t dpages, int64_t dbytes)
{
	large.pages += (uint64_t)dpages;
	__atomic_add_fetch(&large.requested, (uint64_t)dbytes, __ATOMIC_RELAXED);
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
	large.clock++;
	phys_addr_t pa = cache_take(n, align, &pages);
	if (!pa) {
		cache_make_room(n);
		pa = wide ? pfa_alloc_aligned(order, align) : pfa_alloc(order, 0);
		if (!pa && large_cache_shed())   /* pressure: cached runs give way */
			pa = wide ? pfa_alloc_aligned(order, align) : pfa_alloc(order, 0);
		if (!pa) {
			*why = KM_FAIL_NOMEM;
			return NULL;
		}
		large.pfa_allocs++;
		pfa_set_owner(pa, order, PG_LARGE);
		pages = keep_pages(pa, order, n, true);
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

/* ---- the run cache: slots, an age list and two hash indexes ---- */

static unsigned lc_hash(phys_addr_t pa)       /* bucket of a page address */
{
	return (unsigned)(((pa >> PAGE_SHIFT) * 0x9E3779B97F4A7C15ULL) >> (64 - LC_HASH_BITS));
}

static phys_addr_t slot_end(unsigned s)       /* first page after slot s's run */
{
	return page_pa(large.lc_pa[s], large.lc_pages[s]);
}

/* Slot s leaves the hash chain from heads[] through next[] that holds it
 * (a chain has at most lc_count slots). */
static void chain_remove(uint16_t *heads, uint16_t *next, phys_addr_t key, unsigned s)
{
	uint16_t *link = &heads[lc_hash(key)];

	for (unsigned n = 0; *link != LC_NIL && n < KM_LARGE_CACHE_RUNS; n++) {
		if (*link == s) {
			*link = next[s];
			return;
		}
		link = &next[*link];
	}
}

/* The cached run whose head is at pa, or LC_NIL: the index by head. */
static unsigned cache_starting_at(phys_addr_t pa)
{
	unsigned s = large.lc_by_start[lc_hash(pa)];

	for (unsigned n = 0; s != LC_NIL && n < KM_LARGE_CACHE_RUNS; n++, s = large.lc_start_next[s])
		if (large.lc_pa[s] == pa)
			return s;
	return LC_NIL;
}

/* The cached run that ends where pa begins, or LC_NIL: the index by end. */
static unsigned cache_ending_at(phys_addr_t pa)
{
	unsigned s = large.lc_by_end[lc_hash(pa)];

	for (unsigned n = 0; s != LC_NIL && n < KM_LARGE_CACHE_RUNS; n++, s = large.lc_end_next[s])
		if (slot_end(s) == pa)
			return s;
	return LC_NIL;
}

/* Size bin of a run of `pages` pages (TLSF's two levels): below LC_SUB
 * pages one bin per size; above, LC_SUB bins per power of two, so a bin
 * spans [2^f + i 2^(f-3), 2^f + (i+1) 2^(f-3)): its runs differ by less
 * than 1/8 of the smallest. */
static unsigned lc_bin(uint64_t pages)
{
	if (pages < LC_SUB)
		return (unsigned)pages;
	unsigned f = 63 - mm_clz64(pages);
	return LC_SUB + (f - LC_SUB_BITS) * LC_SUB + (unsigned)((pages >> (f - LC_SUB_BITS)) & (LC_SUB - 1));
}

/* Slot s goes to the newest end of its bin's list. */
static void bin_add(unsigned s)
{
	unsigned b = lc_bin(large.lc_pages[s]), h = large.lc_bin_head[b];

	large.lc_bin_prev[s] = LC_NIL;
	large.lc_bin_next[s] = (uint16_t)h;
	if (h != LC_NIL)
		large.lc_bin_prev[h] = (uint16_t)s;
	large.lc_bin_head[b] = (uint16_t)s;
	large.lc_bin_map[b / 64] |= (uint64_t)1 << (b % 64);
}

/* Slot s leaves its bin: O(1). */
static void bin_remove(unsigned s)
{
	unsigned b = lc_bin(large.lc_pages[s]);
	unsigned prev = large.lc_bin_prev[s], next = large.lc_bin_next[s];

	if (prev != LC_NIL)
		large.lc_bin_next[prev] = (uint16_t)next;
	else
		large.lc_bin_head[b] = (uint16_t)next;
	if (next != LC_NIL)
		large.lc_bin_prev[next] = (uint16_t)prev;
	if (large.lc_bin_head[b] == LC_NIL)
		large.lc_bin_map[b / 64] &= ~((uint64_t)1 << (b % 64));
}

/* The lowest non-empty bin at or above b, or LC_BINS: a bitmap scan of at
 * most LC_MAP_WORDS words. */
static unsigned bin_at_or_above(unsigned b)
{
	for (unsigned w = b / 64; w < LC_MAP_WORDS; w++) {
		uint64_t m = large.lc_bin_map[w];
		if (w == b / 64)
			m &= ~(uint64_t)0 << (b % 64);
		if (m)
			return w * 64 + mm_ctz64(m);
	}
	return LC_BINS;
}

/* The highest non-empty bin below b, or LC_BINS. */
static unsigned bin_below(unsigned b)
{
	for (unsigned w = b / 64 + 1; w-- > 0;) {
		uint64_t m = large.lc_bin_map[w];
		if (w == b / 64)
			m &= ((uint64_t)1 << (b % 64)) - 1;
		if (m)
			return w * 64 + 63 - mm_clz64(m);
	}
	return LC_BINS;
}

/* A cached or freed run being put: its head and pages. */
struct run {
	phys_addr_t pa;
	uint64_t pages, stamp;             /* stamp: when its oldest part came in */
};

_Static_assert(2 * (PFA_MAX_ORDER + 1) <= KM_LARGE_RUN_BLOCKS,
	       "a run with its blocks merged has at most 2 (PFA_MAX_ORDER + 1) blocks");

/* r goes into a free slot: both indexes, the newest end of the age list. */
static void cache_insert(const struct run *r)
{
	unsigned s = large.lc_free;
	unsigned hs = lc_hash(r->pa), he = lc_hash(page_pa(r->pa, r->pages));

	large.lc_free = large.lc_newer[s];
	large.lc_pa[s] = r->pa;
	large.lc_pages[s] = (uint32_t)r->pages;
	large.lc_stamp[s] = r->stamp;
	large.lc_start_next[s] = large.lc_by_start[hs];
	large.lc_by_start[hs] = (uint16_t)s;
	large.lc_end_next[s] = large.lc_by_end[he];
	large.lc_by_end[he] = (uint16_t)s;
	large.lc_older[s] = large.lc_newest;
	large.lc_newer[s] = LC_NIL;
	if (large.lc_newest != LC_NIL)
		large.lc_newer[large.lc_newest] = (uint16_t)s;
	else
		large.lc_oldest = (uint16_t)s;
	large.lc_newest = (uint16_t)s;
	bin_add(s);
	large.lc_count++;
	large.cached_pages += r->pages;
}

/* Slot s's run leaves the cache (its blocks stay as they are): out of
 * both indexes and the age list, the slot free again.  O(1) but for the
 * two hash chains. */
static void cache_unlink(unsigned s)
{
	unsigned older = large.lc_older[s], newer = large.lc_newer[s];

	chain_remove(large.lc_by_start, large.lc_start_next, large.lc_pa[s], s);
	chain_remove(large.lc_by_end, large.lc_end_next, slot_end(s), s);
	bin_remove(s);
	if (older != LC_NIL)
		large.lc_newer[older] = (uint16_t)newer;
	else
		large.lc_oldest = (uint16_t)newer;
	if (newer != LC_NIL)
		large.lc_older[newer] = (uint16_t)older;
	else
		large.lc_newest = (uint16_t)older;
	large.lc_newer[s] = large.lc_free;
	large.lc_free = (uint16_t)s;
	large.lc_count--;
	large.cached_pages -= large.lc_pages[s];
}

static void cache_evict_oldest(void)
{
	unsigned s = large.lc_oldest;
	phys_addr_t pa = large.lc_pa[s];
	uint64_t pages = large.lc_pages[s];

	cache_unlink(s);
	large.evicted++;
	pfa_page(pa)->cls = 0;
	free_from(pa, 0, pages);
}

/* Evict up to `most` of the oldest runs: the one loop that gives cached
 * runs back, so every caller's work is bounded by `most` runs of at most
 * KM_LARGE_RUN_BLOCKS blocks.  Returns how many left. */
static unsigned cache_evict_some(unsigned most)
{
	unsigned n = 0;

	while (n < most && large.lc_count) {
		cache_evict_oldest();
		n++;
	}
	return n;
}

/*
 * Pages the cache may hold now: lc_budget always; beyond it, as many as
 * the live runs hold >> KM_LARGE_CACHE_LIVE_SHIFT, but never more than
 * RAM / 4 (the PFA's pages now: the hosted heap grows).
 */
static uint64_t cache_budget(void)
{
	uint64_t live = large.pages >> KM_LARGE_CACHE_LIVE_SHIFT;
	uint64_t ceil = pfa_total_pages() >> KM_LARGE_CACHE_CEIL_SHIFT;

	if (live > ceil)
		live = ceil;
	return live > large.lc_budget ? live : large.lc_budget;
}

/* Decay: while the cache holds more than lc_budget (the part it may
 * always hold), the oldest runs leave once KM_LARGE_DECAY_OPS large calls
 * went by without anyone taking them (two per call at most: each call
 * adds at most two runs, the freed one and a cut-off tail). */
static void cache_decay(void)
{
	for (int i = 0; i < 2 && large.cached_pages > large.lc_budget &&
	     large.clock - large.lc_stamp[large.lc_oldest] > KM_LARGE_DECAY_OPS; i++) {
		cache_evict_oldest();
		large.decayed++;
	}
}

/* The upper buddy at `at` (of order k, in the run at pa) joins the block
 * right before it if that is its lower buddy: a head of the same order. */
static bool merge_left(phys_addr_t pa, uint64_t at, unsigned k)
{
	uint64_t half = (uint64_t)1 << k;

	if (k >= PFA_MAX_ORDER || !(((pa >> PAGE_SHIFT) + at) & half) || at < half)
		return false;
	const struct page *lower = pfa_page(page_pa(pa, at - half));
	return lower->owner != PG_FREE_TAIL && lower->order == k &&
	       pfa_merge(page_pa(pa, at - half), k) == 0;
}

/*
 * Merge the run's blocks from page `from` on (a block boundary; the blocks
 * before it already merged) with their buddies, as a binary counter
 * carries: each block, then each block it made, joins its lower buddy
 * while that is a block of its own order.  After it every aligned range
 * the run covers whole is one block, so whatever the run's history (cut
 * tails, joins, growth in place: each adds blocks) it has at most
 * 2 (PFA_MAX_ORDER + 1) blocks, and the next walk of them (a free, an
 * eviction, a join) is bounded by that.  Reads only the run's own
 * descriptors.  Returns the run's blocks from `from` on, after merging,
 * plus the ones before it that a merge reached.
 */
static unsigned run_merge_blocks(phys_addr_t pa, uint64_t from, uint64_t pages)
{
	unsigned n = 0;

	for (uint64_t at = from; at < pages; n++) {
		uint64_t start = at;
		unsigned k = pfa_page(page_pa(pa, at))->order;
		while (merge_left(pa, start, k)) {
			start -= (uint64_t)1 << k;
			k++;
			if (start < from)
				from = start;
			else
				n--;              /* the lower one was counted */
		}
		at = start + ((uint64_t)1 << k);
	}
	return n;
}

/* The run `lo` takes the run `hi` that starts where it ends: hi's head
 * block becomes one of lo's further blocks, and the blocks at the seam
 * merge with their buddies (both runs had merged theirs). */
static void run_append(struct run *lo, const struct run *hi)
{
	struct page *pg = pfa_page(hi->pa);

	pfa_set_owner(hi->pa, pg->order, PG_PFA);
	pg->data = 0;
	tag_blocks(lo->pa, lo->pages, lo->pages + hi->pages);
	run_merge_blocks(lo->pa, lo->pages, lo->pages + hi->pages);
	lo->pages += hi->pages;
	if (hi->stamp < lo->stamp)
		lo->stamp = hi->stamp;
	large.joined++;
}

/* Cached run s glued to r, if the two stay one run the cache may hold. */
static bool cache_join_one(struct run *r, unsigned s, bool before)
{
	if (s == LC_NIL)
		return false;
	struct run c = { large.lc_pa[s], large.lc_pages[s], large.lc_stamp[s] };
	if (c.pages + r->pages > LARGE_MAX_PAGES)
		return false;
	cache_unlink(s);
	if (before) {
		run_append(&c, r);
		*r = c;
	} else {
		run_append(r, &c);
	}
	return true;
}

/* Coalescing: r is glued to the cached runs right after and right before
 * it (found in the cache's own indexes by head and by end: no page
 * descriptor of a neighbour, which another layer may be writing under the
 * PFA's lock, is read), so a run freed next to its own cut-off tail, or
 * next to another freed run, is one run again, for the next request as
 * large as both. */
static void cache_join(struct run *r)
{
	cache_join_one(r, cache_starting_at(page_pa(r->pa, r->pages)), false);
	cache_join_one(r, cache_ending_at(r->pa), true);
}

static bool cache_full(uint64_t pages, uint64_t budget)
{
	return large.lc_count == KM_LARGE_CACHE_RUNS || large.cached_pages + pages > budget;
}

/* Keep the run [pa, pages) (its head's data = pages); false if it does
 * not fit after at most KM_LARGE_EVICT_PER_CALL evictions (the caller
 * gives it back), or has more than KM_LARGE_RUN_BLOCKS blocks. */
static bool cache_put(phys_addr_t pa, uint64_t pages, uint64_t stamp)
{
	uint64_t budget = cache_budget();

	if (pages > budget)
		return false;
	for (unsigned i = 0; i < KM_LARGE_EVICT_PER_CALL && cache_full(pages, budget); i++)
		cache_evict_oldest();
	if (cache_full(pages, budget))
		return false;
	if (run_merge_blocks(pa, 0, pages) > KM_LARGE_RUN_BLOCKS)
		return false;               /* cannot happen: 2 (PFA_MAX_ORDER + 1) at most */
	struct run r = { pa, pages, stamp };
	cache_join(&r);

	struct page *head = pfa_page(r.pa);
	head->cls = LARGE_CACHED;
	head->data = (uint32_t)r.pages;
	head->next = 0;
	head->prev = 0;
	cache_insert(&r);
	return true;
}

/* The run [pa, pages) was cut to its first `now` pages: its tail, still
 * allocated blocks, becomes a run of its own and goes into the cache (its
 * pages are in memory: the next request of about its size reuses them);
 * back to the PFA if the cache has no room for it. */
static void cache_tail(phys_addr_t pa, uint64_t now, uint64_t pages, uint64_t stamp)
{
	if (now >= pages)
		return;
	phys_addr_t tail = page_pa(pa, now);
	struct page *head = pfa_page(tail);

	pfa_set_owner(tail, head->order, PG_LARGE);
	tag_run(tail, pages - now);
	head->data = (uint32_t)(pages - now);
	head->next = 0;
	head->prev = 0;
	if (!cache_put(tail, pages - now, stamp)) {
		head->cls = 0;
		free_from(tail, 0, pages - now);
	}
}

/* The cached run in slot s leaves the cache, grown in place to n pages
 * with the free PFA pages right after it (the pages it has are in memory:
 * only the rest is new).  0 if those pages are not free. */
static phys_addr_t cache_take_grown(unsigned s, uint64_t n)
{
	phys_addr_t pa = large.lc_pa[s];
	uint64_t have = large.lc_pages[s], now;

	if (!grow(pa, have, n, &now))
		return 0;
	cache_unlink(s);
	large.grown++;
	return pa;
}

/* What a search of the bins found: the smallest run of n pages or more
 * (best) and the largest smaller one (below), LC_NIL if none. */
struct fit {
	unsigned best, below;
	uint64_t best_pages, below_pages;
};

/* The LC_PEEK newest runs of bin b that honour align, weighed for n. */
static void bin_look(unsigned b, uint64_t n, size_t align, struct fit *f)
{
	unsigned s = large.lc_bin_head[b];

	for (unsigned k = 0; s != LC_NIL && k < LC_PEEK; k++, s = large.lc_bin_next[s]) {
		uint64_t have = large.lc_pages[s];
		if (align > PAGE_SIZE && ((uintptr_t)pfa_virt(large.lc_pa[s]) & (align - 1)))
			continue;
		if (have < n) {
			if (have > f->below_pages) {
				f->below = s;
				f->below_pages = have;
			}
		} else if (have < f->best_pages) {
			f->best = s;
			f->best_pages = have;
			if (have == n)
				return;
		}
	}
}

/* Good fit in bounded work (TLSF): n's own bin first (its LC_PEEK newest
 * runs: the smallest that fits, the newest of equals), then the lowest
 * non-empty bins above it (every run there fits: the newest is taken;
 * LC_PEEK bins at most, for an alignment that most runs miss); for growing
 * in place, the highest non-empty bin below. */
static struct fit cache_fit(uint64_t n, size_t align)
{
	struct fit f = { LC_NIL, LC_NIL, UINT64_MAX, 0 };
	unsigned b = lc_bin(n);

	bin_look(b, n, align, &f);
	for (unsigned t = 0, up = bin_at_or_above(b + 1); f.best == LC_NIL && up < LC_BINS && t < LC_PEEK;
	     t++, up = bin_at_or_above(up + 1))
		bin_look(up, n, align, &f);
	if (f.best == LC_NIL && f.below == LC_NIL) {
		unsigned down = bin_below(b);
		if (down < LC_BINS)
			bin_look(down, n, align, &f);
	}
	return f;
}

/* A cached run for n pages whose address honours align, cut to n pages
 * (*pages says how many it kept; the rest stays cached); else a smaller
 * one grown in place; 0 if none fits (cache_fit: at most
 * (LC_PEEK + 2) * LC_PEEK slots looked at, whatever the cache holds). */
static phys_addr_t cache_take(uint64_t n, size_t align, uint64_t *pages)
{
	struct fit f = cache_fit(n, align);

	*pages = n;
	if (f.best == LC_NIL)
		return f.below != LC_NIL ? cache_take_grown(f.below, n) : 0;
	phys_addr_t pa = large.lc_pa[f.best];
	uint64_t stamp = large.lc_stamp[f.best];
	cache_unlink(f.best);
	if (f.best_pages > n) {   /* the tail keeps the run's age */
		*pages = shrink(pa, f.best_pages, n, false);
		cache_tail(pa, *pages, f.best_pages, stamp);
	}
	return pa;
}

void large_free(void *p, struct page *head)
{
	uint64_t pages = head->data;

	large.runs--;
	large.clock++;
	account(-(int64_t)pages, -(int64_t)head->next);
	cache_decay();
	if (cache_put(pfa_phys(p), pages, large.clock))
		return;
	head->cls = 0;
	free_from(pfa_phys(p), 0, pages);
}

bool large_is_cached(const struct page *head)
{
	return head->owner == PG_LARGE && head->cls == LARGE_CACHED;
}

/* A miss: n pages will be faulted in fresh, so runs that could not serve
 * it make room (the oldest, up to n pages, KM_LARGE_EVICT_PER_CALL runs
 * at most): the cache's pages plus the live runs' stay what they were. */
static void cache_make_room(uint64_t n)
{
	uint64_t gone = 0;

	for (unsigned i = 0; i < KM_LARGE_EVICT_PER_CALL && large.lc_count && 2 * gone < n; i++) {
		gone += large.lc_pages[large.lc_oldest];
		cache_evict_oldest();
	}
}

bool large_cache_shed(void)
{
	if (!cache_evict_some(KM_LARGE_PRESSURE_RUNS))
		return false;
	large.pressed++;
	return true;
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

/* Shrink the run at pa to about `want` pages; returns its new length.
 * give_back: the pages past it go to the PFA, else they stay allocated
 * blocks (for cache_tail). */
static uint64_t shrink(phys_addr_t pa, uint64_t pages, uint64_t want, bool give_back)
{
	uint64_t at = 0;

	for (;;) {   /* find the block holding page want - 1 */
		unsigned k = pfa_page(page_pa(pa, at))->order;
		uint64_t end = at + ((uint64_t)1 << k);
		if (end >= want) {
			if (give_back)
				free_from(pa, end, pages);
			uint64_t now = at + keep_pages(page_pa(pa, at), k, want - at, give_back);
			tag_run(pa, now);
			return now;
		}
		at = end;
	}
}

/* Take the free block [pa, 2^k pages) from the PFA; false if we can't.
 * pfa_alloc_at() itself, under the PFA's lock, says whether the pages are
 * managed and free: their descriptors are not ours to read. */
static bool claim(phys_addr_t pa, unsigned k)
{
	if (pfa_alloc_at(pa, k) != 0)
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

/* A resize that keeps the run's pages: only the bytes asked change.  No
 * lock: the caller owns the run (its head, allocated), so no other CPU
 * writes its descriptor, and the requested total is atomic.  false: the
 * page count would change (large_resize, under the lock). */
bool large_resize_within(struct page *head, size_t size)
{
	if (size > KMALLOC_MAX_SIZE || km_pages_for(size) != head->data)
		return false;
	int64_t d = (int64_t)size - (int64_t)head->next;
	head->next = (uint32_t)size;
	__atomic_add_fetch(&large.requested, (uint64_t)d, __ATOMIC_RELAXED);
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
		now = shrink(pa, pages, want, true);
	}
	account((int64_t)now - (int64_t)pages, (int64_t)size - (int64_t)head->next);
	head->data = (uint32_t)now;
	head->next = (uint32_t)size;
	return true;
}

/*
 * strata/kmalloc.h - levels +1 and +2: the object allocator and its
 * front end (kmalloc, kfree, krealloc, ...).
 *
 *   kmalloc(size)  size <= KMALLOC_SMALL_MAX ──► a block of a pool of an
 *                                                arena (mm/pool.c, arena.c)
 *                  larger ─────────────────────► a run of whole pages
 *                                                (mm/large.c)
 *   kfree(p)       the page descriptor of p (pfa_virt_to_page) says which
 *                  of the two owns it, in O(1); anything else is reported.
 *
 * Call kmalloc_init() once after pfa_setup_end() (and again after every
 * new pfa_setup_begin() .. pfa_setup_end(), which forgets all memory).
 *
 * Guarantees
 * ----------
 *  - Every pointer is aligned to at least 16 bytes (KMALLOC_MIN_ALIGN).
 *    A block whose size class is a power of two (16, 32, ..., 32768) is
 *    aligned to its size; a large run is page aligned.
 *  - kmalloc(0) returns a unique, non-NULL pointer to the smallest block
 *    (16 bytes, kmalloc_usable_size() == 16), which must be kfree()d.
 *  - krealloc(p, 0) frees p and returns NULL (like glibc's realloc).
 *    krealloc(NULL, n) is kmalloc(n).  On failure krealloc returns NULL
 *    and p is left untouched.
 *  - kfree(NULL) does nothing.  kfree() of a pointer strata never handed
 *    out, or handed out and already freed, is reported (one line through
 *    mm_platform_write(), with the address and the caller), remembered
 *    for kmalloc_last_report() and otherwise ignored: kfree returns -1
 *    then, 0 when it took the block (so `if (kfree(p)) panic(...)` is a
 *    kernel's strict policy).  A double free that only shows when the
 *    block is next used (debug mode's quarantine, a poisoned block) is
 *    reported then, with its own serial number.
 *  - Requests larger than one PFA block (PAGE_SIZE << PFA_MAX_ORDER,
 *    4 MiB by default) fail with NULL; kmalloc_last_report() says why.
 *  - kmalloc_aligned() honours every power-of-two alignment up to
 *    KMALLOC_ALIGN_MAX (= the largest PFA block, 4 MiB by default), which
 *    every block of that size has; a larger power of two is tried too
 *    (a block at such an address, if the memory has a free one) and
 *    fails as out of memory when there is none.
 */
#ifndef STRATA_KMALLOC_H
#define STRATA_KMALLOC_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/pfa.h>

/* ---- flags ---- */
#define KM_ZERO 0x1u      /* fill the block with zeroes (kzalloc) */
#define KM_NO_MOVE 0x2u   /* krealloc only: resize in place or return NULL
			     (p unchanged, nothing reported for a valid p) */

#define KMALLOC_MIN_ALIGN 16
#define KMALLOC_ALIGN_MAX ((size_t)PAGE_SIZE << PFA_MAX_ORDER)
#define KMALLOC_MAX_SIZE  ((size_t)PAGE_SIZE << PFA_MAX_ORDER)

/* Largest request served from pools (small classes up to 2048 bytes in
 * 16 KiB pools, medium ones above in pools of 32..512 KiB); larger ones
 * are page runs.  Chosen by measurement, see the comment at the top of
 * mm/pool.c. */
#ifndef KMALLOC_SMALL_MAX
#define KMALLOC_SMALL_MAX 32768
#endif
#define KMALLOC_MAX_CLASSES 80

/* ---- setup ---- */
void kmalloc_init(void);

/* ---- allocation ---- */
void *kmalloc(size_t size, unsigned flags);
void *kzalloc(size_t size, unsigned flags);
void *kcalloc(size_t n, size_t size, unsigned flags);   /* NULL on n*size overflow */
void *krealloc(void *p, size_t size, unsigned flags);   /* KM_ZERO zeroes the growth */
void *kmalloc_aligned(size_t size, size_t align, unsigned flags);
int kfree(const void *p);   /* 0: freed (or NULL); -1: refused, reported */
size_t kmalloc_usable_size(const void *p);               /* 0 for NULL or a bad pointer */

/* The same, with the caller to blame in reports given explicitly (for
 * wrappers such as mm/malloc_std.c). */
int kfree_caller(const void *p, void *caller);
/* kmalloc() on behalf of `caller` (the C library's malloc passes its own
 * caller, so that debug mode's "allocated at" names the program). */
void *kmalloc_caller(size_t size, unsigned flags, void *caller);
void *krealloc_caller(void *p, size_t size, unsigned flags, void *caller);
size_t kmalloc_usable_size_caller(const void *p, void *caller);
void *kcalloc_caller(size_t n, size_t size, unsigned flags, void *caller);
void *kmalloc_aligned_caller(size_t size, size_t align, unsigned flags, void *caller);
/* Is p a block handed out and not freed (a debug block's data pointer in
 * debug mode)?  No report either way: for wrappers that must tell a bad
 * pointer from a lack of memory after a call returned NULL. */
bool kmalloc_is_block(const void *p);
/* kfree for sized and aligned deallocation (C++'s operator delete(p, n),
 * delete(p, align), delete(p, n, align)); size 0: none told, align 0 or
 * up to 16: none.  The block must have the size a request of `size`
 * bytes aligned so gets (its size class; a large run that holds it; in
 * debug mode exactly `size`) and, in debug mode, come from an allocation
 * aligned the same way; otherwise a bug report (MM_BUG_SIZED_DELETE,
 * MM_BUG_ALIGNED_DELETE; panic or go on, strata/debug.h), then freed.
 * Returns what kfree_caller() returns. */
int kfree_sized_caller(const void *p, size_t size, size_t align, void *caller);

/* ---- reports: bad pointers and failed allocations ---- */
enum kmalloc_report_kind {
	KM_REPORT_NONE = 0,
	/* bad pointers given to kfree/krealloc/kmalloc_usable_size */
	KM_BAD_UNMANAGED,    /* not in the direct map of managed RAM */
	KM_BAD_RESERVED,     /* a reserved page (kernel image, firmware, ...) */
	KM_BAD_FREE_PAGE,    /* a page that is free in the PFA (freed large run?) */
	KM_BAD_FOREIGN,      /* a page owned by another layer (pfa_alloc, caches) */
	KM_BAD_NOT_BLOCK,    /* inside an arena, but in no block ever handed out
	                        (pool/arena header, free pool, never-carved space) */
	KM_BAD_MISALIGNED,   /* inside a pool, not at the start of a block */
	KM_BAD_INTERIOR,     /* inside a large run, not at its start */
	KM_DOUBLE_FREE,      /* the block is already on its pool's free list */
	KM_BAD_WRONG_CACHE,  /* kmem_cache_free: an object of another cache */
	KM_BAD_NOT_IN_USE,   /* inside the PFA's span (a hosted heap's reservation)
	                        but in memory it does not manage now: no block */
	/* allocation failures (the call returned NULL) */
	KM_FAIL_TOO_LARGE,   /* larger than KMALLOC_MAX_SIZE */
	KM_FAIL_NOMEM,       /* the PFA has no block big enough */
	KM_FAIL_BAD_ALIGN,   /* alignment not a power of two */
	KM_FAIL_OVERFLOW,    /* kcalloc: n * size overflows */
	KM_REPORT_KINDS
};

struct kmalloc_report {
	enum kmalloc_report_kind kind;
	const char *op;       /* "kfree", "krealloc", "kmalloc", ... */
	const void *ptr;      /* the pointer given (bad pointers) */
	size_t size;          /* the size asked for (failures) */
	void *caller;         /* return address of the API call */
	uint8_t page_owner;   /* descriptor owner seen (bad pointers), or 0 */
	uint64_t serial;      /* 1, 2, ... : reports so far */
};

/* Copy of the most recent report (kind KM_REPORT_NONE if none since
 * kmalloc_init() or kmalloc_clear_report()). */
void kmalloc_last_report(struct kmalloc_report *r);
void kmalloc_clear_report(void);
const char *kmalloc_report_name(enum kmalloc_report_kind kind);

/* ---- statistics (a snapshot, taken under the lock) ---- */
struct kmalloc_class_stats {
	uint32_t size;           /* block size of the class */
	uint32_t blocks_per_pool;
	uint32_t pool_size;      /* bytes per pool of this class */
	uint32_t pad;
	uint64_t pools;          /* pools of this class now (used, full or parked) */
	uint64_t full_pools;
	uint64_t blocks_used;
	uint64_t blocks_avail;   /* free or never carved, in this class's pools */
};

struct kmalloc_stats {
	unsigned nclasses;
	struct kmalloc_class_stats cls[KMALLOC_MAX_CLASSES];
	size_t small_max, pool_size, arena_size;   /* pool_size: the small classes' */

	/* arenas */
	uint64_t arenas_allocated_total;   /* taken from the PFA since init */
	uint64_t arenas_reclaimed_total;   /* given back to the PFA */
	uint64_t arenas_highwater;         /* most arenas at one time */
	uint64_t arenas_current;           /* now, including the spare */
	uint64_t arenas_spare;             /* 0 or 1: arena with no block handed out,
	                                      kept back (spare, or holding parked pools) */

	/* every byte of every current arena is in exactly one of these */
	uint64_t bytes_allocated_blocks;   /* blocks handed out (class size) */
	uint64_t bytes_available_blocks;   /* free blocks in live pools, carved or not */
	uint64_t unused_pools;             /* empty pools held by arenas */
	uint64_t bytes_unused_pools;
	uint64_t bytes_pool_headers;       /* pool + arena headers, alignment pad */
	uint64_t bytes_quantization;       /* pool tails too small for a block */

	/* large runs (level +1) */
	uint64_t large_runs;
	uint64_t large_pages;
	uint64_t large_bytes_requested;
	uint64_t large_bytes_rounding;     /* pages * PAGE_SIZE - requested */
	uint64_t large_cached_pages;       /* freed runs kept for reuse (large.c) */

	/* reconciliation: pages this allocator holds from the PFA now */
	uint64_t pfa_pages;                /* arenas_current*arena pages + large_pages
	                                      + large_cached_pages */

	/* per-CPU layer (mm/percpu.c): counted in bytes_allocated_blocks
	 * above, since the pools handed them out, but not in use by anyone */
	uint64_t percpu_cached_blocks;     /* free blocks in magazines (CPUs + depots) */
	/* So blocks in use by callers = sum of cls[].blocks_used
	 *                               - percpu_cached_blocks - blocks_internal */
	uint64_t percpu_cached_bytes;
	uint64_t bytes_internal;           /* magazines and per-CPU areas themselves */
	uint64_t blocks_internal;

	/* calls */
	/* krealloc's resizes kept and moved; malloc_std's realloc keeps a
	 * block that stays in its class inline, without counting it */
	uint64_t realloc_in_place, realloc_moved;
	uint64_t pfa_allocs, pfa_frees;    /* calls this layer made to the PFA */
	uint64_t bad_pointers;             /* reports of kind KM_BAD_* / DOUBLE */
	uint64_t failures;                 /* reports of kind KM_FAIL_* */
};

void kmalloc_get_stats(struct kmalloc_stats *st);
/* A table in the spirit of CPython's sys._debugmallocstats(). */
void kmalloc_print_stats(void (*out)(const char *s, size_t n));

/* Walk every arena, pool and free list and check the invariants.
 * Returns the number of problems (each one reported), 0 when sound. */
int kmalloc_check(void);

/* Give every parked empty pool and the spare arena back (e.g. before
 * comparing with a pre-workload PFA state, or under memory pressure).
 * Returns the number of pages given back to the PFA. */
uint64_t kmalloc_trim(void);

/*
 * A reserve for hard real-time sections: after kmalloc_reserve(size, n)
 * returns 0 and until the matching kmalloc_unreserve(),
 *
 *   - n blocks of size's class are free in pools (made now: this call may
 *     take arenas from the PFA), and the calling CPU's magazines of that
 *     class exist (so the section makes none);
 *   - no empty pool leaves its class (each stays on the class's list of
 *     pools with free blocks), so no pool changes class and no arena
 *     goes back to the PFA.
 *
 * So a section on this CPU whose kmalloc/kfree of small sizes (<= 32768
 * bytes) in reserved classes never has more than n blocks of a class
 * live beyond what was live at the reserve calls no page-allocator
 * function (a test counts PFA calls: tests/host/test_reserve.c and
 * test=kmalloc "reserve").  Each call takes the cost of the slow paths
 * ahead of time: inside the section every call is bounded by the fast
 * and magazine paths (README, "Worst case").  Not covered: large
 * requests (> 32768 bytes, runs of pages), other CPUs (call it on each,
 * with migration off), kmalloc_trim()/mm_reclaim() inside the section.
 * Reserves nest (one per class used); -1 (nothing held) for size 0, a
 * large size, or when memory for the reserve is missing.  The last
 * kmalloc_unreserve() sends the empty pools kept meanwhile back to their
 * arenas (and so arenas to the PFA) as the frees would have.
 */
int kmalloc_reserve(size_t size, unsigned n);
void kmalloc_unreserve(void);

#endif

/*
 * strata/guard.h - sampled guarded allocations (mm/guard.c), in every
 * build: one kmalloc in N gets a page of its own, placed against a
 * protected guard page, and is protected again when freed, so that an
 * overflow, an underflow or a use after free of that object traps at the
 * faulting instruction and is reported (Linux's KFENCE and GWP-ASan work
 * this way).  Needs the platform's page-protection hook
 * (mm_platform_protect, strata/platform.h); without it setup fails and
 * nothing changes.
 *
 * A kernel passes its command line's mm.sample= to mm_guard_setup(), and
 * its trap handler asks mm_guard_fault() about every page fault in the
 * kernel before treating it as its own.
 */
#ifndef STRATA_GUARD_H
#define STRATA_GUARD_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MM_GUARD_SLOTS       255     /* objects of up to a page guarded at once */
#define MM_GUARD_LARGE_SLOTS 30      /* ... and larger ones, each in a slot of */
#define MM_GUARD_LARGE_PAGES 16      /* 16 pages (requests over that: not sampled) */
#define MM_GUARD_DEFAULT_RATE 200000u /* one kmalloc in 200000 (measured: README) */

/* spec: "N" (one allocation in N on average; 0 or "off": none) and
 * optionally ",seed=S" (the per-CPU random countdowns start from S, so
 * which allocations are sampled repeats from run to run) and ",continue"
 * (report and go on; the default follows mm_debug_set_panic, which is
 * panic) or ",abort"/",panic".  The guard pool (4 MiB: 255 one-page
 * slots, 30 of 16 pages for larger requests) is taken from the PFA on the first call with N > 0.  Returns 0, -1 for a
 * spec not understood, -2 if the platform cannot protect pages or there
 * is no memory for the pool (sampling stays off), -3 if strata was built
 * with -DMM_SAMPLING=0 (strata/config.h: kmalloc's fast path has no
 * countdown; N > 0 cannot be honoured). */
int mm_guard_setup(const char *spec);

/* Access kinds for mm_guard_fault(). */
#define MM_ACCESS_UNKNOWN 0
#define MM_ACCESS_READ    1
#define MM_ACCESS_WRITE   2

/* A page fault at addr: false if addr is not in the guard pool (the fault
 * is not strata's).  Otherwise it is reported (overflow, underflow, use
 * after free, naming the object and its call sites) through the report
 * sink, which panics unless told to continue; then the pages concerned
 * are made accessible (that object is no longer guarded) and true tells
 * the trap handler to return and retry the access.  pc: the faulting
 * instruction (named in the report), or NULL. */
bool mm_guard_fault(const void *addr, int access, void *pc);

struct mm_guard_stats {
	unsigned rate;                   /* N, 0: off */
	uint64_t sampled;                /* allocations that were due a slot */
	uint64_t guarded;                /* ... and got one */
	uint64_t no_slot;                /* ... found every slot in use */
	uint64_t live;                   /* slots holding an object now */
	uint64_t faults;                 /* faults reported */
};
void mm_guard_get_stats(struct mm_guard_stats *st);

#endif

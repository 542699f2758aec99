/*
 * strata/fault.h - fault injection: a test hook that makes strata's
 * allocation points fail on demand (mm/fault.c).
 *
 * Out-of-memory paths are the ones no ordinary run takes: a RAM-rich test
 * machine never sees arena creation fail half-way through a kmalloc, nor
 * the per-CPU magazine of a kfree go missing.  Like Linux's fail_page_alloc
 * and failslab, strata can be told to fail chosen calls:
 *
 *   point (enum mm_fault_point)   where the check sits
 *   -----                         --------------------
 *   pfa       MM_FAULT_PFA        pfa_alloc(), pfa_alloc_at() (so also
 *                                 pfa_alloc_aligned()): 0 / -1 returned
 *   arena     MM_FAULT_ARENA      a new 1 MiB arena (mm/arena.c)
 *   magazine  MM_FAULT_MAGAZINE   a per-CPU area or magazine (mm/percpu.c,
 *                                 for the kmalloc classes and kmem caches)
 *   slab      MM_FAULT_SLAB       a kmem_cache growing by a slab (mm/slab.c)
 *   os        MM_FAULT_OS         the platform's own memory calls; in
 *                                 libstrata.so, the mmap()s that grow the
 *                                 heap (arch/host/libstrata.c)
 *
 *   mode (enum mm_fault_mode)     which calls of the point fail; calls are
 *   ----                          numbered 1, 2, ... from mm_fault_set()
 *   MM_FAULT_NTH     n            call n only
 *   MM_FAULT_EVERY   n            calls n, 2n, 3n, ...
 *   MM_FAULT_RANDOM  n, seed      each call with probability 1/n; whether
 *                                 call i fails is a hash of (seed, i), so a
 *                                 seed replays the same pattern (no libc,
 *                                 no shared PRNG state: SMP safe)
 *
 * Every point counts its calls and the failures it injected, in every
 * mode, off included (mm_fault_get), so a test can first count how many
 * calls an operation makes at a point and then fail each one in turn.
 * A failure injected at a point looks exactly like running out of memory
 * there: the caller takes its ordinary error path (a NULL with
 * KM_FAIL_NOMEM, a fallback to the locked path, ...).
 *
 * Build: compiled in only with -DMM_FAULT_INJECT=1 (the host's
 * tests/host/test_faults.c, build/host/libstrata-faults.so, and kernels
 * built with `make FAULT_INJECT=1`, in build/<arch>-faults/).  Otherwise
 * every check is the constant 0, the paths are the same code as without
 * this file, and the calls below do nothing (mm_fault_set and
 * mm_fault_setup return -1, the counters read 0).
 *
 * Text form (mm_fault_setup; the kernel's mm.fault=, libstrata's
 * STRATA_FAULT=):  POINTS:RULE, POINTS a comma-separated list of point
 * names or "all", RULE one of
 *     nth=N    every=K    random=SEED,1in=N    off
 * e.g. "pfa:every=7", "arena,slab:nth=3", "all:random=42,1in=50".
 */
#ifndef STRATA_FAULT_H
#define STRATA_FAULT_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdbool.h>
#include <stdint.h>

#ifndef MM_FAULT_INJECT
#define MM_FAULT_INJECT 0
#endif

enum mm_fault_point {
	MM_FAULT_PFA,
	MM_FAULT_ARENA,
	MM_FAULT_MAGAZINE,
	MM_FAULT_SLAB,
	MM_FAULT_OS,
	MM_FAULT_POINTS
};
#define MM_FAULT_ALL MM_FAULT_POINTS   /* mm_fault_set(): every point */

enum mm_fault_mode { MM_FAULT_OFF, MM_FAULT_NTH, MM_FAULT_EVERY, MM_FAULT_RANDOM };

struct mm_fault_stats {
	uint64_t calls;      /* checks made at the point since mm_fault_set() */
	uint64_t injected;   /* of them, failed on purpose */
};

/* Set the rule of `point` (or MM_FAULT_ALL); its counters restart at 0.
 * n >= 1 (nth, every, random's 1-in-n); 0, or -1 for bad arguments or a
 * build without MM_FAULT_INJECT.  Safe while other CPUs allocate (they
 * see the old rule or the new one), but counts are exact only when set
 * between phases. */
int mm_fault_set(unsigned point, enum mm_fault_mode mode, uint64_t n, uint64_t seed);
/* The text form above; 0, or -1 (nothing changed) if not understood. */
int mm_fault_setup(const char *spec);
/* The counters of `point`; of all points added up for MM_FAULT_ALL. */
void mm_fault_get(unsigned point, struct mm_fault_stats *st);
/* Nonzero: no call fails (and none is counted) until mm_fault_pause(0);
 * for a test's own bookkeeping.  Returns the previous setting. */
int mm_fault_pause(int on);
const char *mm_fault_point_name(unsigned point);   /* "pfa", ...; "?" */

/* The check at an injection point: true = fail this call. */
bool mm_fault_hit(unsigned point);
#if MM_FAULT_INJECT
#define MM_FAULT(point) __builtin_expect(mm_fault_hit(point), 0)
#else
#define MM_FAULT(point) 0
#endif

#endif

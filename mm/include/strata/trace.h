/*
 * strata/trace.h - where the memory goes, like Python's tracemalloc:
 * every kmalloc family allocation is recorded with its call site (up to
 * MM_TRACE_MAX_FRAMES return addresses), counted and summed per site.
 *
 *   mm_trace_start(2);
 *   s1 = mm_trace_snapshot();
 *   ... workload ...
 *   s2 = mm_trace_snapshot();
 *   mm_trace_print_diff(s1, s2, 10, out);   sites sorted by growth
 *   mm_trace_print_leaks(10, out);          live blocks grouped by site
 *
 * Reports print sites as hex addresses; scripts/trace2line turns them into
 * function and file:line with addr2line.  Frames beyond the first are
 * found by walking frame pointers (build with -fno-omit-frame-pointer;
 * without, only the direct caller is reliable).
 *
 * Cost: while tracing, kmalloc/kfree leave their fast paths (one table
 * insert or delete under a lock per call).  kmem_cache objects are not
 * traced.  The tables are taken from the PFA at mm_trace_start and given
 * back at mm_trace_stop.  Needs MM_DEBUG (strata/debug.h) compiled in.
 */
#ifndef STRATA_TRACE_H
#define STRATA_TRACE_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stddef.h>
#include <stdint.h>

#define MM_TRACE_MAX_FRAMES 4

/* 0, or -1 (nframes not 1..MM_TRACE_MAX_FRAMES, no memory, no MM_DEBUG).
 * Blocks allocated before the start are not known to the tracer. */
int mm_trace_start(unsigned nframes);
void mm_trace_stop(void);
int mm_trace_is_tracing(void);

struct mm_trace_stat {
	void *frames[MM_TRACE_MAX_FRAMES];   /* [0] = the allocating call */
	uint64_t count, bytes;               /* live blocks, bytes asked for */
	int64_t count_diff, bytes_diff;      /* compare: new - old */
};

struct mm_trace_snapshot;
struct mm_trace_snapshot *mm_trace_snapshot(void);   /* NULL: no memory */
void mm_trace_snapshot_free(struct mm_trace_snapshot *s);

/* Copy up to max site entries: a snapshot's sites by bytes (largest
 * first), or the comparison of two snapshots by bytes_diff (largest
 * growth first).  Return the number of entries. */
unsigned mm_trace_statistics(const struct mm_trace_snapshot *s,
			     struct mm_trace_stat *out, unsigned max);
unsigned mm_trace_compare(const struct mm_trace_snapshot *old_s,
			  const struct mm_trace_snapshot *new_s,
			  struct mm_trace_stat *out, unsigned max);

void mm_trace_print_diff(const struct mm_trace_snapshot *old_s,
			 const struct mm_trace_snapshot *new_s, unsigned top,
			 void (*out)(const char *s, size_t n));
/* Live traced blocks grouped by site, largest first. */
void mm_trace_print_leaks(unsigned top, void (*out)(const char *s, size_t n));

/* Blocks allocated while the tables were full (not traced). */
uint64_t mm_trace_untraced(void);

#endif

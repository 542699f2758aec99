/*
 * labs/7-leaks/grade.c - lab 7's suite (linked only into lab kernels):
 * sessions opened and closed leave nothing behind, by tracemalloc's
 * snapshots and by the allocator's own byte count.
 */
#include <kernel/console.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <strata/kmalloc.h>
#include <strata/trace.h>
#include "sessions.h"

#define ROUNDS 200u

static void work(struct ktest_ctx *t)
{
	static char name[32];
	for (unsigned i = 0; i < ROUNDS; i++) {
		snprintf(name, sizeof name, "user-%u", i);
		struct session *s = session_open(i, name);
		KT_CHECK(t, s != NULL, "session_open %u", i);
		if (s)
			session_close(s);
	}
}

/* Two snapshots around the work: no call site has more live blocks. */
KTEST_NAMED("lab-leak", trace_diff_is_empty, lab_trace_diff_is_empty);
static void lab_trace_diff_is_empty(struct ktest_ctx *t)
{
	static struct mm_trace_stat d[16];
	KT_REQUIRE(t, mm_trace_start(2) == 0, "mm_trace_start");
	struct mm_trace_snapshot *s0 = mm_trace_snapshot();
	work(t);
	struct mm_trace_snapshot *s1 = mm_trace_snapshot();
	KT_REQUIRE(t, s0 && s1, "snapshots");
	unsigned n = mm_trace_compare(s0, s1, d, 16), grew = 0;
	for (unsigned i = 0; i < n; i++)
		grew += d[i].count_diff > 0;
	if (grew) {
		printf("# lab-leak: the diff of the snapshots, largest growth first:\n");
		mm_trace_print_diff(s0, s1, 5, console_write);
	}
	KT_CHECK(t, grew == 0, "%u call site(s) hold more blocks after the sessions closed", grew);
	mm_trace_snapshot_free(s0);
	mm_trace_snapshot_free(s1);
	mm_trace_stop();
}

/* Bytes in blocks callers hold: the pools' count less the blocks cached in
 * magazines and the magazines themselves (kmalloc.h's reconciliation). */
static uint64_t in_use(const struct kmalloc_stats *st)
{
	return st->bytes_allocated_blocks - st->percpu_cached_bytes - st->bytes_internal;
}

/* The allocator's count of bytes in blocks handed out (the ones no
 * magazine holds) is back where it was. */
KTEST_NAMED("lab-leak", bytes_come_back, lab_bytes_come_back);
static void lab_bytes_come_back(struct ktest_ctx *t)
{
	static struct kmalloc_stats a, b;
	kmalloc_get_stats(&a);
	work(t);
	kmalloc_get_stats(&b);
	KT_CHECK(t, in_use(&b) == in_use(&a), "%lld bytes more in blocks in use after %u sessions",
		 (long long)(in_use(&b) - in_use(&a)), ROUNDS);
}

/*
 * trace.c - suite "trace": tracemalloc's call stacks inside the kernel.
 *
 *   trace_outer -> trace_middle -> trace_leaf -> kmalloc(72)
 *
 * With mm_trace_start(4) the site of each of those blocks must be the
 * four return addresses, innermost first: in trace_leaf, trace_middle,
 * trace_outer and the test itself.  mm/trace.c walks the frame records
 * the compiler keeps with -fno-omit-frame-pointer; where a record sits
 * is an ABI fact (strata/config.h, MM_FRAME_RECORD: at the frame pointer
 * on x86_64 and aarch64, 16 bytes below it on RISC-V), so this suite
 * runs on every architecture.
 */
#include <kernel/ktest.h>
#include <strata/kmalloc.h>
#include <strata/trace.h>

#define NBLOCKS 5
static void *blocks[NBLOCKS];
static volatile int nblocks = NBLOCKS;   /* one call site: no unrolled copies */

static __attribute__((noinline)) void *trace_leaf(void)
{
	void *p = kmalloc(72, 0);
	__asm__ volatile("" : : : "memory");   /* no tail call */
	return p;
}

static __attribute__((noinline)) void *trace_middle(void)
{
	void *p = trace_leaf();
	__asm__ volatile("" : : : "memory");
	return p;
}

static __attribute__((noinline)) void *trace_outer(void)
{
	void *p = trace_middle();
	__asm__ volatile("" : : : "memory");
	return p;
}

/* a return address inside fn: after its first instruction, within span */
static int in_fn(void *site, void *fn, uintptr_t span)
{
	return (uintptr_t)site > (uintptr_t)fn && (uintptr_t)site < (uintptr_t)fn + span;
}

KTEST(trace, stack_of_three_functions_is_recorded)
{
	KT_REQUIRE(t, mm_trace_start(4) == 0, "mm_trace_start(4) refused");
	struct mm_trace_snapshot *a = mm_trace_snapshot();
	for (int i = 0; i < nblocks; i++)
		blocks[i] = trace_outer();
	struct mm_trace_snapshot *b = mm_trace_snapshot();
	__asm__ volatile("" : : : "memory");
	struct mm_trace_stat top[4];
	unsigned n = (a && b) ? mm_trace_compare(a, b, top, 4) : 0;
	for (int i = 0; i < NBLOCKS; i++)
		kfree(blocks[i]);
	mm_trace_snapshot_free(a);
	mm_trace_snapshot_free(b);
	mm_trace_stop();

	KT_REQUIRE(t, n >= 1, "no growth between the snapshots (%u sites)", n);
	KT_CHECK(t, top[0].count_diff == NBLOCKS && top[0].bytes_diff == NBLOCKS * 72,
		 "top site grew by %lld blocks, %lld bytes; want %d, %d",
		 (long long)top[0].count_diff, (long long)top[0].bytes_diff, NBLOCKS, NBLOCKS * 72);
	void *want[4] = { (void *)trace_leaf, (void *)trace_middle, (void *)trace_outer,
			  (void *)ktest_trace_stack_of_three_functions_is_recorded };
	const char *name[4] = { "trace_leaf", "trace_middle", "trace_outer", "the test" };
	for (int k = 0; k < 4; k++)
		KT_CHECK(t, in_fn(top[0].frames[k], want[k], k < 3 ? 256 : 4096),
			 "frame %d is %p, not in %s (%p)", k, top[0].frames[k], name[k], want[k]);
}

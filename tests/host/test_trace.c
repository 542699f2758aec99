/*
 * test_trace.c - tracemalloc-like tracing (strata/trace.h): a snapshot
 * diff finds a planted leak and names its function; frees balance; the
 * leak report groups live blocks by site.
 */
#include "harness.h"
#include "host_ram.h"

#include <stdbool.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/trace.h>

#define RAM (64u << 20)

static void setup(void)
{
	host_heap_setup(RAM);
}

static void *kept[1000];

/* The planted leak: 100 blocks of 96 bytes that are never freed. */
static __attribute__((noinline)) void leaky_function(void)
{
	for (int i = 0; i < 100; i++)
		kept[i] = kmalloc(96, 0);
	__asm__ volatile("" : : : "memory");
}

/* Balanced work from another site. */
static __attribute__((noinline)) void balanced_function(void)
{
	for (int i = 0; i < 500; i++) {
		void *p = kmalloc(40 + (size_t)i, 0);
		void *q = krealloc(p, 4000, 0);
		kfree(q);
	}
	__asm__ volatile("" : : : "memory");
}

static __attribute__((noinline)) void outer_function(void)
{
	leaky_function();
	__asm__ volatile("" : : : "memory");
}

static char text[8192];
static size_t text_len;
static void text_out(const char *s, size_t n)
{
	if (text_len + n < sizeof text) {
		memcpy(text + text_len, s, n);
		text_len += n;
		text[text_len] = 0;
	}
}

static bool in_fn(void *site, void (*fn)(void))
{
	return (uintptr_t)site > (uintptr_t)fn && (uintptr_t)site < (uintptr_t)fn + 200;
}

TEST(snapshot_diff_finds_the_planted_leak)
{
	setup();
	REQUIRE(mm_trace_start(2) == 0, "start");
	struct mm_trace_snapshot *a = mm_trace_snapshot();
	balanced_function();
	outer_function();
	balanced_function();
	struct mm_trace_snapshot *b = mm_trace_snapshot();
	REQUIRE(a && b, "snapshots");
	struct mm_trace_stat top[8];
	unsigned n = mm_trace_compare(a, b, top, 8);
	REQUIRE(n >= 1, "no difference found");
	CHECK(top[0].bytes_diff == 9600 && top[0].count_diff == 100 && top[0].count == 100,
	      "top growth %lld bytes %lld blocks", (long long)top[0].bytes_diff,
	      (long long)top[0].count_diff);
	CHECK(in_fn(top[0].frames[0], leaky_function), "site %p is not in leaky_function %p",
	      top[0].frames[0], (void *)leaky_function);
	CHECK(in_fn(top[0].frames[1], outer_function), "caller frame %p not in outer_function",
	      top[0].frames[1]);
	for (unsigned i = 1; i < n; i++)
		CHECK(top[i].bytes_diff == 0 || top[i].bytes_diff < top[0].bytes_diff,
		      "not sorted by growth");
	/* balanced_function's sites net to zero: not in the diff */
	for (unsigned i = 0; i < n; i++)
		CHECK(!in_fn(top[i].frames[0], balanced_function) || top[i].bytes_diff == 0,
		      "balanced site grew by %lld", (long long)top[i].bytes_diff);
	text_len = 0;
	mm_trace_print_diff(a, b, 5, text_out);
	char want[64];
	snprintf(want, sizeof want, "site %p", top[0].frames[0]);
	CHECK(strstr(text, "growth 9600 bytes, 100 blocks") && strstr(text, want),
	      "diff text:\n%s", text);
	text_len = 0;
	mm_trace_print_leaks(3, text_out);
	CHECK(strstr(text, "9600 bytes in 100 blocks"), "leaks text:\n%s", text);
	for (int i = 0; i < 100; i++)
		kfree(kept[i]);
	struct mm_trace_snapshot *c = mm_trace_snapshot();
	n = mm_trace_compare(a, c, top, 8);
	CHECK(n == 0, "after freeing the leak %u sites still differ (first %lld bytes)", n,
	      n ? (long long)top[0].bytes_diff : 0LL);
	mm_trace_snapshot_free(a);
	mm_trace_snapshot_free(b);
	mm_trace_snapshot_free(c);
	CHECK(mm_trace_untraced() == 0, "untraced %llu", (unsigned long long)mm_trace_untraced());
	mm_trace_stop();
	CHECK(!mm_trace_is_tracing(), "still tracing");
}

TEST(many_blocks_and_frees_balance)
{
	setup();
	REQUIRE(mm_trace_start(1) == 0, "start");
	struct mm_trace_snapshot *a = mm_trace_snapshot();
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 1000; i++)
			kept[i] = kmalloc((size_t)rnd_below(3000) + 1, 0);
		for (int i = 999; i >= 0; i--)
			kfree(kept[i]);
	}
	struct mm_trace_snapshot *b = mm_trace_snapshot();
	struct mm_trace_stat top[4];
	CHECK(mm_trace_compare(a, b, top, 4) == 0, "frees did not balance");
	mm_trace_snapshot_free(a);
	mm_trace_snapshot_free(b);
	mm_trace_stop();
	CHECK(mm_trace_start(0) == -1 && mm_trace_start(MM_TRACE_MAX_FRAMES + 1) == -1,
	      "bad frame counts accepted");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

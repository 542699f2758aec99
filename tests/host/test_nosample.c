/*
 * test_nosample.c - built with -DMM_SAMPLING=0 (arch/host/arch.mk): the
 * sampling countdown is compiled out of kmalloc, so mm_guard_setup()
 * must refuse a rate (-3) instead of claiming to sample, and no
 * allocation, small, large or zeroed, is ever sampled.
 */
#include "harness.h"
#include "host_ram.h"

#include <strata/guard.h>
#include <strata/kmalloc.h>

#define MIB (1024ull * 1024)

TEST(setup_refuses_a_rate)
{
	struct mm_guard_stats st;

	host_heap_setup(64 * MIB);
	int r = mm_guard_setup("1,continue");
	CHECK(r == -3, "mm_guard_setup(\"1\") returned %d, not -3 (compiled out)", r);
	mm_guard_get_stats(&st);
	CHECK(st.rate == 0, "rate %u after a refused setup, not 0", st.rate);
	CHECK(mm_guard_setup("off") == 0, "\"off\" must still be accepted");
}

TEST(nothing_is_sampled)
{
	struct mm_guard_stats st;
	static void *v[3000];

	host_heap_setup(64 * MIB);
	(void)mm_guard_setup("1,continue");
	for (unsigned i = 0; i < 3000; i++) {
		size_t n = 1 + (i * 37) % 3000;
		v[i] = (i % 3) ? kmalloc(n, 0) : kzalloc(n, 0);
		CHECK(v[i] != NULL, "kmalloc(%zu) failed", n);
	}
	for (unsigned i = 0; i < 3000; i++)
		kfree(v[i]);
	mm_guard_get_stats(&st);
	CHECK(st.sampled == 0 && st.guarded == 0,
	      "%llu sampled, %llu guarded with sampling compiled out",
	      (unsigned long long)st.sampled, (unsigned long long)st.guarded);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

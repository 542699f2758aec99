/*
 * labs/8-magazines/grade.c - lab 8's suite (linked only into lab kernels):
 * frees land in this CPU's magazines, and allocations take them back.
 */
#include <kernel/ktest.h>
#include <strata/kmalloc.h>
#include <strata/percpu.h>

#define LAB_N 300u

static uint64_t cached(void)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.percpu_cached_blocks;
}

KTEST_NAMED("lab-magazine", frees_are_cached, lab_frees_are_cached);
static void lab_frees_are_cached(struct ktest_ctx *t)
{
	static void *v[LAB_N];
	mm_cpu_drain();
	uint64_t c0 = cached();
	for (unsigned i = 0; i < LAB_N; i++)
		v[i] = kmalloc(64, 0);
	for (unsigned i = 0; i < LAB_N; i++)
		kfree(v[i]);
	uint64_t c1 = cached();
	KT_CHECK(t, c1 > c0, "per-CPU cached blocks %llu before, %llu after %u frees",
		 (unsigned long long)c0, (unsigned long long)c1, LAB_N);
	mm_cpu_drain();
}

KTEST_NAMED("lab-magazine", allocations_reuse_the_cache, lab_allocations_reuse_the_cache);
static void lab_allocations_reuse_the_cache(struct ktest_ctx *t)
{
	static void *v[LAB_N];
	mm_cpu_drain();
	for (unsigned i = 0; i < LAB_N; i++)
		v[i] = kmalloc(64, 0);
	for (unsigned i = 0; i < LAB_N; i++)
		kfree(v[i]);
	uint64_t c1 = cached();
	for (unsigned i = 0; i < LAB_N; i++)
		v[i] = kmalloc(64, 0);
	uint64_t c2 = cached();
	for (unsigned i = 0; i < LAB_N; i++)
		kfree(v[i]);
	KT_CHECK(t, c1 > 0 && c2 < c1, "cached blocks %llu after the frees, %llu after as many "
		 "allocations", (unsigned long long)c1, (unsigned long long)c2);
	mm_cpu_drain();
}

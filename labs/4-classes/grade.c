/*
 * labs/4-classes/grade.c - lab 4's suite (linked only into lab kernels):
 * the class table judged by what kmalloc does with it, request by request:
 * every small size gets a block at least that big, and the bytes lost to
 * rounding up (internal waste) stay within the lab's bound.
 */
#include <kernel/ktest.h>
#include <stdio.h>
#include <strata/kmalloc.h>

/* The lab's bound: a request of n bytes is given at most this many more. */
static size_t waste_bound(size_t n)
{
	return n / 8 > 15 ? n / 8 : 15;
}

/* Block size kmalloc gives for n bytes (0: none). */
static size_t block_for(size_t n)
{
	void *p = kmalloc(n, 0);
	if (!p)
		return 0;
	size_t u = kmalloc_usable_size(p);
	kfree(p);
	return u;
}

KTEST_NAMED("lab-classes", every_size_fits, lab_every_size_fits);
static void lab_every_size_fits(struct ktest_ctx *t)
{
	size_t last = 0;
	for (size_t n = 1; n <= KMALLOC_SMALL_MAX && !t->failed; n++) {
		size_t u = block_for(n);
		KT_CHECK(t, u >= n, "kmalloc(%zu) gave a block of %zu bytes", n, u);
		KT_CHECK(t, u >= last, "kmalloc(%zu): %zu bytes, less than %zu for %zu", n, u,
			 last, n - 1);
		last = u;
	}
}

KTEST_NAMED("lab-classes", waste_within_bound, lab_waste_within_bound);
static void lab_waste_within_bound(struct ktest_ctx *t)
{
	uint64_t total = 0;
	size_t worst = 0, worst_n = 0;
	for (size_t n = 1; n <= KMALLOC_SMALL_MAX; n++) {
		size_t u = block_for(n);
		if (u < n) {
			KT_CHECK(t, 0, "kmalloc(%zu) gave %zu bytes", n, u);
			return;
		}
		total += u - n;
		if (u - n > waste_bound(n) && !worst_n)
			worst_n = n;
		if (u - n > worst)
			worst = u - n;
	}
	printf("# lab-classes: mean waste %llu.%02llu bytes per request of 1..%u, most %zu\n",
	       (unsigned long long)(total / KMALLOC_SMALL_MAX),
	       (unsigned long long)(total * 100 / KMALLOC_SMALL_MAX % 100),
	       (unsigned)KMALLOC_SMALL_MAX, worst);
	KT_CHECK(t, worst_n == 0, "kmalloc(%zu) wastes %zu bytes, more than max(15, n/8) = %zu",
		 worst_n, block_for(worst_n) - worst_n, waste_bound(worst_n));
}

KTEST_NAMED("lab-classes", classes_fit_the_table, lab_classes_fit_the_table);
static void lab_classes_fit_the_table(struct ktest_ctx *t)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	KT_CHECK(t, st.nclasses > 0 && st.nclasses <= KMALLOC_MAX_CLASSES,
		 "%u classes (at most %u)", st.nclasses, KMALLOC_MAX_CLASSES);
	for (unsigned c = 1; c < st.nclasses && c < KMALLOC_MAX_CLASSES; c++)
		KT_CHECK(t, st.cls[c].size > st.cls[c - 1].size && st.cls[c].size % 16 == 0,
			 "class %u: %u bytes after %u", c, st.cls[c].size, st.cls[c - 1].size);
	KT_CHECK(t, st.nclasses && st.cls[st.nclasses - 1].size == KMALLOC_SMALL_MAX,
		 "largest class %u bytes, not %u", st.nclasses ? st.cls[st.nclasses - 1].size : 0,
		 (unsigned)KMALLOC_SMALL_MAX);
}

/*
 * test_large.c - the large-run layer (mm/large.c): requests over 2 KiB as
 * page runs, zero-size and huge requests, krealloc growing and shrinking
 * runs in place (CPython's list growth replayed), and the run cache's
 * budget.  Magazines off, heap checked sound after every phase
 * (kmalloc_fixture.h).
 */
#include "kmalloc_fixture.h"

TEST(kmalloc_zero_and_huge)
{
	setup();
	void *a = kmalloc(0, 0), *b = kmalloc(0, 0);
	CHECK(a && b && a != b, "kmalloc(0) gave %p and %p", a, b);
	CHECK(kmalloc_usable_size(a) == 16, "kmalloc(0) usable %zu", kmalloc_usable_size(a));
	kfree(a);
	kfree(b);
	kfree(NULL);   /* no-op, no report */

	struct kmalloc_report r;
	static const size_t huge[] = { SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2,
				       KMALLOC_MAX_SIZE + 1, (size_t)1 << 40 };
	for (unsigned i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		kmalloc_clear_report();
		CHECK(kmalloc(huge[i], 0) == NULL, "kmalloc(%zu) succeeded", huge[i]);
		kmalloc_last_report(&r);
		CHECK(r.kind == KM_FAIL_TOO_LARGE && r.size == huge[i], "report %d size %zu",
		      r.kind, r.size);
		CHECK(kzalloc(huge[i], 0) == NULL, "kzalloc(%zu)", huge[i]);
		CHECK(kmalloc_aligned(huge[i], 64, 0) == NULL, "kmalloc_aligned(%zu)", huge[i]);
	}
	void *m = kmalloc(KMALLOC_MAX_SIZE, 0);   /* exactly one 4 MiB block: fine */
	CHECK(m && kmalloc_usable_size(m) == KMALLOC_MAX_SIZE, "max size");
	kfree(m);
	CHECK_SOUND();
	CHECK(pfa_free_pages() + spare_pages() == free_at_start, "leak");
}

/* ------------------------------------------------------------------ */
/* realloc in place                                                    */
/* ------------------------------------------------------------------ */

TEST(krealloc_in_place)
{
	setup();
	static struct kmalloc_stats st;

	/* small: same class, or shrinking by less than a quarter */
	uint8_t *p = kmalloc(100, 0);
	CHECK(krealloc(p, 112, 0) == p, "100 -> 112 moved (same class)");
	CHECK(krealloc(p, 90, 0) == p, "112 -> 90 moved (waste < 1/4)");
	uint8_t *q = krealloc(p, 40, 0);
	CHECK(q != p && kmalloc_usable_size(q) == 48, "112 -> 40 should move to 48");
	kfree(q);

	/* large: growth into the run's own slack and shrinking stay put */
	const size_t S = KMALLOC_SMALL_MAX;   /* runs start above the classes */
	p = kmalloc(S + 5 * PAGE_SIZE, 0);
	size_t u = kmalloc_usable_size(p);
	fill(p, S + 5 * PAGE_SIZE, 3);
	CHECK(krealloc(p, u, 0) == p, "growth within the run moved");
	CHECK(krealloc(p, S + 3 * PAGE_SIZE + 1, 0) == p, "shrink by a page moved");
	CHECK(intact(p, S + 3 * PAGE_SIZE, 3), "contents lost");
	kfree(p);

	/* large growth by claiming the free pages after the run: after
	 * kfree of a big run, a small run at its start can grow into it */
	void *big = kmalloc(64 * PAGE_SIZE, 0);
	kfree(big);
	p = kmalloc(S + 3 * PAGE_SIZE, 0);
	kmalloc_get_stats(&st);
	uint64_t before = st.realloc_in_place;
	void *r = krealloc(p, S + 9 * PAGE_SIZE, 0);
	kmalloc_get_stats(&st);
	printf("# large growth 11 -> 17 pages: %s (in place %llu)\n", r == p ? "in place" : "moved",
		(unsigned long long)(st.realloc_in_place - before));
	kfree(r);
	CHECK_SOUND();
}

/* CPython's list_resize() over-allocation, replayed through krealloc. */
static size_t list_capacity(size_t newsize)
{
	if (newsize == 0)
		return 0;
	size_t a = (newsize + (newsize >> 3) + 6) & ~(size_t)3;
	return a;
}

TEST(krealloc_list_growth_pattern)
{
	setup();
	void **items = NULL;
	size_t cap = 0, in_place = 0, resizes = 0;
	char seq[256] = "";
	for (size_t n = 1; n <= 200000; n++) {
		if (n > cap) {
			size_t ncap = list_capacity(n);
			if (resizes < 10)
				snprintf(seq + strlen(seq), sizeof seq - strlen(seq), "%zu ", ncap);
			void **q = krealloc(items, ncap * sizeof(void *), 0);
			REQUIRE(q, "krealloc to %zu items", ncap);
			in_place += q == items;
			resizes++;
			items = q;
			cap = ncap;
		}
		items[n - 1] = (void *)(uintptr_t)(n * 7);
	}
	for (size_t i = 0; i < 200000; i++)
		REQUIRE(items[i] == (void *)(uintptr_t)((i + 1) * 7), "item %zu lost", i);
	printf("# list growth: %s...; %zu resizes, %zu in place\n", seq, resizes, in_place);
	CHECK(strncmp(seq, "4 8 16 24 32 40 52 64 76 ", 25) == 0, "pattern %s", seq);
	CHECK(in_place > 0, "no resize stayed in place");
	kfree(items);
	CHECK_SOUND();
}

TEST(large_run_cache_fits_and_bounds)
{
	setup();
	static struct kmalloc_stats st;
	const size_t pg = PAGE_SIZE;

	/* runs of 40, 28 and 12 pages (every size up to 8 pages is a class) */
	uint8_t *p = kmalloc(40 * pg, 0);
	REQUIRE(p != NULL, "kmalloc(40 pages)");
	kfree(p);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 40, "%llu pages cached, not 40",
	      (unsigned long long)st.large_cached_pages);
	uint8_t *q = kmalloc(28 * pg, 0);
	CHECK(q == p, "28 pages came from %p, not the cached 40-page run %p", q, p);
	CHECK(kmalloc_usable_size(q) == 28 * pg, "usable %zu, not 28 pages", kmalloc_usable_size(q));
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 0 && st.large_pages == 28, "cached %llu, runs %llu pages",
	      (unsigned long long)st.large_cached_pages, (unsigned long long)st.large_pages);
	CHECK(free_at_start - pfa_free_pages() == 28, "PFA holds %llu pages for a 28-page run",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
	CHECK_SOUND();

	kfree(q);                          /* 28 pages cached */
	uint8_t *r = kmalloc(12 * pg, 0);  /* 28 > 2 * 12: not from the cache */
	CHECK(r != q, "a 12-page request took the 28-page run");
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 28, "%llu pages cached, not 28",
	      (unsigned long long)st.large_cached_pages);
	kfree(r);
	kfree(r);                          /* cached run freed twice */
	CHECK(kmalloc_last_report_kind() == KM_DOUBLE_FREE, "double free of a cached run: %d",
	      (int)kmalloc_last_report_kind());

	/* bounds: at most 256 runs, at most RAM / 16 pages (64 MiB -> 1024) */
	kmalloc_trim();
	static void *v[260];
	for (int i = 0; i < 260; i++)
		v[i] = kmalloc_aligned(pg + 1, 2 * KMALLOC_SMALL_MAX, 0);   /* beyond any class: 2-page runs */
	for (int i = 0; i < 260; i++)
		kfree(v[i]);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 256 * 2, "260 freed 2-page runs: %llu pages cached, not 512",
	      (unsigned long long)st.large_cached_pages);
	for (int i = 0; i < 5; i++)
		v[i] = kmalloc(300 * pg, 0);
	for (int i = 0; i < 5; i++)
		kfree(v[i]);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages <= 1024 && st.large_cached_pages >= 900,
	      "after 5 freed 300-page runs: %llu pages cached (budget 1024)",
	      (unsigned long long)st.large_cached_pages);
	CHECK_SOUND();
	kmalloc_trim();
	CHECK(pfa_free_pages() == free_at_start, "trim left %llu pages out",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/*
 * test_arena.c - the arena layer (mm/arena.c, and the pool layer's policy
 * for parked pools and the held arena in mm/pool.c): churn gives every
 * page back to the PFA, and the fullest usable arena is the one that
 * gives the next pool.  Magazines off (kmalloc_fixture.h).
 */
#include "kmalloc_fixture.h"

/* ------------------------------------------------------------------ */
/* memory goes back to the PFA                                         */
/* ------------------------------------------------------------------ */

TEST(kmalloc_churn_returns_every_page)
{
	setup();
	static struct kmalloc_stats st;
	enum { N = 40000 };
	static void *p[N];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			p[i] = kmalloc(rnd_below(3) ? rnd_below(600) : rnd_below(9000), 0);
		for (int i = 0; i < N; i++) {       /* free in random order */
			int j = (int)rnd_below(N - (uint64_t)i) + i;
			void *t = p[i]; p[i] = p[j]; p[j] = t;
			kfree(p[i]);
		}
		CHECK_SOUND();
		kmalloc_get_stats(&st);
		CHECK(st.arenas_current == st.arenas_spare && st.arenas_spare <= 1,
		      "round %d: %llu arenas left, spare %llu", round,
		      (unsigned long long)st.arenas_current, (unsigned long long)st.arenas_spare);
		CHECK(st.large_runs == 0 && st.bytes_allocated_blocks == 0, "blocks left");
		CHECK(pfa_free_pages() + spare_pages() == free_at_start,
		      "round %d: %llu free + %llu spare != %llu", round,
		      (unsigned long long)pfa_free_pages(), (unsigned long long)spare_pages(),
		      (unsigned long long)free_at_start);
	}
	kmalloc_get_stats(&st);
	printf("# churn: %llu arenas allocated, %llu reclaimed, high water %llu\n",
	       (unsigned long long)st.arenas_allocated_total,
	       (unsigned long long)st.arenas_reclaimed_total,
	       (unsigned long long)st.arenas_highwater);
	CHECK(st.arenas_reclaimed_total > 0, "no arena ever went back");
	uint64_t expect = spare_pages();   /* the spare arena and cached runs */
	CHECK(kmalloc_trim() == expect, "trim");
	CHECK(pfa_free_pages() == free_at_start, "after trim: %llu != %llu",
	      (unsigned long long)pfa_free_pages(), (unsigned long long)free_at_start);
}

/* Nearly empty arenas drain: the fullest usable arena gives the pools. */
TEST(kmalloc_prefers_fullest_arena)
{
	setup();
	static struct kmalloc_stats st;
	enum { N = 20000 };
	static void *p[N];
	for (int i = 0; i < N; i++)
		p[i] = kmalloc(1024, 0);       /* 15 per pool: ~1334 pools, ~21 arenas */
	kmalloc_get_stats(&st);
	uint64_t arenas = st.arenas_current;
	for (int i = 0; i < N; i++)        /* keep one block in twenty */
		if (i % 20) {
			kfree(p[i]);
			p[i] = NULL;
		}
	/* new allocations of another class must not spread over new arenas */
	static void *q[N];
	for (int i = 0; i < N / 2; i++)
		q[i] = kmalloc(48, 0);
	kmalloc_get_stats(&st);
	CHECK(st.arenas_current <= arenas, "%llu arenas now, %llu before",
	      (unsigned long long)st.arenas_current, (unsigned long long)arenas);
	for (int i = 0; i < N; i++)
		kfree(p[i]);
	for (int i = 0; i < N / 2; i++)
		kfree(q[i]);
	CHECK_SOUND();
	CHECK(pfa_free_pages() + spare_pages() == free_at_start, "pages not back");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

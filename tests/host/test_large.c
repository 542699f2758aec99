/*
 * test_large.c - the large-run layer (mm/large.c): requests over 2 KiB as
 * page runs, zero-size and huge requests, krealloc growing and shrinking
 * runs in place (CPython's list growth replayed), and the run cache's
 * budget.  Magazines off, heap checked sound after every phase
 * (kmalloc_fixture.h).
 */
#include "kmalloc_fixture.h"

/* Every test's end: the heap sound, and after kmalloc_trim() (the run
 * cache emptied) every page back with the PFA. */
#define CHECK_SOUND_AND_TRIMMED()                                             \
	do {                                                                  \
		CHECK_SOUND();                                                \
		kmalloc_trim();                                               \
		CHECK(pfa_free_pages() == free_at_start, "trim left %llu pages out", \
		      (unsigned long long)(free_at_start - pfa_free_pages()));  \
	} while (0)
#include "../../mm/large.h"

static struct large_stats large_now(void);

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
	CHECK(st.large_cached_pages == 12 && st.large_pages == 28, "cached %llu (the 12-page tail), runs %llu pages",
	      (unsigned long long)st.large_cached_pages, (unsigned long long)st.large_pages);
	CHECK(free_at_start - pfa_free_pages() == 40, "PFA holds %llu pages for a 28-page run and its tail",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
	CHECK_SOUND();

	kmalloc_trim();
	kfree(q);                          /* 28 pages cached */
	uint8_t *r = kmalloc(12 * pg, 0);  /* best fit: the 28-page run, cut */
	CHECK(r == q, "a 12-page request came from %p, not the cached 28-page run %p", r, q);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 16, "%llu pages cached, not the 16-page tail",
	      (unsigned long long)st.large_cached_pages);
	kfree(r);                          /* glued to its tail again: 28 pages */
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 28, "%llu pages cached, not 28",
	      (unsigned long long)st.large_cached_pages);
	kfree(r);                          /* cached run freed twice */
	CHECK(kmalloc_last_report_kind() == KM_DOUBLE_FREE, "double free of a cached run: %d",
	      (int)kmalloc_last_report_kind());

	/* bounds: at most 256 runs, at most RAM / 16 pages (64 MiB -> 1024);
	 * a spacer run between the runs keeps them from being glued */
	kmalloc_trim();
	static void *v[260], *spacer[260];
	for (int i = 0; i < 260; i++) {     /* beyond any class: 2-page runs */
		v[i] = kmalloc_aligned(pg + 1, 2 * KMALLOC_SMALL_MAX, 0);
		spacer[i] = kmalloc_aligned(pg + 1, 2 * KMALLOC_SMALL_MAX, 0);
	}
	for (int i = 0; i < 260; i++)
		kfree(v[i]);
	kmalloc_get_stats(&st);
	/* the ring holds KM_LARGE_CACHE_RUNS runs: the oldest left (a run
	 * glued to a neighbour despite the spacers holds 4 pages) */
	struct large_stats ls = large_now();
	CHECK(ls.cached_runs == KM_LARGE_CACHE_RUNS && st.large_cached_pages >= 2 * KM_LARGE_CACHE_RUNS &&
	      st.large_cached_pages <= 2 * (KM_LARGE_CACHE_RUNS + ls.joined),
	      "260 freed 2-page runs: %llu runs, %llu pages cached (%llu glued)",
	      (unsigned long long)ls.cached_runs, (unsigned long long)st.large_cached_pages,
	      (unsigned long long)ls.joined);
	for (int i = 0; i < 260; i++)
		kfree(spacer[i]);
	kmalloc_trim();
	for (int i = 0; i < 5; i++)
		v[i] = kmalloc(300 * pg, 0);
	for (int i = 0; i < 5; i++)
		kfree(v[i]);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages <= 1024 && st.large_cached_pages >= 900,
	      "after 5 freed 300-page runs: %llu pages cached (budget 1024)",
	      (unsigned long long)st.large_cached_pages);
	CHECK_SOUND_AND_TRIMMED();
}

/* A working set of big runs keeps its freed runs (up to the live runs'
 * pages, RAM / 4 at most), a cut-off tail stays cached, runs nobody takes
 * decay back to the PFA, and under pressure the cache gives way. */
static uint64_t pfa_allocs_now(void)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.pfa_allocs;
}

static uint64_t cached_now(void)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.large_cached_pages;
}

TEST(large_run_cache_keeps_working_set)
{
	setup();
	const size_t pg = PAGE_SIZE;
	static uint8_t *r[4];

	for (int i = 0; i < 4; i++) {
		r[i] = kmalloc(1000 * pg, 0);
		REQUIRE(r[i], "kmalloc(1000 pages) #%d", i);
	}
	kfree(r[0]);                       /* 2000 pages cached, over the 1024 floor */
	kfree(r[1]);
	CHECK(cached_now() == 2000, "%llu pages cached, not 2000", (unsigned long long)cached_now());
	uint64_t before = pfa_allocs_now();
	uint8_t *a = kmalloc(1000 * pg, 0), *b = kmalloc(1000 * pg, 0);
	CHECK(pfa_allocs_now() == before, "%llu PFA calls to reallocate two cached runs",
	      (unsigned long long)(pfa_allocs_now() - before));
	CHECK((a == r[0] && b == r[1]) || (a == r[1] && b == r[0]),
	      "reallocated runs %p %p are not the freed %p %p", a, b, r[0], r[1]);
	CHECK_SOUND();

	/* a cached run cut to a smaller request: its tail stays cached */
	kfree(a);
	uint8_t *c = kmalloc(600 * pg, 0);
	CHECK(c == a, "600 pages came from %p, not the cached run %p", c, a);
	CHECK(cached_now() == 400, "tail: %llu pages cached, not 400", (unsigned long long)cached_now());
	before = pfa_allocs_now();
	uint8_t *d = kmalloc(400 * pg, 0);
	CHECK(d == a + 600 * pg && pfa_allocs_now() == before,
	      "400 pages at %p (tail %p), %llu PFA calls", d, a + 600 * pg,
	      (unsigned long long)(pfa_allocs_now() - before));
	CHECK_SOUND();

	/* decay: above lc_budget (1024 pages here) a run nobody takes for
	 * KM_LARGE_DECAY_OPS large calls leaves; the budget's part stays */
	kfree(d);                          /* 400 pages cached */
	kfree(r[2]);                       /* + 1000: above the budget */
	uint64_t free_before = pfa_free_pages(), decayed = large_now().decayed;
	for (int i = 0; i < KM_LARGE_DECAY_OPS; i++)
		kfree(kmalloc(KMALLOC_SMALL_MAX + 1, 0));   /* 9 pages cut from d's run, glued back */
	CHECK(cached_now() == 400, "after %d calls: %llu pages cached, not 400 (d's run)",
	      2 * KM_LARGE_DECAY_OPS, (unsigned long long)cached_now());
	CHECK(pfa_free_pages() == free_before + 1000, "PFA free %llu, not %llu: r[2] did not decay",
	      (unsigned long long)pfa_free_pages(), (unsigned long long)(free_before + 1000));
	CHECK(large_now().decayed == decayed + 1, "%llu runs decayed, not 1",
	      (unsigned long long)(large_now().decayed - decayed));
	kfree(b);
	kfree(c);
	kfree(r[3]);
	CHECK_SOUND_AND_TRIMMED();
}

/* However many runs a full heap frees, the cache keeps at most RAM / 4,
 * and a trim (what a failed growth does on the host) gives it all back. */
static int fill_with(size_t bytes, void **v, int max)
{
	int n = 0;
	while (n < max && (v[n] = kmalloc(bytes, 0)) != NULL)
		n++;
	kmalloc_clear_report();
	return n;
}

TEST(large_run_cache_bounded_by_ram)
{
	setup();
	const size_t pg = PAGE_SIZE;
	static void *run[64];

	int n = fill_with(1000 * pg, run, 64);          /* the heap full of runs */
	REQUIRE(n >= 8, "only %d runs of 1000 pages", n);
	for (int i = 1; i < n; i += 2)                   /* every other one freed */
		kfree(run[i]);
	uint64_t ceil = pfa_total_pages() / 4;
	CHECK(cached_now() <= ceil && cached_now() + 1000 > ceil,
	      "%llu pages cached with %d runs freed (RAM / 4: %llu)", (unsigned long long)cached_now(),
	      n / 2, (unsigned long long)ceil);
	kmalloc_trim();
	CHECK(cached_now() == 0, "trim left %llu pages cached", (unsigned long long)cached_now());
	int got = fill_with(1000 * pg, run + n, 64 - n); /* the holes serve again */
	CHECK(got == n / 2, "%d runs after the trim, not %d", got, n / 2);
	for (int i = 0; i < n + got; i++)
		if (i >= n || !(i & 1))
			kfree(run[i]);
	CHECK_SOUND();
	kmalloc_trim();
	CHECK(pfa_free_pages() == free_at_start, "left %llu pages out",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

static struct large_stats large_now(void)
{
	struct large_stats ls;
	large_get_stats(&ls);
	return ls;
}

/* A run freed next to a cached run (here its own cut-off tail) is glued
 * to it: one run again, that serves a request as large as both without
 * asking the PFA. */
TEST(large_run_cache_joins_neighbours)
{
	setup();
	const size_t pg = PAGE_SIZE;

	uint8_t *a = kmalloc(1000 * pg, 0);
	REQUIRE(a, "kmalloc(1000 pages)");
	kfree(a);
	uint8_t *c = kmalloc(600 * pg, 0);          /* cut: the 400-page tail stays */
	CHECK(c == a, "600 pages from %p, not the cached run %p", c, a);
	CHECK(large_now().cached_runs == 1 && cached_now() == 400, "%llu runs, %llu pages cached",
	      (unsigned long long)large_now().cached_runs, (unsigned long long)cached_now());
	kfree(c);                                  /* glued to its tail */
	CHECK(large_now().cached_runs == 1 && cached_now() == 1000,
	      "after the free: %llu runs, %llu pages cached, not 1 run of 1000",
	      (unsigned long long)large_now().cached_runs, (unsigned long long)cached_now());
	CHECK_SOUND();
	uint64_t before = pfa_allocs_now();
	uint8_t *b = kmalloc(1000 * pg, 0);
	CHECK(b == a && pfa_allocs_now() == before, "1000 pages at %p (cached %p), %llu PFA calls",
	      b, a, (unsigned long long)(pfa_allocs_now() - before));
	for (size_t off = 0; off < 1000 * pg; off += pg)
		b[off] = 1;                        /* the glued run is all usable */
	kfree(b);
	kfree(b + 600 * pg);                       /* inside a cached run: refused */
	CHECK(kmalloc_last_report_kind() != KM_REPORT_NONE, "a free inside a cached run passed");
	kmalloc_clear_report();
	CHECK_SOUND_AND_TRIMMED();
}

/* A request larger than every cached run grows the largest one in place
 * with the free pages right after it: only those are new memory. */
TEST(large_run_cache_grows_a_run_in_place)
{
	setup();
	const size_t pg = PAGE_SIZE;

	uint8_t *a = kmalloc(600 * pg, 0);         /* 424 pages after it back to the PFA */
	REQUIRE(a, "kmalloc(600 pages)");
	a[0] = 42;
	kfree(a);
	struct large_stats was = large_now();
	uint8_t *b = kmalloc(1000 * pg, 0);
	struct large_stats now = large_now();
	CHECK(b == a, "1000 pages at %p, not the cached 600-page run %p grown", b, a);
	CHECK(now.grown == was.grown + 1 && cached_now() == 0, "grown %llu, %llu pages still cached",
	      (unsigned long long)(now.grown - was.grown), (unsigned long long)cached_now());
	CHECK(kmalloc_usable_size(b) == 1000 * pg, "usable %zu", kmalloc_usable_size(b));
	CHECK(b[0] == 42, "the cached pages were not kept");
	for (size_t off = 0; off < 1000 * pg; off += pg)
		b[off] = 1;
	kfree(b);
	CHECK_SOUND_AND_TRIMMED();
}

/* A free evicts at most KM_LARGE_EVICT_PER_CALL cached runs, however many
 * it would take to make room: the run that does not fit goes back to the
 * PFA instead (issue 19: no per-call work that grows with RAM). */
TEST(large_run_cache_eviction_bounded_per_call)
{
	setup();
	const size_t pg = PAGE_SIZE;
	enum { RUNS = 30, RUN = 2 * KMALLOC_SMALL_MAX / PAGE_SIZE };   /* 16 pages: above the classes */
	static void *v[RUNS], *spacer[RUNS];

	for (int i = 0; i < RUNS; i++) {           /* 16-page runs (one PFA block), kept apart */
		v[i] = kmalloc(RUN * pg, 0);
		spacer[i] = kmalloc(RUN * pg, 0);
		REQUIRE(v[i] && spacer[i], "%d-page runs #%d", RUN, i);
	}
	uint8_t *big = kmalloc(974 * pg, 0);       /* 480 + 974 > 1024, the budget */
	REQUIRE(big, "kmalloc(974 pages)");
	for (int i = 0; i < RUNS; i++)
		kfree(v[i]);
	CHECK(cached_now() == RUN * RUNS, "%llu pages cached, not %d", (unsigned long long)cached_now(),
	      RUN * RUNS);
	struct large_stats was = large_now();
	kfree(big);                                /* room: 27 runs, more than the bound */
	struct large_stats now = large_now();
	CHECK(cached_now() >= RUN * (RUNS - KM_LARGE_EVICT_PER_CALL) && cached_now() < 974,
	      "one free: %llu pages cached (%d %d-page runs before, then a 974-page run)",
	      (unsigned long long)cached_now(), RUNS, RUN);
	CHECK(now.evicted - was.evicted <= KM_LARGE_EVICT_PER_CALL, "one free evicted %llu runs",
	      (unsigned long long)(now.evicted - was.evicted));
	/* PFA frees: the evicted runs' blocks (1 each) and the big run's (974
	 * pages: 7 blocks) */
	CHECK(now.pfa_frees - was.pfa_frees <= KM_LARGE_EVICT_PER_CALL + 7, "one free: %llu pfa_free calls",
	      (unsigned long long)(now.pfa_frees - was.pfa_frees));
	for (int i = 0; i < RUNS; i++)
		kfree(spacer[i]);
	CHECK_SOUND_AND_TRIMMED();
}

/* Memory pressure: cached runs give way when the PFA has nothing left,
 * to a large request they cannot serve themselves and to small blocks
 * (a new arena), without anyone calling kmalloc_trim(). */
static int fill_and_free(size_t bytes, void **v, int max)
{
	int n = fill_with(bytes, v, max);
	for (int i = 0; i < n; i++)
		kfree(v[i]);
	return n;
}

TEST(large_run_cache_gives_way_under_pressure)
{
	setup();
	const size_t pg = PAGE_SIZE, whole = pg << PFA_MAX_ORDER;
	static void *run[64], *odd[32], *more[64];

	/* 600-page runs, one per PFA block; half of them stay live (so the
	 * cache may hold RAM / 4), the other half freed: cached */
	int n = fill_with(600 * pg, run, 64);
	REQUIRE(n >= 12, "only %d runs of 600 pages", n);
	for (int i = 1; i < n; i += 2)
		kfree(run[i]);
	uint64_t cached = cached_now();
	CHECK(cached >= 3000, "%llu pages cached", (unsigned long long)cached);

	/* how many whole PFA blocks the heap holds beside the live runs with
	 * the cache empty */
	kmalloc_trim();
	int want = fill_and_free(whole, more, 64);
	REQUIRE(want >= 4, "only %d runs of %zu bytes", want, whole);
	kmalloc_trim();

	/* the same with the cache full: the cached runs cannot serve a whole
	 * block and each keeps one from the PFA */
	int again = fill_with(600 * pg, odd, 32);
	for (int i = 0; i < again; i++)
		kfree(odd[i]);
	CHECK(cached_now() == cached, "%llu pages cached, not %llu", (unsigned long long)cached_now(),
	      (unsigned long long)cached);
	int got = fill_and_free(whole, more, 64);
	CHECK(got == want, "%d runs of %zu bytes with the cache full, %d with it empty", got, whole, want);
	for (int i = 0; i < n; i += 2)
		kfree(run[i]);

	CHECK_SOUND();
	kmalloc_trim();
	CHECK(pfa_free_pages() == free_at_start, "left %llu pages out",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

/* ... and to small blocks: a new arena comes out of the cached runs. */
TEST(large_run_cache_gives_way_to_small_blocks)
{
	setup();
	const size_t pg = PAGE_SIZE;
	static void *run[64], *small[70000];

	int n = fill_with(600 * pg, run, 64);
	REQUIRE(n >= 12, "only %d runs of 600 pages", n);
	for (int i = 1; i < n; i += 2)
		kfree(run[i]);
	uint64_t cached = cached_now();
	CHECK(cached >= 3000, "%llu pages cached", (unsigned long long)cached);
	int got = fill_with(1024, small, 70000);
	CHECK(got < 70000, "the heap never ran out");
	CHECK(cached_now() == 0, "small blocks ran out with %llu pages still cached (%llu before)",
	      (unsigned long long)cached_now(), (unsigned long long)cached);
	CHECK(large_now().pressed > 0, "no failed PFA call shed cached runs");
	for (int i = 0; i < got; i++)
		kfree(small[i]);
	for (int i = 0; i < n; i += 2)
		kfree(run[i]);
	CHECK_SOUND();
	kmalloc_trim();
	CHECK(pfa_free_pages() == free_at_start, "left %llu pages out",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

/* Best fit over the size bins (large.c's promise): the smallest cached
 * run that fits is taken when it is among the newest LC_PEEK of n's own
 * bin or the runs are in different bins, whatever their age order.
 * Runs of 100, 12, 40, 21, 24, 20, 67 and 70 pages, freed in that order
 * (so the newest of a bin is not always the smallest), kept apart by live
 * spacers; each request must get the smallest that fits. */
TEST(large_run_cache_takes_the_smallest_fit)
{
	setup();
	const size_t pg = PAGE_SIZE;
	static const unsigned size[] = { 100, 12, 40, 21, 24, 20, 67, 70 };
	enum { N = sizeof size / sizeof size[0] };
	uint8_t *run[N], *spacer[N];

	for (int i = 0; i < N; i++) {
		run[i] = kmalloc(size[i] * pg, 0);
		spacer[i] = kmalloc(9 * pg, 0);
		REQUIRE(run[i] && spacer[i], "runs of %u pages", size[i]);
	}
	for (int i = 0; i < N; i++)
		kfree(run[i]);
	REQUIRE(large_now().cached_runs == N, "%llu runs cached, not %d (glued?)",
		(unsigned long long)large_now().cached_runs, N);
	/* request -> the run it must come from (index into size[]) */
	static const struct { unsigned pages; int from; } want[] = {
		{ 20, 5 },   /* exact, in its own bin beside 21 (newer here) */
		{ 20, 3 },   /* 21: same bin, the 20 is gone */
		{ 22, 4 },   /* 24, not 40 or 100 */
		{ 30, 2 },   /* 40, not 100 */
		{ 11, 1 },   /* 12, not 100 */
		{ 65, 6 },   /* 67: its bin (64..71) holds the newer 70 too */
		{ 60, 7 },   /* 70: the next bin up, not 100 */
		{ 90, 0 },   /* 100: the only one left that fits */
	};
	uint8_t *got[sizeof want / sizeof want[0]];
	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
		got[i] = kmalloc(want[i].pages * pg, 0);
		CHECK(got[i] == run[want[i].from], "%u pages from %p, not the cached %u-page run %p",
		      want[i].pages, got[i], size[want[i].from], run[want[i].from]);
	}
	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
		kfree(got[i]);
	for (int i = 0; i < N; i++)
		kfree(spacer[i]);
	CHECK_SOUND_AND_TRIMMED();
}

/* PFA blocks of the run at p (a walk of their heads). */
static unsigned run_blocks(const void *p, uint64_t pages)
{
	unsigned n = 0;

	for (uint64_t at = 0; at < pages; n++)
		at += (uint64_t)1 << pfa_page(pfa_phys(p) + at * PAGE_SIZE)->order;
	return n;
}

/* A run grown one page at a time by krealloc is a block per page (more
 * than a cached run may have); freed, its buddies merge, so the cache
 * keeps it (it used to go back to the PFA whole), as one run of few
 * blocks that the next request of its size takes. */
TEST(large_run_cache_keeps_a_run_grown_page_by_page)
{
	setup();
	const size_t pg = PAGE_SIZE, S = KMALLOC_SMALL_MAX;
	enum { GROWTHS = 200 };

	uint8_t *p = kmalloc(S + pg, 0);
	REQUIRE(p, "kmalloc(%zu)", S + pg);
	for (int i = 1; i <= GROWTHS; i++)
		REQUIRE(krealloc(p, S + (size_t)(i + 1) * pg, 0) == p, "growth %d moved", i);
	uint64_t pages = kmalloc_usable_size(p) / pg;
	unsigned blocks = run_blocks(p, pages);
	REQUIRE(blocks > KM_LARGE_RUN_BLOCKS, "the run has %u blocks: the test misses its point",
		blocks);
	uint64_t free_before = pfa_free_pages();
	kfree(p);
	CHECK(cached_now() == pages && pfa_free_pages() == free_before,
	      "%llu of the run's %llu pages cached, %llu went to the PFA",
	      (unsigned long long)cached_now(), (unsigned long long)pages,
	      (unsigned long long)(pfa_free_pages() - free_before));
	CHECK_SOUND();
	unsigned merged = run_blocks(p, pages);
	CHECK(merged <= 2 * (PFA_MAX_ORDER + 1), "cached with %u blocks (%u before)", merged, blocks);
	uint64_t before = pfa_allocs_now();
	uint8_t *q = kmalloc(pages * pg, 0);
	CHECK(q == p && pfa_allocs_now() == before, "%llu pages at %p (cached %p), %llu PFA calls",
	      (unsigned long long)pages, q, p, (unsigned long long)(pfa_allocs_now() - before));
	CHECK(run_blocks(q, pages) == merged, "the run taken has %u blocks, not %u",
	      run_blocks(q, pages), merged);
	for (size_t off = 0; off < pages * pg; off += pg)
		q[off] = 1;
	kfree(q);
	kfree(q + 100 * pg);                       /* inside a cached run: refused */
	CHECK(kmalloc_last_report_kind() != KM_REPORT_NONE, "a free inside a cached run passed");
	kmalloc_clear_report();
	CHECK_SOUND_AND_TRIMMED();
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

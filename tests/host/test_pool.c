/*
 * test_pool.c - the pool layer (mm/pool.c over mm/arena.c): every request
 * size lands in the right size class, class boundaries, alignments, and
 * the parked pool that keeps a kmalloc/kfree loop on one pool.  Through
 * the public calls, with the magazines off (kmalloc_fixture.h), so each
 * call reaches the pools; after every phase the heap is checked sound.
 */
#include "kmalloc_fixture.h"

/* ------------------------------------------------------------------ */
/* sizes and alignment                                                 */
/* ------------------------------------------------------------------ */

TEST(kmalloc_every_size_0_to_16k)
{
	setup();
	enum { RING = 512 };
	void *live[RING] = { 0 };
	size_t sz[RING] = { 0 };
	for (size_t n = 0; n <= 16 * KIB; n++) {
		unsigned slot = n % RING;
		if (live[slot]) {
			REQUIRE(intact(live[slot], sz[slot], sz[slot]),
				"block of %zu bytes corrupted", sz[slot]);
			kfree(live[slot]);
		}
		void *p = kmalloc(n, 0);
		REQUIRE(p, "kmalloc(%zu) failed", n);
		REQUIRE(((uintptr_t)p & 15) == 0, "kmalloc(%zu) = %p misaligned", n, p);
		size_t u = kmalloc_usable_size(p);
		size_t want = expected_usable(n);
		if (want)
			REQUIRE(u == want, "usable(%zu) = %zu, expected %zu", n, u, want);
		else
			REQUIRE(u >= n && u % PAGE_SIZE == 0 && ((uintptr_t)p & (PAGE_SIZE - 1)) == 0,
				"large kmalloc(%zu): %p usable %zu", n, p, u);
		REQUIRE(in_ram(p, u), "kmalloc(%zu) = %p outside RAM", n, p);
		fill(p, n, n);
		live[slot] = p;
		sz[slot] = n;
	}
	CHECK_SOUND();
	for (unsigned i = 0; i < RING; i++)
		kfree(live[i]);
	CHECK_SOUND();
}

TEST(kmalloc_class_boundaries)
{
	setup();
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	REQUIRE(st.nclasses == 80, "%u classes", st.nclasses);
	for (unsigned c = 0; c < st.nclasses; c++) {
		size_t s = st.cls[c].size;
		for (size_t n = s - 1; n <= s + 1; n++) {
			void *p = kmalloc(n, 0);
			REQUIRE(p, "kmalloc(%zu)", n);
			size_t u = kmalloc_usable_size(p);
			if (n <= 32768)
				CHECK(u == expected_usable(n), "usable(%zu) = %zu", n, u);
			if (n == s && (s & (s - 1)) == 0)
				CHECK(((uintptr_t)p & (s - 1)) == 0,
				      "power-of-two class %zu not naturally aligned: %p", s, p);
			kfree(p);
		}
	}
	CHECK_SOUND();
}

TEST(kmalloc_aligned_every_power_of_two)
{
	setup();
	static const size_t sizes[] = { 0, 1, 16, 100, 1000, 2048, 2049, 5000, 70000 };
	for (size_t align = 1; align <= KMALLOC_ALIGN_MAX; align *= 2) {
		for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			size_t n = sizes[i];
			void *p = kmalloc_aligned(n, align, 0);
			REQUIRE(p, "kmalloc_aligned(%zu, %zu) failed", n, align);
			REQUIRE(((uintptr_t)p & (align - 1)) == 0 && ((uintptr_t)p & 15) == 0,
				"kmalloc_aligned(%zu, %zu) = %p", n, align, p);
			REQUIRE(kmalloc_usable_size(p) >= n, "usable too small");
			fill(p, n, align);
			void *q = kmalloc(100, 0);   /* neighbours stay intact */
			fill(q, 100, 1);
			REQUIRE(intact(p, n, align), "aligned block corrupted");
			kfree(q);
			kfree(p);
		}
	}
	struct kmalloc_report r;
	CHECK(kmalloc_aligned(64, 48, 0) == NULL, "alignment 48 accepted");
	kmalloc_last_report(&r);
	CHECK(r.kind == KM_FAIL_BAD_ALIGN, "report %d", r.kind);
	CHECK(kmalloc_aligned(64, 0, 0) == NULL, "alignment 0 accepted");
	/* above the largest block: a block at such an address if there is
	 * one free, else out of memory (not a bad alignment) */
	for (size_t align = KMALLOC_ALIGN_MAX * 2; align; align <<= 1) {
		uint64_t before = 0;
		kmalloc_last_report(&r);
		before = r.serial;
		void *p = kmalloc_aligned(64, align, 0);
		kmalloc_last_report(&r);
		if (p) {
			CHECK(((uintptr_t)p & (align - 1)) == 0, "kmalloc_aligned(64, %zu) = %p", align, p);
			kfree(p);
		} else {
			CHECK(r.serial == before + 1 && r.kind == KM_FAIL_NOMEM,
			      "kmalloc_aligned(64, %zu): NULL, report '%s'", align, kmalloc_report_name(r.kind));
		}
	}
	CHECK_SOUND();
}

TEST(kmalloc_hot_loop_stays_put)
{
	setup();
	static struct kmalloc_stats st;
	void *first = kmalloc(32, 0);
	kfree(first);
	for (int i = 0; i < 10000; i++) {
		void *p = kmalloc(32, 0);
		REQUIRE(p == first, "iteration %d: %p, not %p", i, p, first);
		kfree(p);
	}
	kmalloc_get_stats(&st);
	CHECK(st.pfa_allocs == 1 && st.arenas_allocated_total == 1, "%llu PFA allocations",
	      (unsigned long long)st.pfa_allocs);
	CHECK(st.arenas_current == 1 && st.arenas_spare == 1, "arena not kept back");
	CHECK_SOUND();
	CHECK(kmalloc_trim() == 256 && pfa_free_pages() == free_at_start, "trim");
	CHECK_SOUND();
}

/* The run cache (mm/large.c): an exact size first, else the smallest
 * cached run of at most twice the pages, cut down; bounded in runs and
 * pages; a double free of a cached run is still caught. */

/* ------------------------------------------------------------------ */
/* medium sizes (issue 15): no request of 2..32 KiB rounded to pages   */
/* ------------------------------------------------------------------ */

/* What a block of n bytes costs: its usable size, plus, for a block of
 * a size class, its share of the pool's header and unusable tail (each
 * class says its pool size: medium classes have bigger pools). */
static double cost_of_block(const struct kmalloc_stats *st, const void *p)
{
	size_t u = kmalloc_usable_size(p);
	for (unsigned c = 0; c < st->nclasses; c++)
		if (st->cls[c].size == u && u <= st->small_max)
			return (double)st->cls[c].pool_size / st->cls[c].blocks_per_pool;
	return (double)u;
}

/* Every request 1..32768 (and a sample above) is rounded up by less than
 * 1/8 of itself, or by less than the 16-byte quantum every class is a
 * multiple of (1 byte costs 16: no 16-byte-aligned allocator avoids it);
 * and with its share of its pool's header and unusable tail it costs
 * less than 1/6 more than it asks (or less than 32 bytes). */
TEST(kmalloc_waste_under_one_eighth_up_to_32k)
{
	setup();
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	unsigned rounded = 0, costly = 0;
	size_t first_rounded = 0, first_costly = 0, usable = 0;
	double first_cost = 0;
	for (size_t n = 1; n <= 40 * KIB; n += n < 32 * KIB ? 1 : 97) {
		void *p = kmalloc(n, 0);
		REQUIRE(p, "kmalloc(%zu)", n);
		size_t u = kmalloc_usable_size(p);
		double cost = cost_of_block(&st, p);
		if (u - n >= 16 && (u - n) * 8 >= n && !rounded++) {
			first_rounded = n;
			usable = u;
		}
		if (cost - (double)n >= 32 && (cost - (double)n) * 6 >= (double)n && !costly++) {
			first_costly = n;
			first_cost = cost;
		}
		kfree(p);
	}
	CHECK(rounded == 0, "%u sizes rounded up by 1/8 or more, the first %zu (usable %zu)",
	      rounded, first_rounded, usable);
	CHECK(costly == 0, "%u sizes cost 1/6 more or worse, the first %zu (costs %.0f bytes)",
	      costly, first_costly, first_cost);
	CHECK_SOUND();
}

/* Medium blocks of different classes are distinct and keep their bytes. */
TEST(kmalloc_medium_blocks_distinct_and_intact)
{
	setup();
	enum { N = 600 };
	static void *v[N];
	static size_t sz[N];
	uint64_t x = 12345;
	for (unsigned i = 0; i < N; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		sz[i] = 2049 + (size_t)(x >> 33) % (30 * KIB);
		v[i] = kmalloc(sz[i], 0);
		REQUIRE(v[i], "kmalloc(%zu)", sz[i]);
		fill(v[i], sz[i], i);
	}
	for (unsigned i = 0; i < N; i++)
		REQUIRE(intact(v[i], sz[i], i), "block %u (%zu bytes) corrupted", i, sz[i]);
	for (unsigned i = 0; i < N; i += 2)
		kfree(v[i]);
	CHECK_SOUND();
	for (unsigned i = 1; i < N; i += 2)
		REQUIRE(intact(v[i], sz[i], i), "block %u (%zu bytes) corrupted", i, sz[i]);
	for (unsigned i = 1; i < N; i += 2)
		kfree(v[i]);
	CHECK_SOUND();
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/*
 * test_pfa_fresh.c - the PFA's fresh mode (pfa_setup_fresh(), see
 * mm/pfa_setup.c): memory known to read as zero is described lazily, 4 MiB
 * at a time, when the free lists run dry.  test_pfa.c checks descriptors
 * page by page, which fresh mode deliberately does not write, so this file
 * checks what callers can see instead, always against an eager PFA over
 * the same map run through the same calls:
 *
 *   - free pages, per region and in all, after every phase; pfa_check();
 *   - every allowed page can be allocated (exhaustion), none twice;
 *   - after freeing everything, the free set is whole again;
 *   - pfa_alloc_at(), pfa_split() and a live pfa_reserve() inside the
 *     lazy span;
 *   - a sparse 64 GiB region starts in milliseconds and costs almost no
 *     resident memory;
 *   - hot-remove and hot-add after setup (pfa_remove_region, and
 *     pfa_add_region after pfa_setup_end), fresh and eager: counts,
 *     pfa_check(), removed pages never handed out, refusals change nothing.
 * Built with PFA_MAX_ORDER=12 (arch/host/arch.mk) so blocks larger than the
 * lazy granule are asked for too.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include <strata/pfa.h>


#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)
#define MAXBLK ((uint64_t)PAGE_SIZE << PFA_MAX_ORDER)

static uint8_t *fresh_map(uint64_t size, void **map, size_t *map_size)
{
	*map_size = size + MAXBLK;
	*map = mmap(NULL, *map_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*map == MAP_FAILED)
		return NULL;
	return (uint8_t *)(((uintptr_t)*map + MAXBLK - 1) & ~(uintptr_t)(MAXBLK - 1));
}

/* One memory map: two regions with a hole, a few reservations. */
static void setup_map(uint8_t *base, bool fresh)
{
	pfa_setup_begin(0);
	if (fresh)
		pfa_setup_fresh();
	pfa_add_region((uintptr_t)base + 3 * PAGE_SIZE, 40 * MIB - 3 * PAGE_SIZE);
	pfa_add_region((uintptr_t)base + 48 * MIB + 5 * PAGE_SIZE, 90 * MIB);
	pfa_reserve((uintptr_t)base + 9 * MIB + 77, 3 * PAGE_SIZE);
	pfa_reserve((uintptr_t)base + 100 * MIB, 64 * 1024);
	if (pfa_setup_end() != 0)
		abort();
}

#define NBLK 40000
struct blk { uint64_t pa; unsigned order; };

struct run {
	struct blk b[NBLK];
	int n;
	uint64_t boot_free;
};

static struct run eager_run, fresh_run;

static uint64_t free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

/* The same pseudo-random script on whichever PFA is set up now.  It keeps
 * at least 70% of the pages free and asks for at most 4 MiB blocks, so no
 * allocation fails in either mode whatever the placement. */
static int script_failures;

static void script(struct run *r, uint64_t seed, int phase)
{
	rnd_seed(seed);
	for (int i = 0; i < 3000; i++) {
		bool must_free = free_pages() < r->boot_free * 7 / 10;
		if (r->n && (must_free || rnd_below(3) == 0)) {
			int j = (int)rnd_below((uint64_t)r->n);
			pfa_free(r->b[j].pa, r->b[j].order);
			r->b[j] = r->b[--r->n];
			continue;
		}
		unsigned order = (unsigned)(rnd_below(8) == 0 ? rnd_below(11) : rnd_below(3));
		uint64_t pa = pfa_alloc(order, phase & 1 ? PFA_ZERO : 0);
		script_failures += !pa;
		if (pa && r->n < NBLK)
			r->b[r->n++] = (struct blk){ pa, order };
		else if (pa)
			pfa_free(pa, order);
	}
}

static void free_all(struct run *r)
{
	while (r->n) {
		r->n--;
		pfa_free(r->b[r->n].pa, r->b[r->n].order);
	}
}

TEST(fresh_matches_eager)
{
	void *m1, *m2;
	size_t s1, s2;
	uint8_t *a = fresh_map(160 * MIB, &m1, &s1), *b = fresh_map(160 * MIB, &m2, &s2);
	REQUIRE(a && b, "mmap");
	uint64_t seed = rnd();
	uint64_t fe[4], ff[4];

	script_failures = 0;

	/* the same script on both; free page counts must agree */
	setup_map(a, false);
	eager_run.n = 0;
	eager_run.boot_free = free_pages();
	REQUIRE(eager_run.boot_free > 30000, "only %llu pages free",
		(unsigned long long)eager_run.boot_free);
	for (int phase = 0; phase < 4; phase++) {
		script(&eager_run, seed + (uint64_t)phase, phase);
		fe[phase] = free_pages();
		CHECK(pfa_check() == 0, "eager check, phase %d", phase);
	}
	free_all(&eager_run);
	CHECK(free_pages() == eager_run.boot_free, "eager: not all back");

	setup_map(b, true);
	fresh_run.n = 0;
	fresh_run.boot_free = free_pages();
	CHECK(fresh_run.boot_free == eager_run.boot_free, "boot free pages %llu, eager %llu",
	      (unsigned long long)fresh_run.boot_free, (unsigned long long)eager_run.boot_free);
	for (int phase = 0; phase < 4; phase++) {
		script(&fresh_run, seed + (uint64_t)phase, phase);
		ff[phase] = free_pages();
		CHECK(pfa_check() == 0, "fresh check, phase %d", phase);
		CHECK(ff[phase] == fe[phase], "phase %d: free %llu, eager %llu", phase,
		      (unsigned long long)ff[phase], (unsigned long long)fe[phase]);
	}
	/* blocks handed out lie inside the regions and do not overlap */
	for (int i = 0; i < fresh_run.n; i++) {
		uint64_t lo = fresh_run.b[i].pa, hi = lo + (PAGE_SIZE << fresh_run.b[i].order);
		CHECK(lo >= (uintptr_t)b && hi <= (uintptr_t)b + 160 * MIB, "block out of the map");
		CHECK((lo & ((PAGE_SIZE << fresh_run.b[i].order) - 1)) == 0, "misaligned block");
	}
	CHECK(script_failures == 0, "%d allocations failed", script_failures);
	free_all(&fresh_run);
	CHECK(free_pages() == fresh_run.boot_free, "fresh: not all back");
	CHECK(pfa_check() == 0, "fresh check after freeing all");
	munmap(m1, s1);
	munmap(m2, s2);
}

/* Every allowed page comes out exactly once, and all goes back. */
TEST(fresh_exhaustion)
{
	void *m;
	size_t s;
	uint8_t *a = fresh_map(160 * MIB, &m, &s);
	REQUIRE(a, "mmap");
	setup_map(a, true);
	uint64_t boot = free_pages(), n = 0;
	static uint64_t got[160 * MIB / 4096];
	uint64_t pa;
	while ((pa = pfa_alloc(0, 0)) != 0 && n < sizeof got / sizeof got[0])
		got[n++] = pa;
	CHECK(n == boot, "allocated %llu pages of %llu free", (unsigned long long)n,
	      (unsigned long long)boot);
	CHECK(free_pages() == 0 && pfa_check() == 0, "not empty, or check failed");
	/* no page twice: mark them in a bitmap */
	static uint8_t seen[160 * MIB / 4096];
	memset(seen, 0, sizeof seen);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = (got[i] - (uintptr_t)a) / PAGE_SIZE;
		REQUIRE(k < sizeof seen && !seen[k], "page %llu twice or outside", (unsigned long long)k);
		seen[k] = 1;
	}
	for (uint64_t i = 0; i < n; i++)
		pfa_free(got[i], 0);
	CHECK(free_pages() == boot && pfa_check() == 0, "after freeing all");
	/* now the largest blocks: as many as an eager PFA would give */
	uint64_t big = 0;
	while ((pa = pfa_alloc(PFA_MAX_ORDER, 0)) != 0)
		got[big++] = pa;
	for (uint64_t i = 0; i < big; i++)
		pfa_free(got[i], PFA_MAX_ORDER);
	void *m2;
	size_t s2;
	uint8_t *b = fresh_map(160 * MIB, &m2, &s2);
	REQUIRE(b, "mmap");
	setup_map(b, false);
	uint64_t big_eager = 0;
	while ((pa = pfa_alloc(PFA_MAX_ORDER, 0)) != 0)
		big_eager++;
	CHECK(big == big_eager, "%llu largest blocks, eager %llu", (unsigned long long)big,
	      (unsigned long long)big_eager);
	munmap(m, s);
	munmap(m2, s2);
}

TEST(fresh_alloc_at_split_reserve)
{
	void *m;
	size_t s;
	uint8_t *a = fresh_map(160 * MIB, &m, &s);
	REQUIRE(a, "mmap");
	setup_map(a, true);
	uint64_t boot = free_pages();
	/* far up in the second region: still lazy */
	uint64_t at = (uintptr_t)a + 120 * MIB;
	CHECK(pfa_alloc_at(at, 3) == 0, "alloc_at in the lazy span");
	CHECK(pfa_alloc_at(at, 3) == -1, "alloc_at twice");
	CHECK(pfa_split(at, 3) == 0, "split");
	pfa_free(at, 2);
	pfa_free(at + 4 * PAGE_SIZE, 2);
	CHECK(free_pages() == boot && pfa_check() == 0, "after alloc_at/split/free");
	/* a live reservation inside the lazy span is never handed out */
	uint64_t res = (uintptr_t)a + 130 * MIB + 7 * PAGE_SIZE;
	pfa_reserve(res, PAGE_SIZE);
	CHECK(free_pages() == boot - 1 && pfa_check() == 0, "reserve in lazy span");
	uint64_t pa, n = 0;
	bool hit = false;
	static uint64_t got[160 * MIB / 4096];
	while ((pa = pfa_alloc(0, 0)) != 0) {
		hit |= pa == res;
		got[n++] = pa;
	}
	CHECK(!hit, "reserved page handed out");
	CHECK(n == boot - 1, "%llu pages, expected %llu", (unsigned long long)n,
	      (unsigned long long)(boot - 1));
	for (uint64_t i = 0; i < n; i++)
		pfa_free(got[i], 0);
	CHECK(pfa_check() == 0, "check");
	munmap(m, s);
}

static long rss_kib(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(fresh_64g)
{
	void *m;
	size_t s;
	uint8_t *a = fresh_map(64 * GIB, &m, &s);
	REQUIRE(a, "mmap of 64 GiB (MAP_NORESERVE)");
	long rss0 = rss_kib();
	double t0 = harness_now();
	pfa_setup_begin(0);
	pfa_setup_fresh();
	pfa_add_region((uintptr_t)a, 64 * GIB);
	REQUIRE(pfa_setup_end() == 0, "setup");
	double t1 = harness_now();
	long rss1 = rss_kib();
	static struct pfa_stats st;
	pfa_get_stats(&st);
	printf("# fresh 64 GiB: setup %.3f ms, metadata %llu bytes, rss +%ld KiB\n",
	       (t1 - t0) * 1e3, (unsigned long long)st.metadata_bytes, rss1 - rss0);
	CHECK(t1 - t0 < 0.05, "setup took %.1f ms", (t1 - t0) * 1e3);
	CHECK(rss1 - rss0 < 1024, "setup touched %ld KiB", rss1 - rss0);
	CHECK(st.free_pages + st.reserved_pages == st.total_pages, "counts");
	uint64_t pa = pfa_alloc(0, 0);
	CHECK(pa && pfa_check() == 0, "alloc + check");
	pfa_free(pa, 0);
	CHECK(pfa_check() == 0, "check after free");
	munmap(m, s);
}

/* ---- hot-add and hot-remove (pfa_add_region after setup, pfa_remove_region) ---- */

static uint64_t total_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.total_pages;
}

/* Allocate order-0 pages until none is left; every one must lie in
 * [lo, hi) and outside [gap_lo, gap_hi).  Frees them all again. */
static int exhaust_inside(uint64_t lo, uint64_t hi, uint64_t gap_lo, uint64_t gap_hi)
{
	static uint64_t got[1 << 16];
	int n = 0, bad = 0;
	for (uint64_t pa; n < (1 << 16) && (pa = pfa_alloc(0, 0)) != 0;) {
		bad += pa < lo || pa >= hi || (pa >= gap_lo && pa < gap_hi);
		got[n++] = pa;
	}
	while (n)
		pfa_free(got[--n], 0);
	return bad;
}

static void hotplug_script(bool fresh)
{
	void *m;
	size_t s;
	uint8_t *a = fresh_map(128 * MIB, &m, &s);
	REQUIRE(a, "mmap");
	uintptr_t b = (uintptr_t)a;
	pfa_setup_begin(0);
	if (fresh)
		pfa_setup_fresh();
	pfa_add_region(b, 128 * MIB);
	REQUIRE(pfa_setup_end() == 0, "setup");
	uint64_t free0 = free_pages(), total0 = total_pages();

	/* the front half leaves (fresh: lazy pages are described first) */
	uint64_t keep = pfa_alloc(0, 0);       /* in use, somewhere */
	REQUIRE(keep, "alloc");
	bool keep_low = keep < b + 64 * MIB;
	uintptr_t cut = keep_low ? b + 64 * MIB : b;      /* a half without it */
	CHECK(pfa_remove_region(cut, 32 * MIB) == 0, "remove 32 MiB");
	CHECK(free_pages() == free0 - 1 - 32 * MIB / PAGE_SIZE, "free pages after remove");
	CHECK(total_pages() == total0 - 32 * MIB / PAGE_SIZE, "total pages after remove");
	CHECK(pfa_check() == 0, "check after remove");
	CHECK(exhaust_inside(b, b + 128 * MIB, cut, cut + 32 * MIB) == 0,
	      "a removed page was handed out");

	/* refused, nothing changed: in use, present already, outside the
	 * region, the metadata */
	CHECK(pfa_remove_region(keep & ~(uint64_t)(PAGE_SIZE - 1), PAGE_SIZE) == -1,
	      "removed a page in use");
	CHECK(pfa_add_region(keep & ~(uint64_t)(PAGE_SIZE - 1), PAGE_SIZE) == -1,
	      "added a present page");
	CHECK(pfa_add_region(b + 128 * MIB, 4 * MIB) == -1, "added memory outside the region");
	CHECK(pfa_remove_region(b + 128 * MIB - PAGE_SIZE, PAGE_SIZE) == -1,
	      "removed the metadata");
	CHECK(free_pages() == free0 - 1 - 32 * MIB / PAGE_SIZE && pfa_check() == 0,
	      "a refused call changed something");

	/* pieces come back: an unaligned one (described at once, merged) and
	 * the rest; then everything is whole again */
	CHECK(pfa_add_region(cut + 5 * PAGE_SIZE, 3 * MIB) == 0, "add unaligned piece");
	CHECK(pfa_check() == 0, "check after unaligned add");
	CHECK(pfa_add_region(cut, 5 * PAGE_SIZE) == 0, "add the pages before it");
	CHECK(pfa_add_region(cut + 5 * PAGE_SIZE + 3 * MIB, 32 * MIB - 3 * MIB - 5 * PAGE_SIZE) == 0,
	      "add the rest");
	pfa_free(keep, 0);
	CHECK(free_pages() == free0 && total_pages() == total0, "counts back to the start");
	CHECK(pfa_check() == 0, "check after adding all back");
	uint64_t big = pfa_alloc(PFA_MAX_ORDER, 0);
	CHECK(big, "the largest block after the round trip (buddies merged)");
	if (big)
		pfa_free(big, PFA_MAX_ORDER);

	/* all of it away and back in 4 MiB steps (the hosted heap's way) */
	static struct pfa_stats st;
	pfa_get_stats(&st);
	uintptr_t heap_end = b + 128 * MIB - st.reserved_pages * PAGE_SIZE;
	CHECK(pfa_remove_region(b, heap_end - b) == 0, "remove all");
	CHECK(free_pages() == 0 && pfa_alloc(0, 0) == 0, "memory left after removing all");
	for (uintptr_t at = b; at < b + 16 * MIB; at += 4 * MIB)
		CHECK(pfa_add_region(at, 4 * MIB) == 0, "add 4 MiB at +%lu MiB",
		      (unsigned long)((at - b) / MIB));
	CHECK(free_pages() == 16 * MIB / PAGE_SIZE && pfa_check() == 0, "after 4 x 4 MiB");
	CHECK(exhaust_inside(b, b + 16 * MIB, 0, 0) == 0, "a page from outside the added memory");
	CHECK(pfa_remove_region(b + 12 * MIB, 4 * MIB) == 0 && pfa_check() == 0, "remove top 4 MiB");
	CHECK(exhaust_inside(b, b + 12 * MIB, 0, 0) == 0, "a page of the removed top");
	munmap(m, s);
}

TEST(hotplug_fresh)
{
	hotplug_script(true);
}

TEST(hotplug_eager)
{
	hotplug_script(false);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

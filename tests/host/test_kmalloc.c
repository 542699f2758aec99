/*
 * test_kmalloc.c - host tests of the object allocator (mm/pool.c,
 * mm/arena.c, mm/large.c, mm/kmalloc.c, mm/kmalloc_stats.c).
 *
 * Every test starts from nothing: the PFA is set up over a piece of this
 * process's address space (mmap, direct-map offset 0) with one reserved
 * page in it, then kmalloc_init().  The PFA is the real one (mm/pfa*.c).
 *
 *   ram:  [ descriptors | ... | reserved page | .......... ]   64 MiB
 *
 * The model-based test keeps a shadow set of the live blocks' intervals
 * (sorted array): every block handed out must lie in managed RAM and
 * overlap no live block; every block is filled with a pattern derived
 * from its address and a serial number, verified before free/realloc.
 * After every phase: kmalloc_check() == 0, pfa_check() == 0, and the
 * statistics reconcile with the PFA's free page count exactly.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

void host_capture_start(char *buf, size_t cap);
size_t host_capture_stop(void);

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define RAM_SIZE (64 * MIB)

/* ------------------------------------------------------------------ */
/* fixture                                                             */
/* ------------------------------------------------------------------ */

static uint8_t *ram;            /* RAM_SIZE bytes, 4 MiB aligned */
static uint8_t *reserved_page;  /* a pfa_reserve()d page inside ram */
static uint64_t free_at_start;  /* PFA free pages right after kmalloc_init */
static char capture[8192];

static uint64_t pfa_free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

static void setup(void)
{
	if (!ram) {
		size_t map = RAM_SIZE + 4 * MIB;
		uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			abort();
		ram = (uint8_t *)(((uintptr_t)m + 4 * MIB - 1) & ~(uintptr_t)(4 * MIB - 1));
	}
	reserved_page = ram + 5 * MIB + 3 * PAGE_SIZE;
	pfa_setup_begin(0);
	pfa_add_region((uintptr_t)ram, RAM_SIZE);
	pfa_reserve((uintptr_t)reserved_page, PAGE_SIZE);
	if (pfa_setup_end() != 0)
		abort();
	kmalloc_init();
	/* These tests examine the pool, arena and run layers exactly (which
	 * pool a block comes from, when an arena goes back); the per-CPU
	 * magazines in front of them have their own tests (test_percpu.c). */
	mm_percpu_enable(0);
	free_at_start = pfa_free_pages();
}

/* Everything this allocator holds, as the PFA sees it, must match. */
static bool reconciles(char *why, size_t n)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	uint64_t held = free_at_start - pfa_free_pages();
	uint64_t parts = st.bytes_allocated_blocks + st.bytes_available_blocks +
			 st.bytes_unused_pools + st.bytes_pool_headers + st.bytes_quantization;
	if (held != st.pfa_pages) {
		snprintf(why, n, "PFA says %llu pages held, kmalloc %llu",
			 (unsigned long long)held, (unsigned long long)st.pfa_pages);
		return false;
	}
	if (parts != st.arenas_current * st.arena_size) {
		snprintf(why, n, "arena bytes %llu != parts %llu",
			 (unsigned long long)(st.arenas_current * st.arena_size),
			 (unsigned long long)parts);
		return false;
	}
	uint64_t used = 0, avail = 0;
	for (unsigned c = 0; c < st.nclasses; c++) {
		used += st.cls[c].blocks_used * st.cls[c].size;
		avail += st.cls[c].blocks_avail * st.cls[c].size;
	}
	if (used != st.bytes_allocated_blocks || avail != st.bytes_available_blocks) {
		snprintf(why, n, "class totals disagree");
		return false;
	}
	return true;
}

#define CHECK_SOUND()                                                        \
	do {                                                                 \
		char why_[160];                                              \
		CHECK(kmalloc_check() == 0, "kmalloc_check found problems");  \
		CHECK(pfa_check() == 0, "pfa_check found problems");          \
		CHECK(reconciles(why_, sizeof why_), "%s", why_);             \
	} while (0)

static uint64_t pattern(const void *p, uint64_t serial, size_t i)
{
	return ((uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ (serial << 20) ^ (i * 0x1000193);
}

/* Fill [p, p + n) with the pattern of (key, serial); key is usually p. */
static void fill_key(void *p, size_t n, const void *key, uint64_t serial)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(pattern(key, serial, i / 8) >> (i % 8 * 8));
}

static bool intact_key(const void *p, size_t n, const void *key, uint64_t serial)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (uint8_t)(pattern(key, serial, i / 8) >> (i % 8 * 8)))
			return false;
	return true;
}

static void fill(void *p, size_t n, uint64_t serial) { fill_key(p, n, p, serial); }
static bool intact(const void *p, size_t n, uint64_t serial)
{
	return intact_key(p, n, p, serial);
}

static enum kmalloc_report_kind kmalloc_last_report_kind(void)
{
	struct kmalloc_report r;
	kmalloc_last_report(&r);
	return r.kind;
}

static uint64_t spare_pages(void)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.arenas_spare * (st.arena_size / PAGE_SIZE) + st.large_cached_pages;
}

static bool in_ram(const void *p, size_t n)
{
	return (const uint8_t *)p >= ram && (const uint8_t *)p + n <= ram + RAM_SIZE;
}

static size_t expected_usable(size_t n)
{
	static const unsigned classes[] = {
		512, 576, 640, 704, 768, 832, 896, 960, 1024, 1152, 1280, 1408,
		1536, 1664, 1792, 1920, 2048 };
	if (n <= 512)
		return n <= 16 ? 16 : (n + 15) / 16 * 16;
	if (n <= 2048) {
		for (unsigned i = 0; i < sizeof classes / sizeof classes[0]; i++)
			if (n <= classes[i])
				return classes[i];
	}
	return 0;   /* large: at least n rounded to pages */
}

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
	REQUIRE(st.nclasses == 48, "%u classes", st.nclasses);
	for (unsigned c = 0; c < st.nclasses; c++) {
		size_t s = st.cls[c].size;
		for (size_t n = s - 1; n <= s + 1; n++) {
			void *p = kmalloc(n, 0);
			REQUIRE(p, "kmalloc(%zu)", n);
			size_t u = kmalloc_usable_size(p);
			if (n <= 2048)
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

TEST(kcalloc_zeroes_and_overflow)
{
	setup();
	static const size_t sizes[] = { 8, 100, 512, 2000, 4096, 10000, 100000 };
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		void *d = kmalloc(n, 0);
		memset(d, 0xA5, n);
		kfree(d);
		uint8_t *p = kcalloc(1, n, 0);
		REQUIRE(p, "kcalloc(%zu)", n);
		size_t u = kmalloc_usable_size(p);
		for (size_t j = 0; j < u; j++)
			REQUIRE(p[j] == 0, "kcalloc(%zu) byte %zu is %#x", n, j, p[j]);
		memset(p, 0x5A, u);
		kfree(p);
		p = kzalloc(n, 0);
		for (size_t j = 0; j < n; j++)
			REQUIRE(p[j] == 0, "kzalloc(%zu) byte %zu", n, j);
		kfree(p);
	}
	struct kmalloc_report r;
	CHECK(kcalloc(SIZE_MAX / 2, 3, 0) == NULL, "overflow accepted");
	kmalloc_last_report(&r);
	CHECK(r.kind == KM_FAIL_OVERFLOW, "report %d", r.kind);
	CHECK(kcalloc((size_t)1 << 33, (size_t)1 << 31, 0) == NULL, "overflow accepted");
	void *z = kcalloc(0, 100, 0);
	CHECK(z && kmalloc_usable_size(z) == 16, "kcalloc(0, n) is a minimum block");
	kfree(z);
	CHECK_SOUND();
}

/* ------------------------------------------------------------------ */
/* realloc                                                             */
/* ------------------------------------------------------------------ */

TEST(krealloc_keeps_contents)
{
	setup();
	static const size_t steps[] = { 1, 16, 17, 100, 400, 512, 513, 1000, 2048, 2049,
					4096, 5000, 12000, 70000, 300000, 3000, 600, 2100,
					16, 1, 5000, 1 << 20, 3 << 20, 100, 0 };
	uint8_t *p = NULL;
	size_t have = 0;
	for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		size_t n = steps[i];
		void *orig = p;
		uint8_t *q = krealloc(p, n, 0);
		if (n == 0) {
			CHECK(q == NULL, "krealloc(p, 0) = %p", (void *)q);
			break;
		}
		REQUIRE(q, "krealloc to %zu failed", n);
		size_t keep = have < n ? have : n;
		/* contents were written relative to the first address */
		REQUIRE(intact_key(q, keep, (void *)0x1, 7), "contents lost %zu -> %zu", have, n);
		(void)orig;
		REQUIRE(kmalloc_usable_size(q) >= n, "usable %zu < %zu", kmalloc_usable_size(q), n);
		fill_key(q, n, (void *)0x1, 7);
		p = q;
		have = n;
	}
	CHECK_SOUND();
	kmalloc_trim();
	CHECK(pfa_free_pages() == free_at_start, "pages not back: %llu vs %llu",
	      (unsigned long long)pfa_free_pages(), (unsigned long long)free_at_start);
}

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
	p = kmalloc(5 * PAGE_SIZE, 0);
	size_t u = kmalloc_usable_size(p);
	fill(p, 5 * PAGE_SIZE, 3);
	CHECK(krealloc(p, u, 0) == p, "growth within the run moved");
	CHECK(krealloc(p, 3 * PAGE_SIZE + 1, 0) == p, "shrink to 4 pages moved");
	CHECK(intact(p, 3 * PAGE_SIZE, 3), "contents lost");
	kfree(p);

	/* large growth by claiming the free pages after the run: after
	 * kfree of a big run, a small run at its start can grow into it */
	void *big = kmalloc(64 * PAGE_SIZE, 0);
	kfree(big);
	p = kmalloc(3 * PAGE_SIZE, 0);
	kmalloc_get_stats(&st);
	uint64_t before = st.realloc_in_place;
	void *r = krealloc(p, 9 * PAGE_SIZE, 0);
	kmalloc_get_stats(&st);
	printf("# large growth 3 -> 9 pages: %s (in place %llu)\n", r == p ? "in place" : "moved",
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

/* ------------------------------------------------------------------ */
/* invalid pointers                                                    */
/* ------------------------------------------------------------------ */

__attribute__((noinline)) static void free_here(const void *p)
{
	kfree(p);
	__asm__ volatile("");
}

/* kfree(p) must report `kind` for p, name free_here as the caller, print
 * one line with the address, and change nothing. */
static bool bad_free(const void *p, enum kmalloc_report_kind kind, char *why, size_t n)
{
	static struct kmalloc_stats before, after;
	struct kmalloc_report r;
	uint64_t pfa_before = pfa_free_pages();

	kmalloc_get_stats(&before);
	kmalloc_clear_report();
	host_capture_start(capture, sizeof capture);
	free_here(p);
	host_capture_stop();
	kmalloc_last_report(&r);
	kmalloc_get_stats(&after);

	char addr[32];
	snprintf(addr, sizeof addr, "kfree(%p)", p);
	if (r.kind != kind || r.ptr != p || strcmp(r.op, "kfree") != 0) {
		snprintf(why, n, "kfree(%p): report %d (%s), expected %d (%s)", p, r.kind,
			 kmalloc_report_name(r.kind), kind, kmalloc_report_name(kind));
		return false;
	}
	if ((char *)r.caller < (char *)free_here || (char *)r.caller > (char *)free_here + 512) {
		snprintf(why, n, "caller %p is not in free_here %p", r.caller, (void *)free_here);
		return false;
	}
	if (!strstr(capture, addr) || !strstr(capture, kmalloc_report_name(kind))) {
		snprintf(why, n, "log line '%s' lacks '%s'", capture, addr);
		return false;
	}
	if (after.bad_pointers != before.bad_pointers + 1 ||
	    after.bytes_allocated_blocks != before.bytes_allocated_blocks ||
	    after.large_pages != before.large_pages || pfa_free_pages() != pfa_before) {
		snprintf(why, n, "state changed by a bad kfree(%p)", p);
		return false;
	}
	return true;
}

#define BAD_FREE(p, kind)                                                 \
	do {                                                              \
		char why_[256];                                           \
		CHECK(bad_free((p), (kind), why_, sizeof why_), "%s", why_); \
	} while (0)

TEST(kfree_invalid_pointers)
{
	setup();
	int on_stack;
	char *heap = malloc(64);

	BAD_FREE(&on_stack, KM_BAD_UNMANAGED);
	BAD_FREE(heap, KM_BAD_UNMANAGED);
	BAD_FREE(ram + RAM_SIZE + 64, KM_BAD_UNMANAGED);
	free(heap);

	BAD_FREE(reserved_page, KM_BAD_RESERVED);
	BAD_FREE(reserved_page + 16, KM_BAD_RESERVED);

	/* a page straight from the PFA belongs to someone else */
	phys_addr_t pa = pfa_alloc(0, 0);
	BAD_FREE(pfa_virt(pa), KM_BAD_FOREIGN);
	pfa_free(pa, 0);

	/* small blocks: header, misaligned, never carved, double free */
	uint8_t *a = kmalloc(64, 0), *b = kmalloc(64, 0), *c = kmalloc(64, 0);
	uint8_t *pool = (uint8_t *)((uintptr_t)a & ~(uintptr_t)(16 * KIB - 1));
	BAD_FREE(pool, KM_BAD_NOT_BLOCK);                /* the pool header */
	BAD_FREE(pool + 16, KM_BAD_NOT_BLOCK);
	BAD_FREE(a + 16, KM_BAD_MISALIGNED);
	BAD_FREE(b + 8, KM_BAD_MISALIGNED);
	BAD_FREE(b + 1, KM_BAD_MISALIGNED);
	BAD_FREE(pool + 16 * KIB - 64, KM_BAD_NOT_BLOCK); /* never carved */
	BAD_FREE(pool + 16 * KIB * 5, KM_BAD_NOT_BLOCK);  /* a pool never used */
	kfree(b);
	BAD_FREE(b, KM_DOUBLE_FREE);                       /* head of the free list */
	kfree(a);
	BAD_FREE(b, KM_DOUBLE_FREE);                       /* deeper in it */
	BAD_FREE(a, KM_DOUBLE_FREE);
	/* user data that looks like a free mark is not a double free */
	void **d = kmalloc(64, 0);
	void **e = kmalloc(64, 0);
	kfree(e);
	memcpy(d, e, 16);                  /* copies e's link and mark words */
	d[1] = (void *)((uintptr_t)d ^ 0x6b6d6672656521a5ull);
	kmalloc_clear_report();
	kfree(d);
	CHECK(kmalloc_last_report_kind() == KM_REPORT_NONE, "false double free");
	kfree(c);

	/* a pool whose blocks are all free (parked) still knows them */
	void *keep = kmalloc(32, 0);       /* keeps the arena in use */
	uint8_t *f = kmalloc(1000, 0), *g = kmalloc(1000, 0);
	kfree(f);
	BAD_FREE(f, KM_DOUBLE_FREE);
	kfree(g);
	BAD_FREE(g, KM_DOUBLE_FREE);
	BAD_FREE(f, KM_DOUBLE_FREE);
	kfree(keep);

	/* large runs: interior pointers, freed run */
	uint8_t *l = kmalloc(5 * PAGE_SIZE, 0);
	BAD_FREE(l + 16, KM_BAD_INTERIOR);
	BAD_FREE(l + PAGE_SIZE, KM_BAD_INTERIOR);
	BAD_FREE(l + 4 * PAGE_SIZE + 100, KM_BAD_INTERIOR);
	kfree(l);
	BAD_FREE(l, KM_DOUBLE_FREE);            /* the run waits in the run cache */
	kmalloc_trim();
	BAD_FREE(l, KM_BAD_FREE_PAGE);          /* ... and now is back in the PFA */
	CHECK_SOUND();

	/* the other entry points report too */
	struct kmalloc_report r;
	host_capture_start(capture, sizeof capture);
	CHECK(kmalloc_usable_size(reserved_page) == 0, "usable size of a bad pointer");
	CHECK(krealloc(reserved_page, 10, 0) == NULL, "krealloc of a bad pointer");
	host_capture_stop();
	kmalloc_last_report(&r);
	CHECK(r.kind == KM_BAD_RESERVED && strcmp(r.op, "krealloc") == 0, "krealloc report %d %s",
	      r.kind, r.op);
}

/* ------------------------------------------------------------------ */
/* model-based random test                                             */
/* ------------------------------------------------------------------ */

struct live {
	uint8_t *p;
	size_t n;        /* bytes asked for */
	size_t usable;
	uint64_t serial;
};

#define MAXLIVE 3000
static struct live live[MAXLIVE];       /* in no particular order */
static int nlive;
static uintptr_t shadow_lo[MAXLIVE], shadow_hi[MAXLIVE];   /* sorted by lo */
static int nshadow;

/* Insert [lo, hi) into the shadow set; false if it overlaps a member. */
static bool shadow_insert(uintptr_t lo, uintptr_t hi)
{
	int a = 0, b = nshadow;
	while (a < b) {
		int m = (a + b) / 2;
		if (shadow_lo[m] < lo)
			a = m + 1;
		else
			b = m;
	}
	if ((a > 0 && shadow_hi[a - 1] > lo) || (a < nshadow && shadow_lo[a] < hi))
		return false;
	memmove(&shadow_lo[a + 1], &shadow_lo[a], (size_t)(nshadow - a) * sizeof *shadow_lo);
	memmove(&shadow_hi[a + 1], &shadow_hi[a], (size_t)(nshadow - a) * sizeof *shadow_hi);
	shadow_lo[a] = lo;
	shadow_hi[a] = hi;
	nshadow++;
	return true;
}

static bool shadow_remove(uintptr_t lo)
{
	for (int i = 0; i < nshadow; i++)
		if (shadow_lo[i] == lo) {
			memmove(&shadow_lo[i], &shadow_lo[i + 1], (size_t)(nshadow - i - 1) * sizeof *shadow_lo);
			memmove(&shadow_hi[i], &shadow_hi[i + 1], (size_t)(nshadow - i - 1) * sizeof *shadow_hi);
			nshadow--;
			return true;
		}
	return false;
}

/* Sizes like a kernel's: mostly small, a long tail of large ones. */
static size_t random_size(void)
{
	uint64_t r = rnd_below(1000);
	if (r < 700)
		return rnd_below(257);
	if (r < 900)
		return rnd_below(2049);
	if (r < 985)
		return 2049 + rnd_below(30000);
	return rnd_below(600 * KIB);
}

/* A NULL from kmalloc is acceptable only if the PFA really has no free
 * block of the order the request needs (external fragmentation). */
static bool nomem_is_real(size_t n, size_t align)
{
	static struct pfa_stats ps;
	uint64_t pages = (n + PAGE_SIZE - 1) / PAGE_SIZE, order = 0;
	while (((uint64_t)1 << order) < pages)
		order++;
	while (align > PAGE_SIZE && ((size_t)PAGE_SIZE << order) < align)
		order++;
	if (n <= 2048 && align <= 2048)
		order = 8;                         /* a new arena */
	pfa_get_stats(&ps);
	return kmalloc_last_report_kind() == KM_FAIL_NOMEM &&
	       (ps.free_pages == 0 || ps.largest_free_order < order);
}

static bool track(uint8_t *p, size_t n, uint64_t serial, char *why, size_t wn)
{
	size_t u = kmalloc_usable_size(p);
	if (u < n || !in_ram(p, u) || ((uintptr_t)p & 15)) {
		snprintf(why, wn, "block %p usable %zu for %zu", (void *)p, u, n);
		return false;
	}
	if (!shadow_insert((uintptr_t)p, (uintptr_t)p + u)) {
		snprintf(why, wn, "block %p (+%zu) overlaps a live block", (void *)p, u);
		return false;
	}
	live[nlive++] = (struct live){ p, n, u, serial };
	return true;
}

TEST(kmalloc_model_random)
{
	setup();
	char why[200];
	uint64_t serial = 0, nomem = 0;
	nlive = nshadow = 0;
	int peak = 0;
	for (int op = 0; op < 200000; op++) {
		if (nlive > peak)
			peak = nlive;
		uint64_t r = rnd_below(100);
		uint64_t F = (op / 25000) % 2 ? 62 : 30;   /* shrinking / growing phase */
		if (nlive > 0 && (r < F || nlive == MAXLIVE)) {           /* free */
			int i = (int)rnd_below((uint64_t)nlive);
			struct live *l = &live[i];
			REQUIRE(intact(l->p, l->n, l->serial), "block %p (%zu) corrupted", (void *)l->p, l->n);
			REQUIRE(shadow_remove((uintptr_t)l->p), "not in shadow");
			kfree(l->p);
			live[i] = live[--nlive];
		} else if (nlive > 0 && r < F + 13) {                      /* realloc */
			int i = (int)rnd_below((uint64_t)nlive);
			struct live l = live[i];
			size_t n = random_size() + 1;
			REQUIRE(intact(l.p, l.n, l.serial), "block corrupted before realloc");
			shadow_remove((uintptr_t)l.p);
			live[i] = live[--nlive];
			uint8_t *q = krealloc(l.p, n, 0);
			if (!q) {
				REQUIRE(nomem_is_real(n, 16), "krealloc(%zu) failed, PFA not exhausted", n);
				nomem++;
				q = l.p;                  /* untouched: keep it as it was */
				n = l.n;
			}
			size_t keep = l.n < n ? l.n : n;
			REQUIRE(intact_key(q, keep, l.p, l.serial), "realloc lost contents");
			REQUIRE(track(q, n, ++serial, why, sizeof why), "%s", why);
			fill(q, n, serial);
		} else {                                                   /* alloc */
			size_t n = random_size();
			uint8_t *p;
			if (r < F + 19) {
				/* mostly modest alignments, now and then up to 2 MiB */
				size_t align = (size_t)1 << (rnd_below(20) ? rnd_below(13)
									   : 13 + rnd_below(9));
				p = kmalloc_aligned(n, align, 0);
				if (!p) {
					REQUIRE(nomem_is_real(n, align), "kmalloc_aligned(%zu, %zu) failed, "
						"PFA not exhausted", n, align);
					nomem++;
					continue;
				}
				REQUIRE(p && ((uintptr_t)p & (align - 1)) == 0, "aligned %zu/%zu: %p", n,
					align, (void *)p);
			} else {
				p = r < F + 23 ? kzalloc(n, 0) : kmalloc(n, 0);
				if (!p) {
					REQUIRE(nomem_is_real(n, 16), "kmalloc(%zu) failed with %d live, "
						"PFA not exhausted", n, nlive);
					nomem++;
					continue;
				}
				if (r < F + 23)
					for (size_t j = 0; j < n; j++)
						REQUIRE(p[j] == 0, "kzalloc byte %zu", j);
			}
			REQUIRE(track(p, n, ++serial, why, sizeof why), "%s", why);
			fill(p, n, serial);
		}
		if (op % 20000 == 0)
			CHECK_SOUND();
	}
	CHECK_SOUND();
	printf("# model: peak %d live, %d at the end, %llu requests failed for want of a PFA block\n",
	       peak, nlive, (unsigned long long)nomem);
	while (nlive > 0) {
		REQUIRE(intact(live[0].p, live[0].n, live[0].serial), "corrupted at the end");
		kfree(live[0].p);
		live[0] = live[--nlive];
	}
	nshadow = 0;
	CHECK_SOUND();
	CHECK(pfa_free_pages() + spare_pages() == free_at_start,
	      "after freeing everything %llu + spare %llu != %llu free pages",
	      (unsigned long long)pfa_free_pages(), (unsigned long long)spare_pages(),
	      (unsigned long long)free_at_start);
}

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

/* ------------------------------------------------------------------ */
/* statistics                                                          */
/* ------------------------------------------------------------------ */

static char stats_text[16384];
static size_t stats_len;
static void stats_out(const char *s, size_t n)
{
	if (stats_len + n < sizeof stats_text) {
		memcpy(stats_text + stats_len, s, n);
		stats_len += n;
		stats_text[stats_len] = 0;
	}
}

TEST(kmalloc_stats_reconcile_and_print)
{
	setup();
	static struct kmalloc_stats st;
	void *small[1000], *large[10];
	for (int i = 0; i < 1000; i++)
		small[i] = kmalloc((size_t)(i % 300) + 1, 0);
	for (int i = 0; i < 10; i++)
		large[i] = kmalloc((size_t)(i + 1) * 5000, 0);
	CHECK_SOUND();
	kmalloc_get_stats(&st);
	uint64_t in_use = 0;
	for (unsigned c = 0; c < st.nclasses; c++)
		in_use += st.cls[c].blocks_used;
	CHECK(in_use == 1000, "%llu blocks in use", (unsigned long long)in_use);
	CHECK(st.large_runs == 10, "%llu large runs", (unsigned long long)st.large_runs);
	CHECK(st.large_bytes_requested == 5000ull * 55, "large bytes %llu",
	      (unsigned long long)st.large_bytes_requested);
	stats_len = 0;
	kmalloc_print_stats(stats_out);
	CHECK(strstr(stats_text, "# arenas allocated total") && strstr(stats_text, "quantization"),
	      "stats text:\n%s", stats_text);
	if (getenv("KMALLOC_SHOW_STATS"))
		fputs(stats_text, stdout);
	for (int i = 0; i < 1000; i++)
		kfree(small[i]);
	for (int i = 0; i < 10; i++)
		kfree(large[i]);
	CHECK_SOUND();
}

/* A kmalloc/kfree loop on an empty allocator must not touch the PFA or
 * re-initialise its pool every time (the parked pool in the held arena). */
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
TEST(large_run_cache_fits_and_bounds)
{
	setup();
	static struct kmalloc_stats st;
	const size_t pg = PAGE_SIZE;

	uint8_t *p = kmalloc(10 * pg, 0);
	REQUIRE(p != NULL, "kmalloc(10 pages)");
	kfree(p);
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 10, "%llu pages cached, not 10",
	      (unsigned long long)st.large_cached_pages);
	uint8_t *q = kmalloc(7 * pg, 0);
	CHECK(q == p, "7 pages came from %p, not the cached 10-page run %p", q, p);
	CHECK(kmalloc_usable_size(q) == 7 * pg, "usable %zu, not 7 pages", kmalloc_usable_size(q));
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 0 && st.large_pages == 7, "cached %llu, runs %llu pages",
	      (unsigned long long)st.large_cached_pages, (unsigned long long)st.large_pages);
	CHECK(free_at_start - pfa_free_pages() == 7, "PFA holds %llu pages for a 7-page run",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
	CHECK_SOUND();

	kfree(q);                          /* 7 pages cached */
	uint8_t *r = kmalloc(3 * pg, 0);   /* 7 > 2 * 3: not from the cache */
	CHECK(r != q, "a 3-page request took the 7-page run");
	kmalloc_get_stats(&st);
	CHECK(st.large_cached_pages == 7, "%llu pages cached, not 7",
	      (unsigned long long)st.large_cached_pages);
	kfree(r);
	kfree(r);                          /* cached run freed twice */
	CHECK(kmalloc_last_report_kind() == KM_DOUBLE_FREE, "double free of a cached run: %d",
	      (int)kmalloc_last_report_kind());

	/* bounds: at most 256 runs, at most RAM / 16 pages (64 MiB -> 1024) */
	kmalloc_trim();
	static void *v[260];
	for (int i = 0; i < 260; i++)
		v[i] = kmalloc(pg + 1, 0);     /* 2 pages each */
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

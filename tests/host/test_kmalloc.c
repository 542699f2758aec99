/*
 * test_kmalloc.c - the kmalloc front end (mm/kmalloc.c) over the layers
 * below it: kcalloc, krealloc moving contents, every kind of bad pointer
 * reported with its caller and nothing freed, a model-based random test,
 * and the statistics reconciled and printed (mm/kmalloc_stats.c).  The
 * layers have their own files: test_pool.c, test_arena.c, test_large.c.
 *
 * The model-based test keeps a shadow set of the live blocks' intervals
 * (sorted array): every block handed out must lie in managed RAM and
 * overlap no live block; every block is filled with a pattern derived
 * from its address and a serial number, verified before free/realloc.
 * After every phase: kmalloc_check() == 0, pfa_check() == 0, and the
 * statistics reconcile with the PFA's free page count exactly.
 */
#include "kmalloc_fixture.h"

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

/* KM_NO_MOVE: in place or NULL, and on NULL the block is as it was (its
 * size, its bytes, still a block); nothing is ever moved or freed. */
TEST(krealloc_no_move_resizes_in_place_or_fails)
{
	setup();
	struct kmalloc_stats before, after;
	kmalloc_get_stats(&before);
	uint8_t *p = kmalloc(100, 0);
	size_t u = kmalloc_usable_size(p);
	fill_key(p, u, (void *)0x1, 3);
	CHECK(krealloc(p, u, KM_NO_MOVE) == p, "within its class: not kept");
	CHECK(krealloc(p, 4 * u, KM_NO_MOVE) == NULL, "a small block grew past its class");
	CHECK(krealloc(p, 100000, KM_NO_MOVE) == NULL, "a small block became large in place");
	CHECK(krealloc(p, 0, KM_NO_MOVE) == NULL && kmalloc_is_block(p), "size 0 freed it");
	CHECK(kmalloc_usable_size(p) == u && intact_key(p, u, (void *)0x1, 3), "block changed");
	CHECK(krealloc(NULL, 10, KM_NO_MOVE) == NULL, "KM_NO_MOVE of NULL allocated");

	uint8_t *a = kmalloc(100000, 0);
	fill_key(a, 100000, (void *)0x2, 5);
	CHECK(krealloc(a, 50000, KM_NO_MOVE) == a, "a large run did not shrink in place");
	CHECK(krealloc(a, 2 * KMALLOC_MAX_SIZE, KM_NO_MOVE) == NULL, "grew past any block");
	CHECK(kmalloc_is_block(a) && intact_key(a, 50000, (void *)0x2, 5), "run changed");
	kmalloc_get_stats(&after);
	CHECK(after.realloc_moved == before.realloc_moved, "%llu moves",
	      (unsigned long long)(after.realloc_moved - before.realloc_moved));
	kfree(a);
	kfree(p);
	CHECK_SOUND();
}

/* ------------------------------------------------------------------ */
/* invalid pointers                                                    */
/* ------------------------------------------------------------------ */

__attribute__((noinline)) static int free_here(const void *p)
{
	int r = kfree(p);
	__asm__ volatile("");
	return r;
}

/* kfree(p) must report `kind` for p, name free_here as the caller, print
 * one line with the address, change nothing, and return -1. */
static bool bad_free(const void *p, enum kmalloc_report_kind kind, char *why, size_t n)
{
	static struct kmalloc_stats before, after;
	struct kmalloc_report r;
	uint64_t pfa_before = pfa_free_pages();

	kmalloc_get_stats(&before);
	kmalloc_clear_report();
	host_capture_start(capture, sizeof capture);
	int verdict = free_here(p);
	host_capture_stop();
	kmalloc_last_report(&r);
	kmalloc_get_stats(&after);
	if (verdict != -1) {
		snprintf(why, n, "kfree(%p) returned %d for a refused pointer, not -1", p, verdict);
		return false;
	}

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

/* kfree says 0 for every pointer it takes: NULL, small blocks on the
 * fast path and past a full magazine, large runs, kzalloc'd and aligned
 * blocks. */
TEST(kfree_accepts_with_zero)
{
	setup();
	void *p[600];
	CHECK(kfree(NULL) == 0, "kfree(NULL)");
	for (int i = 0; i < 600; i++)
		p[i] = kmalloc(48, 0);      /* more than a magazine holds */
	int bad = 0;
	for (int i = 0; i < 600; i++)
		bad += kfree(p[i]) != 0;
	CHECK(bad == 0, "%d legal small frees refused", bad);
	void *l = kmalloc(5 * PAGE_SIZE, 0), *z = kzalloc(100, 0), *al = kmalloc_aligned(64, 4096, 0);
	REQUIRE(l && z && al, "alloc");
	CHECK(kfree(l) == 0 && kfree(z) == 0 && kfree(al) == 0, "legal large/zeroed/aligned free refused");
	CHECK(kfree_caller(kmalloc(16, 0), (void *)0x1234) == 0, "kfree_caller refused");
	CHECK(kmalloc_last_report_kind() == KM_REPORT_NONE, "a report from legal frees");
	CHECK_SOUND();
}

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
	d[1] = (void *)~(uintptr_t)d;     /* km_free_mark(d), obj_layout.h */
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
	uint8_t *l = kmalloc(KMALLOC_SMALL_MAX + 5 * PAGE_SIZE, 0);   /* above the classes */
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

/* Blocks of the medium classes, which kfree's fast path takes through
 * their arena's hint of kind 1.. (pool = block rounded down to its pool
 * size): every bad pointer inside their pools is still refused with the
 * reason the descriptor gives, a block in a magazine or on its pool's
 * free list is a double free, and the good ones go back. */
TEST(kfree_invalid_medium_pointers)
{
	setup();
	mm_percpu_enable(1);                     /* the fast path needs its magazines */
	void *keep = kmalloc(4096, 0);           /* keeps the pool in use */
	uint8_t *a = kmalloc(4096, 0), *b = kmalloc(4096, 0), *m = kmalloc(12000, 0);
	REQUIRE(keep && a && b && m, "alloc");
	/* 4096-byte blocks: 64 KiB pools, 15 blocks from 4096 on */
	uint8_t *pool = (uint8_t *)((uintptr_t)a & ~(uintptr_t)(64 * KIB - 1));
	CHECK(((uintptr_t)a & (4096 - 1)) == 0, "4096-byte block not 4096-aligned");
	BAD_FREE(pool, KM_BAD_NOT_BLOCK);                 /* the pool header */
	BAD_FREE(pool + 64, KM_BAD_NOT_BLOCK);
	BAD_FREE(a + 16, KM_BAD_MISALIGNED);
	BAD_FREE(a + 2048, KM_BAD_MISALIGNED);
	BAD_FREE(b + 4095, KM_BAD_MISALIGNED);
	BAD_FREE(pool + 14 * 4096, KM_BAD_NOT_BLOCK);    /* never carved */
	BAD_FREE(m + 16, KM_BAD_MISALIGNED);             /* a 256 KiB pool's */
	kfree(b);
	BAD_FREE(b, KM_DOUBLE_FREE);                      /* in this CPU's magazine */
	kfree(a);
	BAD_FREE(a, KM_DOUBLE_FREE);
	mm_cpu_drain();                                   /* magazines back to the pools */
	BAD_FREE(b, KM_DOUBLE_FREE);                      /* on the pool's free list */
	BAD_FREE(a, KM_DOUBLE_FREE);
	kmalloc_clear_report();
	CHECK(kfree(m) == 0 && kfree(keep) == 0, "a medium block refused");
	CHECK(kmalloc_last_report_kind() == KM_REPORT_NONE, "a report from legal frees");
	mm_percpu_enable(0);
	CHECK_SOUND();
}

/* A block of a pool that went back to its arena: kfree must refuse it,
 * also once a use after free has wiped its free mark (then only the
 * released pool's empty carved range tells the fast path), and nothing
 * is freed into memory that serves no class. */
TEST(kfree_into_a_released_pool_is_refused)
{
	setup();
	mm_percpu_enable(1);
	mm_cpu_drain();
	enum { N = 16 };                 /* 4096-byte blocks: 15 a pool, so two pools */
	uint8_t *blk[N];
	for (unsigned i = 0; i < N; i++) {
		blk[i] = kmalloc(4096, 0);
		REQUIRE(blk[i], "alloc %u", i);
	}
	uint8_t *pool_a = (uint8_t *)((uintptr_t)blk[0] & ~(uintptr_t)(64 * KIB - 1));
	unsigned lone = N;              /* the one block in the other pool */
	for (unsigned i = 0; i < N; i++)
		if ((uint8_t *)((uintptr_t)blk[i] & ~(uintptr_t)(64 * KIB - 1)) != pool_a)
			lone = lone == N ? i : N + 1;
	REQUIRE(lone < N, "want exactly one block outside the first pool");
	kfree(blk[lone == 0 ? 1 : 0]);    /* the first pool has room again */
	kfree(blk[lone]);                 /* the second one is empty */
	mm_cpu_drain();                   /* magazines back: the empty pool goes */
	BAD_FREE(blk[lone], KM_BAD_NOT_BLOCK);
	memset(blk[lone], 0, 16);         /* a use after free wipes its free mark */
	BAD_FREE(blk[lone], KM_BAD_NOT_BLOCK);
	kmalloc_clear_report();
	for (unsigned i = 0; i < N; i++)
		if (i != lone && i != (lone == 0 ? 1u : 0u))
			kfree(blk[i]);
	CHECK(kmalloc_last_report_kind() == KM_REPORT_NONE, "a report from legal frees");
	mm_percpu_enable(0);
	CHECK_SOUND();
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
		large[i] = kmalloc(KMALLOC_SMALL_MAX + (size_t)(i + 1) * 5000, 0);
	CHECK_SOUND();
	kmalloc_get_stats(&st);
	uint64_t in_use = 0;
	for (unsigned c = 0; c < st.nclasses; c++)
		in_use += st.cls[c].blocks_used;
	CHECK(in_use == 1000, "%llu blocks in use", (unsigned long long)in_use);
	CHECK(st.large_runs == 10, "%llu large runs", (unsigned long long)st.large_runs);
	CHECK(st.large_bytes_requested == 10ull * KMALLOC_SMALL_MAX + 5000ull * 55, "large bytes %llu",
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

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/*
 * kmalloc.c - suite "kmalloc": the object allocator on the live machine.
 *
 *     make run KARGS="test=kmalloc"            (iters=N, seed=N)
 *
 *   random     iters (default 2,000,000) random operations on up to 4096
 *              live blocks: kmalloc / kzalloc / kcalloc / kmalloc_aligned
 *              / krealloc / kfree, sizes like a kernel's (70% <= 256 bytes,
 *              20% <= 2 KiB, a long tail of page runs up to 600 KiB).
 *              Every block is stamped with words derived from its address
 *              and a serial number (all of a small block; the first and
 *              last 256 bytes and one word in 64 of a large one) and
 *              checked before it is freed or reallocated, so a block handed
 *              out twice, overlapping another, or corrupted by the
 *              allocator's own free lists is caught.  kmalloc_check() and
 *              pfa_check() every 100,000 operations.  At the end every
 *              block is freed and, after kmalloc_trim(), the PFA's free
 *              page count is exactly what it was before the test.
 *   list_growth  CPython's list growth pattern (0, 4, 8, 16, 24, 32, 40,
 *              52, 64, 76, ... items of 8 bytes, as list_resize computes
 *              it) replayed through krealloc up to 400,000 items: the
 *              contents survive and some resizes stay in place (counted).
 *   bad_pointer  kfree of a reserved page and of an interior pointer are
 *              reported, not freed.
 *   reports_name_the_caller  bad kfree, free, kmem_cache_free and a
 *              kmalloc too large: each report names the function that
 *              made the call (the fast paths' MM_FAST_CALLER).
 *
 * Time (TCG, no icount): the default random run is about 1-2 s on x86_64.
 */
#include <stdbool.h>

#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#define MAXLIVE 4096
#define SMALL_STAMP 4096          /* blocks up to this are stamped entirely */

struct blk {
	uint64_t *p;
	size_t n;                 /* bytes asked for */
	uint64_t serial;
};

static struct blk live[MAXLIVE];
static unsigned nlive;
static struct pfa_stats pst;

static uint64_t pfa_free_pages(void)
{
	pfa_get_stats(&pst);
	return pst.free_pages;
}

static void ensure_init(void)
{
	static struct kmalloc_stats st;

	kmalloc_get_stats(&st);
	if (st.nclasses == 0)      /* the kernel has not called it (yet) */
		kmalloc_init();
}

static inline uint64_t word(const void *key, uint64_t serial, size_t i)
{
	uint64_t x = (uintptr_t)key ^ (serial * 0x9E3779B97F4A7C15ull) ^ (i << 48);
	x ^= x >> 29;
	return x * 0xBF58476D1CE4E5B9ull + i;
}

/* The stamped words of an n-byte block: all of a small one; of a large
 * one the first 32, the last 32 and every 64th.  Returns the index after
 * word i (words = n / 8 ends the walk). */
static inline size_t next_stamped(size_t n, size_t i)
{
	size_t words = n / 8, j = i + 1;

	if (n <= SMALL_STAMP || j < 32 || j + 32 >= words)
		return j;
	size_t k = (j + 63) & ~(size_t)63;
	return k + 32 >= words ? words - 32 : k;
}

static void stamp(uint64_t *p, size_t n, const void *key, uint64_t serial)
{
	for (size_t i = 0; i < n / 8; i = next_stamped(n, i))
		p[i] = word(key, serial, i);
}

/* Check the words of the first `limit` bytes that an n-byte stamp wrote;
 * returns the index of the first bad word, or SIZE_MAX. */
static size_t verify(const uint64_t *p, size_t n, size_t limit, const void *key, uint64_t serial)
{
	size_t words = (limit < n ? limit : n) / 8;
	for (size_t i = 0; i < words; i = next_stamped(n, i))
		if (p[i] != word(key, serial, i))
			return i;
	return SIZE_MAX;
}

static size_t random_size(struct ktest_ctx *t)
{
	uint64_t r = kt_rand_below(t, 1000);
	if (r < 700)
		return (size_t)kt_rand_below(t, 257);
	if (r < 900)
		return (size_t)kt_rand_below(t, 2049);
	if (r < 985)
		return 2049 + (size_t)kt_rand_below(t, 30000);
	return (size_t)kt_rand_below(t, 600 * 1024);
}

static bool sound(struct ktest_ctx *t, uint64_t op)
{
	int k = kmalloc_check(), p = pfa_check();
	KT_CHECK(t, k == 0 && p == 0, "after %llu ops: kmalloc_check %d, pfa_check %d problems",
		 (unsigned long long)op, k, p);
	return k == 0 && p == 0;
}

/* A NULL from the allocator is only acceptable when the PFA really has
 * no free block big enough for it (small sizes need a whole new arena). */
static uint64_t ooms;

static bool legit_oom(size_t n, size_t align)
{
	struct pfa_stats st;
	struct kmalloc_stats ks;
	pfa_get_stats(&st);
	kmalloc_get_stats(&ks);
	size_t bytes = n > align ? n : align;
	if (bytes <= ks.small_max)
		bytes = ks.arena_size;
	unsigned need = 0;
	while (((size_t)PAGE_SIZE << need) < bytes)
		need++;
	return st.free_pages == 0 || st.largest_free_order < need;
}

static void drop(unsigned i)
{
	live[i] = live[--nlive];
}

KTEST(kmalloc, random)
{
	ensure_init();
	kmalloc_trim();
	uint64_t free0 = pfa_free_pages();
	uint64_t iters = t->iters ? t->iters : 2000000;
	uint64_t serial = 0, moved = 0, in_place = 0, c0 = arch_cycles();
	nlive = 0;
	ooms = 0;

	for (uint64_t op = 0; op < iters && !t->failed; op++) {
		uint64_t r = kt_rand_below(t, 100);
		uint64_t F = (op / 50000) % 2 ? 60 : 35;   /* shrinking / growing phases */
		if (nlive && (r < F || nlive == MAXLIVE)) {
			unsigned i = (unsigned)kt_rand_below(t, nlive);
			struct blk *b = &live[i];
			size_t bad = verify(b->p, b->n, b->n, b->p, b->serial);
			KT_REQUIRE(t, bad == SIZE_MAX, "block %p (%zu bytes) word %zu corrupted",
				   (void *)b->p, b->n, bad);
			kfree(b->p);
			drop(i);
		} else if (nlive && r < F + 12) {
			unsigned i = (unsigned)kt_rand_below(t, nlive);
			struct blk b = live[i];
			size_t n = random_size(t) + 8;
			size_t bad = verify(b.p, b.n, b.n, b.p, b.serial);
			KT_REQUIRE(t, bad == SIZE_MAX,
				   "block %p (%zu bytes, serial %llu) word %zu is %llx, not %llx, before krealloc",
				   (void *)b.p, b.n, (unsigned long long)b.serial, bad,
				   (unsigned long long)b.p[bad], (unsigned long long)word(b.p, b.serial, bad));
			uint64_t *q = krealloc(b.p, n, 0);
			if (!q) {
				KT_REQUIRE(t, legit_oom(n, 16),
					   "krealloc(%p, %zu) failed with %u live and memory free",
					   (void *)b.p, n, nlive);
				ooms++;
				continue;   /* b is untouched and still live */
			}
			in_place += q == b.p;
			moved += q != b.p;
			/* what was stamped below min(old, new) moved along */
			bad = verify(q, b.n, n, b.p, b.serial);
			KT_REQUIRE(t, bad == SIZE_MAX, "krealloc %zu -> %zu lost word %zu", b.n, n, bad);
			live[i] = (struct blk){ q, n, ++serial };
			stamp(q, n, q, serial);
		} else {
			size_t n = random_size(t);
			uint64_t *p;
			if (r < F + 18) {
				size_t align = (size_t)1 << (kt_rand_below(t, 50) ? kt_rand_below(t, 13)
										   : 13 + kt_rand_below(t, 9));
				p = kmalloc_aligned(n, align, 0);
				if (!p && legit_oom(n, align)) {
					ooms++;
					continue;
				}
				KT_REQUIRE(t, p && ((uintptr_t)p & (align - 1)) == 0,
					   "kmalloc_aligned(%zu, %zu) = %p", n, align, (void *)p);
			} else if (r < F + 22) {
				p = r & 1 ? kzalloc(n, 0) : kcalloc(1, n, 0);
				if (!p && legit_oom(n, 16)) {
					ooms++;
					continue;
				}
				KT_REQUIRE(t, p, "kzalloc(%zu) failed", n);
				for (size_t w = 0; w < n / 8; w++)
					KT_REQUIRE(t, p[w] == 0, "kzalloc(%zu) word %zu not zero", n, w);
			} else {
				p = kmalloc(n, 0);
				if (!p && legit_oom(n, 16)) {
					ooms++;
					continue;
				}
			}
			KT_REQUIRE(t, p && ((uintptr_t)p & 15) == 0, "kmalloc(%zu) = %p with %u live", n,
				   (void *)p, nlive);
			KT_REQUIRE(t, kmalloc_usable_size(p) >= n, "usable size of %zu-byte block", n);
			live[nlive++] = (struct blk){ p, n, ++serial };
			stamp(p, n, p, serial);
		}
		if (op % 100000 == 99999 && !sound(t, op))
			return;
	}
	uint64_t c1 = arch_cycles();
	kt_log("kmalloc random: %llu ops in %llu Mcycles, %u live at the end, krealloc %llu in place / %llu moved, %llu out of memory\n",
	       (unsigned long long)iters, (unsigned long long)((c1 - c0) >> 20), nlive,
	       (unsigned long long)in_place, (unsigned long long)moved,
	       (unsigned long long)ooms);
	if (t->failed)
		return;

	while (nlive) {
		size_t bad = verify(live[0].p, live[0].n, live[0].n, live[0].p, live[0].serial);
		KT_REQUIRE(t, bad == SIZE_MAX, "block %p corrupted at the end", (void *)live[0].p);
		kfree(live[0].p);
		drop(0);
	}
	sound(t, iters);
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	/* blocks in this CPU's magazines keep their pools (and arenas) alive,
	 * the spare arena and the run cache hold pages: give all of it back */
	mm_reclaim();
	uint64_t spare = 0;
	KT_CHECK(t, pfa_free_pages() + spare == free0,
		 "after freeing everything: %llu free + %llu spare pages, %llu before",
		 (unsigned long long)pfa_free_pages(), (unsigned long long)spare,
		 (unsigned long long)free0);
	kt_log("kmalloc random: %llu arenas taken from the PFA, %llu given back, high water %llu\n",
	       (unsigned long long)st.arenas_allocated_total,
	       (unsigned long long)st.arenas_reclaimed_total,
	       (unsigned long long)st.arenas_highwater);
	kmalloc_trim();
	KT_CHECK(t, pfa_free_pages() == free0, "after kmalloc_trim: %llu free pages, %llu before",
		 (unsigned long long)pfa_free_pages(), (unsigned long long)free0);
}

/* CPython's list_resize(): new_allocated = (n + n/8 + 6) & ~3. */
static size_t list_capacity(size_t n)
{
	return n ? (n + (n >> 3) + 6) & ~(size_t)3 : 0;
}

KTEST(kmalloc, list_growth)
{
	ensure_init();
	kmalloc_trim();
	uint64_t free0 = pfa_free_pages();
	uint64_t items_max = t->iters ? t->iters : 400000;
	if (items_max > KMALLOC_MAX_SIZE / 8 * 7 / 8)   /* capacity overshoots by 1/8 */
		items_max = KMALLOC_MAX_SIZE / 8 * 7 / 8;
	uint64_t *items = NULL;
	size_t cap = 0, resizes = 0, in_place = 0;

	for (size_t n = 1; n <= items_max; n++) {
		if (n > cap) {
			size_t ncap = list_capacity(n);
			static const size_t first[] = { 4, 8, 16, 24, 32, 40, 52, 64, 76 };
			if (resizes < 9)
				KT_CHECK(t, ncap == first[resizes], "resize %zu to %zu items",
					 resizes, ncap);
			uint64_t *q = krealloc(items, ncap * sizeof *items, 0);
			KT_REQUIRE(t, q, "krealloc to %zu items failed", ncap);
			in_place += q == items;
			resizes++;
			items = q;
			cap = ncap;
		}
		items[n - 1] = n * 0x9E3779B97F4A7C15ull;
	}
	for (size_t i = 0; i < items_max; i++)
		KT_REQUIRE(t, items[i] == (i + 1) * 0x9E3779B97F4A7C15ull, "item %zu lost", i);
	kt_log("kmalloc list_growth: %llu items, %zu resizes, %zu in place\n",
	       (unsigned long long)items_max, resizes, in_place);
	KT_CHECK(t, in_place > 0, "no resize of %zu stayed in place", resizes);
	kfree(items);
	kmalloc_trim();
	KT_CHECK(t, pfa_free_pages() == free0, "pages not back");
}

KTEST(kmalloc, bad_pointer)
{
	ensure_init();
	struct kmalloc_report r;

	/* a reserved page of RAM, if the firmware map has one in managed RAM */
	for (unsigned i = 0; i < t->bi->nreserved; i++) {
		phys_addr_t pa = (t->bi->reserved[i].base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		const struct page *pg = pfa_page(pa);
		if (!pg || pg->owner != PG_RESERVED)
			continue;
		kmalloc_clear_report();
		kfree(pfa_virt(pa));
		kmalloc_last_report(&r);
		KT_CHECK(t, r.kind == KM_BAD_RESERVED && r.ptr == pfa_virt(pa),
			 "kfree of reserved %p: report %d", pfa_virt(pa), r.kind);
		break;
	}
	char *big = kmalloc(KMALLOC_SMALL_MAX + 3 * PAGE_SIZE, 0);   /* a large run */
	char *small = kmalloc(96, 0);
	kmalloc_clear_report();
	kfree(big + PAGE_SIZE);
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_BAD_INTERIOR, "interior pointer: report %d", r.kind);
	kfree(small + 32);
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_BAD_MISALIGNED, "misaligned pointer: report %d", r.kind);
	kfree(small);
	kfree(small);
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_DOUBLE_FREE || r.kind == KM_BAD_NOT_BLOCK,
		 "double free: report %d", r.kind);
	kfree(big);
	KT_CHECK(t, kmalloc_check() == 0, "kmalloc_check after bad pointers");
}

/* Each bad call below goes through one of these, so the report's caller
 * must be a few bytes into it.  The fast paths take their caller only on
 * the slow branches (MM_FAST_CALLER, strata/platform.h: on aarch64 and
 * riscv64 with gcc, the link register read in asm); the empty asm keeps
 * each call from being a tail call. */
static __attribute__((noinline)) int via_kfree(const void *p)
{
	int r = kfree(p);
	__asm__ volatile("");
	return r;
}

static __attribute__((noinline)) void via_free(void *p)
{
	free(p);
	__asm__ volatile("");
}

static __attribute__((noinline)) void *via_kmalloc(size_t n)
{
	void *p = kmalloc(n, 0);
	__asm__ volatile("");
	return p;
}

static __attribute__((noinline)) int via_cache_free(struct kmem_cache *c, void *p)
{
	int r = kmem_cache_free(c, p);
	__asm__ volatile("");
	return r;
}

static bool caller_in(const void *caller, void *fn)
{
	uintptr_t c = (uintptr_t)caller, f = (uintptr_t)fn;
	return c > f && c - f < 256;
}

KTEST(kmalloc, reports_name_the_caller)
{
	ensure_init();
	struct kmalloc_report r;
	char *small = kmalloc(96, 0);
	char *other = kmalloc(48, 0);
	struct kmem_cache *c = kmem_cache_create("caller", 40, 0, 0, NULL);
	char *obj = kmem_cache_alloc(c, 0);
	KT_CHECK(t, small && other && c && obj, "setup");
	if (!small || !other || !c || !obj)
		return;

	kmalloc_clear_report();
	KT_CHECK(t, via_kfree(small + 32) == -1, "kfree(interior) not refused");
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_BAD_MISALIGNED && caller_in(r.caller, (void *)via_kfree),
		 "kfree(interior): report %d, caller %p, via_kfree %p", r.kind, r.caller,
		 (void *)via_kfree);

	kfree(other);
	kmalloc_clear_report();
	via_kfree(other);                       /* the mark says: free already */
	kmalloc_last_report(&r);
	KT_CHECK(t, (r.kind == KM_DOUBLE_FREE || r.kind == KM_BAD_NOT_BLOCK) &&
		    caller_in(r.caller, (void *)via_kfree),
		 "double kfree: report %d, caller %p, via_kfree %p", r.kind, r.caller,
		 (void *)via_kfree);

	kmalloc_clear_report();
	via_free(small + 8);
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_BAD_MISALIGNED && caller_in(r.caller, (void *)via_free),
		 "free(interior): report %d, caller %p, via_free %p", r.kind, r.caller,
		 (void *)via_free);

	kmalloc_clear_report();
	KT_CHECK(t, via_kmalloc((size_t)1 << 62) == NULL, "kmalloc(2^62) succeeded");
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_FAIL_TOO_LARGE && caller_in(r.caller, (void *)via_kmalloc),
		 "kmalloc(2^62): report %d, caller %p, via_kmalloc %p", r.kind, r.caller,
		 (void *)via_kmalloc);

	kmalloc_clear_report();
	KT_CHECK(t, via_cache_free(c, obj + 8) == -1, "kmem_cache_free(interior) not refused");
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_BAD_MISALIGNED && caller_in(r.caller, (void *)via_cache_free),
		 "kmem_cache_free(interior): report %d, caller %p, via_cache_free %p", r.kind,
		 r.caller, (void *)via_cache_free);

	kmem_cache_free(c, obj);
	KT_CHECK(t, kmem_cache_destroy(c) == 0, "kmem_cache_destroy");
	kfree(small);
	KT_CHECK(t, kmalloc_check() == 0, "kmalloc_check after bad pointers");
}

/* kmalloc_reserve(): a reserved section makes no PFA call (the proof is
 * shared with tests/host/test_reserve.c).  The reserve is the calling
 * CPU's; the demo kernel never moves a test to another CPU, and the
 * other CPUs are idle during this suite. */
static struct ktest_ctx *rs_ctx;
#define RS_CHECK(cond, ...) KT_CHECK(rs_ctx, cond, __VA_ARGS__)
#include "reserve_section.h"

KTEST(kmalloc, reserve)
{
	static void *v[20000];

	ensure_init();
	rs_ctx = t;
	rs_prove(v, 20000);
}

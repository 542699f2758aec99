/*
 * pfa.c - suite "pfa": the page-frame allocator on the live machine.
 *
 * The kernel has already handed the firmware's memory map to the PFA
 * (kernel/mm_glue.c), so these tests use real RAM through the real direct
 * map, on both architectures:
 *
 *   exhaust   allocate blocks of random orders until nothing is left,
 *             stamp every page with a pattern derived from its address
 *             and the seed, verify every page of every block, free them
 *             in random order, and require the free lists (blocks per
 *             order, pages per region) to be what they were before;
 *   churn     random alloc/free with a bounded live set, patterns checked;
 *   bad_input every kind of bad pfa_free()/pfa_set_owner() call, with the
 *             exact report and an untouched state;
 *   zero_owner_lookup  PFA_ZERO, pfa_set_owner, descriptor lookups.
 *
 * How much of each page is stamped (fill=full|sparse on the command line,
 * default full): "full" writes and checks every 64-bit word of every page;
 * "sparse" writes every word of the first page of each block and three
 * words (first, last, one that depends on the address) of the others.
 * Measured on x86_64 TCG, -m 512M, under -icount: full 324M + 388M guest
 * instructions for stamping and verifying, sparse 11M + 12M; at -m 5G
 * full is about 3.2G instructions and the whole suite takes 7-15 s wall
 * clock (most of it QEMU touching fresh host memory, which sparse pays
 * too), so full is the default.  Either way every page's first and last
 * word carry its own address, so a block handed out twice or overlapping
 * the PFA's descriptors is caught.
 *
 * Where the list of blocks lives: in pages taken from the PFA itself (512
 * entries each, "pa | order"), found through a static directory, so the
 * test needs no other allocator and counts those pages like any other.
 */
#include <kernel/console.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/cmdline.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <string.h>
#include <strata/pfa.h>

#define ENTRIES_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define DIR_PAGES 8192        /* 4M blocks: enough for 16 GiB of order 0 */
#define WORDS (PAGE_SIZE / sizeof(uint64_t))

/* ------------------------------------------------------------------ */
/* the block list, stored in PFA pages                                 */
/* ------------------------------------------------------------------ */

static uint64_t dir[DIR_PAGES];   /* physical addresses of index pages */

struct blist {
	uint64_t n;
	unsigned ndir;
};

static uint64_t *entry(struct blist *l, uint64_t i)
{
	uint64_t *page = pfa_virt(dir[i / ENTRIES_PER_PAGE]);
	return &page[i % ENTRIES_PER_PAGE];
}

/* Room for one more entry; false when out of memory (or directory). */
static int blist_reserve(struct blist *l)
{
	if (l->n < (uint64_t)l->ndir * ENTRIES_PER_PAGE)
		return 1;
	if (l->ndir == DIR_PAGES)
		return 0;
	uint64_t pa = pfa_alloc(0, 0);
	if (!pa)
		return 0;
	dir[l->ndir++] = pa;
	return 1;
}

static void blist_free_index(struct blist *l)
{
	while (l->ndir)
		pfa_free(dir[--l->ndir], 0);
	l->n = 0;
}

/* ------------------------------------------------------------------ */
/* patterns                                                            */
/* ------------------------------------------------------------------ */

static int fill_full;

static void fill_mode(struct ktest_ctx *t)
{
	char v[16];
	fill_full = !(cmdline_get(t->bi->cmdline, "fill", v, sizeof v) && !strcmp(v, "sparse"));
}

static inline uint64_t word_pattern(uint64_t pa, uint64_t seed)
{
	return (pa + seed) * 0x9E3779B97F4A7C15ULL;
}

static unsigned middle_word(uint64_t pa) { return 1 + (unsigned)((pa >> 12) % (WORDS - 2)); }

static void stamp_page(uint64_t pa, uint64_t seed, int whole)
{
	uint64_t *w = pfa_virt(pa);
	if (whole) {
		for (unsigned i = 0; i < WORDS; i++)
			w[i] = word_pattern(pa + i * 8, seed);
		return;
	}
	unsigned m = middle_word(pa);
	w[0] = word_pattern(pa, seed);
	w[m] = word_pattern(pa + m * 8, seed);
	w[WORDS - 1] = word_pattern(pa + (WORDS - 1) * 8, seed);
}

/* Address of the first wrong word of the page, or 0. */
static uint64_t verify_page(uint64_t pa, uint64_t seed, int whole)
{
	const uint64_t *w = pfa_virt(pa);
	if (whole) {
		for (unsigned i = 0; i < WORDS; i++)
			if (w[i] != word_pattern(pa + i * 8, seed))
				return pa + i * 8;
		return 0;
	}
	unsigned m = middle_word(pa);
	if (w[0] != word_pattern(pa, seed))
		return pa;
	if (w[m] != word_pattern(pa + m * 8, seed))
		return pa + m * 8;
	if (w[WORDS - 1] != word_pattern(pa + (WORDS - 1) * 8, seed))
		return pa + (WORDS - 1) * 8;
	return 0;
}

static void stamp_block(uint64_t pa, unsigned order, uint64_t seed)
{
	for (uint64_t j = 0; j < (1ULL << order); j++)
		stamp_page(pa + j * PAGE_SIZE, seed, fill_full || j == 0);
}

static uint64_t verify_block(uint64_t pa, unsigned order, uint64_t seed)
{
	for (uint64_t j = 0; j < (1ULL << order); j++) {
		uint64_t bad = verify_page(pa + j * PAGE_SIZE, seed, fill_full || j == 0);
		if (bad)
			return bad;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* comparing states                                                    */
/* ------------------------------------------------------------------ */

static struct pfa_stats st_before, st_now;   /* ~3 KiB each: not on the stack */

/* Same free set <=> same free lists (the fully coalesced set of a set of
 * free pages is unique), so compare blocks per order (per-region pages
 * are pfa_get_region_stats()'s, checked against free_pages in test_pfa). */
static void check_same_free_state(struct ktest_ctx *t, const struct pfa_stats *a,
				  const struct pfa_stats *b)
{
	KT_CHECK(t, a->free_pages == b->free_pages, "free pages %llu, before %llu",
		 (unsigned long long)b->free_pages, (unsigned long long)a->free_pages);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		KT_CHECK(t, a->free_blocks[k] == b->free_blocks[k],
			 "order %u: %llu free blocks, before %llu", k,
			 (unsigned long long)b->free_blocks[k],
			 (unsigned long long)a->free_blocks[k]);
	KT_CHECK(t, a->nregions == b->nregions, "regions");
}

/* ------------------------------------------------------------------ */
/* exhaust                                                             */
/* ------------------------------------------------------------------ */

static unsigned random_order(struct ktest_ctx *t, int cap)
{
	if (cap <= 0 || kt_rand_below(t, 2) == 0)
		return 0;
	return 1 + (unsigned)kt_rand_below(t, (uint64_t)cap);
}

KTEST(pfa, exhaust)
{
	struct blist l = { 0, 0 };
	uint64_t seed = t->seed * 0x100000001B3ULL + 17;
	int cap = PFA_MAX_ORDER;
	uint64_t pages = 0, fails = 0;

	fill_mode(t);
	KT_REQUIRE(t, pfa_check() == 0, "pfa_check before");
	pfa_get_stats(&st_before);

	uint64_t c0 = arch_cycles();
	for (;;) {
		if (!blist_reserve(&l))
			break;
		unsigned order = random_order(t, cap);
		uint64_t pa = pfa_alloc(order, 0);
		if (!pa) {
			fails++;
			if (order == 0)
				break;
			cap = (int)order - 1;   /* nothing that large is left */
			continue;
		}
		if ((pa & ((PAGE_SIZE << order) - 1)) != 0 || !pfa_page(pa)) {
			KT_CHECK(t, 0, "block 0x%llx order %u misaligned or not RAM",
				 (unsigned long long)pa, order);
			break;
		}
		stamp_block(pa, order, seed);
		*entry(&l, l.n++) = pa | order;
		pages += 1ULL << order;
	}
	uint64_t c1 = arch_cycles();
	pfa_get_stats(&st_now);
	KT_CHECK(t, st_now.free_pages == 0 || l.ndir == DIR_PAGES,
		 "stopped with %llu pages free", (unsigned long long)st_now.free_pages);
	KT_CHECK(t, st_now.low_water_pages == st_now.free_pages, "low water %llu",
		 (unsigned long long)st_now.low_water_pages);
	KT_CHECK(t, pages + l.ndir == st_before.free_pages - st_now.free_pages,
		 "got %llu pages + %u index pages, free went %llu -> %llu", (unsigned long long)pages,
		 l.ndir, (unsigned long long)st_before.free_pages,
		 (unsigned long long)st_now.free_pages);
	KT_CHECK(t, pfa_alloc(0, 0) == 0 || st_now.free_pages, "alloc succeeded when empty");
	KT_CHECK(t, pfa_check() == 0, "pfa_check when exhausted");

	/* random order: Fisher-Yates over the list */
	for (uint64_t i = l.n; i > 1; i--) {
		uint64_t j = kt_rand_below(t, i);
		uint64_t *a = entry(&l, i - 1), *b = entry(&l, j), x = *a;
		*a = *b;
		*b = x;
	}
	uint64_t c2 = arch_cycles();
	uint64_t bad = 0;
	for (uint64_t i = 0; i < l.n; i++) {
		uint64_t e = *entry(&l, i);
		uint64_t pa = e & ~(uint64_t)(PAGE_SIZE - 1);
		unsigned order = (unsigned)(e & (PAGE_SIZE - 1));
		uint64_t w = verify_block(pa, order, seed);
		if (w && !bad++)
			KT_CHECK(t, 0, "word 0x%llx of block 0x%llx (order %u) overwritten",
				 (unsigned long long)w, (unsigned long long)pa, order);
		pfa_free(pa, order);
	}
	uint64_t c3 = arch_cycles();
	uint64_t nblocks = l.n;
	blist_free_index(&l);

	pfa_get_stats(&st_now);
	check_same_free_state(t, &st_before, &st_now);
	KT_CHECK(t, st_now.bad_calls == st_before.bad_calls, "bad calls during the test");
	KT_CHECK(t, pfa_check() == 0, "pfa_check after freeing everything");
	kt_log("pfa exhaust: %llu blocks, %llu pages (%llu MiB), %llu failed allocs, fill=%s\n",
	       (unsigned long long)nblocks, (unsigned long long)pages,
	       (unsigned long long)(pages >> (20 - PAGE_SHIFT)), (unsigned long long)fails,
	       fill_full ? "full" : "sparse");
	kt_log("pfa exhaust: alloc+stamp %llu Mcycles, verify+free %llu Mcycles\n",
	       (unsigned long long)((c1 - c0) >> 20), (unsigned long long)((c3 - c2) >> 20));
}

/* ------------------------------------------------------------------ */
/* churn                                                               */
/* ------------------------------------------------------------------ */

#define CHURN_LIVE 2048
static uint64_t churn_live[CHURN_LIVE];

KTEST(pfa, churn)
{
	uint64_t iters = t->iters ? t->iters : 200000;
	uint64_t seed = t->seed ^ 0xC0FFEE;
	unsigned n = 0;

	fill_mode(t);
	pfa_get_stats(&st_before);
	for (uint64_t it = 0; it < iters && !t->failed; it++) {
		if (n == CHURN_LIVE || (n && kt_rand_below(t, 2))) {
			unsigned i = (unsigned)kt_rand_below(t, n);
			uint64_t e = churn_live[i];
			uint64_t pa = e & ~(uint64_t)(PAGE_SIZE - 1);
			unsigned order = (unsigned)(e & (PAGE_SIZE - 1));
			uint64_t w = verify_page(pa, seed, 1);
			if (!w && order)
				w = verify_page(pa + (PAGE_SIZE << order) - PAGE_SIZE, seed, 0);
			KT_CHECK(t, !w, "word 0x%llx overwritten", (unsigned long long)w);
			pfa_free(pa, order);
			churn_live[i] = churn_live[--n];
		} else {
			unsigned order = kt_rand_below(t, 4) ? (unsigned)kt_rand_below(t, 4)
							    : (unsigned)kt_rand_below(t, PFA_MAX_ORDER + 1);
			uint64_t pa = pfa_alloc(order, 0);
			if (!pa)
				continue;
			stamp_page(pa, seed, 1);
			if (order)
				stamp_page(pa + (PAGE_SIZE << order) - PAGE_SIZE, seed, 0);
			churn_live[n++] = pa | order;
		}
		if (it % 20000 == 0)
			KT_CHECK(t, pfa_check() == 0, "pfa_check at iteration %llu",
				 (unsigned long long)it);
	}
	while (n) {
		uint64_t e = churn_live[--n];
		pfa_free(e & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(e & (PAGE_SIZE - 1)));
	}
	pfa_get_stats(&st_now);
	check_same_free_state(t, &st_before, &st_now);
	KT_CHECK(t, pfa_check() == 0, "pfa_check at the end");
}

/* ------------------------------------------------------------------ */
/* bad input                                                           */
/* ------------------------------------------------------------------ */

/* Bad calls go through these, so the report's caller must be a few bytes
 * into one of them. */
static __attribute__((noinline)) void bad_free(uint64_t pa, unsigned order)
{
	pfa_free(pa, order);
	__asm__ volatile("");
}

static __attribute__((noinline)) void bad_set_owner(uint64_t pa, unsigned order,
						    enum page_owner o)
{
	pfa_set_owner(pa, order, o);
	__asm__ volatile("");
}

static int caller_ok(uintptr_t c)
{
	uintptr_t f = (uintptr_t)bad_free, s = (uintptr_t)bad_set_owner;
	return (c > f && c - f < 256) || (c > s && c - s < 256);
}

static void expect(struct ktest_ctx *t, int line, enum pfa_report_kind kind,
		   uint64_t addr, unsigned order, uint64_t detail, uint64_t bad_before)
{
	struct pfa_report r;
	pfa_last_report(&r);
	pfa_get_stats(&st_now);
	if (r.kind != kind || r.addr != addr || r.order != order || r.detail != detail ||
	    !caller_ok(r.caller))
		kt_fail(t, __FILE__, line,
			"report kind %d addr 0x%llx order %u detail 0x%llx caller 0x%llx, "
			"expected kind %d addr 0x%llx order %u detail 0x%llx",
			r.kind, (unsigned long long)r.addr, r.order, (unsigned long long)r.detail,
			(unsigned long long)r.caller, kind, (unsigned long long)addr, order,
			(unsigned long long)detail);
	if (st_now.bad_calls != bad_before + 1)
		kt_fail(t, __FILE__, line, "bad_calls %llu, expected %llu",
			(unsigned long long)st_now.bad_calls, (unsigned long long)bad_before + 1);
}

#define EXPECT(call, kind, addr, order, detail)                                 \
	do {                                                                    \
		pfa_get_stats(&st_now);                                         \
		uint64_t b0 = st_now.bad_calls, f0 = st_now.free_pages;         \
		call;                                                           \
		expect(t, __LINE__, kind, addr, order, detail, b0);             \
		KT_CHECK(t, st_now.free_pages == f0, "%s changed free pages", #call); \
	} while (0)

/* A reserved page of RAM, from the firmware's reservations (page 0 is
 * always reserved too). */
static uint64_t some_reserved_page(const struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->nreserved; i++) {
		uint64_t pa = bi->reserved[i].base & ~(uint64_t)(PAGE_SIZE - 1);
		struct page *pg = pfa_page(pa);
		if (pg && pg->owner == PG_RESERVED)
			return pa;
	}
	return 0;
}

/* An address inside the span but outside RAM, or above all RAM. */
static uint64_t some_hole(const struct boot_info *bi)
{
	for (unsigned i = 0; i + 1 < bi->nram; i++) {
		uint64_t end = (bi->ram[i].base + bi->ram[i].size + PAGE_SIZE - 1) &
			       ~(uint64_t)(PAGE_SIZE - 1);
		if (end < bi->ram[i + 1].base)
			return end;
	}
	const struct boot_region *top = &bi->ram[bi->nram - 1];
	return ((top->base + top->size) & ~(uint64_t)(PAGE_SIZE - 1)) + (64ULL << 20);
}

KTEST(pfa, bad_input)
{
	const struct boot_info *bi = t->bi;
	KT_REQUIRE(t, pfa_check() == 0, "pfa_check before");
	pfa_get_stats(&st_before);

	uint64_t p0 = pfa_alloc(0, 0), p2 = pfa_alloc(2, 0), p3 = pfa_alloc(3, 0);
	KT_REQUIRE(t, p0 && p2 && p3, "alloc");
	pfa_free(p0, 0);

	EXPECT(bad_free(p0, 0), PFA_REPORT_DOUBLE_FREE, p0, 0, 0);
	uint64_t res = some_reserved_page(bi);
	if (res)
		EXPECT(bad_free(res, 0), PFA_REPORT_RESERVED, res, 0, 0);
	uint64_t hole = some_hole(bi);
	EXPECT(bad_free(hole, 0), PFA_REPORT_NOT_RAM, hole, 0, 0);
	EXPECT(bad_free(0, 0), pfa_page(0) ? PFA_REPORT_RESERVED : PFA_REPORT_NOT_RAM,
	       0, 0, 0);
	EXPECT(bad_free(p3 + 2 * PAGE_SIZE, 0), PFA_REPORT_TAIL, p3 + 2 * PAGE_SIZE, 0, p3);
	EXPECT(bad_free(p3 + 4 * PAGE_SIZE, 2), PFA_REPORT_TAIL, p3 + 4 * PAGE_SIZE, 2, p3);
	EXPECT(bad_free(p2 + 24, 2), PFA_REPORT_MISALIGNED, p2 + 24, 2, 0);
	EXPECT(bad_free(p3 + PAGE_SIZE, 3), PFA_REPORT_MISALIGNED, p3 + PAGE_SIZE, 3, 0);
	EXPECT(bad_free(p2, 1), PFA_REPORT_WRONG_ORDER, p2, 1, 2);
	EXPECT(bad_free(p3, 2), PFA_REPORT_WRONG_ORDER, p3, 2, 3);
	EXPECT(bad_free(p2, PFA_MAX_ORDER + 1), PFA_REPORT_BAD_ORDER, p2, PFA_MAX_ORDER + 1, 0);
	EXPECT(bad_set_owner(p0, 0, PG_LARGE), PFA_REPORT_BAD_OWNER, p0, 0, PG_LARGE);
	EXPECT(bad_set_owner(p2, 2, PG_TAIL), PFA_REPORT_BAD_OWNER, p2, 2, PG_TAIL);
	KT_CHECK(t, pfa_check() == 0, "pfa_check after bad calls");

	pfa_free(p2, 2);
	pfa_free(p3, 3);
	pfa_get_stats(&st_now);
	check_same_free_state(t, &st_before, &st_now);
	KT_CHECK(t, pfa_check() == 0, "pfa_check at the end");
}

/* ------------------------------------------------------------------ */
/* zeroing, owners, lookups                                            */
/* ------------------------------------------------------------------ */

KTEST(pfa, zero_owner_lookup)
{
	pfa_get_stats(&st_before);
	for (unsigned k = 0; k <= 5; k++) {
		uint64_t pa = pfa_alloc(k, 0);
		KT_REQUIRE(t, pa, "alloc %u", k);
		memset(pfa_virt(pa), 0x5a, PAGE_SIZE << k);
		pfa_free(pa, k);
		pa = pfa_alloc(k, PFA_ZERO);
		const uint64_t *w = pfa_virt(pa);
		uint64_t nz = 0;
		for (uint64_t i = 0; i < (PAGE_SIZE << k) / 8; i++)
			nz += w[i] != 0;
		KT_CHECK(t, nz == 0, "order %u: %llu words not zeroed", k, (unsigned long long)nz);

		struct page *h = pfa_page(pa);
		KT_CHECK(t, h && h->owner == PG_PFA && h->order == k, "head of order %u", k);
		KT_CHECK(t, pfa_page_phys(h) == pa, "page_phys");
		for (uint64_t j = 1; j < (1ULL << k); j++) {
			struct page *tp = pfa_virt_to_page((char *)pfa_virt(pa) + j * PAGE_SIZE + 8);
			uint32_t d = 0;
			struct page *hp = pfa_virt_to_head((char *)pfa_virt(pa) + j * PAGE_SIZE + 8, &d);
			KT_CHECK(t, tp == h + j && tp->owner == PG_FREE_TAIL && hp == h && d == j,
				 "inner page %llu of order %u", (unsigned long long)j, k);
		}
		pfa_set_owner(pa, k, PG_LARGE);
		KT_CHECK(t, h->owner == PG_LARGE, "set_owner");
		KT_CHECK(t, pfa_check() == 0, "pfa_check with a PG_LARGE block");
		pfa_free(pa, k);
	}
	/* every RAM page of the map has a descriptor that maps back */
	const struct boot_info *bi = t->bi;
	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t lo = (bi->ram[i].base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
		uint64_t hi = (bi->ram[i].base + bi->ram[i].size) & ~(uint64_t)(PAGE_SIZE - 1);
		uint64_t step = (hi - lo) / 64 + PAGE_SIZE;
		step &= ~(uint64_t)(PAGE_SIZE - 1);
		for (uint64_t pa = lo; pa < hi; pa += step) {
			struct page *pg = pfa_page(pa);
			KT_CHECK(t, pg && pfa_page_phys(pg) == pa, "descriptor of 0x%llx",
				 (unsigned long long)pa);
		}
	}
	pfa_get_stats(&st_now);
	check_same_free_state(t, &st_before, &st_now);
}

KTEST(pfa, stats)
{
	pfa_get_stats(&st_now);
	uint64_t managed = st_now.total_pages * PAGE_SIZE;
	uint64_t milli = managed ? st_now.metadata_bytes * 100000 / managed : 0;
	kt_log("pfa: %s map: metadata %llu bytes / managed %llu bytes = %llu.%03llu%%\n",
	       t->bi->arch, (unsigned long long)st_now.metadata_bytes,
	       (unsigned long long)managed, (unsigned long long)(milli / 1000),
	       (unsigned long long)(milli % 1000));
	pfa_print_stats(console_write);
	KT_CHECK(t, st_now.free_pages + st_now.reserved_pages <= st_now.total_pages, "counts");
	KT_CHECK(t, st_now.low_water_pages <= st_now.free_pages, "low water");
	KT_CHECK(t, st_now.metadata_bytes * 1000 <= managed * 5, "metadata above 0.5%%");
	KT_CHECK(t, pfa_check() == 0, "pfa_check");
}

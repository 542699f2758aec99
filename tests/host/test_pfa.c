/*
 * test_pfa.c - host tests of the page-frame allocator (mm/pfa*.c).
 *
 * "Physical memory" is a piece of this process's address space from mmap
 * (direct-map offset 0).  Every test builds a memory map inside it, runs
 * the PFA, and checks it against a reference model that knows, per page,
 * whether the PFA may hand it out (RAM, not reserved, not the PFA's own
 * descriptors) and whether it is handed out now:
 *
 *     arena   |.. region ..|hole|.. region ....................|
 *     model    A A R R A A  - -  A A A A M M M A A A A A A A A      A allowed
 *     alloc        . . x x            x x . .         x              R reserved
 *                                                                    M metadata
 * Checks: every block naturally aligned, made only of allowed pages not
 * handed out already; free pages in stats == model; the free lists at boot
 * and after freeing everything are exactly the canonical fully coalesced
 * set of the allowed pages; pfa_check() after every phase.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdbool.h>
#include <sys/mman.h>

#include <strata/pfa.h>
#include <strata/platform.h>

/* arch/host/platform.c (host.h is not on every include path) */
void host_capture_start(char *buf, size_t cap);
size_t host_capture_stop(void);

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)
#define PG PAGE_SIZE
#define MAXBLK_BYTES ((uint64_t)PG << PFA_MAX_ORDER)

/* ------------------------------------------------------------------ */
/* arena: a naturally aligned piece of address space                   */
/* ------------------------------------------------------------------ */

struct arena {
	void *map;
	size_t map_size;
	uint64_t base;   /* aligned to `align` */
	uint64_t size;
};

static bool arena_get(struct arena *a, uint64_t size, uint64_t align)
{
	a->map_size = size + align;
	a->map = mmap(NULL, a->map_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a->map == MAP_FAILED)
		return false;
	a->base = ((uint64_t)(uintptr_t)a->map + align - 1) & ~(align - 1);
	a->size = size;
	return true;
}

static void arena_put(struct arena *a)
{
	munmap(a->map, a->map_size);
}

/* ------------------------------------------------------------------ */
/* memory maps and the reference model                                 */
/* ------------------------------------------------------------------ */

#define MAX_RANGES 256

struct range {
	uint64_t base, size;
};

struct map {
	struct arena *ar;
	int nreg, nres;
	struct range reg[MAX_RANGES];
	struct range res[MAX_RANGES];
};

enum { M_RAM = 1, M_ALLOWED = 2, M_ALLOC = 4, M_META = 8 };

struct model {
	struct arena *ar;
	uint64_t npages;
	uint8_t *st;            /* per arena page */
	uint64_t free_pages;    /* allowed and not allocated */
	uint64_t meta_pages;
	uint64_t low;           /* lowest free_pages seen */
	uint8_t *boot_owner, *boot_order;
};

static void add_reg(struct map *m, uint64_t off, uint64_t size)
{
	m->reg[m->nreg++] = (struct range){ m->ar->base + off, size };
}

static void add_res(struct map *m, uint64_t off, uint64_t size)
{
	m->res[m->nres++] = (struct range){ m->ar->base + off, size };
}

static int map_setup(const struct map *m)
{
	pfa_setup_begin(0);
	for (int i = 0; i < m->nreg; i++)
		if (pfa_add_region(m->reg[i].base, m->reg[i].size) < 0)
			return -2;
	for (int i = 0; i < m->nres; i++)
		pfa_reserve(m->res[i].base, m->res[i].size);
	return pfa_setup_end();
}

static uint64_t pidx(const struct model *md, uint64_t pa)
{
	return (pa - md->ar->base) / PG;
}

/* Allowed = whole page inside a region, untouched by any reservation. */
static void model_from_map(struct model *md, const struct map *m)
{
	md->ar = m->ar;
	md->npages = m->ar->size / PG;
	md->st = calloc(md->npages, 1);
	md->boot_owner = calloc(md->npages, 1);
	md->boot_order = calloc(md->npages, 1);
	for (int i = 0; i < m->nreg; i++) {
		uint64_t lo = (m->reg[i].base + PG - 1) & ~(uint64_t)(PG - 1);
		uint64_t hi = (m->reg[i].base + m->reg[i].size) & ~(uint64_t)(PG - 1);
		for (uint64_t pa = lo; pa < hi; pa += PG)
			md->st[pidx(md, pa)] = M_RAM | M_ALLOWED;
	}
	for (int i = 0; i < m->nres; i++) {
		if (!m->res[i].size)
			continue;
		uint64_t lo = m->res[i].base & ~(uint64_t)(PG - 1);
		uint64_t hi = (m->res[i].base + m->res[i].size + PG - 1) & ~(uint64_t)(PG - 1);
		for (uint64_t pa = lo; pa < hi; pa += PG)
			if (pa >= md->ar->base && pa < md->ar->base + md->ar->size)
				md->st[pidx(md, pa)] &= (uint8_t)~M_ALLOWED;
	}
}

static void model_free(struct model *md)
{
	free(md->st);
	free(md->boot_owner);
	free(md->boot_order);
}

static uint64_t model_pa(const struct model *md, uint64_t i)
{
	return md->ar->base + i * PG;
}

/* After pfa_setup_end(): find the descriptors (reserved pages the map did
 * not reserve, one contiguous run), check every page's state, snapshot it. */
static void model_boot(struct model *md)
{
	uint64_t first_meta = UINT64_MAX, last_meta = 0;

	md->meta_pages = 0;
	for (uint64_t i = 0; i < md->npages; i++) {
		struct page *pg = pfa_page(model_pa(md, i));
		if (!(md->st[i] & M_RAM)) {
			CHECK(pg == NULL, "page %llu: not RAM but has a descriptor (owner %u)",
			      (unsigned long long)i, pg ? pg->owner : 0);
			continue;
		}
		if (!pg) {
			CHECK(0, "page %llu: RAM without descriptor", (unsigned long long)i);
			continue;
		}
		if (!(md->st[i] & M_ALLOWED)) {
			CHECK(pg->owner == PG_RESERVED, "page %llu reserved but owner %u",
			      (unsigned long long)i, pg->owner);
		} else if (pg->owner == PG_RESERVED) {
			md->st[i] = (uint8_t)((md->st[i] & ~M_ALLOWED) | M_META);
			md->meta_pages++;
			if (first_meta == UINT64_MAX)
				first_meta = i;
			last_meta = i;
		} else {
			CHECK(pg->owner == PG_FREE || pg->owner == PG_FREE_TAIL,
			      "page %llu allowed but owner %u", (unsigned long long)i, pg->owner);
		}
		md->boot_owner[i] = pg->owner;
		md->boot_order[i] = pg->order;
	}
	if (md->meta_pages)
		CHECK(last_meta - first_meta + 1 == md->meta_pages,
		      "descriptor pages not contiguous: %llu..%llu, %llu pages",
		      (unsigned long long)first_meta, (unsigned long long)last_meta,
		      (unsigned long long)md->meta_pages);
	md->free_pages = 0;
	for (uint64_t i = 0; i < md->npages; i++)
		md->free_pages += (md->st[i] & M_ALLOWED) != 0;
	md->low = md->free_pages;
}

/* The unique fully coalesced free set of the pages that are allowed and
 * not allocated, from the definition: block (a, k) is free iff aligned,
 * all its pages free, and k == max or its parent is not all free.
 * Compares with the descriptors' PG_FREE heads. */
static void check_canonical(const struct model *md)
{
	uint64_t *pre = malloc((md->npages + 1) * sizeof *pre);
	pre[0] = 0;
	for (uint64_t i = 0; i < md->npages; i++)
		pre[i + 1] = pre[i] + ((md->st[i] & (M_ALLOWED | M_ALLOC)) == M_ALLOWED);
	uint64_t base_pfn = md->ar->base / PG;  /* arena aligned to a max block */
	uint64_t expect = 0, found = 0;

	for (uint64_t i = 0; i < md->npages; i++) {
		struct page *pg = pfa_page(model_pa(md, i));
		bool is_head = pg && pg->owner == PG_FREE;
		int want = -1;
		for (int k = PFA_MAX_ORDER; k >= 0 && want < 0; k--) {
			uint64_t n = 1ull << k;
			if (((base_pfn + i) & (n - 1)) || i + n > md->npages)
				continue;
			if (pre[i + n] - pre[i] != n)
				continue;
			uint64_t pn = n * 2, pi = i & ~(pn - 1);
			bool parent_free = k < PFA_MAX_ORDER && pi + pn <= md->npages &&
					   pre[pi + pn] - pre[pi] == pn;
			if (!parent_free)
				want = k;
			break;   /* a smaller block at i is never canonical then */
		}
		if (want >= 0)
			expect++;
		if (is_head)
			found++;
		if (want >= 0 || is_head) {
			CHECK(is_head && pg->order == want,
			      "page %llu: free head expected order %d, descriptor owner %u order %u",
			      (unsigned long long)i, want, pg ? pg->owner : 0, pg ? pg->order : 0);
		}
	}
	CHECK(expect == found, "canonical: %llu free blocks expected, %llu found",
	      (unsigned long long)expect, (unsigned long long)found);
	free(pre);
}

/* Same owner/order on every page as right after setup. */
static void check_boot_state(const struct model *md)
{
	uint64_t diff = 0, first = 0;
	for (uint64_t i = 0; i < md->npages; i++) {
		struct page *pg = pfa_page(model_pa(md, i));
		if (!pg)
			continue;
		bool head = pg->owner == PG_FREE;
		if (pg->owner != md->boot_owner[i] || (head && pg->order != md->boot_order[i]))
			if (!diff++)
				first = i;
	}
	CHECK(diff == 0, "%llu pages differ from the boot state, first %llu",
	      (unsigned long long)diff, (unsigned long long)first);
}

static void check_stats_match(const struct model *md)
{
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.free_pages == md->free_pages, "stats free %llu, model %llu",
	      (unsigned long long)st.free_pages, (unsigned long long)md->free_pages);
	CHECK(st.low_water_pages == md->low, "low water %llu, model %llu",
	      (unsigned long long)st.low_water_pages, (unsigned long long)md->low);
	uint64_t sum = 0, blocks = 0;
	struct pfa_region_stats rs;
	unsigned nr = 0;
	for (; pfa_get_region_stats(nr, &rs) == 0; nr++)
		sum += rs.free_pages;
	CHECK(nr == st.nregions, "%u regions listed, stats say %u", nr, st.nregions);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		blocks += st.free_blocks[k] << k;
	CHECK(sum == st.free_pages, "per-region free %llu != %llu",
	      (unsigned long long)sum, (unsigned long long)st.free_pages);
	CHECK(blocks == st.free_pages, "per-order free %llu != %llu",
	      (unsigned long long)blocks, (unsigned long long)st.free_pages);
	if (st.free_pages)
		CHECK(st.free_blocks[st.largest_free_order] &&
		      (st.largest_free_order == PFA_MAX_ORDER ||
		       !st.free_blocks[st.largest_free_order + 1]),
		      "largest free order %u wrong", st.largest_free_order);
}

static int quiet_check(void)
{
	static char buf[8192];
	host_capture_start(buf, sizeof buf);
	int n = pfa_check();
	host_capture_stop();
	if (n)
		fprintf(stderr, "%s", buf);
	return n;
}

/* ------------------------------------------------------------------ */
/* randomized sequences                                                */
/* ------------------------------------------------------------------ */

struct blk {
	uint64_t pa;
	unsigned order;
	uint64_t tag;
};

struct live {
	struct blk *b;
	size_t n, cap;
};

static uint64_t pattern(uint64_t pa, uint64_t tag) { return pa * 0x9E3779B97F4A7C15ull ^ tag; }

static unsigned random_order(unsigned max)
{
	if (rnd_below(100) < 60)
		return 0;
	return (unsigned)rnd_below(max + 1);
}

/* Allocate one block, check it against the model, write its pattern. */
static bool do_alloc(struct model *md, struct live *lv, unsigned order)
{
	struct pfa_stats st;
	unsigned flags = rnd() & 1 ? PFA_ZERO : 0;
	uint64_t pa = pfa_alloc(order, flags);
	if (!pa) {
		pfa_get_stats(&st);
		CHECK(!st.free_pages || st.largest_free_order < order,
		      "alloc(%u) failed with a free block of order %u", order,
		      st.largest_free_order);
		return false;
	}
	uint64_t n = 1ull << order;
	CHECK(pa % (PG << order) == 0, "block 0x%llx (order %u) not aligned",
	      (unsigned long long)pa, order);
	if (!(pa >= md->ar->base && pa + n * PG <= md->ar->base + md->ar->size)) {
		CHECK(0, "block 0x%llx outside the arena", (unsigned long long)pa);
		return false;
	}
	for (uint64_t j = 0; j < n; j++) {
		uint8_t *s = &md->st[pidx(md, pa) + j];
		CHECK(*s & M_ALLOWED, "page 0x%llx handed out but not allowed (state %u)",
		      (unsigned long long)(pa + j * PG), *s);
		CHECK(!(*s & M_ALLOC), "page 0x%llx handed out twice",
		      (unsigned long long)(pa + j * PG));
		*s |= M_ALLOC;
	}
	md->free_pages -= n;
	if (md->free_pages < md->low)
		md->low = md->free_pages;
	uint64_t tag = rnd();
	for (uint64_t j = 0; j < n; j++) {
		uint64_t *w = (uint64_t *)(uintptr_t)(pa + j * PG);
		if (flags & PFA_ZERO)
			CHECK(w[0] == 0 && w[PG / 8 - 1] == 0 && w[j % (PG / 8)] == 0,
			      "PFA_ZERO page 0x%llx not zero", (unsigned long long)(pa + j * PG));
		w[0] = pattern(pa + j * PG, tag);
		w[PG / 8 - 1] = ~pattern(pa + j * PG, tag);
	}
	if (lv->n == lv->cap) {
		lv->cap = lv->cap ? lv->cap * 2 : 1024;
		lv->b = realloc(lv->b, lv->cap * sizeof *lv->b);
	}
	lv->b[lv->n++] = (struct blk){ pa, order, tag };
	return true;
}

static void do_free(struct model *md, struct live *lv, size_t i)
{
	struct blk b = lv->b[i];
	uint64_t n = 1ull << b.order;
	for (uint64_t j = 0; j < n; j++) {
		uint64_t *w = (uint64_t *)(uintptr_t)(b.pa + j * PG);
		CHECK(w[0] == pattern(b.pa + j * PG, b.tag) &&
		      w[PG / 8 - 1] == ~pattern(b.pa + j * PG, b.tag),
		      "pattern of page 0x%llx overwritten", (unsigned long long)(b.pa + j * PG));
		md->st[pidx(md, b.pa) + j] &= (uint8_t)~M_ALLOC;
	}
	pfa_free(b.pa, b.order);
	md->free_pages += n;
	lv->b[i] = lv->b[--lv->n];
}

static void free_all(struct model *md, struct live *lv)
{
	while (lv->n)
		do_free(md, lv, rnd_below(lv->n));
}

/* ops random operations; pfa_check every check_every. */
static void random_run(struct model *md, struct live *lv, long ops, long check_every)
{
	for (long op = 0; op < ops && !harness_failed_now; op++) {
		bool alloc = lv->n == 0 || rnd_below(100) < 55;
		if (alloc)
			do_alloc(md, lv, random_order(PFA_MAX_ORDER));
		else
			do_free(md, lv, rnd_below(lv->n));
		if (check_every && op % check_every == 0) {
			CHECK(quiet_check() == 0, "pfa_check failed after op %ld", op);
			check_stats_match(md);
		}
	}
}

/* Setup, boot checks, random run, free everything, back to boot state. */
static void full_cycle(struct map *m, long ops)
{
	struct model md;
	struct live lv = { 0 };

	REQUIRE(map_setup(m) == 0, "setup failed");
	model_from_map(&md, m);
	model_boot(&md);
	CHECK(quiet_check() == 0, "pfa_check after setup");
	check_canonical(&md);
	check_stats_match(&md);

	random_run(&md, &lv, ops, 97);
	CHECK(quiet_check() == 0, "pfa_check after random run");
	check_canonical(&md);
	check_stats_match(&md);

	free_all(&md, &lv);
	CHECK(quiet_check() == 0, "pfa_check after freeing everything");
	check_boot_state(&md);
	check_canonical(&md);
	check_stats_match(&md);
	free(lv.b);
	model_free(&md);
}

/* ------------------------------------------------------------------ */
/* tests: maps                                                         */
/* ------------------------------------------------------------------ */

TEST(simple_region)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 64 * MIB, 8 * MIB), "mmap");
	add_reg(&m, 0, 64 * MIB);
	add_res(&m, 0, 5 * PG);               /* a "kernel image" */
	full_cycle(&m, 20000);
	arena_put(&ar);
}

TEST(one_page_region)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 16 * MIB, 8 * MIB), "mmap");
	add_reg(&m, 3 * PG, PG);                   /* a region of one page */
	add_reg(&m, 8 * MIB + 5 * PG, PG);         /* and another, alone in its block */
	add_reg(&m, 12 * MIB, 2 * MIB);            /* room for the descriptors */
	full_cycle(&m, 3000);

	/* the lone pages are usable: exhaust and find both */
	struct map m2 = m;
	REQUIRE(map_setup(&m2) == 0, "setup");
	int seen = 0;
	uint64_t got[1024];
	int n = 0;
	for (uint64_t pa; (pa = pfa_alloc(0, 0)) != 0 && n < 1024;) {
		got[n++] = pa;
		seen += pa == ar.base + 3 * PG || pa == ar.base + 8 * MIB + 5 * PG;
	}
	CHECK(seen == 2, "one-page regions handed out %d times", seen);
	for (int i = 0; i < n; i++)
		pfa_free(got[i], 0);
	CHECK(quiet_check() == 0, "check");

	/* a map whose only region is one page cannot hold its descriptors */
	pfa_setup_begin(0);
	pfa_add_region(ar.base + 3 * PG, PG);
	char buf[256];
	host_capture_start(buf, sizeof buf);
	int r = pfa_setup_end();
	host_capture_stop();
	CHECK(r == PFA_MAP_NO_ROOM, "setup of a lone page returned %d", r);
	CHECK(pfa_alloc(0, 0) == 0, "alloc after failed setup");
	arena_put(&ar);
}

TEST(unaligned_regions)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 64 * MIB, 8 * MIB), "mmap");
	/* odd bases and sizes, not aligned to any block size, partial pages */
	add_reg(&m, 3 * PG + 123, 37 * PG + 5);
	add_reg(&m, 1 * MIB + 7 * PG, 3 * MIB + 11 * PG);
	add_reg(&m, 5 * MIB - 1, 2);                         /* no whole page */
	add_reg(&m, 9 * MIB + 4095, 13 * MIB + 17 * PG + 1);
	add_reg(&m, 23 * MIB + 1, 40 * MIB - 2);
	add_res(&m, 2 * MIB + 5, 1);                         /* one byte */
	full_cycle(&m, 20000);

	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.nregions == 4, "%u regions (the no-page one is dropped)", st.nregions);
	struct pfa_region_stats rs;
	CHECK(pfa_get_region_stats(0, &rs) == 0 && rs.base == ar.base + 4 * PG &&
	      rs.size == 36 * PG, "region 0 trimmed to 0x%llx+0x%llx",
	      (unsigned long long)rs.base, (unsigned long long)rs.size);
	CHECK(pfa_get_region_stats(4, &rs) == -1, "region 4 of 4");
	arena_put(&ar);
}

TEST(hundred_holes)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 128 * MIB, 8 * MIB), "mmap");
	uint64_t off = rnd_below(64) * PG;
	for (int i = 0; i < 101; i++) {            /* 101 regions, 100 holes */
		uint64_t size = (2 + rnd_below(255)) * PG + rnd_below(PG);
		add_reg(&m, off, size);
		off += size + (1 + rnd_below(64)) * PG + rnd_below(PG);
	}
	REQUIRE(off < ar.size, "map too large");
	for (int i = 0; i < 30; i++)
		add_res(&m, rnd_below(off), rnd_below(8 * PG));
	full_cycle(&m, 20000);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.nregions == 101, "%u regions", st.nregions);
	printf("# hundred_holes: %llu pages managed, metadata %llu bytes\n",
	       (unsigned long long)st.total_pages, (unsigned long long)st.metadata_bytes);
	arena_put(&ar);
}

TEST(overlapping_reservations)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 64 * MIB, 8 * MIB), "mmap");
	add_reg(&m, 1 * MIB, 10 * MIB);
	add_reg(&m, 12 * MIB, 10 * MIB);
	add_reg(&m, 22 * MIB, 10 * MIB);          /* touches the previous one */
	add_reg(&m, 40 * MIB, 20 * MIB);
	add_res(&m, 0, 1 * MIB + 3 * PG);          /* over the start of region 0 */
	add_res(&m, 1 * MIB + 2 * PG, 5 * PG);     /* overlaps the previous */
	add_res(&m, 11 * MIB - 2 * PG, 1 * MIB + 4 * PG); /* end of 0, hole, start of 1 */
	add_res(&m, 21 * MIB + 77, 2 * MIB);       /* across the touching edge */
	add_res(&m, 21 * MIB + 4096, 100);         /* inside the previous */
	add_res(&m, 33 * MIB, 5 * MIB);            /* entirely in a hole */
	add_res(&m, 50 * MIB, 20 * MIB);           /* over the end of the last region */
	add_res(&m, 45 * MIB, 1 * MIB);
	add_res(&m, 45 * MIB + 512 * 1024, 1 * MIB); /* overlaps the previous */
	full_cycle(&m, 20000);

	/* exact reserved count: RAM pages touched by a reservation + descriptors */
	struct model md;
	REQUIRE(map_setup(&m) == 0, "setup");
	model_from_map(&md, &m);
	model_boot(&md);
	uint64_t want = 0;
	for (uint64_t i = 0; i < md.npages; i++)
		want += (md.st[i] & M_RAM) && !(md.st[i] & M_ALLOWED);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.reserved_pages == want, "reserved %llu, expected %llu (incl. %llu descriptor pages)",
	      (unsigned long long)st.reserved_pages, (unsigned long long)want,
	      (unsigned long long)md.meta_pages);
	CHECK(st.nregions == 4, "adjacent regions kept apart: %u", st.nregions);
	model_free(&md);
	arena_put(&ar);
}

TEST(reservations_table_overflow)
{
	/* more reservations than the PFA remembers: they get merged, which
	 * may reserve more, never less */
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 16 * MIB, 8 * MIB), "mmap");
	add_reg(&m, 0, 16 * MIB);
	REQUIRE(map_setup(&m) == 0, "setup");
	pfa_setup_begin(0);
	pfa_add_region(ar.base, 16 * MIB);
	for (int i = 0; i < 400; i++)
		pfa_reserve(ar.base + (uint64_t)i * 8 * PG, 1);
	REQUIRE(pfa_setup_end() == 0, "setup");
	uint64_t pa;
	int bad = 0;
	while ((pa = pfa_alloc(0, 0)) != 0)
		for (int i = 0; i < 400; i++)
			bad += pa == ar.base + (uint64_t)i * 8 * PG;
	CHECK(bad == 0, "%d reserved pages handed out", bad);
	CHECK(quiet_check() == 0, "check");
	arena_put(&ar);
}

/* ------------------------------------------------------------------ */
/* tests: big sparse maps                                              */
/* ------------------------------------------------------------------ */

static void report_map(const char *name, double secs)
{
	struct pfa_stats st;
	pfa_get_stats(&st);
	uint64_t managed = st.total_pages * PG;
	printf("# %s: managed %llu MiB, metadata %llu bytes = %.3f%% "
	       "(descriptors %.2f bytes/page), setup %.1f ms\n",
	       name, (unsigned long long)(managed / MIB),
	       (unsigned long long)st.metadata_bytes, 100.0 * st.metadata_bytes / managed,
	       (double)st.metadata_bytes / st.total_pages, secs * 1e3);
}

/* Allocate and free a few blocks everywhere, check, back to boot. */
static void big_map_smoke(struct model *md)
{
	struct live lv = { 0 };
	random_run(md, &lv, 4000, 0);
	free_all(md, &lv);
	free(lv.b);
	check_stats_match(md);
}

TEST(sparse_64g)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 64 * GIB, 1 * GIB), "mmap 64 GiB (MAP_NORESERVE)");
	/* 8 regions of 128 MiB + odd bits spread over 64 GiB */
	for (int i = 0; i < 8; i++)
		add_reg(&m, (uint64_t)i * 8 * GIB + (uint64_t)i * 3 * PG, 128 * MIB + 5 * PG);
	add_reg(&m, 64 * GIB - 64 * MIB, 64 * MIB);
	add_res(&m, 0, 2 * MIB);
	double t0 = harness_now();
	REQUIRE(map_setup(&m) == 0, "setup");
	double t1 = harness_now();
	report_map("sparse 64 GiB span, 9 regions", t1 - t0);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.metadata_bytes * 100 < st.total_pages * PG / 2,
	      "metadata %llu bytes not proportional to RAM (%llu pages)",
	      (unsigned long long)st.metadata_bytes, (unsigned long long)st.total_pages);

	struct model md;
	model_from_map(&md, &m);
	model_boot(&md);
	CHECK(quiet_check() == 0, "check after setup");
	check_canonical(&md);
	big_map_smoke(&md);
	CHECK(quiet_check() == 0, "check after run");
	check_boot_state(&md);
	model_free(&md);
	arena_put(&ar);
}

TEST(dense_64g)
{
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 64 * GIB, 8 * MIB), "mmap 64 GiB (MAP_NORESERVE)");
	add_reg(&m, 0, 64 * GIB);
	add_res(&m, 1 * MIB, 3 * MIB);
	double t0 = harness_now();
	REQUIRE(map_setup(&m) == 0, "setup");
	double t1 = harness_now();
	report_map("dense 64 GiB, 1 region", t1 - t0);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.total_pages == 64 * GIB / PG, "total %llu", (unsigned long long)st.total_pages);
	double t2 = harness_now();
	CHECK(quiet_check() == 0, "check after setup");
	printf("# dense 64 GiB: pfa_check %.1f ms\n", (harness_now() - t2) * 1e3);
	/* a few allocations, no model (16M pages): exhaust order 10 instead */
	uint64_t n = 0, pa;
	while ((pa = pfa_alloc(PFA_MAX_ORDER, 0)) != 0)
		n++;
	pfa_get_stats(&st);
	CHECK(st.largest_free_order < PFA_MAX_ORDER || !st.free_pages, "order %u left",
	      st.largest_free_order);
	printf("# dense 64 GiB: %llu blocks of 4 MiB, %llu pages left\n",
	       (unsigned long long)n, (unsigned long long)st.free_pages);
	CHECK(quiet_check() == 0, "check when exhausted");
	arena_put(&ar);
}

TEST(x86_like_5g)
{
	/* QEMU pc with -m 5G: RAM below 640K, 1M..3G, 4G..6G (PCI hole) */
	struct arena ar;
	struct map m = { .ar = &ar };
	REQUIRE(arena_get(&ar, 6 * GIB, 1 * GIB), "mmap");
	add_reg(&m, 0, 0x9fc00);
	add_reg(&m, 1 * MIB, 3 * GIB - 1 * MIB - 128 * 1024);
	add_reg(&m, 4 * GIB, 2 * GIB);
	add_res(&m, 1 * MIB, 2 * MIB);
	double t0 = harness_now();
	REQUIRE(map_setup(&m) == 0, "setup");
	report_map("x86-like 5 GiB with a 1 GiB hole", harness_now() - t0);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.metadata_bytes * 1000 < st.total_pages * PG * 41 / 10,
	      "metadata %.3f%% of RAM", 100.0 * st.metadata_bytes / (st.total_pages * PG));
	CHECK(quiet_check() == 0, "check");
	arena_put(&ar);
}

/* ------------------------------------------------------------------ */
/* tests: bad input, each with its exact report                        */
/* ------------------------------------------------------------------ */

struct small {
	struct arena ar;
	struct map m;
	struct model md;
};

static bool small_setup(struct small *s)
{
	memset(s, 0, sizeof *s);
	s->m.ar = &s->ar;
	if (!arena_get(&s->ar, 16 * MIB, 8 * MIB))
		return false;
	add_reg(&s->m, 0, 6 * MIB);
	add_reg(&s->m, 8 * MIB, 8 * MIB);
	add_res(&s->m, 0, 4 * PG);
	if (map_setup(&s->m))
		return false;
	model_from_map(&s->md, &s->m);
	model_boot(&s->md);
	return true;
}

static void small_put(struct small *s)
{
	model_free(&s->md);
	arena_put(&s->ar);
}

/* every descriptor (all 16 bytes) of the arena, to prove "untouched" */
static struct page *snapshot(const struct small *s)
{
	uint64_t n = s->ar.size / PG;
	struct page *snap = calloc(n, sizeof *snap);
	for (uint64_t i = 0; i < n; i++) {
		struct page *pg = pfa_page(s->ar.base + i * PG);
		if (pg)
			snap[i] = *pg;
	}
	return snap;
}

static char report_buf[1024];
static struct pfa_report last;

/* run fn with output captured; check one report of the expected kind */
#define EXPECT_REPORT(s, call, kind_, addr_, order_, detail_, fmt, ...)               \
	do {                                                                           \
		struct pfa_stats b0, b1;                                               \
		struct page *snap0 = snapshot(s);                                      \
		pfa_get_stats(&b0);                                                    \
		host_capture_start(report_buf, sizeof report_buf);                     \
		call;                                                                  \
		host_capture_stop();                                                   \
		pfa_get_stats(&b1);                                                    \
		pfa_last_report(&last);                                                \
		CHECK(last.kind == (kind_), "%s: kind %d, expected %d", #call,          \
		      last.kind, (kind_));                                              \
		CHECK(last.addr == (addr_) && last.order == (order_) &&                \
		      last.detail == (uint64_t)(detail_),                              \
		      "%s: report 0x%llx/%u/%llu", #call, (unsigned long long)last.addr, \
		      last.order, (unsigned long long)last.detail);                    \
		CHECK(CALLER_OK(last.caller), "%s: caller 0x%lx is not the caller", \
		      #call, (unsigned long)last.caller);                              \
		char want[512];                                                        \
		snprintf(want, sizeof want, fmt, __VA_ARGS__);                          \
		CHECK(strcmp(report_buf, want) == 0, "%s: printed\n  %s  expected\n  %s", \
		      #call, report_buf, want);                                         \
		CHECK(b1.bad_calls == b0.bad_calls + 1, "%s: bad_calls not counted", #call); \
		b1.bad_calls = b0.bad_calls;                                           \
		CHECK(memcmp(&b0, &b1, sizeof b0) == 0, "%s: stats changed", #call);   \
		struct page *snap1 = snapshot(s);                                      \
		CHECK(memcmp(snap0, snap1, (s)->ar.size / PG * sizeof *snap0) == 0,   \
		      "%s: descriptors changed", #call);                               \
		free(snap0);                                                           \
		free(snap1);                                                           \
		CHECK(quiet_check() == 0, "%s: check", #call);                         \
	} while (0)

/* Bad calls go through these two small functions, so the caller in the
 * report must be an address a few bytes into one of them. */
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

static bool caller_in(uintptr_t c, void (*fn)(void))
{
	return c > (uintptr_t)fn && c - (uintptr_t)fn < 512;
}
#define CALLER_OK(c) (caller_in((c), (void (*)(void))bad_free) || \
		      caller_in((c), (void (*)(void))bad_set_owner))

#define CALLER " from 0x%llx\n"
#define C ((unsigned long long)last.caller)

TEST(bad_input)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	uint64_t b = s.ar.base;

	uint64_t p0 = pfa_alloc(0, 0), p2 = pfa_alloc(2, 0), p3 = pfa_alloc(3, 0);
	REQUIRE(p0 && p2 && p3, "alloc");
	pfa_free(p0, 0);

	EXPECT_REPORT(&s, bad_free(p0, 0), PFA_REPORT_DOUBLE_FREE, p0, 0, 0,
		      "pfa: double free of 0x%llx (order 0)" CALLER, (unsigned long long)p0, C);
	uint64_t p2b = pfa_alloc(2, 0);
	pfa_free(p2b, 2);  /* merges: its head may now be a free tail */
	EXPECT_REPORT(&s, bad_free(p2b, 2), PFA_REPORT_DOUBLE_FREE, p2b, 2, 0,
		      "pfa: double free of 0x%llx (order 2)" CALLER, (unsigned long long)p2b, C);
	EXPECT_REPORT(&s, bad_free(b + PG, 0), PFA_REPORT_RESERVED, b + PG, 0, 0,
		      "pfa: free of reserved page 0x%llx (order 0)" CALLER,
		      (unsigned long long)(b + PG), C);
	EXPECT_REPORT(&s, bad_free(b + 7 * MIB, 0), PFA_REPORT_NOT_RAM, b + 7 * MIB, 0, 0,
		      "pfa: free of 0x%llx outside managed RAM (order 0)" CALLER,
		      (unsigned long long)(b + 7 * MIB), C);  /* the hole */
	EXPECT_REPORT(&s, bad_free(b - 64 * MIB, 1), PFA_REPORT_NOT_RAM, b - 64 * MIB, 1, 0,
		      "pfa: free of 0x%llx outside managed RAM (order 1)" CALLER,
		      (unsigned long long)(b - 64 * MIB), C);  /* below */
	EXPECT_REPORT(&s, bad_free(b + 1 * GIB, 0), PFA_REPORT_NOT_RAM, b + 1 * GIB, 0, 0,
		      "pfa: free of 0x%llx outside managed RAM (order 0)" CALLER,
		      (unsigned long long)(b + 1 * GIB), C);  /* above */
	EXPECT_REPORT(&s, bad_free(0, 0), PFA_REPORT_NOT_RAM, 0, 0, 0,
		      "pfa: free of 0x%llx outside managed RAM (order 0)" CALLER, 0ull, C);
	EXPECT_REPORT(&s, bad_free(p3 + 2 * PG, 0), PFA_REPORT_TAIL, p3 + 2 * PG, 0, p3,
		      "pfa: free of 0x%llx inside the block at 0x%llx (order 0)" CALLER,
		      (unsigned long long)(p3 + 2 * PG), (unsigned long long)p3, C);
	EXPECT_REPORT(&s, bad_free(p3 + 4 * PG, 2), PFA_REPORT_TAIL, p3 + 4 * PG, 2, p3,
		      "pfa: free of 0x%llx inside the block at 0x%llx (order 2)" CALLER,
		      (unsigned long long)(p3 + 4 * PG), (unsigned long long)p3, C);
	EXPECT_REPORT(&s, bad_free(p2 + 8, 2), PFA_REPORT_MISALIGNED, p2 + 8, 2, 0,
		      "pfa: misaligned free of 0x%llx (order 2)" CALLER,
		      (unsigned long long)(p2 + 8), C);
	EXPECT_REPORT(&s, bad_free(p3 + PG, 3), PFA_REPORT_MISALIGNED, p3 + PG, 3, 0,
		      "pfa: misaligned free of 0x%llx (order 3)" CALLER,
		      (unsigned long long)(p3 + PG), C);
	EXPECT_REPORT(&s, bad_free(p2, 1), PFA_REPORT_WRONG_ORDER, p2, 1, 2,
		      "pfa: free of 0x%llx with order 1, allocated with order 2," CALLER,
		      (unsigned long long)p2, C);
	EXPECT_REPORT(&s, bad_free(p3, 2), PFA_REPORT_WRONG_ORDER, p3, 2, 3,
		      "pfa: free of 0x%llx with order 2, allocated with order 3," CALLER,
		      (unsigned long long)p3, C);
	EXPECT_REPORT(&s, bad_free(p2, 11), PFA_REPORT_BAD_ORDER, p2, 11, 0,
		      "pfa: free of 0x%llx with bad order 11 (max 10)" CALLER,
		      (unsigned long long)p2, C);
	EXPECT_REPORT(&s, bad_set_owner(p0, 0, PG_LARGE), PFA_REPORT_BAD_OWNER, p0, 0, PG_LARGE,
		      "pfa: set_owner(6) of 0x%llx (order 0), not an allocated block," CALLER,
		      (unsigned long long)p0, C);
	EXPECT_REPORT(&s, bad_set_owner(p2, 2, PG_FREE), PFA_REPORT_BAD_OWNER, p2, 2, PG_FREE,
		      "pfa: set_owner(2) of 0x%llx (order 2), not an allocated block," CALLER,
		      (unsigned long long)p2, C);
	/* explicit caller */
	host_capture_start(report_buf, sizeof report_buf);
	pfa_free_caller(p0, 0, (void *)0x1234);
	host_capture_stop();
	pfa_last_report(&last);
	CHECK(last.caller == 0x1234 && last.kind == PFA_REPORT_DOUBLE_FREE, "explicit caller");

	/* after all that, the good calls still work and the state is exact */
	pfa_free(p2, 2);
	pfa_free(p3, 3);
	CHECK(quiet_check() == 0, "check");
	check_boot_state(&s.md);
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.bad_calls == 17, "bad_calls %llu", (unsigned long long)st.bad_calls);
	small_put(&s);
}

/* A kernel that panics on a bad free needs the verdict of each call, and
 * reports it can tell apart: pfa_free says -1 only for the call it
 * refused, every report has the next serial number, and a cleared report
 * stays cleared across later legal frees. */
TEST(free_verdicts_and_report_serials)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	struct pfa_report r;

	uint64_t a = pfa_alloc(0, 0), b = pfa_alloc(2, 0);
	REQUIRE(a && b, "alloc");
	pfa_last_report(&r);
	uint64_t s0 = r.serial;
	CHECK(pfa_free(a, 0) == 0, "a legal free refused");
	host_capture_start(report_buf, sizeof report_buf);
	int twice = pfa_free(a, 0), wrong = pfa_free(b, 1);
	host_capture_stop();
	CHECK(twice == -1, "double free accepted (%d)", twice);
	CHECK(wrong == -1, "wrong-order free accepted (%d)", wrong);
	pfa_last_report(&r);
	CHECK(r.kind == PFA_REPORT_WRONG_ORDER && r.serial == s0 + 2,
	      "last report kind %d serial %llu, want %d and %llu", r.kind,
	      (unsigned long long)r.serial, PFA_REPORT_WRONG_ORDER, (unsigned long long)(s0 + 2));

	pfa_clear_report();
	pfa_last_report(&r);
	CHECK(r.kind == PFA_REPORT_NONE && r.serial == s0 + 2,
	      "after clear: kind %d serial %llu", r.kind, (unsigned long long)r.serial);
	CHECK(pfa_free(b, 2) == 0, "legal free after reports refused");
	uint64_t c = pfa_alloc(3, 0);
	CHECK(c && pfa_free_caller(c, 3, (void *)0x1234) == 0, "legal free_caller refused");
	pfa_last_report(&r);
	CHECK(r.kind == PFA_REPORT_NONE, "legal frees left report kind %d", r.kind);
	host_capture_start(report_buf, sizeof report_buf);
	CHECK(pfa_free(c, 3) == -1, "double free after clear accepted");
	host_capture_stop();
	pfa_last_report(&r);
	CHECK(r.kind == PFA_REPORT_DOUBLE_FREE && r.serial == s0 + 3,
	      "new report kind %d serial %llu", r.kind, (unsigned long long)r.serial);
	CHECK(quiet_check() == 0, "check");
	small_put(&s);
}

/* ------------------------------------------------------------------ */
/* tests: exhaustion, zeroing, owners, descriptors, check, stats       */
/* ------------------------------------------------------------------ */

TEST(exhaustion_and_recovery)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	struct live lv = { 0 };
	uint64_t boot_free = s.md.free_pages;

	/* mixed orders until nothing is left, then order 0 until nothing */
	for (int fails = 0; fails < 50;)
		fails += !do_alloc(&s.md, &lv, random_order(PFA_MAX_ORDER));
	while (do_alloc(&s.md, &lv, 0))
		;
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.free_pages == 0 && s.md.free_pages == 0, "%llu pages left",
	      (unsigned long long)st.free_pages);
	CHECK(st.low_water_pages == 0, "low water %llu", (unsigned long long)st.low_water_pages);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		CHECK(pfa_alloc(k, PFA_ZERO) == 0, "alloc(%u) succeeded when empty", k);
	CHECK(quiet_check() == 0, "check when empty");

	/* free half, use again, free all */
	for (size_t n = lv.n / 2; n; n--)
		do_free(&s.md, &lv, rnd_below(lv.n));
	random_run(&s.md, &lv, 5000, 101);
	free_all(&s.md, &lv);
	pfa_get_stats(&st);
	CHECK(st.free_pages == boot_free, "free %llu, boot %llu",
	      (unsigned long long)st.free_pages, (unsigned long long)boot_free);
	CHECK(st.low_water_pages == 0, "low water must stay 0");
	CHECK(quiet_check() == 0, "check");
	check_boot_state(&s.md);
	free(lv.b);
	small_put(&s);
}

TEST(zero_flag)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	for (unsigned k = 0; k <= 4; k++) {
		uint64_t pa = pfa_alloc(k, 0);
		memset((void *)(uintptr_t)pa, 0xa5, PG << k);
		pfa_free(pa, k);
		uint64_t pb = pfa_alloc(k, PFA_ZERO);
		const unsigned char *c = (const unsigned char *)(uintptr_t)pb;
		size_t nz = 0;
		for (size_t i = 0; i < (PG << k); i++)
			nz += c[i] != 0;
		CHECK(nz == 0, "order %u: %zu bytes not zeroed", k, nz);
		pfa_free(pb, k);
	}
	CHECK(quiet_check() == 0, "check");
	small_put(&s);
}

TEST(owners_and_lookup)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	uint64_t pa = pfa_alloc(3, 0);
	REQUIRE(pa, "alloc");
	struct page *h = pfa_page(pa);
	CHECK(h && h->owner == PG_PFA && h->order == 3, "head after alloc");
	for (unsigned j = 1; j < 8; j++) {
		struct page *t = pfa_virt_to_page((char *)(uintptr_t)pa + j * PG + 123);
		uint32_t d = 0;
		CHECK(t && t->owner == PG_FREE_TAIL, "inner page %u is not a head", j);
		CHECK(pfa_virt_to_head((char *)(uintptr_t)pa + j * PG + 123, &d) == h && d == j,
		      "head of inner page %u", j);
		CHECK(t == h + j, "descriptors of a block are adjacent");
	}
	pfa_set_owner(pa, 3, PG_LARGE);
	CHECK(h->owner == PG_LARGE && h->order == 3, "set_owner");
	h->data = 12345;   /* owner data */
	h->cls = 7;
	CHECK(quiet_check() == 0, "check with a LARGE block");
	pfa_free(pa, 3);
	CHECK(pfa_page(pa)->owner == PG_FREE || pfa_page(pa)->owner == PG_FREE_TAIL, "freed");

	/* page <-> address round trip everywhere, NULL outside RAM */
	for (uint64_t off = 0; off < s.ar.size; off += PG) {
		struct page *pg = pfa_page(s.ar.base + off);
		bool ram = off < 6 * MIB || off >= 8 * MIB;
		CHECK(!!pg == ram, "pfa_page(+0x%llx) %p", (unsigned long long)off, (void *)pg);
		if (pg)
			CHECK(pfa_page_phys(pg) == s.ar.base + off, "page_phys(+0x%llx)",
			      (unsigned long long)off);
	}
	CHECK(pfa_page(s.ar.base - PG) == NULL && pfa_page(s.ar.base + s.ar.size) == NULL,
	      "outside the span");
	CHECK(pfa_virt(s.ar.base) == (void *)(uintptr_t)s.ar.base, "identity direct map");
	CHECK(pfa_phys((void *)(uintptr_t)s.ar.base) == s.ar.base, "identity direct map");
	struct page stray;
	CHECK(pfa_page_phys(&stray) == 0, "page_phys of a non-descriptor");
	small_put(&s);
}

TEST(reserve_after_setup)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	uint64_t target = s.ar.base + 9 * MIB + 5 * PG;
	uint64_t a = pfa_alloc(0, 0);
	pfa_reserve(target, 3 * PG);
	char buf[256];
	host_capture_start(buf, sizeof buf);
	pfa_reserve(a, 1);   /* allocated: refused */
	host_capture_stop();
	CHECK(strstr(buf, "reserve of allocated page") != NULL, "printed: %s", buf);
	CHECK(quiet_check() == 0, "check after live reserve");
	uint64_t pa;
	int hits = 0;
	while ((pa = pfa_alloc(0, 0)) != 0)
		hits += pa >= target && pa < target + 3 * PG;
	CHECK(hits == 0, "reserved page handed out");
	CHECK(quiet_check() == 0, "check");
	small_put(&s);
}

TEST(check_detects_corruption)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	char buf[4096];
	uint64_t a = pfa_alloc(0, 0), b = pfa_alloc(0, 0);
	uint64_t lo = a < b ? a : b;
	REQUIRE((a ^ b) == PG, "two buddies expected");
	uint64_t c = pfa_alloc(2, 0);

	struct {
		const char *what;
		struct page *pg;
		struct page bad;
		const char *expect;
	} cases[6];
	/* a free head with a successor on its list, a free tail, a hole page */
	struct page *fh = NULL, *ft = NULL, *hole = pfa_page(s.ar.base + 7 * MIB);
	for (uint64_t off = 0; off < 16 * MIB; off += PG) {
		struct page *pg = pfa_page(s.ar.base + off);
		if (pg && !fh && pg->owner == PG_FREE && pg->next != UINT32_MAX)
			fh = pg;
		if (pg && !ft && pg->owner == PG_FREE_TAIL)
			ft = pg;
	}
	REQUIRE(fh && ft && !hole, "setup for corruption");
	/* the hole page has a descriptor (its section holds RAM) but
	 * pfa_page() hides it: reach it from the RAM page next to it */
	hole = pfa_page(s.ar.base + 6 * MIB - PG) + 1;
	REQUIRE(hole->owner == PG_UNMANAGED, "hole descriptor");

	cases[0] = (typeof(cases[0])){ "free head order", fh, *fh, "on free list" };
	cases[0].bad.order = (uint8_t)(fh->order ? fh->order - 1 : 1);
	cases[1] = (typeof(cases[1])){ "tail of allocated block", pfa_page(c + 3 * PG),
				       *pfa_page(c + 3 * PG), "in the allocated block" };
	cases[1].bad.owner = PG_TAIL;
	cases[2] = (typeof(cases[2])){ "tail of free block", ft, *ft, "in the free block" };
	cases[2].bad.owner = PG_TAIL;
	cases[3] = (typeof(cases[3])){ "broken prev link", fh, *fh, "prev link" };
	cases[3].bad.prev = 42;
	cases[4] = (typeof(cases[4])){ "free tail in a hole", hole, *hole, "outside any block" };
	cases[4].bad.owner = PG_FREE_TAIL;
	cases[5] = (typeof(cases[5])){ "owner mark left in a free block", ft, *ft,
				       "in the free block" };
	cases[5].bad.cls = 3;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct page saved = *cases[i].pg;
		*cases[i].pg = cases[i].bad;
		host_capture_start(buf, sizeof buf);
		int n = pfa_check();
		host_capture_stop();
		CHECK(n > 0, "%s: not detected", cases[i].what);
		CHECK(strstr(buf, cases[i].expect) != NULL, "%s: report was: %s",
		      cases[i].what, buf);
		*cases[i].pg = saved;
		CHECK(quiet_check() == 0, "%s: check after repair", cases[i].what);
	}

	/* an uncoalesced pair: mark b free behind the allocator's back */
	pfa_free(a, 0);
	struct page *pb = pfa_page(b), saved = *pb;
	*pb = (struct page){ UINT32_MAX, UINT32_MAX, PG_FREE, 0, 0, 0 };
	host_capture_start(buf, sizeof buf);
	int n = pfa_check();
	host_capture_stop();
	CHECK(n >= 2, "uncoalesced pair: %d problems", n);
	CHECK(strstr(buf, "not merged") && strstr(buf, "free blocks of order 0"),
	      "uncoalesced report: %s", buf);
	*pb = saved;
	pfa_free(b, 0);
	pfa_free(c, 2);
	CHECK(quiet_check() == 0, "check after repair");
	(void)lo;
	small_put(&s);
}

TEST(stats_and_print)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.total_pages == 14 * MIB / PG, "total %llu", (unsigned long long)st.total_pages);
	CHECK(st.reserved_pages == 4 + s.md.meta_pages, "reserved %llu",
	      (unsigned long long)st.reserved_pages);
	CHECK(st.free_pages + st.reserved_pages == st.total_pages, "sum");
	struct pfa_region_stats rs;
	CHECK(st.nregions == 2 && pfa_get_region_stats(0, &rs) == 0 && rs.size == 6 * MIB,
	      "regions");
	CHECK(st.largest_free_order == PFA_MAX_ORDER, "largest %u", st.largest_free_order);
	uint64_t a = pfa_alloc(5, 0), b = pfa_alloc(0, 0);
	pfa_free(a, 5);
	pfa_get_stats(&st);
	CHECK(st.low_water_pages == st.free_pages - 32, "low water %llu free %llu",
	      (unsigned long long)st.low_water_pages, (unsigned long long)st.free_pages);
	pfa_free(b, 0);
	static char out[8192];
	host_capture_start(out, sizeof out);
	pfa_print_stats(mm_platform_write);
	host_capture_stop();
	CHECK(strstr(out, "pfa: 3584 pages") && strstr(out, "low water") &&
	      strstr(out, "free blocks by order: 0:") && strstr(out, "metadata ") &&
	      strstr(out, "region 1: "), "print_stats:\n%s", out);
	printf("# print_stats:\n%s", out);
	small_put(&s);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/* ------------------------------------------------------------------ */
/* tests: reshaping blocks (pfa_split, pfa_alloc_at)                   */
/* ------------------------------------------------------------------ */

TEST(split_and_alloc_at)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	struct pfa_stats st0, st;
	pfa_get_stats(&st0);

	/* split an order-3 block: two order-2 blocks, each freeable alone */
	uint64_t pa = pfa_alloc(3, 0);
	REQUIRE(pa, "alloc order 3");
	REQUIRE(pfa_split(pa, 3) == 0, "split order 3");
	CHECK(pfa_page(pa)->order == 2 && pfa_page(pa)->owner == PG_PFA, "lower head");
	const struct page *up = pfa_page(pa + 4 * PG);
	CHECK(up->owner == PG_PFA && up->order == 2, "upper head owner %u order %u",
	      up->owner, up->order);
	uint32_t d = 0;
	CHECK(pfa_page(pa + 5 * PG)->owner == PG_FREE_TAIL &&
	      pfa_head_page(pa + 5 * PG, &d) == up && d == 1,
	      "the upper half's inner page finds the upper head");
	CHECK(quiet_check() == 0, "check after split");
	pfa_free(pa + 4 * PG, 2);
	/* the freed upper half can be taken back exactly where it was */
	CHECK(pfa_alloc_at(pa + 4 * PG, 2) == 0, "alloc_at the freed upper half");
	CHECK(pfa_alloc_at(pa + 4 * PG, 2) == -1, "alloc_at of an allocated range");
	CHECK(pfa_alloc_at(pa + PG, 1) == -1, "alloc_at misaligned");
	CHECK(quiet_check() == 0, "check after alloc_at");
	pfa_free(pa + 4 * PG, 2);
	pfa_free(pa, 2);
	pfa_get_stats(&st);
	CHECK(st.free_pages == st0.free_pages, "free pages %llu, expected %llu",
	      (unsigned long long)st.free_pages, (unsigned long long)st0.free_pages);
	check_boot_state(&s.md);

	/* alloc_at in the middle of a big free block splits around it */
	uint64_t target = s.m.ar->base + 8 * MIB + 5 * PG;
	CHECK(pfa_alloc_at(target, 0) == 0, "alloc_at inside a free 4 MiB block");
	CHECK(pfa_page(target)->owner == PG_PFA, "target owned");
	uint64_t other = pfa_alloc(0, 0);
	CHECK(other != target, "target handed out twice");
	pfa_free(other, 0);
	CHECK(quiet_check() == 0, "check after alloc_at split");
	pfa_free(target, 0);

	/* split of something that is not an allocated block: reported */
	host_capture_start(report_buf, sizeof report_buf);
	int r = pfa_split(target, 1);
	host_capture_stop();
	pfa_last_report(&last);
	CHECK(r == -1 && last.kind != PFA_REPORT_NONE, "split of a free block accepted");
	CHECK(quiet_check() == 0, "final check");
	small_put(&s);
}

/* pfa_merge undoes pfa_split: two allocated buddies of one order are one
 * block again (the upper head an inner page), freeable as a whole; pairs
 * that are not buddies, or not both allocated, are refused unchanged. */
TEST(merge_undoes_split)
{
	struct small s;
	REQUIRE(small_setup(&s), "setup");
	struct pfa_stats st0, st;
	pfa_get_stats(&st0);

	uint64_t pa = pfa_alloc(3, 0);
	REQUIRE(pa && pfa_split(pa, 3) == 0 && pfa_split(pa + 4 * PG, 2) == 0, "order 3 split");
	/* now [pa: order 2][pa + 4: order 1][pa + 6: order 1] */
	CHECK(pfa_merge(pa, 2) == -1, "an order-2 block merged with two order-1 blocks");
	CHECK(pfa_merge(pa + 2 * PG, 1) == -1, "merged at a misaligned address");
	CHECK(pfa_merge(pa + 4 * PG, 1) == 0, "the two order-1 buddies did not merge");
	const struct page *up = pfa_page(pa + 4 * PG);
	CHECK(up->order == 2 && up->owner == PG_PFA, "merged head order %u owner %u", up->order,
	      up->owner);
	uint32_t d = 0;
	CHECK(pfa_page(pa + 6 * PG)->owner == PG_FREE_TAIL &&
	      pfa_head_page(pa + 7 * PG, &d) == up && d == 3,
	      "the old upper head is an inner page of the merged block");
	CHECK(quiet_check() == 0, "check after a merge");
	pfa_set_owner(pa, 2, PG_LARGE);
	CHECK(pfa_merge(pa, 2) == 0 && pfa_page(pa)->order == 3 && pfa_page(pa)->owner == PG_LARGE,
	      "the order-2 buddies did not merge into the lower's order-3 block");
	CHECK(quiet_check() == 0, "check after the second merge");
	pfa_set_owner(pa, 3, PG_PFA);
	pfa_free(pa, 3);                     /* one block again: one free */
	pfa_get_stats(&st);
	CHECK(st.free_pages == st0.free_pages, "free pages %llu, expected %llu",
	      (unsigned long long)st.free_pages, (unsigned long long)st0.free_pages);

	/* an allocated block and its free buddy: refused, nothing changed */
	uint64_t a = pfa_alloc(1, 0);
	REQUIRE(a && pfa_split(a, 1) == 0, "order 1 split");
	pfa_free(a + PG, 0);
	CHECK(pfa_merge(a, 0) == -1, "merged with a free buddy");
	CHECK(pfa_page(a)->order == 0 && quiet_check() == 0, "a refused merge changed the block");
	pfa_free(a, 0);
	check_boot_state(&s.md);
	small_put(&s);
}

/*
 * test_heapdump.c - host tests of mm_heap_dump() (mm/heapdump.c): the
 * dump is parsed back and compared with what the test allocated and with
 * what the PFA and kmalloc count.
 *
 * Fixture as in test_kmalloc.c: a PFA over 64 MiB of this process's
 * address space (direct-map offset 0) with one reserved page, then
 * kmalloc_init().  Per-CPU caches are off so a pool's used count is the
 * test's own allocations, exactly.
 *
 * With -v (argv[2]) or HEAPDUMP_OUT=file the last dump is written out,
 * for tests/host/test_heapviz.py and for looking at.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "host_ram.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include <strata/heapdump.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#define MIB (1024ull * 1024)
#define RAM_SIZE (64 * MIB)
#define POOL_SIZE 16384u
#define ARENA_SIZE (1024u * 1024)

static uint8_t *ram;
static uint8_t *reserved_page;
static uint64_t ram_size;

static void setup_size(uint64_t size)
{
	ram = host_ram(size);
	ram_size = size;
	reserved_page = ram + 5 * MIB + 3 * PAGE_SIZE;
	host_pfa_setup(ram, ram_size, reserved_page);
	kmalloc_init();
	mm_percpu_enable(0);
}

static void setup(void) { setup_size(RAM_SIZE); }

/* ------------------------------------------------------------------ */
/* capture                                                             */
/* ------------------------------------------------------------------ */

#define DUMP_CAP (512 * 1024)
static char dump_buf[DUMP_CAP];
static size_t dump_len;
static unsigned out_calls;

static void out(const char *s, size_t n)
{
	out_calls++;
	if (dump_len + n >= DUMP_CAP)
		n = DUMP_CAP - 1 - dump_len;
	memcpy(dump_buf + dump_len, s, n);
	dump_len += n;
	dump_buf[dump_len] = 0;
}

static void save_dump(void)
{
	const char *path = getenv("HEAPDUMP_OUT");
	if (!path)
		return;
	FILE *f = fopen(path, "w");
	if (f) {
		fwrite(dump_buf, 1, dump_len, f);
		fclose(f);
	}
}

static void dump(void)
{
	dump_len = 0;
	dump_buf[0] = 0;
	out_calls = 0;
	mm_heap_dump(out);
	save_dump();
}

/* ------------------------------------------------------------------ */
/* parsing                                                             */
/* ------------------------------------------------------------------ */

struct memline {
	char kind[16];
	uint64_t base, pages, req;
	unsigned order, n;
	bool cached;
};

#define MAX_MEM 4096
#define MAX_ARENAS 64
#define MAX_CLASSES 64

struct parsed {
	unsigned lines, end_lines;
	bool has_begin, has_end;
	unsigned classes;
	unsigned cls_size[MAX_CLASSES], cls_cap[MAX_CLASSES], cls_cap0[MAX_CLASSES];
	uint64_t totals_pages, totals_free, totals_large_pages, totals_arenas;
	unsigned nregions;
	uint64_t region_base[8], region_size[8];
	unsigned nmem;
	struct memline mem[MAX_MEM];
	unsigned narenas;
	uint64_t arena_base[MAX_ARENAS];
	char arena_state[MAX_ARENAS][8];
	/* per pool: 0 never carved, 1 free, 2 in use (size, used, cap) */
	unsigned pool_state[MAX_ARENAS][64], pool_size[MAX_ARENAS][64];
	unsigned pool_used[MAX_ARENAS][64], pool_cap[MAX_ARENAS][64];
	unsigned pool_count[MAX_ARENAS];
	unsigned pool_bytes[MAX_ARENAS];   /* the arena's pool size (pool=) */
	char error[160];
};

static struct parsed P;

static uint64_t kv(const char *line, const char *key)
{
	char pat[32];
	snprintf(pat, sizeof pat, " %s=", key);
	const char *p = strstr(line, pat);
	return p ? strtoull(p + strlen(pat), NULL, 0) : UINT64_MAX;
}

static void parse_pools(struct parsed *d, char *line)
{
	unsigned a = d->narenas++;
	char *save, *w = strtok_r(line, " ", &save);   /* "pools" */
	w = strtok_r(NULL, " ", &save);
	d->arena_base[a] = strtoull(w, NULL, 0);
	d->pool_count[a] = 0;
	d->pool_bytes[a] = 0;
	while ((w = strtok_r(NULL, " ", &save))) {
		if (!strncmp(w, "pool=", 5)) {
			d->pool_bytes[a] = (unsigned)strtoul(w + 5, NULL, 0);
			continue;
		}
		if (!strncmp(w, "state=", 6)) {
			snprintf(d->arena_state[a], sizeof d->arena_state[a], "%s", w + 6);
			continue;
		}
		if (strchr(w, '='))
			continue;
		unsigned times = 1, st, sz = 0, u = 0, c = 0;
		char *star = strchr(w, '*');
		if (star) {
			times = (unsigned)atoi(star + 1);
			*star = 0;
		}
		if (!strcmp(w, "."))
			st = 0;
		else if (!strcmp(w, "-"))
			st = 1;
		else if (sscanf(w, "%u:%u/%u", &sz, &u, &c) == 3)
			st = 2;
		else {
			snprintf(d->error, sizeof d->error, "bad token '%s'", w);
			return;
		}
		for (unsigned t = 0; t < times && d->pool_count[a] < 64; t++) {
			unsigned i = d->pool_count[a]++;
			d->pool_state[a][i] = st;
			d->pool_size[a][i] = sz;
			d->pool_used[a][i] = u;
			d->pool_cap[a][i] = c;
		}
	}
}

static void parse(struct parsed *d)
{
	static char copy[DUMP_CAP];
	memset(d, 0, sizeof *d);
	memcpy(copy, dump_buf, dump_len + 1);
	char *save, *line = strtok_r(copy, "\n", &save);
	for (; line; line = strtok_r(NULL, "\n", &save)) {
		d->lines++;
		if (!strncmp(line, "strata-heap v1 ", 15)) {
			d->has_begin = d->lines == 1;
		} else if (!strncmp(line, "strata-heap end", 15)) {
			d->has_end = true;
			d->end_lines = (unsigned)kv(line, "lines");
		} else if (!strncmp(line, "class ", 6)) {
			unsigned i, s, c, c0;
			if (sscanf(line, "class %u %u %u %u", &i, &s, &c, &c0) == 4 && i < MAX_CLASSES) {
				d->cls_size[i] = s;
				d->cls_cap[i] = c;
				d->cls_cap0[i] = c0;
				d->classes++;
			}
		} else if (!strncmp(line, "region ", 7)) {
			unsigned long long b, s;
			if (sscanf(line, "region %llx %llx", &b, &s) == 2 && d->nregions < 8) {
				d->region_base[d->nregions] = b;
				d->region_size[d->nregions++] = s;
			}
		} else if (!strncmp(line, "totals ", 7)) {
			d->totals_pages = kv(line, "pages");
			d->totals_free = kv(line, "free");
			d->totals_large_pages = kv(line, "large_pages");
			d->totals_arenas = kv(line, "arenas");
		} else if (!strncmp(line, "pools ", 6)) {
			if (d->narenas < MAX_ARENAS)
				parse_pools(d, line);
		} else if (d->nmem < MAX_MEM) {
			struct memline *m = &d->mem[d->nmem];
			unsigned long long b, p;
			if (sscanf(line, "%15s %llx %llu", m->kind, &b, &p) != 3) {
				snprintf(d->error, sizeof d->error, "bad line '%.100s'", line);
				continue;
			}
			m->base = b;
			m->pages = p;
			uint64_t v = kv(line, "order");
			m->order = v == UINT64_MAX ? 0 : (unsigned)v;
			v = kv(line, "n");
			m->n = v == UINT64_MAX ? 1 : (unsigned)v;
			m->req = kv(line, "req");
			m->cached = strstr(line, " cached") != NULL;
			d->nmem++;
		}
	}
}

static const struct memline *mem_at(const struct parsed *d, uint64_t pa)
{
	for (unsigned i = 0; i < d->nmem; i++)
		if (pa >= d->mem[i].base && pa < d->mem[i].base + d->mem[i].pages * PAGE_SIZE)
			return &d->mem[i];
	return NULL;
}

static int arena_index(const struct parsed *d, uint64_t base)
{
	for (unsigned a = 0; a < d->narenas; a++)
		if (d->arena_base[a] == base)
			return (int)a;
	return -1;
}

static uint64_t sum_pages(const struct parsed *d, const char *kind)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < d->nmem; i++)
		if (!kind || !strcmp(d->mem[i].kind, kind))
			n += d->mem[i].pages;
	return n;
}

/* The checks every dump must pass, whatever the heap holds. */
#define CHECK_WELL_FORMED(d)                                                    \
	do {                                                                    \
		struct pfa_stats st_;                                           \
		pfa_get_stats(&st_);                                            \
		CHECK((d)->error[0] == 0, "parse: %s", (d)->error);             \
		CHECK((d)->has_begin, "no begin line first");                   \
		CHECK((d)->has_end, "no end line");                             \
		CHECK((d)->end_lines == (d)->lines, "end says %u lines, dump has %u", \
		      (d)->end_lines, (d)->lines);                              \
		CHECK(dump_buf[dump_len - 1] == '\n', "dump does not end a line"); \
		CHECK(sum_pages((d), "free") == st_.free_pages,                 \
		      "free pages in the dump %llu, the PFA %llu",              \
		      (unsigned long long)sum_pages((d), "free"),               \
		      (unsigned long long)st_.free_pages);                      \
		CHECK((d)->totals_free == st_.free_pages, "totals free=%llu",   \
		      (unsigned long long)(d)->totals_free);                    \
		CHECK(sum_pages((d), NULL) == st_.total_pages,                  \
		      "pages in the dump %llu, managed %llu",                   \
		      (unsigned long long)sum_pages((d), NULL),                 \
		      (unsigned long long)st_.total_pages);                     \
		CHECK(sum_pages((d), "bad") == 0, "bad pages in the dump");     \
		for (unsigned i_ = 1; i_ < (d)->nmem; i_++)                     \
			CHECK((d)->mem[i_].base >= (d)->mem[i_ - 1].base +       \
			      (d)->mem[i_ - 1].pages * PAGE_SIZE,                \
			      "memory lines %u and %u overlap or go back", i_ - 1, i_); \
		for (unsigned i_ = 0; i_ < (d)->nmem; i_++)                     \
			if ((d)->mem[i_].order || strcmp((d)->mem[i_].kind, "free") == 0) \
				CHECK((d)->mem[i_].pages ==                     \
				      (uint64_t)(d)->mem[i_].n << (d)->mem[i_].order, \
				      "line %u: %llu pages != %u << %u", i_,    \
				      (unsigned long long)(d)->mem[i_].pages,   \
				      (d)->mem[i_].n, (d)->mem[i_].order);       \
		CHECK((d)->narenas == (d)->totals_arenas, "%u pools lines, %llu arenas", \
		      (d)->narenas, (unsigned long long)(d)->totals_arenas);    \
		for (unsigned a_ = 0; a_ < (d)->narenas; a_++) {                 \
			CHECK((d)->pool_bytes[a_] >= POOL_SIZE &&                \
			      (d)->pool_count[a_] == ARENA_SIZE / (d)->pool_bytes[a_], \
			      "arena %u has %u pools of %u bytes", a_,           \
			      (d)->pool_count[a_], (d)->pool_bytes[a_]);         \
			const struct memline *m_ = mem_at((d), (d)->arena_base[a_]); \
			CHECK(m_ && !strcmp(m_->kind, "arena") &&                \
			      m_->base == (d)->arena_base[a_] &&                 \
			      m_->pages == ARENA_SIZE / PAGE_SIZE,               \
			      "arena 0x%llx has no arena memory line",           \
			      (unsigned long long)(d)->arena_base[a_]);          \
		}                                                               \
	} while (0)

/* ------------------------------------------------------------------ */
/* tests                                                               */
/* ------------------------------------------------------------------ */

TEST(fresh_heap_is_small_and_exact)
{
	setup();
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	CHECK(P.classes > 0 && P.cls_size[0] == 16, "class lines: %u, first %u", P.classes,
	      P.cls_size[0]);
	CHECK(P.nregions == 1 && P.region_base[0] == (uintptr_t)ram &&
	      P.region_size[0] == RAM_SIZE, "region line");
	const struct memline *m = mem_at(&P, (uintptr_t)reserved_page);
	CHECK(m && !strcmp(m->kind, "reserved") && m->base == (uintptr_t)reserved_page &&
	      m->pages == 1, "the reserved page is not one reserved line");
	CHECK(sum_pages(&P, "meta") * PAGE_SIZE >= RAM_SIZE / PAGE_SIZE * sizeof(struct page),
	      "meta pages %llu do not hold the descriptors",
	      (unsigned long long)sum_pages(&P, "meta"));
	/* 64 MiB of mostly order-10 blocks: a handful of lines */
	CHECK(P.nmem < 30, "%u memory lines for a fresh heap", P.nmem);
	CHECK(dump_len < 4096, "fresh dump is %zu bytes", dump_len);
	CHECK(out_calls >= 1, "out never called");
}

TEST(allocations_appear_exactly)
{
	setup();
	void *small[10];
	for (int i = 0; i < 10; i++)
		small[i] = kmalloc(32, 0);
	void *big = kmalloc(3 * PAGE_SIZE + KMALLOC_SMALL_MAX, 0);   /* a large run */
	phys_addr_t raw = pfa_alloc(2, 0);
	REQUIRE(small[9] && big && raw, "allocation failed");
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);

	/* the 32-byte blocks: one pool of class 32, 10 used */
	uintptr_t pool = (uintptr_t)small[0] & ~(uintptr_t)(POOL_SIZE - 1);
	uintptr_t arena = (uintptr_t)small[0] & ~(uintptr_t)(ARENA_SIZE - 1);
	int a = arena_index(&P, arena);
	REQUIRE(a >= 0, "no pools line for arena 0x%lx", (unsigned long)arena);
	unsigned i = (unsigned)((pool - arena) / POOL_SIZE);
	unsigned cls32 = 1;
	CHECK(P.cls_size[cls32] == 32, "class 1 is %u bytes", P.cls_size[cls32]);
	CHECK(P.pool_state[a][i] == 2 && P.pool_size[a][i] == 32 && P.pool_used[a][i] == 10,
	      "pool %u: state %u size %u used %u", i, P.pool_state[a][i], P.pool_size[a][i],
	      P.pool_used[a][i]);
	CHECK(P.pool_cap[a][i] == (i ? P.cls_cap[cls32] : P.cls_cap0[cls32]),
	      "pool %u capacity %u, class says %u/%u", i, P.pool_cap[a][i], P.cls_cap[cls32],
	      P.cls_cap0[cls32]);
	unsigned inuse = 0;
	for (unsigned j = 0; j < 64; j++)
		inuse += P.pool_state[a][j] == 2;
	CHECK(inuse == 1, "%u pools in use, expected the one of class 32", inuse);
	CHECK(!strcmp(P.arena_state[a], "live"), "arena state %s", P.arena_state[a]);

	/* the 3-page run */
	const struct memline *m = mem_at(&P, pfa_phys(big));
	CHECK(m && !strcmp(m->kind, "large") && m->base == pfa_phys(big) && m->pages == 3 + KMALLOC_SMALL_MAX / PAGE_SIZE &&
	      m->req == 3 * PAGE_SIZE + KMALLOC_SMALL_MAX && !m->cached, "large run: %s 0x%llx %llu req=%llu",
	      m ? m->kind : "none", m ? (unsigned long long)m->base : 0ull,
	      m ? (unsigned long long)m->pages : 0ull, m ? (unsigned long long)m->req : 0ull);
	CHECK(sum_pages(&P, "large") == 3 + KMALLOC_SMALL_MAX / PAGE_SIZE &&
	      P.totals_large_pages == 3 + KMALLOC_SMALL_MAX / PAGE_SIZE, "large pages %llu",
	      (unsigned long long)sum_pages(&P, "large"));

	/* the raw PFA block */
	m = mem_at(&P, raw);
	CHECK(m && !strcmp(m->kind, "pfa") && m->order == 2 && m->base == raw &&
	      m->pages == 4, "raw block: %s order %u", m ? m->kind : "none", m ? m->order : 0);

	/* freed: the run is gone or kept in the run cache */
	kfree(big);
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	m = mem_at(&P, pfa_phys(big));
	CHECK(m && (!strcmp(m->kind, "free") || (!strcmp(m->kind, "large") && m->cached)),
	      "freed run shows as %s%s", m ? m->kind : "none", m && m->cached ? " cached" : "");

	for (int j = 0; j < 10; j++)
		kfree(small[j]);
	pfa_free(raw, 2);
	kmalloc_trim();
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	CHECK(sum_pages(&P, "pfa") == 0 && sum_pages(&P, "large") == 0,
	      "blocks left after freeing everything");
}

TEST(every_pool_matches_kmalloc_stats)
{
	static void *p[6000];
	static struct kmalloc_stats st;

	setup();
	for (unsigned i = 0; i < 6000; i++) {
		p[i] = kmalloc(16 + rnd_below(2040), 0);
		REQUIRE(p[i], "kmalloc %u failed", i);
	}
	for (unsigned i = 0; i < 6000; i += 3)   /* holes: pools partly used */
		kfree(p[i]);
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	kmalloc_get_stats(&st);
	REQUIRE(P.narenas >= 3, "only %u arenas", P.narenas);
	for (unsigned c = 0; c < st.nclasses; c++) {
		uint64_t used = 0, avail = 0, pools = 0;
		for (unsigned a = 0; a < P.narenas; a++)
			for (unsigned i = 0; i < 64; i++)
				if (P.pool_state[a][i] == 2 && P.pool_size[a][i] == st.cls[c].size) {
					pools++;
					used += P.pool_used[a][i];
					avail += P.pool_cap[a][i] - P.pool_used[a][i];
				}
		CHECK(pools == st.cls[c].pools && used == st.cls[c].blocks_used &&
		      avail == st.cls[c].blocks_avail,
		      "class %u (%u B): dump %llu pools %llu/%llu, stats %llu pools %llu/%llu", c,
		      (unsigned)st.cls[c].size, (unsigned long long)pools,
		      (unsigned long long)used, (unsigned long long)avail,
		      (unsigned long long)st.cls[c].pools,
		      (unsigned long long)st.cls[c].blocks_used,
		      (unsigned long long)st.cls[c].blocks_avail);
	}
	for (unsigned i = 0; i < 6000; i++)
		if (i % 3)
			kfree(p[i]);
}

TEST(cache_slabs_are_their_own_owner)
{
	setup();
	struct kmem_cache *c = kmem_cache_create("heapdump-test", 200, 0, 0, NULL);
	REQUIRE(c, "kmem_cache_create failed");
	void *o = kmem_cache_alloc(c, 0);
	REQUIRE(o, "kmem_cache_alloc failed");
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	const struct memline *m = mem_at(&P, pfa_phys(o));
	CHECK(m && !strcmp(m->kind, "cache"), "the slab of a cache object shows as %s",
	      m ? m->kind : "none");
	kmem_cache_free(c, o);
	kmem_cache_destroy(c);
}

/* Fresh mode (pfa_setup_fresh, mm/pfa_internal.h): descriptors of the
 * lazy span and of the metadata are still zero; the dump must still
 * account for every page. */
TEST(fresh_mode_lazy_span)
{
	size_t map = 72 * MIB;
	uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	REQUIRE(m != MAP_FAILED, "mmap");
	uint8_t *base = (uint8_t *)(((uintptr_t)m + 4 * MIB - 1) & ~(uintptr_t)(4 * MIB - 1));
	pfa_setup_begin(0);
	pfa_setup_fresh();
	pfa_add_region((uintptr_t)base, 64 * MIB);
	REQUIRE(pfa_setup_end() == 0, "fresh setup failed");
	kmalloc_init();
	mm_percpu_enable(0);
	void *p = kmalloc(100, 0);
	dump();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	CHECK(sum_pages(&P, "meta") > 0, "no meta line in fresh mode");
	const struct memline *l = mem_at(&P, pfa_phys(p) & ~(uint64_t)(ARENA_SIZE - 1));
	CHECK(l && !strcmp(l->kind, "arena"), "the arena of a block shows as %s",
	      l ? l->kind : "none");
	kfree(p);
	kmalloc_trim();
	munmap(m, map);
}

/* The demo kernel's heap, on the host: 512 MiB, the demo's 4000 objects.
 * Prints the dump's size and time (the figures in docs/heapviz.md). */
TEST(demo_heap_size_and_time)
{
	static void *p[4000];

	setup_size(512 * MIB);
	for (unsigned i = 0; i < 4000; i++) {
		size_t n = i % 200 == 199 ? 3 * 4096 + i
			 : i % 16 == 15 ? 600 + (i * 37) % 1500 : 16 + (i * 7919) % 497;
		p[i] = kmalloc(n, 0);
		REQUIRE(p[i], "kmalloc failed");
	}
	double t0 = harness_now();
	dump();
	double t1 = harness_now();
	parse(&P);
	CHECK_WELL_FORMED(&P);
	CHECK(dump_len < 100 * 1024, "demo dump is %zu bytes", dump_len);
	printf("# demo heap (512 MiB, 4000 objects): dump %zu bytes, %u lines, %.2f ms\n",
	       dump_len, P.lines, (t1 - t0) * 1e3);
	for (unsigned i = 0; i < 4000; i++)
		kfree(p[i]);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

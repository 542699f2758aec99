/*
 * fuzz_kmalloc.c - libFuzzer harness for strata's kmalloc, kmem_cache and
 * per-CPU layers over the real page-frame allocator (host build).
 *
 *   clang -fsanitize=fuzzer,address,undefined ... (scripts/fuzz builds it)
 *
 * Setup (first call): the PFA over a 64 MiB mmap'd region, 4 MiB aligned,
 * with one reserved page in it (as tests/host/test_kmalloc.c), then
 * kmalloc_init().  The PFA's free page count then is the baseline every
 * input must return to.
 *
 * Input format: byte 0 is a header (bit 0: per-CPU magazines off for this
 * input, set while nothing is allocated), then a sequence of operations,
 * each an opcode byte followed by the argument bytes it reads (missing
 * bytes read as 0).  Operations:
 *
 *   kmalloc / kzalloc / kcalloc (also n * size overflowing) /
 *   kmalloc_aligned (good and bad alignments) / krealloc (grow, shrink,
 *   to 0, from NULL, +-KM_ZERO) / kfree / kmalloc_usable_size /
 *   kmem_cache_create (sizes 0 .. > 4 MiB, alignments good and bad,
 *   with and without constructor, +-KMEM_HWCACHE_ALIGN, KMEM_NO_PERCPU) /
 *   kmem_cache_alloc (+-KM_ZERO) / kmem_cache_free / kmem_cache_shrink /
 *   kmem_cache_destroy (also with objects still live: must refuse) /
 *   mm_reclaim / mm_cpu_drain / rewrite a block / check now /
 *   bad frees that must be reported (kmalloc_last_report: exactly one new
 *   report of a KM_BAD_* / KM_DOUBLE_FREE kind, nothing freed): interior
 *   pointers, double free of a block just freed, pointers strata never
 *   handed out (stack, globals, the reserved page, pages free in the PFA,
 *   addresses no block can start at), objects of another cache.
 *
 * Shadow state: up to NBLK live blocks with their sizes and an id; every
 * block is filled with a pattern derived from its id (all of it up to
 * 64 KiB, beyond that the first and last 16 KiB and 64 bytes of every
 * page), verified before every free/realloc and on demand.  Invariants
 * (a violation prints the reason, the last operations and what strata
 * wrote, then __builtin_trap()):
 *   - every block lies in managed RAM and overlaps no other live block;
 *   - alignment: 16 bytes always, power-of-two classes (<= 2048) aligned
 *     to their size, large runs to a page, kmalloc_aligned to its request,
 *     cache objects to their cache's alignment;
 *   - usable size >= requested; small iff requested <= KMALLOC_SMALL_MAX;
 *   - KM_ZERO memory reads zero; krealloc keeps the contents (and zeroes
 *     the growth with KM_ZERO); constructed objects come back constructed;
 *   - a successful call makes no report; a NULL result makes exactly one
 *     report of the right KM_FAIL_* kind, and NOMEM only when the PFA has
 *     no free block big enough (checked right after the failure);
 *   - every N ops and after each input: kmalloc_check(),
 *     kmem_cache_check_all(), pfa_check() return 0, no rejected PFA call,
 *     and the pages the PFA says are held = kmalloc's pfa_pages + pages of
 *     cache slabs;
 *   - end of input: everything freed, caches destroyed, mm_reclaim():
 *     the PFA's free page count equals the baseline (no leak).
 *
 * strata's output goes into a capture buffer (arch/host/host.h) while the
 * fuzzer runs and is printed only with a failure.  FUZZ_TRACE=1 in the
 * environment prints every operation (for reproducing a crash input).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "host.h"
#include "host_ram.h"

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)
#define RAM_SIZE (64 * MIB)
#define NBLK 64            /* shadow slots for live blocks */
#define NCACHE 4           /* cache slots */
#define CHECK_EVERY 32     /* full consistency check every N operations */
#define FULL_FILL (64 * KIB)
#define EDGE (16 * KIB)
#define PAGE_SAMPLE 64

/* ------------------------------------------------------------------ */
/* state                                                              */
/* ------------------------------------------------------------------ */

static uint8_t *ram;              /* RAM_SIZE bytes, 4 MiB aligned */
static uint8_t *reserved_page;    /* pfa_reserve()d, inside ram */
static uint64_t baseline_free;    /* PFA free pages after setup */
static unsigned arena_order;      /* PFA order of one kmalloc arena */
static bool trace;
static char capbuf[1 << 16];
static uint64_t next_id = 1;
static unsigned long nops;        /* operations in this input */

enum { B_NONE, B_KMALLOC, B_CACHE };

struct blk {
	uint8_t *p;
	size_t req;        /* bytes asked for */
	size_t n;          /* usable size (kmalloc) / object size (cache): pattern length */
	uint64_t id;       /* pattern id */
	int kind;
	int cache;         /* cache slot for B_CACHE */
	bool run;          /* B_KMALLOC: a large run (asked above the classes, or
	                      aligned beyond every class: kmalloc_aligned) */
};

struct cch {
	struct kmem_cache *c;
	size_t size, align;   /* align: effective (objects must be aligned to it) */
	unsigned flags;
	bool ctor;
	long live;            /* objects in shadow slots */
};

static struct blk blk[NBLK];
static struct cch cch[NCACHE];
static size_t ctor_size[NCACHE];   /* object size for the slot's constructor */

/* last operations, for failure messages */
#define HIST 24
static char hist[HIST][128];
static unsigned hist_n;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	char *h = hist[hist_n++ % HIST];
	va_start(ap, fmt);
	vsnprintf(h, sizeof hist[0], fmt, ap);
	va_end(ap);
	if (trace)
		fprintf(stderr, "op %lu: %s\n", nops, h);
}

static __attribute__((noreturn, format(printf, 2, 3))) void fail(int line, const char *fmt, ...)
{
	size_t n = host_capture_stop();
	va_list ap;

	fprintf(stderr, "\n==== fuzz_kmalloc: invariant violated (fuzz_kmalloc.c:%d, op %lu): ",
		line, nops);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n---- last operations:\n");
	unsigned first = hist_n > HIST ? hist_n - HIST : 0;
	for (unsigned i = first; i < hist_n; i++)
		fprintf(stderr, "  %s\n", hist[i % HIST]);
	fprintf(stderr, "---- strata output of this input (%zu bytes):\n%s\n====\n", n, capbuf);
	__builtin_trap();
}

#define REQUIRE(cond, ...)                               \
	do {                                             \
		if (__builtin_expect(!(cond), 0))        \
			fail(__LINE__, __VA_ARGS__);     \
	} while (0)

/* ------------------------------------------------------------------ */
/* input                                                              */
/* ------------------------------------------------------------------ */

struct rd {
	const uint8_t *d;
	size_t n, i;
};

static uint8_t u8(struct rd *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static uint16_t u16(struct rd *r) { return (uint16_t)(u8(r) | u8(r) << 8); }
static uint32_t u32(struct rd *r) { return (uint32_t)u16(r) | (uint32_t)u16(r) << 16; }

/* A request size: mostly small and realistic, but every edge too. */
static size_t pick_size(struct rd *r)
{
	static const size_t edge[] = {
		0, 1, 2, 8, 15, 16, 17, 31, 32, 33, 48, 511, 512, 513, 1024, 2047, 2048,
		2049, 4095, 4096, 4097, 8192, 12288, 65536, 1 * MIB, 2 * MIB + 1,
		4 * MIB - 4096, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 8 * MIB,
		SIZE_MAX, SIZE_MAX / 2 + 1,
	};
	uint8_t k = u8(r);
	switch (k % 16) {
	case 0: case 1: case 2: case 3: case 4:
		return 1 + (size_t)u8(r);                    /* 1..256 */
	case 5: case 6:
		return (size_t)u8(r) * 16;                   /* exact small classes */
	case 7: case 8:
		return 1 + u16(r) % 2048;                    /* any small */
	case 9:
		return 512 + (size_t)u8(r) * 6;              /* the 64-byte classes */
	case 10:
		return 1 + u16(r) % (64 * KIB);              /* up to 64 KiB */
	case 11: {
		size_t pages = 1 + u8(r) % 64;               /* page multiples +- a bit */
		return pages * 4096 + (size_t)(int8_t)u8(r);
	}
	case 12:
		return u32(r) % (4 * MIB + 2);               /* anything up to 4 MiB + 1 */
	case 13: case 14:
		return edge[u8(r) % (sizeof edge / sizeof edge[0])];
	default:
		return 1 + u8(r) % 64;                       /* tiny */
	}
}

/* ------------------------------------------------------------------ */
/* patterns                                                           */
/* ------------------------------------------------------------------ */

/* The pattern loops touch up to ~100 KiB per block: without coverage
 * callbacks in them the fuzzer runs several times faster, and their
 * branches tell it nothing about strata anyway. */
#define NOCOV __attribute__((no_sanitize("coverage")))

NOCOV static inline uint64_t wpat(uint64_t id, size_t w)
{
	uint64_t x = id * 0x9E3779B97F4A7C15ull + (uint64_t)w * 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	x *= 0x94D049BB133111EBull;
	return x ^ (x >> 32);
}

NOCOV static inline uint8_t bpat(uint64_t id, size_t o)
{
	return (uint8_t)(wpat(id, o / 8) >> (o % 8 * 8));
}

enum walk_op { W_FILL, W_CHECK, W_ZERO_CHECK };

/* Act on [lo, hi) of p, both inside the sampled part of a block of
 * `size` bytes.  Returns the offset of the first bad byte or SIZE_MAX. */
NOCOV static size_t act(uint8_t *p, size_t lo, size_t hi, enum walk_op op, uint64_t id)
{
	size_t o = lo;
	while (o < hi) {
		if ((o & 7) == 0 && o + 8 <= hi && ((uintptr_t)(p + o) & 7) == 0) {
			uint64_t *w = (uint64_t *)(p + o);
			uint64_t want = op == W_ZERO_CHECK ? 0 : wpat(id, o / 8);
			if (op == W_FILL)
				*w = want;
			else if (*w != want)
				for (size_t b = 0; b < 8; b++)
					if (p[o + b] != (uint8_t)(want >> (b * 8)))
						return o + b;
			o += 8;
		} else {
			uint8_t want = op == W_ZERO_CHECK ? 0 : bpat(id, o);
			if (op == W_FILL)
				p[o] = want;
			else if (p[o] != want)
				return o;
			o++;
		}
	}
	return SIZE_MAX;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* The sampled parts of a block of `size` bytes, intersected with [lo, hi). */
NOCOV static size_t walk(uint8_t *p, size_t size, size_t lo, size_t hi, enum walk_op op, uint64_t id)
{
	size_t bad;
	hi = min_sz(hi, size);
	if (lo >= hi)
		return SIZE_MAX;
	if (size <= FULL_FILL)
		return act(p, lo, hi, op, id);
	/* head, one piece of every page, tail */
	bad = act(p, lo, min_sz(hi, EDGE), op, id);
	if (bad != SIZE_MAX)
		return bad;
	for (size_t pg = EDGE; pg < size - EDGE; pg += 4096) {
		size_t a = max_sz(lo, pg), b = min_sz(hi, min_sz(pg + PAGE_SAMPLE, size - EDGE));
		if (a < b && (bad = act(p, a, b, op, id)) != SIZE_MAX)
			return bad;
	}
	return act(p, max_sz(lo, size - EDGE), hi, op, id);
}

/* ------------------------------------------------------------------ */
/* reports and consistency                                            */
/* ------------------------------------------------------------------ */

static struct kmalloc_report last_report(void)
{
	struct kmalloc_report r;
	kmalloc_last_report(&r);
	return r;
}

static uint64_t serial(void) { return last_report().serial; }

static bool bad_kind(enum kmalloc_report_kind k)
{
	return (k >= KM_BAD_UNMANAGED && k <= KM_BAD_NOT_IN_USE);
}

/* A call that must not report anything. */
static void expect_quiet(uint64_t before, const char *what)
{
	struct kmalloc_report r = last_report();
	REQUIRE(r.serial == before, "%s made a report it should not: %s (%s) ptr %p",
		what, kmalloc_report_name(r.kind), r.op ? r.op : "?", r.ptr);
}

/* A bad pointer given to strata: exactly one report of a bad-pointer
 * kind (want < 0: any of them) naming the pointer. */
static void expect_bad(uint64_t before, int want, const void *ptr, const char *what)
{
	struct kmalloc_report r = last_report();
	REQUIRE(r.serial == before + 1, "%s(%p): %llu reports instead of 1", what, ptr,
		(unsigned long long)(r.serial - before));
	REQUIRE(bad_kind(r.kind), "%s(%p): report kind %s is not a bad-pointer kind", what, ptr,
		kmalloc_report_name(r.kind));
	REQUIRE(want < 0 || r.kind == (enum kmalloc_report_kind)want,
		"%s(%p): reported as '%s', expected '%s'", what, ptr, kmalloc_report_name(r.kind),
		kmalloc_report_name((enum kmalloc_report_kind)want));
	REQUIRE(r.ptr == ptr, "%s(%p): report names %p", what, ptr, r.ptr);
}

static struct pfa_stats pst;

static uint64_t pfa_free_pages(void)
{
	pfa_get_stats(&pst);
	return pst.free_pages;
}

static unsigned ceil_log2(uint64_t n)
{
	unsigned k = 0;
	while (((uint64_t)1 << k) < n)
		k++;
	return k;
}

/* An allocation of `size` (alignment `align`) returned NULL: exactly one
 * report, of the kind the documentation promises. */
static void expect_fail(uint64_t before, size_t size, size_t align, const char *what)
{
	struct kmalloc_report r = last_report();
	REQUIRE(r.serial == before + 1, "%s(%zu) = NULL with %llu reports instead of 1", what,
		size, (unsigned long long)(r.serial - before));
	if (size > KMALLOC_MAX_SIZE) {
		REQUIRE(r.kind == KM_FAIL_TOO_LARGE, "%s(%zu) = NULL, reported '%s'", what, size,
			kmalloc_report_name(r.kind));
		return;
	}
	REQUIRE(r.kind == KM_FAIL_NOMEM, "%s(%zu, align %zu) = NULL, reported '%s'", what, size,
		align, kmalloc_report_name(r.kind));
	/* out of memory is believable only if the PFA has no block that would do */
	unsigned need;
	if (size <= KMALLOC_SMALL_MAX && align <= 2048)
		need = arena_order;
	else {
		need = ceil_log2((size + PAGE_SIZE - 1) / PAGE_SIZE);
		if (align > PAGE_SIZE && ceil_log2(align / PAGE_SIZE) > need)
			need = ceil_log2(align / PAGE_SIZE);
	}
	pfa_get_stats(&pst);
	REQUIRE(pst.free_pages == 0 || pst.largest_free_order < need,
		"%s(%zu, align %zu) = NULL (out of memory) but the PFA has a free block of order "
		"%u (%llu pages free)", what, size, align, pst.largest_free_order,
		(unsigned long long)pst.free_pages);
}

static struct kmalloc_stats kst;

static void check_all(const char *when)
{
	char why[64];
	snprintf(why, sizeof why, "%s", when);
	int k = kmalloc_check();
	REQUIRE(k == 0, "kmalloc_check() = %d (%s)", k, why);
	int c = kmem_cache_check_all();
	REQUIRE(c == 0, "kmem_cache_check_all() = %d (%s)", c, why);
	int p = pfa_check();
	REQUIRE(p == 0, "pfa_check() = %d (%s)", p, why);
	uint64_t free_now = pfa_free_pages();
	REQUIRE(pst.bad_calls == 0, "the PFA rejected %llu calls from strata (%s)",
		(unsigned long long)pst.bad_calls, why);

	/* every page held from the PFA is kmalloc's or a cache slab's */
	kmalloc_get_stats(&kst);
	uint64_t slab_pages = 0;
	for (int i = 0; i < NCACHE; i++) {
		if (!cch[i].c)
			continue;
		struct kmem_cache_stats cs;
		kmem_cache_get_stats(cch[i].c, &cs);
		slab_pages += cs.slabs << cs.slab_order;
	}
	uint64_t held = baseline_free - free_now;
	REQUIRE(held == kst.pfa_pages + slab_pages,
		"PFA says %llu pages held; kmalloc holds %llu, cache slabs %llu (%s)",
		(unsigned long long)held, (unsigned long long)kst.pfa_pages,
		(unsigned long long)slab_pages, why);
	uint64_t parts = kst.bytes_allocated_blocks + kst.bytes_available_blocks +
			 kst.bytes_unused_pools + kst.bytes_pool_headers + kst.bytes_quantization;
	REQUIRE(parts == kst.arenas_current * kst.arena_size,
		"arena bytes %llu != sum of their parts %llu (%s)",
		(unsigned long long)(kst.arenas_current * kst.arena_size),
		(unsigned long long)parts, why);

	/* and the shadow blocks are intact */
	for (int i = 0; i < NBLK; i++) {
		struct blk *b = &blk[i];
		if (b->kind == B_NONE)
			continue;
		size_t bad = walk(b->p, b->n, 0, b->n, W_CHECK, b->id);
		REQUIRE(bad == SIZE_MAX, "block %d (%p, %zu bytes, id %llu) damaged at +%zu (%s)",
			i, (void *)b->p, b->n, (unsigned long long)b->id, bad, why);
	}
}

/* ------------------------------------------------------------------ */
/* shadow blocks                                                      */
/* ------------------------------------------------------------------ */

static bool in_ram(const void *p, size_t n)
{
	return (const uint8_t *)p >= ram && n <= RAM_SIZE &&
	       (const uint8_t *)p <= ram + RAM_SIZE - n;
}

static void check_placement(const void *p, size_t n, int self, const char *what)
{
	REQUIRE(in_ram(p, n ? n : 1), "%s = %p (%zu bytes) is not inside managed RAM", what, p, n);
	const uint8_t *a = p;
	for (int i = 0; i < NBLK; i++) {
		if (i == self || blk[i].kind == B_NONE)
			continue;
		const uint8_t *b = blk[i].p;
		size_t bn = blk[i].n ? blk[i].n : 1;
		REQUIRE(a + n <= b || b + bn <= a,
			"%s = %p (%zu bytes) overlaps live block %d at %p (%zu bytes)", what, p, n,
			i, (const void *)b, bn);
	}
}

static void verify(int i, const char *when)
{
	struct blk *b = &blk[i];
	size_t bad = walk(b->p, b->n, 0, b->n, W_CHECK, b->id);
	REQUIRE(bad == SIZE_MAX, "block %d (%p, %zu bytes, id %llu) damaged at +%zu before %s", i,
		(void *)b->p, b->n, (unsigned long long)b->id, bad, when);
}

/* Checks of a fresh kmalloc block of `req` bytes asked with `align`. */
static size_t check_kmalloc_block(void *p, size_t req, size_t align, bool zero, const char *what)
{
	uint64_t before = serial();
	size_t u = kmalloc_usable_size(p);
	expect_quiet(before, "kmalloc_usable_size of a fresh block");
	REQUIRE(u >= req && u > 0, "%s(%zu) = %p: usable size %zu", what, req, p, u);
	REQUIRE(((uintptr_t)p & (KMALLOC_MIN_ALIGN - 1)) == 0, "%s(%zu) = %p: not 16-byte aligned",
		what, req, p);
	if (req <= KMALLOC_SMALL_MAX && align <= KMALLOC_MIN_ALIGN)
		REQUIRE(u <= KMALLOC_SMALL_MAX, "%s(%zu): usable %zu, expected a small block", what,
			req, u);
	if (req > KMALLOC_SMALL_MAX)
		REQUIRE(u > KMALLOC_SMALL_MAX, "%s(%zu): usable %zu, expected a large run", what, req,
			u);
	if (u <= KMALLOC_SMALL_MAX && (u & (u - 1)) == 0)
		REQUIRE(((uintptr_t)p & (u - 1)) == 0,
			"%s(%zu) = %p: power-of-two class %zu not aligned to its size", what, req, p, u);
	if (u > KMALLOC_SMALL_MAX)
		REQUIRE(((uintptr_t)p & (PAGE_SIZE - 1)) == 0 && u % PAGE_SIZE == 0,
			"%s(%zu) = %p: large run not page aligned / usable %zu", what, req, p, u);
	if (align > 1)
		REQUIRE(((uintptr_t)p & (align - 1)) == 0, "%s(%zu, align %zu) = %p: misaligned",
			what, req, align, p);
	check_placement(p, u, -1, what);
	if (zero) {
		size_t bad = walk(p, u, 0, u, W_ZERO_CHECK, 0);
		REQUIRE(bad == SIZE_MAX, "%s(%zu) = %p with KM_ZERO: byte +%zu is 0x%02x", what, req,
			p, bad, ((uint8_t *)p)[bad]);
	}
	return u;
}

static void put_kmalloc(int i, void *p, size_t req, size_t u, size_t align)
{
	struct blk *b = &blk[i];
	if (trace)
		fprintf(stderr, "   -> %p (ram + 0x%zx), usable %zu\n", p, (size_t)((uint8_t *)p - ram), u);
	*b = (struct blk){ .p = p, .req = req, .n = u, .id = next_id++, .kind = B_KMALLOC,
			   .run = req > KMALLOC_SMALL_MAX || align > KMALLOC_SMALL_MAX };
	walk(b->p, b->n, 0, b->n, W_FILL, b->id);
}

static void ctor_fill(int slot, void *obj)
{
	walk(obj, ctor_size[slot], 0, ctor_size[slot], W_FILL, 0xC0DE0000ull + (uint64_t)slot);
}
static void ctor0(void *obj) { ctor_fill(0, obj); }
static void ctor1(void *obj) { ctor_fill(1, obj); }
static void ctor2(void *obj) { ctor_fill(2, obj); }
static void ctor3(void *obj) { ctor_fill(3, obj); }
static void (*const ctors[NCACHE])(void *) = { ctor0, ctor1, ctor2, ctor3 };

/* Free slot i the right way (verified first); no report allowed. */
static void release(int i)
{
	struct blk *b = &blk[i];
	if (b->kind == B_NONE)
		return;
	verify(i, "free");
	uint64_t before = serial();
	if (b->kind == B_KMALLOC) {
		kfree(b->p);
		expect_quiet(before, "kfree of a live block");
	} else {
		struct cch *c = &cch[b->cache];
		if (c->ctor)   /* give it back constructed, as the contract asks */
			ctor_fill(b->cache, b->p);
		kmem_cache_free(c->c, b->p);
		expect_quiet(before, "kmem_cache_free of a live object");
		c->live--;
	}
	b->kind = B_NONE;
}

/* ------------------------------------------------------------------ */
/* operations                                                         */
/* ------------------------------------------------------------------ */

static void op_alloc(struct rd *r, int how)
{
	int i = u8(r) % NBLK;
	size_t size = pick_size(r), n = 0;
	unsigned flags = u8(r) & 1 ? KM_ZERO : 0;
	const char *what;
	void *p;

	release(i);
	uint64_t before = serial();
	switch (how) {
	case 0:
		what = "kmalloc";
		note("blk[%d] = kmalloc(%zu, %s)", i, size, flags ? "KM_ZERO" : "0");
		p = kmalloc(size, flags);
		break;
	case 1:
		what = "kzalloc";
		flags = KM_ZERO;
		note("blk[%d] = kzalloc(%zu)", i, size);
		p = kzalloc(size, 0);
		break;
	default: {
		what = "kcalloc";
		flags = KM_ZERO;
		uint8_t k = u8(r);
		if (k % 4 == 0) {             /* n * size overflows */
			if (size < 2)
				size = 2 + u8(r);
			n = SIZE_MAX / size + 1 + (k >> 2);
		} else {
			n = 1 + k % 64;
			size = 1 + size / n;
		}
		note("blk[%d] = kcalloc(%zu, %zu)", i, n, size);
		p = kcalloc(n, size, 0);
		size_t bytes;
		if (__builtin_mul_overflow(n, size, &bytes)) {
			struct kmalloc_report rep = last_report();
			REQUIRE(!p, "kcalloc(%zu, %zu) overflows but returned %p", n, size, p);
			REQUIRE(rep.serial == before + 1 && rep.kind == KM_FAIL_OVERFLOW,
				"kcalloc(%zu, %zu) overflow reported as '%s'", n, size,
				kmalloc_report_name(rep.kind));
			return;
		}
		size = bytes;
		break;
	}
	}
	if (!p) {
		expect_fail(before, size, 0, what);
		return;
	}
	expect_quiet(before, what);
	REQUIRE(size <= KMALLOC_MAX_SIZE, "%s(%zu) larger than KMALLOC_MAX_SIZE succeeded", what,
		size);
	size_t u = check_kmalloc_block(p, size, 0, flags & KM_ZERO, what);
	put_kmalloc(i, p, size, u, 0);
}

static void op_aligned(struct rd *r)
{
	static const size_t aligns[] = {
		1, 2, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
		64 * 1024, 1 * MIB, 2 * MIB, 4 * MIB,
		8 * MIB, (size_t)1 << 63,   /* above the largest block */
		/* bad */ 0, 3, 24, 48, 4097, SIZE_MAX,
	};
	int i = u8(r) % NBLK;
	size_t size = pick_size(r);
	size_t align = aligns[u8(r) % (sizeof aligns / sizeof aligns[0])];
	unsigned flags = u8(r) & 1 ? KM_ZERO : 0;
	bool good = align && !(align & (align - 1));

	release(i);
	note("blk[%d] = kmalloc_aligned(%zu, %zu, %s)", i, size, align, flags ? "KM_ZERO" : "0");
	uint64_t before = serial();
	void *p = kmalloc_aligned(size, align, flags);
	if (!good) {
		struct kmalloc_report rep = last_report();
		REQUIRE(!p, "kmalloc_aligned(%zu, bad align %zu) = %p", size, align, p);
		REQUIRE(rep.serial == before + 1 && rep.kind == KM_FAIL_BAD_ALIGN,
			"kmalloc_aligned(%zu, bad align %zu) reported '%s'", size, align,
			kmalloc_report_name(rep.kind));
		return;
	}
	if (!p) {
		expect_fail(before, size, align, "kmalloc_aligned");
		return;
	}
	expect_quiet(before, "kmalloc_aligned");
	size_t u = check_kmalloc_block(p, size, align, flags & KM_ZERO, "kmalloc_aligned");
	put_kmalloc(i, p, size, u, align);
}

static void op_realloc(struct rd *r)
{
	int i = u8(r) % NBLK;
	uint8_t k = u8(r);
	unsigned flags = k & 1 ? KM_ZERO : 0;
	struct blk *b = &blk[i];
	size_t size;

	if (b->kind == B_CACHE)
		release(i);
	switch ((k >> 1) % 6) {
	case 0:
		size = 0;
		break;
	case 1:   /* shrink */
		size = b->kind ? (b->n * (1 + u8(r))) / 257 : pick_size(r);
		break;
	case 2:   /* grow a little */
		size = b->kind ? b->n + 1 + u8(r) : pick_size(r);
		break;
	case 3:   /* double */
		size = b->kind ? b->n * 2 : pick_size(r);
		break;
	default:
		size = pick_size(r);
		break;
	}
	uint64_t before = serial();
	if (b->kind == B_NONE) {
		note("blk[%d] = krealloc(NULL, %zu, %s)", i, size, flags ? "KM_ZERO" : "0");
		void *p = krealloc(NULL, size, flags);
		if (!p) {
			expect_fail(before, size, 0, "krealloc(NULL)");
			return;
		}
		expect_quiet(before, "krealloc(NULL)");
		size_t u = check_kmalloc_block(p, size, 0, flags & KM_ZERO, "krealloc(NULL)");
		put_kmalloc(i, p, size, u, 0);
		return;
	}
	verify(i, "krealloc");
	note("blk[%d] = krealloc(%p [%zu], %zu, %s)", i, (void *)b->p, b->n, size,
	     flags ? "KM_ZERO" : "0");
	void *q = krealloc(b->p, size, flags);
	if (size == 0) {
		REQUIRE(!q, "krealloc(p, 0) = %p, expected NULL", q);
		expect_quiet(before, "krealloc(p, 0)");
		b->kind = B_NONE;
		return;
	}
	if (!q) {
		REQUIRE(size > b->n, "krealloc(%p [%zu], %zu): a shrink failed", (void *)b->p, b->n,
			size);
		expect_fail(before, size, 0, "krealloc");
		verify(i, "use after a failed krealloc");
		return;
	}
	expect_quiet(before, "krealloc");
	struct blk old = *b;
	b->kind = B_NONE;    /* the old block is gone; q may overlap it */
	size_t keep = min_sz(old.n, size);
	size_t bad = walk(q, old.n, 0, keep, W_CHECK, old.id);
	REQUIRE(bad == SIZE_MAX, "krealloc(%p [%zu], %zu) = %p lost the contents at +%zu",
		(void *)old.p, old.n, size, q, bad);
	size_t u = check_kmalloc_block(q, size, 0, false, "krealloc");
	if (flags & KM_ZERO && u > old.n) {
		bad = walk(q, u, old.n, u, W_ZERO_CHECK, 0);
		REQUIRE(bad == SIZE_MAX, "krealloc(%p [%zu], %zu, KM_ZERO) = %p: growth byte +%zu "
			"is 0x%02x", (void *)old.p, old.n, size, q, bad, ((uint8_t *)q)[bad]);
	}
	put_kmalloc(i, q, size, u, 0);
}

static void op_free(struct rd *r)
{
	int i = u8(r) % NBLK;
	if (blk[i].kind != B_NONE)
		note("free blk[%d] %p", i, (void *)blk[i].p);
	release(i);
}

static void op_rewrite(struct rd *r)
{
	int i = u8(r) % NBLK;
	struct blk *b = &blk[i];
	if (b->kind == B_NONE)
		return;
	verify(i, "rewrite");
	b->id = next_id++;
	walk(b->p, b->n, 0, b->n, W_FILL, b->id);
}

static void op_usable(struct rd *r)
{
	int i = u8(r) % NBLK;
	struct blk *b = &blk[i];
	uint64_t before = serial();
	if (b->kind == B_KMALLOC) {
		size_t u = kmalloc_usable_size(b->p);
		expect_quiet(before, "kmalloc_usable_size");
		REQUIRE(u == b->n, "kmalloc_usable_size(%p) = %zu, was %zu", (void *)b->p, u, b->n);
	} else {
		REQUIRE(kmalloc_usable_size(NULL) == 0, "kmalloc_usable_size(NULL) != 0");
		kfree(NULL);
		expect_quiet(before, "kfree(NULL) / kmalloc_usable_size(NULL)");
	}
}

static void op_cache_create(struct rd *r)
{
	static const size_t sizes[] = {
		1, 7, 8, 12, 24, 64, 100, 192, 256, 1000, 2048, 4096, 5000, 12288, 65536,
		300 * 1024, 520 * 1024,
		/* fail */ 0, 4 * MIB, SIZE_MAX,
	};
	static const size_t aligns[] = { 0, 0, 0, 8, 16, 32, 64, 256, 4096, /* bad */ 3, 8192 };
	int s = u8(r) % NCACHE;
	size_t size = sizes[u8(r) % (sizeof sizes / sizeof sizes[0])];
	size_t align = aligns[u8(r) % (sizeof aligns / sizeof aligns[0])];
	uint8_t k = u8(r);
	unsigned flags = (k & 1 ? KMEM_HWCACHE_ALIGN : 0) | (k & 2 ? KMEM_NO_PERCPU : 0);
	bool ctor = k & 4;
	struct cch *c = &cch[s];

	if (c->c)
		return;    /* slot taken: destroy first */
	size_t eff = align ? align : 8;
	if (flags & KMEM_HWCACHE_ALIGN && eff < KMEM_CACHE_LINE)
		eff = KMEM_CACHE_LINE;
	bool bad_align = (eff & (eff - 1)) || eff > PAGE_SIZE;
	ctor_size[s] = size;
	note("cache[%d] = kmem_cache_create(%zu, align %zu, flags %u, %s)", s, size, align, flags,
	     ctor ? "ctor" : "no ctor");
	uint64_t before = serial();
	char name[16];
	snprintf(name, sizeof name, "fuzz%d", s);
	struct kmem_cache *kc = kmem_cache_create(name, size, align, flags, ctor ? ctors[s] : NULL);
	if (!kc) {
		struct kmalloc_report rep = last_report();
		REQUIRE(rep.serial == before + 1, "kmem_cache_create failed with %llu reports",
			(unsigned long long)(rep.serial - before));
		if (bad_align)
			REQUIRE(rep.kind == KM_FAIL_BAD_ALIGN, "kmem_cache_create(align %zu): '%s'",
				align, kmalloc_report_name(rep.kind));
		else if (size == 0 || size >= KMALLOC_MAX_SIZE)
			REQUIRE(rep.kind == KM_FAIL_TOO_LARGE, "kmem_cache_create(%zu): '%s'", size,
				kmalloc_report_name(rep.kind));
		else
			REQUIRE(rep.kind == KM_FAIL_TOO_LARGE || rep.kind == KM_FAIL_NOMEM,
				"kmem_cache_create(%zu): '%s'", size, kmalloc_report_name(rep.kind));
		return;
	}
	expect_quiet(before, "kmem_cache_create");
	REQUIRE(!bad_align && size > 0 && size < KMALLOC_MAX_SIZE,
		"kmem_cache_create(%zu, align %zu) should have failed", size, align);
	*c = (struct cch){ .c = kc, .size = size, .align = eff, .flags = flags, .ctor = ctor };
	struct kmem_cache_stats st;
	kmem_cache_get_stats(kc, &st);
	REQUIRE(st.object_size == size && st.stride >= size && st.stride % eff == 0,
		"cache stats: object %zu stride %zu for size %zu align %zu", st.object_size,
		st.stride, size, eff);
}

static void op_cache_alloc(struct rd *r)
{
	int s = u8(r) % NCACHE;
	int i = u8(r) % NBLK;
	unsigned flags = u8(r) % 4 == 0 ? KM_ZERO : 0;
	struct cch *c = &cch[s];

	if (!c->c)
		return;
	release(i);
	note("blk[%d] = kmem_cache_alloc(cache[%d] (%zu), %s)", i, s, c->size,
	     flags ? "KM_ZERO" : "0");
	uint64_t before = serial();
	void *p = kmem_cache_alloc(c->c, flags);
	if (!p) {
		struct kmalloc_report rep = last_report();
		REQUIRE(rep.serial == before + 1 && rep.kind == KM_FAIL_NOMEM,
			"kmem_cache_alloc = NULL, reported '%s'", kmalloc_report_name(rep.kind));
		return;
	}
	expect_quiet(before, "kmem_cache_alloc");
	REQUIRE(((uintptr_t)p & (c->align - 1)) == 0, "kmem_cache_alloc(cache[%d]) = %p, not "
		"aligned to %zu", s, p, c->align);
	check_placement(p, c->size, -1, "kmem_cache_alloc");
	size_t bad = SIZE_MAX;
	if (flags & KM_ZERO)
		bad = walk(p, c->size, 0, c->size, W_ZERO_CHECK, 0);
	else if (c->ctor)
		bad = walk(p, c->size, 0, c->size, W_CHECK, 0xC0DE0000ull + (uint64_t)s);
	REQUIRE(bad == SIZE_MAX, "kmem_cache_alloc(cache[%d], %s) = %p: not %s at +%zu", s,
		flags ? "KM_ZERO" : "0", p, flags ? "zeroed" : "in its constructed state", bad);
	blk[i] = (struct blk){ .p = p, .req = c->size, .n = c->size, .id = next_id++,
			       .kind = B_CACHE, .cache = s };
	walk(p, c->size, 0, c->size, W_FILL, blk[i].id);
	c->live++;
}

static void op_cache_shrink(struct rd *r)
{
	int s = u8(r) % NCACHE;
	if (!cch[s].c)
		return;
	note("kmem_cache_shrink(cache[%d])", s);
	uint64_t before = serial();
	kmem_cache_shrink(cch[s].c);
	expect_quiet(before, "kmem_cache_shrink");
}

static void op_cache_destroy(struct rd *r)
{
	int s = u8(r) % NCACHE;
	bool free_first = u8(r) & 1;
	struct cch *c = &cch[s];
	if (!c->c)
		return;
	if (free_first)
		for (int i = 0; i < NBLK; i++)
			if (blk[i].kind == B_CACHE && blk[i].cache == s)
				release(i);
	note("kmem_cache_destroy(cache[%d]) with %ld live", s, c->live);
	long left = kmem_cache_destroy(c->c);
	REQUIRE(left == c->live, "kmem_cache_destroy(cache[%d]) = %ld, but %ld objects are live",
		s, left, c->live);
	if (left == 0)
		c->c = NULL;
}

/* A live block, starting the search at slot `from`: -1 if none. */
static int find_live(int from, int kind)
{
	for (int k = 0; k < NBLK; k++) {
		int i = (from + k) % NBLK;
		if (blk[i].kind != B_NONE && (kind == B_NONE || blk[i].kind == kind))
			return i;
	}
	return -1;
}

/* Hand a bad pointer to one of the calls that take pointers. */
static void bad_call(uint8_t how, void *ptr, int want, struct kmem_cache *cache)
{
	uint64_t before = serial();
	if (cache) {
		note("kmem_cache_free(bad %p)", ptr);
		kmem_cache_free(cache, ptr);
		expect_bad(before, want, ptr, "kmem_cache_free");
		return;
	}
	switch (how % 4) {
	case 0:
	case 1:
		note("kfree(bad %p)", ptr);
		kfree(ptr);
		expect_bad(before, want, ptr, "kfree");
		break;
	case 2: {
		note("krealloc(bad %p)", ptr);
		void *q = krealloc(ptr, 64, 0);
		REQUIRE(!q, "krealloc(bad %p) = %p", ptr, q);
		expect_bad(before, want, ptr, "krealloc");
		break;
	}
	default: {
		note("kmalloc_usable_size(bad %p)", ptr);
		size_t u = kmalloc_usable_size(ptr);
		REQUIRE(u == 0, "kmalloc_usable_size(bad %p) = %zu", ptr, u);
		expect_bad(before, want, ptr, "kmalloc_usable_size");
		break;
	}
	}
}

/* Interior pointer of a live block. */
static void op_bad_interior(struct rd *r)
{
	int i = find_live(u8(r) % NBLK, B_NONE);
	uint32_t off = u32(r);
	uint8_t how = u8(r);
	if (i < 0)
		return;
	struct blk *b = &blk[i];
	if (b->n < 2)
		return;
	off = 1 + off % (uint32_t)(b->n - 1);
	uint8_t *ptr = b->p + off;
	if (b->kind == B_KMALLOC) {
		int want = b->run ? KM_BAD_INTERIOR : KM_BAD_MISALIGNED;
		bad_call(how, ptr, want, NULL);
	} else {
		struct cch *c = &cch[b->cache];
		if (how & 4)   /* kfree of the inside of a cache object */
			bad_call(how, ptr, KM_BAD_FOREIGN, NULL);
		else
			bad_call(how, ptr, c->size < c->align ? -1 : KM_BAD_MISALIGNED, c->c);
	}
	verify(i, "after a bad free of its inside");
}

/* Free a block, then free it again at once. */
static void op_double_free(struct rd *r)
{
	int i = find_live(u8(r) % NBLK, B_NONE);
	uint8_t how = u8(r);
	if (i < 0)
		return;
	struct blk *b = &blk[i];
	uint8_t *p = b->p;
	int kind = b->kind;
	struct kmem_cache *c = kind == B_CACHE ? cch[b->cache].c : NULL;
	note("double free of blk[%d] %p (%zu bytes)", i, (void *)p, b->n);
	release(i);
	uint64_t before = serial();
	if (c) {
		kmem_cache_free(c, p);
		expect_bad(before, -1, p, "kmem_cache_free (double)");
	} else if (how & 1) {
		kfree(p);
		expect_bad(before, -1, p, "kfree (double)");
	} else {
		void *q = krealloc(p, 1 + how, 0);
		REQUIRE(!q, "krealloc of a freed block = %p", q);
		expect_bad(before, -1, p, "krealloc (of a freed block)");
	}
}

static int global_thing[64];

/* Pointers strata never handed out. */
static void op_bad_wild(struct rd *r)
{
	uint8_t k = u8(r), how = u8(r);
	uint32_t x = u32(r);
	int local[16];
	struct kmem_cache *cache = NULL;
	int s = how >> 4 & (NCACHE - 1);
	if (how & 8)
		cache = cch[s].c;
	void *heap;

	switch (k % 7) {
	case 0:
		bad_call(how, &local[x % 16], KM_BAD_UNMANAGED, cache);
		break;
	case 1:
		bad_call(how, (char *)global_thing + x % sizeof global_thing, KM_BAD_UNMANAGED, cache);
		break;
	case 2:
		heap = malloc(64);
		bad_call(how, heap, KM_BAD_UNMANAGED, cache);
		free(heap);
		break;
	case 3:
		bad_call(how, reserved_page + x % PAGE_SIZE, KM_BAD_RESERVED, cache);
		break;
	case 4: {   /* inside a page the PFA has free */
		for (int tries = 0; tries < 16; tries++) {
			uint8_t *p = ram + (size_t)(x + tries * 7919u) * PAGE_SIZE % RAM_SIZE;
			uint32_t d;
			struct page *pg = pfa_virt_to_head(p, &d);
			if (pg && pg->owner == PG_FREE) {
				bad_call(how, p + (x >> 20) % PAGE_SIZE, KM_BAD_FREE_PAGE, cache);
				break;
			}
		}
		break;
	}
	case 5:     /* anywhere in RAM at an address no block or object starts at */
		x |= 1;
		bad_call(how, ram + x % RAM_SIZE, -1, cache);
		break;
	default:    /* just past the end of RAM */
		bad_call(how, ram + RAM_SIZE + x % (4 * MIB), KM_BAD_UNMANAGED, cache);
		break;
	}
}

/* Objects given to the wrong free function / cache. */
static void op_bad_cross(struct rd *r)
{
	int i = find_live(u8(r) % NBLK, B_NONE);
	uint8_t how = u8(r);
	if (i < 0)
		return;
	struct blk *b = &blk[i];
	if (b->kind == B_CACHE) {
		int s = b->cache;
		if (how & 1) {
			bad_call(how >> 1, b->p, KM_BAD_FOREIGN, NULL);   /* kfree of an object */
		} else {
			for (int k = 1; k < NCACHE; k++) {
				int t = (s + k) % NCACHE;
				if (cch[t].c) {
					bad_call(0, b->p, KM_BAD_WRONG_CACHE, cch[t].c);
					break;
				}
			}
		}
	} else {
		for (int s = 0; s < NCACHE; s++)
			if (cch[s].c) {    /* a kmalloc block is no cache's object */
				bad_call(0, b->p, KM_BAD_FOREIGN, cch[s].c);
				break;
			}
	}
	verify(i, "after being given to the wrong free");
}

/* ------------------------------------------------------------------ */
/* setup, teardown, the entry point                                   */
/* ------------------------------------------------------------------ */

static void setup_once(void)
{
	ram = host_ram(RAM_SIZE);
	reserved_page = ram + 5 * MIB + 3 * PAGE_SIZE;
	trace = getenv("FUZZ_TRACE") != NULL;

	host_capture_start(capbuf, sizeof capbuf);
	host_pfa_setup(ram, RAM_SIZE, reserved_page);
	kmalloc_init();
	baseline_free = pfa_free_pages();
	if (trace)
		fprintf(stderr, "ram %p .. %p, reserved page %p, %llu pages free\n", (void *)ram,
			(void *)(ram + RAM_SIZE), (void *)reserved_page,
			(unsigned long long)baseline_free);
	kmalloc_get_stats(&kst);
	arena_order = ceil_log2(kst.arena_size / PAGE_SIZE);
	host_capture_stop();
}

static void teardown(void)
{
	for (int i = 0; i < NBLK; i++)
		release(i);
	for (int s = 0; s < NCACHE; s++) {
		if (!cch[s].c)
			continue;
		long left = kmem_cache_destroy(cch[s].c);
		REQUIRE(left == 0, "kmem_cache_destroy(cache[%d]) = %ld with every object freed", s,
			left);
		cch[s].c = NULL;
	}
	check_all("end of input, everything freed");
	uint64_t before = serial();
	mm_reclaim();
	expect_quiet(before, "mm_reclaim");
	check_all("end of input, after mm_reclaim");
	uint64_t now = pfa_free_pages();
	REQUIRE(now == baseline_free,
		"leak: %llu PFA pages free after freeing everything and mm_reclaim(), %llu after "
		"setup (kmalloc holds %llu)", (unsigned long long)now,
		(unsigned long long)baseline_free, (unsigned long long)kst.pfa_pages);
}

enum {
	OP_KMALLOC, OP_KZALLOC, OP_KCALLOC, OP_ALIGNED, OP_REALLOC, OP_FREE, OP_REWRITE,
	OP_USABLE, OP_CACHE_CREATE, OP_CACHE_ALLOC, OP_CACHE_FREE, OP_CACHE_SHRINK,
	OP_CACHE_DESTROY, OP_RECLAIM, OP_DRAIN, OP_BAD_INTERIOR, OP_DOUBLE_FREE,
	OP_BAD_WILD, OP_BAD_CROSS, OP_CHECK,
};

/* opcode byte % 32 -> operation (weights) */
static const uint8_t optable[32] = {
	OP_KMALLOC, OP_KMALLOC, OP_KMALLOC, OP_KMALLOC, OP_KZALLOC, OP_KCALLOC,
	OP_ALIGNED, OP_ALIGNED, OP_REALLOC, OP_REALLOC, OP_REALLOC, OP_FREE,
	OP_FREE, OP_FREE, OP_REWRITE, OP_USABLE, OP_CACHE_CREATE, OP_CACHE_ALLOC,
	OP_CACHE_ALLOC, OP_CACHE_FREE, OP_CACHE_SHRINK, OP_CACHE_DESTROY, OP_RECLAIM,
	OP_DRAIN, OP_BAD_INTERIOR, OP_DOUBLE_FREE, OP_BAD_WILD, OP_BAD_WILD,
	OP_BAD_CROSS, OP_CHECK, OP_KMALLOC, OP_FREE,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct rd r = { data, size, 0 };

	if (!ready) {
		setup_once();
		ready = true;
	}
	host_capture_start(capbuf, sizeof capbuf);
	hist_n = 0;
	nops = 0;
	uint8_t hdr = u8(&r);
	mm_percpu_enable(!(hdr & 1));   /* nothing is allocated here */
	note("input of %zu bytes, per-CPU magazines %s", size, hdr & 1 ? "off" : "on");

	while (r.i < r.n) {
		nops++;
		switch (optable[u8(&r) % 32]) {
		case OP_KMALLOC: op_alloc(&r, 0); break;
		case OP_KZALLOC: op_alloc(&r, 1); break;
		case OP_KCALLOC: op_alloc(&r, 2); break;
		case OP_ALIGNED: op_aligned(&r); break;
		case OP_REALLOC: op_realloc(&r); break;
		case OP_FREE: op_free(&r); break;
		case OP_REWRITE: op_rewrite(&r); break;
		case OP_USABLE: op_usable(&r); break;
		case OP_CACHE_CREATE: op_cache_create(&r); break;
		case OP_CACHE_ALLOC: op_cache_alloc(&r); break;
		case OP_CACHE_FREE: {
			int i = find_live(u8(&r) % NBLK, B_CACHE);
			if (i >= 0) {
				note("kmem_cache_free blk[%d] %p", i, (void *)blk[i].p);
				release(i);
			}
			break;
		}
		case OP_CACHE_SHRINK: op_cache_shrink(&r); break;
		case OP_CACHE_DESTROY: op_cache_destroy(&r); break;
		case OP_RECLAIM: {
			note("mm_reclaim()");
			uint64_t before = serial();
			mm_reclaim();
			expect_quiet(before, "mm_reclaim");
			break;
		}
		case OP_DRAIN:
			note("mm_cpu_drain()");
			mm_cpu_drain();
			break;
		case OP_BAD_INTERIOR: op_bad_interior(&r); break;
		case OP_DOUBLE_FREE: op_double_free(&r); break;
		case OP_BAD_WILD: op_bad_wild(&r); break;
		case OP_BAD_CROSS: op_bad_cross(&r); break;
		case OP_CHECK: check_all("on demand"); break;
		}
		if (nops % CHECK_EVERY == 0)
			check_all("periodic");
		if (nops % 64 == 0)
			host_capture_start(capbuf, sizeof capbuf);   /* keep room for a failure's text */
	}
	check_all("end of input");
	teardown();
	mm_percpu_enable(1);
	host_capture_stop();
	return 0;
}

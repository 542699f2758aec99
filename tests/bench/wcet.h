/*
 * wcet.h - the worst-case benchmark shared by the guest suite
 * (tests/kernel/bench_wcet.c, test=bench-wcet) and the host benchmark
 * (tests/bench/bench_wcet.c).  Header only; the includer provides
 *
 *     static inline uint64_t wcet_begin(void);       start measuring one call
 *     static inline uint64_t wcet_end(uint64_t t0);  raw count since wcet_begin
 *     WCET_LOG(...)                                  printf-like, one line each
 *
 * and calls wcet_run_mixed() / wcet_run_adversarial() on a live strata
 * (PFA set up, kmalloc_init() done).  Every call is measured on its own:
 * the count of one kmalloc, one kfree, one pfa_alloc... minus the
 * counter's own cost (two reads back to back, wcet_calibrate()).
 *
 * Mixed run: n operations (iters=, default 10^7) on tables of live
 * objects, picked by a reproducible xorshift64* from `seed`:
 *
 *   80%  a kmalloc slot (8192): empty -> allocate (85% kmalloc of a size
 *        class picked uniformly, size uniform inside the class; 8% a large
 *        kmalloc, 2 KiB..16 KiB / ..256 KiB / ..4 MiB = 80/17/3; 7%
 *        kmalloc_aligned, alignment 32 B..64 KiB); full -> 85% kfree, 15%
 *        krealloc to a new random size (small or large)
 *   10%  a slot of one of two kmem caches (2048 slots): alloc or free
 *   10%  a pfa slot (64): pfa_alloc of an order 0..10 picked uniformly,
 *        or pfa_free
 *
 * Live memory is capped (kmalloc 4 MiB, pfa 6 MiB: an allocation that
 * would pass the cap frees a random live object instead) so that the same
 * sequence runs unchanged on a 64 MiB and on a 4 GiB heap: with 6 MiB of
 * kmalloc a fragmented 64 MiB heap had no free block for some high-order
 * pfa_alloc calls (17 of 10^7 operations on x86_64, 51 on aarch64, seed
 * 1); with 4 MiB none fails on either arch.  Frees come in
 * random order (random slots).  A call that fails (NULL, or 0 from
 * pfa_alloc: a fragmented 64 MiB heap may have no free 4 MiB block) is
 * counted in a row of its own, not in its operation's, and leaves the
 * workload's choices unchanged: its slot holds a "phantom" that counts
 * against the caps as if the call had succeeded and is later "freed"
 * without a call, and a krealloc that fails counts its new size all the
 * same.  So every later choice (slot, size, order, cap) is the one a run
 * without the failure makes: two heap sizes run the same calls, except
 * that each failure moves one call to the "failed" row and drops the
 * phantom's free (tests/bench/wcet_table.py says whether the calls are
 * the same; the heap's contents differ after a failure).
 *
 * Histograms: exact counts below WCET_EXACT instructions, log2 buckets
 * for everything; percentiles are exact below WCET_EXACT, else the upper
 * end of their log2 bucket (printed with ">").  max is always exact.
 */
#ifndef TESTS_BENCH_WCET_H
#define TESTS_BENCH_WCET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#define WCET_EXACT 4096

struct wcet_hist {
	const char *name;
	uint64_t n, sum, max;
	uint64_t log2[65];              /* bucket k: 2^(k-1) <= v < 2^k (0: v == 0) */
	uint32_t exact[WCET_EXACT];
};

static uint64_t wcet_overhead;      /* counter cost, subtracted from every call */

static inline void wcet_add(struct wcet_hist *h, uint64_t raw)
{
	uint64_t v = raw > wcet_overhead ? raw - wcet_overhead : 0;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	h->log2[v ? 64 - __builtin_clzll(v) : 0]++;
	if (v < WCET_EXACT)
		h->exact[v]++;
}

/* Count expression `call` into raw (to be added once its outcome is known). */
#define WCET_COUNT(raw, call)                         \
	do {                                          \
		uint64_t t0_ = wcet_begin();          \
		call;                                 \
		(raw) = wcet_end(t0_);                \
	} while (0)

/* Measure expression `call` into histogram h. */
#define WCET_MEASURE(h, call)                         \
	do {                                          \
		uint64_t t0_ = wcet_begin();          \
		call;                                 \
		wcet_add((h), wcet_end(t0_));         \
	} while (0)

static inline void wcet_hist_reset(struct wcet_hist *h, const char *name)
{
	for (size_t i = 0; i < sizeof *h; i++)
		((unsigned char *)h)[i] = 0;
	h->name = name;
}

/* The value below which a fraction q_num/q_den of the calls lie;
 * *approx set when it is a log2 bucket's upper end. */
static uint64_t wcet_quantile(const struct wcet_hist *h, uint64_t q_num, uint64_t q_den,
			      bool *approx)
{
	uint64_t want = (h->n * q_num + q_den - 1) / q_den, seen = 0;

	*approx = false;
	if (want == 0)
		want = 1;
	for (uint64_t v = 0; v < WCET_EXACT; v++) {
		seen += h->exact[v];
		if (seen >= want)
			return v;
	}
	/* beyond the exact range: log2 buckets from 2^12 on */
	for (unsigned k = 13; k <= 64; k++) {
		uint64_t below = 0;
		for (uint64_t v = (uint64_t)1 << (k - 1); v < WCET_EXACT && v < ((uint64_t)1 << k); v++)
			below += h->exact[v];
		seen += h->log2[k] - below;
		if (seen >= want) {
			*approx = true;
			uint64_t top = k == 64 ? UINT64_MAX : ((uint64_t)1 << k) - 1;
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

static void wcet_fmt_q(char *out, size_t cap, const struct wcet_hist *h, uint64_t num,
		       uint64_t den)
{
	bool approx;
	uint64_t v = wcet_quantile(h, num, den, &approx);
	snprintf(out, cap, "%s%llu", approx ? "<" : "", (unsigned long long)v);
}

static void wcet_print_header(void)
{
	WCET_LOG("wcet %-26s %10s %8s %8s %8s %9s %9s\n", "operation", "calls", "mean", "p50",
		 "p99", "p99.99", "max");
}

/* One table line, then the log2 histogram ("<2^k:count" per bucket). */
static void wcet_print(const struct wcet_hist *h, bool histogram)
{
	char p50[24], p99[24], p9999[24];

	if (!h->n)
		return;
	wcet_fmt_q(p50, sizeof p50, h, 50, 100);
	wcet_fmt_q(p99, sizeof p99, h, 99, 100);
	wcet_fmt_q(p9999, sizeof p9999, h, 9999, 10000);
	WCET_LOG("wcet %-26s %10llu %8llu %8s %8s %9s %9llu\n", h->name,
		 (unsigned long long)h->n, (unsigned long long)(h->sum / h->n), p50, p99, p9999,
		 (unsigned long long)h->max);
	if (!histogram)
		return;
	char line[512];
	int at = snprintf(line, sizeof line, "wcet   hist %s:", h->name);
	for (unsigned k = 0; k <= 64 && at < (int)sizeof line - 32; k++)
		if (h->log2[k])
			at += snprintf(line + at, sizeof line - (size_t)at, " <2^%u:%llu", k,
				       (unsigned long long)h->log2[k]);
	WCET_LOG("%s\n", line);
}

static void wcet_merge(struct wcet_hist *into, const struct wcet_hist *h)
{
	into->n += h->n;
	into->sum += h->sum;
	if (h->max > into->max)
		into->max = h->max;
	for (unsigned k = 0; k <= 64; k++)
		into->log2[k] += h->log2[k];
	for (unsigned v = 0; v < WCET_EXACT; v++)
		into->exact[v] += h->exact[v];
}

/* ---- counter cost ---- */

/* Two reads back to back, repeated: all equal under icount (else the
 * smallest is taken).  Returns the cost; *spread = max - min. */
static uint64_t wcet_calibrate(uint64_t *spread)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	wcet_overhead = 0;
	for (int i = 0; i < 256; i++) {
		uint64_t t0 = wcet_begin();
		uint64_t d = wcet_end(t0);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	*spread = hi - lo;
	wcet_overhead = lo;
	return lo;
}

/* ---- random numbers (xorshift64*) ---- */

static uint64_t wcet_rng;

static inline uint64_t wcet_rand(void)
{
	wcet_rng ^= wcet_rng >> 12;
	wcet_rng ^= wcet_rng << 25;
	wcet_rng ^= wcet_rng >> 27;
	return wcet_rng * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t wcet_below(uint64_t n)
{
	return n ? wcet_rand() % n : 0;
}

/* ---- operations and their histograms ---- */

enum {
	OP_KFREE_SMALL, OP_KFREE_LARGE, OP_KMALLOC_L16K, OP_KMALLOC_L256K, OP_KMALLOC_L4M,
	OP_KREALLOC, OP_KMALLOC_ALIGNED, OP_CACHE_ALLOC0, OP_CACHE_ALLOC1, OP_CACHE_FREE0,
	OP_CACHE_FREE1, OP_KMALLOC_FAIL, OP_PFA_FAIL, OP_PFA_ALLOC0, OP_PFA_FREE0 = OP_PFA_ALLOC0 + PFA_MAX_ORDER + 1,
	OP_KMALLOC0 = OP_PFA_FREE0 + PFA_MAX_ORDER + 1,
	OP_COUNT = OP_KMALLOC0 + KMALLOC_MAX_CLASSES
};

static struct wcet_hist wcet_h[OP_COUNT];
static struct wcet_hist wcet_sum;   /* scratch for merged rows */
static char wcet_names[OP_COUNT][32];

static struct kmalloc_stats wcet_ks;
static struct pfa_stats wcet_ps;
static unsigned wcet_ncls;
static uint32_t wcet_cls_size[KMALLOC_MAX_CLASSES];

/* ---- which slow paths the slow calls took (-DMM_PATH_TAGS=1) ---- */

#if defined(MM_PATH_TAGS) && MM_PATH_TAGS
/* mm/util.h's MM_PATH bits, in its order */
extern unsigned mm_path_tags, mm_path_pool_returns;
static const char *const wcet_path_name[] = {
	"swap", "trade", "mag_new", "mag_del", "fill", "trim", "new_pool", "spare",
	"new_arena", "pool_ret", "unpark", "park", "settle", "hold", "arena_free",
};
#define WCET_PATH_SLOW 300      /* the p99.99 target: calls above it are noted */
#define WCET_PATH_ROWS 256
#define WCET_PATH_TOP 16
struct wcet_path_row {
	unsigned tags, returns;
	uint64_t n, over, over512, over1k, max;
	uint32_t max_size;
};
struct wcet_path_top {
	uint64_t v;
	uint32_t size;
	unsigned tags, returns;
};
static struct wcet_path_row wcet_path_rows[2][WCET_PATH_ROWS];
static unsigned wcet_path_nrows[2];
static uint64_t wcet_path_cls_over[2][KMALLOC_MAX_CLASSES], wcet_path_cls_max[2][KMALLOC_MAX_CLASSES];
static struct wcet_path_top wcet_path_tops[2][WCET_PATH_TOP];

static inline void wcet_path_begin(void)
{
	mm_path_tags = 0;
	mm_path_pool_returns = 0;
}

static unsigned wcet_path_class(uint32_t size);

/* One small kmalloc (op 0) or kfree (op 1) of `size` bytes cost raw. */
static void wcet_path_note(unsigned op, uint32_t size, uint64_t raw)
{
	uint64_t v = raw > wcet_overhead ? raw - wcet_overhead : 0;
	unsigned tags = mm_path_tags, ret = mm_path_pool_returns > 3 ? 3 : mm_path_pool_returns;
	struct wcet_path_row *r = wcet_path_rows[op];
	unsigned i = 0;

	while (i < wcet_path_nrows[op] && (r[i].tags != tags || r[i].returns != ret))
		i++;
	if (i == wcet_path_nrows[op]) {
		if (i == WCET_PATH_ROWS)
			return;
		wcet_path_nrows[op]++;
		r[i] = (struct wcet_path_row){ .tags = tags, .returns = ret };
	}
	r[i].n++;
	r[i].over += v > WCET_PATH_SLOW;
	r[i].over512 += v >= 512;
	r[i].over1k += v >= 1024;
	if (v > r[i].max) {
		r[i].max = v;
		r[i].max_size = size;
	}
	if (v <= WCET_PATH_SLOW)
		return;
	unsigned c = wcet_path_class(size);
	wcet_path_cls_over[op][c]++;
	if (v > wcet_path_cls_max[op][c])
		wcet_path_cls_max[op][c] = v;
	struct wcet_path_top *t = wcet_path_tops[op];
	unsigned k = WCET_PATH_TOP;
	while (k > 0 && t[k - 1].v < v)
		k--;
	if (k == WCET_PATH_TOP)
		return;
	for (unsigned j = WCET_PATH_TOP - 1; j > k; j--)
		t[j] = t[j - 1];
	t[k] = (struct wcet_path_top){ v, size, tags, ret };
}

static void wcet_path_fmt(char *out, size_t cap, unsigned tags, unsigned returns)
{
	int at = snprintf(out, cap, "%s", tags ? "" : "(none)");
	for (unsigned b = 0; b < sizeof wcet_path_name / sizeof *wcet_path_name; b++)
		if (tags & (1u << b))
			at += snprintf(out + at, cap - (size_t)at, "%s%s", at ? "+" : "",
				       wcet_path_name[b]);
	if (returns > 1)
		snprintf(out + at, cap - (size_t)at, " x%u", returns);
}

static void wcet_path_print(void)
{
	static const char *const opname[2] = { "kmalloc small", "kfree small" };
	char buf[160];

	for (unsigned op = 0; op < 2; op++) {
		WCET_LOG("wcet paths %s: calls, >%u, >=512, >=1024, max (size), by slow paths taken\n",
			 opname[op], WCET_PATH_SLOW);
		for (unsigned i = 0; i < wcet_path_nrows[op]; i++) {
			const struct wcet_path_row *r = &wcet_path_rows[op][i];
			wcet_path_fmt(buf, sizeof buf, r->tags, r->returns);
			WCET_LOG("wcet   path %-50s %9llu %7llu %6llu %5llu %6llu (%u)\n", buf,
				 (unsigned long long)r->n, (unsigned long long)r->over,
				 (unsigned long long)r->over512, (unsigned long long)r->over1k,
				 (unsigned long long)r->max, r->max_size);
		}
		for (unsigned c = 0; c < wcet_ncls; c++)
			if (wcet_path_cls_over[op][c])
				WCET_LOG("wcet   class %s %5u: %6llu calls >%u, max %llu\n", opname[op],
					 wcet_cls_size[c], (unsigned long long)wcet_path_cls_over[op][c],
					 WCET_PATH_SLOW, (unsigned long long)wcet_path_cls_max[op][c]);
		for (unsigned k = 0; k < WCET_PATH_TOP && wcet_path_tops[op][k].v; k++) {
			const struct wcet_path_top *t = &wcet_path_tops[op][k];
			wcet_path_fmt(buf, sizeof buf, t->tags, t->returns);
			WCET_LOG("wcet   top %s %5llu size %5u: %s\n", opname[op],
				 (unsigned long long)t->v, t->size, buf);
		}
	}
}
#define WCET_PATH_BEGIN() wcet_path_begin()
#define WCET_PATH_END(op, size, raw) wcet_path_note((op), (size), (raw))
#define WCET_PATH_PRINT() wcet_path_print()
#else
#define WCET_PATH_BEGIN() ((void)0)
#define WCET_PATH_END(op, size, raw) ((void)0)
#define WCET_PATH_PRINT() ((void)0)
#endif

#define KM_SLOTS    8192
#define CACHE_SLOTS 2048
#define PFA_SLOTS   64
#define KM_CAP      (4u << 20)
#define PFA_CAP_PAGES ((6u << 20) / PAGE_SIZE)

struct wcet_obj {
	void *p;           /* NULL: empty, unless phantom */
	uint32_t size;
	bool large;        /* a run of pages (its kfree is "kfree large") */
	bool phantom;      /* its kmalloc failed: counted as live, no block */
};
static struct wcet_obj km_live[KM_SLOTS];
static void *cache_live[CACHE_SLOTS];
#define CACHE_PHANTOM ((void *)1)       /* its kmem_cache_alloc failed */
static uint64_t pfa_live[PFA_SLOTS];   /* pa | order, 0 = empty */
#define PFA_PHANTOM 0x800               /* pa 0: its pfa_alloc failed */
static uint64_t wcet_failed;            /* calls that failed (phantoms made) */
static uint64_t km_bytes, pfa_pages;
static struct kmem_cache *wcet_cache[2];

static void wcet_ctor(void *obj)
{
	*(uint64_t *)obj = 0x5eed;
}

static void wcet_names_init(void)
{
	static const char *const fixed[] = {
		[OP_KFREE_SMALL] = "kfree small",
		[OP_KFREE_LARGE] = "kfree large",
		[OP_KMALLOC_L16K] = "kmalloc 2K..16K",
		[OP_KMALLOC_L256K] = "kmalloc 16K..256K",
		[OP_KMALLOC_L4M] = "kmalloc 256K..4M",
		[OP_KREALLOC] = "krealloc",
		[OP_KMALLOC_ALIGNED] = "kmalloc_aligned",
		[OP_CACHE_ALLOC0] = "kmem_cache_alloc 64+ctor",
		[OP_CACHE_ALLOC1] = "kmem_cache_alloc 700",
		[OP_CACHE_FREE0] = "kmem_cache_free 64+ctor",
		[OP_CACHE_FREE1] = "kmem_cache_free 700",
		[OP_KMALLOC_FAIL] = "kmalloc*/cache failed (NULL)",
		[OP_PFA_FAIL] = "pfa_alloc failed (0)",
	};
	kmalloc_get_stats(&wcet_ks);
	wcet_ncls = wcet_ks.nclasses;
	for (unsigned c = 0; c < wcet_ncls; c++)
		wcet_cls_size[c] = wcet_ks.cls[c].size;
	for (unsigned i = 0; i < OP_COUNT; i++) {
		if (i < OP_PFA_ALLOC0)
			snprintf(wcet_names[i], sizeof wcet_names[i], "%s", fixed[i]);
		else if (i < OP_PFA_FREE0)
			snprintf(wcet_names[i], sizeof wcet_names[i], "pfa_alloc order %u",
				 i - OP_PFA_ALLOC0);
		else if (i < OP_KMALLOC0)
			snprintf(wcet_names[i], sizeof wcet_names[i], "pfa_free order %u",
				 i - OP_PFA_FREE0);
		else
			snprintf(wcet_names[i], sizeof wcet_names[i], "kmalloc %u",
				 wcet_cls_size[i - OP_KMALLOC0]);
		wcet_hist_reset(&wcet_h[i], wcet_names[i]);
	}
}

static size_t wcet_large_size(void)
{
	uint64_t r = wcet_below(100);
	if (r < 80)
		return 2049 + wcet_below(16384 - 2048);
	if (r < 97)
		return 16385 + wcet_below((256u << 10) - 16384);
	return (256u << 10) + 1 + wcet_below((4u << 20) - (256u << 10));
}

static unsigned wcet_large_op(size_t size)
{
	return size <= 16384 ? OP_KMALLOC_L16K : size <= (256u << 10) ? OP_KMALLOC_L256K
								       : OP_KMALLOC_L4M;
}

static inline bool km_slot_live(const struct wcet_obj *o)
{
	return o->p || o->phantom;
}

static void km_slot_free(struct wcet_obj *o)
{
	if (!o->phantom) {
		uint64_t raw;
		WCET_PATH_BEGIN();
		WCET_COUNT(raw, kfree(o->p));
		wcet_add(&wcet_h[o->large ? OP_KFREE_LARGE : OP_KFREE_SMALL], raw);
		if (!o->large)
			WCET_PATH_END(1, o->size, raw);
	}
	km_bytes -= o->size;
	o->p = NULL;
	o->phantom = false;
}

#if defined(MM_PATH_TAGS) && MM_PATH_TAGS
/* The class a request of `size` bytes gets. */
static unsigned wcet_path_class(uint32_t size)
{
	unsigned c = 0;
	while (c + 1 < wcet_ncls && wcet_cls_size[c] < size)
		c++;
	return c;
}
#endif

static bool km_slot_alloc(struct wcet_obj *o)
{
	uint64_t r = wcet_below(100), raw;
	unsigned op;
	size_t size;
	void *p;

	if (r < 85) {
		unsigned c = (unsigned)wcet_below(wcet_ncls);
		uint32_t lo = c ? wcet_cls_size[c - 1] + 1 : 1;
		size = lo + wcet_below(wcet_cls_size[c] - lo + 1);
		if (km_bytes + size > KM_CAP)
			return false;
		op = OP_KMALLOC0 + c;
		WCET_PATH_BEGIN();
		WCET_COUNT(raw, p = kmalloc(size, 0));
		if (p)
			WCET_PATH_END(0, (uint32_t)size, raw);
	} else if (r < 93) {
		size = wcet_large_size();
		if (km_bytes + size > KM_CAP)
			return false;
		op = wcet_large_op(size);
		WCET_COUNT(raw, p = kmalloc(size, 0));
	} else {
		size_t align = (size_t)32 << wcet_below(12);   /* 32 B .. 64 KiB */
		size = 1 + wcet_below(8192);
		if (km_bytes + size + align > KM_CAP)
			return false;
		op = OP_KMALLOC_ALIGNED;
		WCET_COUNT(raw, p = kmalloc_aligned(size, align, 0));
	}
	wcet_add(&wcet_h[p ? op : OP_KMALLOC_FAIL], raw);
	wcet_failed += !p;
	o->p = p;
	o->phantom = !p;
	o->size = (uint32_t)size;
	o->large = p && kmalloc_usable_size(p) > KMALLOC_SMALL_MAX;
	km_bytes += size;
	return true;
}

static void km_slot_realloc(struct wcet_obj *o)
{
	size_t size = wcet_below(4) ? 1 + wcet_below(KMALLOC_SMALL_MAX) : wcet_large_size();
	uint64_t raw;
	void *q;

	if (km_bytes - o->size + size > KM_CAP)
		return;
	km_bytes = km_bytes - o->size + size;   /* whatever krealloc does */
	o->size = (uint32_t)size;
	if (o->phantom)
		return;
	WCET_COUNT(raw, q = krealloc(o->p, size, 0));
	wcet_add(&wcet_h[q ? OP_KREALLOC : OP_KMALLOC_FAIL], raw);
	if (!q) {          /* o->p is still live, at its old size */
		wcet_failed++;
		return;
	}
	o->p = q;
	o->large = kmalloc_usable_size(q) > KMALLOC_SMALL_MAX;
}

/* Frees a random live kmalloc object (when the cap is reached). */
static void km_free_random(void)
{
	for (unsigned tries = 0; tries < KM_SLOTS; tries++) {
		struct wcet_obj *o = &km_live[wcet_below(KM_SLOTS)];
		if (km_slot_live(o)) {
			km_slot_free(o);
			return;
		}
	}
}

static void km_step(void)
{
	struct wcet_obj *o = &km_live[wcet_below(KM_SLOTS)];

	if (!km_slot_live(o)) {
		if (!km_slot_alloc(o))
			km_free_random();
	} else if (wcet_below(100) < 85) {
		km_slot_free(o);
	} else {
		km_slot_realloc(o);
	}
}

static void cache_step(void)
{
	unsigned s = (unsigned)wcet_below(CACHE_SLOTS), which = s & 1;
	struct kmem_cache *c = wcet_cache[which];

	if (cache_live[s]) {
		if (cache_live[s] != CACHE_PHANTOM)
			WCET_MEASURE(&wcet_h[OP_CACHE_FREE0 + which],
				     kmem_cache_free(c, cache_live[s]));
		cache_live[s] = NULL;
	} else {
		void *p;
		uint64_t raw;
		WCET_COUNT(raw, p = kmem_cache_alloc(c, 0));
		wcet_add(&wcet_h[p ? OP_CACHE_ALLOC0 + which : OP_KMALLOC_FAIL], raw);
		wcet_failed += !p;
		cache_live[s] = p ? p : CACHE_PHANTOM;
	}
}

static void pfa_slot_free(uint64_t *slot)
{
	unsigned order = (unsigned)(*slot & 0xff);
	phys_addr_t pa = *slot & ~(uint64_t)0xfff;

	if (pa)
		WCET_MEASURE(&wcet_h[OP_PFA_FREE0 + order], pfa_free(pa, order));
	pfa_pages -= (uint64_t)1 << order;
	*slot = 0;
}

static void pfa_step(void)
{
	uint64_t *slot = &pfa_live[wcet_below(PFA_SLOTS)];

	if (*slot) {
		pfa_slot_free(slot);
		return;
	}
	unsigned order = (unsigned)wcet_below(PFA_MAX_ORDER + 1);
	if (pfa_pages + ((uint64_t)1 << order) > PFA_CAP_PAGES) {
		for (unsigned i = 0; i < PFA_SLOTS; i++) {
			uint64_t *o = &pfa_live[(i + wcet_below(PFA_SLOTS)) % PFA_SLOTS];
			if (*o) {
				pfa_slot_free(o);
				break;
			}
		}
		return;
	}
	phys_addr_t pa;
	uint64_t raw;
	WCET_COUNT(raw, pa = pfa_alloc(order, 0));
	wcet_add(&wcet_h[pa ? OP_PFA_ALLOC0 + order : OP_PFA_FAIL], raw);
	wcet_failed += !pa;
	*slot = pa ? pa | order : PFA_PHANTOM | order;
	pfa_pages += (uint64_t)1 << order;
}

static void wcet_release_all(void)
{
	for (unsigned i = 0; i < KM_SLOTS; i++)
		if (km_slot_live(&km_live[i]))
			km_slot_free(&km_live[i]);
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (cache_live[i]) {
			if (cache_live[i] != CACHE_PHANTOM)
				kmem_cache_free(wcet_cache[i & 1], cache_live[i]);
			cache_live[i] = NULL;
		}
	for (unsigned i = 0; i < PFA_SLOTS; i++)
		if (pfa_live[i])
			pfa_slot_free(&pfa_live[i]);
}

/* The table: every operation, then merged rows for the targets. */
static void wcet_print_tables(bool histograms)
{
	wcet_print_header();
	wcet_hist_reset(&wcet_sum, "kmalloc small (all classes)");
	for (unsigned c = 0; c < wcet_ncls; c++)
		wcet_merge(&wcet_sum, &wcet_h[OP_KMALLOC0 + c]);
	wcet_print(&wcet_sum, histograms);
	wcet_print(&wcet_h[OP_KFREE_SMALL], histograms);
	for (unsigned i = 0; i < OP_PFA_ALLOC0; i++)
		if (i != OP_KFREE_SMALL)
			wcet_print(&wcet_h[i], histograms);
	wcet_hist_reset(&wcet_sum, "pfa_alloc (all orders)");
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_merge(&wcet_sum, &wcet_h[OP_PFA_ALLOC0 + k]);
	wcet_print(&wcet_sum, false);
	wcet_hist_reset(&wcet_sum, "pfa_free (all orders)");
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_merge(&wcet_sum, &wcet_h[OP_PFA_FREE0 + k]);
	wcet_print(&wcet_sum, false);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_print(&wcet_h[OP_PFA_ALLOC0 + k], histograms);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_print(&wcet_h[OP_PFA_FREE0 + k], histograms);
	for (unsigned c = 0; c < wcet_ncls; c++)
		wcet_print(&wcet_h[OP_KMALLOC0 + c], false);
}

/* ---- the PFA's starting state: only blocks of the top order free ----
 *
 * A heap's free lists start with whatever its layout leaves below the
 * top order (the pieces around the kernel image, the firmware's holes,
 * the ends of RAM), and those differ between a 64 MiB and a 4 GiB heap:
 * the same call then splits or merges more or fewer levels on one heap
 * than on the other (on x86_64, pfa_free of order 3 measured 389 at
 * 64 MiB and 464 at 4 GiB).  Every run therefore starts by taking every
 * free block below PFA_MAX_ORDER and keeping it ("parked") until the run
 * ends, so both heaps start with order-10 blocks only and the same calls
 * see the same buddy structure: what is left to differ is the allocator's
 * own work, which is what the comparison is for.  The parked blocks are
 * a list linked through their own first word (no table to overflow). */
static phys_addr_t wcet_parked;         /* pa | order, 0: none */

static void park_orders_below(unsigned top)
{
	for (unsigned k = 0; k < top; k++) {
		pfa_get_stats(&wcet_ps);
		for (uint64_t b = wcet_ps.free_blocks[k]; b > 0; b--) {
			phys_addr_t pa = pfa_alloc(k, 0);
			if (!pa)
				break;
			*(phys_addr_t *)pfa_virt(pa) = wcet_parked;
			wcet_parked = pa | k;
		}
	}
}

static void unpark_all(void)
{
	while (wcet_parked) {
		phys_addr_t pa = wcet_parked & ~(phys_addr_t)0xfff;
		unsigned k = (unsigned)(wcet_parked & 0xfff);
		wcet_parked = *(phys_addr_t *)pfa_virt(pa);
		pfa_free(pa, k);
	}
}

/* The mixed run.  Returns the number of operations measured. */
static uint64_t wcet_run_mixed(uint64_t n, uint64_t seed, bool histograms)
{
	wcet_rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
	wcet_names_init();
	wcet_cache[0] = kmem_cache_create("wcet-64", 64, 0, 0, wcet_ctor);
	wcet_cache[1] = kmem_cache_create("wcet-700", 700, 0, 0, NULL);
	if (!wcet_cache[0] || !wcet_cache[1])
		return 0;
	km_bytes = pfa_pages = wcet_failed = 0;
	park_orders_below(PFA_MAX_ORDER);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = wcet_below(10);
		if (r < 8)
			km_step();
		else if (r < 9)
			cache_step();
		else
			pfa_step();
	}
	wcet_release_all();
	unpark_all();
	uint64_t total = 0;
	for (unsigned i = 0; i < OP_COUNT; i++)
		total += wcet_h[i].n;
	wcet_print_tables(histograms);
	WCET_PATH_PRINT();
	WCET_LOG("wcet sequence: %llu calls, %llu failed (each left a phantom: the choices "
		 "after it are unchanged)\n", (unsigned long long)total,
		 (unsigned long long)wcet_failed);
	kmem_cache_destroy(wcet_cache[0]);
	kmem_cache_destroy(wcet_cache[1]);
	return total;
}

/* ------------------------------------------------------------------ */
/* adversarial sequences                                              */
/* ------------------------------------------------------------------ */

/* The host's single-stepping counter costs microseconds per instruction:
 * wcet_light cuts the repetitions of each sequence (not their shape). */
static bool wcet_light;
#define REPS(full, light) (wcet_light ? (light) : (full))

#define HOLD_MAX 8192                   /* adv_fragmented's pages */
static phys_addr_t wcet_hold[HOLD_MAX];
static unsigned wcet_nhold;
static struct wcet_hist wcet_adv, wcet_adv2;

/* The constructed worst case of pfa_alloc and pfa_free of each order k,
 * the bound the mixed run's maxima are held to (wcet_table.py):
 *
 *   alloc  the lists below PFA_MAX_ORDER empty (parked): a block of
 *          order 10 is split 10 - k times, the deepest split there is;
 *   free   the same block back, merged 10 - k times, each buddy B_j
 *          unlinked from the middle of its list (Y_j, B_j, X_j: both
 *          neighbours written), the most a merge step does.
 *
 * X_j and Y_j (j = k..9) are pieces of two more order-10 blocks, split
 * all the way down with pfa_split() (a block C becomes C and C + 2^j of
 * each order j < 10); one piece of each stays allocated, so the others
 * merge with nothing when freed.  Afterwards the pieces go back and
 * merge into order-10 blocks again. */
static struct wcet_hist wcet_pfa_alloc_w[PFA_MAX_ORDER + 1], wcet_pfa_free_w[PFA_MAX_ORDER + 1];
static char wcet_pfa_w_names[2][PFA_MAX_ORDER + 1][40];

static bool split_down(phys_addr_t c)
{
	for (unsigned j = PFA_MAX_ORDER; j > 0; j--)
		if (pfa_split(c, j) != 0)
			return false;
	return true;
}

static phys_addr_t piece(phys_addr_t c, unsigned j)   /* order j piece of a split_down block */
{
	return c + ((phys_addr_t)PAGE_SIZE << j);
}

static void free_pieces(phys_addr_t c, unsigned below)  /* pieces 0..below-1 and c itself */
{
	for (unsigned j = 0; j < below; j++)
		pfa_free(piece(c, j), j);
	pfa_free(c, 0);
}

static void adv_pfa_order(unsigned k)
{
	struct wcet_hist *ha = &wcet_pfa_alloc_w[k], *hf = &wcet_pfa_free_w[k];

	for (int rep = 0; rep < REPS(100, 4); rep++) {
		phys_addr_t c = pfa_alloc(PFA_MAX_ORDER, 0), d = pfa_alloc(PFA_MAX_ORDER, 0), pa;
		if (!c || !d || !split_down(c) || !split_down(d)) {
			WCET_LOG("wcet   (pfa order %u: no order-10 blocks to build on)\n", k);
			return;
		}
		WCET_MEASURE(ha, pa = pfa_alloc(k, 0));
		if (!pa)
			return;
		/* take B_j back (the only free block of its order), then list
		 * X_j, B_j, Y_j: B_j ends up between the two */
		phys_addr_t got[PFA_MAX_ORDER];
		bool middle = true;
		for (unsigned j = k; j < PFA_MAX_ORDER; j++) {
			got[j] = pfa_alloc(j, 0);
			middle &= got[j] == piece(pa, j);
		}
		for (unsigned j = k; j < PFA_MAX_ORDER; j++) {
			pfa_free(piece(c, j), j);
			if (got[j])          /* B_j, or (not middle) whatever came */
				pfa_free(got[j], j);
			pfa_free(piece(d, j), j);
		}
		if (!middle)
			WCET_LOG("wcet   (pfa order %u: the split left other blocks than expected)\n", k);
		WCET_MEASURE(hf, pfa_free(pa, k));
		free_pieces(c, k);
		free_pieces(d, k);
	}
}

static void adv_pfa_orders(void)
{
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++) {
		snprintf(wcet_pfa_w_names[0][k], sizeof wcet_pfa_w_names[0][k],
			 "pfa_alloc order %u, split %u", k, PFA_MAX_ORDER - k);
		snprintf(wcet_pfa_w_names[1][k], sizeof wcet_pfa_w_names[1][k],
			 "pfa_free order %u, merge %u", k, PFA_MAX_ORDER - k);
		wcet_hist_reset(&wcet_pfa_alloc_w[k], wcet_pfa_w_names[0][k]);
		wcet_hist_reset(&wcet_pfa_free_w[k], wcet_pfa_w_names[1][k]);
		adv_pfa_order(k);
	}
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_print(&wcet_pfa_alloc_w[k], false);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		wcet_print(&wcet_pfa_free_w[k], false);
}

/* A fragmented PFA: every other page of a region free (thousands of
 * order-0 blocks, nothing above), then allocations of each order, which
 * split the remaining large blocks; and the frees that merge it all. */
static void adv_fragmented(void)
{
	wcet_hist_reset(&wcet_adv, "pfa_alloc 0..10 fragmented");
	wcet_hist_reset(&wcet_adv2, "pfa_free refill fragmented");
	wcet_nhold = 0;
	for (unsigned i = 0; i < REPS(HOLD_MAX, 1024u); i++) {
		phys_addr_t pa = pfa_alloc(0, 0);
		if (!pa)
			break;
		wcet_hold[wcet_nhold++] = pa;
	}
	/* give back every other page: isolated order-0 free blocks */
	unsigned kept = 0;
	for (unsigned i = 0; i < wcet_nhold; i++) {
		if (i & 1)
			pfa_free(wcet_hold[i], 0);
		else
			wcet_hold[kept++] = wcet_hold[i];
	}
	wcet_nhold = kept;
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++) {
		phys_addr_t pa;
		WCET_MEASURE(&wcet_adv, pa = pfa_alloc(k, 0));
		if (pa)
			pfa_free(pa, k);
	}
	while (wcet_nhold > 0) {
		phys_addr_t pa = wcet_hold[--wcet_nhold];   /* outside the count */
		WCET_MEASURE(&wcet_adv2, pfa_free(pa, 0));
	}
	wcet_print(&wcet_adv, false);
	wcet_print(&wcet_adv2, false);
}

/* Arena creation and release, pool creation, magazine fill, depot
 * exchange and flush: a class ramped up by `n` blocks and down again in
 * random order, three times, after mm_reclaim() (no spare arena). */
static void adv_ramp(unsigned size, unsigned n, const char *up, const char *down)
{
	static void *blk[8192];
	uint64_t arenas_new = 0, arenas_gone = 0;

	if (n > 8192)
		n = 8192;
	wcet_hist_reset(&wcet_adv, up);
	wcet_hist_reset(&wcet_adv2, down);
	mm_reclaim();
	for (int round = 0; round < REPS(3, 1); round++) {
		kmalloc_get_stats(&wcet_ks);
		uint64_t a0 = wcet_ks.arenas_allocated_total, r0 = wcet_ks.arenas_reclaimed_total;
		unsigned got = 0;
		for (; got < n; got++) {
			void *p;
			WCET_MEASURE(&wcet_adv, p = kmalloc(size, 0));
			if (!p)
				break;
			blk[got] = p;
		}
		for (unsigned i = got; i > 1; i--) {   /* shuffle: frees in random order */
			unsigned j = (unsigned)wcet_below(i);
			void *t = blk[i - 1];
			blk[i - 1] = blk[j];
			blk[j] = t;
		}
		for (unsigned i = 0; i < got; i++)
			WCET_MEASURE(&wcet_adv2, kfree(blk[i]));
		mm_reclaim();
		kmalloc_get_stats(&wcet_ks);
		arenas_new += wcet_ks.arenas_allocated_total - a0;
		arenas_gone += wcet_ks.arenas_reclaimed_total - r0;
	}
	wcet_print(&wcet_adv, false);
	wcet_print(&wcet_adv2, false);
	WCET_LOG("wcet   (%u-byte ramps of %u blocks x%d: %llu arenas created, %llu released)\n",
		 size, n, REPS(3, 1), (unsigned long long)arenas_new, (unsigned long long)arenas_gone);
}

/* The large layer's run cache.  search-miss: 256 cached runs of 1 page,
 * then a 3-page kmalloc scans all of them and goes to the PFA.
 * search-oldest: the only fit is the oldest entry (2 pages): a full scan
 * plus moving 255 entries.  evict: with 256 one-page runs cached, a
 * 4 MiB free makes room by evicting as many as the budget needs. */
static void adv_run_cache(void)
{
	static void *run[257];
	void *p;

	mm_reclaim();
	wcet_hist_reset(&wcet_adv, "large: run-cache miss (256)");
	wcet_hist_reset(&wcet_adv2, "large: run-cache oldest hit");
	for (int round = 0; round < REPS(20, 2); round++) {
		for (int i = 0; i < 256; i++)
			run[i] = kmalloc(4096, 0);
		for (int i = 0; i < 256; i++)
			kfree(run[i]);                /* 256 one-page runs cached */
		WCET_MEASURE(&wcet_adv, p = kmalloc(3 * 4096, 0));
		kfree(p);   /* evicts the oldest one-page run (ring full) */
		mm_reclaim();

		run[0] = kmalloc(2 * 4096, 0);
		for (int i = 1; i < 256; i++)
			run[i] = kmalloc(4096, 0);
		for (int i = 0; i < 256; i++)
			kfree(run[i]);                /* oldest: the 2-page run */
		WCET_MEASURE(&wcet_adv2, p = kmalloc(2 * 4096, 0));
		kfree(p);
		mm_reclaim();
	}
	wcet_print(&wcet_adv, false);
	wcet_print(&wcet_adv2, false);

	/* The run cache's budget is large.c's min(RAM / 16, 8 MiB): 1015
	 * pages on a 64 MiB heap, where a 4 MiB run does not fit at all and
	 * goes straight to the PFA (no eviction: a different path than on a
	 * larger heap).  So the run freed is min(4 MiB, budget): it evicts on
	 * every heap. */
	pfa_get_stats(&wcet_ps);
	uint64_t budget = wcet_ps.total_pages >> 4;
	if (budget > (8u << 20) / PAGE_SIZE)
		budget = (8u << 20) / PAGE_SIZE;
	uint64_t big = budget < 1024 ? budget : 1024;

	wcet_hist_reset(&wcet_adv, "large: kfree <=4M evicting");
	for (int round = 0; round < REPS(20, 2); round++) {
		for (int i = 0; i < 256; i++)
			run[i] = kmalloc(4096, 0);
		p = kmalloc(big * PAGE_SIZE, 0);
		for (int i = 0; i < 256; i++)
			kfree(run[i]);
		kmalloc_get_stats(&wcet_ks);
		uint64_t before = wcet_ks.large_cached_pages;
		if (p)
			WCET_MEASURE(&wcet_adv, kfree(p));
		kmalloc_get_stats(&wcet_ks);
		if (round == 0)
			WCET_LOG("wcet   (run cache before the 4M kfree: %llu pages, after: %llu)\n",
				 (unsigned long long)before,
				 (unsigned long long)wcet_ks.large_cached_pages);
		mm_reclaim();
	}
	wcet_print(&wcet_adv, false);

	/* As many evictions as the budget allows: 256 cached runs of r pages
	 * (r = 1, and r = budget / 256), then a kfree of `big` pages. */
	wcet_hist_reset(&wcet_adv, "large: kfree evicting 256 runs");
	for (int round = 0; round < REPS(10, 1); round++) {
		for (uint64_t r = 1; r <= budget / 256; r = r == 1 && budget / 256 > 1 ? budget / 256 : r + budget) {
			for (int i = 0; i < 256; i++)
				run[i] = kmalloc(r * PAGE_SIZE, 0);
			p = kmalloc(big * PAGE_SIZE, 0);
			for (int i = 0; i < 256; i++)
				kfree(run[i]);
			if (p)
				WCET_MEASURE(&wcet_adv, kfree(p));
			mm_reclaim();
		}
	}
	wcet_print(&wcet_adv, false);
	WCET_LOG("wcet   (run-cache budget %llu pages: 256 runs of 1 and of %llu pages, then a "
		 "kfree of %llu pages)\n", (unsigned long long)budget,
		 (unsigned long long)(budget / 256), (unsigned long long)big);
}

/* krealloc growing a large run in place, page by page up to 4 MiB
 * (pfa_alloc_at: the free block containing the next pages). */
static void adv_realloc_grow(void)
{
	wcet_hist_reset(&wcet_adv, "krealloc grow large 1p..4M");
	mm_reclaim();
	void *p = kmalloc(4096, 0);
	for (size_t pages = 2; p && pages <= REPS(1024u, 64u); pages++) {
		void *q;
		WCET_MEASURE(&wcet_adv, q = krealloc(p, pages * 4096, 0));
		if (q)
			p = q;
	}
	kfree(p);
	wcet_print(&wcet_adv, false);
}

/* Object caches: slab creation (1 slab of a ctor cache per fill) and
 * the frees that give slabs back; then the drains (not on an
 * allocation path: mm_reclaim with full magazines and depots). */
static void adv_caches_and_drains(void)
{
	static void *obj[8192];
	struct kmem_cache *c = kmem_cache_create("wcet-adv", 64, 0, 0, wcet_ctor);

	wcet_hist_reset(&wcet_adv, "kmem_cache_alloc ramp 8192");
	wcet_hist_reset(&wcet_adv2, "kmem_cache_free ramp (rand)");
	unsigned nobj = REPS(8192u, 2048u);
	for (int round = 0; c && round < REPS(3, 1); round++) {
		for (unsigned i = 0; i < nobj; i++)
			WCET_MEASURE(&wcet_adv, obj[i] = kmem_cache_alloc(c, 0));
		for (unsigned i = nobj; i > 1; i--) {
			unsigned j = (unsigned)wcet_below(i);
			void *t = obj[i - 1];
			obj[i - 1] = obj[j];
			obj[j] = t;
		}
		for (unsigned i = 0; i < nobj; i++)
			WCET_MEASURE(&wcet_adv2, kmem_cache_free(c, obj[i]));
	}
	wcet_print(&wcet_adv, false);
	wcet_print(&wcet_adv2, false);

	/* drains: fill magazines and depots of many classes, then reclaim.
	 * From an empty run cache: it may hold min(RAM / 16, 8 MiB), so
	 * what the sequences before left in it (1024 pages on a 4 GiB heap,
	 * none on a 64 MiB one) cost this mm_reclaim 787 more instructions
	 * on the larger heap: the same bounded flush (256 slots at most),
	 * not the same work. */
	mm_reclaim();
	wcet_hist_reset(&wcet_adv, "mm_reclaim (full depots)");
	wcet_hist_reset(&wcet_adv2, "kmem_cache_shrink");
	static void *blk[8192];
	for (int round = 0; round < REPS(3, 1); round++) {
		for (unsigned i = 0; i < 8192; i++)
			blk[i] = kmalloc(16 + 16 * (i % 32), 0);
		for (unsigned i = 0; i < 8192; i++)
			kfree(blk[i]);
		kmalloc_get_stats(&wcet_ks);
		uint64_t cached = wcet_ks.large_cached_pages, arenas = wcet_ks.arenas_current;
		WCET_MEASURE(&wcet_adv, mm_reclaim());
		if (round == 0)
			WCET_LOG("wcet   (mm_reclaim gave back: %llu arenas, %llu cached large pages)\n",
				 (unsigned long long)arenas, (unsigned long long)cached);
		for (unsigned i = 0; c && i < 4096; i++)
			obj[i] = kmem_cache_alloc(c, 0);
		for (unsigned i = 0; c && i < 4096; i++)
			kmem_cache_free(c, obj[i]);
		if (c)
			WCET_MEASURE(&wcet_adv2, kmem_cache_shrink(c));
	}
	wcet_print(&wcet_adv, false);
	wcet_print(&wcet_adv2, false);
	if (c)
		kmem_cache_destroy(c);
}

static void wcet_run_adversarial(uint64_t seed)
{
	wcet_rng = seed * 0x9E3779B97F4A7C15ull + 0xadc0ffee;
	WCET_LOG("wcet adversarial sequences (each: its own calls)\n");
	wcet_print_header();
	mm_reclaim();
	park_orders_below(PFA_MAX_ORDER);
	adv_pfa_orders();
	adv_fragmented();
	adv_ramp(2048, REPS(4096u, 1024u), "kmalloc 2048 ramp", "kfree 2048 ramp (rand)");
	adv_ramp(16, REPS(8192u, 2048u), "kmalloc 16 ramp", "kfree 16 ramp (rand)");
	adv_run_cache();
	adv_realloc_grow();
	adv_caches_and_drains();
	mm_reclaim();
	unpark_all();
}

#endif

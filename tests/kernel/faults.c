/*
 * faults.c - suite "faults": strata on the live machine with page-frame
 * allocations failing on purpose (strata/fault.h).  Only in kernels built
 * with `make FAULT_INJECT=1`; the rule comes from the command line
 * (mm.fault=pfa:every=7, pfa:random=SEED,1in=50, pfa:nth=N, ...), or is
 * pfa:every=7 when none is given.
 *
 *   workload     iters= (default 20000) random steps over every API:
 *                kmalloc small/medium/large, kzalloc, kcalloc,
 *                kmalloc_aligned, krealloc growing and shrinking,
 *                kmem_cache_alloc (constructor), pfa_alloc of orders
 *                0..10, frees.  Each failure must be the documented one
 *                (NULL with KM_FAIL_NOMEM, pfa_alloc 0, krealloc's old
 *                block intact) and explained by an injected fault; right
 *                after it, the same request (injection paused) succeeds.
 *                At the end, everything freed and trimmed: the PFA's
 *                free pages are back where they were, mm_check_all() and
 *                pfa_check() are 0, and the kmalloc statistics balance
 *                (blocks, runs, pages held as before; every NULL among
 *                the failures reported).  Faults must have been injected
 *                and, when 8 or more were, made some request fail.  Faults must have been injected and seen.
 */
#include <kernel/cmdline.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <string.h>
#include <strata/debug.h>
#include <strata/fault.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#if MM_FAULT_INJECT

#define NLIVE 512

struct live {
	unsigned char *p;
	size_t n;
	unsigned char v;
};

static struct {
	struct live blk[NLIVE];
	unsigned nblk;
	void *obj[NLIVE];
	unsigned nobj;
	phys_addr_t pa[16];
	unsigned order[16], npa;
	struct kmem_cache *cache;
	uint64_t ops, failed, km_failed, retried;
} w;

#define CTOR_MAGIC 0x6661756c74733a29ull
static void ctor(void *obj)
{
	*(uint64_t *)obj = CTOR_MAGIC;
}

static uint64_t injected_total(void)
{
	struct mm_fault_stats st;
	mm_fault_get(MM_FAULT_ALL, &st);
	return st.injected;
}

static uint64_t free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

struct balance {
	uint64_t blocks, runs, pages, failures, free_pages;
};

static void snapshot(struct balance *b)
{
	static struct kmalloc_stats st;
	kmalloc_trim();
	kmalloc_get_stats(&st);
	b->blocks = 0;
	for (unsigned c = 0; c < st.nclasses; c++)
		b->blocks += st.cls[c].blocks_used;
	b->blocks -= st.percpu_cached_blocks + st.blocks_internal;
	b->runs = st.large_runs;
	b->pages = st.pfa_pages;
	b->failures = st.failures;
	b->free_pages = free_pages();
}

static void keep(void *p, size_t n, unsigned char v)
{
	size_t touch = n < 256 ? n : 256;
	memset(p, v, touch);
	memset((char *)p + n - touch, v, touch);
	w.blk[w.nblk++] = (struct live){ p, n, v };
}

static int intact(const struct live *l)
{
	size_t touch = l->n < 256 ? l->n : 256;
	for (size_t i = 0; i < touch; i++)
		if (l->p[i] != l->v || l->p[l->n - touch + i] != l->v)
			return 0;
	return 1;
}

static size_t pick_size(struct ktest_ctx *t)
{
	switch (kt_rand_below(t, 4)) {
	case 0: return 1 + kt_rand_below(t, 256);          /* small */
	case 1: return 257 + kt_rand_below(t, 1792);       /* medium */
	case 2: return 2049 + kt_rand_below(t, 64 << 10);  /* large runs */
	default: return 1 + kt_rand_below(t, 256 << 10);   /* up to 256 KiB */
	}
}

/* One allocating request; NULL/0 on failure.  kind selects the API. */
static void *request(struct ktest_ctx *t, unsigned kind, size_t n, unsigned order)
{
	switch (kind) {
	case 0: return kmalloc(n, 0);
	case 1: return kzalloc(n, 0);
	case 2: return kcalloc(1, n, 0);
	case 3: return kmalloc_aligned(n, (size_t)64 << kt_rand_below(t, 12), 0);
	case 4: return kmem_cache_alloc(w.cache, 0);
	default: {
		phys_addr_t pa = pfa_alloc(order, 0);
		return pa ? pfa_virt(pa) : NULL;
	}
	}
}

static void took(unsigned kind, void *p, size_t n, unsigned order, unsigned char v)
{
	if (kind == 4)
		w.obj[w.nobj++] = p;
	else if (kind == 5) {
		w.pa[w.npa] = pfa_phys(p);
		w.order[w.npa++] = order;
	} else
		keep(p, n, v);
}

static void step_alloc(struct ktest_ctx *t)
{
	unsigned kind = (unsigned)kt_rand_below(t, 6);
	size_t n = pick_size(t);
	unsigned order = (unsigned)kt_rand_below(t, PFA_MAX_ORDER + 1);
	unsigned char v = (unsigned char)(w.ops * 13 + 1);

	if ((kind == 4 && w.nobj == NLIVE) || (kind == 5 && w.npa == 16) ||
	    (kind < 4 && w.nblk == NLIVE))
		return;
	uint64_t inj = injected_total();
	void *p = request(t, kind, n, order);
	w.ops++;
	if (p) {
		if (kind == 1 || kind == 2)
			for (size_t i = 0; i < n; i += 97)
				KT_CHECK(t, ((unsigned char *)p)[i] == 0, "zeroed block has %#x at %zu",
					 ((unsigned char *)p)[i], i);
		if (kind == 4)
			KT_CHECK(t, *(uint64_t *)p == CTOR_MAGIC, "object %p not constructed", p);
		took(kind, p, n, order, v);
		return;
	}
	w.failed++;
	w.km_failed += kind < 5;
	KT_CHECK(t, injected_total() > inj, "kind %u (%zu bytes, order %u) failed, no fault injected",
		 kind, n, order);
	if (kind < 5) {
		struct kmalloc_report r;
		kmalloc_last_report(&r);
		KT_CHECK(t, r.kind == KM_FAIL_NOMEM, "NULL with report %s, not KM_FAIL_NOMEM",
			 kmalloc_report_name(r.kind));
	}
	/* the allocator is still whole: the same request succeeds */
	mm_fault_pause(1);
	p = request(t, kind, n, order);
	mm_fault_pause(0);
	KT_CHECK(t, p != NULL, "kind %u (%zu bytes, order %u): the retry after the fault failed",
		 kind, n, order);
	if (p) {
		took(kind, p, n, order, v);
		w.retried++;
	}
}

static void step_realloc(struct ktest_ctx *t)
{
	if (!w.nblk)
		return;
	struct live *l = &w.blk[kt_rand_below(t, w.nblk)];
	size_t n = pick_size(t);
	KT_CHECK(t, intact(l), "block %p damaged before krealloc", (void *)l->p);
	uint64_t inj = injected_total();
	unsigned char *q = krealloc(l->p, n, 0);
	w.ops++;
	if (!q) {
		w.failed++;
		w.km_failed++;
		KT_CHECK(t, injected_total() > inj, "krealloc(%zu -> %zu) failed, no fault injected",
			 l->n, n);
		KT_CHECK(t, intact(l), "krealloc failed and changed the old block");
		return;
	}
	size_t common = l->n < n ? l->n : n, touch = common < 256 ? common : 256;
	for (size_t i = 0; i < touch; i++)
		if (q[i] != l->v) {
			KT_CHECK(t, 0, "krealloc lost byte %zu", i);
			break;
		}
	unsigned char v = l->v;
	*l = w.blk[--w.nblk];
	keep(q, n, v);
}

static void step_free(struct ktest_ctx *t)
{
	unsigned r = (unsigned)kt_rand_below(t, 3);
	if (r == 0 && w.nblk) {
		unsigned i = (unsigned)kt_rand_below(t, w.nblk);
		KT_CHECK(t, intact(&w.blk[i]), "block %p damaged", (void *)w.blk[i].p);
		kfree(w.blk[i].p);
		w.blk[i] = w.blk[--w.nblk];
	} else if (r == 1 && w.nobj) {
		kmem_cache_free(w.cache, w.obj[--w.nobj]);
	} else if (w.npa) {
		w.npa--;
		pfa_free(w.pa[w.npa], w.order[w.npa]);
	}
}

static void free_everything(struct ktest_ctx *t)
{
	for (unsigned i = 0; i < w.nblk; i++) {
		KT_CHECK(t, intact(&w.blk[i]), "block %p damaged", (void *)w.blk[i].p);
		kfree(w.blk[i].p);
	}
	while (w.nobj)
		kmem_cache_free(w.cache, w.obj[--w.nobj]);
	while (w.npa) {
		w.npa--;
		pfa_free(w.pa[w.npa], w.order[w.npa]);
	}
	w.nblk = 0;
	KT_CHECK(t, kmem_cache_destroy(w.cache) == 0, "cache not empty");
}

KTEST(faults, workload)
{
	char spec[64];
	int own_rule = !cmdline_get(t->bi->cmdline, "mm.fault", spec, sizeof spec);
	mm_fault_pause(1);
	if (own_rule)
		KT_REQUIRE(t, mm_fault_setup("pfa:every=7") == 0, "mm_fault_setup");
	memset(&w, 0, sizeof w);
	struct balance before, after;
	snapshot(&before);
	w.cache = kmem_cache_create("faults", 136, 0, 0, ctor);
	KT_REQUIRE(t, w.cache, "kmem_cache_create");
	struct mm_fault_stats pfa0;
	mm_fault_get(MM_FAULT_PFA, &pfa0);
	mm_fault_pause(0);

	uint64_t steps = t->iters ? t->iters : 20000;
	for (uint64_t s = 0; s < steps && !t->failed; s++) {
		unsigned r = (unsigned)kt_rand_below(t, 10);
		if (r < 5)
			step_alloc(t);
		else if (r < 7)
			step_realloc(t);
		else
			step_free(t);
	}

	mm_fault_pause(1);
	struct mm_fault_stats pfa;
	mm_fault_get(MM_FAULT_PFA, &pfa);
	kt_log("faults: %s, %llu requests, %llu failed (%llu retried), pfa: %llu calls, "
	       "%llu failed on purpose\n", own_rule ? "pfa:every=7" : spec,
	       (unsigned long long)w.ops, (unsigned long long)w.failed,
	       (unsigned long long)w.retried, (unsigned long long)(pfa.calls - pfa0.calls),
	       (unsigned long long)(pfa.injected - pfa0.injected));
	free_everything(t);
	snapshot(&after);
	KT_CHECK(t, pfa.injected > pfa0.injected, "no PFA fault was injected (%llu calls)",
		 (unsigned long long)(pfa.calls - pfa0.calls));
	/* one fault may be absorbed by a fallback (a kmalloc without a
	 * magazine, a krealloc that moves instead of growing in place);
	 * many cannot all be */
	KT_CHECK(t, w.failed > 0 || pfa.injected - pfa0.injected < 8,
		 "%llu faults injected, no request failed: the faults never reached the API",
		 (unsigned long long)(pfa.injected - pfa0.injected));
	KT_CHECK(t, after.free_pages == before.free_pages, "%lld pages leaked",
		 (long long)(before.free_pages - after.free_pages));
	KT_CHECK(t, mm_check_all() == 0, "mm_check_all found problems");
	KT_CHECK(t, pfa_check() == 0, "pfa_check found problems");
	KT_CHECK(t, after.blocks == before.blocks && after.runs == before.runs &&
		     after.pages == before.pages,
		 "kmalloc stats: %llu blocks %llu runs %llu pages, before %llu %llu %llu",
		 (unsigned long long)after.blocks, (unsigned long long)after.runs,
		 (unsigned long long)after.pages, (unsigned long long)before.blocks,
		 (unsigned long long)before.runs, (unsigned long long)before.pages);
	KT_CHECK(t, after.failures - before.failures >= w.km_failed,
		 "%llu failures reported, %llu requests failed",
		 (unsigned long long)(after.failures - before.failures),
		 (unsigned long long)w.km_failed);
	if (own_rule)
		mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
	mm_fault_pause(0);
}

#endif

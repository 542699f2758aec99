/*
 * test_faults.c - every allocation API through every injection point
 * (strata/fault.h; this test is built with -DMM_FAULT_INJECT=1).
 *
 * For each operation below (kmalloc of small, medium and large sizes,
 * kzalloc, kcalloc, kmalloc_aligned, krealloc growing and shrinking,
 * kmem_cache_create and _alloc with a constructor, pfa_alloc of several
 * orders, bursts through the per-CPU magazines) and each point:
 *
 *   1. on a fresh heap, the operation runs with the point counting only:
 *      it makes C calls there;
 *   2. for n = 1 .. C, on a fresh heap, call n fails (MM_FAULT_NTH), and
 *        - the operation either fails with the documented result (NULL
 *          and a KM_FAIL_NOMEM report, 0 from pfa_alloc; krealloc leaves
 *          the old block intact) or succeeds through a fallback (a kfree
 *          without a magazine, a kmalloc on the locked path), and a
 *          failure happened only if a fault was injected;
 *        - the next allocation succeeds (the same operation again);
 *        - after everything is freed and the caches are trimmed: every
 *          block kept its contents, the PFA's free page count is back
 *          where it started, mm_check_all() and pfa_check() are 0, and
 *          the kmalloc statistics balance (nothing in use, the held pages
 *          reconcile with the PFA);
 *   3. with every call of the point failing (MM_FAULT_EVERY, 1) the
 *      operation fails exactly for the points the table says (`dies`).
 *
 * Then the modes themselves (nth, every, random with a seed, the text
 * form) and a random mixed workload with all points failing at random.
 */
#include "kmalloc_fixture.h"

#include <strata/debug.h>
#include <strata/fault.h>
#include <strata/kmem_cache.h>

#define MAX_KEEP 1024

struct kept {
	void *p;
	size_t n;            /* bytes holding the pattern */
	uint64_t serial;
};

static struct {
	struct kept blk[MAX_KEEP];
	unsigned nblk;
	phys_addr_t pa[16];
	unsigned order[16], npa;
	struct kmem_cache *cache[4];
	unsigned ncache;
	void *obj[MAX_KEEP];      /* objects of cache[0] */
	unsigned nobj;
	void *orig;               /* krealloc: the block before the call */
	size_t orig_n;
	uint64_t serial;
} t;

static void keep(void *p, size_t n)
{
	if (t.nblk < MAX_KEEP) {
		fill(p, n, ++t.serial);
		t.blk[t.nblk++] = (struct kept){ p, n, t.serial };
	}
}

/* Take the block at p off the list (it is being reallocated). */
static bool unkeep(void *p, struct kept *out)
{
	for (unsigned i = 0; i < t.nblk; i++)
		if (t.blk[i].p == p) {
			*out = t.blk[i];
			t.blk[i] = t.blk[--t.nblk];
			return true;
		}
	return false;
}

/* A kmalloc-family result: a usable block (kept), or NULL with a report. */
static bool got(void *p, size_t n)
{
	if (!p) {
		CHECK(kmalloc_last_report_kind() == KM_FAIL_NOMEM, "NULL without KM_FAIL_NOMEM (%d)",
		      kmalloc_last_report_kind());
		return false;
	}
	CHECK(kmalloc_usable_size(p) >= n, "usable %zu < %zu", kmalloc_usable_size(p), n);
	CHECK(in_ram(p, n), "block outside RAM");
	keep(p, n);
	return true;
}

static bool zeroed(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i])
			return false;
	return true;
}

/* ---- the operations ---- */

static bool op_kmalloc(size_t n) { return got(kmalloc(n, 0), n); }
static bool run_small(void) { return op_kmalloc(24); }
static bool run_medium(void) { return op_kmalloc(1000); }
static bool run_large(void) { return op_kmalloc(100000); }
static bool run_largest(void) { return op_kmalloc(KMALLOC_MAX_SIZE); }

static bool run_kzalloc(void)
{
	void *p = kzalloc(300, 0);
	CHECK(!p || zeroed(p, 300), "kzalloc not zeroed");
	return got(p, 300);
}

static bool run_kcalloc(void)
{
	void *p = kcalloc(10, 4000, 0);   /* above the classes: a run */
	CHECK(!p || zeroed(p, 40000), "kcalloc not zeroed");
	return got(p, 7000);
}

static bool op_aligned(size_t n, size_t align)
{
	void *p = kmalloc_aligned(n, align, 0);
	CHECK(!p || ((uintptr_t)p & (align - 1)) == 0, "%p not %zu-aligned", p, align);
	return got(p, n);
}
static bool run_aligned_small(void) { return op_aligned(100, 256); }
static bool run_aligned_large(void) { return op_aligned(5000, 64 * KIB); }
static bool run_aligned_wide(void) { return op_aligned(4096, 2 * KMALLOC_ALIGN_MAX); }

/* krealloc: prep makes the block (no faults), run resizes it. */
static void prep_block(size_t n)
{
	t.orig = kmalloc(n, 0);
	t.orig_n = n;
	if (t.orig)
		keep(t.orig, n);
}
static void prep_small40(void) { prep_block(40); }
static void prep_small2000(void) { prep_block(2000); }
static void prep_run3(void) { prep_block(KMALLOC_SMALL_MAX + 3 * PAGE_SIZE); }
static void prep_run40(void) { prep_block(KMALLOC_SMALL_MAX + 40 * PAGE_SIZE); }
static void prep_run10(void) { prep_block(KMALLOC_SMALL_MAX + 10 * PAGE_SIZE); }

static bool op_realloc(size_t n)
{
	struct kept old;
	if (!t.orig || !unkeep(t.orig, &old)) {
		CHECK(false, "krealloc: no block prepared");
		return false;
	}
	void *q = krealloc(old.p, n, 0);
	if (!q) {
		CHECK(kmalloc_last_report_kind() == KM_FAIL_NOMEM, "krealloc NULL without report");
		CHECK(intact(old.p, old.n, old.serial), "krealloc failed and changed the old block");
		t.blk[t.nblk++] = old;       /* still ours */
		return false;
	}
	size_t common = old.n < n ? old.n : n;
	CHECK(intact_key(q, common, old.p, old.serial), "krealloc lost the contents");
	CHECK(kmalloc_usable_size(q) >= n, "krealloc: usable %zu < %zu", kmalloc_usable_size(q), n);
	keep(q, n);
	t.orig = q;                      /* the next call resizes it again */
	t.orig_n = n;
	return true;
}
/* 1000 bytes: with debug mode's red zones still a class of 16 KiB pools,
 * whose arena is there (a first block of a bigger pool kind needs an arena) */
static bool run_grow_small(void) { return op_realloc(t.orig_n == 40 ? 1000 : 40); }
static bool run_small_to_run(void) { return op_realloc(t.orig_n == 40 ? KMALLOC_SMALL_MAX + 5000 : 40); }
static bool run_shrink_small(void) { return op_realloc(t.orig_n == 2000 ? 100 : 2000); }
#define RUN(pages) (KMALLOC_SMALL_MAX + (pages) * PAGE_SIZE)   /* above the classes */
static bool run_grow_run(void) { return op_realloc(t.orig_n == RUN(3) ? RUN(40) : RUN(3)); }
static bool run_shrink_run(void) { return op_realloc(t.orig_n == RUN(40) ? RUN(3) : RUN(40)); }
static bool run_run_to_small(void) { return op_realloc(t.orig_n == RUN(10) ? 100 : RUN(10)); }

/* kmem caches: a constructor that marks every slot once */
#define CTOR_MAGIC 0x63746f72636f6f6bull
static void ctor(void *obj)
{
	*(uint64_t *)obj = CTOR_MAGIC;
}

static bool run_cache_create(void)
{
	struct kmem_cache *c = kmem_cache_create("faults", 200, 0, 0, ctor);
	if (!c) {
		CHECK(kmalloc_last_report_kind() == KM_FAIL_NOMEM, "kmem_cache_create NULL, no report");
		return false;
	}
	t.cache[t.ncache++] = c;
	return true;
}

static void prep_cache(void)
{
	run_cache_create();
}

static bool cache_alloc_n(unsigned n)
{
	if (!t.ncache) {
		CHECK(false, "no cache prepared");
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		void *o = kmem_cache_alloc(t.cache[0], 0);
		if (!o) {
			CHECK(kmalloc_last_report_kind() == KM_FAIL_NOMEM, "cache alloc NULL, no report");
			return false;
		}
		CHECK(*(uint64_t *)o == CTOR_MAGIC, "object %p not constructed", o);
		*(uint64_t *)o = CTOR_MAGIC;     /* constructed state kept on free */
		if (t.nobj < MAX_KEEP)
			t.obj[t.nobj++] = o;
	}
	return true;
}
static bool run_cache_alloc(void) { return cache_alloc_n(1); }
/* an object of the trial's cache, if it has one */
static bool cache_or_none(void) { return !t.ncache || cache_alloc_n(1); }
static bool run_cache_burst(void) { return cache_alloc_n(300); }

static bool op_pfa(unsigned order)
{
	phys_addr_t pa = pfa_alloc(order, 0);
	if (!pa)
		return false;
	CHECK((pa & (((phys_addr_t)PAGE_SIZE << order) - 1)) == 0, "pfa block misaligned");
	if (t.npa < 16) {
		t.pa[t.npa] = pa;
		t.order[t.npa++] = order;
	}
	return true;
}
static bool run_pfa0(void) { return op_pfa(0); }
static bool run_pfa3(void) { return op_pfa(3); }
static bool run_pfa8(void) { return op_pfa(8); }
static bool run_pfa10(void) { return op_pfa(PFA_MAX_ORDER); }

/* The per-CPU magazines: a burst of one class fills and trades them; a
 * burst of frees needs new magazines (or goes to the pools without). */
static bool run_kmalloc_burst(void)
{
	for (int i = 0; i < 200; i++)
		if (!op_kmalloc(64))
			return false;
	return true;
}

static void prep_burst(void)
{
	for (int i = 0; i < 200; i++)
		keep(kmalloc(64, 0), 64);
}

static bool run_kfree_burst(void)
{
	while (t.nblk) {
		struct kept *k = &t.blk[--t.nblk];
		CHECK(intact(k->p, k->n, k->serial), "block %p damaged before kfree", k->p);
		kfree(k->p);
	}
	return true;
}

#define P(x) (1u << MM_FAULT_##x)
struct op {
	const char *name;
	void (*prep)(void);       /* runs with injection paused */
	bool (*run)(void);        /* under injection: true = succeeded */
	unsigned reaches;         /* points it must reach on a fresh heap */
	unsigned dies;            /* points where failing every call fails it */
};

static const struct op ops[] = {
	{ "kmalloc-small", NULL, run_small, P(PFA) | P(ARENA) | P(MAGAZINE), P(PFA) | P(ARENA) },
	{ "kmalloc-medium", NULL, run_medium, P(PFA) | P(ARENA) | P(MAGAZINE), P(PFA) | P(ARENA) },
	{ "kmalloc-large", NULL, run_large, P(PFA), P(PFA) },
	{ "kmalloc-largest", NULL, run_largest, P(PFA), P(PFA) },
	{ "kzalloc", NULL, run_kzalloc, P(PFA) | P(ARENA), P(PFA) | P(ARENA) },
	{ "kcalloc", NULL, run_kcalloc, P(PFA), P(PFA) },
	/* no block of an aligned class: a page run instead */
	{ "kmalloc_aligned-small", NULL, run_aligned_small, P(PFA) | P(ARENA), P(PFA) },
	{ "kmalloc_aligned-large", NULL, run_aligned_large, P(PFA), P(PFA) },
	{ "kmalloc_aligned-wide", NULL, run_aligned_wide, P(PFA), P(PFA) },
	/* the prepared block's arena has room: only the magazines are new */
	{ "krealloc-grow-small", prep_small40, run_grow_small, P(MAGAZINE), 0 },
	{ "krealloc-shrink-small", prep_small2000, run_shrink_small, P(MAGAZINE), 0 },
	{ "krealloc-small-to-run", prep_small40, run_small_to_run, P(PFA), P(PFA) },
	{ "krealloc-grow-run", prep_run3, run_grow_run, P(PFA), P(PFA) },
	{ "krealloc-shrink-run", prep_run40, run_shrink_run, 0, 0 },
	{ "krealloc-run-to-small", prep_run10, run_run_to_small, P(PFA) | P(ARENA), 0 },
	{ "kmem_cache_create", NULL, run_cache_create, P(PFA) | P(ARENA), P(PFA) | P(ARENA) },
	{ "kmem_cache_alloc", prep_cache, run_cache_alloc, P(PFA) | P(SLAB) | P(MAGAZINE),
	  P(PFA) | P(SLAB) },
	{ "kmem_cache_alloc-burst", prep_cache, run_cache_burst,
	  P(PFA) | P(SLAB) | P(MAGAZINE), P(PFA) | P(SLAB) },
	{ "pfa_alloc-0", NULL, run_pfa0, P(PFA), P(PFA) },
	{ "pfa_alloc-3", NULL, run_pfa3, P(PFA), P(PFA) },
	{ "pfa_alloc-8", NULL, run_pfa8, P(PFA), P(PFA) },
	{ "pfa_alloc-max", NULL, run_pfa10, P(PFA), P(PFA) },
	{ "kmalloc-burst", NULL, run_kmalloc_burst, P(PFA) | P(ARENA) | P(MAGAZINE),
	  P(PFA) | P(ARENA) },
	{ "kfree-burst", prep_burst, run_kfree_burst, P(MAGAZINE), 0 },
};
#define NOPS (sizeof ops / sizeof ops[0])

/* ---- one trial ---- */

static void fresh_heap(void)
{
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
	memset(&t, 0, sizeof t);
	ram = host_ram(RAM_SIZE);
	reserved_page = ram + 5 * MIB + 3 * PAGE_SIZE;
	host_pfa_setup(ram, RAM_SIZE, reserved_page);
	kmalloc_init();
	mm_percpu_enable(mm_debug_flags() == 0);   /* debug mode keeps them off */
	free_at_start = pfa_free_pages();
}

/* Free everything the trial holds, trim, and check nothing leaked. */
static void free_all_and_check(const char *what)
{
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
	for (unsigned i = 0; i < t.nblk; i++) {
		CHECK(intact(t.blk[i].p, t.blk[i].n, t.blk[i].serial), "%s: block %p damaged",
		      what, t.blk[i].p);
		kfree(t.blk[i].p);
	}
	for (unsigned i = 0; i < t.nobj; i++)
		kmem_cache_free(t.cache[0], t.obj[i]);
	for (unsigned i = 0; i < t.ncache; i++)
		CHECK(kmem_cache_destroy(t.cache[i]) == 0, "%s: cache not empty", what);
	for (unsigned i = 0; i < t.npa; i++)
		pfa_free(t.pa[i], t.order[i]);
	t.nblk = t.nobj = t.ncache = t.npa = 0;
	mm_reclaim();

	CHECK(pfa_free_pages() == free_at_start, "%s: %lld pages leaked", what,
	      (long long)(free_at_start - pfa_free_pages()));
	CHECK(mm_check_all() == 0, "%s: mm_check_all found problems", what);
	CHECK(pfa_check() == 0, "%s: pfa_check found problems", what);
	char why[160];
	CHECK(reconciles(why, sizeof why), "%s: %s", what, why);
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	uint64_t used = 0;
	for (unsigned c = 0; c < st.nclasses; c++)
		used += st.cls[c].blocks_used;
	CHECK(used == 0 && st.large_runs == 0 && st.blocks_internal == 0 && st.pfa_pages == 0,
	      "%s: after freeing all: %llu blocks, %llu runs, %llu internal, %llu pages held",
	      what, (unsigned long long)used, (unsigned long long)st.large_runs,
	      (unsigned long long)st.blocks_internal, (unsigned long long)st.pfa_pages);
}

/* After a fault: the operation again, and plain allocations, succeed. */
static void next_succeeds(const struct op *o, const char *what)
{
	CHECK(o->run(), "%s: the operation failed again after the fault", what);
	CHECK(op_kmalloc(24) && op_kmalloc(3 * PAGE_SIZE) && cache_or_none(),
	      "%s: the next allocation after the fault failed", what);
}

/* Run op on a fresh heap under (point, mode, n); *calls: the point's
 * calls during the run.  Returns whether the operation succeeded. */
static bool trial(const struct op *o, unsigned point, enum mm_fault_mode mode, uint64_t n,
		  uint64_t *calls, char *what, size_t wn)
{
	struct mm_fault_stats st;

	snprintf(what, wn, "%s, %s %s=%llu", o->name, mm_fault_point_name(point),
		 mode == MM_FAULT_NTH ? "nth" : mode == MM_FAULT_EVERY ? "every" : "off",
		 (unsigned long long)n);
	fresh_heap();
	if (o->prep)
		o->prep();
	mm_fault_set(point, mode, n, 0);
	bool ok = o->run();
	mm_fault_get(point, &st);
	*calls = st.calls;
	if (!ok)
		CHECK(st.injected > 0, "%s: failed with no fault injected", what);
	return ok;
}

static uint64_t count_calls(const struct op *o, unsigned point)
{
	uint64_t calls;
	char what[96];
	bool ok = trial(o, point, MM_FAULT_OFF, 0, &calls, what, sizeof what);
	CHECK(ok, "%s: fails without faults", what);
	free_all_and_check(what);
	return calls;
}

static void fail_each_call(const struct op *o, unsigned point, uint64_t ncalls)
{
	for (uint64_t n = 1; n <= ncalls; n++) {
		uint64_t calls;
		char what[96];
		trial(o, point, MM_FAULT_NTH, n, &calls, what, sizeof what);
		struct mm_fault_stats st;
		mm_fault_get(point, &st);
		CHECK(st.injected == 1, "%s: %llu faults injected, want 1", what,
		      (unsigned long long)st.injected);
		next_succeeds(o, what);   /* the rule is spent */
		free_all_and_check(what);
		if (harness_failed_now)
			return;   /* one reason is enough */
	}
}

static void fail_every_call(const struct op *o, unsigned point)
{
	uint64_t calls;
	char what[96];
	bool ok = trial(o, point, MM_FAULT_EVERY, 1, &calls, what, sizeof what);
	bool want = !(o->dies & (1u << point));
	CHECK(ok == want, "%s: %s, expected it to %s", what, ok ? "succeeded" : "failed",
	      want ? "succeed" : "fail");
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
	next_succeeds(o, what);
	free_all_and_check(what);
}

static void exercise(const struct op *o)
{
	printf("# %s: calls per point on a fresh heap:", o->name);
	for (unsigned point = 0; point < MM_FAULT_OS; point++) {
		uint64_t calls = count_calls(o, point);
		printf(" %s %llu", mm_fault_point_name(point), (unsigned long long)calls);
		/* debug mode bypasses the magazines */
		unsigned reaches = o->reaches & ~(mm_debug_flags() ? P(MAGAZINE) : 0);
		if (reaches & (1u << point))
			CHECK(calls > 0, "%s does not reach the %s point", o->name,
			      mm_fault_point_name(point));
		fail_each_call(o, point, calls);
		fail_every_call(o, point);
		if (harness_failed_now)
			break;
	}
	printf("\n");
}

/* one TEST per operation, so a failure names it */
#define OP_TEST(i, id) TEST(id) { exercise(&ops[i]); }
OP_TEST(0, kmalloc_small)
OP_TEST(1, kmalloc_medium)
OP_TEST(2, kmalloc_large)
OP_TEST(3, kmalloc_largest)
OP_TEST(4, kzalloc)
OP_TEST(5, kcalloc)
OP_TEST(6, kmalloc_aligned_small)
OP_TEST(7, kmalloc_aligned_large)
OP_TEST(8, kmalloc_aligned_wide)
OP_TEST(9, krealloc_grow_small)
OP_TEST(10, krealloc_shrink_small)
OP_TEST(11, krealloc_small_to_run)
OP_TEST(12, krealloc_grow_run)
OP_TEST(13, krealloc_shrink_run)
OP_TEST(14, krealloc_run_to_small)
OP_TEST(15, kmem_cache_create)
OP_TEST(16, kmem_cache_alloc)
OP_TEST(17, kmem_cache_alloc_burst)
OP_TEST(18, pfa_alloc_0)
OP_TEST(19, pfa_alloc_3)
OP_TEST(20, pfa_alloc_8)
OP_TEST(21, pfa_alloc_max)
OP_TEST(22, kmalloc_burst_magazines)
OP_TEST(23, kfree_burst_magazines)
_Static_assert(NOPS == 24, "one OP_TEST per operation");

/* Debug mode (a header and red zones on every block, the quarantine, no
 * magazines; caches with red zones): every operation again, the same
 * properties.  Last, since it leaves debug mode off again. */
TEST(zz_debug_mode_every_operation)
{
	REQUIRE(mm_debug_setup("all,continue") == 0, "mm_debug_setup");
	for (unsigned i = 0; i < NOPS && !harness_failed_now; i++)
		exercise(&ops[i]);
	CHECK(mm_debug_setup("off") == 0 && mm_debug_flags() == 0, "debug mode off");
}

/* ---- the modes ---- */

TEST(modes_nth_every)
{
	fresh_heap();
	phys_addr_t got_pa[30];
	REQUIRE(mm_fault_set(MM_FAULT_PFA, MM_FAULT_EVERY, 3, 0) == 0, "set every=3");
	for (int i = 0; i < 30; i++) {
		got_pa[i] = pfa_alloc(0, 0);
		CHECK((got_pa[i] == 0) == ((i + 1) % 3 == 0), "every=3: call %d %s", i + 1,
		      got_pa[i] ? "succeeded" : "failed");
	}
	struct mm_fault_stats st;
	mm_fault_get(MM_FAULT_PFA, &st);
	CHECK(st.calls == 30 && st.injected == 10, "every=3: %llu calls %llu injected",
	      (unsigned long long)st.calls, (unsigned long long)st.injected);
	for (int i = 0; i < 30; i++)
		if (got_pa[i])
			pfa_free(got_pa[i], 0);
	REQUIRE(mm_fault_setup("pfa:nth=4") == 0, "setup nth=4");
	for (int i = 0; i < 8; i++) {
		got_pa[i] = pfa_alloc(0, 0);
		CHECK((got_pa[i] == 0) == (i == 3), "nth=4: call %d", i + 1);
	}
	for (int i = 0; i < 8; i++)
		if (got_pa[i])
			pfa_free(got_pa[i], 0);
	/* paused: nothing fails, nothing counted */
	mm_fault_set(MM_FAULT_PFA, MM_FAULT_EVERY, 1, 0);
	mm_fault_pause(1);
	phys_addr_t pa = pfa_alloc(0, 0);
	mm_fault_pause(0);
	mm_fault_get(MM_FAULT_PFA, &st);
	CHECK(pa && st.calls == 0, "paused: pa %llx, %llu calls", (unsigned long long)pa,
	      (unsigned long long)st.calls);
	pfa_free(pa, 0);
	free_all_and_check("modes");
}

static uint64_t random_pattern(uint64_t seed, unsigned *nfail)
{
	uint64_t bits = 0;
	*nfail = 0;
	mm_fault_set(MM_FAULT_ARENA, MM_FAULT_RANDOM, 4, seed);
	for (unsigned i = 0; i < 4000; i++) {
		bool hit = mm_fault_hit(MM_FAULT_ARENA);
		*nfail += hit;
		if (i < 64 && hit)
			bits |= 1ull << i;
	}
	return bits;
}

TEST(modes_random_seeded)
{
	unsigned n1, n2, n3;
	uint64_t a = random_pattern(42, &n1), b = random_pattern(42, &n2),
		 c = random_pattern(43, &n3);
	CHECK(a == b && n1 == n2, "the same seed gave two patterns");
	CHECK(a != c, "seeds 42 and 43 gave the same pattern");
	CHECK(n1 > 850 && n1 < 1150 && n3 > 850 && n3 < 1150, "1 in 4 of 4000: %u and %u", n1, n3);
	struct mm_fault_stats st;
	mm_fault_get(MM_FAULT_ARENA, &st);
	CHECK(st.calls == 4000 && st.injected == n3, "counters %llu/%llu",
	      (unsigned long long)st.calls, (unsigned long long)st.injected);
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
}

TEST(modes_text_form)
{
	struct { const char *spec; int ok; } cases[] = {
		{ "pfa:every=7", 0 }, { "arena,slab:nth=3", 0 }, { "all:random=42,1in=50", 0 },
		{ "magazine:off", 0 }, { "os:nth=1", 0 },
		{ "pfa", -1 }, { "pfa:", -1 }, { "disk:nth=1", -1 }, { "pfa:nth=0", -1 },
		{ "pfa:every=", -1 }, { "pfa:every=7x", -1 }, { "pfa:random=1", -1 },
		{ "pfa:random=1,1in=0", -1 }, { "pfa,:nth=1", -1 }, { "", -1 },
		{ "pfa:nth=99999999999999999999999", -1 },
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK(mm_fault_setup(cases[i].spec) == cases[i].ok, "mm_fault_setup(\"%s\") != %d",
		      cases[i].spec, cases[i].ok);
	CHECK(mm_fault_setup(NULL) == -1, "NULL spec");
	/* what "arena,slab:nth=3" set: the third call of each fails */
	REQUIRE(mm_fault_setup("arena,slab:nth=3") == 0, "setup");
	REQUIRE(mm_fault_setup("pfa:off") == 0, "setup off");
	for (int i = 1; i <= 4; i++) {
		bool a = mm_fault_hit(MM_FAULT_ARENA), s = mm_fault_hit(MM_FAULT_SLAB),
		     p = mm_fault_hit(MM_FAULT_PFA);
		CHECK(a == (i == 3) && s == (i == 3) && !p, "call %d: arena %d slab %d pfa %d", i,
		      a, s, p);
	}
	CHECK(mm_fault_set(MM_FAULT_ALL + 1, MM_FAULT_NTH, 1, 0) == -1, "bad point accepted");
	CHECK(mm_fault_set(MM_FAULT_PFA, MM_FAULT_NTH, 0, 0) == -1, "n = 0 accepted");
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
}

/* ---- everything at once: all points failing at random ---- */

TEST(random_workload_all_points)
{
	fresh_heap();
	struct kmem_cache *c = kmem_cache_create("rand", 96, 0, 0, ctor);
	REQUIRE(c, "cache");
	t.cache[t.ncache++] = c;
	REQUIRE(mm_fault_set(MM_FAULT_ALL, MM_FAULT_RANDOM, 5, harness_seed) == 0, "set");
	unsigned failures = 0;
	for (int step = 0; step < 6000; step++) {
		struct mm_fault_stats before, after;
		mm_fault_get(MM_FAULT_ALL, &before);
		bool ok = true;
		unsigned r = (unsigned)rnd_below(10);
		if (r < 3 && t.nblk) {                       /* free one */
			unsigned i = (unsigned)rnd_below(t.nblk);
			CHECK(intact(t.blk[i].p, t.blk[i].n, t.blk[i].serial), "step %d damaged", step);
			kfree(t.blk[i].p);
			t.blk[i] = t.blk[--t.nblk];
		} else if (r < 4 && t.nobj) {
			kmem_cache_free(c, t.obj[--t.nobj]);
		} else if (r < 5) {
			ok = cache_alloc_n(1);
		} else if (r < 6 && t.nblk) {                /* realloc one */
			t.orig = t.blk[rnd_below(t.nblk)].p;
			ok = op_realloc(1 + rnd_below(rnd_below(2) ? 3000 : 60000));
		} else if (t.nblk < MAX_KEEP - 1) {
			size_t n = 1 + rnd_below(rnd_below(4) ? 2048 : 200000);
			ok = op_kmalloc(n);
		}
		mm_fault_get(MM_FAULT_ALL, &after);
		if (!ok) {
			failures++;
			CHECK(after.injected > before.injected, "step %d failed with no fault injected",
			      step);
		}
		if (harness_failed_now)
			break;
	}
	CHECK(failures > 0, "no operation failed: the faults did not reach");
	free_all_and_check("random workload");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

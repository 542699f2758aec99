/*
 * test_kmem_cache.c - the object caches (mm/slab.c, level +3) on the host,
 * under ASan: geometry, constructors, bad frees, shrinking, and the
 * cache layer's part in the whole-allocator operations (it registers
 * itself with mm/mm.c on the first kmem_cache_create):
 *
 *   ctor_once_per_slot        a constructor runs once per slot ever made
 *   sizes_and_alignment       1 byte to 300 KB: waste under 1/8, aligned
 *   bad_frees_are_reported    wrong cache, kmalloc block, interior,
 *                             double free: reported, nothing freed
 *   pointers_outside_the_slots_are_refused  a slab's header and its
 *                             tail past the last slot: interior pointers
 *   reclaim_reaches_caches    mm_reclaim (kmalloc_trim) empties the caches'
 *                             magazines and slabs: every page comes back
 *   cpu_detach_drains_magazines  mm_cpu_detach(cpu) gives that CPU's
 *                             cached objects back to the slabs
 *   check_all_sees_cache_damage  mm_check_all counts a damaged red zone
 *                             of a KMEM_DEBUG cache
 */
#include <string.h>
#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#include "harness.h"
#include "host.h"
#include "host_ram.h"

#define RAM (64u << 20)
static char out[16384];

static uint64_t free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

static void setup(void)
{
	host_heap_setup(RAM);
	mm_debug_set_panic(0);
}

static unsigned ctor_calls;
static void ctor(void *p)
{
	((uint32_t *)p)[0] = 0x77696467;
	ctor_calls++;
}

TEST(ctor_once_per_slot)
{
	setup();
	ctor_calls = 0;
	struct kmem_cache *c = kmem_cache_create("widget", 64, 0, KMEM_HWCACHE_ALIGN, ctor);
	CHECK(c != NULL, "create");
	static uint32_t *o[3000];
	unsigned allocs = 0;
	for (int round = 0; round < 10; round++) {
		unsigned n = 300u * (unsigned)(round + 1);
		for (unsigned i = 0; i < n; i++) {
			o[i] = kmem_cache_alloc(c, 0);
			CHECK(o[i] && o[i][0] == 0x77696467 && ((uintptr_t)o[i] & 63) == 0,
			      "object %u: %p not constructed or not aligned", i, (void *)o[i]);
		}
		allocs += n;
		for (unsigned i = 0; i < n; i++)
			kmem_cache_free(c, o[i]);
	}
	struct kmem_cache_stats st;
	kmem_cache_get_stats(c, &st);
	CHECK(ctor_calls == st.slabs_created * st.objs_per_slab && ctor_calls < allocs,
	      "%u ctor calls, %llu slabs of %u, %u allocations", ctor_calls,
	      (unsigned long long)st.slabs_created, st.objs_per_slab, allocs);
	CHECK(kmem_cache_destroy(c) == 0, "destroy");
}

TEST(sizes_and_alignment)
{
	setup();
	static const size_t sizes[] = { 1, 8, 24, 100, 500, 2100, 4096, 12288, 300000 };
	for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		struct kmem_cache *c = kmem_cache_create("sized", sizes[k], 0, 0, NULL);
		CHECK(c != NULL, "create(%zu)", sizes[k]);
		if (!c)
			return;
		struct kmem_cache_stats st;
		kmem_cache_get_stats(c, &st);
		size_t slab = (size_t)PAGE_SIZE << st.slab_order;
		CHECK((slab - (size_t)st.objs_per_slab * st.stride) * 8 < slab,
		      "size %zu wastes too much of a %zu slab", sizes[k], slab);
		unsigned char *o[8];
		for (int i = 0; i < 8; i++) {
			o[i] = kmem_cache_alloc(c, KM_ZERO);
			CHECK(o[i] && ((uintptr_t)o[i] & 7) == 0, "alloc %zu", sizes[k]);
			CHECK(o[i][sizes[k] - 1] == 0, "KM_ZERO");
			memset(o[i], i + 1, sizes[k]);
		}
		for (int i = 0; i < 8; i++) {
			CHECK(o[i][0] == i + 1 && o[i][sizes[k] - 1] == i + 1, "object overwritten");
			kmem_cache_free(c, o[i]);
		}
		CHECK(kmem_cache_destroy(c) == 0, "destroy(%zu)", sizes[k]);
	}
}

TEST(bad_frees_are_reported)
{
	setup();
	struct kmem_cache *a = kmem_cache_create("a", 64, 0, 0, NULL);
	struct kmem_cache *b = kmem_cache_create("b", 64, 0, 0, NULL);
	char *x = kmem_cache_alloc(a, 0);
	void *pin = kmem_cache_alloc(a, 0), *k = kmalloc(64, 0);
	struct kmalloc_report r;
	struct { void *p; struct kmem_cache *c; enum kmalloc_report_kind want; } cases[] = {
		{ x, b, KM_BAD_WRONG_CACHE },
		{ k, a, KM_BAD_FOREIGN },
		{ x + 8, a, KM_BAD_MISALIGNED },
	};
	host_capture_start(out, sizeof out);
	for (unsigned i = 0; i < 3; i++) {
		kmalloc_clear_report();
		int verdict = kmem_cache_free(cases[i].c, cases[i].p);
		kmalloc_last_report(&r);
		CHECK(r.kind == cases[i].want && r.ptr == cases[i].p, "case %u: report %s", i,
		      kmalloc_report_name(r.kind));
		CHECK(verdict == -1, "case %u: refused free returned %d", i, verdict);
	}
	CHECK(kmem_cache_free(a, x) == 0, "legal free refused");
	kmalloc_clear_report();
	int twice = kmem_cache_free(a, x);
	kmalloc_last_report(&r);
	host_capture_stop();
	CHECK(r.kind == KM_DOUBLE_FREE && r.ptr == x, "double free: %s", kmalloc_report_name(r.kind));
	CHECK(twice == -1, "double free returned %d", twice);
	kfree(k);
	CHECK(kmem_cache_free(a, pin) == 0, "legal free refused");
	CHECK(kmem_cache_check_all() == 0, "check_all after bad frees");
	CHECK(kmem_cache_destroy(a) == 0 && kmem_cache_destroy(b) == 0, "destroy");
}

/* Pointers inside a slab of the right cache but at no slot: the slab's
 * header (before slot 0) and, where the slab has a tail that holds no
 * whole slot, the stride-aligned address just past the last slot.  Both
 * lie on the slot grid's arithmetic only if the range test is right
 * (kmem_cache_free's fast path and slab_of compare the offset with the
 * slots' span), so each must be refused as an interior pointer. */
TEST(pointers_outside_the_slots_are_refused)
{
	setup();
	unsigned tried = 0;
	for (size_t size = 1000; size <= 1400 && tried < 3; size += 8) {
		struct kmem_cache *c = kmem_cache_create("tail", size, 0, 0, NULL);
		REQUIRE(c, "create(%zu)", size);
		struct kmem_cache_stats st;
		kmem_cache_get_stats(c, &st);
		char *x = kmem_cache_alloc(c, 0);
		REQUIRE(x, "alloc(%zu)", size);
		uint64_t slab_bytes = (uint64_t)PAGE_SIZE << st.slab_order;
		uint64_t in_slab = pfa_phys(x) & (slab_bytes - 1);
		char *slab = x - in_slab;
		uint64_t first = in_slab % st.stride;   /* the header is < one stride here */
		uint64_t end = first + (uint64_t)st.objs_per_slab * st.stride;
		struct kmalloc_report r;
		host_capture_start(out, sizeof out);
		kmalloc_clear_report();
		int v = kmem_cache_free(c, slab);
		kmalloc_last_report(&r);
		CHECK(v == -1 && r.kind == KM_BAD_MISALIGNED && r.ptr == slab,
		      "size %zu: the slab's header freed: %d, %s", size, v, kmalloc_report_name(r.kind));
		if (first < st.stride && end + 8 <= slab_bytes) {
			kmalloc_clear_report();
			v = kmem_cache_free(c, slab + end);
			kmalloc_last_report(&r);
			CHECK(v == -1 && r.kind == KM_BAD_MISALIGNED && r.ptr == slab + end,
			      "size %zu: slot %u of %u (the tail) freed: %d, %s", size,
			      st.objs_per_slab, st.objs_per_slab, v, kmalloc_report_name(r.kind));
			tried++;
		}
		host_capture_stop();
		CHECK(kmem_cache_free(c, x) == 0, "legal free refused");
		CHECK(kmem_cache_check_all() == 0, "check_all after refused frees");
		CHECK(kmem_cache_destroy(c) == 0, "destroy(%zu)", size);
	}
	CHECK(tried == 3, "only %u sizes with a tail past the last slot", tried);
}

TEST(reclaim_reaches_caches)
{
	setup();
	mm_reclaim();
	uint64_t free0 = free_pages();
	struct kmem_cache *c = kmem_cache_create("bulk", 700, 0, 0, NULL);
	static void *o[4000];
	for (int i = 0; i < 4000; i++)
		o[i] = kmem_cache_alloc(c, 0);
	CHECK(free_pages() + 4000 * 700 / PAGE_SIZE < free0, "slabs not from the PFA");
	for (int i = 0; i < 4000; i++)
		kmem_cache_free(c, o[i]);
	/* kmalloc_trim knows nothing of caches: it reaches them through the
	 * layer they registered (mm/layer.h) */
	uint64_t got = kmalloc_trim();
	struct kmem_cache_stats st;
	kmem_cache_get_stats(c, &st);
	CHECK(st.slabs == 0 && st.objs_cached == 0, "after kmalloc_trim: %llu slabs, %llu cached",
	      (unsigned long long)st.slabs, (unsigned long long)st.objs_cached);
	CHECK(got > 0, "kmalloc_trim gave back nothing");
	CHECK(kmem_cache_destroy(c) == 0, "destroy");
	mm_reclaim();
	CHECK(free_pages() == free0, "pages %llu -> %llu", (unsigned long long)free0,
	      (unsigned long long)free_pages());
}

TEST(cpu_detach_drains_magazines)
{
	setup();
	struct kmem_cache *c = kmem_cache_create("detach", 128, 0, 0, NULL);
	void *o[64];
	for (int i = 0; i < 64; i++)
		o[i] = kmem_cache_alloc(c, 0);
	for (int i = 0; i < 64; i++)
		kmem_cache_free(c, o[i]);     /* into CPU 0's magazines */
	struct kmem_cache_stats st;
	kmem_cache_get_stats(c, &st);
	CHECK(st.objs_in_slabs > 0, "nothing cached on the CPU (objs_in_slabs 0)");
	CHECK(st.objs_in_slabs > st.objs_cached, "CPU 0's magazines hold nothing");
	mm_cpu_detach(0);
	kmem_cache_get_stats(c, &st);
	/* what is left out of the slabs is in the depot, no longer on CPU 0 */
	CHECK(st.objs_in_slabs == st.objs_cached, "%llu objects out of the slabs, %llu in the "
	      "depot after detach", (unsigned long long)st.objs_in_slabs,
	      (unsigned long long)st.objs_cached);
	CHECK(kmem_cache_destroy(c) == 0, "destroy");
}

TEST(check_all_sees_cache_damage)
{
	setup();
	struct kmem_cache *c = kmem_cache_create("damaged", 40, 0, KMEM_DEBUG, NULL);
	unsigned char *p = kmem_cache_alloc(c, 0);
	host_capture_start(out, sizeof out);
	CHECK(mm_check_all() == 0, "clean heap has problems");
	p[40] = 0;                         /* one byte past the object */
	int n = mm_check_all();
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	host_capture_stop();
	CHECK(n == 1, "mm_check_all found %d problems, want 1", n);
	CHECK(r.kind == MM_BUG_OVERFLOW && r.cache && strcmp(r.cache, "damaged") == 0 &&
	      r.bad == p + 40, "report: %s, cache %s, bad %p", mm_bug_name(r.kind),
	      r.cache ? r.cache : "-", r.bad);
	p[40] = MM_POISON_REDZONE;
	kmem_cache_free(c, p);
	CHECK(kmem_cache_destroy(c) == 0, "destroy");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

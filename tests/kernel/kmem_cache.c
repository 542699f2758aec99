/*
 * kmem_cache.c - suite "kmem_cache": level +3 on the live machine.
 *
 *   ctor_once_per_slot   a constructor counts its calls: after many
 *                        alloc/free rounds it has run exactly once per
 *                        slot of every slab ever made, and every object
 *                        handed out is still in its constructed state
 *   sizes_and_waste      8 bytes to several pages: slab geometry wastes
 *                        under 1/8, objects aligned, distinct, writable
 *   destroy_reports_live kmem_cache_destroy names each live object
 *   bad_frees            wrong cache, kmalloc block, interior pointer,
 *                        immediate double free: reported, nothing freed
 *   shrink_gives_back    shrink/reclaim return every page to the PFA
 */
#include <kernel/ktest.h>
#include <string.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

static uint64_t free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

struct widget {
	uint32_t magic;
	uint32_t ctor_serial;
	uint64_t payload[6];
};

static unsigned ctor_calls;
static void widget_ctor(void *p)
{
	struct widget *w = p;
	w->magic = 0x77696467;
	w->ctor_serial = ++ctor_calls;
}

KTEST(kmem_cache, ctor_once_per_slot)
{
	ctor_calls = 0;
	struct kmem_cache *c = kmem_cache_create("widget", sizeof(struct widget), 0,
						 KMEM_HWCACHE_ALIGN, widget_ctor);
	KT_REQUIRE(t, c != NULL, "create failed");
	static struct widget *live[3000];
	unsigned allocs = 0;
	for (int round = 0; round < 20; round++) {
		unsigned n = (unsigned)kt_rand_below(t, 3000) + 1;
		allocs += n;
		for (unsigned i = 0; i < n; i++) {
			live[i] = kmem_cache_alloc(c, 0);
			KT_REQUIRE(t, live[i], "alloc failed");
			KT_REQUIRE(t, live[i]->magic == 0x77696467,
				   "object %p not constructed (magic %#x)", (void *)live[i],
				   live[i]->magic);
			KT_REQUIRE(t, ((uintptr_t)live[i] & 63) == 0, "%p not cache aligned",
				   (void *)live[i]);
			live[i]->payload[0] = i;    /* the user's state, kept across free */
		}
		for (unsigned i = 0; i < n; i++)
			kmem_cache_free(c, live[i]);
	}
	struct kmem_cache_stats st;
	kmem_cache_get_stats(c, &st);
	KT_CHECK(t, st.ctor_calls == ctor_calls, "stats say %llu ctor calls, counted %u",
		 (unsigned long long)st.ctor_calls, ctor_calls);
	/* once per slot of every slab ever made, not once per allocation */
	KT_CHECK(t, ctor_calls == st.slabs_created * st.objs_per_slab,
		 "%u constructor calls for %llu slabs of %u", ctor_calls,
		 (unsigned long long)st.slabs_created, st.objs_per_slab);
	KT_CHECK(t, ctor_calls < allocs, "%u constructor calls for %u allocations",
		 ctor_calls, allocs);
	kt_log("widget: %u ctor calls, %u objects/slab, order %u, stride %zu\n", ctor_calls,
	       st.objs_per_slab, st.slab_order, st.stride);
	KT_CHECK(t, kmem_cache_destroy(c) == 0, "destroy found live objects");
}

KTEST(kmem_cache, sizes_and_waste)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 192, 500, 1000, 2100, 4096, 5000,
					12288, 40000, 300000 };
	mm_reclaim();
	uint64_t free0 = free_pages();
	for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		struct kmem_cache *c = kmem_cache_create("sized", sizes[k], 0, 0, NULL);
		KT_REQUIRE(t, c, "create(%zu) failed", sizes[k]);
		struct kmem_cache_stats st;
		kmem_cache_get_stats(c, &st);
		size_t slab = (size_t)PAGE_SIZE << st.slab_order;
		size_t waste = slab - (size_t)st.objs_per_slab * st.stride;
		KT_CHECK(t, waste * 8 < slab, "size %zu: slab %zu holds %u x %zu, waste %zu",
			 sizes[k], slab, st.objs_per_slab, st.stride, waste);
		enum { N = 24 };
		unsigned char *o[N];
		for (int i = 0; i < N; i++) {
			o[i] = kmem_cache_alloc(c, KM_ZERO);
			KT_REQUIRE(t, o[i], "alloc %zu", sizes[k]);
			KT_CHECK(t, ((uintptr_t)o[i] & 7) == 0, "%p misaligned", (void *)o[i]);
			for (size_t b = 0; b < sizes[k]; b++)
				KT_REQUIRE(t, o[i][b] == 0, "KM_ZERO left byte %zu", b);
			memset(o[i], i + 1, sizes[k]);
		}
		for (int i = 0; i < N; i++) {
			for (size_t b = 0; b < sizes[k]; b += 61)
				KT_REQUIRE(t, o[i][b] == (unsigned char)(i + 1),
					   "size %zu: object %d overwritten at %zu", sizes[k], i, b);
			kmem_cache_free(c, o[i]);
		}
		KT_CHECK(t, kmem_cache_destroy(c) == 0, "destroy(%zu)", sizes[k]);
	}
	mm_reclaim();
	KT_CHECK(t, free_pages() == free0, "pages %llu -> %llu",
		 (unsigned long long)free0, (unsigned long long)free_pages());
}

KTEST(kmem_cache, destroy_reports_live)
{
	struct kmem_cache *c = kmem_cache_create("leaky", 96, 0, 0, NULL);
	KT_REQUIRE(t, c, "create");
	void *keep[3], *other[10];
	for (int i = 0; i < 10; i++)
		other[i] = kmem_cache_alloc(c, 0);
	for (int i = 0; i < 3; i++)
		keep[i] = kmem_cache_alloc(c, 0);
	for (int i = 0; i < 10; i++)
		kmem_cache_free(c, other[i]);
	long live = kmem_cache_destroy(c);
	KT_CHECK(t, live == 3, "destroy reported %ld live objects, 3 are", live);
	for (int i = 0; i < 3; i++)
		kmem_cache_free(c, keep[i]);
	KT_CHECK(t, kmem_cache_destroy(c) == 0, "second destroy");
}

KTEST(kmem_cache, bad_frees)
{
	struct kmem_cache *a = kmem_cache_create("a", 64, 0, 0, NULL);
	struct kmem_cache *b = kmem_cache_create("b", 64, 0, 0, NULL);
	KT_REQUIRE(t, a && b, "create");
	struct kmalloc_report r;
	char *x = kmem_cache_alloc(a, 0), *y = kmem_cache_alloc(a, 0);
	void *pin = kmem_cache_alloc(a, 0);   /* keeps x's slab from going back */
	void *k = kmalloc(64, 0);

	struct { void *p; struct kmem_cache *c; enum kmalloc_report_kind want; } cases[] = {
		{ x, b, KM_BAD_WRONG_CACHE },
		{ k, a, KM_BAD_FOREIGN },
		{ x + 8, a, KM_BAD_MISALIGNED },
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kmalloc_clear_report();
		kmem_cache_free(cases[i].c, cases[i].p);
		kmalloc_last_report(&r);
		KT_CHECK(t, r.kind == cases[i].want && r.ptr == cases[i].p,
			 "case %u: report %d (%s) for %p, want %d", i, r.kind,
			 kmalloc_report_name(r.kind), r.ptr, cases[i].want);
	}
	kmem_cache_free(a, x);
	kmalloc_clear_report();
	kmem_cache_free(a, x);            /* the object freed last on this CPU */
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_DOUBLE_FREE && r.ptr == x, "double free: report %d", r.kind);
	kmem_cache_free(a, y);
	kmem_cache_shrink(a);             /* x and y back in their slab */
	kmalloc_clear_report();
	kmem_cache_free(a, y);            /* now the slab's bitmap knows */
	kmalloc_last_report(&r);
	KT_CHECK(t, r.kind == KM_DOUBLE_FREE && r.ptr == y, "double free after shrink: %d", r.kind);
	kfree(k);
	kmem_cache_free(a, pin);
	KT_CHECK(t, kmem_cache_destroy(a) == 0 && kmem_cache_destroy(b) == 0, "destroy");
	KT_CHECK(t, kmem_cache_check_all() == 0, "check_all");
}

KTEST(kmem_cache, shrink_gives_back)
{
	mm_reclaim();
	uint64_t free0 = free_pages();
	struct kmem_cache *c = kmem_cache_create("bulk", 700, 0, 0, NULL);
	KT_REQUIRE(t, c, "create");
	static void *o[5000];
	for (int i = 0; i < 5000; i++)
		KT_REQUIRE(t, (o[i] = kmem_cache_alloc(c, 0)) != NULL, "alloc %d", i);
	KT_CHECK(t, free_pages() < free0 - 5000 * 700 / PAGE_SIZE, "slabs not from the PFA?");
	for (int i = 0; i < 5000; i++)
		kmem_cache_free(c, o[i]);
	uint64_t got = kmem_cache_shrink(c);
	/* the slabs that emptied beyond the kept ones went back at once;
	 * shrink returns the kept ones (and the cache's own struct keeps at
	 * most one arena of kmalloc blocks) */
	KT_CHECK(t, got >= 1 && free_pages() + 256 >= free0, "shrink gave back %llu pages, "
		 "%llu free, %llu before", (unsigned long long)got,
		 (unsigned long long)free_pages(), (unsigned long long)free0);
	KT_CHECK(t, kmem_cache_destroy(c) == 0, "destroy");
	mm_reclaim();
	KT_CHECK(t, free_pages() == free0, "pages %llu -> %llu", (unsigned long long)free0,
		 (unsigned long long)free_pages());
}

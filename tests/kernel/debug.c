/*
 * debug.c - suite "debug-mode": strata's debug mode inside the kernel.
 * Boot with test=debug-mode mm.debug=all,continue (scripts/test-all
 * does; like selftest-*, test=all leaves debug-* suites out because they
 * need that command line).
 *
 *   each bug kind committed on purpose, the report's kind, pointer and
 *   first damaged byte checked; then mm_check_all() over the whole heap;
 *   the same for an object cache created under mm.debug (red zones,
 *   poison, reports naming the cache).
 */
#include <kernel/ktest.h>
#include <string.h>
#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>

static uint64_t serial(void)
{
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	return r.serial;
}

static struct mm_bug_report last(void)
{
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	return r;
}

KTEST_NAMED("debug-mode", bugs_are_reported, debug_bugs_are_reported);
static void debug_bugs_are_reported(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue (flags %#x)",
		   mm_debug_flags());
	uint64_t s0 = serial();
	char *p = kmalloc(13, 0);
	KT_REQUIRE(t, p && kmalloc_usable_size(p) == 13, "kmalloc(13)");
	KT_CHECK(t, (unsigned char)p[0] == MM_POISON_CLEAN, "not poisoned clean: %02x", p[0]);
	p[13] = 1;
	kfree(p);
	struct mm_bug_report r = last();
	KT_CHECK(t, r.serial == s0 + 1 && r.kind == MM_BUG_OVERFLOW && r.bad == p + 13,
		 "overflow: %s bad %p", mm_bug_name(r.kind), r.bad);

	char *q = kmalloc(5000, 0);
	q[-3] = 0;
	kfree(q);
	r = last();
	KT_CHECK(t, r.kind == MM_BUG_UNDERFLOW && r.bad == q - 3, "underflow: %s",
		 mm_bug_name(r.kind));

	char *u = kmalloc(64, 0);
	kfree(u);
	kfree(u);
	r = last();
	KT_CHECK(t, r.kind == MM_BUG_DOUBLE_FREE && r.ptr == u && r.free_site && r.caller,
		 "double free: %s", mm_bug_name(r.kind));
	u[10] = 'w';
	mm_reclaim();
	r = last();
	KT_CHECK(t, r.kind == MM_BUG_USE_AFTER_FREE && r.bad == u + 10, "uaf: %s",
		 mm_bug_name(r.kind));

	char *v = kmalloc(128, 0);
	kfree(v + 8);
	r = last();
	KT_CHECK(t, r.kind == MM_BUG_INVALID_FREE && r.ptr == v + 8, "interior: %s",
		 mm_bug_name(r.kind));
	kfree(v);
	KT_CHECK(t, mm_check_all() == 0, "heap not clean after the planted bugs were freed");
}

/* Random work in debug mode: blocks keep their contents through krealloc,
 * nothing is reported, and every page comes back after mm_reclaim(). */
KTEST_NAMED("debug-mode", random_work_is_clean, debug_random_work_is_clean);
static void debug_random_work_is_clean(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() != 0, "boot with mm.debug=all,continue");
	enum { LIVE = 512 };
	static unsigned char *p[LIVE];
	static size_t n[LIVE];
	uint64_t s0 = serial();
	mm_reclaim();
	for (unsigned i = 0; i < 30000; i++) {
		unsigned k = (unsigned)kt_rand_below(t, LIVE);
		size_t want = kt_rand_below(t, 10) ? kt_rand_below(t, 600) : kt_rand_below(t, 40000);
		if (p[k]) {
			for (size_t b = 0; b < n[k]; b++)
				KT_REQUIRE(t, p[k][b] == (unsigned char)(k + b), "block %u byte %zu", k, b);
		}
		if (p[k] && kt_rand_below(t, 2)) {
			unsigned char *q = krealloc(p[k], want, 0);
			KT_REQUIRE(t, q || !want, "krealloc %zu", want);
			size_t keep = want < n[k] ? want : n[k];
			for (size_t b = keep; b < want; b++)
				q[b] = (unsigned char)(k + b);
			p[k] = want ? q : NULL;
			n[k] = want;
		} else {
			kfree(p[k]);
			p[k] = kmalloc(want, 0);
			KT_REQUIRE(t, p[k], "kmalloc %zu", want);
			n[k] = want;
			for (size_t b = 0; b < want; b++)
				p[k][b] = (unsigned char)(k + b);
		}
	}
	KT_CHECK(t, mm_check_all() == 0, "mm_check_all found problems");
	for (unsigned k = 0; k < LIVE; k++) {
		kfree(p[k]);
		p[k] = NULL;
	}
	KT_CHECK(t, serial() == s0, "%llu unexpected reports, last: %s",
		 (unsigned long long)(serial() - s0), mm_bug_name(last().kind));
}

/* A cache created while mm.debug has Z and P: zones and poison, reports
 * that name the cache, mm_check_all() sees its objects. */
KTEST_NAMED("debug-mode", cache_objects_are_checked, debug_cache_objects_are_checked);
static void debug_cache_objects_are_checked(struct ktest_ctx *t)
{
	KT_REQUIRE(t, (mm_debug_flags() & (MM_DBG_REDZONE | MM_DBG_POISON)) ==
			      (MM_DBG_REDZONE | MM_DBG_POISON), "boot with mm.debug=all,continue");
	struct kmem_cache *c = kmem_cache_create("ktest-dbg", 48, 0, 0, NULL);
	KT_REQUIRE(t, c != NULL, "kmem_cache_create");
	unsigned char *o = kmem_cache_alloc(c, 0);
	KT_REQUIRE(t, o != NULL, "kmem_cache_alloc");
	KT_CHECK(t, o[0] == MM_POISON_CLEAN && o[47] == MM_POISON_CLEAN && o[48] == MM_POISON_REDZONE &&
		 o[-1] == MM_POISON_REDZONE, "object %02x..%02x, zones %02x %02x", o[0], o[47],
		 o[-1], o[48]);
	uint64_t before = serial();
	o[49] = 1;
	kmem_cache_free(c, o);
	struct mm_bug_report r = last();
	KT_CHECK(t, serial() == before + 1 && r.kind == MM_BUG_OVERFLOW && r.ptr == o &&
		 r.bad == o + 49 && r.cache && strcmp(r.cache, "ktest-dbg") == 0,
		 "overflow: %s bad %p cache %s", mm_bug_name(r.kind), r.bad,
		 r.cache ? r.cache : "-");
	unsigned char *p = kmem_cache_alloc(c, 0);
	kmem_cache_free(c, p);
	p[3] = 3;
	KT_CHECK(t, mm_check_all() == 1 && last().kind == MM_BUG_USE_AFTER_FREE &&
		 last().bad == p + 3, "write after free: %s", mm_bug_name(last().kind));
	p[3] = MM_POISON_DEAD;
	KT_CHECK(t, kmem_cache_destroy(c) == 0, "objects still live");
	KT_CHECK(t, mm_check_all() == 0, "heap not clean afterwards");
}

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
#include <strata/pfa.h>
#include <strata/platform.h>

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

/* Can the arch protect pages (mm_platform_protect)?  Probed on a page of
 * its own.  Without it a large block's guard page is a red zone (found at
 * free) and a quarantined run is poisoned (found when it leaves). */
static bool can_protect(void)
{
	phys_addr_t pa = pfa_alloc(0, 0);
	if (!pa)
		return false;
	void *va = pfa_virt(pa);
	bool ok = mm_platform_protect(va, PAGE_SIZE, MM_PROT_NONE) == 0;
	if (ok)
		mm_platform_protect(va, PAGE_SIZE, MM_PROT_RW);
	pfa_free(pa, 0);
	return ok;
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

/* Issue 16's classes: malloc(0), 1- and 8-byte overflows of small and
 * large blocks, writes after free of large runs (poisoned in the
 * quarantine, found on demand). */
/* With the hook: a freed large block waits protected in the quarantine,
 * so a write or a read after free faults at the access and is reported
 * there (block, bad address, both call sites); continuing, the access is
 * retried on the opened pages. */
static void debug_large_use_after_free_faults(struct ktest_ctx *t)
{
	char *volatile q = kmalloc(1 << 20, 0);
	KT_REQUIRE(t, q, "kmalloc(1 MiB)");
	kfree(q);
	uint64_t s0 = serial();
	q[777777] = 'w';
	struct mm_bug_report r = last();
	KT_CHECK(t, serial() == s0 + 1 && r.kind == MM_BUG_USE_AFTER_FREE && r.ptr == q &&
		 r.bad == q + 777777 && r.alloc_site && r.free_site && r.caller,
		 "large write after free: %s bad %p", mm_bug_name(r.kind), r.bad);
	KT_CHECK(t, q[777777] == 'w', "the retried write did not happen");

	char *volatile v = kmalloc(50000, 0);
	KT_REQUIRE(t, v, "kmalloc(50000)");
	kfree(v);
	s0 = serial();
	volatile char c = v[4242];
	(void)c;
	r = last();
	KT_CHECK(t, serial() == s0 + 1 && r.kind == MM_BUG_READ_AFTER_FREE && r.bad == v + 4242,
		 "large read after free: %s bad %p", mm_bug_name(r.kind), r.bad);
	s0 = serial();
	KT_CHECK(t, mm_debug_check() == 0 && serial() == s0, "reported again by the check");
	mm_reclaim();       /* the quarantine released: no report either */
	KT_CHECK(t, serial() == s0 && mm_check_all() == 0, "reported when released");
}

KTEST_NAMED("debug-mode", every_overflow_class_is_reported, debug_every_overflow_class);
static void debug_every_overflow_class(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue");
	char *z = kmalloc(0, 0);
	KT_REQUIRE(t, z && (unsigned char)z[0] == MM_POISON_REDZONE, "kmalloc(0): no red zone at 0");
	z[0] = 1;                  /* every byte of a kmalloc(0) block is red zone */
	kfree(z);
	struct mm_bug_report r = last();
	KT_CHECK(t, r.kind == MM_BUG_OVERFLOW && r.bad == z, "kmalloc(0) write: %s bad %p",
		 mm_bug_name(r.kind), r.bad);

	/* a large block ends at its guard page, as near as 16-byte alignment
	 * allows: 100000 bytes end on it (the write faults, is reported and,
	 * continuing, retried), 100001 and 100004 leave slack (red zone,
	 * found at free); without the hook the guard page is red zone too */
	bool prot = can_protect();
	if (!prot)
		kt_log("debug-mode: no mm_platform_protect on this arch: large blocks' guard "
		       "pages are red zones, checked at free (fault cases skipped)\n");
	static const size_t sizes[] = { 24, 100000, 100001, 100004 };
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned width = 1; width <= 8; width += 7) {
			char *p = kmalloc(sizes[i], 0);
			KT_REQUIRE(t, p, "kmalloc(%zu)", sizes[i]);
			enum mm_bug_kind want = prot && sizes[i] % 16 == 0 && sizes[i] > 2048 ?
				MM_BUG_GUARD_OVERFLOW : MM_BUG_OVERFLOW;
			uint64_t s0 = serial();
			memset(p + sizes[i], 1, width);
			kfree(p);
			r = last();
			/* a fault names the first byte the memset stored on the
			 * guard page, not always the lowest (riscv64's newlib
			 * memset stores the tail first) */
			bool bad_ok = want == MM_BUG_GUARD_OVERFLOW
				? (char *)r.bad >= p + sizes[i] && (char *)r.bad < p + sizes[i] + width
				: (char *)r.bad == p + sizes[i];
			KT_CHECK(t, serial() == s0 + 1 && r.kind == want && bad_ok &&
				 r.requested == sizes[i],
				 "%u-byte overflow of %zu: %s bad %p (%lu reports)", width, sizes[i],
				 mm_bug_name(r.kind), r.bad, (unsigned long)(serial() - s0));
		}
	}

	/* two large runs in a row: the first one's overflow stops at its
	 * guard page (with the hook), never in the second block.  10 pages:
	 * above the largest size class (32 KiB), so these are runs */
	const size_t run = 10 * PAGE_SIZE;
	char *a = kmalloc(run, 0), *b = kmalloc(run, 0);
	KT_REQUIRE(t, a && b, "two large blocks");
	if (prot) {
		uint64_t s0 = serial();
		a[run + 100] = 1;
		KT_CHECK(t, serial() == s0 + 1 && last().kind == MM_BUG_GUARD_OVERFLOW &&
			 last().ptr == a && last().bad == a + run + 100,
			 "overflow of the first run: %s", mm_bug_name(last().kind));
		a[run + 100] = (char)MM_POISON_REDZONE;
	}
	kfree(a);
	kfree(b);
	KT_CHECK(t, mm_check_all() == 0, "heap not clean after the overflows");
	if (prot)
		debug_large_use_after_free_faults(t);

	if (prot)
		return;     /* protected in the quarantine: the poison case is the no-hook one */
	char *q = kmalloc(1 << 20, 0);
	KT_REQUIRE(t, q, "kmalloc(1 MiB)");
	kfree(q);
	KT_CHECK(t, (unsigned char)q[777777] == MM_POISON_DEAD, "freed run not poisoned");
	q[777777] = 'w';
	KT_CHECK(t, mm_debug_check() == 1 && last().kind == MM_BUG_USE_AFTER_FREE &&
		 last().bad == q + 777777, "large write after free: %s", mm_bug_name(last().kind));
	q[777777] = (char)MM_POISON_DEAD;
	KT_CHECK(t, mm_check_all() == 0, "heap not clean afterwards");
}

/* krealloc and the usable size of bad pointers are bugs in debug mode,
 * named for what they are. */
KTEST_NAMED("debug-mode", bad_realloc_and_usable_size_are_bugs, debug_bad_realloc_usable);
static void debug_bad_realloc_usable(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue");
	char *v = kmalloc(128, 0);
	uint64_t s0 = serial();
	KT_CHECK(t, krealloc(v + 8, 300, 0) == NULL, "krealloc of an interior pointer");
	struct mm_bug_report r = last();
	KT_CHECK(t, serial() == s0 + 1 && r.kind == MM_BUG_BAD_POINTER && r.ptr == v + 8 && r.caller,
		 "krealloc(v + 8): %s", mm_bug_name(r.kind));
	KT_CHECK(t, kmalloc_usable_size(v + 16) == 0, "usable size of an interior pointer");
	KT_CHECK(t, last().kind == MM_BUG_BAD_POINTER && last().ptr == v + 16, "usable(v + 16): %s",
		 mm_bug_name(last().kind));
	kfree(v);
	KT_CHECK(t, kmalloc_usable_size(v) == 0, "usable size of a freed block");
	KT_CHECK(t, last().kind == MM_BUG_FREED_POINTER && last().ptr == v, "usable(freed): %s",
		 mm_bug_name(last().kind));
	KT_CHECK(t, krealloc(v, 300, 0) == NULL, "krealloc of a freed block");
	KT_CHECK(t, last().kind == MM_BUG_FREED_POINTER && last().ptr == v, "krealloc(freed): %s",
		 mm_bug_name(last().kind));
	KT_CHECK(t, mm_check_all() == 0, "heap not clean afterwards");
}

/* kfree_sized (C++'s sized and aligned delete): exact in debug mode. */
KTEST_NAMED("debug-mode", sized_free_is_checked, debug_sized_free_is_checked);
static void debug_sized_free_is_checked(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue");
	void *me = (void *)debug_sized_free_is_checked;
	char *p = kmalloc(24, 0);
	uint64_t s0 = serial();
	kfree_sized_caller(p, 24, 0, me);
	KT_CHECK(t, serial() == s0, "right size reported: %s", mm_bug_name(last().kind));
	p = kmalloc(24, 0);
	kfree_sized_caller(p, 25, 0, me);
	struct mm_bug_report r = last();
	KT_CHECK(t, serial() == s0 + 1 && r.kind == MM_BUG_SIZED_DELETE && r.ptr == p &&
		 r.told_size == 25 && r.block_size == 24 && r.caller == me,
		 "wrong size: %s told %zu block %zu", mm_bug_name(r.kind), r.told_size, r.block_size);
	p = kmalloc(24, 0);
	kfree_sized_caller(p, 24, 64, me);
	KT_CHECK(t, last().kind == MM_BUG_ALIGNED_DELETE && last().ptr == p,
		 "aligned free of a plain block: %s", mm_bug_name(last().kind));
	s0 = serial();
	void *a = kmalloc_aligned(40, 64, 0);
	KT_REQUIRE(t, a && ((uintptr_t)a & 63) == 0, "kmalloc_aligned(40, 64)");
	kfree_sized_caller(a, 40, 64, me);
	KT_CHECK(t, serial() == s0, "aligned free of an aligned block: %s", mm_bug_name(last().kind));
	a = kmalloc_aligned(40, 64, 0);
	kfree_sized_caller(a, 40, 0, me);
	KT_CHECK(t, serial() == s0 + 1 && last().kind == MM_BUG_ALIGNED_DELETE,
		 "plain free of an aligned block: %s", mm_bug_name(last().kind));
	KT_CHECK(t, mm_check_all() == 0, "heap not clean afterwards");
}

/* O (zero on free): fresh blocks read as zeroes, and a write after the
 * block was released is found when it is handed out again.  Runs with
 * mm.debug=FZO for its length, then all again. */
KTEST_NAMED("debug-mode", zero_on_free, debug_zero_on_free);
static void debug_zero_on_free(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_setup("FZO,continue") == 0, "mm_debug_setup(FZO)");
	KT_CHECK(t, mm_debug_flags() == (MM_DBG_SANITY | MM_DBG_REDZONE | MM_DBG_ZERO), "flags %#x",
		 mm_debug_flags());
	unsigned char *a = kmalloc(64, 0);
	memset(a, 0xab, 64);
	kfree(a);
	unsigned char *b = kmalloc(64, 0), *e = kmalloc(8, 0);
	bool zero = true;
	for (unsigned i = 0; i < 64; i++)
		zero = zero && b[i] == 0 && (i >= 8 || e[i] == 0);
	KT_CHECK(t, zero, "fresh blocks not zero");
	kfree(b);
	kfree(e);
	uint64_t s0 = serial();
	char *c = kmalloc(40, 0);
	kfree(c);
	c[20] = 1;
	char *d = kmalloc(40, 0);
	struct mm_bug_report r = last();
	KT_CHECK(t, d == c && serial() == s0 + 1 && r.kind == MM_BUG_USE_AFTER_FREE &&
		 r.bad == c + 20, "write after release: d %p c %p %s bad %p", d, c,
		 mm_bug_name(r.kind), r.bad);
	kfree(d);
	KT_CHECK(t, mm_check_all() == 0, "heap not clean afterwards");
	KT_CHECK(t, mm_debug_setup("all,continue") == 0 && mm_debug_flags() == MM_DBG_ALL,
		 "back to all");
}

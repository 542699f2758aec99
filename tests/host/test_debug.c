/*
 * test_debug.c - debug mode and hardening (strata/debug.h), one test per
 * kind of bug, each committing the bug on purpose in report-and-continue
 * mode and asserting the report's fields (in the style of Linux's
 * slub_kunit): overflow, underflow, use after free, double free, interior
 * free, corrupted free list; plus poisoning, mm_check_all on a live
 * block, and the default outcome (a panic, in a child process).  The
 * same for objects of debug kmem caches (KMEM_DEBUG, or mm.debug=Z/P).
 */
#include "harness.h"
#include "host_ram.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include "host.h"

#define RAM (64u << 20)
static uint64_t not_a_block_target[8];
static uint8_t *ram;
static char out[1 << 16];

static void setup(const char *spec)
{
	ram = host_heap_setup(RAM);
	if (mm_debug_setup(spec) != 0)
		abort();
	host_capture_start(out, sizeof out);
}

static void teardown(void)
{
	host_capture_stop();
	mm_debug_setup("off");
}

/* The allocation site recorded must be inside this function. */
static __attribute__((noinline)) void *alloc_here(size_t n)
{
	void *p = kmalloc(n, 0);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}
static bool site_in_alloc_here(void *site)
{
	return (uintptr_t)site > (uintptr_t)alloc_here &&
	       (uintptr_t)site < (uintptr_t)alloc_here + 256;
}

static __attribute__((noinline)) void free_here(void *p)
{
	kfree(p);
	__asm__ volatile("" : : : "memory");
}
static bool site_in_free_here(void *site)
{
	return (uintptr_t)site > (uintptr_t)free_here &&
	       (uintptr_t)site < (uintptr_t)free_here + 256;
}

static struct mm_bug_report last(void)
{
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	return r;
}

/* F alone: no red zones, no poison, but every block has a debug header
 * and every free is checked: a second free of a block is a bug report.
 * (Without Q the block is really freed at once, so its data pointer now
 * lies inside a free block: reported as an invalid free.)  Without F the
 * same second free is only a kmalloc_report line, no bug report. */
TEST(sanity_letter_alone_reports_a_second_free)
{
	setup("off");
	unsigned char *q = kmalloc(24, 0);
	uint64_t serial = last().serial;
	kfree(q);
	kfree(q);
	CHECK(last().serial == serial, "debug off made a bug report");
	teardown();

	setup("F,continue");
	CHECK(mm_debug_flags() == MM_DBG_SANITY, "flags %#x after \"F\"", mm_debug_flags());
	unsigned char *p = kmalloc(24, 0);
	serial = last().serial;
	kfree(p);
	CHECK(last().serial == serial, "F reported a plain free: %s", mm_bug_name(last().kind));
	free_here(p);
	struct mm_bug_report r = last();
	CHECK(r.serial == serial + 1 && r.kind == MM_BUG_INVALID_FREE && r.ptr == p,
	      "second free under F: %s for %p", mm_bug_name(r.kind), r.ptr);
	CHECK(site_in_free_here(r.caller), "caller %p not in free_here", r.caller);
	teardown();
}

TEST(overflow_is_reported_with_site_and_bytes)
{
	setup("FZPUQ,continue");
	uint64_t before = last().serial;
	char *p = alloc_here(13);
	REQUIRE(p, "kmalloc");
	CHECK(kmalloc_usable_size(p) == 13, "usable %zu: debug blocks are exactly their size",
	      kmalloc_usable_size(p));
	p[13] = 'X';                      /* one byte past the end */
	free_here(p);
	struct mm_bug_report r = last();
	CHECK(r.serial == before + 1, "no report");
	CHECK(r.kind == MM_BUG_OVERFLOW, "kind %s", mm_bug_name(r.kind));
	CHECK(r.ptr == p && r.bad == p + 13 && r.requested == 13, "ptr %p bad %p size %zu",
	      r.ptr, r.bad, r.requested);
	CHECK(site_in_alloc_here(r.alloc_site), "alloc site %p", r.alloc_site);
	CHECK(site_in_free_here(r.caller), "found by %p", r.caller);
	/* the dump holds the damaged byte among the red zone */
	unsigned off = (unsigned)((const unsigned char *)r.bad - r.dump_at);
	CHECK(off < 32 && r.dump[off] == 'X' && r.dump[off + 1] == MM_POISON_REDZONE,
	      "dump at %u: %02x %02x", off, r.dump[off], r.dump[off + 1]);
	CHECK(strstr(out, "BUG: buffer overflow") && strstr(out, " 58 fd fd"),
	      "report text:\n%s", out);
	teardown();
}

TEST(underflow_is_reported)
{
	setup("FZPUQ,continue");
	char *p = alloc_here(100);
	p[-1] = 0;
	free_here(p);
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_UNDERFLOW && r.ptr == p && r.bad == p - 1 && r.requested == 100,
	      "kind %s ptr %p bad %p", mm_bug_name(r.kind), r.ptr, r.bad);
	teardown();
}

TEST(large_block_overflow)
{
	setup("FZPUQ,continue");
	enum { N = KMALLOC_SMALL_MAX + 3 * 4096 + 5 };   /* above the classes: a run */
	char *p = alloc_here(N);
	p[N + 7] = 1;                     /* in the red zone past the data */
	free_here(p);
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_OVERFLOW && r.bad == p + N + 7 && r.block_size >= N,
	      "kind %s bad %p block %zu", mm_bug_name(r.kind), r.bad, r.block_size);
	teardown();
}

TEST(poison_clean_and_dead)
{
	setup("FZPUQ,continue");
	uint64_t before = last().serial;
	unsigned char *p = alloc_here(64);
	for (int i = 0; i < 64; i++)
		REQUIRE(p[i] == MM_POISON_CLEAN, "new byte %d is %02x", i, p[i]);
	unsigned char *z = kzalloc(64, 0);
	for (int i = 0; i < 64; i++)
		REQUIRE(z[i] == 0, "kzalloc byte %d", i);
	free_here(p);
	for (int i = 0; i < 64; i++)     /* in quarantine: still mapped, dead */
		REQUIRE(p[i] == MM_POISON_DEAD, "freed byte %d is %02x", i, p[i]);
	kfree(z);
	CHECK(last().serial == before, "unexpected report %s", mm_bug_name(last().kind));
	teardown();
}

TEST(use_after_free_write_caught_when_recycled)
{
	setup("FZPUQ,continue");
	uint64_t before = last().serial;
	char *p = alloc_here(48);
	free_here(p);
	p[5] = 42;                        /* write after free */
	struct mm_bug_report r = last();
	CHECK(r.serial == before, "reported too early");
	mm_reclaim();                     /* empties the quarantine */
	r = last();
	CHECK(r.kind == MM_BUG_USE_AFTER_FREE && r.ptr == p && r.bad == p + 5, "kind %s bad %p",
	      mm_bug_name(r.kind), r.bad);
	CHECK(site_in_alloc_here(r.alloc_site) && site_in_free_here(r.free_site),
	      "sites %p %p", r.alloc_site, r.free_site);
	teardown();
}

TEST(double_free_names_both_frees)
{
	setup("FZPUQ,continue");
	char *p = alloc_here(200);
	free_here(p);
	kfree(p);                         /* this call: a different site */
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_DOUBLE_FREE && r.ptr == p, "kind %s", mm_bug_name(r.kind));
	CHECK(site_in_free_here(r.free_site) && !site_in_free_here(r.caller) && r.caller,
	      "first free %p, second %p", r.free_site, r.caller);
	CHECK(site_in_alloc_here(r.alloc_site), "alloc site %p", r.alloc_site);
	teardown();
}

TEST(interior_and_wild_frees)
{
	setup("FZPUQ,continue");
	char *p = alloc_here(300);
	kfree(p + 16);
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_INVALID_FREE && r.ptr == p + 16, "interior: %s %p",
	      mm_bug_name(r.kind), r.ptr);
	static char not_heap[64];
	kfree(not_heap + 16);
	r = last();
	CHECK(r.kind == MM_BUG_INVALID_FREE && r.ptr == not_heap + 16, "wild: %s",
	      mm_bug_name(r.kind));
	kfree(p);
	teardown();
}

TEST(check_all_finds_damage_in_live_blocks)
{
	setup("FZPUQ,continue");
	char *a = alloc_here(40), *b = alloc_here(40);
	CHECK(mm_check_all() == 0, "clean heap has problems:\n%s", out);
	b[40] = 7;
	CHECK(mm_check_all() == 1, "one overflow, check_all says otherwise");
	CHECK(last().kind == MM_BUG_OVERFLOW && last().ptr == b, "report %s",
	      mm_bug_name(last().kind));
	b[40] = (char)MM_POISON_REDZONE;
	kfree(a);
	kfree(b);
	teardown();
}

TEST(krealloc_in_debug_mode_moves_and_keeps_zones)
{
	setup("FZPUQ,continue");
	char *p = alloc_here(10);
	memcpy(p, "0123456789", 10);
	char *q = krealloc(p, 30, 0);
	REQUIRE(q && q != p && memcmp(q, "0123456789", 10) == 0, "krealloc");
	CHECK(kmalloc_usable_size(q) == 30, "usable %zu", kmalloc_usable_size(q));
	q[30] = 1;
	CHECK(mm_check_all() == 1 && last().kind == MM_BUG_OVERFLOW, "zone after the new size");
	q[30] = (char)MM_POISON_REDZONE;
	kfree(q);
	teardown();
}

/* Hardening, with debug mode off: the free-list link in a free block is
 * overwritten (a use after free the debug mode is not there to catch). */
TEST(corrupted_free_list_is_reported_not_followed)
{
	setup("off");
	mm_debug_set_panic(0);
	mm_percpu_enable(0);              /* frees go straight to the pool's list */
	uint64_t *a = kmalloc(720, 0), *b = kmalloc(720, 0);
	REQUIRE(a && b, "kmalloc");
	kfree(b);
	kfree(a);                         /* a is the head: a -> b */
	a[0] = (uint64_t)(uintptr_t)&not_a_block_target;
	void *x = kmalloc(720, 0);        /* pops a, finds its link bad */
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_FREELIST && r.ptr == a, "kind %s ptr %p (a %p)",
	      mm_bug_name(r.kind), r.ptr, (void *)a);
	CHECK(x != NULL && x != (void *)a && x != (void *)b &&
	      (uintptr_t)x != (uintptr_t)&not_a_block_target, "got %p", x);
	void *y = kmalloc(720, 0);
	CHECK(y != (void *)&not_a_block_target, "followed the planted pointer");
	kfree(x);
	kfree(y);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the cut-off pool");
	mm_debug_set_panic(1);
	mm_percpu_enable(1);
	teardown();
}


/* The same link met by a magazine fill (pool_alloc_bulk: its first run
 * stops at the bad link, the next run reports it): reported, never
 * followed, and the fill still hands out a good block. */
TEST(corrupted_free_list_met_by_a_fill_is_reported)
{
	setup("off");
	mm_debug_set_panic(0);
	mm_percpu_enable(0);
	uint64_t *a = kmalloc(720, 0), *b = kmalloc(720, 0);
	REQUIRE(a && b, "kmalloc");
	kfree(b);
	kfree(a);                         /* the pool's list: a -> b */
	a[0] = (uint64_t)(uintptr_t)&not_a_block_target;
	mm_percpu_enable(1);
	void *x = kmalloc(720, 0);        /* empty magazine: a fill from a's pool */
	struct mm_bug_report r = last();
	CHECK(r.kind == MM_BUG_FREELIST && r.ptr == a, "kind %s ptr %p (a %p)",
	      mm_bug_name(r.kind), r.ptr, (void *)a);
	CHECK(x != NULL && x != (void *)a && x != (void *)b &&
	      (uintptr_t)x != (uintptr_t)&not_a_block_target, "got %p", x);
	void *more[8];
	for (unsigned i = 0; i < 8; i++) {
		more[i] = kmalloc(720, 0);
		CHECK(more[i] != (void *)&not_a_block_target, "followed the planted pointer");
	}
	for (unsigned i = 0; i < 8; i++)
		kfree(more[i]);
	kfree(x);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the cut-off pool");
	mm_debug_set_panic(1);
	teardown();
}

/* The default outcome is a panic naming the bug (strata aborts on the host). */
TEST(default_outcome_is_panic)
{
	pid_t pid = fork();
	REQUIRE(pid >= 0, "fork");
	if (pid == 0) {
		setup("all");
		host_capture_stop();
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		char *p = kmalloc(8, 0);
		p[8] = 0;
		kfree(p);
		_exit(0);                 /* not reached if strata panicked */
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %#x", st);
}

TEST(bad_specs_are_refused)
{
	setup("off");
	CHECK(mm_debug_setup("FZX") == -1 && mm_debug_setup("Z,cont") == -1, "bad spec taken");
	CHECK(mm_debug_flags() == 0, "flags %#x", mm_debug_flags());
	CHECK(mm_debug_setup("ZP") == 0 && mm_debug_flags() == (MM_DBG_REDZONE | MM_DBG_POISON),
	      "ZP -> %#x", mm_debug_flags());
	teardown();
}

/* ---- kmem caches in debug mode ---- */

static bool all_bytes(const unsigned char *p, int v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)v)
			return false;
	return true;
}

TEST(cache_overflow_and_underflow_name_the_cache)
{
	setup("off");
	mm_debug_set_panic(0);
	struct kmem_cache *c = kmem_cache_create("dbg-obj", 40, 8, KMEM_DEBUG, NULL);
	REQUIRE(c, "kmem_cache_create");
	unsigned char *o = kmem_cache_alloc(c, 0);
	REQUIRE(o, "kmem_cache_alloc");
	CHECK(all_bytes(o, MM_POISON_CLEAN, 40), "new object not 0xCD: %02x", o[0]);
	CHECK(all_bytes(o - 16, MM_POISON_REDZONE, 16) && o[40] == MM_POISON_REDZONE,
	      "no red zones around the object");
	uint64_t before = last().serial;
	o[40] = 'X';
	kmem_cache_free(c, o);
	struct mm_bug_report r = last();
	CHECK(r.serial == before + 1, "overflow not reported");
	CHECK(r.kind == MM_BUG_OVERFLOW && r.ptr == o && r.bad == o + 40 && r.requested == 40,
	      "kind %s ptr %p bad %p size %zu", mm_bug_name(r.kind), r.ptr, r.bad, r.requested);
	CHECK(r.cache && strcmp(r.cache, "dbg-obj") == 0, "cache %s", r.cache ? r.cache : "NULL");
	CHECK(strstr(out, "object of cache dbg-obj") != NULL, "report text:\n%s", out);

	unsigned char *q = kmem_cache_alloc(c, 0);
	q[-3] = 0;
	kmem_cache_free(c, q);
	r = last();
	CHECK(r.kind == MM_BUG_UNDERFLOW && r.ptr == q && r.bad == q - 3,
	      "kind %s ptr %p bad %p", mm_bug_name(r.kind), r.ptr, r.bad);
	CHECK(kmem_cache_destroy(c) == 0, "objects still live");
	teardown();
}

TEST(cache_write_after_free_caught_on_reuse)
{
	setup("off");
	mm_debug_set_panic(0);
	struct kmem_cache *c = kmem_cache_create("dbg-uaf", 64, 0, KMEM_DEBUG, NULL);
	REQUIRE(c, "kmem_cache_create");
	unsigned char *o = kmem_cache_alloc(c, 0);
	kmem_cache_free(c, o);
	CHECK(all_bytes(o, MM_POISON_DEAD, 64), "freed object not 0xDD");
	uint64_t before = last().serial;
	o[5] = 7;                         /* write after free */
	unsigned char *p = kmem_cache_alloc(c, 0);
	struct mm_bug_report r = last();
	CHECK(p == o, "the slot was not reused (%p, %p)", (void *)p, (void *)o);
	CHECK(r.serial == before + 1 && r.kind == MM_BUG_USE_AFTER_FREE && r.bad == o + 5,
	      "kind %s bad %p", mm_bug_name(r.kind), r.bad);
	CHECK(all_bytes(p, MM_POISON_CLEAN, 64), "reused object not clean");
	kmem_cache_free(c, p);
	CHECK(kmem_cache_destroy(c) == 0, "objects still live");
	teardown();
}

static unsigned ctor_runs;
static void ctor_mark(void *obj)
{
	ctor_runs++;
	memcpy(obj, "constructed", 12);
}

TEST(cache_with_ctor_keeps_state_but_has_zones)
{
	setup("off");
	mm_debug_set_panic(0);
	ctor_runs = 0;
	struct kmem_cache *c = kmem_cache_create("dbg-ctor", 24, 0, KMEM_DEBUG, ctor_mark);
	REQUIRE(c, "kmem_cache_create");
	char *o = kmem_cache_alloc(c, 0);
	CHECK(strcmp(o, "constructed") == 0, "ctor's work poisoned: %.12s", o);
	kmem_cache_free(c, o);
	o = kmem_cache_alloc(c, 0);
	CHECK(strcmp(o, "constructed") == 0, "object not constructed after free/alloc");
	unsigned runs = ctor_runs;
	o[24] = 1;
	kmem_cache_free(c, o);
	CHECK(last().kind == MM_BUG_OVERFLOW && last().bad == o + 24, "overflow: %s",
	      mm_bug_name(last().kind));
	CHECK(ctor_runs == runs, "ctor ran again");
	kmem_cache_destroy(c);
	teardown();
}

TEST(cache_check_all_and_global_debug)
{
	setup("ZP,continue");             /* every new cache gets zones */
	struct kmem_cache *c = kmem_cache_create("dbg-global", 100, 0, 0, NULL);
	REQUIRE(c, "kmem_cache_create");
	unsigned char *a = kmem_cache_alloc(c, 0), *b = kmem_cache_alloc(c, 0);
	CHECK(all_bytes(b, MM_POISON_CLEAN, 100), "mm.debug=P: object not clean");
	CHECK(mm_check_all() == 0, "clean cache has problems:\n%s", out);
	b[100] = 9;
	CHECK(mm_check_all() == 1, "one damaged zone, check_all says otherwise:\n%s", out);
	CHECK(last().kind == MM_BUG_OVERFLOW && last().ptr == b && last().cache &&
	      strcmp(last().cache, "dbg-global") == 0, "report %s", mm_bug_name(last().kind));
	b[100] = (unsigned char)MM_POISON_REDZONE;
	kmem_cache_free(c, a);
	a[0] = 1;                         /* a free object's poison, seen by check_all */
	CHECK(mm_check_all() == 1 && last().kind == MM_BUG_USE_AFTER_FREE && last().bad == a,
	      "write after free: %s", mm_bug_name(last().kind));
	a[0] = (unsigned char)MM_POISON_DEAD;
	kmem_cache_free(c, b);
	CHECK(kmem_cache_destroy(c) == 0, "objects still live");
	teardown();
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/*
 * test_lockdep.c - the lock order of mm/lock_order.h, checked (built with
 * -DMM_LOCKDEP=1 like every host test, mm/lockdep.c).
 *
 * A lock taken while holding one of a lower level is reported once, with
 * both levels, before it is taken; locks taken in order are not.  Then the
 * whole allocator: mm_lock_all/mm_unlock_all with every layer registered
 * (PFA, pools, per-CPU, caches, trace, debug) and a busy run of kmalloc,
 * caches, debug mode, trim and check report nothing.
 */
#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/spinlock.h>
#include <strata/trace.h>
#include <string.h>

#include "harness.h"
#include "host.h"
#include "host_ram.h"
#include "../../mm/lock_order.h"
#include "../../mm/report.h"

#define RAM (32u << 20)
static char out[16384];

TEST(lock_taken_out_of_order_is_reported)
{
	mm_spinlock_t inner = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_PFA);
	mm_spinlock_t outer = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_POOLS);
	uint64_t before = mm_lockdep_reports();

	host_capture_start(out, sizeof out);
	mm_spin_lock(&inner);
	mm_spin_lock(&outer);            /* level 4 while holding level 2 */
	mm_spin_unlock(&outer);
	mm_spin_unlock(&inner);
	size_t n = host_capture_stop();
	out[n < sizeof out ? n : sizeof out - 1] = 0;
	CHECK(mm_lockdep_reports() == before + 1, "%llu reports, want 1",
	      (unsigned long long)(mm_lockdep_reports() - before));
	CHECK(strstr(out, "strata: lock order: lock") && strstr(out, "of level 4 taken while "
	      "holding a lock of level 2"), "report says: %s", out);
}

TEST(locks_taken_in_order_are_not_reported)
{
	mm_spinlock_t a = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_CACHES);
	mm_spinlock_t b = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_POOLS);
	mm_spinlock_t c = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_POOLS);   /* same level */
	mm_spinlock_t d = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_REPORT);
	uint64_t before = mm_lockdep_reports();

	mm_spin_lock(&a);
	mm_spin_lock(&b);
	mm_spin_lock(&c);
	mm_spin_lock(&d);
	mm_spin_unlock(&d);
	mm_spin_unlock(&c);
	mm_spin_unlock(&b);
	/* after releasing the lower ones, a lower one again is fine */
	mm_spin_lock(&b);
	mm_spin_unlock(&b);
	mm_spin_unlock(&a);
	CHECK(mm_lockdep_reports() == before, "%llu reports, want 0",
	      (unsigned long long)(mm_lockdep_reports() - before));
}

/* A real strata path called with a low lock held: kmalloc_trim takes
 * the pools' lock (and the PFA's) while the caller holds a report-level
 * lock, which breaks the order: reported, and the call still completes. */
TEST(strata_lock_under_a_lower_lock_is_reported)
{
	host_heap_setup(RAM);
	mm_spinlock_t low = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_REPORT);
	uint64_t before = mm_lockdep_reports();

	host_capture_start(out, sizeof out);
	mm_spin_lock(&low);
	kmalloc_trim();
	mm_spin_unlock(&low);
	host_capture_stop();
	CHECK(mm_lockdep_reports() > before, "no report for locks taken under level 1");
}

static void ctor(void *obj)
{
	memset(obj, 0x5a, 64);
}

TEST(whole_allocator_keeps_the_order)
{
	host_heap_setup(RAM);
	uint64_t before = mm_lockdep_reports();

	host_capture_start(out, sizeof out);
	CHECK(mm_trace_start(1) == 0, "trace start");
	struct kmem_cache *c = kmem_cache_create("lockdep", 64, 0, 0, ctor);
	struct kmem_cache *d = kmem_cache_create("lockdep-dbg", 100, 0, KMEM_DEBUG, NULL);
	CHECK(c && d, "caches");
	void *p[256];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 256; i++)
			p[i] = (i & 1) ? kmalloc((size_t)(i * 37 % 5000) + 1, 0)
				       : kmem_cache_alloc(i & 2 ? c : d, 0);
		mm_lock_all();
		mm_unlock_all();
		for (int i = 0; i < 256; i++) {
			if (i & 1)
				kfree(p[i]);
			else
				kmem_cache_free(i & 2 ? c : d, p[i]);
		}
		if (round == 1)
			CHECK(mm_debug_setup("all,continue") == 0, "debug setup");
		CHECK(mm_check_all() == 0, "check_all found problems");
		mm_reclaim();
	}
	mm_debug_setup("off");
	mm_trace_stop();
	mm_lock_all();
	mm_unlock_all();
	kmem_cache_destroy(c);
	kmem_cache_destroy(d);
	size_t n = host_capture_stop();
	out[n < sizeof out ? n : sizeof out - 1] = 0;
	CHECK(mm_lockdep_reports() == before, "%llu lock-order reports:\n%s",
	      (unsigned long long)(mm_lockdep_reports() - before), out);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

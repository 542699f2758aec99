/*
 * test_release.c - mm_platform_release(va, n) may drop the contents of the
 * range (the hosted library madvise(MADV_DONTNEED)s it, which reads back
 * as zeroes).  strata must not read anything from such a range after the
 * call.  This file's release hook wipes every range it is given with a
 * pattern and records it; then arenas, slabs and large runs are given
 * back, and the PFA must take every page back with no bad call.
 *
 * Found by `make bench` (frag workload): arena_free() and slab_delete()
 * read the block's physical address from the header inside the released
 * range, so pfa_free(0) was reported and the arena leaked.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "host_ram.h"

#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#define MIB (1024ull * 1024)
#define RAM_SIZE (64 * MIB)

static unsigned releases;
static uint64_t released_bytes;

/* The strong definition replaces mm/platform_default.c's weak one. */
void mm_platform_release(void *va, size_t bytes)
{
	memset(va, 0xA5, bytes);
	releases++;
	released_bytes += bytes;
}

static uint8_t *ram;
static uint64_t free_at_start;

static struct pfa_stats pst;

static uint64_t pfa_free_pages(void)
{
	pfa_get_stats(&pst);
	return pst.free_pages;
}

static void setup(void)
{
	ram = host_heap_setup(RAM_SIZE);
	free_at_start = pfa_free_pages();
	releases = 0;
	released_bytes = 0;
}

static uint64_t bad_calls(void)
{
	pfa_get_stats(&pst);
	return pst.bad_calls;
}

/* 3 MiB of 64-byte blocks (several arenas), all freed, trimmed. */
TEST(arenas_released_and_returned)
{
	setup();
	enum { N = 3 * 1024 * 1024 / 64 };
	static void *v[N];
	for (unsigned i = 0; i < N; i++) {
		v[i] = kmalloc(64, 0);
		CHECK(v[i] != NULL, "kmalloc(64) #%u failed", i);
		if (!v[i])
			return;
	}
	for (unsigned i = 0; i < N; i++)
		kfree(v[i]);
	mm_reclaim();
	CHECK(releases >= 2, "only %u ranges released", releases);
	CHECK(bad_calls() == 0, "the PFA saw %llu bad calls", (unsigned long long)bad_calls());
	CHECK(pfa_free_pages() == free_at_start, "%llu pages not back in the PFA",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

/* A cache's slabs, shrunk and destroyed. */
TEST(slabs_released_and_returned)
{
	setup();
	struct kmem_cache *c = kmem_cache_create("release-test", 200, 0, 0, NULL);
	CHECK(c != NULL, "kmem_cache_create failed");
	if (!c)
		return;
	enum { N = 4000 };
	static void *v[N];
	for (unsigned i = 0; i < N; i++)
		v[i] = kmem_cache_alloc(c, 0);
	for (unsigned i = 0; i < N; i++)
		kmem_cache_free(c, v[i]);
	kmem_cache_shrink(c);
	kmem_cache_destroy(c);
	mm_reclaim();
	CHECK(releases >= 1, "no range released");
	CHECK(bad_calls() == 0, "the PFA saw %llu bad calls", (unsigned long long)bad_calls());
	CHECK(pfa_free_pages() == free_at_start, "%llu pages not back in the PFA",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

/* Large runs of many sizes (more than the run cache keeps). */
TEST(large_runs_released_and_returned)
{
	setup();
	enum { N = 40 };
	static void *v[N];
	for (unsigned i = 0; i < N; i++) {
		v[i] = kmalloc((size_t)(i + 2) * 40000, 0);
		CHECK(v[i] != NULL, "large kmalloc #%u failed", i);
	}
	for (unsigned i = 0; i < N; i++)
		kfree(v[i]);
	mm_reclaim();
	CHECK(releases >= N / 2, "only %u ranges released", releases);
	CHECK(bad_calls() == 0, "the PFA saw %llu bad calls", (unsigned long long)bad_calls());
	CHECK(pfa_free_pages() == free_at_start, "%llu pages not back in the PFA",
	      (unsigned long long)(free_at_start - pfa_free_pages()));
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

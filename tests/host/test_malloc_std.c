/*
 * test_malloc_std.c - the standard names of mm/malloc_std.c, realloc's
 * inline path (a block kept in its class; a freed or interior pointer, debug
 * mode and tracing go on to krealloc) included.
 *
 * The file is compiled into this test with every name prefixed
 * (strata_malloc, strata_free, ...) so it cannot collide with glibc,
 * and errno goes through mm_platform_set_errno(), defined here.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "host_ram.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/debug.h>
#include <strata/trace.h>

#define STRATA_STD_NAME(x) strata_##x
#include "../../mm/malloc_std.c"

void mm_platform_set_errno(int e)
{
	errno = e;
}

void host_capture_start(char *buf, size_t cap);
size_t host_capture_stop(void);

#define RAM_SIZE (32u << 20)
static uint8_t *ram;

static void setup(void)
{
	ram = host_heap_setup(RAM_SIZE);
}

TEST(std_malloc_free_calloc)
{
	setup();
	void *z = strata_malloc(0);
	CHECK(z != NULL && strata_malloc_usable_size(z) == 16, "malloc(0)");
	strata_free(z);
	strata_free(NULL);
	CHECK(strata_malloc_usable_size(NULL) == 0, "usable(NULL)");

	errno = 0;
	CHECK(strata_malloc(SIZE_MAX) == NULL && errno == ENOMEM, "malloc(SIZE_MAX) errno %d", errno);
	errno = 0;
	CHECK(strata_calloc(SIZE_MAX / 4, 8) == NULL && errno == ENOMEM, "calloc overflow errno %d",
	      errno);
	uint8_t *c = strata_calloc(100, 41);
	REQUIRE(c, "calloc");
	for (int i = 0; i < 4100; i++)
		REQUIRE(c[i] == 0, "calloc byte %d", i);
	strata_free(c);
}

/* calloc zeroes a block reused from the magazine (it was just filled),
 * all of its usable size, for small, medium and large sizes. */
TEST(std_calloc_zeroes_reused_blocks)
{
	setup();
	static const size_t sizes[] = { 1, 13, 16, 100, 1000, 2100, 5000, 30000, 40000 };
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		for (int round = 0; round < 3; round++) {
			uint8_t *d = strata_malloc(n);
			REQUIRE(d, "malloc(%zu)", n);
			memset(d, 0xA5, strata_malloc_usable_size(d));
			strata_free(d);
			uint8_t *c = strata_calloc(1, n);
			REQUIRE(c, "calloc(1, %zu)", n);
			size_t u = strata_malloc_usable_size(c);
			for (size_t j = 0; j < u; j++)
				REQUIRE(c[j] == 0, "calloc(1, %zu) round %d: byte %zu of %zu is %#x", n,
					round, j, u, c[j]);
			strata_free(c);
		}
	}
}

TEST(std_realloc)
{
	setup();
	char *p = strata_realloc(NULL, 10);
	REQUIRE(p, "realloc(NULL, 10)");
	memcpy(p, "strata!!!", 10);
	p = strata_realloc(p, 100000);
	REQUIRE(p && strcmp(p, "strata!!!") == 0, "grown");
	p = strata_realloc(p, 5);
	REQUIRE(p && memcmp(p, "strat", 5) == 0, "shrunk");
	errno = 0;
	CHECK(strata_realloc(p, SIZE_MAX / 2) == NULL && errno == ENOMEM, "huge realloc");
	CHECK(memcmp(p, "strat", 5) == 0, "failed realloc changed the block");
	CHECK(strata_realloc(p, 0) == NULL, "realloc(p, 0) frees");
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	CHECK(st.bytes_allocated_blocks == st.percpu_cached_bytes + st.bytes_internal &&
	      st.large_runs == 0, "realloc(p, 0) did not free");
}

/* realloc's inline path keeps a block that stays in its class, and only
 * a live block of a pool: a freed one and an interior pointer go on to
 * krealloc, which reports them; in debug mode every realloc moves (its
 * red zone follows the new size), the inline path included. */
TEST(std_realloc_in_class)
{
	setup();
	char buf[1024];
	struct kmalloc_report r;
	char *p = strata_malloc(100);
	size_t u = strata_malloc_usable_size(p);
	memset(p, 'x', u);
	CHECK(strata_realloc(p, u) == p, "grown to its usable size: moved");
	CHECK(strata_realloc(p, u * 3 / 4 + 1) == p, "shrunk by under a quarter: moved");
	char *q = strata_realloc(p, u / 2);
	CHECK(q != p && strata_malloc_usable_size(q) < u && q[0] == 'x', "halved: kept in its class");
	size_t uq = strata_malloc_usable_size(q);
	host_capture_start(buf, sizeof buf);
	CHECK(strata_realloc(p, u) == NULL, "realloc of a freed block");
	kmalloc_last_report(&r);
	CHECK(r.kind == KM_DOUBLE_FREE && r.ptr == p, "freed block: report %d", r.kind);
	CHECK(strata_realloc(q + 16, uq - 16) == NULL, "realloc of an interior pointer");
	kmalloc_last_report(&r);
	CHECK(r.kind != KM_REPORT_NONE && r.ptr == q + 16, "interior pointer: report %d", r.kind);
	host_capture_stop();
	strata_free(q);

	REQUIRE(mm_debug_setup("FZPUQ,continue") == 0, "debug mode");
	p = strata_malloc(100);
	for (size_t n = 100; n <= 200; n += 4) {
		q = strata_realloc(p, n);
		CHECK(q && q != p, "debug mode: realloc to %zu kept the block", n);
		p = q;
	}
	strata_free(p);
	mm_debug_setup("off");

	/* tracing: a block resized in place is told to the tracer */
	REQUIRE(mm_trace_start(1) == 0, "mm_trace_start");
	p = strata_malloc(100);
	CHECK(strata_realloc(p, 110) == p, "traced: 100 -> 110 moved");
	struct mm_trace_snapshot *snap = mm_trace_snapshot();
	static struct mm_trace_stat sites[16];
	unsigned ns = snap ? mm_trace_statistics(snap, sites, 16) : 0;
	uint64_t bytes = 0;
	for (unsigned i = 0; i < ns; i++)
		bytes += sites[i].bytes;
	CHECK(ns > 0 && bytes == 110, "traced bytes %llu after the resize, not 110",
	      (unsigned long long)bytes);
	mm_trace_snapshot_free(snap);
	strata_free(p);
	mm_trace_stop();
}

TEST(std_aligned)
{
	setup();
	for (size_t a = 1; a <= (4u << 20); a *= 2) {
		void *p = strata_aligned_alloc(a, 100);
		REQUIRE(p && ((uintptr_t)p % a) == 0, "aligned_alloc(%zu)", a);
		strata_free(p);
		p = strata_memalign(a, 3000);
		REQUIRE(p && ((uintptr_t)p % a) == 0, "memalign(%zu)", a);
		strata_free(p);
		void *q = (void *)0x1;
		int rc = strata_posix_memalign(&q, a, 50);
		if (a < sizeof(void *)) {
			CHECK(rc == EINVAL && q == (void *)0x1, "posix_memalign(%zu) = %d", a, rc);
		} else {
			REQUIRE(rc == 0 && ((uintptr_t)q % a) == 0, "posix_memalign(%zu) = %d", a, rc);
			strata_free(q);
		}
	}
	errno = 0;
	CHECK(strata_aligned_alloc(24, 100) == NULL && errno == EINVAL, "aligned_alloc(24)");
	void *q = NULL;
	CHECK(strata_posix_memalign(&q, 24, 100) == EINVAL && q == NULL, "posix_memalign(24)");
	CHECK(strata_posix_memalign(&q, 64, SIZE_MAX) == ENOMEM && q == NULL, "posix_memalign huge");
}

TEST(std_free_bad_pointer_names_caller)
{
	setup();
	char buf[512];
	int x;
	struct kmalloc_report r;
	host_capture_start(buf, sizeof buf);
	strata_free(&x);
	host_capture_stop();
	kmalloc_last_report(&r);
	CHECK(r.kind == KM_BAD_UNMANAGED && r.ptr == &x, "report %d", r.kind);
	CHECK((char *)r.caller > (char *)test_std_free_bad_pointer_names_caller &&
	      (char *)r.caller < (char *)test_std_free_bad_pointer_names_caller + 4096,
	      "caller %p is not this test", r.caller);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

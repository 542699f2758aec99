/*
 * test_malloc_std.c - the standard names of mm/malloc_std.c.
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

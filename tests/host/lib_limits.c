/*
 * lib_limits.c - libstrata.so under resource limits and impossible
 * requests (issue 14).  Run under LD_PRELOAD=build/host/libstrata.so.
 *
 *   address_space_limit   the program starts under RLIMIT_AS (re-executed
 *                         with the limit set, as `ulimit -v` does): threads
 *                         start, a 256 MiB block can be had, allocation
 *                         fails with ENOMEM at the limit and works again
 *                         after frees, and the address space comes back
 *                         (threads start again) after malloc_trim or a
 *                         free of big blocks; and a program that sets a
 *                         512 MiB RLIMIT_AS itself can still start threads;
 *   tiny_address_space    a program under `ulimit -v 20000` runs (no panic)
 *                         and its small allocations work;
 *   filled_address_space  every free byte of address space is mapped
 *                         PROT_NONE and RLIMIT_DATA is 0: malloc hands out
 *                         what the heap already had, then every function
 *                         fails with ENOMEM (not an OOM kill);
 *   every_alignment       every power of two up to the top bit of size_t
 *                         for aligned_alloc, memalign, posix_memalign: an
 *                         aligned block, or NULL with ENOMEM; EINVAL only
 *                         for an alignment that is not a power of two (or
 *                         posix_memalign's below sizeof(void *)).
 *
 * The limit cases run in child processes under run_bounded(): a hang or a
 * crash is a failure of the test, not of the run.
 */
#include "lib_strata.h"
#include "harness.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#endif

#define MIB ((size_t)1 << 20)

static char self_path[4096];

static void *volatile sink;

static void *thread_body(void *arg)
{
	void *p = malloc(1000);
	free(p);
	return arg;
}

/* n threads start and finish; 0, or the number that could not start */
static int start_threads(int n)
{
	pthread_t t[16];
	int started = 0;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[started], NULL, thread_body, NULL) == 0)
			started++;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	return n - started;
}

/* malloc(size) until NULL (at most max blocks); the count.  *err: errno
 * of the failure, 0 if max was reached. */
static int fill_with(void **v, int max, size_t size, int *err)
{
	int n = 0;
	*err = 0;
	for (; n < max; n++) {
		errno = 0;
		if (!(v[n] = malloc(size))) {
			*err = errno;
			break;
		}
	}
	return n;
}

static void free_all(void **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

/* ---- address_space_limit: runs in a program started under RLIMIT_AS ---- */

#define AS_LIMIT (768 * MIB)
#define AS_MAX_BLOCKS 4096

static void *blocks[AS_MAX_BLOCKS];

static int as_fail(int code, const char *what)
{
	printf("# as-limit: %s (errno %d)\n", what, errno);
	fflush(stdout);            /* a run_bounded child ends with _exit */
	return code;
}

static int under_as_limit(void)
{
	int err;
	if (start_threads(8))
		return as_fail(30, "threads cannot start under RLIMIT_AS");
	char *big = malloc(256 * MIB);
	if (!big)
		return as_fail(31, "malloc(256 MiB) failed under a 768 MiB RLIMIT_AS");
	big[0] = 1;
	big[256 * MIB - 1] = 2;
	free(big);

	int n = fill_with(blocks, AS_MAX_BLOCKS, MIB, &err);
	if (n == AS_MAX_BLOCKS || err != ENOMEM)
		return as_fail(32, "1 MiB blocks: no clean ENOMEM at the limit");
	if ((size_t)n * MIB < AS_LIMIT / 4)
		return as_fail(33, "fewer than 192 1 MiB blocks under the limit");
	free_all(blocks, n);
	int again = fill_with(blocks, n, MIB, &err);
	free_all(blocks, again);
	if (again != n)
		return as_fail(34, "after freeing, not all the 1 MiB blocks could be had again");
	malloc_trim(0);
	if (start_threads(8))
		return as_fail(35, "threads cannot start after free + malloc_trim at the limit");

	/* big blocks: freeing them gives the address space back by itself */
	n = fill_with(blocks, AS_MAX_BLOCKS, 64 * MIB, &err);
	if (n == 0 || n == AS_MAX_BLOCKS || err != ENOMEM)
		return as_fail(36, "64 MiB blocks: no clean ENOMEM at the limit");
	if (start_threads(1) == 0)
		printf("# as-limit: a thread started with the heap at the limit\n");
	free_all(blocks, n);
	sink = malloc(16);                    /* the next allocating call trims */
	free(sink);
	if (start_threads(8))
		return as_fail(37, "threads cannot start after freeing the 64 MiB blocks");
	return 0;
}

static int exec_under_as_limit(void *arg)
{
	(void)arg;
	struct rlimit rl = { AS_LIMIT, AS_LIMIT };
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 90;
	execl(self_path, self_path, "--under-as-limit", (char *)NULL);
	return 91;
}

TEST(address_space_limit)
{
	int rc = run_bounded(exec_under_as_limit, NULL, 60);
	CHECK(rc == 0, "the program under RLIMIT_AS %zu MiB ended with status %d (see the # line)",
	      AS_LIMIT / MIB, rc);
}

/* The limit set by the running program itself (a sandbox or judge does
 * this): what the heap holds already counts, so it must hold little. */
static int set_as_limit_then_work(void *arg)
{
	(void)arg;
	struct rlimit rl = { 512 * MIB, 512 * MIB };
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 90;
	if (start_threads(8))
		return as_fail(38, "threads cannot start after setrlimit(RLIMIT_AS, 512 MiB)");
	char *p = malloc(64 * MIB);
	if (!p)
		return as_fail(39, "malloc(64 MiB) failed after setrlimit(RLIMIT_AS, 512 MiB)");
	p[64 * MIB - 1] = 1;
	free(p);
	return 0;
}

TEST(address_space_limit_set_while_running)
{
	int rc = run_bounded(set_as_limit_then_work, NULL, 60);
	CHECK(rc == 0, "status %d (see the # line)", rc);
}

/* ---- tiny_address_space: `ulimit -v 20000` ---- */

static int under_tiny_limit(void)
{
	void *v[100];
	for (int i = 0; i < 100; i++)
		if (!(v[i] = malloc((size_t)i * 40 + 1)))
			return as_fail(40, "small malloc failed under `ulimit -v 20000`");
	free_all(v, 100);
	errno = 0;
	void *p = malloc(64 * MIB);
	if (p || errno != ENOMEM)
		return as_fail(41, "malloc(64 MiB) under a 20 MB limit: no NULL with ENOMEM");
	return 0;
}

static int exec_under_tiny_limit(void *arg)
{
	(void)arg;
	struct rlimit rl = { 20000 * 1024, 20000 * 1024 };
	if (setrlimit(RLIMIT_AS, &rl) != 0)
		return 90;
	execl(self_path, self_path, "--under-tiny-limit", (char *)NULL);
	return 91;
}

TEST(tiny_address_space)
{
	int rc = run_bounded(exec_under_tiny_limit, NULL, 30);
	CHECK(rc == 0, "the program under `ulimit -v 20000` ended with status %d", rc);
}

/* ---- filled_address_space ---- */

/* Map every free piece of address space PROT_NONE (which costs no memory),
 * largest first, as libc-test's t_vmfill does. */
static void fill_address_space(void)
{
	for (int shift = 47; shift >= 12; shift--)
		while (mmap(NULL, (size_t)1 << shift, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) != MAP_FAILED)
			;
}

/* What the heap can still hand out once no mapping is possible is what it
 * already had: a few MiB in this small program.  More than this means it
 * kept address space reserved before the limit and would keep going until
 * the OOM killer ended it. */
#define FILLED_BOUND (256 * MIB)

static int exhausted(size_t *total)
{
	static const size_t sizes[] = { MIB, 64 * 1024, 4096, 1 };
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (void *p; (p = malloc(sizes[i])) != NULL;) {
			*total += sizes[i] < 16 ? 16 : sizes[i];
			if (*total > FILLED_BOUND)
				return 0;
		}
	return 1;
}

static int filled(void *arg)
{
	(void)arg;
	char *keep = malloc(100);
	if (!keep)
		return 50;
	memcpy(keep, "kept", 5);
	fill_address_space();
	struct rlimit rl;
	getrlimit(RLIMIT_DATA, &rl);
	rl.rlim_cur = 0;
	if (setrlimit(RLIMIT_DATA, &rl) != 0)
		return 51;
	size_t total = 0;
	if (!exhausted(&total)) {
		printf("# filled: malloc kept succeeding past %zu MiB\n", total / MIB);
		fflush(stdout);
		return 52;
	}
	void *p;
	errno = 0;
	if (malloc(50000) || errno != ENOMEM)
		return 53;
	errno = 0;
	if (calloc(1, 50000) || errno != ENOMEM)
		return 54;
	errno = 0;
	if (realloc(keep, 50000) || errno != ENOMEM || strcmp(keep, "kept"))
		return 55;
	errno = 0;
	if (aligned_alloc(4096, 50000) || errno != ENOMEM)
		return 56;
	p = &p;
	if (posix_memalign(&p, 4096, 50000) != ENOMEM || p != &p)
		return 57;
	errno = 0;
	if (memalign((size_t)1 << 33, 64) || errno != ENOMEM)
		return 58;
	errno = 0;
	if (valloc(50000) || errno != ENOMEM)
		return 59;
	return 0;
}

TEST(filled_address_space)
{
	int rc = run_bounded(filled, NULL, 60);
	CHECK(rc == 0, "status %d (52: no ENOMEM within 256 MiB; 53..59: malloc, calloc, realloc, "
	      "aligned_alloc, posix_memalign, memalign, valloc did not fail with ENOMEM)", rc);
}

/* ---- every_alignment ---- */

static bool good_block(void *p, size_t align, size_t n)
{
	if (((uintptr_t)p & (align - 1)) || malloc_usable_size(p) < n)
		return false;
	memset(p, 0x5a, n);
	return true;
}

/* An aligned block, or NULL with ENOMEM: never EINVAL for a power of two. */
static void one_alignment(size_t a, size_t n)
{
	void *p;
	errno = 0;
	p = aligned_alloc(a, n);
	CHECK(p ? good_block(p, a, n) : errno == ENOMEM,
	      "aligned_alloc(%#zx, %zu) = %p, errno %d", a, n, p, errno);
	free(p);
	errno = 0;
	p = memalign(a, n);
	CHECK(p ? good_block(p, a, n) : errno == ENOMEM,
	      "memalign(%#zx, %zu) = %p, errno %d", a, n, p, errno);
	free(p);
	p = NULL;
	int rc = posix_memalign(&p, a, n);
	if (a < sizeof(void *))
		CHECK(rc == EINVAL && !p, "posix_memalign(%#zx) = %d", a, rc);
	else
		CHECK(rc == 0 ? good_block(p, a, n) : (rc == ENOMEM && !p),
		      "posix_memalign(%#zx, %zu) = %d, %p", a, n, rc, p);
	free(p);
}

TEST(every_alignment)
{
	for (unsigned k = 0; k < sizeof(size_t) * 8; k++) {
		size_t a = (size_t)1 << k;
		one_alignment(a, 64);
		one_alignment(a, 5000);
		if (k <= 33) {
			/* the heap span (64 GiB, 64 GiB aligned) has such
			 * addresses: they must be served, as glibc serves them */
			void *p = memalign(a, 64);
			CHECK(p && ((uintptr_t)p & (a - 1)) == 0, "memalign(2^%u, 64) = %p, errno %d",
			      k, p, errno);
			free(p);
		}
	}
	/* not powers of two: EINVAL, and posix_memalign's result untouched */
	static const size_t bad[] = { 0, 3, 24, 48, 4097, 3 << 20, ((size_t)1 << 33) + 4096,
				      ((size_t)1 << 63) + 1, SIZE_MAX };
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		void *p;
		errno = 0;
		p = aligned_alloc(bad[i], 64);
		CHECK(!p && errno == EINVAL, "aligned_alloc(%#zx) = %p, errno %d", bad[i], p, errno);
		errno = 0;
		p = memalign(bad[i], 64);
		CHECK(!p && errno == EINVAL, "memalign(%#zx) = %p, errno %d", bad[i], p, errno);
		p = &p;
		int rc = posix_memalign(&p, bad[i], 64);
		CHECK(rc == EINVAL && p == &p, "posix_memalign(%#zx) = %d", bad[i], rc);
	}
	/* a power of two with a size that cannot be had: ENOMEM */
	errno = 0;
	sink = aligned_alloc((size_t)1 << 40, SIZE_MAX - 4096);
	CHECK(!sink && errno == ENOMEM, "aligned_alloc(2^40, huge): errno %d", errno);
}

int main(int argc, char **argv)
{
	ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	if (len > 0)
		self_path[len] = '\0';
	if (argc > 1 && !strcmp(argv[1], "--under-as-limit"))
		return under_as_limit();
	if (argc > 1 && !strcmp(argv[1], "--under-tiny-limit"))
		return under_tiny_limit();
	struct strata_api S;
	if (!strata_api_get(&S)) {
		printf("not ok - lib_limits: not running on libstrata.so (LD_PRELOAD it)\n");
		return 1;
	}
	return harness_main(argc, argv);
}

/*
 * lib_malloc.c - libstrata.so as a process's malloc: the semantics of
 * glibc's "Replacing malloc", threads, and the large-block cache.
 * Run as  LD_PRELOAD=build/host/libstrata.so build/host/tests/lib_malloc
 * (scripts/test-all does, under a timeout).
 */
#include "lib_strata.h"
#include "harness.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

/* absurd sizes and use after a failed realloc are the point here */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static struct strata_api S;

/* keep the compiler from reasoning about our allocations */
static void *volatile sink;
#define KEEP(p) (sink = (p))
/* sizes the compiler must not see (it warns about absurd constants) */
static volatile size_t vmax = SIZE_MAX;
#define HUGE_(x) (vmax / SIZE_MAX * (x))

TEST(strata_is_the_malloc)
{
	REQUIRE(strata_api_get(&S), "strata's exports not found: not under LD_PRELOAD?");
	void *p = malloc(1);
	/* glibc says 24 for malloc(1); strata's smallest block is 16 */
	CHECK(malloc_usable_size(p) == 16, "usable size of malloc(1) is %zu", malloc_usable_size(p));
	free(p);
	unsigned long long meta = 0;
	double t = S.init_seconds(&meta);
	printf("# init %.3f ms, PFA metadata %llu bytes\n", t * 1e3, meta);
	CHECK(t < 0.05, "init took %.1f ms", t * 1e3);
}

TEST(errno_on_every_failure)
{
	void *p;
	errno = 0;
	CHECK(KEEP(malloc(HUGE_(SIZE_MAX))) == NULL && errno == ENOMEM, "malloc(SIZE_MAX) errno %d", errno);
	errno = 0;
	CHECK(KEEP(malloc(HUGE_(SIZE_MAX / 2))) == NULL && errno == ENOMEM, "malloc(SIZE_MAX/2) errno %d", errno);
	errno = 0;
	CHECK(KEEP(calloc(HUGE_(SIZE_MAX / 2), 3)) == NULL && errno == ENOMEM, "calloc overflow errno %d", errno);
	errno = 0;
	CHECK(KEEP(calloc(1, HUGE_(SIZE_MAX))) == NULL && errno == ENOMEM, "calloc(1, SIZE_MAX) errno %d", errno);
	char *q = malloc(10);
	REQUIRE(q, "malloc(10)");
	memcpy(q, "012345678", 10);
	errno = 0;
	CHECK(KEEP(realloc(q, HUGE_(SIZE_MAX))) == NULL && errno == ENOMEM, "realloc huge errno %d", errno);
	CHECK(memcmp(q, "012345678", 10) == 0, "failed realloc changed the block");
	errno = 0;
	CHECK(KEEP(reallocarray(q, HUGE_(SIZE_MAX / 2), 4)) == NULL && errno == ENOMEM,
	      "reallocarray overflow errno %d", errno);
	errno = 0;
	CHECK(KEEP(reallocarray(q, 1ull << 40, 1024)) == NULL && errno == ENOMEM,
	      "reallocarray huge errno %d", errno);
	CHECK(memcmp(q, "012345678", 10) == 0, "failed reallocarray changed the block");
	free(q);
	errno = 0;
	CHECK(KEEP(aligned_alloc(24, 48)) == NULL && errno == EINVAL, "aligned_alloc(24) errno %d", errno);
	errno = 0;
	CHECK(KEEP(aligned_alloc(0, 48)) == NULL && errno == EINVAL, "aligned_alloc(0) errno %d", errno);
	errno = 0;
	CHECK(KEEP(aligned_alloc(64, HUGE_(SIZE_MAX - 100))) == NULL && errno == ENOMEM,
	      "aligned_alloc huge errno %d", errno);
	errno = 0;
	CHECK(KEEP(memalign(3, 48)) == NULL && errno == EINVAL, "memalign(3) errno %d", errno);
	errno = 0;
	CHECK(KEEP(memalign(4096, HUGE_(SIZE_MAX / 2))) == NULL && errno == ENOMEM, "memalign huge errno %d", errno);
	p = (void *)1;
	CHECK(posix_memalign(&p, 4, 16) == EINVAL && p == (void *)1, "posix_memalign(4)");
	CHECK(posix_memalign(&p, 48, 16) == EINVAL && p == (void *)1, "posix_memalign(48)");
	CHECK(posix_memalign(&p, 64, HUGE_(SIZE_MAX / 2)) == ENOMEM && p == (void *)1, "posix_memalign huge");
	errno = 0;
	CHECK(KEEP(valloc(HUGE_(SIZE_MAX))) == NULL && errno == ENOMEM, "valloc(SIZE_MAX) errno %d", errno);
	errno = 0;
	CHECK(KEEP(pvalloc(HUGE_(SIZE_MAX))) == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX) errno %d", errno);
	errno = 0;
	CHECK(KEEP(pvalloc(HUGE_(SIZE_MAX - 4095))) == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX-4095) errno %d", errno);
	/* success leaves errno alone */
	errno = 77;
	p = malloc(100);
	free(p);
	CHECK(errno == 77, "malloc+free changed errno to %d", errno);
}

TEST(free_keeps_errno)
{
	size_t sizes[] = { 0, 1, 100, 2048, 5000, 1 << 20, 9 << 20, 100 << 20 };
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char *p = malloc(sizes[i]);
		REQUIRE(p, "malloc(%zu)", sizes[i]);
		memset(p, 1, sizes[i]);
		errno = 1234;
		free(p);
		CHECK(errno == 1234, "free of %zu bytes changed errno to %d", sizes[i], errno);
	}
	errno = 99;
	free(NULL);
	CHECK(errno == 99, "free(NULL) changed errno");
	/* lots of arenas freed: releases (madvise) happen inside free */
	static void *v[20000];
	for (int i = 0; i < 20000; i++)
		v[i] = malloc(200);
	unsigned long r0 = S.release_count(NULL);
	errno = 4321;
	for (int i = 0; i < 20000; i++)
		free(v[i]);
	malloc_trim(0);
	CHECK(errno == 4321, "free of arenas changed errno to %d", errno);
	printf("# %lu releases while freeing 20000 blocks and trimming\n", S.release_count(NULL) - r0);
}

TEST(alignment_16_everywhere)
{
	static void *v[5000];
	for (int i = 0; i < 5000; i++) {
		size_t n = i < 64 ? (size_t)i : (size_t)rnd_below(i < 4000 ? 3000 : 300000);
		v[i] = malloc(n);
		REQUIRE(v[i], "malloc(%zu)", n);
		CHECK(((uintptr_t)v[i] & 15) == 0, "malloc(%zu) = %p", n, v[i]);
		CHECK(malloc_usable_size(v[i]) >= n, "usable %zu < %zu", malloc_usable_size(v[i]), n);
		memset(v[i], 0xab, malloc_usable_size(v[i]));
	}
	for (int i = 0; i < 5000; i++)
		free(v[i]);
	for (size_t n = 1; n <= 8; n++) {
		void *a = calloc(1, n), *b = realloc(NULL, n), *c = reallocarray(NULL, n, 1);
		CHECK(((uintptr_t)a | (uintptr_t)b | (uintptr_t)c) % 16 == 0, "%zu-byte blocks %p %p %p",
		      n, a, b, c);
		free(a);
		free(b);
		free(c);
	}
	for (size_t a = 1; a <= (8u << 20); a *= 2) {
		void *p = aligned_alloc(a, 100), *q = memalign(a, 5000), *r = NULL;
		int rc = posix_memalign(&r, a < sizeof(void *) ? sizeof(void *) : a, 3);
		CHECK(p && q && rc == 0, "alignment %zu failed", a);
		size_t want = a < 16 ? 16 : a;
		CHECK(((uintptr_t)p | (uintptr_t)q | (uintptr_t)r) % want == 0, "alignment %zu: %p %p %p",
		      a, p, q, r);
		free(p);
		free(q);
		free(r);
	}
	void *v1 = valloc(10), *v2 = pvalloc(5000), *v3 = pvalloc(0);
	CHECK(v1 && v2 && v3 && ((uintptr_t)v1 | (uintptr_t)v2 | (uintptr_t)v3) % 4096 == 0,
	      "valloc/pvalloc not page aligned");
	CHECK(malloc_usable_size(v2) >= 8192 && malloc_usable_size(v3) >= 4096, "pvalloc rounding");
	free(v1);
	free(v2);
	free(v3);
}

TEST(realloc_semantics)
{
	char *p = realloc(NULL, 10);
	REQUIRE(p, "realloc(NULL)");
	strcpy(p, "strata");
	for (size_t n = 16; n <= (64u << 20); n *= 3) {
		p = realloc(p, n);
		REQUIRE(p && strcmp(p, "strata") == 0, "realloc to %zu lost the data", n);
		p[n - 1] = 1;
	}
	p = realloc(p, 7);
	REQUIRE(p && strcmp(p, "strata") == 0, "shrink");
	errno = 5;
	CHECK(realloc(p, 0) == NULL && errno == 5, "realloc(p, 0)");
	void *z = malloc(0);
	CHECK(z && malloc_usable_size(z) == 16, "malloc(0)");
	free(z);
	/* a 1 GiB block (PFA_MAX_ORDER=20 in the library): sparse, touch a little */
	char *g = malloc(1ull << 30);
	CHECK(g != NULL, "malloc(1 GiB)");
	if (g) {
		g[0] = 1;
		g[(1ull << 30) - 1] = 2;
		free(g);
	}
}

/* ---- threads ---- */

#define NTHREADS 8
static void *xfer[NTHREADS][1000];

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t x = 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1);
	static __thread void *mine[512];
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		int k = (int)(x % 512);
		free(mine[k]);
		mine[k] = malloc(x % 7 == 0 ? 1 + (x >> 20) % 20000 : 8 + (x >> 20) % 300);
		if (!mine[k])
			return (void *)1;
		memset(mine[k], id, 8);
	}
	for (int k = 0; k < 512; k++)
		free(mine[k]);
	/* blocks for the next thread to free (cross-thread frees) */
	for (int i = 0; i < 1000; i++)
		xfer[id][i] = malloc(32 + (size_t)i % 200);
	if (id > 0)
		for (int i = 0; i < 1000; i++)
			free(xfer[id - 1][i]);
	unsigned slot = S.thread_slot(NULL);
	return slot < 64 ? NULL : (void *)2;
}

TEST(threads)
{
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
		if (i > 0)      /* xfer[i-1] is read by thread i: run in pairs */
			pthread_join(t[i - 1], NULL);
	}
	void *rc;
	pthread_join(t[NTHREADS - 1], &rc);
	CHECK(rc == NULL, "worker failed %p", rc);
	for (int i = 0; i < 1000; i++)
		free(xfer[NTHREADS - 1][i]);
}

static void *short_lived(void *arg)
{
	(void)arg;
	void *v[300];
	for (int i = 0; i < 300; i++)
		v[i] = malloc(16 + (size_t)i * 8);
	for (int i = 0; i < 300; i++)
		free(v[i]);
	return (void *)(uintptr_t)S.thread_slot(NULL);
}

/* 200 threads one after another: each gets a slot (a leak would exhaust
 * the 64 slots), and when all have exited, no per-thread area is left and
 * trimming leaves no block in any magazine. */
TEST(thread_exit_returns_caches)
{
	static struct kmalloc_stats before, after;
	malloc_trim(0);
	S.kmalloc_stats(&before);
	unsigned bad = 0;
	for (int i = 0; i < 200; i++) {
		pthread_t t;
		void *slot;
		pthread_create(&t, NULL, short_lived, NULL);
		pthread_join(t, &slot);
		bad += (uintptr_t)slot >= 64;
	}
	CHECK(bad == 0, "%u threads got no slot", bad);
	unsigned in_use = 0;
	S.thread_slot(&in_use);
	CHECK(in_use <= 1, "%u slots still taken after the threads exited", in_use);
	malloc_trim(0);
	S.kmalloc_stats(&after);
	printf("# per-CPU: internal bytes %llu -> %llu, cached blocks %llu -> %llu\n",
	       (unsigned long long)before.bytes_internal, (unsigned long long)after.bytes_internal,
	       (unsigned long long)before.percpu_cached_blocks,
	       (unsigned long long)after.percpu_cached_blocks);
	CHECK(after.bytes_internal <= before.bytes_internal,
	      "per-thread areas left behind: %llu bytes, before %llu",
	      (unsigned long long)after.bytes_internal, (unsigned long long)before.bytes_internal);
	CHECK(after.percpu_cached_blocks == 0, "%llu blocks still cached after trim",
	      (unsigned long long)after.percpu_cached_blocks);
}

/* More threads alive at once than there are slots (64): the ones past
 * the 64th get none (the locked path), and their malloc and free must
 * work as well as everyone's.  The fast paths read a thread's per-CPU
 * area with its slot id as the index; a thread with no slot reads the
 * tables' "no CPU" entry (host_cpu.h: MM_CPU_ID_LIMIT), which must be
 * there and stay empty.  Each thread also frees its neighbour's blocks. */
#define CROWD 80
static pthread_barrier_t crowd_bar;
static char *crowd_blocks[CROWD][64];

static void *crowd_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char *mine[64];

	free(malloc(24));       /* take a slot if one is left */
	unsigned slot = S.thread_slot(NULL);
	pthread_barrier_wait(&crowd_bar);       /* all 80 alive: 16 without */
	for (int round = 0; round < 200; round++) {
		for (int k = 0; k < 64; k++) {
			mine[k] = malloc(16 + (size_t)((k * 37 + round) % 600));
			if (!mine[k])
				return (void *)1;
			memset(mine[k], (int)(id + (unsigned)k), 16);
		}
		for (int k = 0; k < 64; k++) {
			if (mine[k][0] != (char)(id + (unsigned)k) || mine[k][15] != (char)(id + (unsigned)k))
				return (void *)2;
			free(mine[k]);
		}
	}
	for (int k = 0; k < 64; k++) {
		crowd_blocks[id][k] = malloc(48);
		if (!crowd_blocks[id][k])
			return (void *)1;
		memset(crowd_blocks[id][k], (int)id, 48);
	}
	pthread_barrier_wait(&crowd_bar);
	unsigned from = (id + 1) % CROWD;       /* cross-thread frees */
	for (int k = 0; k < 64; k++) {
		if (crowd_blocks[from][k][47] != (char)from)
			return (void *)3;
		free(crowd_blocks[from][k]);
	}
	return (void *)(uintptr_t)(slot < 64 ? 16 : 17);
}

TEST(more_threads_than_slots)
{
	pthread_t t[CROWD];
	unsigned no_slot = 0, failed = 0;

	pthread_barrier_init(&crowd_bar, NULL, CROWD);
	for (unsigned i = 0; i < CROWD; i++)
		REQUIRE(pthread_create(&t[i], NULL, crowd_worker, (void *)(uintptr_t)i) == 0,
			"pthread_create %u", i);
	for (unsigned i = 0; i < CROWD; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		if ((uintptr_t)rc == 17)
			no_slot++;
		else if ((uintptr_t)rc != 16)
			failed++, printf("# thread %u: %s\n", i,
					 (uintptr_t)rc == 1 ? "malloc failed" : "a block changed");
	}
	pthread_barrier_destroy(&crowd_bar);
	printf("# %u threads at once, %u of them without a slot\n", CROWD, no_slot);
	CHECK(failed == 0, "%u threads failed", failed);
	CHECK(no_slot >= CROWD - 64, "only %u threads without a slot", no_slot);
	unsigned in_use = 0;
	S.thread_slot(&in_use);
	CHECK(in_use <= 1, "%u slots still taken after the threads exited", in_use);
}

/* ---- large blocks freed and allocated again are cached ---- */

TEST(large_block_cache)
{
	for (size_t size = 256 << 10; size <= (8u << 20); size *= 4) {
		char *p = malloc(size);   /* warm up */
		free(p);
		unsigned long r0 = S.release_count(NULL);
		double t0 = harness_now();
		for (int i = 0; i < 1000; i++) {
			p = malloc(size);
			REQUIRE(p, "malloc(%zu)", size);
			p[0] = (char)i;
			p[size / 2] = (char)i;
			free(p);
		}
		double t = harness_now() - t0;
		unsigned long r = S.release_count(NULL) - r0;
		printf("# %zu KiB malloc+free: %.2f us per pair, %lu releases (madvise) in 1000\n",
		       size >> 10, t * 1e6 / 1000, r);
		CHECK(r <= 10, "%zu KiB blocks: %lu releases in 1000 malloc+free pairs (not cached)",
		      size >> 10, r);
	}
}

int main(int argc, char **argv)
{
	strata_api_get(&S);
	if (!S.release_count) {
		printf("not ok - lib_malloc: not running on libstrata.so (LD_PRELOAD it)\n");
		return 1;
	}
	return harness_main(argc, argv);
}

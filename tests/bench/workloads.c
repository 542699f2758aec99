/*
 * workloads.c - allocator workloads for `make bench`, run once per
 * allocator with LD_PRELOAD (scripts/bench-all, tests/bench/peers.py).
 * Plain C against malloc/free: the program does not know whose malloc
 * it gets.
 *
 *   workloads NAME [SCALE]      SCALE multiplies the op count (default 1)
 *
 *   hot        small-object hot loop: a ring of 1000 live blocks of
 *              16..64 bytes, free the oldest, allocate a new one
 *   churn      random sizes from a realistic mix (80% <= 128 B, 15% to
 *              1 KiB, 4.5% to 8 KiB, 0.5% to 256 KiB), 20000 live slots
 *              replaced at random
 *   prodcons   2 threads, larson-like: each allocates, half of its blocks
 *              go to the other thread through a ring and are freed there
 *   realloc    list-append growth: 2000 arrays grown 8..64 bytes at a
 *              time to 16..64 KiB, plus 8 arrays grown to 32 MiB
 *   frag       allocate 1.5M blocks of 16..256 B, free 90% at random,
 *              allocate 60k blocks of 300..4000 B; prints the RSS after
 *              each phase
 *   idle       nothing (the allocator's cost for a program that does not
 *              allocate)
 *
 * Prints "NAME ops=N check=X" (X depends only on the workload), the peak
 * RSS as "vmhwm_kib=N" and, for frag, an "rss_kib ..." line.  Under callgrind (RUNNING_ON_VALGRIND) the
 * measured part is bracketed by CALLGRIND_ZERO_STATS and
 * CALLGRIND_DUMP_STATS_AT("measured") so instructions/op exclude startup.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) (void)(s)
#endif

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t check;
static double scale = 1;

static inline void touch(void *p, size_t n)
{
	unsigned char *c = p;
	c[0] = (unsigned char)n;
	c[n - 1] = (unsigned char)(n >> 3);
}

static long rss_kib(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak RSS of this program since exec.  (wait4's ru_maxrss would do,
 * but Linux carries the parent's peak over a fork+exec into it: every
 * child of a Python driver would show at least the driver's 16 MiB.) */
static long vmhwm_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- idle: no allocation (what the allocator costs by being there) ---- */
static uint64_t w_idle(void)
{
	return 0;
}

/* ---- hot ---- */
static uint64_t w_hot(void)
{
	enum { RING = 1000 };
	static void *ring[RING];
	uint64_t n = (uint64_t)(20e6 * scale);
	for (int i = 0; i < RING; i++)
		ring[i] = malloc(16);
	CALLGRIND_ZERO_STATS;
	for (uint64_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(i % RING);
		free(ring[k]);
		size_t sz = 16 + (i & 3) * 16;
		ring[k] = malloc(sz);
		touch(ring[k], sz);
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	for (int i = 0; i < RING; i++) {
		check += ((unsigned char *)ring[i])[0];
		free(ring[i]);
	}
	return n;
}

/* ---- churn ---- */
static size_t churn_size(void)
{
	uint64_t r = rnd() % 1000;
	if (r < 800)
		return 8 + rnd() % 121;
	if (r < 950)
		return 129 + rnd() % 896;
	if (r < 995)
		return 1025 + rnd() % 7168;
	return 8193 + rnd() % (256 * 1024 - 8192);
}

static uint64_t w_churn(void)
{
	enum { SLOTS = 20000 };
	static void *slot[SLOTS];
	static size_t len[SLOTS];
	uint64_t n = (uint64_t)(5e6 * scale);
	for (int i = 0; i < SLOTS; i++) {
		len[i] = churn_size();
		slot[i] = malloc(len[i]);
		touch(slot[i], len[i]);
	}
	CALLGRIND_ZERO_STATS;
	for (uint64_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(rnd() % SLOTS);
		check += ((unsigned char *)slot[k])[0];
		free(slot[k]);
		len[k] = churn_size();
		slot[k] = malloc(len[k]);
		touch(slot[k], len[k]);
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	for (int i = 0; i < SLOTS; i++)
		free(slot[i]);
	return n;
}

/* ---- prodcons (2 threads) ---- */
#define QCAP 4096
struct queue {
	_Alignas(64) atomic_uint_fast64_t head;
	_Alignas(64) atomic_uint_fast64_t tail;
	void *slot[QCAP];
};
static struct queue q[2];          /* q[i]: thread i -> thread 1-i */
static uint64_t pc_n;
static atomic_int pc_done;

static void *pc_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct queue *out = &q[me], *in = &q[1 - me];
	uint64_t x = 0x1234567ull + (uint64_t)me * 0x9E3779B9ull, sum = 0;
	enum { LOCAL = 512 };
	void *local[LOCAL] = { 0 };
	for (uint64_t i = 0; i < pc_n; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		size_t sz = 16 + x % 497;
		void *p = malloc(sz);
		touch(p, sz);
		if (x & 1) {       /* to the other thread */
			uint64_t t = atomic_load_explicit(&out->tail, memory_order_relaxed);
			while (t - atomic_load_explicit(&out->head, memory_order_acquire) >= QCAP) {
				/* full: free what came in meanwhile */
				uint64_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
				if (h != atomic_load_explicit(&in->tail, memory_order_acquire)) {
					free(in->slot[h % QCAP]);
					atomic_store_explicit(&in->head, h + 1, memory_order_release);
				}
			}
			out->slot[t % QCAP] = p;
			atomic_store_explicit(&out->tail, t + 1, memory_order_release);
		} else {           /* local churn */
			unsigned k = (unsigned)(x >> 20) % LOCAL;
			free(local[k]);
			local[k] = p;
		}
		uint64_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
		if (h != atomic_load_explicit(&in->tail, memory_order_acquire)) {
			sum += ((unsigned char *)in->slot[h % QCAP])[0];
			free(in->slot[h % QCAP]);
			atomic_store_explicit(&in->head, h + 1, memory_order_release);
		}
	}
	for (int k = 0; k < LOCAL; k++)
		free(local[k]);
	/* keep consuming until the other thread is done too: it may be
	 * waiting for room in the queue this thread reads */
	atomic_fetch_add(&pc_done, 1);
	while (atomic_load(&pc_done) < 2) {
		uint64_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
		if (h != atomic_load_explicit(&in->tail, memory_order_acquire)) {
			free(in->slot[h % QCAP]);
			atomic_store_explicit(&in->head, h + 1, memory_order_release);
		}
	}
	return (void *)(uintptr_t)sum;
}

static uint64_t w_prodcons(void)
{
	pc_n = (uint64_t)(4e6 * scale);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, pc_thread, (void *)(intptr_t)i);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)     /* what is still queued */
		for (uint64_t h = q[i].head; h != q[i].tail; h++)
			free(q[i].slot[h % QCAP]);
	check = pc_n;
	return 2 * pc_n;
}

/* ---- realloc ---- */
static uint64_t w_realloc(void)
{
	enum { ARR = 2000 };
	static char *a[ARR];
	static size_t len[ARR];
	uint64_t ops = 0;
	int rounds = (int)(4 * scale) < 1 ? 1 : (int)(4 * scale);
	CALLGRIND_ZERO_STATS;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < ARR; i++) {
			size_t target = 16384 + (size_t)(rnd() % 49152);
			while (len[i] < target) {
				size_t add = 8 + rnd() % 57;
				a[i] = realloc(a[i], len[i] + add);
				a[i][len[i]] = (char)add;
				len[i] += add;
				ops++;
			}
		}
		for (int i = 0; i < ARR; i++) {
			check += (unsigned char)a[i][0];
			free(a[i]);
			a[i] = NULL;
			len[i] = 0;
		}
	}
	/* big growth: 8 arrays to 32 MiB, by 1/8 at a time (list append) */
	for (int i = 0; i < 8; i++) {
		char *p = NULL;
		size_t n = 0;
		while (n < (32u << 20)) {
			size_t m = n + n / 8 + 4096;
			p = realloc(p, m);
			memset(p + n, i, m - n);
			n = m;
			ops++;
		}
		check += (unsigned char)p[n / 2];
		free(p);
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	return ops;
}

/* ---- frag ---- */
static uint64_t w_frag(void)
{
	size_t n = (size_t)(1.5e6 * scale);
	void **v = malloc(n * sizeof *v);
	uint64_t ops = 0;
	CALLGRIND_ZERO_STATS;
	for (size_t i = 0; i < n; i++) {
		size_t sz = 16 + rnd() % 241;
		v[i] = malloc(sz);
		touch(v[i], sz);
		ops++;
	}
	long r1 = rss_kib();
	for (size_t i = 0; i < n; i++) {
		if (rnd() % 10) {
			free(v[i]);
			v[i] = NULL;
			ops++;
		}
	}
	long r2 = rss_kib();
	size_t m = n / 25;
	void **w = malloc(m * sizeof *w);
	for (size_t i = 0; i < m; i++) {
		size_t sz = 300 + rnd() % 3701;
		w[i] = malloc(sz);
		touch(w[i], sz);
		ops++;
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	long r3 = rss_kib();
	printf("rss_kib alloc=%ld freed90=%ld realloc_other=%ld\n", r1, r2, r3);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	for (size_t i = 0; i < m; i++)
		free(w[i]);
	free(v);
	free(w);
	check = n;
	return ops;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s hot|churn|prodcons|realloc|frag [scale]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		scale = atof(argv[2]);
	uint64_t ops;
	const char *w = argv[1];
	if (!strcmp(w, "hot"))
		ops = w_hot();
	else if (!strcmp(w, "churn"))
		ops = w_churn();
	else if (!strcmp(w, "prodcons"))
		ops = w_prodcons();
	else if (!strcmp(w, "realloc"))
		ops = w_realloc();
	else if (!strcmp(w, "frag"))
		ops = w_frag();
	else if (!strcmp(w, "idle"))
		ops = w_idle();
	else {
		fprintf(stderr, "unknown workload %s\n", w);
		return 2;
	}
	printf("%s ops=%llu check=%llu\n", w, (unsigned long long)ops, (unsigned long long)check);
	printf("vmhwm_kib=%ld\n", vmhwm_kib());
	return 0;
}

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
 *   large      blocks of 5..25 MiB, 20 live, replaced at random; every
 *              page of a new block is written (a buffer that is used)
 *   pipeline   2 threads, producer/consumer: one only allocates (16..512
 *              B), the other only frees, through a ring
 *   larson     2 threads, server simulation after Larson & Krishnan: each
 *              thread replaces random slots of an array of 1000 blocks
 *              (16..1024 B), then hands the array to the other thread,
 *              whose frees are then all cross-thread
 *   xthread    2 threads, random sizes (16 B .. 16 KiB, small ones most
 *              likely) with random lifetimes; a third of the blocks are
 *              freed by the other thread (after rpmalloc's benchmark)
 *   sqlite     runs sqlite3 (the CLI, with this program's environment, so
 *              under the same LD_PRELOAD) on an in-memory database of
 *              4 KiB pages: 300k rows, an index, queries; the checksum is
 *              of its output, the peak RSS is the child's
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
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Nothing to do until the other thread runs (its queue to us empty, ours
 * to it full): after a few looks, sleep 20 us instead of spinning.  A
 * spinning thread holds its core, so on a machine with other work the
 * other thread may wait behind a third process for a whole time slice
 * while this one burns its own: one run took 0.3 s and the next 4 s, the
 * same under every allocator.  Asleep, it leaves the core to the other
 * thread, and the queue (4096 blocks) outlasts the sleep. */
static void pc_pause(unsigned spin)
{
	if (spin > 64)
		nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
}

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
			for (unsigned spin = 0;
			     t - atomic_load_explicit(&out->head, memory_order_acquire) >= QCAP; spin++) {
				/* full: free what came in meanwhile */
				uint64_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
				if (h != atomic_load_explicit(&in->tail, memory_order_acquire)) {
					free(in->slot[h % QCAP]);
					atomic_store_explicit(&in->head, h + 1, memory_order_release);
				} else {
					pc_pause(spin);
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
	for (unsigned spin = 0; atomic_load(&pc_done) < 2; spin++) {
		uint64_t h = atomic_load_explicit(&in->head, memory_order_relaxed);
		if (h != atomic_load_explicit(&in->tail, memory_order_acquire)) {
			free(in->slot[h % QCAP]);
			atomic_store_explicit(&in->head, h + 1, memory_order_release);
		} else {
			pc_pause(spin);
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

/* ---- large: 5..25 MiB blocks, 20 live ---- */
static uint64_t w_large(void)
{
	enum { SLOTS = 20 };
	static char *slot[SLOTS];
	uint64_t n = (uint64_t)(1000 * scale);
	CALLGRIND_ZERO_STATS;
	for (uint64_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(rnd() % SLOTS);
		if (slot[k])
			check += (unsigned char)slot[k][4096];
		free(slot[k]);
		size_t sz = ((size_t)5 << 20) + rnd() % ((size_t)20 << 20);
		char *p = malloc(sz);
		for (size_t off = 0; off < sz; off += 4096)
			p[off] = (char)(off >> 12);
		slot[k] = p;
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	for (int k = 0; k < SLOTS; k++)
		free(slot[k]);
	return n;
}

/* ---- a single-producer single-consumer ring of pointers ---- */
static int ring_put(struct queue *r, void *p)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (t - atomic_load_explicit(&r->head, memory_order_acquire) >= QCAP)
		return 0;
	r->slot[t % QCAP] = p;
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return 1;
}

static void *ring_get(struct queue *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
		return NULL;
	void *p = r->slot[h % QCAP];
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return p;
}

/* ---- pipeline: one thread allocates, the other frees ---- */
static struct queue pipe_q;
static uint64_t pipe_n;

static void *pipe_producer(void *arg)
{
	uint64_t x = 0x2545F4914F6CDD1Dull;
	for (uint64_t i = 0; i < pipe_n; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		size_t sz = 16 + x % 497;
		unsigned char *p = malloc(sz);
		p[0] = (unsigned char)sz;
		touch(p + 1, sz - 1);
		for (unsigned spin = 0; !ring_put(&pipe_q, p); spin++)
			if (spin > 64)
				sched_yield();      /* 2 cores, more threads: let it run */
	}
	return arg;
}

static void *pipe_consumer(void *arg)
{
	uint64_t sum = 0;
	(void)arg;
	for (uint64_t i = 0; i < pipe_n; i++) {
		unsigned char *p;
		for (unsigned spin = 0; !(p = ring_get(&pipe_q)); spin++)
			if (spin > 64)
				sched_yield();
		sum += p[0];
		free(p);
	}
	return (void *)(uintptr_t)sum;
}

static uint64_t w_pipeline(void)
{
	pipe_n = (uint64_t)(4e6 * scale);
	pthread_t prod, cons;
	void *sum;
	CALLGRIND_ZERO_STATS;
	pthread_create(&cons, NULL, pipe_consumer, NULL);
	pthread_create(&prod, NULL, pipe_producer, NULL);
	pthread_join(prod, NULL);
	pthread_join(cons, &sum);
	CALLGRIND_DUMP_STATS_AT("measured");
	check = (uint64_t)(uintptr_t)sum;
	return 2 * pipe_n;
}

/* ---- larson: arrays of live blocks passed between 2 threads ---- */
enum { LARSON_SLOTS = 1000, LARSON_THREADS = 2 };
struct larson_arr { void *p[LARSON_SLOTS]; size_t n[LARSON_SLOTS]; };
static struct larson_arr larson_arr[LARSON_THREADS];
static pthread_barrier_t larson_bar;
static uint64_t larson_rounds, larson_per_round;

static void *larson_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(me + 1), sum = 0;
	for (uint64_t r = 0; r < larson_rounds; r++) {
		/* round r: thread me works on the array thread me+r left */
		struct larson_arr *a = &larson_arr[(me + r) % LARSON_THREADS];
		for (uint64_t i = 0; i < larson_per_round; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			unsigned k = (unsigned)(x >> 24) % LARSON_SLOTS;
			if (a->p[k])
				sum += ((unsigned char *)a->p[k])[a->n[k] - 1];
			free(a->p[k]);
			a->n[k] = 16 + x % 1009;
			a->p[k] = malloc(a->n[k]);
			touch(a->p[k], a->n[k]);
		}
		pthread_barrier_wait(&larson_bar);
	}
	return (void *)(uintptr_t)sum;
}

static uint64_t w_larson(void)
{
	larson_rounds = 1000;
	larson_per_round = (uint64_t)(20000 * scale);
	pthread_t t[LARSON_THREADS];
	void *sum;
	pthread_barrier_init(&larson_bar, NULL, LARSON_THREADS);
	CALLGRIND_ZERO_STATS;
	for (int i = 0; i < LARSON_THREADS; i++)
		pthread_create(&t[i], NULL, larson_thread, (void *)(intptr_t)i);
	for (int i = 0; i < LARSON_THREADS; i++) {
		pthread_join(t[i], &sum);
		check += (uint64_t)(uintptr_t)sum;
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	for (int i = 0; i < LARSON_THREADS; i++)
		for (int k = 0; k < LARSON_SLOTS; k++)
			free(larson_arr[i].p[k]);
	return LARSON_THREADS * larson_rounds * larson_per_round;
}

/* ---- xthread: random sizes, random lifetimes, a third freed remotely ---- */
static struct queue xt_q[2];        /* xt_q[i]: thread i -> thread 1-i */
static uint64_t xt_n;
static atomic_int xt_done;

static size_t xt_size(uint64_t x)
{
	/* 16 B .. 16 KiB, the log of the size uniform: small ones likely */
	unsigned shift = 4 + (unsigned)(x % 11);        /* 16 .. 16384 */
	return ((size_t)1 << shift) + (x >> 8) % ((size_t)1 << shift);
}

static void *xt_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	enum { LIVE = 4096 };
	static void *live[2][LIVE];
	struct queue *out = &xt_q[me], *in = &xt_q[1 - me];
	uint64_t x = 0xD1B54A32D192ED03ull * (uint64_t)(me + 1), sum = 0;
	void *p;
	for (uint64_t i = 0; i < xt_n; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		size_t sz = xt_size(x);
		unsigned char *b = malloc(sz);
		b[0] = (unsigned char)(sz >> 4);
		touch(b + 1, sz - 1);
		unsigned k = (unsigned)(x >> 40) % LIVE;
		if (live[me][k]) {
			/* the block it replaces dies here or on the other thread */
			if ((x >> 60) % 3 == 0) {
				while (!ring_put(out, live[me][k]))
					if ((p = ring_get(in)))
						free(p);
			} else {
				sum += ((unsigned char *)live[me][k])[0];
				free(live[me][k]);
			}
		}
		live[me][k] = b;
		if ((p = ring_get(in)))
			free(p);
	}
	for (int j = 0; j < LIVE; j++)
		free(live[me][j]);
	atomic_fetch_add(&xt_done, 1);
	while (atomic_load(&xt_done) < 2)
		if ((p = ring_get(in)))
			free(p);
	while ((p = ring_get(in)))
		free(p);
	return (void *)(uintptr_t)sum;
}

static uint64_t w_xthread(void)
{
	xt_n = (uint64_t)(2e6 * scale);
	pthread_t t[2];
	void *sum;
	CALLGRIND_ZERO_STATS;
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, xt_thread, (void *)(intptr_t)i);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], &sum);
		check += (uint64_t)(uintptr_t)sum;
	}
	CALLGRIND_DUMP_STATS_AT("measured");
	return 2 * xt_n;
}

/* ---- sqlite: the sqlite3 CLI on an in-memory database ---- */
static const char sqlite_script[] =
	"PRAGMA page_size=4096;\n"
	"CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT);\n"
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<%llu)\n"
	"  INSERT INTO t SELECT x, printf('key%%08d', (x*7919)%%1000003),\n"
	"                      printf('%%.*c%%d', 150 + x%%200, 'v', x) FROM c;\n"
	"CREATE INDEX tk ON t(k);\n"
	"SELECT count(*), sum(length(v)) FROM t WHERE k > 'key00500000';\n"
	"UPDATE t SET v = v || 'x' WHERE id %% 3 = 0;\n"
	"DELETE FROM t WHERE id %% 5 = 0;\n"
	"SELECT count(*), max(k), sum(length(v)) FROM t;\n"
	"SELECT k, length(v) FROM t ORDER BY v DESC LIMIT 3;\n";

static uint64_t w_sqlite(long *child_peak_kib)
{
	unsigned long long rows = (unsigned long long)(300000 * scale);
	char path[] = "/tmp/strata-bench-sqlXXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		perror("sqlite script");
		exit(1);
	}
	fprintf(f, sqlite_script, rows);
	fclose(f);
	int out[2];
	if (pipe(out)) {
		perror("pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid == 0) {
		char cmd[64];
		snprintf(cmd, sizeof cmd, ".read %s", path);
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execlp("sqlite3", "sqlite3", ":memory:", cmd, (char *)NULL);
		perror("sqlite3");
		_exit(127);
	}
	close(out[1]);
	char buf[4096];
	ssize_t got;
	uint64_t h = 1469598103934665603ull;      /* FNV-1a of the output */
	while ((got = read(out[0], buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < got; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
	close(out[0]);
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	unlink(path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sqlite3 failed (status %#x)\n", status);
		exit(1);
	}
	/* the child's peak: ru_maxrss carries over this small program's own
	 * peak at fork+exec (a few hundred KiB), not a Python driver's */
	*child_peak_kib = ru.ru_maxrss;
	check = h % 1000000007;
	return rows;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s hot|churn|prodcons|realloc|frag|large|pipeline|larson|xthread|sqlite|idle [scale]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		scale = atof(argv[2]);
	uint64_t ops;
	long peak = -1;         /* sqlite: the child's, else this program's */
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
	else if (!strcmp(w, "large"))
		ops = w_large();
	else if (!strcmp(w, "pipeline"))
		ops = w_pipeline();
	else if (!strcmp(w, "larson"))
		ops = w_larson();
	else if (!strcmp(w, "xthread"))
		ops = w_xthread();
	else if (!strcmp(w, "sqlite"))
		ops = w_sqlite(&peak);
	else if (!strcmp(w, "idle"))
		ops = w_idle();
	else {
		fprintf(stderr, "unknown workload %s\n", w);
		return 2;
	}
	printf("%s ops=%llu check=%llu\n", w, (unsigned long long)ops, (unsigned long long)check);
	printf("vmhwm_kib=%ld\n", peak >= 0 ? peak : vmhwm_kib());
	return 0;
}

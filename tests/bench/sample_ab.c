/*
 * tests/bench/sample_ab.c - what the sampling countdown on kmalloc's fast
 * path costs in time, measured inside one process.
 *
 * Timing two builds of libstrata.so in separate processes does not work on
 * a shared VM: a process runs its pairs at one of two speeds (about 11 or
 * 19 ns here, whichever library it loads, ASLR on or off), so medians of
 * whole runs move by several percent either way.  This program links
 * copies of mm/ into one process instead (arch/host/arch.mk builds them,
 * the public names renamed by strata/names.h):
 *
 *     s_kmalloc, s_kfree, ...   the default build (MM_SAMPLING=1: the
 *                               countdown on the fast path)
 *     n_kmalloc, n_kfree, ...   the same sources with -DMM_SAMPLING=0
 *     a_kmalloc, a_kfree, ...   the default build again: with `control`,
 *                               s is compared with a instead of n, which
 *                               shows how far apart two copies of the same
 *                               code come out (their code and heaps sit at
 *                               different addresses)
 *
 * each over its own 256 MiB of RAM, and alternates short batches of the
 * same loop between the two compared (s n, n s, s n, ...), so both see
 * the same CPU, frequency and neighbours.  One process still favours one
 * copy by a percent or two either way (placement), so scripts/bench-sample
 * takes the median over many processes.  It prints each copy's median nanoseconds per
 * kmalloc+kfree pair and the median of the paired ratios (each batch of s
 * with its neighbour of n).  No guarded slot is ever given (no guard pool
 * is set up here), so this is the countdown's cost alone; one sample's
 * price is sample_pair.c's job.
 *
 *     sample_ab LOOP BATCHES PAIRS_PER_BATCH [control]   LOOP: hot | churn
 *
 *   hot    a ring of 1000 live blocks of 16..64 bytes: free the oldest,
 *          allocate a new one (workloads.c's hot)
 *   churn  20000 live slots of 16..1024 bytes (mostly small) replaced at
 *          random
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <strata/platform.h>

/* The hooks libstrata.c gives the library in the .so (one CPU here). */
__thread unsigned host_cpu_slot __attribute__((tls_model("initial-exec"))) = 0;
unsigned mm_platform_cpu_attach(void) { return 0; }
void mm_platform_release(void *va, size_t bytes) { madvise(va, bytes, MADV_DONTNEED); }
uint64_t mm_platform_entropy(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
}

/* One copy of the library: its setup calls and its pair. */
struct copy {
	const char *name;
	void (*setup_begin)(unsigned);
	int (*add_region)(uintptr_t, uint64_t);
	int (*setup_end)(void);
	void (*init)(void);
	void *(*alloc)(size_t, unsigned);
	void (*free)(void *);
};

#define DECLARE(p)                                                              \
	void p##pfa_setup_begin(unsigned);                                      \
	int p##pfa_add_region(uintptr_t, uint64_t);                             \
	int p##pfa_setup_end(void);                                             \
	void p##kmalloc_init(void);                                             \
	void *p##kmalloc(size_t, unsigned);                                     \
	void p##kfree(void *);
DECLARE(s_)
DECLARE(n_)
DECLARE(a_)
#define COPY(p, label) { label, p##pfa_setup_begin, p##pfa_add_region, p##pfa_setup_end, \
			 p##kmalloc_init, p##kmalloc, p##kfree }

static struct copy copies[2] = {
	COPY(s_, "countdown (MM_SAMPLING=1)"),
	COPY(n_, "none (MM_SAMPLING=0)"),
};
static const struct copy control = COPY(a_, "the same again (control)");

#define RAM ((size_t)256 << 20)
#define ALIGN ((size_t)4 << 20)

static void copy_setup(struct copy *c)
{
	uint8_t *m = mmap(NULL, RAM + ALIGN, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	uintptr_t lo = ((uintptr_t)m + ALIGN - 1) & ~(ALIGN - 1);
	c->setup_begin(0);
	if (c->add_region(lo, RAM) != 0 || c->setup_end() != 0) {
		fprintf(stderr, "%s: the PFA setup failed\n", c->name);
		exit(1);
	}
	c->init();
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define HOT_LIVE 1000
#define CHURN_LIVE 20000
/* Each copy keeps its live blocks and its generator between batches, so
 * every batch of either copy is the same steady state. */
struct state {
	void *live[CHURN_LIVE];
	uint64_t rng;
	unsigned next;
};
static struct state st[2];

static size_t churn_size(uint64_t r)
{
	unsigned k = r % 100;
	return k < 85 ? 16 + (r >> 8) % 113 : 129 + (r >> 8) % 896;
}

static double batch(int which, int churn, long pairs)
{
	struct copy *c = &copies[which];
	struct state *s = &st[which];
	unsigned live = churn ? CHURN_LIVE : HOT_LIVE;
	double t0 = now_ns();

	for (long i = 0; i < pairs; i++) {
		uint64_t r = rnd(&s->rng);
		unsigned slot = churn ? (unsigned)(r >> 40) % live : s->next;
		size_t size = churn ? churn_size(r) : 16 + r % 49;
		c->free(s->live[slot]);
		unsigned char *p = c->alloc(size, 0);
		if (!p) {
			fprintf(stderr, "%s: kmalloc(%zu) failed\n", c->name, size);
			exit(1);
		}
		p[0] = (unsigned char)i;
		s->live[slot] = p;
		if (!churn)
			s->next = s->next + 1 == live ? 0 : s->next + 1;
	}
	return (now_ns() - t0) / pairs;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, by_value);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5 || (strcmp(argv[1], "hot") && strcmp(argv[1], "churn")) ||
	    (argc == 5 && strcmp(argv[4], "control"))) {
		fprintf(stderr, "usage: %s hot|churn BATCHES PAIRS_PER_BATCH [control]\n", argv[0]);
		return 2;
	}
	if (argc == 5)
		copies[1] = control;
	int churn = !strcmp(argv[1], "churn");
	int batches = atoi(argv[2]);
	long pairs = atol(argv[3]);
	if (batches < 1 || batches > 10000 || pairs < 1) {
		fprintf(stderr, "%s: BATCHES 1..10000, PAIRS_PER_BATCH >= 1\n", argv[0]);
		return 2;
	}
	double *t[2] = { calloc(batches, sizeof(double)), calloc(batches, sizeof(double)) };
	double *ratio = calloc(batches, sizeof(double));

	for (int w = 0; w < 2; w++) {
		copy_setup(&copies[w]);
		st[w].rng = 0x2545f4914f6cdd1dull;
		unsigned live = churn ? CHURN_LIVE : HOT_LIVE;
		for (unsigned i = 0; i < live; i++)
			st[w].live[i] = copies[w].alloc(16, 0);
		batch(w, churn, pairs);   /* warm up: magazines, arenas, caches */
	}
	for (int b = 0; b < batches; b++) {
		int first = b & 1;        /* s n, n s, s n, ... */
		t[first][b] = batch(first, churn, pairs);
		t[!first][b] = batch(!first, churn, pairs);
		ratio[b] = t[0][b] / t[1][b];
	}
	double ms = median(t[0], batches), mn = median(t[1], batches);
	double mr = median(ratio, batches);
	printf("sample_ab %s: %d batches of %ld pairs each, alternated\n", argv[1], batches, pairs);
	printf("  %-28s %.2f ns per pair (median)\n", copies[0].name, ms);
	printf("  %-28s %.2f ns per pair (median)\n", copies[1].name, mn);
	printf("  paired ratio first/second: %.4f (median), %+.2f%%\n", mr, 100 * (mr - 1));
	printf("ratio=%.4f\n", mr);
	return 0;
}

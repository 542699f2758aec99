/*
 * bench_pfa.c - how fast is the page-frame allocator on the host?
 *
 *     build/host/bench_pfa            (built -O2, no sanitizers)
 *
 * Prints, for each workload, nanoseconds per alloc+free pair (wall clock,
 * best of 3) and instructions per pair, counted by callgrind:
 *
 *   the program re-runs itself under
 *       valgrind --tool=callgrind --callgrind-out-file=DIR/cg --collect-atstart=yes
 *   with --inner; there each workload is bracketed by the client requests
 *   CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT(name), so each dump
 *   file holds exactly the instructions of N pairs (plus the few the loop
 *   itself costs, ~4 per pair), and the outer program divides by N.
 *   Deterministic: same binary, same numbers.  Without valgrind only the
 *   timings are printed.
 *
 * Workloads (2 GiB map, one region; only touched pages cost host memory):
 *   order0-fast   pfa_alloc(0) + pfa_free(0) with free order-0 blocks whose
 *                 buddies are in use: the fast path, no split, no merge
 *   order0-split  the same with no free block below order 10: ten splits
 *                 on alloc and ten merges on free (the worst case)
 *   mixed-0-3     steady state of 1024 live blocks: free a random one,
 *                 allocate orders 0..3 at random
 *   mixed-0-10    the same with orders 0..10 (marking tail pages dominates)
 *   order0-batch  65536 order-0 allocations, then 65536 frees
 *
 * Then, natively, the setup time and metadata of large maps (64 GiB dense,
 * 64 GiB sparse, x86-like 5 GiB with a PCI hole).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <strata/pfa.h>

#include "bench.h"

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)
#define ARENA (2 * GIB)

static int inner;     /* running under callgrind */

static void *map_area(uint64_t size, uint64_t align, uint64_t *base)
{
	void *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	*base = ((uint64_t)(uintptr_t)p + align - 1) & ~(align - 1);
	return p;
}

/* ------------------------------------------------------------------ */
/* workloads                                                           */
/* ------------------------------------------------------------------ */

static uint64_t arena;

static void fresh_map(void)
{
	pfa_setup_begin(0);
	pfa_add_region(arena, ARENA);
	if (pfa_setup_end()) {
		fprintf(stderr, "setup failed\n");
		exit(1);
	}
}

#define NHOLD 8192
static uint64_t hold[NHOLD];
static unsigned nhold;

/* Order-0 free blocks whose buddies stay allocated. */
static void prepare_order0_fast(void)
{
	fresh_map();
	for (nhold = 0; nhold < NHOLD; nhold++)
		hold[nhold] = pfa_alloc(0, 0);
	unsigned keep = 0;
	for (unsigned i = 0; i < nhold; i++) {
		if ((hold[i] >> PAGE_SHIFT) & 1)
			hold[keep++] = hold[i];
		else
			pfa_free(hold[i], 0);
	}
	nhold = keep;
}

/* No free block of order < 10 (they are taken and held). */
static void prepare_order0_split(void)
{
	struct pfa_stats st;
	fresh_map();
	nhold = 0;
	for (unsigned k = 0; k < PFA_MAX_ORDER; k++) {
		pfa_get_stats(&st);
		for (uint64_t n = st.free_blocks[k]; n; n--)
			hold[nhold++] = pfa_alloc(k, 0) | k;
	}
}

static void release_held(void)
{
	for (unsigned i = 0; i < nhold; i++)
		pfa_free(hold[i] & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(hold[i] & (PAGE_SIZE - 1)));
	nhold = 0;
}

static __attribute__((noinline)) void loop_order0(long n)
{
	for (long i = 0; i < n; i++) {
		phys_addr_t pa = pfa_alloc(0, 0);
		pfa_free(pa, 0);
	}
}

#define LIVE 1024
#define TABLE 4096
static uint64_t live[LIVE];
static uint16_t slot_of[TABLE];
static uint8_t order_of[TABLE];

static void prepare_mixed(unsigned max_order)
{
	fresh_map();
	for (unsigned i = 0; i < TABLE; i++) {
		slot_of[i] = (uint16_t)(rnd() % LIVE);
		order_of[i] = (uint8_t)(rnd() % (max_order + 1));
	}
	for (unsigned i = 0; i < LIVE; i++) {
		unsigned k = order_of[i % TABLE];
		live[i] = pfa_alloc(k, 0) | k;
	}
}

static __attribute__((noinline)) void loop_mixed(long n)
{
	for (long i = 0; i < n; i++) {
		unsigned t = (unsigned)i & (TABLE - 1);
		uint64_t *s = &live[slot_of[t]];
		pfa_free(*s & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(*s & (PAGE_SIZE - 1)));
		unsigned k = order_of[t];
		*s = pfa_alloc(k, 0) | k;
	}
}

static void release_mixed(void)
{
	for (unsigned i = 0; i < LIVE; i++)
		pfa_free(live[i] & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(live[i] & (PAGE_SIZE - 1)));
}

#define BATCH 65536
static uint64_t batch[BATCH];

static __attribute__((noinline)) void loop_batch(long n)
{
	for (long r = 0; r < n / BATCH; r++) {
		for (unsigned i = 0; i < BATCH; i++)
			batch[i] = pfa_alloc(0, 0);
		for (unsigned i = 0; i < BATCH; i++)
			pfa_free(batch[i], 0);
	}
}

struct workload {
	const char *name;
	void (*prepare)(void);
	void (*loop)(long n);
	void (*release)(void);
	long n;          /* pairs */
};

static void prep_mixed3(void) { prepare_mixed(3); }
static void prep_mixed10(void) { prepare_mixed(10); }
static void prep_fresh(void) { fresh_map(); }
static void nothing(void) {}

static const struct workload work[] = {
	{ "order0-fast", prepare_order0_fast, loop_order0, release_held, 2000000 },
	{ "order0-split", prepare_order0_split, loop_order0, release_held, 500000 },
	{ "mixed-0-3", prep_mixed3, loop_mixed, release_mixed, 1000000 },
	{ "mixed-0-10", prep_mixed10, loop_mixed, release_mixed, 200000 },
	{ "order0-batch", prep_fresh, loop_batch, nothing, 20 * BATCH },
};
#define NWORK (sizeof work / sizeof work[0])

/* ------------------------------------------------------------------ */
/* callgrind: run ourselves under valgrind and read the dumps          */
/* ------------------------------------------------------------------ */

static void run_inner(void)
{
	for (unsigned w = 0; w < NWORK; w++) {
		long n = work[w].n / 10;
		if (work[w].loop == loop_batch)
			n = 2 * BATCH;
		work[w].prepare();
		work[w].loop(n / 10);               /* warm up */
		CALLGRIND_ZERO_STATS;
		work[w].loop(n);
		CALLGRIND_DUMP_STATS_AT(work[w].name);
		work[w].release();
		if (pfa_check()) {
			fprintf(stderr, "pfa_check failed after %s\n", work[w].name);
			exit(1);
		}
	}
}

static double ipp[NWORK];

static int count_instructions(const char *self)
{
	char dir[] = "/tmp/bench_pfa.XXXXXX";
	int ok = bench_callgrind_self(self, dir) == 0;
	for (unsigned w = 0; w < NWORK && ok; w++) {
		long n = work[w].loop == loop_batch ? 2 * BATCH : work[w].n / 10;
		double ir = bench_dump_ir(dir, work[w].name);
		ipp[w] = ir < 0 ? -1 : ir / n;
	}
	bench_rmdir(dir);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* large maps: setup time and metadata                                 */
/* ------------------------------------------------------------------ */

static void big_map(const char *name, uint64_t span, const uint64_t (*reg)[2], int nreg)
{
	uint64_t base;
	void *p = map_area(span, 1 * GIB, &base);
	double t0 = now();
	pfa_setup_begin(0);
	for (int i = 0; i < nreg; i++)
		pfa_add_region(base + reg[i][0], reg[i][1]);
	int r = pfa_setup_end();
	double t1 = now();
	struct pfa_stats st;
	pfa_get_stats(&st);
	uint64_t managed = st.total_pages * PAGE_SIZE;
	printf("map %-26s managed %6llu MiB  metadata %9llu bytes = %.3f%%  setup %7.1f ms%s\n",
	       name, (unsigned long long)(managed / MIB), (unsigned long long)st.metadata_bytes,
	       100.0 * st.metadata_bytes / managed, (t1 - t0) * 1e3, r ? "  FAILED" : "");
	munmap(p, span + 1 * GIB);
}

int main(int argc, char **argv)
{
	void *area = map_area(ARENA, 4 * MIB, &arena);
	(void)area;
	if (argc > 1 && !strcmp(argv[1], "--inner")) {
		inner = 1;
		run_inner();
		return 0;
	}

	printf("bench_pfa: PAGE_SIZE %lu, PFA_MAX_ORDER %d, 2 GiB map\n",
	       (unsigned long)PAGE_SIZE, PFA_MAX_ORDER);
	double ns[NWORK];
	for (unsigned w = 0; w < NWORK; w++) {
		double best = 1e30;
		for (int rep = 0; rep < 3; rep++) {
			work[w].prepare();
			work[w].loop(work[w].n / 20);
			double t0 = now();
			work[w].loop(work[w].n);
			double dt = now() - t0;
			work[w].release();
			if (dt < best)
				best = dt;
		}
		ns[w] = best * 1e9 / work[w].n;
		if (pfa_check())
			return 1;
	}
	int have_cg = count_instructions(argv[0]) == 0;
	printf("%-14s %12s %10s\n", "workload", "insns/pair", "ns/pair");
	for (unsigned w = 0; w < NWORK; w++) {
		if (have_cg && ipp[w] >= 0)
			printf("%-14s %12.1f %10.1f\n", work[w].name, ipp[w], ns[w]);
		else
			printf("%-14s %12s %10.1f\n", work[w].name, "n/a", ns[w]);
	}
	if (!have_cg)
		printf("(instruction counts need valgrind)\n");
	else
		printf("(insns/pair: callgrind, loop overhead of ~4 insns/pair included; "
		       "target <= 150 for order0-fast)\n");

	fresh_map();
	struct pfa_stats st;
	pfa_get_stats(&st);
	printf("map %-26s managed %6llu MiB  metadata %9llu bytes = %.3f%%\n", "bench 2 GiB",
	       (unsigned long long)(st.total_pages * PAGE_SIZE / MIB),
	       (unsigned long long)st.metadata_bytes,
	       100.0 * st.metadata_bytes / (st.total_pages * PAGE_SIZE));

	static const uint64_t dense[][2] = { { 0, 64 * GIB } };
	static const uint64_t sparse[][2] = {
		{ 0, 1 * GIB }, { 8 * GIB, 1 * GIB }, { 16 * GIB, 1 * GIB }, { 24 * GIB, 1 * GIB },
		{ 32 * GIB, 1 * GIB }, { 40 * GIB, 1 * GIB }, { 48 * GIB, 1 * GIB },
		{ 63 * GIB, 1 * GIB },
	};
	static const uint64_t x86[][2] = {
		{ 0, 0x9fc00 }, { 1 * MIB, 3 * GIB - 1 * MIB - 128 * 1024 }, { 4 * GIB, 2 * GIB },
	};
	big_map("64 GiB dense", 64 * GIB, dense, 1);
	big_map("64 GiB span, 8 GiB sparse", 64 * GIB, sparse, 8);
	big_map("x86 5 GiB, 1 GiB PCI hole", 6 * GIB, x86, 3);
	return 0;
}

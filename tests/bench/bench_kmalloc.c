/*
 * bench_kmalloc.c - strata's kmalloc against glibc malloc, in one run.
 *
 *   cc -std=gnu11 -O2 -g -Imm/include -o build/host/bench_kmalloc \
 *      tests/bench/bench_kmalloc.c MM_SOURCES arch/host/platform.c
 *   (MM_SOURCES: every mm/ .c file except malloc_std.c)
 *   build/host/bench_kmalloc                 the comparison table
 *   build/host/bench_kmalloc --waste         size-class waste table
 *   build/host/bench_kmalloc --geometry      pool/arena measurements for the
 *                                            geometry it was compiled with
 *                                            (-DKM_POOL_SHIFT=12|14
 *                                             -DKM_ARENA_SHIFT=18|20
 *                                             -DKMALLOC_SMALL_MAX=512|2048)
 *
 * Workloads (identical code for both allocators, direct calls):
 *   hot-32      p = alloc(32); free(p)                  (the fast paths)
 *   hot-256     the same with 256 bytes
 *   churn       4096 live blocks; each step frees a random one and
 *               allocates a random size (70% <= 256 B, 20% <= 2 KiB, 8.5%
 *               <= 32 KiB, 1.5% <= 256 KiB) and writes its first word
 *   realloc     CPython list growth (4, 8, 16, 24, ... items of 8 bytes)
 *               up to 100,000 items through realloc, then free; per call
 *
 * Columns: ns/op (wall clock, best of 3), insns/op (callgrind: the
 * program re-runs itself under valgrind --tool=callgrind with --inner and
 * brackets each workload with CALLGRIND_ZERO_STATS/DUMP_STATS_AT; the loop
 * itself costs a few instructions per op and is included for both), peak
 * memory (kmalloc: most pages held from the PFA; glibc: most bytes in
 * mallinfo2 arena + mmap, each workload in a fresh child process), and the
 * glibc/strata ratio (> 1: strata better).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <strata/kmalloc.h>
#include <strata/pfa.h>

#include "bench.h"
#include "host_ram.h"

#define MIB (1024ull * 1024)
#define RAM (1024 * MIB)

static uint64_t ram;

static uint64_t free_at_start;

static uint64_t pfa_free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

static void fresh_strata(void)
{
	host_pfa_setup((uint8_t *)(uintptr_t)ram, RAM, NULL);
	kmalloc_init();
	free_at_start = pfa_free_pages();
}

/* ------------------------------------------------------------------ */
/* workloads, one copy per allocator                                   */
/* ------------------------------------------------------------------ */

#define LIVE 4096
#define TABLE 65536
static uint32_t size_of[TABLE];
static uint16_t slot_of[TABLE];
static void *live[LIVE];

static size_t kernel_size(void)
{
	uint64_t r = rnd() % 1000;
	if (r < 700)
		return 1 + rnd() % 256;
	if (r < 900)
		return 1 + rnd() % 2048;
	if (r < 985)
		return 2049 + rnd() % 30000;
	return 1 + rnd() % (256 * 1024);
}

static void make_tables(void)
{
	for (unsigned i = 0; i < TABLE; i++) {
		size_of[i] = (uint32_t)kernel_size();
		slot_of[i] = (uint16_t)(rnd() % LIVE);
	}
}

static volatile size_t sink;
static size_t list_cap(size_t n) { return (n + (n >> 3) + 6) & ~(size_t)3; }

/* A "peak" hook called every 256 steps (NULL while timing). */
static void (*sample)(void);

#define WORKLOADS(PFX, ALLOC, FREE, REALLOC)                                         \
	static __attribute__((noinline)) void PFX##_hot32(long n)                    \
	{                                                                            \
		for (long i = 0; i < n; i++) {                                       \
			void *p = ALLOC(32);                                         \
			__asm__ volatile("" : : "r"(p) : "memory");                  \
			FREE(p);                                                     \
		}                                                                    \
	}                                                                            \
	static __attribute__((noinline)) void PFX##_hot256(long n)                   \
	{                                                                            \
		for (long i = 0; i < n; i++) {                                       \
			void *p = ALLOC(256);                                        \
			__asm__ volatile("" : : "r"(p) : "memory");                  \
			FREE(p);                                                     \
		}                                                                    \
	}                                                                            \
	static void PFX##_churn_prepare(void)                                        \
	{                                                                            \
		for (unsigned i = 0; i < LIVE; i++)                                  \
			live[i] = ALLOC(size_of[i]);                                 \
	}                                                                            \
	static __attribute__((noinline)) void PFX##_churn(long n)                    \
	{                                                                            \
		for (long i = 0; i < n; i++) {                                       \
			unsigned t = (unsigned)i & (TABLE - 1);                      \
			void **s = &live[slot_of[t]];                                \
			FREE(*s);                                                    \
			*s = ALLOC(size_of[t]);                                      \
			*(long *)*s = i;                                             \
			if (sample && !(i & 255))                                    \
				sample();                                            \
		}                                                                    \
	}                                                                            \
	static void PFX##_churn_release(void)                                        \
	{                                                                            \
		for (unsigned i = 0; i < LIVE; i++)                                  \
			FREE(live[i]);                                               \
	}                                                                            \
	/* n realloc calls, in lists of up to 100,000 items */                       \
	static __attribute__((noinline)) void PFX##_realloc(long n)                  \
	{                                                                            \
		long calls = 0;                                                      \
		while (calls < n) {                                                  \
			long *items = NULL;                                          \
			size_t cap = 0;                                              \
			for (size_t k = 1; k <= 100000 && calls < n; k++) {          \
				if (k > cap) {                                       \
					cap = list_cap(k);                           \
					items = REALLOC(items, cap * sizeof *items); \
					calls++;                                     \
					if (sample)                                  \
						sample();                            \
				}                                                    \
				items[k - 1] = (long)k;                              \
			}                                                            \
			sink += (size_t)items[0];                                    \
			FREE(items);                                                 \
		}                                                                    \
	}

#define K_ALLOC(n) kmalloc((n), 0)
#define K_FREE(p) kfree(p)
#define K_REALLOC(p, n) krealloc((p), (n), 0)
WORKLOADS(km, K_ALLOC, K_FREE, K_REALLOC)
WORKLOADS(gl, malloc, free, realloc)

static void nothing(void) {}

struct workload {
	const char *name;
	void (*km_prepare)(void), (*km_loop)(long), (*km_release)(void);
	void (*gl_prepare)(void), (*gl_loop)(long), (*gl_release)(void);
	long n;
};

static const struct workload work[] = {
	{ "hot-32", nothing, km_hot32, nothing, nothing, gl_hot32, nothing, 20000000 },
	{ "hot-256", nothing, km_hot256, nothing, nothing, gl_hot256, nothing, 20000000 },
	{ "churn", km_churn_prepare, km_churn, km_churn_release,
	  gl_churn_prepare, gl_churn, gl_churn_release, 2000000 },
	{ "realloc", nothing, km_realloc, nothing, nothing, gl_realloc, nothing, 200000 },
};
#define NWORK (sizeof work / sizeof work[0])

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

static double best_ns(void (*prepare)(void), void (*loop)(long), void (*release)(void),
		      long n, int strata)
{
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		if (strata)
			fresh_strata();
		prepare();
		loop(n / 20);
		double t0 = now();
		loop(n);
		double dt = now() - t0;
		release();
		if (dt < best)
			best = dt;
	}
	return best * 1e9 / n;
}

/* ------------------------------------------------------------------ */
/* peak memory, each allocator in a fresh child                        */
/* ------------------------------------------------------------------ */

static uint64_t peak;
static void sample_strata(void)
{
	uint64_t held = (free_at_start - pfa_free_pages()) * PAGE_SIZE;
	if (held > peak)
		peak = held;
}
static void sample_glibc(void)
{
	struct mallinfo2 mi = mallinfo2();
	uint64_t held = mi.arena + mi.hblkhd;
	if (held > peak)
		peak = held;
}

static uint64_t peak_of(const struct workload *w, int strata)
{
	uint64_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);
	pid_t pid = fork();
	if (pid == 0) {
		peak = 0;
		if (strata) {
			fresh_strata();
			sample = sample_strata;
			w->km_prepare();
			w->km_loop(w->n / 10);
			sample();
			w->km_release();
		} else {
			sample = sample_glibc;
			w->gl_prepare();
			w->gl_loop(w->n / 10);
			sample();
			w->gl_release();
		}
		*shared = peak;
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	uint64_t r = *shared;
	munmap(shared, 4096);
	return r;
}

/* ------------------------------------------------------------------ */
/* instructions: callgrind on ourselves                                */
/* ------------------------------------------------------------------ */

static long cg_n(const struct workload *w) { return w->n / 20; }

static void run_inner(void)
{
	char name[64];
	for (unsigned i = 0; i < NWORK; i++) {
		const struct workload *w = &work[i];
		fresh_strata();
		w->km_prepare();
		w->km_loop(cg_n(w) / 10);
		snprintf(name, sizeof name, "km-%s", w->name);
		CALLGRIND_ZERO_STATS;
		w->km_loop(cg_n(w));
		CALLGRIND_DUMP_STATS_AT(name);
		w->km_release();
		w->gl_prepare();
		w->gl_loop(cg_n(w) / 10);
		snprintf(name, sizeof name, "gl-%s", w->name);
		CALLGRIND_ZERO_STATS;
		w->gl_loop(cg_n(w));
		CALLGRIND_DUMP_STATS_AT(name);
		w->gl_release();
	}
}

static double km_ipo[NWORK], gl_ipo[NWORK];

static int count_instructions(const char *self)
{
	char dir[] = "/tmp/bench_kmalloc.XXXXXX";
	int ok = bench_callgrind_self(self, dir) == 0;
	char name[64];
	for (unsigned i = 0; i < NWORK && ok; i++) {
		snprintf(name, sizeof name, "km-%s", work[i].name);
		km_ipo[i] = bench_dump_ir(dir, name) / cg_n(&work[i]);
		snprintf(name, sizeof name, "gl-%s", work[i].name);
		gl_ipo[i] = bench_dump_ir(dir, name) / cg_n(&work[i]);
	}
	bench_rmdir(dir);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* --geometry: what the pool and arena sizes cost                      */
/* ------------------------------------------------------------------ */

#define FRAG 200000
static void *frag[FRAG];

static void geometry(void)
{
	static struct kmalloc_stats st;
	make_tables();

	/* 1. steady churn (the churn workload, 2M steps) */
	fresh_strata();
	peak = 0;
	sample = sample_strata;
	km_churn_prepare();
	km_churn(2000000);
	kmalloc_get_stats(&st);
	uint64_t held_end = (free_at_start - pfa_free_pages()) * PAGE_SIZE;
	uint64_t live_bytes = st.bytes_allocated_blocks + st.large_bytes_requested;
	printf("churn     arenas taken %5llu given back %5llu  peak held %7.2f MiB  "
	       "held %7.2f MiB for %6.2f MiB in blocks\n",
	       (unsigned long long)st.arenas_allocated_total,
	       (unsigned long long)st.arenas_reclaimed_total, peak / (double)MIB,
	       held_end / (double)MIB, live_bytes / (double)MIB);
	km_churn_release();
	sample = NULL;

	/* 2. fragmentation: 200,000 small blocks, free 90% at random */
	fresh_strata();
	size_t bytes = 0;
	for (unsigned i = 0; i < FRAG; i++) {
		size_t n = rnd() % 10 < 7 ? 1 + rnd() % 256 : 1 + rnd() % 2048;
		frag[i] = kmalloc(n, 0);
		bytes += n;
	}
	uint64_t held_full = (free_at_start - pfa_free_pages()) * PAGE_SIZE;
	kmalloc_get_stats(&st);
	uint64_t blocks_full = st.bytes_allocated_blocks;
	size_t kept = 0;
	for (unsigned i = 0; i < FRAG; i++) {
		if (rnd() % 10) {
			kfree(frag[i]);
			frag[i] = NULL;
		} else {
			kept += kmalloc_usable_size(frag[i]);
		}
	}
	uint64_t held_frag = (free_at_start - pfa_free_pages()) * PAGE_SIZE;
	printf("frag      full: held %7.2f MiB for %7.2f MiB asked (%.1f%% overhead); "
	       "after freeing 90%%: held %6.2f MiB for %5.2f MiB in blocks (x%.1f)\n",
	       held_full / (double)MIB, bytes / (double)MIB,
	       100.0 * ((double)held_full - bytes) / bytes, held_frag / (double)MIB,
	       kept / (double)MIB, (double)held_frag / kept);
	(void)blocks_full;
	for (unsigned i = 0; i < FRAG; i++)
		kfree(frag[i]);

	/* 3. ramps: 50,000 blocks up, all down, ten times */
	fresh_strata();
	for (int r = 0; r < 10; r++) {
		for (unsigned i = 0; i < 50000; i++)
			frag[i] = kmalloc(1 + rnd() % 512, 0);
		for (unsigned i = 0; i < 50000; i++)
			kfree(frag[i]);
	}
	kmalloc_get_stats(&st);
	printf("ramps     arenas taken %5llu given back %5llu (PFA calls for arenas: %llu)\n",
	       (unsigned long long)st.arenas_allocated_total,
	       (unsigned long long)st.arenas_reclaimed_total,
	       (unsigned long long)(st.arenas_allocated_total + st.arenas_reclaimed_total));

	/* 4. one block of every class live: the minimum footprint */
	fresh_strata();
	kmalloc_get_stats(&st);
	for (unsigned c = 0; c < st.nclasses; c++)
		frag[c] = kmalloc(st.cls[c].size, 0);
	printf("minimum   one block of each of %u classes holds %.2f MiB\n", st.nclasses,
	       (free_at_start - pfa_free_pages()) * PAGE_SIZE / (double)MIB);
	for (unsigned c = 0; c < st.nclasses; c++)
		kfree(frag[c]);
}

/* --waste: internal waste of the compiled class table over request sizes
 * (rounding to the class + the block's share of its pool's header and
 * tail; above the small limit a request costs whole pages). */
static double cost_of(const struct kmalloc_stats *st, size_t n)
{
	if (n <= st->small_max) {
		for (unsigned c = 0; c < st->nclasses; c++)
			if (st->cls[c].size >= n)
				return (double)st->cls[c].pool_size / st->cls[c].blocks_per_pool;
	}
	return (double)((n + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE);   /* exact pages */
}

/* Rounding alone: the class size (or whole pages) over the request. */
static double rounded_of(const struct kmalloc_stats *st, size_t n)
{
	if (n <= st->small_max) {
		for (unsigned c = 0; c < st->nclasses; c++)
			if (st->cls[c].size >= n)
				return (double)st->cls[c].size;
	}
	return (double)((n + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE);
}

static void waste(void)
{
	static struct kmalloc_stats st;
	fresh_strata();
	kmalloc_get_stats(&st);
	printf("waste: small max %zu (%u classes), pools of %zu KiB (small) .. %zu KiB\n",
	       st.small_max, st.nclasses, st.pool_size / 1024, st.arena_size / 2048);
	static const size_t ranges[][2] = { { 1, 512 }, { 1, 2048 }, { 17, 2048 }, { 65, 2048 },
					    { 513, 2048 }, { 2049, 16384 }, { 1, 32768 }, { 129, 32768 },
					    { 129, 256 }, { 257, 512 }, { 513, 1024 },
					    { 1025, 2048 }, { 2049, 4096 }, { 4097, 8192 },
					    { 8193, 16384 }, { 16385, 32768 } };
	for (unsigned r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
		double asked = 0, cost = 0, worst = 0, round_worst = 0;
		size_t worst_at = 0, round_at = 0;
		for (size_t n = ranges[r][0]; n <= ranges[r][1]; n++) {
			double c = cost_of(&st, n), u = rounded_of(&st, n);
			asked += (double)n;
			cost += c;
			if ((c - (double)n) / c > worst) {
				worst = (c - (double)n) / c;
				worst_at = n;
			}
			if ((u - (double)n) / (double)n > round_worst) {
				round_worst = (u - (double)n) / (double)n;
				round_at = n;
			}
		}
		printf("  sizes %5zu..%-5zu  average %6.1f%% over the request, worst %5.1f%% of the "
		       "memory lost (at %zu); rounding at most %5.1f%% over (at %zu)\n",
		       ranges[r][0], ranges[r][1], 100.0 * (cost - asked) / asked, 100.0 * worst,
		       worst_at, 100.0 * round_worst, round_at);
	}
	printf("  class  size  blocks/pool  pool KiB\n");
	for (unsigned c = 0; c < st.nclasses; c++)
		printf("  %5u %5u %6u %11u\n", c, st.cls[c].size, st.cls[c].blocks_per_pool,
		       st.cls[c].pool_size / 1024);
}

int main(int argc, char **argv)
{
	ram = (uint64_t)(uintptr_t)host_ram(RAM);
	make_tables();

	if (argc > 1 && !strcmp(argv[1], "--inner")) {
		run_inner();
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--waste")) {
		waste();
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--geometry")) {
		static struct kmalloc_stats st;
		fresh_strata();
		kmalloc_get_stats(&st);
		printf("geometry: small max %zu (%u classes), pool %zu KiB, arena %zu KiB\n",
		       st.small_max, st.nclasses, st.pool_size / 1024, st.arena_size / 1024);
		geometry();
		return 0;
	}

	double km_ns[NWORK], gl_ns[NWORK];
	uint64_t km_peak[NWORK], gl_peak[NWORK];
	for (unsigned i = 0; i < NWORK; i++) {
		const struct workload *w = &work[i];
		km_ns[i] = best_ns(w->km_prepare, w->km_loop, w->km_release, w->n, 1);
		gl_ns[i] = best_ns(w->gl_prepare, w->gl_loop, w->gl_release, w->n, 0);
		km_peak[i] = peak_of(w, 1);
		gl_peak[i] = peak_of(w, 0);
	}
	int have_cg = count_instructions(argv[0]) == 0;

	printf("bench_kmalloc: strata kmalloc vs glibc malloc (ratio = glibc / strata, > 1: strata better)\n");
	printf("%-9s | %8s %8s %6s | %9s %9s %6s | %9s %9s %6s\n", "workload", "ns/op", "glibc",
	       "ratio", "insns/op", "glibc", "ratio", "peak KiB", "glibc", "ratio");
	for (unsigned i = 0; i < NWORK; i++) {
		printf("%-9s | %8.1f %8.1f %6.2f | ", work[i].name, km_ns[i], gl_ns[i],
		       gl_ns[i] / km_ns[i]);
		if (have_cg)
			printf("%9.1f %9.1f %6.2f | ", km_ipo[i], gl_ipo[i], gl_ipo[i] / km_ipo[i]);
		else
			printf("%9s %9s %6s | ", "n/a", "n/a", "");
		printf("%9llu %9llu %6.2f\n", (unsigned long long)(km_peak[i] / 1024),
		       (unsigned long long)(gl_peak[i] / 1024),
		       km_peak[i] ? (double)gl_peak[i] / km_peak[i] : 0.0);
	}
	printf("(op = one alloc+free pair for hot-*, one free+alloc step for churn, one realloc\n"
	       " call for realloc; insns include ~4-6 of loop overhead per op; peak memory of\n"
	       " strata = pages held from its PFA, of glibc = mallinfo2 arena + mmap bytes)\n");
	return 0;
}

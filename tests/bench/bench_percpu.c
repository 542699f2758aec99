/*
 * bench_percpu.c - the per-CPU fast paths on the host (issue: per-CPU
 * caches).  Threads play CPUs: each gets a CPU id in a thread-local, as
 * a kernel keeps it in %gs or TPIDR_EL1 (the hooks are out-of-line calls
 * here, as in the kernels; libstrata.so inlines them).
 *
 *   pair-kmalloc   p = kmalloc(32); kfree(p)        insns per pair (callgrind)
 *   pair-cache     o = kmem_cache_alloc(c); free     insns per pair (callgrind)
 *   threads 1/2    each thread: 64 allocations of mixed small sizes, then
 *                  64 frees, repeated; ops/s with 1 and 2 threads, strata
 *                  and glibc malloc side by side, scaling = 2T / 1T
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "bench.h"
#include "host_ram.h"
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

static __thread unsigned my_cpu;
unsigned mm_cpu_id(void) { return my_cpu; }
unsigned mm_cpu_count(void) { return 2; }
unsigned long mm_irq_save(void) { return 0; }
void mm_irq_restore(unsigned long f) { (void)f; }

#define RAM (512ul << 20)
static struct kmem_cache *obj64;

static void setup(void)
{
	host_heap_setup(RAM);
	obj64 = kmem_cache_create("bench-64", 64, 0, 0, NULL);
}

static __attribute__((noinline)) void pair_kmalloc(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = kmalloc(32, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kfree(p);
	}
}

static __attribute__((noinline)) void pair_cache(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = kmem_cache_alloc(obj64, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kmem_cache_free(obj64, p);
	}
}

/* ---- threads ---- */

struct job { int use_strata; long rounds; unsigned cpu; };

static void *thread_work(void *arg)
{
	struct job *j = arg;
	void *p[64];
	uint64_t s = 0x9E3779B97F4A7C15ull * (j->cpu + 1);

	my_cpu = j->cpu;
	for (long r = 0; r < j->rounds; r++) {
		for (int i = 0; i < 64; i++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			size_t n = 16 + (s % 496);
			p[i] = j->use_strata ? kmalloc(n, 0) : malloc(n);
			*(volatile char *)p[i] = 1;
		}
		for (int i = 0; i < 64; i++) {
			if (j->use_strata)
				kfree(p[i]);
			else
				free(p[i]);
		}
	}
	if (j->use_strata)
		mm_cpu_detach(j->cpu);
	return NULL;
}

/* ops per second (one op = one malloc or one free) with `threads` threads */
static double throughput(int use_strata, int threads, long rounds)
{
	pthread_t th[2];
	struct job jobs[2];
	double t0 = now();
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct job){ use_strata, rounds, (unsigned)i };
		pthread_create(&th[i], NULL, thread_work, &jobs[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	return threads * rounds * 128.0 / (now() - t0);
}

static double best_of(int use_strata, int threads, long rounds)
{
	double best = 0;
	for (int k = 0; k < 5; k++) {
		double v = throughput(use_strata, threads, rounds);
		if (v > best)
			best = v;
	}
	return best;
}

int main(int argc, char **argv)
{
	long n = 2000000;

	setup();
	if (argc > 1 && !strcmp(argv[1], "--inner")) {
		pair_kmalloc(n / 10);
		CALLGRIND_ZERO_STATS;
		pair_kmalloc(n);
		CALLGRIND_DUMP_STATS_AT("pair-kmalloc");
		pair_cache(n / 10);
		CALLGRIND_ZERO_STATS;
		pair_cache(n);
		CALLGRIND_DUMP_STATS_AT("pair-cache");
		return 0;
	}
	char dir[] = "/tmp/bench_percpu.XXXXXX";
	if (bench_callgrind_self(argv[0], dir) == 0) {
		printf("per-CPU fast path, instructions per alloc+free pair (callgrind, hooks out of line):\n");
		printf("  kmalloc(32) + kfree          %6.1f\n", bench_dump_ir(dir, "pair-kmalloc") / n);
		printf("  kmem_cache_alloc + free      %6.1f\n", bench_dump_ir(dir, "pair-cache") / n);
		bench_rmdir(dir);
	} else {
		printf("(valgrind not found: no instruction counts)\n");
	}

	long rounds = 200000;
	double s1 = best_of(1, 1, rounds), s2 = best_of(1, 2, rounds);
	double g1 = best_of(0, 1, rounds), g2 = best_of(0, 2, rounds);
	printf("per-thread workload (64 mixed small allocations, then 64 frees), Mops/s, best of 5:\n");
	printf("  %-8s %10s %10s %8s\n", "", "1 thread", "2 threads", "scaling");
	printf("  %-8s %10.1f %10.1f %7.2fx\n", "strata", s1 / 1e6, s2 / 1e6, s2 / s1);
	printf("  %-8s %10.1f %10.1f %7.2fx\n", "glibc", g1 / 1e6, g2 / 1e6, g2 / g1);
	printf("  strata / glibc: %.2fx at 1 thread, %.2fx at 2 threads\n", s1 / g1, s2 / g2);
	return 0;
}

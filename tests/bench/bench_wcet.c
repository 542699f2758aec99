/*
 * bench_wcet.c - the worst-case benchmark on the host: the instructions
 * of every single kmalloc, kfree, krealloc, kmalloc_aligned,
 * kmem_cache_alloc/free and pfa_alloc/free of the workload the guest
 * suite runs (tests/bench/wcet.h), on the hosted build of mm/.
 *
 *     bench_wcet [--ops N] [--mem MIB] [--seed N]     (defaults 20000, 64, 1)
 *
 * How a single call is counted: this VM exposes no hardware counter
 * (`perf stat -e instructions` says <not supported>, so no
 * perf_event_open, no rdpmc), and callgrind only sums costs per function.
 * So the call runs with the x86 trap flag set: the CPU raises a debug
 * trap after every user-space instruction, and the SIGTRAP handler
 * counts them.  That is exact and deterministic, counts user-space
 * instructions only (a first-touch page fault costs the faulting
 * instruction once, none of the kernel's work: page faults are left
 * aside), and costs about 5 microseconds per instruction on this VM (a
 * debug exception and a signal each), hence the smaller default operation
 * count (the guest runs 10^7; the first 20,000 operations of a seed are
 * the same sequence on both) and fewer repetitions of each adversarial
 * sequence (wcet_light: same shapes, shorter).
 *
 * Platform: arch/host/platform.c with strata's weak single-CPU defaults
 * (mm_cpu_id 0, no interrupts, mm_platform_release a no-op), so the code
 * paths are the guest kernel's; RAM is an anonymous mapping handed to
 * the PFA like the firmware's map in the kernel.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <strata/kmalloc.h>
#include <strata/pfa.h>

#if !defined(__x86_64__)
#error "bench_wcet counts with the x86 trap flag"
#endif

static volatile uint64_t steps;

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	steps++;
}

/* TF (bit 8 of RFLAGS) on: a trap after each instruction from here on. */
static inline __attribute__((always_inline)) uint64_t wcet_begin(void)
{
	uint64_t s = steps;
	__asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc");
	return s;
}

static inline __attribute__((always_inline)) uint64_t wcet_end(uint64_t s)
{
	__asm__ volatile("pushfq\n\tandq $~0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc");
	return steps - s;
}

#define WCET_LOG(...) printf("# " __VA_ARGS__)

#include "wcet.h"

#define MIB (1ull << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n iterations of a two-instruction loop */
static __attribute__((noinline)) uint64_t over_spin(uint64_t n)
{
	uint64_t t0 = wcet_begin();
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
	return wcet_end(t0);
}

int main(int argc, char **argv)
{
	uint64_t ops = 20000, mem = 64, seed = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--ops"))
			ops = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--mem"))
			mem = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
	}
	struct sigaction sa = { .sa_sigaction = on_trap, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTRAP, &sa, NULL);

	uint64_t ram_bytes = mem * MIB;
	void *m = mmap(NULL, ram_bytes + 4 * MIB, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	uint64_t ram = ((uint64_t)(uintptr_t)m + 4 * MIB - 1) & ~(uint64_t)(4 * MIB - 1);
	pfa_setup_begin(0);
	pfa_add_region(ram, ram_bytes);
	if (pfa_setup_end()) {
		fprintf(stderr, "pfa setup failed\n");
		return 1;
	}
	kmalloc_init();

	uint64_t a = over_spin(1000), b = over_spin(3000);
	uint64_t spread, cost = wcet_calibrate(&spread);
	printf("# host (x86 trap flag, user-space instructions), %llu MiB, %llu operations, "
	       "seed %llu\n", (unsigned long long)mem, (unsigned long long)ops,
	       (unsigned long long)seed);
	printf("# counter: over 4000 instructions %llu; cost of two reads back to back %llu "
	       "(spread %llu)\n", (unsigned long long)(b - a), (unsigned long long)cost,
	       (unsigned long long)spread);
	if (b - a != 4000 || spread) {
		printf("not ok - the trap-flag counter is not exact\n");
		return 1;
	}
	wcet_light = true;
	double t0 = now();
	uint64_t calls = wcet_run_mixed(ops, seed, true);
	printf("# mixed: %llu calls measured in %.1f s\n", (unsigned long long)calls,
	       now() - t0);
	t0 = now();
	wcet_run_adversarial(seed);
	printf("# adversarial sequences in %.1f s\n", now() - t0);
	if (kmalloc_check() != 0) {
		printf("not ok - kmalloc_check after the benchmark\n");
		return 1;
	}
	return 0;
}

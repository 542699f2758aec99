/*
 * debug_cost.c - what hardening and debug mode cost, in instructions
 * (callgrind, repeatable).  scripts/bench-debug builds this file with mm/
 * four ways and prints one table:
 *
 *   -DMM_DEBUG=0 -DKM_HARDEN=0   neither feature (the reference)
 *   -DMM_DEBUG=0                 hardening only (the default's cost of it)
 *   (defaults)                   debug compiled in, off at run time
 *   (defaults) + argv[1] "all"   mm_debug_setup("all"): every check on
 *
 *   hot-32   kmalloc(32) + kfree            (the per-CPU fast path)
 *   churn    4096 live blocks, free one at random, allocate a random size
 *            (70% <= 256 B, 20% <= 2 KiB, 10% <= 32 KiB): refills and
 *            flushes reach the pools and their free lists
 * Prints "NAME INSNS_PER_OP" lines for the script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "host_ram.h"
#include <stdlib.h>
#include <strata/debug.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#define RAM (256ul << 20)
#define LIVE 4096
static void *live[LIVE];

static __attribute__((noinline)) void hot(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = kmalloc(32, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kfree(p);
	}
}

static size_t size_at(uint64_t r)
{
	unsigned k = r % 100;
	return k < 70 ? 1 + (r >> 8) % 256 : k < 90 ? 1 + (r >> 8) % 2048 : 2049 + (r >> 8) % 30000;
}

static __attribute__((noinline)) void churn(long n)
{
	for (long i = 0; i < n; i++) {
		uint64_t r = rnd();
		unsigned k = (unsigned)(r >> 40) % LIVE;
		kfree(live[k]);
		live[k] = kmalloc(size_at(r), 0);
	}
}

int main(int argc, char **argv)
{
	host_heap_setup(RAM);
	if (argc > 1 && mm_debug_setup(argv[1]) != 0)
		return 1;
	/* STRATA_SAMPLE=N: sampled guarded allocations at that rate */
	const char *sample = getenv("STRATA_SAMPLE");
	if (sample && mm_guard_setup(sample) != 0)
		return 1;
	for (unsigned i = 0; i < LIVE; i++)
		live[i] = kmalloc(size_at(rnd()), 0);
	hot(10000);
	churn(20000);
	long nh = 200000, nc = 100000;
	CALLGRIND_ZERO_STATS;
	hot(nh);
	CALLGRIND_DUMP_STATS_AT("hot");
	churn(nc);
	CALLGRIND_DUMP_STATS_AT("churn");
	(void)nc;
	return 0;
}

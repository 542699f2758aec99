/*
 * bench_wcet.c - suite "bench-wcet": how long can one call take?
 *
 *     scripts/qemu-run --icount --arch x86_64 --kernel build/x86_64/kernel.elf \
 *         --mem 64M -- test=bench-wcet [iters=N] [seed=N]
 *
 * Every kmalloc, kfree, krealloc, kmalloc_aligned, kmem_cache_alloc/free
 * and pfa_alloc/pfa_free of a mixed random run of iters= operations
 * (default 10^7), and of adversarial sequences aimed at each slow path,
 * measured one call at a time with arch_insns() (the workload and the
 * tables: tests/bench/wcet.h, shared with the host benchmark).
 *
 * Needs -icount shift=0: only then does arch_insns() count instructions.
 * Test "counter" checks that: over a loop of known length the counter
 * must advance exactly one per instruction (it fails without icount).
 * Not part of test=all (bench- suites are excluded by name); make bench
 * runs it on both arches at 64 MiB and 4 GiB (scripts/bench-all).
 */
#include <stdbool.h>
#include <stdio.h>

#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

static inline uint64_t wcet_begin(void) { return arch_insns(); }
static inline uint64_t wcet_end(uint64_t t0) { return arch_insns() - t0; }
#define WCET_LOG(...) kt_log(__VA_ARGS__)

#include "../bench/wcet.h"

#ifdef __aarch64__
uint64_t aarch64_inst_retired(void);
#endif

static struct pfa_stats ps0, ps1;

/* (The runner takes a file's tests last-defined first: counter, mixed,
 * adversarial.) */

static void bench_wcet_adversarial(struct ktest_ctx *t)
{
	uint64_t spread;

	wcet_calibrate(&spread);
	mm_reclaim();
	pfa_get_stats(&ps0);
	wcet_run_adversarial(t->seed);
	pfa_get_stats(&ps1);
	KT_CHECK(t, kmalloc_check() == 0, "kmalloc_check after the sequences");
	KT_CHECK(t, ps1.free_pages == ps0.free_pages,
		 "pfa free pages %llu after the sequences, %llu before",
		 (unsigned long long)ps1.free_pages, (unsigned long long)ps0.free_pages);
}
KTEST_NAMED("bench-wcet", adversarial, bench_wcet_adversarial);

static void bench_wcet_mixed(struct ktest_ctx *t)
{
	uint64_t n = t->iters ? t->iters : 10000000;
	uint64_t spread;

	pfa_get_stats(&ps0);
	kt_log("bench-wcet %s, %llu MiB managed, %llu operations, seed %llu\n", t->bi->arch,
	       (unsigned long long)(ps0.total_pages >> 8), (unsigned long long)n,
	       (unsigned long long)t->seed);
	wcet_calibrate(&spread);
	uint64_t calls = wcet_run_mixed(n, t->seed, true);
	KT_CHECK(t, calls > 0, "no call measured");
	kt_log("bench-wcet mixed: %llu calls measured\n", (unsigned long long)calls);
	KT_CHECK(t, kmalloc_check() == 0, "kmalloc_check after the mixed run");
}
KTEST_NAMED("bench-wcet", mixed, bench_wcet_mixed);

/* n iterations of a two-instruction loop: 2n instructions. */
static __attribute__((noinline)) void spin(uint64_t n)
{
#if defined(__x86_64__)
	__asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc");
#elif defined(__aarch64__)
	__asm__ volatile("1: subs %0, %0, #1\n\tb.ne 1b" : "+r"(n) : : "cc");
#elif defined(__riscv)
	__asm__ volatile("1: addi %0, %0, -1\n\tbnez %0, 1b" : "+r"(n));
#else
#error "spin(): a two-instruction loop for this architecture"
#endif
}

/* Counter increase over spin(n), for the counter `read`.  Not inlined:
 * two inlined copies may differ by an instruction of their own. */
static __attribute__((noinline)) uint64_t over_spin(uint64_t (*read)(void), uint64_t n)
{
	uint64_t t0 = read();
	spin(n);
	return read() - t0;
}

/* The counter's advance over 4000 instructions (spin(3000) - spin(1000)),
 * or 0 when it is not exact over 2 either (spin(2) - spin(1)). */
static uint64_t slope(const char *name, uint64_t (*read)(void))
{
	uint64_t a = over_spin(read, 1000), b = over_spin(read, 3000);
	uint64_t one = over_spin(read, 1), two = over_spin(read, 2);

	kt_log("bench-wcet counter %-24s over 4000 instructions: %llu, over 2: %lld\n", name,
	       (unsigned long long)(b - a), (long long)(two - one));
	return two - one == 2 ? b - a : 0;
}

static void bench_wcet_counter(struct ktest_ctx *t)
{
	uint64_t d, spread;

	d = slope("arch_insns", arch_insns);
	KT_CHECK(t, d == 4000,
		 "arch_insns advanced %llu over 4000 instructions (not 1 per instruction: "
		 "boot with -icount shift=0,align=off,sleep=off)", (unsigned long long)d);
	slope("arch_cycles", arch_cycles);
#ifdef __aarch64__
	slope("PMU INST_RETIRED (0x08)", aarch64_inst_retired);
#endif
	uint64_t cost = wcet_calibrate(&spread);
	kt_log("bench-wcet counter cost (two reads back to back): %llu, spread %llu\n",
	       (unsigned long long)cost, (unsigned long long)spread);
	KT_CHECK(t, spread == 0, "the counter's own cost varies by %llu", (unsigned long long)spread);
}
KTEST_NAMED("bench-wcet", counter, bench_wcet_counter);

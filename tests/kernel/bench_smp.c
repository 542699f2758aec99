/*
 * bench_smp.c - suite "bench-smp": the per-CPU layer on the live machine.
 *
 *     scripts/qemu-run --smp 4 ... -- test=bench-smp         (scaling)
 *     scripts/qemu-run --icount ... -- test=bench-smp        (insns/op)
 *
 *   pair-kmalloc   kmalloc(32) + kfree on one CPU: the per-CPU fast path
 *   pair-cache     kmem_cache_alloc + kmem_cache_free
 *   scale-N        CPUs 0..N-1 each do rounds of 64 allocations of
 *                  16..512 bytes then 64 frees (their own objects), for
 *                  N = 1, 2, 4, ...: operations per Mcycle of the cycle
 *                  counter, and the ratio to N = 1.  Without -icount the
 *                  vCPUs run in parallel (TCG threads); with it they are
 *                  serialised and the ratio says nothing.
 * Cycles are arch_cycles(); under -icount shift=0 they count instructions
 * (x86 TSC and riscv64 rdcycle 1 per insn, aarch64 CNTVCT 1 per 16).
 */
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include <string.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>

static unsigned factor(const struct ktest_ctx *t)
{
	return strcmp(t->bi->arch, "aarch64") == 0 ? 16 : 1;
}

struct scale {
	unsigned active;
	uint64_t rounds;
	struct smp_barrier bar;
	uint64_t cycles;
};

static void scale_fn(unsigned cpu, void *arg)
{
	struct scale *s = arg;
	void *p[64];
	uint64_t x = 0x9E3779B97F4A7C15ull * (cpu + 1), c0 = 0;

	smp_barrier_wait(&s->bar);
	if (cpu == 0)
		c0 = arch_cycles();
	if (cpu < s->active) {
		for (uint64_t r = 0; r < s->rounds; r++) {
			for (int i = 0; i < 64; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				p[i] = kmalloc(16 + (x % 497), 0);
				*(volatile char *)p[i] = 1;
			}
			for (int i = 0; i < 64; i++)
				kfree(p[i]);
		}
	}
	smp_barrier_wait(&s->bar);
	if (cpu == 0)
		s->cycles = arch_cycles() - c0;
	mm_cpu_drain();
}

KTEST_NAMED("bench-smp", per_cpu, bench_smp_per_cpu);
static void bench_smp_per_cpu(struct ktest_ctx *t)
{
	uint64_t n = t->iters ? t->iters : 200000;

	void *keep = kmalloc(32, 0);
	for (int i = 0; i < 100; i++)
		kfree(kmalloc(32, 0));
	uint64_t c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		void *p = kmalloc(32, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kfree(p);
	}
	uint64_t dk = arch_cycles() - c0;
	kfree(keep);

	struct kmem_cache *c = kmem_cache_create("bench-64", 64, 0, 0, NULL);
	KT_REQUIRE(t, c, "cache");
	for (int i = 0; i < 100; i++)
		kmem_cache_free(c, kmem_cache_alloc(c, 0));
	c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		void *p = kmem_cache_alloc(c, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kmem_cache_free(c, p);
	}
	uint64_t dc = arch_cycles() - c0;
	kmem_cache_destroy(c);
	kt_log("bench-smp pair-kmalloc %6llu.%llu cycles/pair (icount: %llu insns)\n",
	       (unsigned long long)(dk * 10 / n / 10), (unsigned long long)(dk * 10 / n % 10),
	       (unsigned long long)(dk * factor(t) / n));
	kt_log("bench-smp pair-cache   %6llu.%llu cycles/pair (icount: %llu insns)\n",
	       (unsigned long long)(dc * 10 / n / 10), (unsigned long long)(dc * 10 / n % 10),
	       (unsigned long long)(dc * factor(t) / n));

	static struct scale s;
	uint64_t base = 0;
	for (unsigned k = 1; k <= smp_ncpus(); k *= 2) {
		memset(&s, 0, sizeof s);
		s.active = k;
		s.rounds = n / 64;
		smp_run(scale_fn, &s);
		uint64_t ops = (uint64_t)k * s.rounds * 128;
		uint64_t per_mcycle = s.cycles ? ops * 1000000 / s.cycles : 0;
		if (k == 1)
			base = per_mcycle;
		kt_log("bench-smp scale-%u   %llu ops in %llu Mcycles: %llu ops/Mcycle, %llu.%02llux of 1 CPU\n",
		       k, (unsigned long long)ops, (unsigned long long)(s.cycles >> 20),
		       (unsigned long long)per_mcycle,
		       (unsigned long long)(base ? per_mcycle / base : 0),
		       (unsigned long long)(base ? per_mcycle * 100 / base % 100 : 0));
	}
	mm_reclaim();
}

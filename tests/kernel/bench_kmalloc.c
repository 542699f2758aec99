/*
 * bench_kmalloc.c - suite "bench-kmalloc": kmalloc cost in the guest.
 *
 *     make run KARGS="test=bench-kmalloc"        (iters=N scales it)
 *     scripts/qemu-run --icount ... -- test=bench-kmalloc
 *
 * The host benchmark's workloads (tests/bench/bench_kmalloc.c) on the
 * live allocator, timed with arch_cycles().  Under -icount shift=0 the
 * counter counts instructions (x86 TSC and riscv64 rdcycle: 1 per
 * instruction, aarch64 CNTVCT: 1 per 16), so "insns/op" is meaningful
 * only with --icount.
 *
 *   hot-32    kmalloc(32) + kfree, another block of the class kept live
 *   churn     1024 live blocks: free a random one, allocate a random size
 *             (70% <= 256 B, 20% <= 2 KiB, the rest <= 32 KiB)
 *   realloc   CPython list growth to 20,000 items through krealloc
 *
 * Everything taken is given back (the suite reports "ok").
 */
#include <stdbool.h>

#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <string.h>
#include <strata/kmalloc.h>

#define LIVE 1024
#define TABLE 4096
static void *live[LIVE];
static uint32_t size_of[TABLE];
static uint16_t slot_of[TABLE];

static unsigned icount_factor(const struct ktest_ctx *t)
{
	return strcmp(t->bi->arch, "aarch64") == 0 ? 16 : 1;
}

static void report(struct ktest_ctx *t, const char *name, uint64_t ops, uint64_t cycles)
{
	uint64_t c10 = ops ? cycles * 10 / ops : 0;
	uint64_t i10 = ops ? cycles * icount_factor(t) * 10 / ops : 0;
	kt_log("bench-kmalloc %-8s %8llu ops %8llu.%llu cycles/op  (icount: %llu.%llu insns/op)\n",
	       name, (unsigned long long)ops, (unsigned long long)(c10 / 10),
	       (unsigned long long)(c10 % 10), (unsigned long long)(i10 / 10),
	       (unsigned long long)(i10 % 10));
}

static size_t list_cap(size_t n) { return (n + (n >> 3) + 6) & ~(size_t)3; }

static void bench_kmalloc_run(struct ktest_ctx *t)
{
	static struct kmalloc_stats st;
	uint64_t n = t->iters ? t->iters : 200000;

	kmalloc_get_stats(&st);
	if (st.nclasses == 0)
		kmalloc_init();

	/* hot-32 */
	void *keep = kmalloc(32, 0);
	for (int i = 0; i < 1000; i++)
		kfree(kmalloc(32, 0));
	uint64_t c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		void *p = kmalloc(32, 0);
		__asm__ volatile("" : : "r"(p) : "memory");
		kfree(p);
	}
	report(t, "hot-32", n, arch_cycles() - c0);
	kfree(keep);

	/* churn */
	for (unsigned i = 0; i < TABLE; i++) {
		uint64_t r = kt_rand_below(t, 100);
		size_of[i] = (uint32_t)(r < 70 ? 1 + kt_rand_below(t, 256)
				       : r < 90 ? 1 + kt_rand_below(t, 2048)
						: 2049 + kt_rand_below(t, 30000));
		slot_of[i] = (uint16_t)kt_rand_below(t, LIVE);
	}
	for (unsigned i = 0; i < LIVE; i++)
		live[i] = kmalloc(size_of[i], 0);
	c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		unsigned k = (unsigned)i & (TABLE - 1);
		void **s = &live[slot_of[k]];
		kfree(*s);
		*s = kmalloc(size_of[k], 0);
		KT_REQUIRE(t, *s, "kmalloc(%u) failed", size_of[k]);
	}
	report(t, "churn", n, arch_cycles() - c0);
	for (unsigned i = 0; i < LIVE; i++)
		kfree(live[i]);

	/* realloc */
	uint64_t calls = 0, in_place = 0;
	c0 = arch_cycles();
	while (calls < n / 20) {
		uint64_t *items = NULL;
		size_t cap = 0;
		for (size_t k = 1; k <= 20000; k++) {
			if (k > cap) {
				cap = list_cap(k);
				uint64_t *q = krealloc(items, cap * sizeof *items, 0);
				KT_REQUIRE(t, q, "krealloc failed");
				in_place += q == items;
				items = q;
				calls++;
			}
			items[k - 1] = k;
		}
		kfree(items);
	}
	report(t, "realloc", calls, arch_cycles() - c0);
	kt_log("bench-kmalloc realloc: %llu of %llu calls in place\n",
	       (unsigned long long)in_place, (unsigned long long)calls);
	KT_CHECK(t, kmalloc_check() == 0, "kmalloc_check after the benchmark");
}
KTEST_NAMED("bench-kmalloc", run, bench_kmalloc_run);

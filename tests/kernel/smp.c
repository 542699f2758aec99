/*
 * smp.c - the SMP bring-up itself (suite "smp"): every CPU the firmware
 * offered is online, knows its own number, runs on its own stack, and
 * shares memory coherently with the others.
 */
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/cmdline.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include <stdatomic.h>

struct who {
	atomic_uint ran[SMP_MAX_CPUS];
	unsigned id_seen[SMP_MAX_CPUS];
	uintptr_t stack[SMP_MAX_CPUS];
};

static void who_am_i(unsigned cpu, void *arg)
{
	struct who *w = arg;
	int local;

	atomic_fetch_add(&w->ran[cpu], 1);
	w->id_seen[cpu] = arch_cpu_id();
	w->stack[cpu] = (uintptr_t)&local;
}

KTEST(smp, every_cpu_runs_once_with_its_id)
{
	static struct who w;
	unsigned n = smp_ncpus();

	kt_log("%u CPUs online, %u in the firmware's tables\n", n, arch_cpu_count_firmware());
	/* the runner passes expect_cpus=N when it gave QEMU -smp N */
	unsigned expect = (unsigned)cmdline_get_u64(t->bi->cmdline, "expect_cpus", 0);
	if (expect)
		KT_CHECK(t, n == expect && arch_cpu_count_firmware() == expect,
			 "%u CPUs online, %u in the firmware, expected %u", n,
			 arch_cpu_count_firmware(), expect);
	for (int round = 0; round < 3; round++) {
		for (unsigned c = 0; c < SMP_MAX_CPUS; c++) {
			atomic_store(&w.ran[c], 0);
			w.id_seen[c] = ~0u;
			w.stack[c] = 0;
		}
		smp_run(who_am_i, &w);
		for (unsigned c = 0; c < n; c++) {
			KT_CHECK(t, atomic_load(&w.ran[c]) == 1, "cpu %u ran %u times", c,
				 atomic_load(&w.ran[c]));
			KT_CHECK(t, w.id_seen[c] == c, "cpu %u says it is %u", c, w.id_seen[c]);
			for (unsigned d = 0; d < c; d++) {
				uintptr_t a = w.stack[c], b = w.stack[d];
				KT_CHECK(t, (a > b ? a - b : b - a) >= 4096,
					 "cpus %u and %u share a stack (%#lx, %#lx)", c, d,
					 (unsigned long)a, (unsigned long)b);
			}
		}
		for (unsigned c = n; c < SMP_MAX_CPUS; c++)
			KT_CHECK(t, atomic_load(&w.ran[c]) == 0, "cpu %u ran but is not online", c);
	}
}

/* A shared counter hammered with atomics by every CPU at once, and a
 * barrier between phases: lost updates would show in the total. */
struct hammer {
	atomic_ulong counter;
	struct smp_barrier bar;
	unsigned long per_cpu;
	unsigned long plain[SMP_MAX_CPUS * 8];  /* one line each, no sharing */
};

static void hammer_fn(unsigned cpu, void *arg)
{
	struct hammer *h = arg;

	smp_barrier_wait(&h->bar);
	for (unsigned long i = 0; i < h->per_cpu; i++) {
		atomic_fetch_add_explicit(&h->counter, 1, memory_order_relaxed);
		h->plain[cpu * 8]++;
	}
	smp_barrier_wait(&h->bar);
}

KTEST(smp, atomics_and_barrier)
{
	static struct hammer h;
	unsigned n = smp_ncpus();

	h.per_cpu = 20000;
	atomic_store(&h.counter, 0);
	for (unsigned c = 0; c < SMP_MAX_CPUS; c++)
		h.plain[c * 8] = 0;
	smp_run(hammer_fn, &h);
	KT_CHECK(t, atomic_load(&h.counter) == n * h.per_cpu, "counter %lu, expected %lu",
		 (unsigned long)atomic_load(&h.counter), n * h.per_cpu);
	for (unsigned c = 0; c < n; c++)
		KT_CHECK(t, h.plain[c * 8] == h.per_cpu, "cpu %u counted %lu", c, h.plain[c * 8]);
}

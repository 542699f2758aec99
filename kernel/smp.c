/*
 * smp.c - the architecture-independent half of SMP: counting CPUs in,
 * handing them work, and a barrier.  The other half (finding CPUs,
 * starting them, per-CPU ids) is arch/<name>/smp.c behind kernel/smp.h.
 *
 * Secondaries spin on a generation number: smp_run() publishes (fn, arg),
 * bumps the generation, runs fn itself as CPU 0, and waits until every
 * secondary has bumped `done`.  Plain C11 atomics, nothing else: there are
 * no interrupts in this kernel, so no IPIs either.
 */
#include <stdatomic.h>
#include <kernel/arch.h>
#include <kernel/panic.h>
#include <kernel/smp.h>
#include <strata/config.h>

/* arch/<arch>/mm_inline.h promise strata ids <= MM_MAX_CPUS
 * (MM_CPU_ID_LIMIT): every CPU's number is below SMP_MAX_CPUS. */
_Static_assert(SMP_MAX_CPUS <= MM_MAX_CPUS, "a CPU number strata's tables cannot index");

static atomic_uint online = 1;                 /* the boot CPU */
static unsigned ncpus = 1;
static void (*volatile work_fn)(unsigned, void *);
static void *volatile work_arg;
static atomic_uint work_gen, work_done;

unsigned smp_ncpus(void)
{
	return ncpus;
}

_Noreturn void smp_secondary_main(unsigned cpu)
{
	unsigned seen = atomic_load_explicit(&work_gen, memory_order_acquire);

	atomic_fetch_add_explicit(&online, 1, memory_order_release);
	for (;;) {
		unsigned gen;
		while ((gen = atomic_load_explicit(&work_gen, memory_order_acquire)) == seen)
			arch_cpu_relax();
		seen = gen;
		work_fn(cpu, work_arg);
		atomic_fetch_add_explicit(&work_done, 1, memory_order_release);
	}
}

unsigned smp_init(const struct boot_info *bi, unsigned want)
{
	unsigned fw = arch_cpu_count_firmware();

	if (want == 0 || want > fw)
		want = fw;
	if (want > SMP_MAX_CPUS)
		want = SMP_MAX_CPUS;
	if (want <= 1)
		return ncpus = 1;
	unsigned started = arch_smp_boot(bi, want);
	/* the arch code returns once its CPUs are on their way; wait for each
	 * to reach smp_secondary_main() (bounded: a CPU that never arrives is
	 * a bring-up bug worth a panic, not a hang) */
	for (uint64_t spins = 0; atomic_load(&online) < started; spins++) {
		if (spins > (1ull << 32))
			panic("smp: %u of %u CPUs came online", atomic_load(&online), started);
		arch_cpu_relax();
	}
	return ncpus = started;
}

void smp_run(void (*fn)(unsigned cpu, void *arg), void *arg)
{
	work_fn = fn;
	work_arg = arg;
	atomic_store_explicit(&work_done, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&work_gen, 1, memory_order_release);
	fn(0, arg);
	while (atomic_load_explicit(&work_done, memory_order_acquire) < ncpus - 1)
		arch_cpu_relax();
}

void smp_barrier_wait(struct smp_barrier *b)
{
	unsigned gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == ncpus) {
		__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&b->gen, gen + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == gen)
		arch_cpu_relax();
}

/* newlib's recursive locks (lib/newlib/locks.c) need a distinct nonzero
 * owner per execution context: one per CPU here. */
uintptr_t newlib_lock_owner(void)
{
	return (uintptr_t)arch_cpu_id() + 1;
}

/*
 * test_wcet_seq.c - the worst-case workload (tests/bench/wcet.h) makes
 * the same choices whatever its calls return, so that bench-wcet runs
 * the same calls on a 64 MiB and a 4 GiB heap (wcet_table.py compares
 * them).  Built with -DMM_FAULT_INJECT=1 (arch/host/arch.mk): one run as
 * it is, one with page-allocator calls failing on purpose; every choice
 * is drawn from the workload's random generator, so both runs must end
 * with the generator in the same state, and the failing run must have
 * failed calls.  The instruction counter is not needed here: it reads 0.
 */
#include "harness.h"
#include "host_ram.h"

#include <stdio.h>
#include <strata/fault.h>
#include <strata/kmem_cache.h>

static inline uint64_t wcet_begin(void)
{
	return 0;
}

static inline uint64_t wcet_end(uint64_t t0)
{
	return t0;
}

static void wcet_log_nothing(const char *fmt, ...)
{
	(void)fmt;
}

#define WCET_LOG(...) wcet_log_nothing(__VA_ARGS__)
/* the adversarial sequences are not run here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../bench/wcet.h"
#pragma GCC diagnostic pop

#define MIB (1024ull * 1024)
#define OPS 60000

static uint64_t run(uint64_t *failed)
{
	uint64_t spread;

	host_heap_setup(64 * MIB);
	(void)wcet_calibrate(&spread);   /* 0: this counter costs nothing */
	uint64_t calls = wcet_run_mixed(OPS, 1, false);
	*failed = wcet_failed;
	CHECK(calls > 0, "the mixed run measured no call");
	return wcet_rng;
}

TEST(failed_calls_leave_the_choices_unchanged)
{
	uint64_t failed_plain, failed_faulty;

	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 1, 0);
	uint64_t plain = run(&failed_plain);
	CHECK(failed_plain == 0, "%llu calls failed with no fault injected",
	      (unsigned long long)failed_plain);
	/* every 40th page-allocator call fails: high-order pfa_alloc of the
	 * workload, arenas and large runs behind its kmallocs */
	mm_fault_set(MM_FAULT_PFA, MM_FAULT_EVERY, 40, 0);
	uint64_t faulty = run(&failed_faulty);
	mm_fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 1, 0);
	CHECK(failed_faulty > 0, "no call failed: the injection did not reach the workload");
	CHECK(plain == faulty,
	      "the workload's generator ends at %#llx with %llu failed calls, at %#llx with "
	      "none: a failure changed the choices after it",
	      (unsigned long long)faulty, (unsigned long long)failed_faulty,
	      (unsigned long long)plain);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

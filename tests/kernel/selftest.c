/*
 * selftest.c - suites that fail on purpose, to prove the harness notices.
 *
 * scripts/test-all boots each and requires a non-zero exit status with the
 * matching reason on the console: a failed check, a panic, a CPU fault,
 * and a hang (caught by the runner's timeout); then a stack overflow into
 * the boot stack's guard page, and the same fault and overflow on a
 * secondary CPU (selftest-ap-*, -smp 2 or more), whose report must name
 * that CPU.  Arch-specific faults are in arch/<name>/selftest.c.
 */
#include <kernel/arch.h>
#include <kernel/ktest.h>
#include <kernel/panic.h>
#include <kernel/smp.h>

KTEST_NAMED("selftest-fail", check_fails, selftest_fail);
static void selftest_fail(struct ktest_ctx *t)
{
	int two = 2;
	KT_CHECK(t, 1 + 1 == two + 1, "1 + 1 is %d, not 3 (this test fails on purpose)", two);
}

KTEST_NAMED("selftest-panic", panics, selftest_panic);
static void selftest_panic(struct ktest_ctx *t)
{
	panic("selftest-panic: deliberate panic (seed %llu)", (unsigned long long)t->seed);
}

KTEST_NAMED("selftest-fault", touches_unmapped, selftest_fault);
static void selftest_fault(struct ktest_ctx *t)
{
	volatile uint64_t *p = (volatile uint64_t *)arch_unmapped_address();
	kt_log("reading unmapped address %p\n", (void *)p);
	uint64_t v = *p;
	KT_CHECK(t, 0, "read %llu from an unmapped address without a fault",
		 (unsigned long long)v);
}

KTEST_NAMED("selftest-hang", loops_forever, selftest_hang);
static void selftest_hang(struct ktest_ctx *t)
{
	kt_log("spinning forever; the runner's timeout must end this\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
}

/* 512 bytes a frame: the boot stack (32 KiB on x86_64, 64 KiB on aarch64
 * and riscv64) overflows into its unmapped guard page after a few dozen
 * calls, long before the depth limit (there only to keep the compiler from
 * treating this as infinite recursion).  x86_64 reports a #DF from its IST
 * stack, aarch64 and riscv64 a data abort / page fault from the CPU's
 * exception stack. */
static unsigned long __attribute__((noinline)) recurse(volatile char *up, unsigned long depth)
{
	volatile char frame[512];

	if (depth == 1ul << 40)
		return 0;
	frame[0] = up ? (char)(up[0] + 1) : 0;
	__asm__ volatile("" : : "r"(frame) : "memory");
	return recurse(frame, depth + 1) + frame[0];
}

KTEST_NAMED("selftest-stack", overflows_boot_stack, selftest_stack);
static void selftest_stack(struct ktest_ctx *t)
{
	KT_CHECK(t, recurse(0, 0) == 0, "recursion returned");
}

/* ------------------------------------------- faults on a secondary CPU */

/* The last CPU runs ap_victim(); the others (the boot CPU too) just return,
 * and smp_run() waits for it until its exception report ends the run. */
static void (*ap_victim)(void);

static void on_last_cpu(unsigned cpu, void *arg)
{
	(void)arg;
	if (cpu == smp_ncpus() - 1)
		ap_victim();
}

static void ap_read_unmapped(void)
{
	(void)*(volatile uint64_t *)arch_unmapped_address();
}

/* 256 bytes a frame: a secondary's kernel stack (32 KiB on x86_64, 40 KiB
 * on aarch64 and riscv64) is gone after ~160 calls. */
static unsigned long __attribute__((noinline)) ap_recurse(volatile char *up, unsigned long depth)
{
	volatile char frame[256];

	frame[0] = (char)depth;
	if (up)
		frame[1] = up[0];
	return depth < (1ul << 20) ? ap_recurse(frame, depth + 1) + frame[1] : 0;
}

static void ap_overflow(void)
{
	ap_recurse(0, 0);
}

static void fault_on_ap(struct ktest_ctx *t, void (*fn)(void))
{
	KT_REQUIRE(t, smp_ncpus() >= 2, "needs a second CPU (-smp 2 or more)");
	kt_log("CPU %u of %u faults on purpose\n", smp_ncpus() - 1, smp_ncpus());
	ap_victim = fn;
	smp_run(on_last_cpu, 0);
	KT_CHECK(t, 0, "CPU %u did not fault", smp_ncpus() - 1);
}

KTEST_NAMED("selftest-ap-fault", unmapped_read_on_ap, selftest_ap_fault);
static void selftest_ap_fault(struct ktest_ctx *t)
{
	fault_on_ap(t, ap_read_unmapped);
}

KTEST_NAMED("selftest-ap-stack", stack_overflow_on_ap, selftest_ap_stack);
static void selftest_ap_stack(struct ktest_ctx *t)
{
	fault_on_ap(t, ap_overflow);
}

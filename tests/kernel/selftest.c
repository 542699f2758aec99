/*
 * selftest.c - suites that fail on purpose, to prove the harness notices.
 *
 * scripts/test-all boots each and requires a non-zero exit status with the
 * matching reason on the console: a failed check, a panic, a CPU fault,
 * and a hang (caught by the runner's timeout).
 */
#include <kernel/arch.h>
#include <kernel/ktest.h>
#include <kernel/panic.h>

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

/* 512 bytes a frame: the boot stack (32 KiB on x86_64, 64 KiB on aarch64)
 * overflows into its unmapped guard page after a few dozen calls, long
 * before the depth limit (there only to keep the compiler from treating
 * this as infinite recursion).  x86_64 reports a #DF from its IST stack,
 * aarch64 a data abort from the per-vector exception stack. */
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

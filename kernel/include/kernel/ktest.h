/*
 * ktest.h - in-kernel test suites.
 *
 *     KTEST(pfa, exhaust) { KT_CHECK(t, x == 1, "x is %d", x); }
 *
 * Tests live in a linker section (.ktest, bounded by __ktest_start and
 * __ktest_end in each arch's linker.ld), so adding a file under tests/kernel/
 * is all it takes.  The kernel command line picks suites: test=all (every
 * suite whose name does not start with "selftest-" or "bench-"),
 * test=pfa,kmalloc, seed=N, iters=N.  Each test prints "ok N - suite/name"
 * or "not ok N - suite/name: reason"; the run ends with "N passed, N failed".
 */
#ifndef KERNEL_KTEST_H
#define KERNEL_KTEST_H

#include <stdint.h>
#include <stdio.h>

struct boot_info;

struct ktest_ctx {
	const struct boot_info *bi;
	uint64_t seed;      /* seed= on the command line (default 1) */
	uint64_t iters;     /* iters= on the command line, 0 = suite default */
	uint64_t rng;       /* state for kt_rand() */
	int failed;
	char reason[256];
};

struct ktest {
	const char *suite;
	const char *name;
	void (*fn)(struct ktest_ctx *t);
};

#define KTEST(suite_, name_)                                              \
	static void ktest_##suite_##_##name_(struct ktest_ctx *t);       \
	static const struct ktest ktest_desc_##suite_##_##name_          \
		__attribute__((used, section(".ktest"), aligned(8))) = { \
			#suite_, #name_, ktest_##suite_##_##name_        \
		};                                                       \
	static void ktest_##suite_##_##name_(struct ktest_ctx *t)

/* Suite names with dashes: KTEST_NAMED("smp-stress", run, fn) */
#define KTEST_NAMED(suite_str, name_, fn_)                                \
	static void fn_(struct ktest_ctx *t);                            \
	static const struct ktest ktest_desc_##fn_                       \
		__attribute__((used, section(".ktest"), aligned(8))) = { \
			suite_str, #name_, fn_                           \
		}

void kt_fail(struct ktest_ctx *t, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define KT_CHECK(t, cond, ...)                                          \
	do {                                                            \
		if (!(cond))                                            \
			kt_fail((t), __FILE__, __LINE__, __VA_ARGS__);  \
	} while (0)

#define KT_REQUIRE(t, cond, ...)                                        \
	do {                                                            \
		if (!(cond)) {                                          \
			kt_fail((t), __FILE__, __LINE__, __VA_ARGS__);  \
			return;                                         \
		}                                                       \
	} while (0)

/* Reproducible random numbers (xorshift64*) seeded from seed= . */
uint64_t kt_rand(struct ktest_ctx *t);
static inline uint64_t kt_rand_below(struct ktest_ctx *t, uint64_t n)
{
	return n ? kt_rand(t) % n : 0;
}

/* Log lines that are not results start with '#'. */
#define kt_log(...) printf("# " __VA_ARGS__)

#endif

/*
 * harness.h - the host unit-test framework (header only).
 *
 *     TEST(name) { CHECK(x == 1, "x is %d", x); }
 *     int main(int argc, char **argv) { return harness_main(argc, argv); }
 *
 * Each test prints "ok N - name" or "not ok N - name: reason" (TAP style);
 * the program ends with "N passed, N failed" and exits 1 if any failed.
 * scripts/test-all adds up the counts of every test program.
 * argv[1], if given, runs only tests whose name contains it.
 * HARNESS_SEED (env) fixes the random seed; the seed is always printed.
 * Built with -fsanitize=address,undefined: a sanitizer report aborts the
 * program, which test-all counts as a failure.
 */
#ifndef TESTS_HOST_HARNESS_H
#define TESTS_HOST_HARNESS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct harness_test {
	const char *name;
	void (*fn)(void);
};

#define HARNESS_MAX_TESTS 512
static struct harness_test harness_tests[HARNESS_MAX_TESTS];
static int harness_ntests;
static int harness_failed_now;
static char harness_reason[512];
static uint64_t harness_seed;

#define TEST(name)                                                      \
	static void test_##name(void);                                  \
	__attribute__((constructor)) static void register_##name(void)  \
	{                                                               \
		if (harness_ntests < HARNESS_MAX_TESTS)                  \
			harness_tests[harness_ntests++] =                \
				(struct harness_test){ #name, test_##name }; \
	}                                                               \
	static void test_##name(void)

__attribute__((format(printf, 3, 4))) static inline void
harness_fail(const char *file, int line, const char *fmt, ...)
{
	if (harness_failed_now++)
		return; /* keep the first reason */
	int n = snprintf(harness_reason, sizeof harness_reason, "%s:%d: ", file, line);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(harness_reason + n, sizeof harness_reason - (size_t)n, fmt, ap);
	va_end(ap);
}

/* CHECK(cond, fmt, ...): record a failure (and keep going). */
#define CHECK(cond, ...)                                                \
	do {                                                            \
		if (!(cond))                                            \
			harness_fail(__FILE__, __LINE__, __VA_ARGS__);  \
	} while (0)

/* REQUIRE(cond, fmt, ...): record a failure and leave the test. */
#define REQUIRE(cond, ...)                                              \
	do {                                                            \
		if (!(cond)) {                                          \
			harness_fail(__FILE__, __LINE__, __VA_ARGS__);  \
			return;                                         \
		}                                                       \
	} while (0)

/* xorshift64*: the tests' random numbers, reproducible from the seed. */
static uint64_t harness_rng_state;
static inline uint64_t rnd(void)
{
	uint64_t x = harness_rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	harness_rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}
static inline uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }
static inline void rnd_seed(uint64_t s) { harness_rng_state = s ? s : 0x9E3779B97F4A7C15ULL; }

static inline double harness_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int harness_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	const char *s = getenv("HARNESS_SEED");
	harness_seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	printf("# %s: seed=%llu (HARNESS_SEED=%llu reproduces)\n", argv[0],
	       (unsigned long long)harness_seed, (unsigned long long)harness_seed);
	int passed = 0, failed = 0;
	for (int i = 0; i < harness_ntests; i++) {
		if (filter && !strstr(harness_tests[i].name, filter))
			continue;
		harness_failed_now = 0;
		harness_reason[0] = 0;
		rnd_seed(harness_seed + (uint64_t)i);
		fflush(stdout);
		harness_tests[i].fn();
		if (harness_failed_now) {
			failed++;
			printf("not ok %d - %s: %s\n", passed + failed,
			       harness_tests[i].name, harness_reason);
		} else {
			passed++;
			printf("ok %d - %s\n", passed + failed, harness_tests[i].name);
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif

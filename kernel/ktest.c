/*
 * ktest.c - the in-kernel test runner.
 *
 * Test descriptors sit in the .ktest linker section (see ktest.h), one
 * struct ktest each.  The runner walks the section once per requested
 * suite and prints TAP-like lines that scripts/qemu-test reads:
 *
 *     # suite pfa
 *     ok 1 - pfa/exhaust
 *     not ok 2 - pfa/bad_free: tests/kernel/pfa.c:88: report was ...
 *     1 passed, 1 failed
 *
 * test=all selects every suite except selftest-* (they fail on purpose),
 * bench-* (they measure, they do not check), debug-* (they need
 * mm.debug=... on the command line) and entry-* (they need a free hart:
 * --smp 2 cpus=1).
 */
#include <stdarg.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/cmdline.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <string.h>

extern const struct ktest __ktest_start[], __ktest_end[];

void kt_fail(struct ktest_ctx *t, const char *file, int line, const char *fmt, ...)
{
	if (t->failed++)
		return; /* keep the first reason */
	int n = snprintf(t->reason, sizeof t->reason, "%s:%d: ", file, line);
	if (n >= (int)sizeof t->reason)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->reason + n, sizeof t->reason - (size_t)n, fmt, ap);
	va_end(ap);
}

uint64_t kt_rand(struct ktest_ctx *t)
{
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int in_default_set(const char *suite)
{
	return strncmp(suite, "selftest-", 9) && strncmp(suite, "bench-", 6) &&
	       strncmp(suite, "debug-", 6) && strncmp(suite, "entry-", 6);
}

struct run {
	const struct boot_info *bi;
	uint64_t seed, iters;
	int passed, failed;
};

static void run_one(struct run *r, const struct ktest *kt)
{
	struct ktest_ctx t = { .bi = r->bi, .seed = r->seed, .iters = r->iters };
	int n = r->passed + r->failed + 1;

	t.rng = r->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)n;
	if (!t.rng)
		t.rng = 1;
	uint64_t c0 = arch_cycles();
	kt->fn(&t);
	uint64_t dc = arch_cycles() - c0;
	if (t.failed) {
		r->failed++;
		printf("not ok %d - %s/%s: %s\n", n, kt->suite, kt->name, t.reason);
	} else {
		r->passed++;
		printf("ok %d - %s/%s # %llu Mcycles\n", n, kt->suite, kt->name,
			(unsigned long long)(dc >> 20));
	}
}

/* Run the suites named in spec ("all" or "a,b,c"); returns failures. */
int ktest_run(const struct boot_info *bi, const char *spec)
{
	struct run r = {
		.bi = bi,
		.seed = cmdline_get_u64(bi->cmdline, "seed", 1),
		.iters = cmdline_get_u64(bi->cmdline, "iters", 0),
	};

	printf("# tests: %s seed=%llu iters=%llu\n", spec,
		(unsigned long long)r.seed, (unsigned long long)r.iters);
	if (!strcmp(spec, "all")) {
		for (const struct ktest *kt = __ktest_start; kt < __ktest_end; kt++)
			if (in_default_set(kt->suite))
				run_one(&r, kt);
	} else {
		const char *p = spec;
		while (*p) {
			char suite[48];
			size_t len = 0;
			while (p[len] && p[len] != ',')
				len++;
			if (len >= sizeof suite)
				len = sizeof suite - 1;
			memcpy(suite, p, len);
			suite[len] = '\0';
			p += len;
			if (*p == ',')
				p++;
			int found = 0;
			printf("# suite %s\n", suite);
			for (const struct ktest *kt = __ktest_start; kt < __ktest_end; kt++) {
				if (!strcmp(kt->suite, suite)) {
					found = 1;
					run_one(&r, kt);
				}
			}
			if (!found) {
				r.failed++;
				printf("not ok %d - %s: no such suite\n",
					r.passed + r.failed, suite);
			}
		}
	}
	printf("%d passed, %d failed\n", r.passed, r.failed);
	return r.failed;
}

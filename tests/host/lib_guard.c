/*
 * lib_guard.c - sampled guarded allocations (mm/guard.c) under
 * LD_PRELOAD=build/host/libstrata.so: each case is a child process (this
 * program re-executed with STRATA_SAMPLE set) that commits one bug on a
 * sampled block; the test asserts the report on its stderr and the
 * outcome:
 *
 *   STRATA_SAMPLE=1             every malloc sampled; report, then abort
 *   STRATA_SAMPLE=1,continue    report, and the program goes on (the
 *                               faulting access is retried and succeeds)
 *   STRATA_SAMPLE=0             no sampling: the same bug goes unseen
 *
 * and that the rate holds: with STRATA_SAMPLE=N,seed=S about one
 * allocation in N is guarded (a fixed seed: the count is the same on
 * every run; the bounds are the binomial's, not tuned to that count).
 */
#define _GNU_SOURCE
#include "lib_strata.h"
#include "harness.h"

#include <stdbool.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strata/guard.h>

static char *volatile sink;

/* ---- the bugs (run in the child) ---- */

static void overflow_1(void)
{
	char *p = malloc(32);
	sink = p;
	sink[32] = 1;              /* the first byte past the end: the guard page */
	free(p);
}

static void overflow_odd(void)
{
	char *p = malloc(13);
	sink = p;
	sink[13] = 1;              /* inside the alignment slack: the canary */
	free(p);
}

static void underflow_1(void)
{
	char *p = malloc(32);
	sink = p;
	sink[-1] = 1;              /* the byte before: the canary, seen by free */
	free(p);
}

static void underflow_far(void)
{
	char *p = malloc(32);
	sink = p;
	sink[-4096] = 1;           /* the page before the data page: a guard */
	free(p);
}

static void read_after_free(void)
{
	char *p = malloc(48);
	sink = p;
	free(p);
	fprintf(stderr, "read %d\n", sink[5]);
}

static void write_after_free(void)
{
	char *p = malloc(48);
	sink = p;
	free(p);
	sink[5] = 1;
}

static void double_free(void)
{
	char *p = malloc(64);
	sink = p;
	free(p);
	free(sink);
}

static void interior_free(void)
{
	char *p = malloc(64);
	sink = p + 16;
	free(sink);
}

/* ---- large and aligned requests get slots too ---- */

static void overflow_large(void)
{
	char *p = malloc(20000);   /* 5 pages: a large slot */
	sink = p;
	sink[20000] = 1;
	fprintf(stderr, "accessed\n");
	free(p);
}

static void read_after_free_large(void)
{
	char *p = malloc(20000);
	sink = p;
	free(p);
	fprintf(stderr, "read %d\n", sink[12345]);
	fprintf(stderr, "accessed\n");
}

static void write_after_free_large(void)
{
	char *p = malloc(20000);
	sink = p;
	free(p);
	sink[1] = 1;
	fprintf(stderr, "accessed\n");
}

/* 256-byte alignment kept; the object's end is then up to 255 bytes from
 * the guard page: a 1-byte overflow is found by the canary at free */
static void aligned_overflow(void)
{
	void *v = NULL;
	if (posix_memalign(&v, 256, 100) != 0)
		return;
	sink = v;
	fprintf(stderr, "aligned %s\n", (uintptr_t)v % 256 ? "no" : "yes");
	sink[100] = 1;
	free(v);
}

/* 64-byte alignment of 64 bytes: right against the guard page */
static void aligned_overflow_guard(void)
{
	char *p = aligned_alloc(64, 64);
	sink = p;
	fprintf(stderr, "aligned %s\n", (uintptr_t)p % 64 ? "no" : "yes");
	sink[64] = 1;
	free(p);
}

/* malloc(0): placed as 16 bytes against the guard page, all of them
 * canary (its usable size is 0), so a write into it is found at free */
static void write_zero_size(void)
{
	char *p = malloc(0);
	sink = p;
	fprintf(stderr, "usable %zu\n", malloc_usable_size(p));
	sink[0] = 1;
	fprintf(stderr, "accessed\n");
	free(p);
}

/* realloc of a sampled block to a large size (where realloc first tries
 * in place, KM_NO_MOVE, and must tell a guarded block from a bad pointer):
 * moved, contents kept, not NULL. */
static void realloc_to_large(void)
{
	char *p = malloc(100);
	memset(p, 7, 100);
	char *q = realloc(p, 40000);
	char *r = q ? realloc(q, 1u << 20) : NULL;
	fprintf(stderr, "realloc %s\n", r && r[0] == 7 && r[99] == 7 ? "kept the bytes" : "failed");
	free(r);
}

/* calloc of a sampled block: zeroed, its canary (right after the 13
 * bytes) left alone: the free reports nothing. */
static void calloc_odd(void)
{
	unsigned char *p = calloc(1, 13);
	int zero = 1;
	for (int i = 0; i < 13; i++)
		zero &= p[i] == 0;
	fprintf(stderr, "calloc %s\n", zero ? "zeroed" : "not zeroed");
	free(p);
}

static void null_deref(void)
{
	sink = NULL;
	sink[0] = 1;               /* not ours: the default action (SIGSEGV) */
}

/* The rate: `allocs` allocations of mixed sizes and paths (malloc,
 * calloc, a size over the small classes), each freed at once; prints how
 * many were guarded. */
static void count_guarded(void)
{
	void (*stats)(struct mm_guard_stats *) =
		(void (*)(struct mm_guard_stats *))dlsym(RTLD_DEFAULT, "strata_guard_stats");
	struct mm_guard_stats before, after;
	const unsigned allocs = 200000;
	stats(&before);
	for (unsigned i = 0; i < allocs; i++) {
		char *p = i % 3 == 0 ? malloc(24 + i % 200) : i % 3 == 1 ? calloc(1, 100) : malloc(3000);
		sink = p;
		p[0] = 1;
		free(p);
	}
	stats(&after);
	fprintf(stderr, "guarded %lu sampled %lu of %u\n",
		(unsigned long)(after.guarded - before.guarded),
		(unsigned long)(after.sampled - before.sampled), allocs);
}

static const struct bug {
	const char *name;
	void (*commit)(void);
} bugs[] = {
	{ "overflow_1", overflow_1 },         { "overflow_odd", overflow_odd },
	{ "underflow_1", underflow_1 },       { "underflow_far", underflow_far },
	{ "read_after_free", read_after_free }, { "write_after_free", write_after_free },
	{ "double_free", double_free },       { "interior_free", interior_free },
	{ "null_deref", null_deref },         { "count_guarded", count_guarded },
	{ "overflow_large", overflow_large }, { "read_after_free_large", read_after_free_large },
	{ "write_after_free_large", write_after_free_large },
	{ "aligned_overflow", aligned_overflow }, { "aligned_overflow_guard", aligned_overflow_guard },
	{ "write_zero_size", write_zero_size }, { "realloc_to_large", realloc_to_large },
	{ "calloc_odd", calloc_odd },
};

static int run_case(const char *name)
{
	for (unsigned i = 0; i < sizeof bugs / sizeof bugs[0]; i++)
		if (strcmp(bugs[i].name, name) == 0) {
			fprintf(stderr, "case at %p\n", (void *)bugs[i].commit);
			bugs[i].commit();
			fprintf(stderr, "survived\n");
			return 0;
		}
	return 2;
}

/* ---- the parent: run a case, collect stderr and the outcome ---- */

static char self[4096];
static char out[16384];

/* Status of the child (exit code, or 128 + signal); its stderr in out. */
static int commit(const char *name, const char *sample)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		setenv("STRATA_SAMPLE", sample, 1);
		unsetenv("STRATA_DEBUG");
		alarm(60);         /* a hang is a failure (SIGALRM), not a stuck run */
		execl(self, self, "--case", name, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof out - 1 && (r = read(fd[0], out + n, sizeof out - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

#define ABORTED (128 + SIGABRT)

static void expect(const char *name, const char *sample, const char *text, bool abort_)
{
	int rc = commit(name, sample);
	CHECK(strstr(out, text) != NULL, "%s, STRATA_SAMPLE=%s: no \"%s\" in:\n%s", name, sample,
	      text, out);
	if (abort_)
		CHECK(rc == ABORTED && !strstr(out, "survived"),
		      "%s, STRATA_SAMPLE=%s: status %d, not an abort:\n%s", name, sample, rc, out);
	else
		CHECK(rc == 0 && strstr(out, "survived"),
		      "%s, STRATA_SAMPLE=%s: status %d, did not go on:\n%s", name, sample, rc, out);
}

/* Found with every block sampled (abort; continue goes on), unseen
 * without sampling. */
static void expect_sampled_class(const char *name, const char *text)
{
	expect(name, "1", text, true);
	expect(name, "1,continue", text, false);
	int rc = commit(name, "0");
	CHECK(rc == 0 && !strstr(out, "BUG"), "%s: STRATA_SAMPLE=0: status %d:\n%s", name, rc, out);
}

TEST(one_byte_overflow_faults_at_the_guard_page)
{
	expect_sampled_class("overflow_1", "BUG: buffer overflow (guard page after the block touched)");
	commit("overflow_1", "1");
	CHECK(strstr(out, "guard page fault: write of") && strstr(out, "offset 32 of the 32-byte "
								   "sampled block"),
	      "report does not name the write and the offset:\n%s", out);
}

TEST(overflow_into_the_alignment_slack_found_at_free)
{
	expect_sampled_class("overflow_odd", "BUG: buffer overflow (red zone after the block damaged)");
	commit("overflow_odd", "1");
	CHECK(strstr(out, "(data offset 13)") != NULL, "first damaged byte not named:\n%s", out);
}

TEST(one_byte_underflow_found_at_free)
{
	expect_sampled_class("underflow_1", "BUG: buffer underflow (red zone or header before the block damaged)");
	commit("underflow_1", "1");
	CHECK(strstr(out, "(data offset -1)") != NULL, "first damaged byte not named:\n%s", out);
}

TEST(far_underflow_faults_at_the_guard_page_before)
{
	expect_sampled_class("underflow_far",
			     "BUG: buffer underflow (guard page before the block touched)");
}

TEST(read_after_free_faults)
{
	expect_sampled_class("read_after_free", "BUG: use after free (read of a freed block)");
	commit("read_after_free", "1");
	CHECK(strstr(out, "guard page fault: read of") && strstr(out, "(freed)"),
	      "report does not say read of a freed block:\n%s", out);
}

TEST(write_after_free_faults)
{
	expect_sampled_class("write_after_free", "BUG: use after free (write to a freed block)");
}

TEST(double_free_of_a_sampled_block_reported)
{
	expect("double_free", "1", "a second free of the sampled 64-byte block", true);
	expect("double_free", "1,continue", "BUG: double free", false);
}

TEST(interior_free_of_a_sampled_block_reported)
{
	expect("interior_free", "1", "not the start of the sampled 64-byte block", true);
	expect("interior_free", "1,continue", "BUG: invalid free", false);
}

/* Both call sites are the program's (in the case function), not strata's. */
TEST(report_names_the_allocation_and_free_sites)
{
	commit("write_after_free", "1");
	const char *at = strstr(out, "allocated at ");
	const char *fn = strstr(out, "case at ");
	REQUIRE(at && fn, "no call sites in:\n%s", out);
	unsigned long start = strtoul(fn + 8, NULL, 16);
	char *end;
	unsigned long asite = strtoul(at + 13, &end, 16);
	const char *fr = strstr(end, "freed at ");
	REQUIRE(fr != NULL, "no \"freed at\" in:\n%s", out);
	unsigned long fsite = strtoul(fr + 9, NULL, 16);
	CHECK(asite > start && asite < start + 256, "allocated at %#lx, not in the case at %#lx",
	      asite, start);
	CHECK(fsite > asite && fsite < start + 256, "freed at %#lx, not after the malloc at %#lx",
	      fsite, asite);
}

/* A large request (up to 16 pages) gets a slot of its own: its end against
 * the guard page, the freed slot protected. */
TEST(sampled_large_overflow_faults)
{
	expect_sampled_class("overflow_large", "BUG: buffer overflow (guard page after the block touched)");
	expect("overflow_large", "1", "offset 20000 of the 20000-byte sampled block", true);
	CHECK(!strstr(out, "accessed"), "went past the overflow:\n%s", out);
}

TEST(sampled_large_use_after_free_faults)
{
	expect_sampled_class("read_after_free_large", "BUG: use after free (read of a freed block)");
	expect("read_after_free_large", "1", "offset 12345 of the 20000-byte sampled block", true);
	CHECK(!strstr(out, "accessed"), "went past the read:\n%s", out);
	expect_sampled_class("write_after_free_large", "BUG: use after free (write to a freed block)");
	expect("write_after_free_large", "1", "(freed)", true);
	CHECK(!strstr(out, "accessed"), "went past the write:\n%s", out);
}

/* posix_memalign / aligned_alloc are sampled, with the alignment kept. */
TEST(sampled_aligned_blocks)
{
	expect_sampled_class("aligned_overflow", "BUG: buffer overflow (red zone after the block damaged)");
	CHECK(strstr(out, "aligned yes"), "alignment lost:\n%s", out);
	expect("aligned_overflow", "1", "aligned yes", true);
	CHECK(strstr(out, "(data offset 100)"), "first damaged byte not named:\n%s", out);
	expect_sampled_class("aligned_overflow_guard", "BUG: buffer overflow (guard page after the block touched)");
	expect("aligned_overflow_guard", "1", "aligned yes", true);
}

/* A sampled block grown by realloc to a large size moves and keeps its
 * bytes (STRATA_SAMPLE=1: the new block is sampled too). */
TEST(sampled_block_realloc_to_large_size)
{
	expect("realloc_to_large", "1", "realloc kept the bytes", false);
}

/* calloc zeroes a sampled block's bytes, not its canary. */
TEST(sampled_calloc_is_zeroed_and_keeps_its_canary)
{
	expect("calloc_odd", "1", "calloc zeroed", false);
	CHECK(!strstr(out, "BUG"), "calloc of a sampled block reported:\n%s", out);
}

/* A sampled malloc(0) has no byte to write: a write is found at free. */
TEST(sampled_zero_size_block_write_reported)
{
	expect_sampled_class("write_zero_size", "BUG: buffer overflow (red zone after the block damaged)");
	expect("write_zero_size", "1", "block of 0 bytes asked for", true);
	CHECK(strstr(out, "usable 0\n") && strstr(out, "(data offset 0)"),
	      "usable size not 0 or first byte not named:\n%s", out);
}

/* A fault that is not in the guard pool goes on to the default action. */
TEST(other_faults_are_not_ours)
{
	int rc = commit("null_deref", "1");
	CHECK(rc == 128 + SIGSEGV && !strstr(out, "BUG"), "status %d:\n%s", rc, out);
}

/* One in N: 200000 allocations, N = 100 and 1000, fixed seeds.  Bounds:
 * the mean +- 5 standard deviations of a count with that mean. */
static void expect_rate(unsigned n, const char *spec)
{
	int rc = commit("count_guarded", spec);
	const char *g = strstr(out, "guarded ");
	REQUIRE(rc == 0 && g, "STRATA_SAMPLE=%s: status %d:\n%s", spec, rc, out);
	unsigned long guarded = strtoul(g + 8, NULL, 10);
	double mean = 200000.0 / n, sd = mean;
	for (int i = 0; i < 40; i++)       /* sqrt(mean), Newton (no libm) */
		sd = (sd + mean / sd) / 2;
	CHECK(guarded > mean - 5 * sd && guarded < mean + 5 * sd,
	      "STRATA_SAMPLE=%s: %lu guarded, expected %.0f +- %.0f", spec, guarded, mean, 5 * sd);
}

TEST(about_one_allocation_in_n_is_guarded)
{
	expect_rate(100, "100,seed=7");
	expect_rate(1000, "1000,seed=7");
	expect_rate(100, "100,seed=12345");
}

/* The number after "=" on the STRATA_STATS line that starts with label
 * (digits with thousands commas), or -1. */
static long stats_value(const char *label)
{
	const char *l = strstr(out, label), *e = l ? strchr(l, '=') : NULL;
	if (!e)
		return -1;
	long v = 0;
	for (e++; *e == ' ' || *e == ',' || (*e >= '0' && *e <= '9'); e++)
		if (*e >= '0' && *e <= '9')
			v = v * 10 + (*e - '0');
	return v;
}

/* STRATA_STATS prints the sampling counts: the case's own guarded count
 * and at most a few of the runtime's allocations around it. */
TEST(stats_show_the_sampled_counts)
{
	setenv("STRATA_STATS", "1", 1);
	int rc = commit("count_guarded", "1000,seed=7");
	unsetenv("STRATA_STATS");
	const char *g = strstr(out, "guarded ");
	REQUIRE(rc == 0 && g, "status %d:\n%s", rc, out);
	long own = strtol(g + 8, NULL, 10);
	long sampled = stats_value("# sampled allocations (1 in 1000)");
	long guarded = stats_value("#   given a guarded slot");
	long live = stats_value("# guarded blocks live");
	CHECK(sampled >= own && guarded >= own && guarded <= own + 8 && sampled >= guarded,
	      "case guarded %ld; stats: sampled %ld, guarded %ld:\n%s", own, sampled, guarded, out);
	CHECK(live >= 0 && live <= 8, "%ld guarded blocks live at exit:\n%s", live, out);
}

TEST(default_rate_is_on)
{
	if (getenv("STRATA_SAMPLE"))
		return;       /* the parent's own setting, not the default */
	void (*stats)(struct mm_guard_stats *) =
		(void (*)(struct mm_guard_stats *))dlsym(RTLD_DEFAULT, "strata_guard_stats");
	REQUIRE(stats != NULL, "no strata_guard_stats");
	struct mm_guard_stats st;
	stats(&st);
	CHECK(st.rate == MM_GUARD_DEFAULT_RATE, "rate %u, not the default %u", st.rate,
	      MM_GUARD_DEFAULT_RATE);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--case") == 0)
		return run_case(argv[2]);
	struct strata_api api;
	if (!strata_api_get(&api)) {
		fprintf(stderr, "not under strata (run with LD_PRELOAD=build/host/libstrata.so)\n");
		return 1;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	return harness_main(argc, argv);
}

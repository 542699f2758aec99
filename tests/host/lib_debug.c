/*
 * lib_debug.c - heap bugs committed under LD_PRELOAD=build/host/libstrata.so
 * (issue 16): each case is a child process (this program re-executed with
 * STRATA_DEBUG set) that commits one bug; the test asserts the report on
 * its stderr and the outcome:
 *
 *   default (STRATA_DEBUG unset)   report, then abort (SIGABRT), as glibc
 *   STRATA_DEBUG=continue          report, and the program goes on
 *   STRATA_DEBUG=all[,continue]    debug mode: red zones, poison, quarantine
 *                                  (checked on release and at exit)
 *
 * The classes of the default build (double and invalid frees, bad realloc
 * pointers) are asserted in both outcomes; those only debug mode sees
 * (1-byte overflow, write after free) under STRATA_DEBUG=all, and shown
 * missed by the default build, so that the test tells the modes apart.
 */
#define _GNU_SOURCE
#include "lib_strata.h"
#include "harness.h"
#include "lib_cases.h"

#include <stdbool.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

/* ---- the bugs (run in the child) ---- */

static void double_free_small(void)
{
	char *p = malloc(24);
	free(p);
	free(p);
}

static void double_free_large(void)
{
	char *p = malloc(1 << 20);
	free(p);
	free(p);
}

static void interior_free(void)
{
	char *p = malloc(64);
	sink = p;
	free(p + 16);
}

static void stack_free(void)
{
	int x;
	sink = &x;
	free(sink);
}

static void realloc_bad(void)
{
	sink = realloc((void *)1, 8);
}

static void overflow_small(void)
{
	char *p = malloc(24);
	sink = p;
	p[24] = 1;                 /* one byte past the end */
	free(p);
}

static void write_after_free(void)
{
	char *p = malloc(40);
	free(p);
	p[3] = 1;                  /* found in the quarantine, at exit at the latest */
}

static void overflow_large(void)
{
	char *p = malloc(100000);
	sink = p;
	p[100000] = 1;
	free(p);
}

static void write_after_free_large(void)
{
	char *p = malloc(100000);
	free(p);
	p[5] = 1;
}

static void malloc0_write(void)
{
	char *p = malloc(0);
	sink = p;
	p[0] = 1;                  /* every byte of a malloc(0) block is red zone */
	free(p);
}

static void usable_size_after_free(void)
{
	char *p = malloc(24);
	free(p);
	sink = (void *)malloc_usable_size(p);
}

/* ---- callers: every C name passes its own caller down ---- */

static void calloc_overflow(void)
{
	char *p = calloc(3, 8);
	sink = p;
	p[24] = 1;
	free(p);
}

static void realloc_overflow(void)
{
	char *p = malloc(8);
	p = realloc(p, 24);        /* debug blocks move: a new block, realloc's */
	sink = p;
	p[24] = 1;
	free(p);
}

/* A large block shrunk by realloc in debug mode moves too: its guard page
 * then follows the new size (libstrata's realloc first tries a large
 * size in place, KM_NO_MOVE, which a debug block never is). */
static void realloc_shrink_large_overflow(void)
{
	char *p = malloc(100000);
	p = realloc(p, 50000);
	sink = p;
	p[50000] = 1;
	free(p);
}

static void memalign_overflow(void)
{
	char *p = memalign(16, 24);
	sink = p;
	p[24] = 1;
	free(p);
}

static void aligned_alloc_overflow(void)
{
	char *p = aligned_alloc(16, 32);
	sink = p;
	p[32] = 1;
	free(p);
}

static void posix_memalign_overflow(void)
{
	void *v;
	if (posix_memalign(&v, 16, 24) != 0)
		return;
	char *p = v;
	sink = p;
	p[24] = 1;
	free(p);
}

static void usable_size_interior(void)
{
	char *p = malloc(64);
	sink = p;
	sink = (void *)malloc_usable_size(p + 16);
}

static void realloc_after_free(void)
{
	char *p = malloc(24);
	free(p);
	sink = realloc(p, 48);
}

/* 1 GiB into strata's reservation: above anything mapped yet */
static void free_in_heap_span(void)
{
	char *p = malloc(8);
	sink = p;
	free(p + ((size_t)1 << 30));
}

/* ---- overflows of 8 bytes, large blocks beyond the quarantine ---- */

static void overflow8_small(void)
{
	char *p = malloc(24);
	sink = p;
	memset(p + 24, 1, 8);
	free(p);
}

static void overflow8_large(void)
{
	char *p = malloc(100000);
	sink = p;
	memset(p + 100000, 1, 8);
	free(p);
}

/* ---- large blocks (runs of pages): data against a guard page, freed
 * runs protected in the quarantine; "accessed" after the bad access
 * shows whether the program got past it ---- */

static void overflow1_large_slack(void)
{
	char *p = malloc(100001);  /* 15 bytes of slack before the guard page */
	sink = p;
	p[100001] = 1;
	fprintf(stderr, "accessed\n");
	free(p);
}

static void overflow8_large_slack(void)
{
	char *p = malloc(100004);  /* 12 bytes of slack */
	sink = p;
	memset(p + 100004, 1, 8);
	fprintf(stderr, "accessed\n");
	free(p);
}

/* two runs one after the other: the first one's overflow faults, it does
 * not land in the second */
static void overflow_large_neighbours(void)
{
	char *p = malloc(10 * 4096), *q = malloc(10 * 4096);   /* above the classes: runs */
	sink = q;
	p[10 * 4096 + 7] = 1;
	fprintf(stderr, "accessed\n");
	free(p);
	free(q);
}

static void read_after_free_large(void)
{
	char *p = malloc(100000);
	p[70000] = 5;
	free(p);
	fprintf(stderr, "read %d\n", ((volatile char *)p)[70000]);
	fprintf(stderr, "accessed\n");
}

static void write_after_free_large_now(void)
{
	char *p = malloc(100000);
	free(p);
	p[5] = 1;
	fprintf(stderr, "accessed\n");
}

/* 8 MiB: more than the quarantine's 4 MiB, waits in it all the same */
static void write_after_free_huge(void)
{
	char *p = malloc(8 << 20);
	free(p);
	p[7 << 20] = 1;
}

/* ---- zero on free (O) ---- */

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void fresh_blocks_zero(void)
{
	unsigned char *p = malloc(64);
	memset(p, 0xab, 64);
	free(p);
	unsigned char *q = malloc(64), *e = malloc(8);
	fprintf(stderr, "fresh block %s\n", all_zero(q, 64) && all_zero(e, 8) ? "zero" : "not zero");
	free(q);
	free(e);
}

static void write_after_free_reuse(void)
{
	char *p = malloc(40);
	free(p);
	p[20] = 1;                 /* after its release: found when reused */
	sink = malloc(40);
}

static const struct lib_case bugs[] = {
	{ "calloc_overflow", calloc_overflow },     { "realloc_overflow", realloc_overflow },
	{ "realloc_shrink_large_overflow", realloc_shrink_large_overflow },
	{ "memalign_overflow", memalign_overflow }, { "aligned_alloc_overflow", aligned_alloc_overflow },
	{ "posix_memalign_overflow", posix_memalign_overflow },
	{ "usable_size_interior", usable_size_interior },
	{ "realloc_after_free", realloc_after_free }, { "free_in_heap_span", free_in_heap_span },
	{ "overflow8_small", overflow8_small },     { "overflow8_large", overflow8_large },
	{ "write_after_free_huge", write_after_free_huge },
	{ "overflow1_large_slack", overflow1_large_slack },
	{ "overflow8_large_slack", overflow8_large_slack },
	{ "overflow_large_neighbours", overflow_large_neighbours },
	{ "read_after_free_large", read_after_free_large },
	{ "write_after_free_large_now", write_after_free_large_now },
	{ "fresh_blocks_zero", fresh_blocks_zero }, { "write_after_free_reuse", write_after_free_reuse },
	{ "double_free_small", double_free_small }, { "double_free_large", double_free_large },
	{ "interior_free", interior_free },         { "stack_free", stack_free },
	{ "realloc_bad", realloc_bad },             { "overflow_small", overflow_small },
	{ "write_after_free", write_after_free },   { "overflow_large", overflow_large },
	{ "write_after_free_large", write_after_free_large },
	{ "malloc0_write", malloc0_write },         { "usable_size_after_free", usable_size_after_free },
	{ NULL, NULL }
};

static void expect_default_class(const char *name, const char *text)
{
	expect(name, NULL, text, true);
	CHECK(!strstr(out, "survived"), "%s: did not stop at the bug", name);
	expect(name, "abort", text, true);
	expect(name, "continue", text, false);
	expect(name, "all", text, true);
}

TEST(double_free_small_reported_aborts)
{
	expect_default_class("double_free_small", "double free");
}

TEST(double_free_large_reported_aborts)
{
	expect_default_class("double_free_large", "double free");
}

TEST(interior_free_reported_aborts)
{
	expect_default_class("interior_free", "not the start of a block");
}

TEST(stack_free_reported_aborts)
{
	expect_default_class("stack_free", "not in managed RAM");
}

TEST(realloc_bad_pointer_reported_aborts)
{
	expect("realloc_bad", NULL, "krealloc(0x1): not in managed RAM", true);
	expect("realloc_bad", "continue", "krealloc(0x1): not in managed RAM", false);
}

TEST(usable_size_of_freed_block_reported_as_such)
{
	expect("usable_size_after_free", NULL, "its size asked after free: use after free", true);
	CHECK(!strstr(out, "(double free)"), "reported as a double free:\n%s", out);
	expect("usable_size_after_free", "continue", "its size asked after free", false);
}

/* Debug mode's classes: missed by default (the program goes on), found
 * with STRATA_DEBUG=all (abort) and all,continue (goes on). */
static void expect_debug_class(const char *name, const char *text)
{
	int rc = commit(name, NULL);
	CHECK(rc == 0 && !strstr(out, "BUG"), "%s: default build %d:\n%s", name, rc, out);
	expect(name, "all", text, true);
	expect(name, "FZPUQ,continue", text, false);
}

TEST(overflow_small_found_by_debug_mode)
{
	expect_debug_class("overflow_small", "BUG: buffer overflow (red zone after the block damaged)");
}

/* "allocated at" names the program's call of malloc, not libstrata. */
TEST(debug_report_names_the_programs_malloc_call)
{
	commit("overflow_small", "all");
	expect_site_in_case("overflow_small", "allocated at ", 256);
}

TEST(write_after_free_found_by_debug_mode)
{
	expect_debug_class("write_after_free", "BUG: use after free (write to a freed block)");
}

/* A large block's end is against its guard page: the first byte past a
 * size that is a multiple of 16 faults at once. */
#define GUARD_HIT "BUG: buffer overflow (guard page after the block touched)"

TEST(overflow_large_found_by_debug_mode)
{
	expect_debug_class("overflow_large", GUARD_HIT);
	expect("overflow_large", "all", "strata: guard page fault: write of ", true);
	CHECK(strstr(out, "offset 100000 of the 100000-byte debug block at ") &&
	      strstr(out, "(in use)"), "fault line does not name the block:\n%s", out);
	expect_site_in_case("overflow_large", "allocated at ", 256);
	expect_site_in_case("overflow_large", "found by the call from ", 256);
}

TEST(write_after_free_large_found_by_debug_mode)
{
	expect_debug_class("write_after_free_large", "BUG: use after free (write to a freed block)");
}

TEST(malloc0_write_found_by_debug_mode)
{
	expect_debug_class("malloc0_write", "BUG: buffer overflow (red zone after the block damaged)");
}

/* ---- callers ---- */

/* Every allocating C name: "allocated at" is the program's call. */
TEST(every_c_name_reports_its_own_caller)
{
	static const char *const cases[] = {
		"calloc_overflow", "realloc_overflow", "memalign_overflow",
		"aligned_alloc_overflow", "posix_memalign_overflow",
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		expect(cases[i], "all", "BUG: buffer overflow", true);
		expect_site_in_case(cases[i], "allocated at ", 256);
	}
}

/* free's caller: "freed at" and "found by" of a double free, the bad-free
 * line's caller; malloc_usable_size's too. */
TEST(free_and_usable_size_report_their_caller)
{
	expect("double_free_small", "all", "BUG: double free", true);
	expect_site_in_case("double_free_small", "freed at ", 256);
	expect_site_in_case("double_free_small", "found by the call from ", 256);
	expect("stack_free", NULL, "not in managed RAM", true);
	expect_site_in_case("stack_free", ", caller ", 256);
	expect("usable_size_after_free", NULL, "use after free", true);
	expect_site_in_case("usable_size_after_free", ", caller ", 256);
}

/* ---- report kinds ---- */

TEST(pointer_in_heap_span_reported_as_such)
{
	expect("free_in_heap_span", NULL, "inside strata's heap span, but in no block", true);
	CHECK(!strstr(out, "not in managed RAM"), "called unmanaged:\n%s", out);
	expect("free_in_heap_span", "continue", "inside strata's heap span, but in no block", false);
}

TEST(bad_realloc_reported_once)
{
	expect("realloc_bad", "continue", "krealloc(0x1)", false);
	CHECK(count_in_out("strata: krealloc(0x1)") == 1, "%d reports:\n%s",
	      count_in_out("strata: krealloc(0x1)"), out);
}

/* In debug mode a bad realloc or usable-size pointer is a bug: the
 * policy (abort, continue) holds as for free. */
TEST(bad_realloc_and_usable_size_get_the_debug_policy)
{
	expect("realloc_bad", "all", "BUG: invalid pointer (realloc or usable size of no block)", true);
	expect("realloc_bad", "all,continue", "BUG: invalid pointer", false);
	expect("usable_size_interior", "all", "BUG: invalid pointer", true);
	expect("usable_size_interior", "all,continue", "BUG: invalid pointer", false);
	expect("realloc_after_free", "all",
	       "BUG: use after free (realloc or usable size of a freed block)", true);
	expect("realloc_after_free", "all,continue", "BUG: use after free (realloc", false);
	expect("realloc_after_free", NULL, "krealloc of a freed block: use after free", true);
}

/* ---- debug mode's classes ---- */

TEST(overflow8_found_by_debug_mode)
{
	expect_debug_class("overflow8_small", "BUG: buffer overflow (red zone after the block damaged)");
	expect_debug_class("overflow8_large", GUARD_HIT);
}

TEST(overflow_after_a_large_realloc_shrink_found_by_debug_mode)
{
	expect_debug_class("realloc_shrink_large_overflow", GUARD_HIT);
	CHECK(strstr(out, "offset 50000 of the 50000-byte debug block"), "not the new block:\n%s",
	      out);
}

/* The few bytes of slack before the guard page are red zone, checked on
 * free: the bad write itself goes through ("accessed"), free reports. */
TEST(overflow_into_large_slack_found_at_free)
{
	static const char *const cases[] = { "overflow1_large_slack", "overflow8_large_slack" };
	for (unsigned i = 0; i < 2; i++) {
		expect_debug_class(cases[i], "BUG: buffer overflow (red zone after the block damaged)");
		expect(cases[i], "all", "accessed\n", true);
	}
	CHECK(strstr(out, "(data offset 100004)"), "first damaged byte not named:\n%s", out);
}

/* Two large runs never touch unguarded: an overflow of the first stops
 * at its guard page, at the access. */
TEST(adjacent_large_runs_are_guarded)
{
	expect_debug_class("overflow_large_neighbours", GUARD_HIT);
	expect("overflow_large_neighbours", "all", "offset 40967 of the 40960-byte", true);
	CHECK(!strstr(out, "accessed"), "went past the overflow:\n%s", out);
}

/* A freed large block waits protected in the quarantine: a read or a
 * write after free faults at the access (not at exit), naming the block
 * and both call sites; continue retries the access and goes on. */
static void expect_large_use_after_free(const char *name, const char *text, const char *access)
{
	expect_debug_class(name, text);
	CHECK(strstr(out, "accessed\n") && strstr(out, text) < strstr(out, "accessed\n"),
	      "%s: not reported at the access:\n%s", name, out);
	expect(name, "all", text, true);
	CHECK(!strstr(out, "accessed"), "%s: went past the access:\n%s", name, out);
	CHECK(strstr(out, access) && strstr(out, "-byte debug block at ") &&
	      strstr(out, "(freed, in the quarantine)"), "%s: fault line:\n%s", name, out);
	expect_site_in_case(name, "allocated at ", 256);
	expect_site_in_case(name, "freed at ", 256);
	expect_site_in_case(name, "found by the call from ", 256);
}

TEST(read_after_free_large_faults_in_debug_mode)
{
	expect_large_use_after_free("read_after_free_large",
				    "BUG: use after free (read of a freed block)", "fault: read of ");
}

TEST(write_after_free_large_faults_in_debug_mode)
{
	expect_large_use_after_free("write_after_free_large_now",
				    "BUG: use after free (write to a freed block)", "fault: write of ");
}

TEST(write_after_free_of_block_beyond_quarantine_found)
{
	expect_debug_class("write_after_free_huge", "BUG: use after free (write to a freed block)");
}

/* O: freed blocks zeroed, a fresh block reads as zeroes (not the old
 * data, not the 0xCD of P). */
TEST(zero_on_free_gives_zero_blocks)
{
	commit("fresh_blocks_zero", NULL);
	CHECK(strstr(out, "fresh block not zero"), "default mode zeroes already?\n%s", out);
	commit("fresh_blocks_zero", "all");
	CHECK(strstr(out, "fresh block not zero"), "all zeroes already?\n%s", out);
	expect("fresh_blocks_zero", "O", "fresh block zero\n", false);
	CHECK(!strstr(out, "BUG"), "reported:\n%s", out);
	expect("fresh_blocks_zero", "all,O", "fresh block zero\n", false);
}

/* O: a write after the block left the quarantine (here: no quarantine)
 * is found when the block is handed out again. */
TEST(zero_on_free_checked_on_reuse)
{
	commit("write_after_free_reuse", "FZPU");
	CHECK(!strstr(out, "BUG"), "found without O?\n%s", out);
	expect("write_after_free_reuse", "O", "BUG: use after free (write to a freed block)", true);
	CHECK(strstr(out, "is not zero when handed out again"), "no reuse line:\n%s", out);
	expect("write_after_free_reuse", "O,continue", "BUG: use after free", false);
	expect_site_in_case("write_after_free_reuse", "found by the call from ", 256);
}

int main(int argc, char **argv)
{
	return lib_cases_main(bugs, argc, argv);
}

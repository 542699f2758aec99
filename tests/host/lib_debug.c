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

static const struct bug {
	const char *name;
	void (*commit)(void);
} bugs[] = {
	{ "double_free_small", double_free_small }, { "double_free_large", double_free_large },
	{ "interior_free", interior_free },         { "stack_free", stack_free },
	{ "realloc_bad", realloc_bad },             { "overflow_small", overflow_small },
	{ "write_after_free", write_after_free },   { "overflow_large", overflow_large },
	{ "write_after_free_large", write_after_free_large },
	{ "malloc0_write", malloc0_write },         { "usable_size_after_free", usable_size_after_free },
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
static int commit(const char *name, const char *debug)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		if (debug)
			setenv("STRATA_DEBUG", debug, 1);
		else
			unsetenv("STRATA_DEBUG");
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

/* The case reports `text` and aborts (abort: at the bug, or for a bug
 * found at exit, then) or goes on to the end. */
static void expect(const char *name, const char *debug, const char *text, bool abort_)
{
	int rc = commit(name, debug);
	CHECK(strstr(out, text) != NULL, "%s, STRATA_DEBUG=%s: no \"%s\" in:\n%s", name,
	      debug ? debug : "(unset)", text, out);
	if (abort_)
		CHECK(rc == ABORTED,
		      "%s, STRATA_DEBUG=%s: status %d, not an abort", name, debug ? debug : "(unset)", rc);
	else
		CHECK(rc == 0 && strstr(out, "survived"),
		      "%s, STRATA_DEBUG=%s: status %d, did not go on", name, debug ? debug : "(unset)", rc);
}

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
	const char *at = strstr(out, "allocated at ");
	REQUIRE(at != NULL, "no \"allocated at\" in:\n%s", out);
	const char *fn = strstr(out, "case at ");
	REQUIRE(fn != NULL, "no \"case at\" in:\n%s", out);
	/* the child's addresses (its own load address): the call of malloc
	 * lies in overflow_small(), a few dozen bytes into it */
	unsigned long site = strtoul(at + 13, NULL, 16), start = strtoul(fn + 8, NULL, 16);
	CHECK(site > start && site < start + 256, "allocated at %#lx, not in overflow_small() at %#lx",
	      site, start);
}

TEST(write_after_free_found_by_debug_mode)
{
	expect_debug_class("write_after_free", "BUG: use after free (write to a freed block)");
}

TEST(overflow_large_found_by_debug_mode)
{
	expect_debug_class("overflow_large", "BUG: buffer overflow (red zone after the block damaged)");
}

TEST(write_after_free_large_found_by_debug_mode)
{
	expect_debug_class("write_after_free_large", "BUG: use after free (write to a freed block)");
}

TEST(malloc0_write_found_by_debug_mode)
{
	expect_debug_class("malloc0_write", "BUG: buffer overflow (red zone after the block damaged)");
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

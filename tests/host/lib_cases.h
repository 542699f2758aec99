/*
 * lib_cases.h - bugs committed in child processes, for the lib_* tests
 * run under LD_PRELOAD=build/host/libstrata.so (lib_debug.c, lib_cxx.cc).
 *
 * The program re-executes itself as `prog --case NAME` with STRATA_DEBUG
 * set as asked; the child prints "case at <address of the case's
 * function>", commits the bug, prints "survived" if it got that far.  The
 * parent keeps the child's stderr in `out` and asserts the report and the
 * outcome: an abort (SIGABRT) or going on to the end.
 */
#ifndef TESTS_HOST_LIB_CASES_H
#define TESTS_HOST_LIB_CASES_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "lib_strata.h"

struct lib_case {
	const char *name;
	void (*commit)(void);
};

/* In the child: run the case `name` of the NULL-terminated table. */
static int run_case(const struct lib_case *cases, const char *name)
{
	for (const struct lib_case *c = cases; c->name; c++)
		if (strcmp(c->name, name) == 0) {
			fprintf(stderr, "case at %p\n", (void *)c->commit);
			c->commit();
			fprintf(stderr, "survived\n");
			return 0;
		}
	return 2;
}

static char self[4096];
static char out[16384];

static bool find_self(void)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return false;
	self[n] = 0;
	return true;
}

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

/* How many times `text` occurs in out. */
static inline int count_in_out(const char *text)
{
	int n = 0;
	for (const char *s = out; (s = strstr(s, text)) != NULL; s += strlen(text))
		n++;
	return n;
}

/* The address printed after `label` (e.g. "allocated at ") in the last
 * child's report lies in the case's own function (its first `span`
 * bytes): the report names the program's call, not libstrata's. */
static inline void expect_site_in_case(const char *name, const char *label, unsigned long span)
{
	const char *at = strstr(out, label);
	const char *fn = strstr(out, "case at ");
	CHECK(at && fn, "%s: no \"%s\" or \"case at\" in:\n%s", name, label, out);
	if (!at || !fn)
		return;
	unsigned long site = strtoul(at + strlen(label), NULL, 16);
	unsigned long start = strtoul(fn + 8, NULL, 16);
	CHECK(site > start && site < start + span, "%s: %s%#lx, not in the case's function at %#lx:\n%s",
	      name, label, site, start, out);
}

/* main(): `--case NAME` runs a case (the child); otherwise the tests,
 * under strata only. */
static inline int lib_cases_main(const struct lib_case *cases, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--case") == 0)
		return run_case(cases, argv[2]);
	struct strata_api api;
	if (!strata_api_get(&api)) {
		fprintf(stderr, "not under strata (run with LD_PRELOAD=build/host/libstrata.so)\n");
		return 1;
	}
	if (!find_self())
		return 1;
	return harness_main(argc, argv);
}

#endif

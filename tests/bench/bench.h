/*
 * bench.h - what every host benchmark shares (header only).
 *
 * Instruction counts come from callgrind, so they are repeatable:
 *
 *   bench (outer)                          bench --inner (under valgrind)
 *   -------------                          ------------------------------
 *   bench_callgrind_self(self, dir) ─────► for each workload:
 *                                            warm up; CALLGRIND_ZERO_STATS;
 *                                            loop N; CALLGRIND_DUMP_STATS_AT(name)
 *   bench_dump_ir(dir, name) / N  ◄──────  one dump file per workload in dir
 *   bench_rmdir(dir)
 *
 * Without valgrind's headers the client requests compile to nothing and
 * only wall-clock figures are printed.
 */
#ifndef TESTS_BENCH_BENCH_H
#define TESTS_BENCH_BENCH_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) (void)(s)
#endif

static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* xorshift64*, fixed seed: every run does the same work */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

/* Ir total of the callgrind dump triggered by CALLGRIND_DUMP_STATS_AT(name)
 * in dir/cg.*, or -1 if there is none. */
static inline double bench_dump_ir(const char *dir, const char *name)
{
	char path[512], line[512], want[256];
	snprintf(want, sizeof want, "desc: Trigger: Client Request: %s\n", name);
	for (int i = 1; i < 64; i++) {
		snprintf(path, sizeof path, "%s/cg.%d", dir, i);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int match = 0;
		double ir = -1;
		while (fgets(line, sizeof line, f)) {
			if (!strcmp(line, want))
				match = 1;
			if (!strncmp(line, "summary: ", 9) || !strncmp(line, "totals: ", 8))
				ir = strtod(strchr(line, ' ') + 1, NULL);
		}
		fclose(f);
		if (match)
			return ir;
	}
	return -1;
}

/* Run `self --inner` under callgrind with its dumps in dir (a mkdtemp
 * template, filled in).  0 when it ran and exited 0, else -1. */
static inline int bench_callgrind_self(const char *self, char *dir)
{
	if (!mkdtemp(dir))
		return -1;
	char out[600];
	snprintf(out, sizeof out, "--callgrind-out-file=%s/cg", dir);
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		dup2(devnull, 1);
		execlp("valgrind", "valgrind", "--tool=callgrind", out, self, "--inner",
		       (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static inline void bench_rmdir(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd))
		(void)0;
}

#endif

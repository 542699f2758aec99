/*
 * lib_strata.h - what the lib_*.c tests (run under
 * LD_PRELOAD=build/host/libstrata.so) need from the preloaded library:
 * its test-only exports, looked up with dlsym so that the programs also
 * link (and report "not under strata") without it.
 */
#ifndef TESTS_HOST_LIB_STRATA_H
#define TESTS_HOST_LIB_STRATA_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <strata/kmalloc.h>

struct strata_api {
	unsigned long (*release_count)(unsigned long *bytes);
	unsigned (*thread_slot)(unsigned *slots_in_use);
	void (*kmalloc_stats)(struct kmalloc_stats *st);
	double (*init_seconds)(unsigned long long *metadata_bytes);
};

static inline int strata_api_get(struct strata_api *a)
{
	a->release_count = (unsigned long (*)(unsigned long *))dlsym(RTLD_DEFAULT, "strata_release_count");
	a->thread_slot = (unsigned (*)(unsigned *))dlsym(RTLD_DEFAULT, "strata_thread_slot");
	a->kmalloc_stats = (void (*)(struct kmalloc_stats *))dlsym(RTLD_DEFAULT, "strata_kmalloc_stats");
	a->init_seconds = (double (*)(unsigned long long *))dlsym(RTLD_DEFAULT, "strata_init_seconds");
	return a->release_count && a->thread_slot && a->kmalloc_stats && a->init_seconds;
}

/* Run fn(arg) in a child process (its own process group) and wait at most
 * `seconds` for it.  Returns its exit status, 128 + the signal that ended
 * it, or -1 if it did not finish in time: then the whole group is killed,
 * so that a hang is a failure and not a stuck test run. */
static inline int run_bounded(int (*fn)(void *), void *arg, int seconds)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -2;
	if (pid == 0) {
		setpgid(0, 0);
		_exit(fn(arg));
	}
	setpgid(pid, pid);
	struct timespec t0, t, nap = { 0, 2 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= seconds) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
}
#endif

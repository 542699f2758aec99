/*
 * lib_forksig.c - fork() from a signal handler, nested forks, and fork
 * while other threads allocate, on libstrata.so (issue 14).
 *
 * The signal case: the parent forks a child, the child sends SIGALRM to
 * the parent and exits, and the parent's handler forks again (that child
 * exits at once).  The signal may arrive while the parent is still inside
 * the first fork(), after the atfork prepare handler took strata's locks:
 * a handler's fork() that takes them again spins for ever.  Under the
 * library of main (before issue 14) this hung in about half of the runs,
 * so every case here runs a few hundred rounds, in a child process that
 * run_bounded() kills when it takes too long: a hang is a failure, never
 * a stuck test run.  Each case runs single-threaded (glibc takes no
 * malloc lock then) and with threads allocating all the while (the locks
 * are taken; signals must wait until they are dropped).  The threads
 * block SIGALRM, so that it reaches the forking thread, inside fork() or
 * not, and never a thread inside malloc (forking from a handler that
 * interrupted malloc is unsafe with any malloc).
 */
#include "lib_strata.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 300
#define TIMEOUT_S 30

static volatile sig_atomic_t handler_forks, handler_fork_errors;

static void fork_in_handler(int sig)
{
	(void)sig;
	int saved = errno;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0)
		handler_fork_errors++;
	else if (waitpid(p, NULL, 0) == p)
		handler_forks++;
	errno = saved;
}

/* Threads that allocate, free and touch memory until told to stop. */
static atomic_int stop_busy;

static void *busy(void *arg)
{
	/* the signal goes to the forking thread: a handler that interrupts
	 * malloc and forks may deadlock with any malloc (glibc's too), which
	 * is not what is tested here */
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alrm, NULL);
	uint64_t x = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
	void *v[64] = { 0 };
	while (!atomic_load(&stop_busy)) {
		for (int i = 0; i < 64; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			free(v[i]);
			size_t n = x % 5000 + 1;
			v[i] = malloc(n);
			if (v[i])
				memset(v[i], (int)i, n < 64 ? n : 64);
		}
	}
	for (int i = 0; i < 64; i++)
		free(v[i]);
	return NULL;
}

struct busy_set {
	pthread_t t[4];
	int n;
};

static int start_busy(struct busy_set *b, int n)
{
	atomic_store(&stop_busy, 0);
	b->n = 0;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&b->t[i], NULL, busy, (void *)(intptr_t)(i + 1)) != 0)
			return -1;
		b->n++;
	}
	return 0;
}

static void stop_busy_threads(struct busy_set *b)
{
	atomic_store(&stop_busy, 1);
	for (int i = 0; i < b->n; i++)
		pthread_join(b->t[i], NULL);
}

static pid_t wait_child(pid_t c, int *st)
{
	pid_t r;
	while ((r = waitpid(c, st, 0)) < 0 && errno == EINTR)
		;
	return r;
}

/* The run: fork, the child signals the parent, the handler forks. */
static int signal_fork_rounds(void *arg)
{
	int nthreads = (int)(intptr_t)arg;
	struct busy_set b;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fork_in_handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	if (start_busy(&b, nthreads) != 0)
		return 10;
	for (int i = 0; i < ROUNDS; i++) {
		char *p = malloc((size_t)i * 7 + 1);    /* the heap is in use across forks */
		if (!p)
			return 11;
		pid_t c = fork();
		if (c == 0) {
			kill(getppid(), SIGALRM);
			_exit(0);
		}
		int st;
		if (c < 0 || wait_child(c, &st) != c || !WIFEXITED(st) || WEXITSTATUS(st))
			return 12;
		free(p);
	}
	stop_busy_threads(&b);
	if (handler_fork_errors)
		return 13;
	/* every child's signal was handled before the parent went on (it was
	 * pending by the time waitpid returned), and each handler forked */
	return handler_forks == ROUNDS ? 0 : 14;
}

static int nest(int depth)
{
	size_t n = 1000u * (unsigned)depth + 10;
	unsigned char *p = malloc(n);
	if (!p)
		return 20;
	memset(p, depth, n);
	int rc = 0;
	if (depth > 0) {
		pid_t c = fork();
		if (c == 0)
			_exit(nest(depth - 1));
		int st;
		if (c < 0 || wait_child(c, &st) != c)
			rc = 21;
		else
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
	}
	for (size_t i = 0; i < n; i++)
		if (p[i] != depth)
			rc = rc ? rc : 22;
	free(p);
	return rc;
}

/* Nested forks: each level allocates, forks the next, checks its memory. */
static int nested_fork_rounds(void *arg)
{
	int nthreads = (int)(intptr_t)arg;
	struct busy_set b;
	if (start_busy(&b, nthreads) != 0)
		return 10;
	int rc = 0;
	for (int i = 0; i < ROUNDS / 10 && !rc; i++)
		rc = nest(5);
	stop_busy_threads(&b);
	return rc;
}

static const char *why(int rc)
{
	switch (rc) {
	case -1: return "hung (killed after the timeout)";
	case 10: return "pthread_create failed";
	case 11: return "malloc failed";
	case 12: return "a child failed";
	case 13: return "fork in the signal handler failed";
	case 14: return "not every signal's handler forked";
	case 20: return "malloc in a nested child failed";
	case 21: return "nested fork failed";
	case 22: return "memory changed across a fork";
	default: return "died";
	}
}

static void repeat(int (*fn)(void *), int nthreads, int runs)
{
	for (int r = 0; r < runs; r++) {
		handler_forks = 0;
		int rc = run_bounded(fn, (void *)(intptr_t)nthreads, TIMEOUT_S);
		REQUIRE(rc == 0, "run %d of %d (%d threads): status %d: %s", r + 1, runs,
			nthreads, rc, why(rc));
	}
}

TEST(fork_from_signal_handler_single_threaded)
{
	repeat(signal_fork_rounds, 0, 3);
}

TEST(fork_from_signal_handler_threads_allocating)
{
	repeat(signal_fork_rounds, 3, 2);
}

TEST(nested_forks_single_threaded)
{
	repeat(nested_fork_rounds, 0, 2);
}

TEST(nested_forks_threads_allocating)
{
	repeat(nested_fork_rounds, 3, 2);
}

int main(int argc, char **argv)
{
	struct strata_api S;
	if (!strata_api_get(&S)) {
		printf("not ok - lib_forksig: not running on libstrata.so (LD_PRELOAD it)\n");
		return 1;
	}
	return harness_main(argc, argv);
}

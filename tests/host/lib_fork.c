/*
 * lib_fork.c - fork() in a multi-threaded program on libstrata.so.
 *
 * Three threads allocate and free without pause and use stdio while they
 * do (fprintf to a FILE, fflush(NULL), fopen/fclose: stdio takes its list
 * lock and allocates buffers), and one of them forks as well; the main
 * thread forks 100 times.  Each child runs a heap workload (single and
 * multi-threaded: the slots of the parent's other threads were detached)
 * and reports through its exit status.  A deadlock is caught by alarm():
 * in a child it dies of SIGALRM (status 114), in the parent the program
 * prints "not ok" and exits; test-all counts the failure.  (Without the
 * library's atfork handlers this test hangs in the first few forks.)
 */
#include "lib_strata.h"
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static struct strata_api S;
static atomic_int stop;
static atomic_long forks_done;

static int child_heap_work(void)
{
	void *v[500];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 500; i++) {
			size_t n = (size_t)(i * 37 % (i % 50 ? 600 : 9000)) + 1;
			v[i] = malloc(n);
			if (!v[i] || ((uintptr_t)v[i] & 15))
				return 1;
			memset(v[i], i & 0xff, n);
		}
		for (int i = 0; i < 500; i++) {
			if (((unsigned char *)v[i])[0] != (i & 0xff))
				return 2;
			free(v[i]);
		}
	}
	char *big = malloc(5 << 20);
	if (!big)
		return 3;
	for (size_t i = 0; i < (5u << 20); i += 65536)
		big[i] = 7;
	free(big);
	return 0;
}

static void *child_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)child_heap_work();
}

/* The child: heap works, a new thread gets a slot and works too. */
static void child(void)
{
	alarm(20);       /* a deadlocked child dies of SIGALRM: status 114 */
	int rc = child_heap_work();
	if (!rc) {
		pthread_t t;
		void *r;
		if (pthread_create(&t, NULL, child_thread, NULL) != 0)
			_exit(4);
		pthread_join(t, &r);
		rc = (int)(intptr_t)r;
	}
	unsigned in_use = 0;
	S.thread_slot(&in_use);
	if (!rc && in_use > 1)
		rc = 5;   /* the parent's threads' slots were not detached */
	_exit(rc);
}

static int fork_once(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		child();
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -2;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static atomic_int thread_fork_failures;

static void *busy(void *arg)
{
	int id = (int)(intptr_t)arg;
	FILE *f = fopen("/dev/null", "w");
	void *v[256] = { 0 };
	uint64_t x = (uint64_t)id * 7919 + 1;
	long n = 0;
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 256; i++) {
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			free(v[i]);
			v[i] = malloc(x % 3000 + 1);
		}
		fprintf(f, "%d %ld %s\n", id, n, (char *)"stdio under fork");
		if (++n % 16 == 0)
			fflush(NULL);
		if (n % 64 == 0) {
			FILE *g = fopen("/dev/null", "w");
			if (g) {
				setvbuf(g, NULL, _IOFBF, 8192);   /* buffer from malloc */
				fputs("x", g);
				fclose(g);
			}
		}
		if (id == 0 && n % 200 == 0 && fork_once() != 0)
			atomic_fetch_add(&thread_fork_failures, 1);
	}
	for (int i = 0; i < 256; i++)
		free(v[i]);
	fclose(f);
	return NULL;
}

TEST(fork_with_busy_threads)
{
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, busy, (void *)(intptr_t)i);
	int bad = 0, first = 0;
	for (int i = 0; i < 40; i++) {
		int rc = fork_once();
		if (rc && !bad++)
			first = rc;
		atomic_fetch_add(&forks_done, 1);
		printf("%s", "");        /* stdout's lock in the forking thread too */
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK(bad == 0, "%d of 40 children failed, first status %d", bad, first);
	CHECK(atomic_load(&thread_fork_failures) == 0, "%d forks from a busy thread failed",
	      atomic_load(&thread_fork_failures));
	/* and the parent's heap is fine after all that */
	CHECK(child_heap_work() == 0, "parent heap");
}

TEST(fork_single_threaded)
{
	/* no other thread: glibc's fork skips its locks, ours must balance */
	for (int i = 0; i < 20; i++)
		REQUIRE(fork_once() == 0, "child %d failed", i);
	FILE *f = fopen("/dev/null", "w");
	REQUIRE(f && fprintf(f, "still fine\n") > 0, "stdio after forks");
	fclose(f);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "not ok - lib_fork: deadlock (alarm after 60 s)\n";
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(3);
	_exit(2);
}

int main(int argc, char **argv)
{
	if (!strata_api_get(&S)) {
		printf("not ok - lib_fork: not running on libstrata.so (LD_PRELOAD it)\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	alarm(60);
	return harness_main(argc, argv);
}

/*
 * lib_realloc.c - big buffers grown by realloc under
 * LD_PRELOAD=build/host/libstrata.so.  Each case runs in a fresh child
 * process (this program re-executed), so the heap is the one a program
 * starting up has:
 *
 *   grows_at_the_top   a buffer grown an eighth at a time from 4 KiB to
 *                      40 MiB, every new byte written: above 1 MiB it is
 *                      never moved (the heap grows on past its top), and
 *                      it costs about one page fault per page (a move
 *                      copies into pages faulted in anew: 2.7 faults a
 *                      page before)
 *   heap_stays_bounded 40 rounds of such a buffer, grown to 32 MiB and
 *                      freed: the address space mapped (VmSize) grows by
 *                      less than 256 MiB from round 5 to round 40 (a heap
 *                      that grew past its top whenever a buffer reached it,
 *                      with free memory below, drifted 32 MiB a round)
 *
 * The child prints "# ..." lines with what it measured and exits non-zero
 * with the failure's number.
 */
#include "lib_strata.h"
#include "harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MIB ((size_t)1 << 20)

static char self_path[4096];

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* VmSize from /proc/self/status, in KiB (0 if it cannot be read). */
static long vm_size_kib(void)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Grow a buffer an eighth at a time (list append) to `to` bytes, writing
 * every new byte; counts the moves of a buffer above 1 MiB.  Returns the
 * buffer (NULL if realloc failed). */
static char *grow(size_t to, int *moves)
{
	char *p = NULL;
	size_t n = 0;
	*moves = 0;
	while (n < to) {
		size_t m = n + n / 8 + 4096;
		char *q = realloc(p, m);
		if (!q) {
			free(p);
			return NULL;
		}
		if (p && q != p && n > MIB)
			++*moves;
		p = q;
		memset(p + n, (int)(m & 0x7f), m - n);
		n = m;
	}
	return p;
}

static int grows_at_the_top(void)
{
	int moves;
	long f0 = minor_faults();
	char *p = grow(40 * MIB, &moves);
	long faults = minor_faults() - f0;
	if (!p)
		return 10;
	free(p);
	long pages = (long)(40 * MIB / 4096);
	printf("# grown to 40 MiB: %d moves above 1 MiB, %ld minor faults for %ld pages\n", moves,
	       faults, pages);
	if (moves != 0)
		return 11;
	if (faults > pages + pages / 4)
		return 12;
	return 0;
}

static int heap_stays_bounded(void)
{
	long at5 = 0;
	for (int round = 0; round < 40; round++) {
		int moves;
		char *p = grow(32 * MIB, &moves);
		if (!p)
			return 20;
		free(p);
		if (round == 4)
			at5 = vm_size_kib();
	}
	long at40 = vm_size_kib();
	printf("# VmSize after 5 rounds %ld KiB, after 40 rounds %ld KiB\n", at5, at40);
	if (at5 == 0 || at40 == 0)
		return 21;
	if (at40 - at5 >= 256 * 1024)
		return 22;
	return 0;
}

static int exec_case(void *arg)
{
	execl(self_path, self_path, "--case", (const char *)arg, (char *)NULL);
	return 91;
}

static int run_in_child(const char *name)
{
	return run_bounded(exec_case, (void *)name, 120);
}

TEST(buffer_grows_in_place_at_the_top_of_the_heap)
{
	int rc = run_in_child("grows_at_the_top");
	CHECK(rc == 0, "grows_at_the_top: status %d (see the # line)", rc);
}

TEST(heap_address_space_stays_bounded_over_rounds)
{
	int rc = run_in_child("heap_stays_bounded");
	CHECK(rc == 0, "heap_stays_bounded: status %d (see the # line)", rc);
}

int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	if (n <= 0)
		return 2;
	self_path[n] = 0;
	if (argc == 3 && strcmp(argv[1], "--case") == 0) {
		int rc = strcmp(argv[2], "grows_at_the_top") == 0     ? grows_at_the_top()
			 : strcmp(argv[2], "heap_stays_bounded") == 0 ? heap_stays_bounded()
								      : 2;
		fflush(stdout);
		return rc;
	}
	struct strata_api api;
	if (!strata_api_get(&api)) {
		printf("not ok - lib_realloc: not running on libstrata.so (LD_PRELOAD it)\n");
		return 1;
	}
	return harness_main(argc, argv);
}

/*
 * arch/host/platform.c - strata's platform contract for a Linux process.
 *
 * In the hosted build the "physical memory" strata manages is memory the
 * process got from mmap(); the direct map is the identity (offset 0), so
 * the very same mm/ code runs in unit tests, fuzzers and benchmarks.
 *
 *   mm/  --mm_platform_write-->  stderr (or a capture buffer in tests)
 *   mm/  --mm_platform_panic-->  message on stderr, then abort()
 *   mm/  --mm_platform_protect-> mprotect() (guard pages, mm/guard.c)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <strata/platform.h>
#include "host.h"

static char *capture_buf;
static size_t capture_cap, capture_len;

void host_capture_start(char *buf, size_t cap)
{
	capture_buf = buf;
	capture_cap = cap;
	capture_len = 0;
	if (cap)
		buf[0] = '\0';
}

size_t host_capture_stop(void)
{
	size_t n = capture_len;
	capture_buf = NULL;
	return n;
}

void mm_platform_write(const char *s, size_t n)
{
	if (capture_buf) {
		size_t room = capture_cap - 1 - capture_len;
		size_t k = n < room ? n : room;
		memcpy(capture_buf + capture_len, s, k);
		capture_len += k;
		capture_buf[capture_len] = '\0';
		return;
	}
	int saved_errno = errno;     /* free() must keep errno */
	while (n) {
		ssize_t w = write(2, s, n);
		if (w <= 0)
			break;
		s += w;
		n -= (size_t)w;
	}
	errno = saved_errno;
}

void mm_platform_panic(const char *msg)
{
	fprintf(stderr, "strata panic: %s\n", msg);
	abort();
}

/* Guard pages: the heap is ordinary anonymous memory, so mprotect does
 * it (and flushes the TLBs); a fault arrives as SIGSEGV (libstrata.c). */
int mm_platform_protect(void *va, size_t bytes, int prot)
{
	int p = prot == MM_PROT_RW ? PROT_READ | PROT_WRITE : prot == MM_PROT_READ ? PROT_READ
										    : PROT_NONE;
	int saved_errno = errno;
	int r = mprotect(va, bytes, p);
	errno = saved_errno;
	return r == 0 ? 0 : -1;
}

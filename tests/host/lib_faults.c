/*
 * lib_faults.c - libstrata.so's C library names when the OS refuses to
 * grow the heap (strata/fault.h's "os" point: the mmap()s of
 * arch/host/libstrata.c).  Run under
 * LD_PRELOAD=build/host/libstrata-faults.so (scripts/test-all does; the
 * plain libstrata.so has no fault hook and the program says so).
 *
 *   big_requests_every_mmap   with every heap mmap failing and no free
 *                             4 MiB block left: malloc, calloc, realloc,
 *                             posix_memalign, aligned_alloc, memalign of
 *                             4 MiB fail with ENOMEM (realloc and
 *                             posix_memalign leave the old block / *p
 *                             alone), and work again once mmap does;
 *   big_requests_each_mmap    the same calls with the n-th mmap of the
 *                             growth failing, for every n the growth
 *                             makes: success, or ENOMEM; the next call
 *                             succeeds;
 *   small_requests_exhausted  the whole heap handed out and mmap failing:
 *                             the small and aligned requests fail with
 *                             ENOMEM, realloc keeps the block, then all
 *                             work again;
 * and after each: every block kept its contents, and once all is freed
 * and malloc_trim() ran, the kmalloc statistics (blocks, runs, pages
 * held) and the mapped heap are back to where they started.
 *
 * Each case runs in a child process under run_bounded() (a hang or a
 * crash is a failure); the child's first failure reason comes back
 * through a shared page.
 */
#include "lib_strata.h"
#include "harness.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <strata/fault.h>

#define MIB ((size_t)1 << 20)
#define BIG (4 * MIB)                  /* the largest block: growth for sure */
#define MAX_BLOCKS 65536

static int (*fault_set)(unsigned point, unsigned mode, uint64_t n, uint64_t seed);
static void (*fault_get)(unsigned point, struct mm_fault_stats *st);
static void (*kstats)(struct kmalloc_stats *st);
static size_t (*heap_mapped)(size_t *span);
static char *shared_reason;            /* the child's failure, for the parent */

static struct blk { unsigned char *p; size_t n; unsigned char v; } blk[MAX_BLOCKS];
static unsigned nblk;

static void keep(void *p, size_t n)
{
	unsigned char v = (unsigned char)(nblk * 7 + 1);
	size_t touch = n < 64 ? n : 64;     /* the ends: the pages stay untouched */
	memset(p, v, touch);
	memset((char *)p + n - touch, v, touch);
	if (nblk < MAX_BLOCKS)
		blk[nblk++] = (struct blk){ p, n, v };
}

static bool intact(const struct blk *b)
{
	size_t touch = b->n < 64 ? b->n : 64;
	for (size_t i = 0; i < touch; i++)
		if (b->p[i] != b->v || b->p[b->n - touch + i] != b->v)
			return false;
	return true;
}

static void free_all(void)
{
	for (unsigned i = 0; i < nblk; i++) {
		CHECK(intact(&blk[i]), "block %p (%zu bytes) damaged", (void *)blk[i].p, blk[i].n);
		free(blk[i].p);
	}
	nblk = 0;
}

static uint64_t os_injected(void)
{
	struct mm_fault_stats st;
	fault_get(MM_FAULT_OS, &st);
	return st.injected;
}

/* With every mmap failing, take blocks of `size` until none is left. */
static void exhaust(size_t size)
{
	fault_set(MM_FAULT_OS, MM_FAULT_EVERY, 1, 0);
	for (;;) {
		errno = 0;
		void *p = malloc(size);
		if (!p) {
			CHECK(errno == ENOMEM, "exhausting %zu: errno %d, not ENOMEM", size, errno);
			return;
		}
		keep(p, size);
		if (nblk == MAX_BLOCKS) {
			CHECK(false, "more than %d blocks of %zu and no ENOMEM", MAX_BLOCKS, size);
			return;
		}
	}
}

/* ---- the calls, each of `n` bytes: true = got memory ---- */

enum call { MALLOC, CALLOC, REALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC, MEMALIGN, NCALLS };
static const char *const call_name[NCALLS] = {
	"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign",
};

static bool call(enum call c, size_t n)
{
	void *p = NULL, *old = NULL, *sentinel = (void *)0x5a5a;
	struct blk ob = { 0 };
	int rc = 0;

	errno = 0;
	switch (c) {
	case MALLOC: p = malloc(n); break;
	case CALLOC: p = calloc(1, n); break;
	case REALLOC:
		old = malloc(100);
		if (!old) {
			CHECK(false, "realloc: no 100-byte block to start from");
			return false;
		}
		ob = (struct blk){ old, 100, 0xa5 };
		memset(old, 0xa5, 100);
		p = realloc(old, n);
		break;
	case POSIX_MEMALIGN:
		p = sentinel;
		rc = posix_memalign(&p, 4096, n);
		break;
	case ALIGNED_ALLOC: p = aligned_alloc(64 << 10, n); break;
	case MEMALIGN: p = memalign(256, n); break;
	default: break;
	}
	int err = errno;
	if (c == POSIX_MEMALIGN && rc != 0) {
		CHECK(rc == ENOMEM && p == sentinel, "posix_memalign: rc %d, *p %s", rc,
		      p == sentinel ? "untouched" : "changed");
		return false;
	}
	if (!p) {
		CHECK(err == ENOMEM, "%s(%zu): NULL with errno %d, not ENOMEM", call_name[c], n, err);
		if (c == REALLOC) {
			CHECK(intact(&ob), "realloc failed and changed the old block");
			keep(old, 100);
		}
		return false;
	}
	if (c == REALLOC)
		CHECK(memcmp(p, (char[100]){ [0 ... 99] = (char)0xa5 }, 100) == 0,
		      "realloc lost the contents");
	if (c == CALLOC)
		CHECK(((unsigned char *)p)[0] == 0 && ((unsigned char *)p)[n - 1] == 0,
		      "calloc not zeroed");
	if (c == POSIX_MEMALIGN || c == ALIGNED_ALLOC || c == MEMALIGN) {
		size_t a = c == POSIX_MEMALIGN ? 4096 : c == ALIGNED_ALLOC ? 64 << 10 : 256;
		CHECK(((uintptr_t)p & (a - 1)) == 0, "%s: %p not %zu-aligned", call_name[c], p, a);
	}
	keep(p, n);
	return true;
}

/* ---- the checks around each case ---- */

struct baseline {
	uint64_t blocks, runs, pages;
	size_t mapped;
};

static void snapshot(struct baseline *b)
{
	static struct kmalloc_stats st;
	malloc_trim(0);
	kstats(&st);
	b->blocks = 0;
	for (unsigned c = 0; c < st.nclasses; c++)
		b->blocks += st.cls[c].blocks_used;
	b->blocks -= st.percpu_cached_blocks + st.blocks_internal;
	b->runs = st.large_runs;
	b->pages = st.pfa_pages;
	b->mapped = heap_mapped(NULL);
}

static void balanced(const struct baseline *before)
{
	struct baseline now;
	fault_set(MM_FAULT_ALL, MM_FAULT_OFF, 0, 0);
	free_all();
	snapshot(&now);
	CHECK(now.blocks == before->blocks && now.runs == before->runs,
	      "leak: %llu blocks %llu runs in use, %llu %llu before",
	      (unsigned long long)now.blocks, (unsigned long long)now.runs,
	      (unsigned long long)before->blocks, (unsigned long long)before->runs);
	CHECK(now.pages <= before->pages, "leak: %llu pages held, %llu before",
	      (unsigned long long)now.pages, (unsigned long long)before->pages);
	CHECK(now.mapped <= before->mapped, "heap mapped %zu MiB, %zu MiB before",
	      now.mapped >> 20, before->mapped >> 20);
}

/* ---- the cases (in the child) ---- */

static void big_requests_every_mmap(void)
{
	for (enum call c = 0; c < NCALLS; c++) {
		exhaust(BIG);
		uint64_t inj = os_injected();
		CHECK(!call(c, BIG), "%s(4 MiB) succeeded with no memory and mmap failing",
		      call_name[c]);
		CHECK(os_injected() > inj, "%s: no mmap was tried", call_name[c]);
		fault_set(MM_FAULT_OS, MM_FAULT_OFF, 0, 0);
		CHECK(call(c, BIG), "%s(4 MiB): the next call after the faults failed",
		      call_name[c]);
	}
}

static void big_requests_each_mmap(void)
{
	for (enum call c = 0; c < NCALLS; c++) {
		exhaust(BIG);
		fault_set(MM_FAULT_OS, MM_FAULT_OFF, 0, 0);     /* counting only */
		CHECK(call(c, BIG), "%s(4 MiB) failed with mmap working", call_name[c]);
		struct mm_fault_stats st;
		fault_get(MM_FAULT_OS, &st);
		uint64_t ncalls = st.calls;
		printf("# %s(4 MiB) with no free block: %llu mmaps, heap %zu MiB\n", call_name[c],
		       (unsigned long long)ncalls, heap_mapped(NULL) >> 20);
		CHECK(ncalls > 0, "%s(4 MiB) with no free block made no mmap", call_name[c]);
		for (uint64_t n = 1; n <= ncalls; n++) {
			exhaust(BIG);
			fault_set(MM_FAULT_OS, MM_FAULT_NTH, n, 0);
			bool ok = call(c, BIG);
			CHECK(ok || os_injected() == 1, "%s: failed with no fault injected",
			      call_name[c]);
			CHECK(call(c, BIG), "%s, mmap %llu of %llu failing: the next call failed",
			      call_name[c], (unsigned long long)n, (unsigned long long)ncalls);
		}
	}
}

static void small_requests_exhausted(void)
{
	for (size_t size = BIG; size >= 16; size /= 2)
		exhaust(size);
	static const size_t small[] = { 1, 24, 100, 1000, 2048 };
	for (enum call c = 0; c < NCALLS; c++)
		for (unsigned i = 0; i < sizeof small / sizeof small[0]; i++) {
			if (c == REALLOC) {
				/* the block to resize comes before the heap is full */
				continue;
			}
			CHECK(!call(c, small[i]), "%s(%zu) succeeded on a full heap", call_name[c],
			      small[i]);
		}
	/* realloc of a block that has room nowhere to grow: ENOMEM, kept */
	fault_set(MM_FAULT_OS, MM_FAULT_OFF, 0, 0);
	char *p = malloc(100);
	CHECK(p != NULL, "malloc(100) with mmap working");
	if (p) {
		memset(p, 0x3c, 100);
		for (size_t size = BIG; size >= 16; size /= 2)
			exhaust(size);
		errno = 0;
		char *q = realloc(p, 3000);
		CHECK(!q && errno == ENOMEM, "realloc on a full heap: %p errno %d", (void *)q, errno);
		for (int i = 0; i < 100; i++)
			if (p[i] != 0x3c) {
				CHECK(false, "realloc failed and changed the block");
				break;
			}
		keep(p, 100);   /* refills its ends; contents checked above */
	}
	fault_set(MM_FAULT_OS, MM_FAULT_OFF, 0, 0);
	for (enum call c = 0; c < NCALLS; c++)
		CHECK(call(c, 100), "%s(100): the next call after the faults failed", call_name[c]);
}

static int child(void *arg)
{
	void (*body)(void) = (void (*)(void))arg;
	struct baseline before;
	snapshot(&before);
	body();
	balanced(&before);
	if (harness_failed_now)
		snprintf(shared_reason, 4096, "%s", harness_reason);
	fflush(stdout);            /* a run_bounded child ends with _exit */
	return harness_failed_now ? 1 : 0;
}

static void run_case(void (*body)(void))
{
	REQUIRE(fault_set && fault_get && kstats && heap_mapped,
		"not under libstrata-faults.so (LD_PRELOAD=build/host/libstrata-faults.so)");
	shared_reason[0] = 0;
	int rc = run_bounded(child, (void *)body, 120);
	CHECK(rc == 0, "child: rc %d: %s", rc, shared_reason[0] ? shared_reason : "(no reason)");
}

TEST(big_requests_every_mmap) { run_case(big_requests_every_mmap); }
TEST(big_requests_each_mmap) { run_case(big_requests_each_mmap); }
TEST(small_requests_exhausted) { run_case(small_requests_exhausted); }

int main(int argc, char **argv)
{
	fault_set = (int (*)(unsigned, unsigned, uint64_t, uint64_t))dlsym(RTLD_DEFAULT,
									   "strata_fault_set");
	fault_get = (void (*)(unsigned, struct mm_fault_stats *))dlsym(RTLD_DEFAULT,
								      "strata_fault_get");
	kstats = (void (*)(struct kmalloc_stats *))dlsym(RTLD_DEFAULT, "strata_kmalloc_stats");
	heap_mapped = (size_t (*)(size_t *))dlsym(RTLD_DEFAULT, "strata_heap_mapped");
	shared_reason = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared_reason == MAP_FAILED)
		return 2;
	return harness_main(argc, argv);
}

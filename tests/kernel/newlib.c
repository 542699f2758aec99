/*
 * newlib.c - suite "newlib": newlib is the kernel's C library and strata
 * is its malloc.
 *
 * Each test uses a part of newlib that allocates - strdup, asprintf,
 * printf's %f (dtoa's Bigints), fmemopen, open_memstream, setvbuf, and
 * qsort on a malloc'd array - and checks with strata's own statistics
 * that the allocations went to strata and were all given back: blocks in
 * use (every class's blocks_used plus the large runs) are higher while the
 * objects live and back to the count before once they are freed.
 *
 * newlib keeps a few allocations for the life of the kernel: the block of
 * 4 FILE structures behind the first fopen/fmemopen/open_memstream
 * (__sfmoreglue), and dtoa's Bigint free list in the reent.  warm_up()
 * makes those exist before any test counts, so the counts compare like
 * with like.  (stdout itself has no buffer: kmain makes it unbuffered.)
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kernel/ktest.h>
#include <strata/kmalloc.h>

static uint64_t blocks_in_use(void)
{
	static struct kmalloc_stats st;   /* ~2 KiB: not on the stack */
	uint64_t n;

	kmalloc_get_stats(&st);
	n = st.large_runs;
	for (unsigned i = 0; i < st.nclasses; i++)
		n += st.cls[i].blocks_used;
	return n - st.percpu_cached_blocks - st.blocks_internal;
}

static void warm_up(void)
{
	char buf[64], *s = NULL, *ms = NULL;
	size_t msn = 0;

	snprintf(buf, sizeof buf, "%f %g %e", 3.14159265358979, 2.5e-3, 6.02214076e23);
	FILE *f = fmemopen(buf, sizeof buf, "w+");
	if (f)
		fclose(f);
	f = open_memstream(&ms, &msn);
	if (f)
		fclose(f);
	free(ms);
	if (asprintf(&s, "%d", 1) >= 0)
		free(s);
}

KTEST(newlib, strdup)
{
	warm_up();
	uint64_t before = blocks_in_use();
	const char *src = "strata is newlib's malloc";
	char *s = strdup(src);
	KT_REQUIRE(t, s != NULL, "strdup returned NULL");
	uint64_t live = blocks_in_use();
	KT_CHECK(t, strcmp(s, src) == 0 && s != src, "strdup copied '%s'", s);
	KT_CHECK(t, malloc_usable_size(s) >= strlen(src) + 1,
		"usable size %zu", malloc_usable_size(s));
	KT_CHECK(t, live == before + 1, "blocks in use %llu -> %llu, want +1",
		(unsigned long long)before, (unsigned long long)live);
	free(s);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after free",
		(unsigned long long)before, (unsigned long long)after);
}

KTEST(newlib, asprintf)
{
	warm_up();
	uint64_t before = blocks_in_use();
	char *s = NULL;
	int n = asprintf(&s, "%d-%s-%#x-%zu-%lld", 42, "kmalloc", 255, (size_t)7, -1LL);
	KT_REQUIRE(t, n > 0 && s != NULL, "asprintf returned %d", n);
	KT_CHECK(t, strcmp(s, "42-kmalloc-0xff-7--1") == 0 && n == (int)strlen(s),
		"asprintf gave '%s' (%d)", s, n);
	KT_CHECK(t, blocks_in_use() > before, "the string is not a strata block");
	free(s);

	/* a long one: vasprintf grows its buffer with realloc */
	char *big = NULL;
	n = asprintf(&big, "%0*d", 5000, 1);
	KT_REQUIRE(t, n == 5000 && big != NULL, "asprintf of 5000 chars returned %d", n);
	KT_CHECK(t, big[0] == '0' && big[4998] == '0' && big[4999] == '1' && big[5000] == '\0',
		"long asprintf content wrong");
	free(big);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after free",
		(unsigned long long)before, (unsigned long long)after);
}

/* dtoa keeps every Bigint it ever needed on a free list in the reent, one
 * list per size: run the same conversions twice, count the second time. */
static void float_round(struct ktest_ctx *t)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, "%f", 3.14159265358979);
	KT_CHECK(t, n == 8 && strcmp(buf, "3.141593") == 0, "%%f gave '%s' (%d)", buf, n);
	snprintf(buf, sizeof buf, "%.2f|%g|%.3e|%8.1f", -2.5, 0.0001, 6.02214076e23, 99.95);
	KT_CHECK(t, strcmp(buf, "-2.50|0.0001|6.022e+23|   100.0") == 0, "formats gave '%s'", buf);
	double d = strtod("2.718281828", NULL);
	KT_CHECK(t, d > 2.718281 && d < 2.718282, "strtod gave %f", d);
	printf("# printf(\"%%f\") on stdout: %f\n", 3.14159265358979);
}

KTEST(newlib, printf_float)
{
	warm_up();
	float_round(t);
	uint64_t before = blocks_in_use();
	float_round(t);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after %%f",
		(unsigned long long)before, (unsigned long long)after);
}

KTEST(newlib, fmemopen)
{
	warm_up();
	uint64_t before = blocks_in_use();
	char mem[128];
	memset(mem, 0, sizeof mem);
	FILE *f = fmemopen(mem, sizeof mem, "w+");
	KT_REQUIRE(t, f != NULL, "fmemopen failed, errno %d", errno);
	int n = fprintf(f, "x=%d y=%s\n", 7, "pool");
	KT_CHECK(t, n == 11, "fprintf wrote %d", n);
	KT_CHECK(t, blocks_in_use() > before, "fmemopen allocated nothing from strata");
	rewind(f);
	int x = 0;
	char y[16] = "";
	KT_CHECK(t, fscanf(f, "x=%d y=%15s", &x, y) == 2 && x == 7 && !strcmp(y, "pool"),
		"read back x=%d y='%s'", x, y);
	KT_CHECK(t, fclose(f) == 0, "fclose failed");
	KT_CHECK(t, strncmp(mem, "x=7 y=pool\n", 11) == 0, "buffer holds '%.11s'", mem);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after fclose",
		(unsigned long long)before, (unsigned long long)after);
}

KTEST(newlib, open_memstream)
{
	warm_up();
	uint64_t before = blocks_in_use();
	char *p = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&p, &len);
	KT_REQUIRE(t, f != NULL, "open_memstream failed, errno %d", errno);
	enum { LINES = 1000 };
	for (int i = 0; i < LINES; i++)
		fprintf(f, "line %04d\n", i);      /* 10 bytes each: grows by realloc */
	KT_CHECK(t, fclose(f) == 0, "fclose failed");
	KT_REQUIRE(t, p != NULL && len == 10 * LINES, "memstream length %zu", len);
	KT_CHECK(t, p[len] == '\0', "memstream not NUL-terminated");
	KT_CHECK(t, blocks_in_use() == before + 1, "after fclose only the buffer should live");

	/* read it back through a second stream */
	FILE *r = fmemopen(p, len, "r");
	KT_REQUIRE(t, r != NULL, "fmemopen(r) failed");
	char line[32];
	int i = 0, bad = -1;
	while (fgets(line, sizeof line, r)) {
		char want[32];
		snprintf(want, sizeof want, "line %04d\n", i);
		if (bad < 0 && strcmp(line, want))
			bad = i;
		i++;
	}
	fclose(r);
	KT_CHECK(t, i == LINES && bad < 0, "read back %d lines, first mismatch %d", i, bad);
	free(p);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after free",
		(unsigned long long)before, (unsigned long long)after);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

KTEST(newlib, qsort)
{
	warm_up();
	uint64_t before = blocks_in_use();
	enum { N = 100000 };
	uint32_t *a = malloc(N * sizeof *a);
	KT_REQUIRE(t, a != NULL, "malloc(%zu) failed", N * sizeof *a);
	KT_CHECK(t, blocks_in_use() == before + 1, "the array is not one strata block");
	uint64_t sum = 0, sum2 = 0;
	for (int i = 0; i < N; i++) {
		a[i] = (uint32_t)kt_rand(t);
		sum += a[i];
	}
	qsort(a, N, sizeof *a, cmp_u32);
	int sorted = 1;
	for (int i = 0; i < N; i++) {
		sum2 += a[i];
		if (i && a[i - 1] > a[i])
			sorted = 0;
	}
	KT_CHECK(t, sorted, "qsort left the array unsorted");
	KT_CHECK(t, sum == sum2, "qsort lost elements");
	free(a);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after free",
		(unsigned long long)before, (unsigned long long)after);
}

KTEST(newlib, setvbuf)
{
	warm_up();
	uint64_t before = blocks_in_use();

	/* stdout fully buffered with a buffer newlib mallocs (setvbuf calls
	 * malloc itself: strata's malloc_std.c) */
	fflush(stdout);
	KT_REQUIRE(t, setvbuf(stdout, NULL, _IOFBF, 512) == 0, "setvbuf(_IOFBF) failed");
	KT_CHECK(t, blocks_in_use() == before + 1, "setvbuf's buffer is not a strata block");
	const char *msg = "# this line sat in a 512-byte stdout buffer until fflush\n";
	printf("%s", msg);
	size_t pending = (size_t)(stdout->_p - stdout->_bf._base);
	KT_CHECK(t, pending == strlen(msg), "%zu bytes pending in stdout, want %zu",
		pending, strlen(msg));
	fflush(stdout);
	KT_CHECK(t, stdout->_p == stdout->_bf._base, "fflush left bytes pending");
	/* back to unbuffered (kmain's choice): the buffer is freed */
	KT_CHECK(t, setvbuf(stdout, NULL, _IONBF, 0) == 0, "setvbuf(_IONBF) failed");
	KT_CHECK(t, blocks_in_use() == before, "stdout's buffer was not freed");

	/* a line-buffered stream with the caller's buffer: no allocation for it */
	char mem[256], vbuf[64];
	memset(mem, 0, sizeof mem);
	FILE *f = fmemopen(mem, sizeof mem, "w");
	KT_REQUIRE(t, f != NULL, "fmemopen failed");
	KT_CHECK(t, setvbuf(f, vbuf, _IOLBF, sizeof vbuf) == 0, "setvbuf(_IOLBF) failed");
	fputs("partial", f);
	KT_CHECK(t, mem[0] == '\0', "line-buffered stream wrote before the newline");
	fputs(" line\n", f);
	KT_CHECK(t, strncmp(mem, "partial line\n", 13) == 0, "after newline mem holds '%.13s'", mem);
	fclose(f);
	uint64_t after = blocks_in_use();
	KT_CHECK(t, after == before, "blocks in use %llu before, %llu after",
		(unsigned long long)before, (unsigned long long)after);
}

KTEST(newlib, errno)
{
	errno = 0;
	void *p = malloc(SIZE_MAX / 2);
	KT_CHECK(t, p == NULL && errno == ENOMEM, "malloc(huge) = %p, errno %d", p, errno);
	errno = 0;
	volatile size_t bad_align = 24;   /* volatile: clang rejects a constant one */
	p = aligned_alloc(bad_align, 64);
	KT_CHECK(t, p == NULL && errno == EINVAL, "aligned_alloc(24) = %p, errno %d", p, errno);
	errno = 0;
	char *s = NULL;
	KT_CHECK(t, asprintf(&s, "%s", "ok") == 2 && errno == 0, "asprintf set errno %d", errno);
	free(s);
	kmalloc_clear_report();
}

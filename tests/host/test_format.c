/*
 * test_format.c - mm_vsnprintf / mm_snprintf / mm_printf (mm/format.c),
 * the formatter every report goes through, tested alone: this program
 * links mm/format.c and the platform defaults only (arch/host/arch.mk).
 * Each case is compared with the C library's snprintf on the same format
 * and arguments, and the truncation contract is checked byte by byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/format.h>

#include "harness.h"
#include "host.h"

/* mm_snprintf and snprintf must agree on text and return value. */
#define SAME(fmt, ...)                                                         \
	do {                                                                   \
		char a[256], b[256];                                           \
		int ra = mm_snprintf(a, sizeof a, fmt, __VA_ARGS__);           \
		int rb = snprintf(b, sizeof b, fmt, __VA_ARGS__);              \
		CHECK(ra == rb && strcmp(a, b) == 0,                           \
		      "format \"%s\": strata \"%s\" (%d), libc \"%s\" (%d)",   \
		      fmt, a, ra, b, rb);                                      \
	} while (0)

TEST(integers)
{
	SAME("%d %i %u", 0, -1, 4000000000u);
	SAME("%d", -2147483647 - 1);
	SAME("%ld %lu", -9000000000l, 18446744073709551615ul);
	SAME("%lld %llu", -1ll, 18446744073709551615ull);
	SAME("%hhd %hhu %hd %hu", 300, 300, 70000, 70000);
	SAME("%zu %jd %td", (size_t)12345, (intmax_t)-7, (ptrdiff_t)-3);
	SAME("%x %X %o", 0xdeadbeefu, 0xdeadbeefu, 8u);
	SAME("%llx", 0x0123456789abcdefull);
}

TEST(width_precision_flags)
{
	SAME("[%5d] [%-5d] [%05d]", 42, 42, 42);
	SAME("[%05d] [%5d]", -42, -42);
	SAME("[%*d] [%-*d]", 6, 7, 6, 7);
	SAME("[%.3s] [%10.2s] [%-10s]", "abcdef", "abcdef", "ab");
	SAME("[%.*s]", 2, "xyz");
	SAME("[%08llx] [%2x]", 0xabcull, 0x12345u);
	SAME("[%c%c] [%%] [%s]", 'o', 'k', "");
}

TEST(pointers)
{
	char a[64], b[64];
	void *p = (void *)(uintptr_t)0x7fffdeadb000ull;
	mm_snprintf(a, sizeof a, "%p", p);
	snprintf(b, sizeof b, "%p", p);
	CHECK(strcmp(a, b) == 0, "%%p: strata %s, libc %s", a, b);
	mm_snprintf(a, sizeof a, "%p", (void *)0);
	CHECK(strcmp(a, "0x0") == 0 || strcmp(a, "(nil)") == 0, "%%p of NULL: %s", a);
}

TEST(truncation_counts_everything)
{
	char buf[8];
	memset(buf, 'Z', sizeof buf);
	int n = mm_snprintf(buf, 5, "%s-%d", "abcdef", 12);
	CHECK(n == 9, "return %d, want the full length 9", n);
	CHECK(memcmp(buf, "abcd\0ZZZ", 8) == 0, "buffer %.8s: wrote past n or no NUL", buf);
	n = mm_snprintf(buf, 0, "%d", 12345);
	CHECK(n == 5 && buf[0] == 'a', "n = 0 must write nothing (return %d)", n);
	n = mm_snprintf(buf, 1, "xyz");
	CHECK(n == 3 && buf[0] == 0, "n = 1 writes only the NUL");
}

static int via_va(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = mm_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

TEST(vsnprintf_and_printf)
{
	char buf[64], out[256];
	CHECK(via_va(buf, sizeof buf, "%s=%u", "pages", 7u) == 7 && strcmp(buf, "pages=7") == 0,
	      "mm_vsnprintf: %s", buf);
	host_capture_start(out, sizeof out);
	mm_printf("strata: %d %s\n", 3, "lines");
	size_t len = host_capture_stop();
	CHECK(len == 16 && memcmp(out, "strata: 3 lines\n", 16) == 0,
	      "mm_printf wrote %zu bytes: %.*s", len, (int)len, out);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

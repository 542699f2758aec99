/*
 * test_bits.c - mm/util.h's bit counting: the generic halving versions
 * (what a CPU without clz/ctz instructions runs, e.g. rv64imac) agree with
 * the compiler's builtins on every single bit, every run of low or high
 * bits, and random words; the mm_clz/ctz that mm/ calls agree too.
 */
#include <stdint.h>

#include "harness.h"
#include "../../mm/util.h"

static void same(uint64_t x)
{
	unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
	CHECK(mm_clz64_generic(x) == lz, "clz64_generic(%#llx) = %u, want %u",
	      (unsigned long long)x, mm_clz64_generic(x), lz);
	CHECK(mm_ctz64_generic(x) == tz, "ctz64_generic(%#llx) = %u, want %u",
	      (unsigned long long)x, mm_ctz64_generic(x), tz);
	CHECK(mm_clz64(x) == lz && mm_ctz64(x) == tz, "mm_clz64/ctz64(%#llx)",
	      (unsigned long long)x);
	if (x >> 32 == 0)
		CHECK(mm_clz32((uint32_t)x) == (unsigned)__builtin_clz((uint32_t)x) &&
		      mm_ctz32((uint32_t)x) == (unsigned)__builtin_ctz((uint32_t)x),
		      "mm_clz32/ctz32(%#llx)", (unsigned long long)x);
}

TEST(single_bits_and_runs)
{
	for (unsigned b = 0; b < 64; b++) {
		same(1ull << b);
		same(~0ull << b);
		same(~0ull >> b);
		same((1ull << b) | 1);
		same((1ull << b) | (1ull << 63));
	}
}

TEST(random_words)
{
	uint64_t x = 0x9e3779b97f4a7c15ull ^ harness_seed;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t y = x >> (i % 64);
		if (y)
			same(y);
	}
}

TEST(ceil_log2)
{
	for (unsigned b = 1; b < 64; b++) {
		CHECK(mm_ceil_log2(1ull << b) == b, "ceil_log2(2^%u)", b);
		CHECK(mm_ceil_log2((1ull << b) + 1) == b + 1 || b == 63, "ceil_log2(2^%u+1)", b);
	}
	CHECK(mm_ceil_log2(1) == 0, "ceil_log2(1)");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

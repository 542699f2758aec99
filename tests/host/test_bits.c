/*
 * test_bits.c - mm/util.h's bit counting: the generic halving versions
 * (what a CPU without clz/ctz instructions runs, e.g. rv64imac) agree with
 * the compiler's builtins on every single bit, every run of low or high
 * bits, and random words; the mm_clz/ctz that mm/ calls agree too.
 * mm_divisible (kfree's and kmem_cache_free's one-multiply test that an
 * offset is a multiple of the block size) agrees with % on every offset
 * of every kmalloc class's pool, of small slab strides, and on random
 * 32-bit offsets and sizes of 2 to 2^31.
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

/* mm_divisible(rel, mm_divc(size)) against rel % size; the first
 * disagreement is reported (one CHECK per call keeps the loops fast). */
static unsigned divisible_wrong(uint32_t size, uint32_t rel_end, uint32_t step)
{
	uint64_t divc = mm_divc(size);
	for (uint64_t rel = 0; rel < rel_end; rel += step)
		if (mm_divisible((uint32_t)rel, divc) != (rel % size == 0))
			return (uint32_t)rel ? (uint32_t)rel : 1u;
	return 0;
}

TEST(divisible_every_pool_offset)
{
	/* the kmalloc classes (mm/pool.c): 16-byte spacing to 512, then 8
	 * per doubling to 32 KiB; every offset of the largest pool, 512 KiB */
	unsigned n = 0;
	for (uint32_t size = 16; size <= 32768; n++) {
		uint32_t bad = divisible_wrong(size, 1u << 19, 1);
		CHECK(bad == 0, "size %u: mm_divisible wrong at offset %u", size, bad);
		size += size < 512 ? 16 : (1u << (31 - __builtin_clz(size))) / 8;
	}
	CHECK(n == 80, "%u class sizes, want 80", n);
	/* slab strides (any multiple of 8): every offset of a 32 KiB slab */
	for (uint32_t stride = 8; stride <= 4096; stride += 8) {
		uint32_t bad = divisible_wrong(stride, 1u << 15, 1);
		CHECK(bad == 0, "stride %u: mm_divisible wrong at offset %u", stride, bad);
	}
}

TEST(divisible_random)
{
	uint64_t x = 0x2545f4914f6cdd1dull ^ harness_seed;
	for (int i = 0; i < 1000000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t size = (uint32_t)(x >> 33) >> (x % 31);   /* 2 .. 2^31 - 1 */
		if (size < 2)
			size = 2;
		uint32_t q = (uint32_t)x % (0xffffffffu / size), r = (uint32_t)(x >> 40) % size;
		uint32_t rel = q * size + ((i & 1) ? r : 0);     /* half of them multiples */
		CHECK(mm_divisible(rel, mm_divc(size)) == (rel % size == 0),
		      "mm_divisible(%u, size %u) = %d", rel, size, mm_divisible(rel, mm_divc(size)));
	}
	/* the ends: offsets 0 and 2^32 - 1, sizes 3 and 2^31 */
	CHECK(mm_divisible(0, mm_divc(48)) && mm_divisible(0xffffffffu, mm_divc(3)) &&
	      !mm_divisible(0xffffffffu, mm_divc(1u << 31)) &&
	      mm_divisible(1u << 31, mm_divc(1u << 31)), "the ends");
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

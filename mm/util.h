/*
 * util.h - base layer: the few freestanding helpers every layer of mm/
 * shares (mm/ may not call the C library: it is what malloc is built on).
 *
 *   mm_likely / mm_unlikely   branch hints for the fast paths
 *   mm_load / mm_store        relaxed atomics for fields a lock-free fast
 *                             path reads while another CPU writes them
 *   RET_ADDR()                the caller named in reports
 *   MM_FAST_ENTRY             on the entry points whose fast path makes no
 *                             call (kmalloc, kfree): no frame record (gcc),
 *                             as their slow paths are tail calls, whose own
 *                             frame records name the entry's caller
 *   mm_zero                   an 8-byte-word loop (size a multiple of 8)
 *   mm_copy                   the platform's memcpy, which the contract
 *                             already requires (gcc and clang emit calls
 *                             to it); a realloc's move is mostly this copy
 *                             and a word loop ran at 2.3x glibc's memcpy
 *   mm_zero_bytes / mm_fill   byte loops, and mm_first_not(p, n, v):
 *   mm_first_not              the first byte of p[0..n) that is not v
 *   mm_ceil_log2, mm_align_up
 *   mm_divc, mm_divisible     is an offset a multiple of a size: one
 *                             multiply and one compare (kfree's check)
 *   mm_clz32/64, mm_ctz32/64  count leading/trailing zero bits (x != 0)
 *   MM_PATH(bit)              -DMM_PATH_TAGS=1 only: a slow path marks
 *                             itself in mm_path_tags (mm.c), so that
 *                             tests/bench/wcet.h can name the paths its
 *                             slowest calls took; nothing otherwise
 *
 * Argument order is always (pointer, length, value).  No state here.
 */
#ifndef MM_UTIL_H
#define MM_UTIL_H
#include <strata/names.h>

#include <stddef.h>
#include <stdint.h>

#define mm_likely(x)   __builtin_expect(!!(x), 1)
#define mm_unlikely(x) __builtin_expect(!!(x), 0)

#define mm_load(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define mm_store(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define RET_ADDR() __builtin_return_address(0)

/* On the declarations of the data the fast paths read (km_debug_on,
 * pools, km_pcpu): mm/ is one module, so in a shared-object build
 * (libstrata.so, -fPIC) its data needs no GOT entry, and one flag test is
 * one load, not a load of the address and then the load (the linker can
 * make the first an lea, not remove it).  No effect in a static build. */
#define MM_INTERNAL __attribute__((visibility("hidden")))

/*
 * Is an offset a multiple of a block size?  One multiply and one compare,
 * no division (Lemire, Kaser and Kurz, "Faster remainder by direct
 * computation", 2019): with divc = mm_divc(size) = ceil(2^64 / size), a
 * 32-bit rel is a multiple of size exactly when the low 64 bits of
 * rel * divc are below divc.  Why: size * divc = 2^64 + e with
 * 0 <= e < size, so for rel = q * size + r (0 <= r < size) the product
 * is q * e + r * divc mod 2^64.  With r = 0 that is q * e <= rel < 2^32
 * < divc; with r > 0 it is at least divc and at most (q + 1) * e + 2^64
 * - divc, which is below 2^64 because (q + 1) * size <= 2^32 + size <=
 * divc.  For 2 <= size <= 2^31 (size 1 would need divc = 2^64).
 * kfree's and kmem_cache_free's fast paths test every pointer's offset
 * in its pool or slab with it; tests/host/test_bits.c checks it against
 * % on every offset of every class's pool.
 */
static inline uint64_t mm_divc(uint32_t size)
{
	return ~(uint64_t)0 / size + 1;
}
static inline int mm_divisible(uint32_t rel, uint64_t divc)
{
	return (uint64_t)rel * divc < divc;
}

/* A function that calls nothing except by tail calls needs no frame
 * record for a frame-pointer walk (mm/trace.c): at every call it made
 * the record would already be popped.  Building one costs the fast path
 * 3 instructions on x86_64 and aarch64 and 7 on RISC-V (gcc saves ra
 * and s0 there).  Only where that holds: the platform hooks inlined
 * (MM_PLATFORM_INLINE; out of line they are calls), no AddressSanitizer
 * (its checks are calls), optimising, and the tail calls asked for too
 * (-O1 makes none: a plain call from a function without a record would
 * hide its caller from the walk).  clang has no per-function switch:
 * frames stay. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && \
	defined(MM_PLATFORM_INLINE) && !defined(__SANITIZE_ADDRESS__)
#define MM_FAST_ENTRY __attribute__((optimize("omit-frame-pointer", "optimize-sibling-calls")))
#else
#define MM_FAST_ENTRY
#endif

/* The slow paths MM_PATH() marks (names in tests/bench/wcet.h, same
 * order).  mm_path_pool_returns counts pool_release calls. */
enum mm_path_bit {
	MM_PATH_SWAP, MM_PATH_TRADE, MM_PATH_MAG_NEW, MM_PATH_MAG_DEL, MM_PATH_FILL,
	MM_PATH_TRIM, MM_PATH_NEW_POOL, MM_PATH_SPARE, MM_PATH_NEW_ARENA, MM_PATH_POOL_RET,
	MM_PATH_UNPARK, MM_PATH_PARK, MM_PATH_SETTLE, MM_PATH_HOLD, MM_PATH_ARENA_FREE,
	MM_PATH_BITS
};
#if defined(MM_PATH_TAGS) && MM_PATH_TAGS
extern unsigned mm_path_tags, mm_path_pool_returns;
#define MM_PATH(bit) (mm_path_tags |= 1u << (bit))
#define MM_PATH_RETURN() (mm_path_pool_returns++, MM_PATH(MM_PATH_POOL_RET))
#else
#define MM_PATH(bit) ((void)0)
#define MM_PATH_RETURN() ((void)0)
#endif

static inline void mm_zero(void *d, size_t n)   /* d, n: multiples of 8 */
{
	uint64_t *w = d;
	for (size_t i = 0; i < n / 8; i++)
		w[i] = 0;
}

static inline void mm_fill(void *d, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		((unsigned char *)d)[i] = v;
}

static inline void mm_zero_bytes(void *d, size_t n)
{
	mm_fill(d, n, 0);
}

static inline void mm_copy(void *d, const void *s, size_t n)  /* no overlap */
{
	__builtin_memcpy(d, s, n);
}

static inline const unsigned char *mm_first_not(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return b + i;
	return NULL;
}

/*
 * Counting zero bits.  Where the target has an instruction for it the
 * compiler's builtin is that one instruction; where it has none (rv64gc
 * without Zbb, ARMv4/v5, many small cores) gcc and clang turn the builtin
 * into a call to libgcc's __clzdi2/__ctzdi2, which is outside the
 * platform contract.  So mm/ uses the builtin only where the compiler says
 * the instruction exists, and counts by halving (6 steps, no table, no
 * multiply) everywhere else.  A port may force either with -DMM_HAVE_CLZ=0
 * or 1 (and MM_HAVE_CTZ); scripts/check-lib proves the result on a
 * riscv64 build without Zbb.  x != 0 for all four.
 */
#ifndef MM_HAVE_CLZ
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || \
	defined(__riscv_zbb) || defined(__ARM_FEATURE_CLZ)
#define MM_HAVE_CLZ 1
#else
#define MM_HAVE_CLZ 0
#endif
#endif
#ifndef MM_HAVE_CTZ     /* ARM32's clz alone: ctz from clz (below) */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || \
	defined(__riscv_zbb)
#define MM_HAVE_CTZ 1
#else
#define MM_HAVE_CTZ 0
#endif
#endif

static inline unsigned mm_clz64_generic(uint64_t x)
{
	unsigned n = 0;
	for (unsigned s = 32; s; s >>= 1)
		if (!(x >> (64 - s))) {
			n += s;
			x <<= s;
		}
	return n;
}

static inline unsigned mm_ctz64_generic(uint64_t x)
{
	unsigned n = 0;
	for (unsigned s = 32; s; s >>= 1)
		if (!(x << (64 - s))) {
			n += s;
			x >>= s;
		}
	return n;
}

static inline unsigned mm_clz64(uint64_t x)
{
#if MM_HAVE_CLZ
	return (unsigned)__builtin_clzll(x);
#else
	return mm_clz64_generic(x);
#endif
}

static inline unsigned mm_ctz64(uint64_t x)
{
#if MM_HAVE_CTZ
	return (unsigned)__builtin_ctzll(x);
#elif MM_HAVE_CLZ
	return 63u - (unsigned)__builtin_clzll(x & -x);
#else
	return mm_ctz64_generic(x);
#endif
}

static inline unsigned mm_clz32(uint32_t x)
{
#if MM_HAVE_CLZ
	return (unsigned)__builtin_clz(x);
#else
	return mm_clz64_generic(x) - 32u;
#endif
}

static inline unsigned mm_ctz32(uint32_t x)
{
#if MM_HAVE_CTZ
	return (unsigned)__builtin_ctz(x);
#else
	return mm_ctz64(x);
#endif
}

static inline unsigned mm_ceil_log2(uint64_t n)   /* n >= 1 */
{
	return n <= 1 ? 0 : 64u - mm_clz64(n - 1);
}

static inline size_t mm_align_up(size_t x, size_t a)   /* a: power of two */
{
	return (x + a - 1) & ~(a - 1);
}

#endif

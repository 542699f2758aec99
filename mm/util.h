/*
 * util.h - base layer: the few freestanding helpers every layer of mm/
 * shares (mm/ may not call the C library: it is what malloc is built on).
 *
 *   mm_likely / mm_unlikely   branch hints for the fast paths
 *   mm_load / mm_store        relaxed atomics for fields a lock-free fast
 *                             path reads while another CPU writes them
 *   RET_ADDR()                the caller named in reports
 *   mm_zero / mm_copy         8-byte-word loops (sizes multiples of 8 where
 *   mm_zero_bytes / mm_fill   said), byte loops, and mm_first_not(p, n, v):
 *   mm_first_not              the first byte of p[0..n) that is not v
 *   mm_ceil_log2, mm_align_up
 *
 * Argument order is always (pointer, length, value).  No state here.
 */
#ifndef MM_UTIL_H
#define MM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define mm_likely(x)   __builtin_expect(!!(x), 1)
#define mm_unlikely(x) __builtin_expect(!!(x), 0)

#define mm_load(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define mm_store(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define RET_ADDR() __builtin_return_address(0)

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

static inline void mm_copy(void *d, const void *s, size_t n)  /* 8-aligned */
{
	uint64_t *dw = d;
	const uint64_t *sw = s;
	size_t i;

	for (i = 0; i < n / 8; i++)
		dw[i] = sw[i];
	for (i *= 8; i < n; i++)
		((char *)d)[i] = ((const char *)s)[i];
}

static inline const unsigned char *mm_first_not(const void *p, size_t n, unsigned char v)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return b + i;
	return NULL;
}

static inline unsigned mm_ceil_log2(uint64_t n)   /* n >= 1 */
{
	return n <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(n - 1);
}

static inline size_t mm_align_up(size_t x, size_t a)   /* a: power of two */
{
	return (x + a - 1) & ~(a - 1);
}

#endif

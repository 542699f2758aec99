/*
 * malloc_std.c - the C standard names on top of kmalloc (opt-in).
 *
 *   malloc  free  calloc  realloc  aligned_alloc  posix_memalign
 *   memalign  malloc_usable_size
 *
 * For a C library without its own allocator (newlib configured with
 * MALLOC_PROVIDED) and for kernels that want the familiar names.  This
 * file is NOT part of the hosted build (the host Makefile leaves out
 * mm/ files named *std*.c: the names would collide with glibc's); in a
 * kernel build it sits in libstrata.a as its own member, linked in only
 * when something calls one of these names.  STRATA_STD_NAME(x) may rename the
 * functions (the host test builds them as strata_malloc, ...).
 *
 *   call                        strata                      errno
 *   ----                        ------                      -----
 *   malloc(0)                   unique 16-byte block         -
 *   malloc(n) too big / no mem  NULL                         ENOMEM
 *   calloc(n, m) n*m overflows  NULL                         ENOMEM
 *   realloc(NULL, n)            malloc(n)
 *   realloc(p, 0)               free(p), NULL (as glibc)     -
 *   realloc fails               NULL, p untouched            ENOMEM
 *   aligned_alloc(a, n)         a not a power of two, or     EINVAL
 *                               > 4 MiB: NULL (C17: any n)
 *   posix_memalign(&p, a, n)    returns EINVAL if a is not a power of
 *                               two multiple of sizeof(void *), ENOMEM;
 *                               *p untouched on failure (errno untouched)
 *   memalign(a, n)              as aligned_alloc
 *   free(p) of a bad pointer    reported (caller = free's caller), ignored
 *   malloc_usable_size(NULL)    0
 *
 * errno: mm/ cannot include <errno.h> (freestanding), so the platform
 * may provide  void mm_platform_set_errno(int e)  (weak reference: if no
 * one defines it, errno is simply not set).  Values are the usual ones,
 * STRATA_ENOMEM 12 and STRATA_EINVAL 22 (Linux, newlib and most others).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>

#ifndef STRATA_STD_NAME
#define STRATA_STD_NAME(x) x
#endif

#define STRATA_ENOMEM 12
#define STRATA_EINVAL 22

void mm_platform_set_errno(int e) __attribute__((weak));

static void set_errno(int e)
{
	if (mm_platform_set_errno)
		mm_platform_set_errno(e);
}

#define RET_ADDR() __builtin_return_address(0)

static void *or_enomem(void *p)
{
	if (!p)
		set_errno(STRATA_ENOMEM);
	return p;
}

void *STRATA_STD_NAME(malloc)(size_t n)
{
	return or_enomem(kmalloc(n, 0));
}

void STRATA_STD_NAME(free)(void *p)
{
	kfree_caller(p, RET_ADDR());
}

void *STRATA_STD_NAME(calloc)(size_t n, size_t m)
{
	return or_enomem(kcalloc(n, m, 0));
}

void *STRATA_STD_NAME(realloc)(void *p, size_t n)
{
	if (p && n == 0) {
		kfree_caller(p, RET_ADDR());
		return NULL;
	}
	return or_enomem(krealloc_caller(p, n, 0, RET_ADDR()));
}

static bool bad_alignment(size_t a)
{
	return a == 0 || (a & (a - 1)) || a > KMALLOC_ALIGN_MAX;
}

void *STRATA_STD_NAME(aligned_alloc)(size_t align, size_t n)
{
	if (bad_alignment(align)) {
		set_errno(STRATA_EINVAL);
		return NULL;
	}
	return or_enomem(kmalloc_aligned(n, align, 0));
}

void *STRATA_STD_NAME(memalign)(size_t align, size_t n)
{
	return STRATA_STD_NAME(aligned_alloc)(align, n);
}

int STRATA_STD_NAME(posix_memalign)(void **out, size_t align, size_t n)
{
	if (bad_alignment(align) || align % sizeof(void *))
		return STRATA_EINVAL;
	void *p = kmalloc_aligned(n, align, 0);
	if (!p)
		return STRATA_ENOMEM;
	*out = p;
	return 0;
}

size_t STRATA_STD_NAME(malloc_usable_size)(void *p)
{
	return kmalloc_usable_size_caller(p, RET_ADDR());
}

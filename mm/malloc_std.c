/*
 * malloc_std.c - the C standard names on top of kmalloc (opt-in).
 *
 *   malloc  free  calloc  realloc  reallocarray  aligned_alloc
 *   posix_memalign  memalign  valloc  pvalloc  malloc_usable_size
 *
 * For a C library without its own allocator (newlib configured with
 * MALLOC_PROVIDED), for kernels that want the familiar names, and for the
 * hosted libstrata.so (arch/host/libstrata.c includes this file).  It is
 * NOT part of the hosted unit-test build (the host Makefile leaves out
 * mm/ files named *std*.c: the names would collide with glibc's); in a
 * kernel build it sits in libstrata.a as its own member, linked in only
 * when something calls one of these names.
 *
 * Hooks for a file that includes this one (all optional):
 *   STRATA_STD_NAME(x)   rename the functions (the host unit test builds
 *                        them as strata_malloc, ...)
 *   STRATA_STD_EXPORT    attributes for every function (libstrata.so:
 *                        visibility("default"))
 *   STRATA_STD_ENTRY()   statement run first in every function that may
 *                        allocate (libstrata.so: initialise on first call)
 *   STRATA_STD_ENTRY_DUE()  true when STRATA_STD_ENTRY() has work to do:
 *                        malloc then runs it out of line, so that its
 *                        fast path keeps no register across a call
 *                        (default: malloc runs STRATA_STD_ENTRY() inline)
 *   STRATA_STD_GROW(n, a)  called when a request of n bytes aligned to a
 *                        found no memory: true if the platform added some
 *                        (pfa_add_region) or freed caches, and the request
 *                        is worth another try (libstrata.so: map more
 *                        address space); a few tries at most
 *   STRATA_STD_GROW_AFTER(p, n)  called when the large block p cannot grow
 *                        to n bytes in place: true if the platform made
 *                        the heap reach on past p + n (libstrata.so: a run
 *                        at the top of the heap, which then grows in place
 *                        instead of being copied into memory faulted in
 *                        anew); realloc then tries in place once more
 *
 * Semantics follow glibc's manual, "Replacing malloc":
 *
 *   call                        strata                      errno
 *   ----                        ------                      -----
 *   malloc(0)                   unique 16-byte block         -
 *   malloc(n) too big / no mem  NULL                         ENOMEM
 *   calloc(n, m) n*m overflows  NULL                         ENOMEM
 *   realloc(NULL, n)            malloc(n)
 *   realloc(p, 0)               free(p), NULL (as glibc)     -
 *   realloc fails               NULL, p untouched            ENOMEM
 *   reallocarray(p, n, m)       realloc(p, n*m); overflow:   ENOMEM
 *                               NULL, p untouched
 *   aligned_alloc(a, n)         a not a power of two: NULL   EINVAL
 *                               (C17: any n); every power of
 *                               two is tried, up to the top
 *                               bit of size_t: NULL when no  ENOMEM
 *                               such block can be had
 *   memalign(a, n)              as aligned_alloc
 *   posix_memalign(&p, a, n)    returns EINVAL if a is not a power of
 *                               two multiple of sizeof(void *), ENOMEM;
 *                               *p untouched on failure; errno is set to
 *                               the same value (POSIX allows it)
 *   valloc(n)                   page-aligned block of n bytes
 *   pvalloc(n)                  page-aligned, n rounded up to whole
 *                               pages (pvalloc(0): one page)
 *   free(p)                     errno never changes
 *   free(p) of a bad pointer    reported (caller = free's caller), ignored
 *   malloc_usable_size(NULL)    0
 *   every block                 at least 16-byte aligned, also for 1 byte
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

#include "kmalloc_fast.h"    /* malloc: kmalloc's fast path, inline */

#ifndef STRATA_STD_NAME
#define STRATA_STD_NAME(x) x
#endif
#ifndef STRATA_STD_EXPORT
#define STRATA_STD_EXPORT
#endif
#ifndef STRATA_STD_ENTRY
#define STRATA_STD_ENTRY() do { } while (0)
#endif
#ifndef STRATA_STD_ENTRY_DUE
#define STRATA_STD_ENTRY_DUE() 0
#define STRATA_STD_ENTRY_INLINE 1
#endif
#ifndef STRATA_STD_GROW
#define STRATA_STD_GROW(n, align) false
#endif
#define STD_TRIES 4

/* `expr` (an allocation of n bytes, alignment `align`), tried again while
 * the platform says it found more memory. */
#define WITH_GROWTH(expr, n, align) ({                                         \
	void *p_ = (expr);                                                       \
	for (int try_ = 1; !p_ && try_ < STD_TRIES && STRATA_STD_GROW(n, align); try_++) \
		p_ = (expr);                                                     \
	p_; })

#define STRATA_ENOMEM 12
#define STRATA_EINVAL 22

void mm_platform_set_errno(int e) __attribute__((weak));

static void set_errno(int e)
{
	if (mm_platform_set_errno)
		mm_platform_set_errno(e);
}

#define RET_ADDR() __builtin_return_address(0)
#define STD_LIKELY(x) __builtin_expect(!!(x), 1)

static inline void *or_enomem(void *p)
{
	if (!STD_LIKELY(p))
		set_errno(STRATA_ENOMEM);
	return p;
}

/* malloc found no memory on its first try: the growth tries, errno. */
static __attribute__((noinline)) void *malloc_again(size_t n, void *caller)
{
	void *p = NULL;

	for (int try_ = 1; !p && try_ < STD_TRIES && STRATA_STD_GROW(n, 0); try_++)
		p = kmalloc_caller(n, 0, caller);
	return or_enomem(p);
}

#ifndef STRATA_STD_ENTRY_INLINE
/* malloc with STRATA_STD_ENTRY() due (first call, a trim asked for). */
static __attribute__((noinline)) void *malloc_entry(size_t n, void *caller)
{
	STRATA_STD_ENTRY();
	void *p = kmalloc_caller(n, 0, caller);
	return STD_LIKELY(p) ? p : malloc_again(n, caller);
}
#endif

/* kmalloc's fast path inline (kmalloc_fast.h): a block from this CPU's
 * magazine with no call at all; every other case ends in one of
 * kmalloc's slow paths (a tail call), and a NULL from it in
 * malloc_again. */
STRATA_STD_EXPORT MM_FAST_ENTRY void *STRATA_STD_NAME(malloc)(size_t n)
{
#ifdef STRATA_STD_ENTRY_INLINE
	STRATA_STD_ENTRY();
#else
	if (__builtin_expect(STRATA_STD_ENTRY_DUE(), 0))
		return malloc_entry(n, RET_ADDR());
#endif
	return kmalloc_from(n, 0, NULL, true, malloc_again);
}

/* kfree's fast path inline (kmalloc_fast.h), its slow paths tail calls;
 * the caller in reports is free's own (kfree_from's `own`). */
STRATA_STD_EXPORT MM_FAST_ENTRY void STRATA_STD_NAME(free)(void *p)
{
	kfree_from(p, NULL, true);
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(calloc)(size_t n, size_t m)
{
	size_t bytes;

	STRATA_STD_ENTRY();
	if (__builtin_mul_overflow(n, m, &bytes))
		bytes = SIZE_MAX;               /* kcalloc fails and reports it */
	return or_enomem(WITH_GROWTH(kcalloc_caller(n, m, 0, RET_ADDR()), bytes, 0));
}

/* krealloc, tried again after growth only while p is a block: a bad p
 * is reported once (krealloc_caller), not once per try. */
static void *realloc_grown(void *p, size_t n, void *caller)
{
	void *q;

#ifdef STRATA_STD_GROW_AFTER
	/* to a large size: in place, past the heap's top if need be */
	if (p && n > KMALLOC_SMALL_MAX) {
		if ((q = krealloc_caller(p, n, KM_NO_MOVE, caller)))
			return q;
		if (!kmalloc_is_block(p))
			return or_enomem(NULL);          /* reported once, above */
		if (STRATA_STD_GROW_AFTER(p, n) &&
		    (q = krealloc_caller(p, n, KM_NO_MOVE, caller)))
			return q;
	}
#endif
	q = krealloc_caller(p, n, 0, caller);

	for (int try_ = 1; !q && try_ < STD_TRIES && (!p || kmalloc_is_block(p)) &&
	     STRATA_STD_GROW(n, 0); try_++)
		q = krealloc_caller(p, n, 0, caller);
	return or_enomem(q);
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(realloc)(void *p, size_t n)
{
	STRATA_STD_ENTRY();
	if (mm_likely(p != NULL) && krealloc_keeps_fast(p, n))
		return p;                  /* the common list append: same class */
	if (p && n == 0) {
		kfree_caller(p, RET_ADDR());
		return NULL;
	}
	return realloc_grown(p, n, RET_ADDR());
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(reallocarray)(void *p, size_t n, size_t m)
{
	size_t bytes;

	STRATA_STD_ENTRY();
	if (__builtin_mul_overflow(n, m, &bytes)) {
		set_errno(STRATA_ENOMEM);
		return NULL;
	}
	if (p && bytes == 0) {
		kfree_caller(p, RET_ADDR());
		return NULL;
	}
	return realloc_grown(p, bytes, RET_ADDR());
}

static bool bad_alignment(size_t a)
{
	return a == 0 || (a & (a - 1));
}

/* n bytes aligned to align (a power of two), tried again after growth. */
static void *aligned_grown(size_t n, size_t align, void *caller)
{
	return WITH_GROWTH(kmalloc_aligned_caller(n, align, 0, caller), n, align);
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(aligned_alloc)(size_t align, size_t n)
{
	STRATA_STD_ENTRY();
	if (bad_alignment(align)) {
		set_errno(STRATA_EINVAL);
		return NULL;
	}
	return or_enomem(aligned_grown(n, align, RET_ADDR()));
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(memalign)(size_t align, size_t n)
{
	STRATA_STD_ENTRY();
	if (bad_alignment(align)) {
		set_errno(STRATA_EINVAL);
		return NULL;
	}
	return or_enomem(aligned_grown(n, align, RET_ADDR()));
}

STRATA_STD_EXPORT int STRATA_STD_NAME(posix_memalign)(void **out, size_t align, size_t n)
{
	STRATA_STD_ENTRY();
	if (bad_alignment(align) || align % sizeof(void *)) {
		set_errno(STRATA_EINVAL);
		return STRATA_EINVAL;
	}
	void *p = aligned_grown(n, align, RET_ADDR());
	if (!p) {
		set_errno(STRATA_ENOMEM);
		return STRATA_ENOMEM;
	}
	*out = p;
	return 0;
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(valloc)(size_t n)
{
	STRATA_STD_ENTRY();
	return or_enomem(aligned_grown(n, PAGE_SIZE, RET_ADDR()));
}

STRATA_STD_EXPORT void *STRATA_STD_NAME(pvalloc)(size_t n)
{
	STRATA_STD_ENTRY();
	if (n > SIZE_MAX - (PAGE_SIZE - 1)) {
		set_errno(STRATA_ENOMEM);
		return NULL;
	}
	n = n ? (n + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1) : PAGE_SIZE;
	return or_enomem(aligned_grown(n, PAGE_SIZE, RET_ADDR()));
}

STRATA_STD_EXPORT size_t STRATA_STD_NAME(malloc_usable_size)(void *p)
{
	return kmalloc_usable_size_caller(p, RET_ADDR());
}

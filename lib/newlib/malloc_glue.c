/*
 * lib/newlib/malloc_glue.c - strata is newlib's malloc.
 *
 * newlib never calls malloc() internally.  Every allocation inside the C
 * library - stdio buffers (__smakebuf_r), FILE glue (__sfmoreglue),
 * strdup, asprintf, open_memstream, the Bigints of printf("%f")'s dtoa -
 * goes through the *reentrant* entry points, which take the caller's
 * struct _reent so that errno lands in the right place:
 *
 *     _malloc_r  _free_r  _realloc_r  _calloc_r  _memalign_r
 *     _malloc_usable_size_r
 *
 * libc.a is built with -DMALLOC_PROVIDED (scripts/build-newlib), which
 * removes newlib's own allocator (dlmalloc in mallocr.c, or nano-malloc)
 * together with malloc(), free(), ... themselves; what is left only
 * *references* the names above.  This file defines them on top of
 * strata's kmalloc API (mm/include/strata/kmalloc.h).  The standard names
 * malloc/free/... that kernel code calls come from strata's own standard
 * front end (mm/malloc_std.c), not from here.
 *
 * Differences in contract, and how they are bridged:
 *   - errno: kmalloc returns NULL and records a report; C says malloc sets
 *     errno to ENOMEM.  We set it in the reent we were given.
 *   - realloc(p, 0): krealloc frees p and returns NULL, as newlib's own
 *     realloc did (REALLOC_ZERO_BYTES_FREES); no errno then, nothing
 *     failed.
 *   - memalign: kmalloc_aligned wants a power of two; memalign with any
 *     other alignment fails with EINVAL.  Alignments up to 16 are plain
 *     kmalloc (every kmalloc block is 16-byte aligned).
 *   - malloc(), free(), ... themselves (mm/malloc_std.c in libstrata.a)
 *     set errno through the optional hook mm_platform_set_errno(), which
 *     this file defines: mm/ cannot include <errno.h>.
 *   - bad frees: kfree reports them (address and caller) and ignores them;
 *     we pass our own caller so the report names the newlib function.
 *
 * Locking: none here.  strata takes its own spinlock inside every kmalloc
 * call, so two CPUs can call _malloc_r at once.  newlib's __malloc_lock
 * exists to protect *newlib's* heap; with MALLOC_PROVIDED nothing in
 * libc.a calls it (lib/newlib/locks.c still provides it for code that
 * expects the malloc.h API).  Taking it here as well would only add a
 * second, outer lock around strata's.
 */
#include <errno.h>
#include <malloc.h>
#include <reent.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/kmalloc.h>

#define CALLER() __builtin_return_address(0)

static void *fail(struct _reent *r, int err)
{
	if (r)
		r->_errno = err;
	return NULL;
}

void *_malloc_r(struct _reent *r, size_t size)
{
	void *p = kmalloc(size, 0);

	return p ? p : fail(r, ENOMEM);
}

void _free_r(struct _reent *r, void *p)
{
	(void)r;
	kfree_caller(p, CALLER());
}

void *_calloc_r(struct _reent *r, size_t n, size_t size)
{
	/* kcalloc checks n * size for overflow (NULL) and zeroes. */
	void *p = kcalloc(n, size, KM_ZERO);

	return p ? p : fail(r, ENOMEM);
}

void *_realloc_r(struct _reent *r, void *p, size_t size)
{
	void *q = krealloc_caller(p, size, 0, CALLER());

	if (!q && size != 0)
		return fail(r, ENOMEM);      /* p is still valid and still owned */
	return q;
}

void *_memalign_r(struct _reent *r, size_t align, size_t size)
{
	void *p;

	if (align == 0 || (align & (align - 1)) != 0)
		return fail(r, EINVAL);
	if (align <= KMALLOC_MIN_ALIGN)
		p = kmalloc(size, 0);
	else
		p = kmalloc_aligned(size, align, 0);
	return p ? p : fail(r, ENOMEM);
}

size_t _malloc_usable_size_r(struct _reent *r, void *p)
{
	(void)r;
	return kmalloc_usable_size_caller(p, CALLER());
}

/*
 * strata's standard-name front end (mm/malloc_std.c) reports ENOMEM and
 * EINVAL through this hook; newlib's errno is the current reent's
 * (*__errno()), the same one the _r entry points above set.
 */
void mm_platform_set_errno(int e);
void mm_platform_set_errno(int e)
{
	errno = e;
}

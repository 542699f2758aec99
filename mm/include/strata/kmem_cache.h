/*
 * strata/kmem_cache.h - level +3: object caches (Bonwick's slab allocator,
 * as Linux calls it: kmem_cache).
 *
 *   struct kmem_cache *inode_cache =
 *       kmem_cache_create("inode", sizeof(struct inode), 0, KMEM_HWCACHE_ALIGN,
 *                         inode_ctor);
 *   struct inode *i = kmem_cache_alloc(inode_cache, 0);   constructed already
 *   ...                                                   give it back in a
 *   kmem_cache_free(inode_cache, i);                      constructed state
 *
 * Guarantees
 * ----------
 *  - Objects of 1 byte to just under 4 MiB; each slab is one PFA block
 *    whose order is the smallest that wastes under 1/8 of it (header and
 *    tail), where one exists: objects just over 1/8 of 4 MiB cannot.
 *  - The constructor runs once per object slot, when its slab is taken
 *    from the PFA; strata never writes into an object of a cache (which
 *    slots are free is a bitmap in the slab header), so an object freed in
 *    its constructed state comes back in that state.
 *  - Per-CPU magazines in front of every cache (strata/percpu.h): alloc
 *    and free touch no lock on their fast path.
 *  - kmem_cache_free() of a pointer that is not an object of that cache
 *    (another cache, kmalloc, interior, never allocated) is reported with
 *    the caller and ignored, and kmem_cache_free() returns -1 (0 when it
 *    took the object); a double free is reported when it is seen: at
 *    once (-1) when the object is back in its slab or was the last one
 *    freed on this CPU, otherwise when its magazine returns to the slab.
 *  - Allocation failure: NULL (or a panic naming the cache with
 *    KMEM_PANIC), with a kmalloc report (kmalloc_last_report).
 */
#ifndef STRATA_KMEM_CACHE_H
#define STRATA_KMEM_CACHE_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stddef.h>
#include <stdint.h>

/* kmem_cache_create() flags */
#define KMEM_HWCACHE_ALIGN 0x1u   /* objects start on KMEM_CACHE_LINE boundaries */
#define KMEM_PANIC         0x2u   /* failing to allocate panics, naming the cache */
#define KMEM_NO_PERCPU     0x4u   /* no per-CPU magazines: every call locks */
#define KMEM_DEBUG         0x8u   /* red zones, poisoning (no ctor), checks on every
                                     call, as mm.debug=ZP gives every new cache
                                     (strata/debug.h; nothing with MM_DEBUG=0) */

#ifndef KMEM_CACHE_LINE
#define KMEM_CACHE_LINE 64
#endif
#define KMEM_NAME_MAX 24

struct kmem_cache;

/* NULL if size is 0 or too large, align is not 0 or a power of two, or
 * there is no memory; kmalloc_last_report() says which. */
struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned flags, void (*ctor)(void *obj));

/* flags: 0, or KM_ZERO (strata/kmalloc.h) to zero the object (which
 * undoes a constructor: meant for caches without one). */
void *kmem_cache_alloc(struct kmem_cache *c, unsigned flags);
int kmem_cache_free(struct kmem_cache *c, void *obj);   /* 0, or -1: refused */

/* Drain this CPU's magazines and the cache's depot, and give every slab
 * with no object in use back to the PFA.  Returns the pages given back. */
uint64_t kmem_cache_shrink(struct kmem_cache *c);

/* Destroy c.  Every object still allocated is reported (address, and the
 * allocating call site when tracing is on); then c stays alive (leaked,
 * as Linux does) and the count of live objects is returned.  0: c is
 * gone.  No CPU may use c during or after the call. */
long kmem_cache_destroy(struct kmem_cache *c);

struct kmem_cache_stats {
	char name[KMEM_NAME_MAX];
	size_t object_size;      /* asked for */
	size_t stride;           /* object + alignment padding */
	unsigned objs_per_slab;
	unsigned slab_order;     /* slab = PAGE_SIZE << order */
	uint64_t slabs, slabs_full, slabs_partial, slabs_empty;
	uint64_t objs_total;     /* slots in all slabs */
	uint64_t objs_in_slabs;  /* slots handed out by the slabs (includes
	                            objects cached in magazines) */
	uint64_t objs_cached;    /* of those, in the depot's full magazines */
	uint64_t ctor_calls;     /* = slabs_created * objs_per_slab with a ctor */
	uint64_t slabs_created;
	uint64_t allocs_slow, frees_slow;   /* calls that reached the slabs */
	uint64_t bad_frees;
};

void kmem_cache_get_stats(struct kmem_cache *c, struct kmem_cache_stats *st);
/* A /proc/slabinfo-like table of every cache. */
void kmem_cache_print_slabinfo(void (*out)(const char *s, size_t n));
/* Walk every cache's slabs and check them; number of problems found. */
int kmem_cache_check_all(void);

#endif

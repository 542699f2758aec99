/*
 * slab.c - level +3 of strata: object caches (kmem_cache), after Bonwick's
 * slab allocator (USENIX 1994) and its magazines (USENIX 2001).
 *
 * A cache hands out objects of one type.  Its memory is SLABS: one PFA
 * block each (owner PG_CACHE), cut into equal slots after a header:
 *
 *   slab (PAGE_SIZE << order bytes, naturally aligned)
 *   +--------+---------------+------+------+------+-----+------+
 *   | header | free bitmap   | obj0 | obj1 | obj2 | ... | tail |
 *   |        | 1 bit / slot  |      |      |      |     |      |
 *   +--------+---------------+------+------+------+-----+------+
 *   ^ slab->cache, magic,      ^ first (aligned), then one stride per slot
 *     inuse, hint
 *
 * strata never writes into an object: which slots are free is a bitmap in
 * the header (1 = free; `hint` is the first word that may have a free
 * bit), so an object keeps whatever its constructor (run once per slot,
 * when the slab is created) and its last user left in it, and a double
 * free that reaches the slab is caught exactly.  One bit per slot keeps
 * the header small even for 8-byte objects (1/64 overhead).
 *
 * Slab size: the smallest order whose tail plus header wastes under 1/8
 * of the slab (a 12 KiB object gets a 64 KiB slab of 5 objects, not a
 * 16 KiB one wasting 25%).
 *
 * Slabs sit on three lists: partial (some free), full, empty.  Allocation
 * takes from partial, then empty, then a new slab.  Empty slabs are kept
 * (constructed, ready) up to CACHE_KEEP_EMPTY bytes (at least one slab);
 * beyond that they go back to the PFA at once, and all of them on
 * kmem_cache_shrink / mm_reclaim.
 *
 * In front of the slabs, per-CPU magazines (magazine.h), exactly as for
 * the kmalloc size classes: the cache's depot fills magazines from the
 * slabs and flushes them back, under the cache's lock.
 *
 *   kmem_cache_free(c, obj):  descriptor of obj -> head page PG_CACHE ->
 *   slab header -> slab->cache == c, magic, obj at a slot boundary ->
 *   push on this CPU's magazine.  Anything else: reported, ignored.
 *
 * Debug caches (KMEM_DEBUG, or created under mm.debug=Z/P): each slot is
 *
 *   | 0xFD x rz | object (size) | 0xFD ... to the end of the slot |
 *               ^ first + i * stride: the pointer handed out
 *
 * (rz = 16, or the alignment if larger), written when the slab is made;
 * without a constructor the object is also poisoned (0xDD free, 0xCD
 * just allocated).  No magazines: every alloc and free takes the slow
 * path, which checks the zones and the poison (dbg_* below); so does
 * kmem_cache_check_all().  Compiled out with MM_DEBUG=0.  Damage goes to
 * the report sink (mm/report.c) naming the cache.
 *
 * Level +3, above kmalloc (it takes its cache structs with kzalloc and its
 * magazines from the per-CPU layer's blocks).  Locks: caches_lock (the
 * list), then a cache's depot lock, then the cache's lock (mm/lock_order.h
 * has the whole order).  The first kmem_cache_create() registers the
 * cache layer (mm/layer.h), so mm_reclaim, mm_lock_all, mm_check_all and
 * mm_cpu_detach reach every cache without kmalloc naming this file.
 */
#include <strata/fault.h>
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "guard.h"
#include "layer.h"
#include "list.h"
#include "lock_order.h"
#include "magazine.h"
#include "percpu_internal.h"
#include "pfa_internal.h"   /* pfa_phys_inline, pfa_page_inline (mm/LAYERS: reads) */
#include "report.h"
#include "util.h"

#define SLAB_MAGIC  ((uintptr_t)0x736c61622d686472ull)
#define SLAB_MAX_OBJS 65535u
#define CACHE_KEEP_EMPTY (256u << 10)
#define CACHE_MAX_FULL 8
#define CACHE_MAG_BYTES 8192

enum { LIST_PARTIAL, LIST_FULL, LIST_EMPTY, NLISTS };

struct kmem_slab {
	struct kmem_slab *next, *prev;
	struct kmem_cache *cache;
	uintptr_t magic;          /* (uintptr_t)slab ^ SLAB_MAGIC */
	phys_addr_t pa;
	uint32_t inuse;           /* slots handed out */
	uint32_t nfree;           /* slots free */
	uint32_t list;            /* LIST_* it is on */
	uint32_t hint;            /* no free bit in bitmap words below this */
	uint64_t bitmap[];        /* bit i set: slot i is free */
};

struct kmem_cache {
	/* --- hot: read by the fast paths --- */
	unsigned percpu;              /* magazines in use */
	unsigned flags;
	size_t size, stride;
	uint64_t divc;                /* mm_divc(stride): a slot's start? */
	uint32_t first;               /* offset of slot 0 in a slab */
	uint32_t span;                /* nobjs * stride: slot 0's object to the end */
	unsigned order, nobjs;
	void (*ctor)(void *);
	unsigned dbg;                 /* MM_DBG_REDZONE / MM_DBG_POISON, see debug.h */
	uint32_t rz;                  /* red zone before each object (0: none) */
	char name[KMEM_NAME_MAX];
	char free_op[KMEM_NAME_MAX + 24];   /* "kmem_cache_free[name]" for reports */

	mm_spinlock_t lock;           /* the slabs and the counters below */
	struct kmem_slab *list[NLISTS];
	uint64_t nslabs[NLISTS];
	uint64_t objs_in_slabs, ctor_calls, allocs_slow, frees_slow, bad_frees;
	uint64_t slabs_created;
	unsigned keep_empty;          /* empty slabs kept */

	struct kmem_cache *next, *prev;   /* every cache (caches_lock) */
	struct mm_depot depot;
	struct mm_cpu_slot cpu[MM_CPU_SLOTS];   /* "no CPU" (MM_CPU_ID_LIMIT): mag_none */
};

static mm_spinlock_t caches_lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_CACHES);
static struct kmem_cache *caches;


/* ------------------------------------------------------------------ */
/* geometry                                                           */
/* ------------------------------------------------------------------ */


static size_t header_bytes(unsigned nobjs)
{
	return sizeof(struct kmem_slab) + ((nobjs + 63) / 64) * 8;
}

static uint64_t *slab_bitmap(const struct kmem_slab *s)
{
	return (uint64_t *)s->bitmap;
}

/* Objects of `stride` bytes (aligned to `align`) in a slab of order o. */
static unsigned fit(size_t stride, size_t align, unsigned o, size_t *first)
{
	size_t bytes = (size_t)PAGE_SIZE << o;
	unsigned n = (unsigned)(bytes / stride);

	if (n > SLAB_MAX_OBJS)
		n = SLAB_MAX_OBJS;
	while (n > 0) {
		size_t f = mm_align_up(header_bytes(n), align);
		if (f + (size_t)n * stride <= bytes) {
			*first = f;
			return n;
		}
		n--;
	}
	return 0;
}

/* Smallest order wasting under 1/8; else the least wasteful one. */
static bool choose_order(struct kmem_cache *c, size_t align)
{
	unsigned best_o = 0, best_n = 0;
	size_t best_first = 0, best_waste = (size_t)-1;

	for (unsigned o = 0; o <= PFA_MAX_ORDER; o++) {
		size_t first, bytes = (size_t)PAGE_SIZE << o;
		unsigned n = fit(c->stride, align, o, &first);
		if (!n)
			continue;
		size_t waste = bytes - (size_t)n * c->stride;
		if (waste * 8 < bytes) {
			best_o = o, best_n = n, best_first = first;
			break;
		}
		if (waste * 64 / bytes < best_waste) {   /* compare as fractions */
			best_waste = waste * 64 / bytes;
			best_o = o, best_n = n, best_first = first;
		}
	}
	if (!best_n)
		return false;
	c->order = best_o;
	c->nobjs = best_n;
	c->first = (uint32_t)best_first;
	return true;
}

/* ------------------------------------------------------------------ */
/* slabs (cache lock held unless said otherwise)                      */
/* ------------------------------------------------------------------ */

static void list_del(struct kmem_cache *c, struct kmem_slab *s)
{
	mm_list_unlink(&c->list[s->list], s);
	c->nslabs[s->list]--;
}

static void list_add(struct kmem_cache *c, struct kmem_slab *s, unsigned which)
{
	s->list = which;
	mm_list_push(&c->list[which], s);
	c->nslabs[which]++;
}

static void list_move(struct kmem_cache *c, struct kmem_slab *s, unsigned which)
{
	if (s->list != which) {
		list_del(c, s);
		list_add(c, s, which);
	}
}

static void *slot_addr(const struct kmem_cache *c, const struct kmem_slab *s, unsigned i)
{
	return (char *)s + c->first + (size_t)i * c->stride;
}

/* ---- debug caches ---- */
#if MM_DEBUG
/* A damaged zone or poison of obj: a bug report naming the cache. */
static void report_damage(const struct kmem_cache *c, enum mm_bug_kind kind,
			  const unsigned char *obj, const unsigned char *bad, void *caller)
{
	struct mm_bug_report r = {
		.kind = kind, .ptr = obj, .bad = bad, .requested = c->size,
		.block_size = c->stride, .caller = caller, .cache = c->name,
	};
	mm_report_bug(&r);
}

/* Bytes after the object up to the end of its slot. */
static size_t tail_zone(const struct kmem_cache *c)
{
	return c->stride - c->rz - c->size;
}

static void dbg_slot_init(const struct kmem_cache *c, unsigned char *obj)
{
	if (c->rz) {
		mm_fill(obj - c->rz, c->rz, MM_POISON_REDZONE);
		mm_fill(obj + c->size, tail_zone(c), MM_POISON_REDZONE);
	}
	if (c->dbg & MM_DBG_POISON)
		mm_fill(obj, c->size, MM_POISON_DEAD);
}

/* Check obj's red zones (and, if `free_poison`, its dead poison); report
 * and return false if damaged. */
static bool dbg_check(const struct kmem_cache *c, const unsigned char *obj, bool free_poison,
		      void *caller)
{
	const unsigned char *bad;

	if (c->rz && (bad = mm_first_not(obj - c->rz, c->rz, MM_POISON_REDZONE)) != NULL) {
		report_damage(c, MM_BUG_UNDERFLOW, obj, bad, caller);
		return false;
	}
	if (c->rz && (bad = mm_first_not(obj + c->size, tail_zone(c), MM_POISON_REDZONE)) != NULL) {
		report_damage(c, MM_BUG_OVERFLOW, obj, bad, caller);
		return false;
	}
	if (free_poison && (c->dbg & MM_DBG_POISON) &&
	    (bad = mm_first_not(obj, c->size, MM_POISON_DEAD)) != NULL) {
		report_damage(c, MM_BUG_USE_AFTER_FREE, obj, bad, caller);
		return false;
	}
	return true;
}

/* An object leaves the cache: it was free (dead poison), now it is clean. */
static void dbg_on_alloc(const struct kmem_cache *c, unsigned char *obj, void *caller)
{
	if (!dbg_check(c, obj, true, caller))
		dbg_slot_init(c, obj);      /* reported: repair and go on */
	if (c->dbg & MM_DBG_POISON)
		mm_fill(obj, c->size, MM_POISON_CLEAN);
}

/* An object comes back: its zones must be intact; then it is dead (and
 * zones a report found damaged are whole again). */
static void dbg_on_free(const struct kmem_cache *c, unsigned char *obj, void *caller)
{
	dbg_check(c, obj, false, caller);
	dbg_slot_init(c, obj);
}
#else
static void dbg_slot_init(const struct kmem_cache *c, unsigned char *obj)
{
	(void)c, (void)obj;
}
static bool dbg_check(const struct kmem_cache *c, const unsigned char *obj, bool free_poison,
		      void *caller)
{
	(void)c, (void)obj, (void)free_poison, (void)caller;
	return true;
}
static void dbg_on_alloc(const struct kmem_cache *c, unsigned char *obj, void *caller)
{
	(void)c, (void)obj, (void)caller;
}
static void dbg_on_free(const struct kmem_cache *c, unsigned char *obj, void *caller)
{
	(void)c, (void)obj, (void)caller;
}
#endif

/* A new slab with every slot constructed; cache lock NOT held (the
 * constructor may take its time, or even allocate). */
static struct kmem_slab *slab_new(struct kmem_cache *c)
{
	phys_addr_t pa = MM_FAULT(MM_FAULT_SLAB) ? 0 : pfa_alloc(c->order, 0);

	if (!pa)
		return NULL;
	pfa_set_owner(pa, c->order, PG_CACHE);
	struct kmem_slab *s = pfa_virt(pa);
	s->cache = c;
	s->magic = (uintptr_t)s ^ SLAB_MAGIC;
	s->pa = pa;
	s->inuse = 0;
	s->nfree = c->nobjs;
	s->hint = 0;
	for (unsigned w = 0; w < (c->nobjs + 63) / 64; w++) {
		unsigned left = c->nobjs - w * 64;
		s->bitmap[w] = left >= 64 ? ~0ull : (1ull << left) - 1;
	}
	if (c->dbg)
		for (unsigned i = 0; i < c->nobjs; i++)
			dbg_slot_init(c, slot_addr(c, s, i));
	if (c->ctor)
		for (unsigned i = 0; i < c->nobjs; i++)
			c->ctor(slot_addr(c, s, i));
	return s;
}

static void slab_delete(struct kmem_cache *c, struct kmem_slab *s)
{
	phys_addr_t pa = s->pa;     /* s lives in the pages being released */
	s->magic = 0;
	mm_platform_release(s, (size_t)PAGE_SIZE << c->order);
	pfa_free(pa, c->order);
}

static void *slab_take(struct kmem_cache *c, struct kmem_slab *s)
{
	unsigned w = s->hint;

	while (!s->bitmap[w])     /* nfree > 0, so some word below nobjs has a bit */
		w++;
	s->hint = w;
	unsigned i = w * 64 + mm_ctz64(s->bitmap[w]);
	s->bitmap[w] &= s->bitmap[w] - 1;
	s->nfree--;
	s->inuse++;
	c->objs_in_slabs++;
	list_move(c, s, s->nfree ? LIST_PARTIAL : LIST_FULL);
	return slot_addr(c, s, i);
}

/* Up to n objects from the slabs into obj[]; grows by whole slabs. */
static unsigned slabs_fill(struct kmem_cache *c, void **obj, unsigned n)
{
	unsigned got = 0;

	mm_spin_lock(&c->lock);
	c->allocs_slow++;
	while (got < n) {
		struct kmem_slab *s = c->list[LIST_PARTIAL];
		if (!s)
			s = c->list[LIST_EMPTY];
		if (!s) {
			mm_spin_unlock(&c->lock);
			s = slab_new(c);
			mm_spin_lock(&c->lock);
			if (!s)
				break;
			c->ctor_calls += c->ctor ? c->nobjs : 0;
			c->slabs_created++;
			list_add(c, s, LIST_EMPTY);
		}
		while (got < n && s->nfree)
			obj[got++] = slab_take(c, s);
	}
	mm_spin_unlock(&c->lock);
	return got;
}

/* The slab holding the byte at obj, from its block's head descriptor (a
 * slab's pages are contiguous in the direct map, the head page is `dist`
 * pages before obj's), or NULL if obj is not in a slab page. */
static inline struct kmem_slab *slab_base(const void *obj)
{
	uint32_t dist;
	const struct page *pg = pfa_virt_to_head(obj, &dist);
	uintptr_t page = ((uintptr_t)obj & ~(PAGE_SIZE - 1)) - ((uintptr_t)dist << PAGE_SHIFT);

	if (__builtin_expect(pg == NULL, 0))
		return NULL;
	return pg->owner == PG_CACHE ? (struct kmem_slab *)page : NULL;
}

/* The fast way, for a slab of c's order: slabs are naturally aligned
 * PFA blocks, so the one candidate head is obj's physical address aligned
 * down to the slab size, and a PG_CACHE head of that order there is the
 * slab (the PFA writes heads only where blocks start).  One descriptor,
 * whatever page of the slab obj is in.  True: in such a slab, at *off
 * bytes from its start (the slab is obj - *off). */
static inline bool slab_in(const struct kmem_cache *c, const void *obj, uint64_t *off)
{
	phys_addr_t pa = pfa_phys_inline(obj);
	*off = pa & (((phys_addr_t)PAGE_SIZE << c->order) - 1);
	const struct page *pg = pfa_page_inline(pa - *off);   /* NULL outside managed RAM */

	return __builtin_expect(pg != NULL && pg->owner == PG_CACHE && pg->order == c->order, 1);
}

/* Not in a slab of c's order: why not, from the descriptor of the block
 * obj is in; or that other cache's slab. */
static struct kmem_slab *slab_of_other(const void *obj, enum kmalloc_report_kind *why)
{
	uint32_t dist;
	const struct page *pg = pfa_virt_to_head(obj, &dist);

	if (!pg) {
		*why = KM_BAD_UNMANAGED;
		return NULL;
	}
	if (pg->owner != PG_CACHE) {
		*why = pg->owner == PG_RESERVED ? KM_BAD_RESERVED :
		       pg->owner == PG_FREE || pg->owner == PG_FREE_TAIL ? KM_BAD_FREE_PAGE :
		       KM_BAD_FOREIGN;
		return NULL;
	}
	return slab_base(obj);
}

/* The slab of obj if obj is a slot of cache c; else the report kind. */
static struct kmem_slab *slab_of(struct kmem_cache *c, const void *obj,
				 enum kmalloc_report_kind *why, unsigned *slot)
{
	uint64_t off;
	struct kmem_slab *s = slab_in(c, obj, &off) ? (struct kmem_slab *)((uintptr_t)obj - off)
						    : slab_of_other(obj, why);

	if (!s)
		return NULL;
	if (s->magic != ((uintptr_t)s ^ SLAB_MAGIC) || s->cache != c) {
		*why = s->magic == ((uintptr_t)s ^ SLAB_MAGIC) ? KM_BAD_WRONG_CACHE : KM_BAD_FOREIGN;
		return NULL;
	}
	uint64_t rel = (uint64_t)((uintptr_t)obj - (uintptr_t)s) - c->first;
	if (rel >= c->span || !mm_divisible((uint32_t)rel, c->divc)) {
		*why = KM_BAD_MISALIGNED;
		return NULL;
	}
	*slot = (unsigned)(rel / c->stride);
	return s;
}

static void bad_free(struct kmem_cache *c, const void *obj,
		     enum kmalloc_report_kind why, void *caller)
{
	mm_spin_lock(&c->lock);
	c->bad_frees++;
	mm_spin_unlock(&c->lock);
	mm_report_pointer(why, c->free_op, obj, 0, caller, PG_CACHE);
}

/* Give obj back to its slab (cache lock held); false: it was free. */
static bool slab_put(struct kmem_cache *c, struct kmem_slab *s, unsigned i)
{
	uint64_t *bm = slab_bitmap(s);

	if (bm[i / 64] & (1ull << (i % 64)))
		return false;
	bm[i / 64] |= 1ull << (i % 64);
	if (i / 64 < s->hint)
		s->hint = i / 64;
	s->nfree++;
	s->inuse--;
	c->objs_in_slabs--;
	if (s->inuse)
		list_move(c, s, LIST_PARTIAL);
	else if (c->nslabs[LIST_EMPTY] < c->keep_empty)
		list_move(c, s, LIST_EMPTY);
	else {   /* enough empty slabs kept; this one goes back */
		list_del(c, s);
		slab_delete(c, s);
	}
	return true;
}

static void slabs_flush(struct kmem_cache *c, void **obj, unsigned n, void *caller)
{
	for (unsigned k = 0; k < n; k++) {
		enum kmalloc_report_kind why = KM_REPORT_NONE;
		unsigned i = 0;
		struct kmem_slab *s = slab_of(c, obj[k], &why, &i);
		mm_spin_lock(&c->lock);
		bool ok = s && slab_put(c, s, i);
		c->frees_slow++;
		mm_spin_unlock(&c->lock);
		if (!ok)
			bad_free(c, obj[k], s ? KM_DOUBLE_FREE : why, caller);
	}
}

/* depot ops */
static unsigned depot_fill(struct mm_depot *d, void **obj, unsigned n)
{
	return slabs_fill(d->owner, obj, n);
}

static void depot_flush_objs(struct mm_depot *d, void **obj, unsigned n)
{
	slabs_flush(d->owner, obj, n, NULL);
}

static const struct mm_depot_ops cache_ops = {
	depot_fill, depot_flush_objs, pcpu_mag_new, pcpu_mag_delete,
};

/* ------------------------------------------------------------------ */
/* create / destroy                                                   */
/* ------------------------------------------------------------------ */

static struct mm_layer cache_layer;

/* Put c on the list of caches; the first cache puts the cache layer in
 * the whole-allocator operations (mm/layer.h). */
static void cache_register(struct kmem_cache *c)
{
	mm_layer_register(&cache_layer);
	mm_spin_lock(&caches_lock);
	mm_list_push(&caches, c);
	mm_spin_unlock(&caches_lock);
}

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned flags, void (*ctor)(void *obj))
{
	void *caller = RET_ADDR();

	if (align == 0)
		align = 8;
	if (flags & KMEM_HWCACHE_ALIGN && align < KMEM_CACHE_LINE)
		align = KMEM_CACHE_LINE;
	if (align & (align - 1) || align > PAGE_SIZE) {
		mm_report_pointer(KM_FAIL_BAD_ALIGN, "kmem_cache_create", NULL, align, caller, 0);
		return NULL;
	}
	if (size == 0 || size >= KMALLOC_MAX_SIZE) {
		mm_report_pointer(KM_FAIL_TOO_LARGE, "kmem_cache_create", NULL, size, caller, 0);
		return NULL;
	}
	struct kmem_cache *c = kzalloc(sizeof *c, 0);
	if (!c)
		return NULL;
	unsigned i;
	for (i = 0; name && name[i] && i < KMEM_NAME_MAX - 1; i++)
		c->name[i] = name[i];
	c->name[i] = '\0';
	mm_snprintf(c->free_op, sizeof c->free_op, "kmem_cache_free[%s]", c->name);
	c->flags = flags;
	c->size = size;
#if MM_DEBUG
	c->dbg = (flags & KMEM_DEBUG) ? MM_DBG_REDZONE | MM_DBG_POISON :
					 mm_debug_flags() & (MM_DBG_REDZONE | MM_DBG_POISON);
	if (ctor)
		c->dbg &= ~MM_DBG_POISON;     /* poison would undo the constructor */
	if (c->dbg & MM_DBG_REDZONE)
		c->rz = (uint32_t)(align > 16 ? align : 16);
#endif
	c->stride = mm_align_up(c->rz + (size < 8 ? 8 : size) + (c->rz ? 16 : 0), align);
	c->ctor = ctor;
	mm_spin_init(&c->lock, MM_LOCK_CACHE);
	if (!choose_order(c, align)) {
		kfree(c);
		mm_report_pointer(KM_FAIL_TOO_LARGE, "kmem_cache_create", NULL, size, caller, 0);
		return NULL;
	}
	c->divc = mm_divc((uint32_t)c->stride);   /* stride <= a slab: 32-bit */
	c->first += c->rz;                /* slot i's object: first + i * stride */
	c->span = (uint32_t)(c->nobjs * c->stride);
	c->keep_empty = (unsigned)(CACHE_KEEP_EMPTY >> (PAGE_SHIFT + c->order));
	if (c->keep_empty == 0)
		c->keep_empty = 1;
	unsigned cap = (unsigned)(CACHE_MAG_BYTES / c->stride);
	depot_init(&c->depot, cap < 4 ? 4 : cap, CACHE_MAX_FULL, &cache_ops, c, MM_LOCK_CACHE_DEPOT);
	for (i = 0; i < MM_CPU_SLOTS; i++)
		slot_init(&c->cpu[i]);
	c->percpu = !(flags & KMEM_NO_PERCPU) && !c->dbg;
	cache_register(c);
	return c;
}

/* Free every empty slab (lock held); pages given back. */
static uint64_t free_empty_slabs(struct kmem_cache *c)
{
	uint64_t pages = 0;
	struct kmem_slab *s;

	while ((s = c->list[LIST_EMPTY]) != NULL) {
		list_del(c, s);
		slab_delete(c, s);
		pages += (uint64_t)1 << c->order;
	}
	return pages;
}

static void drain_cpu(struct kmem_cache *c, unsigned cpu)
{
	unsigned long irq = mm_irq_save();
	slot_drain(&c->cpu[cpu], &c->depot);
	mm_irq_restore(irq);
}

uint64_t kmem_cache_shrink(struct kmem_cache *c)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();
	if (cpu < MM_MAX_CPUS)
		slot_drain(&c->cpu[cpu], &c->depot);
	mm_irq_restore(irq);
	depot_flush(&c->depot);
	mm_spin_lock(&c->lock);
	uint64_t pages = free_empty_slabs(c);
	mm_spin_unlock(&c->lock);
	return pages;
}

long kmem_cache_destroy(struct kmem_cache *c)
{
	long live = 0;

	if (!c)
		return 0;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		drain_cpu(c, cpu);
	kmem_cache_shrink(c);
	mm_spin_lock(&c->lock);
	for (unsigned l = LIST_PARTIAL; l <= LIST_FULL; l++) {
		for (struct kmem_slab *s = c->list[l]; s; s = s->next) {
			const uint64_t *bm = slab_bitmap(s);
			for (unsigned i = 0; i < c->nobjs; i++) {
				if (bm[i / 64] & (1ull << (i % 64)))
					continue;
				live++;
				mm_printf("strata: kmem_cache_destroy(%s): object %p still allocated\n",
					  c->name, slot_addr(c, s, i));
			}
		}
	}
	mm_spin_unlock(&c->lock);
	if (live) {
		mm_printf("strata: kmem_cache_destroy(%s): %ld objects still allocated, "
			  "cache left in place\n", c->name, live);
		return live;
	}
	mm_spin_lock(&caches_lock);
	mm_list_unlink(&caches, c);
	mm_spin_unlock(&caches_lock);
	kfree(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* alloc / free                                                       */
/* ------------------------------------------------------------------ */

/* A sampled object (mm/guard.c): a guarded slot, constructed (each
 * time: the slot is not kept constructed as a slab's is). */
static void *cache_alloc_sampled(struct kmem_cache *c, unsigned flags, void *caller)
{
	size_t align = c->stride & -c->stride;       /* the cache's alignment divides it */
	void *obj = guard_alloc(c->size, align < 16 ? 16 : align, flags & KM_ZERO, caller);
	if (obj && c->ctor && !(flags & KM_ZERO))
		c->ctor(obj);
	return obj;
}

static __attribute__((noinline)) void *cache_alloc_slow(struct kmem_cache *c, unsigned flags,
							void *caller)
{
	void *obj = NULL;
	if (!c->dbg && guard_sample_slow() && (obj = cache_alloc_sampled(c, flags, caller)))
		return obj;
	unsigned long irq = mm_irq_save();
	unsigned cpu = c->percpu ? mm_cpu_id() : MM_CPU_NONE;

	if (c->percpu && cpu >= MM_MAX_CPUS)
		cpu = mm_platform_cpu_attach();
	if (cpu < MM_MAX_CPUS)
		obj = mag_alloc_slow(&c->cpu[cpu], &c->depot);
	mm_irq_restore(irq);
	if (!obj && !slabs_fill(c, &obj, 1)) {
		if (c->flags & KMEM_PANIC) {
			char msg[96];
			mm_snprintf(msg, sizeof msg, "kmem_cache_alloc(%s): out of memory, caller %p",
				    c->name, caller);
			mm_platform_panic(msg);
		}
		mm_report_pointer(KM_FAIL_NOMEM, "kmem_cache_alloc", NULL, c->size, caller, 0);
		return NULL;
	}
	if (c->dbg)
		dbg_on_alloc(c, obj, caller);
	if (flags & KM_ZERO) {
		for (size_t i = 0; i < c->size; i++)
			((unsigned char *)obj)[i] = 0;
	}
	return obj;
}

void *kmem_cache_alloc(struct kmem_cache *c, unsigned flags)
{
	if (__builtin_expect(flags == 0, 1)) {
		unsigned long irq = mm_irq_save();
		unsigned cpu = mm_cpu_id();
		if (__builtin_expect(mm_cpu_indexable(cpu), 1)) {
			struct mm_mag *m = c->cpu[cpu].loaded;
			if (__builtin_expect(m->count != 0, 1)) {
				void *obj = mag_take(m);
				mm_irq_restore(irq);
				return obj;
			}
		}
		mm_irq_restore(irq);
	}
	return cache_alloc_slow(c, flags, MM_FAST_CALLER());
}

static __attribute__((noinline)) int cache_free_slow(struct kmem_cache *c, void *obj,
						     void *caller)
{
	enum kmalloc_report_kind why = KM_REPORT_NONE;
	unsigned i;
	if (guard_owns(obj)) {          /* a sampled object */
		guard_free(obj, caller);
		return 0;
	}
	struct kmem_slab *s = slab_of(c, obj, &why, &i);

	if (!s) {
		bad_free(c, obj, why, caller);
		return -1;
	}
	mm_spin_lock(&c->lock);
	bool already_free = (s->bitmap[i / 64] >> (i % 64)) & 1;
	mm_spin_unlock(&c->lock);
	if (already_free) {
		bad_free(c, obj, KM_DOUBLE_FREE, caller);
		return -1;
	}
	if (c->dbg)
		dbg_on_free(c, obj, caller);
	unsigned long irq = mm_irq_save();
	unsigned cpu = c->percpu ? mm_cpu_id() : MM_CPU_NONE;
	if (c->percpu && cpu >= MM_MAX_CPUS)
		cpu = mm_platform_cpu_attach();
	if (cpu < MM_MAX_CPUS) {
		struct mm_mag *m = c->cpu[cpu].loaded;
		if (m->count && m->obj[m->count - 1] == obj) {
			mm_irq_restore(irq);
			bad_free(c, obj, KM_DOUBLE_FREE, caller);
			return -1;
		}
		bool done = mag_free_slow(&c->cpu[cpu], &c->depot, obj);
		mm_irq_restore(irq);
		if (done)
			return 0;
	} else {
		mm_irq_restore(irq);
	}
	slabs_flush(c, &obj, 1, caller);
	return 0;
}

/* Fast path: obj is a slot of one of c's slabs (page descriptor + slab
 * header), was not the object freed last on this CPU, and fits on this
 * CPU's loaded magazine.  0, or -1 for an object refused (reported). */
int kmem_cache_free(struct kmem_cache *c, void *obj)
{
	uint64_t off;

	if (__builtin_expect(slab_in(c, obj, &off) &&
			     ((const struct kmem_slab *)((uintptr_t)obj - off))->cache == c, 1)) {
		uint64_t rel = off - c->first;
		if (__builtin_expect(rel < c->span && mm_divisible((uint32_t)rel, c->divc), 1)) {
			unsigned long irq = mm_irq_save();
			unsigned cpu = mm_cpu_id();
			if (__builtin_expect(mm_cpu_indexable(cpu), 1)) {
				struct mm_mag *m = c->cpu[cpu].loaded;
				uint32_t n = m->count;
				if (__builtin_expect(n < m->cap && (n == 0 || m->obj[n - 1] != obj), 1)) {
					m->obj[n] = obj;
					m->count = n + 1;
					mm_irq_restore(irq);
					return 0;
				}
			}
			mm_irq_restore(irq);
		}
	}
	return cache_free_slow(c, obj, MM_FAST_CALLER());
}

/* ------------------------------------------------------------------ */
/* the caches in the whole-allocator operations (mm/layer.h)         */
/* ------------------------------------------------------------------ */

static void kmem_cache_cpu_detach(unsigned cpu)
{
	mm_spin_lock(&caches_lock);
	struct kmem_cache *list = caches;
	mm_spin_unlock(&caches_lock);
	for (struct kmem_cache *c = list; c; c = c->next)
		drain_cpu(c, cpu);
}

static uint64_t kmem_cache_reclaim(void)
{
	uint64_t pages = 0;

	mm_spin_lock(&caches_lock);
	struct kmem_cache *list = caches;
	mm_spin_unlock(&caches_lock);
	for (struct kmem_cache *c = list; c; c = c->next)
		pages += kmem_cache_shrink(c);
	return pages;
}

/* Every cache lock, level by level (mm/lock_order.h): the list, then
 * every depot, then every cache. */
static void kmem_cache_lock_all(void)
{
	mm_spin_lock(&caches_lock);
	for (struct kmem_cache *c = caches; c; c = c->next)
		mm_spin_lock(&c->depot.lock);
	for (struct kmem_cache *c = caches; c; c = c->next)
		mm_spin_lock(&c->lock);
}

static void kmem_cache_unlock_all(void)
{
	for (struct kmem_cache *c = caches; c; c = c->next)
		mm_spin_unlock(&c->lock);
	for (struct kmem_cache *c = caches; c; c = c->next)
		mm_spin_unlock(&c->depot.lock);
	mm_spin_unlock(&caches_lock);
}

static struct mm_layer cache_layer = {
	.name = "caches", .level = MM_LOCK_CACHES, .trim = kmem_cache_reclaim,
	.lock = kmem_cache_lock_all, .unlock = kmem_cache_unlock_all,
	.check = kmem_cache_check_all, .cpu_detach = kmem_cache_cpu_detach,
};

/* ------------------------------------------------------------------ */
/* statistics and checks                                              */
/* ------------------------------------------------------------------ */

void kmem_cache_get_stats(struct kmem_cache *c, struct kmem_cache_stats *st)
{
	*st = (struct kmem_cache_stats){ 0 };
	for (unsigned i = 0; i < KMEM_NAME_MAX; i++)
		st->name[i] = c->name[i];
	st->object_size = c->size;
	st->stride = c->stride;
	st->objs_per_slab = c->nobjs;
	st->slab_order = c->order;
	st->objs_cached = depot_objects(&c->depot);
	mm_spin_lock(&c->lock);
	st->slabs_partial = c->nslabs[LIST_PARTIAL];
	st->slabs_full = c->nslabs[LIST_FULL];
	st->slabs_empty = c->nslabs[LIST_EMPTY];
	st->slabs = st->slabs_partial + st->slabs_full + st->slabs_empty;
	st->objs_total = st->slabs * c->nobjs;
	st->objs_in_slabs = c->objs_in_slabs;
	st->ctor_calls = c->ctor_calls;
	st->slabs_created = c->slabs_created;
	st->allocs_slow = c->allocs_slow;
	st->frees_slow = c->frees_slow;
	st->bad_frees = c->bad_frees;
	mm_spin_unlock(&c->lock);
}

void kmem_cache_print_slabinfo(void (*out)(const char *s, size_t n))
{
	char line[160];
	int n = mm_snprintf(line, sizeof line,
			    "# slabinfo: name              active    total  objsize  stride "
			    "objperslab pagesperslab   slabs (partial/full/empty)  depot\n");
	out(line, (size_t)n);
	mm_spin_lock(&caches_lock);
	struct kmem_cache *list = caches;
	mm_spin_unlock(&caches_lock);
	for (struct kmem_cache *c = list; c; c = c->next) {
		struct kmem_cache_stats st;
		kmem_cache_get_stats(c, &st);
		n = mm_snprintf(line, sizeof line,
				"%-24s %8llu %8llu %8llu %7llu %10u %12u %7llu (%llu/%llu/%llu) %6llu\n",
				st.name, (unsigned long long)st.objs_in_slabs,
				(unsigned long long)st.objs_total,
				(unsigned long long)st.object_size, (unsigned long long)st.stride,
				st.objs_per_slab, 1u << st.slab_order,
				(unsigned long long)st.slabs, (unsigned long long)st.slabs_partial,
				(unsigned long long)st.slabs_full, (unsigned long long)st.slabs_empty,
				(unsigned long long)st.objs_cached);
		out(line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
	}
}

static int check_slab(struct kmem_cache *c, struct kmem_slab *s, unsigned which)
{
	int bad = 0;
	const uint64_t *bm = slab_bitmap(s);
	unsigned freebits = 0;

	for (unsigned i = 0; i < c->nobjs; i++)
		freebits += (bm[i / 64] >> (i % 64)) & 1;
	if (s->magic != ((uintptr_t)s ^ SLAB_MAGIC) || s->cache != c) {
		mm_printf("strata: cache %s: slab %p has a bad header\n", c->name, (void *)s);
		return 1;
	}
	for (unsigned w = 0; w < s->hint; w++)
		if (s->bitmap[w]) {
			mm_printf("strata: cache %s: slab %p has free slots below its hint\n",
				  c->name, (void *)s);
			bad++;
			break;
		}
	if (freebits != s->nfree || s->inuse + s->nfree != c->nobjs) {
		mm_printf("strata: cache %s: slab %p counts %u free + %u in use, bitmap %u free\n",
			  c->name, (void *)s, s->nfree, s->inuse, freebits);
		bad++;
	}
	for (unsigned i = 0; c->dbg && i < c->nobjs; i++) {
		bool is_free = (bm[i / 64] >> (i % 64)) & 1;
		bad += !dbg_check(c, slot_addr(c, s, i), is_free, NULL);
	}
	unsigned want = s->inuse == 0 ? LIST_EMPTY : s->nfree == 0 ? LIST_FULL : LIST_PARTIAL;
	if (which != want) {
		mm_printf("strata: cache %s: slab %p on list %u, should be %u\n", c->name,
			  (void *)s, which, want);
		bad++;
	}
	return bad;
}

int kmem_cache_check_all(void)
{
	int bad = 0;

	mm_spin_lock(&caches_lock);
	struct kmem_cache *list = caches;
	mm_spin_unlock(&caches_lock);
	for (struct kmem_cache *c = list; c; c = c->next) {
		mm_spin_lock(&c->lock);
		uint64_t inuse = 0;
		for (unsigned l = 0; l < NLISTS; l++)
			for (struct kmem_slab *s = c->list[l]; s; s = s->next) {
				bad += check_slab(c, s, l);
				inuse += s->inuse;
			}
		if (inuse != c->objs_in_slabs) {
			mm_printf("strata: cache %s: %llu objects in use in slabs, counter says %llu\n",
				  c->name, (unsigned long long)inuse,
				  (unsigned long long)c->objs_in_slabs);
			bad++;
		}
		mm_spin_unlock(&c->lock);
	}
	return bad;
}

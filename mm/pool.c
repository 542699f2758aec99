/*
 * pool.c - level +2 of strata: size classes, pools and blocks (pool.h:
 * the state and the inline fast paths; pool_check.c: kmalloc_check).
 *
 * strata is layered like CPython's memory manager (Objects/obmalloc.c);
 * mm/LAYERS lists every layer and file, this picture the core ones:
 *
 *     kernel code:  kmalloc(n) / kfree(p)        kmem_cache (+3, slab.c)
 *                   per-CPU magazines in front of both (percpu.c)
 *    ____________________________________________________________________
 *   [   object allocator: size classes, pools of blocks, arenas         ]
 * +2 | mm/pool.c, mm/arena.c      n <= 32768 bytes (KMALLOC_SMALL_MAX)  |
 *    |___________________________________________________________________|
 *   [   large allocations: runs of whole pages                          ]
 * +1 | mm/large.c                 n > 32768 bytes                       |
 *    |___________________________________________________________________|
 *   [   page-frame allocator: buddy system, one descriptor per page     ]
 *  0 | mm/pfa.c                   blocks of 2^0 .. 2^10 pages            |
 *    |___________________________________________________________________|
 *   [   physical RAM handed over by the kernel (pfa_add_region)         ]
 *
 * An ARENA is one PFA block of 1 MiB, cut into POOLS of one size: 64 of
 * 16 KiB for the small classes (n <= 2048), or 32 down to 2 pools of
 * 32 KiB .. 512 KiB for the MEDIUM classes (2 KiB < n <= 32 KiB, and five
 * classes from 1280 up whose 16 KiB pools would waste too much; below).
 * A pool serves exactly one SIZE CLASS and is cut into BLOCKS of that
 * size.  A block carries no header: its pool header (found from the page
 * descriptor, O(1)) knows the size, so a 16-byte request costs 16 bytes.
 *
 *   arena (1 MiB, naturally aligned PFA block of order 8)
 *   +-----------+-----------+-----------+-- ... --+-----------+
 *   | pool 0    | pool 1    | pool 2    |         | pool 63   |
 *   | hdr|arena | hdr       | hdr       |         | (never    |
 *   | hdr|blocks| blocks... | blocks... |         |  carved)  |
 *   +-----------+-----------+-----------+-- ... --+-----------+
 *        ^ the arena's own header sits in pool 0, after its pool header
 *
 *   pool (16 KiB, one size class, here 64-byte blocks)
 *   +--------+-------+-------+-------+-------+-------+------------------+
 *   | header | used  | free  | used  | free  | used  | never carved ... |
 *   | 64 B   |       |   |   |       |   |   |       |                  |
 *   +--------+-------+---|---+-------+---|---+-------+------------------+
 *    freeblock ----------+   <-----------+           ^
 *    (the free list is threaded through the free     first + carved:
 *     blocks themselves, LIFO)                       blocks are carved
 *                                                    lazily, one at a time
 *   Block 0 starts on the next cache line (64 bytes; in pool 0, after the
 *   arena header, at 128): kfree reads the header lock-free, and a block
 *   in the same line would bounce it between the CPUs writing it.
 *
 * usedpools[class] is a doubly linked list of the pools of that class
 * that have at least one free block, so allocation is O(1):
 *
 *   usedpools[0]  (16 B) --> pool --> pool --> NULL
 *   usedpools[1]  (32 B) --> NULL                 (next request: new pool)
 *   usedpools[3]  (64 B) --> pool --> NULL
 *   ...
 *
 * A pool is in one of three states, as in obmalloc:
 *   used   some blocks handed out, some free: on usedpools[class]
 *   full   no free block: on no list (a free makes it "used" again)
 *   empty  no block handed out: back on its arena's free-pool list, where
 *          any class may take it; except that the LAST pool of a class
 *          is "parked": it stays on usedpools[class] while empty, so a
 *          loop of kmalloc(n); kfree(p) never leaves the fast path.  A
 *          parked pool gives way as soon as another pool of its class
 *          joins the list, and when its arena has nothing else in use.
 *
 * Fast and slow paths
 * -------------------
 *   pool_alloc_fast()  pop the free list of usedpools[c] (inline, in
 *                      pool.h); carve one fresh block when the
 *                      list runs dry; a full pool leaves the list.
 *   pool_alloc_slow()  usedpools[c] is empty: take an empty pool from the
 *                      most used arena (mm/arena.c) and initialise it.
 *   pool_free_fast()   push on the pool's free list; done unless the pool
 *                      was full or has become empty.
 *   pool_free_slow()   full -> used (link into usedpools: a push, no
 *                      call), else (pool_free_rare) a parked pool gives
 *                      way, used -> empty (park it, or return it to its
 *                      arena).
 *   pool_alloc_bulk()  the per-CPU layer's magazine fill: a run of blocks
 *   pool_free_bulk()   of one pool at a time (its list, then fresh ones;
 *                      or back), the pool's head and count written once;
 *   pool_free_one()    one block back (inline, pool.h: a medium trim).
 * These take no lock themselves: the callers (mm/kmalloc.c, and the
 * per-CPU layer's batch fills and flushes in mm/percpu.c) hold pools.lock
 * around them.  The per-CPU magazines in front take no lock at all.
 *
 * Checking a pointer (kfree of something never handed out)
 * --------------------------------------------------------
 * The page descriptor of a pool page belongs to an arena block (its head
 * says PG_ARENA) and carries cls = class + 1; the pool starts at the
 * page's distance from the arena head modulo the class's pool pages (4
 * for a 16 KiB pool, up to 128) before it.  A block must then lie in
 * [first, first + carved) at a multiple of the size (mm_divisible: a
 * multiply by a 64-bit constant and one compare, no division).  A free
 * block carries mark = address ^ magic in its second word; a block
 * being freed that already carries its mark is looked up on the pool's
 * free list (only then, so the common case costs one compare): found =
 * double free.
 *
 * Size classes (KMALLOC_SMALL_MAX = 32768, 80 classes; the limit and
 * the geometry are compile-time: KMALLOC_SMALL_MAX, KM_POOL_SHIFT,
 * KM_ARENA_SHIFT)
 * ---------------------------------------------------
 *   16-byte spacing   16, 32, 48, ..., 512           32 classes
 *   then 8 classes per doubling (spacing 1/8 of the power of two below):
 *   64-byte spacing   576, 640, ..., 1024             8 classes
 *   128-byte spacing  1152, 1280, ..., 2048           8 classes
 *   256 .. 2048       2304, 2560, ..., 32768         32 classes (medium)
 * so a request above 128 bytes is rounded up by less than 1/8 of itself.
 * Each class takes the smallest pool (16 KiB << kind, kind 0 for the
 * small classes, from 32 KiB for the medium ones) that holds at least 8
 * blocks and costs the class's smallest request less than 1/6 more, its
 * share of header and tail included (class_kind below):
 *
 *   class  size  blocks/pool  pool | class  size  blocks/pool  pool
 *      0     16     1020    16 KiB |   41   1280     25      32 KiB
 *      1     32      510    16 KiB |   47   2048     15      32 KiB
 *      3     64      255    16 KiB |   48   2304     14      32 KiB
 *      7    128      127    16 KiB |   49   2560     25      64 KiB
 *     15    256       63    16 KiB |   55   4096     15      64 KiB
 *     31    512       31    16 KiB |   63   8192     15     128 KiB
 *     39   1024       15    16 KiB |   71  16384     15     256 KiB
 *     40   1152       14    16 KiB |   79  32768     15     512 KiB
 *   (pool 0 of an arena holds 0..2 blocks fewer: the arena header;
 *    bench_kmalloc --waste prints the whole table)
 *
 * Block 0 starts at the header rounded up to the class's power-of-two
 * factor whenever that costs no block, so every power-of-two class is
 * naturally aligned (kmalloc(64) is 64-byte aligned, kmalloc(2048) is
 * 2048-byte aligned), and kmalloc_aligned() finds small aligned blocks
 * in ordinary classes.
 *
 * Waste, measured over every request size: rounding up to the class
 * plus each block's share of its pool's header and unusable tail
 * (tests/bench/bench_kmalloc.c --waste; above the limit a request costs
 * whole pages):
 *
 *                          average waste                     worst waste
 *   limit  pool    uniform    uniform    log-uniform    sizes  sizes  sizes
 *                  1..512     1..2048    8..2048        >=17   >=65   513..2048
 *    512    4 KiB   8.1%      206.6%      205.5%         47.7%  20.7%  (pages)
 *    512   16 KiB   4.4%      206.4%      204.8%
 *   1024   16 KiB   4.4%      126.5%       92.9%
 *   2048    4 KiB   8.1%       33.3%       25.4%
 *   2048   16 KiB   4.4%       10.1%        9.1%         47.1%  19.1%  17.9%
 *   (the worst cases are the rounding of the smallest sizes -- 1 byte
 *    costs 16, 17 costs 32, 33 costs 48 -- which no 16-byte-aligned
 *    allocator avoids; from 65 bytes on the waste is under 20%.)
 * and with the medium classes (limit 32768, 16..512 KiB pools), by range
 * of request sizes, average over the request / worst share of the
 * memory lost / worst rounding alone:
 *
 *                  limit 2048 (pages above)   limit 32768 (chosen)
 *     513..2048       10.5%  17.9%             8.5%  14.0%  12.4%
 *    2049..4096       33.3%  50.0%             8.9%  14.0%  12.4%
 *    4097..8192       33.3%  50.0%             8.9%  14.0%  12.5%
 *    8193..16384      16.7%  33.3%             8.9%  14.1%  12.5%
 *   16385..32768       8.3%  20.0%             8.9%  14.1%  12.5%
 *   (rounding alone is below 1/8 for every request of 129 bytes and
 *    more; 2100 bytes cost 2304, not 4096; 4200 cost 4608, not 8192.)
 *
 * Measured with the real allocator (tests/bench/bench_kmalloc.c
 * --geometry, 200,000 blocks, 70% of 1..256 bytes, 30% of 1..2048):
 *   limit 512,  4 KiB pools:  198.1 MiB held for 75.6 MiB asked (+162%)
 *   limit 2048, 4 KiB pools:   97.0 MiB                          (+28%)
 *   limit 2048, 16 KiB pools:  83.0 MiB                          (+9.8%)
 * and the 30% of requests above 512 bytes cost no PFA call at all.  4 KiB
 * pools cannot hold classes above 512 well (1024: 3 per pool, 25% lost;
 * 2048: 1 per pool, 50%), hence 16 KiB pools, and bigger ones for the
 * classes a 16 KiB pool holds badly.  The price: every class in use
 * holds at least one pool, and every pool kind in use at least one
 * arena (one block of each of the 80 classes: 6 arenas, one per kind,
 * of which only the pages touched count in a hosted process's RSS).
 * Arena size: mm/arena.c.
 */
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#include "arena.h"
#include "large.h"
#include "layer.h"
#include "list.h"
#include "lock_order.h"
#include "pool.h"
#include "report.h"

struct pool_state pools;

/* The classes whose pools are of kind k, kind_cls[k][0 .. kind_ncls[k]):
 * an arena of kind k can hold parked pools of those classes only, so the
 * walks that look for them (parked_in, settle) take 45 classes for a
 * small arena and 3..8 for a medium one, not all 80. */
static uint8_t kind_cls[KM_KINDS][KMALLOC_MAX_CLASSES];
static uint8_t kind_ncls[KM_KINDS];

/* ------------------------------------------------------------------ */
/* size classes                                                       */
/* ------------------------------------------------------------------ */

/* Class spacing: 16 bytes up to 512, then 1/8 of the power of two below
 * (64 from 512, 128 from 1024, 256 from 2048, ..., 2048 from 16384): the
 * eight classes per doubling that keep any request's rounding < 1/8. */
static unsigned spacing_above(unsigned size)
{
	unsigned pow2 = 512;

	if (size < pow2)
		return 16;
	while (pow2 * 2 <= size)
		pow2 *= 2;
	return pow2 / 8;
}

static unsigned round_up(unsigned x, unsigned a)
{
	return (x + a - 1) / a * a;
}

/* Blocks of `size` that fit in a pool of pool_size when block 0 is at
 * `first`. */
static unsigned capacity(unsigned size, unsigned first, unsigned pool_size)
{
	return (pool_size - first) / size;
}

/* Largest alignment a (a power of two dividing size) such that starting
 * block 0 at a multiple of a loses no block in either kind of pool. */
static unsigned class_alignment(unsigned size, unsigned ps)
{
	unsigned a = size & -size;

	if (a > ps)
		a = ps;
	while (a > 16 &&
	       (capacity(size, round_up(KM_FIRST, a), ps) != capacity(size, KM_FIRST, ps) ||
		capacity(size, round_up(KM_FIRST0, a), ps) != capacity(size, KM_FIRST0, ps)))
		a /= 2;
	return a;
}

/* The pool kind of a class: the smallest pool (16 KiB for a small
 * class, from 32 KiB for a medium one) that holds at least 8 blocks
 * (also pool 0, after the arena header) and costs the smallest request
 * of the class (lowest = the class below + 1) less than 1/6 more than it
 * asks, block plus its share of header and tail, or less than 32 bytes
 * more (else the largest pool kind, half an arena).  16 KiB pools hold
 * all small classes but 1280, 1664 and 2048 (12, 9 and 7 blocks of a
 * 16 KiB pool: 18-22% over; in 32 KiB pools 25, 19 and 15). */
static unsigned class_kind(unsigned size, unsigned lowest)
{
	for (unsigned k = size <= KM_POOL_CLASS_MAX ? 0 : 1; k + 1 < KM_KINDS; k++) {
		uint64_t ps = KM_POOL_SIZE << k;
		uint64_t cap0 = capacity(size, KM_FIRST0, (unsigned)ps);
		if (cap0 >= 8 && (ps * 6 < (uint64_t)lowest * 7 * cap0 ||
				  ps < (lowest + 32) * cap0))   /* the 16-byte quantum */
			return k;
	}
	return KM_KINDS - 1;
}

/* Class k (of the table pools.cls, filled in ascending order: the class
 * below k, if any, is k[-1]) holds blocks of `size` bytes. */
static void class_init(struct km_class *k, unsigned size)
{
	unsigned lowest = k == pools.cls ? 1 : k[-1].size + 1;
	unsigned kind = class_kind(size, lowest);
	unsigned ps = (unsigned)KM_POOL_SIZE << kind;

	k->size = size;
	k->divc = mm_divc(size);
	k->kind = (uint8_t)kind;
	k->pool_size = ps;
	k->pool_pages = (uint16_t)(ps >> PAGE_SHIFT);
	k->align = class_alignment(size, ps);
	k->first = (uint16_t)round_up(KM_FIRST, k->align);
	k->first0 = (uint16_t)round_up(KM_FIRST0, k->align);
	k->cap = (uint16_t)capacity(size, k->first, ps);
	k->cap0 = (uint16_t)capacity(size, k->first0, ps);
}

static void pool_classes_init(void)
{
	unsigned n = 0;

	for (unsigned size = 16; size <= KM_SMALL_MAX; size += spacing_above(size))
		class_init(&pools.cls[n++], size);
	pools.nclasses = n;
	for (unsigned k = 0; k < KM_KINDS; k++)
		kind_ncls[k] = 0;
	for (unsigned c = 0; c < n; c++) {
		unsigned k = pools.cls[c].kind;
		kind_cls[k][kind_ncls[k]++] = (uint8_t)c;
	}

	unsigned c = 0;
	for (unsigned slot = 0; slot < KM_LOOKUP_SLOTS; slot++) {
		while (pools.cls[c].size < slot * 16)
			c++;
		pools.size2class[slot] = (uint8_t)c;
	}
	for (c = 0; c < KMALLOC_MAX_CLASSES; c++)
		pools.usedpools[c] = NULL;
}

/* The object allocator in the whole-allocator operations (mm/mm.c): its
 * one lock, kmalloc_check (pool_check.c), and the trim of parked pools,
 * idle arenas and the large-run cache (the layers above have given their
 * blocks back by the time it runs). */
static uint64_t pools_trim(void)
{
	mm_spin_lock(&pools.lock);
	uint64_t pages = pool_trim() + large_cache_flush();
	mm_spin_unlock(&pools.lock);
	return pages;
}

static void pools_lock(void)
{
	mm_spin_lock(&pools.lock);
}

static void pools_unlock(void)
{
	mm_spin_unlock(&pools.lock);
}

static struct mm_layer pool_layer = {
	.name = "pools", .level = MM_LOCK_POOLS, .trim = pools_trim,
	.lock = pools_lock, .unlock = pools_unlock, .check = kmalloc_check,
};

void pool_init_all(uintptr_t secret)
{
	/* zeroed in place: a compound literal of the whole state would be
	 * built on the stack first (592 bytes, clang) */
	mm_zero_bytes(&pools, sizeof pools);
	pools.lock = (mm_spinlock_t)MM_SPINLOCK_INIT_LEVEL(MM_LOCK_POOLS);
	pool_classes_init();
	pools.secret = secret;
	for (unsigned i = 0; i < KM_HINTS; i++)
		pools.hint[i] = KM_HINT_NONE;
	arena_init();
	mm_layer_register(&pool_layer);
}

/* ------------------------------------------------------------------ */
/* usedpools lists                                                    */
/* ------------------------------------------------------------------ */

static void used_push(unsigned c, struct km_pool *p)
{
	mm_list_push(&pools.usedpools[c], p);
}

static void used_unlink(unsigned c, struct km_pool *p)
{
	mm_list_unlink(&pools.usedpools[c], p);
	p->next = p->prev = NULL;
}

static bool is_parked(const struct km_pool *p)
{
	return p->ref == 0;   /* an empty pool on usedpools is a parked one */
}

static void pool_return(struct km_pool *p);

/* Link p (which has a free block) into usedpools; a parked pool of the
 * same class is no longer needed and goes back to its arena. */
static void used_link(unsigned c, struct km_pool *p)
{
	struct km_pool *head = pools.usedpools[c];

	if (head && is_parked(head) && !pools.reserves) {
		MM_PATH(MM_PATH_UNPARK);
		used_unlink(c, head);
		pool_return(head);
	}
	used_push(c, p);
}

/* ------------------------------------------------------------------ */
/* slow paths                                                         */
/* ------------------------------------------------------------------ */

/* Make the empty pool p serve class c: nothing carved yet but block 0. */
static void pool_init(struct km_pool *p, unsigned c)
{
	const struct km_class *k = &pools.cls[c];
	unsigned first = p->index == 0 ? k->first0 : k->first;
	struct km_block *b = (struct km_block *)((char *)p + first);

	p->cls = (uint16_t)c;
	p->divc = k->divc;
	p->ref = 0;
	p->first = first;
	mm_store(p->carved, k->size);
	p->maxnextoffset = k->pool_size - k->size;
	km_set_next(b, NULL);
	b->mark = km_free_mark(b);
	p->freeblock = b;
	mm_store(p->live, 1u);
	arena_mark_pool(p, true);
}

/*
 * The free list of p, popped at block b, decodes to `next`, which is not
 * in p: something wrote into the free block b (a use after free, or an
 * overflow from the block before it).  Report it and never follow it:
 * p is cut off as if it were full (its free blocks are lost, its blocks
 * in use can still be freed) and the allocation goes to another pool.
 */
void *pool_freelist_corrupt(struct km_pool *p, struct km_block *b, struct km_block *next)
{
	unsigned c = p->cls;

	pools.freelist_corruptions++;
	mm_report_freelist(p, pools.cls[c].size, b, next);
	p->freeblock = NULL;
	p->ref = pools.cls[c].cap + 1;     /* never looks empty again */
	mm_store(p->live, 2u);          /* kmalloc_check: counts no longer exact */
	pool_full_slow(p);
	return pool_alloc_fast(c);
}

/* kfree's lock-free paths may find a's pools from now on (a direct map
 * keeps the arena's 1 MiB alignment; if not, kfree asks the descriptor).
 * The hint carries the arena's pool kind (pool.h). */
static void hint_set(const struct km_arena *a)
{
	uintptr_t base = (uintptr_t)km_arena_base(a), h = base | a->kind;

	if ((base & (KM_ARENA_SIZE - 1)) == 0 && pools.hint[km_hint_slot(base)] != h)
		mm_store(pools.hint[km_hint_slot(base)], h);
}

/* a goes back to the PFA. */
static void hint_clear(const struct km_arena *a)
{
	uintptr_t base = (uintptr_t)km_arena_base(a);
	uintptr_t h = pools.hint[km_hint_slot(base)];

	if (h != KM_HINT_NONE && (h & ~(KM_ARENA_SIZE - 1)) == base)
		mm_store(pools.hint[km_hint_slot(base)], KM_HINT_NONE);
}

void *pool_alloc_slow(unsigned c)
{
	struct km_pool *p = arena_take_pool(pools.cls[c].kind);

	MM_PATH(MM_PATH_NEW_POOL);
	if (!p)
		return NULL;
	hint_set(p->arena);   /* the spare may have been of another kind */
	pool_init(p, c);
	used_push(c, p);
	return pool_alloc_fast(c);
}

/* The head of usedpools[c] has just handed out its last block. */
void pool_full_slow(struct km_pool *p)
{
	used_unlink(p->cls, p);
}

static void pool_parked(struct km_arena *a);

/* The rest of pool_free_slow: a parked pool gives way, or p is empty. */
static __attribute__((noinline)) void pool_free_rare(struct km_pool *p, bool was_full)
{
	unsigned c = p->cls;

	if (was_full)
		used_link(c, p);
	if (p->ref != 0)
		return;
	if (pools.usedpools[c] == p && p->next == NULL) {
		pool_parked(p->arena);   /* the last pool of c: park it */
		return;
	}
	used_unlink(c, p);
	pool_return(p);
}

/* After a free: p was full (now used), and/or p is now empty.  The common
 * case, a full pool used again while its class has no parked pool to give
 * way, is a push and makes no call, so it costs no frame (on riscv64 the
 * saved registers of the whole were a third of this case). */
void pool_free_slow(struct km_pool *p, bool was_full)
{
	unsigned c = p->cls;
	const struct km_pool *head = pools.usedpools[c];

	if (mm_likely(was_full && p->ref != 0 &&
		      (!head || !is_parked(head) || pools.reserves))) {
		used_push(c, p);   /* used_link with nothing to unpark */
		return;
	}
	pool_free_rare(p, was_full);
}

/* ------------------------------------------------------------------ */
/* bulk paths: magazine fills and flushes (mm/percpu.c)               */
/* ------------------------------------------------------------------ */

/* Never-carved blocks of p at offset *off on into obj[], at most n, each
 * with its magazine mark; *off moves past them.  How many.  The run's
 * end is worked out once (n blocks, or the last block that fits: its
 * offset <= maxnextoffset), so the loop has one bound held in a register
 * and nothing for the block stores to make the compiler read again:
 * about 7 instructions a block instead of 14. */
static unsigned carve_run(struct km_pool *p, unsigned size, void **obj, unsigned n,
			  unsigned *off)
{
	unsigned at = *off, end = at + n * size, stop = p->maxnextoffset + 1;
	char *q = (char *)p + at, *qend = (char *)p + (end < stop ? end : stop);
	void **o = obj;

	for (; q < qend; q += size) {
		struct km_block *b = (struct km_block *)q;
		b->enc = 0;
		b->mark = km_mag_mark(b);
		*o++ = b;
	}
	*off = (unsigned)(q - (char *)p);
	return (unsigned)(o - obj);
}

/* take_run met a corrupt link after block b (i blocks already in obj[]):
 * p is cut off (pool_freelist_corrupt reports it) and a block of another
 * pool, if any, takes the next place.  Out of line, so that take_run
 * makes no call of its own and needs no saved registers. */
static __attribute__((noinline)) unsigned take_run_corrupt(struct km_pool *p, void **obj,
							   unsigned i, struct km_block *b,
							   struct km_block *next)
{
	p->ref = (uint16_t)(p->ref + i);
	p->freeblock = b;
	struct km_block *other = pool_freelist_corrupt(p, b, next);
	if (other)
		other->mark = km_mag_mark(other);
	obj[i] = other;
	return i + (other != NULL);
}

/* Up to n blocks of p, the head of usedpools[c], into obj[]: its free
 * list first, then never-carved blocks, then one more carved as the new
 * free list, all written back once.  A pool used up leaves usedpools.  A
 * corrupt link is reported as in pool_alloc_fast when `report` (at least
 * one block then comes back), else the run ends before it and the link
 * stays for the caller's next run to meet (pool_alloc_bulk). */
static inline __attribute__((always_inline)) unsigned take_run(struct km_pool *p, unsigned c,
								 void **obj, unsigned n,
								 bool report)
{
	struct km_block *b = p->freeblock;   /* never NULL in usedpools */
	unsigned i = 0, size = pools.cls[c].size;

	while (b && i < n) {
		struct km_block *next = km_next(b);
		if (mm_unlikely(!km_next_ok(p, next))) {
			if (report)
				return take_run_corrupt(p, obj, i, b, next);
			break;   /* b stays the head: the caller's next take meets it */
		}
		b->enc = 0;
		b->mark = km_mag_mark(b);
		obj[i++] = b;
		b = next;
	}
	if (!b) {
		unsigned off = p->first + p->carved;
		i += carve_run(p, size, obj + i, n - i, &off);
		if (off <= p->maxnextoffset) {   /* the next fresh block: the list */
			b = (struct km_block *)((char *)p + off);
			km_set_next(b, NULL);
			b->mark = km_free_mark(b);
			off += size;
		}
		mm_store(p->carved, (uint32_t)(off - p->first));
	}
	p->ref = (uint16_t)(p->ref + i);
	p->freeblock = b;
	if (!b)
		pool_full_slow(p);
	return i;
}

/* The rest of a fill that the head pool could not give: the next pools of
 * c, and new ones (pool_alloc_slow) while there are none. */
static __attribute__((noinline)) unsigned alloc_bulk_more(unsigned c, void **obj, unsigned n,
							  unsigned got)
{
	while (got < n) {
		struct km_pool *p = pools.usedpools[c];
		if (p) {
			got += take_run(p, c, obj + got, n - got, true);
			continue;
		}
		struct km_block *b = pool_alloc_slow(c);   /* a new pool */
		if (!b)
			break;
		b->mark = km_mag_mark(b);
		obj[got++] = b;
	}
	return got;
}

/* A fill: the common case is one run of the head pool, with no call and
 * so no registers to save (riscv64: 12 saved and restored by the old
 * single loop, about 30 instructions a fill); anything else goes on in
 * alloc_bulk_more, including a corrupt link, which the first run stops
 * at and the next one reports. */
unsigned pool_alloc_bulk(unsigned c, void **obj, unsigned n)
{
	struct km_pool *p = pools.usedpools[c];
	unsigned got = p ? take_run(p, c, obj, n, false) : 0;

	return mm_likely(got == n) ? got : alloc_bulk_more(c, obj, n, got);
}

/* The blocks at obj[0..] that lie in p, up to n, onto p's free list;
 * its head and count written once, the slow path run once.  How many.
 * A block of class c lies in p exactly when it lies in p's pool_size
 * bytes, so the run's end is found by a range check, not by the pool
 * lookup (for medium classes a page-descriptor walk) of every block. */
static unsigned give_run(struct km_pool *p, unsigned c, void **obj, unsigned n)
{
	struct km_block *head = p->freeblock;
	unsigned ref = p->ref, i = 0;
	uintptr_t base = (uintptr_t)p, span = pools.cls[c].pool_size;

	do {
		struct km_block *b = obj[i];
		km_set_next(b, head);
		b->mark = km_free_mark(b);
		head = b;
		ref--;
	} while (++i < n && (uintptr_t)obj[i] - base < span && ref != 0);
	bool was_full = p->freeblock == NULL;
	p->freeblock = head;
	p->ref = (uint16_t)ref;
	if (mm_unlikely(was_full || ref == 0))
		pool_free_slow(p, was_full);
	return i;
}

/* pool_of_bulk_block's lookup for an arena without its hint (pool.h). */
struct km_pool *pool_of_unhinted(const void *b, unsigned c)
{
	return km_pool_of_class(b, c);
}

void pool_free_bulk(unsigned c, void **obj, unsigned n)
{
	for (unsigned i = 0; i < n;)
		i += give_run(pool_of_bulk_block(obj[i], c), c, obj + i, n - i);
}

/* ------------------------------------------------------------------ */
/* pointer checks                                                     */
/* ------------------------------------------------------------------ */

/* Slow half of pool_check_block(): is b on p's free list?  Only asked
 * when b already carries its free mark (a double free, or user data that
 * happens to look like the mark). */
bool pool_on_free_list(const struct km_pool *p, const struct km_block *b)
{
	unsigned limit = p->maxnextoffset / 16 + 1;   /* a cycle cannot hang us */

	for (const struct km_block *f = p->freeblock; f && limit; f = km_next(f), limit--)
		if (f == b)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* parked pools and the held arena                                    */
/* ------------------------------------------------------------------ */

/*
 * The rule, in one place: the last pool of a class to empty stays PARKED
 * at the head of its class list (so a kmalloc/kfree loop does not give
 * the pool back and carve it again each time), and of the arenas that no
 * block is handed out from any more ("unused"), exactly one is kept: the
 * arena layer's spare (all pools free) or the HELD arena here (its only
 * pools in use are parked ones).  Any other unused arena goes back to the
 * PFA, its parked pools first returned.  kmalloc_trim() (pool_trim)
 * returns every parked pool, the held arena and the spare.
 */

/* Pools of a parked on usedpools (each is the head of its class list). */
static unsigned parked_in(const struct km_arena *a)
{
	unsigned n = 0;

	for (unsigned i = 0; i < kind_ncls[a->kind]; i++) {
		const struct km_pool *p = pools.usedpools[kind_cls[a->kind][i]];
		n += p && is_parked(p) && p->arena == a;
	}
	return n;
}

/* No block of a is handed out: all its pools are free or parked. */
static bool arena_unused(const struct km_arena *a)
{
	unsigned in_use = a->npools - a->nfreepools;
	return in_use <= pools.nclasses && parked_in(a) == in_use;
}

/* Is there an unused arena other than a (the spare, or the held one)?
 * Forgets a held arena that is in use again. */
static bool other_unused(const struct km_arena *a)
{
	if (arena_spare_other_than(a))
		return true;
	if (pools.held && pools.held != a && arena_unused(pools.held))
		return true;
	pools.held = NULL;
	return false;
}

/* Clear the encoded links of p's free blocks: p's memory may next serve
 * another class (or, its arena freed, a large run), whose blocks would
 * otherwise hold old links (an encoded NULL is secret ^ its address).
 * p is empty, so every carved block is free: the links are cleared in
 * address order, one store per block, not by following the free list,
 * whose order is the order of the frees (random in a heap that was
 * freed at random: a chain of dependent cache misses, 22% of the frag
 * workload's time). */
static void pool_wipe_links(struct km_pool *p)
{
	uint32_t size = pools.cls[p->cls].size;
	char *b = (char *)p + p->first;
	const char *end = b + mm_load(p->carved);

	for (; b < end; b += size)
		((struct km_block *)b)->enc = 0;
	p->freeblock = NULL;
}

/* Pool p serves no class any more: back to its arena, no decision. */
static void pool_release(struct km_pool *p)
{
	MM_PATH_RETURN();
	pool_wipe_links(p);
	/* nothing carved: kfree's fast path, which does not read `live`,
	 * finds no block here (pool_block_ok_fast: rel < 0 never holds) */
	mm_store(p->carved, 0u);
	mm_store(p->live, 0u);
	p->ref = 0;
	arena_put_pool(p);
}

/* Every pool of a is free: it becomes the spare or goes to the PFA. */
static uint64_t pool_retire_arena(struct km_arena *a)
{
	if (pools.held == a)
		pools.held = NULL;
	bool keep = !other_unused(a);
	if (!keep)
		hint_clear(a);
	return arena_retire(a, keep);
}

/* a lost a pool in use: keep it (held), or retire it with its parked
 * pools, or leave it alone while blocks of it are handed out. */
static void settle(struct km_arena *a)
{
	unsigned in_use = a->npools - a->nfreepools;

	if (in_use > pools.nclasses || parked_in(a) != in_use || pools.reserves)
		return;
	MM_PATH(MM_PATH_SETTLE);
	if (in_use > 0 && !other_unused(a)) {
		MM_PATH(MM_PATH_HOLD);
		pools.held = a;
		return;
	}
	for (unsigned i = 0; i < kind_ncls[a->kind]; i++) {
		unsigned c = kind_cls[a->kind][i];
		struct km_pool *p = pools.usedpools[c];
		if (p && is_parked(p) && p->arena == a) {
			used_unlink(c, p);   /* parked: alone on its list */
			pool_release(p);
		}
	}
	pool_retire_arena(a);
}

static void pool_return(struct km_pool *p)
{
	struct km_arena *a = p->arena;

	if (pools.reserves) {            /* kept for a kmalloc_reserve() */
		used_push(p->cls, p);
		return;
	}
	pool_release(p);
	settle(a);
}

/* A pool of a was parked.  If a is the held arena already, settling
 * would change nothing (a held arena means no spare exists, and a stays
 * held whether or not it is unused), so the kmalloc/kfree loop on an
 * otherwise empty allocator costs one compare here. */
static void pool_parked(struct km_arena *a)
{
	if (a != pools.held) {
		MM_PATH(MM_PATH_PARK);
		settle(a);
	}
}

/* ------------------------------------------------------------------ */
/* reserves for sections that must not reach the PFA                  */
/* ------------------------------------------------------------------ */

unsigned pool_reserve(unsigned c, unsigned n)
{
	struct km_block *taken = NULL;
	unsigned got;

	pools.reserves++;                 /* from now on no empty pool leaves */
	for (got = 0; got < n; got++) {   /* may create pools and arenas */
		struct km_block *b = pool_alloc_fast(c);
		if (!b)
			break;
		b->enc = (uintptr_t)taken;    /* a plain chain, ours until freed */
		taken = b;
	}
	while (taken) {                   /* pools may empty: they stay */
		struct km_block *next = (struct km_block *)taken->enc;
		pool_free_fast(km_pool_of_class(taken, c), taken);
		taken = next;
	}
	return got;
}

/* An empty pool of class c that a free would not have kept (any but a
 * lone one, which is parked), or NULL. */
static struct km_pool *kept_for_reserve(unsigned c)
{
	struct km_pool *head = pools.usedpools[c];

	for (struct km_pool *p = head; p; p = p->next)
		if (p->ref == 0 && (p != head || p->next))
			return p;
	return NULL;
}

/* The empty pools kept on usedpools meanwhile go as frees would have
 * sent them.  One at a time: a return may settle an arena, which
 * changes the lists.  Not on an allocation path: the walks may be long. */
void pool_unreserve(void)
{
	if (!pools.reserves || --pools.reserves)
		return;
	for (unsigned c = 0; c < pools.nclasses; c++)
		for (struct km_pool *p; (p = kept_for_reserve(c)) != NULL;) {
			used_unlink(c, p);
			pool_return(p);
		}
}

uint64_t pool_trim(void)
{
	uint64_t pages = 0;

	pools.held = NULL;
	for (unsigned c = 0; c < pools.nclasses; c++) {
		struct km_pool *p = pools.usedpools[c];
		if (p && is_parked(p)) {
			struct km_arena *a = p->arena;
			used_unlink(c, p);
			pool_release(p);
			if (a->nfreepools == a->npools)
				pages += pool_retire_arena(a);
		}
	}
	if (arenas.spare)
		hint_clear(arenas.spare);
	return pages + arena_release_spare();
}

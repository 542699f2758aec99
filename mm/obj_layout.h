/*
 * obj_layout.h - the object allocator's shared layouts, and no state:
 * geometry, the block, pool and arena headers, the size-class record and
 * the free-link encoding.  The arena layer (arena.c) carves pools out of
 * arenas, the pool layer (pool.c) carves blocks out of pools; both, and
 * the observers (kmalloc_stats.c, heapdump.c), read these structures.
 * Who may write which field is said at each field.
 *
 * Pools come in KM_KINDS sizes: 2^KM_POOL_SHIFT (16 KiB) for the small
 * classes (n <= KM_POOL_CLASS_MAX, 2048), and 32 KiB .. 512 KiB for the
 * medium classes (2 KiB .. 32 KiB), chosen per class (pool.c).  All the
 * pools of one arena have the same size (the arena's pool_shift).
 *
 * The big picture is in the comment at the top of mm/pool.c; the numbers
 * behind the constants below are there too.  The state lives in each
 * layer's own header: arena.h, pool.h, large.h.
 */
#ifndef MM_OBJ_LAYOUT_H
#define MM_OBJ_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#include "util.h"

/* ---- geometry: KM_POOL_SHIFT, KM_ARENA_SHIFT (strata/config.h) ---- */
#include <strata/config.h>

/* KM_POOL_SIZE, KM_POOL_PAGES, KM_ARENA_POOLS: the small pools (kind 0). */
#define KM_POOL_SIZE      ((uintptr_t)1 << KM_POOL_SHIFT)
#define KM_ARENA_SIZE     ((uintptr_t)1 << KM_ARENA_SHIFT)
#define KM_ARENA_ORDER    (KM_ARENA_SHIFT - PAGE_SHIFT)
#define KM_POOL_PAGES     ((unsigned)(KM_POOL_SIZE >> PAGE_SHIFT))
#define KM_ARENA_POOLS    ((unsigned)(KM_ARENA_SIZE >> KM_POOL_SHIFT))
#define KM_SMALL_MAX      KMALLOC_SMALL_MAX
#define KM_LOOKUP_SLOTS   ((KM_SMALL_MAX >> 4) + 1)
/* Pool kinds: kind k holds pools of 2^(KM_POOL_SHIFT + k) bytes; the
 * largest is half an arena. */
#define KM_KINDS          (KM_ARENA_SHIFT - KM_POOL_SHIFT)
/* Classes up to this size live in small pools; above, in medium ones. */
#define KM_POOL_CLASS_MAX 2048u

_Static_assert(KM_POOL_SHIFT >= PAGE_SHIFT && KM_POOL_SHIFT <= 15,
	       "a pool is whole pages; small pools hold ref < 2^16 blocks");
_Static_assert(KM_ARENA_SHIFT > KM_POOL_SHIFT && KM_ARENA_SHIFT <= 24 &&
	       KM_ARENA_ORDER <= PFA_MAX_ORDER, "an arena is one PFA block");
_Static_assert(KM_SMALL_MAX % 16 == 0 && KM_SMALL_MAX <= 65536,
	       "size classes are multiples of 16");
_Static_assert(KM_ARENA_POOLS <= 1024, "arena bucket bitmap size");

/* ---- blocks, pools, arenas ---- */

/* A free block: the free list lives inside the free blocks themselves.
 * The link is stored encoded (pool.h: km_next, km_set_next), and `mark`
 * tells a free block from one handed out. */
struct km_block {
	uintptr_t enc;           /* encoded link, see km_next()/km_set_next() */
	uintptr_t mark;          /* km_free_mark(block) while on a free list */
};

/* The mark is the block's address complemented (~b): one instruction
 * to make on aarch64 and RISC-V (mvn, not), where a 64-bit magic cost
 * four (mov + 3 movk) or a literal load, and still never a value that
 * zeroed or 0xff-filled memory holds (b is neither 0 nor ~0). */
#define KM_FREE_MAGIC (~(uintptr_t)0)
static inline uintptr_t km_free_mark(const struct km_block *b)
{
	return (uintptr_t)b ^ KM_FREE_MAGIC;
}

/* A free block sitting in a per-CPU magazine (mm/percpu.c) carries this
 * mark instead: kfree of it again is a double free, told apart from a
 * block on its pool's free list.  The two magics differ in bit 0 only,
 * so kfree's fast path tests for either mark with one compare
 * (km_marked_free); ~1 is a logical immediate on aarch64 and a 12-bit
 * one on RISC-V (xori), so this mark costs one instruction too. */
#define KM_MAG_MAGIC (KM_FREE_MAGIC ^ 1u)
static inline uintptr_t km_mag_mark(const struct km_block *b)
{
	return (uintptr_t)b ^ KM_MAG_MAGIC;
}
/* Does b carry either free mark (on a free list, or in a magazine)? */
static inline bool km_marked_free(const struct km_block *b)
{
	return (b->mark ^ km_free_mark(b)) <= 1u;
}

/* The pool a block of a SMALL class lies in: small pools are
 * KM_POOL_SIZE-aligned (arenas are naturally aligned PFA blocks, see
 * arena.c).  A block of any class: km_pool_of_class() (pool.h). */
static inline struct km_pool *km_pool_of(const void *b)
{
	return (struct km_pool *)((uintptr_t)b & ~(KM_POOL_SIZE - 1));
}

/* The header at the start of every pool (64 bytes: one cache line). */
struct km_pool {               /* written by pool.c, except where said */
	struct km_block *freeblock;   /* first free block; NULL: pool is full */
	struct km_pool *next;         /* usedpools[cls] list, or (arena.c) the
	                                 arena's free-pool list */
	struct km_pool *prev;         /* usedpools[cls] list */
	struct km_arena *arena;       /* arena.c, when carving the pool */
	uint32_t first;               /* offset of block 0 */
	uint32_t carved;              /* bytes carved from `first` on (lazy
	                                 carving): the blocks are [first,
	                                 first + carved), the next one carved
	                                 is at first + carved */
	uint32_t maxnextoffset;       /* last offset a block fits at */
	uint16_t ref;                 /* blocks handed out */
	uint16_t cls;                 /* size class */
	uint32_t live;                /* 1 while the pool serves a class (0: and
	                                 carved == 0) */
	uint16_t index;               /* arena.c: pool number inside its arena */
	uint64_t divc;                /* the class's mm_divc(size) (km_class),
	                                 copied here by pool_init so kfree's
	                                 fast path reads one line */
};
_Static_assert(sizeof(struct km_pool) == 64, "pool header is 64 bytes");

/* The arena header lives in pool 0, right after that pool's header;
 * only arena.c writes it. */
struct km_arena {
	struct km_pool *freepools;    /* empty pools (singly linked via next) */
	struct km_arena *next, *prev; /* bucket list: arenas with equal nfreepools */
	struct km_arena *anext, *aprev; /* every arena */
	phys_addr_t pa;
	uint16_t nfreepools;          /* free pools, including never-carved ones */
	uint16_t nextpool;            /* first never-carved pool */
	uint16_t npools;              /* pools in the arena (of its kind) */
	uint8_t pool_shift;           /* every pool is 2^pool_shift bytes */
	uint8_t kind;                 /* pool_shift - KM_POOL_SHIFT */
	uint32_t carved_end;          /* nextpool << pool_shift: the offset where
	                                 never-carved pools start (kfree's fast
	                                 path compares a pointer's offset) */
	uint32_t pad;
};
_Static_assert(sizeof(struct km_arena) == 64, "arena header is 64 bytes");

#define KM_HDR      ((unsigned)sizeof(struct km_pool))
#define KM_HDR0     ((unsigned)(sizeof(struct km_pool) + sizeof(struct km_arena)))
/* Block 0 starts on the cache line after the headers: the lock-free kfree
 * reads a pool's header (and pool 0's arena header) on every call, and a
 * block sharing that line, written by whoever owns it, would bounce the
 * line between CPUs (measured: 28% of kfree's cycles with 2 threads). */
#define KM_LINE     64u
#define KM_FIRST    ((KM_HDR + KM_LINE - 1) / KM_LINE * KM_LINE)
#define KM_FIRST0   ((KM_HDR0 + KM_LINE - 1) / KM_LINE * KM_LINE)

static inline struct km_arena *km_arena_of_base(void *arena_base)
{
	return (struct km_arena *)((char *)arena_base + KM_HDR);
}
static inline void *km_arena_base(const struct km_arena *a)
{
	return (char *)a - KM_HDR;
}
static inline struct km_pool *km_pool_at(const struct km_arena *a, unsigned i)
{
	return (struct km_pool *)((char *)km_arena_base(a) + ((uintptr_t)i << a->pool_shift));
}

/* Per size class constants, computed by pool_classes_init() (pool.c). */
struct km_class {
	uint64_t divc;      /* mm_divc(size): is an offset a multiple of size? */
	uint32_t size;
	uint16_t first;     /* offset of block 0 in pools 1.. */
	uint16_t first0;    /* ... and in pool 0 (after the arena header) */
	uint16_t cap, cap0; /* blocks per pool */
	uint32_t align;     /* every block of the class is aligned to this */
	uint32_t pool_size; /* its pools' size: 2^(KM_POOL_SHIFT + kind) */
	uint16_t pool_pages;
	uint8_t kind;       /* 0: small pools; 1..: medium ones */
	uint8_t pad;
};

#define KM_BUCKET_WORDS ((KM_ARENA_POOLS + 1 + 63) / 64)

/* -DKM_HARDEN=0 turns the free-link encoding and its check off: only for
 * measuring what they cost (tests/bench/debug_cost.c). */
#ifndef KM_HARDEN
#define KM_HARDEN 1
#endif

#endif

/*
 * strata/debug.h - catching the bugs of strata's users: red zones,
 * poisoning, a quarantine for freed blocks, call sites, and reports that
 * say exactly what was found (in the spirit of Linux's slab_debug and
 * CPython's PYTHONMALLOC=debug hooks).
 *
 * Build time: compiled in unless mm/ is built with -DMM_DEBUG=0, which
 * removes every check from the fast paths (their instruction counts are
 * then those of a build without the feature).  Run time: off until
 * mm_debug_setup() (a kernel passes its command line's mm.debug=, e.g.
 * "mm.debug=FZPUQ" or "mm.debug=all,continue").  Letters:
 *
 *   F  sanity checks: every block gets a debug header (its magic and
 *      size), every free is checked against it and the page descriptor,
 *      so a second or invalid free is a bug report (panic or
 *      ",continue"), not just a kmalloc_report line; the per-CPU
 *      magazines are bypassed.  Any letter implies F.  (mm_check_all()
 *      checks strata's own structures in every mode.)
 *   Z  red zones: 16 bytes 0xFD before each block, and from the last byte
 *      asked for to the end of the underlying block (so kmalloc(13) has a
 *      red zone from byte 13), checked on free and by mm_check_all()
 *   P  poisoning: new memory 0xCD ("clean"), freed memory 0xDD ("dead")
 *   U  user tracking: the allocating and the freeing call site
 *   Q  quarantine: freed blocks wait (1024 blocks / 4 MiB, FIFO; a block
 *      larger than that waits alone until the next free) before reuse,
 *      and their poison is checked when they leave, by mm_check_all()
 *      and mm_debug_check(): a write after free is caught then
 *   O  zero on free (Linux's init_on_free; not part of "all"): freed data
 *      is zeroed instead of poisoned 0xDD, new data is zero instead of
 *      0xCD (a fresh kmalloc(8) reads as zeroes), and when a block leaves
 *      the quarantine (or at once, without Q) all of its underlying block
 *      is zeroed and marked (two words at offset 16: the block's address
 *      mixed with a constant, and its size).  The next allocation of a
 *      marked block checks the zeroes: a write after free that happened
 *      after the quarantine is caught there.  (A kmalloc block freed in
 *      this mode is always zeroed, so its stale mark goes with it; a page
 *      handed back to the PFA and used outside kmalloc in between that
 *      kept exactly those two words but changed others would be reported.)
 *
 * Every finding is reported with its kind (strata/debug.h's mm_bug_kind);
 * kmalloc_usable_size / krealloc of a bad pointer are bugs too in debug
 * mode, and kfree_sized (C++'s sized and aligned delete) checks the size
 * and alignment it is told in every mode.
 *
 * Object caches (strata/kmem_cache.h) created while Z or P is on, or with
 * KMEM_DEBUG, get red zones around every object (16 bytes, or the
 * alignment if larger, before; the rest of the slot after) and, unless
 * they have a constructor (whose work poison would undo), poisoning:
 * checked on every free, on allocation and by mm_check_all(); reports name
 * the cache.  Their per-CPU magazines are off.
 *
 * A kmalloc block in debug mode (kmalloc_aligned with an alignment over
 * 16 bytes gets a plain block):
 *
 *   | header 48 B: magic, size asked, | 0xFD x 16 | data (size) | 0xFD ... end |
 *   | alloc site, free site, links    |           ^ pointer returned           |
 *
 * and a large one (a run of pages) as a header page, the data ending 0-15
 * bytes (red zone) before a guard page, protected if the platform can
 * (mm_platform_protect): an overflow past those bytes faults at once; a
 * freed large block's pages are protected while it is in the quarantine,
 * so a read or a write after free faults too (mm/debug.c):
 *
 *   | header | ... 0xFD x 16 | data (size) | 0xFD x 0-15 | guard page |
 *
 * Per-CPU caches are bypassed while debugging (every call takes the
 * locked path), as Linux's slab_debug disables its fast paths.
 *
 * Free-list hardening is NOT part of debug mode: it is always on (see
 * mm/pool.h, km_next) and reports through the same sink (mm/report.c).
 */
#ifndef STRATA_DEBUG_H
#define STRATA_DEBUG_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stddef.h>
#include <stdint.h>

#ifndef MM_DEBUG
#define MM_DEBUG 1
#endif

#define MM_DBG_SANITY     0x01u   /* F */
#define MM_DBG_REDZONE    0x02u   /* Z */
#define MM_DBG_POISON     0x04u   /* P */
#define MM_DBG_USER       0x08u   /* U */
#define MM_DBG_QUARANTINE 0x10u   /* Q */
#define MM_DBG_ALL        0x1fu   /* "all": F Z P U Q (not O) */
#define MM_DBG_ZERO       0x20u   /* O: zero on free, checked on reuse */
#define MM_DBG_MASK       0x3fu   /* every flag */

#define MM_POISON_REDZONE 0xFD
#define MM_POISON_CLEAN   0xCD
#define MM_POISON_DEAD    0xDD

/* spec: letters from "FZPUQO", or "all"/"1", or "off"/"0"; then optionally
 * ",continue" (report and go on: the default is to panic).  0, or -1 for
 * a bad spec or a build with MM_DEBUG=0 (nothing changes then).  Call
 * after kmalloc_init(), before other CPUs allocate. */
int mm_debug_setup(const char *spec);
unsigned mm_debug_flags(void);
void mm_debug_set_panic(int panic_on_error);
/* What follows the one-line report of a bad pointer (kfree, krealloc or
 * the usable size of a pointer never handed out, or freed already): go
 * on (0, the default in kernels: kfree leaves the heap untouched) or
 * panic (1).  libstrata.so sets 1 (abort, as glibc does on a double
 * free) unless STRATA_DEBUG says "continue". */
void mm_debug_set_bad_pointer_panic(int panic);

enum mm_bug_kind {
	MM_BUG_NONE = 0,
	MM_BUG_DOUBLE_FREE,      /* freed block freed again */
	MM_BUG_INVALID_FREE,     /* not a block strata handed out (or interior) */
	MM_BUG_OVERFLOW,         /* red zone after the data damaged */
	MM_BUG_UNDERFLOW,        /* red zone or header before the data damaged */
	MM_BUG_USE_AFTER_FREE,   /* poison of a freed block damaged */
	MM_BUG_FREELIST,         /* a free list link decodes outside its pool */
	MM_BUG_BAD_POINTER,      /* krealloc / usable size of a pointer never handed out */
	MM_BUG_FREED_POINTER,    /* krealloc / usable size of a freed block */
	MM_BUG_SIZED_DELETE,     /* kfree_sized: the size told is not the block's */
	MM_BUG_ALIGNED_DELETE,   /* kfree_sized: aligned free of a plain block, or
	                            the reverse (debug mode), or a misaligned one */
	MM_BUG_GUARD_OVERFLOW,   /* sampled block: guard page after it touched */
	MM_BUG_GUARD_UNDERFLOW,  /* sampled block: guard page before it touched */
	MM_BUG_READ_AFTER_FREE,  /* sampled block: read after free (it trapped) */
	MM_BUG_KINDS
};

struct mm_bug_report {
	enum mm_bug_kind kind;
	const void *ptr;          /* the block's data pointer (or the bad pointer) */
	const void *bad;          /* first damaged byte, if any */
	size_t requested;         /* bytes asked for */
	size_t block_size;        /* size class, or pages * PAGE_SIZE of a run */
	void *alloc_site;         /* with U, else NULL */
	void *free_site;          /* where it was freed (double free, UAF) */
	void *caller;             /* the call that found it (free, check) */
	const char *cache;        /* kmem cache name, NULL for kmalloc blocks */
	size_t told_size, told_align;  /* what kfree_sized was told (0: nothing) */
	const unsigned char *dump_at;
	unsigned char dump[32];   /* bytes from dump_at */
	uint64_t serial;          /* 1, 2, ... */
};

void mm_debug_last_report(struct mm_bug_report *r);
const char *mm_bug_name(enum mm_bug_kind kind);

/* Check everything: every live debug block's red zones, the quarantine's
 * poison, every pool, arena and free list (kmalloc_check), every cache
 * (kmem_cache_check_all), the PFA (pfa_check).  Each problem is reported;
 * returns how many. */
int mm_check_all(void);
/* Only debug mode's part of that: every live debug block's red zones and
 * the quarantine's poison (each problem reported; how many). */
int mm_debug_check(void);

#endif

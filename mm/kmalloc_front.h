/*
 * kmalloc_front.h - what the kmalloc front end (mm/kmalloc.c) offers the
 * wrappers above it: debug mode (mm/debug.c) and tracing (mm/trace.c).
 *
 *   kmalloc(n) ---- km_debug_on == 0 ------------------> the plain paths
 *        |                                                  ^
 *        '-- != 0 --> km_alloc_hooked: debug->alloc() ------'  (debug.c calls
 *                                      trace->alloc()          km_alloc_nodebug)
 *
 * The wrappers install a hook table and set their bits in km_debug_on;
 * the front end never names them, so a kernel that does not call
 * mm_debug_setup() or mm_trace_start() links neither.  One load of
 * km_debug_on per entry point is all debugging costs when it is off (and
 * nothing at all with -DMM_DEBUG=0).
 */
#ifndef MM_KMALLOC_FRONT_H
#define MM_KMALLOC_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/debug.h>

#include "util.h"

#if MM_DEBUG
extern unsigned km_debug_on MM_INTERNAL;   /* MM_DBG_* flags, | KM_TRACING */
#else
#define km_debug_on 0u                /* every debug branch folds away */
#endif
#define KM_TRACING 0x100u             /* in km_debug_on: mm/trace.c is on */

/* What the debug free hook did with a pointer.  NOT_OURS and FREED keep
 * the values false and true had when the hook returned bool. */
enum km_dbg_free {
	KM_DBG_NOT_OURS = 0,   /* not a debug block: kfree decides */
	KM_DBG_FREED = 1,      /* taken (freed or quarantined) */
	KM_DBG_REFUSED = 2,    /* a bug, reported; the block left alone */
};

struct km_debug_hooks {
	void *(*alloc)(size_t size, unsigned flags, void *caller);
	enum km_dbg_free (*free)(const void *p, void *caller);
	bool (*usable)(const void *p, size_t *size); /* false: not a live debug block */
	bool (*freed)(const void *p);                /* a debug block freed, quarantined */
	void (*reset)(void);                         /* kmalloc_init: all blocks gone */
};

struct km_trace_hooks {
	void (*alloc)(const void *p, size_t size, void *caller);
	void (*free)(const void *p);
};

/* debug.c: the hooks and the MM_DBG_* flags now in force (0: off). */
void kmalloc_hook_debug(const struct km_debug_hooks *h, unsigned flags);
/* trace.c: tracing on (with these hooks) or off. */
void kmalloc_hook_trace(const struct km_trace_hooks *h, bool on);

/* The plain (non-debug) paths, for debug.c. */
void *km_alloc_nodebug(size_t size, unsigned flags, void *caller);
int kfree_nodebug(const void *p, void *caller);   /* 0, or -1: refused */
/* Usable size if p is the start of a small block in use or of a large run
 * (no report otherwise: 0). */
size_t km_block_size_quiet(const void *p);

/* For the observers (kmalloc_stats.c, heapdump.c). */
struct kmalloc_front_stats {
	bool ready;                       /* kmalloc_init() has run */
	uint64_t realloc_in_place, realloc_moved;
};
void kmalloc_front_stats(struct kmalloc_front_stats *st);

#endif

/*
 * debug.c - red zones, poisoning, quarantine, call sites and bug reports
 * (strata/debug.h has the user's view and the block layout).
 *
 *   kmalloc(n) ─► dbg_alloc: raw = a plain block of n + 64 + 16 bytes
 *                 ┌──────────────┬───────────┬──────────┬──────────────┐
 *                 │ dbg_hdr (48) │ FD x 16   │ CD x n   │ FD ... end   │
 *                 └──────────────┴───────────┴──────────┴──────────────┘
 *                 linked on the live list              ^ raw block's end
 *
 *   kfree(p) ──► dbg_free: header magic says live?  (free: double free)
 *                 red zones intact? (no: overflow / underflow + hex dump)
 *                 data := DD, magic := free, free site recorded
 *                 -> quarantine FIFO -> when it leaves: DD intact? (no:
 *                 use after free) -> the raw block is really freed
 *
 * Every finding becomes one struct mm_bug_report, sent to the report sink
 * (mm/report.c): a multi-line report, then strata panics (default) or goes
 * on (",continue", used by the tests, which assert the report's fields).
 *
 * A wrapper, above everything it wraps: mm_debug_setup() installs this
 * file's hooks in the front end (kmalloc_front.h) and registers the debug
 * layer (mm/layer.h: its lock, the quarantine as something to trim, the
 * live blocks as something to check).  It calls only down: the plain
 * kmalloc paths, the per-CPU switch, the report sink.  dbg.lock is the
 * outermost lock of all (mm/lock_order.h).
 */
#include <strata/debug.h>
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/platform.h>

#include "kmalloc_front.h"
#include "layer.h"
#include "list.h"
#include "lock_order.h"
#include "report.h"
#include "util.h"

#define DBG_LIVE  ((uintptr_t)0x6c6976652d646267ull)
#define DBG_DEAD  ((uintptr_t)0x646561642d646267ull)
#define DBG_LEFT  16
#define DBG_RIGHT 16
#define Q_MAX_BLOCKS 1024
#define Q_MAX_BYTES  (4u << 20)

struct dbg_hdr {
	uintptr_t magic;          /* (uintptr_t)hdr ^ DBG_LIVE or DBG_DEAD */
	size_t size;              /* bytes asked for */
	void *alloc_site, *free_site;
	struct dbg_hdr *next, *prev;   /* live list; quarantine FIFO (next) */
};
#define DBG_PREFIX (sizeof(struct dbg_hdr) + DBG_LEFT)
_Static_assert(DBG_PREFIX % 16 == 0, "data stays 16-byte aligned");

static struct {
	mm_spinlock_t lock;
	struct dbg_hdr *live;
	struct dbg_hdr *q_head, *q_tail;
	uint64_t q_count, q_bytes;
} dbg = { .lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_DEBUG) };

static void *dbg_alloc(size_t size, unsigned flags, void *caller);
static bool dbg_free(const void *p, void *caller);
static bool dbg_usable(const void *p, size_t *size);
static void dbg_reset(void);
static uint64_t dbg_trim(void);
static int dbg_check(void);
static void dbg_lock(void);
static void dbg_unlock(void);

static const struct km_debug_hooks dbg_hooks = {
	.alloc = dbg_alloc, .free = dbg_free, .usable = dbg_usable, .reset = dbg_reset,
};

static struct mm_layer dbg_layer = {
	.name = "debug", .level = MM_LOCK_DEBUG, .trim = dbg_trim,
	.lock = dbg_lock, .unlock = dbg_unlock, .check = dbg_check,
};

/* ------------------------------------------------------------------ */
/* setup                                                              */
/* ------------------------------------------------------------------ */

int mm_debug_setup(const char *spec)
{
	unsigned flags = 0;
	int cont = 0;
	const char *s = spec;

	if (!MM_DEBUG || !spec)
		return -1;
	while (*s && *s != ',') {
		if (s[0] == 'a' && s[1] == 'l' && s[2] == 'l') {
			flags |= MM_DBG_ALL;
			s += 3;
			continue;
		}
		if (s[0] == 'o' && s[1] == 'f' && s[2] == 'f') {
			flags = 0;
			s += 3;
			continue;
		}
		switch (*s++) {
		case '1': flags |= MM_DBG_ALL; break;
		case '0': flags = 0; break;
		case 'F': flags |= MM_DBG_SANITY; break;
		case 'Z': flags |= MM_DBG_REDZONE; break;
		case 'P': flags |= MM_DBG_POISON; break;
		case 'U': flags |= MM_DBG_USER; break;
		case 'Q': flags |= MM_DBG_QUARANTINE; break;
		default: return -1;
		}
	}
	if (*s == ',') {
		const char *w = "continue";
		for (s++; *w && *s == *w; s++, w++)
			;
		if (*w || *s)
			return -1;
		cont = 1;
	}
	mm_percpu_enable(flags == 0);   /* tracing keeps the magazines */
	mm_layer_register(&dbg_layer);
	mm_spin_lock(&dbg.lock);
	mm_debug_set_panic(!cont);
	kmalloc_hook_debug(&dbg_hooks, flags);
	mm_spin_unlock(&dbg.lock);
	return 0;
}

/* kmalloc_init(): every block is gone, and so is what we knew of them. */
static void dbg_reset(void)
{
	dbg.live = dbg.q_head = dbg.q_tail = NULL;
	dbg.q_count = dbg.q_bytes = 0;
}

/* ------------------------------------------------------------------ */
/* blocks                                                             */
/* ------------------------------------------------------------------ */

static unsigned char *data_of(struct dbg_hdr *h)
{
	return (unsigned char *)h + DBG_PREFIX;
}

static void live_link(struct dbg_hdr *h)
{
	mm_list_push(&dbg.live, h);
}

static void live_unlink(struct dbg_hdr *h)
{
	mm_list_unlink(&dbg.live, h);
}

/* Red zones of a live block; reports the first damage.  dbg.lock held. */
static int check_zones(struct dbg_hdr *h, size_t raw, void *caller)
{
	struct mm_bug_report r = {
		.ptr = data_of(h), .requested = h->size, .block_size = raw,
		.alloc_site = h->alloc_site, .caller = caller,
	};
	if (!(km_debug_on & MM_DBG_REDZONE))
		return 0;
	const unsigned char *bad = mm_first_not(data_of(h) - DBG_LEFT, DBG_LEFT, MM_POISON_REDZONE);
	if (bad) {
		r.kind = MM_BUG_UNDERFLOW;
		r.bad = bad;
		mm_report_bug(&r);
		return 1;
	}
	size_t right = raw - DBG_PREFIX - h->size;
	bad = mm_first_not(data_of(h) + h->size, right, MM_POISON_REDZONE);
	if (bad) {
		r.kind = MM_BUG_OVERFLOW;
		r.bad = bad;
		mm_report_bug(&r);
		return 1;
	}
	return 0;
}

/* The block leaves the quarantine: poison intact?  Then really free it. */
static void release(struct dbg_hdr *h)
{
	size_t raw = km_block_size_quiet(h);

	if ((km_debug_on & MM_DBG_POISON) && raw) {
		const unsigned char *bad = mm_first_not(data_of(h), h->size, MM_POISON_DEAD);
		if (bad) {
			struct mm_bug_report r = {
				.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
				.requested = h->size, .block_size = raw,
				.alloc_site = h->alloc_site, .free_site = h->free_site,
			};
			mm_report_bug(&r);
		}
	}
	h->magic = 0;
	kfree_nodebug(h, h->free_site);
}

static void quarantine(struct dbg_hdr *h)
{
	h->next = NULL;
	if (dbg.q_tail)
		dbg.q_tail->next = h;
	else
		dbg.q_head = h;
	dbg.q_tail = h;
	dbg.q_count++;
	dbg.q_bytes += h->size;
	while (dbg.q_count > Q_MAX_BLOCKS || dbg.q_bytes > Q_MAX_BYTES) {
		struct dbg_hdr *o = dbg.q_head;
		dbg.q_head = o->next;
		if (!dbg.q_head)
			dbg.q_tail = NULL;
		dbg.q_count--;
		dbg.q_bytes -= o->size;
		release(o);
	}
}

static void *dbg_alloc(size_t size, unsigned flags, void *caller)
{
	if (size > KMALLOC_MAX_SIZE - DBG_PREFIX - DBG_RIGHT)
		return km_alloc_nodebug(size, flags, caller);   /* fails with its report */
	struct dbg_hdr *h = km_alloc_nodebug(size + DBG_PREFIX + DBG_RIGHT, 0, caller);
	if (!h)
		return NULL;
	size_t raw = km_block_size_quiet(h);
	h->magic = (uintptr_t)h ^ DBG_LIVE;
	h->size = size;
	h->alloc_site = (km_debug_on & MM_DBG_USER) ? caller : NULL;
	h->free_site = NULL;
	unsigned char *d = data_of(h);
	mm_fill(d - DBG_LEFT, DBG_LEFT, MM_POISON_REDZONE);
	if (flags & KM_ZERO)
		mm_fill(d, size, 0);
	else if (km_debug_on & MM_DBG_POISON)
		mm_fill(d, size, MM_POISON_CLEAN);
	mm_fill(d + size, raw - DBG_PREFIX - size, MM_POISON_REDZONE);
	mm_spin_lock(&dbg.lock);
	live_link(h);
	mm_spin_unlock(&dbg.lock);
	return d;
}

/* The header of p if p is the data of a debug block (live or dead). */
static struct dbg_hdr *header_of(const void *p, size_t *raw)
{
	if ((uintptr_t)p < DBG_PREFIX)
		return NULL;
	struct dbg_hdr *h = (struct dbg_hdr *)((uintptr_t)p - DBG_PREFIX);
	*raw = km_block_size_quiet(h);
	if (!*raw)
		return NULL;
	return h;
}

static bool dbg_free(const void *p, void *caller)
{
	size_t raw;
	struct dbg_hdr *h = header_of(p, &raw);

	if (!h)
		return false;     /* a plain block, or not a block: kfree decides */
	mm_spin_lock(&dbg.lock);
	struct mm_bug_report r = {
		.ptr = p, .requested = h->size, .block_size = raw,
		.alloc_site = h->alloc_site, .free_site = h->free_site, .caller = caller,
	};
	if (h->magic == ((uintptr_t)h ^ DBG_DEAD)) {
		r.kind = MM_BUG_DOUBLE_FREE;
		mm_report_bug(&r);
		mm_spin_unlock(&dbg.lock);
		return true;
	}
	if (h->magic != ((uintptr_t)h ^ DBG_LIVE)) {
		/* a plain block that happens to start 64 bytes before p? then p
		 * is inside it: not ours to judge here */
		mm_spin_unlock(&dbg.lock);
		return false;
	}
	if (h->size > raw - DBG_PREFIX) {   /* header overwritten */
		r.kind = MM_BUG_UNDERFLOW;
		r.bad = &h->size;
		mm_report_bug(&r);
		mm_spin_unlock(&dbg.lock);
		return true;   /* its links can't be trusted: leave it alone */
	}
	check_zones(h, raw, caller);
	live_unlink(h);
	h->magic = (uintptr_t)h ^ DBG_DEAD;
	h->free_site = caller;
	if (km_debug_on & MM_DBG_POISON)
		mm_fill(data_of(h), h->size, MM_POISON_DEAD);
	if (km_debug_on & MM_DBG_QUARANTINE) {
		quarantine(h);
		mm_spin_unlock(&dbg.lock);
	} else {
		mm_spin_unlock(&dbg.lock);
		h->magic = 0;
		kfree_nodebug(h, caller);
	}
	return true;
}

static bool dbg_usable(const void *p, size_t *size)
{
	size_t raw;
	struct dbg_hdr *h = header_of(p, &raw);

	if (!h || h->magic != ((uintptr_t)h ^ DBG_LIVE))
		return false;
	*size = h->size;
	return true;
}

/* ------------------------------------------------------------------ */
/* checks                                                             */
/* ------------------------------------------------------------------ */

/* The debug layer's part of mm_check_all() (mm/mm.c). */
static int dbg_check(void)
{
	int problems = 0;
	void *caller = __builtin_return_address(0);

	mm_spin_lock(&dbg.lock);
	for (struct dbg_hdr *h = dbg.live; h; h = h->next)
		problems += check_zones(h, km_block_size_quiet(h), caller);
	if (km_debug_on & MM_DBG_POISON) {
		for (struct dbg_hdr *h = dbg.q_head; h; h = h->next) {
			const unsigned char *bad = mm_first_not(data_of(h), h->size, MM_POISON_DEAD);
			if (bad) {
				struct mm_bug_report r = {
					.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
					.requested = h->size, .block_size = km_block_size_quiet(h),
					.alloc_site = h->alloc_site, .free_site = h->free_site,
					.caller = caller,
				};
				mm_report_bug(&r);
				problems++;
			}
		}
	}
	mm_spin_unlock(&dbg.lock);
	return problems;
}

/* Give every quarantined block back (mm_reclaim: the debug layer's trim;
 * the pages come back when the pools below are trimmed). */
static uint64_t dbg_trim(void)
{
	mm_spin_lock(&dbg.lock);
	while (dbg.q_head) {
		struct dbg_hdr *o = dbg.q_head;
		dbg.q_head = o->next;
		dbg.q_count--;
		dbg.q_bytes -= o->size;
		release(o);
	}
	dbg.q_tail = NULL;
	mm_spin_unlock(&dbg.lock);
	return 0;
}

static void dbg_lock(void)
{
	mm_spin_lock(&dbg.lock);
}

static void dbg_unlock(void)
{
	mm_spin_unlock(&dbg.lock);
}

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
 * Every finding becomes one struct mm_bug_report and a multi-line report
 * through mm_platform_write(); then strata panics (default) or goes on
 * (",continue", used by the tests, which assert the report's fields).
 *
 * Locking: dbg.lock, then km.lock inside the raw calls (kmalloc.c);
 * dbg.report_lock (the last report) is innermost: a report may be made
 * with km.lock held (a corrupted free list found in pool_alloc_fast).
 */
#include <strata/debug.h>
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "kmalloc_internal.h"

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

#if MM_DEBUG
unsigned km_debug_on;    /* the flags; read by kmalloc.c's fast paths */
#endif

static struct {
	mm_spinlock_t lock, report_lock;
	int keep_going;
	struct dbg_hdr *live;
	struct dbg_hdr *q_head, *q_tail;
	uint64_t q_count, q_bytes;
	struct mm_bug_report last;
} dbg;

static const char *const bug_names[MM_BUG_KINDS] = {
	[MM_BUG_NONE]           = "no bug",
	[MM_BUG_DOUBLE_FREE]    = "double free",
	[MM_BUG_INVALID_FREE]   = "invalid free",
	[MM_BUG_OVERFLOW]       = "buffer overflow (red zone after the block damaged)",
	[MM_BUG_UNDERFLOW]      = "buffer underflow (red zone or header before the block damaged)",
	[MM_BUG_USE_AFTER_FREE] = "use after free (write to a freed block)",
	[MM_BUG_FREELIST]       = "corrupted free list",
};

const char *mm_bug_name(enum mm_bug_kind kind)
{
	return (unsigned)kind < MM_BUG_KINDS ? bug_names[kind] : "?";
}

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
	mm_spin_lock(&dbg.lock);
	dbg.keep_going = cont;
#if MM_DEBUG
	km_debug_on = flags | (km_debug_on & KM_TRACING);
#endif
	mm_spin_unlock(&dbg.lock);
	return 0;
}

/* kmalloc_init(): every block is gone, and so is what we knew of them. */
void dbg_reset(void)
{
	dbg.live = dbg.q_head = dbg.q_tail = NULL;
	dbg.q_count = dbg.q_bytes = 0;
}

unsigned mm_debug_flags(void)
{
	return km_debug_on;
}

void mm_debug_set_panic(int panic_on_error)
{
	dbg.keep_going = !panic_on_error;
}

void mm_debug_last_report(struct mm_bug_report *r)
{
	mm_spin_lock(&dbg.report_lock);
	*r = dbg.last;
	mm_spin_unlock(&dbg.report_lock);
}

/* ------------------------------------------------------------------ */
/* reports                                                            */
/* ------------------------------------------------------------------ */

static void hexdump(const unsigned char *at, unsigned n)
{
	char line[16 * 3 + 40];
	for (unsigned i = 0; i < n; i += 16) {
		int len = mm_snprintf(line, sizeof line, "    %p:", (const void *)(at + i));
		for (unsigned j = i; j < i + 16 && j < n; j++)
			len += mm_snprintf(line + len, sizeof line - (size_t)len, " %02x", at[j]);
		mm_printf("%s\n", line);
	}
}

/* Fill r's dump with 32 bytes around `bad` (or from ptr), print it all,
 * remember it, then panic unless told to go on. */
static void report(struct mm_bug_report *r)
{
	const unsigned char *from = r->bad ? (const unsigned char *)r->bad - 8 :
					     (const unsigned char *)r->ptr;
	from = (const unsigned char *)((uintptr_t)from & ~(uintptr_t)15);
	if (r->kind != MM_BUG_INVALID_FREE || r->bad) {
		r->dump_at = from;
		for (unsigned i = 0; i < sizeof r->dump; i++)
			r->dump[i] = from[i];
	}
	mm_spin_lock(&dbg.report_lock);
	r->serial = dbg.last.serial + 1;
	dbg.last = *r;
	mm_spin_unlock(&dbg.report_lock);

	mm_printf("strata: BUG: %s at %p\n", bug_names[r->kind], r->ptr);
	if (r->cache)
		mm_printf("  object of cache %s\n", r->cache);
	if (r->requested || r->block_size)
		mm_printf("  block of %zu bytes asked for, in a %zu-byte block\n", r->requested,
			  r->block_size);
	if (r->bad)
		mm_printf("  first damaged byte %p (data offset %ld)\n", r->bad,
			  (long)((const char *)r->bad - (const char *)r->ptr));
	if (r->dump_at)
		hexdump(r->dump_at, sizeof r->dump);
	mm_printf("  allocated at %p, freed at %p, found by the call from %p\n", r->alloc_site,
		  r->free_site, r->caller);
	if (!dbg.keep_going) {
		char msg[128];
		mm_snprintf(msg, sizeof msg, "%s at %p (caller %p)", bug_names[r->kind], r->ptr,
			    r->caller);
		mm_platform_panic(msg);
	}
}

void mm_debug_report_freelist(const struct km_pool *p, size_t size, const void *b,
			      const void *next)
{
	struct mm_bug_report r = {
		.kind = MM_BUG_FREELIST, .ptr = b, .bad = b, .block_size = size,
	};
	mm_printf("strata: free list of pool %p (class %zu) at block %p decodes to %p\n",
		  (const void *)p, size, b, next);
	report(&r);
}

void mm_debug_report_cache(enum mm_bug_kind kind, const char *name, const void *p,
			   const void *bad, size_t size, size_t slot, void *caller)
{
	struct mm_bug_report r = {
		.kind = kind, .ptr = p, .bad = bad, .requested = size, .block_size = slot,
		.caller = caller, .cache = name,
	};
	report(&r);
}

void mm_debug_bad_pointer(enum kmalloc_report_kind why, const void *p, void *caller)
{
	struct mm_bug_report r = {
		.kind = why == KM_DOUBLE_FREE ? MM_BUG_DOUBLE_FREE : MM_BUG_INVALID_FREE,
		.ptr = p, .caller = caller,
	};
	report(&r);
}

/* ------------------------------------------------------------------ */
/* blocks                                                             */
/* ------------------------------------------------------------------ */

static unsigned char *data_of(struct dbg_hdr *h)
{
	return (unsigned char *)h + DBG_PREFIX;
}

static const unsigned char *first_not(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return p + i;
	return NULL;
}

static void fill(unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		p[i] = v;
}

static void live_link(struct dbg_hdr *h)
{
	h->prev = NULL;
	h->next = dbg.live;
	if (dbg.live)
		dbg.live->prev = h;
	dbg.live = h;
}

static void live_unlink(struct dbg_hdr *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		dbg.live = h->next;
	if (h->next)
		h->next->prev = h->prev;
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
	const unsigned char *bad = first_not(data_of(h) - DBG_LEFT, DBG_LEFT, MM_POISON_REDZONE);
	if (bad) {
		r.kind = MM_BUG_UNDERFLOW;
		r.bad = bad;
		report(&r);
		return 1;
	}
	size_t right = raw - DBG_PREFIX - h->size;
	bad = first_not(data_of(h) + h->size, right, MM_POISON_REDZONE);
	if (bad) {
		r.kind = MM_BUG_OVERFLOW;
		r.bad = bad;
		report(&r);
		return 1;
	}
	return 0;
}

/* The block leaves the quarantine: poison intact?  Then really free it. */
static void release(struct dbg_hdr *h)
{
	size_t raw = km_block_size_quiet(h);

	if ((km_debug_on & MM_DBG_POISON) && raw) {
		const unsigned char *bad = first_not(data_of(h), h->size, MM_POISON_DEAD);
		if (bad) {
			struct mm_bug_report r = {
				.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
				.requested = h->size, .block_size = raw,
				.alloc_site = h->alloc_site, .free_site = h->free_site,
			};
			report(&r);
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

void *dbg_alloc(size_t size, unsigned flags, void *caller)
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
	fill(d - DBG_LEFT, DBG_LEFT, MM_POISON_REDZONE);
	if (flags & KM_ZERO)
		fill(d, size, 0);
	else if (km_debug_on & MM_DBG_POISON)
		fill(d, size, MM_POISON_CLEAN);
	fill(d + size, raw - DBG_PREFIX - size, MM_POISON_REDZONE);
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

bool dbg_free(const void *p, void *caller)
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
		report(&r);
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
		report(&r);
		mm_spin_unlock(&dbg.lock);
		return true;   /* its links can't be trusted: leave it alone */
	}
	check_zones(h, raw, caller);
	live_unlink(h);
	h->magic = (uintptr_t)h ^ DBG_DEAD;
	h->free_site = caller;
	if (km_debug_on & MM_DBG_POISON)
		fill(data_of(h), h->size, MM_POISON_DEAD);
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

bool dbg_usable(const void *p, size_t *size)
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

int mm_check_all(void)
{
	int problems = 0;
	void *caller = __builtin_return_address(0);

	mm_spin_lock(&dbg.lock);
	for (struct dbg_hdr *h = dbg.live; h; h = h->next)
		problems += check_zones(h, km_block_size_quiet(h), caller);
	if (km_debug_on & MM_DBG_POISON) {
		for (struct dbg_hdr *h = dbg.q_head; h; h = h->next) {
			const unsigned char *bad = first_not(data_of(h), h->size, MM_POISON_DEAD);
			if (bad) {
				struct mm_bug_report r = {
					.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
					.requested = h->size, .block_size = km_block_size_quiet(h),
					.alloc_site = h->alloc_site, .free_site = h->free_site,
					.caller = caller,
				};
				report(&r);
				problems++;
			}
		}
	}
	mm_spin_unlock(&dbg.lock);
	problems += kmalloc_check();
	problems += kmem_cache_check_all();
	problems += pfa_check();
	return problems;
}

/* Give every quarantined block back (mm_reclaim, tests). */
uint64_t dbg_flush_quarantine(void)
{
	uint64_t n = 0;

	mm_spin_lock(&dbg.lock);
	while (dbg.q_head) {
		struct dbg_hdr *o = dbg.q_head;
		dbg.q_head = o->next;
		dbg.q_count--;
		dbg.q_bytes -= o->size;
		release(o);
		n++;
	}
	dbg.q_tail = NULL;
	mm_spin_unlock(&dbg.lock);
	return n;
}

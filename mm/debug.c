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
 *                 data := DD (O: 00), magic := free, free site recorded
 *                 -> quarantine FIFO (the newest block stays however big)
 *                 -> when it leaves: DD (00) intact? (no: use after free)
 *                 -> O: the whole raw block := 00 and marked -> the raw
 *                 block is really freed; the next dbg_alloc of a marked
 *                 block checks its zeroes (a write after the quarantine)
 *
 * A large block (a run of pages anyway) is laid out around pages instead:
 *
 *   | dbg_hdr ... | ... FD x 16 | CD x n | FD x 0-15 | guard page    |
 *   ^ header page (read/write)  ^ data   ^ the end, 16-byte aligned, as
 *                                          near the guard page as it gets
 *
 * header_of() finds its header at the start of the page before the data's
 * first page.  The guard page is protected (mm_platform_protect) while the
 * block lives, the data pages too while it waits in the quarantine, so an
 * overflow past the slack, or any read or write after free, faults at the
 * access: the trap handler asks mm_guard_fault(), which hands faults
 * outside its pool to dbg_fault() (a callback this file registers), and
 * that reports it (kind, block, sites) and opens the pages for good.
 * Without the hook the guard page is one more red zone, checked at free,
 * and the freed run is poisoned, checked when it leaves the quarantine.
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
#include <strata/format.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/platform.h>

#include "guard.h"
#include "kmalloc_front.h"
#include "layer.h"
#include "list.h"
#include "lock_order.h"
#include "report.h"
#include "util.h"

#define DBG_LIVE  ((uintptr_t)0x6c6976652d646267ull)
#define DBG_DEAD  ((uintptr_t)0x646561642d646267ull)
#define DBG_ZDEAD ((uintptr_t)0x7a65726f2d646267ull)   /* freed, data zeroed (O) */
#define DBG_ZMARK ((uintptr_t)0x7a65726f65642121ull)   /* whole block zeroed (O) */
#define DBG_LEFT  16
#define DBG_RIGHT 16
#define Q_MAX_BLOCKS 1024
#define Q_MAX_BYTES  (4u << 20)

struct dbg_hdr {
	uintptr_t magic;          /* (uintptr_t)hdr ^ DBG_LIVE or DBG_DEAD */
	uint32_t size;            /* bytes asked for (< KMALLOC_MAX_SIZE) */
	uint32_t off;             /* data - header (a multiple of 16) | DBG_F_* */
	void *alloc_site, *free_site;
	struct dbg_hdr *next, *prev;   /* live list; quarantine FIFO (next) */
};
#define DBG_PREFIX (sizeof(struct dbg_hdr) + DBG_LEFT)
_Static_assert(DBG_PREFIX % 16 == 0, "data stays 16-byte aligned");

/* Flags in the low bits of dbg_hdr.off (a large block's layout, below). */
#define DBG_F_LARGE     0x1u      /* header page | data pages | guard page */
#define DBG_F_GUARDED   0x2u      /* ... its guard page is protected */
#define DBG_F_PROTECTED 0x4u      /* freed, its data pages protected too */
#define DBG_F_OPENED    0x8u      /* a fault opened its pages: no more checks */
#define DBG_F_MASK      0xfu

static struct {
	mm_spinlock_t lock;
	struct dbg_hdr *live;
	struct dbg_hdr *q_head, *q_tail;
	uint64_t q_count, q_bytes;
} dbg = { .lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_DEBUG) };

static void *dbg_alloc(size_t size, unsigned flags, void *caller);
static enum km_dbg_free dbg_free(const void *p, void *caller);
static bool dbg_usable(const void *p, size_t *size);
static bool dbg_freed(const void *p);
static enum km_dbg_free plain_free(const void *p);
static void dbg_reset(void);
static uint64_t dbg_trim(void);
static int dbg_check(void);
static void dbg_lock(void);
static void dbg_unlock(void);
static bool dbg_fault(const void *addr, int access, void *pc);

static const struct km_debug_hooks dbg_hooks = {
	.alloc = dbg_alloc, .free = dbg_free, .usable = dbg_usable, .freed = dbg_freed,
	.reset = dbg_reset,
};

static struct mm_layer dbg_layer = {
	.name = "debug", .level = MM_LOCK_DEBUG, .trim = dbg_trim,
	.lock = dbg_lock, .unlock = dbg_unlock, .check = dbg_check,
};

/* On demand (and libstrata.so at exit): the debug blocks only. */
int mm_debug_check(void)
{
	return MM_DEBUG && mm_debug_flags() ? dbg_check() : 0;
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
		case 'O': flags |= MM_DBG_ZERO | MM_DBG_SANITY; break;
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
	guard_chain_fault(dbg_fault);
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
	return (unsigned char *)h + (h->off & ~DBG_F_MASK);
}

/* ---- large blocks: | header page | data pages | guard page | ---- */

static size_t page_up(size_t n)
{
	return (n + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1);
}

/* Bytes of the run a large debug block of `size` bytes uses. */
static size_t large_span(size_t size)
{
	return 2 * PAGE_SIZE + page_up(size);
}

/* A request that the layers below serve with a run anyway: it gets the
 * large layout (if the run, guard page included, is not too large). */
static bool wants_large(size_t size)
{
	return size + DBG_PREFIX + DBG_RIGHT > KMALLOC_SMALL_MAX &&
	       size <= KMALLOC_MAX_SIZE - 2 * PAGE_SIZE - KMALLOC_MIN_ALIGN;
}

static uintptr_t guard_page_of(const struct dbg_hdr *h)
{
	return (uintptr_t)h + large_span(h->size) - PAGE_SIZE;
}

/* Where the red zone after the data ends: the end of the raw block, or
 * of a large block's slack before its guard page (with no protection,
 * the guard page is red zone too). */
static uintptr_t zone_end(const struct dbg_hdr *h, size_t raw)
{
	if (!(h->off & DBG_F_LARGE))
		return (uintptr_t)h + raw;
	uintptr_t g = guard_page_of(h);
	return (h->off & DBG_F_GUARDED) ? g : g + PAGE_SIZE;
}

static int protect(uintptr_t va, size_t bytes, int prot)
{
	return mm_platform_protect((void *)va, bytes, prot);
}

/* A large block's pages as its flags say: a live block's guard page, a
 * quarantined block's data pages too; nothing once a fault opened them. */
static void apply_protection(const struct dbg_hdr *h)
{
	if ((h->off & (DBG_F_LARGE | DBG_F_OPENED)) != DBG_F_LARGE)
		return;
	if (h->off & DBG_F_PROTECTED)
		protect((uintptr_t)h + PAGE_SIZE, large_span(h->size) - PAGE_SIZE, MM_PROT_NONE);
	else if (h->off & DBG_F_GUARDED)
		protect(guard_page_of(h), PAGE_SIZE, MM_PROT_NONE);
}

/* Every page of a large block read/write (before it is freed, dumped). */
static void open_pages(const struct dbg_hdr *h)
{
	if ((h->off & DBG_F_LARGE) && (h->off & (DBG_F_GUARDED | DBG_F_PROTECTED)))
		protect((uintptr_t)h + PAGE_SIZE, large_span(h->size) - PAGE_SIZE, MM_PROT_RW);
}

/* A report about h, whose dump may read a protected page: open meanwhile. */
static void report_open(const struct dbg_hdr *h, struct mm_bug_report *r)
{
	open_pages(h);
	mm_report_bug(r);
	apply_protection(h);
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
		report_open(h, &r);
		return 1;
	}
	const unsigned char *end = data_of(h) + h->size;
	bad = mm_first_not(end, zone_end(h, raw) - (uintptr_t)end, MM_POISON_REDZONE);
	if (bad) {
		r.kind = MM_BUG_OVERFLOW;
		r.bad = bad;
		report_open(h, &r);
		return 1;
	}
	return 0;
}

static bool is_dead(const struct dbg_hdr *h)
{
	return h->magic == ((uintptr_t)h ^ DBG_DEAD) || h->magic == ((uintptr_t)h ^ DBG_ZDEAD);
}

/* What a freed block's data was filled with: zeroes (O), the dead poison
 * (P), or nothing (-1). */
static int dead_fill(const struct dbg_hdr *h)
{
	if (h->magic == ((uintptr_t)h ^ DBG_ZDEAD))
		return 0;
	return (km_debug_on & MM_DBG_POISON) ? MM_POISON_DEAD : -1;
}

/* A freed block's fill intact?  Else a use-after-free report; 1 if so. */
static int check_dead(struct dbg_hdr *h, size_t raw, void *caller)
{
	int fill = dead_fill(h);
	if (fill < 0 || !raw || (h->off & (DBG_F_PROTECTED | DBG_F_OPENED)))
		return 0;   /* protected: unchanged; opened: reported already */
	const unsigned char *bad = mm_first_not(data_of(h), h->size, (unsigned char)fill);
	if (!bad)
		return 0;
	struct mm_bug_report r = {
		.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
		.requested = h->size, .block_size = raw,
		.alloc_site = h->alloc_site, .free_site = h->free_site, .caller = caller,
	};
	mm_report_bug(&r);
	return 1;
}

/* O: the whole underlying block zeroed and marked, for dbg_alloc's check
 * when it is handed out again (words 2 and 3: the pool's free-list link
 * and mark take words 0 and 1). */
static void zero_and_mark(struct dbg_hdr *h, size_t raw)
{
	mm_fill(h, raw, 0);
	h->alloc_site = (void *)((uintptr_t)h ^ DBG_ZMARK);
	h->free_site = (void *)raw;
}

/* The block leaves the quarantine: poison intact?  Then really free it. */
static void release(struct dbg_hdr *h)
{
	size_t raw = km_block_size_quiet(h);
	void *site = h->free_site;

	open_pages(h);
	h->off &= ~DBG_F_PROTECTED;
	check_dead(h, raw, NULL);
	h->magic = 0;
	if ((km_debug_on & MM_DBG_ZERO) && raw)
		zero_and_mark(h, raw);
	kfree_nodebug(h, site);
}

/* O: raw block h (fresh from the layers below, `raw` bytes) was zeroed
 * and marked when last freed?  Then it must still be zero. */
static void check_zeroed(struct dbg_hdr *h, size_t raw, size_t size, void *caller)
{
	if (h->alloc_site != (void *)((uintptr_t)h ^ DBG_ZMARK))
		return;
	size_t was = (size_t)h->free_site;
	h->alloc_site = h->free_site = NULL;
	const unsigned char *bad = mm_first_not(h, was < raw ? was : raw, 0);
	if (!bad)
		return;
	struct mm_bug_report r = {
		.kind = MM_BUG_USE_AFTER_FREE, .ptr = data_of(h), .bad = bad,
		.requested = size, .block_size = raw, .caller = caller,
	};
	mm_printf("strata: block %p, zeroed when freed, is not zero when handed out again\n",
		  (void *)data_of(h));
	mm_report_bug(&r);
}

/* A large block going into the quarantine: data pages protected too, so
 * any access faults (dbg_fault reports it); without the platform's
 * hook it stays poisoned, checked when it leaves. */
static void protect_freed(struct dbg_hdr *h)
{
	if ((h->off & DBG_F_LARGE) &&
	    protect((uintptr_t)h + PAGE_SIZE, large_span(h->size) - PAGE_SIZE, MM_PROT_NONE) == 0)
		h->off |= DBG_F_PROTECTED;
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
	/* the newest block stays, however large: it is checked on the next
	 * free, by mm_debug_check() or at exit, not at once */
	while ((dbg.q_count > Q_MAX_BLOCKS || dbg.q_bytes > Q_MAX_BYTES) && dbg.q_head != h) {
		struct dbg_hdr *o = dbg.q_head;
		dbg.q_head = o->next;
		if (!dbg.q_head)
			dbg.q_tail = NULL;
		dbg.q_count--;
		dbg.q_bytes -= o->size;
		release(o);
	}
}

/* The header's offset word of a large block of `size` bytes at h: its
 * data end as close to the guard page as 16-byte alignment allows, the
 * guard page protected if the platform can (else it is red zone). */
static uint32_t large_layout(struct dbg_hdr *h, size_t size)
{
	uintptr_t g = (uintptr_t)h + large_span(size) - PAGE_SIZE;
	uint32_t off = (uint32_t)(g - ((size + 15) & ~(size_t)15) - (uintptr_t)h);

	if (protect(g, PAGE_SIZE, MM_PROT_NONE) == 0)
		return off | DBG_F_LARGE | DBG_F_GUARDED;
	return off | DBG_F_LARGE;
}

static void *dbg_alloc(size_t size, unsigned flags, void *caller)
{
	if (size > KMALLOC_MAX_SIZE - DBG_PREFIX - DBG_RIGHT)
		return km_alloc_nodebug(size, flags, caller);   /* fails with its report */
	bool large = wants_large(size);
	struct dbg_hdr *h = km_alloc_nodebug(large ? large_span(size) : size + DBG_PREFIX + DBG_RIGHT,
					     0, caller);
	if (!h)
		return NULL;
	size_t raw = km_block_size_quiet(h);
	if (km_debug_on & MM_DBG_ZERO)
		check_zeroed(h, raw, size, caller);
	h->magic = (uintptr_t)h ^ DBG_LIVE;
	h->size = (uint32_t)size;
	h->off = large ? large_layout(h, size) : DBG_PREFIX;
	h->alloc_site = (km_debug_on & MM_DBG_USER) ? caller : NULL;
	h->free_site = NULL;
	unsigned char *d = data_of(h);
	mm_fill(d - DBG_LEFT, DBG_LEFT, MM_POISON_REDZONE);
	if ((flags & KM_ZERO) || (km_debug_on & MM_DBG_ZERO))
		mm_fill(d, size, 0);
	else if (km_debug_on & MM_DBG_POISON)
		mm_fill(d, size, MM_POISON_CLEAN);
	mm_fill(d + size, zone_end(h, raw) - (uintptr_t)(d + size), MM_POISON_REDZONE);
	mm_spin_lock(&dbg.lock);
	live_link(h);
	mm_spin_unlock(&dbg.lock);
	return d;
}

static bool is_live(const struct dbg_hdr *h)
{
	return h->magic == ((uintptr_t)h ^ DBG_LIVE);
}

static bool is_dead(const struct dbg_hdr *h);

/* The header's layout words agree with p and the raw block: a small
 * block's data right after its header, a large one's in the pages after
 * its header page, its span inside the run.  Else the header was
 * overwritten (or is no header). */
static bool layout_ok(struct dbg_hdr *h, const void *p, size_t raw)
{
	if (!(h->off & DBG_F_LARGE))
		return h->off == DBG_PREFIX && h->size <= raw - DBG_PREFIX;
	return data_of(h) == p && (h->off & ~DBG_F_MASK) >= PAGE_SIZE &&
	       large_span(h->size) <= raw;
}

/* A large block's header: at the start of the run, the page before the
 * one holding p (its data start within its first data page). */
static struct dbg_hdr *large_header_of(const void *p, size_t *raw)
{
	uintptr_t page = (uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1);
	if (page < PAGE_SIZE)
		return NULL;
	struct dbg_hdr *h = (struct dbg_hdr *)(page - PAGE_SIZE);
	*raw = km_block_size_quiet(h);
	if (*raw <= KMALLOC_SMALL_MAX || !(is_live(h) || is_dead(h)) ||
	    !(h->off & DBG_F_LARGE) || !layout_ok(h, p, *raw))
		return NULL;
	return h;
}

/* The header of p if p is the data of a debug block (live or dead). */
static struct dbg_hdr *header_of(const void *p, size_t *raw)
{
	if ((uintptr_t)p < DBG_PREFIX)
		return NULL;
	struct dbg_hdr *h = (struct dbg_hdr *)((uintptr_t)p - DBG_PREFIX);
	*raw = km_block_size_quiet(h);
	if (!*raw)
		return large_header_of(p, raw);
	return h;
}

static enum km_dbg_free dbg_free(const void *p, void *caller)
{
	size_t raw;
	struct dbg_hdr *h = header_of(p, &raw);

	if (!h)
		return plain_free(p);   /* a plain block, or not a block: kfree decides */
	mm_spin_lock(&dbg.lock);
	struct mm_bug_report r = {
		.ptr = p, .requested = h->size, .block_size = raw,
		.alloc_site = h->alloc_site, .free_site = h->free_site, .caller = caller,
	};
	if (is_dead(h)) {
		r.kind = MM_BUG_DOUBLE_FREE;
		report_open(h, &r);
		mm_spin_unlock(&dbg.lock);
		return KM_DBG_REFUSED;
	}
	if (h->magic != ((uintptr_t)h ^ DBG_LIVE)) {
		/* a plain block that happens to start 64 bytes before p? then p
		 * is inside it: not ours to judge here */
		mm_spin_unlock(&dbg.lock);
		return plain_free(p);
	}
	if (!layout_ok(h, p, raw)) {   /* header overwritten */
		r.kind = MM_BUG_UNDERFLOW;
		r.bad = &h->size;
		mm_report_bug(&r);
		mm_spin_unlock(&dbg.lock);
		return KM_DBG_REFUSED;   /* its links can't be trusted: leave it alone */
	}
	check_zones(h, raw, caller);
	live_unlink(h);
	h->free_site = caller;
	if (km_debug_on & MM_DBG_ZERO) {
		h->magic = (uintptr_t)h ^ DBG_ZDEAD;
		mm_fill(data_of(h), h->size, 0);
	} else {
		h->magic = (uintptr_t)h ^ DBG_DEAD;
		if (km_debug_on & MM_DBG_POISON)
			mm_fill(data_of(h), h->size, MM_POISON_DEAD);
	}
	if (km_debug_on & MM_DBG_QUARANTINE) {
		h->off &= ~DBG_F_OPENED;     /* a fault of the live block: past now */
		protect_freed(h);
		quarantine(h);
		mm_spin_unlock(&dbg.lock);
	} else {
		mm_spin_unlock(&dbg.lock);
		release(h);
	}
	return KM_DBG_FREED;
}

/* Not a debug block: kfree's plain path decides (NOT_OURS).  With O, a
 * plain block (kmalloc_aligned's) is zeroed first, so that no mark of
 * an earlier debug block inside it survives. */
static enum km_dbg_free plain_free(const void *p)
{
	if (km_debug_on & MM_DBG_ZERO) {
		size_t n = km_block_size_quiet(p);
		if (n)
			mm_fill((void *)p, n, 0);
	}
	return KM_DBG_NOT_OURS;
}

/* A debug block freed and not yet released (quarantined)? */
static bool dbg_freed(const void *p)
{
	size_t raw;
	struct dbg_hdr *h = header_of(p, &raw);

	return h && is_dead(h);
}

static bool dbg_usable(const void *p, size_t *size)
{
	size_t raw;
	struct dbg_hdr *h = header_of(p, &raw);

	if (!h || !is_live(h))
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
	for (struct dbg_hdr *h = dbg.q_head; h; h = h->next)
		problems += check_dead(h, km_block_size_quiet(h), caller);
	mm_spin_unlock(&dbg.lock);
	return problems;
}

/* ------------------------------------------------------------------ */
/* faults in a large block's protected pages                          */
/* ------------------------------------------------------------------ */

static bool in_range(uintptr_t a, uintptr_t lo, size_t n)
{
	return a - lo < n;
}

/* The block whose protected page holds a, and what touching it is; the
 * pages are opened for good (h->off |= DBG_F_OPENED).  dbg.lock held. */
static struct dbg_hdr *fault_block(uintptr_t a, int access, enum mm_bug_kind *kind)
{
	for (struct dbg_hdr *h = dbg.live; h; h = h->next)
		if ((h->off & (DBG_F_GUARDED | DBG_F_OPENED)) == DBG_F_GUARDED &&
		    in_range(a, guard_page_of(h), PAGE_SIZE)) {
			*kind = MM_BUG_GUARD_OVERFLOW;
			return h;
		}
	for (struct dbg_hdr *h = dbg.q_head; h; h = h->next)
		if ((h->off & (DBG_F_PROTECTED | DBG_F_OPENED)) == DBG_F_PROTECTED &&
		    in_range(a, (uintptr_t)h + PAGE_SIZE, large_span(h->size) - PAGE_SIZE)) {
			*kind = access == MM_ACCESS_READ ? MM_BUG_READ_AFTER_FREE
							 : MM_BUG_USE_AFTER_FREE;
			return h;
		}
	return NULL;
}

static const char *access_name(int access)
{
	return access == MM_ACCESS_READ ? "read" : access == MM_ACCESS_WRITE ? "write" : "access";
}

/* A page fault at addr (through mm_guard_fault, for addresses outside
 * the guard pool): ours if it is a large debug block's guard page (an
 * overflow) or a quarantined block's page (a use after free).  Reported;
 * the pages stay open, so that, told to continue, the access is retried
 * and succeeds (that block is no longer guarded). */
static bool dbg_fault(const void *addr, int access, void *pc)
{
	enum mm_bug_kind kind;
	mm_spin_lock(&dbg.lock);
	struct dbg_hdr *h = fault_block((uintptr_t)addr, access, &kind);
	if (!h) {
		mm_spin_unlock(&dbg.lock);
		return false;
	}
	open_pages(h);
	h->off |= DBG_F_OPENED;
	struct mm_bug_report r = {
		.kind = kind, .ptr = data_of(h), .bad = addr, .requested = h->size,
		.block_size = large_span(h->size), .alloc_site = h->alloc_site,
		.free_site = h->free_site, .caller = pc,
	};
	bool live = is_live(h);
	mm_spin_unlock(&dbg.lock);
	mm_printf("strata: guard page fault: %s of %p, offset %ld of the %zu-byte debug block "
		  "at %p (%s)\n", access_name(access), addr,
		  (long)((const unsigned char *)addr - (const unsigned char *)r.ptr), r.requested,
		  r.ptr, live ? "in use" : "freed, in the quarantine");
	mm_report_bug(&r);
	return true;
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

/*
 * report.c - base layer: every report strata makes, in one place.
 *
 *   pool.c  (free list corrupt) ----.
 *   kmalloc.c (bad pointer, NULL) --+--> mm_report_*() --> one log line or a
 *   slab.c  (bad object, damage) ---+    multi-line bug report (hex dump),
 *   debug.c (red zones, poison) ----+    the last one kept for the
 *   lockdep.c (lock order) ---------'    *_last_report() calls, then panic
 *                                        unless told to go on
 *
 * The records and counters here are the only state, under the innermost
 * lock of all (lock_order.h: a report may be made with any lock held).
 * The layers fill in what they know; nothing here calls back up.
 */
#include <strata/debug.h>
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/platform.h>

#include "lock_order.h"
#include "report.h"

static struct {
	mm_spinlock_t lock;
	struct kmalloc_report last_ptr;        /* kmalloc_last_report() */
	uint64_t bad_pointers, failures;
	struct mm_bug_report last_bug;         /* mm_debug_last_report() */
	int keep_going;                        /* bugs: report and go on */
	int stop_on_bad_pointer;               /* bad pointers: report, panic */
	uint64_t lock_order_reports;
} rep = { .lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_REPORT) };

/* ------------------------------------------------------------------ */
/* bad pointers and failed requests                                   */
/* ------------------------------------------------------------------ */

static const char *const report_names[KM_REPORT_KINDS] = {
	[KM_REPORT_NONE]    = "no report",
	[KM_BAD_UNMANAGED]  = "not in managed RAM",
	[KM_BAD_RESERVED]   = "reserved page",
	[KM_BAD_FREE_PAGE]  = "page is free (large run freed twice?)",
	[KM_BAD_FOREIGN]    = "page owned by another allocator",
	[KM_BAD_NOT_BLOCK]  = "inside an arena but not a block handed out",
	[KM_BAD_MISALIGNED] = "not the start of a block",
	[KM_BAD_INTERIOR]   = "inside a large run, not its start",
	[KM_DOUBLE_FREE]    = "block already free (double free)",
	[KM_BAD_WRONG_CACHE] = "object of another cache",
	[KM_BAD_NOT_IN_USE] = "inside strata's heap span, but in no block (memory not in use)",
	[KM_FAIL_TOO_LARGE] = "request larger than the largest PFA block",
	[KM_FAIL_NOMEM]     = "out of memory",
	[KM_FAIL_BAD_ALIGN] = "alignment not a power of two or too large",
	[KM_FAIL_OVERFLOW]  = "n * size overflows",
};

const char *kmalloc_report_name(enum kmalloc_report_kind kind)
{
	return (unsigned)kind < KM_REPORT_KINDS ? report_names[kind] : "?";
}

/* A freed block given to anything but a free is used after free, not
 * freed twice. */
static const char *kind_text(enum kmalloc_report_kind kind, const char *op)
{
	if (kind == KM_DOUBLE_FREE && op[0] == 'k' && op[1] == 'r')
		return "block already free (krealloc of a freed block: use after free)";
	if (kind == KM_DOUBLE_FREE && op[0] == 'k' && op[1] == 'm' && op[2] == 'a')
		return "block already free (its size asked after free: use after free)";
	return report_names[kind];
}

static void stop_at_bad_pointer(enum kmalloc_report_kind kind, const char *op, const void *ptr,
				void *caller)
{
	char msg[128];
	mm_snprintf(msg, sizeof msg, "%s(%p): %s (caller %p)", op, ptr, kind_text(kind, op), caller);
	mm_platform_panic(msg);
}

void mm_report_pointer(enum kmalloc_report_kind kind, const char *op, const void *ptr,
		       size_t size, void *caller, unsigned owner)
{
	mm_spin_lock(&rep.lock);
	struct kmalloc_report *r = &rep.last_ptr;
	r->kind = kind;
	r->op = op;
	r->ptr = ptr;
	r->size = size;
	r->caller = caller;
	r->page_owner = (uint8_t)owner;
	r->serial++;
	if (kind >= KM_FAIL_TOO_LARGE) {
		rep.failures++;
	} else {
		rep.bad_pointers++;
		mm_printf("strata: %s(%p): %s (page owner %u), caller %p\n", op, ptr,
			  kind_text(kind, op), owner, caller);
	}
	mm_spin_unlock(&rep.lock);
	if (kind < KM_FAIL_TOO_LARGE && rep.stop_on_bad_pointer)
		stop_at_bad_pointer(kind, op, ptr, caller);
}

void mm_debug_set_bad_pointer_panic(int panic)
{
	rep.stop_on_bad_pointer = panic;
}

void mm_report_counts(uint64_t *bad_pointers, uint64_t *failures)
{
	mm_spin_lock(&rep.lock);
	*bad_pointers = rep.bad_pointers;
	*failures = rep.failures;
	mm_spin_unlock(&rep.lock);
}

void mm_report_reset(void)
{
	mm_spin_lock(&rep.lock);
	rep.last_ptr = (struct kmalloc_report){ 0 };
	rep.bad_pointers = rep.failures = 0;
	mm_spin_unlock(&rep.lock);
}

void kmalloc_last_report(struct kmalloc_report *r)
{
	mm_spin_lock(&rep.lock);
	*r = rep.last_ptr;
	mm_spin_unlock(&rep.lock);
}

void kmalloc_clear_report(void)
{
	mm_spin_lock(&rep.lock);
	uint64_t serial = rep.last_ptr.serial;
	rep.last_ptr = (struct kmalloc_report){ .serial = serial };
	mm_spin_unlock(&rep.lock);
}

/* ------------------------------------------------------------------ */
/* bugs found in the heap                                             */
/* ------------------------------------------------------------------ */

static const char *const bug_names[MM_BUG_KINDS] = {
	[MM_BUG_NONE]           = "no bug",
	[MM_BUG_DOUBLE_FREE]    = "double free",
	[MM_BUG_INVALID_FREE]   = "invalid free",
	[MM_BUG_OVERFLOW]       = "buffer overflow (red zone after the block damaged)",
	[MM_BUG_UNDERFLOW]      = "buffer underflow (red zone or header before the block damaged)",
	[MM_BUG_USE_AFTER_FREE] = "use after free (write to a freed block)",
	[MM_BUG_FREELIST]       = "corrupted free list",
	[MM_BUG_GUARD_OVERFLOW] = "buffer overflow (guard page after the block touched)",
	[MM_BUG_GUARD_UNDERFLOW] = "buffer underflow (guard page before the block touched)",
	[MM_BUG_READ_AFTER_FREE] = "use after free (read of a freed block)",
	[MM_BUG_BAD_POINTER]    = "invalid pointer (realloc or usable size of no block)",
	[MM_BUG_FREED_POINTER]  = "use after free (realloc or usable size of a freed block)",
	[MM_BUG_SIZED_DELETE]   = "sized delete with the wrong size",
	[MM_BUG_ALIGNED_DELETE] = "aligned delete of a block not from the aligned new (or the reverse)",
};

const char *mm_bug_name(enum mm_bug_kind kind)
{
	return (unsigned)kind < MM_BUG_KINDS ? bug_names[kind] : "?";
}

void mm_debug_set_panic(int panic_on_error)
{
	rep.keep_going = !panic_on_error;
}

void mm_debug_last_report(struct mm_bug_report *r)
{
	mm_spin_lock(&rep.lock);
	*r = rep.last_bug;
	mm_spin_unlock(&rep.lock);
}

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

/* Reports whose pointer may be no block at all (or is not worth a dump):
 * no dump read from it. */
static bool pointer_may_be_wild(enum mm_bug_kind kind)
{
	return kind == MM_BUG_INVALID_FREE || kind == MM_BUG_BAD_POINTER ||
	       kind == MM_BUG_SIZED_DELETE || kind == MM_BUG_ALIGNED_DELETE;
}

/* Fill r's dump with 32 bytes around `bad` (or from ptr), print it all,
 * remember it, then panic unless told to go on. */
void mm_report_bug(struct mm_bug_report *r)
{
	const unsigned char *from = r->bad ? (const unsigned char *)r->bad - 8 :
					     (const unsigned char *)r->ptr;
	from = (const unsigned char *)((uintptr_t)from & ~(uintptr_t)15);
	if (r->bad || !pointer_may_be_wild(r->kind)) {
		r->dump_at = from;
		for (unsigned i = 0; i < sizeof r->dump; i++)
			r->dump[i] = from[i];
	}
	mm_spin_lock(&rep.lock);
	r->serial = rep.last_bug.serial + 1;
	rep.last_bug = *r;
	mm_spin_unlock(&rep.lock);

	mm_printf("strata: BUG: %s at %p\n", bug_names[r->kind], r->ptr);
	if (r->cache)
		mm_printf("  object of cache %s\n", r->cache);
	if (r->told_size || r->told_align)
		mm_printf("  delete told %zu bytes, alignment %zu; the block is %zu bytes\n",
			  r->told_size, r->told_align, r->block_size);
	else if (r->requested || r->block_size)
		mm_printf("  block of %zu bytes asked for, in a %zu-byte block\n", r->requested,
			  r->block_size);
	if (r->bad)
		mm_printf("  first damaged byte %p (data offset %ld)\n", r->bad,
			  (long)((const char *)r->bad - (const char *)r->ptr));
	if (r->dump_at)
		hexdump(r->dump_at, sizeof r->dump);
	mm_printf("  allocated at %p, freed at %p, found by the call from %p\n", r->alloc_site,
		  r->free_site, r->caller);
	if (!rep.keep_going) {
		char msg[128];
		mm_snprintf(msg, sizeof msg, "%s at %p (caller %p)", bug_names[r->kind], r->ptr,
			    r->caller);
		mm_platform_panic(msg);
	}
}

void mm_report_magazine(size_t size, const void *b)
{
	struct mm_bug_report r = {
		.kind = MM_BUG_FREELIST, .ptr = b, .bad = b, .block_size = size,
	};
	mm_printf("strata: per-CPU magazine of class %zu holds %p, not a freed block\n",
		  size, b);
	mm_report_bug(&r);
}

void mm_report_freelist(const void *pool, size_t size, const void *b, const void *next)
{
	struct mm_bug_report r = {
		.kind = MM_BUG_FREELIST, .ptr = b, .bad = b, .block_size = size,
	};
	mm_printf("strata: free list of pool %p (class %zu) at block %p decodes to %p\n",
		  pool, size, b, next);
	mm_report_bug(&r);
}

void mm_report_bad_call(enum kmalloc_report_kind why, const char *op, const void *p,
			void *caller)
{
	bool is_free = op[0] == 'k' && op[1] == 'f';
	struct mm_bug_report r = { .ptr = p, .caller = caller };

	if (why == KM_DOUBLE_FREE)
		r.kind = is_free ? MM_BUG_DOUBLE_FREE : MM_BUG_FREED_POINTER;
	else
		r.kind = is_free ? MM_BUG_INVALID_FREE : MM_BUG_BAD_POINTER;
	mm_report_bug(&r);
}

/* ------------------------------------------------------------------ */
/* lock order (lockdep builds)                                        */
/* ------------------------------------------------------------------ */

/* No lock taken here: the report may be about the report lock itself. */
void mm_report_lock_order(const mm_spinlock_t *l, unsigned level, unsigned held)
{
	__atomic_add_fetch(&rep.lock_order_reports, 1, __ATOMIC_RELAXED);
	mm_printf("strata: lock order: lock %p of level %u taken while holding a lock of "
		  "level %u (mm/lock_order.h), caller %p\n", (const void *)l, level, held,
		  __builtin_return_address(0));
}

uint64_t mm_lockdep_reports(void)
{
	return __atomic_load_n(&rep.lock_order_reports, __ATOMIC_RELAXED);
}

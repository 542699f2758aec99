/*
 * guard.c - sampled guarded allocations: a few objects, chosen at random,
 * live on a page of their own next to a page nobody may touch.
 *
 * Red zones and poison (mm/debug.c) find a bug only when a check runs and
 * cost every allocation; guard pages find it at the faulting instruction
 * and cost nothing until then, but a page per object is far too much for
 * every object.  So, as Linux's KFENCE and LLVM's GWP-ASan do, we guard a
 * SAMPLE: one allocation in N (mm_guard_setup, default 1 in 200000) goes
 * to a fixed pool of slots; everything else never notices.  Over a long
 * run (or many machines) every hot allocation site gets sampled, and an
 * overflow or a use after free that happens often enough is caught in
 * production, with a report naming both call sites.
 *
 * The pool: one 4 MiB block from the PFA, 1024 pages, guard pages (G)
 * between data pages (D), all protected through the platform's hook
 * (mm_platform_protect) until a slot is handed out.  The first half has
 * 255 slots of one page; the second 30 slots of 16 pages, for requests
 * of more than a page (up to 64 KiB; larger ones are not sampled):
 *
 *   page   0    1    2    3    4   ...  509  510  511
 *        | G  | D0 | G  | D1 | G  | ... | D254| G  | G  |
 *                \__ slot 0    \__ slot 1
 *   page  512  513 ... 528  529  530 ... 546  547  ...  1022  1023
 *        | G  | D255 x 16  | G  | D256 x 16  | G  ... | G    | G  |
 *
 * A slot's object is placed at the END of its data pages (right-aligned,
 * its start still 16-byte aligned, or at the alignment kmalloc_aligned
 * asked for, up to a page), so the first byte past a 16-byte multiple
 * lands in the next guard page and faults:
 *
 *   data page:  | ... stale ... | canary x64 | object (n) | canary <16 | G ...
 *                                            ^ returned              ^ page end
 *
 * The bytes the alignment leaves after the object and the 64 bytes before
 * it are a canary, checked when the object is freed: a small overflow that
 * did not reach the guard page, or an underflow, is reported then.  On
 * free the data page is protected again and the slot joins the tail of a
 * FIFO, so it is reused as late as possible: any read or write of the
 * freed object faults meanwhile.
 *
 * A fault in the pool comes back through mm_guard_fault() (the kernel's
 * trap handler, or libstrata.so's SIGSEGV handler).  The faulting page
 * says what happened: a data page of a freed slot is a use after free (a
 * read or a write, if the trap says which), a guard page an overflow of
 * the slot before it (lower half) or an underflow of the slot after it
 * (upper half).  A fault outside the pool goes on to the callback the
 * debug layer registers (guard_chain_fault: its large blocks' guard
 * pages, mm/debug.c), else it is not strata's.  The report goes through the report sink
 * (mm_report_bug), which panics unless told to continue; to continue,
 * the pages concerned are opened for good and the slot is retired, so
 * the access is retried and succeeds, and that object is simply no
 * longer guarded (KFENCE does the same).
 *
 * The fast path's only cost is a per-CPU countdown in the kmalloc front
 * end (mm/kmalloc.c); when it reaches zero, guard_next_countdown() draws
 * the next one (uniform in 1..2N-1, mean N: no allocation pattern can
 * dodge it) and guard_alloc() takes a slot under guard.lock.  A full
 * pool, a request over a page or a failed protection: NULL, and the
 * caller allocates as usual.
 */
#include <strata/config.h>
#include <strata/debug.h>
#include <strata/format.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>
#include <strata/spinlock.h>

#include "guard.h"
#include "layer.h"
#include "lock_order.h"
#include "report.h"
#include "util.h"

#define POOL_ORDER    10                     /* 4 MiB: 1024 pages */
#define POOL_PAGES    (1u << POOL_ORDER)
#define SMALL_PAGES   512u                   /* the first half: one-page slots */
#define BIG_PAGES     MM_GUARD_LARGE_PAGES   /* data pages of a large slot */
#define NSLOTS        (MM_GUARD_SLOTS + MM_GUARD_LARGE_SLOTS)
#define SLOT_NONE     0xffffu
#define CANARY        0xFB
#define CANARY_BEFORE 64                     /* bytes before the object */
#define RECHECK       65536                  /* sampling off: ask again after
						* (rarer than 1 in 10^4 calls:
						* README, Worst case) */
#define RATE_MAX      (1u << 30)

_Static_assert(2 * MM_GUARD_SLOTS + 1 < SMALL_PAGES, "small slots fit the first half");
_Static_assert(SMALL_PAGES + MM_GUARD_LARGE_SLOTS * (BIG_PAGES + 1) + 1 <= POOL_PAGES,
	       "large slots fit the second half");

enum slot_state { SLOT_UNUSED, SLOT_LIVE, SLOT_FREED, SLOT_RETIRED };

struct guard_slot {
	uintptr_t obj;            /* the object (LIVE, FREED) */
	size_t size;              /* bytes asked for */
	void *alloc_site, *free_site;
	uint16_t next;            /* FIFO of slots to hand out */
	uint8_t state;
	bool broken;              /* a fault opened its pages: retire on free */
};

/* FIFO of slots: UNUSED first, then FREED, oldest first. */
struct fifo {
	uint16_t head, tail;
};

struct guard_range guard_range;

static struct {
	mm_spinlock_t lock;
	unsigned rate;            /* N; 0: off (read without the lock) */
	uint64_t seed;
	struct fifo small, big;   /* slots to hand out, of one page / of BIG_PAGES */
	uint64_t open[POOL_PAGES / 64];   /* pages opened after a fault */
	struct guard_slot slot[NSLOTS];
	uint64_t sampled, guarded, no_slot, live, faults;
} g = { .lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_GUARD), .small = { SLOT_NONE, SLOT_NONE },
	.big = { SLOT_NONE, SLOT_NONE } };

/* ------------------------------------------------------------------ */
/* pages and slots                                                    */
/* ------------------------------------------------------------------ */

static uintptr_t page_addr(unsigned pg)
{
	return guard_range.base + ((uintptr_t)pg << PAGE_SHIFT);
}

static bool is_big(unsigned i)
{
	return i >= MM_GUARD_SLOTS;
}

/* Slot i's first data page: 2i + 1 in the first half; in the second,
 * a guard page then BIG_PAGES data pages per slot. */
static unsigned first_page(unsigned i)
{
	return is_big(i) ? SMALL_PAGES + (i - MM_GUARD_SLOTS) * (BIG_PAGES + 1) + 1 : 2 * i + 1;
}

static unsigned slot_pages(unsigned i)
{
	return is_big(i) ? BIG_PAGES : 1;
}

static uintptr_t data_page(unsigned i)
{
	return page_addr(first_page(i));
}

static uintptr_t data_end(unsigned i)
{
	return data_page(i) + ((uintptr_t)slot_pages(i) << PAGE_SHIFT);
}

/* The slot whose data pages hold page pg, or SLOT_NONE (a guard page). */
static unsigned slot_at_page(unsigned pg)
{
	if (pg < SMALL_PAGES)
		return (pg & 1) && pg / 2 < MM_GUARD_SLOTS ? pg / 2 : SLOT_NONE;
	unsigned q = pg - SMALL_PAGES, j = q / (BIG_PAGES + 1);
	return q % (BIG_PAGES + 1) && j < MM_GUARD_LARGE_SLOTS ? MM_GUARD_SLOTS + j : SLOT_NONE;
}

/* The slots just before and just after guard page pg (SLOT_NONE: none). */
static void slots_beside(unsigned pg, unsigned *before, unsigned *after)
{
	unsigned j, base, n;
	if (pg < SMALL_PAGES) {
		j = pg / 2, base = 0, n = MM_GUARD_SLOTS;
	} else {
		j = (pg - SMALL_PAGES) / (BIG_PAGES + 1), base = MM_GUARD_SLOTS, n = MM_GUARD_LARGE_SLOTS;
	}
	*before = j > 0 && j - 1 < n ? base + j - 1 : SLOT_NONE;
	*after = j < n ? base + j : SLOT_NONE;
}

static struct fifo *fifo_of(unsigned i)
{
	return is_big(i) ? &g.big : &g.small;
}

static int protect_page(uintptr_t page, int prot)
{
	return mm_platform_protect((void *)page, PAGE_SIZE, prot);
}

/* Slot i's data pages. */
static int protect_data(unsigned i, int prot)
{
	return mm_platform_protect((void *)data_page(i), (size_t)slot_pages(i) << PAGE_SHIFT, prot);
}

/* Open page pg for good (after a fault): read/write, remembered. */
static void open_page(unsigned pg)
{
	if (!(g.open[pg / 64] & (1ull << (pg % 64))) && protect_page(page_addr(pg), MM_PROT_RW) == 0)
		g.open[pg / 64] |= 1ull << (pg % 64);
}

static bool page_is_open(unsigned pg)
{
	return (g.open[pg / 64] >> (pg % 64)) & 1;
}

static void fifo_push(unsigned i)
{
	struct fifo *f = fifo_of(i);
	g.slot[i].next = SLOT_NONE;
	if (f->tail == SLOT_NONE)
		f->head = (uint16_t)i;
	else
		g.slot[f->tail].next = (uint16_t)i;
	f->tail = (uint16_t)i;
}

static unsigned fifo_pop(struct fifo *f)
{
	unsigned i = f->head;
	if (i != SLOT_NONE) {
		f->head = g.slot[i].next;
		if (f->head == SLOT_NONE)
			f->tail = SLOT_NONE;
	}
	return i;
}

static void fifo_remove(unsigned i)
{
	struct fifo *f = fifo_of(i);
	unsigned prev = SLOT_NONE;
	for (unsigned j = f->head; j != SLOT_NONE; prev = j, j = g.slot[j].next) {
		if (j != i)
			continue;
		if (prev == SLOT_NONE)
			f->head = g.slot[j].next;
		else
			g.slot[prev].next = g.slot[j].next;
		if (f->tail == j)
			f->tail = (uint16_t)prev;
		return;
	}
}

/* The slot whose data pages hold address a, or NULL (a guard page). */
static struct guard_slot *slot_of_data(uintptr_t a)
{
	unsigned i = slot_at_page((unsigned)((a - guard_range.base) >> PAGE_SHIFT));
	return i == SLOT_NONE ? NULL : &g.slot[i];
}

static unsigned slot_index(const struct guard_slot *s)
{
	return (unsigned)(s - g.slot);
}

/* ------------------------------------------------------------------ */
/* reports                                                            */
/* ------------------------------------------------------------------ */

static const char *const state_name[] = {
	[SLOT_UNUSED] = "never used", [SLOT_LIVE] = "in use",
	[SLOT_FREED] = "freed", [SLOT_RETIRED] = "no longer guarded",
};

/* The guard pages on both sides of slot i (those not opened for good):
 * read/write while a report dumps bytes near them, then none again. */
static void neighbours(unsigned i, int prot)
{
	unsigned before = first_page(i) - 1, after = first_page(i) + slot_pages(i);
	mm_spin_lock(&g.lock);
	for (unsigned pg = before; pg <= after; pg += after - before)
		if (!page_is_open(pg))
			protect_page(page_addr(pg), prot);
	mm_spin_unlock(&g.lock);
}

/* One bug about slot s (its data page readable), then the policy: the
 * report sink panics unless told to continue.  Its dump of 32 bytes
 * around `bad` may reach into a guard page: opened meanwhile. */
static void report_slot(enum mm_bug_kind kind, const struct guard_slot *s, const void *ptr,
			const void *bad, void *caller)
{
	struct mm_bug_report r = {
		.kind = kind, .ptr = ptr, .bad = bad, .requested = s->size,
		.block_size = (size_t)(data_end(slot_index(s)) - s->obj),
		.alloc_site = s->alloc_site, .free_site = s->free_site, .caller = caller,
	};
	neighbours(slot_index(s), MM_PROT_RW);
	mm_report_bug(&r);
	neighbours(slot_index(s), MM_PROT_NONE);
}

/* kfree/krealloc of a pointer into the pool that is not a live object:
 * a second free of a sampled block, or a pointer inside one or into a
 * guard page. */
static void bad_free(const void *p, struct guard_slot *s, void *caller)
{
	if (!s || s->state == SLOT_UNUSED) {
		mm_printf("strata: kfree(%p): in a guard page or an unused guard slot, not a block\n",
			  p);
		struct mm_bug_report r = { .kind = MM_BUG_INVALID_FREE, .ptr = p, .caller = caller };
		mm_report_bug(&r);
		return;
	}
	bool dbl = s->obj == (uintptr_t)p && s->state != SLOT_LIVE;
	mm_printf("strata: kfree(%p): %s sampled %zu-byte block at %p (%s)\n", p,
		  dbl ? "a second free of the" : "not the start of the", s->size, (void *)s->obj,
		  state_name[s->state]);
	mm_spin_lock(&g.lock);
	bool reprotect = s->state == SLOT_FREED;
	if (reprotect)
		protect_data(slot_index(s), MM_PROT_RW);   /* for the dump */
	mm_spin_unlock(&g.lock);
	report_slot(dbl ? MM_BUG_DOUBLE_FREE : MM_BUG_INVALID_FREE, s, dbl ? p : (void *)s->obj,
		    NULL, caller);
	mm_spin_lock(&g.lock);
	if (reprotect && s->state == SLOT_FREED)
		protect_data(slot_index(s), MM_PROT_NONE);
	mm_spin_unlock(&g.lock);
}

/* The canary around a live object s, checked as it is freed. */
static void check_canary(const struct guard_slot *s, void *caller)
{
	uintptr_t page = data_page(slot_index(s));
	uintptr_t lo = s->obj - page > CANARY_BEFORE ? s->obj - CANARY_BEFORE : page;
	uintptr_t end = s->obj + s->size;
	const unsigned char *bad = mm_first_not((const void *)lo, s->obj - lo, CANARY);

	if (bad)
		report_slot(MM_BUG_UNDERFLOW, s, (void *)s->obj, bad, caller);
	bad = mm_first_not((const void *)end, data_end(slot_index(s)) - end, CANARY);
	if (bad)
		report_slot(MM_BUG_OVERFLOW, s, (void *)s->obj, bad, caller);
}

/* ------------------------------------------------------------------ */
/* allocation and free                                                */
/* ------------------------------------------------------------------ */

static void fill_canary(const struct guard_slot *s)
{
	uintptr_t page = data_page(slot_index(s));
	uintptr_t lo = s->obj - page > CANARY_BEFORE ? s->obj - CANARY_BEFORE : page;
	uintptr_t end = s->obj + s->size;

	mm_fill((void *)lo, s->obj - lo, CANARY);
	mm_fill((void *)end, data_end(slot_index(s)) - end, CANARY);
}

void *guard_alloc(size_t size, size_t align, bool zero, void *caller)
{
	/* kmalloc(0) is placed as 16 bytes, but its size (and usable size)
	 * is 0: those 16 bytes are canary, so a write into it is found */
	size_t n = size ? size : KMALLOC_MIN_ALIGN;

	if (!mm_load(g.rate))
		return NULL;
	__atomic_add_fetch(&g.sampled, 1, __ATOMIC_RELAXED);
	if (!mm_load(guard_range.bytes) || n > GUARD_MAX_BYTES || align > PAGE_SIZE)
		return NULL;
	mm_spin_lock(&g.lock);
	unsigned i = fifo_pop(n > PAGE_SIZE ? &g.big : &g.small);
	if (i == SLOT_NONE) {
		g.no_slot++;
		mm_spin_unlock(&g.lock);
		return NULL;
	}
	struct guard_slot *s = &g.slot[i];
	if (protect_data(i, MM_PROT_RW) != 0) {
		s->state = SLOT_RETIRED;
		mm_spin_unlock(&g.lock);
		return NULL;
	}
	s->obj = (data_end(i) - n) & ~(uintptr_t)(align - 1);
	s->size = size;
	s->alloc_site = caller;
	s->free_site = NULL;
	s->state = SLOT_LIVE;
	g.guarded++;
	g.live++;
	mm_spin_unlock(&g.lock);
	fill_canary(s);
	if (zero)
		mm_zero_bytes((void *)s->obj, size);
	return (void *)s->obj;
}

void guard_free(const void *p, void *caller)
{
	struct guard_slot *s = slot_of_data((uintptr_t)p);

	mm_spin_lock(&g.lock);
	if (!s || s->state != SLOT_LIVE || s->obj != (uintptr_t)p) {
		mm_spin_unlock(&g.lock);
		bad_free(p, s, caller);
		return;
	}
	s->state = SLOT_FREED;        /* ours now: a racing second free is reported */
	s->free_site = caller;
	g.live--;
	mm_spin_unlock(&g.lock);

	check_canary(s, caller);
	mm_spin_lock(&g.lock);
	if (s->broken)
		s->state = SLOT_RETIRED;      /* its guard page is open: never reused */
	if (s->state == SLOT_FREED) {
		if (protect_data(slot_index(s), MM_PROT_NONE) == 0)
			fifo_push(slot_index(s));
		else
			s->state = SLOT_RETIRED;
	}
	mm_spin_unlock(&g.lock);
}

bool guard_usable(const void *p, size_t *usable)
{
	const struct guard_slot *s = slot_of_data((uintptr_t)p);

	if (!s || mm_load(s->state) != SLOT_LIVE || s->obj != (uintptr_t)p)
		return false;
	*usable = s->size;
	return true;
}

enum kmalloc_report_kind guard_bad_reason(const void *p)
{
	const struct guard_slot *s = slot_of_data((uintptr_t)p);

	if (s && s->obj == (uintptr_t)p && mm_load(s->state) != SLOT_LIVE &&
	    s->state != SLOT_UNUSED)
		return KM_DOUBLE_FREE;
	return KM_BAD_MISALIGNED;
}

/* ------------------------------------------------------------------ */
/* the sampling countdown                                             */
/* ------------------------------------------------------------------ */

int32_t guard_next_countdown(uint64_t *rng, unsigned cpu, bool *sample_now)
{
	unsigned rate = mm_load(g.rate);
	uint64_t x = *rng;

	/* the first countdown of a CPU is drawn, not taken: else every
	 * CPU's (every thread's) first allocation would be sampled */
	*sample_now = rate != 0 && (x != 0 || rate == 1);
	if (x == 0)
		x = (mm_load(g.seed) + (cpu + 1ull) * 0x9E3779B97F4A7C15ull) | 1;
	x ^= x << 13;          /* xorshift64 */
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	if (rate == 0)
		return RECHECK;
	if (rate == 1)
		return 1;
	return (int32_t)(1 + (x >> 11) % (2ull * rate - 1));
}

/* Slow paths with no countdown of their own (kmem_cache's, whose fast
 * path is left alone): one shared countdown, drawn like a CPU's. */
static struct {
	int32_t left;
	uint64_t rng;
} slow_count;

bool guard_sample_slow(void)
{
	if (!mm_load(g.rate) || __atomic_sub_fetch(&slow_count.left, 1, __ATOMIC_RELAXED) >= 0)
		return false;
	bool now;
	mm_spin_lock(&g.lock);
	int32_t n = guard_next_countdown(&slow_count.rng, 0xffffu, &now);
	mm_store(slow_count.left, n - 1);
	mm_spin_unlock(&g.lock);
	return now;
}

/* ------------------------------------------------------------------ */
/* faults                                                             */
/* ------------------------------------------------------------------ */

struct fault {
	enum mm_bug_kind kind;
	struct guard_slot *s;     /* the object it concerns */
};

/* Which object and what kind of bug a fault at a (page pg) is. */
static void classify(uintptr_t a, unsigned pg, int access, struct fault *f)
{
	unsigned i = slot_at_page(pg), before, after;
	if (i != SLOT_NONE) {                           /* a data page */
		f->s = &g.slot[i];
		f->kind = access == MM_ACCESS_READ ? MM_BUG_READ_AFTER_FREE : MM_BUG_USE_AFTER_FREE;
		return;
	}
	slots_beside(pg, &before, &after);
	bool low = (a & (PAGE_SIZE - 1)) < PAGE_SIZE / 2;
	if (before != SLOT_NONE && (low || after == SLOT_NONE)) {   /* after slot `before` */
		f->s = &g.slot[before];
		f->kind = MM_BUG_GUARD_OVERFLOW;
	} else {                                        /* before slot `after` */
		f->s = &g.slot[after];
		f->kind = MM_BUG_GUARD_UNDERFLOW;
	}
}

/* Open the faulting page and the object's data page for good, so the
 * access can be retried; the slot is out of use from now on. */
static void retire_for_fault(struct guard_slot *s, unsigned pg)
{
	unsigned i = slot_index(s);

	open_page(pg);
	for (unsigned k = 0; k < slot_pages(i); k++)
		open_page(first_page(i) + k);
	if (s->state == SLOT_FREED || s->state == SLOT_UNUSED)
		fifo_remove(i);
	if (s->state != SLOT_LIVE)
		s->state = SLOT_RETIRED;
	s->broken = true;
	g.faults++;
}

static const char *access_name(int access)
{
	return access == MM_ACCESS_READ ? "read" : access == MM_ACCESS_WRITE ? "write" : "access";
}

static guard_fault_fn chained_fault;

void guard_chain_fault(guard_fault_fn fn)
{
	mm_store(chained_fault, fn);
}

bool mm_guard_fault(const void *addr, int access, void *pc)
{
	uintptr_t a = (uintptr_t)addr;

	if (!guard_owns(addr)) {
		guard_fault_fn fn = mm_load(chained_fault);
		return fn && fn(addr, access, pc);
	}
	unsigned pg = (unsigned)((a - guard_range.base) >> PAGE_SHIFT);
	struct fault f;
	mm_spin_lock(&g.lock);
	unsigned at = slot_at_page(pg);
	if (page_is_open(pg) || (at != SLOT_NONE && g.slot[at].state == SLOT_LIVE)) {
		mm_spin_unlock(&g.lock);
		return true;            /* already open: a stale TLB entry, retry */
	}
	classify(a, pg, access, &f);
	unsigned state = f.s->state;
	retire_for_fault(f.s, pg);
	mm_spin_unlock(&g.lock);

	if (state == SLOT_UNUSED) {
		mm_printf("strata: guard page fault: %s of %p, in guard slot %u, which never held "
			  "a block (a wild pointer)\n", access_name(access), addr, slot_index(f.s));
		struct mm_bug_report r = { .kind = f.kind, .ptr = addr, .bad = addr, .caller = pc };
		mm_report_bug(&r);
		return true;
	}
	mm_printf("strata: guard page fault: %s of %p, offset %ld of the %zu-byte sampled "
		  "block at %p (%s)\n", access_name(access), addr, (long)(a - f.s->obj),
		  f.s->size, (void *)f.s->obj, state_name[state]);
	report_slot(f.kind, f.s, (void *)f.s->obj, addr, pc);
	return true;
}

/* ------------------------------------------------------------------ */
/* setup, statistics                                                  */
/* ------------------------------------------------------------------ */

static void guard_lock_all(void)
{
	mm_spin_lock(&g.lock);
}

static void guard_unlock_all(void)
{
	mm_spin_unlock(&g.lock);
}

static struct mm_layer guard_layer = {
	.name = "guard", .level = MM_LOCK_GUARD, .lock = guard_lock_all, .unlock = guard_unlock_all,
};

/* The pool: a 4 MiB PFA block, every page protected; the slots in the
 * FIFO.  0, or -2 (no memory, or the platform cannot protect). */
static int pool_create(void)
{
	phys_addr_t pa = pfa_alloc(POOL_ORDER, 0);

	if (!pa)
		return -2;
	void *va = pfa_virt(pa);
	if (mm_platform_protect(va, (size_t)POOL_PAGES << PAGE_SHIFT, MM_PROT_NONE) != 0) {
		pfa_free(pa, POOL_ORDER);
		return -2;
	}
	for (unsigned i = 0; i < NSLOTS; i++) {
		g.slot[i] = (struct guard_slot){ .state = SLOT_UNUSED };
		fifo_push(i);
	}
	mm_layer_register(&guard_layer);
	guard_range.base = (uintptr_t)va;
	__atomic_store_n(&guard_range.bytes, (size_t)POOL_PAGES << PAGE_SHIFT, __ATOMIC_RELEASE);
	return 0;
}

/* "123" at s (n chars) -> value; false if not a number. */
static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
	*v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return true;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	size_t i = 0;
	while (i < n && w[i] && s[i] == w[i])
		i++;
	return i == n && w[i] == 0;
}

struct guard_spec {
	uint64_t rate, seed;
	bool have_seed;
	int panic;                /* -1: leave the policy alone */
};

static int parse_spec(const char *spec, struct guard_spec *gs)
{
	*gs = (struct guard_spec){ .panic = -1 };
	bool have_rate = false;
	for (const char *s = spec; *s;) {
		size_t n = 0;
		while (s[n] && s[n] != ',')
			n++;
		if (word_is(s, n, "off"))
			gs->rate = 0, have_rate = true;
		else if (word_is(s, n, "continue"))
			gs->panic = 0;
		else if (word_is(s, n, "abort") || word_is(s, n, "panic"))
			gs->panic = 1;
		else if (n > 5 && word_is(s, 5, "seed=") && parse_u64(s + 5, n - 5, &gs->seed))
			gs->have_seed = true;
		else if (parse_u64(s, n, &gs->rate) && gs->rate <= RATE_MAX)
			have_rate = true;
		else
			return -1;
		s += n + (s[n] == ',');
	}
	return have_rate ? 0 : -1;
}

int mm_guard_setup(const char *spec)
{
	struct guard_spec gs;

	if (!spec || parse_spec(spec, &gs) != 0)
		return -1;
	if (!MM_SAMPLING && gs.rate)
		return -3;                   /* no countdown to honour N */
	if (gs.rate && !mm_load(guard_range.bytes) && pool_create() != 0)
		return -2;
	mm_store(g.seed, gs.have_seed ? gs.seed : mm_platform_entropy());
	mm_store(g.rate, (unsigned)gs.rate);
	if (gs.panic >= 0)
		mm_debug_set_panic(gs.panic);
	return 0;
}

void mm_guard_get_stats(struct mm_guard_stats *st)
{
	mm_spin_lock(&g.lock);
	*st = (struct mm_guard_stats){
		.rate = g.rate, .sampled = __atomic_load_n(&g.sampled, __ATOMIC_RELAXED),
		.guarded = g.guarded, .no_slot = g.no_slot, .live = g.live, .faults = g.faults,
	};
	mm_spin_unlock(&g.lock);
}

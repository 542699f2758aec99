/*
 * heapdump.c - the heap as text (format: strata/heapdump.h).
 *
 * Two walks, both under pools.lock then pfa.lock (mm/lock_order.h), so
 * the picture is one consistent instant:
 *
 *   1. the page descriptors, section by section, block by block: each
 *      block head says who owns the block and how big it is (free and
 *      allocated heads carry an order; a large run's head carries the
 *      run's page count; reserved pages are single pages).  Runs of equal
 *      owner are merged into one line while they touch, so 500 MiB of free
 *      order-10 blocks is one line, not 125.
 *
 *   2. the arena list: for each arena one `pools` line with its pool size
 *      (16 KiB for the small classes, more for medium ones) and a token
 *      per pool, repeated tokens run-length compressed.
 *
 * Nothing here allocates: the text is built in a small buffer on the
 * stack and handed to `out` whenever it fills, and at the end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <strata/format.h>
#include <strata/heapdump.h>
#include <strata/pfa.h>

#include "kmalloc_front.h"
#include "large.h"
#include "pfa_internal.h"
#include "pool.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* output                                                              */
/* ------------------------------------------------------------------ */

struct dump {
	void (*out)(const char *s, size_t n);
	unsigned lines;
	size_t n;
	char buf[256];      /* small: mm/ functions keep under MM_STACK_BUDGET */
};

static void flush(struct dump *d)
{
	if (d->n)
		d->out(d->buf, d->n);
	d->n = 0;
}

static void put(struct dump *d, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d->n == sizeof d->buf)
			flush(d);
		if (s[i] == '\n')
			d->lines++;
		d->buf[d->n++] = s[i];
	}
}

__attribute__((format(printf, 2, 3)))
static void pr(struct dump *d, const char *fmt, ...)
{
	char tmp[160];
	va_list ap;

	va_start(ap, fmt);
	int n = mm_vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof tmp - 1)
		n = (int)sizeof tmp - 1;
	if (n > 0)
		put(d, tmp, (size_t)n);
}

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* ------------------------------------------------------------------ */
/* memory lines                                                        */
/* ------------------------------------------------------------------ */

enum kind { K_NONE, K_FREE, K_RESERVED, K_META, K_ARENA, K_LARGE, K_PFA,
	    K_CACHE, K_BAD };

static const char *const kind_name[] = {
	[K_NONE] = "?", [K_FREE] = "free", [K_RESERVED] = "reserved",
	[K_META] = "meta", [K_ARENA] = "arena", [K_LARGE] = "large",
	[K_PFA] = "pfa", [K_CACHE] = "cache", [K_BAD] = "bad",
};

/* The line being built: merged with the next run while that touches it
 * and is of the same kind (and order, for block kinds). */
struct run {
	enum kind kind;
	phys_addr_t base;
	uint64_t pages;
	unsigned order;        /* free/pfa/pool/cache: block order */
	uint64_t n;            /* ... and number of blocks */
	uint64_t req;          /* large: bytes asked for */
	bool cached;           /* large: in the run cache */
};

static bool has_order(enum kind k)
{
	return k == K_FREE || k == K_PFA || k == K_CACHE;
}

static void run_flush(struct dump *d, struct run *r)
{
	if (r->kind == K_NONE)
		return;
	pr(d, "%s 0x%llx %llu", kind_name[r->kind], ull(r->base), ull(r->pages));
	if (has_order(r->kind))
		pr(d, " order=%u n=%llu", r->order, ull(r->n));
	if (r->kind == K_LARGE)
		pr(d, " req=%llu%s", ull(r->req), r->cached ? " cached" : "");
	put(d, "\n", 1);
	r->kind = K_NONE;
}

static void run_add(struct dump *d, struct run *r, enum kind kind, phys_addr_t base,
		    uint64_t pages, unsigned order)
{
	bool merges = r->kind == kind && kind != K_ARENA && kind != K_LARGE &&
		      kind != K_BAD && r->base + (r->pages << PAGE_SHIFT) == base &&
		      (!has_order(kind) || r->order == order);
	if (merges) {
		r->pages += pages;
		r->n++;
		return;
	}
	run_flush(d, r);
	*r = (struct run){ kind, base, pages, order, 1, 0, false };
}

/* The block whose head descriptor is at index i: add it, return its pages. */
static uint32_t walk_block(struct dump *d, struct run *r, const struct pfa_section *sec,
			   uint32_t i)
{
	const struct page *pg = pfa_idx_page(i);
	phys_addr_t pa = pfa_idx_phys(i);
	unsigned owner = pg->owner, k = pg->order;

	if (owner == PG_UNMANAGED)
		return 1;
	if (owner == PG_RESERVED) {
		bool meta = pa >= pfa.meta.base && pa < pfa.meta.end;
		run_add(d, r, meta ? K_META : K_RESERVED, pa, 1, 0);
		return 1;
	}
	if ((owner != PG_FREE && !pfa_is_allocated_head(owner)) || k > PFA_MAX_ORDER ||
	    (i & (PFA_BLOCK_PAGES(k) - 1)) || i + PFA_BLOCK_PAGES(k) > sec->end) {
		run_add(d, r, K_BAD, pa, 1, 0);
		return 1;
	}
	uint32_t pages = PFA_BLOCK_PAGES(k);
	switch (owner) {
	case PG_FREE:
		run_add(d, r, K_FREE, pa, pages, k);
		break;
	case PG_ARENA:
		run_add(d, r, K_ARENA, pa, pages, k);
		break;
	case PG_LARGE:
		/* the run: this block and the continuation blocks after it;
		 * the line covers the run, the continuations add nothing */
		run_add(d, r, K_LARGE, pa, pg->data ? pg->data : pages, k);
		r->req = pg->next;
		r->cached = large_is_cached(pg);   /* freed, kept in the run cache */
		break;
	case PG_PFA:
		if (!large_is_continuation(pg))
			run_add(d, r, K_PFA, pa, pages, k);
		break;
	case PG_CACHE:
		run_add(d, r, K_CACHE, pa, pages, k);
		break;
	default:
		run_add(d, r, K_PFA, pa, pages, k);
		break;
	}
	return pages;
}

static void walk_memory(struct dump *d)
{
	struct run r = { .kind = K_NONE };
	unsigned nsec = pfa.npages ? ((pfa.npages - 1) >> pfa.sec_shift) + 1 : 0;

	for (unsigned s = 0; s < nsec && s < PFA_SECTIONS; s++) {
		const struct pfa_section *sec = &pfa.section[s];
		for (uint32_t i = sec->first; i < sec->end;) {
			/* fresh mode (pfa_setup_fresh): the lazy span is free but
			 * not described yet; shown as the blocks it would be
			 * carved into, as pfa_get_stats() counts it */
			if (i >= pfa.lazy_next && i < pfa.lazy_end) {
				uint32_t e = pfa.lazy_end < sec->end ? pfa.lazy_end : sec->end;
				unsigned k = i ? mm_ctz32(i) : PFA_MAX_ORDER;
				if (k > PFA_MAX_ORDER)
					k = PFA_MAX_ORDER;
				while (PFA_BLOCK_PAGES(k) > e - i)
					k--;
				run_add(d, &r, K_FREE, pfa_idx_phys(i), PFA_BLOCK_PAGES(k), k);
				i += PFA_BLOCK_PAGES(k);
				continue;
			}
			/* ... and the metadata's own descriptors stay zero */
			if (pfa.fresh && pfa_idx_phys(i) >= pfa.meta.base &&
			    pfa_idx_phys(i) < pfa.meta.end) {
				run_add(d, &r, K_META, pfa_idx_phys(i), 1, 0);
				i++;
				continue;
			}
			i += walk_block(d, &r, sec, i);
		}
	}
	run_flush(d, &r);
}

/* ------------------------------------------------------------------ */
/* pools lines                                                         */
/* ------------------------------------------------------------------ */

/* A pool's state as a token: 0 never carved, 1 free, else in use. */
struct token {
	unsigned state;
	unsigned size, used, cap;
};

static bool token_eq(const struct token *a, const struct token *b)
{
	return a->state == b->state && a->size == b->size && a->used == b->used &&
	       a->cap == b->cap;
}

static void token_put(struct dump *d, const struct token *t, unsigned times)
{
	if (t->state == 0)
		put(d, " .", 2);
	else if (t->state == 1)
		put(d, " -", 2);
	else
		pr(d, " %u:%u/%u", t->size, t->used, t->cap);
	if (times > 1)
		pr(d, "*%u", times);
}

static struct token pool_token(const struct km_arena *a, unsigned i)
{
	struct token t = { 0, 0, 0, 0 };

	if (i >= a->nextpool)
		return t;
	const struct km_pool *p = km_pool_at(a, i);
	const struct page *pg = pfa_virt_to_page(p);
	t.state = 1;
	if (!pg || pg->cls == 0 || p->cls >= pools.nclasses)
		return t;
	const struct km_class *k = &pools.cls[p->cls];
	t.state = 2;
	t.size = k->size;
	t.used = p->ref;
	t.cap = p->index == 0 ? k->cap0 : k->cap;
	return t;
}

static void walk_arenas(struct dump *d)
{
	uint64_t count = 0;

	for (const struct km_arena *a = arenas.all; a; a = a->anext) {
		if (++count > arenas.current + 1)
			break;   /* a broken list; kmalloc_check() says more */
		const char *state = a == arenas.spare ? "spare" : a == pools.held ? "held" : "live";
		pr(d, "pools 0x%llx carved=%u nfree=%u state=%s pool=%lu", ull(a->pa),
		   (unsigned)a->nextpool, (unsigned)a->nfreepools, state,
		   (unsigned long)1 << a->pool_shift);
		struct token prev = pool_token(a, 0);
		unsigned times = 1;
		for (unsigned i = 1; i < a->npools; i++) {
			struct token t = pool_token(a, i);
			if (token_eq(&t, &prev)) {
				times++;
				continue;
			}
			token_put(d, &prev, times);
			prev = t;
			times = 1;
		}
		token_put(d, &prev, times);
		put(d, "\n", 1);
	}
}

/* ------------------------------------------------------------------ */

void mm_heap_dump(void (*out)(const char *s, size_t n))
{
	struct dump d = { .out = out, .lines = 0, .n = 0 };

	struct kmalloc_front_stats fs;
	kmalloc_front_stats(&fs);
	mm_spin_lock(&pools.lock);
	mm_spin_lock(&pfa.lock);

	struct large_stats ls = { 0 };
	if (fs.ready)
		large_get_stats(&ls);
	unsigned nclasses = fs.ready ? pools.nclasses : 0;
	pr(&d, "strata-heap v1 page=%lu pool=%lu arena=%lu pools=%u maxorder=%u "
	   "classes=%u small_max=%u\n", (unsigned long)PAGE_SIZE,
	   (unsigned long)KM_POOL_SIZE, (unsigned long)KM_ARENA_SIZE, KM_ARENA_POOLS,
	   (unsigned)PFA_MAX_ORDER, nclasses, (unsigned)KM_SMALL_MAX);
	for (unsigned c = 0; c < nclasses; c++)
		pr(&d, "class %u %u %u %u\n", c, pools.cls[c].size, pools.cls[c].cap,
		   pools.cls[c].cap0);
	for (unsigned r = 0; r < pfa.nregions; r++)
		pr(&d, "region 0x%llx 0x%llx\n", ull(pfa.region[r].base),
		   ull(pfa.region[r].end - pfa.region[r].base));
	pr(&d, "totals pages=%llu free=%llu reserved=%llu meta_bytes=%llu",
	   ull(pfa.total_pages), ull(pfa.free_pages), ull(pfa.reserved_pages),
	   ull(pfa.metadata_bytes));
	pr(&d, " arenas=%llu large_runs=%llu large_pages=%llu large_req=%llu\n",
	   ull(fs.ready ? arenas.current : 0), ull(ls.runs), ull(ls.pages), ull(ls.requested));

	if (pfa.ready)
		walk_memory(&d);
	if (fs.ready)
		walk_arenas(&d);
	pr(&d, "strata-heap end lines=%u\n", d.lines + 1);
	flush(&d);

	mm_spin_unlock(&pfa.lock);
	mm_spin_unlock(&pools.lock);
}

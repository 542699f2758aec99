/*
 * trace.c - tracemalloc for strata (strata/trace.h).
 *
 *   kmalloc(n) from site S                 kfree(p)
 *      |                                      |
 *      v                                      v
 *   sites[]: open addressing on the        traces[]: p -> (site, n),
 *   frames of S -> {count, bytes}          open addressing, deleted with
 *   += 1, += n                             backward shift; site -= 1, -= n
 *   traces[]: insert p -> (S, n)
 *
 * A site never moves once created, so a snapshot is a copy of sites[]
 * and comparing two snapshots is one pass over the same indices.
 * Both tables come from the PFA (1.25 MiB) at mm_trace_start().
 *
 * A wrapper: mm_trace_start() installs trace_alloc/trace_free in the
 * front end's hook table (kmalloc_front.h) and registers the trace lock
 * with mm_lock_all (mm/layer.h).  It calls only down (the PFA, the
 * formatter); the front end never names it.
 */
#include <strata/config.h>   /* MM_FRAME_RECORD */
#include <strata/format.h>
#include <strata/pfa.h>
#include <strata/spinlock.h>
#include <strata/trace.h>

#include "kmalloc_front.h"
#include "layer.h"
#include "lock_order.h"

#define SITES_ORDER  6                      /* 256 KiB: 4096 sites of 64 B */
#define TRACES_ORDER 8                      /* 1 MiB: 65536 traces of 16 B */
#define NSITES   ((PAGE_SIZE << SITES_ORDER) / sizeof(struct mm_trace_stat))
#define NTRACES  ((PAGE_SIZE << TRACES_ORDER) / sizeof(struct trace))
#define SNAP_ORDER SITES_ORDER

struct trace {
	uintptr_t ptr;      /* 0: empty */
	uint32_t site;
	uint32_t size;
};

struct mm_trace_snapshot {
	phys_addr_t pa;
	struct mm_trace_stat site[];   /* NSITES - 1 entries, same indices */
};

static struct {
	mm_spinlock_t lock;
	unsigned nframes;
	phys_addr_t sites_pa, traces_pa;
	struct mm_trace_stat *sites;   /* reuses the public struct: frames, count, bytes */
	struct trace *traces;
	uint64_t ntraces, untraced;
} tr = { .lock = MM_SPINLOCK_INIT_LEVEL(MM_LOCK_TRACE) };

static void trace_alloc(const void *p, size_t size, void *caller);
static void trace_free(const void *p);
static const struct km_trace_hooks trace_hooks = { trace_alloc, trace_free };

static void trace_lock(void)
{
	mm_spin_lock(&tr.lock);
}

static void trace_unlock(void)
{
	mm_spin_unlock(&tr.lock);
}

static struct mm_layer trace_layer = {
	.name = "trace", .level = MM_LOCK_TRACE, .lock = trace_lock, .unlock = trace_unlock,
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

int mm_trace_start(unsigned nframes)
{
	if (!MM_DEBUG || nframes == 0 || nframes > MM_TRACE_MAX_FRAMES)
		return -1;
	mm_trace_stop();
	phys_addr_t s = pfa_alloc(SITES_ORDER, PFA_ZERO), t = pfa_alloc(TRACES_ORDER, PFA_ZERO);
	if (!s || !t) {
		if (s)
			pfa_free(s, SITES_ORDER);
		if (t)
			pfa_free(t, TRACES_ORDER);
		return -1;
	}
	mm_spin_lock(&tr.lock);
	tr.nframes = nframes;
	tr.sites_pa = s;
	tr.traces_pa = t;
	tr.sites = pfa_virt(s);
	tr.traces = pfa_virt(t);
	tr.ntraces = tr.untraced = 0;
	mm_spin_unlock(&tr.lock);
	mm_layer_register(&trace_layer);
	kmalloc_hook_trace(&trace_hooks, true);
	return 0;
}

void mm_trace_stop(void)
{
	kmalloc_hook_trace(&trace_hooks, false);
	mm_spin_lock(&tr.lock);
	phys_addr_t s = tr.sites_pa, t = tr.traces_pa;
	tr.sites = NULL;
	tr.traces = NULL;
	tr.sites_pa = tr.traces_pa = 0;
	mm_spin_unlock(&tr.lock);
	if (s)
		pfa_free(s, SITES_ORDER);
	if (t)
		pfa_free(t, TRACES_ORDER);
}

int mm_trace_is_tracing(void)
{
	return (km_debug_on & KM_TRACING) != 0;
}

uint64_t mm_trace_untraced(void)
{
	return tr.untraced;
}

/*
 * The return addresses above `caller` on the frame-pointer chain.  Each
 * frame record is {previous frame pointer, return address}, found
 * MM_FRAME_RECORD words from the frame pointer (strata/config.h: at it
 * on x86_64 and aarch64, below it on RISC-V).  Inlined so that the walk
 * starts in a function that calls others, whose record holds a saved
 * return address (a leaf need not save one).  Each step is checked: the
 * chain goes up the stack, by less than 64 KiB, word aligned, so a
 * frame without a record ends the walk instead of reading stray words.
 */
static inline __attribute__((always_inline)) void capture(void **frames, void *caller,
							  unsigned n)
{
	frames[0] = caller;
	for (unsigned i = 1; i < MM_TRACE_MAX_FRAMES; i++)
		frames[i] = NULL;
	if (n < 2)
		return;
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	unsigned got = 0;
	for (unsigned step = 0; step < 16 && got < n; step++) {
		const uintptr_t *rec = (const uintptr_t *)fp + MM_FRAME_RECORD;
		uintptr_t next = rec[0], ret = rec[1];
		if (got)
			frames[got++] = (void *)ret;
		else if ((void *)ret == caller)
			got = 1;
		if (next <= fp || next - fp > 65536 || (next & (sizeof(uintptr_t) - 1)) || !ret)
			break;
		fp = next;
	}
}

/* Out of line on purpose: trace_alloc must call a function, so that it is
 * not a leaf.  capture() reads trace_alloc's own frame record first, and
 * a leaf need not store one where the walk looks (RISC-V gcc saves only
 * s0 in a leaf, one word off: the walk then ends at once).  With every
 * other call inlined (the lock's spin wait too, since the demo kernel
 * inlines its platform hooks), site_of is the one left. */
static __attribute__((noinline)) uint32_t site_of(void **frames)
{
	uint64_t h = 0;
	for (unsigned i = 0; i < MM_TRACE_MAX_FRAMES; i++)
		h = mix(h ^ (uintptr_t)frames[i]);
	for (uint32_t i = (uint32_t)h & (NSITES - 1), probes = 0; probes < NSITES;
	     i = (i + 1) & (NSITES - 1), probes++) {
		struct mm_trace_stat *s = &tr.sites[i];
		if (i == 0)
			continue;   /* index 0 means "no site" in traces */
		if (!s->frames[0]) {
			for (unsigned k = 0; k < MM_TRACE_MAX_FRAMES; k++)
				s->frames[k] = frames[k];
			return i;
		}
		unsigned k = 0;
		while (k < MM_TRACE_MAX_FRAMES && s->frames[k] == frames[k])
			k++;
		if (k == MM_TRACE_MAX_FRAMES)
			return i;
	}
	return 0;
}

static inline uint32_t slot_of(uintptr_t p)
{
	return (uint32_t)mix(p) & (NTRACES - 1);
}

static void trace_alloc(const void *p, size_t size, void *caller)
{
	void *frames[MM_TRACE_MAX_FRAMES];

	capture(frames, caller, tr.nframes);
	mm_spin_lock(&tr.lock);
	if (!tr.traces || tr.ntraces >= NTRACES * 3 / 4) {
		tr.untraced++;
		mm_spin_unlock(&tr.lock);
		return;
	}
	uint32_t site = site_of(frames);
	if (!site) {
		tr.untraced++;
		mm_spin_unlock(&tr.lock);
		return;
	}
	uint32_t i = slot_of((uintptr_t)p);
	while (tr.traces[i].ptr && tr.traces[i].ptr != (uintptr_t)p)
		i = (i + 1) & (NTRACES - 1);
	if (!tr.traces[i].ptr)
		tr.ntraces++;
	else {   /* p seen again without a free: forget the stale record */
		struct mm_trace_stat *old = &tr.sites[tr.traces[i].site];
		old->count--;
		old->bytes -= tr.traces[i].size;
	}
	tr.traces[i] = (struct trace){ (uintptr_t)p, site, (uint32_t)size };
	tr.sites[site].count++;
	tr.sites[site].bytes += size;
	mm_spin_unlock(&tr.lock);
}

static void trace_free(const void *p)
{
	mm_spin_lock(&tr.lock);
	if (!tr.traces) {
		mm_spin_unlock(&tr.lock);
		return;
	}
	uint32_t i = slot_of((uintptr_t)p);
	while (tr.traces[i].ptr && tr.traces[i].ptr != (uintptr_t)p)
		i = (i + 1) & (NTRACES - 1);
	if (tr.traces[i].ptr) {
		struct mm_trace_stat *s = &tr.sites[tr.traces[i].site];
		s->count--;
		s->bytes -= tr.traces[i].size;
		tr.ntraces--;
		/* backward-shift deletion keeps every probe chain unbroken */
		uint32_t hole = i;
		for (uint32_t j = (i + 1) & (NTRACES - 1); tr.traces[j].ptr;
		     j = (j + 1) & (NTRACES - 1)) {
			uint32_t home = slot_of(tr.traces[j].ptr);
			if (((j - home) & (NTRACES - 1)) >= ((j - hole) & (NTRACES - 1))) {
				tr.traces[hole] = tr.traces[j];
				hole = j;
			}
		}
		tr.traces[hole].ptr = 0;
	}
	mm_spin_unlock(&tr.lock);
}

/* ---- snapshots ---- */

struct mm_trace_snapshot *mm_trace_snapshot(void)
{
	_Static_assert(sizeof(struct mm_trace_snapshot) <= sizeof(struct mm_trace_stat),
		       "snapshot header fits in the one entry it displaces");
	phys_addr_t pa = pfa_alloc(SNAP_ORDER, 0);
	if (!pa)
		return NULL;
	struct mm_trace_snapshot *s = pfa_virt(pa);
	s->pa = pa;
	mm_spin_lock(&tr.lock);
	for (unsigned i = 1; i < NSITES; i++) {
		if (tr.sites)
			s->site[i - 1] = tr.sites[i];
		else
			s->site[i - 1] = (struct mm_trace_stat){ .count = 0 };
	}
	mm_spin_unlock(&tr.lock);
	return s;
}

void mm_trace_snapshot_free(struct mm_trace_snapshot *s)
{
	if (s)
		pfa_free(s->pa, SNAP_ORDER);
}

/* Insert e into out[0..*n) kept sorted by key (descending), at most max. */
static void top_insert(struct mm_trace_stat *out, unsigned *n, unsigned max,
		       const struct mm_trace_stat *e, int64_t (*key)(const struct mm_trace_stat *))
{
	unsigned i = *n < max ? (*n)++ : max;
	if (i == max) {
		if (max == 0 || key(e) <= key(&out[max - 1]))
			return;
		i = max - 1;
	}
	while (i > 0 && key(&out[i - 1]) < key(e)) {
		out[i] = out[i - 1];
		i--;
	}
	out[i] = *e;
}

static int64_t by_bytes(const struct mm_trace_stat *e) { return (int64_t)e->bytes; }
static int64_t by_growth(const struct mm_trace_stat *e) { return e->bytes_diff; }

unsigned mm_trace_statistics(const struct mm_trace_snapshot *s, struct mm_trace_stat *out,
			     unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < NSITES - 1; i++)
		if (s->site[i].count)
			top_insert(out, &n, max, &s->site[i], by_bytes);
	return n;
}

unsigned mm_trace_compare(const struct mm_trace_snapshot *a, const struct mm_trace_snapshot *b,
			  struct mm_trace_stat *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < NSITES - 1; i++) {
		struct mm_trace_stat e = b->site[i];
		if (!e.frames[0])
			continue;
		e.count_diff = (int64_t)e.count - (int64_t)a->site[i].count;
		e.bytes_diff = (int64_t)e.bytes - (int64_t)a->site[i].bytes;
		if (e.count_diff || e.bytes_diff)
			top_insert(out, &n, max, &e, by_growth);
	}
	return n;
}

static void print_site(void (*out)(const char *, size_t), const struct mm_trace_stat *e,
		       int diff)
{
	char line[200];
	int len = diff ? mm_snprintf(line, sizeof line, "  growth %lld bytes, %lld blocks; now %llu bytes in %llu blocks:",
				     (long long)e->bytes_diff, (long long)e->count_diff,
				     (unsigned long long)e->bytes, (unsigned long long)e->count)
		       : mm_snprintf(line, sizeof line, "  %llu bytes in %llu blocks:",
				     (unsigned long long)e->bytes, (unsigned long long)e->count);
	for (unsigned k = 0; k < MM_TRACE_MAX_FRAMES && e->frames[k] && len < (int)sizeof line - 24; k++)
		len += mm_snprintf(line + len, sizeof line - (size_t)len, " site %p", e->frames[k]);
	line[len++] = '\n';
	out(line, (size_t)len);
}

void mm_trace_print_diff(const struct mm_trace_snapshot *a, const struct mm_trace_snapshot *b,
			 unsigned top, void (*out)(const char *s, size_t n))
{
	static struct mm_trace_stat e[64];
	if (top > 64)
		top = 64;
	unsigned n = mm_trace_compare(a, b, e, top);
	char line[80];
	int len = mm_snprintf(line, sizeof line, "mm_trace: top %u differences\n", n);
	out(line, (size_t)len);
	for (unsigned i = 0; i < n; i++)
		print_site(out, &e[i], 1);
}

void mm_trace_print_leaks(unsigned top, void (*out)(const char *s, size_t n))
{
	struct mm_trace_snapshot *s = mm_trace_snapshot();
	static struct mm_trace_stat e[64];
	if (!s)
		return;
	if (top > 64)
		top = 64;
	unsigned n = mm_trace_statistics(s, e, top);
	char line[80];
	int len = mm_snprintf(line, sizeof line, "mm_trace: live blocks by site (top %u)\n", n);
	out(line, (size_t)len);
	for (unsigned i = 0; i < n; i++)
		print_site(out, &e[i], 0);
	mm_trace_snapshot_free(s);
}

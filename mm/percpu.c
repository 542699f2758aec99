/*
 * percpu.c - per-CPU magazines in front of every kmalloc size class, and
 * the calls that manage them (strata/percpu.h).
 *
 *   kmalloc(32)                            kfree(p)
 *     cpu = mm_cpu_id()  (irqs off)          cpu = mm_cpu_id()  (irqs off)
 *     km_pcpu[cpu]->slot[class].loaded       p checked (arena hint, pool,
 *        pop ----------------------.           block offset, marks)
 *                                  |         km_pcpu[cpu]->slot[cls].loaded
 *     empty? mag_alloc_slow()      |            push
 *       (magazine.c: prev, depot,  |         full? mag_free_slow()
 *        then class_fill below)    |
 *                                  v
 *   class_fill / class_flush: the pools of the class, under km.lock
 *
 * The per-CPU area (one slot per size class, 1 KiB) and the magazines are
 * blocks of the pools themselves, taken on a CPU's first slow path.
 * Blocks in magazines carry km_mag_mark() so a second kfree is still a
 * reported double free; to the pools below they are simply handed out.
 *
 * Magazine size per class: about 8 KiB of objects (30 for classes up to
 * 272 bytes, 4 for 2048), and at most 8 full magazines in a class depot;
 * past that, frees go back to the pools.  So the layer holds at most
 * 2 magazines x CPUs + 8 per class: a few hundred KiB, all of it given
 * back by mm_reclaim() / kmalloc_trim() on the calling CPU.
 */
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "kmalloc_internal.h"
#include "pfa_internal.h"

#define DEPOT_MAX_FULL 8
#define MAG_BYTES      8192

struct km_pcpu *km_pcpu[MM_MAX_CPUS];
bool km_percpu_on = true;
static struct mm_depot depot[KMALLOC_MAX_CLASSES];

/* ---- blocks for strata's own use: locked pool path, no magazines ---- */

static void *internal_alloc(size_t size)
{
	unsigned c = km_size_class(size);

	mm_spin_lock(&km.lock);
	void *b = pool_alloc_fast(c);
	if (b) {
		km.internal_bytes += km.cls[c].size;
		km.internal_blocks++;
	}
	mm_spin_unlock(&km.lock);
	return b;
}

static void internal_free(void *b)
{
	struct km_pool *p = km_pool_of(b);

	mm_spin_lock(&km.lock);
	km.internal_bytes -= km.cls[p->cls].size;
	km.internal_blocks--;
	pool_free_fast(p, b);
	mm_spin_unlock(&km.lock);
}

struct mm_mag *mag_new(void)
{
	return internal_alloc(sizeof(struct mm_mag));
}

void mag_delete(struct mm_mag *m)
{
	internal_free(m);
}

/* ---- the layer below a class depot: its pools ---- */

static unsigned class_fill(struct mm_depot *d, void **obj, unsigned n)
{
	unsigned c = (unsigned)(uintptr_t)d->owner, i;

	mm_spin_lock(&km.lock);
	for (i = 0; i < n; i++) {
		struct km_block *b = pool_alloc_fast(c);
		if (!b)
			break;
		b->mark = km_mag_mark(b);
		obj[i] = b;
	}
	mm_spin_unlock(&km.lock);
	return i;
}

static void class_flush(struct mm_depot *d, void **obj, unsigned n)
{
	(void)d;
	mm_spin_lock(&km.lock);
	for (unsigned i = 0; i < n; i++)
		pool_free_fast(km_pool_of(obj[i]), obj[i]);
	mm_spin_unlock(&km.lock);
}

static const struct mm_depot_ops class_ops = { class_fill, class_flush };

void pcpu_init(void)
{
	for (unsigned i = 0; i < MM_MAX_CPUS; i++)
		km_pcpu[i] = NULL;
	for (unsigned c = 0; c < km.nclasses; c++) {
		unsigned cap = MAG_BYTES / km.cls[c].size;
		depot_init(&depot[c], cap < 4 ? 4 : cap, DEPOT_MAX_FULL, &class_ops,
			   (void *)(uintptr_t)c);
	}
}

/* The calling CPU's area, created on first use; NULL if this context has
 * no CPU id or there is no memory for the area.  Interrupts are off. */
static struct km_pcpu *my_area(void)
{
	if (!km_percpu_on)
		return NULL;
	unsigned cpu = mm_cpu_id();
	if (cpu >= MM_MAX_CPUS) {
		cpu = mm_platform_cpu_attach();
		if (cpu >= MM_MAX_CPUS)
			return NULL;
	}
	struct km_pcpu *pc = km_pcpu[cpu];
	if (!pc) {
		pc = internal_alloc(sizeof *pc);
		if (!pc)
			return NULL;
		for (unsigned c = 0; c < KMALLOC_MAX_CLASSES; c++)
			slot_init(&pc->slot[c]);
		km_pcpu[cpu] = pc;
	}
	return pc;
}

void *pcpu_alloc(unsigned c)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = my_area();
	void *b = NULL;

	if (pc) {
		b = mag_alloc_slow(&pc->slot[c], &depot[c]);
		if (b)
			((struct km_block *)b)->mark = 0;
	}
	mm_irq_restore(irq);
	return b;
}

bool pcpu_free(unsigned c, void *b)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = my_area();
	bool done = false;

	if (pc) {
		((struct km_block *)b)->mark = km_mag_mark(b);
		done = mag_push(pc->slot[c].loaded, b) ||
		       mag_free_slow(&pc->slot[c], &depot[c], b);
	}
	mm_irq_restore(irq);
	return done;
}

/* Blocks of class c in magazines: the depot's, and every CPU's (another
 * CPU's counts are read without its cooperation: a snapshot). */
uint64_t pcpu_cached_blocks(unsigned c)
{
	uint64_t n = depot_objects(&depot[c]);

	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		const struct km_pcpu *pc = km_pcpu[cpu];
		if (pc)
			n += __atomic_load_n(&pc->slot[c].loaded->count, __ATOMIC_RELAXED) +
			     __atomic_load_n(&pc->slot[c].prev->count, __ATOMIC_RELAXED);
	}
	return n;
}

/* ---- draining ---- */

static void drain_area(struct km_pcpu *pc)
{
	for (unsigned c = 0; c < km.nclasses; c++)
		slot_drain(&pc->slot[c], &depot[c]);
}

/* The area goes too (1 KiB; made again on the next slow path), so that a
 * drained system holds no block of its own and every page can go back. */
void mm_cpu_drain(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();

	if (cpu < MM_MAX_CPUS && km_pcpu[cpu]) {
		struct km_pcpu *pc = km_pcpu[cpu];
		km_pcpu[cpu] = NULL;
		drain_area(pc);
		internal_free(pc);
	}
	mm_irq_restore(irq);
}

void mm_cpu_detach(unsigned cpu)
{
	if (cpu >= MM_MAX_CPUS)
		return;
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = km_pcpu[cpu];
	km_pcpu[cpu] = NULL;
	if (pc) {
		drain_area(pc);
		internal_free(pc);
	}
	kmem_cache_cpu_detach(cpu);
	mm_irq_restore(irq);
}

/* Flush every class depot (objects back to their pools). */
static void flush_depots(void)
{
	for (unsigned c = 0; c < km.nclasses; c++)
		depot_flush(&depot[c]);
}

uint64_t mm_reclaim(void)
{
	if (km_debug_on)
		dbg_flush_quarantine();
	mm_cpu_drain();
	uint64_t pages = kmem_cache_reclaim();
	flush_depots();
	return pages + kmalloc_trim_pools();
}

void mm_percpu_enable(int on)
{
	if (!on) {
		mm_cpu_drain();
		flush_depots();
	}
	km_percpu_on = on != 0;
}

/* Lock order: depots, km.lock, the PFA's lock (magazine.h). */
void mm_lock_all(void)
{
	kmem_cache_lock_all();
	for (unsigned c = 0; c < KMALLOC_MAX_CLASSES; c++)
		mm_spin_lock(&depot[c].lock);
	mm_spin_lock(&km.lock);
	mm_spin_lock(&pfa.lock);
}

void mm_unlock_all(void)
{
	mm_spin_unlock(&pfa.lock);
	mm_spin_unlock(&km.lock);
	for (unsigned c = KMALLOC_MAX_CLASSES; c-- > 0;)
		mm_spin_unlock(&depot[c].lock);
	kmem_cache_unlock_all();
}

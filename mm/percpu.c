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
 *   class_fill / class_flush: the pools of the class, under pools.lock
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
 * back by mm_reclaim() / kmalloc_trim() on the calling CPU.  A free that
 * finds the depot full trims min(cap, MAG_TRIM = 8) blocks below, a fill
 * takes min((cap + 1) / 2, MAG_FILL = 4); a medium class (2 KiB .. 32
 * KiB) moves one block either way.
 *
 * This layer sits between the pools (below, pool.h) and the kmalloc front
 * end (above).  It takes part in the whole-allocator operations by
 * registering itself (mm/layer.h): trim drains the calling CPU and
 * flushes the depots, lock takes the depot locks, cpu_detach drains a
 * CPU that will not run again.  It calls nothing above itself.
 */
#include <strata/fault.h>
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/platform.h>

#include "layer.h"
#include "lock_order.h"
#include "percpu_internal.h"
#include "pool.h"
#include "report.h"

#define DEPOT_MAX_FULL 8
#define MAG_BYTES      8192

const struct km_pcpu pcpu_none = {
	.slot = { [0 ... KMALLOC_MAX_CLASSES - 1] = { &mag_none, &mag_none } },
};
struct km_pcpu *km_pcpu[MM_CPU_SLOTS] = { [0 ... MM_CPU_SLOTS - 1] = PCPU_NONE };
static bool percpu_on = true;
static struct mm_depot depot[KMALLOC_MAX_CLASSES];
static struct { uint64_t bytes, blocks; } internal;   /* under pools.lock */

/* ---- blocks for strata's own use: locked pool path, no magazines ---- */

static inline __attribute__((always_inline)) void *internal_alloc(size_t size)
{
	unsigned c = km_size_class(size);

	if (MM_FAULT(MM_FAULT_MAGAZINE))
		return NULL;
	mm_spin_lock(&pools.lock);
	void *b = pool_alloc_fast(c);
	if (b) {
		internal.bytes += pools.cls[c].size;
		internal.blocks++;
	}
	mm_spin_unlock(&pools.lock);
	return b;
}

static void internal_free(void *b)
{
	struct km_pool *p = km_pool_lookup(b, pfa_virt_to_page(b));   /* any pool kind */

	mm_spin_lock(&pools.lock);
	internal.bytes -= pools.cls[p->cls].size;
	internal.blocks--;
	pool_free_fast(p, b);
	mm_spin_unlock(&pools.lock);
}

void pcpu_internal_usage(uint64_t *bytes, uint64_t *blocks)
{
	*bytes = internal.bytes;
	*blocks = internal.blocks;
}

struct mm_mag *pcpu_mag_new(void *owner)
{
	(void)owner;
	return internal_alloc(sizeof(struct mm_mag));
}

void pcpu_mag_delete(void *owner, struct mm_mag *m)
{
	(void)owner;
	internal_free(m);
}

/* ---- the layer below a class depot: its pools ---- */

static unsigned class_fill(struct mm_depot *d, void **obj, unsigned n)
{
	unsigned c = (unsigned)(uintptr_t)d->owner;

	MM_PATH(MM_PATH_FILL);
	mm_spin_lock(&pools.lock);
	unsigned got = pool_alloc_bulk(c, obj, n);   /* marked as in a magazine */
	mm_spin_unlock(&pools.lock);
	return got;
}

static void class_flush(struct mm_depot *d, void **obj, unsigned n)
{
	unsigned c = (unsigned)(uintptr_t)d->owner;

	MM_PATH(MM_PATH_TRIM);
	mm_spin_lock(&pools.lock);
	if (n == 1)     /* a medium class's trim: no call below, no frame */
		pool_free_one(c, obj[0]);
	else
		pool_free_bulk(c, obj, n);
	mm_spin_unlock(&pools.lock);
}

static const struct mm_depot_ops class_ops = {
	class_fill, class_flush, pcpu_mag_new, pcpu_mag_delete,
};

static uint64_t pcpu_trim(void);
static void pcpu_lock_all(void);
static void pcpu_unlock_all(void);
static void pcpu_cpu_detach(unsigned cpu);

static struct mm_layer pcpu_layer = {
	.name = "percpu", .level = MM_LOCK_DEPOT, .trim = pcpu_trim,
	.lock = pcpu_lock_all, .unlock = pcpu_unlock_all, .cpu_detach = pcpu_cpu_detach,
};

/* Blocks per magazine of class c: MAG_BYTES of them, at least 4 of a
 * small class (<= 2048 bytes) and 2 of a medium one, so that a magazine
 * of 32 KiB blocks holds 64 KiB, not 30 blocks' worth. */
static unsigned mag_capacity(unsigned c)
{
	if (c >= pools.nclasses)
		return 4;
	unsigned size = pools.cls[c].size, cap = MAG_BYTES / size;
	unsigned least = size <= KM_POOL_CLASS_MAX ? 4 : 2;
	return cap < least ? least : cap;
}

void pcpu_init(void)
{
	internal.bytes = internal.blocks = 0;
	for (unsigned i = 0; i < MM_CPU_SLOTS; i++)
		km_pcpu[i] = PCPU_NONE;
	for (unsigned c = 0; c < KMALLOC_MAX_CLASSES; c++) {
		depot_init(&depot[c], mag_capacity(c), DEPOT_MAX_FULL, &class_ops,
			   (void *)(uintptr_t)c, MM_LOCK_DEPOT);
		/* a medium class's full depot sends one block a free below
		 * (pool_free_one, inline in class_flush), not cap (2..3), and an
		 * empty one takes one block a fill (not 2 for a cap of 3): its
		 * blocks lie in pools of 14..25, mostly one pool run each, and
		 * one block keeps that free or kmalloc near 300 instructions
		 * (docs/worst-case.md) */
		if (c < pools.nclasses && pools.cls[c].size > KM_POOL_CLASS_MAX)
			depot[c].trim = depot[c].fill = 1;
	}
	mm_layer_register(&pcpu_layer);
}
/* The calling CPU's area, created on first use; NULL if this context has
 * no CPU id or there is no memory for the area.  Interrupts are off. */
static __attribute__((noinline)) struct km_pcpu *my_area_slow(void)
{
	if (!percpu_on)
		return NULL;
	unsigned cpu = mm_cpu_id();
	if (cpu >= MM_MAX_CPUS) {
		cpu = mm_platform_cpu_attach();
		if (cpu >= MM_MAX_CPUS)
			return NULL;
	}
	struct km_pcpu *pc = km_pcpu[cpu];
	if (pc == PCPU_NONE) {
		pc = internal_alloc(sizeof *pc);
		if (!pc)
			return NULL;
#pragma GCC unroll 8
		for (unsigned c = 0; c < KMALLOC_MAX_CLASSES; c++)
			slot_init(&pc->slot[c]);
		pc->sample_left = 0;       /* the first kmalloc draws a countdown */
		pc->sample_rng = 0;
		km_pcpu[cpu] = pc;
	}
	return pc;
}

static inline struct km_pcpu *my_area(void)
{
	unsigned cpu = mm_cpu_id();
	struct km_pcpu *pc = pcpu_area(cpu);

	return mm_likely(pc != PCPU_NONE && percpu_on) ? pc : my_area_slow();
}

void pcpu_entry_corrupt(unsigned c, const struct km_block *b)
{
	mm_report_magazine(pools.cls[c].size, b);
}

/* The magazine slow paths of class c on area pc (interrupts off): a block
 * (its mark cleared; corrupt entries reported and dropped) or NULL, and
 * a free that is done (true) or must go below (false). */
static inline void *slot_alloc(struct km_pcpu *pc, unsigned c)
{
	void *b = mag_alloc_slow(&pc->slot[c], &depot[c]);

	while (b && mm_unlikely(!pcpu_entry_ok(b))) {
		pcpu_entry_corrupt(c, b);
		b = mag_alloc_slow(&pc->slot[c], &depot[c]);
	}
	if (b)
		((struct km_block *)b)->mark = 0;
	return b;
}

static inline bool slot_free(struct km_pcpu *pc, unsigned c, void *b)
{
	((struct km_block *)b)->mark = km_mag_mark(b);
	return mag_push(pc->slot[c].loaded, b) || mag_free_slow(&pc->slot[c], &depot[c], b);
}

void *pcpu_alloc(unsigned c)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = my_area();
	void *b = pc ? slot_alloc(pc, c) : NULL;

	mm_irq_restore(irq);
	return b;
}

bool pcpu_free(unsigned c, void *b)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = my_area();
	bool done = pc && slot_free(pc, c, b);

	mm_irq_restore(irq);
	return done;
}

/* Straight from the front end's fast paths, which already hold the
 * calling CPU's area with interrupts off: no second irq save, no area
 * lookup (percpu_on is the one test my_area() would add). */
void *pcpu_alloc_empty(struct km_pcpu *pc, unsigned c)
{
	return mm_likely(percpu_on && pc != PCPU_NONE) ? slot_alloc(pc, c) : NULL;
}

bool pcpu_free_full(struct km_pcpu *pc, unsigned c, void *b)
{
	if (mm_unlikely(!percpu_on || pc == PCPU_NONE))
		return false;
	((struct km_block *)b)->mark = km_mag_mark(b);
	return mag_free_slow(&pc->slot[c], &depot[c], b);
}

bool pcpu_reserve(unsigned c, unsigned *cached)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = my_area();
	bool ok = !percpu_on || (pc && slot_stock(&pc->slot[c], &depot[c]));

	mm_irq_restore(irq);
	*cached = percpu_on ? (2 + depot[c].max_full) * depot[c].cap : 0;
	return ok;
}

/* Blocks of class c in magazines: the depot's, and every CPU's (another
 * CPU's counts are read without its cooperation: a snapshot). */
uint64_t pcpu_cached_blocks(unsigned c)
{
	uint64_t n = depot_objects(&depot[c]);

	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		const struct km_pcpu *pc = km_pcpu[cpu];
		if (pc != PCPU_NONE)
			n += __atomic_load_n(&pc->slot[c].loaded->count, __ATOMIC_RELAXED) +
			     __atomic_load_n(&pc->slot[c].prev->count, __ATOMIC_RELAXED);
	}
	return n;
}

/* ---- draining ---- */

static void drain_area(struct km_pcpu *pc)
{
	for (unsigned c = 0; c < pools.nclasses; c++)
		slot_drain(&pc->slot[c], &depot[c]);
}

/* The area goes too (1 KiB; made again on the next slow path), so that a
 * drained system holds no block of its own and every page can go back. */
void mm_cpu_drain(void)
{
	unsigned long irq = mm_irq_save();
	unsigned cpu = mm_cpu_id();

	if (cpu < MM_MAX_CPUS && km_pcpu[cpu] != PCPU_NONE) {
		struct km_pcpu *pc = km_pcpu[cpu];
		km_pcpu[cpu] = PCPU_NONE;
		drain_area(pc);
		internal_free(pc);
	}
	mm_irq_restore(irq);
}

/* A CPU that will never run again with this id (mm_cpu_detach, mm.c). */
static void pcpu_cpu_detach(unsigned cpu)
{
	unsigned long irq = mm_irq_save();
	struct km_pcpu *pc = km_pcpu[cpu];
	km_pcpu[cpu] = PCPU_NONE;
	if (pc != PCPU_NONE) {
		drain_area(pc);
		internal_free(pc);
	}
	mm_irq_restore(irq);
}

/* Flush every class depot (objects back to their pools). */
static void flush_depots(void)
{
	for (unsigned c = 0; c < pools.nclasses; c++)
		depot_flush(&depot[c]);
}

/* mm_reclaim(): this CPU's magazines and every depot back to the pools
 * (the layers above have already given back what they held). */
static uint64_t pcpu_trim(void)
{
	mm_cpu_drain();
	flush_depots();
	return 0;
}

void mm_percpu_enable(int on)
{
	if (!on) {
		mm_cpu_drain();
		flush_depots();
	}
	percpu_on = on != 0;
}

static void pcpu_lock_all(void)
{
	for (unsigned c = 0; c < KMALLOC_MAX_CLASSES; c++)
		mm_spin_lock(&depot[c].lock);
}

static void pcpu_unlock_all(void)
{
	for (unsigned c = KMALLOC_MAX_CLASSES; c-- > 0;)
		mm_spin_unlock(&depot[c].lock);
}

/*
 * magazine.c - the slow paths of the per-CPU magazine layer: swapping the
 * two magazines of a CPU, trading with the depot, and filling from or
 * flushing to the layer below.  The picture is in magazine.h; the fast
 * paths (mag_pop, mag_push) are inline there and in kmalloc.c / slab.c.
 */
#include "magazine.h"

struct mm_mag mag_none;   /* count 0, cap 0: always empty and always full */

void depot_init(struct mm_depot *d, unsigned cap, unsigned max_full,
		const struct mm_depot_ops *ops, void *owner, unsigned lock_level)
{
	*d = (struct mm_depot){ .lock = MM_SPINLOCK_INIT_LEVEL(lock_level) };
	d->cap = cap > MAG_MAX ? MAG_MAX : cap;
	d->max_full = max_full;
	d->trim = d->cap < MAG_TRIM ? d->cap : MAG_TRIM;
	d->fill = (d->cap + 1) / 2 < MAG_FILL ? (d->cap + 1) / 2 : MAG_FILL;
	d->ops = ops;
	d->owner = owner;
}

static void swap(struct mm_cpu_slot *s)
{
	MM_PATH(MM_PATH_SWAP);
	struct mm_mag *t = s->loaded;
	s->loaded = s->prev;
	s->prev = t;
}

/* A new magazine, empty; NULL if there is no memory for one. */
static struct mm_mag *mag_make(struct mm_depot *d)
{
	MM_PATH(MM_PATH_MAG_NEW);
	struct mm_mag *m = d->ops->mag_new(d->owner);
	if (m) {
		m->next = 0;
		m->count = 0;
		m->cap = d->cap;
	}
	return m;
}

/* An empty magazine from the depot, or a new one; NULL if none. */
static struct mm_mag *depot_get_empty(struct mm_depot *d)
{
	mm_spin_lock(&d->lock);
	struct mm_mag *m = d->empty;
	if (m) {
		d->empty = m->next;
		d->nempty--;
	}
	mm_spin_unlock(&d->lock);
	if (!m)
		return mag_make(d);
	m->next = 0;
	m->count = 0;
	m->cap = d->cap;
	return m;
}

/* Keep an empty magazine for later (at most as many as full ones may be
 * kept, plus a few), or free it. */
static void depot_put_empty(struct mm_depot *d, struct mm_mag *m)
{
	mm_spin_lock(&d->lock);
	if (d->nempty < d->max_full + 2) {
		m->next = d->empty;
		d->empty = m;
		d->nempty++;
		m = 0;
	}
	mm_spin_unlock(&d->lock);
	if (m) {
		MM_PATH(MM_PATH_MAG_DEL);
		d->ops->mag_delete(d->owner, m);
	}
}

/* One lock hold: a full magazine off the depot's list, if it has one,
 * becomes s's loaded (loaded, empty, becomes prev), and s's empty prev
 * is kept in exchange; else a fill is counted (the caller fills from
 * below).  The slot changes under the lock, so that a fork never finds a
 * magazine both in a stopped thread's slot and on the depot's list.
 * *drop: the old prev when the depot keeps enough empty ones already
 * (out of the slot now: the caller deletes it).  true: s was traded. */
static bool depot_trade_empty(struct mm_depot *d, struct mm_cpu_slot *s, struct mm_mag **drop)
{
	*drop = 0;
	if (!mm_load(d->full)) {   /* none to trade for: no lock (a stale */
		__atomic_fetch_add(&d->fills, 1, __ATOMIC_RELAXED);   /* answer */
		return false;              /* only means one fill more) */
	}
	mm_spin_lock(&d->lock);
	struct mm_mag *m = d->full, *empty = s->prev;
	if (m) {
		MM_PATH(MM_PATH_TRADE);
		mm_store(d->full, m->next);
		mm_store(d->nfull, d->nfull - 1);
		d->exchanges++;
		if (empty != &mag_none && d->nempty < d->max_full + 2) {
			empty->next = d->empty;
			d->empty = empty;
			d->nempty++;
		} else if (empty != &mag_none) {
			*drop = empty;
		}
		s->prev = s->loaded;
		s->loaded = m;
	} else {
		__atomic_fetch_add(&d->fills, 1, __ATOMIC_RELAXED);
	}
	mm_spin_unlock(&d->lock);
	return m != 0;
}

/* One lock hold: s's full prev onto the depot's list if there is room
 * (true; prev is mag_none then, changed under the lock as above), and an
 * empty magazine off its list into *empty (NULL if it has none); a depot
 * already at max_full takes nothing, gives nothing and counts a flush
 * (false: the caller trims), seen without the lock when it can be (a
 * stale answer only means one trim instead of a trade, or the lock taken
 * to find the depot full after all). */
static bool depot_trade_full(struct mm_depot *d, struct mm_cpu_slot *s, struct mm_mag **empty)
{
	bool kept = false;

	*empty = 0;
	if (mm_load(d->nfull) >= d->max_full) {
		__atomic_fetch_add(&d->flushes, 1, __ATOMIC_RELAXED);
		return false;
	}
	mm_spin_lock(&d->lock);
	if (d->nfull < d->max_full) {
		struct mm_mag *full = s->prev;
		full->next = d->full;
		mm_store(d->full, full);
		s->prev = &mag_none;
		mm_store(d->nfull, d->nfull + 1);
		d->exchanges++;
		kept = true;
		MM_PATH(MM_PATH_TRADE);
		if ((*empty = d->empty) != 0) {
			d->empty = (*empty)->next;
			d->nempty--;
		}
	} else {
		__atomic_fetch_add(&d->flushes, 1, __ATOMIC_RELAXED);
	}
	mm_spin_unlock(&d->lock);
	return kept;
}

void *mag_alloc_slow(struct mm_cpu_slot *s, struct mm_depot *d)
{
	void *obj = mag_pop(s->loaded);   /* callers that skipped the fast path */

	if (obj)
		return obj;
	if (s->prev->count) {
		swap(s);
		return mag_pop(s->loaded);
	}
	/* loaded and prev are both empty: trade one for a full one */
	struct mm_mag *drop;
	if (depot_trade_empty(d, s, &drop)) {
		if (drop) {
			MM_PATH(MM_PATH_MAG_DEL);
			d->ops->mag_delete(d->owner, drop);
		}
		return mag_pop(s->loaded);
	}
	if (s->loaded == &mag_none) {
		struct mm_mag *m = depot_get_empty(d);
		if (!m)     /* no memory for a magazine: one object, uncached */
			return d->ops->fill(d, &obj, 1) ? obj : 0;
		s->loaded = m;
	}
	/* fill part (d->fill), so the frees that follow find room */
	unsigned want = d->fill;
	s->loaded->count = d->ops->fill(d, s->loaded->obj, want);
	return mag_pop(s->loaded);
}

/* The depot is full: the top `trim` objects of the full magazine prev go
 * below (a bounded batch, MAG_TRIM, not a whole magazine), and prev,
 * which now has room, becomes loaded. */
static bool trim_prev(struct mm_cpu_slot *s, struct mm_depot *d, void *obj)
{
	struct mm_mag *m = s->prev;
	unsigned n = d->trim < m->count ? d->trim : m->count;

	m->count -= n;
	d->ops->flush(d, m->obj + m->count, n);
	swap(s);
	return mag_push(s->loaded, obj);
}

bool mag_free_slow(struct mm_cpu_slot *s, struct mm_depot *d, void *obj)
{
	if (s->prev->count < s->prev->cap) {
		swap(s);
		return mag_push(s->loaded, obj);
	}
	struct mm_mag *m = 0;
	if (s->prev != &mag_none) {       /* prev is full */
		if (!depot_trade_full(d, s, &m))
			return trim_prev(s, d, obj);
		if (!m)   /* the trade found no empty one: no second look */
			m = mag_make(d);
	} else {
		m = depot_get_empty(d);
	}
	if (!m) {      /* no memory for a magazine: this one object below */
		d->ops->flush(d, &obj, 1);
		return true;
	}
	s->prev = s->loaded;
	s->loaded = m;
	m->obj[0] = obj;   /* m is empty: no test for room */
	m->count = 1;
	return true;
}

bool slot_stock(struct mm_cpu_slot *s, struct mm_depot *d)
{
	if (s->loaded == &mag_none && !(s->loaded = depot_get_empty(d)))
		return (s->loaded = &mag_none), false;
	if (s->prev == &mag_none && !(s->prev = depot_get_empty(d)))
		return (s->prev = &mag_none), false;
	for (;;) {
		mm_spin_lock(&d->lock);
		bool stocked = d->nempty >= d->max_full + 2;
		mm_spin_unlock(&d->lock);
		if (stocked)
			return true;
		struct mm_mag *m = mag_make(d);
		if (!m)
			return false;
		depot_put_empty(d, m);
	}
}

static void mag_drain(struct mm_depot *d, struct mm_mag *m)
{
	if (m == &mag_none)
		return;
	if (m->count)
		d->ops->flush(d, m->obj, m->count);
	m->count = 0;
	d->ops->mag_delete(d->owner, m);
}

/* m is on one of the depot's lists (lock held). */
static bool depot_holds(struct mm_depot *d, const struct mm_mag *m)
{
	for (const struct mm_mag *x = d->full; x; x = x->next)
		if (x == m)
			return true;
	for (const struct mm_mag *x = d->empty; x; x = x->next)
		if (x == m)
			return true;
	return false;
}

/* The slot may belong to a thread stopped anywhere in the slow paths
 * above (a fork's child drains the slots of the threads that did not
 * come along; the fork holds every lock, so the thread is between two
 * locked steps).  Halfway through swap(), loaded and prev can be one
 * magazine: it is drained once.  The trades change the slot under the
 * depot's lock and a dropped magazine leaves the slot before it is
 * freed, so a slot never names a freed magazine or one on a depot list
 * (checked here too: such a one is the depot's to drain).  A magazine a
 * stopped thread held only in a local variable is lost: a leak, never
 * a double free. */
void slot_drain(struct mm_cpu_slot *s, struct mm_depot *d)
{
	struct mm_mag *a = s->loaded, *b = s->prev;

	slot_init(s);
	if (b == a)
		b = &mag_none;
	mm_spin_lock(&d->lock);
	if (a != &mag_none && depot_holds(d, a))
		a = &mag_none;
	if (b != &mag_none && depot_holds(d, b))
		b = &mag_none;
	mm_spin_unlock(&d->lock);
	mag_drain(d, a);
	mag_drain(d, b);
}

void depot_flush(struct mm_depot *d)
{
	mm_spin_lock(&d->lock);
	struct mm_mag *full = d->full, *empty = d->empty;
	mm_store(d->full, (struct mm_mag *)0);
	d->empty = 0;
	mm_store(d->nfull, 0u);
	d->nempty = 0;
	mm_spin_unlock(&d->lock);
	while (full) {
		struct mm_mag *next = full->next;
		mag_drain(d, full);
		full = next;
	}
	while (empty) {
		struct mm_mag *next = empty->next;
		d->ops->mag_delete(d->owner, empty);
		empty = next;
	}
}

uint64_t depot_objects(struct mm_depot *d)
{
	uint64_t n = 0;

	mm_spin_lock(&d->lock);
	for (struct mm_mag *m = d->full; m; m = m->next)
		n += m->count;
	mm_spin_unlock(&d->lock);
	return n;
}

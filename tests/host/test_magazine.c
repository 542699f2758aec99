/*
 * test_magazine.c - the generic magazine layer (mm/magazine.[ch]) alone:
 * this program links mm/magazine.c and the base layer only
 * (arch/host/arch.mk), no pools, no caches.  Its client is written here: a
 * layer below that hands out the objects of one array (fill) and takes
 * them back (flush), and magazine memory from calloc, each counted, so
 * every object and every magazine can be accounted for after each step.
 *
 *   alloc on an empty slot  -> fill half a magazine in one batch
 *   free on a full loaded   -> swap with prev; both full -> prev to the
 *                              depot, an empty magazine becomes loaded
 *   depot past max_full     -> the extra magazine's objects go below
 *   slot_drain + depot_flush -> every object below, every magazine freed
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "../../mm/lock_order.h"
#include "../../mm/magazine.h"

#define NOBJ 4096
static char objs[NOBJ][16];
static void *below[NOBJ];          /* free objects of the layer below (a stack) */
static unsigned nbelow, fills, flushes, mags_live, fail_mag_new;
static unsigned most_filled, most_flushed;   /* largest batch asked of the layer below */

static void fork_point(const char *where);

static unsigned t_fill(struct mm_depot *d, void **obj, unsigned n)
{
	(void)d;
	unsigned i;
	fork_point("fill");
	if (n > most_filled)
		most_filled = n;
	for (i = 0; i < n && nbelow; i++)
		obj[i] = below[--nbelow];
	fills++;
	return i;
}

static void t_flush(struct mm_depot *d, void **obj, unsigned n)
{
	(void)d;
	if (n > most_flushed)
		most_flushed = n;
	fork_point("flush");
	for (unsigned i = 0; i < n; i++)
		below[nbelow++] = obj[i];
	flushes++;
}

/* The fork points a test watches (fork_watch): where a thread of a real
 * client may be when another forks, i.e. just before or after the layer
 * below (which takes its own lock) and at the release of the depot's
 * lock.  The fork's child sees the state of that moment. */
static bool fork_watch;
static unsigned fork_points;

#define LIVE_MAX 256
static struct mm_mag *live[LIVE_MAX];   /* the magazines t_mag_new handed out */

static bool is_live(const struct mm_mag *m)
{
	for (unsigned i = 0; i < LIVE_MAX; i++)
		if (live[i] == m)
			return true;
	return false;
}

static void set_live(struct mm_mag *from, struct mm_mag *to)
{
	for (unsigned i = 0; i < LIVE_MAX; i++)
		if (live[i] == from) {
			live[i] = to;
			return;
		}
	CHECK(0, "magazine %p not found among the live ones", (void *)from);
}

static struct mm_mag *t_mag_new(void *owner)
{
	(void)owner;
	if (fail_mag_new)
		return NULL;
	fork_point("mag_new");
	mags_live++;
	struct mm_mag *m = calloc(1, sizeof(struct mm_mag));
	set_live(NULL, m);
	fork_point("after mag_new");
	return m;
}

static void t_mag_delete(void *owner, struct mm_mag *m)
{
	(void)owner;
	fork_point("mag_delete");
	mags_live--;
	set_live(m, NULL);
	free(m);
	fork_point("after mag_delete");
}

static const struct mm_depot_ops ops = { t_fill, t_flush, t_mag_new, t_mag_delete };
static struct mm_depot depot;
static struct mm_cpu_slot slot;

static unsigned in_slot(void)
{
	return slot.loaded->count + slot.prev->count;
}

/* Everything cached back below, every magazine freed (the previous
 * test's state, before each setup; objects a test still holds stay). */
static void teardown(void)
{
	if (depot.ops == NULL)
		return;
	slot_drain(&slot, &depot);
	depot_flush(&depot);
	CHECK(mags_live == 0 && in_slot() == 0 && depot_objects(&depot) == 0,
	      "after drain: %u magazines, %u objects cached", mags_live, in_slot());
}

static void setup(unsigned cap, unsigned max_full)
{
	teardown();
	nbelow = fills = flushes = mags_live = fail_mag_new = 0;
	most_filled = most_flushed = 0;
	for (unsigned i = 0; i < NOBJ; i++)
		below[nbelow++] = objs[NOBJ - 1 - i];
	depot_init(&depot, cap, max_full, &ops, NULL, MM_LOCK_DEPOT);
	slot_init(&slot);
}

static void *alloc(void)
{
	void *o = mag_pop(slot.loaded);
	return o ? o : mag_alloc_slow(&slot, &depot);
}

static void release(void *o)
{
	if (!mag_push(slot.loaded, o))
		CHECK(mag_free_slow(&slot, &depot, o), "mag_free_slow refused %p", o);
}

TEST(empty_slot_starts_at_mag_none)
{
	setup(10, 2);
	CHECK(slot.loaded == &mag_none && slot.prev == &mag_none, "slot not at mag_none");
	CHECK(mag_pop(slot.loaded) == NULL, "mag_none handed out an object");
	CHECK(!mag_push(slot.loaded, objs[0]), "mag_none took an object");
	CHECK(mags_live == 0, "magazines made before any use");
}

/* A fill takes half a magazine, at most MAG_FILL (magazine.h). */
TEST(first_alloc_fills_half_a_magazine)
{
	const unsigned caps[] = { 6, 10 };
	for (unsigned k = 0; k < 2; k++) {
		unsigned cap = caps[k], f = (cap + 1) / 2 < MAG_FILL ? (cap + 1) / 2 : MAG_FILL;
		setup(cap, 2);
		void *o = alloc();
		CHECK(o == objs[f - 1], "cap %u: got %p, want the last of the batch of %u"
		      " (a magazine is a stack)", cap, o, f);
		CHECK(fills == 1 && nbelow == NOBJ - f, "cap %u: fills %u, below %u: want one"
		      " batch of %u", cap, fills, nbelow, f);
		CHECK(in_slot() == f - 1 && mags_live == 1, "cap %u: %u objects in the slot,"
		      " %u magazines", cap, in_slot(), mags_live);
		for (unsigned i = 0; i < f - 1; i++)
			alloc();
		CHECK(fills == 1, "cap %u: the cached objects took another fill", cap);
		alloc();
		CHECK(fills == 2, "cap %u: an empty slot did not fill again", cap);
	}
}

TEST(frees_swap_then_trade_with_the_depot)
{
	setup(4, 1);
	void *o[12];
	for (int i = 0; i < 12; i++)
		o[i] = alloc();
	unsigned below_before = nbelow;
	for (int i = 0; i < 8; i++)    /* loaded and prev full: 8 objects */
		release(o[i]);
	CHECK(in_slot() == 8 && depot.nfull == 0, "slot %u, depot %u full", in_slot(),
	      depot.nfull);
	release(o[8]);                 /* prev to the depot, a new empty loaded */
	CHECK(depot.nfull == 1 && slot.loaded->count == 1 && in_slot() == 5,
	      "after the 9th free: depot %u full, slot %u", depot.nfull, in_slot());
	for (int i = 9; i < 12; i++)
		release(o[i]);
	CHECK(nbelow == below_before, "objects went below before the depot was full");
	void *more[5];
	for (int i = 0; i < 5; i++)
		more[i] = alloc();
	for (int i = 0; i < 5; i++)
		release(more[i]);
	CHECK(nbelow == below_before, "a swap or trade lost or flushed objects");
}

TEST(depot_past_max_full_flushes_below)
{
	setup(4, 1);
	void *o[40];
	for (int i = 0; i < 40; i++)
		o[i] = alloc();
	unsigned below_before = nbelow;
	for (int i = 0; i < 40; i++)
		release(o[i]);
	CHECK(depot.nfull == 1, "depot keeps %u full magazines, max 1", depot.nfull);
	CHECK(in_slot() + 4 * depot.nfull + (nbelow - below_before) == 40,
	      "objects lost: slot %u depot %u below +%u", in_slot(), depot.nfull,
	      nbelow - below_before);
	CHECK(nbelow - below_before >= 40 - 8 - 4, "too few objects went below (%u)",
	      nbelow - below_before);
	CHECK(depot.nempty <= depot.max_full + 2, "depot keeps %u empty magazines", depot.nempty);
}

/* A free past a full depot hands MAG_TRIM objects below, never a whole
 * magazine, and an allocation takes at most MAG_FILL (the bound on one
 * call's work, README "Worst case"); nothing is lost on the way. */
TEST(full_depot_trims_a_bounded_batch)
{
	enum { N = 600 };
	static void *o[N];
	setup(MAG_MAX, 2);
	for (int i = 0; i < N; i++)
		o[i] = alloc();
	CHECK(most_filled == MAG_FILL, "a fill asked for %u objects (MAG_FILL %u)", most_filled,
	      MAG_FILL);
	unsigned below_before = nbelow, flushes_before = flushes;
	for (int i = 0; i < N; i++)
		release(o[i]);
	CHECK(depot.nfull == 2, "depot keeps %u full magazines, max 2", depot.nfull);
	CHECK(most_flushed == MAG_TRIM, "a free flushed %u objects below (MAG_TRIM %u)",
	      most_flushed, MAG_TRIM);
	CHECK((nbelow - below_before) == MAG_TRIM * (flushes - flushes_before),
	      "%u objects below in %u flushes", nbelow - below_before, flushes - flushes_before);
	CHECK(in_slot() + MAG_MAX * depot.nfull + (nbelow - below_before) == N,
	      "objects lost: slot %u depot %u below +%u", in_slot(), depot.nfull,
	      nbelow - below_before);
}

TEST(drain_and_flush_give_everything_back)
{
	setup(8, 2);
	void *o[100];
	for (int i = 0; i < 100; i++)
		o[i] = alloc();
	for (int i = 0; i < 100; i++)
		release(o[i]);
	CHECK(depot_objects(&depot) == 8u * depot.nfull, "depot_objects %llu, %u full",
	      (unsigned long long)depot_objects(&depot), depot.nfull);
	slot_drain(&slot, &depot);
	CHECK(slot.loaded == &mag_none && slot.prev == &mag_none, "drained slot not at mag_none");
	depot_flush(&depot);
	CHECK(nbelow == NOBJ, "%u of %u objects back below", nbelow, NOBJ);
	CHECK(mags_live == 0, "%u magazines not freed", mags_live);
	CHECK(depot.nfull == 0 && depot.nempty == 0 && depot_objects(&depot) == 0,
	      "depot not empty after flush");
}

TEST(no_memory_for_magazines_still_works)
{
	setup(8, 2);
	fail_mag_new = 1;
	void *a = alloc(), *b = alloc();
	CHECK(a && b && a != b, "allocation without magazines failed");
	CHECK(slot.loaded == &mag_none && nbelow == NOBJ - 2, "objects cached without magazines");
	release(a);
	release(b);
	CHECK(nbelow == NOBJ, "frees without magazines did not go below");
}

/* Random allocs and frees against a model: each object is either held by
 * the test, or free in the slot/depot, or below, never twice. */
TEST(random_conserves_objects)
{
	setup(6, 3);
	static void *held[NOBJ];
	static unsigned char state[NOBJ];    /* 1: held by the test */
	unsigned nheld = 0;
	uint64_t x = harness_seed | 1;
	for (int step = 0; step < 200000; step++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (nheld && (x % 100 < 48 || nheld == NOBJ)) {
			unsigned k = (unsigned)(x >> 32) % nheld;
			void *o = held[k];
			held[k] = held[--nheld];
			unsigned idx = (unsigned)(((char (*)[16])o) - objs);
			CHECK(state[idx] == 1, "freeing %u, which is not held", idx);
			state[idx] = 0;
			release(o);
		} else if (x % 1000 == 999) {
			slot_drain(&slot, &depot);
			depot_flush(&depot);
		} else {
			void *o = alloc();
			if (!o)
				continue;
			unsigned idx = (unsigned)(((char (*)[16])o) - objs);
			CHECK(idx < NOBJ && state[idx] == 0, "handed out %u twice", idx);
			state[idx] = 1;
			held[nheld++] = o;
		}
		if (harness_failed_now)
			return;
	}
	uint64_t cached = in_slot() + depot_objects(&depot);
	CHECK(nheld + cached + nbelow == NOBJ, "held %u + cached %llu + below %u != %u", nheld,
	      (unsigned long long)cached, nbelow, NOBJ);
}

/* A fork's child drains the slots of threads stopped anywhere, also
 * halfway through a swap (loaded == prev) or a trade (prev already on
 * the depot's list).  Each magazine's objects must go below once and
 * each magazine be freed once (ASan sees a second free); the magazine
 * the stopped thread held only in a local is lost, not freed twice. */
TEST(drain_of_a_slot_stopped_halfway_frees_each_magazine_once)
{
	setup(4, 2);
	void *o[8];
	for (int i = 0; i < 8; i++)
		o[i] = alloc();
	for (int i = 0; i < 8; i++)
		release(o[i]);              /* loaded and prev full: 4 + 4 */
	CHECK(in_slot() == 8, "slot holds %u, want 8", in_slot());
	unsigned below0 = nbelow, live0 = mags_live;
	struct mm_mag *lost = slot.prev;
	slot.prev = slot.loaded;            /* swap(): after its first store */
	slot_drain(&slot, &depot);
	CHECK(nbelow - below0 == 4, "%u objects went below, want the 4 of one magazine",
	      nbelow - below0);
	CHECK(live0 - mags_live == 1, "%u magazines freed, want 1", live0 - mags_live);
	t_mag_delete(NULL, lost);           /* what the stopped thread held: a leak in a child */

	/* a trade: prev is on the depot's full list, the slot not told yet */
	for (int i = 0; i < 8; i++)
		o[i] = alloc();
	for (int i = 0; i < 8; i++)
		release(o[i]);
	below0 = nbelow;
	struct mm_mag *m = slot.prev;
	mm_spin_lock(&depot.lock);
	m->next = depot.full;
	depot.full = m;
	depot.nfull++;
	mm_spin_unlock(&depot.lock);
	slot_drain(&slot, &depot);
	depot_flush(&depot);
	CHECK(nbelow - below0 == 8, "%u objects went below, want 8 (4 of loaded, 4 from the depot)",
	      nbelow - below0);
}

/* A second CPU on the same depot, for the test below. */
static struct mm_cpu_slot slot2;

/* What a fork's child would find at this moment if the slots' threads
 * did not come along: each magazine a slot or the depot names is live
 * and named once (the child's slot_drain and depot_flush free each one
 * they find): no slot names one that is on the depot's lists (another
 * thread could take it from there) or in the other slot. */
static void fork_point(const char *where)
{
	if (!fork_watch)
		return;
	fork_points++;
	struct mm_mag *seen[LIVE_MAX + 4];
	unsigned n = 0;
	const struct mm_cpu_slot *sl[2] = { &slot, &slot2 };
	for (int i = 0; i < 2; i++) {
		if (sl[i]->loaded != &mag_none)
			seen[n++] = sl[i]->loaded;
		if (sl[i]->prev != &mag_none && sl[i]->prev != sl[i]->loaded)
			seen[n++] = sl[i]->prev;   /* loaded == prev: swap()'s half (slot_drain knows) */
	}
	for (int list = 0; list < 2; list++)
		for (struct mm_mag *m = list ? depot.empty : depot.full; m; m = m->next) {
			if (!is_live(m)) {
				CHECK(0, "at %s: a freed magazine %p on the depot's list", where, (void *)m);
				fork_watch = false;
				return;
			}
			if (n < sizeof seen / sizeof seen[0])
				seen[n++] = m;
		}
	for (unsigned i = 0; i < n; i++) {
		bool dup = false;
		for (unsigned j = 0; j < i; j++)
			dup |= seen[j] == seen[i];
		if (!is_live(seen[i]) || dup) {
			CHECK(0, "at %s: magazine %p %s", where, (void *)seen[i],
			      dup ? "named twice (a slot and the depot's list, or two slots)" :
				    "in a slot but already freed");
			fork_watch = false;     /* one report */
			return;
		}
	}
}

/* The depot lock's release is a fork point: lockdep's release hook runs
 * right before it (this test links with --wrap=mm_lockdep_release). */
void __real_mm_lockdep_release(const mm_spinlock_t *l);
void __wrap_mm_lockdep_release(const mm_spinlock_t *l);
void __wrap_mm_lockdep_release(const mm_spinlock_t *l)
{
	__real_mm_lockdep_release(l);
	if (l == &depot.lock)
		fork_point("the depot's unlock");
}

/* The slow paths hand a magazine to or from the depot, or free it, only
 * together with the slot: at no moment between two locked steps (where a
 * fork may find a thread) does a magazine belong to a slot and to the
 * depot, or to a slot after it was freed.  Before, both trades left prev
 * in the slot after putting it on the depot's list (where another CPU
 * may take it) and mag_alloc_slow freed an empty prev the depot did not
 * keep before it left the slot: a fork then found it twice, the crash of
 * lib_forksig with the medium classes (2-object magazines, so a trade
 * every few calls).  Two CPUs on one depot, one allocating more than it
 * frees and one the reverse, take every path: fills, both trades, trims,
 * and (after a slot_stock, as kmalloc_reserve does, fills the depot's
 * stack of empty magazines) drops of empty ones. */
TEST(slow_paths_never_leave_a_magazine_in_two_places)
{
	setup(2, 2);
	slot_init(&slot2);
	static void *held[NOBJ];
	unsigned nheld = 0, deletes = 0, trims = 0;
	uint64_t x = harness_seed | 1;
	fork_points = 0;
	fork_watch = true;
	uint64_t exchanges0 = depot.exchanges;
	for (int step = 0; step < 40000 && fork_watch; step++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		bool on2 = (x >> 20) % 2;
		struct mm_cpu_slot *sl = on2 ? &slot2 : &slot;
		unsigned live0 = mags_live;
		uint64_t flushes0 = depot.flushes;
		/* slot allocates 2 of 3 calls, slot2 frees 2 of 3 */
		if (x % 97 == 0)
			slot_stock(sl, &depot);
		else if (nheld && ((x % 3 == 0) != on2 || nheld == NOBJ)) {
			unsigned k = (unsigned)(x >> 32) % nheld;
			void *o = held[k];
			held[k] = held[--nheld];
			if (!mag_push(sl->loaded, o))
				CHECK(mag_free_slow(sl, &depot, o), "mag_free_slow refused %p", o);
			trims += depot.flushes > flushes0;
		} else {
			void *o = mag_pop(sl->loaded);
			if (!o) {
				o = mag_alloc_slow(sl, &depot);
				deletes += mags_live < live0;
			}
			if (o)
				held[nheld++] = o;
		}
	}
	fork_watch = false;
	CHECK(depot.exchanges - exchanges0 > 1000 && deletes > 100 && trims > 100,
	      "%llu trades, %u magazines dropped on an allocation, %u trims: paths not taken",
	      (unsigned long long)(depot.exchanges - exchanges0), deletes, trims);
	CHECK(fork_points > 1000, "only %u fork points", fork_points);
	while (nheld)
		release(held[--nheld]);
	slot_drain(&slot2, &depot);
}

TEST(zz_last_teardown)
{
	teardown();
	depot.ops = NULL;
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

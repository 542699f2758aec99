/*
 * test_bulk.c - the magazines' batches to and from the pools (issue 19):
 * pool_alloc_bulk() takes a run of one pool at a time (its free list,
 * then never-carved blocks, the pool's head and count written once) and
 * pool_free_bulk() gives a run back; a full depot trims MAG_TRIM blocks
 * of a magazine instead of flushing it.  None of that may lose a block,
 * count one twice or let a double free through.
 *
 *   bulk_runs_keep_pools_consistent  pool_alloc_bulk / pool_free_bulk
 *                               called directly over many pools (free
 *                               lists, carving, new pools, full pools,
 *                               pools emptied): every block distinct,
 *                               marked, counted; kmalloc_check() clean
 *   magazines_ramp_keeps_counts       kmalloc/kfree ramps with magazines
 *                               on (fills, depot trades, trims): the
 *                               statistics add up, kmalloc_check() clean
 *                               after each phase, every page back
 *   double_free_after_bulk_is_reported  every block freed through the
 *                               magazines (some in a magazine or the
 *                               depot, some handed back by a trim or a
 *                               drain) freed again: each one reported as
 *                               a double free, the heap still sound
 *   medium_trim_without_hint_and_parked_arena  pool_free_bulk of medium
 *                               blocks whose arena has no hint (its slot
 *                               taken), and kfree's one-block trims of
 *                               them (pool_free_one): the pools found
 *                               through the descriptor, counts and
 *                               kmalloc_check() right; and an arena whose only pools in
 *                               use are parked pools of two medium
 *                               classes is seen as unused (held, kept as
 *                               the spare or given back), which needs the
 *                               walk of its kind's classes to find them
 *   percpu_off_stops_refills_on_other_cpus  after mm_percpu_enable(0) on
 *                               one CPU, another CPU whose magazine runs
 *                               empty takes its blocks from the pools and
 *                               fills no magazine (kmalloc's fast path
 *                               enters the magazine slow path directly,
 *                               which must see the layer is off)
 */
#include "kmalloc_fixture.h"

#include <pthread.h>
#include <unistd.h>

#include "../../mm/pool.h"

static struct kmalloc_stats st;

static uint64_t used_of(unsigned c)
{
	kmalloc_get_stats(&st);
	return st.cls[c].blocks_used;
}

static void shuffle(void **v, unsigned n)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)rnd_below(i);
		void *t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* n blocks of class c taken in batches of `batch`; all distinct and in
 * pools of class c, each with its magazine mark. */
static bool take(unsigned c, void **blk, unsigned n, unsigned batch)
{
	for (unsigned got = 0; got < n;) {
		unsigned want = n - got < batch ? n - got : batch;
		mm_spin_lock(&pools.lock);
		unsigned k = pool_alloc_bulk(c, blk + got, want);
		mm_spin_unlock(&pools.lock);
		if (k != want) {
			fprintf(stderr, "# pool_alloc_bulk(%u, %u) gave %u\n", c, want, k);
			return false;
		}
		got += k;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct km_block *b = blk[i];
		const struct km_pool *p = km_pool_of_class(b, c);
		if (b->mark != km_mag_mark(b) || p->cls != c || pool_check_block(p, b) != KM_DOUBLE_FREE) {
			fprintf(stderr, "# block %u (%p) of class %u: mark %#lx, pool class %u\n", i,
				(void *)b, c, (unsigned long)b->mark, p->cls);
			return false;
		}
	}
	return true;
}

static void give(unsigned c, void **blk, unsigned n, unsigned batch)
{
	for (unsigned i = 0; i < n; i += batch) {
		mm_spin_lock(&pools.lock);
		pool_free_bulk(c, blk + i, n - i < batch ? n - i : batch);
		mm_spin_unlock(&pools.lock);
	}
}

TEST(bulk_runs_keep_pools_consistent)
{
	static void *blk[4096];
	/* small classes and medium ones (pools of 64 KiB to 512 KiB: block
	 * offsets past 16 bits, pools found through the descriptor) */
	static const size_t sizes[] = { 16, 48, 256, 1024, 2048, 4608, 8192, 32768 };
	setup();
	for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		unsigned c = km_size_class(sizes[s]);
		unsigned n = sizes[s] >= 4096 ? 120 : sizes[s] >= 1024 ? 700 : 4096, batch = 15;
		uint64_t used0 = used_of(c);
		REQUIRE(take(c, blk, n, batch), "bulk take of class %u", c);
		CHECK(used_of(c) == used0 + n, "class %u: %llu used after taking %u (from %llu)",
		      c, (unsigned long long)used_of(c), n, (unsigned long long)used0);
		for (unsigned i = 0; i < n; i++)
			for (unsigned j = i + 1; j < n && j < i + 64; j++)
				REQUIRE(blk[i] != blk[j], "block %p handed out twice", blk[i]);
		/* a half back in random order: pools that were full, mixed runs */
		shuffle(blk, n);
		give(c, blk, n / 2, 30);
		CHECK(used_of(c) == used0 + n - n / 2, "class %u: %llu used after half back", c,
		      (unsigned long long)used_of(c));
		CHECK(kmalloc_check() == 0, "kmalloc_check after half of class %u back", c);
		/* taken again: free lists first, then fresh blocks */
		REQUIRE(take(c, blk, n / 2, 8), "bulk retake of class %u", c);
		CHECK(kmalloc_check() == 0, "kmalloc_check after the retake, class %u", c);
		shuffle(blk, n);
		give(c, blk, n, 8);      /* every pool empties: parked or returned */
		CHECK(used_of(c) == used0, "class %u: %llu used at the end, %llu before", c,
		      (unsigned long long)used_of(c), (unsigned long long)used0);
		CHECK(kmalloc_check() == 0, "kmalloc_check after class %u", c);
	}
	CHECK_SOUND();
}

/* Blocks in use by callers: sum of blocks_used - percpu_cached_blocks
 * - blocks_internal (strata/kmalloc.h). */
static uint64_t in_use_by_callers(void)
{
	uint64_t n = 0;

	kmalloc_get_stats(&st);
	for (unsigned c = 0; c < st.nclasses; c++)
		n += st.cls[c].blocks_used;
	return n - st.percpu_cached_blocks - st.blocks_internal;
}

/* Ramp a class up by n blocks and down in random order with magazines
 * on (fills, depot trades, trims); the counts add up at the top and at
 * the bottom, the heap is sound, the contents kept. */
static void ramp(size_t size, unsigned n)
{
	static void *blk[8192];
	uint64_t live0 = in_use_by_callers();

	for (unsigned i = 0; i < n; i++) {
		blk[i] = kmalloc(size, 0);
		REQUIRE(blk[i], "kmalloc(%zu) #%u", size, i);
		fill(blk[i], size, i);
	}
	CHECK(in_use_by_callers() == live0 + n, "%zu-byte ramp: %llu blocks in use, %llu + %u expected",
	      size, (unsigned long long)in_use_by_callers(), (unsigned long long)live0, n);
	CHECK(kmalloc_check() == 0, "kmalloc_check at the top of the %zu-byte ramp", size);
	for (unsigned i = 0; i < n; i++)
		REQUIRE(intact(blk[i], size, i), "block %u of %zu bytes corrupted", i, size);
	shuffle(blk, n);
	for (unsigned i = 0; i < n; i++)
		kfree(blk[i]);
	CHECK(in_use_by_callers() == live0, "after the %zu-byte ramp: %llu blocks in use, %llu before",
	      size, (unsigned long long)in_use_by_callers(), (unsigned long long)live0);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the %zu-byte ramp", size);
}

TEST(magazines_ramp_keeps_counts)
{
	setup();
	mm_percpu_enable(1);
	ramp(48, 8192);
	ramp(2048, 3000);
	ramp(256, 5000);
	ramp(8192, 300);      /* medium: 2-block magazines, 128 KiB pools */
	mm_percpu_enable(0);     /* drains this CPU, flushes the depots */
	CHECK_SOUND();
}

/* The hint slots of the arenas of blk[0..n): saved in saved[] and set
 * to KM_HINT_NONE (as if another arena had taken them), or put back. */
static void hints_off(void **blk, unsigned n, uintptr_t *saved, bool off)
{
	for (unsigned i = 0; i < n; i++) {
		uintptr_t base = (uintptr_t)blk[i] & ~(KM_ARENA_SIZE - 1);
		unsigned slot = km_hint_slot(base);
		if (off && pools.hint[slot] != KM_HINT_NONE) {
			saved[slot] = pools.hint[slot];
			pools.hint[slot] = KM_HINT_NONE;
		} else if (!off && saved[slot] != KM_HINT_NONE) {
			pools.hint[slot] = saved[slot];
			saved[slot] = KM_HINT_NONE;
		}
	}
}

TEST(medium_trim_without_hint_and_parked_arena)
{
	static void *blk[64];
	static uintptr_t saved[KM_HINTS];
	setup();
	for (unsigned i = 0; i < KM_HINTS; i++)
		saved[i] = KM_HINT_NONE;

	/* 1. no hint: 60 blocks of 4608 bytes (64 KiB pools, 14 a pool) */
	unsigned c = km_size_class(4608);
	uint64_t used0 = used_of(c);
	REQUIRE(take(c, blk, 60, 15), "bulk take of class %u", c);
	shuffle(blk, 60);
	hints_off(blk, 60, saved, true);
	give(c, blk, 30, 8);
	CHECK(used_of(c) == used0 + 30, "class %u: %llu used after 30 of 60 back without hints",
	      c, (unsigned long long)used_of(c));
	CHECK(kmalloc_check() == 0, "kmalloc_check after a trim without hints");
	hints_off(blk, 60, saved, false);
	give(c, blk + 30, 30, 8);
	CHECK(used_of(c) == used0, "class %u: %llu used at the end, %llu before", c,
	      (unsigned long long)used_of(c), (unsigned long long)used0);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the rest back with hints");

	/* 1b. the same through kfree with the magazines on: past the depot's
	 * 8 full magazines (of 2 blocks) each free trims one block, which
	 * pool_free_one (class_flush) gives back to the pool found through
	 * the descriptor */
	mm_percpu_enable(1);
	uint64_t live0 = in_use_by_callers();
	for (unsigned i = 0; i < 60; i++) {
		blk[i] = kmalloc(4608, 0);
		REQUIRE(blk[i], "kmalloc(4608) #%u", i);
	}
	shuffle(blk, 60);
	hints_off(blk, 60, saved, true);
	for (unsigned i = 0; i < 60; i++)
		CHECK(kfree(blk[i]) == 0, "kfree of %p without its hint", blk[i]);
	kmalloc_get_stats(&st);
	CHECK(st.percpu_cached_blocks < 60, "all 60 blocks in magazines: no trim");
	CHECK(in_use_by_callers() == live0, "%llu blocks in use after 60 trims and trades without "
	      "hints, %llu before", (unsigned long long)in_use_by_callers(),
	      (unsigned long long)live0);
	CHECK(kmalloc_check() == 0, "kmalloc_check after trims without hints");
	hints_off(blk, 60, saved, false);
	mm_percpu_enable(0);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the magazines drained");

	/* 2. two medium classes of one pool kind, one block each: two pools
	 * of one fresh arena; both freed, both parked (each the last pool
	 * of its class), and nothing else of the arena in use */
	mm_reclaim();
	unsigned a = 0, b = 0;
	for (unsigned x = km_size_class(2049); x < pools.nclasses && !b; x++)
		for (unsigned y = x + 1; y < pools.nclasses && !b; y++)
			if (pools.cls[x].kind == pools.cls[y].kind && pools.cls[x].kind > 0)
				a = x, b = y;
	REQUIRE(b, "two medium classes of one pool kind");
	REQUIRE(take(a, blk, 1, 1) && take(b, blk + 1, 1, 1), "one block of classes %u, %u", a, b);
	const struct km_arena *arena = km_pool_of_class(blk[0], a)->arena;
	REQUIRE(km_pool_of_class(blk[1], b)->arena == arena, "classes %u and %u in one arena", a, b);
	kmalloc_get_stats(&st);
	uint64_t gone0 = st.arenas_reclaimed_total;
	give(a, blk, 1, 1);
	give(b, blk + 1, 1, 1);
	kmalloc_get_stats(&st);
	CHECK(pools.held == arena || arenas.spare == arena || st.arenas_reclaimed_total > gone0,
	      "an arena with only parked pools of classes %u and %u (kind %u) is neither held, "
	      "nor the spare, nor given back", a, b, pools.cls[a].kind);
	CHECK(kmalloc_check() == 0, "kmalloc_check after the parked arena");
	CHECK_SOUND();
}

TEST(double_free_after_bulk_is_reported)
{
	static void *blk[2000], *anchor[64];
	struct kmalloc_report r;
	unsigned nanchor = 0, n = 0;

	setup();
	mm_percpu_enable(1);
	/* 2000 blocks of 48 bytes; the first of each pool stays live, so no
	 * pool leaves its class and a second free meets a block of it */
	for (unsigned i = 0; i < 2000; i++) {
		void *p = kmalloc(48, 0);
		REQUIRE(p, "kmalloc(48) #%u", i);
		bool first = true;
		for (unsigned a = 0; a < nanchor; a++)
			first &= km_pool_of(anchor[a]) != km_pool_of(p);
		if (first && nanchor < 64)
			anchor[nanchor++] = p;
		else
			blk[n++] = p;
	}
	shuffle(blk, n);
	for (unsigned i = 0; i < n; i++)
		kfree(blk[i]);        /* magazines, depot trades, trims below */
	kmalloc_get_stats(&st);
	CHECK(st.percpu_cached_blocks > 0 && st.percpu_cached_blocks < n,
	      "%llu of %u blocks in magazines: not both kinds",
	      (unsigned long long)st.percpu_cached_blocks, n);
	kmalloc_last_report(&r);
	uint64_t serial = r.serial;
	unsigned reported = 0;
	host_capture_start(capture, sizeof capture);   /* n reports: kept quiet */
	for (unsigned i = 0; i < n; i++) {
		CHECK(kfree(blk[i]) == -1, "second kfree of %p accepted", blk[i]);
		kmalloc_last_report(&r);
		if (r.serial == serial + 1 && r.kind == KM_DOUBLE_FREE && r.ptr == blk[i])
			reported++;
		serial = r.serial;
	}
	host_capture_stop();
	CHECK(reported == n, "%u of %u double frees reported", reported, n);
	mm_cpu_drain();           /* this CPU's magazines below in one batch */
	host_capture_start(capture, sizeof capture);
	for (unsigned i = 0; i < n; i += 97) {
		kmalloc_last_report(&r);
		serial = r.serial;
		CHECK(kfree(blk[i]) == -1, "kfree of %p after the drain accepted", blk[i]);
		kmalloc_last_report(&r);
		CHECK(r.serial == serial + 1 && r.kind == KM_DOUBLE_FREE,
		      "double free of %p after the drain not reported", blk[i]);
	}
	host_capture_stop();
	CHECK(kmalloc_check() == 0, "kmalloc_check after the double frees");
	for (unsigned a = 0; a < nanchor; a++)
		kfree(anchor[a]);
	mm_percpu_enable(0);
	CHECK_SOUND();
}

/* This test's CPUs are its threads (the default mm_cpu_id() says 0 for
 * all of them, as tsan_percpu.c does too). */
static __thread unsigned my_cpu;
unsigned mm_cpu_id(void)
{
	return my_cpu;
}

static pthread_barrier_t step;
#define OTHER_N 50   /* not 1 + 7 + a multiple of the fill (8): a refill leaves some */
static void *other_blk[OTHER_N];
static uint64_t other_cached;

static uint64_t cached_blocks(void)
{
	kmalloc_get_stats(&st);
	return st.percpu_cached_blocks;
}

/* Another CPU (a thread of its own): one kmalloc fills its magazine;
 * then, with the layer off, enough to empty that magazine and more. */
static void *other_cpu(void *arg)
{
	(void)arg;
	my_cpu = 1;
	other_blk[0] = kmalloc(48, 0);
	pthread_barrier_wait(&step);      /* the main thread turns the layer off */
	pthread_barrier_wait(&step);
	for (unsigned i = 1; i < OTHER_N; i++)
		other_blk[i] = kmalloc(48, 0);
	other_cached = cached_blocks();
	for (unsigned i = 0; i < OTHER_N; i++)
		kfree(other_blk[i]);
	return NULL;
}

TEST(percpu_off_stops_refills_on_other_cpus)
{
	pthread_t t;

	setup();
	mm_percpu_enable(1);
	pthread_barrier_init(&step, NULL, 2);
	REQUIRE(pthread_create(&t, NULL, other_cpu, NULL) == 0, "pthread_create");
	pthread_barrier_wait(&step);
	uint64_t before = cached_blocks();
	mm_percpu_enable(0);
	pthread_barrier_wait(&step);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&step);
	CHECK(before > 0, "the other CPU's first kmalloc filled no magazine (%llu cached)",
	      (unsigned long long)before);
	for (unsigned i = 0; i < OTHER_N; i++)
		CHECK(other_blk[i] != NULL, "kmalloc(48) #%u on the other CPU failed", i);
	CHECK(other_cached == 0,
	      "%llu blocks in magazines after %u kmallocs on another CPU with the per-CPU "
	      "layer off: its empty magazine was filled again", (unsigned long long)other_cached,
	      OTHER_N);
	CHECK_SOUND();
}

/* krealloc keeps a small or a medium block in place without pools.lock:
 * it finds the block through the arena hints, as kfree's fast path does;
 * and a large run that keeps its pages, through its descriptor.  The
 * main thread holds the lock while another thread grows the three blocks
 * within their class or pages; the reallocs must be done before the lock
 * is let go (after 2 s at most, so a krealloc that waits for it fails,
 * not hangs). */
#define RESIZE_N 3
static void *resize_blk[RESIZE_N], *resize_got[RESIZE_N];
static size_t resize_to[RESIZE_N];
static int resize_done;

static void *resize_in_place(void *arg)
{
	(void)arg;
	my_cpu = 1;
	for (int i = 0; i < RESIZE_N; i++)
		resize_got[i] = krealloc(resize_blk[i], resize_to[i], 0);
	__atomic_store_n(&resize_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST(krealloc_in_place_takes_no_pool_lock)
{
	static const size_t ask[RESIZE_N] = { 100, 5000, 40000 };   /* small, medium, large */
	pthread_t t;
	int done_locked = 0;

	setup();
	mm_percpu_enable(1);
	kmalloc_get_stats(&st);
	uint64_t requested = st.large_bytes_requested;
	for (int i = 0; i < RESIZE_N; i++) {
		resize_blk[i] = kmalloc(ask[i], 0);
		REQUIRE(resize_blk[i], "kmalloc(%zu)", ask[i]);
		resize_to[i] = kmalloc_usable_size(resize_blk[i]);   /* grows, same class */
		REQUIRE(resize_to[i] > ask[i], "usable size %zu of kmalloc(%zu)", resize_to[i], ask[i]);
	}
	mm_spin_lock(&pools.lock);
	REQUIRE(pthread_create(&t, NULL, resize_in_place, NULL) == 0, "pthread_create");
	for (int ms = 0; ms < 2000 && !done_locked; ms++) {
		done_locked = __atomic_load_n(&resize_done, __ATOMIC_ACQUIRE);
		if (!done_locked)
			usleep(1000);
	}
	mm_spin_unlock(&pools.lock);
	pthread_join(t, NULL);
	CHECK(done_locked, "krealloc within the class waited for pools.lock");
	kmalloc_get_stats(&st);
	CHECK(st.large_bytes_requested == requested + resize_to[2],
	      "large bytes requested %llu, not %llu + %zu after the run's resize",
	      (unsigned long long)st.large_bytes_requested, (unsigned long long)requested,
	      resize_to[2]);
	for (int i = 0; i < RESIZE_N; i++)
		CHECK(resize_got[i] == resize_blk[i], "krealloc(%p, %zu) moved the block to %p",
		      resize_blk[i], resize_to[i], resize_got[i]);

	/* a freed block still goes to the slow path, which reports it */
	struct kmalloc_report r;
	kfree(resize_blk[0]);
	host_capture_start(capture, sizeof capture);
	void *q = krealloc(resize_blk[0], 50, 0);
	host_capture_stop();
	kmalloc_last_report(&r);
	CHECK(q == NULL, "krealloc of a freed block gave %p", q);
	CHECK(r.kind == KM_DOUBLE_FREE && strcmp(r.op, "krealloc") == 0,
	      "krealloc of a freed block: report %d %s", r.kind, r.op);
	kfree(resize_blk[1]);
	kfree(resize_blk[2]);
	mm_percpu_enable(0);
	CHECK_SOUND();
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

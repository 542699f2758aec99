/*
 * test_harden.c - the free-list hardening holds (issue 16): no block
 * handed out carries a value that gives the per-boot secret away, and a
 * link forged from anything a caller can read is reported, never
 * followed; the same for an entry planted in a per-CPU magazine.
 *
 *   fresh_blocks_hide_the_secret   every word of fresh and reused blocks
 *                                  of every class: neither the secret nor
 *                                  secret ^ the word's address
 *   forged_link_is_reported        a use-after-free write plants, in a freed
 *                                  block, a link to a block in use encoded
 *                                  with each "secret" a caller could read
 *                                  back from fresh blocks: kmalloc reports
 *                                  it and never returns the block in use
 *   forged_magazine_entry_is_reported  a block in use planted in a magazine
 *                                  (an overflow into the magazine's memory)
 *                                  is reported and dropped
 */
#include "kmalloc_fixture.h"

#include <string.h>
#include <strata/debug.h>

#include "../../mm/percpu_internal.h"
#include "../../mm/pool.h"

static struct kmalloc_stats st;

static bool word_reveals_secret(const uintptr_t *w)
{
	return *w == pools.secret || (*w ^ (uintptr_t)w) == pools.secret;
}

/* Allocate n blocks of `size`; count the words that reveal the secret. */
static unsigned leaks_in_fresh(size_t size, void **blk, unsigned n)
{
	unsigned leaks = 0;
	for (unsigned i = 0; i < n; i++) {
		blk[i] = kmalloc(size, 0);
		if (!blk[i])
			continue;
		const uintptr_t *w = blk[i];
		for (size_t j = 0; j < size / sizeof *w; j++)
			if (word_reveals_secret(&w[j])) {
				leaks++;
				fprintf(stderr, "# leak: block %p (%u of %u) word %zu = %#lx\n", blk[i], i, n, j, (unsigned long)w[j]);
			}
	}
	return leaks;
}

TEST(fresh_blocks_hide_the_secret)
{
	static void *blk[96];
	for (int percpu = 0; percpu <= 1; percpu++) {
		setup();
		mm_percpu_enable(percpu);
		kmalloc_get_stats(&st);
		REQUIRE(st.nclasses > 0 && pools.secret != 0, "no classes or no secret");
		for (unsigned c = 0; c < st.nclasses; c++) {
			size_t size = st.cls[c].size;
			unsigned leaks = leaks_in_fresh(size, blk, 96);
			/* freed and taken again: blocks reused from the free list */
			for (unsigned i = 0; i < 96; i += 2)
				kfree(blk[i]);
			for (unsigned i = 0; i < 96; i += 2)
				blk[i] = NULL;
			leaks += leaks_in_fresh(size, blk, 48);
			CHECK(leaks == 0, "percpu %d, class %zu: %u words reveal the secret",
			      percpu, size, leaks);
			for (unsigned i = 0; i < 96; i++)
				kfree(blk[i]);
		}
		/* the next setup() starts over on this RAM, with the same
		 * secret (the host tests' entropy is fixed): as after a boot,
		 * no word of an earlier heap may be left in it */
		memset(ram, 0, RAM_SIZE);
	}
}

/* Blocks of one class freed at random, their pools emptied and released
 * (kmalloc_trim), the memory carved again for other classes: no block of
 * those holds an old link (pool_wipe_links, mm/pool.c). */
TEST(released_pool_memory_hides_the_secret)
{
	static void *blk[4096], *fresh[512];
	setup();
	for (unsigned i = 0; i < 4096; i++)
		blk[i] = kmalloc(32, 0);
	for (unsigned i = 4095; i > 0; i--) {      /* free in a random order */
		unsigned j = (unsigned)rnd_below(i + 1);
		void *t = blk[i];
		blk[i] = blk[j];
		blk[j] = t;
	}
	for (unsigned i = 0; i < 4096; i++)
		kfree(blk[i]);
	kmalloc_trim();
	static const size_t other[] = { 48, 256, 1024 };
	unsigned leaks = 0;
	for (unsigned k = 0; k < 3; k++) {
		leaks += leaks_in_fresh(other[k], fresh, 512);
		for (unsigned i = 0; i < 512; i++)
			kfree(fresh[i]);
	}
	CHECK(leaks == 0, "%u words of blocks carved from released pools reveal the secret", leaks);
	memset(ram, 0, RAM_SIZE);
}

/* Free `victim` (to its pool's free list: no magazines), write into it a
 * link to `target` encoded with `guess`, and allocate twice: was target
 * handed out again while in use, without a report? */
static bool forged_link_followed(uintptr_t guess)
{
	struct mm_bug_report r;
	setup();
	mm_debug_set_panic(0);
	mm_debug_last_report(&r);
	uint64_t before = r.serial;
	struct km_block *victim = kmalloc(32, 0), *target = kmalloc(32, 0);
	void *keep = kmalloc(32, 0);
	kfree(victim);
	victim->enc = (uintptr_t)target ^ guess ^ (uintptr_t)&victim->enc;   /* use after free */
	void *p1 = kmalloc(32, 0), *p2 = kmalloc(32, 0);
	mm_debug_last_report(&r);
	bool followed = (p1 == target || p2 == target) && r.serial == before;
	if (p1 != target && p2 != target)
		CHECK(r.serial == before + 1 && r.kind == MM_BUG_FREELIST,
		      "forged link neither followed nor reported");
	mm_debug_set_panic(1);
	(void)keep;
	return followed;
}

TEST(forged_link_is_reported)
{
	/* everything a caller can read of fresh blocks: each word, and each
	 * word ^ its address (how a link is encoded) */
	uintptr_t guesses[2 * 4 * 4];
	unsigned n = 0;
	setup();
	for (unsigned i = 0; i < 4; i++) {
		uintptr_t *w = kmalloc(32, 0);
		REQUIRE(w != NULL, "kmalloc(32)");
		for (unsigned j = 0; j < 4; j++) {
			guesses[n++] = w[j];
			guesses[n++] = w[j] ^ (uintptr_t)&w[j];
		}
	}
	unsigned followed = 0;
	for (unsigned i = 0; i < n; i++)
		followed += forged_link_followed(guesses[i]);
	CHECK(followed == 0, "%u of %u forged links were followed without a report", followed, n);
}

TEST(forged_magazine_entry_is_reported)
{
	struct mm_bug_report r;
	setup();
	mm_percpu_enable(1);
	mm_debug_set_panic(0);
	unsigned c = km_size_class(48);
	void *target = kmalloc(48, 0), *x = kmalloc(48, 0);
	kfree(x);                                   /* into this CPU's magazine */
	struct km_pcpu *pc = km_pcpu[mm_cpu_id()];
	REQUIRE(pc && pc->slot[c].loaded && pc->slot[c].loaded->count > 0,
		"the freed block is not in a magazine");
	struct mm_mag *m = pc->slot[c].loaded;
	mm_debug_last_report(&r);
	uint64_t before = r.serial;
	m->obj[m->count - 1] = target;              /* an overflow into the magazine */
	void *p = kmalloc(48, 0);
	mm_debug_last_report(&r);
	CHECK(p != target, "a planted magazine entry handed out a block in use");
	CHECK(r.serial == before + 1 && r.kind == MM_BUG_FREELIST && r.ptr == target,
	      "the planted entry was not reported");
	mm_debug_set_panic(1);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

/*
 * tsan_large.c - the large-run layer beside another user of the PFA,
 * under ThreadSanitizer.  One thread allocates, grows (krealloc) and frees
 * large runs, so the run cache puts, joins, cuts and grows runs; the other
 * takes and gives back small PFA blocks directly, as the slab layer does
 * for its slabs, in the same small heap, so those blocks are the runs'
 * neighbours.  The large layer works under the object allocator's lock,
 * the PFA under its own: a descriptor of a page the large layer does not
 * own (a neighbour's) read without the PFA lock is a race with the PFA
 * writing it, and ThreadSanitizer reports it (halt_on_error=1 fails the
 * program).  Contents are checked, and at the end the PFA has every page
 * back.
 */
#include "harness.h"
#include "host_ram.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "../../mm/large.h"

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "halt_on_error=1:abort_on_error=1:report_signal_unsafe=0";
}

#define RAM      (16u << 20)
#define OPS      20000u
#define LIVE     8           /* runs the large thread keeps */
#define BLOCKS   16          /* PFA blocks the other thread keeps */

static __thread unsigned my_cpu = MM_CPU_NONE;
unsigned mm_cpu_id(void) { return my_cpu; }
unsigned mm_cpu_count(void) { return 2; }
unsigned long mm_irq_save(void) { return 0; }
void mm_irq_restore(unsigned long f) { (void)f; }

static atomic_ulong damaged, grown, blocks_taken;
static pthread_barrier_t bar;

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

struct run { unsigned char *p; size_t size; unsigned char tag; };

static void fill(struct run *r)
{
	r->p[0] = r->tag;
	r->p[r->size - 1] = r->tag;
}

static void check_and_free(struct run *r)
{
	if (r->p[0] != r->tag || r->p[r->size - 1] != r->tag)
		atomic_fetch_add(&damaged, 1);
	kfree(r->p);
	r->p = NULL;
}

/* Runs of 3..40 pages; now and then one grows in place or moves. */
static void *large_thread(void *arg)
{
	uint64_t seed = (harness_seed + 1) * 0x9E3779B97F4A7C15ULL;
	struct run live[LIVE] = { 0 };

	my_cpu = 0;
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < OPS; i++) {
		uint64_t r = next_rand(&seed);
		struct run *x = &live[r % LIVE];
		if (x->p && ((r >> 8) & 3) == 0) {
			size_t size = x->size + (size_t)((r >> 16) % 8 + 1) * PAGE_SIZE;
			unsigned char *p = krealloc(x->p, size, 0);
			if (p) {
				if (p[0] != x->tag || p[x->size - 1] != x->tag)
					atomic_fetch_add(&damaged, 1);
				x->p = p;
				x->size = size;
				fill(x);
				atomic_fetch_add(&grown, 1);
			}
			continue;
		}
		if (x->p)
			check_and_free(x);
		x->size = (size_t)((r >> 16) % 38 + 3) * PAGE_SIZE - (size_t)((r >> 32) % 64);
		x->p = kmalloc(x->size, 0);
		x->tag = (unsigned char)(i | 1);
		if (x->p)
			fill(x);
	}
	for (unsigned j = 0; j < LIVE; j++)
		if (live[j].p)
			check_and_free(&live[j]);
	mm_cpu_detach(0);
	my_cpu = MM_CPU_NONE;
	return NULL;
}

/* PFA blocks of 1..4 pages taken and given back, owner set as a slab's. */
static void *pfa_thread(void *arg)
{
	uint64_t seed = (harness_seed + 2) * 0x9E3779B97F4A7C15ULL;
	phys_addr_t held[BLOCKS] = { 0 };
	unsigned order[BLOCKS] = { 0 };

	my_cpu = 1;
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < 4 * OPS; i++) {
		uint64_t r = next_rand(&seed);
		unsigned j = (unsigned)(r % BLOCKS);
		if (held[j]) {
			pfa_free(held[j], order[j]);
			held[j] = 0;
			continue;
		}
		order[j] = (unsigned)((r >> 8) % 3);
		held[j] = pfa_alloc(order[j], 0);
		if (held[j]) {
			pfa_set_owner(held[j], order[j], PG_CACHE);
			atomic_fetch_add(&blocks_taken, 1);
		}
	}
	for (unsigned j = 0; j < BLOCKS; j++)
		if (held[j])
			pfa_free(held[j], order[j]);
	my_cpu = MM_CPU_NONE;
	return NULL;
}

TEST(large_runs_beside_pfa_blocks)
{
	host_heap_setup(RAM);
	struct pfa_stats st;
	pfa_get_stats(&st);
	uint64_t free0 = st.free_pages;

	pthread_t a, b;
	pthread_barrier_init(&bar, NULL, 2);
	REQUIRE(pthread_create(&a, NULL, large_thread, NULL) == 0, "thread");
	REQUIRE(pthread_create(&b, NULL, pfa_thread, NULL) == 0, "thread");
	pthread_join(a, NULL);
	pthread_join(b, NULL);

	struct large_stats ls;
	large_get_stats(&ls);
	printf("# %u large ops (%lu grown by krealloc), %lu PFA blocks taken beside them;"
	       " run cache: %llu joined, %llu grown\n", OPS, atomic_load(&grown),
	       atomic_load(&blocks_taken), (unsigned long long)ls.joined,
	       (unsigned long long)ls.grown);
	CHECK(ls.joined > 0, "the run cache joined no neighbours: the test misses its point");
	CHECK(atomic_load(&damaged) == 0, "%lu runs damaged", atomic_load(&damaged));
	CHECK(atomic_load(&grown) > 0 && atomic_load(&blocks_taken) > 0, "both threads worked");
	CHECK(kmalloc_check() == 0 && pfa_check() == 0, "checks");
	mm_reclaim();
	pfa_get_stats(&st);
	CHECK(st.free_pages == free0, "PFA free pages %llu, %llu before",
	      (unsigned long long)st.free_pages, (unsigned long long)free0);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

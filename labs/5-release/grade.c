/*
 * labs/5-release/grade.c - lab 5's suite (linked only into lab kernels):
 * memory given back, measured in the PFA's free pages before and after.
 */
#include <kernel/ktest.h>
#include <stdio.h>
#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

static uint64_t pfa_free_pages(void)
{
	struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

#define LAB_BLOCKS 32768u     /* 256-byte blocks: 8 MiB, several arenas */

static void **fill(struct ktest_ctx *t)
{
	void **v = kmalloc(LAB_BLOCKS * sizeof *v, 0);
	KT_CHECK(t, v != NULL, "kmalloc of the pointer array");
	for (unsigned i = 0; v && i < LAB_BLOCKS; i++) {
		v[i] = kmalloc(256, 0);
		KT_CHECK(t, v[i] != NULL, "kmalloc(256) #%u", i);
	}
	return v;
}

static void empty(void **v)
{
	for (unsigned i = 0; v && i < LAB_BLOCKS; i++)
		kfree(v[i]);
	kfree(v);
}

/* Freeing every block gives most arenas back without being asked (the
 * spare, a held arena and blocks cached in magazines may keep a few). */
KTEST_NAMED("lab-release", arenas_go_back_on_free, lab_arenas_go_back_on_free);
static void lab_arenas_go_back_on_free(struct ktest_ctx *t)
{
	struct kmalloc_stats st;
	kmalloc_trim();
	uint64_t before = pfa_free_pages();
	void **v = fill(t);
	uint64_t live = pfa_free_pages();
	kmalloc_get_stats(&st);
	uint64_t arenas_live = st.arenas_current;
	empty(v);
	mm_cpu_drain();
	uint64_t after = pfa_free_pages();
	kmalloc_get_stats(&st);
	printf("# lab-release: pfa free pages %llu before, %llu live (%llu arenas), %llu after "
	       "the frees (%llu arenas)\n", (unsigned long long)before, (unsigned long long)live,
	       (unsigned long long)arenas_live, (unsigned long long)after,
	       (unsigned long long)st.arenas_current);
	KT_CHECK(t, arenas_live >= 3, "%llu arenas live: the test needs several",
		 (unsigned long long)arenas_live);
	KT_CHECK(t, st.arenas_current <= arenas_live / 2,
		 "%llu of %llu arenas still there after every block was freed",
		 (unsigned long long)st.arenas_current, (unsigned long long)arenas_live);
	KT_CHECK(t, after + arenas_live / 2 * (st.arena_size >> 12) >= before,
		 "%llu free pages after, %llu before", (unsigned long long)after,
		 (unsigned long long)before);
	kmalloc_trim();
}

/* kmalloc_trim gives back the rest: the spare and the held arena. */
KTEST_NAMED("lab-release", trim_gives_back_every_page, lab_trim_gives_back_every_page);
static void lab_trim_gives_back_every_page(struct ktest_ctx *t)
{
	struct kmalloc_stats st;
	kmalloc_trim();
	uint64_t before = pfa_free_pages();
	empty(fill(t));
	uint64_t trimmed = kmalloc_trim();
	uint64_t after = pfa_free_pages();
	kmalloc_get_stats(&st);
	printf("# lab-release: kmalloc_trim gave back %llu pages; pfa free pages %llu before, "
	       "%llu after\n", (unsigned long long)trimmed, (unsigned long long)before,
	       (unsigned long long)after);
	KT_CHECK(t, after == before, "%llu free pages after the trim, %llu before",
		 (unsigned long long)after, (unsigned long long)before);
	KT_CHECK(t, st.arenas_current == 0, "%llu arenas after the trim",
		 (unsigned long long)st.arenas_current);
}

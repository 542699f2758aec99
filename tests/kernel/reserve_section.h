/*
 * reserve_section.h - the proof of kmalloc_reserve(), shared by the host
 * test (tests/host/test_reserve.c) and the guest's test=kmalloc
 * "reserve".  Header only; the includer defines
 *
 *     RS_CHECK(cond, fmt, ...)   one check, counted by its harness
 *
 * then calls rs_prove(v, n) with room for n pointers, on a strata with
 * nothing of class 64 or 1024 live.  What it shows, counting the PFA
 * calls kmalloc makes (kmalloc_get_stats: pfa_allocs + pfa_frees, every
 * arena and large run taken or given back):
 *
 *   1. without a reserve, a section of random kmalloc/kfree (at most n
 *      blocks live, then all freed) calls the PFA: the check can fail;
 *   2. after kmalloc_reserve(64, n) and kmalloc_reserve(1024, n / 8), the
 *      same kind of section on both classes makes no PFA call at all, and
 *      the PFA's free page count does not move;
 *   3. the last kmalloc_unreserve() and a trim give every page back;
 *      bad requests are refused (-1) and hold nothing.
 */
#ifndef TESTS_RESERVE_SECTION_H
#define TESTS_RESERVE_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

static uint64_t rs_pfa_calls(void)
{
	struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.pfa_allocs + st.pfa_frees;
}

static uint64_t rs_free_pages(void)
{
	struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

static uint64_t rs_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Random kmalloc/kfree on n slots: sizes in (lo, hi] (one class), every
 * slot filled first, then 4n random steps, then everything freed in
 * random order.  false if a kmalloc failed. */
static bool rs_section(void **v, unsigned n, size_t lo, size_t hi, uint64_t seed)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++)
		ok &= (v[i] = kmalloc(lo + 1 + rs_rand(&seed) % (hi - lo), 0)) != NULL;
	for (unsigned k = 0; k < 4 * n; k++) {
		unsigned i = (unsigned)(rs_rand(&seed) % n);
		if (v[i]) {
			kfree(v[i]);
			v[i] = NULL;
		} else {
			ok &= (v[i] = kmalloc(lo + 1 + rs_rand(&seed) % (hi - lo), 0)) != NULL;
		}
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (unsigned)(rs_rand(&seed) % n);
		for (unsigned j = 0; j < n && !v[i]; j++)
			i = (i + 1) % n;
		kfree(v[i]);
		v[i] = NULL;
	}
	return ok;
}

static void rs_prove(void **v, unsigned n)
{
	kmalloc_trim();
	uint64_t pages0 = rs_free_pages(), calls = rs_pfa_calls();
	RS_CHECK(rs_section(v, n, 48, 64, 1), "section without a reserve: kmalloc failed");
	RS_CHECK(rs_pfa_calls() > calls, "without a reserve the section made no PFA call "
		 "(the proof below would prove nothing)");
	kmalloc_trim();

	RS_CHECK(kmalloc_reserve(64, n) == 0, "kmalloc_reserve(64, %u) failed", n);
	RS_CHECK(kmalloc_reserve(1024, n / 8) == 0, "kmalloc_reserve(1024, %u) failed", n / 8);
	calls = rs_pfa_calls();
	uint64_t pages = rs_free_pages();
	for (uint64_t seed = 2; seed < 5; seed++) {
		RS_CHECK(rs_section(v, n, 48, 64, seed), "reserved section (64): kmalloc failed");
		RS_CHECK(rs_section(v, n / 8, 960, 1024, seed), "reserved section (1024): kmalloc failed");
	}
	uint64_t made = rs_pfa_calls() - calls;
	RS_CHECK(made == 0, "%llu PFA calls inside the reserved section", (unsigned long long)made);
	RS_CHECK(rs_free_pages() == pages, "PFA free pages moved inside the section: %llu -> %llu",
		 (unsigned long long)pages, (unsigned long long)rs_free_pages());
	RS_CHECK(kmalloc_check() == 0, "kmalloc_check inside the reserve");
	kmalloc_unreserve();
	kmalloc_unreserve();
	kmalloc_trim();
	RS_CHECK(rs_free_pages() == pages0, "after unreserve and trim: %llu free pages, %llu before",
		 (unsigned long long)rs_free_pages(), (unsigned long long)pages0);

	RS_CHECK(kmalloc_reserve(0, 1) == -1, "kmalloc_reserve(0) accepted");
	RS_CHECK(kmalloc_reserve(KMALLOC_SMALL_MAX + 1, 1) == -1,
		 "kmalloc_reserve of a large size accepted");
	calls = rs_pfa_calls();
	RS_CHECK(rs_section(v, n, 48, 64, 9), "section after the refused reserves: kmalloc failed");
	RS_CHECK(rs_pfa_calls() > calls, "refused reserves left arenas pinned");
	kmalloc_trim();
	RS_CHECK(rs_free_pages() == pages0, "refused reserves: pages not all back");
}

#endif

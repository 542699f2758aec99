/*
 * labs/6-debugging/grade.c - lab 6's suite (linked only into lab kernels,
 * booted with mm.debug=all,continue): the module names.c used as its
 * interface says, while strata's debug mode watches every block.
 */
#include <kernel/ktest.h>
#include <string.h>
#include <strata/debug.h>
#include "names.h"

static const char *const words[] = { "arena", "pool", "block", "buddy", "page frame",
				     "size class", "usedpools", "quarantine", "x" };
#define NWORDS (sizeof words / sizeof words[0])

static uint64_t serial(void)
{
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	return r.serial;
}

static void add_all(struct ktest_ctx *t)
{
	for (unsigned i = 0; i < NWORDS; i++)
		KT_CHECK(t, names_add(words[i]) == 0, "names_add(\"%s\")", words[i]);
}

/* With the names live, every red zone and poison is intact. */
KTEST_NAMED("lab-debug", heap_clean_while_live, lab_heap_clean_while_live);
static void lab_heap_clean_while_live(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue");
	uint64_t s0 = serial();
	add_all(t);
	for (unsigned i = 0; i < NWORDS; i++)
		KT_CHECK(t, names_get(i) && !strcmp(names_get(i), words[i]), "name %u", i);
	KT_CHECK(t, mm_check_all() == 0 && serial() == s0,
		 "mm_check_all found heap bugs with the names live (see the report above)");
	names_clear();
}

/* Adding and clearing many times: no report at any free. */
KTEST_NAMED("lab-debug", no_report_on_free, lab_no_report_on_free);
static void lab_no_report_on_free(struct ktest_ctx *t)
{
	KT_REQUIRE(t, mm_debug_flags() == MM_DBG_ALL, "boot with mm.debug=all,continue");
	uint64_t s0 = serial();
	for (unsigned round = 0; round < 20; round++) {
		add_all(t);
		names_clear();
	}
	KT_CHECK(t, serial() == s0, "%llu heap bug(s) reported while names were freed",
		 (unsigned long long)(serial() - s0));
	KT_CHECK(t, names_count() == 0, "names left after names_clear");
}

/*
 * lib_cxx.cc - C++'s operator new and delete under
 * LD_PRELOAD=build/host/libstrata.so (arch/host/cxx_operators.c).
 *
 *   every form of new and delete lands in strata (the blocks are strata's:
 *   malloc_usable_size knows them), with the alignment asked for
 *   new that fails: the new handler is called, then std::bad_alloc is
 *   thrown (nothrow: NULL)
 *   a sized delete with the wrong size, an aligned delete of a plain new's
 *   block: reported by name, abort by default, go on with "continue";
 *   in debug mode the size must be exact, and reports name the program
 *
 * Bugs are committed in child processes (lib_cases.h).
 */
#include <new>
#include <cstdint>
#include <malloc.h>

#include "lib_strata.h"
#include "harness.h"
#include "lib_cases.h"

static void *volatile sink;

/* ---- the cases (run in the child) ---- */

static void sized_delete_wrong_class(void)
{
	void *p = ::operator new(24);
	sink = p;
	::operator delete(p, 200);      /* 200 is not 24's class */
}

static void sized_delete_off_by_one(void)
{
	void *p = ::operator new(24);
	sink = p;
	::operator delete(p, 25);       /* same class; wrong in debug mode */
}

static void sized_delete_right(void)
{
	int *a = new int[6];            /* delete[] of int: size not passed */
	struct big { char c[3000]; } *b = new big;
	sink = a;
	sink = b;
	delete[] a;
	delete b;                       /* sized: 3000 */
	void *p = ::operator new(100);
	::operator delete(p, 100);
	p = ::operator new(100000);
	::operator delete(p, 100000);
}

/* A plain new's block that is not 64-byte aligned, freed as aligned. */
static void aligned_delete_of_plain_new(void)
{
	void *p = ::operator new(24);
	while (((uintptr_t)p & 63) == 0) {
		sink = p;                       /* kept: the next one differs */
		p = ::operator new(24);
	}
	::operator delete(p, std::align_val_t(64));
}

/* Debug mode: any plain new's block freed as aligned is reported. */
static void aligned_delete_of_plain_new_aligned_by_chance(void)
{
	void *p = ::operator new(24);
	while (((uintptr_t)p & 63) != 0) {
		sink = p;
		p = ::operator new(24);
	}
	::operator delete(p, std::align_val_t(64));
}

static void aligned_forms_work(void)
{
	struct alignas(256) over { char c[300]; };
	over *o = new over;
	over *v = new over[3];
	void *n = ::operator new(40, std::align_val_t(4096), std::nothrow);
	void *m = ::operator new[](40, std::align_val_t(128));
	bool ok = ((uintptr_t)o & 255) == 0 && ((uintptr_t)v & 255) == 0 &&
		  ((uintptr_t)n & 4095) == 0 && ((uintptr_t)m & 127) == 0 &&
		  malloc_usable_size(o) >= sizeof(over) && malloc_usable_size(n) >= 40;
	delete o;                            /* sized and aligned */
	delete[] v;
	::operator delete(n, std::align_val_t(4096), std::nothrow);
	::operator delete[](m, std::align_val_t(128));
	char *c = new char[10];
	char *d = new (std::nothrow) char[10];
	ok = ok && malloc_usable_size(c) >= 10 && malloc_usable_size(d) >= 10;
	delete[] c;
	::operator delete[](d, std::nothrow);
	fprintf(stderr, "aligned forms %s\n", ok ? "fine" : "WRONG");
}

static int handler_calls;
static void handler(void)
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);  /* then new throws */
}

static void new_fails(void)
{
	size_t huge = (size_t)1 << 62;
	const char *thrown = "nothing";
	try {
		sink = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		thrown = "bad_alloc";
	}
	fprintf(stderr, "plain new: %s\n", thrown);
	fprintf(stderr, "nothrow new: %s\n",
		::operator new(huge, std::nothrow) ? "a block" : "NULL");
	std::set_new_handler(handler);
	thrown = "nothing";
	try {
		sink = ::operator new[](huge, std::align_val_t(64));
	} catch (const std::bad_alloc &) {
		thrown = "bad_alloc";
	}
	fprintf(stderr, "aligned new[] with handler: %s after %d handler calls\n", thrown,
		handler_calls);
}

static void double_delete(void)
{
	int *p = new int(3);
	int *volatile again = p;        /* (no compiler warning) */
	sink = p;
	delete p;
	delete again;
}

static const struct lib_case cases[] = {
	{ "sized_delete_wrong_class", sized_delete_wrong_class },
	{ "sized_delete_off_by_one", sized_delete_off_by_one },
	{ "sized_delete_right", sized_delete_right },
	{ "aligned_delete_of_plain_new", aligned_delete_of_plain_new },
	{ "aligned_delete_of_plain_new_aligned_by_chance",
	  aligned_delete_of_plain_new_aligned_by_chance },
	{ "aligned_forms_work", aligned_forms_work },
	{ "new_fails", new_fails },
	{ "double_delete", double_delete },
	{ NULL, NULL },
};

/* ---- the tests ---- */

static const char *const operator_names[] = {
	"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
	"_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
	"_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t",
	"_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t",
	"_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
	"_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

TEST(every_form_of_new_and_delete_is_stratas)
{
	for (const char *name : operator_names) {
		Dl_info info;
		void *f = dlsym(RTLD_DEFAULT, name);
		CHECK(f && dladdr(f, &info) && strstr(info.dli_fname, "libstrata"),
		      "%s is %s's", name, f && dladdr(f, &info) ? info.dli_fname : "no one");
	}
	expect("aligned_forms_work", NULL, "aligned forms fine", false);
	CHECK(!strstr(out, "strata:"), "reported:\n%s", out);
	expect("aligned_forms_work", "all", "aligned forms fine", false);
	CHECK(!strstr(out, "BUG"), "reported in debug mode:\n%s", out);
	expect("sized_delete_right", NULL, "survived", false);
	CHECK(!strstr(out, "strata:"), "reported:\n%s", out);
	expect("sized_delete_right", "all", "survived", false);
	CHECK(!strstr(out, "BUG"), "reported in debug mode:\n%s", out);
}

TEST(failing_new_calls_the_handler_then_throws)
{
	expect("new_fails", NULL, "plain new: bad_alloc", false);
	CHECK(strstr(out, "nothrow new: NULL"), "nothrow:\n%s", out);
	CHECK(strstr(out, "aligned new[] with handler: bad_alloc after 3 handler calls"),
	      "handler:\n%s", out);
}

TEST(sized_delete_with_the_wrong_class_reported)
{
	const char *text = "BUG: sized delete with the wrong size";
	expect("sized_delete_wrong_class", NULL, text, true);
	CHECK(strstr(out, "delete told 200 bytes, alignment 0; the block is 32 bytes"),
	      "details:\n%s", out);
	expect_site_in_case("sized_delete_wrong_class", "found by the call from ", 256);
	expect("sized_delete_wrong_class", "continue", text, false);
	expect("sized_delete_wrong_class", "all", text, true);
	expect("sized_delete_wrong_class", "all,continue", text, false);
}

/* The class is all the default build can see; debug mode knows the size. */
TEST(sized_delete_exact_in_debug_mode)
{
	expect("sized_delete_off_by_one", NULL, "survived", false);
	CHECK(!strstr(out, "BUG"), "reported by default:\n%s", out);
	expect("sized_delete_off_by_one", "all", "BUG: sized delete with the wrong size", true);
	CHECK(strstr(out, "delete told 25 bytes, alignment 0; the block is 24 bytes"),
	      "details:\n%s", out);
	expect_site_in_case("sized_delete_off_by_one", "found by the call from ", 256);
}

TEST(aligned_delete_of_plain_new_reported)
{
	const char *text = "BUG: aligned delete of a block not from the aligned new";
	expect("aligned_delete_of_plain_new", NULL, text, true);
	expect("aligned_delete_of_plain_new", "continue", text, false);
	/* aligned by chance: only debug mode knows it came from a plain new */
	expect("aligned_delete_of_plain_new_aligned_by_chance", NULL, "survived", false);
	expect("aligned_delete_of_plain_new_aligned_by_chance", "all", text, true);
	expect("aligned_delete_of_plain_new_aligned_by_chance", "all,continue", text, false);
}

/* Reports through delete name the program's code. */
TEST(delete_reports_name_the_program)
{
	expect("double_delete", NULL, "double free", true);
	expect_site_in_case("double_delete", ", caller ", 256);
	expect("double_delete", "all", "BUG: double free", true);
	expect_site_in_case("double_delete", "allocated at ", 256);
	expect_site_in_case("double_delete", "freed at ", 256);
}

int main(int argc, char **argv)
{
	return lib_cases_main(cases, argc, argv);
}

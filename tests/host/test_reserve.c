/*
 * test_reserve.c - kmalloc_reserve(): inside a reserved section no
 * kmalloc/kfree reaches the page allocator (PFA calls counted).  The
 * proof is tests/kernel/reserve_section.h, which the guest runs too.
 */
#include "harness.h"
#include "host_ram.h"

#define RS_CHECK(cond, ...) CHECK(cond, __VA_ARGS__)
#include "../kernel/reserve_section.h"

#define MIB (1024ull * 1024)

TEST(reserved_section_makes_no_pfa_call)
{
	static void *v[20000];
	host_heap_setup(64 * MIB);
	rs_prove(v, 20000);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

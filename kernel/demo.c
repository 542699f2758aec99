/*
 * demo.c - what `make run` shows when no test= is given: the page-frame
 * allocator's view of memory after boot.
 */
#include <kernel/boot.h>
#include <kprintf.h>
#include <strata/pfa.h>

void demo_run(const struct boot_info *bi)
{
	(void)bi;
	kprintf("\n-- page-frame allocator after boot --\n");
	pfa_print_stats(console_write);
	kprintf("demo done\n");
}

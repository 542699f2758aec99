/*
 * main.c - kmain(), the one C entry point both architectures share.
 *
 *   boot stub (arch/<name>/)          kmain()
 *   ------------------------          -------
 *   CPU mode, MMU, stack, BSS   --->  mm_init(): RAM -> strata's PFA
 *   struct boot_info filled           stdout unbuffered, then (newlib's
 *                                     printf) banner + firmware memory map
 *                                     test=...  -> in-kernel test runner
 *                                     otherwise -> the demo
 *                                     exit status -> QEMU -> shell
 */
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/cmdline.h>
#include <kernel/exit.h>
#include <kernel/mm.h>
#include <kernel/panic.h>
#include <kernel/smp.h>
#include <stdio.h>
#include <strata/pfa.h>

int ktest_run(const struct boot_info *bi, const char *spec);
void demo_run(const struct boot_info *bi);

static void print_size(uint64_t bytes)
{
	if (bytes >= (1ULL << 30) && !(bytes & ((1ULL << 20) - 1)))
		printf("%llu.%02llu GiB", (unsigned long long)(bytes >> 30),
			(unsigned long long)((bytes & ((1ULL << 30) - 1)) * 100 >> 30));
	else if (bytes >= (1ULL << 20))
		printf("%llu MiB", (unsigned long long)(bytes >> 20));
	else
		printf("%llu KiB", (unsigned long long)(bytes >> 10));
}

static void print_memory_map(const struct boot_info *bi)
{
	uint64_t total = 0;

	printf("memory map (%s):\n", bi->firmware);
	for (unsigned i = 0; i < bi->nram; i++) {
		const struct boot_region *r = &bi->ram[i];
		printf("  ram      0x%016llx-0x%016llx  ", (unsigned long long)r->base,
			(unsigned long long)(r->base + r->size - 1));
		print_size(r->size);
		printf("\n");
		total += r->size;
	}
	for (unsigned i = 0; i < bi->nreserved; i++) {
		const struct boot_region *r = &bi->reserved[i];
		printf("  reserved 0x%016llx-0x%016llx  ", (unsigned long long)r->base,
			(unsigned long long)(r->base + r->size - 1));
		print_size(r->size);
		printf("\n");
	}
	printf("  total RAM ");
	print_size(total);
	printf(" in %u region%s, direct map at 0x%llx\n", bi->nram,
		bi->nram == 1 ? "" : "s", (unsigned long long)bi->direct_map_offset);
}

void kmain(struct boot_info *bi)
{
	uint64_t t_kmain = arch_cycles();

	/*
	 * No stdio before kmalloc_init(): newlib's first printf sets up
	 * stdout and may allocate (a stdout buffer, dtoa's Bigints for %f),
	 * and strata is newlib's malloc.  So memory first, output after.
	 * If mm_init() fails, panic() prints on the direct console path.
	 */
	uint64_t t_mm = arch_cycles();
	mm_init(bi);
	t_mm = arch_cycles() - t_mm;

	/*
	 * stdout unbuffered: every printf is formatted into a buffer on the
	 * stack and written at once (newlib's __sbprintf), so nothing sits in
	 * a stdio buffer when the kernel exits, panics or faults, output
	 * interleaves correctly with console_write() users (strata's stats
	 * tables, panic, the exception handlers), and stdout needs no
	 * malloc'd buffer.
	 */
	setvbuf(stdout, NULL, _IONBF, 0);

	printf("\nstrata %s kernel (%s, %s)\n", bi->arch, bi->firmware, arch_cpu_name());
	printf("cmdline: \"%s\"\n", bi->cmdline);
	printf("boot: first C instruction at cycle %llu, kmain at cycle %llu\n",
		(unsigned long long)bi->entry_cycles, (unsigned long long)t_kmain);
	print_memory_map(bi);

	struct pfa_stats st;
	pfa_get_stats(&st);
	printf("pfa: %llu pages managed, %llu free, %llu reserved, "
		"%llu bytes of page descriptors, set up in %llu cycles\n",
		(unsigned long long)st.total_pages, (unsigned long long)st.free_pages,
		(unsigned long long)st.reserved_pages,
		(unsigned long long)st.metadata_bytes, (unsigned long long)t_mm);

	/* every CPU QEMU was given (-smp N), or cpus=N on the command line */
	unsigned want = (unsigned)cmdline_get_u64(bi->cmdline, "cpus", 0);
	unsigned n = smp_init(bi, want);
	printf("smp: %u CPU%s online (%u described by the firmware)\n", n,
		n == 1 ? "" : "s", arch_cpu_count_firmware());
	mm_fault_arm();   /* mm.fault=...: from here on, calls may fail */

	char spec[256];
	if (cmdline_get(bi->cmdline, "test", spec, sizeof spec)) {
		int failed = ktest_run(bi, spec);
		arch_exit(failed ? EXIT_FAIL : EXIT_PASS);
	}
	demo_run(bi);
	arch_exit(EXIT_PASS);
}

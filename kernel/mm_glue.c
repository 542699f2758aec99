/*
 * mm_glue.c - this kernel's side of strata's platform contract
 * (mm/include/strata/platform.h), and handing RAM over to strata.
 */
#include <kernel/arch.h>
#include <kernel/console.h>
#include <kernel/boot.h>
#include <kernel/panic.h>
#include <kernel/mm.h>
#include <kernel/smp.h>
#include <kernel/cmdline.h>
#include <strata/debug.h>
#include <strata/fault.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>
#include <strata/trace.h>

void mm_platform_write(const char *s, size_t n)
{
	console_write(s, n);
}

void mm_platform_panic(const char *msg)
{
	panic("strata: %s", msg);
}

/* Give every RAM region and every reservation of the firmware map to the
 * page-frame allocator, then start the object allocator on top of it. */
void mm_init(const struct boot_info *bi)
{
	boot_check_kernel(bi);
	pfa_setup_begin(bi->direct_map_offset);
	/* a region the PFA cannot take is reported by it and left unused */
	for (unsigned i = 0; i < bi->nram; i++)
		pfa_add_region(bi->ram[i].base, bi->ram[i].size);
	for (unsigned i = 0; i < bi->nreserved; i++)
		pfa_reserve(bi->reserved[i].base, bi->reserved[i].size);
	int r = pfa_setup_end();
	if (r != PFA_MAP_OK)
		panic("mm: the page allocator refused the memory map: %s", pfa_map_strerror(r));
	kmalloc_init();

	/* mm.debug=FZPUQ[,continue] (strata/debug.h) */
	char spec[32];
	if (cmdline_get(bi->cmdline, "mm.debug", spec, sizeof spec) &&
	    mm_debug_setup(spec) != 0)
		panic("mm: bad mm.debug=%s (letters FZPUQ, all or off, then ,continue)", spec);

	/* mm.sample=N[,seed=S][,continue] (strata/guard.h): off unless given */
	if (cmdline_get(bi->cmdline, "mm.sample", spec, sizeof spec)) {
		int r = mm_guard_setup(spec);
		if (r == -1)
			panic("mm: bad mm.sample=%s (N, then ,seed=S and/or ,continue)", spec);
		if (r == -2)
			console_printf("mm: mm.sample=%s: no page protection here, sampling off\n",
				       spec);
		if (r == -3)
			console_printf("mm: mm.sample=%s: built with MM_SAMPLING=0, sampling off\n",
				       spec);
	}

	/* mm.trace=N: tracemalloc with N frames per site (strata/trace.h) */
	uint64_t frames = cmdline_get_u64(bi->cmdline, "mm.trace", 0);
	if (frames && (frames > MM_TRACE_MAX_FRAMES || mm_trace_start((unsigned)frames) != 0))
		panic("mm: mm.trace=%llu: tracemalloc did not start (1..%d frames, MM_DEBUG=1)",
		      (unsigned long long)frames, MM_TRACE_MAX_FRAMES);

	/* mm.fault=pfa:every=7 (strata/fault.h): the rule is set now and
	 * armed by kmain once the kernel is up (mm_fault_arm), so that the
	 * boot's own allocations (page tables, CPU stacks) never fail */
	char fspec[64];
	if (cmdline_get(bi->cmdline, "mm.fault", fspec, sizeof fspec)) {
		if (mm_fault_setup(fspec) != 0)
			panic("mm: bad mm.fault=%s (POINTS:nth=N|every=K|random=SEED,1in=N|off)%s",
			      fspec, MM_FAULT_INJECT ? "" :
			      ": this kernel has no fault injection (build with make FAULT_INJECT=1)");
		mm_fault_pause(1);
	}
}

void mm_fault_arm(void)
{
	mm_fault_pause(0);
}

/* ---- CPUs and interrupts for strata's per-CPU caches and locks ---- */
unsigned mm_cpu_id(void) { return arch_cpu_id(); }
unsigned mm_cpu_count(void) { return smp_ncpus(); }
unsigned long mm_irq_save(void) { return arch_irq_save(); }
void mm_irq_restore(unsigned long flags) { arch_irq_restore(flags); }
/* Contended strata lock: pause, a little longer each time (up to 64
 * pauses between looks at the lock). */
void mm_platform_spin_wait(unsigned spins)
{
	for (unsigned i = 0; i < spins && i < 64; i++)
		arch_cpu_relax();
}
uint64_t mm_platform_entropy(void) { return arch_cycles() * 0x9E3779B97F4A7C15ull; }

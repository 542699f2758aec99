/*
 * arch/aarch64/setup.c - from _start to kmain(): device tree, memory map,
 * MMU, struct boot_info.
 *
 * Physical memory of QEMU -M virt -m 512M as this file sees it (identity
 * mapped, so these are also the virtual addresses):
 *
 *   0x00000000  flash                          unmapped: NULL faults
 *   0x08000000  GIC, PL011 @0x09000000, RTC,   Device-nGnRE, never executable
 *               fw_cfg, virtio-mmio, PCIe
 *   0x40000000  DTB (QEMU puts it here)        RAM, reserved (totalsize)
 *   0x40200000  kernel image                   RAM, reserved, W^X:
 *                 .text (+ vectors)              read-only, executable
 *                 .rodata (+ .ktest)             read-only
 *                 .data, .bss: tables, stacks    read-write (guard pages unmapped)
 *   __kernel_end ... 0x60000000                free RAM, read-write, not executable
 *
 * Order matters because the MMU is off at first: every data access is then
 * Device memory (uncached, alignment-checked on real hardware).  So:
 *
 *   1. parse the DTB with the byte-loading fdt.c (alignment-safe)
 *   2. build the tables: MMIO, RAM from the DTB, then the kernel image
 *   3. MMU + caches on (mmu.c)
 *   4. only now call into kernel/ (printf, panic, boot_add_*): its code may
 *      use exclusive loads/stores, which need Normal memory
 *
 * A broken DTB does not hang the boot: the tables then cover just MMIO and
 * the kernel image, the MMU goes on, and panic() names the problem.
 */
#include <stddef.h>
#include <stdint.h>
#include <fdt.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/panic.h>
#include "aarch64.h"

#define DTB_MAX_SIZE (16u << 20)   /* the largest blob we are willing to read */

unsigned aarch64_boot_el;
char aarch64_psci_conduit;
int aarch64_ncpus;
const void *aarch64_dtb;

static struct boot_info bi;
static struct fdt fdt;
static struct fdt_region ram[BOOT_MAX_REGIONS], rsv[BOOT_MAX_REGIONS];
static int nram, nrsv;
static uint64_t initrd_start, initrd_end;

/* What went wrong in parse_dtb(), for the panic once the MMU is on. */
static const char *dtb_what;
static int dtb_err;

static int fail(const char *what, int err)
{
	dtb_what = what;
	dtb_err = err;
	return err;
}

/* x0 if the loader passed a DTB there (raw Image boot), else where QEMU
 * puts it for an ELF kernel linked at >= 0x40200000. */
static const void *find_dtb(uint64_t x0)
{
	if (x0 && !(x0 & 7) && fdt_peek_totalsize((const void *)(uintptr_t)x0, 8))
		return (const void *)(uintptr_t)x0;
	return (const void *)VIRT_DTB_ADDR;
}

static uint64_t prop_number(int node, const char *name)
{
	int len;
	const void *p = fdt_getprop(&fdt, node, name, &len);
	return p && (len == 4 || len == 8) ? fdt_read_cells(p, len / 4) : 0;
}

/* Runs with the MMU off: fdt.c only, no kernel/ code. */
static int parse_dtb(const void *dtb)
{
	int err = fdt_open(&fdt, dtb, DTB_MAX_SIZE);
	if (err)
		return fail("header/structure", err);
	nram = fdt_memory_regions(&fdt, ram, BOOT_MAX_REGIONS);
	if (nram == FDT_ERR_NOSPACE)
		return fail("/memory: more RAM ranges than boot_info holds (BOOT_MAX_REGIONS)", nram);
	if (nram < 0)
		return fail("/memory", nram);
	if (nram == 0)
		return fail("/memory", FDT_ERR_NOTFOUND);
	nrsv = fdt_reserved_regions(&fdt, rsv, BOOT_MAX_REGIONS);
	if (nrsv < 0)
		return fail("memreserve or /reserved-memory", nrsv);
	err = fdt_bootargs(&fdt, bi.cmdline, sizeof bi.cmdline);
	if (err < 0)
		return fail("/chosen bootargs", err);

	int chosen = fdt_path_offset(&fdt, "/chosen");
	if (chosen >= 0) {
		initrd_start = prop_number(chosen, "linux,initrd-start");
		initrd_end = prop_number(chosen, "linux,initrd-end");
	}
	int psci = fdt_path_offset(&fdt, "/psci");
	const char *method = psci >= 0 ? fdt_getprop_string(&fdt, psci, "method") : NULL;
	if (method && method[0] == 'h')
		aarch64_psci_conduit = 'h';
	else if (method && method[0] == 's')
		aarch64_psci_conduit = 's';
	aarch64_ncpus = fdt_cpus(&fdt, NULL, 0);   /* the ones smp.c can start */
	if (aarch64_ncpus < 1)
		aarch64_ncpus = 1;
	aarch64_dtb = dtb;
	return 0;
}

static int inside_ram(uint64_t base, uint64_t size)
{
	for (int i = 0; i < nram; i++)
		if (base >= ram[i].base && base + size <= ram[i].base + ram[i].size)
			return 1;
	return 0;
}

static uint64_t pa(const void *p) { return (uint64_t)(uintptr_t)p; }

static int map_identity(uint64_t base, uint64_t end, uint64_t attrs)
{
	return end > base ? mmu_map(base, base, end - base, attrs) : 0;
}

/* The kernel image, W^X, with the stack guard pages left unmapped.  Mapped
 * last, so it overrides the RAM mapping around it. */
static int map_kernel(void)
{
	return map_identity(pa(__text_start), pa(__text_end), MAP_TEXT) ||
	       map_identity(pa(__rodata_start), pa(__rodata_end), MAP_RODATA) ||
	       map_identity(pa(__data_start), pa(__kernel_end), MAP_RAM) ||
	       mmu_map(pa(__boot_stack_guard), pa(__boot_stack_guard), 4096, MAP_UNMAPPED) ||
	       mmu_map(pa(__exc_stack_guard), pa(__exc_stack_guard), 4096, MAP_UNMAPPED);
}

/* with_ram = 0: the minimal map (MMIO + kernel image) used to report a
 * broken DTB or an exhausted table pool. */
static int build_tables(int with_ram)
{
	mmu_reset();
	if (map_identity(VIRT_MMIO_BASE, VIRT_RAM_BASE, MAP_DEVICE))
		return -1;
	if (with_ram) {
		for (int i = 0; i < nram; i++) {
			/* whole pages only: round inward */
			uint64_t b = (ram[i].base + 0xfff) & ~0xffful;
			uint64_t e = (ram[i].base + ram[i].size) & ~0xffful;
			if (e > mmu_phys_limit())   /* boot_add_ram says so */
				e = mmu_phys_limit();
			if (map_identity(b, e, MAP_RAM))
				return -1;
		}
		uint32_t dsize = fdt.totalsize;
		if (!inside_ram(pa(aarch64_dtb), dsize) &&
		    map_identity(pa(aarch64_dtb), pa(aarch64_dtb) + dsize, MAP_RODATA))
			return -1;
	}
	return map_kernel();
}

static void fill_boot_info(const void *dtb)
{
	bi.arch = "aarch64";
	bi.firmware = "DTB";
	bi.direct_map_offset = 0;
	bi.phys_limit = mmu_phys_limit();
	bi.kernel_base = pa(__kernel_start);
	bi.kernel_end = pa(__kernel_end);
	for (int i = 0; i < nram; i++)
		boot_add_ram(&bi, ram[i].base, ram[i].size);
	boot_add_reserved(&bi, pa(__kernel_start), pa(__kernel_end) - pa(__kernel_start));
	boot_add_reserved(&bi, mmu_tables_base(), mmu_tables_size());
	boot_add_reserved(&bi, pa(dtb), fdt.totalsize);
	for (int i = 0; i < nrsv; i++)
		boot_add_reserved(&bi, rsv[i].base, rsv[i].size);
	if (initrd_end > initrd_start)
		boot_add_reserved(&bi, initrd_start, initrd_end - initrd_start);
}

/* Called by boot.S at EL1 with the MMU off. */
_Noreturn void aarch64_start(uint64_t x0, uint64_t boot_el);
void aarch64_start(uint64_t x0, uint64_t boot_el)
{
	uint64_t t_entry = read_cntvct();
	aarch64_boot_el = (unsigned)boot_el;

	const void *dtb = find_dtb(x0);
	int dtb_ok = parse_dtb(dtb) == 0;
	int tables_ok = build_tables(dtb_ok) == 0;
	if (!tables_ok && build_tables(0) != 0)
		arch_halt();   /* cannot happen: the minimal map needs 5 tables */
	mmu_enable();
	aarch64_pmu_enable();

	/* From here on kernel/ code is safe to call. */
	if (!dtb_ok)
		panic("aarch64: device tree at %p: %s: %s%s", dtb, dtb_what, fdt_strerror(dtb_err),
		      dtb_err == FDT_ERR_BADMAGIC
			      ? " (QEMU places the DTB at 0x40000000 only when the kernel"
				" is linked at >= 0x40200000)"
			      : "");
	if (!tables_ok)
		panic("aarch64: translation table pool (%llu KiB) too small for %d RAM regions",
		      (unsigned long long)mmu_tables_size() / 1024, nram);

	bi.entry_cycles = t_entry;
	fill_boot_info(dtb);
	kmain(&bi);
}

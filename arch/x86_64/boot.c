/*
 * arch/x86_64/boot.c - from boot.S to kmain(): read the PVH start info,
 * build the final page tables, describe memory in struct boot_info.
 *
 * On entry (see boot.S) the boot page tables identity-map the low 4 GiB,
 * so the PVH structures, which QEMU puts at 32-bit physical addresses, can
 * be read directly through their physical address.  Everything we need
 * from them is copied before x86_paging_init() removes that identity map.
 *
 *   x86_boot_main(start_info)
 *     rdtsc                        -> bi.entry_cycles
 *     serial, TSS/NX, IDT          faults from here on are reported
 *     check magic, copy cmdline
 *     RAM list: type 1 only, shrunk to whole pages, sorted, merged,
 *       clipped at the direct map / CPU address width (boot_add_e820)
 *     RSDP address                 for acpi.c (read after mm_init)
 *     x86_paging_init()            direct map + kernel image, CR3 switch
 *     boot_add_ram / boot_add_reserved   (incl. the AP trampoline page)
 *     kmain(&bi)
 */
#include <stdint.h>
#include <string.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/exit.h>
#include "pvh.h"
#include "x86.h"

/* The direct map ends where the kernel-image window would start; stop well
 * short of it: 64 TiB of physical address space is plenty. */
#define DIRECT_MAP_MAX_PHYS (1ull << 46)

static struct boot_info bi;
static struct x86_range ram[BOOT_MAX_REGIONS];
struct x86_paging_result x86_boot_pt;
struct x86_range x86_boot_pvh[3];   /* start_info, memmap, cmdline */

_Noreturn void x86_boot_main(uint32_t start_info_phys);

_Noreturn void x86_boot_fail(const char *msg)
{
	x86_serial_puts("strata: boot failed: ");
	x86_serial_puts(msg);
	x86_serial_puts("\n");
	arch_exit(EXIT_PANIC);
}

static uint64_t page_down(uint64_t x)
{
	return x & ~(PAGE_SIZE - 1);
}

static uint64_t page_up(uint64_t x)
{
	return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

static void copy_cmdline(const struct hvm_start_info *si)
{
	const char *src = (const char *)(uintptr_t)si->cmdline_paddr;
	unsigned i = 0;

	if (si->cmdline_paddr)
		for (; i < BOOT_CMDLINE_MAX - 1 && src[i]; i++)
			bi.cmdline[i] = src[i];
	bi.cmdline[i] = '\0';
}

/* Physical addresses the direct map can reach: below its end and below
 * the CPU's physical address width (CPUID 0x80000008 EAX[7:0]). */
static uint64_t phys_limit(void)
{
	unsigned bits = x86_phys_bits();

	return bits < 46 ? 1ull << bits : DIRECT_MAP_MAX_PHYS;
}

/* Usable RAM from the PVH memory map (an E820 map): type 1 only, shrunk
 * inwards to whole pages, sorted, merged, clipped at phys_limit
 * (kernel/bootinfo.c reports every entry it cannot take as given). */
static void collect_ram(const struct hvm_start_info *si)
{
	_Static_assert(sizeof(struct hvm_memmap_entry) == sizeof(struct boot_e820_entry),
		       "PVH memmap entries are E820 entries");
	bi.phys_limit = phys_limit();
	boot_add_e820(&bi, (const struct boot_e820_entry *)(uintptr_t)si->memmap_paddr,
		      si->memmap_entries);
	if (!bi.nram)
		x86_boot_fail("no usable RAM in the PVH memory map");
	for (unsigned i = 0; i < bi.nram; i++)
		ram[i] = (struct x86_range){ bi.ram[i].base, bi.ram[i].base + bi.ram[i].size };
}

static void reserve(uint64_t base, uint64_t end)
{
	base = page_down(base);
	end = page_up(end);
	if (base < end)
		boot_add_reserved(&bi, base, end - base);
}

void x86_boot_main(uint32_t start_info_phys)
{
	const struct hvm_start_info *si =
		(const struct hvm_start_info *)(uintptr_t)start_info_phys;
	struct x86_range *avoid = x86_boot_pvh;
	uint64_t cmdline_len;

	bi.entry_cycles = rdtsc();
	x86_serial_init();
	x86_cpu_init_boot();
	x86_idt_init();

	if (si->magic != PVH_START_MAGIC)
		x86_boot_fail("bad PVH start_info magic (not booted via PVH?)");
	if (si->version < 1 || !si->memmap_paddr)
		x86_boot_fail("PVH start_info has no memory map (version 0)");

	if (si->memmap_paddr + si->memmap_entries * sizeof(struct hvm_memmap_entry) > 0x100000000ull ||
	    si->cmdline_paddr >= 0x100000000ull - BOOT_CMDLINE_MAX)
		x86_boot_fail("PVH memory map or command line above 4 GiB");

	bi.arch = "x86_64";
	bi.firmware = "PVH";
	bi.direct_map_offset = X86_DIRECT_MAP;
	copy_cmdline(si);
	collect_ram(si);
	x86_rsdp_phys = si->rsdp_paddr;

	/* The page tables must not land on what we have not finished reading. */
	cmdline_len = si->cmdline_paddr ? strlen((const char *)(uintptr_t)si->cmdline_paddr) + 1 : 0;
	avoid[0] = (struct x86_range){ start_info_phys, start_info_phys + sizeof(*si) };
	avoid[1] = (struct x86_range){ si->memmap_paddr, si->memmap_paddr +
				       si->memmap_entries * sizeof(struct hvm_memmap_entry) };
	avoid[2] = (struct x86_range){ si->cmdline_paddr, si->cmdline_paddr + cmdline_len };
	x86_paging_init(ram, bi.nram, avoid, 3, &x86_boot_pt);
	/* From here on physical memory is only reachable via the direct map. */

	bi.kernel_base = kimg_phys(__kernel_start);
	bi.kernel_end = kimg_phys(__kernel_end);
	reserve(0, PAGE_SIZE);                       /* real-mode IVT + BDA */
	reserve(X86_TRAMPOLINE, X86_TRAMPOLINE + PAGE_SIZE);   /* smp.c */
	reserve(kimg_phys(__kernel_start), kimg_phys(__kernel_end));
	reserve(x86_boot_pt.pt_base, x86_boot_pt.pt_end);
	for (unsigned i = 0; i < 3; i++)
		reserve(avoid[i].base, avoid[i].end);

	kmain(&bi);
}

/*
 * boot.h - what an architecture's boot stub hands to kmain().
 *
 * Each arch/<name>/ boot stub brings the CPU to a state where C runs with
 * the MMU on and all RAM reachable through the direct map, then fills one
 * struct boot_info from the firmware's description of memory (PVH start
 * info on x86_64, the flattened device tree on aarch64) and calls kmain().
 *
 *   phys 0 ............................................ top of RAM
 *        [ram[0]]   hole   [ram[1] ..........]  hole  [ram[2] ...]
 *           ^^^ reserved[] ranges may overlap any of these (kernel image,
 *               boot page tables, firmware tables, DTB, /memreserve/)
 *
 * virt = phys + direct_map_offset for every byte of every ram[] region.
 */
#ifndef KERNEL_BOOT_H
#define KERNEL_BOOT_H

#include <stdint.h>

#define BOOT_MAX_REGIONS 128
#define BOOT_CMDLINE_MAX 512

struct boot_region {
	uint64_t base;
	uint64_t size;
};

struct boot_info {
	const char *arch;            /* "x86_64", "aarch64" */
	const char *firmware;        /* "PVH", "DTB", ... for the banner */
	char cmdline[BOOT_CMDLINE_MAX];  /* kernel command line, NUL-terminated */
	uint64_t direct_map_offset;  /* virt = phys + offset for all RAM */
	uint64_t phys_limit;         /* RAM at or above is not addressable (the
	                                direct map's end, the CPU's physical
	                                address width): boot_add_ram() clips
	                                there; 0 = no limit */
	uint64_t kernel_base, kernel_end;  /* the kernel image, physical */
	unsigned nram;               /* usable RAM, sorted by base, disjoint */
	struct boot_region ram[BOOT_MAX_REGIONS];
	unsigned nreserved;          /* never handed out; sorted, merged; may
	                                cover holes and RAM edges */
	struct boot_region reserved[BOOT_MAX_REGIONS];
	uint64_t entry_cycles;       /* arch_cycles() at the first C instruction */
};

/* Provided by kernel/, called once by the boot stub on the boot CPU. */
_Noreturn void kmain(struct boot_info *bi);

/* Helpers for boot stubs filling boot_info (kernel/bootinfo.c).  Set
 * phys_limit first.  Malformed entries are reported and handled as
 * bootinfo.c's opening comment lists (a reservation that does not fit
 * panics; nothing else does). */
void boot_add_ram(struct boot_info *bi, uint64_t base, uint64_t size);
void boot_add_reserved(struct boot_info *bi, uint64_t base, uint64_t size);

/* An E820 / PVH memory map entry (struct hvm_memmap_entry has this layout). */
struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;       /* BOOT_E820_RAM is usable RAM; others are skipped */
	uint32_t reserved;
};
#define BOOT_E820_RAM 1

/* The RAM entries of an E820 map, shrunk inwards to whole pages. */
void boot_add_e820(struct boot_info *bi, const struct boot_e820_entry *e, unsigned n);

/* Say (one "boot: ..." line each) when the kernel image is not inside
 * reported RAM, and when no RAM lies above it. */
void boot_check_kernel(const struct boot_info *bi);

#endif

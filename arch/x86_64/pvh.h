/*
 * arch/x86_64/pvh.h - the PVH boot ABI's start info, as QEMU fills it.
 *
 * %ebx at the 32-bit entry point holds the physical address of a
 * struct hvm_start_info.  All "paddr" fields are physical addresses; boot.c
 * reads them through the boot identity map (low 4 GiB) before the final
 * page tables replace it.
 *
 *   start_info (+0)  magic 0x336ec578, version, flags, nr_modules,
 *             (+24)  cmdline_paddr  -> "test=all seed=7\0"
 *             (+40)  memmap_paddr   -> hvm_memmap_entry[memmap_entries]
 *             (+48)  memmap_entries
 */
#ifndef ARCH_X86_64_PVH_H
#define ARCH_X86_64_PVH_H
#include <stdint.h>

#define PVH_START_MAGIC 0x336ec578u

/* Memory map entry types (the E820 numbering). */
#define PVH_MEMMAP_RAM      1
#define PVH_MEMMAP_RESERVED 2
#define PVH_MEMMAP_ACPI     3
#define PVH_MEMMAP_NVS      4
#define PVH_MEMMAP_BAD      5

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;            /* >= 1 for the memmap fields */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;      /* +24 */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;       /* +40 */
	uint32_t memmap_entries;     /* +48 */
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "PVH memmap entry is 24 bytes");
_Static_assert(__builtin_offsetof(struct hvm_start_info, cmdline_paddr) == 24, "PVH layout");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_paddr) == 40, "PVH layout");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_entries) == 48, "PVH layout");

#endif

/*
 * arch/riscv64/setup.c - from _start to kmain(): device tree, memory map,
 * Sv39 paging, struct boot_info.
 *
 * Physical memory of QEMU -M virt -m 512M as this file sees it (identity
 * mapped, so these are also the virtual addresses):
 *
 *   0x00000000  boot ROM, CLINT, PLIC, virtio,  unmapped (NULL faults), except
 *               PCIe, ...                        two MMIO pages, read/write:
 *   0x00100000    sifive,test1 (exit)
 *   0x10000000    ns16550a UART
 *   0x80000000  OpenSBI (M-mode firmware)       /reserved-memory mmode_resv0,
 *                                                PMP-protected: not RAM to us,
 *                                                never mapped
 *   0x80200000  kernel image                    RAM, reserved, W^X:
 *                 .text                            read + execute
 *                 .rodata (+ .ktest)               read-only
 *                 .data, .bss: tables, stacks      read/write (guard pages unmapped)
 *   __kernel_end ... top of RAM                 free RAM, read/write, not executable
 *                 (the DTB near the top: reserved)
 *
 * RISC-V has no "MMU off means Device memory": with satp = 0 RAM is RAM, so
 * the order here is for clarity, as on aarch64: parse the DTB with fdt.c,
 * build the tables, satp on, and only then call into kernel/.  A broken DTB
 * does not hang the boot: the tables then cover the MMIO pages and the
 * image, paging goes on, and panic() names the problem.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fdt.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/panic.h>
#include "riscv64.h"

#define DTB_MAX_SIZE (16u << 20)   /* the largest blob we are willing to read */

uint64_t riscv_boot_hartid;
int riscv_ncpus = 1;
const void *riscv_dtb;
uint64_t riscv_timebase_hz = 10000000;   /* QEMU virt's, until the DTB says */
const char *riscv_isa;

static struct boot_info bi;
static struct fdt fdt;
static struct fdt_region ram[BOOT_MAX_REGIONS], rsv[BOOT_MAX_REGIONS];
static int nram, nrsv;
/* firmware-only ranges taken out of ram[]: not RAM, so not reservations */
static struct fdt_region fw[16];
static int nfw;
static uint64_t initrd_start, initrd_end;

static const char *dtb_what;
static int dtb_err;

static int fail(const char *what, int err)
{
	dtb_what = what;
	dtb_err = err;
	return err;
}

static uint64_t prop_number(int node, const char *name)
{
	int len;
	const void *p = fdt_getprop(&fdt, node, name, &len);
	return p && (len == 4 || len == 8) ? fdt_read_cells(p, len / 4) : 0;
}

/* Take [base, base + size) out of ram[] (splitting a region in two if it
 * falls inside).  -1 if ram[] is full. */
static int ram_remove(uint64_t base, uint64_t size)
{
	uint64_t end = base + size;
	for (int i = 0; i < nram; i++) {
		uint64_t rb = ram[i].base, re = rb + ram[i].size;
		if (end <= rb || base >= re)
			continue;
		if (base > rb && end < re) {   /* a hole in the middle: split */
			if (nram >= BOOT_MAX_REGIONS)
				return -1;
			memmove(&ram[i + 2], &ram[i + 1], (size_t)(nram - i - 1) * sizeof ram[0]);
			nram++;
			ram[i + 1].base = end;
			ram[i + 1].size = re - end;
			ram[i].size = base - rb;
			i++;
		} else if (base <= rb && end >= re) {   /* all of it */
			memmove(&ram[i], &ram[i + 1], (size_t)(nram - i - 1) * sizeof ram[0]);
			nram--;
			i--;
		} else if (base <= rb) {               /* its start */
			ram[i].base = end;
			ram[i].size = re - end;
		} else {                               /* its end */
			ram[i].size = base - rb;
		}
	}
	return 0;
}

/* Memory S-mode must never touch is not RAM to us (not in the memory map,
 * not in the page tables): /reserved-memory children marked "no-map", and
 * OpenSBI's own "mmode_resv*" nodes - its firmware image, which PMP
 * forbids S-mode to access.  (OpenSBI 1.1 adds no-map to those only on
 * harts without PMP; with PMP an access is an access fault.)  Other
 * reservations stay RAM, reserved. */
static int firmware_only(int node)
{
	const char *name = fdt_node_name(&fdt, node, NULL);
	return fdt_getprop(&fdt, node, "no-map", NULL) ||
	       (name && !strncmp(name, "mmode_resv", 10));
}

static int remove_firmware_ranges(void)
{
	int rm = fdt_path_offset(&fdt, "/reserved-memory");
	if (rm < 0)
		return rm == FDT_ERR_NOTFOUND ? 0 : rm;
	int ac = fdt_address_cells(&fdt, rm), sc = fdt_size_cells(&fdt, rm);
	if (ac < 0 || sc < 0)
		return ac < 0 ? ac : sc;
	for (int node = fdt_first_child(&fdt, rm); node >= 0; node = fdt_next_sibling(&fdt, node)) {
		if (!fdt_node_available(&fdt, node) || !firmware_only(node))
			continue;
		uint64_t base, size;
		for (int i = 0; fdt_reg(&fdt, node, ac, sc, i, &base, &size) == 0; i++) {
			if (size && ram_remove(base, size))
				return FDT_ERR_NOSPACE;
			if (nfw < (int)(sizeof fw / sizeof fw[0]))
				fw[nfw++] = (struct fdt_region){ base, size };
		}
	}
	return 0;
}

/* timebase-frequency and the boot hart's riscv,isa from /cpus. */
static void read_cpus(void)
{
	int cpus = fdt_path_offset(&fdt, "/cpus");
	if (cpus < 0)
		return;
	uint64_t tb = prop_number(cpus, "timebase-frequency");
	if (tb)
		riscv_timebase_hz = tb;
	struct fdt_cpu list[64];
	int n = fdt_cpus(&fdt, list, 64);
	riscv_ncpus = n < 1 ? 1 : n;
	for (int i = 0; i < n && i < 64; i++)
		if (list[i].id == riscv_boot_hartid)
			riscv_isa = fdt_getprop_string(&fdt, list[i].node, "riscv,isa");
}

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
	err = remove_firmware_ranges();
	if (err)
		return fail("/reserved-memory firmware ranges", err);
	if (nram == 0)
		return fail("/memory minus firmware ranges", FDT_ERR_NOTFOUND);
	err = fdt_bootargs(&fdt, bi.cmdline, sizeof bi.cmdline);
	if (err < 0)
		return fail("/chosen bootargs", err);
	int chosen = fdt_path_offset(&fdt, "/chosen");
	if (chosen >= 0) {
		initrd_start = prop_number(chosen, "linux,initrd-start");
		initrd_end = prop_number(chosen, "linux,initrd-end");
	}
	read_cpus();
	riscv_dtb = dtb;
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
	if (mmu_map(VIRT_TEST_BASE, VIRT_TEST_BASE, 4096, MAP_DEVICE) ||
	    mmu_map(VIRT_UART_BASE, VIRT_UART_BASE, 4096, MAP_DEVICE))
		return -1;
	if (with_ram) {
		for (int i = 0; i < nram; i++) {
			uint64_t b = (ram[i].base + 0xfff) & ~0xffful;   /* whole pages: inward */
			uint64_t e = (ram[i].base + ram[i].size) & ~0xffful;
			if (e > mmu_phys_limit())   /* boot_add_ram says so */
				e = mmu_phys_limit();
			if (map_identity(b, e, MAP_RAM))
				return -1;
		}
		uint32_t dsize = fdt.totalsize;
		if (!inside_ram(pa(riscv_dtb), dsize) &&
		    map_identity(pa(riscv_dtb), pa(riscv_dtb) + dsize, MAP_RODATA))
			return -1;
	}
	return map_kernel();
}

static int is_firmware_range(const struct fdt_region *r)
{
	for (int i = 0; i < nfw; i++)
		if (fw[i].base == r->base && fw[i].size == r->size)
			return 1;
	return 0;
}

static void fill_boot_info(const void *dtb)
{
	bi.arch = "riscv64";
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
		if (!is_firmware_range(&rsv[i]))
			boot_add_reserved(&bi, rsv[i].base, rsv[i].size);
	if (initrd_end > initrd_start)
		boot_add_reserved(&bi, initrd_start, initrd_end - initrd_start);
}

/* "..._zbb_..." or "..._zbb" in a riscv,isa string */
static int isa_has(const char *isa, const char *ext)
{
	size_t n = strlen(ext);
	for (const char *p = isa; p && (p = strchr(p, '_')); p++)
		if (!strncmp(p + 1, ext, n) && (p[1 + n] == '_' || p[1 + n] == 0))
			return 1;
	return 0;
}

/* Called by boot.S in S-mode, satp = 0. */
_Noreturn void riscv_start(uint64_t hartid, const void *dtb);
void riscv_start(uint64_t hartid, const void *dtb)
{
	uint64_t t_entry = arch_cycles();
	riscv_boot_hartid = hartid;

	int dtb_ok = parse_dtb(dtb) == 0;
	int tables_ok = build_tables(dtb_ok) == 0;
	if (!tables_ok && build_tables(0) != 0)
		arch_halt();   /* cannot happen: the minimal map needs 4 tables */
	mmu_enable();

	/* From here on kernel/ code is safe to call. */
	if ((csr_read(satp) >> 60) != 8)
		panic("riscv64: this hart has no Sv39 (satp reads 0x%llx)",
		      (unsigned long long)csr_read(satp));
	if (!dtb_ok)
		panic("riscv64: device tree at %p: %s: %s", dtb, dtb_what, fdt_strerror(dtb_err));
	if (!tables_ok)
		panic("riscv64: page table pool (%llu KiB) too small for %d RAM regions",
		      (unsigned long long)mmu_tables_size() / 1024, nram);
	if (riscv_isa && !isa_has(riscv_isa, "zbb"))
		panic("riscv64: built for Zbb (arch/riscv64/arch.mk) but hart %llu's riscv,isa "
		      "is \"%s\"", (unsigned long long)hartid, riscv_isa);

	bi.entry_cycles = t_entry;
	fill_boot_info(dtb);
	kmain(&bi);
}

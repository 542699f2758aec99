/*
 * arch/riscv64/mmu.c - Sv39 page tables: an identity direct map, satp on.
 *
 * Sv39: 39-bit virtual addresses (sign-extended from bit 38), three levels
 * of 512 eight-byte entries, 4 KiB pages, virt == phys here
 * (direct_map_offset 0: all RAM of QEMU virt sits at 0x80000000 and up,
 * well inside the lower 256 GiB half):
 *
 *   38      30 29      21 20      12 11         0
 *  +----------+----------+----------+------------+
 *  | VPN[2]   | VPN[1]   | VPN[0]   | page offset|
 *  +----------+----------+----------+------------+
 *
 *   satp (MODE 8 = Sv39, PPN of the root) -> level 0 table (512 x 1 GiB)
 *        entry = 1 GiB gigapage or table -> level 1 (512 x 2 MiB)
 *          entry = 2 MiB megapage or table -> level 2 (512 x 4 KiB pages)
 *
 * What QEMU -M virt -m 512M gets:
 *
 *   L0[0]  0x00000000 -> L1 -> L2: the sifive,test1 page (0x100000) and the
 *                              16550 page (0x10000000), read/write, never
 *                              executable; everything else unmapped, so
 *                              NULL and arch_unmapped_address() fault
 *   L0[2]  0x80000000 -> L1: RAM in 2 MiB megapages (OpenSBI's no-map
 *                              range left out), except
 *                              L1[1] 0x80200000 -> L2: the kernel image in
 *                              pages (text R X, rodata R, data/bss R W,
 *                              stack guards unmapped)
 *   all else invalid (a page fault)
 *
 * Entry bits: V valid | R W X permissions (none = a pointer to the next
 * table) | U user (never) | G global | A accessed | D dirty | PPN << 10.
 * A and D are preset: the privileged spec lets hardware fault instead of
 * setting them.  There are no memory types without Svpbmt: the platform's
 * PMAs make MMIO uncached.  Tables come from a static pool in .noinit
 * (boot_info reserves it; pt_alloc() zeroes each table it hands out).
 */
#include <stddef.h>
#include <stdint.h>
#include "riscv64.h"

#define PT_ENTRIES    512
#define PT_POOL_PAGES 32
#define VA_LIMIT      (1ul << 38)   /* the lower half of Sv39 */

typedef uint64_t pte_t;

static pte_t pt_pool[PT_POOL_PAGES][PT_ENTRIES]
	__attribute__((aligned(4096), section(".bss.noinit.pagetables")));
static unsigned pt_used;

static pte_t *pt_alloc(void)
{
	if (pt_used >= PT_POOL_PAGES)
		return NULL;
	pte_t *t = pt_pool[pt_used++];
	for (int i = 0; i < PT_ENTRIES; i++)
		t[i] = 0;
	return t;
}

/* Start over with an empty root table (pt_pool[0]). */
void mmu_reset(void)
{
	pt_used = 0;
	pt_alloc();
}

static unsigned level_shift(int level) { return 30 - 9 * (unsigned)level; }
static int is_table(pte_t e) { return (e & PTE_V) && !(e & PTE_LEAF); }
static pte_t table_entry(const pte_t *t)
{
	return ((uint64_t)(uintptr_t)t >> 12) << PTE_PPN_SHIFT | PTE_V;
}

/* The table an entry points to, creating it (or splitting a gigapage or
 * megapage into 512 smaller leaves with the same permissions). */
static pte_t *next_table(pte_t *e, int level)
{
	if (is_table(*e))
		return (pte_t *)(uintptr_t)pte_pa(*e);
	pte_t *t = pt_alloc();
	if (!t)
		return NULL;
	if (*e & PTE_V) {   /* a leaf: split it */
		uint64_t child = 1ul << level_shift(level + 1);
		uint64_t flags = *e & ((1ul << PTE_PPN_SHIFT) - 1);
		for (int i = 0; i < PT_ENTRIES; i++)
			t[i] = ((pte_pa(*e) + i * child) >> 12) << PTE_PPN_SHIFT | flags;
	}
	*e = table_entry(t);
	return t;
}

/* Map [va, end) -> pa in the table at `level`: whole aligned entries become
 * leaves (1 GiB, 2 MiB, 4 KiB), the rest goes one level down. */
static int map_level(pte_t *table, int level, uint64_t va, uint64_t end, uint64_t pa,
		     uint64_t attrs)
{
	uint64_t size = 1ul << level_shift(level);
	while (va < end) {
		pte_t *e = &table[(va >> level_shift(level)) % PT_ENTRIES];
		uint64_t next = (va & ~(size - 1)) + size;
		uint64_t stop = next < end ? next : end;
		int whole = !(va & (size - 1)) && stop == next && !(pa & (size - 1));

		if (whole) {
			/* (a table previously here is dropped, not freed) */
			*e = attrs == MAP_UNMAPPED ? 0 : (pa >> 12) << PTE_PPN_SHIFT | attrs;
		} else if (attrs != MAP_UNMAPPED || (*e & PTE_V)) {
			pte_t *t = next_table(e, level);
			if (!t || map_level(t, level + 1, va, stop, pa, attrs))
				return -1;
		}
		pa += stop - va;
		va = stop;
	}
	return 0;
}

/* Map (or with MAP_UNMAPPED, unmap) [va, va + size) to pa in whole pages
 * (widened to page boundaries).  Later calls override earlier ones.  -1 if
 * the pool ran out or the range leaves the lower half of Sv39. */
int mmu_map(uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs)
{
	uint64_t off = va & 0xfff;
	if ((pa & 0xfff) != off)
		return -1;
	va -= off;
	pa -= off;
	size = (size + off + 0xfff) & ~0xffful;
	if (!size)
		return 0;
	if (va >= VA_LIMIT || size > VA_LIMIT - va)
		return -1;
	if (!pt_used)
		mmu_reset();
	return map_level(pt_pool[0], 0, va, va + size, pa, attrs);
}

/*
 * Unmap one page of the live tables, e.g. a guard page below a stack
 * allocated at run time.  A gigapage or megapage over it is split off to
 * the side (the new table filled first), then swapped in with one store and
 * an sfence.vma: RISC-V needs no break-before-make, but only this hart's
 * TLB is flushed, so no other hart may be running yet (smp.c allocates
 * every stack before the first hart_start).  -1 if the pool ran out.
 */
int mmu_unmap_page(uint64_t va)
{
	pte_t *t = pt_pool[0];
	va &= ~0xffful;
	for (int level = 0; pt_used && va < VA_LIMIT; level++) {
		pte_t *e = &t[(va >> level_shift(level)) % PT_ENTRIES];
		if (!(*e & PTE_V))
			return 0;
		if (is_table(*e)) {
			t = (pte_t *)(uintptr_t)pte_pa(*e);
			continue;
		}
		if (level == 2) {
			*e = 0;
		} else {
			pte_t repl = *e;
			pte_t *sub = next_table(&repl, level);
			if (!sub || map_level(sub, level + 1, va, va + 4096, va, MAP_UNMAPPED))
				return -1;
			*e = repl;
		}
		sfence_vma(va);
		return 0;
	}
	return 0;
}

/* Software walk of the live tables: the leaf entry for va (0 if unmapped);
 * *level gets the level it was found at (0 = 1 GiB, 1 = 2 MiB, 2 = 4 KiB). */
uint64_t mmu_walk(uint64_t va, int *level)
{
	const pte_t *t = pt_pool[0];
	if (!pt_used || va >= VA_LIMIT)
		return 0;
	for (int l = 0; l <= 2; l++) {
		pte_t e = t[(va >> level_shift(l)) % PT_ENTRIES];
		if (!(e & PTE_V))
			return 0;
		if (!is_table(e)) {
			if (level)
				*level = l;
			return e;
		}
		if (l == 2)
			return 0;   /* a pointer where a leaf must be: treat as unmapped */
		t = (const pte_t *)(uintptr_t)pte_pa(e);
	}
	return 0;
}

uint64_t mmu_tables_base(void) { return (uint64_t)(uintptr_t)pt_pool; }
uint64_t mmu_tables_size(void) { return sizeof pt_pool; }
unsigned mmu_tables_used(void) { return pt_used; }
/* The identity map lives in the lower half of Sv39: RAM at or above
 * VA_LIMIT cannot be mapped, so it cannot be used. */
uint64_t mmu_phys_limit(void) { return VA_LIMIT; }

uint64_t mmu_satp(void) { return SATP_MODE_SV39 | (uint64_t)(uintptr_t)pt_pool[0] >> 12; }

/* Translation on.  Everything we run is identity mapped, so the next
 * instruction is fetched from the same address through the tables.  satp
 * is WARL: a hart without Sv39 keeps MODE 0 (setup.c checks). */
void mmu_enable(void)
{
	sfence_vma_all();
	csr_write(satp, mmu_satp());
	sfence_vma_all();
}

/*
 * ---- page protection for strata's guard pages (mm_platform_protect) ----
 *
 * The range lies in the identity map of RAM, made of megapages (2 MiB)
 * or gigapages (1 GiB).  The first call on one splits it, one level at a
 * time, into a table of 512 leaves with the same permissions (off to the
 * side, then one store: RISC-V needs no break-before-make; a hart may use
 * the old leaf or the new table until its sfence.vma, both map the same
 * way), down to 4 KiB pages (tables from the static pool; strata's guard
 * pool is one 2 MiB PFA block, so one split covers it).  Then each page:
 * MM_PROT_NONE clears V (the rest of the entry is kept, so read/write can
 * put it back), MM_PROT_READ clears W.
 *
 * TLBs: sfence.vma reaches only this hart, so a change that takes rights
 * away is also sent to every other online hart through the SBI RFENCE
 * extension (sbi_remote_sfence_vma: the firmware interrupts each one in
 * M-mode, whatever its SIE, and returns once all have fenced).  Opening a
 * page (read/write) fences only here: another hart holding the invalid
 * entry (the spec allows caching it) takes a spurious page fault, which
 * mm_guard_fault sees as already open; traps.c fences that hart locally
 * and retries.
 */
#include <strata/platform.h>
#include <kernel/smp.h>

/* The level-2 (4 KiB) entry mapping va, any leaf above it split; NULL if
 * va is not mapped or the pool ran out.  *split: a leaf was split. */
static pte_t *page_entry(uint64_t va, int *split)
{
	pte_t *t = pt_pool[0];

	if (!pt_used || va >= VA_LIMIT)
		return NULL;
	for (int level = 0; level < 2; level++) {
		pte_t *e = &t[(va >> level_shift(level)) % PT_ENTRIES];
		if (!(*e & PTE_V))
			return NULL;
		if (!is_table(*e)) {
			pte_t repl = *e;
			if (!next_table(&repl, level))
				return NULL;
			__asm__ volatile("fence rw, rw" ::: "memory");   /* table before pointer */
			*e = repl;
			*split = 1;
		}
		t = (pte_t *)(uintptr_t)pte_pa(*e);
	}
	return &t[(va >> 12) % PT_ENTRIES];
}

int mmu_remote_sfence(uint64_t va, uint64_t bytes)
{
	unsigned n = smp_ncpus(), self = arch_cpu_id();
	unsigned long mask = 0;
	long base = 0;

	if (n <= 1)
		return 0;
	for (unsigned c = 0; c < n; c++) {
		uint64_t h = riscv_cpu_hartid(c);
		if (c == self)
			continue;
		if (h >= 64)
			base = -1;          /* SBI: hart_mask_base -1 = every hart */
		else
			mask |= 1ul << h;
	}
	return sbi_call4(SBI_EXT_RFENCE, SBI_RFENCE_SFENCE_VMA, (long)mask, base, (long)va,
			 (long)bytes).error == 0 ? 0 : -1;
}

int mm_platform_protect(void *va, size_t bytes, int prot)
{
	uint64_t v = (uint64_t)(uintptr_t)va;
	int split = 0;

	for (uint64_t o = 0; o < bytes; o += 4096) {
		pte_t *e = page_entry(v + o, &split);
		if (!e)
			return -1;
		pte_t d = *e | PTE_V | PTE_R | PTE_W;
		if (prot == MM_PROT_NONE)
			d &= ~PTE_V;
		else if (prot == MM_PROT_READ)
			d &= ~PTE_W;
		*e = d;
	}
	if (split || bytes > 64 * 4096)
		sfence_vma_all();
	else
		for (uint64_t o = 0; o < bytes; o += 4096)
			sfence_vma(v + o);
	if (prot == MM_PROT_RW && !split)
		return 0;
	/* after a split, every hart flushes everything (start 0, size -1:
	 * the whole address space): it may hold the big leaf */
	return split ? mmu_remote_sfence(0, ~0ul) : mmu_remote_sfence(v, bytes);
}

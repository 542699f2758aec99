/*
 * arch/aarch64/mmu.c - identity-mapped translation tables, MMU on.
 *
 * Translation regime: EL1&0 stage 1, TTBR0_EL1 only (TTBR1 walks disabled),
 * 4 KiB granule, 48-bit virtual addresses, virt == phys (direct_map_offset 0).
 * A 48-bit VA is split into four 9-bit table indexes and a 12-bit offset:
 *
 *   47      39 38      30 29      21 20      12 11         0
 *  +----------+----------+----------+----------+------------+
 *  | L0 index | L1 index | L2 index | L3 index | page offset|
 *  +----------+----------+----------+----------+------------+
 *
 *   TTBR0_EL1 -> L0 table (512 x 512 GiB)
 *                  `-> L1 table (512 x 1 GiB)  entry = 1 GiB block or table
 *                        `-> L2 table (512 x 2 MiB)  = 2 MiB block or table
 *                              `-> L3 table (512 x 4 KiB pages)
 *
 * What QEMU -M virt -m 512M gets (one 2 MiB-aligned kernel image):
 *
 *   L1[0]  0x00000000  -> L2: [0x08000000,0x40000000) Device 2 MiB blocks;
 *                              0 .. 0x08000000 (flash) unmapped, so NULL faults
 *   L1[1]  0x40000000  -> L2: RAM in 2 MiB blocks, except
 *                              L2[1] 0x40200000 -> L3: kernel image in pages
 *                              (text RX, rodata R, data/bss RW, stack guards
 *                              unmapped)
 *   all else invalid (a translation fault)
 *
 * Descriptor (block/page) bits we use:
 *
 *   63   54  53  47            12  11  10  9:8  7:6  4:2      1  0
 *   | UXN | PXN | output address | nG | AF | SH | AP | AttrIdx | T | V |
 *
 *   AttrIdx -> MAIR_EL1:  0 = Device-nGnRE (MMIO)
 *                         1 = Normal, write-back read/write-allocate (RAM)
 *                         2 = Normal non-cacheable (unused, for DMA later)
 *   SH = 11 inner shareable; AF = 1 (no access-flag faults); AP[2] = read-only.
 *
 * Tables come from a static pool in .noinit (boot_info reports it reserved;
 * pt_alloc() zeroes each table as it hands it out).
 * They are written with the MMU off, where data accesses do not allocate in
 * the caches; mmu_enable() therefore invalidates every cache line that might
 * shadow what we wrote (stale lines from before boot) before the table
 * walker and our own cacheable accesses can see them.
 */
#include <stddef.h>
#include <stdint.h>
#include "aarch64.h"

#define PT_ENTRIES    512
#define PT_POOL_PAGES 24
#define VA_BITS       48
#define MAIR_VALUE    (0x04ul << (8 * MT_DEVICE_nGnRE) | \
		       0xfful << (8 * MT_NORMAL) |       \
		       0x44ul << (8 * MT_NORMAL_NC))

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

/* Start over with an empty L0 table (pt_pool[0]). */
void mmu_reset(void)
{
	pt_used = 0;
	pt_alloc();
}

static unsigned level_shift(int level) { return 39 - 9 * (unsigned)level; }

/* The table an entry points to, creating it (or splitting a block into 512
 * smaller ones with the same attributes) if needed.  Only safe while the
 * MMU is off or the range is not in use: no break-before-make here. */
static pte_t *next_table(pte_t *e, int level)
{
	if ((*e & (PTE_VALID | PTE_TABLE)) == (PTE_VALID | PTE_TABLE) && level < 3)
		return (pte_t *)(uintptr_t)(*e & PTE_ADDR);
	pte_t *t = pt_alloc();
	if (!t)
		return NULL;
	if (*e & PTE_VALID) {   /* a block: split it */
		uint64_t child = 1ul << level_shift(level + 1);
		uint64_t attrs = *e & ~PTE_ADDR & ~(PTE_VALID | PTE_TABLE);
		uint64_t type = level + 1 == 3 ? PTE_VALID | PTE_TABLE : PTE_VALID;
		for (int i = 0; i < PT_ENTRIES; i++)
			t[i] = ((*e & PTE_ADDR) + i * child) | attrs | type;
	}
	*e = (uint64_t)(uintptr_t)t | PTE_VALID | PTE_TABLE;
	return t;
}

/* Map [va, end) -> pa in the table at `level`: whole aligned entries
 * become blocks (1 GiB at L1, 2 MiB at L2) or pages (L3), the rest goes
 * one level down.  Recursion depth is at most 4. */
static int map_level(pte_t *table, int level, uint64_t va, uint64_t end,
		     uint64_t pa, uint64_t attrs)
{
	uint64_t size = 1ul << level_shift(level);
	while (va < end) {
		pte_t *e = &table[(va >> level_shift(level)) % PT_ENTRIES];
		uint64_t next = (va & ~(size - 1)) + size;
		uint64_t stop = next < end ? next : end;
		int whole = !(va & (size - 1)) && stop == next && !(pa & (size - 1));

		if (whole && level >= 1) {
			uint64_t type = level == 3 ? PTE_VALID | PTE_TABLE : PTE_VALID;
			/* (a table previously here is dropped, not freed) */
			*e = attrs == MAP_UNMAPPED ? 0 : pa | attrs | type;
		} else if (attrs != MAP_UNMAPPED || (*e & PTE_VALID)) {
			pte_t *t = next_table(e, level);
			if (!t || map_level(t, level + 1, va, stop, pa, attrs))
				return -1;
		}
		pa += stop - va;
		va = stop;
	}
	return 0;
}

/* Map (or with MAP_UNMAPPED, unmap) [va, va + size) to pa, in whole 4 KiB
 * pages (the range is widened to page boundaries).  Later calls override
 * earlier ones.  -1 if the table pool ran out or the range is beyond the
 * 48-bit address space. */
int mmu_map(uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs)
{
	uint64_t off = va & 0xfff;
	if ((pa & 0xfff) != off)
		return -1;   /* va and pa must share the offset within a page */
	va -= off;
	pa -= off;
	size = (size + off + 0xfff) & ~0xffful;
	if (!size)
		return 0;
	if (va >= (1ul << VA_BITS) || size > (1ul << VA_BITS) - va)
		return -1;
	if (!pt_used)
		mmu_reset();
	return map_level(pt_pool[0], 0, va, va + size, pa, attrs);
}

/* Make a live descriptor's change visible: no walker or TLB may keep the
 * old one (on every CPU: the inner-shareable TLBI broadcasts). */
static void tlb_flush_va(uint64_t va)
{
	__asm__ volatile("dsb ishst\n\ttlbi vaae1is, %0\n\tdsb ish\n\tisb"
			 : : "r"(va >> 12) : "memory");
}

/*
 * Unmap one page of the live tables, e.g. a guard page below a stack
 * allocated at run time.  If a block maps it, the replacement subtree
 * (the block split down to pages, minus this one) is built off to the
 * side, then swapped in break-before-make: the Arm ARM requires the old
 * entry to be invalidated and its TLB entries flushed before a block is
 * replaced by a table.  Between "break" and "make" the whole block is
 * unmapped, so nothing the caller touches may live in it: fine for this
 * code (kernel image, boot stack, table pool are mapped apart from RAM
 * blocks), and no other CPU may be running.  -1 if the pool ran out.
 */
int mmu_unmap_page(uint64_t va)
{
	pte_t *t = pt_pool[0];
	va &= ~0xffful;
	for (int level = 0; pt_used && va < (1ul << VA_BITS); level++) {
		pte_t *e = &t[(va >> level_shift(level)) % PT_ENTRIES];
		if (!(*e & PTE_VALID))
			return 0;
		if (level == 3) {
			*e = 0;
			tlb_flush_va(va);
			return 0;
		}
		if (*e & PTE_TABLE) {
			t = (pte_t *)(uintptr_t)(*e & PTE_ADDR);
			continue;
		}
		pte_t repl = *e;
		pte_t *sub = next_table(&repl, level);
		if (!sub || map_level(sub, level + 1, va, va + 4096, va, MAP_UNMAPPED))
			return -1;
		*e = 0;                   /* break */
		tlb_flush_va(va);
		*e = repl;                /* make (invalid entries are never cached) */
		__asm__ volatile("dsb ishst\n\tisb" ::: "memory");
		return 0;
	}
	return 0;
}

/* Software walk of the live tables: the leaf descriptor for va (0 if
 * unmapped); *level gets the level it was found at. */
uint64_t mmu_walk(uint64_t va, int *level)
{
	const pte_t *t = pt_pool[0];
	if (!pt_used || va >= (1ul << VA_BITS))
		return 0;
	for (int l = 0; l <= 3; l++) {
		pte_t e = t[(va >> level_shift(l)) % PT_ENTRIES];
		if (!(e & PTE_VALID))
			return 0;
		if (l == 3 || !(e & PTE_TABLE)) {
			if (level)
				*level = l;
			return e;
		}
		t = (const pte_t *)(uintptr_t)(e & PTE_ADDR);
	}
	return 0;
}

uint64_t mmu_tables_base(void) { return (uint64_t)(uintptr_t)pt_pool; }
uint64_t mmu_tables_size(void) { return sizeof pt_pool; }
unsigned mmu_tables_used(void) { return pt_used; }

/* Physical address size for TCR_EL1.IPS, from ID_AA64MMFR0_EL1.PARange:
 * 0..5 = 32, 36, 40, 42, 44, 48 bits.  A 4 KiB granule without FEAT_LPA2
 * outputs at most 48 bits, so larger values are capped at 5. */
static uint64_t tcr_ips(void)
{
	uint64_t parange = sysreg_read(id_aa64mmfr0_el1) & 0xf;
	return parange > 5 ? 5 : parange;
}

/* The identity map reaches below 2^48 (VA_BITS) and below the CPU's
 * physical address size: RAM above either cannot be used. */
uint64_t mmu_phys_limit(void)
{
	static const unsigned bits[6] = { 32, 36, 40, 42, 44, 48 };
	unsigned b = bits[tcr_ips()];
	return 1ul << (b < VA_BITS ? b : VA_BITS);
}

/* Invalidate data cache lines by VA to the point of coherency. */
static void dcache_inval_range(uintptr_t start, uintptr_t end)
{
	uint64_t line = 4ul << ((sysreg_read(ctr_el0) >> 16) & 0xf);   /* DminLine */
	for (uintptr_t p = start & ~(line - 1); p < end; p += line)
		__asm__ volatile("dc ivac, %0" : : "r"(p) : "memory");
	dsb_sy();
}

/*
 * The switch-on sequence.  Everything we run is identity mapped, so the
 * instruction after the SCTLR write is fetched from the same address
 * through the new tables.
 *
 *   1. dsb: table writes complete; invalidate stale cache lines over
 *      .data/.bss (tables, stacks, boot_info: all written with MMU off)
 *   2. MAIR, TCR, TTBR0 (+ isb so the walker uses them)
 *   3. tlbi vmalle1 + dsb: no stale translations; ic iallu: no stale code
 *   4. SCTLR_EL1 |= M | C | I, isb
 */
void mmu_enable(void)
{
	uint64_t tcr = (64ul - VA_BITS) << 0 |   /* T0SZ: 48-bit TTBR0 space */
		       1ul << 8 |                 /* IRGN0: walks write-back cacheable */
		       1ul << 10 |                /* ORGN0 */
		       3ul << 12 |                /* SH0: inner shareable */
		       0ul << 14 |                /* TG0: 4 KiB granule */
		       (64ul - VA_BITS) << 16 |   /* T1SZ (unused) */
		       1ul << 23 |                /* EPD1: no TTBR1 walks */
		       tcr_ips() << 32;           /* IPS */

	dsb_sy();
	dcache_inval_range((uintptr_t)__data_start, (uintptr_t)__kernel_end);
	sysreg_write(mair_el1, MAIR_VALUE);
	sysreg_write(tcr_el1, tcr);
	sysreg_write(ttbr0_el1, (uint64_t)(uintptr_t)pt_pool[0]);
	isb();
	__asm__ volatile("tlbi vmalle1\n\tdsb nsh\n\tic iallu\n\tdsb nsh\n\tisb" ::: "memory");
	sysreg_write(sctlr_el1, sysreg_read(sctlr_el1) | SCTLR_M | SCTLR_C | SCTLR_I);
	isb();
}

/*
 * ---- page protection for strata's guard pages (mm_platform_protect) ----
 *
 * The range lies in the identity map of RAM, made of 2 MiB (L2) or 1 GiB
 * (L1) blocks.  The first call on a block splits it, one level at a time,
 * into a table of the next level with the same output addresses and
 * attributes, down to L3 pages (tables from the static pool; strata's
 * guard pool is one 2 MiB PFA block, so one split to pages covers it).
 * A live block may not be replaced by a table in one store (the Arm ARM's
 * break-before-make rule: two TLB entries for one address would conflict),
 * so each split is
 *
 *   new table filled off to the side        (not yet reachable)
 *   bbm = [block)                           (for other CPUs' faults)
 *   *e = 0; dsb ishst; tlbi vaae1is; dsb ish; isb        break
 *   *e = table; dsb ishst; isb                           make
 *   bbm = empty
 *
 * Between break and make the whole block is unmapped: nothing this code
 * touches lives there (the kernel image, its stacks and the table pool
 * are mapped apart from the RAM blocks), and another CPU that touches it
 * takes a translation fault, which traps.c hands to mmu_bbm_wait(): it
 * waits for the make and retries the access.
 *
 * Then each page: MM_PROT_NONE clears the valid bit (the rest of the
 * descriptor is kept, so read/write can put it back), MM_PROT_READ sets
 * AP[2].  A descriptor that was valid is flushed with the inner-shareable
 * TLBI (tlb_flush_va), which every CPU of the inner-shareable domain
 * obeys before the dsb ish completes: no CPU keeps using the old entry.
 * An invalid descriptor is never cached, so making one valid needs only
 * dsb ishst + isb.
 */
#include <strata/platform.h>

static volatile uint64_t bbm_lo, bbm_hi;   /* block being split, [lo, hi) */

int mmu_bbm_wait(uint64_t va)
{
	if (!(va >= bbm_lo && va < bbm_hi))
		return 0;
	while (va >= bbm_lo && va < bbm_hi)
		__asm__ volatile("yield" ::: "memory");
	__asm__ volatile("dsb ish\n\tisb" ::: "memory");
	return 1;
}

/* Replace the live block *e (at `level`, covering va) by a table of the
 * next level, break-before-make.  -1 if the table pool is empty. */
static int split_live_block(pte_t *e, int level, uint64_t va)
{
	uint64_t size = 1ul << level_shift(level), base = va & ~(size - 1);
	pte_t repl = *e;

	if (!next_table(&repl, level))
		return -1;
	bbm_lo = base;
	bbm_hi = base + size;
	*e = 0;                                   /* break */
	tlb_flush_va(base);
	*e = repl;                                /* make */
	__asm__ volatile("dsb ishst\n\tisb" ::: "memory");
	bbm_hi = 0;
	bbm_lo = 0;
	return 0;
}

/* The L3 descriptor mapping va, any block above it split; NULL if va is
 * not mapped or the pool ran out. */
static pte_t *page_entry(uint64_t va)
{
	pte_t *t = pt_pool[0];

	if (!pt_used || va >= (1ul << VA_BITS))
		return NULL;
	for (int level = 0; level < 3; level++) {
		pte_t *e = &t[(va >> level_shift(level)) % PT_ENTRIES];
		if (!(*e & PTE_VALID))
			return NULL;
		if (!(*e & PTE_TABLE) && (level == 0 || split_live_block(e, level, va) != 0))
			return NULL;
		t = (pte_t *)(uintptr_t)(*e & PTE_ADDR);
	}
	return &t[(va >> 12) % PT_ENTRIES];
}

int mm_platform_protect(void *va, size_t bytes, int prot)
{
	uint64_t v = (uint64_t)(uintptr_t)va;

	for (uint64_t o = 0; o < bytes; o += 4096) {
		pte_t *e = page_entry(v + o);
		if (!e)
			return -1;
		pte_t old = *e, d = (old | PTE_VALID) & ~PTE_RO;
		if (prot == MM_PROT_NONE)
			d &= ~PTE_VALID;
		else if (prot == MM_PROT_READ)
			d |= PTE_RO;
		*e = d;
		if (old & PTE_VALID)
			tlb_flush_va(v + o);
	}
	__asm__ volatile("dsb ishst\n\tisb" ::: "memory");
	return 0;
}

/*
 * arch/x86_64/paging.c - the kernel's final page tables.
 *
 * 4-level paging, 4 KiB translation granule.  A virtual address splits as
 *
 *   63      48 47    39 38    30 29    21 20    12 11        0
 *   [sign ext ][ PML4  ][ PDPT  ][  PD   ][  PT   ][ offset   ]
 *
 * A PD entry with PS set maps a whole 2 MiB page; otherwise it points to a
 * PT of 512 4 KiB pages.  (qemu64 has no 1 GiB pages, so no PS in PDPTs.)
 *
 * What we build (see x86.h for the whole address-space picture):
 *
 *   PML4[0..255]   empty: NULL and every user address fault
 *   PML4[256..]    direct map of each RAM region from the PVH memory map:
 *                  virt = 0xffff800000000000 + phys.  2 MiB pages where a
 *                  2 MiB frame lies wholly inside the region, 4 KiB pages
 *                  at unaligned edges, so no byte of a hole (MMIO, ROM,
 *                  firmware tables) is mapped as cacheable RAM.
 *                  Read/write, no-execute.
 *   PML4[511]      the kernel image at 0xffffffff80000000 + phys, 4 KiB
 *                  pages: .text read-only+exec, .rodata read-only,
 *                  .data/.bss read/write; the page below the boot stack is
 *                  left unmapped (a guard page).
 *
 * Page-table pages come from a bump allocator over RAM just after the
 * kernel image (skipping the PVH start info, memory map and command line).
 * Its size is an upper bound computed from the memory map, so any amount of
 * RAM works (64 GiB takes ~70 pages, 1 TiB ~530 pages).  While we build, the
 * boot page tables (boot.S) still identity-map the low 4 GiB, so the pool
 * is addressed by its physical address; it must therefore lie below 4 GiB.
 *
 * After boot two more kinds of mapping are added (for smp.c and acpi.c):
 *
 *   PML4[511] PDPT[0]  x86_map_late(): MMIO, firmware tables and AP stacks
 *                      at 0xffffff8000000000 upwards, each above an
 *                      unmapped guard page; its page tables come from
 *                      strata's page-frame allocator (mm_init() has run).
 *   PML4[0]            x86_identity_map_page(): the AP trampoline page at
 *                      its physical address, through three static tables,
 *                      only while APs switch on paging; then removed.
 */
#include <stdint.h>
#include <string.h>
#include "x86.h"

#define PT_ENTRIES 512
#define LOW_4G     0x100000000ull

/* Page-table pages are at virtual address phys + pt_window: the identity
 * map while building, the direct map once the new tables are live. */
static uint64_t pt_window;
static uint64_t pool_next, pool_end;
static int pool_closed;         /* boot pool done: use pfa_alloc() */
static uint64_t pte_nx;
static uint64_t late_next = X86_LATE_MAP;

static uint64_t *pt_virt(uint64_t phys)
{
	return (uint64_t *)(uintptr_t)(phys + pt_window);
}

static uint64_t pt_alloc(void)
{
	uint64_t p = pool_next;

	if (pool_closed) {
		p = pfa_alloc(0, PFA_ZERO);
		if (!p)
			x86_boot_fail("out of memory for page tables");
		return p;
	}
	if (p + PAGE_SIZE > pool_end)
		x86_boot_fail("page-table pool exhausted");
	pool_next += PAGE_SIZE;
	memset(pt_virt(p), 0, PAGE_SIZE);
	return p;
}

/* The table that entry idx of `table` points to, created if absent.
 * Intermediate entries are permissive (writable, executable); the leaf
 * entries carry the real permissions. */
static uint64_t *pt_next(uint64_t *table, unsigned idx)
{
	if (!(table[idx] & PTE_P))
		table[idx] = pt_alloc() | PTE_P | PTE_W;
	else if (table[idx] & PTE_PS)
		x86_boot_fail("overlapping mappings");
	return pt_virt(table[idx] & PTE_ADDR);
}

static uint64_t *pd_for(uint64_t *pml4, uint64_t va)
{
	uint64_t *pdpt = pt_next(pml4, (va >> 39) & 511);

	return pt_next(pdpt, (va >> 30) & 511);
}

static void map_4k(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pt = pt_next(pd_for(pml4, va), (va >> 21) & 511);

	pt[(va >> 12) & 511] = pa | flags | PTE_P;
}

static void map_2m(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t flags)
{
	pd_for(pml4, va)[(va >> 21) & 511] = pa | flags | PTE_P | PTE_PS;
}

/* Map [va, va + size) to [pa, ...): big pages wherever alignment allows. */
static void map_range(uint64_t *pml4, uint64_t va, uint64_t pa, uint64_t size,
		      uint64_t flags)
{
	while (size) {
		if (((va | pa) & (LARGE_PAGE_SIZE - 1)) == 0 && size >= LARGE_PAGE_SIZE) {
			map_2m(pml4, va, pa, flags);
			va += LARGE_PAGE_SIZE;
			pa += LARGE_PAGE_SIZE;
			size -= LARGE_PAGE_SIZE;
		} else {
			map_4k(pml4, va, pa, flags);
			va += PAGE_SIZE;
			pa += PAGE_SIZE;
			size -= PAGE_SIZE;
		}
	}
}

/* Number of aligned 2^shift blocks that [va, va_end) touches. */
static uint64_t span(uint64_t va, uint64_t va_end, unsigned shift)
{
	return ((va_end - 1) >> shift) - (va >> shift) + 1;
}

/* Upper bound on the page-table pages we will allocate. */
static uint64_t pages_needed(const struct x86_range *ram, unsigned nram)
{
	uint64_t ks = (uint64_t)(uintptr_t)__kernel_start;
	uint64_t ke = (uint64_t)(uintptr_t)__kernel_end;
	uint64_t n = 1;                                 /* PML4 */

	n += 1 + span(ks, ke, 30) + span(ks, ke, 21);   /* kernel image */
	for (unsigned i = 0; i < nram; i++) {
		uint64_t va = X86_DIRECT_MAP + ram[i].base;
		uint64_t va_end = X86_DIRECT_MAP + ram[i].end;

		n += span(va, va_end, 39) + span(va, va_end, 30) + 2;
	}
	return n;
}

static int overlaps(uint64_t b, uint64_t e, const struct x86_range *r)
{
	return b < r->end && r->base < e;
}

/* First place after the kernel image, inside one RAM region, below 4 GiB
 * and clear of every `avoid` range, that holds `bytes`. */
static uint64_t pool_place(const struct x86_range *ram, unsigned nram,
			   const struct x86_range *avoid, unsigned navoid, uint64_t bytes)
{
	uint64_t kend = kimg_phys(__kernel_end);

	for (unsigned i = 0; i < nram; i++) {
		uint64_t b = ram[i].base > kend ? ram[i].base : kend;
		unsigned j = 0;

		while (j < navoid && b + bytes <= ram[i].end && b + bytes <= LOW_4G) {
			if (overlaps(b, b + bytes, &avoid[j])) {
				b = (avoid[j].end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
				j = 0;                  /* moved: check all again */
			} else {
				j++;
			}
		}
		if (j == navoid && b + bytes <= ram[i].end && b + bytes <= LOW_4G)
			return b;
	}
	x86_boot_fail("no room for the page tables below 4 GiB");
}

static void map_kernel(uint64_t *pml4)
{
	uint64_t guard = (uint64_t)(uintptr_t)__boot_stack_guard;
	uint64_t va;

	map_range(pml4, (uint64_t)(uintptr_t)__text_start, kimg_phys(__text_start),
		  (uint64_t)(__text_end - __text_start), 0);
	map_range(pml4, (uint64_t)(uintptr_t)__rodata_start, kimg_phys(__rodata_start),
		  (uint64_t)(__rodata_end - __rodata_start), pte_nx);
	for (va = (uint64_t)(uintptr_t)__data_start;
	     va < (uint64_t)(uintptr_t)__kernel_end; va += PAGE_SIZE)
		if (va != guard)
			map_4k(pml4, va, va - X86_KERNEL_VMA, PTE_W | pte_nx);
}

void x86_paging_init(const struct x86_range *ram, unsigned nram,
		     const struct x86_range *avoid, unsigned navoid,
		     struct x86_paging_result *out)
{
	uint64_t bytes = pages_needed(ram, nram) * PAGE_SIZE;
	uint64_t pool = pool_place(ram, nram, avoid, navoid, bytes);
	uint64_t pml4_phys;
	uint64_t *pml4;

	pte_nx = x86_has_nx() ? PTE_NX : 0;
	pt_window = 0;
	pool_next = pool;
	pool_end = pool + bytes;

	pml4_phys = pt_alloc();
	pml4 = pt_virt(pml4_phys);
	map_kernel(pml4);
	for (unsigned i = 0; i < nram; i++)
		map_range(pml4, X86_DIRECT_MAP + ram[i].base, ram[i].base,
			  ram[i].end - ram[i].base, PTE_W | pte_nx);

	write_cr3(pml4_phys);       /* identity map gone; TLB flushed */
	pt_window = X86_DIRECT_MAP;
	pool_closed = 1;

	out->pt_base = pool;
	out->pt_end = pool_next;
	out->cr3 = pml4_phys;
}

/* Walk the live page tables for va: the leaf entry (PT entry, or PD entry
 * with PS set), or 0 if va is not mapped.  For tests and debugging. */
uint64_t x86_pte_lookup(uint64_t va)
{
	uint64_t *table = pt_virt(read_cr3() & PTE_ADDR);

	for (int shift = 39; shift >= 12; shift -= 9) {
		uint64_t e = table[(va >> shift) & 511];

		if (!(e & PTE_P))
			return 0;
		if (shift == 12 || (shift == 21 && (e & PTE_PS)))
			return e;
		table = pt_virt(e & PTE_ADDR);
	}
	return 0;
}

static uint64_t *live_pml4(void)
{
	return pt_virt(read_cr3() & PTE_ADDR);
}

/* Fresh virtual addresses, never reused: nothing mapped this way is ever
 * unmapped.  The page skipped before each mapping is its guard page. */
void *x86_map_late(uint64_t pa, uint64_t size, uint64_t flags)
{
	uint64_t off = pa & (PAGE_SIZE - 1);
	uint64_t bytes = (off + size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	uint64_t va = late_next + PAGE_SIZE;

	if (va + bytes > X86_LATE_MAP + (1ull << 30))
		x86_boot_fail("late-mapping window (1 GiB) full");
	for (uint64_t o = 0; o < bytes; o += PAGE_SIZE)
		map_4k(live_pml4(), va + o, pa - off + o, flags);
	late_next = va + bytes;
	return (void *)(uintptr_t)(va + off);
}

/* PML4[0] -> ident_pdpt -> ident_pd -> ident_pt -> the page: static, so
 * starting APs needs no allocation and removal frees nothing. */
static uint64_t ident_pdpt[PT_ENTRIES] __attribute__((aligned(4096)));
static uint64_t ident_pd[PT_ENTRIES] __attribute__((aligned(4096)));
static uint64_t ident_pt[PT_ENTRIES] __attribute__((aligned(4096)));

void x86_identity_map_page(uint64_t pa)
{
	ident_pt[(pa >> 12) & 511] = pa | PTE_P;              /* read + exec */
	ident_pd[(pa >> 21) & 511] = kimg_phys(ident_pt) | PTE_P | PTE_W;
	ident_pdpt[(pa >> 30) & 511] = kimg_phys(ident_pd) | PTE_P | PTE_W;
	live_pml4()[0] = kimg_phys(ident_pdpt) | PTE_P | PTE_W;
}

void x86_identity_unmap(void)
{
	live_pml4()[0] = 0;
	memset(ident_pdpt, 0, sizeof(ident_pdpt));
	memset(ident_pd, 0, sizeof(ident_pd));
	memset(ident_pt, 0, sizeof(ident_pt));
	write_cr3(read_cr3());      /* flush this CPU's TLB (no global pages) */
}

/* ---- page protection for strata's guard pages (mm_platform_protect) ----
 *
 * The range is in the direct map, where RAM is mapped with 2 MiB pages:
 * the first call on a 2 MiB page splits it into a page table of 512
 * 4 KiB entries with the same address and flags (the guard pool is one
 * 2 MiB PFA block, so one split covers it; the tables come from the PFA,
 * as x86_map_late's do).  "None" clears the present bit and keeps the
 * address, so read/write can put it back.  TLB: invlpg on this CPU (the
 * split reloads CR3), then a shootdown of the range on every other online
 * CPU (smp.c: an NMI each, acknowledged), so no CPU can go on using a
 * stale entry of a freshly protected page.  Opening a page (read/write)
 * skips the shootdown: x86 caches no not-present entries, and a stale
 * entry with fewer rights only faults, which mm_guard_fault sees as
 * already open and retries (the fault drops the stale entry). */
#include <strata/platform.h>

static uint64_t *split_2m(uint64_t *pde)
{
	uint64_t e = *pde, pa = e & PTE_ADDR & ~(LARGE_PAGE_SIZE - 1);
	uint64_t flags = e & ~PTE_ADDR & ~PTE_PS;     /* bit 12 (PAT of a 2 MiB page) is in PTE_ADDR */
	uint64_t t = pfa_alloc(0, PFA_ZERO);

	if (!t)
		return NULL;
	uint64_t *pt = pt_virt(t);
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		pt[i] = (pa + ((uint64_t)i << 12)) | flags;
	*pde = t | PTE_P | PTE_W;
	write_cr3(read_cr3());
	return pt;
}

static uint64_t *pte_for(uint64_t va)
{
	uint64_t *table = live_pml4();

	for (int shift = 39; shift > 21; shift -= 9) {
		uint64_t e = table[(va >> shift) & 511];
		if (!(e & PTE_P))
			return NULL;
		table = pt_virt(e & PTE_ADDR);
	}
	uint64_t *pde = &table[(va >> 21) & 511];
	if (!(*pde & PTE_P))
		return NULL;
	uint64_t *pt = (*pde & PTE_PS) ? split_2m(pde) : pt_virt(*pde & PTE_ADDR);
	return pt ? &pt[(va >> 12) & 511] : NULL;
}

int mm_platform_protect(void *va, size_t bytes, int prot)
{
	uint64_t v = (uint64_t)(uintptr_t)va;

	if (v < X86_DIRECT_MAP || v >= X86_LATE_MAP)
		return -1;
	for (uint64_t o = 0; o < bytes; o += PAGE_SIZE) {
		uint64_t *pte = pte_for(v + o);
		if (!pte)
			return -1;
		uint64_t e = *pte & ~(PTE_P | PTE_W);
		if (prot != MM_PROT_NONE)
			e |= PTE_P | (prot == MM_PROT_RW ? PTE_W : 0);
		*pte = e;
		__asm__ volatile("invlpg (%0)" ::"r"(v + o) : "memory");
	}
	/* only a change that takes rights away needs the other CPUs: a
	 * stale entry with fewer rights just faults, and is retried */
	return prot == MM_PROT_RW ? 0 : x86_tlb_shootdown(v, bytes);
}

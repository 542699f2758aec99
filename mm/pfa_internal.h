/*
 * pfa_internal.h - the page-frame allocator's state, shared by mm/pfa*.c.
 *
 * Private to the PFA layer (mm/LAYERS; scripts/check-layers enforces it):
 * only mm/pfa*.c include it, and two declared readers: the heap dump
 * (mm/heapdump.c), which walks the descriptor sections, and the kmem
 * caches (mm/slab.c), whose free fast path finds a slab's descriptor
 * with pfa_phys_inline / pfa_page_inline (below).  The public interface
 * is strata/pfa.h.  See mm/pfa.c for the big picture.
 *
 * Page frame index
 * ----------------
 * The PFA numbers pages from the start of the span it manages, not from
 * physical address 0:
 *
 *     idx = (pa - pfa.base) >> PAGE_SHIFT          pfa.base is aligned to
 *     pa  = pfa.base + ((phys_addr_t)idx << PAGE_SHIFT)   one section
 *
 * so a 32-bit index reaches 16 TiB of span wherever the RAM sits (a hosted
 * test's "physical" memory lives near 2^47).  Because pfa.base is aligned
 * to a section, which is at least one largest block, an index is aligned
 * to 2^k exactly when its physical address is aligned to 2^k pages, and
 * the buddy of block `idx` of order k is simply idx ^ (1 << k).
 *
 * Section table: index -> descriptor in O(1)
 * -------------------------------------------
 *
 *   idx >> sec_shift ──► section[]  (PFA_SECTIONS entries, static)
 *                         ┌───────────────┐
 *                         │ first,end=0,0 │ no RAM here: no descriptors
 *                         │ bias ─────────┼──► struct page[end - first]
 *                         │ first, end    │    (inside managed RAM)
 *                         └───────────────┘
 *
 *   descriptor(idx) = (struct page *)(section[idx >> sec_shift].bias
 *                                     + idx * sizeof(struct page))
 *
 * `bias` is the address of the section's descriptor array minus
 * first * 16, so no subtraction is needed on the lookup.  [first, end) is
 * the part of the section that holds RAM, widened to whole largest blocks
 * so that every buddy of a page that has a descriptor has one too.
 */
#ifndef MM_PFA_INTERNAL_H
#define MM_PFA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/pfa.h>
#include <strata/spinlock.h>

#define PFA_NIL UINT32_MAX          /* end of a free list */
#define PFA_SECTIONS 512            /* entries in the section table */
#define PFA_MAX_RESERVED 256        /* reservations remembered at setup */
#define PFA_BLOCK_PAGES(order) ((uint32_t)1 << (order))

struct pfa_section {
	uintptr_t bias;   /* &descriptors[0] - first * sizeof(struct page) */
	uint32_t first;   /* page indices [first, end) have descriptors */
	uint32_t end;
};

struct pfa_range {
	phys_addr_t base;
	phys_addr_t end;  /* exclusive */
};

struct pfa_state {
	/* --- hot: touched by every pfa_alloc()/pfa_free() --- */
	mm_spinlock_t lock;
	uint32_t nonempty;                         /* bit k: free_head[k] != NIL */
	uint32_t free_head[PFA_MAX_ORDER + 1];     /* first block of each order */
	unsigned sec_shift;                        /* log2(pages per section) */
	uint32_t npages;                           /* indices [0, npages) */
	phys_addr_t base;                          /* address of index 0 */
	uintptr_t offset;                          /* virt = phys + offset */
	uint64_t free_pages;
	uint64_t low_water;
	uint64_t nr_free[PFA_MAX_ORDER + 1];       /* blocks per order */

	/* --- cold --- */
	bool ready;                                /* pfa_setup_end() succeeded */
	uint64_t bad_calls;
	struct pfa_report last;
	uint64_t total_pages;
	uint64_t reserved_pages;
	uint64_t metadata_bytes;
	struct pfa_range meta;                     /* where the descriptors live */
	unsigned nregions;
	struct pfa_range region[PFA_MAX_REGIONS];  /* page-trimmed, sorted after setup */
	unsigned nreserved;
	struct pfa_range reserved[PFA_MAX_RESERVED];
	struct pfa_section section[PFA_SECTIONS];

	/* fresh mode (pfa_setup_fresh()): pages [lazy_next, lazy_end) are
	 * free, counted in free_pages, but on no list, and their descriptors
	 * are still the zeroes of fresh memory; pfa_lazy_grow() writes them
	 * 4 MiB (PFA_LAZY_ORDER) at a time when the lists run dry. */
	bool fresh;
	uint32_t lazy_next, lazy_end;              /* PFA_LAZY_PAGES aligned */
};

#define PFA_LAZY_ORDER (PFA_MAX_ORDER < 10 ? PFA_MAX_ORDER : 10)
#define PFA_LAZY_PAGES PFA_BLOCK_PAGES(PFA_LAZY_ORDER)

extern struct pfa_state pfa;

/* ---- index, address, descriptor ---- */

static inline struct page *pfa_idx_page(uint32_t idx)
{
	return (struct page *)(pfa.section[idx >> pfa.sec_shift].bias +
			       (uintptr_t)idx * sizeof(struct page));
}

static inline phys_addr_t pfa_idx_phys(uint32_t idx)
{
	return pfa.base + ((phys_addr_t)idx << PAGE_SHIFT);
}

/* Index of pa, or PFA_NIL when pa has no descriptor.  Any alignment.
 * pa below the span wraps around to a huge offset; sections past the
 * last one have first == end == 0. */
static inline uint32_t pfa_phys_idx(phys_addr_t pa)
{
	phys_addr_t off = pa - pfa.base;
	if ((off >> PAGE_SHIFT >> pfa.sec_shift) >= PFA_SECTIONS)
		return PFA_NIL;
	uint32_t idx = (uint32_t)(off >> PAGE_SHIFT);
	const struct pfa_section *s = &pfa.section[idx >> pfa.sec_shift];
	if (idx < s->first || idx >= s->end)
		return PFA_NIL;
	return idx;
}

/* pfa_phys() and pfa_page() (strata/pfa.h) inline: the direct map's
 * offset, then the section lookup.  pfa.c's out-of-line versions are
 * these; kmem_cache_free's fast path (mm/slab.c, a declared reader in
 * mm/LAYERS) uses them so that it makes no call and needs no frame. */
static inline phys_addr_t pfa_phys_inline(const void *va)
{
	return (phys_addr_t)((uintptr_t)va - pfa.offset);
}

static inline struct page *pfa_page_inline(phys_addr_t pa)
{
	uint32_t idx = pfa_phys_idx(pa);
	if (idx == PFA_NIL)
		return NULL;
	struct page *pg = pfa_idx_page(idx);
	return pg->owner == PG_UNMANAGED ? NULL : pg;
}

/*
 * The head of the block (free or allocated) holding page idx.  The PFA
 * writes only heads: every other page of a block, free or allocated, is
 * PG_FREE_TAIL (set when the memory was described, and when a merge made
 * a head an inner page; see pfa.c, "Page descriptors").  The head is the
 * nearest index at or below idx, aligned to some order <= PFA_MAX_ORDER,
 * whose descriptor is not PG_FREE_TAIL: clearing the lowest set bit of
 * idx's offset in its largest block, one probe per set bit, at most
 * PFA_MAX_ORDER probes.  idx must have a descriptor; PFA_NIL if the
 * descriptors break that rule (pfa_check() reports it).
 */
static inline uint32_t pfa_head_idx(uint32_t idx)
{
	const struct page *pg = pfa_idx_page(idx);
	uint32_t head = idx;

	while (pg->owner == PG_FREE_TAIL) {
		uint32_t low = head & (PFA_BLOCK_PAGES(PFA_MAX_ORDER) - 1);
		if (!low)
			return PFA_NIL;
		low &= -low;               /* up to the next aligned boundary */
		head -= low;
		pg -= low;
	}
	return head;
}

/* The free block of order >= `order` holding page idx (its order in
 * *found), or PFA_NIL if that page is in an allocated block, reserved,
 * or in a free block smaller than `order`. */
static inline uint32_t pfa_free_block_of(uint32_t idx, unsigned order, unsigned *found)
{
	uint32_t head = pfa_head_idx(idx);
	if (head == PFA_NIL)
		return PFA_NIL;
	const struct page *hp = pfa_idx_page(head);
	if (hp->owner != PG_FREE || hp->order < order)
		return PFA_NIL;
	*found = hp->order;
	return head;
}

/* Owners whose page is the head of an allocated block: a table, so the
 * test is one load whatever byte the descriptor holds. */
extern const uint8_t pfa_allocated_head[256];

static inline bool pfa_is_allocated_head(unsigned owner)
{
	return pfa_allocated_head[owner & 0xff];
}

/* ---- free lists (doubly linked through next/prev indices) ---- */

static inline void pfa_list_push(unsigned order, uint32_t idx, struct page *pg)
{
	uint32_t head = pfa.free_head[order];

	pg->owner = PG_FREE;
	pg->order = (uint8_t)order;
	pg->next = head;
	pg->prev = PFA_NIL;
	if (head != PFA_NIL)
		pfa_idx_page(head)->prev = idx;
	pfa.free_head[order] = idx;
	pfa.nonempty |= 1u << order;
	pfa.nr_free[order]++;
}

static inline void pfa_list_remove(unsigned order, uint32_t idx, struct page *pg)
{
	if (pg->prev != PFA_NIL)
		pfa_idx_page(pg->prev)->next = pg->next;
	else
		pfa.free_head[order] = pg->next;
	if (pg->next != PFA_NIL)
		pfa_idx_page(pg->next)->prev = pg->prev;
	if (pfa.free_head[order] == PFA_NIL)
		pfa.nonempty &= ~(1u << order);
	pfa.nr_free[order]--;
}

/* ---- shared between files ---- */

/* Print one report line, count it, remember it.  Lock held. */
void pfa_report_bad(enum pfa_report_kind kind, phys_addr_t pa, unsigned order,
		    uint64_t detail, void *caller);

/* Fresh mode, lock held: describe and list lazy pages up to at least
 * index `upto` (exclusive; clipped to the lazy span), or, for
 * pfa_lazy_grow, enough for one block of `order`.  false: none left. */
void pfa_lazy_materialize_upto(uint32_t upto);
bool pfa_lazy_grow(unsigned order);

/* mm-local memset to zero (no libc in mm/). */
void pfa_zero(void *p, size_t n);

/* pfa_check.c: put the PFA's lock and check in mm_lock_all/mm_check_all
 * (mm/layer.h); pfa_setup_end() calls it. */
void pfa_layer_register(void);

#endif

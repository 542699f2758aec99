/*
 * strata/pfa.h - level 0: the page-frame allocator (buddy system).
 *
 * The PFA owns every page of RAM the firmware reported.  It hands out
 * naturally aligned blocks of 2^order pages and keeps one 16-byte
 * descriptor (struct page) per page, which the layers above use to record
 * who owns a page so that kfree(ptr) can find its owner in O(1) and reject
 * pointers strata never handed out.
 *
 * Setup (once, on one CPU, before any allocation):
 *
 *     pfa_setup_begin(direct_map_offset);   virt = phys + offset
 *     pfa_add_region(base, size);  ...      every usable RAM range
 *     pfa_reserve(base, size);     ...      kernel image, tables, DTB, ...
 *     pfa_setup_end();                      places the descriptors in RAM,
 *                                           builds the free lists
 *
 * Memory may come and go afterwards (hot-add, hot-remove): see
 * pfa_remove_region() below.
 *
 * pfa_setup_begin() may be called again later to start over from nothing
 * (host tests do this to try many memory maps).
 */
#ifndef STRATA_PFA_H
#define STRATA_PFA_H

#include <stddef.h>
#include <stdint.h>

#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#endif
#define PAGE_SIZE ((uintptr_t)1 << PAGE_SHIFT)

/* Orders 0..PFA_MAX_ORDER: 2^10 pages = 4 MiB blocks with 4 KiB pages. */
#ifndef PFA_MAX_ORDER
#define PFA_MAX_ORDER 10
#endif

#define PFA_MAX_REGIONS 128

typedef uint64_t phys_addr_t;

/* pfa_alloc() flags */
#define PFA_ZERO 0x1u   /* fill the block with zeroes */

/*
 * Owner of a page, kept in struct page.owner.  Only the head page of a
 * block carries the block's order; the others are PG_TAIL pointing back
 * (for PG_LARGE and PG_PFA blocks) so an interior pointer is recognised.
 */
enum page_owner {
	PG_UNMANAGED = 0, /* hole between regions inside a descriptor section */
	PG_RESERVED,      /* never handed out */
	PG_FREE,          /* head of a free buddy block (order valid) */
	PG_FREE_TAIL,     /* inside a free buddy block */
	PG_PFA,           /* head of a block returned by pfa_alloc(), no owner yet */
	PG_TAIL,          /* non-head page of an allocated block */
	PG_LARGE,         /* head of a kmalloc large run  (level +1) */
	PG_ARENA,         /* page of an arena of pools      (level +2) */
	PG_POOL,          /* not set by strata (pools live in PG_ARENA pages,
	                     their descriptors' cls marks a pool in use); kept
	                     so that the owners after it keep their numbers */
	PG_CACHE,         /* page of a kmem_cache slab      (level +3) */
	PG_OWNER_MAX
};

/*
 * One per page, 16 bytes.  The descriptors of one block are contiguous in
 * memory (a block never straddles a descriptor section), so the head of a
 * PG_TAIL page is simply `pg - pg->data`.  The PFA uses link/order for free blocks; for
 * allocated pages the fields after `owner` belong to whoever owns the page.
 */
struct page {
	uint32_t next;     /* free list: page frame index of next block (or owner data) */
	uint32_t prev;     /* free list: previous (or owner data) */
	uint8_t owner;     /* enum page_owner */
	uint8_t order;     /* block order for PG_FREE / PG_PFA / PG_LARGE heads */
	uint16_t cls;      /* owner data, e.g. size class of a pool */
	uint32_t data;     /* owner data, e.g. byte count of a large run, or
	                      for PG_TAIL the distance in pages to the head */
};

_Static_assert(sizeof(struct page) == 16, "struct page must stay 16 bytes");

/* ---- setup ---- */
void pfa_setup_begin(uintptr_t direct_map_offset);
int pfa_add_region(phys_addr_t base, uint64_t size);   /* 0 or -1 (too many) */
void pfa_reserve(phys_addr_t base, uint64_t size);
int pfa_setup_end(void);                               /* 0 or -1 (no room for metadata) */

/* Fresh mode: call between pfa_setup_begin() and pfa_setup_end() when
 * every byte of every region reads as zero (fresh anonymous memory, e.g.
 * a hosted process's new MAP_NORESERVE mapping, or RAM the firmware
 * cleared): descriptors of untouched memory are then not written at
 * setup but 4 MiB at a time as the free lists first need them, so setup
 * costs O(reservations), not O(RAM).  See mm/pfa_setup.c. */
void pfa_setup_fresh(void);

/* ---- hot-add and hot-remove (after setup; mm/pfa_setup.c) ----
 * pfa_remove_region(base, size): every page of the range is free (or
 *   absent already); they leave the PFA and become absent.  0, or -1 with
 *   nothing changed (a page in use, or not RAM given at setup).
 * pfa_add_region(base, size) after setup: absent pages of a region given
 *   at setup come back as free memory.  0, or -1 (reported) if any page
 *   is present already or is not RAM given at setup.
 * Descriptors are sized at setup, so a platform declares all the memory
 * it may ever have then, and removes what is not there yet. */
int pfa_remove_region(phys_addr_t base, uint64_t size);

/* ---- allocation ---- */
phys_addr_t pfa_alloc(unsigned order, unsigned flags);  /* 0 when out of memory */
void pfa_free(phys_addr_t pa, unsigned order);          /* bad input reported, ignored */

/* Free with an explicit caller for the report (for layers above, e.g.
 * kfree passing its own caller).  pfa_free(pa, order) is
 * pfa_free_caller(pa, order, __builtin_return_address(0)). */
void pfa_free_caller(phys_addr_t pa, unsigned order, void *caller);

/* ---- bad-input reports ----
 * Every rejected call is printed as one line through mm_platform_write(),
 * e.g. "pfa: double free of 0x1234000 (order 2) from 0x401a2b", counted in
 * pfa_stats.bad_calls, and kept as the last report, so a test can assert
 * on exactly what was detected.  The allocator state is left untouched. */
enum pfa_report_kind {
	PFA_REPORT_NONE = 0,
	PFA_REPORT_DOUBLE_FREE,   /* block (or a page of it) is already free */
	PFA_REPORT_NOT_RAM,       /* address outside managed RAM */
	PFA_REPORT_RESERVED,      /* address of a reserved page */
	PFA_REPORT_TAIL,          /* page inside an allocated block, not its head */
	PFA_REPORT_MISALIGNED,    /* not aligned to a page or to 2^order pages */
	PFA_REPORT_WRONG_ORDER,   /* block was allocated with another order */
	PFA_REPORT_BAD_ORDER,     /* order > PFA_MAX_ORDER */
	PFA_REPORT_BAD_OWNER,     /* pfa_set_owner() on a block that is not
	                             allocated, or with a non-owner value */
	PFA_REPORT_KIND_MAX
};

struct pfa_report {
	enum pfa_report_kind kind;
	phys_addr_t addr;      /* address passed in */
	unsigned order;        /* order passed in */
	uint64_t detail;       /* WRONG_ORDER: the block's real order;
	                          TAIL: physical address of the block's head;
	                          BAD_OWNER: the owner value passed in */
	uintptr_t caller;      /* return address of the caller */
};

/* Copy of the most recent report (kind PFA_REPORT_NONE if none since
 * pfa_setup_begin()). */
void pfa_last_report(struct pfa_report *r);

/* Reshaping, for large runs (level +1):
 * pfa_split: the allocated block [pa, 2^order pages), order >= 1, becomes
 *   two allocated blocks of order - 1; the lower keeps its owner, the upper
 *   is a PG_PFA block as pfa_alloc() returns it.  0, or -1 (reported) if
 *   [pa, order) is not an allocated block.
 * pfa_alloc_at: allocate exactly [pa, 2^order pages) if every page of it is
 *   free (e.g. to grow a run in place).  0, or -1 with nothing changed. */
int pfa_split(phys_addr_t pa, unsigned order);
int pfa_alloc_at(phys_addr_t pa, unsigned order);

/* A block of `order` at an address aligned to `align` bytes (a power of
 * two), also above the block's own alignment: a free block or lazy page
 * at such an address is looked for, then taken with pfa_alloc_at().
 * 0 if none is free. */
phys_addr_t pfa_alloc_aligned(unsigned order, uint64_t align);

/* ---- addresses and descriptors ---- */
void *pfa_virt(phys_addr_t pa);
phys_addr_t pfa_phys(const void *va);
struct page *pfa_page(phys_addr_t pa);          /* NULL if pa is not managed RAM */
struct page *pfa_virt_to_page(const void *va);  /* NULL if not in the direct map of managed RAM */
phys_addr_t pfa_page_phys(const struct page *pg);

/* Mark every page of an allocated block [pa, pa + 2^order pages) as
 * belonging to `owner`: head gets owner, order; tails get PG_TAIL and the
 * distance to the head.  Used by the layers above after pfa_alloc().
 * The owner may use next, prev, cls and data of the head and next, prev, cls of
 * the tails, but must leave `owner`/`order` of the head and `owner`/`data`
 * of the tails alone: pfa_free() checks them.  Every page of a block fresh
 * from pfa_alloc() or pfa_split() has cls 0, whatever earlier owners of
 * those pages left there (kmalloc's pool lookup relies on it).  pfa_set_owner() on a block
 * that is not allocated with that order is reported (PFA_REPORT_BAD_OWNER). */
void pfa_set_owner(phys_addr_t pa, unsigned order, enum page_owner owner);

/* ---- statistics ---- */
struct pfa_region_stats {
	phys_addr_t base;
	uint64_t size;
	uint64_t free_pages;
};

struct pfa_stats {
	uint64_t total_pages;      /* pages in all regions */
	uint64_t reserved_pages;   /* never available */
	uint64_t free_pages;       /* now */
	uint64_t low_water_pages;  /* lowest free_pages since setup */
	uint64_t free_blocks[PFA_MAX_ORDER + 1];
	unsigned largest_free_order;  /* valid when free_pages > 0 */
	uint64_t metadata_bytes;   /* page descriptors + section table */
	uint64_t bad_calls;        /* rejected pfa_free() calls */
	unsigned nregions;
	struct pfa_region_stats region[PFA_MAX_REGIONS];
};

void pfa_get_stats(struct pfa_stats *st);
/* Pages under management (RAM minus nothing: reserved pages included). */
uint64_t pfa_total_pages(void);
void pfa_print_stats(void (*out)(const char *s, size_t n));

/* Walk every structure and check the invariants (each free block in
 * exactly one list, no free buddy pair left uncoalesced, counts agree with
 * descriptors).  Returns 0 when all hold, otherwise the number of
 * problems, each reported through mm_platform_write(). */
int pfa_check(void);

#endif

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
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdbool.h>
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
 * block carries the block's owner and order; every other page of a block,
 * free or allocated, is PG_FREE_TAIL ("not a head"), and pfa_head_page()
 * finds its head in at most PFA_MAX_ORDER probes (blocks are naturally
 * aligned).  The PFA never writes the inner pages of a block it hands
 * out or takes back, so pfa_alloc/pfa_free cost the same at every order.
 */
enum page_owner {
	PG_UNMANAGED = 0, /* hole between regions inside a descriptor section */
	PG_RESERVED,      /* never handed out */
	PG_FREE,          /* head of a free buddy block (order valid) */
	PG_FREE_TAIL,     /* not a head: inside a block, free or allocated */
	PG_PFA,           /* head of a block returned by pfa_alloc(), no owner yet */
	PG_TAIL,          /* not written any more (inner pages of allocated
	                     blocks were once marked so); kept for the numbers */
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
 * memory (a block never straddles a descriptor section).  The PFA uses
 * link/order for free blocks; for allocated pages the fields after `owner`
 * belong to whoever owns the page.
 */
struct page {
	uint32_t next;     /* free list: page frame index of next block (or owner data) */
	uint32_t prev;     /* free list: previous (or owner data) */
	uint8_t owner;     /* enum page_owner */
	uint8_t order;     /* block order for PG_FREE / PG_PFA / PG_LARGE heads */
	uint16_t cls;      /* owner data, e.g. size class of a pool */
	uint32_t data;     /* owner data, e.g. page count of a large run */
};

_Static_assert(sizeof(struct page) == 16, "struct page must stay 16 bytes");

/* ---- setup ---- */
void pfa_setup_begin(uintptr_t direct_map_offset);
int pfa_add_region(phys_addr_t base, uint64_t size);   /* enum pfa_map_result */
void pfa_reserve(phys_addr_t base, uint64_t size);
int pfa_setup_end(void);                               /* enum pfa_map_result */

/*
 * Malformed memory maps.  The firmware's map may be anything; every entry
 * strata cannot take as given is printed as one line through
 * mm_platform_write() naming the entry (ranges as base-end, end
 * exclusive) and what was done, and has one of these outcomes:
 *
 *   pfa_add_region() before setup:
 *     zero length                  PFA_MAP_EMPTY (> 0: not an error), ignored
 *       "pfa: region at 0x5000 ignored: zero length"
 *     no whole page inside         PFA_MAP_EMPTY, ignored
 *       "pfa: region 0x5010-0x5ff0 ignored: no whole page inside"
 *     base + size past 2^64        PFA_MAP_WRAPS, rejected
 *       "pfa: region 0x...+0x... rejected: runs past the end of the physical address space"
 *     table full                   PFA_MAP_FULL, rejected (the RAM is not used)
 *       "pfa: region 0x...-0x... rejected: region table full (128 regions)"
 *     not on page boundaries       PFA_MAP_OK, clipped inward to whole pages
 *       "pfa: region 0x1000010-0x2000000 not page aligned: clipped to 0x1001000-0x2000000"
 *   pfa_setup_end():
 *     regions out of order         sorted: "pfa: regions not given in address order: sorted"
 *     overlapping regions          merged: "pfa: region A-B overlaps the one before: merged into C-D"
 *     RAM beyond 2^32 - 2^24 pages (16 TiB - 64 GiB) above the first region
 *     (32-bit page indices)        clipped or ignored: "pfa: region A-B clipped to A-C: beyond ..."
 *     reservation touching no region   ignored: "pfa: reservation A-B ignored: outside every region"
 *     no region at all             PFA_MAP_NO_RAM
 *     reservations cover all RAM   PFA_MAP_ALL_RESERVED: "pfa: setup refused: reservations cover all RAM ..."
 *     no free gap for the descriptors  PFA_MAP_NO_ROOM: "pfa: setup refused: no free gap of N bytes ..."
 *     called twice                 PFA_MAP_AGAIN
 * A refused setup leaves the PFA empty (pfa_alloc() returns 0).  Ranges
 * above what the platform can map (its direct map, the CPU's physical
 * address width) are the platform's to clip: strata cannot know them.
 * Touching regions and overlapping or unaligned reservations are normal
 * and silent (reservations grow to whole pages).
 */
enum pfa_map_result {
	PFA_MAP_OK = 0,
	PFA_MAP_FULL = -1,          /* region table full: region rejected */
	PFA_MAP_EMPTY = 1,          /* zero length, or no whole page: ignored
	                               (harmless: the only result > 0) */
	PFA_MAP_WRAPS = -3,         /* base + size wraps: rejected */
	PFA_MAP_NO_RAM = -4,        /* setup_end: no region */
	PFA_MAP_ALL_RESERVED = -5,  /* setup_end: no RAM page left free */
	PFA_MAP_TOO_WIDE = -6,      /* setup_end: span beyond 32-bit indices */
	PFA_MAP_NO_ROOM = -7,       /* setup_end: no gap for the descriptors */
	PFA_MAP_AGAIN = -8,         /* setup_end: already set up */
};

/* A short phrase for a result, e.g. for a kernel's panic message. */
const char *pfa_map_strerror(int result);

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
/* 0: the block is free again; -1: refused, reported (below), nothing changed */
int pfa_free(phys_addr_t pa, unsigned order);

/* Free with an explicit caller for the report (for layers above, e.g.
 * kfree passing its own caller).  pfa_free(pa, order) is
 * pfa_free_caller(pa, order, __builtin_return_address(0)). */
int pfa_free_caller(phys_addr_t pa, unsigned order, void *caller);

/* ---- bad-input reports ----
 * Every rejected call is printed as one line through mm_platform_write(),
 * e.g. "pfa: double free of 0x1234000 (order 2) from 0x401a2b", counted in
 * pfa_stats.bad_calls, and kept as the last report with a serial number,
 * so a test can assert on exactly what was detected and a kernel can tell
 * a new report from one it has seen (or clear it).  The allocator state
 * is left untouched, and the call that was refused says so (pfa_free's
 * -1), so a kernel that wants to panic on a bad free does:
 *
 *     if (pfa_free(pa, order) != 0)
 *             panic("bad page free");
 */
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
	uint64_t serial;       /* 1, 2, ... : reports so far (kept by a clear) */
};

/* Copy of the most recent report (kind PFA_REPORT_NONE if none since
 * pfa_setup_begin() or pfa_clear_report()). */
void pfa_last_report(struct pfa_report *r);
void pfa_clear_report(void);

/* Reshaping, for large runs (level +1):
 * pfa_split: the allocated block [pa, 2^order pages), order >= 1, becomes
 *   two allocated blocks of order - 1; the lower keeps its owner, the upper
 *   is a PG_PFA block as pfa_alloc() returns it.  0, or -1 (reported) if
 *   [pa, order) is not an allocated block.
 * pfa_merge: the inverse: the allocated block [pa, 2^order pages) and its
 *   upper buddy, allocated and of the same order, become one allocated
 *   block of order + 1 with the lower's owner.  0, or -1 with nothing
 *   changed (no report).
 * pfa_alloc_at: allocate exactly [pa, 2^order pages) if every page of it is
 *   free (e.g. to grow a run in place).  0, or -1 with nothing changed. */
int pfa_split(phys_addr_t pa, unsigned order);
int pfa_merge(phys_addr_t pa, unsigned order);
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
/* Is va inside the span of indices the PFA was set up for (managed now
 * or not: holes between regions, absent pages of a hosted heap)? */
bool pfa_in_span(const void *va);

/* The head descriptor of the block (free or allocated) holding the page
 * of pa, and in *dist how many pages pa's page is past that head; for a
 * reserved page its own descriptor (dist 0).  NULL where pfa_page() is.
 * At most PFA_MAX_ORDER descriptor reads; no lock (the answer is stable
 * for a block the caller owns).  The one way to go from a page to its
 * block: heapdump, kfree's checks and the gdb script all use it. */
struct page *pfa_head_page(phys_addr_t pa, uint32_t *dist);
struct page *pfa_virt_to_head(const void *va, uint32_t *dist);  /* same, for a direct-map address */
phys_addr_t pfa_page_phys(const struct page *pg);

/* Mark the allocated block [pa, pa + 2^order pages) as belonging to
 * `owner`: its head gets owner (the order stays; the other pages stay
 * PG_FREE_TAIL).  Used by the layers above after pfa_alloc().  The owner
 * may use next, prev, cls and data of the head and next, prev, cls of the
 * other pages, but must leave `owner`/`order` of the head and `owner` of
 * the others alone (pfa_free() and pfa_head_page() rely on them), and must
 * give the other pages' cls back as 0 before pfa_free(): every page of a
 * block fresh from pfa_alloc() or pfa_split() has cls 0 (kmalloc's pool
 * lookup relies on it; pfa_free() clears the head's).  pfa_set_owner() on
 * a block that is not allocated with that order is reported
 * (PFA_REPORT_BAD_OWNER). */
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
	unsigned nregions;         /* pfa_get_region_stats(0 .. nregions-1) */
};

/* The numbers above (a struct of 208 bytes: fine on any stack). */
void pfa_get_stats(struct pfa_stats *st);
/* Region r's range and free pages (walks the free lists, so it costs
 * time proportional to the free blocks); -1 when r >= nregions. */
int pfa_get_region_stats(unsigned r, struct pfa_region_stats *rs);
/* Pages under management (RAM minus nothing: reserved pages included). */
uint64_t pfa_total_pages(void);
void pfa_print_stats(void (*out)(const char *s, size_t n));

/* Walk every structure and check the invariants (each free block in
 * exactly one list, no free buddy pair left uncoalesced, counts agree with
 * descriptors).  Returns 0 when all hold, otherwise the number of
 * problems, each reported through mm_platform_write(). */
int pfa_check(void);

#endif

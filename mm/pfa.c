/*
 * pfa.c - level 0 of strata: the page-frame allocator (a buddy system).
 *
 * Everything strata hands out comes from here in the end: the large runs
 * of level +1, the arenas of level +2, the slabs of level +3.  This file
 * holds the run-time half (allocate, free, look up); pfa_setup.c turns the
 * firmware's memory map into the initial state, pfa_check.c verifies it
 * and prints statistics.
 *
 * Blocks and buddies
 * ------------------
 * Memory is handed out in blocks of 2^order pages, order 0..PFA_MAX_ORDER
 * (4 KiB .. 4 MiB), always naturally aligned: a block of order k starts at
 * a page index that is a multiple of 2^k.  Each block has exactly one
 * "buddy", the other half of the aligned block of order k+1 containing it:
 *
 *     order 2   [ 0  1  2  3 | 4  5  6  7 ]   buddy of block 0 is block 4
 *     order 1   [ 0  1 | 2  3 ]               buddy of block 2 is block 0
 *                                             buddy(idx, k) = idx ^ 2^k
 *
 * Free blocks of each order sit on a doubly linked list threaded through
 * their head page's descriptor (next/prev are page indices, not pointers,
 * so a descriptor stays 16 bytes):
 *
 *     free_head[0] ─► [pg 9] ⇄ [pg 3] ⇄ NIL
 *     free_head[1] ─► NIL                         nonempty = 0b101
 *     free_head[2] ─► [pg 12] ⇄ NIL                (bit k: list k has one)
 *
 * The invariant that makes the system exact: a free block never has a
 * free buddy of the same order (they would have been merged), so the set
 * of free blocks is a function of the set of free pages alone.  That is
 * what lets a test compare the free lists after "free everything" with
 * the boot state, block for block.
 *
 * Allocation (pfa_alloc)
 * ----------------------
 *   fast path:  free_head[order] is not empty -> unlink its first block.
 *   slow path:  take the smallest larger block (one ctz on `nonempty`),
 *               split it, putting each upper half back on the list below:
 *
 *       order 3 [................]          take it
 *       order 2 [........|  2 ───┼──► free list 2
 *       order 1 [....|1 ─┼──► free list 1
 *       order 0 [..|0 ┼──► free list 0
 *               [ret]
 *
 * Free (pfa_free)
 * ---------------
 *   check the call (bad input is reported and ignored, see below), then
 *   while the buddy is a free block of the same order: unlink it, merge,
 *   go up one order; finally push the merged block on its list.
 *
 * Page descriptors (struct page, 16 bytes, see strata/pfa.h)
 * -----------------------------------------------------------
 *   head of a free block      PG_FREE, order, next/prev = list links
 *   head of allocated block   PG_PFA (or PG_LARGE/ARENA/POOL/CACHE after
 *                             pfa_set_owner()), order
 *   every other page          PG_FREE_TAIL, cls 0: "not a head", in a free
 *                             block or an allocated one alike
 *   reserved                  PG_RESERVED;  hole inside a section: PG_UNMANAGED
 *
 * Only heads are ever written on the run-time paths.  A page becomes
 * PG_FREE_TAIL when its memory is described (setup, fresh mode) and when
 * a merge turns a head into an inner page; splitting, allocating and
 * freeing write the heads involved and nothing else, so the inner pages
 * of a block just allocated are still the PG_FREE_TAIL they were while it
 * was free.  That makes pfa_alloc and pfa_free O(1) in the block size
 * (writing 2^k - 1 tails cost 8,294 instructions for an order-10 block),
 * and the head of any page is still found in at most PFA_MAX_ORDER probes
 * (pfa_head_idx, pfa_internal.h): blocks are naturally aligned, so the
 * head is the nearest aligned-down index that is not PG_FREE_TAIL.  That
 * lookup is what the layers above (pfa_head_page()) and the bad-free
 * diagnosis use; a free of an inner page is still caught at once, its
 * descriptor is not a head.  The head's cls is cleared on free, so every
 * inner page has cls 0 when a block is handed out (the arena layer marks
 * pools with it and clears it before the arena goes back).
 *
 * Bad input
 * ---------
 * pfa_free() never trusts its arguments: an order out of range, an address
 * not aligned to its block, outside managed RAM, reserved, free already,
 * inside a block, or freed with another order than it was allocated with
 * is reported in one line with the caller, counted, remembered for
 * pfa_last_report() with a serial number, and the state is left exactly
 * as it was; pfa_free() returns -1 then (0 when it took the block), so a
 * kernel that wants to panic on a bad free can.
 *
 * Locking: one spinlock around all state.  Zeroing (PFA_ZERO) happens
 * after the lock is dropped: the block already belongs to the caller.
 */
#include <strata/fault.h>
#include <strata/format.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "pfa_internal.h"
#include "util.h"

struct pfa_state pfa;

const uint8_t pfa_allocated_head[256] = {
	[PG_PFA] = 1, [PG_LARGE] = 1, [PG_ARENA] = 1, [PG_POOL] = 1, [PG_CACHE] = 1,
};

/* ------------------------------------------------------------------ */
/* allocation                                                         */
/* ------------------------------------------------------------------ */

/* Fast path: unlink the first block of free list `order` (not empty). */
static inline void take_first_block(unsigned order, struct page *pg)
{
	uint32_t next = pg->next;

	pfa.free_head[order] = next;
	if (next != PFA_NIL)
		pfa_idx_page(next)->prev = PFA_NIL;
	else
		pfa.nonempty &= ~(1u << order);
	pfa.nr_free[order]--;
}

/* Slow path: split the smallest larger free block down to `order`.
 * Returns the index of the block now owned by the caller, or PFA_NIL. */
static __attribute__((noinline)) uint32_t take_by_splitting(unsigned order)
{
	uint32_t larger = pfa.nonempty >> order;

	if (!larger) {
		if (!pfa_lazy_grow(order))
			return PFA_NIL;
		larger = pfa.nonempty >> order;
		if (!larger)
			return PFA_NIL;
	}
	unsigned k = order + mm_ctz32(larger);
	uint32_t idx = pfa.free_head[k];
	struct page *pg = pfa_idx_page(idx);

	take_first_block(k, pg);
	while (k > order) {
		k--;
		/* the upper half becomes a free block of order k */
		pfa_list_push(k, idx + PFA_BLOCK_PAGES(k), pg + PFA_BLOCK_PAGES(k));
	}
	return idx;
}

/* Head becomes PG_PFA with its order; owner data cleared. */
static inline void mark_head(struct page *pg, unsigned order)
{
	pg->owner = PG_PFA;
	pg->order = (uint8_t)order;
	pg->cls = 0;
	pg->data = 0;
}

static inline void account_alloc(unsigned order)
{
	pfa.free_pages -= PFA_BLOCK_PAGES(order);
	if (pfa.free_pages < pfa.low_water)
		pfa.low_water = pfa.free_pages;
}

/* The rest of an allocation that is not a plain order-0 page: the head,
 * then (after the lock) PFA_ZERO.  The inner pages are left alone. */
static __attribute__((noinline)) phys_addr_t finish_block(uint32_t idx, struct page *pg,
							  unsigned order, unsigned flags)
{
	mark_head(pg, order);
	account_alloc(order);
	mm_spin_unlock(&pfa.lock);

	phys_addr_t pa = pfa_idx_phys(idx);
	if (flags & PFA_ZERO)
		pfa_zero(pfa_virt(pa), (size_t)PAGE_SIZE << order);
	return pa;
}

/* Slow path: no free block of this order.  Lock held; drops it. */
static __attribute__((noinline)) phys_addr_t alloc_by_splitting(unsigned order,
								unsigned flags)
{
	uint32_t idx = take_by_splitting(order);
	if (idx == PFA_NIL) {
		mm_spin_unlock(&pfa.lock);
		return 0;                               /* out of memory */
	}
	return finish_block(idx, pfa_idx_page(idx), order, flags);
}

phys_addr_t pfa_alloc(unsigned order, unsigned flags)
{
	if (order > PFA_MAX_ORDER || MM_FAULT(MM_FAULT_PFA))
		return 0;

	mm_spin_lock(&pfa.lock);
	uint32_t idx = pfa.free_head[order];
	if (__builtin_expect(idx == PFA_NIL, 0))
		return alloc_by_splitting(order, flags);        /* slow path */

	/* fast path: the first block on the list */
	struct page *pg = pfa_idx_page(idx);
	take_first_block(order, pg);
	if (__builtin_expect(order | flags, 0))
		return finish_block(idx, pg, order, flags);     /* order, zeroing */
	mark_head(pg, 0);
	account_alloc(0);
	mm_spin_unlock(&pfa.lock);
	return pfa_idx_phys(idx);
}

/* ------------------------------------------------------------------ */
/* free                                                               */
/* ------------------------------------------------------------------ */

/* A free of an inner page: inside a free block (a double free) or inside
 * an allocated one (detail: that block's address). */
static enum pfa_report_kind diagnose_inner(uint32_t idx, uint64_t *detail)
{
	uint32_t head = pfa_head_idx(idx);

	if (head == PFA_NIL || !pfa_is_allocated_head(pfa_idx_page(head)->owner))
		return PFA_REPORT_DOUBLE_FREE;
	*detail = pfa_idx_phys(head);
	return PFA_REPORT_TAIL;
}

/* Classify a call that is not a valid free of an allocated block. */
static enum pfa_report_kind diagnose_free(phys_addr_t pa, unsigned order,
					  uint32_t idx, uint64_t *detail)
{
	if (order > PFA_MAX_ORDER)
		return PFA_REPORT_BAD_ORDER;
	if (pa & (((phys_addr_t)PAGE_SIZE << order) - 1))
		return PFA_REPORT_MISALIGNED;
	if (idx == PFA_NIL)
		return PFA_REPORT_NOT_RAM;

	const struct page *pg = pfa_idx_page(idx);
	if (pfa_is_allocated_head(pg->owner)) {
		*detail = pg->order;
		return PFA_REPORT_WRONG_ORDER;
	}
	switch (pg->owner) {
	case PG_RESERVED:
		return PFA_REPORT_RESERVED;
	case PG_FREE:
		return PFA_REPORT_DOUBLE_FREE;
	case PG_FREE_TAIL:
		return diagnose_inner(idx, detail);
	default:
		return PFA_REPORT_NOT_RAM;
	}
}

/* Index of the allocated block [pa, order) or PFA_NIL if the call is bad.
 * Lock held.  A page-aligned pa whose descriptor is the head of an
 * allocated block of exactly this order is aligned to the block and has
 * a valid order: heads are created that way only. */
static inline uint32_t block_to_free(phys_addr_t pa, unsigned order)
{
	if (pa & (PAGE_SIZE - 1))
		return PFA_NIL;
	uint32_t idx = pfa_phys_idx(pa);
	if (idx == PFA_NIL)
		return PFA_NIL;
	const struct page *pg = pfa_idx_page(idx);
	if (!pfa_is_allocated_head(pg->owner) || pg->order != order)
		return PFA_NIL;
	return idx;
}

/* Not a valid free: work out why, report it, change nothing; -1. */
static __attribute__((noinline, cold)) int reject_free(phys_addr_t pa, unsigned order,
						       void *caller)
{
	uint64_t detail = 0;
	enum pfa_report_kind kind = diagnose_free(pa, order, pfa_phys_idx(pa), &detail);
	pfa_report_bad(kind, pa, order, detail, caller);
	return -1;
}

static inline struct page *buddy_page(struct page *pg, uint32_t idx, unsigned order)
{
	/* same section: sections are whole largest blocks */
	return pg + ((int64_t)(idx ^ PFA_BLOCK_PAGES(order)) - (int64_t)idx);
}

static inline bool buddy_is_free(struct page *pg, uint32_t idx, unsigned order)
{
	if (order >= PFA_MAX_ORDER)
		return false;
	const struct page *bp = buddy_page(pg, idx, order);
	return bp->owner == PG_FREE && bp->order == order;
}

/* Slow path of free: merge with free buddies as far as possible, then
 * list the result.  Called when the first buddy is known to be free. */
static __attribute__((noinline)) void merge_and_push(uint32_t idx, struct page *pg,
						     unsigned order)
{
	do {
		uint32_t buddy = idx ^ PFA_BLOCK_PAGES(order);
		struct page *bp = buddy_page(pg, idx, order);
		pfa_list_remove(order, buddy, bp);
		if (buddy < idx) {
			pg->owner = PG_FREE_TAIL;
			idx = buddy;
			pg = bp;
		} else {
			bp->owner = PG_FREE_TAIL;
		}
		order++;
	} while (buddy_is_free(pg, idx, order));
	pfa_list_push(order, idx, pg);
}

int pfa_free_caller(phys_addr_t pa, unsigned order, void *caller)
{
	int ret = 0;

	mm_spin_lock(&pfa.lock);
	uint32_t idx = block_to_free(pa, order);
	if (__builtin_expect(idx != PFA_NIL, 1)) {
		struct page *pg = pfa_idx_page(idx);
		pg->cls = 0;              /* the owner's mark; inner pages: already 0 */
		pfa.free_pages += PFA_BLOCK_PAGES(order);
		if (!buddy_is_free(pg, idx, order))
			pfa_list_push(order, idx, pg);          /* fast path */
		else
			merge_and_push(idx, pg, order);         /* slow path */
	} else {
		ret = reject_free(pa, order, caller);
	}
	mm_spin_unlock(&pfa.lock);
	return ret;
}

int pfa_free(phys_addr_t pa, unsigned order)
{
	return pfa_free_caller(pa, order, __builtin_return_address(0));
}

/* ------------------------------------------------------------------ */
/* fresh mode: describing memory when it is first needed              */
/* ------------------------------------------------------------------ */

/* Describe granules [a, b) (PFA_LAZY_PAGES aligned) as free and list them,
 * merging with free buddies: the same state as if they had been free
 * since setup.  free_pages already counts them. */
static void lazy_materialize(uint32_t a, uint32_t b)
{
	for (uint32_t g = a; g < b; g += PFA_LAZY_PAGES) {
		struct page *pg = pfa_idx_page(g);
		for (uint32_t i = 0; i < PFA_LAZY_PAGES; i++)
			pg[i] = (struct page){ PFA_NIL, PFA_NIL, PG_FREE_TAIL, 0, 0, 0 };
		if (buddy_is_free(pg, g, PFA_LAZY_ORDER))
			merge_and_push(g, pg, PFA_LAZY_ORDER);
		else
			pfa_list_push(PFA_LAZY_ORDER, g, pg);
	}
}

void pfa_lazy_materialize_upto(uint32_t upto)
{
	if (pfa.lazy_next >= pfa.lazy_end || upto <= pfa.lazy_next)
		return;
	uint32_t end = upto >= pfa.lazy_end ? pfa.lazy_end :
		(upto + PFA_LAZY_PAGES - 1) & ~(PFA_LAZY_PAGES - 1);
	lazy_materialize(pfa.lazy_next, end);
	pfa.lazy_next = end;
}

bool pfa_lazy_grow(unsigned order)
{
	if (pfa.lazy_next >= pfa.lazy_end)
		return false;
	uint32_t n = PFA_BLOCK_PAGES(order > PFA_LAZY_ORDER ? order : PFA_LAZY_ORDER);
	uint64_t start = ((uint64_t)pfa.lazy_next + n - 1) & ~(uint64_t)(n - 1);
	uint64_t end = start + n;
	pfa_lazy_materialize_upto(end > pfa.lazy_end ? pfa.lazy_end : (uint32_t)end);
	return true;
}

/* ------------------------------------------------------------------ */
/* ownership (for the layers above)                                   */
/* ------------------------------------------------------------------ */

void pfa_set_owner(phys_addr_t pa, unsigned order, enum page_owner owner)
{
	void *caller = __builtin_return_address(0);

	mm_spin_lock(&pfa.lock);
	uint32_t idx = block_to_free(pa, order);
	if (idx != PFA_NIL && pfa_is_allocated_head(owner))
		pfa_idx_page(idx)->owner = (uint8_t)owner;  /* the head only */
	else
		pfa_report_bad(PFA_REPORT_BAD_OWNER, pa, order, (uint64_t)owner, caller);
	mm_spin_unlock(&pfa.lock);
}

/* ------------------------------------------------------------------ */
/* reshaping allocated blocks (for large runs, level +1)              */
/* ------------------------------------------------------------------ */

/* Alignments above a block's own: a block of order k is aligned to 2^k
 * pages and no more.  A free block of order K >= k whose head is aligned
 * to `align` holds a fit at its start; so does an aligned address inside
 * the lazy span.  The free lists are walked under the lock, the candidate
 * taken with pfa_alloc_at() after it (another CPU may take it first: then
 * the search starts over, a few times).  Only present memory is looked at,
 * so no descriptor of an absent page is read. */
static phys_addr_t aligned_candidate(unsigned order, phys_addr_t mask)
{
	for (unsigned k = order; k <= PFA_MAX_ORDER; k++)
		for (uint32_t idx = pfa.free_head[k]; idx != PFA_NIL; idx = pfa_idx_page(idx)->next)
			if (!(pfa_idx_phys(idx) & mask))
				return pfa_idx_phys(idx);
	if (pfa.lazy_next >= pfa.lazy_end)
		return 0;
	phys_addr_t lo = pfa_idx_phys(pfa.lazy_next), hi = pfa_idx_phys(pfa.lazy_end);
	if ((lo | mask) == ~(phys_addr_t)0)
		return 0;
	phys_addr_t pa = (lo & mask) ? (lo | mask) + 1 : lo;
	return pa < hi && hi - pa >= ((phys_addr_t)PAGE_SIZE << order) ? pa : 0;
}

phys_addr_t pfa_alloc_aligned(unsigned order, uint64_t align)
{
	if (order > PFA_MAX_ORDER || !align || (align & (align - 1)))
		return 0;
	if (align <= ((uint64_t)PAGE_SIZE << order))
		return pfa_alloc(order, 0);
	for (int attempt = 0; attempt < 4; attempt++) {
		mm_spin_lock(&pfa.lock);
		phys_addr_t pa = aligned_candidate(order, (phys_addr_t)align - 1);
		mm_spin_unlock(&pfa.lock);
		if (!pa)
			return 0;
		if (pfa_alloc_at(pa, order) == 0)
			return pa;
	}
	return 0;
}

/*
 *   before   [ head(order k) | inner ... inner | inner ... inner ]
 *   after    [ head(k-1)     | inner ... inner | PG_PFA(k-1) | inner ... ]
 *
 * The lower half keeps its owner (a large run stays a large run); the
 * upper half becomes a block fresh from pfa_alloc() that the caller may
 * keep, set an owner on, or pfa_free().
 */
int pfa_split(phys_addr_t pa, unsigned order)
{
	void *caller = __builtin_return_address(0);
	int ret = -1;

	mm_spin_lock(&pfa.lock);
	uint32_t idx = order ? block_to_free(pa, order) : PFA_NIL;
	if (idx != PFA_NIL) {
		struct page *pg = pfa_idx_page(idx);
		struct page *upper = pg + PFA_BLOCK_PAGES(order - 1);
		pg->order = (uint8_t)(order - 1);
		mark_head(upper, order - 1);
		ret = 0;
	} else {
		uint64_t detail = 0;
		enum pfa_report_kind kind = order ?
			diagnose_free(pa, order, pfa_phys_idx(pa), &detail) :
			PFA_REPORT_BAD_ORDER;
		pfa_report_bad(kind, pa, order, detail, caller);
	}
	mm_spin_unlock(&pfa.lock);
	return ret;
}

/*
 * pfa_split's inverse: the allocated buddies [pa, 2^order) and the block
 * right after it, of the same order, become one allocated block of
 * order + 1 with the lower one's owner; the upper head is an inner page
 * (PG_FREE_TAIL, cls 0) from now on.  Only heads change: no list, no
 * count.  -1 (nothing changed, no report: asking is not an error) if pa
 * is not the lower buddy or either block is not allocated.
 */
int pfa_merge(phys_addr_t pa, unsigned order)
{
	int ret = -1;

	if (order >= PFA_MAX_ORDER || (pa & (((phys_addr_t)PAGE_SIZE << (order + 1)) - 1)))
		return -1;
	mm_spin_lock(&pfa.lock);
	uint32_t idx = block_to_free(pa, order);
	uint32_t up = idx == PFA_NIL ? PFA_NIL :
		block_to_free(pa + ((phys_addr_t)PAGE_SIZE << order), order);
	if (up != PFA_NIL) {
		pfa_idx_page(idx)->order = (uint8_t)(order + 1);
		*pfa_idx_page(up) = (struct page){ 0, 0, PG_FREE_TAIL, 0, 0, 0 };
		ret = 0;
	}
	mm_spin_unlock(&pfa.lock);
	return ret;
}

/*
 * Take exactly [pa, pa + 2^order pages) if all of it is free: the free
 * block holding it is unlinked and split, the halves not wanted going back
 * to the free lists.  Returns 0, or -1 (nothing changed) when any page of
 * the range is not free.  No report: asking is not an error.
 */
int pfa_alloc_at(phys_addr_t pa, unsigned order)
{
	if (order > PFA_MAX_ORDER || (pa & (((phys_addr_t)PAGE_SIZE << order) - 1)) ||
	    MM_FAULT(MM_FAULT_PFA))
		return -1;
	mm_spin_lock(&pfa.lock);
	uint32_t idx = pfa_phys_idx(pa);
	unsigned k = 0;
	if (idx != PFA_NIL && idx + PFA_BLOCK_PAGES(order) > pfa.lazy_next &&
	    idx < pfa.lazy_end)
		pfa_lazy_materialize_upto(idx + PFA_BLOCK_PAGES(order));
	uint32_t head = idx == PFA_NIL ? PFA_NIL : pfa_free_block_of(idx, order, &k);
	if (head == PFA_NIL) {
		mm_spin_unlock(&pfa.lock);
		return -1;
	}
	pfa_list_remove(k, head, pfa_idx_page(head));
	while (k > order) {
		k--;
		uint32_t other = (idx & PFA_BLOCK_PAGES(k)) ? head : head + PFA_BLOCK_PAGES(k);
		if (other == head)
			head += PFA_BLOCK_PAGES(k);
		pfa_list_push(k, other, pfa_idx_page(other));
	}
	mark_head(pfa_idx_page(idx), order);
	account_alloc(order);
	mm_spin_unlock(&pfa.lock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* reports                                                            */
/* ------------------------------------------------------------------ */

void pfa_report_bad(enum pfa_report_kind kind, phys_addr_t pa, unsigned order,
		    uint64_t detail, void *caller)
{
	unsigned long long a = pa, c = (uintptr_t)caller, d = detail;

	pfa.bad_calls++;
	pfa.last = (struct pfa_report){ kind, pa, order, detail, (uintptr_t)caller,
					pfa.last.serial + 1 };
	switch (kind) {
	case PFA_REPORT_DOUBLE_FREE:
		mm_printf("pfa: double free of 0x%llx (order %u) from 0x%llx\n", a, order, c);
		break;
	case PFA_REPORT_NOT_RAM:
		mm_printf("pfa: free of 0x%llx outside managed RAM (order %u) from 0x%llx\n",
			  a, order, c);
		break;
	case PFA_REPORT_RESERVED:
		mm_printf("pfa: free of reserved page 0x%llx (order %u) from 0x%llx\n",
			  a, order, c);
		break;
	case PFA_REPORT_TAIL:
		mm_printf("pfa: free of 0x%llx inside the block at 0x%llx (order %u) from 0x%llx\n",
			  a, d, order, c);
		break;
	case PFA_REPORT_MISALIGNED:
		mm_printf("pfa: misaligned free of 0x%llx (order %u) from 0x%llx\n", a, order, c);
		break;
	case PFA_REPORT_WRONG_ORDER:
		mm_printf("pfa: free of 0x%llx with order %u, allocated with order %llu, from 0x%llx\n",
			  a, order, d, c);
		break;
	case PFA_REPORT_BAD_ORDER:
		mm_printf("pfa: free of 0x%llx with bad order %u (max %u) from 0x%llx\n",
			  a, order, (unsigned)PFA_MAX_ORDER, c);
		break;
	case PFA_REPORT_BAD_OWNER:
		mm_printf("pfa: set_owner(%llu) of 0x%llx (order %u), not an allocated block, from 0x%llx\n",
			  d, a, order, c);
		break;
	default:
		mm_printf("pfa: bad call on 0x%llx (order %u) from 0x%llx\n", a, order, c);
		break;
	}
}

void pfa_last_report(struct pfa_report *r)
{
	mm_spin_lock(&pfa.lock);
	*r = pfa.last;
	mm_spin_unlock(&pfa.lock);
}

/* Forget the last report (kind back to PFA_REPORT_NONE); the serial
 * number keeps counting, so a reader can tell a new report from the
 * cleared one. */
void pfa_clear_report(void)
{
	mm_spin_lock(&pfa.lock);
	pfa.last = (struct pfa_report){ .serial = pfa.last.serial };
	mm_spin_unlock(&pfa.lock);
}

/* ------------------------------------------------------------------ */
/* addresses and descriptors                                          */
/* ------------------------------------------------------------------ */

void *pfa_virt(phys_addr_t pa)
{
	return (void *)(uintptr_t)(pa + pfa.offset);
}

phys_addr_t pfa_phys(const void *va)
{
	return pfa_phys_inline(va);
}

struct page *pfa_page(phys_addr_t pa)
{
	return pfa_page_inline(pa);
}

struct page *pfa_virt_to_page(const void *va)
{
	if ((uintptr_t)va < pfa.offset)
		return NULL;
	return pfa_page(pfa_phys(va));
}

bool pfa_in_span(const void *va)
{
	return (uintptr_t)va >= pfa.offset &&
	       pfa_phys(va) - pfa.base < ((phys_addr_t)pfa.npages << PAGE_SHIFT);
}

struct page *pfa_head_page(phys_addr_t pa, uint32_t *dist)
{
	uint32_t idx = pfa_phys_idx(pa);
	if (idx == PFA_NIL || pfa_idx_page(idx)->owner == PG_UNMANAGED)
		return NULL;
	uint32_t head = pfa_head_idx(idx);
	if (head == PFA_NIL)
		head = idx;                 /* broken descriptors: the page itself */
	*dist = idx - head;
	return pfa_idx_page(head);
}

struct page *pfa_virt_to_head(const void *va, uint32_t *dist)
{
	if ((uintptr_t)va < pfa.offset)
		return NULL;
	return pfa_head_page(pfa_phys(va), dist);
}

/* Start of section s's descriptor array.  Arrays are laid out in section
 * order, and empty sections start where the next array starts, so these
 * addresses never decrease with s (see pfa_setup.c). */
static uintptr_t section_array(unsigned s)
{
	return pfa.section[s].bias + (uintptr_t)pfa.section[s].first * sizeof(struct page);
}

phys_addr_t pfa_page_phys(const struct page *pg)
{
	uintptr_t p = (uintptr_t)pg;
	unsigned nsec = pfa.npages ? ((pfa.npages - 1) >> pfa.sec_shift) + 1 : 0;

	if (!nsec || p < section_array(0) ||
	    (p - section_array(0)) % sizeof(struct page))
		return 0;
	/* last section whose array starts at or below p */
	unsigned lo = 0, hi = nsec;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		if (section_array(mid) <= p)
			lo = mid;
		else
			hi = mid;
	}
	const struct pfa_section *s = &pfa.section[lo];
	uint32_t idx = (uint32_t)((p - s->bias) / sizeof(struct page));
	if (idx < s->first || idx >= s->end)
		return 0;
	return pfa_idx_phys(idx);
}

/* ------------------------------------------------------------------ */
/* zeroing without libc                                               */
/* ------------------------------------------------------------------ */

void pfa_zero(void *p, size_t n)
{
	uint64_t *w = p;
	size_t i = 0;

	/* 64 bytes per round (blocks are whole pages).  The empty asm keeps
	 * the compiler from turning the loop into a call to memset(). */
	if (((uintptr_t)p & 7) == 0) {
		for (; i + 64 <= n; i += 64, w += 8) {
			w[0] = 0; w[1] = 0; w[2] = 0; w[3] = 0;
			w[4] = 0; w[5] = 0; w[6] = 0; w[7] = 0;
			__asm__ volatile("" : : "r"(w) : "memory");
		}
	}
	for (unsigned char *c = (unsigned char *)p; i < n; i++) {
		c[i] = 0;
		__asm__ volatile("" : : "r"(c) : "memory");
	}
}

/*
 * pfa_setup.c - from the firmware's memory map to the first free lists.
 *
 * The kernel describes memory in three kinds of calls:
 *
 *     pfa_setup_begin(offset)      forget everything; virt = phys + offset
 *     pfa_add_region(base, size)   usable RAM, any alignment, any order
 *     pfa_reserve(base, size)      never hand out (may overlap anything)
 *     pfa_setup_end()              build it all
 *
 * pfa_setup_end() works in six steps:
 *
 *   1. tidy the map: regions shrink to whole pages inside them, are sorted
 *      and overlaps merged; reservations grow to whole pages around them,
 *      are sorted and merged.  Page 0 is always reserved, because address
 *      0 is pfa_alloc()'s "out of memory".
 *
 *   2. choose the sections: the span [first RAM page, last RAM page] is cut
 *      into at most PFA_SECTIONS equal, aligned sections of at least one
 *      largest block (4 MiB):
 *
 *        span:    |RAM RAM|  hole (PCI, ...)  |RAM RAM RAM RAM|   |RAM|
 *        sections |s0 |s1 |s2 |s3 |s4 |s5 |s6 |s7 |s8 |s9 |sA |sB |sC |
 *        arrays    ###  ##                     ### ### ### ###      #
 *
 *      Each section gets descriptors only for the largest blocks in it
 *      that contain RAM, so holes cost nothing but a 16-byte table entry
 *      (a 64 GiB map with 1 GiB of RAM pays for 1 GiB).
 *
 *   3. place the descriptors: one contiguous run of pages, taken from the
 *      highest free (RAM, unreserved) gap big enough, then reserved.
 *      Section arrays are laid out in section order inside it.
 *
 *   4. write every descriptor: PG_UNMANAGED, then PG_FREE_TAIL for RAM,
 *      then PG_RESERVED for the reservations.
 *
 *   5. carve each run of free pages into the largest aligned blocks, left
 *      to right; this gives the unique fully coalesced state:
 *
 *        run [3, 17):   3 | 4 5 6 7 | 8 ... 15 | 16
 *                      k=0   k=2       k=3      k=0
 *
 *   6. statistics start: free pages = low-water mark.
 *
 * Fresh mode (pfa_setup_fresh(), for memory known to read as zero, e.g.
 * a fresh MAP_NORESERVE mapping in a hosted process): step 4 leaves the
 * zeroed descriptors as they are (zero is PG_UNMANAGED), and the largest
 * 4 MiB-aligned stretch of RAM free of reservations becomes the lazy
 * span: its pages count as free but its descriptors are written only when
 * the free lists run dry (pfa_lazy_grow, 4 MiB at a time, merged with
 * free buddies exactly as a free would).  Setup then costs O(reserved +
 * unaligned edges), not O(RAM): a 64 GiB region starts in microseconds
 * and touches none of its 256 MiB of descriptors but the metadata's own.
 */
#include <stdbool.h>
#include <strata/format.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#include "lock_order.h"
#include "pfa_internal.h"
#include "util.h"

#define PAGE_MASK_PA ((phys_addr_t)PAGE_SIZE - 1)
#define PA_MAX_PAGE (~(phys_addr_t)0 & ~PAGE_MASK_PA)  /* highest page start */

static phys_addr_t page_down(phys_addr_t a) { return a & ~PAGE_MASK_PA; }

static phys_addr_t page_up(phys_addr_t a)
{
	return a > PA_MAX_PAGE ? PA_MAX_PAGE : (a + PAGE_MASK_PA) & ~PAGE_MASK_PA;
}

/* base + size, saturating */
static phys_addr_t range_end(phys_addr_t base, uint64_t size)
{
	return size > ~(phys_addr_t)0 - base ? ~(phys_addr_t)0 : base + size;
}

/* ------------------------------------------------------------------ */
/* the three setup calls                                              */
/* ------------------------------------------------------------------ */

static int hot_add(phys_addr_t lo, phys_addr_t hi);

void pfa_setup_begin(uintptr_t direct_map_offset)
{
	pfa_zero(&pfa, sizeof pfa);
	mm_spin_init(&pfa.lock, MM_LOCK_PFA);
	pfa.offset = direct_map_offset;
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		pfa.free_head[k] = PFA_NIL;
}

/* ------------------------------------------------------------------ */
/* malformed maps                                                     */
/* ------------------------------------------------------------------ */
/*
 * A firmware map may be anything.  Every entry strata cannot take as
 * given gets one named outcome (enum pfa_map_result in strata/pfa.h) and
 * one "pfa: ..." line naming the entry and what was done with it:
 *
 *   zero length, no whole page inside     ignored       (PFA_MAP_EMPTY)
 *   base + size past 2^64                 rejected      (PFA_MAP_WRAPS)
 *   more than PFA_MAX_REGIONS regions     rejected      (PFA_MAP_FULL)
 *   bounds not on page boundaries         clipped inward to whole pages
 *   regions out of address order          sorted
 *   overlapping regions                   merged
 *   beyond the 32-bit page index span     clipped (or ignored) at the span
 *   reservation outside every region      ignored
 *   reservations covering all RAM         setup fails   (PFA_MAP_ALL_RESERVED)
 *   no free gap for the descriptors       setup fails   (PFA_MAP_NO_ROOM)
 *
 * Ranges are printed as base-end, end exclusive.
 */

static void say_range(const char *what, phys_addr_t lo, phys_addr_t hi, const char *outcome)
{
	mm_printf("pfa: %s 0x%llx-0x%llx %s\n", what, (unsigned long long)lo,
		  (unsigned long long)hi, outcome);
}

/* Check a region given before setup: 0 to take [*lo, *hi), else why not. */
static int region_usable(phys_addr_t base, uint64_t size, phys_addr_t *lo, phys_addr_t *hi)
{
	if (!size) {
		mm_printf("pfa: region at 0x%llx ignored: zero length\n",
			  (unsigned long long)base);
		return PFA_MAP_EMPTY;
	}
	if (size - 1 > ~(phys_addr_t)0 - base) {
		mm_printf("pfa: region 0x%llx+0x%llx rejected: runs past the end of the "
			  "physical address space\n", (unsigned long long)base,
			  (unsigned long long)size);
		return PFA_MAP_WRAPS;
	}
	phys_addr_t end = range_end(base, size);
	*lo = page_up(base);
	*hi = page_down(end);
	if (*lo >= *hi || *lo < base) {
		say_range("region", base, end, "ignored: no whole page inside");
		return PFA_MAP_EMPTY;
	}
	if (pfa.nregions == PFA_MAX_REGIONS) {
		mm_printf("pfa: region 0x%llx-0x%llx rejected: region table full (%u regions)\n",
			  (unsigned long long)base, (unsigned long long)end, PFA_MAX_REGIONS);
		return PFA_MAP_FULL;
	}
	if (*lo != base || *hi != end)
		mm_printf("pfa: region 0x%llx-0x%llx not page aligned: clipped to 0x%llx-0x%llx\n",
			  (unsigned long long)base, (unsigned long long)end,
			  (unsigned long long)*lo, (unsigned long long)*hi);
	return PFA_MAP_OK;
}

int pfa_add_region(phys_addr_t base, uint64_t size)
{
	phys_addr_t lo, hi;
	if (pfa.ready) {
		lo = page_up(base);
		hi = page_down(range_end(base, size));
		return lo < hi ? hot_add(lo, hi) : 0;   /* see "hot-add" below */
	}
	int r = region_usable(base, size, &lo, &hi);
	if (r == PFA_MAP_OK)
		pfa.region[pfa.nregions++] = (struct pfa_range){ lo, hi };
	return r;
}

const char *pfa_map_strerror(int result)
{
	switch (result) {
	case PFA_MAP_OK:           return "ok";
	case PFA_MAP_FULL:         return "more regions than the region table holds";
	case PFA_MAP_EMPTY:        return "zero length or no whole page";
	case PFA_MAP_WRAPS:        return "range runs past the end of the address space";
	case PFA_MAP_NO_RAM:       return "no RAM region given";
	case PFA_MAP_ALL_RESERVED: return "reservations cover all RAM";
	case PFA_MAP_TOO_WIDE:     return "RAM span too wide for 32-bit page indices";
	case PFA_MAP_NO_ROOM:      return "no free gap for the page descriptors";
	case PFA_MAP_AGAIN:        return "setup already done";
	default:                   return "unknown result";
	}
}

/* Remember [lo, hi) (page aligned).  When the table is full the range is
 * merged with its nearest neighbour: reserving too much is safe. */
static void remember_reservation(phys_addr_t lo, phys_addr_t hi)
{
	if (pfa.nreserved < PFA_MAX_RESERVED) {
		pfa.reserved[pfa.nreserved++] = (struct pfa_range){ lo, hi };
		return;
	}
	unsigned best = 0;
	phys_addr_t best_gap = ~(phys_addr_t)0;
	for (unsigned i = 0; i < pfa.nreserved; i++) {
		const struct pfa_range *r = &pfa.reserved[i];
		phys_addr_t gap = r->end < lo ? lo - r->end : r->base > hi ? r->base - hi : 0;
		if (gap < best_gap) {
			best_gap = gap;
			best = i;
		}
	}
	struct pfa_range *r = &pfa.reserved[best];
	if (lo < r->base)
		r->base = lo;
	if (hi > r->end)
		r->end = hi;
}

static void reserve_live(phys_addr_t lo, phys_addr_t hi);

void pfa_reserve(phys_addr_t base, uint64_t size)
{
	if (!size)
		return;
	phys_addr_t lo = page_down(base), hi = page_up(range_end(base, size));
	if (lo >= hi)
		return;
	if (pfa.ready)
		reserve_live(lo, hi);
	else
		remember_reservation(lo, hi);
}

/* ------------------------------------------------------------------ */
/* step 1: tidy the map                                               */
/* ------------------------------------------------------------------ */

static void sort_ranges(struct pfa_range *r, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		struct pfa_range x = r[i];
		unsigned j = i;
		for (; j > 0 && r[j - 1].base > x.base; j--)
			r[j] = r[j - 1];
		r[j] = x;
	}
}

/* Sort and merge ranges that overlap (or also touch, if `touching`);
 * with `say`, every overlap is printed naming both regions. */
static unsigned merge_ranges(struct pfa_range *r, unsigned n, bool touching, bool say)
{
	unsigned out = 0;

	sort_ranges(r, n);
	for (unsigned i = 0; i < n; i++) {
		if (out && (r[i].base < r[out - 1].end ||
			    (touching && r[i].base == r[out - 1].end))) {
			struct pfa_range *last = &r[out - 1];
			if (r[i].end > last->end)
				last->end = r[i].end;
			if (say)
				mm_printf("pfa: region 0x%llx-0x%llx overlaps the one before: "
					  "merged into 0x%llx-0x%llx\n",
					  (unsigned long long)r[i].base, (unsigned long long)r[i].end,
					  (unsigned long long)last->base, (unsigned long long)last->end);
		} else {
			r[out++] = r[i];
		}
	}
	return out;
}

static bool in_address_order(const struct pfa_range *r, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		if (r[i].base < r[i - 1].base)
			return false;
	return true;
}

/* Page indices are 32 bits: RAM more than PFA_SPAN_PAGES above the first
 * region cannot be described.  Sorted, merged regions are cut there.  The
 * 1/256 left below 2^32 is what aligning the span's base down to a section
 * (at most 2/512 of the span) may add, so choose_sections() then fits. */
#define PFA_SPAN_PAGES (((phys_addr_t)1 << 32) - ((phys_addr_t)1 << 24))

static void clip_to_span(void)
{
	phys_addr_t lo = pfa.region[0].base, span = PFA_SPAN_PAGES << PAGE_SHIFT;
	phys_addr_t limit = lo > ~(phys_addr_t)0 - span ? PA_MAX_PAGE : lo + span;
	unsigned n = 0;

	for (unsigned i = 0; i < pfa.nregions; i++) {
		struct pfa_range *r = &pfa.region[i];
		if (r->base >= limit) {
			say_range("region", r->base, r->end, "ignored: beyond the span "
				  "32-bit page indices reach from the first region");
			continue;
		}
		if (r->end > limit) {
			mm_printf("pfa: region 0x%llx-0x%llx clipped to 0x%llx-0x%llx: beyond the "
				  "span 32-bit page indices reach from the first region\n",
				  (unsigned long long)r->base, (unsigned long long)r->end,
				  (unsigned long long)r->base, (unsigned long long)limit);
			r->end = limit;
		}
		pfa.region[n++] = *r;
	}
	pfa.nregions = n;
}

static bool overlaps_ram(phys_addr_t lo, phys_addr_t hi)
{
	for (unsigned i = 0; i < pfa.nregions; i++)
		if (lo < pfa.region[i].end && hi > pfa.region[i].base)
			return true;
	return false;
}

/* A reservation that touches no RAM protects nothing: it is dropped. */
static void drop_reservations_outside_ram(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < pfa.nreserved; i++) {
		const struct pfa_range *r = &pfa.reserved[i];
		if (overlaps_ram(r->base, r->end))
			pfa.reserved[n++] = *r;
		else
			say_range("reservation", r->base, r->end, "ignored: outside every region");
	}
	pfa.nreserved = n;
}

static void tidy_map(void)
{
	if (!in_address_order(pfa.region, pfa.nregions))
		mm_printf("pfa: regions not given in address order: sorted\n");
	/* adjacent regions stay separate (per-region statistics) */
	pfa.nregions = merge_ranges(pfa.region, pfa.nregions, false, true);
	clip_to_span();
	pfa.nreserved = merge_ranges(pfa.reserved, pfa.nreserved, true, false);
	drop_reservations_outside_ram();
	remember_reservation(0, PAGE_SIZE);
	pfa.nreserved = merge_ranges(pfa.reserved, pfa.nreserved, true, false);
}

/* RAM pages no reservation covers (regions and reservations tidy). */
static uint64_t unreserved_pages(void)
{
	uint64_t pages = 0;

	for (unsigned i = 0; i < pfa.nregions; i++) {
		phys_addr_t lo = pfa.region[i].base, hi = pfa.region[i].end;
		uint64_t covered = 0;
		for (unsigned j = 0; j < pfa.nreserved; j++) {
			phys_addr_t a = pfa.reserved[j].base, b = pfa.reserved[j].end;
			if (a < lo)
				a = lo;
			if (b > hi)
				b = hi;
			if (a < b)
				covered += b - a;
		}
		pages += (hi - lo - covered) >> PAGE_SHIFT;
	}
	return pages;
}

/* ------------------------------------------------------------------ */
/* step 2: sections                                                   */
/* ------------------------------------------------------------------ */

static uint32_t pa_to_idx(phys_addr_t pa) { return (uint32_t)((pa - pfa.base) >> PAGE_SHIFT); }

static unsigned nsections(void)
{
	return pfa.npages ? ((pfa.npages - 1) >> pfa.sec_shift) + 1 : 0;
}

/* Smallest section size giving at most PFA_SECTIONS sections; sets base,
 * npages, sec_shift.  -1 if the span does not fit 32-bit page indices. */
static int choose_sections(void)
{
	phys_addr_t lo = pfa.region[0].base;
	phys_addr_t hi = pfa.region[pfa.nregions - 1].end;

	for (unsigned shift = PFA_MAX_ORDER; shift < 40; shift++) {
		phys_addr_t sec_bytes = (phys_addr_t)PAGE_SIZE << shift;
		phys_addr_t base = lo & ~(sec_bytes - 1);
		uint64_t pages = (hi - base) >> PAGE_SHIFT;
		if (((pages + ((uint64_t)1 << shift) - 1) >> shift) > PFA_SECTIONS)
			continue;
		if (pages >= PFA_NIL) {
			mm_printf("pfa: span 0x%llx-0x%llx too large for 32-bit page indices\n",
				  (unsigned long long)lo, (unsigned long long)hi);
			return -1;
		}
		pfa.base = base;
		pfa.npages = (uint32_t)pages;
		pfa.sec_shift = shift;
		return 0;
	}
	return -1;
}

/* [first, end) of each section: the largest blocks holding RAM.
 * Returns the number of descriptors needed. */
static uint64_t size_sections(void)
{
	const uint32_t blk = PFA_BLOCK_PAGES(PFA_MAX_ORDER);
	uint64_t count = 0;

	for (unsigned i = 0; i < pfa.nregions; i++) {
		uint32_t a = pa_to_idx(pfa.region[i].base);
		uint32_t b = pa_to_idx(pfa.region[i].end);     /* exclusive */
		for (unsigned s = a >> pfa.sec_shift; s <= (b - 1) >> pfa.sec_shift; s++) {
			struct pfa_section *sec = &pfa.section[s];
			uint32_t s_lo = (uint32_t)s << pfa.sec_shift;
			uint32_t s_hi = s_lo + ((uint32_t)1 << pfa.sec_shift);
			uint32_t f = (a > s_lo ? a : s_lo) & ~(blk - 1);
			uint32_t e = b < s_hi ? ((b + blk - 1) & ~(blk - 1)) : s_hi;
			if (sec->first == sec->end) {
				sec->first = f;
				sec->end = e;
			} else {
				if (f < sec->first)
					sec->first = f;
				if (e > sec->end)
					sec->end = e;
			}
		}
	}
	for (unsigned s = 0; s < nsections(); s++)
		count += pfa.section[s].end - pfa.section[s].first;
	return count;
}

/* ------------------------------------------------------------------ */
/* step 3: place the descriptors                                      */
/* ------------------------------------------------------------------ */

/* Highest page-aligned address a with [a, a + need) free RAM, or 0. */
static phys_addr_t highest_free_gap(uint64_t need)
{
	for (unsigned r = pfa.nregions; r-- > 0;) {
		const struct pfa_range *reg = &pfa.region[r];
		phys_addr_t top = reg->end;
		for (unsigned i = pfa.nreserved + 1; i-- > 0;) {
			/* i == 0 is the sentinel below everything */
			const struct pfa_range *res = i ? &pfa.reserved[i - 1] : NULL;
			if (res && res->base >= top)
				continue;
			phys_addr_t lo = res && res->end > reg->base ? res->end : reg->base;
			if (lo < top && top - lo >= need)
				return top - need;
			if (!res || res->base <= reg->base)
				break;
			top = res->base;
		}
	}
	return 0;
}

/* Point each section at its slice of the descriptor run at `va`.  Empty
 * sections point where the next slice starts (pfa_page_phys relies on
 * the slices' addresses never decreasing with the section number). */
static void lay_out_sections(uintptr_t va)
{
	for (unsigned s = 0; s < PFA_SECTIONS; s++) {
		struct pfa_section *sec = &pfa.section[s];
		if (s >= nsections() || sec->first == sec->end)
			sec->first = sec->end = 0;
		sec->bias = va - (uintptr_t)sec->first * sizeof(struct page);
		va += (uintptr_t)(sec->end - sec->first) * sizeof(struct page);
	}
}

/* ------------------------------------------------------------------ */
/* steps 4 and 5: descriptors and free lists                          */
/* ------------------------------------------------------------------ */

/* Call fn(idx_lo, idx_hi) for the parts of [lo, hi) that have descriptors. */
static void for_each_described(phys_addr_t lo, phys_addr_t hi,
			       void (*fn)(uint32_t a, uint32_t b))
{
	phys_addr_t span_end = pfa_idx_phys(pfa.npages);

	if (lo < pfa.base)
		lo = pfa.base;
	if (hi > span_end)
		hi = span_end;
	if (lo >= hi)
		return;
	uint32_t a = pa_to_idx(lo), b = pa_to_idx(hi);
	for (unsigned s = a >> pfa.sec_shift; s <= (b - 1) >> pfa.sec_shift; s++) {
		const struct pfa_section *sec = &pfa.section[s];
		uint32_t x = a > sec->first ? a : sec->first;
		uint32_t y = b < sec->end ? b : sec->end;
		if (x < y)
			fn(x, y);
	}
}

static void mark_unmanaged(uint32_t a, uint32_t b)
{
	struct page *pg = pfa_idx_page(a);
	for (uint32_t i = 0; i < b - a; i++)
		pg[i] = (struct page){ PFA_NIL, PFA_NIL, PG_UNMANAGED, 0, 0, 0 };
}

static void mark_ram(uint32_t a, uint32_t b)
{
	struct page *pg = pfa_idx_page(a);
	for (uint32_t i = 0; i < b - a; i++)
		pg[i].owner = PG_FREE_TAIL;
}

static void mark_reserved(uint32_t a, uint32_t b)
{
	struct page *pg = pfa_idx_page(a);
	for (uint32_t i = 0; i < b - a; i++) {
		if (pg[i].owner == PG_FREE_TAIL) {
			pg[i].owner = PG_RESERVED;
			pfa.reserved_pages++;
		}
	}
}

/* Order of the largest aligned block starting at index a inside [a, b). */
static unsigned piece_order(uint32_t a, uint32_t b)
{
	unsigned k = a ? mm_ctz32(a) : PFA_MAX_ORDER;
	if (k > PFA_MAX_ORDER)
		k = PFA_MAX_ORDER;
	while (PFA_BLOCK_PAGES(k) > b - a)
		k--;
	return k;
}

/* Head of the free block holding page idx (its order in *order), or PFA_NIL. */
static uint32_t free_block_of(uint32_t idx, unsigned *order)
{
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++) {
		uint32_t head = idx & ~(PFA_BLOCK_PAGES(k) - 1);
		const struct page *hp = pfa_idx_page(head);
		if (hp->owner == PG_FREE && hp->order == k) {
			*order = k;
			return head;
		}
	}
	return PFA_NIL;
}

/* Take the aligned block [i, i + 2^k) out of the free block (head, K)
 * holding it; the halves around it go back to the free lists. */
static void split_out(uint32_t head, unsigned K, uint32_t i, unsigned k)
{
	pfa_list_remove(K, head, pfa_idx_page(head));
	while (K > k) {
		K--;
		uint32_t half = PFA_BLOCK_PAGES(K);
		uint32_t other = (i & half) ? head : head + half;
		if (i & half)
			head += half;
		pfa_list_push(K, other, pfa_idx_page(other));
	}
}

/* Largest aligned blocks covering [a, b), left to right. */
static void carve_run(uint32_t a, uint32_t b)
{
	while (a < b) {
		unsigned k = piece_order(a, b);
		pfa_list_push(k, a, pfa_idx_page(a));
		pfa.free_pages += PFA_BLOCK_PAGES(k);
		a += PFA_BLOCK_PAGES(k);
	}
}

/* Carve the free runs of described pages [a, b) (one section at most). */
static void carve_free_runs(uint32_t a, uint32_t b)
{
	const struct page *pg = pfa_idx_page(a);
	uint32_t n = b - a;

	for (uint32_t i = 0; i < n;) {
		if (pg[i].owner != PG_FREE_TAIL) {
			i++;
			continue;
		}
		uint32_t j = i;
		while (j < n && pg[j].owner == PG_FREE_TAIL)
			j++;
		carve_run(a + i, a + j);
		i = j;
	}
}

/* ---- fresh mode: the lazy span ---- */

static void (*eager_fn)(uint32_t a, uint32_t b);

/* Page indices of the metadata in fresh mode, whose own descriptors stay
 * zero (PG_UNMANAGED) too: they would be PG_RESERVED, which pfa_check and
 * the statistics account for without looking (see pfa_check.c). */
static void fresh_meta_idx(uint32_t *a, uint32_t *b)
{
	*a = *b = 0;
	if (pfa.fresh && pfa.meta.end > pfa.meta.base) {
		*a = pa_to_idx(pfa.meta.base);
		*b = pa_to_idx(pfa.meta.end);
	}
}

/* eager_fn on [a, b) minus [x, y), then minus the next range */
static void minus_range(uint32_t a, uint32_t b, uint32_t x, uint32_t y,
			void (*next)(uint32_t a, uint32_t b))
{
	if (x >= y || b <= x || a >= y) {
		next(a, b);
		return;
	}
	if (a < x)
		next(a, x);
	if (b > y)
		next(y, b);
}

static void skip_meta(uint32_t a, uint32_t b)
{
	uint32_t x, y;
	fresh_meta_idx(&x, &y);
	minus_range(a, b, x, y, eager_fn);
}

/* fn on [a, b) minus the lazy span and (fresh mode) the metadata, whose
 * descriptors stay untouched. */
static void skip_lazy(uint32_t a, uint32_t b)
{
	minus_range(a, b, pfa.lazy_next, pfa.lazy_end, skip_meta);
}

static void for_each_eager(phys_addr_t lo, phys_addr_t hi, void (*fn)(uint32_t a, uint32_t b))
{
	eager_fn = fn;
	for_each_described(lo, hi, skip_lazy);
}

/* The largest PFA_LAZY_PAGES-aligned range of RAM free of reservations
 * becomes the lazy span: free, counted, but described only when used. */
static void choose_lazy_span(void)
{
	const phys_addr_t g = (phys_addr_t)PAGE_SIZE * PFA_LAZY_PAGES;
	phys_addr_t best_lo = 0, best_hi = 0;

	for (unsigned r = 0; r < pfa.nregions; r++) {
		phys_addr_t lo = pfa.region[r].base;
		for (unsigned i = 0; i <= pfa.nreserved; i++) {
			phys_addr_t hi = i < pfa.nreserved ? pfa.reserved[i].base : pfa.region[r].end;
			if (hi > pfa.region[r].end)
				hi = pfa.region[r].end;
			phys_addr_t a = (lo + g - 1) & ~(g - 1), b = hi & ~(g - 1);
			if (a < b && b - a > best_hi - best_lo) {
				best_lo = a;
				best_hi = b;
			}
			if (i < pfa.nreserved && pfa.reserved[i].end > lo)
				lo = pfa.reserved[i].end;
			if (lo >= pfa.region[r].end)
				break;
		}
	}
	if (best_hi > best_lo) {
		pfa.lazy_next = pa_to_idx(best_lo);
		pfa.lazy_end = pa_to_idx(best_hi);
		pfa.free_pages += pfa.lazy_end - pfa.lazy_next;
	}
}

void pfa_setup_fresh(void)
{
	pfa.fresh = true;
}

/* Walk RAM (touching regions as one, so a run is not cut where they
 * meet) and carve every run of free pages outside the lazy span. */
static void build_free_lists(void)
{
	for (unsigned r = 0; r < pfa.nregions;) {
		phys_addr_t lo = pfa.region[r].base, hi = pfa.region[r].end;
		for (r++; r < pfa.nregions && pfa.region[r].base == hi; r++)
			hi = pfa.region[r].end;
		for_each_eager(lo, hi, carve_free_runs);
	}
}

int pfa_setup_end(void)
{
	if (pfa.ready)
		return PFA_MAP_AGAIN;
	if (!pfa.nregions) {
		mm_printf("pfa: setup refused: no RAM region given\n");
		return PFA_MAP_NO_RAM;
	}
	tidy_map();
	if (!unreserved_pages()) {
		mm_printf("pfa: setup refused: reservations cover all RAM "
			  "(%u region(s), no free page left)\n", pfa.nregions);
		return PFA_MAP_ALL_RESERVED;
	}
	if (choose_sections() < 0)
		return PFA_MAP_TOO_WIDE;

	uint64_t ndesc = size_sections();
	uint64_t meta_bytes = page_up(ndesc * sizeof(struct page));
	phys_addr_t meta = highest_free_gap(meta_bytes);
	if (!meta) {
		mm_printf("pfa: setup refused: no free gap of %llu bytes for the page descriptors\n",
			  (unsigned long long)meta_bytes);
		return PFA_MAP_NO_ROOM;
	}
	pfa.meta = (struct pfa_range){ meta, meta + meta_bytes };
	remember_reservation(meta, meta + meta_bytes);
	pfa.nreserved = merge_ranges(pfa.reserved, pfa.nreserved, true, false);
	lay_out_sections((uintptr_t)pfa_virt(meta));

	/* fresh mode: zeroed descriptors already say PG_UNMANAGED, and the
	 * lazy span's stay untouched until pfa_lazy_grow() needs them */
	if (pfa.fresh)
		choose_lazy_span();
	else
		for (unsigned s = 0; s < nsections(); s++)
			if (pfa.section[s].first != pfa.section[s].end)
				mark_unmanaged(pfa.section[s].first, pfa.section[s].end);
	for (unsigned i = 0; i < pfa.nregions; i++) {
		for_each_eager(pfa.region[i].base, pfa.region[i].end, mark_ram);
		pfa.total_pages += (pfa.region[i].end - pfa.region[i].base) >> PAGE_SHIFT;
	}
	for (unsigned i = 0; i < pfa.nreserved; i++)
		for_each_eager(pfa.reserved[i].base, pfa.reserved[i].end, mark_reserved);
	if (pfa.fresh)
		pfa.reserved_pages += (pfa.meta.end - pfa.meta.base) >> PAGE_SHIFT;
	build_free_lists();

	pfa.low_water = pfa.free_pages;
	pfa.metadata_bytes = meta_bytes + sizeof pfa.section;
	pfa.ready = true;
	pfa_layer_register();
	return 0;
}

/* ------------------------------------------------------------------ */
/* reserving after setup                                              */
/* ------------------------------------------------------------------ */

/* Take page idx out of the free block containing it: unlink the block,
 * give back every half that does not contain idx. */
static void isolate_free_page(uint32_t idx)
{
	unsigned k = 0;
	uint32_t head = free_block_of(idx, &k);

	if (head == PFA_NIL) {
		mm_printf("pfa: no free block holds page 0x%llx\n",
			  (unsigned long long)pfa_idx_phys(idx));
		return;
	}
	split_out(head, k, idx, 0);
	pfa.free_pages--;
	struct page *pg = pfa_idx_page(idx);
	pg->owner = PG_RESERVED;
	pg->order = 0;
	pfa.reserved_pages++;
}

static void reserve_pages_live(uint32_t a, uint32_t b)
{
	for (uint32_t idx = a; idx < b; idx++) {
		unsigned owner = pfa_idx_page(idx)->owner;
		if (owner == PG_FREE || owner == PG_FREE_TAIL)
			isolate_free_page(idx);
		else if (owner != PG_RESERVED && owner != PG_UNMANAGED)
			mm_printf("pfa: reserve of allocated page 0x%llx ignored\n",
				  (unsigned long long)pfa_idx_phys(idx));
	}
}

static void reserve_live(phys_addr_t lo, phys_addr_t hi)
{
	mm_spin_lock(&pfa.lock);
	if (pfa.lazy_next < pfa.lazy_end && hi > pfa_idx_phys(pfa.lazy_next) &&
	    lo < pfa_idx_phys(pfa.lazy_end))
		pfa_lazy_materialize_upto(pa_to_idx(hi + PAGE_SIZE - 1));
	for_each_described(lo, hi, reserve_pages_live);
	if (pfa.free_pages < pfa.low_water)
		pfa.low_water = pfa.free_pages;
	mm_spin_unlock(&pfa.lock);
}

/* ------------------------------------------------------------------ */
/* hot-add and hot-remove                                             */
/* ------------------------------------------------------------------ */
/*
 * After setup, memory may come and go, as when a kernel hot-adds a DIMM
 * or a hosted process maps more address space for its heap:
 *
 *     pfa_remove_region(base, size)   free pages leave: they become absent
 *     pfa_add_region(base, size)      absent pages arrive: they become free
 *
 * The section table and the descriptor run are sized at setup, so only
 * memory that has descriptors can come and go: pages of the regions given
 * at setup.  A page is absent when its descriptor is zero (PG_UNMANAGED)
 * and it is outside the lazy span; the statistics and pfa_check() then
 * count it nowhere (total_pages shrinks and grows with it).  A platform
 * that expects memory to appear later therefore declares the whole range
 * it may ever have at setup (as ACPI's SRAT lists hot-pluggable ranges so
 * that the kernel can size its memory map for them) and removes what is
 * not there yet right after pfa_setup_end():
 *
 *     setup     [########## region: all the memory there may be ####|meta]
 *     remove    [.......................absent......................|meta]
 *     add       [free |.............................................|meta]
 *     add       [free free free |...................................|meta]
 *
 * In fresh mode both are O(1) at the end of the lazy span: a range that
 * continues the span (or any range, when the span is empty) just moves
 * lazy_end, so its pages are described only when first handed out, and
 * removing the span's tail moves lazy_end back.  Elsewhere, an added range
 * is described at once and freed block by block (merging with free
 * buddies, as any free does); a removed range must be all free: its blocks
 * leave the free lists (a free block reaching outside the range is split
 * first) and their descriptors are zeroed, so that they read as fresh if
 * the pages come back.
 *
 * On a kernel the descriptor run is ordinary RAM.  A platform that backs
 * it lazily (the hosted build maps it as the heap grows) must back every
 * descriptor the PFA may read: those of the present pages, of the page
 * right after each present range (a buddy's head), and, unless present
 * ranges start on a largest block, of the buddies below them.
 */

static bool overlaps_fixed(phys_addr_t lo, phys_addr_t hi)
{
	if (lo < pfa.meta.end && hi > pfa.meta.base)
		return true;
	for (unsigned i = 0; i < pfa.nreserved; i++)
		if (lo < pfa.reserved[i].end && hi > pfa.reserved[i].base)
			return true;
	return false;
}

static bool in_one_region(phys_addr_t lo, phys_addr_t hi)
{
	for (unsigned r = 0; r < pfa.nregions; r++)
		if (lo >= pfa.region[r].base && hi <= pfa.region[r].end)
			return true;
	return false;
}

static bool in_lazy_span(uint32_t idx)
{
	return idx >= pfa.lazy_next && idx < pfa.lazy_end;
}

/* [lo, hi) may be added or removed at all: RAM given at setup, not the
 * metadata nor a reservation. */
static bool hotplug_range_ok(phys_addr_t lo, phys_addr_t hi, const char *what)
{
	if (in_one_region(lo, hi) && !overlaps_fixed(lo, hi))
		return true;
	mm_printf("pfa: %s of 0x%llx-0x%llx refused: not inside a region given at setup, "
		  "or overlaps the metadata or a reservation\n", what,
		  (unsigned long long)lo, (unsigned long long)hi);
	return false;
}

static bool all_absent(uint32_t a, uint32_t b)
{
	for (uint32_t i = a; i < b; i++)
		if (in_lazy_span(i) || pfa_idx_page(i)->owner != PG_UNMANAGED)
			return false;
	return true;
}

/* Fresh mode: [a, b) may simply become (the end of) the lazy span. */
static bool lazy_can_take(uint32_t a, uint32_t b)
{
	return pfa.fresh && !(a & (PFA_LAZY_PAGES - 1)) && !(b & (PFA_LAZY_PAGES - 1)) &&
	       (pfa.lazy_next == pfa.lazy_end || a == pfa.lazy_end);
}

/* Describe [a, b) as blocks just handed out by pfa_alloc(), to be given
 * to pfa_free() once the lock is dropped.  Lock held. */
static void describe_as_allocated(uint32_t a, uint32_t b)
{
	for (uint32_t i = a; i < b;) {
		unsigned k = piece_order(i, b);
		struct page *pg = pfa_idx_page(i);
		pg[0] = (struct page){ PFA_NIL, PFA_NIL, PG_PFA, (uint8_t)k, 0, 0 };
		for (uint32_t j = 1; j < PFA_BLOCK_PAGES(k); j++)
			pg[j] = (struct page){ 0, 0, PG_TAIL, 0, 0, j };
		i += PFA_BLOCK_PAGES(k);
	}
}

static int hot_add(phys_addr_t lo, phys_addr_t hi)
{
	if (!hotplug_range_ok(lo, hi, "hot-add"))
		return -1;
	uint32_t a = pa_to_idx(lo), b = pa_to_idx(hi);

	mm_spin_lock(&pfa.lock);
	if (!all_absent(a, b)) {
		mm_spin_unlock(&pfa.lock);
		mm_printf("pfa: hot-add of 0x%llx-0x%llx refused: pages already present\n",
			  (unsigned long long)lo, (unsigned long long)hi);
		return -1;
	}
	pfa.total_pages += b - a;
	if (lazy_can_take(a, b)) {
		if (pfa.lazy_next == pfa.lazy_end)
			pfa.lazy_next = a;
		pfa.lazy_end = b;
		pfa.free_pages += b - a;
		mm_spin_unlock(&pfa.lock);
		return 0;
	}
	describe_as_allocated(a, b);
	mm_spin_unlock(&pfa.lock);
	for (uint32_t i = a; i < b;) {
		unsigned k = piece_order(i, b);
		pfa_free(pfa_idx_phys(i), k);
		i += PFA_BLOCK_PAGES(k);
	}
	return 0;
}

/* Every page of [a, b) is free, lazy or absent.  Lock held. */
static bool all_free_or_absent(uint32_t a, uint32_t b)
{
	for (uint32_t i = a; i < b;) {
		if (in_lazy_span(i)) {
			i = pfa.lazy_end;
			continue;
		}
		unsigned owner = pfa_idx_page(i)->owner;
		if (owner != PG_FREE && owner != PG_FREE_TAIL && owner != PG_UNMANAGED)
			return false;
		i++;
	}
	return true;
}

/* The described free pages of [a, b) leave; returns how many.  Lock held. */
static uint64_t remove_free_blocks(uint32_t a, uint32_t b)
{
	uint64_t gone = 0;

	for (uint32_t i = a; i < b;) {
		if (in_lazy_span(i)) {
			i = pfa.lazy_end;
			continue;
		}
		if (pfa_idx_page(i)->owner == PG_UNMANAGED) {
			i++;
			continue;
		}
		unsigned K = 0, k = piece_order(i, b);
		uint32_t head = free_block_of(i, &K);
		if (head == PFA_NIL) {          /* cannot happen: checked before */
			mm_printf("pfa: no free block holds page 0x%llx\n",
				  (unsigned long long)pfa_idx_phys(i));
			break;
		}
		if (k > K)
			k = K;
		split_out(head, K, i, k);
		pfa_zero(pfa_idx_page(i), (size_t)PFA_BLOCK_PAGES(k) * sizeof(struct page));
		gone += PFA_BLOCK_PAGES(k);
		i += PFA_BLOCK_PAGES(k);
	}
	return gone;
}

int pfa_remove_region(phys_addr_t base, uint64_t size)
{
	phys_addr_t lo = page_up(base), hi = page_down(range_end(base, size));
	if (lo >= hi)
		return 0;
	if (!pfa.ready || !hotplug_range_ok(lo, hi, "hot-remove"))
		return -1;
	uint32_t a = pa_to_idx(lo), b = pa_to_idx(hi);

	mm_spin_lock(&pfa.lock);
	/* the lazy span stays one piece: describe what the range would cut
	 * off it, so that what remains of the span inside [a, b) is all of it */
	if (b > pfa.lazy_next && b < pfa.lazy_end)
		pfa_lazy_materialize_upto(b);
	if (a > pfa.lazy_next && a < pfa.lazy_end)
		pfa_lazy_materialize_upto(a);
	if (!all_free_or_absent(a, b)) {
		mm_spin_unlock(&pfa.lock);
		return -1;                      /* in use: not an error to ask */
	}
	uint64_t gone = remove_free_blocks(a, b);
	if (pfa.lazy_next < pfa.lazy_end && pfa.lazy_next >= a && pfa.lazy_end <= b) {
		gone += pfa.lazy_end - pfa.lazy_next;
		pfa.lazy_next = pfa.lazy_end;
	}
	pfa.free_pages -= gone;
	pfa.total_pages -= gone;
	if (pfa.low_water > pfa.free_pages)
		pfa.low_water = pfa.free_pages;
	mm_spin_unlock(&pfa.lock);
	return 0;
}

/*
 * bootinfo.c - building the boot_info memory lists.
 *
 * Firmware maps arrive unsorted, with touching or overlapping entries.
 * boot_add_ram() keeps ram[] sorted and merged, so every later consumer
 * (the page allocator, the banner, tests) sees disjoint ascending ranges:
 *
 *     add [0x100000,+3G)  add [0x0,+0x9fc00)  add [4G,+1G)
 *     ram[] = { [0,0x9fc00) [0x100000,0xc0000000) [0x100000000,0x140000000) }
 *
 * reserved[] is kept the same way: firmware and boot stub may reserve the
 * same page twice (x86 PVH puts its tables in page 0, which is reserved as
 * a whole); only the union matters, to the page allocator and to a reader
 * of the banner.  Reservations may still overlap RAM edges and holes.
 *
 * Malformed RAM entries are handled here, each with one "boot: ..." line
 * naming the entry (ranges as base-end, end exclusive) and what was done:
 *
 *   zero length                          ignored
 *   base + size past 2^64                ignored
 *   above bi->phys_limit (the direct     ignored, or clipped at the limit
 *     map, the CPU's address width)
 *   listed out of address order          sorted
 *   overlapping another entry            merged (touching ones silently)
 *   more than BOOT_MAX_REGIONS ranges    ignored (that RAM is not used)
 *   e820 entry not on page boundaries    clipped inward to whole pages
 *   e820 entry without a whole page      ignored
 *
 * A reservation that does not fit stops the boot (dropping it would hand
 * out memory that is in use).  boot_check_kernel() says when no RAM lies
 * above the kernel image.  What the page allocator makes of the result
 * (all RAM reserved, ...) is its own report (strata/pfa.h).
 */
#include <kernel/boot.h>
#include <kernel/panic.h>
#include <strata/format.h>

#define PAGE_BYTES 4096ull

static uint64_t page_down(uint64_t x) { return x & ~(PAGE_BYTES - 1); }
static uint64_t page_up(uint64_t x) { return (x + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1); }

static uint64_t end_of(const struct boot_region *r) { return r->base + r->size; }

/* Merge [base, end) into the sorted, disjoint list r[]: neighbours that
 * overlap or touch become one.  -1 (nothing changed) if it needs a new
 * slot and r[] is full.  With `say`, overlaps and order are reported. */
static int add_merged(struct boot_region *r, unsigned *n, uint64_t base, uint64_t end,
		      const char *say)
{
	unsigned i = 0;
	while (i < *n && end_of(&r[i]) < base)
		i++;
	if (say && *n && base < r[*n - 1].base)
		mm_printf("boot: %s 0x%llx-0x%llx listed after 0x%llx-0x%llx: sorted\n", say,
			  (unsigned long long)base, (unsigned long long)end,
			  (unsigned long long)r[*n - 1].base, (unsigned long long)end_of(&r[*n - 1]));
	if (i < *n && r[i].base <= end) {             /* overlaps or touches r[i] */
		unsigned j = i;
		uint64_t lo = base < r[i].base ? base : r[i].base, hi = end;
		for (; j < *n && r[j].base <= end; j++) {
			if (say && r[j].base < end && base < end_of(&r[j]))
				mm_printf("boot: %s 0x%llx-0x%llx overlaps 0x%llx-0x%llx: merged\n",
					  say, (unsigned long long)base, (unsigned long long)end,
					  (unsigned long long)r[j].base,
					  (unsigned long long)end_of(&r[j]));
			if (end_of(&r[j]) > hi)
				hi = end_of(&r[j]);
		}
		r[i] = (struct boot_region){ lo, hi - lo };
		unsigned k = i + 1;
		while (j < *n)                                /* close the gap */
			r[k++] = r[j++];
		*n = k;
		return 0;
	}
	if (*n >= BOOT_MAX_REGIONS)
		return -1;
	for (unsigned k = *n; k > i; k--)
		r[k] = r[k - 1];
	r[i] = (struct boot_region){ base, end - base };
	(*n)++;
	return 0;
}

void boot_add_ram(struct boot_info *bi, uint64_t base, uint64_t size)
{
	if (size == 0) {
		mm_printf("boot: RAM entry at 0x%llx ignored: zero length\n",
			  (unsigned long long)base);
		return;
	}
	if (size - 1 > ~0ull - base) {
		mm_printf("boot: RAM entry 0x%llx+0x%llx ignored: runs past the end of the "
			  "address space\n", (unsigned long long)base, (unsigned long long)size);
		return;
	}
	uint64_t end = base + size, limit = bi->phys_limit;
	if (limit && end > limit) {
		if (base >= limit) {
			mm_printf("boot: RAM 0x%llx-0x%llx ignored: above the addressable limit "
				  "0x%llx\n", (unsigned long long)base, (unsigned long long)end,
				  (unsigned long long)limit);
			return;
		}
		mm_printf("boot: RAM 0x%llx-0x%llx clipped to 0x%llx-0x%llx: above the "
			  "addressable limit\n", (unsigned long long)base, (unsigned long long)end,
			  (unsigned long long)base, (unsigned long long)limit);
		end = limit;
	}
	if (add_merged(bi->ram, &bi->nram, base, end, "RAM") != 0)
		mm_printf("boot: RAM 0x%llx-0x%llx ignored: more than %d RAM regions\n",
			  (unsigned long long)base, (unsigned long long)end, BOOT_MAX_REGIONS);
}

void boot_add_reserved(struct boot_info *bi, uint64_t base, uint64_t size)
{
	if (size == 0)
		return;
	uint64_t end = size - 1 > ~0ull - base ? ~0ull : base + size;   /* more is safe */
	if (add_merged(bi->reserved, &bi->nreserved, base, end, NULL) != 0)
		panic("boot: reservation 0x%llx-0x%llx does not fit: more than %d reserved ranges",
		      (unsigned long long)base, (unsigned long long)end, BOOT_MAX_REGIONS);
}

void boot_add_e820(struct boot_info *bi, const struct boot_e820_entry *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t base = e[i].addr, size = e[i].size;
		if (e[i].type != BOOT_E820_RAM)
			continue;
		if (size == 0 || size - 1 > ~0ull - base) {
			boot_add_ram(bi, base, size);          /* says why not */
			continue;
		}
		uint64_t lo = page_up(base), hi = page_down(base + size);
		if (lo < base || lo >= hi) {
			mm_printf("boot: e820 entry %u (0x%llx-0x%llx) ignored: no whole page inside\n",
				  i, (unsigned long long)base, (unsigned long long)(base + size));
			continue;
		}
		if (lo != base || hi != base + size)
			mm_printf("boot: e820 entry %u (0x%llx-0x%llx) not page aligned: using "
				  "0x%llx-0x%llx\n", i, (unsigned long long)base,
				  (unsigned long long)(base + size), (unsigned long long)lo,
				  (unsigned long long)hi);
		boot_add_ram(bi, lo, hi - lo);
	}
}

void boot_check_kernel(const struct boot_info *bi)
{
	uint64_t below = 0, above = 0, ks = bi->kernel_base, ke = bi->kernel_end;
	int inside = 0;

	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t b = bi->ram[i].base, e = end_of(&bi->ram[i]);
		if (b <= ks && e >= ke)
			inside = 1;
		if (e > ke)
			above += e - (b > ke ? b : ke);
		if (b < ks)
			below += (e < ks ? e : ks) - b;
	}
	if (!inside)
		mm_printf("boot: kernel image 0x%llx-0x%llx is not inside the RAM the firmware "
			  "reported\n", (unsigned long long)ks, (unsigned long long)ke);
	if (!above)
		mm_printf("boot: no RAM above the kernel image (ends 0x%llx): only the %llu KiB "
			  "below it\n", (unsigned long long)ke, (unsigned long long)(below >> 10));
}

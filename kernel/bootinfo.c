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
 */
#include <kernel/boot.h>
#include <kernel/panic.h>

static void insert_sorted(struct boot_region *r, unsigned *n, uint64_t base,
			  uint64_t size, const char *what)
{
	if (*n >= BOOT_MAX_REGIONS)
		panic("boot: more than %d %s regions", BOOT_MAX_REGIONS, what);
	unsigned i = *n;
	while (i > 0 && r[i - 1].base > base) {
		r[i] = r[i - 1];
		i--;
	}
	r[i].base = base;
	r[i].size = size;
	(*n)++;
}

/* Insert, then merge overlapping or touching neighbours. */
static void add_merged(struct boot_region *r, unsigned *n, uint64_t base,
		       uint64_t size, const char *what)
{
	if (size == 0 || base + size < base)
		return;
	insert_sorted(r, n, base, size, what);
	unsigned out = 0;
	for (unsigned i = 1; i < *n; i++) {
		struct boot_region *last = &r[out];
		uint64_t end = last->base + last->size;
		if (r[i].base <= end) {
			uint64_t e2 = r[i].base + r[i].size;
			if (e2 > end)
				last->size = e2 - last->base;
		} else {
			r[++out] = r[i];
		}
	}
	*n = out + 1;
}

void boot_add_ram(struct boot_info *bi, uint64_t base, uint64_t size)
{
	add_merged(bi->ram, &bi->nram, base, size, "RAM");
}

void boot_add_reserved(struct boot_info *bi, uint64_t base, uint64_t size)
{
	add_merged(bi->reserved, &bi->nreserved, base, size, "reserved");
}

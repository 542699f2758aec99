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
 * reserved[] is only sorted: reservations may overlap anything and the
 * page allocator honours their union.
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

void boot_add_ram(struct boot_info *bi, uint64_t base, uint64_t size)
{
	if (size == 0 || base + size < base)
		return;
	insert_sorted(bi->ram, &bi->nram, base, size, "RAM");
	/* merge overlapping or touching neighbours */
	unsigned out = 0;
	for (unsigned i = 1; i < bi->nram; i++) {
		struct boot_region *last = &bi->ram[out];
		uint64_t end = last->base + last->size;
		if (bi->ram[i].base <= end) {
			uint64_t e2 = bi->ram[i].base + bi->ram[i].size;
			if (e2 > end)
				last->size = e2 - last->base;
		} else {
			bi->ram[++out] = bi->ram[i];
		}
	}
	bi->nram = out + 1;
}

void boot_add_reserved(struct boot_info *bi, uint64_t base, uint64_t size)
{
	if (size == 0)
		return;
	insert_sorted(bi->reserved, &bi->nreserved, base, size, "reserved");
}

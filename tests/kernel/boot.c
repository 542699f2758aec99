/*
 * boot.c - suite "boot": the boot stub's promises, checked from C.
 *
 * Every RAM region the firmware reported is reachable through the direct
 * map (first and last word of each region, the highest page of all RAM
 * included: on x86_64 -m 5G that is above 4 GiB), the map is sorted and
 * disjoint, the command line parser finds what it should, and the frame
 * records panic()'s backtrace walks are where kernel/arch.h says
 * (ARCH_FRAME_RECORD: at fp on x86_64/aarch64, below it on riscv64).
 */
#include <kernel/boot.h>
#include <kernel/cmdline.h>
#include <kernel/ktest.h>
#include <kernel/panic.h>
#include <string.h>

static int poke(uint64_t dmap, uint64_t pa, uint64_t pattern)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(pa + dmap);
	uint64_t old = *p;
	*p = pattern;
	int ok = *p == pattern;
	*p = ~pattern;
	ok = ok && *p == ~pattern;
	*p = old;
	return ok;
}

KTEST(boot, ram_edges_reachable)
{
	const struct boot_info *bi = t->bi;
	KT_REQUIRE(t, bi->nram > 0, "no RAM regions");
	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t first = (bi->ram[i].base + 7) & ~7ULL;
		uint64_t last = (bi->ram[i].base + bi->ram[i].size - 8) & ~7ULL;
		KT_CHECK(t, poke(bi->direct_map_offset, first, 0x5157A7A0ULL + i),
			 "first word of RAM region %u (pa 0x%llx) does not hold a value",
			 i, (unsigned long long)first);
		KT_CHECK(t, poke(bi->direct_map_offset, last, 0xA5A5F00DULL << 8 | i),
			 "last word of RAM region %u (pa 0x%llx) does not hold a value",
			 i, (unsigned long long)last);
	}
	const struct boot_region *top = &bi->ram[bi->nram - 1];
	kt_log("highest RAM word 0x%llx written and read back\n",
	       (unsigned long long)(top->base + top->size - 8));
}

KTEST(boot, memory_map_sorted_disjoint)
{
	const struct boot_info *bi = t->bi;
	for (unsigned i = 0; i < bi->nram; i++) {
		KT_CHECK(t, bi->ram[i].size > 0, "region %u is empty", i);
		if (i)
			KT_CHECK(t, bi->ram[i].base > bi->ram[i - 1].base + bi->ram[i - 1].size,
				 "regions %u and %u overlap or touch", i - 1, i);
	}
	for (unsigned i = 1; i < bi->nreserved; i++)
		KT_CHECK(t, bi->reserved[i].base >= bi->reserved[i - 1].base,
			 "reserved list not sorted at %u", i);
}

KTEST(boot, bootinfo_merges_ram)
{
	static struct boot_info b;
	memset(&b, 0, sizeof b);
	boot_add_ram(&b, 0x100000, 0x100000);
	boot_add_ram(&b, 0x0, 0x9f000);
	boot_add_ram(&b, 0x200000, 0x1000);     /* touches the first: merged */
	boot_add_ram(&b, 0x150000, 0x20000);    /* inside: merged */
	boot_add_ram(&b, 0x100000000ULL, 0x1000);
	KT_REQUIRE(t, b.nram == 3, "expected 3 regions, got %u", b.nram);
	KT_CHECK(t, b.ram[0].base == 0 && b.ram[0].size == 0x9f000, "region 0 wrong");
	KT_CHECK(t, b.ram[1].base == 0x100000 && b.ram[1].size == 0x101000,
		 "region 1 is 0x%llx+0x%llx", (unsigned long long)b.ram[1].base,
		 (unsigned long long)b.ram[1].size);
	KT_CHECK(t, b.ram[2].base == 0x100000000ULL, "region 2 wrong");
}

KTEST(boot, cmdline_parsing)
{
	char v[16];
	KT_CHECK(t, cmdline_get("a=1 test=pfa,kmalloc seed=7", "test", v, sizeof v) &&
		 !strcmp(v, "pfa,kmalloc"), "test= not found");
	KT_CHECK(t, cmdline_get_u64("a=1 seed=0x10", "seed", 0) == 16, "hex seed");
	KT_CHECK(t, cmdline_get_u64("seedling=3", "seed", 9) == 9, "prefix matched");
	KT_CHECK(t, !cmdline_get("", "test", v, sizeof v), "empty cmdline");
	KT_CHECK(t, cmdline_get("test=abcdefghijklmnopqrstuvwxyz", "test", v, sizeof v) &&
		 strlen(v) == sizeof v - 1, "value not truncated");
}

KTEST(boot, bootinfo_merges_reserved)
{
	static struct boot_info b;
	memset(&b, 0, sizeof b);
	boot_add_reserved(&b, 0x0, 0x1000);
	boot_add_reserved(&b, 0x0, 0x1000);          /* duplicate */
	boot_add_reserved(&b, 0x1000, 0x1000);       /* touching */
	boot_add_reserved(&b, 0x100000, 0x93000);
	boot_add_reserved(&b, 0x180000, 0x20000);    /* overlaps the end */
	KT_REQUIRE(t, b.nreserved == 2, "expected 2 reserved ranges, got %u", b.nreserved);
	KT_CHECK(t, b.reserved[0].base == 0 && b.reserved[0].size == 0x2000,
		 "range 0 is 0x%llx+0x%llx", (unsigned long long)b.reserved[0].base,
		 (unsigned long long)b.reserved[0].size);
	KT_CHECK(t, b.reserved[1].base == 0x100000 && b.reserved[1].size == 0xa0000,
		 "range 1 is 0x%llx+0x%llx", (unsigned long long)b.reserved[1].base,
		 (unsigned long long)b.reserved[1].size);
}

/* inner() walks its own chain: the first return address must be where it
 * returns to in outer(), the second where outer() returns to here. */
static uintptr_t walked[4], inner_ret, outer_ret;
static int nwalked;

static __attribute__((noinline)) void inner(void)
{
	inner_ret = (uintptr_t)__builtin_return_address(0);
	nwalked = backtrace_collect((uintptr_t)__builtin_frame_address(0), walked, 4);
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void outer(void)
{
	outer_ret = (uintptr_t)__builtin_return_address(0);
	inner();
	__asm__ volatile("" ::: "memory");   /* no tail call: outer keeps its frame */
}

KTEST(boot, frame_records)
{
	outer();
	KT_REQUIRE(t, nwalked >= 2, "the walk found %d frame(s)", nwalked);
	KT_CHECK(t, walked[0] == inner_ret, "frame 0 returns to 0x%lx, inner() returns to 0x%lx",
		 (unsigned long)walked[0], (unsigned long)inner_ret);
	KT_CHECK(t, walked[1] == outer_ret, "frame 1 returns to 0x%lx, outer() returns to 0x%lx",
		 (unsigned long)walked[1], (unsigned long)outer_ret);
}

/*
 * test_memmap.c - malformed firmware memory maps, through the code the
 * kernel runs: the device tree parser (lib/fdt.c) on crafted blobs, the
 * PVH/E820 conversion and the boot_info lists (kernel/bootinfo.c), and the
 * page-frame allocator's setup (mm/pfa_setup.c).
 *
 * Each test feeds one kind of bad map (overlapping, unsorted, zero-length,
 * misaligned, sub-page, wrapping, above the addressable limit, all RAM
 * reserved, RAM below the kernel only, a reservation outside RAM, more
 * regions than the tables hold) and asserts the outcome (what ends up in
 * boot_info and in the PFA, the setup result) and the exact line printed.
 *
 * "Physical" memory is an anonymous MAP_NORESERVE mapping: the PFA's
 * direct-map offset points phys 0 at a base chosen so the map's RAM lands
 * inside it.  Only page descriptors are written, never the RAM itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "host.h"
#include "fdt_build.h"
#include <kernel/boot.h>
#include <kernel/panic.h>
#include <strata/pfa.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* ------------------------------------------------------------ the kernel's panic */

static jmp_buf panic_jmp;
static char panic_msg[256];

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(panic_msg, sizeof panic_msg, fmt, ap);
	va_end(ap);
	longjmp(panic_jmp, 1);
}

/* ------------------------------------------------------------ output */

static char out[16384];

static void capture(void) { out[0] = 0; host_capture_start(out, sizeof out); }
static void uncapture(void) { host_capture_stop(); }

#define SAID(line) CHECK(strstr(out, line "\n") != NULL, "no line \"%s\" in:\n%s", line, out)
#define NOT_SAID(text) CHECK(strstr(out, text) == NULL, "unexpected \"%s\" in:\n%s", text, out)

/* ------------------------------------------------------------ "physical" memory */

/* phys [lo, hi) backed by a fresh mapping; the offset for pfa_setup_begin */
struct phys {
	void *va;
	uint64_t lo, hi;
	uintptr_t offset;
};

static int phys_get(struct phys *p, uint64_t lo, uint64_t hi)
{
	p->lo = lo;
	p->hi = hi;
	p->va = mmap(NULL, hi - lo, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p->va == MAP_FAILED)
		return 0;
	p->offset = (uintptr_t)p->va - lo;
	return 1;
}

static void phys_put(struct phys *p) { munmap(p->va, p->hi - p->lo); }

/* ------------------------------------------------------------ the kernel's path */

/* What an arch's setup does with a device tree (arch/{aarch64,riscv64}/
 * setup.c: parse_dtb, fill_boot_info) minus the page tables: RAM and
 * reservations into boot_info. */
static int dtb_to_bootinfo(const uint8_t *blob, size_t size, struct boot_info *bi)
{
	static struct fdt_region ram[BOOT_MAX_REGIONS], rsv[BOOT_MAX_REGIONS];
	struct fdt f;
	int err = fdt_open(&f, blob, size);
	if (err)
		return err;
	int nram = fdt_memory_regions(&f, ram, BOOT_MAX_REGIONS);
	if (nram < 0)
		return nram;
	int nrsv = fdt_reserved_regions(&f, rsv, BOOT_MAX_REGIONS);
	if (nrsv < 0)
		return nrsv;
	for (int i = 0; i < nram; i++)
		boot_add_ram(bi, ram[i].base, ram[i].size);
	for (int i = 0; i < nrsv; i++)
		boot_add_reserved(bi, rsv[i].base, rsv[i].size);
	return 0;
}

/* What kernel/mm_glue.c's mm_init() does: boot_info into the PFA. */
static int bootinfo_to_pfa(const struct boot_info *bi, uintptr_t offset)
{
	boot_check_kernel(bi);
	pfa_setup_begin(offset);
	for (unsigned i = 0; i < bi->nram; i++)
		pfa_add_region(bi->ram[i].base, bi->ram[i].size);
	for (unsigned i = 0; i < bi->nreserved; i++)
		pfa_reserve(bi->reserved[i].base, bi->reserved[i].size);
	return pfa_setup_end();
}

/* A root with 2-cell addresses and sizes, then one memory node whose reg
 * holds the n (base, size) pairs given, then (optionally) one
 * /reserved-memory child. */
static uint8_t *dtb_memory(size_t *size, const uint64_t (*reg)[2], int n,
			   const uint64_t *resv /* base, size or NULL */)
{
	struct fdtb b = { 0 };
	b_begin(&b, "");
	b_prop_cells(&b, "#address-cells", 1, 2);
	b_prop_cells(&b, "#size-cells", 1, 2);
	b_begin(&b, "memory@40000000");
	b_prop_str(&b, "device_type", "memory");
	uint8_t *v = calloc((size_t)n, 16);
	for (int i = 0; i < n; i++) {
		put64(v + 16 * i, reg[i][0]);
		put64(v + 16 * i + 8, reg[i][1]);
	}
	b_prop(&b, "reg", v, 16 * (size_t)n);
	free(v);
	b_end(&b);
	if (resv) {
		b_begin(&b, "reserved-memory");
		b_prop_cells(&b, "#address-cells", 1, 2);
		b_prop_cells(&b, "#size-cells", 1, 2);
		b_prop(&b, "ranges", NULL, 0);
		b_begin(&b, "everything@40000000");
		b_prop_cells(&b, "reg", 4, (uint32_t)(resv[0] >> 32), (uint32_t)resv[0],
			     (uint32_t)(resv[1] >> 32), (uint32_t)resv[1]);
		b_end(&b);
		b_end(&b);
	}
	b_end(&b);
	return b_finish(&b, size);
}

static int quiet_pfa_check(void)
{
	char buf[4096];
	host_capture_start(buf, sizeof buf);
	int r = pfa_check();
	host_capture_stop();
	return r;
}

/* ------------------------------------------------------------ device tree maps */

/* Unsorted, overlapping and zero-length reg entries: sorted, merged,
 * ignored, each said; the PFA gets one clean region. */
TEST(dtb_overlapping_unsorted_zero_length)
{
	static const uint64_t reg[][2] = {
		{ 0x42000000, 0x2000000 },
		{ 0x40000000, 0x2800000 },    /* before the first, overlapping it */
		{ 0x43000000, 0 },            /* zero length */
	};
	size_t size;
	uint8_t *blob = dtb_memory(&size, reg, 3, NULL);
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x44000000), "mmap");
	capture();
	int err = dtb_to_bootinfo(blob, size, &bi);
	int r = bootinfo_to_pfa(&bi, p.offset);
	uncapture();
	CHECK(err == 0, "dtb: %s", fdt_strerror(err));
	SAID("boot: RAM 0x40000000-0x42800000 listed after 0x42000000-0x44000000: sorted");
	SAID("boot: RAM 0x40000000-0x42800000 overlaps 0x42000000-0x44000000: merged");
	SAID("boot: RAM entry at 0x43000000 ignored: zero length");
	CHECK(bi.nram == 1 && bi.ram[0].base == 0x40000000 && bi.ram[0].size == 0x4000000,
	      "boot_info RAM: %u regions, first 0x%llx+0x%llx", bi.nram,
	      (unsigned long long)bi.ram[0].base, (unsigned long long)bi.ram[0].size);
	CHECK(r == PFA_MAP_OK, "pfa setup: %s", pfa_map_strerror(r));
	CHECK(pfa_total_pages() == 0x4000000 / PAGE_SIZE, "pfa manages %llu pages",
	      (unsigned long long)pfa_total_pages());
	CHECK(quiet_pfa_check() == 0, "pfa_check");
	free(blob);
	phys_put(&p);
}

/* RAM straddling and above the addressable limit (the direct map, the
 * CPU's address width: bi->phys_limit, which each arch sets): clipped and
 * ignored, said; nothing above the limit reaches the PFA. */
TEST(dtb_above_addressable_limit)
{
	static const uint64_t reg[][2] = {
		{ 0x40000000, 32 * MIB },
		{ 0x7e000000, 64 * MIB },     /* straddles 2 GiB */
		{ 0x100000000ull, GIB },      /* above */
	};
	size_t size;
	uint8_t *blob = dtb_memory(&size, reg, 3, NULL);
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	bi.phys_limit = 0x80000000;
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x80000000), "mmap");
	capture();
	int err = dtb_to_bootinfo(blob, size, &bi);
	int r = bootinfo_to_pfa(&bi, p.offset);
	uncapture();
	CHECK(err == 0, "dtb: %s", fdt_strerror(err));
	SAID("boot: RAM 0x7e000000-0x82000000 clipped to 0x7e000000-0x80000000: above the "
	     "addressable limit");
	SAID("boot: RAM 0x100000000-0x140000000 ignored: above the addressable limit 0x80000000");
	CHECK(bi.nram == 2 && bi.ram[1].base + bi.ram[1].size == 0x80000000,
	      "boot_info: %u regions", bi.nram);
	CHECK(r == PFA_MAP_OK, "pfa setup: %s", pfa_map_strerror(r));
	CHECK(pfa_page(0x7ffff000) != NULL && pfa_page(0x80000000) == NULL &&
	      pfa_page(0x100000000ull) == NULL, "PFA manages memory above the limit");
	free(blob);
	phys_put(&p);
}

/* A /reserved-memory node over all of RAM: setup refused by name (the
 * kernel panics with pfa_map_strerror's words), nothing handed out. */
TEST(dtb_reservation_covers_all_ram)
{
	static const uint64_t reg[][2] = { { 0x40000000, 16 * MIB } };
	static const uint64_t all[2] = { 0x40000000, 16 * MIB };
	size_t size;
	uint8_t *blob = dtb_memory(&size, reg, 1, all);
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x41000000), "mmap");
	capture();
	int err = dtb_to_bootinfo(blob, size, &bi);
	int r = bootinfo_to_pfa(&bi, p.offset);
	uncapture();
	CHECK(err == 0, "dtb: %s", fdt_strerror(err));
	CHECK(r == PFA_MAP_ALL_RESERVED, "setup returned %d (%s)", r, pfa_map_strerror(r));
	SAID("pfa: setup refused: reservations cover all RAM (1 region(s), no free page left)");
	CHECK(!strcmp(pfa_map_strerror(r), "reservations cover all RAM"), "strerror: %s",
	      pfa_map_strerror(r));
	CHECK(pfa_alloc(0, 0) == 0, "a page handed out after a refused setup");
	free(blob);
	phys_put(&p);
}

/* RAM that ends below the kernel image (the image itself outside the
 * map): said twice by boot_check_kernel, the kernel's reservation said to
 * lie outside every region, and the RAM below still managed. */
TEST(dtb_ram_below_kernel_only)
{
	static const uint64_t reg[][2] = { { 0x40000000, 2 * MIB } };
	size_t size;
	uint8_t *blob = dtb_memory(&size, reg, 1, NULL);
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	bi.kernel_base = 0x40200000;
	bi.kernel_end = 0x40600000;
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x40600000), "mmap");
	capture();
	int err = dtb_to_bootinfo(blob, size, &bi);
	boot_add_reserved(&bi, bi.kernel_base, bi.kernel_end - bi.kernel_base);
	int r = bootinfo_to_pfa(&bi, p.offset);
	uncapture();
	CHECK(err == 0, "dtb: %s", fdt_strerror(err));
	SAID("boot: kernel image 0x40200000-0x40600000 is not inside the RAM the firmware reported");
	SAID("boot: no RAM above the kernel image (ends 0x40600000): only the 2048 KiB below it");
	SAID("pfa: reservation 0x40200000-0x40600000 ignored: outside every region");
	CHECK(r == PFA_MAP_OK, "pfa setup: %s", pfa_map_strerror(r));
	uint64_t pa = pfa_alloc(0, 0);
	CHECK(pa >= 0x40000000 && pa < 0x40200000, "page 0x%llx", (unsigned long long)pa);
	if (pa)
		pfa_free(pa, 0);
	CHECK(quiet_pfa_check() == 0, "pfa_check");

	/* the image inside RAM, nothing above it: one line, not two */
	memset(&bi, 0, sizeof bi);
	bi.kernel_base = 0x40200000;
	bi.kernel_end = 0x40600000;
	capture();
	boot_add_ram(&bi, 0x40000000, 6 * MIB);
	boot_check_kernel(&bi);
	uncapture();
	SAID("boot: no RAM above the kernel image (ends 0x40600000): only the 2048 KiB below it");
	NOT_SAID("is not inside");
	free(blob);
	phys_put(&p);
}

/* More reg entries than boot_info holds: the parser says NOSPACE (the
 * arch names it in its panic); boot_add_ram itself drops the 129th range
 * with a line, and so does the PFA's table. */
TEST(too_many_regions)
{
	enum { N = BOOT_MAX_REGIONS + 2 };
	static uint64_t reg[N][2];
	for (int i = 0; i < N; i++) {
		reg[i][0] = 0x40000000 + (uint64_t)i * 2 * MIB;
		reg[i][1] = MIB;
	}
	size_t size;
	uint8_t *blob = dtb_memory(&size, (const uint64_t (*)[2])reg, N, NULL);
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	capture();
	int err = dtb_to_bootinfo(blob, size, &bi);
	uncapture();
	CHECK(err == FDT_ERR_NOSPACE, "dtb with %d ranges: %s", N, fdt_strerror(err));

	capture();
	for (int i = 0; i <= BOOT_MAX_REGIONS; i++)
		boot_add_ram(&bi, reg[i][0], reg[i][1]);
	uncapture();
	CHECK(bi.nram == BOOT_MAX_REGIONS, "boot_info holds %u", bi.nram);
	SAID("boot: RAM 0x50000000-0x50100000 ignored: more than 128 RAM regions");

	/* a range touching one already there still merges into it */
	capture();
	boot_add_ram(&bi, 0x40100000, MIB);
	uncapture();
	CHECK(bi.nram == BOOT_MAX_REGIONS - 1 && bi.ram[0].size == 3 * MIB,
	      "touching range not merged into a full table: %u", bi.nram);

	pfa_setup_begin(0);
	capture();
	int r = 0;
	for (int i = 0; i <= PFA_MAX_REGIONS; i++)
		r = pfa_add_region(reg[i][0], reg[i][1]);
	uncapture();
	CHECK(r == PFA_MAP_FULL, "129th region: %d", r);
	SAID("pfa: region 0x50000000-0x50100000 rejected: region table full (128 regions)");
	free(blob);
}

/* ------------------------------------------------------------ PVH / E820 maps */

/* The x86_64 boot stub's conversion (boot_add_e820): type 1 only, whole
 * pages, sorted, merged, clipped at the limit, every oddity said. */
TEST(e820_malformed_entries)
{
	static const struct boot_e820_entry e[] = {
		{ 0x100000, 0x3ff00000, 1, 0 },          /* 0: 1 MiB .. 1 GiB */
		{ 0x0, 0x9fc00, 1, 0 },                  /* 1: unsorted, end not aligned */
		{ 0x9fc00, 0x60400, 2, 0 },              /* 2: reserved: skipped */
		{ 0x20000000, 0x30000000, 1, 0 },        /* 3: overlaps 0 */
		{ 0x50000000, 0, 1, 0 },                 /* 4: zero length */
		{ 0x60000010, 0xff0, 1, 0 },             /* 5: no whole page */
		{ 0xfffffffffffff000ull, 0x2000, 1, 0 }, /* 6: wraps */
		{ 0x400000000000ull, GIB, 1, 0 },        /* 7: above the limit */
	};
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	bi.phys_limit = 1ull << 46;                  /* x86_64's direct map */
	capture();
	boot_add_e820(&bi, e, sizeof e / sizeof e[0]);
	uncapture();
	SAID("boot: e820 entry 1 (0x0-0x9fc00) not page aligned: using 0x0-0x9f000");
	SAID("boot: RAM 0x0-0x9f000 listed after 0x100000-0x40000000: sorted");
	SAID("boot: RAM 0x20000000-0x50000000 overlaps 0x100000-0x40000000: merged");
	SAID("boot: RAM entry at 0x50000000 ignored: zero length");
	SAID("boot: e820 entry 5 (0x60000010-0x60001000) ignored: no whole page inside");
	SAID("boot: RAM entry 0xfffffffffffff000+0x2000 ignored: runs past the end of the "
	     "address space");
	SAID("boot: RAM 0x400000000000-0x400040000000 ignored: above the addressable limit "
	     "0x400000000000");
	NOT_SAID("0x9fc00-");                        /* the reserved entry */
	REQUIRE(bi.nram == 2, "%u RAM regions", bi.nram);
	CHECK(bi.ram[0].base == 0 && bi.ram[0].size == 0x9f000, "region 0");
	CHECK(bi.ram[1].base == 0x100000 && bi.ram[1].size == 0x4ff00000, "region 1 0x%llx+0x%llx",
	      (unsigned long long)bi.ram[1].base, (unsigned long long)bi.ram[1].size);

	/* and the result runs the PFA as on the kernel (low 64 MiB backed) */
	static struct boot_info small;
	memset(&small, 0, sizeof small);
	static const struct boot_e820_entry e2[] = {
		{ 0x100000, 0x3f00000, 1, 0 }, { 0x0, 0x9fc00, 1, 0 },
	};
	struct phys p;
	REQUIRE(phys_get(&p, 0, 0x4000000), "mmap");
	capture();
	boot_add_e820(&small, e2, 2);
	boot_add_reserved(&small, 0, PAGE_SIZE);
	small.kernel_base = 0x100000;
	small.kernel_end = 0x200000;
	int r = bootinfo_to_pfa(&small, p.offset);
	uncapture();
	CHECK(r == PFA_MAP_OK, "pfa: %s", pfa_map_strerror(r));
	NOT_SAID("pfa: region");
	NOT_SAID("no RAM above");
	CHECK(quiet_pfa_check() == 0, "pfa_check");
	phys_put(&p);
}

/* ------------------------------------------------------------ the PFA's own inputs */

/* What another kernel may hand pfa_add_region directly: every odd entry
 * has its result and its line; the clean part is managed. */
TEST(pfa_region_results)
{
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x48000000), "mmap");
	pfa_setup_begin(p.offset);
	capture();
	int r_zero = pfa_add_region(0x40000000, 0);
	int r_sub = pfa_add_region(0x40000010, 0xfe0);
	int r_wrap = pfa_add_region(0xfffffffffffff000ull, 0x2000);
	int r_mis = pfa_add_region(0x44000010, 0x1fffff0);
	int r_hi = pfa_add_region(0x42000000, 0x2000000);
	int r_ovl = pfa_add_region(0x40000000, 0x2800000);   /* before r_hi, overlapping */
	int r = pfa_setup_end();
	int again = pfa_setup_end();
	uncapture();
	CHECK(r_zero == PFA_MAP_EMPTY && r_sub == PFA_MAP_EMPTY && PFA_MAP_EMPTY > 0,
	      "empty: %d %d", r_zero, r_sub);
	CHECK(r_wrap == PFA_MAP_WRAPS, "wrap: %d", r_wrap);
	CHECK(r_mis == PFA_MAP_OK && r_hi == PFA_MAP_OK && r_ovl == PFA_MAP_OK, "ok ones");
	CHECK(r == PFA_MAP_OK && again == PFA_MAP_AGAIN, "setup %d, again %d", r, again);
	SAID("pfa: region at 0x40000000 ignored: zero length");
	SAID("pfa: region 0x40000010-0x40000ff0 ignored: no whole page inside");
	SAID("pfa: region 0xfffffffffffff000+0x2000 rejected: runs past the end of the "
	     "physical address space");
	SAID("pfa: region 0x44000010-0x46000000 not page aligned: clipped to "
	     "0x44001000-0x46000000");
	SAID("pfa: regions not given in address order: sorted");
	SAID("pfa: region 0x42000000-0x44000000 overlaps the one before: merged into "
	     "0x40000000-0x44000000");
	struct pfa_stats st;
	pfa_get_stats(&st);
	CHECK(st.nregions == 2, "%u regions", st.nregions);
	CHECK(st.total_pages == (0x4000000 + 0x1fff000) / PAGE_SIZE, "%llu pages",
	      (unsigned long long)st.total_pages);
	CHECK(quiet_pfa_check() == 0, "pfa_check");
	phys_put(&p);
}

TEST(pfa_setup_results)
{
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x41000000), "mmap");

	/* no region */
	pfa_setup_begin(p.offset);
	capture();
	int r = pfa_setup_end();
	uncapture();
	CHECK(r == PFA_MAP_NO_RAM, "no region: %d", r);
	SAID("pfa: setup refused: no RAM region given");

	/* a reservation outside RAM is dropped, one covering it all refuses */
	pfa_setup_begin(p.offset);
	pfa_add_region(0x40000000, 16 * MIB);
	pfa_reserve(0x90000000, MIB);
	pfa_reserve(0x40000000, 8 * MIB);
	pfa_reserve(0x40800000, 8 * MIB);
	capture();
	r = pfa_setup_end();
	uncapture();
	CHECK(r == PFA_MAP_ALL_RESERVED, "all reserved: %d", r);
	SAID("pfa: reservation 0x90000000-0x90100000 ignored: outside every region");
	SAID("pfa: setup refused: reservations cover all RAM (1 region(s), no free page left)");

	/* one page left free: too little for the descriptors, said */
	pfa_setup_begin(p.offset);
	pfa_add_region(0x40000000, 16 * MIB);
	pfa_reserve(0x40001000, 16 * MIB - PAGE_SIZE);
	capture();
	r = pfa_setup_end();
	uncapture();
	CHECK(r == PFA_MAP_NO_ROOM, "no room: %d", r);
	SAID("pfa: setup refused: no free gap of 65536 bytes for the page descriptors");
	phys_put(&p);
}

/* RAM more than 2^32 - 2^24 pages (16 TiB - 64 GiB) above the first
 * region cannot be indexed: clipped or ignored, said, instead of refusing
 * the whole map. */
TEST(pfa_span_too_wide)
{
	struct phys p;
	REQUIRE(phys_get(&p, 0x40000000, 0x40000000 + 64 * MIB), "mmap");
	const uint64_t far = 0x40000000 + (16ull << 40);
	pfa_setup_begin(p.offset);
	pfa_add_region(0x40000000, 64 * MIB);
	pfa_add_region(far, GIB);
	capture();
	int r = pfa_setup_end();
	uncapture();
	CHECK(r == PFA_MAP_OK, "setup: %s", pfa_map_strerror(r));
	SAID("pfa: region 0x100040000000-0x100080000000 ignored: beyond the span 32-bit page "
	     "indices reach from the first region");
	CHECK(pfa_total_pages() == 64 * MIB / PAGE_SIZE, "%llu pages",
	      (unsigned long long)pfa_total_pages());
	phys_put(&p);
}

/* Dropping a reservation would hand out memory in use: the 129th
 * disjoint one stops the boot, naming it. */
TEST(too_many_reservations_panic)
{
	static struct boot_info bi;
	memset(&bi, 0, sizeof bi);
	static volatile int added;
	panic_msg[0] = 0;
	added = 0;
	if (!setjmp(panic_jmp))
		for (; added <= BOOT_MAX_REGIONS; added++)
			boot_add_reserved(&bi, 0x40000000 + (uint64_t)added * 2 * MIB, MIB);
	CHECK(added == BOOT_MAX_REGIONS, "panicked after %d", added);
	CHECK(!strcmp(panic_msg, "boot: reservation 0x50000000-0x50100000 does not fit: "
		      "more than 128 reserved ranges"), "panic: %s", panic_msg);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

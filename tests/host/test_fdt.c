/*
 * test_fdt.c - host tests for lib/fdt.c, the bounds-checked DTB reader.
 *
 * Two sources of blobs:
 *   - real ones, dumped by QEMU at test time (qemu-system-aarch64 -M
 *     virt,dumpdtb=FILE ...) into $STRATA_TESTDATA (default
 *     build/host/testdata/): exact RAM ranges, CPU counts, bootargs;
 *   - synthetic ones from the small builder below, for the shapes QEMU never
 *     produces (memreserve, /reserved-memory, 32-bit cells, deep nesting)
 *     and for deliberately broken headers and structure blocks.
 * Every malformed blob is copied into a buffer of exactly its claimed size,
 * so AddressSanitizer reports any read past the end; the parser must return
 * an error or a valid result, never crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "fdt.h"

#include "fdt_build.h"

/* A small, plausible machine: 2-cell root, one memory node with two ranges,
 * /chosen, two CPUs plus cpu-map, /reserved-memory. */
static uint8_t *build_machine(size_t *size, const char *bootargs)
{
	struct fdtb b = { 0 };
	b.rsv[0][0] = 0x48000000; b.rsv[0][1] = 0x1000;
	b.rsv[1][0] = 0x49000000; b.rsv[1][1] = 0x2000;
	b.nrsv = 2;
	b_begin(&b, "");
	b_prop_cells(&b, "#address-cells", 1, 2);
	b_prop_cells(&b, "#size-cells", 1, 2);
	b_prop_str(&b, "compatible", "strata,test");
	b_begin(&b, "chosen");
	if (bootargs)
		b_prop_str(&b, "bootargs", bootargs);
	b_end(&b);
	b_begin(&b, "memory@40000000");
	b_prop_str(&b, "device_type", "memory");
	b_prop_cells(&b, "reg", 8, 0, 0x40000000, 0, 0x10000000, 1, 0, 0, 0x20000000);
	b_end(&b);
	b_begin(&b, "memory@80000000");   /* disabled: ignored */
	b_prop_str(&b, "device_type", "memory");
	b_prop_str(&b, "status", "disabled");
	b_prop_cells(&b, "reg", 4, 0, 0x80000000, 0, 0x1000);
	b_end(&b);
	b_begin(&b, "reserved-memory");
	b_prop_cells(&b, "#address-cells", 1, 2);
	b_prop_cells(&b, "#size-cells", 1, 2);
	b_prop(&b, "ranges", NULL, 0);
	b_begin(&b, "fw@4f000000");
	b_prop_cells(&b, "reg", 4, 0, 0x4f000000, 0, 0x100000);
	b_end(&b);
	b_begin(&b, "pool");          /* dynamic: size, no reg -> not reported */
	b_prop_cells(&b, "size", 2, 0, 0x400000);
	b_end(&b);
	b_begin(&b, "off@4e000000");  /* disabled -> not reported */
	b_prop_cells(&b, "reg", 4, 0, 0x4e000000, 0, 0x1000);
	b_prop_str(&b, "status", "disabled");
	b_end(&b);
	b_end(&b);
	b_begin(&b, "cpus");
	b_prop_cells(&b, "#address-cells", 1, 1);
	b_prop_cells(&b, "#size-cells", 1, 0);
	b_begin(&b, "cpu-map");
	b_begin(&b, "cluster0");
	b_end(&b);
	b_end(&b);
	b_begin(&b, "cpu@0");
	b_prop_str(&b, "device_type", "cpu");
	b_prop_cells(&b, "reg", 1, 0);
	b_end(&b);
	b_begin(&b, "cpu@1");
	b_prop_str(&b, "device_type", "cpu");
	b_prop_cells(&b, "reg", 1, 1);
	b_end(&b);
	b_end(&b);
	b_end(&b);
	return b_finish(&b, size);
}

/* ------------------------------------------------------------ exercising */

/* Run every query on a blob that opened (or not); results are not checked,
 * only that nothing crashes or reads out of bounds.  Walks all nodes
 * iteratively with an explicit stack of offsets. */
static void exercise(const void *blob, size_t size)
{
	struct fdt f;
	struct fdt_region r[16];
	char args[64];
	int err = fdt_open(&f, blob, size);
	/* the helpers must behave on a failed (zeroed) handle too */
	(void)fdt_memory_regions(&f, r, 16);
	(void)fdt_reserved_regions(&f, r, 16);
	(void)fdt_bootargs(&f, args, sizeof args);
	(void)fdt_cpu_count(&f);
	(void)fdt_path_offset(&f, "/cpus/cpu@0");
	(void)fdt_path_offset(&f, "/memory");
	if (err)
		return;

	int stack[FDT_MAX_DEPTH + 1], sp = 0, visited = 0;
	int node = fdt_root(&f);
	while (node >= 0 && visited < 100000) {
		visited++;
		int len;
		(void)fdt_node_name(&f, node, &len);
		(void)fdt_getprop(&f, node, "reg", &len);
		(void)fdt_getprop_string(&f, node, "compatible");
		(void)fdt_node_available(&f, node);
		(void)fdt_address_cells(&f, node);
		(void)fdt_size_cells(&f, node);
		uint64_t base, sz;
		(void)fdt_reg(&f, node, 2, 2, 0, &base, &sz);
		(void)fdt_reg(&f, node, 1, 1, 1, &base, &sz);
		int child = fdt_first_child(&f, node);
		if (child >= 0 && sp <= FDT_MAX_DEPTH) {
			stack[sp++] = node;
			node = child;
			continue;
		}
		for (;;) {
			int sib = fdt_next_sibling(&f, node);
			if (sib >= 0) {
				node = sib;
				break;
			}
			if (sp == 0) {
				node = -1;
				break;
			}
			node = stack[--sp];
		}
	}
}

/* Open a copy of blob[0..n) in a buffer of exactly n bytes (so ASan sees
 * any overread), at an odd address when odd is set. */
static int open_exact(const uint8_t *blob, size_t n, int odd, void (*fn)(const void *, size_t))
{
	uint8_t *buf = malloc(n + 1);
	uint8_t *p = buf + (odd ? 1 : 0);
	if (n)
		memcpy(p, blob, n);
	int err = fdt_check(p, n);
	if (fn)
		fn(p, n);
	free(buf);
	return err;
}

/* ------------------------------------------------------------ QEMU blobs */

static const char *testdata_dir(void)
{
	const char *d = getenv("STRATA_TESTDATA");
	return d && *d ? d : "build/host/testdata";
}

static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
	if (n < 0 || fread(p, 1, (size_t)n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(fp);
	*size = (size_t)n;
	return p;
}

/* Dump QEMU's DTB for "-M <machine> <args>" into the test data directory
 * and read it back; NULL (and a failure recorded) if QEMU cannot. */
static uint8_t *qemu_dtb(const char *tag, const char *machine, const char *args, size_t *size)
{
	char dir[512], path[640], cmd[2048];
	snprintf(dir, sizeof dir, "%s", testdata_dir());
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
	if (system(cmd) != 0) {
		harness_fail(__FILE__, __LINE__, "cannot create %s", dir);
		return NULL;
	}
	snprintf(path, sizeof path, "%s/virt-%s.dtb", dir, tag);
	remove(path);
	snprintf(cmd, sizeof cmd,
		 "qemu-system-aarch64 -M %s,dumpdtb='%s' %s -nographic >/dev/null 2>&1",
		 machine, path, args);
	int rc = system(cmd);
	uint8_t *p = read_file(path, size);
	if (!p)
		harness_fail(__FILE__, __LINE__, "QEMU did not dump a DTB (rc %d): %s", rc, cmd);
	return p;
}

static void check_virt(const char *tag, const char *machine, const char *args,
		       uint64_t ram, int cpus, const char *bootargs)
{
	size_t size;
	uint8_t *blob = qemu_dtb(tag, machine, args, &size);
	if (!blob)
		return;
	struct fdt f;
	int err = fdt_open(&f, blob, size);
	CHECK(err == 0, "%s: fdt_open: %s", tag, fdt_strerror(err));
	if (err) {
		free(blob);
		return;
	}
	CHECK(f.totalsize == size, "%s: totalsize %u, file %zu", tag, f.totalsize, size);

	struct fdt_region r[8];
	int n = fdt_memory_regions(&f, r, 8);
	CHECK(n == 1, "%s: %d memory regions (%s)", tag, n, n < 0 ? fdt_strerror(n) : "");
	if (n == 1)
		CHECK(r[0].base == 0x40000000 && r[0].size == ram,
		      "%s: RAM %#llx+%#llx, want 0x40000000+%#llx", tag,
		      (unsigned long long)r[0].base, (unsigned long long)r[0].size,
		      (unsigned long long)ram);
	n = fdt_cpu_count(&f);
	CHECK(n == cpus, "%s: %d CPUs, want %d", tag, n, cpus);
	n = fdt_reserved_regions(&f, r, 8);
	CHECK(n >= 0, "%s: reserved: %s", tag, fdt_strerror(n));

	char buf[256];
	n = fdt_bootargs(&f, buf, sizeof buf);
	CHECK(n == (int)strlen(bootargs) && !strcmp(buf, bootargs),
	      "%s: bootargs \"%s\" (%d), want \"%s\"", tag, buf, n, bootargs);

	int uart = fdt_path_offset(&f, "/pl011@9000000");
	CHECK(uart >= 0, "%s: no /pl011@9000000: %s", tag, fdt_strerror(uart));
	uint64_t base = 0, sz = 0;
	err = uart >= 0 ? fdt_reg(&f, uart, 2, 2, 0, &base, &sz) : uart;
	CHECK(!err && base == 0x09000000 && sz == 0x1000, "%s: pl011 reg %#llx+%#llx (%s)",
	      tag, (unsigned long long)base, (unsigned long long)sz, fdt_strerror(err));
	exercise(blob, size);
	free(blob);
}

TEST(qemu_virt_512m) { check_virt("512m", "virt", "-m 512M", 512ull << 20, 1, ""); }
TEST(qemu_virt_2g)   { check_virt("2g", "virt", "-m 2G", 2ull << 30, 1, ""); }
TEST(qemu_virt_64m)  { check_virt("64m", "virt", "-m 64M", 64ull << 20, 1, ""); }
TEST(qemu_virt_smp4) { check_virt("smp4", "virt", "-m 512M -smp 4", 512ull << 20, 4, ""); }
TEST(qemu_virt_el2)  { check_virt("el2", "virt,virtualization=on", "-m 512M -smp 2", 512ull << 20, 2, ""); }
TEST(qemu_virt_max)  { check_virt("max", "virt", "-cpu max -m 1G", 1ull << 30, 1, ""); }

TEST(qemu_virt_bootargs)
{
	/* -append needs -kernel; the dump happens before the image runs. */
	char path[640];
	snprintf(path, sizeof path, "mkdir -p '%s' && printf x > '%s/dummy.bin'",
		 testdata_dir(), testdata_dir());
	REQUIRE(system(path) == 0, "cannot write %s/dummy.bin", testdata_dir());
	char args[1024];
	snprintf(args, sizeof args, "-m 256M -kernel '%s/dummy.bin' -append 'test=all seed=7'",
		 testdata_dir());
	check_virt("bootargs", "virt", args, 256ull << 20, 1, "test=all seed=7");
}

/* The real blob cut to its used size (QEMU pads totalsize to 1 MiB). */
static uint8_t *compact_virt(size_t *size)
{
	size_t n;
	uint8_t *blob = qemu_dtb("fuzz", "virt", "-m 512M -smp 2", &n);
	if (!blob)
		return NULL;
	uint32_t end = get32(blob + 12) + get32(blob + 32);   /* strings end */
	if (end > n)
		end = (uint32_t)n;
	put32(blob + 4, end);
	*size = end;
	return blob;
}

TEST(truncated_real)
{
	size_t size;
	uint8_t *blob = compact_virt(&size);
	if (!blob)
		return;
	REQUIRE(fdt_check(blob, size) == 0, "compact blob does not open");
	/* every short buffer, with the header's totalsize left as it is */
	for (size_t n = 0; n < 600 && n < size; n++) {
		int err = open_exact(blob, n, n & 1, exercise);
		CHECK(err == FDT_ERR_TRUNCATED, "len %zu: %s", n, fdt_strerror(err));
	}
	CHECK(open_exact(blob, size - 1, 0, exercise) == FDT_ERR_TRUNCATED, "totalsize-1 accepted");
	/* every cut of the blob that also claims to be that short */
	uint8_t *cut = malloc(size);
	for (size_t n = 40; n < size; n += (n < 400 ? 1 : 13)) {
		memcpy(cut, blob, n);
		put32(cut, FDT_MAGIC);
		put32(cut + 4, (uint32_t)n);
		int err = open_exact(cut, n, 0, exercise);
		CHECK(err != 0, "cut at %zu accepted", n);
	}
	/* a structure block that claims to be shorter */
	for (uint32_t s = 0; s < get32(blob + 36); s += 4) {
		memcpy(cut, blob, size);
		put32(cut + 36, s);
		CHECK(open_exact(cut, size, 0, exercise) != 0, "size_dt_struct %u accepted", s);
	}
	free(cut);
	free(blob);
}

TEST(random_flips_real)
{
	size_t size;
	uint8_t *blob = compact_virt(&size);
	if (!blob)
		return;
	uint8_t *buf = malloc(size);
	int accepted = 0, rounds = 4000;
	for (int i = 0; i < rounds; i++) {
		memcpy(buf, blob, size);
		int flips = 1 + (int)rnd_below(8);
		for (int k = 0; k < flips; k++) {
			/* mostly in the header and structure block, where it matters */
			size_t at = rnd_below(3) ? rnd_below(size < 2048 ? size : 2048) : rnd_below(size);
			buf[at] ^= (uint8_t)(1u << rnd_below(8));
		}
		if (open_exact(buf, size, i & 1, exercise) == 0)
			accepted++;
	}
	printf("# %d of %d flipped blobs still valid\n", accepted, rounds);
	free(buf);
	free(blob);
}

TEST(random_bytes_synthetic)
{
	size_t size;
	uint8_t *blob = build_machine(&size, "console=ttyAMA0");
	uint8_t *buf = malloc(size);
	for (int i = 0; i < 4000; i++) {
		memcpy(buf, blob, size);
		int n = 1 + (int)rnd_below(4);
		for (int k = 0; k < n; k++)
			buf[rnd_below(size)] = (uint8_t)rnd();   /* whole random bytes */
		open_exact(buf, size, i & 1, exercise);
	}
	free(buf);
	free(blob);
}

/* ------------------------------------------------------------ synthetic */

TEST(machine_regions)
{
	size_t size;
	uint8_t *blob = build_machine(&size, "test=all seed=7");
	struct fdt f;
	int err = fdt_open(&f, blob, size);
	REQUIRE(err == 0, "open: %s", fdt_strerror(err));

	struct fdt_region r[8];
	int n = fdt_memory_regions(&f, r, 8);
	REQUIRE(n == 2, "memory regions: %d", n);
	CHECK(r[0].base == 0x40000000 && r[0].size == 0x10000000, "ram0 %#llx+%#llx",
	      (unsigned long long)r[0].base, (unsigned long long)r[0].size);
	CHECK(r[1].base == 0x100000000ull && r[1].size == 0x20000000, "ram1 %#llx+%#llx",
	      (unsigned long long)r[1].base, (unsigned long long)r[1].size);
	CHECK(fdt_memory_regions(&f, r, 1) == FDT_ERR_NOSPACE, "no NOSPACE");

	n = fdt_reserved_regions(&f, r, 8);
	REQUIRE(n == 3, "reserved regions: %d (%s)", n, n < 0 ? fdt_strerror(n) : "");
	CHECK(r[0].base == 0x48000000 && r[0].size == 0x1000, "memreserve 0");
	CHECK(r[1].base == 0x49000000 && r[1].size == 0x2000, "memreserve 1");
	CHECK(r[2].base == 0x4f000000 && r[2].size == 0x100000, "reserved-memory fw");
	CHECK(fdt_reserved_regions(&f, r, 2) == FDT_ERR_NOSPACE, "no NOSPACE");

	CHECK(fdt_cpu_count(&f) == 2, "cpus %d", fdt_cpu_count(&f));
	char buf[32];
	n = fdt_bootargs(&f, buf, sizeof buf);
	CHECK(n == 15 && !strcmp(buf, "test=all seed=7"), "bootargs %d '%s'", n, buf);
	CHECK(fdt_bootargs(&f, buf, 15) == FDT_ERR_NOSPACE, "short buffer accepted");
	CHECK(fdt_bootargs(&f, buf, 16) == 15, "exact buffer refused");
	free(blob);
}

TEST(paths_and_names)
{
	size_t size;
	uint8_t *blob = build_machine(&size, NULL);
	struct fdt f;
	REQUIRE(fdt_open(&f, blob, size) == 0, "open");
	int root = fdt_root(&f);
	CHECK(root >= 0 && fdt_path_offset(&f, "/") == root, "root");
	int len = -1;
	const char *name = fdt_node_name(&f, root, &len);
	CHECK(name && len == 0, "root name");
	int c0 = fdt_path_offset(&f, "/cpus/cpu@0");
	CHECK(c0 >= 0 && fdt_path_offset(&f, "//cpus//cpu/") == c0, "unit address omitted");
	CHECK(fdt_path_offset(&f, "/cpus/cpu@1") >= 0, "cpu@1");
	CHECK(fdt_path_offset(&f, "/cpus/cpu@2") == FDT_ERR_NOTFOUND, "cpu@2");
	CHECK(fdt_path_offset(&f, "/cpus/cpu-map/cluster0") >= 0, "cluster0");
	CHECK(fdt_path_offset(&f, "/cpu") == FDT_ERR_NOTFOUND, "prefix must not match");
	CHECK(fdt_path_offset(&f, "cpus") == FDT_ERR_BADARG, "relative path");
	CHECK(fdt_path_offset(&f, NULL) == FDT_ERR_BADARG, "NULL path");
	name = fdt_node_name(&f, c0, &len);
	CHECK(name && !strcmp(name, "cpu@0") && len == 5, "cpu@0 name");
	uint64_t b, s;
	CHECK(fdt_reg(&f, c0, 1, 0, 0, &b, &s) == 0 && b == 0 && s == 0, "cpu reg");
	CHECK(fdt_reg(&f, c0, 1, 0, 1, &b, &s) == FDT_ERR_NOTFOUND, "reg idx 1");
	CHECK(fdt_getprop(&f, c0, "nope", &len) == NULL && len == FDT_ERR_NOTFOUND, "absent prop");
	/* properties of a child are not the parent's */
	CHECK(fdt_getprop(&f, root, "device_type", &len) == NULL, "child prop leaked");
	CHECK(fdt_first_child(&f, c0) == FDT_ERR_NOTFOUND, "cpu@0 has no children");
	CHECK(fdt_first_child(&f, 5) < 0 && fdt_next_sibling(&f, -4) == FDT_ERR_BADARG &&
	      fdt_getprop(&f, 1 << 30, "reg", NULL) == NULL, "bad node offsets");
	char buf[8];
	CHECK(fdt_bootargs(&f, buf, sizeof buf) == 0 && buf[0] == 0, "no bootargs");
	free(blob);
}

TEST(cells_32bit)
{
	struct fdtb b = { 0 };
	b_begin(&b, "");
	b_prop_cells(&b, "#address-cells", 1, 1);
	b_prop_cells(&b, "#size-cells", 1, 1);
	b_begin(&b, "memory");
	b_prop_cells(&b, "reg", 4, 0x40000000, 0x08000000, 0x50000000, 0x0);   /* 2nd empty */
	b_end(&b);
	b_begin(&b, "memory@60000000");   /* no device_type: found by name */
	b_prop_cells(&b, "reg", 2, 0x60000000, 0x1000);
	b_end(&b);
	b_begin(&b, "memoryx");           /* neither */
	b_prop_cells(&b, "reg", 2, 0x70000000, 0x1000);
	b_end(&b);
	b_end(&b);
	size_t size;
	uint8_t *blob = b_finish(&b, &size);
	struct fdt f;
	REQUIRE(fdt_open(&f, blob, size) == 0, "open");
	struct fdt_region r[4];
	int n = fdt_memory_regions(&f, r, 4);
	CHECK(n == 3 && r[0].base == 0x40000000 && r[0].size == 0x08000000 &&
	      r[1].base == 0x50000000 && r[1].size == 0 &&          /* passed on */
	      r[2].base == 0x60000000 && r[2].size == 0x1000, "regions n=%d", n);
	CHECK(fdt_reserved_regions(&f, r, 4) == 0, "reserved");
	CHECK(fdt_cpu_count(&f) == FDT_ERR_NOTFOUND, "no /cpus");
	free(blob);
}

/* A blob with one broken property or node, built by a callback. */
static int build_and_check(void (*body)(struct fdtb *), void (*fn)(const void *, size_t))
{
	struct fdtb b = { 0 };
	b_begin(&b, "");
	body(&b);
	b_end(&b);
	size_t size;
	uint8_t *blob = b_finish(&b, &size);
	int err = open_exact(blob, size, 0, exercise);
	int ret = err;
	if (!err && fn)
		fn(blob, size);
	free(blob);
	return ret;
}

static int helper_err;
static void run_memory(const void *blob, size_t size)
{
	struct fdt f;
	struct fdt_region r[4];
	fdt_open(&f, blob, size);
	helper_err = fdt_memory_regions(&f, r, 4);
}

static void body_wrap(struct fdtb *b)
{
	b_prop_cells(b, "#size-cells", 1, 2);
	b_begin(b, "memory");
	b_prop_cells(b, "reg", 4, 0xffffffff, 0xfffff000, 0, 0x2000);
	b_end(b);
}
static void body_badlen(struct fdtb *b)
{
	b_begin(b, "memory");
	b_prop_cells(b, "reg", 4, 0, 0x40000000, 0, 0x1000);   /* 2+1 cells each */
	b_end(b);
}
static void body_cells3(struct fdtb *b)
{
	b_prop_cells(b, "#address-cells", 1, 3);
	b_begin(b, "memory");
	b_prop_cells(b, "reg", 4, 0, 0, 0x40000000, 0x1000);
	b_end(b);
}
static void body_cells_len(struct fdtb *b)
{
	b_prop_cells(b, "#size-cells", 2, 0, 1);
	b_begin(b, "memory");
	b_prop_cells(b, "reg", 3, 0, 0x40000000, 0x1000);
	b_end(b);
}
static void body_topend(struct fdtb *b)   /* a region ending at 2^64 is fine */
{
	b_prop_cells(b, "#size-cells", 1, 2);
	b_begin(b, "memory");
	b_prop_cells(b, "reg", 4, 0xffffffff, 0xfffff000, 0, 0x1000);
	b_end(b);
}

TEST(bad_reg_and_cells)
{
	CHECK(build_and_check(body_wrap, run_memory) == 0 && helper_err == FDT_ERR_BADREG,
	      "wrap: %s", fdt_strerror(helper_err));
	CHECK(build_and_check(body_badlen, run_memory) == 0 && helper_err == FDT_ERR_BADREG,
	      "len: %s", fdt_strerror(helper_err));
	CHECK(build_and_check(body_cells3, run_memory) == 0 && helper_err == FDT_ERR_BADCELLS,
	      "cells 3: %s", fdt_strerror(helper_err));
	CHECK(build_and_check(body_cells_len, run_memory) == 0 && helper_err == FDT_ERR_BADCELLS,
	      "cells len: %s", fdt_strerror(helper_err));
	CHECK(build_and_check(body_topend, run_memory) == 0 && helper_err == 1,
	      "top end: %d", helper_err);
}

static void run_bootargs(const void *blob, size_t size)
{
	struct fdt f;
	char buf[64];
	fdt_open(&f, blob, size);
	helper_err = fdt_bootargs(&f, buf, sizeof buf);
}
static void body_args_unterminated(struct fdtb *b)
{
	b_begin(b, "chosen");
	b_prop(b, "bootargs", "abc", 3);
	b_end(b);
}
static void body_args_long(struct fdtb *b)
{
	char s[200];
	memset(s, 'a', sizeof s - 1);
	s[sizeof s - 1] = 0;
	b_begin(b, "chosen");
	b_prop_str(b, "bootargs", s);
	b_end(b);
}

TEST(bad_bootargs)
{
	CHECK(build_and_check(body_args_unterminated, run_bootargs) == 0 &&
	      helper_err == FDT_ERR_BADVALUE, "unterminated: %s", fdt_strerror(helper_err));
	CHECK(build_and_check(body_args_long, run_bootargs) == 0 &&
	      helper_err == FDT_ERR_NOSPACE, "long: %s", fdt_strerror(helper_err));
}

/* Deep nesting: FDT_MAX_DEPTH levels open, one more is refused, and a
 * 200000-deep tree is refused without recursion. */
static uint8_t *build_deep(int depth, size_t *size)
{
	struct fdtb b = { 0 };
	for (int i = 0; i < depth; i++)
		b_begin(&b, i ? "n" : "");
	for (int i = 0; i < depth; i++)
		b_end(&b);
	return b_finish(&b, size);
}

TEST(deep_nesting)
{
	size_t size;
	uint8_t *blob = build_deep(FDT_MAX_DEPTH, &size);
	CHECK(open_exact(blob, size, 0, exercise) == 0, "max depth refused");
	struct fdt f;
	fdt_open(&f, blob, size);
	char path[4 * FDT_MAX_DEPTH] = "";
	for (int i = 1; i < FDT_MAX_DEPTH; i++)
		strcat(path, "/n");
	CHECK(fdt_path_offset(&f, path) >= 0, "deepest node not found");
	free(blob);
	blob = build_deep(FDT_MAX_DEPTH + 1, &size);
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_TOODEEP, "max+1 accepted");
	free(blob);
	blob = build_deep(200000, &size);
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_TOODEEP, "200000 deep accepted");
	free(blob);
}

/* Header and block-layout damage on the synthetic machine. */
static int with_header(uint32_t off, uint32_t val)
{
	size_t size;
	uint8_t *blob = build_machine(&size, "x");
	put32(blob + off, val);
	int err = open_exact(blob, size, 0, exercise);
	free(blob);
	return err;
}

TEST(bad_headers)
{
	size_t size;
	uint8_t *blob = build_machine(&size, "x");
	uint32_t st = get32(blob + 8), str = get32(blob + 12), ssize = get32(blob + 36);
	uint32_t tsize = get32(blob + 32);
	free(blob);

	CHECK(with_header(0, 0xedfe0dd0) == FDT_ERR_BADMAGIC, "byte-swapped magic");
	CHECK(with_header(0, 0) == FDT_ERR_BADMAGIC, "zero magic");
	CHECK(with_header(4, (uint32_t)size + 1) == FDT_ERR_TRUNCATED, "totalsize+1");
	CHECK(with_header(4, 0xffffffff) == FDT_ERR_TRUNCATED, "totalsize huge");
	CHECK(with_header(4, 8) == FDT_ERR_BADLAYOUT, "totalsize tiny");
	CHECK(with_header(20, 15) == FDT_ERR_BADVERSION, "version 15");
	CHECK(with_header(24, 18) == FDT_ERR_BADVERSION, "last_comp 18");
	CHECK(with_header(8, 0xfffffff0) == FDT_ERR_BADLAYOUT, "struct offset huge");
	CHECK(with_header(8, st + 2) == FDT_ERR_BADLAYOUT, "struct misaligned");
	CHECK(with_header(8, 4) == FDT_ERR_BADLAYOUT, "struct inside header");
	CHECK(with_header(36, 0xfffffffc) == FDT_ERR_BADLAYOUT, "struct size huge");
	CHECK(with_header(36, ssize + 4) != 0, "struct overlaps strings");
	CHECK(with_header(12, st + 8) == FDT_ERR_BADLAYOUT, "strings inside struct");
	CHECK(with_header(12, 0xffffff00) == FDT_ERR_BADLAYOUT, "strings offset huge");
	CHECK(with_header(32, tsize + 1) == FDT_ERR_BADLAYOUT, "strings size +1");
	CHECK(with_header(32, 0xffffffff) == FDT_ERR_BADLAYOUT, "strings size huge");
	CHECK(with_header(16, st) == FDT_ERR_BADLAYOUT, "rsvmap inside struct");
	CHECK(with_header(16, 44) == FDT_ERR_BADLAYOUT, "rsvmap misaligned");
	CHECK(with_header(16, (uint32_t)size) == FDT_ERR_BADLAYOUT, "rsvmap at end");
	CHECK(with_header(32, 0) == FDT_ERR_BADSTRING, "no strings at all");
	(void)str;

	/* an unterminated memreserve block: overwrite the {0,0} terminator */
	blob = build_machine(&size, "x");
	put64(blob + 40 + 32, 0x1000);
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_BADMEMRSV, "memreserve unterminated");
	put64(blob + 40 + 32, 0);
	put64(blob + 40, 0xfffffffffffff000ull);
	put64(blob + 48, 0x2000);
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_BADMEMRSV, "memreserve wraps");
	free(blob);

	CHECK(fdt_check(NULL, 100) == FDT_ERR_BADARG, "NULL blob");
	CHECK(fdt_open(NULL, "", 1) == FDT_ERR_BADARG, "NULL handle");
	CHECK(fdt_peek_totalsize("\xd0\x0d\xfe\xed\0\0\x10\0", 8) == 0x1000, "peek");
	CHECK(fdt_peek_totalsize("\xd0\x0d\xfe\xed\0\0\x10\0", 7) == 0, "peek short");
}

/* Structure-block damage: patch one 32-bit word of a small tree. */
static uint8_t *small_tree(size_t *size, uint32_t *st)
{
	struct fdtb b = { 0 };
	b_begin(&b, "");               /* st+0: BEGIN "" (8 bytes) */
	b_prop_cells(&b, "a", 1, 7);   /* st+8: PROP len nameoff val (16 bytes) */
	b_begin(&b, "child");          /* st+24: BEGIN "child\0\0\0" (12 bytes) */
	b_end(&b);                     /* st+36 */
	b_end(&b);                     /* st+40 */
	uint8_t *blob = b_finish(&b, size);   /* st+44: END */
	*st = get32(blob + 8);
	return blob;
}

static int patched(uint32_t at, uint32_t val)
{
	size_t size;
	uint32_t st;
	uint8_t *blob = small_tree(&size, &st);
	put32(blob + st + at, val);
	int err = open_exact(blob, size, 0, exercise);
	free(blob);
	return err;
}

/* NOPs may appear anywhere between tokens, even before the root. */
static void body_nops(struct fdtb *b)
{
	b_u32(b, 4);
	b_begin(b, "a");
	b_u32(b, 4);
	b_prop_cells(b, "x", 1, 1);
	b_u32(b, 4);
	b_end(b);
	b_u32(b, 4);
}

TEST(bad_structure)
{
	CHECK(patched(44, 4) == FDT_ERR_BADSTRUCT, "missing END");
	CHECK(patched(0, 7) == FDT_ERR_BADSTRUCT, "unknown token");
	CHECK(patched(0, 3) != 0, "PROP at depth 0");
	CHECK(patched(40, 4) == FDT_ERR_BADSTRUCT, "unbalanced (missing END_NODE)");
	CHECK(patched(24, 2) == FDT_ERR_BADSTRUCT, "extra END_NODE");
	CHECK(patched(36, 1) != 0, "BEGIN with name running into tokens");
	CHECK(patched(40, 1) != 0, "second root / unbalanced");
	CHECK(patched(12, 0xffffffff) == FDT_ERR_BADPROP, "huge prop length");
	CHECK(patched(12, 0x7ffffffc) == FDT_ERR_BADPROP, "large prop length");
	CHECK(patched(12, 29) == FDT_ERR_BADPROP, "prop length one past the block");
	CHECK(patched(12, 28) == FDT_ERR_BADSTRUCT, "prop eating the rest of the block");
	CHECK(patched(16, 0xffffff00) == FDT_ERR_BADSTRING, "string offset huge");
	CHECK(patched(16, 100) == FDT_ERR_BADSTRING, "string offset past strings");
	CHECK(patched(4, 0x41414141) != 0, "root name clobbered");

	/* a name that runs to the very end of the structure block */
	size_t size;
	uint32_t st;
	uint8_t *blob = small_tree(&size, &st);
	put32(blob + 36, 28);                         /* size_dt_struct: cut inside "child" */
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_BADNAME, "unterminated name");
	free(blob);

	/* strings block whose last name lacks its NUL */
	blob = small_tree(&size, &st);
	blob[size - 1] = 'x';
	CHECK(open_exact(blob, size, 0, exercise) == FDT_ERR_BADSTRING, "unterminated string");
	free(blob);

	CHECK(patched(36, 4) == FDT_ERR_BADSTRUCT, "NOP instead of END_NODE");
	CHECK(build_and_check(body_nops, NULL) == 0, "NOPs refused");
}

TEST(misaligned_blob)
{
	size_t size;
	uint8_t *blob = build_machine(&size, "odd");
	uint8_t *buf = malloc(size + 3);
	for (int shift = 1; shift < 4; shift++) {
		memcpy(buf + shift, blob, size);
		struct fdt f;
		REQUIRE(fdt_open(&f, buf + shift, size) == 0, "open at +%d", shift);
		struct fdt_region r[4];
		CHECK(fdt_memory_regions(&f, r, 4) == 2 && r[1].base == 0x100000000ull,
		      "regions at +%d", shift);
		CHECK(fdt_reserved_regions(&f, r, 4) == 3, "reserved at +%d", shift);
	}
	free(buf);
	free(blob);
}

TEST(strerror_names_every_code)
{
	for (int e = 0; e >= FDT_ERR_BADARG; e--) {
		const char *s = fdt_strerror(e);
		CHECK(s && *s && strcmp(s, "unknown error"), "code %d unnamed", e);
		for (int k = e + 1; k <= 0; k++)
			CHECK(strcmp(s, fdt_strerror(k)), "codes %d and %d share a name", e, k);
	}
	CHECK(!strcmp(fdt_strerror(-999), "unknown error"), "-999");
}

int main(int argc, char **argv) { return harness_main(argc, argv); }

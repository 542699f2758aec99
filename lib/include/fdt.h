/*
 * fdt.h - a small, bounds-checked reader for flattened device trees (DTB).
 *
 * The firmware (or QEMU) describes the machine in a DTB blob:
 *
 *   +-----------------+ 0
 *   | header (40 B)   |  magic 0xd00dfeed, totalsize, block offsets, version
 *   +-----------------+ off_mem_rsvmap (8-aligned)
 *   | memreserve      |  {u64 base, u64 size} ... {0, 0}
 *   +-----------------+ off_dt_struct (4-aligned)
 *   | structure block |  tokens: BEGIN_NODE "name\0" pad, PROP len nameoff
 *   |                 |  value pad, END_NODE, NOP, ... END
 *   +-----------------+ off_dt_strings
 *   | strings block   |  "compatible\0reg\0#address-cells\0..." (prop names)
 *   +-----------------+ totalsize
 *
 * Every number is big-endian.  Nothing in the blob is trusted: fdt_open()
 * validates the header against the buffer size and walks the whole
 * structure block once (tokens, name/string termination, property lengths,
 * nesting depth); every later lookup is bounds-checked again.  All reads are
 * byte loads, so the parser is safe with the MMU off (Device memory faults
 * on unaligned access) and on blobs at any alignment.  No recursion, no libc:
 * the same file runs in the kernel and in the host tests.
 *
 * Nodes are named by their offset in the structure block (an int >= 0);
 * negative ints are FDT_ERR_* codes, fdt_strerror() names them.
 *
 *     struct fdt f;
 *     int err = fdt_open(&f, blob, bufsize);
 *     if (err) panic("DTB: %s", fdt_strerror(err));
 *     int chosen = fdt_path_offset(&f, "/chosen");
 *     int len;
 *     const char *args = fdt_getprop(&f, chosen, "bootargs", &len);
 */
#ifndef LIB_FDT_H
#define LIB_FDT_H

#include <stddef.h>
#include <stdint.h>

#define FDT_MAGIC      0xd00dfeedu
#define FDT_MAX_DEPTH  64        /* deeper trees are rejected (FDT_ERR_TOODEEP) */

enum {
	FDT_OK             =  0,
	FDT_ERR_TRUNCATED  = -1,  /* buffer smaller than the header or totalsize */
	FDT_ERR_BADMAGIC   = -2,  /* not a DTB */
	FDT_ERR_BADVERSION = -3,  /* version < 16 or last_comp_version > 17 */
	FDT_ERR_BADLAYOUT  = -4,  /* block offsets/sizes out of range, misaligned or overlapping */
	FDT_ERR_BADMEMRSV  = -5,  /* memreserve block unterminated or an entry wraps */
	FDT_ERR_BADSTRUCT  = -6,  /* bad token, unbalanced nodes, missing END */
	FDT_ERR_BADNAME    = -7,  /* node name not NUL-terminated inside the block */
	FDT_ERR_BADSTRING  = -8,  /* property name offset out of range / unterminated */
	FDT_ERR_BADPROP    = -9,  /* property length runs past the structure block */
	FDT_ERR_TOODEEP    = -10, /* nesting deeper than FDT_MAX_DEPTH */
	FDT_ERR_NOTFOUND   = -11, /* no such node or property */
	FDT_ERR_BADCELLS   = -12, /* #address-cells/#size-cells malformed or > 2 */
	FDT_ERR_BADREG     = -13, /* reg length not a multiple of the cells, or wraps */
	FDT_ERR_BADVALUE   = -14, /* property value malformed (e.g. unterminated string) */
	FDT_ERR_NOSPACE    = -15, /* caller's output buffer is too small */
	FDT_ERR_BADARG     = -16, /* NULL pointer or bad node offset passed in */
};

/* A validated blob.  Fill with fdt_open(); treat the fields as read-only. */
struct fdt {
	const uint8_t *blob;
	uint32_t totalsize;
	uint32_t version;
	uint32_t off_struct, size_struct;
	uint32_t off_strings, size_strings;
	uint32_t off_rsvmap, n_rsvmap;   /* memreserve entries before {0,0} */
	uint32_t boot_cpuid;
};

struct fdt_region {
	uint64_t base;
	uint64_t size;
};

/* Validate blob (bufsize readable bytes) and fill *f.  0 or FDT_ERR_*. */
int fdt_open(struct fdt *f, const void *blob, size_t bufsize);
/* The same check without keeping the handle. */
int fdt_check(const void *blob, size_t bufsize);
/* Header totalsize if the first bytes carry FDT_MAGIC (bufsize >= 8), else 0.
 * Lets a boot stub learn how much to map/trust before fdt_open(). */
uint32_t fdt_peek_totalsize(const void *blob, size_t bufsize);
const char *fdt_strerror(int err);

/* ---- navigation (node = structure-block offset of a BEGIN_NODE) ---- */
int fdt_root(const struct fdt *f);
int fdt_first_child(const struct fdt *f, int node);
int fdt_next_sibling(const struct fdt *f, int node);
/* Child by name: "memory@40000000" exactly, or "memory" matches the first
 * child whose name before '@' is "memory". */
int fdt_subnode(const struct fdt *f, int parent, const char *name);
/* Absolute path: "/", "/chosen", "/cpus/cpu@0". */
int fdt_path_offset(const struct fdt *f, const char *path);
/* Node name (NUL-terminated, inside the blob); *len gets strlen if non-NULL. */
const char *fdt_node_name(const struct fdt *f, int node, int *len);

/* ---- properties ---- */
/* Pointer to the value (inside the blob, any alignment: read it with
 * fdt_be32()/fdt_read_cells()), *len = its byte length; NULL and
 * *len = FDT_ERR_* if absent.  len may be NULL. */
const void *fdt_getprop(const struct fdt *f, int node, const char *name, int *len);
/* The value as a string: NULL unless it is NUL-terminated within its length. */
const char *fdt_getprop_string(const struct fdt *f, int node, const char *name);
/* 1 if the node has no "status" or status is "okay"/"ok", else 0. */
int fdt_node_available(const struct fdt *f, int node);
/* #address-cells / #size-cells of node (for its children's reg); defaults
 * 2 and 1 when absent; FDT_ERR_BADCELLS if malformed or > 2. */
int fdt_address_cells(const struct fdt *f, int node);
int fdt_size_cells(const struct fdt *f, int node);
/* Entry idx of node's "reg", decoded with the parent's cells. */
int fdt_reg(const struct fdt *f, int node, int acells, int scells, int idx,
	    uint64_t *base, uint64_t *size);

uint32_t fdt_be32(const void *p);
uint64_t fdt_be64(const void *p);
/* n big-endian 32-bit cells (n = 0..2) as one number. */
uint64_t fdt_read_cells(const void *p, int n);

/* ---- boot helpers: return a count (>= 0) or FDT_ERR_* ---- */
/* RAM: "reg" of every available root child named memory/memory@... or with
 * device_type = "memory", zero-sized entries included (a malformed map the
 * consumer reports: kernel/bootinfo.c); FDT_ERR_NOSPACE past max. */
int fdt_memory_regions(const struct fdt *f, struct fdt_region *out, int max);
/* Memreserve entries, then "reg" of every available /reserved-memory child. */
int fdt_reserved_regions(const struct fdt *f, struct fdt_region *out, int max);
/* Copy /chosen bootargs into buf (always NUL-terminated when cap > 0):
 * its length, 0 if absent, FDT_ERR_NOSPACE if it does not fit. */
int fdt_bootargs(const struct fdt *f, char *buf, size_t cap);
/* Number of available /cpus children named cpu or cpu@... */
int fdt_cpu_count(const struct fdt *f);
/* The CPUs: every available /cpus child named cpu or cpu@... with
 * device_type "cpu", in tree order, with its node and its first "reg"
 * value read with /cpus' #address-cells (the hardware CPU id: the MPIDR
 * affinity bits on arm64, the APIC id on x86).  Stores the first max in
 * out and returns how many there are (which may be more than max), or
 * FDT_ERR_* (FDT_ERR_BADREG for a CPU without a usable reg). */
struct fdt_cpu {
	int node;
	uint64_t id;
};
int fdt_cpus(const struct fdt *f, struct fdt_cpu *out, int max);

#endif

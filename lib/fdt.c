/*
 * fdt.c - bounds-checked flattened device tree reader (see fdt.h).
 *
 * Trust model: the blob may be truncated, corrupted or hostile.  The only
 * memory ever read is blob[0 .. totalsize), totalsize <= the caller's
 * bufsize, and every read goes through be32()/byte loads after a range
 * check.  Offsets are kept as uint32_t and sums are done in uint64_t, so no
 * check can be defeated by wrap-around.  The structure block is walked by
 * next_token(), the one place that decodes tokens; every walk moves forward
 * by at least 4 bytes per token, so every loop terminates, and nesting is
 * tracked with a counter, never with recursion.
 *
 * Structure block tokens (big-endian u32, 4-byte aligned):
 *
 *   FDT_BEGIN_NODE (1)  "name@unit\0" padded to 4
 *   FDT_PROP       (3)  u32 len, u32 nameoff (into strings), value[len] padded
 *   FDT_END_NODE   (2)
 *   FDT_NOP        (4)
 *   FDT_END        (9)  once, after the root node closed
 */
#include "fdt.h"

#define TOK_BEGIN_NODE 1u
#define TOK_END_NODE   2u
#define TOK_PROP       3u
#define TOK_NOP        4u
#define TOK_END        9u

#define HDR_V16_SIZE 36u
#define HDR_V17_SIZE 40u

/* One decoded token; offsets are relative to the structure block, except
 * name of a PROP, which is relative to the strings block. */
struct tok {
	uint32_t type;
	uint32_t next;   /* offset of the following token */
	uint32_t name;   /* BEGIN_NODE: node name; PROP: property name */
	uint32_t val;    /* PROP: value offset */
	uint32_t len;    /* PROP: value length */
};

/* ------------------------------------------------------------ byte helpers */

uint32_t fdt_be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

uint64_t fdt_be64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)fdt_be32(b) << 32 | fdt_be32(b + 4);
}

uint64_t fdt_read_cells(const void *p, int n)
{
	const uint8_t *b = p;
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 32 | fdt_be32(b + 4 * i);
	return v;
}

static int str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* Does node name `node` (NUL-terminated) match path component comp[0..n)?
 * "memory" matches "memory@40000000" when comp carries no unit address. */
static int name_matches(const char *node, const char *comp, size_t n)
{
	int comp_has_unit = 0;
	for (size_t i = 0; i < n; i++) {
		if (node[i] != comp[i])
			return 0;   /* also stops at node's NUL: comp has none */
		if (comp[i] == '@')
			comp_has_unit = 1;
	}
	return node[n] == '\0' || (node[n] == '@' && !comp_has_unit);
}

static uint64_t align4(uint64_t x) { return (x + 3) & ~(uint64_t)3; }

static const uint8_t *sblock(const struct fdt *f) { return f->blob + f->off_struct; }

/* ------------------------------------------------------------ tokens */

/* Is there a NUL in strings[off .. size_strings)? */
static int string_ok(const struct fdt *f, uint32_t off)
{
	const uint8_t *s = f->blob + f->off_strings;
	if (off >= f->size_strings)
		return 0;
	for (uint32_t i = off; i < f->size_strings; i++)
		if (s[i] == 0)
			return 1;
	return 0;
}

/* Decode the token at structure offset off into *t, checking that it and
 * everything it points to (name, property name, value) lie in bounds. */
static int next_token(const struct fdt *f, uint32_t off, struct tok *t)
{
	const uint8_t *s = sblock(f);
	uint32_t end = f->size_struct;

	if ((off & 3) || off > end || end - off < 4)
		return FDT_ERR_BADSTRUCT;
	t->type = fdt_be32(s + off);
	off += 4;
	t->next = off;

	switch (t->type) {
	case TOK_BEGIN_NODE: {
		uint32_t n = off;
		while (n < end && s[n])
			n++;
		if (n >= end)
			return FDT_ERR_BADNAME;
		uint64_t next = align4((uint64_t)n + 1);
		t->name = off;
		t->next = next > end ? end : (uint32_t)next;
		return 0;
	}
	case TOK_PROP:
		if (end - off < 8)
			return FDT_ERR_BADSTRUCT;
		t->len = fdt_be32(s + off);
		t->name = fdt_be32(s + off + 4);
		t->val = off + 8;
		if (t->len > end - t->val)
			return FDT_ERR_BADPROP;
		if (!string_ok(f, t->name))
			return FDT_ERR_BADSTRING;
		uint64_t next = align4((uint64_t)t->val + t->len);
		t->next = next > end ? end : (uint32_t)next;
		return 0;
	case TOK_END_NODE:
	case TOK_NOP:
	case TOK_END:
		return 0;
	default:
		return FDT_ERR_BADSTRUCT;
	}
}

/* The token at node must be a BEGIN_NODE. */
static int begin_node(const struct fdt *f, int node, struct tok *t)
{
	if (!f || !f->blob || node < 0)
		return FDT_ERR_BADARG;
	int err = next_token(f, (uint32_t)node, t);
	if (err)
		return err;
	return t->type == TOK_BEGIN_NODE ? 0 : FDT_ERR_BADARG;
}

/* ------------------------------------------------------------ validation */

/* Walk the whole structure block once: one root, balanced nodes, properties
 * only inside nodes, depth <= FDT_MAX_DEPTH, then END. */
static int check_struct(const struct fdt *f)
{
	uint32_t off = 0;
	int depth = 0, seen_root = 0;
	struct tok t;

	for (;;) {
		int err = next_token(f, off, &t);
		if (err)
			return err;
		switch (t.type) {
		case TOK_BEGIN_NODE:
			if (depth == 0 && seen_root)
				return FDT_ERR_BADSTRUCT;   /* a second root */
			if (++depth > FDT_MAX_DEPTH)
				return FDT_ERR_TOODEEP;
			seen_root = 1;
			break;
		case TOK_END_NODE:
			if (depth == 0)
				return FDT_ERR_BADSTRUCT;
			depth--;
			break;
		case TOK_PROP:
			if (depth == 0)
				return FDT_ERR_BADSTRUCT;
			break;
		case TOK_END:
			return depth == 0 && seen_root ? 0 : FDT_ERR_BADSTRUCT;
		}
		off = t.next;
	}
}

/* Count memreserve entries up to the {0,0} terminator, which must lie
 * before the next block (or totalsize). */
static int check_rsvmap(struct fdt *f)
{
	uint64_t limit = f->totalsize;
	if (f->off_struct > f->off_rsvmap && f->off_struct < limit)
		limit = f->off_struct;
	if (f->off_strings > f->off_rsvmap && f->off_strings < limit)
		limit = f->off_strings;

	for (uint64_t off = f->off_rsvmap; off + 16 <= limit; off += 16) {
		uint64_t base = fdt_be64(f->blob + off);
		uint64_t size = fdt_be64(f->blob + off + 8);
		if (base == 0 && size == 0)
			return 0;
		if (size && base + (size - 1) < base)
			return FDT_ERR_BADMEMRSV;
		f->n_rsvmap++;
	}
	return FDT_ERR_BADMEMRSV;
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int check_header(struct fdt *f, const uint8_t *b, size_t bufsize)
{
	if (bufsize < 4)
		return FDT_ERR_TRUNCATED;
	if (fdt_be32(b) != FDT_MAGIC)
		return FDT_ERR_BADMAGIC;
	if (bufsize < HDR_V17_SIZE)
		return FDT_ERR_TRUNCATED;

	f->blob = b;
	f->totalsize = fdt_be32(b + 4);
	f->off_struct = fdt_be32(b + 8);
	f->off_strings = fdt_be32(b + 12);
	f->off_rsvmap = fdt_be32(b + 16);
	f->version = fdt_be32(b + 20);
	uint32_t last_comp = fdt_be32(b + 24);
	f->boot_cpuid = fdt_be32(b + 28);
	f->size_strings = fdt_be32(b + 32);

	if (f->totalsize > bufsize)
		return FDT_ERR_TRUNCATED;
	if (f->version < 16 || last_comp > 17)
		return FDT_ERR_BADVERSION;
	uint32_t hdr = f->version >= 17 ? HDR_V17_SIZE : HDR_V16_SIZE;
	if (f->totalsize < hdr)
		return FDT_ERR_BADLAYOUT;
	if (f->off_struct < hdr || f->off_strings < hdr || f->off_rsvmap < hdr)
		return FDT_ERR_BADLAYOUT;
	if ((f->off_struct & 3) || (f->off_rsvmap & 7))
		return FDT_ERR_BADLAYOUT;
	if (f->off_struct > f->totalsize || f->off_rsvmap >= f->totalsize)
		return FDT_ERR_BADLAYOUT;
	if (f->version >= 17)
		f->size_struct = fdt_be32(b + 36);
	else
		f->size_struct = f->totalsize - f->off_struct;

	uint64_t s_end = (uint64_t)f->off_struct + f->size_struct;
	uint64_t t_end = (uint64_t)f->off_strings + f->size_strings;
	if (s_end > f->totalsize || t_end > f->totalsize)
		return FDT_ERR_BADLAYOUT;
	if (overlaps(f->off_struct, f->size_struct, f->off_strings, f->size_strings))
		return FDT_ERR_BADLAYOUT;
	if (overlaps(f->off_rsvmap, 16, f->off_struct, f->size_struct) ||
	    overlaps(f->off_rsvmap, 16, f->off_strings, f->size_strings))
		return FDT_ERR_BADLAYOUT;
	return 0;
}

int fdt_open(struct fdt *f, const void *blob, size_t bufsize)
{
	if (!f)
		return FDT_ERR_BADARG;
	*f = (struct fdt){ 0 };
	if (!blob)
		return FDT_ERR_BADARG;
	int err = check_header(f, blob, bufsize);
	if (!err)
		err = check_rsvmap(f);
	if (!err)
		err = check_struct(f);
	if (err)
		*f = (struct fdt){ 0 };   /* a failed handle finds nothing */
	return err;
}

int fdt_check(const void *blob, size_t bufsize)
{
	struct fdt f;
	return fdt_open(&f, blob, bufsize);
}

uint32_t fdt_peek_totalsize(const void *blob, size_t bufsize)
{
	const uint8_t *b = blob;
	if (!b || bufsize < 8 || fdt_be32(b) != FDT_MAGIC)
		return 0;
	return fdt_be32(b + 4);
}

const char *fdt_strerror(int err)
{
	switch (err) {
	case FDT_OK:             return "ok";
	case FDT_ERR_TRUNCATED:  return "blob truncated (buffer smaller than header or totalsize)";
	case FDT_ERR_BADMAGIC:   return "bad magic (not a device tree blob)";
	case FDT_ERR_BADVERSION: return "unsupported DTB version";
	case FDT_ERR_BADLAYOUT:  return "block offsets/sizes out of range or overlapping";
	case FDT_ERR_BADMEMRSV:  return "memory reservation block unterminated or wrapping";
	case FDT_ERR_BADSTRUCT:  return "malformed structure block (bad token or nesting)";
	case FDT_ERR_BADNAME:    return "node name not terminated";
	case FDT_ERR_BADSTRING:  return "property name offset out of range or unterminated";
	case FDT_ERR_BADPROP:    return "property length runs past the structure block";
	case FDT_ERR_TOODEEP:    return "nodes nested too deeply";
	case FDT_ERR_NOTFOUND:   return "not found";
	case FDT_ERR_BADCELLS:   return "bad #address-cells/#size-cells";
	case FDT_ERR_BADREG:     return "bad reg property";
	case FDT_ERR_BADVALUE:   return "malformed property value";
	case FDT_ERR_NOSPACE:    return "output buffer too small";
	case FDT_ERR_BADARG:     return "bad argument";
	default:                 return "unknown error";
	}
}

/* ------------------------------------------------------------ navigation */

int fdt_root(const struct fdt *f)
{
	struct tok t;
	uint32_t off = 0;
	if (!f || !f->blob)
		return FDT_ERR_BADARG;
	for (;;) {
		int err = next_token(f, off, &t);
		if (err)
			return err;
		if (t.type == TOK_BEGIN_NODE)
			return (int)off;
		if (t.type != TOK_NOP)
			return FDT_ERR_BADSTRUCT;
		off = t.next;
	}
}

int fdt_first_child(const struct fdt *f, int node)
{
	struct tok t;
	int err = begin_node(f, node, &t);
	if (err)
		return err;
	for (uint32_t off = t.next;; off = t.next) {
		err = next_token(f, off, &t);
		if (err)
			return err;
		if (t.type == TOK_BEGIN_NODE)
			return (int)off;
		if (t.type == TOK_END_NODE || t.type == TOK_END)
			return FDT_ERR_NOTFOUND;
	}
}

int fdt_next_sibling(const struct fdt *f, int node)
{
	struct tok t;
	int err = begin_node(f, node, &t);
	if (err)
		return err;
	uint32_t depth = 1;   /* inside node; skip its whole subtree */
	for (uint32_t off = t.next;; off = t.next) {
		err = next_token(f, off, &t);
		if (err)
			return err;
		if (t.type == TOK_BEGIN_NODE) {
			if (depth == 0)
				return (int)off;
			depth++;
		} else if (t.type == TOK_END_NODE) {
			if (depth == 0)
				return FDT_ERR_NOTFOUND;   /* parent closed */
			depth--;
		} else if (t.type == TOK_END) {
			return FDT_ERR_NOTFOUND;
		}
	}
}

const char *fdt_node_name(const struct fdt *f, int node, int *len)
{
	struct tok t;
	if (begin_node(f, node, &t)) {
		if (len)
			*len = FDT_ERR_BADARG;
		return NULL;
	}
	const char *name = (const char *)sblock(f) + t.name;
	if (len) {
		int n = 0;
		while (name[n])
			n++;
		*len = n;
	}
	return name;
}

static int subnode_n(const struct fdt *f, int parent, const char *name, size_t n)
{
	int child = fdt_first_child(f, parent);
	while (child >= 0) {
		const char *cname = fdt_node_name(f, child, NULL);
		if (cname && name_matches(cname, name, n))
			return child;
		child = fdt_next_sibling(f, child);
	}
	return child;
}

int fdt_subnode(const struct fdt *f, int parent, const char *name)
{
	if (!name)
		return FDT_ERR_BADARG;
	size_t n = 0;
	while (name[n])
		n++;
	return subnode_n(f, parent, name, n);
}

int fdt_path_offset(const struct fdt *f, const char *path)
{
	if (!path || path[0] != '/')
		return FDT_ERR_BADARG;
	int node = fdt_root(f);
	const char *p = path;
	while (node >= 0) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *q = p;
		while (*q && *q != '/')
			q++;
		node = subnode_n(f, node, p, (size_t)(q - p));
		p = q;
	}
	return node;
}

/* ------------------------------------------------------------ properties */

const void *fdt_getprop(const struct fdt *f, int node, const char *name, int *len)
{
	struct tok t;
	int err = name ? begin_node(f, node, &t) : FDT_ERR_BADARG;
	uint32_t off = err ? 0 : t.next;
	while (!err) {
		err = next_token(f, off, &t);
		if (err)
			break;
		if (t.type == TOK_PROP) {
			const char *pname = (const char *)f->blob + f->off_strings + t.name;
			if (str_eq(pname, name)) {
				if (len)
					*len = (int)t.len;
				return sblock(f) + t.val;
			}
		} else if (t.type != TOK_NOP) {
			err = FDT_ERR_NOTFOUND;   /* properties come before children */
		}
		off = t.next;
	}
	if (len)
		*len = err;
	return NULL;
}

const char *fdt_getprop_string(const struct fdt *f, int node, const char *name)
{
	int len;
	const char *s = fdt_getprop(f, node, name, &len);
	if (!s)
		return NULL;
	for (int i = 0; i < len; i++)
		if (s[i] == '\0')
			return s;
	return NULL;
}

int fdt_node_available(const struct fdt *f, int node)
{
	int len;
	if (!fdt_getprop(f, node, "status", &len))
		return len == FDT_ERR_NOTFOUND;
	const char *s = fdt_getprop_string(f, node, "status");
	return s && (str_eq(s, "okay") || str_eq(s, "ok"));
}

static int cells_prop(const struct fdt *f, int node, const char *name, int dflt)
{
	int len;
	const void *p = fdt_getprop(f, node, name, &len);
	if (!p)
		return len == FDT_ERR_NOTFOUND ? dflt : len;
	if (len != 4)
		return FDT_ERR_BADCELLS;
	uint32_t v = fdt_be32(p);
	return v <= 2 ? (int)v : FDT_ERR_BADCELLS;
}

int fdt_address_cells(const struct fdt *f, int node)
{
	return cells_prop(f, node, "#address-cells", 2);
}

int fdt_size_cells(const struct fdt *f, int node)
{
	return cells_prop(f, node, "#size-cells", 1);
}

int fdt_reg(const struct fdt *f, int node, int acells, int scells, int idx,
	    uint64_t *base, uint64_t *size)
{
	if (acells < 0 || acells > 2 || scells < 0 || scells > 2 || acells + scells == 0)
		return FDT_ERR_BADCELLS;
	if (idx < 0)
		return FDT_ERR_BADARG;
	int len;
	const uint8_t *p = fdt_getprop(f, node, "reg", &len);
	if (!p)
		return len;
	int entry = 4 * (acells + scells);
	if (len % entry)
		return FDT_ERR_BADREG;
	if (idx >= len / entry)
		return FDT_ERR_NOTFOUND;
	p += idx * entry;
	uint64_t b = fdt_read_cells(p, acells);
	uint64_t s = fdt_read_cells(p + 4 * acells, scells);
	if (s && b + (s - 1) < b)
		return FDT_ERR_BADREG;
	if (base)
		*base = b;
	if (size)
		*size = s;
	return 0;
}

/* ------------------------------------------------------------ boot helpers */

/* Append every reg entry of node to out[*n]; zero-sized ones only with
 * keep_empty (RAM: the consumer reports them; reservations of nothing
 * protect nothing). */
static int add_regs(const struct fdt *f, int node, int ac, int sc, int keep_empty,
		    struct fdt_region *out, int max, int *n)
{
	for (int i = 0;; i++) {
		uint64_t base, size;
		int err = fdt_reg(f, node, ac, sc, i, &base, &size);
		if (err == FDT_ERR_NOTFOUND)
			return 0;
		if (err)
			return err;
		if (!size && !keep_empty)
			continue;
		if (*n >= max || !out)
			return FDT_ERR_NOSPACE;
		out[*n].base = base;
		out[*n].size = size;
		(*n)++;
	}
}

static int is_memory_node(const struct fdt *f, int node)
{
	const char *type = fdt_getprop_string(f, node, "device_type");
	if (type)
		return str_eq(type, "memory");
	const char *name = fdt_node_name(f, node, NULL);
	return name && name_matches(name, "memory", 6);
}

int fdt_memory_regions(const struct fdt *f, struct fdt_region *out, int max)
{
	int root = fdt_root(f);
	if (root < 0)
		return root;
	int ac = fdt_address_cells(f, root);
	int sc = fdt_size_cells(f, root);
	if (ac < 0 || sc < 0)
		return ac < 0 ? ac : sc;

	int n = 0;
	int node = fdt_first_child(f, root);
	for (; node >= 0; node = fdt_next_sibling(f, node)) {
		if (!is_memory_node(f, node) || !fdt_node_available(f, node))
			continue;
		int err = add_regs(f, node, ac, sc, 1, out, max, &n);
		if (err)
			return err;
	}
	return node == FDT_ERR_NOTFOUND ? n : node;
}

int fdt_reserved_regions(const struct fdt *f, struct fdt_region *out, int max)
{
	if (!f || !f->blob)
		return FDT_ERR_BADARG;
	int n = 0;
	for (uint32_t i = 0; i < f->n_rsvmap; i++) {
		const uint8_t *e = f->blob + f->off_rsvmap + 16 * (uint64_t)i;
		uint64_t size = fdt_be64(e + 8);
		if (!size)
			continue;
		if (n >= max || !out)
			return FDT_ERR_NOSPACE;
		out[n].base = fdt_be64(e);
		out[n].size = size;
		n++;
	}

	int rm = fdt_path_offset(f, "/reserved-memory");
	if (rm == FDT_ERR_NOTFOUND)
		return n;
	if (rm < 0)
		return rm;
	int ac = fdt_address_cells(f, rm);
	int sc = fdt_size_cells(f, rm);
	if (ac < 0 || sc < 0)
		return ac < 0 ? ac : sc;
	int node = fdt_first_child(f, rm);
	for (; node >= 0; node = fdt_next_sibling(f, node)) {
		if (!fdt_node_available(f, node))
			continue;
		int err = add_regs(f, node, ac, sc, 0, out, max, &n);
		if (err)
			return err;
	}
	return node == FDT_ERR_NOTFOUND ? n : node;
}

int fdt_bootargs(const struct fdt *f, char *buf, size_t cap)
{
	if (!buf || !cap)
		return FDT_ERR_BADARG;
	buf[0] = '\0';
	int chosen = fdt_path_offset(f, "/chosen");
	if (chosen == FDT_ERR_NOTFOUND)
		return 0;
	if (chosen < 0)
		return chosen;
	int len;
	if (!fdt_getprop(f, chosen, "bootargs", &len))
		return len == FDT_ERR_NOTFOUND ? 0 : len;
	const char *s = fdt_getprop_string(f, chosen, "bootargs");
	if (!s)
		return FDT_ERR_BADVALUE;
	size_t n = 0;
	while (s[n])
		n++;
	if (n + 1 > cap)
		return FDT_ERR_NOSPACE;
	for (size_t i = 0; i <= n; i++)
		buf[i] = s[i];
	return (int)n;
}

int fdt_cpu_count(const struct fdt *f)
{
	int cpus = fdt_path_offset(f, "/cpus");
	if (cpus < 0)
		return cpus;
	int n = 0;
	int node = fdt_first_child(f, cpus);
	for (; node >= 0; node = fdt_next_sibling(f, node)) {
		const char *name = fdt_node_name(f, node, NULL);
		if (name && name_matches(name, "cpu", 3) && fdt_node_available(f, node))
			n++;
	}
	return node == FDT_ERR_NOTFOUND ? n : node;
}

/* A CPU node as fdt_cpus() sees it: named cpu or cpu@..., available, and
 * device_type "cpu" (cpu-map and other helpers under /cpus are not). */
static int is_cpu_node(const struct fdt *f, int node)
{
	const char *name = fdt_node_name(f, node, NULL);
	const char *type = fdt_getprop_string(f, node, "device_type");
	return name && name_matches(name, "cpu", 3) && type && str_eq(type, "cpu") &&
	       fdt_node_available(f, node);
}

int fdt_cpus(const struct fdt *f, struct fdt_cpu *out, int max)
{
	int cpus = fdt_path_offset(f, "/cpus");
	if (cpus < 0)
		return cpus;
	int ac = fdt_address_cells(f, cpus);
	if (ac < 0)
		return ac;
	int n = 0;
	int node = fdt_first_child(f, cpus);
	for (; node >= 0; node = fdt_next_sibling(f, node)) {
		if (!is_cpu_node(f, node))
			continue;
		uint64_t id;
		int err = fdt_reg(f, node, ac, 0, 0, &id, NULL);
		if (err)
			return err == FDT_ERR_NOTFOUND ? FDT_ERR_BADREG : err;
		if (n < max && out) {
			out[n].node = node;
			out[n].id = id;
		}
		n++;
	}
	return node == FDT_ERR_NOTFOUND ? n : node;
}

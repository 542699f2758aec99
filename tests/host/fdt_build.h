/*
 * fdt_build.h - a small flattened-device-tree writer for host tests
 * (test_fdt.c, test_memmap.c): nodes, properties, memreserve entries,
 * laid out as header | rsvmap | struct | strings by b_finish().
 */
#ifndef TESTS_HOST_FDT_BUILD_H
#define TESTS_HOST_FDT_BUILD_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fdt.h"

/* ------------------------------------------------------------ builder */

struct fdtb {
	uint8_t *st;   size_t slen, scap;   /* structure block */
	char *str;     size_t tlen, tcap;   /* strings block */
	uint64_t rsv[16][2]; int nrsv;
};

static inline void grow(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	*p = realloc(*p, c);
	if (!*p)
		abort();
	*cap = c;
}

static inline void b_raw(struct fdtb *b, const void *d, size_t n)
{
	grow((void **)&b->st, &b->scap, b->slen + n + 4);
	memcpy(b->st + b->slen, d, n);
	b->slen += n;
	while (b->slen & 3)
		b->st[b->slen++] = 0;
}

static inline void b_u32(struct fdtb *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };
	b_raw(b, x, 4);
}

static inline uint32_t b_string(struct fdtb *b, const char *s)
{
	for (size_t off = 0; off < b->tlen; off += strlen(b->str + off) + 1)
		if (!strcmp(b->str + off, s))
			return (uint32_t)off;
	size_t n = strlen(s) + 1;
	grow((void **)&b->str, &b->tcap, b->tlen + n);
	memcpy(b->str + b->tlen, s, n);
	b->tlen += n;
	return (uint32_t)(b->tlen - n);
}

static inline void b_begin(struct fdtb *b, const char *name)
{
	b_u32(b, 1);
	b_raw(b, name, strlen(name) + 1);
}

static inline void b_end(struct fdtb *b) { b_u32(b, 2); }

static inline void b_prop(struct fdtb *b, const char *name, const void *v, size_t n)
{
	b_u32(b, 3);
	b_u32(b, (uint32_t)n);
	b_u32(b, b_string(b, name));
	if (n)
		b_raw(b, v, n);
}

static inline void b_prop_str(struct fdtb *b, const char *name, const char *s)
{
	b_prop(b, name, s, strlen(s) + 1);
}

/* Property of n 32-bit cells given as host integers. */
static inline void b_prop_cells(struct fdtb *b, const char *name, int n, ...)
{
	uint8_t v[64];
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		uint32_t c = va_arg(ap, uint32_t);
		v[4 * i] = c >> 24; v[4 * i + 1] = c >> 16; v[4 * i + 2] = c >> 8; v[4 * i + 3] = c;
	}
	va_end(ap);
	b_prop(b, name, v, 4 * (size_t)n);
}

static inline void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static inline void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, (uint32_t)v); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Layout: header(40) | rsvmap | struct | strings.  Adds the END token.
 * Returns a malloc'd blob of exactly *size bytes; frees the builder. */
static inline uint8_t *b_finish(struct fdtb *b, size_t *size)
{
	b_u32(b, 9);
	size_t rsv = 40, st = rsv + 16 * ((size_t)b->nrsv + 1), str = st + b->slen;
	size_t total = str + b->tlen;
	uint8_t *p = calloc(1, total);
	put32(p, FDT_MAGIC);
	put32(p + 4, (uint32_t)total);
	put32(p + 8, (uint32_t)st);
	put32(p + 12, (uint32_t)str);
	put32(p + 16, (uint32_t)rsv);
	put32(p + 20, 17);
	put32(p + 24, 16);
	put32(p + 32, (uint32_t)b->tlen);
	put32(p + 36, (uint32_t)b->slen);
	for (int i = 0; i < b->nrsv; i++) {
		put64(p + rsv + 16 * i, b->rsv[i][0]);
		put64(p + rsv + 16 * i + 8, b->rsv[i][1]);
	}
	memcpy(p + st, b->st, b->slen);
	if (b->tlen)
		memcpy(p + str, b->str, b->tlen);
	free(b->st);
	free(b->str);
	memset(b, 0, sizeof *b);
	*size = total;
	return p;
}

#endif

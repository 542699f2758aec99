/*
 * format.c - a freestanding vsnprintf for strata's own reports.
 *
 * strata must not call the C library (it is what the C library's malloc
 * is built on), yet its reports need numbers in decimal and hex.  This is
 * the smallest formatter that covers what a memory allocator prints:
 *
 *     fmt ──► parse flags/width/precision/length ──► one conversion
 *                                                     │
 *     buf ◄── emit() clips at n-1, counts everything ◄┘
 */
#include <stdint.h>
#include <strata/format.h>
#include <strata/platform.h>

/* Into buf[0..n) clipped (mm_vsnprintf), or, with a sink, through buf in
 * pieces of n bytes (mm_printf: any length, on a small stack buffer). */
struct out {
	char *buf;
	size_t n;
	size_t len;
	void (*sink)(const char *s, size_t n);
	size_t used;
};

static void emit(struct out *o, char c)
{
	o->len++;
	if (o->sink) {
		o->buf[o->used++] = c;
		if (o->used == o->n) {
			o->sink(o->buf, o->used);
			o->used = 0;
		}
	} else if (o->len < o->n) {
		o->buf[o->len - 1] = c;
	}
}

static void emit_padded(struct out *o, const char *s, size_t slen,
			int width, int left, char pad)
{
	int fill = width > (int)slen ? width - (int)slen : 0;

	if (!left && pad == '0' && slen && (*s == '-')) {
		emit(o, *s++);
		slen--;
	}
	if (!left)
		while (fill-- > 0)
			emit(o, pad);
	while (slen--)
		emit(o, *s++);
	if (left)
		while (fill-- > 0)
			emit(o, ' ');
}

static size_t utoa(char *tmp, uintmax_t v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char rev[24];
	size_t i = 0, k = 0;

	do {
		rev[i++] = digits[v % base];
		v /= base;
	} while (v);
	while (i)
		tmp[k++] = rev[--i];
	return k;
}

static void vformat(struct out *o, const char *fmt, va_list ap)
{

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(o, *fmt);
			continue;
		}
		fmt++;
		int left = 0, width = 0, prec = -1, lng = 0;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				width = width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		/* lng: 0 int, 1 long, 2 long long, 3 size_t/intmax/ptrdiff,
		 * -1 short, -2 char (the int argument is converted back) */
		for (;; fmt++) {
			if (*fmt == 'l')
				lng++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't')
				lng = 3;
			else if (*fmt == 'h')
				lng = lng < 0 ? -2 : -1;
			else
				break;
		}
		char tmp[32];
		size_t tl;
		uintmax_t u;
		switch (*fmt) {
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			emit_padded(o, tmp, 1, width, left, ' ');
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			size_t sl = 0;
			if (!s)
				s = "(null)";
			while (s[sl] && (prec < 0 || sl < (size_t)prec))
				sl++;
			emit_padded(o, s, sl, width, left, ' ');
			break;
		}
		case 'd':
		case 'i': {
			intmax_t v;
			if (lng >= 3)
				v = va_arg(ap, intmax_t);
			else if (lng == 2)
				v = va_arg(ap, long long);
			else if (lng == 1)
				v = va_arg(ap, long);
			else
				v = va_arg(ap, int);
			if (lng == -1)
				v = (short)v;
			else if (lng == -2)
				v = (signed char)v;
			tl = 0;
			if (v < 0) {
				tmp[tl++] = '-';
				u = (uintmax_t)0 - (uintmax_t)v;
			} else {
				u = (uintmax_t)v;
			}
			tl += utoa(tmp + tl, u, 10, 0);
			emit_padded(o, tmp, tl, width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			if (lng >= 3)
				u = va_arg(ap, uintmax_t);
			else if (lng == 2)
				u = va_arg(ap, unsigned long long);
			else if (lng == 1)
				u = va_arg(ap, unsigned long);
			else
				u = va_arg(ap, unsigned int);
			if (lng == -1)
				u = (unsigned short)u;
			else if (lng == -2)
				u = (unsigned char)u;
			tl = utoa(tmp, u, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16,
				  *fmt == 'X');
			emit_padded(o, tmp, tl, width, left, pad);
			break;
		case 'p':
			tmp[0] = '0';
			tmp[1] = 'x';
			tl = 2 + utoa(tmp + 2, (uintptr_t)va_arg(ap, void *), 16, 0);
			emit_padded(o, tmp, tl, width, left, ' ');
			break;
		case '%':
			emit(o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			emit(o, '%');
			emit(o, *fmt);
			break;
		}
	}
}

int mm_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0, NULL, 0 };

	vformat(&o, fmt, ap);
	if (n)
		buf[o.len < n ? o.len : n - 1] = '\0';
	return (int)o.len;
}

int mm_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = mm_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

void mm_printf(const char *fmt, ...)
{
	char piece[256];
	struct out o = { piece, sizeof piece, 0, mm_platform_write, 0 };
	va_list ap;

	va_start(ap, fmt);
	vformat(&o, fmt, ap);
	va_end(ap);
	if (o.used)
		mm_platform_write(piece, o.used);
}

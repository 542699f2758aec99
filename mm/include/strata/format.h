/*
 * strata/format.h - the small freestanding formatter strata uses for its
 * reports and statistics.  Kernels without a C library may use it too.
 *
 * Conversions: %c %s %d %i %u %x %X %o %p %% ; length modifiers hh h l ll
 * z j t ; flags '-' '0' ; field width and precision (also '*').
 * Output is always NUL-terminated when n > 0; the return value is the
 * length the full output would have had (as C's snprintf).
 */
#ifndef STRATA_FORMAT_H
#define STRATA_FORMAT_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stdarg.h>
#include <stddef.h>

int mm_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int mm_snprintf(char *buf, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Format and send to mm_platform_write(), any length: in pieces of up to
 * 256 bytes (one piece for a line that fits), through a 256-byte buffer. */
void mm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

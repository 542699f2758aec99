/*
 * kprintf.h - freestanding formatted output for kernel/ and arch/.
 *
 * Supports %c %s %d %i %u %x %X %p %o %% with the l, ll, z, j, t length
 * modifiers, field width, '0' and '-' flags and precision for %s.
 * (To be replaced by newlib's stdio once strata is newlib's malloc.)
 */
#ifndef LIB_KPRINTF_H
#define LIB_KPRINTF_H
#include <stdarg.h>
#include <stddef.h>

int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap);

/* Console output used by kprintf (kernel/console.c). */
void console_write(const char *s, size_t n);

#endif

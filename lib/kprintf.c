/*
 * kprintf.c - the kernel's printf, on top of strata's freestanding
 * formatter (strata/format.h) and the console.
 */
#include <kprintf.h>
#include <strata/format.h>

int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	return mm_vsnprintf(buf, n, fmt, ap);
}

int ksnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = mm_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

int kvprintf(const char *fmt, va_list ap)
{
	char line[1024];
	va_list ap2;
	va_copy(ap2, ap);
	int r = mm_vsnprintf(line, sizeof line, fmt, ap2);
	va_end(ap2);
	console_write(line, r < (int)sizeof line ? (size_t)r : sizeof line - 1);
	return r;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = kvprintf(fmt, ap);
	va_end(ap);
	return r;
}

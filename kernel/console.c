/*
 * console.c - text output for the kernel: '\n' becomes "\r\n" on the
 * serial line, everything else goes to the architecture's UART as is.
 * newlib's stdout/stderr end here (lib/newlib/syscalls.c: _write), and so
 * does the direct path console_printf() (see kernel/console.h for why it
 * exists and why it is safe in panic and fault handlers).
 */
#include <stdio.h>
#include <kernel/arch.h>
#include <kernel/console.h>

void console_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			arch_putc('\r');
		arch_putc(s[i]);
	}
}

int console_vprintf(const char *fmt, va_list ap)
{
	char line[CONSOLE_LINE_MAX];
	int r = vsnprintf(line, sizeof line, fmt, ap);

	if (r > 0)
		console_write(line, r < (int)sizeof line ? (size_t)r : sizeof line - 1);
	return r;
}

int console_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = console_vprintf(fmt, ap);
	va_end(ap);
	return r;
}

/*
 * console.c - text output for the kernel: '\n' becomes "\r\n" on the
 * serial line, everything else goes to the architecture's UART as is.
 */
#include <kernel/arch.h>
#include <kprintf.h>

void console_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			arch_putc('\r');
		arch_putc(s[i]);
	}
}

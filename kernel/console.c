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
#include <kernel/smp.h>
#include <stdatomic.h>

/*
 * One lock keeps each console_write() call (a whole line, for
 * console_printf and strata's reports) in one piece when several CPUs
 * write.  It is bounded: a CPU that panics while another holds the lock
 * (or a fault inside console_write itself) writes anyway after ~a million
 * spins rather than hang the report.
 */
static atomic_uint console_lock;

void console_write(const char *s, size_t n)
{
	unsigned long irq = arch_irq_save();
	int locked = 0;

	for (unsigned spins = 0; spins < (1u << 20); spins++) {
		if (!atomic_exchange_explicit(&console_lock, 1, memory_order_acquire)) {
			locked = 1;
			break;
		}
		arch_cpu_relax();
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			arch_putc('\r');
		arch_putc(s[i]);
	}
	if (locked)
		atomic_store_explicit(&console_lock, 0, memory_order_release);
	arch_irq_restore(irq);
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

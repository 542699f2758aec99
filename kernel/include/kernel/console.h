/*
 * console.h - the kernel's direct console path.
 *
 * Normal output goes through newlib's stdio (printf, puts, ...), which
 * ends in _write() -> console_write() (lib/newlib/syscalls.c).  stdio has
 * state: FILE locks, buffers, and buffers come from malloc.  So the paths
 * that must print no matter what state stdio or strata is in - panic(),
 * the CPU exception handlers, strata's own reports - use console_printf():
 * newlib's vsnprintf into a buffer on the stack, then console_write().
 *
 * Why that is safe even when the fault happened inside printf or malloc:
 * vsnprintf formats into a FILE of its own on the stack (a string FILE:
 * no lock taken, no __sinit, nothing shared with stdout), and for the
 * conversions used on these paths (%d %u %x %p %s %c and their length
 * modifiers) it does not allocate - only floating point (%f %e %g: dtoa's
 * Bigints) and wide characters would.  So console_printf never takes a lock
 * and never calls malloc.  Do not use floating point with it.
 *
 * Output longer than CONSOLE_LINE_MAX - 1 bytes per call is truncated.
 */
#ifndef KERNEL_CONSOLE_H
#define KERNEL_CONSOLE_H
#include <stdarg.h>
#include <stddef.h>

#define CONSOLE_LINE_MAX 512

/* Bytes to the UART, '\n' as "\r\n" (kernel/console.c). */
void console_write(const char *s, size_t n);

/* Lock-free, allocation-free formatted output; see above. */
int console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int console_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif

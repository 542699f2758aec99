#ifndef KERNEL_PANIC_H
#define KERNEL_PANIC_H
#include <stdint.h>

/* Print "PANIC: <msg>", the caller and a frame-pointer backtrace, then
 * exit with EXIT_PANIC. */
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Called by arch exception handlers after printing the CPU state: prints a
 * backtrace starting at frame pointer fp and exits with EXIT_FAULT. */
_Noreturn void fault_exit(uintptr_t pc, uintptr_t fp);

/* Walk a frame-pointer chain (record {caller's fp, return address} at
 * fp + ARCH_FRAME_RECORD, kernel/arch.h) and print one line per frame. */
void backtrace_print(uintptr_t fp);
/* The same walk into ret[0..max): the return addresses, innermost first;
 * returns how many. */
int backtrace_collect(uintptr_t fp, uintptr_t *ret, int max);

#endif

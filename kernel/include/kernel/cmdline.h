#ifndef KERNEL_CMDLINE_H
#define KERNEL_CMDLINE_H
#include <stddef.h>
#include <stdint.h>
/* Find key=value in a space-separated command line.  Copies the value
 * (bounded, NUL-terminated) and returns 1, or returns 0 if absent. */
int cmdline_get(const char *cmdline, const char *key, char *val, size_t n);
/* The number value of key, or def when absent. */
uint64_t cmdline_get_u64(const char *cmdline, const char *key, uint64_t def);
#endif

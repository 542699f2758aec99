/* arch/host/host.h - hosted-platform helpers for tests. */
#ifndef ARCH_HOST_HOST_H
#define ARCH_HOST_HOST_H
#include <stddef.h>

/* Send everything strata writes to buf (NUL-terminated, truncated at cap)
 * instead of stderr, until host_capture_stop(), which returns the length. */
void host_capture_start(char *buf, size_t cap);
size_t host_capture_stop(void);

#endif

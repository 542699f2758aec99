/*
 * strata/platform.h - the contract between strata and the kernel using it.
 *
 * strata (everything under mm/) needs only the compiler's freestanding
 * headers plus the few hooks below, which the kernel implements.  Memory
 * itself is handed over through the page-frame allocator's setup calls
 * (strata/pfa.h): pfa_setup_begin(direct_map_offset), pfa_add_region(),
 * pfa_reserve(), pfa_setup_end().
 *
 *   kernel                          strata
 *   ------                          ------
 *   mm_platform_write(s, n)   <---  reports, statistics, check failures
 *   mm_platform_panic(msg)    <---  unrecoverable errors (never returns)
 *
 * Locks are strata's own (strata/spinlock.h, C11 atomics), so the kernel
 * provides no lock hooks for a single CPU with no allocation from
 * interrupt context.
 */
#ifndef STRATA_PLATFORM_H
#define STRATA_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Write n bytes of log text (no terminating NUL). Must not allocate. */
void mm_platform_write(const char *s, size_t n);

/* Stop the system after a fatal allocator error; msg is one line. */
_Noreturn void mm_platform_panic(const char *msg);

#endif

/*
 * arch.h - the small contract every architecture implements for kernel/.
 *
 * kernel/ is shared by x86_64, aarch64 and riscv64; everything CPU- or
 * board-specific is behind these functions, implemented in arch/<name>/.
 */
#ifndef KERNEL_ARCH_H
#define KERNEL_ARCH_H

#include <stdint.h>

/* Console: write one raw byte (blocking). kernel/console.c turns '\n'
 * into "\r\n" before calling this. */
void arch_putc(char c);

/* End the QEMU run with this status as the runner's exit code.
 * 0 = all tests passed; see kernel/include/kernel/exit.h for the others. */
_Noreturn void arch_exit(int status);

/* Free-running cycle counter (rdtsc / CNTVCT_EL0 / rdcycle). */
uint64_t arch_cycles(void);

/* Park the CPU forever with interrupts off (used after a nested panic). */
_Noreturn void arch_halt(void);

/* A virtual address guaranteed to be unmapped, for selftest-fault. */
uintptr_t arch_unmapped_address(void);

/* Short CPU description for the banner, e.g. "cortex-a57 EL1". */
const char *arch_cpu_name(void);

/* Frame records (everything is built with -fno-omit-frame-pointer): the
 * pair {caller's frame pointer, return address} sits at
 * fp + ARCH_FRAME_RECORD.  x86_64's rbp and aarch64's x29 point at it; a
 * RISC-V s0 points just above it (ra at fp - 8, the caller's fp at
 * fp - 16). */
#if defined(__riscv)
#define ARCH_FRAME_RECORD (-16)
#else
#define ARCH_FRAME_RECORD 0
#endif

#endif

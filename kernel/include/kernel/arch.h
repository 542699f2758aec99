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

/* A counter for measuring single calls in instructions (test=bench-wcet).
 * Under QEMU's `-icount shift=0,align=off,sleep=off` it advances exactly
 * one per instruction executed on this CPU; without icount it is a cycle
 * count (TCG time) and says nothing exact.
 *   x86_64   rdtsc (the TSC follows the icount clock: 1 per instruction)
 *   aarch64  PMCCNTR_EL0, the PMU cycle counter, enabled at boot on every
 *            CPU (QEMU: 1 GHz of the virtual clock = 1 per instruction);
 *            CNTVCT (62.5 MHz) would advance only 1 per 16
 *   riscv64  rdinstret, instructions retired (OpenSBI lets S-mode read it)
 * Its cost (two reads back to back) is measured by the caller and
 * subtracted; tests/kernel/bench_wcet.c checks the slope over loops of
 * known length. */
uint64_t arch_insns(void);

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

/*
 * smp.h - several CPUs: what kernel/smp.c offers and what each
 * architecture implements for it.
 *
 *   boot CPU (cpu 0)                          each secondary CPU
 *   ----------------                          ------------------
 *   kmain: mm_init, banner
 *   smp_init(bi, want)
 *     arch_smp_boot(bi, want) ----starts--->  arch entry (trampoline / PSCI)
 *                                             own stack, MMU on with the
 *                                             kernel's tables, exception
 *                                             vectors, FP, arch_cpu_id()
 *                                             set, interrupts off
 *                                             smp_secondary_main(cpu)
 *     waits until all are online  <--online-- waits for work
 *   smp_run(fn, arg) ------work------------>  fn(cpu, arg) on every CPU,
 *     fn(0, arg) here too                     the boot CPU included
 *     waits for all to finish     <--done---
 *
 * CPU numbers are dense: 0 (the boot CPU) .. smp_ncpus() - 1.
 */
#ifndef KERNEL_SMP_H
#define KERNEL_SMP_H

#include <stdint.h>

#define SMP_MAX_CPUS 16

struct boot_info;

/* ---- kernel/smp.c ---- */

/* Start up to `want` CPUs in all (the boot CPU included; 0 = as many as
 * the firmware reports, capped at SMP_MAX_CPUS).  Returns the number
 * online.  Called once, on the boot CPU, after mm_init(). */
unsigned smp_init(const struct boot_info *bi, unsigned want);
unsigned smp_ncpus(void);

/* Run fn(cpu, arg) on every online CPU at once and return when all have
 * returned.  Not reentrant: only the boot CPU calls it. */
void smp_run(void (*fn)(unsigned cpu, void *arg), void *arg);

/* A barrier for the CPUs inside one smp_run(): every CPU calls it with the
 * same `b`; nobody leaves until all smp_ncpus() have arrived.  b must be
 * zeroed before the run. */
struct smp_barrier { volatile unsigned count, gen; };
void smp_barrier_wait(struct smp_barrier *b);

/* Entered by each secondary once its arch setup is done; never returns. */
_Noreturn void smp_secondary_main(unsigned cpu);

/* ---- arch/<name>/smp.c ---- */

/* Discover the CPUs (x86_64: ACPI MADT; aarch64: DTB /cpus) and start
 * CPUs 1 .. want-1 so that each ends in smp_secondary_main(cpu).  Returns
 * how many CPUs (boot CPU included) it started; kernel/smp.c waits for
 * each to check in.  want >= 1. */
unsigned arch_smp_boot(const struct boot_info *bi, unsigned want);

/* CPUs the firmware describes (for the banner and for want = 0). */
unsigned arch_cpu_count_firmware(void);

/* This CPU's number, in a few instructions (x86_64: %gs-relative load;
 * aarch64: TPIDR_EL1).  0 on the boot CPU, also before smp_init(). */
unsigned arch_cpu_id(void);

/* Interrupts off, returning the previous state; and back. */
unsigned long arch_irq_save(void);
void arch_irq_restore(unsigned long flags);

/* Spin-wait hint (pause / yield). */
void arch_cpu_relax(void);

#endif

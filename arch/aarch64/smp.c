/*
 * smp.c - aarch64 side of kernel/smp.h.  (Single CPU until the
 * secondaries are started; the PSCI CPU_ON bring-up replaces this file.)
 */
#include <kernel/smp.h>

unsigned arch_cpu_count_firmware(void) { return 1; }
unsigned arch_smp_boot(const struct boot_info *bi, unsigned want)
{
	(void)bi;
	(void)want;
	return 1;
}
unsigned arch_cpu_id(void) { return 0; }

unsigned long arch_irq_save(void)
{
	unsigned long daif;
	__asm__ volatile("mrs %0, daif; msr daifset, #3" : "=r"(daif) : : "memory");
	return daif;
}

void arch_irq_restore(unsigned long flags)
{
	__asm__ volatile("msr daif, %0" : : "r"(flags) : "memory");
}

void arch_cpu_relax(void) { __asm__ volatile("yield"); }

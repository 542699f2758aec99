/*
 * smp.c - x86_64 side of kernel/smp.h.  (Single CPU until the APs are
 * started; the application-processor bring-up replaces this file.)
 */
#include <kernel/smp.h>

unsigned arch_cpu_count_firmware(void) { return 1; }
unsigned arch_smp_boot(const struct boot_info *bi, unsigned want)
{
	(void)bi;
	(void)want;
	return 1;
}
unsigned arch_cpu_id(void)
{
	unsigned id;

	__asm__("movl %%gs:0, %0" : "=r"(id));
	return id;
}

unsigned long arch_irq_save(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

void arch_irq_restore(unsigned long flags)
{
	if (flags & (1ul << 9))
		__asm__ volatile("sti" : : : "memory");
}

void arch_cpu_relax(void) { __asm__ volatile("pause"); }

/*
 * platform_default.c - weak single-CPU versions of the optional platform
 * hooks (strata/platform.h), so a kernel with one CPU and no allocation
 * from interrupt handlers implements only mm_platform_write() and
 * mm_platform_panic().  A kernel's own (strong) definitions replace these
 * at link time.
 */
#include <strata/platform.h>

#ifndef MM_PLATFORM_INLINE
__attribute__((weak)) unsigned mm_cpu_id(void) { return 0; }
__attribute__((weak)) unsigned mm_cpu_count(void) { return 1; }
__attribute__((weak)) unsigned long mm_irq_save(void) { return 0; }
__attribute__((weak)) void mm_irq_restore(unsigned long flags) { (void)flags; }
__attribute__((weak)) void mm_platform_spin_wait(unsigned spins) { (void)spins; }
#endif

__attribute__((weak)) unsigned mm_platform_cpu_attach(void) { return MM_CPU_NONE; }

__attribute__((weak)) uint64_t mm_platform_entropy(void)
{
	int local;
	return ((uint64_t)(uintptr_t)&local * 0x9E3779B97F4A7C15ull) ^
	       ((uint64_t)(uintptr_t)&mm_platform_entropy << 17);
}
__attribute__((weak)) void mm_platform_release(void *va, size_t bytes)
{
	(void)va;
	(void)bytes;
}
__attribute__((weak)) int mm_platform_protect(void *va, size_t bytes, int prot)
{
	(void)va;
	(void)bytes;
	(void)prot;
	return -1;      /* unsupported: guarded allocations stay off */
}

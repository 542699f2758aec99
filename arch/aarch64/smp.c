/*
 * arch/aarch64/smp.c - aarch64 side of kernel/smp.h: the CPUs the device
 * tree lists, started one at a time with PSCI CPU_ON.
 *
 *   DTB /cpus                           arch_smp_boot(bi, want), on CPU 0
 *   ---------                           ---------------------------------
 *   cpu@0 reg = <0x0>  <- us (MPIDR)    1. stacks for want-1 CPUs, guard
 *   cpu@1 reg = <0x1>     enable-method    pages unmapped (only CPU 0 runs,
 *   cpu@2 reg = <0x2>     = "psci"         so live tables may be split)
 *   ...                                 2. for each other CPU, in DTB order:
 *                                          record n = {stacks, n, MMU regs}
 *                                          dc cvac, PSCI CPU_ON  --------+
 *                                          wait for record.state         |
 *                                          (STARTING -> ARRIVED)         |
 *                                       3. free the stacks nobody used   |
 *                                                                        v
 *   smp_entry.S (MMU off -> on) -> aarch64_secondary_start(record):
 *     CAS state STARTING -> ARRIVED, then smp_secondary_main(n)
 *
 * CPU numbers are dense in start order: a CPU whose CPU_ON fails is
 * reported and skipped, and the next one gets its number (and its unused
 * stacks).  A CPU that accepted CPU_ON but does not arrive within
 * ARRIVE_TIMEOUT_S is abandoned with a message: the boot CPU CASes its
 * state to ABANDONED, so if it ever arrives it halts instead of joining,
 * and no further CPUs are started (its stacks stay its own).
 *
 * Each secondary's stacks, one pfa block of 64 KiB (identity mapped):
 *
 *   +0       guard page (unmapped)    exception stack overflow faults
 *   +4 KiB   exception stack 16 KiB   SP_EL0 = its top (vectors.S)
 *   +20 KiB  guard page (unmapped)    kernel stack overflow faults and is
 *   +24 KiB  kernel stack 40 KiB        reported from the exception stack
 *   +64 KiB  <- SP at entry
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fdt.h>
#include <kernel/arch.h>
#include <kernel/smp.h>
#include <strata/pfa.h>
#include "aarch64.h"

#define STACKS_ORDER     4                          /* 16 pages */
#define STACKS_SIZE      (4096ul << STACKS_ORDER)
#define EXC_GUARD        0ul                         /* offsets in the block */
#define KSTACK_GUARD     (4096ul + EXC_STACK_SIZE)
#define ARRIVE_TIMEOUT_S 5
#define MPIDR_AFF_MASK   0xff00fffffful              /* Aff3, Aff2..Aff0 */

enum { AP_STARTING = 1, AP_ARRIVED, AP_ABANDONED };

static struct aarch64_ap_boot ap_boot[SMP_MAX_CPUS] __attribute__((aligned(AP_SIZE)));
static uint64_t stacks[SMP_MAX_CPUS];                /* block of CPU n (n >= 1) */
static uint64_t bringup_cycles[SMP_MAX_CPUS];

unsigned arch_cpu_count_firmware(void)
{
	return (unsigned)aarch64_ncpus;
}

unsigned arch_cpu_id(void)
{
	return (unsigned)sysreg_read(tpidr_el1);
}

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

/* ------------------------------------------------------------ stacks */

static int stacks_alloc(unsigned cpu)
{
	phys_addr_t pa = pfa_alloc(STACKS_ORDER, 0);
	if (!pa) {
		printf("smp: no memory for CPU %u's stacks\n", cpu);
		return -1;
	}
	uint64_t va = (uint64_t)(uintptr_t)pfa_virt(pa);   /* == pa: identity map */
	if (mmu_unmap_page(va + EXC_GUARD) || mmu_unmap_page(va + KSTACK_GUARD)) {
		/* (the block stays allocated: one guard page may be unmapped) */
		printf("smp: translation table pool full: no guard pages for CPU %u\n", cpu);
		return -1;
	}
	stacks[cpu] = va;
	ap_boot[cpu].exc_stack = va + 4096 + EXC_STACK_SIZE;
	ap_boot[cpu].stack = va + STACKS_SIZE;
	return 0;
}

/* Give back stacks no CPU came to use: guard pages mapped again first
 * (invalid -> valid needs no break-before-make, only a barrier). */
static void stacks_free(unsigned cpu)
{
	uint64_t va = stacks[cpu];
	mmu_map(va + EXC_GUARD, va + EXC_GUARD, 4096, MAP_RAM);
	mmu_map(va + KSTACK_GUARD, va + KSTACK_GUARD, 4096, MAP_RAM);
	__asm__ volatile("dsb ishst\n\tisb" ::: "memory");
	pfa_free(va, STACKS_ORDER);
	stacks[cpu] = 0;
}

int aarch64_stack_guard_cpu(uint64_t addr)
{
	for (unsigned cpu = 0; cpu < SMP_MAX_CPUS; cpu++) {
		uint64_t g = cpu ? stacks[cpu] + KSTACK_GUARD : (uint64_t)(uintptr_t)__boot_stack_guard;
		if ((cpu == 0 || stacks[cpu]) && addr >= g && addr < g + 4096 + 256)
			return (int)cpu;
	}
	return -1;
}

/* ------------------------------------------------------------ CPU_ON */

static const char *psci_error(int64_t r)
{
	static const char *const names[] = {
		"success", "NOT_SUPPORTED", "INVALID_PARAMETERS", "DENIED", "ALREADY_ON",
		"ON_PENDING", "INTERNAL_FAILURE", "NOT_PRESENT", "DISABLED", "INVALID_ADDRESS",
	};
	return r <= 0 && r >= -9 ? names[-r] : "unknown error";
}

/* Clean [p, p + n) to the point of coherency: a CPU with its caches off
 * reads memory, not our caches. */
static void dcache_clean_poc(const void *p, size_t n)
{
	uint64_t line = 4ul << ((sysreg_read(ctr_el0) >> 16) & 0xf);   /* DminLine */
	for (uintptr_t a = (uintptr_t)p & ~(line - 1); a < (uintptr_t)p + n; a += line)
		__asm__ volatile("dc cvac, %0" : : "r"(a) : "memory");
	dsb_sy();
}

/* Wait for the CPU behind ap to arrive; 0 if it did, -1 if we gave up. */
static int wait_arrival(struct aarch64_ap_boot *ap)
{
	uint64_t limit = arch_cycles() + ARRIVE_TIMEOUT_S * sysreg_read(cntfrq_el0);
	while (__atomic_load_n(&ap->state, __ATOMIC_ACQUIRE) == AP_STARTING &&
	       arch_cycles() < limit)
		arch_cpu_relax();
	uint64_t expect = AP_STARTING;
	__atomic_compare_exchange_n(&ap->state, &expect, AP_ABANDONED, 0, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
	return expect == AP_ARRIVED ? 0 : -1;
}

/* 0: started and arrived; 1: not started (go on with the next one);
 * -1: lost after CPU_ON (start no more). */
static int start_cpu(const struct fdt *f, const struct fdt_cpu *c, unsigned cpu)
{
	const char *method = fdt_getprop_string(f, c->node, "enable-method");
	if (!method || strcmp(method, "psci") != 0) {
		printf("smp: CPU with MPIDR 0x%llx: enable-method \"%s\", not psci: skipped\n",
		       (unsigned long long)c->id, method ? method : "(none)");
		return 1;
	}
	struct aarch64_ap_boot *ap = &ap_boot[cpu];
	ap->cpu = cpu;
	ap->mair = sysreg_read(mair_el1);
	ap->tcr = sysreg_read(tcr_el1);
	ap->ttbr0 = sysreg_read(ttbr0_el1);
	ap->sctlr = sysreg_read(sctlr_el1);
	ap->state = AP_STARTING;
	dcache_clean_poc(ap, sizeof *ap);

	uint64_t t0 = arch_cycles();
	int64_t r = aarch64_psci(PSCI_CPU_ON_64, c->id, (uint64_t)(uintptr_t)aarch64_secondary_entry,
				 (uint64_t)(uintptr_t)ap);
	if (r != 0) {
		printf("smp: PSCI CPU_ON for MPIDR 0x%llx failed: %s (%lld); going on without it\n",
		       (unsigned long long)c->id, psci_error(r), (long long)r);
		return 1;
	}
	if (wait_arrival(ap)) {
		printf("smp: CPU with MPIDR 0x%llx accepted CPU_ON but did not arrive within %d s; "
		       "starting no more CPUs\n", (unsigned long long)c->id, ARRIVE_TIMEOUT_S);
		return -1;
	}
	bringup_cycles[cpu] = arch_cycles() - t0;
	return 0;
}

/* cycles as microseconds with one decimal, "12.3" */
static void print_us(uint64_t cycles)
{
	uint64_t tenths = cycles * 10000000 / sysreg_read(cntfrq_el0);
	printf("%llu.%llu", (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10));
}

/* "smp: PSCI CPU_ON (hvc) -> arrival, us: cpu1 50.2 cpu2 41.0; all 160.3"
 * (piecemeal is fine: only this CPU runs kernel code that prints yet) */
static void print_bringup(unsigned started, uint64_t total)
{
	printf("smp: PSCI CPU_ON (%s) -> arrival, us:", aarch64_psci_conduit == 'h' ? "hvc" : "smc");
	for (unsigned cpu = 1; cpu < started; cpu++) {
		printf(" cpu%u ", cpu);
		print_us(bringup_cycles[cpu]);
	}
	printf("; all ");
	print_us(total);
	printf("\n");
}

unsigned arch_smp_boot(const struct boot_info *bi, unsigned want)
{
	(void)bi;
	uint64_t t0 = arch_cycles();
	struct fdt f;
	struct fdt_cpu list[SMP_MAX_CPUS];
	if (!aarch64_psci_conduit) {
		printf("smp: no /psci node in the device tree: staying on 1 CPU\n");
		return 1;
	}
	int n = fdt_open(&f, aarch64_dtb, fdt_peek_totalsize(aarch64_dtb, 8));
	n = n ? n : fdt_cpus(&f, list, SMP_MAX_CPUS);
	if (n < 0) {
		printf("smp: device tree /cpus: %s: staying on 1 CPU\n", fdt_strerror(n));
		return 1;
	}
	unsigned prepared = 1;
	while (prepared < want && stacks_alloc(prepared) == 0)
		prepared++;

	uint64_t self = sysreg_read(mpidr_el1) & MPIDR_AFF_MASK;
	unsigned started = 1, lost = 0;
	for (int i = 0; i < n && i < SMP_MAX_CPUS && started < prepared; i++) {
		if (list[i].id == self)
			continue;
		int r = start_cpu(&f, &list[i], started);
		if (r < 0) {
			lost = 1;   /* its stacks stay with it, in case it wakes up */
			break;
		}
		started += r == 0;
	}
	for (unsigned cpu = started + lost; cpu < prepared; cpu++)
		stacks_free(cpu);
	if (started > 1)
		print_bringup(started, arch_cycles() - t0);
	return started;
}

void aarch64_secondary_start(struct aarch64_ap_boot *ap)
{
	uint64_t expect = AP_STARTING;
	if (!__atomic_compare_exchange_n(&ap->state, &expect, AP_ARRIVED, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		arch_halt();   /* the boot CPU gave up on us */
	aarch64_pmu_enable();
	smp_secondary_main((unsigned)ap->cpu);
}

/*
 * arch/riscv64/smp.c - riscv64 side of kernel/smp.h: the harts the device
 * tree lists, started one at a time with SBI HSM hart_start.
 *
 *   DTB /cpus                           arch_smp_boot(bi, want), on CPU 0
 *   ---------                           ---------------------------------
 *   cpu@0 reg = <0>  (hart ids; the     1. stacks for want-1 CPUs, guard
 *   cpu@1 reg = <1>   boot hart is         pages unmapped (only CPU 0 runs,
 *   cpu@2 reg = <2>   whichever one        so live tables may be split)
 *   ...               OpenSBI chose)    2. for each other hart, in DTB order:
 *                                          record n = {stacks, n, satp}
 *                                          sbi hart_start(hartid,    -----+
 *                                            riscv_secondary_entry, &rec) |
 *                                          wait for record.state          |
 *                                          (STARTING -> ARRIVED)          |
 *                                       3. free the stacks nobody used    |
 *                                                                         v
 *   boot.S riscv_secondary_entry (a0 = hart id, a1 = &record, satp = 0):
 *     stvec, FP, satp = the boot hart's, sp, sscratch, tp = n
 *     -> riscv_secondary_start(record): CAS STARTING -> ARRIVED,
 *        smp_secondary_main(n)
 *
 * CPU numbers are dense in start order (CPU 0 is the boot hart, whatever
 * its hart id); riscv_cpu_hartid() maps back.  A hart whose hart_start
 * fails is reported and skipped.  One that accepted hart_start but does not
 * arrive within ARRIVE_TIMEOUT_S (timed with the time CSR) is abandoned:
 * the boot hart CASes its state to ABANDONED, so if it ever arrives it
 * halts instead of joining, and no further harts are started.
 *
 * Each secondary's stacks, one pfa block of 64 KiB (identity mapped):
 *
 *   +0       guard page (unmapped)    exception stack overflow faults
 *   +4 KiB   exception stack 16 KiB   sscratch = its top (trap entry)
 *   +20 KiB  guard page (unmapped)    kernel stack overflow faults and is
 *   +24 KiB  kernel stack 40 KiB        reported from the exception stack
 *   +64 KiB  <- sp at entry
 */
#include <stdatomic.h>
#include <stdio.h>
#include <kernel/arch.h>
#include <kernel/smp.h>
#include <strata/pfa.h>
#include <fdt.h>
#include "riscv64.h"

#define STACKS_ORDER     4                          /* 16 pages */
#define STACKS_SIZE      (4096ul << STACKS_ORDER)
#define EXC_GUARD        0ul                         /* offsets in the block */
#define KSTACK_GUARD     (4096ul + EXC_STACK_SIZE)
#define ARRIVE_TIMEOUT_S 5

enum { HB_STARTING = 1, HB_ARRIVED, HB_ABANDONED };

static struct riscv_hart_boot hart_boot[SMP_MAX_CPUS] __attribute__((aligned(HB_SIZE)));
static uint64_t stacks[SMP_MAX_CPUS];                /* block of CPU n (n >= 1) */
static uint64_t bringup_ticks[SMP_MAX_CPUS];

unsigned arch_cpu_count_firmware(void)
{
	return (unsigned)riscv_ncpus;
}

uint64_t riscv_cpu_hartid(unsigned cpu)
{
	return cpu == 0 ? riscv_boot_hartid : hart_boot[cpu].hartid;
}

/* arch_cpu_id, arch_irq_save, arch_irq_restore: cpu.S */

/* Zihintpause "pause" (a FENCE hint: a plain fence where not implemented) */
void arch_cpu_relax(void) { __asm__ volatile(".insn i 0x0f, 0, x0, x0, 0x010"); }

static uint64_t read_time(void)
{
	uint64_t t;
	__asm__ volatile("rdtime %0" : "=r"(t) : : "memory");
	return t;
}

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
		printf("smp: page table pool full: no guard pages for CPU %u\n", cpu);
		return -1;
	}
	stacks[cpu] = va;
	hart_boot[cpu].exc_stack = va + 4096 + EXC_STACK_SIZE;
	hart_boot[cpu].stack = va + STACKS_SIZE;
	return 0;
}

/* Give back stacks no hart came to use: guard pages mapped again first. */
static void stacks_free(unsigned cpu)
{
	uint64_t va = stacks[cpu];
	mmu_map(va + EXC_GUARD, va + EXC_GUARD, 4096, MAP_RAM);
	mmu_map(va + KSTACK_GUARD, va + KSTACK_GUARD, 4096, MAP_RAM);
	sfence_vma_all();
	pfa_free(va, STACKS_ORDER);
	stacks[cpu] = 0;
}

int riscv_stack_guard_cpu(uint64_t addr)
{
	for (unsigned cpu = 0; cpu < SMP_MAX_CPUS; cpu++) {
		uint64_t g = cpu ? stacks[cpu] + KSTACK_GUARD : (uint64_t)(uintptr_t)__boot_stack_guard;
		if ((cpu == 0 || stacks[cpu]) && addr >= g && addr < g + 4096 + 256)
			return (int)cpu;
	}
	return -1;
}

/* ------------------------------------------------------------ hart_start */

static const char *sbi_error(long e)
{
	static const char *const names[] = {
		"success", "FAILED", "NOT_SUPPORTED", "INVALID_PARAM", "DENIED",
		"INVALID_ADDRESS", "ALREADY_AVAILABLE", "ALREADY_STARTED", "ALREADY_STOPPED",
	};
	return e <= 0 && e >= -8 ? names[-e] : "unknown error";
}

/* Wait for the hart behind hb to arrive; 0 if it did, -1 if we gave up. */
static int wait_arrival(struct riscv_hart_boot *hb)
{
	uint64_t limit = read_time() + ARRIVE_TIMEOUT_S * riscv_timebase_hz;
	while (__atomic_load_n(&hb->state, __ATOMIC_ACQUIRE) == HB_STARTING && read_time() < limit)
		arch_cpu_relax();
	uint64_t expect = HB_STARTING;
	__atomic_compare_exchange_n(&hb->state, &expect, HB_ABANDONED, 0, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE);
	return expect == HB_ARRIVED ? 0 : -1;
}

/* 0: started and arrived; 1: not started (go on with the next one);
 * -1: lost after hart_start (start no more). */
static int start_hart(uint64_t hartid, unsigned cpu)
{
	struct riscv_hart_boot *hb = &hart_boot[cpu];
	hb->cpu = cpu;
	hb->hartid = hartid;
	hb->satp = csr_read(satp);
	__atomic_store_n(&hb->state, HB_STARTING, __ATOMIC_RELEASE);

	uint64_t t0 = read_time();
	struct sbiret r = sbi_call(SBI_EXT_HSM, SBI_HSM_HART_START, (long)hartid,
				   (long)(uintptr_t)riscv_secondary_entry, (long)(uintptr_t)hb);
	if (r.error) {
		printf("smp: SBI hart_start for hart %llu failed: %s (%ld); going on without it\n",
		       (unsigned long long)hartid, sbi_error(r.error), r.error);
		return 1;
	}
	if (wait_arrival(hb)) {
		printf("smp: hart %llu accepted hart_start but did not arrive within %d s; "
		       "starting no more harts\n", (unsigned long long)hartid, ARRIVE_TIMEOUT_S);
		return -1;
	}
	bringup_ticks[cpu] = read_time() - t0;
	return 0;
}

/* ticks of the time CSR as microseconds with one decimal, "12.3" */
static void print_us(uint64_t ticks)
{
	uint64_t tenths = ticks * 10000000 / riscv_timebase_hz;
	printf("%llu.%llu", (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10));
}

static void print_bringup(unsigned started, uint64_t total)
{
	printf("smp: SBI HSM hart_start -> arrival, us:");
	for (unsigned cpu = 1; cpu < started; cpu++) {
		printf(" cpu%u (hart %llu) ", cpu, (unsigned long long)hart_boot[cpu].hartid);
		print_us(bringup_ticks[cpu]);
	}
	printf("; all ");
	print_us(total);
	printf("\n");
}

unsigned arch_smp_boot(const struct boot_info *bi, unsigned want)
{
	(void)bi;
	uint64_t t0 = read_time();
	struct fdt f;
	struct fdt_cpu list[SMP_MAX_CPUS];
	if (sbi_call(SBI_EXT_BASE, SBI_BASE_PROBE, SBI_EXT_HSM, 0, 0).value == 0) {
		printf("smp: the SBI firmware has no HSM extension: staying on 1 CPU\n");
		return 1;
	}
	int n = fdt_open(&f, riscv_dtb, fdt_peek_totalsize(riscv_dtb, 8));
	n = n ? n : fdt_cpus(&f, list, SMP_MAX_CPUS);
	if (n < 0) {
		printf("smp: device tree /cpus: %s: staying on 1 CPU\n", fdt_strerror(n));
		return 1;
	}
	unsigned prepared = 1;
	while (prepared < want && stacks_alloc(prepared) == 0)
		prepared++;

	unsigned started = 1, lost = 0;
	for (int i = 0; i < n && i < SMP_MAX_CPUS && started < prepared; i++) {
		if (list[i].id == riscv_boot_hartid)
			continue;
		int r = start_hart(list[i].id, started);
		if (r < 0) {
			lost = 1;   /* its stacks stay with it, in case it wakes up */
			break;
		}
		started += r == 0;
	}
	for (unsigned cpu = started + lost; cpu < prepared; cpu++)
		stacks_free(cpu);
	if (started > 1)
		print_bringup(started, read_time() - t0);
	return started;
}

void riscv_secondary_start(struct riscv_hart_boot *hb)
{
	uint64_t expect = HB_STARTING;
	if (!__atomic_compare_exchange_n(&hb->state, &expect, HB_ARRIVED, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		arch_halt();   /* the boot hart gave up on us */
	smp_secondary_main((unsigned)hb->cpu);
}

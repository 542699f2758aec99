/*
 * arch/aarch64/platform.c - kernel/include/kernel/arch.h for QEMU -M virt.
 *
 *   arch_putc      PL011 UART at 0x09000000: wait while FR.TXFF (bit 5),
 *                  then write DR.  QEMU needs no UART setup.
 *   arch_exit      semihosting SYS_EXIT (hlt #0xf000, x0 = 0x18, x1 -> block
 *                  {ADP_Stopped_ApplicationExit, status}): with -semihosting
 *                  QEMU exits with exactly `status`.  Fallback: PSCI
 *                  SYSTEM_OFF (QEMU then exits 0), then halt.
 *   arch_cycles    CNTVCT_EL0, the virtual counter (62.5 MHz on QEMU virt)
 *   arch_insns     PMCCNTR_EL0, the PMU cycle counter (aarch64_pmu_enable,
 *                  on every CPU at boot).  QEMU derives it from the virtual
 *                  clock at 1 GHz, so under -icount shift=0 it advances one
 *                  per instruction, where CNTVCT advances one per 16.  Event
 *                  counter 0 counts INST_RETIRED (0x08, QEMU: only under
 *                  icount) as a cross-check (aarch64_inst_retired).
 *   arch_halt      interrupts masked, wfi forever
 *   arch_cpu_name  from MIDR_EL1, plus the EL we booted at
 *   arch_unmapped_address  inside the unmapped flash window (see setup.c)
 */
#include <stdint.h>
#include <stdio.h>
#include <kernel/arch.h>
#include <kernel/smp.h>
#include "aarch64.h"

#define UART_DR  0x00
#define UART_FR  0x18
#define FR_TXFF  (1u << 5)

#define SEMIHOST_SYS_EXIT            0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

void arch_putc(char c)
{
	while (mmio_read32(VIRT_UART_BASE + UART_FR) & FR_TXFF)
		;
	mmio_write32(VIRT_UART_BASE + UART_DR, (uint8_t)c);
}

uint64_t arch_cycles(void)
{
	return read_cntvct();
}

#define PMCR_E  (1u << 0)    /* counters enabled */
#define PMCR_P  (1u << 1)    /* reset the event counters */
#define PMCR_C  (1u << 2)    /* reset the cycle counter */
#define PMCR_LC (1u << 6)    /* the cycle counter overflows at 64 bits */
#define PMU_EVENT_INST_RETIRED 0x08
#define PMCNTEN_CYCLES (1u << 31)
#define PMCNTEN_EV0    (1u << 0)

/* At EL1 (EL2 gave EL1 every counter: MDCR_EL2.HPMN, boot.S).  Count at
 * EL1 and EL0, not EL2 (PMCCFILTR/PMEVTYPER filter bits all 0); no
 * PMUSERENR: nothing below EL1 reads them. */
static int pmu_present = -1;

void aarch64_pmu_enable(void)
{
	unsigned pmuver = (unsigned)(sysreg_read(id_aa64dfr0_el1) >> 8) & 0xf;
	pmu_present = pmuver != 0 && pmuver != 0xf;   /* 0xf: IMPLEMENTATION DEFINED */
	if (!pmu_present)
		return;
	sysreg_write(pmccfiltr_el0, 0);
	sysreg_write(pmselr_el0, 0);
	sysreg_write(pmxevtyper_el0, PMU_EVENT_INST_RETIRED);
	sysreg_write(pmcr_el0, PMCR_E | PMCR_P | PMCR_C | PMCR_LC);
	sysreg_write(pmcntenset_el0, PMCNTEN_CYCLES | PMCNTEN_EV0);
	isb();
}

/* Without a PMU (never on QEMU's cortex-a57 or max) the generic counter,
 * scaled: 1 per 16 instructions under icount. */
uint64_t arch_insns(void)
{
	isb();   /* the read is not hoisted above earlier instructions */
	if (__builtin_expect(pmu_present <= 0, 0))
		return sysreg_read(cntvct_el0) * 16;
	return sysreg_read(pmccntr_el0);
}

uint64_t aarch64_inst_retired(void)
{
	isb();
	return pmu_present > 0 ? sysreg_read(pmevcntr0_el0) : 0;
}

void arch_halt(void)
{
	__asm__ volatile("msr daifset, #0xf" ::: "memory");
	for (;;)
		__asm__ volatile("wfi");
}

/* PSCI through the conduit the DTB's /psci node names: "hvc" when QEMU
 * boots us at EL1, "smc" with virtualization=on (EL2 is ours then).
 * SMCCC 1.0 lets the firmware clobber x0-x17. */
#define PSCI_CLOBBERS "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", \
	"x13", "x14", "x15", "x16", "x17", "memory"
int64_t aarch64_psci(uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t x0 __asm__("x0") = fn;
	register uint64_t x1 __asm__("x1") = a1;
	register uint64_t x2 __asm__("x2") = a2;
	register uint64_t x3 __asm__("x3") = a3;
	if (aarch64_psci_conduit == 'h')
		__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : PSCI_CLOBBERS);
	else if (aarch64_psci_conduit == 's')
		__asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : PSCI_CLOBBERS);
	else
		return PSCI_NOT_SUPPORTED;
	return (int64_t)x0;
}

void aarch64_psci_system_off(void)
{
	aarch64_psci(PSCI_SYSTEM_OFF, 0, 0, 0);
	arch_halt();
}

void arch_exit(int status)
{
	static unsigned char attempts[SMP_MAX_CPUS];   /* per CPU: any CPU may exit */
	if (attempts[arch_cpu_id()]++ == 0) {
		/* (if -semihosting is missing this traps; traps.c powers off) */
		uint64_t block[2] = { ADP_STOPPED_APPLICATION_EXIT, (uint64_t)(uint32_t)status };
		aarch64_semihost(SEMIHOST_SYS_EXIT, (uint64_t)(uintptr_t)block);
	}
	aarch64_psci_system_off();
}

uintptr_t arch_unmapped_address(void)
{
	return 0x00dead00;   /* flash window 0..0x08000000: never mapped */
}

static const char *part_name(uint64_t midr)
{
	unsigned implementer = (midr >> 24) & 0xff, part = (midr >> 4) & 0xfff;
	if (implementer == 0)
		return "max";   /* QEMU's -cpu max reports implementer 0 */
	if (implementer != 0x41)
		return NULL;
	switch (part) {
	case 0xd03: return "cortex-a53";
	case 0xd04: return "cortex-a35";
	case 0xd05: return "cortex-a55";
	case 0xd07: return "cortex-a57";
	case 0xd08: return "cortex-a72";
	case 0xd09: return "cortex-a73";
	case 0xd0b: return "cortex-a76";
	case 0xd0c: return "neoverse-n1";
	case 0xd40: return "neoverse-v1";
	case 0xd49: return "neoverse-n2";
	default:    return NULL;
	}
}

const char *arch_cpu_name(void)
{
	static char name[64];
	if (!name[0]) {
		uint64_t midr = sysreg_read(midr_el1);
		const char *part = part_name(midr);
		const char *el = aarch64_boot_el == 2 ? "EL2->EL1" : "EL1";
		if (part)
			snprintf(name, sizeof name, "%s %s", part, el);
		else
			snprintf(name, sizeof name, "midr 0x%08llx %s", (unsigned long long)midr, el);
	}
	return name;
}

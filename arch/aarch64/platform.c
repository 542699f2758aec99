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

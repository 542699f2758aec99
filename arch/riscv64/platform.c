/*
 * arch/riscv64/platform.c - kernel/include/kernel/arch.h for QEMU -M virt.
 *
 *   arch_putc      ns16550a UART at 0x10000000: wait for LSR.THRE (bit 5),
 *                  then write THR.  QEMU needs no UART setup.
 *   arch_exit      the sifive,test1 device at 0x100000: 0x5555 ends QEMU
 *                  with status 0, (status << 16) | 0x3333 with `status`.
 *                  Fallback: SBI system reset (SRST), then halt.
 *   arch_cycles    the cycle CSR (rdcycle; OpenSBI lets S-mode read it):
 *                  under QEMU -icount it counts instructions, one per
 *                  instruction; without -icount it is the host's cycle
 *                  counter.  Timeouts use the time CSR (riscv_timebase_hz).
 *   arch_insns     the instret CSR (rdinstret): instructions retired
 *   arch_halt      interrupts off, wfi forever
 *   arch_cpu_name  the boot hart's riscv,isa and the SBI implementation
 *   arch_unmapped_address  between the MMIO pages the kernel maps (mmu.c)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <kernel/arch.h>
#include "riscv64.h"

#define UART_THR   0
#define UART_LSR   5
#define LSR_THRE   (1u << 5)

#define TEST_PASS  0x5555u
#define TEST_FAIL  0x3333u

void arch_putc(char c)
{
	volatile uint8_t *uart = (volatile uint8_t *)VIRT_UART_BASE;
	while (!(uart[UART_LSR] & LSR_THRE))
		;
	uart[UART_THR] = (uint8_t)c;
}

uint64_t arch_cycles(void)
{
	uint64_t c;
	__asm__ volatile("rdcycle %0" : "=r"(c) : : "memory");
	return c;
}

/* instret: instructions retired on this hart (OpenSBI sets mcounteren.IR
 * so S-mode may read it).  Exact per instruction; bench-wcet's counter
 * test checks the slope. */
uint64_t arch_insns(void)
{
	uint64_t c;
	__asm__ volatile("rdinstret %0" : "=r"(c) : : "memory");
	return c;
}

void arch_halt(void)
{
	__asm__ volatile("csrci sstatus, %0" : : "i"(SSTATUS_SIE) : "memory");
	for (;;)
		__asm__ volatile("wfi");
}

struct sbiret sbi_call4(long ext, long fn, long arg0, long arg1, long arg2, long arg3)
{
	register long a0 __asm__("a0") = arg0;
	register long a1 __asm__("a1") = arg1;
	register long a2 __asm__("a2") = arg2;
	register long a3 __asm__("a3") = arg3;
	register long a6 __asm__("a6") = fn;
	register long a7 __asm__("a7") = ext;
	__asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a2), "r"(a3), "r"(a6), "r"(a7)
			 : "memory");
	return (struct sbiret){ a0, a1 };
}

struct sbiret sbi_call(long ext, long fn, long arg0, long arg1, long arg2)
{
	return sbi_call4(ext, fn, arg0, arg1, arg2, 0);
}

void arch_exit(int status)
{
	volatile uint32_t *test = (volatile uint32_t *)VIRT_TEST_BASE;
	*test = status == 0 ? TEST_PASS : ((uint32_t)status & 0xffff) << 16 | TEST_FAIL;
	/* no test device (another board): SBI SRST, shutdown, reason 0 / 1 */
	sbi_call(SBI_EXT_SRST, 0, 0, status == 0 ? 0 : 1, 0);
	arch_halt();
}

uintptr_t arch_unmapped_address(void)
{
	return 0x00dead00;   /* below the test device page: never mapped */
}

const char *arch_cpu_name(void)
{
	static char name[96];
	if (!name[0]) {
		long impl = sbi_call(SBI_EXT_BASE, SBI_BASE_IMPL_ID, 0, 0, 0).value;
		long ver = sbi_call(SBI_EXT_BASE, SBI_BASE_IMPL_VER, 0, 0, 0).value;
		const char *isa = riscv_isa ? riscv_isa : "rv64?";
		size_t n = strcspn(isa, "_");   /* "rv64imafdch", the base and letters */
		snprintf(name, sizeof name, "%.*s S-mode, hart %llu, %s %ld.%ld", (int)n, isa,
			 (unsigned long long)riscv_boot_hartid, impl == 1 ? "OpenSBI" : "SBI",
			 ver >> 16, ver & 0xffff);
	}
	return name;
}

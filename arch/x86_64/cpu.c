/*
 * arch/x86_64/cpu.c - per-CPU setup after boot.S: TSS (for the double-fault
 * stack), no-execute pages, and the CPU name for the banner.
 *
 * GDT (boot.S, x86_gdt):
 *
 *   0x00  null
 *   0x08  kernel code, 64-bit          CS
 *   0x10  kernel data                  DS ES SS FS GS
 *   0x18  TSS descriptor (16 bytes)    TR
 *
 * In long mode the TSS holds no task state, only stack pointers: rsp0..2
 * (for privilege changes; unused, we stay in ring 0) and IST1..7, stacks
 * the CPU switches to unconditionally for IDT entries that name them.  #DF
 * uses IST1, so a kernel stack overflow (#PF while pushing onto the guard
 * page -> #PF cannot push its frame either -> #DF) still gets a good stack.
 */
#include <stdint.h>
#include <kernel/arch.h>
#include <string.h>
#include "x86.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

extern uint64_t x86_gdt[5];

static struct tss64 tss;
static uint8_t df_stack[X86_DF_STACK_SIZE] __attribute__((aligned(16)));
static int nx_supported;
static char cpu_name[49];

static void tss_init(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.ist[0] = (uint64_t)(uintptr_t)(df_stack + sizeof(df_stack));   /* IST1 */
	tss.iomap_base = sizeof(tss);            /* no I/O permission bitmap */

	/* limit[15:0] base[23:0] type=9 (64-bit TSS, available) P=1
	 * limit[19:16] base[31:24], then base[63:32]. */
	x86_gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		     (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
		     (((base >> 24) & 0xff) << 56);
	x86_gdt[4] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(X86_SEL_TSS));
}

/* EFER.NXE makes bit 63 of page-table entries mean "no execute". */
static void nx_init(void)
{
	uint32_t r[4];

	cpuid(0x80000000, r);
	if (r[0] < 0x80000001)
		return;
	cpuid(0x80000001, r);
	if (!(r[3] & (1u << 20)))
		return;
	wrmsr(X86_MSR_EFER, rdmsr(X86_MSR_EFER) | X86_EFER_NXE);
	nx_supported = 1;
}

int x86_has_nx(void)
{
	return nx_supported;
}

void x86_cpu_init(void)
{
	tss_init();
	nx_init();
}

/* The CPUID brand string ("QEMU Virtual CPU version 2.5+"), or the
 * vendor string ("GenuineIntel") when the CPU has no brand string. */
const char *arch_cpu_name(void)
{
	uint32_t r[4];
	const char *p;

	cpuid(0x80000000, r);
	if (r[0] >= 0x80000004) {
		for (uint32_t i = 0; i < 3; i++) {
			cpuid(0x80000002 + i, r);
			memcpy(cpu_name + 16 * i, r, 16);
		}
	} else {
		cpuid(0, r);                  /* vendor: EBX, EDX, ECX */
		memcpy(cpu_name + 0, &r[1], 4);
		memcpy(cpu_name + 4, &r[3], 4);
		memcpy(cpu_name + 8, &r[2], 4);
	}
	cpu_name[48] = '\0';
	for (p = cpu_name; *p == ' '; p++)
		;
	return p;
}

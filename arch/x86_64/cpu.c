/*
 * arch/x86_64/cpu.c - per-CPU setup: a GDT and TSS for each CPU (for its
 * double-fault stack), no-execute pages, and the CPU name for the banner.
 *
 * GDT (the template is boot.S's x86_gdt; each CPU gets a copy in its
 * struct x86_percpu, because the CPU marks the TSS descriptor busy when
 * it loads TR, so a TSS descriptor cannot be shared):
 *
 *   0x00  null
 *   0x08  kernel code, 64-bit          CS
 *   0x10  kernel data                  DS ES SS FS GS
 *   0x18  TSS descriptor (16 bytes)    TR -> this CPU's x86_percpu.tss
 *
 * In long mode the TSS holds no task state, only stack pointers: rsp0..2
 * (for privilege changes; unused, we stay in ring 0) and IST1..7, stacks
 * the CPU switches to unconditionally for IDT entries that name them.  #DF
 * uses IST1, so a kernel stack overflow (#PF while pushing onto the guard
 * page -> #PF cannot push its frame either -> #DF) still gets a good stack.
 * Each CPU has its own IST1 stack: two CPUs overflowing at once must not
 * share one.
 *
 * Segment registers are not reloaded after lgdt: the code and data
 * descriptors are identical in every copy, and reloading %gs would reset
 * the GS base that points at struct x86_percpu.
 */
#include <stdint.h>
#include <kernel/arch.h>
#include <string.h>
#include "x86.h"

_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");
_Static_assert(__builtin_offsetof(struct x86_percpu, cpu) == 0, "arch_cpu_id reads %gs:0");

extern const uint64_t x86_gdt[3];   /* boot.S: null, code, data */

struct x86_percpu x86_percpu[SMP_MAX_CPUS];
static uint8_t boot_df_stack[X86_DF_STACK_SIZE] __attribute__((aligned(16)));
static int nx_supported;
static char cpu_name[49];

/* The initial APIC id: CPUID leaf 1, EBX[31:24]. */
static uint32_t own_apic_id(void)
{
	uint32_t r[4];

	cpuid(1, r);
	return r[1] >> 24;
}

/* Fill this CPU's GDT (template + TSS descriptor), load GDTR and TR. */
static void gdt_tss_init(struct x86_percpu *pc)
{
	uint64_t base = (uint64_t)(uintptr_t)&pc->tss;
	uint64_t limit = sizeof(pc->tss) - 1;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = { sizeof(pc->gdt) - 1, (uint64_t)(uintptr_t)pc->gdt };

	pc->tss.ist[0] = pc->df_stack_top;          /* IST1 */
	pc->tss.iomap_base = sizeof(pc->tss);       /* no I/O permission bitmap */
	memcpy(pc->gdt, x86_gdt, sizeof(x86_gdt));
	/* limit[15:0] base[23:0] type=9 (64-bit TSS, available) P=1
	 * limit[19:16] base[31:24], then base[63:32]. */
	pc->gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		     (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
		     (((base >> 24) & 0xff) << 56);
	pc->gdt[4] = base >> 32;
	__asm__ volatile("lgdt %0" : : "m"(gdtr) : "memory");
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

void x86_cpu_init_boot(void)
{
	struct x86_percpu *pc = &x86_percpu[0];

	pc->apic_id = own_apic_id();
	pc->df_stack_top = (uint64_t)(uintptr_t)(boot_df_stack + sizeof(boot_df_stack));
	gdt_tss_init(pc);
	nx_init();
}

/* pc->cpu and df_stack_top were filled in by smp.c; EFER.NXE is already
 * set (the trampoline copies the boot CPU's EFER). */
void x86_cpu_init_ap(struct x86_percpu *pc)
{
	pc->apic_id = own_apic_id();
	gdt_tss_init(pc);
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

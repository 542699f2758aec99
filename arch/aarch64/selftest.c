/*
 * arch/aarch64/selftest.c - in-kernel tests of the aarch64 boot stub.
 *
 * Suite "aarch64" (part of test=all) checks what boot.S, setup.c and mmu.c
 * promise, asking the hardware itself through the AT (address translate)
 * instruction - "at s1e1r, va" puts the translation of va, or a fault, in
 * PAR_EL1 - so the live tables are tested, not mmu.c's idea of them:
 *
 *   - running at EL1, MMU + caches on, VBAR_EL1 = our vectors, FP usable
 *   - page 0 and arch_unmapped_address() fault
 *   - every RAM region: first and last page identity-mapped Normal
 *     write-back (MAIR 0xff), writable, not executable; holes unmapped
 *   - the PL011 is Device-nGnRE; the kernel image is W^X; guard pages fault
 *   - boot_info reserves the kernel image, the tables and the DTB
 *   - every CPU (smp_run): EL1, the boot CPU's MMU registers, VBAR, FP on,
 *     interrupts masked, TPIDR_EL1 = its number, its own exception stack
 *     (SP_EL0) with guard pages unmapped
 *
 * The selftest-aarch64-* suites fault on purpose (one at a time, e.g.
 * test=selftest-aarch64-undef); each must end with an exception report and
 * exit status EXIT_FAULT (the shared selftest-stack suite overflows the boot
 * stack into its guard page: a data abort reported from the exception stack):
 *
 *   selftest-aarch64-undef   udf #0                 -> EC 0x00 unknown
 *   selftest-aarch64-exec    jump into the DTB      -> instruction abort
 *                                                      (permission: RAM is XN)
 * (the unmapped-read case is the shared selftest-fault suite; the shared
 * selftest-ap-fault and selftest-ap-stack do both on a secondary CPU: a
 * data abort "on CPU n", and one from its exception stack naming "CPU n's
 * stack guard page".)
 */
#include <stdint.h>
#include <fdt.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include "aarch64.h"

#define VA(p) ((uint64_t)(uintptr_t)(p))
#define PAR_F        1ul                         /* translation failed */
#define PAR_PA(par)  ((par) & PTE_ADDR)
#define PAR_ATTR(par) ((par) >> 56)              /* MAIR encoding of the result */

/* Stage-1 EL1 translation of va for a read (w = 0) or a write (w = 1). */
static uint64_t at_translate(uint64_t va, int w)
{
	if (w)
		__asm__ volatile("at s1e1w, %0" : : "r"(va) : "memory");
	else
		__asm__ volatile("at s1e1r, %0" : : "r"(va) : "memory");
	isb();
	return sysreg_read(par_el1);
}

static int unmapped(uint64_t va) { return at_translate(va, 0) & PAR_F; }

KTEST(aarch64, cpu_state)
{
	uint64_t sctlr = sysreg_read(sctlr_el1);
	KT_CHECK(t, (sysreg_read(CurrentEL) >> 2) == 1, "not at EL1");
	KT_CHECK(t, (sctlr & (SCTLR_M | SCTLR_C | SCTLR_I)) == (SCTLR_M | SCTLR_C | SCTLR_I),
		 "SCTLR_EL1 0x%lx: MMU/caches not all on", (unsigned long)sctlr);
	KT_CHECK(t, !(sctlr & (1ul << 25)), "big-endian data");
	KT_CHECK(t, sysreg_read(vbar_el1) == VA(aarch64_vectors), "VBAR_EL1 0x%lx",
		 (unsigned long)sysreg_read(vbar_el1));
	KT_CHECK(t, (sysreg_read(cpacr_el1) & CPACR_FPEN) == CPACR_FPEN, "FP/SIMD trapped");
	KT_CHECK(t, (sysreg_read(daif) & 0x3c0) == 0x3c0, "interrupts unmasked");
	KT_CHECK(t, (sysreg_read(tcr_el1) & 0x3f) == 16, "T0SZ not 16");
}

KTEST(aarch64, fp_simd)
{
	volatile double a = 1.5, b = 2.25;
	volatile float f = 3.0f;
	KT_CHECK(t, a * b == 3.375, "1.5 * 2.25 != 3.375");
	KT_CHECK(t, (int)(f / 2.0f * 4.0f) == 6, "float arithmetic");
}

KTEST(aarch64, unmapped_addresses)
{
	KT_CHECK(t, unmapped(0), "page 0 is mapped");
	KT_CHECK(t, unmapped(arch_unmapped_address()), "arch_unmapped_address() 0x%lx is mapped",
		 (unsigned long)arch_unmapped_address());
	KT_CHECK(t, mmu_walk(arch_unmapped_address(), 0) == 0, "mmu_walk disagrees");
	KT_CHECK(t, unmapped(VA(__boot_stack_guard)), "boot stack guard page mapped");
	KT_CHECK(t, unmapped(VA(__exc_stack_guard)), "exception stack guard page mapped");
	KT_CHECK(t, unmapped(1ul << 47), "VA 2^47 mapped");
}

static void check_ram_page(struct ktest_ctx *t, uint64_t pa)
{
	if (pa >= VA(__text_start) && pa < VA(__rodata_end))
		return;   /* read-only kernel text/rodata: kernel_image_w_xor_x */
	uint64_t par = at_translate(pa, 1);
	KT_REQUIRE(t, !(par & PAR_F), "RAM at 0x%lx not writable-mapped (PAR 0x%lx)",
		   (unsigned long)pa, (unsigned long)par);
	KT_CHECK(t, PAR_PA(par) == (pa & PTE_ADDR), "0x%lx maps to 0x%lx", (unsigned long)pa,
		 (unsigned long)PAR_PA(par));
	KT_CHECK(t, PAR_ATTR(par) == 0xff, "RAM at 0x%lx has memory attributes 0x%lx",
		 (unsigned long)pa, (unsigned long)PAR_ATTR(par));
	uint64_t e = mmu_walk(pa, 0);
	int in_image = pa >= VA(__kernel_start) && pa < VA(__kernel_end);
	KT_CHECK(t, in_image || (e & PTE_PXN), "RAM at 0x%lx executable", (unsigned long)pa);
}

KTEST(aarch64, ram_mapped_normal)
{
	const struct boot_info *bi = t->bi;
	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t b = (bi->ram[i].base + 0xfff) & ~0xffful;
		uint64_t e = (bi->ram[i].base + bi->ram[i].size) & ~0xffful;
		check_ram_page(t, b);
		check_ram_page(t, e - 4096);
		check_ram_page(t, b + (e - b) / 2);
		KT_CHECK(t, unmapped(e), "0x%lx past RAM region %u is mapped", (unsigned long)e, i);
	}
}

KTEST(aarch64, mmio_device)
{
	uint64_t par = at_translate(VIRT_UART_BASE, 1);
	KT_REQUIRE(t, !(par & PAR_F), "PL011 not mapped");
	KT_CHECK(t, PAR_ATTR(par) == 0x04, "PL011 attributes 0x%lx, want Device-nGnRE (0x04)",
		 (unsigned long)PAR_ATTR(par));
	KT_CHECK(t, mmu_walk(VIRT_UART_BASE, 0) & PTE_PXN, "MMIO executable");
	KT_CHECK(t, unmapped(VIRT_MMIO_BASE - 4096), "flash window mapped");
}

KTEST(aarch64, kernel_image_w_xor_x)
{
	uint64_t text = mmu_walk(VA(__text_start), 0);
	uint64_t ro = mmu_walk(VA(__rodata_start), 0);
	uint64_t data = mmu_walk(VA(__data_start), 0);
	KT_CHECK(t, text && (text & PTE_RO) && !(text & PTE_PXN), "text entry 0x%lx",
		 (unsigned long)text);
	KT_CHECK(t, ro && (ro & PTE_RO) && (ro & PTE_PXN), "rodata entry 0x%lx", (unsigned long)ro);
	KT_CHECK(t, data && !(data & PTE_RO) && (data & PTE_PXN), "data entry 0x%lx",
		 (unsigned long)data);
	KT_CHECK(t, at_translate(VA(__text_start), 1) & PAR_F, "text writable (AT s1e1w)");
	KT_CHECK(t, !(at_translate(VA(__text_start), 0) & PAR_F), "text unreadable");
}

static int reserved_covers(const struct boot_info *bi, uint64_t base, uint64_t size)
{
	for (unsigned i = 0; i < bi->nreserved; i++)
		if (bi->reserved[i].base <= base &&
		    base + size <= bi->reserved[i].base + bi->reserved[i].size)
			return 1;
	return 0;
}

KTEST(aarch64, reservations)
{
	const struct boot_info *bi = t->bi;
	KT_CHECK(t, reserved_covers(bi, VA(__kernel_start), VA(__kernel_end) - VA(__kernel_start)),
		 "kernel image not reserved");
	KT_CHECK(t, reserved_covers(bi, mmu_tables_base(), mmu_tables_size()), "tables not reserved");
	uint32_t dsize = fdt_peek_totalsize(aarch64_dtb, 8);
	KT_CHECK(t, dsize && reserved_covers(bi, VA(aarch64_dtb), dsize), "DTB not reserved");
	KT_CHECK(t, bi->direct_map_offset == 0, "direct map offset");
	KT_CHECK(t, bi->arch && bi->firmware, "arch/firmware names");
}

KTEST(aarch64, boot_layout)
{
	const struct boot_info *bi = t->bi;
	kt_log("%s, booted at EL%u, PSCI conduit %s, %d CPU(s) in the DTB\n", arch_cpu_name(),
	       aarch64_boot_el,
	       aarch64_psci_conduit == 'h' ? "hvc" : aarch64_psci_conduit == 's' ? "smc" : "none",
	       aarch64_ncpus);
	kt_log("DTB at 0x%lx (%u bytes); kernel image 0x%lx-0x%lx\n", (unsigned long)VA(aarch64_dtb),
	       fdt_peek_totalsize(aarch64_dtb, 8), (unsigned long)VA(__kernel_start),
	       (unsigned long)VA(__kernel_end));
	kt_log("translation tables: %u of %lu pages used at 0x%lx\n", mmu_tables_used(),
	       (unsigned long)(mmu_tables_size() / 4096), (unsigned long)mmu_tables_base());
	if (bi->nram) {
		uint64_t top = bi->ram[bi->nram - 1].base + bi->ram[bi->nram - 1].size - 4096;
		int level = -1;
		mmu_walk(top, &level);
		kt_log("highest RAM page 0x%lx mapped by a level-%d %s\n", (unsigned long)top, level,
		       level == 1 ? "1 GiB block" : level == 2 ? "2 MiB block" : "4 KiB page");
	}
	kt_log("CNTVCT at first C instruction %lu (CNTFRQ %lu Hz)\n",
	       (unsigned long)bi->entry_cycles, (unsigned long)sysreg_read(cntfrq_el0));
	KT_CHECK(t, aarch64_boot_el == 1 || aarch64_boot_el == 2, "boot EL %u", aarch64_boot_el);
	KT_CHECK(t, aarch64_ncpus >= 1, "CPU count");
	KT_CHECK(t, bi->entry_cycles && bi->entry_cycles < arch_cycles(), "entry_cycles");
}

struct cpu_regs {
	uint64_t el, sctlr, vbar, cpacr, daif, mair, tcr, ttbr0, tpidr, sp_el0;
	double fp;
};

static void read_cpu_regs(unsigned cpu, void *arg)
{
	struct cpu_regs *r = (struct cpu_regs *)arg + cpu;
	volatile double x = 1.5;
	r->el = sysreg_read(CurrentEL) >> 2;
	r->sctlr = sysreg_read(sctlr_el1);
	r->vbar = sysreg_read(vbar_el1);
	r->cpacr = sysreg_read(cpacr_el1);
	r->daif = sysreg_read(daif);
	r->mair = sysreg_read(mair_el1);
	r->tcr = sysreg_read(tcr_el1);
	r->ttbr0 = sysreg_read(ttbr0_el1);
	r->tpidr = sysreg_read(tpidr_el1);
	r->sp_el0 = sysreg_read(sp_el0);
	r->fp = x * (double)(cpu + 1);
}

/* Exception stack top (SP_EL0) -> its guard page, and for a secondary the
 * kernel stack's guard page just above it (smp.c's layout). */
static void check_stacks(struct ktest_ctx *t, unsigned cpu, uint64_t exc_top)
{
	KT_CHECK(t, unmapped(exc_top - EXC_STACK_SIZE - 4096),
		 "cpu %u: exception stack guard below 0x%lx mapped", cpu, (unsigned long)exc_top);
	if (cpu == 0)
		return;
	KT_CHECK(t, unmapped(exc_top) && aarch64_stack_guard_cpu(exc_top) == (int)cpu,
		 "cpu %u: kernel stack guard at 0x%lx", cpu, (unsigned long)exc_top);
}

KTEST(aarch64, every_cpu_state)
{
	static struct cpu_regs r[SMP_MAX_CPUS];
	smp_run(read_cpu_regs, r);
	KT_CHECK(t, r[0].sp_el0 == VA(__exc_stack_top), "boot CPU SP_EL0 0x%lx",
		 (unsigned long)r[0].sp_el0);
	for (unsigned c = 0; c < smp_ncpus(); c++) {
		KT_CHECK(t, r[c].el == 1, "cpu %u at EL%lu", c, (unsigned long)r[c].el);
		KT_CHECK(t, r[c].sctlr == r[0].sctlr && r[c].mair == r[0].mair &&
			 r[c].tcr == r[0].tcr && r[c].ttbr0 == r[0].ttbr0,
			 "cpu %u: SCTLR/MAIR/TCR/TTBR0 differ from the boot CPU's", c);
		KT_CHECK(t, r[c].vbar == VA(aarch64_vectors), "cpu %u: VBAR 0x%lx", c,
			 (unsigned long)r[c].vbar);
		KT_CHECK(t, (r[c].cpacr & CPACR_FPEN) == CPACR_FPEN && r[c].fp == 1.5 * (c + 1),
			 "cpu %u: FP/SIMD", c);
		KT_CHECK(t, (r[c].daif & 0x3c0) == 0x3c0, "cpu %u: interrupts unmasked", c);
		KT_CHECK(t, r[c].tpidr == c, "cpu %u: TPIDR_EL1 %lu", c, (unsigned long)r[c].tpidr);
		for (unsigned d = 0; d < c; d++)
			KT_CHECK(t, r[c].sp_el0 != r[d].sp_el0, "cpus %u and %u share an exception stack",
				 d, c);
		check_stacks(t, c, r[c].sp_el0);
	}
}

/* ------------------------------------------------ deliberate CPU faults */

KTEST_NAMED("selftest-aarch64-undef", undefined_instruction, selftest_aarch64_undef);
static void selftest_aarch64_undef(struct ktest_ctx *t)
{
	__asm__ volatile("udf #0");
	KT_CHECK(t, 0, "udf did not fault");
}


KTEST_NAMED("selftest-aarch64-exec", execute_ram, selftest_aarch64_exec);
static void selftest_aarch64_exec(struct ktest_ctx *t)
{
	void (*fn)(void) = (void (*)(void))(uintptr_t)aarch64_dtb;   /* RAM: never executable */
	fn();
	KT_CHECK(t, 0, "executing RAM did not fault");
}

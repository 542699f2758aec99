/*
 * arch/riscv64/selftest.c - in-kernel tests of the riscv64 boot stub.
 *
 * Suite "riscv64" (part of test=all) checks what boot.S, setup.c and
 * mmu.c promise.  RISC-V has no address-translate instruction, so the live
 * tables are walked in software from the root satp names (not from mmu.c's
 * bookkeeping), and the deliberate faults below prove the permissions
 * really hold:
 *
 *   - S-mode with Sv39 on, stvec = our trap entry, FP usable, interrupts
 *     off (sstatus.SIE and sie), tp = 0, sscratch = the exception stack
 *   - page 0, arch_unmapped_address(), the guard pages and OpenSBI's
 *     PMP-protected range are unmapped; MMIO outside the two pages we use is too
 *   - every RAM region: first, middle and last page identity-mapped
 *     read/write, not executable, A and D preset; the image is W^X
 *   - boot_info reserves the image, the tables and the DTB; the firmware
 *     range is not RAM
 *   - every CPU (smp_run): satp, stvec and sstatus as the boot hart's, tp =
 *     its number, its own exception stack (sscratch) with guard pages
 *     unmapped, distinct hart ids
 *
 * The selftest-riscv64-* suites fault on purpose (one at a time); each
 * must end with an exception report and exit status EXIT_FAULT:
 *
 *   selftest-riscv64-illegal     unimp                 -> illegal instruction
 *   selftest-riscv64-exec        jump into the DTB     -> instruction page fault
 *                                                         (RAM is not executable)
 *   selftest-riscv64-write-text  store to .text        -> store/AMO page fault
 *                                                         (text is read-only)
 * (selftest-fault, -stack, -ap-fault and -ap-stack are shared suites.)
 */
#include <stdint.h>
#include <string.h>
#include <fdt.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include "riscv64.h"

#define VA(p) ((uint64_t)(uintptr_t)(p))

/* Walk the tables satp points at (software Sv39 walk): the leaf PTE for
 * va, or 0. */
static uint64_t live_pte(uint64_t satp, uint64_t va, int *level)
{
	if ((satp >> 60) != 8 || va >= (1ul << 38))
		return 0;
	const uint64_t *t = (const uint64_t *)(uintptr_t)((satp & SATP_PPN_MASK) << 12);
	for (int l = 0; l <= 2; l++) {
		uint64_t e = t[(va >> (30 - 9 * l)) & 511];
		if (!(e & PTE_V))
			return 0;
		if (e & PTE_LEAF) {
			if (level)
				*level = l;
			return e;
		}
		t = (const uint64_t *)(uintptr_t)pte_pa(e);
	}
	return 0;
}

static uint64_t pte(uint64_t va) { return live_pte(csr_read(satp), va, 0); }
static int unmapped(uint64_t va) { return pte(va) == 0; }

/* the physical address a leaf at `level` maps va to */
static uint64_t leaf_pa(uint64_t e, int level, uint64_t va)
{
	uint64_t span = 1ul << (30 - 9 * level);
	return pte_pa(e) + (va & (span - 1));
}

KTEST(riscv64, cpu_state)
{
	uint64_t satp = csr_read(satp), sstatus = csr_read(sstatus);
	KT_CHECK(t, (satp >> 60) == 8, "satp 0x%lx: not Sv39", (unsigned long)satp);
	KT_CHECK(t, satp == mmu_satp(), "satp 0x%lx, mmu.c's root gives 0x%lx", (unsigned long)satp,
		 (unsigned long)mmu_satp());
	KT_CHECK(t, csr_read(stvec) == VA(riscv_trap_entry), "stvec 0x%lx",
		 (unsigned long)csr_read(stvec));
	KT_CHECK(t, (sstatus & SSTATUS_FS) != 0, "sstatus.FS off: FP traps");
	KT_CHECK(t, !(sstatus & SSTATUS_SIE) && csr_read(sie) == 0, "interrupts enabled");
	KT_CHECK(t, arch_cpu_id() == 0, "tp %u on the boot CPU", arch_cpu_id());
	KT_CHECK(t, csr_read(sscratch) == VA(__exc_stack_top), "sscratch 0x%lx, not the exception "
		 "stack top", (unsigned long)csr_read(sscratch));
}

KTEST(riscv64, fp_and_zbb)
{
	volatile double a = 1.5, b = 2.25;
	volatile float f = 3.0f;
	volatile unsigned long x = 0x00f0;
	KT_CHECK(t, a * b == 3.375, "1.5 * 2.25 != 3.375");
	KT_CHECK(t, (int)(f / 2.0f * 4.0f) == 6, "float arithmetic");
	KT_CHECK(t, __builtin_clzl(x) == 56 && __builtin_ctzl(x) == 4, "clz/ctz");
	KT_CHECK(t, riscv_isa && strstr(riscv_isa, "_zbb"), "riscv,isa \"%s\" has no zbb",
		 riscv_isa ? riscv_isa : "(none)");
}

KTEST(riscv64, unmapped_addresses)
{
	KT_CHECK(t, unmapped(0), "page 0 is mapped");
	KT_CHECK(t, unmapped(arch_unmapped_address()), "arch_unmapped_address() 0x%lx is mapped",
		 (unsigned long)arch_unmapped_address());
	KT_CHECK(t, mmu_walk(arch_unmapped_address(), 0) == 0, "mmu_walk disagrees");
	KT_CHECK(t, unmapped(VA(__boot_stack_guard)), "boot stack guard page mapped");
	KT_CHECK(t, unmapped(VA(__exc_stack_guard)), "exception stack guard page mapped");
	KT_CHECK(t, unmapped(VIRT_UART_BASE + 0x1000), "virtio-mmio (beyond the UART page) mapped");
	KT_CHECK(t, unmapped(VIRT_RAM_BASE), "OpenSBI's range at 0x80000000 is mapped");
}

static void check_ram_page(struct ktest_ctx *t, uint64_t pa)
{
	if (pa >= VA(__text_start) && pa < VA(__rodata_end))
		return;   /* read-only kernel text/rodata: kernel_image_w_xor_x */
	int level = -1;
	uint64_t e = live_pte(csr_read(satp), pa, &level);
	uint64_t want = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;
	KT_REQUIRE(t, e, "RAM at 0x%lx not mapped", (unsigned long)pa);
	KT_CHECK(t, (e & want) == want, "RAM at 0x%lx: PTE 0x%lx not V R W A D", (unsigned long)pa,
		 (unsigned long)e);
	KT_CHECK(t, leaf_pa(e, level, pa) == pa, "0x%lx maps to 0x%lx", (unsigned long)pa,
		 (unsigned long)leaf_pa(e, level, pa));
	KT_CHECK(t, !(e & (PTE_X | PTE_U)), "RAM at 0x%lx executable or user (PTE 0x%lx)",
		 (unsigned long)pa, (unsigned long)e);
}

KTEST(riscv64, ram_mapped)
{
	const struct boot_info *bi = t->bi;
	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t b = (bi->ram[i].base + 0xfff) & ~0xffful;
		uint64_t e = (bi->ram[i].base + bi->ram[i].size) & ~0xffful;
		check_ram_page(t, b);
		check_ram_page(t, e - 4096);
		check_ram_page(t, b + ((e - b) / 2 & ~0xffful));
		KT_CHECK(t, unmapped(e), "0x%lx past RAM region %u is mapped", (unsigned long)e, i);
	}
}

KTEST(riscv64, mmio_pages)
{
	uint64_t mmio[2] = { VIRT_UART_BASE, VIRT_TEST_BASE };
	for (int i = 0; i < 2; i++) {
		uint64_t e = pte(mmio[i]);
		KT_CHECK(t, (e & (PTE_V | PTE_R | PTE_W)) == (PTE_V | PTE_R | PTE_W),
			 "MMIO 0x%lx: PTE 0x%lx", (unsigned long)mmio[i], (unsigned long)e);
		KT_CHECK(t, !(e & PTE_X), "MMIO 0x%lx executable", (unsigned long)mmio[i]);
	}
}

KTEST(riscv64, kernel_image_w_xor_x)
{
	uint64_t text = pte(VA(__text_start)), ro = pte(VA(__rodata_start));
	uint64_t data = pte(VA(__data_start)), bss = pte(VA(__bss_end) - 4096);
	KT_CHECK(t, (text & (PTE_V | PTE_R | PTE_X)) == (PTE_V | PTE_R | PTE_X) && !(text & PTE_W),
		 "text PTE 0x%lx", (unsigned long)text);
	KT_CHECK(t, (ro & (PTE_V | PTE_R)) == (PTE_V | PTE_R) && !(ro & (PTE_W | PTE_X)),
		 "rodata PTE 0x%lx", (unsigned long)ro);
	KT_CHECK(t, (data & (PTE_V | PTE_W)) == (PTE_V | PTE_W) && !(data & PTE_X),
		 "data PTE 0x%lx", (unsigned long)data);
	KT_CHECK(t, (bss & (PTE_V | PTE_W)) == (PTE_V | PTE_W) && !(bss & PTE_X),
		 "bss PTE 0x%lx", (unsigned long)bss);
	KT_CHECK(t, !(pte(VA(__text_end) - 4096) & PTE_W), "last text page writable");
	KT_CHECK(t, !(pte(VA(__rodata_end)) & PTE_X), "first data page executable");
}

static int reserved_covers(const struct boot_info *bi, uint64_t base, uint64_t size)
{
	for (unsigned i = 0; i < bi->nreserved; i++)
		if (bi->reserved[i].base <= base &&
		    base + size <= bi->reserved[i].base + bi->reserved[i].size)
			return 1;
	return 0;
}

static int in_ram(const struct boot_info *bi, uint64_t pa)
{
	for (unsigned i = 0; i < bi->nram; i++)
		if (pa >= bi->ram[i].base && pa < bi->ram[i].base + bi->ram[i].size)
			return 1;
	return 0;
}

KTEST(riscv64, reservations)
{
	const struct boot_info *bi = t->bi;
	KT_CHECK(t, reserved_covers(bi, VA(__kernel_start), VA(__kernel_end) - VA(__kernel_start)),
		 "kernel image not reserved");
	KT_CHECK(t, reserved_covers(bi, mmu_tables_base(), mmu_tables_size()), "tables not reserved");
	uint32_t dsize = fdt_peek_totalsize(riscv_dtb, 8);
	KT_CHECK(t, dsize && reserved_covers(bi, VA(riscv_dtb), dsize), "DTB not reserved");
	KT_CHECK(t, !in_ram(bi, VIRT_RAM_BASE), "OpenSBI's 0x80000000 counted as RAM");
	KT_CHECK(t, bi->direct_map_offset == 0, "direct map offset");
}

KTEST(riscv64, boot_layout)
{
	const struct boot_info *bi = t->bi;
	kt_log("%s; riscv,isa %s; %d hart(s) in the DTB, timebase %lu Hz\n", arch_cpu_name(),
	       riscv_isa ? riscv_isa : "?", riscv_ncpus, (unsigned long)riscv_timebase_hz);
	kt_log("DTB at 0x%lx (%u bytes); kernel image 0x%lx-0x%lx\n", (unsigned long)VA(riscv_dtb),
	       fdt_peek_totalsize(riscv_dtb, 8), (unsigned long)VA(__kernel_start),
	       (unsigned long)VA(__kernel_end));
	kt_log("page tables: %u of %lu pages used at 0x%lx\n", mmu_tables_used(),
	       (unsigned long)(mmu_tables_size() / 4096), (unsigned long)mmu_tables_base());
	if (bi->nram) {
		uint64_t top = bi->ram[bi->nram - 1].base + bi->ram[bi->nram - 1].size - 4096;
		int level = -1;
		live_pte(csr_read(satp), top, &level);
		kt_log("highest RAM page 0x%lx mapped by a %s\n", (unsigned long)top,
		       level == 0 ? "1 GiB gigapage" : level == 1 ? "2 MiB megapage" : "4 KiB page");
	}
	kt_log("cycle CSR at first C instruction %lu\n", (unsigned long)bi->entry_cycles);
	KT_CHECK(t, riscv_ncpus >= 1, "hart count");
	KT_CHECK(t, bi->entry_cycles && bi->entry_cycles < arch_cycles(), "entry_cycles");
}

struct cpu_regs {
	uint64_t satp, stvec, sstatus, sie, sscratch, hartid;
	unsigned id;
	double fp;
};

static void read_cpu_regs(unsigned cpu, void *arg)
{
	struct cpu_regs *r = (struct cpu_regs *)arg + cpu;
	volatile double x = 1.5;
	r->satp = csr_read(satp);
	r->stvec = csr_read(stvec);
	r->sstatus = csr_read(sstatus);
	r->sie = csr_read(sie);
	r->sscratch = csr_read(sscratch);
	r->id = arch_cpu_id();
	r->hartid = riscv_cpu_hartid(cpu);
	r->fp = x * (double)(cpu + 1);
}

/* Exception stack top (sscratch) -> its guard page, and for a secondary
 * the kernel stack's guard page just above it (smp.c's layout). */
static void check_stacks(struct ktest_ctx *t, unsigned cpu, uint64_t exc_top)
{
	KT_CHECK(t, unmapped(exc_top - EXC_STACK_SIZE - 4096),
		 "cpu %u: exception stack guard below 0x%lx mapped", cpu, (unsigned long)exc_top);
	if (cpu == 0)
		return;
	KT_CHECK(t, unmapped(exc_top) && riscv_stack_guard_cpu(exc_top) == (int)cpu,
		 "cpu %u: kernel stack guard at 0x%lx", cpu, (unsigned long)exc_top);
}

KTEST(riscv64, every_cpu_state)
{
	static struct cpu_regs r[SMP_MAX_CPUS];
	smp_run(read_cpu_regs, r);
	for (unsigned c = 0; c < smp_ncpus(); c++) {
		KT_CHECK(t, r[c].satp == r[0].satp, "cpu %u: satp 0x%lx", c, (unsigned long)r[c].satp);
		KT_CHECK(t, r[c].stvec == VA(riscv_trap_entry), "cpu %u: stvec 0x%lx", c,
			 (unsigned long)r[c].stvec);
		KT_CHECK(t, (r[c].sstatus & SSTATUS_FS) && r[c].fp == 1.5 * (c + 1), "cpu %u: FP", c);
		KT_CHECK(t, !(r[c].sstatus & SSTATUS_SIE) && !r[c].sie, "cpu %u: interrupts on", c);
		KT_CHECK(t, r[c].id == c, "cpu %u: tp %u", c, r[c].id);
		for (unsigned d = 0; d < c; d++) {
			KT_CHECK(t, r[c].sscratch != r[d].sscratch,
				 "cpus %u and %u share an exception stack", d, c);
			KT_CHECK(t, r[c].hartid != r[d].hartid, "cpus %u and %u are hart %lu", d, c,
				 (unsigned long)r[c].hartid);
		}
		check_stacks(t, c, r[c].sscratch);
	}
}

/* ------------------------------------------------ deliberate CPU faults */

KTEST_NAMED("selftest-riscv64-illegal", illegal_instruction, selftest_riscv64_illegal);
static void selftest_riscv64_illegal(struct ktest_ctx *t)
{
	__asm__ volatile("unimp");
	KT_CHECK(t, 0, "unimp did not trap");
}

KTEST_NAMED("selftest-riscv64-exec", execute_ram, selftest_riscv64_exec);
static void selftest_riscv64_exec(struct ktest_ctx *t)
{
	void (*fn)(void) = (void (*)(void))(uintptr_t)riscv_dtb;   /* RAM: never executable */
	fn();
	KT_CHECK(t, 0, "executing RAM did not fault");
}

KTEST_NAMED("selftest-riscv64-write-text", write_text, selftest_riscv64_write_text);
static void selftest_riscv64_write_text(struct ktest_ctx *t)
{
	volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)VA(__text_start);
	*p = *p;
	KT_CHECK(t, 0, "writing .text did not fault");
}

/*
 * Suite "entry-second-hart" (boot with --smp 2 cpus=1 test=entry-second-hart):
 * a second hart sent to _start while the kernel runs, as OpenSBI has been
 * seen to do under load, must park at the hart lottery and change
 * nothing: .bss (here a canary) survives, the heap still works and checks
 * clean.  Without the lottery the hart zeroes .bss and boots the kernel a
 * second time over the running one.
 */
extern uint32_t riscv_boot_lottery;
extern char _start[];
static uint64_t entry_canary;   /* .bss */

static uint64_t entry_time(void)
{
	uint64_t t;
	__asm__ volatile("rdtime %0" : "=r"(t) : : "memory");
	return t;
}

KTEST_NAMED("entry-second-hart", parks_at_the_lottery, entry_second_hart_parks);
static void entry_second_hart_parks(struct ktest_ctx *t)
{
	KT_REQUIRE(t, smp_ncpus() == 1, "boot with cpus=1 so a hart is free (%u online)",
		   smp_ncpus());
	uint64_t other = riscv_boot_hartid == 0 ? 1 : 0;
	entry_canary = 0x5eed5eed5eed5eedull;
	uint32_t before = __atomic_load_n(&riscv_boot_lottery, __ATOMIC_ACQUIRE);
	struct sbiret r = sbi_call(SBI_EXT_HSM, SBI_HSM_HART_START, (long)other,
				   (long)(uintptr_t)_start, (long)(uintptr_t)riscv_dtb);
	KT_REQUIRE(t, r.error == 0, "hart_start of hart %llu failed (%ld): run with --smp 2",
		   (unsigned long long)other, r.error);
	uint64_t limit = entry_time() + riscv_timebase_hz / 10;   /* 100 ms */
	while (__atomic_load_n(&riscv_boot_lottery, __ATOMIC_ACQUIRE) == before &&
	       entry_time() < limit)
		arch_cpu_relax();
	limit = entry_time() + riscv_timebase_hz / 20;   /* time to do damage */
	while (entry_time() < limit)
		arch_cpu_relax();
	KT_CHECK(t, __atomic_load_n(&riscv_boot_lottery, __ATOMIC_ACQUIRE) == before + 1,
		 "the second hart never reached the lottery (%u -> %u)", before,
		 __atomic_load_n(&riscv_boot_lottery, __ATOMIC_ACQUIRE));
	KT_CHECK(t, entry_canary == 0x5eed5eed5eed5eedull, ".bss was overwritten: canary %llx",
		 (unsigned long long)entry_canary);
	void *p = kmalloc(100, 0);
	KT_CHECK(t, p != NULL && pfa_check() == 0 && kmalloc_check() == 0,
		 "the heap is damaged after the second entry");
	kfree(p);
}

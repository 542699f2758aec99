/*
 * arch/x86_64/selftest.c - in-kernel tests of the x86_64 boot stub.
 *
 * Suite "x86" (part of test=all) checks the promises boot.c and paging.c
 * make, by walking the live page tables rather than by faulting:
 *
 *   - virtual page 0 and arch_unmapped_address() are unmapped
 *   - every RAM region is direct-mapped (first and last page, read/write,
 *     no-execute) and the holes between regions are not
 *   - the kernel image is W^X and the boot-stack guard page is unmapped
 *   - SSE is enabled
 *   - on every CPU (smp_run): GS base, GDT, TSS and #DF stack are its own,
 *     IDT, CR0/CR3/CR4/EFER are the boot CPU's, AP stacks have unmapped
 *     guard pages, the trampoline's identity map is gone
 *   - the MADT's CPUs, and the BIOS-area RSDP scan agrees with PVH
 *
 * The selftest-x86-* suites fault on purpose (run them one at a time,
 * e.g. test=selftest-x86-ud); each must end with a CPU exception report
 * and exit status EXIT_FAULT:
 *
 *   selftest-x86-ud   ud2                    -> #UD
 *   selftest-x86-de   division by zero       -> #DE
 * (the #PF case is the shared selftest-fault suite; the shared
 * selftest-stack suite overflows the boot stack into its guard page, a #PF
 * that cannot be delivered on that stack -> #DF, reported from its IST;
 * selftest-ap-fault and selftest-ap-stack do the same on a secondary CPU,
 * the overflow a #DF on that CPU's IST.)
 */
#include <stdint.h>
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include "x86.h"

#define VA(p) ((uint64_t)(uintptr_t)(p))

KTEST(x86, page_zero_unmapped)
{
	KT_CHECK(t, x86_pte_lookup(0) == 0, "virtual page 0 is mapped");
	KT_CHECK(t, x86_pte_lookup(arch_unmapped_address()) == 0,
		 "arch_unmapped_address() 0x%lx is mapped",
		 (unsigned long)arch_unmapped_address());
}

static void check_dmap(struct ktest_ctx *t, uint64_t phys)
{
	uint64_t e = x86_pte_lookup(X86_DIRECT_MAP + phys);

	KT_REQUIRE(t, e, "RAM at 0x%lx not direct-mapped", (unsigned long)phys);
	KT_CHECK(t, (e & PTE_ADDR & ~(phys & ~PTE_ADDR)) <= phys, "bad frame for 0x%lx",
		 (unsigned long)phys);
	KT_CHECK(t, e & PTE_W, "RAM at 0x%lx read-only", (unsigned long)phys);
	KT_CHECK(t, !x86_has_nx() || (e & PTE_NX), "RAM at 0x%lx executable",
		 (unsigned long)phys);
}

KTEST(x86, direct_map_ram_only)
{
	const struct boot_info *bi = t->bi;

	for (unsigned i = 0; i < bi->nram; i++) {
		uint64_t b = bi->ram[i].base, e = b + bi->ram[i].size;
		volatile uint64_t *last = (volatile uint64_t *)(uintptr_t)(X86_DIRECT_MAP + e - 8);
		uint64_t saved = *last;

		check_dmap(t, b);
		check_dmap(t, e - PAGE_SIZE);
		*last = 0x5a5a5a5a5a5a5a5aull ^ e;
		KT_CHECK(t, *last == (0x5a5a5a5a5a5a5a5aull ^ e), "write at 0x%lx lost",
			 (unsigned long)(e - 8));
		*last = saved;
		if (i + 1 < bi->nram && e < bi->ram[i + 1].base)
			KT_CHECK(t, x86_pte_lookup(X86_DIRECT_MAP + e) == 0,
				 "hole at 0x%lx is direct-mapped", (unsigned long)e);
	}
}

KTEST(x86, kernel_image_w_xor_x)
{
	uint64_t text = x86_pte_lookup(VA(__text_start));
	uint64_t ro = x86_pte_lookup(VA(__rodata_start));
	uint64_t data = x86_pte_lookup(VA(__data_start));
	int nx = x86_has_nx();

	KT_CHECK(t, text && !(text & PTE_W) && !(text & PTE_NX), "text entry %lx",
		 (unsigned long)text);
	KT_CHECK(t, ro && !(ro & PTE_W) && (!nx || (ro & PTE_NX)), "rodata entry %lx",
		 (unsigned long)ro);
	KT_CHECK(t, data && (data & PTE_W) && (!nx || (data & PTE_NX)), "data entry %lx",
		 (unsigned long)data);
	KT_CHECK(t, x86_pte_lookup(VA(__boot_stack_guard)) == 0, "stack guard page mapped");
	KT_CHECK(t, read_cr0() & X86_CR0_WP, "CR0.WP clear: ring 0 ignores read-only pages");
}

KTEST(x86, sse_enabled)
{
	volatile double a = 1.5, b = 2.25;

	KT_CHECK(t, !(read_cr0() & X86_CR0_EM) && (read_cr0() & X86_CR0_MP), "CR0 %lx",
		 (unsigned long)read_cr0());
	KT_CHECK(t, (read_cr4() & (X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT)) ==
			    (X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT),
		 "CR4 %lx", (unsigned long)read_cr4());
	KT_CHECK(t, a * b == 3.375, "1.5 * 2.25 != 3.375");
}

KTEST(x86, boot_layout)
{
	const struct boot_info *bi = t->bi;

	kt_log("PVH start_info 0x%lx, memmap 0x%lx, cmdline 0x%lx\n",
	       (unsigned long)x86_boot_pvh[0].base, (unsigned long)x86_boot_pvh[1].base,
	       (unsigned long)x86_boot_pvh[2].base);
	kt_log("kernel image 0x%lx-0x%lx, page tables 0x%lx-0x%lx (%lu pages)\n",
	       (unsigned long)kimg_phys(__kernel_start), (unsigned long)kimg_phys(__kernel_end),
	       (unsigned long)x86_boot_pt.pt_base, (unsigned long)x86_boot_pt.pt_end,
	       (unsigned long)((x86_boot_pt.pt_end - x86_boot_pt.pt_base) / PAGE_SIZE));
	kt_log("TSC: PVH entry %lu, first C instruction %lu (+%lu)\n",
	       (unsigned long)x86_pvh_entry_tsc, (unsigned long)bi->entry_cycles,
	       (unsigned long)(bi->entry_cycles - x86_pvh_entry_tsc));
	KT_CHECK(t, x86_boot_pt.pt_end > x86_boot_pt.pt_base, "no page tables recorded");
	KT_CHECK(t, bi->direct_map_offset == X86_DIRECT_MAP, "direct map offset");
}

/* ------------------------------------------------------------- SMP */

struct cpu_state {
	uint64_t cr0, cr3, cr4, efer, gs_base, gdt_base, idt_base, rsp;
	uint16_t tr;
};

static void record_state(unsigned cpu, void *arg)
{
	struct cpu_state *s = (struct cpu_state *)arg + cpu;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr, idtr;

	__asm__ volatile("sgdt %0; sidt %1; str %2" : "=m"(gdtr), "=m"(idtr), "=r"(s->tr));
	s->cr0 = read_cr0();
	s->cr3 = read_cr3();
	s->cr4 = read_cr4();
	s->efer = rdmsr(X86_MSR_EFER);
	s->gs_base = rdmsr(X86_MSR_GS_BASE);
	s->gdt_base = gdtr.base;
	s->idt_base = idtr.base;
	s->rsp = (uint64_t)(uintptr_t)&gdtr;
}

static void check_cpu(struct ktest_ctx *t, unsigned c, const struct cpu_state *s)
{
	const struct x86_percpu *pc = &x86_percpu[c];

	KT_CHECK(t, s[c].gs_base == VA(pc), "cpu %u: GS base %lx", c, (unsigned long)s[c].gs_base);
	KT_CHECK(t, s[c].gdt_base == VA(pc->gdt) && s[c].tr == X86_SEL_TSS,
		 "cpu %u: GDT %lx, TR %x", c, (unsigned long)s[c].gdt_base, s[c].tr);
	KT_CHECK(t, s[c].idt_base == s[0].idt_base, "cpu %u: its own IDT", c);
	KT_CHECK(t, s[c].cr0 == s[0].cr0 && s[c].cr3 == s[0].cr3 && s[c].cr4 == s[0].cr4 &&
			    s[c].efer == s[0].efer,
		 "cpu %u: CR0 %lx CR3 %lx CR4 %lx EFER %lx differ from the boot CPU's", c,
		 (unsigned long)s[c].cr0, (unsigned long)s[c].cr3, (unsigned long)s[c].cr4,
		 (unsigned long)s[c].efer);
	KT_CHECK(t, pc->tss.ist[0] == pc->df_stack_top && x86_pte_lookup(pc->df_stack_top - 8),
		 "cpu %u: IST1 %lx", c, (unsigned long)pc->tss.ist[0]);
	for (unsigned d = 0; d < c; d++)
		KT_CHECK(t, x86_percpu[d].df_stack_top != pc->df_stack_top,
			 "cpus %u and %u share a #DF stack", d, c);
	if (c == 0)
		return;
	KT_CHECK(t, s[c].rsp < pc->stack_top && s[c].rsp >= pc->stack_top - X86_AP_STACK_SIZE,
		 "cpu %u: rsp %lx outside its stack", c, (unsigned long)s[c].rsp);
	KT_CHECK(t, !x86_pte_lookup(pc->stack_top - X86_AP_STACK_SIZE - PAGE_SIZE) &&
			    !x86_pte_lookup(pc->df_stack_top - X86_DF_STACK_SIZE - PAGE_SIZE),
		 "cpu %u: no guard page below a stack", c);
}

KTEST(x86, per_cpu_state)
{
	static struct cpu_state s[SMP_MAX_CPUS];
	int reserved = 0;

	smp_run(record_state, s);
	for (unsigned c = 0; c < smp_ncpus(); c++)
		check_cpu(t, c, s);
	KT_CHECK(t, x86_pte_lookup(X86_TRAMPOLINE) == 0, "trampoline still identity-mapped");
	for (unsigned i = 0; i < t->bi->nreserved; i++)
		reserved |= t->bi->reserved[i].base <= X86_TRAMPOLINE &&
			    t->bi->reserved[i].base + t->bi->reserved[i].size >= X86_TRAMPOLINE + PAGE_SIZE;
	KT_CHECK(t, reserved, "trampoline page 0x%x not reserved", X86_TRAMPOLINE);
}

KTEST(x86, acpi_madt)
{
	const struct x86_cpus *c = x86_acpi_cpus();
	uint64_t scanned = x86_acpi_scan_rsdp();

	kt_log("RSDP 0x%lx (PVH), 0x%lx (BIOS-area scan); MADT: %u CPUs, LAPIC 0x%lx\n",
	       (unsigned long)x86_rsdp_phys, (unsigned long)scanned, c->n,
	       (unsigned long)c->lapic_phys);
	for (unsigned i = 1; i < smp_ncpus(); i++)
		kt_log("cpu %u: APIC id %u, started in %lu cycles\n", i, x86_percpu[i].apic_id,
		       (unsigned long)x86_ap_start_cycles[i]);
	KT_CHECK(t, c->from_madt || (!x86_rsdp_phys && !scanned),
		 "an RSDP but no usable MADT");   /* -M pc,acpi=off: no RSDP, 1 CPU */
	KT_CHECK(t, !x86_rsdp_phys || scanned == x86_rsdp_phys, "scan found another RSDP");
	KT_CHECK(t, smp_ncpus() <= c->n, "%u CPUs online, %u in the MADT", smp_ncpus(), c->n);
	for (unsigned i = 0; i < smp_ncpus(); i++)
		for (unsigned j = 0; j < i; j++)
			KT_CHECK(t, x86_percpu[i].apic_id != x86_percpu[j].apic_id,
				 "cpus %u and %u have APIC id %u", j, i, x86_percpu[i].apic_id);
}

/* ------------------------------------------------ deliberate CPU faults */

KTEST_NAMED("selftest-x86-ud", invalid_opcode, selftest_x86_ud);
static void selftest_x86_ud(struct ktest_ctx *t)
{
	__asm__ volatile("ud2");
	KT_CHECK(t, 0, "ud2 did not fault");
}

KTEST_NAMED("selftest-x86-de", divide_by_zero, selftest_x86_de);
static void selftest_x86_de(struct ktest_ctx *t)
{
	uint32_t lo = 1, hi = 0, zero = 0;

	__asm__ volatile("divl %2" : "+a"(lo), "+d"(hi) : "r"(zero));
	KT_CHECK(t, 0, "division by zero did not fault");
}

/*
 * arch/x86_64/x86.h - constants and tiny inline helpers shared by the
 * x86_64 boot stub (boot.S, *.c).  Usable from assembly: everything that
 * is not a plain #define is inside #ifndef __ASSEMBLY__.
 *
 * Virtual address space once x86_paging_init() has switched CR3:
 *
 *   0x0000000000000000  +--------------------------------+
 *                       | unmapped (NULL faults)          |  PML4[0..255]
 *   0x00007fffffffffff  +--------------------------------+
 *                         non-canonical hole
 *   0xffff800000000000  +--------------------------------+  X86_DIRECT_MAP
 *                       | direct map: virt = phys + this  |  PML4[256..]
 *                       | RAM only (PVH type 1), 2 MiB    |
 *                       | pages, 4 KiB at region edges    |
 *                       +--------------------------------+
 *                         unmapped
 *   0xffffff8000000000  +--------------------------------+  X86_LATE_MAP
 *                       | mappings made after mm_init():  |  PML4[511],
 *                       | LAPIC MMIO, ACPI tables, AP     |  PDPT[0]
 *                       | stacks; an unmapped guard page  |
 *                       | below each (x86_map_late)       |
 *                       +--------------------------------+
 *   0xffffffff80000000  +--------------------------------+  X86_KERNEL_VMA
 *                       | kernel image: virt = phys +     |  PML4[511],
 *                       | this, 4 KiB pages, W^X          |  PDPT[510]
 *   0xffffffffffffffff  +--------------------------------+
 */
#ifndef ARCH_X86_64_X86_H
#define ARCH_X86_64_X86_H

/* Unsigned constants in C, plain numbers in assembly (gas/clang reject
 * the "u" suffix). */
#ifdef __ASSEMBLY__
#define X86_U(x)  x
#define X86_ULL(x) x
#else
#define X86_U(x)  x##u
#define X86_ULL(x) x##ull
#endif

#define X86_KERNEL_VMA   0xffffffff80000000
#define X86_DIRECT_MAP   0xffff800000000000
#define X86_LOAD_PHYS    0x100000          /* the image is loaded at 1 MiB */
#define X86_LATE_MAP     0xffffff8000000000
#define X86_TRAMPOLINE   0x8000            /* AP real-mode entry (smp.c) */

/* Segment selectors of the GDT (boot.S and cpu.c use the same layout). */
#define X86_SEL_KCODE    0x08
#define X86_SEL_KDATA    0x10
#define X86_SEL_TSS      0x18

/* Control-register and MSR bits used during boot. */
#define X86_CR0_PE       (X86_U(1) << 0)
#define X86_CR0_MP       (X86_U(1) << 1)
#define X86_CR0_EM       (X86_U(1) << 2)
#define X86_CR0_NE       (X86_U(1) << 5)
#define X86_CR0_WP       (X86_U(1) << 16)
#define X86_CR0_PG       (X86_U(1) << 31)
#define X86_CR4_PAE      (X86_U(1) << 5)
#define X86_CR4_OSFXSR   (X86_U(1) << 9)
#define X86_CR4_OSXMMEXCPT (X86_U(1) << 10)
#define X86_MSR_EFER     0xc0000080
#define X86_EFER_LME     (X86_U(1) << 8)
#define X86_EFER_LMA     (X86_U(1) << 10)
#define X86_EFER_NXE     (X86_U(1) << 11)
#define X86_MSR_GS_BASE  0xc0000101
#define X86_MSR_APIC_BASE 0x1b

/* Page-table entry bits. */
#define PTE_P            (X86_ULL(1) << 0)   /* present */
#define PTE_W            (X86_ULL(1) << 1)   /* writable */
#define PTE_PWT          (X86_ULL(1) << 3)   /* write-through */
#define PTE_PCD          (X86_ULL(1) << 4)   /* cache disabled (MMIO) */
#define PTE_PS           (X86_ULL(1) << 7)   /* 2 MiB page (in a PD entry) */
#define PTE_NX           (X86_ULL(1) << 63)  /* no execute (needs EFER.NXE) */
#define PTE_ADDR         X86_ULL(0x000ffffffffff000)

/* PAGE_SIZE (4 KiB) comes from strata/pfa.h, included below. */
#define LARGE_PAGE_SIZE  X86_ULL(0x200000)

/* Size of the boot stack (in .bss, below it an unmapped guard page), of
 * each AP's stack (same size, also above a guard page) and of the
 * double-fault IST stack of every CPU. */
#define X86_BOOT_STACK_SIZE 0x8000
#define X86_AP_STACK_SIZE   X86_BOOT_STACK_SIZE
#define X86_DF_STACK_SIZE   0x4000

#ifndef __ASSEMBLY__
#include <stdint.h>
#include <kernel/smp.h>
#include <strata/pfa.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(0));
}

/* The CPU's physical address width (CPUID 0x80000008 EAX[7:0]; 36 bits
 * when the leaf is missing). */
static inline unsigned x86_phys_bits(void)
{
	uint32_t r[4];

	cpuid(0x80000000, r);
	if (r[0] < 0x80000008)
		return 36;
	cpuid(0x80000008, r);
	return r[0] & 0xff;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

#define X86_READ_CR(n)                                                  \
	static inline uint64_t read_cr##n(void)                         \
	{                                                               \
		uint64_t v;                                             \
		__asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));       \
		return v;                                               \
	}
X86_READ_CR(0)
X86_READ_CR(2)
X86_READ_CR(3)
X86_READ_CR(4)
#undef X86_READ_CR

static inline void write_cr0(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}

static inline void write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

/* Linker-script symbols (linker.ld); only their addresses mean anything. */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[];
extern char __data_start[], __bss_start[], __bss_end[];
extern char __boot_stack_guard[], __boot_stack_top[];

/* Kernel-image virtual address <-> physical address. */
static inline uint64_t kimg_phys(const void *p)
{
	return (uint64_t)(uintptr_t)p - X86_KERNEL_VMA;
}

/* boot.c: print "strata: boot failed: msg" on COM1, exit EXIT_PANIC. */
_Noreturn void x86_boot_fail(const char *msg);
extern uint64_t x86_pvh_entry_tsc;   /* boot.S: TSC at the 32-bit entry */

/* cpu.c: per-CPU state.  %gs points at this CPU's struct x86_percpu
 * (GS base MSR: boot.S for the boot CPU, the trampoline for each AP), so
 * arch_cpu_id() is one `movl %gs:0`. */
struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct x86_percpu {
	uint32_t cpu;                 /* +0: must stay first (arch_cpu_id) */
	uint32_t apic_id;
	uint32_t trap_depth;          /* traps.c: nested-fault detection */
	uint64_t stack_top;           /* APs: top of the kernel stack */
	uint64_t df_stack_top;        /* IST1, for #DF */
	uint64_t gdt[5] __attribute__((aligned(16)));   /* boot.S layout */
	struct tss64 tss;
};
extern struct x86_percpu x86_percpu[SMP_MAX_CPUS];

void x86_cpu_init_boot(void);                  /* boot CPU, from boot.c */
void x86_cpu_init_ap(struct x86_percpu *pc);   /* on the AP itself */
int x86_has_nx(void);

/* serial.c */
void x86_serial_init(void);
void x86_serial_puts(const char *s);

/* paging.c: RAM regions in, page tables out. */
struct x86_range {
	uint64_t base, end;      /* [base, end), page aligned */
};
struct x86_paging_result {
	uint64_t pt_base, pt_end;   /* physical range the page tables occupy */
	uint64_t cr3;
};
void x86_paging_init(const struct x86_range *ram, unsigned nram,
		     const struct x86_range *avoid, unsigned navoid,
		     struct x86_paging_result *out);
uint64_t x86_pte_lookup(uint64_t va);   /* leaf entry, 0 if unmapped */
/* After mm_init(), boot CPU only: map [pa, pa + size) at fresh addresses
 * above X86_LATE_MAP with an unmapped guard page below; page tables come
 * from the page-frame allocator.  Returns the virtual address of pa. */
void *x86_map_late(uint64_t pa, uint64_t size, uint64_t flags);
/* The AP trampoline page, identity-mapped (read + exec) while APs start. */
void x86_identity_map_page(uint64_t pa);
void x86_identity_unmap(void);
extern struct x86_paging_result x86_boot_pt;   /* boot.c: what was built */
extern struct x86_range x86_boot_pvh[3];  /* boot.c: start_info, memmap, cmdline */

/* smp.c: TSC cycles from INIT to the AP's arrival in C, per CPU. */
extern uint64_t x86_ap_start_cycles[SMP_MAX_CPUS];

/* smp.c: TLB shootdown.  x86_tlb_shootdown(va, bytes) invalidates the
 * range on every other online CPU (an NMI each; waits, bounded, for all
 * to acknowledge): 0, or -1 if one did not answer.  x86_tlb_shootdown_nmi()
 * is the NMI side (traps.c): true if this NMI was such a request, done. */
int x86_tlb_shootdown(uint64_t va, uint64_t bytes);
int x86_tlb_shootdown_nmi(void);

/* traps.c */
void x86_idt_init(void);    /* fill and load (boot CPU) */
void x86_idt_load(void);    /* load the same IDT (APs) */

/* acpi.c: the CPUs of the MADT ("APIC" table), read once on first use
 * (after mm_init(): the tables are mapped with x86_map_late).
 * On a missing or malformed table: one CPU, apic_id[0] = our own. */
#define X86_MAX_APIC_IDS 256
struct x86_cpus {
	uint64_t lapic_phys;          /* local APIC MMIO, default 0xfee00000 */
	unsigned n;                   /* enabled processor entries */
	uint8_t apic_id[X86_MAX_APIC_IDS];
	int from_madt;                /* 0: fell back to one CPU */
};
extern uint64_t x86_rsdp_phys;    /* boot.c: from PVH start info, or 0 */
const struct x86_cpus *x86_acpi_cpus(void);
uint64_t x86_acpi_scan_rsdp(void);   /* EBDA + BIOS area search, 0 if none */

#endif /* __ASSEMBLY__ */
#endif

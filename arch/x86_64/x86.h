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
#define X86_EFER_NXE     (X86_U(1) << 11)

/* Page-table entry bits. */
#define PTE_P            (X86_ULL(1) << 0)   /* present */
#define PTE_W            (X86_ULL(1) << 1)   /* writable */
#define PTE_PS           (X86_ULL(1) << 7)   /* 2 MiB page (in a PD entry) */
#define PTE_NX           (X86_ULL(1) << 63)  /* no execute (needs EFER.NXE) */
#define PTE_ADDR         X86_ULL(0x000ffffffffff000)

#define PAGE_SIZE        X86_ULL(0x1000)
#define LARGE_PAGE_SIZE  X86_ULL(0x200000)

/* Size of the boot stack (in .bss, below it an unmapped guard page) and
 * of the double-fault IST stack. */
#define X86_BOOT_STACK_SIZE 0x8000
#define X86_DF_STACK_SIZE   0x4000

#ifndef __ASSEMBLY__
#include <stdint.h>

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

/* cpu.c */
void x86_cpu_init(void);
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
extern struct x86_paging_result x86_boot_pt;   /* boot.c: what was built */
extern struct x86_range x86_boot_pvh[3];  /* boot.c: start_info, memmap, cmdline */

/* traps.c */
void x86_idt_init(void);

#endif /* __ASSEMBLY__ */
#endif

/*
 * arch/aarch64/aarch64.h - what the aarch64 boot stub's files share:
 * system-register accessors, bit names, the exception frame layout and the
 * linker-script symbols.
 *
 * Boot flow (files in this directory):
 *
 *   boot.S     _start: park secondaries, leave EL2, stack, BSS, FP, VBAR
 *     |
 *   setup.c    aarch64_start(): find + check the DTB (MMU still off),
 *     |          plan the memory map, fill struct boot_info
 *   mmu.c      build identity-mapped translation tables, MMU + caches on
 *     |
 *   kmain()    (kernel/main.c)
 *
 *   smp_entry.S + smp.c   secondary CPUs: PSCI CPU_ON -> smp_secondary_main()
 *   vectors.S + traps.c   VBAR_EL1 table: any exception -> register dump
 *   platform.c            arch_putc (PL011), arch_exit (semihosting), ...
 */
#ifndef ARCH_AARCH64_H
#define ARCH_AARCH64_H

/* ---------------------------------------------------------- constants */

/* Constants shared with .S files: no integer suffixes in assembly. */
#ifdef __ASSEMBLY__
#define UL(x) x
#else
#define UL(x) x##ul
#endif

/* QEMU -M virt */
#define VIRT_UART_BASE      UL(0x09000000)   /* PL011 */
#define VIRT_MMIO_BASE      UL(0x08000000)   /* GIC, UART, RTC, virtio, PCIe, ... */
#define VIRT_RAM_BASE       UL(0x40000000)   /* MMIO window ends here */
#define VIRT_DTB_ADDR       UL(0x40000000)   /* where QEMU puts the DTB for ELF kernels */

/* SCTLR_EL1 (system control) */
#define SCTLR_M        (UL(1) << 0)    /* stage-1 MMU on */
#define SCTLR_A        (UL(1) << 1)    /* alignment checks (we leave this off) */
#define SCTLR_C        (UL(1) << 2)    /* data caches on */
#define SCTLR_SA       (UL(1) << 3)    /* SP alignment check at EL1 */
#define SCTLR_I        (UL(1) << 12)   /* instruction cache on */
#define SCTLR_RES1     UL(0x30d00800)  /* bits 11, 20, 22, 23, 28, 29 (ARMv8.0) */
#define SCTLR_MMU_OFF  (SCTLR_RES1 | SCTLR_SA)   /* little-endian, MMU/caches off */

/* HCR_EL2 (hypervisor configuration) */
#define HCR_RW         (UL(1) << 31)   /* EL1 runs AArch64 */
#define HCR_HCD        (UL(1) << 29)   /* HVC is UNDEFINED: no EL2 vectors behind it */

#define SPSR_EL1H_DAIF UL(0x3c5)       /* eret target: EL1 using SP_EL1, D A I F masked */
#define CPACR_FPEN     (UL(3) << 20)   /* FP/SIMD at EL1 and EL0 not trapped */
#define CPTR_EL2_RES1  UL(0x33ff)      /* TFP = 0: FP/SIMD not trapped to EL2 */
#define CNTHCTL_EL1PCEN_PCTEN UL(3)    /* EL1 may use the physical counter/timer */

/* ---------------------------------------------------------- exceptions */

/* struct aarch64_regs as vectors.S lays it out on the exception stack. */
#define REGS_X0        0
#define REGS_SP        248   /* SP_EL1 at the exception */
#define REGS_SP_EL0    256
#define REGS_ELR       264
#define REGS_SPSR      272
#define REGS_ESR       280
#define REGS_FAR       288
#define REGS_SIZE      304   /* multiple of 16 */

#define BOOT_STACK_SIZE  (64 * 1024)
#define EXC_STACK_SIZE   (16 * 1024)

/* ---------------------------------------------------------- SMP */

/* struct aarch64_ap_boot: what a secondary CPU reads with its MMU off
 * (smp_entry.S), one 64-byte record per CPU, written and cleaned to the
 * point of coherency by the boot CPU (smp.c). */
#define AP_STACK       0     /* top of its kernel stack -> SP */
#define AP_EXC_STACK   8     /* top of its exception stack -> SP_EL0 */
#define AP_CPU         16    /* CPU number -> TPIDR_EL1 */
#define AP_MAIR        24    /* the boot CPU's MAIR_EL1, TCR_EL1, ... */
#define AP_TCR         32
#define AP_TTBR0       40
#define AP_SCTLR       48
#define AP_STATE       56    /* handshake, see smp.c */
#define AP_SIZE        64

#ifndef __ASSEMBLY__
#include <stdint.h>

struct aarch64_regs {
	uint64_t x[31];     /* x0..x30 (x29 = frame pointer, x30 = link register) */
	uint64_t sp;        /* SP_EL1 when the exception was taken */
	uint64_t sp_el0;
	uint64_t elr, spsr, esr, far;
	uint64_t pad;
};
_Static_assert(sizeof(struct aarch64_regs) == REGS_SIZE, "vectors.S frame layout");

struct aarch64_ap_boot {
	uint64_t stack, exc_stack, cpu;
	uint64_t mair, tcr, ttbr0, sctlr;
	uint64_t state;
};
_Static_assert(sizeof(struct aarch64_ap_boot) == AP_SIZE, "smp_entry.S record layout");

#define sysreg_read(name) ({                                        \
	uint64_t v_;                                                \
	__asm__ volatile("mrs %0, " #name : "=r"(v_));             \
	v_;                                                         \
})
#define sysreg_write(name, v) \
	__asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

static inline void isb(void) { __asm__ volatile("isb" ::: "memory"); }
static inline void dsb_sy(void) { __asm__ volatile("dsb sy" ::: "memory"); }

static inline uint64_t read_cntvct(void)
{
	isb();   /* keep the counter read from being hoisted */
	return sysreg_read(cntvct_el0);
}

/* platform.c: the PMU counters behind arch_insns(), on this CPU. */
void aarch64_pmu_enable(void);
uint64_t aarch64_inst_retired(void);   /* event counter 0: INST_RETIRED */

/* Linker-script symbols (linker.ld).  All page aligned except _start. */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[];
extern char __data_start[], __bss_start[], __bss_end[];
extern char __boot_stack_guard[], __boot_stack_top[];
extern char __exc_stack_guard[], __exc_stack_top[];
extern char aarch64_vectors[];

/* boot.S */
extern char aarch64_semihost_trap[];           /* the hlt #0xf000 instruction */
uint64_t aarch64_semihost(uint64_t op, uint64_t arg);

/* setup.c: facts learned at boot, for arch_cpu_name(), selftests, SMP */
extern unsigned aarch64_boot_el;               /* EL at _start: 1 or 2 */
extern char aarch64_psci_conduit;              /* 'h' (hvc), 's' (smc) or 0 */
extern int aarch64_ncpus;                      /* CPU nodes in the DTB (fdt_cpus) */
extern const void *aarch64_dtb;                /* the blob, validated */

/* mmu.c (the descriptor bits are explained there) */
#define PTE_VALID      (UL(1) << 0)
#define PTE_TABLE      (UL(1) << 1)    /* level 0-2: next-level table; level 3: page */
#define PTE_ATTR(i)    ((uint64_t)(i) << 2)   /* index into MAIR_EL1 */
#define PTE_ATTR_MASK  (UL(7) << 2)
#define PTE_RO         (UL(1) << 7)    /* AP[2]: read-only */
#define PTE_SH_INNER   (UL(3) << 8)
#define PTE_AF         (UL(1) << 10)   /* access flag (else: access flag fault) */
#define PTE_PXN        (UL(1) << 53)   /* not executable at EL1 */
#define PTE_UXN        (UL(1) << 54)   /* not executable at EL0 */
#define PTE_ADDR       UL(0x0000fffffffff000)

#define MT_DEVICE_nGnRE 0            /* MAIR_EL1 attribute indexes */
#define MT_NORMAL       1
#define MT_NORMAL_NC    2

/* attrs for mmu_map() */
#define MAP_UNMAPPED  UL(0)
#define MAP_DEVICE    (PTE_ATTR(MT_DEVICE_nGnRE) | PTE_AF | PTE_PXN | PTE_UXN)
#define MAP_RAM       (PTE_ATTR(MT_NORMAL) | PTE_SH_INNER | PTE_AF | PTE_PXN | PTE_UXN)
#define MAP_TEXT      (PTE_ATTR(MT_NORMAL) | PTE_SH_INNER | PTE_AF | PTE_RO | PTE_UXN)
#define MAP_RODATA    (MAP_RAM | PTE_RO)

void mmu_reset(void);
int mmu_map(uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs);
void mmu_enable(void);
int mmu_unmap_page(uint64_t va);               /* live tables, break-before-make */
uint64_t mmu_walk(uint64_t va, int *level);    /* leaf descriptor or 0 */
uint64_t mmu_tables_base(void);
uint64_t mmu_tables_size(void);                /* the whole static pool */
uint64_t mmu_phys_limit(void);                 /* first PA the identity map cannot reach */
unsigned mmu_tables_used(void);
/* A translation fault at va during a break-before-make split by another
 * CPU (mm_platform_protect): waits until the new table is in, returns 1
 * (retry the access); 0 if va is not in a block being split. */
int mmu_bbm_wait(uint64_t va);

/* traps.c */
void aarch64_exception(struct aarch64_regs *r, unsigned kind);
const char *aarch64_esr_class(unsigned ec);

/* platform.c */
_Noreturn void aarch64_psci_system_off(void);
/* One PSCI call through the DTB's conduit: x0 = fn, x1..x3 = args; the
 * result (PSCI_* below, negative = error).  PSCI_NOT_SUPPORTED without
 * a conduit. */
int64_t aarch64_psci(uint32_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
#define PSCI_CPU_ON_64       0xc4000003u
#define PSCI_SYSTEM_OFF      0x84000008u
#define PSCI_NOT_SUPPORTED   (-1)

/* smp_entry.S, smp.c */
void aarch64_secondary_entry(struct aarch64_ap_boot *ap);   /* PSCI entry, MMU off */
_Noreturn void aarch64_secondary_start(struct aarch64_ap_boot *ap);
int aarch64_stack_guard_cpu(uint64_t addr);    /* whose stack guard page, or -1 */
#endif /* !__ASSEMBLY__ */
#endif

/*
 * arch/riscv64/riscv64.h - what the riscv64 boot stub's files share: CSR
 * accessors, bit names, the trap frame layout, SBI calls and the
 * linker-script symbols.
 *
 * Boot flow (files in this directory), QEMU -M virt with OpenSBI
 * (-bios default, fw_dynamic) in M-mode below us:
 *
 *   boot.S     _start in S-mode, a0 = hart id, a1 = DTB: interrupts off,
 *     |          FP on, stvec, BSS, boot stack, sscratch, tp = 0
 *   setup.c    riscv_start(): check the DTB, plan the memory map (RAM minus
 *     |          no-map firmware ranges), fill struct boot_info
 *   mmu.c      Sv39 tables: identity direct map of RAM, W^X image, MMIO
 *     |          pages; satp on
 *   kmain()    (kernel/main.c)
 *
 *   boot.S + smp.c   secondary harts: SBI HSM hart_start -> smp_secondary_main()
 *   trap.S + traps.c stvec: any trap -> register dump (scause/sepc/stval)
 *   platform.c       arch_putc (16550), arch_exit (SiFive test device), SBI
 *
 * Only S-mode under an SBI firmware is supported: with -bios none QEMU
 * starts the image in M-mode at 0x80000000, where this kernel (linked at
 * 0x80200000, using SBI for harts) does not run.
 */
#ifndef ARCH_RISCV64_H
#define ARCH_RISCV64_H

#ifdef __ASSEMBLY__
#define UL(x) x
#else
#define UL(x) x##ul
#endif

/* QEMU -M virt */
#define VIRT_TEST_BASE      UL(0x00100000)   /* sifive,test1: exit with a status */
#define VIRT_UART_BASE      UL(0x10000000)   /* ns16550a */
#define VIRT_RAM_BASE       UL(0x80000000)

/* sstatus */
#define SSTATUS_SIE    (UL(1) << 1)     /* supervisor interrupts enabled */
#define SSTATUS_SPIE   (UL(1) << 5)
#define SSTATUS_SPP    (UL(1) << 8)     /* trap came from S-mode */
#define SSTATUS_FS     (UL(3) << 13)    /* FP state: 0 off (FP traps), 1 initial, 3 dirty */
#define SSTATUS_FS_INITIAL (UL(1) << 13)
#define SSTATUS_SUM    (UL(1) << 18)

/* satp: MODE[63:60] | ASID[59:44] | PPN[43:0] */
#define SATP_MODE_SV39 (UL(8) << 60)
#define SATP_PPN_MASK  UL(0x00000fffffffffff)

/* ---------------------------------------------------------- traps */

/* struct riscv_regs as trap.S lays it out on the exception stack. */
#define REGS_X(n)      (8 * (n))        /* x0 slot holds nothing */
#define REGS_SEPC      256
#define REGS_SSTATUS   264
#define REGS_SCAUSE    272
#define REGS_STVAL     280
#define REGS_SIZE      288              /* multiple of 16 */

#define BOOT_STACK_SIZE  (64 * 1024)
#define EXC_STACK_SIZE   (16 * 1024)

/* ---------------------------------------------------------- SMP */

/* struct riscv_hart_boot: what a secondary hart reads with its MMU off
 * (boot.S's riscv_secondary_entry), one 64-byte record per CPU. */
#define HB_STACK       0     /* top of its kernel stack -> sp */
#define HB_EXC_STACK   8     /* top of its exception stack -> sscratch */
#define HB_CPU         16    /* CPU number -> tp */
#define HB_SATP        24    /* the boot hart's satp */
#define HB_STATE       32    /* handshake, see smp.c */
#define HB_HARTID      40
#define HB_SIZE        64

#ifndef __ASSEMBLY__
#include <stdint.h>

struct riscv_regs {
	uint64_t x[32];     /* x[0] unused; x1 = ra, x2 = sp (interrupted), x8 = s0/fp */
	uint64_t sepc, sstatus, scause, stval;
};
_Static_assert(sizeof(struct riscv_regs) == REGS_SIZE, "trap.S frame layout");

struct riscv_hart_boot {
	uint64_t stack, exc_stack, cpu, satp, state, hartid;
	uint64_t pad[2];
};
_Static_assert(sizeof(struct riscv_hart_boot) == HB_SIZE, "boot.S record layout");

#define csr_read(name) ({                                           \
	uint64_t v_;                                                \
	__asm__ volatile("csrr %0, " #name : "=r"(v_) : : "memory"); \
	v_;                                                         \
})
#define csr_write(name, v) \
	__asm__ volatile("csrw " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

static inline void sfence_vma_all(void) { __asm__ volatile("sfence.vma" ::: "memory"); }
static inline void sfence_vma(uint64_t va)
{
	__asm__ volatile("sfence.vma %0, zero" : : "r"(va) : "memory");
}

/* Linker-script symbols (linker.ld).  All page aligned except _start. */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[];
extern char __data_start[], __bss_start[], __bss_end[];
extern char __boot_stack_guard[], __boot_stack_top[];
extern char __exc_stack_guard[], __exc_stack_top[];
extern char riscv_trap_entry[];

/* setup.c: facts learned at boot */
extern uint64_t riscv_boot_hartid;
extern int riscv_ncpus;                         /* harts in the DTB (fdt_cpus) */
extern const void *riscv_dtb;                   /* the blob, validated */
extern uint64_t riscv_timebase_hz;              /* /cpus timebase-frequency */
extern const char *riscv_isa;                   /* the boot hart's riscv,isa */

/* mmu.c: Sv39 page table entries */
#define PTE_V          (UL(1) << 0)
#define PTE_R          (UL(1) << 1)
#define PTE_W          (UL(1) << 2)
#define PTE_X          (UL(1) << 3)
#define PTE_U          (UL(1) << 4)
#define PTE_G          (UL(1) << 5)
#define PTE_A          (UL(1) << 6)
#define PTE_D          (UL(1) << 7)
#define PTE_PPN_SHIFT  10
#define PTE_LEAF       (PTE_R | PTE_W | PTE_X)   /* any of them: a leaf */

/* attrs for mmu_map() */
#define MAP_UNMAPPED  UL(0)
#define MAP_DEVICE    (PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D)
#define MAP_RAM       (PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D)
#define MAP_TEXT      (PTE_V | PTE_R | PTE_X | PTE_G | PTE_A)
#define MAP_RODATA    (PTE_V | PTE_R | PTE_G | PTE_A)

static inline uint64_t pte_pa(uint64_t pte) { return (pte >> PTE_PPN_SHIFT) << 12; }

void mmu_reset(void);
int mmu_map(uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs);
void mmu_enable(void);
uint64_t mmu_satp(void);
int mmu_unmap_page(uint64_t va);               /* live tables */
uint64_t mmu_walk(uint64_t va, int *level);    /* leaf PTE or 0 (level 2 = 1 GiB) */
uint64_t mmu_tables_base(void);
uint64_t mmu_tables_size(void);                /* the whole static pool */
uint64_t mmu_phys_limit(void);                 /* first PA the identity map cannot reach */
unsigned mmu_tables_used(void);
/* mm_platform_protect's remote half: sfence.vma of [va, va + bytes) on
 * every other online hart through SBI RFENCE (0, or -1). */
int mmu_remote_sfence(uint64_t va, uint64_t bytes);

/* traps.c */
void riscv_trap(struct riscv_regs *r);

/* platform.c: SBI calls (a7 = extension, a6 = function) */
struct sbiret { long error, value; };
struct sbiret sbi_call(long ext, long fn, long a0, long a1, long a2);
struct sbiret sbi_call4(long ext, long fn, long a0, long a1, long a2, long a3);
#define SBI_EXT_BASE   0x10
#define SBI_EXT_RFENCE 0x52464e43        /* "RFNC" */
#define SBI_RFENCE_SFENCE_VMA 1          /* (hart_mask, hart_mask_base, start, size) */
#define SBI_EXT_HSM    0x48534d          /* "HSM" */
#define SBI_EXT_SRST   0x53525354        /* "SRST" */
#define SBI_HSM_HART_START 0
#define SBI_BASE_PROBE     3
#define SBI_BASE_IMPL_ID   1
#define SBI_BASE_IMPL_VER  2

/* boot.S, smp.c */
void riscv_secondary_entry(uint64_t hartid, struct riscv_hart_boot *hb);   /* MMU off */
_Noreturn void riscv_secondary_start(struct riscv_hart_boot *hb);
int riscv_stack_guard_cpu(uint64_t addr);      /* whose stack guard page, or -1 */
uint64_t riscv_cpu_hartid(unsigned cpu);
#endif /* !__ASSEMBLY__ */
#endif

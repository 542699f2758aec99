/*
 * arch/riscv64/traps.c - what a trap prints before the kernel dies.
 *
 * boot.S's riscv_trap_entry saves the registers on this hart's exception
 * stack and calls riscv_trap().  The report, e.g. for test=selftest-fault:
 *
 *   EXCEPTION on CPU 0 (hart 0): load page fault (scause 0x000000000000000d)
 *     stval    0x0000000000dead00  (faulting address)
 *     sepc     0x0000000080203f1a  sstatus 0x8000000200006000 (from S-mode, SPIE 0)
 *     ra  0x...  sp  0x...  gp  0x...
 *     ...
 *   (then fault_exit(): faulting pc, backtrace from s0, exit status 3)
 *
 * scause: bit 63 = interrupt, the rest the cause code; stval: the faulting
 * address for access/page faults and misaligned accesses, the instruction
 * bits for an illegal instruction (QEMU fills them in), else 0.
 *
 * Any hart may trap, each on its own exception stack.  The first to get
 * here reports and ends the run; another one trapping meanwhile waits (its
 * report would only interleave), and a trap inside the report gives up.
 *
 * One trap is not fatal: a load or store page fault in S-mode on a page of
 * strata's guard pool.  mm_guard_fault() reports it (the address, the
 * object, its call sites) and, told to continue, opens the page; then
 * riscv_trap returns, after a local sfence.vma of the address (a spurious
 * fault on a page another hart just opened is retried the same way), and
 * boot.S restores the registers and srets to retry the access.  A hart
 * trapping again while inside that path does not go there twice (the
 * guard lock may be held, the exception stack holds the first frame).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <kernel/arch.h>
#include <kernel/console.h>
#include <kernel/exit.h>
#include <kernel/panic.h>
#include <kernel/smp.h>
#include <strata/guard.h>
#include "riscv64.h"

static const char *const reg_names[32] = {
	"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3",
	"a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	"t3", "t4", "t5", "t6",
};

static const char *cause_name(uint64_t scause)
{
	static const char *const exc[16] = {
		"instruction address misaligned", "instruction access fault",
		"illegal instruction", "breakpoint", "load address misaligned",
		"load access fault", "store/AMO address misaligned", "store/AMO access fault",
		"environment call from U-mode", "environment call from S-mode", NULL, NULL,
		"instruction page fault", "load page fault", NULL, "store/AMO page fault",
	};
	static const char *const irq[10] = {
		NULL, "supervisor software interrupt", NULL, NULL, NULL,
		"supervisor timer interrupt", NULL, NULL, NULL, "supervisor external interrupt",
	};
	uint64_t code = scause & ~(1ul << 63);
	const char *s = (scause >> 63) ? (code < 10 ? irq[code] : NULL) : (code < 16 ? exc[code] : NULL);
	return s ? s : (scause >> 63) ? "unknown interrupt" : "reserved/unknown exception";
}

/* stval holds an address for these causes */
static int stval_is_address(uint64_t scause)
{
	uint64_t c = scause;
	return !(scause >> 63) && (c == 0 || c == 1 || (c >= 4 && c <= 7) || c == 12 || c == 13 ||
				   c == 15);
}

static void print_regs(const struct riscv_regs *r)
{
	for (int i = 1; i < 32; i++)
		console_printf("  %-4s 0x%016llx%s", reg_names[i], (unsigned long long)r->x[i],
			i % 3 == 0 ? "\n" : "");
	console_printf("\n  (s0 = frame pointer, ra = return address, tp = CPU number)\n");
}

/*
 * Where the backtrace starts.  gcc saves only s0 in a function that calls
 * nothing but a tail call: its record is then the caller's fp alone, at
 * fp - 8 where a return address would be, and the return address is still
 * in ra.  A value at fp - 8 that points a little above fp is such a frame
 * pointer (code lies below every stack here): say where ra points and
 * start the walk at the caller's frame.
 */
static uintptr_t first_frame(const struct riscv_regs *r)
{
	uint64_t fp = r->x[8];
	if (fp < 16 || (fp & 7) || !mmu_walk(fp - 16, 0) || !mmu_walk(fp - 8, 0))
		return (uintptr_t)fp;
	uint64_t slot = *(const uint64_t *)(uintptr_t)(fp - 8);
	if (slot <= fp || slot - fp > 65536)
		return (uintptr_t)fp;
	console_printf("  the faulting function saved no return address; ra 0x%016llx\n",
		(unsigned long long)r->x[1]);
	return (uintptr_t)slot;
}

static void raw_puts(const char *s)
{
	while (*s)
		arch_putc(*s++);
}

/* Become the one hart that reports; only returns to that hart. */
static void claim_report(unsigned cpu)
{
	static atomic_int reporter = -1;
	int none = -1;
	if (atomic_compare_exchange_strong(&reporter, &none, (int)cpu))
		return;
	if (none == (int)cpu) {
		raw_puts("\r\nEXCEPTION while handling an exception; giving up\r\n");
		arch_exit(EXIT_FAULT);
	}
	arch_halt();   /* hart `none` is reporting and will end the run */
}

#define CAUSE_LOAD_PAGE_FAULT  13
#define CAUSE_STORE_PAGE_FAULT 15

/* A page fault strata's guard layer handled: 1, retry the access. */
static int guard_fault_handled(const struct riscv_regs *r, unsigned cpu)
{
	static volatile unsigned char busy[SMP_MAX_CPUS];

	if ((r->scause != CAUSE_LOAD_PAGE_FAULT && r->scause != CAUSE_STORE_PAGE_FAULT) ||
	    !(r->sstatus & SSTATUS_SPP) || busy[cpu])
		return 0;
	busy[cpu] = 1;
	int handled = mm_guard_fault((const void *)(uintptr_t)r->stval,
				     r->scause == CAUSE_STORE_PAGE_FAULT ? MM_ACCESS_WRITE
									 : MM_ACCESS_READ,
				     (void *)(uintptr_t)r->sepc);
	busy[cpu] = 0;
	if (handled)
		sfence_vma(r->stval);
	return handled;
}

void riscv_trap(struct riscv_regs *r)
{
	unsigned cpu = arch_cpu_id();
	if (guard_fault_handled(r, cpu))
		return;
	claim_report(cpu);
	console_printf("\nEXCEPTION on CPU %u (hart %llu): %s (scause 0x%016llx)\n", cpu,
		(unsigned long long)riscv_cpu_hartid(cpu), cause_name(r->scause),
		(unsigned long long)r->scause);
	console_printf("  stval    0x%016llx%s\n", (unsigned long long)r->stval,
		stval_is_address(r->scause) ? "  (faulting address)"
		: r->scause == 2 ? "  (the instruction, if the hart reports it)" : "");
	console_printf("  sepc     0x%016llx  sstatus 0x%016llx (from %s-mode, SPIE %llu)\n",
		(unsigned long long)r->sepc, (unsigned long long)r->sstatus,
		(r->sstatus & SSTATUS_SPP) ? "S" : "U",
		(unsigned long long)(r->sstatus & SSTATUS_SPIE) >> 5);
	print_regs(r);
	int guard = riscv_stack_guard_cpu(r->x[2]);
	if (guard >= 0)
		console_printf("  sp is at CPU %d's stack guard page: stack overflow\n", guard);
	fault_exit((uintptr_t)r->sepc, first_frame(r));
}

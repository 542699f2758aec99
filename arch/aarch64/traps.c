/*
 * arch/aarch64/traps.c - what an exception prints before the kernel dies.
 *
 * vectors.S saves the registers and calls aarch64_exception() on the
 * exception stack.  The report, e.g. for test=selftest-fault:
 *
 *   EXCEPTION on CPU 0: synchronous, from current EL with SP_ELx (vector 4)
 *     ESR_EL1  0x0000000096000005  EC 0x25 data abort (same EL)
 *              DFSC 0x05 translation fault at level 1, read
 *     FAR_EL1  0x0000000000dead00  (faulting address)
 *     ELR_EL1  0x0000000040201234  SPSR_EL1 0x00000000600003c5 (EL1h, DAIF 1111)
 *     x0  0x...  x1  0x...  x2  0x...
 *     ...
 *   (then fault_exit(): faulting pc, backtrace from x29, exit status 3)
 *
 * ESR_EL1 ("exception syndrome") = EC[31:26] class | IL[25] | ISS[24:0];
 * for aborts the low 6 bits of ISS are the fault status code (DFSC/IFSC).
 *
 * Any CPU may fault, each on its own exception stack (vectors.S).  The
 * first CPU to get here reports and ends the run; another CPU faulting
 * meanwhile waits for that (its report would only interleave), and a
 * fault inside the report itself gives up at once.
 *
 * Two data aborts at EL1 are not fatal, and return (vectors.S restores
 * the registers and erets to retry the access):
 *   - a translation fault in a block another CPU is splitting
 *     break-before-make (mmu.c, mmu_bbm_wait);
 *   - a translation or permission fault on a page of strata's guard pool
 *     (mm_guard_fault reports it, naming the address, the object and its
 *     call sites; told to continue it opens the page for good).
 * A CPU faulting again while it is inside that path does not go there
 * twice (the guard lock may be held, and the exception stack holds the
 * first frame): that one is fatal.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <kernel/console.h>
#include <kernel/arch.h>
#include <kernel/exit.h>
#include <kernel/panic.h>
#include <kernel/smp.h>
#include <strata/guard.h>
#include "aarch64.h"

static const char *const kind_type[4] = { "synchronous", "IRQ", "FIQ", "SError" };
static const char *const kind_from[4] = {
	"current EL with SP_EL0", "current EL with SP_ELx",
	"lower EL (AArch64)", "lower EL (AArch32)",
};

const char *aarch64_esr_class(unsigned ec)
{
	switch (ec) {
	case 0x00: return "unknown reason (undefined instruction?)";
	case 0x01: return "trapped WFI/WFE";
	case 0x07: return "trapped FP/SIMD access";
	case 0x0e: return "illegal execution state";
	case 0x11: return "SVC (AArch32)";
	case 0x15: return "SVC (AArch64)";
	case 0x16: return "HVC (AArch64)";
	case 0x17: return "SMC (AArch64)";
	case 0x18: return "trapped MSR/MRS/system instruction";
	case 0x19: return "trapped SVE access";
	case 0x20: return "instruction abort (lower EL)";
	case 0x21: return "instruction abort (same EL)";
	case 0x22: return "PC alignment fault";
	case 0x24: return "data abort (lower EL)";
	case 0x25: return "data abort (same EL)";
	case 0x26: return "SP alignment fault";
	case 0x28: return "FP exception (AArch32)";
	case 0x2c: return "FP exception (AArch64)";
	case 0x2f: return "SError interrupt";
	case 0x30: return "breakpoint (lower EL)";
	case 0x31: return "breakpoint (same EL)";
	case 0x32: return "software step (lower EL)";
	case 0x33: return "software step (same EL)";
	case 0x34: return "watchpoint (lower EL)";
	case 0x35: return "watchpoint (same EL)";
	case 0x38: return "BKPT (AArch32)";
	case 0x3c: return "BRK (AArch64)";
	default:   return "reserved/unknown class";
	}
}

/* Fault status code of an instruction/data abort (ISS[5:0]). */
static void print_fault_status(unsigned fsc, int is_data, uint64_t iss)
{
	static const char *const kinds[4] = {
		"address size fault", "translation fault", "access flag fault",
		"permission fault",
	};
	const char *access = !is_data ? "instruction fetch" : (iss & (1u << 6)) ? "write" : "read";

	console_printf("           %s 0x%02x ", is_data ? "DFSC" : "IFSC", fsc);
	if (fsc < 0x10)
		console_printf("%s at level %u", kinds[fsc >> 2], fsc & 3);
	else if (fsc == 0x21)
		console_printf("alignment fault");
	else if (fsc == 0x10)
		console_printf("synchronous external abort");
	else if (fsc == 0x30)
		console_printf("TLB conflict abort");
	else
		console_printf("(see the Arm ARM, ESR_ELx ISS encoding)");
	console_printf(", %s\n", access);
}

static void print_regs(const struct aarch64_regs *r)
{
	for (int i = 0; i < 31; i++)
		console_printf("  x%-2d 0x%016llx%s", i, (unsigned long long)r->x[i],
			i % 3 == 2 ? "\n" : "");
	console_printf("  sp  0x%016llx\n  (x29 = frame pointer, x30 = link register)\n",
		(unsigned long long)r->sp);
}

/* Without -semihosting QEMU treats "hlt #0xf000" as undefined: arch_exit()
 * lands here.  Say so, and power off through PSCI (status 0, sadly). */
static void semihosting_missing(void)
{
	console_printf("\naarch64: semihosting is not enabled: run QEMU with -semihosting to get "
		"the exit status; powering off via PSCI instead\n");
	aarch64_psci_system_off();
}

static void raw_puts(const char *s)
{
	while (*s)
		arch_putc(*s++);
}

/* Become the one CPU that reports; only returns to that CPU. */
static void claim_report(unsigned cpu)
{
	static atomic_int reporter = -1;
	int none = -1;
	if (atomic_compare_exchange_strong(&reporter, &none, (int)cpu))
		return;
	if (none == (int)cpu) {
		/* A fault while reporting a fault: no console_printf, no recursion. */
		raw_puts("\r\nEXCEPTION while handling an exception; giving up\r\n");
		arch_exit(EXIT_FAULT);
	}
	arch_halt();   /* CPU `none` is reporting and will end the run */
}

/* A data abort (EC 0x25) that is not a bug of the kernel's own: 1 if
 * handled, the access to be retried. */
static int abort_is_retryable(const struct aarch64_regs *r)
{
	static volatile unsigned char busy[SMP_MAX_CPUS];
	unsigned cpu = arch_cpu_id();
	uint64_t iss = r->esr & 0x1ffffff;
	unsigned fsc = (unsigned)iss & 0x3f;
	int translation = fsc >= 0x04 && fsc <= 0x07, permission = fsc >= 0x0c && fsc <= 0x0f;

	if ((iss & (1u << 10)) || busy[cpu] || !(translation || permission))
		return 0;                       /* FnV: FAR not valid */
	if (translation && mmu_bbm_wait(r->far))
		return 1;
	busy[cpu] = 1;
	int handled = mm_guard_fault((const void *)(uintptr_t)r->far,
				     (iss & (1u << 6)) ? MM_ACCESS_WRITE : MM_ACCESS_READ,
				     (void *)(uintptr_t)r->elr);
	busy[cpu] = 0;
	return handled;
}

void aarch64_exception(struct aarch64_regs *r, unsigned kind)
{
	unsigned cpu = arch_cpu_id();
	unsigned ec = (unsigned)(r->esr >> 26) & 0x3f;
	if (kind == 4 && ec == 0x25 && abort_is_retryable(r))
		return;
	claim_report(cpu);
	if (kind == 4 && ec == 0 && r->elr == (uint64_t)(uintptr_t)aarch64_semihost_trap)
		semihosting_missing();

	uint64_t iss = r->esr & 0x1ffffff;
	console_printf("\nEXCEPTION on CPU %u: %s, from %s (vector %u)\n", cpu,
		kind_type[kind & 3], kind_from[(kind >> 2) & 3], kind);
	console_printf("  ESR_EL1  0x%016llx  EC 0x%02x %s\n", (unsigned long long)r->esr, ec,
		aarch64_esr_class(ec));
	if (ec == 0x20 || ec == 0x21 || ec == 0x24 || ec == 0x25)
		print_fault_status((unsigned)iss & 0x3f, ec >= 0x24, iss);
	console_printf("  FAR_EL1  0x%016llx%s\n", (unsigned long long)r->far,
		ec >= 0x20 && ec <= 0x25 ? "  (faulting address)" : "  (not valid for this class)");
	console_printf("  ELR_EL1  0x%016llx  SPSR_EL1 0x%016llx (EL%llu%c, DAIF %llu%llu%llu%llu)\n",
		(unsigned long long)r->elr, (unsigned long long)r->spsr,
		(unsigned long long)(r->spsr >> 2) & 3, (r->spsr & 1) ? 'h' : 't',
		(unsigned long long)(r->spsr >> 9) & 1, (unsigned long long)(r->spsr >> 8) & 1,
		(unsigned long long)(r->spsr >> 7) & 1, (unsigned long long)(r->spsr >> 6) & 1);
	print_regs(r);
	int guard = aarch64_stack_guard_cpu(r->sp);
	if (guard >= 0)
		console_printf("  sp is at CPU %d's stack guard page: stack overflow\n", guard);
	fault_exit((uintptr_t)r->elr, (uintptr_t)r->x[29]);
}

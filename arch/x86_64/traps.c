/*
 * arch/x86_64/traps.c - the IDT and the fatal-exception report.
 *
 * The IDT has 256 16-byte gates; we fill the 32 CPU exception vectors
 * (0-31) with interrupt gates (IF cleared on entry) to the stubs in
 * traps.S.  #DF (vector 8) runs on IST1, a dedicated stack (cpu.c).
 *
 *   gate: offset[15:0] selector ist attr(0x8e: P, DPL 0, 64-bit int gate)
 *         offset[31:16] offset[63:32] reserved
 *
 * Every CPU loads the same IDT; each has its own #DF stack (its TSS).
 *
 * x86_exception() prints what a developer needs to find the bug (the
 * vector's name and the CPU it happened on, error code decoded for #PF,
 * RIP, CR2, the registers), then
 * hands over to kernel/'s fault_exit() for the backtrace and the exit
 * status EXIT_FAULT.
 */
#include <stdint.h>
#include <kernel/console.h>
#include <kernel/arch.h>
#include <kernel/exit.h>
#include <kernel/panic.h>
#include <kernel/smp.h>
#include "x86.h"
#include <strata/guard.h>

struct x86_trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;        /* pushed by the CPU */
};

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

#define IDT_ATTR_INTR_GATE 0x8e
#define VEC_NMI 2
#define VEC_DF 8
#define VEC_PF 14

extern const uint64_t x86_exception_stubs[32];

static struct idt_gate idt[256] __attribute__((aligned(16)));

static const char *const exc_names[32] = {
	"#DE divide error",             "#DB debug",
	"NMI",                          "#BP breakpoint",
	"#OF overflow",                 "#BR bound range exceeded",
	"#UD invalid opcode",           "#NM device not available",
	"#DF double fault",             "coprocessor segment overrun",
	"#TS invalid TSS",              "#NP segment not present",
	"#SS stack-segment fault",      "#GP general protection",
	"#PF page fault",               "reserved 15",
	"#MF x87 floating-point error", "#AC alignment check",
	"#MC machine check",            "#XM SIMD floating-point",
	"#VE virtualization",           "#CP control protection",
	"reserved 22",                  "reserved 23",
	"reserved 24",                  "reserved 25",
	"reserved 26",                  "reserved 27",
	"#HV hypervisor injection",     "#VC VMM communication",
	"#SX security",                 "reserved 31",
};

static void idt_set(unsigned vec, uint64_t handler, unsigned ist)
{
	idt[vec] = (struct idt_gate){
		.offset_lo = (uint16_t)handler,
		.selector = X86_SEL_KCODE,
		.ist = (uint8_t)ist,
		.attr = IDT_ATTR_INTR_GATE,
		.offset_mid = (uint16_t)(handler >> 16),
		.offset_hi = (uint32_t)(handler >> 32),
	};
}

void x86_idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void x86_idt_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		idt_set(v, x86_exception_stubs[v], v == VEC_DF ? 1 : 0);
	x86_idt_load();
}

/* #PF error code: bit 0 protection violation (else not present), 1 write,
 * 2 user mode, 3 reserved bit set, 4 instruction fetch. */
static void print_pf_error(uint64_t err, uint64_t cr2)
{
	console_printf("  cause: %s %s%s%s\n", (err & 2) ? "write" : ((err & 16) ? "fetch" : "read"),
		(err & 1) ? "protection violation" : "not-present page",
		(err & 8) ? ", reserved bit set" : "", (err & 4) ? ", user mode" : "");
	console_printf("  CR2 %016lx (faulting address)\n", (unsigned long)cr2);
}

static void print_regs(const struct x86_trap_frame *f)
{
	console_printf("  RIP %016lx  CS %04lx  RFLAGS %016lx\n", f->rip, f->cs, f->rflags);
	console_printf("  RSP %016lx  SS %04lx  CR3    %016lx\n", f->rsp, f->ss,
		(unsigned long)read_cr3());
	console_printf("  RAX %016lx  RBX %016lx  RCX %016lx\n", f->rax, f->rbx, f->rcx);
	console_printf("  RDX %016lx  RSI %016lx  RDI %016lx\n", f->rdx, f->rsi, f->rdi);
	console_printf("  RBP %016lx  R8  %016lx  R9  %016lx\n", f->rbp, f->r8, f->r9);
	console_printf("  R10 %016lx  R11 %016lx  R12 %016lx\n", f->r10, f->r11, f->r12);
	console_printf("  R13 %016lx  R14 %016lx  R15 %016lx\n", f->r13, f->r14, f->r15);
}

static void put_hex(uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	char buf[19] = "0x";

	for (int i = 0; i < 16; i++)
		buf[2 + i] = hex[(v >> (60 - 4 * i)) & 15];
	buf[18] = '\0';
	x86_serial_puts(buf);
}

/* A fault while reporting a fault: console_printf or the backtrace is broken, so
 * say so with raw serial output only and stop. */
static _Noreturn void nested_fault(uint64_t vector, uint64_t rip)
{
	x86_serial_puts("\n*** nested CPU exception, vector ");
	put_hex(vector);
	x86_serial_puts(", RIP ");
	put_hex(rip);
	x86_serial_puts("\n");
	arch_exit(EXIT_FAULT);
}

void x86_exception(struct x86_trap_frame *f);

/* A kernel page fault handed to mm_guard_fault(): true if it was in the
 * guard pool (reported; the access is retried).  A fault taken while this
 * CPU is already inside mm_guard_fault (a bug there, or in the report it
 * prints) is not handed back to it (it holds the guard lock): it takes the
 * fatal path below, as on aarch64 and riscv64. */
static bool guard_fault_handled(unsigned cpu, const struct x86_trap_frame *f, uint64_t cr2)
{
	static volatile unsigned char busy[SMP_MAX_CPUS];

	if (cpu >= SMP_MAX_CPUS || busy[cpu])
		return false;
	busy[cpu] = 1;
	bool handled = mm_guard_fault((const void *)(uintptr_t)cr2,
				      (f->error & 2) ? MM_ACCESS_WRITE : MM_ACCESS_READ,
				      (void *)(uintptr_t)f->rip);
	busy[cpu] = 0;
	return handled;
}

/* Every exception is fatal but two: a page fault in strata's guard pool,
 * which mm_guard_fault() reports (and, told to continue, opens the page),
 * and an NMI asking for a TLB shootdown (smp.c): then we return and
 * traps.S retries the access / resumes. */
void x86_exception(struct x86_trap_frame *f)
{
	uint64_t cr2 = read_cr2();      /* before anything can fault again */
	unsigned cpu = arch_cpu_id();

	if (f->vector == VEC_NMI && x86_tlb_shootdown_nmi())
		return;

	if (f->vector == VEC_PF && !(f->error & 4) && guard_fault_handled(cpu, f, cr2))
		return;

	if (x86_percpu[cpu].trap_depth++)
		nested_fault(f->vector, f->rip);
	console_printf("\n*** CPU exception %lu on CPU %u (APIC id %u): %s, error code 0x%lx\n",
		f->vector, cpu, x86_percpu[cpu].apic_id,
		f->vector < 32 ? exc_names[f->vector] : "?", f->error);
	if (f->vector == VEC_PF)
		print_pf_error(f->error, cr2);
	if (f->vector == VEC_DF)
		console_printf("  (a #DF in the kernel is most often a stack overflow)\n");
	print_regs(f);
	fault_exit(f->rip, f->rbp);
}

/*
 * arch/x86_64/smp.c - x86_64 side of kernel/smp.h: starting the APs.
 *
 *   arch_smp_boot(bi, want)                         (boot CPU, after mm_init)
 *     x86_acpi_cpus()        APIC ids from the MADT (acpi.c)
 *     map the local APIC     MMIO page, uncached (PCD|PWT), no-execute
 *     calibrate the TSC      against 10 ms of PIT channel 2
 *     trampoline -> 0x8000   + params: CR0/CR3/CR4/EFER of this CPU
 *     identity-map 0x8000
 *     for each other APIC id, cpu = 1, 2, ... (dense, in start order):
 *       stack (32 KiB) + #DF stack (16 KiB) from pfa_alloc, mapped with
 *       x86_map_late (unmapped guard page below each)
 *       INIT, 10 ms, SIPI, 200 us, SIPI       (see trampoline.S)
 *       wait for the AP to arrive in x86_ap_main
 *     remove the identity map, release the APs
 *
 * Each AP then flushes its TLB (dropping any trace of the identity map)
 * and enters smp_secondary_main(cpu) in kernel/smp.c, interrupts off.
 *
 * Local APIC (xAPIC, memory-mapped, 32-bit registers 16 bytes apart):
 *   0x020 ID (bits 31:24)    0x300 ICR low: vector, delivery mode
 *   0x310 ICR high: destination APIC id (bits 31:24); written first, as
 *         the write to ICR low sends the IPI; ICR low bit 12 "send
 *         pending" clears once the IPI is delivered.
 *
 * TLB shootdown (x86_tlb_shootdown, for mm_platform_protect in paging.c):
 * invlpg only reaches this CPU's TLB, so after a page is protected the
 * others could still use a stale entry (a use after free unseen).  This
 * kernel never enables interrupts (every CPU runs with IF clear), so a
 * fixed-vector IPI would wait forever; an NMI is taken whatever IF says:
 *
 *   sender (holds shoot.lock)              each other online CPU
 *   shoot.va, shoot.bytes = range
 *   pending[cpu] = 1, NMI to its APIC id -> NMI (vector 2, traps.c):
 *                                           x86_tlb_shootdown_nmi():
 *                                           pending? invlpg each page (or
 *                                           reload CR3 for a big range),
 *   wait until every pending[] is 0   <--   pending[cpu] = 0, iretq
 *   (bounded: 5 s of TSC, then -1)
 *
 * The bound is generous because under TCG on a loaded host a vCPU thread
 * can go unscheduled for a long time (100 ms was seen to expire on 4
 * vCPUs and 2 busy cores).  A CPU that missed it still takes that NMI
 * later: stray[cpu] counts those, and such an NMI flushes its whole TLB
 * instead of being reported as an unexpected NMI.
 *
 * The sender may itself be spinning with IF clear, even in a fault
 * handler; a CPU spinning on shoot.lock still takes NMIs, so two senders
 * cannot deadlock.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <kernel/boot.h>
#include <kernel/console.h>
#include <kernel/smp.h>
#include "x86.h"

#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define ICR_INIT        0x00000500u
#define ICR_STARTUP     0x00000600u
#define ICR_ASSERT      0x00004000u
#define ICR_PENDING     0x00001000u
#define ICR_NMI         0x00000400u

#define SHOOT_WAIT_MS   5000        /* bounded wait for the acknowledgements */
#define SHOOT_INVLPG_MAX 32         /* pages; beyond: reload CR3 */

#define PIT_HZ          1193182u
#define AP_WAIT_MS      500         /* TCG: generous */

struct x86_trampoline_params {    /* trampoline.S: x86_trampoline_params */
	uint64_t cr0, cr3, cr4, efer, percpu, stack, entry;
};

extern const char x86_trampoline_start[], x86_trampoline_end[],
	x86_trampoline_params[];

static volatile uint32_t *lapic;
static uint64_t tsc_per_ms;
static atomic_uint ap_arrived;       /* cpu number of the AP that arrived */
static atomic_uint ap_release;       /* identity map gone: go on */
uint64_t x86_ap_start_cycles[SMP_MAX_CPUS];   /* INIT -> arrived, per AP */

_Noreturn void x86_ap_main(struct x86_percpu *pc);

/* ------------------------------------------------------------ time */

/* TSC ticks in 10 ms of PIT channel 2 (mode 0, gate on, speaker off):
 * OUT2, port 0x61 bit 5, goes high when the count reaches 0. */
static void tsc_calibrate(void)
{
	uint16_t count = PIT_HZ / 100;
	uint8_t p61 = inb(0x61);
	uint64_t t0, spins = 0;

	outb(0x61, (p61 & ~0x02) | 0x01);
	outb(0x43, 0xb0);                    /* ch 2, lobyte/hibyte, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	t0 = rdtsc();
	while (!(inb(0x61) & 0x20) && ++spins < 10000000)
		;
	tsc_per_ms = (rdtsc() - t0) / 10;
	outb(0x61, p61);
	if (spins >= 10000000 || tsc_per_ms < 1000) {
		console_printf("smp: PIT calibration failed, assuming a 4 GHz TSC\n");
		tsc_per_ms = 4000000;
	}
}

static void delay_us(uint64_t us)
{
	uint64_t end = rdtsc() + us * tsc_per_ms / 1000;

	while (rdtsc() < end)
		arch_cpu_relax();
}

/* ------------------------------------------------------------ local APIC */

static void lapic_write(unsigned reg, uint32_t v)
{
	lapic[reg / 4] = v;
}

static uint32_t lapic_read(unsigned reg)
{
	return lapic[reg / 4];
}

/* Send one IPI and wait (up to 1 ms) until the APIC has delivered it. */
static int lapic_ipi(uint8_t apic_id, uint32_t icr)
{
	uint64_t end;

	lapic_write(LAPIC_ICR_HI, (uint32_t)apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	end = rdtsc() + tsc_per_ms;
	while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
		if (rdtsc() > end)
			return -1;
	return 0;
}

static int lapic_map(uint64_t phys)
{
	if (!(rdmsr(X86_MSR_APIC_BASE) & (1u << 11))) {
		console_printf("smp: local APIC disabled (APIC_BASE MSR)\n");
		return -1;
	}
	lapic = x86_map_late(phys, PAGE_SIZE, PTE_W | PTE_PCD | PTE_PWT |
			     (x86_has_nx() ? PTE_NX : 0));
	return 0;
}

/* ------------------------------------------------------------ the APs */

/* A stack from the page-frame allocator at a fresh address with an
 * unmapped guard page below it; returns its top, 0 if out of memory. */
static uint64_t stack_alloc(uint64_t size, unsigned order)
{
	uint64_t pa = pfa_alloc(order, 0);

	if (!pa)
		return 0;
	return (uint64_t)(uintptr_t)x86_map_late(pa, size, PTE_W | (x86_has_nx() ? PTE_NX : 0)) + size;
}

static struct x86_trampoline_params *trampoline_install(void)
{
	uint8_t *page = (uint8_t *)(uintptr_t)(X86_DIRECT_MAP + X86_TRAMPOLINE);
	struct x86_trampoline_params *p =
		(void *)(page + (x86_trampoline_params - x86_trampoline_start));

	memcpy(page, x86_trampoline_start, (size_t)(x86_trampoline_end - x86_trampoline_start));
	p->cr0 = read_cr0();
	p->cr3 = read_cr3();
	p->cr4 = read_cr4();
	p->efer = rdmsr(X86_MSR_EFER) & ~(uint64_t)X86_EFER_LMA;
	p->entry = (uint64_t)(uintptr_t)x86_ap_main;
	x86_identity_map_page(X86_TRAMPOLINE);
	return p;
}

/* The trampoline page must be RAM (direct-mapped) and CR3 below 4 GiB
 * (the trampoline loads it in 32-bit mode). */
static int trampoline_usable(void)
{
	if (!x86_pte_lookup(X86_DIRECT_MAP + X86_TRAMPOLINE) ||
	    (uint64_t)(x86_trampoline_end - x86_trampoline_start) > PAGE_SIZE ||
	    read_cr3() >= 0x100000000ull) {
		console_printf("smp: no usable trampoline page at 0x%x\n", X86_TRAMPOLINE);
		return 0;
	}
	return 1;
}

static int wait_arrival(unsigned cpu)
{
	uint64_t end = rdtsc() + AP_WAIT_MS * tsc_per_ms;

	while (atomic_load_explicit(&ap_arrived, memory_order_acquire) != cpu)
		if (rdtsc() > end)
			return -1;
	return 0;
}

/* INIT-SIPI-SIPI to one AP, which becomes `cpu`; 0 once it has arrived. */
static int start_ap(struct x86_trampoline_params *tp, unsigned cpu, uint8_t apic_id)
{
	struct x86_percpu *pc = &x86_percpu[cpu];
	uint64_t t0 = rdtsc();

	if (!pc->stack_top) {          /* kept for the next AP if this one fails */
		pc->stack_top = stack_alloc(X86_AP_STACK_SIZE, 3);
		pc->df_stack_top = stack_alloc(X86_DF_STACK_SIZE, 2);
		if (!pc->stack_top || !pc->df_stack_top)
			return -1;
	}
	pc->cpu = cpu;
	tp->percpu = (uint64_t)(uintptr_t)pc;
	tp->stack = pc->stack_top;
	atomic_store(&ap_arrived, 0);
	if (lapic_ipi(apic_id, ICR_INIT | ICR_ASSERT))
		return -1;
	delay_us(10000);
	for (int i = 0; i < 2; i++) {
		if (lapic_ipi(apic_id, ICR_STARTUP | (X86_TRAMPOLINE >> 12)))
			return -1;
		delay_us(200);
	}
	if (wait_arrival(cpu)) {
		lapic_ipi(apic_id, ICR_INIT | ICR_ASSERT);   /* park it again */
		return -1;
	}
	x86_ap_start_cycles[cpu] = rdtsc() - t0;
	return 0;
}

unsigned arch_smp_boot(const struct boot_info *bi, unsigned want)
{
	const struct x86_cpus *c = x86_acpi_cpus();
	struct x86_trampoline_params *tp;
	unsigned cpu = 1;

	(void)bi;
	if (want <= 1 || !trampoline_usable() || lapic_map(c->lapic_phys))
		return 1;
	tsc_calibrate();
	tp = trampoline_install();
	for (unsigned i = 0; i < c->n && cpu < want; i++) {
		if (c->apic_id[i] == x86_percpu[0].apic_id)
			continue;
		if (start_ap(tp, cpu, c->apic_id[i]) == 0)
			cpu++;
		else
			console_printf("smp: CPU with APIC id %u did not start\n", c->apic_id[i]);
	}
	x86_identity_unmap();
	atomic_store_explicit(&ap_release, 1, memory_order_release);
	console_printf("smp: TSC %lu kHz; APs started in", (unsigned long)tsc_per_ms);
	for (unsigned i = 1; i < cpu; i++)
		console_printf(" %lu us", (unsigned long)(x86_ap_start_cycles[i] * 1000 / tsc_per_ms));
	console_printf(" (INIT, 10 ms, SIPI, 200 us, SIPI, arrival)\n");
	return cpu;
}

/* First C on an AP (from trampoline.S), on its own stack, GS base set. */
void x86_ap_main(struct x86_percpu *pc)
{
	x86_idt_load();
	x86_cpu_init_ap(pc);
	atomic_store_explicit(&ap_arrived, pc->cpu, memory_order_release);
	while (!atomic_load_explicit(&ap_release, memory_order_acquire))
		arch_cpu_relax();
	write_cr3(read_cr3());          /* no stale identity-map TLB entries */
	smp_secondary_main(pc->cpu);
}

/* ------------------------------------------------------------ TLB shootdown */

static struct {
	atomic_flag lock;
	uint64_t va, bytes;
} shoot = { ATOMIC_FLAG_INIT, 0, 0 };
static atomic_uint shoot_pending[SMP_MAX_CPUS];
static atomic_uint shoot_stray[SMP_MAX_CPUS];   /* NMIs sent, wait given up */

static void tlb_flush_local(uint64_t va, uint64_t bytes)
{
	if (bytes > SHOOT_INVLPG_MAX * PAGE_SIZE) {
		write_cr3(read_cr3());           /* no global pages in this kernel */
		return;
	}
	for (uint64_t o = 0; o < bytes; o += PAGE_SIZE)
		__asm__ volatile("invlpg (%0)" ::"r"(va + o) : "memory");
}

int x86_tlb_shootdown_nmi(void)
{
	unsigned cpu = arch_cpu_id();

	if (atomic_load_explicit(&shoot_pending[cpu], memory_order_acquire)) {
		tlb_flush_local(shoot.va, shoot.bytes);
		atomic_store_explicit(&shoot_pending[cpu], 0, memory_order_release);
		return 1;
	}
	unsigned stray = atomic_load(&shoot_stray[cpu]);
	if (stray && atomic_compare_exchange_strong(&shoot_stray[cpu], &stray, stray - 1)) {
		write_cr3(read_cr3());           /* a late one: whatever it was for */
		return 1;
	}
	return 0;
}

static int shoot_wait(unsigned n, unsigned self)
{
	uint64_t end = rdtsc() + SHOOT_WAIT_MS * tsc_per_ms;
	int late = 0;

	for (unsigned c = 0; c < n; c++) {
		while (c != self && atomic_load_explicit(&shoot_pending[c], memory_order_acquire)) {
			if (rdtsc() > end) {
				unsigned one = 1;
				if (atomic_compare_exchange_strong(&shoot_pending[c], &one, 0))
					atomic_fetch_add(&shoot_stray[c], 1);
				console_printf("smp: CPU %u did not acknowledge a TLB shootdown "
					       "in %u ms\n", c, SHOOT_WAIT_MS);
				late = -1;
				break;
			}
			/* no pause: under QEMU's MTTCG each pause leaves the
			 * translated code and takes the global lock, which the
			 * CPU taking the NMI needs too */
		}
	}
	return late;
}

int x86_tlb_shootdown(uint64_t va, uint64_t bytes)
{
	unsigned n = smp_ncpus(), self = arch_cpu_id();
	int r = 0;

	if (n <= 1 || !lapic)
		return 0;
	while (atomic_flag_test_and_set_explicit(&shoot.lock, memory_order_acquire))
		arch_cpu_relax();
	shoot.va = va;
	shoot.bytes = bytes;
	for (unsigned c = 0; c < n; c++) {
		if (c == self)
			continue;
		atomic_store_explicit(&shoot_pending[c], 1, memory_order_release);
		if (lapic_ipi((uint8_t)x86_percpu[c].apic_id, ICR_NMI | ICR_ASSERT) != 0)
			r = -1;
	}
	if (shoot_wait(n, self) != 0)
		r = -1;
	atomic_flag_clear_explicit(&shoot.lock, memory_order_release);
	return r;
}

/* ------------------------------------------------------------ kernel/smp.h */

unsigned arch_cpu_count_firmware(void)
{
	return x86_acpi_cpus()->n;
}

unsigned arch_cpu_id(void)
{
	unsigned id;

	__asm__("movl %%gs:0, %0" : "=r"(id));
	return id;
}

unsigned long arch_irq_save(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

void arch_irq_restore(unsigned long flags)
{
	if (flags & (1ul << 9))
		__asm__ volatile("sti" : : : "memory");
}

void arch_cpu_relax(void) { __asm__ volatile("pause"); }

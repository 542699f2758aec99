/*
 * arch/aarch64/smp_entry.S - where a secondary CPU starts running.
 *
 * The boot CPU (smp.c) fills one struct aarch64_ap_boot per CPU, cleans it
 * to the point of coherency (the new CPU reads it with its MMU and caches
 * off, straight from memory), and asks the firmware to start the CPU:
 *
 *   CPU 0 (smp.c)                         firmware (QEMU's PSCI)
 *   -------------                         ----------------------
 *   pfa_alloc: stacks, guard pages unmapped
 *   record = {stacks, cpu, MAIR, TCR,
 *             TTBR0, SCTLR, state}
 *   dc cvac record
 *   hvc/smc #0  x0 = CPU_ON (0xc4000003)
 *               x1 = target MPIDR    ----> powers the CPU on at EL1
 *               x2 = aarch64_secondary_entry    (EL2 with virtualization=on),
 *               x3 = &record                    MMU off, x0 = x3
 *   <---- x0 = 0 or a PSCI error
 *   waits for record.state                    |
 *                                             v
 *                          aarch64_secondary_entry (here), new CPU:
 *                            1. EL2 -> EL1 if needed (boot.S's aarch64_to_el1)
 *                            2. DAIF masked, I-cache invalidated, FP/SIMD on,
 *                               VBAR_EL1 = aarch64_vectors
 *                            3. MAIR/TCR/TTBR0 = the boot CPU's; local TLB
 *                               flushed; SCTLR_EL1 = the boot CPU's (MMU,
 *                               caches on): from now on coherent with CPU 0
 *                            4. SP = its kernel stack, SP_EL0 = its
 *                               exception stack, TPIDR_EL1 = its number
 *                            5. aarch64_secondary_start(record) in smp.c:
 *   sees state = ARRIVED  <-------------------- handshake, then
 *                                               smp_secondary_main(cpu)
 *
 * Until step 3 every load is a Device access to memory and nothing may be
 * stored: a store with the caches off would go around lines CPU 0 may
 * still hold for the same addresses (the stack pages were free-list pages
 * a moment ago), and a later eviction would overwrite it.  So steps 1-3
 * use registers only; x19 keeps the record pointer.
 */
#include "aarch64.h"

	.text
	.global aarch64_secondary_entry
	.type aarch64_secondary_entry, %function
aarch64_secondary_entry:
	mov	x19, x0                  /* struct aarch64_ap_boot * */
	bl	aarch64_to_el1           /* 1 */

	msr	daifset, #0xf            /* 2 */
	ic	iallu
	dsb	nsh
	isb
	mov	x0, #CPACR_FPEN
	msr	cpacr_el1, x0
	adrp	x0, aarch64_vectors
	add	x0, x0, :lo12:aarch64_vectors
	msr	vbar_el1, x0

	ldp	x0, x1, [x19, #AP_MAIR]  /* 3: MAIR, TCR */
	msr	mair_el1, x0
	msr	tcr_el1, x1
	ldp	x0, x1, [x19, #AP_TTBR0] /* TTBR0, SCTLR */
	msr	ttbr0_el1, x0
	isb
	tlbi	vmalle1
	dsb	nsh
	msr	sctlr_el1, x1
	isb

	ldp	x0, x1, [x19, #AP_STACK] /* 4: kernel stack, exception stack */
	mov	sp, x0
	msr	sp_el0, x1
	ldr	x0, [x19, #AP_CPU]
	msr	tpidr_el1, x0

	mov	x29, xzr                 /* root frame: backtraces stop here */
	mov	x30, xzr
	mov	x0, x19
	bl	aarch64_secondary_start  /* 5: never returns */
1:	wfe
	b	1b
	.size aarch64_secondary_entry, . - aarch64_secondary_entry

	.section .note.GNU-stack, "", %progbits

/*
 * arch/x86_64/traps.S - entry stubs for the 32 CPU exception vectors.
 *
 * On an exception the CPU (in 64-bit mode) aligns %rsp down to 16 bytes
 * (or switches to the IST stack named in the IDT entry, for #DF), then
 * pushes SS, RSP, RFLAGS, CS, RIP and, for some vectors, an error code.
 * Each stub pushes a 0 "error code" where the CPU does not, so every
 * vector builds the same frame, then pushes its vector number and the
 * general registers.  The result is struct x86_trap_frame (traps.c):
 *
 *   high   ss  rsp  rflags  cs  rip     <- pushed by the CPU
 *          error code                   <- CPU, or 0 from the stub
 *          vector                       <- stub
 *          rax rbx rcx rdx rsi rdi rbp
 *   low    r8 ... r15                   <- exc_common; %rsp -> r15
 *
 * 22 quadwords from a 16-byte aligned start: %rsp is still 16-byte
 * aligned at the call, as the SysV ABI (and SSE spills) require.
 * Every exception is fatal here but one: a page fault in strata's guard
 * pool (mm_guard_fault said it was reported and may be retried), for
 * which x86_exception returns and the frame is popped and iretq'd.
 */
#include "x86.h"

/* Vectors where the CPU pushes an error code: 8 10-14 17 21 29 30. */
.macro EXC_NOERR vec
	.balign 16
exc_stub_\vec:
	pushq $0
	pushq $\vec
	jmp exc_common
.endm

.macro EXC_ERR vec
	.balign 16
exc_stub_\vec:
	pushq $\vec
	jmp exc_common
.endm

	.text
	EXC_NOERR 0
	EXC_NOERR 1
	EXC_NOERR 2
	EXC_NOERR 3
	EXC_NOERR 4
	EXC_NOERR 5
	EXC_NOERR 6
	EXC_NOERR 7
	EXC_ERR   8
	EXC_NOERR 9
	EXC_ERR   10
	EXC_ERR   11
	EXC_ERR   12
	EXC_ERR   13
	EXC_ERR   14
	EXC_NOERR 15
	EXC_NOERR 16
	EXC_ERR   17
	EXC_NOERR 18
	EXC_NOERR 19
	EXC_NOERR 20
	EXC_ERR   21
	EXC_NOERR 22
	EXC_NOERR 23
	EXC_NOERR 24
	EXC_NOERR 25
	EXC_NOERR 26
	EXC_NOERR 27
	EXC_NOERR 28
	EXC_ERR   29
	EXC_ERR   30
	EXC_NOERR 31

	.balign 16
exc_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	cld
	movq %rsp, %rdi                 /* arg 0: struct x86_trap_frame * */
	movq %rsp, %rbx                 /* callee-saved: the frame, for the return */
	andq $-16, %rsp                 /* already aligned; cheap insurance */
	call x86_exception              /* returns only to retry the access */
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp                  /* vector, error code */
	iretq

/* Addresses of the stubs, for x86_idt_init(). */
	.section .rodata
	.balign 8
	.globl x86_exception_stubs
x86_exception_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_stub_\v
	.endr

	.section .note.GNU-stack, "", @progbits

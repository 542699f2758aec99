/*
 * panic.c - the kernel's way of dying loudly.
 *
 * Every fatal path ends here and leaves three things on the console for
 * the person (or scripts/qemu-test) reading it: what happened, who called,
 * and the chain of callers, then a distinct exit status:
 *
 *     PANIC: pfa: out of metadata space
 *       caller 0xffffffff80104a2c
 *       backtrace:
 *         #0 0xffffffff80104a2c
 *         #1 0xffffffff80100f11
 *     (exit status 2)
 *
 * The backtrace follows frame pointers (the kernel is built with
 * -fno-omit-frame-pointer).  A frame record is two words, caller's fp then
 * return address, at [fp] on x86_64 and aarch64 and at [fp - 16] on riscv64
 * (ARCH_FRAME_RECORD, kernel/arch.h); the boot stub starts with fp = 0,
 * which ends the walk.  scripts/qemu-test turns
 * the addresses into file:line with addr2line.
 *
 * Output goes through console_printf() (kernel/console.h), never through
 * stdio: a panic or fault may come from inside printf or malloc (a strata
 * panic is raised with strata's lock held, a fault may hit with a FILE
 * lock held or a stdio buffer half written).  console_printf formats on
 * the stack with vsnprintf and writes the UART directly: no lock, no
 * allocation, no stdio state.  stdout is unbuffered (kmain), so nothing
 * printed earlier is lost either.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdatomic.h>
#include <kernel/arch.h>
#include <kernel/smp.h>
#include <kernel/exit.h>
#include <kernel/panic.h>
#include <kernel/console.h>


int backtrace_collect(uintptr_t fp, uintptr_t *ret, int max)
{
	int n = 0;
	while (n < max && fp && !(fp & 7)) {
		const uintptr_t *frame = (const uintptr_t *)(fp + ARCH_FRAME_RECORD);
		if (!frame[1])
			break;
		ret[n++] = frame[1];
		if (frame[0] <= fp) /* the stack grows down: callers are above */
			break;
		fp = frame[0];
	}
	return n;
}

void backtrace_print(uintptr_t fp)
{
	uintptr_t ret[32];
	console_printf("  backtrace:\n");
	if (fp & 7) {
		console_printf("    (frame pointer %p misaligned, stop)\n", (void *)fp);
		return;
	}
	int n = backtrace_collect(fp, ret, 32);
	for (int depth = 0; depth < n; depth++)
		console_printf("    #%d %p\n", depth, (void *)ret[depth]);
}

/*
 * The first CPU to fail owns the report; a nested failure on that CPU
 * exits at once; another CPU failing meanwhile waits for the owner to end
 * the run (so two reports never interleave, and the first status wins).
 */
static atomic_uint dying_cpu;     /* CPU number + 1 of the one dying, 0: none */

static void die_once(int status)
{
	unsigned me = arch_cpu_id() + 1, none = 0;

	if (atomic_compare_exchange_strong(&dying_cpu, &none, me))
		return;
	if (none == me) {
		console_printf("\nnested failure while dying; exit %d\n", status);
		arch_exit(status);
	}
	arch_halt();
}

void panic(const char *fmt, ...)
{
	die_once(EXIT_PANIC);
	va_list ap;
	console_printf("\nPANIC: ");
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_printf("\n  caller %p\n", __builtin_return_address(0));
	backtrace_print((uintptr_t)__builtin_frame_address(0));
	console_printf("exit status %d (panic)\n", EXIT_PANIC);
	arch_exit(EXIT_PANIC);
}

void fault_exit(uintptr_t pc, uintptr_t fp)
{
	die_once(EXIT_FAULT);
	console_printf("  faulting pc %p\n", (void *)pc);
	backtrace_print(fp);
	console_printf("exit status %d (fault)\n", EXIT_FAULT);
	arch_exit(EXIT_FAULT);
}

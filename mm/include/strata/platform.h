/*
 * strata/platform.h - the contract between strata and the kernel using it.
 *
 * strata (everything under mm/) needs only the compiler's freestanding
 * headers plus the few hooks below, which the kernel implements.  Memory
 * itself is handed over through the page-frame allocator's setup calls
 * (strata/pfa.h): pfa_setup_begin(direct_map_offset), pfa_add_region(),
 * pfa_reserve(), pfa_setup_end().
 *
 *   kernel                          strata
 *   ------                          ------
 *   mm_platform_write(s, n)   <---  reports, statistics, check failures
 *   mm_platform_panic(msg)    <---  unrecoverable errors (never returns)
 *
 *   optional (mm/platform_default.c has weak single-CPU versions):
 *   mm_cpu_id()               <---  which CPU am I on (per-CPU caches)
 *   mm_cpu_count()                  (not called by strata today: the
 *                                   per-CPU tables are MM_MAX_CPUS long;
 *                                   declared so existing ports link)
 *   mm_irq_save/restore()     <---  interrupts off around per-CPU data and
 *                                   every strata lock, so an interrupt
 *                                   handler may call kmalloc/kfree
 *   mm_platform_cpu_attach()  <---  a context with no CPU id asks for one
 *                                   (hosted build: one per thread)
 *   mm_platform_entropy()     <---  a per-boot secret for free-list
 *                                   hardening (cycle counter, RNG, ...)
 *   mm_platform_release(va,n) <---  whole pages strata is about to give
 *                                   back to the PFA and will not touch
 *                                   (hosted build: madvise them away)
 *   mm_platform_protect(va,n,p) <-  make pages of the direct map
 *                                   inaccessible, read-only or read/write
 *                                   (guard pages: mm/guard.c; hosted build:
 *                                   mprotect; default: unsupported)
 *
 * Rules for mm_cpu_id(): between mm_irq_save() and mm_irq_restore() it
 * returns the same value, and no other context uses that value at the
 * same time (that is what makes the per-CPU fast path lock-free).  A value
 * >= MM_MAX_CPUS (MM_CPU_NONE) means "no per-CPU cache here": strata then
 * uses the locked path, which is always correct, only slower.
 * (mm_platform_cpu_attach, below, says "none" with MM_CPU_NONE either way.)
 *
 * A kernel that wants the hooks inlined into strata's fast paths builds
 * mm/ with -DMM_PLATFORM_INLINE='"its_header.h"'; that header defines
 * mm_cpu_id, mm_irq_save, mm_irq_restore and mm_platform_spin_wait as
 * static inline and declares (or defines) mm_cpu_count, which mm/ never
 * calls (the demo kernel's arch/<arch>/mm_inline.h).  It may also promise
 * a bound on the ids (MM_CPU_ID_LIMIT, below).
 */
#ifndef STRATA_PLATFORM_H
#define STRATA_PLATFORM_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stddef.h>
#include <stdint.h>

/* Write n bytes of log text (no terminating NUL). Must not allocate. */
void mm_platform_write(const char *s, size_t n);

/* Stop the system after a fatal allocator error; msg is one line. */
_Noreturn void mm_platform_panic(const char *msg);

/* ---- CPUs and interrupts ---- */
#include <strata/config.h>   /* MM_MAX_CPUS */
#define MM_CPU_NONE 0xffffffffu

#ifdef MM_PLATFORM_INLINE
#include MM_PLATFORM_INLINE
#else
unsigned mm_cpu_id(void);                 /* < MM_MAX_CPUS, or MM_CPU_NONE
                                           * (or MM_MAX_CPUS: MM_CPU_ID_LIMIT) */
unsigned mm_cpu_count(void);              /* CPUs that may call strata */
unsigned long mm_irq_save(void);          /* interrupts off, old state back */
void mm_irq_restore(unsigned long flags); /* put the saved state back */
/* A strata lock is held by someone else; this CPU has waited `spins`
 * times (1, 2, ...) in this acquisition, with interrupts off.  Pause the
 * core and back off as spins grows; a platform whose lock holders can be
 * preempted (threads) may also yield.  Must not allocate or take strata
 * locks.  Default: return at once (a plain spin). */
void mm_platform_spin_wait(unsigned spins);
#endif

/* The largest value mm_cpu_id() can return.  Default MM_CPU_NONE: any.
 * An inline platform header whose mm_cpu_id() never returns more than
 * MM_MAX_CPUS (and returns MM_MAX_CPUS itself, not MM_CPU_NONE, for "no
 * per-CPU cache here") says so with
 *     #define MM_CPU_ID_LIMIT MM_MAX_CPUS
 * Every per-CPU table of strata is then one entry longer (MM_CPU_SLOTS,
 * the last entry a CPU-less stand-in that stays empty) and the fast paths
 * of kmalloc, kfree, kmem_cache_alloc and kmem_cache_free index it with
 * the id as it is: no compare and branch on the id (mm_cpu_indexable). */
#ifndef MM_CPU_ID_LIMIT
#define MM_CPU_ID_LIMIT MM_CPU_NONE
#endif
#define MM_CPU_SLOTS (MM_CPU_ID_LIMIT <= MM_MAX_CPUS ? MM_MAX_CPUS + 1 : MM_MAX_CPUS)
/* May id index a table of MM_CPU_SLOTS?  Always, under the promise: the
 * compiler then drops the test. */
static inline int mm_cpu_indexable(unsigned id)
{
	return MM_CPU_ID_LIMIT <= MM_MAX_CPUS || id < MM_MAX_CPUS;
}

/* The return address of the function a fast path is inlined into
 * (kmalloc, kfree, malloc, free, kmem_cache_alloc, kmem_cache_free),
 * taken on its slow branches only, for the caller that reports name.
 * Default __builtin_return_address(0).  On aarch64 and RISC-V gcc then
 * keeps the link register in a stack slot for the whole function: a
 * frame, on the fast path too.  An inline platform header may define it
 * as a read of the link register: that is the entry's value anywhere in
 * a function that makes no call and saves no link register, which the
 * demo kernel's build checks of every fast path (scripts/check-fastpath). */
#ifndef MM_FAST_CALLER
#define MM_FAST_CALLER() __builtin_return_address(0)
#endif

/* Called on the slow path when mm_cpu_id() said none (>= MM_MAX_CPUS):
 * give the calling context an id now (and arrange for mm_cpu_detach()
 * when it goes away), or return MM_CPU_NONE.  Default: MM_CPU_NONE. */
unsigned mm_platform_cpu_attach(void);

/* Some bits that differ from boot to boot, called once per kmalloc_init(),
 * in whatever mode and context kmalloc_init runs (possibly before paging
 * or interrupts are set up): it must not allocate, fault or trap.  A
 * cycle counter will do where the kernel may read it (on RISC-V, reading
 * time/cycle in S-mode traps unless M-mode enabled scounteren: check, or
 * use an RNG/the DTB's rng-seed).  Default: a mix of addresses (weak). */
uint64_t mm_platform_entropy(void);

/* [va, va + bytes) is free, page aligned, and goes back to the PFA right
 * after this call; the platform may drop its contents (strata reads
 * nothing from the range after the call: madvise(MADV_DONTNEED) zeroes
 * it).  Default: nothing. */
void mm_platform_release(void *va, size_t bytes);

/* Page protection, for guard pages (mm/guard.c: sampled guarded
 * allocations).  [va, va + bytes) is page aligned, lies in the direct map
 * of RAM strata owns (pages it got from the PFA), and from now on any
 * access the protection forbids must trap, and the kernel's trap handler
 * must ask mm_guard_fault() (strata/guard.h) before treating the fault as
 * its own.  First called from mm_guard_setup() (whatever context that
 * runs in: the whole guard pool, 2 MiB, made MM_PROT_NONE), then with one
 * page at a time from kmalloc/kfree, with a strata lock held and
 * interrupts in the caller's state: it must not call strata and must not
 * sleep; it may split a large mapping (done once, by the first call) and
 * must invalidate the TLB entries it changed.  Returns 0, or -1 if it
 * cannot (then guarded allocations stay off).  Default: -1. */
#define MM_PROT_NONE 0          /* no access */
#define MM_PROT_READ 1          /* read only */
#define MM_PROT_RW   3          /* read and write */
int mm_platform_protect(void *va, size_t bytes, int prot);

#endif

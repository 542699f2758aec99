/*
 * strata/config.h - the tunables a port may set.  Each is a macro with a
 * default here; set it with -D when compiling mm/ (the same value for all
 * of mm/ and for every file that includes strata's headers):
 *
 *   MM_MAX_CPUS     64  per-CPU slots (mm_cpu_id() < MM_MAX_CPUS); each
 *                       costs its magazines' bss, so a 4-CPU port may
 *                       set 4
 *   KM_POOL_SHIFT   14  kmalloc pools of 2^14 = 16 KiB (12..15)
 *   KM_ARENA_SHIFT  20  arenas of 2^20 = 1 MiB, the memory the first
 *                       kmalloc takes from the PFA (> KM_POOL_SHIFT)
 *   STRATA_PREFIX   -   prefix for every public name (strata/names.h)
 *   MM_HAVE_CLZ/CTZ -   1/0: force the clz/ctz instructions on or off
 *                       (default: what the compiler says the target has,
 *                       mm/util.h)
 *   MM_FRAME_RECORD 0   where the frame record {previous frame pointer,
 *                       return address} lies, in words from the frame
 *                       pointer, for tracing's call stacks (mm/trace.c):
 *                       0 on x86_64 and aarch64 (the record is at the
 *                       frame pointer), -2 on RISC-V (ra at fp - 8, the
 *                       previous fp at fp - 16); the default follows the
 *                       compiler's target.  Another ABI sets its own
 *                       (32-bit Arm's APCS frames are not either kind:
 *                       trace with one frame there).
 *
 * The heap's size is what the kernel hands over (pfa_add_region); a
 * port limits it by handing over less.  mm/obj_layout.h checks the
 * geometry's ranges at compile time.
 */
#ifndef STRATA_CONFIG_H
#define STRATA_CONFIG_H

#ifndef MM_MAX_CPUS
#define MM_MAX_CPUS 64
#endif
#ifndef KM_POOL_SHIFT
#define KM_POOL_SHIFT 14                 /* 16 KiB pools */
#endif
#ifndef KM_ARENA_SHIFT
#define KM_ARENA_SHIFT 20                /* 1 MiB arenas */
#endif
/* MM_SAMPLING 0 compiles sampled guarded allocations (mm/guard.c) out of
 * kmalloc: no per-CPU countdown on the fast path, mm_guard_setup() has
 * no effect.  1 (the default): the countdown is there, and sampling is
 * on when the platform has mm_platform_protect(). */
#ifndef MM_SAMPLING
#define MM_SAMPLING 1
#endif
#ifndef MM_FRAME_RECORD
#if defined(__riscv)
#define MM_FRAME_RECORD (-2)             /* {fp, ra} just below the fp */
#else
#define MM_FRAME_RECORD 0                /* {fp, ra} at the fp */
#endif
#endif

#endif

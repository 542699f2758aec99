/*
 * guard.c - suite "debug-guard": sampled guarded allocations (mm/guard.c)
 * inside the kernel, through the arch's mm_platform_protect and its page
 * fault handler.  Boot with test=debug-guard mm.sample=1,continue
 * (scripts/test-all does; test=all leaves debug-* suites out because
 * they need that command line).
 *
 *   a kmalloc is sampled (every one at rate 1): its block ends at a page
 *   end; a 1-byte overflow traps on the guard page and is reported as
 *   such (kind, block, faulting address), then the access is retried and
 *   the kernel goes on (",continue"); a write and a read after free trap
 *   on the protected data page; a second free is reported.
 *
 *   across CPUs (boot with --smp 2 or more): CPU 1 reads a sampled block,
 *   so its TLB holds the page; CPU 0 frees it; CPU 1 reads it again and
 *   that read must trap and be reported as a read after free.  Without a
 *   TLB shootdown in the arch's mm_platform_protect (x86_64: an NMI to
 *   each CPU; aarch64: the inner-shareable TLBI; riscv64: SBI remote
 *   sfence.vma) CPU 1's stale entry lets the read through unseen.
 */
#include <kernel/ktest.h>
#include <strata/debug.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <kernel/smp.h>

static struct mm_bug_report last(void)
{
	struct mm_bug_report r;
	mm_debug_last_report(&r);
	return r;
}

static uint64_t guarded(void)
{
	struct mm_guard_stats st;
	mm_guard_get_stats(&st);
	return st.guarded;
}

/* A sampled block of n bytes (at rate 1 the next kmalloc is one). */
static char *sampled(struct ktest_ctx *t, size_t n)
{
	uint64_t g0 = guarded();
	char *p = kmalloc(n, 0);
	KT_CHECK(t, p && guarded() == g0 + 1, "kmalloc(%zu) = %p not sampled", n, (void *)p);
	size_t span = (n + 15) & ~(size_t)15;      /* right-aligned, 16-byte aligned */
	KT_CHECK(t, p && (((uintptr_t)p + span) & (PAGE_SIZE - 1)) == 0,
		 "%p + %zu does not end at a page end", (void *)p, span);
	return p;
}

KTEST_NAMED("debug-guard", overflow_traps_and_is_reported, guard_overflow);
static void guard_overflow(struct ktest_ctx *t)
{
	struct mm_guard_stats st;
	mm_guard_get_stats(&st);
	KT_REQUIRE(t, st.rate == 1, "boot with mm.sample=1,continue (rate %u)", st.rate);
	char *volatile p = sampled(t, 32);
	uint64_t s0 = last().serial;
	p[32] = 7;                          /* traps; reported; retried */
	struct mm_bug_report r = last();
	KT_CHECK(t, r.serial == s0 + 1 && r.kind == MM_BUG_GUARD_OVERFLOW && r.ptr == p &&
			    r.bad == p + 32 && r.requested == 32,
		 "overflow: serial %lu kind %s ptr %p bad %p", (unsigned long)(r.serial - s0),
		 mm_bug_name(r.kind), r.ptr, r.bad);
	KT_CHECK(t, p[32] == 7, "the retried write did not happen");
	kfree(p);
}

KTEST_NAMED("debug-guard", use_after_free_traps_and_is_reported, guard_use_after_free);
static void guard_use_after_free(struct ktest_ctx *t)
{
	char *volatile p = sampled(t, 48);
	kfree(p);
	uint64_t s0 = last().serial;
	p[5] = 1;                           /* write after free */
	struct mm_bug_report r = last();
	KT_CHECK(t, r.serial == s0 + 1 && r.kind == MM_BUG_USE_AFTER_FREE && r.ptr == p &&
			    r.bad == p + 5 && r.free_site != NULL,
		 "write after free: kind %s ptr %p bad %p", mm_bug_name(r.kind), r.ptr, r.bad);

	char *volatile q = sampled(t, 64);
	kfree(q);
	s0 = last().serial;
	volatile char c = ((volatile char *)q)[9];   /* read after free */
	(void)c;
	r = last();
	KT_CHECK(t, r.serial == s0 + 1 && r.kind == MM_BUG_READ_AFTER_FREE && r.bad == q + 9,
		 "read after free: kind %s bad %p", mm_bug_name(r.kind), r.bad);
}

KTEST_NAMED("debug-guard", second_free_is_reported, guard_second_free);
static void guard_second_free(struct ktest_ctx *t)
{
	char *volatile p = sampled(t, 100);
	kfree(p);
	uint64_t s0 = last().serial;
	kfree(p);
	struct mm_bug_report r = last();
	KT_CHECK(t, r.serial == s0 + 1 && r.kind == MM_BUG_DOUBLE_FREE && r.ptr == p,
		 "double free: kind %s ptr %p", mm_bug_name(r.kind), r.ptr);
	/* the slot was protected again: a later access still traps */
	s0 = last().serial;
	p[0] = 1;
	KT_CHECK(t, last().serial == s0 + 1 && last().kind == MM_BUG_USE_AFTER_FREE,
		 "write after the second free not reported");
}

struct cross_cpu {
	struct smp_barrier touched, freed;
	char *volatile p;
	volatile char seen;
	uint64_t serial_before;
	struct mm_bug_report r;
};

static void cross_cpu_fn(unsigned cpu, void *arg)
{
	struct cross_cpu *x = arg;

	if (cpu == 1)
		x->seen = ((volatile char *)x->p)[3];     /* CPU 1's TLB maps the page */
	smp_barrier_wait(&x->touched);
	if (cpu == 0)
		kfree(x->p);                              /* protected: on every CPU? */
	smp_barrier_wait(&x->freed);
	if (cpu == 1) {
		x->serial_before = last().serial;
		volatile char c = ((volatile char *)x->p)[7];   /* read after free */
		(void)c;
		x->r = last();
	}
}

KTEST_NAMED("debug-guard", use_after_free_on_another_cpu_is_reported, guard_cross_cpu);
static void guard_cross_cpu(struct ktest_ctx *t)
{
	static struct cross_cpu x;

	KT_REQUIRE(t, smp_ncpus() >= 2, "boot with --smp 2 or more (%u CPU)", smp_ncpus());
	x = (struct cross_cpu){ .p = sampled(t, 24) };
	x.p[3] = 42;
	smp_run(cross_cpu_fn, &x);
	KT_CHECK(t, x.seen == 42, "CPU 1 read %d before the free, not 42", x.seen);
	KT_CHECK(t, x.r.serial == x.serial_before + 1 && x.r.kind == MM_BUG_READ_AFTER_FREE &&
			    x.r.ptr == x.p && x.r.bad == x.p + 7 && x.r.free_site != NULL,
		 "CPU 1's read after CPU 0's free: %lu report(s), kind %s ptr %p bad %p "
		 "(a stale TLB entry on CPU 1?)", (unsigned long)(x.r.serial - x.serial_before),
		 mm_bug_name(x.r.kind), x.r.ptr, x.r.bad);
}

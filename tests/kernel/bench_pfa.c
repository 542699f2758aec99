/*
 * bench_pfa.c - suite "bench-pfa": page-frame allocator cost in the guest.
 *
 *     make run KARGS="test=bench-pfa"         (or with iters=N)
 *     scripts/qemu-run --icount ... -- test=bench-pfa
 *
 * The same workloads as the host benchmark (tests/bench/bench_pfa.c), on
 * the live PFA, timed with arch_cycles().  Under QEMU's -icount shift=0
 * the guest clock advances one nanosecond per instruction, so the cycle
 * counter counts instructions: the x86 TSC and the riscv64 cycle CSR one
 * per instruction, the aarch64 CNTVCT (62.5 MHz) one per 16; the
 * "insns/pair" column applies
 * that factor and is only meaningful with --icount.  Without icount the
 * cycles are TCG wall-clock time.
 *
 *   order0-fast   alloc(0)+free with free order-0 blocks whose buddies are
 *                 in use (no split, no merge)
 *   order0-split  alloc(0)+free with no free block below order 10
 *   mixed-0-3     steady state of live blocks: free one, allocate orders 0..3
 *   mixed-0-10    the same with orders 0..10
 *   order0-batch  4096 allocations, then 4096 frees
 *
 * Every workload gives back what it took: the suite ends with the free
 * lists as it found them and pfa_check() clean (it still reports "ok").
 */
#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/ktest.h>
#include <stdio.h>
#include <string.h>
#include <strata/pfa.h>

#define HOLD 8192
static uint64_t hold[HOLD];
static unsigned nhold;
static struct pfa_stats st0, st;

static unsigned icount_factor(const struct ktest_ctx *t)
{
	return strcmp(t->bi->arch, "aarch64") == 0 ? 16 : 1;
}

static void report(struct ktest_ctx *t, const char *name, uint64_t pairs, uint64_t cycles)
{
	uint64_t c100 = pairs ? cycles * 100 / pairs : 0;    /* 1/100 cycle */
	uint64_t i10 = pairs ? cycles * icount_factor(t) * 10 / pairs : 0;
	kt_log("bench-pfa %-13s %8llu pairs %6llu.%02llu cycles/pair  (icount: %llu.%llu insns/pair)\n",
	       name, (unsigned long long)pairs, (unsigned long long)(c100 / 100),
	       (unsigned long long)(c100 % 100), (unsigned long long)(i10 / 10),
	       (unsigned long long)(i10 % 10));
}

static void hold_block(uint64_t pa, unsigned order)
{
	if (pa && nhold < HOLD)
		hold[nhold++] = pa | order;
	else if (pa)
		pfa_free(pa, order);
}

static void release_held(void)
{
	while (nhold) {
		uint64_t e = hold[--nhold];
		pfa_free(e & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(e & (PAGE_SIZE - 1)));
	}
}

static uint64_t loop_order0(uint64_t n)
{
	uint64_t c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		phys_addr_t pa = pfa_alloc(0, 0);
		pfa_free(pa, 0);
	}
	return arch_cycles() - c0;
}

/* Free order-0 pages whose buddies stay allocated. */
static void fragment_order0(void)
{
	unsigned n = 0;
	for (; n < 4096; n++) {
		uint64_t pa = pfa_alloc(0, 0);
		if (!pa)
			break;
		hold[nhold++] = pa;
	}
	unsigned keep = 0;
	for (unsigned i = 0; i < nhold; i++) {
		if ((hold[i] >> PAGE_SHIFT) & 1)
			hold[keep++] = hold[i];
		else
			pfa_free(hold[i], 0);
	}
	nhold = keep;
}

/* Take every free block of order < PFA_MAX_ORDER. */
static int drain_small_orders(void)
{
	for (unsigned k = 0; k < PFA_MAX_ORDER; k++) {
		pfa_get_stats(&st);
		for (uint64_t n = st.free_blocks[k]; n; n--) {
			if (nhold == HOLD)
				return -1;
			hold_block(pfa_alloc(k, 0), k);
		}
	}
	pfa_get_stats(&st);
	return st.free_blocks[PFA_MAX_ORDER] ? 0 : -1;
}

#define LIVE 1024
#define TABLE 4096
static uint64_t live[LIVE];
static uint16_t slot_of[TABLE];
static uint8_t order_of[TABLE];

static uint64_t loop_mixed(struct ktest_ctx *t, unsigned max_order, uint64_t n, unsigned *nlive)
{
	/* live set no larger than a quarter of free memory on average */
	pfa_get_stats(&st);
	uint64_t avg = ((2ULL << max_order) - 1) / (max_order + 1);
	uint64_t cap = st.free_pages / 4 / avg;
	unsigned m = cap < LIVE ? (unsigned)cap : LIVE;
	if (m < 16)
		m = 16;
	for (unsigned i = 0; i < TABLE; i++) {
		slot_of[i] = (uint16_t)kt_rand_below(t, m);
		order_of[i] = (uint8_t)kt_rand_below(t, max_order + 1);
	}
	for (unsigned i = 0; i < m; i++)
		live[i] = pfa_alloc(order_of[i], 0) | order_of[i];

	uint64_t c0 = arch_cycles();
	for (uint64_t i = 0; i < n; i++) {
		unsigned x = (unsigned)i & (TABLE - 1);
		uint64_t *s = &live[slot_of[x]];
		if (*s >= PAGE_SIZE)    /* an allocation may have failed */
			pfa_free(*s & ~(uint64_t)(PAGE_SIZE - 1), (unsigned)(*s & (PAGE_SIZE - 1)));
		unsigned k = order_of[x];
		*s = pfa_alloc(k, 0) | k;
	}
	uint64_t dc = arch_cycles() - c0;

	for (unsigned i = 0; i < m; i++)
		if (live[i] & ~(uint64_t)(PAGE_SIZE - 1))
			pfa_free(live[i] & ~(uint64_t)(PAGE_SIZE - 1),
				 (unsigned)(live[i] & (PAGE_SIZE - 1)));
	*nlive = m;
	return dc;
}

#define BATCH 4096
static uint64_t batch[BATCH];

static uint64_t loop_batch(uint64_t rounds)
{
	uint64_t c0 = arch_cycles();
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < BATCH; i++)
			batch[i] = pfa_alloc(0, 0);
		for (unsigned i = 0; i < BATCH; i++)
			pfa_free(batch[i], 0);
	}
	return arch_cycles() - c0;
}

static void bench_pfa_run(struct ktest_ctx *t);
KTEST_NAMED("bench-pfa", run, bench_pfa_run);

static void bench_pfa_run(struct ktest_ctx *t)
{
	uint64_t n = t->iters ? t->iters : 200000;
	unsigned m;

	pfa_get_stats(&st0);
	uint64_t managed = st0.total_pages * PAGE_SIZE;
	uint64_t milli = managed ? st0.metadata_bytes * 100000 / managed : 0;
	kt_log("bench-pfa %s map: metadata %llu bytes / managed %llu bytes = %llu.%03llu%%\n",
	       t->bi->arch, (unsigned long long)st0.metadata_bytes, (unsigned long long)managed,
	       (unsigned long long)(milli / 1000), (unsigned long long)(milli % 1000));

	fragment_order0();
	loop_order0(n / 20);
	report(t, "order0-fast", n, loop_order0(n));
	release_held();

	if (drain_small_orders() == 0) {
		report(t, "order0-split", n / 4, loop_order0(n / 4));
	} else {
		kt_log("bench-pfa order0-split skipped (too many small free blocks)\n");
	}
	release_held();

	uint64_t dc = loop_mixed(t, 3, n, &m);
	report(t, "mixed-0-3", n, dc);
	dc = loop_mixed(t, PFA_MAX_ORDER, n / 10, &m);
	report(t, "mixed-0-10", n / 10, dc);
	kt_log("bench-pfa mixed-0-10 with %u live blocks\n", m);

	uint64_t rounds = n / BATCH ? n / BATCH : 1;
	report(t, "order0-batch", rounds * BATCH, loop_batch(rounds));

	pfa_get_stats(&st);
	KT_CHECK(t, st.free_pages == st0.free_pages, "free pages %llu, before %llu",
		 (unsigned long long)st.free_pages, (unsigned long long)st0.free_pages);
	for (unsigned k = 0; k <= PFA_MAX_ORDER; k++)
		KT_CHECK(t, st.free_blocks[k] == st0.free_blocks[k], "order %u blocks changed", k);
	KT_CHECK(t, pfa_check() == 0, "pfa_check");
}

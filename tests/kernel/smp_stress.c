/*
 * smp_stress.c - suite "smp-stress": the per-CPU layer under real
 * concurrency (run with SMP=4; meaningful only without -icount, which
 * serialises the vCPUs).
 *
 *   CPU a                         ring[a][b] (single producer a,
 *   allocate (kmalloc of mixed     single consumer b, lock-free)      CPU b
 *   sizes, 3 kmem caches)  ------> {ptr, size, kind, serial} ------> verify
 *   stamp owner + serial +                                           stamp,
 *   checksum into the object                                         free it
 *   keep some, free them later                                       (a remote
 *   itself                                                           free)
 *
 * Every object carries {owner, serial, kind, size, checksum of its body};
 * each CPU keeps the serials it allocated in a bitmap and marks them
 * freed exactly once, whoever frees them.  A block handed out twice would
 * be stamped by two CPUs and fail its checksum; a lost one would leave a
 * serial unfreed; a double hand-over would free a serial twice.  At the
 * end: allocated = freed = the count of serials, every CPU drains its
 * magazines, the caches are destroyed with nothing live, and after
 * mm_reclaim() the PFA has exactly the free pages it had before.
 *
 * Under fault injection (a FAULT_INJECT=1 kernel with mm.fault=...,
 * strata/fault.h) an allocation may fail, but only while a fault was
 * injected (on some CPU); the failed serials count as never handed out
 * and every other check holds as it is.
 */
#include <stdatomic.h>
#include <kernel/arch.h>
#include <kernel/ktest.h>
#include <kernel/smp.h>
#include <string.h>
#include <strata/fault.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>

#define RING 128
#define MAX_OPS_PER_CPU 400000u

struct msg {
	void *p;
	uint32_t serial;      /* owner in the top 4 bits */
	uint16_t kind;        /* 0: kmalloc, 1..3: cache index + 1 */
	uint16_t pad;
	uint32_t size;
};

struct ring {
	_Alignas(64) atomic_uint head;   /* written by the consumer */
	_Alignas(64) atomic_uint tail;   /* written by the producer */
	struct msg m[RING];
};

struct hdr {            /* at the start of every object */
	uint32_t serial;
	uint32_t size;
	uint64_t sum;       /* of the body after the header */
};

struct stress {
	struct ring ring[SMP_MAX_CPUS][SMP_MAX_CPUS];   /* [from][to] */
	struct kmem_cache *cache[3];
	struct smp_barrier bar;
	unsigned ops;
	uint64_t seed;
	atomic_uint producers_done;
	/* per CPU results */
	uint64_t allocated[SMP_MAX_CPUS], freed_local[SMP_MAX_CPUS],
		 freed_remote[SMP_MAX_CPUS], sent[SMP_MAX_CPUS], failures[SMP_MAX_CPUS],
		 faulted[SMP_MAX_CPUS];
	char why[SMP_MAX_CPUS][96];
	/* serials: bit set = freed, per owner.  32-bit words, not bytes:
	 * RISC-V has no byte-sized atomics, and gcc 12 turns a byte
	 * atomic_exchange into a call to libatomic, which a kernel lacks. */
	atomic_uint freed[SMP_MAX_CPUS][MAX_OPS_PER_CPU / 32];
};

static const size_t cache_size[3] = { 64, 200, 5000 };

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t body_sum(const struct hdr *h)
{
	const unsigned char *b = (const unsigned char *)(h + 1);
	size_t n = h->size - sizeof *h;
	uint64_t s = h->serial * 0x9E3779B97F4A7C15ULL;
	if (n > 512)
		n = 512;   /* the head of the body: enough to see a second owner */
	for (size_t i = 0; i < n; i++)
		s = (s ^ b[i]) * 0x100000001B3ULL;
	return s;
}

static void stamp(void *p, uint32_t serial, uint32_t size)
{
	struct hdr *h = p;
	unsigned char *b = (unsigned char *)(h + 1);
	size_t n = size - sizeof *h;
	h->serial = serial;
	h->size = size;
	if (n > 512)
		n = 512;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(serial * 31 + i);
	h->sum = body_sum(h);
}

static int fail(struct stress *s, unsigned cpu, const char *what, const void *p, uint32_t serial)
{
	if (!s->failures[cpu]++)
		snprintf(s->why[cpu], sizeof s->why[cpu], "%s: object %p serial %#x", what, p,
			 (unsigned)serial);
	return 0;
}

/* Set serial idx's freed bit; whether it was set already. */
static int mark_freed(struct stress *s, unsigned owner, unsigned idx)
{
	unsigned bit = 1u << idx % 32;
	return (atomic_fetch_or(&s->freed[owner][idx / 32], bit) & bit) != 0;
}

/* Check and free one object; mark its serial freed exactly once. */
static void release(struct stress *s, unsigned cpu, const struct msg *m, int remote)
{
	const struct hdr *h = m->p;
	unsigned owner = m->serial >> 28, idx = m->serial & 0x0fffffff;

	if (h->serial != m->serial || h->size != m->size || h->sum != body_sum(h))
		fail(s, cpu, "object changed while live", m->p, m->serial);
	if (mark_freed(s, owner, idx))
		fail(s, cpu, "serial freed twice", m->p, m->serial);
	if (m->kind == 0)
		kfree(m->p);
	else
		kmem_cache_free(s->cache[m->kind - 1], m->p);
	if (remote)
		s->freed_remote[cpu]++;
	else
		s->freed_local[cpu]++;
}

static void drain_inbox(struct stress *s, unsigned cpu)
{
	for (unsigned from = 0; from < smp_ncpus(); from++) {
		struct ring *r = &s->ring[from][cpu];
		unsigned head = atomic_load_explicit(&r->head, memory_order_relaxed);
		unsigned tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		while (head != tail) {
			release(s, cpu, &r->m[head % RING], 1);
			head++;
		}
		atomic_store_explicit(&r->head, head, memory_order_release);
	}
}

static int send(struct stress *s, unsigned from, unsigned to, const struct msg *m)
{
	struct ring *r = &s->ring[from][to];
	unsigned tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
		return 0;
	r->m[tail % RING] = *m;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 1;
}

static uint32_t pick_size(uint64_t r)
{
	unsigned k = r % 100;
	r >>= 8;
	if (k < 60)
		return 16 + (uint32_t)(r % 240);
	if (k < 90)
		return 256 + (uint32_t)(r % 1792);
	return 2049 + (uint32_t)(r % 30000);   /* page runs */
}

/* Faults injected so far, on every CPU (0 without fault injection). */
static uint64_t faults_injected(void)
{
	struct mm_fault_stats st;
	mm_fault_get(MM_FAULT_ALL, &st);
	return st.injected;
}

static void worker(unsigned cpu, void *arg)
{
	struct stress *s = arg;
	uint64_t seed = s->seed * 0x9E3779B97F4A7C15ULL + cpu + 1;
	enum { KEEP = 64 };
	struct msg keep[KEEP];
	unsigned nkeep = 0, n = smp_ncpus();

	smp_barrier_wait(&s->bar);
	for (unsigned i = 0; i < s->ops; i++) {
		uint64_t r = rnd(&seed);
		struct msg m = { .serial = (cpu << 28) | i, .kind = (uint16_t)(r % 4) };
		m.size = m.kind ? (uint32_t)cache_size[m.kind - 1] : pick_size(r >> 8);
		uint64_t injected = faults_injected();
		m.p = m.kind ? kmem_cache_alloc(s->cache[m.kind - 1], 0) : kmalloc(m.size, 0);
		if (!m.p) {
			if (faults_injected() != injected)
				s->faulted[cpu]++;       /* failed on purpose */
			else
				fail(s, cpu, "allocation failed", NULL, m.serial);
			mark_freed(s, cpu, i);
			continue;
		}
		s->allocated[cpu]++;
		stamp(m.p, m.serial, m.size);
		unsigned to = (unsigned)((r >> 40) % n);
		if (to != cpu && ((r >> 50) & 1) && send(s, cpu, to, &m)) {
			s->sent[cpu]++;
		} else if (nkeep < KEEP) {
			keep[nkeep++] = m;
		} else {
			unsigned j = (unsigned)((r >> 20) % KEEP);
			release(s, cpu, &keep[j], 0);
			keep[j] = m;
		}
		if ((i & 15) == 0)
			drain_inbox(s, cpu);
	}
	while (nkeep)
		release(s, cpu, &keep[--nkeep], 0);
	/* everyone stops producing, then the inboxes empty for good */
	atomic_fetch_add(&s->producers_done, 1);
	while (atomic_load(&s->producers_done) < n)
		drain_inbox(s, cpu);
	drain_inbox(s, cpu);
	smp_barrier_wait(&s->bar);
	drain_inbox(s, cpu);
	mm_cpu_drain();            /* this CPU's magazines back to the depots */
	smp_barrier_wait(&s->bar);
}

static uint64_t free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

KTEST_NAMED("smp-stress", larson, smp_stress_larson);
static void smp_stress_larson(struct ktest_ctx *t)
{
	static struct stress s;
	unsigned n = smp_ncpus();

	memset(&s, 0, sizeof s);
	s.ops = t->iters ? (unsigned)t->iters : 60000;
	KT_REQUIRE(t, s.ops <= MAX_OPS_PER_CPU, "iters= at most %u", MAX_OPS_PER_CPU);
	s.seed = t->seed;
	int paused = mm_fault_pause(1);   /* mm.fault=: the setup never fails */
	mm_reclaim();
	uint64_t free0 = free_pages();
	s.cache[0] = kmem_cache_create("stress-64", cache_size[0], 0, KMEM_HWCACHE_ALIGN, NULL);
	s.cache[1] = kmem_cache_create("stress-200", cache_size[1], 0, 0, NULL);
	s.cache[2] = kmem_cache_create("stress-5000", cache_size[2], 0, 0, NULL);
	KT_REQUIRE(t, s.cache[0] && s.cache[1] && s.cache[2], "caches");

	mm_fault_pause(paused);
	uint64_t c0 = arch_cycles();
	smp_run(worker, &s);
	uint64_t dc = arch_cycles() - c0;
	mm_fault_pause(1);

	uint64_t alloc = 0, local = 0, remote = 0, sent = 0, faulted = 0;
	for (unsigned c = 0; c < n; c++) {
		KT_CHECK(t, s.failures[c] == 0, "cpu %u: %llu failures, first: %s", c,
			 (unsigned long long)s.failures[c], s.why[c]);
		alloc += s.allocated[c];
		local += s.freed_local[c];
		remote += s.freed_remote[c];
		sent += s.sent[c];
		faulted += s.faulted[c];
		for (unsigned i = 0; i < s.ops; i++)
			if (!(atomic_load(&s.freed[c][i / 32]) & 1u << i % 32)) {
				KT_CHECK(t, 0, "cpu %u serial %u never freed (lost)", c, i);
				break;
			}
	}
	kt_log("smp-stress: %u CPUs x %u ops in %llu Mcycles: %llu allocated, %llu freed "
	       "locally, %llu freed by another CPU (%llu sent), %llu failed on purpose\n", n,
	       s.ops, (unsigned long long)(dc >> 20), (unsigned long long)alloc,
	       (unsigned long long)local, (unsigned long long)remote, (unsigned long long)sent,
	       (unsigned long long)faulted);
	KT_CHECK(t, alloc + faulted == (uint64_t)n * s.ops, "allocated %llu (+ %llu failed on "
		 "purpose) of %llu", (unsigned long long)alloc, (unsigned long long)faulted,
		 (unsigned long long)n * s.ops);
	KT_CHECK(t, local + remote == alloc, "freed %llu + %llu, allocated %llu",
		 (unsigned long long)local, (unsigned long long)remote, (unsigned long long)alloc);
	KT_CHECK(t, remote == sent, "sent %llu, received %llu", (unsigned long long)sent,
		 (unsigned long long)remote);
	if (n > 1)
		KT_CHECK(t, remote > 0, "nothing crossed CPUs");
	KT_CHECK(t, kmalloc_check() == 0 && kmem_cache_check_all() == 0 && pfa_check() == 0,
		 "allocator checks failed");
	for (int i = 0; i < 3; i++)
		KT_CHECK(t, kmem_cache_destroy(s.cache[i]) == 0, "cache %d has live objects", i);
	mm_reclaim();
	KT_CHECK(t, free_pages() == free0, "PFA free pages %llu, %llu before",
		 (unsigned long long)free_pages(), (unsigned long long)free0);
	mm_fault_pause(paused);
}

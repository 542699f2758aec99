/*
 * tsan_percpu.c - the smp-stress workload (tests/kernel/smp_stress.c) with
 * pthreads, built with -fsanitize=thread: every thread is a "CPU" with its
 * own magazines; objects of mixed sizes and three kmem caches cross
 * threads through lock-free rings and are freed by their receiver.  Any
 * data race in the per-CPU layer, the depots or the locked paths is a
 * ThreadSanitizer report (which fails the program: halt_on_error=1 via
 * __tsan_default_options below).  Counts reconcile exactly and, after
 * every thread has detached its caches and mm_reclaim(), the PFA has all
 * its pages back.
 *
 * This file is also the platform: a thread's CPU id is a thread-local
 * set when the thread starts (ids 0..THREADS-1), as a kernel would do.
 */
#include "harness.h"
#include "host_ram.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "halt_on_error=1:abort_on_error=1:report_signal_unsafe=0";
}

#define THREADS 4
#define OPS     40000u
#define RING    128
#define RAM     (256u << 20)

static __thread unsigned my_cpu = MM_CPU_NONE;
unsigned mm_cpu_id(void) { return my_cpu; }
unsigned mm_cpu_count(void) { return THREADS; }
unsigned long mm_irq_save(void) { return 0; }
void mm_irq_restore(unsigned long f) { (void)f; }

struct msg { void *p; uint32_t serial, size; int kind; };
struct ring {
	_Alignas(64) atomic_uint head;
	_Alignas(64) atomic_uint tail;
	struct msg m[RING];
};
struct hdr { uint32_t serial, size; uint64_t sum; };

static struct ring rings[THREADS][THREADS];
static struct kmem_cache *cache[3];
static const uint32_t cache_size[3] = { 48, 320, 6000 };
static atomic_uchar freed[THREADS][OPS];
static atomic_uint producers_done;
static atomic_ulong allocated, freed_local, freed_remote, sent, failures;
static pthread_barrier_t bar;

static uint64_t sum_of(const struct hdr *h)
{
	const unsigned char *b = (const unsigned char *)(h + 1);
	size_t n = h->size - sizeof *h;
	uint64_t s = h->serial * 0x9E3779B97F4A7C15ULL;
	if (n > 256)
		n = 256;
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
	for (size_t i = 0; i < (n > 256 ? 256 : n); i++)
		b[i] = (unsigned char)(serial * 31 + i);
	h->sum = sum_of(h);
}

static void release(const struct msg *m, int remote)
{
	const struct hdr *h = m->p;
	if (h->serial != m->serial || h->size != m->size || h->sum != sum_of(h))
		atomic_fetch_add(&failures, 1);
	if (atomic_exchange(&freed[m->serial >> 24][m->serial & 0xffffff], 1))
		atomic_fetch_add(&failures, 1);
	if (m->kind)
		kmem_cache_free(cache[m->kind - 1], m->p);
	else
		kfree(m->p);
	atomic_fetch_add(remote ? &freed_remote : &freed_local, 1);
}

static void drain_inbox(unsigned me)
{
	for (unsigned from = 0; from < THREADS; from++) {
		struct ring *r = &rings[from][me];
		unsigned head = atomic_load_explicit(&r->head, memory_order_relaxed);
		unsigned tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		for (; head != tail; head++)
			release(&r->m[head % RING], 1);
		atomic_store_explicit(&r->head, head, memory_order_release);
	}
}

static int send_to(unsigned from, unsigned to, const struct msg *m)
{
	struct ring *r = &rings[from][to];
	unsigned tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
		return 0;
	r->m[tail % RING] = *m;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return 1;
}

static void *worker(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	uint64_t seed = (harness_seed + me + 1) * 0x9E3779B97F4A7C15ULL;
	enum { KEEP = 64 };
	struct msg keep[KEEP];
	unsigned nkeep = 0;

	my_cpu = me;
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < OPS; i++) {
		seed ^= seed >> 12, seed ^= seed << 25, seed ^= seed >> 27;
		uint64_t r = seed * 0x2545F4914F6CDD1DULL;
		struct msg m = { .serial = (me << 24) | i, .kind = (int)(r % 4) };
		unsigned k = (r >> 8) % 100;
		m.size = m.kind ? cache_size[m.kind - 1] :
			 k < 60 ? 16 + (uint32_t)((r >> 16) % 240) :
			 k < 92 ? 256 + (uint32_t)((r >> 16) % 1792) :
				  2049 + (uint32_t)((r >> 16) % 20000);
		m.p = m.kind ? kmem_cache_alloc(cache[m.kind - 1], 0) : kmalloc(m.size, 0);
		if (!m.p) {
			atomic_fetch_add(&failures, 1);
			atomic_store(&freed[me][i], 1);
			continue;
		}
		atomic_fetch_add_explicit(&allocated, 1, memory_order_relaxed);
		stamp(m.p, m.serial, m.size);
		unsigned to = (unsigned)((r >> 40) % THREADS);
		if (to != me && ((r >> 50) & 1) && send_to(me, to, &m))
			atomic_fetch_add_explicit(&sent, 1, memory_order_relaxed);
		else if (nkeep < KEEP)
			keep[nkeep++] = m;
		else {
			unsigned j = (unsigned)((r >> 20) % KEEP);
			release(&keep[j], 0);
			keep[j] = m;
		}
		if ((i & 15) == 0)
			drain_inbox(me);
	}
	while (nkeep)
		release(&keep[--nkeep], 0);
	atomic_fetch_add(&producers_done, 1);
	while (atomic_load(&producers_done) < THREADS)
		drain_inbox(me);
	pthread_barrier_wait(&bar);
	drain_inbox(me);
	mm_cpu_detach(me);      /* the thread's magazines go back */
	my_cpu = MM_CPU_NONE;
	return NULL;
}

TEST(threads_hand_objects_to_each_other)
{
	host_heap_setup(RAM);
	struct pfa_stats st;
	pfa_get_stats(&st);
	uint64_t free0 = st.free_pages;

	cache[0] = kmem_cache_create("t48", cache_size[0], 0, 0, NULL);
	cache[1] = kmem_cache_create("t320", cache_size[1], 0, KMEM_HWCACHE_ALIGN, NULL);
	cache[2] = kmem_cache_create("t6000", cache_size[2], 0, 0, NULL);
	REQUIRE(cache[0] && cache[1] && cache[2], "caches");

	pthread_t th[THREADS];
	pthread_barrier_init(&bar, NULL, THREADS);
	for (unsigned i = 0; i < THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) == 0, "thread");
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);

	printf("# %u threads x %u ops: %lu allocated, %lu freed locally, %lu by another thread\n",
	       THREADS, OPS, atomic_load(&allocated), atomic_load(&freed_local),
	       atomic_load(&freed_remote));
	CHECK(atomic_load(&failures) == 0, "%lu objects damaged, lost or freed twice",
	      atomic_load(&failures));
	CHECK(atomic_load(&allocated) == (unsigned long)THREADS * OPS, "allocated %lu",
	      atomic_load(&allocated));
	CHECK(atomic_load(&freed_local) + atomic_load(&freed_remote) == atomic_load(&allocated),
	      "freed %lu + %lu", atomic_load(&freed_local), atomic_load(&freed_remote));
	CHECK(atomic_load(&freed_remote) == atomic_load(&sent) && atomic_load(&sent) > 0,
	      "sent %lu, received %lu", atomic_load(&sent), atomic_load(&freed_remote));
	for (unsigned t = 0; t < THREADS; t++)
		for (unsigned i = 0; i < OPS; i++)
			if (!atomic_load(&freed[t][i])) {
				CHECK(0, "thread %u serial %u never freed", t, i);
				t = THREADS;
				break;
			}
	CHECK(kmalloc_check() == 0 && kmem_cache_check_all() == 0 && pfa_check() == 0, "checks");
	for (int i = 0; i < 3; i++)
		CHECK(kmem_cache_destroy(cache[i]) == 0, "cache %d has live objects", i);
	mm_reclaim();
	pfa_get_stats(&st);
	CHECK(st.free_pages == free0, "PFA free pages %llu, %llu before",
	      (unsigned long long)st.free_pages, (unsigned long long)free0);
}

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}

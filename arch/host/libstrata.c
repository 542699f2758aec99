/*
 * arch/host/libstrata.c - strata as the malloc of a Linux process
 * (build/host/libstrata.so, LD_PRELOAD it or link it).
 *
 *   malloc & co.  mm/malloc_std.c (included below), exported with default
 *                 visibility; everything else in the .so is hidden
 *   first call    host_init(): one MAP_NORESERVE reservation becomes the
 *                 PFA's "RAM" (pages appear only when touched), then
 *                 kmalloc_init(); no libc call before `ready` allocates
 *   threads       mm_platform_cpu_attach() hands out slot ids < MM_MAX_CPUS
 *                 (host_cpu.h inlines mm_cpu_id); a pthread key destructor
 *                 calls mm_cpu_detach() at thread exit and frees the slot
 *   release       mm_platform_release(): madvise(MADV_DONTNEED) of whole
 *                 arenas/runs about to go back to the PFA
 *   fork          pthread_atfork: stdio's list lock, then mm_lock_all()
 *                 (glibc's own order: list lock before malloc), see below
 *   STRATA_STATS=1   statistics on stderr at exit
 *   STRATA_HEAP=64G  size of the reservation (default 64 GiB, halved until
 *                    mmap accepts it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

_Static_assert(MM_MAX_CPUS <= 64, "slot bitmap is one uint64_t");

/* ------------------------------------------------------------------ */
/* initialisation                                                     */
/* ------------------------------------------------------------------ */

HIDDEN __thread unsigned host_cpu_slot
	__attribute__((tls_model("initial-exec"))) = MM_CPU_NONE;

static atomic_int init_state;          /* 0 not yet, 1 running, 2 ready */
static int ready_fast;                 /* plain copy of init_state == 2 */
static void *heap_base;
static size_t heap_size;
static double init_seconds;
static atomic_ulong releases, released_bytes;

static void host_init(void);

static inline void host_ensure_init(void)
{
	if (UNLIKELY(!ready_fast))
		host_init();
}

#define STRATA_STD_EXPORT EXPORT
#define STRATA_STD_ENTRY() host_ensure_init()
#include "../../mm/malloc_std.c"

void mm_platform_set_errno(int e)
{
	errno = e;
}

/* "64G", "512M", "1048576" -> bytes (no libc: getenv/strtoull might be
 * fine, but this runs before the heap exists). */
static size_t parse_size(const char *s, size_t dflt)
{
	size_t v = 0;
	if (!s || !*s)
		return dflt;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (size_t)(*s - '0');
	switch (*s) {
	case 'k': case 'K': v <<= 10; break;
	case 'm': case 'M': v <<= 20; break;
	case 'g': case 'G': v <<= 30; break;
	case 't': case 'T': v <<= 40; break;
	}
	return v ? v : dflt;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A reservation of `size` bytes aligned to the largest PFA block (so no
 * block is lost at either end), or NULL. */
static void *reserve(size_t size)
{
	size_t align = (size_t)PAGE_SIZE << PFA_MAX_ORDER;
	if (align > size)
		align = size;
	char *m = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	char *a = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	if (m + size + align > a + size)
		munmap(a + size, (size_t)(m + size + align - (a + size)));
	return a;
}

/* mm/pfa_internal.h: the region is fresh zero memory, describe it lazily */
void pfa_setup_fresh(void);

static void thread_exit(void *v);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);
static void print_stats_at_exit(void);

static pthread_key_t slot_key;
static atomic_int slot_key_ready;

static void host_init(void)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expected, 1)) {
		/* another thread is initialising (the same thread cannot be:
		 * nothing below allocates before init_state becomes 2) */
		while (atomic_load(&init_state) != 2)
			sched_yield();
		return;
	}
	int saved_errno = errno;
	double t0 = now_seconds();
	size_t size = parse_size(getenv("STRATA_HEAP"), (size_t)64 << 30);
	size &= ~(size_t)(PAGE_SIZE - 1);
	void *base = NULL;
	for (; size >= ((size_t)16 << 20); size /= 2)
		if ((base = reserve(size)) != NULL)
			break;
	if (!base)
		mm_platform_panic("cannot reserve address space for the heap");
	pfa_setup_begin(0);
	pfa_setup_fresh();
	pfa_add_region((uintptr_t)base, size);
	if (pfa_setup_end() != 0)
		mm_platform_panic("pfa_setup_end failed on the reservation");
	kmalloc_init();
	heap_base = base;
	heap_size = size;
	init_seconds = now_seconds() - t0;
	atomic_store(&init_state, 2);
	ready_fast = 1;

	/* from here on malloc works: libc may allocate through us */
	if (pthread_key_create(&slot_key, thread_exit) == 0)
		atomic_store(&slot_key_ready, 1);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	const char *st = getenv("STRATA_STATS");
	if (st && *st && *st != '0')
		atexit(print_stats_at_exit);
	errno = saved_errno;
}

/* Early enough for most programs, but malloc() may come first (from
 * another constructor or ld.so), which host_ensure_init() covers. */
__attribute__((constructor)) static void host_ctor(void)
{
	host_ensure_init();
}

/* ------------------------------------------------------------------ */
/* threads: slot ids                                                  */
/* ------------------------------------------------------------------ */

static atomic_uint_least64_t slots_used;
static __thread int thread_state __attribute__((tls_model("initial-exec")));
#define TS_ATTACHING 1
#define TS_EXITING   2

unsigned mm_platform_cpu_attach(void)
{
	if (thread_state || !atomic_load_explicit(&slot_key_ready, memory_order_relaxed))
		return MM_CPU_NONE;
	uint64_t used = atomic_load(&slots_used);
	unsigned id;
	do {
		if (used == UINT64_MAX)
			return MM_CPU_NONE;     /* all taken: locked path */
		id = (unsigned)__builtin_ctzll(~used);
		if (id >= MM_MAX_CPUS)
			return MM_CPU_NONE;
	} while (!atomic_compare_exchange_weak(&slots_used, &used, used | (1ull << id)));
	/* setspecific before the id is visible, so that a (theoretical)
	 * allocation inside it takes the locked path */
	thread_state = TS_ATTACHING;
	int rc = pthread_setspecific(slot_key, (void *)(uintptr_t)(id + 1));
	thread_state = 0;
	if (rc != 0) {
		atomic_fetch_and(&slots_used, ~(1ull << id));
		return MM_CPU_NONE;
	}
	host_cpu_slot = id;
	return id;
}

/* pthread key destructor: the thread is exiting.  Its magazines go back
 * to the depots; later allocations of this thread (other destructors)
 * take the locked path instead of attaching again. */
static void thread_exit(void *v)
{
	unsigned id = (unsigned)((uintptr_t)v - 1);
	int saved_errno = errno;

	thread_state = TS_EXITING;
	host_cpu_slot = MM_CPU_NONE;
	mm_cpu_detach(id);
	atomic_fetch_and(&slots_used, ~(1ull << id));
	errno = saved_errno;
}

/* ------------------------------------------------------------------ */
/* fork                                                               */
/* ------------------------------------------------------------------ */
/*
 * glibc's fork() runs the prepare handlers, then takes stdio's list lock
 * (_IO_list_lock), then its own malloc's locks.  If our prepare handler
 * simply took strata's locks, a thread holding the list lock (fflush(NULL),
 * exit, fopen ...) that calls malloc (a stdio buffer) would wait for us
 * while we wait for it inside fork().  So the prepare handler takes the
 * list lock itself first (it is recursive; glibc's fork takes it again),
 * keeping glibc's order: list lock, then allocator.  The parent drops it
 * again; in the child glibc has already reset it.
 */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

static void fork_prepare(void)
{
	_IO_list_lock();
	mm_lock_all();
}

static void fork_parent(void)
{
	mm_unlock_all();
	_IO_list_unlock();
}

static void fork_child(void)
{
	mm_unlock_all();
	_IO_list_resetlock();
	/* the other threads do not exist here: give their caches back */
	uint64_t used = atomic_load(&slots_used);
	for (unsigned id = 0; id < MM_MAX_CPUS; id++) {
		if (!(used & (1ull << id)) || id == host_cpu_slot)
			continue;
		mm_cpu_detach(id);
		atomic_fetch_and(&slots_used, ~(1ull << id));
	}
}

/* ------------------------------------------------------------------ */
/* the rest of the platform contract                                  */
/* ------------------------------------------------------------------ */

/* Ranges below this stay resident: the PFA hands them out again soon, and
 * madvise plus the page faults after it cost more than the memory (glibc's
 * trim threshold is 128 KiB for the same reason).  Arenas (1 MiB) and big
 * runs go back to the kernel. */
#define RELEASE_MIN_BYTES (64u << 10)

void mm_platform_release(void *va, size_t bytes)
{
	if (bytes < RELEASE_MIN_BYTES)
		return;
	int saved_errno = errno;
	madvise(va, bytes, MADV_DONTNEED);
	atomic_fetch_add_explicit(&releases, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&released_bytes, bytes, memory_order_relaxed);
	errno = saved_errno;
}

/* Bits that differ from run to run (free-list hardening): the clock, the
 * pid and where ASLR put us.  No getrandom(): it may block early in boot. */
uint64_t mm_platform_entropy(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		     ((uint64_t)getpid() << 48) ^ (uint64_t)(uintptr_t)&ts ^
		     ((uint64_t)(uintptr_t)heap_base >> 12);
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void write_err(const char *s, size_t n)
{
	mm_platform_write(s, n);
}

static void print_stats_at_exit(void)
{
	static struct pfa_stats ps;
	char line[256];

	pfa_get_stats(&ps);
	int n = snprintf(line, sizeof line,
			 "strata: heap %p+%zu MiB, init %.3f ms, pfa %llu/%llu pages free, "
			 "metadata %llu bytes, releases %lu (%lu bytes)\n",
			 heap_base, heap_size >> 20, init_seconds * 1e3,
			 (unsigned long long)ps.free_pages, (unsigned long long)ps.total_pages,
			 (unsigned long long)ps.metadata_bytes, atomic_load(&releases),
			 atomic_load(&released_bytes));
	write_err(line, (size_t)n);
	kmalloc_print_stats(write_err);
}

/* ------------------------------------------------------------------ */
/* extras for tests and tools (not part of any malloc API)            */
/* ------------------------------------------------------------------ */

/* How many times mm_platform_release() ran, and how many bytes. */
EXPORT unsigned long strata_release_count(unsigned long *bytes)
{
	if (bytes)
		*bytes = atomic_load(&released_bytes);
	return atomic_load(&releases);
}

/* Seconds host_init() took; metadata bytes of the PFA. */
EXPORT double strata_init_seconds(unsigned long long *metadata_bytes)
{
	host_ensure_init();
	if (metadata_bytes) {
		static struct pfa_stats ps;
		pfa_get_stats(&ps);
		*metadata_bytes = ps.metadata_bytes;
	}
	return init_seconds;
}

/* The calling thread's slot id (MM_CPU_NONE before its first slow path
 * or after it began to exit), and how many slots are taken. */
EXPORT unsigned strata_thread_slot(unsigned *slots_in_use)
{
	if (slots_in_use)
		*slots_in_use = (unsigned)__builtin_popcountll(atomic_load(&slots_used));
	return host_cpu_slot;
}

/* kmalloc_get_stats() for tests and tools (struct from strata/kmalloc.h). */
EXPORT void strata_kmalloc_stats(struct kmalloc_stats *st)
{
	host_ensure_init();
	kmalloc_get_stats(st);
}

/* glibc extension: give free memory back.  1 if pages went back. */
EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	host_ensure_init();
	return mm_reclaim() != 0;
}

/*
 * arch/host/libstrata.c - strata as the malloc of a Linux process
 * (build/host/libstrata.so, LD_PRELOAD it or link it).
 *
 *   malloc & co.  mm/malloc_std.c (included below), exported with default
 *                 visibility; everything else in the .so is hidden
 *   first call    host_init(): the PFA is set up over a span of address
 *                 space that is NOT mapped (see "the heap span" below),
 *                 then kmalloc_init(); no libc call before `ready` allocates
 *   growth        host_grow(): when an allocation finds no memory, the
 *                 next piece of the span is mapped (each mmap checked) and
 *                 hot-added (pfa_add_region); when none can be mapped, the
 *                 call fails with ENOMEM.  Whole free chunks at the top
 *                 are unmapped again (malloc_trim, and after big frees)
 *   threads       mm_platform_cpu_attach() hands out slot ids < MM_MAX_CPUS
 *                 (host_cpu.h inlines mm_cpu_id); a pthread key destructor
 *                 calls mm_cpu_detach() at thread exit and frees the slot
 *   release       mm_platform_release(): madvise(MADV_DONTNEED) of whole
 *                 arenas/runs about to go back to the PFA
 *   fork          pthread_atfork: signals blocked, stdio's list lock,
 *                 the growth lock, then mm_lock_all() (glibc's own order:
 *                 list lock before malloc); none of it in a single-threaded
 *                 process, as glibc; see below
 *   STRATA_STATS=1   statistics on stderr at exit
 *   STRATA_DEBUG=... debug mode and what a bug found does, comma-separated:
 *                    letters F Z P U Q (sanity, red zones, poison, call
 *                    sites, quarantine) and O (zero on free, not in
 *                    "all"), "all" or "off"; then "abort" (the
 *                    default: report, then abort(), as glibc does on a
 *                    double free) or "continue" (report and go on).  With
 *                    debug mode on, the heap is checked once more at exit.
 *   C++           operator new / delete in every form (cxx_operators.c):
 *                 the sized and aligned deletes are checked
 *   STRATA_SAMPLE=N  sampled guarded allocations (mm/guard.c): one malloc in
 *                    N (default MM_GUARD_DEFAULT_RATE, 0 or "off": none)
 *                    on a page of its own against a guard page; then
 *                    optionally ",seed=S" and ",continue"/",abort" (else
 *                    STRATA_DEBUG's outcome).  A SIGSEGV handler turns a
 *                    fault in a guard page into a report and chains to
 *                    the previous handler for every other fault
 *   STRATA_HEAP=64G  size of the heap span: the most the heap can grow to
 *                    (default 64 GiB; only what is used is mapped)
 *   STRATA_FAULT=os:every=3  fault injection (strata/fault.h), only in
 *                    build/host/libstrata-faults.so (-DMM_FAULT_INJECT=1),
 *                    which also exports strata_fault_set/strata_fault_get
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <ucontext.h>
#include <unistd.h>

#include <strata/debug.h>
#include <strata/fault.h>
#include <strata/guard.h>
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
	__attribute__((tls_model("initial-exec"))) = HOST_NO_SLOT;

static atomic_int init_state;          /* 0 not yet, 1 running, 2 ready */
/* Nonzero sends the next allocating call through host_slow_entry():
 * before initialisation, and when a big free asked for a trim. */
static volatile int slow_entry = 1;
static atomic_int trim_pending;
static double init_seconds;
static atomic_ulong releases, released_bytes;

static void host_slow_entry(void);
static bool host_grow(size_t n, size_t align);
static bool host_grow_after(const void *p, size_t n);

static inline void host_ensure_init(void)
{
	if (UNLIKELY(slow_entry))
		host_slow_entry();
}

#define STRATA_STD_EXPORT EXPORT
#define STRATA_STD_ENTRY() host_ensure_init()
#define STRATA_STD_ENTRY_DUE() UNLIKELY(slow_entry)
#define STRATA_STD_GROW(n, align) host_grow(n, align)
#define STRATA_STD_GROW_AFTER(p, n) host_grow_after(p, n)
#include "../../mm/malloc_std.c"
#include "cxx_operators.c"

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

static void thread_exit(void *v);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);
static void print_stats_at_exit(void);

static pthread_key_t slot_key;
static atomic_int slot_key_ready;

/* ------------------------------------------------------------------ */
/* the heap span: reserve as you grow                                 */
/* ------------------------------------------------------------------ */
/*
 * The PFA is told at setup about one region, the span [span_lo, span_hi)
 * (STRATA_HEAP, 64 GiB): all the memory the heap may ever have, so that
 * its section table and descriptor run are sized for it.  Nothing of the
 * span is mapped then.  The PFA puts its descriptors at the top; the rest
 * is the heap, which pfa_remove_region() makes absent at once:
 *
 *   span_lo                               heap_top          desc   span_hi
 *   | mapped, present | gap (absent) | present |  not mapped  |#| . . . |
 *                                                               mapped as
 *                                                               needed
 *
 * An allocation that finds no memory calls host_grow(n, align): the
 * next piece of the span above heap_top is mapped with MAP_FIXED_NOREPLACE
 * (so nothing else of the process is ever overwritten), the descriptors
 * that cover it too, and the PFA hot-adds the piece (pfa_add_region).  In
 * the PFA's fresh mode a piece continuing the previous one only moves the
 * end of the lazy span: growth costs an mmap, never a pass over the pages.
 * A piece holds a block of the request's size or alignment, whichever is
 * larger, at a multiple of it.  The heap grows on contiguously: the piece
 * starts at heap_top, the part below the block's start included, so that
 * a run at the top of the heap can still grow in place across the old top
 * (a realloc'd buffer growing past a power of two is not copied and
 * faulted in again: that was every doubling of a growing 32 MiB array).
 * If that much address space cannot be mapped (RLIMIT_AS), the piece
 * starts at the block itself and the skipped gap is not mapped (a 256 MiB
 * malloc then costs 256 MiB of address space, not up to 512).
 * Small requests grow the heap by an eighth of its size, 4 MiB at least;
 * if that much cannot be mapped, the least that holds the request is
 * tried before giving up.
 *
 * Every mmap is checked.  When the piece cannot be mapped (RLIMIT_AS,
 * RLIMIT_DATA, no address space left, or the span is used up), the
 * caches are flushed back to the PFA (mm_reclaim) and the request is
 * tried once more; then malloc returns NULL with errno ENOMEM.
 *
 * Giving back: malloc_trim() and any free that releases 32 MiB at once
 * (which asks the next allocating call to do it) unmap the whole free
 * 4 MiB chunks at the top of the heap after pfa_remove_region() took them
 * out of the PFA, and the descriptor pages above what is left.
 *
 * The span is placed far from where the kernel puts mappings (those grow
 * down from below the stack; brk grows up from the program): at a random
 * 64 GiB-aligned address between 16 and 80 TiB, checked free with a
 * PROT_NONE probe of the whole span that is unmapped at once (skipped
 * when RLIMIT_AS would refuse it).  The alignment is also what serves
 * memalign() beyond the PFA's largest block (pfa_alloc_aligned).
 */
#define GROW_MIN     ((uintptr_t)4 << 20)          /* the PFA's lazy granule */
#define TRIM_RELEASE ((size_t)32 << 20)            /* a free this big asks for a trim */
#define SPAN_ALIGN   ((uintptr_t)64 << 30)
#define MAX_BLOCK    ((uintptr_t)PAGE_SIZE << PFA_MAX_ORDER)

static uintptr_t span_lo, span_hi;     /* the PFA's region */
static uintptr_t heap_end;             /* = the descriptors' start */
static uintptr_t heap_top;             /* heap pieces mapped below this */
static uintptr_t desc_top;             /* descriptors mapped below this */
static bool desc_readable;             /* the rest of them: zero pages, read-only */
static size_t heap_mapped;             /* bytes of heap mapped now */
static atomic_ulong grows, grow_failures, trims;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t round_up(uintptr_t x, uintptr_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static bool map_fixed(uintptr_t lo, uintptr_t hi, int prot)
{
	void *want = (void *)lo;
	void *m = mmap(want, hi - lo, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == want)
		return true;
	if (m != MAP_FAILED)       /* a kernel without MAP_FIXED_NOREPLACE */
		munmap(m, hi - lo);
	return false;
}

/* Where the descriptors the PFA may read for a heap ending at `top` end:
 * one past the last present page (a buddy's head), and a page more. */
static uintptr_t desc_needed(uintptr_t top)
{
	uintptr_t end = heap_end + ((top - span_lo) / PAGE_SIZE + 1) * sizeof(struct page);
	end = round_up(end, PAGE_SIZE) + PAGE_SIZE;
	return end < span_hi ? end : span_hi;
}

/* An mmap that grows the heap by a piece (descriptors: desc_back).  The OS
 * injection point (strata/fault.h, libstrata-faults.so) fails it as a
 * refused mmap would fail. */
static bool map_heap(uintptr_t lo, uintptr_t hi)
{
	if (MM_FAULT(MM_FAULT_OS))
		return false;
	return map_fixed(lo, hi, PROT_READ | PROT_WRITE);
}

/* Descriptors [lo, hi) become writable memory.  Unless the address space
 * is limited, the whole descriptor run is mapped read-only (zero pages,
 * no memory) at setup, so that looking up any pointer of the span - a
 * wild free 1 GiB above the heap - reads a zero descriptor (PG_UNMANAGED:
 * reported "in strata's heap span, but in no block") and does not fault.
 * The OS injection point fails it as a refused mmap would. */
static bool desc_back(uintptr_t lo, uintptr_t hi)
{
	if (MM_FAULT(MM_FAULT_OS))
		return false;
	if (desc_readable)
		return mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE) == 0;
	return map_fixed(lo, hi, PROT_READ | PROT_WRITE);
}

/* Descriptors [lo, hi) given back: zero pages again, or not mapped. */
static void desc_unback(uintptr_t lo, uintptr_t hi)
{
	if (!desc_readable ||
	    mmap((void *)lo, hi - lo, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		munmap((void *)lo, hi - lo);
}

/* Map [lo, hi) of the heap (lo >= heap_top) and hot-add it.  Lock held. */
static bool add_piece(uintptr_t lo, uintptr_t hi)
{
	uintptr_t d = desc_needed(hi);
	if (d > desc_top) {
		if (!desc_back(desc_top, d))
			return false;
		desc_top = d;
	}
	if (!map_heap(lo, hi))
		return false;
	if (pfa_add_region(lo, hi - lo) != 0) {
		munmap((void *)lo, hi - lo);
		return false;
	}
	heap_top = hi;
	heap_mapped += hi - lo;
	atomic_fetch_add(&grows, 1);
	return true;
}

enum grow { GROWN, NO_MEMORY, NEVER };

/* Room to grow: a piece of an eighth of the heap, GROW_MIN at least. */
static uintptr_t grow_step(void)
{
	return round_up((heap_top - span_lo) / 8, GROW_MIN);
}

/* Lock held: a piece holding a block for (n, align), plus room to grow. */
static enum grow grow_locked(size_t n, size_t align)
{
	uintptr_t blk = GROW_MIN;
	while (blk < n || (blk < align && blk < MAX_BLOCK))
		blk <<= 1;              /* up to the largest block, the alignment
					   is the block's own (mm/large.c) */
	uintptr_t a = align > blk ? align : blk;
	if (a > heap_end - span_lo || blk > heap_end - span_lo)
		return NEVER;             /* no such block in the span */
	uintptr_t start = round_up(heap_top, a);
	if (start < heap_top || start > heap_end || heap_end - start < blk)
		return NO_MEMORY;         /* the span is used up */
	uintptr_t more = grow_step();
	if (start == heap_top && more > blk && heap_end - start >= more &&
	    add_piece(start, start + more))
		return GROWN;
	if (start > heap_top && add_piece(heap_top, start + blk))
		return GROWN;             /* contiguous: the gap below the block too */
	return add_piece(start, start + blk) ? GROWN : NO_MEMORY;
}

/* STRATA_STD_GROW: true if the request is worth another try. */
static bool host_grow(size_t n, size_t align)
{
	if (n > KMALLOC_MAX_SIZE)
		return false;             /* larger than any block: never */
	int saved_errno = errno;
	pthread_mutex_lock(&grow_lock);
	enum grow g = grow_locked(n, align);
	pthread_mutex_unlock(&grow_lock);
	bool again = g == GROWN;
	if (g == NO_MEMORY) {
		/* the caches may hold what is needed */
		atomic_fetch_add(&grow_failures, 1);
		again = mm_reclaim() != 0;
	}
	errno = saved_errno;
	return again;
}

static uint64_t pfa_free_bytes(void)
{
	struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages * PAGE_SIZE;
}

/* STRATA_STD_GROW_AFTER: the large run at p cannot grow in place to n
 * bytes.  If p + n reaches past the heap's top while p is below it, and
 * the PFA has less free memory than n (so that a move would grow the heap
 * anyway), the heap grows on from its top (by an eighth of its size at
 * least, as any growth) and realloc tries in place once more: a buffer
 * growing at the top of the heap, as glibc's top chunk does, takes only
 * the new pages instead of being copied to another run and faulted in
 * whole.  With free memory below, the buffer moves there: growing past
 * the top then would let the heap drift upward, a round of a buffer
 * grown and freed at a time (lib_realloc, heap_stays_bounded).  Whether
 * the pages between the run and the old top are free, the retry finds
 * out; if they are not, the new piece is there for the move. */
static bool host_grow_after(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p;
	bool grown = false;

	if (n > KMALLOC_MAX_SIZE)
		return false;
	int saved_errno = errno;
	pthread_mutex_lock(&grow_lock);          /* before the PFA's lock, as in add_piece */
	uintptr_t end = round_up(lo + n, GROW_MIN);
	if (lo >= span_lo && lo < heap_top && end > heap_top && end <= heap_end &&
	    pfa_free_bytes() < n) {
		uintptr_t more = grow_step();
		if (end - heap_top < more && heap_end - heap_top >= more)
			grown = add_piece(heap_top, heap_top + more);
		if (!grown)
			grown = add_piece(heap_top, end);
	}
	pthread_mutex_unlock(&grow_lock);
	errno = saved_errno;
	return grown;
}

/* Unmap the free chunks at the top of the heap.  Returns bytes given back. */
static size_t give_back_top(void)
{
	size_t given = 0;
	pthread_mutex_lock(&grow_lock);
	while (heap_top >= span_lo + GROW_MIN &&
	       pfa_remove_region(heap_top - GROW_MIN, GROW_MIN) == 0) {
		heap_top -= GROW_MIN;
		munmap((void *)heap_top, GROW_MIN);   /* a gap's chunk: not mapped, fine */
		given += GROW_MIN;
	}
	uintptr_t d = desc_needed(heap_top);
	if (d < desc_top) {
		desc_unback(d, desc_top);
		desc_top = d;
	}
	heap_mapped = given > heap_mapped ? 0 : heap_mapped - given;
	pthread_mutex_unlock(&grow_lock);
	if (given)
		atomic_fetch_add(&trims, 1);
	return given;
}

/* A free 64 GiB-aligned span of `size` bytes, or 0.  The candidates are
 * random; each is probed with a PROT_NONE mapping, unmapped at once. */
static uintptr_t place_span(size_t size, bool probe)
{
	uint64_t r = mm_platform_entropy();
	for (int i = 0; i < 8; i++, r = r * 6364136223846793005ull + 1442695040888963407ull) {
		uintptr_t lo = ((uintptr_t)16 << 40) + (uintptr_t)((r >> 33) % 1024) * SPAN_ALIGN;
		if (!probe)
			return lo;
		if (map_fixed(lo, lo + size, PROT_NONE)) {
			munmap((void *)lo, size);
			return lo;
		}
	}
	/* no luck (a small address space?): wherever the kernel says */
	void *m = mmap(NULL, size + SPAN_ALIGN, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return 0;
	munmap(m, size + SPAN_ALIGN);
	return round_up((uintptr_t)m, SPAN_ALIGN);
}

static bool address_space_limited(void)
{
	struct rlimit rl;
	return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

/* Set up the PFA over the span, then make all of the heap absent. */
static bool setup_span(void)
{
	size_t size = parse_size(getenv("STRATA_HEAP"), (size_t)64 << 30);
	size = round_up(size, GROW_MIN);
	if (size < ((size_t)64 << 20))
		size = (size_t)64 << 20;
	if (size > ((size_t)16 << 40))
		size = (size_t)16 << 40;       /* 32-bit page indices */
	uintptr_t lo = place_span(size, !address_space_limited());
	if (!lo)
		return false;
	pfa_setup_begin(0);
	pfa_setup_fresh();
	pfa_add_region(lo, size);
	if (pfa_setup_end() != 0)
		return false;
	/* the descriptors are the span's only reserved pages (fresh mode),
	 * at its top (the highest free gap), section 0's first */
	static struct pfa_stats ps;
	pfa_get_stats(&ps);
	span_lo = lo;
	span_hi = lo + size;
	heap_end = span_hi - (uintptr_t)ps.reserved_pages * PAGE_SIZE;
	if (heap_end <= lo || pfa_remove_region(lo, heap_end - lo) != 0)
		return false;
	heap_top = lo;
	desc_top = heap_end;
	desc_readable = !address_space_limited() && map_fixed(heap_end, span_hi, PROT_READ);
	return true;
}

/* STRATA_DEBUG: "FZPUQ"/"all"/"off" and/or "abort"/"continue". */
static void check_at_exit(void)
{
	mm_debug_check();
}

static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(s, w, n) == 0;
}

static void install_segv_handler(void);

static void setup_debug(const char *env)
{
	char letters[32] = "";
	int cont = 0;

	for (const char *s = env; s && *s;) {
		size_t n = strcspn(s, ",");
		if (word_is(s, n, "continue"))
			cont = 1;
		else if (word_is(s, n, "abort"))
			cont = 0;
		else if (n < sizeof letters - strlen(letters)) {
			strncat(letters, s, n);      /* "all,O": both */
		} else
			fprintf(stderr, "strata: STRATA_DEBUG=%s: not understood\n", env);
		s += n + (s[n] == ',');
	}
	bool debug = false;
	if (letters[0] && strcmp(letters, "off") != 0 && strcmp(letters, "0") != 0) {
		debug = mm_debug_setup(letters) == 0;
		if (!debug)
			fprintf(stderr, "strata: STRATA_DEBUG=%s: not understood\n", env);
		else {
			atexit(check_at_exit);
			install_segv_handler();
		}
	}
	mm_debug_set_panic(!cont);
	/* in debug mode every bad pointer is also a bug report, which stops
	 * (or not) after its fuller text */
	mm_debug_set_bad_pointer_panic(!cont && !debug);
}

/* STRATA_SAMPLE: sampled guarded allocations.  Set up right after
 * kmalloc_init(), before anything allocates (so the first countdowns
 * already see the rate), without a libc call that might allocate: the
 * messages and the SIGSEGV handler come in sample_report(). */
static const char *sample_spec;
static int sample_rc;

static void setup_sample(void)
{
	static char def[24];
	const char *env = getenv("STRATA_SAMPLE");
	if (!env) {
		unsigned v = MM_GUARD_DEFAULT_RATE, n = 0;
		char rev[16];
		do
			rev[n++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		for (unsigned i = 0; i < n; i++)
			def[i] = rev[n - 1 - i];
		env = def;
	}
	sample_spec = env;
	sample_rc = mm_guard_setup(env);
	if (sample_rc == -2 && host_grow((size_t)8 << 20, (size_t)4 << 20))
		sample_rc = mm_guard_setup(env);    /* the pool needed memory */
}

static struct sigaction old_segv;

/* A fault in the guard pool: mm/guard.c reports it (and aborts, or opens
 * the pages and we return to retry the access); any other fault goes to
 * the handler that was there before, or to the default action. */
static void segv_handler(int sig, siginfo_t *si, void *ucv)
{
	int access = MM_ACCESS_UNKNOWN;
	void *pc = NULL;
#if defined(__x86_64__)
	ucontext_t *uc = ucv;
	access = (uc->uc_mcontext.gregs[REG_ERR] & 2) ? MM_ACCESS_WRITE : MM_ACCESS_READ;
	pc = (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	ucontext_t *uc = ucv;
	pc = (void *)uc->uc_mcontext.pc;
#endif
	if (si->si_code > 0 && mm_guard_fault(si->si_addr, access, pc))
		return;
	if ((old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_sigaction) {
		old_segv.sa_sigaction(sig, si, ucv);
	} else if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
		old_segv.sa_handler(sig);
	} else {
		/* back to the default: the access faults again, fatally */
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigaction(SIGSEGV, &dfl, NULL);
	}
}

/* Once: sampling on, or debug mode (a large debug block's guard page, a
 * quarantined large block's pages: mm/debug.c). */
static void install_segv_handler(void)
{
	static bool installed;
	if (installed)
		return;
	installed = true;
	struct sigaction sa = { .sa_sigaction = segv_handler,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

static void sample_report(void)
{
	if (sample_rc == -1)
		fprintf(stderr, "strata: STRATA_SAMPLE=%s: not understood\n", sample_spec);
	else if (sample_rc == -2)
		fprintf(stderr, "strata: STRATA_SAMPLE=%s: no guard pool, sampling off\n",
			sample_spec);
	if (sample_rc != 0)
		return;
	mm_guard_setup(sample_spec);     /* again: its outcome over STRATA_DEBUG's */
	struct mm_guard_stats st;
	mm_guard_get_stats(&st);
	if (st.rate)
		install_segv_handler();
}

/* STRATA_FAULT=pfa:every=7 (strata/fault.h; libstrata-faults.so only) */
static void setup_faults(const char *spec)
{
	if (spec && *spec && mm_fault_setup(spec) != 0)
		fprintf(stderr, "strata: STRATA_FAULT=%s: not understood%s\n", spec,
			MM_FAULT_INJECT ? "" : " (fault injection is in libstrata-faults.so only)");
}

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
	if (!setup_span())
		mm_platform_panic("cannot set up the heap span (STRATA_HEAP too small?)");
	kmalloc_init();
	setup_sample();
	init_seconds = now_seconds() - t0;
	atomic_store(&init_state, 2);

	/* from here on malloc works: libc may allocate through us */
	if (pthread_key_create(&slot_key, thread_exit) == 0)
		atomic_store(&slot_key_ready, 1);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	setup_debug(getenv("STRATA_DEBUG"));
	sample_report();
	setup_faults(getenv("STRATA_FAULT"));
	const char *st = getenv("STRATA_STATS");
	if (st && *st && *st != '0')
		atexit(print_stats_at_exit);
	errno = saved_errno;
}

static void host_slow_entry(void)
{
	if (atomic_load(&init_state) != 2)
		host_init();
	slow_entry = 0;
	if (atomic_exchange(&trim_pending, 0))
		give_back_top();
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
	host_cpu_slot = HOST_NO_SLOT;
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
 * keeping glibc's order: list lock, then the growth lock, then the
 * allocator.  The parent drops them again; in the child glibc has already
 * reset the list lock, and the others are reset here.
 *
 * Signals are blocked from before the first lock until the last is
 * dropped.  Otherwise a signal arriving inside fork() - say, SIGALRM sent
 * by the child just created - runs its handler with every strata lock
 * held by this very thread, and a fork() (or malloc) in the handler spins
 * on them for ever.  Blocked, the signal waits until fork() returns.
 *
 * A single-threaded process takes no lock at all, as glibc does: no other
 * thread can hold one, so there is nothing to wait for, and a fork() from
 * a handler that interrupted another fork() goes through.  The thread-local
 * fork_locked says which of the two the prepare handler did.
 */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);
extern char __libc_single_threaded;

static __thread int fork_locked;
static __thread sigset_t fork_saved_mask;

static void fork_prepare(void)
{
	fork_locked = 0;
	if (__libc_single_threaded)
		return;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &fork_saved_mask);
	_IO_list_lock();
	pthread_mutex_lock(&grow_lock);
	mm_lock_all();
	fork_locked = 1;
}

static void fork_parent(void)
{
	if (!fork_locked)
		return;
	fork_locked = 0;
	mm_unlock_all();
	pthread_mutex_unlock(&grow_lock);
	_IO_list_unlock();
	pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL);
}

static void fork_child(void)
{
	if (fork_locked) {
		fork_locked = 0;
		mm_unlock_all();
		pthread_mutex_init(&grow_lock, NULL);
		_IO_list_resetlock();
		pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL);
	}
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
	if (bytes >= TRIM_RELEASE) {
		/* the pages reach the PFA after this call: the next allocating
		 * call looks for whole free chunks to unmap */
		atomic_store(&trim_pending, 1);
		slow_entry = 1;
	}
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
		     ((uint64_t)span_lo >> 12);
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
			 "strata: heap span %#lx+%lu MiB, %zu MiB mapped in %lu growths "
			 "(%lu failed, %lu trims), init %.3f ms, pfa %llu/%llu pages free, "
			 "metadata %llu bytes, releases %lu (%lu bytes)\n",
			 (unsigned long)span_lo, (unsigned long)((span_hi - span_lo) >> 20),
			 heap_mapped >> 20, atomic_load(&grows), atomic_load(&grow_failures),
			 atomic_load(&trims), init_seconds * 1e3,
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
	return host_cpu_slot < MM_MAX_CPUS ? host_cpu_slot : MM_CPU_NONE;
}

/* kmalloc_get_stats() for tests and tools (struct from strata/kmalloc.h). */
EXPORT void strata_kmalloc_stats(struct kmalloc_stats *st)
{
	host_ensure_init();
	kmalloc_get_stats(st);
}

/* mm_guard_get_stats() for tests (struct from strata/guard.h). */
EXPORT void strata_guard_stats(struct mm_guard_stats *st)
{
	host_ensure_init();
	mm_guard_get_stats(st);
}

/* glibc extension: give free memory back.  1 if pages went back. */
EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	host_ensure_init();
	uint64_t pages = mm_reclaim();
	return (give_back_top() != 0) | (pages != 0);
}

#if MM_FAULT_INJECT
/* libstrata-faults.so: the fault-injection hook (strata/fault.h). */
EXPORT int strata_fault_set(unsigned point, unsigned mode, uint64_t n, uint64_t seed)
{
	host_ensure_init();
	return mm_fault_set(point, (enum mm_fault_mode)mode, n, seed);
}

EXPORT void strata_fault_get(unsigned point, struct mm_fault_stats *st)
{
	mm_fault_get(point, st);
}
#endif

/* Bytes of heap mapped now, and the span's size. */
EXPORT size_t strata_heap_mapped(size_t *span)
{
	host_ensure_init();
	if (span)
		*span = span_hi - span_lo;
	return heap_mapped;
}

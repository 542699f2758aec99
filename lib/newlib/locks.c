/*
 * lib/newlib/locks.c - newlib's locks on strata's spinlock.
 *
 * newlib is built with --enable-newlib-retargetable-locking
 * (scripts/build-newlib).  Then <sys/lock.h> turns every lock use inside
 * the C library into a call:
 *
 *     __lock_acquire_recursive(fp->_lock)
 *         -> __retarget_lock_acquire_recursive(struct __lock *)
 *
 * and `struct __lock` is left for the system to define.  libc.a carries
 * do-nothing versions (libc/misc/lock.c) so single-threaded programs link;
 * a system that wants real locks must replace *all* of them - the ten
 * functions and the nine static locks - or the link fails with duplicate
 * definitions (libc's lock.o gets pulled in for whatever is missing).
 *
 * What the locks protect
 * ----------------------
 *   __lock___sfp_recursive_mutex     the list of FILE objects (fopen/fclose)
 *   __lock___sinit_recursive_mutex   first-use setup of stdin/stdout/stderr
 *   __lock___atexit_recursive_mutex  the atexit list
 *   __lock___at_quick_exit_mutex     the at_quick_exit list
 *   __lock___env_recursive_mutex     environ (getenv/setenv)
 *   __lock___tz_mutex                the time-zone rules
 *   __lock___dd_hash_mutex           telldir/seekdir's hash (unused here)
 *   __lock___arc4random_mutex        arc4random's state
 *   __lock___malloc_recursive_mutex  newlib's malloc heap; unused by libc
 *                                    once strata is the malloc, kept for
 *                                    __malloc_lock below
 * plus one lock per FILE (fp->_lock, recursive: printf holds it while
 * calling fflush, which takes it again), created by
 * __retarget_lock_init_recursive when a FILE is opened and closed with it.
 *
 * Recursive locks: owner + count
 * ------------------------------
 * A recursive lock needs to know *who* holds it.  That identity comes from
 * newlib_lock_owner(): a nonzero number per execution context (CPU or
 * thread).  The default below returns 1 - correct for this kernel, which
 * runs newlib on one CPU with no threads and never from interrupt context;
 * with only one owner, a recursive lock is just a counter and never spins.
 * A kernel that runs stdio on several CPUs defines a strong
 * newlib_lock_owner() returning (cpu id + 1) or a thread id, and the same
 * code becomes a real cross-CPU lock.  A context taking a non-recursive
 * lock it already holds would spin forever; that is reported as a panic
 * instead.
 *
 * Dynamic locks (one per FILE) come from a fixed table rather than from
 * malloc: no lock operation allocates, so stdio's locks work before
 * kmalloc_init(), cannot recurse into the allocator, and do not show up in
 * strata's block counts.  When the table is full, further FILEs share one
 * overflow lock - coarser, still correct.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/lock.h>
#include <malloc.h>

#include <kernel/panic.h>
#include <strata/spinlock.h>

#ifndef _RETARGETABLE_LOCKING
#error "newlib must be configured with --enable-newlib-retargetable-locking (scripts/build-newlib)"
#endif

struct __lock {
	mm_spinlock_t spin;
	atomic_uintptr_t owner;     /* newlib_lock_owner() of the holder, 0 = free */
	unsigned count;             /* recursion depth, only touched by the holder */
	unsigned char in_use;       /* table slot taken (dynamic locks only) */
};

#define LOCK_INIT { MM_SPINLOCK_INIT, 0, 0, 0 }

/* The static locks newlib's sources name via __LOCK_INIT(). */
struct __lock __lock___sinit_recursive_mutex = LOCK_INIT;
struct __lock __lock___sfp_recursive_mutex = LOCK_INIT;
struct __lock __lock___atexit_recursive_mutex = LOCK_INIT;
struct __lock __lock___at_quick_exit_mutex = LOCK_INIT;
struct __lock __lock___malloc_recursive_mutex = LOCK_INIT;
struct __lock __lock___env_recursive_mutex = LOCK_INIT;
struct __lock __lock___tz_mutex = LOCK_INIT;
struct __lock __lock___dd_hash_mutex = LOCK_INIT;
struct __lock __lock___arc4random_mutex = LOCK_INIT;

uintptr_t newlib_lock_owner(void);

__attribute__((weak)) uintptr_t newlib_lock_owner(void)
{
	return 1;                   /* one CPU, no threads: see the top */
}

/* ---- dynamic locks ---- */

#ifndef NEWLIB_DYNAMIC_LOCKS
#define NEWLIB_DYNAMIC_LOCKS 64 /* open FILEs with a lock of their own */
#endif

static struct __lock lock_table[NEWLIB_DYNAMIC_LOCKS];
static struct __lock overflow_lock = LOCK_INIT;
static mm_spinlock_t table_lock = MM_SPINLOCK_INIT;

static struct __lock *lock_new(void)
{
	struct __lock *l = &overflow_lock;

	mm_spin_lock(&table_lock);
	for (size_t i = 0; i < NEWLIB_DYNAMIC_LOCKS; i++) {
		if (!lock_table[i].in_use) {
			l = &lock_table[i];
			*l = (struct __lock)LOCK_INIT;
			l->in_use = 1;
			break;
		}
	}
	mm_spin_unlock(&table_lock);
	return l;
}

static void lock_delete(struct __lock *l)
{
	if (l < lock_table || l >= lock_table + NEWLIB_DYNAMIC_LOCKS)
		return;                 /* the overflow lock or a static one */
	mm_spin_lock(&table_lock);
	l->in_use = 0;
	mm_spin_unlock(&table_lock);
}

void __retarget_lock_init(_LOCK_T *lock)
{
	*lock = lock_new();
}

void __retarget_lock_init_recursive(_LOCK_T *lock)
{
	*lock = lock_new();
}

void __retarget_lock_close(_LOCK_T lock)
{
	lock_delete(lock);
}

void __retarget_lock_close_recursive(_LOCK_T lock)
{
	lock_delete(lock);
}

/* ---- plain locks ---- */

void __retarget_lock_acquire(_LOCK_T l)
{
	uintptr_t me = newlib_lock_owner();

	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == me)
		panic("newlib lock %p taken twice by the same owner (deadlock)", (void *)l);
	mm_spin_lock(&l->spin);
	atomic_store_explicit(&l->owner, me, memory_order_relaxed);
}

/* Returns nonzero when the lock was taken (libc.a's dummy returns 1). */
int __retarget_lock_try_acquire(_LOCK_T l)
{
	if (!mm_spin_trylock(&l->spin))
		return 0;
	atomic_store_explicit(&l->owner, newlib_lock_owner(), memory_order_relaxed);
	return 1;
}

void __retarget_lock_release(_LOCK_T l)
{
	atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
	mm_spin_unlock(&l->spin);
}

/* ---- recursive locks ---- */

/*
 * Only the holder ever stores its own id into owner, so reading our own
 * id back means we hold the lock (program order); any other value -
 * 0 or another context's id - means we do not, whatever it changes to
 * while we look.
 */
void __retarget_lock_acquire_recursive(_LOCK_T l)
{
	uintptr_t me = newlib_lock_owner();

	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == me) {
		l->count++;
		return;
	}
	mm_spin_lock(&l->spin);
	atomic_store_explicit(&l->owner, me, memory_order_relaxed);
	l->count = 1;
}

int __retarget_lock_try_acquire_recursive(_LOCK_T l)
{
	uintptr_t me = newlib_lock_owner();

	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == me) {
		l->count++;
		return 1;
	}
	if (!mm_spin_trylock(&l->spin))
		return 0;
	atomic_store_explicit(&l->owner, me, memory_order_relaxed);
	l->count = 1;
	return 1;
}

void __retarget_lock_release_recursive(_LOCK_T l)
{
	if (l->count == 0 ||
	    atomic_load_explicit(&l->owner, memory_order_relaxed) != newlib_lock_owner())
		panic("newlib lock %p released by a context that does not hold it", (void *)l);
	if (--l->count == 0) {
		atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
		mm_spin_unlock(&l->spin);
	}
}

/* ---- malloc.h's lock API, for code written against newlib's malloc ---- */

void __malloc_lock(struct _reent *r)
{
	(void)r;
	__retarget_lock_acquire_recursive(&__lock___malloc_recursive_mutex);
}

void __malloc_unlock(struct _reent *r)
{
	(void)r;
	__retarget_lock_release_recursive(&__lock___malloc_recursive_mutex);
}

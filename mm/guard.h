/*
 * guard.h - the guard layer (mm/guard.c, level +1 beside the large runs):
 * what the kmalloc front end calls for a sampled allocation, and the one
 * inline test kfree's slow path makes to route a guarded pointer here.
 */
#ifndef MM_GUARD_H
#define MM_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strata/guard.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

/* The guard pool, [base, base + bytes); bytes == 0 until set up.  Written
 * once (bytes last, release), read without a lock. */
struct guard_range {
	uintptr_t base;
	size_t bytes;
};
extern struct guard_range guard_range;

static inline bool guard_owns(const void *p)
{
	return (uintptr_t)p - guard_range.base < __atomic_load_n(&guard_range.bytes,
								   __ATOMIC_ACQUIRE);
}

/* The largest request a slot takes: a page, or MM_GUARD_LARGE_PAGES in
 * one of the large slots. */
#define GUARD_MAX_BYTES ((size_t)MM_GUARD_LARGE_PAGES << PAGE_SHIFT)

/* A sampled request: a slot's object, or NULL (sampling off, size over
 * GUARD_MAX_BYTES, alignment over a page, every slot of its kind in use)
 * and the caller allocates as usual.  zero: the object is zeroed. */
void *guard_alloc(size_t size, size_t align, bool zero, void *caller);
/* For a slow path with no countdown of its own (kmem_cache_alloc's):
 * true about one call in N. */
bool guard_sample_slow(void);
/* p lies in the guard pool (guard_owns): free it, or report the bad free. */
void guard_free(const void *p, void *caller);
/* True if p is a live guarded object; *usable: the bytes asked for (0
 * for kmalloc(0), whose 16 bytes are canary). */
bool guard_usable(const void *p, size_t *usable);
/* Why p, in the pool, is not a live object: KM_DOUBLE_FREE (a freed
 * object's start) or KM_BAD_MISALIGNED (anything else). */
enum kmalloc_report_kind guard_bad_reason(const void *p);
/* How many allocations until the next sample on this CPU: random with a
 * mean of the rate (1..2N-1); rng is the CPU's generator state (0: not
 * seeded yet).  With sampling off a large count after which the front end
 * asks again.  *sample_now: the countdown that ran out was a real one
 * (not the CPU's first, unseeded one), so this allocation is sampled. */
int32_t guard_next_countdown(uint64_t *rng, unsigned cpu, bool *sample_now);

/* The debug layer's fault handler (mm/debug.c): mm_guard_fault() asks it
 * about every fault outside the guard pool (a callback: debug is above). */
typedef bool (*guard_fault_fn)(const void *addr, int access, void *pc);
void guard_chain_fault(guard_fault_fn fn);

#endif

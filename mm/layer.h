/*
 * layer.h - base layer: how the layers above tell mm/mm.c what they hold.
 *
 * A whole-allocator operation (mm_reclaim, mm_lock_all/mm_unlock_all
 * around fork, mm_check_all, mm_cpu_detach) must reach every layer, yet a
 * layer may only call down.  So each layer registers one struct mm_layer
 * when it starts (as Linux layers register shrinkers and CPU-hotplug
 * callbacks) and mm.c, at the bottom, walks the registered ones from the
 * top layer down: the order of mm/lock_order.h.  Any hook may be NULL.
 */
#ifndef MM_LAYER_H
#define MM_LAYER_H

#include <stdint.h>

struct mm_layer {
	const char *name;
	unsigned level;                  /* its lock's level (lock_order.h) */
	uint64_t (*trim)(void);          /* give memory back; pages freed */
	void (*lock)(void);              /* take every lock of the layer */
	void (*unlock)(void);
	int (*check)(void);              /* problems found (each reported) */
	void (*cpu_detach)(unsigned cpu);/* that CPU will not run again */
	struct mm_layer *next;           /* mm.c's list, by level, top first */
};

/* Add l (once; registering again is a no-op).  Call at the layer's init,
 * before other CPUs use it. */
void mm_layer_register(struct mm_layer *l);

#endif

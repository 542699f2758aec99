/*
 * tests/common/host_ram.h - the host programs' RAM, set up one way for all
 * (unit tests, the fuzzer, the benchmarks; header only).
 *
 *   uint8_t *ram = host_ram(64 << 20);       mmap'd once per size, 4 MiB
 *                                             aligned (a PFA block of the
 *                                             largest order lies inside)
 *   host_pfa_setup(ram, size, page);         pfa_setup_begin(0) .. end over
 *                                             it, `page` (or NULL) reserved
 *   host_heap_setup(size)                    both, then kmalloc_init()
 *
 * The memory is reused by later setups of the same size (a test that
 * calls setup() per test case re-initialises strata over it); a test of
 * the PFA's fresh mode, which needs never-touched memory, maps its own.
 * Any failure aborts: there is nothing to test without RAM.
 */
#ifndef TESTS_COMMON_HOST_RAM_H
#define TESTS_COMMON_HOST_RAM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>

#define HOST_RAM_ALIGN ((size_t)4 << 20)

static inline uint8_t *host_ram(size_t size)
{
	static struct { size_t size; uint8_t *ram; } maps[8];

	for (unsigned i = 0; i < 8; i++) {
		if (maps[i].size == size)
			return maps[i].ram;
		if (maps[i].size == 0) {
			void *m = mmap(NULL, size + HOST_RAM_ALIGN, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (m == MAP_FAILED) {
				perror("host_ram: mmap");
				abort();
			}
			maps[i].size = size;
			maps[i].ram = (uint8_t *)(((uintptr_t)m + HOST_RAM_ALIGN - 1) &
						  ~(uintptr_t)(HOST_RAM_ALIGN - 1));
			return maps[i].ram;
		}
	}
	fprintf(stderr, "host_ram: more than 8 sizes\n");
	abort();
}

static inline void host_pfa_setup(uint8_t *ram, size_t size, const void *reserve_page)
{
	pfa_setup_begin(0);
	if (pfa_add_region((uintptr_t)ram, size) != 0)
		abort();
	if (reserve_page)
		pfa_reserve((uintptr_t)reserve_page, PAGE_SIZE);
	if (pfa_setup_end() != 0) {
		fprintf(stderr, "host_pfa_setup: pfa_setup_end failed\n");
		abort();
	}
}

static inline uint8_t *host_heap_setup(size_t size)
{
	uint8_t *ram = host_ram(size);

	host_pfa_setup(ram, size, NULL);
	kmalloc_init();
	return ram;
}

#endif

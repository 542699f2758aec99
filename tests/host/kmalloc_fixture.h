/*
 * kmalloc_fixture.h - what the object allocator's host tests share
 * (test_pool.c, test_arena.c, test_large.c, test_kmalloc.c; header only):
 * the heap over the shared RAM fixture (tests/common/host_ram.h) with one
 * reserved page and the per-CPU magazines off, the soundness check run
 * after every phase (kmalloc_check, pfa_check, and the statistics
 * reconciled with the PFA's free page count exactly), and the byte
 * patterns that prove a block kept its contents.
 *
 *   ram:  [ descriptors | ... | reserved page | .......... ]   64 MiB
 */
#ifndef TESTS_HOST_KMALLOC_FIXTURE_H
#define TESTS_HOST_KMALLOC_FIXTURE_H

#define _GNU_SOURCE
#include "harness.h"
#include "host_ram.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include <strata/kmalloc.h>
#include <strata/percpu.h>
#include <strata/pfa.h>
#include <strata/platform.h>

void host_capture_start(char *buf, size_t cap);
size_t host_capture_stop(void);

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define RAM_SIZE (64 * MIB)

static __attribute__((unused)) uint8_t *ram;            /* RAM_SIZE bytes, 4 MiB aligned */
static __attribute__((unused)) uint8_t *reserved_page;  /* a pfa_reserve()d page inside ram */
static __attribute__((unused)) uint64_t free_at_start;  /* PFA free pages right after kmalloc_init */
static __attribute__((unused)) char capture[8192];

static inline uint64_t pfa_free_pages(void)
{
	static struct pfa_stats st;
	pfa_get_stats(&st);
	return st.free_pages;
}

static inline void setup(void)
{
	ram = host_ram(RAM_SIZE);
	reserved_page = ram + 5 * MIB + 3 * PAGE_SIZE;
	host_pfa_setup(ram, RAM_SIZE, reserved_page);
	kmalloc_init();
	/* These tests examine the pool, arena and run layers exactly (which
	 * pool a block comes from, when an arena goes back); the per-CPU
	 * magazines in front of them have their own tests (tsan_percpu.c,
	 * test_magazine.c). */
	mm_percpu_enable(0);
	free_at_start = pfa_free_pages();
}

/* Everything this allocator holds, as the PFA sees it, must match. */
static inline bool reconciles(char *why, size_t n)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	uint64_t held = free_at_start - pfa_free_pages();
	uint64_t parts = st.bytes_allocated_blocks + st.bytes_available_blocks +
			 st.bytes_unused_pools + st.bytes_pool_headers + st.bytes_quantization;
	if (held != st.pfa_pages) {
		snprintf(why, n, "PFA says %llu pages held, kmalloc %llu",
			 (unsigned long long)held, (unsigned long long)st.pfa_pages);
		return false;
	}
	if (parts != st.arenas_current * st.arena_size) {
		snprintf(why, n, "arena bytes %llu != parts %llu",
			 (unsigned long long)(st.arenas_current * st.arena_size),
			 (unsigned long long)parts);
		return false;
	}
	uint64_t used = 0, avail = 0;
	for (unsigned c = 0; c < st.nclasses; c++) {
		used += st.cls[c].blocks_used * st.cls[c].size;
		avail += st.cls[c].blocks_avail * st.cls[c].size;
	}
	if (used != st.bytes_allocated_blocks || avail != st.bytes_available_blocks) {
		snprintf(why, n, "class totals disagree");
		return false;
	}
	return true;
}

#define CHECK_SOUND()                                                        \
	do {                                                                 \
		char why_[160];                                              \
		CHECK(kmalloc_check() == 0, "kmalloc_check found problems");  \
		CHECK(pfa_check() == 0, "pfa_check found problems");          \
		CHECK(reconciles(why_, sizeof why_), "%s", why_);             \
	} while (0)

static inline uint64_t pattern(const void *p, uint64_t serial, size_t i)
{
	return ((uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ (serial << 20) ^ (i * 0x1000193);
}

/* Fill [p, p + n) with the pattern of (key, serial); key is usually p. */
static inline void fill_key(void *p, size_t n, const void *key, uint64_t serial)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(pattern(key, serial, i / 8) >> (i % 8 * 8));
}

static inline bool intact_key(const void *p, size_t n, const void *key, uint64_t serial)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (uint8_t)(pattern(key, serial, i / 8) >> (i % 8 * 8)))
			return false;
	return true;
}

static inline void fill(void *p, size_t n, uint64_t serial) { fill_key(p, n, p, serial); }
static inline bool intact(const void *p, size_t n, uint64_t serial)
{
	return intact_key(p, n, p, serial);
}

static inline enum kmalloc_report_kind kmalloc_last_report_kind(void)
{
	struct kmalloc_report r;
	kmalloc_last_report(&r);
	return r.kind;
}

static inline uint64_t spare_pages(void)
{
	static struct kmalloc_stats st;
	kmalloc_get_stats(&st);
	return st.arenas_spare * (st.arena_size / PAGE_SIZE) + st.large_cached_pages;
}

static inline bool in_ram(const void *p, size_t n)
{
	return (const uint8_t *)p >= ram && (const uint8_t *)p + n <= ram + RAM_SIZE;
}

static inline size_t expected_usable(size_t n)
{
	static const unsigned classes[] = {
		512, 576, 640, 704, 768, 832, 896, 960, 1024, 1152, 1280, 1408,
		1536, 1664, 1792, 1920, 2048 };
	if (n <= 512)
		return n <= 16 ? 16 : (n + 15) / 16 * 16;
	if (n <= 2048) {
		for (unsigned i = 0; i < sizeof classes / sizeof classes[0]; i++)
			if (n <= classes[i])
				return classes[i];
	}
	if (n <= 32768) {   /* medium: 8 classes per doubling, 2304 .. 32768 */
		size_t pow2 = 2048;
		while (pow2 * 2 < n)
			pow2 *= 2;
		size_t step = pow2 / 8;
		return (n + step - 1) / step * step;
	}
	return 0;   /* large: at least n rounded to pages */
}

#endif

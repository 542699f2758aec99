/*
 * lib_strata.h - what the lib_*.c tests (run under
 * LD_PRELOAD=build/host/libstrata.so) need from the preloaded library:
 * its test-only exports, looked up with dlsym so that the programs also
 * link (and report "not under strata") without it.
 */
#ifndef TESTS_HOST_LIB_STRATA_H
#define TESTS_HOST_LIB_STRATA_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <strata/kmalloc.h>

struct strata_api {
	unsigned long (*release_count)(unsigned long *bytes);
	unsigned (*thread_slot)(unsigned *slots_in_use);
	void (*kmalloc_stats)(struct kmalloc_stats *st);
	double (*init_seconds)(unsigned long long *metadata_bytes);
};

static inline int strata_api_get(struct strata_api *a)
{
	a->release_count = (unsigned long (*)(unsigned long *))dlsym(RTLD_DEFAULT, "strata_release_count");
	a->thread_slot = (unsigned (*)(unsigned *))dlsym(RTLD_DEFAULT, "strata_thread_slot");
	a->kmalloc_stats = (void (*)(struct kmalloc_stats *))dlsym(RTLD_DEFAULT, "strata_kmalloc_stats");
	a->init_seconds = (double (*)(unsigned long long *))dlsym(RTLD_DEFAULT, "strata_init_seconds");
	return a->release_count && a->thread_slot && a->kmalloc_stats && a->init_seconds;
}
#endif

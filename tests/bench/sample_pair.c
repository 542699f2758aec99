/*
 * tests/bench/sample_pair.c - what one sampled allocation costs, in time.
 *
 * Run under LD_PRELOAD=libstrata.so: N malloc(16)+free pairs per batch,
 * B batches, and the median nanoseconds per pair (a batch's median drops
 * the batches the shared machine interrupted).  With STRATA_SAMPLE=1 each
 * pair is sampled (a guarded slot opened, then protected again on free:
 * two mprotect calls); with STRATA_SAMPLE=0 none is.  The difference is the
 * price of one sample, which scripts/bench-sample multiplies by a
 * workload's sampled count.
 *
 *     sample_pair PAIRS_PER_BATCH BATCHES
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 100000;
	int batches = argc > 2 ? atoi(argv[2]) : 21;
	static double ns[1000];
	volatile unsigned char sink = 0;

	if (pairs <= 0 || batches <= 0 || batches > 1000) {
		fprintf(stderr, "usage: %s PAIRS_PER_BATCH BATCHES(<=1000)\n", argv[0]);
		return 2;
	}
	for (int b = 0; b < batches; b++) {
		double t0 = now_ns();
		for (long i = 0; i < pairs; i++) {
			unsigned char *p = malloc(16);
			if (!p)
				return 1;
			p[0] = (unsigned char)i;
			sink += p[0];
			free(p);
		}
		ns[b] = (now_ns() - t0) / pairs;
	}
	qsort(ns, batches, sizeof ns[0], by_value);
	printf("ns_per_pair=%.3f min=%.3f\n", ns[batches / 2], ns[0]);
	return 0;
}

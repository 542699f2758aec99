/*
 * labs/6-debugging/names.c - lab 6's module: a table of copies of strings.
 *
 * It works: every name reads back right.  Yet booted with
 * mm.debug=all,continue, strata reports a heap bug.  Read the report
 * (kind, block, requested size, first damaged byte, the bytes around it),
 * find the line that causes it, fix it, and `make grade LAB=6`.
 */
#include <string.h>
#include <strata/kmalloc.h>
#include "names.h"

#define NAMES_MAX 64

static char *names[NAMES_MAX];
static unsigned nnames;

int names_add(const char *s)
{
	if (nnames == NAMES_MAX)
		return -1;
	size_t n = strlen(s);
	char *copy = kmalloc(n, 0);
	if (!copy)
		return -1;
	memcpy(copy, s, n + 1);
	names[nnames++] = copy;
	return 0;
}

const char *names_get(unsigned i)
{
	return i < nnames ? names[i] : NULL;
}

unsigned names_count(void)
{
	return nnames;
}

void names_clear(void)
{
	for (unsigned i = 0; i < nnames; i++)
		kfree(names[i]);
	nnames = 0;
}

/*
 * labs/6-debugging/names.c - lab 6's module: a table of copies of strings.
 *
 * The teachers' copy: the bug fixed (see ../ANSWERS.md).
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
	char *copy = kmalloc(n + 1, 0);     /* the fix: room for the NUL */
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

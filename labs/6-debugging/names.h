/* labs/6-debugging/names.h - the interface of lab 6's module (names.c). */
#ifndef LAB_NAMES_H
#define LAB_NAMES_H

#include <stddef.h>

/* A table of copies of strings.  0, or -1 when out of memory. */
int names_add(const char *s);
const char *names_get(unsigned i);   /* NULL past the end */
unsigned names_count(void);
void names_clear(void);              /* frees every copy */

#endif

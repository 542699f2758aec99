/* kstring.h - the freestanding string functions kernel/ and arch/ use
 * (and that gcc/clang may emit calls to). lib/string.c. */
#ifndef LIB_KSTRING_H
#define LIB_KSTRING_H
#include <stddef.h>
void *memset(void *d, int c, size_t n);
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
unsigned long long kstrtoull(const char *s, const char **end, int base);
#endif

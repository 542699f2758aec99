/*
 * cmdline.c - "key=value key2=value2" parsing for the kernel command line.
 */
#include <kernel/cmdline.h>
#include <stdlib.h>
#include <string.h>

int cmdline_get(const char *cmdline, const char *key, char *val, size_t n)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - word) > klen && !strncmp(word, key, klen) &&
		    word[klen] == '=') {
			const char *v = word + klen + 1;
			size_t len = (size_t)(p - v);
			if (n == 0)
				return 1;
			if (len > n - 1)
				len = n - 1;
			memcpy(val, v, len);
			val[len] = '\0';
			return 1;
		}
	}
	return 0;
}

uint64_t cmdline_get_u64(const char *cmdline, const char *key, uint64_t def)
{
	char buf[32];

	if (!cmdline_get(cmdline, key, buf, sizeof buf))
		return def;
	/* newlib's strtoull, base 0: decimal, 0x hex, 0 octal.  (The old
	 * hand-written parser also took K/M/G suffixes; no key used them.) */
	return strtoull(buf, NULL, 0);
}

/*
 * labs/7-leaks/sessions.c - lab 7's module: sessions that own memory.
 *
 * Every session opened is closed, and yet memory goes missing.  The grade
 * suite prints a tracemalloc diff (mm_trace_print_diff) of two snapshots
 * around the work: its first line names the call site that keeps growing
 * (scripts/trace2line turns the address into file:line).  Find the leak,
 * fix it, and `make grade LAB=7`.
 */
#include <string.h>
#include <strata/kmalloc.h>
#include "sessions.h"

struct session {
	unsigned uid;
	char *name;
	void *buf;
};

struct session *session_open(unsigned uid, const char *name)
{
	struct session *s = kmalloc(sizeof *s, KM_ZERO);
	if (!s)
		return NULL;
	s->uid = uid;
	s->name = kmalloc(strlen(name) + 1, 0);
	s->buf = kmalloc(512, 0);
	if (!s->name || !s->buf) {
		session_close(s);
		return NULL;
	}
	strcpy(s->name, name);
	return s;
}

const char *session_name(const struct session *s)
{
	return s->name;
}

void session_close(struct session *s)
{
	kfree(s->buf);
	kfree(s);
}

/* labs/7-leaks/sessions.h - the interface of lab 7's module (sessions.c). */
#ifndef LAB_SESSIONS_H
#define LAB_SESSIONS_H

struct session;

/* A session for user `uid` with a name and a buffer; NULL when out of memory. */
struct session *session_open(unsigned uid, const char *name);
const char *session_name(const struct session *s);
void session_close(struct session *s);   /* frees everything it opened */

#endif

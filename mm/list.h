/*
 * list.h - base layer: the one doubly linked list every layer of mm/
 * uses, intrusive and NULL-terminated, with a plain head pointer.
 *
 *     head ──► [A] ⇄ [B] ⇄ [C] ──► NULL        A.prev == NULL
 *
 * The links live in the listed struct itself, under names the struct
 * chooses (a pool header keeps `next`/`prev` where its fast path wants
 * them; an arena is on two lists, `next`/`prev` and `anext`/`aprev`), so
 * these are macros over the field names rather than an embedded
 * list_head: no layout changes, no container_of.
 *
 *   mm_list_push(&head, n)            n becomes the first element
 *   mm_list_unlink(&head, n)          n leaves the list (n's own links are
 *                                     left as they were)
 *   mm_list_push_by(&head, n, NEXT, PREV), mm_list_unlink_by(...)
 *                                     the same through other link fields
 *   mm_list_for_each(it, head)        it = head, it->next, ... , NULL
 *
 * O(1) each; no locking (the caller holds whatever protects the list).
 * No state here.
 */
#ifndef MM_LIST_H
#define MM_LIST_H

#include <stddef.h>

#define mm_list_push_by(headp, n, NEXT, PREV)                           \
	do {                                                            \
		__typeof__(n) mm_ln_ = (n);                             \
		__typeof__(n) mm_lh_ = *(headp);                        \
		mm_ln_->PREV = NULL;                                    \
		mm_ln_->NEXT = mm_lh_;                                  \
		if (mm_lh_)                                             \
			mm_lh_->PREV = mm_ln_;                          \
		*(headp) = mm_ln_;                                      \
	} while (0)

#define mm_list_unlink_by(headp, n, NEXT, PREV)                         \
	do {                                                            \
		__typeof__(n) mm_ln_ = (n);                             \
		if (mm_ln_->PREV)                                       \
			mm_ln_->PREV->NEXT = mm_ln_->NEXT;              \
		else                                                    \
			*(headp) = mm_ln_->NEXT;                        \
		if (mm_ln_->NEXT)                                       \
			mm_ln_->NEXT->PREV = mm_ln_->PREV;              \
	} while (0)

#define mm_list_push(headp, n)   mm_list_push_by(headp, n, next, prev)
#define mm_list_unlink(headp, n) mm_list_unlink_by(headp, n, next, prev)

#define mm_list_for_each(it, head) for ((it) = (head); (it); (it) = (it)->next)

#endif

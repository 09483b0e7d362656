/*
 * list.h: intrusive circular doubly-linked lists with an O(1) length.
 * Every connection state maps to one list, so the counts the admin console
 * shows are list lengths, never scans.
 */
#ifndef PGMUX_LIST_H
#define PGMUX_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct list_node {
	struct list_node *prev;
	struct list_node *next;
};

struct list {
	struct list_node head;
	size_t count;
};

static inline void list_node_init(struct list_node *n)
{
	n->prev = n;
	n->next = n;
}

static inline void list_init(struct list *l)
{
	list_node_init(&l->head);
	l->count = 0;
}

static inline bool list_empty(const struct list *l)
{
	return l->count == 0;
}

static inline bool list_node_linked(const struct list_node *n)
{
	return n->next != n;
}

static inline void list_append(struct list *l, struct list_node *n)
{
	n->prev = l->head.prev;
	n->next = &l->head;
	l->head.prev->next = n;
	l->head.prev = n;
	l->count++;
}

static inline void list_remove(struct list *l, struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_node_init(n);
	l->count--;
}

static inline struct list_node *list_first(const struct list *l)
{
	return l->count ? l->head.next : NULL;
}

static inline struct list_node *list_last(const struct list *l)
{
	return l->count ? l->head.prev : NULL;
}

/* Iterate allowing removal of the current node. */
#define list_foreach_safe(l, it, tmp)                                                     \
	for ((it) = (l)->head.next, (tmp) = (it)->next; (it) != &(l)->head;               \
	     (it) = (tmp), (tmp) = (it)->next)

#endif /* PGMUX_LIST_H */

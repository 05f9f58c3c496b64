/*
 * htable - a string-keyed hash table (chained, grows as it fills) mapping
 * a key to a caller-owned pointer. Keys are copied. Used where a daemon
 * must answer "do I have this one?" for many items at once (qmgr: which
 * queue IDs are active).
 */
#ifndef TERN_HTABLE_H
#define TERN_HTABLE_H

#include <stddef.h>

typedef struct htable htable_t;

htable_t *htable_create(void);
void htable_free(htable_t *t);
/* the same, calling free_value on every value first */
void htable_free_with(htable_t *t, void (*free_value)(void *));
/* 0 added; -1 the key is there already (value unchanged) */
int htable_add(htable_t *t, const char *key, void *value);
/* the value, or NULL when key is absent */
void *htable_find(const htable_t *t, const char *key);
/* 0 removed; -1 absent */
int htable_remove(htable_t *t, const char *key);
size_t htable_count(const htable_t *t);

#endif

/* htable - string-keyed hash table (htable.h). */
#include "htable.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct hentry {
    struct hentry *next;
    void *value;
    char key[];
};

struct htable {
    struct hentry **slots;
    size_t nslots;          /* a power of two */
    size_t count;
};

/* htable_hash - FNV-1a */
static size_t htable_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;

    for (; *key; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

htable_t *htable_create(void)
{
    htable_t *t = xcalloc(1, sizeof(*t));

    t->nslots = 64;
    t->slots = xcalloc(t->nslots, sizeof(*t->slots));
    return t;
}

void htable_free(htable_t *t)
{
    htable_free_with(t, NULL);
}

void htable_free_with(htable_t *t, void (*free_value)(void *))
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nslots; i++) {
        struct hentry *e = t->slots[i], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            if (free_value != NULL)
                free_value(e->value);
            free(e);
        }
    }
    free(t->slots);
    free(t);
}

/* htable_grow - double the slots once the load factor passes 1 */
static void htable_grow(htable_t *t)
{
    size_t n = t->nslots * 2;
    struct hentry **slots = xcalloc(n, sizeof(*slots));

    for (size_t i = 0; i < t->nslots; i++) {
        struct hentry *e = t->slots[i], *next;

        for (; e != NULL; e = next) {
            size_t s = htable_hash(e->key) & (n - 1);

            next = e->next;
            e->next = slots[s];
            slots[s] = e;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

static struct hentry **htable_slot(const htable_t *t, const char *key)
{
    struct hentry **ep = &t->slots[htable_hash(key) & (t->nslots - 1)];

    while (*ep != NULL && strcmp((*ep)->key, key) != 0)
        ep = &(*ep)->next;
    return ep;
}

int htable_add(htable_t *t, const char *key, void *value)
{
    size_t len = strlen(key);
    struct hentry *e;

    if (*htable_slot(t, key) != NULL)
        return -1;
    if (t->count >= t->nslots && t->nslots <= SIZE_MAX / 2 / sizeof(*t->slots))
        htable_grow(t);
    e = xmalloc(sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->value = value;
    struct hentry **slot = &t->slots[htable_hash(key) & (t->nslots - 1)];
    e->next = *slot;
    *slot = e;
    t->count++;
    return 0;
}

void *htable_find(const htable_t *t, const char *key)
{
    struct hentry *e = *htable_slot(t, key);

    return e != NULL ? e->value : NULL;
}

int htable_remove(htable_t *t, const char *key)
{
    struct hentry **ep = htable_slot(t, key), *e = *ep;

    if (e == NULL)
        return -1;
    *ep = e->next;
    free(e);
    t->count--;
    return 0;
}

size_t htable_count(const htable_t *t)
{
    return t->count;
}

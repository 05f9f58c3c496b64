/*
 * dict - lookup tables, named as Postfix does: "type:name".
 *   lmdb:/path      LMDB file /path.lmdb (built by ternmap / newaliases
 *                   from the text file /path); reopened when replaced
 *   static:value    every key maps to value
 *   inline:{k1=v1, k2=v2}   a small table written in main.conf
 * (pcre: arrives with the regex-table issue.)
 * Keys are looked up lowercased. A table list "lmdb:/a, static:x" is a
 * maps_t: the first table that has the key wins.
 *
 * Text source format (ternmap): "key value" per line, '#' comments,
 * continuation lines start with whitespace. Aliases format (newaliases):
 * "name: value, value", same comments/continuations.
 */
#ifndef TERN_DICT_H
#define TERN_DICT_H

#include <stdbool.h>
#include "buf.h"

typedef struct dict dict_t;

/* NULL with *error_r on failure (unknown type, cannot open). */
dict_t *dict_open(const char *spec, const char **error_r);
/* 1 found (value into *value, reset first), 0 not found, -1 temporary
   error (caller defers: 4xx / try again later). */
int dict_lookup(dict_t *d, const char *key, buf_t *value);
void dict_close(dict_t *d);
const char *dict_name(const dict_t *d);

typedef struct maps maps_t;
/* list of specs separated by commas/whitespace; NULL with *error_r */
maps_t *maps_open(const char *list, const char **error_r);
int maps_lookup(maps_t *m, const char *key, buf_t *value);  /* as above */
void maps_close(maps_t *m);

/*
 * Build lmdb:/path from the text file path. aliases: parse the aliases
 * format. The database is written under a temporary name and renamed
 * over /path.lmdb, so readers never see a half-built table. 0 ok; -1 with
 * "file:line: message" in *err.
 */
int dict_lmdb_build(const char *path, bool aliases, buf_t *err);

#endif

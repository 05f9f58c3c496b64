/*
 * dict - lookup tables, named as Postfix does: "type:name".
 *   lmdb:/path      LMDB file /path.lmdb (built by ternmap / newaliases
 *                   from the text file /path); reopened when replaced
 *   static:value    every key maps to value ("static:{a b}" for spaces)
 *   inline:{k1=v1, k2=v2}   a small table written in main.conf
 *   pcre:/path      regular expressions (pcre_table(5), dict_pcre.h),
 *                   compiled once at open; keys are matched as given
 *   proxy:TYPE:NAME lookups by proxymap(8) (dict_proxy.h); in a daemon
 *                   that chroots, every lmdb: table is opened this way
 * Other keys are looked up lowercased. A table list "lmdb:/a, static:x" is a
 * maps_t: the first table that has the key wins; a table error stops the
 * search (-1), so a broken table defers instead of falling through.
 *
 * Text source format (ternmap): "key value" per line, '#' comments,
 * continuation lines start with whitespace. Aliases format (newaliases):
 * "name: value, value", same comments/continuations.
 *
 * Error strings returned through error_r live in a static buffer that the
 * next dict/maps call may overwrite.
 */
#ifndef TERN_DICT_H
#define TERN_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

#define DICT_KEY_MAX 511        /* LMDB's compiled-in key limit */

typedef struct dict dict_t;

/* NULL with *error_r on failure (unknown type, cannot open). */
dict_t *dict_open(const char *spec, const char **error_r);
/* 1 found (value into *value, reset first), 0 not found, -1 temporary
   error (caller defers: 4xx / try again later). */
int dict_lookup(dict_t *d, const char *key, buf_t *value);
void dict_close(dict_t *d);
const char *dict_name(const dict_t *d);

/* Test clock: the monotonic milliseconds behind "stat'ed at most once per
   second", so tests drive it instead of sleeping. NULL restores
   time_mono_msec. Set it before opening tables: tables remember when
   they last looked at their file on this clock. */
typedef uint64_t (*dict_clock_fn)(void);
void dict_set_clock(dict_clock_fn now_msec);

/*
 * Call fn(key, klen, value, vlen, ctx) for every entry (lmdb: in key
 * order, inline: as written; static: has no entries). Returns 0 when
 * done, fn's first non-zero return value, or -1 on a table error.
 */
typedef int (*dict_walk_fn)(const char *key, size_t klen,
                            const char *value, size_t vlen, void *ctx);
int dict_walk(dict_t *d, dict_walk_fn fn, void *ctx);

typedef struct maps maps_t;
/* list of specs separated by commas/whitespace ("inline:{a=b, c=d}" stays
   one spec); an empty list is a valid, empty maps_t. NULL with *error_r */
maps_t *maps_open(const char *list, const char **error_r);
/* as maps_open, but an lmdb: file that does not exist (yet) is not an
   error at open: until it appears (stat'ed at most once per second)
   every lookup fails temporarily (-1, logged by this process), so mail
   waits (4.3.0) instead of meeting "user unknown". Bad specs still fail. */
maps_t *maps_open_missing_ok(const char *list, const char **error_r);
int maps_lookup(maps_t *m, const char *key, buf_t *value);  /* as above */
void maps_close(maps_t *m);

#endif

/*
 * dict_build - compile a text source into an LMDB table (what ternmap
 * and newaliases run). Sources use Postfix-style logical lines
 * (util/logline.h): "key value" per entry, or for aliases
 * "name: value, value, ...".
 */
#ifndef TERN_DICT_BUILD_H
#define TERN_DICT_BUILD_H

#include <stdbool.h>
#include "util/buf.h"

/*
 * Build lmdb:/path from the text file path. aliases: parse the aliases
 * format. The database is written in a private temporary directory next
 * to /path.lmdb (mkdtemp, mode 0700: nobody else can plant or swap
 * anything in it) and renamed over /path.lmdb, so readers never see a
 * half-built table. The new file gets the source file's permission bits
 * (and owner, when run as root), so a private source stays private.
 * Duplicate keys: the first wins, and a "file:line: ..." warning is
 * logged and, on success, left in *err (one per line). 0 ok; -1 with
 * only "file:line: message" in *err.
 */
int dict_lmdb_build(const char *path, bool aliases, buf_t *err);

#endif

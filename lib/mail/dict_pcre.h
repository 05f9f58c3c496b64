/*
 * dict_pcre - the pcre: table type (Postfix pcre_table(5)), used by
 * dict.c's type dispatch; callers use dict_open("pcre:/path").
 *
 * Source format, one rule per logical line ('#' comments, blank lines
 * and continuation lines as in every table source, lib/util/logline.h):
 *   /regex/flags result      the first rule whose regex matches wins;
 *                            $1..$9 (or ${1}) in result are the
 *                            captured substrings, $$ is a '$'
 *   !/regex/flags result     matches when the regex does not match
 *                            (no $n in result)
 *   if /regex/flags          the rules up to the matching "endif" are
 *   if !/regex/flags         only tried when the condition holds;
 *   endif                    blocks nest
 * Any character other than a letter, digit, blank, '\' or '!' may
 * delimit the regex; "\" before the delimiter keeps it in the regex.
 * Flags (each toggles, as in Postfix): i case-insensitive (on by
 * default), m multi-line, s dot matches newline, x extended, A
 * anchored, E dollar matches only at the end, U ungreedy.
 * Keys are matched as given (not lowercased).
 *
 * The whole file is read and compiled once at open: later lookups never
 * touch the path (so a table opened before chroot keeps working). A bad
 * line fails the open with "FILE:LINE: what" (PCRE2's message for a bad
 * regex). Every match runs under PCRE2 match, depth and heap limits: a
 * rule whose match exceeds them is skipped with a warning (treated as
 * not matching), so a hostile regex or input cannot stall the caller.
 */
#ifndef TERN_DICT_PCRE_H
#define TERN_DICT_PCRE_H

#include <stddef.h>
#include "util/buf.h"

typedef struct dict_pcre dict_pcre_t;

/* read and compile path; NULL with *error_r (a static buffer) */
dict_pcre_t *dict_pcre_open(const char *path, const char **error_r);
/* compile a table from memory; name is used in messages */
dict_pcre_t *dict_pcre_parse(const char *name, const char *text, size_t len,
                             const char **error_r);
/* 1 matched (result into *value, reset first), 0 no rule matched, -1 the
   result did not fit into value */
int dict_pcre_lookup(dict_pcre_t *p, const char *key, buf_t *value);
void dict_pcre_free(dict_pcre_t *p);

#endif

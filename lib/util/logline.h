/*
 * logline - Postfix-style logical lines, the syntax main.conf,
 * master.conf and lookup-table sources share: a line that starts with
 * whitespace continues the previous logical line, blank lines and lines
 * whose first non-blank character is '#' are skipped (also between
 * continuation lines). A continuation's leading whitespace becomes one
 * space; trailing whitespace (CR of CRLF too) is dropped. The reader
 * works on text in memory and bounds physical lines and entries.
 */
#ifndef TERN_LOGLINE_H
#define TERN_LOGLINE_H

#include <stddef.h>
#include "buf.h"

typedef struct logline {
    const char *text;
    size_t len, pos;
    long lineno;            /* physical line last read */
    size_t max_line;        /* longest physical line, 0 = no limit */
    size_t max_entry;       /* longest logical line, 0 = no limit */
    buf_t entry;
    char error[64];
} logline_t;

void logline_init(logline_t *ll, const char *text, size_t len,
                  size_t max_line, size_t max_entry);
/* The next logical line: 1 with *entry_r (NUL-terminated, the reader's
   own buffer: the caller may change it; valid until the next call) and *lineno_r = its first physical line; 0 at the end; -1
   with *error_r ("NUL byte in line", "continuation line without a
   preceding entry", "line longer than N bytes", "entry longer than N
   bytes") and *lineno_r = the line concerned. */
int logline_next(logline_t *ll, char **entry_r, long *lineno_r,
                 const char **error_r);
void logline_free(logline_t *ll);

#endif

/*
 * smtp_reply - the SMTP client's reply parser (RFC 5321 4.2): one reply
 * is one or more lines "CODE-text" ending with "CODE text" (or a bare
 * "CODE"), every line with the same three-digit code; the first line's
 * text may start with an RFC 3463 enhanced status code "X.Y.Z" whose
 * class X must agree with the code's first digit.
 *
 * The server is hostile: smtp_reply_feed takes one line at a time (the
 * caller's reader bounds each line), and a reply of more than
 * SMTP_REPLY_LINES_MAX lines or SMTP_REPLY_TEXT_MAX bytes of text, a line
 * that is not "DDD", "DDD-..." or "DDD ...", a code outside 200..599, or
 * a continuation with another code is an error: the caller drops the
 * connection. Control characters and bytes >= 0x80 in the kept text are
 * replaced by '?' (the text goes into logs and bounces).
 *
 * Kept per reply: code, dsn (from the first line when it agrees, else
 * "X.0.0"), text (every line's text after code and enhanced code,
 * joined by single blanks, for "host X said: 550 5.1.1 ..."), and lines
 * (each line's text after "DDD-", '\n'-separated, for EHLO keywords).
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

#define SMTP_REPLY_LINE_MAX  2048     /* caller's per-line bound (RFC: 512) */
#define SMTP_REPLY_LINES_MAX 100
#define SMTP_REPLY_TEXT_MAX  8192
#define SMTP_DSN_MAX 16               /* "5.123.123" + NUL fits */

typedef struct smtp_reply {
    int code;                   /* 0 until the first line */
    char dsn[SMTP_DSN_MAX];
    buf_t text;
    buf_t lines;
    size_t nlines;
    bool done;
} smtp_reply_t;

void smtp_reply_init(smtp_reply_t *r);
void smtp_reply_reset(smtp_reply_t *r);
void smtp_reply_free(smtp_reply_t *r);

/* One line without its CRLF. 1: the reply is complete; 0: more lines
   follow; -1: malformed or over a limit, *error_r says why (static). */
int smtp_reply_feed(smtp_reply_t *r, const char *line, size_t len,
                    const char **error_r);

/* An enhanced status code at the start of p[0..len): its length (not
   counting a following blank) with the code in out, 0 when there is none
   or it does not fit out. */
size_t smtp_reply_dsn_parse(const char *p, size_t len, char *out,
                            size_t size);

/* "250 2.1.0 Ok" style text of r: code, dsn, text. */
const char *smtp_reply_text(const smtp_reply_t *r);

#endif

/*
 * buf - growable byte buffer whose length travels with it. All string
 * formatting in Tern goes into a buf_t; the buffer enforces its own size
 * cap (max), so an attacker-controlled stream cannot grow it unbounded.
 *
 * data is always NUL-terminated one past len (so buf_str() is free), but
 * it may also contain NUL bytes: use len, not strlen.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* NULL until first append; buf_str() returns "" then */
    size_t len;
    size_t cap;
    size_t max;   /* appends that would exceed max fail with -1 */
} buf_t;

#define BUF_UNLIMITED ((size_t)1 << 40)
#define BUF_INIT { NULL, 0, 0, BUF_UNLIMITED }

void buf_init(buf_t *b, size_t max);   /* max 0 means BUF_UNLIMITED */
void buf_free(buf_t *b);               /* releases memory, back to empty */
void buf_reset(buf_t *b);              /* len = 0, keeps memory */

/* append functions return 0, or -1 (buffer unchanged) when over max */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_putc(buf_t *b, int c);
int buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

const char *buf_str(const buf_t *b);   /* never NULL */
void buf_consume(buf_t *b, size_t n);  /* drop n bytes from the front */
void buf_truncate(buf_t *b, size_t len);
/* copy of the contents as a malloc'd C string (caller frees) */
char *buf_strdup(const buf_t *b);

#endif

/*
 * maildrop - the format of the files in maildrop/ and of the stream
 * sendmail pipes to postdrop: local submissions on their way to pickup.
 *
 * Records use the queue file's layout (queue_record.h): TYPE(1)
 * LEN(4, big-endian) DATA(LEN). In this order:
 *   'V' version "1"
 *   'S' envelope sender (empty = the null sender), exactly once
 *   'F' the sender's full name (sendmail -F), at most once
 *   'A' "name=value", each name at most once: dsn_ret=FULL|HDRS,
 *       dsn_envid=TEXT (printable ASCII, at most 100), dsn_notify=LIST
 *       (NEVER or SUCCESS,FAILURE,DELAY as in queue_notify_parse),
 *       extract=yes (sendmail -t), body=7BIT|8BITMIME (sendmail -B)
 *   'R' recipient, any number up to MAILDROP_RCPT_MAX (none only with
 *       extract=yes)
 *   'C' content, LF line ends as given: 1..MAILDROP_CHUNK_MAX bytes;
 *       every chunk but the last is exactly MAILDROP_CHUNK_MAX long, so
 *       a file's size is bounded by its content (maildrop_file_max)
 *   'E' end marker (empty); nothing may follow
 * Text records (S F A R) hold no control characters (C0, DEL) and are at
 * most MAILDROP_TEXT_MAX bytes; the content is at most the reader's
 * content limit ($message_size_limit), counted as cleanup counts it
 * (RFC 1870: every byte, and one more per LF).
 *
 * Security: every byte comes from an untrusted local user. The reader is
 * incremental and strict (postdrop checks the stream it gets, pickup the
 * file it takes): a record is buffered only up to its type's bound, the
 * first violation fails for good, and nothing in a record names a file
 * or a user: the submitter's identity is the file's owner, never data.
 * The writer runs what it writes through a reader first, so it cannot
 * produce a file the reader refuses.
 */
#ifndef TERN_MAILDROP_H
#define TERN_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

#define MDREC_VERSION  'V'
#define MDREC_SENDER   'S'
#define MDREC_FULLNAME 'F'
#define MDREC_ATTR     'A'
#define MDREC_RCPT     'R'
#define MDREC_CONTENT  'C'
#define MDREC_END      'E'

#define MAILDROP_TEXT_MAX  1024
#define MAILDROP_CHUNK_MAX 65536
#define MAILDROP_RCPT_MAX  10000

/* attribute names */
#define MAILDROP_ATTR_DSN_RET    "dsn_ret"
#define MAILDROP_ATTR_DSN_ENVID  "dsn_envid"
#define MAILDROP_ATTR_DSN_NOTIFY "dsn_notify"
#define MAILDROP_ATTR_EXTRACT    "extract"
#define MAILDROP_ATTR_BODY       "body"

/* the largest file (or stream) holding at most content_max bytes of
   content (0: no content limit, UINT64_MAX returned) */
uint64_t maildrop_file_max(uint64_t content_max);

/* one complete record as the reader hands it over; data is NUL
   terminated after len (text records hold no NUL) */
struct maildrop_rec {
    char type;
    const char *data;
    size_t len;
};
/* 0 go on; -1 stop (the reader fails with "rejected by the reader's
   caller" unless *error_r is set) */
typedef int (*maildrop_rec_fn)(void *ctx, const struct maildrop_rec *rec,
                               const char **error_r);

typedef struct maildrop_reader {
    uint64_t content_max;       /* 0: none */
    unsigned char hdr[5];
    size_t hdr_have;
    uint32_t need;              /* DATA bytes of the current record */
    buf_t data;
    char prev;                  /* type of the last record, 0 none */
    bool have_fullname;
    bool extract;
    bool short_chunk;           /* a chunk shorter than the maximum was seen */
    unsigned attrs;             /* attribute names seen (bits) */
    size_t nrcpts;
    uint64_t content;
    uint64_t total;             /* bytes consumed */
    const char *error;          /* set once failed */
} maildrop_reader_t;

void maildrop_reader_init(maildrop_reader_t *r, uint64_t content_max);
void maildrop_reader_free(maildrop_reader_t *r);
/* Consume n bytes, calling fn (may be NULL) for every complete record
   in order. 0: fine so far; -1: the input is malformed, with *error_r
   (static text); every later call fails the same way. */
int maildrop_reader_feed(maildrop_reader_t *r, const void *p, size_t n,
                         maildrop_rec_fn fn, void *ctx, const char **error_r);
/* the input is over: 0 when it ended right after the 'E' record, else
   -1 with *error_r */
int maildrop_reader_end(maildrop_reader_t *r, const char **error_r);
/* has the 'E' record been read? */
bool maildrop_reader_done(const maildrop_reader_t *r);

/* The writer: records go to fd (buffered; the 'V' record first). Every
   call returns 0, or -1 with *error_r ("message too large", a bad
   address, a write error with errno). */
typedef struct maildrop_writer {
    int fd;
    buf_t out;                  /* records not written yet */
    buf_t chunk;                /* content not yet in a 'C' record */
    maildrop_reader_t check;
    const char *error;
    int saved_errno;
} maildrop_writer_t;

int maildrop_writer_init(maildrop_writer_t *w, int fd, uint64_t content_max,
                         const char **error_r);
/* S, F, A or R (in the order above) */
int maildrop_writer_rec(maildrop_writer_t *w, char type, const char *text,
                        const char **error_r);
int maildrop_writer_attr(maildrop_writer_t *w, const char *name,
                         const char *value, const char **error_r);
int maildrop_writer_content(maildrop_writer_t *w, const void *p, size_t n,
                            const char **error_r);
/* the last chunk, 'E', and everything written to fd (no fsync) */
int maildrop_writer_finish(maildrop_writer_t *w, const char **error_r);
void maildrop_writer_free(maildrop_writer_t *w);

/* maildrop_text_valid - the rule of the S F R records (no C0, no DEL,
   at most MAILDROP_TEXT_MAX bytes) */
bool maildrop_text_valid(const char *s, size_t n);

/* Extract the addresses of an RFC 5322 address list (the value of a
   To:, Cc: or Bcc: header, folded lines allowed): comments and display
   names dropped, "<addr>" taken, groups opened ("name:") and closed
   (";"), a source route before ':' inside <> dropped. fn gets each
   address (NUL terminated, no control characters, at most
   MAILDROP_TEXT_MAX bytes; longer or odd ones are skipped) and returns
   0 to go on, -1 to stop. Returns the number of addresses handed over,
   or -1 when fn stopped. */
typedef int (*maildrop_addr_fn)(void *ctx, const char *addr);
long maildrop_header_addrs(const char *value, size_t len, maildrop_addr_fn fn,
                           void *ctx);
/* header_name - "To" etc.: does the header line start with name ':'
   (case-insensitive, blanks allowed before the colon)? Then the value's
   offset, else 0. */
size_t maildrop_header_is(const char *hdr, size_t len, const char *name);

#endif

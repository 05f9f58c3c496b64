/*
 * queue_record - the record layer of queue files, shared by the writer
 * (queue_writer.h) and the reader (queue_reader.h): record types, the
 * order in which they may appear, and the 5-byte record header
 * TYPE(1) LEN(4, big-endian). The file format is described in queue.h.
 */
#ifndef TERN_QUEUE_RECORD_H
#define TERN_QUEUE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QREC_VERSION   'V'
#define QREC_TIME      'T'
#define QREC_SENDER    'S'
#define QREC_ATTR      'A'
#define QREC_ORCPT     'O'
#define QREC_NOTIFY    'N'     /* DSN NOTIFY of the next recipient */
#define QREC_DSN_ORCPT 'P'     /* DSN ORCPT "type;address" of the next one */
#define QREC_RCPT      'R'
#define QREC_DONE      'D'
#define QREC_BOUNCED   'B'
#define QREC_CONTENT   'M'
#define QREC_END       'E'
#define QREC_MAX_LEN   (1024 * 1024)   /* per record, content excluded */

#define QUEUE_REC_HDR_LEN    5
#define QUEUE_CONTENT_DIGITS 20    /* the 'M' record's DATA: content length */

/* DSN NOTIFY (RFC 3461 4.1) as a bit set; 0 = not given */
#define QREC_NOTIFY_NEVER   (1u << 0)
#define QREC_NOTIFY_SUCCESS (1u << 1)
#define QREC_NOTIFY_FAILURE (1u << 2)
#define QREC_NOTIFY_DELAY   (1u << 3)
#define QREC_NOTIFY_TEXT_MAX 32    /* "SUCCESS,FAILURE,DELAY" + NUL fits */

bool queue_rec_is_rcpt(char t);              /* R, D or B */
/* the record types a reader knows */
bool queue_rec_known(char t);
/* may a record of type t come after one of type prev (0 = none yet)? */
bool queue_rec_follows(char prev, char t);
bool queue_rec_text_type(char t);            /* DATA is text: no NUL */
void queue_rec_put_len(unsigned char *p, uint32_t n);
uint32_t queue_rec_get_len(const unsigned char *p);
/* NOTIFY text (n bytes): NEVER, or a comma list of SUCCESS, FAILURE,
   DELAY, each at most once, case-insensitive (the same grammar as the
   SMTP parameter). 0 with *mask_r set; -1 malformed. */
int queue_notify_parse(const char *s, size_t n, unsigned *mask_r);
/* the canonical upper-case text of a valid mask into out (size >=
   QREC_NOTIFY_TEXT_MAX); -1 for 0 or an invalid mask */
int queue_notify_format(unsigned mask, char *out, size_t size);
/* the DATA rules of the DSN records (true for every other type):
   N must parse; P is "addr-type;address", addr-type an atom of letters,
   digits and '-', the address not empty, printable ASCII or UTF-8 */
bool queue_rec_dsn_valid(char t, const void *p, size_t n);

#endif

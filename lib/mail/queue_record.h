/*
 * queue_record - the record layer of queue files, shared by the writer
 * (queue_writer.h) and the reader (queue_reader.h): record types, the
 * order in which they may appear, and the 5-byte record header
 * TYPE(1) LEN(4, big-endian). The file format is described in queue.h.
 */
#ifndef TERN_QUEUE_RECORD_H
#define TERN_QUEUE_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#define QREC_VERSION   'V'
#define QREC_TIME      'T'
#define QREC_SENDER    'S'
#define QREC_ATTR      'A'
#define QREC_ORCPT     'O'
#define QREC_RCPT      'R'
#define QREC_DONE      'D'
#define QREC_BOUNCED   'B'
#define QREC_CONTENT   'M'
#define QREC_END       'E'
#define QREC_MAX_LEN   (1024 * 1024)   /* per record, content excluded */

#define QUEUE_REC_HDR_LEN    5
#define QUEUE_CONTENT_DIGITS 20    /* the 'M' record's DATA: content length */

bool queue_rec_is_rcpt(char t);              /* R, D or B */
/* may a record of type t come after one of type prev (0 = none yet)? */
bool queue_rec_follows(char prev, char t);
bool queue_rec_text_type(char t);            /* DATA is text: no NUL */
void queue_rec_put_len(unsigned char *p, uint32_t n);
uint32_t queue_rec_get_len(const unsigned char *p);

#endif

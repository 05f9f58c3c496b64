/* queue_record - record order and length codec of queue files (queue_record.h). */
#include "queue_record.h"

bool queue_rec_is_rcpt(char t)
{
    return t == QREC_RCPT || t == QREC_DONE || t == QREC_BOUNCED;
}

/* queue_rec_follows - may a record of type t come after one of type prev? */
bool queue_rec_follows(char prev, char t)
{
    switch (t) {
    case QREC_VERSION:
        return prev == 0;
    case QREC_TIME:
        return prev == QREC_VERSION;
    case QREC_SENDER:
        return prev == QREC_TIME;
    case QREC_ATTR:
        return prev == QREC_SENDER || prev == QREC_ATTR;
    case QREC_ORCPT:
    case QREC_RCPT:
    case QREC_DONE:
    case QREC_BOUNCED:
        return prev == QREC_SENDER || prev == QREC_ATTR
               || (t != QREC_ORCPT && prev == QREC_ORCPT) || queue_rec_is_rcpt(prev);
    case QREC_CONTENT:
        return queue_rec_is_rcpt(prev);      /* so at least one recipient */
    case QREC_END:
        return prev == QREC_CONTENT;
    default:
        return false;
    }
}

/* queue_rec_text_type - records whose DATA is text (no NUL allowed) */
bool queue_rec_text_type(char t)
{
    return t == QREC_SENDER || t == QREC_ATTR || t == QREC_ORCPT
           || queue_rec_is_rcpt(t);
}

void queue_rec_put_len(unsigned char *p, uint32_t n)
{
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

uint32_t queue_rec_get_len(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
           | (uint32_t)p[3];
}

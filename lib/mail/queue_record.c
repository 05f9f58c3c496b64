/* queue_record - record order and length codec of queue files (queue_record.h). */
#include "queue_record.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

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
    /* per recipient: O? N? P? then R, D or B */
    case QREC_ORCPT:
    case QREC_NOTIFY:
    case QREC_DSN_ORCPT:
    case QREC_RCPT:
    case QREC_DONE:
    case QREC_BOUNCED:
        if (prev == QREC_SENDER || prev == QREC_ATTR || queue_rec_is_rcpt(prev))
            return true;
        if (prev == QREC_ORCPT)
            return t != QREC_ORCPT;
        if (prev == QREC_NOTIFY)
            return t == QREC_DSN_ORCPT || queue_rec_is_rcpt(t);
        if (prev == QREC_DSN_ORCPT)
            return queue_rec_is_rcpt(t);
        return false;
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
           || t == QREC_NOTIFY || t == QREC_DSN_ORCPT || queue_rec_is_rcpt(t);
}

bool queue_rec_known(char t)
{
    return t != '\0' && strchr("VTSAONPRDBME", t) != NULL;
}

static const struct { const char *name; unsigned bit; } notify_names[] = {
    { "NEVER", QREC_NOTIFY_NEVER },
    { "SUCCESS", QREC_NOTIFY_SUCCESS },
    { "FAILURE", QREC_NOTIFY_FAILURE },
    { "DELAY", QREC_NOTIFY_DELAY },
};

/* queue_notify_parse - strict: no empty item, no repeat, NEVER alone */
int queue_notify_parse(const char *s, size_t n, unsigned *mask_r)
{
    unsigned mask = 0;
    size_t i = 0;

    while (i <= n) {
        size_t j = i, k;
        unsigned bit = 0;

        while (j < n && s[j] != ',')
            j++;
        for (k = 0; k < sizeof(notify_names) / sizeof(notify_names[0]); k++)
            if (strlen(notify_names[k].name) == j - i
                && strncasecmp(s + i, notify_names[k].name, j - i) == 0)
                bit = notify_names[k].bit;
        if (bit == 0 || (mask & bit) != 0)
            return -1;
        mask |= bit;
        i = j + 1;
    }
    if ((mask & QREC_NOTIFY_NEVER) != 0 && mask != QREC_NOTIFY_NEVER)
        return -1;
    *mask_r = mask;
    return 0;
}

int queue_notify_format(unsigned mask, char *out, size_t size)
{
    size_t len = 0;

    if (mask == 0 || (mask & ~0xFu) != 0
        || ((mask & QREC_NOTIFY_NEVER) != 0 && mask != QREC_NOTIFY_NEVER)
        || size < QREC_NOTIFY_TEXT_MAX)
        return -1;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof(notify_names) / sizeof(notify_names[0]); k++) {
        if ((mask & notify_names[k].bit) == 0)
            continue;
        len += (size_t)snprintf(out + len, size - len, "%s%s",
                                len > 0 ? "," : "", notify_names[k].name);
    }
    return 0;
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

bool queue_rec_dsn_valid(char t, const void *p, size_t n)
{
    const unsigned char *s = p;
    unsigned mask;
    size_t i;

    if (t == QREC_NOTIFY)
        return queue_notify_parse(p, n, &mask) == 0;
    if (t != QREC_DSN_ORCPT)
        return true;
    for (i = 0; i < n && s[i] != ';'; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    if (i == 0 || i + 1 >= n)
        return false;
    for (i++; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7F)
            return false;
    return true;
}

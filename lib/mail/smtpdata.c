/* smtpdata - the SMTP DATA stream decoder (see smtpdata.h). */
#include "smtpdata.h"

#include <string.h>
#include <strings.h>

enum {
    ST_BOL,        /* at the start of a line */
    ST_DOT,        /* "." at the start of a line */
    ST_DOT_CR,     /* "." CR at the start of a line */
    ST_MID,        /* inside a line */
    ST_CR,         /* CR inside a line, not yet known to end it */
    ST_DONE,       /* end-of-data seen */
};

void smtpdata_init(smtpdata_t *d)
{
    memset(d, 0, sizeof(*d));
    d->state = ST_BOL;
    d->bol_crlf = true;      /* "." CR LF right after 354 ends DATA */
    d->in_header = true;
    d->hdr_bol = true;
}

bool smtpdata_has_message_id(const smtpdata_t *d)
{
    return d->message_id[0] != '\0';
}

/* hdr_name_valid - the buffered line starts with "field-name:" */
static bool hdr_name_valid(const smtpdata_t *d)
{
    size_t i;

    for (i = 0; i < d->hdr_len && d->hdr[i] != ':'; i++) {
        unsigned char c = (unsigned char)d->hdr[i];
        if (c < 33 || c > 126)
            return false;
    }
    return i > 0 && i < d->hdr_len;
}

/* hdr_finish - the buffered header is complete: is it our Message-ID? */
static void hdr_finish(smtpdata_t *d)
{
    static const char name[] = "message-id:";
    size_t nlen = sizeof(name) - 1;

    if (d->message_id[0] == '\0' && d->hdr_len > nlen
        && strncasecmp(d->hdr, name, nlen) == 0) {
        size_t b = nlen, e = d->hdr_len, o = 0;
        while (b < e && (d->hdr[b] == ' ' || d->hdr[b] == '\t'))
            b++;
        while (e > b && (d->hdr[e - 1] == ' ' || d->hdr[e - 1] == '\t'))
            e--;
        for (; b < e && o < sizeof(d->message_id) - 1; b++) {
            unsigned char c = (unsigned char)d->hdr[b];
            d->message_id[o++] = c == '\t' ? ' '
                : (c < 32 || c == 127) ? '?' : (char)c;
        }
        d->message_id[o] = '\0';
    }
    d->hdr_len = 0;
    d->hdr_overflow = false;
}

/* hdr_byte - follow one content byte through the header section */
static void hdr_byte(smtpdata_t *d, char c)
{
    if (d->hdr_bol) {
        d->hdr_bol = false;
        if (c == '\n') {                       /* empty line: body starts */
            hdr_finish(d);
            d->in_header = false;
            return;
        }
        if (c == ' ' || c == '\t') {
            if (d->hdr_len == 0 && !d->hdr_overflow) {
                d->in_header = false;          /* nothing to continue */
                return;
            }
            d->hdr_cont = true;
        } else {
            hdr_finish(d);
            d->hdr_cont = false;
        }
    }
    if (c == '\n') {
        d->hdr_bol = true;
        if (!d->hdr_cont && !hdr_name_valid(d)) {
            d->hdr_len = 0;                    /* not a header: body */
            d->in_header = false;
        }
        return;
    }
    if (d->hdr_len < sizeof(d->hdr))
        d->hdr[d->hdr_len++] = c;
    else
        d->hdr_overflow = true;
}

/* data_emit - append decoded content, count it, watch the headers */
static int data_emit(smtpdata_t *d, buf_t *out, const char *p, size_t n)
{
    if (buf_append(out, p, n) < 0)
        return -1;
    d->size += n;
    for (size_t i = 0; i < n && d->in_header; i++)
        hdr_byte(d, p[i]);
    return 0;
}

/* data_line_end - a line ended: bare_lf tells how */
static int data_line_end(smtpdata_t *d, buf_t *out, bool bare_lf)
{
    if (bare_lf)
        d->bare_lf = true;
    d->bol_crlf = !bare_lf;
    d->state = ST_BOL;
    d->size++;                  /* a line end counts as CR LF (RFC 1870) */
    return data_emit(d, out, "\n", 1);
}

/* data_mid - a run of line content; returns bytes consumed or -1 */
static long data_mid(smtpdata_t *d, const char *p, size_t n, buf_t *out)
{
    size_t j = 0;

    while (j < n && p[j] != '\r' && p[j] != '\n')
        j++;
    if (j > 0 && data_emit(d, out, p, j) < 0)
        return -1;
    if (j == n)
        return (long)j;
    if (p[j] == '\r') {
        d->state = ST_CR;
    } else if (data_line_end(d, out, true) < 0) {
        return -1;
    }
    return (long)j + 1;
}

void smtpdata_init_chunked(smtpdata_t *d)
{
    smtpdata_init(d);
    d->chunked = true;
}

int smtpdata_end(smtpdata_t *d, buf_t *out)
{
    if (d->state == ST_CR) {                   /* a last bare CR: content */
        d->state = ST_MID;
        if (data_emit(d, out, "\r", 1) < 0)
            return -1;
    }
    if (d->in_header)
        hdr_finish(d);
    d->state = ST_DONE;
    return 0;
}

int smtpdata_feed(smtpdata_t *d, const char *p, size_t n, buf_t *out,
                  size_t *used_r)
{
    size_t i = 0;
    int rc = 0;

    *used_r = 0;
    if (d->state == ST_DONE)
        return 1;
    while (i < n && rc == 0) {
        char c = p[i];
        switch (d->state) {
        case ST_BOL:
            if (c == '.' && !d->chunked) {
                d->state = ST_DOT;
                i++;
            } else {
                d->state = ST_MID;             /* look at c again there */
            }
            break;
        case ST_DOT:
            if (c == '\r') {
                d->state = ST_DOT_CR;
                i++;
            } else if (c == '\n') {            /* "." bare LF: content */
                i++;
                if (data_emit(d, out, ".", 1) < 0
                    || data_line_end(d, out, true) < 0)
                    rc = -1;
            } else {
                d->state = ST_MID;             /* stuffed dot dropped */
            }
            break;
        case ST_DOT_CR:
            if (c != '\n') {
                d->state = ST_CR;              /* dot dropped, CR pending */
            } else if (d->bol_crlf) {
                i++;
                if (d->in_header)
                    hdr_finish(d);
                d->state = ST_DONE;
                rc = 1;
            } else {                           /* LF "." CR LF: content */
                i++;
                if (data_emit(d, out, ".", 1) < 0
                    || data_line_end(d, out, false) < 0)
                    rc = -1;
            }
            break;
        case ST_CR:
            if (c == '\n') {
                i++;
                if (data_line_end(d, out, false) < 0)
                    rc = -1;
            } else {
                d->state = ST_MID;             /* bare CR is content */
                if (data_emit(d, out, "\r", 1) < 0)
                    rc = -1;
            }
            break;
        case ST_MID: {
            long used = data_mid(d, p + i, n - i, out);
            if (used < 0)
                rc = -1;
            else
                i += (size_t)used;
            break;
        }
        default:
            rc = 1;
            break;
        }
    }
    *used_r = i;
    return rc;
}

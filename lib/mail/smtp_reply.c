/*
 * smtp_reply - parse SMTP server replies line by line; see smtp_reply.h.
 *
 * Security: every input is bounded by the caller's line limit and by
 * the reply limits here (lines, text bytes); buffers are capped buf_t's,
 * so a server that never ends a multi-line reply costs a bounded amount
 * of memory before it is an error.
 */
#include "smtp_reply.h"

#include <stdio.h>
#include <string.h>

void smtp_reply_init(smtp_reply_t *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->text, SMTP_REPLY_TEXT_MAX + 64);
    buf_init(&r->lines, SMTP_REPLY_TEXT_MAX + SMTP_REPLY_LINES_MAX);
}

void smtp_reply_reset(smtp_reply_t *r)
{
    r->code = 0;
    r->dsn[0] = '\0';
    r->nlines = 0;
    r->done = false;
    buf_reset(&r->text);
    buf_reset(&r->lines);
}

void smtp_reply_free(smtp_reply_t *r)
{
    buf_free(&r->text);
    buf_free(&r->lines);
    smtp_reply_reset(r);
}

static bool smtp_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* smtp_reply_number - 1 to 3 digits at p; their count, 0 if none */
static size_t smtp_reply_number(const char *p, size_t len)
{
    size_t n = 0;

    while (n < len && n < 4 && smtp_digit(p[n]))
        n++;
    return n >= 1 && n <= 3 ? n : 0;
}

size_t smtp_reply_dsn_parse(const char *p, size_t len, char *out,
                            size_t size)
{
    size_t pos, n;

    if (len < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5')
        || p[1] != '.')
        return 0;
    pos = 2;
    if ((n = smtp_reply_number(p + pos, len - pos)) == 0)
        return 0;
    pos += n;
    if (pos >= len || p[pos] != '.')
        return 0;
    pos++;
    if ((n = smtp_reply_number(p + pos, len - pos)) == 0)
        return 0;
    pos += n;
    if (pos < len && p[pos] != ' ')
        return 0;               /* "5.1.1x" is text, not a code */
    if (pos + 1 > size)
        return 0;
    memcpy(out, p, pos);
    out[pos] = '\0';
    return pos;
}

/* smtp_reply_put_clean - text into b with unsafe bytes as '?' */
static int smtp_reply_put_clean(buf_t *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (buf_putc(b, c < 0x20 || c >= 0x7f ? '?' : c) < 0)
            return -1;
    }
    return 0;
}

int smtp_reply_feed(smtp_reply_t *r, const char *line, size_t len,
                    const char **error_r)
{
    const char *text;
    size_t tlen, dlen;
    char dsn[SMTP_DSN_MAX];
    int code;
    bool last;

    if (r->done)
        smtp_reply_reset(r);
    if (len < 3 || !smtp_digit(line[0]) || !smtp_digit(line[1])
        || !smtp_digit(line[2])) {
        *error_r = "malformed reply: no three-digit code";
        return -1;
    }
    if (len > 3 && line[3] != ' ' && line[3] != '-') {
        *error_r = "malformed reply: no blank or '-' after the code";
        return -1;
    }
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 200 || code > 599) {
        *error_r = "malformed reply: code out of range";
        return -1;
    }
    if (r->nlines > 0 && code != r->code) {
        *error_r = "malformed reply: code changes within a multi-line reply";
        return -1;
    }
    if (r->nlines >= SMTP_REPLY_LINES_MAX) {
        *error_r = "reply has too many lines";
        return -1;
    }
    last = len == 3 || line[3] == ' ';
    text = len > 4 ? line + 4 : "";
    tlen = len > 4 ? len - 4 : 0;
    if (r->lines.len + tlen + 1 > SMTP_REPLY_TEXT_MAX) {
        *error_r = "reply text too long";
        return -1;
    }
    if ((r->nlines > 0 && buf_putc(&r->lines, '\n') < 0)
        || smtp_reply_put_clean(&r->lines, text, tlen) < 0) {
        *error_r = "reply text too long";
        return -1;
    }
    dlen = smtp_reply_dsn_parse(text, tlen, dsn, sizeof(dsn));
    if (r->nlines == 0) {
        r->code = code;
        if (dlen > 0 && dsn[0] == line[0]) {
            memcpy(r->dsn, dsn, dlen + 1);
        } else {
            (void)snprintf(r->dsn, sizeof(r->dsn), "%c.0.0", line[0]);
            dlen = 0;           /* a wrong class is text, kept as sent */
        }
        if (buf_printf(&r->text, "%d", code) < 0) {
            *error_r = "reply text too long";
            return -1;
        }
        if (dlen > 0 && buf_printf(&r->text, " %s", r->dsn) < 0) {
            *error_r = "reply text too long";
            return -1;
        }
    } else if (dlen == 0 || strcmp(dsn, r->dsn) != 0) {
        dlen = 0;               /* only the repeated code is dropped */
    }
    if (dlen > 0) {
        text += dlen;
        tlen -= dlen;
    }
    while (tlen > 0 && *text == ' ') {
        text++;
        tlen--;
    }
    if (tlen > 0 && (buf_putc(&r->text, ' ') < 0
                     || smtp_reply_put_clean(&r->text, text, tlen) < 0)) {
        *error_r = "reply text too long";
        return -1;
    }
    r->nlines++;
    r->done = last;
    return last ? 1 : 0;
}

const char *smtp_reply_text(const smtp_reply_t *r)
{
    return buf_str(&r->text);
}

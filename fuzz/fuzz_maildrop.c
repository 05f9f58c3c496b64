/*
 * fuzz_maildrop - libFuzzer harness for the strict maildrop reader
 * (mail/maildrop.h). The input is read whole and in pieces whose sizes
 * come from its first byte: both must agree. An accepted input must obey
 * what the reader promises (a sender first, text records without control
 * characters, content within the limit, at least one recipient unless
 * extract=yes, nothing after the end record) and no more bytes than
 * maildrop_file_max allows. The input is
 * also parsed as a header's address list (maildrop_header_addrs): every
 * address handed over is non-empty text without control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/maildrop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CONTENT_MAX 4096

struct seen {
    size_t records, rcpts;
    uint64_t content;
    bool sender, extract, end;
};

static int check(void *ctx, const struct maildrop_rec *r, const char **err)
{
    struct seen *s = ctx;

    (void)err;
    if (s->end)
        abort();                        /* nothing after E */
    if (s->records == 0 && r->type != MDREC_VERSION)
        abort();
    if (s->records == 1 && r->type != MDREC_SENDER)
        abort();
    s->records++;
    switch (r->type) {
    case MDREC_SENDER:
        s->sender = true;
        /* fall through */
    case MDREC_FULLNAME:
    case MDREC_ATTR:
    case MDREC_RCPT:
        if (!maildrop_text_valid(r->data, r->len) || strlen(r->data) != r->len)
            abort();
        if (r->type == MDREC_RCPT)
            s->rcpts++;
        if (r->type == MDREC_ATTR && strcmp(r->data, "extract=yes") == 0)
            s->extract = true;
        break;
    case MDREC_CONTENT:
        s->content += r->len;
        if (r->len == 0 || s->content > FUZZ_CONTENT_MAX)
            abort();
        break;
    case MDREC_END:
        if (s->rcpts == 0 && !s->extract)
            abort();
        s->end = true;
        break;
    case MDREC_VERSION:
        break;
    default:
        abort();
    }
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t step, struct seen *s)
{
    maildrop_reader_t r;
    const char *why = NULL;
    int rc = 0;

    maildrop_reader_init(&r, FUZZ_CONTENT_MAX);
    for (size_t off = 0; off < size && rc == 0; off += step)
        rc = maildrop_reader_feed(&r, data + off,
                                  size - off < step ? size - off : step,
                                  check, s, &why);
    if (rc == 0)
        rc = maildrop_reader_end(&r, &why);
    if (rc < 0 && why == NULL)
        abort();
    if (rc == 0 && (!maildrop_reader_done(&r) || r.total != size))
        abort();
    maildrop_reader_free(&r);
    return rc;
}

static int addr_check(void *ctx, const char *a)
{
    (void)ctx;
    if (a[0] == '\0' || !maildrop_text_valid(a, strlen(a)))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen whole = { 0 }, pieces = { 0 };
    size_t step;
    int rc;

    if (size == 0)
        return 0;
    /* the same bytes as a To: header's value (sendmail -t, pickup) */
    if (maildrop_header_addrs((const char *)data, size, addr_check, NULL) < 0)
        abort();
    step = (size_t)data[0] % 16 + 1;
    data++;
    size--;
    rc = run(data, size, size > 0 ? size : 1, &whole);
    if (run(data, size, step, &pieces) != rc)
        abort();
    if (rc == 0 && (whole.records != pieces.records
                    || whole.content != pieces.content))
        abort();
    if (rc == 0 && size > maildrop_file_max(FUZZ_CONTENT_MAX))
        abort();
    return 0;
}

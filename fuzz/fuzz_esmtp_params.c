/* fuzz_esmtp_params - ESMTP parameter list parser, xtext decoding, and
   the values smtpd takes from it: ENVID, ORCPT, NOTIFY (RFC 3461) and
   the BDAT argument (RFC 3030). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/queue_record.h"
#include "mail/smtpcmd.h"
#include "util/util.h"

static void check_params(const struct esmtp_param *p, size_t n)
{
    buf_t x = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        const char *k = p[i].keyword;
        if (k == NULL || *k == '\0' || *k == '-')
            abort();
        for (; *k; k++)
            if (!((*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '-'))
                abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(p[i].keyword, p[j].keyword) == 0)
                abort();
        if (p[i].value != NULL) {
            const char *err = NULL;
            unsigned mask = 0;
            char text[QREC_NOTIFY_TEXT_MAX];

            if (*p[i].value == '\0' || strchr(p[i].value, '=') || strchr(p[i].value, ' '))
                abort();
            /* a decoded ENVID / ORCPT is printable US-ASCII and what the
               queue file takes; a NOTIFY that parses formats and parses
               back to itself */
            if (addr_envid_decode(p[i].value, &x) == 0)
                for (size_t b = 0; b < x.len; b++)
                    if ((unsigned char)x.data[b] < 0x20 || (unsigned char)x.data[b] > 0x7e)
                        abort();
            if (addr_orcpt_decode(p[i].value, &x, &err) == 0) {
                if (!queue_rec_dsn_valid(QREC_DSN_ORCPT, x.data, x.len)
                    || strncmp(buf_str(&x), "rfc822;", 7) != 0)
                    abort();
            } else if (err == NULL || x.len != 0) {
                abort();
            }
            if (queue_notify_parse(p[i].value, strlen(p[i].value), &mask) == 0) {
                unsigned again = 0;
                if (queue_notify_format(mask, text, sizeof(text)) < 0
                    || queue_notify_parse(text, strlen(text), &again) < 0
                    || again != mask)
                    abort();
            }
            if (xtext_decode(p[i].value, &x) == 0)
                for (size_t b = 0; b < x.len; b++)
                    if ((unsigned char)x.data[b] < 0x20 || x.data[b] == 0x7f)
                        abort();
        }
    }
    buf_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct esmtp_param p[ESMTP_MAX_PARAMS];
    char *s = xmalloc(size + 1);
    size_t max = size > 0 ? data[0] % (ESMTP_MAX_PARAMS + 1) : 0, n = 0;
    const char *err = NULL;
    buf_t x = BUF_INIT;

    memcpy(s, data, size);
    s[size] = '\0';
    memset(p, 0, sizeof(p));
    if (esmtp_params_parse(s, p, ESMTP_MAX_PARAMS, &n, &err) == 0) {
        if (n > ESMTP_MAX_PARAMS)
            abort();
        check_params(p, n);
        esmtp_params_free(p, n);
    } else if (err == NULL || n != 0) {
        abort();
    }
    /* an array of exactly max entries: ASan catches a write past it */
    if (size > 0) {
        struct esmtp_param *small = malloc(max * sizeof(*small) + (max ? 0 : 1));
        if (small == NULL)
            abort();
        if (esmtp_params_parse(s + 1, small, max, &n, &err) == 0) {
            if (n > max)
                abort();
            esmtp_params_free(small, n);
        }
        free(small);
    }
    (void)xtext_decode(s, &x);
    {
        uint64_t chunk = 0;
        bool last = false;
        if (smtpcmd_bdat_arg(s, &chunk, &last) == 0 && chunk > SMTPCMD_BDAT_MAX)
            abort();
    }
    buf_free(&x);
    free(s);
    return 0;
}

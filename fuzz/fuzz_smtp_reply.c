/* fuzz_smtp_reply - the smtp client's reply parser (lib/mail/smtp_reply.c),
   the MX rdata parser (dns_mx_from_wire, input starting with 'M') and
   the next-hop parser (smtp_nexthop_parse, input starting with 'N'):
   server input is hostile.
   The input is split into lines at '\n' (a CR before it dropped, as the
   client's reader does) and fed until a reply completes or fails; then
   the next reply starts. Besides crashes the harness checks the
   parser's promises: a complete reply has a code in 200..599, a dsn
   whose class is the code's first digit, and text of printable ASCII
   only, within the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_nexthop.h"
#include "mail/smtp_reply.h"
#include "util/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const smtp_reply_t *r)
{
    const char *t = smtp_reply_text(r);

    if (r->code < 200 || r->code > 599 || r->dsn[0] != '0' + r->code / 100
        || r->dsn[1] != '.')
        abort();
    if (r->text.len > SMTP_REPLY_TEXT_MAX + 64 || r->nlines == 0
        || r->nlines > SMTP_REPLY_LINES_MAX)
        abort();
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || (unsigned char)*t >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtp_reply_t r;
    struct dns_mx mx;
    size_t pos = 0;

    if (size > 0 && data[0] == 'M') {
        unsigned char *copy = malloc(size - 1 ? size - 1 : 1);

        memcpy(copy, data + 1, size - 1);
        if (dns_mx_from_wire(copy, size - 1, &mx) == 0
            && mx.name[0] != '\0' && !dns_name_valid(mx.name))
            abort();
        free(copy);
        return 0;
    }
    if (size > 0 && data[0] == 'N') {
        char *text = malloc(size);
        char name[64];
        bool bracket;
        int port;

        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        if (smtp_nexthop_parse("smtp=25, a=b=26", text, name, sizeof(name),
                               &bracket, &port) == 0
            && (name[0] == '\0' || strlen(name) >= sizeof(name) || port < 0
                || port > 65535))
            abort();
        free(text);
        return 0;
    }
    smtp_reply_init(&r);
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
        size_t use = len > 0 && data[pos + len - 1] == '\r' ? len - 1 : len;
        char *line = malloc(use ? use : 1);
        const char *err = NULL;
        int rc;

        memcpy(line, data + pos, use);
        if (use <= SMTP_REPLY_LINE_MAX) {
            rc = smtp_reply_feed(&r, line, use, &err);
            if (rc == 1)
                check_reply(&r);
            else if (rc < 0) {
                if (err == NULL)
                    abort();
                smtp_reply_reset(&r);
            }
        }
        free(line);
        pos += len + 1;
    }
    smtp_reply_free(&r);
    return 0;
}

/* fuzz_restriction - the restriction list parser and the access(5) value
   interpreter (lib/mail/restriction.c). The input is up to six lines:
   a restriction list (or, when it starts with '=', an access table
   value), the HELO name, the sender, the recipient, the client name and
   the SASL login. Whatever it holds, a REJECT reply must be a 5xx and a
   DEFER a 4xx line of at most RESTR_REPLY_MAX bytes without control
   characters. Lists naming files (lmdb:, pcre:) are skipped: the
   fuzzer must not open files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/restriction.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

static bool fz_mynetworks(void *arg)
{
    (void)arg;
    return false;
}

static bool fz_local_domain(void *arg, const char *domain)
{
    (void)arg;
    return strcmp(domain, "localhost") == 0;
}

static int fz_relay_domain(void *arg, const char *domain)
{
    (void)arg;
    return strcmp(domain, "broken.example") == 0 ? -1
           : strcmp(domain, "relay.example") == 0;
}

static int fz_local_user(void *arg, const char *local)
{
    (void)arg;
    return strcmp(local, "demo") == 0;
}

static int fz_owners(void *arg, const char *key, buf_t *owners)
{
    (void)arg;
    if (strcmp(key, "demo@localhost") != 0)
        return 0;
    buf_reset(owners);
    return buf_puts(owners, "demo, alice") < 0 ? -1 : 1;
}

static void fz_log(void *arg, const char *what, const char *text)
{
    (void)arg;
    if (what == NULL || text == NULL)
        abort();
}

/* the client name lookup's outcome, chosen per input */
static enum restr_name_status fz_status = RESTR_NAME_OK;

static enum restr_name_status fz_name_status(void *arg, bool reverse)
{
    (void)arg;
    return reverse && fz_status == RESTR_NAME_TEMP ? RESTR_NAME_PERM
                                                    : fz_status;
}

static const struct restr_ops fz_ops = {
    .mynetworks = fz_mynetworks,
    .local_domain = fz_local_domain,
    .relay_domain = fz_relay_domain,
    .local_user = fz_local_user,
    .sender_owners = fz_owners,
    .log = fz_log,
    .name_status = fz_name_status,
};

static void fz_check_reply(const struct restr_result *r, enum restr_action a)
{
    const char *s = buf_str(&r->reply);

    if (a != RESTR_REJECT && a != RESTR_DEFER)
        return;
    if (r->reply.len < 4 || r->reply.len > RESTR_REPLY_MAX
        || s[0] != (a == RESTR_REJECT ? '5' : '4'))
        abort();
    for (size_t i = 0; i < r->reply.len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in, *field[6] = { 0 }, *p;
    struct restr_ctx ctx;
    struct restr_result r;
    restriction_list_t *l;
    buf_t err;
    enum restr_action a;

    if (size > 65536)
        return 0;
    fz_status = size % 3 == 0 ? RESTR_NAME_OK
                : size % 3 == 1 ? RESTR_NAME_TEMP : RESTR_NAME_PERM;
    log_set_stderr(false);
    in = xstrndup((const char *)data, size);
    p = in;
    for (int i = 0; i < 6 && p != NULL; i++) {
        field[i] = p;
        if ((p = strchr(p, '\n')) != NULL)
            *p++ = '\0';
    }
    if (strstr(field[0], "lmdb:") != NULL || strstr(field[0], "pcre:") != NULL
        || strstr(field[0], "proxy:") != NULL) {
        free(in);
        return 0;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.client_addr = "192.0.2.1";
    ctx.client_name = field[4] != NULL ? field[4] : "unknown";
    ctx.client_namaddr = "unknown[192.0.2.1]";
    ctx.helo = field[1];
    ctx.sender = field[2];
    ctx.recipient = field[3];
    ctx.sasl_username = field[5];
    ctx.delimiters = "+";
    ctx.ops = &fz_ops;
    restriction_result_init(&r);
    if (field[0][0] == '=') {
        a = restriction_access_value(field[0] + 1, "fuzz", &ctx,
                                     ctx.recipient != NULL ? ctx.recipient
                                                           : "x",
                                     "Recipient address", &r);
        fz_check_reply(&r, a);
    } else {
        buf_init(&err, 0);
        l = restriction_parse("fuzz", field[0], 0, &err);
        if (l == NULL && err.len == 0)
            abort();            /* a refusal always says why */
        if (l != NULL) {
            restriction_eval(l, &ctx, "name", "Class", &r);
            a = restriction_finish(&r);
            fz_check_reply(&r, a);
            restriction_free(l);
        }
        buf_free(&err);
    }
    restriction_result_free(&r);
    free(in);
    return 0;
}

/*
 * fuzz_sasl - libFuzzer harness for the SASL codecs: strict base64 must
 * round-trip exactly (one spelling per value), and PLAIN/LOGIN decoders
 * must either fail with a reason or return fields within their limits
 * that re-encode to the same input. The input is also parsed as an
 * AUTH argument (mail/smtpcmd.h), whose initial response goes through
 * the PLAIN decoder as smtpd would send it. SCRAM-SHA-256: the input
 * as client-first, then (split at the first newline) as client-final
 * after a server-first; as stored secrets, which must re-format to the
 * same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/sasl.h"
#include "util/scram.h"
#include "mail/smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_scram - the SCRAM parsers on one input */
static void fuzz_scram(const char *s, size_t size)
{
    static const unsigned char key[] = "fuzz";
    struct scram_secrets sec, back;
    struct scram_server st;
    buf_t out = BUF_INIT;
    const char *err = NULL, *nl = memchr(s, '\n', size);
    size_t first = nl ? (size_t)(nl - s) : size;

    if (scram_secrets_parse(s, size, &sec, &err) == 0) {
        if (scram_secrets_format(&sec, &out) < 0 || out.len != size
            || memcmp(out.data, s, size) != 0)
            abort();
        if (scram_secrets_parse(out.data, out.len, &back, &err) < 0)
            abort();
    } else if (err == NULL) {
        abort();
    }
    err = NULL;
    if (scram_client_first(&st, s, first, &err) == 0) {
        if (st.user[0] == '\0' || strlen(st.user) > SASL_FIELD_MAX)
            abort();
        if (scram_secrets_fake(st.user, key, sizeof(key), &sec) < 0)
            abort();
        buf_reset(&out);
        if (scram_server_first(&st, &sec, "srvnonce", &out, &err) < 0)
            abort();
        if (nl != NULL) {
            buf_reset(&out);
            err = NULL;
            if (scram_client_final(&st, nl + 1, size - first - 1, &out,
                                   &err) < 0 && err == NULL)
                abort();
        }
    } else if (err == NULL) {
        abort();
    }
    scram_server_clear(&st);
    scram_secrets_clear(&sec);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *err = NULL;
    buf_t dec = BUF_INIT, enc = BUF_INIT;
    struct sasl_plain p;
    char login[SASL_FIELD_MAX + 1];

    if (sasl_base64_decode(s, size, &dec, &err) == 0) {
        if (sasl_base64_encode(dec.data, dec.len, &enc) < 0
            || enc.len != size
            || (size > 0 && memcmp(enc.data, s, size) != 0))
            abort();
    } else if (err == NULL) {
        abort();
    }
    err = NULL;
    if (sasl_plain_decode64(s, size, &p, &err) == 0) {
        buf_reset(&enc);
        if (strlen(p.authcid) == 0 || strlen(p.passwd) == 0
            || (p.authzid[0] && strcmp(p.authzid, p.authcid) != 0)
            || sasl_plain_encode(p.authzid, p.authcid, p.passwd, &enc) < 0
            || enc.len != size || memcmp(enc.data, s, size) != 0)
            abort();
    } else if (err == NULL) {
        abort();
    }
    err = NULL;
    (void)sasl_plain_decode(s, size, &p, &err);
    for (int f = SASL_LOGIN_USER; f <= SASL_LOGIN_PASSWORD; f++) {
        err = NULL;
        if (sasl_login_decode64(s, size, (enum sasl_login_field)f, login,
                                sizeof(login), &err) == 0) {
            if (login[0] == '\0' || strlen(login) > SASL_FIELD_MAX)
                abort();
        } else if (err == NULL) {
            abort();
        }
    }
    if (size < 4096 && memchr(s, '\0', size) == NULL) {
        char *arg = malloc(size + 1), mech[SMTPCMD_MECH_MAX + 1];
        const char *init = NULL;

        if (arg == NULL)
            abort();
        memcpy(arg, s, size);
        arg[size] = '\0';
        if (smtpcmd_auth_arg(arg, mech, sizeof(mech), &init) == 0) {
            if (mech[0] == '\0' || strlen(mech) > SMTPCMD_MECH_MAX
                || (init != NULL && (init < arg || init > arg + size
                                     || *init == '\0'
                                     || strpbrk(init, " \t") != NULL)))
                abort();
            if (init != NULL) {
                err = NULL;
                if (sasl_plain_decode64(init, strlen(init), &p, &err) < 0
                    && err == NULL)
                    abort();
            }
        }
        free(arg);
    }
    fuzz_scram(s, size);
    sasl_plain_clear(&p);
    buf_free(&dec);
    buf_free(&enc);
    return 0;
}

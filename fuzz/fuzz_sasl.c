/*
 * fuzz_sasl - libFuzzer harness for the SASL codecs: strict base64 must
 * round-trip exactly (one spelling per value), and PLAIN/LOGIN decoders
 * must either fail with a reason or return fields within their limits
 * that re-encode to the same input. The input is also parsed as an
 * AUTH argument (mail/smtpcmd.h), whose initial response goes through
 * the PLAIN decoder as smtpd would send it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/sasl.h"
#include "mail/smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    sasl_plain_clear(&p);
    buf_free(&dec);
    buf_free(&enc);
    return 0;
}

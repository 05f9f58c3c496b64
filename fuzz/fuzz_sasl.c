/*
 * fuzz_sasl - libFuzzer harness for the SASL codecs: strict base64 must
 * round-trip exactly (one spelling per value), and PLAIN/LOGIN decoders
 * must either fail with a reason or return fields within their limits
 * that re-encode to the same input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/sasl.h"

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
    sasl_plain_clear(&p);
    buf_free(&dec);
    buf_free(&enc);
    return 0;
}

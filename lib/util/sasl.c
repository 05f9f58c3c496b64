/*
 * sasl - SASL PLAIN and LOGIN message codecs and strict base64; see
 * sasl.h for the rules. Decoding goes through a scratch buffer that is
 * wiped before it is freed: it may hold a password.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "sasl.h"

static const char sasl_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* sasl_b64_value - the 6-bit value of c, -1 if not in the alphabet */
static int sasl_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* sasl_base64_encode - RFC 4648 base64 with padding */
int sasl_base64_encode(const void *data, size_t len, buf_t *out)
{
    const unsigned char *p = data;
    char q[4];

    for (size_t i = 0; i < len; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16;
        size_t n = len - i >= 3 ? 3 : len - i;

        if (n > 1)
            v |= (unsigned long)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        q[0] = sasl_b64_alphabet[(v >> 18) & 63];
        q[1] = sasl_b64_alphabet[(v >> 12) & 63];
        q[2] = n > 1 ? sasl_b64_alphabet[(v >> 6) & 63] : '=';
        q[3] = n > 2 ? sasl_b64_alphabet[v & 63] : '=';
        if (buf_append(out, q, 4) < 0)
            return -1;
    }
    return 0;
}

/* sasl_b64_decode_to - strict decoding into out[0..size): one spelling
   per value; *outlen = bytes written */
static int sasl_b64_decode_to(const char *s, size_t len, unsigned char *out,
                              size_t size, size_t *outlen,
                              const char **error_r)
{
    *outlen = 0;
    if (len % 4 != 0) {
        *error_r = "base64 length is not a multiple of 4";
        return -1;
    }
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        size_t pad = 0;

        for (size_t j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];

            if (c == '=' && last && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad > 0 || (v[j] = sasl_b64_value(c)) < 0) {
                *error_r = c == '=' ? "misplaced base64 padding"
                                    : "invalid base64 character";
                return -1;
            }
        }
        if ((pad == 2 && (v[1] & 15) != 0) || (pad == 1 && (v[2] & 3) != 0)) {
            *error_r = "non-zero trailing base64 bits";
            return -1;
        }
        if (size - *outlen < 3 - pad) {
            *error_r = "base64 data too long";
            return -1;
        }
        out[(*outlen)++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[(*outlen)++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[(*outlen)++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    return 0;
}

/* sasl_base64_decode - strict decoding, appended to a buffer */
int sasl_base64_decode(const char *s, size_t len, buf_t *out,
                       const char **error_r)
{
    size_t size = len / 4 * 3, n = 0;
    unsigned char *tmp = xmalloc(size + 1);
    int r = sasl_b64_decode_to(s, len, tmp, size, &n, error_r);

    if (r == 0 && buf_append(out, tmp, n) < 0) {
        *error_r = "base64 data too long";
        r = -1;
    }
    explicit_bzero(tmp, size + 1);
    free(tmp);
    return r;
}

/* sasl_name_ok - a user name: no control characters (NUL is excluded
   by the callers' framing) */
static bool sasl_name_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* sasl_plain_decode - authzid NUL authcid NUL passwd */
int sasl_plain_decode(const char *msg, size_t len, struct sasl_plain *out,
                      const char **error_r)
{
    const char *nul1, *nul2, *authcid, *passwd;
    size_t zlen, clen, plen;

    memset(out, 0, sizeof(*out));
    nul1 = memchr(msg, '\0', len);
    if (nul1 == NULL) {
        *error_r = "PLAIN message without NUL separators";
        return -1;
    }
    authcid = nul1 + 1;
    nul2 = memchr(authcid, '\0', len - (size_t)(authcid - msg));
    if (nul2 == NULL) {
        *error_r = "PLAIN message without a second NUL separator";
        return -1;
    }
    passwd = nul2 + 1;
    zlen = (size_t)(nul1 - msg);
    clen = (size_t)(nul2 - authcid);
    plen = len - (size_t)(passwd - msg);
    if (memchr(passwd, '\0', plen) != NULL) {
        *error_r = "PLAIN message with more than two NUL separators";
        return -1;
    }
    if (clen == 0 || plen == 0) {
        *error_r = "PLAIN message with an empty user name or password";
        return -1;
    }
    if (zlen > SASL_FIELD_MAX || clen > SASL_FIELD_MAX
        || plen > SASL_FIELD_MAX) {
        *error_r = "PLAIN message field too long";
        return -1;
    }
    if (!sasl_name_ok(msg, zlen) || !sasl_name_ok(authcid, clen)) {
        *error_r = "control character in PLAIN user name";
        return -1;
    }
    if (zlen != 0 && (zlen != clen || memcmp(msg, authcid, clen) != 0)) {
        *error_r = "PLAIN authorization identity differs from the user name";
        return -1;
    }
    memcpy(out->authzid, msg, zlen);
    memcpy(out->authcid, authcid, clen);
    memcpy(out->passwd, passwd, plen);
    return 0;
}

/* sasl_plain_decode64 - base64, then PLAIN; the decoded bytes stay on
   the stack and are wiped */
int sasl_plain_decode64(const char *b64, size_t len, struct sasl_plain *out,
                        const char **error_r)
{
    unsigned char raw[3 * SASL_FIELD_MAX + 2];
    size_t n = 0;
    int r;

    memset(out, 0, sizeof(*out));
    r = sasl_b64_decode_to(b64, len, raw, sizeof(raw), &n, error_r);
    if (r < 0 && len % 4 == 0 && len / 4 * 3 > sizeof(raw) + 2)
        *error_r = "PLAIN message too long";
    if (r == 0)
        r = sasl_plain_decode((const char *)raw, n, out, error_r);
    explicit_bzero(raw, sizeof(raw));
    return r;
}

/* sasl_plain_encode - the client side of PLAIN, base64 included */
int sasl_plain_encode(const char *authzid, const char *authcid,
                      const char *passwd, buf_t *out)
{
    size_t zlen = strlen(authzid), clen = strlen(authcid),
           plen = strlen(passwd);
    char raw[3 * SASL_FIELD_MAX + 2];
    int r;

    if (clen == 0 || plen == 0 || zlen > SASL_FIELD_MAX
        || clen > SASL_FIELD_MAX || plen > SASL_FIELD_MAX)
        return -1;
    memcpy(raw, authzid, zlen);
    raw[zlen] = '\0';
    memcpy(raw + zlen + 1, authcid, clen);
    raw[zlen + 1 + clen] = '\0';
    memcpy(raw + zlen + clen + 2, passwd, plen);
    r = sasl_base64_encode(raw, zlen + clen + plen + 2, out);
    explicit_bzero(raw, sizeof(raw));
    return r;
}

/* sasl_plain_clear - wipe a decoded PLAIN message */
void sasl_plain_clear(struct sasl_plain *p)
{
    explicit_bzero(p, sizeof(*p));
}

/* sasl_login_decode64 - one LOGIN response: a user name or password */
int sasl_login_decode64(const char *b64, size_t len,
                        enum sasl_login_field field, char *out, size_t size,
                        const char **error_r)
{
    unsigned char raw[SASL_FIELD_MAX];
    size_t n = 0;
    int r;

    if (size > 0)
        out[0] = '\0';
    if (size < SASL_FIELD_MAX + 1) {
        *error_r = "LOGIN output buffer too small";
        return -1;
    }
    r = sasl_b64_decode_to(b64, len, raw, sizeof(raw), &n, error_r);
    if (r < 0 && len % 4 == 0 && len / 4 * 3 > sizeof(raw) + 2)
        *error_r = "LOGIN response too long";
    if (r == 0 && n == 0) {
        *error_r = "empty LOGIN response";
        r = -1;
    } else if (r == 0 && memchr(raw, '\0', n) != NULL) {
        *error_r = "NUL in LOGIN response";
        r = -1;
    } else if (r == 0 && field == SASL_LOGIN_USER
               && !sasl_name_ok((const char *)raw, n)) {
        *error_r = "control character in LOGIN user name";
        r = -1;
    }
    if (r == 0) {
        memcpy(out, raw, n);
        out[n] = '\0';
    }
    explicit_bzero(raw, sizeof(raw));
    return r;
}

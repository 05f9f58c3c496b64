/*
 * scram - SCRAM-SHA-256 secrets and messages, server side; the rules
 * are in scram.h. Every parser walks the message once, left to right,
 * with the attribute order fixed; anything unexpected is an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "scram.h"

/* scram_hmac - HMAC-SHA-256 of d[0..n) with key k[0..kn) into out */
static int scram_hmac(const void *k, size_t kn, const void *d, size_t n,
                      unsigned char out[SCRAM_KEY_LEN])
{
    unsigned int olen = 0;

    if (HMAC(EVP_sha256(), k, (int)kn, d, n, out, &olen) == NULL
        || olen != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

/* scram_secrets_derive - RFC 5802 section 3: SaltedPassword, ClientKey,
   StoredKey = H(ClientKey), ServerKey */
int scram_secrets_derive(const char *password, size_t len,
                         const unsigned char *salt, size_t salt_len,
                         unsigned iter, struct scram_secrets *out)
{
    unsigned char salted[SCRAM_KEY_LEN], ckey[SCRAM_KEY_LEN];
    int r = -1;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > SASL_FIELD_MAX || salt_len < SCRAM_SALT_MIN
        || salt_len > SCRAM_SALT_MAX || iter < SCRAM_ITER_MIN
        || iter > SCRAM_ITER_MAX)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len,
                          (int)iter, EVP_sha256(), SCRAM_KEY_LEN, salted) == 1
        && scram_hmac(salted, sizeof(salted), "Client Key", 10, ckey) == 0
        && SHA256(ckey, sizeof(ckey), out->stored_key) != NULL
        && scram_hmac(salted, sizeof(salted), "Server Key", 10,
                      out->server_key) == 0) {
        out->iter = iter;
        out->salt_len = salt_len;
        memcpy(out->salt, salt, salt_len);
        r = 0;
    }
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    if (r < 0)
        scram_secrets_clear(out);
    return r;
}

/* scram_secrets_make - derive with a random salt */
int scram_secrets_make(const char *password, unsigned iter,
                       struct scram_secrets *out)
{
    unsigned char salt[SCRAM_SALT_DEFAULT];

    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -1;
    return scram_secrets_derive(password, strlen(password), salt,
                                sizeof(salt), iter, out);
}

/* scram_secrets_format - "scram-sha-256:ITER:SALT:STOREDKEY:SERVERKEY" */
int scram_secrets_format(const struct scram_secrets *s, buf_t *out)
{
    if (buf_printf(out, SCRAM_PREFIX "%u:", s->iter) < 0
        || sasl_base64_encode(s->salt, s->salt_len, out) < 0
        || buf_putc(out, ':') < 0
        || sasl_base64_encode(s->stored_key, SCRAM_KEY_LEN, out) < 0
        || buf_putc(out, ':') < 0
        || sasl_base64_encode(s->server_key, SCRAM_KEY_LEN, out) < 0)
        return -1;
    return 0;
}

/* scram_b64_field - strictly decode s[0..n) into out, between min and
   max bytes; 0 ok, -1 */
static int scram_b64_field(const char *s, size_t n, unsigned char *out,
                           size_t min, size_t max, size_t *outlen)
{
    buf_t b;
    const char *err = NULL;
    int r = -1;

    buf_init(&b, max + 3);
    if (sasl_base64_decode(s, n, &b, &err) == 0 && b.len >= min
        && b.len <= max) {
        memcpy(out, b.data, b.len);
        *outlen = b.len;
        r = 0;
    }
    if (b.data != NULL)
        OPENSSL_cleanse(b.data, b.cap);
    buf_free(&b);
    return r;
}

/* scram_secrets_parse - the text form, strictly */
int scram_secrets_parse(const char *s, size_t len, struct scram_secrets *out,
                        const char **error_r)
{
    size_t plen = strlen(SCRAM_PREFIX), i, n = 0;
    const char *f[4];
    size_t flen[4];
    unsigned long iter = 0;
    size_t klen = 0;

    memset(out, 0, sizeof(*out));
    *error_r = "malformed SCRAM secrets";
    if (len < plen || memcmp(s, SCRAM_PREFIX, plen) != 0)
        return -1;
    /* four ':'-separated fields after the prefix */
    f[0] = s + plen;
    for (i = plen; i < len; i++) {
        if (s[i] == ':') {
            if (n >= 3)
                return -1;
            flen[n] = (size_t)(s + i - f[n]);
            f[++n] = s + i + 1;
        }
    }
    if (n != 3)
        return -1;
    flen[3] = (size_t)(s + len - f[3]);
    if (flen[0] == 0 || flen[0] > 7 || f[0][0] == '0')
        return -1;
    for (i = 0; i < flen[0]; i++) {
        if (f[0][i] < '0' || f[0][i] > '9')
            return -1;
        iter = iter * 10 + (unsigned long)(f[0][i] - '0');
    }
    if (iter < SCRAM_ITER_MIN || iter > SCRAM_ITER_MAX)
        return -1;
    out->iter = (unsigned)iter;
    if (scram_b64_field(f[1], flen[1], out->salt, SCRAM_SALT_MIN,
                        SCRAM_SALT_MAX, &out->salt_len) < 0
        || scram_b64_field(f[2], flen[2], out->stored_key, SCRAM_KEY_LEN,
                           SCRAM_KEY_LEN, &klen) < 0
        || scram_b64_field(f[3], flen[3], out->server_key, SCRAM_KEY_LEN,
                           SCRAM_KEY_LEN, &klen) < 0) {
        scram_secrets_clear(out);
        return -1;
    }
    *error_r = NULL;
    return 0;
}

/* scram_secrets_fake - keyed on the name, stable for this key */
int scram_secrets_fake(const char *name, const unsigned char *key,
                       size_t key_len, struct scram_secrets *out)
{
    unsigned char m[SASL_FIELD_MAX + 8], salt[SCRAM_KEY_LEN];
    size_t n = strlen(name);
    int r = -1;

    memset(out, 0, sizeof(*out));
    if (n > SASL_FIELD_MAX)
        n = SASL_FIELD_MAX;
    memcpy(m + 1, name, n);
    m[0] = 's';
    if (scram_hmac(key, key_len, m, n + 1, salt) == 0) {
        m[0] = 'k';
        if (scram_hmac(key, key_len, m, n + 1, out->stored_key) == 0) {
            m[0] = 'v';
            r = scram_hmac(key, key_len, m, n + 1, out->server_key);
        }
    }
    out->iter = SCRAM_ITER_DEFAULT;
    out->salt_len = SCRAM_SALT_DEFAULT;
    memcpy(out->salt, salt, SCRAM_SALT_DEFAULT);
    OPENSSL_cleanse(m, sizeof(m));
    if (r < 0)
        scram_secrets_clear(out);
    return r;
}

void scram_secrets_clear(struct scram_secrets *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

/* ---- messages ----------------------------------------------------------- */

/* scram_until - length of the attribute value at p (up to ',' or end) */
static size_t scram_until(const char *p, const char *end)
{
    const char *c = memchr(p, ',', (size_t)(end - p));

    return (size_t)((c ? c : end) - p);
}

/* scram_nonce_ok - printable ASCII except ',', 1..SCRAM_NONCE_MAX */
static bool scram_nonce_ok(const char *s, size_t n)
{
    if (n == 0 || n > SCRAM_NONCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

/* scram_saslname - decode a saslname s[0..n) into out (NUL-terminated);
   0 ok, -1 bad escape, empty, too long or a control character */
static int scram_saslname(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '=') {
            if (n - i >= 3 && s[i + 1] == '2' && s[i + 2] == 'C')
                c = ',';
            else if (n - i >= 3 && s[i + 1] == '3' && s[i + 2] == 'D')
                c = '=';
            else
                return -1;
            i += 2;
        } else if (c < 0x20 || c == 0x7f) {
            return -1;
        }
        if (o + 1 >= size || o >= SASL_FIELD_MAX)
            return -1;
        out[o++] = (char)c;
    }
    if (o == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

/* scram_extensions - zero or more ",X=value" up to end (or, with stop,
   up to a ",p="); returns the position reached, NULL on a bad one */
static const char *scram_extensions(const char *p, const char *end,
                                    bool stop_at_proof)
{
    while (p < end) {
        size_t n;

        if (p[0] != ',' || end - p < 3 || p[2] != '=')
            return NULL;
        if (stop_at_proof && p[1] == 'p')
            return p;
        if (!((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z'))
            || p[1] == 'm')
            return NULL;
        p += 3;
        n = scram_until(p, end);
        p += n;
    }
    return p;
}

/* scram_client_first - gs2 header and client-first-bare */
int scram_client_first(struct scram_server *st, const char *msg, size_t len,
                       const char **error_r)
{
    const char *p = msg, *end = msg + len, *bare;
    char authzid[SASL_FIELD_MAX + 1] = "";
    size_t n;

    memset(st, 0, sizeof(*st));
    *error_r = "malformed SCRAM client-first message";
    if (len > SCRAM_MSG_MAX || memchr(msg, '\0', len) != NULL || len < 3)
        return -1;
    if (p[0] == 'p') {
        *error_r = "SCRAM channel binding is not supported";
        return -1;
    }
    if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        return -1;
    p += 2;
    if (end - p >= 2 && p[0] == 'a' && p[1] == '=') {
        n = scram_until(p + 2, end);
        if (scram_saslname(p + 2, n, authzid, sizeof(authzid)) < 0)
            return -1;
        p += 2 + n;
    }
    if (p >= end || *p != ',')
        return -1;
    p++;
    n = (size_t)(p - msg);
    memcpy(st->gs2, msg, n);
    st->gs2[n] = '\0';
    bare = p;
    if (end - p >= 2 && p[0] == 'm' && p[1] == '=') {
        *error_r = "SCRAM mandatory extension not supported";
        return -1;
    }
    if (end - p < 2 || p[0] != 'n' || p[1] != '=')
        return -1;
    n = scram_until(p + 2, end);
    if (scram_saslname(p + 2, n, st->user, sizeof(st->user)) < 0) {
        *error_r = "bad SCRAM user name";
        return -1;
    }
    p += 2 + n;
    if (end - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=')
        return -1;
    p += 3;
    n = scram_until(p, end);
    if (!scram_nonce_ok(p, n)) {
        *error_r = "bad SCRAM nonce";
        return -1;
    }
    memcpy(st->nonce, p, n);
    st->nonce[n] = '\0';
    p += n;
    if (scram_extensions(p, end, false) != end)
        return -1;
    if (authzid[0] != '\0' && strcmp(authzid, st->user) != 0) {
        *error_r = "SCRAM authorization identity differs from the user name";
        return -1;
    }
    st->auth_len = (size_t)(end - bare);
    memcpy(st->auth_msg, bare, st->auth_len);
    *error_r = NULL;
    return 0;
}

/* scram_server_first - r=CNONCE+SNONCE,s=SALT,i=ITER */
int scram_server_first(struct scram_server *st,
                       const struct scram_secrets *sec, const char *snonce,
                       buf_t *out, const char **error_r)
{
    size_t cn = strlen(st->nonce), sn = strlen(snonce), start = out->len;
    size_t mlen;

    if (st->auth_len == 0 || st->started || !scram_nonce_ok(snonce, sn)) {
        *error_r = "SCRAM exchange out of order or bad server nonce";
        return -1;
    }
    memcpy(st->nonce + cn, snonce, sn);
    st->nonce[cn + sn] = '\0';
    if (buf_printf(out, "r=%s,s=", st->nonce) < 0
        || sasl_base64_encode(sec->salt, sec->salt_len, out) < 0
        || buf_printf(out, ",i=%u", sec->iter) < 0) {
        *error_r = "SCRAM server-first too long";
        return -1;
    }
    mlen = out->len - start;
    if (st->auth_len + 1 + mlen > sizeof(st->auth_msg)) {
        *error_r = "SCRAM server-first too long";
        return -1;
    }
    st->auth_msg[st->auth_len++] = ',';
    memcpy(st->auth_msg + st->auth_len, out->data + start, mlen);
    st->auth_len += mlen;
    st->sec = *sec;
    st->started = true;
    return 0;
}

/* scram_server_first_check - remake server-first with its nonce and
   compare */
int scram_server_first_check(struct scram_server *st,
                             const struct scram_secrets *sec,
                             const char *msg, size_t len,
                             const char **error_r)
{
    size_t cn = strlen(st->nonce), n;
    char snonce[SCRAM_NONCE_MAX + 1];
    buf_t out = BUF_INIT;
    int r = -1;

    *error_r = "SCRAM server-first does not match";
    if (len < 2 + cn || memcmp(msg, "r=", 2) != 0
        || memcmp(msg + 2, st->nonce, cn) != 0)
        return -1;
    n = scram_until(msg + 2 + cn, msg + len);
    if (n == 0 || n > SCRAM_NONCE_MAX)
        return -1;
    memcpy(snonce, msg + 2 + cn, n);
    snonce[n] = '\0';
    if (scram_server_first(st, sec, snonce, &out, error_r) == 0) {
        if (out.len == len && memcmp(out.data, msg, len) == 0) {
            r = 0;
        } else {
            *error_r = "SCRAM server-first does not match";
            st->started = false;
        }
    }
    buf_free(&out);
    return r;
}

/* scram_client_final - c=, r=, extensions, p=; verify the proof */
int scram_client_final(struct scram_server *st, const char *msg, size_t len,
                       buf_t *out, const char **error_r)
{
    const char *p = msg, *end = msg + len, *proof_at;
    unsigned char proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN],
        ckey[SCRAM_KEY_LEN], h[SCRAM_KEY_LEN];
    char am[sizeof(st->auth_msg) + SCRAM_MSG_MAX + 1];
    size_t n, plen = 0, amlen;
    buf_t cb = BUF_INIT;
    int r = -1;

    *error_r = "malformed SCRAM client-final message";
    if (!st->started) {
        *error_r = "SCRAM exchange out of order";
        return -1;
    }
    if (len > SCRAM_MSG_MAX || memchr(msg, '\0', len) != NULL)
        return -1;
    if (end - p < 2 || p[0] != 'c' || p[1] != '=')
        return -1;
    n = scram_until(p + 2, end);
    if (sasl_base64_encode(st->gs2, strlen(st->gs2), &cb) < 0)
        return -1;
    if (n != cb.len || memcmp(p + 2, cb.data, n) != 0) {
        buf_free(&cb);
        *error_r = "SCRAM channel binding does not match the gs2 header";
        return -1;
    }
    buf_free(&cb);
    p += 2 + n;
    if (end - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=')
        return -1;
    p += 3;
    n = scram_until(p, end);
    if (n != strlen(st->nonce) || memcmp(p, st->nonce, n) != 0) {
        *error_r = "SCRAM nonce mismatch";
        return -1;
    }
    p += n;
    proof_at = scram_extensions(p, end, true);
    if (proof_at == NULL || proof_at == end)
        return -1;
    p = proof_at + 3;
    if (memchr(p, ',', (size_t)(end - p)) != NULL
        || scram_b64_field(p, (size_t)(end - p), proof, SCRAM_KEY_LEN,
                           SCRAM_KEY_LEN, &plen) < 0)
        return -1;
    /* AuthMessage = client-first-bare "," server-first ","
       client-final-without-proof */
    amlen = st->auth_len;
    memcpy(am, st->auth_msg, amlen);
    am[amlen++] = ',';
    memcpy(am + amlen, msg, (size_t)(proof_at - msg));
    amlen += (size_t)(proof_at - msg);
    if (scram_hmac(st->sec.stored_key, SCRAM_KEY_LEN, am, amlen, sig) < 0) {
        *error_r = "HMAC failed";
        goto done;
    }
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        ckey[i] = proof[i] ^ sig[i];
    if (SHA256(ckey, sizeof(ckey), h) == NULL) {
        *error_r = "SHA-256 failed";
        goto done;
    }
    if (CRYPTO_memcmp(h, st->sec.stored_key, SCRAM_KEY_LEN) != 0) {
        *error_r = "wrong SCRAM proof";
        r = 0;
        goto done;
    }
    if (scram_hmac(st->sec.server_key, SCRAM_KEY_LEN, am, amlen, sig) < 0
        || buf_puts(out, "v=") < 0
        || sasl_base64_encode(sig, sizeof(sig), out) < 0) {
        *error_r = "cannot make SCRAM server-final";
        goto done;
    }
    *error_r = NULL;
    r = 1;
done:
    OPENSSL_cleanse(proof, sizeof(proof));
    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(h, sizeof(h));
    OPENSSL_cleanse(am, sizeof(am));
    return r;
}

void scram_server_clear(struct scram_server *st)
{
    OPENSSL_cleanse(st, sizeof(*st));
}

/*
 * login_token - auth(8)'s signed "USER just logged in for SERVICE",
 * checked by the mail side before it becomes USER (see login_token.h for
 * the format and the key file rules).
 *
 * Security: the MAC covers a version, the service, the user, the expiry
 * and a random nonce, each NUL-separated (none may contain a NUL, so the
 * fields cannot be shifted against each other); the comparison is
 * CRYPTO_memcmp. The parser accepts exactly the text login_token_make
 * writes and nothing else (no signs, no leading zeros, lowercase hex
 * only), so there is one spelling per token.
 */
#include "mail/login_token.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/keyfile.h"
#include "util/log.h"
#include "util/util.h"

#define LOGIN_TOKEN_NONCE 16
#define LOGIN_TOKEN_MAC   32
#define LOGIN_TOKEN_USER_MAX 255
#define LOGIN_TOKEN_SERVICE_MAX 32

static unsigned char login_token_key[LOGIN_TOKEN_KEY_SIZE];
static bool login_token_have_key;

/* login_token_key_load - see login_token.h */
int login_token_key_load(const char *dir)
{
    struct keyfile_spec spec = {
        .size = LOGIN_TOKEN_KEY_SIZE, .max_age = 0, .keep = 0, .strict = true,
        .dir_label = "data_directory",
    };
    const char *why = NULL;
    int r = keyfile_load(dir, LOGIN_TOKEN_KEY_FILE, LOGIN_TOKEN_LOCK_FILE,
                         &spec, login_token_key, &why);

    if (r < 0) {
        login_token_have_key = false;
        log_error("login token key %s/%s: %s", dir, LOGIN_TOKEN_KEY_FILE, why);
        return -1;
    }
    if (r == 2)
        log_info("new login token key in %s/%s", dir, LOGIN_TOKEN_KEY_FILE);
    login_token_have_key = true;
    return 0;
}

/* login_token_key_set - see login_token.h */
void login_token_key_set(const unsigned char *key, size_t len)
{
    explicit_bzero(login_token_key, sizeof(login_token_key));
    memcpy(login_token_key, key,
           len < sizeof(login_token_key) ? len : sizeof(login_token_key));
    login_token_have_key = true;
}

/* login_token_key_wipe - see login_token.h */
void login_token_key_wipe(void)
{
    explicit_bzero(login_token_key, sizeof(login_token_key));
    login_token_have_key = false;
}

/* login_token_name_ok - a service or user name we sign: 1..max bytes,
   no control characters */
static bool login_token_name_ok(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
            return false;
    return n > 0;
}

static void login_token_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* login_token_mac - HMAC over the NUL-separated fields into hex_out
   (2 * LOGIN_TOKEN_MAC + 1 bytes); 0 ok, -1 error */
static int login_token_mac(const char *service, const char *user,
                           const char *expiry, const char *nonce,
                           char *hex_out)
{
    unsigned char msg[2 + LOGIN_TOKEN_SERVICE_MAX + 1 + LOGIN_TOKEN_USER_MAX
                      + 1 + 24 + 2 * LOGIN_TOKEN_NONCE + 1];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t len = 0;
    const char *parts[] = { "1", service, user, expiry, nonce };

    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        size_t n = strlen(parts[i]);
        if (len + n + 1 > sizeof(msg))
            return -1;
        memcpy(msg + len, parts[i], n);
        len += n;
        if (i + 1 < sizeof(parts) / sizeof(parts[0]))
            msg[len++] = '\0';
    }
    if (HMAC(EVP_sha256(), login_token_key, sizeof(login_token_key), msg, len,
             mac, &maclen) == NULL || maclen != LOGIN_TOKEN_MAC) {
        explicit_bzero(msg, sizeof(msg));
        return -1;
    }
    login_token_hex(mac, LOGIN_TOKEN_MAC, hex_out);
    explicit_bzero(msg, sizeof(msg));
    explicit_bzero(mac, sizeof(mac));
    return 0;
}

/* login_token_make - see login_token.h */
int login_token_make(const char *service, const char *user, time_t now,
                     char *out, size_t size)
{
    unsigned char nonce[LOGIN_TOKEN_NONCE];
    char nonce_hex[2 * LOGIN_TOKEN_NONCE + 1];
    char expiry[24], mac[2 * LOGIN_TOKEN_MAC + 1];

    if (size > 0)
        out[0] = '\0';
    if (!login_token_have_key || now < 0
        || !login_token_name_ok(service, LOGIN_TOKEN_SERVICE_MAX)
        || !login_token_name_ok(user, LOGIN_TOKEN_USER_MAX))
        return -1;
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        return -1;
    login_token_hex(nonce, sizeof(nonce), nonce_hex);
    (void)snprintf(expiry, sizeof(expiry), "%lld",
                   (long long)now + LOGIN_TOKEN_LIFETIME);
    if (login_token_mac(service, user, expiry, nonce_hex, mac) < 0)
        return -1;
    int n = snprintf(out, size, "1.%s.%s.%s", expiry, nonce_hex, mac);
    if (n < 0 || (size_t)n >= size || (size_t)n > LOGIN_TOKEN_MAX) {
        if (size > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* login_token_span_hex - the length of the lowercase hex at s */
static size_t login_token_span_hex(const char *s)
{
    size_t n = 0;

    while ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))
        n++;
    return n;
}

/* login_token_check - see login_token.h */
bool login_token_check(const char *service, const char *user,
                       const char *token, time_t now)
{
    char expiry[24], nonce[2 * LOGIN_TOKEN_NONCE + 1];
    char want[2 * LOGIN_TOKEN_MAC + 1];
    long long exp = 0;
    size_t n = 0;

    if (!login_token_have_key || token == NULL
        || !login_token_name_ok(service, LOGIN_TOKEN_SERVICE_MAX)
        || !login_token_name_ok(user, LOGIN_TOKEN_USER_MAX)
        || strnlen(token, LOGIN_TOKEN_MAX + 1) > LOGIN_TOKEN_MAX
        || strncmp(token, "1.", 2) != 0)
        return false;
    const char *p = token + 2;
    /* expiry: 1..19 decimal digits, no leading zero */
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    if (n == 0 || n > 18 || (p[0] == '0') || p[n] != '.')
        return false;
    for (size_t i = 0; i < n; i++)
        exp = exp * 10 + (p[i] - '0');
    memcpy(expiry, p, n);
    expiry[n] = '\0';
    p += n + 1;
    if (login_token_span_hex(p) != 2 * LOGIN_TOKEN_NONCE
        || p[2 * LOGIN_TOKEN_NONCE] != '.')
        return false;
    memcpy(nonce, p, 2 * LOGIN_TOKEN_NONCE);
    nonce[2 * LOGIN_TOKEN_NONCE] = '\0';
    p += 2 * LOGIN_TOKEN_NONCE + 1;
    if (login_token_span_hex(p) != 2 * LOGIN_TOKEN_MAC
        || p[2 * LOGIN_TOKEN_MAC] != '\0')
        return false;
    if ((long long)now >= exp
        || exp - (long long)now > LOGIN_TOKEN_LIFETIME + 60)
        return false;
    if (login_token_mac(service, user, expiry, nonce, want) < 0)
        return false;
    bool ok = CRYPTO_memcmp(want, p, 2 * LOGIN_TOKEN_MAC) == 0;
    explicit_bzero(want, sizeof(want));
    return ok;
}

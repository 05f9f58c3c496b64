/*
 * smtp_tls - TLS policy and contexts of the smtp client.
 *
 * Levels as Postfix's smtp_tls_security_level: none; may (STARTTLS
 * when the server offers it, certificate not checked; a failed
 * handshake is retried once in plain text, over a new connection);
 * encrypt (TLS required, certificate not checked); verify (TLS
 * required, the certificate must verify against smtp_tls_CAfile /
 * smtp_tls_CApath and name the MX host, or a match= name); secure (as
 * verify, names default to the next-hop domain and its subdomains).
 * smtp_tls_policy_maps overrides the level per destination: the key is
 * the next hop as qmgr gave it (or the recipient domain), then, for a
 * domain, its parent domains with a leading dot; the value is "LEVEL
 * [match=name:name...] ...", Postfix's syntax (other attributes are
 * ignored).
 *
 * Both contexts are made before chroot, so the CA files are read while
 * they can be.
 */
#include "smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "mail/dict.h"
#include "util/log.h"

static tls_ctx_t *smtp_tls_plain;     /* may, encrypt: no verification */
static tls_ctx_t *smtp_tls_verify;    /* verify, secure */
static maps_t *smtp_tls_maps;

static int smtp_tls_level_parse(const char *s, size_t len,
                                enum smtp_tls_level *l)
{
    static const char *names[] = { "none", "may", "encrypt", "verify",
                                   "secure" };

    if (len == 0) {
        *l = SMTP_TLS_NONE;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(s, names[i], len) == 0) {
            *l = (enum smtp_tls_level)i;
            return 0;
        }
    /* Postfix's other levels: dane is verify without DANE data here */
    if (len == 4 && strncasecmp(s, "dane", 4) == 0) {
        *l = SMTP_TLS_MAY;
        return 0;
    }
    return -1;
}

static tls_ctx_t *smtp_tls_make(bool verify, const char *protocols,
                                char *err, size_t size)
{
    char *e = NULL;
    int min, max;
    tls_ctx_t *ctx = tls_ctx_client_new(NULL, &e);
    const char *ciphers = strcmp(var_smtp_tls_ciphers, "high") == 0
                          ? var_tls_high_cipherlist : var_tls_medium_cipherlist;

    /* without verification the CAs still tell Trusted from Untrusted
       in the log */
    if (ctx != NULL && (verify || *var_smtp_tls_CAfile || *var_smtp_tls_CApath)
        && tls_ctx_client_verify(ctx, var_smtp_tls_CAfile,
                                 var_smtp_tls_CApath, verify, &e) < 0) {
        tls_ctx_free(ctx);
        ctx = NULL;
    }
    if (ctx != NULL
        && (tls_protocols_parse(protocols, &min, &max, &e) < 0
            || tls_ctx_set_versions(ctx, min, max, &e) < 0
            || tls_ctx_set_ciphers(ctx, ciphers, &e) < 0)) {
        tls_ctx_free(ctx);
        ctx = NULL;
    }
    if (ctx == NULL) {
        (void)snprintf(err, size, "%s", e ? e : "TLS set-up failed");
        free(e);
    }
    return ctx;
}

int smtp_tls_init(char *err, size_t size)
{
    const char *e = NULL;
    enum smtp_tls_level l;
    bool want = *var_smtp_tls_policy_maps != '\0';

    if (smtp_tls_level_parse(var_smtp_tls_security_level,
                             strlen(var_smtp_tls_security_level), &l) < 0) {
        (void)snprintf(err, size, "bad smtp_tls_security_level: %s",
                       var_smtp_tls_security_level);
        return -1;
    }
    if (want) {
        smtp_tls_maps = maps_open(var_smtp_tls_policy_maps, &e);
        if (smtp_tls_maps == NULL) {
            (void)snprintf(err, size, "smtp_tls_policy_maps %s: %s",
                           var_smtp_tls_policy_maps, e ? e : "open failed");
            return -1;
        }
    }
    if (l == SMTP_TLS_NONE && !want)
        return 0;
    smtp_tls_plain = smtp_tls_make(false, l >= SMTP_TLS_ENCRYPT
                                   ? var_smtp_tls_mandatory_protocols
                                   : var_smtp_tls_protocols, err, size);
    if (smtp_tls_plain == NULL)
        return -1;
    if (*var_smtp_tls_CAfile || *var_smtp_tls_CApath) {
        smtp_tls_verify = smtp_tls_make(true, var_smtp_tls_mandatory_protocols,
                                        err, size);
        if (smtp_tls_verify == NULL)
            return -1;
    }
    return 0;
}

tls_ctx_t *smtp_tls_ctx(enum smtp_tls_level level)
{
    return level >= SMTP_TLS_VERIFY ? smtp_tls_verify : smtp_tls_plain;
}

/* smtp_tls_apply - "LEVEL attr=value ..." into p */
static int smtp_tls_apply(const char *v, struct smtp_tls_policy *p)
{
    size_t len = strcspn(v, " \t,");

    if (smtp_tls_level_parse(v, len, &p->level) < 0)
        return -1;
    v += len;
    while (*v) {
        v += strspn(v, " \t,");
        len = strcspn(v, " \t,");
        if (len > 6 && strncasecmp(v, "match=", 6) == 0)
            (void)snprintf(p->match, sizeof(p->match), "%.*s",
                           (int)(len - 6), v + 6);
        v += len;
    }
    return 0;
}

int smtp_tls_policy(const char *dest, struct smtp_tls_policy *p,
                    char *reason, size_t size)
{
    buf_t v;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    (void)smtp_tls_level_parse(var_smtp_tls_security_level,
                               strlen(var_smtp_tls_security_level),
                               &p->level);
    if (smtp_tls_maps == NULL)
        return 0;
    buf_init(&v, 4096);
    for (const char *k = dest; k != NULL && *k;) {
        rc = maps_lookup(smtp_tls_maps, k, &v);
        if (rc != 0)
            break;
        /* parent domains: ".example.com" */
        k = strchr(k + (*k == '.'), '.');
    }
    if (rc < 0) {
        (void)snprintf(reason, size, "smtp_tls_policy_maps lookup of %s "
                       "failed", dest);
    } else if (rc > 0 && smtp_tls_apply(buf_str(&v), p) < 0) {
        (void)snprintf(reason, size, "bad TLS policy for %s: %s", dest,
                       buf_str(&v));
        rc = -1;
    }
    buf_free(&v);
    return rc < 0 ? -1 : 0;
}

void smtp_tls_log(const smtp_conn_t *c, enum smtp_tls_level level)
{
    const char *trust = tls_conn_peer_verified(c->tls)
                        ? (level >= SMTP_TLS_VERIFY ? "Verified" : "Trusted")
                        : "Untrusted";

    log_info("%s TLS connection established to %s: %s with cipher %s "
             "(%d/%d bits)", trust, c->relay, tls_conn_version(c->tls),
             tls_conn_cipher(c->tls), tls_conn_cipher_bits(c->tls),
             tls_conn_cipher_bits(c->tls));
}

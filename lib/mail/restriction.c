/*
 * restriction - Postfix-style access restriction lists: the parser, the
 * access(5) value interpreter, lookup keys and evaluation (see
 * restriction.h for the interface and the security notes).
 *
 * Reply codes are Postfix's defaults: reject 554 (access_map_reject_code,
 * reject_code), defer 450 (defer_code), relay denied 554
 * (relay_domains_reject_code), unknown local user 550
 * (unknown_local_recipient_reject_code), non-FQDN names 504, invalid HELO
 * 501, no (confirmed) client name 450 (unknown_client_reject_code; always
 * 450 after a temporary DNS failure) with RFC 7372's 4.7.25 as Postfix
 * 3.1 and later, sender login mismatch 553.
 */
#include "restriction.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/dict.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

enum restr_id {
    R_PERMIT,
    R_REJECT,
    R_DEFER,
    R_WARN_IF_REJECT,
    R_PERMIT_MYNETWORKS,
    R_PERMIT_SASL_AUTHENTICATED,
    R_PERMIT_AUTH_DESTINATION,
    R_REJECT_UNAUTH_DESTINATION,
    R_DEFER_UNAUTH_DESTINATION,
    R_REJECT_UNLISTED_RECIPIENT,
    R_REJECT_NON_FQDN_HELO,
    R_REJECT_INVALID_HELO,
    R_REJECT_NON_FQDN_SENDER,
    R_REJECT_NON_FQDN_RECIPIENT,
    R_REJECT_UNKNOWN_CLIENT,
    R_REJECT_UNKNOWN_REVERSE_CLIENT,
    R_REJECT_SENDER_LOGIN_MISMATCH,
    R_REJECT_AUTH_SENDER_LOGIN_MISMATCH,
    R_REJECT_UNAUTH_SENDER_LOGIN_MISMATCH,
    R_CHECK_CLIENT_ACCESS,
    R_CHECK_REVERSE_CLIENT_ACCESS,
    R_CHECK_HELO_ACCESS,
    R_CHECK_SENDER_ACCESS,
    R_CHECK_RECIPIENT_ACCESS,
};

static const struct restr_name {
    const char *name;
    enum restr_id id;
    bool table;                   /* takes the next word as its table */
} restr_names[] = {
    { "permit", R_PERMIT, false },
    { "reject", R_REJECT, false },
    { "defer", R_DEFER, false },
    { "warn_if_reject", R_WARN_IF_REJECT, false },
    { "permit_mynetworks", R_PERMIT_MYNETWORKS, false },
    { "permit_sasl_authenticated", R_PERMIT_SASL_AUTHENTICATED, false },
    { "permit_auth_destination", R_PERMIT_AUTH_DESTINATION, false },
    { "reject_unauth_destination", R_REJECT_UNAUTH_DESTINATION, false },
    { "defer_unauth_destination", R_DEFER_UNAUTH_DESTINATION, false },
    { "reject_unlisted_recipient", R_REJECT_UNLISTED_RECIPIENT, false },
    { "check_recipient_maps", R_REJECT_UNLISTED_RECIPIENT, false },
    { "reject_non_fqdn_helo_hostname", R_REJECT_NON_FQDN_HELO, false },
    { "reject_non_fqdn_hostname", R_REJECT_NON_FQDN_HELO, false },
    { "reject_invalid_helo_hostname", R_REJECT_INVALID_HELO, false },
    { "reject_invalid_hostname", R_REJECT_INVALID_HELO, false },
    { "reject_non_fqdn_sender", R_REJECT_NON_FQDN_SENDER, false },
    { "reject_non_fqdn_recipient", R_REJECT_NON_FQDN_RECIPIENT, false },
    { "reject_unknown_reverse_client_hostname",
      R_REJECT_UNKNOWN_REVERSE_CLIENT, false },
    { "reject_unknown_client_hostname", R_REJECT_UNKNOWN_CLIENT, false },
    { "reject_unknown_client", R_REJECT_UNKNOWN_CLIENT, false },
    { "reject_sender_login_mismatch", R_REJECT_SENDER_LOGIN_MISMATCH, false },
    { "reject_authenticated_sender_login_mismatch",
      R_REJECT_AUTH_SENDER_LOGIN_MISMATCH, false },
    { "reject_unauthenticated_sender_login_mismatch",
      R_REJECT_UNAUTH_SENDER_LOGIN_MISMATCH, false },
    { "check_client_access", R_CHECK_CLIENT_ACCESS, true },
    { "check_reverse_client_hostname_access", R_CHECK_REVERSE_CLIENT_ACCESS,
      true },
    { "check_helo_access", R_CHECK_HELO_ACCESS, true },
    { "check_sender_access", R_CHECK_SENDER_ACCESS, true },
    { "check_recipient_access", R_CHECK_RECIPIENT_ACCESS, true },
};

#define RESTR_NNAMES (sizeof(restr_names) / sizeof(restr_names[0]))
#define RESTR_WORD_MAX 4096       /* longest name or table spec */
#define RESTR_TEXT_MAX 400        /* reply text from a table */
#define RESTR_UNKNOWN_CLIENT_CODE 450   /* Postfix's unknown_client_reject_code */

struct restr_entry {
    enum restr_id id;
    const char *name;             /* static, from restr_names */
    maps_t *table;                /* check_*_access */
    bool pattern;                 /* pcre:/regexp: table: whole keys only */
    char *table_spec;
};

struct restriction_list {
    struct restr_entry *v;
    size_t n, cap;
};

/* ---- parsing ------------------------------------------------------------ */

static const struct restr_name *restr_lookup_name(const char *w, size_t n)
{
    for (size_t i = 0; i < RESTR_NNAMES; i++)
        if (strlen(restr_names[i].name) == n
            && strncasecmp(restr_names[i].name, w, n) == 0)
            return &restr_names[i];
    return NULL;
}

/* restr_error - "param: message" into error, with the word shown safely */
static void restr_error(buf_t *error, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void restr_error(buf_t *error, const char *param, const char *fmt, ...)
{
    va_list ap;

    if (error == NULL)
        return;
    (void)buf_printf(error, "%s: ", param);
    va_start(ap, fmt);
    (void)buf_vprintf(error, fmt, ap);
    va_end(ap);
}

/* restr_show - a word for an error message: bounded, controls as '?' */
static void restr_show(const char *w, size_t n, char *out, size_t size)
{
    size_t i;

    for (i = 0; i < n && i + 4 < size; i++) {
        unsigned char c = (unsigned char)w[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (i < n)
        out[i++] = '.', out[i++] = '.', out[i++] = '.';
    out[i] = '\0';
}

/* restr_pattern_table - a regular expression table (also behind
   proxy:): as in Postfix, only whole strings are looked up in it (no
   parent domains, no network prefixes, no user@ or domain parts) */
static bool restr_pattern_table(const char *spec)
{
    if (strncasecmp(spec, "proxy:", 6) == 0)
        spec += 6;
    return strncasecmp(spec, "pcre:", 5) == 0
           || strncasecmp(spec, "regexp:", 7) == 0;
}

restriction_list_t *restriction_parse(const char *param, const char *spec,
                                      unsigned flags, buf_t *error)
{
    restriction_list_t *l = xcalloc(1, sizeof(*l));
    const char *s = spec != NULL ? spec : "";
    char shown[128];
    long len;

    if (param == NULL)
        param = "restrictions";
    while ((len = str_list_next_word(&s)) > 0) {
        const struct restr_name *rn = restr_lookup_name(s, (size_t)len);
        struct restr_entry e = { 0 };

        if (rn == NULL) {
            restr_show(s, (size_t)len, shown, sizeof(shown));
            restr_error(error, param, "unknown restriction \"%s\"", shown);
            goto fail;
        }
        s += len;
        e.id = rn->id;
        e.name = rn->name;
        if (rn->table) {
            const char *derr = NULL;
            if (flags & RESTR_PARSE_NO_TABLES) {
                restr_error(error, param, "%s is not allowed here "
                            "(a table value)", rn->name);
                goto fail;
            }
            if ((len = str_list_next_word(&s)) <= 0
                || restr_lookup_name(s, (size_t)len) != NULL
                || memchr(s, ':', (size_t)len) == NULL) {
                if (len < 0)
                    restr_error(error, param, "%s: unbalanced braces",
                                rn->name);
                else
                    restr_error(error, param, "%s needs a table (type:name)"
                                " argument", rn->name);
                goto fail;
            }
            if (len > RESTR_WORD_MAX) {
                restr_error(error, param, "%s: table name too long",
                            rn->name);
                goto fail;
            }
            e.table_spec = xstrndup(s, (size_t)len);
            e.pattern = restr_pattern_table(e.table_spec);
            s += len;
            /* a table file that is not there yet defers (4.3.0) until it
               appears, as a missing recipient table does */
            e.table = maps_open_missing_ok(e.table_spec, &derr);
            if (e.table == NULL) {
                restr_show(e.table_spec, strlen(e.table_spec), shown,
                           sizeof(shown));
                restr_error(error, param, "%s %s: %s", rn->name, shown,
                            derr != NULL ? derr : "cannot open");
                free(e.table_spec);
                goto fail;
            }
        }
        if (l->n == l->cap) {
            /* a list is at most half as long as its spec: no overflow */
            l->cap = l->cap != 0 ? l->cap * 2 : 8;
            l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = e;
    }
    if (len < 0) {
        restr_error(error, param, "unbalanced braces");
        goto fail;
    }
    return l;

fail:
    restriction_free(l);
    return NULL;
}

void restriction_free(restriction_list_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        maps_close(l->v[i].table);
        free(l->v[i].table_spec);
    }
    free(l->v);
    free(l);
}

size_t restriction_count(const restriction_list_t *l)
{
    return l != NULL ? l->n : 0;
}

bool restriction_has(const restriction_list_t *l, const char *names)
{
    const char *s = names;
    long len;

    if (l == NULL)
        return false;
    while ((len = str_list_next_word(&s)) > 0) {
        const struct restr_name *rn = restr_lookup_name(s, (size_t)len);
        s += len;
        for (size_t i = 0; rn != NULL && i < l->n; i++)
            if (l->v[i].id == rn->id)
                return true;
    }
    return false;
}

/* ---- results and replies ---------------------------------------------- */

void restriction_result_init(struct restr_result *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->reply, RESTR_REPLY_MAX + 1);
    buf_init(&r->dip_reply, RESTR_REPLY_MAX + 1);
    buf_init(&r->dir_reply, RESTR_REPLY_MAX + 1);
}

void restriction_result_free(struct restr_result *r)
{
    buf_free(&r->reply);
    buf_free(&r->dip_reply);
    buf_free(&r->dir_reply);
}

/* restr_put - set b to the formatted reply: bounded, controls as '?' */
static void restr_put(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void restr_put(buf_t *b, const char *fmt, ...)
{
    char line[RESTR_REPLY_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        str_copy(line, "451 4.3.0 Error: internal error", sizeof(line));
    for (char *p = line; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    buf_reset(b);
    (void)buf_puts(b, line);
}

/* restr_dsn_prefix - length of an enhanced status code "C.S.D" of class
   cls at the start of text (followed by a space or the end), else 0 */
static size_t restr_dsn_prefix(const char *text, char cls)
{
    const char *p = text;
    size_t n;

    if (*p != cls || p[1] != '.')
        return 0;
    p += 2;
    for (n = 0; isdigit((unsigned char)*p) && n < 3; n++)
        p++;
    if (n == 0 || *p != '.')
        return 0;
    p++;
    for (n = 0; isdigit((unsigned char)*p) && n < 3; n++)
        p++;
    if (n == 0 || (*p != '\0' && *p != ' ' && *p != '\t'))
        return 0;
    return (size_t)(p - text);
}

/* restr_reply_text - "CODE DSN <name>: Class rejected: text", where a
   leading enhanced status code of text's class replaces dflt_dsn */
static void restr_reply_text(buf_t *b, int code, const char *dflt_dsn,
                             const char *name, const char *cls,
                             const char *text)
{
    char dsn[16];
    size_t n;

    str_copy(dsn, dflt_dsn, sizeof(dsn));
    if (text == NULL || *text == '\0')
        text = "Access denied";
    if ((n = restr_dsn_prefix(text, (char)('0' + code / 100))) > 0
        && n < sizeof(dsn)) {
        memcpy(dsn, text, n);
        dsn[n] = '\0';
        text += n;
        while (*text == ' ' || *text == '\t')
            text++;
        if (*text == '\0')
            text = "Access denied";
    }
    restr_put(b, "%d %s <%s>: %s rejected: %.*s", code, dsn, name, cls,
              RESTR_TEXT_MAX, text);
}

/* restr_event - a side effect for the log */
static void restr_event(const struct restr_ctx *ctx, const char *what,
                        const char *text)
{
    if (ctx->ops != NULL && ctx->ops->log != NULL)
        ctx->ops->log(ctx->arg, what, text);
}

/* restr_decide - a reject or defer, with DEFER_IF_REJECT applied */
static enum restr_action restr_decide(struct restr_result *r,
                                      enum restr_action a)
{
    if (a == RESTR_REJECT && r->defer_if_reject) {
        buf_reset(&r->reply);
        (void)buf_puts(&r->reply, buf_str(&r->dir_reply));
        a = RESTR_DEFER;
    }
    return a;
}

static enum restr_action restr_reject(struct restr_result *r, int code,
                                      const char *dsn, const char *name,
                                      const char *cls, const char *text)
{
    restr_reply_text(&r->reply, code, dsn, name, cls, text);
    return restr_decide(r, code / 100 == 4 ? RESTR_DEFER : RESTR_REJECT);
}

/* restr_tempfail - a table could not be read: never a fall-through */
static enum restr_action restr_tempfail(struct restr_result *r,
                                        const char *name)
{
    restr_put(&r->reply, "451 4.3.0 <%s>: Temporary lookup failure", name);
    return RESTR_DEFER;
}

/* restr_config_error - a table value we cannot use (logged) */
static enum restr_action restr_config_error(struct restr_result *r,
                                            const char *table,
                                            const char *value,
                                            const char *why)
{
    char shown[128];

    restr_show(value, strlen(value), shown, sizeof(shown));
    log_warning("%s: bad access table value \"%s\": %s",
                table != NULL ? table : "table", shown, why);
    restr_put(&r->reply, "451 4.3.5 Server configuration error");
    return RESTR_DEFER;
}

/* ---- access table values ---------------------------------------------- */

static enum restr_action restr_eval_list(const restriction_list_t *l,
                                         const struct restr_ctx *ctx,
                                         const char *reply_name,
                                         const char *reply_class,
                                         struct restr_result *r);

static bool restr_word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* restr_action_text - "<name>: Class text", or "... triggers X action" */
static void restr_action_text(buf_t *b, const char *name, const char *cls,
                              const char *what, const char *text)
{
    if (*text != '\0')
        restr_put(b, "<%s>: %s %.*s", name, cls, RESTR_TEXT_MAX, text);
    else
        restr_put(b, "<%s>: %s triggers %s action", name, cls, what);
}

enum restr_action restriction_access_value(const char *value,
                                           const char *table,
                                           const struct restr_ctx *ctx,
                                           const char *reply_name,
                                           const char *reply_class,
                                           struct restr_result *r)
{
    static const struct restr_ops no_ops;
    struct restr_ctx c;
    const char *v = value, *text;
    size_t n;
    buf_t tmp;

    if (ctx->ops == NULL) {
        c = *ctx;
        c.ops = &no_ops;
        ctx = &c;
    }
    while (*v == ' ' || *v == '\t')
        v++;
    for (n = 0; v[n] != '\0' && v[n] != ' ' && v[n] != '\t'; n++)
        ;
    text = v + n;
    while (*text == ' ' || *text == '\t')
        text++;

    if (n == 0)
        return restr_config_error(r, table, value, "empty value");
    if (strspn(v, "0123456789") == strlen(v))
        return RESTR_PERMIT;    /* access(5): all-numerical is OK */
    if (restr_word_is(v, n, "OK"))
        return RESTR_PERMIT;
    if (restr_word_is(v, n, "DUNNO"))
        return RESTR_DUNNO;
    if (restr_word_is(v, n, "REJECT"))
        return restr_reject(r, 554, "5.7.1", reply_name, reply_class, text);
    if (restr_word_is(v, n, "DEFER"))
        return restr_reject(r, 450, "4.7.1", reply_name, reply_class, text);
    if (restr_word_is(v, n, "DEFER_IF_REJECT")) {
        r->defer_if_reject = true;
        restr_reply_text(&r->dir_reply, 450, "4.7.1", reply_name,
                         reply_class, text);
        return RESTR_DUNNO;
    }
    if (restr_word_is(v, n, "DEFER_IF_PERMIT")) {
        r->defer_if_permit = true;
        restr_reply_text(&r->dip_reply, 450, "4.7.1", reply_name,
                         reply_class, text);
        return RESTR_DUNNO;
    }
    if (restr_word_is(v, n, "WARN")) {
        buf_init(&tmp, RESTR_REPLY_MAX + 1);
        if (*text != '\0')
            restr_put(&tmp, "%.*s", RESTR_TEXT_MAX, text);
        else
            restr_action_text(&tmp, reply_name, reply_class, "WARN", text);
        restr_event(ctx, "warn", buf_str(&tmp));
        buf_free(&tmp);
        return RESTR_DUNNO;
    }
    if (restr_word_is(v, n, "HOLD") || restr_word_is(v, n, "DISCARD")) {
        bool hold = restr_word_is(v, n, "HOLD");
        buf_init(&tmp, RESTR_REPLY_MAX + 1);
        restr_action_text(&tmp, reply_name, reply_class,
                          hold ? "HOLD" : "DISCARD", text);
        restr_event(ctx, hold ? "hold" : "discard", buf_str(&tmp));
        buf_free(&tmp);
        if (hold) {
            r->hold = true;
            return RESTR_DUNNO;
        }
        r->discard = true;
        return RESTR_DISCARD;
    }
    if (n == 3 && (v[0] == '4' || v[0] == '5') && isdigit((unsigned char)v[1])
        && isdigit((unsigned char)v[2])) {
        int code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
        return restr_reject(r, code, v[0] == '4' ? "4.7.1" : "5.7.1",
                            reply_name, reply_class, text);
    }
    if (isdigit((unsigned char)v[0]))
        return restr_config_error(r, table, value, "not a 4xx or 5xx code");

    /* a list of restrictions without tables ("permit_mynetworks, reject") */
    buf_init(&tmp, 1024);
    restriction_list_t *l = restriction_parse(table != NULL ? table : "table",
                                              value, RESTR_PARSE_NO_TABLES,
                                              &tmp);
    if (l == NULL) {
        enum restr_action a = restr_config_error(r, table, value,
                                                 buf_str(&tmp));
        buf_free(&tmp);
        return a;
    }
    buf_free(&tmp);
    enum restr_action a = restr_eval_list(l, ctx, reply_name, reply_class, r);
    restriction_free(l);
    return a;
}

/* ---- lookup keys ------------------------------------------------------ */

/* restr_lookup - one key: 1 found (value), 0 not, -1 table error.
   A key a table could not hold is simply not there. */
static int restr_lookup(maps_t *m, const char *key, buf_t *value)
{
    if (strlen(key) > DICT_KEY_MAX || *key == '\0')
        return 0;
    return maps_lookup(m, key, value);
}

/* restr_domain_keys - domain, then each parent domain ("a.b.c", "b.c",
   "c"); address literals have no parents. 1/0/-1 as restr_lookup. */
static int restr_domain_lookup(maps_t *m, const char *domain, buf_t *value)
{
    const char *d = domain;
    int rc;

    if ((rc = restr_lookup(m, d, value)) != 0 || *d == '[')
        return rc;
    while ((d = strchr(d, '.')) != NULL) {
        d++;
        if ((rc = restr_lookup(m, d, value)) != 0)
            return rc;
    }
    return 0;
}

/* restr_addr_lookup - "1.2.3.4", "1.2.3", "1.2", "1" (IPv6: cut at ':') */
static int restr_addr_lookup(maps_t *m, const char *addr, buf_t *value)
{
    char key[128];
    char sep = strchr(addr, ':') != NULL ? ':' : '.';
    char *cut;
    int rc;

    if (str_copy(key, addr, sizeof(key)) >= sizeof(key))
        return 0;
    for (;;) {
        size_t n = strlen(key);
        if (n > 0 && key[n - 1] != sep
            && (rc = restr_lookup(m, key, value)) != 0)
            return rc;
        if ((cut = strrchr(key, sep)) == NULL)
            return 0;
        *cut = '\0';
    }
}

/* restr_base_local - local minus "+extension": length of the base */
static size_t restr_base_len(const char *local, const char *delimiters)
{
    if (delimiters == NULL || *delimiters == '\0')
        return strlen(local);
    return strcspn(local, delimiters);
}

/* restr_mail_lookup - access(5) order for an address: user+ext@domain,
   user@domain, domain and its parents, user+ext@, user@; "<>" for the
   null sender; a pattern table sees the whole address only */
static int restr_mail_lookup(maps_t *m, bool pattern, const char *addr,
                             const char *delimiters, buf_t *value)
{
    buf_t canon, key;
    char *local = NULL, *domain = NULL;
    size_t base;
    int rc;

    if (*addr == '\0')
        return restr_lookup(m, "<>", value);
    buf_init(&canon, 0);
    buf_init(&key, 0);
    addr_canonical(addr, &canon);
    addr_split(buf_str(&canon), &local, &domain);
    base = restr_base_len(local, delimiters);
    rc = restr_lookup(m, buf_str(&canon), value);
    if (pattern)
        goto out;
    if (rc == 0 && base < strlen(local)) {
        (void)buf_printf(&key, "%.*s@%s", (int)base, local, domain);
        rc = restr_lookup(m, buf_str(&key), value);
    }
    if (rc == 0 && *domain != '\0')
        rc = restr_domain_lookup(m, domain, value);
    if (rc == 0 && *domain != '\0') {
        buf_reset(&key);
        (void)buf_printf(&key, "%s@", local);
        rc = restr_lookup(m, buf_str(&key), value);
    }
    if (rc == 0 && *domain != '\0' && base < strlen(local)) {
        buf_reset(&key);
        (void)buf_printf(&key, "%.*s@", (int)base, local);
        rc = restr_lookup(m, buf_str(&key), value);
    }
out:
    free(local);
    buf_free(&key);
    buf_free(&canon);
    return rc;
}

/* restr_check_access - one check_*_access: look the key(s) up, apply the
   value */
static enum restr_action restr_check_access(const struct restr_entry *e,
                                            const struct restr_ctx *ctx,
                                            struct restr_result *r)
{
    buf_t value;
    const char *name, *cls;
    int rc = 0;
    enum restr_action a = RESTR_DUNNO;

    buf_init(&value, 0);
    switch (e->id) {
    case R_CHECK_CLIENT_ACCESS:
        if (ctx->client_addr == NULL)
            goto out;
        name = ctx->client_namaddr != NULL ? ctx->client_namaddr
                                           : ctx->client_addr;
        cls = "Client host";
        if (ctx->client_name != NULL && *ctx->client_name != '\0')
            rc = e->pattern
                 ? restr_lookup(e->table, ctx->client_name, &value)
                 : restr_domain_lookup(e->table, ctx->client_name, &value);
        if (rc == 0)
            rc = e->pattern
                 ? restr_lookup(e->table, ctx->client_addr, &value)
                 : restr_addr_lookup(e->table, ctx->client_addr, &value);
        break;
    case R_CHECK_REVERSE_CLIENT_ACCESS: {
        /* Postfix: the unverified PTR name and its parents, then the
           address and its networks */
        const char *rev = ctx->reverse_name != NULL ? ctx->reverse_name
                                                    : ctx->client_name;
        if (ctx->client_addr == NULL)
            goto out;
        name = ctx->client_namaddr != NULL ? ctx->client_namaddr
                                           : ctx->client_addr;
        cls = "Client host";
        if (rev != NULL && *rev != '\0')
            rc = e->pattern ? restr_lookup(e->table, rev, &value)
                            : restr_domain_lookup(e->table, rev, &value);
        if (rc == 0)
            rc = e->pattern
                 ? restr_lookup(e->table, ctx->client_addr, &value)
                 : restr_addr_lookup(e->table, ctx->client_addr, &value);
        break;
    }
    case R_CHECK_HELO_ACCESS:
        if (ctx->helo == NULL || *ctx->helo == '\0')
            goto out;
        name = ctx->helo;
        cls = "Helo command";
        rc = e->pattern ? restr_lookup(e->table, ctx->helo, &value)
                        : restr_domain_lookup(e->table, ctx->helo, &value);
        break;
    case R_CHECK_SENDER_ACCESS:
        if (ctx->sender == NULL)
            goto out;
        name = ctx->sender;
        cls = "Sender address";
        rc = restr_mail_lookup(e->table, e->pattern, ctx->sender,
                               ctx->delimiters, &value);
        break;
    case R_CHECK_RECIPIENT_ACCESS:
        if (ctx->recipient == NULL)
            goto out;
        name = ctx->recipient;
        cls = "Recipient address";
        rc = restr_mail_lookup(e->table, e->pattern, ctx->recipient,
                               ctx->delimiters, &value);
        break;
    default:
        goto out;
    }
    if (rc < 0) {
        log_warning("%s: table lookup problem", e->table_spec);
        a = restr_tempfail(r, name);
    } else if (rc > 0) {
        a = restriction_access_value(buf_str(&value), e->table_spec, ctx,
                                     name, cls, r);
    }
out:
    buf_free(&value);
    return a;
}

/* ---- the built-in restrictions --------------------------------------- */

/* restr_rcpt_domain - the recipient's lowercase domain (malloc'd local
   part in *local_r, free it) */
static const char *restr_rcpt_split(const char *addr, char **local_r)
{
    buf_t canon;
    char *domain = NULL;

    buf_init(&canon, 0);
    addr_canonical(addr, &canon);
    addr_split(buf_str(&canon), local_r, &domain);
    buf_free(&canon);
    return domain;
}

/* restr_auth_destination - 1 the recipient's domain is local or relayed,
   0 not, -1 table error */
static int restr_auth_destination(const struct restr_ctx *ctx)
{
    char *local = NULL;
    const char *domain = restr_rcpt_split(ctx->recipient, &local);
    int rc;

    if (ctx->ops->local_domain != NULL
        && ctx->ops->local_domain(ctx->arg, domain))
        rc = 1;
    else if (*domain == '\0')
        rc = 1;                 /* a bare local part is ours */
    else if (strpbrk(local, "@%!") != NULL)
        rc = 0;                 /* sender-specified routing through a
                                   relay domain (Postfix's
                                   allow_untrusted_routing = no) */
    else
        rc = ctx->ops->relay_domain != NULL
             ? ctx->ops->relay_domain(ctx->arg, domain) : 0;
    free(local);
    return rc;
}

/* restr_unlisted - reject_unlisted_recipient: local domains only */
static enum restr_action restr_unlisted(const struct restr_ctx *ctx,
                                        struct restr_result *r)
{
    char *local = NULL;
    const char *domain = restr_rcpt_split(ctx->recipient, &local);
    enum restr_action a = RESTR_DUNNO;
    int rc;

    if ((*domain == '\0' || (ctx->ops->local_domain != NULL
                             && ctx->ops->local_domain(ctx->arg, domain)))
        && ctx->ops->local_user != NULL) {
        rc = ctx->ops->local_user(ctx->arg, local);
        if (rc < 0)
            a = restr_tempfail(r, ctx->recipient);
        else if (rc == 0) {
            restr_put(&r->reply, "550 5.1.1 <%s>: Recipient address "
                      "rejected: User unknown in local recipient table",
                      ctx->recipient);
            a = restr_decide(r, RESTR_REJECT);
        }
    }
    free(local);
    return a;
}

/* restr_fqdn - name has a dot inside (an address literal counts) */
static bool restr_fqdn(const char *name)
{
    size_t n = strlen(name);
    const char *dot;

    if (name[0] == '[')
        return true;
    if (n > 0 && name[n - 1] == '.')
        n--;
    dot = memchr(name, '.', n);
    return dot != NULL && dot != name && dot != name + n - 1;
}

/* restr_addr_fqdn - the address's domain is a FQDN */
static bool restr_addr_fqdn(const char *addr)
{
    char *local = NULL;
    const char *domain = restr_rcpt_split(addr, &local);
    bool ok = *domain != '\0' && restr_fqdn(domain);

    free(local);
    return ok;
}

/* restr_owner_listed - login is one of the owners (comma/space list) */
static bool restr_owner_listed(const char *owners, const char *login)
{
    const char *s = owners;
    size_t n = strlen(login);
    long len;

    while ((len = str_list_next_word(&s)) > 0) {
        if ((size_t)len == n && strncasecmp(s, login, n) == 0)
            return true;
        s += len;
    }
    return false;
}

/* restr_sender_owners - smtpd_sender_login_maps for the sender: the
   address, the address without extension, the local part (local domains
   only), "@domain". 1 found, 0 none, -1 table error. */
static int restr_sender_owners(const struct restr_ctx *ctx, buf_t *owners)
{
    char *local = NULL;
    const char *domain;
    buf_t canon, key;
    size_t base;
    int rc;

    if (ctx->ops->sender_owners == NULL)
        return 0;
    buf_init(&canon, 0);
    buf_init(&key, 0);
    addr_canonical(ctx->sender, &canon);
    domain = restr_rcpt_split(ctx->sender, &local);
    base = restr_base_len(local, ctx->delimiters);
    rc = ctx->ops->sender_owners(ctx->arg, buf_str(&canon), owners);
    if (rc == 0 && base < strlen(local)) {
        (void)buf_printf(&key, "%.*s@%s", (int)base, local, domain);
        rc = ctx->ops->sender_owners(ctx->arg, buf_str(&key), owners);
    }
    if (rc == 0 && (*domain == '\0' || (ctx->ops->local_domain != NULL
                                        && ctx->ops->local_domain(ctx->arg,
                                                                  domain)))) {
        buf_reset(&key);
        (void)buf_printf(&key, "%.*s", (int)base, local);
        rc = ctx->ops->sender_owners(ctx->arg, buf_str(&key), owners);
    }
    if (rc == 0 && *domain != '\0') {
        buf_reset(&key);
        (void)buf_printf(&key, "@%s", domain);
        rc = ctx->ops->sender_owners(ctx->arg, buf_str(&key), owners);
    }
    free(local);
    buf_free(&key);
    buf_free(&canon);
    return rc;
}

/* restr_login_mismatch - Postfix semantics: logged in, the login must
   own the sender (an address without owner is refused too); not logged
   in, an owned address is refused */
static enum restr_action restr_login_mismatch(const struct restr_ctx *ctx,
                                              bool check_auth,
                                              bool check_unauth,
                                              struct restr_result *r)
{
    bool authed = ctx->sasl_username != NULL && *ctx->sasl_username != '\0';
    buf_t owners;
    enum restr_action a = RESTR_DUNNO;
    int rc;

    if (ctx->sender == NULL || *ctx->sender == '\0'
        || (authed && !check_auth) || (!authed && !check_unauth))
        return RESTR_DUNNO;
    buf_init(&owners, 0);
    rc = restr_sender_owners(ctx, &owners);
    if (rc < 0) {
        a = restr_tempfail(r, ctx->sender);
    } else if (authed && (rc == 0 || !restr_owner_listed(buf_str(&owners),
                                                         ctx->sasl_username))) {
        restr_put(&r->reply, "553 5.7.1 <%s>: Sender address rejected: "
                  "not owned by user %s", ctx->sender, ctx->sasl_username);
        a = restr_decide(r, RESTR_REJECT);
    } else if (!authed && rc > 0) {
        restr_put(&r->reply, "553 5.7.1 <%s>: Sender address rejected: "
                  "not logged in", ctx->sender);
        a = restr_decide(r, RESTR_REJECT);
    }
    buf_free(&owners);
    return a;
}

/* restr_name_status - how the lookup of the client name (reverse false)
   or of its PTR name (true) ended */
static enum restr_name_status restr_name_status(const struct restr_ctx *ctx,
                                                bool reverse)
{
    const char *name = ctx->client_name;

    if (ctx->ops->name_status != NULL)
        return ctx->ops->name_status(ctx->arg, reverse);
    if (reverse && ctx->reverse_name != NULL)
        name = ctx->reverse_name;
    return name != NULL && *name != '\0' && strcasecmp(name, "unknown") != 0
           ? RESTR_NAME_OK : RESTR_NAME_PERM;
}

/* restr_unknown_client - reject_unknown_client_hostname (the name must
   be forward-confirmed) or reject_unknown_reverse_client_hostname (a
   PTR name is enough) */
static enum restr_action restr_unknown_client(const struct restr_ctx *ctx,
                                              bool reverse,
                                              struct restr_result *r)
{
    enum restr_name_status st = restr_name_status(ctx, reverse);
    /* unknown_client_reject_code for a lasting failure (Tern has no
       such parameter yet: Postfix's default); 450 after a temporary
       one, whatever that parameter says */
    int code = st == RESTR_NAME_TEMP ? 450 : RESTR_UNKNOWN_CLIENT_CODE;

    if (st == RESTR_NAME_OK)
        return RESTR_DUNNO;
    restr_put(&r->reply, "%d %c.7.25 Client host rejected: cannot find your "
              "%shostname, [%s]", code, code / 100 == 4 ? '4' : '5',
              reverse ? "reverse " : "",
              ctx->client_addr != NULL ? ctx->client_addr : "unknown");
    return restr_decide(r, code / 100 == 4 ? RESTR_DEFER : RESTR_REJECT);
}

/* restr_eval_one - one restriction */
static enum restr_action restr_eval_one(const struct restr_entry *e,
                                        const struct restr_ctx *ctx,
                                        const char *reply_name,
                                        const char *reply_class,
                                        struct restr_result *r)
{
    int rc;

    switch (e->id) {
    case R_PERMIT:
        return RESTR_PERMIT;
    case R_REJECT:
        return restr_reject(r, 554, "5.7.1", reply_name, reply_class, NULL);
    case R_DEFER:
        restr_reply_text(&r->reply, 450, "4.7.1", reply_name, reply_class,
                         "Try again later");
        return RESTR_DEFER;
    case R_WARN_IF_REJECT:
        return RESTR_DUNNO;     /* handled by the list walk */
    case R_PERMIT_MYNETWORKS:
        return ctx->ops->mynetworks != NULL && ctx->ops->mynetworks(ctx->arg)
               ? RESTR_PERMIT : RESTR_DUNNO;
    case R_PERMIT_SASL_AUTHENTICATED:
        return ctx->sasl_username != NULL && *ctx->sasl_username != '\0'
               ? RESTR_PERMIT : RESTR_DUNNO;
    case R_PERMIT_AUTH_DESTINATION:
    case R_REJECT_UNAUTH_DESTINATION:
    case R_DEFER_UNAUTH_DESTINATION:
        if (ctx->recipient == NULL)
            return RESTR_DUNNO;
        rc = restr_auth_destination(ctx);
        if (rc < 0)
            return restr_tempfail(r, ctx->recipient);
        if (e->id == R_PERMIT_AUTH_DESTINATION)
            return rc > 0 ? RESTR_PERMIT : RESTR_DUNNO;
        if (rc > 0)
            return RESTR_DUNNO;
        if (e->id == R_DEFER_UNAUTH_DESTINATION) {
            restr_put(&r->reply, "450 4.7.1 <%s>: Relay access denied",
                      ctx->recipient);
            return RESTR_DEFER;
        }
        restr_put(&r->reply, "554 5.7.1 <%s>: Relay access denied",
                  ctx->recipient);
        return restr_decide(r, RESTR_REJECT);
    case R_REJECT_UNLISTED_RECIPIENT:
        return ctx->recipient != NULL ? restr_unlisted(ctx, r) : RESTR_DUNNO;
    case R_REJECT_NON_FQDN_HELO:
        if (ctx->helo == NULL || *ctx->helo == '\0' || restr_fqdn(ctx->helo))
            return RESTR_DUNNO;
        restr_put(&r->reply, "504 5.5.2 <%s>: Helo command rejected: need "
                  "fully-qualified hostname", ctx->helo);
        return restr_decide(r, RESTR_REJECT);
    case R_REJECT_INVALID_HELO:
        if (ctx->helo == NULL || *ctx->helo == '\0'
            || addr_domain_valid(ctx->helo, strlen(ctx->helo)))
            return RESTR_DUNNO;
        restr_put(&r->reply, "501 5.5.2 <%s>: Helo command rejected: "
                  "Invalid name", ctx->helo);
        return restr_decide(r, RESTR_REJECT);
    case R_REJECT_NON_FQDN_SENDER:
        if (ctx->sender == NULL || *ctx->sender == '\0'
            || restr_addr_fqdn(ctx->sender))
            return RESTR_DUNNO;
        restr_put(&r->reply, "504 5.5.2 <%s>: Sender address rejected: "
                  "need fully-qualified address", ctx->sender);
        return restr_decide(r, RESTR_REJECT);
    case R_REJECT_NON_FQDN_RECIPIENT:
        if (ctx->recipient == NULL || restr_addr_fqdn(ctx->recipient))
            return RESTR_DUNNO;
        restr_put(&r->reply, "504 5.5.2 <%s>: Recipient address rejected: "
                  "need fully-qualified address", ctx->recipient);
        return restr_decide(r, RESTR_REJECT);
    case R_REJECT_UNKNOWN_CLIENT:
        return restr_unknown_client(ctx, false, r);
    case R_REJECT_UNKNOWN_REVERSE_CLIENT:
        return restr_unknown_client(ctx, true, r);
    case R_REJECT_SENDER_LOGIN_MISMATCH:
        return restr_login_mismatch(ctx, true, true, r);
    case R_REJECT_AUTH_SENDER_LOGIN_MISMATCH:
        return restr_login_mismatch(ctx, true, false, r);
    case R_REJECT_UNAUTH_SENDER_LOGIN_MISMATCH:
        return restr_login_mismatch(ctx, false, true, r);
    case R_CHECK_CLIENT_ACCESS:
    case R_CHECK_REVERSE_CLIENT_ACCESS:
    case R_CHECK_HELO_ACCESS:
    case R_CHECK_SENDER_ACCESS:
    case R_CHECK_RECIPIENT_ACCESS:
        return restr_check_access(e, ctx, r);
    }
    return RESTR_DUNNO;
}

/* restr_eval_list - walk the list until a restriction decides */
static enum restr_action restr_eval_list(const restriction_list_t *l,
                                         const struct restr_ctx *ctx,
                                         const char *reply_name,
                                         const char *reply_class,
                                         struct restr_result *r)
{
    bool warn_only = false;

    for (size_t i = 0; i < l->n; i++) {
        const struct restr_entry *e = &l->v[i];
        enum restr_action a;

        if (e->id == R_WARN_IF_REJECT) {
            warn_only = true;
            continue;
        }
        a = restr_eval_one(e, ctx, reply_name, reply_class, r);
        if (warn_only && (a == RESTR_REJECT || a == RESTR_DEFER)) {
            restr_event(ctx, "reject_warning", buf_str(&r->reply));
            buf_reset(&r->reply);
            a = RESTR_DUNNO;
        }
        warn_only = false;
        if (a != RESTR_DUNNO)
            return a;
    }
    return RESTR_DUNNO;
}

enum restr_action restriction_eval(const restriction_list_t *l,
                                   const struct restr_ctx *ctx,
                                   const char *reply_name,
                                   const char *reply_class,
                                   struct restr_result *r)
{
    static const struct restr_ops no_ops;
    struct restr_ctx c = *ctx;

    if (c.ops == NULL)
        c.ops = &no_ops;
    if (reply_name == NULL)
        reply_name = "unknown";
    if (reply_class == NULL)
        reply_class = "Access";
    buf_reset(&r->reply);
    r->action = l != NULL ? restr_eval_list(l, &c, reply_name, reply_class, r)
                          : RESTR_DUNNO;
    return r->action;
}

enum restr_action restriction_finish(struct restr_result *r)
{
    if (r->action != RESTR_REJECT && r->action != RESTR_DEFER
        && r->defer_if_permit) {
        buf_reset(&r->reply);
        (void)buf_puts(&r->reply, buf_str(&r->dip_reply));
        r->action = RESTR_DEFER;
    }
    return r->action;
}

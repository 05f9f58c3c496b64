/*
 * addr - RFC 5321 envelope paths, address split/canonical forms, ESMTP
 * parameters and RFC 3461 xtext. A single forward scan over the
 * NUL-terminated command line; the RFC length limits bound every field.
 *
 * Choices beyond the RFC grammar: underscores are allowed in domain
 * labels (common in the wild), General-address-literals ("[tag:...]") are
 * accepted with any tag, and a mailbox without a domain is accepted only
 * for "postmaster" (RFC 5321 4.5.1). All output buffers are reset first.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "util/util.h"

#define ADDR_MAX_LITERAL 64   /* longer than any IPv6 text form */

struct path_ctx {
    const char *p;            /* cursor */
    const char *error;
    buf_t local;              /* local part, quoting removed */
    bool quoted;
};

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* is_atext - RFC 5322 atext (ASCII part) */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* is_qtext - RFC 5321 qtextSMTP (ASCII part) */
static bool is_qtext(unsigned char c)
{
    return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}

/* utf8_forbidden - code points no address may carry, because they would
   reach log lines and the headers Tern writes (Delivered-To:, Received:
   for): C1 controls U+0080..U+009F, the line and paragraph separators
   U+2028/U+2029, and the bidi embeddings, overrides and isolates
   U+202A..U+202E, U+2066..U+2069 */
static bool utf8_forbidden(const unsigned char *p, size_t n)
{
    if (n == 2)
        return p[0] == 0xC2 && p[1] <= 0x9F;
    if (n == 3 && p[0] == 0xE2 && p[1] == 0x80)
        return p[2] >= 0xA8 && p[2] <= 0xAE;
    if (n == 3 && p[0] == 0xE2 && p[1] == 0x81)
        return p[2] >= 0xA6 && p[2] <= 0xA9;
    return false;
}

/* utf8_len - length of a well-formed UTF-8 sequence (>= 2 bytes) at p,
   looking at no more than avail bytes; 0 if malformed. Rejects overlong
   forms, surrogates, code points above U+10FFFF and utf8_forbidden ones. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (avail < 2 || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (avail <= i || (p[i] & 0xC0) != 0x80)
            return 0;
    if (utf8_forbidden(p, n))
        return 0;
    return n;
}

/* utf8_len_str - utf8_len on a NUL-terminated string */
static size_t utf8_len_str(const char *p)
{
    return utf8_len((const unsigned char *)p, strnlen(p, 4));
}

/* dot_string_valid - Dot-string: atoms of atext/UTF-8 joined by single dots */
static bool dot_string_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t atom = 0;

    for (size_t i = 0; i < len;) {
        if (u[i] == '.') {
            if (atom == 0)
                return false;
            atom = 0;
            i++;
        } else if (u[i] >= 0x80) {
            size_t n = utf8_len(u + i, len - i);
            if (n == 0)
                return false;
            atom += n;
            i += n;
        } else if (is_atext(u[i])) {
            atom++;
            i++;
        } else {
            return false;
        }
    }
    return atom > 0;
}

/* domain_name_valid - sub-domain *("." sub-domain), letters, digits,
   hyphens, underscores and UTF-8; labels 1..63, total <= 255 */
static bool domain_name_valid(const unsigned char *d, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > ADDR_MAX_DOMAIN)
        return false;
    for (size_t i = 0; i < len;) {
        unsigned char c = d[i];
        size_t n = 1;

        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            i++;
            continue;
        }
        if (c == '-') {
            if (label == 0)
                return false;
        } else if (c >= 0x80) {
            if ((n = utf8_len(d + i, len - i)) == 0)
                return false;
        } else if (!is_alnum(c) && c != '_') {
            return false;
        }
        label += n;
        i += n;
        if (label > 63)
            return false;
    }
    return label > 0 && d[len - 1] != '-';
}

/* general_literal_valid - Standardized-tag ":" 1*dcontent */
static bool general_literal_valid(const unsigned char *c, size_t len)
{
    size_t i = 0;

    while (i < len && (is_alnum(c[i]) || c[i] == '-'))
        i++;
    if (i == 0 || i == len || c[i] != ':' || c[i - 1] == '-' || c[0] == '-')
        return false;
    if (++i == len)
        return false;
    for (; i < len; i++)
        if (!((c[i] >= 33 && c[i] <= 90) || (c[i] >= 94 && c[i] <= 126)))
            return false;
    return true;
}

/* literal_valid - "[1.2.3.4]", "[IPv6:...]" or "[tag:content]" */
static bool literal_valid(const char *d, size_t len)
{
    char tmp[ADDR_MAX_LITERAL];
    const char *c = d + 1;
    size_t clen;
    unsigned char a6[16];
    bool dotted = true;

    if (len < 3 || d[0] != '[' || d[len - 1] != ']')
        return false;
    clen = len - 2;
    if (clen >= 5 && strncasecmp(c, "IPv6:", 5) == 0) {
        if (clen - 5 >= sizeof(tmp) || memchr(c, '\0', clen))
            return false;
        memcpy(tmp, c + 5, clen - 5);
        tmp[clen - 5] = '\0';
        return inet_pton(AF_INET6, tmp, a6) == 1;
    }
    for (size_t i = 0; i < clen; i++)
        if (!is_digit((unsigned char)c[i]) && c[i] != '.')
            dotted = false;
    if (dotted) {
        if (clen >= sizeof(tmp))
            return false;
        memcpy(tmp, c, clen);
        tmp[clen] = '\0';
        return inet_pton(AF_INET, tmp, a6) == 1;
    }
    return general_literal_valid((const unsigned char *)c, clen);
}

bool addr_domain_valid(const char *d, size_t len)
{
    if (d == NULL)
        return false;
    if (len > 0 && d[0] == '[')
        return len <= ADDR_MAX_DOMAIN && literal_valid(d, len);
    return domain_name_valid((const unsigned char *)d, len);
}

/* domain_end - end of the domain or literal text starting at p */
static const char *domain_end(const char *p)
{
    if (*p == '[') {
        while (*p != '\0' && *p != ']')
            p++;
        return *p == ']' ? p + 1 : p;
    }
    while (is_alnum((unsigned char)*p) || *p == '-' || *p == '_' ||
           *p == '.' || (unsigned char)*p >= 0x80)
        p++;
    return p;
}

/* path_domain - domain after '@'; *p moves past it */
static int path_domain(struct path_ctx *c, const char **start, size_t *len)
{
    const char *end = domain_end(c->p);

    *start = c->p;
    *len = (size_t)(end - c->p);
    c->p = end;
    if (*len > ADDR_MAX_DOMAIN) {
        c->error = "domain name too long";
        return -1;
    }
    if (*len == 0) {
        c->error = "missing domain";
        return -1;
    }
    if (!addr_domain_valid(*start, *len)) {
        c->error = **start == '[' ? "invalid address literal"
                                  : "invalid domain name";
        return -1;
    }
    return 0;
}

/* path_route - skip an A-d-l source route "@a,@b:" (RFC 5321 C) */
static int path_route(struct path_ctx *c)
{
    const char *d;
    size_t len;

    while (*c->p == '@') {
        c->p++;
        if (path_domain(c, &d, &len) < 0) {
            c->error = "invalid source route";
            return -1;
        }
        if (*c->p == ':') {
            c->p++;
            return 0;
        }
        if (*c->p != ',' || c->p[1] != '@')
            break;
        c->p++;
    }
    c->error = "invalid source route";
    return -1;
}

/* path_quoted - Quoted-string; quoted-pairs are stored unescaped */
static int path_quoted(struct path_ctx *c)
{
    const char *p = c->p + 1;

    c->quoted = true;
    for (;;) {
        unsigned char ch = (unsigned char)*p;
        size_t n = 1;

        if (p - c->p > ADDR_MAX_LOCAL) {
            c->error = "local part too long";
            return -1;
        }
        if (ch == '"')
            break;
        if (ch == '\\') {
            ch = (unsigned char)*++p;
            if (ch < 32 || ch > 126) {
                c->error = ch ? "invalid quoted-pair in local part"
                              : "unterminated quoted string";
                return -1;
            }
        } else if (ch == '\0') {
            c->error = "unterminated quoted string";
            return -1;
        } else if (ch >= 0x80) {
            if ((n = utf8_len_str(p)) == 0) {
                c->error = "malformed UTF-8 in local part";
                return -1;
            }
        } else if (!is_qtext(ch)) {
            c->error = "invalid character in local part";
            return -1;
        }
        if (buf_append(&c->local, p, n) < 0) {
            c->error = "local part too long";
            return -1;
        }
        p += n;
    }
    c->p = p + 1;
    return 0;
}

/* path_dotstring - Dot-string local part */
static int path_dotstring(struct path_ctx *c)
{
    const char *p = c->p;

    while (is_atext((unsigned char)*p) || *p == '.') {
        p++;
    }
    while ((unsigned char)*p >= 0x80) {
        size_t n = utf8_len_str(p);
        if (n == 0) {
            c->error = "malformed UTF-8 in local part";
            return -1;
        }
        p += n;
        while (is_atext((unsigned char)*p) || *p == '.')
            p++;
    }
    if (buf_append(&c->local, c->p, (size_t)(p - c->p)) < 0) {
        c->error = "local part too long";
        return -1;
    }
    c->p = p;
    if (c->local.len == 0) {
        c->error = (*p == '@' || *p == '>' || *p == '\0' || *p == ' ')
                       ? "empty local part"
                       : "invalid character in local part";
        return -1;
    }
    if (!dot_string_valid(buf_str(&c->local), c->local.len)) {
        c->error = "invalid dot in local part";
        return -1;
    }
    return 0;
}

/* path_local - Local-part, checked against the 64-octet limit */
static int path_local(struct path_ctx *c)
{
    const char *start = c->p;
    int r;

    r = *c->p == '"' ? path_quoted(c) : path_dotstring(c);
    if (r == 0 && (size_t)(c->p - start) > ADDR_MAX_LOCAL) {
        c->error = "local part too long";
        return -1;
    }
    if (r == 0 && c->local.len == 0) {
        c->error = "empty local part";
        return -1;
    }
    return r;
}

/* path_store_local - local part as stored: quoted only when needed */
static int path_store_local(const struct path_ctx *c, buf_t *out)
{
    const char *s = buf_str(&c->local);

    if (dot_string_valid(s, c->local.len))
        return buf_append(out, s, c->local.len);
    if (buf_putc(out, '"') < 0)
        return -1;
    for (size_t i = 0; i < c->local.len; i++) {
        if ((s[i] == '"' || s[i] == '\\') && buf_putc(out, '\\') < 0)
            return -1;
        if (buf_putc(out, s[i]) < 0)
            return -1;
    }
    return buf_putc(out, '"');
}

/* path_mailbox - Mailbox; stores it into out */
static int path_mailbox(struct path_ctx *c, buf_t *out)
{
    const char *dom = NULL;
    size_t dlen = 0;

    if (path_local(c) < 0)
        return -1;
    if (*c->p == '@') {
        c->p++;
        if (path_domain(c, &dom, &dlen) < 0)
            return -1;
    } else if (c->quoted || strcasecmp(buf_str(&c->local), "postmaster") != 0) {
        c->error = (*c->p == '>' || *c->p == '\0' || *c->p == ' ')
                       ? "missing domain"
                       : "invalid character in local part";
        return -1;
    }
    if (path_store_local(c, out) < 0 ||
        (dom && (buf_putc(out, '@') < 0 || buf_append(out, dom, dlen) < 0))) {
        c->error = "address too long";
        return -1;
    }
    return 0;
}

/* path_parse - the whole Path; returns 0 and sets c->p past it */
static int path_parse(struct path_ctx *c, bool allow_null, bool lenient,
                      buf_t *out)
{
    const char *start = c->p;
    bool bracket = *c->p == '<';

    if (bracket) {
        c->p++;
    } else if (!lenient) {
        c->error = "missing '<' in address";
        return -1;
    } else if (*c->p == '\0' || *c->p == ' ' || *c->p == '\t') {
        c->error = "missing address";
        return -1;
    }
    if (bracket && *c->p == '>') {
        if (!allow_null) {
            c->error = "null address not allowed";
            return -1;
        }
        c->p++;
    } else {
        if (*c->p == '@' && path_route(c) < 0)
            return -1;
        if (path_mailbox(c, out) < 0)
            return -1;
        if (bracket && *c->p != '>') {
            c->error = *c->p == '\0' ? "missing '>' in address"
                                     : "invalid character in address";
            return -1;
        }
        if (bracket)
            c->p++;
    }
    if ((size_t)(c->p - start) + (bracket ? 0 : 2) > ADDR_MAX_PATH) {
        c->error = "address too long";
        return -1;
    }
    if (*c->p != '\0' && *c->p != ' ' && *c->p != '\t') {
        c->error = bracket ? "garbage after address"
                           : "invalid character in address";
        return -1;
    }
    return 0;
}

int addr_parse_path(const char *s, bool allow_null, bool lenient,
                    buf_t *addr_out, const char **rest, const char **error_r)
{
    struct path_ctx c = { .p = s, .error = NULL, .quoted = false };
    int r;

    buf_init(&c.local, ADDR_MAX_PATH);
    buf_reset(addr_out);
    r = path_parse(&c, allow_null, lenient, addr_out);
    buf_free(&c.local);
    if (r < 0) {
        buf_reset(addr_out);
        *error_r = c.error;
        return -1;
    }
    *rest = c.p;
    return 0;
}

/* Quotes are not tracked: the domain never contains '"' or '@' (a
   literal aside), so this also works on the unquoted canonical form,
   where a local part like "u@[x" would otherwise mislead a scanner. */
void addr_split(const char *addr, char **local_r, char **domain_r)
{
    char *copy = xstrdup(addr), *at = strrchr(copy, '@');
    size_t len = strlen(copy);

    if (len > 0 && copy[len - 1] == ']') {
        char *open = strrchr(copy, '[');
        if (open != NULL && open > copy && open[-1] == '@' &&
            strcspn(open + 1, "]") == (size_t)(copy + len - 1 - (open + 1)))
            at = open - 1;   /* an address literal may contain '@' */
    }
    *local_r = copy;
    if (at != NULL) {
        *at = '\0';
        *domain_r = at + 1;
    } else {
        *domain_r = copy + len;   /* the terminating NUL: "" */
    }
}

/* canonical_local - local part with the quoting removed */
static int canonical_local(const char *l, buf_t *out)
{
    if (*l != '"')
        return buf_puts(out, l);
    for (l++; *l != '\0' && *l != '"'; l++) {
        if (*l == '\\' && l[1] != '\0')
            l++;
        if (buf_putc(out, *l) < 0)
            return -1;
    }
    return 0;
}

void addr_canonical(const char *addr, buf_t *out)
{
    char *local, *domain;
    bool has_at;

    buf_reset(out);
    addr_split(addr, &local, &domain);
    has_at = strlen(local) != strlen(addr);
    if (canonical_local(local, out) == 0 && has_at && buf_putc(out, '@') == 0) {
        for (const char *d = domain; *d != '\0'; d++) {
            char ch = *d >= 'A' && *d <= 'Z' ? (char)(*d - 'A' + 'a') : *d;
            if (buf_putc(out, ch) < 0)
                break;
        }
    }
    free(local);
}

void esmtp_params_free(struct esmtp_param *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].keyword);
        free(p[i].value);
        p[i].keyword = p[i].value = NULL;
    }
}

/* esmtp_param_one - one "KEY[=VALUE]" at *pp; fills out, moves *pp */
static const char *esmtp_param_one(const char **pp, struct esmtp_param *out)
{
    const char *p = *pp, *k = p, *v = NULL;
    size_t klen, vlen = 0;

    if (!is_alnum((unsigned char)*p))
        return "invalid parameter keyword";
    while (is_alnum((unsigned char)*p) || *p == '-')
        p++;
    klen = (size_t)(p - k);
    if (*p == '=') {
        v = ++p;
        while (*p >= 33 && *p <= 126 && *p != '=')
            p++;
        vlen = (size_t)(p - v);
    }
    if (*p != '\0' && *p != ' ' && *p != '\t')
        return v ? "invalid character in parameter value"
                 : "invalid character in parameter keyword";
    if (v && vlen == 0)
        return "empty parameter value";
    out->keyword = xstrndup(k, klen);
    for (char *u = out->keyword; *u; u++)
        if (*u >= 'a' && *u <= 'z')
            *u = (char)(*u - 'a' + 'A');
    out->value = v ? xstrndup(v, vlen) : NULL;
    *pp = p;
    return NULL;
}

int esmtp_params_parse(const char *s, struct esmtp_param *out, size_t max,
                       size_t *n_out, const char **error_r)
{
    const char *p = s, *err = NULL;
    size_t n = 0;

    *n_out = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (n >= max) {
            err = "too many parameters";
            break;
        }
        if ((err = esmtp_param_one(&p, &out[n])) != NULL)
            break;
        for (size_t i = 0; i < n && err == NULL; i++)
            if (strcmp(out[i].keyword, out[n].keyword) == 0)
                err = "duplicate parameter";
        n++;
        if (err)
            break;
    }
    if (err) {
        esmtp_params_free(out, n);
        *error_r = err;
        return -1;
    }
    *n_out = n;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')   /* RFC 3461 says upper case; be liberal */
        return c - 'a' + 10;
    return -1;
}

int xtext_decode(const char *s, buf_t *out)
{
    buf_reset(out);
    for (const char *p = s; *p != '\0'; p++) {
        int c = (unsigned char)*p;

        if (c == '+') {
            int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
            if (lo < 0)
                return -1;
            c = hi * 16 + lo;
            /* a decoded control character would let a client smuggle
               CR/LF or NUL into DSN headers and logs */
            if (c < 0x20 || c == 0x7F)
                return -1;
            p += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        if (buf_putc(out, c) < 0)
            return -1;
    }
    return 0;
}

/* xtext_ascii - xtext_decode, then printable US-ASCII only: a "+80"
   would put a byte into the file that no later DSN can encode */
static int xtext_ascii(const char *s, buf_t *out)
{
    if (xtext_decode(s, out) < 0)
        return -1;
    for (size_t i = 0; i < out->len; i++)
        if ((unsigned char)out->data[i] > 126)
            return -1;
    return 0;
}

int addr_envid_decode(const char *value, buf_t *out)
{
    buf_reset(out);
    if (*value == '\0' || strlen(value) > ADDR_ENVID_MAX)
        return -1;
    return xtext_ascii(value, out);
}

int addr_orcpt_decode(const char *value, buf_t *out, const char **error_r)
{
    static const char type[] = "rfc822;";
    buf_t dec = BUF_INIT, path = BUF_INIT, mbox = BUF_INIT;
    const char *rest = NULL, *err = NULL;
    int r = -1;

    buf_reset(out);
    if (strlen(value) > ADDR_ORCPT_MAX)
        err = "ORCPT too long";
    else if (strncasecmp(value, type, sizeof(type) - 1) != 0)
        err = "ORCPT address type is not rfc822";
    else if (xtext_ascii(value + sizeof(type) - 1, &dec) < 0 || dec.len == 0)
        err = "malformed ORCPT xtext";
    else if (buf_printf(&path, "<%s>", buf_str(&dec)) < 0
             || addr_parse_path(buf_str(&path), false, false, &mbox, &rest,
                                &err) < 0
             || *rest != '\0')
        err = "malformed ORCPT address";
    else if (buf_printf(out, "rfc822;%s", buf_str(&dec)) < 0)
        err = "ORCPT too long";
    else
        r = 0;
    buf_free(&dec);
    buf_free(&path);
    buf_free(&mbox);
    if (r < 0) {
        buf_reset(out);
        *error_r = err ? err : "malformed ORCPT address";
    }
    return r;
}

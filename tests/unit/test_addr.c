/*
 * test_addr - unit tests for lib/addr.c: RFC 5321 path parsing (valid and
 * hostile tables, length limits, rest pointer), split and canonical forms,
 * ESMTP parameters and xtext decoding.
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "util/buf.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------ */

static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* domain of total length len made of labels of at most 63 octets */
static char *make_domain(size_t len)
{
    char *s = repeat('a', len);

    for (size_t i = 63; i < len; i += 64)
        s[i] = '.';
    if (len > 0 && s[len - 1] == '.')
        s[len - 1] = 'b';
    return s;
}

/* "<LOCAL@DOMAIN>" with the given lengths */
static char *make_path(size_t local_len, size_t domain_len)
{
    char *l = repeat('u', local_len), *d = make_domain(domain_len);
    buf_t b = BUF_INIT;
    char *r;

    ck_assert_int_eq(buf_printf(&b, "<%s@%s>", l, d), 0);
    r = buf_strdup(&b);
    buf_free(&b);
    free(l);
    free(d);
    return r;
}

/* parse s; returns the result and checks the invariants every call has */
static int parse(const char *s, bool allow_null, bool lenient, buf_t *out,
                 const char **rest, const char **err)
{
    int r;

    *rest = NULL;
    *err = NULL;
    r = addr_parse_path(s, allow_null, lenient, out, rest, err);
    if (r == 0) {
        ck_assert_ptr_nonnull(*rest);
        ck_assert(*rest >= s && *rest <= s + strlen(s));
    } else {
        ck_assert_int_eq(r, -1);
        ck_assert_ptr_nonnull(*err);
        ck_assert(strlen(*err) > 0);
    }
    return r;
}

/* ---- valid paths --------------------------------------------------------- */

struct path_ok {
    const char *in;
    bool allow_null, lenient;
    const char *addr;   /* stored mailbox */
    const char *rest;
};

static const struct path_ok path_ok_cases[] = {
    { "<user@example.com>", false, false, "user@example.com", "" },
    { "<user@example.com> SIZE=100", false, false, "user@example.com", " SIZE=100" },
    { "<user@example.com>\tSIZE=1", false, false, "user@example.com", "\tSIZE=1" },
    { "<User.Name+tag@Sub.Example.COM>", false, false,
      "User.Name+tag@Sub.Example.COM", "" },
    { "<!#$%&'*+-/=?^_`{|}~@example.com>", false, false,
      "!#$%&'*+-/=?^_`{|}~@example.com", "" },
    { "<a@b>", false, false, "a@b", "" },
    { "<user@localhost>", false, false, "user@localhost", "" },
    { "<user@1.2.3.4>", false, false, "user@1.2.3.4", "" },
    { "<user@a-b.example>", false, false, "user@a-b.example", "" },
    { "<user@under_score.example.com>", false, false,
      "user@under_score.example.com", "" },
    { "<user@_dmarc.example.com>", false, false, "user@_dmarc.example.com", "" },
    /* quoted local parts */
    { "<\"john doe\"@example.com>", false, false, "\"john doe\"@example.com", "" },
    { "<\"john\\\"doe\"@example.com>", false, false,
      "\"john\\\"doe\"@example.com", "" },
    { "<\"a\\\\b\"@x.org>", false, false, "\"a\\\\b\"@x.org", "" },
    { "<\"john\"@example.com>", false, false, "john@example.com", "" },
    { "<\"j\\ohn\"@example.com>", false, false, "john@example.com", "" },
    { "<\"a.b\"@example.com>", false, false, "a.b@example.com", "" },
    { "<\"a..b\"@example.com>", false, false, "\"a..b\"@example.com", "" },
    { "<\".a\"@example.com>", false, false, "\".a\"@example.com", "" },
    { "<\"a@b\"@example.com>", false, false, "\"a@b\"@example.com", "" },
    { "<\"a>b\"@example.com>", false, false, "\"a>b\"@example.com", "" },
    { "<\"a\\ b\"@example.com>", false, false, "\"a b\"@example.com", "" },
    /* address literals */
    { "<user@[192.0.2.1]>", false, false, "user@[192.0.2.1]", "" },
    { "<user@[IPv6:2001:db8::1]>", false, false, "user@[IPv6:2001:db8::1]", "" },
    { "<user@[ipv6:::1]>", false, false, "user@[ipv6:::1]", "" },
    { "<user@[IPv6:::ffff:192.0.2.1]>", false, false,
      "user@[IPv6:::ffff:192.0.2.1]", "" },
    { "<user@[x-tag:stuff]>", false, false, "user@[x-tag:stuff]", "" },
    { "<\"a b\"@[I:.1:@.1]>", false, false, "\"a b\"@[I:.1:@.1]", "" },
    /* source routes are dropped */
    { "<@a.example,@b.example:user@c.example>", false, false, "user@c.example", "" },
    { "<@a.example:user@c.example> X=1", false, false, "user@c.example", " X=1" },
    /* null path */
    { "<>", true, false, "", "" },
    { "<> BODY=8BITMIME", true, false, "", " BODY=8BITMIME" },
    { "<>", true, true, "", "" },
    /* postmaster without a domain (RFC 5321 4.5.1) */
    { "<postmaster>", false, false, "postmaster", "" },
    { "<PostMaster>", false, false, "PostMaster", "" },
    /* UTF-8 */
    { "<\xc3\xbcser@ex\xc3\xa4mple.com>", false, false,
      "\xc3\xbcser@ex\xc3\xa4mple.com", "" },
    { "<\"\xc3\xbc x\"@example.com>", false, false, "\"\xc3\xbc x\"@example.com", "" },
    { "<\xe2\x82\xac@\xf0\x9f\x98\x80.example>", false, false,
      "\xe2\x82\xac@\xf0\x9f\x98\x80.example", "" },
    { "<\xef\xbf\xbd@x.example>", false, false, "\xef\xbf\xbd@x.example", "" },
    /* lenient: no angle brackets */
    { "user@example.com", false, true, "user@example.com", "" },
    { "user@example.com SIZE=1", false, true, "user@example.com", " SIZE=1" },
    { "<user@example.com>", false, true, "user@example.com", "" },
    { "\"a b\"@example.com SIZE=1", false, true, "\"a b\"@example.com", " SIZE=1" },
    { "postmaster", false, true, "postmaster", "" },
};

START_TEST(test_path_ok)
{
    const struct path_ok *t = &path_ok_cases[_i];
    buf_t out = BUF_INIT, again = BUF_INIT, wrapped = BUF_INIT;
    const char *rest, *err;

    if (parse(t->in, t->allow_null, t->lenient, &out, &rest, &err) != 0)
        ck_abort_msg("case %d \"%s\": unexpected error: %s", _i, t->in, err);
    ck_assert_str_eq(buf_str(&out), t->addr);
    ck_assert_uint_eq(out.len, strlen(t->addr));
    ck_assert_str_eq(rest, t->rest);
    ck_assert_ptr_eq(rest, t->in + strlen(t->in) - strlen(t->rest));

    /* the stored form parses again to itself */
    ck_assert_int_eq(buf_printf(&wrapped, "<%s>", buf_str(&out)), 0);
    ck_assert_int_eq(parse(buf_str(&wrapped), true, false, &again, &rest, &err), 0);
    ck_assert_str_eq(buf_str(&again), buf_str(&out));
    buf_free(&out);
    buf_free(&again);
    buf_free(&wrapped);
}
END_TEST

/* ---- invalid paths ------------------------------------------------------- */

struct path_bad {
    const char *in;
    bool allow_null, lenient;
    const char *error;   /* expected reason, NULL: any */
};

static const struct path_bad path_bad_cases[] = {
    { "user@example.com", true, false, "missing '<' in address" },
    { "", true, false, "missing '<' in address" },
    { "", true, true, "missing address" },
    { " user@example.com", true, true, "missing address" },
    { "<user@example.com", true, false, "missing '>' in address" },
    { "<user@example.com", true, true, "missing '>' in address" },
    { "<", true, false, NULL },
    { "<user@example.com>x", true, false, "garbage after address" },
    { "<user@example.com>SIZE=1", true, false, "garbage after address" },
    { "<user@example.com>>", true, false, "garbage after address" },
    { "<<user@example.com>>", true, false, NULL },
    { "user@example.com>", true, true, NULL },
    { "<a@b@example.com>", true, false, NULL },
    { "<@example.com>", true, false, NULL },
    { "<@>", true, false, NULL },
    { "<user>", true, false, "missing domain" },
    { "<user@>", true, false, "missing domain" },
    { "<\"postmaster\">", true, false, NULL },
    { "<\"\"@example.com>", true, false, "empty local part" },
    { "<.user@example.com>", true, false, "invalid dot in local part" },
    { "<user.@example.com>", true, false, "invalid dot in local part" },
    { "<us..er@example.com>", true, false, "invalid dot in local part" },
    { "<.@example.com>", true, false, NULL },
    { "<user@.example.com>", true, false, "invalid domain name" },
    { "<user@example..com>", true, false, "invalid domain name" },
    { "<user@example.com.>", true, false, "invalid domain name" },
    { "<user@-example.com>", true, false, "invalid domain name" },
    { "<user@example-.com>", true, false, "invalid domain name" },
    { "<user@example.-com>", true, false, "invalid domain name" },
    { "<user@.>", true, false, NULL },
    { "<user@exa mple.com>", true, false, NULL },
    { "< user@example.com>", true, false, NULL },
    { "<user @example.com>", true, false, NULL },
    { "<user@ example.com>", true, false, NULL },
    { "<user@example.com >", true, false, NULL },
    { "<user@exa(mple.com>", true, false, NULL },
    { "<us(er@example.com>", true, false, NULL },
    { "<us,er@example.com>", true, false, NULL },
    { "<us[er@example.com>", true, false, NULL },
    { "<us\"er\"@example.com>", true, false, NULL },
    { "<\"a\"b@example.com>", true, false, NULL },
    { "<\"a\".b@example.com>", true, false, NULL },
    /* control characters and NUL */
    { "<us\x01" "er@example.com>", true, false, NULL },
    { "<user@exam\x7fple.com>", true, false, NULL },
    { "<\"us\x01" "er\"@example.com>", true, false, NULL },
    { "<\"us\ter\"@example.com>", true, false, NULL },
    { "<\"a\\\x01\"@x.com>", true, false, "invalid quoted-pair in local part" },
    { "<\"a\\\x80\"@x.com>", true, false, "invalid quoted-pair in local part" },
    { "<user@example.com\r>", true, false, NULL },
    { "<user@example.com>\r\n", true, false, NULL },
    { "<user\0@example.com>", true, false, "missing domain" },
    { "<\0>", true, false, NULL },
    { "<user@example.com\n>", true, false, NULL },
    /* quoted strings */
    { "<\"unterminated@example.com>", true, false, "unterminated quoted string" },
    { "<\"abc\\", true, false, "unterminated quoted string" },
    { "<\"", true, false, "unterminated quoted string" },
    /* source routes */
    { "<@a.example,user@b.example>", true, false, "invalid source route" },
    { "<@a.example user@b.example>", true, false, "invalid source route" },
    { "<@:user@b.example>", true, false, "invalid source route" },
    { "<@a.example,@:user@b.example>", true, false, "invalid source route" },
    { "<@a.example,:user@b.example>", true, false, "invalid source route" },
    { "<@a..example:user@b.example>", true, false, "invalid source route" },
    { "<@a.example:>", true, false, NULL },
    { "<@a.example:@b.example>", true, false, NULL },
    /* address literals */
    { "<user@[192.0.2.256]>", true, false, "invalid address literal" },
    { "<user@[1.2.3]>", true, false, "invalid address literal" },
    { "<user@[1.2.3.4.5]>", true, false, "invalid address literal" },
    { "<user@[01.2.3.4]>", true, false, "invalid address literal" },
    { "<user@[IPv6:2001:db8::g]>", true, false, "invalid address literal" },
    { "<user@[IPv6:1.2.3.4]>", true, false, "invalid address literal" },
    { "<user@[IPv6:1:2:3:4:5:6:7:8:9]>", true, false, "invalid address literal" },
    { "<user@[IPv6:::1::2]>", true, false, "invalid address literal" },
    { "<user@[IPv6:]>", true, false, "invalid address literal" },
    { "<user@[IPv6:0000000000000000000000000000000000000000000000000000000000000000000::1]>",
      true, false, "invalid address literal" },
    { "<user@[]>", true, false, "invalid address literal" },
    { "<user@[192.0.2.1>", true, false, "invalid address literal" },
    { "<user@[192.0.2.1]x>", true, false, NULL },
    { "<user@[192.0.2.1].com>", true, false, NULL },
    { "<user@[:x]>", true, false, "invalid address literal" },
    { "<user@[-tag:x]>", true, false, "invalid address literal" },
    { "<user@[tag-:x]>", true, false, "invalid address literal" },
    { "<user@[tag:]>", true, false, "invalid address literal" },
    { "<user@[tag]>", true, false, "invalid address literal" },
    { "<user@[tag:a[b]>", true, false, "invalid address literal" },
    { "<user@[tag:a\\b]>", true, false, "invalid address literal" },
    { "<user@[tag:a b]>", true, false, "invalid address literal" },
    { "<user@[192.0.2.1 ]>", true, false, "invalid address literal" },
    /* malformed UTF-8 */
    { "<\xc3@example.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xc0\xafuser@example.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xe0\x80\xafuser@example.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xed\xa0\x80@example.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xf4\x90\x80\x80@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xf8\x88\x80\x80\x80@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<\x80user@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<\"\xc3\"@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<\xe2\x82", true, false, "malformed UTF-8 in local part" },
    /* well-formed, but never in an address: C1, U+2028/9, bidi controls */
    { "<a\xc2\x85" "b@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<a\xc2\x9f@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<a\xe2\x80\xa8" "b@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<a\xe2\x80\xa9" "b@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<a\xe2\x80\xae" "b@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<a\xe2\x81\xa6" "b@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<\"a\xc2\x85\"@x.com>", true, false, "malformed UTF-8 in local part" },
    { "<user@\xff.com>", true, false, "invalid domain name" },
    { "<user@ex\xc3.com>", true, false, "invalid domain name" },
    { "<user@ex\xc0\x80.com>", true, false, "invalid domain name" },
    { "<user@ex\xe2\x82", true, false, "invalid domain name" },
    { "<user@ex\xe2\x80\xa8.com>", true, false, "invalid domain name" },
    { "<user@ex\xc2\x80.com>", true, false, "invalid domain name" },
    /* null path */
    { "<>", false, false, "null address not allowed" },
    { "<>", false, true, "null address not allowed" },
    { "<>x", true, false, "garbage after address" },
    { "<>>", true, false, "garbage after address" },
    { "< >", true, false, NULL },
};

START_TEST(test_path_bad)
{
    const struct path_bad *t = &path_bad_cases[_i];
    buf_t out = BUF_INIT;
    const char *rest, *err;

    buf_puts(&out, "stale");
    if (parse(t->in, t->allow_null, t->lenient, &out, &rest, &err) == 0)
        ck_abort_msg("case %d \"%s\": accepted as \"%s\"", _i, t->in,
                     buf_str(&out));
    if (t->error != NULL)
        ck_assert_msg(strcmp(err, t->error) == 0, "case %d \"%s\": error \"%s\", want \"%s\"",
                      _i, t->in, err, t->error);
    ck_assert_ptr_null(rest);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&out);
}
END_TEST

/* ---- length limits ------------------------------------------------------- */

static void expect_path(const char *s, int want, const char *want_err)
{
    buf_t out = BUF_INIT;
    const char *rest, *err;
    int r = parse(s, false, false, &out, &rest, &err);

    ck_assert_msg(r == want, "len %zu: got %d (%s)", strlen(s), r, r ? err : "");
    if (r < 0 && want_err != NULL)
        ck_assert_str_eq(err, want_err);
    if (r == 0) {
        ck_assert_uint_eq(out.len + 2, strlen(s));
        ck_assert_mem_eq(buf_str(&out), s + 1, out.len);
    }
    buf_free(&out);
}

START_TEST(test_limits_local)
{
    char *s;

    s = make_path(64, 10);
    expect_path(s, 0, NULL);
    free(s);
    s = make_path(65, 10);
    expect_path(s, -1, "local part too long");
    free(s);

    /* quoted: the 64 octets include the quotes */
    char *q = repeat('q', 62);
    buf_t b = BUF_INIT;
    buf_printf(&b, "<\"%s \"@x.example>", q);   /* 65 octets on the wire */
    expect_path(buf_str(&b), -1, "local part too long");
    buf_reset(&b);
    q[61] = '\0';
    buf_printf(&b, "<\"%s \"@x.example>", q);   /* 64 */
    expect_path(buf_str(&b), 0, NULL);
    buf_free(&b);
    free(q);
}
END_TEST

START_TEST(test_limits_domain)
{
    char *s, *d;
    buf_t b = BUF_INIT;

    /* one label of 63 is fine, 64 is not */
    d = repeat('l', 63);
    buf_printf(&b, "<u@%s.example>", d);
    expect_path(buf_str(&b), 0, NULL);
    buf_reset(&b);
    free(d);
    d = repeat('l', 64);
    buf_printf(&b, "<u@%s.example>", d);
    expect_path(buf_str(&b), -1, "invalid domain name");
    buf_free(&b);
    free(d);

    /* "<a@" + 252 + ">" is exactly 256 octets */
    s = make_path(1, 252);
    ck_assert_uint_eq(strlen(s), 256);
    expect_path(s, 0, NULL);
    free(s);
    s = make_path(1, 253);
    expect_path(s, -1, "address too long");
    free(s);
    s = make_path(1, 256);
    expect_path(s, -1, "domain name too long");
    free(s);

    /* addr_domain_valid sees the raw 255 limit */
    d = make_domain(255);
    ck_assert(addr_domain_valid(d, 255));
    free(d);
    d = make_domain(256);
    ck_assert(!addr_domain_valid(d, 256));
    free(d);
}
END_TEST

START_TEST(test_limits_path)
{
    char *s;
    buf_t b = BUF_INIT;

    /* 64 + 1 + 189 + 2 = 256 */
    s = make_path(64, 189);
    expect_path(s, 0, NULL);
    free(s);
    s = make_path(64, 190);
    expect_path(s, -1, "address too long");
    free(s);

    /* a source route counts towards the path length */
    char *r = make_domain(250);
    buf_printf(&b, "<@%s:user@example.com>", r);
    expect_path(buf_str(&b), -1, "address too long");
    buf_free(&b);
    free(r);

    /* lenient form: as if the brackets were there */
    char *l = repeat('u', 64), *d = make_domain(189);
    buf_t c = BUF_INIT, out = BUF_INIT;
    const char *rest, *err;
    buf_printf(&c, "%s@%s", l, d);
    ck_assert_int_eq(parse(buf_str(&c), false, true, &out, &rest, &err), 0);
    buf_putc(&c, 'x');
    ck_assert_int_eq(parse(buf_str(&c), false, true, &out, &rest, &err), -1);
    buf_free(&c);
    buf_free(&out);
    free(l);
    free(d);
}
END_TEST

START_TEST(test_limits_overlong)
{
    static const size_t sizes[] = { 300, 4096, 100000 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *s = make_path(sizes[i], 10);
        expect_path(s, -1, NULL);
        free(s);
        s = make_path(3, sizes[i]);
        expect_path(s, -1, NULL);
        free(s);
        s = repeat('"', sizes[i]);
        s[0] = '<';
        expect_path(s, -1, NULL);
        free(s);
        s = repeat('\\', sizes[i]);
        s[0] = '<';
        s[1] = '"';
        expect_path(s, -1, NULL);
        free(s);
        s = repeat('@', sizes[i]);
        s[0] = '<';
        expect_path(s, -1, NULL);
        free(s);
        s = repeat('[', sizes[i]);
        s[0] = '<';
        s[1] = 'a';
        s[2] = '@';
        expect_path(s, -1, NULL);
        free(s);
    }
}
END_TEST

/* the output buffer's own cap is respected */
START_TEST(test_output_cap)
{
    buf_t out;
    const char *rest, *err;

    buf_init(&out, 8);
    ck_assert_int_eq(parse("<user@example.com>", false, false, &out, &rest, &err), -1);
    ck_assert_str_eq(err, "address too long");
    ck_assert_int_eq(parse("<a@b.c>", false, false, &out, &rest, &err), 0);
    ck_assert_str_eq(buf_str(&out), "a@b.c");
    buf_free(&out);
}
END_TEST

/* ---- split and canonical ------------------------------------------------- */

static const struct { const char *in, *local, *domain; } split_cases[] = {
    { "user@example.com", "user", "example.com" },
    { "\"a@b\"@example.com", "\"a@b\"", "example.com" },
    { "\"a\\\"@b\"@c", "\"a\\\"@b\"", "c" },
    { "a@b@c", "a@b", "c" },
    { "postmaster", "postmaster", "" },
    { "user@", "user", "" },
    { "@example.com", "", "example.com" },
    { "", "", "" },
    { "\"unterminated@x", "\"unterminated", "x" },
    { "\"a\\\"@[x\"@y", "\"a\\\"@[x\"", "y" },
    { "a\"@[x@y", "a\"@[x", "y" },
    { "\"a\\", "\"a\\", "" },
    { "a@[tag:x@y]", "a", "[tag:x@y]" },
    { "a@b@[tag:x@y]", "a@b", "[tag:x@y]" },
    { "a[b@c", "a[b", "c" },
    /* unquoted canonical forms: the real domain is still found */
    { "u@[x@evil.example", "u@[x", "evil.example" },
    { "u@[192.0.2.1]@evil.example", "u@[192.0.2.1]", "evil.example" },
    { "u@[x:y@[z]", "u@[x:y", "[z]" },
    { "u@[a]b@[c:d@e]", "u@[a]b", "[c:d@e]" },
};

START_TEST(test_split)
{
    char *local = NULL, *domain = NULL;

    addr_split(split_cases[_i].in, &local, &domain);
    ck_assert_str_eq(local, split_cases[_i].local);
    ck_assert_str_eq(domain, split_cases[_i].domain);
    free(local);
}
END_TEST

static const struct { const char *in, *out; } canon_cases[] = {
    { "\"User\"@Example.COM", "User@example.com" },
    { "User@Example.COM", "User@example.com" },
    { "\"john doe\"@EXAMPLE.com", "john doe@example.com" },
    { "\"a\\\"b\"@X.ORG", "a\"b@x.org" },
    { "\"a\\\\b\"@X.ORG", "a\\b@x.org" },
    { "\"a@b\"@C.D", "a@b@c.d" },
    { "postmaster", "postmaster" },
    { "PostMaster", "PostMaster" },
    { "", "" },
    { "user@", "user@" },
    { "user@\xc3\x9cX.com", "user@\xc3\x9cx.com" },
    { "user@[IPv6:ABCD::1]", "user@[ipv6:abcd::1]" },
    { "\"A b\"@[X:Y@Z]", "A b@[x:y@z]" },
};

START_TEST(test_canonical)
{
    buf_t out = BUF_INIT;

    buf_puts(&out, "stale");
    addr_canonical(canon_cases[_i].in, &out);
    ck_assert_str_eq(buf_str(&out), canon_cases[_i].out);
    buf_free(&out);
}
END_TEST

/* canonical form of what the parser stores, end to end */
START_TEST(test_parse_canonical)
{
    buf_t out = BUF_INIT, canon = BUF_INIT;
    const char *rest, *err;

    ck_assert_int_eq(parse("<\"Joe\"@Example.COM>", false, false, &out, &rest, &err), 0);
    ck_assert_str_eq(buf_str(&out), "Joe@Example.COM");
    addr_canonical(buf_str(&out), &canon);
    ck_assert_str_eq(buf_str(&canon), "Joe@example.com");
    ck_assert_int_eq(parse("<\"J d\"@[IPv6:FE80::1]>", false, false, &out, &rest, &err), 0);
    addr_canonical(buf_str(&out), &canon);
    ck_assert_str_eq(buf_str(&canon), "J d@[ipv6:fe80::1]");
    buf_free(&out);
    buf_free(&canon);
}
END_TEST

/* ---- ESMTP parameters ----------------------------------------------------- */

struct param_case {
    const char *in;
    size_t max;
    int ret;
    const char *want;   /* "KEY=VAL KEY2" on success, error text on failure */
};

static const struct param_case param_cases[] = {
    { "", 16, 0, "" },
    { "   ", 16, 0, "" },
    { " SIZE=100 BODY=8BITMIME", 16, 0, "SIZE=100 BODY=8BITMIME" },
    { "SIZE=100", 16, 0, "SIZE=100" },
    { " size=100 body=8bitmime", 16, 0, "SIZE=100 BODY=8bitmime" },
    { " SMTPUTF8", 16, 0, "SMTPUTF8" },
    { " SMTPUTF8 SIZE=1", 16, 0, "SMTPUTF8 SIZE=1" },
    { " RET=HDRS   ENVID=abc+2Bd ", 16, 0, "RET=HDRS ENVID=abc+2Bd" },
    { "\tA=1\tB", 16, 0, "A=1 B" },
    { " X-FOO-1=~!<>", 16, 0, "X-FOO-1=~!<>" },
    { " 8BIT", 16, 0, "8BIT" },
    { " ORCPT=rfc822;user+40example.com", 16, 0, "ORCPT=rfc822;user+40example.com" },
    { " A B", 2, 0, "A B" },
    { "", 0, 0, "" },
    { " =100", 16, -1, "invalid parameter keyword" },
    { " -FOO", 16, -1, "invalid parameter keyword" },
    { " SI_ZE=1", 16, -1, "invalid character in parameter keyword" },
    { " SIZE=", 16, -1, "empty parameter value" },
    { " SIZE= BODY=7BIT", 16, -1, "empty parameter value" },
    { " SIZE=1=2", 16, -1, "invalid character in parameter value" },
    { " SIZE==1", 16, -1, NULL },
    { " SIZE=a\x01", 16, -1, "invalid character in parameter value" },
    { " SIZE=\xc3\xa9", 16, -1, "invalid character in parameter value" },
    { " SIZE=100\r", 16, -1, "invalid character in parameter value" },
    { " KEY\x7f", 16, -1, "invalid character in parameter keyword" },
    { " \x80KEY", 16, -1, "invalid parameter keyword" },
    { " SIZE=1 SIZE=2", 16, -1, "duplicate parameter" },
    { " SIZE=1 size=2", 16, -1, "duplicate parameter" },
    { " A B SMTPUTF8 b", 16, -1, "duplicate parameter" },
    { " A B C", 2, -1, "too many parameters" },
    { " A", 0, -1, "too many parameters" },
    { " A=1 B=2 C=\x01", 16, -1, NULL },
};

static void params_format(const struct esmtp_param *p, size_t n, buf_t *b)
{
    buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "%s%s", i ? " " : "", p[i].keyword);
        if (p[i].value)
            buf_printf(b, "=%s", p[i].value);
    }
}

START_TEST(test_params)
{
    const struct param_case *t = &param_cases[_i];
    struct esmtp_param p[ESMTP_MAX_PARAMS + 1];
    size_t n = 99;
    const char *err = NULL;
    buf_t b = BUF_INIT;
    int r;

    memset(p, 0, sizeof(p));
    r = esmtp_params_parse(t->in, p, t->max, &n, &err);
    ck_assert_msg(r == t->ret, "case %d \"%s\": got %d (%s)", _i, t->in, r,
                  err ? err : "");
    if (r == 0) {
        params_format(p, n, &b);
        ck_assert_str_eq(buf_str(&b), t->want);
        esmtp_params_free(p, n);
    } else {
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_nonnull(err);
        if (t->want)
            ck_assert_str_eq(err, t->want);
    }
    /* nothing may be left allocated or dangling after an error or free */
    for (size_t i = 0; i < ESMTP_MAX_PARAMS + 1; i++) {
        ck_assert_ptr_null(p[i].keyword);
        ck_assert_ptr_null(p[i].value);
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_params_max)
{
    struct esmtp_param p[ESMTP_MAX_PARAMS];
    buf_t line = BUF_INIT;
    size_t n;
    const char *err;

    for (int i = 0; i < ESMTP_MAX_PARAMS; i++)
        buf_printf(&line, " P%d=%d", i, i);
    ck_assert_int_eq(esmtp_params_parse(buf_str(&line), p, ESMTP_MAX_PARAMS, &n, &err), 0);
    ck_assert_uint_eq(n, ESMTP_MAX_PARAMS);
    ck_assert_str_eq(p[15].keyword, "P15");
    ck_assert_str_eq(p[15].value, "15");
    esmtp_params_free(p, n);
    buf_puts(&line, " ONEMORE");
    ck_assert_int_eq(esmtp_params_parse(buf_str(&line), p, ESMTP_MAX_PARAMS, &n, &err), -1);
    ck_assert_str_eq(err, "too many parameters");
    buf_free(&line);
}
END_TEST

/* ---- xtext ---------------------------------------------------------------- */

static const struct { const char *in; int ret; const char *out; } xtext_cases[] = {
    { "abc", 0, "abc" },
    { "", 0, "" },
    { "a+2Bb", 0, "a+b" },
    { "+3D", 0, "=" },
    { "+2b", 0, "+" },
    { "+20", 0, " " },
    { "+C3+A9", 0, "\xc3\xa9" },
    { "rfc822;user+40example.com", 0, "rfc822;user@example.com" },
    { "~!", 0, "~!" },
    { "+", -1, NULL },
    { "+2", -1, NULL },
    { "a+", -1, NULL },
    { "+G0", -1, NULL },
    { "+0G", -1, NULL },
    { "a=b", -1, NULL },
    { "a b", -1, NULL },
    { "+00", -1, NULL },
    { "+0D+0A", -1, NULL },
    { "+7F", -1, NULL },
    { "\x80", -1, NULL },
    { "a\tb", -1, NULL },
};

START_TEST(test_xtext)
{
    buf_t out = BUF_INIT;
    int r;

    buf_puts(&out, "stale");
    r = xtext_decode(xtext_cases[_i].in, &out);
    ck_assert_msg(r == xtext_cases[_i].ret, "case %d \"%s\"", _i, xtext_cases[_i].in);
    if (r == 0)
        ck_assert_str_eq(buf_str(&out), xtext_cases[_i].out);
    buf_free(&out);
}
END_TEST

/* ---- addr_domain_valid ---------------------------------------------------- */

static const struct { const char *in; bool ok; } domain_cases[] = {
    { "example.com", true },
    { "localhost", true },
    { "a", true },
    { "x_y.example", true },
    { "xn--bcher-kva.example", true },
    { "b\xc3\xbc" "cher.example", true },
    { "[192.0.2.1]", true },
    { "[IPv6:::1]", true },
    { "", false },
    { ".", false },
    { "example.com.", false },
    { ".example.com", false },
    { "-a.example", false },
    { "a-.example", false },
    { "a..b", false },
    { "a b", false },
    { "a@b", false },
    { "[192.0.2.1", false },
    { "192.0.2.1]", false },
    { "exa\x01mple", false },
    { "b\xc3", false },
};

START_TEST(test_domain_valid)
{
    const char *d = domain_cases[_i].in;

    ck_assert_msg(addr_domain_valid(d, strlen(d)) == domain_cases[_i].ok,
                  "case %d \"%s\"", _i, d);
    /* an embedded NUL inside the length is never valid */
    if (*d) {
        char tmp[64];
        size_t len = strlen(d);
        memcpy(tmp, d, len);
        tmp[len / 2] = '\0';
        ck_assert(!addr_domain_valid(tmp, len));
    }
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("path");

    tcase_add_loop_test(tc, test_path_ok, 0, N(path_ok_cases));
    tcase_add_loop_test(tc, test_path_bad, 0, N(path_bad_cases));
    tcase_add_test(tc, test_limits_local);
    tcase_add_test(tc, test_limits_domain);
    tcase_add_test(tc, test_limits_path);
    tcase_add_test(tc, test_limits_overlong);
    tcase_add_test(tc, test_output_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("forms");
    tcase_add_loop_test(tc, test_split, 0, N(split_cases));
    tcase_add_loop_test(tc, test_canonical, 0, N(canon_cases));
    tcase_add_test(tc, test_parse_canonical);
    tcase_add_loop_test(tc, test_domain_valid, 0, N(domain_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("esmtp");
    tcase_add_loop_test(tc, test_params, 0, N(param_cases));
    tcase_add_test(tc, test_params_max);
    tcase_add_loop_test(tc, test_xtext, 0, N(xtext_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(addr_suite(), true);
}

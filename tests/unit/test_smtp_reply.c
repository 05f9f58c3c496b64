/*
 * test_smtp_reply - unit tests for the smtp client's pure parts:
 * lib/mail/smtp_reply.c (single and multi-line replies, enhanced status
 * codes, and a table of hostile replies: no code, codes out of range,
 * a code that changes inside a reply, too many lines, too much text,
 * control characters), and lib/util/dns.c's MX helpers (rdata parsing
 * with hostile input, the null MX, preference order with every equal
 * preference order reachable).
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_reply.h"
#include "util/dns.h"

/* feed - lines separated by '\n' into r; the last feed's result */
static int feed(smtp_reply_t *r, const char *text, const char **err)
{
    int rc = -2;
    const char *p = text;

    while (*p) {
        size_t len = strcspn(p, "\n");

        rc = smtp_reply_feed(r, p, len, err);
        if (rc != 0)
            return rc;
        p += len;
        if (*p == '\n')
            p++;
    }
    return rc;
}

static const struct {
    const char *in;
    int code;
    const char *dsn;
    const char *text;
} good[] = {
    { "250 2.1.0 Ok", 250, "2.1.0", "250 2.1.0 Ok" },
    { "250 Ok", 250, "2.0.0", "250 Ok" },
    { "250", 250, "2.0.0", "250" },
    { "550 5.1.1 <x@b.test>: Recipient address rejected", 550, "5.1.1",
      "550 5.1.1 <x@b.test>: Recipient address rejected" },
    /* a class that disagrees with the code is text */
    { "550 4.1.1 odd", 550, "5.0.0", "550 4.1.1 odd" },
    { "450-4.2.0 first\n450-4.2.0 second\n450 4.2.0 third", 450, "4.2.0",
      "450 4.2.0 first second third" },
    { "250-mx.example\n250-PIPELINING\n250 SIZE 1000", 250, "2.0.0",
      "250 mx.example PIPELINING SIZE 1000" },
    { "421 4.3.2 bye\x1b[31m\x7f", 421, "4.3.2", "421 4.3.2 bye?[31m?" },
    { "554 5.123.456 long codes", 554, "5.123.456",
      "554 5.123.456 long codes" },
    { "250 2.1.0x no code", 250, "2.0.0", "250 2.1.0x no code" },
    { "220 caf\xc3\xa9", 220, "2.0.0", "220 caf??" },
};

START_TEST(test_good)
{
    smtp_reply_t r;
    const char *err = NULL;

    smtp_reply_init(&r);
    ck_assert_int_eq(feed(&r, good[_i].in, &err), 1);
    ck_assert_int_eq(r.code, good[_i].code);
    ck_assert_str_eq(r.dsn, good[_i].dsn);
    ck_assert_str_eq(smtp_reply_text(&r), good[_i].text);
    ck_assert(r.done);
    smtp_reply_free(&r);
}
END_TEST

static const char *const bad[] = {
    "", "25", "abc", "2500 x", "250x", "199 low", "600 high", "099 x",
    "250-a\n251 b", "450-a\n550 b", "-250 x", " 250 x", "25\x00 x",
};

START_TEST(test_bad)
{
    smtp_reply_t r;
    const char *err = NULL;
    const char *in = bad[_i];
    size_t len = strlen(in);

    smtp_reply_init(&r);
    if (_i == 12)
        len = 6;        /* the NUL inside */
    if (strchr(in, '\n') != NULL)
        ck_assert_int_eq(feed(&r, in, &err), -1);
    else
        ck_assert_int_eq(smtp_reply_feed(&r, in, len, &err), -1);
    ck_assert_ptr_nonnull(err);
    smtp_reply_free(&r);
}
END_TEST

START_TEST(test_limits)
{
    smtp_reply_t r;
    const char *err = NULL;
    char line[SMTP_REPLY_LINE_MAX];
    int rc = 0;
    size_t i;

    /* too many lines */
    smtp_reply_init(&r);
    for (i = 0; i < SMTP_REPLY_LINES_MAX + 5 && rc == 0; i++)
        rc = smtp_reply_feed(&r, "250-x", 5, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_eq(i, SMTP_REPLY_LINES_MAX + 1);
    /* too much text in few lines */
    smtp_reply_reset(&r);
    memset(line, 'a', sizeof(line));
    memcpy(line, "250-", 4);
    rc = 0;
    for (i = 0; i < 20 && rc == 0; i++)
        rc = smtp_reply_feed(&r, line, sizeof(line), &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_le(r.text.len, SMTP_REPLY_TEXT_MAX + 64);
    /* a complete reply starts a new one on the next feed */
    smtp_reply_reset(&r);
    ck_assert_int_eq(smtp_reply_feed(&r, "250 ok", 6, &err), 1);
    ck_assert_int_eq(smtp_reply_feed(&r, "354 go", 6, &err), 1);
    ck_assert_int_eq(r.code, 354);
    ck_assert_str_eq(smtp_reply_text(&r), "354 go");
    smtp_reply_free(&r);
}
END_TEST

START_TEST(test_dsn_parse)
{
    char out[SMTP_DSN_MAX];

    ck_assert_uint_eq(smtp_reply_dsn_parse("5.1.1 x", 7, out, sizeof(out)), 5);
    ck_assert_str_eq(out, "5.1.1");
    ck_assert_uint_eq(smtp_reply_dsn_parse("2.0.0", 5, out, sizeof(out)), 5);
    ck_assert_uint_eq(smtp_reply_dsn_parse("3.0.0", 5, out, sizeof(out)), 0);
    ck_assert_uint_eq(smtp_reply_dsn_parse("5.1234.1", 8, out, sizeof(out)), 0);
    ck_assert_uint_eq(smtp_reply_dsn_parse("5..1", 4, out, sizeof(out)), 0);
    ck_assert_uint_eq(smtp_reply_dsn_parse("5.1.", 4, out, sizeof(out)), 0);
    ck_assert_uint_eq(smtp_reply_dsn_parse("5.1.1", 5, out, 5), 0);
    ck_assert_uint_eq(smtp_reply_dsn_parse("5.1.1", 3, out, sizeof(out)), 0);
}
END_TEST

/* --- MX -------------------------------------------------------------- */

START_TEST(test_mx_wire)
{
    struct dns_mx mx;
    static const unsigned char ok[] = { 0, 10, 2, 'm', 'x', 1, 'b', 0 };
    static const unsigned char null_mx[] = { 0, 0, 0 };
    static const unsigned char shortp[] = { 0, 10 };
    static const unsigned char ptr[] = { 0, 10, 0xc0, 0x0c };
    static const unsigned char ctl[] = { 0, 10, 2, 'm', 0x1b, 0 };
    static const unsigned char trail[] = { 0, 10, 1, 'm', 0, 'x' };
    static const unsigned char numeric[] = { 0, 5, 1, '1', 1, '2', 0 };

    ck_assert_int_eq(dns_mx_from_wire(ok, sizeof(ok), &mx), 0);
    ck_assert_uint_eq(mx.pref, 10);
    ck_assert_str_eq(mx.name, "mx.b");
    ck_assert_int_eq(dns_mx_from_wire(null_mx, sizeof(null_mx), &mx), 0);
    ck_assert_str_eq(mx.name, "");
    ck_assert(dns_mx_is_null(&mx, 1));
    ck_assert(!dns_mx_is_null(&mx, 2));
    ck_assert_int_eq(dns_mx_from_wire(shortp, sizeof(shortp), &mx), -1);
    ck_assert_int_eq(dns_mx_from_wire(ptr, sizeof(ptr), &mx), -1);
    ck_assert_int_eq(dns_mx_from_wire(ctl, sizeof(ctl), &mx), -1);
    ck_assert_int_eq(dns_mx_from_wire(trail, sizeof(trail), &mx), -1);
    ck_assert_int_eq(dns_mx_from_wire(numeric, sizeof(numeric), &mx), -1);
}
END_TEST

static long fixed_seq[64];
static size_t fixed_pos;
static long fixed_rnd(void)
{
    return fixed_seq[fixed_pos++ % 64];
}

START_TEST(test_mx_sort)
{
    /* preferences 20, 10, 10, 30: 10s first in either order, then 20, 30 */
    bool seen_a_first = false, seen_b_first = false;

    for (long seed = 0; seed < 40; seed++) {
        struct dns_mx mx[4] = { { 20, "c" }, { 10, "a" }, { 10, "b" },
                                { 30, "d" } };

        for (size_t i = 0; i < 64; i++)
            fixed_seq[i] = seed * 7 + (long)i * 13;
        fixed_pos = 0;
        dns_mx_sort(mx, 4, fixed_rnd);
        ck_assert_uint_eq(mx[0].pref, 10);
        ck_assert_uint_eq(mx[1].pref, 10);
        ck_assert_str_eq(mx[2].name, "c");
        ck_assert_str_eq(mx[3].name, "d");
        if (strcmp(mx[0].name, "a") == 0)
            seen_a_first = true;
        else
            seen_b_first = true;
    }
    ck_assert(seen_a_first && seen_b_first);
    dns_mx_sort(NULL, 0, NULL);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *smtp_reply_suite(void)
{
    Suite *s = suite_create("smtp_reply");
    TCase *tc = tcase_create("reply");

    tcase_add_loop_test(tc, test_good, 0, N(good));
    tcase_add_loop_test(tc, test_bad, 0, N(bad));
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_dsn_parse);
    tcase_add_test(tc, test_mx_wire);
    tcase_add_test(tc, test_mx_sort);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(smtp_reply_suite(), true);
}

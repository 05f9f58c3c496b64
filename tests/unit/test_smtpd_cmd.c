/* test_smtpd_cmd - SMTP command line splitting, the BDAT argument and
   the DSN parameter values (ENVID, ORCPT), hostile ones included. */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/smtpcmd.h"

#define S(x) x, sizeof(x) - 1

struct cmd_case {
    const char *line;
    size_t len;
    int rc;
    enum smtp_verb verb;
    const char *arg;
};

static const struct cmd_case cases[] = {
    { S("EHLO client.example"), 0, SMTP_EHLO, "client.example" },
    { S("ehlo   client.example  "), 0, SMTP_EHLO, "client.example" },
    { S("HeLo x"), 0, SMTP_HELO, "x" },
    { S("MAIL FROM:<a@b> SIZE=10"), 0, SMTP_MAIL, "FROM:<a@b> SIZE=10" },
    { S("mail\tfrom:<>"), 0, SMTP_MAIL, "from:<>" },
    { S("RCPT TO:<x@y>"), 0, SMTP_RCPT, "TO:<x@y>" },
    { S("DATA"), 0, SMTP_DATA, "" },
    { S("data "), 0, SMTP_DATA, "" },
    { S("RSET"), 0, SMTP_RSET, "" },
    { S("NOOP hello there"), 0, SMTP_NOOP, "hello there" },
    { S("VRFY root"), 0, SMTP_VRFY, "root" },
    { S("HELP"), 0, SMTP_HELP, "" },
    { S("QUIT"), 0, SMTP_QUIT, "" },
    { S("  QUIT"), 0, SMTP_QUIT, "" },
    { S("starttls"), 0, SMTP_STARTTLS, "" },
    { S("STARTTLS x"), 0, SMTP_STARTTLS, "x" },
    { S("AUTH PLAIN AGRlbW8AeA=="), 0, SMTP_AUTH, "PLAIN AGRlbW8AeA==" },
    { S("auth login"), 0, SMTP_AUTH, "login" },
    { S("BDAT 10 LAST"), 0, SMTP_BDAT, "10 LAST" },
    { S("bdat 0"), 0, SMTP_BDAT, "0" },
    { S("DATAX"), 0, SMTP_UNKNOWN, "" },
    { S("DAT"), 0, SMTP_UNKNOWN, "" },
    { S("MAIL:FROM:<a@b>"), 0, SMTP_UNKNOWN, "" },
    { S("GET / HTTP/1.0"), 0, SMTP_UNKNOWN, "/ HTTP/1.0" },
    { S("\x80\xff\x01 \x02"), 0, SMTP_UNKNOWN, "\x02" },
    { S("QUIT\r"), 0, SMTP_UNKNOWN, "" },
    /* hostile */
    { S(""), -1, SMTP_UNKNOWN, NULL },
    { S("   \t "), -1, SMTP_UNKNOWN, NULL },
    { S("QUIT\0"), -1, SMTP_UNKNOWN, NULL },
    { S("\0QUIT"), -1, SMTP_UNKNOWN, NULL },
    { S("MAIL FROM:<a\0@b>"), -1, SMTP_UNKNOWN, NULL },
};

START_TEST(test_parse)
{
    const struct cmd_case *c = &cases[_i];
    struct smtp_cmd cmd;
    const char *err = NULL;
    buf_t copy;

    buf_init(&copy, 0);
    ck_assert_int_eq(smtpcmd_parse(c->line, c->len, &copy, &cmd, &err), c->rc);
    if (c->rc == 0) {
        ck_assert_int_eq(cmd.verb, c->verb);
        ck_assert_str_eq(cmd.arg, c->arg);
    } else {
        ck_assert_ptr_nonnull(err);
    }
    buf_free(&copy);
}
END_TEST

START_TEST(test_overlong)
{
    struct smtp_cmd cmd;
    const char *err = NULL;
    buf_t copy;
    char *line = malloc(10000);

    memset(line, 'A', 10000);
    memcpy(line, "NOOP ", 5);
    buf_init(&copy, 100);
    ck_assert_int_eq(smtpcmd_parse(line, 10000, &copy, &cmd, &err), -1);
    buf_free(&copy);
    buf_init(&copy, 0);
    ck_assert_int_eq(smtpcmd_parse(line, 10000, &copy, &cmd, &err), 0);
    ck_assert_int_eq(cmd.verb, SMTP_NOOP);
    ck_assert_uint_eq(strlen(cmd.arg), 9995);
    buf_free(&copy);
    free(line);
}
END_TEST

struct path_case {
    const char *arg, *prefix, *rest;
};

static const struct path_case path_cases[] = {
    { "FROM:<a@b>", "FROM:", "<a@b>" },
    { "from: <a@b> SIZE=1", "FROM:", "<a@b> SIZE=1" },
    { "FrOm:\t<>", "FROM:", "<>" },
    { "TO:<x@y>", "TO:", "<x@y>" },
    { "TO:", "TO:", "" },
    { "TO <x@y>", "TO:", NULL },
    { "FROM <x@y>", "FROM:", NULL },
    { "FRO", "FROM:", NULL },
    { "", "TO:", NULL },
    { "TOO:<x@y>", "TO:", NULL },
};

START_TEST(test_path_arg)
{
    const struct path_case *c = &path_cases[_i];
    const char *r = smtpcmd_path_arg(c->arg, c->prefix);

    if (c->rest == NULL)
        ck_assert_ptr_null(r);
    else
        ck_assert_str_eq(r, c->rest);
}
END_TEST

struct auth_case {
    const char *arg;
    int rc;
    const char *mech, *initial;   /* initial NULL: none */
};

static const struct auth_case auth_cases[] = {
    { "PLAIN", 0, "PLAIN", NULL },
    { "plain AGRlbW8AeA==", 0, "PLAIN", "AGRlbW8AeA==" },
    { "LOGIN =", 0, "LOGIN", "=" },
    { "Login\t \tZGVtbw==", 0, "LOGIN", "ZGVtbw==" },
    { "CRAM-MD5", 0, "CRAM-MD5", NULL },
    { "SCRAM-SHA-256_X", 0, "SCRAM-SHA-256_X", NULL },
    { "ABCDEFGHIJKLMNOPQRST", 0, "ABCDEFGHIJKLMNOPQRST", NULL },  /* 20 */
    { "ABCDEFGHIJKLMNOPQRSTU", -1, NULL, NULL },                  /* 21 */
    { "", -1, NULL, NULL },
    { "PLAIN a b", -1, NULL, NULL },
    { "PLAIN a\tb", -1, NULL, NULL },
    { "PL*AIN", -1, NULL, NULL },
    { "PLAIN\x80", -1, NULL, NULL },
    { "PL.AIN x", -1, NULL, NULL },
};

START_TEST(test_auth_arg)
{
    const struct auth_case *c = &auth_cases[_i];
    char mech[SMTPCMD_MECH_MAX + 1];
    const char *init = "unset";

    ck_assert_int_eq(smtpcmd_auth_arg(c->arg, mech, sizeof(mech), &init),
                     c->rc);
    if (c->rc == 0) {
        ck_assert_str_eq(mech, c->mech);
        if (c->initial == NULL)
            ck_assert_ptr_null(init);
        else
            ck_assert_str_eq(init, c->initial);
    }
    /* a buffer too small for the longest mechanism is refused */
    ck_assert_int_eq(smtpcmd_auth_arg("PLAIN", mech, SMTPCMD_MECH_MAX,
                                      &init), -1);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(smtpcmd_name(SMTP_EHLO), "ehlo");
    ck_assert_str_eq(smtpcmd_name(SMTP_QUIT), "quit");
    ck_assert_str_eq(smtpcmd_name(SMTP_AUTH), "auth");
    ck_assert_str_eq(smtpcmd_name(SMTP_VERB_COUNT), "unknown");
}
END_TEST

struct bdat_case {
    const char *arg;
    int rc;
    uint64_t size;
    bool last;
};

static const struct bdat_case bdat_cases[] = {
    { "0", 0, 0, false },
    { "0 LAST", 0, 0, true },
    { "123 last", 0, 123, true },
    { "007\t \tLaSt", 0, 7, true },
    { "9007199254740992", 0, (uint64_t)1 << 53, false },
    /* hostile */
    { "9007199254740993", -1, 0, false },
    { "99999999999999999999999999", -1, 0, false },
    { "", -1, 0, false },
    { "LAST", -1, 0, false },
    { "-1", -1, 0, false },
    { "+1", -1, 0, false },
    { "1x", -1, 0, false },
    { "1 LASTX", -1, 0, false },
    { "1 LAST LAST", -1, 0, false },
    { "1 FIRST", -1, 0, false },
    { "1,LAST", -1, 0, false },
    { " 1", -1, 0, false },
    { "0x10", -1, 0, false },
};

START_TEST(test_bdat_arg)
{
    const struct bdat_case *c = &bdat_cases[_i];
    uint64_t size = 99;
    bool last = false;

    ck_assert_msg(smtpcmd_bdat_arg(c->arg, &size, &last) == c->rc, "%s", c->arg);
    if (c->rc == 0) {
        ck_assert_uint_eq(size, c->size);
        ck_assert(last == c->last);
    }
}
END_TEST

struct dsn_case {
    const char *value;
    const char *out;        /* NULL: refused */
};

static const struct dsn_case envid_cases[] = {
    { "abc", "abc" },
    { "QQ+2Bx+3D1+20y", "QQ+x=1 y" },
    { "a+2bb", "a+b" },                 /* lower-case hex: liberal */
    { "", NULL },
    { "a+0D+0Ab", NULL },               /* CR LF smuggled */
    { "a+00b", NULL },
    { "a+7F", NULL },
    { "a+80", NULL },                   /* not US-ASCII */
    { "a+C3+A9", NULL },
    { "a+2", NULL },
    { "a+GG", NULL },
    { "a=b", NULL },
    { "a b", NULL },
    { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL },   /* 101 characters */
};

START_TEST(test_envid)
{
    const struct dsn_case *c = &envid_cases[_i];
    buf_t out = BUF_INIT;
    int r = addr_envid_decode(c->value, &out);

    if (c->out == NULL) {
        ck_assert_msg(r == -1, "%s accepted", c->value);
    } else {
        ck_assert_msg(r == 0, "%s refused", c->value);
        ck_assert_str_eq(buf_str(&out), c->out);
    }
    buf_free(&out);
}
END_TEST

static const struct dsn_case orcpt_cases[] = {
    { "rfc822;user@example.com", "rfc822;user@example.com" },
    { "RFC822;User@Example.COM", "rfc822;User@Example.COM" },
    { "rfc822;a+2Bb@example.com", "rfc822;a+b@example.com" },
    { "rfc822;postmaster", "rfc822;postmaster" },
    { "rfc822;+22a+20b+22@example.com", "rfc822;\"a b\"@example.com" },
    /* hostile */
    { "rfc822;", NULL },
    { "rfc822", NULL },
    { "utf-8;user@example.com", NULL },
    { "x400;user@example.com", NULL },
    { ";user@example.com", NULL },
    { "rfc822;user", NULL },
    { "rfc822;<user@example.com>", NULL },
    { "rfc822;user@example.com+0D+0AX-Evil:+20yes", NULL },
    { "rfc822;us+00er@example.com", NULL },
    { "rfc822;us+C3+A9r@example.com", NULL },
    { "rfc822;a@b@c", NULL },
    { "rfc822;user@exa_mple..com", NULL },
    { "rfc822;user@example.com+", NULL },
};

START_TEST(test_orcpt)
{
    const struct dsn_case *c = &orcpt_cases[_i];
    buf_t out = BUF_INIT;
    const char *err = NULL;
    int r = addr_orcpt_decode(c->value, &out, &err);

    if (c->out == NULL) {
        ck_assert_msg(r == -1, "%s accepted as %s", c->value, buf_str(&out));
        ck_assert_ptr_nonnull(err);
    } else {
        ck_assert_msg(r == 0, "%s refused: %s", c->value, err);
        ck_assert_str_eq(buf_str(&out), c->out);
    }
    buf_free(&out);
}
END_TEST

START_TEST(test_orcpt_long)
{
    buf_t v = BUF_INIT, out = BUF_INIT;
    const char *err = NULL;

    buf_puts(&v, "rfc822;");
    for (int i = 0; i < 60; i++)
        buf_puts(&v, "+61");             /* 180 characters, "a" x 60 */
    buf_puts(&v, "@example.com");
    ck_assert_int_eq(addr_orcpt_decode(buf_str(&v), &out, &err), 0);
    for (int i = 0; i < 120; i++)
        buf_puts(&v, "+61");             /* over ADDR_ORCPT_MAX */
    ck_assert_int_eq(addr_orcpt_decode(buf_str(&v), &out, &err), -1);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&v);
    buf_free(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("smtpcmd");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_loop_test(tc, test_path_arg, 0,
                        sizeof(path_cases) / sizeof(path_cases[0]));
    tcase_add_loop_test(tc, test_auth_arg, 0,
                        sizeof(auth_cases) / sizeof(auth_cases[0]));
    tcase_add_test(tc, test_overlong);
    tcase_add_test(tc, test_names);
    tcase_add_loop_test(tc, test_bdat_arg, 0,
                        sizeof(bdat_cases) / sizeof(bdat_cases[0]));
    tcase_add_loop_test(tc, test_envid, 0,
                        sizeof(envid_cases) / sizeof(envid_cases[0]));
    tcase_add_loop_test(tc, test_orcpt, 0,
                        sizeof(orcpt_cases) / sizeof(orcpt_cases[0]));
    tcase_add_test(tc, test_orcpt_long);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

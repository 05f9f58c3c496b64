/* test_pop3_cmd - the POP3 command parser: every verb's argument count,
   spacing, case, PASS and AUTH, and hostile lines (NUL, CR, tabs, double
   spaces, over-long keywords and lines, 8-bit bytes); message numbers. */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "mail/pop3_cmd.h"

#define S(x) x, sizeof(x) - 1

struct cmd_case {
    const char *line;
    size_t len;
    enum pop3_parse_error rc;
    enum pop3_verb verb;
    const char *keyword;
    size_t argc;
    const char *a0, *a1;
};

static const struct cmd_case cases[] = {
    /* every verb, right argument counts */
    { S("USER alice"), POP3_OK, POP3_USER, "USER", 1, "alice", NULL },
    { S("PASS secret"), POP3_OK, POP3_PASS, "PASS", 1, "secret", NULL },
    { S("PASS two words  here"), POP3_OK, POP3_PASS, "PASS", 1,
      "two words  here", NULL },
    { S("PASS trailing "), POP3_OK, POP3_PASS, "PASS", 1, "trailing ", NULL },
    { S("PASS  lead"), POP3_OK, POP3_PASS, "PASS", 1, " lead", NULL },
    { S("PASS  "), POP3_OK, POP3_PASS, "PASS", 1, " ", NULL },
    { S("PASS \xc3\xa9t\xc3\xa9"), POP3_OK, POP3_PASS, "PASS", 1,
      "\xc3\xa9t\xc3\xa9", NULL },
    { S("APOP mrose c4c9334bac560ecc979e58001b3e22fb"), POP3_OK, POP3_APOP,
      "APOP", 2, "mrose", "c4c9334bac560ecc979e58001b3e22fb" },
    { S("AUTH"), POP3_OK, POP3_AUTH, "AUTH", 0, NULL, NULL },
    { S("AUTH PLAIN"), POP3_OK, POP3_AUTH, "AUTH", 1, "PLAIN", NULL },
    { S("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), POP3_OK, POP3_AUTH, "AUTH", 2,
      "PLAIN", "AGFsaWNlAHNlY3JldA==" },
    { S("AUTH PLAIN ="), POP3_OK, POP3_AUTH, "AUTH", 2, "PLAIN", "=" },
    { S("STLS"), POP3_OK, POP3_STLS, "STLS", 0, NULL, NULL },
    { S("CAPA"), POP3_OK, POP3_CAPA, "CAPA", 0, NULL, NULL },
    { S("QUIT"), POP3_OK, POP3_QUIT, "QUIT", 0, NULL, NULL },
    { S("STAT"), POP3_OK, POP3_STAT, "STAT", 0, NULL, NULL },
    { S("LIST"), POP3_OK, POP3_LIST, "LIST", 0, NULL, NULL },
    { S("LIST 1"), POP3_OK, POP3_LIST, "LIST", 1, "1", NULL },
    { S("RETR 12"), POP3_OK, POP3_RETR, "RETR", 1, "12", NULL },
    { S("DELE 3"), POP3_OK, POP3_DELE, "DELE", 1, "3", NULL },
    { S("NOOP"), POP3_OK, POP3_NOOP, "NOOP", 0, NULL, NULL },
    { S("RSET"), POP3_OK, POP3_RSET, "RSET", 0, NULL, NULL },
    { S("TOP 1 0"), POP3_OK, POP3_TOP, "TOP", 2, "1", "0" },
    { S("UIDL"), POP3_OK, POP3_UIDL, "UIDL", 0, NULL, NULL },
    { S("UIDL 7"), POP3_OK, POP3_UIDL, "UIDL", 1, "7", NULL },
    { S("utf8"), POP3_OK, POP3_UTF8, "UTF8", 0, NULL, NULL },
    { S("UTF8"), POP3_OK, POP3_UTF8, "UTF8", 0, NULL, NULL },
    /* case, trailing spaces */
    { S("quit"), POP3_OK, POP3_QUIT, "QUIT", 0, NULL, NULL },
    { S("rEtR 1"), POP3_OK, POP3_RETR, "RETR", 1, "1", NULL },
    { S("top 2 10"), POP3_OK, POP3_TOP, "TOP", 2, "2", "10" },
    { S("QUIT "), POP3_OK, POP3_QUIT, "QUIT", 0, NULL, NULL },
    { S("QUIT    "), POP3_OK, POP3_QUIT, "QUIT", 0, NULL, NULL },
    { S("LIST 1 "), POP3_OK, POP3_LIST, "LIST", 1, "1", NULL },
    { S("USER a@b.example  "), POP3_OK, POP3_USER, "USER", 1, "a@b.example",
      NULL },
    /* numbers are not checked by the parser (pop3_cmd_number is) */
    { S("RETR -1"), POP3_OK, POP3_RETR, "RETR", 1, "-1", NULL },
    { S("RETR 99999999999999999999999"), POP3_OK, POP3_RETR, "RETR", 1,
      "99999999999999999999999", NULL },
    { S("USER \x80\xff"), POP3_OK, POP3_USER, "USER", 1, "\x80\xff", NULL },
    /* wrong argument counts */
    { S("USER"), POP3_ERR_ARGS, POP3_USER, "USER", 0, NULL, NULL },
    { S("USER a b"), POP3_ERR_ARGS, POP3_USER, "USER", 2, NULL, NULL },
    { S("USER "), POP3_ERR_ARGS, POP3_USER, "USER", 0, NULL, NULL },
    { S("PASS"), POP3_ERR_ARGS, POP3_PASS, "PASS", 0, NULL, NULL },
    { S("PASS "), POP3_ERR_ARGS, POP3_PASS, "PASS", 0, NULL, NULL },
    { S("APOP mrose"), POP3_ERR_ARGS, POP3_APOP, "APOP", 1, NULL, NULL },
    { S("APOP a b c"), POP3_ERR_ARGS, POP3_APOP, "APOP", 2, NULL, NULL },
    { S("AUTH PLAIN x y"), POP3_ERR_ARGS, POP3_AUTH, "AUTH", 2, NULL, NULL },
    { S("STLS now"), POP3_ERR_ARGS, POP3_STLS, "STLS", 1, NULL, NULL },
    { S("CAPA x"), POP3_ERR_ARGS, POP3_CAPA, "CAPA", 1, NULL, NULL },
    { S("QUIT now"), POP3_ERR_ARGS, POP3_QUIT, "QUIT", 1, NULL, NULL },
    { S("STAT 1"), POP3_ERR_ARGS, POP3_STAT, "STAT", 1, NULL, NULL },
    { S("LIST 1 2"), POP3_ERR_ARGS, POP3_LIST, "LIST", 2, NULL, NULL },
    { S("RETR"), POP3_ERR_ARGS, POP3_RETR, "RETR", 0, NULL, NULL },
    { S("RETR 1 2"), POP3_ERR_ARGS, POP3_RETR, "RETR", 2, NULL, NULL },
    { S("DELE"), POP3_ERR_ARGS, POP3_DELE, "DELE", 0, NULL, NULL },
    { S("NOOP x"), POP3_ERR_ARGS, POP3_NOOP, "NOOP", 1, NULL, NULL },
    { S("RSET x"), POP3_ERR_ARGS, POP3_RSET, "RSET", 1, NULL, NULL },
    { S("TOP 1"), POP3_ERR_ARGS, POP3_TOP, "TOP", 1, NULL, NULL },
    { S("TOP"), POP3_ERR_ARGS, POP3_TOP, "TOP", 0, NULL, NULL },
    { S("TOP 1 2 3"), POP3_ERR_ARGS, POP3_TOP, "TOP", 2, NULL, NULL },
    { S("UIDL 1 2"), POP3_ERR_ARGS, POP3_UIDL, "UIDL", 2, NULL, NULL },
    { S("UTF8 x"), POP3_ERR_ARGS, POP3_UTF8, "UTF8", 1, NULL, NULL },
    { S("LIST 1 2 3 4 5 6 7 8 9"), POP3_ERR_ARGS, POP3_LIST, "LIST", 2, NULL,
      NULL },
    /* bad spacing */
    { S("LIST  1"), POP3_ERR_SYNTAX, POP3_LIST, "LIST", 0, NULL, NULL },
    { S("TOP 1  2"), POP3_ERR_SYNTAX, POP3_TOP, "TOP", 1, NULL, NULL },
    { S(" QUIT"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S(" "), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("    "), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    /* control characters */
    { S(""), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("QUIT\0"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("\0QUIT"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("QU\0T"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("USER al\0ice"), POP3_ERR_SYNTAX, POP3_USER, "USER", 0, NULL, NULL },
    { S("PASS sec\0ret"), POP3_ERR_SYNTAX, POP3_PASS, "PASS", 0, NULL, NULL },
    { S("QUIT\r"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("QUIT\r\n"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("RETR 1\rDELE 1"), POP3_ERR_SYNTAX, POP3_RETR, "RETR", 0, NULL, NULL },
    { S("STLS\r\nCAPA"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("LIST\t1"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("LIST 1\t"), POP3_ERR_SYNTAX, POP3_LIST, "LIST", 0, NULL, NULL },
    { S("\tQUIT"), POP3_ERR_SYNTAX, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("PASS a\x7f"), POP3_ERR_SYNTAX, POP3_PASS, "PASS", 0, NULL, NULL },
    { S("USER \x1b[31m"), POP3_ERR_SYNTAX, POP3_USER, "USER", 0, NULL, NULL },
    /* unknown keywords */
    { S("RETRX 1"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("QUITQUITQUITQUITQUITQUIT"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0,
      NULL, NULL },
    { S("QU"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("Q"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("HELO"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "HELO", 0, NULL, NULL },
    { S("GET / HTTP/1.0"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "GET", 0, NULL,
      NULL },
    { S("RET1 1"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "RET1", 0, NULL, NULL },
    { S("1234"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "1234", 0, NULL, NULL },
    { S("QUIT:"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("\xc3\x9cSER x"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
    { S("STARTTLS"), POP3_ERR_UNKNOWN, POP3_UNKNOWN, "", 0, NULL, NULL },
};

START_TEST(test_parse)
{
    const struct cmd_case *c = &cases[_i];
    struct pop3_cmd cmd;

    memset(&cmd, 0x5a, sizeof(cmd));
    enum pop3_parse_error rc = pop3_cmd_parse(c->line, c->len, &cmd);
    ck_assert_msg(rc == c->rc, "case %d: rc %d, want %d", _i, rc, c->rc);
    ck_assert_msg(cmd.verb == c->verb, "case %d: verb %d, want %d", _i,
                  cmd.verb, c->verb);
    ck_assert_str_eq(cmd.keyword, c->keyword);
    ck_assert_uint_le(cmd.argc, POP3_ARG_MAX);
    if (rc == POP3_OK) {
        ck_assert_uint_eq(cmd.argc, c->argc);
        if (c->argc > 0)
            ck_assert_str_eq(cmd.argv[0], c->a0);
        if (c->argc > 1)
            ck_assert_str_eq(cmd.argv[1], c->a1);
    }
}
END_TEST

/* lines at and beyond the limit, built at run time */
START_TEST(test_lengths)
{
    char line[1024];
    struct pop3_cmd cmd;

    /* PASS with the longest password that fits */
    memcpy(line, "PASS ", 5);
    memset(line + 5, 'p', POP3_LINE_MAX - 5);
    ck_assert_int_eq(pop3_cmd_parse(line, POP3_LINE_MAX, &cmd), POP3_OK);
    ck_assert_uint_eq(strlen(cmd.argv[0]), POP3_LINE_MAX - 5);
    /* one more: too long, the keyword is still known */
    line[POP3_LINE_MAX] = 'p';
    ck_assert_int_eq(pop3_cmd_parse(line, POP3_LINE_MAX + 1, &cmd),
                     POP3_ERR_TOO_LONG);
    ck_assert_int_eq(cmd.verb, POP3_PASS);
    ck_assert_str_eq(cmd.keyword, "PASS");
    /* 256 bytes of QUIT + spaces */
    memcpy(line, "QUIT", 4);
    memset(line + 4, ' ', 252);
    ck_assert_int_eq(pop3_cmd_parse(line, 256, &cmd), POP3_ERR_TOO_LONG);
    ck_assert_int_eq(cmd.verb, POP3_QUIT);
    ck_assert_int_eq(pop3_cmd_parse(line, 255, &cmd), POP3_OK);
    /* AUTH with a long initial response (SASL PLAIN of long names) */
    memcpy(line, "AUTH PLAIN ", 11);
    memset(line + 11, 'A', POP3_LINE_MAX - 11);
    ck_assert_int_eq(pop3_cmd_parse(line, POP3_LINE_MAX, &cmd), POP3_OK);
    ck_assert_uint_eq(cmd.argc, 2);
    ck_assert_uint_eq(strlen(cmd.argv[1]), POP3_LINE_MAX - 11);
    /* a USER name that fills the line */
    memcpy(line, "USER ", 5);
    memset(line + 5, 'u', POP3_LINE_MAX - 5);
    ck_assert_int_eq(pop3_cmd_parse(line, POP3_LINE_MAX, &cmd), POP3_OK);
    ck_assert_uint_eq(strlen(cmd.argv[0]), POP3_LINE_MAX - 5);
    /* 1000 bytes of junk: too long, no keyword */
    memset(line, 'x', sizeof(line));
    ck_assert_int_eq(pop3_cmd_parse(line, sizeof(line), &cmd),
                     POP3_ERR_TOO_LONG);
    ck_assert_int_eq(cmd.verb, POP3_UNKNOWN);
    ck_assert_str_eq(cmd.keyword, "");
    /* a long line of NULs: too long wins over syntax */
    memset(line, 0, sizeof(line));
    ck_assert_int_eq(pop3_cmd_parse(line, sizeof(line), &cmd),
                     POP3_ERR_TOO_LONG);
    /* many single-letter arguments in a line of maximal length */
    memcpy(line, "LIST", 4);
    for (size_t i = 4; i + 1 < POP3_LINE_MAX; i += 2) {
        line[i] = ' ';
        line[i + 1] = '1';
    }
    ck_assert_int_eq(pop3_cmd_parse(line, POP3_LINE_MAX - 1, &cmd),
                     POP3_ERR_ARGS);
    ck_assert_uint_le(cmd.argc, POP3_ARG_MAX);
}
END_TEST

struct num_case {
    const char *arg;
    bool allow_zero;
    int rc;
    long value;
};

static const struct num_case num_cases[] = {
    { "1", false, 0, 1 },
    { "42", false, 0, 42 },
    { "007", false, 0, 7 },
    { "0000000000000000000000000000001", false, 0, 1 },
    { "1000000000", false, 0, POP3_MSG_MAX },
    { "1000000001", false, -1, 0 },
    { "99999999999999999999999999999", false, -1, 0 },
    { "18446744073709551617", false, -1, 0 },
    { "9223372036854775808", false, -1, 0 },
    { "0", false, -1, 0 },
    { "00", false, -1, 0 },
    { "0", true, 0, 0 },
    { "000", true, 0, 0 },
    { "10", true, 0, 10 },
    { "", false, -1, 0 },
    { "", true, -1, 0 },
    { "-1", false, -1, 0 },
    { "-0", true, -1, 0 },
    { "+1", false, -1, 0 },
    { " 1", false, -1, 0 },
    { "1 ", false, -1, 0 },
    { "1a", false, -1, 0 },
    { "0x10", true, -1, 0 },
    { "1e3", false, -1, 0 },
    { "1.0", false, -1, 0 },
    { "\xd9\xa1", false, -1, 0 },       /* ARABIC-INDIC DIGIT ONE */
};

START_TEST(test_number)
{
    const struct num_case *c = &num_cases[_i];
    long v = -12345;

    ck_assert_msg(pop3_cmd_number(c->arg, c->allow_zero, &v) == c->rc,
                  "case %d (%s)", _i, c->arg);
    if (c->rc == 0)
        ck_assert_int_eq(v, c->value);
    else
        ck_assert_int_eq(v, -12345);
}
END_TEST

START_TEST(test_names_clear)
{
    struct pop3_cmd cmd;

    ck_assert_str_eq(pop3_verb_name(POP3_RETR), "RETR");
    ck_assert_str_eq(pop3_verb_name(POP3_TOP), "TOP");
    ck_assert_str_eq(pop3_verb_name(POP3_UTF8), "UTF8");
    ck_assert_str_eq(pop3_verb_name(POP3_UNKNOWN), "UNKNOWN");
    ck_assert_str_eq(pop3_verb_name((enum pop3_verb)999), "UNKNOWN");
    ck_assert_int_eq(pop3_cmd_number(NULL, true, &(long){0}), -1);
    ck_assert_int_eq(pop3_cmd_parse(S("PASS hunter2"), &cmd), POP3_OK);
    pop3_cmd_clear(&cmd);
    ck_assert_int_eq(cmd.verb, POP3_UNKNOWN);
    ck_assert_uint_eq(cmd.argc, 0);
    for (size_t i = 0; i < sizeof(cmd.argv[0]); i++)
        ck_assert_int_eq(cmd.argv[0][i], 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pop3_cmd");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_parse, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_lengths);
    tcase_add_loop_test(tc, test_number, 0,
                        sizeof(num_cases) / sizeof(num_cases[0]));
    tcase_add_test(tc, test_names_clear);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

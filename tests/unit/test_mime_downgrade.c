/*
 * test_mime_downgrade - 8-bit mail to 7-bit MIME: plain 8-bit messages
 * get MIME headers and a quoted-printable body; multipart parts are
 * converted one by one, 7-bit parts and 8-bit headers left alone;
 * message/rfc822 is walked into; QP lines stay within 76 columns and
 * trailing white space is encoded; what cannot be converted (8-bit in
 * base64/QP parts, multipart without boundary, deep nesting) is
 * refused; the output never holds a byte >= 0x80 outside headers.
 */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>
#include "mail/mime_downgrade.h"
#include "util/buf.h"

static char *down(const char *in, const char **why)
{
    buf_t out = BUF_INIT;
    char *r;

    *why = NULL;
    if (mime_downgrade(in, strlen(in), &out, why) < 0) {
        buf_free(&out);
        return NULL;
    }
    r = strdup(buf_str(&out));
    buf_free(&out);
    return r;
}

/* body_7bit - nothing >= 0x80 after the first blank line */
static void body_7bit(const char *s)
{
    const char *b = strstr(s, "\n\n");

    ck_assert_ptr_nonnull(b);
    for (; *b; b++)
        ck_assert_msg((unsigned char)*b < 0x80, "8-bit byte in body:\n%s", s);
}

static const struct {
    const char *in;
    const char *want;
} cases[] = {
    /* 7-bit stays byte for byte */
    { "Subject: a\n\nplain text\n", "Subject: a\n\nplain text\n" },
    /* not MIME yet */
    { "Subject: a\n\ncaf\xc3\xa9\n",
      "Subject: a\nMIME-Version: 1.0\n"
      "Content-Type: text/plain; charset=unknown-8bit\n"
      "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n" },
    /* MIME with 8bit CTE: the CTE field is replaced */
    { "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: 8bit\n\n\xc3\xa9 = x \n",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9 =3D x=20\n" },
    /* 8-bit header only: left as is */
    { "Subject: caf\xc3\xa9\n\nascii\n", "Subject: caf\xc3\xa9\n\nascii\n" },
    /* multipart: only the 8-bit part changes */
    { "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
      "pre\n--b1\nContent-Type: text/plain\n\nascii\n"
      "--b1\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: 8bit\n\n\xc3\xa9\n--b1--\npost\n",
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
      "pre\n--b1\nContent-Type: text/plain\n\nascii\n"
      "--b1\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--b1--\npost\n" },
    /* message/rfc822 inside, with 8bit declared on the container */
    { "MIME-Version: 1.0\nContent-Type: message/rfc822\n"
      "Content-Transfer-Encoding: 8bit\n\n"
      "Subject: inner\nMIME-Version: 1.0\nContent-Type: text/plain\n\n\xff\n",
      "MIME-Version: 1.0\nContent-Type: message/rfc822\n"
      "Content-Transfer-Encoding: 7bit\n\n"
      "Subject: inner\nMIME-Version: 1.0\nContent-Type: text/plain\n"
      "Content-Transfer-Encoding: quoted-printable\n\n=FF\n" },
    /* a bare CR and a NUL are encoded; a tab inside stays */
    { "MIME-Version: 1.0\n\na\rb\tc\xe9\n",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
      "Content-Transfer-Encoding: quoted-printable\n\na=0Db\tc=E9\n" },
};

START_TEST(test_cases)
{
    const char *why;
    char *got = down(cases[_i].in, &why);

    ck_assert_msg(got != NULL, "case %d refused: %s", _i, why);
    ck_assert_msg(strcmp(got, cases[_i].want) == 0, "case %d:\n%s\nwant:\n%s",
                  _i, got, cases[_i].want);
    free(got);
}
END_TEST

START_TEST(test_long_lines)
{
    char in[4096], *got;
    const char *why, *line;
    size_t n;

    n = (size_t)snprintf(in, sizeof(in), "MIME-Version: 1.0\n\n");
    for (int i = 0; i < 500; i++)
        in[n++] = i % 7 == 0 ? '\xe9' : 'x';
    in[n++] = ' ';
    in[n++] = '\n';
    in[n] = '\0';
    got = down(in, &why);
    ck_assert_ptr_nonnull(got);
    body_7bit(got);
    line = strstr(got, "\n\n") + 2;
    while (*line) {
        const char *e = strchr(line, '\n');

        ck_assert_ptr_nonnull(e);
        ck_assert_msg(e - line <= 76, "line of %d", (int)(e - line));
        line = e + 1;
    }
    /* the trailing space is encoded, never a soft break before LF */
    ck_assert_ptr_nonnull(strstr(got, "=20\n"));
    free(got);
}
END_TEST

static const char *const refused[] = {
    "MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n\xe9\n",
    "MIME-Version: 1.0\nContent-Transfer-Encoding: Quoted-Printable\n\n\xe9\n",
    "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n\xe9\n",
};

START_TEST(test_refused)
{
    const char *why;
    char *got = down(refused[_i], &why);

    ck_assert_msg(got == NULL, "case %d converted:\n%s", _i, got);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_deep_nesting)
{
    buf_t in = BUF_INIT, out = BUF_INIT;
    const char *why;

    for (int i = 0; i < MIME_DOWNGRADE_MAX_DEPTH + 5; i++)
        buf_puts(&in, "Content-Type: message/rfc822\n\n");
    buf_puts(&in, "Subject: x\n\n\xe9\n");
    ck_assert_int_eq(mime_downgrade(in.data, in.len, &out, &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "nested"));
    buf_free(&in);
    buf_free(&out);
}
END_TEST

START_TEST(test_hostile_bytes)
{
    /* random-ish garbage never crashes and what comes out is 7-bit
       past the headers */
    unsigned seed = 12345;
    char in[2048];

    for (int round = 0; round < 300; round++) {
        buf_t out = BUF_INIT;
        const char *why;
        size_t n = 0;

        n += (size_t)snprintf(in, sizeof(in), "%s",
                              round % 3 == 0 ? "Content-Type: multipart/mixed;"
                              " boundary=zz\n\n--zz\n\n" : "A: b\n\n");
        while (n < sizeof(in) - 1) {
            seed = seed * 1103515245 + 12345;
            char c = (char)(seed >> 16);
            in[n++] = (seed >> 8) % 5 == 0 ? '\n' : c;
        }
        in[n] = '\0';
        if (mime_downgrade(in, n, &out, &why) == 0 && round % 3 != 0)
            body_7bit(buf_str(&out));
        buf_free(&out);
    }
}
END_TEST

static Suite *mime_downgrade_suite(void)
{
    Suite *s = suite_create("mime_downgrade");
    TCase *tc = tcase_create("mime_downgrade");

    tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_long_lines);
    tcase_add_loop_test(tc, test_refused, 0,
                        sizeof(refused) / sizeof(refused[0]));
    tcase_add_test(tc, test_deep_nesting);
    tcase_add_test(tc, test_hostile_bytes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(mime_downgrade_suite(), true);
}

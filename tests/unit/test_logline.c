/*
 * test_logline - Postfix-style logical lines: table of inputs (comments,
 * blank lines, continuations, CRLF, limits, NUL bytes, a leading
 * continuation) and the entries or the error each must give.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>
#include "util/buf.h"
#include "util/logline.h"

#define T(s) s, sizeof(s) - 1

static const struct {
    const char *text;
    size_t len;
    size_t max_line, max_entry;
    const char *want;       /* entries as "LINE:text|..." or "ERR LINE:msg" */
} cases[] = {
    { T(""), 0, 0, "" },
    { T("\n\n  \n# c\n  # indented\n"), 0, 0, "" },
    { T("a = 1\nb = 2"), 0, 0, "1:a = 1|2:b = 2|" },
    { T("a = x,\n  y,\n\tz\n"), 0, 0, "1:a = x, y, z|" },
    { T("a\n# between\n  b\n\n  c\nd"), 0, 0, "1:a b c|6:d|" },
    { T("a  \r\n  b\t\r\n"), 0, 0, "1:a b|" },
    { T("  a\n"), 0, 0, "ERR 1:continuation line without a preceding entry" },
    { T("\n\n\tb\n"), 0, 0, "ERR 3:continuation line without a preceding entry" },
    { T("a\nb\0c\n"), 0, 0, "ERR 2:NUL byte in line" },  /* read ahead */
    { T("abcdef\n"), 5, 0, "ERR 1:line longer than 5 bytes" },
    { T("abcde\n"), 5, 0, "1:abcde|" },
    { T("ab\n cd\n ef\n"), 0, 5, "ERR 1:entry longer than 5 bytes" },
    { T("ab\n cd\n"), 0, 5, "1:ab cd|" },
    { T("#only\n#comments"), 0, 0, "" },
    { T("x\n  \n  \n"), 0, 0, "1:x|" },
};

START_TEST(test_logline_table)
{
    logline_t ll;
    buf_t got = BUF_INIT;
    const char *error;
    char *entry;
    long lineno;
    int r;

    logline_init(&ll, cases[_i].text, cases[_i].len, cases[_i].max_line,
                 cases[_i].max_entry);
    while ((r = logline_next(&ll, &entry, &lineno, &error)) > 0)
        buf_printf(&got, "%ld:%s|", lineno, entry);
    if (r < 0)
        buf_printf(&got, "ERR %ld:%s", lineno, error);
    ck_assert_msg(strcmp(buf_str(&got), cases[_i].want) == 0,
                  "case %d: got \"%s\", want \"%s\"", _i, buf_str(&got),
                  cases[_i].want);
    /* after the end or an error it stays there */
    ck_assert_int_eq(logline_next(&ll, &entry, &lineno, &error), 0);
    logline_free(&ll);
    buf_free(&got);
}
END_TEST

static Suite *logline_suite(void)
{
    Suite *s = suite_create("logline");
    TCase *tc = tcase_create("logline");

    tcase_add_loop_test(tc, test_logline_table, 0, sizeof(cases) / sizeof(cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(logline_suite(), true);
}

/*
 * test_content_check - unit tests for the header_checks/body_checks
 * action parser (lib/mail/content_check.c): every action, case, text,
 * enhanced status codes in REJECT texts, and results that are no action.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>

#include "mail/content_check.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *value;
    int rc;
    enum content_action action;
    const char *text;           /* or the error */
    const char *dsn;
    int code;
} cases[] = {
    { "REJECT", 0, CC_REJECT, "", "5.7.1", 550 },
    { "REJECT no spam here", 0, CC_REJECT, "no spam here", "5.7.1", 550 },
    { "reject  \t spaced", 0, CC_REJECT, "spaced", "5.7.1", 550 },
    { "Reject 5.7.9 own code", 0, CC_REJECT, "own code", "5.7.9", 550 },
    { "REJECT 4.7.1 try later", 0, CC_REJECT, "try later", "4.7.1", 450 },
    { "REJECT 5.123.456", 0, CC_REJECT, "", "5.123.456", 550 },
    /* not status codes: part of the text */
    { "REJECT 5.7.1x text", 0, CC_REJECT, "5.7.1x text", "5.7.1", 550 },
    { "REJECT 2.0.0 ok", 0, CC_REJECT, "2.0.0 ok", "5.7.1", 550 },
    { "REJECT 5.1234.1 x", 0, CC_REJECT, "5.1234.1 x", "5.7.1", 550 },
    { "REJECT 5..1 x", 0, CC_REJECT, "5..1 x", "5.7.1", 550 },
    { "REJECT 5.7.", 0, CC_REJECT, "5.7.", "5.7.1", 550 },
    { "DISCARD", 0, CC_DISCARD, "", NULL, 0 },
    { "discard bye", 0, CC_DISCARD, "bye", NULL, 0 },
    { "HOLD", 0, CC_HOLD, "", NULL, 0 },
    { "HOLD for review", 0, CC_HOLD, "for review", NULL, 0 },
    { "WARN", 0, CC_WARN, "", NULL, 0 },
    { "warn odd header", 0, CC_WARN, "odd header", NULL, 0 },
    { "IGNORE", 0, CC_IGNORE, "", NULL, 0 },
    { "REPLACE X-New: 1", 0, CC_REPLACE, "X-New: 1", NULL, 0 },
    { "PREPEND X-Seen: yes", 0, CC_PREPEND, "X-Seen: yes", NULL, 0 },
    { "DUNNO", 0, CC_DUNNO, "", NULL, 0 },
    { "OK", 0, CC_DUNNO, "", NULL, 0 },
    { "  ok", 0, CC_DUNNO, "", NULL, 0 },
    { "REPLACE", -1, 0, "REPLACE without text", NULL, 0 },
    { "PREPEND   ", -1, 0, "PREPEND without text", NULL, 0 },
    { "", -1, 0, "unknown action", NULL, 0 },
    { "REJECTED", -1, 0, "unknown action", NULL, 0 },
    { "REJ", -1, 0, "unknown action", NULL, 0 },
    { "FILTER smtp:x", -1, 0, "unknown action", NULL, 0 },
    { "550 no", -1, 0, "unknown action", NULL, 0 },
};

START_TEST(test_parse)
{
    struct content_verdict v;
    const char *why = NULL;
    int rc = content_check_parse(cases[_i].value, &v, &why);

    ck_assert_msg(rc == cases[_i].rc, "\"%s\": rc %d", cases[_i].value, rc);
    if (rc < 0) {
        ck_assert_str_eq(why, cases[_i].text);
        return;
    }
    ck_assert_int_eq(v.action, cases[_i].action);
    ck_assert_str_eq(v.text, cases[_i].text);
    if (cases[_i].dsn != NULL) {
        ck_assert_str_eq(v.dsn, cases[_i].dsn);
        ck_assert_int_eq(v.code, cases[_i].code);
    }
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(content_check_name(CC_REJECT), "reject");
    ck_assert_str_eq(content_check_name(CC_WARN), "warning");
    ck_assert_str_eq(content_check_name(CC_HOLD), "hold");
}
END_TEST

static Suite *content_check_suite(void)
{
    Suite *s = suite_create("content_check");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, test_parse, 0, ARRAY_LEN(cases));
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(content_check_suite(), true);
}

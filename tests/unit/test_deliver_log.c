/*
 * test_deliver_log - delay figures as Postfix logs them (two significant
 * digits, at most delay_logging_resolution_limit decimals, trailing
 * zeros dropped, never an exponent), the delays=a/b/c/d split, and the
 * status line's orig_to= rule.
 */
#include <check.h>

#include "check_main.h"
#include <stdint.h>
#include <string.h>
#include "mail/config.h"
#include "mail/deliver_log.h"

static const struct {
    uint64_t usec;
    const char *want;
} delay_cases[] = {
    { 0, "0" },
    { 74, "0" },                /* was 7.4e-05 with %g */
    { 4999, "0" },
    { 5000, "0.01" },
    { 10000, "0.01" },
    { 123456, "0.12" },
    { 100000, "0.1" },
    { 390000, "0.39" },
    { 999999, "1" },
    { 1000000, "1" },
    { 3400000, "3.4" },
    { 9990000, "10" },
    { 12345678, "12" },
    { 125000000, "125" },
    { 86400ULL * 1000000 * 5, "432000" },
    { UINT64_MAX, "18446744073710" },
};

START_TEST(test_delay_format)
{
    char out[32];

    var_delay_logging_resolution_limit = 2;
    deliver_delay_format(delay_cases[_i].usec, out, sizeof(out));
    ck_assert_msg(strcmp(out, delay_cases[_i].want) == 0,
                  "case %d: got %s want %s", _i, out, delay_cases[_i].want);
    ck_assert_ptr_null(strchr(out, 'e'));
}
END_TEST

START_TEST(test_delay_resolution_limit)
{
    char out[32];

    var_delay_logging_resolution_limit = 0;
    deliver_delay_format(390000, out, sizeof(out));
    ck_assert_str_eq(out, "0");
    deliver_delay_format(3400000, out, sizeof(out));
    ck_assert_str_eq(out, "3");
    var_delay_logging_resolution_limit = 4;
    deliver_delay_format(1234, out, sizeof(out));
    ck_assert_str_eq(out, "0.0012");
    var_delay_logging_resolution_limit = 2;
    /* a too-small buffer truncates, never overflows */
    deliver_delay_format(123456, out, 3);
    ck_assert_str_eq(out, "0.");
}
END_TEST

START_TEST(test_delays_split)
{
    struct deliver_times t = { 1000000, 1010000, 1010000, 1030000, 1390000 };
    char out[128];

    var_delay_logging_resolution_limit = 2;
    deliver_delays_text(&t, out, sizeof(out));
    ck_assert_str_eq(out, "delay=0.39, delays=0.01/0/0.02/0.36");
    /* no connection stage, no qmgr time: c is 0, b is 0 */
    t = (struct deliver_times){ 1000000, 0, 2000000, 0, 2500000 };
    deliver_delays_text(&t, out, sizeof(out));
    ck_assert_str_eq(out, "delay=1.5, delays=1/0/0/0.5");
    /* clocks out of order never make a negative or huge figure */
    t = (struct deliver_times){ 5000000, 9000000, 2000000, 1000000, 3000000 };
    deliver_delays_text(&t, out, sizeof(out));
    ck_assert_ptr_null(strchr(out, '-'));
    ck_assert_ptr_null(strstr(out, "1844"));
}
END_TEST

static Suite *deliver_log_suite(void)
{
    Suite *s = suite_create("deliver_log");
    TCase *tc = tcase_create("deliver_log");

    tcase_add_loop_test(tc, test_delay_format, 0,
                        sizeof(delay_cases) / sizeof(delay_cases[0]));
    tcase_add_test(tc, test_delay_resolution_limit);
    tcase_add_test(tc, test_delays_split);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(deliver_log_suite(), true);
}

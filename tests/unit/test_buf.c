/* Unit tests for lib/buf.c */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

START_TEST(test_append_and_str)
{
    buf_t b;
    buf_init(&b, 0);
    ck_assert_str_eq(buf_str(&b), "");
    ck_assert_int_eq(buf_puts(&b, "hello"), 0);
    ck_assert_int_eq(buf_putc(&b, ' '), 0);
    ck_assert_int_eq(buf_printf(&b, "%d-%s", 42, "x"), 0);
    ck_assert_str_eq(buf_str(&b), "hello 42-x");
    ck_assert_uint_eq(b.len, 10);
    buf_free(&b);
}
END_TEST

START_TEST(test_binary_and_consume)
{
    buf_t b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_append(&b, "a\0b\0c", 5), 0);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_int_eq(memcmp(b.data, "a\0b\0c", 5), 0);
    buf_consume(&b, 2);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.data, "b\0c", 3), 0);
    buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(buf_str(&b), "");
    buf_free(&b);
}
END_TEST

/* the cap is the security property: hostile sizes must fail cleanly */
static const struct { size_t max; size_t first; size_t second; int ok1; int ok2; } cap_cases[] = {
    { 10, 10, 0, 0, 0 },
    { 10, 10, 1, 0, -1 },
    { 10, 11, 0, -1, 0 },
    { 1, 0, 1, 0, 0 },
    { 100, 50, 51, 0, -1 },
    { 100, (size_t)-1, 1, -1, 0 },
};

START_TEST(test_cap)
{
    buf_t b;
    buf_init(&b, cap_cases[_i].max);
    char *big = calloc(1, 200);
    size_t first = cap_cases[_i].first;
    int r1 = buf_append(&b, big, first);   /* huge n must fail before any copy */
    ck_assert_int_eq(r1, cap_cases[_i].ok1);
    size_t before = b.len;
    int r2 = buf_append(&b, big, cap_cases[_i].second);
    ck_assert_int_eq(r2, cap_cases[_i].ok2);
    if (r2 < 0)
        ck_assert_uint_eq(b.len, before);
    ck_assert(b.len <= b.max);
    free(big);
    buf_free(&b);
}
END_TEST

START_TEST(test_printf_cap)
{
    buf_t b;
    buf_init(&b, 8);
    ck_assert_int_eq(buf_printf(&b, "%s", "123456789"), -1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_printf(&b, "%s", "12345678"), 0);
    ck_assert_str_eq(buf_str(&b), "12345678");
    buf_truncate(&b, 3);
    ck_assert_str_eq(buf_str(&b), "123");
    char *d = buf_strdup(&b);
    ck_assert_str_eq(d, "123");
    free(d);
    buf_reset(&b);
    ck_assert_str_eq(buf_str(&b), "");
    buf_free(&b);
}
END_TEST

START_TEST(test_growth)
{
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < 100000; i++)
        ck_assert_int_eq(buf_putc(&b, 'a' + i % 26), 0);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_int_eq(b.data[99999], 'a' + 99999 % 26);
    ck_assert_int_eq(b.data[100000], '\0');
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_append_and_str);
    tcase_add_test(tc, test_binary_and_consume);
    tcase_add_loop_test(tc, test_cap, 0, sizeof(cap_cases) / sizeof(cap_cases[0]));
    tcase_add_test(tc, test_printf_cap);
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

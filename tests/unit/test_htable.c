/*
 * test_htable - the string-keyed hash table: add/find/remove, duplicate
 * keys refused, growth keeps every entry, hostile keys (empty, long,
 * colliding prefixes).
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <string.h>
#include "util/htable.h"

START_TEST(test_basic)
{
    htable_t *t = htable_create();
    int a, b;

    ck_assert_ptr_null(htable_find(t, "x"));
    ck_assert_int_eq(htable_add(t, "x", &a), 0);
    ck_assert_int_eq(htable_add(t, "x", &b), -1);     /* duplicate */
    ck_assert_ptr_eq(htable_find(t, "x"), &a);
    ck_assert_int_eq(htable_add(t, "", &b), 0);       /* empty key */
    ck_assert_ptr_eq(htable_find(t, ""), &b);
    ck_assert_uint_eq(htable_count(t), 2);
    ck_assert_int_eq(htable_remove(t, "x"), 0);
    ck_assert_int_eq(htable_remove(t, "x"), -1);
    ck_assert_ptr_null(htable_find(t, "x"));
    ck_assert_uint_eq(htable_count(t), 1);
    htable_free(t);
    htable_free(NULL);
}
END_TEST

START_TEST(test_growth)
{
    htable_t *t = htable_create();
    static int vals[20000];
    char key[32];

    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(htable_add(t, key, &vals[i]), 0);
    }
    ck_assert_uint_eq(htable_count(t), 20000);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_ptr_eq(htable_find(t, key), &vals[i]);
    }
    for (int i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(htable_remove(t, key), 0);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (i % 2)
            ck_assert_ptr_eq(htable_find(t, key), &vals[i]);
        else
            ck_assert_ptr_null(htable_find(t, key));
    }
    htable_free(t);
}
END_TEST

START_TEST(test_long_key)
{
    htable_t *t = htable_create();
    static char key[100000];
    int v;

    memset(key, 'a', sizeof(key) - 1);
    ck_assert_int_eq(htable_add(t, key, &v), 0);
    key[sizeof(key) - 2] = 'b';
    ck_assert_ptr_null(htable_find(t, key));
    key[sizeof(key) - 2] = 'a';
    ck_assert_ptr_eq(htable_find(t, key), &v);
    htable_free(t);
}
END_TEST

static Suite *htable_suite(void)
{
    Suite *s = suite_create("htable");
    TCase *tc = tcase_create("htable");

    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_long_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(htable_suite(), true);
}

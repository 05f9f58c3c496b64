/*
 * test_domain_list - relay_domains-style lists: names cover their
 * subdomains, ".name" only the subdomains, case is ignored, inline:
 * tables are asked for the domain and each parent, braces keep a table
 * one word, unbalanced braces are refused.
 */
#include <check.h>

#include "check_main.h"
#include "mail/domain_list.h"

static const struct {
    const char *list;
    const char *domain;
    int want;
} cases[] = {
    { "example.com", "example.com", 1 },
    { "example.com", "MX.Example.COM", 1 },
    { "example.com", "badexample.com", 0 },
    { "example.com", "com", 0 },
    { ".example.com", "example.com", 0 },
    { ".example.com", "a.b.example.com", 1 },
    { "a.example, b.example c.example", "c.example", 1 },
    { "", "example.com", 0 },
    { "inline:{t.example=yes}", "t.example", 1 },
    { "inline:{t.example=yes}", "sub.t.example", 1 },
    { "inline:{t.example=yes, u.example=yes}", "u.example", 1 },
    { "inline:{t.example=yes}", "other.example", 0 },
    { "x.example, inline:{t.example=yes}", "x.example", 1 },
    { "inline:{t.example=yes}", "[192.0.2.1]", 0 },
};

START_TEST(test_match)
{
    domain_list_t dl;

    ck_assert_int_eq(domain_list_open(&dl, "relay_domains", cases[_i].list), 0);
    ck_assert_msg(domain_list_match(&dl, cases[_i].domain) == cases[_i].want,
                  "%s in \"%s\"", cases[_i].domain, cases[_i].list);
    domain_list_close(&dl);
    domain_list_close(&dl);     /* twice is harmless */
}
END_TEST

START_TEST(test_bad_list)
{
    domain_list_t dl;

    ck_assert_int_eq(domain_list_open(&dl, "relay_domains",
                                      "inline:{a=b"), -1);
    ck_assert_uint_eq(dl.nnames, 0);
    ck_assert_ptr_null(dl.maps);
    ck_assert_int_eq(domain_list_open(&dl, "relay_domains", NULL), 0);
    ck_assert_int_eq(domain_list_match(&dl, "example.com"), 0);
    domain_list_close(&dl);
}
END_TEST

static Suite *domain_list_suite(void)
{
    Suite *s = suite_create("domain_list");
    TCase *tc = tcase_create("domain_list");

    tcase_add_loop_test(tc, test_match, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_bad_list);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(domain_list_suite(), true);
}

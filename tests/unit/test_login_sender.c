/*
 * test_login_sender - local_login_sender_maps decisions: the pattern
 * forms (*, <>, @domain, address), case, address extensions, the null
 * sender, hostile patterns and senders; the uid key; the table lookup.
 */
#include <check.h>

#include "check_main.h"
#include "mail/config.h"
#include "mail/login_sender.h"

static const struct {
    const char *patterns;
    const char *sender;
    const char *null_key;
    const char *delims;
    bool want;
} cases[] = {
    { "*", "anyone@example.com", "<>", "+", true },
    { "*", "", "<>", "+", true },
    { "alice alice@example.com", "alice", "<>", "+", true },
    { "alice, alice@example.com", "alice@example.com", "<>", "+", true },
    { "alice,alice@example.com", "ALICE@Example.COM", "<>", "+", true },
    { "alice alice@example.com", "bob@example.com", "<>", "+", false },
    { "alice alice@example.com", "alice@example.org", "<>", "+", false },
    { "alice alice@example.com", "", "<>", "+", false },
    { "alice@example.com", "alice+list@example.com", "<>", "+", true },
    { "alice@example.com", "alice-list@example.com", "<>", "+-", true },
    { "alice@example.com", "alice-list@example.com", "<>", "+", false },
    { "alice@example.com", "alice+list@example.com", "<>", "", false },
    { "alice@example.com", "alice+list@example.com", "<>", NULL, false },
    { "+x@example.com", "+x@example.com", "<>", "+", true },  /* no extension */
    { "<>", "", "<>", "+", true },
    { "<>", "<>", "<>", "+", false },    /* "<>" is no address */
    { "alice", "", "<>", "+", false },
    { "<null>", "", "<null>", "+", true },
    { "<>", "", "<null>", "+", false },
    { "@example.com", "bob@example.com", "<>", "+", true },
    { "@example.com", "bob@EXAMPLE.com", "<>", "+", true },
    { "@example.com", "bob@sub.example.com", "<>", "+", false },
    { "@example.com", "bob@badexample.com", "<>", "+", false },
    { "@example.com", "example.com", "<>", "+", false },
    { "@example.com", "", "<>", "+", false },
    { "@", "bob@", "<>", "+", false },
    { "", "alice", "<>", "+", false },
    { NULL, "alice", "<>", "+", false },
    { "alice*", "alice2", "<>", "+", false },    /* no wildcards but "*" */
    { "*@example.com", "bob@example.com", "<>", "+", false },
    { "a@b@example.com", "x@example.com", "<>", "+", false },
    { "bob@example.com", "bob@example.com@evil.example", "<>", "+", false },
    { "bob", "bob@", "<>", "+", false },
};

START_TEST(test_match)
{
    ck_assert_msg(login_sender_match(cases[_i].patterns, cases[_i].sender,
                                     cases[_i].null_key, cases[_i].delims)
                  == cases[_i].want, "\"%s\" against \"%s\"",
                  cases[_i].sender, cases[_i].patterns ? cases[_i].patterns
                                                       : "(null)");
}
END_TEST

START_TEST(test_key)
{
    buf_t k = BUF_INIT;

    login_sender_key(1000, "alice", &k);
    ck_assert_str_eq(buf_str(&k), "alice");
    login_sender_key(4242, NULL, &k);
    ck_assert_str_eq(buf_str(&k), "uid:4242");
    login_sender_key(0, "", &k);
    ck_assert_str_eq(buf_str(&k), "uid:0");
    buf_free(&k);
}
END_TEST

START_TEST(test_check)
{
    const char *why = NULL;
    maps_t *m = maps_open("inline:{root = *, alice = alice alice@example.com, "
                          "uid:4242 = <>}", &why);
    static char null_key[] = "<>", delim[] = "+";

    ck_assert_ptr_nonnull(m);
    var_empty_address_local_login_sender_maps_lookup_key = null_key;
    var_recipient_delimiter = delim;
    ck_assert_int_eq(login_sender_check(m, "root", "x@evil.example"), 1);
    ck_assert_int_eq(login_sender_check(m, "alice", "alice+a@example.com"), 1);
    ck_assert_int_eq(login_sender_check(m, "alice", "root@example.com"), 0);
    ck_assert_int_eq(login_sender_check(m, "alice", ""), 0);
    ck_assert_int_eq(login_sender_check(m, "uid:4242", ""), 1);
    ck_assert_int_eq(login_sender_check(m, "uid:4242", "a@example.com"), 0);
    ck_assert_int_eq(login_sender_check(m, "mallory", "mallory"), 0);
    maps_close(m);
    m = maps_open("static:*", &why);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(login_sender_check(m, "mallory", "root@example.com"), 1);
    ck_assert_int_eq(login_sender_check(m, "uid:77", ""), 1);
    maps_close(m);
    var_empty_address_local_login_sender_maps_lookup_key = NULL;
    var_recipient_delimiter = NULL;
}
END_TEST

static Suite *login_sender_suite(void)
{
    Suite *s = suite_create("login_sender");
    TCase *tc = tcase_create("login_sender");

    tcase_add_loop_test(tc, test_match, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_key);
    tcase_add_test(tc, test_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(login_sender_suite(), true);
}

/*
 * test_smtp_nexthop - unit tests for lib/mail/smtp_nexthop.c: ports as
 * numbers and known_tcp_ports names (aliases, case, odd tables), and a
 * table of next hops, good and malformed.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>

#include "mail/smtp_nexthop.h"

#define TABLE "lmtp=24, smtp=25, smtps=submissions=465, submission=587"

START_TEST(test_ports)
{
    ck_assert_int_eq(smtp_port_lookup(TABLE, "smtp"), 25);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "SMTP"), 25);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "smtps"), 465);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "submissions"), 465);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "submission"), 587);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "lmtp"), 24);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "2525"), 2525);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "65535"), 65535);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "0"), -1);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "65536"), -1);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "-1"), -1);
    ck_assert_int_eq(smtp_port_lookup(TABLE, "smt"), -1);
    ck_assert_int_eq(smtp_port_lookup(TABLE, ""), -1);
    ck_assert_int_eq(smtp_port_lookup("smtp=2525", "smtp"), 2525);
    ck_assert_int_eq(smtp_port_lookup("=25, smtp", "smtp"), -1);
    ck_assert_int_eq(smtp_port_lookup("smtp=, x=1", "smtp"), -1);
    ck_assert_int_eq(smtp_port_lookup("smtp=99999999999", "smtp"), -1);
    ck_assert_int_eq(smtp_port_lookup("smtp=25x", "smtp"), -1);
    ck_assert_int_eq(smtp_port_lookup("", "smtp"), -1);
    ck_assert_int_eq(smtp_port_lookup(",,, ,smtp=26,,", "smtp"), 26);
}
END_TEST

static const struct {
    const char *in;
    int rc;
    const char *name;
    bool bracket;
    int port;
} hops[] = {
    { "example.com", 0, "example.com", false, 0 },
    { "example.com.", 0, "example.com", false, 0 },
    { "example.com:2525", 0, "example.com", false, 2525 },
    { "example.com:submission", 0, "example.com", false, 587 },
    { "[mx.example.com]", 0, "mx.example.com", true, 0 },
    { "[mx.example.com]:26", 0, "mx.example.com", true, 26 },
    { "[192.0.2.1]", 0, "192.0.2.1", true, 0 },
    { "[192.0.2.1]:smtps", 0, "192.0.2.1", true, 465 },
    { "[::1]:25", 0, "::1", true, 25 },
    { "[ipv6:2001:db8::1]", 0, "ipv6:2001:db8::1", true, 0 },
    { "", -1, NULL, false, 0 },
    { "[", -1, NULL, false, 0 },
    { "[]", -1, NULL, false, 0 },
    { "[]:25", -1, NULL, false, 0 },
    { "[a]b", -1, NULL, false, 0 },
    { "[a]:", -1, NULL, false, 0 },
    { "[a]:0", -1, NULL, false, 0 },
    { "example.com:", -1, NULL, false, 0 },
    { ":25", -1, NULL, false, 0 },
    { "example.com:nosuch", -1, NULL, false, 0 },
    { ".", -1, NULL, false, 0 },
    { ".:25", -1, NULL, false, 0 },
};

START_TEST(test_hops)
{
    char name[64];
    bool bracket = false;
    int port = -5;
    int rc = smtp_nexthop_parse(TABLE, hops[_i].in, name, sizeof(name),
                                &bracket, &port);

    ck_assert_int_eq(rc, hops[_i].rc);
    if (rc == 0) {
        ck_assert_str_eq(name, hops[_i].name);
        ck_assert(bracket == hops[_i].bracket);
        ck_assert_int_eq(port, hops[_i].port);
    }
}
END_TEST

START_TEST(test_hop_too_long)
{
    char name[8];
    bool bracket;
    int port;

    ck_assert_int_eq(smtp_nexthop_parse(TABLE, "1234567", name, sizeof(name),
                                        &bracket, &port), 0);
    ck_assert_int_eq(smtp_nexthop_parse(TABLE, "12345678", name,
                                        sizeof(name), &bracket, &port), -1);
    ck_assert_int_eq(smtp_nexthop_parse(TABLE, "[12345678]", name,
                                        sizeof(name), &bracket, &port), -1);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *nexthop_suite(void)
{
    Suite *s = suite_create("smtp_nexthop");
    TCase *tc = tcase_create("nexthop");

    tcase_add_test(tc, test_ports);
    tcase_add_loop_test(tc, test_hops, 0, N(hops));
    tcase_add_test(tc, test_hop_too_long);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(nexthop_suite(), true);
}

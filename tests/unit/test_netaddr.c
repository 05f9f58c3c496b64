/*
 * test_netaddr - unit tests for lib/netaddr.c: address text forms, ports,
 * mynetworks-style list parsing (good and malformed entries) and matching,
 * including IPv4-mapped IPv6 clients and prefix edges (/0, /32, /128).
 */
#include <arpa/inet.h>
#include <check.h>

#include "check_main.h"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "util/netaddr.h"
#include "util/util.h"

/* make_sa - sockaddr from text: IPv6 if it contains ':' */
static const struct sockaddr *make_sa(const char *text, int port,
                                      struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* ---- netaddr_str / netaddr_port ----------------------------------------- */

static const struct { const char *in, *out; } str_cases[] = {
    { "127.0.0.1", "127.0.0.1" },
    { "0.0.0.0", "0.0.0.0" },
    { "255.255.255.255", "255.255.255.255" },
    { "::1", "::1" },
    { "::", "::" },
    { "2001:db8::1", "2001:db8::1" },
    { "2001:DB8:0:0:0:0:0:1", "2001:db8::1" },
    { "::ffff:192.0.2.1", "192.0.2.1" },
    { "::ffff:0.0.0.0", "0.0.0.0" },
    { "::192.0.2.1", "::192.0.2.1" },            /* compatible, not mapped */
    { "fe80::1", "fe80::1" },
};

START_TEST(test_str)
{
    struct sockaddr_storage ss;
    char buf[NETADDR_STRLEN];
    const struct sockaddr *sa = make_sa(str_cases[_i].in, 25, &ss);

    ck_assert_ptr_eq(netaddr_str(sa, buf, sizeof(buf)), buf);
    ck_assert_str_eq(buf, str_cases[_i].out);
    ck_assert_int_eq(netaddr_port(sa), 25);
}
END_TEST

START_TEST(test_str_odd)
{
    struct sockaddr_storage ss;
    struct sockaddr_un un;
    char buf[NETADDR_STRLEN], tiny[4];

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    netaddr_str((const struct sockaddr *)&un, buf, sizeof(buf));
    ck_assert_str_eq(buf, "unknown");
    ck_assert_int_eq(netaddr_port((const struct sockaddr *)&un), 0);
    ck_assert_int_eq(netaddr_port(NULL), 0);
    netaddr_str(NULL, buf, sizeof(buf));
    ck_assert_str_eq(buf, "unknown");

    /* too small a buffer: truncated, still terminated */
    netaddr_str(make_sa("2001:db8::1", 65535, &ss), tiny, sizeof(tiny));
    ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
    ck_assert_int_eq(netaddr_port((const struct sockaddr *)&ss), 65535);
    netaddr_str(make_sa("192.0.2.1", 0, &ss), tiny, 0);   /* no write */
    ck_assert_int_eq(netaddr_port((const struct sockaddr *)&ss), 0);
}
END_TEST

/* ---- netlist_parse ------------------------------------------------------ */

static const struct { const char *in; bool ok; } parse_cases[] = {
    { "", true },
    { " , \t\n", true },
    { "127.0.0.0/8", true },
    { "127.0.0.0/8 [::1]/128 192.0.2.1", true },
    { "10.0.0.0/8,172.16.0.0/12, 192.168.0.0/16", true },
    { "0.0.0.0/0", true },
    { "1.2.3.4/32", true },
    { "[::]/0", true },
    { "[::1]", true },
    { "[::1]/128", true },
    { "2001:db8::/32", true },
    { "::1", true },
    { "[::ffff:192.0.2.0]/120", true },
    { "192.0.2.77/24", true },          /* host bits: accepted and masked */
    { "[192.0.2.1]", true },
    { "1.2.3.4/08", true },
    { "300.1.1.1", false },
    { "1.2.3.4/33", false },
    { "[::1", false },
    { "::1]", false },
    { "/8", false },
    { "1.2.3.4/", false },
    { "1.2.3.4/-1", false },
    { "1.2.3.4/+8", false },
    { "1.2.3.4/ 8", false },
    { "1.2.3.4/8/8", false },
    { "1.2.3.4/0008", false },
    { "1.2.3.4/99999999999999999999", false },
    { "[::1]/129", false },
    { "::1/129", false },
    { "[::1/128]", false },
    { "[::1]x", false },
    { "[]", false },
    { "[", false },
    { "1.2.3", false },
    { "1.2.3.4.5", false },
    { "01.2.3.4", false },
    { "1.2.3.4x", false },
    { "foo", false },
    { "hash:/etc/postfix/network_table", false },
    { "!192.0.2.1", false },
    { "127.0.0.0/8 300.1.1.1", false },
    { "1.2.3.4\x01", false },
    { "1.2.3.4;5.6.7.8", false },
    { "2001:db8::g/32", false },
};

START_TEST(test_parse)
{
    const char *err = NULL;
    netlist_t *l = netlist_parse(parse_cases[_i].in, &err);

    if (parse_cases[_i].ok) {
        ck_assert_msg(l != NULL, "case %d \"%s\": %s", _i, parse_cases[_i].in, err);
    } else {
        ck_assert_msg(l == NULL, "case %d \"%s\" accepted", _i, parse_cases[_i].in);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_nonnull(strstr(err, "malformed"));
    }
    netlist_free(l);
}
END_TEST

START_TEST(test_parse_error_text)
{
    const char *err = NULL;
    char *huge = xmalloc(5001);

    ck_assert_ptr_null(netlist_parse("10.0.0.0/8, 300.1.1.1 ::1", &err));
    ck_assert_str_eq(err, "malformed network entry: 300.1.1.1");
    ck_assert_ptr_null(netlist_parse("1.2.3.4/8\x01\x7f", &err));
    ck_assert_str_eq(err, "malformed network entry: 1.2.3.4/8??");

    /* an overlong entry is rejected and the message stays bounded */
    memset(huge, '1', 5000);
    huge[5000] = '\0';
    ck_assert_ptr_null(netlist_parse(huge, &err));
    ck_assert_uint_lt(strlen(err), 200);
    free(huge);

    /* NULL list is an empty list */
    netlist_t *l = netlist_parse(NULL, &err);
    ck_assert_ptr_nonnull(l);
    netlist_free(l);
    netlist_free(NULL);
}
END_TEST

START_TEST(test_parse_many)
{
    char *list = xmalloc(1000 * 20);
    size_t off = 0;
    const char *err;
    struct sockaddr_storage ss;

    for (int i = 0; i < 1000; i++)
        off += (size_t)snprintf(list + off, 20, "10.%d.%d.0/24 ", i / 256, i % 256);
    netlist_t *l = netlist_parse(list, &err);
    ck_assert_ptr_nonnull(l);
    ck_assert(netlist_match(l, make_sa("10.3.231.9", 0, &ss)));   /* i = 999 */
    ck_assert(!netlist_match(l, make_sa("10.3.232.9", 0, &ss)));
    netlist_free(l);
    free(list);
}
END_TEST

/* ---- netlist_match ------------------------------------------------------ */

static const struct { const char *list, *client; bool match; } match_cases[] = {
    { "127.0.0.0/8", "127.0.0.1", true },
    { "127.0.0.0/8", "127.255.255.255", true },
    { "127.0.0.0/8", "128.0.0.1", false },
    { "127.0.0.0/8", "::ffff:127.0.0.1", true },
    { "127.0.0.0/8", "::1", false },
    { "127.0.0.0/8", "::127.0.0.1", false },
    { "0.0.0.0/0", "203.0.113.9", true },
    { "0.0.0.0/0", "::ffff:1.2.3.4", true },
    { "0.0.0.0/0", "::1", false },
    { "[::]/0", "2001:db8::1", true },
    { "[::]/0", "1.2.3.4", false },
    { "192.0.2.1", "192.0.2.1", true },
    { "192.0.2.1", "192.0.2.2", false },
    { "192.0.2.1/32", "192.0.2.1", true },
    { "192.0.2.1/32", "192.0.2.0", false },
    { "192.0.2.1/32", "::ffff:192.0.2.1", true },
    { "[::1]/128", "::1", true },
    { "[::1]/128", "::2", false },
    { "[::1]", "::1", true },
    { "::1", "::1", true },
    { "[::1]", "127.0.0.1", false },
    { "2001:db8::/32", "2001:db8:ffff::1", true },
    { "2001:db8::/32", "2001:db9::1", false },
    { "[2001:db8::]/33", "2001:db8:7fff::1", true },
    { "[2001:db8::]/33", "2001:db8:8000::1", false },
    { "192.0.2.77/24", "192.0.2.1", true },
    { "192.0.2.77/24", "192.0.3.1", false },
    { "10.0.0.0/9", "10.127.255.255", true },
    { "10.0.0.0/9", "10.128.0.0", false },
    { "172.16.0.0/12", "172.31.1.1", true },
    { "172.16.0.0/12", "172.32.1.1", false },
    { "[::ffff:192.0.2.0]/120", "192.0.2.5", true },
    { "[::ffff:192.0.2.0]/120", "::ffff:192.0.2.5", true },
    { "[::ffff:192.0.2.0]/120", "192.0.3.5", false },
    { "[::ffff:0:0]/96", "198.51.100.1", true },
    { "::ffff:192.0.2.1", "192.0.2.1", true },
    { "[192.0.2.1]", "192.0.2.1", true },
    { "", "127.0.0.1", false },
    { "", "::1", false },
    { "10.0.0.0/8 [fd00::]/8 192.168.1.1", "192.168.1.1", true },
    { "10.0.0.0/8 [fd00::]/8 192.168.1.1", "fdff::1", true },
    { "10.0.0.0/8 [fd00::]/8 192.168.1.1", "fe00::1", false },
    { "10.0.0.0/8 [fd00::]/8 192.168.1.1", "11.0.0.1", false },
    { "[fe80::1]/127", "fe80::", true },
    { "[fe80::1]/127", "fe80::2", false },
    { "1.2.3.4/31", "1.2.3.5", true },
    { "1.2.3.4/31", "1.2.3.6", false },
};

START_TEST(test_match)
{
    struct sockaddr_storage ss;
    const char *err = NULL;
    netlist_t *l = netlist_parse(match_cases[_i].list, &err);

    ck_assert_msg(l != NULL, "case %d: %s", _i, err);
    ck_assert_msg(netlist_match(l, make_sa(match_cases[_i].client, 0, &ss)) ==
                      match_cases[_i].match,
                  "case %d: \"%s\" vs %s", _i, match_cases[_i].list,
                  match_cases[_i].client);
    netlist_free(l);
}
END_TEST

START_TEST(test_match_odd)
{
    struct sockaddr_un un;
    const char *err;
    netlist_t *l = netlist_parse("0.0.0.0/0 [::]/0", &err);

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    ck_assert(!netlist_match(l, (const struct sockaddr *)&un));
    ck_assert(!netlist_match(l, NULL));
    ck_assert(!netlist_match(NULL, NULL));
    netlist_free(l);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *netaddr_suite(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("str");

    tcase_add_loop_test(tc, test_str, 0, N(str_cases));
    tcase_add_test(tc, test_str_odd);
    suite_add_tcase(s, tc);

    tc = tcase_create("netlist");
    tcase_add_loop_test(tc, test_parse, 0, N(parse_cases));
    tcase_add_test(tc, test_parse_error_text);
    tcase_add_test(tc, test_parse_many);
    tcase_add_loop_test(tc, test_match, 0, N(match_cases));
    tcase_add_test(tc, test_match_odd);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(netaddr_suite(), true);
}

/*
 * test_route - lib/mail/route.c: transport and nexthop per recipient
 * (local/relay/default classes, relayhost, sender_dependent_relayhost_maps,
 * transport_maps in transport(5) order, extensions, lookup errors), table
 * by table with fake tables; then the main.conf tables with inline: maps.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>
#include <strings.h>
#include "mail/config.h"
#include "mail/route.h"
#include "util/buf.h"
#include "util/util.h"

/* fake tables: "key=value" pairs; a key mapped to "!ERR" is a table error */
struct fake {
    const char *const *transport;
    const char *const *sender;
    const char *const *local;
    const char *const *relay;
    char asked[1024];       /* every transport key asked, space separated */
};

static int fake_find(const char *const *t, const char *key, buf_t *value)
{
    for (size_t i = 0; t != NULL && t[i] != NULL; i += 2) {
        if (strcmp(t[i], key) != 0)
            continue;
        if (strcmp(t[i + 1], "!ERR") == 0)
            return -1;
        buf_reset(value);
        buf_puts(value, t[i + 1]);
        return 1;
    }
    return 0;
}

static int fake_transport(void *ctx, const char *key, buf_t *value)
{
    struct fake *f = ctx;

    strncat(f->asked, key, sizeof(f->asked) - strlen(f->asked) - 2);
    strcat(f->asked, " ");
    return fake_find(f->transport, key, value);
}

static int fake_sender(void *ctx, const char *key, buf_t *value)
{
    return fake_find(((struct fake *)ctx)->sender, key, value);
}

static int fake_domain(const char *const *t, const char *domain)
{
    for (size_t i = 0; t != NULL && t[i] != NULL; i++) {
        if (strcmp(t[i], "!ERR") == 0 && strcmp(t[i + 1], domain) == 0)
            return -1;
        if (strcasecmp(t[i], domain) == 0)
            return 1;
    }
    return 0;
}

static int fake_local(void *ctx, const char *domain)
{
    return fake_domain(((struct fake *)ctx)->local, domain);
}

static int fake_relay(void *ctx, const char *domain)
{
    return fake_domain(((struct fake *)ctx)->relay, domain);
}

static const char *const local_domains[] = { "mail.example.org", "localhost", NULL };
static const char *const relay_domains[] = { "relayed.example", "!ERR", "broken.example", NULL };

static const struct route_case {
    const char *what;
    const char *relayhost, *default_transport, *relay_transport;
    const char *const *transport;       /* transport_maps */
    const char *const *sender_maps;
    const char *sender, *rcpt;
    const char *want_transport, *want_nexthop;  /* NULL = error */
    const char *want_error;
} route_cases[] = {
    { "local domain", "", NULL, NULL, NULL, NULL, "s@x.example",
      "alice@Mail.Example.ORG", "local", "mail.example.org", NULL },
    { "bare local part", "", NULL, NULL, NULL, NULL, "", "postmaster",
      "local", "mail.example.org", NULL },
    { "remote: the domain", "", NULL, NULL, NULL, NULL, "s@x.example",
      "bob@remote.example", "smtp", "remote.example", NULL },
    { "remote via relayhost", "[smart.example]:2525", NULL, NULL, NULL, NULL,
      "s@x.example", "bob@remote.example", "smtp", "[smart.example]:2525",
      NULL },
    { "relayhost never for local", "smart.example", NULL, NULL, NULL, NULL,
      "s@x.example", "alice@localhost", "local", "mail.example.org", NULL },
    { "relay_domains -> relay", "", NULL, NULL, NULL, NULL, "s@x.example",
      "c@relayed.example", "relay", "relayed.example", NULL },
    { "relay_domains and relayhost", "smart.example:25", NULL, NULL, NULL,
      NULL, "s@x.example", "c@relayed.example", "relay", "smart.example:25",
      NULL },
    { "relay_domains lookup error defers", "", NULL, NULL, NULL, NULL,
      "s@x.example", "c@broken.example", NULL, NULL,
      "relay_domains lookup failure" },
    { "default_transport's own nexthop wins", "smart.example",
      "smtp:[fixed.example]", NULL, NULL,
      (const char *const[]){ "s@x.example", "[bysender.example]", NULL },
      "s@x.example", "bob@remote.example", "smtp", "[fixed.example]", NULL },
    { "relay_transport with nexthop", "", NULL, "relay:[r.example]:26", NULL,
      NULL, "s@x.example", "c@relayed.example", "relay", "[r.example]:26",
      NULL },
    { "sender_dependent by address", "smart.example", NULL, NULL, NULL,
      (const char *const[]){ "s@x.example", "[bysender.example]", NULL },
      "S@X.example", "bob@remote.example", "smtp", "[bysender.example]",
      NULL },
    { "sender_dependent by address minus extension", "smart.example", NULL,
      NULL, NULL,
      (const char *const[]){ "s@x.example", "[bysender.example]", NULL },
      "s+list@x.example", "bob@remote.example", "smtp", "[bysender.example]",
      NULL },
    { "sender_dependent by @domain", "smart.example", NULL, NULL, NULL,
      (const char *const[]){ "@x.example", "[bydomain.example]", NULL },
      "other@x.example", "bob@remote.example", "smtp", "[bydomain.example]",
      NULL },
    { "sender_dependent DUNNO -> relayhost", "smart.example", NULL, NULL, NULL,
      (const char *const[]){ "s@x.example", "DUNNO", "@x.example", "[no]", NULL },
      "s@x.example", "bob@remote.example", "smtp", "smart.example", NULL },
    { "sender_dependent for the null sender", "smart.example", NULL, NULL,
      NULL, (const char *const[]){ "<>", "[bounces.example]", NULL },
      "", "bob@remote.example", "smtp", "[bounces.example]", NULL },
    { "sender_dependent not for local", "", NULL, NULL, NULL,
      (const char *const[]){ "s@x.example", "[bysender.example]", NULL },
      "s@x.example", "alice@localhost", "local", "mail.example.org", NULL },
    { "sender_dependent error defers", "", NULL, NULL, NULL,
      (const char *const[]){ "s@x.example", "!ERR", NULL },
      "s@x.example", "bob@remote.example", NULL, NULL,
      "sender_dependent_relayhost_maps lookup failure" },
    { "transport_maps: full address first", "", NULL, NULL,
      (const char *const[]){ "bob@remote.example", "special:[one.example]",
                             "remote.example", "smtp:[two.example]", NULL },
      NULL, "s@x.example", "Bob@Remote.Example", "special", "[one.example]",
      NULL },
    { "transport_maps: address minus extension", "", NULL, NULL,
      (const char *const[]){ "bob@remote.example", "special:[one.example]", NULL },
      NULL, "s@x.example", "bob+tag@remote.example", "special",
      "[one.example]", NULL },
    { "transport_maps: domain", "", NULL, NULL,
      (const char *const[]){ "remote.example", "smtp:[two.example]", NULL },
      NULL, "s@x.example", "bob@remote.example", "smtp", "[two.example]",
      NULL },
    { "transport_maps: domain does not cover subdomains", "", NULL, NULL,
      (const char *const[]){ "remote.example", "smtp:[two.example]", NULL },
      NULL, "s@x.example", "bob@sub.remote.example", "smtp",
      "sub.remote.example", NULL },
    { "transport_maps: .parent covers subdomains", "", NULL, NULL,
      (const char *const[]){ ".remote.example", "smtp:[par.example]", NULL },
      NULL, "s@x.example", "bob@a.sub.remote.example", "smtp",
      "[par.example]", NULL },
    { "transport_maps: .parent not the domain itself", "", NULL, NULL,
      (const char *const[]){ ".remote.example", "smtp:[par.example]", NULL },
      NULL, "s@x.example", "bob@remote.example", "smtp", "remote.example",
      NULL },
    { "transport_maps: * last", "", NULL, NULL,
      (const char *const[]){ "*", "catch:[all.example]",
                             "other.example", "x:y", NULL },
      NULL, "s@x.example", "bob@remote.example", "catch", "[all.example]",
      NULL },
    { "transport_maps: empty nexthop keeps relayhost", "[smart.example]",
      NULL, NULL, (const char *const[]){ "remote.example", "slow:", NULL },
      NULL, "s@x.example", "bob@remote.example", "slow", "[smart.example]",
      NULL },
    { "transport_maps: empty nexthop keeps the domain", "", NULL, NULL,
      (const char *const[]){ "remote.example", "slow", NULL },
      NULL, "s@x.example", "bob@remote.example", "slow", "remote.example",
      NULL },
    { "transport_maps: empty transport keeps the class", "", NULL, NULL,
      (const char *const[]){ "remote.example", ":[hop.example]:2525", NULL },
      NULL, "s@x.example", "bob@remote.example", "smtp",
      "[hop.example]:2525", NULL },
    { "transport_maps: overrides local", "", NULL, NULL,
      (const char *const[]){ "localhost", "smtp:[inner.example]", NULL },
      NULL, "s@x.example", "alice@localhost", "smtp", "[inner.example]",
      NULL },
    { "transport_maps: ':' alone changes nothing", "smart.example", NULL,
      NULL, (const char *const[]){ "remote.example", ":", NULL },
      NULL, "s@x.example", "bob@remote.example", "smtp", "smart.example",
      NULL },
    { "transport_maps: IPv6 nexthop", "", NULL, NULL,
      (const char *const[]){ "remote.example", "smtp:[ipv6:2001:db8::1]:25", NULL },
      NULL, "s@x.example", "bob@remote.example", "smtp",
      "[ipv6:2001:db8::1]:25", NULL },
    { "transport_maps error defers", "", NULL, NULL,
      (const char *const[]){ "remote.example", "!ERR", NULL },
      NULL, "s@x.example", "bob@remote.example", NULL, NULL,
      "transport_maps lookup failure" },
    { "transport_maps: bad transport name", "", NULL, NULL,
      (const char *const[]){ "remote.example", "../etc:x", NULL },
      NULL, "s@x.example", "bob@remote.example", NULL, NULL,
      "invalid transport name in transport_maps" },
    { "bad default_transport", "", "a/b", NULL, NULL, NULL, "s@x.example",
      "bob@remote.example", NULL, NULL,
      "invalid transport name in default_transport" },
};

START_TEST(test_route_table)
{
    const struct route_case *c = &route_cases[_i];
    struct fake f = { c->transport, c->sender_maps, local_domains,
                      relay_domains, "" };
    struct route_params p = {
        .local_transport = "local:mail.example.org",
        .relay_transport = c->relay_transport ? c->relay_transport : "relay",
        .default_transport = c->default_transport ? c->default_transport
                                                  : "smtp",
        .relayhost = c->relayhost,
        .recipient_delimiter = "+",
        .null_sender_key = "<>",
    };
    struct route_lookups l = { &f, fake_transport, fake_sender, fake_local,
                               fake_relay };
    const char *error = NULL;
    route_t r;
    int rc = route_resolve(&p, &l, c->sender, c->rcpt, &r, &error);

    if (c->want_transport == NULL) {
        ck_assert_msg(rc == -1, "%s: should fail", c->what);
        ck_assert_str_eq(error, c->want_error);
        return;
    }
    ck_assert_msg(rc == 0, "%s: failed: %s", c->what, error ? error : "?");
    ck_assert_msg(strcmp(r.transport, c->want_transport) == 0,
                  "%s: transport %s", c->what, r.transport);
    ck_assert_msg(strcmp(r.nexthop, c->want_nexthop) == 0,
                  "%s: nexthop %s", c->what, r.nexthop);
}
END_TEST

/* the keys transport_maps is asked, in order */
START_TEST(test_route_transport_key_order)
{
    struct fake f = { (const char *const[]){ NULL }, NULL, NULL, NULL, "" };
    struct route_params p = { "local", "relay", "smtp", "", "+", "<>" };
    struct route_lookups l = { &f, fake_transport, NULL, fake_local, NULL };
    const char *error;
    route_t r;

    ck_assert_int_eq(route_resolve(&p, &l, "", "Bob+Ext@A.B.Example", &r,
                                   &error), 0);
    ck_assert_str_eq(f.asked, "bob+ext@a.b.example bob@a.b.example "
                              "a.b.example .b.example .example * ");
    f.asked[0] = '\0';
    p.recipient_delimiter = "";
    ck_assert_int_eq(route_resolve(&p, &l, "", "bob+ext@example", &r,
                                   &error), 0);
    ck_assert_str_eq(f.asked, "bob+ext@example example * ");
}
END_TEST

static const struct {
    const char *in;
    int rc;
    const char *host;
    unsigned port;
    bool mx;
} nexthop_cases[] = {
    { "example.com", 0, "example.com", 0, true },
    { "example.com:2525", 0, "example.com", 2525, true },
    { "[mx.example.com]", 0, "mx.example.com", 0, false },
    { "[192.0.2.1]:25", 0, "192.0.2.1", 25, false },
    { "[ipv6:2001:db8::1]:587", 0, "ipv6:2001:db8::1", 587, false },
    { "[2001:db8::1]", 0, "2001:db8::1", 0, false },
    { "2001:db8::1", -1, NULL, 0, false },
    { "[example.com", -1, NULL, 0, false },
    { "[example.com]x", -1, NULL, 0, false },
    { "example.com:0", -1, NULL, 0, false },
    { "example.com:65536", -1, NULL, 0, false },
    { "example.com:smtp", -1, NULL, 0, false },
    { "", -1, NULL, 0, false },
    { "[]", -1, NULL, 0, false },
    { "a b", -1, NULL, 0, false },
    { ":25", -1, NULL, 0, false },
};

START_TEST(test_nexthop_parse)
{
    char host[64];
    unsigned port = 99;
    bool mx = false;
    int rc = route_nexthop_parse(nexthop_cases[_i].in, host, sizeof(host),
                                 &port, &mx);

    ck_assert_msg(rc == nexthop_cases[_i].rc, "%s", nexthop_cases[_i].in);
    if (rc == 0) {
        ck_assert_str_eq(host, nexthop_cases[_i].host);
        ck_assert_uint_eq(port, nexthop_cases[_i].port);
        ck_assert(mx == nexthop_cases[_i].mx);
    }
}
END_TEST

START_TEST(test_split_and_names)
{
    char t[8], nh[16];

    ck_assert(route_split("smtp:[a]:25", t, sizeof(t), nh, sizeof(nh)));
    ck_assert_str_eq(t, "smtp");
    ck_assert_str_eq(nh, "[a]:25");
    ck_assert(route_split(" relay : x ", t, sizeof(t), nh, sizeof(nh)));
    ck_assert_str_eq(t, "relay");
    ck_assert_str_eq(nh, "x");
    ck_assert(route_split("local", t, sizeof(t), nh, sizeof(nh)));
    ck_assert_str_eq(nh, "");
    ck_assert(!route_split("muchtoolongname:x", t, sizeof(t), nh, sizeof(nh)));
    ck_assert(route_transport_valid("smtp-out_2.x"));
    ck_assert(!route_transport_valid(""));
    ck_assert(!route_transport_valid(".hidden"));
    ck_assert(!route_transport_valid("a/b"));
    ck_assert(!route_transport_valid("a b"));
}
END_TEST

START_TEST(test_strip_extension)
{
    char out[64] = "unchanged";

    ck_assert(route_strip_extension("bob+x+y@ex", "+", out, sizeof(out)));
    ck_assert_str_eq(out, "bob@ex");
    ck_assert(route_strip_extension("bob-x@ex", "+-", out, sizeof(out)));
    ck_assert_str_eq(out, "bob@ex");
    ck_assert(route_strip_extension("bob+x", "+", out, sizeof(out)));
    ck_assert_str_eq(out, "bob");
    str_copy(out, "unchanged", sizeof(out));
    ck_assert(!route_strip_extension("bob@ex+y", "+", out, sizeof(out)));
    ck_assert(!route_strip_extension("+x@ex", "+", out, sizeof(out)));
    ck_assert(!route_strip_extension("bob+x@ex", "", out, sizeof(out)));
    ck_assert_str_eq(out, "unchanged");
}
END_TEST

/* the main.conf tables, with inline: maps */
START_TEST(test_config_tables)
{
    static const char conf[] =
        "myhostname = mail.example.org\n"
        "mydestination = $myhostname, localhost\n"
        "relay_domains = relayed.example, .sub.example, "
        "inline:{tabled.example=ok}\n"
        "relayhost = [smart.example]\n"
        "transport_maps = inline:{special.example=slow:[slowhop]}\n"
        "sender_dependent_relayhost_maps = inline:{@vip.example=[vip]}\n";
    const char *error;
    route_t r;

    ck_assert_int_eq(config_load_text(conf, sizeof(conf) - 1, "main.conf",
                                      NULL, NULL), 0);
    ck_assert_int_eq(route_tables_open(), 0);
    ck_assert_int_eq(route_config_resolve("s@x", "u@localhost", &r, &error), 0);
    ck_assert_str_eq(r.transport, "local");
    ck_assert_str_eq(r.nexthop, "mail.example.org");
    ck_assert_int_eq(route_config_resolve("s@x", "u@a.relayed.example", &r,
                                          &error), 0);
    ck_assert_str_eq(r.transport, "relay");
    ck_assert_str_eq(r.nexthop, "[smart.example]");
    ck_assert_int_eq(route_config_resolve("s@x", "u@b.sub.example", &r,
                                          &error), 0);
    ck_assert_str_eq(r.transport, "relay");
    ck_assert_int_eq(route_config_resolve("s@x", "u@sub.example", &r,
                                          &error), 0);
    ck_assert_str_eq(r.transport, "smtp");
    ck_assert_int_eq(route_config_resolve("s@x", "u@x.tabled.example", &r,
                                          &error), 0);
    ck_assert_str_eq(r.transport, "relay");
    ck_assert_int_eq(route_config_resolve("s@x", "u@special.example", &r,
                                          &error), 0);
    ck_assert_str_eq(r.transport, "slow");
    ck_assert_str_eq(r.nexthop, "[slowhop]");
    ck_assert_int_eq(route_config_resolve("boss@vip.example", "u@else.example",
                                          &r, &error), 0);
    ck_assert_str_eq(r.transport, "smtp");
    ck_assert_str_eq(r.nexthop, "[vip]");
    route_tables_close();
    config_free();
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");

    tcase_add_loop_test(tc, test_route_table, 0,
                        sizeof(route_cases) / sizeof(route_cases[0]));
    tcase_add_test(tc, test_route_transport_key_order);
    tcase_add_loop_test(tc, test_nexthop_parse, 0,
                        sizeof(nexthop_cases) / sizeof(nexthop_cases[0]));
    tcase_add_test(tc, test_split_and_names);
    tcase_add_test(tc, test_strip_extension);
    tcase_add_test(tc, test_config_tables);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(route_suite(), true);
}

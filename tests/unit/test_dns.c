/*
 * test_dns - unit tests for lib/util/dns.c: reverse names (IPv4, IPv6,
 * IPv4-mapped, odd families, short buffers), host name validation and
 * the wire-to-text conversion of PTR answers with hostile input (control
 * characters, overlong labels and names, compression pointers, missing
 * root label, trailing bytes, numeric names), address matching, and on
 * a real event loop against a resolver that never answers (the deadline
 * gives DNS_TIMEOUT, a cancelled query's callback never runs) and one
 * that answers at once (names, addresses, a hostile PTR answer, a query
 * cancelled from another query's callback). No test reaches outside
 * 127.0.0.1.
 */
#include <arpa/inet.h>
#include <check.h>

#include "check_main.h"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/dns.h"
#include "util/events.h"

static const struct sockaddr *make_sa(const char *text,
                                      struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* --- reverse names ------------------------------------------------------ */

static const struct { const char *addr, *rev; } rev_cases[] = {
    { "192.0.2.1", "1.2.0.192.in-addr.arpa" },
    { "127.0.0.2", "2.0.0.127.in-addr.arpa" },
    { "0.0.0.0", "0.0.0.0.in-addr.arpa" },
    { "255.255.255.255", "255.255.255.255.in-addr.arpa" },
    { "::ffff:198.51.100.7", "7.100.51.198.in-addr.arpa" },
    { "2001:db8::567:89ab",
      "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
    { "::1",
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa" },
};

START_TEST(test_reverse)
{
    struct sockaddr_storage ss;
    char buf[DNS_REVERSE_MAX];

    ck_assert_int_eq(dns_reverse_name(make_sa(rev_cases[_i].addr, &ss), buf,
                                      sizeof(buf)), 0);
    ck_assert_str_eq(buf, rev_cases[_i].rev);
}
END_TEST

START_TEST(test_reverse_odd)
{
    struct sockaddr_storage ss;
    struct sockaddr_un un;
    char buf[DNS_REVERSE_MAX];

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    ck_assert_int_eq(dns_reverse_name((struct sockaddr *)&un, buf,
                                      sizeof(buf)), -1);
    /* no room: refused, never truncated */
    ck_assert_int_eq(dns_reverse_name(make_sa("192.0.2.1", &ss), buf, 22), -1);
    ck_assert_int_eq(dns_reverse_name(make_sa("192.0.2.1", &ss), buf, 23), 0);
    ck_assert_int_eq(dns_reverse_name(make_sa("2001:db8::1", &ss), buf, 72),
                     -1);
    ck_assert_int_eq(dns_reverse_name(make_sa("2001:db8::1", &ss), buf, 73),
                     0);
    ck_assert_uint_eq(strlen(buf), 72);
}
END_TEST

/* --- host names in text --------------------------------------------------- */

static char long_label[70], long_name[300], max_name[260];

/* make_name - labels of 63 'b's and a last one of last bytes, dotted */
static void make_name(char *out, int full, size_t last)
{
    size_t n = 0;

    for (int i = 0; i < full; i++) {
        memset(out + n, 'b', 63);
        n += 63;
        out[n++] = '.';
    }
    memset(out + n, 'c', last);
    out[n + last] = '\0';
}

static void names_init(void)
{
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    make_name(long_name, 3, 62);   /* 254 bytes */
    make_name(max_name, 3, 61);    /* 253 bytes */
}

static const struct { const char *name; bool ok; } valid_cases[] = {
    { "mail.example.com", true },
    { "mail.example.com.", true },
    { "localhost", true },
    { "a-b.c_d.example", true },
    { "1mail.example", true },
    { "x.123abc", true },
    { "0.example", true },
    { "", false },
    { ".", false },
    { "..", false },
    { "a..b", false },
    { ".a", false },
    { "a.b..", false },
    { "-a.example", false },
    { "a-.example", false },
    { "a.-b", false },
    { "192.0.2.1", false },        /* an address is no name */
    { "12345", false },
    { "a.123", false },
    { "bad name.example", false },
    { "tab\t.example", false },
    { "nl\n.example", false },
    { "cr\r.example", false },
    { "esc\033[31m.example", false },
    { "del\177.example", false },
    { "utf8-\xc3\xa9.example", false },
    { "semi;colon.example", false },
    { "brack[et].example", false },
    { "slash/.example", false },
    { "star*.example", false },
};

START_TEST(test_valid)
{
    ck_assert_msg(dns_name_valid(valid_cases[_i].name) == valid_cases[_i].ok,
                  "%s", valid_cases[_i].name);
}
END_TEST

START_TEST(test_valid_lengths)
{
    char buf[300];

    names_init();
    ck_assert(!dns_name_valid(long_label));
    ck_assert(dns_name_valid(long_label + 1));      /* 63 bytes */
    ck_assert_uint_eq(strlen(max_name), 253);
    ck_assert(dns_name_valid(max_name));
    ck_assert_uint_eq(strlen(long_name), 254);
    ck_assert(!dns_name_valid(long_name));
    (void)snprintf(buf, sizeof(buf), "%s.", max_name);
    ck_assert(dns_name_valid(buf));                 /* final dot allowed */
}
END_TEST

/* --- wire format ---------------------------------------------------------- */

static const struct {
    const char *wire;               /* length-prefixed, as in a PTR answer */
    size_t len;
    const char *text;               /* NULL: must be refused */
} wire_cases[] = {
#define W(s) s, sizeof(s) - 1
    { W("\004mail\007example\003com\000"), "mail.example.com" },
    { W("\011localhost\000"), "localhost" },
    { W("\003a_b\001x\000"), "a_b.x" },
    { W("\000"), NULL },                            /* the root: no name */
    { W(""), NULL },
    { W("\004mail\007example\003com"), NULL },      /* no root label */
    { W("\004mail\000\000"), NULL },                /* trailing byte */
    { W("\004mail\010example\000"), NULL },         /* label past the end */
    { W("\004ma l\003com\000"), NULL },
    { W("\004ma\nl\003com\000"), NULL },
    { W("\004ma\rl\003com\000"), NULL },
    { W("\005ma\000il\003com\000"), NULL },         /* NUL inside a label */
    { W("\004ma.l\003com\000"), NULL },             /* a dot inside a label */
    { W("\004\033[1m\003com\000"), NULL },
    { W("\004mail\300\014"), NULL },                /* compression pointer */
    { W("\100aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\000"), NULL },
    { W("\001-\003com\000"), NULL },
    { W("\0031\0032\0033\0034\000"), NULL },        /* 1.2.3.4 */
#undef W
};

START_TEST(test_wire)
{
    char buf[DNS_NAME_MAX + 1];
    int rc = dns_name_from_wire((const unsigned char *)wire_cases[_i].wire,
                                wire_cases[_i].len, buf, sizeof(buf));

    if (wire_cases[_i].text == NULL) {
        ck_assert_int_eq(rc, -1);
    } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(buf, wire_cases[_i].text);
    }
}
END_TEST

/* wire_of - text name to wire format (test helper, trusting its input) */
static size_t wire_of(const char *text, unsigned char *out)
{
    size_t n = 0;

    while (*text) {
        size_t l = strcspn(text, ".");
        out[n++] = (unsigned char)l;
        memcpy(out + n, text, l);
        n += l;
        text += l;
        if (*text == '.')
            text++;
    }
    out[n++] = 0;
    return n;
}

START_TEST(test_wire_lengths)
{
    unsigned char wire[400];
    char buf[DNS_NAME_MAX + 1], small[10];
    size_t n;

    names_init();
    n = wire_of(max_name, wire);
    ck_assert_int_eq(dns_name_from_wire(wire, n, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, max_name);
    /* the same name does not fit a small buffer: refused, not cut */
    ck_assert_int_eq(dns_name_from_wire(wire, n, small, sizeof(small)), -1);
    ck_assert_int_eq(dns_name_from_wire(wire, n, small, 0), -1);
    n = wire_of(long_name, wire);
    ck_assert_int_eq(dns_name_from_wire(wire, n, buf, sizeof(buf)), -1);
}
END_TEST

START_TEST(test_has_addr)
{
    static const unsigned char four[] = { 192, 0, 2, 1, 127, 0, 0, 2 };
    struct dns_result r;
    struct sockaddr_storage ss;

    memset(&r, 0, sizeof(r));
    r.status = DNS_OK;
    r.family = AF_INET;
    r.naddrs = 2;
    r.addrs = four;
    ck_assert(dns_result_has_addr(&r, make_sa("127.0.0.2", &ss)));
    ck_assert(dns_result_has_addr(&r, make_sa("::ffff:192.0.2.1", &ss)));
    ck_assert(!dns_result_has_addr(&r, make_sa("127.0.0.3", &ss)));
    ck_assert(!dns_result_has_addr(&r, make_sa("::1", &ss)));
    r.status = DNS_NOTFOUND;
    ck_assert(!dns_result_has_addr(&r, make_sa("127.0.0.2", &ss)));
}
END_TEST

/* --- on the loop, with a resolver that never answers ----------------- */

struct probe {
    int calls;
    enum dns_status status;
};

static void probe_cb(void *arg, const struct dns_result *r)
{
    struct probe *p = arg;

    p->calls++;
    p->status = r->status;
}

static void stop_cb(ev_loop_t *loop, void *arg)
{
    (void)arg;
    ev_loop_stop(loop);
}

/* blackhole - a UDP socket on 127.0.0.1 that reads nothing; its port */
static int blackhole(int *fd_r)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *fd_r = fd;
    return ntohs(sin.sin_port);
}

START_TEST(test_timeout_and_cancel)
{
    char fwd[64];
    const char *err = NULL;
    int hole, port = blackhole(&hole);
    ev_loop_t *loop = ev_loop_new();
    dns_ctx_t *ctx;
    struct probe timed = { 0, DNS_OK }, cancelled = { 0, DNS_OK };
    struct sockaddr_storage ss;
    dns_query_t *q;
    ev_timer_t stop;

    ck_assert_ptr_nonnull(loop);
    (void)snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", port);
    ctx = dns_ctx_new(fwd, NULL, &err);
    ck_assert_msg(ctx != NULL, "%s", err);
    /* not attached: refused at once, no callback */
    ck_assert_ptr_null(dns_lookup_ptr(ctx, make_sa("127.0.0.2", &ss), 100,
                                      probe_cb, &timed, &err));
    ck_assert_int_eq(dns_ctx_attach(ctx, loop, &err), 0);
    ck_assert_ptr_null(dns_lookup_addr(ctx, "bad name", AF_INET, 100,
                                       probe_cb, &timed, &err));
    ck_assert_ptr_nonnull(dns_lookup_ptr(ctx, make_sa("127.0.0.2", &ss), 200,
                                         probe_cb, &timed, &err));
    q = dns_lookup_addr(ctx, "host.example", AF_INET6, 200, probe_cb,
                        &cancelled, &err);
    ck_assert_ptr_nonnull(q);
    dns_cancel(q);
    ck_assert_int_eq(timed.calls, 0);  /* never from inside the call */
    ev_timer_init(&stop, stop_cb, NULL);
    ev_timer_set(loop, &stop, 1000);
    ev_loop_run(loop);
    ck_assert_int_eq(timed.calls, 1);
    ck_assert_int_eq(timed.status, DNS_TIMEOUT);
    ck_assert_int_eq(cancelled.calls, 0);
    /* one more still open when the context goes: dropped silently */
    ck_assert_ptr_nonnull(dns_lookup_ptr(ctx, make_sa("::1", &ss), 10000,
                                         probe_cb, &cancelled, &err));
    dns_ctx_free(ctx);
    ck_assert_int_eq(cancelled.calls, 0);
    ev_loop_free(loop);
    (void)close(hole);
}
END_TEST

/* responder - a child answering on a UDP socket at once: PTR queries
   for 1.1.1.11.in-addr.arpa with "host.example.net", for
   2.1.1.11.in-addr.arpa with a name holding an ESC byte, A queries
   with 11.1.1.1, anything else NXDOMAIN; returns its port. Not
   192.0.2.0/24 and the like: unbound answers those reverse zones
   itself. */
static int responder(pid_t *pid_r)
{
    int fd, port = blackhole(&fd);
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (;;) {
            unsigned char q[512], a[600];
            struct sockaddr_storage peer;
            socklen_t plen = sizeof(peer);
            ssize_t n = recvfrom(fd, q, sizeof(q), 0,
                                 (struct sockaddr *)&peer, &plen);
            size_t pos = 12, qend, len;
            char qname[300];
            size_t qn = 0;
            unsigned qtype;
            const unsigned char *rdata = NULL;
            size_t rdlen = 0;
            static const unsigned char good[] = "\004host\007example\003net";
            static const unsigned char evil[] = "\004ho\033t\007example\003net";
            static const unsigned char addr[] = { 11, 1, 1, 1 };

            if (n < 17)
                continue;
            while (pos < (size_t)n && q[pos] != 0 && qn + q[pos] + 1 < sizeof(qname)) {
                memcpy(qname + qn, q + pos + 1, q[pos]);
                qn += q[pos];
                qname[qn++] = '.';
                pos += 1 + q[pos];
            }
            qname[qn] = '\0';
            if (pos + 5 > (size_t)n)
                continue;
            qtype = (unsigned)q[pos + 1] << 8 | q[pos + 2];
            qend = pos + 5;
            if (qtype == 12 && strcasecmp(qname, "1.1.1.11.in-addr.arpa.") == 0) {
                rdata = good;
                rdlen = sizeof(good);
            } else if (qtype == 12
                       && strcasecmp(qname, "2.1.1.11.in-addr.arpa.") == 0) {
                rdata = evil;
                rdlen = sizeof(evil);
            } else if (qtype == 1) {
                rdata = addr;
                rdlen = sizeof(addr);
            }
            memcpy(a, q, qend);
            a[2] = 0x84 | (q[2] & 0x01);    /* QR, AA, RD copied */
            a[3] = rdata != NULL ? 0x80 : 0x83;   /* RA; NXDOMAIN */
            a[4] = 0; a[5] = 1;             /* QDCOUNT */
            a[6] = 0; a[7] = rdata != NULL; /* ANCOUNT */
            memset(a + 8, 0, 4);            /* no NS, no additional */
            len = qend;
            if (rdata != NULL) {
                unsigned char rr[] = { 0xc0, 0x0c, 0, (unsigned char)qtype,
                                       0, 1, 0, 0, 0, 60, 0,
                                       (unsigned char)rdlen };
                memcpy(a + len, rr, sizeof(rr));
                len += sizeof(rr);
                memcpy(a + len, rdata, rdlen);
                len += rdlen;
            }
            (void)sendto(fd, a, len, 0, (struct sockaddr *)&peer, plen);
        }
    }
    (void)close(fd);
    *pid_r = pid;
    return port;
}

struct answer {
    int calls;
    enum dns_status status;
    char name[DNS_NAME_MAX + 1];
    bool has_addr;
    dns_query_t *other;             /* cancelled from this callback */
    int *pending;
    ev_loop_t *loop;
};

static void answer_cb(void *arg, const struct dns_result *r)
{
    struct answer *a = arg;
    struct sockaddr_storage ss;

    a->calls++;
    a->status = r->status;
    if (r->name != NULL)
        (void)snprintf(a->name, sizeof(a->name), "%s", r->name);
    a->has_addr = dns_result_has_addr(r, make_sa("11.1.1.1", &ss));
    if (a->other != NULL) {
        dns_cancel(a->other);       /* its callback must never run */
        --*a->pending;
    }
    if (--*a->pending == 0)
        ev_loop_stop(a->loop);
}

START_TEST(test_answers)
{
    char fwd[64];
    const char *err = NULL;
    pid_t pid;
    int port = responder(&pid), pending = 0, status;
    ev_loop_t *loop = ev_loop_new();
    dns_ctx_t *ctx;
    struct answer ptr = { 0 }, evil = { 0 }, nx = { 0 }, addr = { 0 },
                  first = { 0 }, second = { 0 };
    struct sockaddr_storage ss;
    ev_timer_t stop;

    (void)snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", port);
    ctx = dns_ctx_new(fwd, NULL, &err);
    ck_assert_msg(ctx != NULL, "%s", err);
    ck_assert_int_eq(dns_ctx_attach(ctx, loop, &err), 0);
    struct answer *all[] = { &ptr, &evil, &nx, &addr, &first, &second };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        all[i]->pending = &pending;
        all[i]->loop = loop;
    }
    ck_assert_ptr_nonnull(dns_lookup_ptr(ctx, make_sa("11.1.1.1", &ss),
                                         20000, answer_cb, &ptr, &err));
    ck_assert_ptr_nonnull(dns_lookup_ptr(ctx, make_sa("11.1.1.2", &ss),
                                         20000, answer_cb, &evil, &err));
    ck_assert_ptr_nonnull(dns_lookup_ptr(ctx, make_sa("11.1.1.3", &ss),
                                         20000, answer_cb, &nx, &err));
    ck_assert_ptr_nonnull(dns_lookup_addr(ctx, "host.example.net", AF_INET,
                                          20000, answer_cb, &addr, &err));
    /* whichever of these two comes first cancels the other */
    first.other = dns_lookup_addr(ctx, "b.example.net", AF_INET, 20000,
                                  answer_cb, &second, &err);
    ck_assert_ptr_nonnull(first.other);
    second.other = dns_lookup_addr(ctx, "a.example.net", AF_INET, 20000,
                                   answer_cb, &first, &err);
    ck_assert_ptr_nonnull(second.other);
    pending = 6;
    ev_timer_init(&stop, stop_cb, NULL);
    ev_timer_set(loop, &stop, 30000);   /* only if answers never come */
    ev_loop_run(loop);
    ck_assert_int_eq(pending, 0);
    ck_assert_int_eq(ptr.calls, 1);
    ck_assert_int_eq(ptr.status, DNS_OK);
    ck_assert_str_eq(ptr.name, "host.example.net");
    ck_assert_int_eq(evil.calls, 1);
    ck_assert_int_eq(evil.status, DNS_MALFORMED);
    ck_assert_str_eq(evil.name, "");
    ck_assert_int_eq(nx.calls, 1);
    ck_assert_int_eq(nx.status, DNS_NOTFOUND);
    ck_assert_int_eq(addr.calls, 1);
    ck_assert_int_eq(addr.status, DNS_OK);
    ck_assert(addr.has_addr);
    ck_assert_int_eq(first.calls + second.calls, 1);
    dns_ctx_free(ctx);
    ev_loop_free(loop);
    (void)kill(pid, SIGKILL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}
END_TEST

START_TEST(test_bad_forwarders)
{
    static const char *const bad[] = {
        "localhost", "127.0.0.1@", "127.0.0.1@0", "127.0.0.1@65536",
        "127.0.0.1@53x", "@53", "1.2.3", "127.0.0.1 nonsense",
    };
    const char *err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        ck_assert_msg(dns_ctx_new(bad[i], NULL, &err) == NULL, "%s", bad[i]);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("names");

    tcase_add_loop_test(tc, test_reverse, 0, N(rev_cases));
    tcase_add_test(tc, test_reverse_odd);
    tcase_add_loop_test(tc, test_valid, 0, N(valid_cases));
    tcase_add_test(tc, test_valid_lengths);
    tcase_add_loop_test(tc, test_wire, 0, N(wire_cases));
    tcase_add_test(tc, test_wire_lengths);
    tcase_add_test(tc, test_has_addr);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timeout_and_cancel);
    tcase_add_test(tc, test_answers);
    tcase_add_test(tc, test_bad_forwarders);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(dns_suite(), true);
}

/*
 * test_qmgr - the queue manager's pure decisions (qmgr/qmgr_policy.c):
 * back-off, expiry, transport choice, destination keys, per-transport
 * limits, the concurrency window, the delivery request built from a
 * queue_msg_t, and the numbers that go into log lines; and the
 * scheduler's in-memory queues (qmgr/qmgr_queue.c, with the connection
 * and message layers stubbed): grouping, round robin, windows, dead
 * destinations.
 */
#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>
#include "../../qmgr/qmgr_policy.c"
#include "../../qmgr/qmgr_queue.c"
#include "util/attr.h"
#include "util/buf.h"
#include "mail/deliver.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "util/util.h"

/* ---- destination queues and limits -------------------------------------- */

static const struct {
    const char *rcpt, *nexthop;
    long rcpt_limit;
    const char *want;
} dest_cases[] = {
    /* recipient limit 1: one queue per recipient (local) */
    { "Alice@Example.ORG", "Mail.Example.ORG", 1,
      "alice@example.org\nmail.example.org" },
    { "postmaster", "host", 1, "postmaster\nhost" },
    { "", "", 1, "\n" },
    /* otherwise one per next hop, whatever the recipient */
    { "bob@MX.Example.net", "MX.Example.net", 50, "mx.example.net" },
    { "carol@other.example", "[Smart.Example]:25", 2, "[smart.example]:25" },
    { "\"a@b\"@c.example", "c.example", 50, "c.example" },
};

START_TEST(test_destination_table)
{
    buf_t out = BUF_INIT;

    qmgr_dest_key(dest_cases[_i].rcpt, dest_cases[_i].nexthop,
                  dest_cases[_i].rcpt_limit, &out);
    ck_assert_str_eq(buf_str(&out), dest_cases[_i].want);
    buf_free(&out);
}
END_TEST

/* per-transport parameters: <transport>_..., else the default_ one */
START_TEST(test_transport_limits)
{
    static const char conf[] =
        "smtp_destination_concurrency_limit = 3\n"
        "smtp_destination_recipient_limit = 7\n"
        "slow_initial_destination_concurrency = 1\n"
        "slow_destination_concurrency_failed_cohort_limit = 4\n"
        "bad_destination_concurrency_limit = lots\n"
        "default_destination_concurrency_limit = 11\n"
        "smtp_destination_concurrency_limitx = 1\n";
    struct qmgr_limits lim;
    buf_t err = BUF_INIT;

    ck_assert_int_eq(config_load_text(conf, sizeof(conf) - 1, "main.conf",
                                      NULL, &err), 0);
    /* per-transport names are not "unknown"; others still are */
    ck_assert_ptr_null(strstr(buf_str(&err), "unknown parameter: smtp_destination_concurrency_limit\n"));
    ck_assert_ptr_null(strstr(buf_str(&err), "slow_initial"));
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "unknown parameter: smtp_destination_concurrency_limitx"));
    buf_free(&err);
    ck_assert_str_eq(config_value_any("smtp_destination_concurrency_limit"), "3");
    ck_assert_ptr_null(config_value("smtp_destination_concurrency_limit"));
    ck_assert_ptr_null(config_value_any("relay_destination_concurrency_limit"));
    ck_assert_str_eq(config_value_any("default_destination_concurrency_limit"), "11");
    qmgr_transport_limits("smtp", &lim);
    ck_assert_int_eq(lim.concurrency, 3);
    ck_assert_int_eq(lim.recipients, 7);
    ck_assert_int_eq(lim.initial, 5);
    ck_assert_int_eq(lim.cohort, 1);
    qmgr_transport_limits("local", &lim);
    ck_assert_int_eq(lim.concurrency, 2);
    ck_assert_int_eq(lim.recipients, 1);
    qmgr_transport_limits("slow", &lim);
    ck_assert_int_eq(lim.concurrency, 11);
    ck_assert_int_eq(lim.recipients, 50);
    ck_assert_int_eq(lim.initial, 1);
    ck_assert_int_eq(lim.cohort, 4);
    qmgr_transport_limits("bad", &lim);         /* warned, default used */
    ck_assert_int_eq(lim.concurrency, 11);
    config_free();
}
END_TEST

/* slow start, back-off and the dead verdict */
START_TEST(test_window)
{
    struct qmgr_limits lim = { .concurrency = 4, .recipients = 50,
                               .initial = 2, .cohort = 2 };
    struct qmgr_window w;

    qmgr_window_init(&w, &lim);
    ck_assert_int_eq(w.window, 2);
    ck_assert(qmgr_window_open(&w, 1));
    ck_assert(!qmgr_window_open(&w, 2));
    qmgr_window_success(&w, &lim);
    ck_assert_int_eq(w.window, 2);
    qmgr_window_success(&w, &lim);          /* a window's worth: grows */
    ck_assert_int_eq(w.window, 3);
    for (int k = 0; k < 3; k++)
        qmgr_window_success(&w, &lim);
    ck_assert_int_eq(w.window, 4);
    for (int k = 0; k < 100; k++)
        qmgr_window_success(&w, &lim);
    ck_assert_int_eq(w.window, 4);          /* never above the limit */
    ck_assert(!qmgr_window_failure(&w, &lim));
    ck_assert(!qmgr_window_failure(&w, &lim));
    ck_assert(!qmgr_window_failure(&w, &lim));
    ck_assert_int_eq(w.window, 1);
    ck_assert(!qmgr_window_failure(&w, &lim));  /* 1st at window 1 */
    qmgr_window_success(&w, &lim);              /* resets the count */
    ck_assert_int_eq(w.window, 2);
    ck_assert(!qmgr_window_failure(&w, &lim));  /* back to 1 */
    ck_assert(!qmgr_window_failure(&w, &lim));
    ck_assert(qmgr_window_failure(&w, &lim));   /* 2 in a row: dead */
    lim.initial = 10;                           /* initial above limit */
    qmgr_window_init(&w, &lim);
    ck_assert_int_eq(w.window, 4);
    lim.concurrency = 2;                        /* limit shrank */
    qmgr_window_success(&w, &lim);
    ck_assert_int_eq(w.window, 2);
}
END_TEST

/* ---- back-off ------------------------------------------------------------ */

static const struct {
    long now, arrival, min, max, want;
} backoff_cases[] = {
    { 1000, 1000, 300, 4000, 300 },        /* just arrived: the minimum */
    { 1100, 1000, 300, 4000, 300 },        /* young: still the minimum */
    { 1600, 1000, 300, 4000, 600 },        /* age 600 -> wait 600 */
    { 3400, 1000, 300, 4000, 2400 },       /* roughly doubling */
    { 9000, 1000, 300, 4000, 4000 },       /* capped */
    { 10000000, 0, 300, 4000, 4000 },
    { 500, 1000, 300, 4000, 300 },         /* clock went back */
    { 1000, 1000, 0, 0, 1 },               /* never 0: no busy loop */
    { 5000, 1000, 300, 100, 300 },         /* max < min: min wins */
    { 1000, -5000, 60, 120, 120 },
    { 0x7ffffff0L, 0, 1, 0x7fffffffL, 0x7ffffff0L },
};

START_TEST(test_backoff_table)
{
    for (size_t i = 0; i < sizeof(backoff_cases) / sizeof(backoff_cases[0]); i++) {
        long got = qmgr_backoff(backoff_cases[i].now, backoff_cases[i].arrival,
                                backoff_cases[i].min, backoff_cases[i].max);
        ck_assert_msg(got == backoff_cases[i].want,
                      "case %zu: got %ld want %ld", i, got,
                      backoff_cases[i].want);
    }
}
END_TEST

START_TEST(test_backoff_sequence_grows)
{
    /* successive attempts: each wait at least the previous one, up to max */
    long arrival = 0, now = 0, prev = 0;

    for (int attempt = 0; attempt < 20; attempt++) {
        long wait = qmgr_backoff(now, arrival, 300, 4000);
        ck_assert_int_ge(wait, prev);
        ck_assert_int_ge(wait, 300);
        ck_assert_int_le(wait, 4000);
        prev = wait;
        now += wait;
    }
    ck_assert_int_eq(prev, 4000);
}
END_TEST

/* ---- expiry -------------------------------------------------------------- */

static const struct {
    long now, arrival, lifetime;
    bool want;
} expiry_cases[] = {
    { 1000, 1000, 5 * 86400, false },
    { 1000 + 5 * 86400 - 1, 1000, 5 * 86400, false },
    { 1000 + 5 * 86400, 1000, 5 * 86400, true },
    { 1000 + 50 * 86400, 1000, 5 * 86400, true },
    { 1000, 1000, 0, true },                /* lifetime 0: first deferral */
    { 1000, 2000, 0, true },
    { 1000, 2000, 60, false },              /* arrival in the future */
    { 1000, 1000, -1, true },
};

/* deferred files: mtime = next attempt, ctime = when it was deferred */
#define S_ 1000000ULL
static const struct {
    uint64_t next, changed, now, flush;
    long max_backoff;
    bool due;
} due_cases[] = {
    { 100 * S_, 50 * S_, 100 * S_, 0, 4000, true },      /* exactly now */
    { 101 * S_, 50 * S_, 100 * S_, 0, 4000, false },     /* 1 s early */
    { 4100 * S_, 50 * S_, 100 * S_, 0, 4000, false },    /* max back-off */
    { 4101 * S_, 50 * S_, 100 * S_, 0, 4000, false },    /* rounding slack */
    { 4102 * S_, 50 * S_, 100 * S_, 0, 4000, true },     /* clock went back */
    { 86400 * S_, 1, 100 * S_, 0, 4000, true },          /* a day back */
    { UINT64_MAX, 1, 0, 0, 4000, true },                 /* absurd mtime */
    { 200 * S_, 50 * S_, 100 * S_, 60 * S_, 4000, true },  /* flushed */
    { 200 * S_, 70 * S_, 100 * S_, 60 * S_, 4000, false }, /* re-deferred */
    { 102 * S_, 50 * S_, 100 * S_, 0, 0, true },         /* no max: slack */
    { 101 * S_, 50 * S_, 100 * S_, 0, -5, false },       /* bad max */
};

START_TEST(test_deferred_due_table)
{
    ck_assert_msg(qmgr_deferred_due(due_cases[_i].next, due_cases[_i].changed,
                                    due_cases[_i].now, due_cases[_i].flush,
                                    due_cases[_i].max_backoff)
                  == due_cases[_i].due, "case %d", _i);
}
END_TEST

START_TEST(test_expiry_table)
{
    for (size_t i = 0; i < sizeof(expiry_cases) / sizeof(expiry_cases[0]); i++) {
        bool got = qmgr_expired(expiry_cases[i].now, expiry_cases[i].arrival,
                                expiry_cases[i].lifetime);
        ck_assert_msg(got == expiry_cases[i].want, "case %zu: got %d", i, got);
    }
}
END_TEST

/* ---- transport choice (route.h, with qmgr's local/remote split) ------- */

static int fake_is_local(void *ctx, const char *domain)
{
    (void)ctx;
    return strcasecmp(domain, "example.org") == 0 ||
           strcasecmp(domain, "localhost") == 0;
}

static const struct {
    const char *rcpt;
    const char *want;
} xport_cases[] = {
    { "alice@example.org", "local" },
    { "alice@EXAMPLE.ORG", "local" },
    { "bob@localhost", "local" },
    { "postmaster", "local" },            /* no domain */
    { "carol@example.com", "smtp" },
    { "carol@sub.example.org", "smtp" },
    { "\"a@example.org\"@example.net", "smtp" },
    { "\"a@example.net\"@example.org", "local" },
    { "x@[192.0.2.1]", "smtp" },
    { "trailing@", "local" },            /* empty domain */
    { "", "local" },
};

START_TEST(test_xport_table)
{
    struct route_params p = { "local:host.example.org", "relay", "smtp", "",
                              "+", "<>" };
    struct route_lookups l = { NULL, NULL, NULL, fake_is_local, NULL };

    for (size_t i = 0; i < sizeof(xport_cases) / sizeof(xport_cases[0]); i++) {
        const char *err = NULL;
        route_t r;

        ck_assert_int_eq(route_resolve(&p, &l, "", xport_cases[i].rcpt, &r,
                                       &err), 0);
        ck_assert_msg(strcmp(r.transport, xport_cases[i].want) == 0,
                      "case %zu (%s): got %s", i, xport_cases[i].rcpt,
                      r.transport);
    }
}
END_TEST

START_TEST(test_rcpt_domain)
{
    ck_assert_str_eq(qmgr_rcpt_domain("a@b.c"), "b.c");
    ck_assert_str_eq(qmgr_rcpt_domain("a@b@c"), "c");
    ck_assert_str_eq(qmgr_rcpt_domain("abc"), "");
    ck_assert_str_eq(qmgr_rcpt_domain("@"), "");
}
END_TEST

/* ---- the delivery request ------------------------------------------------ */

static void msg_fixture(queue_msg_t *m, struct queue_rcpt *r,
                        struct queue_attr *a, size_t nattrs)
{
    memset(m, 0, sizeof(*m));
    str_copy(m->qid, "4ZxB2KbQ1vNz", sizeof(m->qid));
    m->arrival_usec = 1700000000123456ULL;
    m->sender = "sender@example.com";
    m->attrs = a;
    m->nattrs = nattrs;
    m->rcpts = r;
    m->nrcpts = 2;
    m->content_offset = 4321;
    m->content_len = 9876543210ULL;
}

START_TEST(test_request_build)
{
    struct queue_rcpt r[2] = {
        { "a@example.org", NULL, 100, QREC_RCPT, 0, NULL },
        { "b@example.org", "B@Example.ORG", 200, QREC_RCPT, 0, NULL },
    };
    struct queue_attr a[2] = {
        { "helo_name", "mx.example.com" },
        { "client_address", "192.0.2.7" },
    };
    static const char *const names[] = {
        DA_REQUEST, DA_QUEUE_NAME, DA_QUEUE_ID, DA_TRANSPORT, DA_NEXTHOP,
        DA_ACTIVE_USEC, DA_RCPT_COUNT, DA_RECIPIENT "_0", DA_RCPT_OFFSET "_0",
    };
    size_t one = 1, zero = 0;
    queue_msg_t m;
    attr_list_t l;
    long v;

    msg_fixture(&m, r, a, 2);
    attr_list_init(&l);
    qmgr_request_build(&m, &one, 1, "smtp", "example.org", 1234, &l);
    ck_assert_str_eq(attr_get(&l, DA_REQUEST), DELIVER_REQUEST_DELIVER);
    ck_assert_str_eq(attr_get(&l, DA_QUEUE_NAME), "active");
    ck_assert_str_eq(attr_get(&l, DA_QUEUE_ID), "4ZxB2KbQ1vNz");
    ck_assert_str_eq(attr_get(&l, DA_TRANSPORT), "smtp");
    ck_assert_str_eq(attr_get(&l, DA_NEXTHOP), "example.org");
    ck_assert_str_eq(attr_get(&l, DA_ACTIVE_USEC), "1234");
    ck_assert_str_eq(attr_get(&l, DA_RECIPIENT "_0"), "b@example.org");
    ck_assert_int_eq(attr_get_long(&l, DA_RCPT_OFFSET "_0", 0, 1L << 40, &v), 0);
    ck_assert_int_eq(v, 200);
    /* only what names the record: the agent reads the envelope (sender,
       orcpt, content, arrival, client) from the queue file */
    ck_assert_uint_eq(l.count, sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < l.count; i++)
        ck_assert_str_eq(l.items[i].name, names[i]);

    /* the first recipient; reused list */
    qmgr_request_build(&m, &zero, 1, "smtp", "example.org", 1234, &l);
    ck_assert_str_eq(attr_get(&l, DA_RECIPIENT "_0"), "a@example.org");
    ck_assert_int_eq(attr_get_long(&l, DA_RCPT_OFFSET "_0", 0, 1L << 40, &v), 0);
    ck_assert_int_eq(v, 100);
    ck_assert_uint_eq(l.count, sizeof(names) / sizeof(names[0]));
    attr_list_free(&l);
}
END_TEST

START_TEST(test_request_null_sender_no_client)
{
    struct queue_rcpt r[2] = {
        { "a@example.org", NULL, 100, QREC_RCPT, 0, NULL },
        { "b@example.org", NULL, 200, QREC_DONE, 0, NULL },
    };
    queue_msg_t m;
    attr_list_t l;

    size_t zero = 0;

    msg_fixture(&m, r, NULL, 0);
    m.sender = NULL;
    attr_list_init(&l);
    qmgr_request_build(&m, &zero, 1, "local", "", 0, &l);
    ck_assert_str_eq(attr_get(&l, DA_RECIPIENT "_0"), "a@example.org");
    ck_assert_ptr_null(attr_get(&l, DA_ACTIVE_USEC));
    ck_assert_ptr_null(attr_get(&l, "sender"));
    ck_assert_ptr_null(attr_get(&l, "client_address"));
    attr_list_free(&l);
}
END_TEST

START_TEST(test_request_wire_roundtrip)
{
    /* what the agent decodes is what we built, even for odd values */
    char longaddr[300];
    struct queue_rcpt r[2] = {
        { longaddr, "rfc822;x@y", 7, QREC_RCPT, 0, NULL },
        { "b@example.org", NULL, 200, QREC_RCPT, 0, NULL },
    };
    queue_msg_t m;
    attr_list_t l, back;
    buf_t wire = BUF_INIT;
    size_t used = 0;
    const char *err = NULL;

    size_t both[2] = { 0, 1 };

    memset(longaddr, 'x', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    longaddr[10] = '@';
    msg_fixture(&m, r, NULL, 0);
    m.sender = "\"odd sender\"@example.com";
    attr_list_init(&l);
    attr_list_init(&back);
    qmgr_request_build(&m, both, 2, "smtp", "[192.0.2.1]:2525", 99, &l);
    ck_assert_int_eq(attr_encode(&l, &wire), 0);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &back, &used, &err), 1);
    ck_assert_uint_eq(used, wire.len);
    ck_assert_uint_eq(back.count, l.count);
    for (size_t i = 0; i < l.count; i++) {
        ck_assert_str_eq(back.items[i].name, l.items[i].name);
        ck_assert_str_eq(back.items[i].value, l.items[i].value);
    }
    ck_assert_str_eq(attr_get(&back, DA_RECIPIENT "_0"), longaddr);
    ck_assert_str_eq(attr_get(&back, DA_RECIPIENT "_1"), "b@example.org");
    /* truncated wire form is incomplete, never a half request */
    ck_assert_int_eq(attr_decode(wire.data, wire.len - 1, &back, &used, &err), 0);
    attr_list_free(&l);
    attr_list_free(&back);
    buf_free(&wire);
}
END_TEST

/* ---- log numbers ----------------------------------------------------------- */

static const struct {
    long secs;
    const char *want;
} duration_cases[] = {
    { 0, "0 seconds" },
    { 1, "1 second" },
    { 59, "59 seconds" },
    { 60, "1 minute" },
    { 3599, "59 minutes" },
    { 7200, "2 hours" },
    { 86400, "1 day" },
    { 5 * 86400 + 3600, "5 days" },
    { -10, "0 seconds" },
};

START_TEST(test_duration_text)
{
    char out[64];

    for (size_t i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
        qmgr_duration_text(duration_cases[i].secs, out, sizeof(out));
        ck_assert_msg(strcmp(out, duration_cases[i].want) == 0,
                      "case %zu: got %s want %s", i, out,
                      duration_cases[i].want);
    }
}
END_TEST

/* ---- qmgr_queue.c, with stubs for the layers around it ----------------- */

static int stub_kicks;
static struct {
    qmgr_msg_t *m;
    size_t i;
    int status;
    char reason[160];
} stub_done[64];
static size_t stub_ndone;

void qmgr_deliver_kick(qmgr_transport_t *t)
{
    (void)t;
    stub_kicks++;
}

void qmgr_deliver_transport_init(qmgr_transport_t *t)
{
    (void)t;
}

void qmgr_message_rcpt_done(qmgr_msg_t *m, size_t i, int status,
                            const char *reason)
{
    if (m->rstate[i] == QR_PENDING)
        m->npending--;
    else if (m->rstate[i] == QR_BUSY)
        m->nbusy--;
    m->rstate[i] = status == DELIVER_DEFER ? QR_DEFERRED : QR_DONE;
    if (stub_ndone < 64) {
        stub_done[stub_ndone].m = m;
        stub_done[stub_ndone].i = i;
        stub_done[stub_ndone].status = status;
        str_copy(stub_done[stub_ndone].reason, reason ? reason : "",
                 sizeof(stub_done[0].reason));
        stub_ndone++;
    }
}

/* a message with n recipients "r<K>@<domain>" */
static qmgr_msg_t *fake_msg(size_t n, const char *domain)
{
    qmgr_msg_t *m = xcalloc(1, sizeof(*m));

    m->qm.rcpts = xcalloc(n, sizeof(*m->qm.rcpts));
    m->qm.nrcpts = n;
    m->rstate = xcalloc(n, 1);
    for (size_t k = 0; k < n; k++) {
        char a[64];

        snprintf(a, sizeof(a), "r%zu@%s", k, domain);
        m->qm.rcpts[k].address = xstrdup(a);
        m->qm.rcpts[k].offset = (off_t)(100 + k);
    }
    return m;
}

static void fake_free(qmgr_msg_t *m)
{
    for (size_t k = 0; k < m->qm.nrcpts; k++)
        free(m->qm.rcpts[k].address);
    free(m->qm.rcpts);
    free(m->rstate);
    free(m);
}

static void queue_setup(const char *conf)
{
    ck_assert_int_eq(config_load_text(conf, strlen(conf), "main.conf", NULL,
                                      NULL), 0);
    stub_ndone = 0;
    stub_kicks = 0;
}

static void queue_teardown(void)
{
    qmgr_queue_free_all();
    config_free();
}

static void add_all(qmgr_msg_t *m, const char *transport, const char *nexthop)
{
    route_t r;
    const char *why = NULL;

    str_copy(r.transport, transport, sizeof(r.transport));
    str_copy(r.nexthop, nexthop, sizeof(r.nexthop));
    for (size_t k = 0; k < m->qm.nrcpts; k++)
        ck_assert(qmgr_queue_add(m, k, &r, &why));
}

START_TEST(test_queue_groups_by_recipient_limit)
{
    qmgr_msg_t *m;
    qmgr_transport_t *t;
    struct qmgr_job j1, j2, j3, j4;

    queue_setup("smtp_destination_recipient_limit = 2\n");
    m = fake_msg(5, "one.example");
    add_all(m, "smtp", "one.example");
    t = qmgr_transport_get("smtp");
    ck_assert_int_eq(m->npending, 5);
    ck_assert(stub_kicks > 0);
    ck_assert(qmgr_queue_next_job(t, &j1));
    ck_assert(qmgr_queue_next_job(t, &j2));
    ck_assert(qmgr_queue_next_job(t, &j3));
    ck_assert(!qmgr_queue_next_job(t, &j4));
    ck_assert_uint_eq(j1.n, 2);
    ck_assert_uint_eq(j1.idx[0], 0);
    ck_assert_uint_eq(j1.idx[1], 1);
    ck_assert_uint_eq(j2.n, 2);
    ck_assert_uint_eq(j2.idx[0], 2);
    ck_assert_uint_eq(j3.n, 1);
    ck_assert_uint_eq(j3.idx[0], 4);
    ck_assert_str_eq(j1.d->nexthop, "one.example");
    ck_assert_int_eq(m->npending, 0);
    ck_assert_int_eq(m->nbusy, 5);
    ck_assert_int_eq(m->rstate[4], QR_BUSY);
    ck_assert_int_eq(j1.d->busy, 3);
    qmgr_queue_job_done(&j1, QF_OK, NULL);
    qmgr_queue_job_done(&j2, QF_OK, NULL);
    qmgr_queue_job_done(&j3, QF_OK, NULL);     /* destination forgotten */
    ck_assert_uint_eq(htable_count(t->dests), 0);
    queue_teardown();
    fake_free(m);
}
END_TEST

/* round robin: one busy destination does not hold up another */
START_TEST(test_queue_round_robin)
{
    qmgr_msg_t *a[3], *b;
    qmgr_transport_t *t;
    struct qmgr_job j;
    const char *order[4];

    queue_setup("");
    for (int k = 0; k < 3; k++) {
        a[k] = fake_msg(1, "a.example");
        add_all(a[k], "smtp", "a.example");
    }
    b = fake_msg(1, "b.example");
    add_all(b, "smtp", "b.example");
    t = qmgr_transport_get("smtp");
    for (int k = 0; k < 4; k++) {
        ck_assert(qmgr_queue_next_job(t, &j));
        order[k] = j.d->nexthop;
        if (k == 0)
            ck_assert_ptr_eq(j.m, a[0]);    /* FIFO within a destination */
    }
    ck_assert_str_eq(order[0], "a.example");
    ck_assert_str_eq(order[1], "b.example");
    ck_assert_str_eq(order[2], "a.example");
    ck_assert_str_eq(order[3], "a.example");
    ck_assert(!qmgr_transport_has_work(t));
    queue_teardown();
    for (int k = 0; k < 3; k++)
        fake_free(a[k]);
    fake_free(b);
}
END_TEST

/* the window holds requests back; an ended request lets the next go */
START_TEST(test_queue_window)
{
    qmgr_msg_t *m[4];
    qmgr_transport_t *t;
    struct qmgr_job j1, j2, j3;

    queue_setup("smtp_destination_concurrency_limit = 2\n");
    for (int k = 0; k < 4; k++) {
        m[k] = fake_msg(1, "a.example");
        add_all(m[k], "smtp", "a.example");
    }
    t = qmgr_transport_get("smtp");
    ck_assert(qmgr_queue_next_job(t, &j1));
    ck_assert(qmgr_queue_next_job(t, &j2));
    ck_assert(!qmgr_queue_next_job(t, &j3));    /* at the limit */
    ck_assert(!qmgr_transport_has_work(t));
    qmgr_queue_job_done(&j1, QF_OK, NULL);
    ck_assert(qmgr_transport_has_work(t));
    ck_assert(qmgr_queue_next_job(t, &j3));
    ck_assert_ptr_eq(j3.m, m[2]);
    queue_teardown();
    for (int k = 0; k < 4; k++)
        fake_free(m[k]);
}
END_TEST

/* dest_status=dead: waiting mail deferred at once, new mail too */
START_TEST(test_queue_dead_destination)
{
    qmgr_msg_t *m1, *m2, *m3, *other;
    qmgr_transport_t *t;
    struct qmgr_job j;
    route_t r = { "smtp", "down.example" };
    const char *why = NULL;

    queue_setup("smtp_initial_destination_concurrency = 1\n"
                "minimal_backoff_time = 3600s\n");
    m1 = fake_msg(1, "down.example");
    m2 = fake_msg(2, "down.example");
    other = fake_msg(1, "up.example");
    add_all(m1, "smtp", "down.example");
    add_all(m2, "smtp", "down.example");
    add_all(other, "smtp", "up.example");
    t = qmgr_transport_get("smtp");
    ck_assert(qmgr_queue_next_job(t, &j));
    ck_assert_ptr_eq(j.m, m1);
    qmgr_queue_job_done(&j, QF_DEAD, "connect refused");
    ck_assert_uint_eq(stub_ndone, 2);           /* both of m2 */
    ck_assert_ptr_eq(stub_done[0].m, m2);
    ck_assert_int_eq(stub_done[0].status, DELIVER_DEFER);
    ck_assert_str_eq(stub_done[1].reason,
                     "delivery temporarily suspended: connect refused");
    ck_assert_int_eq(m2->npending, 0);
    m3 = fake_msg(1, "down.example");
    ck_assert(!qmgr_queue_add(m3, 0, &r, &why));
    ck_assert_str_eq(why, "delivery temporarily suspended: connect refused");
    ck_assert(qmgr_queue_next_job(t, &j));      /* the other one goes on */
    ck_assert_ptr_eq(j.m, other);
    ck_assert(!qmgr_queue_next_job(t, &j));
    qmgr_queue_job_done(&j, QF_OK, NULL);       /* up.example forgotten */
    qmgr_queue_sweep();                         /* still dead: kept */
    ck_assert_uint_eq(htable_count(t->dests), 1);
    ((qmgr_dest_t *)htable_find(t->dests, "down.example"))->dead_until = 1;
    qmgr_queue_sweep();                         /* time over: forgotten */
    ck_assert_uint_eq(htable_count(t->dests), 0);
    ck_assert_ptr_null(t->dead);
    queue_teardown();
    fake_free(m1);
    fake_free(m2);
    fake_free(m3);
    fake_free(other);
}
END_TEST

/* failures at window 1: a next hop dies, a mailbox (limit 1) does not */
START_TEST(test_queue_failed_cohort)
{
    qmgr_msg_t *m, *l;
    qmgr_transport_t *t, *lt;
    struct qmgr_job j;

    queue_setup("smtp_initial_destination_concurrency = 1\n"
                "local_initial_destination_concurrency = 1\n");
    m = fake_msg(2, "down.example");
    m->qm.nrcpts = 1;           /* one now, one later */
    add_all(m, "smtp", "down.example");
    t = qmgr_transport_get("smtp");
    ck_assert(qmgr_queue_next_job(t, &j));
    qmgr_queue_job_done(&j, QF_FAILED, "lost connection with smtp");
    ck_assert_ptr_nonnull(htable_find(t->dests, "down.example"));
    ck_assert(((qmgr_dest_t *)htable_find(t->dests, "down.example"))->dead_until != 0);
    l = fake_msg(2, "localhost");
    add_all(l, "local", "host");
    lt = qmgr_transport_get("local");
    ck_assert_uint_eq(htable_count(lt->dests), 2);  /* per recipient */
    ck_assert(qmgr_queue_next_job(lt, &j));
    ck_assert_uint_eq(j.n, 1);
    qmgr_queue_job_done(&j, QF_FAILED, "conversation with local timed out");
    ck_assert(qmgr_queue_next_job(lt, &j));         /* the other mailbox */
    qmgr_queue_job_done(&j, QF_FAILED, "conversation with local timed out");
    ck_assert_uint_eq(htable_count(lt->dests), 0);  /* none dead, forgotten */
    queue_teardown();
    m->qm.nrcpts = 2;
    fake_free(m);
    fake_free(l);
}
END_TEST

static Suite *qmgr_suite(void)
{
    Suite *s = suite_create("qmgr");
    TCase *tc = tcase_create("policy");

    tcase_add_loop_test(tc, test_destination_table, 0, sizeof(dest_cases) / sizeof(dest_cases[0]));
    tcase_add_test(tc, test_transport_limits);
    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_backoff_table);
    tcase_add_test(tc, test_backoff_sequence_grows);
    tcase_add_test(tc, test_expiry_table);
    tcase_add_loop_test(tc, test_deferred_due_table, 0,
                        sizeof(due_cases) / sizeof(due_cases[0]));
    tcase_add_test(tc, test_xport_table);
    tcase_add_test(tc, test_rcpt_domain);
    tcase_add_test(tc, test_request_build);
    tcase_add_test(tc, test_request_null_sender_no_client);
    tcase_add_test(tc, test_request_wire_roundtrip);
    tcase_add_test(tc, test_duration_text);
    suite_add_tcase(s, tc);
    tc = tcase_create("queue");
    tcase_add_test(tc, test_queue_groups_by_recipient_limit);
    tcase_add_test(tc, test_queue_round_robin);
    tcase_add_test(tc, test_queue_window);
    tcase_add_test(tc, test_queue_dead_destination);
    tcase_add_test(tc, test_queue_failed_cohort);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(qmgr_suite(), true);
}

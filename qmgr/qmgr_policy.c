/*
 * qmgr_policy - the queue manager's pure decisions: retry back-off,
 * expiry, per-transport limits, destination keys, the concurrency
 * window, the delivery request contents and the numbers in log lines. No I/O here, so tests/unit/test_qmgr.c can
 * include this file and check it table by table.
 */
#include <stdio.h>
#include <string.h>
#include "util/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_request.h"
#include "util/log.h"
#include "util/util.h"
#include "qmgr.h"

/* qmgr_backoff - wait as long as the message has waited so far, within bounds */
long qmgr_backoff(long now, long arrival, long min_backoff, long max_backoff)
{
    long age = now >= arrival ? now - arrival : 0;

    if (max_backoff < min_backoff)
        max_backoff = min_backoff;
    if (age > max_backoff)
        age = max_backoff;
    if (age < min_backoff)
        age = min_backoff;
    return age < 1 ? 1 : age;
}

/* qmgr_expired - a lifetime of 0 means: bounce at the first deferral */
bool qmgr_expired(long now, long arrival, long lifetime)
{
    if (lifetime <= 0)
        return true;
    return now >= arrival && now - arrival >= lifetime;
}

/* qmgr_deferred_due - next-attempt time reached; or further away than
   any back-off can put it (the clock went backwards since the deferral:
   waiting for the old clock to come round again could take days); or
   deferred before a flush request and not re-deferred since */
bool qmgr_deferred_due(uint64_t next_usec, uint64_t changed_usec,
                       uint64_t now_usec, uint64_t flush_usec,
                       long max_backoff)
{
    uint64_t horizon = max_backoff > 0 ? (uint64_t)max_backoff * 1000000 : 0;

    if (next_usec <= now_usec)
        return true;
    if (next_usec - now_usec > horizon + 1000000)   /* 1 s rounding slack */
        return true;
    return flush_usec != 0 && changed_usec <= flush_usec;
}

/* qmgr_rcpt_domain - text after the last '@' (domains cannot hold one) */
const char *qmgr_rcpt_domain(const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');

    return at ? at + 1 : "";
}

/* qmgr_request_build - a request for recipients idx[0..n) of m: only
   what names their records; the agent reads the envelope from the file */
void qmgr_request_build(const queue_msg_t *m, const size_t *idx, size_t n,
                        const char *transport, const char *nexthop,
                        uint64_t active_usec, attr_list_t *out)
{
    deliver_request_t req;

    memset(&req, 0, sizeof(req));
    req.queue_name = "active";
    req.queue_id = m->qid;
    req.transport = transport;
    req.nexthop = nexthop;
    req.active_usec = active_usec;
    if (n > DELIVER_MAX_RCPTS)
        n = DELIVER_MAX_RCPTS;
    for (size_t k = 0; k < n; k++) {
        req.rcpts[k].address = m->rcpts[idx[k]].address;
        req.rcpts[k].offset = (long)m->rcpts[idx[k]].offset;
    }
    req.nrcpts = n;
    deliver_request_build(&req, out);
}

/* qmgr_duration_text - largest unit that fits at least once */
void qmgr_duration_text(long seconds, char *out, size_t size)
{
    static const struct { long secs; const char *unit; } units[] = {
        { 86400, "day" }, { 3600, "hour" }, { 60, "minute" }, { 1, "second" },
    };
    long n = 0;
    size_t u;

    if (seconds < 0)
        seconds = 0;
    for (u = 0; u < sizeof(units) / sizeof(units[0]) - 1; u++)
        if (seconds >= units[u].secs)
            break;
    n = seconds / units[u].secs;
    snprintf(out, size, "%ld %s%s", n, units[u].unit, n == 1 ? "" : "s");
}

/* qmgr_transport_param - "<transport>_<suffix>", else fallback */
long qmgr_transport_param(const char *transport, const char *suffix,
                          const char *fallback, long min, long max)
{
    char name[ROUTE_TRANSPORT_MAX + 64];
    const char *v = NULL;
    long n;

    snprintf(name, sizeof(name), "%s_%s", transport, suffix);
    v = config_value_any(name);
    if (v != NULL && parse_long(v, min, max, &n) == 0)
        return n;
    if (v != NULL)
        log_warning("bad value for %s: \"%s\"; using $%s", name, v, fallback);
    v = config_value(fallback);
    if (v == NULL || parse_long(v, min, max, &n) < 0)
        n = min;
    return n;
}

void qmgr_transport_limits(const char *transport, struct qmgr_limits *out)
{
    out->concurrency = qmgr_transport_param(transport,
        "destination_concurrency_limit",
        "default_destination_concurrency_limit", 1, 10000);
    out->recipients = qmgr_transport_param(transport,
        "destination_recipient_limit", "default_destination_recipient_limit",
        1, DELIVER_MAX_RCPTS);
    out->initial = qmgr_transport_param(transport,
        "initial_destination_concurrency", "initial_destination_concurrency",
        1, 10000);
    out->cohort = qmgr_transport_param(transport,
        "destination_concurrency_failed_cohort_limit",
        "default_destination_concurrency_failed_cohort_limit", 1, 10000);
}

void qmgr_dest_key(const char *rcpt, const char *nexthop, long rcpt_limit,
                   buf_t *out)
{
    buf_reset(out);
    if (rcpt_limit <= 1)
        buf_printf(out, "%s\n", rcpt);
    buf_puts(out, nexthop);
    str_lower((char *)buf_str(out));
}

void qmgr_window_init(struct qmgr_window *w, const struct qmgr_limits *lim)
{
    w->window = lim->initial < lim->concurrency ? lim->initial
                                                : lim->concurrency;
    if (w->window < 1)
        w->window = 1;
    w->successes = w->failures = 0;
}

void qmgr_window_success(struct qmgr_window *w, const struct qmgr_limits *lim)
{
    w->failures = 0;
    if (w->window >= lim->concurrency) {
        w->window = lim->concurrency;   /* the limit may have shrunk */
        w->successes = 0;
        return;
    }
    if (++w->successes >= w->window) {
        w->window++;
        w->successes = 0;
    }
}

bool qmgr_window_failure(struct qmgr_window *w, const struct qmgr_limits *lim)
{
    w->successes = 0;
    if (w->window > 1) {
        w->window--;
        w->failures = 0;
        return false;
    }
    w->window = 1;
    return ++w->failures >= lim->cohort;
}

bool qmgr_window_open(const struct qmgr_window *w, long busy)
{
    return busy < w->window;
}

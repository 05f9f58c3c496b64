/*
 * deliver_log - Postfix-form delivery status lines (deliver_log.h).
 */
#include <stdio.h>
#include <string.h>
#include "mail/config.h"
#include "mail/deliver_log.h"
#include "util/log.h"
#include "util/util.h"

#define ADDR_LOG_MAX 300

void deliver_delay_format(uint64_t usec, char *out, size_t size)
{
    long limit = var_delay_logging_resolution_limit;
    unsigned long long scale = 1, units;
    int decimals;
    char text[48];

    if (limit < 0)
        limit = 0;
    if (limit > 6)
        limit = 6;
    /* two significant digits: decimals by magnitude, capped by limit */
    if (usec >= 10000000)
        decimals = 0;
    else if (usec >= 1000000)
        decimals = 1;
    else if (usec >= 100000)
        decimals = 2;
    else if (usec >= 10000)
        decimals = 3;
    else if (usec >= 1000)
        decimals = 4;
    else
        decimals = 5;
    if (decimals > limit)
        decimals = (int)limit;
    for (int i = 0; i < 6 - decimals; i++)
        scale *= 10;
    units = usec / scale + (usec % scale >= scale / 2);   /* no overflow */
    if (decimals == 0) {
        (void)snprintf(text, sizeof(text), "%llu", units);
    } else {
        unsigned long long div = 1;
        int d = decimals;

        for (int i = 0; i < decimals; i++)
            div *= 10;
        /* drop trailing zeros: 0.10 -> 0.1, 1.0 -> 1 */
        while (d > 0 && units % 10 == 0 && units != 0) {
            units /= 10;
            div /= 10;
            d--;
        }
        if (units == 0 || d == 0)
            (void)snprintf(text, sizeof(text), "%llu", units / (d ? div : 1));
        else
            (void)snprintf(text, sizeof(text), "%llu.%0*llu", units / div, d,
                           units % div);
    }
    str_copy(out, text, size);
}

/* span - b - a, 0 when b is before a or unknown */
static uint64_t span(uint64_t a, uint64_t b)
{
    return a != 0 && b > a ? b - a : 0;
}

void deliver_delays_text(const struct deliver_times *t, char *out,
                         size_t size)
{
    uint64_t end = t->end_usec ? t->end_usec : time_now_usec();
    uint64_t start = t->start_usec ? t->start_usec : end;
    uint64_t active = t->active_usec ? t->active_usec : start;
    uint64_t conn = t->conn_usec ? t->conn_usec : start;
    uint64_t arrival = t->arrival_usec ? t->arrival_usec : active;
    char total[24], a[24], b[24], c[24], d[24];

    if (active > start)
        active = start;
    if (conn < start)
        conn = start;
    if (conn > end)
        conn = end;
    deliver_delay_format(span(arrival, end), total, sizeof(total));
    deliver_delay_format(span(arrival, active), a, sizeof(a));
    deliver_delay_format(span(active, start), b, sizeof(b));
    deliver_delay_format(span(start, conn), c, sizeof(c));
    deliver_delay_format(span(conn, end), d, sizeof(d));
    (void)snprintf(out, size, "delay=%s, delays=%s/%s/%s/%s", total, a, b, c,
                   d);
}

void deliver_log_status(const char *qid, const char *to, const char *orig_to,
                        const char *relay, const struct deliver_times *t,
                        const char *dsn, const char *status,
                        const char *reason)
{
    char delays[160], orig[ADDR_LOG_MAX + 16] = "";

    deliver_delays_text(t, delays, sizeof(delays));
    if (orig_to != NULL && orig_to[0] != '\0' && strcmp(orig_to, to) != 0)
        (void)snprintf(orig, sizeof(orig), ", orig_to=<%.*s>", ADDR_LOG_MAX,
                       orig_to);
    log_info("%s: to=<%.*s>%s, relay=%s, %s, dsn=%s, status=%s (%s)", qid,
             ADDR_LOG_MAX, to, orig, relay, delays, dsn, status, reason);
}

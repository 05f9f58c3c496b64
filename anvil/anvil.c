/*
 * anvil - connection count and connection rate per client, one process
 * shared by every smtpd process (a reduced Postfix anvil(8)), so the
 * limits hold across all of them, not per smtpd process.
 *
 * Protocol: attribute lists (lib/util/attr.h) over private/anvil; each
 * smtpd process keeps one connection open and sends
 *   request=connect    ident=ID  -> status=0 count=N rate=M
 *   request=disconnect ident=ID  -> status=0
 *   request=auth       ident=ID  -> status=0 rate=M
 * count: connections of ID open now, this one included; rate: connects
 * of ID in the current $anvil_rate_time_unit window, this one included;
 * for auth, AUTH commands of ID in its own window of the same length.
 * ID is opaque (smtpd sends "SERVICE:ADDRESS").
 *
 * A peer's connections are remembered per peer: when an smtpd process
 * goes away (also kill -9) its stream ends and everything it still held
 * is released, so a crash leaks no counts. A peer can only release what
 * it took itself.
 *
 * Security: runs as $mail_owner on a private socket; peers are our own
 * smtpd processes, still every request is bounded and a malformed one
 * drops that peer (logged). The table is bounded (ANVIL_MAX_ENTRIES);
 * when it is full, new clients are answered count=0 rate=0 (no limit
 * rather than a refusal) and that is logged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/stream.h"
#include "util/sys.h"
#include "util/util.h"

#define ANVIL_BUCKETS      4096
#define ANVIL_MAX_ENTRIES  200000
#define ANVIL_MAX_REQUEST  4096          /* our requests are far smaller */
#define ANVIL_MAX_IDENT    300
#define ANVIL_MAX_HOLDS    100000        /* per peer */

struct anvil_entry {
    char *ident;
    long count;                 /* open connections, all peers */
    long rate;                  /* connects in the window */
    uint64_t window_start;      /* monotonic msec */
    long auth_rate;             /* AUTH commands in the auth window */
    uint64_t auth_start;        /* monotonic msec */
    struct anvil_entry *next;
};

struct anvil_hold {             /* what one peer holds of one entry */
    struct anvil_entry *entry;
    long n;
};

struct anvil_peer {
    stream_t *st;
    struct anvil_hold *holds;
    size_t nholds, cap;
    attr_list_t req, reply;
    buf_t out;
};

static struct anvil_entry *anvil_table[ANVIL_BUCKETS];
static size_t anvil_nentries;
static ev_timer_t anvil_sweep_timer;
static uint64_t anvil_full_warned;

static uint64_t anvil_unit_msec(void)
{
    return (uint64_t)var_anvil_rate_time_unit * 1000;
}

/* anvil_hash - FNV-1a */
static size_t anvil_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % ANVIL_BUCKETS;
}

/* anvil_lookup - the entry for ident, created when create is set */
static struct anvil_entry *anvil_lookup(const char *ident, bool create)
{
    size_t b = anvil_hash(ident);
    struct anvil_entry *e;

    for (e = anvil_table[b]; e; e = e->next)
        if (strcmp(e->ident, ident) == 0)
            return e;
    if (!create)
        return NULL;
    if (anvil_nentries >= ANVIL_MAX_ENTRIES) {
        if (time_mono_msec() - anvil_full_warned >= 60000 || !anvil_full_warned) {
            log_warning("table full (%d clients): not counting new ones",
                        ANVIL_MAX_ENTRIES);
            anvil_full_warned = time_mono_msec();
        }
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->ident = xstrdup(ident);
    e->next = anvil_table[b];
    anvil_table[b] = e;
    anvil_nentries++;
    return e;
}

/* anvil_sweep - forget clients with nothing open and an expired window */
static void anvil_sweep(ev_loop_t *loop, void *arg)
{
    uint64_t now = time_mono_msec();

    (void)arg;
    for (size_t b = 0; b < ANVIL_BUCKETS; b++) {
        struct anvil_entry **pp = &anvil_table[b];

        while (*pp) {
            struct anvil_entry *e = *pp;

            if (e->count <= 0 && now - e->window_start >= anvil_unit_msec()
                && now - e->auth_start >= anvil_unit_msec()) {
                *pp = e->next;
                free(e->ident);
                free(e);
                anvil_nentries--;
            } else {
                pp = &e->next;
            }
        }
    }
    ev_timer_set(loop, &anvil_sweep_timer, anvil_unit_msec());
}

static struct anvil_hold *anvil_hold_find(struct anvil_peer *p,
                                          const struct anvil_entry *e)
{
    for (size_t i = 0; i < p->nholds; i++)
        if (p->holds[i].entry == e)
            return &p->holds[i];
    return NULL;
}

/* anvil_connect - one more connection of ident, held by peer p */
static void anvil_connect(struct anvil_peer *p, const char *ident,
                          long *count, long *rate)
{
    struct anvil_entry *e = anvil_lookup(ident, true);
    struct anvil_hold *h;
    uint64_t now = time_mono_msec();

    *count = *rate = 0;
    if (e == NULL)
        return;
    if (e->rate == 0 || now - e->window_start >= anvil_unit_msec()) {
        e->window_start = now;
        e->rate = 0;
    }
    e->rate++;
    *rate = e->rate;
    h = anvil_hold_find(p, e);
    if (h == NULL) {
        if (p->nholds >= ANVIL_MAX_HOLDS) {
            *count = e->count + 1;      /* answer, but do not hold */
            return;
        }
        if (p->nholds == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 16;
            p->holds = xrealloc(p->holds, p->cap * sizeof(*p->holds));
        }
        h = &p->holds[p->nholds++];
        h->entry = e;
        h->n = 0;
    }
    h->n++;
    e->count++;
    *count = e->count;
}

/* anvil_auth - one more AUTH command of ident; its count in the window */
static long anvil_auth(const char *ident)
{
    struct anvil_entry *e = anvil_lookup(ident, true);
    uint64_t now = time_mono_msec();

    if (e == NULL)
        return 0;
    if (e->auth_rate == 0 || now - e->auth_start >= anvil_unit_msec()) {
        e->auth_start = now;
        e->auth_rate = 0;
    }
    return ++e->auth_rate;
}

/* anvil_disconnect - peer p closed one connection of ident */
static void anvil_disconnect(struct anvil_peer *p, const char *ident)
{
    struct anvil_entry *e = anvil_lookup(ident, false);
    struct anvil_hold *h = e ? anvil_hold_find(p, e) : NULL;

    if (h == NULL)
        return;                 /* not this peer's: ignore */
    e->count--;
    if (--h->n == 0)
        *h = p->holds[--p->nholds];
}

/* anvil_peer_free - the peer is gone: release what it held */
static void anvil_peer_free(struct anvil_peer *p)
{
    for (size_t i = 0; i < p->nholds; i++)
        p->holds[i].entry->count -= p->holds[i].n;
    free(p->holds);
    attr_list_free(&p->req);
    attr_list_free(&p->reply);
    buf_free(&p->out);
    free(p);
    server_conn_done();
}

/* anvil_request - one decoded request; -1 drops the peer */
static int anvil_request(struct anvil_peer *p)
{
    const char *req = attr_get(&p->req, "request");
    const char *ident = attr_get(&p->req, "ident");
    long count = 0, rate = 0;

    if (req == NULL || ident == NULL || *ident == '\0'
        || strlen(ident) > ANVIL_MAX_IDENT)
        return -1;
    attr_list_reset(&p->reply);
    if (strcmp(req, "connect") == 0) {
        anvil_connect(p, ident, &count, &rate);
        attr_add(&p->reply, "status", "0");
        attr_add_long(&p->reply, "count", count);
        attr_add_long(&p->reply, "rate", rate);
    } else if (strcmp(req, "auth") == 0) {
        attr_add(&p->reply, "status", "0");
        attr_add_long(&p->reply, "rate", anvil_auth(ident));
    } else if (strcmp(req, "disconnect") == 0) {
        anvil_disconnect(p, ident);
        attr_add(&p->reply, "status", "0");
    } else {
        return -1;
    }
    buf_reset(&p->out);
    if (attr_encode(&p->reply, &p->out) < 0)
        return -1;
    stream_write(p->st, p->out.data, p->out.len);
    return 0;
}

static void anvil_on_read(stream_t *st, void *ctx)
{
    struct anvil_peer *p = ctx;
    const char *data, *err = NULL;
    size_t n, used;
    int rc;

    while ((n = stream_peek(st, &data)) > 0) {
        rc = attr_decode(data, n, &p->req, &used, &err);
        if (rc == 0 && n < ANVIL_MAX_REQUEST)
            return;
        if (rc <= 0 || anvil_request(p) < 0) {
            log_warning("bad request from a client: %s; disconnecting",
                        rc < 0 && err ? err : "malformed");
            stream_close(st);
            anvil_peer_free(p);
            return;
        }
        stream_consume(st, used);
    }
}

static void anvil_on_close(stream_t *st, void *ctx,
                           enum stream_close_reason why)
{
    (void)st;
    (void)why;
    anvil_peer_free(ctx);
}

static const struct stream_handler anvil_handler = {
    .on_read = anvil_on_read,
    .on_close = anvil_on_close,
    .on_drain = NULL,
};

static void anvil_on_connect(ev_loop_t *loop, int fd,
                             const struct sockaddr *peer, socklen_t peerlen,
                             const struct sockaddr *local)
{
    struct anvil_peer *p = xcalloc(1, sizeof(*p));

    (void)peer;
    (void)peerlen;
    (void)local;
    attr_list_init(&p->req);
    attr_list_init(&p->reply);
    buf_init(&p->out, ANVIL_MAX_REQUEST);
    p->st = stream_new(loop, fd, ANVIL_MAX_REQUEST, 0, &anvil_handler, p);
    if (p->st == NULL) {
        log_warning("client connection: %s", strerror(errno));
        (void)close(fd);
        anvil_peer_free(p);
    }
}

static void anvil_post_init(ev_loop_t *loop)
{
    ev_timer_init(&anvil_sweep_timer, anvil_sweep, NULL);
    ev_timer_set(loop, &anvil_sweep_timer, anvil_unit_msec());
}

int main(int argc, char **argv)
{
    static struct server_ops ops;

    ops.post_init = anvil_post_init;
    ops.on_connect = anvil_on_connect;
    ops.client_limit = 100000;      /* one connection per smtpd process */
    ops.long_running = true;        /* the counts live here */
    return event_server_main(argc, argv, &ops);
}

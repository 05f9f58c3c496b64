/*
 * dns - asynchronous DNS lookups on the event loop with libunbound; see
 * dns.h for the contract.
 *
 * Life of a query: dns_lookup_*() hands the question to libunbound
 * (ub_resolve_async, answered by its resolver thread) and arms the
 * query's deadline. libunbound's callback runs inside ub_process(),
 * which we call when ub_fd is readable; it only parks the answer on the
 * context's done list, and the callers' callbacks run after ub_process
 * has returned, so a caller may start or cancel queries from its
 * callback. A query object is freed once both its caller is finished
 * with it (answered, timed out, cancelled) and libunbound is (answered,
 * or ub_cancel succeeded); until then a cancelled query is a "zombie"
 * whose late answer is dropped.
 *
 * Security: answers are parsed only through dns_name_from_wire (bounded,
 * refuses compression pointers and anything that is not a host name)
 * and address records of exactly 4 or 16 bytes.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "util/log.h"
#include "util/util.h"

#define DNS_TYPE_A     1
#define DNS_TYPE_PTR   12
#define DNS_TYPE_MX    15
#define DNS_TYPE_AAAA  28
#define DNS_CLASS_IN   1
#define DNS_RCODE_NXDOMAIN 3

struct dns_query {
    dns_ctx_t *ctx;
    struct dns_query *prev, *next;  /* ctx->queries: every live object */
    struct dns_query *done_next;    /* ctx->done: answered, not delivered */
    bool on_done;
    int ub_id;
    bool ub_pending;                /* libunbound may still call us */
    dns_cb cb;                      /* NULL: the caller is gone */
    void *arg;
    int qtype;
    ev_timer_t timer;
    int ub_err;                     /* the answer, while on the done list */
    struct ub_result *res;
};

struct dns_ctx {
    struct ub_ctx *ub;
    ev_loop_t *loop;                /* NULL until dns_ctx_attach */
    int fd;
    bool started;                   /* the resolver thread exists */
    struct dns_query *queries;
    struct dns_query *done, **done_tail;
};

/* --- helpers ------------------------------------------------------------- */

/* dns_sa_bytes - the address of sa (IPv4-mapped IPv6 as IPv4) */
static int dns_sa_bytes(const struct sockaddr *sa, const unsigned char **p,
                        int *family)
{
    if (sa->sa_family == AF_INET) {
        *p = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *p = a->s6_addr + 12;
            *family = AF_INET;
        } else {
            *p = a->s6_addr;
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

int dns_reverse_name(const struct sockaddr *sa, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *a;
    int family, n;
    size_t pos = 0;

    if (dns_sa_bytes(sa, &a, &family) < 0)
        return -1;
    if (family == AF_INET) {
        n = snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
                     a[0]);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    if (size < 64 + sizeof("ip6.arpa"))
        return -1;
    for (int i = 15; i >= 0; i--) {
        buf[pos++] = hex[a[i] & 0xf];
        buf[pos++] = '.';
        buf[pos++] = hex[a[i] >> 4];
        buf[pos++] = '.';
    }
    memcpy(buf + pos, "ip6.arpa", sizeof("ip6.arpa"));
    return 0;
}

static bool dns_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* dns_name_valid - Postfix's valid_hostname, more or less: LDH plus '_'
   (seen in the wild), no label starting or ending with '-', and a last
   label that is not all digits (so "192.0.2.1" is no name) */
bool dns_name_valid(const char *name)
{
    size_t len = strlen(name), label = 0;
    bool digits = true;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_NAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)name[i] : '.';

        if (c == '.') {
            if (label == 0 || label > 63 || name[i - 1] == '-')
                return false;
            if (i < len)
                digits = true;
            label = 0;
            continue;
        }
        if (!dns_ldh(c) || (label == 0 && c == '-'))
            return false;
        if (c < '0' || c > '9')
            digits = false;
        label++;
    }
    return !digits;
}

int dns_name_from_wire(const unsigned char *wire, size_t len, char *buf,
                       size_t size)
{
    size_t pos = 0, out = 0;

    if (size == 0)
        return -1;
    for (;;) {
        size_t l;

        if (pos >= len)
            return -1;              /* no root label */
        l = wire[pos++];
        if (l == 0)
            break;
        if (l > 63 || pos + l > len)
            return -1;              /* 0xC0 pointers land here too */
        if (out > 0) {
            if (out + 1 >= size)
                return -1;
            buf[out++] = '.';
        }
        if (out + l >= size || out + l > DNS_NAME_MAX)
            return -1;
        for (size_t i = 0; i < l; i++) {
            if (!dns_ldh(wire[pos + i]))
                return -1;
            buf[out++] = (char)wire[pos + i];
        }
        pos += l;
    }
    buf[out] = '\0';
    if (pos != len || !dns_name_valid(buf))
        return -1;
    return 0;
}

bool dns_result_has_addr(const struct dns_result *r,
                         const struct sockaddr *sa)
{
    const unsigned char *a;
    int family;
    size_t alen;

    if (r->status != DNS_OK || dns_sa_bytes(sa, &a, &family) < 0
        || family != r->family)
        return false;
    alen = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < r->naddrs; i++)
        if (memcmp(r->addrs + i * alen, a, alen) == 0)
            return true;
    return false;
}

int dns_mx_from_wire(const unsigned char *rdata, size_t len,
                     struct dns_mx *mx)
{
    if (len < 3)
        return -1;
    mx->pref = (unsigned)rdata[0] << 8 | rdata[1];
    if (len == 3 && rdata[2] == 0) {
        mx->name[0] = '\0';        /* "." : the null MX */
        return 0;
    }
    return dns_name_from_wire(rdata + 2, len - 2, mx->name, sizeof(mx->name));
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
    return n == 1 && mx[0].name[0] == '\0';
}

void dns_mx_sort(struct dns_mx *mx, size_t n, long (*rnd)(void))
{
    struct dns_mx tmp;

    if (rnd == NULL)
        rnd = random;
    /* shuffle all (Fisher-Yates), then a stable sort by preference
       keeps the random order among equals */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rnd() % i;

        tmp = mx[i - 1];
        mx[i - 1] = mx[j];
        mx[j] = tmp;
    }
    for (size_t i = 1; i < n; i++) {
        size_t j = i;

        tmp = mx[i];
        while (j > 0 && mx[j - 1].pref > tmp.pref) {
            mx[j] = mx[j - 1];
            j--;
        }
        mx[j] = tmp;
    }
}

const char *dns_status_str(enum dns_status st)
{
    switch (st) {
    case DNS_OK: return "ok";
    case DNS_NOTFOUND: return "not found";
    case DNS_TEMPFAIL: return "temporary failure";
    case DNS_TIMEOUT: return "timeout";
    case DNS_MALFORMED: return "malformed answer";
    }
    return "unknown status";
}

/* --- the context --------------------------------------------------------- */

/* dns_forwarder_valid - "ADDRESS" or "ADDRESS@PORT" */
static bool dns_forwarder_valid(const char *tok)
{
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *at = strchr(tok, '@');
    size_t alen = at != NULL ? (size_t)(at - tok) : strlen(tok);
    long port;

    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, tok, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, bin) != 1
        && inet_pton(AF_INET6, addr, bin) != 1)
        return false;
    return at == NULL || parse_long(at + 1, 1, 65535, &port) == 0;
}

dns_ctx_t *dns_ctx_new(const char *forwarders, const char *hosts_file,
                       const char **error_r)
{
    dns_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    char **tok = NULL;
    size_t ntok = 0;
    int rc;

    ctx->fd = -1;
    ctx->done_tail = &ctx->done;
    if ((ctx->ub = ub_ctx_create()) == NULL) {
        *error_r = "cannot create the resolver context";
        free(ctx);
        return NULL;
    }
    /* libunbound would write its own errors to stderr */
    (void)ub_ctx_debugout(ctx->ub, NULL);
    /* one resolver thread per process (not a forked helper process) */
    if ((rc = ub_ctx_async(ctx->ub, 1)) != 0)
        goto fail;
    if (forwarders != NULL && *forwarders != '\0') {
        ntok = str_split_list(forwarders, &tok);
        if (ntok == 0) {
            *error_r = "empty forwarder list";
            goto fail_msg;
        }
        for (size_t i = 0; i < ntok; i++) {
            if (!dns_forwarder_valid(tok[i])) {
                *error_r = "malformed forwarder (want ADDRESS or ADDRESS@PORT)";
                goto fail_msg;
            }
            if ((rc = ub_ctx_set_fwd(ctx->ub, tok[i])) != 0)
                goto fail;
        }
    } else if ((rc = ub_ctx_resolvconf(ctx->ub, NULL)) != 0) {
        goto fail;
    }
    if (hosts_file != NULL && *hosts_file != '\0'
        && (rc = ub_ctx_hosts(ctx->ub, hosts_file)) != 0)
        goto fail;
    /* unbound answers all of 127.in-addr.arpa itself (NXDOMAIN but for
       127.0.0.1): keep 127.0.0.1 = localhost and ask the resolvers for
       the rest, as the system resolver would (and the tests need) */
    if ((rc = ub_ctx_set_option(ctx->ub, "local-zone:",
                                "127.in-addr.arpa. transparent")) != 0
        || (rc = ub_ctx_set_option(ctx->ub, "local-data:",
                                   "1.0.0.127.in-addr.arpa. PTR localhost.")) != 0)
        goto fail;
    /* DNSSEC: a trust anchor (ub_ctx_add_ta_autr) goes here, for DANE */
    strv_free(tok, ntok);
    return ctx;

fail:
    *error_r = ub_strerror(rc);
fail_msg:
    strv_free(tok, ntok);
    ub_ctx_delete(ctx->ub);
    free(ctx);
    return NULL;
}

static void dns_query_free(dns_query_t *q)
{
    dns_ctx_t *ctx = q->ctx;

    if (ctx->loop != NULL)
        ev_timer_stop(ctx->loop, &q->timer);
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        ctx->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    if (q->res != NULL)
        ub_resolve_free(q->res);
    free(q);
}

/* dns_done_remove - take q off the done list (it was cancelled there) */
static void dns_done_remove(dns_query_t *q)
{
    dns_ctx_t *ctx = q->ctx;
    dns_query_t **pp = &ctx->done;

    while (*pp != NULL && *pp != q)
        pp = &(*pp)->done_next;
    if (*pp == NULL)
        return;
    *pp = q->done_next;
    if (ctx->done_tail == &q->done_next)
        ctx->done_tail = pp;
    q->on_done = false;
}

/* dns_deliver - turn libunbound's answer into a dns_result for q->cb */
static void dns_deliver(dns_query_t *q)
{
    struct dns_result r;
    struct ub_result *res = q->res;
    char name[DNS_NAME_MAX + 1];
    unsigned char *addrs = NULL;
    struct dns_mx *mx = NULL;
    dns_cb cb = q->cb;

    memset(&r, 0, sizeof(r));
    if (q->ub_err != 0 || res == NULL) {
        r.status = DNS_TEMPFAIL;
        r.error = ub_strerror(q->ub_err);
    } else if (res->bogus) {
        r.status = DNS_TEMPFAIL;
        r.error = "DNSSEC validation failed";
    } else if (res->rcode == DNS_RCODE_NXDOMAIN) {
        r.status = DNS_NOTFOUND;
        r.error = "host not found";
    } else if (res->rcode != 0) {
        r.status = DNS_TEMPFAIL;
        r.error = "name server failure";
    } else if (!res->havedata || res->data[0] == NULL) {
        r.status = DNS_NOTFOUND;
        r.error = "no data of the requested type";
    } else if (q->qtype == DNS_TYPE_PTR) {
        /* the first record only, as getnameinfo() gives one name */
        if (res->len[0] < 0
            || dns_name_from_wire((const unsigned char *)res->data[0],
                                  (size_t)res->len[0], name,
                                  sizeof(name)) < 0) {
            r.status = DNS_MALFORMED;
            r.error = "malformed host name in PTR answer";
        } else {
            r.status = DNS_OK;
            r.name = name;
        }
    } else if (q->qtype == DNS_TYPE_MX) {
        size_t n = 0, count = 0;

        while (res->data[count] != NULL)
            count++;
        mx = xcalloc(count, sizeof(*mx));
        for (size_t i = 0; i < count; i++)
            if (res->len[i] >= 0
                && dns_mx_from_wire((const unsigned char *)res->data[i],
                                    (size_t)res->len[i], &mx[n]) == 0)
                n++;
        r.nmx = n;
        r.mx = mx;
        r.status = n > 0 ? DNS_OK : DNS_MALFORMED;
        if (n == 0)
            r.error = "malformed MX record";
    } else {
        size_t alen = q->qtype == DNS_TYPE_A ? 4 : 16, n = 0, count = 0;

        while (res->data[count] != NULL)
            count++;
        addrs = xcalloc(count, alen);
        for (size_t i = 0; i < count; i++)
            if (res->len[i] == (int)alen)
                memcpy(addrs + alen * n++, res->data[i], alen);
        r.family = q->qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
        r.naddrs = n;
        r.addrs = addrs;
        r.status = n > 0 ? DNS_OK : DNS_MALFORMED;
        if (n == 0)
            r.error = "malformed address record";
    }
    r.secure = res != NULL && res->secure && r.status == DNS_OK;
    q->cb = NULL;
    cb(q->arg, &r);
    free(addrs);
    free(mx);
}

/* dns_ub_answer - libunbound's callback, inside ub_process (or inside
   ub_ctx_delete never: it drops pending queries without calling) */
static void dns_ub_answer(void *arg, int err, struct ub_result *res)
{
    dns_query_t *q = arg;
    dns_ctx_t *ctx = q->ctx;

    q->ub_pending = false;
    if (q->cb == NULL) {            /* a zombie: its caller is gone */
        if (res != NULL)
            ub_resolve_free(res);
        dns_query_free(q);
        return;
    }
    q->ub_err = err;
    q->res = res;
    q->done_next = NULL;
    q->on_done = true;
    *ctx->done_tail = q;
    ctx->done_tail = &q->done_next;
}

/* dns_on_readable - answers are waiting in libunbound's pipe */
static void dns_on_readable(ev_loop_t *loop, int fd, unsigned events,
                            void *arg)
{
    dns_ctx_t *ctx = arg;
    int rc;

    (void)loop;
    (void)fd;
    (void)events;
    if ((rc = ub_process(ctx->ub)) != 0)
        log_warning("dns: ub_process: %s", ub_strerror(rc));
    while (ctx->done != NULL) {
        dns_query_t *q = ctx->done;

        ctx->done = q->done_next;
        if (ctx->done == NULL)
            ctx->done_tail = &ctx->done;
        q->on_done = false;
        ev_timer_stop(ctx->loop, &q->timer);
        dns_deliver(q);
        dns_query_free(q);
    }
}

int dns_ctx_attach(dns_ctx_t *ctx, ev_loop_t *loop, const char **error_r)
{
    if (ctx->loop != NULL) {
        *error_r = "resolver already attached";
        return -1;
    }
    if ((ctx->fd = ub_fd(ctx->ub)) < 0) {
        *error_r = "no resolver descriptor";
        return -1;
    }
    if (ev_io_add(loop, ctx->fd, EV_READ, dns_on_readable, ctx) < 0) {
        *error_r = strerror(errno);
        return -1;
    }
    ctx->loop = loop;
    return 0;
}

void dns_ctx_free(dns_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->loop != NULL)
        ev_io_remove(ctx->loop, ctx->fd);
    ub_ctx_delete(ctx->ub);          /* joins the thread; no more callbacks */
    while (ctx->queries != NULL)
        dns_query_free(ctx->queries);
    free(ctx);
}

/* dns_query_timeout - the deadline passed: cancel, tell the caller */
static void dns_query_timeout(ev_loop_t *loop, void *arg)
{
    dns_query_t *q = arg;
    struct dns_result r;
    dns_cb cb = q->cb;
    void *cbarg = q->arg;

    (void)loop;
    if (q->ub_pending && ub_cancel(q->ctx->ub, q->ub_id) == 0)
        q->ub_pending = false;
    q->cb = NULL;                   /* a late answer finds no caller */
    memset(&r, 0, sizeof(r));
    r.status = DNS_TIMEOUT;
    r.error = "lookup timed out";
    if (!q->ub_pending)
        dns_query_free(q);
    if (cb != NULL)
        cb(cbarg, &r);
}

/* dns_submit - start one question */
static dns_query_t *dns_submit(dns_ctx_t *ctx, const char *name, int qtype,
                               uint64_t timeout_msec, dns_cb cb, void *arg,
                               const char **error_r)
{
    dns_query_t *q;
    sigset_t all, old;
    int rc, perr;

    if (ctx->loop == NULL) {
        *error_r = "resolver not attached to the event loop";
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->ctx = ctx;
    q->cb = cb;
    q->arg = arg;
    q->qtype = qtype;
    ev_timer_init(&q->timer, dns_query_timeout, q);
    /* the first query creates libunbound's thread: it must inherit a
       mask that keeps every signal for the loop's signalfd */
    if (!ctx->started) {
        (void)sigfillset(&all);
        if ((perr = pthread_sigmask(SIG_BLOCK, &all, &old)) != 0) {
            *error_r = strerror(perr);
            free(q);
            return NULL;
        }
    }
    rc = ub_resolve_async(ctx->ub, name, qtype, DNS_CLASS_IN, q,
                          dns_ub_answer, &q->ub_id);
    if (!ctx->started) {
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        ctx->started = rc == 0;
    }
    if (rc != 0) {
        *error_r = ub_strerror(rc);
        free(q);
        return NULL;
    }
    q->ub_pending = true;
    q->next = ctx->queries;
    if (q->next != NULL)
        q->next->prev = q;
    ctx->queries = q;
    ev_timer_set(ctx->loop, &q->timer, timeout_msec > 0 ? timeout_msec : 1);
    return q;
}

dns_query_t *dns_lookup_ptr(dns_ctx_t *ctx, const struct sockaddr *sa,
                            uint64_t timeout_msec, dns_cb cb, void *arg,
                            const char **error_r)
{
    char name[DNS_REVERSE_MAX];

    if (dns_reverse_name(sa, name, sizeof(name)) < 0) {
        *error_r = "not an IP address";
        return NULL;
    }
    return dns_submit(ctx, name, DNS_TYPE_PTR, timeout_msec, cb, arg,
                      error_r);
}

dns_query_t *dns_lookup_addr(dns_ctx_t *ctx, const char *name, int family,
                             uint64_t timeout_msec, dns_cb cb, void *arg,
                             const char **error_r)
{
    if (!dns_name_valid(name)) {
        *error_r = "not a host name";
        return NULL;
    }
    if (family != AF_INET && family != AF_INET6) {
        *error_r = "unsupported address family";
        return NULL;
    }
    return dns_submit(ctx, name, family == AF_INET ? DNS_TYPE_A
                                                   : DNS_TYPE_AAAA,
                      timeout_msec, cb, arg, error_r);
}

dns_query_t *dns_lookup_mx(dns_ctx_t *ctx, const char *name,
                           uint64_t timeout_msec, dns_cb cb, void *arg,
                           const char **error_r)
{
    if (!dns_name_valid(name)) {
        *error_r = "not a domain name";
        return NULL;
    }
    return dns_submit(ctx, name, DNS_TYPE_MX, timeout_msec, cb, arg,
                      error_r);
}

void dns_cancel(dns_query_t *q)
{
    if (q == NULL || q->cb == NULL)
        return;
    q->cb = NULL;
    ev_timer_stop(q->ctx->loop, &q->timer);
    if (q->on_done) {
        dns_done_remove(q);
        dns_query_free(q);
        return;
    }
    if (q->ub_pending && ub_cancel(q->ctx->ub, q->ub_id) == 0)
        q->ub_pending = false;
    if (!q->ub_pending)
        dns_query_free(q);
    /* else a zombie until libunbound answers (dns_ub_answer frees it) */
}

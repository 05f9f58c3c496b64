/*
 * dict_proxy - proxy: tables and the system-user lookup over
 * private/proxymap (dict_proxy.h). One blocking connection per process,
 * every request bounded by $proxymap_timeout.
 *
 * Security: proxymap's replies are decoded strictly (proxy_proto.h); a
 * malformed reply drops the connection and fails the lookup temporarily.
 */
#include "dict_proxy.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "proxy_proto.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define DICT_PROXY_CONNECT_RETRY_MSEC 50

#define DICT_PROXY_WARN_MSEC 1000

struct dict_proxy {
    char *spec;
    uint64_t warned_ms;     /* last tempfail warning, at most one a second */
    bool warned;
};

static bool proxy_all;
static char *proxy_socket;
static int proxy_fd = -1;
static buf_t proxy_in;

void dict_proxy_set_all(bool on)
{
    proxy_all = on;
}

bool dict_proxy_all(void)
{
    return proxy_all;
}

/* proxy_disconnect - forget the connection (and any unread input) */
static void proxy_disconnect(void)
{
    if (proxy_fd >= 0)
        (void)close(proxy_fd);
    proxy_fd = -1;
    buf_free(&proxy_in);
}

void dict_proxy_set_socket(const char *path)
{
    proxy_disconnect();
    free(proxy_socket);
    proxy_socket = path ? xstrdup(path) : NULL;
}

static int proxy_timeout(void)
{
    return var_proxymap_timeout > 0 ? (int)var_proxymap_timeout : 10;
}

/* proxy_connect - connect within the timeout; a full backlog (master is
   starting a proxymap process) is retried until then. 0 ok, -1 errno */
static int proxy_connect(void)
{
    const char *path = proxy_socket ? proxy_socket : DICT_PROXY_SOCKET;
    uint64_t deadline = time_mono_msec() + (uint64_t)proxy_timeout() * 1000;

    for (;;) {
        bool in_progress = false;
        int fd = unix_connect_nonblock(path, &in_progress);

        if (fd >= 0 && !in_progress) {
            proxy_fd = fd;
            buf_init(&proxy_in, ATTR_MAX_MSG * 2);
            return 0;
        }
        if (fd >= 0) {
            (void)close(fd);
            errno = EAGAIN;
        }
        if (errno != EAGAIN || time_mono_msec() >= deadline)
            return -1;
        (void)poll(NULL, 0, DICT_PROXY_CONNECT_RETRY_MSEC);
    }
}

/* proxy_call - one request, one reply; 0 ok, -1 failure (logged) */
static int proxy_call(const struct proxy_request *rq, struct proxy_reply *rp)
{
    attr_list_t req, reply;
    const char *err = NULL;
    int ret = -1;

    attr_list_init(&req);
    attr_list_init(&reply);
    if (proxy_request_encode(rq, &req, &err) < 0) {
        log_warning("proxymap request for %s: %s",
                    rq->table[0] ? rq->table : "local users", err);
        goto out;
    }
    /* a kept connection may have been closed by proxymap (idle, max_use,
       restart): then, and only then, try once more on a new one */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = proxy_fd < 0;
        int r;

        if (fresh && proxy_connect() < 0) {
            log_warning("connect to %s: %s",
                        proxy_socket ? proxy_socket : DICT_PROXY_SOCKET,
                        strerror(errno));
            goto out;
        }
        err = NULL;
        if (attr_write_fd(proxy_fd, &req, proxy_timeout()) < 0) {
            int saved = errno;

            proxy_disconnect();
            if (!fresh && saved != ETIMEDOUT)
                continue;
            log_warning("proxymap: write: %s", strerror(saved));
            goto out;
        }
        r = attr_read_fd(proxy_fd, &proxy_in, &reply, proxy_timeout(), &err);
        if (r == 1)
            break;
        {
            int saved = errno;

            proxy_disconnect();
            if (!fresh && (r == 0 || saved != ETIMEDOUT))
                continue;
            log_warning("proxymap: %s", r == 0 ? "connection closed"
                                              : err ? err : "read error");
            goto out;
        }
    }
    if (proxy_fd < 0) {
        log_warning("proxymap: connection closed");
        goto out;
    }
    if (proxy_reply_decode(&reply, rp, &err) < 0) {
        log_warning("proxymap: malformed reply: %s", err);
        proxy_disconnect();
        goto out;
    }
    ret = 0;
out:
    attr_list_free(&req);
    attr_list_free(&reply);
    return ret;
}

/* proxy_result - a reply as dict_lookup's 1 / 0 / -1 */
static int proxy_result(const char *what, const struct proxy_reply *rp,
                        buf_t *value)
{
    switch (rp->status) {
    case PROXY_STATUS_FOUND:
        buf_reset(value);
        if (buf_puts(value, rp->value) < 0) {
            log_warning("%s: value too large", what);
            return -1;
        }
        return 1;
    case PROXY_STATUS_NOTFOUND:
        return 0;
    case PROXY_STATUS_DENIED:
        log_warning("%s: proxymap refused the table (add it to "
                    "proxy_read_maps)", what);
        return -1;
    case PROXY_STATUS_TEMPFAIL:
        break;
    }
    return -1;
}

struct dict_proxy *dict_proxy_open(const char *spec, const char **error_r)
{
    struct dict_proxy *p;

    if (strncmp(spec, "proxy:", 6) == 0) {
        *error_r = "proxy: of a proxy: table";
        return NULL;
    }
    if (strlen(spec) > PROXY_TABLE_MAX || strchr(spec, ':') == NULL) {
        *error_r = "bad table name for proxy:";
        return NULL;
    }
    p = xcalloc(1, sizeof(*p));
    p->spec = xstrdup(spec);
    return p;
}

int dict_proxy_lookup(struct dict_proxy *p, const char *key, buf_t *value)
{
    struct proxy_request rq;
    struct proxy_reply rp;

    if (*key == '\0' || strlen(key) > PROXY_KEY_MAX)
        return 0;       /* no table stores such keys */
    for (const unsigned char *c = (const unsigned char *)key; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;   /* nor these (the protocol refuses them) */
    memset(&rq, 0, sizeof(rq));
    rq.type = PROXY_REQ_LOOKUP;
    (void)str_copy(rq.table, p->spec, sizeof(rq.table));
    (void)str_copy(rq.key, key, sizeof(rq.key));
    if (proxy_call(&rq, &rp) < 0)
        return -1;
    if (rp.status == PROXY_STATUS_TEMPFAIL) {
        uint64_t now = time_mono_msec();

        /* the reason is in proxymap's log; say here that it mattered */
        if (!p->warned || now - p->warned_ms >= DICT_PROXY_WARN_MSEC)
            log_warning("%s: lookup of %s failed temporarily in proxymap "
                        "(its warnings say why)", p->spec, key);
        p->warned = true;
        p->warned_ms = now;
    }
    return proxy_result(p->spec, &rp, value);
}

void dict_proxy_close(struct dict_proxy *p)
{
    if (p == NULL)
        return;
    free(p->spec);
    free(p);
}

int dict_proxy_local_user(const char *name, buf_t *value)
{
    struct proxy_request rq;
    struct proxy_reply rp;

    if (*name == '\0' || strlen(name) > PROXY_KEY_MAX)
        return 0;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    memset(&rq, 0, sizeof(rq));
    rq.type = PROXY_REQ_LOCAL_USER;
    (void)str_copy(rq.key, name, sizeof(rq.key));
    if (proxy_call(&rq, &rp) < 0)
        return -1;
    return proxy_result("local users", &rp, value);
}

int dict_proxy_local_login(unsigned long uid, buf_t *value)
{
    struct proxy_request rq;
    struct proxy_reply rp;

    memset(&rq, 0, sizeof(rq));
    rq.type = PROXY_REQ_LOCAL_LOGIN;
    (void)snprintf(rq.key, sizeof(rq.key), "%lu", uid);
    if (proxy_call(&rq, &rp) < 0)
        return -1;
    return proxy_result("local logins", &rp, value);
}

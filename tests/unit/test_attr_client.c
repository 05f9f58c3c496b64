/* Unit tests for lib/util/attr_client.c: a scripted server on a UNIX
   socket in a temporary directory, driven by the same loop as the client. */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "util/attr.h"
#include "util/attr_client.h"
#include "util/buf.h"
#include "util/events.h"
#include "util/util.h"

/* generous bound for waiting on a condition; never asserted as a duration */
#define WAIT_MSEC 20000

/* what the server does with a request */
enum srv_action {
    SRV_REPLY,          /* status=ok, echo=<the request's n> */
    SRV_HALF_CLOSE,     /* part of a reply, then close */
    SRV_GARBAGE,        /* an invalid attribute name */
    SRV_OVERSIZE,       /* a well-formed reply over ATTR_MAX_MSG */
    SRV_SILENT,         /* never answer */
    SRV_EXTRA,          /* a reply followed by more bytes */
};

struct srv {
    ev_loop_t *loop;
    int lfd;
    int fd;
    enum srv_action action;
    buf_t in;
    buf_t out;
    int accepted;
    int requests;
    int closed;
    bool close_after_write;
    char dir[64];
    char path[96];
};

static void srv_io(ev_loop_t *loop, int fd, unsigned events, void *arg);

static void srv_close(struct srv *s)
{
    if (s->fd >= 0) {
        ev_io_remove(s->loop, s->fd);
        close(s->fd);
        s->fd = -1;
        s->closed++;
    }
}

static void srv_flush(struct srv *s)
{
    while (s->out.len > 0) {
        ssize_t n = send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {            /* the client gave up on us */
            srv_close(s);
            return;
        }
        buf_consume(&s->out, (size_t)n);
    }
    if (s->out.len == 0 && s->close_after_write) {
        srv_close(s);
        return;
    }
    ck_assert_int_eq(ev_io_modify(s->loop, s->fd,
                                  EV_READ | (s->out.len ? EV_WRITE : 0u)), 0);
}

static void srv_answer(struct srv *s, const attr_list_t *req)
{
    attr_list_t rep;

    s->requests++;
    attr_list_init(&rep);
    switch (s->action) {
    case SRV_REPLY:
    case SRV_EXTRA:
    case SRV_HALF_CLOSE:
        attr_add(&rep, "status", "ok");
        attr_add(&rep, "echo", attr_get(req, "n") ? attr_get(req, "n") : "");
        ck_assert_int_eq(attr_encode(&rep, &s->out), 0);
        if (s->action == SRV_EXTRA)
            ck_assert_int_eq(buf_append(&s->out, "x", 1), 0);
        if (s->action == SRV_HALF_CLOSE) {
            buf_truncate(&s->out, s->out.len - 3);
            s->close_after_write = true;
        }
        break;
    case SRV_GARBAGE:
        ck_assert_int_eq(buf_append(&s->out, "Bad\0x\0\0", 7), 0);
        break;
    case SRV_OVERSIZE: {
        char *big = xmalloc(60000 + 1);
        memset(big, 'v', 60000);
        big[60000] = '\0';
        for (int i = 0; i < 6; i++)
            attr_add(&rep, "v", big);
        free(big);
        /* attr_encode refuses to break the limit: build it by hand */
        for (size_t i = 0; i < rep.count; i++) {
            ck_assert_int_eq(buf_append(&s->out, "v", 2), 0);
            ck_assert_int_eq(buf_append(&s->out, rep.items[i].value,
                                        strlen(rep.items[i].value) + 1), 0);
        }
        ck_assert_int_eq(buf_append(&s->out, "", 1), 0);
        break;
    }
    case SRV_SILENT:
        break;
    }
    attr_list_free(&rep);
    srv_flush(s);
}

static void srv_io(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct srv *s = arg;
    char chunk[4096];
    (void)loop;
    (void)fd;

    if (events & EV_WRITE) {
        srv_flush(s);
        if (s->fd < 0)
            return;
    }
    if (!(events & (EV_READ | EV_ERROR)))
        return;
    ssize_t n = read(s->fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        srv_close(s);
        return;
    }
    ck_assert_int_eq(buf_append(&s->in, chunk, (size_t)n), 0);
    for (;;) {
        attr_list_t req;
        const char *err = NULL;
        size_t used = 0;

        attr_list_init(&req);
        int r = attr_decode(s->in.data, s->in.len, &req, &used, &err);
        ck_assert_int_ge(r, 0);
        if (r == 0) {
            attr_list_free(&req);
            return;
        }
        buf_consume(&s->in, used);
        srv_answer(s, &req);
        attr_list_free(&req);
        if (s->fd < 0)
            return;
    }
}

static void srv_accept(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct srv *s = arg;
    (void)events;

    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    ck_assert_int_lt(s->fd, 0);     /* these tests use one connection */
    s->fd = c;
    s->accepted++;
    ck_assert_int_eq(ev_io_add(loop, c, EV_READ, srv_io, s), 0);
}

/* srv_start - listen on DIR/sock; with on_loop false nothing accepts
   (the test accepts by hand) */
static void srv_start(struct srv *s, ev_loop_t *loop, enum srv_action action,
                      bool on_loop)
{
    struct sockaddr_un sun;

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->fd = -1;
    s->action = action;
    buf_init(&s->in, 0);
    buf_init(&s->out, 0);
    snprintf(s->dir, sizeof(s->dir), "/tmp/tern-aclient.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", s->path);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(s->lfd, 8), 0);
    if (on_loop)
        ck_assert_int_eq(ev_io_add(loop, s->lfd, EV_READ, srv_accept, s), 0);
}

/* srv_start_tcp - the same on 127.0.0.1 (an ephemeral port, in *sin),
   with a listen backlog of backlog */
static void srv_start_tcp(struct srv *s, ev_loop_t *loop,
                          enum srv_action action, bool on_loop, int backlog,
                          struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->fd = -1;
    s->action = action;
    buf_init(&s->in, 0);
    buf_init(&s->out, 0);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    ck_assert_int_eq(listen(s->lfd, backlog), 0);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)sin, &len), 0);
    if (on_loop)
        ck_assert_int_eq(ev_io_add(loop, s->lfd, EV_READ, srv_accept, s), 0);
}

static void srv_stop(struct srv *s)
{
    srv_close(s);
    ev_io_remove(s->loop, s->lfd);
    close(s->lfd);
    if (s->path[0] != '\0') {
        unlink(s->path);
        rmdir(s->dir);
    }
    buf_free(&s->in);
    buf_free(&s->out);
}

/* ---- the client side --------------------------------------------------- */

struct outcome {
    int replies;            /* reply callbacks */
    int error;
    char reason[256];
    char echo[64];
    int closes;             /* on_close callbacks */
    int close_error;
    char close_reason[256];
    bool free_in_callback;
    int chain;              /* requests still to send from the callback */
    attr_client_t *c;
};

static int client_ask(attr_client_t *c, const char *n, unsigned timeout_msec,
                      struct outcome *o);

static bool in_request;     /* inside attr_client_request() */

static void on_reply(attr_client_t *c, int error, const char *reason,
                     const attr_list_t *reply, void *arg)
{
    struct outcome *o = arg;

    ck_assert_msg(!in_request, "callback from inside attr_client_request");
    o->replies++;
    o->error = error;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    if (error == ATTR_CLIENT_OK) {
        ck_assert_ptr_nonnull(reply);
        ck_assert_str_eq(attr_get(reply, "status"), "ok");
        snprintf(o->echo, sizeof(o->echo), "%s", attr_get(reply, "echo"));
    } else {
        ck_assert_ptr_null(reply);
        ck_assert(!attr_client_idle(c));
    }
    if (o->free_in_callback) {
        attr_client_free(c);
        o->c = NULL;
    }
    if (o->chain > 0 && error == ATTR_CLIENT_OK) {
        o->chain--;
        ck_assert_int_eq(client_ask(c, "chained", WAIT_MSEC, o), 0);
    }
}

static void on_close(attr_client_t *c, int error, const char *reason,
                     void *arg)
{
    struct outcome *o = arg;

    ck_assert_msg(!in_request, "callback from inside attr_client_request");
    ck_assert(!attr_client_idle(c));
    o->closes++;
    o->close_error = error;
    snprintf(o->close_reason, sizeof(o->close_reason), "%s", reason);
}

static attr_client_t *client_open(ev_loop_t *loop, struct srv *s,
                                  struct outcome *o, unsigned idle_msec)
{
    attr_client_opts_t opts = { .connect_timeout_msec = 5000,
                                .idle_timeout_msec = idle_msec,
                                .on_close = on_close, .arg = o };
    attr_client_t *c = attr_client_connect_unix(loop, s->path, &opts);

    ck_assert_ptr_nonnull(c);
    o->c = c;
    return c;
}

static int client_ask(attr_client_t *c, const char *n, unsigned timeout_msec,
                      struct outcome *o)
{
    attr_list_t req;
    int r;

    attr_list_init(&req);
    attr_add(&req, "request", "test");
    attr_add(&req, "n", n);
    in_request = true;
    r = attr_client_request(c, &req, timeout_msec, on_reply, o);
    in_request = false;
    attr_list_free(&req);
    return r;
}

/* run_until - run the loop until *counter reaches want (or give up) */
static void run_until(ev_loop_t *loop, const int *counter, int want)
{
    uint64_t give_up = time_mono_msec() + WAIT_MSEC;

    while (*counter < want && time_mono_msec() < give_up)
        ck_assert_int_ge(ev_loop_run_once(loop, 100), 0);
    ck_assert_int_ge(*counter, want);
}

/* one request with action; returns the reply error */
static int ask_once(enum srv_action action, struct outcome *o)
{
    ev_loop_t *loop = ev_loop_new();
    struct srv s;

    srv_start(&s, loop, action, true);
    attr_client_t *c = client_open(loop, &s, o, 0);
    ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, o), 0);
    ck_assert_int_eq(o->replies, 0);
    run_until(loop, &o->replies, 1);
    attr_client_free(o->c);
    srv_stop(&s);
    ev_loop_free(loop);
    return o->error;
}

START_TEST(test_request_reply)
{
    struct outcome o = { 0 };

    ck_assert_int_eq(ask_once(SRV_REPLY, &o), ATTR_CLIENT_OK);
    ck_assert_int_eq(o.replies, 1);
    ck_assert_str_eq(o.echo, "1");
    ck_assert_str_eq(o.reason, "");
    ck_assert_int_eq(o.closes, 0);
}
END_TEST

START_TEST(test_two_requests_one_connection)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct srv s;

    srv_start(&s, loop, SRV_REPLY, true);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    ck_assert(attr_client_idle(c));
    ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, &o), 0);
    ck_assert(!attr_client_idle(c));
    /* one request in flight at a time */
    ck_assert_int_eq(client_ask(c, "x", WAIT_MSEC, &o), -1);
    ck_assert_int_eq(errno, EBUSY);
    run_until(loop, &o.replies, 1);
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "1");
    ck_assert(attr_client_idle(c));
    ck_assert_int_eq(client_ask(c, "2", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 2);
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "2");
    ck_assert_int_eq(s.accepted, 1);
    ck_assert_int_eq(s.requests, 2);
    ck_assert_int_eq(o.closes, 0);
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_request_from_reply_callback)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { .chain = 2 };
    struct srv s;

    srv_start(&s, loop, SRV_REPLY, true);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 3);
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "chained");
    ck_assert_int_eq(s.requests, 3);
    ck_assert_int_eq(s.accepted, 1);
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_server_closes_mid_reply)
{
    struct outcome o = { 0 };

    ck_assert_int_eq(ask_once(SRV_HALF_CLOSE, &o), ATTR_CLIENT_LOST);
    ck_assert_str_eq(o.reason, "unexpected end of input");
    ck_assert_int_eq(o.closes, 0);
}
END_TEST

START_TEST(test_garbage_reply)
{
    struct outcome o = { 0 };

    ck_assert_int_eq(ask_once(SRV_GARBAGE, &o), ATTR_CLIENT_MALFORMED);
    ck_assert_msg(strncmp(o.reason, "malformed reply: ", 17) == 0, "%s",
                  o.reason);
}
END_TEST

START_TEST(test_oversize_reply)
{
    struct outcome o = { 0 };

    ck_assert_int_eq(ask_once(SRV_OVERSIZE, &o), ATTR_CLIENT_TOO_LARGE);
    ck_assert_str_eq(o.reason, "reply too large");
}
END_TEST

START_TEST(test_data_after_reply)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct srv s;

    srv_start(&s, loop, SRV_EXTRA, true);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    ck_assert_int_eq(client_ask(c, "7", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 1);
    /* the reply itself counts; the connection does not survive */
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "7");
    ck_assert(!attr_client_idle(c));
    run_until(loop, &o.closes, 1);
    ck_assert_int_eq(o.close_error, ATTR_CLIENT_UNEXPECTED);
    ck_assert_int_eq(client_ask(c, "8", WAIT_MSEC, &o), -1);
    ck_assert_int_eq(errno, ENOTCONN);
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_reply_deadline)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct srv s;

    srv_start(&s, loop, SRV_SILENT, true);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    uint64_t start = time_mono_msec();
    ck_assert_int_eq(client_ask(c, "1", 200, &o), 0);
    run_until(loop, &o.replies, 1);
    ck_assert_int_eq(o.error, ATTR_CLIENT_TIMEOUT);
    ck_assert_uint_ge(time_mono_msec() - start, 200);   /* never early */
    ck_assert_int_eq(s.requests, 1);
    ck_assert_int_eq(o.closes, 0);
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_idle_close_and_peer_close)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct srv s;

    srv_start(&s, loop, SRV_REPLY, true);
    attr_client_t *c = client_open(loop, &s, &o, 100);
    /* the idle clock restarts when the reply arrives, after this */
    uint64_t start = time_mono_msec();
    ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 1);
    run_until(loop, &o.closes, 1);
    ck_assert_int_eq(o.close_error, ATTR_CLIENT_IDLE);
    ck_assert_uint_ge(time_mono_msec() - start, 100);
    attr_client_free(c);
    run_until(loop, &s.closed, 1);

    /* the server goes away between requests: closed quietly */
    struct outcome o2 = { 0 };
    c = client_open(loop, &s, &o2, 0);
    ck_assert_int_eq(client_ask(c, "2", WAIT_MSEC, &o2), 0);
    run_until(loop, &o2.replies, 1);
    ck_assert_int_eq(o2.error, ATTR_CLIENT_OK);
    srv_close(&s);
    run_until(loop, &o2.closes, 1);
    ck_assert_int_eq(o2.close_error, ATTR_CLIENT_EOF);
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_connect_missing_socket)
{
    ev_loop_t *loop = ev_loop_new();
    char dir[] = "/tmp/tern-aclient.XXXXXX";
    char path[96];
    struct outcome o = { 0 };
    attr_client_opts_t opts = { .on_close = on_close, .arg = &o };

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/nothing", dir);
    errno = 0;
    ck_assert_ptr_null(attr_client_connect_unix(loop, path, &opts));
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(ev_loop_run_once(loop, 0), 0);
    ck_assert_int_eq(o.closes, 0);
    rmdir(dir);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_error_in_request_is_deferred)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { .free_in_callback = true };
    struct srv s;

    /* the server takes the connection and drops it before the request:
       the write inside attr_client_request fails, the callback must wait
       for the loop */
    srv_start(&s, loop, SRV_REPLY, false);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    int fd = accept(s.lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, &o), 0);
    ck_assert_int_eq(o.replies, 0);
    run_until(loop, &o.replies, 1);
    ck_assert_int_eq(o.error, ATTR_CLIENT_LOST);
    ck_assert_ptr_null(o.c);    /* freed inside the callback */
    ck_assert_int_eq(o.closes, 0);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_free_in_reply_callback)
{
    struct outcome o = { .free_in_callback = true };

    ck_assert_int_eq(ask_once(SRV_REPLY, &o), ATTR_CLIENT_OK);
    ck_assert_ptr_null(o.c);
    ck_assert_int_eq(o.closes, 0);
}
END_TEST

START_TEST(test_request_too_large)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct srv s;
    attr_list_t req;
    char *big = xmalloc(ATTR_MAX_VALUE + 2);

    srv_start(&s, loop, SRV_REPLY, true);
    attr_client_t *c = client_open(loop, &s, &o, 0);
    memset(big, 'v', ATTR_MAX_VALUE + 1);
    big[ATTR_MAX_VALUE + 1] = '\0';
    attr_list_init(&req);
    attr_add(&req, "v", big);
    free(big);
    in_request = true;
    ck_assert_int_eq(attr_client_request(c, &req, 0, on_reply, &o), -1);
    in_request = false;
    ck_assert_int_eq(errno, EMSGSIZE);
    attr_list_free(&req);
    /* still usable */
    ck_assert(attr_client_idle(c));
    ck_assert_int_eq(client_ask(c, "3", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 1);
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "3");
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_tcp_request_reply)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct sockaddr_in sin;
    struct srv s;
    attr_client_opts_t opts = { .connect_timeout_msec = WAIT_MSEC,
                                .on_close = on_close, .arg = &o };

    srv_start_tcp(&s, loop, SRV_REPLY, true, 8, &sin);
    attr_client_t *c = attr_client_connect_addr(loop, (struct sockaddr *)&sin,
                                                sizeof(sin), &opts);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(client_ask(c, "5", WAIT_MSEC, &o), 0);
    run_until(loop, &o.replies, 1);
    ck_assert_int_eq(o.error, ATTR_CLIENT_OK);
    ck_assert_str_eq(o.echo, "5");
    attr_client_free(c);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_tcp_connect_refused)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    attr_client_opts_t opts = { .on_close = on_close, .arg = &o };

    /* a port that is ours (bound) but not listening: refused, and no
       other program can start listening on it meanwhile */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    attr_client_t *c = attr_client_connect_addr(loop, (struct sockaddr *)&sin,
                                                sizeof(sin), &opts);
    if (c == NULL) {
        ck_assert_int_eq(errno, ECONNREFUSED);
    } else {
        /* refused from the loop */
        ck_assert_int_eq(client_ask(c, "1", WAIT_MSEC, &o), 0);
        run_until(loop, &o.replies, 1);
        ck_assert_int_eq(o.error, ATTR_CLIENT_CONNECT);
        ck_assert_str_eq(o.reason, "connect: Connection refused");
        attr_client_free(c);
    }
    close(fd);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_tcp_connect_timeout)
{
    ev_loop_t *loop = ev_loop_new();
    struct outcome o = { 0 };
    struct sockaddr_in sin;
    struct srv s;
    int fillers[8];
    attr_client_opts_t opts = { .connect_timeout_msec = 300,
                                .on_close = on_close, .arg = &o };

    /* nobody accepts and the backlog is full: the kernel drops our SYN,
       so the connect stays in progress */
    srv_start_tcp(&s, loop, SRV_REPLY, false, 0, &sin);
    for (size_t i = 0; i < sizeof(fillers) / sizeof(fillers[0]); i++) {
        bool pending;
        fillers[i] = sockaddr_connect_nonblock((struct sockaddr *)&sin,
                                               sizeof(sin), &pending);
    }
    uint64_t start = time_mono_msec();
    attr_client_t *c = attr_client_connect_addr(loop, (struct sockaddr *)&sin,
                                                sizeof(sin), &opts);
    ck_assert_ptr_nonnull(c);
    run_until(loop, &o.closes, 1);
    ck_assert_int_eq(o.close_error, ATTR_CLIENT_CONNECT);
    ck_assert_str_eq(o.close_reason, "connect timed out after 300 ms");
    ck_assert_uint_ge(time_mono_msec() - start, 300);
    ck_assert(!attr_client_idle(c));
    attr_client_free(c);
    for (size_t i = 0; i < sizeof(fillers) / sizeof(fillers[0]); i++)
        if (fillers[i] >= 0)
            close(fillers[i]);
    srv_stop(&s);
    ev_loop_free(loop);
}
END_TEST

static Suite *attr_client_suite(void)
{
    Suite *s = suite_create("attr_client");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_request_reply);
    tcase_add_test(tc, test_two_requests_one_connection);
    tcase_add_test(tc, test_request_from_reply_callback);
    tcase_add_test(tc, test_server_closes_mid_reply);
    tcase_add_test(tc, test_garbage_reply);
    tcase_add_test(tc, test_oversize_reply);
    tcase_add_test(tc, test_data_after_reply);
    tcase_add_test(tc, test_reply_deadline);
    tcase_add_test(tc, test_idle_close_and_peer_close);
    tcase_add_test(tc, test_connect_missing_socket);
    tcase_add_test(tc, test_error_in_request_is_deferred);
    tcase_add_test(tc, test_free_in_reply_callback);
    tcase_add_test(tc, test_request_too_large);
    tcase_add_test(tc, test_tcp_request_reply);
    tcase_add_test(tc, test_tcp_connect_refused);
    tcase_add_test(tc, test_tcp_connect_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(attr_client_suite(), true);
}

/*
 * test_dict_proxy - unit tests for the proxy: table type (lib/mail/
 * dict_proxy.c) against a fake proxymap in a child process: found / not
 * found / refused tables, lmdb: tables turned into proxy: ones by
 * dict_proxy_set_all, the local_user request, reconnecting once when
 * proxymap closed a kept connection, and temporary failures (no
 * proxymap, a silent one, a malformed reply).
 */
#include <check.h>

#include "check_main.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_proxy.h"
#include "mail/proxy_proto.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/util.h"

enum fake_mode {
    FAKE_GOOD,          /* answer every request on a connection */
    FAKE_ONE_SHOT,      /* one reply per connection, then close */
    FAKE_SILENT,        /* read requests, never answer */
    FAKE_GARBAGE,       /* a reply that breaks the protocol */
};

static char tmpdir[64];
static char sockpath[128];
static pid_t fake_pid = -1;
static int fake_requests_fd = -1;   /* child writes one byte per request */

/* fake_answer - the fake tables */
static void fake_answer(const struct proxy_request *rq, struct proxy_reply *rp)
{
    memset(rp, 0, sizeof(*rp));
    if (rq->type == PROXY_REQ_LOCAL_LOGIN) {
        if (strcmp(rq->key, "1000") == 0) {
            rp->status = PROXY_STATUS_FOUND;
            snprintf(rp->value, sizeof(rp->value), "sysuser");
        } else {
            rp->status = PROXY_STATUS_NOTFOUND;
        }
    } else if (rq->type == PROXY_REQ_LOCAL_USER) {
        if (strcmp(rq->key, "sysuser") == 0) {
            rp->status = PROXY_STATUS_FOUND;
            snprintf(rp->value, sizeof(rp->value), "1000:1000:/home/sysuser");
        } else {
            rp->status = PROXY_STATUS_NOTFOUND;
        }
    } else if (strcmp(rq->table, "lmdb:/etc/denied") == 0) {
        rp->status = PROXY_STATUS_DENIED;
    } else if (strcmp(rq->table, "lmdb:/etc/broken") == 0) {
        rp->status = PROXY_STATUS_TEMPFAIL;
    } else if (strcmp(rq->key, "alice") == 0) {
        rp->status = PROXY_STATUS_FOUND;
        snprintf(rp->value, sizeof(rp->value), "value of %s", rq->table);
    } else {
        rp->status = PROXY_STATUS_NOTFOUND;
    }
}

static void __attribute__((noreturn)) fake_serve(int lfd, enum fake_mode mode,
                                                 int report)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        buf_t in;

        if (fd < 0)
            _exit(1);
        buf_init(&in, ATTR_MAX_MSG * 2);
        for (;;) {
            attr_list_t req, reply;
            struct proxy_request rq;
            struct proxy_reply rp;
            const char *err = NULL;

            attr_list_init(&req);
            attr_list_init(&reply);
            if (attr_read_fd(fd, &in, &req, 30, &err) != 1
                || proxy_request_decode(&req, &rq, &err) < 0)
                break;
            if (write(report, "r", 1) != 1)
                _exit(1);
            if (mode == FAKE_SILENT)
                continue;
            fake_answer(&rq, &rp);
            if (mode == FAKE_GARBAGE)
                attr_add(&reply, "status", "maybe");
            else if (proxy_reply_encode(&rp, &reply, &err) < 0)
                _exit(1);
            if (attr_write_fd(fd, &reply, 30) < 0)
                break;
            attr_list_free(&req);
            attr_list_free(&reply);
            if (mode == FAKE_ONE_SHOT)
                break;
        }
        buf_free(&in);
        close(fd);
    }
}

static void fake_start(enum fake_mode mode)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), p[2];

    ck_assert_int_ge(lfd, 0);
    str_copy(sun.sun_path, sockpath, sizeof(sun.sun_path));
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    ck_assert_int_eq(pipe(p), 0);
    fake_pid = fork();
    ck_assert_int_ge(fake_pid, 0);
    if (fake_pid == 0) {
        close(p[0]);
        fake_serve(lfd, mode, p[1]);
    }
    close(p[1]);
    close(lfd);
    fake_requests_fd = p[0];
}

/* fake_requests - how many requests the fake has seen so far (waits
   for at least want) */
static int fake_requests(int want)
{
    static int seen;
    char c;

    while (seen < want && read(fake_requests_fd, &c, 1) == 1)
        seen++;
    return seen;
}

static void setup(void)
{
    str_copy(tmpdir, "/tmp/test_dict_proxy.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(sockpath, sizeof(sockpath), "%s/proxymap", tmpdir);
    dict_proxy_set_socket(sockpath);
    var_proxymap_timeout = 1;
}

static void teardown(void)
{
    dict_proxy_set_socket(NULL);
    dict_proxy_set_all(false);
    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
    if (fake_requests_fd >= 0)
        close(fake_requests_fd);
    fake_requests_fd = -1;
    unlink(sockpath);
    rmdir(tmpdir);
}

START_TEST(test_lookup)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    fake_start(FAKE_GOOD);
    dict_t *d = dict_open("proxy:lmdb:/etc/tern/aliases", &err);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), 1);
    ck_assert_str_eq(buf_str(&v), "value of lmdb:/etc/tern/aliases");
    ck_assert_int_eq(dict_lookup(d, "bob", &v), 0);
    ck_assert_int_eq(dict_lookup(d, "", &v), 0);        /* not asked */
    ck_assert_int_eq(dict_lookup(d, "a\nb", &v), 0);    /* not asked */
    ck_assert_int_eq(fake_requests(2), 2);
    dict_close(d);
    d = dict_open("proxy:lmdb:/etc/denied", &err);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    dict_close(d);
    d = dict_open("proxy:lmdb:/etc/broken", &err);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    dict_close(d);
    ck_assert_ptr_null(dict_open("proxy:proxy:lmdb:/x", &err));
    ck_assert_ptr_null(dict_open("proxy:nocolon", &err));
    buf_free(&v);
}
END_TEST

START_TEST(test_all_lmdb_proxied)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    fake_start(FAKE_GOOD);
    dict_proxy_set_all(true);
    /* no such file: opened directly this would fail */
    maps_t *m = maps_open("lmdb:/nonexistent/users, inline:{carol=x}", &err);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(maps_lookup(m, "alice", &v), 1);
    ck_assert_str_eq(buf_str(&v), "value of lmdb:/nonexistent/users");
    ck_assert_int_eq(maps_lookup(m, "carol", &v), 1);   /* inline: stays */
    ck_assert_str_eq(buf_str(&v), "x");
    maps_close(m);
    ck_assert_int_eq(dict_proxy_local_user("sysuser", &v), 1);
    ck_assert_str_eq(buf_str(&v), "1000:1000:/home/sysuser");
    ck_assert_int_eq(dict_proxy_local_user("nobody-here", &v), 0);
    ck_assert_int_eq(dict_proxy_local_login(1000, &v), 1);
    ck_assert_str_eq(buf_str(&v), "sysuser");
    ck_assert_int_eq(dict_proxy_local_login(4242, &v), 0);
    buf_free(&v);
}
END_TEST

START_TEST(test_reconnect)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    fake_start(FAKE_ONE_SHOT);
    dict_t *d = dict_open("proxy:lmdb:/t", &err);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(dict_lookup(d, "alice", &v), 1);
        ck_assert_int_eq(dict_lookup(d, "bob", &v), 0);
    }
    ck_assert_int_eq(fake_requests(8), 8);
    dict_close(d);
    buf_free(&v);
}
END_TEST

START_TEST(test_no_proxymap)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    dict_t *d = dict_open("proxy:lmdb:/t", &err);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    ck_assert_int_eq(dict_proxy_local_user("sysuser", &v), -1);
    dict_close(d);
    buf_free(&v);
}
END_TEST

START_TEST(test_silent_proxymap)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    fake_start(FAKE_SILENT);
    dict_t *d = dict_open("proxy:lmdb:/t", &err);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    /* a timeout is not retried: one request only */
    ck_assert_int_eq(fake_requests(1), 1);
    dict_close(d);
    buf_free(&v);
}
END_TEST

START_TEST(test_garbage_reply)
{
    const char *err = NULL;
    buf_t v = BUF_INIT;

    fake_start(FAKE_GARBAGE);
    dict_t *d = dict_open("proxy:lmdb:/t", &err);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    ck_assert_int_eq(dict_lookup(d, "alice", &v), -1);
    dict_close(d);
    buf_free(&v);
}
END_TEST

static Suite *dict_proxy_suite(void)
{
    Suite *s = suite_create("dict_proxy");
    TCase *tc = tcase_create("client");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lookup);
    tcase_add_test(tc, test_all_lmdb_proxied);
    tcase_add_test(tc, test_reconnect);
    tcase_add_test(tc, test_no_proxymap);
    tcase_add_test(tc, test_silent_proxymap);
    tcase_add_test(tc, test_garbage_reply);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(dict_proxy_suite(), true);
}

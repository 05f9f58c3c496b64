/*
 * test_sasl_server - unit tests for lib/mail/sasl_server.c against a
 * stand-in auth service (a thread on a UNIX socket that decodes requests
 * strictly with auth_proto and knows one user): PLAIN with and without
 * an initial response, LOGIN's two challenges, the token of an ok reply,
 * a wrong password, "*", malformed base64, overlong responses, an
 * unreachable or tempfailing auth service, an unknown mechanism, and
 * the reply_begin/reply_end bracket around asynchronous callbacks. (The
 * SCRAM-SHA-256 exchange is tested end to end through smtpd:
 * tests/integration/test_smtpd_auth.py.)
 */
#include <check.h>

#include "check_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/auth_proto.h"
#include "mail/sasl_server.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/events.h"
#include "util/sasl.h"
#include "util/sys.h"

#define WAIT_MSEC 20000
#define TOKEN "1.1800000030.0123456789abcdef0123456789abcdef.00"

struct fake_auth {
    char dir[64], path[128];
    int lfd;
    pthread_t thread;
    bool tempfail;
    int requests;
    char last_service[16];
};

static void *fake_auth_run(void *arg)
{
    struct fake_auth *fa = arg;

    for (;;) {
        int c = accept(fa->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        buf_t in = BUF_INIT;
        attr_list_t req, rep;
        const char *err = NULL;
        attr_list_init(&req);
        attr_list_init(&rep);
        if (attr_read_fd(c, &in, &req, 10, &err) == 1) {
            struct auth_request rq;
            struct auth_reply rp;
            memset(&rp, 0, sizeof(rp));
            if (auth_request_decode(&req, &rq, &err) == 0) {
                fa->requests++;
                (void)str_copy(fa->last_service, rq.service,
                               sizeof(fa->last_service));
                if (fa->tempfail) {
                    rp.status = AUTH_STATUS_TEMPFAIL;
                    strcpy(rp.reason, "temporary failure");
                } else if (strcmp(rq.user, "demo") == 0
                           && strcmp(rq.password, "s3cret") == 0) {
                    rp.status = AUTH_STATUS_OK;
                    strcpy(rp.user, "demo");
                    strcpy(rp.reason, "authenticated");
                    if (strcmp(rq.service, "pop3") == 0)
                        strcpy(rp.token, TOKEN);
                } else {
                    rp.status = AUTH_STATUS_FAIL;
                    strcpy(rp.reason, "authentication failure");
                }
                if (auth_reply_encode(&rp, &rep, &err) == 0)
                    (void)attr_write_fd(c, &rep, 10);
            }
        }
        attr_list_free(&req);
        attr_list_free(&rep);
        buf_free(&in);
        (void)close(c);
    }
}

static void fake_auth_start(struct fake_auth *fa)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    memset(fa, 0, sizeof(*fa));
    strcpy(fa->dir, "/tmp/test_sasl_server.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fa->dir));
    (void)snprintf(fa->path, sizeof(fa->path), "%s/auth", fa->dir);
    strcpy(sun.sun_path, fa->path);
    fa->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fa->lfd, 0);
    ck_assert_int_eq(bind(fa->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(fa->lfd, 8), 0);
    ck_assert_int_eq(pthread_create(&fa->thread, NULL, fake_auth_run, fa), 0);
}

static void fake_auth_stop(struct fake_auth *fa)
{
    (void)shutdown(fa->lfd, SHUT_RDWR);
    ck_assert_int_eq(pthread_join(fa->thread, NULL), 0);
    (void)close(fa->lfd);
    (void)unlink(fa->path);
    (void)rmdir(fa->dir);
}

/* what the callbacks saw */
struct seen {
    int challenges;
    char challenge[256];
    int done;
    enum sasl_server_status status;
    char mech[32], user[256], token[LOGIN_TOKEN_MAX + 1], tried[256];
    int begins, ends;
    bool in_reply;
};

static void cb_challenge(void *ctx, const char *b64)
{
    struct seen *s = ctx;

    s->challenges++;
    (void)str_copy(s->challenge, b64, sizeof(s->challenge));
}

static void cb_done(void *ctx, const struct sasl_server_result *r)
{
    struct seen *s = ctx;

    s->done++;
    s->status = r->status;
    (void)str_copy(s->mech, r->mech, sizeof(s->mech));
    (void)str_copy(s->user, r->user, sizeof(s->user));
    (void)str_copy(s->token, r->token, sizeof(s->token));
    (void)str_copy(s->tried, r->tried, sizeof(s->tried));
}

static void cb_begin(void *ctx)
{
    struct seen *s = ctx;

    ck_assert(!s->in_reply);
    s->in_reply = true;
    s->begins++;
}

static void cb_end(void *ctx)
{
    struct seen *s = ctx;

    ck_assert(s->in_reply);
    s->in_reply = false;
    s->ends++;
}

static const struct sasl_server_ops ops = {
    .challenge = cb_challenge, .done = cb_done,
    .reply_begin = cb_begin, .reply_end = cb_end,
};

static void run_until_done(ev_loop_t *loop, struct seen *s, int want)
{
    uint64_t end = time_mono_msec() + WAIT_MSEC;

    while (s->done < want && time_mono_msec() < end)
        (void)ev_loop_run_once(loop, 50);
    ck_assert_int_eq(s->done, want);
}

static char *b64(const char *data, size_t len)
{
    buf_t b = BUF_INIT;

    ck_assert_int_eq(sasl_base64_encode(data, len, &b), 0);
    ck_assert_int_eq(buf_putc(&b, '\0'), 0);
    return b.data;
}

START_TEST(test_plain)
{
    struct fake_auth fa;
    struct seen s = { 0 };
    ev_loop_t *loop = ev_loop_new();

    fake_auth_start(&fa);
    sasl_server_t *sv = sasl_server_new(loop, fa.path, "pop3", 5000, &ops,
                                        &s);
    char *ir = b64("\0demo\0s3cret", 12);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", ir, "192.0.2.1",
                                       "unknown[192.0.2.1]"), 0);
    ck_assert(sasl_server_waiting(sv));
    ck_assert(!sasl_server_in_exchange(sv));
    run_until_done(loop, &s, 1);
    ck_assert_int_eq(s.status, SASL_SERVER_OK);
    ck_assert_str_eq(s.user, "demo");
    ck_assert_str_eq(s.mech, "PLAIN");
    ck_assert_str_eq(s.token, TOKEN);
    ck_assert_str_eq(fa.last_service, "pop3");
    ck_assert_int_eq(s.begins, 1);
    ck_assert_int_eq(s.ends, 1);
    ck_assert(!sasl_server_waiting(sv));
    /* no initial response: an empty challenge, then the response */
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "", "x"), 0);
    ck_assert_int_eq(s.challenges, 1);
    ck_assert_str_eq(s.challenge, "");
    ck_assert(sasl_server_in_exchange(sv));
    char *bad = b64("\0demo\0wrong", 11);
    sasl_server_input(sv, bad, strlen(bad));
    run_until_done(loop, &s, 2);
    ck_assert_int_eq(s.status, SASL_SERVER_FAIL);
    ck_assert_str_eq(s.user, "");
    ck_assert_str_eq(s.token, "");
    ck_assert_str_eq(s.tried, "demo");
    free(ir);
    free(bad);
    sasl_server_free(sv);
    fake_auth_stop(&fa);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_login)
{
    struct fake_auth fa;
    struct seen s = { 0 };
    ev_loop_t *loop = ev_loop_new();

    fake_auth_start(&fa);
    sasl_server_t *sv = sasl_server_new(loop, fa.path, "smtp", 5000, &ops,
                                        &s);
    ck_assert_int_eq(sasl_server_start(sv, "LOGIN", NULL, "192.0.2.1",
                                       "x"), 0);
    ck_assert_str_eq(s.challenge, SASL_LOGIN_USER_CHALLENGE);
    char *u = b64("demo", 4), *p = b64("s3cret", 6);
    sasl_server_input(sv, u, strlen(u));
    ck_assert_int_eq(s.challenges, 2);
    ck_assert_str_eq(s.challenge, SASL_LOGIN_PASS_CHALLENGE);
    sasl_server_input(sv, p, strlen(p));
    run_until_done(loop, &s, 1);
    ck_assert_int_eq(s.status, SASL_SERVER_OK);
    ck_assert_str_eq(s.token, "");      /* smtp: no login token */
    ck_assert_str_eq(s.tried, "demo");
    ck_assert_str_eq(s.mech, "LOGIN");
    free(u);
    free(p);
    sasl_server_free(sv);
    fake_auth_stop(&fa);
    ev_loop_free(loop);
}
END_TEST

/* the exchange ends without asking auth */
START_TEST(test_client_side_endings)
{
    struct fake_auth fa;
    struct seen s = { 0 };
    ev_loop_t *loop = ev_loop_new();
    char huge[4096];

    fake_auth_start(&fa);
    sasl_server_t *sv = sasl_server_new(loop, fa.path, "pop3", 5000, &ops,
                                        &s);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "a", "x"), 0);
    sasl_server_input(sv, "*", 1);
    ck_assert_int_eq(s.done, 1);
    ck_assert_int_eq(s.status, SASL_SERVER_CANCELLED);
    ck_assert_str_eq(s.tried, "");
    ck_assert(!sasl_server_in_exchange(sv));
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "a", "x"), 0);
    sasl_server_input(sv, "!!!!", 4);
    ck_assert_int_eq(s.status, SASL_SERVER_MALFORMED);
    ck_assert_int_eq(sasl_server_start(sv, "LOGIN", NULL, "a", "x"), 0);
    sasl_server_input(sv, NULL, 0);
    ck_assert_int_eq(s.status, SASL_SERVER_TOO_LONG);
    memset(huge, 'Q', sizeof(huge));
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "a", "x"), 0);
    sasl_server_input(sv, huge, sizeof(huge));
    ck_assert_int_eq(s.status, SASL_SERVER_TOO_LONG);
    /* a PLAIN message that is not three fields: a failure */
    char *odd = b64("demo", 4);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", odd, "a", "x"), 0);
    ck_assert_int_eq(s.status, SASL_SERVER_FAIL);
    /* LOGIN's empty response */
    ck_assert_int_eq(sasl_server_start(sv, "LOGIN", "=", "a", "x"), 0);
    ck_assert_int_eq(s.status, SASL_SERVER_FAIL);
    ck_assert_int_eq(s.done, 6);
    ck_assert_int_eq(fa.requests, 0);
    ck_assert_int_eq(s.begins, 0);
    /* unknown mechanisms, lowercase, and a start during an exchange */
    ck_assert_int_eq(sasl_server_start(sv, "CRAM-MD5", NULL, "a", "x"), -1);
    ck_assert_int_eq(sasl_server_start(sv, "plain", NULL, "a", "x"), -1);
    ck_assert(!sasl_server_mech_known("XOAUTH2"));
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "a", "x"), 0);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", NULL, "a", "x"), -1);
    sasl_server_abort(sv);
    ck_assert(!sasl_server_in_exchange(sv));
    ck_assert_int_eq(s.done, 6);
    /* input with no exchange is ignored */
    sasl_server_input(sv, "AAAA", 4);
    ck_assert_int_eq(s.done, 6);
    free(odd);
    sasl_server_free(sv);
    fake_auth_stop(&fa);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_auth_unavailable)
{
    struct fake_auth fa;
    struct seen s = { 0 };
    ev_loop_t *loop = ev_loop_new();
    char *ir = b64("\0demo\0s3cret", 12);

    /* nobody listens */
    sasl_server_t *sv = sasl_server_new(loop, "/nonexistent/auth", "pop3",
                                        5000, &ops, &s);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", ir, "a", "x"), 0);
    run_until_done(loop, &s, 1);
    ck_assert_int_eq(s.status, SASL_SERVER_TEMPFAIL);
    sasl_server_free(sv);
    /* auth says tempfail */
    fake_auth_start(&fa);
    fa.tempfail = true;
    sv = sasl_server_new(loop, fa.path, "pop3", 5000, &ops, &s);
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", ir, "a", "x"), 0);
    run_until_done(loop, &s, 2);
    ck_assert_int_eq(s.status, SASL_SERVER_TEMPFAIL);
    /* freed while waiting: no callback afterwards */
    ck_assert_int_eq(sasl_server_start(sv, "PLAIN", ir, "a", "x"), 0);
    ck_assert(sasl_server_waiting(sv));
    sasl_server_free(sv);
    for (int i = 0; i < 10; i++)
        (void)ev_loop_run_once(loop, 10);
    ck_assert_int_eq(s.done, 2);
    free(ir);
    fake_auth_stop(&fa);
    ev_loop_free(loop);
}
END_TEST

static Suite *sasl_server_suite(void)
{
    Suite *s = suite_create("sasl_server");
    TCase *tc = tcase_create("exchange");

    tcase_add_test(tc, test_plain);
    tcase_add_test(tc, test_login);
    tcase_add_test(tc, test_client_side_endings);
    tcase_add_test(tc, test_auth_unavailable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(sasl_server_suite(), true);
}

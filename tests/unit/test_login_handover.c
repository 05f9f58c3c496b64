/*
 * test_login_handover - unit tests for lib/mail/login_handover.c: the
 * request round-trips through an attribute list and through a real
 * UNIX socket with the client descriptor attached (the received one
 * works), the reply both ways; a request with no descriptor, with two,
 * with bytes after it, or none at all (timeout) fails and every received
 * descriptor is closed; a table of hostile attribute lists is refused by
 * decode, as are hostile replies.
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/login_handover.h"
#include "util/attr.h"
#include "util/buf.h"
#include "check_attr.h"

static void good_handover(struct login_handover *h)
{
    memset(h, 0, sizeof(*h));
    strcpy(h->service, "pop3");
    strcpy(h->user, "demo");
    strcpy(h->token, "1.1800000030.0123456789abcdef0123456789abcdef."
                     "0123456789abcdef0123456789abcdef"
                     "0123456789abcdef0123456789abcdef");
    strcpy(h->mechanism, "PLAIN");
    strcpy(h->client_address, "2001:db8::1");
    h->client_port = 54321;
    strcpy(h->local_address, "192.0.2.7");
    h->local_port = 995;
    h->tls = true;
    strcpy(h->tls_info, "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384");
    strcpy(h->session, "A1b2C3");
    memcpy(h->input, "STAT\r\nLIST\r\n\0\xff", 14);
    h->input_len = 14;
}

START_TEST(test_codec_roundtrip)
{
    struct login_handover a, b;
    attr_list_t l, m;
    const char *err = NULL;

    good_handover(&a);
    attr_list_init(&l);
    attr_list_init(&m);
    ck_assert_int_eq(login_handover_encode(&a, &l, &err), 0);
    wire_roundtrip(&l, &m);
    ck_assert_int_eq(login_handover_decode(&m, &b, &err), 0);
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    /* no TLS, no input, the longest input */
    a.tls = false;
    memset(a.tls_info, 0, sizeof(a.tls_info));
    memset(a.input, 0, sizeof(a.input));
    a.input_len = 0;
    attr_list_reset(&l);
    ck_assert_int_eq(login_handover_encode(&a, &l, &err), 0);
    ck_assert_str_eq(attr_get(&l, "input"), "");
    ck_assert_int_eq(login_handover_decode(&l, &b, &err), 0);
    ck_assert_uint_eq(b.input_len, 0);
    ck_assert(!b.tls);
    memset(a.input, 'x', LOGIN_INPUT_MAX);
    a.input_len = LOGIN_INPUT_MAX;
    attr_list_reset(&l);
    ck_assert_int_eq(login_handover_encode(&a, &l, &err), 0);
    ck_assert_int_eq(login_handover_decode(&l, &b, &err), 0);
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    login_handover_clear(&b);
    ck_assert_str_eq(b.token, "");
    attr_list_free(&l);
    attr_list_free(&m);
}
END_TEST

START_TEST(test_encode_refuses_bad)
{
    struct login_handover a;
    attr_list_t l;
    const char *err = NULL;

    attr_list_init(&l);
    for (int i = 0; i < 9; i++) {
        good_handover(&a);
        switch (i) {
        case 0: strcpy(a.service, "smtp"); break;
        case 1: a.user[0] = '\0'; break;
        case 2: strcpy(a.token, "1.X"); break;
        case 3: strcpy(a.mechanism, "CRAM-MD5"); break;
        case 4: a.client_port = 65536; break;
        case 5: a.tls = false; break;           /* tls_info without TLS */
        case 6: strcpy(a.session, "a b"); break;
        case 7: a.input_len = LOGIN_INPUT_MAX + 1; break;
        case 8: strcpy(a.client_address, "1.2.3.4 x"); break;
        }
        attr_list_reset(&l);
        ck_assert_msg(login_handover_encode(&a, &l, &err) == -1, "case %d", i);
    }
    attr_list_free(&l);
}
END_TEST

/* hostile lists: NULL-separated name/value pairs, replacing ("=" prefix
   on the name: remove it; a name not in the good list: add it) */
struct hostile {
    const char *name, *value;
};
static const struct hostile hostile[] = {
    { "request", "auth" }, { "version", "2" }, { "version", "01" },
    { "version", "" }, { "service", "smtp" }, { "service", "POP3" },
    { "service", "" }, { "user", "" }, { "user", "de\rmo" },
    { "user", "de\x7fmo" }, { "token", "" }, { "token", "1.ABC" },
    { "token", "1 2" }, { "mechanism", "plain" }, { "mechanism", "XOAUTH2" },
    { "client_address", "" }, { "client_address", "1.2.3.4/8" },
    { "client_address", "a b" }, { "local_address", "x\ny" },
    { "client_port", "-1" }, { "client_port", "65536" },
    { "client_port", "" }, { "client_port", "080" }, { "client_port", "+80" },
    { "client_port", " 80" }, { "client_port", "80x" },
    { "local_port", "99999999999999999999" }, { "tls", "2" }, { "tls", "" },
    { "tls", "yes" }, { "tls", "0" }, { "tls_info", "caf\xc3\xa9" }, { "tls_info", "a\tb" },
    { "session", "" }, { "session", "abc-def" },
    { "session", "0123456789012345678901234567890123" },
    { "input", "!!!!" }, { "input", "QUJD" "\n" }, { "input", "QUI" },
    { "input", "QQ==QQ==" },
    /* missing attributes */
    { "=request", NULL }, { "=version", NULL }, { "=token", NULL },
    { "=input", NULL }, { "=tls_info", NULL }, { "=session", NULL },
    /* unknown, duplicate */
    { "password", "x" }, { "+user", "other" }, { "+token", "1.2" },
};

START_TEST(test_decode_hostile)
{
    struct login_handover a, b;
    attr_list_t good, l;
    const char *err = NULL;
    const struct hostile *x = &hostile[_i];

    good_handover(&a);
    attr_list_init(&good);
    attr_list_init(&l);
    ck_assert_int_eq(login_handover_encode(&a, &good, &err), 0);
    bool replaced = false;
    for (size_t k = 0; k < good.count; k++) {
        const char *n = good.items[k].name, *v = good.items[k].value;
        if (x->name[0] == '=' && strcmp(x->name + 1, n) == 0)
            continue;
        if (strcmp(x->name, n) == 0) {
            v = x->value;
            replaced = true;
        }
        attr_add(&l, n, v);
    }
    if (x->name[0] == '+')
        attr_add(&l, x->name + 1, x->value);
    else if (x->name[0] != '=' && !replaced)
        attr_add(&l, x->name, x->value);
    ck_assert_msg(login_handover_decode(&l, &b, &err) == -1,
                  "case %d (%s) accepted", _i, x->name);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(b.token, "");
    attr_list_free(&good);
    attr_list_free(&l);
}
END_TEST

START_TEST(test_decode_long_input)
{
    struct login_handover a, b;
    attr_list_t l;
    const char *err = NULL;
    buf_t big = BUF_INIT;

    good_handover(&a);
    attr_list_init(&l);
    ck_assert_int_eq(login_handover_encode(&a, &l, &err), 0);
    /* 4099 bytes of input, base64 */
    for (int i = 0; i < (LOGIN_INPUT_MAX + 3) / 3; i++)
        ck_assert_int_eq(buf_puts(&big, "QUJD"), 0);
    ck_assert_int_eq(buf_putc(&big, '\0'), 0);
    for (size_t k = 0; k < l.count; k++)
        if (strcmp(l.items[k].name, "input") == 0) {
            free(l.items[k].value);
            l.items[k].value = strdup(big.data);
        }
    ck_assert_int_eq(login_handover_decode(&l, &b, &err), -1);
    buf_free(&big);
    attr_list_free(&l);
}
END_TEST

/* a listening UNIX socket in a private directory */
struct lsock {
    char dir[64];
    char path[128];
    int fd;
};

static void lsock_open(struct lsock *s)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    strcpy(s->dir, "/tmp/test_login_handover.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    ck_assert_int_lt(snprintf(s->path, sizeof(s->path), "%s/pop3d", s->dir),
                     (int)sizeof(s->path));
    strcpy(sun.sun_path, s->path);
    s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(s->fd, 0);
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(s->fd, 5), 0);
}

static void lsock_close(struct lsock *s)
{
    ck_assert_int_eq(close(s->fd), 0);
    ck_assert_int_eq(unlink(s->path), 0);
    ck_assert_int_eq(rmdir(s->dir), 0);
}

START_TEST(test_send_recv_reply)
{
    struct lsock ls;
    struct login_handover a, b;
    const char *err = NULL;
    int client[2], cfd = -1;
    char reason[256], got[16];

    lsock_open(&ls);
    good_handover(&a);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, client), 0);
    int lfd = login_handover_send(ls.path, &a, client[1], &err);
    ck_assert_msg(lfd >= 0, "send: %s", err);
    int mfd = accept(ls.fd, NULL, NULL);
    ck_assert_int_ge(mfd, 0);
    ck_assert_int_eq(login_handover_recv(mfd, 5000, &b, &cfd, &err), 0);
    ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
    ck_assert_int_ge(cfd, 0);
    ck_assert_int_ne(cfd, client[1]);
    ck_assert_int_eq(fcntl(cfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    /* the passed descriptor is the client connection */
    ck_assert_int_eq(close(client[1]), 0);
    ck_assert_int_eq(write(cfd, "+OK\r\n", 5), 5);
    ck_assert_int_eq(read(client[0], got, sizeof(got)), 5);
    ck_assert(memcmp(got, "+OK\r\n", 5) == 0);
    /* replies: ok, then on a second request fail with a reason */
    ck_assert_int_eq(login_handover_reply(mfd, true, NULL, 5000), 0);
    ck_assert_int_eq(login_handover_reply_read(lfd, 5000, reason,
                                               sizeof(reason), &err), 1);
    ck_assert_int_eq(close(mfd), 0);
    ck_assert_int_eq(close(lfd), 0);

    lfd = login_handover_send(ls.path, &a, client[0], &err);
    ck_assert_int_ge(lfd, 0);
    mfd = accept(ls.fd, NULL, NULL);
    ck_assert_int_ge(mfd, 0);
    int cfd2 = -1;
    ck_assert_int_eq(login_handover_recv(mfd, 5000, &b, &cfd2, &err), 0);
    ck_assert_int_eq(login_handover_reply(mfd, false, "no such\nuser", 5000),
                     0);
    ck_assert_int_eq(login_handover_reply_read(lfd, 0 + 5000, reason,
                                               sizeof(reason), &err), 0);
    ck_assert_str_eq(reason, "no such?user");
    ck_assert_int_eq(close(mfd), 0);
    /* no reply at all: EOF */
    ck_assert_int_eq(login_handover_reply_read(lfd, 5000, reason,
                                               sizeof(reason), &err), -1);
    ck_assert_int_eq(close(lfd), 0);
    ck_assert_int_eq(close(cfd), 0);
    ck_assert_int_eq(close(cfd2), 0);
    ck_assert_int_eq(close(client[0]), 0);
    lsock_close(&ls);
}
END_TEST

START_TEST(test_send_no_listener)
{
    struct login_handover a;
    const char *err = NULL;

    good_handover(&a);
    ck_assert_int_eq(login_handover_send("/nonexistent/pop3d", &a, 0, &err),
                     -1);
    ck_assert_ptr_nonnull(err);
    a.user[0] = '\0';
    ck_assert_int_eq(login_handover_send("/nonexistent/pop3d", &a, 0, &err),
                     -1);
}
END_TEST

/* send the wire form of a good request on fd with nfds copies of
   pass_fd attached (and extra bytes after it when extra) */
static void raw_send(int fd, int nfds, int pass_fd, const char *extra)
{
    struct login_handover a;
    attr_list_t l;
    buf_t wire = BUF_INIT;
    const char *err = NULL;

    good_handover(&a);
    attr_list_init(&l);
    ck_assert_int_eq(login_handover_encode(&a, &l, &err), 0);
    ck_assert_int_eq(attr_encode(&l, &wire), 0);
    if (extra != NULL)
        ck_assert_int_eq(buf_puts(&wire, extra), 0);
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { .iov_base = wire.data, .iov_len = wire.len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        for (int i = 0; i < nfds; i++)
            memcpy(CMSG_DATA(c) + (size_t)i * sizeof(int), &pass_fd,
                   sizeof(int));
    }
    ck_assert_int_eq(sendmsg(fd, &msg, 0), (ssize_t)wire.len);
    buf_free(&wire);
    attr_list_free(&l);
}

/* does the write end of p see its reader gone, i.e. are all other
   copies of p[0] closed?  (the test holds p[1] only) */
static bool pipe_reader_gone(int wfd)
{
    struct pollfd p = { .fd = wfd, .events = POLLOUT };

    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

enum bad_send { BS_NO_FD, BS_TWO_FDS, BS_FOUR_FDS, BS_EXTRA_BYTES, BS_N };

START_TEST(test_recv_bad_descriptors)
{
    int sp[2], p[2], cfd = 123;
    struct login_handover b;
    const char *err = NULL;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(pipe(p), 0);
    switch (_i) {
    case BS_NO_FD:
        raw_send(sp[0], 0, -1, NULL);
        break;
    case BS_TWO_FDS:
        raw_send(sp[0], 2, p[0], NULL);
        break;
    case BS_FOUR_FDS:
        raw_send(sp[0], 4, p[0], NULL);
        break;
    case BS_EXTRA_BYTES:
        raw_send(sp[0], 1, p[0], "request");
        break;
    }
    ck_assert_int_eq(close(p[0]), 0);
    ck_assert_int_eq(login_handover_recv(sp[1], 5000, &b, &cfd, &err), -1);
    ck_assert_int_eq(cfd, -1);
    ck_assert_ptr_nonnull(err);
    /* every descriptor that came with the request was closed */
    ck_assert(pipe_reader_gone(p[1]));
    ck_assert_int_eq(close(p[1]), 0);
    ck_assert_int_eq(close(sp[0]), 0);
    ck_assert_int_eq(close(sp[1]), 0);
}
END_TEST

START_TEST(test_recv_timeout_and_eof)
{
    int sp[2], cfd = 123;
    struct login_handover b;
    const char *err = NULL;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(login_handover_recv(sp[1], 50, &b, &cfd, &err), -1);
    ck_assert_str_eq(err, "timeout");
    /* half a request, then EOF */
    ck_assert_int_eq(write(sp[0], "request\0log", 11), 11);
    ck_assert_int_eq(shutdown(sp[0], SHUT_WR), 0);
    ck_assert_int_eq(login_handover_recv(sp[1], 5000, &b, &cfd, &err), -1);
    ck_assert_int_eq(cfd, -1);
    ck_assert_int_eq(close(sp[0]), 0);
    ck_assert_int_eq(close(sp[1]), 0);
}
END_TEST

static const char *const bad_replies[][6] = {
    { "status", "maybe", NULL },
    { "status", "", NULL },
    { "reason", "x", NULL },
    { "status", "ok", "status", "ok", NULL },
    { "status", "fail", "reason", "bad\x01", NULL },
    { "status", "ok", "user", "root", NULL },
};

START_TEST(test_reply_hostile)
{
    int sp[2];
    attr_list_t l;
    char reason[64];
    const char *err = NULL;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    attr_list_init(&l);
    for (size_t k = 0; k < 6 && bad_replies[_i][k] != NULL; k += 2)
        attr_add(&l, bad_replies[_i][k], bad_replies[_i][k + 1]);
    ck_assert_int_eq(attr_write_fd(sp[0], &l, 5), 0);
    ck_assert_int_eq(login_handover_reply_read(sp[1], 5000, reason,
                                               sizeof(reason), &err), -1);
    attr_list_free(&l);
    ck_assert_int_eq(close(sp[0]), 0);
    ck_assert_int_eq(close(sp[1]), 0);
}
END_TEST

START_TEST(test_reply_read_timeout)
{
    int sp[2];
    char reason[64];
    const char *err = NULL;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(login_handover_reply_read(sp[1], 30, reason,
                                               sizeof(reason), &err), -1);
    ck_assert_str_eq(err, "timeout");
    /* a reply already there is read even with no time to wait */
    ck_assert_int_eq(login_handover_reply(sp[0], true, NULL, 1000), 0);
    ck_assert_int_eq(login_handover_reply_read(sp[1], 0, reason,
                                               sizeof(reason), &err), 1);
    ck_assert_int_eq(close(sp[0]), 0);
    ck_assert_int_eq(close(sp[1]), 0);
}
END_TEST

static Suite *login_handover_suite(void)
{
    Suite *s = suite_create("login_handover");
    TCase *tc = tcase_create("handover");

    tcase_add_test(tc, test_codec_roundtrip);
    tcase_add_test(tc, test_encode_refuses_bad);
    tcase_add_loop_test(tc, test_decode_hostile, 0,
                        sizeof(hostile) / sizeof(hostile[0]));
    tcase_add_test(tc, test_decode_long_input);
    tcase_add_test(tc, test_send_recv_reply);
    tcase_add_test(tc, test_send_no_listener);
    tcase_add_loop_test(tc, test_recv_bad_descriptors, 0, BS_N);
    tcase_add_test(tc, test_recv_timeout_and_eof);
    tcase_add_loop_test(tc, test_reply_hostile, 0,
                        sizeof(bad_replies) / sizeof(bad_replies[0]));
    tcase_add_test(tc, test_reply_read_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(login_handover_suite(), true);
}

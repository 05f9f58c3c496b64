/*
 * login_handover - the login process -> mail side request with the
 * client's descriptor (SCM_RIGHTS), and its reply; the contract is in
 * login_handover.h.
 *
 * Security: the mail side (root until it has checked the token) treats
 * the request as hostile: every read has a size cap and a deadline, the
 * list is decoded strictly, descriptors are received with
 * MSG_CMSG_CLOEXEC and a control message that was cut short (MSG_CTRUNC)
 * or carried anything but exactly one descriptor makes the request fail
 * with every received descriptor closed.
 */
#include "mail/login_handover.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/sasl.h"
#include "util/sys.h"
#include "util/util.h"

#define LH_FDS_MAX 8            /* room for descriptors, to count extras */
#define LH_ADDR_MAX 63

static const char *const lh_names[] = {
    "request", "version", "service", "user", "token", "mechanism",
    "client_address", "client_port", "local_address", "local_port", "tls",
    "tls_info", "session", "input", NULL
};
static const char *const lh_services[] = { "pop3", "imap", NULL };
static const char *const lh_mechanisms[] = {
    "USER", "PLAIN", "LOGIN", "SCRAM-SHA-256", NULL
};

static bool lh_one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

/* lh_chars_ok - 1..max (min 0 allowed when min0) bytes, each in class */
enum lh_class { LH_NAME, LH_TOKEN, LH_ADDR, LH_PRINT, LH_ALNUM };

static bool lh_field_ok(const char *v, enum lh_class c, size_t min,
                        size_t max)
{
    size_t len = strnlen(v, max + 1);

    if (len < min || len > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        bool alnum = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
                     || (*p >= 'A' && *p <= 'Z');
        bool ok;

        switch (c) {
        case LH_NAME:
            ok = *p >= 0x20 && *p != 0x7f;
            break;
        case LH_TOKEN:
            ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                 || *p == '.';
            break;
        case LH_ADDR:
            ok = alnum || strchr(".:_%-", *p) != NULL;
            break;
        case LH_PRINT:
            ok = *p >= 0x20 && *p < 0x7f;
            break;
        default:
            ok = alnum;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* lh_check - the field rules, for encode and decode */
static int lh_check(const struct login_handover *h, const char **error_r)
{
    if (!lh_one_of(h->service, lh_services))
        *error_r = "bad service";
    else if (!lh_field_ok(h->user, LH_NAME, 1, 255))
        *error_r = "bad user";
    else if (!lh_field_ok(h->token, LH_TOKEN, 1, LOGIN_TOKEN_MAX))
        *error_r = "bad token";
    else if (!lh_one_of(h->mechanism, lh_mechanisms))
        *error_r = "bad mechanism";
    else if (!lh_field_ok(h->client_address, LH_ADDR, 1, LH_ADDR_MAX)
             || !lh_field_ok(h->local_address, LH_ADDR, 1, LH_ADDR_MAX))
        *error_r = "bad address";
    else if (h->client_port < 0 || h->client_port > 65535
             || h->local_port < 0 || h->local_port > 65535)
        *error_r = "bad port";
    else if (!lh_field_ok(h->tls_info, LH_PRINT, 0, sizeof(h->tls_info) - 1)
             || (!h->tls && h->tls_info[0] != '\0'))
        *error_r = "bad tls_info";
    else if (!lh_field_ok(h->session, LH_ALNUM, 1, sizeof(h->session) - 1))
        *error_r = "bad session";
    else if (h->input_len > LOGIN_INPUT_MAX)
        *error_r = "too much input";
    else
        return 0;
    return -1;
}

/* login_handover_encode - see login_handover.h */
int login_handover_encode(const struct login_handover *h, attr_list_t *out,
                          const char **error_r)
{
    buf_t b64 = BUF_INIT;

    if (lh_check(h, error_r) < 0)
        return -1;
    if (h->input_len > 0 && sasl_base64_encode(h->input, h->input_len,
                                               &b64) < 0) {
        *error_r = "cannot encode the input";
        buf_free(&b64);
        return -1;
    }
    if (buf_putc(&b64, '\0') < 0) {
        *error_r = "cannot encode the input";
        buf_free(&b64);
        return -1;
    }
    attr_add(out, "request", "login");
    attr_add_long(out, "version", LOGIN_HANDOVER_VERSION);
    attr_add(out, "service", h->service);
    attr_add(out, "user", h->user);
    attr_add(out, "token", h->token);
    attr_add(out, "mechanism", h->mechanism);
    attr_add(out, "client_address", h->client_address);
    attr_add_long(out, "client_port", h->client_port);
    attr_add(out, "local_address", h->local_address);
    attr_add_long(out, "local_port", h->local_port);
    attr_add(out, "tls", h->tls ? "1" : "0");
    attr_add(out, "tls_info", h->tls_info);
    attr_add(out, "session", h->session);
    attr_add(out, "input", b64.data);
    explicit_bzero(b64.data, b64.len);
    buf_free(&b64);
    return 0;
}

/* lh_copy - a string attribute into a fixed field; -1 too long */
static int lh_copy(char *dst, size_t size, const char *src)
{
    return str_copy(dst, src, size) < size ? 0 : -1;
}

/* login_handover_decode - see login_handover.h */
int login_handover_decode(const attr_list_t *in, struct login_handover *h,
                          const char **error_r)
{
    long v = 0;
    const char *s;

    memset(h, 0, sizeof(*h));
    if (attr_check_names(in, lh_names, 14, error_r) < 0)
        return -1;
    if (strcmp(attr_get(in, "request"), "login") != 0) {
        *error_r = "not a login request";
        return -1;
    }
    if (strcmp(attr_get(in, "version"), "1") != 0) {
        *error_r = "unsupported protocol version";
        return -1;
    }
    if (lh_copy(h->service, sizeof(h->service), attr_get(in, "service")) < 0
        || lh_copy(h->user, sizeof(h->user), attr_get(in, "user")) < 0
        || lh_copy(h->token, sizeof(h->token), attr_get(in, "token")) < 0
        || lh_copy(h->mechanism, sizeof(h->mechanism),
                   attr_get(in, "mechanism")) < 0
        || lh_copy(h->client_address, sizeof(h->client_address),
                   attr_get(in, "client_address")) < 0
        || lh_copy(h->local_address, sizeof(h->local_address),
                   attr_get(in, "local_address")) < 0
        || lh_copy(h->tls_info, sizeof(h->tls_info),
                   attr_get(in, "tls_info")) < 0
        || lh_copy(h->session, sizeof(h->session),
                   attr_get(in, "session")) < 0) {
        *error_r = "field too long";
        goto fail;
    }
    /* numbers: plain decimal, as encode writes them */
    const char *nums[] = { "client_port", "local_port" };
    int *dst[] = { &h->client_port, &h->local_port };
    for (size_t i = 0; i < 2; i++) {
        s = attr_get(in, nums[i]);
        if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0')
            || parse_long(s, 0, 65535, &v) < 0) {
            *error_r = "bad port";
            goto fail;
        }
        *dst[i] = (int)v;
    }
    s = attr_get(in, "tls");
    if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
        *error_r = "bad tls";
        goto fail;
    }
    h->tls = s[0] == '1';
    if (lh_check(h, error_r) < 0)
        goto fail;
    s = attr_get(in, "input");
    if (*s != '\0') {
        buf_t raw;
        const char *berr = NULL;

        buf_init(&raw, LOGIN_INPUT_MAX);
        if (strlen(s) > ((LOGIN_INPUT_MAX + 2) / 3) * 4
            || sasl_base64_decode(s, strlen(s), &raw, &berr) < 0
            || raw.len == 0 || raw.len > LOGIN_INPUT_MAX) {
            if (raw.data != NULL)
                explicit_bzero(raw.data, raw.len);
            buf_free(&raw);
            *error_r = "bad input";
            goto fail;
        }
        memcpy(h->input, raw.data, raw.len);
        h->input_len = raw.len;
        explicit_bzero(raw.data, raw.len);
        buf_free(&raw);
    }
    return 0;
fail:
    login_handover_clear(h);
    return -1;
}

/* login_handover_clear - see login_handover.h */
void login_handover_clear(struct login_handover *h)
{
    explicit_bzero(h, sizeof(*h));
}

/* lh_wait - poll fd for events until deadline (monotonic ms); 1 ready,
   0 timeout, -1 error */
static int lh_wait(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = time_mono_msec();
        struct pollfd p = { .fd = fd, .events = events };
        uint64_t left = now < deadline ? deadline - now : 0;

        /* poll at least once: a descriptor that is ready now is ready
           even with no time left */
        int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            return 1;
        if (left == 0)
            return 0;
    }
}

/* login_handover_send - see login_handover.h */
int login_handover_send(const char *path, const struct login_handover *h,
                        int client_fd, const char **error_r)
{
    attr_list_t l;
    buf_t wire = BUF_INIT;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = -1;

    attr_list_init(&l);
    if (login_handover_encode(h, &l, error_r) < 0)
        goto fail;
    if (attr_encode(&l, &wire) < 0) {
        *error_r = "request too large";
        goto fail;
    }
    if (str_copy(sun.sun_path, path, sizeof(sun.sun_path))
        >= sizeof(sun.sun_path)) {
        *error_r = "socket path too long";
        goto fail;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *error_r = "socket failed";
        goto fail;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        /* a UNIX stream connect completes at once or fails (EAGAIN: the
           listener's backlog is full) */
        *error_r = errno == EAGAIN ? "the mail side is busy"
                                   : "cannot connect to the mail side";
        goto fail;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = { .iov_base = wire.data, .iov_len = wire.len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &client_fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)wire.len) {
        *error_r = n < 0 ? "cannot send the request"
                         : "the request did not fit the socket buffer";
        goto fail;
    }
    attr_list_wipe(&l);
    attr_list_free(&l);
    explicit_bzero(wire.data, wire.len);
    buf_free(&wire);
    return fd;
fail:
    if (fd >= 0)
        (void)close(fd);
    attr_list_wipe(&l);
    attr_list_free(&l);
    if (wire.data != NULL)
        explicit_bzero(wire.data, wire.len);
    buf_free(&wire);
    return -1;
}

/* lh_read_list - one attribute list from fd within deadline, nothing
   after it; 1 ok, -1 error (*error_r) */
static int lh_read_list(int fd, uint64_t deadline, size_t max,
                        attr_list_t *out, const char **error_r)
{
    buf_t in;
    char chunk[4096];
    int ret = -1;

    buf_init(&in, max);
    for (;;) {
        size_t used = 0;
        if (in.len > 0) {
            int r = attr_decode(in.data, in.len, out, &used, error_r);
            if (r < 0)
                break;
            if (r == 1) {
                if (used != in.len)
                    *error_r = "data after the message";
                else
                    ret = 1;
                break;
            }
        }
        int w = lh_wait(fd, POLLIN, deadline);
        if (w <= 0) {
            *error_r = w == 0 ? "timeout" : "poll failed";
            break;
        }
        ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            *error_r = n == 0 ? "unexpected EOF" : "read error";
            break;
        }
        if (buf_append(&in, chunk, (size_t)n) < 0) {
            *error_r = "message too long";
            break;
        }
    }
    explicit_bzero(chunk, sizeof(chunk));
    if (in.data != NULL)
        explicit_bzero(in.data, in.len);
    buf_free(&in);
    return ret;
}

/* login_handover_reply_read - see login_handover.h */
int login_handover_reply_read(int fd, int timeout_ms, char *reason,
                              size_t size, const char **error_r)
{
    static const char *const names[] = { "status", "reason", NULL };
    attr_list_t l;
    int ret = -1;

    if (size > 0)
        reason[0] = '\0';
    attr_list_init(&l);
    if (lh_read_list(fd, time_mono_msec() + (uint64_t)(timeout_ms > 0
                                                       ? timeout_ms : 0),
                     4096, &l, error_r) < 0)
        goto out;
    if (attr_check_names(&l, names, 1, error_r) < 0)
        goto out;
    const char *st = attr_get(&l, "status");
    const char *why = attr_get(&l, "reason");
    if (why == NULL)
        why = "";
    if (!lh_field_ok(why, LH_PRINT, 0, 255)) {
        *error_r = "bad reason";
        goto out;
    }
    if (strcmp(st, "ok") == 0) {
        ret = 1;
    } else if (strcmp(st, "fail") == 0) {
        (void)str_copy(reason, why, size);
        ret = 0;
    } else {
        *error_r = "bad status";
    }
out:
    attr_list_free(&l);
    return ret;
}

/* lh_close_fds - close every descriptor of a control message */
static void lh_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        (void)close(fds[i]);
}

/* login_handover_recv - see login_handover.h */
int login_handover_recv(int ipc_fd, int timeout_ms, struct login_handover *h,
                        int *client_fd_r, const char **error_r)
{
    uint64_t deadline = time_mono_msec() + (uint64_t)(timeout_ms > 0
                                                      ? timeout_ms : 0);
    int fds[LH_FDS_MAX];
    size_t nfds = 0;
    bool extra_fds = false;
    attr_list_t l;
    buf_t in;
    char chunk[8192];
    int ret = -1;

    *client_fd_r = -1;
    memset(h, 0, sizeof(*h));
    attr_list_init(&l);
    buf_init(&in, ATTR_MAX_MSG);
    for (;;) {
        size_t used = 0;
        if (in.len > 0) {
            int r = attr_decode(in.data, in.len, &l, &used, error_r);
            if (r < 0)
                goto out;
            if (r == 1) {
                if (used != in.len) {
                    *error_r = "data after the request";
                    goto out;
                }
                break;
            }
        }
        int w = lh_wait(ipc_fd, POLLIN, deadline);
        if (w <= 0) {
            *error_r = w == 0 ? "timeout" : "poll failed";
            goto out;
        }
        union {
            char buf[CMSG_SPACE(LH_FDS_MAX * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = chunk, .iov_len = sizeof(chunk) };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        ssize_t n = recvmsg(ipc_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            *error_r = "read error";
            goto out;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL;
             c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
                extra_fds = true;       /* credentials etc.: not ours */
                continue;
            }
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (nfds < LH_FDS_MAX)
                    fds[nfds++] = f;
                else {
                    (void)close(f);
                    extra_fds = true;
                }
            }
        }
        if (msg.msg_flags & MSG_CTRUNC)
            extra_fds = true;
        if (n == 0) {
            *error_r = "unexpected EOF";
            goto out;
        }
        if (buf_append(&in, chunk, (size_t)n) < 0) {
            *error_r = "request too long";
            goto out;
        }
    }
    if (extra_fds || nfds != 1) {
        *error_r = nfds > 1 ? "more than one descriptor with the request"
                   : extra_fds ? "unexpected control data with the request"
                   : "no descriptor with the request";
        goto out;
    }
    if (login_handover_decode(&l, h, error_r) < 0)
        goto out;
    *client_fd_r = fds[0];
    nfds = 0;
    ret = 0;
out:
    lh_close_fds(fds, nfds);
    explicit_bzero(chunk, sizeof(chunk));
    if (in.data != NULL)
        explicit_bzero(in.data, in.len);
    buf_free(&in);
    attr_list_wipe(&l);
    attr_list_free(&l);
    if (ret < 0)
        login_handover_clear(h);
    return ret;
}

/* login_handover_reply - see login_handover.h */
int login_handover_reply(int ipc_fd, bool ok, const char *reason,
                         int timeout_ms)
{
    attr_list_t l;
    char why[256];
    int sec = timeout_ms <= 0 ? 1 : (timeout_ms + 999) / 1000;

    attr_list_init(&l);
    attr_add(&l, "status", ok ? "ok" : "fail");
    if (!ok) {
        /* printable ASCII only, as the reader insists */
        size_t i = 0;
        for (const char *p = reason != NULL ? reason : ""; *p
             && i < sizeof(why) - 1; p++)
            why[i++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
        why[i] = '\0';
        attr_add(&l, "reason", why);
    }
    int r = attr_write_fd(ipc_fd, &l, sec);
    attr_list_free(&l);
    return r;
}

/*
 * pop3d - the mail side of POP3: one logged-in user's Maildir INBOX.
 *
 * A request server on $queue_directory/login/pop3d (master.conf:
 * "login/pop3d unix - n n - 1000 pop3d"), started as root. A request is
 * a login process's hand-over (login_handover.h): the client descriptor
 * and who logged in. pop3d serves one session per process and then
 * exits, since it has become the user:
 *   1. login_handover_recv; the token must be auth's for (pop3, user)
 *      (login_token_check), the user must exist (mailuser_lookup) and,
 *      when we are root, must not be root; else status=fail to the
 *      login process (which answers the client) and the next request.
 *   2. status=ok to the login process; from here on the client is ours.
 *   3. Everything root had that the user must not: the user tables
 *      (mapped LMDB files: the virtual table holds password hashes),
 *      the token key, the listening socket (a session that could accept
 *      would receive other users' hand-overs) and the status pipe are
 *      closed or wiped; then the drop for good: setgroups (the user's
 *      groups), setresgid, setresuid, PR_SET_NO_NEW_PRIVS, and a check
 *      that none of it can be undone. Not root (the developer instance):
 *      nothing changes.
 *   4. As the user: open ~/$home_mailbox (a Maildir: the name ends in
 *      '/'; else -ERR [SYS/PERM]) with O_NOFOLLOW|O_DIRECTORY; take the
 *      POP3 lock (flock on Maildir/tern-pop3.lock, never waiting:
 *      "-ERR [IN-USE] ..."); list it once (maildir_list.h: mail that
 *      arrives later is shown in the next session); "+OK Logged in."
 *      answers the PASS or AUTH the login process received; the input
 *      the client pipelined after it (part of the request) is served
 *      first, then the socket (pop3d_session.c has the protocol).
 * A Maildir that does not exist yet is an empty mailbox (nothing is
 * created: local(8) makes it with the first delivery).
 *
 * I/O: blocking in spirit (one client), the descriptor non-blocking
 * with poll() deadlines: $pop3d_timeout of silence from the client, or
 * of a client that does not take our output, ends the session; so does
 * master's SIGTERM (a signalfd beside the client). Neither deletes
 * anything: only QUIT does.
 *
 * Log (Dovecot's wording): "Disconnected: Logged out user=<NAME>
 * top=N/BYTES, retr=N/BYTES, del=DELETED/MESSAGES, size=OCTETS", with
 * "Inactivity", "Connection closed", "Too many bad commands", "Server
 * shutting down" in place of "Logged out" when the session ended so.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/login_handover.h"
#include "mail/login_token.h"
#include "mail/maildir_list.h"
#include "mail/mailuser.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/sys.h"
#include "util/util.h"
#include "pop3d_session.h"

#define POP3D_LOCK_FILE "tern-pop3.lock"
#define POP3D_READ_SIZE 8192
/* a login process sends its request at once, on connect */
#define POP3D_HANDOVER_MS (30 * 1000)

/* the client connection as the session's writer sees it */
struct pop3d_client {
    int fd;
    int sigfd;              /* SIGTERM, or -1 */
    int timeout_ms;
    const char *end;        /* why the I/O stopped: NULL, or a log reason */
};

static void pop3d_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    if (mailuser_init() < 0)
        log_fatal("cannot open the user tables");
    if (login_token_key_load(var_data_directory) < 0)
        log_fatal("cannot load the login token key");
}

/* ---- client I/O ------------------------------------------------------ */

/* client_wait - poll the client for events (and SIGTERM); 1 ready, 0 the
   deadline passed (c->end set), -1 SIGTERM or error (c->end set) */
static int client_wait(struct pop3d_client *c, short events)
{
    struct pollfd p[2] = { { c->fd, events, 0 }, { c->sigfd, POLLIN, 0 } };
    uint64_t deadline = time_mono_msec() + (uint64_t)c->timeout_ms;

    for (;;) {
        uint64_t now = time_mono_msec();
        int left = now >= deadline ? 0 : (int)(deadline - now);
        int r = poll(p, c->sigfd >= 0 ? 2 : 1, left);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            log_warning("poll: %s", strerror(errno));
            c->end = "Connection closed";
            return -1;
        }
        if (r == 0) {
            c->end = "Inactivity";
            return 0;
        }
        if (c->sigfd >= 0 && (p[1].revents & POLLIN)) {
            c->end = "Server shutting down";
            return -1;
        }
        return 1;
    }
}

/* client_write - the session's writer: all of p, within the deadline */
static int client_write(void *ctx, const char *p, size_t n)
{
    struct pop3d_client *c = ctx;

    while (n > 0) {
        ssize_t w = write(c->fd, p, n);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (client_wait(c, POLLOUT) <= 0)
                return -1;
            continue;
        }
        if (c->end == NULL)
            c->end = "Connection closed";
        return -1;
    }
    return 0;
}

/* client_say - a last line, never waiting (the client may be gone) */
static void client_say(int fd, const char *line)
{
    size_t n = strlen(line);

    if (write(fd, line, n) < 0) {
        /* nothing to do: we are closing anyway */
    }
}

/* ---- the hand-over ---------------------------------------------------- */

/* pop3d_refuse - status=fail to the login process, drop the client */
static void pop3d_refuse(int ipc_fd, int client_fd, struct login_handover *h,
                         const char *reason)
{
    log_warning("login from session %s refused: user=<%s>: %s", h->session,
                h->user, reason);
    if (login_handover_reply(ipc_fd, false, reason, POP3D_HANDOVER_MS) < 0)
        log_warning("reply to the login process: %s", strerror(errno));
    (void)close(client_fd);
    login_handover_clear(h);
}

/* pop3d_close_inherited - the listening sockets and the status pipe
   master gave us: a user's process must not accept other hand-overs
   (any listening socket among the low descriptors, wherever it came
   from) */
static void pop3d_close_inherited(int keep1, int keep2)
{
    struct stat st;

    if (fstat(SERVER_STATUS_FD, &st) == 0 && S_ISFIFO(st.st_mode))
        (void)close(SERVER_STATUS_FD);
    for (int fd = 0; fd < SERVER_LISTEN_FD + 64; fd++) {
        int on = 0;
        socklen_t len = sizeof(on);

        if (fd == keep1 || fd == keep2)
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on)
            (void)close(fd);
    }
}

/* pop3d_drop - become uid/gid with the user's groups, for good; 0 ok,
   -1 with *error_r */
static int pop3d_drop(uid_t uid, gid_t gid, const char **error_r)
{
    static char err[256];
    int n = 0;
    gid_t *groups;

    if (!privs_running_as_root())
        return 0;
    groups = privs_groups(uid, gid, (gid_t)-1, &n);
    if (setgroups((size_t)n, groups) < 0) {
        snprintf(err, sizeof(err), "setgroups: %s", strerror(errno));
        free(groups);
        *error_r = err;
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        snprintf(err, sizeof(err), "setresgid/setresuid: %s", strerror(errno));
        free(groups);
        *error_r = err;
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, sizeof(err), "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        free(groups);
        *error_r = err;
        return -1;
    }
    /* verify: every ID is the user's, the groups are exactly the user's,
       and none of it can be undone */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    int got = getgroups(0, NULL);
    gid_t *now = got >= 0 ? xcalloc((size_t)got + 1, sizeof(*now)) : NULL;
    bool same = now != NULL && getgroups(got, now) == got && got == n;

    for (int i = 0; same && i < n; i++) {
        bool found = false;
        for (int j = 0; j < got && !found; j++)
            found = now[j] == groups[i];
        same = found;
    }
    free(now);
    free(groups);
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0
        || ru != uid || eu != uid || su != uid
        || rg != gid || eg != gid || sg != gid || !same) {
        *error_r = "the IDs after the drop are not the user's";
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        *error_r = "root could be regained after the drop";
        return -1;
    }
    if (gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        *error_r = "group 0 could be regained after the drop";
        return -1;
    }
    /* and no capability is left (the kernel clears them when every uid
       leaves 0, unless someone set SECBIT_KEEP_CAPS) */
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    memset(caps, 0, sizeof(caps));
    if (syscall(SYS_capget, &hdr, caps) < 0) {
        snprintf(err, sizeof(err), "capget: %s", strerror(errno));
        *error_r = err;
        return -1;
    }
    for (int i = 0; uid != 0 && i < _LINUX_CAPABILITY_U32S_3; i++)
        if (caps[i].effective != 0 || caps[i].permitted != 0) {
            *error_r = "capabilities left after the drop";
            return -1;
        }
    return 0;
}

/* ---- the mailbox ------------------------------------------------------ */

static int store_open(void *ctx, const struct maildir_msg *m)
{
    return maildir_msg_open(*(int *)ctx, m);
}

static int store_unlink(void *ctx, const struct maildir_msg *m)
{
    return maildir_msg_unlink(*(int *)ctx, m);
}

static int store_add_flag(void *ctx, struct maildir_msg *m, char flag)
{
    return maildir_msg_add_flag(*(int *)ctx, m, flag);
}

/* mailbox_open - the user's Maildir, locked; the Maildir's descriptor,
   -2 when it does not exist (an empty mailbox), or -1 after the client
   was told why (*lock_fd_r: the lock, to keep open) */
static int mailbox_open(int client_fd, const struct mail_user *u,
                        int *lock_fd_r)
{
    const char *mb = var_home_mailbox;
    size_t mlen = strlen(mb);
    char path[4096 + 256];
    struct stat st;

    *lock_fd_r = -1;
    if (mlen == 0 || mb[mlen - 1] != '/' || mb[0] == '/') {
        log_warning("user=<%s>: home_mailbox \"%s\" is not a Maildir in the "
                    "home directory (it must end with '/')", u->name, mb);
        client_say(client_fd, "-ERR [SYS/PERM] The mailbox is not a Maildir.\r\n");
        return -1;
    }
    if (u->home[0] != '/') {
        log_warning("user=<%s>: home directory \"%s\" is not absolute",
                    u->name, u->home);
        client_say(client_fd, "-ERR [SYS/PERM] Cannot open the mailbox.\r\n");
        return -1;
    }
    int n = snprintf(path, sizeof(path), "%s/%.*s", u->home, (int)(mlen - 1), mb);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        log_warning("user=<%s>: mailbox path too long", u->name);
        client_say(client_fd, "-ERR [SYS/PERM] Cannot open the mailbox.\r\n");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -2;
    if (fd < 0) {
        log_warning("user=<%s>: open %s: %s", u->name, path, strerror(errno));
        client_say(client_fd, "-ERR [SYS/TEMP] Cannot open the mailbox.\r\n");
        return -1;
    }
    int lfd = openat(fd, POP3D_LOCK_FILE,
                     O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || fstat(lfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        log_warning("user=<%s>: lock file %s/%s: %s", u->name, path,
                    POP3D_LOCK_FILE, lfd < 0 ? strerror(errno) : "not a file");
        client_say(client_fd, "-ERR [SYS/TEMP] Cannot lock the mailbox.\r\n");
        if (lfd >= 0)
            (void)close(lfd);
        (void)close(fd);
        return -1;
    }
    while (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK) {
            log_info("Disconnected: Mailbox in use user=<%s>", u->name);
            client_say(client_fd, "-ERR [IN-USE] Mailbox is locked by "
                                  "another POP3 session\r\n");
        } else {
            log_warning("user=<%s>: flock %s/%s: %s", u->name, path,
                        POP3D_LOCK_FILE, strerror(errno));
            client_say(client_fd, "-ERR [SYS/TEMP] Cannot lock the mailbox.\r\n");
        }
        (void)close(lfd);
        (void)close(fd);
        return -1;
    }
    *lock_fd_r = lfd;
    return fd;
}

/* ---- the session ------------------------------------------------------ */

/* pop3d_session_run - serve the client until the session ends; the log
   reason */
static const char *pop3d_session_run(pop3d_session_t *s,
                                     struct pop3d_client *c,
                                     const unsigned char *input,
                                     size_t input_len)
{
    char buf[POP3D_READ_SIZE];
    enum pop3d_status st;

    pop3d_session_reply(s, "+OK Logged in.");
    if (input_len > 0)
        st = pop3d_session_input(s, (const char *)input, input_len);
    else
        st = pop3d_session_flush(s) < 0 ? POP3D_CLOSE : POP3D_CONTINUE;
    while (st == POP3D_CONTINUE) {
        if (client_wait(c, POLLIN) <= 0)
            break;
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN
                      || errno == EWOULDBLOCK))
            continue;
        if (n <= 0) {
            c->end = "Connection closed";
            break;
        }
        st = pop3d_session_input(s, buf, (size_t)n);
    }
    explicit_bzero(buf, sizeof(buf));
    if (st == POP3D_QUIT)
        return "Logged out";
    if (st == POP3D_CLOSE && c->end == NULL)
        return pop3d_session_close_reason(s);
    if (c->end != NULL && strcmp(c->end, "Inactivity") == 0)
        client_say(c->fd, "-ERR Disconnected for inactivity.\r\n");
    else if (c->end != NULL && strcmp(c->end, "Server shutting down") == 0)
        client_say(c->fd, "-ERR [SYS/TEMP] Server shutting down.\r\n");
    return c->end ? c->end : "Connection closed";
}

/* pop3d_sigterm_fd - SIGTERM as a descriptor (the skeleton blocked the
   signal for its own signalfd, which nobody reads while we serve) */
static int pop3d_sigterm_fd(void)
{
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* pop3d_serve - one hand-over; returns only when it was refused */
static void pop3d_serve(int ipc_fd)
{
    static struct login_handover h;     /* large: not on the stack */
    struct mail_user u;
    const char *err = NULL;
    int client_fd = -1;

    if (login_handover_recv(ipc_fd, POP3D_HANDOVER_MS, &h,
                            &client_fd, &err) < 0) {
        log_warning("login/pop3d client: %s", err ? err : "bad request");
        login_handover_clear(&h);
        return;
    }
    struct stat cst;
    if (fstat(client_fd, &cst) < 0 || !S_ISSOCK(cst.st_mode)) {
        pop3d_refuse(ipc_fd, client_fd, &h, "the client is not a socket");
        return;
    }
    if (strcmp(h.service, "pop3") != 0) {
        pop3d_refuse(ipc_fd, client_fd, &h, "not a pop3 login");
        return;
    }
    if (!login_token_check("pop3", h.user, h.token, time(NULL))) {
        pop3d_refuse(ipc_fd, client_fd, &h, "invalid login token");
        return;
    }
    int found = mailuser_lookup(h.user, &u);
    if (found <= 0) {
        pop3d_refuse(ipc_fd, client_fd, &h, found < 0
                     ? "user lookup failed (temporary)" : "no such user");
        return;
    }
    if (privs_running_as_root() && u.uid == 0) {
        pop3d_refuse(ipc_fd, client_fd, &h, "the user has uid 0");
        return;
    }
    if (login_handover_reply(ipc_fd, true, NULL, POP3D_HANDOVER_MS) < 0) {
        log_warning("user=<%s>: reply to the login process: %s", h.user,
                    strerror(errno));
        (void)close(client_fd);
        login_handover_clear(&h);
        return;
    }

    /* the client is ours now; from here the process ends with it */
    char user[sizeof(h.user)];
    unsigned char input[LOGIN_INPUT_MAX];
    size_t input_len = h.input_len;

    str_copy(user, h.user, sizeof(user));
    memcpy(input, h.input, input_len);
    login_handover_clear(&h);
    (void)close(ipc_fd);
    mailuser_close();
    login_token_key_wipe();
    pop3d_close_inherited(client_fd, -1);
    if (pop3d_drop(u.uid, u.gid, &err) < 0) {
        client_say(client_fd, "-ERR [SYS/TEMP] Internal error.\r\n");
        log_fatal("user=<%s>: privilege drop: %s", user, err);
    }
    server_pdeathsig_renew();

    struct pop3d_client c = { client_fd, pop3d_sigterm_fd(),
                              (int)var_pop3d_timeout * 1000, NULL };
    int one = 1;
    (void)fd_set_nonblock(client_fd, true);
    /* replies are batched here: Nagle would only hold back the last one */
    (void)setsockopt(client_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    int lock_fd = -1;
    int mfd = mailbox_open(client_fd, &u, &lock_fd);
    if (mfd == -1) {
        explicit_bzero(input, sizeof(input));
        exit(0);
    }
    struct maildir_listing listing;
    memset(&listing, 0, sizeof(listing));
    if (mfd >= 0 && maildir_list(mfd, &listing, &err) < 0) {
        log_warning("user=<%s>: cannot list the mailbox: %s", user,
                    err ? err : "error");
        client_say(client_fd, "-ERR [SYS/TEMP] Cannot list the mailbox.\r\n");
        explicit_bzero(input, sizeof(input));
        exit(0);
    }

    struct pop3d_store store = { store_open, store_unlink, store_add_flag,
                                 &mfd };
    struct pop3d_params params = { var_pop3d_hard_error_limit,
                                   var_pop3d_mark_retrieved_seen };
    pop3d_session_t *s = pop3d_session_new(&listing, &store, client_write,
                                           &c, &params);
    const char *why = pop3d_session_run(s, &c, input, input_len);
    const struct pop3d_stats *st = pop3d_session_stats(s);

    explicit_bzero(input, sizeof(input));
    log_info("Disconnected: %s user=<%s> top=%lu/%llu, retr=%lu/%llu, "
             "del=%lu/%lu, size=%llu", why, user, st->top_count,
             st->top_bytes, st->retr_count, st->retr_bytes, st->del_count,
             st->msg_count, st->mailbox_size);
    pop3d_session_free(s);
    maildir_listing_free(&listing);
    (void)close(client_fd);
    if (lock_fd >= 0)
        (void)close(lock_fd);
    if (mfd >= 0)
        (void)close(mfd);
    exit(0);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = pop3d_pre_init,
        .on_request_conn = pop3d_serve,
    };
    return request_server_main(argc, argv, &ops);
}

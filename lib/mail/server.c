/*
 * server - the daemon skeletons (event, trigger, request server) and the
 * common start-up every daemon shares: arguments from master, config,
 * logging, privilege drop, the status pipe to master, recycling
 * (max_use/max_idle) and signals. See server.h for the contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/attr.h"
#include "util/buf.h"
#include "config.h"
#include "dict_proxy.h"
#include "util/events.h"
#include "util/log.h"
#include "util/privs.h"
#include "queue.h"
#include "server.h"
#include "util/util.h"

#define SERVER_DEFAULT_CLIENT_LIMIT 256
#define SERVER_TRIGGER_MAX 1024
#define SERVER_ACCEPT_BATCH 64
#define SERVER_DRAIN_QUIET_MSEC 100     /* no events this long: all flushed */
#define SERVER_DRAIN_MAX_MSEC 5000
#define SERVER_ACCEPT_PAUSE_MSEC 1000   /* out of fds/memory: stop accepting */
#define SERVER_ACCEPT_WARN_MSEC 10000   /* ... and say so at most this often */

enum server_kind { SERVER_EVENT, SERVER_TRIGGER, SERVER_REQUEST };

static struct {
    enum server_kind kind;
    const struct server_ops *ops;
    ev_loop_t *loop;
    const char *service;
    const char *type;
    int nlisten;
    bool opt_unpriv, opt_chroot, opt_foreground;
    int verbose;
    int status_fd;          /* -1 when not run by master */
    pid_t master_pid;       /* our parent at start-up */
    pid_t pid;              /* ours (the status records carry it) */
    int last_avail;         /* last value reported, -1 none yet */
    bool last_served;       /* served=1 reported */
    bool watching;          /* listeners registered for EV_READ */
    bool stopping;          /* SIGHUP: exit when the last client is done */
    bool stopping_now;      /* SIGTERM seen: ops->on_stop ran */
    bool exit_pending;      /* done: let closing connections flush, exit */
    uint64_t exit_deadline;
    size_t conns;           /* busy connections (event, request; a
                               trigger server's are never busy) */
    size_t client_limit;
    long uses;
    ev_timer_t idle_timer;
    bool accept_paused;     /* accept() ran out of resources: wait */
    ev_timer_t accept_timer;
    bool accept_warned;     /* accept_warn_time is valid */
    uint64_t accept_warn_time;
    unsigned long accept_suppressed;
} srv = { .status_fd = -1, .last_avail = -1 };

static void server_update(void);
static void server_accept_resume(ev_loop_t *loop, void *arg);

/* server_service_name - the -n argument */
const char *server_service_name(void)
{
    return srv.service ? srv.service : "";
}

/* server_stopping - whether a graceful stop is in progress */
bool server_stopping(void)
{
    return srv.stopping;
}

/* server_status_send - tell master whether we can take work */
static void server_status_send(int avail)
{
    struct server_status st;

    bool served = srv.uses > 0;

    if (srv.status_fd < 0
        || (srv.last_avail == avail && srv.last_served == served))
        return;
    memset(&st, 0, sizeof(st));
    st.pid = srv.pid;
    st.avail = avail;
    st.served = served;
    st.event = srv.kind == SERVER_EVENT;
    /* sizeof(st) < PIPE_BUF: the write is atomic or fails whole */
    if (write(srv.status_fd, &st, sizeof(st)) != (ssize_t)sizeof(st)) {
        if (errno != EAGAIN)
            log_warning("status pipe write: %s", strerror(errno));
        return;
    }
    srv.last_avail = avail;
    srv.last_served = served;
}

/* server_exit - run pre_exit and leave */
static void __attribute__((noreturn)) server_exit(void)
{
    if (srv.ops->pre_exit)
        srv.ops->pre_exit();
    exit(0);
}

/* server_exit_soon - leave once the loop has flushed what is queued
   (replies written just before stream_close still reach the client) */
static void server_exit_soon(void)
{
    if (srv.exit_pending)
        return;
    srv.exit_pending = true;
    srv.exit_deadline = time_mono_msec() + SERVER_DRAIN_MAX_MSEC;
    ev_timer_stop(srv.loop, &srv.idle_timer);
}

static bool server_recycles(void)
{
    return !srv.ops->long_running;
}

static bool server_used_up(void)
{
    return server_recycles() && var_max_use > 0 && srv.uses >= var_max_use;
}

/* server_can_take - whether to accept another client now */
static bool server_can_take(void)
{
    return !srv.exit_pending && !srv.stopping && !server_used_up()
           && srv.conns < srv.client_limit;
}

/* server_watch - (un)register interest in the listening sockets */
static void server_watch(bool on)
{
    if (on == srv.watching)
        return;
    for (int i = 0; i < srv.nlisten; i++)
        if (ev_io_modify(srv.loop, SERVER_LISTEN_FD + i, on ? EV_READ : 0) < 0)
            log_fatal("watch listener: %s", strerror(errno));
    srv.watching = on;
}

static void server_idle_expired(ev_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    if (srv.conns == 0) {
        log_debug("idle timeout -- exiting");
        server_exit_soon();
        server_update();
    }
}

/* server_update - recompute accepting state, report it, maybe exit */
static void server_update(void)
{
    bool can_take;

    if (srv.conns == 0 && (srv.stopping || server_used_up()))
        server_exit_soon();
    can_take = server_can_take();
    server_watch(can_take && !srv.accept_paused);
    server_status_send(can_take ? 1 : 0);
    if (srv.exit_pending)
        return;
    if (srv.conns == 0 && server_recycles() && var_max_idle > 0) {
        if (!ev_timer_active(&srv.idle_timer))
            ev_timer_set(srv.loop, &srv.idle_timer,
                         (uint64_t)var_max_idle * 1000);
    } else {
        ev_timer_stop(srv.loop, &srv.idle_timer);
    }
}

/* server_conn_done - an event-server connection ended */
void server_conn_done(void)
{
    if (srv.conns == 0)
        log_panic("server_conn_done: no open connection");
    srv.conns--;
    server_update();
}

/* ---- signals --------------------------------------------------------- */

static void server_on_signal(ev_loop_t *loop, int signo, void *arg)
{
    (void)loop;
    (void)arg;
    if (signo == SIGTERM) {
        log_debug("terminating on signal %d", signo);
        if (srv.ops->on_stop == NULL || srv.stopping_now)
            server_exit();
        srv.stopping = srv.stopping_now = true;
        srv.ops->on_stop();
        server_exit_soon();         /* the goodbyes are flushed first */
        server_update();
        return;
    }
    /* SIGHUP: master reloaded; finish current work, then go */
    srv.stopping = true;
    server_update();
}

/* server_pdeathsig_renew - seteuid()/setegid() cleared it: set it again */
void server_pdeathsig_renew(void)
{
    if (srv.status_fd < 0)
        return;             /* not run by master */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        log_fatal("prctl: %s", strerror(errno));
    if (getppid() != srv.master_pid) {
        log_debug("master went away while the parent-death signal was off");
        (void)kill(getpid(), SIGTERM);
    }
}

/* ---- start-up ----------------------------------------------------------- */

static void server_usage(const char *prog)
{
    log_fatal("usage: %s -n service -t type -s count [-u] [-c] [-z] [-v] "
              "[-o name=value]... [args]", prog);
}

/* server_parse_args - master's arguments; returns index of daemon args */
static int server_parse_args(int argc, char **argv)
{
    int c;
    long n;

    opterr = 0;
    optind = 1;
    while ((c = getopt(argc, argv, "+n:t:s:uczvo:")) != -1) {
        switch (c) {
        case 'n': srv.service = optarg; break;
        case 't': srv.type = optarg; break;
        case 's':
            if (parse_long(optarg, 0, 1024, &n) < 0)
                log_fatal("bad listener count: %s", optarg);
            srv.nlisten = (int)n;
            break;
        case 'u': srv.opt_unpriv = true; break;
        case 'c': srv.opt_chroot = true; break;
        case 'z': srv.opt_foreground = true; break;
        case 'v': srv.verbose++; break;
        case 'o':
            if (config_add_override(optarg) < 0)
                log_fatal("bad -o argument: %s", optarg);
            break;
        default:
            server_usage(argv[0]);
        }
    }
    if (srv.service == NULL)
        srv.service = argv[0];
    if (srv.type == NULL)
        srv.type = "unix";
    return optind;
}

static const char *server_basename(const char *path)
{
    const char *p = strrchr(path, '/');

    return p ? p + 1 : path;
}

/* server_config - main.conf and logging */
static void server_config(const char *prog)
{
    buf_t err = BUF_INIT;

    if (config_load(config_directory_default(NULL), &err) < 0)
        log_fatal("%s", buf_str(&err));
    buf_free(&err);
    config_apply_logging(prog);
    if (srv.opt_foreground)
        log_set_stderr(true);
    if (srv.verbose)
        log_set_verbose(srv.verbose);
}

/* server_will_chroot - master asked for a chroot (or this is a login
   process) and we can do it */
static bool server_will_chroot(void)
{
    return (srv.opt_chroot || srv.ops->login_process)
           && privs_running_as_root();
}

static void server_chroot_prepare(void);

/* server_login_dir_check - the login chroot: a directory of ours (root's)
   that nobody else can write, so that the unprivileged login process
   cannot change what it contains */
static void server_login_dir_check(void)
{
    struct stat st;

    if (lstat(QUEUE_LOGIN_DIR, &st) < 0)
        log_fatal("%s/%s: %s", var_queue_directory, QUEUE_LOGIN_DIR,
                  strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & 022) != 0)
        log_fatal("%s/%s must be a directory owned by uid %ld, not writable "
                  "by group or others", var_queue_directory,
                  QUEUE_LOGIN_DIR, (long)geteuid());
}

/* server_drop_login - a login process: $login_user, chroot login/ (as
   root); the developer instance only moves into login/ */
static void server_drop_login(void)
{
    uid_t uid;
    gid_t gid;
    const char *error;

    server_login_dir_check();
    if (!privs_running_as_root()) {
        if (chdir(QUEUE_LOGIN_DIR) < 0)
            log_fatal("chdir %s/%s: %s", var_queue_directory,
                      QUEUE_LOGIN_DIR, strerror(errno));
        return;
    }
    server_chroot_prepare();
    if (privs_lookup_user(var_login_user, &uid, &gid) < 0)
        log_fatal("unknown login_user user: %s", var_login_user);
    if (uid == 0)
        log_fatal("login_user %s must not be root", var_login_user);
    if (privs_drop(uid, gid, QUEUE_LOGIN_DIR, &error) < 0)
        log_fatal("privilege drop: %s", error);
}

/* server_chroot_prepare - what the process needs from outside the jail
   and would otherwise only fetch after the chroot: the time zone
   (glibc reads /etc/localtime once, at the first localtime call or
   tzset, and keeps it while TZ does not change) and the syslog socket
   (/dev/log). The log file and the tables are opened already. */
static void server_chroot_prepare(void)
{
    tzset();
    log_connect_now();
}

/* server_drop_privs - chroot and/or become $mail_owner, as master asked */
static void server_drop_privs(void)
{
    uid_t uid;
    gid_t gid;
    const char *error;

    if (srv.ops->login_process) {
        server_drop_login();
        return;
    }
    if (!privs_running_as_root())
        return;
    if (srv.opt_chroot)
        server_chroot_prepare();
    if (srv.opt_unpriv) {
        if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0)
            log_fatal("unknown mail_owner user: %s", var_mail_owner);
        if (privs_drop(uid, gid, srv.opt_chroot ? var_queue_directory : NULL,
                       &error) < 0)
            log_fatal("privilege drop: %s", error);
    } else if (srv.opt_chroot) {
        if (chroot(var_queue_directory) < 0 || chdir("/") < 0)
            log_fatal("chroot %s: %s", var_queue_directory, strerror(errno));
    }
}

/* server_check_fds - status pipe and listeners as master passed them */
static void server_check_fds(void)
{
    struct stat st;

    /* run by hand there is no status pipe (and fd 3 may be anything) */
    if (fstat(SERVER_STATUS_FD, &st) == 0 && S_ISFIFO(st.st_mode)) {
        srv.status_fd = SERVER_STATUS_FD;
        if (fd_set_nonblock(srv.status_fd, true) < 0
            || fd_set_cloexec(srv.status_fd, true) < 0)
            log_fatal("status pipe: %s", strerror(errno));
    }
    for (int i = 0; i < srv.nlisten; i++) {
        int fd = SERVER_LISTEN_FD + i;

        if (fd_set_nonblock(fd, true) < 0 || fd_set_cloexec(fd, true) < 0)
            log_fatal("listener fd %d: %s", fd, strerror(errno));
    }
}

/* server_start - everything up to the loop */
static void server_start(int argc, char **argv, const struct server_ops *ops,
                         enum server_kind kind)
{
    const char *prog = server_basename(argv[0]);
    pid_t master_pid = getppid();
    int first;

    srv.kind = kind;
    srv.ops = ops;
    log_init("tern", prog);
    first = server_parse_args(argc, argv);
    if (srv.opt_foreground)
        log_set_stderr(true);   /* config errors reach the terminal too */
    /* before anything (the maillog file) can be opened on fd 3 */
    server_check_fds();
    server_config(prog);
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        log_fatal("signal: %s", strerror(errno));
    /* inside the jail no table file can be (re)opened: every lmdb:
       table and the password database go through proxymap instead */
    if (server_will_chroot())
        dict_proxy_set_all(true);
    if (ops->pre_init)
        ops->pre_init(srv.service, argv + first, argc - first);
    if (chdir(var_queue_directory) < 0)
        log_fatal("chdir %s: %s", var_queue_directory, strerror(errno));
    server_drop_privs();
    srv.master_pid = master_pid;
    srv.pid = getpid();
    if (srv.status_fd >= 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
            log_fatal("prctl: %s", strerror(errno));
        if (getppid() != master_pid)
            log_fatal("master went away during start-up");
    }
    srv.loop = ev_loop_new();
    if (srv.loop == NULL)
        log_fatal("event loop: %s", strerror(errno));
    if (ev_signal_add(srv.loop, SIGTERM, server_on_signal, NULL) < 0
        || ev_signal_add(srv.loop, SIGHUP, server_on_signal, NULL) < 0)
        log_fatal("signal setup: %s", strerror(errno));
    ev_timer_init(&srv.idle_timer, server_idle_expired, NULL);
    ev_timer_init(&srv.accept_timer, server_accept_resume, NULL);
    srv.client_limit = ops->client_limit ? ops->client_limit
                                         : SERVER_DEFAULT_CLIENT_LIMIT;
}

/* server_listen_all - register every listener (quiet) with cb */
static void server_listen_all(ev_io_cb cb)
{
    for (int i = 0; i < srv.nlisten; i++)
        if (ev_io_add(srv.loop, SERVER_LISTEN_FD + i, 0, cb, NULL) < 0)
            log_fatal("listener fd %d: %s", SERVER_LISTEN_FD + i,
                      strerror(errno));
}

/* server_run - post_init, first status report, loop */
static int server_run(void)
{
    if (srv.ops->post_init)
        srv.ops->post_init(srv.loop);
    server_update();
    for (;;) {
        int n = ev_loop_run_once(srv.loop, srv.exit_pending
                                           ? SERVER_DRAIN_QUIET_MSEC : -1);

        if (n < 0 && errno != EINTR)
            log_fatal("event loop: %s", strerror(errno));
        if (srv.exit_pending
            && ((n == 0 && !(srv.ops->busy && srv.ops->busy()))
                || time_mono_msec() >= srv.exit_deadline))
            server_exit();
    }
}

static void server_accept_resume(ev_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    srv.accept_paused = false;
    server_update();
}

/* server_accept_backoff - accept() failed for lack of descriptors or
   memory. The waiting connection stays in the listen queue and the
   level-triggered listener stays readable, so retrying at once would
   spin (and log) until something is freed: stop watching the listeners
   for a moment instead, and warn at most every SERVER_ACCEPT_WARN_MSEC. */
static void server_accept_backoff(int err)
{
    uint64_t now = time_mono_msec();

    if (!srv.accept_warned
        || now - srv.accept_warn_time >= SERVER_ACCEPT_WARN_MSEC) {
        if (srv.accept_suppressed > 0)
            log_warning("accept: %s (%lu more times since the last "
                        "warning); pausing %u ms each time", strerror(err),
                        srv.accept_suppressed, SERVER_ACCEPT_PAUSE_MSEC);
        else
            log_warning("accept: %s; pausing %u ms", strerror(err),
                        SERVER_ACCEPT_PAUSE_MSEC);
        srv.accept_warned = true;
        srv.accept_warn_time = now;
        srv.accept_suppressed = 0;
    } else {
        srv.accept_suppressed++;
    }
    srv.accept_paused = true;
    ev_timer_set(srv.loop, &srv.accept_timer, SERVER_ACCEPT_PAUSE_MSEC);
}

/* server_accept_error - true when accepting should stop for now */
static bool server_accept_error(void)
{
    switch (errno) {
    case EAGAIN:
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
        return errno == EAGAIN;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        server_accept_backoff(errno);
        return true;
    default:
        log_fatal("accept: %s", strerror(errno));
    }
}

/* ---- event server ---------------------------------------------------- */

static void event_server_accept(ev_loop_t *loop, int lfd, unsigned events,
                                void *arg)
{
    (void)events;
    (void)arg;
    for (int n = 0; n < SERVER_ACCEPT_BATCH; n++) {
        struct sockaddr_storage peer, local;
        socklen_t plen = sizeof(peer), llen = sizeof(local);
        int fd;

        if (!server_can_take())
            break;
        fd = accept4(lfd, (struct sockaddr *)&peer, &plen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (server_accept_error())
                break;
            continue;
        }
        memset(&local, 0, sizeof(local));
        if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
            local.ss_family = AF_UNSPEC;
        srv.conns++;
        srv.uses++;
        srv.ops->on_connect(loop, fd, (struct sockaddr *)&peer, plen,
                            (struct sockaddr *)&local);
    }
    server_update();
}

/* event_server_main - many connections per process */
int event_server_main(int argc, char **argv, const struct server_ops *ops)
{
    if (ops->on_connect == NULL)
        log_panic("event_server_main: no on_connect");
    server_start(argc, argv, ops, SERVER_EVENT);
    server_listen_all(event_server_accept);
    return server_run();
}

/* ---- trigger server -------------------------------------------------- */

/* A trigger connection stays open as long as its client keeps it
   (trigger_send keeps one per process and socket), and every read is
   handed to on_trigger at once: many triggers cost one read each, not
   a connection each. Old clients that send a byte and close work the
   same way. Connections are not "busy" for max_idle/max_use (a kept
   connection would hold the process forever); their number is bounded
   by client_limit instead: a new one that would pass it closes the one
   heard from least recently (its client reconnects on its next write).
   No timeout: a silent connection costs a descriptor, nothing more. */
struct trigger_conn {
    int fd;
    struct trigger_conn *prev, *next;   /* most recently heard first */
};

static struct {
    struct trigger_conn *head, *tail;
    size_t count;
} trig;

static void trigger_conn_unlink(struct trigger_conn *tc)
{
    if (tc->prev != NULL)
        tc->prev->next = tc->next;
    else
        trig.head = tc->next;
    if (tc->next != NULL)
        tc->next->prev = tc->prev;
    else
        trig.tail = tc->prev;
    tc->prev = tc->next = NULL;
}

static void trigger_conn_push(struct trigger_conn *tc)
{
    tc->prev = NULL;
    tc->next = trig.head;
    if (trig.head != NULL)
        trig.head->prev = tc;
    else
        trig.tail = tc;
    trig.head = tc;
}

/* trigger_conn_close - forget a connection */
static void trigger_conn_close(struct trigger_conn *tc)
{
    ev_io_remove(srv.loop, tc->fd);
    (void)close(tc->fd);
    trigger_conn_unlink(tc);
    trig.count--;
    free(tc);
}

/* trigger_conn_input - one read; false when the connection is over */
static bool trigger_conn_input(struct trigger_conn *tc)
{
    char data[SERVER_TRIGGER_MAX];
    ssize_t n = read(tc->fd, data, sizeof(data));

    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0)
        return false;
    srv.uses++;
    ev_timer_stop(srv.loop, &srv.idle_timer);   /* server_update re-arms */
    srv.ops->on_trigger(srv.loop, data, (size_t)n);
    return true;
}

static void trigger_conn_read(ev_loop_t *loop, int fd, unsigned events,
                              void *arg)
{
    struct trigger_conn *tc = arg;

    (void)loop;
    (void)fd;
    (void)events;
    if (!trigger_conn_input(tc)) {
        trigger_conn_close(tc);
    } else if (tc != trig.head) {
        trigger_conn_unlink(tc);
        trigger_conn_push(tc);
    }
    server_update();
}

/* trigger_conn_evict - make room: the least recently heard goes (what
   it has sent is read first) */
static void trigger_conn_evict(void)
{
    struct trigger_conn *tc = trig.tail;

    if (tc == NULL)
        return;
    (void)trigger_conn_input(tc);
    trigger_conn_close(tc);
}

static void trigger_server_accept(ev_loop_t *loop, int lfd, unsigned events,
                                  void *arg)
{
    (void)events;
    (void)arg;
    for (int n = 0; n < SERVER_ACCEPT_BATCH; n++) {
        struct trigger_conn *tc;
        int fd;

        if (!server_can_take())
            break;
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (server_accept_error())
                break;
            continue;
        }
        if (trig.count >= srv.client_limit)
            trigger_conn_evict();
        tc = xcalloc(1, sizeof(*tc));
        tc->fd = fd;
        if (ev_io_add(loop, fd, EV_READ, trigger_conn_read, tc) < 0) {
            log_warning("trigger connection: %s", strerror(errno));
            (void)close(fd);
            free(tc);
            continue;
        }
        trigger_conn_push(tc);
        trig.count++;
    }
    server_update();
}

/* trigger_server_main - woken by short messages on the service socket */
int trigger_server_main(int argc, char **argv, const struct server_ops *ops)
{
    if (ops->on_trigger == NULL)
        log_panic("trigger_server_main: no on_trigger");
    server_start(argc, argv, ops, SERVER_TRIGGER);
    server_listen_all(trigger_server_accept);
    return server_run();
}

/* ---- request server -------------------------------------------------- */

static void request_server_accept(ev_loop_t *loop, int lfd, unsigned events,
                                  void *arg)
{
    int fd;

    (void)loop;
    (void)events;
    (void)arg;
    if (!server_can_take())
        return;
    /* blocking client socket: the daemon serves it synchronously */
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        (void)server_accept_error();
        server_update();        /* unwatch while paused */
        return;
    }
    srv.conns++;
    srv.uses++;
    server_update();            /* conns == limit 1: reports avail=0 */
    srv.ops->on_request_conn(fd);
    (void)close(fd);
    srv.conns--;
    server_update();
}

/* server_attr_serve - the request/reply loop of an attribute server */
void server_attr_serve(int fd, const char *what, int idle_sec, bool secret,
                       server_attr_fn handle, void *ctx)
{
    buf_t in;
    attr_list_t req, reply;

    buf_init(&in, ATTR_MAX_MSG * 2);
    attr_list_init(&req);
    attr_list_init(&reply);
    for (;;) {
        const char *err = NULL;
        int r = attr_read_fd(fd, &in, &req, idle_sec, &err);

        if (r == 0 || (r < 0 && errno == ETIMEDOUT && in.len == 0))
            break;      /* done, or idle */
        if (r < 0) {
            log_warning("%s client: %s: dropping the connection", what,
                        err ? err : "read error");
            break;
        }
        attr_list_reset(&reply);
        r = handle(&req, &reply, ctx);
        if (secret)
            attr_list_wipe(&req);
        if (r < 0)
            break;
        if (attr_write_fd(fd, &reply, (int)var_ipc_timeout) < 0) {
            log_warning("%s client: write failed: %s", what, strerror(errno));
            break;
        }
    }
    if (secret) {
        attr_list_wipe(&req);
        if (in.data)
            explicit_bzero(in.data, in.cap);
    }
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&in);
}

/* request_server_main - one client at a time, blocking */
int request_server_main(int argc, char **argv, const struct server_ops *ops)
{
    if (ops->on_request_conn == NULL)
        log_panic("request_server_main: no on_request_conn");
    server_start(argc, argv, ops, SERVER_REQUEST);
    srv.client_limit = 1;
    server_listen_all(request_server_accept);
    return server_run();
}

/* ---- triggers -------------------------------------------------------- */

/* trigger_send keeps one connection per socket path and process, so a
   trigger costs one send(), not socket+connect+send+close. The
   descriptors are close-on-exec, and a fork()ed child closes its copies
   at once (pthread_atfork), so no command local runs and no child
   master starts holds qmgr's end open or writes into it. */
#define TRIGGER_KEEP_MAX 4

struct trigger_peer {
    char *path;
    int fd;                 /* -1: not connected */
};

static struct trigger_peer trigger_peers[TRIGGER_KEEP_MAX];
static bool trigger_atfork_done;

/* trigger_atfork_child - a child does not share its parent's connections */
static void trigger_atfork_child(void)
{
    for (size_t i = 0; i < TRIGGER_KEEP_MAX; i++)
        if (trigger_peers[i].path != NULL && trigger_peers[i].fd >= 0) {
            (void)close(trigger_peers[i].fd);
            trigger_peers[i].fd = -1;
        }
}

/* trigger_close_all - drop every kept connection */
void trigger_close_all(void)
{
    trigger_atfork_child();
}

/* trigger_peer_find - the slot for path (made on first use); NULL when
   all are taken by other paths (then the trigger goes one-shot) */
static struct trigger_peer *trigger_peer_find(const char *path)
{
    struct trigger_peer *free_slot = NULL;

    for (size_t i = 0; i < TRIGGER_KEEP_MAX; i++) {
        struct trigger_peer *p = &trigger_peers[i];

        if (p->path == NULL) {
            if (free_slot == NULL)
                free_slot = p;
        } else if (strcmp(p->path, path) == 0) {
            return p;
        }
    }
    if (free_slot == NULL)
        return NULL;
    if (!trigger_atfork_done) {
        if (pthread_atfork(NULL, NULL, trigger_atfork_child) != 0)
            return NULL;    /* cannot keep it safely: one-shot */
        trigger_atfork_done = true;
    }
    free_slot->path = xstrdup(path);
    free_slot->fd = -1;
    return free_slot;
}

/* trigger_connect - a new connection to path; -1 with errno */
static int trigger_connect(const char *path)
{
    bool in_progress;
    int fd = unix_connect_nonblock(path, &in_progress);

    /* a UNIX connect either completes at once or fails (EAGAIN: backlog
       full, which means the server is already awake) */
    if (fd >= 0 && in_progress) {
        (void)close(fd);
        errno = EAGAIN;
        return -1;
    }
    return fd;
}

/* trigger_send_once - connect, send one byte, close */
static int trigger_send_once(const char *path, char byte)
{
    int fd = trigger_connect(path), saved;

    if (fd < 0)
        return -1;
    if (send(fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
        saved = errno;
        (void)close(fd);
        errno = saved;
        return -1;
    }
    return close(fd) < 0 && errno != EINTR ? -1 : 0;
}

/* trigger_send - one byte over the kept connection to path; reconnects
   once when the server went away (a restarted qmgr) */
int trigger_send(const char *path, char byte)
{
    struct trigger_peer *p = trigger_peer_find(path);
    bool fresh = false;
    int saved;

    if (p == NULL)
        return trigger_send_once(path, byte);
    for (;;) {
        if (p->fd < 0) {
            if ((p->fd = trigger_connect(path)) < 0)
                return -1;
            fresh = true;
        }
        if (send(p->fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
            return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* the server has not read what is queued: it is awake
               anyway, and a wakeup or new-mail byte adds nothing */
            if (byte == TRIGGER_NEW_MAIL || byte == TRIGGER_WAKEUP)
                return 0;
            return -1;
        }
        if (errno == EINTR)
            continue;
        saved = errno;
        (void)close(p->fd);
        p->fd = -1;
        if (fresh || (saved != EPIPE && saved != ECONNRESET
                      && saved != ENOTCONN)) {
            errno = saved;
            return -1;
        }
    }
}

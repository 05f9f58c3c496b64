/*
 * master_spawn - the children of every service: forking on demand when a
 * listener becomes readable and no child is available (or, for an event
 * server, fewer than $event_server_process_min exist), the busy/idle
 * reports on the status pipes, reaping with Postfix-style warnings, the
 * process limit (the overload reply, when the service has one) and
 * back-off after a
 * daemon that fails at start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "util/log.h"
#include "master.h"
#include "mail/server.h"
#include "util/util.h"

#define MASTER_REJECT_BATCH 32

static struct master_child *master_children;

/* master_child_find - by pid; unlink when take is set */
static struct master_child *master_child_find(pid_t pid, bool take)
{
    for (struct master_child **pp = &master_children; *pp; pp = &(*pp)->next) {
        struct master_child *c = *pp;

        if (c->pid == pid) {
            if (take)
                *pp = c->next;
            return c;
        }
    }
    return NULL;
}

/* master_child_uncount - a child no longer counts for its service */
static void master_child_uncount(struct master_child *c)
{
    if (c->svc == NULL || c->retired)
        return;
    c->svc->count--;
    if (c->avail)
        c->svc->avail--;
    if (!c->served)
        c->svc->fresh--;
    c->avail = false;
}

/* master_cpus - online CPUs, asked once (sysconf reads /sys each time) */
static long master_cpus(void)
{
    static long ncpu;

    if (ncpu == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (ncpu < 1)
            ncpu = 1;
    }
    return ncpu;
}

/* master_demand_of - the service's state for master_demand_decide */
static enum master_demand master_demand_of(const struct master_service *svc)
{
    long maxproc = master_service_maxproc(svc);
    struct master_demand_state s = {
        .count = svc->count, .avail = svc->avail, .fresh = svc->fresh,
        .spread = master_spread_target(var_event_server_process_min,
                                       master_cpus(), maxproc,
                                       svc->event_server),
        .maxproc = maxproc, .throttled = svc->throttled,
        .reject_when_full = svc->overload_reply != NULL,
    };

    return master_demand_decide(&s);
}

/* Out of descriptors (or memory) for accept() in master_reject: the
   client stays queued and the listener readable, so do not watch
   rejecting listeners for a moment (EMFILE is a property of this
   process, so one pause for every service) and warn at most once per
   MASTER_ACCEPT_WARN_MSEC. */
#define MASTER_ACCEPT_PAUSE_MSEC 1000
#define MASTER_ACCEPT_WARN_MSEC 10000
static bool master_accept_paused;
static bool master_accept_timer_ready;
static ev_timer_t master_accept_timer;
static uint64_t master_accept_warn_last;
static unsigned long master_accept_suppressed;

static void master_accept_resume(ev_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    master_accept_paused = false;
    for (struct master_service *svc = master_services; svc; svc = svc->next)
        master_demand_update(svc);
}

/* master_accept_backoff - see above */
static void master_accept_backoff(struct master_service *svc, int err)
{
    if (master_rate_ok(time_mono_msec(), &master_accept_warn_last,
                       MASTER_ACCEPT_WARN_MSEC)) {
        if (master_accept_suppressed > 0)
            log_warning("service %s: accept: %s (%lu more times since the "
                        "last warning); pausing %u ms each time",
                        svc->ent.service, strerror(err),
                        master_accept_suppressed, MASTER_ACCEPT_PAUSE_MSEC);
        else
            log_warning("service %s: accept: %s; pausing %u ms",
                        svc->ent.service, strerror(err),
                        MASTER_ACCEPT_PAUSE_MSEC);
        master_accept_suppressed = 0;
    } else {
        master_accept_suppressed++;
    }
    if (!master_accept_timer_ready) {
        ev_timer_init(&master_accept_timer, master_accept_resume, NULL);
        master_accept_timer_ready = true;
    }
    master_accept_paused = true;
    ev_timer_set(master_loop, &master_accept_timer, MASTER_ACCEPT_PAUSE_MSEC);
}

/* master_demand_update - watch the listeners only while needed */
void master_demand_update(struct master_service *svc)
{
    enum master_demand d;
    bool want;

    d = master_demand_of(svc);
    want = !master_shutting_down
           && (d == MASTER_DEMAND_WATCH
               || (d == MASTER_DEMAND_REJECT && !master_accept_paused));
    if ((d == MASTER_DEMAND_FULL || d == MASTER_DEMAND_REJECT)
        && !master_shutting_down
        && master_rate_ok(time_mono_msec(), &svc->last_limit_warn,
                          MASTER_LIMIT_WARN_MSEC))
        log_warning("service \"%s\" (%s) has reached its process limit "
                    "\"%ld\": new clients may experience noticeable delays",
                    svc->ent.service, svc->ent.command,
                    master_service_maxproc(svc));
    if (want == svc->watching)
        return;
    for (size_t i = 0; i < svc->nlisten; i++)
        if (ev_io_modify(master_loop, svc->listen_fds[i],
                         want ? EV_READ : 0) < 0)
            log_fatal("event loop: %s", strerror(errno));
    svc->watching = want;
}

/* master_throttle - back off before the next fork of a failing daemon */
static void master_throttle(struct master_service *svc)
{
    if (svc->throttled)
        return;
    svc->backoff = master_backoff_next(svc->backoff, var_service_throttle_time);
    svc->throttled = true;
    log_warning("%s: back-off %ld seconds", svc->ent.command, svc->backoff);
    ev_timer_set(master_loop, &svc->throttle_timer,
                 (uint64_t)svc->backoff * 1000);
    master_demand_update(svc);
}

void master_throttle_expired(ev_loop_t *loop, void *arg)
{
    struct master_service *svc = arg;

    (void)loop;
    svc->throttled = false;
    master_demand_update(svc);
}

/* master_child_exec - in the new child: descriptors, signals, exec */
static void __attribute__((noreturn))
master_child_exec(struct master_service *svc, char **argv)
{
    int base = SERVER_LISTEN_FD + (int)svc->nlisten;
    int src[MASTER_MAX_LISTEN + 1], tmp[MASTER_MAX_LISTEN + 1];
    size_t n = 0;
    sigset_t none;

    src[n++] = svc->status_wr;
    for (size_t i = 0; i < svc->nlisten; i++)
        src[n++] = svc->listen_fds[i];
    /* copy above the targets first so no dup2 clobbers a source */
    for (size_t i = 0; i < n; i++)
        if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, base)) < 0)
            _exit(126);
    for (size_t i = 0; i < n; i++)
        if (dup2(tmp[i], SERVER_STATUS_FD + (int)i) < 0)
            _exit(126);
    fd_close_from(base);
    for (int sig = 1; sig < NSIG; sig++)
        (void)signal(sig, SIG_DFL);
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    _exit(127);
}

/* master_spawn - fork one child for svc */
static void master_spawn(struct master_service *svc)
{
    struct master_argv_opts opts = { master_foreground, master_verbose };
    struct master_child *c;
    char **argv;
    size_t argc;
    pid_t pid;

    if (access(svc->path, X_OK) < 0) {
        log_warning("cannot execute %s: %s", svc->path, strerror(errno));
        master_throttle(svc);
        return;
    }
    argv = master_argv_build(&svc->ent, svc->path, svc->nlisten, &opts, &argc);
    pid = fork();
    if (pid == 0)
        master_child_exec(svc, argv);
    strv_free(argv, argc);
    if (pid < 0) {
        log_warning("fork: %s", strerror(errno));
        master_throttle(svc);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->pid = pid;
    c->path = xstrdup(svc->path);
    c->svc = svc;
    c->avail = true;    /* a newborn will take the waiting client */
    c->next = master_children;
    master_children = c;
    svc->count++;
    svc->avail++;
    svc->fresh++;
    log_debug("service %s: started %s pid %d", svc->ent.service, svc->path,
              (int)pid);
}

/* master_reject - full service: answer its overload reply to the
   waiting clients (nothing when the reply is empty) and close */
static void master_reject(struct master_service *svc, int lfd)
{
    buf_t msg = BUF_INIT;

    if (*svc->overload_reply)
        (void)buf_printf(&msg, "%s\r\n", svc->overload_reply);
    for (int i = 0; i < MASTER_REJECT_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                || errno == ENOMEM)
                master_accept_backoff(svc, errno);
            else if (errno != EAGAIN)
                log_warning("service %s: accept: %s", svc->ent.service,
                            strerror(errno));
            break;
        }
        /* never read: best effort, non-blocking, then close */
        if (msg.len > 0)
            (void)send(fd, msg.data, msg.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)close(fd);
    }
    buf_free(&msg);
}

/* master_listener_ready - a client waits on one of svc's sockets */
void master_listener_ready(ev_loop_t *loop, int fd, unsigned events,
                           void *arg)
{
    struct master_service *svc = arg;

    (void)events;
    if (master_shutting_down)
        return;
    /* a child may just have freed up: its report decides, not a race */
    master_status_ready(loop, svc->status_rd, EV_READ, svc);
    switch (master_demand_of(svc)) {
    case MASTER_DEMAND_WATCH:
        master_spawn(svc);
        break;
    case MASTER_DEMAND_REJECT:
        master_reject(svc, fd);
        break;
    case MASTER_DEMAND_IDLE:
    case MASTER_DEMAND_FULL:
        break;
    }
    master_demand_update(svc);
}

/* master_status_record - one busy/idle report */
static void master_status_record(struct master_service *svc,
                                 const struct server_status *st)
{
    struct master_child *c = master_child_find(st->pid, false);
    bool avail = st->avail != 0;

    if (c == NULL || c->svc != svc || c->retired)
        return;         /* gone already, or from an older generation */
    svc->event_server = st->event != 0;
    if ((!avail || st->served) && !c->served) {
        c->served = true;
        svc->fresh--;
    }
    if (!avail || st->served)
        svc->backoff = 0;
    if (avail != c->avail) {
        c->avail = avail;
        if (avail)
            svc->avail++;
        else
            svc->avail--;
    }
}

/* master_status_ready - read the reports queued on svc's status pipe */
void master_status_ready(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct master_service *svc = arg;
    struct server_status st[64];
    ssize_t n;

    (void)loop;
    (void)events;
    for (;;) {
        n = read(fd, st, sizeof(st));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* records are written whole (< PIPE_BUF) */
        for (size_t i = 0; i < (size_t)n / sizeof(st[0]); i++)
            master_status_record(svc, &st[i]);
        if ((size_t)n < sizeof(st))
            break;
    }
    if (n < 0 && errno != EAGAIN)
        log_warning("status pipe: %s", strerror(errno));
    master_demand_update(svc);
}

/* master_child_ended - bookkeeping and log for one reaped child */
static void master_child_ended(struct master_child *c, int wstatus)
{
    struct master_service *svc = c->svc;
    buf_t how = BUF_INIT;
    bool abnormal = master_exit_describe(wstatus, &how);

    if (abnormal)
        log_warning("process %s pid %d %s", c->path, (int)c->pid,
                    buf_str(&how));
    buf_free(&how);
    if (svc == NULL || c->retired)
        return;
    master_child_uncount(c);
    if (abnormal && !c->served && !master_shutting_down)
        master_throttle(svc);
    else if (!abnormal)
        svc->backoff = 0;
    master_demand_update(svc);
    /* a wakeup service (qmgr) must come back now, not at the next
       periodic wakeup or the next new mail: what it had in flight waits
       until it runs again (throttling still applies: the trigger waits
       in the listener's backlog) */
    if (svc->ent.wakeup > 0)
        master_wakeup_send(svc);
}

/* master_reap - collect every child that has exited */
void master_reap(void)
{
    pid_t pid;
    int wstatus;

    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
        struct master_child *c = master_child_find(pid, true);

        if (c == NULL)
            continue;
        master_child_ended(c, wstatus);
        free(c->path);
        free(c);
    }
}

/* master_children_signal - retire (SIGHUP) or stop (SIGTERM) svc's children */
void master_children_signal(struct master_service *svc, int signo, bool detach)
{
    for (struct master_child *c = master_children; c; c = c->next) {
        if (c->svc != svc)
            continue;
        if (!c->retired || signo == SIGTERM)
            if (kill(c->pid, signo) < 0 && errno != ESRCH)
                log_warning("kill %d: %s", (int)c->pid, strerror(errno));
        master_child_uncount(c);
        c->retired = true;
        if (detach)
            c->svc = NULL;
    }
    if (!detach)
        master_demand_update(svc);
}

static void master_sleep_msec(long msec)
{
    struct timespec ts = { msec / 1000, (msec % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* master_children_stop_all - SIGTERM, wait up to grace_msec, SIGKILL */
void master_children_stop_all(int grace_msec)
{
    uint64_t deadline = time_mono_msec() + (uint64_t)grace_msec;

    for (struct master_child *c = master_children; c; c = c->next) {
        c->svc = NULL;
        if (kill(c->pid, SIGTERM) < 0 && errno != ESRCH)
            log_warning("kill %d: %s", (int)c->pid, strerror(errno));
    }
    while (master_children && time_mono_msec() < deadline) {
        master_reap();
        if (master_children)
            master_sleep_msec(20);
    }
    for (struct master_child *c = master_children; c; c = c->next)
        (void)kill(c->pid, SIGKILL);
    while (master_children) {
        struct master_child *c = master_children;
        int wstatus;

        if (waitpid(c->pid, &wstatus, 0) < 0 && errno == EINTR)
            continue;
        master_children = c->next;
        free(c->path);
        free(c);
    }
}

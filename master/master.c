/*
 * master - the Tern supervisor: reads main.conf and master.conf, creates
 * the spool, takes the pid lock, opens every service's listeners and
 * forks daemons on demand (master_spawn.c). SIGHUP reloads, SIGTERM and
 * SIGINT stop everything.
 *
 * Start-up (without -f): master forks, and the parent waits on a pipe
 * until the child has set up the spool, taken the pid lock, written the
 * pid file and bound every listener. Until then the child's stderr is
 * that pipe, so every start-up error reaches the caller's stderr; the
 * child then writes one NUL byte (ready) and the parent exits 0. A child
 * that dies before saying so makes the parent exit with its status
 * (1 for a fatal error), which is what `ternctl start` reports. No
 * daemon is forked before ready (the event loop has not run), so none
 * inherits the pipe.
 *
 * -t checks main.conf and master.conf and that every inet listener's
 * address can be bound now (when a master runs, "in use" is not an error:
 * those addresses may be its own).
 *
 * usage: master [-c config_dir] [-f] [-t] [-v]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>
#include <netinet/in.h>

#include "mail/config.h"
#include "mail/master_pid.h"
#include "util/log.h"
#include "master.h"
#include "mail/mastercf.h"
#include "util/privs.h"
#include "mail/queue.h"
#include "util/util.h"

#ifndef TERN_VERSION
#define TERN_VERSION "unknown"
#endif

#define MASTER_STOP_GRACE_MSEC 5000
#define MASTER_CHECK_ERR_MAX 8192

ev_loop_t *master_loop;
struct master_service *master_services;
bool master_foreground;
int master_verbose;
bool master_shutting_down;

static char *master_config_dir;
static int master_pid_fd = -1;
static bool master_detached;
static int master_ready_fd = -1;   /* stderr's replacement at ready */

static void master_usage(void)
{
    fprintf(stderr, "usage: master [-c config_dir] [-f] [-t] [-v]\n");
    exit(1);
}

/* master_close_inherited - close every descriptor above 2 that whoever
   started us left open (a shell's pipe, an editor's file): master runs
   as root for as long as the system is up and hands its descriptors to
   every child it forks. Called first thing, before master opens its
   own. 0-2 stay: /dev/null after master_daemonize, the caller's
   terminal or log in -f mode. */
static void master_close_inherited(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    /* older kernels: what /proc says is open, else every possible fd */
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int self = dirfd(d);
        int fds[256];
        size_t n;
        do {
            struct dirent *e;
            n = 0;
            rewinddir(d);
            while ((e = readdir(d)) != NULL && n < sizeof(fds) / sizeof(fds[0])) {
                char *end;
                long fd = strtol(e->d_name, &end, 10);
                if (*end == '\0' && end != e->d_name && fd > 2 && fd != self)
                    fds[n++] = (int)fd;
            }
            /* closing while reading the directory is not safe: batches */
            for (size_t i = 0; i < n; i++)
                (void)close(fds[i]);
        } while (n > 0);
        (void)closedir(d);
        return;
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1 << 20)
        max = 1 << 20;
    for (long fd = 3; fd < max; fd++)
        (void)close((int)fd);
}

/* master_std_fds - 0, 1 and 2 open (on /dev/null if they were not), so
   no file or pipe of ours lands on one by accident (the start-up pipe
   becomes fd 2 on purpose) */
static void master_std_fds(void)
{
    int fd;

    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd < 0)
        exit(1);                /* nowhere to say it */
    (void)close(fd);
}

/* master_conf_path - $config_directory/master.conf into b */
static void master_conf_path(buf_t *b)
{
    buf_reset(b);
    (void)buf_printf(b, "%s/master.conf", master_config_dir);
}

/* master_conf_load - main.conf (over defaults) and master.conf */
static int master_conf_load(struct master_conf *mc, buf_t *err)
{
    buf_t path = BUF_INIT;
    int rc;

    memset(mc, 0, sizeof(*mc));
    if (config_load(master_config_dir, err) < 0)
        return -1;
    buf_reset(err);
    master_conf_path(&path);
    rc = mastercf_parse_file(buf_str(&path), mc, err);
    buf_free(&path);
    return rc;
}

/* master_bind_test - can each address of inet entry e be bound now?
   0 yes, -1 no (said on stderr). in_use_ok: a master runs, EADDRINUSE
   may be its own listener. */
static int master_bind_test(const struct master_entry *e, bool in_use_ok)
{
    struct master_addr addrs[MASTER_MAX_LISTEN];
    buf_t err = BUF_INIT, key = BUF_INIT;
    int n, bad = 0;

    n = master_inet_addrs(e->service, var_inet_interfaces, addrs,
                          MASTER_MAX_LISTEN, &err);
    for (int i = 0; i < n; i++) {
        int family = addrs[i].ss.ss_family, on = 1, rc, fd;

        master_addrs_key(&addrs[i], 1, &key);
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 && errno == EAFNOSUPPORT && n > 1)
            continue;           /* as master_open_inet: skipped */
        rc = fd < 0 ? -1
             : setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0
               || (family == AF_INET6
                   && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
                                 sizeof(on)) < 0)
               || bind(fd, (const struct sockaddr *)&addrs[i].ss,
                       addrs[i].len) < 0 ? -1 : 0;
        if (rc < 0 && !(errno == EADDRINUSE && in_use_ok)) {
            fprintf(stderr, "master: error: master.conf:%d: service %s: "
                    "cannot bind %s: %s\n", e->line, e->service,
                    buf_str(&key), strerror(errno));
            bad = -1;
        }
        if (fd >= 0)
            (void)close(fd);
    }
    buf_free(&err);
    buf_free(&key);
    return bad;
}

/* master_conf_check_listeners - every entry must resolve (print: -t,
   also bind every inet address and look for the programs) */
static int master_conf_check_listeners(const struct master_conf *mc, bool print)
{
    buf_t label = BUF_INIT, err = BUF_INIT, path = BUF_INIT;
    int bad = 0;
    long pid;
    bool running = print
                   && master_pid_running(var_queue_directory, &pid) == 1;

    for (size_t i = 0; i < mc->count; i++) {
        const struct master_entry *e = &mc->entries[i];

        buf_reset(&err);
        if (master_service_label(e, &label, &err) < 0) {
            if (print)
                fprintf(stderr, "master: error: master.conf:%d: %s\n",
                        e->line, buf_str(&err));
            else
                log_error("master.conf:%d: %s", e->line, buf_str(&err));
            bad = -1;
        } else if (print && e->type == MASTER_INET
                   && master_bind_test(e, running) < 0) {
            bad = -1;
        }
        buf_reset(&path);
        (void)buf_printf(&path, "%s/%s", var_daemon_directory, e->command);
        if (print && access(buf_str(&path), X_OK) < 0)
            fprintf(stderr, "master: warning: master.conf:%d: cannot "
                    "execute %s: %s\n",
                    e->line, buf_str(&path), strerror(errno));
    }
    buf_free(&label);
    buf_free(&err);
    buf_free(&path);
    return bad;
}

/* master_check_only - -t: load and verify, exit 0 or 1 */
static void __attribute__((noreturn)) master_check_only(void)
{
    struct master_conf mc;
    buf_t err = BUF_INIT;
    int rc = master_conf_load(&mc, &err);

    if (rc == 0)
        rc = master_conf_check_chroot(&mc, privs_running_as_root(), &err);
    if (rc < 0)
        fprintf(stderr, "master: fatal: %s\n", buf_str(&err));
    else
        rc = master_conf_check_listeners(&mc, true);
    mastercf_free(&mc);
    buf_free(&err);
    exit(rc < 0 ? 1 : 0);
}

/* master_spool_setup - queue directory tree, owned by $mail_owner
   except pid/, which stays ours; maildrop/ and public/ in $setgid_group */
static void master_spool_setup(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid(), sgid = (gid_t)-1;

    if (privs_running_as_root()) {
        if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0)
            log_fatal("mail_owner user \"%s\" does not exist", var_mail_owner);
        if (privs_lookup_group(var_setgid_group, &sgid) < 0)
            log_fatal("setgid_group \"%s\" does not exist", var_setgid_group);
    }
    if (queue_dirs_create(var_queue_directory, uid, gid, sgid) < 0)
        log_fatal("create queue directories under %s: %s",
                  var_queue_directory, strerror(errno));
    /* login/: ours, in $login_user's group (the login processes' chroot,
       where master makes the login/NAME sockets) */
    gid_t lgid = (gid_t)-1;
    uid_t luid;
    if (privs_running_as_root()
        && privs_lookup_user(var_login_user, &luid, &lgid) < 0) {
        log_warning("login_user \"%s\" does not exist: %s/%s is root's "
                    "only", var_login_user, var_queue_directory,
                    QUEUE_LOGIN_DIR);
        lgid = (gid_t)-1;
    }
    if (queue_login_dir_create(var_queue_directory, lgid) < 0)
        log_fatal("create %s/%s: %s", var_queue_directory, QUEUE_LOGIN_DIR,
                  strerror(errno));
    if (chdir(var_queue_directory) < 0)
        log_fatal("chdir %s: %s", var_queue_directory, strerror(errno));
}

/* master_pid_lock - one master per spool */
static void master_pid_lock(void)
{
    struct stat st;
    char text[32];
    ssize_t n;

    /* pid/ is ours (queue_dirs_create), but refuse anything left there
       while it was not: we truncate what we open */
    master_pid_fd = open(MASTER_PID_FILE,
                         O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                         0644);
    if (master_pid_fd < 0)
        log_fatal("open %s: %s", MASTER_PID_FILE, strerror(errno));
    if (fstat(master_pid_fd, &st) < 0)
        log_fatal("fstat %s: %s", MASTER_PID_FILE, strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1)
        log_fatal("%s is not a regular file owned by uid %ld with one link: "
                  "refusing to use it (remove it)", MASTER_PID_FILE,
                  (long)geteuid());
    if (flock(master_pid_fd, LOCK_EX | LOCK_NB) == 0)
        return;
    if (errno != EWOULDBLOCK)
        log_fatal("lock %s: %s", MASTER_PID_FILE, strerror(errno));
    n = pread(master_pid_fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = 0;
    text[strcspn(text, "\r\n")] = 0;
    log_fatal("the Tern mail system is already running (pid %s)",
              *text ? text : "unknown");
}

static void master_pid_write(void)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

    if (ftruncate(master_pid_fd, 0) < 0
        || pwrite_full(master_pid_fd, text, (size_t)n, 0) < 0)
        log_fatal("write %s: %s", MASTER_PID_FILE, strerror(errno));
}

/* master_wait_ready - the parent after the fork: copy what the child
   says on the pipe to our stderr; exit 0 when it ends with the ready
   byte, else with the child's status */
static void __attribute__((noreturn)) master_wait_ready(int fd, pid_t child)
{
    char buf[1024];
    bool ready = false;
    ssize_t n;
    int wstatus;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        size_t len = 0;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != '\0')
                buf[len++] = buf[i];
        ready = buf[n - 1] == '\0' || (ready && len == 0);
        if (len > 0 && write_full(STDERR_FILENO, buf, len) < 0) {
            /* our caller went away: the child still reports to the log */
        }
    }
    if (ready)
        _exit(0);
    while (waitpid(child, &wstatus, 0) < 0)
        if (errno != EINTR)
            _exit(1);
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0)
        _exit(WEXITSTATUS(wstatus));
    if (WIFSIGNALED(wstatus))
        fprintf(stderr, "master: fatal: start-up failed: killed by "
                "signal %d\n", WTERMSIG(wstatus));
    else
        fprintf(stderr, "master: fatal: start-up failed\n");
    _exit(1);
}

/* master_daemonize - detach from the terminal; the lock fd stays held.
   Until master_ready the child's stderr is a pipe to the waiting
   parent; then it becomes /dev/null, or stays the inherited stderr when
   that is where the log goes (the systemd journal). */
static void master_daemonize(void)
{
    int p[2], fd, keep = log_syslog_probe() == LOG_SYSLOG_JOURNAL;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        log_fatal("pipe: %s", strerror(errno));
    if ((pid = fork()) < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0) {
        (void)close(p[1]);
        master_wait_ready(p[0], pid);
    }
    (void)close(p[0]);
    /* the parent may be gone (^C): start-up lines then fail with EPIPE */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        log_fatal("signal: %s", strerror(errno));
    if (setsid() < 0)
        log_fatal("setsid: %s", strerror(errno));
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
        log_fatal("/dev/null: %s", strerror(errno));
    master_ready_fd = keep ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : fd;
    if (master_ready_fd < 0)
        log_fatal("dup: %s", strerror(errno));
    if (keep)
        (void)close(fd);
    if (dup2(p[1], STDERR_FILENO) < 0)
        log_fatal("dup2: %s", strerror(errno));
    (void)close(p[1]);
    master_detached = true;
}

/* master_ready - every listener is bound: tell the waiting parent, and
   stop writing to its pipe */
static void master_ready(void)
{
    if (!master_detached || master_ready_fd < 0)
        return;
    if (write_full(STDERR_FILENO, "", 1) < 0) {
        /* the parent is gone; nobody waits */
    }
    log_set_stderr(false);
    if (dup2(master_ready_fd, STDERR_FILENO) < 0)
        log_fatal("dup2: %s", strerror(errno));
    (void)close(master_ready_fd);
    master_ready_fd = -1;
}

/* master_syslog_check - say once, at start, when lines for syslog have
   nowhere to go (or go to the journal through stderr instead) */
static void master_syslog_check(void)
{
    switch (log_syslog_probe()) {
    case LOG_SYSLOG_JOURNAL:
        log_warning("no syslog socket at %s: logging to stderr (the systemd "
                    "journal)", log_syslog_path());
        break;
    case LOG_SYSLOG_LOST:
        log_warning("no syslog socket at %s: log lines are lost; set "
                    "maillog_file in main.conf or start a syslog daemon",
                    log_syslog_path());
        break;
    default:
        break;
    }
}

/* master_logging - per main.conf */
static void master_logging(void)
{
    config_apply_logging("master");
    log_set_stderr(!master_detached || master_ready_fd >= 0);
    if (master_verbose)
        log_set_verbose(master_verbose);
}

/* master_services_open_all - start-up: every listener or die */
static void master_services_open_all(const struct master_conf *mc)
{
    struct master_service **tail = &master_services;

    for (size_t i = 0; i < mc->count; i++) {
        struct master_service *svc = master_service_open(&mc->entries[i]);

        if (svc == NULL)
            log_fatal("cannot start service %s (%s)",
                      mc->entries[i].service, mc->entries[i].command);
        *tail = svc;
        tail = &svc->next;
    }
    for (struct master_service *s = master_services; s; s = s->next)
        master_service_start(s);
}

/* master_conf_check_fork - test-load main.conf in a child so a bad file
   cannot leave our own variables half-changed */
static int master_conf_check_fork(buf_t *err)
{
    int p[2], wstatus;
    pid_t pid;
    char tmp[512];
    ssize_t n;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    if ((pid = fork()) < 0) {
        (void)close(p[0]);
        (void)close(p[1]);
        return -1;
    }
    if (pid == 0) {
        buf_t e = BUF_INIT;
        int rc;

        /* warnings come back in e; the real load logs them once */
        log_set_stderr(false);
        (void)log_set_file("/dev/null");
        rc = config_load(master_config_dir, &e);

        (void)write_full(p[1], e.data ? e.data : "", e.len);
        _exit(rc < 0 ? 1 : 0);
    }
    (void)close(p[1]);
    while ((n = read(p[0], tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && err->len < MASTER_CHECK_ERR_MAX)
            (void)buf_append(err, tmp, (size_t)n);
    (void)close(p[0]);
    while (waitpid(pid, &wstatus, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 ? 0 : -1;
}

/* master_reload_match - the running service with the same listener */
static struct master_service *master_reload_match(const struct master_entry *e)
{
    buf_t label = BUF_INIT, err = BUF_INIT;
    struct master_service *found = NULL;

    if (master_service_label(e, &label, &err) == 0)
        for (struct master_service *s = master_services; s; s = s->next)
            if (s->ent.type == e->type
                && strcmp(s->ent.service, e->service) == 0
                && strcmp(s->label, buf_str(&label)) == 0) {
                found = s;
                break;
            }
    buf_free(&label);
    buf_free(&err);
    return found;
}

/* master_services_reconcile - keep, drop and open per the new master.conf */
static void master_services_reconcile(const struct master_conf *mc)
{
    struct master_service **keep = xcalloc(mc->count + 1, sizeof(*keep));
    struct master_service *list = NULL, **tail = &list;

    for (size_t i = 0; i < mc->count; i++) {
        struct master_service **pp, *s = master_reload_match(&mc->entries[i]);

        if (s == NULL)
            continue;
        for (pp = &master_services; *pp != s; pp = &(*pp)->next)
            ;
        *pp = s->next;          /* take it out of the old list */
        s->next = NULL;
        keep[i] = s;
    }
    while (master_services) {   /* what is left was removed */
        struct master_service *s = master_services;

        master_services = s->next;
        log_info("service %s (%s): removed", s->ent.service, s->ent.command);
        master_children_signal(s, SIGTERM, true);
        master_service_close(s);
    }
    for (size_t i = 0; i < mc->count; i++) {
        struct master_service *s = keep[i];

        if (s) {
            master_children_signal(s, SIGHUP, false);
            master_service_update(s, &mc->entries[i]);
        } else if ((s = master_service_open(&mc->entries[i])) != NULL) {
            master_service_start(s);
        }
        if (s) {
            *tail = s;
            tail = &s->next;
        }
    }
    master_services = list;
    free(keep);
}

/* master_reload - SIGHUP */
static void master_reload(void)
{
    struct master_conf mc;
    buf_t err = BUF_INIT, path = BUF_INIT;
    char *old_queue = NULL;

    memset(&mc, 0, sizeof(mc));
    log_info("reload -- version %s, configuration %s", TERN_VERSION,
             master_config_dir);
    master_conf_path(&path);
    if (master_conf_check_fork(&err) < 0
        || (buf_reset(&err), mastercf_parse_file(buf_str(&path), &mc, &err)) < 0
        || master_conf_check_chroot(&mc, privs_running_as_root(), &err) < 0) {
        for (size_t i = 0; i < err.len; i++)
            if (err.data[i] == '\n' && i + 1 < err.len)
                err.data[i] = ';';
        log_error("reload failed, keeping the old configuration: %s",
                  buf_str(&err));
        goto out;
    }
    buf_reset(&err);
    old_queue = xstrdup(var_queue_directory);
    if (config_load(master_config_dir, &err) < 0) {
        log_error("reload: %s", buf_str(&err));
        goto out;
    }
    if (strcmp(old_queue, var_queue_directory) != 0)
        log_warning("queue_directory changed to %s: restart master to use "
                    "it", var_queue_directory);
    master_logging();
    master_services_reconcile(&mc);
out:
    free(old_queue);
    mastercf_free(&mc);
    buf_free(&err);
    buf_free(&path);
}

/* master_shutdown - stop listening, stop children, remove the pid file */
static void __attribute__((noreturn)) master_shutdown(void)
{
    master_shutting_down = true;
    for (struct master_service *s = master_services; s; s = s->next)
        master_demand_update(s);
    master_children_stop_all(MASTER_STOP_GRACE_MSEC);
    while (master_services) {
        struct master_service *s = master_services;

        master_services = s->next;
        master_service_close(s);
    }
    if (unlink(MASTER_PID_FILE) < 0)
        log_warning("remove %s: %s", MASTER_PID_FILE, strerror(errno));
    ev_loop_free(master_loop);
    exit(0);
}

static void master_on_signal(ev_loop_t *loop, int signo, void *arg)
{
    (void)arg;
    switch (signo) {
    case SIGCHLD:
        /* status reports first: a child that served is not throttled */
        for (struct master_service *s = master_services; s; s = s->next)
            master_status_ready(loop, s->status_rd, EV_READ, s);
        master_reap();
        break;
    case SIGHUP:
        if (!master_shutting_down)
            master_reload();
        break;
    default:
        log_info("terminating on signal %d", signo);
        master_shutting_down = true;
        ev_loop_stop(loop);
        break;
    }
}

static void master_loop_setup(void)
{
    static const int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };

    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        log_fatal("signal: %s", strerror(errno));
    if ((master_loop = ev_loop_new()) == NULL)
        log_fatal("event loop: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (ev_signal_add(master_loop, sigs[i], master_on_signal, NULL) < 0)
            log_fatal("signal setup: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    struct master_conf mc;
    buf_t err = BUF_INIT;
    const char *cdir = NULL;
    bool check = false;
    int c;

    master_close_inherited();
    master_std_fds();
    log_init("tern", "master");
    log_set_stderr(true);
    while ((c = getopt(argc, argv, "c:ftv")) != -1) {
        switch (c) {
        case 'c': cdir = optarg; break;
        case 'f': master_foreground = true; break;
        case 't': check = true; break;
        case 'v': master_verbose++; break;
        default: master_usage();
        }
    }
    if (optind != argc)
        master_usage();
    master_config_dir = xstrdup(config_directory_default(cdir));
    if (setenv("MAIL_CONFIG", master_config_dir, 1) < 0)
        log_fatal("setenv: %s", strerror(errno));
    if (master_verbose)
        log_set_verbose(master_verbose);
    if (check)
        master_check_only();
    if (master_conf_load(&mc, &err) < 0
        || master_conf_check_chroot(&mc, privs_running_as_root(), &err) < 0)
        log_fatal("%s", buf_str(&err));
    buf_free(&err);
    if (master_conf_check_listeners(&mc, false) < 0)
        log_fatal("bad master.conf");
    master_logging();
    master_syslog_check();
    master_spool_setup();
    master_pid_lock();
    if (!master_foreground)
        master_daemonize();
    master_pid_write();
    master_loop_setup();
    master_services_open_all(&mc);
    mastercf_free(&mc);
    log_info("daemon started -- version %s, configuration %s", TERN_VERSION,
             master_config_dir);
    master_ready();
    ev_loop_run(master_loop);
    master_shutdown();
}

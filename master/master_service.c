/*
 * master_service - one master.conf entry at run time: its listening
 * sockets (inet addresses or a UNIX socket in private/, public/ or
 * login/), its
 * status pipe, and its periodic wakeup trigger.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/config.h"
#include "util/log.h"
#include "master.h"
#include "util/privs.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "util/util.h"

#define MASTER_BACKLOG 128

/* master_service_maxproc - effective process limit, 0 = none */
long master_service_maxproc(const struct master_service *svc)
{
    return svc->ent.maxproc < 0 ? var_default_process_limit : svc->ent.maxproc;
}

/* master_service_label - what the service listens on, as text */
int master_service_label(const struct master_entry *e, buf_t *label,
                         buf_t *err)
{
    struct master_addr addrs[MASTER_MAX_LISTEN];
    int n;

    if (e->type == MASTER_UNIX)
        return master_unix_path(e->service, e->private_, label, err);
    n = master_inet_addrs(e->service, var_inet_interfaces, addrs,
                          MASTER_MAX_LISTEN, err);
    if (n < 0)
        return -1;
    master_addrs_key(addrs, (size_t)n, label);
    return 0;
}

/* master_owner_enter - as root, take $mail_owner's effective IDs for
   path work in its directories (public/, private/): root itself never
   resolves a path there. 1 switched, 0 not root, -1 error (logged). */
static int master_owner_enter(const char *path)
{
    uid_t uid;
    gid_t gid;

    if (!privs_running_as_root())
        return 0;
    if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0) {
        log_error("%s: mail_owner user \"%s\" does not exist", path,
                  var_mail_owner);
        return -1;
    }
    if (privs_become(uid, gid) < 0) {
        log_error("%s: cannot switch to uid %ld: %s", path, (long)uid,
                  strerror(errno));
        return -1;
    }
    return 1;
}

/* master_owner_leave - back to root after master_owner_enter() == 1 */
static void master_owner_leave(void)
{
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %s", strerror(errno));
}

/* master_listen_inet - bind one address; fd or -1 (EAFNOSUPPORT passes) */
static int master_listen_inet(const struct master_addr *a, const char *what)
{
    int fd, on = 1;
    int family = a->ss.ss_family;

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0
        || (family == AF_INET6
            && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
        || bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0
        || listen(fd, MASTER_BACKLOG) < 0) {
        int saved = errno;

        log_error("bind %s: %s", what, strerror(errno));
        (void)close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* master_open_inet - every address of an inet service */
static int master_open_inet(struct master_service *svc)
{
    struct master_addr addrs[MASTER_MAX_LISTEN];
    buf_t err = BUF_INIT, key = BUF_INIT;
    bool fd_ok = true;
    int n;

    n = master_inet_addrs(svc->ent.service, var_inet_interfaces, addrs,
                          MASTER_MAX_LISTEN, &err);
    if (n < 0) {
        log_error("service %s: %s", svc->ent.service, buf_str(&err));
        buf_free(&err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd;

        fd_ok = false;
        master_addrs_key(&addrs[i], 1, &key);
        fd = master_listen_inet(&addrs[i], buf_str(&key));
        if (fd < 0 && errno == EAFNOSUPPORT && n > 1) {
            log_warning("%s: address family not supported, skipped",
                        buf_str(&key));
            fd_ok = true;
            continue;
        }
        if (fd < 0)
            break;
        fd_ok = true;
        svc->listen_fds[svc->nlisten++] = fd;
    }
    buf_free(&key);
    buf_free(&err);
    return svc->nlisten > 0 && fd_ok ? 0 : -1;
}

/* master_unix_bind - remove a stale socket, bind with the right mode.
   Runs with the final owner's IDs, so the socket is created owned by
   $mail_owner and no chown is needed; the mode comes from the umask, so
   no chmod by path either. 0 ok; -1 with *what and errno set. */
static int master_unix_bind(int fd, const struct sockaddr_un *sun, mode_t mode,
                            const char **what)
{
    struct stat st;
    mode_t old_mask;
    int rc;

    *what = "listen on";
    if (lstat(sun->sun_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *what = "refusing to replace";
            errno = ENOTSOCK;
            return -1;
        }
        if (unlink(sun->sun_path) < 0 && errno != ENOENT) {
            *what = "remove stale";
            return -1;
        }
    }
    old_mask = umask(~mode & 0777);
    rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
    (void)umask(old_mask);
    return rc;
}

/* master_login_dir_check - login/ may hold root's path work only while
   it is a real directory of ours that nobody else can write (an
   unprivileged login process, or $login_user's group, could otherwise
   plant a symlink for root to follow). 0 ok, -1 logged. */
static int master_login_dir_check(void)
{
    struct stat st;
    int fd = open(QUEUE_LOGIN_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                                   | O_CLOEXEC);

    if (fd < 0) {
        log_error("%s/%s: %s", var_queue_directory, QUEUE_LOGIN_DIR,
                  strerror(errno));
        return -1;
    }
    int rc = fstat(fd, &st);
    (void)close(fd);
    if (rc < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & 022) != 0) {
        log_error("%s/%s must be a directory owned by uid %ld, not writable "
                  "by group or others: login services not started",
                  var_queue_directory, QUEUE_LOGIN_DIR, (long)geteuid());
        return -1;
    }
    return 0;
}

/* master_open_login - login/NAME, mode 0660, group $login_user's when
   root. Security: login/ is ours (checked first), so the path work is
   done as we are; the socket's group is set with lchown semantics. */
static int master_open_login(struct master_service *svc, int fd)
{
    struct sockaddr_un sun;
    const char *path = svc->unix_path;
    const char *what = "listen on";
    uid_t luid;
    gid_t lgid = (gid_t)-1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (str_copy(sun.sun_path, path, sizeof(sun.sun_path))
        >= sizeof(sun.sun_path) || master_login_dir_check() < 0)
        return -1;
    if (privs_running_as_root()
        && privs_lookup_user(var_login_user, &luid, &lgid) < 0) {
        log_error("%s: login_user \"%s\" does not exist", path,
                  var_login_user);
        return -1;
    }
    if (master_unix_bind(fd, &sun, 0660, &what) < 0
        || (lgid != (gid_t)-1
            && (what = "set the group of",
                fchownat(AT_FDCWD, path, (uid_t)-1, lgid,
                         AT_SYMLINK_NOFOLLOW) < 0))
        || (what = "listen on", listen(fd, MASTER_BACKLOG) < 0)) {
        log_error("%s %s: %s", what, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* master_open_unix - private/NAME (0600) or public/NAME (0666).
   Security: public/ and private/ belong to $mail_owner, so as root the
   whole path work (lstat, unlink, bind) is done with $mail_owner's
   effective IDs: root never resolves a path in those directories, and a
   symlink planted there can only lead where $mail_owner may go anyway. */
static int master_open_unix(struct master_service *svc)
{
    struct sockaddr_un sun;
    const char *path = svc->unix_path;
    mode_t mode = svc->ent.private_ ? 0600 : 0666;
    const char *what = "listen on";
    int fd, rc, saved, owner;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (str_copy(sun.sun_path, path, sizeof(sun.sun_path))
        >= sizeof(sun.sun_path))
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("socket: %s", strerror(errno));
        return -1;
    }
    if (mastercf_login_name(svc->ent.service) != NULL) {
        if (master_open_login(svc, fd) < 0) {
            (void)close(fd);
            return -1;
        }
        svc->listen_fds[svc->nlisten++] = fd;
        return 0;
    }
    if ((owner = master_owner_enter(path)) < 0) {
        (void)close(fd);
        return -1;
    }
    rc = master_unix_bind(fd, &sun, mode, &what);
    saved = errno;
    if (owner)
        master_owner_leave();
    if (rc < 0 || listen(fd, MASTER_BACKLOG) < 0) {
        if (rc == 0)
            saved = errno;
        log_error("%s %s: %s", what, path, strerror(saved));
        (void)close(fd);
        return -1;
    }
    svc->listen_fds[svc->nlisten++] = fd;
    return 0;
}

static void master_wakeup_timer(ev_loop_t *loop, void *arg)
{
    struct master_service *svc = arg;

    master_wakeup_send(svc);
    ev_timer_set(loop, &svc->wakeup_timer, (uint64_t)svc->ent.wakeup * 1000);
}

/* master_service_alloc - the service struct with paths, no sockets */
static struct master_service *master_service_alloc(const struct master_entry *e)
{
    struct master_service *svc = xcalloc(1, sizeof(*svc));
    buf_t b = BUF_INIT, err = BUF_INIT;

    master_entry_copy(&svc->ent, e);
    svc->status_rd = svc->status_wr = -1;
    ev_timer_init(&svc->throttle_timer, master_throttle_expired, svc);
    ev_timer_init(&svc->wakeup_timer, master_wakeup_timer, svc);
    if (master_service_label(e, &b, &err) < 0) {
        log_error("master.conf line %d: %s", e->line, buf_str(&err));
        buf_free(&b);
        buf_free(&err);
        master_entry_free(&svc->ent);
        free(svc);
        return NULL;
    }
    svc->label = buf_strdup(&b);
    if (e->type == MASTER_UNIX)
        svc->unix_path = xstrdup(svc->label);
    buf_reset(&b);
    (void)buf_printf(&b, "%s/%s", var_daemon_directory, e->command);
    svc->path = buf_strdup(&b);
    svc->overload_reply = master_overload_reply(e, config_value);
    buf_free(&b);
    buf_free(&err);
    return svc;
}

/* master_service_open - listeners and status pipe for one entry */
struct master_service *master_service_open(const struct master_entry *e)
{
    struct master_service *svc = master_service_alloc(e);
    int p[2];

    if (svc == NULL)
        return NULL;
    if ((e->type == MASTER_UNIX ? master_open_unix(svc)
                                : master_open_inet(svc)) < 0) {
        log_error("service %s (%s): cannot listen, skipped", e->service,
                  e->command);
        master_service_close(svc);
        return NULL;
    }
    if (pipe2(p, O_CLOEXEC) < 0 || fd_set_nonblock(p[0], true) < 0) {
        log_error("pipe: %s", strerror(errno));
        master_service_close(svc);
        return NULL;
    }
    svc->status_rd = p[0];
    svc->status_wr = p[1];
    log_debug("service %s (%s) listening on %s", e->service, e->command,
              svc->label);
    return svc;
}

/* master_wakeup_send - the periodic 'W' trigger */
void master_wakeup_send(struct master_service *svc)
{
    if (svc->unix_path == NULL || master_shutting_down)
        return;
    int owner, rc, saved;

    /* connect() follows symlinks: as $mail_owner, so a link planted in
       public/ cannot make root talk to another socket */
    if ((owner = master_owner_enter(svc->unix_path)) < 0)
        return;
    rc = trigger_send(svc->unix_path, TRIGGER_WAKEUP);
    saved = errno;
    if (owner)
        master_owner_leave();
    /* EAGAIN: backlog full, the service has work pending anyway */
    if (rc < 0 && saved != EAGAIN)
        log_warning("wakeup %s: %s", svc->unix_path, strerror(saved));
}

/* master_service_start - join the event loop */
void master_service_start(struct master_service *svc)
{
    for (size_t i = 0; i < svc->nlisten; i++)
        if (ev_io_add(master_loop, svc->listen_fds[i], 0,
                      master_listener_ready, svc) < 0)
            log_fatal("event loop: %s", strerror(errno));
    if (ev_io_add(master_loop, svc->status_rd, EV_READ, master_status_ready,
                  svc) < 0)
        log_fatal("event loop: %s", strerror(errno));
    master_demand_update(svc);
    if (svc->ent.wakeup > 0) {
        if (svc->unix_path == NULL)
            log_warning("service %s: wakeup is only supported for unix "
                        "services", svc->ent.service);
        else
            master_wakeup_timer(master_loop, svc);
    }
}

/* master_service_update - new columns for a kept listener */
void master_service_update(struct master_service *svc,
                           const struct master_entry *e)
{
    bool restart_wakeup = svc->ent.wakeup != e->wakeup;
    buf_t b = BUF_INIT;

    if (strcmp(svc->ent.command, e->command) != 0)
        svc->event_server = false;      /* until a new child says so */
    master_entry_free(&svc->ent);
    master_entry_copy(&svc->ent, e);
    free(svc->path);
    (void)buf_printf(&b, "%s/%s", var_daemon_directory, e->command);
    svc->path = buf_strdup(&b);
    buf_free(&b);
    free(svc->overload_reply);
    svc->overload_reply = master_overload_reply(e, config_value);
    if (restart_wakeup)
        ev_timer_stop(master_loop, &svc->wakeup_timer);
    if (svc->ent.wakeup > 0 && svc->unix_path != NULL)
        master_wakeup_timer(master_loop, svc);
    master_demand_update(svc);
}

/* master_service_close - stop listening, free; children are not touched */
void master_service_close(struct master_service *svc)
{
    if (master_loop) {
        ev_timer_stop(master_loop, &svc->throttle_timer);
        ev_timer_stop(master_loop, &svc->wakeup_timer);
    }
    for (size_t i = 0; i < svc->nlisten; i++) {
        if (master_loop)
            ev_io_remove(master_loop, svc->listen_fds[i]);
        (void)close(svc->listen_fds[i]);
    }
    if (svc->status_rd >= 0) {
        if (master_loop)
            ev_io_remove(master_loop, svc->status_rd);
        (void)close(svc->status_rd);
    }
    if (svc->status_wr >= 0)
        (void)close(svc->status_wr);
    /* unlink never follows a symlink: at worst it removes a name that
       $mail_owner put in its own directory */
    if (svc->unix_path && svc->nlisten > 0 && unlink(svc->unix_path) < 0
        && errno != ENOENT)
        log_warning("remove %s: %s", svc->unix_path, strerror(errno));
    master_entry_free(&svc->ent);
    free(svc->path);
    free(svc->label);
    free(svc->unix_path);
    free(svc->overload_reply);
    free(svc);
}

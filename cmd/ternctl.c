/*
 * ternctl - control the Tern mail system, like postfix(1):
 *
 *   ternctl [-c config_dir] [-v] start | stop | reload | status | check
 *                                | flush | set-permissions
 *
 * start runs master (detached) and waits for it: master's parent exits
 * only once every listener is bound, with the start-up error on stderr
 * and a non-zero status otherwise (master/master.c). stop sends SIGTERM
 * and waits until master has let go of its pid lock; reload sends
 * SIGHUP; status says whether a master holds the lock
 * (mail/master_pid.h). flush sends qmgr the F trigger on public/qmgr.
 * check runs `master -t` (both configuration files, every listener can
 * be bound), then compares the spool with what queue_dirs_create makes
 * and what each chroot needs; set-permissions repairs the spool.
 *
 * Security: run by root. Queue files are chowned only after lstat and an
 * O_NOFOLLOW|O_NONBLOCK open whose fstat shows the same regular file
 * with one link (a hard link planted by $mail_owner is left alone);
 * maildrop/ files are never touched (their owner is the submitter's
 * identity). The trigger is sent with $mail_owner's effective IDs, as
 * master sends its own (public/ is $mail_owner's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/master_pid.h"
#include "mail/mastercf.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/privs.h"

#define CTL_STOP_WAIT_MSEC 120000      /* master's own grace is 5 s */
#define CTL_POLL_MSEC 50
#define CTL_SHOW_FILES 10              /* wrong queue files named each */

static const char *ctl_config_dir;
static int ctl_verbose;

/* what the spool should look like (queue_dirs_create's arguments) */
struct ctl_owner {
    uid_t uid;
    gid_t gid;
    gid_t sgid;                        /* maildrop/, public/ */
    uid_t pid_uid;                     /* pid/, login/ */
    gid_t pid_gid;
    gid_t login_gid;                   /* login/: $login_user's group */
};

static void ctl_usage(void)
{
    fprintf(stderr, "usage: ternctl [-c config_dir] [-v] start | stop | "
            "reload | status | check | flush | set-permissions\n");
    exit(2);
}

/* ctl_sleep_msec - nanosleep, restarted */
static void ctl_sleep_msec(long msec)
{
    struct timespec ts = { msec / 1000, (msec % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ctl_running - the running master's PID, 0 if none (fatal on error) */
static long ctl_running(void)
{
    long pid;
    int rc = master_pid_running(var_queue_directory, &pid);

    if (rc < 0)
        log_fatal("%s/%s: %s", var_queue_directory, MASTER_PID_FILE,
                  strerror(errno));
    if (rc == 1 && pid <= 0)
        log_fatal("%s/%s is locked but holds no PID yet: is master just "
                  "starting?", var_queue_directory, MASTER_PID_FILE);
    return rc == 1 ? pid : 0;
}

/* ctl_run - fork and exec argv, wait; its exit status (1 if killed) */
static int ctl_run(char *const argv[])
{
    pid_t pid = fork();
    int wstatus;

    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        log_fatal("cannot execute %s: %s", argv[0], strerror(errno));
    }
    while (waitpid(pid, &wstatus, 0) < 0)
        if (errno != EINTR)
            log_fatal("waitpid: %s", strerror(errno));
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    log_warning("%s: killed by signal %d", argv[0], WTERMSIG(wstatus));
    return 1;
}

/* ctl_master_path - $daemon_directory/master into b */
static void ctl_master_path(buf_t *b)
{
    buf_reset(b);
    if (buf_printf(b, "%s/master", var_daemon_directory) < 0)
        log_fatal("daemon_directory too long");
}

/* ---- start, stop, reload, status, flush ---------------------------------- */

static int ctl_start(void)
{
    buf_t path = BUF_INIT;
    long pid = ctl_running();
    int rc;

    if (pid > 0)
        log_fatal("the Tern mail system is already running (pid %ld)", pid);
    log_info("starting the Tern mail system");
    ctl_master_path(&path);
    {
        char *argv[] = { path.data, "-c", (char *)ctl_config_dir,
                         ctl_verbose ? "-v" : NULL, NULL };

        rc = ctl_run(argv);
    }
    buf_free(&path);
    if (rc != 0)
        log_fatal("mail system start-up failed");
    return 0;
}

static int ctl_stop(void)
{
    long pid = ctl_running(), waited = 0;

    if (pid == 0)
        log_fatal("the Tern mail system is not running");
    log_info("stopping the Tern mail system");
    if (kill((pid_t)pid, SIGTERM) < 0)
        log_fatal("kill %ld: %s", pid, strerror(errno));
    /* gone means the lock is free: the PID could be reused, the lock not */
    while (ctl_running() != 0) {
        if (waited >= CTL_STOP_WAIT_MSEC)
            log_fatal("master (pid %ld) is still running after %ld s",
                      pid, waited / 1000);
        ctl_sleep_msec(CTL_POLL_MSEC);
        waited += CTL_POLL_MSEC;
    }
    return 0;
}

static int ctl_reload(void)
{
    long pid = ctl_running();

    if (pid == 0)
        log_fatal("the Tern mail system is not running");
    log_info("refreshing the Tern mail system");
    if (kill((pid_t)pid, SIGHUP) < 0)
        log_fatal("kill %ld: %s", pid, strerror(errno));
    return 0;
}

static int ctl_status(void)
{
    long pid = ctl_running();

    if (pid == 0) {
        printf("the Tern mail system is not running\n");
        return 1;
    }
    printf("the Tern mail system is running: PID: %ld\n", pid);
    return 0;
}

static int ctl_flush(void)
{
    buf_t path = BUF_INIT;
    uid_t uid;
    gid_t gid;
    bool become = privs_running_as_root();
    int rc, saved;

    if (ctl_running() == 0)
        log_fatal("the Tern mail system is not running");
    if (buf_printf(&path, "%s/public/qmgr", var_queue_directory) < 0)
        log_fatal("queue_directory too long");
    if (become) {
        if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0)
            log_fatal("mail_owner user \"%s\" does not exist", var_mail_owner);
        if (privs_become(uid, gid) < 0)
            log_fatal("cannot switch to %s: %s", var_mail_owner,
                      strerror(errno));
    }
    rc = trigger_send(buf_str(&path), TRIGGER_FLUSH);
    saved = errno;
    if (become && privs_restore() < 0)
        log_fatal("cannot restore root privileges: %s", strerror(errno));
    if (rc < 0)
        log_fatal("cannot flush the queue: %s: %s", buf_str(&path),
                  strerror(saved));
    buf_free(&path);
    return 0;
}

/* ---- check and set-permissions ------------------------------------------ */

/* ctl_owner_get - the IDs master gives the spool (master_spool_setup) */
static void ctl_owner_get(struct ctl_owner *o)
{
    o->uid = getuid();
    o->gid = getgid();
    o->sgid = (gid_t)-1;
    o->pid_uid = geteuid();
    o->pid_gid = getegid();
    o->login_gid = getegid();
    if (!privs_running_as_root())
        return;
    uid_t luid;
    if (privs_lookup_user(var_login_user, &luid, &o->login_gid) < 0)
        o->login_gid = getegid();       /* as master: root's only */
    if (privs_lookup_user(var_mail_owner, &o->uid, &o->gid) < 0)
        log_fatal("mail_owner user \"%s\" does not exist", var_mail_owner);
    if (privs_lookup_group(var_setgid_group, &o->sgid) < 0)
        log_fatal("setgid_group \"%s\" does not exist", var_setgid_group);
}

/* ctl_dir_check - one spool directory against mode and owner; 1 if
   wrong (said why), 0 right */
static int ctl_dir_check(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        log_warning("%s: %s", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_warning("%s: not a directory", path);
        return 1;
    }
    if ((st.st_mode & 07777) != mode || st.st_uid != uid || st.st_gid != gid) {
        log_warning("%s: mode %#o owner %ld group %ld, should be mode %#o "
                    "owner %ld group %ld", path, (unsigned)(st.st_mode & 07777),
                    (long)st.st_uid, (long)st.st_gid, (unsigned)mode,
                    (long)uid, (long)gid);
        return 1;
    }
    return 0;
}

/* ctl_files_walk - every entry of one queue directory (not maildrop/):
   count the ones that are not regular files owned by o->uid; fix:
   chown the regular ones (see the security note) */
static int ctl_files_walk(const char *dir, const struct ctl_owner *o, bool fix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    buf_t path = BUF_INIT;
    int bad = 0;

    if (d == NULL)
        return errno == ENOENT ? 0 : 1;
    while ((e = readdir(d)) != NULL) {
        struct stat st, fst;
        int fd;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        buf_reset(&path);
        if (buf_printf(&path, "%s/%s", dir, e->d_name) < 0
            || lstat(buf_str(&path), &st) < 0)
            continue;           /* moved on meanwhile */
        if (S_ISDIR(st.st_mode))
            continue;           /* hash subdirectories: checked apart */
        if (!S_ISREG(st.st_mode)) {
            if (bad++ < CTL_SHOW_FILES)
                log_warning("%s: not a regular file", buf_str(&path));
            continue;
        }
        if (st.st_uid == o->uid)
            continue;
        if (!fix) {
            if (bad++ < CTL_SHOW_FILES)
                log_warning("%s: owner %ld, should be %ld (%s)",
                            buf_str(&path), (long)st.st_uid, (long)o->uid,
                            var_mail_owner);
            continue;
        }
        fd = open(buf_str(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK
                  | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_nlink == 1
            && fst.st_ino == st.st_ino && fst.st_dev == st.st_dev) {
            if (fchown(fd, o->uid, o->gid) < 0) {
                log_warning("chown %s: %s", buf_str(&path), strerror(errno));
                bad++;
            } else if (ctl_verbose) {
                log_info("%s: owner set to %s", buf_str(&path),
                         var_mail_owner);
            }
        } else {
            log_warning("%s: not a regular file with one link: left alone",
                        buf_str(&path));
            bad++;
        }
        (void)close(fd);
    }
    (void)closedir(d);
    buf_free(&path);
    if (bad > CTL_SHOW_FILES && !fix)
        log_warning("%s: %d more such files", dir, bad - CTL_SHOW_FILES);
    return bad;
}

/* ctl_queue_files - ownership of every queue file (fix: repair it);
   the number of wrong ones */
static int ctl_queue_files(const struct ctl_owner *o, bool fix)
{
    static const char *const queues[] = {
        QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
        QUEUE_CORRUPT, QUEUE_DEFER, QUEUE_FREE, NULL
    };
    static const char hash[] =
        "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
    buf_t dir = BUF_INIT;
    int bad = 0;

    for (const char *const *q = queues; *q; q++) {
        buf_reset(&dir);
        (void)buf_printf(&dir, "%s/%s", var_queue_directory, *q);
        bad += ctl_files_walk(buf_str(&dir), o, fix);
        if (!queue_is_hashed(*q))
            continue;
        for (const char *c = hash; *c; c++) {
            buf_reset(&dir);
            (void)buf_printf(&dir, "%s/%s/%c", var_queue_directory, *q, *c);
            bad += ctl_files_walk(buf_str(&dir), o, fix);
        }
    }
    buf_free(&dir);
    return bad;
}

/* ctl_spool_check - the directories as queue_dirs_create makes them and
   the queue files' owner; the number of problems */
static int ctl_spool_check(const struct ctl_owner *o)
{
    static const char hash[] =
        "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
    buf_t path = BUF_INIT;
    struct stat st;
    int bad = 0;

    if (lstat(var_queue_directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_warning("%s: no queue directory (master or `ternctl "
                    "set-permissions` creates it)", var_queue_directory);
        return 1;
    }
    for (const char *const *np = queue_dir_names; *np; np++) {
        mode_t mode = queue_dir_mode(*np);
        bool pid = strcmp(*np, "pid") == 0;
        bool sg = strcmp(*np, QUEUE_MAILDROP) == 0
                  || strcmp(*np, "public") == 0;
        gid_t g = sg && o->sgid != (gid_t)-1 ? o->sgid : o->gid;

        buf_reset(&path);
        (void)buf_printf(&path, "%s/%s", var_queue_directory, *np);
        if (ctl_dir_check(buf_str(&path), mode, pid ? o->pid_uid : o->uid,
                          pid ? o->pid_gid : g) > 0) {
            bad++;
            if (lstat(buf_str(&path), &st) < 0 || !S_ISDIR(st.st_mode))
                continue;       /* its hash subdirectories: not there */
        }
        if (!queue_is_hashed(*np))
            continue;
        for (const char *c = hash; *c; c++) {
            buf_reset(&path);
            (void)buf_printf(&path, "%s/%s/%c", var_queue_directory, *np, *c);
            bad += ctl_dir_check(buf_str(&path), mode, o->uid, o->gid);
        }
    }
    /* the login processes' chroot (queue_login_dir_create) */
    buf_reset(&path);
    (void)buf_printf(&path, "%s/%s", var_queue_directory, QUEUE_LOGIN_DIR);
    bad += ctl_dir_check(buf_str(&path), 0750, o->pid_uid, o->login_gid);
    buf_free(&path);
    return bad + ctl_queue_files(o, false);
}

/* ctl_chroot_check - what a chroot=y service needs from its jail, the
   queue directory. Tern's daemons open everything before the chroot
   (time zone, syslog socket, log file, tables through proxymap,
   certificates, resolver), so no copies of /etc files are needed; what
   remains: the jail is root's and nobody else's to write, and for
   syslog a dev/log inside it lets a chrooted daemon reconnect after the
   syslog daemon restarts. Problems counted (warnings are not). */
static int ctl_chroot_check(void)
{
    struct master_conf mc;
    buf_t path = BUF_INIT, err = BUF_INIT;
    const char *jailed = NULL;
    struct stat st;
    int bad = 0;

    memset(&mc, 0, sizeof(mc));
    (void)buf_printf(&path, "%s/master.conf", ctl_config_dir);
    if (mastercf_parse_file(buf_str(&path), &mc, &err) < 0)
        goto out;               /* master -t said so */
    for (size_t i = 0; i < mc.count && jailed == NULL; i++)
        if (mc.entries[i].chroot)
            jailed = mc.entries[i].service;
    if (jailed == NULL || !privs_running_as_root())
        goto out;
    if (lstat(var_queue_directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_warning("%s: not a directory: chrooted services (%s) need it",
                    var_queue_directory, jailed);
        bad++;
    } else if (st.st_uid != 0 || (st.st_mode & 022) != 0) {
        log_warning("%s: the chroot jail of service %s must be owned by "
                    "root and not writable by group or others (mode %#o "
                    "owner %ld)", var_queue_directory, jailed,
                    (unsigned)(st.st_mode & 07777), (long)st.st_uid);
        bad++;
    }
    buf_reset(&path);
    (void)buf_printf(&path, "%s/dev/log", var_queue_directory);
    if (log_syslog_probe() == LOG_SYSLOG_OK && lstat(buf_str(&path), &st) < 0)
        log_warning("%s: no syslog socket in the chroot jail: chrooted "
                    "services (%s) cannot reconnect to syslog after the "
                    "syslog daemon restarts, until `ternctl reload` "
                    "replaces them (or set maillog_file)", buf_str(&path), jailed);
out:
    mastercf_free(&mc);
    buf_free(&path);
    buf_free(&err);
    return bad;
}

static int ctl_check(void)
{
    struct ctl_owner o;
    buf_t path = BUF_INIT;
    int rc, spool, jail;

    ctl_master_path(&path);
    {
        char *argv[] = { path.data, "-t", "-c", (char *)ctl_config_dir, NULL };

        rc = ctl_run(argv);
    }
    buf_free(&path);
    if (log_syslog_probe() == LOG_SYSLOG_LOST)
        log_warning("no syslog socket at %s: log lines are lost; set "
                    "maillog_file in main.conf or start a syslog daemon",
                    log_syslog_path());
    ctl_owner_get(&o);
    spool = ctl_spool_check(&o);
    jail = ctl_chroot_check();
    if (spool > 0)
        log_warning("%d problems in %s: `ternctl set-permissions` repairs "
                    "them", spool, var_queue_directory);
    return rc != 0 || spool > 0 || jail > 0 ? 1 : 0;
}

static int ctl_set_permissions(void)
{
    struct ctl_owner o;
    int bad;

    ctl_owner_get(&o);
    if (queue_dirs_create(var_queue_directory, o.uid, o.gid, o.sgid) < 0
        || queue_login_dir_create(var_queue_directory, o.login_gid) < 0)
        log_fatal("set permissions under %s: %s", var_queue_directory,
                  strerror(errno));
    bad = privs_running_as_root() ? ctl_queue_files(&o, true) : 0;
    return bad > 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } cmds[] = {
        { "start", ctl_start }, { "stop", ctl_stop },
        { "reload", ctl_reload }, { "status", ctl_status },
        { "check", ctl_check }, { "flush", ctl_flush },
        { "set-permissions", ctl_set_permissions },
    };
    const char *cdir = NULL;
    buf_t err = BUF_INIT;
    int c;

    log_init("tern", "ternctl");
    log_set_stderr(true);
    while ((c = getopt(argc, argv, "c:v")) != -1) {
        switch (c) {
        case 'c': cdir = optarg; break;
        case 'v': ctl_verbose++; break;
        default: ctl_usage();
        }
    }
    if (optind + 1 != argc)
        ctl_usage();
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[optind], cmds[i].name) != 0)
            continue;
        ctl_config_dir = config_directory_default(cdir);
        if (setenv("MAIL_CONFIG", ctl_config_dir, 1) < 0)
            log_fatal("setenv: %s", strerror(errno));
        if (config_load(ctl_config_dir, &err) < 0) {
            const char *msg = buf_str(&err), *last = strrchr(msg, '\n');

            log_fatal("%s", last ? last + 1 : msg);
        }
        buf_free(&err);
        config_apply_logging("ternctl");
        log_set_stderr(true);
        if (ctl_verbose)
            log_set_verbose(ctl_verbose);
        c = cmds[i].fn();
        if (fflush(stdout) != 0)
            c = 1;
        config_free();
        return c;
    }
    ctl_usage();
}

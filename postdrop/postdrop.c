/*
 * postdrop - the set-gid helper that puts a local submission into
 * maildrop/ (Postfix's postdrop(1) is the model). sendmail pipes a
 * maildrop-format stream (mail/maildrop.h) to its standard input;
 * postdrop checks every record as it arrives, copies the stream into
 * maildrop/t.PID.N, fsyncs it, renames it to a queue ID (arrival time and
 * inode, like every queue file), fsyncs maildrop/ (or, for a user who
 * may not read maildrop/, syncs its file system) and wakes pickup
 * through public/pickup. With the daemons stopped the wake-up fails and
 * that is fine: pickup scans maildrop/ when it starts and every
 * $wakeup seconds. Only after all of this does it exit 0.
 *
 * The envelope sender must be one that $local_login_sender_maps allows
 * the real uid's login name (mail/login_sender.h); the user is told
 * which, and nothing is queued. pickup checks it again on the file's
 * owner, so this is the friendly check, not the only one.
 *
 * Exit status: 0 queued; 64 usage; 65 malformed or oversized input;
 * 75 a temporary failure (no maildrop/, I/O, a table that cannot be
 * read); 77 a sender this user may not use; 1 fatal configuration
 * errors (a refused configuration directory).
 *
 * Security: installed set-gid $setgid_group (never set-uid), so the file
 * it creates belongs to the real user, and that uid is the submitter's
 * identity for pickup. The environment is cleared; descriptors 0-2 are
 * made to exist; a configuration directory other than the default
 * (-c, -C, MAIL_CONFIG) is honoured while set-gid only for root or when
 * the default main.conf lists it in $alternate_config_directories. The
 * file is created O_EXCL|O_NOFOLLOW (nothing planted is followed or
 * reused), mode 0444 (pickup, another user, reads it), and as root it
 * gets maildrop/'s group, as a set-gid postdrop's file would.
 */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/login_sender.h"
#include "mail/maildrop.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define EX_USAGE    64
#define EX_DATAERR  65
#define EX_TEMPFAIL 75
#define EX_NOPERM   77

static char pd_temp[64];                /* maildrop/t.PID.N while it exists */
static volatile sig_atomic_t pd_have_temp;

/* LeakSanitizer (sanitizer builds) cannot inspect a set-gid process,
   which is not dumpable, and fails the exit; it asks this hook first */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getegid() != getgid();
}

static void pd_on_signal(int sig)
{
    (void)sig;
    if (pd_have_temp)
        (void)unlink(pd_temp);
    _exit(EX_TEMPFAIL);
}

static void __attribute__((noreturn)) pd_exit(int status)
{
    if (pd_have_temp) {
        (void)unlink(pd_temp);
        pd_have_temp = 0;
    }
    config_free();
    exit(status);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
pd_die(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    pd_exit(status);
}

/* pd_stdfds - a set-gid program must not open its files as fd 0-2 */
static void pd_stdfds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/null", O_RDWR);
        if (n < 0)
            _exit(EX_TEMPFAIL);
        if (n != fd)
            _exit(EX_TEMPFAIL);
    }
}

/* pd_config - load main.conf from the directory the caller may choose */
static void pd_config(const char *cdir)
{
    buf_t err = BUF_INIT;

    if (!config_dir_allowed_setgid(cdir))
        pd_die(1, "%s: not listed in alternate_config_directories in "
               "%s/main.conf", cdir, TERN_DEFAULT_CONFIG_DIR);
    if (config_load(cdir ? cdir : TERN_DEFAULT_CONFIG_DIR, &err) < 0)
        pd_die(1, "%s", buf_str(&err));
    buf_free(&err);
}

/* pd_create - maildrop/t.PID.N, new, ours */
static int pd_create(struct stat *dir_st)
{
    static unsigned seq;
    int fd;

    if (stat(QUEUE_MAILDROP, dir_st) < 0)
        pd_die(EX_TEMPFAIL, "%s/%s: %s", var_queue_directory, QUEUE_MAILDROP,
               strerror(errno));
    /* sendmail's SIGTERM (its own refusal) may come at any moment: not
       between the create and the flag that makes the handler remove it */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGHUP);
    sigaddset(&term, SIGINT);
    sigaddset(&term, SIGQUIT);
    sigaddset(&term, SIGTERM);
    (void)sigprocmask(SIG_BLOCK, &term, &old);
    for (;;) {
        (void)snprintf(pd_temp, sizeof(pd_temp), "%s/t.%ld.%u", QUEUE_MAILDROP,
                       (long)getpid(), seq++);
        fd = open(pd_temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0444);
        if (fd >= 0)
            break;
        if (errno != EEXIST || seq > 1000)
            pd_die(EX_TEMPFAIL, "create file %s/%s: %s", var_queue_directory,
                   pd_temp, strerror(errno));
    }
    pd_have_temp = 1;
    (void)sigprocmask(SIG_SETMASK, &old, NULL);
    /* root's file gets maildrop/'s group, as a set-gid postdrop's would:
       pickup takes only files of that group */
    if (geteuid() == 0 && fchown(fd, (uid_t)-1, dir_st->st_gid) < 0)
        pd_die(EX_TEMPFAIL, "chown %s: %s", pd_temp, strerror(errno));
    return fd;
}

/* the submitter, for $local_login_sender_maps */
struct pd_login {
    maps_t *maps;
    buf_t key;                  /* login name, or "uid:N" */
};

/* pd_login_open - the tables and the real uid's lookup key */
static void pd_login_open(struct pd_login *l)
{
    const char *why = NULL;
    struct passwd *pw;

    buf_init(&l->key, 0);
    errno = 0;
    pw = getpwuid(getuid());
    if (pw == NULL && errno != 0 && errno != ENOENT && errno != ESRCH)
        pd_die(EX_TEMPFAIL, "uid=%ld: password database: %s", (long)getuid(),
               strerror(errno));
    login_sender_key(getuid(), pw ? pw->pw_name : NULL, &l->key);
    l->maps = maps_open_missing_ok(var_local_login_sender_maps, &why);
    if (l->maps == NULL)
        pd_die(EX_TEMPFAIL, "local_login_sender_maps: %s",
               why ? why : "bad table");
}

/* pd_sender - the reader's callback: is the sender record allowed? */
static int pd_sender(void *ctx, const struct maildrop_rec *rec,
                     const char **error_r)
{
    struct pd_login *l = ctx;

    (void)error_r;
    if (rec->type != MDREC_SENDER)
        return 0;
    switch (login_sender_check(l->maps, buf_str(&l->key), rec->data)) {
    case 1:
        return 0;
    case 0:
        pd_die(EX_NOPERM, "User %s(%ld) is not allowed to use sender "
               "address \"%s\"", buf_str(&l->key), (long)getuid(),
               rec->data[0] ? rec->data
               : var_empty_address_local_login_sender_maps_lookup_key);
    default:
        pd_die(EX_TEMPFAIL, "uid=%ld: local_login_sender_maps lookup of %s "
               "failed", (long)getuid(), buf_str(&l->key));
    }
}

/* pd_copy_in - read stdin through the strict reader into fd */
static void pd_copy_in(int fd, struct pd_login *login)
{
    maildrop_reader_t r;
    char buf[65536];
    const char *why = NULL;
    uint64_t limit = maildrop_file_max((uint64_t)var_message_size_limit);
    uint64_t total = 0;
    ssize_t n;

    maildrop_reader_init(&r, (uint64_t)var_message_size_limit);
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            pd_die(EX_TEMPFAIL, "uid=%ld: read standard input: %s",
                   (long)getuid(), strerror(errno));
        }
        total += (uint64_t)n;
        if (total > limit)
            pd_die(EX_DATAERR, "uid=%ld: input too large", (long)getuid());
        if (maildrop_reader_feed(&r, buf, (size_t)n, pd_sender, login, &why) < 0)
            pd_die(EX_DATAERR, "uid=%ld: malformed input: %s", (long)getuid(),
                   why);
        if (write_full(fd, buf, (size_t)n) < 0)
            pd_die(EX_TEMPFAIL, "write %s: %s", pd_temp, strerror(errno));
    }
    if (maildrop_reader_end(&r, &why) < 0)
        pd_die(EX_DATAERR, "uid=%ld: malformed input: %s", (long)getuid(), why);
    maildrop_reader_free(&r);
}

static void usage(void)
{
    fprintf(stderr, "usage: postdrop [-c config_dir] [-v]\n");
    exit(EX_USAGE);
}

int main(int argc, char **argv)
{
    const char *cdir = NULL;
    char *env_dir = NULL;
    struct stat st, dst;
    char qid[QUEUE_ID_SIZE];
    buf_t final = BUF_INIT;
    struct pd_login login;
    int ch, fd;

    pd_stdfds();
    log_init("tern", "postdrop");
    log_set_stderr(true);
    if (getenv("MAIL_CONFIG") && *getenv("MAIL_CONFIG"))
        env_dir = xstrdup(getenv("MAIL_CONFIG"));
    if (clearenv() != 0)
        pd_die(EX_TEMPFAIL, "cannot clear the environment");
    while ((ch = getopt(argc, argv, "c:C:rv")) != -1) {
        switch (ch) {
        case 'c':
        case 'C':
            cdir = optarg;
            break;
        case 'r':               /* Postfix's only protocol: the default */
            break;
        case 'v':
            log_set_verbose(log_verbose_level() + 1);
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (cdir == NULL)
        cdir = env_dir;
    umask(022);
    pd_config(cdir);
    /* syslog only: a set-gid program does not open $maillog_file for
       its caller */
    log_init(var_syslog_name, "postdrop");
    log_set_stderr(true);
    if (chdir(var_queue_directory) < 0)
        pd_die(EX_TEMPFAIL, "chdir %s: %s", var_queue_directory, strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, pd_on_signal);
    signal(SIGINT, pd_on_signal);
    signal(SIGQUIT, pd_on_signal);
    signal(SIGTERM, pd_on_signal);
    signal(SIGXFSZ, SIG_IGN);

    pd_login_open(&login);
    fd = pd_create(&dst);
    pd_copy_in(fd, &login);
    maps_close(login.maps);
    buf_free(&login.key);
    if (fstat(fd, &st) < 0 || fsync(fd) < 0)
        pd_die(EX_TEMPFAIL, "write %s: %s", pd_temp, strerror(errno));
    queue_id_make(time_now_usec(), (uint64_t)st.st_ino, qid);
    buf_printf(&final, "%s/%s", QUEUE_MAILDROP, qid);
    if (queue_rename_noreplace(pd_temp, buf_str(&final)) < 0)
        pd_die(EX_TEMPFAIL, "rename %s to %s: %s", pd_temp, buf_str(&final),
               strerror(errno));
    pd_have_temp = 0;
    /* maildrop/ is write-and-search only for us (01730): without read
       permission it cannot be opened to fsync it, so an ordinary user's
       rename is made durable by syncing the file system instead */
    if (fsync_dir(QUEUE_MAILDROP) < 0
        && (errno != EACCES || syncfs(fd) < 0)) {
        /* the file is complete under its name; only its durability is
           in doubt, so do not let the caller send it twice: remove it */
        int saved = errno;
        (void)unlink(buf_str(&final));
        pd_die(EX_TEMPFAIL, "fsync %s: %s", QUEUE_MAILDROP, strerror(saved));
    }
    (void)close(fd);
    log_debug("%s: uid=%ld queued in %s", qid, (long)getuid(), QUEUE_MAILDROP);
    /* pickup finds it anyway (start-up scan, wakeup): failure is fine */
    if (trigger_send("public/pickup", TRIGGER_NEW_MAIL) < 0)
        log_debug("trigger public/pickup: %s", strerror(errno));
    buf_free(&final);
    free(env_dir);
    config_free();
    return 0;
}

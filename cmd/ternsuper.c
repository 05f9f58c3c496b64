/*
 * ternsuper - queue maintenance for root (Postfix's postsuper):
 *   -d ID|ALL|-   delete messages (and their defer/ logs)
 *   -h ID|ALL|-   put messages on hold (into hold/)
 *   -H ID|ALL|-   release held messages (into deferred/, due now)
 *   -r ID|ALL|-   requeue messages (through incoming/: routed afresh)
 * with "-" reading queue IDs from stdin (whitespace-separated), and an
 * optional queue name (incoming, active, deferred, hold) limiting where
 * messages are looked for. Options may be repeated; every ID is looked
 * up in the default queues of its operation.
 *
 * Safety while qmgr runs (doc/architecture.md "Queue tools"): every
 * change is one rename (queue_move: never over an existing name, the
 * destination fsync'd) or one unlink, which is atomic against qmgr's
 * own renames: the file is changed where it is, or it moved first and
 * is looked for again in the queue it moved to. active/ belongs to qmgr
 * and its delivery agents: while master runs (pid/master.pid is locked)
 * messages there are left alone with a warning; with master stopped
 * they are treated like the others. Requeue moves a message into hold/
 * first, where qmgr never looks, removes its defer/ log there, and only
 * then into incoming/: qmgr takes mail from incoming/ as new mail with
 * no log. Release sets the file's mtime (its next-attempt time) to now
 * before the rename into deferred/, then wakes qmgr.
 *
 * Privileges: root (or $mail_owner itself, who owns every queue file:
 * the user of a developer instance); root works, after the
 * configuration and the log file, with $mail_owner's effective IDs, so
 * nothing in the spool is created or touched as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/bounce_log.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/server.h"
#include "util/buf.h"
#include "util/cmd_msg.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/sys.h"
#include "util/util.h"

#define PROG "ternsuper"

enum op { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE, OP_COUNT };

static const char *const op_done[OP_COUNT] = {
    "Deleted", "Placed on hold", "Released from hold", "Requeued",
};
static const char *const op_log[OP_COUNT] = {
    "removed", "placed on hold", "released from hold", "requeued",
};
/* where each operation looks, in the order files move (a file that
   moves while we look moves ahead of us; a second pass finds the rest) */
static const char *const op_queues[OP_COUNT][5] = {
    [OP_DELETE] = { QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL },
    [OP_HOLD] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL },
    [OP_RELEASE] = { QUEUE_HOLD, NULL },
    [OP_REQUEUE] = { QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL },
};

struct request {
    enum op op;
    const char *arg;        /* ID, "ALL" or "-" */
};

static bool master_running;
static size_t done_count[OP_COUNT];
static size_t skipped_active;
static bool want_trigger_deferred, want_trigger_incoming;

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " [-c config_dir] [-d|-h|-H|-r queue_id|ALL|-]"
            "... [queue]\n");
    exit(2);
}

/* master_is_running - somebody holds the lock on pid/master.pid */
static bool master_is_running(void)
{
    int fd = open("pid/master.pid", O_RDONLY | O_NOFOLLOW | O_NONBLOCK
                  | O_CLOEXEC);
    bool running = false;

    if (fd < 0)
        return false;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        running = errno == EWOULDBLOCK;
    close(fd);
    return running;
}

/* make_due - mtime of queue/qid to now, on the file itself (no link) */
static int make_due(const char *queue, const char *qid)
{
    buf_t path = BUF_INIT;
    struct stat st;
    int fd, rc = -1, saved;

    queue_path(queue, qid, &path);
    fd = open(buf_str(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    saved = errno;
    buf_free(&path);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        rc = futimens(fd, NULL);
    else
        errno = EINVAL;
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* present - queue/qid exists (lstat)? 0, or -1 errno */
static int present(const char *queue, const char *qid)
{
    buf_t path = BUF_INIT;
    struct stat st;
    int rc;

    queue_path(queue, qid, &path);
    rc = lstat(buf_str(&path), &st);
    buf_free(&path);
    return rc;
}

/* move - queue_move with its fsync; -1 errno (ENOENT: not there) */
static int move(const char *from, const char *to, const char *qid)
{
    int r = queue_move(from, to, qid, QUEUE_MOVE_SYNC);

    if (r > 0)
        cmd_warn("%s: fsync %s/: %s", qid, to, strerror(errno));
    return r < 0 ? -1 : 0;
}

/* apply - op on qid in queue; 1 done, 0 not there, -1 failed (said) */
static int apply(enum op op, const char *queue, const char *qid)
{
    int rc;

    if (strcmp(queue, QUEUE_ACTIVE) == 0 && master_running) {
        if (present(queue, qid) < 0)
            return 0;
        cmd_warn("%s: in %s/ while the mail system runs (being delivered): left "
             "alone; try again once it is deferred", qid, QUEUE_ACTIVE);
        skipped_active++;
        return -1;
    }
    switch (op) {
    case OP_DELETE:
        rc = queue_remove(queue, qid);
        if (rc == 0 && bounce_log_remove(qid) < 0 && errno != ENOENT)
            cmd_warn("%s: remove its log in %s/: %s", qid, QUEUE_DEFER,
                 strerror(errno));
        break;
    case OP_HOLD:
        rc = move(queue, QUEUE_HOLD, qid);
        break;
    case OP_RELEASE:
        rc = make_due(queue, qid);
        if (rc == 0)
            rc = move(queue, QUEUE_DEFERRED, qid);
        if (rc == 0)
            want_trigger_deferred = true;
        break;
    case OP_REQUEUE:
        /* hold/ first: qmgr never looks there, so the log can go and
           the file can enter incoming/ as the new mail qmgr takes it for */
        rc = strcmp(queue, QUEUE_HOLD) == 0 ? present(queue, qid)
                                            : move(queue, QUEUE_HOLD, qid);
        if (rc == 0) {
            if (bounce_log_remove(qid) < 0 && errno != ENOENT)
                cmd_warn("%s: remove its log in %s/: %s", qid, QUEUE_DEFER,
                     strerror(errno));
            if (move(QUEUE_HOLD, QUEUE_INCOMING, qid) < 0) {
                cmd_warn("%s: move from %s/ to %s/: %s (left in %s/)", qid,
                     QUEUE_HOLD, QUEUE_INCOMING, strerror(errno), QUEUE_HOLD);
                return -1;
            }
            want_trigger_incoming = true;
        }
        break;
    default:
        return -1;
    }
    if (rc < 0) {
        if (errno == ENOENT)
            return 0;
        cmd_warn("%s: %s/: %s", qid, queue, strerror(errno));
        return -1;
    }
    log_info("%s: %s", qid, op_log[op]);
    done_count[op]++;
    return 1;
}

/* one_id - op on qid, wherever (within only, if given) it is */
static void one_id(enum op op, const char *qid, const char *only, bool quiet)
{
    if (!queue_id_valid(qid)) {
        cmd_warn("%s: not a queue ID", qid);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; op_queues[op][i] != NULL; i++) {
            if (only != NULL && strcmp(only, op_queues[op][i]) != 0)
                continue;
            int r = apply(op, op_queues[op][i], qid);
            if (r != 0)
                return;
        }
    }
    if (!quiet)
        cmd_warn("%s: no such message%s%s", qid, only ? " in " : "",
             only ? only : "");
}

struct id_list {
    char (*v)[QUEUE_ID_SIZE];
    size_t n;
};

static int collect_id(const struct queue_list_entry *e, void *ctx)
{
    struct id_list *l = ctx;

    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    str_copy(l->v[l->n++], e->qid, QUEUE_ID_SIZE);
    return 0;
}

/* all_ids - op on every message in its queues (or in only); the IDs
   are taken first, then each is looked for where it is by then */
static void all_ids(enum op op, const char *only)
{
    struct id_list l = { 0 };

    for (size_t i = 0; op_queues[op][i] != NULL; i++)
        if (only == NULL || strcmp(only, op_queues[op][i]) == 0)
            (void)queue_list_walk(op_queues[op][i], collect_id, &l);
    for (size_t i = 0; i < l.n; i++)
        one_id(op, l.v[i], only, true);
    free(l.v);
}

static void stdin_ids(enum op op, const char *only)
{
    char word[256];

    while (scanf("%255s", word) == 1)
        one_id(op, word, only, false);
}

static void become_owner(void)
{
    uid_t uid;
    gid_t gid;

    if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0)
        cmd_fatal(1, "mail_owner %s: no such user", var_mail_owner);
    if (privs_become(uid, gid) < 0)
        cmd_fatal(1, "become %s: %s", var_mail_owner, strerror(errno));
}

int main(int argc, char **argv)
{
    struct request reqs[64];
    size_t nreqs = 0;
    const char *cdir = NULL, *only = NULL;
    buf_t err = BUF_INIT;
    int ch;

    cmd_msg_init(PROG, NULL);

    while ((ch = getopt(argc, argv, "c:d:h:H:r:v")) != -1) {
        enum op op;
        switch (ch) {
        case 'c': cdir = optarg; continue;
        case 'v': continue;
        case 'd': op = OP_DELETE; break;
        case 'h': op = OP_HOLD; break;
        case 'H': op = OP_RELEASE; break;
        case 'r': op = OP_REQUEUE; break;
        default: usage();
        }
        if (nreqs == sizeof(reqs) / sizeof(reqs[0]))
            cmd_fatal(1, "too many options");
        reqs[nreqs].op = op;
        reqs[nreqs++].arg = optarg;
    }
    if (argc - optind > 1 || nreqs == 0)
        usage();
    if (optind < argc) {
        only = argv[optind];
        bool known = false;
        for (size_t i = 0; queue_list_queues[i] != NULL; i++)
            known |= strcmp(only, queue_list_queues[i]) == 0;
        if (!known)
            cmd_fatal(1, "%s: not a queue (incoming, active, deferred, hold)", only);
    }
    if (getuid() != geteuid() || getgid() != getegid())
        cmd_fatal(1, "must not run set-uid or set-gid");
    log_init("tern", PROG);
    if (config_load(config_directory_default(cdir), &err) < 0) {
        const char *m = buf_str(&err), *last = strrchr(m, '\n');
        cmd_fatal(1, "%s", last ? last + 1 : m);
    }
    buf_free(&err);
    log_init(var_syslog_name, PROG);
    if (getuid() != 0) {
        /* $mail_owner owns every queue file anyway (a developer
           instance's user); anyone else is refused */
        uid_t uid;
        gid_t gid;
        if (privs_lookup_user(var_mail_owner, &uid, &gid) < 0
            || uid != getuid())
            cmd_fatal(1, "must be run by root (or by mail_owner %s)",
                  var_mail_owner);
    }
    if (var_maillog_file[0] != '\0' && log_set_file(var_maillog_file) < 0)
        cmd_warn("maillog_file %s: cannot open it; logging to syslog",
             var_maillog_file);
    if (chdir(var_queue_directory) < 0)
        cmd_fatal(1, "chdir %s: %s", var_queue_directory, strerror(errno));
    master_running = master_is_running();
    if (getuid() == 0)
        become_owner();
    for (size_t i = 0; i < nreqs; i++) {
        if (strcmp(reqs[i].arg, "ALL") == 0)
            all_ids(reqs[i].op, only);
        else if (strcmp(reqs[i].arg, "-") == 0)
            stdin_ids(reqs[i].op, only);
        else
            one_id(reqs[i].op, reqs[i].arg, only, false);
    }
    /* wake qmgr for what it should see now (it finds it at its next
       queue run anyway) */
    if (master_running && want_trigger_incoming
        && trigger_send("public/qmgr", TRIGGER_NEW_MAIL) < 0)
        cmd_warn("trigger public/qmgr: %s", strerror(errno));
    if (master_running && want_trigger_deferred
        && trigger_send("public/qmgr", TRIGGER_DEFERRED) < 0)
        cmd_warn("trigger public/qmgr: %s", strerror(errno));
    for (size_t op = 0; op < OP_COUNT; op++) {
        bool asked = false;
        for (size_t i = 0; i < nreqs; i++)
            asked |= reqs[i].op == op;
        if (asked)
            fprintf(stderr, PROG ": %s: %zu message%s\n", op_done[op],
                    done_count[op], done_count[op] == 1 ? "" : "s");
    }
    if (skipped_active > 0)
        fprintf(stderr, PROG ": Left alone in %s/: %zu message%s\n",
                QUEUE_ACTIVE, skipped_active, skipped_active == 1 ? "" : "s");
    config_free();
    return 0;
}

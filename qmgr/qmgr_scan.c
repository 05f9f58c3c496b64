/*
 * qmgr_scan - the queue directories as qmgr sees them: which files are
 * eligible (named by a valid queue ID; deferred ones only when due), and
 * the moves into active/. rename() is the only way a file changes
 * queues, so at any instant it is in exactly one of incoming/, active/,
 * deferred/ (or corrupt/); a crash leaves files in active/ that the
 * next start activates again. hold/ is never scanned for mail: held
 * messages wait for an administrator; only writers' temporary files
 * there are swept (cleanup writes a HOLD message's temporary file
 * inside hold/, so a writer killed mid-message leaves it there).
 * Writers' stale temporary files are looked for at queue runs only,
 * not at every scan of incoming/ (each scan would stat every file
 * being written). incoming/ stays open: a scan rewinds it.
 *
 * Durability: a move into active/ is not fsync'd. Before it the file's
 * name in incoming/ (or deferred/) is durable, and qmgr scans both of
 * those and active/ at start-up, so a rename that a power loss undoes
 * only changes where the file is found again; what an agent did in the
 * meantime is in the inode (the recipient marks, fdatasync'd), which
 * both names share, so nothing is lost or delivered twice. A move out of
 * active/ (deferred/X/, corrupt/) fsyncs the destination before qmgr
 * forgets the message. Source directories are not fsync'd: on a
 * journalled file system a rename is one transaction, and elsewhere the
 * worst case after a power loss is the same inode under both names.
 * That cannot deliver twice, because recipient marks live in the inode
 * (both names see them), and it converges: once active/ID is removed the
 * stale name is moved in, found finished, and removed too.
 * Remaining window (not a loss): when qmgr gives up on an agent (reply
 * timeout, $daemon_timeout) the agent may still be working; the retry
 * after the back-off does not wait for its flock, so two agents can
 * work on one recipient, and only the Maildir name de-duplication
 * (local_maildir.c) keeps the user from seeing it twice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/buf.h"
#include "mail/config.h"
#include "util/log.h"
#include "mail/queue.h"
#include "util/util.h"
#include "qmgr.h"

#define SCAN_MAX_NAMES   100000        /* per scan; the rest waits */
#define TEMP_MAX_AGE     (24 * 3600)   /* stale "t.*" files: incoming/, hold/ */

struct scan_entry {
    char qid[QUEUE_ID_SIZE];
    char sub[8];            /* hash subdirectory of deferred/, or "" */
};

struct scan_list {
    struct scan_entry *items;
    size_t count, cap;
    bool full;
};

/* files in active/ at start-up that still await recovery */
static struct scan_list recover_list;
static DIR *incoming_dir;   /* open from the first scan on */

static void list_add(struct scan_list *l, const char *qid, const char *sub)
{
    if (l->count >= SCAN_MAX_NAMES) {
        l->full = true;
        return;
    }
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    str_copy(l->items[l->count].qid, qid, QUEUE_ID_SIZE);
    str_copy(l->items[l->count].sub, sub, sizeof(l->items[0].sub));
    l->count++;
}

static void list_free(struct scan_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct scan_entry *)a)->qid,
                  ((const struct scan_entry *)b)->qid);
}

/* list_sort - queue IDs sort by arrival time: FIFO */
static void list_sort(struct scan_list *l)
{
    if (l->count > 1)
        qsort(l->items, l->count, sizeof(*l->items), entry_cmp);
}

/* temp_cleanup - remove a "t.*" file that nobody has finished in a day */
static void temp_cleanup(int dfd, const char *dir, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return;
    if (st.st_mtime + TEMP_MAX_AGE > (time_t)(time_now_usec() / 1000000))
        return;
    if (unlinkat(dfd, name, 0) == 0)
        log_warning("removed stale temporary file %s/%s", dir, name);
    else if (errno != ENOENT)
        log_warning("remove stale temporary file %s/%s: %s", dir, name,
                    strerror(errno));
}

/* scan_dir - valid queue IDs in the flat directory d (rewound first) */
static void scan_dir(DIR *d, struct scan_list *l)
{
    struct dirent *de;

    rewinddir(d);
    while ((de = readdir(d)) != NULL)
        if (queue_id_valid(de->d_name))
            list_add(l, de->d_name, "");
}

/* scan_flat - valid queue IDs in a flat directory */
static void scan_flat(const char *dir, struct scan_list *l)
{
    DIR *d = opendir(dir);

    if (d == NULL) {
        log_warning("open directory %s: %s", dir, strerror(errno));
        return;
    }
    scan_dir(d, l);
    closedir(d);
}

/* temp_sweep - stale temporary files in dir, nothing else */
static void temp_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL) {
        log_warning("open directory %s: %s", dir, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "t.", 2) == 0)
            temp_cleanup(dirfd(d), dir, de->d_name);
    closedir(d);
}

/* qmgr_scan_temp - writers' stale temporary files in incoming/ and hold/;
   the kept handle of incoming/ is opened afresh at the next scan (in
   case the directory was replaced) */
void qmgr_scan_temp(void)
{
    if (incoming_dir != NULL) {
        closedir(incoming_dir);
        incoming_dir = NULL;
    }
    temp_sweep(QUEUE_INCOMING);
    temp_sweep(QUEUE_HOLD);
}

/* move_one - from into active/<qid>; false if it is gone or already there */
static bool move_one(const char *from, const char *qid)
{
    if (qmgr_message_is_active(qid))
        return false;       /* a second name of a message being delivered */
    if (queue_move_path(from, QUEUE_ACTIVE, qid, 0) < 0) {
        if (errno == EEXIST)
            log_warning("%s: %s: a file of that name is already in %s/; "
                        "left where it is", qid, from, QUEUE_ACTIVE);
        else if (errno != ENOENT)
            log_warning("%s: move %s to %s/: %s", qid, from, QUEUE_ACTIVE,
                        strerror(errno));
        return false;
    }
    return true;
}

/* move_batch - move up to limit entries, then activate them */
static void move_batch(const char *queue, struct scan_list *l, size_t limit,
                       struct qmgr_scan_result *res)
{
    buf_t from = BUF_INIT;
    size_t i, n = 0;
    bool *moved = xcalloc(l->count ? l->count : 1, sizeof(bool));

    list_sort(l);
    for (i = 0; i < l->count && n < limit; i++) {
        buf_reset(&from);
        if (l->items[i].sub[0] != '\0')
            buf_printf(&from, "%s/%s/%s", queue, l->items[i].sub,
                       l->items[i].qid);
        else
            buf_printf(&from, "%s/%s", queue, l->items[i].qid);
        if (move_one(buf_str(&from), l->items[i].qid)) {
            moved[i] = true;
            n++;
        }
    }
    res->truncated = i < l->count || l->full;
    res->moved = n;
    for (size_t j = 0; j < i; j++)
        if (moved[j])
            qmgr_message_activate(l->items[j].qid,
                                  strcmp(queue, QUEUE_INCOMING) == 0);
    free(moved);
    buf_free(&from);
}

/* qmgr_scan_incoming - newly committed mail, oldest first */
void qmgr_scan_incoming(size_t limit, struct qmgr_scan_result *res)
{
    struct scan_list l = { 0 };

    memset(res, 0, sizeof(*res));
    if (incoming_dir == NULL
        && (incoming_dir = opendir(QUEUE_INCOMING)) == NULL) {
        log_warning("open directory %s: %s", QUEUE_INCOMING, strerror(errno));
        return;
    }
    scan_dir(incoming_dir, &l);
    move_batch(QUEUE_INCOMING, &l, limit, res);
    list_free(&l);
}

/* deferred_due - see qmgr_deferred_due (mtime = next attempt) */
static bool deferred_due(const struct stat *st, uint64_t now_usec,
                         uint64_t flush_usec)
{
    uint64_t mtime = (uint64_t)st->st_mtim.tv_sec * 1000000 +
                     (uint64_t)st->st_mtim.tv_nsec / 1000;
    uint64_t ctime = (uint64_t)st->st_ctim.tv_sec * 1000000 +
                     (uint64_t)st->st_ctim.tv_nsec / 1000;

    return qmgr_deferred_due(mtime, ctime, now_usec, flush_usec,
                             var_maximal_backoff_time);
}

/* scan_deferred_dir - due files in deferred/<sub> (sub "" = top level) */
static void scan_deferred_dir(const char *sub, uint64_t flush_usec,
                              struct scan_list *l, struct scan_list *subs)
{
    buf_t dir = BUF_INIT;
    uint64_t now = time_now_usec();
    struct dirent *de;
    struct stat st;
    DIR *d;

    buf_printf(&dir, "%s%s%s", QUEUE_DEFERRED, *sub ? "/" : "", sub);
    d = opendir(buf_str(&dir));
    if (d == NULL) {
        log_warning("open directory %s: %s", buf_str(&dir), strerror(errno));
        buf_free(&dir);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (subs != NULL && strlen(de->d_name) < sizeof(subs->items[0].sub))
                list_add(subs, "", de->d_name);
        } else if (S_ISREG(st.st_mode) && queue_id_valid(de->d_name) &&
                   deferred_due(&st, now, flush_usec)) {
            list_add(l, de->d_name, sub);
        }
    }
    closedir(d);
    buf_free(&dir);
}

/* qmgr_scan_deferred - due (or flushed) deferred mail, oldest first */
void qmgr_scan_deferred(size_t limit, uint64_t flush_usec,
                        struct qmgr_scan_result *res)
{
    struct scan_list l = { 0 }, subs = { 0 };

    memset(res, 0, sizeof(*res));
    scan_deferred_dir("", flush_usec, &l, &subs);
    for (size_t i = 0; i < subs.count; i++)
        scan_deferred_dir(subs.items[i].sub, flush_usec, &l, NULL);
    move_batch(QUEUE_DEFERRED, &l, limit, res);
    list_free(&subs);
    list_free(&l);
}

/* qmgr_scan_active_snapshot - remember what a previous qmgr left behind */
size_t qmgr_scan_active_snapshot(void)
{
    list_free(&recover_list);
    scan_flat(QUEUE_ACTIVE, &recover_list);
    list_sort(&recover_list);
    return recover_list.count;
}

/* recover_busy - an agent of the previous qmgr still works on the file
   (agents may hold a shared flock while they deliver) */
static bool recover_busy(const char *qid)
{
    buf_t path = BUF_INIT;
    bool busy = false;
    int fd;

    queue_path(QUEUE_ACTIVE, qid, &path);
    fd = open(buf_str(&path), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
            busy = errno == EWOULDBLOCK;
        close(fd);      /* releases the lock */
    }
    buf_free(&path);
    return busy;
}

/* qmgr_scan_active_recover - activate the snapshot; returns how many
   files are still locked by a running agent (try again later) */
size_t qmgr_scan_active_recover(void)
{
    size_t keep = 0;

    for (size_t i = 0; i < recover_list.count; i++) {
        const char *qid = recover_list.items[i].qid;

        if (recover_busy(qid)) {
            recover_list.items[keep++] = recover_list.items[i];
            continue;
        }
        log_info("%s: recovering message left in %s/", qid, QUEUE_ACTIVE);
        qmgr_message_activate(qid, false);
    }
    recover_list.count = keep;
    if (keep == 0)
        list_free(&recover_list);
    return keep;
}

/* qmgr_scan_active_sweep - files in active/ that this qmgr does not hold:
   a move or removal out of active/ that failed (ENOSPC, EIO, EACCES)
   left them behind. Taken on again like recovered files (skipped while
   an agent holds one, or while start-up recovery is still pending). */
size_t qmgr_scan_active_sweep(size_t limit)
{
    struct scan_list l = { 0 };
    size_t n = 0;

    if (recover_list.count > 0)
        return 0;
    scan_flat(QUEUE_ACTIVE, &l);
    list_sort(&l);
    for (size_t i = 0; i < l.count && n < limit; i++) {
        const char *qid = l.items[i].qid;

        if (qmgr_message_is_active(qid) || recover_busy(qid))
            continue;
        log_info("%s: taking on again a message left in %s/", qid,
                 QUEUE_ACTIVE);
        qmgr_message_activate(qid, false);
        n++;
    }
    list_free(&l);
    return n;
}

void qmgr_scan_free(void)
{
    list_free(&recover_list);
    if (incoming_dir != NULL) {
        closedir(incoming_dir);
        incoming_dir = NULL;
    }
}

/* move_from_active - active/<qid> into queue, durably */
static void move_from_active(const char *qid, const char *queue)
{
    int r = queue_move(QUEUE_ACTIVE, queue, qid, QUEUE_MOVE_SYNC);

    if (r < 0)
        log_error("%s: move %s/ to %s/: %s", qid, QUEUE_ACTIVE, queue,
                  strerror(errno));
    else if (r > 0)
        log_warning("%s: fsync directory %s/: %s", qid, queue, strerror(errno));
}

/* qmgr_scan_quarantine - corrupt files are kept for a human to look at */
void qmgr_scan_quarantine(const char *qid, const char *why)
{
    log_warning("%s: corrupt queue file: %s", qid, why);
    move_from_active(qid, QUEUE_CORRUPT);
}

/* qmgr_scan_requeue - back to deferred/, mtime untouched (so due) */
void qmgr_scan_requeue(const char *qid)
{
    log_info("%s: back to %s/ after a transient error", qid, QUEUE_DEFERRED);
    move_from_active(qid, QUEUE_DEFERRED);
}

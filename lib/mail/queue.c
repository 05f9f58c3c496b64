/*
 * queue - queue IDs, spool directory names and paths, and the moves of
 * queue files between queues (queue.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "util/sys.h"
#include "util/util.h"

static const char qid_alphabet[] =
    "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
#define QID_BASE 52
#define QID_SEC_DIGITS 6
#define QID_USEC_DIGITS 4
#define QID_HASH_INDEX (QID_SEC_DIGITS + QID_USEC_DIGITS - 1)

const char *const queue_dir_names[] = {
    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
    QUEUE_DEFER, QUEUE_FREE, QUEUE_MAILDROP, "public", "private", "pid", NULL
};

/* ---- queue IDs ------------------------------------------------------ */

/* qid_digits - value as exactly width base-52 digits (wraps modulo) */
static void qid_digits(uint64_t value, int width, char *out)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = qid_alphabet[value % QID_BASE];
        value /= QID_BASE;
    }
}

/* queue_id_make - ID from arrival time (usec) and queue file inode */
void queue_id_make(uint64_t usec, uint64_t inode, char out[QUEUE_ID_SIZE])
{
    char ino[16];
    size_t n = 0;

    qid_digits(usec / 1000000, QID_SEC_DIGITS, out);
    qid_digits(usec % 1000000, QID_USEC_DIGITS, out + QID_SEC_DIGITS);
    do {
        ino[n++] = qid_alphabet[inode % QID_BASE];
        inode /= QID_BASE;
    } while (inode > 0);
    for (size_t i = 0; i < n; i++)
        out[QID_SEC_DIGITS + QID_USEC_DIGITS + i] = ino[n - 1 - i];
    out[QID_SEC_DIGITS + QID_USEC_DIGITS + n] = '\0';
}

/* queue_id_valid - the shape queue_id_make produces: 11..31 alphabet chars */
bool queue_id_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n]; n++)
        if (n >= QUEUE_ID_SIZE - 1 || strchr(qid_alphabet, s[n]) == NULL)
            return false;
    return n >= QID_SEC_DIGITS + QID_USEC_DIGITS + 1;
}

/* queue_hashed - is this queue hashed into subdirectories? */
bool queue_is_hashed(const char *queue)
{
    return strcmp(queue, QUEUE_DEFERRED) == 0 || strcmp(queue, QUEUE_DEFER) == 0;
}

/* queue_path - "queue/ID" or "queue/X/ID" for hashed queues */
void queue_path(const char *queue, const char *qid, buf_t *out)
{
    int r;

    buf_reset(out);
    if (queue_is_hashed(queue) && strlen(qid) > QID_HASH_INDEX)
        r = buf_printf(out, "%s/%c/%s", queue, qid[QID_HASH_INDEX], qid);
    else
        r = buf_printf(out, "%s/%s", queue, qid);
    if (r < 0)
        buf_reset(out);         /* an empty path fails loudly at open() */
}

/* ---- spool directories ------------------------------------------------ */

/* qdir_make - mkdir (existing is fine), then fix owner and mode */
static int qdir_make(const char *path, mode_t mode, uid_t owner, gid_t group)
{
    int fd, ret = 0;

    if (mkdir(path, mode) == 0) {
        if (fsync_parent_dir(path) < 0)     /* the new name is durable */
            return -1;
    } else if (errno != EEXIST) {
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if ((owner != (uid_t)-1 || group != (gid_t)-1)
        && fchown(fd, owner, group) < 0)
        ret = -1;
    if (ret == 0 && fchmod(fd, mode) < 0)
        ret = -1;
    if (ret < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    return 0;
}

/* queue_dir_mode - permissions of one spool subdirectory: maildrop/ is
   writable (not readable) through the set-gid group, sticky so nobody
   removes another's file; public/ only reachable through that group */
mode_t queue_dir_mode(const char *name)
{
    if (strcmp(name, QUEUE_MAILDROP) == 0)
        return 01730;
    if (strcmp(name, "public") == 0)
        return 02710;
    if (strcmp(name, "pid") == 0)
        return 0755;
    return 0700;
}

/* queue_dirs_create - every spool subdirectory plus hash subdirectories */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group,
                      gid_t setgid_group)
{
    buf_t path = BUF_INIT;
    int ret = -1;

    if (mkdir_p(queue_dir, 0755) < 0)
        return -1;
    for (const char *const *np = queue_dir_names; *np; np++) {
        mode_t mode = queue_dir_mode(*np);
        bool ours = strcmp(*np, "pid") == 0;
        bool setgid = strcmp(*np, QUEUE_MAILDROP) == 0
                      || strcmp(*np, "public") == 0;
        gid_t g = setgid && setgid_group != (gid_t)-1 ? setgid_group : group;

        /* pid/ is the caller's (root's, for a root master): master opens
           and truncates its pid file there, so $mail_owner must not be
           able to plant anything in it */
        buf_reset(&path);
        if (buf_printf(&path, "%s/%s", queue_dir, *np) < 0
            || qdir_make(buf_str(&path), mode, ours ? geteuid() : owner,
                         ours ? getegid() : g) < 0)
            goto done;
        if (!queue_is_hashed(*np))
            continue;
        for (const char *c = qid_alphabet; *c; c++) {
            buf_reset(&path);
            if (buf_printf(&path, "%s/%s/%c", queue_dir, *np, *c) < 0
                || qdir_make(buf_str(&path), mode, owner, group) < 0)
                goto done;
        }
    }
    ret = 0;
done:
    if (ret < 0) {
        int saved = errno;
        buf_free(&path);
        errno = saved;
        return -1;
    }
    buf_free(&path);
    return 0;
}

/* queue_login_dir_create - see queue.h */
int queue_login_dir_create(const char *queue_dir, gid_t group)
{
    buf_t path = BUF_INIT;
    int ret = -1;

    if (buf_printf(&path, "%s/%s", queue_dir, QUEUE_LOGIN_DIR) >= 0)
        ret = qdir_make(buf_str(&path), 0750, geteuid(),
                        group != (gid_t)-1 ? group : getegid());
    int saved = errno;
    buf_free(&path);
    errno = saved;
    return ret;
}

/* ---- moves between queues --------------------------------------------- */

/* queue_dir_of - the directory part of a queue path ("deferred/X") */
static int queue_dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;

    if (len == 0 || len >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, len);
    dir[len] = '\0';
    return 0;
}

/* queue_subdir_make - a hash subdirectory that went missing, durably */
static int queue_subdir_make(const char *path)
{
    char dir[64];

    if (queue_dir_of(path, dir, sizeof(dir)) < 0)
        return -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    return fsync_parent_dir(dir);
}

int queue_rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    return rename(from, to);    /* filesystem without RENAME_NOREPLACE */
}

/* queue_base_is - is the last component of path exactly qid? */
static bool queue_base_is(const char *path, const char *qid)
{
    const char *slash = strrchr(path, '/');

    return strcmp(slash ? slash + 1 : path, qid) == 0;
}

int queue_move_path(const char *from, const char *to_queue, const char *qid,
                    int flags)
{
    buf_t to = BUF_INIT;
    int ret = -1, saved;

    if (!queue_id_valid(qid) || !queue_base_is(from, qid)) {
        errno = EINVAL;
        return -1;
    }
    queue_path(to_queue, qid, &to);
    if (to.len == 0) {
        errno = ENOMEM;
        goto done;
    }
    ret = queue_rename_noreplace(from, buf_str(&to));
    if (ret < 0 && errno == ENOENT && queue_is_hashed(to_queue)
        && access(from, F_OK) == 0) {
        if (queue_subdir_make(buf_str(&to)) < 0)
            goto done;
        ret = queue_rename_noreplace(from, buf_str(&to));
    }
    if (ret == 0 && (flags & QUEUE_MOVE_SYNC) && fsync_parent_dir(buf_str(&to)) < 0)
        ret = 1;    /* moved, but not known to be durable */
done:
    saved = errno;
    buf_free(&to);
    errno = saved;
    return ret;
}

int queue_move(const char *from_queue, const char *to_queue, const char *qid,
               int flags)
{
    buf_t from = BUF_INIT;
    int ret, saved;

    if (!queue_id_valid(qid)) {
        errno = EINVAL;
        return -1;
    }
    queue_path(from_queue, qid, &from);
    if (from.len == 0) {
        errno = ENOMEM;
        return -1;
    }
    ret = queue_move_path(buf_str(&from), to_queue, qid, flags);
    saved = errno;
    buf_free(&from);
    errno = saved;
    return ret;
}

int queue_remove(const char *queue, const char *qid)
{
    buf_t path = BUF_INIT;
    int ret, saved;

    if (!queue_id_valid(qid)) {
        errno = EINVAL;
        return -1;
    }
    queue_path(queue, qid, &path);
    ret = path.len > 0 ? unlink(buf_str(&path)) : -1;
    if (ret < 0 && path.len == 0)
        errno = ENOMEM;
    saved = errno;
    buf_free(&path);
    errno = saved;
    return ret;
}

/* ---- recycling finished files ---------------------------------------- */

#define FREE_RECOUNT_MSEC 10000

/* free_room - is free/ below QUEUE_FREE_MAX? Counted at most every 10 s,
   in between estimated from this process's own additions (writers take
   files out; a stale count only errs towards unlinking). */
static bool free_room(void)
{
    static size_t estimate;
    static uint64_t counted_at;
    static bool counted;
    uint64_t now = time_mono_msec();

    if (!counted || now - counted_at >= FREE_RECOUNT_MSEC
        || estimate >= QUEUE_FREE_MAX) {
        DIR *d = opendir(QUEUE_FREE);
        struct dirent *e;

        if (d == NULL)
            return false;
        estimate = 0;
        while ((e = readdir(d)) != NULL && estimate < QUEUE_FREE_MAX + 1)
            if (e->d_name[0] != '.')
                estimate++;
        closedir(d);
        counted = true;
        counted_at = now;
    }
    if (estimate >= QUEUE_FREE_MAX)
        return false;
    estimate++;
    return true;
}

/* recycle_ok - fd is queue/qid's only name and nobody holds it */
static bool recycle_ok(int fd, const char *path)
{
    struct stat fst, pst;

    if (fstat(fd, &fst) < 0 || lstat(path, &pst) < 0 || !S_ISREG(fst.st_mode)
        || fst.st_nlink != 1 || fst.st_dev != pst.st_dev
        || fst.st_ino != pst.st_ino)
        return false;
    /* delivery agents hold a shared lock while they use the file */
    return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

int queue_recycle(const char *queue, const char *qid, int fd)
{
    buf_t path = BUF_INIT, to = BUF_INIT;
    int ret = -1, saved;

    if (!queue_id_valid(qid)) {
        errno = EINVAL;
        return -1;
    }
    queue_path(queue, qid, &path);
    if (buf_printf(&to, "%s/%s", QUEUE_FREE, qid) < 0 || path.len == 0) {
        errno = ENOMEM;
        goto done;
    }
    /* renamed, then emptied: the truncation is the last thing qmgr does
       to the file, and a writer uses only a file it finds empty (one it
       takes before the truncation it throws away), so no writer's new
       message can be emptied; a failed rename leaves the message whole */
    if (fd >= 0 && recycle_ok(fd, buf_str(&path)) && free_room()
        && queue_rename_noreplace(buf_str(&path), buf_str(&to)) == 0) {
        if (ftruncate(fd, 0) < 0) {
            /* a writer throws away a file it finds not empty */
        }
        ret = 0;
    } else {
        ret = unlink(buf_str(&path));
    }
done:
    saved = errno;
    if (fd >= 0)
        (void)flock(fd, LOCK_UN);
    buf_free(&path);
    buf_free(&to);
    errno = saved;
    return ret;
}

/*
 * mailbox_index - the per-Maildir LMDB index (see mailbox_index.h).
 *
 * One write transaction per update: LMDB's writer lock serializes UID
 * assignment between processes listing the same Maildir. An update that
 * changed nothing is aborted instead of committed, so a listing of an
 * unchanged Maildir writes (and fsyncs) nothing.
 */
#include "mailbox_index.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define INDEX_VERSION   1u
#define INDEX_MAP_MIN   ((size_t)1 << 20)
#define INDEX_MAP_MAX   ((size_t)1 << 32)
#define REC_SIZE        12          /* u32 uid, i64 vsize */
#define UPDATE_TRIES    40          /* map doublings + one rebuild */

struct mailbox_index {
    int dir_fd;                     /* the caller's, not owned */
    int fd;                         /* the data file, O_NOFOLLOW; flock */
    MDB_env *env;
    MDB_txn *txn;                   /* during an update */
    MDB_dbi meta, keys;
    uint32_t uidvalidity, uidnext;
    uint32_t old_uidvalidity;       /* of a file being rebuilt, 0 unknown */
    bool is_new;
    bool dirty;                     /* the current txn wrote something */
    bool meta_dirty;
    char path[64];
    char err[512];
};

static int idx_error(struct mailbox_index *idx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* idx_error - set the error text; MAILBOX_INDEX_ERROR */
static int idx_error(struct mailbox_index *idx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(idx->err, sizeof(idx->err), fmt, ap);
    va_end(ap);
    return MAILBOX_INDEX_ERROR;
}

/* idx_mdb_result - an LMDB return code as our result */
static int idx_mdb_result(struct mailbox_index *idx, int rc, const char *what)
{
    if (rc == 0)
        return MAILBOX_INDEX_OK;
    if (rc == MDB_MAP_FULL)
        return MAILBOX_INDEX_FULL;
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID
        || rc == MDB_BAD_VALSIZE || rc == MDB_INCOMPATIBLE) {
        idx_error(idx, "%s: %s: %s", MAILBOX_INDEX_FILE, what,
                  mdb_strerror(rc));
        return MAILBOX_INDEX_CORRUPT;
    }
    return idx_error(idx, "%s: %s: %s", MAILBOX_INDEX_FILE, what,
                     mdb_strerror(rc));
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void put_i64(unsigned char *p, int64_t s)
{
    uint64_t v = (uint64_t)s;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int64_t get_i64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

/* idx_env_close - unmap, close the data file */
static void idx_env_close(struct mailbox_index *idx)
{
    if (idx->txn != NULL)
        mdb_txn_abort(idx->txn);
    idx->txn = NULL;
    if (idx->env != NULL)
        mdb_env_close(idx->env);
    idx->env = NULL;
    if (idx->fd >= 0)
        close(idx->fd);
    idx->fd = -1;
}

/*
 * idx_file_open - the data file, created when missing; a symlink or
 * non-regular file is refused. 0, -1 error.
 */
static int idx_file_open(struct mailbox_index *idx, struct stat *st)
{
    int fd = openat(idx->dir_fd, MAILBOX_INDEX_FILE,
                    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                    0600);
    if (fd < 0) {
        if (errno == ELOOP)
            return idx_error(idx, "%s: is a symbolic link: refused",
                             MAILBOX_INDEX_FILE);
        return idx_error(idx, "open %s: %m", MAILBOX_INDEX_FILE);
    }
    if (fd_regular_or_close(fd, st) < 0)
        return idx_error(idx, "%s: not a regular file: refused",
                         MAILBOX_INDEX_FILE);
    idx->fd = fd;
    return 0;
}

/*
 * idx_env_open - open fd's file with LMDB and check LMDB mapped that very
 * inode. 0, MAILBOX_INDEX_CORRUPT (LMDB refused the file), -1.
 */
static int idx_env_open(struct mailbox_index *idx)
{
    struct stat st, mst;
    int rc, mfd;

    if (idx_file_open(idx, &st) < 0)
        return MAILBOX_INDEX_ERROR;
    if ((rc = mdb_env_create(&idx->env)) != 0) {
        idx->env = NULL;
        return idx_mdb_result(idx, rc, "create");
    }
    size_t map = INDEX_MAP_MIN;
    while (map < (size_t)st.st_size && map < INDEX_MAP_MAX)
        map *= 2;
    rc = mdb_env_set_maxdbs(idx->env, 4);
    if (rc == 0)
        rc = mdb_env_set_mapsize(idx->env, map);
    if (rc == 0)
        rc = mdb_env_open(idx->env, idx->path, MDB_NOSUBDIR, 0600);
    if (rc != 0) {
        int ret = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
                  || rc == MDB_CORRUPTED || rc == MDB_PANIC
                  ? MAILBOX_INDEX_CORRUPT : MAILBOX_INDEX_ERROR;
        idx_error(idx, "open %s: %s", MAILBOX_INDEX_FILE, mdb_strerror(rc));
        mdb_env_close(idx->env);
        idx->env = NULL;
        return ret;
    }
    if (mdb_env_get_fd(idx->env, &mfd) != 0 || fstat(mfd, &mst) < 0
        || mst.st_dev != st.st_dev || mst.st_ino != st.st_ino)
        return idx_error(idx, "%s: replaced while being opened",
                         MAILBOX_INDEX_FILE);
    int dead = 0;
    (void)mdb_reader_check(idx->env, &dead);
    return 0;
}

/*
 * idx_rebuild - replace the damaged file by an empty one. Under flock on
 * the old file; when the name no longer names the file we locked,
 * another process rebuilt it already and we just open the new one.
 */
static int idx_rebuild(struct mailbox_index *idx)
{
    struct stat locked, now;
    char lockname[sizeof(MAILBOX_INDEX_FILE) + 5];
    int fd = idx->fd;

    idx->fd = -1;
    idx_env_close(idx);
    if (fd >= 0) {
        if (flock(fd, LOCK_EX) < 0 || fstat(fd, &locked) < 0) {
            close(fd);
            return idx_error(idx, "lock %s: %m", MAILBOX_INDEX_FILE);
        }
        bool same = fstatat(idx->dir_fd, MAILBOX_INDEX_FILE, &now,
                            AT_SYMLINK_NOFOLLOW) == 0
                    && now.st_dev == locked.st_dev
                    && now.st_ino == locked.st_ino;
        if (same) {
            snprintf(lockname, sizeof(lockname), "%s-lock",
                     MAILBOX_INDEX_FILE);
            if ((unlinkat(idx->dir_fd, MAILBOX_INDEX_FILE, 0) < 0
                 && errno != ENOENT)
                || (unlinkat(idx->dir_fd, lockname, 0) < 0
                    && errno != ENOENT)) {
                idx_error(idx, "remove damaged %s: %m", MAILBOX_INDEX_FILE);
                close(fd);
                return MAILBOX_INDEX_ERROR;
            }
            log_warning("%s: damaged (%s): rebuilt with a new UIDVALIDITY",
                        MAILBOX_INDEX_FILE, idx->err);
        }
        close(fd);      /* releases the lock: a waiter sees the name gone
                           (or already new) and opens what is there */
    }
    idx->is_new = true;
    int rc = idx_env_open(idx);
    if (rc == MAILBOX_INDEX_CORRUPT)
        return idx_error(idx, "%s: still damaged after a rebuild",
                         MAILBOX_INDEX_FILE);
    return rc;
}

int mailbox_index_open(int maildir_fd, struct mailbox_index **idx_r,
                       const char **error_r)
{
    struct mailbox_index *idx = xcalloc(1, sizeof(*idx));
    int rc;

    idx->dir_fd = maildir_fd;
    idx->fd = -1;
    snprintf(idx->path, sizeof(idx->path), "/proc/self/fd/%d/%s", maildir_fd,
             MAILBOX_INDEX_FILE);
    rc = idx_env_open(idx);
    if (rc == MAILBOX_INDEX_CORRUPT)
        rc = idx_rebuild(idx);
    if (rc != 0) {
        static char err[sizeof(idx->err)];
        str_copy(err, idx->err, sizeof(err));
        *error_r = err;
        mailbox_index_close(idx);
        return -1;
    }
    *idx_r = idx;
    return 0;
}

void mailbox_index_close(struct mailbox_index *idx)
{
    if (idx == NULL)
        return;
    idx_env_close(idx);
    free(idx);
}

/* idx_meta_get - one u32 of "meta": FOUND, OK (absent), CORRUPT, ERROR */
static int idx_meta_get(struct mailbox_index *idx, const char *name,
                        uint32_t *v)
{
    MDB_val k = { strlen(name), (void *)name }, d;
    int rc = mdb_get(idx->txn, idx->meta, &k, &d);
    if (rc == MDB_NOTFOUND)
        return MAILBOX_INDEX_OK;
    if (rc != 0)
        return idx_mdb_result(idx, rc, "read meta");
    if (d.mv_size != 4) {
        idx_error(idx, "%s: bad %s record", MAILBOX_INDEX_FILE, name);
        return MAILBOX_INDEX_CORRUPT;
    }
    *v = get_u32(d.mv_data);
    return MAILBOX_INDEX_FOUND;
}

static int idx_meta_put(struct mailbox_index *idx, const char *name,
                        uint32_t v)
{
    unsigned char b[4];
    put_u32(b, v);
    MDB_val k = { strlen(name), (void *)name }, d = { 4, b };
    return idx_mdb_result(idx, mdb_put(idx->txn, idx->meta, &k, &d, 0),
                          "write meta");
}

/* idx_new_uidvalidity - time-based, nonzero, above a lost old value */
static uint32_t idx_new_uidvalidity(const struct mailbox_index *idx)
{
    uint32_t v = (uint32_t)time(NULL);
    if (idx->old_uidvalidity != 0 && v <= idx->old_uidvalidity)
        v = idx->old_uidvalidity + 1;
    return v == 0 ? 1 : v;
}

/* idx_begin - the write txn, its databases and the meta records (made
   when the file is new) */
static int idx_begin(struct mailbox_index *idx)
{
    uint32_t version = 0;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &idx->txn);
    if (rc == MDB_MAP_RESIZED) {
        /* another process grew the map: adopt its size */
        if ((rc = mdb_env_set_mapsize(idx->env, 0)) == 0)
            rc = mdb_txn_begin(idx->env, NULL, 0, &idx->txn);
    }
    if (rc != 0) {
        idx->txn = NULL;
        return idx_mdb_result(idx, rc, "begin");
    }
    idx->dirty = idx->meta_dirty = false;
    if ((rc = mdb_dbi_open(idx->txn, "meta", MDB_CREATE, &idx->meta)) != 0
        || (rc = mdb_dbi_open(idx->txn, "keys", MDB_CREATE, &idx->keys)) != 0)
        return idx_mdb_result(idx, rc, "open databases");

    int v = idx_meta_get(idx, "version", &version);
    if (v < 0)
        return v;
    if (v == MAILBOX_INDEX_OK) {
        MDB_stat ks;
        if ((rc = mdb_stat(idx->txn, idx->keys, &ks)) != 0)
            return idx_mdb_result(idx, rc, "stat");
        if (ks.ms_entries != 0) {
            idx_error(idx, "%s: keys without a version record",
                      MAILBOX_INDEX_FILE);
            return MAILBOX_INDEX_CORRUPT;
        }
        idx->uidvalidity = idx_new_uidvalidity(idx);
        idx->uidnext = 1;
        idx->is_new = true;
        idx->dirty = idx->meta_dirty = true;
        if ((rc = idx_meta_put(idx, "version", INDEX_VERSION)) != 0
            || (rc = idx_meta_put(idx, "uidvalidity", idx->uidvalidity)) != 0)
            return rc;
        return MAILBOX_INDEX_OK;
    }
    if (version != INDEX_VERSION)
        return idx_error(idx, "%s: version %u, this Tern knows %u",
                         MAILBOX_INDEX_FILE, version, INDEX_VERSION);
    int a = idx_meta_get(idx, "uidvalidity", &idx->uidvalidity);
    if (a == MAILBOX_INDEX_FOUND && idx->uidvalidity != 0)
        idx->old_uidvalidity = idx->uidvalidity;
    int b = idx_meta_get(idx, "uidnext", &idx->uidnext);
    if (a < 0 || b < 0)
        return a < 0 ? a : b;
    if (a != MAILBOX_INDEX_FOUND || idx->uidvalidity == 0
        || b != MAILBOX_INDEX_FOUND || idx->uidnext == 0) {
        idx_error(idx, "%s: bad meta records", MAILBOX_INDEX_FILE);
        return MAILBOX_INDEX_CORRUPT;
    }
    return MAILBOX_INDEX_OK;
}

/* idx_commit - write uidnext, commit; abort when nothing changed */
static int idx_commit(struct mailbox_index *idx)
{
    int rc;

    if (!idx->dirty) {
        mdb_txn_abort(idx->txn);
        idx->txn = NULL;
        return MAILBOX_INDEX_OK;
    }
    if (idx->meta_dirty && (rc = idx_meta_put(idx, "uidnext", idx->uidnext)) != 0)
        return rc;
    rc = mdb_txn_commit(idx->txn);
    idx->txn = NULL;
    return idx_mdb_result(idx, rc, "commit");
}

/* idx_grow - double the map (no txn active) */
static int idx_grow(struct mailbox_index *idx)
{
    MDB_envinfo info;
    int rc = mdb_env_info(idx->env, &info);
    if (rc != 0)
        return idx_mdb_result(idx, rc, "info");
    if (info.me_mapsize >= INDEX_MAP_MAX)
        return idx_error(idx, "%s: larger than %zu bytes",
                         MAILBOX_INDEX_FILE, INDEX_MAP_MAX);
    return idx_mdb_result(idx, mdb_env_set_mapsize(idx->env,
                                                   info.me_mapsize * 2),
                          "grow the map");
}

int mailbox_index_update(struct mailbox_index *idx, mailbox_index_fn *fn,
                         void *ctx, const char **error_r)
{
    bool rebuilt = false;
    int rc = MAILBOX_INDEX_ERROR;

    for (int tries = 0; tries < UPDATE_TRIES; tries++) {
        uint32_t saved_validity = idx->uidvalidity;
        uint32_t saved_next = idx->uidnext;
        bool saved_new = idx->is_new;
        rc = idx_begin(idx);
        if (rc == MAILBOX_INDEX_OK)
            rc = fn(idx, ctx);
        if (rc == MAILBOX_INDEX_OK)
            rc = idx_commit(idx);
        if (idx->txn != NULL) {
            mdb_txn_abort(idx->txn);
            idx->txn = NULL;
        }
        if (rc == MAILBOX_INDEX_OK)
            return 0;
        /* what the aborted txn set in memory is void */
        idx->uidvalidity = saved_validity;
        idx->uidnext = saved_next;
        idx->is_new = saved_new;
        if (rc == MAILBOX_INDEX_FULL) {
            if ((rc = idx_grow(idx)) != 0)
                break;
        } else if (rc == MAILBOX_INDEX_CORRUPT && !rebuilt) {
            rebuilt = true;
            if ((rc = idx_rebuild(idx)) != 0)
                break;
        } else {
            if (rc == MAILBOX_INDEX_CORRUPT)
                idx_error(idx, "%s: still damaged after a rebuild",
                          MAILBOX_INDEX_FILE);
            break;
        }
    }
    if (rc == MAILBOX_INDEX_OK || rc == MAILBOX_INDEX_FULL)
        idx_error(idx, "%s: too many retries", MAILBOX_INDEX_FILE);
    *error_r = idx->err;
    return -1;
}

uint32_t mailbox_index_uidvalidity(const struct mailbox_index *idx)
{
    return idx->uidvalidity;
}

uint32_t mailbox_index_uidnext(const struct mailbox_index *idx)
{
    return idx->uidnext;
}

bool mailbox_index_is_new(const struct mailbox_index *idx)
{
    return idx->is_new;
}

static int idx_key_ok(struct mailbox_index *idx, size_t key_len)
{
    if (key_len == 0 || key_len > MAILBOX_INDEX_KEY_MAX)
        return idx_error(idx, "index key of %zu bytes", key_len);
    return 0;
}

int mailbox_index_get(struct mailbox_index *idx, const char *key,
                      size_t key_len, struct mailbox_index_rec *rec)
{
    if (idx_key_ok(idx, key_len) < 0)
        return MAILBOX_INDEX_ERROR;
    MDB_val k = { key_len, (void *)key }, d;
    int rc = mdb_get(idx->txn, idx->keys, &k, &d);
    if (rc == MDB_NOTFOUND)
        return MAILBOX_INDEX_OK;
    if (rc != 0)
        return idx_mdb_result(idx, rc, "read");
    if (d.mv_size < REC_SIZE) {
        idx_error(idx, "%s: short record", MAILBOX_INDEX_FILE);
        return MAILBOX_INDEX_CORRUPT;
    }
    rec->uid = get_u32(d.mv_data);
    rec->vsize = get_i64((const unsigned char *)d.mv_data + 4);
    if (rec->uid == 0 || rec->uid >= idx->uidnext || rec->vsize < -1) {
        idx_error(idx, "%s: bad record (uid %u, uidnext %u)",
                  MAILBOX_INDEX_FILE, rec->uid, idx->uidnext);
        return MAILBOX_INDEX_CORRUPT;
    }
    return MAILBOX_INDEX_FOUND;
}

int mailbox_index_add(struct mailbox_index *idx, const char *key,
                      size_t key_len, int64_t vsize, uint32_t *uid_r)
{
    unsigned char b[REC_SIZE];

    if (idx_key_ok(idx, key_len) < 0)
        return MAILBOX_INDEX_ERROR;
    if (idx->uidnext == UINT32_MAX) {
        idx_error(idx, "%s: UIDs exhausted", MAILBOX_INDEX_FILE);
        return MAILBOX_INDEX_CORRUPT;
    }
    put_u32(b, idx->uidnext);
    put_i64(b + 4, vsize < 0 ? -1 : vsize);
    MDB_val k = { key_len, (void *)key }, d = { REC_SIZE, b };
    int rc = mdb_put(idx->txn, idx->keys, &k, &d, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        idx_error(idx, "%s: key added twice", MAILBOX_INDEX_FILE);
        return MAILBOX_INDEX_CORRUPT;
    }
    if ((rc = idx_mdb_result(idx, rc, "write")) != 0)
        return rc;
    *uid_r = idx->uidnext++;
    idx->dirty = idx->meta_dirty = true;
    return MAILBOX_INDEX_OK;
}

int mailbox_index_set_vsize(struct mailbox_index *idx, const char *key,
                            size_t key_len, int64_t vsize)
{
    if (idx_key_ok(idx, key_len) < 0)
        return MAILBOX_INDEX_ERROR;
    MDB_val k = { key_len, (void *)key }, d;
    int rc = mdb_get(idx->txn, idx->keys, &k, &d);
    if (rc == MDB_NOTFOUND)
        return idx_error(idx, "%s: no such key", MAILBOX_INDEX_FILE);
    if (rc != 0)
        return idx_mdb_result(idx, rc, "read");
    if (d.mv_size < REC_SIZE) {
        idx_error(idx, "%s: short record", MAILBOX_INDEX_FILE);
        return MAILBOX_INDEX_CORRUPT;
    }
    /* keep the fields a later version appended */
    unsigned char *b = xmalloc(d.mv_size);
    memcpy(b, d.mv_data, d.mv_size);
    put_i64(b + 4, vsize < 0 ? -1 : vsize);
    MDB_val nd = { d.mv_size, b };
    rc = mdb_put(idx->txn, idx->keys, &k, &nd, 0);
    free(b);
    if ((rc = idx_mdb_result(idx, rc, "write")) != 0)
        return rc;
    idx->dirty = true;
    return MAILBOX_INDEX_OK;
}

int mailbox_index_expunge(struct mailbox_index *idx,
                          mailbox_index_keep_fn *keep, void *ctx,
                          size_t *removed_r)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int rc, ret = MAILBOX_INDEX_OK;

    *removed_r = 0;
    if ((rc = mdb_cursor_open(idx->txn, idx->keys, &cur)) != 0)
        return idx_mdb_result(idx, rc, "cursor");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (keep(k.mv_data, k.mv_size, ctx))
            continue;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        ++*removed_r;
        idx->dirty = true;
    }
    if (rc != MDB_NOTFOUND)
        ret = idx_mdb_result(idx, rc, "expunge");
    mdb_cursor_close(cur);
    return ret;
}

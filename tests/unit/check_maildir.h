/*
 * check_maildir.h - scratch Maildirs for the mailbox index and listing
 * suites: md_base_setup/md_base_teardown (unchecked fixture in the
 * parent: one mkdtemp directory per run, removed even after a failure),
 * md_make (per test: a fresh Maildir with tmp/ new/ cur/, opened as a
 * descriptor the way pop3d opens it), md_put (a message file), and raw
 * LMDB access to damage or age an index on purpose.
 */
#ifndef TERN_CHECK_MAILDIR_H
#define TERN_CHECK_MAILDIR_H

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char md_basedir[PATH_MAX];
static int md_seq;

static inline int md_rm_entry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void md_base_setup(void)
{
    const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int n = snprintf(md_basedir, sizeof(md_basedir), "%s/tern-md-XXXXXX", t);
    if (n < 0 || (size_t)n >= sizeof(md_basedir) - 64
        || mkdtemp(md_basedir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void md_base_teardown(void)
{
    if (md_basedir[0] != '\0')
        nftw(md_basedir, md_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* md_make - a new Maildir; its path in path[PATH_MAX]; its open fd */
static inline int md_make(char *path, bool with_subdirs)
{
    int n = snprintf(path, PATH_MAX, "%s/m%d.%d", md_basedir, (int)getpid(),
                     md_seq++);
    ck_assert(n > 0 && n < PATH_MAX);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    if (with_subdirs) {
        static const char *const subs[] = { "tmp", "new", "cur" };
        for (int i = 0; i < 3; i++) {
            char p[PATH_MAX + 8];
            ck_assert_int_lt(snprintf(p, sizeof(p), "%s/%s", path, subs[i]),
                             (int)sizeof(p));
            ck_assert_int_eq(mkdir(p, 0700), 0);
        }
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* md_put - write sub/name with content */
static inline void md_put(int dfd, const char *sub, const char *name,
                   const char *content)
{
    char p[PATH_MAX];
    ck_assert_int_lt(snprintf(p, sizeof(p), "%s/%s", sub, name),
                     (int)sizeof(p));
    int fd = openat(dfd, p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(content);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
}

/* md_raw_put - write a record straight into the index (db "meta" or
   "keys"), as damage or an old UIDVALIDITY would look */
static inline void md_raw_put(const char *mdpath, const char *db, const void *key,
                       size_t klen, const void *val, size_t vlen)
{
    char p[PATH_MAX + 32];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    ck_assert_int_lt(snprintf(p, sizeof(p), "%s/tern-index.lmdb", mdpath),
                     (int)sizeof(p));
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_open(env, p, MDB_NOSUBDIR, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* md_set_uidvalidity - pretend the index was made long ago */
static inline void md_set_uidvalidity(const char *mdpath, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8),
                           (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
    md_raw_put(mdpath, "meta", "uidvalidity", 11, b, 4);
}

/* md_write_garbage - overwrite the index file with junk */
static inline void md_write_garbage(int dfd)
{
    char junk[8192];
    memset(junk, 0x5a, sizeof(junk));
    int fd = openat(dfd, "tern-index.lmdb", O_WRONLY | O_TRUNC | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
}

#endif

/* test_mailbox_index - the per-Maildir LMDB index: UIDs assigned once and
   never reused, vsize records, nothing written by an update that changes
   nothing, map growth, rebuild of a damaged or lost index with a new
   UIDVALIDITY, refusal of a symlink or FIFO, concurrent writers. */
#include <check.h>

#include "check_main.h"
#include "check_maildir.h"
#include <errno.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/mailbox_index.h"

/* an update that adds keys[0..n) (absent ones) and removes others when
   expunge is set; uids[] get the UIDs */
struct add_ctx {
    const char *const *keys;
    size_t n;
    uint32_t uids[64];
    bool expunge;
    size_t removed;
    int runs;
};

static bool add_keep(const char *key, size_t klen, void *ctx)
{
    struct add_ctx *a = ctx;
    for (size_t i = 0; i < a->n; i++) {
        if (strlen(a->keys[i]) == klen && memcmp(a->keys[i], key, klen) == 0)
            return true;
    }
    return false;
}

static int add_fn(struct mailbox_index *idx, void *ctx)
{
    struct add_ctx *a = ctx;
    int rc;

    a->runs++;
    for (size_t i = 0; i < a->n; i++) {
        struct mailbox_index_rec rec;
        rc = mailbox_index_get(idx, a->keys[i], strlen(a->keys[i]), &rec);
        if (rc < 0)
            return rc;
        if (rc == MAILBOX_INDEX_FOUND) {
            a->uids[i] = rec.uid;
            continue;
        }
        rc = mailbox_index_add(idx, a->keys[i], strlen(a->keys[i]), -1,
                               &a->uids[i]);
        if (rc < 0)
            return rc;
    }
    if (a->expunge)
        return mailbox_index_expunge(idx, add_keep, a, &a->removed);
    return MAILBOX_INDEX_OK;
}

static struct mailbox_index *idx_open_ok(int dfd)
{
    struct mailbox_index *idx = NULL;
    const char *err = NULL;
    int rc = mailbox_index_open(dfd, &idx, &err);
    ck_assert_msg(rc == 0, "open: %s", err ? err : "?");
    return idx;
}

static void idx_update_ok(struct mailbox_index *idx, struct add_ctx *a)
{
    const char *err = NULL;
    int rc = mailbox_index_update(idx, add_fn, a, &err);
    ck_assert_msg(rc == 0, "update: %s", err ? err : "?");
}

START_TEST(test_assign_and_keep)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    static const char *const k1[] = { "a", "b", "c" };
    struct add_ctx a = { .keys = k1, .n = 3 };

    struct mailbox_index *idx = idx_open_ok(dfd);
    idx_update_ok(idx, &a);
    ck_assert(mailbox_index_is_new(idx));
    ck_assert_uint_eq(a.uids[0], 1);
    ck_assert_uint_eq(a.uids[1], 2);
    ck_assert_uint_eq(a.uids[2], 3);
    uint32_t validity = mailbox_index_uidvalidity(idx);
    ck_assert_uint_ne(validity, 0);
    ck_assert_uint_le(validity, (uint32_t)time(NULL) + 1);
    ck_assert_uint_eq(mailbox_index_uidnext(idx), 4);
    mailbox_index_close(idx);

    /* reopened: the same UIDs, not new; b removed, d added: 4, not 2 */
    static const char *const k2[] = { "a", "c", "d" };
    struct add_ctx b = { .keys = k2, .n = 3, .expunge = true };
    idx = idx_open_ok(dfd);
    idx_update_ok(idx, &b);
    ck_assert(!mailbox_index_is_new(idx));
    ck_assert_uint_eq(mailbox_index_uidvalidity(idx), validity);
    ck_assert_uint_eq(b.uids[0], 1);
    ck_assert_uint_eq(b.uids[1], 3);
    ck_assert_uint_eq(b.uids[2], 4);
    ck_assert_uint_eq(b.removed, 1);
    mailbox_index_close(idx);

    /* b comes back: a new UID, never its old one */
    static const char *const k3[] = { "a", "b", "c", "d" };
    struct add_ctx c = { .keys = k3, .n = 4, .expunge = true };
    idx = idx_open_ok(dfd);
    idx_update_ok(idx, &c);
    ck_assert_uint_eq(c.uids[1], 5);
    ck_assert_uint_eq(c.removed, 0);
    ck_assert_uint_eq(mailbox_index_uidnext(idx), 6);
    mailbox_index_close(idx);
    close(dfd);
}
END_TEST

static int vsize_set_fn(struct mailbox_index *idx, void *ctx)
{
    uint32_t uid;
    int rc = mailbox_index_add(idx, "m1", 2, 1234, &uid);
    if (rc < 0)
        return rc;
    rc = mailbox_index_add(idx, "m2", 2, -1, &uid);
    if (rc < 0)
        return rc;
    rc = mailbox_index_set_vsize(idx, "m2", 2, 99);
    if (rc < 0)
        return rc;
    /* adding a key twice is damage, not a silent overwrite */
    return mailbox_index_add(idx, "m1", 2, 1, &uid) == MAILBOX_INDEX_CORRUPT
           ? MAILBOX_INDEX_OK : MAILBOX_INDEX_ERROR;
}

static int vsize_get_fn(struct mailbox_index *idx, void *ctx)
{
    int64_t *out = ctx;
    struct mailbox_index_rec rec;
    if (mailbox_index_get(idx, "m1", 2, &rec) != MAILBOX_INDEX_FOUND)
        return MAILBOX_INDEX_ERROR;
    out[0] = rec.vsize;
    if (mailbox_index_get(idx, "m2", 2, &rec) != MAILBOX_INDEX_FOUND)
        return MAILBOX_INDEX_ERROR;
    out[1] = rec.vsize;
    out[2] = mailbox_index_get(idx, "zz", 2, &rec);
    char big[300];
    memset(big, 'k', sizeof(big));
    out[3] = mailbox_index_get(idx, big, sizeof(big), &rec);
    out[4] = mailbox_index_get(idx, big, 0, &rec);
    return MAILBOX_INDEX_OK;
}

START_TEST(test_vsize_and_bad_keys)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    const char *err;
    int64_t got[5];

    struct mailbox_index *idx = idx_open_ok(dfd);
    ck_assert_int_eq(mailbox_index_update(idx, vsize_set_fn, NULL, &err), 0);
    mailbox_index_close(idx);
    idx = idx_open_ok(dfd);
    ck_assert_int_eq(mailbox_index_update(idx, vsize_get_fn, got, &err), 0);
    ck_assert_int_eq(got[0], 1234);
    ck_assert_int_eq(got[1], 99);
    ck_assert_int_eq(got[2], MAILBOX_INDEX_OK);
    ck_assert_int_eq(got[3], MAILBOX_INDEX_ERROR);
    ck_assert_int_eq(got[4], MAILBOX_INDEX_ERROR);
    mailbox_index_close(idx);
    close(dfd);
}
END_TEST

/* a read-only update commits nothing: the file is not written */
START_TEST(test_unchanged_writes_nothing)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    static const char *const k[] = { "x", "y" };
    struct add_ctx a = { .keys = k, .n = 2 };
    struct stat st;

    struct mailbox_index *idx = idx_open_ok(dfd);
    idx_update_ok(idx, &a);
    mailbox_index_close(idx);
    struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
    ck_assert_int_eq(utimensat(dfd, MAILBOX_INDEX_FILE, old, 0), 0);
    struct add_ctx b = { .keys = k, .n = 2, .expunge = true };
    idx = idx_open_ok(dfd);
    idx_update_ok(idx, &b);
    mailbox_index_close(idx);
    ck_assert_int_eq(fstatat(dfd, MAILBOX_INDEX_FILE, &st, 0), 0);
    ck_assert_int_eq(st.st_mtim.tv_sec, 1000000000);
    ck_assert_uint_eq(b.uids[0], 1);
    ck_assert_uint_eq(b.uids[1], 2);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    close(dfd);
}
END_TEST

/* many long keys in one transaction: the map grows, fn runs again */
struct many_ctx {
    size_t n;
    int runs;
    uint32_t last;
};

static int many_fn(struct mailbox_index *idx, void *ctx)
{
    struct many_ctx *m = ctx;
    char key[256];

    m->runs++;
    for (size_t i = 0; i < m->n; i++) {
        int len = snprintf(key, sizeof(key), "%0200zu", i);
        int rc = mailbox_index_add(idx, key, (size_t)len, (int64_t)i, &m->last);
        if (rc < 0)
            return rc;
    }
    return MAILBOX_INDEX_OK;
}

START_TEST(test_map_grows)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    struct many_ctx m = { .n = 20000 };
    const char *err = NULL;
    struct stat st;

    struct mailbox_index *idx = idx_open_ok(dfd);
    int rc = mailbox_index_update(idx, many_fn, &m, &err);
    ck_assert_msg(rc == 0, "update: %s", err ? err : "?");
    ck_assert_int_gt(m.runs, 1);
    ck_assert_uint_eq(m.last, 20000);
    ck_assert_uint_eq(mailbox_index_uidnext(idx), 20001);
    mailbox_index_close(idx);
    ck_assert_int_eq(fstatat(dfd, MAILBOX_INDEX_FILE, &st, 0), 0);
    ck_assert_int_gt(st.st_size, 1 << 20);
    /* and a fresh open of the grown file sees everything */
    static const char *const k[] = { "after" };
    struct add_ctx a = { .keys = k, .n = 1 };
    idx = idx_open_ok(dfd);
    idx_update_ok(idx, &a);
    ck_assert_uint_eq(a.uids[0], 20001);
    mailbox_index_close(idx);
    close(dfd);
}
END_TEST

START_TEST(test_garbage_rebuilt)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    static const char *const k[] = { "a", "b" };
    struct add_ctx a = { .keys = k, .n = 2 };

    struct mailbox_index *idx = idx_open_ok(dfd);
    idx_update_ok(idx, &a);
    mailbox_index_close(idx);
    md_set_uidvalidity(path, 1000);
    md_write_garbage(dfd);

    static const char *const k2[] = { "b", "a" };
    struct add_ctx b = { .keys = k2, .n = 2 };
    idx = idx_open_ok(dfd);
    idx_update_ok(idx, &b);
    ck_assert(mailbox_index_is_new(idx));
    ck_assert_uint_ne(mailbox_index_uidvalidity(idx), 1000);
    ck_assert_uint_eq(b.uids[0], 1);        /* assigned again, new order */
    ck_assert_uint_eq(b.uids[1], 2);
    mailbox_index_close(idx);
    close(dfd);
}
END_TEST

/* a record too short, or a UID at or above UIDNEXT: rebuilt, with a
   UIDVALIDITY above the old one (which was still readable) */
START_TEST(test_bad_records_rebuilt)
{
    static const char *const k[] = { "a", "b" };
    for (int variant = 0; variant < 3; variant++) {
        char path[PATH_MAX];
        int dfd = md_make(path, false);
        struct add_ctx a = { .keys = k, .n = 2 };
        struct mailbox_index *idx = idx_open_ok(dfd);
        idx_update_ok(idx, &a);
        mailbox_index_close(idx);
        uint32_t far = (uint32_t)time(NULL) + 100000;
        md_set_uidvalidity(path, far);
        if (variant == 0) {
            md_raw_put(path, "keys", "a", 1, "xyz", 3);
        } else if (variant == 1) {
            unsigned char rec[12] = { 9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff };
            md_raw_put(path, "keys", "a", 1, rec, sizeof(rec));
        } else {
            md_raw_put(path, "meta", "uidnext", 7, "\0\0", 2);
        }
        struct add_ctx b = { .keys = k, .n = 2 };
        idx = idx_open_ok(dfd);
        idx_update_ok(idx, &b);
        ck_assert_msg(mailbox_index_is_new(idx), "variant %d", variant);
        ck_assert_uint_eq(mailbox_index_uidvalidity(idx), far + 1);
        ck_assert_uint_eq(b.uids[0], 1);
        ck_assert_uint_eq(b.uids[1], 2);
        mailbox_index_close(idx);
        close(dfd);
    }
}
END_TEST

/* a later version's longer record: its extra fields survive a rewrite */
static int extra_fn(struct mailbox_index *idx, void *ctx)
{
    return mailbox_index_set_vsize(idx, "a", 1, 77);
}

START_TEST(test_record_tail_kept)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    static const char *const k[] = { "a" };
    struct add_ctx a = { .keys = k, .n = 1 };
    const char *err;

    struct mailbox_index *idx = idx_open_ok(dfd);
    idx_update_ok(idx, &a);
    mailbox_index_close(idx);
    unsigned char rec[16] = { 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 'T', 'A', 'I', 'L' };
    md_raw_put(path, "keys", "a", 1, rec, sizeof(rec));
    idx = idx_open_ok(dfd);
    ck_assert_int_eq(mailbox_index_update(idx, extra_fn, NULL, &err), 0);
    mailbox_index_close(idx);

    char p[PATH_MAX + 32];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_lt(snprintf(p, sizeof(p), "%s/tern-index.lmdb", path),
                     (int)sizeof(p));
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
    ck_assert_int_eq(mdb_env_open(env, p, MDB_NOSUBDIR | MDB_RDONLY, 0), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "keys", 0, &dbi), 0);
    MDB_val key = { 1, "a" }, v;
    ck_assert_int_eq(mdb_get(txn, dbi, &key, &v), 0);
    ck_assert_uint_eq(v.mv_size, 16);
    ck_assert_int_eq(((unsigned char *)v.mv_data)[4], 77);
    ck_assert_int_eq(memcmp((char *)v.mv_data + 12, "TAIL", 4), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    close(dfd);
}
END_TEST

START_TEST(test_symlink_fifo_refused)
{
    char path[PATH_MAX], target[PATH_MAX + 16];
    int dfd = md_make(path, false);
    struct mailbox_index *idx = NULL;
    const char *err = NULL;

    ck_assert_int_lt(snprintf(target, sizeof(target), "%s/elsewhere", path),
                     (int)sizeof(target));
    ck_assert_int_eq(symlinkat(target, dfd, MAILBOX_INDEX_FILE), 0);
    ck_assert_int_eq(mailbox_index_open(dfd, &idx, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
    ck_assert_int_eq(faccessat(dfd, "elsewhere", F_OK, 0), -1);
    ck_assert_int_eq(unlinkat(dfd, MAILBOX_INDEX_FILE, 0), 0);

    ck_assert_int_eq(mkfifoat(dfd, MAILBOX_INDEX_FILE, 0600), 0);
    ck_assert_int_eq(mailbox_index_open(dfd, &idx, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    ck_assert_int_eq(unlinkat(dfd, MAILBOX_INDEX_FILE, 0), 0);

    ck_assert_int_eq(mkdirat(dfd, MAILBOX_INDEX_FILE, 0700), 0);
    ck_assert_int_eq(mailbox_index_open(dfd, &idx, &err), -1);
    close(dfd);
}
END_TEST

/* writers in several processes: every UID given once */
START_TEST(test_concurrent_writers)
{
    enum { PROCS = 4, KEYS = 50 };
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    pid_t pids[PROCS];

    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0) {
            for (int i = 0; i < KEYS; i++) {
                char key[32];
                const char *kp = key;
                snprintf(key, sizeof(key), "p%d-k%d", p, i);
                struct add_ctx a = { .keys = &kp, .n = 1 };
                struct mailbox_index *idx = NULL;
                const char *err;
                if (mailbox_index_open(dfd, &idx, &err) < 0
                    || mailbox_index_update(idx, add_fn, &a, &err) < 0)
                    _exit(1);
                mailbox_index_close(idx);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* every key once, UIDs 1..PROCS*KEYS each once */
    static bool seen[PROCS * KEYS + 1];
    memset(seen, 0, sizeof(seen));
    for (int p = 0; p < PROCS; p++) {
        for (int i = 0; i < KEYS; i++) {
            char key[32];
            const char *kp = key;
            snprintf(key, sizeof(key), "p%d-k%d", p, i);
            struct add_ctx a = { .keys = &kp, .n = 1 };
            struct mailbox_index *idx = idx_open_ok(dfd);
            idx_update_ok(idx, &a);
            ck_assert_uint_eq(mailbox_index_uidnext(idx), PROCS * KEYS + 1);
            mailbox_index_close(idx);
            ck_assert_uint_ge(a.uids[0], 1);
            ck_assert_uint_le(a.uids[0], PROCS * KEYS);
            ck_assert(!seen[a.uids[0]]);
            seen[a.uids[0]] = true;
        }
    }
    close(dfd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mailbox_index");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, md_base_setup, md_base_teardown);
    tcase_add_test(tc, test_assign_and_keep);
    tcase_add_test(tc, test_vsize_and_bad_keys);
    tcase_add_test(tc, test_unchanged_writes_nothing);
    tcase_add_test(tc, test_map_grows);
    tcase_add_test(tc, test_garbage_rebuilt);
    tcase_add_test(tc, test_bad_records_rebuilt);
    tcase_add_test(tc, test_record_tail_kept);
    tcase_add_test(tc, test_symlink_fifo_refused);
    tcase_add_test(tc, test_concurrent_writers);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

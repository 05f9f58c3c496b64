/*
 * test_queue - unit tests for queue IDs, spool directories and queue
 * files (lib/queue.c). Every test runs in its own mkdtemp directory with
 * the spool subdirectories created, like a daemon chdir'd to the spool.
 */
#include <check.h>

#include "check_main.h"
#define SPOOL_TEST_NAME "queue"
#include "check_spool.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/queue_writer.h"
#include "util/util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void spool_setup(void)
{
    spool_enter(NULL);
}

static void spool_teardown(void)
{
    spool_leave();
}

/* names in a directory that are not "." or ".." */
static size_t dir_count(const char *dir, char *first, size_t first_size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0 && first)
            str_copy(first, e->d_name, first_size);
    }
    closedir(d);
    return n;
}

/* a memfd holding data[0..len), positioned at 0 */
static int mem_file(const void *data, size_t len)
{
    int fd = memfd_create("queuefile", MFD_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_full(fd, data, len), 0);
    return fd;
}

static int read_mem(const void *data, size_t len, queue_msg_t *m,
                    const char **err)
{
    int fd = mem_file(data, len);
    int r = queue_file_read(fd, "TEST", m, err);

    close(fd);
    return r;
}

static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    char *p;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    p = xmalloc((size_t)st.st_size + 1);
    ck_assert_int_eq(read_full(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

/* ---- queue IDs ------------------------------------------------------------ */

START_TEST(test_id_sortable)
{
    static const uint64_t times[] = {
        0, 1, 999999, 1000000, 1000001, 1700000000000000ULL,
        1700000000000001ULL, 1700000000999999ULL, 1700000001000000ULL,
        1800000000123456ULL, 4000000000000000ULL,
    };
    char prev[QUEUE_ID_SIZE] = "", id[QUEUE_ID_SIZE];

    for (size_t i = 0; i < ARRAY_LEN(times); i++) {
        /* inodes vary, and even shrink, without breaking the time order */
        queue_id_make(times[i], i % 2 ? 123456789012ULL : 7, id);
        ck_assert_msg(queue_id_valid(id), "%s", id);
        if (i > 0)
            ck_assert_msg(strcmp(prev, id) < 0, "%s !< %s", prev, id);
        str_copy(prev, id, sizeof(prev));
    }
}
END_TEST

START_TEST(test_id_unique)
{
    static const uint64_t inodes[] = {
        0, 1, 51, 52, 53, 2703, 2704, 140608, 1ULL << 32, (1ULL << 32) + 1,
        UINT64_MAX - 1, UINT64_MAX,
    };
    char ids[ARRAY_LEN(inodes)][QUEUE_ID_SIZE];
    uint64_t t = 1712345678654321ULL;

    for (size_t i = 0; i < ARRAY_LEN(inodes); i++) {
        queue_id_make(t, inodes[i], ids[i]);
        ck_assert_msg(queue_id_valid(ids[i]), "%s", ids[i]);
        ck_assert_uint_ge(strlen(ids[i]), 11);
        ck_assert_uint_lt(strlen(ids[i]), QUEUE_ID_SIZE);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(ids[i], ids[j]);
    }
    /* same inode, same second, different microsecond */
    queue_id_make(t + 1, inodes[3], ids[0]);
    ck_assert_str_ne(ids[0], ids[3]);
    /* the alphabet never contains a vowel */
    for (size_t i = 0; i < ARRAY_LEN(inodes); i++)
        ck_assert_ptr_null(strpbrk(ids[i], "AEIOUaeiou"));
}
END_TEST

static const struct {
    const char *id;
    bool valid;
} id_table[] = {
    { "0000000000", false },                   /* 10: no inode digit */
    { "00000000000", true },                   /* 11 */
    { "4Zx2KbQ1vNz", true },
    { "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", true },  /* 31 */
    { "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", false }, /* 32: no room for NUL */
    { "", false },
    { "4Zx2KbQ1vNa", false },                  /* vowel */
    { "4Zx2KbQ1vNA", false },
    { "4Zx2KbQ1vNe", false },
    { "4Zx2KbQ1vNU", false },
    { "4Zx2KbQ1vN.", false },
    { "t.1234.5678", false },                  /* a writer's temp name */
    { "t.1.1", false },
    { "../../etc/pw", false },
    { "4Zx2KbQ1v/z", false },
    { "4Zx2KbQ1vN z", false },
    { "4Zx2KbQ1vN\n", false },
    { "4Zx2KbQ1vN\xff", false },
    { "4Zx2KbQ1vN-z", false },
};

START_TEST(test_id_valid_table)
{
    ck_assert_msg(queue_id_valid(id_table[_i].id) == id_table[_i].valid,
                  "'%s' should be %s", id_table[_i].id,
                  id_table[_i].valid ? "valid" : "invalid");
}
END_TEST

START_TEST(test_id_valid_null)
{
    ck_assert(!queue_id_valid(NULL));
}
END_TEST

START_TEST(test_path)
{
    buf_t p = BUF_INIT;

    buf_puts(&p, "old contents");
    queue_path(QUEUE_INCOMING, "4Zx2KbQ1vNz", &p);
    ck_assert_str_eq(buf_str(&p), "incoming/4Zx2KbQ1vNz");
    queue_path(QUEUE_DEFERRED, "4Zx2KbQ1vNz", &p);
    ck_assert_str_eq(buf_str(&p), "deferred/N/4Zx2KbQ1vNz");
    queue_path(QUEUE_DEFERRED, "00000000Q9z", &p);
    ck_assert_str_eq(buf_str(&p), "deferred/9/00000000Q9z");
    queue_path(QUEUE_ACTIVE, "00000000Q9z", &p);
    ck_assert_str_eq(buf_str(&p), "active/00000000Q9z");
    queue_path(QUEUE_HOLD, "00000000Q9z", &p);
    ck_assert_str_eq(buf_str(&p), "hold/00000000Q9z");
    buf_free(&p);
}
END_TEST

/* ---- directories ---------------------------------------------------------- */

START_TEST(test_dirs)
{
    struct stat st;
    char path[64];

    for (const char *const *n = queue_dir_names; *n; n++) {
        mode_t want = strcmp(*n, "public") == 0 ? 02710
                      : strcmp(*n, QUEUE_MAILDROP) == 0 ? 01730
                      : strcmp(*n, "pid") == 0 ? 0755 : 0700;

        ck_assert_int_eq(stat(*n, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_msg((st.st_mode & 07777) == want, "%s: %o", *n,
                      (unsigned)(st.st_mode & 07777));
    }
    ck_assert_uint_eq(dir_count(QUEUE_DEFERRED, NULL, 0), 52);
    ck_assert_uint_eq(dir_count(QUEUE_INCOMING, NULL, 0), 0);
    snprintf(path, sizeof(path), "%s/b", QUEUE_DEFERRED);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    /* idempotent, and it repairs a wrong mode */
    ck_assert_int_eq(chmod(QUEUE_HOLD, 0777), 0);
    ck_assert_int_eq(queue_dirs_create(".", getuid(), getgid(), (gid_t)-1), 0);
    ck_assert_int_eq(stat(QUEUE_HOLD, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    /* a file in the way is an error */
    ck_assert_int_eq(mkdir("sub", 0700), 0);
    ck_assert_int_eq(close(open("sub/incoming", O_CREAT | O_WRONLY, 0600)), 0);
    ck_assert_int_eq(queue_dirs_create("sub", (uid_t)-1, (gid_t)-1, (gid_t)-1), -1);
}
END_TEST

/* login/: ours, 0750, mode repaired; a symlink in its place refused */
START_TEST(test_login_dir)
{
    struct stat st;

    ck_assert_int_eq(queue_login_dir_create(".", (gid_t)-1), 0);
    ck_assert_int_eq(lstat(QUEUE_LOGIN_DIR, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0750);
    ck_assert_uint_eq(st.st_uid, geteuid());
    ck_assert_uint_eq(st.st_gid, getegid());
    ck_assert_int_eq(chmod(QUEUE_LOGIN_DIR, 0777), 0);
    ck_assert_int_eq(queue_login_dir_create(".", getegid()), 0);
    ck_assert_int_eq(lstat(QUEUE_LOGIN_DIR, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0750);
    ck_assert_int_eq(mkdir("elsewhere", 0700), 0);
    ck_assert_int_eq(mkdir("sub2", 0700), 0);
    ck_assert_int_eq(symlink("../elsewhere", "sub2/" QUEUE_LOGIN_DIR), 0);
    ck_assert_int_eq(queue_login_dir_create("sub2", (gid_t)-1), -1);
    ck_assert_int_eq(lstat("elsewhere", &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
}
END_TEST

/* ---- writing and reading -------------------------------------------------- */

#define BIG_CONTENT (1024 * 1024)

static const char *rcpts[] = { "one@example.org", "two@example.org",
                               "three@example.net" };

/* content: starts with 'R' (like "Received:") and holds NUL bytes */
static char *make_content(size_t len)
{
    char *c = xmalloc(len);

    for (size_t i = 0; i < len; i++)
        c[i] = (char)(i * 7 + i / 251);
    memcpy(c, "Received: from x\n", 17);
    c[20] = '\0';
    c[len - 1] = '\n';
    return c;
}

static void write_message(char qid[QUEUE_ID_SIZE], const char *content,
                          size_t clen)
{
    queue_writer_t w;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert(queue_id_valid(w.qid));
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "sender@example.com",
                                         18), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "client_address", "192.0.2.1"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "helo_name", "mx=1.example"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "empty", ""), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, rcpts[0],
                                         strlen(rcpts[0])), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_ORCPT, "rfc822;Two@Example.org",
                                         22), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, rcpts[1],
                                         strlen(rcpts[1])), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, rcpts[2],
                                         strlen(rcpts[2])), 0);
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    /* odd-sized chunks, some bigger than the write buffer */
    for (size_t off = 0, step = 1; off < clen; step = step * 3 + 1) {
        size_t n = clen - off < step ? clen - off : step;

        ck_assert_int_eq(queue_writer_content(&w, content + off, n), 0);
        off += n;
    }
    ck_assert_int_eq(queue_writer_commit(&w), 0);
    ck_assert_int_eq(w.fd, -1);
    str_copy(qid, w.qid, QUEUE_ID_SIZE);
    queue_writer_abort(&w);     /* harmless after commit */
}

static void check_message(int fd, const char *qid, const char *content,
                          size_t clen, const char *status)
{
    queue_msg_t m;
    const char *err = "unset";
    char *got;

    ck_assert_msg(queue_file_read(fd, qid, &m, &err) == 0, "%s", err);
    ck_assert_str_eq(m.qid, qid);
    ck_assert_str_eq(m.sender, "sender@example.com");
    ck_assert_uint_ge(m.arrival_usec, 1600000000000000ULL);
    ck_assert_uint_le(m.arrival_usec, time_now_usec());
    ck_assert_uint_eq(m.nattrs, 3);
    ck_assert_str_eq(queue_msg_attr(&m, "client_address"), "192.0.2.1");
    ck_assert_str_eq(queue_msg_attr(&m, "helo_name"), "mx=1.example");
    ck_assert_str_eq(queue_msg_attr(&m, "empty"), "");
    ck_assert_ptr_null(queue_msg_attr(&m, "missing"));
    ck_assert_uint_eq(m.nrcpts, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(m.rcpts[i].address, rcpts[i]);
        ck_assert_int_eq(m.rcpts[i].status, status[i]);
    }
    ck_assert_ptr_null(m.rcpts[0].orcpt);
    ck_assert_str_eq(m.rcpts[1].orcpt, "rfc822;Two@Example.org");
    ck_assert_ptr_null(m.rcpts[2].orcpt);
    ck_assert_uint_eq(m.content_len, clen);
    got = xmalloc(clen + 1);
    ck_assert_int_eq(pread(fd, got, clen, m.content_offset), (ssize_t)clen);
    ck_assert(memcmp(got, content, clen) == 0);
    free(got);
    queue_msg_free(&m);
    ck_assert_ptr_null(m.rcpts);
}

START_TEST(test_write_read_mark)
{
    char qid[QUEUE_ID_SIZE], name[64];
    char *content = make_content(BIG_CONTENT);
    buf_t path = BUF_INIT;
    queue_msg_t m;
    const char *err;
    size_t before_len, after_len;
    char *before, *after;
    int fd;

    write_message(qid, content, BIG_CONTENT);
    ck_assert_uint_eq(dir_count(QUEUE_INCOMING, name, sizeof(name)), 1);
    ck_assert_str_eq(name, qid);
    queue_path(QUEUE_INCOMING, qid, &path);
    fd = open(buf_str(&path), O_RDWR);
    ck_assert_int_ge(fd, 0);
    check_message(fd, qid, content, BIG_CONTENT, "RRR");

    ck_assert_int_eq(queue_file_read(fd, qid, &m, &err), 0);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[0].offset, QREC_DONE), 0);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[2].offset, QREC_BOUNCED), 0);
    check_message(fd, qid, content, BIG_CONTENT, "DRB");

    /* never scribble outside a recipient record's type byte */
    before = slurp(buf_str(&path), &before_len);
    ck_assert_int_eq(before[m.content_offset], 'R');   /* "Received:" */
    ck_assert_int_eq(queue_file_mark(fd, m.content_offset, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, m.content_offset + 100, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, 0, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[1].offset + 1, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[1].offset - 1, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, (off_t)before_len + 10, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, -1, QREC_DONE), -1);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[1].offset, 'X'), -1);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[1].offset, QREC_END), -1);
    after = slurp(buf_str(&path), &after_len);
    ck_assert_uint_eq(before_len, after_len);
    ck_assert(memcmp(before, after, before_len) == 0);
    /* back to pending is allowed (requeue) */
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[0].offset, QREC_RCPT), 0);
    check_message(fd, qid, content, BIG_CONTENT, "RRB");

    queue_msg_free(&m);
    close(fd);
    free(before);
    free(after);
    free(content);
    buf_free(&path);
}
END_TEST

START_TEST(test_write_hashed_queue)
{
    queue_writer_t w;
    buf_t path = BUF_INIT;
    struct stat st;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_DEFERRED), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "", 0), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_DONE, "a@b", 3), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);      /* empty content */
    queue_path(QUEUE_DEFERRED, w.qid, &path);
    ck_assert_int_eq(stat(buf_str(&path), &st), 0);
    ck_assert_uint_eq(dir_count(QUEUE_DEFERRED, NULL, 0), 52);
    int fd = open(buf_str(&path), O_RDONLY);
    queue_msg_t m;
    const char *err = NULL;
    ck_assert_int_eq(queue_file_read(fd, w.qid, &m, &err), 0);
    ck_assert_str_eq(m.sender, "");
    ck_assert_uint_eq(m.content_len, 0);
    ck_assert_uint_eq(m.nrcpts, 1);
    ck_assert_int_eq(m.rcpts[0].status, QREC_DONE);
    queue_msg_free(&m);
    close(fd);
    buf_free(&path);
}
END_TEST

/* DSN records written and read back; the writer refuses bad ones */
START_TEST(test_dsn_round_trip)
{
    queue_writer_t w;
    queue_msg_t m;
    const char *err = "unset";
    buf_t path = BUF_INIT;
    char ntext[QREC_NOTIFY_TEXT_MAX];
    unsigned mask = 0;
    int fd;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@x", 3), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "dsn_envid", "QQ 3=x"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "dsn_ret", "HDRS"), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_NOTIFY, "NEVER,DELAY", 11), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_NOTIFY, "", 0), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_DSN_ORCPT, "rfc822", 6), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_ORCPT, "o@x", 3), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_NOTIFY, "SUCCESS,FAILURE", 15), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_ORCPT, "o@x", 3), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_DSN_ORCPT, "rfc822;O@X", 10), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_NOTIFY, "DELAY", 5), -1);
    ck_assert_int_eq(queue_writer_content_begin(&w), -1);    /* no R yet */
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "r@x", 3), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_NOTIFY, "NEVER", 5), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "r2@x", 4), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "r3@x", 4), 0);
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);

    queue_path(QUEUE_INCOMING, w.qid, &path);
    fd = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(queue_file_read(fd, w.qid, &m, &err) == 0, "%s", err);
    ck_assert_str_eq(queue_msg_attr(&m, "dsn_envid"), "QQ 3=x");
    ck_assert_str_eq(queue_msg_attr(&m, "dsn_ret"), "HDRS");
    ck_assert_uint_eq(m.nrcpts, 3);
    ck_assert_str_eq(m.rcpts[0].orcpt, "o@x");
    ck_assert_uint_eq(m.rcpts[0].dsn_notify,
                      QREC_NOTIFY_SUCCESS | QREC_NOTIFY_FAILURE);
    ck_assert_str_eq(m.rcpts[0].dsn_orcpt, "rfc822;O@X");
    ck_assert_uint_eq(m.rcpts[1].dsn_notify, QREC_NOTIFY_NEVER);
    ck_assert_ptr_null(m.rcpts[1].dsn_orcpt);
    ck_assert_ptr_null(m.rcpts[1].orcpt);
    ck_assert_uint_eq(m.rcpts[2].dsn_notify, 0);   /* nothing carried over */
    ck_assert_ptr_null(m.rcpts[2].dsn_orcpt);
    /* marking still finds the recipient records */
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[0].offset, QREC_DONE), -1);
    queue_msg_free(&m);
    close(fd);
    fd = open(buf_str(&path), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(queue_file_read(fd, w.qid, &m, &err), 0);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[0].offset, QREC_DONE), 0);
    ck_assert_int_eq(queue_file_mark(fd, m.rcpts[0].offset - 5 - 10,
                                     QREC_DONE), -1);        /* the P record */
    queue_msg_free(&m);
    close(fd);
    buf_free(&path);

    /* the NOTIFY codec */
    ck_assert_int_eq(queue_notify_parse("delay,Success", 13, &mask), 0);
    ck_assert_uint_eq(mask, QREC_NOTIFY_DELAY | QREC_NOTIFY_SUCCESS);
    ck_assert_int_eq(queue_notify_format(mask, ntext, sizeof(ntext)), 0);
    ck_assert_str_eq(ntext, "SUCCESS,DELAY");
    ck_assert_int_eq(queue_notify_format(0xF & ~QREC_NOTIFY_NEVER, ntext,
                                         sizeof(ntext)), 0);
    ck_assert_str_eq(ntext, "SUCCESS,FAILURE,DELAY");
    ck_assert_int_eq(queue_notify_format(0, ntext, sizeof(ntext)), -1);
    ck_assert_int_eq(queue_notify_format(QREC_NOTIFY_NEVER | QREC_NOTIFY_DELAY,
                                         ntext, sizeof(ntext)), -1);
    ck_assert_int_eq(queue_notify_format(0x10, ntext, sizeof(ntext)), -1);
    ck_assert_int_eq(queue_notify_format(QREC_NOTIFY_DELAY, ntext, 4), -1);
    ck_assert_int_eq(queue_notify_parse("NEVER", 3, &mask), -1);   /* "NEV" */
    ck_assert_int_eq(queue_notify_parse(",", 1, &mask), -1);
}
END_TEST

/* the writer refuses what the reader would refuse */
START_TEST(test_writer_rejects)
{
    queue_writer_t w;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "a@b", 3), -1);
    ck_assert_int_eq(queue_writer_attr(&w, "x", "y"), -1);      /* before S */
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "a\0b", 3), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@x", 3), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@x", 3), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_VERSION, "1", 1), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_END, "", 0), -1);
    ck_assert_int_eq(queue_writer_record(&w, QREC_CONTENT, "0", 1), -1);
    ck_assert_int_eq(queue_writer_record(&w, 'X', "", 0), -1);
    ck_assert_int_eq(queue_writer_attr(&w, "", "y"), -1);
    ck_assert_int_eq(queue_writer_attr(&w, "a=b", "y"), -1);
    ck_assert_int_eq(queue_writer_content(&w, "x", 1), -1);      /* no M yet */
    ck_assert_int_eq(queue_writer_content_begin(&w), -1);        /* no rcpt */
    ck_assert_int_eq(queue_writer_record(&w, QREC_ORCPT, "o", 1), 0);
    ck_assert_int_eq(queue_writer_content_begin(&w), -1);        /* O alone */
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "r@x", 3), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "late", "y"), -1);
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, "r@x", 3), -1);
    ck_assert_int_eq(queue_writer_content_begin(&w), -1);
    queue_writer_abort(&w);
    queue_writer_abort(&w);
    ck_assert_uint_eq(dir_count(QUEUE_INCOMING, NULL, 0), 0);

    /* commit without any recipient fails and leaves nothing behind */
    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@x", 3), 0);
    ck_assert_int_eq(queue_writer_commit(&w), -1);
    ck_assert_uint_eq(dir_count(QUEUE_INCOMING, NULL, 0), 0);
    queue_writer_abort(&w);

    /* a queue directory that does not exist */
    ck_assert_int_eq(queue_writer_open(&w, "nonexistent"), -1);
    ck_assert_int_eq(queue_writer_open(&w, "a-much-too-long-queue-name"), -1);
}
END_TEST

/* a writer killed before commit leaves only a temp name, never an ID */
START_TEST(test_crash_leaves_temp)
{
    char name[64];
    pid_t pid = fork();
    int status, fd;
    queue_msg_t m;
    const char *err = NULL;
    buf_t path = BUF_INIT;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        queue_writer_t w;

        if (queue_writer_open(&w, QUEUE_INCOMING) < 0
            || queue_writer_record(&w, QREC_SENDER, "s@x", 3) < 0
            || queue_writer_record(&w, QREC_RCPT, "r@x", 3) < 0
            || queue_writer_content_begin(&w) < 0
            || queue_writer_content(&w, "data\n", 5) < 0)
            _exit(1);
        /* force the buffered bytes out, as a big message would */
        char big[70000];
        memset(big, 'x', sizeof(big));
        if (queue_writer_content(&w, big, sizeof(big)) < 0)
            _exit(1);
        _exit(0);                               /* "crash": no commit */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(dir_count(QUEUE_INCOMING, name, sizeof(name)), 1);
    ck_assert_msg(strncmp(name, "t.", 2) == 0, "%s", name);
    ck_assert(!queue_id_valid(name));
    /* and its content is not a valid queue file either */
    buf_printf(&path, "%s/%s", QUEUE_INCOMING, name);
    fd = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(queue_file_read(fd, name, &m, &err), -1);
    close(fd);
    buf_free(&path);
}
END_TEST

/* ---- corrupt files -------------------------------------------------------- */

static void rec(buf_t *b, char type, const void *p, size_t n)
{
    unsigned char hdr[5] = { (unsigned char)type, (unsigned char)(n >> 24),
                             (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                             (unsigned char)n };

    buf_append(b, hdr, sizeof(hdr));
    buf_append(b, p, n);
}

static void recs(buf_t *b, char type, const char *s)
{
    rec(b, type, s, strlen(s));
}

static void content(buf_t *b, const char *body, size_t blen)
{
    char digits[21];

    snprintf(digits, sizeof(digits), "%020zu", blen);
    rec(b, QREC_CONTENT, digits, 20);
    buf_append(b, body, blen);
    rec(b, QREC_END, "", 0);
}

static void head(buf_t *b)
{
    recs(b, 'V', "1");
    recs(b, 'T', "1700000000.123456");
    recs(b, 'S', "s@example.com");
}

/* a small valid file: V T S A O R D M(body) E */
static void good_file(buf_t *b)
{
    head(b);
    recs(b, 'A', "size=5");
    recs(b, 'O', "rfc822;x@y");
    recs(b, 'R', "x@y");
    recs(b, 'D', "z@y");
    content(b, "R\0B\nD", 5);
}

START_TEST(test_good_file)
{
    buf_t b = BUF_INIT;
    queue_msg_t m;
    const char *err = NULL;

    good_file(&b);
    ck_assert_msg(read_mem(b.data, b.len, &m, &err) == 0, "%s", err);
    ck_assert_uint_eq(m.arrival_usec, 1700000000123456ULL);
    ck_assert_str_eq(m.qid, "TEST");
    ck_assert_uint_eq(m.nrcpts, 2);
    ck_assert_str_eq(m.rcpts[0].orcpt, "rfc822;x@y");
    ck_assert_int_eq(m.rcpts[1].status, 'D');
    ck_assert_int_eq(b.data[m.rcpts[1].offset], 'D');
    ck_assert_uint_eq(m.content_len, 5);
    ck_assert(memcmp(b.data + m.content_offset, "R\0B\nD", 5) == 0);
    queue_msg_free(&m);
    buf_free(&b);
}
END_TEST

/* every proper prefix of a valid file is corrupt */
START_TEST(test_truncations)
{
    buf_t b = BUF_INIT;
    queue_msg_t m;

    good_file(&b);
    for (size_t n = 0; n < b.len; n++) {
        const char *err = NULL;

        ck_assert_msg(read_mem(b.data, n, &m, &err) == -1,
                      "truncated at %zu accepted", n);
        ck_assert_ptr_nonnull(err);
        ck_assert_uint_eq(m.nrcpts, 0);
        ck_assert_ptr_null(m.sender);
    }
    buf_free(&b);
}
END_TEST

/* flip the type byte of record #index (in good_file order) */
static const struct {
    int index;              /* 0=V 1=T 2=S 3=A 4=O 5=R 6=D 7=M 8=E */
    char type;
    int expect;
    const char *error;      /* substring of the error, or NULL */
} flips[] = {
    { 0, 'X', -1, "record 'X' at offset 0: unknown record type" },
    { 0, 'T', -1, "out of order" },
    { 0, '\0', -1, "record 0x00 at offset 0" },
    { 1, 'V', -1, "out of order" },
    { 1, 'S', -1, "out of order" },
    { 2, 'A', -1, "out of order" },
    { 2, 'R', -1, "out of order" },
    { 3, 'S', -1, "out of order" },
    { 3, 'E', -1, "out of order" },
    { 3, 'M', -1, "out of order" },
    { 4, 'E', -1, "out of order" },
    { 4, 'A', -1, "malformed attribute" },   /* "rfc822;x@y": no '=' */
    { 4, 'N', -1, "bad DSN NOTIFY" },
    { 4, 'P', 0, NULL },                     /* "rfc822;x@y" is a DSN ORCPT */
    { 5, 'N', -1, "bad DSN NOTIFY" },        /* R "x@y" */
    { 5, 'P', -1, "bad DSN ORCPT" },
    { 5, 'O', -1, "out of order" },
    { 5, 'M', -1, "out of order" },
    { 5, 'B', 0, NULL },      /* R -> B is a legal status change */
    { 6, 'R', 0, NULL },
    { 6, 'A', -1, "out of order" },
    { 6, 'E', -1, "out of order" },
    { 7, 'E', -1, "out of order" },
    { 7, 'R', -1, "record 'R'" },
    { 8, 'M', -1, "out of order" },
    { 8, 'X', -1, "unknown record type" },
    { 8, '\xff', -1, "record 0xff" },
};

START_TEST(test_flip_types)
{
    buf_t b = BUF_INIT;
    queue_msg_t m;
    const char *err = NULL;
    size_t off = 0;
    int expect = flips[_i].expect, r;

    /* walk to the record; the M record is followed by 5 content bytes */

    good_file(&b);
    for (int i = 0; i < flips[_i].index; i++) {
        const unsigned char *h = (const unsigned char *)b.data + off;
        size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16
                     | (size_t)h[3] << 8 | h[4];

        off += 5 + len + (h[0] == 'M' ? 5 : 0);
    }
    b.data[off] = flips[_i].type;
    r = read_mem(b.data, b.len, &m, &err);
    ck_assert_msg(r == expect, "flip %d to 0x%02x: got %d", flips[_i].index,
                  (unsigned char)flips[_i].type, r);
    if (r < 0 && flips[_i].error)
        ck_assert_msg(strstr(err, flips[_i].error) != NULL, "error '%s'", err);
    if (r == 0)
        queue_msg_free(&m);
    buf_free(&b);
}
END_TEST

/* hand-built files, each broken in one way */
static void f_version2(buf_t *b)
{
    recs(b, 'V', "2"); recs(b, 'T', "1.000000"); recs(b, 'S', "");
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_version_long(buf_t *b)
{
    recs(b, 'V', "10"); recs(b, 'T', "1.000000"); recs(b, 'S', "");
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_no_rcpt(buf_t *b) { head(b); content(b, "x", 1); }
static void f_two_senders(buf_t *b)
{
    head(b); recs(b, 'S', "again"); recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_orcpt_alone(buf_t *b)
{
    head(b); recs(b, 'R', "a@b"); recs(b, 'O', "o"); content(b, "", 0);
}
static void f_two_orcpts(buf_t *b)
{
    head(b); recs(b, 'O', "o"); recs(b, 'O', "p"); recs(b, 'R', "a@b");
    content(b, "", 0);
}
/* the DSN records: O? N? P? before each recipient, strict contents */
static void f_dsn(buf_t *b, const char *n, const char *p, bool p_first)
{
    head(b);
    if (p_first && p)
        recs(b, 'P', p);
    if (n)
        recs(b, 'N', n);
    if (!p_first && p)
        recs(b, 'P', p);
    recs(b, 'R', "a@b");
    content(b, "", 0);
}
static void f_dsn_ok(buf_t *b) { f_dsn(b, "SUCCESS,DELAY", "rfc822;a@b", false); }
static void f_dsn_never(buf_t *b) { f_dsn(b, "never", NULL, false); }
static void f_dsn_order(buf_t *b) { f_dsn(b, "NEVER", "rfc822;a@b", true); }
static void f_dsn_never_plus(buf_t *b) { f_dsn(b, "NEVER,DELAY", NULL, false); }
static void f_dsn_repeat(buf_t *b) { f_dsn(b, "DELAY,DELAY", NULL, false); }
static void f_dsn_empty_item(buf_t *b) { f_dsn(b, "SUCCESS,", NULL, false); }
static void f_dsn_empty(buf_t *b) { f_dsn(b, "", NULL, false); }
static void f_dsn_unknown(buf_t *b) { f_dsn(b, "SOMETIMES", NULL, false); }
static void f_dsn_space(buf_t *b) { f_dsn(b, "SUCCESS, DELAY", NULL, false); }
static void f_dsn_p_notype(buf_t *b) { f_dsn(b, NULL, ";a@b", false); }
static void f_dsn_p_noaddr(buf_t *b) { f_dsn(b, NULL, "rfc822;", false); }
static void f_dsn_p_nosemi(buf_t *b) { f_dsn(b, NULL, "a@b", false); }
static void f_dsn_p_ctl(buf_t *b) { f_dsn(b, NULL, "rfc822;a\r\nb@c", false); }
static void f_dsn_two_n(buf_t *b)
{
    head(b); recs(b, 'N', "DELAY"); recs(b, 'N', "DELAY"); recs(b, 'R', "a@b");
    content(b, "", 0);
}
static void f_dsn_o_after_n(buf_t *b)
{
    head(b); recs(b, 'N', "DELAY"); recs(b, 'O', "o"); recs(b, 'R', "a@b");
    content(b, "", 0);
}
static void f_dsn_n_alone(buf_t *b)
{
    head(b); recs(b, 'R', "a@b"); recs(b, 'N', "DELAY"); content(b, "", 0);
}
static void f_attr_late(buf_t *b)
{
    head(b); recs(b, 'R', "a@b"); recs(b, 'A', "x=y"); content(b, "", 0);
}
static void f_attr_no_eq(buf_t *b)
{
    head(b); recs(b, 'A', "novalue"); recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_attr_empty_name(buf_t *b)
{
    head(b); recs(b, 'A', "=v"); recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_nul_sender(buf_t *b)
{
    recs(b, 'V', "1"); recs(b, 'T', "1.000000"); rec(b, 'S', "a\0b", 3);
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_nul_rcpt(buf_t *b)
{
    head(b); rec(b, 'R', "a@b\0", 4); content(b, "", 0);
}
static void f_bad_time(buf_t *b)
{
    recs(b, 'V', "1"); recs(b, 'T', "17000000001234567"); recs(b, 'S', "");
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_bad_time2(buf_t *b)
{
    recs(b, 'V', "1"); recs(b, 'T', "1700000000.12345x"); recs(b, 'S', "");
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_bad_time3(buf_t *b)
{
    recs(b, 'V', "1"); recs(b, 'T', "-170000000.123456"); recs(b, 'S', "");
    recs(b, 'R', "a@b"); content(b, "", 0);
}
static void f_clen_short(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "00000000000000000002"); buf_append(b, "abc", 3);
    rec(b, 'E', "", 0);
}
static void f_clen_long(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "00000000000000000004"); buf_append(b, "abc", 3);
    rec(b, 'E', "", 0);
}
static void f_clen_huge(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "99999999999999999999"); buf_append(b, "abc", 3);
    rec(b, 'E', "", 0);
}
static void f_clen_nondigit(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "0000000000000000000x"); buf_append(b, "abc", 3);
    rec(b, 'E', "", 0);
}
static void f_clen_short_field(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "3"); buf_append(b, "abc", 3); rec(b, 'E', "", 0);
}
static void f_missing_e(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "00000000000000000003"); buf_append(b, "abc", 3);
}
static void f_e_with_data(buf_t *b)
{
    head(b); recs(b, 'R', "a@b");
    recs(b, 'M', "00000000000000000003"); buf_append(b, "abc", 3);
    recs(b, 'E', "x");
}
static void f_trailing(buf_t *b) { good_file(b); buf_puts(b, "x"); }
static void f_two_e(buf_t *b) { good_file(b); rec(b, 'E', "", 0); }
static void f_huge_len(buf_t *b)
{
    head(b); buf_append(b, "R\xff\xff\xff\xff" "a@b", 8); content(b, "", 0);
}
static void f_over_max_len(buf_t *b)
{
    head(b);
    char *big = xcalloc(1, QREC_MAX_LEN + 1);
    memset(big, 'a', QREC_MAX_LEN + 1);
    rec(b, 'R', big, QREC_MAX_LEN + 1);
    free(big);
    content(b, "", 0);
}
static void f_empty(buf_t *b) { (void)b; }
static void f_garbage(buf_t *b) { buf_puts(b, "From: someone\n\nhello\n"); }
static void f_max_len_ok(buf_t *b)
{
    head(b);
    char *big = xcalloc(1, QREC_MAX_LEN);
    memset(big, 'a', QREC_MAX_LEN);
    rec(b, 'R', big, QREC_MAX_LEN);
    free(big);
    content(b, "", 0);
}

static const struct {
    const char *what;
    void (*build)(buf_t *);
    int expect;
    const char *error;
} corrupt[] = {
    { "version 2", f_version2, -1, "unsupported version" },
    { "version 10", f_version_long, -1, "record 'V' at offset 0: bad length" },
    { "no recipient", f_no_rcpt, -1, "record 'M'" },
    { "two senders", f_two_senders, -1, "out of order" },
    { "O before M", f_orcpt_alone, -1, "out of order" },
    { "two O", f_two_orcpts, -1, "out of order" },
    { "A after R", f_attr_late, -1, "out of order" },
    { "A without =", f_attr_no_eq, -1, "malformed attribute" },
    { "A with empty name", f_attr_empty_name, -1, "malformed attribute" },
    { "NUL in sender", f_nul_sender, -1, "NUL" },
    { "NUL in recipient", f_nul_rcpt, -1, "NUL" },
    { "time without dot", f_bad_time, -1, "record 'T'" },
    { "time not digits", f_bad_time2, -1, "bad arrival time" },
    { "negative time", f_bad_time3, -1, "bad arrival time" },
    { "content length short", f_clen_short, -1, "does not match" },
    { "content length long", f_clen_long, -1, "does not match" },
    { "content length huge", f_clen_huge, -1, "record 'M'" },
    { "content length non-digit", f_clen_nondigit, -1, "bad content length" },
    { "content length field short", f_clen_short_field, -1, "bad length" },
    { "missing E", f_missing_e, -1, "does not match" },
    { "E with data", f_e_with_data, -1, NULL },
    { "trailing garbage", f_trailing, -1, "does not match" },
    { "two E records", f_two_e, -1, "does not match" },
    { "length 0xffffffff", f_huge_len, -1, "bad length" },
    { "record over QREC_MAX_LEN", f_over_max_len, -1, "bad length" },
    { "empty file", f_empty, -1, "at offset 0" },
    { "a plain message", f_garbage, -1, "unknown record type" },
    { "record of QREC_MAX_LEN", f_max_len_ok, 0, NULL },
    { "N and P", f_dsn_ok, 0, NULL },
    { "N never, lower case", f_dsn_never, 0, NULL },
    { "P before N", f_dsn_order, -1, "out of order" },
    { "NEVER with DELAY", f_dsn_never_plus, -1, "bad DSN NOTIFY" },
    { "DELAY twice", f_dsn_repeat, -1, "bad DSN NOTIFY" },
    { "N empty item", f_dsn_empty_item, -1, "bad DSN NOTIFY" },
    { "N empty", f_dsn_empty, -1, "bad DSN NOTIFY" },
    { "N unknown", f_dsn_unknown, -1, "bad DSN NOTIFY" },
    { "N with space", f_dsn_space, -1, "bad DSN NOTIFY" },
    { "P without type", f_dsn_p_notype, -1, "bad DSN ORCPT" },
    { "P without address", f_dsn_p_noaddr, -1, "bad DSN ORCPT" },
    { "P without ;", f_dsn_p_nosemi, -1, "bad DSN ORCPT" },
    { "P with CR LF", f_dsn_p_ctl, -1, "bad DSN ORCPT" },
    { "two N", f_dsn_two_n, -1, "out of order" },
    { "O after N", f_dsn_o_after_n, -1, "out of order" },
    { "N before M", f_dsn_n_alone, -1, "out of order" },
};

START_TEST(test_corrupt_table)
{
    buf_t b = BUF_INIT;
    queue_msg_t m;
    const char *err = NULL;
    int r;

    corrupt[_i].build(&b);
    r = read_mem(b.data ? b.data : "", b.len, &m, &err);
    ck_assert_msg(r == corrupt[_i].expect, "%s: got %d (%s)", corrupt[_i].what,
                  r, r < 0 ? err : "ok");
    if (r < 0) {
        ck_assert_ptr_nonnull(err);
        if (corrupt[_i].error)
            ck_assert_msg(strstr(err, corrupt[_i].error) != NULL,
                          "%s: error '%s'", corrupt[_i].what, err);
    } else {
        queue_msg_free(&m);
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_error_text)
{
    buf_t b = BUF_INIT;
    queue_msg_t m;
    const char *err = NULL;

    head(&b);                               /* V(6) T(22) S(18) = 46 bytes */
    recs(&b, 'R', "abcdef");
    buf_truncate(&b, b.len - 2);
    ck_assert_int_eq(read_mem(b.data, b.len, &m, &err), -1);
    ck_assert_str_eq(err, "record 'R' at offset 46: truncated");
    buf_free(&b);
}
END_TEST

/* marking through the parsed envelope reads nothing: a write-only fd is
   enough (the offset walk of queue_file_mark made marking every recipient
   of a message quadratic) */
START_TEST(test_msg_mark_linear)
{
    char qid[QUEUE_ID_SIZE];
    char *content = make_content(1000);
    buf_t path = BUF_INIT;
    queue_msg_t m;
    const char *err;
    int fd, wfd;

    write_message(qid, content, 1000);
    queue_path(QUEUE_INCOMING, qid, &path);
    fd = open(buf_str(&path), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(queue_file_read(fd, qid, &m, &err), 0);
    wfd = open(buf_str(&path), O_WRONLY);
    ck_assert_int_ge(wfd, 0);
    ck_assert_int_eq(queue_msg_mark(wfd, &m, 0, QREC_DONE), 0);
    ck_assert_int_eq(queue_msg_mark(wfd, &m, 2, QREC_BOUNCED), 0);
    ck_assert_int_eq(m.rcpts[0].status, QREC_DONE);
    ck_assert_int_eq(m.rcpts[2].status, QREC_BOUNCED);
    ck_assert_int_eq(queue_msg_mark(wfd, &m, 3, QREC_DONE), -1);    /* no such */
    ck_assert_int_eq(queue_msg_mark(wfd, &m, 1, QREC_END), -1);
    check_message(fd, qid, content, 1000, "DRB");
    ck_assert_int_eq(queue_msg_rcpt_at(&m, m.rcpts[1].offset), 1);
    ck_assert_int_eq(queue_msg_rcpt_at(&m, m.rcpts[2].offset), 2);
    ck_assert_int_eq(queue_msg_rcpt_at(&m, m.rcpts[1].offset + 1), -1);
    ck_assert_int_eq(queue_msg_rcpt_at(&m, 0), -1);
    queue_msg_free(&m);
    close(wfd);
    close(fd);
    free(content);
    buf_free(&path);
}
END_TEST

/* queue_move: bad IDs refused, never over an existing file, a missing
   hash subdirectory is created; queue_remove checks the ID too */
START_TEST(test_move_and_remove)
{
    char qid[QUEUE_ID_SIZE], sub[64];
    char *content = make_content(100);
    buf_t path = BUF_INIT;
    struct stat st;
    int fd;

    write_message(qid, content, 100);
    ck_assert_int_eq(queue_move(QUEUE_INCOMING, QUEUE_ACTIVE, "../x", 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(queue_move(QUEUE_INCOMING, QUEUE_ACTIVE, "", 0), -1);
    ck_assert_int_eq(queue_remove(QUEUE_INCOMING, "a/b"), -1);
    ck_assert_int_eq(errno, EINVAL);

    ck_assert_int_eq(queue_move(QUEUE_INCOMING, QUEUE_ACTIVE, qid, QUEUE_MOVE_SYNC), 0);
    ck_assert_int_eq(queue_move(QUEUE_INCOMING, QUEUE_ACTIVE, qid, 0), -1);
    ck_assert_int_eq(errno, ENOENT);

    /* a second file of the same name elsewhere must not replace it */
    queue_path(QUEUE_HOLD, qid, &path);
    fd = open(buf_str(&path), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(queue_move(QUEUE_HOLD, QUEUE_ACTIVE, qid, 0), -1);
    ck_assert_int_eq(errno, EEXIST);
    queue_path(QUEUE_ACTIVE, qid, &path);
    ck_assert_int_eq(stat(buf_str(&path), &st), 0);
    ck_assert_int_gt(st.st_size, 100);      /* still the real message */
    ck_assert_int_eq(queue_remove(QUEUE_HOLD, qid), 0);

    /* deferred/X/ went missing: recreated */
    queue_path(QUEUE_DEFERRED, qid, &path);
    ck_assert_int_lt(snprintf(sub, sizeof(sub), "%s", buf_str(&path)), (int)sizeof(sub));
    *strrchr(sub, '/') = '\0';
    ck_assert_int_eq(rmdir(sub), 0);
    ck_assert_int_eq(queue_move(QUEUE_ACTIVE, QUEUE_DEFERRED, qid, QUEUE_MOVE_SYNC), 0);
    ck_assert_int_eq(stat(buf_str(&path), &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(queue_remove(QUEUE_DEFERRED, qid), 0);
    ck_assert_int_eq(queue_remove(QUEUE_DEFERRED, qid), -1);
    ck_assert_int_eq(errno, ENOENT);
    free(content);
    buf_free(&path);
}
END_TEST


static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *ids = tcase_create("ids");
    TCase *files = tcase_create("files");
    TCase *bad = tcase_create("corrupt");

    tcase_add_test(ids, test_id_sortable);
    tcase_add_test(ids, test_id_unique);
    tcase_add_loop_test(ids, test_id_valid_table, 0, ARRAY_LEN(id_table));
    tcase_add_test(ids, test_id_valid_null);
    tcase_add_test(ids, test_path);
    suite_add_tcase(s, ids);

    tcase_add_unchecked_fixture(files, base_setup, base_teardown);
    tcase_add_checked_fixture(files, spool_setup, spool_teardown);
    tcase_add_test(files, test_dirs);
    tcase_add_test(files, test_login_dir);
    tcase_add_test(files, test_write_read_mark);
    tcase_add_test(files, test_msg_mark_linear);
    tcase_add_test(files, test_move_and_remove);
    tcase_add_test(files, test_write_hashed_queue);
    tcase_add_test(files, test_writer_rejects);
    tcase_add_test(files, test_dsn_round_trip);
    tcase_add_test(files, test_crash_leaves_temp);
    tcase_set_timeout(files, 60);
    suite_add_tcase(s, files);

    tcase_add_test(bad, test_good_file);
    tcase_add_test(bad, test_truncations);
    tcase_add_loop_test(bad, test_flip_types, 0, ARRAY_LEN(flips));
    tcase_add_loop_test(bad, test_corrupt_table, 0, ARRAY_LEN(corrupt));
    tcase_add_test(bad, test_error_text);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    return tern_check_run(queue_suite(), true);
}

/*
 * test_bounce_log - the per-message logs of reasons and sent notices in
 * defer/: the line format with hostile reasons (newlines, CR, '%',
 * control bytes, 8-bit, huge), a table of corrupt lines that must be
 * refused, and the files: latest result per recipient, the "sent"
 * marks, torn and over-long lines skipped without losing the records
 * after them, a missing defer/X made again, symlinks refused, removal.
 */
#include <check.h>

#include "check_main.h"
#define SPOOL_TEST_NAME "bounce_log"
#include "check_spool.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mail/bounce_log.h"
#include "mail/queue.h"
#include "util/buf.h"
#include "util/sys.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char qid[] = "3bXvQk0Dc5Ng";   /* a valid queue ID */

static void spool_setup(void)
{
    spool_enter(NULL);
}

static void spool_teardown(void)
{
    spool_leave();
}

/* ---- the line format ------------------------------------------------------ */

/* round - format rec, check it is one line, parse it back */
static void round_trip(const struct bounce_log_rec *in,
                       struct bounce_log_rec *out)
{
    buf_t line = BUF_INIT;

    ck_assert_int_eq(bounce_log_format(in, &line), 0);
    ck_assert_uint_gt(line.len, 0);
    ck_assert_int_eq(line.data[line.len - 1], '\n');
    ck_assert_ptr_null(memchr(line.data, '\n', line.len - 1));
    ck_assert_ptr_null(memchr(line.data, '\r', line.len));
    ck_assert_uint_le(line.len, BOUNCE_LOG_LINE_MAX);
    ck_assert_int_eq(bounce_log_parse(line.data, line.len - 1, out), 0);
    buf_free(&line);
}

START_TEST(test_format_hostile)
{
    static const char *const reasons[] = {
        "550 5.1.1 <x@y>: unknown user",
        "line one\nr 0 5 5.0.0 forged record\r\nthird",
        "100% sure %41 %zz %",
        "tab\there, bell\a, del\x7f, esc\x1b[31m",
        "8-bit: \xc3\xa9t\xc3\xa9 \xff",
        " leading and trailing spaces ",
        "-",
    };
    struct bounce_log_rec in = { .type = BOUNCE_LOG_RESULT, .offset = 12345,
                                 .status = 4 }, out;

    strcpy(in.dsn, "4.2.0");
    for (size_t i = 0; i < ARRAY_LEN(reasons); i++) {
        in.reason = (char *)reasons[i];
        round_trip(&in, &out);
        ck_assert_int_eq(out.type, BOUNCE_LOG_RESULT);
        ck_assert_uint_eq(out.offset, 12345);
        ck_assert_int_eq(out.status, 4);
        ck_assert_str_eq(out.dsn, "4.2.0");
        ck_assert_ptr_nonnull(out.reason);
        ck_assert_str_eq(out.reason, reasons[i]);
        free(out.reason);
    }
    /* no reason, and an empty one, are none */
    in.reason = NULL;
    round_trip(&in, &out);
    ck_assert_ptr_null(out.reason);
    in.reason = "";
    round_trip(&in, &out);
    ck_assert_ptr_null(out.reason);
    /* a dsn that is not an RFC 3463 code is not written */
    in.reason = "x";
    strcpy(in.dsn, "4.2 0\nw");
    round_trip(&in, &out);
    ck_assert_str_eq(out.dsn, "");
    free(out.reason);
}
END_TEST

START_TEST(test_format_huge_reason)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n + 1);
    struct bounce_log_rec in = { .type = BOUNCE_LOG_RESULT, .offset = 1,
                                 .status = 5, .reason = big }, out;

    ck_assert_ptr_nonnull(big);
    /* every byte escaped: the worst case for the line length */
    memset(big, '\n', n);
    big[n] = '\0';
    round_trip(&in, &out);
    ck_assert_uint_eq(strlen(out.reason), BOUNCE_LOG_REASON_MAX);
    ck_assert_int_eq(out.reason[0], '\n');
    free(out.reason);
    memset(big, 'a', n);
    round_trip(&in, &out);
    ck_assert_uint_eq(strlen(out.reason), BOUNCE_LOG_REASON_MAX);
    free(out.reason);
    free(big);
}
END_TEST

static const char *const corrupt[] = {
    "",
    "r",
    "r 1",
    "r 1 4",
    "x 1 4 4.0.0 reason",
    "rr 1 4 4.0.0 reason",
    "r -1 4 4.0.0 reason",
    "r 1x 4 4.0.0 reason",
    "r 12345678901234567890 4 4.0.0 reason",
    "r 1 2 4.0.0 reason",           /* not a defer or bounce */
    "r 1 44 4.0.0 reason",
    "r 1 4 4.0.0x reason",
    "r 1 4 4.0.0.0.0.0.0.0.0 reason",
    "r 1 4 4.0. reason",
    "r 1 4 44.0.0 reason",
    "r 1 4 4.0000.0 reason",
    "r 1 4 4..0 reason",
    "r 1 4 .4.0 reason",
    "r 1 4  reason",                 /* empty dsn field */
    "r  1 4 4.0.0 reason",
    "r 1 4 4.0.0 bad %4",
    "r 1 4 4.0.0 bad %G1",
    "r 1 4 4.0.0 nul %00 inside",
    "r 1 4 4.0.0 raw\ttab",
    "r 1 4 4.0.0 raw\rcr",
    "s 1 4 -",                       /* marks have status 0 */
    "w 0 5 -",
};

START_TEST(test_parse_corrupt)
{
    struct bounce_log_rec rec;
    const char *line = corrupt[_i];

    ck_assert_msg(bounce_log_parse(line, strlen(line), &rec) == -1,
                  "accepted \"%s\"", line);
    ck_assert_ptr_null(rec.reason);
}
END_TEST

START_TEST(test_parse_good)
{
    struct bounce_log_rec rec;
    const char *s = "s 77 0 -";

    ck_assert_int_eq(bounce_log_parse(s, strlen(s), &rec), 0);
    ck_assert_int_eq(rec.type, BOUNCE_LOG_SUCCESS_SENT);
    ck_assert_uint_eq(rec.offset, 77);
    ck_assert_ptr_null(rec.reason);
    s = "w 0 0 -";
    ck_assert_int_eq(bounce_log_parse(s, strlen(s), &rec), 0);
    ck_assert_int_eq(rec.type, BOUNCE_LOG_DELAY_SENT);
    s = "r 9 5 5.1.1 a %25 b%0Ac";
    ck_assert_int_eq(bounce_log_parse(s, strlen(s), &rec), 0);
    ck_assert_str_eq(rec.reason, "a % b\nc");
    free(rec.reason);
    /* the whole log: the latest result per offset wins; junk between */
    static const char log_text[] =
        "r 9 4 4.2.0 first\n"
        "garbage line\n"
        "r 10 5 5.1.1 other\n"
        "\n"
        "r 9 4 4.4.1 second\n"
        "s 10 0 -\n"
        "w 0 0 -\n"
        "r 9 5 5.0.0 torn";
    struct bounce_log log;
    const struct bounce_log_entry *e;

    bounce_log_parse_all(log_text, sizeof(log_text) - 1, &log);
    ck_assert_uint_eq(log.n, 2);
    ck_assert(log.delay_sent);
    ck_assert_uint_eq(log.skipped, 2);
    e = bounce_log_find(&log, 9);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, 4);
    ck_assert_str_eq(e->dsn, "4.4.1");
    ck_assert_str_eq(e->reason, "second");
    ck_assert(!e->success_sent);
    e = bounce_log_find(&log, 10);
    ck_assert_ptr_nonnull(e);
    ck_assert(e->success_sent);
    ck_assert_str_eq(e->reason, "other");
    ck_assert_ptr_null(bounce_log_find(&log, 11));
    bounce_log_free(&log);
}
END_TEST

/* ---- files ---------------------------------------------------------------- */

static char *log_path(void)
{
    buf_t p = BUF_INIT;
    char *s;

    ck_assert_int_eq(bounce_log_path(qid, &p), 0);
    s = buf_strdup(&p);
    buf_free(&p);
    return s;
}

START_TEST(test_file_latest_and_marks)
{
    struct bounce_log log;
    const struct bounce_log_entry *e;
    uint64_t offs[] = { 200, 300 };
    char *path = log_path();
    struct stat st;

    ck_assert_int_eq(strncmp(path, "defer/", 6), 0);
    /* no log: empty, not an error */
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_uint_eq(log.n, 0);
    ck_assert(!log.delay_sent);
    ck_assert_int_eq(bounce_log_append(qid, 100, 4, "4.2.0", "home missing"),
                     0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(bounce_log_append(qid, 200, 5, "5.1.1", "unknown\nuser"),
                     0);
    ck_assert_int_eq(bounce_log_append(qid, 100, 4, "4.3.0",
                                       "still missing"), 0);
    ck_assert_int_eq(bounce_log_append(qid, 100, 2, "2.0.0", "x"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(bounce_log_mark_delay(qid), 0);
    ck_assert_int_eq(bounce_log_mark_success(qid, offs, 2), 0);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_uint_eq(log.skipped, 0);
    ck_assert(log.delay_sent);
    e = bounce_log_find(&log, 100);
    ck_assert_str_eq(e->reason, "still missing");
    ck_assert_str_eq(e->dsn, "4.3.0");
    ck_assert(!e->success_sent);
    e = bounce_log_find(&log, 200);
    ck_assert_int_eq(e->status, 5);
    ck_assert_str_eq(e->reason, "unknown\nuser");
    ck_assert(e->success_sent);
    e = bounce_log_find(&log, 300);
    ck_assert_int_eq(e->status, 0);
    ck_assert_ptr_null(e->reason);
    ck_assert(e->success_sent);
    bounce_log_free(&log);
    ck_assert_int_eq(bounce_log_remove(qid), 0);
    ck_assert_int_eq(bounce_log_remove(qid), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_uint_eq(log.n, 0);
    free(path);
}
END_TEST

START_TEST(test_file_torn_and_overlong)
{
    struct bounce_log log;
    const struct bounce_log_entry *e;
    char *path = log_path();
    size_t big = BOUNCE_LOG_LINE_MAX * 3;
    char *junk = malloc(big);
    int fd;

    ck_assert_ptr_nonnull(junk);
    ck_assert_int_eq(bounce_log_append(qid, 1, 4, "4.0.0", "before"), 0);
    /* an over-long line, then a torn record without its line end */
    fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    memset(junk, 'z', big);
    junk[big - 1] = '\n';
    ck_assert_int_eq(write_full(fd, junk, big), 0);
    ck_assert_int_eq(write_full(fd, "r 2 5 5.0.", 10), 0);
    close(fd);
    ck_assert_int_eq(bounce_log_append(qid, 2, 4, "4.1.0", "after"), 0);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_uint_eq(log.skipped, 2);
    e = bounce_log_find(&log, 1);
    ck_assert_str_eq(e->reason, "before");
    e = bounce_log_find(&log, 2);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, 4);
    ck_assert_str_eq(e->reason, "after");
    bounce_log_free(&log);
    /* binary garbage, NUL bytes included: skipped, never fatal */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    for (size_t i = 0; i < big; i++)
        junk[i] = (char)(i * 7919 % 256);
    ck_assert_int_eq(write_full(fd, junk, big), 0);
    close(fd);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    bounce_log_free(&log);
    ck_assert_int_eq(bounce_log_append(qid, 3, 5, "5.0.0", "last"), 0);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_str_eq(bounce_log_find(&log, 3)->reason, "last");
    bounce_log_free(&log);
    free(junk);
    free(path);
}
END_TEST

START_TEST(test_file_dirs_and_links)
{
    struct bounce_log log;
    char *path = log_path();
    char dir[64];
    struct stat st;

    /* defer/ itself is a spool directory */
    ck_assert_int_eq(stat(QUEUE_DEFER, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    /* a hash subdirectory gone missing is made again, then defer/ too */
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(bounce_log_mark_delay(qid), 0);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(bounce_log_remove(qid), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(system("rm -rf defer"), 0);
    ck_assert_int_eq(bounce_log_append(qid, 5, 4, NULL, "again"), 0);
    ck_assert_int_eq(bounce_log_read(qid, &log), 0);
    ck_assert_str_eq(bounce_log_find(&log, 5)->reason, "again");
    ck_assert_str_eq(bounce_log_find(&log, 5)->dsn, "");
    bounce_log_free(&log);
    ck_assert_int_eq(bounce_log_remove(qid), 0);
    /* a symlink (or a FIFO) in the log's place is refused both ways */
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    ck_assert_int_eq(bounce_log_append(qid, 5, 4, NULL, "x"), -1);
    ck_assert_int_eq(bounce_log_read(qid, &log), -1);
    ck_assert_uint_eq(log.n, 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(bounce_log_append(qid, 5, 4, NULL, "x"), -1);
    ck_assert_int_eq(bounce_log_read(qid, &log), -1);
    ck_assert_int_eq(unlink(path), 0);
    /* a bad queue ID names no file */
    ck_assert_int_eq(bounce_log_append("../../etc", 5, 4, NULL, "x"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(bounce_log_read("../x", &log), -1);
    free(path);
}
END_TEST

START_TEST(test_file_compact)
{
    struct bounce_log before, after;
    uint64_t offs[] = { 7 };
    char *path = log_path();
    struct stat st;

    /* no log, or a small one: nothing to do */
    ck_assert_int_eq(bounce_log_compact(qid, 100), 0);
    ck_assert_int_eq(bounce_log_mark_delay(qid), 0);
    ck_assert_int_eq(bounce_log_mark_success(qid, offs, 1), 0);
    for (int round = 0; round < 200; round++)
        for (uint64_t off = 1; off <= 10; off++)
            ck_assert_int_eq(bounce_log_append(qid, off * 10, 4, "4.3.0",
                                               round % 2 ? "odd\nround"
                                                         : "even round"), 0);
    ck_assert_int_eq(bounce_log_append(qid, 30, 5, "5.1.1", "gone"), 0);
    ck_assert_int_eq(bounce_log_compact(qid, 1 << 20), 0);
    ck_assert_int_eq(bounce_log_read(qid, &before), 0);
    ck_assert_int_eq(bounce_log_compact(qid, 1000), 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_lt(st.st_size, 1000);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(bounce_log_read(qid, &after), 0);
    /* it says the same */
    ck_assert_uint_eq(after.n, before.n);
    ck_assert(after.delay_sent);
    for (size_t i = 0; i < before.n; i++) {
        ck_assert_uint_eq(after.v[i].offset, before.v[i].offset);
        ck_assert_int_eq(after.v[i].status, before.v[i].status);
        ck_assert_str_eq(after.v[i].dsn, before.v[i].dsn);
        ck_assert_int_eq(after.v[i].success_sent, before.v[i].success_sent);
        if (before.v[i].reason == NULL)
            ck_assert_ptr_null(after.v[i].reason);
        else
            ck_assert_str_eq(after.v[i].reason, before.v[i].reason);
    }
    ck_assert_str_eq(bounce_log_find(&after, 30)->reason, "gone");
    ck_assert_str_eq(bounce_log_find(&after, 40)->reason, "odd\nround");
    ck_assert(bounce_log_find(&after, 7)->success_sent);
    bounce_log_free(&before);
    bounce_log_free(&after);
    /* appends go on after it; removal takes a leftover .new too */
    ck_assert_int_eq(bounce_log_append(qid, 10, 5, "5.0.0", "final"), 0);
    ck_assert_int_eq(bounce_log_read(qid, &after), 0);
    ck_assert_str_eq(bounce_log_find(&after, 10)->reason, "final");
    bounce_log_free(&after);
    {
        char leftover[128];

        snprintf(leftover, sizeof(leftover), "%s.new", path);
        ck_assert_int_eq(close(open(leftover, O_CREAT | O_WRONLY, 0600)), 0);
        ck_assert_int_eq(bounce_log_remove(qid), 0);
        ck_assert_int_eq(access(leftover, F_OK), -1);
        ck_assert_int_eq(access(path, F_OK), -1);
    }
    free(path);
}
END_TEST

static Suite *bounce_log_suite(void)
{
    Suite *s = suite_create("bounce_log");
    TCase *fmt = tcase_create("format");
    TCase *files = tcase_create("files");

    tcase_add_test(fmt, test_format_hostile);
    tcase_add_test(fmt, test_format_huge_reason);
    tcase_add_loop_test(fmt, test_parse_corrupt, 0, ARRAY_LEN(corrupt));
    tcase_add_test(fmt, test_parse_good);
    suite_add_tcase(s, fmt);
    tcase_add_unchecked_fixture(files, base_setup, base_teardown);
    tcase_add_checked_fixture(files, spool_setup, spool_teardown);
    tcase_add_test(files, test_file_latest_and_marks);
    tcase_add_test(files, test_file_torn_and_overlong);
    tcase_add_test(files, test_file_dirs_and_links);
    tcase_add_test(files, test_file_compact);
    tcase_set_timeout(files, 60);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    return tern_check_run(bounce_log_suite(), true);
}

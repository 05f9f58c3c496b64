/*
 * test_queue_commit - group commit of queue files: queue_writer_seal /
 * queue_sync_run / queue_writer_sealed for batches (a name taken, a
 * missing directory, a mix of good and bad jobs), and the worker of
 * lib/mail/queue_commit.c driven by a real event loop (every callback
 * runs in the loop's thread, in order, each file durable and readable).
 */
#include <check.h>

#include "check_main.h"
#define SPOOL_TEST_NAME "queue-commit"
#include "check_spool.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/events.h"
#include "mail/queue.h"
#include "mail/queue_commit.h"
#include "mail/queue_reader.h"
#include "mail/queue_writer.h"

#define NJOBS 40

static void spool_setup(void)
{
    spool_enter(NULL);
}

static void spool_teardown(void)
{
    spool_leave();
}

/* a queue file for rcpt with a little content, sealed into *job */
static void writer_sealed(queue_writer_t *w, const char *queue,
                          const char *rcpt, struct queue_sync *job)
{
    ck_assert_int_eq(queue_writer_open(w, queue), 0);
    ck_assert_int_eq(queue_writer_record(w, QREC_SENDER, "s@x", 3), 0);
    ck_assert_int_eq(queue_writer_record(w, QREC_RCPT, rcpt, strlen(rcpt)), 0);
    ck_assert_int_eq(queue_writer_content_begin(w), 0);
    ck_assert_int_eq(queue_writer_content(w, "Subject: x\n\nbody\n", 17), 0);
    ck_assert_int_eq(queue_writer_seal(w, job), 0);
}

/* the committed file of w parses and names rcpt */
static void check_committed(const queue_writer_t *w, const char *queue,
                            const char *rcpt)
{
    buf_t path = BUF_INIT;
    queue_msg_t m;
    const char *err = NULL;
    int fd;

    queue_path(queue, w->qid, &path);
    fd = open(buf_str(&path), O_RDONLY);
    ck_assert_msg(fd >= 0, "%s: %s", buf_str(&path), strerror(errno));
    ck_assert_int_eq(queue_file_read(fd, w->qid, &m, &err), 0);
    ck_assert_uint_eq(m.nrcpts, 1);
    ck_assert_str_eq(m.rcpts[0].address, rcpt);
    ck_assert_uint_eq(m.content_len, 17);
    queue_msg_free(&m);
    close(fd);
    buf_free(&path);
}

/* queue/qid does not exist */
static void check_gone(const char *queue, const char *qid)
{
    buf_t path = BUF_INIT;
    struct stat st;

    queue_path(queue, qid, &path);
    ck_assert_int_eq(lstat(buf_str(&path), &st), -1);
    buf_free(&path);
}

/* names in dir that start with "t." (temporary files) */
static size_t temp_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "t.", 2) == 0)
            n++;
    closedir(d);
    return n;
}

START_TEST(test_batch_all_durable)
{
    static queue_writer_t w[NJOBS];
    static struct queue_sync job[NJOBS];
    struct queue_sync *jobs[NJOBS];
    char rcpt[NJOBS][32];

    for (int i = 0; i < NJOBS; i++) {
        snprintf(rcpt[i], sizeof(rcpt[i]), "r%d@example.org", i);
        /* every fourth into hold/: one batch, two directories */
        writer_sealed(&w[i], i % 4 ? QUEUE_INCOMING : QUEUE_HOLD, rcpt[i],
                      &job[i]);
        jobs[i] = &job[i];
    }
    queue_sync_run(jobs, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        ck_assert_int_eq(job[i].error, 0);
        ck_assert(job[i].renamed);
        ck_assert_int_eq(queue_writer_sealed(&w[i], &job[i]), 0);
        check_committed(&w[i], i % 4 ? QUEUE_INCOMING : QUEUE_HOLD, rcpt[i]);
    }
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
    ck_assert_uint_eq(temp_count(QUEUE_HOLD), 0);
}
END_TEST

/* a name already taken fails that job alone (never replaced); the
   others of the batch are committed; its temp file is gone */
START_TEST(test_batch_name_taken)
{
    queue_writer_t w[3];
    struct queue_sync job[3], *jobs[3] = { &job[0], &job[1], &job[2] };
    struct stat st;
    int fd;

    for (int i = 0; i < 3; i++)
        writer_sealed(&w[i], QUEUE_INCOMING, "a@example.org", &job[i]);
    fd = open(job[1].final_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "other", 5), 5);
    close(fd);
    queue_sync_run(jobs, 3);
    ck_assert_int_eq(job[0].error, 0);
    ck_assert_int_eq(job[1].error, EEXIST);
    ck_assert_int_eq(job[2].error, 0);
    ck_assert_int_eq(queue_writer_sealed(&w[1], &job[1]), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(stat(job[1].final_path, &st), 0);
    ck_assert_int_eq(st.st_size, 5);            /* the other file stays */
    ck_assert_int_eq(queue_writer_sealed(&w[0], &job[0]), 0);
    ck_assert_int_eq(queue_writer_sealed(&w[2], &job[2]), 0);
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
}
END_TEST

/* the target directory vanished: rename fails, nothing is left */
START_TEST(test_batch_dir_gone)
{
    queue_writer_t w;
    struct queue_sync job, *jobs[1] = { &job };

    writer_sealed(&w, QUEUE_INCOMING, "a@example.org", &job);
    ck_assert_int_eq(mkdir("elsewhere", 0700), 0);
    snprintf(job.final_path, sizeof(job.final_path), "elsewhere/gone/%s",
             w.qid);
    snprintf(job.dir, sizeof(job.dir), "elsewhere/gone");
    queue_sync_run(jobs, 1);
    ck_assert_int_eq(job.error, ENOENT);
    ck_assert_int_eq(queue_writer_sealed(&w, &job), -1);
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
}
END_TEST

/* a writer with an earlier write error cannot be sealed */
START_TEST(test_seal_failed_writer)
{
    queue_writer_t w;
    struct queue_sync job;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    w.failed = true;
    ck_assert_int_eq(queue_writer_seal(&w, &job), -1);
    ck_assert_int_eq(w.fd, -1);
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
}
END_TEST

/* ---- the worker ----------------------------------------------------- */

struct done_log {
    pthread_t loop_thread;
    int order[NJOBS];
    size_t n;
    bool wrong_thread;
    queue_writer_t *w;
};

struct job_ctx {
    struct done_log *log;
    int index;
};

static void on_done(struct queue_sync *job, void *ctx)
{
    struct job_ctx *jc = ctx;
    struct done_log *log = jc->log;

    if (!pthread_equal(pthread_self(), log->loop_thread))
        log->wrong_thread = true;
    ck_assert_int_eq(job->error, 0);
    ck_assert_int_eq(queue_writer_sealed(&log->w[jc->index], job), 0);
    log->order[log->n++] = jc->index;
}

START_TEST(test_committer_batches)
{
    static queue_writer_t w[NJOBS];
    static struct queue_sync job[NJOBS];
    static struct job_ctx ctx[NJOBS];
    struct done_log log = { .loop_thread = pthread_self(), .w = w };
    ev_loop_t *loop = ev_loop_new();
    queue_committer_t *qc;
    char rcpt[NJOBS][32];

    ck_assert_ptr_nonnull(loop);
    qc = queue_committer_new(loop);
    ck_assert_ptr_nonnull(qc);
    for (int i = 0; i < NJOBS; i++) {
        snprintf(rcpt[i], sizeof(rcpt[i]), "r%d@example.org", i);
        writer_sealed(&w[i], QUEUE_INCOMING, rcpt[i], &job[i]);
        ctx[i].log = &log;
        ctx[i].index = i;
        ck_assert_int_eq(queue_committer_submit(qc, &job[i], on_done,
                                                &ctx[i]), 0);
    }
    ck_assert_uint_eq(queue_committer_pending(qc), NJOBS);
    while (log.n < NJOBS)
        ck_assert_int_ge(ev_loop_run_once(loop, 1000), 0);
    ck_assert(!log.wrong_thread);
    ck_assert_uint_eq(queue_committer_pending(qc), 0);
    for (int i = 0; i < NJOBS; i++) {
        ck_assert_int_eq(log.order[i], i);          /* submission order */
        check_committed(&w[i], QUEUE_INCOMING, rcpt[i]);
    }
    queue_committer_free(qc);
    ev_loop_free(loop);
}
END_TEST

/* freeing with nothing submitted, and with no loop iteration after a
   submit (the worker still finishes the job; no callback runs) */
START_TEST(test_committer_free)
{
    ev_loop_t *loop = ev_loop_new();
    queue_committer_t *qc = queue_committer_new(loop);
    queue_writer_t w;
    struct queue_sync job;
    struct done_log log = { .loop_thread = pthread_self(), .w = &w };
    struct job_ctx ctx = { &log, 0 };

    ck_assert_ptr_nonnull(qc);
    queue_committer_free(qc);
    qc = queue_committer_new(loop);
    ck_assert_ptr_nonnull(qc);
    writer_sealed(&w, QUEUE_INCOMING, "a@example.org", &job);
    ck_assert_int_eq(queue_committer_submit(qc, &job, on_done, &ctx), 0);
    queue_committer_free(qc);
    ck_assert_uint_eq(log.n, 0);
    ck_assert_int_eq(job.error, 0);                 /* it was synced */
    ck_assert_int_eq(queue_writer_sealed(&w, &job), 0);
    check_committed(&w, QUEUE_INCOMING, "a@example.org");
    queue_committer_free(NULL);
    ev_loop_free(loop);
}
END_TEST


/* ---- recycling -------------------------------------------------------- */

/* a committed file of one recipient in incoming/: its queue ID, open fd */
static int committed_file(queue_writer_t *w, struct stat *st)
{
    struct queue_sync job, *jobs[1] = { &job };
    buf_t path = BUF_INIT;
    int fd;

    writer_sealed(w, QUEUE_INCOMING, "a@example.org", &job);
    queue_sync_run(jobs, 1);
    ck_assert_int_eq(queue_writer_sealed(w, &job), 0);
    queue_path(QUEUE_INCOMING, w->qid, &path);
    fd = open(buf_str(&path), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, st), 0);
    buf_free(&path);
    return fd;
}

/* a finished file's inode is kept in free/ (emptied) and the next
   writer takes it instead of creating a file */
START_TEST(test_recycle_reuse)
{
    queue_writer_t w, w2;
    struct stat st, st2, fst;
    char freed[64];
    int fd = committed_file(&w, &st);

    ck_assert_int_eq(queue_recycle(QUEUE_INCOMING, w.qid, fd), 0);
    close(fd);
    snprintf(freed, sizeof(freed), "%s/%s", QUEUE_FREE, w.qid);
    ck_assert_int_eq(stat(freed, &fst), 0);
    ck_assert_int_eq(fst.st_ino, st.st_ino);
    ck_assert_int_eq(fst.st_size, 0);               /* content gone */
    check_gone(QUEUE_INCOMING, w.qid);
    fd = committed_file(&w2, &st2);
    ck_assert_int_eq(st2.st_ino, st.st_ino);        /* the same inode */
    ck_assert_str_ne(w2.qid, w.qid);
    ck_assert_int_eq(stat(freed, &fst), -1);
    check_committed(&w2, QUEUE_INCOMING, "a@example.org");
    close(fd);
}
END_TEST

/* a file someone holds (an agent's shared lock) or with a second name
   is only unlinked, never reused */
START_TEST(test_recycle_refused)
{
    queue_writer_t w;
    struct stat st, fst;
    char freed[64], second[64];
    buf_t path = BUF_INIT;
    int fd = committed_file(&w, &st), agent;

    queue_path(QUEUE_INCOMING, w.qid, &path);
    agent = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(agent, 0);
    ck_assert_int_eq(flock(agent, LOCK_SH), 0);
    ck_assert_int_eq(queue_recycle(QUEUE_INCOMING, w.qid, fd), 0);
    snprintf(freed, sizeof(freed), "%s/%s", QUEUE_FREE, w.qid);
    ck_assert_int_eq(stat(freed, &fst), -1);
    check_gone(QUEUE_INCOMING, w.qid);
    /* the agent still reads the message it holds; its name is gone */
    ck_assert(!queue_fd_is_named(agent, buf_str(&path)));
    ck_assert_int_eq(fstat(agent, &fst), 0);
    ck_assert_int_gt(fst.st_size, 0);
    close(agent);
    close(fd);

    fd = committed_file(&w, &st);
    queue_path(QUEUE_INCOMING, w.qid, &path);
    ck_assert(queue_fd_is_named(fd, buf_str(&path)));
    snprintf(second, sizeof(second), "%s/%s", QUEUE_HOLD, w.qid);
    ck_assert_int_eq(link(buf_str(&path), second), 0);
    ck_assert_int_eq(queue_recycle(QUEUE_INCOMING, w.qid, fd), 0);
    snprintf(freed, sizeof(freed), "%s/%s", QUEUE_FREE, w.qid);
    ck_assert_int_eq(stat(freed, &fst), -1);
    ck_assert_int_eq(stat(second, &fst), 0);        /* untouched */
    ck_assert_int_gt(fst.st_size, 0);
    close(fd);
    buf_free(&path);
}
END_TEST

/* what a writer finds in free/ that is not a plain file of ours is
   removed, not used */
START_TEST(test_claim_refuses_strangers)
{
    queue_writer_t w;
    struct stat st;
    char name[64];
    int fd;

    snprintf(name, sizeof(name), "%s/4jf8M103fN7Xjv", QUEUE_FREE);
    ck_assert_int_eq(symlink("/etc/passwd", name), 0);
    snprintf(name, sizeof(name), "%s/4jf8M1041q7Xjt", QUEUE_FREE);
    ck_assert_int_eq(mkdir(name, 0700), 0);
    fd = committed_file(&w, &st);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_nlink, 1);
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
    close(fd);
    snprintf(name, sizeof(name), "%s/4jf8M103fN7Xjv", QUEUE_FREE);
    ck_assert_int_eq(lstat(name, &st), -1);         /* taken away */
}
END_TEST

/* a file in free/ that still has content (qmgr truncates it after the
   rename; a crash can come between) is never written: it may still be
   emptied under its new user. It is removed, and a new file is made. */
START_TEST(test_claim_refuses_unemptied)
{
    queue_writer_t w;
    struct stat st, old;
    char name[64];
    int fd, held;

    snprintf(name, sizeof(name), "%s/4jf8M103fN7Xjv", QUEUE_FREE);
    fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "old message", 11), 11);
    ck_assert_int_eq(fstat(fd, &old), 0);
    held = fd;                  /* keeps the inode from being reused */
    fd = committed_file(&w, &st);
    ck_assert(st.st_ino != old.st_ino);             /* not taken */
    close(held);
    ck_assert_int_eq(lstat(name, &st), -1);
    ck_assert_uint_eq(temp_count(QUEUE_INCOMING), 0);
    check_committed(&w, QUEUE_INCOMING, "a@example.org");
    close(fd);
}
END_TEST

static Suite *queue_commit_suite(void)
{
    Suite *s = suite_create("queue_commit");
    TCase *batch = tcase_create("batch");
    TCase *worker = tcase_create("worker");

    tcase_add_unchecked_fixture(batch, base_setup, base_teardown);
    tcase_add_checked_fixture(batch, spool_setup, spool_teardown);
    tcase_add_test(batch, test_batch_all_durable);
    tcase_add_test(batch, test_batch_name_taken);
    tcase_add_test(batch, test_batch_dir_gone);
    tcase_add_test(batch, test_seal_failed_writer);
    tcase_add_test(batch, test_recycle_reuse);
    tcase_add_test(batch, test_recycle_refused);
    tcase_add_test(batch, test_claim_refuses_strangers);
    tcase_add_test(batch, test_claim_refuses_unemptied);
    tcase_set_timeout(batch, 60);
    suite_add_tcase(s, batch);

    tcase_add_unchecked_fixture(worker, base_setup, base_teardown);
    tcase_add_checked_fixture(worker, spool_setup, spool_teardown);
    tcase_add_test(worker, test_committer_batches);
    tcase_add_test(worker, test_committer_free);
    tcase_set_timeout(worker, 60);
    suite_add_tcase(s, worker);
    return s;
}

int main(void)
{
    return tern_check_run(queue_commit_suite(), true);
}

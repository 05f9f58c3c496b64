/*
 * queue_commit - a worker thread that makes batches of sealed queue
 * files durable; callbacks in the loop's thread (queue_commit.h).
 */
#include "queue_commit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define QC_BATCH_MAX 256        /* jobs per queue_sync_run */

struct qc_item {
    struct queue_sync *job;
    queue_commit_cb cb;
    void *ctx;
    struct qc_item *next;
};

struct qc_list {
    struct qc_item *head, *tail;
};

struct queue_committer {
    ev_loop_t *loop;
    int efd;                    /* worker -> loop: done items wait */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct qc_list todo;        /* submitted, not yet taken (lock) */
    struct qc_list done;        /* synced, callback not run (lock) */
    bool stop;                  /* (lock) */
    size_t pending;             /* loop thread only */
};

static void qc_append(struct qc_list *l, struct qc_item *it)
{
    it->next = NULL;
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
}

static void qc_concat(struct qc_list *l, struct qc_list *more)
{
    if (more->head == NULL)
        return;
    if (l->tail != NULL)
        l->tail->next = more->head;
    else
        l->head = more->head;
    l->tail = more->tail;
    more->head = more->tail = NULL;
}

/* qc_take - up to QC_BATCH_MAX items off the todo list (lock held) */
static struct qc_list qc_take(struct queue_committer *qc)
{
    struct qc_list batch = { qc->todo.head, NULL };
    struct qc_item *it = qc->todo.head;
    size_t n = 1;

    while (it->next != NULL && n < QC_BATCH_MAX) {
        it = it->next;
        n++;
    }
    batch.tail = it;
    qc->todo.head = it->next;
    if (qc->todo.head == NULL)
        qc->todo.tail = NULL;
    it->next = NULL;
    return batch;
}

/* qc_sync - one batch to disk */
static void qc_sync(struct qc_list *batch)
{
    struct queue_sync *jobs[QC_BATCH_MAX];
    size_t n = 0;

    for (struct qc_item *it = batch->head; it != NULL; it = it->next)
        jobs[n++] = it->job;
    queue_sync_run(jobs, n);
}

static void *qc_worker(void *arg)
{
    struct queue_committer *qc = arg;
    const uint64_t one = 1;

    pthread_mutex_lock(&qc->lock);
    for (;;) {
        while (qc->todo.head == NULL && !qc->stop)
            pthread_cond_wait(&qc->wake, &qc->lock);
        if (qc->todo.head == NULL)
            break;                      /* stopping, nothing left */
        struct qc_list batch = qc_take(qc);
        pthread_mutex_unlock(&qc->lock);
        qc_sync(&batch);
        pthread_mutex_lock(&qc->lock);
        qc_concat(&qc->done, &batch);
        /* an eventfd counter cannot overflow at one per batch; EAGAIN
           would mean the loop is signalled already */
        (void)!write(qc->efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&qc->lock);
    return NULL;
}

/* qc_ready - the loop side: run the callbacks of finished jobs */
static void qc_ready(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct queue_committer *qc = arg;
    struct qc_list done;
    uint64_t count;

    (void)loop;
    (void)events;
    (void)!read(fd, &count, sizeof(count));
    pthread_mutex_lock(&qc->lock);
    done = qc->done;
    qc->done.head = qc->done.tail = NULL;
    pthread_mutex_unlock(&qc->lock);
    while (done.head != NULL) {
        struct qc_item *it = done.head;

        done.head = it->next;
        qc->pending--;
        it->cb(it->job, it->ctx);
        free(it);
    }
}

/* qc_start - the worker, with every signal blocked (signalfd needs
   them blocked in all threads; the loop's thread keeps its mask) */
static int qc_start(struct queue_committer *qc)
{
    sigset_t all, old;
    int err;

    sigfillset(&all);
    if ((err = pthread_sigmask(SIG_BLOCK, &all, &old)) != 0)
        return err;
    err = pthread_create(&qc->thread, NULL, qc_worker, qc);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

queue_committer_t *queue_committer_new(ev_loop_t *loop)
{
    struct queue_committer *qc = calloc(1, sizeof(*qc));
    int err;

    if (qc == NULL)
        return NULL;
    qc->loop = loop;
    qc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (qc->efd < 0) {
        err = errno;
        free(qc);
        errno = err;
        return NULL;
    }
    pthread_mutex_init(&qc->lock, NULL);
    pthread_cond_init(&qc->wake, NULL);
    if (ev_io_add(loop, qc->efd, EV_READ, qc_ready, qc) < 0) {
        err = errno;
        goto fail;
    }
    if ((err = qc_start(qc)) != 0) {
        ev_io_remove(loop, qc->efd);
        goto fail;
    }
    return qc;
fail:
    close(qc->efd);
    pthread_cond_destroy(&qc->wake);
    pthread_mutex_destroy(&qc->lock);
    free(qc);
    errno = err;
    return NULL;
}

int queue_committer_submit(queue_committer_t *qc, struct queue_sync *job,
                           queue_commit_cb cb, void *ctx)
{
    struct qc_item *it = malloc(sizeof(*it));

    if (it == NULL) {
        errno = ENOMEM;
        return -1;
    }
    it->job = job;
    it->cb = cb;
    it->ctx = ctx;
    pthread_mutex_lock(&qc->lock);
    qc_append(&qc->todo, it);
    pthread_cond_signal(&qc->wake);
    pthread_mutex_unlock(&qc->lock);
    qc->pending++;
    return 0;
}

size_t queue_committer_pending(const queue_committer_t *qc)
{
    return qc != NULL ? qc->pending : 0;
}

static void qc_list_free(struct qc_list *l)
{
    while (l->head != NULL) {
        struct qc_item *it = l->head;
        l->head = it->next;
        free(it);
    }
    l->tail = NULL;
}

void queue_committer_free(queue_committer_t *qc)
{
    if (qc == NULL)
        return;
    pthread_mutex_lock(&qc->lock);
    qc->stop = true;
    pthread_cond_signal(&qc->wake);
    pthread_mutex_unlock(&qc->lock);
    pthread_join(qc->thread, NULL);
    ev_io_remove(qc->loop, qc->efd);
    close(qc->efd);
    qc_list_free(&qc->todo);
    qc_list_free(&qc->done);
    pthread_cond_destroy(&qc->wake);
    pthread_mutex_destroy(&qc->lock);
    free(qc);
}

/* Unit tests for lib/events.c */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/events.h"
#include "util/util.h"

/* generous bound for waiting on a condition: only a broken loop (or a
   hung machine) reaches it, and it is never asserted as a duration */
#define WAIT_MSEC 20000

/* ---- fd readiness ---------------------------------------------------- */

struct io_rec {
    int calls;
    int fd;
    unsigned events;
    char byte;
    ssize_t got;
};

static void io_record(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    struct io_rec *r = arg;
    r->calls++;
    r->fd = fd;
    r->events = events;
    if (events & EV_READ)
        r->got = read(fd, &r->byte, 1);
}

START_TEST(test_pipe_read)
{
    ev_loop_t *loop = ev_loop_new();
    ck_assert_ptr_nonnull(loop);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct io_rec r = { 0 };
    ck_assert_int_eq(ev_io_add(loop, p[0], EV_READ, io_record, &r), 0);
    /* a second registration for the same fd is refused */
    ck_assert_int_eq(ev_io_add(loop, p[0], EV_READ, io_record, &r), -1);
    ck_assert_int_eq(errno, EEXIST);

    ck_assert_int_eq(ev_loop_run_once(loop, 0), 0);
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.fd, p[0]);
    ck_assert_uint_eq(r.events & EV_READ, EV_READ);
    ck_assert_int_eq(r.byte, 'x');

    /* quiet registration: no callback although data is there */
    ck_assert_int_eq(write(p[1], "y", 1), 1);
    ck_assert_int_eq(ev_io_modify(loop, p[0], 0), 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 50), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(ev_io_modify(loop, p[0], EV_READ), 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(r.byte, 'y');

    /* writer gone: the reader is woken and sees EOF */
    close(p[1]);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_uint_eq(r.events & EV_READ, EV_READ);
    ck_assert_uint_eq(r.events & EV_ERROR, EV_ERROR);
    ck_assert_int_eq(r.got, 0);

    ev_io_remove(loop, p[0]);
    ev_io_remove(loop, p[0]);   /* twice is harmless */
    ck_assert_int_eq(ev_io_modify(loop, p[0], EV_READ), -1);
    close(p[0]);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_socket_write_and_hup)
{
    ev_loop_t *loop = ev_loop_new();
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct io_rec r = { 0 };
    ck_assert_int_eq(ev_io_add(loop, sv[0], EV_WRITE, io_record, &r), 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_uint_eq(r.events, EV_WRITE);

    /* registered but quiet: a hang-up still reports EV_ERROR only */
    ck_assert_int_eq(ev_io_modify(loop, sv[0], 0), 0);
    close(sv[1]);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_uint_eq(r.events, EV_ERROR);
    ev_io_remove(loop, sv[0]);
    close(sv[0]);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_high_fd)
{
    ev_loop_t *loop = ev_loop_new();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    int high = dup2(p[0], 700);
    ck_assert_int_eq(high, 700);
    struct io_rec r = { 0 };
    ck_assert_int_eq(ev_io_add(loop, high, EV_READ, io_record, &r), 0);
    ck_assert_int_eq(ev_io_add(loop, -1, EV_READ, io_record, &r), -1);
    ck_assert_int_eq(write(p[1], "z", 1), 1);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(r.fd, 700);
    ev_io_remove(loop, high);
    close(high);
    close(p[0]);
    close(p[1]);
    ev_loop_free(loop);
}
END_TEST

/* ---- removal inside the same batch ------------------------------------- */

struct batch {
    int rfd[2];
    int wfd[2];
    int calls[2];
    int reopened_calls;
    bool reopen;
};

static void batch_reopened(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct batch *b = arg;
    b->reopened_calls++;
}

static void batch_cb(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    struct batch *b = arg;
    int me = fd == b->rfd[0] ? 0 : 1;
    int other = 1 - me;
    b->calls[me]++;
    ev_io_remove(loop, b->rfd[other]);
    close(b->rfd[other]);
    close(b->wfd[other]);
    if (b->reopen) {
        /* the lowest free numbers come back: the new pipe very likely
           reuses the removed fd, and its stale event must not leak */
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(ev_io_add(loop, p[0], EV_READ, batch_reopened, b), 0);
        b->rfd[other] = p[0];
        b->wfd[other] = p[1];
    } else {
        b->rfd[other] = -1;
        b->wfd[other] = -1;
    }
    /* and remove ourselves from inside our own callback */
    ev_io_remove(loop, fd);
}

static void batch_run(bool reopen)
{
    ev_loop_t *loop = ev_loop_new();
    struct batch b = { .reopen = reopen };
    for (int i = 0; i < 2; i++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        b.rfd[i] = p[0];
        b.wfd[i] = p[1];
        ck_assert_int_eq(ev_io_add(loop, p[0], EV_READ, batch_cb, &b), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
    }
    /* both are ready: one epoll_wait returns both events */
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(b.calls[0] + b.calls[1], 1);
    ck_assert_int_eq(b.reopened_calls, 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 50), 0);
    ck_assert_int_eq(b.calls[0] + b.calls[1], 1);
    ck_assert_int_eq(b.reopened_calls, 0);
    for (int i = 0; i < 2; i++) {
        if (b.rfd[i] >= 0) {
            ev_io_remove(loop, b.rfd[i]);
            close(b.rfd[i]);
            close(b.wfd[i]);
        }
    }
    ev_loop_free(loop);
}

START_TEST(test_remove_in_batch)
{
    batch_run(false);
}
END_TEST

START_TEST(test_remove_reopen_in_batch)
{
    batch_run(true);
}
END_TEST

/* ---- timers ------------------------------------------------------------- */

#define NTIMERS 300

struct tfire {
    ev_timer_t t[NTIMERS];
    uint64_t delay[NTIMERS];
    uint64_t expect[NTIMERS];   /* our clock reading before the set + delay */
    uint64_t expect_hi[NTIMERS];  /* ... and after it */
    int order[NTIMERS];
    uint64_t fired_at[NTIMERS];
    int nfired;
    bool stopped[NTIMERS];
};

static struct tfire *tf_global;

static void tfire_cb(ev_loop_t *loop, void *arg)
{
    int i = (int)(intptr_t)arg;
    tf_global->fired_at[i] = time_mono_msec();
    tf_global->order[tf_global->nfired++] = i;
    (void)loop;
}

START_TEST(test_timer_order)
{
    ev_loop_t *loop = ev_loop_new();
    struct tfire *tf = xcalloc(1, sizeof(*tf));
    tf_global = tf;
    srand(12345);
    /* no ck_assert while arming: Check's bookkeeping makes them slow */
    for (int i = 0; i < NTIMERS; i++) {
        tf->delay[i] = (uint64_t)(rand() % 60) * 4;
        ev_timer_init(&tf->t[i], tfire_cb, (void *)(intptr_t)i);
        tf->expect[i] = time_mono_msec() + tf->delay[i];
        ev_timer_set(loop, &tf->t[i], tf->delay[i]);
        tf->expect_hi[i] = time_mono_msec() + tf->delay[i];
    }
    for (int i = 0; i < NTIMERS; i++)
        ck_assert(ev_timer_active(&tf->t[i]));
    /* re-arming moves a timer; stopping removes it */
    int nstopped = 0;
    for (int i = 0; i < NTIMERS; i += 7) {
        ev_timer_stop(loop, &tf->t[i]);
        ev_timer_stop(loop, &tf->t[i]);
        tf->stopped[i] = true;
        nstopped++;
    }
    for (int i = 3; i < NTIMERS; i += 11) {
        if (tf->stopped[i])
            continue;
        tf->delay[i] = (uint64_t)(rand() % 60) * 4;
        tf->expect[i] = time_mono_msec() + tf->delay[i];
        ev_timer_set(loop, &tf->t[i], tf->delay[i]);
        tf->expect_hi[i] = time_mono_msec() + tf->delay[i];
    }
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (tf->nfired < NTIMERS - nstopped && time_mono_msec() < end)
        ck_assert_int_ge(ev_loop_run_once(loop, -1), 0);
    ck_assert_int_eq(tf->nfired, NTIMERS - nstopped);
    for (int k = 0; k < tf->nfired; k++) {
        int i = tf->order[k];
        ck_assert(!tf->stopped[i]);
        /* never early, and in order of the deadline the loop computed
           (white-box: due_msec is readable; it is the delay added to a
           clock reading taken inside ev_timer_set, so it lies between
           ours from just before and just after the call) */
        ck_assert_uint_ge(tf->fired_at[i], tf->expect[i]);
        ck_assert_uint_ge(tf->fired_at[i], tf->t[i].due_msec);
        ck_assert_uint_ge(tf->t[i].due_msec, tf->expect[i]);
        ck_assert_uint_le(tf->t[i].due_msec, tf->expect_hi[i]);
        if (k > 0)
            ck_assert_uint_le(tf->t[tf->order[k - 1]].due_msec, tf->t[i].due_msec);
    }
    /* stopped timers are gone for good: nothing is left to fire */
    for (int i = 0; i < NTIMERS; i++)
        ck_assert(!ev_timer_active(&tf->t[i]));
    ck_assert_int_eq(ev_loop_run_once(loop, 20), 0);
    ck_assert_int_eq(tf->nfired, NTIMERS - nstopped);
    free(tf);
    ev_loop_free(loop);
}
END_TEST

struct rearm {
    ev_timer_t a, b, self0;
    int a_calls, b_calls, self0_calls;
};

static void rearm_b(ev_loop_t *loop, void *arg)
{
    (void)loop;
    struct rearm *r = arg;
    r->b_calls++;
}

static void rearm_a(ev_loop_t *loop, void *arg)
{
    struct rearm *r = arg;
    r->a_calls++;
    ev_timer_stop(loop, &r->b);     /* cancel another */
    ev_timer_stop(loop, &r->a);     /* stopping oneself while firing: no-op */
    if (r->a_calls < 3)
        ev_timer_set(loop, &r->a, 10);
}

/* re-arms itself with zero delay: must not starve the loop */
static void rearm_self0(ev_loop_t *loop, void *arg)
{
    struct rearm *r = arg;
    r->self0_calls++;
    if (r->self0_calls < 5)
        ev_timer_set(loop, &r->self0, 0);
}

START_TEST(test_timer_rearm_cancel)
{
    ev_loop_t *loop = ev_loop_new();
    struct rearm r = { 0 };
    ev_timer_init(&r.a, rearm_a, &r);
    ev_timer_init(&r.b, rearm_b, &r);
    ev_timer_init(&r.self0, rearm_self0, &r);
    ev_timer_set(loop, &r.a, 10);
    ev_timer_set(loop, &r.b, 30);
    /* a fires at 10 ms and cancels b (due at 30 ms) before it is due;
       a re-arms itself twice, then stays stopped */
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while ((r.a_calls < 3 || ev_timer_active(&r.a)) && time_mono_msec() < end)
        ck_assert_int_ge(ev_loop_run_once(loop, 20), 0);
    ck_assert_int_eq(r.a_calls, 3);
    ck_assert(!ev_timer_active(&r.a));
    ck_assert_int_eq(r.b_calls, 0);
    ck_assert(!ev_timer_active(&r.b));
    /* nothing is armed any more: a wait fires nothing */
    ck_assert_int_eq(ev_loop_run_once(loop, 40), 0);
    ck_assert_int_eq(r.a_calls, 3);
    ck_assert_int_eq(r.b_calls, 0);

    ev_timer_set(loop, &r.self0, 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 100), 1);
    ck_assert_int_eq(r.self0_calls, 1);
    for (int i = 0; i < 10; i++)
        ev_loop_run_once(loop, 100);
    ck_assert_int_eq(r.self0_calls, 5);
    ev_loop_free(loop);
}
END_TEST

/* ---- run_once waits ------------------------------------------------------ */

static void count_cb(ev_loop_t *loop, void *arg)
{
    (void)loop;
    (*(int *)arg)++;
}

START_TEST(test_run_once_timeout)
{
    ev_loop_t *loop = ev_loop_new();
    /* nothing to do: it waits its max_wait (never returns early) */
    uint64_t t0 = time_mono_msec();
    ck_assert_int_eq(ev_loop_run_once(loop, 100), 0);
    ck_assert_uint_ge(time_mono_msec() - t0, 95);
    ck_assert_uint_ge(ev_now_msec(loop), t0 + 95);

    /* -1: sleep until the next timer, which fires; not before it is due
       (a loop that waited forever would hit the test's timeout) */
    int n = 0;
    ev_timer_t t;
    ev_timer_init(&t, count_cb, &n);
    t0 = time_mono_msec();
    ev_timer_set(loop, &t, 80);
    ck_assert_int_eq(ev_loop_run_once(loop, -1), 1);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_ge(time_mono_msec() - t0, 79);
    ck_assert(!ev_timer_active(&t));

    /* a max_wait shorter than the timer wins: the loop comes back after
       max_wait with the (hour-long) timer still armed and not fired */
    t0 = time_mono_msec();
    ev_timer_set(loop, &t, 3600 * 1000);
    ck_assert_int_eq(ev_loop_run_once(loop, 30), 0);
    ck_assert_uint_ge(time_mono_msec() - t0, 29);
    ck_assert_int_eq(n, 1);
    ck_assert(ev_timer_active(&t));
    ev_loop_free(loop);
    ck_assert(!ev_timer_active(&t));
}
END_TEST

static void stop_cb(ev_loop_t *loop, void *arg)
{
    (*(int *)arg)++;
    ev_loop_stop(loop);
}

START_TEST(test_loop_run_stop)
{
    ev_loop_t *loop = ev_loop_new();
    int n = 0;
    ev_timer_t t;
    ev_timer_init(&t, stop_cb, &n);
    ev_timer_set(loop, &t, 20);
    ev_loop_run(loop);
    ck_assert_int_eq(n, 1);
    ev_timer_set(loop, &t, 1);
    ev_loop_run(loop);   /* runs again after a stop */
    ck_assert_int_eq(n, 2);
    ev_loop_free(loop);
}
END_TEST

/* ---- signals ------------------------------------------------------------- */

struct sigrec {
    int usr1, usr2;
};

static void sig_cb(ev_loop_t *loop, int signo, void *arg)
{
    (void)loop;
    struct sigrec *r = arg;
    if (signo == SIGUSR1)
        r->usr1++;
    else if (signo == SIGUSR2)
        r->usr2++;
}

START_TEST(test_signal)
{
    ev_loop_t *loop = ev_loop_new();
    struct sigrec r = { 0 };
    ck_assert_int_eq(ev_signal_add(loop, SIGUSR1, sig_cb, &r), 0);
    ck_assert_int_eq(ev_signal_add(loop, SIGUSR2, sig_cb, &r), 0);
    ck_assert_int_eq(ev_signal_add(loop, 0, sig_cb, &r), -1);
    ck_assert_int_eq(ev_signal_add(loop, 100000, sig_cb, &r), -1);
    ck_assert_int_eq(raise(SIGUSR1), 0);   /* blocked: stays pending */
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(r.usr1, 1);
    ck_assert_int_eq(r.usr2, 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    ck_assert_int_eq(ev_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(r.usr2, 1);
    ck_assert_int_eq(ev_loop_run_once(loop, 20), 0);
    ev_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pipe_read);
    tcase_add_test(tc, test_socket_write_and_hup);
    tcase_add_test(tc, test_high_fd);
    tcase_add_test(tc, test_remove_in_batch);
    tcase_add_test(tc, test_remove_reopen_in_batch);
    tcase_add_test(tc, test_timer_order);
    tcase_add_test(tc, test_timer_rearm_cancel);
    tcase_add_test(tc, test_run_once_timeout);
    tcase_add_test(tc, test_loop_run_stop);
    tcase_add_test(tc, test_signal);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

/*
 * qmgr - the queue manager: a long-running trigger server and the only
 * process that moves queue files between incoming/, active/ and
 * deferred/. This file holds start-up recovery, the trigger handler and
 * the scheduling of directory scans; all state that matters is on disk,
 * so SIGTERM or kill -9 at any moment loses nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include "mail/config.h"
#include "util/events.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "mail/route.h"
#include "mail/server.h"
#include "util/util.h"
#include "qmgr.h"

/* Give delivery agents of a killed qmgr time to finish (and mark) what
   they were doing before their messages are offered again. */
#define RECOVER_GRACE_MSEC  2000
#define RECOVER_RETRY_MSEC  1000
/* batch the rescans that wait for room in the active set */
#define SCAN_ROOM_MSEC      50

uint64_t qmgr_start_usec;

static ev_loop_t *q_loop;
static bool want_incoming, want_deferred, want_sweep, want_temp;
static uint64_t flush_usec;         /* deferred before this: due now */
static ev_timer_t scan_timer, queue_run_timer, recover_timer;

/* qmgr_room - how many more messages may become active: within
   $qmgr_message_active_limit messages and (each has a recipient at
   least) $qmgr_message_recipient_limit recipients; a message larger
   than the latter still comes in when nothing else is active (a batch
   of moves may overshoot by its messages' other recipients) */
size_t qmgr_room(void)
{
    size_t limit = var_qmgr_message_active_limit > 0
                   ? (size_t)var_qmgr_message_active_limit : 1;
    size_t rlimit = var_qmgr_message_recipient_limit > 0
                    ? (size_t)var_qmgr_message_recipient_limit : 1;
    size_t room, rroom;

    room = qmgr_active_count >= limit ? 0 : limit - qmgr_active_count;
    rroom = qmgr_active_rcpts >= rlimit ? 0 : rlimit - qmgr_active_rcpts;
    return room < rroom ? room : rroom;
}

/* qmgr_poke - room was made; run a scan that was waiting for it */
void qmgr_poke(void)
{
    if (q_loop == NULL || !(want_incoming || want_deferred))
        return;
    if (qmgr_room() > 0 && !ev_timer_active(&scan_timer))
        ev_timer_set(q_loop, &scan_timer, SCAN_ROOM_MSEC);
}

static void scan_soon(void)
{
    ev_timer_set(q_loop, &scan_timer, 0);
}

/* qmgr_incoming_soon - qmgr queued mail itself (a bounce) */
void qmgr_incoming_soon(void)
{
    want_incoming = true;
    if (q_loop != NULL && qmgr_room() > 0)
        scan_soon();
}

/* scan_run - incoming/ first, then due deferred/ mail, as room allows */
static void scan_run(ev_loop_t *loop, void *arg)
{
    struct qmgr_scan_result res;
    (void)loop;
    (void)arg;

    /* needs no room: removes files, never activates any */
    if (want_temp) {
        want_temp = false;
        qmgr_scan_temp();
    }
    if (want_incoming && qmgr_room() > 0) {
        want_incoming = false;
        qmgr_scan_incoming(qmgr_room(), &res);
        want_incoming = res.truncated;
    }
    if (want_sweep && qmgr_room() > 0) {
        want_sweep = false;
        qmgr_scan_active_sweep(qmgr_room());
    }
    if (want_deferred && qmgr_room() > 0) {
        want_deferred = false;
        qmgr_scan_deferred(qmgr_room(), flush_usec, &res);
        want_deferred = res.truncated;
        if (!res.truncated)
            flush_usec = 0;
    }
}

/* queue_run - the periodic look at deferred/, and at incoming/ too: a
   sender killed between its commit and its trigger leaves a file there
   that nobody announced (master's wakeup would find it, but only after
   the service's wakeup time); and at incoming/ and hold/ for writers'
   stale temporary files */
static void queue_run(ev_loop_t *loop, void *arg)
{
    long delay = var_queue_run_delay > 0 ? var_queue_run_delay : 1;
    (void)arg;

    want_deferred = true;
    want_incoming = true;
    want_sweep = true;
    want_temp = true;
    qmgr_queue_sweep();
    scan_soon();
    ev_timer_set(loop, &queue_run_timer, (uint64_t)delay * 1000);
}

/* recover - the files a previous qmgr left in active/ */
static void recover(ev_loop_t *loop, void *arg)
{
    (void)arg;
    if (qmgr_scan_active_recover() > 0)
        ev_timer_set(loop, &recover_timer, RECOVER_RETRY_MSEC);
}

static void qmgr_trigger(ev_loop_t *loop, const char *data, size_t len)
{
    (void)loop;
    for (size_t i = 0; i < len; i++) {
        switch (data[i]) {
        case TRIGGER_NEW_MAIL:
        case TRIGGER_WAKEUP:
            want_incoming = true;
            break;
        case TRIGGER_DEFERRED:      /* showq made some due: no flush */
            want_deferred = true;
            break;
        case TRIGGER_FLUSH:
            flush_usec = time_now_usec();
            qmgr_queue_revive_all();
            want_deferred = true;
            want_incoming = true;
            want_temp = true;
            break;
        default:
            log_debug("ignoring unknown trigger byte 0x%02x",
                      (unsigned char)data[i]);
            break;
        }
    }
    if (want_incoming || want_deferred)
        scan_soon();
}

static void qmgr_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    if (mailuser_init() < 0)
        log_fatal("cannot initialize local user and domain tables");
    if (route_tables_open() < 0)
        log_fatal("cannot open the routing tables");
}

static void qmgr_post_init(ev_loop_t *loop)
{
    size_t left;

    q_loop = loop;
    qmgr_start_usec = time_now_usec();
    qmgr_deliver_init(loop);
    ev_timer_init(&scan_timer, scan_run, NULL);
    ev_timer_init(&queue_run_timer, queue_run, NULL);
    ev_timer_init(&recover_timer, recover, NULL);
    left = qmgr_scan_active_snapshot();
    if (left > 0) {
        log_info("%zu message%s left in %s/ by a previous run; recovering",
                 left, left == 1 ? "" : "s", QUEUE_ACTIVE);
        ev_timer_set(loop, &recover_timer, RECOVER_GRACE_MSEC);
    }
    queue_run(loop, NULL);      /* due deferred mail now, then periodically */
    want_incoming = true;
}

static void qmgr_pre_exit(void)
{
    qmgr_deliver_shutdown();
    qmgr_message_free_all();
    qmgr_scan_free();
    route_tables_close();
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = qmgr_pre_init,
        .post_init = qmgr_post_init,
        .pre_exit = qmgr_pre_exit,
        .on_trigger = qmgr_trigger,
        .long_running = true,
    };

    return trigger_server_main(argc, argv, &ops);
}

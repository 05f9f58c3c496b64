/*
 * events - single-threaded epoll event loop with one-shot timers and
 * signal delivery through signalfd. Every daemon runs on one of these.
 *
 * Timers are caller-owned structs (no handle can dangle): ev_timer_set()
 * (re)arms, ev_timer_stop() disarms, both are safe on an idle timer.
 * Callbacks may add/remove any fd or timer, including their own, and may
 * call ev_loop_stop().
 */
#ifndef TERN_EVENTS_H
#define TERN_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ev_loop ev_loop_t;

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u   /* delivered on EPOLLERR/EPOLLHUP; never requested */

typedef void (*ev_io_cb)(ev_loop_t *loop, int fd, unsigned events, void *arg);
typedef void (*ev_timer_cb)(ev_loop_t *loop, void *arg);
typedef void (*ev_signal_cb)(ev_loop_t *loop, int signo, void *arg);

typedef struct ev_timer {
    uint64_t due_msec;     /* monotonic; private */
    size_t heap_index;     /* private; SIZE_MAX when idle */
    ev_timer_cb cb;
    void *arg;
} ev_timer_t;

ev_loop_t *ev_loop_new(void);
void ev_loop_free(ev_loop_t *loop);

/* Register fd for events (EV_READ|EV_WRITE; 0 = registered but quiet).
   One registration per fd. 0 ok, -1 errno. */
int ev_io_add(ev_loop_t *loop, int fd, unsigned events, ev_io_cb cb, void *arg);
int ev_io_modify(ev_loop_t *loop, int fd, unsigned events);
/* Unregister; safe to call from inside that fd's callback. Does not close. */
void ev_io_remove(ev_loop_t *loop, int fd);

void ev_timer_init(ev_timer_t *t, ev_timer_cb cb, void *arg);
void ev_timer_set(ev_loop_t *loop, ev_timer_t *t, uint64_t delay_msec);
void ev_timer_stop(ev_loop_t *loop, ev_timer_t *t);
bool ev_timer_active(const ev_timer_t *t);

/* Block signo and deliver it through the loop (signalfd). 0 ok, -1 errno. */
int ev_signal_add(ev_loop_t *loop, int signo, ev_signal_cb cb, void *arg);

/* Run one iteration: wait at most max_wait_msec (-1 = until an event or
   the next timer), dispatch. Returns number of events dispatched, -1 err. */
int ev_loop_run_once(ev_loop_t *loop, int max_wait_msec);
/* Run until ev_loop_stop(). */
void ev_loop_run(ev_loop_t *loop);
void ev_loop_stop(ev_loop_t *loop);

/* Cached monotonic time of the current iteration, in msec. */
uint64_t ev_now_msec(ev_loop_t *loop);

#endif

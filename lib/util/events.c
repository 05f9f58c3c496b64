/*
 * events - epoll event loop: fd-indexed io table, binary min-heap of
 * caller-owned timers, signals through one shared signalfd.
 *
 * Each registration carries a generation number in the epoll data, so an
 * event that is still pending in the current epoll_wait batch for an fd
 * that was removed (or removed and re-added) is dropped, never delivered.
 */
#include "events.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define EV_BATCH 128

struct ev_io_slot {
    ev_io_cb cb;
    void *arg;
    unsigned events;
    uint32_t gen;
    bool used;
};

struct ev_sig_slot {
    ev_signal_cb cb;
    void *arg;
};

struct ev_loop {
    int epfd;
    struct ev_io_slot *slots;
    size_t nslots;
    uint32_t next_gen;
    ev_timer_t **heap;
    size_t heap_len;
    size_t heap_cap;
    int sigfd;
    sigset_t sigmask;
    struct ev_sig_slot sigs[NSIG];
    uint64_t now;
    bool stopped;
};

ev_loop_t *ev_loop_new(void)
{
    ev_loop_t *loop = xcalloc(1, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    loop->now = time_mono_msec();
    return loop;
}

void ev_loop_free(ev_loop_t *loop)
{
    if (loop == NULL)
        return;
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    close(loop->epfd);
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->heap_index = SIZE_MAX;
    free(loop->heap);
    free(loop->slots);
    free(loop);
}

/* ---- io ------------------------------------------------------------- */

static uint32_t ev_to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & EV_READ)
        e |= EPOLLIN;
    if (events & EV_WRITE)
        e |= EPOLLOUT;
    return e;
}

static void ev_slots_grow(ev_loop_t *loop, size_t need)
{
    size_t n = loop->nslots ? loop->nslots : 64;
    while (n < need)
        n *= 2;
    loop->slots = xrealloc(loop->slots, n * sizeof(*loop->slots));
    for (size_t i = loop->nslots; i < n; i++)
        loop->slots[i] = (struct ev_io_slot){ 0 };
    loop->nslots = n;
}

static struct ev_io_slot *ev_slot_get(ev_loop_t *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nslots || !loop->slots[fd].used)
        return NULL;
    return &loop->slots[fd];
}

static int ev_epoll_ctl(ev_loop_t *loop, int op, int fd,
                        const struct ev_io_slot *slot)
{
    struct epoll_event ee = { 0 };
    ee.events = ev_to_epoll(slot->events);
    ee.data.u64 = ((uint64_t)slot->gen << 32) | (uint32_t)fd;
    return epoll_ctl(loop->epfd, op, fd, &ee);
}

int ev_io_add(ev_loop_t *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
    if (fd < 0 || cb == NULL) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)fd >= loop->nslots)
        ev_slots_grow(loop, (size_t)fd + 1);
    struct ev_io_slot *slot = &loop->slots[fd];
    if (slot->used) {
        errno = EEXIST;
        return -1;
    }
    struct ev_io_slot fresh = {
        .cb = cb, .arg = arg, .events = events & (EV_READ | EV_WRITE),
        .gen = ++loop->next_gen, .used = true,
    };
    if (ev_epoll_ctl(loop, EPOLL_CTL_ADD, fd, &fresh) < 0)
        return -1;
    *slot = fresh;
    return 0;
}

int ev_io_modify(ev_loop_t *loop, int fd, unsigned events)
{
    struct ev_io_slot *slot = ev_slot_get(loop, fd);
    if (slot == NULL) {
        errno = ENOENT;
        return -1;
    }
    events &= EV_READ | EV_WRITE;
    if (events == slot->events)
        return 0;
    unsigned old = slot->events;
    slot->events = events;
    if (ev_epoll_ctl(loop, EPOLL_CTL_MOD, fd, slot) < 0) {
        slot->events = old;
        return -1;
    }
    return 0;
}

void ev_io_remove(ev_loop_t *loop, int fd)
{
    struct ev_io_slot *slot = ev_slot_get(loop, fd);
    if (slot == NULL)
        return;
    /* EBADF/ENOENT are fine: a closed fd has already left the epoll set */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    slot->used = false;
    slot->cb = NULL;
    slot->arg = NULL;
    slot->events = 0;
}

/* ---- timers: binary min-heap on due_msec ----------------------------- */

static bool ev_heap_less(const ev_loop_t *loop, size_t a, size_t b)
{
    return loop->heap[a]->due_msec < loop->heap[b]->due_msec;
}

static void ev_heap_swap(ev_loop_t *loop, size_t a, size_t b)
{
    ev_timer_t *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void ev_heap_up(ev_loop_t *loop, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_heap_less(loop, i, parent))
            break;
        ev_heap_swap(loop, i, parent);
        i = parent;
    }
}

static void ev_heap_down(ev_loop_t *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && ev_heap_less(loop, l, m))
            m = l;
        if (r < loop->heap_len && ev_heap_less(loop, r, m))
            m = r;
        if (m == i)
            break;
        ev_heap_swap(loop, i, m);
        i = m;
    }
}

static void ev_heap_remove(ev_loop_t *loop, ev_timer_t *t)
{
    size_t i = t->heap_index;
    size_t last = loop->heap_len - 1;
    t->heap_index = SIZE_MAX;
    if (i != last) {
        loop->heap[i] = loop->heap[last];
        loop->heap[i]->heap_index = i;
    }
    loop->heap_len--;
    if (i < loop->heap_len) {
        /* if it moves up, what lands at i already satisfies the heap */
        ev_heap_up(loop, i);
        ev_heap_down(loop, i);
    }
}

void ev_timer_init(ev_timer_t *t, ev_timer_cb cb, void *arg)
{
    t->due_msec = 0;
    t->heap_index = SIZE_MAX;
    t->cb = cb;
    t->arg = arg;
}

bool ev_timer_active(const ev_timer_t *t)
{
    return t->heap_index != SIZE_MAX;
}

void ev_timer_stop(ev_loop_t *loop, ev_timer_t *t)
{
    if (ev_timer_active(t))
        ev_heap_remove(loop, t);
}

void ev_timer_set(ev_loop_t *loop, ev_timer_t *t, uint64_t delay_msec)
{
    ev_timer_stop(loop, t);
    /* fresh clock, not the cached one: work done since the last wake-up
       must not make the timer fire early */
    uint64_t now = time_mono_msec();
    t->due_msec = delay_msec > UINT64_MAX - now ? UINT64_MAX : now + delay_msec;
    if (loop->heap_len == loop->heap_cap) {
        loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        loop->heap = xrealloc(loop->heap, loop->heap_cap * sizeof(*loop->heap));
    }
    t->heap_index = loop->heap_len;
    loop->heap[loop->heap_len++] = t;
    ev_heap_up(loop, t->heap_index);
}

/* Fire due timers. The budget keeps a timer that re-arms itself with a
   zero delay from starving the loop. */
static int ev_timers_run(ev_loop_t *loop)
{
    int fired = 0;
    size_t budget = loop->heap_len;
    while (budget-- > 0 && loop->heap_len > 0
           && loop->heap[0]->due_msec <= loop->now) {
        ev_timer_t *t = loop->heap[0];
        ev_heap_remove(loop, t);
        t->cb(loop, t->arg);
        fired++;
    }
    return fired;
}

/* ---- signals ----------------------------------------------------------- */

static void ev_signal_read(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    struct signalfd_siginfo si[8];
    for (;;) {
        ssize_t n = read(fd, si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
            int signo = (int)si[i].ssi_signo;
            if (signo > 0 && signo < NSIG && loop->sigs[signo].cb != NULL)
                loop->sigs[signo].cb(loop, signo, loop->sigs[signo].arg);
        }
    }
}

int ev_signal_add(ev_loop_t *loop, int signo, ev_signal_cb cb, void *arg)
{
    if (signo <= 0 || signo >= NSIG || cb == NULL) {
        errno = EINVAL;
        return -1;
    }
    sigset_t one, mask = loop->sigmask;
    sigemptyset(&one);
    if (sigaddset(&one, signo) < 0 || sigaddset(&mask, signo) < 0)
        return -1;
    if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
        return -1;
    int fd = signalfd(loop->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (loop->sigfd < 0) {
        if (ev_io_add(loop, fd, EV_READ, ev_signal_read, NULL) < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        loop->sigfd = fd;
    }
    loop->sigmask = mask;
    loop->sigs[signo].cb = cb;
    loop->sigs[signo].arg = arg;
    return 0;
}

/* ---- the loop ------------------------------------------------------------ */

static int ev_wait_timeout(const ev_loop_t *loop, int max_wait_msec)
{
    int timeout = max_wait_msec < 0 ? -1 : max_wait_msec;
    if (loop->heap_len > 0) {
        uint64_t due = loop->heap[0]->due_msec;
        uint64_t d = due > loop->now ? due - loop->now : 0;
        if (d > INT_MAX)
            d = INT_MAX;
        if (timeout < 0 || (int)d < timeout)
            timeout = (int)d;
    }
    return timeout;
}

static unsigned ev_from_epoll(uint32_t e, unsigned wanted)
{
    unsigned ev = 0;
    if (e & EPOLLIN)
        ev |= EV_READ;
    if (e & EPOLLOUT)
        ev |= EV_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) {
        ev |= EV_ERROR;
        if (wanted & EV_READ)
            ev |= EV_READ;   /* so a reader sees EOF or the error */
    }
    /* interest may have changed earlier in this batch */
    return ev & (wanted | EV_ERROR);
}

static int ev_io_dispatch(ev_loop_t *loop, const struct epoll_event *ee, int n)
{
    int done = 0;
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)(ee[i].data.u64 & 0xffffffffu);
        uint32_t gen = (uint32_t)(ee[i].data.u64 >> 32);
        struct ev_io_slot *slot = ev_slot_get(loop, fd);
        if (slot == NULL || slot->gen != gen)
            continue;   /* removed (or replaced) earlier in this batch */
        unsigned ev = ev_from_epoll(ee[i].events, slot->events);
        if (ev == 0)
            continue;
        /* the callback may grow (move) the slot table */
        ev_io_cb cb = slot->cb;
        void *arg = slot->arg;
        cb(loop, fd, ev, arg);
        done++;
    }
    return done;
}

int ev_loop_run_once(ev_loop_t *loop, int max_wait_msec)
{
    struct epoll_event ee[EV_BATCH];
    loop->now = time_mono_msec();
    int n = epoll_wait(loop->epfd, ee, EV_BATCH,
                       ev_wait_timeout(loop, max_wait_msec));
    if (n < 0) {
        if (errno != EINTR)
            return -1;
        n = 0;
    }
    loop->now = time_mono_msec();
    int done = ev_io_dispatch(loop, ee, n);
    loop->now = time_mono_msec();
    return done + ev_timers_run(loop);
}

void ev_loop_run(ev_loop_t *loop)
{
    while (!loop->stopped) {
        if (ev_loop_run_once(loop, -1) < 0) {
            log_error("event loop: epoll_wait: %m");
            break;
        }
    }
    loop->stopped = false;
}

void ev_loop_stop(ev_loop_t *loop)
{
    loop->stopped = true;
}

uint64_t ev_now_msec(ev_loop_t *loop)
{
    return loop->now;
}

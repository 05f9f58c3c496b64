/*
 * master - internal interface between the supervisor's source files:
 * master.c (start-up, signals, reload, shutdown), master_service.c
 * (listeners and the service table) and master_spawn.c (children, status
 * pipes, demand, throttling).
 */
#ifndef TERN_MASTER_H
#define TERN_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/events.h"
#include "master_logic.h"
#include "mail/mastercf.h"

#define MASTER_MAX_LISTEN 16          /* addresses per inet service */
#define MASTER_LIMIT_WARN_MSEC 60000  /* process limit warning interval */

struct master_service;

struct master_child {
    pid_t pid;
    char *path;                   /* program, for log messages */
    struct master_service *svc;   /* NULL once the service is gone */
    bool avail;                   /* counted in svc->avail */
    bool served;                  /* reported avail=0 or served=1 */
    bool retired;                 /* told to finish (reload): not counted */
    struct master_child *next;
};

struct master_service {
    struct master_entry ent;      /* own copy of the master.conf line */
    char *path;                   /* program: $daemon_directory/command */
    char *label;                  /* listener key (addresses or socket path) */
    char *unix_path;              /* private/NAME or public/NAME, else NULL */
    int listen_fds[MASTER_MAX_LISTEN];
    size_t nlisten;
    int status_rd, status_wr;     /* status pipe */
    size_t count;                 /* live, non-retired children */
    size_t avail;                 /* of which available */
    size_t fresh;                 /* of which not served a client yet */
    bool event_server;            /* a child said so (server_status.event):
                                     spread clients over several children */
    bool watching;
    char *overload_reply;         /* $COMMAND_overload_reply when full,
                                     "" = just close, NULL = let wait */
    long backoff;                 /* current back-off, seconds */
    bool throttled;
    ev_timer_t throttle_timer;
    ev_timer_t wakeup_timer;
    uint64_t last_limit_warn;
    struct master_service *next;
};

/* global state (master.c) */
extern ev_loop_t *master_loop;
extern struct master_service *master_services;
extern bool master_foreground;
extern int master_verbose;
extern bool master_shutting_down;

/* master_service.c */
/* Create the service for e: resolve, open listeners, status pipe.
   Returns NULL (error logged) on failure. */
struct master_service *master_service_open(const struct master_entry *e);
/* resolve only (for -t and reload matching): the label string, or -1 */
int master_service_label(const struct master_entry *e, buf_t *label,
                         buf_t *err);
void master_service_close(struct master_service *svc);
/* register listeners and timers with the loop, send the first wakeup */
void master_service_start(struct master_service *svc);
/* replace the configuration of a kept service (same listener) */
void master_service_update(struct master_service *svc,
                           const struct master_entry *e);
void master_wakeup_send(struct master_service *svc);
long master_service_maxproc(const struct master_service *svc);

/* master_spawn.c */
void master_demand_update(struct master_service *svc);
void master_listener_ready(ev_loop_t *loop, int fd, unsigned events,
                           void *svc);
void master_status_ready(ev_loop_t *loop, int fd, unsigned events,
                         void *svc);
void master_reap(void);
void master_throttle_expired(ev_loop_t *loop, void *svc);
/* SIGHUP (retire) or SIGTERM (service removed) a service's children */
void master_children_signal(struct master_service *svc, int signo,
                            bool detach);
/* shutdown: SIGTERM everyone, wait, SIGKILL the rest */
void master_children_stop_all(int grace_msec);

#endif

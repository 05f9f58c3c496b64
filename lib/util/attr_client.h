/*
 * attr_client - an asynchronous attribute-list (attr.h) client on an
 * ev_loop_t: one connection to a UNIX (or any stream) socket, at most one
 * request in flight, the reply handed to a callback. Used by qmgr for its
 * delivery agents; meant for every daemon that asks another one a
 * question without blocking its loop.
 *
 * Life of a connection: attr_client_connect_*() starts a non-blocking
 * connect (bounded by connect_timeout_msec). attr_client_request() queues
 * one encoded request; its callback runs exactly once, always from the
 * loop (never from inside attr_client_request()), with the decoded reply
 * or an error. A connection with no request in flight is closed after
 * idle_timeout_msec, when the peer closes it, or when the peer sends
 * anything unasked; then on_close runs. Every error closes the
 * connection (the fd is gone before a callback runs): the object stays
 * allocated, refuses requests, and the caller releases it with
 * attr_client_free(), which is safe inside any callback and never calls
 * one.
 *
 * Bounds: a request and a reply are at most ATTR_MAX_MSG bytes; a reply
 * that breaks an attr.h limit, or bytes the client did not ask for, close
 * the connection (the peer is not trusted). No call blocks.
 */
#ifndef TERN_ATTR_CLIENT_H
#define TERN_ATTR_CLIENT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "attr.h"
#include "events.h"

typedef struct attr_client attr_client_t;

enum attr_client_error {
    ATTR_CLIENT_OK = 0,
    ATTR_CLIENT_CONNECT,        /* connect failed or timed out */
    ATTR_CLIENT_TIMEOUT,        /* no reply within the request's deadline */
    ATTR_CLIENT_LOST,           /* read/write error or end of input mid-reply */
    ATTR_CLIENT_MALFORMED,      /* the reply is not a valid attribute list */
    ATTR_CLIENT_TOO_LARGE,      /* the reply is over ATTR_MAX_MSG */
    ATTR_CLIENT_UNEXPECTED,     /* data nobody asked for (idle, or after a reply) */
    ATTR_CLIENT_IDLE,           /* on_close only: the idle timer closed it */
    ATTR_CLIENT_EOF,            /* on_close only: the peer closed it while idle */
};

/* The reply to one request. error ATTR_CLIENT_OK: reply is the decoded
   list, reason "". Otherwise reply is NULL and reason says what happened
   ("unexpected end of input", "malformed reply: ..."). Both are valid
   only during the call. */
typedef void (*attr_client_reply_cb)(attr_client_t *c, int error,
                                     const char *reason,
                                     const attr_list_t *reply, void *arg);
/* The connection closed with no request in flight (error is one of
   CONNECT, UNEXPECTED, LOST, IDLE, EOF). */
typedef void (*attr_client_close_cb)(attr_client_t *c, int error,
                                     const char *reason, void *arg);

typedef struct attr_client_opts {
    unsigned connect_timeout_msec;  /* 0: no limit of its own */
    unsigned idle_timeout_msec;     /* 0: never closed for idleness */
    attr_client_close_cb on_close;  /* may be NULL */
    void *arg;                      /* for on_close */
} attr_client_opts_t;

/* Start connecting. NULL with errno when the connect failed at once
   (ENOENT, ECONNREFUSED, EAGAIN: a UNIX listener's backlog is full,
   ENAMETOOLONG); no callback runs then. */
attr_client_t *attr_client_connect_unix(ev_loop_t *loop, const char *path,
                                        const attr_client_opts_t *opts);
attr_client_t *attr_client_connect_addr(ev_loop_t *loop,
                                        const struct sockaddr *sa,
                                        socklen_t salen,
                                        const attr_client_opts_t *opts);

/* Send req; cb runs once, from the loop, with the reply or an error.
   timeout_msec (0: none) bounds the wait from now, including a connect
   still in progress. -1 (no callback) with errno: EBUSY a request is in
   flight, ENOTCONN the connection is closed, EMSGSIZE req breaks an
   attr.h limit. */
int attr_client_request(attr_client_t *c, const attr_list_t *req,
                        unsigned timeout_msec, attr_client_reply_cb cb,
                        void *arg);

/* Open (or connecting) with no request in flight: a request would be
   accepted. */
bool attr_client_idle(const attr_client_t *c);

/* Close (if open) and release; no callback runs. NULL is fine. */
void attr_client_free(attr_client_t *c);

#endif

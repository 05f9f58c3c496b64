/*
 * deliver_request - build and check the delivery requests and replies
 * of deliver.h, so qmgr and every agent read and write them one way.
 *
 * deliver_request_parse() is strict about form (no attribute of the
 * protocol twice, counts, indexes and offsets in range, a valid queue
 * ID, the active queue; other names are ignored) but believes nothing
 * else: the agent still checks each named
 * record against the queue file.
 */
#ifndef TERN_DELIVER_REQUEST_H
#define TERN_DELIVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include "util/attr.h"
#include "mail/deliver.h"

struct deliver_rcpt {
    const char *address;        /* what the record must hold */
    long offset;                /* the recipient record's offset */
};

typedef struct deliver_request {
    const char *queue_name;     /* "active" */
    const char *queue_id;
    const char *transport;      /* "" when the request named none */
    const char *nexthop;        /* "" for local */
    uint64_t active_usec;       /* 0 when the request named none */
    size_t nrcpts;
    struct deliver_rcpt rcpts[DELIVER_MAX_RCPTS];
} deliver_request_t;

/* Append req's attributes to out (reset first). */
void deliver_request_build(const deliver_request_t *req, attr_list_t *out);

/* Fill req from in; its strings point into in. At most max_rcpts
   recipients (an agent's own limit, <= DELIVER_MAX_RCPTS).
   0 ok; -1 with a static reason in *error_r. */
int deliver_request_parse(const attr_list_t *in, deliver_request_t *req,
                          size_t max_rcpts, const char **error_r);

/* One recipient's outcome, K = its index in the request. */
void deliver_reply_add(attr_list_t *reply, size_t k, int status,
                       const char *dsn, const char *reason);
/* The optional dest_status: dead = the next hop could not be reached. */
void deliver_reply_dest_dead(attr_list_t *reply);

/* Recipient K's outcome from a reply: 0 with status, dsn and reason
   (dsn and reason never NULL: "" when absent); -1 when the reply has
   no valid status for K (the caller defers that recipient). */
int deliver_reply_get(const attr_list_t *reply, size_t k, int *status,
                      const char **dsn, const char **reason);
/* Did the agent report the next hop dead? */
int deliver_reply_is_dest_dead(const attr_list_t *reply);

/* "status_3" etc. into out */
void deliver_attr_name(const char *base, size_t k, char *out, size_t size);

#endif

/* local - internal interface between the request loop and delivery. */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mail/dict.h"

#define ADDR_LOG_MAX 300

struct local_request {
    const char *queue_name;
    const char *queue_id;
    const char *sender;
    const char *recipient;
    const char *orig_rcpt;
    off_t rcpt_offset;
    off_t content_offset;
    uint64_t content_size;
    uint64_t arrival_usec;
    int queue_fd;
};

struct local_result {
    int status;             /* DELIVER_OK / DEFER / BOUNCE */
    char dsn[16];
    char reason[512];
};

void local_result_set(struct local_result *res, int status, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Expand aliases of r->recipient and deliver to every resulting target. */
void local_deliver(const struct local_request *r, maps_t *aliases,
                   struct local_result *res);

/* Write the message into home/<home_mailbox> (a Maildir) as the user. */
void local_maildir(const struct local_request *r, const char *user,
                   uid_t uid, gid_t gid, const char *home,
                   struct local_result *res);

#endif

/* local - internal interface between the request loop and delivery. */
#ifndef TERN_LOCAL_H
#define TERN_LOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mail/dict.h"
#include "mail/mailuser.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "util/attr.h"

#define ADDR_LOG_MAX 300

/* queue file attribute of a file local wrote for an alias list: its
   local recipients are already expanded, each is delivered to the user
   of that name (alias expansion again would forward "a: a, b" forever) */
#define LOCAL_ATTR_EXPANDED "alias_expanded"

/* one delivery: every field comes from the queue file (local_queue.c) */
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
    uint64_t active_usec;   /* when qmgr took the message on (request) */
    int queue_fd;
    bool expanded;          /* file came from an alias list: no expansion */
};

struct local_result {
    int status;             /* DELIVER_OK / DEFER / BOUNCE */
    char dsn[16];
    char reason[512];
};

void local_result_set(struct local_result *res, int status, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Open and check the queue file a request names and fill r from it
   (the request is only a claim). 0: r->queue_fd open with a shared lock,
   r's strings point into m. -1: res says why, nothing to close. */
int local_queue_open(const attr_list_t *req, struct local_request *r,
                     queue_msg_t *m, struct local_result *res);
void local_queue_close(struct local_request *r, queue_msg_t *m);
/* uid/gid that owns the spool: $mail_owner as root, else our own */
int local_owner(uid_t *uid, gid_t *gid);

/* Expand aliases of r->recipient and deliver to every resulting target. */
void local_deliver(const struct local_request *r, maps_t *aliases,
                   struct local_result *res);

/* Has the message a "Delivered-To: <r->recipient>" header already?
   Parses content: call with a less privileged user's IDs. */
bool local_delivered_to(const struct local_request *r);

/* The user's own mailbox (local_mailbox.c): $home_mailbox under the
   home directory (a Maildir when it ends in '/', else an mbox file),
   or $mail_spool_directory/USER when home_mailbox is empty; as the
   user. */
void local_mailbox(const struct local_request *r, const struct mail_user *u,
                   struct local_result *res);

/* Append the message in mbox form to the file path (a "/file" alias or
   .forward target, or an mbox mailbox) with uid/gid, locked
   (local_mbox.c). */
void local_file(const struct local_request *r, const char *path, uid_t uid,
                gid_t gid, struct local_result *res);

/* Write the message into home/<home_mailbox> (a Maildir) as the user. */
void local_maildir(const struct local_request *r, const char *user,
                   uid_t uid, gid_t gid, const char *home,
                   struct local_result *res);

#endif

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

/* ---- mailboxes: mbox writer and locks (local_mbox.c, issue 7) ---- */
#include <time.h>
#include "util/buf.h"

#define LOCAL_MBOX_LOCK_FCNTL 1
#define LOCAL_MBOX_LOCK_FLOCK 2
#define LOCAL_MBOX_LOCK_DOT   4

/* whose IDs open (and dot-lock) the file; the content is always written
   with the writer's own */
enum local_mbox_privs {
    LOCAL_MBOX_AS_USER,     /* uid, gid and the account's groups */
    LOCAL_MBOX_AS_GROUP,    /* the same plus extra_gid (a spool's group) */
    LOCAL_MBOX_AS_ROOT,     /* a spool only root may write */
};

struct local_mbox_target {
    const char *path;
    uid_t uid;              /* the writer; owner of a file created here */
    gid_t gid;
    gid_t extra_gid;        /* LOCAL_MBOX_AS_GROUP */
    enum local_mbox_privs open_privs;
    bool must_own;          /* an existing file must be uid's (mailbox) */
    bool dotlock_may_fail;  /* no dot lock where the directory is closed */
    const char *success;    /* reason text of a delivery */
};

/* Append r's message to t->path in mbox form, locked; res says how it
   went. Call as root (or unprivileged in a developer instance). */
void local_mbox_deliver(const struct local_request *r,
                        const struct local_mbox_target *t,
                        struct local_result *res);

/* pure pieces, unit tested */
struct local_mbox_escape {
    bool bol;               /* at the start of a line (start: true) */
    size_t held;            /* bytes of a possible "From " held back */
    char hold[5];
};
void local_mbox_from_line(buf_t *out, const char *sender, time_t when);
void local_mbox_escape(struct local_mbox_escape *st, const char *data,
                       size_t len, buf_t *out);
void local_mbox_escape_end(struct local_mbox_escape *st, buf_t *out);
void local_mbox_lock_name(const char *path, buf_t *out);
bool local_mbox_path_ok(const char *path, const char **why_r);
int local_mbox_lock_styles(const char *spec, int *styles_r);
/* the spool directory's IDs for opening USER's mailbox there
   (local_mailbox.c): 0 with *privs_r and *extra_r set, -1 with res set */
int local_mailbox_spool_privs(const char *dir, uid_t uid, gid_t gid,
                              enum local_mbox_privs *privs_r, gid_t *extra_r,
                              struct local_result *res);
/* ---- end of mailboxes ---- */

#endif

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
    const queue_msg_t *msg; /* the queue file's envelope (client attributes
                               for commands); may be NULL */
};

struct local_result {
    int status;             /* DELIVER_OK / DEFER / BOUNCE */
    char dsn[16];
    char reason[512];
    char final_to[ADDR_LOG_MAX + 2];    /* the user an alias led to, for
                                           the log's to=; "" = recipient */
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
struct local_aliases;
void local_deliver(const struct local_request *r, struct local_aliases *aliases,
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
/* home is an existing directory, with the current IDs; false (4.3.0
   deferral in res) otherwise (local_maildir.c) */
bool local_home_ok(const char *home, struct local_result *res);

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
/* --- aliases, :include:, |command, .forward (lalias) --------------------- */

/* The rights a command or file delivery runs with: an account. */
struct local_rights {
    uid_t uid;
    gid_t gid;
    char user[256];         /* account name ("" if it has none) */
    char home[4096];
    char shell[256];
};

/* Alias tables, each with the owner of its file (local_alias.c): commands
   and files of a table owned by root run as $default_privs, otherwise as
   the table's owner. */
struct local_aliases *local_aliases_open(const char *list, const char **error_r);
void local_aliases_close(struct local_aliases *a);
/* 1 found (value, owner's rights in *who), 0 not found, -1 temporary */
int local_aliases_lookup(struct local_aliases *a, const char *key, buf_t *value,
                         struct local_rights *who, struct local_result *res);
/* the rights of uid (a file's owner); root means $default_privs. 0 ok, -1 res */
int local_rights_of_owner(uid_t uid, gid_t gid, struct local_rights *who,
                          struct local_result *res);
/* the rights of a local user (its own mailbox, .forward, mailbox_command) */
void local_rights_of_user(const struct mail_user *u, struct local_rights *who);

/* Split an alias value, .forward or :include: file into targets: commas
   and whitespace separate, "double quotes" group (and are removed), an
   unquoted |command runs to the next comma, a line starting with '#' is
   a comment. Returns the count; free the
   tokens with strv_free. At most max tokens (the rest is dropped,
   *truncated_r set). */
size_t local_list_split(const char *text, size_t max, char ***tokens_r,
                        bool *truncated_r);
/* Is class ("alias", "forward", "include") listed in the value of
   allow_mail_to_commands / allow_mail_to_files? */
bool local_class_allowed(const char *list, const char *cls);

/* Read a .forward or :include: file (local_forward.c): opened with who's
   IDs, O_NOFOLLOW, then fstat: a regular file not writable by others,
   owned by want_uid or root when want_owner (a .forward), else (an
   include file) with exactly one link, read up to
   64 KiB. 1 read (text, owner in *st_uid/st_gid), 0 absent, -1 res says why. */
int local_list_read(const char *path, const struct local_rights *who,
                    bool want_owner, uid_t want_uid, buf_t *text,
                    uid_t *st_uid, gid_t *st_gid, struct local_result *res);
/* Expand forward_path for a user: one path per element; an element that
   names an empty attribute ($extension without one) is left out.
   Attributes: user, home, shell, recipient, extension, domain, local,
   recipient_delimiter; $name, ${name}, ${name?text}, ${name:text}.
   Returns the count; free with strv_free. */
size_t local_forward_paths(const char *forward_path, const struct local_rights *who,
                           const char *recipient, const char *extension,
                           const char *delimiter, char ***paths_r);

/* What a command sees (local_command.c) */
struct local_cmd_ctx {
    const char *user;       /* bare recipient name (USER, LOGNAME) */
    const char *extension;  /* "" if none */
    const char *delimiter;  /* the delimiter that preceded it, "" if none */
};
/* The command's environment: NULL-terminated, free with strv_free(env, n) */
size_t local_command_env(const struct local_request *r, const struct local_rights *who,
                         const struct local_cmd_ctx *ctx, char ***env_r);
/* Map a wait(2) status (or a timeout) and the command's output to a result */
void local_command_status(int wstatus, bool timed_out, const char *output,
                          struct local_result *res);
/* Run command with who's uid, gid and groups (never root), the message on
   its stdin; output captured for the bounce reason. */
void local_command(const struct local_request *r, const struct local_rights *who,
                   const struct local_cmd_ctx *ctx, const char *command,
                   struct local_result *res);

#endif

/*
 * local_deliver - resolve a local recipient and deliver to what it
 * expands to: aliases (recursively, with a depth limit and loop
 * detection), :include: lists, |command and /file targets, the user's
 * .forward (forward_path, user+ext with .forward+ext), "\user", and the
 * user's own mailbox ($mailbox_command, else local_mailbox()).
 *
 * Where each target is delivered:
 *   - |command and /file targets, and the one user's own mailbox, within
 *     this request ("in-request actions"), with rights derived here: an
 *     alias table's owner ($default_privs for root's), an include file's
 *     owner (root: $default_privs), the user for its .forward and mailbox;
 *   - plain addresses (several local users of an alias list, remote
 *     addresses, the addresses of a .forward) in one new queue file with a
 *     recipient record per target, so each target's completion is
 *     recorded on its own. The copy of an alias list carries
 *     LOCAL_ATTR_EXPANDED: its local recipients are delivered to the user
 *     of that name (its .forward included) without alias expansion again.
 *     A .forward's copy does not (its names are full addresses again); a
 *     "Delivered-To:" of the recipient in front of either stops loops.
 *
 * Security (the design point): a queue file is written as $mail_owner,
 * and a compromised $mail_owner could write any queue file. So a queue
 * file never carries a command, a file name or a right that local would
 * use: those are re-derived at delivery time from the alias tables (root
 * or their owner's) and the user's own .forward/:include: files, and run
 * within the request that read them. Only plain addresses are queued;
 * whoever could forge those could have mailed them anyway.
 *
 * At worst twice: the in-request actions run one after the other; a
 * defer stops the rest and the whole recipient is retried, so a command
 * or file that had already got the message gets it again on the retry.
 * Within one request a per-request duplicate filter (type, target,
 * uid) runs each target once. The queue file is written after the
 * in-request actions, so a deferring command never duplicates the
 * queued addresses.
 *
 * owner-NAME: when the alias NAME has an owner-NAME alias (and
 * owner_request_special is on, the sender not null), the message is first
 * re-queued for NAME with owner-NAME as its sender; that copy is then
 * expanded as usual, so errors for the list (bounces of its commands and
 * files, and of every forwarded copy, which keeps that sender) go to
 * owner-NAME. Only the recipient's own alias gets this; lists nested in it
 * are expanded with the sender already chosen.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "local.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "util/privs.h"
#include "mail/queue.h"
#include "mail/cleanup.h"
#include "mail/server.h"
#include "util/util.h"

#define LOCAL_MAX_TARGETS 1000

void local_result_set(struct local_result *res, int status, const char *dsn,
                      const char *fmt, ...)
{
    va_list ap;
    res->status = status;
    str_copy(res->dsn, dsn, sizeof(res->dsn));
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
    va_end(ap);
}

enum action_type { ACT_MAILBOX, ACT_COMMAND, ACT_FILE };

/* one in-request delivery */
struct action {
    enum action_type type;
    char *target;               /* command, file name, or user name */
    struct local_rights who;
    struct mail_user user;      /* ACT_MAILBOX */
};

/* the expansion of one recipient */
struct expansion {
    struct action *acts;        /* in-request actions */
    size_t nacts;
    char **users;               /* local users an alias list names */
    size_t nusers;
    bool *nofwd;                /* per user: "\user", no .forward */
    char **remote;              /* addresses to forward to */
    size_t nremote;
    bool forwarded;             /* remote came from a .forward */
    char **seen;                /* alias names and include files done (loops) */
    size_t nseen;
    size_t total;
    const char *domain;         /* the recipient's */
};

/* where a target was found: decides what it may be and whose rights */
struct origin {
    const char *cls;            /* "alias", "forward", "include" */
    const struct local_rights *who;
    const char *self;           /* .forward: its user (mailbox on "self") */
    const struct mail_user *self_user;
};

static bool strv_has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(s);
}

static void user_push(struct expansion *x, const char *name, bool nofwd)
{
    for (size_t i = 0; i < x->nusers; i++)
        if (strcmp(x->users[i], name) == 0) {
            x->nofwd[i] = x->nofwd[i] && nofwd;
            return;
        }
    x->nofwd = xrealloc(x->nofwd, (x->nusers + 1) * sizeof(*x->nofwd));
    x->nofwd[x->nusers] = nofwd;
    strv_push(&x->users, &x->nusers, name);
}

/* action_push - the per-request duplicate filter: a target with the same
   rights is delivered to once */
static void action_push(struct expansion *x, enum action_type type, const char *target,
                        const struct local_rights *who, const struct mail_user *u)
{
    for (size_t i = 0; i < x->nacts; i++)
        if (x->acts[i].type == type && x->acts[i].who.uid == who->uid
            && strcmp(x->acts[i].target, target) == 0)
            return;
    x->acts = xrealloc(x->acts, (x->nacts + 1) * sizeof(*x->acts));
    struct action *a = &x->acts[x->nacts++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    a->target = xstrdup(target);
    a->who = *who;
    if (u)
        a->user = *u;
}

static void expansion_free(struct expansion *x)
{
    for (size_t i = 0; i < x->nacts; i++)
        free(x->acts[i].target);
    free(x->acts);
    strv_free(x->users, x->nusers);
    free(x->nofwd);
    strv_free(x->remote, x->nremote);
    strv_free(x->seen, x->nseen);
    memset(x, 0, sizeof(*x));
}

static int expand_name(const char *local, struct local_aliases *aliases, int depth,
                       struct expansion *x, struct local_result *res);
static int expand_list(const char *text, const struct origin *o,
                       struct local_aliases *aliases, int depth,
                       struct expansion *x, struct local_result *res);

/* expand_include - ":include:/path": its targets have the file owner's
   rights (root's: $default_privs); in a .forward only the user's own or
   root's files count */
static int expand_include(const char *path, const struct origin *o,
                          struct local_aliases *aliases, int depth,
                          struct expansion *x, struct local_result *res)
{
    buf_t key, text;
    uid_t uid;
    gid_t gid;
    struct local_rights owner;
    int rc = -1;

    if (depth > var_local_recursion_limit) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "include files nested too deeply");
        return -1;
    }
    buf_init(&key, 0);
    buf_printf(&key, ":include:%s", path);
    if (strv_has(x->seen, x->nseen, buf_str(&key))) {
        buf_free(&key);
        return 0;
    }
    strv_push(&x->seen, &x->nseen, buf_str(&key));
    buf_free(&key);
    buf_init(&text, 0);
    bool in_forward = o->self_user != NULL;
    int f = local_list_read(path, o->who, in_forward, o->who->uid, &text, &uid, &gid, res);
    if (f == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "include file %.200s does not exist",
                         path);
    } else if (f > 0) {
        if (in_forward && uid == o->who->uid) {
            owner = *o->who;
            rc = 0;
        } else {
            rc = local_rights_of_owner(uid, gid, &owner, res);
        }
        if (rc == 0) {
            struct origin inc = { "include", &owner, o->self, o->self_user };
            rc = expand_list(buf_str(&text), &inc, aliases, depth + 1, x, res);
        }
    }
    buf_free(&text);
    return rc;
}

/* expand_target - one item of an alias, .forward or include list */
static int expand_target(const char *target, const struct origin *o,
                         struct local_aliases *aliases, int depth,
                         struct expansion *x, struct local_result *res)
{
    if (++x->total > LOCAL_MAX_TARGETS) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6",
                         "alias expansion produced too many recipients");
        return -1;
    }
    if (target[0] == '|') {
        if (!local_class_allowed(var_allow_mail_to_commands, o->cls)) {
            local_result_set(res, DELIVER_BOUNCE, "5.7.1",
                             "mail to command is restricted (%s)", o->cls);
            return -1;
        }
        action_push(x, ACT_COMMAND, target + 1, o->who, NULL);
        return 0;
    }
    if (target[0] == '/') {
        if (!local_class_allowed(var_allow_mail_to_files, o->cls)) {
            local_result_set(res, DELIVER_BOUNCE, "5.7.1",
                             "mail to file is restricted (%s)", o->cls);
            return -1;
        }
        action_push(x, ACT_FILE, target, o->who, NULL);
        return 0;
    }
    if (strncasecmp(target, ":include:", 9) == 0)
        return expand_include(target + 9, o, aliases, depth, x, res);

    bool backslash = target[0] == '\\';
    char *lp, *dom;
    addr_split(target + backslash, &lp, &dom);
    int r = 0;
    char base[256];
    mailuser_base_local(lp, base, sizeof(base));
    if (*dom && !mailuser_domain_is_local(dom)) {
        if (!strv_has(x->remote, x->nremote, target + backslash))
            strv_push(&x->remote, &x->nremote, target + backslash);
    } else if (o->self_user != NULL) {
        /* a .forward: its own user is the mailbox, other names are
           addresses again */
        if (strcmp(base, o->self) == 0) {
            action_push(x, ACT_MAILBOX, o->self, o->who, o->self_user);
        } else {
            buf_t a;
            buf_init(&a, 0);
            buf_printf(&a, "%s%s%s", lp, *x->domain ? "@" : "", x->domain);
            if (!strv_has(x->remote, x->nremote, buf_str(&a)))
                strv_push(&x->remote, &x->nremote, buf_str(&a));
            buf_free(&a);
        }
    } else if (backslash) {
        user_push(x, base, true);       /* the mailbox, no alias, no .forward */
    } else {
        r = expand_name(lp, aliases, depth + 1, x, res);
    }
    free(lp);
    return r;
}

static int expand_list(const char *text, const struct origin *o,
                       struct local_aliases *aliases, int depth,
                       struct expansion *x, struct local_result *res)
{
    char **targets;
    bool truncated;
    size_t n = local_list_split(text, LOCAL_MAX_TARGETS + 1, &targets, &truncated);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = expand_target(targets[i], o, aliases, depth, x, res);
    strv_free(targets, n);
    return r;
}

/* expand_name - a local part: alias (recursively) or user */
static int expand_name(const char *local, struct local_aliases *aliases, int depth,
                       struct expansion *x, struct local_result *res)
{
    char base[256], lower[256];
    buf_t value;
    struct local_rights who;

    if (depth > var_local_recursion_limit) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6",
                         "alias expansion nested too deeply");
        return -1;
    }
    mailuser_base_local(local, base, sizeof(base));
    if (strv_has(x->seen, x->nseen, base))
        return 0;       /* "a: a, b" style self reference: stop here */
    buf_init(&value, 0);
    str_copy(lower, local, sizeof(lower));
    str_lower(lower);
    /* user+ext: the full name first, then the user's */
    int found = local_aliases_lookup(aliases, lower, &value, &who, res);
    if (found == 0 && strcmp(lower, base) != 0)
        found = local_aliases_lookup(aliases, base, &value, &who, res);
    if (found < 0) {
        buf_free(&value);
        return -1;
    }
    if (found == 0) {
        buf_free(&value);
        user_push(x, base, false);
        return 0;
    }
    strv_push(&x->seen, &x->nseen, base);
    char **targets;
    bool truncated;
    size_t n = local_list_split(buf_str(&value), LOCAL_MAX_TARGETS + 1, &targets,
                                &truncated);
    buf_free(&value);
    struct origin o = { "alias", &who, NULL, NULL };
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char *t = targets[i];
        /* an alias pointing at its own name delivers to the user */
        if (strcmp(t, base) == 0 || (t[0] == '\\' && strcmp(t + 1, base) == 0)) {
            user_push(x, base, t[0] == '\\');
            continue;
        }
        r = expand_target(t, &o, aliases, depth, x, res);
    }
    strv_free(targets, n);
    return r;
}

/* forward_rcpt - the address a target gets in the new queue file: a
   local user in the recipient's own (local) domain, so qmgr routes it
   back to local; a bare name if the recipient had no domain */
static void forward_rcpt(const char *user, const char *domain, buf_t *out)
{
    buf_reset(out);
    if (*domain)
        buf_printf(out, "%s@%s", user, domain);
    else
        buf_puts(out, user);
}

/* copy_content - queue file content into the new file */
static int copy_content(int fd, off_t off, uint64_t len, cleanup_t *c)
{
    char chunk[65536];
    while (len > 0) {
        size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
        ssize_t n = pread(fd, chunk, want, off);
        if (n <= 0)
            return -1;
        if (cleanup_content(c, chunk, (size_t)n) < 0)
            return -1;
        off += n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* what a new queue file gets */
struct fwd_copy {
    const char *sender;
    char **rcpts;
    size_t nrcpts;
    bool expanded;              /* LOCAL_ATTR_EXPANDED */
    bool delivered_to;          /* Delivered-To: recipient in front */
};

/* local_forward_write - the new queue file, with $mail_owner's IDs,
   through cleanup (no Received:, no size limit: the message was
   accepted already; cleanup's duplicate filter drops a target listed
   twice) */
static void local_forward_write(const struct local_request *r, const struct fwd_copy *fc,
                                struct local_result *res)
{
    cleanup_t *c;
    buf_t hdr;

    /* the content is parsed here, with $mail_owner's IDs, never root's;
       checked even when no Delivered-To: is added (prepend_delivered_header
       without forward): a copy that already passed here is a loop */
    if (local_delivered_to(r)) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s",
                         r->recipient);
        return;
    }
    /* inspected when it arrived: no header/body checks again */
    if ((c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_NO_CHECKS)) == NULL) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot create queue file: %m");
        return;
    }
    buf_init(&hdr, 0);
    /* as Postfix does: a copy that comes back here is seen as a loop */
    if (fc->delivered_to)
        buf_printf(&hdr, "Delivered-To: %s\n", r->recipient);
    int ok = cleanup_sender(c, fc->sender) == 0
        && cleanup_attr(c, "forwarded_from", r->queue_id) == 0
        && cleanup_attr(c, "protocol", "local") == 0
        && (!fc->expanded || cleanup_attr(c, LOCAL_ATTR_EXPANDED, "yes") == 0);
    for (size_t i = 0; ok && i < fc->nrcpts; i++)
        ok = cleanup_rcpt(c, r->orig_rcpt, fc->rcpts[i]) == 0;
    ok = ok && (hdr.len == 0 || cleanup_content(c, buf_str(&hdr), hdr.len) == 0)
        && copy_content(r->queue_fd, r->content_offset, r->content_size, c) == 0;
    buf_free(&hdr);
    if (!ok) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot write queue file: %m");
        cleanup_free(c);
        return;
    }
    if (cleanup_commit(c) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot commit queue file: %m");
        cleanup_free(c);
        return;
    }
    size_t n = cleanup_nrcpts(c);
    log_info("%s: forwarded as %s to %zu recipient%s", r->queue_id, cleanup_qid(c),
             n, n == 1 ? "" : "s");
    if (trigger_send("public/qmgr", TRIGGER_NEW_MAIL) < 0)
        log_warning("cannot wake qmgr: %m");
    local_result_set(res, DELIVER_OK, "2.0.0", "forwarded as %s", cleanup_qid(c));
    cleanup_free(c);
}

/* local_forward - the targets become one new queue file with a
   recipient record per target; the caller marks the original recipient
   done only after the commit, so each target's delivery is recorded in
   its own record: a target that got the message is never tried again,
   one that defers is retried alone.
   Written as $mail_owner, not as root: incoming/ and public/ belong to
   $mail_owner, and qmgr must own what it moves (no chown needed).
   Remaining window: a crash after the commit but before local.c marks
   the recipient done makes the retry write a second file, so every
   target may get the message twice (there is no name to de-duplicate
   on, unlike the Maildir case). */
static void local_forward(const struct local_request *r, const struct fwd_copy *fc,
                          struct local_result *res)
{
    uid_t uid;
    gid_t gid;
    if (local_owner(&uid, &gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "mail_owner user \"%s\" does not exist", var_mail_owner);
        return;
    }
    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)uid);
        return;
    }
    local_forward_write(r, fc, res);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();   /* the ID switch cleared it */
}

/* loop_check - Delivered-To: recipient already there? Parsed with
   $mail_owner's IDs. 1 loop (res set), 0 no, -1 res says why */
static int loop_check(const struct local_request *r, struct local_result *res)
{
    uid_t uid;
    gid_t gid;
    if (local_owner(&uid, &gid) < 0 || privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to $mail_owner");
        return -1;
    }
    bool loop = local_delivered_to(r);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();
    if (loop)
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s",
                         r->recipient);
    return loop ? 1 : 0;
}

/* split_ext - the extension of a local part and the delimiter before it */
static void split_ext(const char *local, const char *base, char *ext, size_t esize,
                      char *delim)
{
    size_t blen = strlen(base);
    ext[0] = delim[0] = delim[1] = '\0';
    if (strlen(local) > blen && var_recipient_delimiter
        && strchr(var_recipient_delimiter, local[blen]) && local[blen] != '\0') {
        delim[0] = local[blen];
        str_copy(ext, local + blen + 1, esize);
    }
}

/* user_forward - the user's .forward (forward_path, as the user): 1 it
   had one (its targets are in x), 0 none, -1 res */
static int user_forward(const struct local_request *r, const struct mail_user *u,
                        const char *ext, const char *delim, struct local_aliases *aliases,
                        struct expansion *x, struct local_result *res)
{
    struct local_rights who;
    char **paths;
    buf_t text;
    int rc = 0;

    size_t acts0 = x->nacts, remote0 = x->nremote;
    local_rights_of_user(u, &who);
    if (*who.user == '\0')
        str_copy(who.user, u->name, sizeof(who.user));
    size_t n = local_forward_paths(var_forward_path, &who, r->recipient, ext, delim,
                                   &paths);
    buf_init(&text, 0);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uid_t st_uid;
        gid_t st_gid;
        rc = local_list_read(paths[i], &who, true, u->uid, &text, &st_uid, &st_gid, res);
        if (rc > 0) {
            struct origin o = { "forward", &who, u->name, u };
            if (expand_list(buf_str(&text), &o, aliases, 1, x, res) < 0)
                rc = -1;
            else
                log_info("%s: %s: using %s", r->queue_id, r->recipient, paths[i]);
        }
    }
    buf_free(&text);
    strv_free(paths, n);
    if (rc > 0 && x->nacts == acts0 && x->nremote == remote0) {
        /* an empty .forward: the mailbox, as if there were none */
        rc = 0;
    }
    return rc;
}

/* run_actions - the in-request deliveries, in order; a defer stops them.
   OK when every one got it, else the first failure. */
static void run_actions(const struct local_request *r, const struct expansion *x,
                        const char *user, const char *ext, const char *delim,
                        struct local_result *res)
{
    struct local_result one, bounced = { DELIVER_OK, "", "", "" };
    bool need_loop_check = false;
    struct local_cmd_ctx ctx = { user, ext, delim };

    for (size_t i = 0; i < x->nacts; i++)
        need_loop_check |= x->acts[i].type != ACT_MAILBOX;
    if (need_loop_check && loop_check(r, res) != 0)
        return;
    local_result_set(res, DELIVER_OK, "2.0.0", "delivered");
    for (size_t i = 0; i < x->nacts; i++) {
        const struct action *a = &x->acts[i];
        one = (struct local_result){ DELIVER_DEFER, "4.3.0", "", "" };
        switch (a->type) {
        case ACT_MAILBOX:
            if (*var_mailbox_command) {
                local_command(r, &a->who, &ctx, var_mailbox_command, &one);
                if (one.status == DELIVER_OK)
                    local_result_set(&one, DELIVER_OK, "2.0.0",
                                     "delivered to command: %.200s", var_mailbox_command);
            } else {
                local_mailbox(r, &a->user, &one);
            }
            break;
        case ACT_COMMAND:
            local_command(r, &a->who, &ctx, a->target, &one);
            if (one.status == DELIVER_OK)
                local_result_set(&one, DELIVER_OK, "2.0.0", "delivered to command: %.200s",
                                 a->target);
            break;
        case ACT_FILE:
            if (privs_running_as_root() && a->who.uid == 0)
                local_result_set(&one, DELIVER_DEFER, "4.3.0",
                                 "refusing to write file %.200s as root", a->target);
            else
                local_file(r, a->target, a->who.uid, a->who.gid, &one);
            break;
        }
        if (x->nacts > 1)
            log_info("%s: %s: %s %.200s: %s (%s)", r->queue_id, r->recipient,
                     a->type == ACT_MAILBOX ? "mailbox of" : a->type == ACT_COMMAND
                         ? "command" : "file", a->target,
                     one.status == DELIVER_OK ? "sent" : one.status == DELIVER_DEFER
                         ? "deferred" : "bounced", one.reason);
        if (one.status == DELIVER_DEFER) {
            *res = one;
            return;
        }
        if (one.status == DELIVER_BOUNCE && bounced.status == DELIVER_OK)
            bounced = one;
        if (x->nacts == 1 && one.status == DELIVER_OK)
            *res = one;
    }
    if (bounced.status != DELIVER_OK)
        *res = bounced;
}

/* owner_hop - owner-NAME exists for the alias the recipient names:
   re-queue the recipient with owner-NAME as sender. 1 done (res set),
   0 nothing to do, -1 res */
static int owner_hop(const struct local_request *r, struct local_aliases *aliases,
                     const char *lp, const char *dom, struct local_result *res)
{
    char base[256], lower[256];
    buf_t value, owner;
    struct local_rights who;

    if (!var_owner_request_special || *r->sender == '\0' || aliases == NULL)
        return 0;
    mailuser_base_local(lp, base, sizeof(base));
    str_copy(lower, lp, sizeof(lower));
    str_lower(lower);
    buf_init(&value, 0);
    buf_init(&owner, 0);
    const char *name = lower;
    int f = local_aliases_lookup(aliases, lower, &value, &who, res);
    if (f == 0 && strcmp(lower, base) != 0) {
        name = base;
        f = local_aliases_lookup(aliases, base, &value, &who, res);
    }
    if (f > 0 && strncmp(name, "owner-", 6) != 0) {
        buf_printf(&owner, "owner-%s", name);
        f = local_aliases_lookup(aliases, buf_str(&owner), &value, &who, res);
        if (f > 0) {
            if (*dom)
                buf_printf(&owner, "@%s", dom);
            if (strcasecmp(buf_str(&owner), r->sender) == 0)
                f = 0;          /* this is that copy */
        }
    } else if (f > 0) {
        f = 0;
    }
    if (f > 0) {
        char *rcpt = (char *)r->recipient;
        struct fwd_copy fc = { buf_str(&owner), &rcpt, 1, false, false };
        local_forward(r, &fc, res);
    }
    buf_free(&value);
    buf_free(&owner);
    return f;
}

void local_deliver(const struct local_request *r, struct local_aliases *aliases,
                   struct local_result *res)
{
    char *lp, *dom;
    char base[256], ext[256], delim[2];
    struct expansion x = { 0 };
    struct mail_user u;

    addr_split(r->recipient, &lp, &dom);
    if (*dom && !mailuser_domain_is_local(dom)) {
        local_result_set(res, DELIVER_BOUNCE, "5.1.2",
                         "domain %.100s is not local", dom);
        free(lp);
        return;
    }
    x.domain = dom;
    mailuser_base_local(lp, base, sizeof(base));
    split_ext(lp, base, ext, sizeof(ext), delim);
    int er = 0;
    if (r->expanded) {
        /* a member of an alias list local already expanded */
        user_push(&x, base, false);
    } else if ((er = owner_hop(r, aliases, lp, dom, res)) != 0) {
        free(lp);
        return;
    } else {
        er = expand_name(lp, aliases, 0, &x, res);
    }
    if (er < 0)
        goto done;
    if (x.nusers == 0 && x.nremote == 0 && x.nacts == 0) {
        /* "a: b" + "b: a": nobody left to receive it; never drop silently */
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "alias expansion loop");
        goto done;
    }
    struct fwd_copy fc = { r->sender, NULL, 0, true, true };
    buf_t rcpt;
    buf_init(&rcpt, 0);
    if (x.nusers == 1 && x.nremote == 0) {
        /* one user: its .forward or its mailbox, within this request */
        int f = mailuser_lookup(x.users[0], &u);
        if (f < 0) {
            local_result_set(res, DELIVER_DEFER, "4.3.0", "user lookup failed");
        } else if (f == 0) {
            local_result_set(res, DELIVER_BOUNCE, "5.1.1", "unknown user: \"%.100s\"",
                             x.users[0]);
        } else {
            bool nofwd = x.nofwd[0];
            int fw = nofwd ? 0 : user_forward(r, &u, ext, delim, aliases, &x, res);
            if (fw == 0) {
                struct local_rights who;
                local_rights_of_user(&u, &who);
                action_push(&x, ACT_MAILBOX, u.name, &who, &u);
            }
            if (fw >= 0) {
                x.forwarded = fw > 0;
                fc.expanded = !x.forwarded;
                fc.delivered_to = !x.forwarded
                    || local_class_allowed(var_prepend_delivered_header, "forward");
                for (size_t i = 0; i < x.nremote; i++)
                    strv_push(&fc.rcpts, &fc.nrcpts, x.remote[i]);
                er = 1;
            }
        }
        if (er != 1) {
            buf_free(&rcpt);
            goto done;
        }
    } else {
        for (size_t i = 0; i < x.nusers + x.nremote; i++) {
            if (i < x.nusers)
                forward_rcpt(x.users[i], dom, &rcpt);
            else
                forward_rcpt(x.remote[i - x.nusers], "", &rcpt);
            strv_push(&fc.rcpts, &fc.nrcpts, buf_str(&rcpt));
        }
        fc.delivered_to = true;
    }
    buf_free(&rcpt);
    /* in-request actions first: one that defers must not leave a second
       queue file behind on the retry */
    if (x.nacts > 0)
        run_actions(r, &x, base, ext, delim, res);
    else
        local_result_set(res, DELIVER_OK, "2.0.0", "delivered");
    /* an alias led to one other user: the log says whose mailbox it was
       (to=<user>, orig_to=<recipient>), as Postfix's does */
    if (x.nusers == 1 && x.nremote == 0 && strcasecmp(x.users[0], base) != 0)
        (void)snprintf(res->final_to, sizeof(res->final_to), "%s%s%s",
                       x.users[0], *dom ? "@" : "", dom);
    if (res->status != DELIVER_DEFER && fc.nrcpts > 0) {
        struct local_result fres = { DELIVER_DEFER, "4.3.0", "", "" };
        local_forward(r, &fc, &fres);
        /* a defer wins; else the first bounce; else what was done */
        if (fres.status == DELIVER_DEFER
            || (fres.status == DELIVER_BOUNCE && res->status == DELIVER_OK)
            || (fres.status == DELIVER_OK && x.nacts == 0))
            *res = fres;
    }
    strv_free(fc.rcpts, fc.nrcpts);
done:
    free(lp);
    expansion_free(&x);
}

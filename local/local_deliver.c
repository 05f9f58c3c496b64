/*
 * local_deliver - resolve a local recipient: aliases (recursively, with a
 * depth limit and loop detection), then users. A single local target is
 * delivered to its Maildir within the request; anything else (several
 * targets, or a remote one) becomes one new queue file with a recipient
 * record per target (attribute LOCAL_ATTR_EXPANDED, a "Delivered-To:" of
 * the expanded recipient in front of the content), so each target's
 * completion is recorded on its own. Local recipients of such a file are
 * delivered to the user of that name without alias expansion.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* the expansion: local users to deliver to, remote addresses to forward */
struct expansion {
    char **users;
    size_t nusers;
    char **remote;
    size_t nremote;
    char **seen;            /* alias names already expanded (loops) */
    size_t nseen;
    size_t total;
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

static int expand_name(const char *local, maps_t *aliases, int depth,
                       struct expansion *x, struct local_result *res);

/* expand_target - one right-hand side item of an alias */
static int expand_target(const char *target, maps_t *aliases, int depth,
                         struct expansion *x, struct local_result *res)
{
    if (++x->total > LOCAL_MAX_TARGETS) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6",
                         "alias expansion produced too many recipients");
        return -1;
    }
    if (*target == '|' || *target == '/' || strncmp(target, ":include:", 9) == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "alias target \"%.100s\": delivery to commands, files "
                         "and include lists is not supported yet", target);
        return -1;
    }
    char *lp, *dom;
    addr_split(target, &lp, &dom);
    int r = 0;
    if (*dom && !mailuser_domain_is_local(dom)) {
        if (!strv_has(x->remote, x->nremote, target))
            strv_push(&x->remote, &x->nremote, target);
    } else {
        r = expand_name(lp, aliases, depth + 1, x, res);
    }
    free(lp);
    return r;
}

/* expand_name - a local part: alias (recursively) or user */
static int expand_name(const char *local, maps_t *aliases, int depth,
                       struct expansion *x, struct local_result *res)
{
    char base[256];
    buf_t value;
    if (depth > var_local_recursion_limit) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6",
                         "alias expansion nested too deeply");
        return -1;
    }
    mailuser_base_local(local, base, sizeof(base));
    if (strv_has(x->seen, x->nseen, base))
        return 0;       /* "a: a, b" style self reference: stop here */
    buf_init(&value, 0);
    int found = 0;
    if (aliases) {
        char lower[256];
        str_copy(lower, local, sizeof(lower));
        str_lower(lower);
        found = maps_lookup(aliases, lower, &value);
        if (found == 0 && strcmp(lower, base) != 0)
            found = maps_lookup(aliases, base, &value);
    }
    if (found < 0) {
        buf_free(&value);
        local_result_set(res, DELIVER_DEFER, "4.3.0", "alias table lookup failed");
        return -1;
    }
    if (found == 0) {
        buf_free(&value);
        if (!strv_has(x->users, x->nusers, base))
            strv_push(&x->users, &x->nusers, base);
        return 0;
    }
    strv_push(&x->seen, &x->nseen, base);
    char **targets;
    size_t n = str_split_list(buf_str(&value), &targets);
    buf_free(&value);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char *t = targets[i];
        /* an alias pointing at its own name delivers to the user */
        if (strcmp(t, base) == 0 || (t[0] == '\\' && strcmp(t + 1, base) == 0)) {
            if (!strv_has(x->users, x->nusers, base))
                strv_push(&x->users, &x->nusers, base);
            continue;
        }
        r = expand_target(t, aliases, depth, x, res);
    }
    strv_free(targets, n);
    return r;
}

static void expansion_free(struct expansion *x)
{
    strv_free(x->users, x->nusers);
    strv_free(x->remote, x->nremote);
    strv_free(x->seen, x->nseen);
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

/* local_forward_write - the new queue file, with $mail_owner's IDs,
   through cleanup (no Received:, no size limit: the message was
   accepted already; cleanup's duplicate filter drops a target listed
   twice) */
static void local_forward_write(const struct local_request *r, struct expansion *x,
                                struct local_result *res)
{
    cleanup_t *c;
    buf_t hdr, rcpt;
    char *lp, *dom;

    /* the content is parsed here, with $mail_owner's IDs, never root's */
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
    addr_split(r->recipient, &lp, &dom);
    buf_init(&hdr, 0);
    buf_init(&rcpt, 0);
    /* as Postfix does: a copy that comes back here is seen as a loop */
    buf_printf(&hdr, "Delivered-To: %s\n", r->recipient);
    int ok = cleanup_sender(c, r->sender) == 0
        && cleanup_attr(c, "forwarded_from", r->queue_id) == 0
        && cleanup_attr(c, "protocol", "local") == 0
        && cleanup_attr(c, LOCAL_ATTR_EXPANDED, "yes") == 0;
    for (size_t i = 0; ok && i < x->nusers + x->nremote; i++) {
        if (i < x->nusers)
            forward_rcpt(x->users[i], dom, &rcpt);
        else
            forward_rcpt(x->remote[i - x->nusers], "", &rcpt);
        ok = cleanup_rcpt(c, r->orig_rcpt, buf_str(&rcpt)) == 0;
    }
    ok = ok && cleanup_content(c, buf_str(&hdr), hdr.len) == 0
        && copy_content(r->queue_fd, r->content_offset, r->content_size, c) == 0;
    free(lp);
    buf_free(&hdr);
    buf_free(&rcpt);
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
static void local_forward(const struct local_request *r, struct expansion *x,
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
    local_forward_write(r, x, res);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();   /* the ID switch cleared it */
}

/* local_deliver_user - one local user's Maildir */
static void local_deliver_user(const struct local_request *r, const char *name,
                               struct local_result *res)
{
    struct mail_user u;
    int f = mailuser_lookup(name, &u);
    if (f < 0)
        local_result_set(res, DELIVER_DEFER, "4.3.0", "user lookup failed");
    else if (f == 0)
        local_result_set(res, DELIVER_BOUNCE, "5.1.1", "unknown user: \"%.100s\"", name);
    else
        local_mailbox(r, &u, res);
}

/* One target is delivered (or forwarded) within this request. Several
   are never delivered one after the other here: a retry after one of
   them deferred would deliver again to those already done. */
void local_deliver(const struct local_request *r, maps_t *aliases,
                   struct local_result *res)
{
    char *lp, *dom;
    struct expansion x = { 0 };
    addr_split(r->recipient, &lp, &dom);
    if (*dom && !mailuser_domain_is_local(dom)) {
        local_result_set(res, DELIVER_BOUNCE, "5.1.2",
                         "domain %.100s is not local", dom);
        free(lp);
        return;
    }
    int er = 0;
    if (r->expanded) {
        /* a member of an alias list local already expanded */
        char base[256];
        mailuser_base_local(lp, base, sizeof(base));
        strv_push(&x.users, &x.nusers, base);
    } else {
        er = expand_name(lp, aliases, 0, &x, res);
    }
    free(lp);
    if (er < 0) {
        expansion_free(&x);
        return;
    }
    if (x.nusers == 0 && x.nremote == 0) {
        /* "a: b" + "b: a": nobody left to receive it; never drop silently */
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "alias expansion loop");
        expansion_free(&x);
        return;
    }
    if (x.nusers == 1 && x.nremote == 0)
        local_deliver_user(r, x.users[0], res);
    else
        local_forward(r, &x, res);
    expansion_free(&x);
}

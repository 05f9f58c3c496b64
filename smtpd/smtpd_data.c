/*
 * smtpd_data - DATA: open a queue file in incoming/ through cleanup
 * (mail/cleanup.h: envelope, our Received:, duplicate filter, size limit),
 * stream the decoded content into it, and commit. "250" is only said
 * after the commit (queue_commit.h, batched with other sessions') made
 * the file durable (or header/body checks
 * DISCARDed it, as Postfix does); every other outcome discards it, and a
 * REJECT of the checks is answered with its own code and text.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/cleanup.h"
#include "mail/queue_commit.h"
#include "mail/config.h"
#include "util/log.h"
#include "mail/server.h"
#include "util/util.h"

/* data_cleanup - this transaction's cleanup, or NULL */
static cleanup_t *data_cleanup(const struct smtpd_session *s)
{
    return s->txn.cleanup;
}

/* data_qid - the queue ID of this DATA, for the log */
static const char *data_qid(const struct smtpd_session *s)
{
    cleanup_t *c = data_cleanup(s);

    return c ? cleanup_qid(c) : "NOQUEUE";
}

/* data_open - is the queue file still being written? */
static bool data_open(const struct smtpd_session *s)
{
    cleanup_t *c = data_cleanup(s);

    return c != NULL && cleanup_ok(c);
}

/* data_discard - throw the queue file away, keep its ID for the log */
static void data_discard(struct smtpd_session *s)
{
    cleanup_t *c = data_cleanup(s);

    if (c != NULL)
        cleanup_abort(c);
}

/* data_write_failed - remember the first queue file error, drop the file */
static void data_write_failed(struct smtpd_session *s, const char *what)
{
    if (s->txn.write_errno == 0) {
        s->txn.write_errno = errno ? errno : EIO;
        log_warning("%s: queue file %s: %s", data_qid(s), what,
                    strerror(s->txn.write_errno));
    }
    data_discard(s);
}

/* smtpd_data_abort - the transaction is over: discard and forget */
void smtpd_data_abort(struct smtpd_session *s)
{
    cleanup_free(s->txn.cleanup);       /* discards an uncommitted file */
    s->txn.cleanup = NULL;
}

/* data_protocol - the with-protocol of Received: and the attribute;
   a message sent with SMTPUTF8 says UTF8SMTP, UTF8SMTPS, UTF8SMTPA,
   UTF8SMTPSA (RFC 6531 3.7.3) instead of ESMTP... */
static const char *data_protocol(const struct smtpd_session *s, char *buf,
                                 size_t size)
{
    const char *p = smtpd_proto(s);

    if (s->txn.smtputf8 && strncmp(p, "ESMTP", 5) == 0) {
        int n = snprintf(buf, size, "UTF8%s", p + 1);
        if (n > 0 && (size_t)n < size)
            return buf;
    }
    return p;
}

/* data_envelope - sender, attributes, recipients, start of content
   (with our Received:, written by cleanup) */
static int data_envelope(struct smtpd_session *s, cleanup_t *c)
{
    char tls[256], proto[32];
    const struct smtpd_txn *t = &s->txn;

    cleanup_set_tls_info(c, smtpd_tls_info(s, tls, sizeof(tls)));
    if (var_smtpd_sasl_authenticated_header && s->sasl_username[0] != '\0')
        cleanup_set_auth_info(c, s->sasl_username);
    if (cleanup_sender(c, t->sender) < 0
        || cleanup_attr(c, "client_name", s->client_name) < 0
        || cleanup_attr(c, "client_address", s->addr) < 0
        || (s->have_helo && cleanup_attr(c, "helo_name", s->helo) < 0)
        || cleanup_attr(c, "protocol", data_protocol(s, proto, sizeof(proto))) < 0
        || (t->dsn_envid && cleanup_attr(c, "dsn_envid", t->dsn_envid) < 0)
        || (t->dsn_ret && cleanup_attr(c, "dsn_ret", t->dsn_ret) < 0)
        || (t->smtputf8 && cleanup_attr(c, "smtputf8", "yes") < 0)
        || (t->requiretls && cleanup_attr(c, "requiretls", "yes") < 0))
        return -1;
    for (size_t i = 0; i < t->nrcpts; i++)
        if (cleanup_rcpt_dsn(c, NULL, t->rcpts[i], t->rcpt_notify[i],
                             t->rcpt_dsn_orcpt[i]) < 0)
            return -1;
    return cleanup_content_begin(c);
}

/* smtpd_data_open - the queue file and its envelope, for DATA and BDAT */
bool smtpd_data_open(struct smtpd_session *s)
{
    const char *queue;
    cleanup_t *c;

    s->txn.write_errno = 0;
    smtpd_data_abort(s);                /* nothing left from before */
    /* HOLD by a restriction: straight into hold/, qmgr never sees it.
       Our Received: always; Message-ID:/Date: added for authenticated
       (submission) clients only */
    s->txn.policy_in_hold = s->txn.policy_hold;
    queue = s->txn.policy_hold ? QUEUE_HOLD : QUEUE_INCOMING;
    if ((c = cleanup_open(queue, CLEANUP_FLAG_RECEIVED
                          | (s->sasl_username[0] != '\0'
                             ? CLEANUP_FLAG_ADD_MISSING : 0u))) == NULL) {
        log_warning("cannot create a queue file in %s: %s", queue,
                    strerror(errno));
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return false;
    }
    s->txn.cleanup = c;
    if (var_message_size_limit > 0)
        cleanup_set_size_limit(c, (uint64_t)var_message_size_limit);
    if (s->sasl_username[0] != '\0')
        log_info("%s: client=%s, sasl_method=%s, sasl_username=%s",
                 cleanup_qid(c), s->namaddr, s->sasl_method, s->sasl_username);
    else
        log_info("%s: client=%s", cleanup_qid(c), s->namaddr);
    if (data_envelope(s, c) < 0) {
        data_write_failed(s, "write");
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        smtpd_data_abort(s);
        return false;
    }
    buf_reset(&s->dbuf);
    return true;
}

/* data_policy - smtpd_data_restrictions at the DATA command (not BDAT,
   as Postfix); replies and returns false when refused */
static bool data_policy(struct smtpd_session *s)
{
    buf_t reply;
    bool ok;

    buf_init(&reply, 4096);
    ok = smtpd_check_data(s, &reply) == 0;
    if (!ok)
        smtpd_reply(s, "%s", buf_str(&reply));
    buf_free(&reply);
    return ok;
}

bool smtpd_data_begin(struct smtpd_session *s)
{
    if (!s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    if (s->txn.bdat || s->txn.binarymime) {
        /* RFC 3030 2, 3: not in a BDAT transaction, not for BINARYMIME */
        smtpd_reply(s, "503 5.5.1 Error: %s", s->txn.bdat
                    ? "DATA after BDAT" : "BODY=BINARYMIME requires BDAT");
        return false;
    }
    if (s->txn.nrcpts == 0) {
        /* RFC 5321 3.3 allows 503 or 554; 554 (Postfix's choice) tells a
           pipelining client that all its RCPTs were refused */
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return false;
    }
    if (!data_policy(s) || !smtpd_data_open(s))
        return false;
    if (s->txn.dec == NULL)
        s->txn.dec = xmalloc(sizeof(*s->txn.dec));
    smtpdata_init(s->txn.dec);
    buf_reset(&s->dbuf);
    s->txn.data_bytes = 0;       /* the deadline starts with the 354 */
    s->txn.in_data = true;
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    return true;
}

/* data_too_big - the decoder's RFC 1870 count (cleanup counts the same
   way and refuses the file past the limit) */
static bool data_too_big(const struct smtpd_session *s)
{
    return var_message_size_limit > 0
           && s->txn.dec->size > (uint64_t)var_message_size_limit;
}

/* smtpd_data_failing - the message can no longer be queued (too big,
   a write error): only a final error reply is left to say */
bool smtpd_data_failing(const struct smtpd_session *s)
{
    return data_too_big(s) || !data_open(s) || s->txn.write_errno != 0;
}

/* smtpd_data_store - move decoded content to the queue file, or drop it */
void smtpd_data_store(struct smtpd_session *s)
{
    if (data_open(s) && s->dbuf.len > 0
        && cleanup_content(data_cleanup(s), s->dbuf.data, s->dbuf.len) < 0) {
        if (errno == EFBIG)
            data_discard(s);            /* keep reading, say 552 at the end */
        else
            data_write_failed(s, "write");
    }
    buf_reset(&s->dbuf);
}

/* ---- the commit ---------------------------------------------------------

   The fsyncs run in queue_commit's worker thread, batched with those of
   every other session of this process (group commit); the session
   handles no input meanwhile, and says 250 only in data_committed, after
   the worker reported the file durable. Without a worker (it could not
   be started) the commit runs here, synchronously. */

/* A message whose commit is running */
struct smtpd_commit {
    struct smtpd_session *s;
    cleanup_t *cleanup;
    struct queue_sync job;
    char *message_id;                   /* for the log, or NULL */
    bool bdat;
    bool policy_in_hold;
};

static queue_committer_t *smtpd_committer;

void smtpd_data_init(ev_loop_t *loop)
{
    if ((smtpd_committer = queue_committer_new(loop)) == NULL)
        log_warning("no commit thread (%s): queue files are committed "
                    "one at a time", strerror(errno));
}

void smtpd_data_free(void)
{
    queue_committer_free(smtpd_committer);
    smtpd_committer = NULL;
}

bool smtpd_data_committing(void)
{
    return queue_committer_pending(smtpd_committer) > 0;
}

/* data_committed - the commit is over (r as cleanup_commit returns):
   the final reply, then the log and qmgr's wakeup */
static void data_committed(struct smtpd_session *s,
                           const struct smtpd_commit *k, int r)
{
    cleanup_t *c = k->cleanup;
    const char *qid = cleanup_qid(c);
    const char *text;
    int code;

    if (r < 0) {
        if (cleanup_outcome(c, &code, &text) == CLEANUP_REJECTED) {
            smtpd_reply(s, "%d %s", code, text);    /* cleanup logged it */
            return;
        }
        log_warning("%s: queue file commit: %s", qid, strerror(errno));
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return;
    }
    if (k->message_id != NULL)
        log_info("%s: message-id=%s", qid, k->message_id);
    s->cmd_ok[k->bdat ? SMTP_BDAT : SMTP_DATA]++;
    s->errors = 0;
    s->junk_cmds = 0;
    smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
    /* DISCARD: nothing was kept; HOLD: qmgr leaves hold/ alone */
    switch (cleanup_outcome(c, NULL, NULL)) {
    case CLEANUP_QUEUED:
        if (k->policy_in_hold)
            log_info("%s: held in %s", qid, QUEUE_HOLD);
        else if (trigger_send("public/qmgr", TRIGGER_NEW_MAIL) < 0)
            log_warning("%s: cannot wake qmgr: %s", qid, strerror(errno));
        break;
    case CLEANUP_HELD:
        log_info("%s: held in %s", qid, QUEUE_HOLD);
        break;
    default:
        break;
    }
}

static void commit_free(struct smtpd_commit *k)
{
    cleanup_free(k->cleanup);
    free(k->message_id);
    free(k);
}

/* commit_done - the worker is done with k's file (loop thread) */
static void commit_done(struct queue_sync *job, void *ctx)
{
    struct smtpd_commit *k = ctx;
    struct smtpd_session *s = k->s;
    int r = cleanup_sealed(k->cleanup, job);

    data_committed(s, k, r);
    commit_free(k);
    s->commit = NULL;
    smtpd_commit_over(s);
}

/* data_commit - make the file durable, then and only then say 250 */
static void data_commit(struct smtpd_session *s)
{
    struct smtpd_commit *k = calloc(1, sizeof(*k));
    struct queue_sync *jobs[1];
    int r;

    if (k == NULL) {
        smtpd_reply(s, "451 4.3.0 Error: insufficient system resources");
        return;
    }
    k->s = s;
    k->cleanup = s->txn.cleanup;
    k->bdat = s->txn.bdat;
    k->policy_in_hold = s->txn.policy_in_hold;
    if (smtpdata_has_message_id(s->txn.dec))
        k->message_id = strdup(s->txn.dec->message_id);
    /* HOLD from the end-of-data restrictions: committed into hold/
       directly, so qmgr never sees it in incoming/ */
    if (s->txn.policy_hold && !s->txn.policy_in_hold)
        cleanup_hold(k->cleanup, "end-of-data restriction");
    s->txn.cleanup = NULL;              /* k owns it now */
    r = cleanup_seal(k->cleanup, &k->job);
    if (r == 1 && smtpd_committer != NULL
        && queue_committer_submit(smtpd_committer, &k->job, commit_done,
                                  k) == 0) {
        s->commit = k;                  /* no input until commit_done */
        s->busy++;
        return;
    }
    if (r == 1) {                       /* no worker: the commit is here */
        jobs[0] = &k->job;
        queue_sync_run(jobs, 1);
        r = cleanup_sealed(k->cleanup, &k->job);
    }
    data_committed(s, k, r);
    commit_free(k);
}

/* data_eod_policy - smtpd_end_of_data_restrictions, then a DISCARD from
   any stage; true when the message was dealt with (replied) */
static bool data_eod_policy(struct smtpd_session *s)
{
    buf_t reply;

    buf_init(&reply, 4096);
    if (smtpd_check_eod(s, data_qid(s), &reply) < 0) {
        data_discard(s);
        smtpd_reply(s, "%s", buf_str(&reply));
        buf_free(&reply);
        return true;
    }
    buf_free(&reply);
    if (!s->txn.policy_discard)
        return false;
    /* claim delivery, throw it away (Postfix's DISCARD) */
    log_info("%s: discard: END-OF-MESSAGE from %s: message discarded by "
             "policy; from=<%s> proto=%s helo=<%s>", data_qid(s),
             s->namaddr, s->txn.sender, smtpd_proto(s), s->helo);
    smtpd_reply(s, "250 2.0.0 Ok: queued as %s", data_qid(s));
    data_discard(s);
    s->cmd_ok[s->txn.bdat ? SMTP_BDAT : SMTP_DATA]++;
    s->errors = 0;
    return true;
}

/* smtpd_data_finish - the end of the data (DATA's end line, the LAST
   chunk's last byte): one final reply, then no transaction */
void smtpd_data_finish(struct smtpd_session *s)
{
    s->txn.in_data = false;
    if (s->txn.dec->bare_lf
        && strcasecmp(var_smtpd_forbid_bare_newline, "reject") == 0) {
        data_discard(s);
        log_info("%s: reject: bare <LF> in %s from %s", data_qid(s),
                 s->txn.bdat ? "BDAT" : "DATA", s->namaddr);
        smtpd_reply(s, "550 5.5.2 Error: bare <LF> received");
    } else if (data_too_big(s)) {
        data_discard(s);
        log_info("%s: reject: message size %llu exceeds limit %ld from %s",
                 data_qid(s), (unsigned long long)s->txn.dec->size,
                 var_message_size_limit, s->namaddr);
        smtpd_reply(s, "552 5.3.4 Error: message file too big");
    } else if (!data_open(s) || s->txn.write_errno != 0) {
        data_discard(s);
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
    } else if (!data_eod_policy(s)) {
        data_commit(s);
    }
    smtpd_data_abort(s);
    free(s->txn.dec);
    s->txn.dec = NULL;
    smtpd_txn_reset(s);
}

bool smtpd_data_input(struct smtpd_session *s)
{
    const char *p;
    size_t n, used = 0;
    int rc;

    n = stream_peek(s->stream, &p);
    if (n == 0)
        return false;
    rc = smtpdata_feed(s->txn.dec, p, n, &s->dbuf, &used);
    if (rc < 0) {                       /* dbuf is unlimited: cannot be */
        errno = ENOMEM;
        data_write_failed(s, "buffer");
        used = n;
        buf_reset(&s->dbuf);
    }
    stream_consume(s->stream, used);
    smtpd_data_store(s);
    if (rc == 1)
        smtpd_data_finish(s);
    else
        smtpd_data_deadline(s, used);
    return true;
}

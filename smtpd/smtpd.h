/*
 * smtpd.h - what the smtpd source files share: the per-connection
 * session, the mail transaction inside it, and the functions one file
 * offers the others.
 *
 *   smtpd.c        main, connection life cycle, replies, error counting,
 *                  the pipelined command loop
 *   smtpd_cmd.c    HELO ... QUIT
 *   smtpd_data.c   DATA: the queue file through cleanup (envelope, Received:, commit)
 *   smtpd_bdat.c   BDAT (CHUNKING): the same queue file, counted bytes
 *   smtpd_check.c  access restrictions (smtpd_*_restrictions)
 *   smtpd_anvil.c  client connection count / rate limits (anvil)
 *   smtpd_tls.c    TLS context, STARTTLS, smtpd_tls_security_level
 *   smtpd_auth.c   AUTH (RFC 4954) via private/auth, smtpd_sasl_auth_required
 *   smtpd_dns.c    the client's host name (PTR + forward confirmation)
 */
#ifndef TERN_SMTPD_H
#define TERN_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/dns.h"
#include "util/events.h"
#include "util/netaddr.h"
#include "mail/queue.h"
#include "mail/cleanup.h"
#include "mail/smtpcmd.h"
#include "mail/smtpdata.h"
#include "util/stream.h"
#include "util/tls.h"

#define SMTPD_HELO_MAX 255

/*
 * One mail transaction (RFC 5321 3.3): from MAIL FROM to the final reply
 * to DATA. The session owns exactly one, embedded, and smtpd_txn_reset()
 * is the only way back to "no transaction" (RSET, HELO/EHLO, the end of
 * DATA whatever its outcome, the end of the session; STARTTLS when it
 * comes), so nothing of one message can leak into the next. Everything
 * about the client and the connection is in struct smtpd_session.
 * OpenSMTPD's smtp_tx / smtp_session split is the model.
 */
struct smtpd_txn {
    bool in_mail;                  /* MAIL was accepted */
    char *sender;                  /* "" for the null sender */
    char **rcpts;                  /* accepted (cleanup drops duplicates) */
    size_t nrcpts;

    /* DATA */
    bool in_data;                  /* between the 354 and the final reply */
    smtpdata_t *dec;               /* allocated for DATA only (1.3 KiB) */
    cleanup_t *cleanup;            /* the queue file (mail/cleanup.h), DATA
                                      until its final reply */
    int write_errno;               /* first queue file error, 0 if none */
    uint64_t data_start;           /* monotonic msec of the 354 */
    uint64_t data_bytes;           /* bytes received since */

    /* ESMTP parameters (smtpd_cmd.c) and BDAT (smtpd_bdat.c) */
    char *dsn_envid;               /* MAIL ENVID, decoded; NULL if none */
    const char *dsn_ret;           /* MAIL RET: "FULL", "HDRS" or NULL */
    bool smtputf8;                 /* MAIL SMTPUTF8 */
    bool requiretls;               /* MAIL REQUIRETLS (TLS sessions only) */
    bool binarymime;               /* MAIL BODY=BINARYMIME: BDAT only */
    unsigned *rcpt_notify;         /* per rcpts[i]: QREC_NOTIFY_* or 0 */
    char **rcpt_dsn_orcpt;         /* per rcpts[i]: "rfc822;a" or NULL */
    bool bdat;                     /* a BDAT was seen: no DATA now */
    uint64_t bdat_size;            /* the current chunk's size */
    uint64_t bdat_left;            /* bytes of the current chunk to store */
    uint64_t bdat_skip;            /* bytes of a refused chunk to drop */
    bool bdat_last;                /* the current chunk is the LAST one */
    /* access restrictions (smtpd_check.c): HOLD / DISCARD seen */
    bool policy_hold;              /* the message goes to hold/ */
    bool policy_in_hold;           /* its queue file was opened there */
    bool policy_discard;           /* 250, then throw it away */
};

/* One client connection: who the peer is, what it said about itself,
   error counts, timers, the stream. Outlives any number of transactions. */
struct smtpd_session {
    ev_loop_t *loop;
    stream_t *stream;              /* NULL once the peer is gone */
    struct sockaddr_storage peer;
    char addr[NETADDR_STRLEN];     /* "192.0.2.1" */
    char namaddr[DNS_NAME_MAX + NETADDR_STRLEN + 3];   /* "unknown[192.0.2.1]",
                                      "name[addr]" once the name is known */

    char helo[SMTPD_HELO_MAX + 1];
    bool have_helo;
    bool esmtp;

    struct smtpd_txn txn;          /* the current mail transaction */
    buf_t dbuf;                    /* DATA: decoded content on its way to
                                      disk (scratch, empty between calls) */

    /* errors and delays */
    long errors;
    bool sleeping;                 /* a reply is being held back */
    buf_t held;                    /* that reply */
    ev_timer_t sleep_timer;
    ev_timer_t idle_timer;         /* smtpd_timeout, or the request deadline */

    /* SASL (smtpd_auth.c): who the client authenticated as, "" until
       AUTH succeeded; the restrictions' permit_sasl_authenticated and
       reject_sender_login_mismatch read it */
    char sasl_username[256];
    char sasl_method[16];          /* "PLAIN", "LOGIN", ... */
    /* the AUTH exchange (smtpd_auth.c) */
    struct smtpd_auth *auth;       /* NULL until the first AUTH */
    bool auth_exchange;            /* 334 sent: lines are SASL responses */
    bool auth_waiting;             /* private/auth asked: no input now */

    /* limits and shutdown (smtpd_cmd.c, smtpd.c) */
    long junk_cmds;                /* NOOP, VRFY, RSET since the last message */
    unsigned long commands;        /* command lines in this session
                                      (smtpd_command_limit) */
    struct smtpd_session *next;    /* every open session of this process */
    struct smtpd_session *prev;

    /* TLS (smtpd_tls.c): the client certificate, set when the handshake
       finished; check_ccert_access can match the fingerprint */
    char tls_peer_fingerprint[TLS_FINGERPRINT_SIZE];  /* SHA-256 "AB:CD:..",
                                                         "" without one */
    bool tls_peer_verified;        /* it verified against smtpd_tls_CAfile */

    /* client name (smtpd_dns.c): client_name is the forward-confirmed
       name (Postfix's client_name), reverse_name the PTR answer before
       confirmation (Postfix's reverse_client_name, for
       reject_unknown_reverse_client_hostname); both "unknown" when there
       is none, and "unknown" while dns_pending. Statuses are Postfix's
       codes: SMTPD_NAME_OK 2, _TEMP 4, _PERM 5, _FORGED 6 (client_name
       only: a PTR name that does not resolve back to the address). */
    char *client_name;
    char *reverse_name;
    int client_name_status;
    int reverse_name_status;
    bool dns_pending;              /* lookup running: commands wait */
    bool connect_logged;           /* "connect from" is written */
    dns_query_t *dns_query;        /* the query in flight, or NULL */
    uint64_t dns_deadline;         /* monotonic msec: the lookup ends */

    bool anvil_counted;            /* anvil holds this connection */
    struct smtpd_commit *commit;   /* the message's commit is running
                                      (smtpd_data.c): no input now */
    bool stop_after_commit;        /* master stops us: 421 after it */
    bool tls_starting;             /* handshake running: no input now */

    /* bookkeeping */
    buf_t line;                    /* current command line, NUL-terminated */
    enum smtp_verb last_verb;
    bool any_command;
    bool closing;                  /* QUIT or fatal error: no more input */
    int busy;                      /* nesting of our callbacks */
    unsigned cmd_total[SMTP_VERB_COUNT];
    unsigned cmd_ok[SMTP_VERB_COUNT];
};

/* smtpd.c */
/* back to "no transaction": abort an open queue file, free the envelope,
   the duplicate filter and the DATA decoder, zero every counter */
void smtpd_txn_reset(struct smtpd_session *s);
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtpd_close(struct smtpd_session *s);
/* errors reached smtpd_hard_error_limit: say 421 4.7.0, close */
void smtpd_error_limit(struct smtpd_session *s);
/* DATA made progress: move its deadline (smtpd_per_request_deadline) */
void smtpd_data_deadline(struct smtpd_session *s, size_t received);
const char *smtpd_proto(const struct smtpd_session *s);
/* the client sent input where it must wait for our reply (before the
   greeting, after a refused DATA): log, say 554, close; true if so */
bool smtpd_pipelining_violation(struct smtpd_session *s, const char *after);

/* TLS on the session (STARTTLS, or wrapper mode at connect): 0 started,
   -1 the session is closing (logged) */
int smtpd_tls_begin(struct smtpd_session *s, bool wrapper);

/* smtpd_cmd.c: handle one parsed command; returns the reply code class
   result: true when the command succeeded (for the disconnect counts) */
bool smtpd_cmd_dispatch(struct smtpd_session *s, const struct smtp_cmd *cmd);

/* smtpd_data.c */
bool smtpd_data_begin(struct smtpd_session *s);
/* the commit worker (post_init), its end (pre_exit), whether a commit
   is running (the process does not exit before it is answered) */
void smtpd_data_init(ev_loop_t *loop);
void smtpd_data_free(void);
bool smtpd_data_committing(void);
/* consume buffered DATA input (replying when DATA ends); false when
   no input was buffered */
bool smtpd_data_input(struct smtpd_session *s);
void smtpd_data_abort(struct smtpd_session *s);

/* smtpd_data.c, shared with smtpd_bdat.c: open the queue file through
   cleanup and write the envelope (replies 451 and returns false on
   error); store s->dbuf; the final reply (commit, 250 only after it) */
bool smtpd_data_open(struct smtpd_session *s);
void smtpd_data_store(struct smtpd_session *s);
bool smtpd_data_failing(const struct smtpd_session *s);
void smtpd_data_finish(struct smtpd_session *s);

/* smtpd_bdat.c: CHUNKING (RFC 3030) */
bool smtpd_bdat_cmd(struct smtpd_session *s, const char *arg);
/* a chunk's bytes are being read (no command lines now) */
bool smtpd_bdat_active(const struct smtpd_session *s);
/* consume buffered chunk bytes; false when none were buffered */
bool smtpd_bdat_input(struct smtpd_session *s);

/* smtpd_anvil.c: per-client connection count/rate limits via anvil */
int smtpd_anvil_init(void);
void smtpd_anvil_free(void);
/* count this connection; false when it is over a limit (logged) */
bool smtpd_anvil_connect(struct smtpd_session *s);
void smtpd_anvil_disconnect(struct smtpd_session *s);
/* one more AUTH command: false when the client is over
   smtpd_client_auth_rate_limit (logged) */
bool smtpd_anvil_auth(struct smtpd_session *s);

/* smtpd_tls.c */
void smtpd_tls_init(void);          /* pre_init, as root */
void smtpd_tls_free(void);
tls_ctx_t *smtpd_tls_ctx(void);     /* NULL: no TLS for this service */
/* EHLO lists STARTTLS: a context, level may/encrypt, not yet in TLS */
bool smtpd_tls_offer(const struct smtpd_session *s);
/* level encrypt and still plaintext: replied 530, true */
bool smtpd_tls_refuse(struct smtpd_session *s);
/* the STARTTLS command; true when TLS is starting */
bool smtpd_tls_starttls(struct smtpd_session *s, const char *arg);
/* the handshake finished: log it (Postfix's "... TLS connection
   established from"), note the client certificate; false when
   smtpd_tls_req_ccert refuses the client (421 replied: close) */
bool smtpd_tls_accepted(struct smtpd_session *s);
/* "TLSv1.3 with cipher ... (256/256 bits)", or NULL while plaintext */
const char *smtpd_tls_info(const struct smtpd_session *s, char *buf,
                           size_t size);

/* smtpd.c, for smtpd_auth.c and smtpd_dns.c: an asynchronous answer was handled (the
   caller did s->busy++ first): restart the request timer, run the
   buffered input, release s */
void smtpd_resume(struct smtpd_session *s);
/* smtpd.c, for smtpd_data.c: the commit of s's message was answered
   (s->busy was taken at its start): a pending shutdown now, else the
   buffered input */
void smtpd_commit_over(struct smtpd_session *s);

/* smtpd_auth.c: SMTP AUTH (RFC 4954) */
void smtpd_auth_init(void);         /* pre_init: configuration warnings */
/* EHLO lists "AUTH SCRAM-SHA-256 PLAIN LOGIN" */
bool smtpd_auth_offer(const struct smtpd_session *s);
/* the AUTH command; true never (auth=N counts success when it comes) */
bool smtpd_auth_cmd(struct smtpd_session *s, const char *arg);
/* one client response line of a running exchange; line NULL: it was
   longer than line_length_limit */
void smtpd_auth_input(struct smtpd_session *s, const char *line, size_t len);
/* smtpd_sasl_auth_required and not authenticated: replied 530, true */
bool smtpd_auth_refuse(struct smtpd_session *s);
/* forget the exchange and the identity (STARTTLS, session end) */
void smtpd_auth_reset(struct smtpd_session *s);
/* session end: the exchange, a request in flight, the state */
void smtpd_auth_free(struct smtpd_session *s);

/* smtpd_check.c: the restriction lists (mail/restriction.h). Each check
   logs its rejects and events (Postfix's "NOQUEUE: reject: RCPT from
   ..." lines) and sets txn.policy_hold/policy_discard. The client names and
   their lookup statuses come from the session (smtpd_dns.c). */
/* smtpd_dns.c: the client's host name */
#define SMTPD_NAME_OK     2
#define SMTPD_NAME_TEMP   4
#define SMTPD_NAME_PERM   5
#define SMTPD_NAME_FORGED 6
void smtpd_dns_init(void);          /* pre_init, as root */
void smtpd_dns_attach(ev_loop_t *loop);   /* post_init */
void smtpd_dns_free(void);
/* at connect: names "unknown"; start the lookup (s->dns_pending) or,
   when there is none to do, log "connect from" now */
void smtpd_dns_start(struct smtpd_session *s);
/* while the lookup runs, read nothing more (and hold the peer's EOF, so
   a client that sends its commands and half-closes gets them run); once
   the stream exists, and after a wrapper-mode handshake */
void smtpd_dns_hold(struct smtpd_session *s);
/* the peer is gone or timed out: cancel the lookup (the names stay
   "unknown"), log "connect from" if it was not yet, so it comes before
   the line that says why the session ends */
void smtpd_dns_stop(struct smtpd_session *s);
/* the session ends: smtpd_dns_stop, free the names; again: nothing */
void smtpd_dns_end(struct smtpd_session *s);
int smtpd_check_init(void);
void smtpd_check_free(void);
/* RCPT: client, helo, sender, relay, recipient restrictions (delayed
   as Postfix's smtpd_delay_reject = yes), then the unlisted recipient
   check. 0 accept; else the full reply line ("550 5.1.1 <a>: ...") */
int smtpd_check_rcpt(struct smtpd_session *s, const char *addr,
                     buf_t *reply);
/* the DATA command: smtpd_data_restrictions; 0 or -1 with reply */
int smtpd_check_data(struct smtpd_session *s, buf_t *reply);
/* after the final dot, before the commit: smtpd_end_of_data_restrictions
   (qid for the log); 0 or -1 with reply */
int smtpd_check_eod(struct smtpd_session *s, const char *qid, buf_t *reply);
/* MAIL: room in the queue file system ($queue_minfree, 1.5 times
   $message_size_limit when queue_minfree is set, the client's SIZE=,
   size 0 when none); 0 fine, -1 with "452 4.3.1 Insufficient system
   storage" in reply (logged) */
int smtpd_check_queue(struct smtpd_session *s, const char *sender,
                      uint64_t size, buf_t *reply);

#endif

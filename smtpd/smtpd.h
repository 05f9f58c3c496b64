/*
 * smtpd.h - what the smtpd source files share: the per-connection
 * session, the mail transaction inside it, and the functions one file
 * offers the others.
 *
 *   smtpd.c        main, connection life cycle, replies, error counting,
 *                  the pipelined command loop
 *   smtpd_cmd.c    HELO ... QUIT
 *   smtpd_data.c   DATA: the queue file through cleanup (envelope, Received:, commit)
 *   smtpd_check.c  recipient / relay policy
 *   smtpd_anvil.c  client connection count / rate limits (anvil)
 *   smtpd_tls.c    TLS context, STARTTLS, smtpd_tls_security_level
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
/* consume buffered DATA input (replying when DATA ends); false when
   no input was buffered */
bool smtpd_data_input(struct smtpd_session *s);
void smtpd_data_abort(struct smtpd_session *s);

/* smtpd_anvil.c: per-client connection count/rate limits via anvil */
int smtpd_anvil_init(void);
void smtpd_anvil_free(void);
/* count this connection; false when it is over a limit (logged) */
bool smtpd_anvil_connect(struct smtpd_session *s);
void smtpd_anvil_disconnect(struct smtpd_session *s);

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
/* "TLSv1.3 with cipher ... (256/256 bits)", or NULL while plaintext */
const char *smtpd_tls_info(const struct smtpd_session *s, char *buf,
                           size_t size);

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
/* smtpd.c: handle the commands that waited for the lookup */
void smtpd_resume(struct smtpd_session *s);

/* smtpd_check.c */
int smtpd_check_init(void);
void smtpd_check_free(void);
/* 0 accept; else the full reply line ("550 5.1.1 <a>: ...") in reply */
int smtpd_check_rcpt(const struct smtpd_session *s, const char *addr,
                     buf_t *reply);

#endif

/* smtp - internal interface of the outbound SMTP client (smtp(8)). */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "mail/deliver.h"
#include "mail/deliver_request.h"
#include "mail/queue_reader.h"
#include "mail/smtp_reply.h"
#include "util/attr.h"
#include "util/dns.h"
#include "util/tls.h"

#define SMTP_REASON_MAX 600
#define SMTP_RELAY_MAX (DNS_NAME_MAX + INET6_ADDRSTRLEN + 16)

/* one recipient of the request, and what became of it */
struct smtp_rcpt {
    size_t k;                   /* index in the request (reply _K) */
    const struct queue_rcpt *qr;    /* NULL: the request was refused */
    int status;                 /* DELIVER_*; DEFER while still open */
    bool done;                  /* final for this request */
    bool accepted;              /* RCPT TO got 2xx in this transaction */
    bool no_dsn;                /* delivered to a server without DSN */
    char dsn[SMTP_DSN_MAX];
    char reason[SMTP_REASON_MAX];
    char relay[SMTP_RELAY_MAX];     /* "none" until a server was reached */
    uint64_t conn_usec;
};

/* the message, from the queue file (smtp_queue.c) */
struct smtp_msg {
    const char *queue_id;
    const char *sender;
    const char *envid;          /* NULL when none */
    const char *ret;            /* "FULL", "HDRS" or NULL */
    bool smtputf8;              /* the sender asked for SMTPUTF8 */
    bool eightbit;              /* content has bytes >= 0x80 */
    bool needs_utf8;            /* smtputf8, and envelope/headers need it */
    off_t content_offset;
    uint64_t content_len;
    uint64_t arrival_usec;
    uint64_t active_usec;
    uint64_t start_usec;
    int fd;
};

/* a server address to try */
struct smtp_addr {
    char host[DNS_NAME_MAX + 1];
    struct sockaddr_storage sa;
    socklen_t salen;
    char ip[INET6_ADDRSTRLEN];
};

/* ESMTP features of a session */
#define SMTP_F_ESMTP      (1u << 0)
#define SMTP_F_PIPELINING (1u << 1)
#define SMTP_F_SIZE       (1u << 2)
#define SMTP_F_8BITMIME   (1u << 3)
#define SMTP_F_SMTPUTF8   (1u << 4)
#define SMTP_F_DSN        (1u << 5)
#define SMTP_F_CHUNKING   (1u << 6)
#define SMTP_F_STARTTLS   (1u << 7)

/* a connection with its buffers (smtp_conn.c) */
typedef struct smtp_conn {
    int fd;
    tls_conn_t *tls;
    char in[16384];
    size_t in_pos, in_len;
    char host[DNS_NAME_MAX + 1];
    char ip[INET6_ADDRSTRLEN];
    int port;
    char relay[SMTP_RELAY_MAX];     /* "host[ip]:port" */
    char peer[SMTP_RELAY_MAX];      /* "host[ip]", for reasons */
    unsigned features;
    long size_limit;            /* SIZE n of EHLO, 0 = none */
    char nexthop_key[DNS_NAME_MAX + 16];
    uint64_t opened_usec;
    uint64_t idle_usec;
    char error[SMTP_REASON_MAX];    /* the last I/O error */
    smtp_reply_t reply;
} smtp_conn_t;

/* the TLS policy of a destination (smtp_tls.c) */
enum smtp_tls_level {
    SMTP_TLS_NONE = 0, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY,
    SMTP_TLS_SECURE,
};
struct smtp_tls_policy {
    enum smtp_tls_level level;
    char match[256];            /* names the certificate may carry */
};

/* --- smtp_queue.c --- */
/* Open active/<qid>, check it, fill msg and the rcpts (each named one
   that is not a pending record of the same address is done already:
   DEFER with a reason). -1: the file is unusable, every rcpt deferred
   with reason. m must be freed (smtp_queue_close). */
int smtp_queue_open(const char *qid, const struct deliver_rcpt *req,
                    size_t n, queue_msg_t *m, struct smtp_msg *msg,
                    struct smtp_rcpt *rcpts, char *reason, size_t size);
void smtp_queue_close(queue_msg_t *m, struct smtp_msg *msg);
/* 0 ok, -1 (reason set) when the record could not be marked */
int smtp_queue_mark(queue_msg_t *m, struct smtp_msg *msg,
                    struct smtp_rcpt *r);

/* --- smtp_addr.c --- */
int smtp_addr_init(const char **error_r);   /* before chroot */
void smtp_addr_post_init(void);
/* Resolve nexthop (or the domain, when nexthop is "") to at most max
   addresses in order. >0 count; 0 none: *status DELIVER_DEFER/BOUNCE
   with dsn and reason set. */
size_t smtp_addr_resolve(const char *nexthop, const char *domain,
                         struct smtp_addr *out, size_t max, int *port_r,
                         int *status, char *dsn, char *reason,
                         size_t rsize);

/* --- smtp_conn.c --- */
void smtp_conn_init(smtp_conn_t *c);
/* connect within timeout; 0 ok, -1 with c->error */
int smtp_conn_open(smtp_conn_t *c, const struct smtp_addr *a, int port,
                   int timeout);
void smtp_conn_close(smtp_conn_t *c);
/* read one reply within timeout (a deadline for the whole reply); 0 ok
   (c->reply), -1 with c->error */
int smtp_conn_reply(smtp_conn_t *c, int timeout);
/* write all of p within timeout; 0 ok, -1 with c->error */
int smtp_conn_write(smtp_conn_t *c, const void *p, size_t n, int timeout);
int smtp_conn_printf(smtp_conn_t *c, int timeout, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* TLS handshake within timeout; 0 ok, -1 with c->error */
int smtp_conn_starttls(smtp_conn_t *c, tls_ctx_t *ctx, const char *sni,
                       const char *const *names, size_t nnames, int timeout);

/* --- smtp_tls.c --- */
int smtp_tls_init(char *err, size_t size);      /* before chroot */
/* the policy for nexthop (or domain); -1 bad policy (reason set) */
int smtp_tls_policy(const char *dest, struct smtp_tls_policy *p,
                    char *reason, size_t size);
tls_ctx_t *smtp_tls_ctx(enum smtp_tls_level level);
/* log the Postfix-style "... TLS connection established ..." line */
void smtp_tls_log(const smtp_conn_t *c, enum smtp_tls_level level);

/* --- smtp_proto.c --- */
/* Deliver msg to the still open rcpts over the session on c (greeting
   already read when fresh). 0: the session can be reused; -1 it must be
   closed. Recipients get their results; ones left open (4xx) may try
   the next host. dead_r: the host could not be used at all. */
int smtp_proto_deliver(smtp_conn_t *c, bool fresh, const char *nexthop,
                       const struct smtp_tls_policy *tls,
                       struct smtp_msg *msg, struct smtp_rcpt *rcpts,
                       size_t n, bool *dead_r);
void smtp_proto_quit(smtp_conn_t *c);
int smtp_proto_rset(smtp_conn_t *c);

/* set a recipient's result */
void smtp_rcpt_set(struct smtp_rcpt *r, int status, const char *dsn,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif

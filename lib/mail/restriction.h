/*
 * restriction - Postfix-style SMTP access restriction lists
 * (smtpd_client_restrictions ... smtpd_end_of_data_restrictions): the
 * parser that compiles a list, and its evaluation against one SMTP
 * context through callbacks, so that the module knows no smtpd and is
 * tested on its own.
 *
 * Syntax (Postfix): names separated by commas and/or whitespace;
 * check_client_access, check_reverse_client_hostname_access,
 * check_helo_access, check_sender_access and check_recipient_access
 * take the next word as their table (any
 * maps_open spec: "lmdb:/path", "inline:{a=b, c=d}", "pcre:/path" ...).
 * Unknown names and a missing table are errors, with the parameter and
 * the word in the message.
 *
 * Evaluation of one list (one stage) ends at the first restriction that
 * decides: PERMIT ends the stage (the caller goes on with the next
 * stage), REJECT/DEFER end the whole decision with reply text, DISCARD
 * accepts and marks the message for discarding; HOLD and WARN are side
 * effects (logged through ops->log) and go on. A table error is a 451
 * 4.3.0 temporary failure, never a fall-through.
 *
 * Access table values (access(5)): OK, an all-numerical value (OK),
 * REJECT [text], DEFER [text], DEFER_IF_REJECT [text], DEFER_IF_PERMIT
 * [text], DISCARD [text], HOLD [text], DUNNO, WARN text, "4NN text",
 * "5NN text", or a list of restriction names without tables
 * ("permit_mynetworks, reject"). A text that starts with an enhanced
 * status code of the reply's class keeps it; otherwise 4.7.1 / 5.7.1.
 *
 * Security: every string the client sent (HELO name, addresses) and every
 * table value ends up in replies only after control characters became
 * '?', and replies are capped at RESTR_REPLY_MAX bytes.
 */
#ifndef TERN_RESTRICTION_H
#define TERN_RESTRICTION_H

#include <stdbool.h>
#include "util/buf.h"

#define RESTR_REPLY_MAX 512       /* one SMTP reply line, CRLF excluded */

typedef struct restriction_list restriction_list_t;

/* flags for restriction_parse */
#define RESTR_PARSE_NO_TABLES 1   /* check_*_access refused (table values) */

/*
 * Compile spec (the value of parameter param, used in messages). Returns
 * the list (an empty spec gives an empty list), or NULL with the reason
 * in *error (appended).
 */
restriction_list_t *restriction_parse(const char *param, const char *spec,
                                      unsigned flags, buf_t *error);
void restriction_free(restriction_list_t *l);
/* number of restrictions in the list */
size_t restriction_count(const restriction_list_t *l);
/* the list has at least one of the names (comma/space separated) */
bool restriction_has(const restriction_list_t *l, const char *names);

/* What a client name lookup found (Postfix's peer name status, with its
   "forged" counted as PERM) */
enum restr_name_status {
    RESTR_NAME_OK = 0,            /* found; the client name also resolves
                                     back to the client address */
    RESTR_NAME_TEMP,              /* a temporary DNS failure or timeout */
    RESTR_NAME_PERM,              /* none (no PTR, not confirmed, no
                                     lookup done) */
};

/* What the caller provides: smtpd's tables and configuration. */
struct restr_ops {
    /* the client is in $mynetworks */
    bool (*mynetworks)(void *arg);
    /* the domain (lowercase; "" for a bare local part) is local
       ($mydestination) */
    bool (*local_domain)(void *arg, const char *domain);
    /* the domain is in $relay_domains: 1 yes, 0 no, -1 table error */
    int (*relay_domain)(void *arg, const char *domain);
    /* the local part (of an address in a local domain) is a known
       recipient: 1 yes, 0 no, -1 table error */
    int (*local_user)(void *arg, const char *localpart);
    /* owners of key in $smtpd_sender_login_maps: 1 found (value into
       owners), 0 none, -1 table error; NULL: no such maps */
    int (*sender_owners)(void *arg, const char *key, buf_t *owners);
    /* log one event: what is "warn", "hold", "discard" or
       "reject_warning"; text the reason or the reply that was not given */
    void (*log)(void *arg, const char *what, const char *text);
    /* how the client name lookup ended: reverse false for the
       forward-confirmed client_name, true for the PTR answer
       (reverse_name). NULL: OK when that name is known (not NULL, ""
       or "unknown"), else PERM */
    enum restr_name_status (*name_status)(void *arg, bool reverse);
};

/* The SMTP conversation so far. NULL strings: not known (yet). */
struct restr_ctx {
    const char *client_addr;      /* "192.0.2.1" */
    const char *client_name;      /* "mx.example.com" (forward-confirmed)
                                     or "unknown" */
    const char *reverse_name;     /* the PTR name, not confirmed, or
                                     "unknown"; NULL: as client_name */
    const char *client_namaddr;   /* "unknown[192.0.2.1]" */
    const char *helo;             /* NULL or "" before HELO/EHLO */
    const char *sender;           /* NULL before MAIL; "" null sender */
    const char *recipient;        /* the RCPT address (also at DATA with
                                     exactly one recipient) */
    const char *sasl_username;    /* NULL or "": not authenticated */
    const char *delimiters;       /* recipient_delimiter, e.g. "+" */
    const struct restr_ops *ops;
    void *arg;                    /* for ops */
};

enum restr_action {
    RESTR_DUNNO = 0,              /* no decision */
    RESTR_PERMIT,                 /* this stage permits */
    RESTR_REJECT,                 /* 5xx, reply in result */
    RESTR_DEFER,                  /* 4xx, reply in result */
    RESTR_DISCARD,                /* accept, then drop the message */
};

/* One decision (e.g. one RCPT): the stages evaluated in order share it. */
struct restr_result {
    enum restr_action action;     /* of the last stage evaluated */
    buf_t reply;                  /* REJECT/DEFER: "554 5.7.1 <a>: ..." */
    bool hold;                    /* HOLD seen: queue the message on hold */
    bool discard;                 /* DISCARD seen */
    /* DEFER_IF_PERMIT / DEFER_IF_REJECT, until restriction_finish */
    bool defer_if_permit;
    bool defer_if_reject;
    buf_t dip_reply;
    buf_t dir_reply;
};

void restriction_result_init(struct restr_result *r);
void restriction_result_free(struct restr_result *r);

/*
 * Evaluate one stage. reply_name / reply_class name the stage in generic
 * replies ("<a@b>: Recipient address rejected: Access denied"): the
 * client's namaddr / "Client host", the HELO name / "Helo command", the
 * sender / "Sender address", the recipient / "Recipient address",
 * "DATA" / "Data command", "END-OF-MESSAGE" / "End-of-data". Returns
 * r->action: REJECT/DEFER/DISCARD end the decision, PERMIT/DUNNO go on
 * to the next stage.
 */
enum restr_action restriction_eval(const restriction_list_t *l,
                                   const struct restr_ctx *ctx,
                                   const char *reply_name,
                                   const char *reply_class,
                                   struct restr_result *r);

/* After the last stage: a pending DEFER_IF_PERMIT turns an accept into
   its 450. Returns the final action. */
enum restr_action restriction_finish(struct restr_result *r);

/*
 * Apply one access table value as if a check_*_access table had
 * returned it for reply_name/reply_class (exposed for tests and the
 * fuzzer). table names the table in warnings.
 */
enum restr_action restriction_access_value(const char *value,
                                           const char *table,
                                           const struct restr_ctx *ctx,
                                           const char *reply_name,
                                           const char *reply_class,
                                           struct restr_result *r);

#endif

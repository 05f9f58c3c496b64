/*
 * smtpd_check - smtpd's access policy: the Postfix restriction lists
 * (smtpd_client_restrictions, _helo_, _sender_, _relay_, _recipient_,
 * _data_, _end_of_data_) compiled by mail/restriction.h, evaluated with
 * this session as the context. As Postfix with smtpd_delay_reject = yes,
 * the client, HELO and sender lists run at each RCPT, followed by the
 * relay and recipient lists and, with smtpd_reject_unlisted_recipient,
 * the local recipient check (550 5.1.1; an address listed in
 * $virtual_alias_maps counts as known) and, for $virtual_alias_domains,
 * the virtual alias check (550 5.1.1 ... User unknown in virtual alias
 * table); virtual alias domains are authorized destinations, as relay
 * domains are. Rejects are logged as Postfix
 * logs them ("NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1
 * <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP
 * helo=<h>").
 *
 * At MAIL, smtpd_check_queue refuses mail the queue has no room for
 * (452 4.3.1, Postfix's queue_minfree check): statvfs(".") is the queue
 * file system, as server.c made the queue directory (or the chroot of
 * it) the current directory.
 *
 * Tables are opened in pre_init, before any chroot. The client names
 * and how their lookups ended come from smtpd_dns.c (s->client_name,
 * s->reverse_name and their statuses; commands wait while the lookup
 * runs, so a check never sees a lookup in progress).
 */
#include "smtpd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/domain_list.h"
#include "mail/mailuser.h"
#include "mail/restriction.h"
#include "mail/virtual_alias.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

enum check_stage {
    STAGE_CLIENT,
    STAGE_HELO,
    STAGE_SENDER,
    STAGE_RELAY,
    STAGE_RECIPIENT,
    STAGE_DATA,
    STAGE_EOD,
    STAGE_UNLISTED,     /* smtpd_reject_unlisted_recipient */
    STAGE_COUNT
};

static const char *const check_params[STAGE_COUNT] = {
    "smtpd_client_restrictions", "smtpd_helo_restrictions",
    "smtpd_sender_restrictions", "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions", "smtpd_reject_unlisted_recipient",
};

static restriction_list_t *check_lists[STAGE_COUNT];
static netlist_t *check_mynetworks;
static domain_list_t check_relay;   /* $relay_domains */
static maps_t *check_login_maps;    /* smtpd_sender_login_maps */

/* what the restriction callbacks and the log lines need */
struct check_arg {
    struct smtpd_session *s;
    const char *qid;                /* "NOQUEUE" or the queue ID */
    const char *where;              /* "RCPT", "DATA", "END-OF-MESSAGE" */
    const char *rcpt;               /* for to=<...>, or NULL */
};

/* check_stage_spec - the list text of one stage */
static const char *check_stage_spec(enum check_stage st)
{
    switch (st) {
    case STAGE_CLIENT: return var_smtpd_client_restrictions;
    case STAGE_HELO: return var_smtpd_helo_restrictions;
    case STAGE_SENDER: return var_smtpd_sender_restrictions;
    case STAGE_RELAY: return var_smtpd_relay_restrictions;
    case STAGE_RECIPIENT: return var_smtpd_recipient_restrictions;
    case STAGE_DATA: return var_smtpd_data_restrictions;
    case STAGE_EOD: return var_smtpd_end_of_data_restrictions;
    case STAGE_UNLISTED:
        return var_smtpd_reject_unlisted_recipient
               ? "reject_unlisted_recipient" : "";
    default: return "";
    }
}

int smtpd_check_init(void)
{
    const char *err = NULL;
    buf_t msg;

    check_mynetworks = netlist_parse(var_mynetworks, &err);
    if (check_mynetworks == NULL) {
        log_error("bad mynetworks value \"%s\": %s", var_mynetworks,
                  err ? err : "malformed");
        return -1;
    }
    if (domain_list_open(&check_relay, "relay_domains", var_relay_domains) < 0)
        return -1;
    buf_init(&msg, 0);
    if (virtual_alias_open(&msg) < 0) {
        log_error("%s", buf_str(&msg));
        buf_free(&msg);
        return -1;
    }
    buf_free(&msg);
    if (var_smtpd_sender_login_maps[0] != '\0'
        && (check_login_maps = maps_open_missing_ok(var_smtpd_sender_login_maps,
                                                    &err)) == NULL) {
        log_error("smtpd_sender_login_maps: %s", err ? err : "bad table");
        return -1;
    }
    buf_init(&msg, 4096);
    for (int st = 0; st < STAGE_COUNT; st++) {
        check_lists[st] = restriction_parse(check_params[st],
                                            check_stage_spec(st), 0, &msg);
        if (check_lists[st] == NULL) {
            log_error("%s", buf_str(&msg));
            buf_free(&msg);
            return -1;
        }
    }
    buf_free(&msg);
    /* Postfix refuses to run as an open relay by accident, so do we */
    static const char relay_guard[] = "reject_unauth_destination, "
        "defer_unauth_destination, reject, defer";
    if (!restriction_has(check_lists[STAGE_RELAY], relay_guard)
        && !restriction_has(check_lists[STAGE_RECIPIENT], relay_guard)) {
        log_error("in parameters smtpd_relay_restrictions or "
                  "smtpd_recipient_restrictions, specify at least one "
                  "working instance of: reject_unauth_destination, "
                  "defer_unauth_destination, reject or defer");
        return -1;
    }
    return 0;
}

void smtpd_check_free(void)
{
    for (int st = 0; st < STAGE_COUNT; st++) {
        restriction_free(check_lists[st]);
        check_lists[st] = NULL;
    }
    if (check_mynetworks != NULL)
        netlist_free(check_mynetworks);
    check_mynetworks = NULL;
    domain_list_close(&check_relay);
    maps_close(check_login_maps);
    check_login_maps = NULL;
    virtual_alias_close();
}

/* ---- the callbacks -------------------------------------------------- */

static bool check_mynetworks_cb(void *arg)
{
    struct check_arg *a = arg;

    return netlist_match(check_mynetworks,
                         (const struct sockaddr *)&a->s->peer);
}

static bool check_local_domain(void *arg, const char *domain)
{
    (void)arg;
    return domain[0] == '\0' || mailuser_domain_is_local(domain);
}

/* check_relay_domain - listed in relay_domains, or below a name there
   ("example.com" covers "mx.example.com", ".example.com" only those);
   tables are asked for the domain, then each parent */
static int check_relay_domain(void *arg, const char *domain)
{
    int rc;

    (void)arg;
    if ((rc = virtual_alias_domain(domain)) != 0)
        return rc;
    rc = domain_list_match(&check_relay, domain);
    if (rc < 0)
        log_warning("relay_domains: table lookup problem for %s", domain);
    return rc;
}

/* check_virtual_listed - the address has a virtual alias: 1, 0, -1 */
static int check_virtual_listed(const char *addr)
{
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;
    int rc = virtual_alias_find(addr, &r, &err);

    if (rc < 0)
        log_warning("%s", buf_str(&err));
    virtual_alias_result_free(&r);
    buf_free(&err);
    return rc;
}

static int check_local_user(void *arg, const char *localpart)
{
    struct check_arg *a = arg;
    int rc;

    /* a virtual alias rewrites it before local delivery sees it */
    if (a->rcpt != NULL && (rc = check_virtual_listed(a->rcpt)) != 0)
        return rc;
    /* postmaster too: accepting it with nowhere to deliver it would
       drop it later (RFC 5321 4.5.1 wants it to exist: alias it) */
    return mailuser_local_exists(localpart);
}

static int check_sender_owners(void *arg, const char *key, buf_t *owners)
{
    (void)arg;
    if (check_login_maps == NULL)
        return 0;
    int rc = maps_lookup(check_login_maps, key, owners);
    if (rc < 0)
        log_warning("smtpd_sender_login_maps: table lookup problem");
    return rc;
}

/* check_log - Postfix's log line for a reject or an event:
   "NOQUEUE: reject: RCPT from unknown[1.2.3.4]: TEXT; from=<s> to=<r>
   proto=ESMTP helo=<h>" */
static void check_log(void *arg, const char *what, const char *text)
{
    struct check_arg *a = arg;
    struct smtpd_session *s = a->s;
    buf_t line;

    buf_init(&line, 4096);
    (void)buf_printf(&line, "%s: %s: %s from %s: %s;", a->qid, what,
                     a->where, s->namaddr, text);
    if (s->txn.sender != NULL)
        (void)buf_printf(&line, " from=<%s>", s->txn.sender);
    if (a->rcpt != NULL)
        (void)buf_printf(&line, " to=<%s>", a->rcpt);
    (void)buf_printf(&line, " proto=%s helo=<%s>", smtpd_proto(s), s->helo);
    log_info("%s", buf_str(&line));
    buf_free(&line);
}

/* check_name_status - smtpd_dns.c's status, as the restrictions see it
   (a forged name, one not resolving back, is a lasting failure) */
static enum restr_name_status check_name_status(void *arg, bool reverse)
{
    const struct smtpd_session *s = ((struct check_arg *)arg)->s;

    switch (reverse ? s->reverse_name_status : s->client_name_status) {
    case SMTPD_NAME_OK:
        return RESTR_NAME_OK;
    case SMTPD_NAME_TEMP:
        return RESTR_NAME_TEMP;
    default:
        return RESTR_NAME_PERM;
    }
}

static const struct restr_ops check_ops = {
    .mynetworks = check_mynetworks_cb,
    .local_domain = check_local_domain,
    .relay_domain = check_relay_domain,
    .local_user = check_local_user,
    .sender_owners = check_sender_owners,
    .log = check_log,
    .name_status = check_name_status,
};

/* check_ctx - the restriction context of this session */
static void check_ctx(struct check_arg *a, const char *rcpt,
                      struct restr_ctx *c)
{
    struct smtpd_session *s = a->s;

    memset(c, 0, sizeof(*c));
    c->client_addr = s->addr;
    c->client_name = s->client_name != NULL ? s->client_name : "unknown";
    c->reverse_name = s->reverse_name != NULL ? s->reverse_name : "unknown";
    c->client_namaddr = s->namaddr;
    c->helo = s->have_helo ? s->helo : NULL;
    c->sender = s->txn.sender;
    c->recipient = rcpt;
    c->sasl_username = s->sasl_username;
    c->delimiters = var_recipient_delimiter;
    c->ops = &check_ops;
    c->arg = a;
}

/* check_stages - evaluate stages first..last (in order) for one decision;
   0 accepted (hold/discard flags set), -1 refused (logged, reply) */
static int check_stages(struct check_arg *a, const char *rcpt,
                        const enum check_stage *stages, size_t nstages,
                        buf_t *reply)
{
    struct smtpd_session *s = a->s;
    struct restr_ctx ctx;
    struct restr_result r;
    enum restr_action act = RESTR_DUNNO;
    int rc = 0;

    check_ctx(a, rcpt, &ctx);
    restriction_result_init(&r);
    for (size_t i = 0; i < nstages; i++) {
        const char *rname, *rclass;
        switch (stages[i]) {
        case STAGE_CLIENT:
            rname = s->namaddr, rclass = "Client host";
            break;
        case STAGE_HELO:
            rname = s->helo, rclass = "Helo command";
            break;
        case STAGE_SENDER:
            rname = s->txn.sender != NULL ? s->txn.sender : "",
            rclass = "Sender address";
            break;
        case STAGE_DATA:
            rname = "DATA", rclass = "Data command";
            break;
        case STAGE_EOD:
            rname = "END-OF-MESSAGE", rclass = "End-of-data";
            break;
        default:
            rname = rcpt != NULL ? rcpt : "", rclass = "Recipient address";
            break;
        }
        act = restriction_eval(check_lists[stages[i]], &ctx, rname, rclass,
                               &r);
        if (act == RESTR_REJECT || act == RESTR_DEFER
            || act == RESTR_DISCARD)
            break;
    }
    act = restriction_finish(&r);
    if (act == RESTR_REJECT || act == RESTR_DEFER) {
        check_log(a, "reject", buf_str(&r.reply));
        buf_reset(reply);
        (void)buf_puts(reply, buf_str(&r.reply));
        rc = -1;
    } else {
        if (r.hold)
            s->txn.policy_hold = true;
        if (r.discard)
            s->txn.policy_discard = true;
    }
    restriction_result_free(&r);
    return rc;
}

/* check_virtual_unlisted - smtpd_reject_unlisted_recipient for a
   virtual alias domain (not a local one): its every address must have
   a virtual alias; 0 fine, -1 refused (logged, reply) */
static int check_virtual_unlisted(struct check_arg *a, const char *addr,
                                  buf_t *reply)
{
    char *local, *domain;
    int rc = 0;

    addr_split(addr, &local, &domain);
    str_lower(domain);
    if (*domain != '\0' && !mailuser_domain_is_local(domain)
        && (rc = virtual_alias_domain(domain)) > 0)
        rc = check_virtual_listed(addr);
    else if (rc == 0)
        rc = 1;
    free(local);
    if (rc > 0)
        return 0;
    buf_reset(reply);
    if (rc < 0)
        (void)buf_printf(reply, "451 4.3.0 <%s>: Temporary lookup failure",
                         addr);
    else
        (void)buf_printf(reply, "550 5.1.1 <%s>: Recipient address "
                         "rejected: User unknown in virtual alias table",
                         addr);
    check_log(a, "reject", buf_str(reply));
    return -1;
}

int smtpd_check_rcpt(struct smtpd_session *s, const char *addr,
                     buf_t *reply)
{
    static const enum check_stage stages[] = {
        STAGE_CLIENT, STAGE_HELO, STAGE_SENDER, STAGE_RELAY,
        STAGE_RECIPIENT, STAGE_UNLISTED,
    };
    struct check_arg a = { s, "NOQUEUE", "RCPT", addr };

    /* DISCARD applies to the whole message: no more checks for it */
    if (s->txn.policy_discard)
        return 0;
    if (check_stages(&a, addr, stages, sizeof(stages) / sizeof(*stages),
                     reply) < 0)
        return -1;
    if (var_smtpd_reject_unlisted_recipient && !s->txn.policy_discard)
        return check_virtual_unlisted(&a, addr, reply);
    return 0;
}

/* check_single_rcpt - the recipient at DATA, when there is exactly one */
static const char *check_single_rcpt(const struct smtpd_session *s)
{
    return s->txn.nrcpts == 1 ? s->txn.rcpts[0] : NULL;
}

int smtpd_check_data(struct smtpd_session *s, buf_t *reply)
{
    static const enum check_stage stages[] = { STAGE_DATA };
    struct check_arg a = { s, "NOQUEUE", "DATA", check_single_rcpt(s) };

    if (restriction_count(check_lists[STAGE_DATA]) == 0
        || s->txn.policy_discard)
        return 0;
    return check_stages(&a, a.rcpt, stages, 1, reply);
}

int smtpd_check_eod(struct smtpd_session *s, const char *qid, buf_t *reply)
{
    static const enum check_stage stages[] = { STAGE_EOD };
    struct check_arg a = { s, qid, "END-OF-MESSAGE", check_single_rcpt(s) };

    if (restriction_count(check_lists[STAGE_EOD]) == 0
        || s->txn.policy_discard)
        return 0;
    return check_stages(&a, a.rcpt, stages, 1, reply);
}

/* smtpd_check_queue - free space of the queue file system at MAIL */
int smtpd_check_queue(struct smtpd_session *s, const char *sender,
                      uint64_t size, buf_t *reply)
{
    uint64_t minfree = var_queue_minfree > 0 ? (uint64_t)var_queue_minfree : 0;
    uint64_t need = minfree, avail;
    struct statvfs st;
    buf_t line = BUF_INIT;

    if (minfree == 0 && size == 0 && var_message_size_limit <= 0)
        return 0;
    if (statvfs(".", &st) < 0) {
        /* not knowing is no reason to refuse: the commit still checks
           every write */
        log_warning("statvfs of the queue directory: %s", strerror(errno));
        return 0;
    }
    avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    /* as Postfix: room for 1.5 messages of the largest size, at least */
    if (var_message_size_limit > 0
        && need < (uint64_t)var_message_size_limit / 2 * 3)
        need = (uint64_t)var_message_size_limit / 2 * 3;
    if ((need > 0 && avail < need)
        || (size > 0 && (avail < minfree || size > avail - minfree))) {
        if (size > 0 && !(need > 0 && avail < need))
            log_warning("not enough free space in mail queue: %llu bytes "
                        "free, %llu bytes kept free, message of %llu bytes",
                        (unsigned long long)avail,
                        (unsigned long long)minfree,
                        (unsigned long long)size);
        else
            log_warning("not enough free space in mail queue: %llu bytes "
                        "< %llu bytes (queue_minfree, or 1.5*message_size_"
                        "limit)", (unsigned long long)avail,
                        (unsigned long long)need);
        buf_reset(reply);
        (void)buf_puts(reply, "452 4.3.1 Insufficient system storage");
        (void)buf_printf(&line, "NOQUEUE: reject: MAIL from %s: %s; from=<%s> "
                         "proto=%s helo=<%s>", s->namaddr, buf_str(reply),
                         sender, smtpd_proto(s), s->helo);
        log_info("%s", buf_str(&line));
        buf_free(&line);
        return -1;
    }
    return 0;
}

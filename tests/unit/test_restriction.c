/*
 * test_restriction - unit tests for lib/mail/restriction.c: parsing
 * restriction lists (with hostile specs), evaluation order, every
 * built-in restriction, every access(5) value, and the order of lookup
 * keys, all through fake callbacks (no smtpd).
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dict.h"
#include "mail/restriction.h"
#include "util/buf.h"
#include "util/log.h"

/* ---- the fake smtpd --------------------------------------------------- */

static bool fake_mynet;
static buf_t events;             /* "what: text\n" per event */
static maps_t *owners_maps;

static bool fake_mynetworks(void *arg)
{
    (void)arg;
    return fake_mynet;
}

static bool fake_local_domain(void *arg, const char *domain)
{
    (void)arg;
    return strcmp(domain, "localhost") == 0 || domain[0] == '\0';
}

static int fake_relay_domain(void *arg, const char *domain)
{
    (void)arg;
    if (strcmp(domain, "broken.example") == 0)
        return -1;
    return strcmp(domain, "relay.example") == 0;
}

static int fake_local_user(void *arg, const char *local)
{
    (void)arg;
    if (strcmp(local, "broken") == 0)
        return -1;
    return strcmp(local, "demo") == 0 || strcmp(local, "postmaster") == 0;
}

static int fake_sender_owners(void *arg, const char *key, buf_t *owners)
{
    (void)arg;
    return maps_lookup(owners_maps, key, owners);
}

static void fake_log(void *arg, const char *what, const char *text)
{
    (void)arg;
    (void)buf_printf(&events, "%s: %s\n", what, text);
}

static const struct restr_ops fake_ops = {
    .mynetworks = fake_mynetworks,
    .local_domain = fake_local_domain,
    .relay_domain = fake_relay_domain,
    .local_user = fake_local_user,
    .sender_owners = fake_sender_owners,
    .log = fake_log,
};

static struct restr_ctx ctx;

static void setup(void)
{
    const char *err = NULL;

    log_set_stderr(false);
    fake_mynet = false;
    buf_init(&events, 0);
    owners_maps = maps_open("inline:{demo@localhost=demo, "
                            "@shared.example=alice demo}", &err);
    ck_assert_ptr_nonnull(owners_maps);
    memset(&ctx, 0, sizeof(ctx));
    ctx.client_addr = "192.0.2.1";
    ctx.client_name = "unknown";
    ctx.client_namaddr = "unknown[192.0.2.1]";
    ctx.helo = "client.example.org";
    ctx.sender = "a@example.org";
    ctx.recipient = "x@elsewhere.example";
    ctx.sasl_username = "";
    ctx.delimiters = "+";
    ctx.ops = &fake_ops;
}

static void teardown(void)
{
    buf_free(&events);
    maps_close(owners_maps);
}

/* eval - parse spec and evaluate it as the recipient stage; the reply
   (or "" ) into reply_r */
static enum restr_action eval(const char *spec, char *reply_r, size_t size)
{
    buf_t err;
    struct restr_result r;
    restriction_list_t *l;
    enum restr_action a;

    buf_init(&err, 0);
    l = restriction_parse("test_restrictions", spec, 0, &err);
    ck_assert_msg(l != NULL, "parse %s: %s", spec, buf_str(&err));
    buf_free(&err);
    restriction_result_init(&r);
    restriction_eval(l, &ctx, ctx.recipient ? ctx.recipient : "",
                     "Recipient address", &r);
    a = restriction_finish(&r);
    snprintf(reply_r, size, "%s", a == RESTR_REJECT || a == RESTR_DEFER
                                  ? buf_str(&r.reply) : "");
    restriction_result_free(&r);
    restriction_free(l);
    return a;
}

#define CHECK_EVAL(spec, want_action, want_reply) do {                    \
        char rep_[1024];                                                  \
        enum restr_action a_ = eval((spec), rep_, sizeof(rep_));          \
        ck_assert_msg(a_ == (want_action), "%s: action %d, want %d (%s)", \
                      (spec), a_, (want_action), rep_);                   \
        ck_assert_str_eq(rep_, (want_reply));                             \
    } while (0)

/* ---- parsing ---------------------------------------------------------- */

static const struct {
    const char *spec;
    unsigned flags;
    long count;                  /* -1: must fail */
    const char *error;           /* substring of the error */
} parse_cases[] = {
    { "", 0, 0, NULL },
    { "  , ,\t", 0, 0, NULL },
    { "permit_mynetworks, reject_unauth_destination", 0, 2, NULL },
    { "permit_mynetworks,,\treject\n permit", 0, 3, NULL },
    { "PERMIT_MYNETWORKS Reject", 0, 2, NULL },
    { "check_client_access inline:{1.2.3.4=REJECT, 5.6.7.8=OK}, permit",
      0, 2, NULL },
    { "check_sender_access static:OK check_recipient_access static:DUNNO",
      0, 2, NULL },
    { "check_helo_access lmdb:/nonexistent/table", 0, 1, NULL },
    { "frobnicate", 0, -1,
      "test_restrictions: unknown restriction \"frobnicate\"" },
    { "permit, reject_everything", 0, -1,
      "unknown restriction \"reject_everything\"" },
    { "check_client_access", 0, -1,
      "test_restrictions: check_client_access needs a table (type:name) "
      "argument" },
    { "check_client_access, permit", 0, -1, "needs a table" },
    { "check_sender_access reject", 0, -1, "needs a table" },
    { "check_recipient_access permit_mynetworks", 0, -1, "needs a table" },
    { "check_helo_access notatable", 0, -1, "needs a table" },
    { "check_client_access inline:{a=b", 0, -1, "unbalanced braces" },
    { "permit}", 0, -1, "unbalanced braces" },
    { "check_client_access bogus:x", 0, -1, "unsupported table type" },
    { "check_client_access inline:{nokey}", 0, -1, "expected key=value" },
    { "perm\001it", 0, -1, "unknown restriction \"perm?it\"" },
    { "check_client_access inline:{a=b}", RESTR_PARSE_NO_TABLES, -1,
      "check_client_access is not allowed here" },
    { "permit_mynetworks, reject", RESTR_PARSE_NO_TABLES, 2, NULL },
};

START_TEST(parse_table)
{
    buf_t err;
    restriction_list_t *l;

    buf_init(&err, 0);
    l = restriction_parse("test_restrictions", parse_cases[_i].spec,
                          parse_cases[_i].flags, &err);
    if (parse_cases[_i].count < 0) {
        ck_assert_msg(l == NULL, "accepted %s", parse_cases[_i].spec);
        ck_assert_msg(strstr(buf_str(&err), parse_cases[_i].error) != NULL,
                      "%s: error \"%s\", want \"%s\"", parse_cases[_i].spec,
                      buf_str(&err), parse_cases[_i].error);
    } else {
        ck_assert_msg(l != NULL, "%s: %s", parse_cases[_i].spec,
                      buf_str(&err));
        ck_assert_uint_eq(restriction_count(l),
                          (size_t)parse_cases[_i].count);
    }
    restriction_free(l);
    buf_free(&err);
}
END_TEST

START_TEST(parse_hostile)
{
    buf_t err;
    char *big = malloc(100001);
    restriction_list_t *l;

    /* a 100 KB unknown word: refused, and the message stays short */
    memset(big, 'x', 100000);
    big[100000] = '\0';
    buf_init(&err, 0);
    ck_assert_ptr_null(restriction_parse("p", big, 0, &err));
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "unknown restriction"));
    ck_assert_uint_lt(err.len, 300);
    buf_reset(&err);
    /* deep braces, many words */
    memset(big, '{', 50000);
    memset(big + 50000, '}', 50000);
    ck_assert_ptr_null(restriction_parse("p", big, 0, &err));
    buf_reset(&err);
    for (size_t i = 0; i + 8 < 100000; i += 8)
        memcpy(big + i, "permit, ", 8);
    big[99992] = '\0';
    l = restriction_parse("p", big, 0, &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(restriction_count(l), 12499);
    restriction_free(l);
    /* NULL spec is an empty list; a NULL error buffer is allowed */
    l = restriction_parse("p", NULL, 0, &err);
    ck_assert_uint_eq(restriction_count(l), 0);
    restriction_free(l);
    ck_assert_ptr_null(restriction_parse("p", "bogus", 0, NULL));
    buf_free(&err);
    free(big);
}
END_TEST

START_TEST(has_names)
{
    restriction_list_t *l = restriction_parse(
        "p", "permit_mynetworks reject_unauth_destination", 0, NULL);

    ck_assert(restriction_has(l, "reject, reject_unauth_destination"));
    ck_assert(!restriction_has(l, "reject defer"));
    ck_assert(!restriction_has(NULL, "reject"));
    restriction_free(l);
}
END_TEST

/* ---- evaluation order and built-in restrictions ------------------- */

START_TEST(eval_order)
{
    CHECK_EVAL("", RESTR_DUNNO, "");
    CHECK_EVAL("permit_mynetworks, reject", RESTR_REJECT,
               "554 5.7.1 <x@elsewhere.example>: Recipient address "
               "rejected: Access denied");
    fake_mynet = true;
    CHECK_EVAL("permit_mynetworks, reject", RESTR_PERMIT, "");
    CHECK_EVAL("reject, permit_mynetworks", RESTR_REJECT,
               "554 5.7.1 <x@elsewhere.example>: Recipient address "
               "rejected: Access denied");
    CHECK_EVAL("defer", RESTR_DEFER, "450 4.7.1 <x@elsewhere.example>: "
               "Recipient address rejected: Try again later");
    CHECK_EVAL("permit, reject", RESTR_PERMIT, "");
}
END_TEST

START_TEST(eval_stages_share_result)
{
    restriction_list_t *p = restriction_parse("a", "permit", 0, NULL);
    restriction_list_t *r = restriction_parse("b", "reject", 0, NULL);
    struct restr_result res;

    restriction_result_init(&res);
    ck_assert_int_eq(restriction_eval(p, &ctx, "unknown[192.0.2.1]",
                                      "Client host", &res), RESTR_PERMIT);
    ck_assert_int_eq(restriction_eval(r, &ctx, "a@example.org",
                                      "Sender address", &res), RESTR_REJECT);
    ck_assert_str_eq(buf_str(&res.reply), "554 5.7.1 <a@example.org>: "
                     "Sender address rejected: Access denied");
    restriction_result_free(&res);
    restriction_free(p);
    restriction_free(r);
}
END_TEST

START_TEST(eval_sasl)
{
    CHECK_EVAL("permit_sasl_authenticated", RESTR_DUNNO, "");
    ctx.sasl_username = NULL;
    CHECK_EVAL("permit_sasl_authenticated", RESTR_DUNNO, "");
    ctx.sasl_username = "demo";
    CHECK_EVAL("permit_sasl_authenticated, reject", RESTR_PERMIT, "");
}
END_TEST

START_TEST(eval_unauth_destination)
{
    const char *relay = "permit_mynetworks, permit_sasl_authenticated, "
                        "reject_unauth_destination";

    CHECK_EVAL(relay, RESTR_REJECT,
               "554 5.7.1 <x@elsewhere.example>: Relay access denied");
    CHECK_EVAL("defer_unauth_destination", RESTR_DEFER,
               "450 4.7.1 <x@elsewhere.example>: Relay access denied");
    CHECK_EVAL("permit_auth_destination", RESTR_DUNNO, "");
    ctx.recipient = "demo@localhost";
    CHECK_EVAL(relay, RESTR_DUNNO, "");
    CHECK_EVAL("permit_auth_destination", RESTR_PERMIT, "");
    ctx.recipient = "postmaster";
    CHECK_EVAL(relay, RESTR_DUNNO, "");
    ctx.recipient = "a@relay.example";
    CHECK_EVAL(relay, RESTR_DUNNO, "");
    /* sender-specified routing through a relay domain is relaying */
    ctx.recipient = "a%victim.example@relay.example";
    CHECK_EVAL(relay, RESTR_REJECT, "554 5.7.1 "
               "<a%victim.example@relay.example>: Relay access denied");
    ctx.recipient = "victim.example!a@relay.example";
    CHECK_EVAL(relay, RESTR_REJECT, "554 5.7.1 "
               "<victim.example!a@relay.example>: Relay access denied");
    ctx.recipient = "\"a@victim.example\"@relay.example";
    CHECK_EVAL(relay, RESTR_REJECT, "554 5.7.1 "
               "<\"a@victim.example\"@relay.example>: Relay access denied");
    /* local domains are delivered here, whatever the local part */
    ctx.recipient = "a%b@localhost";
    CHECK_EVAL(relay, RESTR_DUNNO, "");
    ctx.recipient = "a@broken.example";
    CHECK_EVAL(relay, RESTR_DEFER,
               "451 4.3.0 <a@broken.example>: Temporary lookup failure");
    ctx.recipient = "x@elsewhere.example";
    fake_mynet = true;
    CHECK_EVAL(relay, RESTR_PERMIT, "");
    fake_mynet = false;
    ctx.sasl_username = "demo";
    CHECK_EVAL(relay, RESTR_PERMIT, "");
    /* no recipient (client stage at DATA): nothing to decide */
    ctx.recipient = NULL;
    CHECK_EVAL("reject_unauth_destination", RESTR_DUNNO, "");
}
END_TEST

START_TEST(eval_unlisted)
{
    ctx.recipient = "nosuch@localhost";
    CHECK_EVAL("reject_unlisted_recipient", RESTR_REJECT,
               "550 5.1.1 <nosuch@localhost>: Recipient address rejected: "
               "User unknown in local recipient table");
    ctx.recipient = "demo@LOCALHOST";
    CHECK_EVAL("reject_unlisted_recipient", RESTR_DUNNO, "");
    ctx.recipient = "postmaster";
    CHECK_EVAL("reject_unlisted_recipient", RESTR_DUNNO, "");
    ctx.recipient = "broken@localhost";
    CHECK_EVAL("reject_unlisted_recipient", RESTR_DEFER,
               "451 4.3.0 <broken@localhost>: Temporary lookup failure");
    ctx.recipient = "nosuch@elsewhere.example";
    CHECK_EVAL("reject_unlisted_recipient", RESTR_DUNNO, "");
}
END_TEST

static const struct {
    const char *helo;
    enum restr_action non_fqdn, invalid;
} helo_cases[] = {
    { "mx.example.com", RESTR_DUNNO, RESTR_DUNNO },
    { "mx.example.com.", RESTR_DUNNO, RESTR_REJECT },  /* as Postfix: misplaced delimiter */
    { "[192.0.2.1]", RESTR_DUNNO, RESTR_DUNNO },
    { "[IPv6:2001:db8::1]", RESTR_DUNNO, RESTR_DUNNO },
    { "localhost", RESTR_REJECT, RESTR_DUNNO },
    { ".com", RESTR_REJECT, RESTR_REJECT },
    { "bad_name!.example", RESTR_DUNNO, RESTR_REJECT },
    { "a..b", RESTR_DUNNO, RESTR_REJECT },
    { "[300.1.1.1]", RESTR_DUNNO, RESTR_REJECT },
    { "", RESTR_DUNNO, RESTR_DUNNO },
    { NULL, RESTR_DUNNO, RESTR_DUNNO },
};

START_TEST(eval_helo)
{
    char want[300], got[1024];

    ctx.helo = helo_cases[_i].helo;
    ck_assert_int_eq(eval("reject_non_fqdn_helo_hostname", got, sizeof(got)),
                     helo_cases[_i].non_fqdn);
    if (helo_cases[_i].non_fqdn == RESTR_REJECT) {
        snprintf(want, sizeof(want), "504 5.5.2 <%s>: Helo command "
                 "rejected: need fully-qualified hostname", ctx.helo);
        ck_assert_str_eq(got, want);
    }
    ck_assert_int_eq(eval("reject_invalid_helo_hostname", got, sizeof(got)),
                     helo_cases[_i].invalid);
    if (helo_cases[_i].invalid == RESTR_REJECT) {
        snprintf(want, sizeof(want), "501 5.5.2 <%s>: Helo command "
                 "rejected: Invalid name", ctx.helo);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

START_TEST(eval_non_fqdn_addresses)
{
    CHECK_EVAL("reject_non_fqdn_sender, reject_non_fqdn_recipient",
               RESTR_DUNNO, "");
    ctx.sender = "a@localhost";
    CHECK_EVAL("reject_non_fqdn_sender", RESTR_REJECT,
               "504 5.5.2 <a@localhost>: Sender address rejected: need "
               "fully-qualified address");
    ctx.sender = "";
    CHECK_EVAL("reject_non_fqdn_sender", RESTR_DUNNO, "");
    ctx.sender = "a@[192.0.2.1]";
    CHECK_EVAL("reject_non_fqdn_sender", RESTR_DUNNO, "");
    ctx.recipient = "postmaster";
    CHECK_EVAL("reject_non_fqdn_recipient", RESTR_REJECT,
               "504 5.5.2 <postmaster>: Recipient address rejected: need "
               "fully-qualified address");
}
END_TEST

/* the fake smtpd's name lookup outcome, [0] client name, [1] PTR name */
static enum restr_name_status fake_status[2];

static enum restr_name_status fake_name_status(void *arg, bool reverse)
{
    (void)arg;
    return fake_status[reverse];
}

static const struct restr_ops fake_dns_ops = {
    .log = fake_log,
    .name_status = fake_name_status,
};

#define NO_NAME "450 4.7.25 Client host rejected: cannot find your hostname, " \
                "[192.0.2.1]"
#define NO_PTR "450 4.7.25 Client host rejected: cannot find your reverse " \
               "hostname, [192.0.2.1]"

/* without a name_status callback the names decide: "unknown" is PERM */
START_TEST(eval_unknown_client)
{
    CHECK_EVAL("reject_unknown_reverse_client_hostname", RESTR_DEFER, NO_PTR);
    CHECK_EVAL("reject_unknown_client_hostname", RESTR_DEFER, NO_NAME);
    CHECK_EVAL("reject_unknown_client", RESTR_DEFER, NO_NAME);
    /* a PTR name that was not confirmed */
    ctx.reverse_name = "liar.example.org";
    CHECK_EVAL("reject_unknown_reverse_client_hostname", RESTR_DUNNO, "");
    CHECK_EVAL("reject_unknown_client_hostname", RESTR_DEFER, NO_NAME);
    /* confirmed; no reverse_name means the same name */
    ctx.reverse_name = NULL;
    ctx.client_name = "mx.example.org";
    CHECK_EVAL("reject_unknown_reverse_client_hostname", RESTR_DUNNO, "");
    CHECK_EVAL("reject_unknown_client_hostname", RESTR_DUNNO, "");
    /* a 450 is no reject for DEFER_IF_REJECT to soften, and the
       list goes on after a pass */
    ctx.client_name = "unknown";
    CHECK_EVAL("reject_unknown_reverse_client_hostname, permit",
               RESTR_DEFER, NO_PTR);
}
END_TEST

/* with the callback: its statuses decide, whatever the names say */
static const struct {
    enum restr_name_status client, reverse;
    const char *reply_client;    /* reject_unknown_client_hostname */
    const char *reply_reverse;   /* reject_unknown_reverse_client_hostname */
} unknown_cases[] = {
    { RESTR_NAME_OK, RESTR_NAME_OK, "", "" },
    /* no PTR */
    { RESTR_NAME_PERM, RESTR_NAME_PERM, NO_NAME, NO_PTR },
    /* PTR without a matching address: only the confirmed name fails */
    { RESTR_NAME_PERM, RESTR_NAME_OK, NO_NAME, "" },
    /* the PTR lookup timed out, or then the forward lookup did */
    { RESTR_NAME_TEMP, RESTR_NAME_TEMP, NO_NAME, NO_PTR },
    { RESTR_NAME_TEMP, RESTR_NAME_OK, NO_NAME, "" },
};

START_TEST(eval_unknown_client_status)
{
    fake_status[0] = unknown_cases[_i].client;
    fake_status[1] = unknown_cases[_i].reverse;
    ctx.ops = &fake_dns_ops;
    /* names that would say otherwise */
    ctx.client_name = fake_status[0] == RESTR_NAME_OK ? "unknown"
                                                      : "mx.example.org";
    ctx.reverse_name = ctx.client_name;
    CHECK_EVAL("reject_unknown_client_hostname",
               *unknown_cases[_i].reply_client ? RESTR_DEFER : RESTR_DUNNO,
               unknown_cases[_i].reply_client);
    CHECK_EVAL("reject_unknown_reverse_client_hostname",
               *unknown_cases[_i].reply_reverse ? RESTR_DEFER : RESTR_DUNNO,
               unknown_cases[_i].reply_reverse);
}
END_TEST

/* check_reverse_client_hostname_access: the PTR name (and its parent
   domains), then the address */
START_TEST(eval_reverse_client_access)
{
    static const char spec[] = "check_reverse_client_hostname_access "
        "inline:{example.org=REJECT bad ptr, 192.0.2.7=DEFER}";

    ctx.client_name = "unknown";
    ctx.reverse_name = "liar.example.org";
    CHECK_EVAL(spec, RESTR_REJECT, "554 5.7.1 <unknown[192.0.2.1]>: "
               "Client host rejected: bad ptr");
    /* check_client_access does not see the unconfirmed name */
    CHECK_EVAL("check_client_access inline:{example.org=REJECT}",
               RESTR_DUNNO, "");
    ctx.reverse_name = "unknown";
    ctx.client_addr = "192.0.2.7";
    CHECK_EVAL(spec, RESTR_DEFER, "450 4.7.1 <unknown[192.0.2.1]>: "
               "Client host rejected: Access denied");
    ctx.client_addr = "192.0.2.8";
    CHECK_EVAL(spec, RESTR_DUNNO, "");
}
END_TEST

START_TEST(eval_warn_if_reject)
{
    CHECK_EVAL("warn_if_reject, reject, permit", RESTR_PERMIT, "");
    ck_assert_str_eq(buf_str(&events), "reject_warning: 554 5.7.1 "
                     "<x@elsewhere.example>: Recipient address rejected: "
                     "Access denied\n");
    /* only the next restriction is softened */
    CHECK_EVAL("warn_if_reject, permit_mynetworks, reject", RESTR_REJECT,
               "554 5.7.1 <x@elsewhere.example>: Recipient address "
               "rejected: Access denied");
}
END_TEST

static const struct {
    const char *sasl, *sender, *spec;
    const char *reply;           /* NULL: DUNNO */
} login_cases[] = {
    { "demo", "demo@localhost", "reject_sender_login_mismatch", NULL },
    { "DEMO", "Demo@LocalHost", "reject_sender_login_mismatch", NULL },
    { "demo", "demo+tag@localhost", "reject_sender_login_mismatch", NULL },
    { "demo", "other@localhost", "reject_sender_login_mismatch",
      "553 5.7.1 <other@localhost>: Sender address rejected: not owned by "
      "user demo" },
    { "alice", "demo@localhost", "reject_sender_login_mismatch",
      "553 5.7.1 <demo@localhost>: Sender address rejected: not owned by "
      "user alice" },
    { "alice", "x@shared.example", "reject_sender_login_mismatch", NULL },
    { "demo", "x@shared.example", "reject_sender_login_mismatch", NULL },
    { "", "demo@localhost", "reject_sender_login_mismatch",
      "553 5.7.1 <demo@localhost>: Sender address rejected: not logged in" },
    { "", "x@shared.example", "reject_sender_login_mismatch",
      "553 5.7.1 <x@shared.example>: Sender address rejected: not logged in" },
    { "", "nobody@else.example", "reject_sender_login_mismatch", NULL },
    { "demo", "", "reject_sender_login_mismatch", NULL },
    { "", "demo@localhost", "reject_authenticated_sender_login_mismatch",
      NULL },
    { "demo", "other@localhost", "reject_authenticated_sender_login_mismatch",
      "553 5.7.1 <other@localhost>: Sender address rejected: not owned by "
      "user demo" },
    { "demo", "other@localhost",
      "reject_unauthenticated_sender_login_mismatch", NULL },
    { "", "demo@localhost", "reject_unauthenticated_sender_login_mismatch",
      "553 5.7.1 <demo@localhost>: Sender address rejected: not logged in" },
};

START_TEST(eval_login_mismatch)
{
    char got[1024];
    enum restr_action a;

    ctx.sasl_username = login_cases[_i].sasl;
    ctx.sender = login_cases[_i].sender;
    a = eval(login_cases[_i].spec, got, sizeof(got));
    if (login_cases[_i].reply == NULL) {
        ck_assert_msg(a == RESTR_DUNNO, "%s/%s: %s", ctx.sasl_username,
                      ctx.sender, got);
    } else {
        ck_assert_int_eq(a, RESTR_REJECT);
        ck_assert_str_eq(got, login_cases[_i].reply);
    }
}
END_TEST

/* ---- access table values --------------------------------------------- */

#define N "<unknown[192.0.2.1]>: Client host"
static const struct {
    const char *value;
    enum restr_action action;
    const char *reply;           /* "" for no reply */
    const char *event;           /* "" for none */
    bool hold, discard;
} value_cases[] = {
    { "OK", RESTR_PERMIT, "", "", false, false },
    { "ok", RESTR_PERMIT, "", "", false, false },
    { "123", RESTR_PERMIT, "", "", false, false },
    { "DUNNO", RESTR_DUNNO, "", "", false, false },
    { "REJECT", RESTR_REJECT, "554 5.7.1 " N " rejected: Access denied",
      "", false, false },
    { "REJECT go away", RESTR_REJECT, "554 5.7.1 " N " rejected: go away",
      "", false, false },
    { "reject\tgo  away ", RESTR_REJECT,
      "554 5.7.1 " N " rejected: go  away ", "", false, false },
    { "REJECT 5.7.2 go away", RESTR_REJECT,
      "554 5.7.2 " N " rejected: go away", "", false, false },
    { "REJECT 4.7.2 go away", RESTR_REJECT,
      "554 5.7.1 " N " rejected: 4.7.2 go away", "", false, false },
    { "REJECT 5.7.", RESTR_REJECT, "554 5.7.1 " N " rejected: 5.7.",
      "", false, false },
    { "DEFER", RESTR_DEFER, "450 4.7.1 " N " rejected: Access denied",
      "", false, false },
    { "DEFER try later", RESTR_DEFER,
      "450 4.7.1 " N " rejected: try later", "", false, false },
    { "450 4.2.1 Mailbox busy", RESTR_DEFER,
      "450 4.2.1 " N " rejected: Mailbox busy", "", false, false },
    { "451 slow down", RESTR_DEFER, "451 4.7.1 " N " rejected: slow down",
      "", false, false },
    { "550 5.1.1 no such user", RESTR_REJECT,
      "550 5.1.1 " N " rejected: no such user", "", false, false },
    { "521 go away", RESTR_REJECT, "521 5.7.1 " N " rejected: go away",
      "", false, false },
    { "250 fine", RESTR_DEFER, "451 4.3.5 Server configuration error",
      "", false, false },
    { "WARN look at this", RESTR_DUNNO, "", "warn: look at this\n",
      false, false },
    { "WARN", RESTR_DUNNO, "", "warn: " N " triggers WARN action\n",
      false, false },
    { "HOLD", RESTR_DUNNO, "", "hold: " N " triggers HOLD action\n",
      true, false },
    { "HOLD check this", RESTR_DUNNO, "", "hold: " N " check this\n",
      true, false },
    { "DISCARD", RESTR_DISCARD, "",
      "discard: " N " triggers DISCARD action\n", false, true },
    { "DISCARD spam", RESTR_DISCARD, "", "discard: " N " spam\n",
      false, true },
    { "permit_mynetworks", RESTR_DUNNO, "", "", false, false },
    { "permit_mynetworks, reject", RESTR_REJECT,
      "554 5.7.1 " N " rejected: Access denied", "", false, false },
    { "permit", RESTR_PERMIT, "", "", false, false },
    { "reject_unauth_destination", RESTR_REJECT,
      "554 5.7.1 <x@elsewhere.example>: Relay access denied", "", false,
      false },
    { "check_client_access inline:{a=b}", RESTR_DEFER,
      "451 4.3.5 Server configuration error", "", false, false },
    { "frobnicate", RESTR_DEFER, "451 4.3.5 Server configuration error",
      "", false, false },
    { "", RESTR_DEFER, "451 4.3.5 Server configuration error", "", false,
      false },
    { "REJECT bad\001text\177", RESTR_REJECT,
      "554 5.7.1 " N " rejected: bad?text?", "", false, false },
    { "DEFER_IF_PERMIT", RESTR_DUNNO, "", "", false, false },
    { "DEFER_IF_REJECT", RESTR_DUNNO, "", "", false, false },
};

START_TEST(access_values)
{
    struct restr_result r;
    enum restr_action a;

    restriction_result_init(&r);
    a = restriction_access_value(value_cases[_i].value, "inline:{test}",
                                 &ctx, "unknown[192.0.2.1]", "Client host",
                                 &r);
    ck_assert_msg(a == value_cases[_i].action, "%s: action %d want %d",
                  value_cases[_i].value, a, value_cases[_i].action);
    ck_assert_str_eq(a == RESTR_REJECT || a == RESTR_DEFER
                     ? buf_str(&r.reply) : "", value_cases[_i].reply);
    ck_assert_str_eq(buf_str(&events), value_cases[_i].event);
    ck_assert_int_eq(r.hold, value_cases[_i].hold);
    ck_assert_int_eq(r.discard, value_cases[_i].discard);
    restriction_result_free(&r);
}
END_TEST

START_TEST(access_value_bounded)
{
    struct restr_result r;
    buf_t v;

    buf_init(&v, 0);
    (void)buf_puts(&v, "REJECT ");
    for (int i = 0; i < 5000; i++)
        (void)buf_putc(&v, 'x');
    restriction_result_init(&r);
    ck_assert_int_eq(restriction_access_value(buf_str(&v), "t", &ctx, "n",
                                              "C", &r), RESTR_REJECT);
    ck_assert_uint_le(r.reply.len, RESTR_REPLY_MAX);
    ck_assert_ptr_null(strchr(buf_str(&r.reply), '\r'));
    restriction_result_free(&r);
    buf_free(&v);
}
END_TEST

START_TEST(defer_if_permit_and_reject)
{
    const char *t = "check_client_access inline:{192.0.2.1=DEFER_IF_PERMIT "
                    "slow down}";
    const char *t2 = "check_client_access inline:{192.0.2.1=DEFER_IF_REJECT "
                     "maybe later}";
    char spec[256];

    snprintf(spec, sizeof(spec), "%s, permit", t);
    CHECK_EVAL(spec, RESTR_DEFER, "450 4.7.1 <unknown[192.0.2.1]>: Client "
               "host rejected: slow down");
    snprintf(spec, sizeof(spec), "%s", t);      /* implicit permit */
    CHECK_EVAL(spec, RESTR_DEFER, "450 4.7.1 <unknown[192.0.2.1]>: Client "
               "host rejected: slow down");
    snprintf(spec, sizeof(spec), "%s, reject", t);
    CHECK_EVAL(spec, RESTR_REJECT, "554 5.7.1 <x@elsewhere.example>: "
               "Recipient address rejected: Access denied");
    snprintf(spec, sizeof(spec), "%s, reject", t2);
    CHECK_EVAL(spec, RESTR_DEFER, "450 4.7.1 <unknown[192.0.2.1]>: Client "
               "host rejected: maybe later");
    snprintf(spec, sizeof(spec), "%s, reject_unauth_destination", t2);
    CHECK_EVAL(spec, RESTR_DEFER, "450 4.7.1 <unknown[192.0.2.1]>: Client "
               "host rejected: maybe later");
    snprintf(spec, sizeof(spec), "%s, permit", t2);
    CHECK_EVAL(spec, RESTR_PERMIT, "");
}
END_TEST

/* ---- lookup keys ----------------------------------------------------- */

static const struct {
    const char *name, *addr;     /* the client */
    const char *table;
    const char *reply;           /* NULL: no match */
} client_keys[] = {
    /* the full address wins over its prefixes */
    { "unknown", "192.0.2.1", "{192.0.2=REJECT net, 192.0.2.1=REJECT host}",
      "host" },
    { "unknown", "192.0.2.1", "{192.0.2=REJECT net}", "net" },
    { "unknown", "192.0.2.1", "{192.0=REJECT b16}", "b16" },
    { "unknown", "192.0.2.1", "{192=REJECT b8}", "b8" },
    { "unknown", "192.0.2.1", "{192.0.2.10=REJECT other}", NULL },
    { "unknown", "192.0.2.1", "{19=REJECT partial}", NULL },
    /* the name (and its parents) before the address */
    { "mx.mail.example.com", "192.0.2.1",
      "{192.0.2.1=REJECT addr, example.com=REJECT name}", "name" },
    { "mx.mail.example.com", "192.0.2.1",
      "{mail.example.com=REJECT p1, example.com=REJECT p2}", "p1" },
    { "mx.mail.example.com", "192.0.2.1", "{com=REJECT tld}", "tld" },
    { "MX.Example.COM", "192.0.2.1", "{mx.example.com=REJECT case}",
      "case" },
    { "unknown", "192.0.2.1", "{unknown=REJECT unresolved}", "unresolved" },
    { "unknown", "2001:db8::1", "{2001:db8=REJECT v6net}", "v6net" },
    { "unknown", "2001:db8::1", "{2001:db8::1=REJECT v6}", "v6" },
    { "unknown", "2001:db8:1:2::1", "{2001:db8:1=REJECT v6p}", "v6p" },
};

START_TEST(keys_client)
{
    char spec[512], got[1024], want[256];
    enum restr_action a;

    ctx.client_name = client_keys[_i].name;
    ctx.client_addr = client_keys[_i].addr;
    snprintf(spec, sizeof(spec), "check_client_access inline:%s",
             client_keys[_i].table);
    a = eval(spec, got, sizeof(got));
    if (client_keys[_i].reply == NULL) {
        ck_assert_int_eq(a, RESTR_DUNNO);
    } else {
        ck_assert_int_eq(a, RESTR_REJECT);
        snprintf(want, sizeof(want), "554 5.7.1 <unknown[192.0.2.1]>: "
                 "Client host rejected: %s", client_keys[_i].reply);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

static const struct {
    const char *addr, *table;
    const char *reply;           /* NULL: no match */
} mail_keys[] = {
    { "User+Tag@Sub.Example.COM",
      "{user+tag@sub.example.com=REJECT full, user@sub.example.com=REJECT b}",
      "full" },
    { "User+Tag@Sub.Example.COM",
      "{user@sub.example.com=REJECT base, sub.example.com=REJECT d}",
      "base" },
    { "User+Tag@Sub.Example.COM",
      "{sub.example.com=REJECT dom, user+tag@=REJECT l}", "dom" },
    { "User+Tag@Sub.Example.COM",
      "{example.com=REJECT parent, user+tag@=REJECT l}", "parent" },
    { "User+Tag@Sub.Example.COM",
      "{user+tag@=REJECT local, user@=REJECT b}", "local" },
    { "User+Tag@Sub.Example.COM", "{user@=REJECT localbase}", "localbase" },
    { "User+Tag@Sub.Example.COM", "{user=REJECT bare, tag=REJECT t}", NULL },
    { "a@example.com",
      "{a@example.com=DUNNO, example.com=REJECT domain}", NULL },
    { "b@example.com",
      "{a@example.com=DUNNO, example.com=REJECT domain}", "domain" },
    { "a@[192.0.2.1]", "{[192.0.2.1]=REJECT literal}", "literal" },
    { "postmaster", "{postmaster=REJECT bare}", "bare" },
};

START_TEST(keys_mail)
{
    char spec[512], got[1024], want[512];
    enum restr_action a;

    /* the same keys for the sender and the recipient */
    for (int which = 0; which < 2; which++) {
        ctx.sender = which == 0 ? mail_keys[_i].addr : "s@example.org";
        ctx.recipient = which == 1 ? mail_keys[_i].addr : "r@example.org";
        snprintf(spec, sizeof(spec), "check_%s_access inline:%s",
                 which == 0 ? "sender" : "recipient", mail_keys[_i].table);
        a = eval(spec, got, sizeof(got));
        if (mail_keys[_i].reply == NULL) {
            ck_assert_msg(a == RESTR_DUNNO, "%s: %s", spec, got);
            continue;
        }
        ck_assert_int_eq(a, RESTR_REJECT);
        snprintf(want, sizeof(want), "554 5.7.1 <%s>: %s address rejected: "
                 "%s", mail_keys[_i].addr,
                 which == 0 ? "Sender" : "Recipient", mail_keys[_i].reply);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

START_TEST(keys_null_sender_and_helo)
{
    ctx.sender = "";
    CHECK_EVAL("check_sender_access inline:{<>=REJECT no bounces}",
               RESTR_REJECT, "554 5.7.1 <>: Sender address rejected: "
               "no bounces");
    ctx.helo = "mx.Example.org";
    CHECK_EVAL("check_helo_access inline:{example.org=REJECT fake}",
               RESTR_REJECT, "554 5.7.1 <mx.Example.org>: Helo command "
               "rejected: fake");
    ctx.helo = NULL;
    CHECK_EVAL("check_helo_access inline:{example.org=REJECT fake}",
               RESTR_DUNNO, "");
    /* a key too long for any table is simply not found */
    char longname[700];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ctx.helo = longname;
    CHECK_EVAL("check_helo_access static:REJECT", RESTR_DUNNO, "");
}
END_TEST

START_TEST(table_error_defers)
{
    /* a table file that does not exist: every lookup fails temporarily */
    CHECK_EVAL("check_client_access lmdb:/nonexistent/tern-table, permit",
               RESTR_DEFER,
               "451 4.3.0 <unknown[192.0.2.1]>: Temporary lookup failure");
    CHECK_EVAL("check_recipient_access lmdb:/nonexistent/tern-table, permit",
               RESTR_DEFER,
               "451 4.3.0 <x@elsewhere.example>: Temporary lookup failure");
}
END_TEST

START_TEST(no_ops)
{
    /* without callbacks nothing crashes and nothing is permitted */
    ctx.ops = NULL;
    CHECK_EVAL("permit_mynetworks, reject_unlisted_recipient, "
               "reject_sender_login_mismatch", RESTR_DUNNO, "");
    CHECK_EVAL("reject_unauth_destination", RESTR_REJECT,
               "554 5.7.1 <x@elsewhere.example>: Relay access denied");
}
END_TEST

static Suite *restriction_suite(void)
{
    Suite *s = suite_create("restriction");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, parse_table, 0,
                        sizeof(parse_cases) / sizeof(parse_cases[0]));
    tcase_add_test(tc, parse_hostile);
    tcase_add_test(tc, has_names);
    tcase_add_test(tc, eval_order);
    tcase_add_test(tc, eval_stages_share_result);
    tcase_add_test(tc, eval_sasl);
    tcase_add_test(tc, eval_unauth_destination);
    tcase_add_test(tc, eval_unlisted);
    tcase_add_loop_test(tc, eval_helo, 0,
                        sizeof(helo_cases) / sizeof(helo_cases[0]));
    tcase_add_test(tc, eval_non_fqdn_addresses);
    tcase_add_test(tc, eval_unknown_client);
    tcase_add_loop_test(tc, eval_unknown_client_status, 0,
                        sizeof(unknown_cases) / sizeof(unknown_cases[0]));
    tcase_add_test(tc, eval_reverse_client_access);
    tcase_add_test(tc, eval_warn_if_reject);
    tcase_add_loop_test(tc, eval_login_mismatch, 0,
                        sizeof(login_cases) / sizeof(login_cases[0]));
    tcase_add_loop_test(tc, access_values, 0,
                        sizeof(value_cases) / sizeof(value_cases[0]));
    tcase_add_test(tc, access_value_bounded);
    tcase_add_test(tc, defer_if_permit_and_reject);
    tcase_add_loop_test(tc, keys_client, 0,
                        sizeof(client_keys) / sizeof(client_keys[0]));
    tcase_add_loop_test(tc, keys_mail, 0,
                        sizeof(mail_keys) / sizeof(mail_keys[0]));
    tcase_add_test(tc, keys_null_sender_and_helo);
    tcase_add_test(tc, table_error_defers);
    tcase_add_test(tc, no_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(restriction_suite(), true);
}

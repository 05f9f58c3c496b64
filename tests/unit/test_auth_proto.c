/*
 * test_auth_proto - unit tests for lib/mail/auth_proto.c: requests and
 * replies round-trip through attribute lists and the wire form, and a
 * table of hostile requests/replies (missing, duplicate, unknown
 * attributes, bad versions, bad field values) is refused; the same for
 * the two SCRAM-SHA-256 requests and their replies.
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <string.h>

#include "mail/auth_proto.h"
#include "util/attr.h"
#include "util/buf.h"
#include "check_attr.h"

static const struct auth_request good_req = {
    .mechanism = "PLAIN", .service = "smtp", .user = "demo",
    .password = "s3cret pass\x01\xff", .client_address = "192.0.2.1",
    .client_name = "unknown",
};

START_TEST(test_request_roundtrip)
{
    attr_list_t a, b;
    struct auth_request r;
    const char *err = NULL;

    attr_list_init(&a);
    attr_list_init(&b);
    ck_assert_int_eq(auth_request_encode(&good_req, &a, &err), 0);
    ck_assert_str_eq(attr_get(&a, "request"), "auth");
    ck_assert_str_eq(attr_get(&a, "version"), "1");
    wire_roundtrip(&a, &b);
    ck_assert_int_eq(auth_request_decode(&b, &r, &err), 0);
    ck_assert(memcmp(&r, &good_req, sizeof(r)) == 0);
    auth_request_clear(&r);
    ck_assert_str_eq(r.password, "");
    attr_list_wipe(&b);
    ck_assert_str_eq(attr_get(&b, "password"), "");
    attr_list_free(&a);
    attr_list_free(&b);
}
END_TEST

START_TEST(test_reply_roundtrip)
{
    static const struct auth_reply replies[] = {
        { .status = AUTH_STATUS_OK, .user = "demo",
          .reason = "authenticated" },
        { .status = AUTH_STATUS_FAIL, .reason = "authentication failure" },
        { .status = AUTH_STATUS_TEMPFAIL, .reason = "temporary failure" },
        { .status = AUTH_STATUS_CONTINUE, .reason = "continue",
          .salt = "W22ZaJ0SNY7soEsUEjb6gQ==", .iterations = 4096 },
        { .status = AUTH_STATUS_OK, .user = "demo", .reason = "authenticated",
          .server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
        { .status = AUTH_STATUS_OK, .user = "demo", .reason = "authenticated",
          .token = "1.1800000030.0123456789abcdef0123456789abcdef.00ff" },
    };
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        attr_list_t a, b;
        struct auth_reply r;
        const char *err = NULL;

        attr_list_init(&a);
        attr_list_init(&b);
        ck_assert_int_eq(auth_reply_encode(&replies[i], &a, &err), 0);
        wire_roundtrip(&a, &b);
        ck_assert_int_eq(auth_reply_decode(&b, &r, &err), 0);
        ck_assert_int_eq(r.status, replies[i].status);
        ck_assert_str_eq(r.user, replies[i].user);
        ck_assert_str_eq(r.reason, replies[i].reason);
        ck_assert_str_eq(r.salt, replies[i].salt);
        ck_assert_str_eq(r.server_final, replies[i].server_final);
        ck_assert_str_eq(r.token, replies[i].token);
        ck_assert_int_eq(r.iterations, replies[i].iterations);
        attr_list_free(&a);
        attr_list_free(&b);
    }
}
END_TEST

enum op { SET, DROP, ADD };
static const struct {
    enum op op;
    const char *name, *value;
} hostile_req[] = {
    { DROP, "request", NULL }, { DROP, "version", NULL },
    { DROP, "mechanism", NULL }, { DROP, "service", NULL },
    { DROP, "user", NULL }, { DROP, "password", NULL },
    { DROP, "client_address", NULL }, { DROP, "client_name", NULL },
    { ADD, "user", "root" },                /* duplicate: which one wins? */
    { ADD, "password", "x" },
    { ADD, "authzid", "root" },             /* unknown attribute */
    { SET, "request", "lookup" },
    { SET, "version", "2" }, { SET, "version", "01" }, { SET, "version", "" },
    { SET, "mechanism", "plain" }, { SET, "mechanism", "CRAM-MD5" },
    { SET, "mechanism", "" },
    { SET, "service", "SMTP" }, { SET, "service", "ftp" },
    { SET, "user", "" }, { SET, "user", "de\nmo" }, { SET, "user", "de\rmo" },
    { SET, "user", "x\x7f" },
    { SET, "password", "" },
    { SET, "client_address", "" }, { SET, "client_address", "1.2.3.4]: x" },
    { SET, "client_address", "1.2.3.4\n" },
    { SET, "client_address", "1111111111111111111111111111111111111111111111111111111111111111" },
    { SET, "client_name", "" }, { SET, "client_name", "a b" },
    { SET, "client_name", "x[1.2.3.4]" },
};

/* hostile_build - the good request with one change */
static void hostile_build(size_t i, attr_list_t *out)
{
    attr_list_t good;
    const char *err = NULL;

    attr_list_init(&good);
    ck_assert_int_eq(auth_request_encode(&good_req, &good, &err), 0);
    for (size_t k = 0; k < good.count; k++) {
        const char *n = good.items[k].name, *v = good.items[k].value;

        if (strcmp(n, hostile_req[i].name) == 0) {
            if (hostile_req[i].op == DROP)
                continue;
            if (hostile_req[i].op == SET)
                v = hostile_req[i].value;
        }
        attr_add(out, n, v);
    }
    if (hostile_req[i].op == ADD)
        attr_add(out, hostile_req[i].name, hostile_req[i].value);
    attr_list_free(&good);
}

START_TEST(test_request_hostile)
{
    attr_list_t l;
    struct auth_request r;
    const char *err = NULL;

    attr_list_init(&l);
    hostile_build((size_t)_i, &l);
    ck_assert_int_eq(auth_request_decode(&l, &r, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "s3cret"));
    ck_assert_str_eq(r.password, "");
    attr_list_free(&l);
}
END_TEST

START_TEST(test_request_long_fields)
{
    struct auth_request r = good_req;
    attr_list_t l;
    const char *err = NULL;

    attr_list_init(&l);
    memset(r.user, 'u', AUTH_FIELD_MAX);
    r.user[AUTH_FIELD_MAX] = '\0';
    ck_assert_int_eq(auth_request_encode(&r, &l, &err), 0);
    attr_list_reset(&l);
    /* one byte over: built by hand, the struct cannot hold it */
    char big[AUTH_FIELD_MAX + 2];
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    static const char *const fields[] = { "user", "password", "client_name" };
    for (size_t f = 0; f < 3; f++) {
        attr_list_t g;
        attr_list_init(&g);
        attr_list_reset(&l);
        ck_assert_int_eq(auth_request_encode(&good_req, &g, &err), 0);
        for (size_t k = 0; k < g.count; k++)
            attr_add(&l, g.items[k].name,
                     strcmp(g.items[k].name, fields[f]) == 0 ? big
                                                             : g.items[k].value);
        ck_assert_int_eq(auth_request_decode(&l, &r, &err), -1);
        attr_list_free(&g);
    }
    attr_list_free(&l);
}
END_TEST

START_TEST(test_reply_hostile)
{
    static const char *const bad[][8] = {
        { "status", "ok", "reason", "x", NULL },                 /* no version */
        { "version", "2", "status", "ok", "reason", "x", "user", "u" },
        { "version", "1", "status", "ok", "reason", "x", NULL }, /* ok, no user */
        { "version", "1", "status", "fail", "reason", "x", "user", "u" },
        { "version", "1", "status", "OK", "reason", "x", "user", "u" },
        { "version", "1", "status", "maybe", "reason", "x", NULL },
        { "version", "1", "status", "fail", NULL },              /* no reason */
        { "version", "1", "status", "fail", "reason", "", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "a\nb" },
        { "version", "1", "status", "fail", "status", "ok", "reason", "x" },
        { "version", "1", "status", "fail", "reason", "x", "uid", "0" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        attr_list_t l;
        struct auth_reply r;
        const char *err = NULL;

        attr_list_init(&l);
        for (size_t k = 0; k < 8 && bad[i][k]; k += 2)
            attr_add(&l, bad[i][k], bad[i][k + 1]);
        ck_assert_msg(auth_reply_decode(&l, &r, &err) == -1, "case %zu", i);
        attr_list_free(&l);
    }
}
END_TEST

START_TEST(test_encode_refuses_bad)
{
    struct auth_request r = good_req;
    struct auth_reply rep = { .status = AUTH_STATUS_FAIL, .user = "demo",
                              .reason = "x" };
    attr_list_t l;
    const char *err = NULL;

    attr_list_init(&l);
    snprintf(r.service, sizeof(r.service), "ftp");
    ck_assert_int_eq(auth_request_encode(&r, &l, &err), -1);
    ck_assert_uint_eq(l.count, 0);
    ck_assert_int_eq(auth_reply_encode(&rep, &l, &err), -1);
    ck_assert_uint_eq(l.count, 0);
    attr_list_free(&l);
}
END_TEST

/* ---- SCRAM-SHA-256 requests ------------------------------------------- */

static const struct auth_request scram_start_req = {
    .kind = AUTH_REQ_SCRAM_START, .mechanism = "SCRAM-SHA-256",
    .service = "smtp", .user = "demo", .client_address = "192.0.2.1",
    .client_name = "unknown",
};
static const struct auth_request scram_finish_req = {
    .kind = AUTH_REQ_SCRAM_FINISH, .mechanism = "SCRAM-SHA-256",
    .service = "smtp", .client_address = "192.0.2.1",
    .client_name = "unknown", .client_first = "n,,n=user,r=abc",
    .server_first = "r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    .client_final = "c=biws,r=abcdef,p=AAAA",
};

START_TEST(test_scram_roundtrip)
{
    const struct auth_request *reqs[] = { &scram_start_req,
                                          &scram_finish_req };

    for (size_t i = 0; i < 2; i++) {
        attr_list_t a, b;
        struct auth_request r;
        const char *err = NULL;

        attr_list_init(&a);
        attr_list_init(&b);
        ck_assert_int_eq(auth_request_encode(reqs[i], &a, &err), 0);
        ck_assert_ptr_null(attr_get(&a, "password"));
        wire_roundtrip(&a, &b);
        ck_assert_int_eq(auth_request_decode(&b, &r, &err), 0);
        ck_assert(memcmp(&r, reqs[i], sizeof(r)) == 0);
        attr_list_free(&a);
        attr_list_free(&b);
    }
}
END_TEST

/* each: the request kind, then attribute changes (SET name value, or
   value NULL to drop, or ADD with a leading '+') */
static const struct {
    int finish;
    const char *name, *value;
} scram_hostile[] = {
    { 0, "password", "x" }, { 0, "user", NULL }, { 0, "mechanism", "PLAIN" },
    { 0, "mechanism", "SCRAM-SHA-1" }, { 0, "client_first", "n,,n=a,r=b" },
    { 0, "request", "scram-begin" },
    { 1, "user", "demo" }, { 1, "password", "x" }, { 1, "client_first", NULL },
    { 1, "server_first", NULL }, { 1, "client_final", NULL },
    { 1, "client_first", "" }, { 1, "client_first", "n,,n=a\n,r=b" },
    { 1, "client_final", "c=biws\r" }, { 1, "mechanism", "LOGIN" },
    { 1, "request", "auth" },
};

START_TEST(test_scram_hostile)
{
    const struct auth_request *good = scram_hostile[_i].finish
                                          ? &scram_finish_req
                                          : &scram_start_req;
    attr_list_t g, l;
    struct auth_request r;
    const char *err = NULL, *name = scram_hostile[_i].name;
    bool seen = false;

    attr_list_init(&g);
    attr_list_init(&l);
    ck_assert_int_eq(auth_request_encode(good, &g, &err), 0);
    for (size_t k = 0; k < g.count; k++) {
        if (strcmp(g.items[k].name, name) == 0) {
            seen = true;
            if (scram_hostile[_i].value != NULL)
                attr_add(&l, name, scram_hostile[_i].value);
            continue;
        }
        attr_add(&l, g.items[k].name, g.items[k].value);
    }
    if (!seen && scram_hostile[_i].value != NULL)
        attr_add(&l, name, scram_hostile[_i].value);
    ck_assert_msg(auth_request_decode(&l, &r, &err) == -1, "case %d", _i);
    attr_list_free(&g);
    attr_list_free(&l);
}
END_TEST

START_TEST(test_scram_reply_hostile)
{
    static const char *const bad[][12] = {
        /* continue without salt, with user, bad iterations */
        { "version", "1", "status", "continue", "reason", "x", NULL },
        { "version", "1", "status", "continue", "reason", "x", "salt", "AAAA",
          NULL },
        { "version", "1", "status", "continue", "reason", "x", "salt", "AAAA",
          "iterations", "4095", NULL },
        { "version", "1", "status", "continue", "reason", "x", "salt", "AAAA",
          "iterations", "1000001", NULL },
        { "version", "1", "status", "continue", "reason", "x", "salt", "AA A",
          "iterations", "4096", NULL },
        { "version", "1", "status", "continue", "reason", "x", "salt", "AAAA",
          "iterations", "4096", "user", "u" },
        /* salt, iterations or server_final where they do not belong */
        { "version", "1", "status", "fail", "reason", "x", "salt", "AAAA",
          NULL },
        { "version", "1", "status", "fail", "reason", "x", "iterations",
          "4096", NULL },
        { "version", "1", "status", "fail", "reason", "x", "server_final",
          "v=x", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "salt", "AAAA", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "server_final", "v=\n", NULL },
        /* token: with ok only, [0-9a-f.], not empty, not twice */
        { "version", "1", "status", "fail", "reason", "x", "token", "1.2",
          NULL },
        { "version", "1", "status", "tempfail", "reason", "x", "token",
          "1.2", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "token", "", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "token", "1.A", NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "token", "1 2", NULL },
        { "version", "1", "status", "ok", "reason", "x", "token", "1.2",
          NULL },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "token", "1.2", "token", "1.2" },
        { "version", "1", "status", "ok", "reason", "x", "user", "u",
          "token", "1.2222222222222222222222222222222222222222222222222222"
          "2222222222222222222222222222222222222222222222222222222222222222"
          "22222222222222222222222222222222222222222222", NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        attr_list_t l;
        struct auth_reply r;
        const char *err = NULL;

        attr_list_init(&l);
        for (size_t k = 0; k < 12 && bad[i][k]; k += 2)
            attr_add(&l, bad[i][k], bad[i][k + 1]);
        ck_assert_msg(auth_reply_decode(&l, &r, &err) == -1, "case %zu", i);
        attr_list_free(&l);
    }
}
END_TEST

static Suite *auth_proto_suite(void)
{
    Suite *s = suite_create("auth_proto");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, test_request_roundtrip);
    tcase_add_test(tc, test_reply_roundtrip);
    tcase_add_loop_test(tc, test_request_hostile, 0,
                        sizeof(hostile_req) / sizeof(hostile_req[0]));
    tcase_add_test(tc, test_request_long_fields);
    tcase_add_test(tc, test_reply_hostile);
    tcase_add_test(tc, test_encode_refuses_bad);
    tcase_add_test(tc, test_scram_roundtrip);
    tcase_add_loop_test(tc, test_scram_hostile, 0,
                        sizeof(scram_hostile) / sizeof(scram_hostile[0]));
    tcase_add_test(tc, test_scram_reply_hostile);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(auth_proto_suite(), true);
}

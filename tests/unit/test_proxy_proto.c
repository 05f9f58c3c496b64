/*
 * test_proxy_proto - unit tests for lib/mail/proxy_proto.c: requests and
 * replies of private/proxymap round-trip through attribute lists and the
 * wire form; a table of hostile requests and replies (missing, duplicate,
 * unknown attributes, other versions, bad tables, keys and statuses) is
 * refused.
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <string.h>

#include "mail/proxy_proto.h"
#include "util/attr.h"
#include "util/buf.h"
#include "check_attr.h"

START_TEST(test_request_roundtrip)
{
    static const struct proxy_request reqs[] = {
        { PROXY_REQ_LOOKUP, "lmdb:/etc/tern/aliases", "Postmaster" },
        { PROXY_REQ_LOOKUP, "inline:{a=b,c=d}", "key with blanks" },
        { PROXY_REQ_LOCAL_USER, "", "demo" },
        { PROXY_REQ_LOCAL_LOGIN, "", "1000" },
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        attr_list_t a, b;
        struct proxy_request r;
        const char *err = NULL;

        attr_list_init(&a);
        attr_list_init(&b);
        ck_assert_int_eq(proxy_request_encode(&reqs[i], &a, &err), 0);
        ck_assert_str_eq(attr_get(&a, "version"), "1");
        ck_assert_str_eq(attr_get(&a, "request"),
                         i < 2 ? "lookup" : i == 2 ? "local_user"
                                                   : "local_login");
        wire_roundtrip(&a, &b);
        ck_assert_int_eq(proxy_request_decode(&b, &r, &err), 0);
        ck_assert_int_eq(r.type, reqs[i].type);
        ck_assert_str_eq(r.table, reqs[i].table);
        ck_assert_str_eq(r.key, reqs[i].key);
        attr_list_free(&a);
        attr_list_free(&b);
    }
}
END_TEST

START_TEST(test_reply_roundtrip)
{
    static const struct proxy_reply replies[] = {
        { PROXY_STATUS_FOUND, "demo, other@example.com" },
        { PROXY_STATUS_FOUND, "" },         /* an empty value is a value */
        { PROXY_STATUS_NOTFOUND, "" },
        { PROXY_STATUS_TEMPFAIL, "" },
        { PROXY_STATUS_DENIED, "" },
    };
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        attr_list_t a, b;
        struct proxy_reply r;
        const char *err = NULL;

        attr_list_init(&a);
        attr_list_init(&b);
        ck_assert_int_eq(proxy_reply_encode(&replies[i], &a, &err), 0);
        ck_assert(attr_get(&a, "value") != NULL
                  || replies[i].status != PROXY_STATUS_FOUND);
        wire_roundtrip(&a, &b);
        ck_assert_int_eq(proxy_reply_decode(&b, &r, &err), 0);
        ck_assert_int_eq(r.status, replies[i].status);
        ck_assert_str_eq(r.value, replies[i].value);
        attr_list_free(&a);
        attr_list_free(&b);
    }
}
END_TEST

/* each row: name/value pairs of one message, NULL-terminated */
static const char *const bad_requests[][12] = {
    { "version", "1", "table", "lmdb:/a", "key", "k", NULL },  /* no request */
    { "request", "lookup", "table", "lmdb:/a", "key", "k", NULL },
    { "request", "lookup", "version", "1", "key", "k", NULL }, /* no table */
    { "request", "lookup", "version", "1", "table", "lmdb:/a", NULL },
    { "request", "lookup", "version", "2", "table", "lmdb:/a", "key", "k" },
    { "request", "lookup", "version", "01", "table", "lmdb:/a", "key", "k" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "k",
      "key", "root" },                                    /* duplicate */
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "k",
      "table", "lmdb:/etc/shadow" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "k",
      "uid", "0" },                                       /* unknown */
    { "request", "write", "version", "1", "table", "lmdb:/a", "key", "k" },
    { "request", "LOOKUP", "version", "1", "table", "lmdb:/a", "key", "k" },
    { "request", "lookup", "version", "1", "table", "", "key", "k" },
    { "request", "lookup", "version", "1", "table", "/etc/passwd", "key", "k" },
    { "request", "lookup", "version", "1", "table", ":x", "key", "k" },
    { "request", "lookup", "version", "1", "table", "LMDB:/a", "key", "k" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a b", "key", "k" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a\n", "key", "k" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "a\nb" },
    { "request", "lookup", "version", "1", "table", "lmdb:/a", "key", "\x7f" },
    { "request", "local_user", "version", "1", "key", "", NULL },
    { "request", "local_user", "version", "1", "key", "de\rmo", NULL },
    { "request", "local_user", "version", "1", "table", "lmdb:/a", "key",
      "demo" },                                           /* no table here */
    { "request", "local_user", "version", "1", NULL },
    { "request", "local_login", "version", "1", "key", "", NULL },
    { "request", "local_login", "version", "1", "key", "alice", NULL },
    { "request", "local_login", "version", "1", "key", "-1", NULL },
    { "request", "local_login", "version", "1", "key", "1 ", NULL },
    { "request", "local_login", "version", "1", "key",
      "123456789012345678901", NULL },                     /* too long */
    { "request", "local_login", "version", "1", "table", "lmdb:/a", "key",
      "0" },                                              /* no table here */
    { "request", "local_login", "version", "1", NULL },
};

static void build(const char *const *pairs, size_t max, attr_list_t *l)
{
    for (size_t k = 0; k + 1 < max && pairs[k]; k += 2)
        attr_add(l, pairs[k], pairs[k + 1]);
}

START_TEST(test_request_hostile)
{
    attr_list_t l;
    struct proxy_request r;
    const char *err = NULL;

    attr_list_init(&l);
    build(bad_requests[_i], 12, &l);
    ck_assert_int_eq(proxy_request_decode(&l, &r, &err), -1);
    ck_assert_ptr_nonnull(err);
    attr_list_free(&l);
}
END_TEST

START_TEST(test_request_long_fields)
{
    char key[PROXY_KEY_MAX + 2], table[PROXY_TABLE_MAX + 2];
    attr_list_t l;
    struct proxy_request r;
    const char *err = NULL;

    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memcpy(table, "lmdb:", 5);
    memset(table + 5, 't', sizeof(table) - 6);
    table[sizeof(table) - 1] = '\0';
    attr_list_init(&l);
    build((const char *const[]){ "request", "lookup", "version", "1",
                                 "table", "lmdb:/a", "key", key, NULL },
          12, &l);
    ck_assert_int_eq(proxy_request_decode(&l, &r, &err), -1);
    attr_list_reset(&l);
    key[PROXY_KEY_MAX] = '\0';      /* exactly at the limit: fine */
    build((const char *const[]){ "request", "lookup", "version", "1",
                                 "table", "lmdb:/a", "key", key, NULL },
          12, &l);
    ck_assert_int_eq(proxy_request_decode(&l, &r, &err), 0);
    ck_assert_uint_eq(strlen(r.key), PROXY_KEY_MAX);
    attr_list_reset(&l);
    build((const char *const[]){ "request", "lookup", "version", "1",
                                 "table", table, "key", "k", NULL },
          12, &l);
    ck_assert_int_eq(proxy_request_decode(&l, &r, &err), -1);
    attr_list_free(&l);
}
END_TEST

START_TEST(test_reply_hostile)
{
    static const char *const bad[][8] = {
        { "status", "found", "value", "x", NULL },           /* no version */
        { "version", "2", "status", "notfound", NULL },
        { "version", "1", NULL },                            /* no status */
        { "version", "1", "status", "found", NULL },         /* no value */
        { "version", "1", "status", "notfound", "value", "x", NULL },
        { "version", "1", "status", "denied", "value", "", NULL },
        { "version", "1", "status", "FOUND", "value", "x", NULL },
        { "version", "1", "status", "ok", NULL },
        { "version", "1", "status", "notfound", "status", "found", NULL },
        { "version", "1", "status", "found", "value", "a", "value", "b" },
        { "version", "1", "status", "notfound", "reason", "x", NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        attr_list_t l;
        struct proxy_reply r;
        const char *err = NULL;

        attr_list_init(&l);
        build(bad[i], 8, &l);
        ck_assert_msg(proxy_reply_decode(&l, &r, &err) == -1, "row %zu", i);
        ck_assert_ptr_nonnull(err);
        attr_list_free(&l);
    }
    /* a value over the limit */
    char big[PROXY_VALUE_MAX + 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    attr_list_t l;
    struct proxy_reply r;
    const char *err = NULL;
    attr_list_init(&l);
    build((const char *const[]){ "version", "1", "status", "found",
                                 "value", big, NULL }, 8, &l);
    ck_assert_int_eq(proxy_reply_decode(&l, &r, &err), -1);
    attr_list_free(&l);
}
END_TEST

START_TEST(test_encode_refuses_bad)
{
    struct proxy_request rq = { PROXY_REQ_LOOKUP, "nocolon", "k" };
    struct proxy_reply rp = { (enum proxy_status)17, "" };
    attr_list_t l;
    const char *err = NULL;

    attr_list_init(&l);
    ck_assert_int_eq(proxy_request_encode(&rq, &l, &err), -1);
    ck_assert_uint_eq(l.count, 0);
    rq.type = PROXY_REQ_LOCAL_USER;
    snprintf(rq.table, sizeof(rq.table), "lmdb:/a");
    ck_assert_int_eq(proxy_request_encode(&rq, &l, &err), -1);
    ck_assert_uint_eq(l.count, 0);
    ck_assert_int_eq(proxy_reply_encode(&rp, &l, &err), -1);
    ck_assert_uint_eq(l.count, 0);
    ck_assert_str_eq(proxy_status_name(PROXY_STATUS_DENIED), "denied");
    ck_assert_str_eq(proxy_status_name((enum proxy_status)17), "?");
    attr_list_free(&l);
}
END_TEST

static Suite *proxy_proto_suite(void)
{
    Suite *s = suite_create("proxy_proto");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, test_request_roundtrip);
    tcase_add_test(tc, test_reply_roundtrip);
    tcase_add_loop_test(tc, test_request_hostile, 0,
                        sizeof(bad_requests) / sizeof(bad_requests[0]));
    tcase_add_test(tc, test_request_long_fields);
    tcase_add_test(tc, test_reply_hostile);
    tcase_add_test(tc, test_encode_refuses_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(proxy_proto_suite(), true);
}

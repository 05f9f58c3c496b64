/*
 * test_deliver_request - the delivery request and reply codec: a built
 * request parses back to itself (through the wire form), and hostile
 * requests are refused: wrong kind or queue, bad queue IDs, counts out
 * of range, missing, repeated or out-of-range recipient attributes,
 * bad offsets and time stamps. Replies: per-recipient status, dsn and
 * reason, a missing or bad status, dest_status.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>
#include "mail/deliver_request.h"
#include "util/attr.h"

#define QID "4ZxB2KbQ1vNz"

/* base_request - a valid two-recipient request */
static void base_request(attr_list_t *l)
{
    attr_list_init(l);
    attr_add(l, DA_REQUEST, DELIVER_REQUEST_DELIVER);
    attr_add(l, DA_QUEUE_NAME, "active");
    attr_add(l, DA_QUEUE_ID, QID);
    attr_add(l, DA_NEXTHOP, "example.com");
    attr_add(l, DA_RCPT_COUNT, "2");
    attr_add(l, DA_RECIPIENT "_0", "a@example.com");
    attr_add(l, DA_RCPT_OFFSET "_0", "100");
    attr_add(l, DA_RECIPIENT "_1", "b@example.com");
    attr_add(l, DA_RCPT_OFFSET "_1", "200");
}

START_TEST(test_roundtrip)
{
    deliver_request_t in, out;
    attr_list_t l, back;
    buf_t wire = BUF_INIT;
    size_t used;
    const char *err = NULL;

    memset(&in, 0, sizeof(in));
    in.queue_id = QID;
    in.transport = "smtp";
    in.nexthop = "[192.0.2.1]:2525";
    in.active_usec = 1700000000123456ULL;
    in.nrcpts = DELIVER_MAX_RCPTS;
    for (size_t k = 0; k < in.nrcpts; k++) {
        in.rcpts[k].address = k % 2 ? "odd@example.com" : "\"q u\"@x";
        in.rcpts[k].offset = (long)(k + 1) * 77;
    }
    attr_list_init(&l);
    attr_list_init(&back);
    deliver_request_build(&in, &l);
    ck_assert_int_eq(attr_encode(&l, &wire), 0);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &back, &used, &err), 1);
    ck_assert_int_eq(deliver_request_parse(&back, &out, DELIVER_MAX_RCPTS,
                                           &err), 0);
    ck_assert_str_eq(out.queue_name, "active");
    ck_assert_str_eq(out.queue_id, QID);
    ck_assert_str_eq(out.transport, "smtp");
    ck_assert_str_eq(out.nexthop, "[192.0.2.1]:2525");
    ck_assert(out.active_usec == in.active_usec);
    ck_assert_uint_eq(out.nrcpts, in.nrcpts);
    for (size_t k = 0; k < in.nrcpts; k++) {
        ck_assert_str_eq(out.rcpts[k].address, in.rcpts[k].address);
        ck_assert_int_eq(out.rcpts[k].offset, in.rcpts[k].offset);
    }
    /* an agent's own smaller limit */
    ck_assert_int_eq(deliver_request_parse(&back, &out, 1, &err), -1);
    attr_list_free(&l);
    attr_list_free(&back);
    buf_free(&wire);
}
END_TEST

START_TEST(test_defaults_and_unknown_names)
{
    deliver_request_t out;
    attr_list_t l;
    const char *err = NULL;

    base_request(&l);
    attr_add(&l, "sender", "claimed@example.com");  /* ignored */
    ck_assert_int_eq(deliver_request_parse(&l, &out, 2, &err), 0);
    ck_assert_str_eq(out.transport, "");
    ck_assert(out.active_usec == 0);
    ck_assert_uint_eq(out.nrcpts, 2);
    ck_assert_str_eq(out.rcpts[1].address, "b@example.com");
    attr_list_free(&l);
}
END_TEST

/* hostile requests: (name, value) changes of base_request; value NULL
   removes; "+" prefix on the name adds instead of replacing */
static const struct {
    const char *name;
    const char *value;
} bad_cases[] = {
    { DA_REQUEST, "flush" },
    { DA_REQUEST, NULL },
    { DA_QUEUE_NAME, "deferred" },
    { DA_QUEUE_NAME, NULL },
    { DA_QUEUE_ID, "../../etc/passwd" },
    { DA_QUEUE_ID, "" },
    { DA_QUEUE_ID, NULL },
    { DA_RCPT_COUNT, "0" },
    { DA_RCPT_COUNT, "-1" },
    { DA_RCPT_COUNT, "3" },                 /* more than present */
    { DA_RCPT_COUNT, "65" },
    { DA_RCPT_COUNT, "2x" },
    { DA_RCPT_COUNT, NULL },
    { DA_RECIPIENT "_1", NULL },
    { DA_RCPT_OFFSET "_0", "0" },
    { DA_RCPT_OFFSET "_0", "-5" },
    { DA_RCPT_OFFSET "_0", "99999999999999999999" },
    { DA_RCPT_OFFSET "_0", "1e3" },
    { DA_RCPT_OFFSET "_1", "100" },         /* one record twice */
    { DA_RCPT_OFFSET "_1", NULL },
    { "+" DA_RECIPIENT "_2", "c@example.com" },   /* index >= count */
    { "+" DA_RCPT_OFFSET "_9", "300" },
    { "+" DA_QUEUE_ID, QID },                /* repeated */
    { "+" DA_RECIPIENT "_0", "evil@example.com" },
    { "+" DA_ACTIVE_USEC, "-1" },
    { "+" DA_ACTIVE_USEC, "12abc" },
    { "+" DA_ACTIVE_USEC, "" },
};

START_TEST(test_bad_requests)
{
    deliver_request_t out;
    attr_list_t l, bad;
    const char *err = NULL;
    const char *name = bad_cases[_i].name, *value = bad_cases[_i].value;
    bool add = name[0] == '+';

    base_request(&l);
    attr_list_init(&bad);
    if (add)
        name++;
    for (size_t i = 0; i < l.count; i++) {
        if (!add && strcmp(l.items[i].name, name) == 0) {
            if (value != NULL)
                attr_add(&bad, name, value);
            continue;
        }
        attr_add(&bad, l.items[i].name, l.items[i].value);
    }
    if (add)
        attr_add(&bad, name, value);
    ck_assert_msg(deliver_request_parse(&bad, &out, DELIVER_MAX_RCPTS,
                                        &err) == -1,
                  "case %d (%s=%s) accepted", _i, bad_cases[_i].name,
                  value ? value : "(removed)");
    ck_assert_ptr_nonnull(err);
    attr_list_free(&l);
    attr_list_free(&bad);
}
END_TEST

START_TEST(test_reply)
{
    attr_list_t r;
    int status;
    const char *dsn, *reason;

    attr_list_init(&r);
    deliver_reply_add(&r, 0, DELIVER_OK, "2.0.0", "250 2.0.0 Ok");
    deliver_reply_add(&r, 1, DELIVER_BOUNCE, "5.1.1", "550 no such user");
    deliver_reply_add(&r, 2, DELIVER_DEFER, NULL, NULL);
    attr_add(&r, DA_STATUS "_3", "7");
    attr_add(&r, DA_STATUS "_4", "x");
    ck_assert_int_eq(deliver_reply_get(&r, 0, &status, &dsn, &reason), 0);
    ck_assert_int_eq(status, DELIVER_OK);
    ck_assert_str_eq(dsn, "2.0.0");
    ck_assert_str_eq(reason, "250 2.0.0 Ok");
    ck_assert_int_eq(deliver_reply_get(&r, 1, &status, &dsn, &reason), 0);
    ck_assert_int_eq(status, DELIVER_BOUNCE);
    ck_assert_str_eq(dsn, "5.1.1");
    ck_assert_int_eq(deliver_reply_get(&r, 2, &status, &dsn, &reason), 0);
    ck_assert_int_eq(status, DELIVER_DEFER);
    ck_assert_str_eq(dsn, "");
    ck_assert_str_eq(reason, "");
    ck_assert_int_eq(deliver_reply_get(&r, 3, &status, &dsn, &reason), -1);
    ck_assert_int_eq(deliver_reply_get(&r, 4, &status, &dsn, &reason), -1);
    ck_assert_int_eq(deliver_reply_get(&r, 5, &status, &dsn, &reason), -1);
    ck_assert_int_eq(deliver_reply_is_dest_dead(&r), 0);
    deliver_reply_dest_dead(&r);
    ck_assert_int_eq(deliver_reply_is_dest_dead(&r), 1);
    attr_list_free(&r);
}
END_TEST

static Suite *deliver_request_suite(void)
{
    Suite *s = suite_create("deliver_request");
    TCase *tc = tcase_create("deliver_request");

    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_defaults_and_unknown_names);
    tcase_add_loop_test(tc, test_bad_requests, 0,
                        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_reply);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(deliver_request_suite(), true);
}

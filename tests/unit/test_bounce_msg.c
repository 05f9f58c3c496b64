/*
 * test_bounce_msg - the non-delivery report's structure: our headers,
 * the three parts in order with their types, the delivery-status
 * fields (ENVID, ORCPT, Status, Diagnostic-Code), RET=FULL versus
 * RET=HDRS, line lengths under 998 with long reasons, no header
 * injection through a reason, random boundaries, 8-bit content; delay
 * warnings (Action: delayed, Will-Retry-Until, headers only), success
 * notices (delivered, relayed), and bounce_size_limit's cut.
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "mail/bounce_msg.h"
#include "util/buf.h"

static const char orig[] =
    "From: a@example.org\n"
    "To: b@example.net\n"
    "Subject: hello\n"
    "\n"
    "the body line\n";

static struct bounce_rcpt rcpts[2] = {
    { "b@example.net", "rfc822;B@Example.NET", "5.1.1",
      "unknown user: \"b\"", NULL, NULL },
    { "c@example.net", NULL, NULL, NULL, NULL, NULL },
};

static struct bounce_info info(void)
{
    struct bounce_info b = {
        .myhostname = "mx.example.com",
        .sender = "a@example.org",
        .qid = "QID123",
        .envid = "ENV-42",
        .arrival = 1700000000,
        .now = 1700000100,
        .boundary = "BOUND",
        .rcpts = rcpts,
        .nrcpts = 2,
    };
    return b;
}

/* the text between the end of the header section and the end */
static const char *body_of(const char *s)
{
    const char *p = strstr(s, "\n\n");

    ck_assert_ptr_nonnull(p);
    return p + 2;
}

/* has - s contains needle */
static void has(const char *s, const char *needle)
{
    ck_assert_msg(strstr(s, needle) != NULL, "missing \"%s\" in:\n%.3000s",
                  needle, s);
}

/* starts - s begins with want */
static void starts(const char *s, const char *want)
{
    ck_assert_msg(strncmp(s, want, strlen(want)) == 0,
                  "want:\n%s\ngot:\n%.3000s", want, s);
}

/* max_line - longest line of s */
static size_t max_line(const char *s)
{
    size_t max = 0;

    while (*s != '\0') {
        size_t n = strcspn(s, "\n");

        if (n > max)
            max = n;
        s += n;
        if (*s == '\n')
            s++;
    }
    return max;
}

START_TEST(test_bounce_full)
{
    struct bounce_info b = info();
    buf_t out = BUF_INIT;
    const char *s, *p1, *p2, *p3, *end;

    ck_assert_int_eq(setenv("TZ", "UTC", 1), 0);
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    s = buf_str(&out);
    ck_assert_ptr_null(strchr(s, '\r'));
    /* header section */
    starts(s, "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\n");
    has(s, "\nTo: a@example.org\n");
    has(s, "\nSubject: Undelivered Mail Returned to Sender\n");
    has(s, "\nDate: Tue, 14 Nov 2023 22:15:00 +0000\n");
    has(s, "\nMessage-ID: <20231114221500.");
    has(s, "@mx.example.com>\n");
    has(s, "\nAuto-Submitted: auto-replied\n");
    has(s, "\nMIME-Version: 1.0\n");
    has(s, "\nContent-Type: multipart/report; report-type=delivery-status;"
           "\n\tboundary=\"BOUND\"\n");
    has(s, "\nContent-Transfer-Encoding: 7bit\n");
    ck_assert(strstr(s, "--BOUND") >= body_of(s));
    /* three parts, in order, then the close delimiter at the end */
    p1 = strstr(s, "\n--BOUND\n");
    ck_assert_ptr_nonnull(p1);
    p2 = strstr(p1 + 1, "\n--BOUND\n");
    ck_assert_ptr_nonnull(p2);
    p3 = strstr(p2 + 1, "\n--BOUND\n");
    ck_assert_ptr_nonnull(p3);
    ck_assert_ptr_null(strstr(p3 + 1, "\n--BOUND\n"));
    end = strstr(p3, "\n--BOUND--\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_str_eq(end, "\n--BOUND--\n");
    /* 1: text */
    starts(p1 + 9, "Content-Description: Notification\n"
                   "Content-Type: text/plain; charset=us-ascii\n\n");
    ck_assert_ptr_nonnull(strstr(p1, "This is the mail system at host "
                                     "mx.example.com.\n"));
    ck_assert_ptr_nonnull(strstr(p1, "<b@example.net>: unknown user: \"b\"\n"));
    ck_assert_ptr_nonnull(strstr(p1, "<c@example.net>: reason unknown\n"));
    ck_assert(strstr(p1, "<c@example.net>") < p2);
    /* 2: delivery-status */
    starts(p2 + 9, "Content-Description: Delivery report\n"
                          "Content-Type: message/delivery-status\n\n"
                          "Reporting-MTA: dns; mx.example.com\n"
                          "Original-Envelope-Id: ENV-42\n"
                          "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
                          "\n"
                          "Final-Recipient: rfc822; b@example.net\n"
                          "Original-Recipient: rfc822; B@Example.NET\n"
                          "Action: failed\n"
                          "Status: 5.1.1\n"
                          "Diagnostic-Code: x-tern; unknown user: \"b\"\n"
                          "\n"
                          "Final-Recipient: rfc822; c@example.net\n"
                          "Action: failed\n"
                          "Status: 5.0.0\n"
                          "\n--BOUND\n");
    /* 3: the whole original */
    starts(p3 + 9, "Content-Description: Undelivered Message\n"
                          "Content-Type: message/rfc822\n\n");
    ck_assert_ptr_nonnull(strstr(p3, orig));
    buf_free(&out);
}
END_TEST

START_TEST(test_bounce_hdrs)
{
    struct bounce_info b = info();
    buf_t out = BUF_INIT;
    const char *s, *p;

    b.ret_hdrs = true;
    b.envid = NULL;
    b.nrcpts = 1;
    rcpts[0].diagnostic = "550 5.1.1 <b@example.net>: no such user";
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    rcpts[0].diagnostic = "unknown user: \"b\"";
    s = buf_str(&out);
    ck_assert_ptr_null(strstr(s, "Original-Envelope-Id"));
    ck_assert_ptr_null(strstr(s, "c@example.net"));
    has(s, "Diagnostic-Code: smtp; 550 5.1.1 <b@example.net>: no such user\n");
    p = strstr(s, "Content-Type: text/rfc822-headers\n\n");
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(strchr(p, '\n') + 2,
                     "From: a@example.org\nTo: b@example.net\n"
                     "Subject: hello\n\n--BOUND--\n");
    ck_assert_ptr_null(strstr(s, "the body line"));
    ck_assert_ptr_null(strstr(s, "message/rfc822"));
    buf_free(&out);
}
END_TEST

/* a reason with line ends cannot add fields; long ones are folded */
START_TEST(test_bounce_long_and_hostile)
{
    struct bounce_info b = info();
    struct bounce_rcpt r = { "x@example.net", NULL, "5.0.0", NULL, NULL, NULL };
    buf_t out = BUF_INIT, reason = BUF_INIT;
    const char *s;

    buf_puts(&reason, "bad\nX-Injected: yes\r\n");
    for (int i = 0; i < 300; i++)
        buf_puts(&reason, "word ");
    for (int i = 0; i < 2500; i++)
        buf_putc(&reason, 'z');
    r.diagnostic = buf_str(&reason);
    b.rcpts = &r;
    b.nrcpts = 1;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    s = buf_str(&out);
    ck_assert_ptr_null(strstr(s, "\nX-Injected"));
    has(s, "Diagnostic-Code: x-tern; bad?X-Injected: yes??word word");
    ck_assert_uint_lt(max_line(s), 998);
    /* the long word is all there, in pieces on continuation lines */
    ck_assert_ptr_nonnull(strstr(s, "\n\tzzzz"));
    buf_free(&out);
    buf_free(&reason);
}
END_TEST

START_TEST(test_bounce_random_boundary)
{
    struct bounce_info b = info();
    buf_t one = BUF_INIT, two = BUF_INIT;
    const char *p, *q;

    b.boundary = NULL;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &one), 0);
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &two), 0);
    p = strstr(buf_str(&one), "boundary=\"");
    q = strstr(buf_str(&two), "boundary=\"");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert_msg(strncmp(p, q, strcspn(p, "\n")) != 0, "same boundary %s", p);
    ck_assert_msg(strncmp(p, "boundary=\"=_QID123.", 19) == 0, "%s", p);
    /* and different Message-IDs */
    p = strstr(buf_str(&one), "Message-ID:");
    q = strstr(buf_str(&two), "Message-ID:");
    ck_assert_msg(strncmp(p, q, strcspn(p, "\n")) != 0, "same %s", p);
    buf_free(&one);
    buf_free(&two);
}
END_TEST

START_TEST(test_bounce_8bit_and_edges)
{
    struct bounce_info b = info();
    buf_t out = BUF_INIT;
    static const char eight[] = "Subject: caf\xc3\xa9\n\nno final newline";

    ck_assert_int_eq(bounce_msg_build(&b, eight, sizeof(eight) - 1, &out), 0);
    has(buf_str(&out), "\nContent-Transfer-Encoding: 8bit\n");
    has(buf_str(&out), "Content-Type: message/rfc822\n"
                       "Content-Transfer-Encoding: 8bit\n\n");
    has(buf_str(&out), "no final newline\n\n--BOUND--\n");
    /* headers only of a message without a body; of an empty one */
    buf_reset(&out);
    b.ret_hdrs = true;
    ck_assert_int_eq(bounce_msg_build(&b, "A: b\n", 5, &out), 0);
    has(buf_str(&out), "text/rfc822-headers\n\nA: b\n\n--BOUND--\n");
    buf_reset(&out);
    ck_assert_int_eq(bounce_msg_build(&b, "\nbody\n", 6, &out), 0);
    has(buf_str(&out), "text/rfc822-headers\n\n\n--BOUND--\n");
    ck_assert_ptr_null(strstr(buf_str(&out), "body\n"));
    /* no recipients: nothing to report */
    buf_reset(&out);
    b.nrcpts = 0;
    errno = 0;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(out.len, 0);
    /* over the buffer's limit: fails, out unchanged */
    buf_free(&out);
    buf_init(&out, 100);
    buf_puts(&out, "keep");
    b.nrcpts = 1;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), -1);
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_str_eq(buf_str(&out), "keep");
    buf_free(&out);
}
END_TEST

START_TEST(test_orig_rcpt_fallback)
{
    /* rewritten by an alias, no DSN ORCPT: the original address is
       reported; a DSN ORCPT wins; the same address is not repeated */
    struct bounce_rcpt rc[3] = {
        { "u@example.net", NULL, "5.1.1", "no", NULL, "alias@example.com" },
        { "v@example.net", "rfc822;given@x", "5.1.1", "no", NULL, "alias@y" },
        { "w@example.net", NULL, "5.1.1", "no", NULL, "w@example.net" },
    };
    struct bounce_info b = info();
    buf_t out = BUF_INIT;

    b.rcpts = rc;
    b.nrcpts = 3;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    has(buf_str(&out), "Final-Recipient: rfc822; u@example.net\n"
                       "Original-Recipient: rfc822; alias@example.com\n");
    has(buf_str(&out), "Original-Recipient: rfc822; given@x\n");
    ck_assert_ptr_null(strstr(buf_str(&out), "alias@y"));
    has(buf_str(&out), "Final-Recipient: rfc822; w@example.net\n"
                       "Action: failed\n");
    buf_free(&out);
}
END_TEST

START_TEST(test_delay_warning)
{
    struct bounce_info b = info();
    struct bounce_rcpt r[2] = {
        { "b@example.net", "rfc822;B@Example.NET", "4.2.0",
          "cannot create Maildir: Permission denied", NULL, NULL },
        { "c@example.net", NULL, NULL, NULL, NULL, NULL },
    };
    buf_t out = BUF_INIT;
    const char *s, *p;

    ck_assert_int_eq(setenv("TZ", "UTC", 1), 0);
    b.kind = BOUNCE_MSG_DELAYED;
    b.rcpts = r;
    b.will_retry_until = 1700000000 + 5 * 86400;
    b.delayed_for = "4 hours";
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    s = buf_str(&out);
    has(s, "\nSubject: Delayed Mail (still being retried)\n");
    has(s, "THIS IS A WARNING ONLY");
    has(s, "could not be delivered for 4 hours");
    has(s, "Sun, 19 Nov 2023 22:13:20 +0000");
    has(s, "Final-Recipient: rfc822; b@example.net\n"
           "Original-Recipient: rfc822; B@Example.NET\n"
           "Action: delayed\n"
           "Status: 4.2.0\n"
           "Diagnostic-Code: x-tern; cannot create Maildir: Permission "
           "denied\n"
           "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\n");
    has(s, "Final-Recipient: rfc822; c@example.net\n"
           "Action: delayed\n"
           "Status: 4.0.0\n"
           "Will-Retry-Until: ");
    ck_assert_ptr_null(strstr(s, "Action: failed"));
    /* headers only, even with RET=FULL */
    p = strstr(s, "Content-Type: text/rfc822-headers\n\n");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(strstr(s, "the body line"));
    buf_free(&out);
}
END_TEST

START_TEST(test_success_notice)
{
    struct bounce_info b = info();
    struct bounce_rcpt r[2] = {
        { "b@example.net", NULL, "2.0.0", "delivered to maildir", NULL, NULL },
        { "c@example.net", NULL, NULL,
          "250 ok (next hop does not support DSN)", "relayed",
          NULL },
    };
    buf_t out = BUF_INIT;
    const char *s;

    b.kind = BOUNCE_MSG_SUCCESS;
    b.rcpts = r;
    ck_assert_int_eq(bounce_msg_build(&b, orig, sizeof(orig) - 1, &out), 0);
    s = buf_str(&out);
    has(s, "\nSubject: Successful Mail Delivery Report\n");
    has(s, "Final-Recipient: rfc822; b@example.net\n"
           "Action: delivered\n"
           "Status: 2.0.0\n"
           "Diagnostic-Code: x-tern; delivered to maildir\n");
    has(s, "Final-Recipient: rfc822; c@example.net\n"
           "Action: relayed\n"
           "Status: 2.0.0\n"
           "Diagnostic-Code: smtp; 250 ok");
    ck_assert_ptr_null(strstr(s, "Will-Retry-Until"));
    ck_assert_ptr_null(strstr(s, "Action: failed"));
    has(s, "Content-Type: text/rfc822-headers\n\nFrom: a@example.org\n");
    ck_assert_ptr_null(strstr(s, "the body line"));
    buf_free(&out);
}
END_TEST

START_TEST(test_size_limit)
{
    struct bounce_info b = info();
    buf_t out = BUF_INIT, big = BUF_INIT;
    const char *s, *p;
    size_t hdr_len = strlen("From: a@example.org\nSubject: big\n\n");

    buf_puts(&big, "From: a@example.org\nSubject: big\n\n");
    for (int i = 0; i < 1000; i++)
        buf_printf(&big, "body line %04d\n", i);     /* 15 bytes each */
    b.size_limit = hdr_len + 15 * 10 + 7;
    ck_assert_int_eq(bounce_msg_build(&b, big.data, big.len, &out), 0);
    s = buf_str(&out);
    p = strstr(s, "Content-Type: message/rfc822\n\n");
    ck_assert_ptr_nonnull(p);
    /* ten whole body lines; the cut is at a line end */
    has(p, "body line 0009\n\n--BOUND--\n");
    ck_assert_ptr_null(strstr(p, "body line 0010"));
    /* a limit inside the header section keeps the headers whole */
    buf_reset(&out);
    b.size_limit = 10;
    ck_assert_int_eq(bounce_msg_build(&b, big.data, big.len, &out), 0);
    has(buf_str(&out), "\n\nFrom: a@example.org\nSubject: big\n\n"
                       "--BOUND--\n");
    ck_assert_ptr_null(strstr(buf_str(&out), "body line"));
    /* RET=HDRS under the limit is unchanged; no limit is everything */
    buf_reset(&out);
    b.ret_hdrs = true;
    b.size_limit = 100000;
    ck_assert_int_eq(bounce_msg_build(&b, big.data, big.len, &out), 0);
    ck_assert_ptr_null(strstr(buf_str(&out), "body line"));
    buf_reset(&out);
    b.ret_hdrs = false;
    b.size_limit = 0;
    ck_assert_int_eq(bounce_msg_build(&b, big.data, big.len, &out), 0);
    has(buf_str(&out), "body line 0999\n\n--BOUND--\n");
    buf_free(&out);
    buf_free(&big);
}
END_TEST

static Suite *bounce_msg_suite(void)
{
    Suite *s = suite_create("bounce_msg");
    TCase *tc = tcase_create("bounce_msg");

    tcase_add_test(tc, test_bounce_full);
    tcase_add_test(tc, test_bounce_hdrs);
    tcase_add_test(tc, test_bounce_long_and_hostile);
    tcase_add_test(tc, test_bounce_random_boundary);
    tcase_add_test(tc, test_bounce_8bit_and_edges);
    tcase_add_test(tc, test_orig_rcpt_fallback);
    tcase_add_test(tc, test_delay_warning);
    tcase_add_test(tc, test_success_notice);
    tcase_add_test(tc, test_size_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(bounce_msg_suite(), true);
}

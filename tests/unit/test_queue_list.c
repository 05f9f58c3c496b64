/*
 * test_queue_list - the queue walk and its two output forms: messages
 * in every queue with their pending recipients and defer/ reasons, the
 * mailq and JSON forms (hostile strings escaped: one line per record,
 * no raw control bytes, malformed UTF-8 replaced), and a table of
 * hostile or corrupt spool entries (truncated, garbage, empty, a
 * symlink, a FIFO, a directory, a symlinked hash directory) that are
 * skipped or listed as corrupt without following anything.
 */
#include <check.h>

#include "check_main.h"
#define SPOOL_TEST_NAME "queue_list"
#include "check_spool.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mail/bounce_log.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/queue_reader.h"
#include "mail/queue_writer.h"
#include "mail/user_acl.h"
#include "util/buf.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void spool_setup(void)
{
    spool_enter(NULL);
}

static void spool_teardown(void)
{
    spool_leave();
}

/* make_msg - a committed queue file in queue; rcpts "!addr" are done */
static void make_msg(const char *queue, const char *sender,
                     const char *const *rcpts, size_t n, const char *body,
                     char qid[QUEUE_ID_SIZE])
{
    queue_writer_t w;

    ck_assert_int_eq(queue_writer_open(&w, queue), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, sender,
                                         strlen(sender)), 0);
    for (size_t i = 0; i < n; i++) {
        bool done = rcpts[i][0] == '!';
        const char *a = rcpts[i] + done;

        ck_assert_int_eq(queue_writer_record(&w, done ? QREC_DONE : QREC_RCPT,
                                             a, strlen(a)), 0);
    }
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    ck_assert_int_eq(queue_writer_content(&w, body, strlen(body)), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);
    memcpy(qid, w.qid, QUEUE_ID_SIZE);
}

/* offset of recipient i of the file queue/qid */
static off_t rcpt_offset(const char *queue, const char *qid, size_t i)
{
    buf_t path = BUF_INIT;
    queue_msg_t m;
    const char *err;
    off_t off;
    int fd;

    queue_path(queue, qid, &path);
    fd = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(queue_file_read(fd, qid, &m, &err), 0);
    ck_assert_uint_gt(m.nrcpts, i);
    off = m.rcpts[i].offset;
    queue_msg_free(&m);
    close(fd);
    buf_free(&path);
    return off;
}

struct collected {
    struct queue_list_entry v[16];
    size_t n;
    buf_t mailq, json;
    uint64_t total;
};

/* copy - keep what the callback saw (the entry is freed after it) */
static int collect_fn(const struct queue_list_entry *e, void *ctx)
{
    struct collected *c = ctx;
    struct queue_list_entry *d;

    if (c->mailq.max == 0) {
        buf_init(&c->mailq, 0);
        buf_init(&c->json, 0);
    }
    ck_assert_uint_lt(c->n, ARRAY_LEN(c->v));
    d = &c->v[c->n++];
    *d = *e;
    d->sender = strdup(e->sender);
    d->rcpts = calloc(e->nrcpts + 1, sizeof(*d->rcpts));
    for (size_t i = 0; i < e->nrcpts; i++) {
        d->rcpts[i].address = strdup(e->rcpts[i].address);
        d->rcpts[i].reason = e->rcpts[i].reason ? strdup(e->rcpts[i].reason)
                                                : NULL;
    }
    queue_list_mailq_entry(e, &c->mailq);
    queue_list_json_entry(e, &c->json);
    c->total += e->size;
    return 0;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        queue_list_entry_free(&c->v[i]);
    buf_free(&c->mailq);
    buf_free(&c->json);
    memset(c, 0, sizeof(*c));
}

/* every JSON line: one object, no raw control byte, valid UTF-8 */
static void check_json_lines(const buf_t *b)
{
    const unsigned char *p = (const unsigned char *)b->data;

    for (size_t i = 0; i < b->len; i++) {
        if (p[i] == '\n')
            continue;
        ck_assert_msg(p[i] >= 0x20 && p[i] != 0x7f, "raw control byte");
    }
    ck_assert(b->len == 0 || p[b->len - 1] == '\n');
}

START_TEST(test_walk_queues_and_reasons)
{
    static const char *const r1[] = { "a@example.com", "!done@example.com",
                                      "b@example.org" };
    static const char *const r2[] = { "c@example.net" };
    static const char *const r3[] = { "d@example.net" };
    char q1[QUEUE_ID_SIZE], q2[QUEUE_ID_SIZE], q3[QUEUE_ID_SIZE];
    struct collected c = { 0 };

    spool_setup();
    make_msg(QUEUE_DEFERRED, "s@example.com", r1, 3, "Subject: x\n\nhi\n", q1);
    make_msg(QUEUE_HOLD, "", r2, 1, "x\n", q2);
    make_msg(QUEUE_INCOMING, "t@example.com", r3, 1, "y\n", q3);
    ck_assert_int_eq(bounce_log_append(q1, (uint64_t)rcpt_offset(
                         QUEUE_DEFERRED, q1, 0), 4, "4.4.1",
                         "connect to example.com: Connection refused"), 0);

    ck_assert_int_eq(queue_list_walk(NULL, collect_fn, &c), 0);
    ck_assert_uint_eq(c.n, 3);
    /* queues in order: incoming, active, deferred, hold */
    ck_assert_str_eq(c.v[0].queue, "incoming");
    ck_assert_str_eq(c.v[0].qid, q3);
    ck_assert_str_eq(c.v[1].queue, "deferred");
    ck_assert_str_eq(c.v[1].qid, q1);
    ck_assert_str_eq(c.v[2].queue, "hold");
    /* pending recipients only, with the reason from defer/ */
    ck_assert_uint_eq(c.v[1].nrcpts, 2);
    ck_assert_str_eq(c.v[1].rcpts[0].address, "a@example.com");
    ck_assert_str_eq(c.v[1].rcpts[0].reason,
                     "connect to example.com: Connection refused");
    ck_assert_str_eq(c.v[1].rcpts[1].address, "b@example.org");
    ck_assert_ptr_null(c.v[1].rcpts[1].reason);
    ck_assert_uint_eq(c.v[1].size, strlen("Subject: x\n\nhi\n"));
    ck_assert_str_eq(c.v[1].sender, "s@example.com");
    ck_assert_str_eq(c.v[2].sender, "");
    ck_assert(c.v[1].arrival_usec > 0);

    ck_assert_ptr_nonnull(strstr(buf_str(&c.mailq),
        "(connect to example.com: Connection refused)\n"
        "                                         a@example.com\n"));
    ck_assert_ptr_nonnull(strstr(buf_str(&c.mailq), "MAILER-DAEMON\n"));
    {   /* the hold mark and the active-less deferred line */
        buf_t id = BUF_INIT;
        buf_printf(&id, "%s!", q2);
        ck_assert_ptr_nonnull(strstr(buf_str(&c.mailq), buf_str(&id)));
        buf_free(&id);
    }
    ck_assert_ptr_nonnull(strstr(buf_str(&c.json),
        "\"queue_name\": \"deferred\""));
    ck_assert_ptr_nonnull(strstr(buf_str(&c.json),
        "\"recipients\": [{\"address\": \"a@example.com\", \"delay_reason\": "
        "\"connect to example.com: Connection refused\"}, "
        "{\"address\": \"b@example.org\"}]"));
    ck_assert_ptr_nonnull(strstr(buf_str(&c.json), "\"forced_expire\": false"));
    check_json_lines(&c.json);

    /* one queue only; an unknown queue name is refused */
    collected_free(&c);
    ck_assert_int_eq(queue_list_walk("hold", collect_fn, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.v[0].qid, q2);
    collected_free(&c);
    errno = 0;
    ck_assert_int_eq(queue_list_walk("corrupt", collect_fn, &c), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(queue_list_walk("../etc", collect_fn, &c), -1);
    collected_free(&c);
    spool_teardown();
}
END_TEST

START_TEST(test_trailer)
{
    static const struct { uint64_t size; size_t n; const char *want; } t[] = {
        { 0, 0, "Mail queue is empty\n" },
        { 1023, 1, "-- 0 Kbytes in 1 Request.\n" },
        { 4096, 2, "-- 4 Kbytes in 2 Requests.\n" },
    };
    buf_t b = BUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        buf_reset(&b);
        queue_list_mailq_trailer(t[i].size, t[i].n, &b);
        ck_assert_str_eq(buf_str(&b), t[i].want);
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_json_string_hostile)
{
    static const struct { const char *in; size_t n; const char *want; } t[] = {
        { "plain", 5, "\"plain\"" },
        { "q\"b\\", 4, "\"q\\\"b\\\\\"" },
        { "a\nb\rc\td", 7, "\"a\\u000ab\\u000dc\\u0009d\"" },
        { "\x7f", 1, "\"\\u007f\"" },
        { "caf\xc3\xa9", 5, "\"caf\xc3\xa9\"" },
        { "\xff\xfe", 2, "\"\\ufffd\\ufffd\"" },
        { "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },           /* overlong */
        { "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate */
        { "\xe2\x82", 2, "\"\\ufffd\\ufffd\"" },           /* cut off */
        { "\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
        { "\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"" },
    };
    buf_t b = BUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        buf_reset(&b);
        queue_list_json_string(t[i].in, t[i].n, &b);
        ck_assert_msg(strcmp(buf_str(&b), t[i].want) == 0, "case %zu: %s", i,
                      buf_str(&b));
    }
    buf_free(&b);
}
END_TEST

START_TEST(test_hostile_strings_in_file)
{
    static const char *const r[] = { "evil\n\x1b[31m@example.com",
                                     "x\xff@example.com" };
    char q[QUEUE_ID_SIZE];
    struct collected c = { 0 };

    spool_setup();
    make_msg(QUEUE_DEFERRED, "s\r\nX-Fake: 1", r, 2, "x\n", q);
    ck_assert_int_eq(bounce_log_append(q, (uint64_t)rcpt_offset(
                         QUEUE_DEFERRED, q, 0), 4, "4.0.0",
                         "line1\nline2\x01"), 0);
    ck_assert_int_eq(queue_list_walk(NULL, collect_fn, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    check_json_lines(&c.json);
    ck_assert_ptr_nonnull(strstr(buf_str(&c.json), "\\ufffd@example.com"));
    /* mailq: no control byte other than the line ends it writes */
    for (size_t i = 0; i < c.mailq.len; i++) {
        unsigned char ch = (unsigned char)c.mailq.data[i];
        ck_assert_msg(ch == '\n' || (ch >= 0x20 && ch != 0x7f),
                      "control byte 0x%02x in mailq output", ch);
    }
    /* header line, the sender on it, two recipients, the reason, blank */
    {
        size_t lines = 0;
        for (size_t i = 0; i < c.mailq.len; i++)
            lines += c.mailq.data[i] == '\n';
        ck_assert_uint_eq(lines, 5);
    }
    collected_free(&c);
    spool_teardown();
}
END_TEST

/* --- hostile spool entries ------------------------------------------------------ */

enum hostile_kind { H_GARBAGE, H_TRUNCATED, H_EMPTY, H_SYMLINK, H_FIFO,
                    H_DIR, H_BADNAME, H_HUGE_LEN };

static const struct {
    const char *name;
    enum hostile_kind kind;
    bool listed_corrupt;    /* listed (as corrupt) rather than skipped */
} hostile[] = {
    { "garbage", H_GARBAGE, true },
    { "truncated", H_TRUNCATED, true },
    { "empty", H_EMPTY, true },
    { "huge record length", H_HUGE_LEN, true },
    { "symlink", H_SYMLINK, false },
    { "fifo", H_FIFO, false },
    { "directory", H_DIR, false },
    { "not a queue ID", H_BADNAME, false },
};

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

START_TEST(test_hostile_entries)
{
    static const char *const r[] = { "ok@example.com" };
    const char *name = hostile[_i].name;
    char good[QUEUE_ID_SIZE], bad[QUEUE_ID_SIZE];
    struct collected c = { 0 };
    buf_t path = BUF_INIT, src = BUF_INIT;

    spool_setup();
    make_msg(QUEUE_DEFERRED, "s@example.com", r, 1, "x\n", good);
    queue_id_make(1700000000123456ULL, 424242, bad);
    queue_path(QUEUE_DEFERRED, bad, &path);
    if (hostile[_i].kind == H_BADNAME) {
        buf_reset(&path);
        buf_puts(&path, "deferred/t.123.4");
    }
    switch (hostile[_i].kind) {
    case H_GARBAGE:
        write_file(buf_str(&path), "\xff\xff\xff\xffjunk", 8);
        break;
    case H_TRUNCATED: {
        /* the first 30 bytes of the good file */
        char b[30];
        int fd;
        queue_path(QUEUE_DEFERRED, good, &src);
        fd = open(buf_str(&src), O_RDONLY);
        ck_assert_int_eq(read(fd, b, sizeof(b)), (ssize_t)sizeof(b));
        close(fd);
        write_file(buf_str(&path), b, sizeof(b));
        break;
    }
    case H_EMPTY:
        write_file(buf_str(&path), "", 0);
        break;
    case H_HUGE_LEN:
        write_file(buf_str(&path), "V\x7f\xff\xff\xff" "1", 6);
        break;
    case H_SYMLINK:
        /* to the good message: listing it twice would mean following */
        queue_path(QUEUE_DEFERRED, good, &src);
        buf_reset(&src);
        buf_printf(&src, "../%c/%s", good[9], good);
        ck_assert_int_eq(symlink(buf_str(&src), buf_str(&path)), 0);
        break;
    case H_FIFO:
        ck_assert_int_eq(mkfifo(buf_str(&path), 0600), 0);
        break;
    case H_DIR:
        ck_assert_int_eq(mkdir(buf_str(&path), 0700), 0);
        break;
    case H_BADNAME:
        write_file(buf_str(&path), "x", 1);
        break;
    }
    ck_assert_int_eq(queue_list_walk(NULL, collect_fn, &c), 0);
    if (hostile[_i].listed_corrupt) {
        ck_assert_msg(c.n == 2, "%s: %zu listed", name, c.n);
        ck_assert(c.v[0].corrupt != c.v[1].corrupt);
        ck_assert_ptr_nonnull(strstr(buf_str(&c.mailq), "(corrupt queue file)"));
        ck_assert_ptr_nonnull(strstr(buf_str(&c.json), "\"corrupt\": true"));
    } else {
        ck_assert_msg(c.n == 1, "%s: %zu listed", name, c.n);
        ck_assert_str_eq(c.v[0].qid, good);
    }
    check_json_lines(&c.json);
    collected_free(&c);
    buf_free(&path);
    buf_free(&src);
    spool_teardown();
}
END_TEST

/* a hash directory replaced by a symlink to another queue is not entered */
START_TEST(test_symlinked_hash_dir)
{
    static const char *const r[] = { "x@example.com" };
    char q[QUEUE_ID_SIZE];
    struct collected c = { 0 };

    spool_setup();
    make_msg(QUEUE_HOLD, "s@example.com", r, 1, "x\n", q);
    ck_assert_int_eq(rmdir("deferred/Z"), 0);
    ck_assert_int_eq(symlink("../hold", "deferred/Z"), 0);
    ck_assert_int_eq(queue_list_walk(NULL, collect_fn, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.v[0].queue, "hold");
    collected_free(&c);
    spool_teardown();
}
END_TEST

START_TEST(test_has_domain)
{
    struct queue_list_rcpt r[] = { { "a@Example.COM", NULL },
                                   { "b@x@evil.org", NULL },
                                   { "nodomain", NULL } };
    struct queue_list_entry e = { .rcpts = r, .nrcpts = 3 };

    ck_assert(queue_list_has_domain(&e, "example.com"));
    ck_assert(queue_list_has_domain(&e, "EVIL.org"));
    ck_assert(!queue_list_has_domain(&e, "x@evil.org"));
    ck_assert(!queue_list_has_domain(&e, "nodomain"));
    ck_assert(!queue_list_has_domain(&e, ""));
}
END_TEST

/* --- user lists (authorized_mailq_users) ---------------------------------------- */

START_TEST(test_user_acl)
{
    static const struct {
        const char *list;
        uid_t uid;
        bool allowed;
        bool warns;
    } t[] = {
        { "static:anyone", 1234, true, false },
        { "", 1234, false, false },
        { "1234", 1234, true, false },
        { "1234", 1235, false, false },
        { "!1234 static:anyone", 1234, false, false },
        { "!1234 static:anyone", 1235, true, false },
        { "1235, 1234", 1234, true, false },
        { "root", 1234, false, false },
        { "root", 0, true, false },             /* root always may */
        { "", 0, true, false },
        { "no-such-user-xyz", 1234, false, true },
        { "lmdb:/etc/x", 1234, false, true },    /* unsupported: nobody */
        { "lmdb:/etc/x static:anyone", 1234, true, true },
        { "!static:anyone", 1234, false, false },
    };
    buf_t err = BUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        struct user_acl acl;

        buf_reset(&err);
        ck_assert_int_eq(user_acl_compile(t[i].list, NULL, &acl, &err), 0);
        ck_assert_msg(user_acl_allows(&acl, t[i].uid) == t[i].allowed,
                      "case %zu (%s, uid %u)", i, t[i].list,
                      (unsigned)t[i].uid);
        ck_assert_msg((err.len > 0) == t[i].warns, "case %zu: warnings %s",
                      i, buf_str(&err));
        user_acl_free(&acl);
    }
    {   /* $mail_owner always may: the uid of the named account */
        struct user_acl acl;
        ck_assert_int_eq(user_acl_compile("", "root", &acl, NULL), 0);
        ck_assert_int_eq(acl.owner_uid, 0);
        user_acl_free(&acl);
    }
    {
        struct user_acl acl;
        ck_assert_int_eq(user_acl_compile("inline:{a", NULL, &acl, NULL), -1);
        user_acl_free(&acl);
    }
    buf_free(&err);
}
END_TEST

/* --- qshape-like counts ---------------------------------------------------------- */

START_TEST(test_shape)
{
    const uint64_t now = 1700000000ULL * 1000000;
    struct queue_list_rcpt r1[] = { { "a@Far.example", NULL },
                                    { "b@far.example", NULL },
                                    { "c@near.example", NULL } };
    struct queue_list_rcpt r2[] = { { "d@near.example", NULL },
                                    { "e@near.example", NULL },
                                    { "nodomain", NULL } };
    struct queue_list_entry e1 = { .rcpts = r1, .nrcpts = 3,
                                   .arrival_usec = now - 60ULL * 1000000 };
    struct queue_list_entry e2 = { .rcpts = r2, .nrcpts = 3,
                                   .arrival_usec = now - 7ULL * 3600 * 1000000 };
    struct queue_list_entry e3 = { .rcpts = r1, .nrcpts = 1,
                                   .arrival_usec = now + 5000000 }; /* future */
    struct queue_shape sh = { 0 };
    buf_t out;

    buf_init(&out, 0);
    queue_shape_add(&sh, &e1, now);
    queue_shape_add(&sh, &e2, now);
    queue_shape_add(&sh, &e3, now);
    queue_shape_format(&sh, &out);
    ck_assert_str_eq(buf_str(&out),
        "                             T     5    10    20    40    80   160   320   640  1280 1280+\n"
        "                   TOTAL     7     4     0     0     0     0     0     0     3     0     0\n"
        "             far.example     3     3     0     0     0     0     0     0     0     0     0\n"
        "            near.example     3     1     0     0     0     0     0     0     2     0     0\n"
        "                             1     0     0     0     0     0     0     0     1     0     0\n");
    buf_free(&out);
    queue_shape_free(&sh);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_list");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_test(tc, test_walk_queues_and_reasons);
    tcase_add_test(tc, test_trailer);
    tcase_add_test(tc, test_json_string_hostile);
    tcase_add_test(tc, test_hostile_strings_in_file);
    tcase_add_loop_test(tc, test_hostile_entries, 0, ARRAY_LEN(hostile));
    tcase_add_test(tc, test_symlinked_hash_dir);
    tcase_add_test(tc, test_has_domain);
    tcase_add_test(tc, test_user_acl);
    tcase_add_test(tc, test_shape);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

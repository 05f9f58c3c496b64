/*
 * test_maildrop - the maildrop format: the writer's output read back
 * (fed whole and byte by byte), and a table of hostile inputs the
 * strict reader must refuse, each with the reason it gives.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check_main.h"
#include "mail/maildrop.h"
#include "mail/queue_record.h"
#include "util/buf.h"
#include "util/util.h"

/* rec - append one record to b */
static void rec(buf_t *b, char t, const void *p, size_t n)
{
    unsigned char h[5];

    h[0] = (unsigned char)t;
    queue_rec_put_len(h + 1, (uint32_t)n);
    ck_assert_int_eq(buf_append(b, h, 5), 0);
    if (n > 0)
        ck_assert_int_eq(buf_append(b, p, n), 0);
}

static void rec_s(buf_t *b, char t, const char *s)
{
    rec(b, t, s, strlen(s));
}

/* collects what the reader hands over */
struct got {
    buf_t log;          /* "T:data\n" per text record */
    buf_t content;
};

static int collect(void *ctx, const struct maildrop_rec *r, const char **err)
{
    struct got *g = ctx;

    (void)err;
    if (r->type == MDREC_CONTENT)
        return buf_append(&g->content, r->data, r->len);
    return buf_printf(&g->log, "%c:%s\n", r->type, r->data);
}

/* read_all - feed in pieces of step bytes; 0 or -1 with *why */
static int read_all(const buf_t *in, size_t step, uint64_t max, struct got *g,
                    const char **why)
{
    maildrop_reader_t r;
    int rc = 0;

    maildrop_reader_init(&r, max);
    for (size_t off = 0; off < in->len && rc == 0; off += step) {
        size_t k = in->len - off < step ? in->len - off : step;
        rc = maildrop_reader_feed(&r, in->data + off, k, g ? collect : NULL, g,
                                  why);
    }
    if (rc == 0)
        rc = maildrop_reader_end(&r, why);
    maildrop_reader_free(&r);
    return rc;
}

/* a valid file: V S F A A R R C E */
static void valid_file(buf_t *b)
{
    rec_s(b, 'V', "1");
    rec_s(b, 'S', "user@example.org");
    rec_s(b, 'F', "A User");
    rec_s(b, 'A', "dsn_ret=HDRS");
    rec_s(b, 'A', "dsn_notify=SUCCESS,FAILURE");
    rec_s(b, 'R', "a@example.org");
    rec_s(b, 'R', "b");
    rec_s(b, 'C', "Subject: x\n\nbody\n");
    rec_s(b, 'E', "");
}

START_TEST(test_valid)
{
    buf_t in = BUF_INIT;
    const char *why = NULL;

    valid_file(&in);
    for (size_t step = 1; step <= in.len; step = step * 2 + 1) {
        struct got g = { BUF_INIT, BUF_INIT };

        ck_assert_msg(read_all(&in, step, 1000, &g, &why) == 0, "step %zu: %s",
                      step, why);
        ck_assert_str_eq(buf_str(&g.log),
                         "V:1\nS:user@example.org\nF:A User\nA:dsn_ret=HDRS\n"
                         "A:dsn_notify=SUCCESS,FAILURE\nR:a@example.org\nR:b\nE:\n");
        ck_assert_str_eq(buf_str(&g.content), "Subject: x\n\nbody\n");
        buf_free(&g.log);
        buf_free(&g.content);
    }
    buf_free(&in);
}
END_TEST

START_TEST(test_minimal_and_null_sender)
{
    buf_t in = BUF_INIT;
    const char *why = NULL;

    rec_s(&in, 'V', "1");
    rec_s(&in, 'S', "");
    rec_s(&in, 'A', "extract=yes");
    rec_s(&in, 'E', "");
    ck_assert_msg(read_all(&in, 7, 0, NULL, &why) == 0, "%s", why);
    buf_free(&in);
}
END_TEST

/* hostile inputs: a builder and the reason the reader must give */
struct bad {
    const char *name;
    void (*build)(buf_t *b);
    const char *why;
};

static void b_empty(buf_t *b) { (void)b; }
static void b_truncated_hdr(buf_t *b) { rec_s(b, 'V', "1"); buf_append(b, "S\0\0", 3); }
static void b_truncated_data(buf_t *b)
{
    valid_file(b);
    buf_truncate(b, b->len - 10);
}
static void b_no_end(buf_t *b) { valid_file(b); buf_truncate(b, b->len - 5); }
static void b_after_end(buf_t *b) { valid_file(b); buf_append(b, "x", 1); }
static void b_no_version(buf_t *b) { rec_s(b, 'S', "a"); }
static void b_bad_version(buf_t *b) { rec_s(b, 'V', "2"); }
static void b_two_versions(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'V', "1"); }
static void b_unknown_type(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'Z', ""); }
static void b_queue_type(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'T', "1.2"); }
static void b_nul_type(buf_t *b) { rec_s(b, 'V', "1"); rec(b, '\0', "", 0); }
static void b_two_senders(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'S', ""); }
static void b_rcpt_first(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'R', "a"); }
static void b_two_fullnames(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'F', "a"); rec_s(b, 'F', "b");
}
static void b_fullname_late(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "extract=yes");
    rec_s(b, 'F', "b");
}
static void b_attr_after_rcpt(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a"); rec_s(b, 'A', "extract=yes");
}
static void b_rcpt_after_content(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a"); rec_s(b, 'C', "x");
    rec_s(b, 'R', "b");
}
static void b_no_rcpt(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'E', ""); }
static void b_empty_rcpt(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', ""); }
static void b_ctl_sender(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', "a\nb"); }
static void b_nul_rcpt(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec(b, 'R', "a\0b", 3); }
static void b_del_fullname(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'F', "a\x7f"); }
static void b_long_sender(buf_t *b)
{
    char s[MAILDROP_TEXT_MAX + 2];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    rec_s(b, 'V', "1");
    rec_s(b, 'S', s);
}
static void b_huge_len(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', "");
    buf_append(b, "R\xff\xff\xff\xff", 5);
}
static void b_long_chunk(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a");
    buf_append(b, "C\0\x01\0\x01", 5);
}
static void b_empty_chunk(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a"); rec_s(b, 'C', "");
}
static void b_short_then_chunk(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a"); rec_s(b, 'C', "x");
    rec_s(b, 'C', "y");
}
static void b_too_large(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a");
    rec_s(b, 'C', "012345678901234567890123456789");  /* limit 24 below */
    rec_s(b, 'E', "");
}
static void b_too_large_lf(buf_t *b)
{
    /* 13 bytes, but 26 as RFC 1870 counts (each LF is CR LF) */
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a");
    rec_s(b, 'C', "\n\n\n\n\n\n\n\n\n\n\n\n\n");
    rec_s(b, 'E', "");
}
static void b_end_data(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'R', "a"); rec_s(b, 'E', "x");
}
static void b_unknown_attr(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "uid=0"); }
static void b_attr_no_eq(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "extract"); }
static void b_repeat_attr(buf_t *b)
{
    rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "dsn_ret=FULL");
    rec_s(b, 'A', "dsn_ret=HDRS");
}
static void b_bad_ret(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "dsn_ret=full"); }
static void b_bad_notify(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "dsn_notify=NEVER,DELAY"); }
static void b_bad_envid(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "dsn_envid=\xc3\xa9"); }
static void b_bad_extract(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "extract=no"); }
static void b_bad_body(buf_t *b) { rec_s(b, 'V', "1"); rec_s(b, 'S', ""); rec_s(b, 'A', "body=BINARYMIME"); }
static void b_many_rcpts(buf_t *b)
{
    rec_s(b, 'V', "1");
    rec_s(b, 'S', "");
    for (int i = 0; i <= MAILDROP_RCPT_MAX; i++)
        rec_s(b, 'R', "a");
}

static const struct bad bads[] = {
    { "empty", b_empty, "empty file" },
    { "truncated header", b_truncated_hdr, "truncated file" },
    { "truncated data", b_truncated_data, "truncated file" },
    { "no end", b_no_end, "truncated file" },
    { "after end", b_after_end, "data after the end record" },
    { "no version", b_no_version, "no version record" },
    { "bad version", b_bad_version, "unsupported version" },
    { "two versions", b_two_versions, "version record out of place" },
    { "unknown type", b_unknown_type, "unknown record type" },
    { "queue file type", b_queue_type, "unknown record type" },
    { "nul type", b_nul_type, "unknown record type" },
    { "two senders", b_two_senders, "sender record out of place" },
    { "rcpt first", b_rcpt_first, "recipient record out of place" },
    { "two full names", b_two_fullnames, "full name record out of place" },
    { "late full name", b_fullname_late, "full name record out of place" },
    { "attr after rcpt", b_attr_after_rcpt, "attribute record out of place" },
    { "rcpt after content", b_rcpt_after_content, "recipient record out of place" },
    { "no rcpt", b_no_rcpt, "no recipients" },
    { "empty rcpt", b_empty_rcpt, "empty recipient" },
    { "control in sender", b_ctl_sender, "bad character in text record" },
    { "nul in rcpt", b_nul_rcpt, "bad character in recipient" },
    { "del in full name", b_del_fullname, "bad character in text record" },
    { "long sender", b_long_sender, "record too long" },
    { "huge length", b_huge_len, "record too long" },
    { "long chunk", b_long_chunk, "content record too long" },
    { "empty chunk", b_empty_chunk, "empty content record" },
    { "chunk after short", b_short_then_chunk, "content record after a short one" },
    { "too large", b_too_large, "message too large" },
    { "too large by LFs", b_too_large_lf, "message too large" },
    { "end with data", b_end_data, "record too long" },
    { "unknown attr", b_unknown_attr, "unknown attribute" },
    { "attr without =", b_attr_no_eq, "attribute without '='" },
    { "repeated attr", b_repeat_attr, "repeated attribute" },
    { "bad dsn_ret", b_bad_ret, "bad dsn_ret value" },
    { "bad dsn_notify", b_bad_notify, "bad dsn_notify value" },
    { "bad dsn_envid", b_bad_envid, "bad dsn_envid character" },
    { "bad extract", b_bad_extract, "bad extract value" },
    { "bad body", b_bad_body, "bad body value" },
    { "too many rcpts", b_many_rcpts, "too many recipients" },
};

START_TEST(test_hostile)
{
    const struct bad *t = &bads[_i];
    buf_t in = BUF_INIT;

    t->build(&in);
    for (size_t step = 1; step <= in.len + 1; step = step * 3 + 1) {
        const char *why = NULL;

        ck_assert_msg(read_all(&in, step, 24, NULL, &why) < 0,
                      "%s: accepted (step %zu)", t->name, step);
        ck_assert_msg(why != NULL && strcmp(why, t->why) == 0,
                      "%s: reason %s, want %s", t->name, why ? why : "(none)",
                      t->why);
    }
    buf_free(&in);
}
END_TEST

START_TEST(test_failure_sticks)
{
    maildrop_reader_t r;
    buf_t in = BUF_INIT;
    const char *why = NULL;

    rec_s(&in, 'V', "2");
    maildrop_reader_init(&r, 0);
    ck_assert_int_lt(maildrop_reader_feed(&r, in.data, in.len, NULL, NULL, &why), 0);
    buf_reset(&in);
    valid_file(&in);
    why = NULL;
    ck_assert_int_lt(maildrop_reader_feed(&r, in.data, in.len, NULL, NULL, &why), 0);
    ck_assert_str_eq(why, "unsupported version");
    ck_assert_int_lt(maildrop_reader_end(&r, &why), 0);
    maildrop_reader_free(&r);
    buf_free(&in);
}
END_TEST

/* the writer's output, for sizes around the chunk size, reads back the
   same and stays under maildrop_file_max */
START_TEST(test_writer_roundtrip)
{
    static const size_t sizes[] = { 0, 1, MAILDROP_CHUNK_MAX - 1,
                                    MAILDROP_CHUNK_MAX, MAILDROP_CHUNK_MAX + 1,
                                    3 * MAILDROP_CHUNK_MAX + 17 };

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int fd = memfd_create("md", 0);
        maildrop_writer_t w;
        const char *why = NULL;
        size_t n = sizes[k];
        char *content = xmalloc(n + 1);
        struct got g = { BUF_INIT, BUF_INIT };
        buf_t in = BUF_INIT;
        off_t len;

        for (size_t i = 0; i < n; i++)
            content[i] = (char)(i % 251);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(maildrop_writer_init(&w, fd, 5 * MAILDROP_CHUNK_MAX, &why), 0);
        ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_SENDER, "me", &why), 0);
        ck_assert_int_eq(maildrop_writer_attr(&w, MAILDROP_ATTR_EXTRACT, "yes", &why), 0);
        ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_RCPT, "you", &why), 0);
        /* in odd pieces */
        for (size_t off = 0; off < n; off += 7777)
            ck_assert_int_eq(maildrop_writer_content(&w, content + off,
                                                     n - off < 7777 ? n - off : 7777,
                                                     &why), 0);
        ck_assert_msg(maildrop_writer_finish(&w, &why) == 0, "%s", why);
        maildrop_writer_free(&w);
        len = lseek(fd, 0, SEEK_END);
        ck_assert_uint_le((uint64_t)len, maildrop_file_max(n > 0 ? n : 1));
        buf_init(&in, 0);
        char *map = xmalloc((size_t)len + 1);
        ck_assert_int_eq(pread(fd, map, (size_t)len, 0), len);
        ck_assert_int_eq(buf_append(&in, map, (size_t)len), 0);
        free(map);
        size_t counted = n;                 /* RFC 1870: LF counts twice */
        for (size_t i = 0; i < n; i++)
            counted += content[i] == '\n';
        ck_assert_msg(read_all(&in, 4096, counted > 0 ? counted : 1, &g, &why) == 0,
                      "%s", why);
        ck_assert_str_eq(buf_str(&g.log), "V:1\nS:me\nA:extract=yes\nR:you\nE:\n");
        ck_assert_uint_eq(g.content.len, n);
        ck_assert(n == 0 || memcmp(g.content.data, content, n) == 0);
        /* one byte less of a limit refuses it */
        if (counted > 1) {
            ck_assert_int_lt(read_all(&in, 4096, counted - 1, NULL, &why), 0);
            ck_assert_str_eq(why, "message too large");
        }
        buf_free(&in);
        buf_free(&g.log);
        buf_free(&g.content);
        free(content);
        close(fd);
    }
}
END_TEST

START_TEST(test_writer_refuses)
{
    int fd = memfd_create("md", 0);
    maildrop_writer_t w;
    const char *why = NULL;
    char big[100];

    ck_assert_int_ge(fd, 0);
    /* a recipient with a line break */
    ck_assert_int_eq(maildrop_writer_init(&w, fd, 10, &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_SENDER, "me", &why), 0);
    ck_assert_int_lt(maildrop_writer_rec(&w, MDREC_RCPT, "a\nR", &why), 0);
    ck_assert_str_eq(why, "bad character in recipient");
    ck_assert_int_lt(maildrop_writer_finish(&w, &why), 0);
    maildrop_writer_free(&w);
    /* over the content limit */
    ck_assert_int_eq(maildrop_writer_init(&w, fd, 10, &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_SENDER, "me", &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_RCPT, "you", &why), 0);
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(maildrop_writer_content(&w, big, sizeof(big), &why), 0);
    ck_assert_int_lt(maildrop_writer_finish(&w, &why), 0);
    ck_assert_str_eq(why, "message too large");
    maildrop_writer_free(&w);
    /* no recipient without extract */
    ck_assert_int_eq(maildrop_writer_init(&w, fd, 10, &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_SENDER, "me", &why), 0);
    ck_assert_int_lt(maildrop_writer_finish(&w, &why), 0);
    ck_assert_str_eq(why, "no recipients");
    maildrop_writer_free(&w);
    /* a write error */
    ck_assert_int_eq(maildrop_writer_init(&w, -1, 10, &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_SENDER, "me", &why), 0);
    ck_assert_int_eq(maildrop_writer_rec(&w, MDREC_RCPT, "you", &why), 0);
    ck_assert_int_lt(maildrop_writer_finish(&w, &why), 0);
    ck_assert_str_eq(why, "write error");
    ck_assert_int_eq(errno, EBADF);
    maildrop_writer_free(&w);
    close(fd);
}
END_TEST

START_TEST(test_file_max)
{
    ck_assert_uint_eq(maildrop_file_max(0), UINT64_MAX);
    ck_assert_uint_gt(maildrop_file_max(10240000), 10240000);
    ck_assert_uint_lt(maildrop_file_max(10240000), 10240000 + 16 * 1024 * 1024);
}
END_TEST

static int addr_collect(void *ctx, const char *a)
{
    return buf_printf(ctx, "[%s]", a);
}

static const struct { const char *in, *want; long n; } addrs[] = {
    { "a@example.org", "[a@example.org]", 1 },
    { " a@x, b@y ,c", "[a@x][b@y][c]", 3 },
    { "A User <a@x>, \"Doe, J\" <j@y>", "[a@x][j@y]", 2 },
    { "a@x (comment, with comma), b@y", "[a@x][b@y]", 2 },
    { "(nested (comment)) a@x", "[a@x]", 1 },
    { "undisclosed-recipients:;", "", 0 },
    { "friends: a@x, b@y; c@z", "[a@x][b@y][c@z]", 3 },
    { "<@r1,@r2:a@x>", "[a@x]", 1 },
    { "a@x,\n\tb@y", "[a@x][b@y]", 2 },
    { "\"quoted local\"@x", "[\"quoted local\"@x]", 1 },
    { "x <a@x", "[a@x]", 1 },               /* unclosed <: still taken */
    { "a@x (unclosed", "[a@x]", 1 },
    { ",,, ,", "", 0 },
    { "", "", 0 },
};

START_TEST(test_header_addrs)
{
    buf_t got = BUF_INIT;
    long n;

    buf_init(&got, 0);
    (void)buf_printf(&got, "%s", "");
    n = maildrop_header_addrs(addrs[_i].in, strlen(addrs[_i].in), addr_collect,
                              &got);
    ck_assert_msg(n == addrs[_i].n && strcmp(buf_str(&got), addrs[_i].want) == 0,
                  "%s: got %ld %s", addrs[_i].in, n, buf_str(&got));
    buf_free(&got);
}
END_TEST

START_TEST(test_header_is)
{
    ck_assert_uint_eq(maildrop_header_is("To: a", 5, "To"), 3);
    ck_assert_uint_eq(maildrop_header_is("bcc : a", 7, "Bcc"), 5);
    ck_assert_uint_eq(maildrop_header_is("Toy: a", 6, "To"), 0);
    ck_assert_uint_eq(maildrop_header_is("To", 2, "To"), 0);
    ck_assert_uint_eq(maildrop_header_is("Resent-To: a", 12, "To"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("maildrop");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_minimal_and_null_sender);
    tcase_add_loop_test(tc, test_hostile, 0, sizeof(bads) / sizeof(bads[0]));
    tcase_add_test(tc, test_failure_sticks);
    tcase_add_test(tc, test_writer_roundtrip);
    tcase_add_test(tc, test_writer_refuses);
    tcase_add_test(tc, test_file_max);
    tcase_add_loop_test(tc, test_header_addrs, 0, sizeof(addrs) / sizeof(addrs[0]));
    tcase_add_test(tc, test_header_is);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

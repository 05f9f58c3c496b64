/*
 * test_cleanup - unit tests for the one way into the queue
 * (lib/mail/cleanup.c): envelope and content round trip through
 * queue_file_read, the duplicate filter, the header/body boundary with
 * hostile content, Message-ID/Date only when missing and asked for,
 * the size count (the same as smtpdata's), and that every failure and
 * every abort leaves no file. Two tests build a file the way smtpd and
 * local did by hand with queue_writer and check cleanup writes the same
 * bytes. header_checks/body_checks actions (table-driven, whole and
 * byte-by-byte content), HOLD from outside, broken tables and
 * header_size_limit. virtual_alias_maps: every recipient expanded with
 * its original as 'O', DSN fields carried, duplicates collapsed, the
 * flag that skips it, and failures that defer instead of dropping. Each
 * test runs in its own mkdtemp spool.
 */
#include <check.h>

#include "check_main.h"
#define SPOOL_TEST_NAME "cleanup"
#include "check_spool.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/queue_writer.h"
#include "mail/smtpdata.h"
#include "mail/virtual_alias.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FIXED_TIME ((time_t)1700000000)

static time_t fixed_clock(void)
{
    return FIXED_TIME;
}

static void load_conf(void)
{
    static const char conf[] = "myhostname = mx.example\n";
    buf_t err = BUF_INIT;

    ck_assert_msg(config_load_text(conf, strlen(conf), "main.conf", tmpdir,
                                   &err) == 0, "%s", buf_str(&err));
    buf_free(&err);
}

static void spool_setup(void)
{
    spool_enter(load_conf);
    setenv("TZ", "UTC", 1);
    tzset();
    cleanup_set_clock(fixed_clock);
}

static void spool_teardown(void)
{
    cleanup_checks_close();
    cleanup_set_clock(NULL);
    spool_leave();
}

/* names in incoming/ (temp names included) */
static size_t incoming_count(void)
{
    DIR *d = opendir(QUEUE_INCOMING);
    struct dirent *e;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* the whole committed file incoming/qid */
static void file_bytes(const char *qid, buf_t *out)
{
    buf_t path = BUF_INIT;
    char chunk[8192];
    ssize_t n;

    queue_path(QUEUE_INCOMING, qid, &path);
    int fd = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    buf_reset(out);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        ck_assert_int_eq(buf_append(out, chunk, (size_t)n), 0);
    ck_assert_int_eq(n, 0);
    close(fd);
    buf_free(&path);
}

/* read the committed file back: envelope into m, content into content */
static void read_back(const char *qid, queue_msg_t *m, buf_t *content)
{
    buf_t path = BUF_INIT;
    const char *err = NULL;

    queue_path(QUEUE_INCOMING, qid, &path);
    int fd = open(buf_str(&path), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(queue_file_read(fd, qid, m, &err) == 0, "%s", err);
    if (content) {
        buf_reset(content);
        char *p = xmalloc(m->content_len + 1);
        ck_assert_int_eq(pread(fd, p, m->content_len, m->content_offset),
                         (ssize_t)m->content_len);
        ck_assert_int_eq(buf_append(content, p, m->content_len), 0);
        free(p);
    }
    close(fd);
    buf_free(&path);
}

/* a cleanup with a plain envelope (sender, one attribute, rcpt) */
static cleanup_t *simple_open(unsigned flags)
{
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, flags);

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    ck_assert_int_eq(cleanup_attr(c, "protocol", "ESMTP"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "r@example.org"), 0);
    return c;
}

START_TEST(test_envelope_roundtrip)
{
    static const char body[] = "Subject: hi\n\nline 1\nline 2\n";
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    queue_msg_t m;
    buf_t content = BUF_INIT;

    ck_assert_ptr_nonnull(c);
    ck_assert(queue_id_valid(cleanup_qid(c)));
    ck_assert_int_eq(cleanup_sender(c, ""), 0);
    ck_assert_int_eq(cleanup_attr(c, "client_address", "192.0.2.1"), 0);
    ck_assert_int_eq(cleanup_attr(c, "alias_expanded", "yes"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, "orig@example.org", "a@example.org"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "b@example.org"), 0);
    ck_assert_uint_eq(cleanup_nrcpts(c), 2);
    ck_assert_int_eq(cleanup_content(c, body, strlen(body)), 0);
    ck_assert(cleanup_ok(c));
    ck_assert_int_eq(cleanup_commit(c), 0);
    ck_assert(!cleanup_ok(c));
    ck_assert_uint_eq(incoming_count(), 1);

    read_back(cleanup_qid(c), &m, &content);
    ck_assert_str_eq(m.qid, cleanup_qid(c));
    ck_assert_str_eq(m.sender, "");
    ck_assert_uint_eq(m.nattrs, 2);
    ck_assert_str_eq(queue_msg_attr(&m, "client_address"), "192.0.2.1");
    ck_assert_str_eq(queue_msg_attr(&m, "alias_expanded"), "yes");
    ck_assert_uint_eq(m.nrcpts, 2);
    ck_assert_str_eq(m.rcpts[0].address, "a@example.org");
    ck_assert_str_eq(m.rcpts[0].orcpt, "orig@example.org");
    ck_assert_str_eq(m.rcpts[1].address, "b@example.org");
    ck_assert_ptr_null(m.rcpts[1].orcpt);
    ck_assert_uint_eq(m.content_len, strlen(body));
    ck_assert_str_eq(buf_str(&content), body);
    /* committed: later calls fail, and touch nothing */
    ck_assert_int_eq(cleanup_content(c, "x", 1), -1);
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_uint_eq(incoming_count(), 1);
    queue_msg_free(&m);
    buf_free(&content);
    cleanup_free(c);
}
END_TEST

START_TEST(test_duplicates)
{
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    queue_msg_t m;

    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@example.org"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "A@Example.ORG"), 0);   /* dup */
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "b@example.org"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@example.org"), 0);   /* dup */
    ck_assert_int_eq(cleanup_rcpt(c, "o@x", "a@example.org"), 0);  /* other orcpt */
    ck_assert_int_eq(cleanup_rcpt(c, "O@X", "a@EXAMPLE.org"), 0);  /* dup */
    ck_assert_uint_eq(cleanup_nrcpts(c), 3);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, NULL);
    ck_assert_uint_eq(m.nrcpts, 3);
    ck_assert_str_eq(m.rcpts[0].address, "a@example.org");
    ck_assert_str_eq(m.rcpts[1].address, "b@example.org");
    ck_assert_str_eq(m.rcpts[2].orcpt, "o@x");
    queue_msg_free(&m);
    cleanup_free(c);
}
END_TEST

/* $duplicate_filter_limit: how many are remembered; 0 = no filter */
START_TEST(test_duplicate_limit)
{
    long saved = var_duplicate_filter_limit;

    var_duplicate_filter_limit = 1;
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_int_eq(cleanup_sender(c, ""), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "b@x"), 0);   /* not remembered */
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "b@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), 0);   /* dup */
    ck_assert_uint_eq(cleanup_nrcpts(c), 3);
    cleanup_free(c);

    var_duplicate_filter_limit = 0;
    c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_int_eq(cleanup_sender(c, ""), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), 0);
    ck_assert_uint_eq(cleanup_nrcpts(c), 2);
    cleanup_free(c);
    var_duplicate_filter_limit = saved;
    ck_assert_uint_eq(incoming_count(), 0);
}
END_TEST

/* file a with its queue ID and arrival time made b's: what is left to
   differ is what the producer wrote */
static void normalize(buf_t *a, const char *qid_a, const buf_t *b,
                      const char *qid_b)
{
    buf_t out = BUF_INIT;
    size_t la = strlen(qid_a);
    const size_t toff = 6 + QUEUE_REC_HDR_LEN;    /* V "1", then T's data */

    ck_assert_uint_ge(a->len, toff + 10);
    ck_assert_uint_ge(b->len, toff + 10);
    uint32_t ta = queue_rec_get_len((unsigned char *)a->data + 7);
    uint32_t tb = queue_rec_get_len((unsigned char *)b->data + 7);
    ck_assert_uint_eq(ta, tb);
    memcpy(a->data + toff, b->data + toff, ta);
    for (size_t i = 0; i < a->len;) {
        if (i + la <= a->len && memcmp(a->data + i, qid_a, la) == 0) {
            buf_puts(&out, qid_b);
            i += la;
        } else {
            buf_putc(&out, a->data[i++]);
        }
    }
    buf_reset(a);
    buf_append(a, out.data, out.len);
    buf_free(&out);
}

/* the old smtpd_data.c data_envelope() + data_received(), by hand */
static void smtpd_by_hand(const char *helo, const char *addr,
                          const char *const *rcpts, size_t n,
                          const char *content, char *qid)
{
    queue_writer_t w;
    char date[64];
    time_t now = FIXED_TIME;
    struct tm tm;
    buf_t h;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@example.org", 13), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "client_name", "unknown"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "client_address", addr), 0);
    if (helo)
        ck_assert_int_eq(queue_writer_attr(&w, "helo_name", helo), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "protocol", "ESMTP"), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, rcpts[i],
                                             strlen(rcpts[i])), 0);
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
    buf_init(&h, 4096);
    (void)buf_printf(&h, "Received: from %s (unknown [%s%s])\n"
                     "\tby %s (Tern) with %s id %s",
                     helo ? helo : "unknown", strchr(addr, ':') ? "IPv6:" : "",
                     addr, var_myhostname, "ESMTP", w.qid);
    if (n == 1) {
        char *shown = xstrdup(rcpts[0]);
        (void)log_scrub(shown);
        (void)buf_printf(&h, "\n\tfor <%s>", shown);
        free(shown);
    }
    ck_assert_int_eq(buf_printf(&h, "; %s\n", date), 0);
    ck_assert_int_eq(queue_writer_content(&w, h.data, h.len), 0);
    buf_free(&h);
    ck_assert_int_eq(queue_writer_content(&w, content, strlen(content)), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);
    str_copy(qid, w.qid, QUEUE_ID_SIZE);
}

/* the same through cleanup, as smtpd_data.c does it now */
static void smtpd_by_cleanup(const char *helo, const char *addr,
                             const char *const *rcpts, size_t n,
                             const char *content, char *qid)
{
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_RECEIVED);

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    ck_assert_int_eq(cleanup_attr(c, "client_name", "unknown"), 0);
    ck_assert_int_eq(cleanup_attr(c, "client_address", addr), 0);
    if (helo)
        ck_assert_int_eq(cleanup_attr(c, "helo_name", helo), 0);
    ck_assert_int_eq(cleanup_attr(c, "protocol", "ESMTP"), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(cleanup_rcpt(c, NULL, rcpts[i]), 0);
    ck_assert_int_eq(cleanup_content_begin(c), 0);
    /* smtpd's chunks end anywhere */
    for (size_t i = 0, len = strlen(content); i < len; i += 3)
        ck_assert_int_eq(cleanup_content(c, content + i,
                                         len - i < 3 ? len - i : 3), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    str_copy(qid, cleanup_qid(c), QUEUE_ID_SIZE);
    cleanup_free(c);
}

static const struct smtpd_case {
    const char *helo;
    const char *addr;
    const char *rcpts[3];
    size_t n;
    const char *content;
} smtpd_cases[] = {
    { "client.example", "192.0.2.7", { "r@example.org" }, 1,
      "Subject: x\n\nbody\n" },
    { NULL, "2001:db8::1", { "a@example.org", "b@example.org" }, 2,
      "no header at all\n" },
    { "h", "192.0.2.8", { "u\xc2\x85@example.org" }, 1, "" },   /* C1 in for */
    { "h", "192.0.2.9", { "a@x" }, 1, "A: 1\n continued\nB: 2" },
};

/* byte for byte what smtpd wrote by hand before */
START_TEST(test_same_as_smtpd_by_hand)
{
    const struct smtpd_case *t = &smtpd_cases[_i];
    char qa[QUEUE_ID_SIZE], qb[QUEUE_ID_SIZE];
    buf_t a = BUF_INIT, b = BUF_INIT;

    smtpd_by_hand(t->helo, t->addr, t->rcpts, t->n, t->content, qa);
    smtpd_by_cleanup(t->helo, t->addr, t->rcpts, t->n, t->content, qb);
    file_bytes(qa, &a);
    file_bytes(qb, &b);
    normalize(&a, qa, &b, qb);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_msg(memcmp(a.data, b.data, a.len) == 0, "files differ:\n%s\n--\n%s",
                  a.data + 40, b.data + 40);
    buf_free(&a);
    buf_free(&b);
}
END_TEST

/* a TLS session's Received: has "(using ...)" between "from" and "by" */
START_TEST(test_received_tls)
{
    static const char info[] = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
                               "(256/256 bits)";
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_RECEIVED);
    char qid[QUEUE_ID_SIZE];
    buf_t b = BUF_INIT;

    ck_assert_ptr_nonnull(c);
    cleanup_set_tls_info(c, "replaced");
    cleanup_set_tls_info(c, info);
    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    ck_assert_int_eq(cleanup_attr(c, "client_address", "192.0.2.1"), 0);
    ck_assert_int_eq(cleanup_attr(c, "protocol", "ESMTPS"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "r@example.org"), 0);
    ck_assert_int_eq(cleanup_content(c, "Subject: x\n\nbody\n", 18), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    str_copy(qid, cleanup_qid(c), QUEUE_ID_SIZE);
    cleanup_free(c);
    file_bytes(qid, &b);
    ck_assert_ptr_nonnull(memmem(b.data, b.len, "Received: from unknown (unknown "
                                 "[192.0.2.1])\n\t(using TLSv1.3 with cipher "
                                 "TLS_AES_256_GCM_SHA384 (256/256 bits))\n\tby ",
                                 116));
    ck_assert_ptr_nonnull(memmem(b.data, b.len, " with ESMTPS id ", 16));
    ck_assert_ptr_null(memmem(b.data, b.len, "replaced", 8));
    buf_free(&b);
}
END_TEST

/* byte for byte what local's forwarding wrote by hand before */
START_TEST(test_same_as_local_by_hand)
{
    static const char *const targets[] = { "demo@localhost", "bob@localhost",
                                           "friend@remote.example" };
    static const char content[] = "Delivered-To: team@localhost\n"
                                  "Subject: s\n\nbody\n";
    queue_writer_t w;
    char qa[QUEUE_ID_SIZE];
    buf_t a = BUF_INIT, b = BUF_INIT;

    ck_assert_int_eq(queue_writer_open(&w, QUEUE_INCOMING), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "s@x", 3), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "forwarded_from", "QID1"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "protocol", "local"), 0);
    ck_assert_int_eq(queue_writer_attr(&w, "alias_expanded", "yes"), 0);
    for (size_t i = 0; i < ARRAY_LEN(targets); i++) {
        ck_assert_int_eq(queue_writer_record(&w, QREC_ORCPT, "team@localhost", 14), 0);
        ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, targets[i],
                                             strlen(targets[i])), 0);
    }
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    ck_assert_int_eq(queue_writer_content(&w, content, strlen(content)), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);
    str_copy(qa, w.qid, sizeof(qa));

    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_int_eq(cleanup_sender(c, "s@x"), 0);
    ck_assert_int_eq(cleanup_attr(c, "forwarded_from", "QID1"), 0);
    ck_assert_int_eq(cleanup_attr(c, "protocol", "local"), 0);
    ck_assert_int_eq(cleanup_attr(c, "alias_expanded", "yes"), 0);
    for (size_t i = 0; i < ARRAY_LEN(targets); i++)
        ck_assert_int_eq(cleanup_rcpt(c, "team@localhost", targets[i]), 0);
    ck_assert_int_eq(cleanup_content(c, content, strlen(content)), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);

    file_bytes(qa, &a);
    file_bytes(cleanup_qid(c), &b);
    normalize(&a, qa, &b, cleanup_qid(c));
    ck_assert_uint_eq(a.len, b.len);
    ck_assert(memcmp(a.data, b.data, a.len) == 0);
    cleanup_free(c);
    buf_free(&a);
    buf_free(&b);
}
END_TEST

/* what the header hook saw */
struct seen {
    buf_t headers;          /* each header, then "|" */
    int ends;
    int truncated;
    size_t nheaders;
};

static int seen_header(void *ctx, const char *hdr, size_t len, bool truncated)
{
    struct seen *s = ctx;

    buf_append(&s->headers, hdr, len < 40 ? len : 40);
    buf_putc(&s->headers, '|');
    s->nheaders++;
    s->truncated += truncated;
    return 0;
}

static int seen_end(void *ctx)
{
    ((struct seen *)ctx)->ends++;
    return 0;
}

static const struct boundary_case {
    const char *name;
    const char *in;
    const char *headers;        /* what the hook saw */
} boundary_cases[] = {
    { "plain", "A: 1\nB: 2\n\nbody\n", "A: 1\n|B: 2\n|" },
    { "no blank line", "A: 1\nnot a header\nB: 2\n", "A: 1\n|" },
    { "only headers", "A: 1\nB: 2\n", "A: 1\n|B: 2\n|" },
    { "last header without LF", "A: 1\nB: 2", "A: 1\n|B: 2|" },
    { "continuations", "A: 1\n 2\n\tthree\nB: x\n\nb\n",
      "A: 1\n 2\n\tthree\n|B: x\n|" },
    { "continuation of nothing", " x: 1\nA: 2\n", "" },
    { "empty content", "", "" },
    { "body first", "\nA: 1\n", "" },
    { "space before colon", "A : 1\nB: 2\n", "" },
    { "CRLF is content", "A: 1\r\n\r\nB: 2\n", "A: 1\r\n|" },
    { "colon first", ":x\nA: 1\n", "" },
    { "non-ASCII name", "\xc3\xa9: 1\n", "" },
    { "body without LF", "A: 1\n\nlast", "A: 1\n|" },
    { "non-header without LF", "A: 1\nlast", "A: 1\n|" },
};

/* the boundary is found whatever the chunking; content is unchanged */
START_TEST(test_boundary)
{
    const struct boundary_case *t = &boundary_cases[_i];
    size_t len = strlen(t->in);

    for (size_t step = 0; step <= 3; step++) {
        cleanup_t *c = simple_open(0);
        struct seen s = { BUF_INIT, 0, 0, 0 };
        queue_msg_t m;
        buf_t out = BUF_INIT;
        size_t chunk = step == 0 ? (len ? len : 1) : step;

        cleanup_set_header_hook(c, seen_header, seen_end, &s);
        for (size_t i = 0; i < len; i += chunk)
            ck_assert_int_eq(cleanup_content(c, t->in + i,
                             len - i < chunk ? len - i : chunk), 0);
        ck_assert_int_eq(cleanup_commit(c), 0);
        read_back(cleanup_qid(c), &m, &out);
        ck_assert_msg(strcmp(buf_str(&s.headers), t->headers) == 0,
                      "%s (step %zu): saw \"%s\"", t->name, step,
                      buf_str(&s.headers));
        ck_assert_int_eq(s.ends, 1);
        ck_assert_int_eq(s.truncated, 0);
        ck_assert_uint_eq(out.len, len);
        ck_assert_msg(memcmp(out.data, t->in, len) == 0, "%s", t->name);
        queue_msg_free(&m);
        buf_free(&out);
        buf_free(&s.headers);
        cleanup_free(c);
    }
}
END_TEST

/* a header far over CLEANUP_HEADER_MAX (one line, and folded), and a
   huge non-header first line: examined in part, written unchanged */
START_TEST(test_long_header)
{
    size_t big = CLEANUP_HEADER_MAX * 2 + 17;
    buf_t in = BUF_INIT, out = BUF_INIT;

    /* the header section as a whole stays within header_size_limit here
       (test_header_size_limit checks what happens past it) */
    var_header_size_limit = 8 * CLEANUP_HEADER_MAX;
    for (int kind = 0; kind < 3; kind++) {
        buf_reset(&in);
        if (kind == 0) {
            buf_puts(&in, "X-Long: ");
            for (size_t i = 0; i < big; i++)
                buf_putc(&in, 'a');
            buf_puts(&in, "\n more\nMessage-ID: <m@x>\n\nbody\n");
        } else if (kind == 1) {
            buf_puts(&in, "X-Folded: 1\n");
            for (size_t i = 0; i < big / 50; i++)
                buf_puts(&in, " 0123456789012345678901234567890123456789012345678\n");
            buf_puts(&in, "Message-ID: <m@x>\n\nbody\n");
        } else {
            for (size_t i = 0; i < big; i++)
                buf_putc(&in, 'a');
            buf_puts(&in, ": not a header, too long to tell\nMessage-ID: <m@x>\n");
        }
        for (size_t step = 0; step < 2; step++) {
            cleanup_t *c = simple_open(CLEANUP_FLAG_ADD_MISSING);
            struct seen s = { BUF_INIT, 0, 0, 0 };
            queue_msg_t m;
            size_t chunk = step == 0 ? in.len : 4093;

            cleanup_set_header_hook(c, seen_header, seen_end, &s);
            for (size_t i = 0; i < in.len; i += chunk)
                ck_assert_int_eq(cleanup_content(c, in.data + i,
                                 in.len - i < chunk ? in.len - i : chunk), 0);
            ck_assert_int_eq(cleanup_commit(c), 0);
            read_back(cleanup_qid(c), &m, &out);
            if (kind < 2) {
                ck_assert_int_eq(s.truncated, 1);
                ck_assert_uint_eq(s.nheaders, 2);
                /* Message-ID seen after the long one: only Date: added */
                ck_assert_uint_gt(out.len, in.len);
                ck_assert(memcmp(out.data, in.data, in.len - 6) == 0);
                ck_assert_ptr_nonnull(strstr(out.data + in.len - 30,
                                             "\nDate: "));
                ck_assert_ptr_null(strstr(out.data + in.len - 30,
                                          "Message-ID: <2"));
            } else {
                /* the body starts at once: both added, then an empty line */
                ck_assert_int_eq(s.truncated, 0);
                ck_assert_uint_eq(s.nheaders, 0);
                ck_assert(strncmp(out.data, "Message-ID: <", 13) == 0);
                const char *sep = strstr(out.data, "\n\n");
                ck_assert_ptr_nonnull(sep);
                ck_assert_uint_eq(out.len - (size_t)(sep + 2 - out.data), in.len);
                ck_assert(memcmp(sep + 2, in.data, in.len) == 0);
            }
            ck_assert_int_eq(s.ends, 1);
            queue_msg_free(&m);
            buf_free(&s.headers);
            cleanup_free(c);
        }
    }
    buf_free(&in);
    buf_free(&out);
}
END_TEST

#define MID "Message-ID: <20231114221320.QUEUEID@mx.example>\n"
#define DATE "Date: Tue, 14 Nov 2023 22:13:20 +0000 (UTC)\n"

static const struct missing_case {
    unsigned flags;
    const char *in;
    const char *out;            /* QUEUEID: the queue ID */
} missing_cases[] = {
    { 0, "Subject: x\n\nbody\n", "Subject: x\n\nbody\n" },
    { 0, "body only\n", "body only\n" },
    { CLEANUP_FLAG_ADD_MISSING, "Subject: x\n\nbody\n",
      "Subject: x\n" MID DATE "\nbody\n" },
    { CLEANUP_FLAG_ADD_MISSING, "message-id: <a@b>\nSubject: x\n\nbody\n",
      "message-id: <a@b>\nSubject: x\n" DATE "\nbody\n" },
    { CLEANUP_FLAG_ADD_MISSING, "DATE: today\n\nbody\n",
      "DATE: today\n" MID "\nbody\n" },
    { CLEANUP_FLAG_ADD_MISSING, "Date: d\nMessage-Id: <a@b>\n\nbody\n",
      "Date: d\nMessage-Id: <a@b>\n\nbody\n" },
    { CLEANUP_FLAG_ADD_MISSING, "Subject: x\nbody at once\n",
      "Subject: x\n" MID DATE "\nbody at once\n" },
    { CLEANUP_FLAG_ADD_MISSING, "Subject: x", "Subject: x\n" MID DATE },
    { CLEANUP_FLAG_ADD_MISSING, "", MID DATE },
    { CLEANUP_FLAG_ADD_MISSING, "\nbody\n", MID DATE "\nbody\n" },
    /* names that only start like ours */
    { CLEANUP_FLAG_ADD_MISSING, "Message-IDx: 1\nDated: 2\n\n",
      "Message-IDx: 1\nDated: 2\n" MID DATE "\n" },
    /* a Message-ID in the body does not count */
    { CLEANUP_FLAG_ADD_MISSING, "\nMessage-ID: <a@b>\nDate: x\n",
      MID DATE "\nMessage-ID: <a@b>\nDate: x\n" },
};

static size_t count_lf(const char *p)
{
    size_t n = 0;

    for (; *p; p++)
        n += *p == '\n';
    return n;
}

START_TEST(test_add_missing)
{
    const struct missing_case *t = &missing_cases[_i];

    for (size_t step = 0; step < 3; step++) {
        buf_t out = BUF_INIT, want = BUF_INIT;
        cleanup_t *c = simple_open(t->flags);
        queue_msg_t m;
        size_t len = strlen(t->in), chunk = step == 0 ? (len ? len : 1) : step;

        for (size_t i = 0; i < len; i += chunk)
            ck_assert_int_eq(cleanup_content(c, t->in + i,
                             len - i < chunk ? len - i : chunk), 0);
        ck_assert_int_eq(cleanup_commit(c), 0);
        read_back(cleanup_qid(c), &m, &out);
        for (const char *q = t->out; *q;) {
            if (strncmp(q, "QUEUEID", 7) == 0) {
                buf_puts(&want, cleanup_qid(c));
                q += 7;
            } else {
                buf_putc(&want, *q++);
            }
        }
        ck_assert_msg(strcmp(buf_str(&out), buf_str(&want)) == 0,
                      "case %d: got \"%s\", want \"%s\"", _i, buf_str(&out),
                      buf_str(&want));
        /* added headers are not the producer's: not counted */
        ck_assert_uint_eq(cleanup_size(c), len + count_lf(t->in));
        queue_msg_free(&m);
        buf_free(&out);
        buf_free(&want);
        cleanup_free(c);
    }
}
END_TEST

/* the size is counted as smtpdata counts it for message_size_limit */
START_TEST(test_size_as_smtpdata)
{
    static const char *const wire[] = {
        "Subject: x\r\n\r\nbody\r\n.\r\n",
        ".\r\n",
        "a\nb\rc\r\n..dot\r\n.x\r\n\r\n.\r\n",
        "\r\n\r\n\n.\n.\r\nx\r\n.\r\n",
    };

    for (size_t k = 0; k < ARRAY_LEN(wire); k++) {
        smtpdata_t d;
        buf_t dec = BUF_INIT;
        size_t used;

        smtpdata_init(&d);
        ck_assert_msg(smtpdata_feed(&d, wire[k], strlen(wire[k]), &dec,
                                    &used) == 1, "wire %zu", k);
        cleanup_t *c = simple_open(CLEANUP_FLAG_RECEIVED);
        ck_assert_int_eq(cleanup_content(c, dec.data ? dec.data : "", dec.len), 0);
        ck_assert_uint_eq(cleanup_size(c), d.size);
        cleanup_free(c);
        buf_free(&dec);
    }
    ck_assert_uint_eq(incoming_count(), 0);
}
END_TEST

START_TEST(test_size_limit)
{
    cleanup_t *c = simple_open(0);

    cleanup_set_size_limit(c, 10);
    ck_assert_int_eq(cleanup_content(c, "12345678\n", 9), 0);   /* 10 */
    ck_assert_int_eq(cleanup_content(c, "x", 1), -1);
    ck_assert_int_eq(errno, EFBIG);
    ck_assert(!cleanup_ok(c));
    ck_assert_uint_eq(incoming_count(), 0);
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);

    c = simple_open(0);
    cleanup_set_size_limit(c, 10);
    ck_assert_int_eq(cleanup_content(c, "12345678\n", 9), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    ck_assert_uint_eq(incoming_count(), 1);
    cleanup_free(c);
}
END_TEST

/* an uncommitted cleanup leaves nothing behind, at any stage */
START_TEST(test_abort)
{
    for (int stage = 0; stage < 4; stage++) {
        cleanup_t *c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_RECEIVED);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(incoming_count(), 1);       /* the temp file */
        if (stage >= 1)
            ck_assert_int_eq(cleanup_sender(c, "s@x"), 0);
        if (stage >= 2)
            ck_assert_int_eq(cleanup_rcpt(c, NULL, "r@x"), 0);
        if (stage >= 3)
            ck_assert_int_eq(cleanup_content(c, "A: 1\n", 5), 0);
        cleanup_free(c);
        ck_assert_uint_eq(incoming_count(), 0);
    }
}
END_TEST

/* cleanup_abort: the file goes at once, the queue ID stays for the log */
START_TEST(test_abort_keeps_qid)
{
    cleanup_t *c = simple_open(CLEANUP_FLAG_RECEIVED);
    char qid[QUEUE_ID_SIZE];

    str_copy(qid, cleanup_qid(c), sizeof(qid));
    ck_assert_int_eq(cleanup_content(c, "A: 1\n", 5), 0);
    errno = ENOSPC;
    cleanup_abort(c);
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert(!cleanup_ok(c));
    ck_assert_uint_eq(incoming_count(), 0);
    ck_assert_str_eq(cleanup_qid(c), qid);
    ck_assert_int_eq(cleanup_content(c, "x", 1), -1);
    ck_assert_int_eq(cleanup_commit(c), -1);
    cleanup_abort(c);                   /* twice is fine */
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);
}
END_TEST

enum order_step { ST_SENDER, ST_ATTR, ST_RCPT, ST_BEGIN, ST_CONTENT, ST_COMMIT };

static int do_step(cleanup_t *c, enum order_step s)
{
    switch (s) {
    case ST_SENDER:  return cleanup_sender(c, "s@x");
    case ST_ATTR:    return cleanup_attr(c, "protocol", "SMTP");
    case ST_RCPT:    return cleanup_rcpt(c, NULL, "r@x");
    case ST_BEGIN:   return cleanup_content_begin(c);
    case ST_CONTENT: return cleanup_content(c, "x\n", 2);
    case ST_COMMIT:  return cleanup_commit(c);
    }
    return -1;
}

static const struct order_case {
    enum order_step ok[4];
    size_t nok;
    enum order_step bad;
} order_cases[] = {
    { { 0 }, 0, ST_ATTR },                          /* attr before sender */
    { { 0 }, 0, ST_RCPT },                          /* rcpt before sender */
    { { 0 }, 0, ST_CONTENT },                       /* no envelope */
    { { 0 }, 0, ST_COMMIT },
    { { ST_SENDER }, 1, ST_SENDER },                /* twice */
    { { ST_SENDER }, 1, ST_CONTENT },               /* no recipient */
    { { ST_SENDER }, 1, ST_COMMIT },
    { { ST_SENDER, ST_RCPT }, 2, ST_ATTR },         /* attr after rcpt */
    { { ST_SENDER, ST_RCPT, ST_BEGIN }, 3, ST_BEGIN },
    { { ST_SENDER, ST_RCPT, ST_BEGIN }, 3, ST_RCPT },
    { { ST_SENDER, ST_RCPT, ST_CONTENT }, 3, ST_ATTR },
    { { ST_SENDER, ST_RCPT, ST_CONTENT }, 3, ST_SENDER },
};

/* calls out of order: -1 EINVAL, the file is gone, later calls fail */
START_TEST(test_order_errors)
{
    const struct order_case *t = &order_cases[_i];
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);

    ck_assert_ptr_nonnull(c);
    for (size_t i = 0; i < t->nok; i++)
        ck_assert_int_eq(do_step(c, t->ok[i]), 0);
    errno = 0;
    ck_assert_int_eq(do_step(c, t->bad), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(!cleanup_ok(c));
    ck_assert_uint_eq(incoming_count(), 0);
    ck_assert_int_eq(cleanup_content(c, "x", 1), -1);
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);
}
END_TEST

/* attribute and record contents the writer refuses */
START_TEST(test_bad_records)
{
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_int_eq(cleanup_sender(c, "s@x"), 0);
    ck_assert_int_eq(cleanup_attr(c, "a=b", "c"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);

    c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_int_eq(cleanup_sender(c, "s@x"), 0);
    ck_assert_int_eq(cleanup_attr(c, "", "c"), -1);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);
}
END_TEST

/* a real write failure (the file size limit, as on a full disk): -1,
   and no file, neither temporary nor committed */
START_TEST(test_write_failure)
{
    struct rlimit rl = { 65536, 65536 };
    char *big = xmalloc(200000);

    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    memset(big, 'a', 200000);
    cleanup_t *c = simple_open(0);
    int r = cleanup_content(c, big, 100000);
    if (r == 0)
        r = cleanup_content(c, big, 100000);
    if (r == 0)
        r = cleanup_commit(c);
    ck_assert_int_eq(r, -1);
    ck_assert(!cleanup_ok(c));
    ck_assert_uint_eq(incoming_count(), 0);
    ck_assert_int_eq(cleanup_commit(c), -1);
    cleanup_free(c);
    free(big);
}
END_TEST

/* the queue directory is missing: open fails, nothing to free */
START_TEST(test_open_failure)
{
    errno = 0;
    ck_assert_ptr_null(cleanup_open("no-such-queue", 0));
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* a hook that refuses the message: -1, no file */
static int refuse_header(void *ctx, const char *hdr, size_t len, bool truncated)
{
    (void)ctx;
    (void)truncated;
    if (len >= 3 && strncmp(hdr, "Bad", 3) == 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

START_TEST(test_hook_refuses)
{
    cleanup_t *c = simple_open(0);

    cleanup_set_header_hook(c, refuse_header, NULL, NULL);
    ck_assert_int_eq(cleanup_content(c, "Ok: 1\nBad: 2\n", 13), 0);
    ck_assert_int_eq(cleanup_content(c, "\nbody\n", 6), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);
}
END_TEST

/* ---- header_checks, body_checks, header_size_limit ----------------------- */

/* write the tables (NULL: none) into the spool directory, load main.conf
   naming them (plus extra), open them */
static void checks_conf(const char *htable, const char *btable,
                        const char *extra)
{
    buf_t conf = BUF_INIT, err = BUF_INIT;
    const char *why;
    char cwd[PATH_MAX];

    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    buf_puts(&conf, "myhostname = mx.example\n");
    for (int i = 0; i < 2; i++) {
        const char *t = i == 0 ? htable : btable;
        const char *name = i == 0 ? "header_checks" : "body_checks";
        if (t == NULL)
            continue;
        FILE *fp = fopen(name, "w");
        ck_assert_ptr_nonnull(fp);
        ck_assert_int_ge(fputs(t, fp), 0);
        ck_assert_int_eq(fclose(fp), 0);
        buf_printf(&conf, "%s = pcre:%s/%s\n", name, cwd, name);
    }
    if (extra)
        buf_puts(&conf, extra);
    ck_assert_msg(config_load_text(conf.data, conf.len, "main.conf", cwd,
                                   &err) == 0, "%s", buf_str(&err));
    ck_assert_msg(cleanup_checks_open(&why) == 0, "%s", why);
    buf_free(&conf);
    buf_free(&err);
}

static size_t queue_count(const char *queue)
{
    DIR *d = opendir(queue);
    struct dirent *e;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static const char check_header_table[] =
    "/^Subject:.*reject-me/        REJECT no thanks\n"
    "/^Subject:.*reject-plain/     REJECT\n"
    "/^Subject:.*reject-dsn/       reject 5.7.9 own code\n"
    "/^Subject:.*reject-temp/      REJECT 4.7.1 later\n"
    "/^Subject:.*discard-me/       DISCARD into the void\n"
    "/^Subject:.*hold-me/          HOLD look at it\n"
    "/^Subject:.*warn-me/          WARN just saying\n"
    "/^X-Drop:/                    IGNORE\n"
    "/^X-Old: (.*)/                REPLACE X-New: was $1\n"
    "/^X-Mark:/                    PREPEND X-Before: yes\n"
    "/^X-Dunno:/                   DUNNO\n"
    "/^X-Folded: a\\n\\tb$/        REPLACE X-Folded: matched\n"
    "/^X-Bogus:/                   FROBNICATE\n"
    "/^X-Replace-Nothing:/         REPLACE\n";

static const char check_body_table[] =
    "/^reject body$/               REJECT body says no\n"
    "/^discard body$/              DISCARD\n"
    "/^hold body$/                 HOLD\n"
    "/^drop this line$/            IGNORE\n"
    "/^old line$/                  REPLACE new line\n"
    "/^mark line$/                 PREPEND before line\n";

static const struct check_case {
    const char *in;
    enum cleanup_outcome outcome;
    int commit;                 /* cleanup_commit's return */
    const char *out;            /* the stored content (queued or held) */
    int code;
    const char *text;           /* the outcome's text */
} check_cases[] = {
    { "Subject: hello\n\nbody\n", CLEANUP_QUEUED, 0,
      "Subject: hello\n\nbody\n", 0, "" },
    { "Subject: reject-me\n\nbody\n", CLEANUP_REJECTED, -1, NULL,
      550, "5.7.1 no thanks" },
    { "Subject: reject-plain\n\nbody\n", CLEANUP_REJECTED, -1, NULL,
      550, "5.7.1 message content rejected" },
    { "Subject: reject-dsn\n\nbody\n", CLEANUP_REJECTED, -1, NULL,
      550, "5.7.9 own code" },
    { "Subject: reject-temp\n\nbody\n", CLEANUP_REJECTED, -1, NULL,
      450, "4.7.1 later" },
    { "Subject: discard-me\n\nbody\n", CLEANUP_DISCARDED, 0, NULL,
      0, "into the void" },
    { "Subject: hold-me\n\nbody\n", CLEANUP_HELD, 0,
      "Subject: hold-me\n\nbody\n", 0, "look at it" },
    /* HOLD, then REJECT: rejected */
    { "Subject: hold-me\nSubject: reject-me\n\nbody\n", CLEANUP_REJECTED,
      -1, NULL, 550, "5.7.1 no thanks" },
    { "Subject: warn-me\n\nbody\n", CLEANUP_QUEUED, 0,
      "Subject: warn-me\n\nbody\n", 0, "" },
    { "A: 1\nX-Drop: x\n y\nB: 2\n\nbody\n", CLEANUP_QUEUED, 0,
      "A: 1\nB: 2\n\nbody\n", 0, "" },
    { "X-Old: value\n\nbody\n", CLEANUP_QUEUED, 0,
      "X-New: was value\n\nbody\n", 0, "" },
    { "X-Mark: 1\n\nbody\n", CLEANUP_QUEUED, 0,
      "X-Before: yes\nX-Mark: 1\n\nbody\n", 0, "" },
    { "X-Dunno: 1\nSubject: reject-me\n\nbody\n", CLEANUP_REJECTED, -1,
      NULL, 550, "5.7.1 no thanks" },
    /* the whole logical header, with its embedded newline */
    { "X-Folded: a\n\tb\n\nbody\n", CLEANUP_QUEUED, 0,
      "X-Folded: matched\n\nbody\n", 0, "" },
    /* unknown action and REPLACE without text: warned, ignored */
    { "X-Bogus: 1\nX-Replace-Nothing: 2\n\nb\n", CLEANUP_QUEUED, 0,
      "X-Bogus: 1\nX-Replace-Nothing: 2\n\nb\n", 0, "" },
    /* a header without the final LF at the end of the content */
    { "X-Old: end", CLEANUP_QUEUED, 0, "X-New: was end\n", 0, "" },
    /* body lines; headers are not body and the body is not headers */
    { "Subject: x\n\nline\nreject body\nmore\n", CLEANUP_REJECTED, -1,
      NULL, 550, "5.7.1 body says no" },
    { "Subject: x\n\ndiscard body\n", CLEANUP_DISCARDED, 0, NULL, 0, "" },
    { "Subject: x\n\nhold body\n", CLEANUP_HELD, 0,
      "Subject: x\n\nhold body\n", 0, "" },
    { "Subject: x\n\na\ndrop this line\nold line\nmark line\nz", CLEANUP_QUEUED,
      0, "Subject: x\n\na\nnew line\nbefore line\nmark line\nz", 0, "" },
    { "Subject: x\n\nSubject: reject-me\n", CLEANUP_QUEUED, 0,
      "Subject: x\n\nSubject: reject-me\n", 0, "" },
    { "X-H: reject body\n\nok\n", CLEANUP_QUEUED, 0,
      "X-H: reject body\n\nok\n", 0, "" },
    /* a body that starts without an empty line; a last line without LF */
    { "Subject: x\nreject body\n", CLEANUP_REJECTED, -1, NULL, 550,
      "5.7.1 body says no" },
    { "old line", CLEANUP_QUEUED, 0, "new line", 0, "" },
};

START_TEST(test_checks)
{
    const struct check_case *k = &check_cases[_i];
    buf_t out = BUF_INIT;

    checks_conf(check_header_table, check_body_table, NULL);
    for (size_t step = 0; step < 2; step++) {
        cleanup_t *c = simple_open(0);
        size_t len = strlen(k->in), chunk = step == 0 ? len : 1;
        const char *text;
        int code;

        for (size_t i = 0; i < len; i += chunk)
            ck_assert_int_eq(cleanup_content(c, k->in + i,
                             len - i < chunk ? len - i : chunk), 0);
        ck_assert_int_eq(cleanup_commit(c), k->commit);
        if (k->commit < 0)
            ck_assert_int_eq(errno, EPERM);
        ck_assert_int_eq(cleanup_outcome(c, &code, &text), k->outcome);
        ck_assert_int_eq(code, k->code);
        ck_assert_str_eq(text, k->text);
        ck_assert_uint_eq(queue_count(QUEUE_INCOMING),
                          k->outcome == CLEANUP_QUEUED ? 1 : 0);
        ck_assert_uint_eq(queue_count(QUEUE_HOLD),
                          k->outcome == CLEANUP_HELD ? 1 : 0);
        if (k->out != NULL) {
            buf_t path = BUF_INIT;
            const char *err = NULL;
            queue_msg_t m;
            const char *q = k->outcome == CLEANUP_HELD ? QUEUE_HOLD
                                                       : QUEUE_INCOMING;

            queue_path(q, cleanup_qid(c), &path);
            int fd = open(buf_str(&path), O_RDONLY);
            ck_assert_int_ge(fd, 0);
            ck_assert_msg(queue_file_read(fd, cleanup_qid(c), &m, &err) == 0,
                          "%s", err);
            char *p = xmalloc(m.content_len + 1);
            ck_assert_int_eq(pread(fd, p, m.content_len, m.content_offset),
                             (ssize_t)m.content_len);
            p[m.content_len] = '\0';
            ck_assert_str_eq(p, k->out);
            free(p);
            close(fd);
            ck_assert_int_eq(unlink(buf_str(&path)), 0);
            queue_msg_free(&m);
            buf_free(&path);
        }
        cleanup_free(c);
    }
    buf_free(&out);
}
END_TEST

/* CLEANUP_FLAG_NO_CHECKS (local's forwarded copies): no checks, and a
   broken table does not stop such mail */
START_TEST(test_no_checks_flag)
{
    const char *why;

    checks_conf("/^Subject:/ REJECT\n", "/^body/ REJECT\n", NULL);
    cleanup_t *c = simple_open(CLEANUP_FLAG_NO_CHECKS);
    ck_assert_int_eq(cleanup_content(c, "Subject: x\n\nbody\n", 17), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    ck_assert_int_eq(cleanup_outcome(c, NULL, NULL), CLEANUP_QUEUED);
    ck_assert_uint_eq(queue_count(QUEUE_INCOMING), 1);
    cleanup_free(c);

    FILE *fp = fopen("header_checks", "w");
    ck_assert_ptr_nonnull(fp);
    fputs("/(/ REJECT\n", fp);
    fclose(fp);
    ck_assert_int_eq(cleanup_checks_open(&why), -1);
    c = simple_open(CLEANUP_FLAG_NO_CHECKS);
    ck_assert_int_eq(cleanup_commit(c), 0);
    cleanup_free(c);
    ck_assert_ptr_null(cleanup_open(QUEUE_INCOMING, 0));
}
END_TEST

/* HOLD from outside: cleanup_hold(), or a cleanup opened in hold/ */
START_TEST(test_hold_api)
{
    for (int how = 0; how < 2; how++) {
        cleanup_t *c = cleanup_open(how == 0 ? QUEUE_INCOMING : QUEUE_HOLD, 0);
        const char *text;

        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
        ck_assert_int_eq(cleanup_rcpt(c, NULL, "r@example.org"), 0);
        if (how == 0)
            cleanup_hold(c, "policy says so");
        ck_assert_int_eq(cleanup_content(c, "Subject: x\n\nbody\n", 17), 0);
        ck_assert_int_eq(cleanup_commit(c), 0);
        ck_assert_int_eq(cleanup_outcome(c, NULL, &text), CLEANUP_HELD);
        ck_assert_str_eq(text, how == 0 ? "policy says so" : "");
        ck_assert_uint_eq(queue_count(QUEUE_INCOMING), 0);
        ck_assert_uint_eq(queue_count(QUEUE_HOLD), 1);

        buf_t path = BUF_INIT;
        queue_path(QUEUE_HOLD, cleanup_qid(c), &path);
        ck_assert_int_eq(unlink(buf_str(&path)), 0);
        buf_free(&path);
        cleanup_free(c);
    }
}
END_TEST

/* body_checks look at the first body_checks_size_limit bytes only, and
   at lines in pieces of line_length_limit bytes */
START_TEST(test_body_checks_limits)
{
    buf_t in = BUF_INIT;

    checks_conf(NULL, "/^bad$/ REJECT\n/^x{100}$/ REJECT piece\n",
                "body_checks_size_limit = 1000\nline_length_limit = 100\n");
    for (int i = 0; i < 100; i++)
        buf_puts(&in, "0123456789\n");          /* 1100 bytes of body */
    buf_puts(&in, "bad\n");
    cleanup_t *c = simple_open(0);
    ck_assert_int_eq(cleanup_content(c, "\n", 1), 0);
    ck_assert_int_eq(cleanup_content(c, in.data, in.len), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    ck_assert_int_eq(cleanup_outcome(c, NULL, NULL), CLEANUP_QUEUED);
    cleanup_free(c);

    /* within the limit it is seen */
    c = simple_open(0);
    ck_assert_int_eq(cleanup_content(c, "\nok\nbad\n", 8), 0);
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_int_eq(cleanup_outcome(c, NULL, NULL), CLEANUP_REJECTED);
    cleanup_free(c);

    /* a 250-byte line is checked as pieces of 100 */
    buf_reset(&in);
    buf_puts(&in, "\n");
    for (int i = 0; i < 250; i++)
        buf_putc(&in, i < 100 ? 'y' : 'x');
    buf_puts(&in, "\n");
    c = simple_open(0);
    ck_assert_int_eq(cleanup_content(c, in.data, in.len), 0);
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_int_eq(cleanup_outcome(c, NULL, NULL), CLEANUP_REJECTED);
    cleanup_free(c);
    buf_free(&in);
}
END_TEST

/* a table that cannot be compiled: no queue file can be opened (mail
   waits); a good table again: it can */
START_TEST(test_checks_broken_table)
{
    const char *why;

    checks_conf("/ok/ DUNNO\n", NULL, NULL);
    FILE *fp = fopen("header_checks", "w");
    ck_assert_ptr_nonnull(fp);
    fputs("/(unclosed/ REJECT\n", fp);
    fclose(fp);
    ck_assert_int_eq(cleanup_checks_open(&why), -1);
    ck_assert_ptr_nonnull(strstr(why, "header_checks:"));
    ck_assert_ptr_nonnull(strstr(why, ":1: regex"));
    errno = 0;
    ck_assert_ptr_null(cleanup_open(QUEUE_INCOMING, 0));
    ck_assert_int_eq(errno, EIO);
    ck_assert_uint_eq(queue_count(QUEUE_INCOMING), 0);
    fp = fopen("header_checks", "w");
    ck_assert_ptr_nonnull(fp);
    fputs("/ok/ DUNNO\n", fp);
    fclose(fp);
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_ptr_nonnull(c);
    cleanup_free(c);
}
END_TEST

/* Postfix: header info past header_size_limit starts the body; an empty
   line is written there, the rest is body (not header-checked) */
START_TEST(test_header_size_limit)
{
    buf_t in = BUF_INIT, out = BUF_INIT, want = BUF_INIT;
    queue_msg_t m;

    checks_conf("/^Subject:/ REJECT\n", NULL, "header_size_limit = 1024\n");
    for (int i = 0; i < 100; i++)
        buf_printf(&in, "X-H%02d: 0123456789\n", i);   /* 1800 bytes */
    buf_puts(&in, "Subject: never checked\n\nbody\n");
    for (size_t step = 0; step < 2; step++) {
        cleanup_t *c = simple_open(0);
        size_t chunk = step == 0 ? in.len : 7;

        for (size_t i = 0; i < in.len; i += chunk)
            ck_assert_int_eq(cleanup_content(c, in.data + i,
                             in.len - i < chunk ? in.len - i : chunk), 0);
        ck_assert_int_eq(cleanup_commit(c), 0);
        read_back(cleanup_qid(c), &m, &out);
        /* 57 lines of 18 bytes reach 1026 > 1024: the 58th starts the body */
        buf_reset(&want);
        buf_append(&want, in.data, 57 * 18);
        buf_putc(&want, '\n');
        buf_append(&want, in.data + 57 * 18, in.len - 57 * 18);
        ck_assert_uint_eq(out.len, want.len);
        ck_assert(memcmp(out.data, want.data, want.len) == 0);
        queue_msg_free(&m);
        buf_t path = BUF_INIT;
        queue_path(QUEUE_INCOMING, cleanup_qid(c), &path);
        ck_assert_int_eq(unlink(buf_str(&path)), 0);
        buf_free(&path);
        cleanup_free(c);
    }

    /* the empty line right after the limit: nothing is added */
    buf_reset(&in);
    for (int i = 0; i < 57; i++)
        buf_printf(&in, "X-H%02d: 0123456789\n", i);
    buf_puts(&in, "\nbody\n");
    cleanup_t *c = simple_open(0);
    ck_assert_int_eq(cleanup_content(c, in.data, in.len), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, &out);
    ck_assert_uint_eq(out.len, in.len);
    ck_assert(memcmp(out.data, in.data, in.len) == 0);
    queue_msg_free(&m);
    cleanup_free(c);
    buf_free(&in);
    buf_free(&out);
    buf_free(&want);
}
END_TEST

/* ---- virtual_alias_maps (issue 7) ---------------------------------- */

static void virtual_conf(const char *maps)
{
    buf_t conf = BUF_INIT, err = BUF_INIT;

    buf_printf(&conf, "myhostname = mx.example\nvirtual_alias_maps = %s\n", maps);
    ck_assert_msg(config_load_text(conf.data, conf.len, "main.conf", tmpdir,
                                   &err) == 0, "%s", buf_str(&err));
    virtual_alias_close();
    buf_free(&conf);
    buf_free(&err);
}

/* every recipient is expanded; the given address becomes the 'O'
   record of each result, DSN fields go along, duplicates collapse */
START_TEST(test_virtual_expansion)
{
    cleanup_t *c;
    queue_msg_t m;

    virtual_conf("inline:{team@x=b@y c@y, list@x=b@y, dup@x=e@y E@Y e@y, "
                 "self@x=self@x, @loop.x=l@loop.x, l@loop.x=z@loop.x}");
    c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    ck_assert_int_eq(cleanup_rcpt_dsn(c, NULL, "team@x", QREC_NOTIFY_SUCCESS,
                                      "rfc822;team@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "list@x"), 0);      /* b@y again */
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "list@x"), 0);      /* dup */
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "dup@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "self@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, "first@z", "list@x"), 0); /* producer's O */
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "plain@x"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "q@loop.x"), 0);    /* loop */
    ck_assert_uint_eq(cleanup_nrcpts(c), 8);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, NULL);
    ck_assert_uint_eq(m.nrcpts, 8);
    ck_assert_str_eq(m.rcpts[0].address, "b@y");
    ck_assert_str_eq(m.rcpts[0].orcpt, "team@x");
    ck_assert_uint_eq(m.rcpts[0].dsn_notify, QREC_NOTIFY_SUCCESS);
    ck_assert_str_eq(m.rcpts[0].dsn_orcpt, "rfc822;team@x");
    ck_assert_str_eq(m.rcpts[1].address, "c@y");
    ck_assert_str_eq(m.rcpts[1].orcpt, "team@x");
    ck_assert_uint_eq(m.rcpts[1].dsn_notify, QREC_NOTIFY_SUCCESS);
    ck_assert_str_eq(m.rcpts[2].address, "b@y");
    ck_assert_str_eq(m.rcpts[2].orcpt, "list@x");
    ck_assert_uint_eq(m.rcpts[2].dsn_notify, 0);
    ck_assert_str_eq(m.rcpts[3].address, "e@y");
    ck_assert_str_eq(m.rcpts[3].orcpt, "dup@x");
    ck_assert_str_eq(m.rcpts[4].address, "self@x");             /* as is */
    ck_assert_ptr_null(m.rcpts[4].orcpt);
    ck_assert_str_eq(m.rcpts[5].address, "b@y");
    ck_assert_str_eq(m.rcpts[5].orcpt, "first@z");
    ck_assert_str_eq(m.rcpts[6].address, "plain@x");
    ck_assert_ptr_null(m.rcpts[6].orcpt);
    /* z@loop.x meets the catch-all again: l@loop.x is kept */
    ck_assert_str_eq(m.rcpts[7].address, "l@loop.x");
    ck_assert_str_eq(m.rcpts[7].orcpt, "q@loop.x");
    queue_msg_free(&m);
    cleanup_free(c);
}
END_TEST

/* a producer may skip the expansion */
START_TEST(test_virtual_flag_off)
{
    cleanup_t *c;
    queue_msg_t m;

    virtual_conf("inline:{a@x=b@y}");
    c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_NO_VIRTUAL);
    ck_assert_int_eq(cleanup_sender(c, ""), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, NULL);
    ck_assert_uint_eq(m.nrcpts, 1);
    ck_assert_str_eq(m.rcpts[0].address, "a@x");
    ck_assert_ptr_null(m.rcpts[0].orcpt);
    queue_msg_free(&m);
    cleanup_free(c);
}
END_TEST

/* append_at_myorigin: bare envelope addresses get @$myorigin; a bare
   recipient as given stays the original; qualified ones and the null
   sender are left alone; off means untouched */
START_TEST(test_append_at_myorigin)
{
    cleanup_t *c;
    queue_msg_t m;
    char *saved = var_myorigin;

    var_myorigin = "host.example";
    var_append_at_myorigin = true;
    c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_NO_VIRTUAL);
    ck_assert_int_eq(cleanup_sender(c, "demo"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "root"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, "given", "alice"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "bob@other.example"), 0);
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "root@host.example"), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, NULL);
    ck_assert_str_eq(m.sender, "demo@host.example");
    ck_assert_uint_eq(m.nrcpts, 4);
    ck_assert_str_eq(m.rcpts[0].address, "root@host.example");
    ck_assert_str_eq(m.rcpts[0].orcpt, "root");
    ck_assert_str_eq(m.rcpts[1].address, "alice@host.example");
    ck_assert_str_eq(m.rcpts[1].orcpt, "given");
    ck_assert_str_eq(m.rcpts[2].address, "bob@other.example");
    ck_assert_ptr_null(m.rcpts[2].orcpt);
    /* not a duplicate of the first: another original recipient */
    ck_assert_str_eq(m.rcpts[3].address, "root@host.example");
    queue_msg_free(&m);
    cleanup_free(c);

    c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_NO_VIRTUAL);
    ck_assert_int_eq(cleanup_sender(c, ""), 0);
    var_append_at_myorigin = false;
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "root"), 0);
    ck_assert_int_eq(cleanup_commit(c), 0);
    read_back(cleanup_qid(c), &m, NULL);
    ck_assert_str_eq(m.sender, "");
    ck_assert_str_eq(m.rcpts[0].address, "root");
    queue_msg_free(&m);
    cleanup_free(c);
    var_myorigin = saved;
}
END_TEST

/* a table that fails, or an expansion past a limit, never drops the
   recipient: cleanup_rcpt fails (EIO), nothing is left in the queue */
static const char *const virtual_fail_maps[] = {
    "lmdb:/nonexistent/virtual",
    "inline:{a@x=b@x, b@x=c@x, c@x=d@x}",   /* with recursion limit 3 */
    "inline:{a@x=\"unterminated@y}",
};

START_TEST(test_virtual_failure)
{
    cleanup_t *c;

    virtual_conf(virtual_fail_maps[_i]);
    var_virtual_alias_recursion_limit = 3;
    c = cleanup_open(QUEUE_INCOMING, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cleanup_sender(c, "s@example.org"), 0);
    errno = 0;
    ck_assert_int_eq(cleanup_rcpt(c, NULL, "a@x"), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert(!cleanup_ok(c));
    ck_assert_int_eq(cleanup_commit(c), -1);
    ck_assert_uint_eq(incoming_count(), 0);
    cleanup_free(c);
}
END_TEST

static Suite *cleanup_suite(void)
{
    Suite *s = suite_create("cleanup");
    TCase *tc = tcase_create("cleanup");

    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, spool_setup, spool_teardown);
    tcase_add_test(tc, test_envelope_roundtrip);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_duplicate_limit);
    tcase_add_loop_test(tc, test_same_as_smtpd_by_hand, 0, ARRAY_LEN(smtpd_cases));
    tcase_add_test(tc, test_same_as_local_by_hand);
    tcase_add_test(tc, test_received_tls);
    tcase_add_loop_test(tc, test_boundary, 0, ARRAY_LEN(boundary_cases));
    tcase_add_test(tc, test_long_header);
    tcase_add_loop_test(tc, test_add_missing, 0, ARRAY_LEN(missing_cases));
    tcase_add_test(tc, test_size_as_smtpdata);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_abort_keeps_qid);
    tcase_add_loop_test(tc, test_order_errors, 0, ARRAY_LEN(order_cases));
    tcase_add_test(tc, test_bad_records);
    tcase_add_test(tc, test_write_failure);
    tcase_add_test(tc, test_open_failure);
    tcase_add_test(tc, test_hook_refuses);
    tcase_add_loop_test(tc, test_checks, 0, ARRAY_LEN(check_cases));
    tcase_add_test(tc, test_hold_api);
    tcase_add_test(tc, test_no_checks_flag);
    tcase_add_test(tc, test_body_checks_limits);
    tcase_add_test(tc, test_checks_broken_table);
    tcase_add_test(tc, test_header_size_limit);
    tcase_add_test(tc, test_virtual_expansion);
    tcase_add_test(tc, test_virtual_flag_off);
    tcase_add_test(tc, test_append_at_myorigin);
    tcase_add_loop_test(tc, test_virtual_failure, 0, ARRAY_LEN(virtual_fail_maps));
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(cleanup_suite(), true);
}

/* test_smtpdata - table tests for the DATA stream decoder, each case fed
   whole, byte by byte, split at every position and in random chunks. */
#include <check.h>

#include "check_main.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtpdata.h"

#define S(x) x, sizeof(x) - 1

struct data_case {
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
    int rc;             /* 1 ended, 0 needs more */
    size_t used;        /* bytes consumed when ended (else in_len) */
    bool bare_lf;
    const char *msgid;  /* "" when none expected */
};

static const struct data_case cases[] = {
    /* simple message, then the next command stays unconsumed */
    { S("Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
      S("Subject: hi\n\nbody\n"), 1, 24, false, "" },
    /* dot-stuffing: the first dot of a line goes */
    { S("a\r\n..b\r\n...\r\n.c\r\n.\r\n"), S("a\n.b\n..\nc\n"), 1, 20,
      false, "" },
    /* "." alone as the first line */
    { S(".\r\n"), S(""), 1, 3, false, "" },
    { S(".\r\nMAIL FROM:<x>\r\n"), S(""), 1, 3, false, "" },
    { S("\r\n.\r\n"), S("\n"), 1, 5, false, "" },
    { S(". \r\n.\r\n"), S(" \n"), 1, 7, false, "" },
    /* smuggling attempts: none of these may end DATA */
    { S("a\n.\nMAIL FROM:<x>\r\n"), S("a\n.\nMAIL FROM:<x>\n"), 0, 0,
      true, "" },
    { S("a\r\n.\nb\r\n"), S("a\n.\nb\n"), 0, 0, true, "" },
    { S("a\n.\r\nb\r\n"), S("a\n.\nb\n"), 0, 0, true, "" },
    { S("a\r.\r\nb\r\n"), S("a\r.\nb\n"), 0, 0, false, "" },
    { S("a\r\n.\r\r\nb\r\n"), S("a\n\r\nb\n"), 0, 0, false, "" },
    { S("a\r\n\0.\r\nb"), S("a\n\0.\nb"), 0, 0, false, "" },
    { S("a\r\n.\0\r\nb"), S("a\n\0\nb"), 0, 0, false, "" },
    { S("a\r\n.\r\0\n"), S("a\n\r\0\n"), 0, 0, true, "" },
    { S("\n.\n"), S("\n.\n"), 0, 0, true, "" },
    { S("\r\r\n.\n\r\n"), S("\r\n.\n\n"), 0, 0, true, "" },
    /* ... after which a real end still works */
    { S("a\n.\nb\r\n.\r\n"), S("a\n.\nb\n"), 1, 10, true, "" },
    /* bare CR stays content, CR CR LF keeps one CR */
    { S("x\ry\r\r\n.\r\n"), S("x\ry\r\n"), 1, 9, false, "" },
    { S(".\rx\r\n.\r\n"), S("\rx\n"), 1, 8, false, "" },
    { S("a\0b\r\n.\r\n"), S("a\0b\n"), 1, 8, false, "" },
    /* incomplete input */
    { S(""), S(""), 0, 0, false, "" },
    { S("a\r\n.\r"), S("a\n"), 0, 0, false, "" },
    { S("a\r\n."), S("a\n"), 0, 0, false, "" },
    { S("abc\r"), S("abc"), 0, 0, false, "" },
    /* Message-ID in the header section */
    { S("Message-ID: <a@b>\r\n\r\nx\r\n.\r\n"), S("Message-ID: <a@b>\n\nx\n"),
      1, 27, false, "<a@b>" },
    { S("Subject: x\r\nmessage-id:\r\n\t<fold@b> \r\n\r\n.\r\n"),
      S("Subject: x\nmessage-id:\n\t<fold@b> \n\n"), 1, 42, false,
      "<fold@b>" },
    { S("Subject: x\r\n\r\nMessage-ID: <a@b>\r\n.\r\n"),
      S("Subject: x\n\nMessage-ID: <a@b>\n"), 1, 36, false, "" },
    { S("not a header\r\nMessage-ID: <a@b>\r\n.\r\n"),
      S("not a header\nMessage-ID: <a@b>\n"), 1, 36, false, "" },
    { S("Message-Id: <z@b>\r\n.\r\n"), S("Message-Id: <z@b>\n"), 1, 22,
      false, "<z@b>" },
    { S("Message-ID: <1@b>\r\nMessage-ID: <2@b>\r\n\r\n.\r\n"),
      S("Message-ID: <1@b>\nMessage-ID: <2@b>\n\n"), 1, 43, false,
      "<1@b>" },
    { S("Message-ID: <c\0\x7f@b>\r\n.\r\n"), S("Message-ID: <c\0\x7f@b>\n"),
      1, 24, false, "<c??@b>" },
    { S("Subject: x\r\n <continued>\r\nMessage-ID: <d@b>\r\n.\r\n"),
      S("Subject: x\n <continued>\nMessage-ID: <d@b>\n"), 1, 48, false,
      "<d@b>" },
    { S(" leading space\r\nMessage-ID: <a@b>\r\n.\r\n"),
      S(" leading space\nMessage-ID: <a@b>\n"), 1, 38, false, "" },
    { S("Message-ID:   \r\n.\r\n"), S("Message-ID:   \n"), 1, 19, false, "" },
};

struct result {
    buf_t out;
    int rc;
    size_t used;
    bool bare_lf;
    uint64_t size;
    char msgid[SMTPDATA_MSGID_MAX];
};

/* decode - feed in chunks given by next_chunk(); stop at the end */
static void decode(const char *in, size_t len, size_t (*chunk)(size_t, void *),
                   void *arg, struct result *r)
{
    smtpdata_t d;
    size_t off = 0;

    smtpdata_init(&d);
    buf_init(&r->out, 0);
    r->rc = 0;
    r->used = 0;
    while (off < len) {
        size_t n = chunk(len - off, arg), used = 0;
        if (n > len - off)
            n = len - off;
        r->rc = smtpdata_feed(&d, in + off, n, &r->out, &used);
        ck_assert_int_ge(r->rc, 0);
        ck_assert_uint_le(used, n);
        off += used;
        if (r->rc == 1)
            break;
        ck_assert_uint_eq(used, n);
    }
    r->used = off;
    r->bare_lf = d.bare_lf;
    r->size = d.size;
    memcpy(r->msgid, d.message_id, sizeof(r->msgid));
}

static size_t chunk_all(size_t left, void *arg) { (void)arg; return left; }
static size_t chunk_one(size_t left, void *arg) { (void)arg; (void)left; return 1; }
static size_t chunk_split(size_t left, void *arg)
{
    size_t *first = arg, n = *first ? *first : left;
    *first = 0;
    return n;
}
static size_t chunk_random(size_t left, void *arg)
{
    unsigned *seed = arg;
    *seed = *seed * 1103515245u + 12345u;
    return 1 + (*seed >> 16) % (left < 7 ? left : 7);
}

/* the size of decoded content as SIZE= counts it: each LF stands for CR LF */
static uint64_t rfc1870_size(const char *p, size_t n)
{
    uint64_t size = n;

    for (size_t i = 0; i < n; i++)
        size += p[i] == '\n';
    return size;
}

static void check_result(const struct data_case *c, const struct result *r,
                         const char *how)
{
    size_t used = c->rc == 1 ? c->used : c->in_len;

    ck_assert_msg(r->rc == c->rc, "%s: rc %d", how, r->rc);
    ck_assert_msg(r->used == used, "%s: used %zu != %zu", how, r->used, used);
    ck_assert_msg(r->out.len == c->out_len
                  && memcmp(r->out.data ? r->out.data : "", c->out,
                            c->out_len) == 0,
                  "%s: output differs (len %zu, want %zu)", how, r->out.len,
                  c->out_len);
    ck_assert_msg(r->size == rfc1870_size(c->out, c->out_len), "%s: size %llu",
                  how, (unsigned long long)r->size);
    ck_assert_msg(r->bare_lf == c->bare_lf, "%s: bare_lf", how);
    ck_assert_msg(strcmp(r->msgid, c->msgid) == 0, "%s: msgid '%s'", how,
                  r->msgid);
}

START_TEST(test_cases)
{
    const struct data_case *c = &cases[_i];
    struct result r;

    decode(c->in, c->in_len, chunk_all, NULL, &r);
    check_result(c, &r, "whole");
    buf_free(&r.out);
    decode(c->in, c->in_len, chunk_one, NULL, &r);
    check_result(c, &r, "bytes");
    buf_free(&r.out);
    for (size_t k = 1; k < c->in_len; k++) {
        size_t first = k;
        decode(c->in, c->in_len, chunk_split, &first, &r);
        check_result(c, &r, "split");
        buf_free(&r.out);
    }
    for (unsigned seed = 1; seed < 50; seed++) {
        unsigned s = seed;
        decode(c->in, c->in_len, chunk_random, &s, &r);
        check_result(c, &r, "random");
        buf_free(&r.out);
    }
}
END_TEST

START_TEST(test_done_stays_done)
{
    smtpdata_t d;
    buf_t out;
    size_t used;

    smtpdata_init(&d);
    buf_init(&out, 0);
    ck_assert_int_eq(smtpdata_feed(&d, S(".\r\n"), &out, &used), 1);
    ck_assert_int_eq(smtpdata_feed(&d, S("more\r\n"), &out, &used), 1);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&out);
}
END_TEST

START_TEST(test_output_cap)
{
    smtpdata_t d;
    buf_t out;
    size_t used;

    smtpdata_init(&d);
    buf_init(&out, 4);
    ck_assert_int_eq(smtpdata_feed(&d, S("abcdefgh\r\n.\r\n"), &out, &used), -1);
    buf_free(&out);
}
END_TEST

/* a large message: size counts decoded bytes with CR LF line ends (RFC
   1870, what SIZE= declares), long lines are fine */
START_TEST(test_size_large)
{
    smtpdata_t d;
    buf_t out;
    size_t used, total = 0;
    char line[1002];
    int rc = 0;

    memset(line, 'x', 1000);
    line[1000] = '\r';
    line[1001] = '\n';
    smtpdata_init(&d);
    buf_init(&out, 4096);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(smtpdata_feed(&d, line, sizeof(line), &out, &used), 0);
        total += out.len;
        buf_reset(&out);
    }
    rc = smtpdata_feed(&d, S(".\r\n"), &out, &used);
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(d.size, 1002u * 1000u);
    ck_assert_uint_eq(total, 1001u * 1000u);
    ck_assert(!smtpdata_has_message_id(&d));
    buf_free(&out);
}
END_TEST

/* an over-long header is content but not examined */
START_TEST(test_long_header)
{
    smtpdata_t d;
    buf_t in, out;
    size_t used;

    buf_init(&in, 0);
    buf_init(&out, 0);
    buf_puts(&in, "Message-ID: <");
    for (int i = 0; i < 3000; i++)
        buf_putc(&in, 'a');
    buf_puts(&in, "@b>\r\n.\r\n");
    smtpdata_init(&d);
    ck_assert_int_eq(smtpdata_feed(&d, in.data, in.len, &out, &used), 1);
    ck_assert_uint_eq(used, in.len);
    ck_assert_uint_eq(out.len, in.len - 4);
    ck_assert(smtpdata_has_message_id(&d));
    ck_assert_uint_eq(strlen(d.message_id), SMTPDATA_MSGID_MAX - 1);
    buf_free(&in);
    buf_free(&out);
}
END_TEST

/* Reference model of the decoder, written the simple way: DATA ends at
   the first "\r\n.\r\n" of "\r\n" + input; the content before it is cut
   at every LF; a CR before the LF goes, a lone "." line stays, otherwise
   a leading dot goes. Returns the end offset in input, or -1. (No Check
   asserts in here: they are far too slow for the exhaustive loop.) */
static long model_decode(const char *in, size_t n, buf_t *out)
{
    char tmp[64];
    long end = -1;
    size_t content, b = 0;

    memcpy(tmp, "\r\n", 2);
    memcpy(tmp + 2, in, n);
    for (size_t i = 0; i + 5 <= n + 2; i++) {
        if (memcmp(tmp + i, "\r\n.\r\n", 5) == 0) {
            end = (long)i + 5 - 2;
            break;
        }
    }
    /* the CR LF before the dot is content; for "." CR LF as the very
       first line it is the virtual one in front */
    content = end < 0 ? n : (size_t)end - 3;
    for (size_t i = 0; i < content; i++) {
        if (in[i] != '\n')
            continue;
        size_t len = i - b;
        const char *line = in + b;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > 1 && line[0] == '.') {
            line++;
            len--;
        }
        (void)buf_append(out, line, len);
        (void)buf_putc(out, '\n');
        b = i + 1;
    }
    return end;
}

/* feed in chunks of step bytes; returns the end offset or -1 */
static long quick_decode(const char *in, size_t n, size_t step, buf_t *out)
{
    smtpdata_t d;
    size_t off = 0;

    smtpdata_init(&d);
    while (off < n) {
        size_t k = n - off < step ? n - off : step, used = 0;
        int rc = smtpdata_feed(&d, in + off, k, out, &used);
        off += used;
        if (rc == 1)
            return (long)off;
        if (rc < 0 || used != k)
            return -2;
    }
    return -1;
}

/* Every input of up to 9 bytes over { CR, LF, ".", "x" }: DATA ends
   exactly where "\r\n.\r\n" first appears (no other spelling ends it),
   whole and byte by byte, and the content matches the model. */
START_TEST(test_smuggling_exhaustive)
{
    static const char alpha[] = { '\r', '\n', '.', 'x' };
    char in[9];
    buf_t want, got;

    buf_init(&want, 0);
    buf_init(&got, 0);
    for (size_t len = 0; len <= sizeof(in); len++) {
        unsigned long combos = 1ul << (2 * len);
        for (unsigned long v = 0; v < combos; v++) {
            for (size_t i = 0; i < len; i++)
                in[i] = alpha[(v >> (2 * i)) & 3];
            buf_reset(&want);
            long end = model_decode(in, len, &want);
            for (size_t step = 1; step <= len; step += len > 1 ? len - 1 : 1) {
                buf_reset(&got);
                long e = quick_decode(in, len, step, &got);
                if (e != end)
                    ck_abort_msg("len %zu v %lu step %zu: end %ld, model %ld",
                                 len, v, step, e, end);
                if (end >= 0 && (got.len != want.len
                                 || (want.len > 0
                                     && memcmp(got.data, want.data,
                                               want.len) != 0)))
                    ck_abort_msg("len %zu v %lu step %zu: content", len, v,
                                 step);
            }
        }
    }
    buf_free(&want);
    buf_free(&got);
}
END_TEST

/* BDAT: every input of up to 9 bytes over { CR, LF, ".", "x" }, in
   chunks of any size: nothing ends the data, no dot is removed, CR LF
   becomes LF, a bare CR (also a last one) stays, a bare LF is flagged,
   and the size counts every line end as two octets */
START_TEST(test_chunked_exhaustive)
{
    static const char alpha[] = { '\r', '\n', '.', 'x' };
    char in[9];
    buf_t want, got;

    buf_init(&want, 0);
    buf_init(&got, 0);
    for (size_t len = 0; len <= sizeof(in); len++) {
        unsigned long combos = 1ul << (2 * len);
        for (unsigned long v = 0; v < combos; v++) {
            bool bare_lf = false;
            uint64_t size = 0;

            for (size_t i = 0; i < len; i++)
                in[i] = alpha[(v >> (2 * i)) & 3];
            buf_reset(&want);
            for (size_t i = 0; i < len; i++) {
                if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
                    (void)buf_putc(&want, '\n');
                    size += 2;
                    i++;
                } else {
                    if (in[i] == '\n') {
                        bare_lf = true;
                        size++;
                    }
                    (void)buf_putc(&want, in[i]);
                    size++;
                }
            }
            for (size_t step = 1; step <= len; step += len > 1 ? len - 1 : 1) {
                smtpdata_t d;

                smtpdata_init_chunked(&d);
                buf_reset(&got);
                for (size_t off = 0; off < len; off += step) {
                    size_t k = len - off < step ? len - off : step, used = 0;
                    if (smtpdata_feed(&d, in + off, k, &got, &used) != 0
                        || used != k)
                        ck_abort_msg("len %zu v %lu step %zu: feed", len, v,
                                     step);
                }
                if (smtpdata_end(&d, &got) != 0)
                    ck_abort_msg("len %zu v %lu: end", len, v);
                if (got.len != want.len
                    || (want.len > 0 && memcmp(got.data, want.data, want.len) != 0))
                    ck_abort_msg("len %zu v %lu step %zu: content", len, v, step);
                if (d.bare_lf != bare_lf || d.size != size)
                    ck_abort_msg("len %zu v %lu step %zu: bare_lf %d size %llu",
                                 len, v, step, d.bare_lf,
                                 (unsigned long long)d.size);
            }
        }
    }
    buf_free(&want);
    buf_free(&got);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("smtpdata");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_cases, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, test_done_stays_done);
    tcase_add_test(tc, test_output_cap);
    tcase_add_test(tc, test_size_large);
    tcase_add_test(tc, test_long_header);
    tcase_add_test(tc, test_smuggling_exhaustive);
    tcase_add_test(tc, test_chunked_exhaustive);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

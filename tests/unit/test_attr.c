/*
 * test_attr - unit tests for the IPC attribute codec (lib/attr.c):
 * round trips, incremental decoding, hostile inputs, and the fd helpers
 * over a socketpair (timeouts, EOF, several messages in one read).
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/attr.h"
#include "util/buf.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------ */

static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void list_equal(const attr_list_t *a, const attr_list_t *b)
{
    ck_assert_uint_eq(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        ck_assert_str_eq(a->items[i].name, b->items[i].name);
        ck_assert_str_eq(a->items[i].value, b->items[i].value);
    }
}

/* builders for round-trip lists */
static void build_empty(attr_list_t *l) { (void)l; }

static void build_simple(attr_list_t *l)
{
    attr_add(l, "request", "deliver");
    attr_add(l, "queue_id", "4Zx2KbQ1vNz");
    attr_add(l, "empty", "");
    attr_add(l, "request", "duplicate");
    attr_add_long(l, "size", -1234567);
}

static void build_many(attr_list_t *l)
{
    for (int i = 0; i < ATTR_MAX_COUNT; i++) {
        char name[32], value[32];

        snprintf(name, sizeof(name), "n_%d", i);
        snprintf(value, sizeof(value), "value %d", i * 7);
        attr_add(l, name, value);
    }
}

static void build_allbytes(attr_list_t *l)
{
    char v[256];

    for (int i = 1; i < 256; i++)
        v[i - 1] = (char)i;
    v[255] = '\0';
    attr_add(l, "bytes", v);
    attr_add(l, "utf8", "gr\xc3\xbc\xc3\x9f dich \xe2\x82\xac");
}

static void build_maxima(attr_list_t *l)
{
    char *name = repeat('z', ATTR_MAX_NAME);
    char *value = repeat('v', ATTR_MAX_VALUE);

    attr_add(l, name, value);
    attr_add(l, "a_0", value);
    attr_add(l, "a_1", value);
    free(name);
    free(value);
}

/* exactly ATTR_MAX_MSG bytes on the wire */
static void build_exact_max(attr_list_t *l)
{
    /* 3 x ("aN\0" + 65536 + "\0") = 196614; rest in a 4th attribute */
    char *value = repeat('x', ATTR_MAX_VALUE);
    size_t used = 3 * (3 + ATTR_MAX_VALUE + 1) + 1;
    size_t last = ATTR_MAX_MSG - used - 4;   /* "a3\0" + value + "\0" */

    attr_add(l, "a0", value);
    attr_add(l, "a1", value);
    attr_add(l, "a2", value);
    value[last] = '\0';
    attr_add(l, "a3", value);
    free(value);
}

static const struct {
    const char *what;
    void (*build)(attr_list_t *);
} roundtrips[] = {
    { "empty list", build_empty },
    { "simple", build_simple },
    { "ATTR_MAX_COUNT attributes", build_many },
    { "all byte values 1..255", build_allbytes },
    { "maximal name and values", build_maxima },
    { "exactly ATTR_MAX_MSG bytes", build_exact_max },
};

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    attr_list_t in, out;
    buf_t wire = BUF_INIT;
    size_t used = 0;
    const char *err = NULL;

    attr_list_init(&in);
    attr_list_init(&out);
    roundtrips[_i].build(&in);
    ck_assert_msg(attr_encode(&in, &wire) == 0, "%s: encode", roundtrips[_i].what);
    if (_i == 5)
        ck_assert_uint_eq(wire.len, ATTR_MAX_MSG);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &out, &used, &err), 1);
    ck_assert_uint_eq(used, wire.len);
    list_equal(&in, &out);
    attr_list_free(&in);
    attr_list_free(&out);
    buf_free(&wire);
}
END_TEST

START_TEST(test_bytewise)
{
    attr_list_t in, out;
    buf_t wire = BUF_INIT;
    size_t used = 0;
    const char *err = NULL;

    attr_list_init(&in);
    attr_list_init(&out);
    build_simple(&in);
    build_allbytes(&in);
    ck_assert_int_eq(attr_encode(&in, &wire), 0);
    for (size_t n = 0; n < wire.len; n++)
        ck_assert_msg(attr_decode(wire.data, n, &out, &used, &err) == 0,
                      "prefix of %zu bytes not 0", n);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &out, &used, &err), 1);
    ck_assert_uint_eq(used, wire.len);
    list_equal(&in, &out);
    attr_list_free(&in);
    attr_list_free(&out);
    buf_free(&wire);
}
END_TEST

START_TEST(test_back_to_back)
{
    attr_list_t a, b, out;
    buf_t wire = BUF_INIT;
    size_t used = 0, first;
    const char *err = NULL;

    attr_list_init(&a);
    attr_list_init(&b);
    attr_list_init(&out);
    build_simple(&a);
    attr_add(&b, "status", "0");
    ck_assert_int_eq(attr_encode(&a, &wire), 0);
    first = wire.len;
    ck_assert_int_eq(attr_encode(&b, &wire), 0);
    ck_assert_int_eq(attr_encode(&a, &wire), 0);

    ck_assert_int_eq(attr_decode(wire.data, wire.len, &out, &used, &err), 1);
    ck_assert_uint_eq(used, first);
    list_equal(&a, &out);
    buf_consume(&wire, used);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &out, &used, &err), 1);
    list_equal(&b, &out);
    buf_consume(&wire, used);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, &out, &used, &err), 1);
    ck_assert_uint_eq(used, wire.len);
    list_equal(&a, &out);
    attr_list_free(&a);
    attr_list_free(&b);
    attr_list_free(&out);
    buf_free(&wire);
}
END_TEST

START_TEST(test_get)
{
    attr_list_t l;
    long v = 0;

    attr_list_init(&l);
    attr_add(&l, "n", "42");
    attr_add(&l, "n", "43");
    attr_add(&l, "neg", "-7");
    attr_add(&l, "junk", "12x");
    attr_add(&l, "big", "99999999999999999999999");
    attr_add(&l, "empty", "");
    ck_assert_str_eq(attr_get(&l, "n"), "42");
    ck_assert_ptr_null(attr_get(&l, "missing"));
    ck_assert_int_eq(attr_get_long(&l, "n", 0, 100, &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(attr_get_long(&l, "neg", -10, 10, &v), 0);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(attr_get_long(&l, "n", 0, 41, &v), -1);
    ck_assert_int_eq(attr_get_long(&l, "junk", 0, 100, &v), -1);
    ck_assert_int_eq(attr_get_long(&l, "big", 0, 100, &v), -1);
    ck_assert_int_eq(attr_get_long(&l, "empty", 0, 100, &v), -1);
    ck_assert_int_eq(attr_get_long(&l, "missing", 0, 100, &v), -1);
    attr_list_reset(&l);
    ck_assert_uint_eq(l.count, 0);
    ck_assert_ptr_null(attr_get(&l, "n"));
    attr_list_free(&l);
}
END_TEST

/* ---- hostile encoder input ---------------------------------------------- */

START_TEST(test_encode_limits)
{
    static const char *bad_names[] = {
        "", "Upper", "with space", "dash-name", "dot.name", "tab\t",
        "\xc3\xbc", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    buf_t wire = BUF_INIT;
    attr_list_t l;
    char *big;

    attr_list_init(&l);
    buf_puts(&wire, "keep");
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        attr_list_reset(&l);
        attr_add(&l, "ok", "1");
        attr_add(&l, bad_names[i], "v");
        ck_assert_msg(attr_encode(&l, &wire) == -1, "name '%s'", bad_names[i]);
        ck_assert_uint_eq(wire.len, 4);
    }
    attr_list_reset(&l);
    big = repeat('v', ATTR_MAX_VALUE + 1);
    attr_add(&l, "big", big);
    ck_assert_int_eq(attr_encode(&l, &wire), -1);
    free(big);
    attr_list_reset(&l);
    build_many(&l);
    attr_add(&l, "one_more", "x");
    ck_assert_int_eq(attr_encode(&l, &wire), -1);
    attr_list_reset(&l);
    build_exact_max(&l);
    attr_add(&l, "b", "");
    ck_assert_int_eq(attr_encode(&l, &wire), -1);
    ck_assert_uint_eq(wire.len, 4);
    /* a capped output buffer: failure leaves it unchanged */
    buf_t small;
    buf_init(&small, 8);
    attr_list_reset(&l);
    attr_add(&l, "name", "value");
    ck_assert_int_eq(attr_encode(&l, &small), -1);
    ck_assert_uint_eq(small.len, 0);
    buf_free(&small);
    attr_list_free(&l);
    buf_free(&wire);
}
END_TEST

/* ---- hostile decoder input ---------------------------------------------- */

static void gen_long_name(buf_t *b)
{
    for (int i = 0; i <= ATTR_MAX_NAME; i++)
        buf_putc(b, 'n');
    buf_append(b, "\0v\0\0", 4);
}

static void gen_long_name_partial(buf_t *b)
{
    for (int i = 0; i <= ATTR_MAX_NAME; i++)
        buf_putc(b, 'n');
}

static void gen_long_value(buf_t *b)
{
    buf_append(b, "v\0", 2);
    for (int i = 0; i <= ATTR_MAX_VALUE; i++)
        buf_putc(b, 'x');
}

static void gen_too_many(buf_t *b)
{
    for (int i = 0; i <= ATTR_MAX_COUNT; i++)
        buf_append(b, "a\0b\0", 4);
    buf_putc(b, '\0');
}

static void gen_too_many_partial(buf_t *b)
{
    for (int i = 0; i < ATTR_MAX_COUNT; i++)
        buf_append(b, "a\0b\0", 4);
    buf_putc(b, 'a');
}

static void gen_max_count_ok(buf_t *b)
{
    for (int i = 0; i < ATTR_MAX_COUNT; i++)
        buf_append(b, "a\0b\0", 4);
    buf_putc(b, '\0');
}

/* attributes of maximal values until the message is over ATTR_MAX_MSG */
static void gen_too_long(buf_t *b)
{
    for (int k = 0; k < 4; k++) {
        buf_append(b, "v\0", 2);
        for (int i = 0; i < ATTR_MAX_VALUE; i++)
            buf_putc(b, 'x');
        buf_putc(b, '\0');
    }
    buf_putc(b, '\0');
}

/* a prefix that cannot be completed within ATTR_MAX_MSG */
static void gen_too_long_partial(buf_t *b)
{
    for (int k = 0; k < 3; k++) {
        buf_append(b, "v\0", 2);
        for (int i = 0; i < ATTR_MAX_VALUE; i++)
            buf_putc(b, 'x');
        buf_putc(b, '\0');
    }
    buf_append(b, "v\0", 2);
    while (b->len < ATTR_MAX_MSG - 1)
        buf_putc(b, 'x');
}

/* the same, one byte shorter: still completable ("\0\0") */
static void gen_long_but_ok_partial(buf_t *b)
{
    gen_too_long_partial(b);
    buf_truncate(b, b->len - 1);
}

#define RAW(s) s, sizeof(s) - 1, NULL
#define GEN(f) NULL, 0, f

static const struct {
    const char *what;
    const char *data;
    size_t len;
    void (*gen)(buf_t *);
    int expect;
    size_t consumed;     /* when expect == 1 */
} hostile[] = {
    { "empty input", RAW(""), 0, 0 },
    { "lone terminator", RAW("\0"), 1, 1 },
    { "name only", RAW("abc"), 0, 0 },
    { "name, no value", RAW("abc\0"), 0, 0 },
    { "missing terminator", RAW("abc\0def\0"), 0, 0 },
    { "complete + trailing", RAW("a\0b\0\0garbage"), 1, 5 },
    { "uppercase name", RAW("Abc\0v\0\0"), -1, 0 },
    { "uppercase partial", RAW("aB"), -1, 0 },
    { "space in name", RAW("a b\0v\0\0"), -1, 0 },
    { "dash in name", RAW("a-b\0v\0\0"), -1, 0 },
    { "high byte in name", RAW("a\xff\0v\0\0"), -1, 0 },
    { "newline in name", RAW("a\n\0v\0\0"), -1, 0 },
    { "second name bad", RAW("a\0v\0B\0w\0\0"), -1, 0 },
    { "name too long", GEN(gen_long_name), -1, 0 },
    { "name too long partial", GEN(gen_long_name_partial), -1, 0 },
    { "value too long", GEN(gen_long_value), -1, 0 },
    { "too many attrs", GEN(gen_too_many), -1, 0 },
    { "too many attrs partial", GEN(gen_too_many_partial), -1, 0 },
    { "ATTR_MAX_COUNT attrs", GEN(gen_max_count_ok), 1, ATTR_MAX_COUNT * 4 + 1 },
    { "message too long", GEN(gen_too_long), -1, 0 },
    { "too long partial", GEN(gen_too_long_partial), -1, 0 },
    { "long but completable", GEN(gen_long_but_ok_partial), 0, 0 },
};

START_TEST(test_hostile)
{
    buf_t in = BUF_INIT;
    attr_list_t out;
    size_t used = 0;
    const char *err = NULL;
    int r;

    attr_list_init(&out);
    attr_add(&out, "stale", "entry");
    if (hostile[_i].gen)
        hostile[_i].gen(&in);
    else
        buf_append(&in, hostile[_i].data, hostile[_i].len);
    r = attr_decode(in.data ? in.data : "", in.len, &out, &used, &err);
    ck_assert_msg(r == hostile[_i].expect, "%s: got %d want %d",
                  hostile[_i].what, r, hostile[_i].expect);
    if (r == 1)
        ck_assert_uint_eq(used, hostile[_i].consumed);
    else
        ck_assert_uint_eq(out.count, 0);
    if (r == -1) {
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(*err != '\0', "%s: empty error", hostile[_i].what);
    }
    attr_list_free(&out);
    buf_free(&in);
}
END_TEST

/* ---- fd helpers ----------------------------------------------------------- */

static void make_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

START_TEST(test_fd_roundtrip)
{
    attr_list_t in, out;
    buf_t inbuf = BUF_INIT;
    const char *err = NULL;
    int sv[2];
    pid_t pid;
    int status;

    make_pair(sv);
    attr_list_init(&in);
    attr_list_init(&out);
    build_maxima(&in);          /* ~200 KB: forces partial writes */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        attr_list_t small;
        attr_list_init(&small);
        attr_add(&small, "status", "ok");
        _exit(attr_write_fd(sv[1], &in, 10) == 0
              && attr_write_fd(sv[1], &small, 10) == 0 ? 0 : 1);
    }
    close(sv[1]);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 10, &err), 1);
    list_equal(&in, &out);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 10, &err), 1);
    ck_assert_str_eq(attr_get(&out, "status"), "ok");
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 10, &err), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[0]);
    attr_list_free(&in);
    attr_list_free(&out);
    buf_free(&inbuf);
}
END_TEST

/* several messages arriving in one read: the rest waits in inbuf */
START_TEST(test_fd_pipelined)
{
    attr_list_t a, out;
    buf_t wire = BUF_INIT, inbuf = BUF_INIT;
    const char *err = NULL;
    int sv[2];

    make_pair(sv);
    attr_list_init(&a);
    attr_list_init(&out);
    for (int i = 0; i < 3; i++) {
        attr_list_reset(&a);
        attr_add_long(&a, "seq", i);
        ck_assert_int_eq(attr_encode(&a, &wire), 0);
    }
    buf_append(&wire, "par", 3);            /* start of a 4th message */
    ck_assert_int_eq(write_full(sv[1], wire.data, wire.len), 0);
    for (long i = 0; i < 3; i++) {
        long v = -1;

        ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 5, &err), 1);
        ck_assert_int_eq(attr_get_long(&out, "seq", 0, 10, &v), 0);
        ck_assert_int_eq(v, i);
    }
    ck_assert_uint_eq(inbuf.len, 3);
    ck_assert_int_eq(write_full(sv[1], "t\0x\0\0", 5), 0);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 5, &err), 1);
    ck_assert_str_eq(attr_get(&out, "part"), "x");
    ck_assert_uint_eq(inbuf.len, 0);
    /* EOF in the middle of a message is an error, not a clean EOF */
    ck_assert_int_eq(write_full(sv[1], "half\0", 5), 0);
    close(sv[1]);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 5, &err), -1);
    ck_assert_ptr_nonnull(err);
    close(sv[0]);
    attr_list_free(&a);
    attr_list_free(&out);
    buf_free(&wire);
    buf_free(&inbuf);
}
END_TEST

START_TEST(test_fd_read_timeout)
{
    attr_list_t out;
    buf_t inbuf = BUF_INIT;
    const char *err = NULL;
    uint64_t t0;
    int sv[2];
    int status;

    make_pair(sv);
    attr_list_init(&out);
    /* silent peer: waits its timeout (at least), then says so */
    t0 = time_mono_msec();
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 1, &err), -1);
    ck_assert_uint_ge(time_mono_msec() - t0, 900);
    ck_assert_str_eq(err, "timeout");
    /* a slow-drip peer is bounded by the same total deadline: it sends a
       byte of a value every 20 ms for 30 s (the pacing is the behaviour
       under test), and the 1 s read gives up while it is still sending.
       A deadline restarted by each byte would read until the drip ends. */
    ck_assert_int_eq(write_full(sv[1], "k\0v", 3), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        for (int i = 0; i < 1500; i++) {
            if (write(sv[1], "v", 1) != 1)
                _exit(1);
            usleep(20 * 1000);
        }
        _exit(0);
    }
    buf_reset(&inbuf);
    err = NULL;
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 1, &err), -1);
    ck_assert_str_eq(err, "timeout");
    ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0,
                  "the read outlasted a 30 s drip with a 1 s timeout");
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(sv[0]);
    close(sv[1]);
    attr_list_free(&out);
    buf_free(&inbuf);
}
END_TEST

START_TEST(test_fd_garbage)
{
    attr_list_t out;
    buf_t inbuf = BUF_INIT;
    const char *err = NULL;
    int sv[2];

    make_pair(sv);
    attr_list_init(&out);
    ck_assert_int_eq(write_full(sv[1], "HELO there\r\n", 12), 0);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 5, &err), -1);
    ck_assert_str_eq(err, "invalid character in attribute name");
    close(sv[0]);
    close(sv[1]);
    attr_list_free(&out);
    buf_free(&inbuf);
}
END_TEST

START_TEST(test_fd_write_timeout)
{
    attr_list_t in;
    uint64_t t0 = 0;
    int sv[2];
    int r = 0;

    make_pair(sv);
    attr_list_init(&in);
    build_maxima(&in);
    /* the peer never reads: the socket buffer fills up, and the write
       that cannot finish fails after (not before) its timeout; one that
       blocked for good would hit the test's timeout */
    for (int i = 0; i < 64 && r == 0; i++) {
        t0 = time_mono_msec();
        r = attr_write_fd(sv[0], &in, 1);
    }
    int saved = errno;
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(saved, ETIMEDOUT);
    ck_assert_uint_ge(time_mono_msec() - t0, 900);
    /* a closed peer: EPIPE, not SIGPIPE */
    close(sv[1]);
    ck_assert_int_eq(attr_write_fd(sv[0], &in, 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(sv[0]);
    attr_list_free(&in);
}
END_TEST

START_TEST(test_fd_clean_eof)
{
    attr_list_t out;
    buf_t inbuf = BUF_INIT;
    const char *err = NULL;
    int sv[2];

    make_pair(sv);
    attr_list_init(&out);
    close(sv[1]);
    ck_assert_int_eq(attr_read_fd(sv[0], &inbuf, &out, 1, &err), 0);
    close(sv[0]);
    attr_list_free(&out);
    buf_free(&inbuf);
}
END_TEST

static Suite *attr_suite(void)
{
    Suite *s = suite_create("attr");
    TCase *tc = tcase_create("codec");
    TCase *fd = tcase_create("fd");

    tcase_add_loop_test(tc, test_roundtrip, 0,
                        sizeof(roundtrips) / sizeof(roundtrips[0]));
    tcase_add_test(tc, test_bytewise);
    tcase_add_test(tc, test_back_to_back);
    tcase_add_test(tc, test_get);
    tcase_add_test(tc, test_encode_limits);
    tcase_add_loop_test(tc, test_hostile, 0,
                        sizeof(hostile) / sizeof(hostile[0]));
    suite_add_tcase(s, tc);
    tcase_add_test(fd, test_fd_roundtrip);
    tcase_add_test(fd, test_fd_pipelined);
    tcase_add_test(fd, test_fd_read_timeout);
    tcase_add_test(fd, test_fd_garbage);
    tcase_add_test(fd, test_fd_write_timeout);
    tcase_add_test(fd, test_fd_clean_eof);
    tcase_set_timeout(fd, 90);
    suite_add_tcase(s, fd);
    return s;
}

int main(void)
{
    /* a regression to plain write() must fail the test, not kill it */
    signal(SIGPIPE, SIG_DFL);
    return tern_check_run(attr_suite(), true);
}

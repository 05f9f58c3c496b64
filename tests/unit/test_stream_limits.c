/* Unit tests for lib/util/stream.c's memory use: an idle stream holds no
   input or output buffer (10,000 idle SMTP clients must not pin 64 KiB
   each), yet input split across reads, and input still unconsumed, is
   kept; plus stream_input_sample. A socketpair per stream, the test is
   the peer. */
#include <check.h>

#include "check_main.h"
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/events.h"
#include "util/stream.h"
#include "util/util.h"

#define NSTREAMS 200

struct peer {
    stream_t *s;
    int fd;                 /* the test's end */
    int lines;
    char last[64];
    bool keep;              /* leave input unconsumed */
};

static void on_read(stream_t *s, void *arg)
{
    struct peer *p = arg;
    const char *line;
    size_t len;
    bool crlf;

    if (p->keep)
        return;
    while (stream_read_line(s, &line, &len, &crlf) == 1) {
        p->lines++;
        if (len >= sizeof(p->last))
            len = sizeof(p->last) - 1;
        memcpy(p->last, line, len);
        p->last[len] = '\0';
    }
}

static const struct stream_handler handler = { on_read, NULL, NULL };

static void peer_open(ev_loop_t *loop, struct peer *p)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(p, 0, sizeof(*p));
    p->fd = sv[1];
    p->s = stream_new(loop, sv[0], 2050, 0, &handler, p);
    ck_assert_ptr_nonnull(p->s);
}

static void pump_until(ev_loop_t *loop, struct peer *p, int n, int lines)
{
    for (int round = 0; round < 100000; round++) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += p[i].lines >= lines;
        if (done == n)
            return;
        ev_loop_run_once(loop, 20);
    }
    ck_abort_msg("lines never arrived");
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* mallinfo2 means nothing under a sanitizer's allocator */
static bool heap_measurable(void)
{
    size_t before = heap_in_use();
    char *p = malloc(1024 * 1024);
    bool ok;

    ck_assert_ptr_nonnull(p);
    p[0] = 1;
    ok = heap_in_use() >= before + 1024 * 1024;
    free(p);
    return ok;
}

START_TEST(test_idle_streams_hold_no_buffers)
{
    static struct peer peers[NSTREAMS];
    ev_loop_t *loop;
    size_t before, idle;

    if (!heap_measurable())
        return;                 /* sanitizer build: nothing to measure */
    loop = ev_loop_new();
    before = heap_in_use();
    for (int i = 0; i < NSTREAMS; i++)
        peer_open(loop, &peers[i]);
    /* each has read, answered and consumed a command: now idle */
    for (int i = 0; i < NSTREAMS; i++) {
        ck_assert_int_eq(write(peers[i].fd, "EHLO x\r\n", 8), 8);
        stream_puts(peers[i].s, "250 ok\r\n");
    }
    pump_until(loop, peers, NSTREAMS, 1);
    for (int i = 0; i < 10; i++)
        ev_loop_run_once(loop, 0);
    idle = heap_in_use() - before;
    /* 64 KiB each would be 12.8 MB; the stream itself is far below 4 KiB */
    ck_assert_msg(idle < (size_t)NSTREAMS * 4096,
                  "%zu bytes for %d idle streams", idle, NSTREAMS);
    for (int i = 0; i < NSTREAMS; i++) {
        stream_close(peers[i].s);
        close(peers[i].fd);
    }
    for (int i = 0; i < 10; i++)
        ev_loop_run_once(loop, 0);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_split_line_survives)
{
    struct peer p;
    ev_loop_t *loop = ev_loop_new();

    peer_open(loop, &p);
    ck_assert_int_eq(write(p.fd, "HEL", 3), 3);
    for (int i = 0; i < 5; i++)
        ev_loop_run_once(loop, 20);
    ck_assert_int_eq(p.lines, 0);
    ck_assert_int_eq(write(p.fd, "O split\r\n", 9), 9);
    pump_until(loop, &p, 1, 1);
    ck_assert_str_eq(p.last, "HELO split");
    /* the buffer went away and comes back for the next line */
    ck_assert_int_eq(write(p.fd, "NOOP\r\n", 6), 6);
    pump_until(loop, &p, 1, 2);
    ck_assert_str_eq(p.last, "NOOP");
    stream_close(p.s);
    close(p.fd);
    ev_loop_run_once(loop, 0);
    ev_loop_free(loop);
}
END_TEST

START_TEST(test_input_sample)
{
    struct peer p;
    ev_loop_t *loop = ev_loop_new();
    char buf[16];
    const char *data;

    peer_open(loop, &p);
    ck_assert_uint_eq(stream_input_sample(p.s, buf, sizeof(buf)), 0);
    /* not read yet: peeked from the socket, which keeps it */
    ck_assert_int_eq(write(p.fd, "EHLO early\r\n", 12), 12);
    ck_assert_uint_eq(stream_input_sample(p.s, buf, 4), 4);
    ck_assert(memcmp(buf, "EHLO", 4) == 0);
    /* read but unconsumed: from the buffer */
    p.keep = true;
    for (int i = 0; i < 5 && stream_peek(p.s, &data) == 0; i++)
        ev_loop_run_once(loop, 20);
    ck_assert_uint_eq(stream_peek(p.s, &data), 12);
    ck_assert_uint_eq(stream_input_sample(p.s, buf, sizeof(buf)), 12);
    ck_assert(memcmp(buf, "EHLO early\r\n", 12) == 0);
    stream_consume(p.s, 12);
    ck_assert_uint_eq(stream_input_sample(p.s, buf, sizeof(buf)), 0);
    stream_close(p.s);
    close(p.fd);
    ev_loop_run_once(loop, 0);
    ev_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream_limits");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idle_streams_hold_no_buffers);
    tcase_add_test(tc, test_split_line_survives);
    tcase_add_test(tc, test_input_sample);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

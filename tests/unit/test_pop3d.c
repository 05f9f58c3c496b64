/*
 * Unit tests for pop3d's session (pop3d/pop3d_session.c), without a
 * socket: golden transcripts (input lines -> exact replies, and what
 * UPDATE did to the mailbox) for every command in TRANSACTION and after
 * QUIT, bad arguments, message numbers 0 / too big / deleted, TOP with 0
 * lines and with more lines than the body, lines starting with '.', a
 * file that has CRLF already, an empty message, a file without a final
 * LF, RSET, QUIT as the only point of deletion, the error limit,
 * overlong and split input, and the RETR conversion cut at every byte.
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* every read() of a message file, counted */
static unsigned read_calls;
static ssize_t test_read(int fd, void *p, size_t n)
{
    read_calls++;
    return read(fd, p, n);
}
#define read test_read
#include "../../pop3d/pop3d_session.c"
#undef read

/* ---- the fixture: a directory of message files and a listing ---------- */

struct fixture_msg {
    const char *name;
    const char *flags;
    const char *text;
};

static const struct fixture_msg fixture_msgs[] = {
    { "m1", "", "Subject: one\n\nHello\n.dot line\n..two dots\nlast\n" },
    { "m2", "", "Subject: two\r\n\r\nCRLF body\r\n.x\r\n" },
    { "m3", "", "" },
    { "m4", "", "Subject: four\n\nno newline at end" },
    { "m5", "S", "Subject: hdr\n" },
};
#define NMSG (sizeof(fixture_msgs) / sizeof(fixture_msgs[0]))

static char dir[64];
static int dir_fd = -1;
static struct maildir_listing listing;
static buf_t written;           /* everything the session wrote */
static unsigned write_calls;
static int write_fail_after = -1;  /* >= 0: that many writes, then fail */
static char events[4096];       /* "unlink m2;flag m1 S;" */
static int unlink_errno;        /* != 0: unlink fails with it */

/* vsize - LF not after CR counts 2 (the rule maildir_list uses) */
static off_t vsize(const char *t)
{
    off_t n = 0;
    for (size_t i = 0; t[i]; i++)
        n += (t[i] == '\n' && (i == 0 || t[i - 1] != '\r')) ? 2 : 1;
    return n;
}

static void event_add(const char *what, const char *name)
{
    size_t len = strlen(events);
    snprintf(events + len, sizeof(events) - len, "%s %s;", what, name);
}

static int store_open(void *ctx, const struct maildir_msg *m)
{
    (void)ctx;
    return openat(dir_fd, m->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static int store_unlink(void *ctx, const struct maildir_msg *m)
{
    (void)ctx;
    if (unlink_errno != 0) {
        errno = unlink_errno;
        return -1;
    }
    event_add("unlink", m->name);
    if (unlinkat(dir_fd, m->name, 0) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int store_add_flag(void *ctx, struct maildir_msg *m, char flag)
{
    (void)ctx;
    char what[8];
    snprintf(what, sizeof(what), "flag%c", flag);
    event_add(what, m->name);
    size_t len = strlen(m->flags);
    m->flags[len] = flag;
    m->flags[len + 1] = '\0';
    return 0;
}

static const struct pop3d_store test_store = {
    store_open, store_unlink, store_add_flag, NULL
};

static int test_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    if (write_fail_after >= 0 && write_calls >= (unsigned)write_fail_after)
        return -1;
    write_calls++;
    ck_assert_int_eq(buf_append(&written, p, n), 0);
    return 0;
}

static void write_file(const char *name, const char *p, size_t n)
{
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_full(fd, p, n), 0);
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_pop3d.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dir_fd, 0);
    listing.count = NMSG;
    listing.msgs = xcalloc(NMSG, sizeof(*listing.msgs));
    for (size_t i = 0; i < NMSG; i++) {
        const struct fixture_msg *f = &fixture_msgs[i];
        struct maildir_msg *m = &listing.msgs[i];

        write_file(f->name, f->text, strlen(f->text));
        m->sub = MAILDIR_CUR;
        m->name = xstrdup(f->name);
        m->base_len = strlen(f->name);
        snprintf(m->flags, sizeof(m->flags), "%s", f->flags);
        m->uid = (uint32_t)i + 1;
        m->size = (off_t)strlen(f->text);
        m->vsize = vsize(f->text);
        snprintf(m->uidl, sizeof(m->uidl), "uid-%zu", i + 1);
    }
    buf_init(&written, 0);
    write_calls = 0;
    write_fail_after = -1;
    events[0] = '\0';
    unlink_errno = 0;
}

static void teardown(void)
{
    for (size_t i = 0; i < listing.count; i++) {
        (void)unlinkat(dir_fd, listing.msgs[i].name, 0);
        free(listing.msgs[i].name);
    }
    (void)unlinkat(dir_fd, "big", 0);
    free(listing.msgs);
    memset(&listing, 0, sizeof(listing));
    close(dir_fd);
    rmdir(dir);
    buf_free(&written);
}

static pop3d_session_t *session(long error_limit, bool mark_seen)
{
    struct pop3d_params p = { error_limit, mark_seen };
    return pop3d_session_new(&listing, &test_store, test_write, NULL, &p);
}

/* ---- golden transcripts ---------------------------------------------------- */

struct transcript {
    const char *in;
    const char *out;
    enum pop3d_status status;
    const char *events;         /* what UPDATE did */
};

#define CAPA_REPLY "+OK Capability list follows\r\nTOP\r\nUIDL\r\n" \
    "RESP-CODES\r\nPIPELINING\r\nIMPLEMENTATION Tern\r\n.\r\n"
#define M1_CONV "Subject: one\r\n\r\nHello\r\n..dot line\r\n...two dots\r\nlast\r\n"
#define M2_CONV "Subject: two\r\n\r\nCRLF body\r\n..x\r\n"
#define LIST_ALL "+OK 5 messages:\r\n1 52\r\n2 31\r\n3 0\r\n4 34\r\n5 14\r\n.\r\n"
#define UIDL_ALL "+OK\r\n1 uid-1\r\n2 uid-2\r\n3 uid-3\r\n4 uid-4\r\n5 uid-5\r\n.\r\n"
#define BADNUM "-ERR Invalid message number.\r\n"
#define BADARGS "-ERR Invalid arguments.\r\n"
#define DELETED "-ERR Message is deleted.\r\n"
#define MARKED "+OK Marked to be deleted.\r\n"
#define UNKNOWN "-ERR Unknown command.\r\n"
#define LOGGED_IN "-ERR Already logged in.\r\n"
#define BYE "+OK Logging out.\r\n"
#define BYE_DEL "+OK Logging out, messages deleted.\r\n"

static const struct transcript transcripts[] = {
    /* every command, no arguments where they may have none */
    { "CAPA\r\n", CAPA_REPLY, POP3D_CONTINUE, "" },
    { "capa\r\n", CAPA_REPLY, POP3D_CONTINUE, "" },
    { "STAT\r\n", "+OK 5 131\r\n", POP3D_CONTINUE, "" },
    { "LIST\r\n", LIST_ALL, POP3D_CONTINUE, "" },
    { "UIDL\r\n", UIDL_ALL, POP3D_CONTINUE, "" },
    { "NOOP\r\n", "+OK\r\n", POP3D_CONTINUE, "" },
    { "RSET\r\n", "+OK\r\n", POP3D_CONTINUE, "" },
    { "QUIT\r\n", BYE, POP3D_QUIT, "" },
    { "quit\n", BYE, POP3D_QUIT, "" },
    /* with a message number */
    { "LIST 2\r\n", "+OK 2 31\r\n", POP3D_CONTINUE, "" },
    { "LIST 5\r\n", "+OK 5 14\r\n", POP3D_CONTINUE, "" },
    { "UIDL 3\r\n", "+OK 3 uid-3\r\n", POP3D_CONTINUE, "" },
    { "RETR 1\r\n", "+OK 52 octets\r\n" M1_CONV ".\r\n", POP3D_CONTINUE, "" },
    { "RETR 2\r\n", "+OK 31 octets\r\n" M2_CONV ".\r\n", POP3D_CONTINUE, "" },
    { "RETR 3\r\n", "+OK 0 octets\r\n.\r\n", POP3D_CONTINUE, "" },
    { "RETR 4\r\n", "+OK 34 octets\r\nSubject: four\r\n\r\nno newline at end\r\n.\r\n",
      POP3D_CONTINUE, "" },
    { "RETR 5\r\n", "+OK 14 octets\r\nSubject: hdr\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 0\r\n", "+OK\r\nSubject: one\r\n\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 1\r\n", "+OK\r\nSubject: one\r\n\r\nHello\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 2\r\n", "+OK\r\nSubject: one\r\n\r\nHello\r\n..dot line\r\n.\r\n",
      POP3D_CONTINUE, "" },
    { "TOP 1 4\r\n", "+OK\r\n" M1_CONV ".\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 1000\r\n", "+OK\r\n" M1_CONV ".\r\n", POP3D_CONTINUE, "" },
    { "TOP 2 0\r\n", "+OK\r\nSubject: two\r\n\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 2 1\r\n", "+OK\r\nSubject: two\r\n\r\nCRLF body\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 3 0\r\n", "+OK\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 3 9\r\n", "+OK\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 4 0\r\n", "+OK\r\nSubject: four\r\n\r\n.\r\n", POP3D_CONTINUE, "" },
    { "TOP 4 1\r\n", "+OK\r\nSubject: four\r\n\r\nno newline at end\r\n.\r\n",
      POP3D_CONTINUE, "" },
    { "TOP 5 0\r\n", "+OK\r\nSubject: hdr\r\n.\r\n", POP3D_CONTINUE, "" },
    { "DELE 3\r\n", MARKED, POP3D_CONTINUE, "" },
    /* bad message numbers and arguments */
    { "LIST 0\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST 6\r\n", "-ERR There's no message 6.\r\n", POP3D_CONTINUE, "" },
    { "LIST 1000000000\r\n", "-ERR There's no message 1000000000.\r\n",
      POP3D_CONTINUE, "" },
    { "LIST 1000000001\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST 99999999999999999999999\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST -1\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST +1\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST 1x\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "LIST 1 2\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "UIDL 0\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "UIDL 6\r\n", "-ERR There's no message 6.\r\n", POP3D_CONTINUE, "" },
    { "RETR\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "RETR 0\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "RETR 6\r\n", "-ERR There's no message 6.\r\n", POP3D_CONTINUE, "" },
    { "RETR 1 2\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "DELE\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "DELE 0\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "DELE 6\r\n", "-ERR There's no message 6.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "TOP\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "TOP 0 1\r\n", BADNUM, POP3D_CONTINUE, "" },
    { "TOP 6 1\r\n", "-ERR There's no message 6.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 -1\r\n", "-ERR Invalid number of lines.\r\n", POP3D_CONTINUE, "" },
    { "TOP 1 x\r\n", "-ERR Invalid number of lines.\r\n", POP3D_CONTINUE, "" },
    { "STAT 1\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "NOOP x\r\n", BADARGS, POP3D_CONTINUE, "" },
    { "QUIT now\r\n", BADARGS, POP3D_CONTINUE, "" },
    /* AUTHORIZATION commands: already logged in */
    { "USER demo\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    { "PASS secret words\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    { "APOP demo 0123\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    { "AUTH PLAIN\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    { "AUTH\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    { "STLS\r\n", LOGGED_IN, POP3D_CONTINUE, "" },
    /* unknown and malformed */
    { "UTF8\r\n", UNKNOWN, POP3D_CONTINUE, "" },
    { "XYZZ\r\n", UNKNOWN, POP3D_CONTINUE, "" },
    { "RETRX 1\r\n", UNKNOWN, POP3D_CONTINUE, "" },
    { "\r\n", "-ERR Invalid command syntax.\r\n", POP3D_CONTINUE, "" },
    { "NO\x01OP\r\n", "-ERR Invalid command syntax.\r\n", POP3D_CONTINUE, "" },
    { "STAT\r\r\n", "-ERR Invalid command syntax.\r\n", POP3D_CONTINUE, "" },
    /* deleted messages */
    { "DELE 1\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nRETR 1\r\nTOP 1 0\r\nDELE 1\r\n"
      "LIST\r\nUIDL\r\n",
      MARKED "+OK 4 79\r\n" DELETED DELETED DELETED DELETED DELETED
      "+OK 4 messages:\r\n2 31\r\n3 0\r\n4 34\r\n5 14\r\n.\r\n"
      "+OK\r\n2 uid-2\r\n3 uid-3\r\n4 uid-4\r\n5 uid-5\r\n.\r\n",
      POP3D_CONTINUE, "" },
    /* RSET undoes DELE */
    { "DELE 1\r\nDELE 2\r\nRSET\r\nSTAT\r\nLIST 1\r\nQUIT\r\n",
      MARKED MARKED "+OK\r\n+OK 5 131\r\n+OK 1 52\r\n" BYE, POP3D_QUIT, "" },
    /* QUIT deletes, and only QUIT */
    { "DELE 2\r\nDELE 4\r\nQUIT\r\n", MARKED MARKED BYE_DEL, POP3D_QUIT,
      "unlink m2;unlink m4;" },
    { "DELE 2\r\n", MARKED, POP3D_CONTINUE, "" },
    { "DELE 2\r\nNOOP\r\nRSET\r\nQUIT\r\n", MARKED "+OK\r\n+OK\r\n" BYE,
      POP3D_QUIT, "" },
    /* nothing after QUIT is served */
    { "QUIT\r\nDELE 1\r\nQUIT\r\n", BYE, POP3D_QUIT, "" },
    /* RETR marks seen at QUIT (not deleted ones, not already seen ones,
       not TOP) */
    { "RETR 1\r\nRETR 2\r\nRETR 5\r\nTOP 4 0\r\nDELE 2\r\nQUIT\r\n",
      "+OK 52 octets\r\n" M1_CONV ".\r\n" "+OK 31 octets\r\n" M2_CONV ".\r\n"
      "+OK 14 octets\r\nSubject: hdr\r\n.\r\n"
      "+OK\r\nSubject: four\r\n\r\n.\r\n" MARKED BYE_DEL, POP3D_QUIT,
      "unlink m2;flagS m1;" },
    { "RETR 3\r\n", "+OK 0 octets\r\n.\r\n", POP3D_CONTINUE, "" },
    { "RETR 3\r\nRSET\r\nQUIT\r\n", "+OK 0 octets\r\n.\r\n+OK\r\n" BYE,
      POP3D_QUIT, "" },
    /* line endings and split commands */
    { "STAT\n", "+OK 5 131\r\n", POP3D_CONTINUE, "" },
    { "STAT\r\nNOOP\nSTAT", "+OK 5 131\r\n+OK\r\n", POP3D_CONTINUE, "" },
};

START_TEST(test_transcript)
{
    const struct transcript *t = &transcripts[_i];
    pop3d_session_t *s = session(100, true);

    enum pop3d_status st = pop3d_session_input(s, t->in, strlen(t->in));
    ck_assert_msg(strcmp(buf_str(&written), t->out) == 0,
                  "input %s\ngot:\n%s\nwant:\n%s", t->in, buf_str(&written),
                  t->out);
    ck_assert_int_eq(st, t->status);
    ck_assert_str_eq(events, t->events);
    /* pipelined replies leave in one write */
    ck_assert_uint_le(write_calls, 1);
    pop3d_session_free(s);
    /* freeing a session (a dropped connection) changes nothing */
    ck_assert_str_eq(events, t->events);
}
END_TEST

/* input split at every byte gives the same replies */
START_TEST(test_split_input)
{
    static const char in[] = "STAT\r\nLIST 1\r\nRETR 2\r\nDELE 1\r\nQUIT\r\n";
    static const char want[] = "+OK 5 131\r\n+OK 1 52\r\n+OK 31 octets\r\n"
                               M2_CONV ".\r\n" MARKED BYE_DEL;
    pop3d_session_t *s = session(100, true);

    for (size_t i = 0; i < sizeof(in) - 1; i++)
        pop3d_session_input(s, in + i, 1);
    ck_assert_str_eq(buf_str(&written), want);
    ck_assert_str_eq(events, "unlink m1;flagS m2;");
    pop3d_session_free(s);
}
END_TEST

/* the error limit: the command's reply, then the goodbye, then nothing */
START_TEST(test_error_limit)
{
    static const char in[] = "XYZZ\r\nRETR 0\r\nUSER x\r\nNOOP\r\n";
    pop3d_session_t *s = session(3, true);

    ck_assert_int_eq(pop3d_session_input(s, in, sizeof(in) - 1), POP3D_CLOSE);
    ck_assert_str_eq(buf_str(&written), UNKNOWN BADNUM LOGGED_IN
                     "-ERR Too many bad commands.\r\n");
    ck_assert_str_eq(pop3d_session_close_reason(s), "Too many bad commands");
    ck_assert_uint_eq(pop3d_session_stats(s)->errors, 3);
    ck_assert_int_eq(pop3d_session_input(s, "NOOP\r\n", 6), POP3D_CLOSE);
    ck_assert_str_eq(buf_str(&written), UNKNOWN BADNUM LOGGED_IN
                     "-ERR Too many bad commands.\r\n");
    pop3d_session_free(s);
}
END_TEST

/* good commands do not count */
START_TEST(test_error_limit_good)
{
    pop3d_session_t *s = session(2, true);

    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(pop3d_session_input(s, "NOOP\r\nSTAT\r\n", 12),
                         POP3D_CONTINUE);
    ck_assert_int_eq(pop3d_session_input(s, "X\r\n", 3), POP3D_CONTINUE);
    ck_assert_int_eq(pop3d_session_input(s, "X\r\n", 3), POP3D_CLOSE);
    pop3d_session_free(s);
}
END_TEST

/* lines: the parser's limit, and lines longer than the input buffer */
START_TEST(test_long_lines)
{
    pop3d_session_t *s = session(100, true);
    char *line = xmalloc(3 * POP3D_INPUT_MAX);

    memset(line, 'A', 3 * POP3D_INPUT_MAX);
    memcpy(line, "NOOP ", 5);
    ck_assert_int_eq(pop3d_session_input(s, line, 300), POP3D_CONTINUE);
    ck_assert_int_eq(pop3d_session_input(s, "\r\n", 2), POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), "-ERR Line too long.\r\n");
    buf_reset(&written);
    /* 3 buffers' worth without LF: one reply, then the rest is skipped */
    ck_assert_int_eq(pop3d_session_input(s, line, 3 * POP3D_INPUT_MAX),
                     POP3D_CONTINUE);
    ck_assert_int_eq(pop3d_session_input(s, line, 100), POP3D_CONTINUE);
    ck_assert_int_eq(pop3d_session_input(s, "AA\r\nSTAT\r\n", 10),
                     POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), "-ERR Line too long.\r\n+OK 5 131\r\n");
    buf_reset(&written);
    /* exactly POP3D_INPUT_MAX - 1 bytes and the LF still fit */
    memcpy(line, "XXXX ", 5);
    line[POP3D_INPUT_MAX - 1] = '\n';
    ck_assert_int_eq(pop3d_session_input(s, line, POP3D_INPUT_MAX),
                     POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), "-ERR Line too long.\r\n");
    ck_assert_uint_eq(pop3d_session_stats(s)->errors, 3);
    free(line);
    pop3d_session_free(s);
}
END_TEST

/* a message another client removed meanwhile: -ERR, not counted */
START_TEST(test_vanished)
{
    pop3d_session_t *s = session(1, true);

    ck_assert_int_eq(unlinkat(dir_fd, "m1", 0), 0);
    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\nTOP 1 0\r\n", 17),
                     POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written),
                     "-ERR Message was deleted by another session.\r\n"
                     "-ERR Message was deleted by another session.\r\n");
    ck_assert_int_eq(pop3d_session_input(s, "DELE 1\r\nQUIT\r\n", 14),
                     POP3D_QUIT);
    ck_assert_str_eq(events, "unlink m1;");
    pop3d_session_free(s);
}
END_TEST

/* an unlink that fails at UPDATE: -ERR [SYS/TEMP] */
START_TEST(test_update_fails)
{
    pop3d_session_t *s = session(10, true);

    unlink_errno = EACCES;
    ck_assert_int_eq(pop3d_session_input(s, "DELE 1\r\nQUIT\r\n", 14),
                     POP3D_QUIT);
    ck_assert_str_eq(buf_str(&written), MARKED
                     "-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n");
    ck_assert_uint_eq(pop3d_session_stats(s)->del_count, 0);
    pop3d_session_free(s);
}
END_TEST

/* pop3d_mark_retrieved_seen = no */
START_TEST(test_no_mark_seen)
{
    pop3d_session_t *s = session(10, false);

    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\nQUIT\r\n", 14),
                     POP3D_QUIT);
    ck_assert_str_eq(events, "");
    pop3d_session_free(s);
}
END_TEST

/* the numbers of the log line */
START_TEST(test_stats)
{
    pop3d_session_t *s = session(10, true);

    static const char in[] = "RETR 1\r\nRETR 4\r\nTOP 2 0\r\nDELE 3\r\n"
                             "DELE 5\r\nXYZZ\r\nQUIT\r\n";

    ck_assert_int_eq(pop3d_session_input(s, in, sizeof(in) - 1), POP3D_QUIT);
    const struct pop3d_stats *st = pop3d_session_stats(s);
    ck_assert_uint_eq(st->retr_count, 2);
    ck_assert_uint_eq(st->retr_bytes, 52 + 2 + 34 + 2);
    ck_assert_uint_eq(st->top_count, 1);
    ck_assert_uint_eq(st->top_bytes, 16);
    ck_assert_uint_eq(st->del_count, 2);
    ck_assert_uint_eq(st->msg_count, 5);
    ck_assert_uint_eq(st->mailbox_size, 131);
    ck_assert_uint_eq(st->errors, 1);
    pop3d_session_free(s);
}
END_TEST

/* the client goes away: POP3D_CLOSE, and QUIT's UPDATE does not run
   when the connection is already gone */
START_TEST(test_write_fails)
{
    pop3d_session_t *s = session(10, true);

    write_fail_after = 0;
    ck_assert_int_eq(pop3d_session_input(s, "DELE 1\r\nNOOP\r\n", 14),
                     POP3D_CLOSE);
    ck_assert_str_eq(pop3d_session_close_reason(s), "Connection closed");
    ck_assert_int_eq(pop3d_session_input(s, "QUIT\r\n", 6), POP3D_CLOSE);
    ck_assert_str_eq(events, "");
    ck_assert_int_eq(pop3d_session_flush(s), -1);
    pop3d_session_free(s);
}
END_TEST

/* QUIT's UPDATE has run even when its "+OK" cannot be written: the
   session still counts as logged out */
START_TEST(test_quit_reply_fails)
{
    pop3d_session_t *s = session(10, true);

    ck_assert_int_eq(pop3d_session_input(s, "DELE 1\r\n", 8), POP3D_CONTINUE);
    write_fail_after = 1;
    ck_assert_int_eq(pop3d_session_input(s, "QUIT\r\n", 6), POP3D_QUIT);
    ck_assert_str_eq(events, "unlink m1;");
    ck_assert_uint_eq(pop3d_session_stats(s)->del_count, 1);
    pop3d_session_free(s);
}
END_TEST

/* an empty mailbox */
START_TEST(test_empty_mailbox)
{
    struct maildir_listing empty;
    struct pop3d_params p = { 10, true };
    memset(&empty, 0, sizeof(empty));
    pop3d_session_t *s = pop3d_session_new(&empty, &test_store, test_write,
                                           NULL, &p);
    static const char in[] = "STAT\r\nLIST\r\nUIDL\r\nLIST 1\r\nRETR 1\r\n"
                             "RSET\r\nQUIT\r\n";

    ck_assert_int_eq(pop3d_session_input(s, in, sizeof(in) - 1), POP3D_QUIT);
    ck_assert_str_eq(buf_str(&written),
                     "+OK 0 0\r\n+OK 0 messages:\r\n.\r\n+OK\r\n.\r\n"
                     "-ERR There's no message 1.\r\n"
                     "-ERR There's no message 1.\r\n+OK\r\n" BYE);
    pop3d_session_free(s);
}
END_TEST

/* a message costs one read() when the listing knows its size; a wrong
   size in the name costs the read that sees the end, nothing else */
START_TEST(test_retr_reads)
{
    static const char want[] = "+OK 52 octets\r\n" M1_CONV ".\r\n";
    pop3d_session_t *s = session(10, true);

    read_calls = 0;
    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\n", 8), POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), want);
    ck_assert_uint_eq(read_calls, 1);
    buf_reset(&written);
    read_calls = 0;
    listing.msgs[0].size = 3;
    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\n", 8), POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), want);
    ck_assert_uint_eq(read_calls, 2);
    buf_reset(&written);
    listing.msgs[0].size = 1000;
    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\n", 8), POP3D_CONTINUE);
    ck_assert_str_eq(buf_str(&written), want);
    pop3d_session_free(s);
}
END_TEST

/* hostile soup: random commands, numbers and bytes in random pieces
   (no QUIT); the session survives (the ASan build watches), every batch
   of replies ends with a whole line, and nothing is deleted */
START_TEST(test_random_input)
{
    static const char *words[] = {
        "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET",
        "CAPA", "USER", "PASS", "AUTH", "STLS", "XXXX", "list", "ReTr",
        "", " ", "\x01", "\xff", ".", "0", "1", "5", "6", "-1", "99999999999",
    };
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        pop3d_session_t *s = session(1000, true);
        buf_t in;
        buf_init(&in, 0);
        for (int c = 0; c < 40; c++) {
            int nw = (int)((seed = seed * 1103515245 + 12345) >> 16) % 4;
            for (int w = 0; w <= nw; w++) {
                seed = seed * 1103515245 + 12345;
                buf_puts(&in, words[(seed >> 16) % (sizeof(words) / sizeof(words[0]))]);
                if (w < nw)
                    buf_putc(&in, ' ');
            }
            seed = seed * 1103515245 + 12345;
            buf_puts(&in, (seed >> 16) % 3 ? "\r\n" : "\n");
        }
        size_t off = 0;
        enum pop3d_status st = POP3D_CONTINUE;
        while (off < in.len && st == POP3D_CONTINUE) {
            seed = seed * 1103515245 + 12345;
            size_t k = 1 + (seed >> 16) % 64;
            if (k > in.len - off)
                k = in.len - off;
            st = pop3d_session_input(s, in.data + off, k);
            off += k;
        }
        ck_assert_int_eq(st, POP3D_CONTINUE);
        ck_assert(written.len >= 2 && written.data[written.len - 2] == '\r'
                  && written.data[written.len - 1] == '\n');
        ck_assert_str_eq(events, "");
        pop3d_session_free(s);
        buf_free(&in);
        buf_reset(&written);
    }
}
END_TEST

/* ---- the conversion ---------------------------------------------------------- */

/* conv_ref - the RETR/TOP form of text, byte by byte (the reference) */
static void conv_ref(const char *t, size_t n, long body_lines, buf_t *out)
{
    bool bol = true, in_body = false;
    size_t line_len = 0;

    for (size_t i = 0; i < n; i++) {
        if (bol) {
            if (in_body && body_lines == 0)
                break;
            if (t[i] == '.')
                buf_putc(out, '.');
            bol = false;
            line_len = 0;
        }
        if (t[i] == '\n') {
            bool cr = i > 0 && t[i - 1] == '\r' && line_len > 0;
            if (!cr)
                buf_putc(out, '\r');
            buf_putc(out, '\n');
            bool blank = line_len == 0 || (line_len == 1 && cr);
            if (!in_body && blank)
                in_body = true;
            else if (in_body && body_lines > 0)
                body_lines--;
            bol = true;
        } else {
            buf_putc(out, t[i]);
            line_len++;
        }
    }
    if (!bol) {
        if (out->len == 0 || out->data[out->len - 1] != '\r')
            buf_putc(out, '\r');
        buf_putc(out, '\n');
    }
    buf_append(out, ".\r\n", 3);
}

static const char *conv_texts[] = {
    "",
    "\n",
    "\r\n",
    ".",
    ".\n",
    "..\r\n.\r\n",
    "a\nb\n",
    "a\r\nb",
    "a\r",
    "\r\r\n\n.\n\r.\r\n",
    "H: x\n\n.1\n2\n.3\n",
    "H: x\r\n\r\n.1\r\n2\r\n.3\r\n",
    "H: x\nH2: y\n\r\nbody\r\n\n\n.\n",
    "mixed\r\nends\nhere\r\n\r\n. \n..\nx",
};

/* every text, cut into two pieces at every byte, and in 1-byte pieces,
   with and without TOP limits: the same bytes as the reference; and for
   RETR, the size before stuffing is the listing's vsize */
START_TEST(test_conv_split)
{
    const char *t = conv_texts[_i];
    size_t n = strlen(t);
    static const long limits[] = { -1, 0, 1, 2, 5 };

    for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
        buf_t want, got;
        buf_init(&want, 0);
        conv_ref(t, n, limits[li], &want);
        for (size_t cut = 0; cut <= n + 1; cut++) {
            struct pop3d_conv c;
            buf_init(&got, 0);
            pop3d_conv_init(&c, limits[li]);
            if (cut <= n) {
                ssize_t a = pop3d_conv_block(&c, t, cut, &got);
                ck_assert_int_ge(a, 0);
                if (!c.done)
                    ck_assert_int_ge(pop3d_conv_block(&c, t + cut, n - cut,
                                                      &got), 0);
            } else {
                for (size_t i = 0; i < n && !c.done; i++)
                    ck_assert_int_ge(pop3d_conv_block(&c, t + i, 1, &got), 0);
            }
            ck_assert_int_eq(pop3d_conv_end(&c, &got), 0);
            ck_assert_msg(got.len == want.len
                          && memcmp(got.data, want.data, got.len) == 0,
                          "text %zu limit %ld cut %zu: got [%s] want [%s]",
                          (size_t)_i, limits[li], cut, buf_str(&got),
                          buf_str(&want));
            buf_free(&got);
        }
        if (limits[li] < 0 && n > 0 && t[n - 1] == '\n') {
            size_t dots = 0;
            for (size_t i = 0; i < n; i++)
                dots += t[i] == '.' && (i == 0 || t[i - 1] == '\n');
            ck_assert_uint_eq(want.len - 3 - dots, (size_t)vsize(t));
        }
        buf_free(&want);
    }
}
END_TEST

/* a large message: exact bytes, vsize octets, and few writes (blocks,
   not lines) */
START_TEST(test_retr_big)
{
    buf_t text, want;
    size_t lines = 200000;

    buf_init(&text, 0);
    buf_puts(&text, "Subject: big\n\n");
    for (size_t i = 0; i < lines; i++)
        buf_printf(&text, "%s line %zu of the body\n", i % 7 == 0 ? "." : "", i);
    write_file("big", text.data, text.len);
    free(listing.msgs[0].name);
    listing.msgs[0].name = xstrdup("big");
    listing.msgs[0].vsize = vsize(text.data);

    pop3d_session_t *s = session(10, true);
    ck_assert_int_eq(pop3d_session_input(s, "RETR 1\r\n", 8), POP3D_CONTINUE);
    buf_init(&want, 0);
    buf_printf(&want, "+OK %lld octets\r\n", (long long)listing.msgs[0].vsize);
    conv_ref(text.data, text.len, -1, &want);
    ck_assert_uint_eq(written.len, want.len);
    ck_assert(memcmp(written.data, want.data, want.len) == 0);
    ck_assert_uint_le(write_calls, want.len / POP3D_FLUSH_AT + 2);
    ck_assert_uint_gt(write_calls, 1);
    pop3d_session_free(s);
    buf_free(&text);
    buf_free(&want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pop3d");
    TCase *tc = tcase_create("session");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_transcript, 0,
                        (int)(sizeof(transcripts) / sizeof(transcripts[0])));
    tcase_add_test(tc, test_split_input);
    tcase_add_test(tc, test_error_limit);
    tcase_add_test(tc, test_error_limit_good);
    tcase_add_test(tc, test_long_lines);
    tcase_add_test(tc, test_vanished);
    tcase_add_test(tc, test_update_fails);
    tcase_add_test(tc, test_no_mark_seen);
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_write_fails);
    tcase_add_test(tc, test_quit_reply_fails);
    tcase_add_test(tc, test_empty_mailbox);
    tcase_add_test(tc, test_retr_big);
    tcase_add_test(tc, test_retr_reads);
    tcase_add_test(tc, test_random_input);
    suite_add_tcase(s, tc);

    TCase *conv = tcase_create("conv");
    tcase_add_loop_test(conv, test_conv_split, 0,
                        (int)(sizeof(conv_texts) / sizeof(conv_texts[0])));
    suite_add_tcase(s, conv);
    return tern_check_run(s, true);
}

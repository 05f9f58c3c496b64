/* Unit tests for lib/util/tls.c and TLS in lib/util/stream.c: two streams
   on one event loop, the ends of a socketpair, a server and a client, both
   through the TLS layer, with a self-signed certificate made at test time
   (OpenSSL API, no openssl binary). */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util/buf.h"
#include "util/events.h"
#include "util/stream.h"
#include "util/tls.h"
#include "util/util.h"

/* generous bound for waiting on a condition: reached only when the
   behaviour is broken, never asserted as a time */
#define WAIT_MSEC 20000

static char tmpdir[] = "/tmp/tern-test-tls.XXXXXX";
static char cert_path[256], key_path[256], other_key_path[256];
static char sni_chain_path[256];   /* other key, then its "sni.example" cert */

/* ---- the certificate ---------------------------------------------------------- */

static void write_key(EVP_PKEY *pk, const char *path)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(fclose(fp), 0);
}

/* make_x509 - a self-signed certificate for cn with key pk */
static X509 *make_x509(EVP_PKEY *pk, const char *cn)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, 2), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30));
    ck_assert_int_eq(X509_set_pubkey(x, pk), 1);
    X509_NAME *name = X509_get_subject_name(x);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                     (const unsigned char *)cn, -1, -1, 0), 1);
    ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
    ck_assert_int_gt(X509_sign(x, pk, EVP_sha256()), 0);
    return x;
}

static void make_cert(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    (void)snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    (void)snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    (void)snprintf(other_key_path, sizeof(other_key_path), "%s/other.pem", tmpdir);
    (void)snprintf(sni_chain_path, sizeof(sni_chain_path), "%s/sni.pem", tmpdir);

    EVP_PKEY *pk = EVP_EC_gen("P-256");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(pk);
    ck_assert_ptr_nonnull(other);
    X509 *x = make_x509(pk, "localhost");
    X509 *sx = make_x509(other, "sni.example");

    FILE *fp = fopen(cert_path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(PEM_write_X509(fp, x), 1);
    ck_assert_int_eq(fclose(fp), 0);
    write_key(pk, key_path);
    write_key(other, other_key_path);
    /* chain file: key, then certificate (an EC PARAMETERS block would be
       skipped; a comment line before the first block too) */
    fp = fopen(sni_chain_path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_ge(fputs("the key of sni.example\n", fp), 0);
    ck_assert_int_eq(PEM_write_PrivateKey(fp, other, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(PEM_write_X509(fp, sx), 1);
    ck_assert_int_eq(fclose(fp), 0);
    X509_free(x);
    X509_free(sx);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(other);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_cert(void)
{
    (void)nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- one end ------------------------------------------------------------------- */

struct end {
    const char *name;
    stream_t *s;
    buf_t lines;             /* every line received, each + "\n" */
    int nlines;
    int done;                /* TLS callbacks */
    char error[512];         /* their error ("" = success) */
    int closes;
    enum stream_close_reason why;
    bool close_notify;       /* seen at on_close */
    size_t discarded;        /* stream_tls_discarded after STARTTLS */
    /* behaviour */
    bool echo;               /* write every line back */
    bool starttls_server;    /* "STARTTLS" -> 220, start TLS */
    const char *after_start; /* written right after stream_start_tls */
    bool starttls_client;    /* "220 ..." in plaintext -> start TLS */
    bool raw;                /* count raw bytes, consume when the buffer is full */
    size_t raw_total;        /* raw bytes consumed */
    size_t raw_expect;       /* consume what is there once this much came */
    struct pair *pair;
};

struct pair {
    ev_loop_t *loop;
    tls_ctx_t *sctx;
    tls_ctx_t *cctx;
    struct end srv;
    struct end cli;
};

static void end_done(stream_t *s, void *arg, const char *error)
{
    struct end *e = arg;
    e->done++;
    (void)str_copy(e->error, error != NULL ? error : "", sizeof(e->error));
    if (error != NULL)
        e->s = NULL;   /* closed by the stream */
    (void)s;
}

static void end_on_read(stream_t *s, void *arg)
{
    struct end *e = arg;
    if (e->raw) {
        const char *p;
        size_t n = stream_peek(s, &p);
        /* hold everything until the input buffer is full (so OpenSSL
           keeps the rest of a record), or until all of it came */
        if (n >= 64 * 1024 || e->raw_total + n >= e->raw_expect) {
            e->raw_total += n;
            stream_consume(s, n);
        }
        return;
    }
    const char *line;
    size_t len;
    bool crlf;
    int r;
    while ((r = stream_read_line(s, &line, &len, &crlf)) != 0) {
        ck_assert_int_eq(r, 1);
        ck_assert(buf_append(&e->lines, line, len) == 0);
        ck_assert(buf_putc(&e->lines, '\n') == 0);
        e->nlines++;
        if (e->echo) {
            stream_write(s, line, len);
            stream_puts(s, "\r\n");
        }
        if (e->starttls_server && len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
            stream_puts(s, "220 ready\r\n");
            ck_assert_int_eq(stream_start_tls(s, e->pair->sctx, true, end_done), 0);
            e->discarded = stream_tls_discarded(s);
            if (e->after_start != NULL)
                stream_puts(s, e->after_start);
            return;   /* the line is gone with the buffer */
        }
        if (e->starttls_client && len >= 3 && memcmp(line, "220", 3) == 0
            && stream_tls(s) == NULL) {
            ck_assert_int_eq(stream_start_tls(s, e->pair->cctx, false, end_done), 0);
            e->discarded = stream_tls_discarded(s);
            return;
        }
    }
}

static void end_on_close(stream_t *s, void *arg, enum stream_close_reason why)
{
    struct end *e = arg;
    e->closes++;
    e->why = why;
    e->close_notify = stream_tls(s) != NULL && tls_conn_close_notify(stream_tls(s));
    e->s = NULL;
}

static const struct stream_handler end_handler = { end_on_read, end_on_close, NULL };

static tls_ctx_t *server_ctx(void)
{
    char *err = NULL;
    tls_ctx_t *c = tls_ctx_server_new(cert_path, key_path, NULL, &err);
    ck_assert_msg(c != NULL, "server ctx: %s", err != NULL ? err : "?");
    return c;
}

static tls_ctx_t *client_ctx(const char *ca)
{
    char *err = NULL;
    tls_ctx_t *c = tls_ctx_client_new(ca, &err);
    ck_assert_msg(c != NULL, "client ctx: %s", err != NULL ? err : "?");
    return c;
}

/* srv_timeout: the server stream's timeout (seconds, 0 = none) */
static struct pair *pair_new(int srv_timeout)
{
    struct pair *p = xcalloc(1, sizeof(*p));
    p->loop = ev_loop_new();
    ck_assert_ptr_nonnull(p->loop);
    p->sctx = server_ctx();
    p->cctx = client_ctx(NULL);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->srv.name = "server";
    p->cli.name = "client";
    p->srv.pair = p->cli.pair = p;
    buf_init(&p->srv.lines, 0);
    buf_init(&p->cli.lines, 0);
    p->srv.s = stream_new(p->loop, sv[0], 4096, srv_timeout, &end_handler, &p->srv);
    p->cli.s = stream_new(p->loop, sv[1], 4096, 0, &end_handler, &p->cli);
    ck_assert_ptr_nonnull(p->srv.s);
    ck_assert_ptr_nonnull(p->cli.s);
    return p;
}

#define RUN_UNTIL(p, cond) do {                                       \
        uint64_t end_ = time_mono_msec() + WAIT_MSEC;                 \
        while (!(cond) && time_mono_msec() < end_)                    \
            ev_loop_run_once((p)->loop, 20);                          \
        ck_assert_msg((cond), "condition not reached: %s", #cond);    \
    } while (0)

static void pair_free(struct pair *p)
{
    if (p->srv.s != NULL)
        stream_close(p->srv.s);
    if (p->cli.s != NULL)
        stream_close(p->cli.s);
    /* let the lingering streams finish (close_notify, FIN, EOF) so ASan
       sees no leak: until the loop has been quiet for a while */
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    int quiet = 0;
    while (quiet < 3 && time_mono_msec() < end)
        quiet = ev_loop_run_once(p->loop, 50) == 0 ? quiet + 1 : 0;
    ev_loop_free(p->loop);
    tls_ctx_free(p->sctx);
    tls_ctx_free(p->cctx);
    buf_free(&p->srv.lines);
    buf_free(&p->cli.lines);
    free(p);
}

/* implicit TLS on both ends */
static void pair_handshake(struct pair *p)
{
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls(p->cli.s, p->cctx, false, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_msg(p->srv.error[0] == '\0', "server: %s", p->srv.error);
    ck_assert_msg(p->cli.error[0] == '\0', "client: %s", p->cli.error);
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_handshake_lines)
{
    struct pair *p = pair_new(0);
    pair_handshake(p);
    ck_assert(stream_tls_active(p->srv.s));
    ck_assert(stream_tls_active(p->cli.s));
    tls_conn_t *sc = stream_tls(p->srv.s), *cc = stream_tls(p->cli.s);
    ck_assert_str_eq(tls_conn_version(sc), "TLSv1.3");
    ck_assert_str_eq(tls_conn_version(cc), "TLSv1.3");
    ck_assert_str_eq(tls_conn_cipher(sc), tls_conn_cipher(cc));
    ck_assert_int_ge(tls_conn_cipher_bits(sc), 128);
    ck_assert(tls_conn_peer_cert(cc));     /* the server's */
    ck_assert(!tls_conn_peer_verified(cc)); /* no CA given */
    ck_assert(!tls_conn_peer_cert(sc));    /* none asked of the client */
    ck_assert_uint_eq(stream_tls_discarded(p->srv.s), 0);

    stream_puts(p->cli.s, "EHLO client\r\nMAIL FROM:<a@b>\r\n");
    stream_puts(p->srv.s, "250 ok\r\n");
    RUN_UNTIL(p, p->srv.nlines == 2 && p->cli.nlines == 1);
    ck_assert_str_eq(buf_str(&p->srv.lines), "EHLO client\nMAIL FROM:<a@b>\n");
    ck_assert_str_eq(buf_str(&p->cli.lines), "250 ok\n");
    pair_free(p);
}
END_TEST

/* a client that trusts the certificate verifies it, by name */
START_TEST(test_verified_peer)
{
    struct pair *p = pair_new(0);
    tls_ctx_free(p->cctx);
    p->cctx = client_ctx(cert_path);
    char *err = NULL;
    tls_conn_t *c = tls_conn_new(p->cctx, stream_fd(p->cli.s), false, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tls_conn_set_servername(c, "localhost"), 0);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls_conn(p->cli.s, c, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_msg(p->cli.error[0] == '\0', "client: %s", p->cli.error);
    ck_assert(tls_conn_peer_verified(stream_tls(p->cli.s)));
    pair_free(p);
}
END_TEST

/* a server that asks sees the client's certificate; verified only
   against the CA it was given */
START_TEST(test_client_cert)
{
    struct pair *p = pair_new(0);
    char *err = NULL;
    ck_assert_int_eq(tls_ctx_ask_peer_cert(p->sctx, _i == 1 ? cert_path : NULL,
                                           &err), 0);
    ck_assert_int_eq(tls_ctx_set_cert(p->cctx, cert_path, key_path, NULL, &err), 0);
    pair_handshake(p);
    ck_assert(tls_conn_peer_cert(stream_tls(p->srv.s)));
    ck_assert_int_eq(tls_conn_peer_verified(stream_tls(p->srv.s)), _i == 1);
    /* the request named the CA file's CAs */
    const STACK_OF(X509_NAME) *cas =
        SSL_get0_peer_CA_list(tls_conn_openssl(stream_tls(p->cli.s)));
    ck_assert_int_eq(cas != NULL ? sk_X509_NAME_num(cas) : 0, _i == 1 ? 1 : 0);
    pair_free(p);
}
END_TEST

/* a wrong name fails verification, and the handshake with it */
START_TEST(test_verify_wrong_name)
{
    struct pair *p = pair_new(0);
    tls_ctx_free(p->cctx);
    p->cctx = client_ctx(cert_path);
    tls_conn_t *c = tls_conn_new(p->cctx, stream_fd(p->cli.s), false, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tls_conn_set_servername(c, "mx.example.org"), 0);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls_conn(p->cli.s, c, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_msg(strstr(p->cli.error, "certificate verify failed") != NULL
                  && strstr(p->cli.error, "mismatch") != NULL,
                  "client: %s", p->cli.error);
    ck_assert_str_ne(p->srv.error, "");
    ck_assert_ptr_null(p->cli.s);
    ck_assert_ptr_null(p->srv.s);
    ck_assert_int_eq(p->cli.closes + p->srv.closes, 0);
    pair_free(p);
}
END_TEST

/* line i of the large transfer, CRLF-terminated */
static size_t big_line(char *b, size_t size, int i)
{
    int n = snprintf(b, size, "%06d ", i);
    size_t len = (size_t)n + (size_t)((i * 37) % 900);
    ck_assert_uint_lt(len + 2, size);
    for (size_t k = (size_t)n; k < len; k++)
        b[k] = (char)('a' + (k + (size_t)i) % 26);
    b[len] = '\r';
    b[len + 1] = '\n';
    return len + 2;
}

/* > 1 MiB each way: partial writes, records split across reads, the
   server's back-pressure while the client reads its echo */
START_TEST(test_large_both_ways)
{
    struct pair *p = pair_new(0);
    p->srv.echo = true;
    pair_handshake(p);
    const int nl = 3000;
    buf_t want;
    buf_init(&want, 0);
    char line[1024];
    for (int i = 0; i < nl; i++) {
        size_t n = big_line(line, sizeof(line), i);
        ck_assert(buf_append(&want, line, n - 2) == 0);
        ck_assert(buf_putc(&want, '\n') == 0);
    }
    ck_assert_uint_gt(want.len, 1024 * 1024);
    /* the client keeps up to 200 KiB queued (over 256 KiB it would stop
       reading the echo: back-pressure on both ends) */
    int sent = 0;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (p->cli.nlines < nl && p->cli.s != NULL && p->srv.s != NULL
           && time_mono_msec() < end) {
        while (sent < nl && stream_output_pending(p->cli.s) < 200 * 1024) {
            size_t n = big_line(line, sizeof(line), sent++);
            stream_write(p->cli.s, line, n);
        }
        ev_loop_run_once(p->loop, 20);
    }
    ck_assert_msg(p->cli.nlines == nl, "client %d server %d lines",
                  p->cli.nlines, p->srv.nlines);
    ck_assert_int_eq(p->srv.nlines, nl);
    ck_assert_uint_eq(p->srv.lines.len, want.len);
    ck_assert(memcmp(p->srv.lines.data, want.data, want.len) == 0);
    ck_assert_uint_eq(p->cli.lines.len, want.len);
    ck_assert(memcmp(p->cli.lines.data, want.data, want.len) == 0);
    buf_free(&want);
    pair_free(p);
}
END_TEST

/*
 * Plaintext left inside OpenSSL: 100 bytes, then 64 KiB (records of 16 KiB
 * from offset 100). The server's consumer holds input until its 64 KiB
 * buffer is full: the last read takes part of a record, the rest stays in
 * OpenSSL while the socket is empty. It must be delivered anyway.
 */
START_TEST(test_pending_delivered)
{
    struct pair *p = pair_new(0);
    p->srv.raw = true;
    p->srv.raw_expect = 100 + 64 * 1024;
    pair_handshake(p);
    char *big = xmalloc(64 * 1024);
    memset(big, 'x', 64 * 1024);
    stream_write(p->cli.s, big, 100);
    RUN_UNTIL(p, stream_output_pending(p->cli.s) == 0);
    stream_write(p->cli.s, big, 64 * 1024);
    RUN_UNTIL(p, p->srv.raw_total == p->srv.raw_expect);
    free(big);
    pair_free(p);
}
END_TEST

/* CVE-2011-0411: "RSET" injected with STARTTLS in one plaintext packet is
   dropped by the barrier and never seen after the handshake */
START_TEST(test_starttls_barrier)
{
    struct pair *p = pair_new(0);
    p->srv.starttls_server = true;
    p->srv.after_start = "250 queued during handshake\r\n";
    p->cli.starttls_client = true;
    stream_puts(p->cli.s, "STARTTLS\r\nRSET\r\n");
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_msg(p->srv.error[0] == '\0', "server: %s", p->srv.error);
    ck_assert_msg(p->cli.error[0] == '\0', "client: %s", p->cli.error);
    ck_assert_uint_eq(p->srv.discarded, 6);   /* "RSET\r\n" */
    ck_assert_uint_eq(p->cli.discarded, 0);
    stream_puts(p->cli.s, "NOOP\r\n");
    /* written after stream_start_tls: encrypted, after the handshake */
    RUN_UNTIL(p, p->srv.nlines == 2 && p->cli.nlines == 2);
    ck_assert_str_eq(buf_str(&p->srv.lines), "STARTTLS\nNOOP\n");
    ck_assert_str_eq(buf_str(&p->cli.lines),
                     "220 ready\n250 queued during handshake\n");
    pair_free(p);
}
END_TEST

/* the client writes plaintext at a TLS server: reported, stream closed */
START_TEST(test_handshake_garbage)
{
    struct pair *p = pair_new(0);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    stream_puts(p->cli.s, "EHLO I do not speak TLS at all\r\nQUIT\r\n");
    RUN_UNTIL(p, p->srv.done > 0);
    ck_assert_str_ne(p->srv.error, "");
    ck_assert_ptr_null(p->srv.s);
    ck_assert_int_eq(p->srv.closes, 0);
    ck_assert_int_eq(p->srv.nlines, 0);
    ck_assert_uint_eq(ERR_peek_error(), 0);   /* drained into the reason */
    /* the peer sees the connection end */
    RUN_UNTIL(p, p->cli.closes > 0);
    pair_free(p);
}
END_TEST

/* nobody says anything: the handshake deadline fires, not before */
START_TEST(test_handshake_timeout)
{
    struct pair *p = pair_new(1);
    uint64_t start = time_mono_msec();
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0);
    ck_assert_uint_ge(time_mono_msec() - start, 1000);
    ck_assert_msg(strstr(p->srv.error, "timeout") != NULL, "%s", p->srv.error);
    ck_assert_ptr_null(p->srv.s);
    ck_assert_int_eq(p->srv.closes, 0);
    RUN_UNTIL(p, p->cli.closes > 0);
    pair_free(p);
}
END_TEST

/* the handshake's timeout is a deadline: a client that drips a
   ClientHello byte by byte (the slow peer is the behaviour under test)
   does not extend it */
START_TEST(test_handshake_deadline_drip)
{
    struct pair *p = pair_new(1);
    /* a handshake record header announcing 200 bytes, then the body */
    static const unsigned char hdr[] = { 0x16, 0x03, 0x01, 0x00, 0xc8 };
    const int total = (int)sizeof(hdr) + 200;
    int dripped = 0;
    uint64_t start = time_mono_msec();
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (p->srv.done == 0 && dripped < total && time_mono_msec() < end) {
        unsigned char b = dripped < (int)sizeof(hdr) ? hdr[dripped] : 0x01;
        ck_assert_int_eq(write(stream_fd(p->cli.s), &b, 1), 1);
        dripped++;
        uint64_t next = time_mono_msec() + 100;
        while (p->srv.done == 0 && time_mono_msec() < next)
            ev_loop_run_once(p->loop, 20);
    }
    ck_assert_int_eq(p->srv.done, 1);
    ck_assert_msg(strstr(p->srv.error, "timeout") != NULL, "%s", p->srv.error);
    ck_assert_int_lt(dripped, total);   /* it fired while bytes still came */
    ck_assert_uint_ge(time_mono_msec() - start, 1000);
    pair_free(p);
}
END_TEST

/* a client that offers at most TLS 1.0 or 1.1 is refused */
START_TEST(test_old_versions_refused)
{
    int max = _i == 0 ? TLS_VERSION_1_0 : TLS_VERSION_1_1;
    struct pair *p = pair_new(0);
    char *err = NULL;
    ck_assert_int_eq(tls_ctx_set_versions(p->cctx, TLS_VERSION_1_0, max, &err), 0);
    /* let the client at least try, whatever the system's security level */
    SSL_CTX_set_security_level(tls_ctx_openssl(p->cctx), 0);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(tls_ctx_openssl(p->cctx),
                                             "DEFAULT:@SECLEVEL=0"), 1);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls(p->cli.s, p->cctx, false, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_str_ne(p->cli.error, "");
    ck_assert_msg(strstr(p->srv.error, "unsupported protocol") != NULL,
                  "server: %s", p->srv.error);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    pair_free(p);
}
END_TEST

/* stream_close sends close_notify after the queued output */
START_TEST(test_close_notify)
{
    struct pair *p = pair_new(0);
    pair_handshake(p);
    stream_puts(p->srv.s, "221 bye\r\n");
    stream_close(p->srv.s);
    p->srv.s = NULL;
    RUN_UNTIL(p, p->cli.closes > 0);
    ck_assert_int_eq(p->cli.why, STREAM_EOF);
    ck_assert(p->cli.close_notify);
    ck_assert_str_eq(buf_str(&p->cli.lines), "221 bye\n");
    pair_free(p);
}
END_TEST

/* the idle timeout works once TLS is up, and the close sends close_notify */
START_TEST(test_idle_timeout_after_handshake)
{
    struct pair *p = pair_new(1);
    /* the idle timer restarts when the handshake is done: after this */
    uint64_t start = time_mono_msec();
    pair_handshake(p);
    RUN_UNTIL(p, p->srv.closes > 0);
    ck_assert_uint_ge(time_mono_msec() - start, 1000);
    ck_assert_int_eq(p->srv.why, STREAM_TIMEOUT);
    ck_assert_int_eq(p->srv.done, 1);
    RUN_UNTIL(p, p->cli.closes > 0);
    ck_assert(p->cli.close_notify);
    pair_free(p);
}
END_TEST

/* a TCP end without close_notify is EOF too, and says so */
START_TEST(test_eof_without_close_notify)
{
    struct pair *p = pair_new(0);
    pair_handshake(p);
    stream_puts(p->cli.s, "last\r\n");
    RUN_UNTIL(p, p->srv.nlines == 1);
    ck_assert_int_eq(shutdown(stream_fd(p->cli.s), SHUT_WR), 0);
    RUN_UNTIL(p, p->srv.closes > 0);
    ck_assert_int_eq(p->srv.why, STREAM_EOF);
    ck_assert(!p->srv.close_notify);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    pair_free(p);
}
END_TEST

/* stream_input_sample sees decrypted input without consuming it; what
   that pulled out of the socket is still delivered */
START_TEST(test_input_sample)
{
    struct pair *p = pair_new(0);
    pair_handshake(p);
    stream_pause_read(p->srv.s, true);
    stream_puts(p->cli.s, "NOOP\r\n");
    RUN_UNTIL(p, stream_output_pending(p->cli.s) == 0);
    char buf[64];
    size_t n = 0;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while ((n = stream_input_sample(p->srv.s, buf, sizeof(buf))) == 0
           && time_mono_msec() < end)
        ev_loop_run_once(p->loop, 20);
    ck_assert_uint_eq(n, 6);
    ck_assert(memcmp(buf, "NOOP\r\n", 6) == 0);
    ck_assert_int_eq(p->srv.nlines, 0);
    stream_pause_read(p->srv.s, false);
    RUN_UNTIL(p, p->srv.nlines == 1);
    ck_assert_str_eq(buf_str(&p->srv.lines), "NOOP\n");
    pair_free(p);
}
END_TEST

/* stream_close during the handshake: silent, nothing leaks */
START_TEST(test_close_during_handshake)
{
    struct pair *p = pair_new(0);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls(p->cli.s, p->cctx, false, end_done), 0);
    ev_loop_run_once(p->loop, 0);
    stream_close(p->srv.s);
    p->srv.s = NULL;
    RUN_UNTIL(p, p->cli.done > 0);
    ck_assert_str_ne(p->cli.error, "");
    ck_assert_int_eq(p->srv.done, 0);
    ck_assert_int_eq(p->srv.closes, 0);
    pair_free(p);
}
END_TEST

START_TEST(test_start_twice)
{
    struct pair *p = pair_new(0);
    pair_handshake(p);
    errno = 0;
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), -1);
    ck_assert_int_eq(errno, EINVAL);
    pair_free(p);
}
END_TEST

/* contexts: bad files are reported with their names */
START_TEST(test_ctx_errors)
{
    char *err = NULL;
    tls_ctx_t *c = tls_ctx_server_new("/nonexistent/cert.pem", NULL, NULL, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "/nonexistent/cert.pem") != NULL, "%s", err);
    free(err);
    err = NULL;
    c = tls_ctx_server_new(cert_path, other_key_path, NULL, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, other_key_path) != NULL
                  && strstr(err, "match") != NULL, "%s", err);
    free(err);
    err = NULL;
    c = tls_ctx_server_new(cert_path, key_path, "/nonexistent/chain.pem", &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "chain") != NULL, "%s", err);
    free(err);
    err = NULL;
    /* the certificate itself as a chain file loads */
    c = tls_ctx_server_new(cert_path, key_path, cert_path, &err);
    ck_assert_msg(c != NULL, "%s", err != NULL ? err : "");
    tls_ctx_free(c);
    err = NULL;
    c = tls_ctx_client_new("/nonexistent/ca.pem", &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
    free(err);
    /* nothing was left in OpenSSL's error queue for the next connection */
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* Postfix protocol syntax, including hostile lists */
START_TEST(test_protocols_parse)
{
    static const struct {
        const char *spec;
        int min, max;          /* 0: an error */
    } t[] = {
        { ">=TLSv1.2", TLS_VERSION_1_2, TLS_VERSION_1_3 },
        { ">=TLSv1", TLS_VERSION_1_0, TLS_VERSION_1_3 },
        { "<=TLSv1.2", TLS_VERSION_1_0, TLS_VERSION_1_2 },
        { ">=TLSv1.1 <=TLSv1.2", TLS_VERSION_1_1, TLS_VERSION_1_2 },
        { "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", TLS_VERSION_1_2, TLS_VERSION_1_3 },
        { "!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2", TLS_VERSION_1_3, TLS_VERSION_1_3 },
        { "TLSv1.2 TLSv1.3", TLS_VERSION_1_2, TLS_VERSION_1_3 },
        { "tlsv1.3", TLS_VERSION_1_3, TLS_VERSION_1_3 },
        { "SSLv3, TLSv1.2", TLS_VERSION_1_2, TLS_VERSION_1_2 },
        { "", TLS_VERSION_1_0, TLS_VERSION_1_3 },
        { "TLSv1.4", 0, 0 },
        { ">=TLSv1.3 <=TLSv1.2", 0, 0 },
        { "SSLv3", 0, 0 },
        { "!TLSv1.2", 0, 0 },                    /* 1.0, 1.1, 1.3: a hole */
        { "TLSv1 TLSv1.3", 0, 0 },
        { "!", 0, 0 },
        { ">=", 0, 0 },
        { "=>TLSv1.2", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int min = -1, max = -1;
        char *err = NULL;
        int r = tls_protocols_parse(t[i].spec, &min, &max, &err);
        if (t[i].min == 0) {
            ck_assert_msg(r == -1 && err != NULL, "\"%s\" accepted", t[i].spec);
            free(err);
        } else {
            ck_assert_msg(r == 0, "\"%s\": %s", t[i].spec, err ? err : "");
            ck_assert_msg(min == t[i].min && max == t[i].max,
                          "\"%s\": %x..%x", t[i].spec, min, max);
        }
    }
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* a server of one protocol range refuses a client outside it */
START_TEST(test_versions_range)
{
    struct pair *p = pair_new(0);
    char *err = NULL;
    ck_assert_int_eq(tls_ctx_set_versions(p->sctx, TLS_VERSION_1_3,
                                          TLS_VERSION_1_3, &err), 0);
    ck_assert_int_eq(tls_ctx_set_versions(p->cctx, TLS_VERSION_1_2,
                                          TLS_VERSION_1_2, &err), 0);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls(p->cli.s, p->cctx, false, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert(p->srv.error[0] != '\0');
    pair_free(p);
}
END_TEST

/* chain files: a key and its certificate; errors name the file */
START_TEST(test_chain_files)
{
    char *err = NULL;
    tls_ctx_t *c = tls_ctx_server_chain_new(sni_chain_path, &err);
    ck_assert_msg(c != NULL, "%s", err ? err : "");
    tls_ctx_free(c);
    /* key and certificate in two files, in that order */
    char two[600];
    (void)snprintf(two, sizeof(two), "%s, %s", key_path, cert_path);
    c = tls_ctx_server_chain_new(two, &err);
    ck_assert_msg(c != NULL, "%s", err ? err : "");
    tls_ctx_free(c);
    /* certificate first: refused */
    (void)snprintf(two, sizeof(two), "%s %s", cert_path, key_path);
    c = tls_ctx_server_chain_new(two, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "without a private key") != NULL, "%s", err);
    free(err);
    /* a key with the wrong certificate */
    (void)snprintf(two, sizeof(two), "%s %s", other_key_path, cert_path);
    c = tls_ctx_server_chain_new(two, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "match") != NULL, "%s", err);
    free(err);
    c = tls_ctx_server_chain_new(key_path, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "without its certificate") != NULL, "%s", err);
    free(err);
    c = tls_ctx_server_chain_new("/nonexistent/x.pem", &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "/nonexistent/x.pem") != NULL, "%s", err);
    free(err);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* SNI: the name (any case, trailing dot), a parent with a leading dot,
   else the default certificate */
START_TEST(test_sni)
{
    static const struct {
        const char *name;     /* NULL: no SNI */
        const char *cn;       /* the certificate the client gets */
    } t[] = {
        { "sni.example", "sni.example" },
        { "SNI.Example.", "sni.example" },
        { "a.wild.example", "sni.example" },
        { "b.a.wild.example", "sni.example" },
        { "wild.example", "localhost" },
        { "other.example", "localhost" },
        { NULL, "localhost" },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct pair *p = pair_new(0);
        char *err = NULL;
        tls_ctx_t *a = tls_ctx_server_chain_new(sni_chain_path, &err);
        tls_ctx_t *w = tls_ctx_server_chain_new(sni_chain_path, &err);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(w);
        ck_assert_int_eq(tls_ctx_sni_add(p->sctx, "sni.example", a, &err), 0);
        ck_assert_int_eq(tls_ctx_sni_add(p->sctx, ".wild.example", w, &err), 0);
        /* a duplicate is refused, the caller keeps it */
        tls_ctx_t *dup = server_ctx();
        ck_assert_int_eq(tls_ctx_sni_add(p->sctx, "SNI.example", dup, &err), 1);
        tls_ctx_free(dup);
        dup = server_ctx();
        ck_assert_int_eq(tls_ctx_sni_add(p->sctx, "", dup, &err), -1);
        tls_ctx_free(dup);
        free(err);
        tls_conn_t *c = tls_conn_new(p->cctx, stream_fd(p->cli.s), false, NULL);
        ck_assert_ptr_nonnull(c);
        if (t[i].name != NULL)
            ck_assert_int_eq(tls_conn_set_servername(c, t[i].name), 0);
        ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
        ck_assert_int_eq(stream_start_tls_conn(p->cli.s, c, end_done), 0);
        RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
        ck_assert_msg(p->srv.error[0] == '\0', "%s", p->srv.error);
        char subject[64], issuer[64];
        tls_conn_peer_names(stream_tls(p->cli.s), subject, issuer, sizeof(subject));
        ck_assert_msg(strcmp(subject, t[i].cn) == 0, "%s: got %s",
                      t[i].name ? t[i].name : "(none)", subject);
        pair_free(p);
    }
}
END_TEST

/* resume - one handshake of a new pair with server context sctx (not
   owned) and the client session sess (NULL: a first one); the client's
   session after it into *sess_r, whether the server resumed */
static bool resume(tls_ctx_t *sctx, SSL_SESSION *sess, SSL_SESSION **sess_r)
{
    struct pair *p = pair_new(0);
    tls_ctx_free(p->sctx);
    p->sctx = sctx;
    tls_conn_t *c = tls_conn_new(p->cctx, stream_fd(p->cli.s), false, NULL);
    ck_assert_ptr_nonnull(c);
    if (sess != NULL)
        ck_assert_int_eq(SSL_set_session(tls_conn_openssl(c), sess), 1);
    ck_assert_int_eq(stream_start_tls(p->srv.s, p->sctx, true, end_done), 0);
    ck_assert_int_eq(stream_start_tls_conn(p->cli.s, c, end_done), 0);
    RUN_UNTIL(p, p->srv.done > 0 && p->cli.done > 0);
    ck_assert_msg(p->srv.error[0] == '\0', "%s", p->srv.error);
    /* TLS 1.3 tickets come after the handshake: read a line */
    stream_puts(p->srv.s, "250 ok\r\n");
    RUN_UNTIL(p, p->cli.nlines == 1);
    bool resumed = tls_conn_resumed(stream_tls(p->srv.s));
    ck_assert_int_eq(resumed, tls_conn_resumed(stream_tls(p->cli.s)));
    *sess_r = SSL_get1_session(tls_conn_openssl(stream_tls(p->cli.s)));
    ck_assert_ptr_nonnull(*sess_r);
    p->sctx = NULL;
    pair_free(p);
    return resumed;
}

/* tickets: a second server context with the same keys (another smtpd
   process) resumes a session; other keys or lifetime 0 do not */
START_TEST(test_tickets)
{
    unsigned char keys[2 * TLS_TICKET_KEY_SIZE], other[TLS_TICKET_KEY_SIZE];
    char *err = NULL;
    SSL_SESSION *s1, *s2;

    for (size_t i = 0; i < sizeof(keys); i++)
        keys[i] = (unsigned char)(i * 7 + 1);
    memset(other, 0x5a, sizeof(other));
    tls_ctx_t *a = server_ctx(), *b = server_ctx(), *old = server_ctx(),
              *stranger = server_ctx(), *off = server_ctx();
    ck_assert_int_eq(tls_ctx_set_tickets(a, keys, 2, 3600, &err), 0);
    ck_assert_int_eq(tls_ctx_set_tickets(b, keys, 2, 3600, &err), 0);
    /* old: its current key is a's previous one */
    ck_assert_int_eq(tls_ctx_set_tickets(old, keys + TLS_TICKET_KEY_SIZE, 1,
                                         3600, &err), 0);
    ck_assert_int_eq(tls_ctx_set_tickets(stranger, other, 1, 3600, &err), 0);
    ck_assert_int_eq(tls_ctx_set_tickets(off, keys, 2, 0, &err), 0);
    int v = _i == 0 ? TLS_VERSION_1_3 : TLS_VERSION_1_2;
    tls_ctx_t *all[] = { a, b, old, stranger, off };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        ck_assert_int_eq(tls_ctx_set_versions(all[i], v, v, &err), 0);

    ck_assert(!resume(a, NULL, &s1));
    ck_assert(resume(b, s1, &s2));           /* shared key */
    SSL_SESSION_free(s2);
    ck_assert(!resume(stranger, s1, &s2));   /* unknown key: full handshake */
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    ck_assert(!resume(old, NULL, &s1));      /* made with the previous key */
    ck_assert(resume(a, s1, &s2));           /* still accepted */
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    ck_assert(!resume(off, NULL, &s1));
    ck_assert(!resume(off, s1, &s2));
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s1);
    tls_ctx_free(a);
    tls_ctx_free(b);
    tls_ctx_free(old);
    tls_ctx_free(stranger);
    tls_ctx_free(off);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* the client certificate's SHA-256 fingerprint, as Postfix prints it */
START_TEST(test_peer_fingerprint)
{
    struct pair *p = pair_new(0);
    char *err = NULL, fp[TLS_FINGERPRINT_SIZE], want[TLS_FINGERPRINT_SIZE];
    ck_assert_int_eq(tls_ctx_ask_peer_cert(p->sctx, NULL, &err), 0);
    pair_handshake(p);
    ck_assert_int_eq(tls_conn_peer_fingerprint(stream_tls(p->srv.s), fp,
                                               sizeof(fp)), -1);
    ck_assert_str_eq(fp, "");
    pair_free(p);

    p = pair_new(0);
    ck_assert_int_eq(tls_ctx_ask_peer_cert(p->sctx, NULL, &err), 0);
    ck_assert_int_eq(tls_ctx_set_cert(p->cctx, cert_path, key_path, NULL, &err), 0);
    pair_handshake(p);
    ck_assert_int_eq(tls_conn_peer_fingerprint(stream_tls(p->srv.s), fp,
                                               sizeof(fp)), 0);
    FILE *f = fopen(cert_path, "r");
    ck_assert_ptr_nonnull(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(x);
    (void)fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ck_assert_int_eq(X509_digest(x, EVP_sha256(), md, &n), 1);
    ck_assert_uint_eq(n, 32);
    for (unsigned i = 0; i < n; i++)
        (void)snprintf(want + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
    X509_free(x);
    ck_assert_str_eq(fp, want);
    ck_assert_int_eq(tls_conn_peer_fingerprint(stream_tls(p->srv.s), fp, 95), -1);
    char subject[64], issuer[64];
    tls_conn_peer_names(stream_tls(p->srv.s), subject, issuer, sizeof(subject));
    ck_assert_str_eq(subject, "localhost");
    ck_assert_str_eq(issuer, "localhost");
    pair_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, make_cert, remove_cert);
    tcase_add_test(tc, test_handshake_lines);
    tcase_add_test(tc, test_verified_peer);
    tcase_add_test(tc, test_verify_wrong_name);
    tcase_add_loop_test(tc, test_client_cert, 0, 2);
    tcase_add_test(tc, test_large_both_ways);
    tcase_add_test(tc, test_pending_delivered);
    tcase_add_test(tc, test_starttls_barrier);
    tcase_add_test(tc, test_handshake_garbage);
    tcase_add_test(tc, test_handshake_timeout);
    tcase_add_test(tc, test_handshake_deadline_drip);
    tcase_add_loop_test(tc, test_old_versions_refused, 0, 2);
    tcase_add_test(tc, test_close_notify);
    tcase_add_test(tc, test_idle_timeout_after_handshake);
    tcase_add_test(tc, test_eof_without_close_notify);
    tcase_add_test(tc, test_input_sample);
    tcase_add_test(tc, test_close_during_handshake);
    tcase_add_test(tc, test_start_twice);
    tcase_add_test(tc, test_ctx_errors);
    tcase_add_test(tc, test_protocols_parse);
    tcase_add_test(tc, test_versions_range);
    tcase_add_test(tc, test_chain_files);
    tcase_add_test(tc, test_sni);
    tcase_add_loop_test(tc, test_tickets, 0, 2);
    tcase_add_test(tc, test_peer_fingerprint);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}

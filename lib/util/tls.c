/*
 * tls - OpenSSL contexts and non-blocking TLS connections (see tls.h).
 *
 * Error queue discipline: OpenSSL keeps errors in a per-thread queue that
 * every connection of the process shares. Each entry point here clears it
 * first (so SSL_get_error sees only this call's errors) and leaves it
 * empty: failures are formatted into the connection's own buffer.
 */
#include "tls.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "util.h"

/* TLS 1.2: forward secrecy and AEAD first, CBC with ECDHE/DHE kept for
   older peers (mail prefers any encryption to none); TLS 1.3 uses
   OpenSSL's own suite list */
#define TLS_TLS12_CIPHERS \
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES" \
    ":!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP:!3DES:!RC4"

#define TLS_ERROR_MAX 512

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    bool server;
};

struct tls_conn {
    SSL *ssl;
    unsigned want[4];      /* per enum tls_op */
    bool fatal;            /* no more I/O, no close_notify */
    bool close_notify;     /* the peer's close_notify arrived */
    char error[TLS_ERROR_MAX];
};

const struct stream_io tls_stream_io = { tls_conn_read, tls_conn_write };

/* ---- errors --------------------------------------------------------------- */

/* tls_queue_format - append OpenSSL's queued errors to b and empty the queue */
static void tls_queue_format(buf_t *b)
{
    unsigned long e;
    bool first = true;
    char one[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, one, sizeof(one));
        (void)buf_printf(b, "%s%s", first ? "" : "; ", one);
        first = false;
    }
}

/* tls_error_new - "what: OpenSSL's errors" as a malloc'd string */
static char *tls_error_new(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *tls_error_new(const char *fmt, ...)
{
    buf_t b;
    va_list ap;

    buf_init(&b, TLS_ERROR_MAX);
    va_start(ap, fmt);
    (void)buf_vprintf(&b, fmt, ap);
    va_end(ap);
    size_t len = b.len;
    (void)buf_puts(&b, ": ");
    size_t mark = b.len;
    tls_queue_format(&b);
    if (b.len == mark)
        buf_truncate(&b, len);
    ERR_clear_error();   /* what did not fit */
    char *s = buf_strdup(&b);
    buf_free(&b);
    return s;
}

static void tls_set_error(char **error_r, char *msg)
{
    if (error_r != NULL)
        *error_r = msg;
    else
        free(msg);
}

/* ---- contexts --------------------------------------------------------------- */

/* an encrypted key would make OpenSSL prompt on the terminal: refuse */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static tls_ctx_t *tls_ctx_common(bool server, char **error_r)
{
    ERR_clear_error();
    SSL_CTX *sc = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (sc == NULL) {
        tls_set_error(error_r, tls_error_new("SSL_CTX_new"));
        return NULL;
    }
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (server)
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(sc, opts);
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE
                         | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                         | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(sc, tls_no_passphrase);
    if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1
        || SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) != 1
        || SSL_CTX_set_cipher_list(sc, TLS_TLS12_CIPHERS) != 1) {
        tls_set_error(error_r, tls_error_new("TLS defaults"));
        SSL_CTX_free(sc);
        return NULL;
    }
    if (server) {
        /* one process, many short sessions: no cache to grow; tickets
           (stateless) still allow resumption */
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_dh_auto(sc, 1);
    }
    tls_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ctx->ssl_ctx = sc;
    ctx->server = server;
    return ctx;
}

/* tls_ctx_add_chain - every certificate of a PEM file as an intermediate */
static int tls_ctx_add_chain(SSL_CTX *sc, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    int count = 0;
    X509 *x;

    if (bio == NULL)
        return -1;
    while ((x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(sc, x) != 1) {
            X509_free(x);
            BIO_free(bio);
            return -1;
        }
        count++;
    }
    BIO_free(bio);
    /* the loop ends with "no start line": expected at end of file */
    unsigned long e = ERR_peek_last_error();
    if (count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM
        && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return 0;
    }
    return -1;
}

int tls_ctx_set_cert(tls_ctx_t *ctx, const char *cert_file,
                     const char *key_file, const char *chain_file,
                     char **error_r)
{
    SSL_CTX *sc = ctx->ssl_ctx;
    char *err = NULL;

    if (cert_file == NULL || *cert_file == '\0') {
        tls_set_error(error_r, xstrdup("no certificate file"));
        return -1;
    }
    if (key_file == NULL || *key_file == '\0')
        key_file = cert_file;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(sc, cert_file) != 1)
        err = tls_error_new("cannot load certificate file %s", cert_file);
    else if (chain_file != NULL && *chain_file != '\0'
             && tls_ctx_add_chain(sc, chain_file) < 0)
        err = tls_error_new("cannot load chain file %s", chain_file);
    else if (SSL_CTX_use_PrivateKey_file(sc, key_file, SSL_FILETYPE_PEM) != 1)
        err = tls_error_new("cannot load private key file %s", key_file);
    else if (SSL_CTX_check_private_key(sc) != 1)
        err = tls_error_new("private key %s does not match certificate %s",
                            key_file, cert_file);
    if (err != NULL) {
        tls_set_error(error_r, err);
        return -1;
    }
    return 0;
}

tls_ctx_t *tls_ctx_server_new(const char *cert_file, const char *key_file,
                              const char *chain_file, char **error_r)
{
    tls_ctx_t *ctx = tls_ctx_common(true, error_r);
    if (ctx == NULL)
        return NULL;
    if (tls_ctx_set_cert(ctx, cert_file, key_file, chain_file, error_r) < 0) {
        tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* a certificate is asked for, never required: the result is recorded
   (tls_conn_peer_verified), the handshake goes on */
static int tls_accept_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

int tls_ctx_ask_peer_cert(tls_ctx_t *ctx, const char *ca_file, char **error_r)
{
    static const unsigned char sid[] = "tern";

    ERR_clear_error();
    if (ca_file != NULL && *ca_file != '\0'
        && SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
        tls_set_error(error_r, tls_error_new("cannot load CA file %s", ca_file));
        return -1;
    }
    /* resumption with peer verification needs a session ID context */
    if (SSL_CTX_set_session_id_context(ctx->ssl_ctx, sid, sizeof(sid) - 1) != 1) {
        tls_set_error(error_r, tls_error_new("session ID context"));
        return -1;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, tls_accept_any);
    return 0;
}

tls_ctx_t *tls_ctx_client_new(const char *ca_file, char **error_r)
{
    tls_ctx_t *ctx = tls_ctx_common(false, error_r);
    if (ctx == NULL)
        return NULL;
    if (ca_file != NULL && *ca_file != '\0') {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
            tls_set_error(error_r, tls_error_new("cannot load CA file %s",
                                                 ca_file));
            tls_ctx_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

int tls_ctx_set_versions(tls_ctx_t *ctx, int min_version, int max_version,
                         char **error_r)
{
    ERR_clear_error();
    if (SSL_CTX_set_min_proto_version(ctx->ssl_ctx, min_version) != 1
        || SSL_CTX_set_max_proto_version(ctx->ssl_ctx, max_version) != 1) {
        tls_set_error(error_r, tls_error_new("protocol versions 0x%x..0x%x",
                                             (unsigned)min_version,
                                             (unsigned)max_version));
        return -1;
    }
    return 0;
}

struct ssl_ctx_st *tls_ctx_openssl(tls_ctx_t *ctx)
{
    return ctx->ssl_ctx;
}

void tls_ctx_free(tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);   /* reference counted: live SSLs keep it */
    free(ctx);
}

/* ---- connections ---------------------------------------------------------------- */

tls_conn_t *tls_conn_new(tls_ctx_t *ctx, int fd, bool server_side,
                         char **error_r)
{
    (void)signal(SIGPIPE, SIG_IGN);
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        tls_set_error(error_r, tls_error_new("SSL_new"));
        SSL_free(ssl);
        return NULL;
    }
    if (server_side)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    tls_conn_t *c = xcalloc(1, sizeof(*c));
    c->ssl = ssl;
    return c;
}

int tls_conn_set_servername(tls_conn_t *c, const char *name)
{
    ERR_clear_error();
    int ok = SSL_set_tlsext_host_name(c->ssl, name) == 1
             && SSL_set1_host(c->ssl, name) == 1;
    ERR_clear_error();
    return ok ? 0 : -1;
}

void tls_conn_free(tls_conn_t *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    ERR_clear_error();
    free(c);
}

/* tls_conn_fail - keep the reason of a fatal failure, empty the queue */
static void tls_conn_fail(tls_conn_t *c, int ssl_error, int saved_errno)
{
    buf_t b;

    c->fatal = true;
    buf_init(&b, sizeof(c->error) - 1);
    if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        if (saved_errno != 0)
            (void)buf_printf(&b, "%s", strerror(saved_errno));
        else
            (void)buf_puts(&b, "connection closed by peer");
    } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
        (void)buf_puts(&b, "connection closed by peer (close_notify)");
    } else {
        tls_queue_format(&b);
        if (b.len == 0)
            (void)buf_printf(&b, "TLS error %d", ssl_error);
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK)
            (void)buf_printf(&b, " (%s)", X509_verify_cert_error_string(v));
    }
    ERR_clear_error();
    (void)str_copy(c->error, buf_str(&b), sizeof(c->error));
    buf_free(&b);
}

/* tls_unexpected_eof - the peer closed the socket without close_notify */
static bool tls_unexpected_eof(int ssl_error, int saved_errno)
{
    if (ssl_error == SSL_ERROR_SYSCALL)
        return ERR_peek_error() == 0 && saved_errno == 0;
    if (ssl_error != SSL_ERROR_SSL)
        return false;
    unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL
        && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/*
 * tls_conn_result - classify a failed SSL_* call of kind op.
 *   0: would block (want recorded), 1: EOF, -1: fatal (error kept).
 */
static int tls_conn_result(tls_conn_t *c, enum tls_op op, int ret,
                           int saved_errno)
{
    int e = SSL_get_error(c->ssl, ret);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want[op] = TLS_WANT_READ;
        ERR_clear_error();
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->want[op] = TLS_WANT_WRITE;
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        c->close_notify = true;
        c->want[op] = 0;
        if (op == TLS_OP_HANDSHAKE) {
            tls_conn_fail(c, e, saved_errno);
            return -1;
        }
        ERR_clear_error();
        return 1;
    default:
        c->want[op] = 0;
        if (op != TLS_OP_HANDSHAKE && tls_unexpected_eof(e, saved_errno)) {
            /* a TCP end without close_notify: EOF for the stream, but no
               close_notify may follow a fatal error */
            tls_conn_fail(c, e, saved_errno);
            return 1;
        }
        tls_conn_fail(c, e, saved_errno);
        return -1;
    }
}

int tls_conn_handshake(tls_conn_t *c)
{
    if (c->fatal)
        return -1;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    int saved = errno;
    if (r == 1) {
        c->want[TLS_OP_HANDSHAKE] = 0;
        ERR_clear_error();
        return 1;
    }
    int k = tls_conn_result(c, TLS_OP_HANDSHAKE, r, saved);
    return k == 0 ? 0 : -1;
}

ssize_t tls_conn_read(void *io_ctx, int fd, void *p, size_t n)
{
    tls_conn_t *c = io_ctx;
    size_t got = 0;

    (void)fd;
    if (c->close_notify)
        return 0;
    if (c->fatal) {
        errno = EPROTO;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(c->ssl, p, n, &got);
    int saved = errno;
    if (r == 1) {
        c->want[TLS_OP_READ] = 0;
        return (ssize_t)got;
    }
    switch (tls_conn_result(c, TLS_OP_READ, r, saved)) {
    case 0:
        errno = EAGAIN;
        return -1;
    case 1:
        return 0;
    default:
        errno = saved != 0 ? saved : EPROTO;
        return -1;
    }
}

ssize_t tls_conn_write(void *io_ctx, int fd, const void *p, size_t n)
{
    tls_conn_t *c = io_ctx;
    size_t put = 0;

    (void)fd;
    if (c->fatal) {
        errno = EPIPE;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(c->ssl, p, n, &put);
    int saved = errno;
    if (r == 1) {
        c->want[TLS_OP_WRITE] = 0;
        return (ssize_t)put;
    }
    switch (tls_conn_result(c, TLS_OP_WRITE, r, saved)) {
    case 0:
        errno = EAGAIN;
        return -1;
    default:
        /* EOF while writing (close_notify) is an error for the writer */
        c->fatal = true;
        errno = saved != 0 ? saved : EPIPE;
        return -1;
    }
}

unsigned tls_conn_want(const tls_conn_t *c, enum tls_op op)
{
    return c->want[op];
}

bool tls_conn_pending(const tls_conn_t *c)
{
    return !c->fatal && SSL_pending(c->ssl) > 0;
}

size_t tls_conn_peek(tls_conn_t *c, char *buf, size_t size)
{
    size_t got = 0;

    if (c->fatal || c->close_notify || size == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_peek_ex(c->ssl, buf, size, &got);
    int saved = errno;
    if (r == 1)
        return got;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    /* the next read reports it */
    if (e == SSL_ERROR_ZERO_RETURN)
        c->close_notify = true;
    else
        tls_conn_fail(c, e, saved);
    ERR_clear_error();
    return 0;
}

int tls_conn_shutdown(tls_conn_t *c)
{
    if (c->fatal || !SSL_is_init_finished(c->ssl))
        return -1;
    ERR_clear_error();
    errno = 0;
    int r = SSL_shutdown(c->ssl);
    int saved = errno;
    if (r >= 0) {
        c->want[TLS_OP_SHUTDOWN] = 0;
        ERR_clear_error();
        return 1;
    }
    return tls_conn_result(c, TLS_OP_SHUTDOWN, r, saved) == 0 ? 0 : -1;
}

const char *tls_conn_error(const tls_conn_t *c)
{
    return c->error;
}

const char *tls_conn_version(const tls_conn_t *c)
{
    return SSL_get_version(c->ssl);
}

const char *tls_conn_cipher(const tls_conn_t *c)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    return ci != NULL ? SSL_CIPHER_get_name(ci) : "(none)";
}

int tls_conn_cipher_bits(const tls_conn_t *c)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    return ci != NULL ? SSL_CIPHER_get_bits(ci, NULL) : 0;
}

bool tls_conn_peer_cert(const tls_conn_t *c)
{
    return SSL_get0_peer_certificate(c->ssl) != NULL;
}

bool tls_conn_peer_verified(const tls_conn_t *c)
{
    return tls_conn_peer_cert(c) && SSL_get_verify_result(c->ssl) == X509_V_OK;
}

bool tls_conn_close_notify(const tls_conn_t *c)
{
    return c->close_notify;
}

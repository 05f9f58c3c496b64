/*
 * tls - OpenSSL contexts and non-blocking TLS connections (see tls.h).
 *
 * Error queue discipline: OpenSSL keeps errors in a per-thread queue that
 * every connection of the process shares. Each entry point here clears it
 * first (so SSL_get_error sees only this call's errors) and leaves it
 * empty: failures are formatted into the connection's own buffer.
 */
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
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

struct tls_sni {
    char *name;            /* lowercase; ".example.com": its subdomains */
    tls_ctx_t *ctx;
};

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    bool server;
    struct tls_sni *sni;   /* tls_ctx_sni_add */
    size_t nsni;
};

/* ticket keys hang off the SSL_CTX (ex_data), not the tls_ctx: a live
   SSL may outlive tls_ctx_free */
struct tls_ticket_keys {
    size_t n;
    unsigned char key[TLS_TICKET_KEYS_MAX][TLS_TICKET_KEY_SIZE];
};
static int tls_ticket_index = -1;

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
        /* one session ID context for every context of the process, so a
           session survives an SNI switch and peer verification */
        static const unsigned char sid[] = "tern";
        if (SSL_CTX_set_session_id_context(sc, sid, sizeof(sid) - 1) != 1) {
            tls_set_error(error_r, tls_error_new("session ID context"));
            SSL_CTX_free(sc);
            return NULL;
        }
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

tls_ctx_t *tls_ctx_server_chain_new(const char *files, char **error_r)
{
    tls_ctx_t *ctx = tls_ctx_common(true, error_r);
    if (ctx == NULL)
        return NULL;
    if (tls_ctx_use_chain_files(ctx, files, error_r) < 0) {
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
    if (ca_file != NULL && *ca_file != '\0') {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
            tls_set_error(error_r, tls_error_new("cannot load CA file %s",
                                                 ca_file));
            return -1;
        }
        /* name the CAs in the request: some clients send a certificate
           only when its issuer is listed */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (names == NULL) {
            tls_set_error(error_r, tls_error_new("no CA names in %s", ca_file));
            return -1;
        }
        SSL_CTX_set_client_CA_list(ctx->ssl_ctx, names);
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

int tls_ctx_client_verify(tls_ctx_t *ctx, const char *ca_file,
                          const char *ca_path, bool require, char **error_r)
{
    const char *f = ca_file != NULL && *ca_file ? ca_file : NULL;
    const char *d = ca_path != NULL && *ca_path ? ca_path : NULL;

    ERR_clear_error();
    if ((f != NULL || d != NULL)
        && SSL_CTX_load_verify_locations(ctx->ssl_ctx, f, d) != 1) {
        tls_set_error(error_r, tls_error_new("cannot load CA file %s / "
                                             "CA path %s", f ? f : "-",
                                             d ? d : "-"));
        return -1;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, require ? SSL_VERIFY_PEER
                                             : SSL_VERIFY_NONE, NULL);
    return 0;
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
    for (size_t i = 0; i < ctx->nsni; i++) {
        free(ctx->sni[i].name);
        tls_ctx_free(ctx->sni[i].ctx);
    }
    free(ctx->sni);
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

int tls_conn_set_verify_names(tls_conn_t *c, const char *const *names,
                              size_t n)
{
    int ok = 1;

    ERR_clear_error();
    if (n == 0)
        ok = SSL_set1_host(c->ssl, NULL) == 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = (i == 0 ? SSL_set1_host(c->ssl, names[i])
                     : SSL_add1_host(c->ssl, names[i])) == 1;
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

/* ---- protocol and cipher settings ----------------------------------------- */

static const struct {
    const char *name;
    int version;          /* 0: SSLv2/SSLv3, never offered */
} tls_protocol_names[] = {
    { "SSLv2", 0 }, { "SSLv3", 0 },
    { "TLSv1", TLS_VERSION_1_0 }, { "TLSv1.1", TLS_VERSION_1_1 },
    { "TLSv1.2", TLS_VERSION_1_2 }, { "TLSv1.3", TLS_VERSION_1_3 },
};
#define TLS_NPROTO (sizeof(tls_protocol_names) / sizeof(tls_protocol_names[0]))

/* tls_protocol_index - position of name in tls_protocol_names, -1 */
static int tls_protocol_index(const char *name, size_t len)
{
    for (size_t i = 0; i < TLS_NPROTO; i++)
        if (strlen(tls_protocol_names[i].name) == len
            && strncasecmp(tls_protocol_names[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int tls_protocols_parse(const char *spec, int *min_r, int *max_r,
                        char **error_r)
{
    bool include[TLS_NPROTO] = { false }, exclude[TLS_NPROTO] = { false };
    bool any_include = false;
    int lo = 0, hi = (int)TLS_NPROTO - 1;
    const char *p = spec;

    ERR_clear_error();   /* tls_error_new adds what is queued */
    while (*p != '\0') {
        while (*p == ',' || *p == ':' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        const char *w = p;
        while (*p != '\0' && *p != ',' && *p != ':' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - w);
        int kind = 0;     /* 0 include, 1 exclude, 2 >=, 3 <= */
        if (*w == '!') {
            kind = 1, w++, len--;
        } else if (len >= 2 && (strncmp(w, ">=", 2) == 0
                                || strncmp(w, "<=", 2) == 0)) {
            kind = *w == '>' ? 2 : 3;
            w += 2, len -= 2;
        }
        int i = tls_protocol_index(w, len);
        if (i < 0) {
            tls_set_error(error_r, tls_error_new("unknown TLS protocol \"%.*s\"",
                                             (int)len, w));
            return -1;
        }
        switch (kind) {
        case 0: include[i] = true, any_include = true; break;
        case 1: exclude[i] = true; break;
        case 2: if (i > lo) lo = i; break;
        default: if (i < hi) hi = i; break;
        }
    }
    int min = 0, max = 0;
    bool gap = false;
    for (int i = 0; i < (int)TLS_NPROTO; i++) {
        bool on = tls_protocol_names[i].version != 0 && i >= lo && i <= hi
                  && !exclude[i] && (!any_include || include[i]);
        if (on && max != 0 && max != tls_protocol_names[i].version - 1)
            gap = true;
        if (on) {
            if (min == 0)
                min = tls_protocol_names[i].version;
            max = tls_protocol_names[i].version;
        }
    }
    if (min == 0) {
        tls_set_error(error_r, tls_error_new("\"%s\" leaves no TLS protocol", spec));
        return -1;
    }
    if (gap) {
        tls_set_error(error_r, tls_error_new("\"%s\": the TLS protocols must be "
                                         "one range", spec));
        return -1;
    }
    *min_r = min;
    *max_r = max;
    return 0;
}

int tls_ctx_set_ciphers(tls_ctx_t *ctx, const char *list, char **error_r)
{
    ERR_clear_error();
    if (SSL_CTX_set_cipher_list(ctx->ssl_ctx, list) != 1) {
        tls_set_error(error_r, tls_error_new("cipher list \"%s\"", list));
        return -1;
    }
    return 0;
}

/* ---- chain files (a private key, then its certificates) ----------------------- */

/* tls_chain_use - install key and certs[0] (+ the rest as its chain) */
static char *tls_chain_use(SSL_CTX *sc, EVP_PKEY *key, STACK_OF(X509) *certs,
                           const char *path)
{
    if (key == NULL)
        return tls_error_new("%s: a certificate without a private key "
                             "before it", path);
    if (sk_X509_num(certs) == 0)
        return tls_error_new("%s: a private key without its certificate",
                             path);
    X509 *leaf = sk_X509_shift(certs);
    int ok = SSL_CTX_use_cert_and_key(sc, leaf, key, certs, 1);
    X509_free(leaf);
    if (ok != 1)
        return tls_error_new("%s: cannot use the key and its certificates "
                             "(do they match?)", path);
    return NULL;
}

int tls_ctx_use_chain_files(tls_ctx_t *ctx, const char *files,
                            char **error_r)
{
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    char *err = NULL, *list = xstrdup(files), *save = NULL;
    const char *last = "";
    int groups = 0;

    ERR_clear_error();
    if (certs == NULL)
        err = tls_error_new("out of memory");
    for (char *f = strtok_r(list, ", \t", &save); f != NULL && err == NULL;
         f = strtok_r(NULL, ", \t", &save)) {
        last = f;
        BIO *bio = BIO_new_file(f, "r");
        if (bio == NULL) {
            err = tls_error_new("cannot open %s", f);
            break;
        }
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long len = 0;
        while (err == NULL && PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
            const unsigned char *q = data;
            if (header[0] != '\0' || strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
                err = tls_error_new("%s: encrypted keys are not supported", f);
            } else if (strstr(name, "PRIVATE KEY") != NULL) {
                if (key != NULL) {
                    err = tls_chain_use(ctx->ssl_ctx, key, certs, f);
                    EVP_PKEY_free(key);
                    key = NULL;
                    groups++;
                }
                if (err == NULL
                    && (key = d2i_AutoPrivateKey(NULL, &q, len)) == NULL)
                    err = tls_error_new("%s: bad private key", f);
            } else if (strcmp(name, "CERTIFICATE") == 0) {
                X509 *x = key == NULL ? NULL : d2i_X509(NULL, &q, len);
                if (key == NULL)
                    err = tls_error_new("%s: a certificate without a private "
                                        "key before it", f);
                else if (x == NULL)
                    err = tls_error_new("%s: bad certificate", f);
                else if (sk_X509_push(certs, x) <= 0) {
                    X509_free(x);
                    err = tls_error_new("out of memory");
                }
            }   /* anything else (EC PARAMETERS, ...) is skipped */
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(data);
            name = header = NULL;
            data = NULL;
        }
        unsigned long e = ERR_peek_last_error();
        if (err == NULL && e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM
                                       && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
            err = tls_error_new("%s: bad PEM data", f);
        ERR_clear_error();
        BIO_free(bio);
    }
    if (err == NULL && (key != NULL || groups == 0)) {
        err = tls_chain_use(ctx->ssl_ctx, key, certs, last);
        groups++;
    }
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    free(list);
    if (err != NULL) {
        tls_set_error(error_r, err);
        return -1;
    }
    return 0;
}

/* ---- SNI ------------------------------------------------------------------------ */

static tls_ctx_t *tls_sni_find(const tls_ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->nsni; i++)
        if (strcmp(ctx->sni[i].name, name) == 0)
            return ctx->sni[i].ctx;
    return NULL;
}

/* tls_sni_select - the full name, then ".parent" domains; none: the
   default context stays */
static int tls_sni_select(SSL *ssl, int *alert, void *arg)
{
    tls_ctx_t *ctx = arg;
    const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char name[256];
    size_t len;

    (void)alert;
    if (sn == NULL || (len = strlen(sn)) == 0 || len >= sizeof(name))
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i <= len; i++)
        name[i] = (char)tolower((unsigned char)sn[i]);
    if (name[len - 1] == '.')
        name[--len] = '\0';
    tls_ctx_t *sub = tls_sni_find(ctx, name);
    for (char *dot = strchr(name, '.'); sub == NULL && dot != NULL;
         dot = strchr(dot + 1, '.'))
        sub = tls_sni_find(ctx, dot);
    if (sub != NULL && SSL_set_SSL_CTX(ssl, sub->ssl_ctx) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

int tls_ctx_sni_add(tls_ctx_t *ctx, const char *name, tls_ctx_t *sub,
                    char **error_r)
{
    size_t len = strlen(name);
    char *lower;

    if (len == 0 || len > 255) {
        tls_set_error(error_r, tls_error_new("bad SNI name \"%s\"", name));
        return -1;
    }
    lower = xstrdup(name);
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    if (lower[len - 1] == '.' && len > 1)
        lower[len - 1] = '\0';
    if (tls_sni_find(ctx, lower) != NULL) {
        free(lower);
        return 1;
    }
    ctx->sni = xrealloc(ctx->sni, (ctx->nsni + 1) * sizeof(*ctx->sni));
    ctx->sni[ctx->nsni].name = lower;
    ctx->sni[ctx->nsni].ctx = sub;
    ctx->nsni++;
    if (ctx->nsni == 1) {
        SSL_CTX_set_tlsext_servername_callback(ctx->ssl_ctx, tls_sni_select);
        SSL_CTX_set_tlsext_servername_arg(ctx->ssl_ctx, ctx);
    }
    return 0;
}

/* ---- session tickets ---------------------------------------------------------- */

static void tls_ticket_keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
                                 int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        OPENSSL_cleanse(ptr, sizeof(struct tls_ticket_keys));
        free(ptr);
    }
}

/* key layout: name[16], AES-256 key[32], HMAC-SHA256 key[32] */
static int tls_ticket_init(const unsigned char *key, unsigned char *iv,
                           EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  (void *)(key + 48), 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_CipherInit_ex(ectx, EVP_aes_256_cbc(), NULL, key + 16, iv, enc) != 1
        || EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    return 0;
}

/* tls_ticket_cb - encrypt with the first key; decrypt with any (a
   ticket of an older key is accepted once and renewed) */
static int tls_ticket_cb(SSL *ssl, unsigned char key_name[16],
                         unsigned char *iv, EVP_CIPHER_CTX *ectx,
                         EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_ticket_keys *k =
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ticket_index);

    if (k == NULL || k->n == 0)
        return enc ? -1 : 0;
    if (enc) {
        memcpy(key_name, k->key[0], 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1
            || tls_ticket_init(k->key[0], iv, ectx, hctx, 1) < 0)
            return -1;
        return 1;
    }
    for (size_t i = 0; i < k->n; i++) {
        if (memcmp(key_name, k->key[i], 16) != 0)
            continue;
        if (tls_ticket_init(k->key[i], iv, ectx, hctx, 0) < 0)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;      /* unknown key: a full handshake */
}

int tls_ctx_set_tickets(tls_ctx_t *ctx, const unsigned char *keys,
                        size_t nkeys, long lifetime, char **error_r)
{
    SSL_CTX *sc = ctx->ssl_ctx;

    ERR_clear_error();
    if (lifetime <= 0) {
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        if (SSL_CTX_set_num_tickets(sc, 0) != 1) {
            tls_set_error(error_r, tls_error_new("no session tickets"));
            return -1;
        }
        return 0;
    }
    (void)SSL_CTX_set_timeout(sc, lifetime);
    if (nkeys == 0)
        return 0;           /* OpenSSL's own per-context random key */
    if (nkeys > TLS_TICKET_KEYS_MAX) {
        tls_set_error(error_r, tls_error_new("too many ticket keys"));
        return -1;
    }
    if (tls_ticket_index < 0) {
        tls_ticket_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
                                                    tls_ticket_keys_free);
        if (tls_ticket_index < 0) {
            tls_set_error(error_r, tls_error_new("ex_data index"));
            return -1;
        }
    }
    struct tls_ticket_keys *k = xcalloc(1, sizeof(*k));
    k->n = nkeys;
    memcpy(k->key, keys, nkeys * TLS_TICKET_KEY_SIZE);
    void *old = SSL_CTX_get_ex_data(sc, tls_ticket_index);
    if (SSL_CTX_set_ex_data(sc, tls_ticket_index, k) != 1) {
        tls_ticket_keys_free(NULL, k, NULL, 0, 0, NULL);
        tls_set_error(error_r, tls_error_new("ex_data"));
        return -1;
    }
    tls_ticket_keys_free(NULL, old, NULL, 0, 0, NULL);
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(sc, tls_ticket_cb) != 1) {
        tls_set_error(error_r, tls_error_new("ticket key callback"));
        return -1;
    }
    return 0;
}

/* ---- the peer ------------------------------------------------------------------- */

bool tls_conn_resumed(const tls_conn_t *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

struct ssl_st *tls_conn_openssl(tls_conn_t *c)
{
    return c->ssl;
}

const char *tls_conn_servername(const tls_conn_t *c)
{
    return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

int tls_conn_peer_fingerprint(const tls_conn_t *c, char *buf, size_t size)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789ABCDEF";

    if (size > 0)
        buf[0] = '\0';
    if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1
        || size < (size_t)n * 3) {
        ERR_clear_error();
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        buf[3 * i] = hex[md[i] >> 4];
        buf[3 * i + 1] = hex[md[i] & 0xf];
        buf[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    return 0;
}

/* tls_name_cn - the CN of name, printable ASCII only (it is logged) */
static void tls_name_cn(const X509_NAME *name, char *buf, size_t size)
{
    int len = name == NULL ? -1
        : X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName, buf,
                                    (int)size);
    if (len < 0) {
        (void)str_copy(buf, "", size);
        ERR_clear_error();
        return;
    }
    for (char *p = buf; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
}

void tls_conn_peer_names(const tls_conn_t *c, char *subject, char *issuer,
                         size_t size)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);

    tls_name_cn(x ? X509_get_subject_name(x) : NULL, subject, size);
    tls_name_cn(x ? X509_get_issuer_name(x) : NULL, issuer, size);
}

const char *tls_conn_peer_verify_error(const tls_conn_t *c)
{
    long v = SSL_get_verify_result(c->ssl);
    return v == X509_V_OK ? "" : X509_verify_cert_error_string(v);
}

/*
 * tls - OpenSSL 3 contexts and per-connection TLS objects for the stream
 * layer (stream.h drives them from the event loop: stream_start_tls).
 *
 * Contexts: a server context from PEM certificate/key/chain files or
 * Postfix-style chain files (key, then its certificates), optionally
 * asking clients for certificates, with more server contexts selected by
 * SNI name (tls_ctx_sni_add) and session tickets under keys the caller
 * supplies (tls_ctx_set_tickets: shared by processes, so a session
 * resumes with any of them); a client context with or without
 * verification (optionally with its own certificate). Defaults: TLS 1.2 to 1.3,
 * forward-secret AEAD ciphers for TLS 1.2 (OpenSSL's defaults for 1.3),
 * no compression, no renegotiation, no server-side session cache (stateless
 * tickets still resume), small idle buffers (SSL_MODE_RELEASE_BUFFERS).
 *
 * Connections: non-blocking. Every call clears OpenSSL's thread error queue
 * before it starts and drains it before it returns, so an error of one
 * connection is never reported on another; a failure's text is kept in
 * the connection (tls_conn_error). read/write have the shape of a
 * struct stream_io (tls_stream_io): bytes, 0 at EOF (close_notify, or the
 * peer closed the socket without one: tls_conn_close_notify tells which),
 * -1 with errno EAGAIN when OpenSSL needs the socket readable or writable
 * (tls_conn_want says which: a write may need a read), another errno on a
 * fatal error.
 *
 * Security: creating a connection sets SIGPIPE to ignored (OpenSSL writes
 * to the socket with write(2), and a peer's reset must be EPIPE, not a
 * signal). Errors strings returned through error_r are malloc'd and
 * belong to the caller.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "stream.h"

/* protocol versions for tls_ctx_set_versions (the TLS wire values) */
#define TLS_VERSION_1_0 0x0301
#define TLS_VERSION_1_1 0x0302
#define TLS_VERSION_1_2 0x0303
#define TLS_VERSION_1_3 0x0304

/* what a call that could not finish waits for (tls_conn_want) */
#define TLS_WANT_READ  0x1u
#define TLS_WANT_WRITE 0x2u

enum tls_op {
    TLS_OP_HANDSHAKE = 0,
    TLS_OP_READ = 1,
    TLS_OP_WRITE = 2,
    TLS_OP_SHUTDOWN = 3,
};

/* (the typedefs are repeated in stream.h) */
typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

/*
 * Server context. cert_file: PEM, the server certificate first, then any
 * intermediates; key_file: PEM private key (NULL: in cert_file);
 * chain_file: more intermediates (NULL: none). The key must match the
 * certificate. NULL with *error_r (malloc'd) on failure.
 */
tls_ctx_t *tls_ctx_server_new(const char *cert_file, const char *key_file,
                              const char *chain_file, char **error_r);

/* Server context from chain files (tls_ctx_use_chain_files). */
tls_ctx_t *tls_ctx_server_chain_new(const char *files, char **error_r);

/* Load (or replace) the context's own certificate, as above: a client
   context that should present one. 0 ok, -1 with *error_r. */
int tls_ctx_set_cert(tls_ctx_t *ctx, const char *cert_file,
                     const char *key_file, const char *chain_file,
                     char **error_r);

/* Server: ask the client for a certificate (never required: one that
   does not verify against ca_file, or any when ca_file is NULL, is
   accepted, and tls_conn_peer_verified says so); the request names the
   CAs of ca_file. 0 ok, -1 *error_r. */
int tls_ctx_ask_peer_cert(tls_ctx_t *ctx, const char *ca_file, char **error_r);

/* Client context. ca_file: PEM trust anchors, the peer must verify
   against them; NULL: no verification (opportunistic TLS: the peer's
   certificate is still available). */
tls_ctx_t *tls_ctx_client_new(const char *ca_file, char **error_r);

/* Client: trust anchors from ca_file and/or ca_path (PEM file, hashed
   directory; either may be NULL or ""), read now (so before chroot).
   require: the handshake fails when the certificate does not verify
   (SSL_VERIFY_PEER); else the outcome is only reported
   (tls_conn_peer_verified). 0 ok, -1 with *error_r. */
int tls_ctx_client_verify(tls_ctx_t *ctx, const char *ca_file,
                          const char *ca_path, bool require, char **error_r);

/* Override the protocol range (TLS_VERSION_*; 0 = OpenSSL's lowest/highest).
   0 ok, -1 with *error_r. */
int tls_ctx_set_versions(tls_ctx_t *ctx, int min_version, int max_version,
                         char **error_r);

/* Postfix protocol syntax (">=TLSv1.2", "!SSLv3, !TLSv1", "TLSv1.2
   TLSv1.3", separators comma, colon, space) to a TLS_VERSION_* range;
   SSLv2/SSLv3 are never offered. -1 *error_r: unknown name, nothing
   left, or a set with a hole (OpenSSL 3 takes a range). */
int tls_protocols_parse(const char *spec, int *min_r, int *max_r,
                        char **error_r);

/* OpenSSL cipher list for TLS 1.2 and below (TLS 1.3 suites unchanged). */
int tls_ctx_set_ciphers(tls_ctx_t *ctx, const char *list, char **error_r);

/* Replace the context's certificates with those of files (a list,
   comma/space separated, read in order as one PEM stream): each private
   key followed by its certificate, then that certificate's chain; several
   key+chain groups (RSA and ECDSA) may follow each other (Postfix's
   smtpd_tls_chain_files). Encrypted keys are refused. */
int tls_ctx_use_chain_files(tls_ctx_t *ctx, const char *files,
                            char **error_r);

/* Server SNI: a ClientHello naming name (exact, case-insensitive), or,
   for name ".example.com", any subdomain of example.com, gets sub's
   certificates (the full name wins over parents, the nearest parent
   over farther ones; anything else keeps ctx's). 0: ctx owns sub now;
   1: the name is already there (the first one stays), -1: a bad name
   (*error_r); in both cases the caller still owns sub. sub must have the same settings as ctx
   (verification, tickets, ciphers): OpenSSL switches the whole SSL_CTX. */
int tls_ctx_sni_add(tls_ctx_t *ctx, const char *name, tls_ctx_t *sub,
                    char **error_r);

/* Session resumption: tickets live lifetime seconds (<= 0: no tickets,
   no resumption). keys: nkeys keys of TLS_TICKET_KEY_SIZE bytes (a
   16-byte name, an AES-256-CBC key, an HMAC-SHA256 key); new tickets use
   the first, the others still decrypt (and get a renewed ticket). nkeys
   0: OpenSSL's random key of this context (resumption within this
   process only). */
#define TLS_TICKET_KEY_SIZE 80
#define TLS_TICKET_KEYS_MAX 4
int tls_ctx_set_tickets(tls_ctx_t *ctx, const unsigned char *keys,
                        size_t nkeys, long lifetime, char **error_r);

/* The OpenSSL SSL_CTX, for settings this module does not wrap. */
struct ssl_ctx_st *tls_ctx_openssl(tls_ctx_t *ctx);

/* Connections made from ctx keep what they need: free it any time. */
void tls_ctx_free(tls_ctx_t *ctx);

/* A TLS endpoint on the connected socket fd (not owned). NULL with
   *error_r. */
tls_conn_t *tls_conn_new(tls_ctx_t *ctx, int fd, bool server_side,
                         char **error_r);
/* Client: the name to send as SNI and, with a verifying context, to
   check the certificate against. 0 ok, -1 failure. */
int tls_conn_set_servername(tls_conn_t *c, const char *name);
/* Client: the names the server certificate must match (replacing what
   tls_conn_set_servername set; a name with a leading dot matches its
   subdomains; n 0: no name check). Checked only by a verifying context.
   0 ok, -1 failure. */
int tls_conn_set_verify_names(tls_conn_t *c, const char *const *names,
                              size_t n);
void tls_conn_free(tls_conn_t *c);

/* 1 done, 0 call again when tls_conn_want(c, TLS_OP_HANDSHAKE) is
   ready, -1 failed (tls_conn_error). */
int tls_conn_handshake(tls_conn_t *c);

/* struct stream_io shape; io_ctx is the tls_conn_t, fd is ignored. */
ssize_t tls_conn_read(void *io_ctx, int fd, void *p, size_t n);
ssize_t tls_conn_write(void *io_ctx, int fd, const void *p, size_t n);
extern const struct stream_io tls_stream_io;

/* TLS_WANT_READ / TLS_WANT_WRITE: what the last op that could not finish
   waits for; 0 when the last op of that kind finished. */
unsigned tls_conn_want(const tls_conn_t *c, enum tls_op op);

/* Decrypted bytes or unprocessed records are buffered inside OpenSSL: a
   read can make progress without the socket becoming readable. */
bool tls_conn_pending(const tls_conn_t *c);

/* Copy up to size decrypted bytes without consuming them; 0 when none are
   available without blocking. */
size_t tls_conn_peek(tls_conn_t *c, char *buf, size_t size);

/* Send close_notify. 1 sent (the peer's is not awaited), 0 call again
   when tls_conn_want(c, TLS_OP_SHUTDOWN) is ready, -1 impossible (after
   a fatal error, or before the handshake finished). */
int tls_conn_shutdown(tls_conn_t *c);

/* The reason of the last failure ("" when none). */
const char *tls_conn_error(const tls_conn_t *c);

/* After the handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", secret bits;
   whether the peer presented a certificate and whether it verified. */
const char *tls_conn_version(const tls_conn_t *c);
const char *tls_conn_cipher(const tls_conn_t *c);
int tls_conn_cipher_bits(const tls_conn_t *c);
bool tls_conn_peer_cert(const tls_conn_t *c);
bool tls_conn_peer_verified(const tls_conn_t *c);
/* The session was resumed (a ticket), not a full handshake. */
bool tls_conn_resumed(const tls_conn_t *c);
/* The OpenSSL SSL, for what this module does not wrap (tests: sessions). */
struct ssl_st *tls_conn_openssl(tls_conn_t *c);
/* The SNI name the client sent, NULL if none. */
const char *tls_conn_servername(const tls_conn_t *c);
/* SHA-256 of the peer's certificate (DER) as "AB:CD:...": 96 bytes with
   the NUL. 0 ok, -1 no certificate (buf ""). */
#define TLS_FINGERPRINT_SIZE 96
int tls_conn_peer_fingerprint(const tls_conn_t *c, char *buf, size_t size);
/* The peer certificate's subject and issuer CN (printable ASCII, "" if
   none), each into a buffer of size bytes. */
void tls_conn_peer_names(const tls_conn_t *c, char *subject, char *issuer,
                         size_t size);
/* Why the peer's certificate did not verify ("" if it did or none). */
const char *tls_conn_peer_verify_error(const tls_conn_t *c);
/* The peer's close_notify was received (a clean TLS end, not a TCP one). */
bool tls_conn_close_notify(const tls_conn_t *c);

#endif

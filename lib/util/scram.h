/*
 * scram - SASL SCRAM-SHA-256 (RFC 7677, RFC 5802), server side: the
 * stored credentials and the four messages. No I/O and no protocol
 * state beyond one exchange's struct scram_server: auth(8) runs it.
 *
 * Stored credentials ("secrets"): iteration count, salt, StoredKey and
 * ServerKey, never the password, in one text form
 *   scram-sha-256:ITER:SALT_B64:STOREDKEY_B64:SERVERKEY_B64
 * ITER SCRAM_ITER_MIN..SCRAM_ITER_MAX (the upper bound caps what one
 * table entry can make auth spend), salt 8..SCRAM_SALT_MAX bytes, keys
 * 32 bytes; base64 strict (util/sasl.h).
 *
 * Messages (strict; attribute order as RFC 5802 section 7):
 * client-first: gs2 header "n,," or "y,," (the client could do channel
 *   binding but thinks we cannot: true, we do not offer -PLUS); "p=" is
 *   refused; an authzid "a=NAME" is accepted only when it equals the
 *   user name (as PLAIN). Then "n=USER,r=NONCE" and optional extensions
 *   ",X=value"; "m=" (mandatory extension) is refused. USER is a
 *   saslname: "=2C" and "=3D" stand for "," and "=", any other "=" is
 *   an error; decoded 1..SASL_FIELD_MAX bytes without control
 *   characters. NONCE: 1..SCRAM_NONCE_MAX printable characters other
 *   than ",".
 * server-first: "r=CNONCE SNONCE,s=SALT_B64,i=ITER".
 * client-final: "c=B64(gs2 header),r=NONCE[,ext...],p=B64(proof)":
 *   c must be the gs2 header of client-first, r the combined nonce,
 *   the proof 32 bytes and last.
 * server-final: "v=B64(ServerSignature)".
 *
 * Security: the proof is checked in constant time (CRYPTO_memcmp);
 * keys and the salted password are wiped (scram_server_clear,
 * scram_secrets_clear, OPENSSL_cleanse). Error strings are static and
 * never contain client data.
 */
#ifndef TERN_SCRAM_H
#define TERN_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "sasl.h"

#define SCRAM_MECH "SCRAM-SHA-256"
#define SCRAM_PREFIX "scram-sha-256:"
#define SCRAM_KEY_LEN 32
#define SCRAM_SALT_MIN 8
#define SCRAM_SALT_MAX 64
#define SCRAM_SALT_DEFAULT 16
#define SCRAM_ITER_MIN 4096
#define SCRAM_ITER_MAX 1000000
#define SCRAM_ITER_DEFAULT 4096
#define SCRAM_NONCE_MAX 128
/* the longest client-first / client-final a peer may send */
#define SCRAM_MSG_MAX 1024

struct scram_secrets {
    unsigned iter;
    size_t salt_len;
    unsigned char salt[SCRAM_SALT_MAX];
    unsigned char stored_key[SCRAM_KEY_LEN];
    unsigned char server_key[SCRAM_KEY_LEN];
};

/* derive the secrets of password (len bytes) with salt and iter; 0 ok,
   -1 bad parameters or an OpenSSL failure */
int scram_secrets_derive(const char *password, size_t len,
                         const unsigned char *salt, size_t salt_len,
                         unsigned iter, struct scram_secrets *out);
/* the same with a fresh random salt of SCRAM_SALT_DEFAULT bytes */
int scram_secrets_make(const char *password, unsigned iter,
                       struct scram_secrets *out);
/* append the text form to out; 0 ok, -1 the buffer cap */
int scram_secrets_format(const struct scram_secrets *s, buf_t *out);
/* parse the text form (s[0..len)); 0 ok, -1 *error_r */
int scram_secrets_parse(const char *s, size_t len, struct scram_secrets *out,
                        const char **error_r);
/* plausible secrets for a user that has none: salt and keys derived
   from name and key (a per-process secret), so repeated probes look
   the same; 0 ok, -1 an OpenSSL failure */
int scram_secrets_fake(const char *name, const unsigned char *key,
                       size_t key_len, struct scram_secrets *out);
void scram_secrets_clear(struct scram_secrets *s);

/* one exchange, server side */
struct scram_server {
    char user[SASL_FIELD_MAX + 1];      /* decoded n= */
    char gs2[SASL_FIELD_MAX * 3 + 8];   /* "n,," "y,," or with a=... */
    char nonce[2 * SCRAM_NONCE_MAX + 1]; /* client nonce, then combined */
    char auth_msg[3 * SCRAM_MSG_MAX];   /* client-first-bare "," server-first */
    size_t auth_len;
    struct scram_secrets sec;
    bool started;                       /* server-first made */
};

/* decode client-first (raw bytes, after base64); st->user is the user
   name. 0 ok, -1 *error_r */
int scram_client_first(struct scram_server *st, const char *msg, size_t len,
                       const char **error_r);
/* append server-first (raw, not base64) to out, with snonce (printable,
   no ",") after the client's nonce and the user's secrets; 0 ok, -1
   *error_r */
int scram_server_first(struct scram_server *st,
                       const struct scram_secrets *sec, const char *snonce,
                       buf_t *out, const char **error_r);
/* the stateless form of scram_server_first: accept a server-first made
   earlier (by the caller's peer) for this client-first, when its nonce
   extends the client's and its salt and iterations are sec's, byte for
   byte; 0 ok, -1 *error_r */
int scram_server_first_check(struct scram_server *st,
                             const struct scram_secrets *sec,
                             const char *msg, size_t len,
                             const char **error_r);
/* check client-final; 1 the proof is good and server-final (raw) is
   appended to out, 0 a wrong proof (a wrong password), -1 a malformed
   message or a nonce / channel binding mismatch (*error_r) */
int scram_client_final(struct scram_server *st, const char *msg, size_t len,
                       buf_t *out, const char **error_r);
/* wipe the exchange */
void scram_server_clear(struct scram_server *st);

#endif

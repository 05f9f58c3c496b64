/*
 * sasl - the message codecs of SASL PLAIN (RFC 4616) and LOGIN, and the
 * strict base64 (RFC 4648 section 4) they travel in. No protocol state:
 * the SMTP/POP3/IMAP side runs the exchange; this only turns what the
 * client sent into user names and a password, or says why it cannot.
 *
 * base64: standard alphabet, padding required (length a multiple of 4),
 * '=' only as the last one or two characters, no whitespace, and the
 * unused bits of the last group must be zero (one encoding per value).
 * The empty string decodes to nothing. SASL's "*" (cancel) and "="
 * (empty initial response) are the caller's business: both are rejected
 * here as malformed base64.
 *
 * PLAIN: authzid NUL authcid NUL passwd, exactly two NULs; authcid and
 * passwd 1..SASL_FIELD_MAX bytes, authzid 0..SASL_FIELD_MAX; authzid must
 * be empty or equal to authcid (Tern does not let one user act as
 * another). User names must not contain control characters (they reach
 * logs and IPC attributes); a password may hold any byte except NUL.
 *
 * LOGIN: each client response is base64 of one field (user name, then
 * password) with the same rules as the PLAIN fields.
 *
 * Security: decoded passwords live in caller-owned storage; callers wipe
 * it with sasl_plain_clear()/explicit_bzero() when done. Error strings
 * are static and never contain client data.
 */
#ifndef TERN_SASL_H
#define TERN_SASL_H

#include <stddef.h>
#include "buf.h"

#define SASL_FIELD_MAX 255

/* the LOGIN challenges, already base64 ("Username:", "Password:") */
#define SASL_LOGIN_USER_CHALLENGE "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS_CHALLENGE "UGFzc3dvcmQ6"

/* append the base64 form of data[0..len) to out; 0 ok, -1 buffer cap */
int sasl_base64_encode(const void *data, size_t len, buf_t *out);
/* append the decoded bytes of s[0..len) to out; 0 ok, -1 with *error_r
   (malformed base64, or out's cap). */
int sasl_base64_decode(const char *s, size_t len, buf_t *out,
                       const char **error_r);

struct sasl_plain {
    char authzid[SASL_FIELD_MAX + 1];
    char authcid[SASL_FIELD_MAX + 1];
    char passwd[SASL_FIELD_MAX + 1];
};

/* decode a PLAIN message (raw bytes, after base64); 0 ok, -1 *error_r */
int sasl_plain_decode(const char *msg, size_t len, struct sasl_plain *out,
                      const char **error_r);
/* decode the base64 client response of PLAIN; 0 ok, -1 *error_r */
int sasl_plain_decode64(const char *b64, size_t len, struct sasl_plain *out,
                        const char **error_r);
/* append base64(authzid NUL authcid NUL passwd) to out (client side and
   tests); 0 ok, -1 a field breaks the rules above or the buffer cap */
int sasl_plain_encode(const char *authzid, const char *authcid,
                      const char *passwd, buf_t *out);
/* wipe a decoded message */
void sasl_plain_clear(struct sasl_plain *p);

/* which LOGIN field a response carries: user names are checked for
   control characters, passwords are not */
enum sasl_login_field { SASL_LOGIN_USER, SASL_LOGIN_PASSWORD };

/* decode one base64 LOGIN response into out (size >= SASL_FIELD_MAX+1,
   NUL-terminated); 0 ok, -1 *error_r */
int sasl_login_decode64(const char *b64, size_t len,
                        enum sasl_login_field field, char *out, size_t size,
                        const char **error_r);

#endif

/*
 * addr - RFC 5321 envelope addresses: parsing MAIL FROM / RCPT TO paths
 * and their ESMTP parameters.
 *
 * Path = "<" [ A-d-l ":" ] Mailbox ">" or "<>" (null sender).
 * Mailbox = Local-part "@" ( Domain / address-literal ).
 * Local-part = Dot-string / Quoted-string (quoted-pairs allowed;
 * the stored form keeps the quotes only when needed).
 * Source routes ("@a,@b:user@c") are accepted and ignored (RFC 5321 C).
 * Domain: letters, digits, hyphens, dots, labels <= 63, total <= 255;
 * address literals "[1.2.3.4]", "[IPv6:...]". UTF-8 in the local part or
 * domain is accepted (SMTPUTF8-ready), control characters never.
 * Limits: local part 64, domain 255, path 256 octets (RFC 5321 4.5.3.1).
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

#define ADDR_MAX_LOCAL  64
#define ADDR_MAX_DOMAIN 255
#define ADDR_MAX_PATH   256
#define ESMTP_MAX_PARAMS 16

/*
 * Parse a path at the start of s (after "FROM:"/"TO:" and optional
 * spaces). On success returns 0, puts the mailbox ("" for "<>") into
 * addr_out, sets *rest past '>' (ESMTP parameters follow).
 * allow_null: "<>" accepted (MAIL FROM). A missing '<' '>' is accepted
 * only when lenient is true (Postfix's strict_rfc821_envelopes=no).
 * On error returns -1 with *error_r (a short reason for the 501 reply).
 */
int addr_parse_path(const char *s, bool allow_null, bool lenient,
                    buf_t *addr_out, const char **rest, const char **error_r);

/* Split "local@domain" at the '@' before the domain: the last '@', or
   the one before a trailing address literal (which may contain '@').
   Works on the stored and the canonical form alike. Pointers into a
   malloc'd copy are returned through local_r/domain_r (domain "" if
   none); free *local_r only. */
void addr_split(const char *addr, char **local_r, char **domain_r);

/* Lowercased domain, unquoted local part: the form used for lookups
   ("User"@Example.COM -> User@example.com). */
void addr_canonical(const char *addr, buf_t *out);

bool addr_domain_valid(const char *d, size_t len);

struct esmtp_param {
    char *keyword;   /* uppercased */
    char *value;     /* NULL if none */
};

/* Parse " KEY[=VALUE] KEY2..." (esmtp-keyword / esmtp-value grammar).
   0 ok; -1 with *error_r. Results malloc'd; free with esmtp_params_free. */
int esmtp_params_parse(const char *s, struct esmtp_param *out, size_t max,
                       size_t *n_out, const char **error_r);
void esmtp_params_free(struct esmtp_param *p, size_t n);
/* RFC 3461 xtext decode ("+2B" -> "+"); 0 ok, -1 malformed */
int xtext_decode(const char *s, buf_t *out);

/* RFC 3461 limits on the encoded parameter values */
#define ADDR_ENVID_MAX 100
#define ADDR_ORCPT_MAX 500

/* ENVID=xtext (RFC 3461 4.4): at most ADDR_ENVID_MAX characters,
   decoded to printable US-ASCII (SP included); 0 ok, -1 bad */
int addr_envid_decode(const char *value, buf_t *out);
/* ORCPT=addr-type;xtext (RFC 3461 4.2): only addr-type rfc822 (any
   case), at most ADDR_ORCPT_MAX characters, the decoded address
   US-ASCII and a valid RFC 5321 mailbox. out gets "rfc822;address".
   0 ok; -1 with *error_r. */
int addr_orcpt_decode(const char *value, buf_t *out, const char **error_r);

#endif

/*
 * mime_downgrade - 8-bit mail made 7-bit for a server that does not
 * offer 8BITMIME (RFC 6152 section 3: the client converts or bounces).
 *
 * The content (LF line ends, as stored) is walked as MIME entities:
 * multipart bodies part by part, message/rfc822 bodies as a nested
 * message, up to MIME_DOWNGRADE_MAX_DEPTH levels. A leaf whose body has
 * 8-bit bytes gets its body quoted-printable encoded (RFC 2045 6.7, soft
 * line breaks at 76 columns) and its Content-Transfer-Encoding set to
 * quoted-printable. Header fields are left as they are: 8-bit header text
 * has no 7-bit form with the same meaning. What cannot be converted is
 * said so (the caller bounces 5.6.3): a leaf already declared base64 or
 * quoted-printable that still holds 8-bit bytes, a multipart without a
 * boundary, or nesting deeper than the limit.
 */
#ifndef TERN_MIME_DOWNGRADE_H
#define TERN_MIME_DOWNGRADE_H

#include <stddef.h>
#include "util/buf.h"

#define MIME_DOWNGRADE_MAX_DEPTH 20

/* Append the 7-bit form of in[0..len) to out. 0 ok; -1 with a static
   reason in *why_r (cannot convert, or out's limit). */
int mime_downgrade(const char *in, size_t len, buf_t *out,
                   const char **why_r);

#endif

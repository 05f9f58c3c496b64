/*
 * smtpdata - incremental decoder for the SMTP DATA stream (RFC 5321
 * 4.1.1.4 and 4.5.2). Fed the raw bytes that follow the 354 reply, in
 * chunks of any size, it produces the message content:
 *
 *   - DATA ends ONLY at CR LF "." CR LF (or "." CR LF as the very first
 *     line). Every other spelling of a lone dot ("\n.\n", "\r\n.\n",
 *     "\n.\r\n", "\r.\r\n", ...) is content, so no SMTP smuggling.
 *   - a line that starts with "." loses that dot (dot-stuffing);
 *   - CR LF becomes LF; a bare LF is a line end in the content (it can
 *     never help end DATA) and is remembered, so the caller can apply
 *     smtpd_forbid_bare_newline=reject; a bare CR is content;
 *   - the message size is counted as RFC 1870 defines it for SIZE= (and
 *     as Postfix's smtpd counts it for message_size_limit): content octets
 *     with every line end counted as CR LF (2, also for a bare LF), the
 *     dot-stuffing dots and the end-of-data line not counted;
 *   - the header section (up to the first empty or non-header line) is
 *     watched for a Message-ID header, for the log.
 *
 * Stored form and SMTP smuggling: the output uses LF line ends and may
 * hold lines that are exactly "." (from "..", or a lone "." ended by a
 * bare LF) and bare CRs. Whoever sends it over SMTP again (the future
 * smtp client) MUST emit every LF as CR LF, keep a CR before it as
 * content (CR CR LF), and dot-stuff every line that starts with "."; a
 * sender that copies LF-ended lines as they are could emit "<LF>.<LF>"
 * or "<CR><LF>.<CR><LF>" and end its DATA early at the next hop.
 *
 * The decoder is a pure state machine: no I/O, no allocation besides the
 * caller's output buffer and a bounded header line buffer. Feeding the
 * same bytes in any chunking gives the same output and the same result.
 */
#ifndef TERN_SMTPDATA_H
#define TERN_SMTPDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

/* longest header line (unfolded) inspected for Message-ID; longer
   headers are content as usual but not examined */
#define SMTPDATA_HDR_MAX 1000
#define SMTPDATA_MSGID_MAX 256

typedef struct smtpdata {
    int state;              /* private */
    bool chunked;           /* BDAT: no dot-stuffing, no end-of-data line */
    bool bol_crlf;          /* private: current line began after CR LF */
    bool bare_lf;           /* a bare LF was seen */
    uint64_t size;          /* RFC 1870 message size so far (see above) */
    /* header tracking (private) */
    bool in_header;
    bool hdr_bol;
    bool hdr_cont;
    bool hdr_overflow;
    size_t hdr_len;
    char hdr[SMTPDATA_HDR_MAX];
    /* Message-ID value, control characters replaced; "" when none */
    char message_id[SMTPDATA_MSGID_MAX];
} smtpdata_t;

void smtpdata_init(smtpdata_t *d);

/*
 * Decode up to n bytes of p, appending content (LF line ends) to out.
 * *used_r is how many bytes were consumed.
 *   1: the end-of-data line was consumed (it is the last byte used);
 *      bytes after it belong to the next SMTP command.
 *   0: all n bytes consumed, more input needed.
 *  -1: out refused an append (over its max); *used_r is meaningless.
 * out grows by at most n + 2 bytes per call.
 */
int smtpdata_feed(smtpdata_t *d, const char *p, size_t n, buf_t *out,
                  size_t *used_r);

/*
 * BDAT (RFC 3030): the same decoder for counted chunks. A line that
 * starts with "." is content (no dot-stuffing) and nothing ends the
 * data but the caller's byte count; line ends, bare CR and bare LF,
 * the size count and the header watch are exactly as for DATA, so the
 * two paths store the same bytes for the same input (no smuggling
 * difference). smtpdata_feed never returns 1; after the LAST chunk the
 * caller calls smtpdata_end, which stores a final pending CR as
 * content. 0 ok, -1 out refused the append.
 */
void smtpdata_init_chunked(smtpdata_t *d);
int smtpdata_end(smtpdata_t *d, buf_t *out);

/* true when the content had a Message-ID header */
bool smtpdata_has_message_id(const smtpdata_t *d);

#endif

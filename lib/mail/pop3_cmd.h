/*
 * pop3_cmd - one POP3 command line (RFC 1939, RFC 2449, RFC 2595, RFC
 * 5034), parsed strictly; shared by pop3-login (AUTHORIZATION state) and
 * pop3d (TRANSACTION state). No protocol state here.
 *
 * A line is what stream_read_line() returned without its CRLF (a bare LF
 * ending is accepted, as most servers do). Rules:
 *   - at most POP3_LINE_MAX octets (RFC 2449: 255 with CRLF); longer is
 *     POP3_ERR_TOO_LONG (the caller answers -ERR and keeps going; the
 *     stream's own line limit guards the buffer);
 *   - NUL or other control characters (except the separating spaces) are
 *     POP3_ERR_SYNTAX;
 *   - a keyword of 3 or 4 letters (or digits: UTF8), case-insensitive,
 *     ending at a space or the end of the line, then arguments each
 *     separated by one space; POP3_ARG_MAX arguments at most, each
 *     1..POP3_ARG_LEN octets (RFC 2449 says 40; AUTH responses and
 *     PASS are exceptions, below). Trailing spaces are tolerated.
 *   - PASS: the rest of the line after "PASS " is one argument, spaces
 *     included (RFC 1939 allows spaces in passwords), 1..255 octets.
 *   - AUTH: mechanism name then at most one initial response (RFC 5034),
 *     up to POP3_LINE_MAX; the initial response may be "=" (empty).
 *   - Numeric arguments (msg numbers of RETR, DELE, LIST, UIDL, TOP's two
 *     numbers) are checked by pop3_cmd_number(): decimal digits only, no
 *     sign, no leading "+", 1..POP3_MSG_MAX (TOP's line count may be 0).
 * A continuation line of a SASL exchange (base64 or "*") is not a
 * command and is not given to this parser.
 */
#ifndef TERN_POP3_CMD_H
#define TERN_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>

#define POP3_LINE_MAX 255       /* octets without CRLF (RFC 2449 has 255 with it;
                                   we are lenient by 2) */
#define POP3_ARG_MAX  2
#define POP3_ARG_LEN  255
#define POP3_MSG_MAX  1000000000L

enum pop3_verb {
    POP3_UNKNOWN = 0,
    POP3_USER, POP3_PASS, POP3_APOP, POP3_AUTH, POP3_STLS, POP3_CAPA,
    POP3_QUIT, POP3_STAT, POP3_LIST, POP3_RETR, POP3_DELE, POP3_NOOP,
    POP3_RSET, POP3_TOP, POP3_UIDL, POP3_UTF8,
};

enum pop3_parse_error {
    POP3_OK = 0,
    POP3_ERR_TOO_LONG,
    POP3_ERR_SYNTAX,        /* control characters, empty line, bad spacing */
    POP3_ERR_UNKNOWN,       /* a keyword we do not know (verb UNKNOWN) */
    POP3_ERR_ARGS,          /* wrong number of arguments for the verb */
};

struct pop3_cmd {
    enum pop3_verb verb;
    char keyword[5];        /* as received, uppercased */
    size_t argc;
    char argv[POP3_ARG_MAX][POP3_ARG_LEN + 1];
};

/* parse line[0..len); 0 ok (cmd filled), else the error (cmd->verb and
   keyword are still set when the keyword itself was readable) */
enum pop3_parse_error pop3_cmd_parse(const char *line, size_t len,
                                     struct pop3_cmd *cmd);
/* a message number or count argument; 0 ok (*out), -1 not a valid
   number; allow_zero for TOP's line count */
int pop3_cmd_number(const char *arg, bool allow_zero, long *out);
/* keyword text of a verb ("RETR"), for logs */
const char *pop3_verb_name(enum pop3_verb verb);
/* wipe a parsed command (PASS's argument) */
void pop3_cmd_clear(struct pop3_cmd *cmd);

#endif

/*
 * smtpcmd - SMTP command line parsing (RFC 5321 4.1): the verb and its
 * argument, and the "FROM:" / "TO:" prefixes of MAIL and RCPT.
 *
 * A command line arrives without its CR LF and may hold any bytes; the
 * parser copies it into a caller buffer (so the argument is a C string),
 * refuses NUL bytes and empty lines, and never reads past len.
 */
#ifndef TERN_SMTPCMD_H
#define TERN_SMTPCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

enum smtp_verb {
    SMTP_HELO,
    SMTP_EHLO,
    SMTP_STARTTLS,
    SMTP_AUTH,
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_RSET,
    SMTP_NOOP,
    SMTP_VRFY,
    SMTP_HELP,
    SMTP_QUIT,
    SMTP_BDAT,
    SMTP_UNKNOWN,
    SMTP_VERB_COUNT
};

struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg;    /* in the caller's buffer; trimmed; "" when none */
};

/* lowercase verb name for logs ("ehlo", ..., "unknown") */
const char *smtpcmd_name(enum smtp_verb v);

/*
 * Split one command line (len bytes, no CR LF) into verb and argument.
 * The verb ends at the first SP or HT and is matched case-insensitively.
 * 0 ok (cmd->arg points into copy); -1 with *error_r for an empty line
 * or a NUL byte.
 */
int smtpcmd_parse(const char *line, size_t len, buf_t *copy,
                  struct smtp_cmd *cmd, const char **error_r);

/*
 * arg must start with prefix ("FROM:" or "TO:", case-insensitive);
 * returns what follows it with leading spaces skipped, or NULL.
 */
const char *smtpcmd_path_arg(const char *arg, const char *prefix);

/*
 * The argument of AUTH (RFC 4954 4): "mechanism [SP initial-response]".
 * A mechanism is 1..SMTPCMD_MECH_MAX of [A-Za-z0-9-_] (RFC 4422 3.1),
 * copied uppercased into mech (size > SMTPCMD_MECH_MAX). *initial_r is
 * the initial response as sent ("=" too: decoding it is the SASL side's
 * business), NULL without one. 0 ok; -1 no mechanism, a bad character
 * in it, or a third word.
 */
#define SMTPCMD_MECH_MAX 20
int smtpcmd_auth_arg(const char *arg, char *mech, size_t size,
                     const char **initial_r);

/* largest BDAT chunk size the parser accepts (far above any size limit) */
#define SMTPCMD_BDAT_MAX ((uint64_t)1 << 53)

/*
 * The argument of BDAT (RFC 3030 2): chunk-size (1*DIGIT, at most
 * SMTPCMD_BDAT_MAX) and an optional " LAST" (any case, one or more
 * blanks between). 0 ok; -1 malformed (the size is then unknown: the
 * caller cannot tell how many bytes follow).
 */
int smtpcmd_bdat_arg(const char *arg, uint64_t *size_r, bool *last_r);

#endif

/*
 * pop3_cmd - POP3 command line parsing (see pop3_cmd.h for the rules).
 *
 * Order of checks: the keyword is read first (so an error reply and the
 * log can name it), then the length limit, then control characters, then
 * the verb, then the arguments. Nothing here allocates; the command is
 * a fixed-size struct, so a hostile line can only make it fail.
 */
#include "pop3_cmd.h"

#include <string.h>

struct verb_info {
    const char *name;
    unsigned char min_args, max_args;
};

static const struct verb_info verbs[] = {
    [POP3_UNKNOWN] = { "UNKNOWN", 0, 0 },
    [POP3_USER] = { "USER", 1, 1 }, [POP3_PASS] = { "PASS", 1, 1 },
    [POP3_APOP] = { "APOP", 2, 2 }, [POP3_AUTH] = { "AUTH", 0, 2 },
    [POP3_STLS] = { "STLS", 0, 0 }, [POP3_CAPA] = { "CAPA", 0, 0 },
    [POP3_QUIT] = { "QUIT", 0, 0 }, [POP3_STAT] = { "STAT", 0, 0 },
    [POP3_LIST] = { "LIST", 0, 1 }, [POP3_RETR] = { "RETR", 1, 1 },
    [POP3_DELE] = { "DELE", 1, 1 }, [POP3_NOOP] = { "NOOP", 0, 0 },
    [POP3_RSET] = { "RSET", 0, 0 }, [POP3_TOP] = { "TOP", 2, 2 },
    [POP3_UIDL] = { "UIDL", 0, 1 }, [POP3_UTF8] = { "UTF8", 0, 0 },
};
#define VERB_COUNT (sizeof(verbs) / sizeof(verbs[0]))

const char *pop3_verb_name(enum pop3_verb verb)
{
    return (unsigned)verb < VERB_COUNT ? verbs[verb].name : "UNKNOWN";
}

/* keywords are letters, and digits for UTF8 (RFC 6856) */
static bool is_keyword_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
}

/* pop3_cmd_keyword - read and uppercase the keyword; its length, or 0
   when the line does not start with 3..4 keyword characters ending at
   ' ' or the end of the line */
static size_t pop3_cmd_keyword(const char *line, size_t len,
                               struct pop3_cmd *cmd)
{
    size_t n;

    for (n = 0; n < len && n < 5; n++) {
        if (!is_keyword_char((unsigned char)line[n]))
            break;
    }
    if (n < 3 || n > 4 || (n < len && line[n] != ' '))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        cmd->keyword[i] = (char)(c >= 'a' ? c - ('a' - 'A') : c);
    }
    cmd->keyword[n] = '\0';
    for (size_t v = 1; v < VERB_COUNT; v++) {
        if (strcmp(verbs[v].name, cmd->keyword) == 0) {
            cmd->verb = (enum pop3_verb)v;
            break;
        }
    }
    return n;
}

/* pop3_cmd_set_arg - copy line[b..e) into argv[i] (fits: the line is
   shorter than an argument buffer) */
static void pop3_cmd_set_arg(struct pop3_cmd *cmd, size_t i,
                             const char *line, size_t b, size_t e)
{
    memcpy(cmd->argv[i], line + b, e - b);
    cmd->argv[i][e - b] = '\0';
}

enum pop3_parse_error pop3_cmd_parse(const char *line, size_t len,
                                     struct pop3_cmd *cmd)
{
    size_t klen, pos, end;

    _Static_assert(POP3_LINE_MAX <= POP3_ARG_LEN,
                   "an argument buffer holds any line");
    cmd->verb = POP3_UNKNOWN;
    cmd->keyword[0] = '\0';
    cmd->argc = 0;
    klen = pop3_cmd_keyword(line, len, cmd);
    if (len > POP3_LINE_MAX)
        return POP3_ERR_TOO_LONG;
    if (len == 0)
        return POP3_ERR_SYNTAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            return POP3_ERR_SYNTAX;
    }
    if (klen == 0)
        return line[0] == ' ' ? POP3_ERR_SYNTAX : POP3_ERR_UNKNOWN;
    if (cmd->verb == POP3_UNKNOWN)
        return POP3_ERR_UNKNOWN;

    if (cmd->verb == POP3_PASS) {
        /* the rest of the line, spaces (even trailing ones) included */
        if (len <= klen + 1)
            return POP3_ERR_ARGS;
        pop3_cmd_set_arg(cmd, 0, line, klen + 1, len);
        cmd->argc = 1;
        return POP3_OK;
    }

    for (end = len; end > klen && line[end - 1] == ' '; end--)
        ;
    pos = klen;
    while (pos < end) {
        size_t b = pos + 1, e;      /* line[pos] is the one separator */
        if (line[b] == ' ')
            return POP3_ERR_SYNTAX;
        for (e = b; e < end && line[e] != ' '; e++)
            ;
        if (cmd->argc >= POP3_ARG_MAX)
            return POP3_ERR_ARGS;
        pop3_cmd_set_arg(cmd, cmd->argc++, line, b, e);
        pos = e;
    }
    if (cmd->argc < verbs[cmd->verb].min_args ||
        cmd->argc > verbs[cmd->verb].max_args)
        return POP3_ERR_ARGS;
    return POP3_OK;
}

int pop3_cmd_number(const char *arg, bool allow_zero, long *out)
{
    long v = 0;

    if (arg == NULL || *arg == '\0')
        return -1;
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > POP3_MSG_MAX)
            return -1;
    }
    if (v == 0 && !allow_zero)
        return -1;
    *out = v;
    return 0;
}

void pop3_cmd_clear(struct pop3_cmd *cmd)
{
    explicit_bzero(cmd, sizeof(*cmd));
    cmd->verb = POP3_UNKNOWN;
}

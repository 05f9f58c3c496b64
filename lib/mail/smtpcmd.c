/* smtpcmd - SMTP command line splitting (see smtpcmd.h). */
#include "smtpcmd.h"

#include <string.h>
#include <strings.h>

static const char *const verb_names[SMTP_VERB_COUNT] = {
    [SMTP_HELO] = "helo", [SMTP_EHLO] = "ehlo", [SMTP_MAIL] = "mail",
    [SMTP_RCPT] = "rcpt", [SMTP_DATA] = "data", [SMTP_RSET] = "rset",
    [SMTP_NOOP] = "noop", [SMTP_VRFY] = "vrfy", [SMTP_HELP] = "help",
    [SMTP_QUIT] = "quit", [SMTP_STARTTLS] = "starttls",
    [SMTP_AUTH] = "auth", [SMTP_BDAT] = "bdat",
    [SMTP_UNKNOWN] = "unknown",
};

const char *smtpcmd_name(enum smtp_verb v)
{
    return (unsigned)v < SMTP_VERB_COUNT ? verb_names[v] : "unknown";
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* smtpcmd_verb - look up a verb of n bytes */
static enum smtp_verb smtpcmd_verb(const char *s, size_t n)
{
    for (int v = 0; v < SMTP_UNKNOWN; v++) {
        if (strlen(verb_names[v]) == n && strncasecmp(s, verb_names[v], n) == 0)
            return (enum smtp_verb)v;
    }
    return SMTP_UNKNOWN;
}

int smtpcmd_parse(const char *line, size_t len, buf_t *copy,
                  struct smtp_cmd *cmd, const char **error_r)
{
    size_t vlen, b, e;

    if (memchr(line, '\0', len) != NULL) {
        *error_r = "NUL byte in command";
        return -1;
    }
    buf_reset(copy);
    if (buf_append(copy, line, len) < 0) {
        *error_r = "line too long";
        return -1;
    }
    line = buf_str(copy);
    for (b = 0; b < len && is_blank(line[b]); b++)
        ;
    for (vlen = 0; b + vlen < len && !is_blank(line[b + vlen]); vlen++)
        ;
    if (vlen == 0) {
        *error_r = "empty command";
        return -1;
    }
    cmd->verb = smtpcmd_verb(line + b, vlen);
    for (b += vlen; b < len && is_blank(line[b]); b++)
        ;
    for (e = len; e > b && is_blank(line[e - 1]); e--)
        ;
    copy->data[e] = '\0';
    cmd->arg = copy->data + b;
    return 0;
}

int smtpcmd_auth_arg(const char *arg, char *mech, size_t size,
                     const char **initial_r)
{
    size_t n = 0;
    const char *p = arg;

    *initial_r = NULL;
    if (size <= SMTPCMD_MECH_MAX)
        return -1;
    for (; *p != '\0' && !is_blank(*p); p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (n >= SMTPCMD_MECH_MAX
            || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return -1;
        mech[n] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    mech[n] = '\0';
    if (n == 0)
        return -1;
    while (is_blank(*p))
        p++;
    if (*p == '\0')
        return 0;
    for (const char *q = p; *q != '\0'; q++)
        if (is_blank(*q))
            return -1;
    *initial_r = p;
    return 0;
}

const char *smtpcmd_path_arg(const char *arg, const char *prefix)
{
    size_t n = strlen(prefix);

    if (strncasecmp(arg, prefix, n) != 0)
        return NULL;
    arg += n;
    while (is_blank(*arg))
        arg++;
    return arg;
}

int smtpcmd_bdat_arg(const char *arg, uint64_t *size_r, bool *last_r)
{
    uint64_t size = 0;
    const char *p = arg;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        size = size * 10 + (uint64_t)(*p - '0');
        if (size > SMTPCMD_BDAT_MAX)
            return -1;
    }
    *last_r = false;
    if (*p != '\0') {
        if (!is_blank(*p))
            return -1;
        while (is_blank(*p))
            p++;
        if (strcasecmp(p, "LAST") != 0)
            return -1;
        *last_r = true;
    }
    *size_r = size;
    return 0;
}

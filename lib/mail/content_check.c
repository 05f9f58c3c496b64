/*
 * content_check - parse header_checks/body_checks results into an
 * action (content_check.h). No state, no I/O.
 */
#include "content_check.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

static const struct {
    const char *name;
    enum content_action action;
    bool need_text;
    const char *log_name;
} cc_table[] = {
    { "REJECT", CC_REJECT, false, "reject" },
    { "DISCARD", CC_DISCARD, false, "discard" },
    { "HOLD", CC_HOLD, false, "hold" },
    { "WARN", CC_WARN, false, "warning" },
    { "IGNORE", CC_IGNORE, false, "ignore" },
    { "REPLACE", CC_REPLACE, true, "replace" },
    { "PREPEND", CC_PREPEND, true, "prepend" },
    { "DUNNO", CC_DUNNO, false, "dunno" },
    { "OK", CC_DUNNO, false, "dunno" },
};

static bool cc_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool cc_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* cc_dsn_len - length of a leading "4.d.d" / "5.d.d" status code
   (RFC 3463: class, then 1-3 digits, then 1-3 digits) followed by a
   blank or the end; 0 if there is none */
static size_t cc_dsn_len(const char *s)
{
    size_t i = 0, n;

    if (s[0] != '4' && s[0] != '5')
        return 0;
    if (s[1] != '.')
        return 0;
    i = 2;
    for (n = 0; n < 3 && cc_digit(s[i]); n++)
        i++;
    if (n == 0 || s[i] != '.')
        return 0;
    i++;
    for (n = 0; n < 3 && cc_digit(s[i]); n++)
        i++;
    if (n == 0 || (s[i] != '\0' && !cc_space((unsigned char)s[i])))
        return 0;
    return i;
}

int content_check_parse(const char *value, struct content_verdict *v,
                        const char **error_r)
{
    const char *p = value;
    size_t wlen;

    while (cc_space((unsigned char)*p))
        p++;
    for (wlen = 0; p[wlen] != '\0' && !cc_space((unsigned char)p[wlen]);)
        wlen++;
    for (size_t i = 0; i < sizeof(cc_table) / sizeof(cc_table[0]); i++) {
        if (strlen(cc_table[i].name) != wlen
            || strncasecmp(p, cc_table[i].name, wlen) != 0)
            continue;
        const char *text = p + wlen;
        while (cc_space((unsigned char)*text))
            text++;
        /* trailing blanks: the table reader trimmed them already */
        if (cc_table[i].need_text && *text == '\0') {
            *error_r = cc_table[i].action == CC_REPLACE
                       ? "REPLACE without text" : "PREPEND without text";
            return -1;
        }
        v->action = cc_table[i].action;
        v->text = text;
        v->code = 0;
        v->dsn[0] = '\0';
        if (v->action == CC_REJECT) {
            size_t dl = cc_dsn_len(text);

            if (dl > 0) {
                str_copy(v->dsn, text, dl + 1 < sizeof(v->dsn)
                         ? dl + 1 : sizeof(v->dsn));
                for (text += dl; cc_space((unsigned char)*text);)
                    text++;
                v->text = text;
            } else {
                str_copy(v->dsn, "5.7.1", sizeof(v->dsn));
            }
            v->code = v->dsn[0] == '4' ? 450 : 550;
        }
        return 0;
    }
    *error_r = "unknown action";
    return -1;
}

const char *content_check_name(enum content_action a)
{
    for (size_t i = 0; i < sizeof(cc_table) / sizeof(cc_table[0]); i++)
        if (cc_table[i].action == a)
            return cc_table[i].log_name;
    return "?";
}

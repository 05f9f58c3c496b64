/* logline - Postfix-style logical lines (logline.h). */
#include "logline.h"

#include <stdio.h>
#include <string.h>

void logline_init(logline_t *ll, const char *text, size_t len,
                  size_t max_line, size_t max_entry)
{
    memset(ll, 0, sizeof(*ll));
    ll->text = text;
    ll->len = len;
    ll->max_line = max_line;
    ll->max_entry = max_entry;
    buf_init(&ll->entry, 0);
}

void logline_free(logline_t *ll)
{
    buf_free(&ll->entry);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
           || c == '\v';
}

static int logline_fail(logline_t *ll, long lineno, long *lineno_r,
                        const char **error_r, const char *what, size_t limit)
{
    if (limit > 0)
        snprintf(ll->error, sizeof(ll->error), "%s longer than %zu bytes",
                 what, limit);
    else
        snprintf(ll->error, sizeof(ll->error), "%s", what);
    *lineno_r = lineno;
    *error_r = ll->error;
    ll->pos = ll->len;          /* nothing more after an error */
    return -1;
}

int logline_next(logline_t *ll, char **entry_r, long *lineno_r,
                 const char **error_r)
{
    long start = 0;

    buf_reset(&ll->entry);
    while (ll->pos < ll->len) {
        size_t line_pos = ll->pos;
        const char *s = ll->text + ll->pos;
        const char *nl = memchr(s, '\n', ll->len - ll->pos);
        size_t n = nl ? (size_t)(nl - s) : ll->len - ll->pos, lead = 0;

        ll->pos += n + (nl != NULL);
        ll->lineno++;
        if (memchr(s, '\0', n) != NULL)
            return logline_fail(ll, ll->lineno, lineno_r, error_r,
                                "NUL byte in line", 0);
        if (ll->max_line > 0 && n > ll->max_line)
            return logline_fail(ll, ll->lineno, lineno_r, error_r, "line",
                                ll->max_line);
        while (n > 0 && is_blank(s[n - 1]))
            n--;
        while (lead < n && is_blank(s[lead]))
            lead++;
        if (lead == n || s[lead] == '#')
            continue;
        if (lead == 0 && start != 0) {
            ll->pos = line_pos;         /* the next entry starts here */
            ll->lineno--;
            break;
        }
        if (lead > 0 && start == 0)
            return logline_fail(ll, ll->lineno, lineno_r, error_r,
                                "continuation line without a preceding entry", 0);
        if (ll->max_entry > 0 && ll->entry.len + 1 + n - lead > ll->max_entry)
            return logline_fail(ll, start ? start : ll->lineno, lineno_r,
                                error_r, "entry", ll->max_entry);
        if (start == 0)
            start = ll->lineno;
        else if (buf_putc(&ll->entry, ' ') < 0)
            return logline_fail(ll, ll->lineno, lineno_r, error_r,
                                "out of memory", 0);
        if (buf_append(&ll->entry, s + lead, n - lead) < 0)
            return logline_fail(ll, ll->lineno, lineno_r, error_r,
                                "out of memory", 0);
    }
    if (start == 0)
        return 0;
    *entry_r = ll->entry.data;
    *lineno_r = start;
    return 1;
}

/*
 * domain_list - Postfix-style domain lists (domain_list.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "mail/domain_list.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

int domain_list_open(domain_list_t *dl, const char *param, const char *value)
{
    buf_t tables = BUF_INIT;
    const char *s = value != NULL ? value : "";
    const char *err = NULL;
    long n;
    int rc = 0;

    memset(dl, 0, sizeof(*dl));
    while ((n = str_list_next_word(&s)) > 0) {
        if (memchr(s, ':', (size_t)n) != NULL) {
            (void)buf_append(&tables, s, (size_t)n);
            (void)buf_putc(&tables, ' ');
        } else {
            dl->names = xrealloc(dl->names,
                                 (dl->nnames + 1) * sizeof(*dl->names));
            dl->names[dl->nnames] = xstrndup(s, (size_t)n);
            str_lower(dl->names[dl->nnames++]);
        }
        s += n;
    }
    if (n < 0) {
        log_error("%s: unbalanced braces", param);
        rc = -1;
    } else if (tables.len > 0) {
        dl->maps = maps_open_missing_ok(buf_str(&tables), &err);
        if (dl->maps == NULL) {
            log_error("%s: %s", param, err != NULL ? err : "bad table");
            rc = -1;
        }
    }
    buf_free(&tables);
    if (rc < 0)
        domain_list_close(dl);
    return rc;
}

/* name_match - "example.com" covers its subdomains, ".example.com"
   only those */
static int name_match(const char *r, const char *domain, size_t dlen)
{
    size_t rlen = strlen(r);

    if (r[0] == '.')
        return dlen > rlen && strcasecmp(domain + dlen - rlen, r) == 0;
    return strcasecmp(domain, r) == 0
           || (dlen > rlen && domain[dlen - rlen - 1] == '.'
               && strcasecmp(domain + dlen - rlen, r) == 0);
}

int domain_list_match(const domain_list_t *dl, const char *domain)
{
    size_t dlen = strlen(domain);
    buf_t value = BUF_INIT;
    int rc = 0;

    for (size_t i = 0; i < dl->nnames; i++)
        if (name_match(dl->names[i], domain, dlen))
            return 1;
    for (const char *d = domain; dl->maps != NULL && rc == 0 && d != NULL
         && *d != '\0';) {
        if (strlen(d) <= DICT_KEY_MAX)
            rc = maps_lookup(dl->maps, d, &value);
        d = *d == '[' ? NULL : strchr(d, '.');
        if (d != NULL)
            d++;
    }
    buf_free(&value);
    return rc;
}

void domain_list_close(domain_list_t *dl)
{
    strv_free(dl->names, dl->nnames);
    maps_close(dl->maps);
    memset(dl, 0, sizeof(*dl));
}

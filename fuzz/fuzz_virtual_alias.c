/*
 * fuzz_virtual_alias - libFuzzer harness for virtual alias values and
 * their expansion (lib/mail/virtual_alias.c). The input is a table in
 * ternmap's text form ("key value" lines) whose first line's key is the
 * address to expand. Checks: virtual_alias_parse yields only bounded,
 * control-free, non-empty addresses or an error string; the expansion
 * ends (no loop), stays within its limits, fails only with a reason,
 * and gives at least one address when it succeeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/virtual_alias.h"
#include "util/buf.h"
#include "util/util.h"

#define FUZZ_LIMIT 40

struct table {
    char **keys;
    char **values;
    size_t n;
    long lookups;
};

static int table_lookup(void *ctx, const char *key, buf_t *value)
{
    struct table *t = ctx;

    t->lookups++;
    for (size_t i = 0; i < t->n; i++)
        if (strcasecmp(t->keys[i], key) == 0) {
            if (strcmp(t->values[i], "!") == 0)
                return -1;              /* a table error */
            buf_reset(value);
            (void)buf_puts(value, t->values[i]);
            return 1;
        }
    return 0;
}

static bool table_local(void *ctx, const char *domain)
{
    (void)ctx;
    return strcasecmp(domain, "localhost") == 0;
}

static void check_parse(const char *value)
{
    char **v;
    size_t n;
    const char *why = NULL;

    if (virtual_alias_parse(value, &v, &n, &why) < 0) {
        if (why == NULL)
            abort();
        return;
    }
    if (n == 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        if (len == 0 || len > VIRTUAL_ALIAS_ADDR_MAX)
            abort();
        for (size_t j = 0; j < len; j++)
            if ((unsigned char)v[i][j] < 32 && v[i][j] != '\0')
                abort();
    }
    strv_free(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    struct table t = { NULL, NULL, 0, 0 };
    struct virtual_alias_conf conf = {
        .recursion_limit = FUZZ_LIMIT, .expansion_limit = FUZZ_LIMIT,
        .delimiters = "+-", .propagate = true, .myorigin = "origin",
    };
    struct virtual_alias_ops ops = { table_lookup, table_local, &t };
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;
    char *line = text, *next;

    for (; line != NULL && t.n < 64; line = next) {
        char *sp;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        sp = strpbrk(line, " \t");
        if (sp == NULL)
            continue;
        *sp++ = '\0';
        check_parse(sp);
        t.keys = xrealloc(t.keys, (t.n + 1) * sizeof(*t.keys));
        t.values = xrealloc(t.values, (t.n + 1) * sizeof(*t.values));
        t.keys[t.n] = xstrdup(line);
        t.values[t.n++] = xstrdup(sp);
    }
    if (t.n > 0) {
        if (virtual_alias_expand_ops(&ops, &conf, t.keys[0], &r, &err) == 0) {
            if (r.n == 0 || r.n > FUZZ_LIMIT)
                abort();
        } else if (err.len == 0 || r.n != 0) {
            abort();
        }
        /* each distinct address is looked up once, at most 5 keys each */
        if (t.lookups > 5L * (FUZZ_LIMIT * FUZZ_LIMIT + 1))
            abort();
        virtual_alias_result_free(&r);
    }
    strv_free(t.keys, t.n);
    strv_free(t.values, t.n);
    buf_free(&err);
    free(text);
    return 0;
}

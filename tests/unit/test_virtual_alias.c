/*
 * test_virtual_alias - unit tests for lib/mail/virtual_alias.c: the
 * lookup order (user@domain, user only in local domains, @domain),
 * extensions and their propagation, lists, @otherdomain and @$myorigin
 * results, loops, diamonds, the recursion and expansion limits at and
 * past their edge, hostile values (table-driven over a table in
 * memory), then the configured tables (inline:, a missing lmdb: file
 * that fails every lookup) and virtual_alias_domains.
 */
#include <check.h>

#include "check_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/virtual_alias.h"
#include "util/buf.h"
#include "util/util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- a table in memory ------------------------------------------------ */

struct kv {
    const char *key;
    const char *value;          /* NULL: the lookup fails (table error) */
};

struct fake {
    const struct kv *kv;        /* ends with key NULL */
    /* generated entries: "cN@x" -> "c(N+1)@x" below chain_len,
       "wide@x" -> wide_n addresses, "treeN@x" -> two children */
    long chain_len;
    long wide_n;
    long tree_depth;
    long lookups;
};

static int fake_lookup(void *ctx, const char *key, buf_t *value)
{
    struct fake *f = ctx;
    long n;
    char tail[8];

    f->lookups++;
    buf_reset(value);
    for (const struct kv *e = f->kv; e != NULL && e->key != NULL; e++)
        if (strcasecmp(e->key, key) == 0) {
            if (e->value == NULL)
                return -1;
            (void)buf_puts(value, e->value);
            return 1;
        }
    if (f->chain_len > 0 && sscanf(key, "c%ld@%2s", &n, tail) == 2
        && n < f->chain_len) {
        (void)buf_printf(value, "c%ld@x", n + 1);
        return 1;
    }
    if (f->wide_n > 0 && strcmp(key, "wide@x") == 0) {
        for (long i = 0; i < f->wide_n; i++)
            (void)buf_printf(value, "%sw%ld@y", i ? ", " : "", i);
        return 1;
    }
    if (f->tree_depth > 0 && sscanf(key, "tree%ld@%2s", &n, tail) == 2
        && n < f->tree_depth) {
        /* two children that are each other's equals at the next level:
           treeN -> tree(N+1), tree(N+1)b (which maps to tree(N+2)...) */
        (void)buf_printf(value, "tree%ld@x, tree%ld@x", n + 1, n + 1);
        return 1;
    }
    return 0;
}

static bool fake_local(void *ctx, const char *domain)
{
    (void)ctx;
    return strcasecmp(domain, "local.example") == 0;
}

static struct virtual_alias_conf conf_default(void)
{
    struct virtual_alias_conf c = {
        .recursion_limit = 1000, .expansion_limit = 1000,
        .delimiters = "+", .propagate = true, .myorigin = "origin.example",
    };
    return c;
}

/* joined result, "a b c" */
static void joined(const struct virtual_alias_result *r, buf_t *out)
{
    buf_reset(out);
    for (size_t i = 0; i < r->n; i++)
        (void)buf_printf(out, "%s%s", i ? " " : "", r->addrs[i]);
}

/* ---- expansion, table-driven ------------------------------------------ */

struct expand_case {
    const char *name;
    struct kv kv[6];
    const char *addr;
    const char *want;           /* joined; NULL: expansion fails */
    bool changed;
    const char *why;            /* substring of the error, on failure */
    bool no_propagate;
};

static const struct expand_case expand_cases[] = {
    { "no mapping", {{ "other@x", "y@y" }}, "a@x", "a@x", false, NULL, false },
    { "one address", {{ "a@x", "b@y" }}, "a@x", "b@y", true, NULL, false },
    { "case of key", {{ "a@x", "b@y" }}, "A@X", "b@y", true, NULL, false },
    { "list, commas and spaces", {{ "a@x", "b@y,c@y  d@y,\te@y" }}, "a@x",
      "b@y c@y d@y e@y", true, NULL, false },
    { "recursive", {{ "a@x", "b@x" }, { "b@x", "c@y, d@x" }, { "d@x", "e@z" }},
      "a@x", "c@y e@z", true, NULL, false },
    { "maps to itself", {{ "a@x", "a@x" }}, "a@x", "a@x", false, NULL, false },
    { "itself, other case", {{ "a@x", "A@X" }}, "a@x", "a@x", false, NULL, false },
    { "itself and a copy", {{ "a@x", "a@x, b@y" }}, "a@x", "a@x b@y", true,
      NULL, false },
    { "loop a b", {{ "a@x", "b@x" }, { "b@x", "a@x" }}, "a@x", "a@x", false,
      NULL, false },
    { "loop with a branch", {{ "a@x", "b@x, c@x" }, { "b@x", "a@x" }}, "a@x",
      "a@x c@x", true, NULL, false },
    { "three-step loop", {{ "a@x", "b@x" }, { "b@x", "c@x" }, { "c@x", "a@x, d@y" }},
      "a@x", "a@x d@y", true, NULL, false },
    { "diamond", {{ "a@x", "b@x, c@x" }, { "b@x", "d@x" }, { "c@x", "d@x" },
                  { "d@x", "e@y" }}, "a@x", "e@y", true, NULL, false },
    { "list repeats", {{ "a@x", "b@y, b@y, B@Y" }}, "a@x", "b@y", true, NULL,
      false },
    /* lookup order */
    { "user@domain beats @domain", {{ "@x", "all@y" }, { "a@x", "b@y" }},
      "a@x", "b@y", true, NULL, false },
    { "@domain catch-all", {{ "@x", "all@y" }}, "zz@x", "all@y", true, NULL,
      false },
    { "bare user: local domain only", {{ "bob", "alice@y" }},
      "bob@local.example", "alice@y", true, NULL, false },
    { "bare user: not remote", {{ "bob", "alice@y" }}, "bob@remote.example",
      "bob@remote.example", false, NULL, false },
    { "bare address", {{ "bob", "alice@y" }}, "bob", "alice@y", true, NULL,
      false },
    /* extensions */
    { "extension propagated", {{ "bob@x", "alice@y" }}, "bob+tag@x",
      "alice+tag@y", true, NULL, false },
    { "extension, no propagation", {{ "bob@x", "alice@y" }}, "bob+tag@x",
      "alice@y", true, NULL, true },
    { "extension matched exactly", {{ "bob+tag@x", "t@y" }, { "bob@x", "b@y" }},
      "bob+tag@x", "t@y", true, NULL, false },
    { "extension, bare user", {{ "bob", "alice@y" }}, "bob+t@local.example",
      "alice+t@y", true, NULL, false },
    { "extension to a list", {{ "bob@x", "a@y, c@y" }}, "bob+t@x",
      "a+t@y c+t@y", true, NULL, false },
    { "extension to itself", {{ "bob@x", "bob@x" }}, "bob+t@x", "bob+t@x",
      false, NULL, false },
    { "extension not on @domain", {{ "@x", "all@y" }}, "bob+t@x", "all@y",
      true, NULL, false },
    { "leading delimiter is a name", {{ "+x@x", "p@y" }}, "+x@x", "p@y", true,
      NULL, false },
    /* result forms */
    { "@otherdomain", {{ "@old.example", "@new.example" }}, "u+e@old.example",
      "u+e@new.example", true, NULL, false },
    { "@otherdomain anywhere", {{ "a+e@x", "b@y, @z" }}, "a+e@x", "b@y a+e@z",
      true, NULL, false },
    { "no domain: myorigin", {{ "a@x", "bob" }}, "a@x", "bob@origin.example",
      true, NULL, false },
    { "angle brackets", {{ "a@x", "<b@y>, <c@y>" }}, "a@x", "b@y c@y", true,
      NULL, false },
    { "quoted local part", {{ "a@x", "\"john smith\"@y, k@y" }}, "a@x",
      "\"john smith\"@y k@y", true, NULL, false },
    { "address literal", {{ "u@[192.0.2.1]", "v@y" }}, "u@[192.0.2.1]", "v@y",
      true, NULL, false },
    /* errors: temporary, never a silent drop */
    { "table error", {{ "a@x", NULL }}, "a@x", NULL, false,
      "lookup problem for a@x", false },
    { "table error deeper", {{ "a@x", "b@x" }, { "b@x", NULL }}, "a@x", NULL,
      false, "lookup problem for b@x", false },
    { "empty value", {{ "a@x", "" }}, "a@x", NULL, false, "no address", false },
    { "only commas", {{ "a@x", " , ,," }}, "a@x", NULL, false, "no address",
      false },
    { "control char", {{ "a@x", "b@y\001" }}, "a@x", NULL, false, "control",
      false },
    { "newline", {{ "a@x", "b@y\nc@y" }}, "a@x", "b@y c@y", true, NULL, false },
    { "unterminated quote", {{ "a@x", "\"b@y" }}, "a@x", NULL, false,
      "unterminated", false },
};

START_TEST(test_expand)
{
    const struct expand_case *t = &expand_cases[_i];
    struct fake f = { t->kv, 0, 0, 0, 0 };
    struct virtual_alias_ops ops = { fake_lookup, fake_local, &f };
    struct virtual_alias_conf c = conf_default();
    struct virtual_alias_result r;
    buf_t err = BUF_INIT, got = BUF_INIT;
    int rc;

    c.propagate = !t->no_propagate;
    rc = virtual_alias_expand_ops(&ops, &c, t->addr, &r, &err);
    if (t->want == NULL) {
        ck_assert_msg(rc == -1, "%s: expected failure", t->name);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_msg(strstr(buf_str(&err), t->why) != NULL, "%s: error %s",
                      t->name, buf_str(&err));
    } else {
        ck_assert_msg(rc == 0, "%s: failed: %s", t->name, buf_str(&err));
        joined(&r, &got);
        ck_assert_msg(strcmp(buf_str(&got), t->want) == 0, "%s: got '%s' want '%s'",
                      t->name, buf_str(&got), t->want);
        ck_assert_msg(r.changed == t->changed, "%s: changed %d", t->name,
                      r.changed);
    }
    virtual_alias_result_free(&r);
    buf_free(&err);
    buf_free(&got);
}
END_TEST

/* ---- the limits, at and past the edge ---------------------------------- */

struct limit_case {
    const char *name;
    long chain_len, wide_n, tree_depth;
    const char *addr;
    long recursion, expansion;
    bool ok;
    size_t n;                   /* result addresses when ok */
};

static const struct limit_case limit_cases[] = {
    /* c0 -> c1 -> ... -> cN: N+1 lookups */
    { "chain of 999", 999, 0, 0, "c0@x", 1000, 1000, true, 1 },
    { "chain of 1000", 1000, 0, 0, "c0@x", 1000, 1000, false, 0 },
    { "chain of 100000", 100000, 0, 0, "c0@x", 1000, 1000, false, 0 },
    { "chain, limit 1", 1, 0, 0, "c0@x", 1, 1000, false, 0 },
    { "chain, limit 2", 1, 0, 0, "c0@x", 2, 1000, true, 1 },
    { "1000 addresses", 0, 1000, 0, "wide@x", 1000, 1000, true, 1000 },
    { "1001 addresses", 0, 1001, 0, "wide@x", 1000, 1000, false, 0 },
    { "100000 addresses", 0, 100000, 0, "wide@x", 1000, 1000, false, 0 },
    /* each level lists its child twice: the copy is not expanded again */
    { "doubling tree", 0, 0, 500, "tree0@x", 1000, 1000, true, 1 },
};

START_TEST(test_limits)
{
    const struct limit_case *t = &limit_cases[_i];
    struct fake f = { NULL, t->chain_len, t->wide_n, t->tree_depth, 0 };
    struct virtual_alias_ops ops = { fake_lookup, fake_local, &f };
    struct virtual_alias_conf c = conf_default();
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;
    int rc;

    c.recursion_limit = t->recursion;
    c.expansion_limit = t->expansion;
    rc = virtual_alias_expand_ops(&ops, &c, t->addr, &r, &err);
    if (t->ok) {
        ck_assert_msg(rc == 0, "%s: %s", t->name, buf_str(&err));
        ck_assert_uint_eq(r.n, t->n);
    } else {
        ck_assert_msg(rc == -1, "%s: expected failure", t->name);
        ck_assert_msg(strstr(buf_str(&err), "unreasonable") != NULL, "%s: %s",
                      t->name, buf_str(&err));
        ck_assert_msg(strstr(buf_str(&err), t->addr) != NULL, "%s", t->name);
    }
    /* never more than a few lookups per address reached */
    ck_assert_int_le(f.lookups, 5 * (t->recursion + t->expansion + t->tree_depth));
    virtual_alias_result_free(&r);
    buf_free(&err);
}
END_TEST

/* ---- weird addresses and keys ------------------------------------------- */

START_TEST(test_weird_addresses)
{
    static const struct kv kv[] = { { "", "never@y" },
                                    { "@x", "all@y" }, { NULL, NULL } };
    static const char *const addrs[] = {
        "", "@", "a@", "@x", "@@x", "a@b@x", "\"a@b\"@x", "a+@x", "+@x",
        "a++b@x", "\"q+r\"@local.example",
    };
    struct fake f = { kv, 0, 0, 0, 0 };
    struct virtual_alias_ops ops = { fake_lookup, fake_local, &f };
    struct virtual_alias_conf c = conf_default();
    struct virtual_alias_result r;
    buf_t err = BUF_INIT, big = BUF_INIT;

    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        ck_assert_msg(virtual_alias_expand_ops(&ops, &c, addrs[i], &r, &err) == 0,
                      "%s: %s", addrs[i], buf_str(&err));
        ck_assert_uint_ge(r.n, 1);
        for (size_t j = 0; j < r.n; j++)
            ck_assert_msg(strcmp(r.addrs[j], "never@y") != 0, "%s", addrs[i]);
        virtual_alias_result_free(&r);
    }
    /* a key longer than a table may hold is not looked up at all */
    for (int i = 0; i < 600; i++)
        buf_putc(&big, 'a');
    buf_puts(&big, "@nowhere");
    f.lookups = 0;
    ck_assert_int_eq(virtual_alias_expand_ops(&ops, &c, buf_str(&big), &r,
                                              &err), 0);
    ck_assert_str_eq(r.addrs[0], buf_str(&big));
    ck_assert_int_eq(f.lookups, 1);             /* only @nowhere */
    virtual_alias_result_free(&r);
    buf_free(&big);
    buf_free(&err);
}
END_TEST

/* owner-list and list-request keep their '-' as a delimiter */
START_TEST(test_dash_delimiter)
{
    static const struct kv kv[] = { { "owner-list@x", "boss@y" },
                                    { "list@x", "all@y" }, { NULL, NULL } };
    struct fake f = { kv, 0, 0, 0, 0 };
    struct virtual_alias_ops ops = { fake_lookup, fake_local, &f };
    struct virtual_alias_conf c = conf_default();
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;

    c.delimiters = "+-";
    ck_assert_int_eq(virtual_alias_expand_ops(&ops, &c, "owner-list@x", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "boss@y");
    virtual_alias_result_free(&r);
    ck_assert_int_eq(virtual_alias_expand_ops(&ops, &c, "list-x@x", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "all-x@y");
    virtual_alias_result_free(&r);
    ck_assert_int_eq(virtual_alias_expand_ops(&ops, &c, "list-request@x", &r,
                                              &err), 0);
    ck_assert_str_eq(r.addrs[0], "list-request@x");
    virtual_alias_result_free(&r);
    buf_free(&err);
}
END_TEST

/* ---- the value parser ----------------------------------------------------- */

START_TEST(test_parse)
{
    char **v;
    size_t n;
    const char *why = NULL;
    buf_t big = BUF_INIT;

    ck_assert_int_eq(virtual_alias_parse("a@b, \"x, y\"@c <d@e>", &v, &n, &why), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[1], "\"x, y\"@c");
    ck_assert_str_eq(v[2], "d@e");
    strv_free(v, n);
    ck_assert_int_eq(virtual_alias_parse("\"a\\\"b\"@c", &v, &n, &why), 0);
    ck_assert_uint_eq(n, 1);
    strv_free(v, n);
    ck_assert_int_eq(virtual_alias_parse("<>, @", &v, &n, &why), -1);
    ck_assert_int_eq(virtual_alias_parse("a\x7f@b", &v, &n, &why), -1);
    /* a control character hidden behind a quoted-pair backslash (found
       by fuzz_virtual_alias) */
    ck_assert_int_eq(virtual_alias_parse("\"a\\\001\"@b", &v, &n, &why), -1);
    for (int i = 0; i < VIRTUAL_ALIAS_ADDR_MAX; i++)
        buf_putc(&big, 'a');
    ck_assert_int_eq(virtual_alias_parse(buf_str(&big), &v, &n, &why), 0);
    strv_free(v, n);
    buf_putc(&big, 'a');
    ck_assert_int_eq(virtual_alias_parse(buf_str(&big), &v, &n, &why), -1);
    ck_assert_str_eq(why, "address too long");
    buf_free(&big);
}
END_TEST

/* ---- the configured tables ------------------------------------------------ */

static void load(const char *text)
{
    buf_t err = BUF_INIT;

    ck_assert_msg(config_load_text(text, strlen(text), "main.conf", "/nonexistent",
                                   &err) == 0, "%s", buf_str(&err));
    buf_free(&err);
    virtual_alias_close();
}

START_TEST(test_configured)
{
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;

    load("myhostname = mx.example\n"
         "virtual_alias_maps = inline:{info@v.example=bob@mx.example, "
         "v.example=anything, sales=carol}, inline:{@w.example=dave}\n");
    ck_assert(virtual_alias_enabled());
    ck_assert_int_eq(virtual_alias_expand("info+x@V.Example", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "bob+x@mx.example");
    virtual_alias_result_free(&r);
    /* bare "sales" only in $mydestination; "carol" gets @$myorigin */
    ck_assert_int_eq(virtual_alias_expand("sales@localhost", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "carol@mx.example");
    virtual_alias_result_free(&r);
    ck_assert_int_eq(virtual_alias_expand("sales@elsewhere.example", &r, &err), 0);
    ck_assert(!r.changed);
    virtual_alias_result_free(&r);
    ck_assert_int_eq(virtual_alias_expand("x@w.example", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "dave@mx.example");
    virtual_alias_result_free(&r);
    /* $virtual_alias_domains defaults to the table, keyed by domain */
    ck_assert_int_eq(virtual_alias_domain("v.example"), 1);
    ck_assert_int_eq(virtual_alias_domain("V.EXAMPLE"), 1);
    ck_assert_int_eq(virtual_alias_domain("w.example"), 0);
    ck_assert_int_eq(virtual_alias_find("nobody@v.example", &r, &err), 0);
    ck_assert_int_eq(virtual_alias_find("info@v.example", &r, &err), 1);
    virtual_alias_result_free(&r);

    load("virtual_alias_maps = inline:{a@x=b@y}\n"
         "virtual_alias_domains = x, Z.example inline:{t.example=1}\n");
    ck_assert_int_eq(virtual_alias_domain("x"), 1);
    ck_assert_int_eq(virtual_alias_domain("z.example"), 1);
    ck_assert_int_eq(virtual_alias_domain("t.example"), 1);
    ck_assert_int_eq(virtual_alias_domain("y"), 0);
    ck_assert_int_eq(virtual_alias_domain(""), 0);

    load("virtual_alias_maps =\n");
    ck_assert(!virtual_alias_enabled());
    ck_assert_int_eq(virtual_alias_expand("a@x", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "a@x");
    ck_assert(!r.changed);
    virtual_alias_result_free(&r);
    ck_assert_int_eq(virtual_alias_domain("x"), 0);

    /* the lmdb file is not built yet: every lookup fails, temporarily */
    load("virtual_alias_maps = lmdb:/nonexistent/virtual\n");
    ck_assert(virtual_alias_enabled());
    ck_assert_int_eq(virtual_alias_expand("a@x", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "lookup problem for a@x"));
    ck_assert_int_eq(virtual_alias_domain("x"), -1);

    /* propagate_unmatched_extensions without "virtual" */
    load("virtual_alias_maps = inline:{a@x=b@y}\n"
         "propagate_unmatched_extensions = canonical\n");
    ck_assert_int_eq(virtual_alias_expand("a+e@x", &r, &err), 0);
    ck_assert_str_eq(r.addrs[0], "b@y");
    virtual_alias_result_free(&r);
    virtual_alias_close();
    buf_free(&err);
}
END_TEST

static Suite *virtual_alias_suite(void)
{
    Suite *s = suite_create("virtual_alias");
    TCase *tc = tcase_create("virtual_alias");

    tcase_add_loop_test(tc, test_expand, 0, ARRAY_LEN(expand_cases));
    tcase_add_loop_test(tc, test_limits, 0, ARRAY_LEN(limit_cases));
    tcase_add_test(tc, test_weird_addresses);
    tcase_add_test(tc, test_dash_delimiter);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_configured);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(virtual_alias_suite(), false);
}

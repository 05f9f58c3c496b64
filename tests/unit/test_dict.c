/*
 * test_dict - unit tests for lookup tables (lib/dict.c): building LMDB
 * files from text (plain and aliases format, hostile sources), lookups,
 * static:/inline:, table lists, noticing a replaced file, and pcre:
 * tables (syntax, if blocks, substitution, bad lines, match limits).
 */
#include <check.h>

#include "check_main.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/dict.h"
#include "mail/dict_build.h"
#include "util/util.h"

static char tmpdir[] = "/tmp/test_dict.XXXXXX";
static char srcpath[256];
static char specbuf[300];

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void setup(void)
{
    str_copy(tmpdir, "/tmp/test_dict.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(srcpath, sizeof(srcpath), "%s/table", tmpdir);
    snprintf(specbuf, sizeof(specbuf), "lmdb:%s", srcpath);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* the test clock (dict_set_clock): lookups see time pass only when a
   test advances it, so "at most one stat per second" is checked exactly
   and without sleeping */
#define CHECK_MSEC 1000          /* lib/mail/dict.c's DICT_CHECK_MSEC */
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void clock_setup(void)
{
    fake_now = 5000000;          /* any start: only differences matter */
    dict_set_clock(fake_clock);
}

static void clock_teardown(void)
{
    dict_set_clock(NULL);
}

static void write_src(const char *text, size_t len)
{
    FILE *fp = fopen(srcpath, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
    ck_assert_int_eq(fclose(fp), 0);
}

/* build text; returns dict_lmdb_build's result, message in err */
static int build(const char *text, bool aliases, buf_t *err)
{
    write_src(text, strlen(text));
    return dict_lmdb_build(srcpath, aliases, err);
}

static dict_t *open_table(void)
{
    const char *why = NULL;
    dict_t *d = dict_open(specbuf, &why);
    ck_assert_msg(d != NULL, "open: %s", why ? why : "?");
    return d;
}

/* expect key -> value (NULL: not found) */
static void expect(dict_t *d, const char *key, const char *value)
{
    buf_t v = BUF_INIT;
    int rc = dict_lookup(d, key, &v);
    if (value == NULL) {
        ck_assert_msg(rc == 0, "%s: expected miss, got %d (%s)", key, rc,
                      buf_str(&v));
    } else {
        ck_assert_msg(rc == 1, "%s: expected hit, got %d", key, rc);
        ck_assert_str_eq(buf_str(&v), value);
    }
    buf_free(&v);
}

/* ---- building plain tables --------------------------------------------- */

START_TEST(test_build_plain)
{
    buf_t err = BUF_INIT;
    int rc = build("# comment\n"
                   "Alpha   one\n"
                   "\n"
                   "   # indented comment\n"
                   "beta two words  \n"
                   "gamma first\n"
                   "  second\n"
                   "\tthird\n"
                   "# comment between continuations\n"
                   "  fourth\n"
                   "crlf value\r\n"
                   "last no-newline", false, &err);
    ck_assert_msg(rc == 0, "%s", buf_str(&err));
    ck_assert_uint_eq(err.len, 0);
    dict_t *d = open_table();
    expect(d, "alpha", "one");
    expect(d, "ALPHA", "one");
    expect(d, "AlPhA", "one");
    expect(d, "beta", "two words");
    /* continuation lines join with one space, as in main.conf (logline) */
    expect(d, "gamma", "first second third fourth");
    expect(d, "crlf", "value");
    expect(d, "last", "no-newline");
    expect(d, "delta", NULL);
    expect(d, "", NULL);
    expect(d, "alph", NULL);
    ck_assert_str_eq(dict_name(d), specbuf);
    dict_close(d);
    buf_free(&err);
}
END_TEST

START_TEST(test_build_duplicates)
{
    buf_t err = BUF_INIT;
    int rc = build("key first\nother x\nKEY second\nkey third\n", false,
                   &err);
    ck_assert_msg(rc == 0, "%s", buf_str(&err));
    /* two warnings, with file:line */
    char want[300];
    snprintf(want, sizeof(want), "%s:3: duplicate", srcpath);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), want));
    snprintf(want, sizeof(want), "%s:4: duplicate", srcpath);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), want));
    dict_t *d = open_table();
    expect(d, "key", "first");
    expect(d, "other", "x");
    dict_close(d);
    buf_free(&err);
}
END_TEST

START_TEST(test_build_empty_source)
{
    buf_t err = BUF_INIT;
    ck_assert_int_eq(build("", false, &err), 0);
    dict_t *d = open_table();
    expect(d, "anything", NULL);
    dict_close(d);
    ck_assert_int_eq(build("# only\n\n   \n", false, &err), 0);
    buf_free(&err);
}
END_TEST

START_TEST(test_build_missing_source)
{
    buf_t err = BUF_INIT;
    ck_assert_int_eq(dict_lmdb_build(srcpath, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "No such file"));
    buf_free(&err);
}
END_TEST

START_TEST(test_build_mode_follows_source)
{
    buf_t err = BUF_INIT;
    write_src("secret hash\n", 12);
    ck_assert_int_eq(chmod(srcpath, 0640), 0);
    ck_assert_int_eq(dict_lmdb_build(srcpath, false, &err), 0);
    char db[300];
    snprintf(db, sizeof(db), "%s.lmdb", srcpath);
    struct stat st;
    ck_assert_int_eq(stat(db, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    /* no temporary or lock file left behind */
    char other[320];
    snprintf(other, sizeof(other), "%s.lmdb-lock", srcpath);
    ck_assert_int_ne(access(other, F_OK), 0);
    snprintf(other, sizeof(other), "%s.lmdb.tmp.%ld", srcpath,
             (long)getpid());
    ck_assert_int_ne(access(other, F_OK), 0);
    buf_free(&err);
}
END_TEST

/* ---- hostile / malformed sources (table) --------------------------------- */

struct bad_case {
    const char *text;
    size_t len;
    bool aliases;
    const char *want;     /* substring of the error after "path:" */
};

#define T(lit) lit, sizeof(lit) - 1
static const struct bad_case bad_cases[] = {
    { T("a b\nlonely\n"), false, ":2: missing value" },
    { T("lonely   \n"), false, ":1: missing value" },
    { T("  starts with space\n"), false, ":1: continuation line" },
    { T("a b\nc d\nx\0y z\n"), false, ":3: NUL byte" },
    { T("a b\0\n"), false, ":1: NUL byte" },
    { T("a b\n"), true, ":1: expected \"name: value" },
    { T("ok: x\nbad: \n"), true, ":2: no value" },
    { T("bad: , ,\n"), true, ":1: no value" },
    { T(": x\n"), true, ":1: empty alias name" },
    { T("two words: x\n"), true, ":1: whitespace in alias name" },
    { T("\"open: x\n"), true, ":1: unterminated quoted name" },
    { T("\"q\" x\n"), true, ":1: expected" },
    { T("a: \"|cmd, x\n"), true, ":1: unterminated quote" },
    { T("x y\n\n\n  # c\n\tz\0\n"), false, ":5: NUL byte" },
};

START_TEST(test_build_bad)
{
    const struct bad_case *c = &bad_cases[_i];
    buf_t err = BUF_INIT;
    write_src(c->text, c->len);
    ck_assert_int_eq(dict_lmdb_build(srcpath, c->aliases, &err), -1);
    ck_assert_msg(strstr(buf_str(&err), c->want) != NULL,
                  "case %d: want \"%s\" in \"%s\"", _i, c->want,
                  buf_str(&err));
    ck_assert_msg(strncmp(buf_str(&err), srcpath, strlen(srcpath)) == 0,
                  "no file name: %s", buf_str(&err));
    /* a failed build leaves no table behind */
    char db[300];
    snprintf(db, sizeof(db), "%s.lmdb", srcpath);
    ck_assert_int_ne(access(db, F_OK), 0);
    buf_free(&err);
}
END_TEST

static void build_long_line(size_t n, bool want_ok)
{
    buf_t text = BUF_INIT, err = BUF_INIT;
    buf_puts(&text, "first ok\nlong ");
    for (size_t i = 0; i < n; i++)
        buf_putc(&text, 'v');
    buf_puts(&text, "\n");
    write_src(text.data, text.len);
    int rc = dict_lmdb_build(srcpath, false, &err);
    if (want_ok) {
        ck_assert_msg(rc == 0, "%s", buf_str(&err));
        dict_t *d = open_table();
        buf_t v = BUF_INIT;
        ck_assert_int_eq(dict_lookup(d, "long", &v), 1);
        ck_assert_uint_eq(v.len, n);
        buf_free(&v);
        dict_close(d);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_nonnull(strstr(buf_str(&err), ":2: line longer"));
    }
    buf_free(&text);
    buf_free(&err);
}

START_TEST(test_build_one_megabyte_line)
{
    build_long_line(1024 * 1024, false);
}
END_TEST

START_TEST(test_build_line_limit)
{
    build_long_line(64 * 1024 - 10, true);   /* just under: fine */
    build_long_line(64 * 1024 + 1, false);
}
END_TEST

START_TEST(test_build_long_key)
{
    buf_t text = BUF_INIT, err = BUF_INIT;
    for (int i = 0; i < 512; i++)
        buf_putc(&text, 'k');
    buf_puts(&text, " v\n");
    write_src(text.data, text.len);
    ck_assert_int_eq(dict_lmdb_build(srcpath, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), ":1: key longer"));
    buf_truncate(&text, 511);
    buf_puts(&text, " v\n");
    write_src(text.data, text.len);
    ck_assert_int_eq(dict_lmdb_build(srcpath, false, &err), 0);
    dict_t *d = open_table();
    buf_truncate(&text, 511);
    expect(d, buf_str(&text), "v");
    buf_putc(&text, 'k');
    expect(d, buf_str(&text), NULL);   /* longer than any key: a miss */
    dict_close(d);
    buf_free(&text);
    buf_free(&err);
}
END_TEST

START_TEST(test_build_long_entry)
{
    /* continuation lines may make an entry longer than one line ... */
    buf_t text = BUF_INIT, err = BUF_INIT;
    buf_puts(&text, "big start\n");
    for (int i = 0; i < 15; i++) {
        buf_puts(&text, " ");
        for (int j = 0; j < 60000; j++)
            buf_putc(&text, 'x');
        buf_puts(&text, "\n");
    }
    write_src(text.data, text.len);
    ck_assert_msg(dict_lmdb_build(srcpath, false, &err) == 0, "%s",
                  buf_str(&err));
    /* ... but not without bound */
    for (int i = 0; i < 5; i++) {
        buf_puts(&text, " ");
        for (int j = 0; j < 60000; j++)
            buf_putc(&text, 'x');
        buf_puts(&text, "\n");
    }
    write_src(text.data, text.len);
    ck_assert_int_eq(dict_lmdb_build(srcpath, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), ":1: entry longer"));
    buf_free(&text);
    buf_free(&err);
}
END_TEST

/* ---- aliases format -------------------------------------------------------- */

START_TEST(test_build_aliases)
{
    buf_t err = BUF_INIT;
    int rc = build("# aliases\n"
                   "postmaster: root\n"
                   "Team:alice,bob ,  carol\n"
                   "list: a@example.com,\n"
                   "   b@example.com,\n"
                   "\tc\n"
                   "pipe: \"|/usr/bin/prog -a, -b\", alice\n"
                   "\"quoted name\": x\n"
                   "inc : :include:/etc/tern/list\n"
                   "trail: x, , y,\n", true, &err);
    ck_assert_msg(rc == 0, "%s", buf_str(&err));
    dict_t *d = open_table();
    expect(d, "postmaster", "root");
    expect(d, "team", "alice, bob, carol");
    expect(d, "TEAM", "alice, bob, carol");
    expect(d, "list", "a@example.com, b@example.com, c");
    expect(d, "pipe", "\"|/usr/bin/prog -a, -b\", alice");
    expect(d, "quoted name", "x");
    expect(d, "inc", ":include:/etc/tern/list");
    expect(d, "trail", "x, y");
    expect(d, "root", NULL);
    dict_close(d);
    buf_free(&err);
}
END_TEST

/* ---- a big table (map growth) -------------------------------------------- */

static int count_entry(const char *k, size_t kl, const char *v, size_t vl,
                       void *ctx)
{
    (void)k; (void)kl; (void)v; (void)vl;
    (*(long *)ctx)++;
    return 0;
}

START_TEST(test_build_big)
{
    enum { N = 100000 };
    buf_t text = BUF_INIT, err = BUF_INIT;
    /* scattered insertion order: pages split half-full, the first map
       guess is too small and must grow */
    for (long i = 0; i < N; i++) {
        long k = (i * 7919) % N;
        buf_printf(&text, "Key%06ld value-%ld\n", k, k * 3);
    }
    buf_puts(&text, "key000007 duplicate\n");
    write_src(text.data, text.len);
    ck_assert_msg(dict_lmdb_build(srcpath, false, &err) == 0, "%s",
                  buf_str(&err));
    /* exactly one warning, even though the build was retried */
    const char *w = strstr(buf_str(&err), "duplicate entry");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_null(strstr(w + 1, "duplicate entry"));
    dict_t *d = open_table();
    char key[32], want[32];
    for (long k = 0; k < N; k += 997) {
        snprintf(key, sizeof(key), "KEY%06ld", k);
        snprintf(want, sizeof(want), "value-%ld", k * 3);
        expect(d, key, want);
    }
    expect(d, "key000007", "value-21");
    expect(d, "key100000", NULL);
    long count = 0;
    ck_assert_int_eq(dict_walk(d, count_entry, &count), 0);
    ck_assert_int_eq(count, N);
    dict_close(d);
    buf_free(&text);
    buf_free(&err);
}
END_TEST

/* ---- walking ---------------------------------------------------------------- */

static int collect(const char *k, size_t kl, const char *v, size_t vl,
                   void *ctx)
{
    buf_printf(ctx, "%.*s=%.*s;", (int)kl, k, (int)vl, v);
    return 0;
}

/* lookups on the same table from inside the walk callback */
static int lookup_inside(const char *k, size_t kl, const char *v, size_t vl,
                         void *ctx)
{
    char key[64];
    buf_t got = BUF_INIT;
    snprintf(key, sizeof(key), "%.*s", (int)kl, k);
    int rc = dict_lookup(ctx, key, &got);
    int ret = (rc == 1 && got.len == vl && memcmp(got.data, v, vl) == 0)
        ? 0 : 99;
    buf_free(&got);
    return ret;
}

static int stop_early(const char *k, size_t kl, const char *v, size_t vl,
                      void *ctx)
{
    (void)k; (void)kl; (void)v; (void)vl; (void)ctx;
    return 7;
}

START_TEST(test_walk)
{
    buf_t err = BUF_INIT, out = BUF_INIT;
    ck_assert_int_eq(build("c 3\nA 1\nb 2\n", false, &err), 0);
    dict_t *d = open_table();
    ck_assert_int_eq(dict_walk(d, collect, &out), 0);
    ck_assert_str_eq(buf_str(&out), "a=1;b=2;c=3;");
    ck_assert_int_eq(dict_walk(d, stop_early, NULL), 7);
    ck_assert_int_eq(dict_walk(d, lookup_inside, d), 0);
    dict_close(d);

    const char *why;
    d = dict_open("inline:{X=1, y=2}", &why);
    ck_assert_ptr_nonnull(d);
    buf_reset(&out);
    ck_assert_int_eq(dict_walk(d, collect, &out), 0);
    ck_assert_str_eq(buf_str(&out), "x=1;y=2;");
    dict_close(d);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* ---- replacing a table under a reader ----------------------------------------- */

START_TEST(test_replace_under_reader)
{
    buf_t err = BUF_INIT;
    ck_assert_int_eq(build("k old\ngone x\n", false, &err), 0);
    dict_t *d = open_table();
    expect(d, "k", "old");
    ck_assert_int_eq(build("k new\nadded y\n", false, &err), 0);
    /* the file is stat'ed at most once a second: until a second has
       passed since the open, the old mapping answers */
    fake_now += CHECK_MSEC - 1;
    expect(d, "k", "old");
    expect(d, "added", NULL);
    fake_now += 1;
    expect(d, "k", "new");
    expect(d, "added", "y");
    expect(d, "gone", NULL);
    /* replaced again at once: that check counted, so not seen yet */
    ck_assert_int_eq(build("k newer\n", false, &err), 0);
    fake_now += CHECK_MSEC - 1;
    expect(d, "k", "new");
    fake_now += 1;
    expect(d, "k", "newer");
    /* a table that disappears keeps serving its last contents */
    char db[300];
    snprintf(db, sizeof(db), "%s.lmdb", srcpath);
    ck_assert_int_eq(unlink(db), 0);
    fake_now += CHECK_MSEC;
    expect(d, "k", "newer");
    fake_now += 10 * CHECK_MSEC;
    expect(d, "k", "newer");
    /* and picks up a table built again in its place */
    ck_assert_int_eq(build("k back\n", false, &err), 0);
    fake_now += CHECK_MSEC;
    expect(d, "k", "back");
    dict_close(d);
    buf_free(&err);
}
END_TEST

START_TEST(test_missing_table)
{
    const char *why = NULL;
    ck_assert_ptr_null(dict_open(specbuf, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_nonnull(strstr(why, "No such file"));

    maps_t *m = maps_open_missing_ok(specbuf, &why);
    ck_assert_ptr_nonnull(m);
    buf_t v = BUF_INIT, err = BUF_INIT;
    /* a missing table is a temporary failure, never "not found" (that
       would turn into 550 User unknown for every aliased recipient) */
    ck_assert_int_eq(maps_lookup(m, "k", &v), -1);
    ck_assert_int_eq(build("k appeared\n", false, &err), 0);
    fake_now += CHECK_MSEC - 1;                 /* not looked at yet */
    ck_assert_int_eq(maps_lookup(m, "k", &v), -1);
    fake_now += 1;
    ck_assert_int_eq(maps_lookup(m, "k", &v), 1);
    ck_assert_str_eq(buf_str(&v), "appeared");
    maps_close(m);
    /* a bad spec is still an error with missing_ok */
    ck_assert_ptr_null(maps_open_missing_ok("nosuch:/x", &why));
    buf_free(&v);
    buf_free(&err);
}
END_TEST

START_TEST(test_not_an_lmdb_file)
{
    char db[300];
    snprintf(db, sizeof(db), "%s.lmdb", srcpath);
    FILE *fp = fopen(db, "w");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 10000; i++)
        fputs("garbage ", fp);
    fclose(fp);
    const char *why = NULL;
    ck_assert_ptr_null(dict_open(specbuf, &why));
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* ---- static:, inline:, specs ---------------------------------------------------- */

START_TEST(test_static)
{
    const char *why;
    dict_t *d = dict_open("static:OK", &why);
    ck_assert_ptr_nonnull(d);
    expect(d, "anything", "OK");
    expect(d, "", "OK");
    dict_close(d);
    d = dict_open("static:{two words}", &why);
    ck_assert_ptr_nonnull(d);
    expect(d, "x", "two words");
    dict_close(d);
}
END_TEST

START_TEST(test_inline)
{
    const char *why;
    dict_t *d = dict_open("inline:{ User=Alice , bob = b@example.com,"
                          "x=1=2}", &why);
    ck_assert_ptr_nonnull(d);
    expect(d, "user", "Alice");
    expect(d, "USER", "Alice");
    expect(d, "bob", "b@example.com");
    expect(d, "x", "1=2");
    expect(d, "alice", NULL);
    expect(d, "use", NULL);
    expect(d, "users", NULL);
    dict_close(d);
    d = dict_open("inline:{}", &why);
    ck_assert_ptr_nonnull(d);
    expect(d, "x", NULL);
    dict_close(d);
}
END_TEST

static const struct {
    const char *spec;
    const char *want;
} bad_specs[] = {
    { "inline:k=v", "expected inline:" },
    { "inline:{k=v", "expected inline:" },
    { "inline:k=v}", "expected inline:" },
    { "inline:{k=v}junk", "expected inline:" },
    { "inline:{k}", "expected key=value" },
    { "inline:{=v}", "empty key" },
    { "inline:{k=}", "empty key or value" },
    { "inline:{a=b, {c=d}}", "expected inline:" },
    { "static:", "missing value" },
    { "static:{}", "missing value" },
    { "static:{x", "unbalanced" },
    { "lmdb:", "missing file name" },
    { "hash:/etc/aliases", "unsupported table type \"hash\"" },
    { "nocolon", "expected type:name" },
    { ":x", "expected type:name" },
    { "", "expected type:name" },
};

START_TEST(test_bad_specs)
{
    const char *why = NULL;
    ck_assert_ptr_null(dict_open(bad_specs[_i].spec, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, bad_specs[_i].want) != NULL,
                  "%s: want \"%s\" in \"%s\"", bad_specs[_i].spec,
                  bad_specs[_i].want, why);
}
END_TEST

START_TEST(test_maps)
{
    buf_t err = BUF_INIT, v = BUF_INIT;
    ck_assert_int_eq(build("k from-lmdb\n", false, &err), 0);
    char list[600];
    snprintf(list, sizeof(list), " inline:{a=1, k=from-inline},%s,"
             "  static:{default value}\n", specbuf);
    const char *why;
    maps_t *m = maps_open(list, &why);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(maps_lookup(m, "a", &v), 1);
    ck_assert_str_eq(buf_str(&v), "1");
    ck_assert_int_eq(maps_lookup(m, "K", &v), 1);
    ck_assert_str_eq(buf_str(&v), "from-inline");
    ck_assert_int_eq(maps_lookup(m, "zzz", &v), 1);
    ck_assert_str_eq(buf_str(&v), "default value");
    maps_close(m);

    snprintf(list, sizeof(list), "%s inline:{z=9}", specbuf);
    m = maps_open(list, &why);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(maps_lookup(m, "k", &v), 1);
    ck_assert_str_eq(buf_str(&v), "from-lmdb");
    ck_assert_int_eq(maps_lookup(m, "z", &v), 1);
    ck_assert_int_eq(maps_lookup(m, "nope", &v), 0);
    maps_close(m);

    m = maps_open("", &why);   /* empty list: nothing found */
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(maps_lookup(m, "k", &v), 0);
    maps_close(m);
    m = maps_open(NULL, &why);
    ck_assert_ptr_nonnull(m);
    maps_close(m);

    ck_assert_ptr_null(maps_open("static:x, bogus:y", &why));
    ck_assert_ptr_nonnull(strstr(why, "bogus"));
    ck_assert_ptr_null(maps_open("inline:{a=b, c=d", &why));
    ck_assert_ptr_null(maps_open("inline:{a=b}}", &why));
    buf_free(&err);
    buf_free(&v);
}
END_TEST

/* ---- pcre: ------------------------------------------------------------------- */

/* write srcpath and open it as pcre: (must succeed) */
static dict_t *pcre_table(const char *text)
{
    const char *why = NULL;
    char spec[300];
    write_src(text, strlen(text));
    snprintf(spec, sizeof(spec), "pcre:%s", srcpath);
    dict_t *d = dict_open(spec, &why);
    ck_assert_msg(d != NULL, "open: %s", why ? why : "?");
    return d;
}

START_TEST(test_pcre_basic)
{
    dict_t *d = pcre_table(
        "# header checks\n"
        "/^Subject:.*viagra/     REJECT no spam\n"
        "\n"
        "/^X-Case: Abc$/i        case sensitive\n"
        "/^To: (\\S+)@(\\S+)$/    user=$1 domain=${2} cost=$$5\n"
        "!/^From:/               not a From\n"
        "/a b/x                  extended\n"
        "#/never/                commented out\n"
        "/^Long: x/              one\n"
        "  two three\n");
    expect(d, "Subject: buy VIAGRA now", "REJECT no spam");
    expect(d, "subject: viagra", "REJECT no spam");   /* i: default */
    expect(d, "X-Case: Abc", "case sensitive");
    expect(d, "From: x-case", NULL);
    expect(d, "To: bob@example.com", "user=bob domain=example.com cost=$5");
    expect(d, "Anything", "not a From");
    expect(d, "From: ab", "extended");             /* x: blanks ignored */
    expect(d, "From: a b", NULL);
    expect(d, "From: never", NULL);
    expect(d, "From: Long: x", NULL);
    expect(d, "", "not a From");
    dict_close(d);

    /* keys are not lowercased: with i toggled off, case matters */
    d = pcre_table("/^ABC$/i upper\n");
    expect(d, "ABC", "upper");
    expect(d, "abc", NULL);
    dict_close(d);

    /* continuation: joined with one space */
    d = pcre_table("/^Long: x/  one\n\t two\n");
    expect(d, "Long: xyz", "one two");
    dict_close(d);
}
END_TEST

START_TEST(test_pcre_delims_flags)
{
    dict_t *d = pcre_table(
        "|^/path/x$| slashes\n"
        "/a\\/b/ escaped\n"
        "/^m2$/m multi\n"
        "/^s.t$/s dotall\n"
        "/^(a+?)/U greedy=$1\n");
    expect(d, "/path/x", "slashes");
    expect(d, "a/b", "escaped");
    expect(d, "line1\nm2\nline3", "multi");
    expect(d, "s\nt", "dotall");
    expect(d, "aaa", "greedy=aaa");     /* U makes +? greedy */
    dict_close(d);
}
END_TEST

START_TEST(test_pcre_if)
{
    dict_t *d = pcre_table(
        "if /^Subject:/\n"
        "/spam/ subject spam\n"
        "if !/ok/\n"
        "/bad/ subject bad, not ok\n"
        "endif\n"
        "endif\n"
        "/spam/ other spam\n"
        "/(x)?y/ [$1]\n");
    expect(d, "Subject: spam", "subject spam");
    expect(d, "Subject: bad", "subject bad, not ok");
    expect(d, "Subject: bad ok", NULL);
    expect(d, "From: bad", NULL);
    expect(d, "From: spam", "other spam");
    expect(d, "y", "[]");                      /* unset group: empty */
    expect(d, "xy", "[x]");
    dict_close(d);
}
END_TEST

static const struct {
    const char *text;
    const char *want;
} bad_pcre[] = {
    { "/ok/ fine\n/(unclosed/ x\n", ":2: regex /(unclosed/: missing closing parenthesis" },
    { "/no close x\n", ":1: regex without closing /" },
    { "/a/q x\n", ":1: unknown regex flag 'q'" },
    { "/a/\n", ":1: no result" },
    { "abc def\n", ":1: expected /regex/" },
    { "/(a)/ $2\n", ":1: $2 but the regex has 1 group" },
    { "!/(a)/ $1\n", ":1: $1 in the result of a negated regex" },
    { "/a/ $x\n", ":1: bad substitution" },
    { "/a/ ${1\n", ":1: bad substitution" },
    { "if /a/\n/b/ c\n", ":1: if without endif" },
    { "/b/ c\nendif\n", ":2: endif without if" },
    { "if /a/ junk\nendif\n", ":1: text after the if condition" },
    { "if /a/\nendif junk\n", ":2: text after endif" },
    { "  /a/ b\n", ":1: continuation line without" },
    { "/a/ b\n/\0/ c\n", ":2: NUL byte" },
};

START_TEST(test_pcre_bad)
{
    const char *why = NULL;
    char spec[300];
    const char *text = bad_pcre[_i].text;
    size_t len = strlen(text);
    if (strcmp(text, "/a/ b\n/") == 0)
        len = 12;                       /* the entry with a NUL byte */
    write_src(text, len);
    snprintf(spec, sizeof(spec), "pcre:%s", srcpath);
    ck_assert_ptr_null(dict_open(spec, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, srcpath) != NULL && strstr(why, bad_pcre[_i].want),
                  "case %d: want \"%s\" in \"%s\"", _i, bad_pcre[_i].want, why);
}
END_TEST

START_TEST(test_pcre_missing_and_compiled_once)
{
    const char *why = NULL;
    char spec[300];
    snprintf(spec, sizeof(spec), "pcre:%s/none", tmpdir);
    ck_assert_ptr_null(dict_open(spec, &why));
    ck_assert_ptr_nonnull(strstr(why, "No such file"));
    ck_assert_ptr_null(dict_open("pcre:", &why));
    snprintf(spec, sizeof(spec), "pcre:%s", tmpdir);
    ck_assert_ptr_null(dict_open(spec, &why));
    ck_assert_ptr_nonnull(strstr(why, "not a regular file"));

    /* the file is not needed after open (chroot) */
    dict_t *d = pcre_table("/^a/ A\n");
    ck_assert_int_eq(unlink(srcpath), 0);
    expect(d, "abc", "A");
    dict_close(d);
}
END_TEST

/* a catastrophic regex meets the match limit: the rule is skipped and
   the lookup goes on to the next rule instead of running for ages */
START_TEST(test_pcre_match_limit)
{
    dict_t *d = pcre_table("/^(a+)+$/ slow\n"
                           "!/^(a|aa)+$/ negated slow\n"
                           "/a/ next\n");
    char key[64];
    memset(key, 'a', 40);
    key[40] = 'b';
    key[41] = '\0';
    expect(d, key, "next");
    expect(d, "aaa", "slow");
    dict_close(d);
}
END_TEST

static Suite *dict_suite(void)
{
    Suite *s = suite_create("dict");
    TCase *tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_build_plain);
    tcase_add_test(tc, test_build_duplicates);
    tcase_add_test(tc, test_build_empty_source);
    tcase_add_test(tc, test_build_missing_source);
    tcase_add_test(tc, test_build_mode_follows_source);
    tcase_add_loop_test(tc, test_build_bad, 0,
                        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_build_one_megabyte_line);
    tcase_add_test(tc, test_build_line_limit);
    tcase_add_test(tc, test_build_long_key);
    tcase_add_test(tc, test_build_long_entry);
    tcase_add_test(tc, test_build_aliases);
    tcase_add_test(tc, test_build_big);
    tcase_add_test(tc, test_walk);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, clock_setup, clock_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_replace_under_reader);
    tcase_add_test(tc, test_missing_table);
    tcase_add_test(tc, test_not_an_lmdb_file);
    tcase_add_test(tc, test_static);
    tcase_add_test(tc, test_inline);
    tcase_add_loop_test(tc, test_bad_specs, 0,
                        sizeof(bad_specs) / sizeof(bad_specs[0]));
    tcase_add_test(tc, test_maps);
    suite_add_tcase(s, tc);

    tc = tcase_create("pcre");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pcre_basic);
    tcase_add_test(tc, test_pcre_delims_flags);
    tcase_add_test(tc, test_pcre_if);
    tcase_add_loop_test(tc, test_pcre_bad, 0,
                        sizeof(bad_pcre) / sizeof(bad_pcre[0]));
    tcase_add_test(tc, test_pcre_missing_and_compiled_once);
    tcase_add_test(tc, test_pcre_match_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(dict_suite(), true);
}

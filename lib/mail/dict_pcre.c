/*
 * dict_pcre - pcre: tables (format and rules in dict_pcre.h): the file
 * is compiled into a flat list of rules at open; "if" rules know where
 * their block ends, so a lookup is one pass over the list.
 *
 * Security: table files are trusted (root writes them), keys are not:
 * every match runs under DICT_PCRE_MATCH_LIMIT / _DEPTH_LIMIT /
 * _HEAP_KIB, and the substitution into the result is bounded by the
 * caller's buffer.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "dict_pcre.h"

#include <errno.h>
#include <fcntl.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/logline.h"
#include "util/util.h"

#define DICT_PCRE_MAX_FILE     (16L * 1024 * 1024)
#define DICT_PCRE_MAX_ENTRY    (1024 * 1024)
#define DICT_PCRE_MAX_DEPTH    100          /* nested if blocks */
/* PCRE2's defaults (10 million steps, 20 GB of heap) let one bad
   regex hold a process for seconds; legitimate rules need far less */
#define DICT_PCRE_MATCH_LIMIT  100000
#define DICT_PCRE_DEPTH_LIMIT  10000
#define DICT_PCRE_HEAP_KIB     8192

enum rule_kind { RULE_MATCH, RULE_IF, RULE_ENDIF };

struct rule {
    enum rule_kind kind;
    pcre2_code *re;
    bool negate;
    char *result;               /* RULE_MATCH */
    size_t end;                 /* RULE_IF: index of its endif */
    long lineno;
};

struct dict_pcre {
    char *name;
    struct rule *rules;
    size_t count;
    pcre2_match_data *md;       /* sized for the largest capture count */
    pcre2_match_context *mctx;
};

static char pcre_errbuf[1024];

static const char *pcre_err(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *pcre_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pcre_errbuf, sizeof(pcre_errbuf), fmt, ap);
    va_end(ap);
    return pcre_errbuf;
}

static bool pc_space(int c)
{
    return c == ' ' || c == '\t';
}

static bool pc_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9');
}

/* pc_flags - Postfix's flag letters to PCRE2 options; -1 if unknown */
static int pc_flags(const char *f, size_t n, uint32_t *opts, char *bad)
{
    *opts = PCRE2_CASELESS;
    for (size_t i = 0; i < n; i++) {
        switch (f[i]) {
        case 'i': *opts ^= PCRE2_CASELESS; break;
        case 'm': *opts ^= PCRE2_MULTILINE; break;
        case 's': *opts ^= PCRE2_DOTALL; break;
        case 'x': *opts ^= PCRE2_EXTENDED; break;
        case 'A': *opts ^= PCRE2_ANCHORED; break;
        case 'E': *opts ^= PCRE2_DOLLAR_ENDONLY; break;
        case 'U': *opts ^= PCRE2_UNGREEDY; break;
        default:
            *bad = f[i];
            return -1;
        }
    }
    return 0;
}

/*
 * pc_pattern - parse "[!]DregexDflags" at *sp and compile it; *sp is left
 * after the flags. -1 with *error_r.
 */
static int pc_pattern(const char *where, char **sp, pcre2_code **re_r,
                      bool *negate_r, const char **error_r)
{
    char *s = *sp;
    bool negate = false;

    if (*s == '!') {
        negate = true;
        s++;
    }
    char delim = *s;
    if (delim == '\0' || pc_space((unsigned char)delim)
        || pc_alnum((unsigned char)delim) || delim == '\\' || delim == '!') {
        *error_r = pcre_err("%s: expected /regex/", where);
        return -1;
    }
    char *start = ++s;
    while (*s != '\0' && *s != delim) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        s++;
    }
    if (*s != delim) {
        *error_r = pcre_err("%s: regex without closing %c", where, delim);
        return -1;
    }
    size_t relen = (size_t)(s - start);
    char *flags = ++s;
    while (*s != '\0' && !pc_space((unsigned char)*s))
        s++;
    uint32_t opts;
    char bad;
    if (pc_flags(flags, (size_t)(s - flags), &opts, &bad) < 0) {
        *error_r = pcre_err("%s: unknown regex flag '%c'", where, bad);
        return -1;
    }
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)start, relen, opts,
                                   &errcode, &erroff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            str_copy((char *)msg, "unknown error", sizeof(msg));
        *error_r = pcre_err("%s: regex /%.*s/: %s (at offset %zu)", where,
                            (int)(relen > 200 ? 200 : relen), start,
                            (const char *)msg, (size_t)erroff);
        return -1;
    }
    *re_r = re;
    *negate_r = negate;
    *sp = s;
    return 0;
}

/* pc_check_result - $n within the capture count, no $n when negated */
static int pc_check_result(const char *where, const char *r,
                           uint32_t ncap, bool negate, const char **error_r)
{
    for (const char *p = r; *p; p++) {
        if (*p != '$')
            continue;
        p++;
        if (*p == '$')
            continue;
        bool brace = *p == '{';
        if (brace)
            p++;
        if (*p < '1' || *p > '9' || (brace && p[1] != '}')) {
            *error_r = pcre_err("%s: bad substitution in \"%.100s\" (use "
                                "$1..$9, ${1}..${9} or $$)", where, r);
            return -1;
        }
        if (negate) {
            *error_r = pcre_err("%s: $%c in the result of a negated "
                                "regex", where, *p);
            return -1;
        }
        if ((uint32_t)(*p - '0') > ncap) {
            *error_r = pcre_err("%s: $%c but the regex has %u "
                                "group(s)", where, *p, ncap);
            return -1;
        }
        if (brace)
            p++;
    }
    return 0;
}

static void pc_add(dict_pcre_t *t, const struct rule *r)
{
    t->rules = xrealloc(t->rules, (t->count + 1) * sizeof(*t->rules));
    t->rules[t->count++] = *r;
}

/* pc_line - one logical line into a rule; -1 with *error_r */
static int pc_line(dict_pcre_t *t, char *line, long lineno, size_t *stack,
                   size_t *depth, uint32_t *maxcap, const char **error_r)
{
    char where[300];
    struct rule r = { .lineno = lineno };
    char *s = line;

    snprintf(where, sizeof(where), "%s:%ld", t->name, lineno);
    if (strncmp(s, "endif", 5) == 0 && (s[5] == '\0' || pc_space(s[5]))) {
        if (*str_trim(s + 5) != '\0') {
            *error_r = pcre_err("%s: text after endif", where);
            return -1;
        }
        if (*depth == 0) {
            *error_r = pcre_err("%s: endif without if", where);
            return -1;
        }
        t->rules[stack[--*depth]].end = t->count;
        r.kind = RULE_ENDIF;
        pc_add(t, &r);
        return 0;
    }
    bool is_if = strncmp(s, "if", 2) == 0 && pc_space(s[2]);
    if (is_if) {
        s = str_trim(s + 2);
        if (*depth >= DICT_PCRE_MAX_DEPTH) {
            *error_r = pcre_err("%s: if blocks nested too deeply", where);
            return -1;
        }
    }
    if (pc_pattern(where, &s, &r.re, &r.negate, error_r) < 0)
        return -1;
    char *rest = str_trim(s);
    uint32_t ncap = 0;
    (void)pcre2_pattern_info(r.re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    if (ncap > *maxcap)
        *maxcap = ncap;
    if (is_if) {
        if (*rest != '\0') {
            pcre2_code_free(r.re);
            *error_r = pcre_err("%s: text after the if condition", where);
            return -1;
        }
        r.kind = RULE_IF;
        stack[(*depth)++] = t->count;
    } else {
        if (*rest == '\0') {
            pcre2_code_free(r.re);
            *error_r = pcre_err("%s: no result after the regex", where);
            return -1;
        }
        if (pc_check_result(where, rest, ncap, r.negate, error_r) < 0) {
            pcre2_code_free(r.re);
            return -1;
        }
        r.kind = RULE_MATCH;
        r.result = xstrdup(rest);
    }
    pc_add(t, &r);
    return 0;
}

dict_pcre_t *dict_pcre_parse(const char *name, const char *text, size_t len,
                             const char **error_r)
{
    dict_pcre_t *t = xcalloc(1, sizeof(*t));
    logline_t ll;
    char *line;
    long lineno;
    const char *why;
    size_t stack[DICT_PCRE_MAX_DEPTH], depth = 0;
    uint32_t maxcap = 0;
    int rc;

    t->name = xstrdup(name);
    logline_init(&ll, text, len, 0, DICT_PCRE_MAX_ENTRY);
    while ((rc = logline_next(&ll, &line, &lineno, &why)) > 0)
        if (pc_line(t, line, lineno, stack, &depth, &maxcap, error_r) < 0)
            break;
    logline_free(&ll);
    if (rc < 0)
        *error_r = pcre_err("%s:%ld: %s", name, lineno, why);
    else if (rc == 0 && depth > 0)
        *error_r = pcre_err("%s:%ld: if without endif", name,
                            t->rules[stack[depth - 1]].lineno);
    if (rc != 0 || depth > 0) {
        dict_pcre_free(t);
        return NULL;
    }
    t->md = pcre2_match_data_create(maxcap + 1, NULL);
    t->mctx = pcre2_match_context_create(NULL);
    if (t->md == NULL || t->mctx == NULL) {
        *error_r = pcre_err("%s: out of memory", name);
        dict_pcre_free(t);
        return NULL;
    }
    (void)pcre2_set_match_limit(t->mctx, DICT_PCRE_MATCH_LIMIT);
    (void)pcre2_set_depth_limit(t->mctx, DICT_PCRE_DEPTH_LIMIT);
    (void)pcre2_set_heap_limit(t->mctx, DICT_PCRE_HEAP_KIB);
    return t;
}

dict_pcre_t *dict_pcre_open(const char *path, const char **error_r)
{
    struct stat st;
    dict_pcre_t *t = NULL;

    if (*path == '\0') {
        *error_r = pcre_err("pcre: missing file name");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *error_r = pcre_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        *error_r = pcre_err("%s: fstat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > DICT_PCRE_MAX_FILE) {
        *error_r = pcre_err("%s: %s", path, !S_ISREG(st.st_mode)
                            ? "not a regular file" : "too large");
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    char *text = xmalloc(size + 1);
    ssize_t got = read_full(fd, text, size);
    close(fd);
    if (got < 0 || (size_t)got != size) {
        *error_r = pcre_err("%s: read: %s", path,
                            got < 0 ? strerror(errno) : "short read");
    } else {
        t = dict_pcre_parse(path, text, size, error_r);
    }
    free(text);
    return t;
}

/* pc_match - 1 match, 0 no match, -1 a limit or other error (warned
   about; the rule neither matches nor, negated, fails to match) */
static int pc_match(dict_pcre_t *t, const struct rule *r, const char *key,
                    size_t klen)
{
    int rc = pcre2_match(r->re, (PCRE2_SPTR)key, klen, 0, 0, t->md, t->mctx);

    if (rc >= 0)
        return 1;
    if (rc != PCRE2_ERROR_NOMATCH) {
        PCRE2_UCHAR msg[128];
        if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
            str_copy((char *)msg, "unknown error", sizeof(msg));
        log_warning("pcre:%s:%ld: %s; the rule is skipped", t->name,
                    r->lineno, (const char *)msg);
        return -1;
    }
    return 0;
}

/* pc_holds - does the rule (regex, maybe negated) apply to key? */
static bool pc_holds(dict_pcre_t *t, const struct rule *r, const char *key,
                     size_t klen)
{
    int m = pc_match(t, r, key, klen);

    return r->negate ? m == 0 : m == 1;
}

/* pc_expand - result with $n replaced by the captured substrings */
static int pc_expand(dict_pcre_t *t, const char *result, const char *key,
                     buf_t *value)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    uint32_t npairs = pcre2_get_ovector_count(t->md);

    buf_reset(value);
    for (const char *p = result; *p; p++) {
        if (*p != '$') {
            if (buf_putc(value, *p) < 0)
                return -1;
            continue;
        }
        p++;
        if (*p == '$') {
            if (buf_putc(value, '$') < 0)
                return -1;
            continue;
        }
        bool brace = *p == '{';
        if (brace)
            p++;
        uint32_t n = (uint32_t)(*p - '0');      /* checked at open */
        if (brace)
            p++;
        if (n < npairs && ov[2 * n] != PCRE2_UNSET
            && buf_append(value, key + ov[2 * n],
                          ov[2 * n + 1] - ov[2 * n]) < 0)
            return -1;
    }
    return 1;
}

int dict_pcre_lookup(dict_pcre_t *t, const char *key, buf_t *value)
{
    size_t klen = strlen(key);
    size_t i = 0;

    while (i < t->count) {
        const struct rule *r = &t->rules[i];

        switch (r->kind) {
        case RULE_ENDIF:
            i++;
            break;
        case RULE_IF:
            if (pc_holds(t, r, key, klen))
                i++;
            else
                i = r->end + 1;
            break;
        case RULE_MATCH:
            if (pc_holds(t, r, key, klen)) {
                if (pc_expand(t, r->result, key, value) < 0) {
                    log_warning("pcre:%s:%ld: result too large", t->name,
                                r->lineno);
                    return -1;
                }
                return 1;
            }
            i++;
            break;
        }
    }
    return 0;
}

void dict_pcre_free(dict_pcre_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++) {
        pcre2_code_free(t->rules[i].re);
        free(t->rules[i].result);
    }
    free(t->rules);
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mctx);
    free(t->name);
    free(t);
}

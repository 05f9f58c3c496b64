/*
 * virtual_alias - $virtual_alias_maps: recipient rewriting before the
 * message is queued (virtual(5); Postfix's cleanup does it). cleanup
 * applies it to every recipient of every producer; smtpd asks it at
 * RCPT time whether an address is listed.
 *
 * One lookup (virtual_alias_find) tries, until a table has the key:
 *   user+ext@domain, user@domain, then, when domain is local
 *   ($mydestination, or no domain at all): user+ext, user; last
 *   @domain. "+ext" is the part from the first $recipient_delimiter
 *   character on (mailuser_base_local's split). A match made without
 *   the extension carries it over to every result address (user+ext@
 *   ...) when $propagate_unmatched_extensions names "virtual".
 * A value is one or more addresses, separated by commas or white space
 * ("quoted strings"@x stay one address, <addr> loses its brackets).
 * An address without a domain gets @$myorigin; an address of the form
 * @otherdomain becomes the looked-up local part @otherdomain (Postfix
 * does this for the first address of a value only, and leaves a later
 * "@otherdomain" as it is, which no one can deliver).
 *
 * Expansion (virtual_alias_expand) is recursive, depth first, results
 * in table order:
 *   - an address that maps to itself (any case) is kept as it is;
 *   - an address that maps back to one of its own ancestors ("a -> b,
 *     b -> a") is a loop: the ancestor is kept as it is, logged;
 *   - an address reached twice on different branches is expanded once
 *     (cleanup's duplicate filter would drop the copy anyway);
 *   - a chain may take at most $virtual_alias_recursion_limit lookups,
 *     and at most $virtual_alias_expansion_limit addresses may be
 *     outstanding at any time: beyond either the expansion fails;
 *   - a table error or a malformed value fails the expansion.
 * A failure is temporary (the message waits, "try again later"): a
 * recipient is never dropped or bounced because of a table.
 *
 * Virtual alias domains ($virtual_alias_domains, names and tables keyed
 * by the domain, exact match) are domains whose every address must be
 * listed: smtpd rejects the others at RCPT.
 *
 * Security: table values are not trusted to be sane: every address is
 * bounded (VIRTUAL_ALIAS_ADDR_MAX), control characters are refused,
 * the work is bounded by the two limits, and no recursion on the C
 * stack is used.
 */
#ifndef TERN_VIRTUAL_ALIAS_H
#define TERN_VIRTUAL_ALIAS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define VIRTUAL_ALIAS_ADDR_MAX 1000     /* one result address, bytes */

/* How expansion looks things up (tests bring their own tables). */
struct virtual_alias_ops {
    /* 1 found (value set), 0 not found, -1 table error */
    int (*lookup)(void *ctx, const char *key, buf_t *value);
    /* the domain (not "") is a local one ($mydestination) */
    bool (*local_domain)(void *ctx, const char *domain);
    void *ctx;
};

struct virtual_alias_conf {
    long recursion_limit;
    long expansion_limit;
    const char *delimiters;         /* $recipient_delimiter */
    bool propagate;                 /* extensions carried over */
    const char *myorigin;           /* for addresses without domain */
};

/* What an address became: addrs[0..n), malloc'd. changed is false when
   the result is the address itself (no mapping, or a self mapping). */
struct virtual_alias_result {
    char **addrs;
    size_t n;
    bool changed;
};

/* Split a table value into addresses (malloc'd, free with strv_free):
   0 and at least one address, or -1 with a reason in *error_r (static
   text) for an empty value, an unterminated quote, a control character
   or an address longer than VIRTUAL_ALIAS_ADDR_MAX. */
int virtual_alias_parse(const char *value, char ***addrs_r, size_t *n_r,
                        const char **error_r);

/* One lookup in the order above: 1 found (the value's addresses,
   rewritten as above, into *out), 0 not found, -1 error (reason in
   err). */
int virtual_alias_find_ops(const struct virtual_alias_ops *ops,
                           const struct virtual_alias_conf *conf,
                           const char *addr,
                           struct virtual_alias_result *out, buf_t *err);
/* Expand addr: 0 (out has at least one address), -1 temporary failure
   with the reason in err (a log line's text). */
int virtual_alias_expand_ops(const struct virtual_alias_ops *ops,
                             const struct virtual_alias_conf *conf,
                             const char *addr,
                             struct virtual_alias_result *out, buf_t *err);
void virtual_alias_result_free(struct virtual_alias_result *r);

/* The configured tables of this process ($virtual_alias_maps,
   $virtual_alias_domains, the limits): (re)opened by virtual_alias_open
   (call it before chroot; cleanup does it on first use). 0, or -1 with
   the reason in err. */
int virtual_alias_open(buf_t *err);
void virtual_alias_close(void);
/* $virtual_alias_maps names at least one table */
bool virtual_alias_enabled(void);
/* the above with the configured tables (open on first use) */
int virtual_alias_find(const char *addr, struct virtual_alias_result *out,
                       buf_t *err);
int virtual_alias_expand(const char *addr, struct virtual_alias_result *out,
                         buf_t *err);
/* domain (any case) is in $virtual_alias_domains: 1, 0, -1 table error */
int virtual_alias_domain(const char *domain);

#endif

/*
 * mastercf - master.conf parser. The columns are Postfix master.cf's:
 *
 *   service type private unpriv chroot wakeup maxproc command [args...]
 *
 * type: inet (service is "port" or "host:port", "[v6]:port") or unix
 * (a socket named private/NAME or, with private=n, public/NAME under the
 * queue directory; a service written "login/NAME" listens on login/NAME
 * instead, whatever private says: the login processes' directory, see
 * master(8) and DESIGN's login/mail split; no other name has a '/'). '-' selects the default: private=y, unpriv=y,
 * chroot=n, wakeup=0, maxproc=$default_process_limit. wakeup may end in
 * '?' (Postfix: only wake if the service is running; accepted, same
 * meaning here). maxproc 0 = no limit. A line beginning with whitespace
 * continues the previous entry; '#' starts a comment line. Arguments
 * "-o name=value" override main.conf for that service only. A field
 * that starts with '{' runs to the matching '}' and may contain
 * whitespace; the braces and the whitespace just inside them are
 * removed (Postfix 3.0: "-o { name = value with blanks }").
 */
#ifndef TERN_MASTERCF_H
#define TERN_MASTERCF_H

#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

enum master_type { MASTER_INET, MASTER_UNIX };

struct master_entry {
    char *service;          /* as written: "smtp", "127.0.0.1:2525", "qmgr" */
    enum master_type type;
    bool private_;
    bool unpriv;
    bool chroot;
    long wakeup;            /* seconds, 0 = none */
    long maxproc;           /* -1 = default ($default_process_limit) */
    char *command;          /* "smtpd" */
    char **args;            /* argv after command (NULL-terminated) */
    size_t nargs;
    int line;               /* line number, for messages */
};

struct master_conf {
    struct master_entry *entries;
    size_t count;
};

/*
 * Parse path. Returns 0, or -1 with "path:line: message" in *err.
 * Duplicate (service, type) pairs are an error.
 */
int mastercf_parse_file(const char *path, struct master_conf *mc, buf_t *err);
/* Same from a string (name used in messages). */
int mastercf_parse_string(const char *text, const char *name,
                          struct master_conf *mc, buf_t *err);
void mastercf_free(struct master_conf *mc);

/*
 * Split an inet service "host:port", "[::1]:port" or "port" into host
 * (NULL for all/inet_interfaces) and port. 0 ok, -1 malformed.
 * Host/port are malloc'd.
 */
/* the NAME of a unix service written "login/NAME" (NAME a plain name,
   no further '/', not "." or ".."), else NULL */
const char *mastercf_login_name(const char *service);
int mastercf_inet_split(const char *service, char **host_r, char **port_r);

#endif

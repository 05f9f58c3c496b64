/*
 * master_logic - the pure decisions of the master supervisor, kept apart
 * from sockets and processes so tests/unit/test_master.c can check them:
 * back-off steps, warning rate limits, what to do when a listener is
 * readable (and how many event-server processes to spread clients over),
 * child argv, exit-status wording, listener addresses and
 * whether a master.conf entry changed across a reload.
 */
#ifndef TERN_MASTER_LOGIC_H
#define TERN_MASTER_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "util/buf.h"
#include "mail/mastercf.h"

/* next back-off in seconds after a failed start: 1, 2, 4 ... max */
long master_backoff_next(long current, long max);

/* true (and *last updated) when at least interval_msec passed since *last
   (0 = never) */
bool master_rate_ok(uint64_t now_msec, uint64_t *last_msec,
                    uint64_t interval_msec);

/* What master does about a service's listeners. */
enum master_demand {
    MASTER_DEMAND_IDLE,     /* a child can take work, or throttled: don't watch */
    MASTER_DEMAND_WATCH,    /* watch: fork a child when a client arrives */
    MASTER_DEMAND_REJECT,   /* at the limit, overload reply set: watch,
                               answer it and close */
    MASTER_DEMAND_FULL,     /* at the limit: wait for a child to free up */
};
struct master_demand_state {
    size_t count;           /* live children of the service */
    size_t avail;           /* of which can take another client */
    size_t fresh;           /* of which have not served a client yet */
    size_t spread;          /* children wanted even while some have room
                               (master_spread_target); 1 = fork only when
                               none has room */
    long maxproc;           /* process limit, 0 = none */
    bool throttled;         /* back-off after failures */
    bool reject_when_full;  /* the service has an overload reply */
};
enum master_demand master_demand_decide(const struct master_demand_state *s);

/* How many children of a service master starts on demand even while the
   existing ones have room: for an event server process_min
   ($event_server_process_min; 0 = ncpu, the online CPUs), at least 1 and
   at most maxproc (0 = no limit); 1 for request and trigger servers. */
size_t master_spread_target(long process_min, long ncpu, long maxproc,
                            bool event_server);

/* The overload reply of a service whose command is e->command: the
   parameter COMMAND_overload_reply, from the entry's own
   "-o COMMAND_overload_reply=VALUE" (the last one wins; $name, ${name},
   $(name) expanded with lookup, $$ is '$', undefined names expand to
   nothing) or else lookup(name) (already expanded). Returns a malloc'd
   string ("" = close without a reply) or NULL when neither defines it
   (clients then wait for a free process). lookup returns NULL for an
   unknown name (config_value() in master). */
typedef const char *(*master_lookup_fn)(const char *name);
char *master_overload_reply(const struct master_entry *e,
                            master_lookup_fn lookup);

/* argv for a child, NULL-terminated, malloc'd (free with strv_free and
   count *argc_r). path: the program; nlisten for -s. The entry's
   "-o COMMAND_overload_reply=..." is master's and left out. */
struct master_argv_opts {
    bool foreground;        /* -z */
    int verbose;            /* -v count */
};
char **master_argv_build(const struct master_entry *e, const char *path,
                         size_t nlisten, const struct master_argv_opts *o,
                         size_t *argc_r);

/* chroot=y needs root (a normal user cannot chroot; the developer
   instance writes n): 0 ok, -1 with "master.conf:LINE: ..." in *err for
   the first entry that asks for it when root is false */
int master_conf_check_chroot(const struct master_conf *mc, bool root,
                             buf_t *err);

/* "killed by signal 9" / "exit status 1" into out; false for exit 0 */
bool master_exit_describe(int wstatus, buf_t *out);

/* UNIX service socket path: "private/NAME" or "public/NAME", or for a
   service written "login/NAME" (mastercf_login_name) "login/NAME";
   0 ok, -1 (and *err) for names that are not a plain file name or
   would not fit a sockaddr_un. */
int master_unix_path(const char *name, bool private_, buf_t *out, buf_t *err);

/* Listener addresses of an inet service. host NULL or "*": use
   inet_interfaces ("all", "loopback-only" or a list of addresses).
   Numeric addresses only (no DNS); port numeric or from /etc/services.
   Fills up to max entries; returns the count or -1 with *err. */
struct master_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};
int master_inet_addrs(const char *service, const char *inet_interfaces,
                      struct master_addr *out, size_t max, buf_t *err);
/* "127.0.0.1:25 [::1]:25" into out, for logs and reload comparison */
void master_addrs_key(const struct master_addr *a, size_t n, buf_t *out);

/* deep copy / free / compare of master.conf entries */
void master_entry_copy(struct master_entry *dst, const struct master_entry *src);
void master_entry_free(struct master_entry *e);
bool master_entry_same(const struct master_entry *a,
                       const struct master_entry *b);

#endif

/*
 * server - the daemon skeletons. A Tern daemon is a set of callbacks on
 * one of three skeletons; none repeats the plumbing below.
 *
 * How master and a child meet (master/ is the other side):
 *   fd 3 (SERVER_STATUS_FD): write end of the status pipe. The child
 *       writes struct server_status records: avail=1 when it can take
 *       another connection, avail=0 when it cannot (busy/full); served=1
 *       from its first client on (sent once with the next record);
 *       event=1 from an event server.
 *   fd 4.. (SERVER_LISTEN_FD): listening sockets, count in "-s N".
 *   argv: command -n SERVICE -t TYPE [-u] [-c] [-z] [-v] [-o name=value]...
 *       [daemon args]; -u: drop to $mail_owner; -c: chroot to the queue
 *       directory (a login process, server_ops.login_process: always
 *       $login_user and login/ instead); -z: the service is run by master in the foreground
 *       developer mode (no effect on children other than logging).
 *   env: MAIL_CONFIG = config directory.
 *
 * Start-up order: parse args, config_load (+ -o overrides), logging,
 * ops->pre_init (still root: open tables, logs, keys), chdir to the
 * queue directory, privilege drop / chroot as requested (before a chroot:
 * tzset() and the syslog connection; and from before pre_init on, every
 * lmdb: table and the password database are looked up through
 * proxymap(8), dict_proxy.h), die with master
 * (PR_SET_PDEATHSIG), ops->post_init, run. SIGTERM: stop accepting,
 * ops->on_stop (if any) and a short drain of what it wrote, ops->pre_exit,
 * exit. A second SIGTERM exits at once.
 *
 * Recycling: max_use (var_max_use, or "-o max_use=N" style overrides)
 * counts connections (event, request) or triggers; max_idle seconds
 * without a connection ends the process. Both exit cleanly and master
 * starts a fresh one on demand. long_running servers (qmgr) ignore both.
 */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "util/events.h"

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4

struct server_status {
    pid_t pid;
    int avail;          /* 1 = can take work, 0 = busy/full */
    int served;         /* 1 once the process has taken a client: master
                           does not throttle a daemon that worked */
    int event;          /* 1 = event server (many clients per process):
                           master may start more of them than are busy,
                           $event_server_process_min */
};

struct server_ops {
    /* as root (if started as root), after config; may be NULL */
    void (*pre_init)(const char *service, char **args, int nargs);
    /* after privilege drop, before the loop; may be NULL */
    void (*post_init)(ev_loop_t *loop);
    /* before exit on SIGTERM / max_use / max_idle; may be NULL */
    void (*pre_exit)(void);
    /* event server, SIGTERM (master's shutdown): say goodbye to every
       connection and close it; the process then exits once the replies
       are flushed (at most a few seconds). NULL: exit at once. */
    void (*on_stop)(void);
    /* event server: work is in flight that the drain after on_stop must
       wait for (smtpd: a commit whose 250 is still to be said), up to
       the drain's limit; may be NULL */
    bool (*busy)(void);

    /* event server: a new connection; the daemon owns fd and must call
       server_conn_done() when it is finished with it. */
    void (*on_connect)(ev_loop_t *loop, int fd, const struct sockaddr *peer,
                       socklen_t peerlen, const struct sockaddr *local);
    size_t client_limit;    /* event server: connections per process */

    /* trigger server: bytes received on the service socket, handed over
       as each read returns them (a client may keep its connection and
       send many triggers over it; see trigger_send) */
    void (*on_trigger)(ev_loop_t *loop, const char *data, size_t len);

    /* request server: serve one connected client, blocking, until it
       disconnects; the skeleton closes fd afterwards. */
    void (*on_request_conn)(int fd);

    bool long_running;      /* ignore max_use/max_idle (qmgr) */

    /* a login process (pop3-login): pre-authentication code. As root it
       becomes $login_user (its uid and primary gid, no other groups) and
       chroots into $queue_directory/login (which must be root's, not
       writable by group or others), whatever -u/-c say; it starts in
       that directory in the developer instance too. */
    bool login_process;
};

/* Request servers that speak attribute lists (util/attr.h) share this
   loop for on_request_conn: read a request (waiting at most idle_sec for
   it: an idle client is let go, it reconnects when it needs us), call
   handle(req, reply, ctx), write the reply within $ipc_timeout, until
   the client closes. handle fills reply (empty on entry) and returns 0,
   or -1 to drop the connection (it logs why). A request that breaks the
   codec's bounds is logged as "WHAT client: ...". secret: wipe every
   request and the input buffer after use (passwords). */
struct attr_list;
typedef int (*server_attr_fn)(struct attr_list *req, struct attr_list *reply,
                              void *ctx);
void server_attr_serve(int fd, const char *what, int idle_sec, bool secret,
                       server_attr_fn handle, void *ctx);

int event_server_main(int argc, char **argv, const struct server_ops *ops);
int trigger_server_main(int argc, char **argv, const struct server_ops *ops);
int request_server_main(int argc, char **argv, const struct server_ops *ops);

/* event server: one connection ended (updates busy/idle, max_use) */
void server_conn_done(void);
/* the service name (-n) and whether we are stopping */
const char *server_service_name(void);
bool server_stopping(void);

/* Send a one-byte trigger to the UNIX socket at path (relative to the
   queue directory), never blocking; 0 ok, -1 errno. Used to wake qmgr
   ("public/qmgr") after a queue file is committed. The connection is
   kept for the next trigger to the same path (a few paths per process;
   close-on-exec, and closed in a fork()ed child); when the server went
   away (EPIPE, ECONNRESET, ENOTCONN) it reconnects once. A server that
   has not read what was sent before (full socket buffer) is awake
   anyway: a TRIGGER_NEW_MAIL or TRIGGER_WAKEUP byte is then dropped and
   counts as sent; any other byte fails with EAGAIN. */
int trigger_send(const char *path, char byte);
/* Close every connection trigger_send keeps (the next one reconnects). */
void trigger_close_all(void);

/* Re-arm the parent-death signal (SIGTERM when master dies). The kernel
   clears it whenever the effective user or group ID changes, so a daemon
   that switches IDs (local: privs_become/privs_restore) calls this after
   switching back. If master died in between, SIGTERM is raised now (it
   is handled like master's own SIGTERM, from the event loop). */
void server_pdeathsig_renew(void);

/* trigger bytes */
#define TRIGGER_NEW_MAIL  'A'   /* incoming/ has new files */
#define TRIGGER_WAKEUP    'W'   /* periodic wakeup from master */
#define TRIGGER_FLUSH     'F'   /* retry deferred mail now */
#define TRIGGER_DEFERRED  'D'   /* deferred/ has files that are due now
                                   (showq made them so: a site flush) */

#endif

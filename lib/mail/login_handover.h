/*
 * login_handover - how a login process (pop3-login) gives a logged-in
 * client to the mail side (pop3d): the request on $queue_directory/
 * login/pop3d, with the client's descriptor attached.
 *
 * Request (login -> mail side): one attribute list (util/attr.h) sent
 * with one sendmsg() whose SCM_RIGHTS control message carries exactly
 * one descriptor: the client connection (plaintext), or the mail side's
 * end of a socketpair when the client speaks TLS (the login process
 * keeps the TLS session and copies decrypted bytes both ways; a TLS
 * state cannot move between processes). Attributes, all required:
 *   request=login  version=1  service=pop3
 *   user=NAME            auth's canonical name (auth reply user=)
 *   token=TOKEN          auth's login_token for (service, user)
 *   mechanism=MECH       USER (USER/PASS), PLAIN, LOGIN, SCRAM-SHA-256
 *   client_address=ADDR  client_port=N  local_address=ADDR  local_port=N
 *   tls=0|1              tls_info=TEXT ("" without TLS; e.g.
 *                        "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384")
 *   session=ID           the login process's session id, for logs
 *   input=BASE64         bytes the client sent after the command that
 *                        completed the login (pipelining), at most
 *                        LOGIN_INPUT_MAX decoded; "" when none
 * Field rules (decode enforces them): user as auth_proto (1..255, no
 * control characters); token 1..LOGIN_TOKEN_MAX of [0-9a-f.]; service
 * and mechanism from the lists above; addresses as auth_proto's
 * client_address; ports 0..65535; tls_info 0..127 printable ASCII;
 * session 1..31 of [0-9A-Za-z]. A list that breaks a rule, has an
 * unknown or duplicate attribute, another version, or arrives with no
 * descriptor or more than one, is a protocol error: the mail side logs
 * it, closes every descriptor that came with it and drops the request.
 *
 * Reply (mail side -> login), one attribute list: status=ok, or
 * status=fail reason=TEXT (for the login process's log only). After ok
 * the mail side owns the client: it checks the token, takes the user's
 * identity, opens the mailbox and writes the reply to the login command
 * itself ("+OK ..." or "-ERR [IN-USE] ..."); the login process says
 * nothing more to the client. A plaintext login process closes its copy
 * of the client descriptor after ok; a TLS one starts copying. After
 * fail (or no reply within the timeout) the login process answers the
 * client "-ERR [SYS/TEMP] ..." itself.
 *
 * Both sides' I/O here is bounded: a request is at most ATTR_MAX_MSG
 * bytes, and every wait has a deadline.
 */
#ifndef TERN_LOGIN_HANDOVER_H
#define TERN_LOGIN_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "util/attr.h"
#include "mail/login_token.h"

#define LOGIN_INPUT_MAX 4096
#define LOGIN_HANDOVER_VERSION 1

struct login_handover {
    char service[16];
    char user[256];
    char token[LOGIN_TOKEN_MAX + 1];
    char mechanism[32];
    char client_address[64];
    int client_port;
    char local_address[64];
    int local_port;
    bool tls;
    char tls_info[128];
    char session[32];
    unsigned char input[LOGIN_INPUT_MAX];
    size_t input_len;
};

/* attribute list <-> struct; 0 ok, -1 with a static *error_r */
int login_handover_encode(const struct login_handover *h, attr_list_t *out,
                          const char **error_r);
int login_handover_decode(const attr_list_t *in, struct login_handover *h,
                          const char **error_r);

/* login side: connect to the UNIX socket path (relative to the cwd, the
   login chroot), send h with client_fd attached, non-blocking (the
   request fits the socket buffer; EAGAIN is an error). Returns the
   connected descriptor, on which the reply will arrive, or -1 with
   *error_r. client_fd stays open: the caller closes it after ok. */
int login_handover_send(const char *path, const struct login_handover *h,
                        int client_fd, const char **error_r);
/* login side: read the reply from fd (readable, or waits at most
   timeout_ms); 1 ok, 0 fail (reason in reason, size bytes), -1 no
   valid reply (*error_r) */
int login_handover_reply_read(int fd, int timeout_ms, char *reason,
                              size_t size, const char **error_r);

/* mail side: read one request from ipc_fd (blocking, at most timeout_ms
   in total) with its descriptor; 0 ok (*client_fd_r is the client, the
   caller owns it), -1 with *error_r (every received descriptor closed) */
int login_handover_recv(int ipc_fd, int timeout_ms, struct login_handover *h,
                        int *client_fd_r, const char **error_r);
/* mail side: send the reply; 0 ok, -1 errno */
int login_handover_reply(int ipc_fd, bool ok, const char *reason,
                         int timeout_ms);

/* wipe h (the token and the pipelined input) */
void login_handover_clear(struct login_handover *h);

#endif

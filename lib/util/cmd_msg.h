/*
 * cmd_msg - what a command (ternmap, ternqueue, ternsuper, ...) prints on
 * stderr when something is wrong, in the form of Postfix's commands:
 * "PROGRAM: fatal: text" and "PROGRAM: warning: text". Daemons log
 * through log.h instead.
 */
#ifndef TERN_CMD_MSG_H
#define TERN_CMD_MSG_H

#include "buf.h"

/* the program name for the prefix, and a function run before a fatal
   exit (e.g. config_free, so leak checkers see a clean exit); NULL: none */
void cmd_msg_init(const char *prog, void (*cleanup)(void));
void cmd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* stdout is flushed first; then exit(code) */
void cmd_fatal(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* the error is the last line of err (earlier lines are warnings that were
   logged already); err is freed */
void cmd_fatal_buf(int code, buf_t *err) __attribute__((noreturn));

#endif

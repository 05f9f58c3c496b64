/*
 * cmd_msg - "PROGRAM: fatal: ..." / "PROGRAM: warning: ..." on stderr.
 */
#include "cmd_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cmd_prog = "tern";
static void (*cmd_cleanup)(void);

void cmd_msg_init(const char *prog, void (*cleanup)(void))
{
    cmd_prog = prog;
    cmd_cleanup = cleanup;
}

static void cmd_vmsg(const char *level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void cmd_vmsg(const char *level, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s: ", cmd_prog, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cmd_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cmd_vmsg("warning", fmt, ap);
    va_end(ap);
}

void cmd_fatal(int code, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    va_start(ap, fmt);
    cmd_vmsg("fatal", fmt, ap);
    va_end(ap);
    if (cmd_cleanup)
        cmd_cleanup();
    exit(code);
}

void cmd_fatal_buf(int code, buf_t *err)
{
    const char *msg = buf_str(err);
    const char *last = strrchr(msg, '\n');

    fflush(stdout);
    fprintf(stderr, "%s: fatal: %s\n", cmd_prog, last ? last + 1 : msg);
    buf_free(err);
    if (cmd_cleanup)
        cmd_cleanup();
    exit(code);
}

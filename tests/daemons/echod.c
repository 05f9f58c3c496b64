/*
 * echod - test daemon on the server skeletons (used only by the master
 * and skeleton tests). As "echod" (or any other name) it is an event
 * server; per line: "PID" -> "+PID <pid>", "CRASH" -> abort(), "QUIT" ->
 * "+BYE" and close, anything else -> "+ECHO <line>". "-l N" (taken out
 * before the skeleton parses the rest) sets client_limit.
 * Run as "trigd" it is a trigger server that logs "trigger: <bytes>";
 * as "reqd" a request server answering the same lines, blocking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "mail/server.h"
#include "util/stream.h"
#include "util/util.h"

#define ECHOD_MAX_LINE 1024
#define ECHOD_TIMEOUT 60

static void echod_close(stream_t *s, void *ctx, enum stream_close_reason why)
{
    (void)s;
    (void)ctx;
    (void)why;
    server_conn_done();
}

static void echod_read(stream_t *s, void *ctx)
{
    const char *line;
    size_t len;
    bool crlf;
    int rc;

    (void)ctx;
    while ((rc = stream_read_line(s, &line, &len, &crlf)) != 0) {
        if (rc < 0) {
            stream_puts(s, "-ERR line too long\r\n");
        } else if (len == 3 && memcmp(line, "PID", 3) == 0) {
            stream_printf(s, "+PID %ld\r\n", (long)getpid());
        } else if (len == 5 && memcmp(line, "CRASH", 5) == 0) {
            abort();
        } else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
            stream_puts(s, "+BYE\r\n");
            stream_close(s);
            server_conn_done();
            return;
        } else {
            stream_puts(s, "+ECHO ");
            stream_write(s, line, len);
            stream_puts(s, "\r\n");
        }
    }
}

static const struct stream_handler echod_handler = {
    .on_read = echod_read,
    .on_close = echod_close,
};

static void echod_connect(ev_loop_t *loop, int fd, const struct sockaddr *peer,
                          socklen_t peerlen, const struct sockaddr *local)
{
    (void)peer;
    (void)peerlen;
    (void)local;
    if (stream_new(loop, fd, ECHOD_MAX_LINE, ECHOD_TIMEOUT, &echod_handler,
                   NULL) == NULL) {
        (void)close(fd);
        server_conn_done();
    }
}

/* echod_take_limit - remove "-l N" from argv; returns the new argc */
static int echod_take_limit(int argc, char **argv, size_t *limit)
{
    int out = 0;

    for (int i = 0; i < argc; i++) {
        long n;

        if (strcmp(argv[i], "-l") == 0 && i + 1 < argc
            && parse_long(argv[i + 1], 1, 100000, &n) == 0) {
            *limit = (size_t)n;
            i++;
            continue;
        }
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}

static void trigd_trigger(ev_loop_t *loop, const char *data, size_t len)
{
    (void)loop;
    log_info("trigger: %.*s", (int)len, data);
}

/* reqd_conn - the same protocol, one blocking client */
static void reqd_conn(int fd)
{
    FILE *f = fdopen(dup(fd), "r+");
    char line[ECHOD_MAX_LINE];

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "PID") == 0)
            fprintf(f, "+PID %ld\r\n", (long)getpid());
        else if (strcmp(line, "QUIT") == 0)
            break;
        else
            fprintf(f, "+ECHO %s\r\n", line);
        if (fflush(f) == EOF)
            break;
    }
    (void)fclose(f);
}

int main(int argc, char **argv)
{
    static struct server_ops ops = {
        .on_connect = echod_connect,
        .on_trigger = trigd_trigger,
        .on_request_conn = reqd_conn,
    };
    const char *name = strrchr(argv[0], '/');

    name = name ? name + 1 : argv[0];
    argc = echod_take_limit(argc, argv, &ops.client_limit);
    if (strcmp(name, "trigd") == 0)
        return trigger_server_main(argc, argv, &ops);
    if (strcmp(name, "reqd") == 0)
        return request_server_main(argc, argv, &ops);
    return event_server_main(argc, argv, &ops);
}

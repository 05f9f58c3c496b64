/*
 * crashd - test daemon that fails during start-up every time, so the
 * tests can watch master throttle a crash loop.
 */
#include <stdlib.h>

#include "util/log.h"
#include "mail/server.h"

static void crashd_pre_init(const char *service, char **args, int nargs)
{
    (void)args;
    (void)nargs;
    log_warning("%s: failing at start-up on purpose", service);
    exit(2);
}

static void crashd_connect(ev_loop_t *loop, int fd, const struct sockaddr *peer,
                           socklen_t peerlen, const struct sockaddr *local)
{
    (void)loop;
    (void)fd;
    (void)peer;
    (void)peerlen;
    (void)local;
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = crashd_pre_init,
        .on_connect = crashd_connect,
    };

    return event_server_main(argc, argv, &ops);
}

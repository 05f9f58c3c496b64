/*
 * newaliases - rebuild the alias database: the first lmdb: table named
 * by $alias_database, compiled from its text source in aliases format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_build.h"
#include "util/cmd_msg.h"
#include "util/log.h"
#include "util/util.h"

static void usage(void)
{
    fprintf(stderr, "usage: newaliases [-c config_dir]\n");
    exit(2);
}

/* fatal_buf - print the error (last line of err), free, exit */
/* first_lmdb - path of the first lmdb: table in list (malloc'd), or NULL */
static char *first_lmdb(const char *list)
{
    char **v;
    size_t n = str_split_list(list ? list : "", &v);
    char *path = NULL;
    for (size_t i = 0; i < n && path == NULL; i++)
        if (strncmp(v[i], "lmdb:", 5) == 0 && v[i][5] != '\0')
            path = xstrdup(v[i] + 5);
    strv_free(v, n);
    return path;
}

int main(int argc, char **argv)
{
    const char *cdir = NULL;
    int ch;

    cmd_msg_init("newaliases", config_free);
    while ((ch = getopt(argc, argv, "c:")) != -1) {
        switch (ch) {
        case 'c': cdir = optarg; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    log_init("tern", "newaliases");
    log_set_stderr(true);
    buf_t err = BUF_INIT;
    if (config_load(config_directory_default(cdir), &err) < 0)
        cmd_fatal_buf(1, &err);
    log_init(var_syslog_name, "newaliases");
    char *path = first_lmdb(var_alias_database);
    if (path == NULL) {
        buf_reset(&err);
        buf_printf(&err, "alias_database = %s: no lmdb: table to build",
                   var_alias_database);
        cmd_fatal_buf(1, &err);
    }
    buf_reset(&err);
    int rc = dict_lmdb_build(path, true, &err);
    free(path);
    if (rc < 0)
        cmd_fatal_buf(1, &err);
    buf_free(&err);   /* warnings went out through the log */
    config_free();
    return 0;
}

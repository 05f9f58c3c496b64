/*
 * ternmap - build an LMDB lookup table from its text source (like
 * postmap), query one key (-q), or dump a table (-s).
 *
 * Exit status: 0 success (or key found), 1 key not found (-q), 2 error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_build.h"
#include "util/cmd_msg.h"
#include "util/log.h"

#define EXIT_NOTFOUND 1
#define EXIT_ERROR    2

static buf_t spec = BUF_INIT;   /* global: still reachable at a fatal exit */

static void usage(void)
{
    fprintf(stderr, "usage: ternmap [-c config_dir] [-q key | -s] "
                    "[lmdb:]file\n");
    exit(EXIT_ERROR);
}

/* load_config - main.conf for logging; without -c a missing config
   directory just means the defaults */
static void load_config(const char *cmdline_dir)
{
    const char *dir = config_directory_default(cmdline_dir);
    struct stat st;
    if (cmdline_dir == NULL && stat(dir, &st) < 0 && errno == ENOENT) {
        config_init_defaults();
        return;
    }
    buf_t err = BUF_INIT;
    if (config_load(dir, &err) < 0)
        cmd_fatal_buf(EXIT_ERROR, &err);
    buf_free(&err);
}

static int print_entry(const char *key, size_t klen, const char *value,
                       size_t vlen, void *ctx)
{
    (void)ctx;
    if (fwrite(key, 1, klen, stdout) != klen || putchar(' ') == EOF
        || fwrite(value, 1, vlen, stdout) != vlen || putchar('\n') == EOF)
        return -1;
    return 0;
}

static int do_query(const char *key, bool dump)
{
    const char *why;
    dict_t *d = dict_open(buf_str(&spec), &why);
    if (d == NULL)
        cmd_fatal(EXIT_ERROR, "%s", why);
    int rc;
    if (dump) {
        rc = dict_walk(d, print_entry, NULL);
    } else {
        buf_t value = BUF_INIT;
        rc = dict_lookup(d, key, &value);
        if (rc == 1)
            printf("%s\n", buf_str(&value));
        buf_free(&value);
        rc = rc == 1 ? 0 : rc == 0 ? EXIT_NOTFOUND : -1;
    }
    dict_close(d);
    if (fflush(stdout) != 0)
        cmd_fatal(EXIT_ERROR, "write: %s", strerror(errno));
    if (rc < 0)
        cmd_fatal(EXIT_ERROR, "%s: table error", buf_str(&spec));
    return rc;
}

int main(int argc, char **argv)
{
    const char *cdir = NULL, *key = NULL;
    bool dump = false;
    int ch;

    cmd_msg_init("ternmap", config_free);
    while ((ch = getopt(argc, argv, "c:q:s")) != -1) {
        switch (ch) {
        case 'c': cdir = optarg; break;
        case 'q': key = optarg; break;
        case 's': dump = true; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || (key && dump))
        usage();
    log_init("tern", "ternmap");
    log_set_stderr(true);
    load_config(cdir);
    log_init(var_syslog_name, "ternmap");

    /* a bare file name means lmdb: */
    const char *arg = argv[optind];
    if (strchr(arg, ':') == NULL || arg[0] == '/')
        buf_printf(&spec, "lmdb:%s", arg);
    else
        buf_puts(&spec, arg);
    int status = 0;
    if (key || dump) {
        status = do_query(key, dump);
    } else if (strncmp(buf_str(&spec), "lmdb:", 5) != 0) {
        cmd_fatal(EXIT_ERROR, "%s: only lmdb: tables are built from a file", arg);
    } else {
        buf_t err = BUF_INIT;
        if (dict_lmdb_build(buf_str(&spec) + 5, false, &err) < 0)
            cmd_fatal_buf(EXIT_ERROR, &err);
        buf_free(&err);   /* warnings were logged (to stderr as well) */
    }
    buf_free(&spec);
    config_free();
    return status;
}

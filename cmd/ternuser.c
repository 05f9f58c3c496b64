/*
 * ternuser - manage the virtual password table that auth(8) reads:
 *   ternuser [-c config_dir] [-f file] add USER | passwd USER | del USER
 *   ternuser [-c config_dir] [-f file] list
 * The table is the text source of the first lmdb: table in
 * $virtual_password_maps (or -f file): "user hash scram" per line, hash
 * from crypt(3) (yescrypt, else SHA-512-crypt) for PLAIN and LOGIN, scram
 * the SCRAM-SHA-256 secrets (util/scram.h: salt, 4096 iterations,
 * StoredKey and ServerKey; never the password) for SCRAM-SHA-256. A line
 * with the hash alone (an older ternuser) stays valid: that user cannot
 * use SCRAM until the next passwd. After each change the source
 * is replaced atomically and its LMDB rebuilt (dict_lmdb_build); other
 * lines (comments, other users) are kept as they are.
 *
 * The password is read from the terminal without echo (asked twice), or
 * as one line from standard input when that is not a terminal.
 *
 * Security: a new source is created mode 0600 (an existing one keeps its
 * mode); the LMDB gets the same mode and owner. Concurrent runs are
 * serialized with flock on FILE.lock. Passwords are wiped after use.
 * Exit status: 0 ok, 1 no such user / user exists, 2 error.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/dict_build.h"
#include "util/buf.h"
#include "util/scram.h"
#include "util/cmd_msg.h"
#include "util/log.h"
#include "util/util.h"

#define TU_EXIT_USER 1
#define TU_EXIT_ERROR 2
#define TU_PASS_MAX 255
#define TU_USER_MAX 255

static void tu_usage(void)
{
    fprintf(stderr, "usage: ternuser [-c config_dir] [-f file] "
                    "add|passwd|del USER\n"
                    "       ternuser [-c config_dir] [-f file] list\n");
    exit(TU_EXIT_ERROR);
}

/* tu_user_ok - names a table key may be: [A-Za-z0-9._@+-], not starting
   with '-' or '#' */
static bool tu_user_ok(const char *u)
{
    size_t n = strlen(u);

    if (n == 0 || n > TU_USER_MAX || u[0] == '-' || u[0] == '#')
        return false;
    for (; *u; u++)
        if (!isalnum((unsigned char)*u) && !strchr("._@+-", *u))
            return false;
    return true;
}

/* tu_table_path - the source file of the first lmdb: table */
static char *tu_table_path(void)
{
    const char *m = var_virtual_password_maps ? var_virtual_password_maps : "";
    const char *p = strstr(m, "lmdb:");
    size_t n;

    if (p == NULL)
        cmd_fatal(TU_EXIT_ERROR, "virtual_password_maps has no lmdb: table (use -f file)");
    p += 5;
    n = strcspn(p, " \t,");
    if (n == 0)
        cmd_fatal(TU_EXIT_ERROR, "virtual_password_maps: empty lmdb: path");
    return xstrndup(p, n);
}

/* tu_read_password - from the terminal (no echo, twice) or one stdin line */
static void tu_read_password(char *pw, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    char again[TU_PASS_MAX + 2];
    struct termios old, noecho;

    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *dst = round == 0 ? pw : again;
        size_t dsize = round == 0 ? size : sizeof(again);
        size_t n;

        if (tty) {
            fputs(round == 0 ? "Password: " : "Again: ", stderr);
            if (tcgetattr(STDIN_FILENO, &old) < 0)
                cmd_fatal(TU_EXIT_ERROR, "tcgetattr: %s", strerror(errno));
            noecho = old;
            noecho.c_lflag &= ~(tcflag_t)ECHO;
            if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) < 0)
                cmd_fatal(TU_EXIT_ERROR, "tcsetattr: %s", strerror(errno));
        }
        char *r = fgets(dst, (int)dsize, stdin);
        if (tty) {
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        if (r == NULL)
            cmd_fatal(TU_EXIT_ERROR, "no password given");
        n = strlen(dst);
        if (n > 0 && dst[n - 1] == '\n')
            dst[--n] = '\0';
        else if (!feof(stdin))
            cmd_fatal(TU_EXIT_ERROR, "password longer than %d bytes", TU_PASS_MAX);
        if (n > 0 && dst[n - 1] == '\r')
            dst[--n] = '\0';
        if (n == 0 || n > TU_PASS_MAX)
            cmd_fatal(TU_EXIT_ERROR, "the password must be 1..%d bytes", TU_PASS_MAX);
    }
    if (tty && strcmp(pw, again) != 0) {
        explicit_bzero(again, sizeof(again));
        cmd_fatal(TU_EXIT_ERROR, "the passwords differ");
    }
    explicit_bzero(again, sizeof(again));
}

/* tu_hash - crypt(3) hash of pw into out: yescrypt, else SHA-512 */
static void tu_hash(const char *pw, char *out, size_t size)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *h;

    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL
        && crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
        cmd_fatal(TU_EXIT_ERROR, "crypt_gensalt: %s", strerror(errno));
    h = crypt_r(pw, salt, cd);
    if (h == NULL || h[0] == '*' || snprintf(out, size, "%s", h) >= (int)size)
        cmd_fatal(TU_EXIT_ERROR, "crypt failed");
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
}

/* tu_entry - the table value for pw: "HASH scram-sha-256:..." */
static void tu_entry(const char *pw, char *out, size_t size)
{
    struct scram_secrets sec;
    buf_t b = BUF_INIT;
    size_t n;

    tu_hash(pw, out, size);
    if (scram_secrets_make(pw, SCRAM_ITER_DEFAULT, &sec) < 0)
        cmd_fatal(TU_EXIT_ERROR, "cannot compute the SCRAM-SHA-256 secrets");
    if (scram_secrets_format(&sec, &b) < 0)
        cmd_fatal(TU_EXIT_ERROR, "out of memory");
    scram_secrets_clear(&sec);
    n = strlen(out);
    if (snprintf(out + n, size - n, " %s", buf_str(&b)) >= (int)(size - n))
        cmd_fatal(TU_EXIT_ERROR, "password table entry too long");
    buf_free(&b);
}

/* tu_line_key - does this source line define key user? (first token,
   case-insensitively: lookups are lowercased) */
static bool tu_line_key(const char *line, size_t len, const char *user)
{
    size_t ulen = strlen(user);

    if (len == 0 || isspace((unsigned char)line[0]) || line[0] == '#')
        return false;
    return len > ulen && strncasecmp(line, user, ulen) == 0
           && (line[ulen] == ' ' || line[ulen] == '\t');
}

/* tu_load - the whole source (empty when it does not exist yet) */
static void tu_load(const char *path, buf_t *src, mode_t *mode)
{
    FILE *f = fopen(path, "r");
    char tmp[4096];
    size_t n;
    struct stat st;

    *mode = 0600;
    if (f == NULL) {
        if (errno == ENOENT)
            return;
        cmd_fatal(TU_EXIT_ERROR, "open %s: %s", path, strerror(errno));
    }
    if (fstat(fileno(f), &st) == 0)
        *mode = st.st_mode & 07777;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (buf_append(src, tmp, n) < 0)
            cmd_fatal(TU_EXIT_ERROR, "%s: too large", path);
    if (ferror(f))
        cmd_fatal(TU_EXIT_ERROR, "read %s: %s", path, strerror(errno));
    fclose(f);
    if (src->len > 0 && src->data[src->len - 1] != '\n')
        (void)buf_putc(src, '\n');
}

/* tu_save - replace path atomically with data, then rebuild the LMDB */
static void tu_save(const char *path, const buf_t *data, mode_t mode)
{
    buf_t tmp = BUF_INIT, err = BUF_INIT;
    int fd;

    if (buf_printf(&tmp, "%s.XXXXXX", path) < 0)
        cmd_fatal(TU_EXIT_ERROR, "path too long");
    fd = mkstemp(tmp.data);
    if (fd < 0)
        cmd_fatal(TU_EXIT_ERROR, "create %s: %s", tmp.data, strerror(errno));
    if (fchmod(fd, mode) < 0
        || (data->len && write(fd, data->data, data->len) != (ssize_t)data->len)
        || fsync(fd) < 0 || close(fd) < 0) {
        (void)unlink(tmp.data);
        cmd_fatal(TU_EXIT_ERROR, "write %s: %s", tmp.data, strerror(errno));
    }
    if (rename(tmp.data, path) < 0) {
        (void)unlink(tmp.data);
        cmd_fatal(TU_EXIT_ERROR, "rename %s: %s", path, strerror(errno));
    }
    buf_free(&tmp);
    if (dict_lmdb_build(path, false, &err) < 0)
        cmd_fatal(TU_EXIT_ERROR, "%s", buf_str(&err));
    buf_free(&err);
}

/* tu_edit - copy src without user's line; *found says whether it was
   there. With hash, the user's new line is appended. */
static void tu_edit(const buf_t *src, const char *user, const char *hash,
                    buf_t *out, bool *found)
{
    const char *p = buf_str(src), *end = p + src->len;
    bool skipping = false;

    *found = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        /* continuation lines belong to the entry above */
        if (len > 0 && isspace((unsigned char)p[0]) && skipping) {
            p += len + 1;
            continue;
        }
        skipping = tu_line_key(p, len, user);
        if (skipping)
            *found = true;
        else if (buf_append(out, p, len) < 0 || buf_putc(out, '\n') < 0)
            cmd_fatal(TU_EXIT_ERROR, "out of memory");
        p += len + 1;
    }
    if (hash && buf_printf(out, "%s %s\n", user, hash) < 0)
        cmd_fatal(TU_EXIT_ERROR, "out of memory");
}

/* tu_list - the user names in the source */
static void tu_list(const buf_t *src)
{
    const char *p = buf_str(src), *end = p + src->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t k = 0;

        if (len > 0 && !isspace((unsigned char)p[0]) && p[0] != '#') {
            while (k < len && !isspace((unsigned char)p[k]))
                k++;
            printf("%.*s\n", (int)k, p);
        }
        p += len + 1;
    }
    if (fflush(stdout) != 0)
        cmd_fatal(TU_EXIT_ERROR, "write: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    const char *cdir = NULL, *file = NULL, *cmd, *arg = NULL;
    char user[TU_USER_MAX + 1], pw[TU_PASS_MAX + 2];
    char hash[CRYPT_OUTPUT_SIZE + 256];
    buf_t src = BUF_INIT, out = BUF_INIT, lockpath = BUF_INIT;
    buf_t cerr = BUF_INIT;
    char *path;
    mode_t mode;
    bool found;
    int ch, lockfd, rc = 0;

    cmd_msg_init("ternuser", config_free);

    while ((ch = getopt(argc, argv, "c:f:")) != -1) {
        switch (ch) {
        case 'c': cdir = optarg; break;
        case 'f': file = optarg; break;
        default: tu_usage();
        }
    }
    if (optind >= argc)
        tu_usage();
    cmd = argv[optind];
    if (strcmp(cmd, "list") == 0 ? argc - optind != 1 : argc - optind != 2)
        tu_usage();
    if (strcmp(cmd, "list") != 0) {
        arg = argv[optind + 1];
        if (!tu_user_ok(arg))
            cmd_fatal(TU_EXIT_ERROR, "bad user name (allowed: letters, digits, ._@+-)");
        for (size_t i = 0; i <= strlen(arg); i++)
            user[i] = (char)tolower((unsigned char)arg[i]);
    }
    if (strcmp(cmd, "list") && strcmp(cmd, "add") && strcmp(cmd, "passwd")
        && strcmp(cmd, "del"))
        tu_usage();
    /* config warnings reach the admin as "ternuser: warning: ..." */
    log_init("tern", "ternuser");
    log_set_stderr(true);
    if (file == NULL) {
        if (config_load(config_directory_default(cdir), &cerr) < 0)
            cmd_fatal(TU_EXIT_ERROR, "%s", buf_str(&cerr));
        path = tu_table_path();
    } else {
        config_init_defaults();
        path = xstrdup(file);
    }
    buf_free(&cerr);
    umask(077);
    if (buf_printf(&lockpath, "%s.lock", path) < 0)
        cmd_fatal(TU_EXIT_ERROR, "path too long");
    lockfd = open(lockpath.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
        cmd_fatal(TU_EXIT_ERROR, "lock %s: %s", lockpath.data, strerror(errno));
    tu_load(path, &src, &mode);
    if (strcmp(cmd, "list") == 0) {
        tu_list(&src);
    } else if (strcmp(cmd, "del") == 0) {
        tu_edit(&src, user, NULL, &out, &found);
        if (!found) {
            fprintf(stderr, "ternuser: %s: no such user\n", user);
            rc = TU_EXIT_USER;
        } else {
            tu_save(path, &out, mode);
        }
    } else {
        tu_edit(&src, user, NULL, &out, &found);
        if (found != (strcmp(cmd, "passwd") == 0)) {
            fprintf(stderr, "ternuser: %s: %s\n", user,
                    found ? "user exists (use passwd)" : "no such user");
            rc = TU_EXIT_USER;
        } else {
            tu_read_password(pw, sizeof(pw));
            tu_entry(pw, hash, sizeof(hash));
            explicit_bzero(pw, sizeof(pw));
            buf_reset(&out);
            tu_edit(&src, user, hash, &out, &found);
            tu_save(path, &out, mode);
        }
    }
    (void)close(lockfd);
    buf_free(&src);
    buf_free(&out);
    buf_free(&lockpath);
    free(path);
    config_free();
    return rc;
}

/*
 * local_forward - reading .forward and :include: files, and forward_path
 * expansion (local.h).
 *
 * Security: these files live where users write (home directories, any
 * path an alias names). local_list_read() opens them only after
 * privs_become() to the account whose file it should be (the recipient
 * for a .forward; the alias' or outer list's rights for :include:), so
 * root never resolves a user-controlled path; O_NOFOLLOW refuses a
 * symlink as the last component, O_NONBLOCK keeps a FIFO from hanging
 * us, and fstat must show a regular file that others cannot write (for
 * a .forward, owned by the user or root; an include file, whose owner
 * lends its rights, with one link). What the file says is
 * parsed after the IDs are back, but it is only text: a command or file
 * in it runs with the rights the caller derives from the owner found
 * here, never with root's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/deliver.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define LIST_FILE_MAX (64 * 1024)

/* list_read_fd - the checks and the bounded read, with who's IDs */
static int list_read_fd(const char *path, bool want_owner, uid_t want_uid,
                        buf_t *text, uid_t *st_uid, gid_t *st_gid,
                        struct local_result *res)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        if (errno == ELOOP) {
            local_result_set(res, DELIVER_DEFER, "4.7.1",
                             "refusing to read %s: it is a symbolic link", path);
            return -1;
        }
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot open %s: %m", path);
        return -1;
    }
    int rc = -1;
    if (fstat(fd, &st) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "fstat %s: %m", path);
    } else if (!S_ISREG(st.st_mode)) {
        local_result_set(res, DELIVER_DEFER, "4.7.1",
                         "refusing to read %s: not a regular file", path);
    } else if (st.st_mode & S_IWOTH) {
        local_result_set(res, DELIVER_DEFER, "4.7.1",
                         "refusing to read %s: it is writable by others", path);
    } else if (want_owner && privs_running_as_root() && st.st_uid != want_uid
               && st.st_uid != 0) {
        local_result_set(res, DELIVER_DEFER, "4.7.1",
                         "refusing to read %s: owned by uid %ld, not by the "
                         "user or root", path, (long)st.st_uid);
    } else if (!want_owner && st.st_nlink != 1) {
        /* an include file lends its owner's rights: a second name, made
           by whoever can write the directory the alias names, must not
           borrow them */
        local_result_set(res, DELIVER_DEFER, "4.7.1",
                         "refusing to read %s: it has %lu links", path,
                         (unsigned long)st.st_nlink);
    } else if (st.st_size > LIST_FILE_MAX) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "%s is larger than %d bytes", path, LIST_FILE_MAX);
    } else {
        char chunk[4096];
        ssize_t n;
        buf_reset(text);
        while ((n = read(fd, chunk, sizeof(chunk))) > 0 && text->len < LIST_FILE_MAX)
            buf_append(text, chunk, (size_t)n);
        if (n < 0) {
            local_result_set(res, DELIVER_DEFER, "4.3.0", "read %s: %m", path);
        } else {
            *st_uid = st.st_uid;
            *st_gid = st.st_gid;
            rc = 1;
        }
    }
    close(fd);
    return rc;
}

int local_list_read(const char *path, const struct local_rights *who,
                    bool want_owner, uid_t want_uid, buf_t *text,
                    uid_t *st_uid, gid_t *st_gid, struct local_result *res)
{
    if (path[0] != '/') {
        local_result_set(res, DELIVER_BOUNCE, "5.3.5",
                         "list file name \"%.100s\" is not absolute", path);
        return -1;
    }
    if (privs_running_as_root() && who->uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to read %s as root", path);
        return -1;
    }
    if (privs_become(who->uid, who->gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)who->uid);
        return -1;
    }
    int rc = list_read_fd(path, want_owner, want_uid, text, st_uid, st_gid, res);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();   /* the ID switch cleared it */
    return rc;
}

/* fwd_attr - one attribute of forward_path; NULL for an unknown name */
static const char *fwd_attr(const char *name, size_t n, const struct local_rights *who,
                            const char *recipient, const char *extension,
                            const char *delimiter, buf_t *scratch)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
    if (IS("user"))
        return who->user;
    if (IS("home"))
        return who->home;
    if (IS("shell"))
        return who->shell;
    if (IS("recipient"))
        return recipient;
    if (IS("extension"))
        return extension;
    if (IS("recipient_delimiter"))
        return *extension ? delimiter : "";
    if (IS("local") || IS("domain")) {
        const char *at = strrchr(recipient, '@');
        buf_reset(scratch);
        if (IS("local"))
            buf_append(scratch, recipient, at ? (size_t)(at - recipient)
                                              : strlen(recipient));
        else
            buf_puts(scratch, at ? at + 1 : "");
        return buf_str(scratch);
    }
#undef IS
    return NULL;
}

/* fwd_expand - one element; false when it names an empty attribute
   outside a ${name?...} / ${name:...} */
static bool fwd_expand(const char *in, const struct local_rights *who,
                       const char *recipient, const char *extension,
                       const char *delimiter, buf_t *out)
{
    buf_t scratch;
    bool ok = true;

    buf_init(&scratch, 0);
    buf_reset(out);
    for (const char *p = in; *p && ok;) {
        if (*p != '$') {
            buf_putc(out, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            buf_putc(out, *p++);
            continue;
        }
        const char *name;
        size_t n;
        char op = 0;
        const char *alt = NULL;
        size_t altlen = 0;
        if (*p == '{') {
            name = ++p;
            n = strcspn(p, "}?:");
            p += n;
            if (*p == '?' || *p == ':') {
                op = *p++;
                alt = p;
                altlen = strcspn(p, "}");
                p += altlen;
            }
            if (*p != '}') {
                ok = false;
                break;
            }
            p++;
        } else {
            name = p;
            while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                   || (*p >= '0' && *p <= '9'))
                p++;
            n = (size_t)(p - name);
        }
        const char *v = fwd_attr(name, n, who, recipient, extension, delimiter,
                                 &scratch);
        bool have = v != NULL && *v != '\0';
        if (op == '?') {
            if (have)
                buf_append(out, alt, altlen);
        } else if (op == ':') {
            if (have)
                buf_puts(out, v);
            else
                buf_append(out, alt, altlen);
        } else if (have) {
            buf_puts(out, v);
        } else {
            ok = false;
        }
    }
    buf_free(&scratch);
    return ok;
}

size_t local_forward_paths(const char *forward_path, const struct local_rights *who,
                           const char *recipient, const char *extension,
                           const char *delimiter, char ***paths_r)
{
    char **elems, **v = NULL;
    size_t n = str_split_list(forward_path ? forward_path : "", &elems), count = 0;
    buf_t out;

    buf_init(&out, 0);
    for (size_t i = 0; i < n; i++) {
        if (!fwd_expand(elems[i], who, recipient, extension, delimiter, &out)
            || out.len == 0)
            continue;
        v = xrealloc(v, (count + 1) * sizeof(*v));
        v[count++] = buf_strdup(&out);
    }
    buf_free(&out);
    strv_free(elems, n);
    *paths_r = v;
    return count;
}

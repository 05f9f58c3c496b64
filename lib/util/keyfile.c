/*
 * keyfile - load or make a root-only shared key file (see keyfile.h).
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* keyfile_sound - is st a key file we may use: ours, no group/other
   bits, a regular file of exactly size bytes? */
static bool keyfile_sound(const struct stat *st, size_t size)
{
    return S_ISREG(st->st_mode) && st->st_uid == geteuid()
           && (st->st_mode & 077) == 0 && st->st_size == (off_t)size;
}

/* keyfile_fresh - not due for rotation */
static bool keyfile_fresh(const struct stat *st, long max_age)
{
    time_t now = time(NULL);

    if (max_age <= 0)
        return true;
    return st->st_mtime <= now + 60 && now - st->st_mtime < max_age;
}

/* keyfile_write - a new key into path, via tmp; 0 ok, -1 *why_r */
static int keyfile_write(const char *dir, const char *path, const char *tmp,
                         const unsigned char *key, size_t size,
                         const char **why_r)
{
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0) {
        *why_r = strerror(errno);
        return -1;
    }
    if (write_full(fd, key, size) < 0 || fsync(fd) < 0) {
        *why_r = strerror(errno);
        (void)close(fd);
        (void)unlink(tmp);
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        *why_r = strerror(errno);
        (void)unlink(tmp);
        return -1;
    }
    (void)fsync_dir(dir);
    return 0;
}

/* keyfile_load - see keyfile.h */
int keyfile_load(const char *dir, const char *name, const char *lockname,
                 const struct keyfile_spec *spec, unsigned char *out,
                 const char **why_r)
{
    char path[4096], tmp[4096], lock[4096];
    unsigned char *old = NULL;
    struct stat st;
    int ret = -1, lfd = -1, fd = -1;
    bool have_old = false;

    *why_r = "unknown error";
    if (spec->size == 0 || spec->keep > spec->size) {
        *why_r = "bad key size";
        return -1;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name)
            >= sizeof(path)
        || (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)
        || (size_t)snprintf(lock, sizeof(lock), "%s/%s", dir, lockname)
            >= sizeof(lock)) {
        *why_r = "directory name too long";
        return -1;
    }
    if (lstat(dir, &st) < 0 && errno == ENOENT
        && mkdir(dir, 0700) < 0 && errno != EEXIST) {
        *why_r = strerror(errno);
        return -1;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)
        || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        static char why_dir[160];
        (void)snprintf(why_dir, sizeof(why_dir), "%s must be a directory "
                       "of ours, not writable by group or others",
                       spec->dir_label != NULL ? spec->dir_label
                                               : "the directory");
        *why_r = why_dir;
        return -1;
    }
    lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
        *why_r = strerror(errno);
        goto out;
    }
    old = xmalloc(spec->size);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT && spec->strict) {
        *why_r = errno == ELOOP ? "the key file is a symbolic link"
                                : strerror(errno);
        goto out;
    }
    if (fd >= 0) {
        if (fstat(fd, &st) < 0) {
            *why_r = strerror(errno);
            goto out;
        }
        bool sound = keyfile_sound(&st, spec->size);
        if (!sound && spec->strict) {
            *why_r = "the key file must be a regular file of ours, mode "
                     "0600, of the key size";
            goto out;
        }
        if (sound && read_full(fd, old, spec->size) == (ssize_t)spec->size) {
            if (keyfile_fresh(&st, spec->max_age)) {
                memcpy(out, old, spec->size);
                ret = 1;
                goto out;
            }
            have_old = true;
        } else if (spec->strict) {
            *why_r = "cannot read the key file";
            goto out;
        }
        (void)close(fd);
        fd = -1;
    }
    if (getrandom(out, spec->size, 0) != (ssize_t)spec->size) {
        *why_r = "getrandom failed";
        goto out;
    }
    if (have_old && spec->keep > 0)
        memcpy(out + spec->size - spec->keep, old, spec->keep);
    if (keyfile_write(dir, path, tmp, out, spec->size, why_r) < 0)
        goto out;
    ret = 2;
out:
    if (old != NULL) {
        explicit_bzero(old, spec->size);
        free(old);
    }
    if (fd >= 0)
        (void)close(fd);
    if (lfd >= 0)
        (void)close(lfd);      /* releases the lock */
    if (ret < 0)
        explicit_bzero(out, spec->size);
    return ret;
}

/*
 * maildir_list - one listing of a Maildir with UIDs from the mailbox
 * index (see maildir_list.h and mailbox_index.h).
 *
 * Steps: scan new/ then cur/ (a file a client moves from new/ to cur/
 * meanwhile is seen at least once: in new/ before the move, or in cur/
 * after it; a key seen twice is kept once, the cur/ name winning); then
 * one index transaction looks up every key, gives the unknown ones the
 * next UIDs in delivery order, fills in missing CRLF sizes and removes
 * keys whose file is gone; last the listing is sorted by UID.
 * A scan error (other than a vanished file) fails the listing before
 * the index is touched, so a key is never dropped from the index because
 * a directory could not be read.
 *
 * Security: every lookup is relative to the caller's Maildir descriptor;
 * new/ and cur/ are opened O_NOFOLLOW|O_DIRECTORY, entries that are not
 * regular files (by d_type, else fstatat AT_SYMLINK_NOFOLLOW) are
 * skipped, messages are opened O_NOFOLLOW|O_NONBLOCK and checked to be
 * regular files, so neither a symlink nor a FIFO is ever read.
 */
#include "maildir_list.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox_index.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define MAILDIR_BASE_MAX 255

static const char *const sub_names[] = { "new", "cur" };

struct item {
    struct maildir_msg m;
    long long wsize;            /* W= of the name, -1 none */
    off_t counted;              /* vsize counted from the file, -1 not yet */
    bool gone;                  /* vanished while being counted */
};

struct list_ctx {
    int maildir_fd;
    struct item *items;         /* sorted by key */
    size_t count, cap;
    size_t *fresh;              /* indexes of items without a UID */
};

/* ---- names --------------------------------------------------------- */

/* name_field - value of ",X=digits" in base[0..len) (ending at ',' or
   the end of the base), -1 when absent or malformed; the first wins */
static long long name_field(const char *base, size_t len, char letter)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        if (base[i] != ',' || base[i + 1] != letter
            || base[i + 2] != '=')
            continue;
        long long v = 0;
        size_t j = i + 3, digits = 0;
        for (; j < len && base[j] >= '0' && base[j] <= '9'; j++) {
            if (++digits > 18)
                break;
            v = v * 10 + (base[j] - '0');
        }
        if (digits >= 1 && digits <= 18 && (j == len || base[j] == ','))
            return v;
    }
    return -1;
}

bool maildir_name_parse(const char *name, size_t *base_len, char flags[27],
                        long long *size, long long *vsize)
{
    bool seen[26] = { false };
    size_t n = 0, bl;

    *base_len = 0;
    flags[0] = '\0';
    *size = *vsize = -1;
    if (name[0] == '\0' || name[0] == '.')
        return false;
    for (bl = 0; name[bl] != '\0' && name[bl] != ':'; bl++) {
        if (name[bl] == '/' || bl >= MAILDIR_BASE_MAX)
            return false;
    }
    if (bl == 0)
        return false;
    *base_len = bl;
    if (name[bl] == ':' && name[bl + 1] == '2' && name[bl + 2] == ',') {
        for (const char *p = name + bl + 3; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z')
                seen[*p - 'A'] = true;
        }
        for (int i = 0; i < 26; i++) {
            if (seen[i])
                flags[n++] = (char)('A' + i);
        }
        flags[n] = '\0';
    }
    *size = name_field(name, bl, 'S');
    *vsize = name_field(name, bl, 'W');
    return true;
}

void maildir_uidl(const char *base, size_t base_len,
                  char out[MAILDIR_UIDL_MAX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    bool plain = base_len >= 1 && base_len <= MAILDIR_UIDL_MAX;

    for (size_t i = 0; plain && i < base_len; i++) {
        unsigned char c = (unsigned char)base[i];
        plain = c >= 0x21 && c <= 0x7e;
    }
    if (plain) {
        memcpy(out, base, base_len);
        out[base_len] = '\0';
        return;
    }
    SHA256((const unsigned char *)base, base_len, md);
    out[0] = 'X';
    for (size_t i = 0; i < 16; i++) {
        out[1 + 2 * i] = hex[md[i] >> 4];
        out[2 + 2 * i] = hex[md[i] & 15];
    }
    out[33] = '\0';
}

/* ---- message files ----------------------------------------------------- */

/* msg_path - "new/NAME" or "cur/NAME" into buf; -1 ENAMETOOLONG */
static int msg_path(char *buf, size_t size, enum maildir_sub sub,
                    const char *name)
{
    int n = snprintf(buf, size, "%s/%s", sub_names[sub], name);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* msg_find - the current name of the key of m after another client
   moved or renamed it (cur/ first): 0 with *sub_r and name (malloc'd),
   -1 ENOENT or the scan's errno */
static int msg_find(int maildir_fd, const struct maildir_msg *m,
                    enum maildir_sub *sub_r, char **name_r)
{
    for (int s = MAILDIR_CUR; s >= MAILDIR_NEW; s--) {
        int fd = openat(maildir_fd, sub_names[s],
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        DIR *d = fdopendir(fd);
        if (d == NULL) {
            close(fd);
            return -1;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, m->name, m->base_len) == 0
                && (de->d_name[m->base_len] == '\0'
                    || de->d_name[m->base_len] == ':')
                && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)) {
                *sub_r = (enum maildir_sub)s;
                *name_r = xstrdup(de->d_name);
                closedir(d);
                return 0;
            }
        }
        closedir(d);
    }
    errno = ENOENT;
    return -1;
}

/* msg_open_at - open sub/name, a regular file only */
static int msg_open_at(int maildir_fd, enum maildir_sub sub, const char *name)
{
    char path[8 + NAME_MAX + 1];

    if (msg_path(path, sizeof(path), sub, name) < 0)
        return -1;
    int fd = openat(maildir_fd, path,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            errno = ENOENT;     /* a symlink is no message of ours */
        return -1;
    }
    if (fd_regular_or_close(fd, NULL) < 0) {
        errno = ENOENT;
        return -1;
    }
    if (fd_set_nonblock(fd, false) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int maildir_msg_open(int maildir_fd, const struct maildir_msg *m)
{
    enum maildir_sub sub;
    char *name;

    int fd = msg_open_at(maildir_fd, m->sub, m->name);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    if (msg_find(maildir_fd, m, &sub, &name) < 0)
        return -1;
    fd = msg_open_at(maildir_fd, sub, name);
    int e = errno;
    free(name);
    errno = e;
    return fd;
}

int maildir_msg_unlink(int maildir_fd, const struct maildir_msg *m)
{
    char path[8 + NAME_MAX + 1];
    enum maildir_sub sub;
    char *name;

    if (msg_path(path, sizeof(path), m->sub, m->name) < 0)
        return -1;
    if (unlinkat(maildir_fd, path, 0) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* moved by another client: delete it under its new name */
    if (msg_find(maildir_fd, m, &sub, &name) < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = msg_path(path, sizeof(path), sub, name);
    free(name);
    if (rc == 0 && unlinkat(maildir_fd, path, 0) < 0 && errno != ENOENT)
        return -1;
    return rc;
}

/* flag_name - cur/ name of m with flag added to what its ":2," part had
   (lowercase keyword letters kept); -1 ENAMETOOLONG */
static int flag_name(const struct maildir_msg *m, char flag, char *out,
                     size_t size)
{
    bool seen[128] = { false };
    const char *info = m->name + m->base_len;
    size_t n = m->base_len;

    if (info[0] == ':' && info[1] == '2' && info[2] == ',') {
        for (const char *p = info + 3; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c > 0x20 && c < 0x7f)
                seen[c] = true;
        }
    }
    seen[(unsigned char)flag] = true;
    if (n + 3 >= size)
        goto too_long;
    memcpy(out, m->name, n);
    memcpy(out + n, ":2,", 3);
    n += 3;
    for (int c = 0x21; c < 0x7f; c++) {
        if (!seen[c])
            continue;
        if (n + 1 >= size)
            goto too_long;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
too_long:
    errno = ENAMETOOLONG;
    return -1;
}

int maildir_msg_add_flag(int maildir_fd, struct maildir_msg *m, char flag)
{
    char from[8 + NAME_MAX + 1], to[8 + NAME_MAX + 1], name[NAME_MAX + 1];

    if (flag < 'A' || flag > 'Z') {
        errno = EINVAL;
        return -1;
    }
    for (int tries = 0; tries < 2; tries++) {
        struct stat st;
        if (flag_name(m, flag, name, sizeof(name)) < 0
            || msg_path(from, sizeof(from), m->sub, m->name) < 0
            || msg_path(to, sizeof(to), MAILDIR_CUR, name) < 0)
            return -1;
        if (m->sub == MAILDIR_CUR && strchr(m->flags, flag) != NULL) {
            /* nothing to rename, if it is still there */
            if (fstatat(maildir_fd, from, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        } else if (renameat(maildir_fd, from, maildir_fd, to) == 0) {
            size_t bl;
            long long s, w;
            free(m->name);
            m->name = xstrdup(name);
            m->sub = MAILDIR_CUR;
            (void)maildir_name_parse(m->name, &bl, m->flags, &s, &w);
            return 0;
        }
        if (errno != ENOENT || tries > 0)
            return -1;
        enum maildir_sub sub;
        char *found;
        if (msg_find(maildir_fd, m, &sub, &found) < 0)
            return -1;
        size_t bl;
        long long s, w;
        free(m->name);
        m->name = found;
        m->sub = sub;
        (void)maildir_name_parse(m->name, &bl, m->flags, &s, &w);
    }
    return -1;
}

/* ---- scan ---------------------------------------------------------------- */

static int list_error(struct maildir_listing *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int list_error(struct maildir_listing *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->error, sizeof(out->error), fmt, ap);
    va_end(ap);
    return -1;
}

static struct item *list_push(struct list_ctx *c)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof(*c->items))
            log_fatal("maildir_list: too many files");
        c->items = xrealloc(c->items, cap * sizeof(*c->items));
        c->cap = cap;
    }
    struct item *it = &c->items[c->count++];
    memset(it, 0, sizeof(*it));
    return it;
}

/* scan_sub - every message file of new/ or cur/ */
static int scan_sub(struct list_ctx *c, enum maildir_sub sub,
                    struct maildir_listing *out)
{
    int fd = openat(c->maildir_fd, sub_names[sub],
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return list_error(out, "open %s/: %m", sub_names[sub]);
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return list_error(out, "open %s/: %m", sub_names[sub]);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st = { 0 };
        bool have_st = false;
        size_t bl;
        char flags[27];
        long long size, vsize;

        if (!maildir_name_parse(de->d_name, &bl, flags, &size, &vsize))
            goto next;
        if (de->d_type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                goto stat_failed;
            have_st = true;
            if (!S_ISREG(st.st_mode))
                goto next;
        } else if (de->d_type != DT_REG) {
            goto next;
        }
        if (size < 0 && !have_st) {
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                goto stat_failed;
            if (!S_ISREG(st.st_mode))
                goto next;
            have_st = true;
        }
        struct item *it = list_push(c);
        it->m.sub = sub;
        it->m.name = xstrdup(de->d_name);
        it->m.base_len = bl;
        memcpy(it->m.flags, flags, sizeof(flags));
        it->m.size = size >= 0 ? (off_t)size : st.st_size;
        it->m.vsize = -1;
        it->wsize = vsize;
        it->counted = -1;
        maildir_uidl(it->m.name, bl, it->m.uidl);
        goto next;
stat_failed:
        if (errno != ENOENT) {
            list_error(out, "stat %s/%s: %m", sub_names[sub], de->d_name);
            closedir(d);
            return -1;
        }
next:
        errno = 0;
    }
    if (errno != 0) {
        list_error(out, "read %s/: %m", sub_names[sub]);
        closedir(d);
        return -1;
    }
    closedir(d);
    return 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static int item_key_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    int r = key_cmp(a->m.name, a->m.base_len, b->m.name, b->m.base_len);
    if (r != 0)
        return r;
    /* the cur/ copy first: it is the one kept */
    return (int)b->m.sub - (int)a->m.sub;
}

/* list_dedupe - one item per key (items sorted by key, cur/ first) */
static void list_dedupe(struct list_ctx *c)
{
    size_t w = 0;

    for (size_t r = 0; r < c->count; r++) {
        struct item *it = &c->items[r];
        if (w > 0 && key_cmp(c->items[w - 1].m.name, c->items[w - 1].m.base_len,
                             it->m.name, it->m.base_len) == 0) {
            free(it->m.name);
            continue;
        }
        c->items[w++] = *it;
    }
    c->count = w;
}

/* ---- sizes ---------------------------------------------------------------- */

/* count_vsize - bytes plus one per LF not preceded by CR, plus the line
   end POP3 adds to a last line without one (CR LF, or LF after a CR):
   what pop3d sends for RETR before the "."; -1 errno */
static off_t count_vsize(int fd)
{
    char buf[65536];
    off_t total = 0;
    char prev = '\0';
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        total += n;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && prev != '\r')
                total++;
            prev = buf[i];
        }
    }
    if (total > 0 && prev != '\n')
        total += prev == '\r' ? 1 : 2;
    return total;
}

/* item_count - the vsize from the file itself, once per listing */
static void item_count(struct list_ctx *c, struct item *it)
{
    if (it->counted >= 0 || it->gone)
        return;
    int fd = maildir_msg_open(c->maildir_fd, &it->m);
    if (fd < 0) {
        if (errno == ENOENT) {
            it->gone = true;
            return;
        }
        log_warning("maildir_list: open %s/%s: %m", sub_names[it->m.sub],
                    it->m.name);
        it->counted = it->m.size;       /* a guess; its RETR will fail */
        return;
    }
    off_t v = count_vsize(fd);
    if (v < 0) {
        log_warning("maildir_list: read %s/%s: %m", sub_names[it->m.sub],
                    it->m.name);
        v = it->m.size;
    }
    close(fd);
    it->counted = v;
}

/* ---- the index transaction ---------------------------------------------- */

static int delivery_cmp(const char *a, const char *b)
{
    size_t ad = 0, bd = 0;

    while (*a == '0' && a[1] >= '0' && a[1] <= '9')
        a++;
    while (*b == '0' && b[1] >= '0' && b[1] <= '9')
        b++;
    while (a[ad] >= '0' && a[ad] <= '9')
        ad++;
    while (b[bd] >= '0' && b[bd] <= '9')
        bd++;
    if (ad != bd)
        return ad < bd ? -1 : 1;
    int r = memcmp(a, b, ad);
    return r != 0 ? r : strcmp(a + ad, b + bd);
}

static int fresh_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct list_ctx *c = ctx;
    const struct item *a = &c->items[*(const size_t *)pa];
    const struct item *b = &c->items[*(const size_t *)pb];
    int r = delivery_cmp(a->m.name, b->m.name);
    return r != 0 ? r : item_key_cmp(a, b);
}

/* list_keep - the expunge callback: is the key in this listing? */
static bool list_keep(const char *key, size_t key_len, void *ctx)
{
    struct list_ctx *c = ctx;
    size_t lo = 0, hi = c->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct item *it = &c->items[mid];
        int r = key_cmp(key, key_len, it->m.name, it->m.base_len);
        if (r == 0)
            return !it->gone;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* list_index_fn - the one write transaction of a listing */
static int list_index_fn(struct mailbox_index *idx, void *ctx)
{
    struct list_ctx *c = ctx;
    size_t nfresh = 0, removed;
    int rc;

    for (size_t i = 0; i < c->count; i++) {
        struct item *it = &c->items[i];
        struct mailbox_index_rec rec;

        it->m.uid = 0;
        if (it->gone)
            continue;
        rc = mailbox_index_get(idx, it->m.name, it->m.base_len, &rec);
        if (rc < 0)
            return rc;
        if (rc == MAILBOX_INDEX_OK) {
            c->fresh[nfresh++] = i;
            continue;
        }
        if (it->wsize >= 0) {
            it->m.vsize = (off_t)it->wsize;
        } else if (rec.vsize >= 0) {
            it->m.vsize = (off_t)rec.vsize;
        } else {
            item_count(c, it);
            if (it->gone)
                continue;
            it->m.vsize = it->counted;
            rc = mailbox_index_set_vsize(idx, it->m.name, it->m.base_len,
                                         it->counted);
            if (rc < 0)
                return rc;
        }
        it->m.uid = rec.uid;
    }
    qsort_r(c->fresh, nfresh, sizeof(*c->fresh), fresh_cmp, c);
    for (size_t f = 0; f < nfresh; f++) {
        struct item *it = &c->items[c->fresh[f]];
        if (it->wsize >= 0) {
            it->m.vsize = (off_t)it->wsize;
        } else {
            item_count(c, it);
            if (it->gone)
                continue;
            it->m.vsize = it->counted;
        }
        /* a vsize from W= is not stored: the name keeps it */
        rc = mailbox_index_add(idx, it->m.name, it->m.base_len,
                               it->wsize >= 0 ? -1 : (int64_t)it->m.vsize,
                               &it->m.uid);
        if (rc < 0)
            return rc;
    }
    return mailbox_index_expunge(idx, list_keep, c, &removed);
}

static int item_uid_cmp(const void *pa, const void *pb)
{
    const struct item *a = pa, *b = pb;
    return a->m.uid < b->m.uid ? -1 : a->m.uid > b->m.uid;
}

static void list_ctx_free(struct list_ctx *c, size_t from)
{
    for (size_t i = from; i < c->count; i++)
        free(c->items[i].m.name);
    free(c->items);
    free(c->fresh);
}

int maildir_list(int maildir_fd, struct maildir_listing *out,
                 const char **error_r)
{
    struct list_ctx c = { .maildir_fd = maildir_fd };
    struct mailbox_index *idx = NULL;
    const char *err;

    out->msgs = NULL;
    out->count = 0;
    out->uidvalidity = out->uidnext = 0;
    out->error[0] = '\0';
    *error_r = out->error;
    if (scan_sub(&c, MAILDIR_NEW, out) < 0 || scan_sub(&c, MAILDIR_CUR, out) < 0) {
        list_ctx_free(&c, 0);
        return -1;
    }
    if (c.count > 0)        /* qsort(NULL, 0, ...) is undefined */
        qsort(c.items, c.count, sizeof(*c.items), item_key_cmp);
    list_dedupe(&c);
    c.fresh = xcalloc(c.count ? c.count : 1, sizeof(*c.fresh));
    if (mailbox_index_open(maildir_fd, &idx, &err) < 0
        || mailbox_index_update(idx, list_index_fn, &c, &err) < 0) {
        list_error(out, "%s", err);
        mailbox_index_close(idx);
        list_ctx_free(&c, 0);
        return -1;
    }
    out->uidvalidity = mailbox_index_uidvalidity(idx);
    out->uidnext = mailbox_index_uidnext(idx);
    if (mailbox_index_is_new(idx) && c.count > 0)
        log_info("maildir_list: new index, uidvalidity=%u, %zu messages",
                 out->uidvalidity, c.count);
    mailbox_index_close(idx);

    /* the vanished ones out, then UID order */
    size_t w = 0;
    for (size_t r = 0; r < c.count; r++) {
        if (c.items[r].gone || c.items[r].m.uid == 0)
            free(c.items[r].m.name);
        else
            c.items[w++] = c.items[r];
    }
    c.count = w;
    if (c.count > 0)
        qsort(c.items, c.count, sizeof(*c.items), item_uid_cmp);
    if (c.count > MAILDIR_LIST_MAX) {
        log_warning("maildir_list: %zu messages, listing the oldest %d",
                    c.count, MAILDIR_LIST_MAX);
        for (size_t i = MAILDIR_LIST_MAX; i < c.count; i++)
            free(c.items[i].m.name);
        c.count = MAILDIR_LIST_MAX;
    }
    out->msgs = xcalloc(c.count ? c.count : 1, sizeof(*out->msgs));
    for (size_t i = 0; i < c.count; i++)
        out->msgs[i] = c.items[i].m;
    out->count = c.count;
    c.count = 0;
    list_ctx_free(&c, 0);
    return 0;
}

void maildir_listing_free(struct maildir_listing *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->msgs[i].name);
    free(l->msgs);
    l->msgs = NULL;
    l->count = 0;
}

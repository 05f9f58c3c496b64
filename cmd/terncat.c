/*
 * terncat - print a queue file (Postfix's postcat): its envelope
 * records, the message headers and the body.
 *   terncat [-c DIR] [-e] [-h] [-b] FILE...
 *   terncat [-c DIR] [-e] [-h] [-b] -q QUEUEID...
 * -e, -h, -b select the envelope, the header and the body sections
 * (any combination; none given: all three). -q looks the ID up in
 * incoming/, active/, deferred/, hold/ and corrupt/ of the configured
 * queue directory.
 *
 * The records are walked one by one (format in mail/queue.h), so a
 * damaged file (what corrupt/ holds) is shown up to the damage and the
 * damage is named. Envelope text is untrusted: control characters are
 * shown as '?'. Message content is printed as it is stored (LF line
 * ends), as postcat does: pipe it through a pager that escapes control
 * characters when it may be hostile. Files are opened without
 * following symlinks and must be regular files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/queue.h"
#include "mail/queue_record.h"
#include "util/buf.h"
#include "util/cmd_msg.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define PROG "terncat"
#define SHOW_ENV  1
#define SHOW_HDR  2
#define SHOW_BODY 4

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " [-c config_dir] [-e] [-h] [-b] "
            "file... | -q queue_id...\n");
    exit(2);
}

static const char *rec_name(char t)
{
    switch (t) {
    case QREC_VERSION: return "version";
    case QREC_TIME: return "message_arrival_time";
    case QREC_SENDER: return "sender";
    case QREC_ATTR: return "named_attribute";
    case QREC_ORCPT: return "original_recipient";
    case QREC_NOTIFY: return "dsn_notify";
    case QREC_DSN_ORCPT: return "dsn_orig_rcpt";
    case QREC_RCPT: return "recipient";
    case QREC_DONE: return "done_recipient";
    case QREC_BOUNCED: return "bounced_recipient";
    case QREC_CONTENT: return "message_size";
    case QREC_END: return "message_end";
    default: return NULL;
    }
}

static void put_scrubbed(FILE *out, const char *p, size_t n)
{
    char *t = xstrndup(p, n);

    log_scrub(t);
    fputs(t, out);
    free(t);
}

/* read_all - the whole file (regular, not a symlink) into b */
static int read_all(const char *path, buf_t *b)
{
    struct stat st;
    char chunk[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 || fd_regular_or_close(fd, &st) < 0)
        return -1;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_append(b, chunk, (size_t)n) < 0) {
            int saved = n < 0 ? errno : EFBIG;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* show_content - headers (up to the first empty line) and/or body */
static void show_content(const char *label, const char *p, size_t n, int show)
{
    size_t hdr_end = n;
    const char *blank;

    if (n >= 1 && p[0] == '\n')
        hdr_end = 0;
    else if ((blank = memmem(p, n, "\n\n", 2)) != NULL)
        hdr_end = (size_t)(blank - p) + 1;
    if (show & SHOW_HDR) {
        printf("*** HEADER RECORDS %s ***\n", label);
        fwrite(p, 1, hdr_end, stdout);
    }
    if (show & SHOW_BODY) {
        size_t start = hdr_end < n ? hdr_end + 1 : n;   /* past the blank */
        printf("*** MESSAGE CONTENTS %s ***\n", label);
        fwrite(p + start, 1, n - start, stdout);
        if (n > start && p[n - 1] != '\n')
            putchar('\n');
    }
}

/* cat_file - walk the records of the file at path; 0 ok, 1 damaged */
static int cat_file(const char *path, int show)
{
    buf_t b = BUF_INIT;
    size_t off = 0;
    char prev = 0;
    int rc = 1;
    const char *why = NULL;

    if (read_all(path, &b) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        buf_free(&b);
        return 1;
    }
    if (show & SHOW_ENV)
        printf("*** ENVELOPE RECORDS %s ***\n", path);
    while (why == NULL) {
        const unsigned char *p = (const unsigned char *)b.data + off;
        uint32_t len;
        char t;

        if (off == b.len) {
            why = "no end record (message_end)";
            break;
        }
        if (b.len - off < QUEUE_REC_HDR_LEN) {
            why = "truncated record header";
            break;
        }
        t = (char)p[0];
        len = queue_rec_get_len(p + 1);
        if (!queue_rec_known(t)) {
            why = "unknown record type";
            break;
        }
        if (!queue_rec_follows(prev, t)) {
            why = "record out of order";
            break;
        }
        if (len > QREC_MAX_LEN || len > b.len - off - QUEUE_REC_HDR_LEN) {
            why = "record length beyond the file or the limit";
            break;
        }
        const char *data = (const char *)p + QUEUE_REC_HDR_LEN;
        off += QUEUE_REC_HDR_LEN + len;
        prev = t;
        if (t == QREC_CONTENT) {
            char digits[QUEUE_CONTENT_DIGITS + 1];
            long clen;

            if (len != QUEUE_CONTENT_DIGITS) {
                why = "bad content length record";
                break;
            }
            memcpy(digits, data, len);
            digits[len] = '\0';
            if (parse_long(digits, 0, (long)(b.len - off), &clen) < 0) {
                why = "content length beyond the file";
                break;
            }
            if (show & SHOW_ENV)
                printf("%s: %ld\n", rec_name(t), clen);
            show_content(path, b.data + off, (size_t)clen, show);
            if (show & SHOW_ENV)
                printf("*** ENVELOPE RECORDS %s ***\n", path);
            off += (size_t)clen;
            continue;
        }
        if (t == QREC_END) {
            if (show & SHOW_ENV)
                printf("%s\n", rec_name(t));
            rc = off == b.len ? 0 : 1;
            if (rc != 0)
                why = "data after the end record";
            break;
        }
        if (!(show & SHOW_ENV))
            continue;
        if (t == QREC_TIME) {
            char digits[32], when[64] = "?";
            const char *dot;
            long sec;
            time_t tt;
            struct tm tm;

            str_copy(digits, "", sizeof(digits));
            if (len < sizeof(digits)) {
                memcpy(digits, data, len);
                digits[len] = '\0';
            }
            if ((dot = strchr(digits, '.')) != NULL)
                digits[dot - digits] = '\0';
            if (parse_long(digits, 0, 1L << 40, &sec) == 0) {
                tt = (time_t)sec;
                if (localtime_r(&tt, &tm) != NULL)
                    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
            }
            printf("%s: %s\n", rec_name(t), when);
            continue;
        }
        printf("%s: ", rec_name(t));
        put_scrubbed(stdout, data, len);
        putchar('\n');
    }
    if (why != NULL) {
        printf("*** CORRUPT %s at offset %zu: %s ***\n", path, off, why);
        rc = 1;
    } else if (show & SHOW_ENV) {
        printf("*** MESSAGE FILE END %s ***\n", path);
    }
    buf_free(&b);
    return rc;
}

/* find_qid - the path of qid in a queue it may be in, or NULL */
static char *find_qid(const char *qid)
{
    static const char *const queues[] = { QUEUE_INCOMING, QUEUE_ACTIVE,
        QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT, NULL };
    buf_t path = BUF_INIT;
    struct stat st;

    for (size_t i = 0; queues[i] != NULL; i++) {
        queue_path(queues[i], qid, &path);
        if (lstat(buf_str(&path), &st) == 0) {
            char *found = buf_strdup(&path);
            buf_free(&path);
            return found;
        }
    }
    buf_free(&path);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *cdir = NULL;
    bool by_qid = false;
    int ch, show = 0, rc = 0;

    cmd_msg_init(PROG, config_free);
    while ((ch = getopt(argc, argv, "c:ehbqv")) != -1) {
        switch (ch) {
        case 'c': cdir = optarg; break;
        case 'e': show |= SHOW_ENV; break;
        case 'h': show |= SHOW_HDR; break;
        case 'b': show |= SHOW_BODY; break;
        case 'q': by_qid = true; break;
        case 'v': break;
        default: usage();
        }
    }
    if (optind == argc)
        usage();
    if (show == 0)
        show = SHOW_ENV | SHOW_HDR | SHOW_BODY;
    log_init("tern", PROG);
    log_set_stderr(true);
    if (by_qid) {
        buf_t err = BUF_INIT;
        if (config_load(config_directory_default(cdir), &err) < 0)
            cmd_fatal_buf(1, &err);
        buf_free(&err);
        if (chdir(var_queue_directory) < 0) {
            fprintf(stderr, PROG ": fatal: chdir %s: %s\n",
                    var_queue_directory, strerror(errno));
            return 1;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (by_qid) {
            char *path = queue_id_valid(argv[i]) ? find_qid(argv[i]) : NULL;
            if (path == NULL) {
                fprintf(stderr, PROG ": %s: no such message in the queue\n",
                        argv[i]);
                rc = 1;
                continue;
            }
            rc |= cat_file(path, show);
            free(path);
        } else {
            rc |= cat_file(argv[i], show);
        }
    }
    if (by_qid)
        config_free();
    return rc;
}

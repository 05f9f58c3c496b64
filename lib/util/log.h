/*
 * log - Postfix-style logging. Every line is "<ident>[pid]: text" where
 * ident is "$syslog_name/<program>" (e.g. "tern/smtpd"); mail-flow lines
 * start with the queue ID ("4Zx2KbQ1vNz: from=<a@b>, size=1, nrcpt=1").
 *
 * Destination: syslog (LOG_MAIL by default), or a file opened with
 * O_APPEND (maillog_file; one write() per line so concurrent processes do
 * not interleave), optionally also a copy on stderr for a human, as
 * "program: text" ("ternconf: fatal: ..."). The file is opened before
 * chroot/privilege drop and survives it.
 *
 * Without a syslog socket (no /dev/log, or nobody listening) lines for
 * syslog would vanish: log_syslog_probe() finds out once per process.
 * A process started by systemd (JOURNAL_STREAM names its stderr, or
 * INVOCATION_ID is set) then writes them to stderr as
 * "<PRIORITY>ident[pid]: text", which journald stores with that
 * priority; master's children inherit the same stderr. Otherwise they
 * are lost, and master says so at start.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* program: "smtpd"; syslog_name: "tern" (ident becomes "tern/smtpd") */
void log_init(const char *syslog_name, const char *program);
/* maillog_file: path, "/dev/stdout", "/dev/stderr", or "" for syslog.
   Returns 0, or -1 (and keeps the previous destination) on open failure. */
int log_set_file(const char *path);
/* open the syslog connection now (before chroot); no-op with a file */
void log_connect_now(void);
/* what happens to lines for syslog (probed once per process, first
   use): LOG_SYSLOG_UNUSED (a file is the destination), _OK (the socket
   answers), _JOURNAL (no socket, systemd: stderr), _LOST (no socket) */
enum { LOG_SYSLOG_UNUSED, LOG_SYSLOG_OK, LOG_SYSLOG_JOURNAL, LOG_SYSLOG_LOST };
int log_syslog_probe(void);
/* the syslog socket's path ("/dev/log"), for messages */
const char *log_syslog_path(void);
/* also copy every line to stderr (foreground master, commands) */
void log_set_stderr(bool on);
/* syslog facility name ("mail", "local0", ...); 0 ok, -1 unknown */
int log_set_facility(const char *name);
void log_set_verbose(int level);
int log_verbose_level(void);
/* current program ident, e.g. "tern/smtpd" */
const char *log_ident(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log "fatal: ..." and exit(1) */
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* log "panic: ..." and abort() (programming errors only) */
void log_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/*
 * Make text from the network safe to show, in place: ASCII controls
 * (including CR, LF, DEL), C1 controls (U+0080..U+009F), the line and
 * paragraph separators U+2028/U+2029, the bidirectional overrides and
 * isolates (U+202A..U+202E, U+2066..U+2069), and every byte that is
 * not part of well-formed UTF-8 (so raw 0x80..0x9F never reach a
 * terminal) each become one '?'. Other UTF-8 passes unchanged. Every
 * log line goes through it; smtpd also uses it for the HELO name it
 * writes into the Received: header. Returns the new length (never
 * longer than before).
 */
size_t log_scrub(char *text);
void log_vmsg(int priority, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif

/*
 * config - the main.conf parameter table, its parser and $name expansion.
 *
 * One load builds a fresh struct cfg (file values, overrides, expansion
 * cache) and only replaces the current one and the var_* variables when
 * every value converted cleanly, so a bad reload keeps the old settings.
 * Expansion is memoised per load and bounded in depth and size, so a
 * hostile file can neither loop nor blow up exponentially.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/logline.h"
#include "util/sys.h"
#include "util/util.h"

#define CFG_MAX_FILE      (4L * 1024 * 1024)  /* main.conf size cap */
#define CFG_MAX_DEPTH     100                 /* $a -> $b -> ... nesting */
#define CFG_MAX_VALUE     (1L * 1024 * 1024)  /* one expanded value */
#define CFG_MAX_EXPANDED  (32L * 1024 * 1024) /* all expansion in one load */
#define CFG_BUCKETS       512

/* --- the variables ------------------------------------------------------- */
char *var_config_directory;
char *var_queue_directory;
char *var_daemon_directory;
char *var_command_directory;
char *var_data_directory;
char *var_mail_owner;
char *var_setgid_group;
/* queue tools (issue 9) */
char *var_authorized_mailq_users;
char *var_authorized_flush_users;
char *var_alternate_config_directories;
char *var_local_login_sender_maps;
char *var_empty_address_local_login_sender_maps_lookup_key;
char *var_syslog_name;
char *var_syslog_facility;
char *var_maillog_file;
char *var_mail_name;
char *var_myhostname;
char *var_mydomain;
char *var_myorigin;
bool var_append_at_myorigin;
char *var_2bounce_notice_recipient;
char *var_mydestination;
char *var_mynetworks;
char *var_inet_interfaces;
char *var_relay_domains;
char *var_relayhost;
char *var_smtpd_banner;
char *var_smtpd_overload_reply;
char *var_smtpd_forbid_bare_newline;
char *var_alias_maps;
char *var_alias_database;
char *var_virtual_user_maps;
char *var_virtual_password_maps;
bool var_auth_system_users;
char *var_home_mailbox;
char *var_recipient_delimiter;
/* local: aliases, commands, forward (issue 7) */
char *var_allow_mail_to_commands;
char *var_allow_mail_to_files;
char *var_default_privs;
char *var_forward_path;
long var_command_time_limit;
char *var_local_command_shell;
char *var_mailbox_command;
char *var_prepend_delivered_header;
bool var_owner_request_special;
long var_message_size_limit;
long var_mailbox_size_limit;
/* local: mailboxes (issue 7) */
char *var_mail_spool_directory;
char *var_mailbox_delivery_lock;
long var_stale_lock_time;
long var_deliver_lock_attempts;
long var_deliver_lock_delay;
long var_line_length_limit;
long var_smtpd_recipient_limit;
long var_smtpd_timeout;
long var_smtpd_client_limit;
long var_smtpd_hard_error_limit;
long var_smtpd_junk_command_limit;
long var_smtpd_command_limit;
long var_smtpd_soft_error_limit;
long var_smtpd_error_sleep_time;
bool var_smtpd_helo_required;
bool var_smtpd_forbid_unauth_pipelining;
bool var_smtpd_per_request_deadline;
long var_smtpd_min_data_rate;
long var_smtpd_client_connection_count_limit;
long var_smtpd_client_connection_rate_limit;
char *var_smtpd_client_event_limit_exceptions;
char *var_smtpd_tls_cert_file;
char *var_smtpd_tls_key_file;
char *var_smtpd_tls_security_level;
bool var_smtpd_tls_wrappermode;
bool var_smtpd_sasl_auth_enable;
bool var_smtpd_tls_auth_only;
bool var_smtpd_sasl_auth_required;
long var_smtpd_sasl_failure_limit;
bool var_smtpd_sasl_authenticated_header;
long var_smtpd_client_auth_rate_limit;
char *var_smtpd_client_restrictions;
char *var_smtpd_helo_restrictions;
char *var_smtpd_sender_restrictions;
char *var_smtpd_relay_restrictions;
char *var_smtpd_recipient_restrictions;
char *var_smtpd_data_restrictions;
char *var_smtpd_end_of_data_restrictions;
char *var_smtpd_sender_login_maps;
bool var_smtpd_reject_unlisted_recipient;
char *var_smtpd_tls_protocols;
char *var_smtpd_tls_mandatory_protocols;
char *var_smtpd_tls_ciphers;
char *var_smtpd_tls_mandatory_ciphers;
char *var_tls_high_cipherlist;
char *var_tls_medium_cipherlist;
char *var_smtpd_tls_chain_files;
char *var_tls_server_sni_maps;
long var_smtpd_tls_session_cache_timeout;
bool var_smtpd_tls_ask_ccert;
bool var_smtpd_tls_req_ccert;
char *var_smtpd_tls_CAfile;
/* POP3 (pop3-login, pop3d) */
char *var_login_user;
char *var_pop3d_banner;
long var_pop3d_timeout;
long var_pop3d_client_limit;
long var_pop3d_hard_error_limit;
long var_pop3d_auth_failure_delay;
long var_pop3d_sasl_failure_limit;
bool var_pop3d_tls_auth_only;
char *var_pop3d_tls_security_level;
bool var_pop3d_tls_wrappermode;
char *var_pop3d_tls_cert_file;
char *var_pop3d_tls_key_file;
char *var_pop3d_tls_chain_files;
char *var_pop3d_tls_protocols;
char *var_pop3d_tls_ciphers;
bool var_pop3d_mark_retrieved_seen;
bool var_smtpd_peername_lookup;
long var_smtpd_peername_lookup_timeout;
char *var_dns_forwarders;
char *var_dns_hosts_file;
long var_anvil_rate_time_unit;
long var_queue_run_delay;
long var_minimal_backoff_time;
long var_maximal_backoff_time;
long var_maximal_queue_lifetime;
long var_delay_logging_resolution_limit;
long var_bounce_queue_lifetime;
/* notifications (issue 7) */
long var_delay_warning_time;
long var_bounce_size_limit;
long var_default_destination_concurrency_limit;
long var_local_destination_concurrency_limit;
long var_local_time_limit;
long var_duplicate_filter_limit;
/* virtual aliases, queue_minfree (issue 7) */
char *var_virtual_alias_maps;
char *var_virtual_alias_domains;
long var_virtual_alias_recursion_limit;
long var_virtual_alias_expansion_limit;
char *var_propagate_unmatched_extensions;
long var_queue_minfree;
long var_qmgr_message_active_limit;
/* routing and scheduling (issue 7) */
char *var_transport_maps;
char *var_sender_dependent_relayhost_maps;
char *var_empty_address_relayhost_maps_lookup_key;
char *var_local_transport;
char *var_relay_transport;
char *var_default_transport;
long var_default_destination_recipient_limit;
long var_local_destination_recipient_limit;
long var_initial_destination_concurrency;
long var_default_destination_concurrency_failed_cohort_limit;
long var_qmgr_message_recipient_limit;
long var_default_process_limit;
long var_max_use;
long var_max_idle;
long var_ipc_timeout;
long var_daemon_timeout;
char *var_proxy_read_maps;
long var_proxymap_timeout;
long var_service_throttle_time;
/* issue 8, bench-master: processes per event-server service */
long var_event_server_process_min;
long var_local_recursion_limit;
/* content inspection (cleanup) */
char *var_header_checks;
char *var_body_checks;
long var_body_checks_size_limit;
long var_header_size_limit;
/* smtp client (issue 7) */
char *var_smtp_helo_name;
char *var_known_tcp_ports;
char *var_inet_protocols;
char *var_smtp_address_preference;
long var_smtp_mx_address_limit;
long var_smtp_dns_timeout;
long var_smtp_connect_timeout;
long var_smtp_helo_timeout;
long var_smtp_starttls_timeout;
long var_smtp_mail_timeout;
long var_smtp_rcpt_timeout;
long var_smtp_data_init_timeout;
long var_smtp_data_xfer_timeout;
long var_smtp_data_done_timeout;
long var_smtp_quit_timeout;
long var_smtp_connection_cache_time_limit;
long var_smtp_connection_reuse_time_limit;
char *var_smtp_tls_security_level;
char *var_smtp_tls_CAfile;
char *var_smtp_tls_CApath;
char *var_smtp_tls_servername;
char *var_smtp_tls_protocols;
char *var_smtp_tls_mandatory_protocols;
char *var_smtp_tls_ciphers;
char *var_smtp_tls_policy_maps;

/* --- the table ------------------------------------------------------------ */
/* _Generic with a single association makes a type mismatch a compile error */
#define VSTR(n)  _Generic(&var_##n, char **: (void *)&var_##n)
#define VLONG(n) _Generic(&var_##n, long *: (void *)&var_##n)
#define VBOOL(n) _Generic(&var_##n, bool *: (void *)&var_##n)
#define P_STR(n, d, desc)  { #n, PARAM_STR, d, desc, VSTR(n), 0, 0 }
#define P_INT(n, d, lo, hi, desc)  { #n, PARAM_INT, d, desc, VLONG(n), lo, hi }
#define P_TIME(n, d, lo, hi, desc) { #n, PARAM_TIME, d, desc, VLONG(n), lo, hi }
#define P_SIZE(n, d, lo, hi, desc) { #n, PARAM_SIZE, d, desc, VLONG(n), lo, hi }
#define P_BOOL(n, d, desc) { #n, PARAM_BOOL, d, desc, VBOOL(n), 0, 1 }

#define MIN_ 60L
#define HOUR_ 3600L
#define DAY_ 86400L
#define KB_ 1024L
#define MB_ (1024L * 1024)
#define GB_ (1024L * 1024 * 1024)

const struct param_def param_table[] = {
    /* locations and identity */
    P_STR(config_directory, TERN_DEFAULT_CONFIG_DIR,
          "Directory holding main.conf and master.conf (set by -c or MAIL_CONFIG). The default follows the installation: SYSCONFDIR/tern (/etc/tern for the prefix /usr, as the Debian package; /usr/local/etc/tern for /usr/local)."),
    P_STR(queue_directory, "/var/spool/tern",
          "Root of the mail queue (spool) directory tree."),
    P_STR(daemon_directory, TERN_DEFAULT_DAEMON_DIR,
          "Directory with the daemon programs that master starts, postdrop, and sendmail, mailq and newaliases. The default follows the installation: PREFIX/libexec/tern."),
    P_STR(command_directory, TERN_DEFAULT_COMMAND_DIR,
          "Directory with the administrative commands (ternconf, ternqueue, ...). The default follows the installation: PREFIX/sbin."),
    P_STR(data_directory, "/var/lib/tern",
          "Directory for data that Tern writes outside the queue."),
    P_STR(mail_owner, "tern",
          "Unprivileged account that owns the queue and runs most daemons."),
    P_STR(setgid_group, "ternpostdrop",
          "Group that the set-gid postdrop helper runs as."),
    /* queue tools (issue 9) */
    P_STR(authorized_mailq_users, "static:anyone",
          "Users who may list the queue (ternqueue -p/-j, mailq; checked by ternqueue and again by showq(8)): user names or numeric uids, !name to exclude, static:anyone for everyone; root and $mail_owner always may."),
    P_STR(authorized_flush_users, "static:anyone",
          "Users who may flush the queue (ternqueue -f, -s, -i), in the form of authorized_mailq_users."),
    P_STR(alternate_config_directories, "",
          "Configuration directories besides the default one that ordinary users may name (-c, -C, MAIL_CONFIG) to the set-gid programs (postdrop, ternqueue); read from the default main.conf only."),
    /* local submission: who may use which sender (Postfix 3.6) */
    P_STR(local_login_sender_maps, "static:*",
          "Tables searched by the login name of a local submitter (\"uid:N\" for a uid without a passwd entry) that return the envelope senders (sendmail -f, -bs MAIL FROM) that user may use, separated by commas or blanks: * any, <> the null sender, @domain any address in domain, or an address (a bare login as sendmail writes it without -f); case and address extensions are ignored. A login not found may use none; root and $mail_owner get no exception. Checked by postdrop (exit 77) and again by pickup, which moves a refused file to corrupt/. The default allows every sender."),
    P_STR(empty_address_local_login_sender_maps_lookup_key, "<>",
          "The pattern in $local_login_sender_maps values that stands for the null sender."),
    P_STR(syslog_name, "tern",
          "Prefix of the program name in log lines (tern/smtpd)."),
    P_STR(syslog_facility, "mail",
          "Syslog facility used for logging."),
    P_STR(maillog_file, "",
          "Log to this file instead of syslog; empty means syslog."),
    P_STR(mail_name, "Tern",
          "Name of the mail system, as shown in the SMTP greeting."),
    P_STR(myhostname, NULL,
          "Fully qualified name of this host; default: the system host name, with .localdomain appended when it has no dot."),
    P_STR(mydomain, NULL,
          "Domain of this host; default: $myhostname minus its first label (localdomain if nothing is left)."),
    P_STR(myorigin, "$myhostname",
          "Domain appended to unqualified envelope addresses (append_at_myorigin)."),
    P_BOOL(append_at_myorigin, "yes",
           "Append @$myorigin to envelope senders and recipients without a domain as they enter the queue (cleanup); the address as given stays the original recipient."),
    P_STR(mydestination, "$myhostname, localhost.$mydomain, localhost",
          "Domains delivered locally by this host."),
    P_STR(mynetworks, "127.0.0.0/8 [::1]/128",
          "Trusted client networks that may relay through this host."),
    P_STR(inet_interfaces, "all",
          "Network addresses to listen on for inet services without an explicit host."),
    P_STR(relay_domains, "",
          "Remote domains this host accepts mail for and relays: names (a name covers its subdomains, .name only them) and type:table lookup tables (keyed by the domain and its parents)."),
    P_STR(2bounce_notice_recipient, "postmaster",
          "Recipient of a bounce of a message from the null sender (a bounce that could not be delivered); such a report that fails too is only logged."),
    P_STR(relayhost, "",
          "Send all non-local mail to this host ([host]:port skips MX lookup); empty means direct delivery."),
    /* SMTP server */
    P_STR(smtpd_banner, "$myhostname ESMTP $mail_name",
          "Text that follows the 220 code in the SMTP greeting."),
    P_STR(smtpd_overload_reply, "421 4.3.2 $myhostname Service not available: too many connections, try again later",
          "What master answers new SMTP clients while every smtpd process is full (empty: close without a reply)."),
    P_STR(smtpd_forbid_bare_newline, "normalize",
          "What to do with a bare LF in SMTP input: normalize, reject or no."),
    P_SIZE(message_size_limit, "10240000", 0, 64 * GB_,
           "Largest message accepted, in bytes (0 means no limit)."),
    P_INT(line_length_limit, "2048", 80, 1024 * KB_,
          "Longest line read from SMTP clients and message content, in bytes."),
    P_INT(smtpd_recipient_limit, "1000", 1, 1000000,
          "Most recipients accepted for one message."),
    P_INT(duplicate_filter_limit, "1000", 0, 1000000,
          "How many recipients of one message are remembered to drop duplicates (0 means no duplicate filter)."),
    /* virtual aliases, queue_minfree (issue 7) */
    P_STR(virtual_alias_maps, "",
          "Tables that rewrite every recipient before it is queued (virtual(5)), for every way into the queue: keys user@domain, user (local domains only), @domain; values one or more addresses."),
    P_STR(virtual_alias_domains, "$virtual_alias_maps",
          "Domains (names and type:table lookups, keyed by the domain) whose every address must be listed in virtual_alias_maps; the SMTP server accepts mail for them and rejects unlisted addresses (550 5.1.1)."),
    P_INT(virtual_alias_recursion_limit, "1000", 1, 100000,
          "Longest chain of virtual alias lookups for one address; a longer one defers the message."),
    P_INT(virtual_alias_expansion_limit, "1000", 1, 100000,
          "Most addresses that virtual alias expansion makes of one recipient; more defers the message."),
    P_STR(propagate_unmatched_extensions, "canonical, virtual",
          "Where an address extension (user+ext) that a table matched without it is carried over to the result: virtual (virtual_alias_maps); canonical is accepted for Postfix compatibility."),
    P_SIZE(queue_minfree, "0", 0, 1L << 62,
           "Free space the queue file system must keep: with less, or less than 1.5 times message_size_limit (as in Postfix, whatever this is), the SMTP server answers MAIL FROM with 452 4.3.1, and a SIZE= larger than the space beyond it too."),
    P_TIME(smtpd_timeout, "300s", 1, DAY_,
           "How long the SMTP server waits for a client command or data."),
    P_INT(smtpd_client_limit, "256", 1, 1000000,
          "Most simultaneous client connections one smtpd process serves."),
    P_INT(smtpd_hard_error_limit, "20", 1, 100000,
          "Disconnect a client after this many errors."),
    P_INT(smtpd_junk_command_limit, "100", 1, 100000,
          "After this many NOOP, VRFY and RSET commands in a session (counted anew after each message queued), each one more counts as an error."),
    P_INT(smtpd_command_limit, "10000", 0, 100000000,
          "Disconnect (421 4.7.0) a client after this many command lines in one session, whatever they are (0 means no limit; a Tern parameter: Postfix has none)."),
    P_INT(smtpd_soft_error_limit, "10", 1, 100000,
          "After this many errors, sleep smtpd_error_sleep_time before each reply."),
    P_TIME(smtpd_error_sleep_time, "1s", 0, 10 * MIN_,
           "Delay before replying to a client that has made too many errors."),
    P_BOOL(smtpd_helo_required, "no",
           "Require HELO or EHLO before MAIL FROM."),
    P_BOOL(smtpd_forbid_unauth_pipelining, "yes",
           "Disconnect a client that sends input before the greeting, or after a DATA command that was refused."),
    P_BOOL(smtpd_per_request_deadline, "yes",
           "smtpd_timeout limits the time for a whole command line, not for each read; DATA gets smtpd_timeout plus the time to send its bytes at smtpd_min_data_rate."),
    P_INT(smtpd_client_connection_count_limit, "50", 0, 1000000,
          "Most simultaneous connections one client address may have to this smtpd service, over all its processes (0 means no limit; needs the anvil service)."),
    P_INT(smtpd_client_connection_rate_limit, "0", 0, 1000000,
          "Most connections one client address may make per anvil_rate_time_unit (0 means no limit; needs the anvil service)."),
    P_STR(smtpd_client_event_limit_exceptions, "$mynetworks",
          "Clients (address list, like mynetworks) exempt from the connection count and rate limits."),
    P_TIME(anvil_rate_time_unit, "60s", 1, DAY_,
           "Time unit over which the anvil service counts connection rates."),
    P_INT(smtpd_min_data_rate, "500", 1, 1024 * MB_,
          "With smtpd_per_request_deadline: each byte of DATA received extends its deadline by 1/rate seconds (bytes per second)."),
    P_STR(smtpd_tls_cert_file, "",
          "PEM file with the SMTP server's certificate, then its intermediate certificates (empty: no TLS)."),
    P_STR(smtpd_tls_key_file, "$smtpd_tls_cert_file",
          "PEM file with the private key of smtpd_tls_cert_file (read as root before the privilege drop)."),
    P_STR(smtpd_tls_security_level, "none",
          "SMTP server TLS: none (no STARTTLS, Postfix's default), may (offer STARTTLS; needs smtpd_tls_cert_file) or encrypt (offer it and refuse MAIL, RCPT, DATA and VRFY before it)."),
    P_BOOL(smtpd_tls_wrappermode, "no",
           "TLS from the first byte (implicit TLS, port 465) instead of STARTTLS; for one service via master.conf -o."),
    /* content inspection (cleanup, for every way into the queue) */
    P_STR(header_checks, "",
          "Tables (usually pcre:) that each message header is looked up in; the result is an action as in header_checks(5): REJECT, DISCARD, HOLD, WARN, IGNORE, REPLACE, PREPEND, DUNNO."),
    P_STR(body_checks, "",
          "Tables that each line of the message body is looked up in (actions as for header_checks), up to body_checks_size_limit bytes of body."),
    P_SIZE(body_checks_size_limit, "51200", 0, 1024 * MB_,
           "How many bytes of a message body body_checks inspect."),
    P_SIZE(header_size_limit, "102400", 1024, 64 * MB_,
           "Header section size after which the header ends: the rest of the message is treated as body."),
    P_BOOL(smtpd_sasl_auth_enable, "no",
           "Offer and accept SMTP AUTH (PLAIN, LOGIN), checked by the auth service; usually for one service via master.conf -o."),
    P_BOOL(smtpd_tls_auth_only, "yes",
           "Offer and accept AUTH only in a TLS session (Tern's default; Postfix's is no): PLAIN and LOGIN send the password in clear."),
    P_BOOL(smtpd_sasl_auth_required, "no",
           "Refuse MAIL, RCPT and DATA (530 5.7.0 Authentication required) until AUTH succeeded; for submission services (a Tern parameter, not in Postfix)."),
    P_INT(smtpd_sasl_failure_limit, "3", 0, 100000,
          "Disconnect (421 4.7.0) a client after this many failed AUTH commands in one session (0 means no limit; a Tern parameter, not in Postfix)."),
    P_BOOL(smtpd_sasl_authenticated_header, "no",
           "Show the authenticated user name in smtpd's Received: header (\"Authenticated sender: NAME\")."),
    P_INT(smtpd_client_auth_rate_limit, "0", 0, 1000000,
          "Most AUTH commands one client address may send per anvil_rate_time_unit, over all smtpd processes of the service (0 means no limit; needs the anvil service)."),
    /* SMTP server access restrictions (smtpd(8) RESTRICTIONS) */
    P_STR(smtpd_client_restrictions, "",
          "Restrictions on the client's address and name, evaluated at RCPT TO (as Postfix with smtpd_delay_reject = yes)."),
    P_STR(smtpd_helo_restrictions, "",
          "Restrictions on the HELO/EHLO name, evaluated at RCPT TO."),
    P_STR(smtpd_sender_restrictions, "",
          "Restrictions on the MAIL FROM address, evaluated at RCPT TO."),
    P_STR(smtpd_relay_restrictions, "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
          "Relay control at RCPT TO, before smtpd_recipient_restrictions; this list or that one must contain reject_unauth_destination, defer_unauth_destination, reject or defer."),
    P_STR(smtpd_recipient_restrictions, "",
          "Restrictions on the RCPT TO address, after smtpd_relay_restrictions."),
    P_STR(smtpd_data_restrictions, "",
          "Restrictions evaluated at the DATA command."),
    P_STR(smtpd_end_of_data_restrictions, "",
          "Restrictions evaluated after the end of the message, before it is queued."),
    P_STR(smtpd_sender_login_maps, "",
          "Tables of the SASL login names that own a sender address (keys: address, address without extension, local part in local domains, @domain), for reject_sender_login_mismatch."),
    P_BOOL(smtpd_reject_unlisted_recipient, "yes",
           "Reject RCPT TO addresses in local domains that no alias or user matches, after the restriction lists (550 5.1.1)."),
    P_STR(smtpd_tls_protocols, ">=TLSv1.2",
          "TLS protocols smtpd accepts at security level may: \">=TLSv1.2\", \"!SSLv3, !TLSv1, !TLSv1.1\" or \"TLSv1.2 TLSv1.3\" (one range)."),
    P_STR(smtpd_tls_mandatory_protocols, ">=TLSv1.2",
          "TLS protocols smtpd accepts at security level encrypt (syntax of smtpd_tls_protocols)."),
    P_STR(smtpd_tls_ciphers, "medium",
          "TLS 1.2 cipher grade at security level may: medium (tls_medium_cipherlist) or high (tls_high_cipherlist); TLS 1.3 suites are OpenSSL's."),
    P_STR(smtpd_tls_mandatory_ciphers, "medium",
          "TLS 1.2 cipher grade at security level encrypt: medium or high."),
    P_STR(tls_high_cipherlist,
          "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP",
          "OpenSSL cipher list of the grade high: forward-secret AEAD only."),
    P_STR(tls_medium_cipherlist,
          "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES:!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP:!3DES:!RC4",
          "OpenSSL cipher list of the grade medium: forward secrecy, AEAD first, AES-CBC kept for older peers."),
    P_STR(smtpd_tls_chain_files, "",
          "PEM files with the server's private key(s), each followed by its certificate chain (several key types may follow each other); when set, used instead of smtpd_tls_cert_file and smtpd_tls_key_file."),
    P_STR(tls_server_sni_maps, "",
          "Tables mapping a TLS SNI host name, or a parent domain with a leading dot, to the chain files (as smtpd_tls_chain_files) of its certificate; read in full as root at smtpd start (lmdb: or inline:), unknown names get the default certificate."),
    P_TIME(smtpd_tls_session_cache_timeout, "3600s", 0, 7 * DAY_,
           "Lifetime of smtpd's TLS session tickets (TLS 1.2 and 1.3 resumption); 0 disables resumption. The ticket keys, shared by all smtpd processes, are kept in data_directory."),
    P_BOOL(smtpd_tls_ask_ccert, "no",
           "Ask TLS clients for a certificate (never required); the result and its SHA-256 fingerprint are logged."),
    P_BOOL(smtpd_tls_req_ccert, "no",
           "At security level encrypt, require a client certificate that verifies against smtpd_tls_CAfile (421 4.7.1 otherwise); implies smtpd_tls_ask_ccert."),
    P_STR(smtpd_tls_CAfile, "",
          "PEM file of the CA certificates that client certificates are verified against (read as root before the privilege drop)."),
    P_BOOL(smtpd_peername_lookup, "yes",
           "Look up the client's host name (PTR, then forward confirmation: the name must resolve back to the client address); with no, every client is unknown."),
    P_TIME(smtpd_peername_lookup_timeout, "10s", 1, 10 * MIN_,
           "How long the client name lookup (PTR and forward confirmation together) may take; after it the client is unknown. The greeting never waits; commands wait at most this long."),
    P_STR(dns_forwarders, "",
          "DNS resolvers to ask (blank or comma separated, ADDRESS or ADDRESS@PORT, e.g. 127.0.0.1@5353) instead of the nameservers of /etc/resolv.conf; empty means resolv.conf."),
    P_STR(dns_hosts_file, "/etc/hosts",
          "Hosts file the DNS resolver answers from before asking the DNS (read at start-up, before chroot); empty means none."),
    /* POP3 (pop3-login(8), pop3d(8)) */
    P_STR(login_user, "ternlogin",
          "User the login processes (pop3-login) run as, chrooted into $queue_directory/login; it owns no files and cannot read the spool or any mailbox."),
    P_STR(pop3d_banner, "$myhostname POP3 server ready",
          "Text after \"+OK \" in the POP3 greeting."),
    P_TIME(pop3d_timeout, "600s", 1, DAY_,
           "How long a POP3 client may stay silent, before and after login (RFC 1939 asks for at least 10 minutes); then the connection is closed."),
    P_INT(pop3d_client_limit, "1000", 1, 1000000,
          "Most connections one pop3-login process serves at once (master starts more processes up to the service's maxproc)."),
    P_INT(pop3d_hard_error_limit, "10", 1, 100000,
          "Close a POP3 connection after this many erroneous commands (unknown, malformed, out of state) in one session."),
    P_TIME(pop3d_auth_failure_delay, "2s", 0, MIN_,
           "How long pop3-login waits before it answers a failed login (-ERR [AUTH]), slowing down password guessing; other connections are served meanwhile."),
    P_INT(pop3d_sasl_failure_limit, "3", 1, 100000,
          "Close a POP3 connection after this many failed logins (USER/PASS or AUTH) in one session."),
    P_BOOL(pop3d_tls_auth_only, "yes",
           "Accept USER/PASS and AUTH PLAIN/LOGIN only inside TLS (STLS or port 995); before TLS they get -ERR [AUTH] and CAPA does not offer them. SCRAM-SHA-256 never sends the password and is always offered."),
    P_STR(pop3d_tls_security_level, "may",
          "POP3 server TLS: none (no STLS), may (offer STLS; needs a certificate) or encrypt (offer it and refuse every command but CAPA, STLS and QUIT before it)."),
    P_BOOL(pop3d_tls_wrappermode, "no",
           "TLS from the first byte (POP3S, port 995) instead of STLS; for one service via master.conf -o."),
    P_STR(pop3d_tls_cert_file, "$smtpd_tls_cert_file",
          "PEM file with the POP3 server's certificate and intermediate certificates (read as root before the privilege drop)."),
    P_STR(pop3d_tls_key_file, "$smtpd_tls_key_file",
          "PEM file with the private key of pop3d_tls_cert_file."),
    P_STR(pop3d_tls_chain_files, "$smtpd_tls_chain_files",
          "PEM files with key(s) and certificate chain(s); when set, used instead of pop3d_tls_cert_file and pop3d_tls_key_file."),
    P_STR(pop3d_tls_protocols, "$smtpd_tls_protocols",
          "TLS protocols the POP3 server accepts (syntax of smtpd_tls_protocols)."),
    P_STR(pop3d_tls_ciphers, "$smtpd_tls_ciphers",
          "TLS 1.2 cipher grade of the POP3 server: medium or high."),
    P_BOOL(pop3d_mark_retrieved_seen, "yes",
           "At QUIT, move the messages retrieved (RETR) and not deleted from new/ to cur/ with the Seen flag, so IMAP clients show them as read."),
    /* queue manager */
    P_TIME(queue_run_delay, "300s", 1, DAY_,
           "How often the deferred queue is scanned."),
    P_TIME(minimal_backoff_time, "300s", 1, 7 * DAY_,
           "Shortest time a deferred message waits before the next attempt."),
    P_TIME(maximal_backoff_time, "4000s", 1, 7 * DAY_,
           "Longest time a deferred message waits before the next attempt."),
    P_TIME(maximal_queue_lifetime, "5d", 0, 365 * DAY_,
           "How long a message may stay in the queue before it is bounced."),
    P_TIME(bounce_queue_lifetime, "5d", 0, 365 * DAY_,
           "How long a message from the null sender (a bounce or other report) may stay in the queue before it is given up; at most maximal_queue_lifetime is sensible."),
    /* notifications (issue 7) */
    P_TIME(delay_warning_time, "0h", 0, 365 * DAY_,
           "After this long in the queue with recipients still pending, the sender gets one delay warning (an RFC 3464 report with Action: delayed) for the recipients whose NOTIFY asks for DELAY or is not given; 0 turns warnings off. Never for mail from the null sender."),
    P_SIZE(bounce_size_limit, "50000", 1, 1024 * MB_,
           "Most bytes of the original message attached to a non-delivery report (cut at a line end after the header section, which is kept whole); RET=HDRS, delay warnings and success notices attach the headers only."),
    P_INT(delay_logging_resolution_limit, "2", 0, 6,
          "Most digits after the decimal point in the delay= and delays= figures of delivery status lines."),
    P_INT(default_destination_concurrency_limit, "20", 1, 10000,
          "Most parallel deliveries to one destination."),
    P_INT(local_destination_concurrency_limit, "2", 1, 10000,
          "Most parallel local deliveries to one recipient (a stalled mailbox holds at most this many delivery slots)."),
    P_TIME(local_time_limit, "1000s", 1, DAY_,
           "How long the queue manager waits for one local delivery before it defers it."),
    P_INT(qmgr_message_active_limit, "20000", 1, 100000000,
          "Most messages in the active queue at once."),
    /* routing and scheduling (issue 7) */
    P_STR(transport_maps, "",
          "Tables mapping a recipient address, its domain, a parent domain (.example.com) or * to transport:nexthop (transport(5)); empty fields keep the default; empty means none."),
    P_STR(sender_dependent_relayhost_maps, "",
          "Tables mapping a sender address or @domain to the relayhost for its mail (relay and default transports only; DUNNO means none)."),
    P_STR(empty_address_relayhost_maps_lookup_key, "<>",
          "Key that sender_dependent_relayhost_maps is asked for the null sender."),
    P_STR(local_transport, "local:$myhostname",
          "Transport (and nexthop) for recipients in $mydestination."),
    P_STR(relay_transport, "relay",
          "Transport (and optional nexthop) for recipients in $relay_domains."),
    P_STR(default_transport, "smtp",
          "Transport (and optional nexthop) for all other remote recipients."),
    P_INT(default_destination_recipient_limit, "50", 1, 64,
          "Most recipients of one message in one delivery request (per transport: <transport>_destination_recipient_limit); with 1, concurrency is limited per recipient instead of per next hop; at most 64 in Tern."),
    P_INT(local_destination_recipient_limit, "1", 1, 64,
          "Most recipients in one local delivery request."),
    P_INT(initial_destination_concurrency, "5", 1, 10000,
          "Parallel deliveries to a new destination; it grows by one per window of successful deliveries up to its <transport>_destination_concurrency_limit."),
    P_INT(default_destination_concurrency_failed_cohort_limit, "1", 1, 10000,
          "Consecutive failed deliveries at concurrency 1 after which a destination is considered dead and its mail deferred for $minimal_backoff_time (per transport: <transport>_destination_concurrency_failed_cohort_limit)."),
    P_INT(qmgr_message_recipient_limit, "20000", 1, 100000000,
          "Most recipients of active messages in memory at once (a larger message is still taken on when nothing else is active)."),
    /* delivery */
    P_STR(alias_maps, "lmdb:$config_directory/aliases",
          "Tables consulted by local delivery for aliases."),
    P_STR(alias_database, "lmdb:$config_directory/aliases",
          "Alias tables that newaliases rebuilds."),
    P_STR(virtual_user_maps, "",
          "Table of virtual (non-system) users; empty means none."),
    /* authentication */
    P_STR(virtual_password_maps, "",
          "Tables of virtual users' password hashes (crypt(3), yescrypt or SHA-512) that auth(8) checks first; empty means none."),
    P_BOOL(auth_system_users, "yes",
           "Whether auth(8) also checks system users (getpwnam and the shadow hash); only when auth runs as root."),
    P_STR(home_mailbox, "Maildir/",
          "Mailbox relative to the home directory; a trailing / means Maildir, else mbox."),
    P_STR(recipient_delimiter, "+",
          "Characters that separate a user name from an address extension."),
    /* local: aliases, commands, forward (issue 7) */
    P_STR(allow_mail_to_commands, "alias, forward",
          "Where local delivery may pipe mail to |command targets: any of alias, forward, include."),
    P_STR(allow_mail_to_files, "alias, forward",
          "Where local delivery may append mail to /file targets: any of alias, forward, include."),
    P_STR(default_privs, "nobody",
          "Account whose rights local delivery uses for commands and files of root-owned alias tables and include files (never a privileged account)."),
    P_STR(forward_path, "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
          "The .forward files local delivery tries, in order; $user, $home, $shell, $recipient, $extension, $domain, $local and $recipient_delimiter are expanded, and an element that names an empty attribute is skipped."),
    P_TIME(command_time_limit, "1000s", 1, DAY_,
           "How long a command that local delivery runs (|command, mailbox_command) may take before its process group is killed."),
    P_STR(local_command_shell, "",
          "Shell that runs |command and mailbox_command targets as SHELL -c COMMAND; empty means /bin/sh."),
    P_STR(mailbox_command, "",
          "Command that delivers to a user's own mailbox instead of home_mailbox, run as the user with the message on its standard input (e.g. procmail, an LDA); empty means none."),
    P_STR(prepend_delivered_header, "command, file, forward",
          "Deliveries that get a Delivered-To: header first: any of command, file, forward (forwarded copies without it lose loop detection)."),
    P_BOOL(owner_request_special, "yes",
           "Give owner-NAME aliases their special meaning: errors for the list NAME go to owner-NAME, which becomes the sender of its deliveries."),
    P_SIZE(mailbox_size_limit, "51200000", 0, 1024 * GB_,
           "Largest mbox file or message written by local delivery (0 means no limit)."),
    /* local: mailboxes (issue 7) */
    P_STR(mail_spool_directory, "/var/mail",
          "Directory of the UNIX-style mailboxes (USER, mbox format) local delivers to when home_mailbox is empty."),
    P_STR(mailbox_delivery_lock, "fcntl, dotlock",
          "How local locks an mbox file before it appends a message: any of fcntl, flock and dotlock (FILE.lock)."),
    P_TIME(stale_lock_time, "500s", 1, DAY_,
           "A FILE.lock dot lock older than this is removed as stale."),
    P_INT(deliver_lock_attempts, "20", 1, 1000,
          "How often local tries to lock an mbox file before it defers the delivery (4.2.0)."),
    P_TIME(deliver_lock_delay, "1s", 1, 10 * MIN_,
           "Time between two attempts to lock an mbox file."),
    P_INT(local_recursion_limit, "20", 1, 1000,
          "How deeply aliases and .forward files may nest."),
    /* processes */
    P_INT(default_process_limit, "100", 1, 100000,
          "Default maxproc for master.conf services."),
    P_INT(max_use, "100", 1, 1000000,
          "A daemon process exits after serving this many requests."),
    P_TIME(max_idle, "100s", 1, DAY_,
           "A daemon process exits after being idle this long."),
    P_TIME(ipc_timeout, "3600s", 1, DAY_,
           "Timeout for requests between Tern processes."),
    P_TIME(daemon_timeout, "18000s", 1, 7 * DAY_,
           "A daemon that spends longer on one request is killed."),
    P_TIME(service_throttle_time, "60s", 1, DAY_,
           "How long master waits before restarting a service that keeps failing."),
    /* issue 8 (bench-master): spread the clients of an event server such
       as smtpd over several processes (one per core), which share its
       listening sockets; request and trigger servers are not affected */
    P_INT(event_server_process_min, "0", 0, 100000,
          "master starts another process of an event-server service (smtpd) when a client arrives and fewer than this many exist, even if the existing ones have room; 0 = the number of online CPUs; never more than the service's maxproc."),
    /* proxymap: lookups for chrooted daemons */
    P_STR(proxy_read_maps, "$alias_maps $virtual_alias_maps $virtual_alias_domains $virtual_user_maps $mydestination $relay_domains $transport_maps $sender_dependent_relayhost_maps $smtp_tls_policy_maps $smtpd_sender_login_maps $local_login_sender_maps $smtpd_client_restrictions $smtpd_helo_restrictions $smtpd_sender_restrictions $smtpd_relay_restrictions $smtpd_recipient_restrictions $smtpd_data_restrictions $smtpd_end_of_data_restrictions",
          "Tables proxymap(8) may look up for its clients (chrooted daemons reach every lmdb: table through it); words that are not TYPE:NAME are ignored, and proxymap refuses and logs any other table."),
    P_TIME(proxymap_timeout, "10s", 1, HOUR_,
           "How long a daemon waits for one proxymap(8) lookup before it gives up (the client gets a temporary failure, 4.3.0)."),
    /* smtp client (issue 7) */
    P_STR(smtp_helo_name, "$myhostname",
          "Host name the smtp(8) client sends in EHLO and HELO."),
    P_STR(known_tcp_ports, "lmtp=24, smtp=25, smtps=submissions=465, submission=587",
          "Service names and their TCP ports (name=name=...=port, comma separated); smtp(8) connects to the port of \"smtp\" unless a next hop names its own port (a number or one of these names)."),
    P_STR(inet_protocols, "all",
          "Address families smtp(8) connects with: all, ipv4, ipv6, or \"ipv4, ipv6\"."),
    P_STR(smtp_address_preference, "any",
          "Which addresses of a host with both smtp(8) tries first: any (random), ipv4 or ipv6."),
    P_INT(smtp_mx_address_limit, "5", 0, 1000,
          "Most server addresses smtp(8) tries for one delivery, over all MX hosts (0 means no limit)."),
    P_TIME(smtp_dns_timeout, "30s", 1, HOUR_,
          "How long one DNS lookup (MX, A or AAAA) of smtp(8) may take before the delivery is deferred (Tern-only; Postfix uses the resolver's own timeouts)."),
    P_TIME(smtp_connect_timeout, "30s", 1, HOUR_,
          "How long smtp(8) waits for a TCP connection to a server."),
    P_TIME(smtp_helo_timeout, "300s", 1, HOUR_,
          "How long smtp(8) waits for the greeting and for the reply to EHLO or HELO."),
    P_TIME(smtp_starttls_timeout, "300s", 1, HOUR_,
          "How long smtp(8) waits for the reply to STARTTLS and for the TLS handshake."),
    P_TIME(smtp_mail_timeout, "300s", 1, HOUR_,
          "How long smtp(8) waits for the reply to MAIL FROM (and to RSET)."),
    P_TIME(smtp_rcpt_timeout, "300s", 1, HOUR_,
          "How long smtp(8) waits for the reply to RCPT TO."),
    P_TIME(smtp_data_init_timeout, "120s", 1, HOUR_,
          "How long smtp(8) waits for the reply to DATA."),
    P_TIME(smtp_data_xfer_timeout, "180s", 1, HOUR_,
          "How long smtp(8) waits for the server to take more message content."),
    P_TIME(smtp_data_done_timeout, "600s", 1, HOUR_,
          "How long smtp(8) waits for the reply to the end of the message (\".\" or the last BDAT)."),
    P_TIME(smtp_quit_timeout, "300s", 1, HOUR_,
          "How long smtp(8) waits for the reply to QUIT."),
    P_TIME(smtp_connection_cache_time_limit, "2s", 0, HOUR_,
          "How long smtp(8) keeps an idle connection open for the next delivery to the same next hop (0 means no reuse)."),
    P_TIME(smtp_connection_reuse_time_limit, "300s", 1, DAY_,
          "How long after it was opened smtp(8) may still reuse a connection."),
    P_STR(smtp_tls_security_level, "",
          "TLS in the smtp(8) client: none (or empty), may (STARTTLS when offered, plain text when the handshake fails), encrypt (TLS required, certificate not checked), verify and secure (TLS required, the certificate must verify against smtp_tls_CAfile/CApath and match the server name)."),
    P_STR(smtp_tls_CAfile, "",
          "PEM file of CA certificates for server certificate checks in smtp(8) (read before chroot)."),
    P_STR(smtp_tls_CApath, "",
          "Directory of hashed CA certificates for server certificate checks in smtp(8) (read before chroot)."),
    P_STR(smtp_tls_servername, "",
          "SNI name smtp(8) sends: empty (none), hostname (the MX host name), nexthop (the next-hop domain), or a fixed name."),
    P_STR(smtp_tls_protocols, ">=TLSv1.2",
          "TLS protocols smtp(8) offers at level may (syntax of smtpd_tls_protocols)."),
    P_STR(smtp_tls_mandatory_protocols, ">=TLSv1.2",
          "TLS protocols smtp(8) offers at levels encrypt and above."),
    P_STR(smtp_tls_ciphers, "medium",
          "TLS 1.2 cipher grade of smtp(8): medium or high."),
    P_STR(smtp_tls_policy_maps, "",
          "Tables of per-destination TLS policy for smtp(8): the next-hop domain (or [host]) maps to a security level and optional match=, protocols= and ciphers= attributes, as in Postfix."),
};

const size_t param_count = sizeof(param_table) / sizeof(param_table[0]);

/* --- per-load state ------------------------------------------------------- */
struct pent {
    const struct param_def *def;  /* NULL for a name not in the table */
    char *own_name;               /* name storage for such names */
    const char *name;
    char *file_val;               /* as written in main.conf */
    int file_line;
    char *ovr_val;                /* from -o name=value */
    char *cache;                  /* expanded value, once computed */
    bool busy;                    /* being expanded (loop detection) */
    struct pent *next;            /* hash chain */
};

struct cfg {
    struct pent *tab;             /* param_count entries, table order */
    struct pent *buckets[CFG_BUCKETS];
    bool defaults_only;           /* ignore file and override values */
    char *config_dir;             /* loaded directory, '$' doubled */
    long expanded;                /* bytes produced by expansion so far */
};

static struct cfg *cfg_cur;       /* what var_* reflect */
static struct cfg *cfg_dflt;      /* defaults only, for config_default_value */
static char **cfg_overrides;
static size_t cfg_noverrides;

static bool cfg_name_char(int ch)
{
    return isalnum(ch) || ch == '_';
}

static unsigned cfg_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h % CFG_BUCKETS;
}

/* cfg_lookup - entry for name[0..n), NULL if none */
static struct pent *cfg_lookup(struct cfg *c, const char *name, size_t n)
{
    for (struct pent *e = c->buckets[cfg_hash(name, n)]; e; e = e->next)
        if (strncmp(e->name, name, n) == 0 && e->name[n] == '\0')
            return e;
    return NULL;
}

static void cfg_link(struct cfg *c, struct pent *e)
{
    unsigned h = cfg_hash(e->name, strlen(e->name));
    e->next = c->buckets[h];
    c->buckets[h] = e;
}

static struct cfg *cfg_new(bool defaults_only)
{
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->defaults_only = defaults_only;
    c->tab = xcalloc(param_count, sizeof(*c->tab));
    for (size_t i = 0; i < param_count; i++) {
        c->tab[i].def = &param_table[i];
        c->tab[i].name = param_table[i].name;
        cfg_link(c, &c->tab[i]);
    }
    return c;
}

static void pent_clear(struct pent *e)
{
    free(e->file_val);
    free(e->ovr_val);
    free(e->cache);
    free(e->own_name);
}

static void cfg_destroy(struct cfg *c)
{
    if (c == NULL)
        return;
    for (unsigned b = 0; b < CFG_BUCKETS; b++) {
        struct pent *e = c->buckets[b], *next;
        for (; e; e = next) {
            next = e->next;
            pent_clear(e);
            if (e->def == NULL)
                free(e);
        }
    }
    free(c->tab);
    free(c->config_dir);
    free(c);
}

/* cfg_entry - find or create the entry for name (a user-defined name) */
static struct pent *cfg_entry(struct cfg *c, const char *name)
{
    struct pent *e = cfg_lookup(c, name, strlen(name));
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->own_name = xstrdup(name);
        e->name = e->own_name;
        cfg_link(c, e);
    }
    return e;
}

const struct param_def *config_find(const char *name)
{
    for (size_t i = 0; i < param_count; i++)
        if (strcmp(param_table[i].name, name) == 0)
            return &param_table[i];
    return NULL;
}

/* --- expansion ----------------------------------------------------------- */
static const char *cfg_resolve(struct cfg *c, struct pent *e, int depth,
                               buf_t *why);

/* cfg_put - append to an expansion result, enforcing the size caps */
static int cfg_put(struct cfg *c, buf_t *out, const char *s, size_t n,
                   buf_t *why)
{
    if (c->expanded + (long)n > CFG_MAX_EXPANDED
        || buf_append(out, s, n) < 0) {
        buf_printf(why, "value too long after $name expansion");
        return -1;
    }
    c->expanded += (long)n;
    return 0;
}

/* cfg_expand - expand $name, ${name}, $(name) and $$ in one value */
static int cfg_expand(struct cfg *c, const char *in, buf_t *out, int depth,
                      buf_t *why)
{
    const char *p = in;
    while (*p) {
        const char *dollar = strchr(p, '$');
        size_t lit = dollar ? (size_t)(dollar - p) : strlen(p);
        if (cfg_put(c, out, p, lit, why) < 0)
            return -1;
        if (dollar == NULL)
            break;
        p = dollar + 1;
        const char *name = p;
        size_t n;
        if (*p == '$') {
            if (cfg_put(c, out, "$", 1, why) < 0)
                return -1;
            p++;
            continue;
        } else if (*p == '{' || *p == '(') {
            char close = *p == '{' ? '}' : ')';
            name = ++p;
            while (cfg_name_char((unsigned char)*p))
                p++;
            n = (size_t)(p - name);
            if (*p != close || n == 0) {
                buf_printf(why, "bad or unterminated $%c...%c in value",
                           close == '}' ? '{' : '(', close);
                return -1;
            }
            p++;
        } else {
            while (cfg_name_char((unsigned char)*p))
                p++;
            n = (size_t)(p - name);
            if (n == 0) {   /* lone '$': keep it literally */
                if (cfg_put(c, out, "$", 1, why) < 0)
                    return -1;
                continue;
            }
        }
        struct pent *e = cfg_lookup(c, name, n);
        if (e == NULL)
            continue;     /* undefined: expands to nothing, as in Postfix */
        const char *v = cfg_resolve(c, e, depth + 1, why);
        if (v == NULL || cfg_put(c, out, v, strlen(v), why) < 0)
            return -1;
    }
    return 0;
}

static void cfg_hostname(buf_t *out)
{
    char host[256];
    if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
        str_copy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    buf_puts(out, host);
    if (strchr(host, '.') == NULL)
        buf_puts(out, ".localdomain");
}

/* cfg_computed - defaults that are not a fixed string */
static int cfg_computed(struct cfg *c, struct pent *e, buf_t *out, int depth,
                        buf_t *why)
{
    if (strcmp(e->name, "myhostname") == 0) {
        cfg_hostname(out);
        return 0;
    }
    if (strcmp(e->name, "mydomain") == 0) {
        struct pent *h = cfg_lookup(c, "myhostname", strlen("myhostname"));
        const char *host = cfg_resolve(c, h, depth + 1, why);
        if (host == NULL)
            return -1;
        const char *dot = strchr(host, '.');
        buf_puts(out, dot && dot[1] ? dot + 1 : "localdomain");
        return 0;
    }
    return 0;
}

/* cfg_raw - the unexpanded value that applies to e, NULL = computed */
static const char *cfg_raw(struct cfg *c, struct pent *e)
{
    if (!c->defaults_only) {
        if (e->ovr_val)
            return e->ovr_val;
        if (e->file_val)
            return e->file_val;
        if (c->config_dir && strcmp(e->name, "config_directory") == 0)
            return c->config_dir;
    }
    return e->def ? e->def->defval : "";
}

/* cfg_literal - parameters whose $names are the delivery agent's to
   expand ($home, $extension in forward_path; the shell's $EXTENSION in
   mailbox_command), as Postfix keeps them: never expanded at load time */
static bool cfg_literal(const char *name)
{
    /* local: aliases, commands, forward (issue 7) */
    return strcmp(name, "forward_path") == 0
        || strcmp(name, "mailbox_command") == 0;
}

/* cfg_resolve - expanded value of e (memoised), NULL with *why on error */
static const char *cfg_resolve(struct cfg *c, struct pent *e, int depth,
                               buf_t *why)
{
    if (e->cache)
        return e->cache;
    if (e->busy) {
        buf_printf(why, "$name expansion loop involving $%s", e->name);
        return NULL;
    }
    if (depth > CFG_MAX_DEPTH) {
        buf_printf(why, "$name expansion nested more than %d levels deep",
                   CFG_MAX_DEPTH);
        return NULL;
    }
    buf_t out;
    buf_init(&out, CFG_MAX_VALUE);
    e->busy = true;
    const char *raw = cfg_raw(c, e);
    int rc = raw == NULL ? cfg_computed(c, e, &out, depth, why)
           : cfg_literal(e->name) ? buf_puts(&out, raw)
           : cfg_expand(c, raw, &out, depth, why);
    e->busy = false;
    if (rc == 0)
        e->cache = buf_strdup(&out);
    buf_free(&out);
    return e->cache;
}

/* --- parsing main.conf ----------------------------------------------------- */
struct cfg_parse {
    struct cfg *c;
    const char *path;
    buf_t *err;
};

static void cfg_warn(buf_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cfg_warn(buf_t *err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warning("%s", msg);
    if (err) {
        buf_puts(err, msg);
        buf_putc(err, '\n');
    }
}

/* cfg_transport_param - <transport>_destination_concurrency_limit and
   the like, which qmgr looks up for any transport name (routing and
   scheduling, issue 7): known, though not in the table */
static bool cfg_transport_param(const char *name)
{
    static const char *const suffixes[] = {
        "_destination_concurrency_limit", "_destination_recipient_limit",
        "_initial_destination_concurrency",
        "_destination_concurrency_failed_cohort_limit",
    };
    size_t len = strlen(name);

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t slen = strlen(suffixes[i]);

        if (len > slen && strcmp(name + len - slen, suffixes[i]) == 0)
            return true;
    }
    return false;
}

/* cfg_entry_line - one logical "name = value" line */
static int cfg_entry_line(struct cfg_parse *ps, char *line, int lineno)
{
    char *p = line;
    while (cfg_name_char((unsigned char)*p))
        p++;
    char *name_end = p;
    while (*p == ' ' || *p == '\t')
        p++;
    if (name_end == line || *p != '=') {
        if (ps->err)
            buf_printf(ps->err, "%s:%d: %s", ps->path, lineno,
                       name_end == line || (p == name_end && *p)
                           ? "bad parameter name"
                           : "missing '=' after parameter name");
        return -1;
    }
    *name_end = '\0';
    char *value = str_trim(p + 1);
    struct pent *e = cfg_lookup(ps->c, line, strlen(line));
    if ((e == NULL || e->def == NULL) && !cfg_transport_param(line))
        cfg_warn(ps->err, "%s:%d: unknown parameter: %s", ps->path, lineno,
                 line);
    e = cfg_entry(ps->c, line);
    free(e->file_val);
    e->file_val = xstrdup(value);
    e->file_line = lineno;
    return 0;
}

/* cfg_parse_text - split text into logical lines and record each entry */
static int cfg_parse_text(struct cfg_parse *ps, const char *text, size_t len)
{
    logline_t ll;
    const char *error;
    char *entry;
    long lineno;
    int rc;

    logline_init(&ll, text, len, 0, 0);
    while ((rc = logline_next(&ll, &entry, &lineno, &error)) > 0)
        if (cfg_entry_line(ps, entry, (int)lineno) < 0)
            break;
    if (rc < 0 && ps->err)
        buf_printf(ps->err, "%s:%ld: %s", ps->path, lineno, error);
    logline_free(&ll);
    return rc != 0 ? -1 : 0;
}

/* cfg_read_file - whole file into memory; *missing set on ENOENT */
static int cfg_read_file(const char *path, buf_t *text, bool *missing,
                         buf_t *err)
{
    *missing = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return 0;
        }
        buf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fd_regular_or_close(fd, NULL) < 0) {
        buf_printf(err, "%s: not a regular file", path);
        return -1;
    }
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            buf_printf(err, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        if ((long)(text->len + (size_t)r) > CFG_MAX_FILE
            || buf_append(text, chunk, (size_t)r) < 0) {
            buf_printf(err, "%s: file too large (over %ld bytes)", path,
                       CFG_MAX_FILE);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* --- overrides ------------------------------------------------------------ */
int config_add_override(const char *name_eq_value)
{
    const char *eq = name_eq_value ? strchr(name_eq_value, '=') : NULL;
    if (eq == NULL)
        return -1;
    char *name = xstrndup(name_eq_value, (size_t)(eq - name_eq_value));
    char *n = str_trim(name);
    bool ok = *n != '\0';
    for (const char *q = n; *q; q++)
        ok = ok && cfg_name_char((unsigned char)*q);
    if (ok) {
        char *value = xstrdup(eq + 1);
        buf_t b = BUF_INIT;
        buf_printf(&b, "%s=%s", n, str_trim(value));
        free(value);
        cfg_overrides = xrealloc(cfg_overrides,
                                 (cfg_noverrides + 1) * sizeof(char *));
        cfg_overrides[cfg_noverrides++] = buf_strdup(&b);
        buf_free(&b);
    }
    free(name);
    return ok ? 0 : -1;
}

static void cfg_apply_overrides(struct cfg *c, buf_t *err)
{
    for (size_t i = 0; i < cfg_noverrides; i++) {
        char *eq = strchr(cfg_overrides[i], '=');
        char *name = xstrndup(cfg_overrides[i], (size_t)(eq - cfg_overrides[i]));
        struct pent *e = cfg_lookup(c, name, strlen(name));
        if ((e == NULL || e->def == NULL) && !cfg_transport_param(name))
            cfg_warn(err, "-o %s: unknown parameter: %s", cfg_overrides[i],
                     name);
        e = cfg_entry(c, name);
        free(e->ovr_val);
        e->ovr_val = xstrdup(eq + 1);
        free(name);
    }
}

/* --- conversion and commit ------------------------------------------------ */
union pval {
    char *s;
    long l;
    bool b;
};

/* cfg_where - "path:line: " / "-o name=...: " prefix for a value's origin */
static void cfg_where(struct cfg *c, struct pent *e, const char *path,
                      buf_t *err)
{
    if (!c->defaults_only && e->ovr_val)
        buf_printf(err, "-o %s=%s: ", e->name, e->ovr_val);
    else if (!c->defaults_only && e->file_val)
        buf_printf(err, "%s:%d: ", path, e->file_line);
    else
        buf_printf(err, "default for %s: ", e->name);
}

static bool cfg_check_enum(const struct param_def *d, const char *v)
{
    if (strcmp(d->name, "smtpd_forbid_bare_newline") == 0)
        return strcmp(v, "normalize") == 0 || strcmp(v, "reject") == 0
               || strcmp(v, "no") == 0;
    if (strcmp(d->name, "smtpd_tls_ciphers") == 0
        || strcmp(d->name, "smtpd_tls_mandatory_ciphers") == 0)
        return strcmp(v, "medium") == 0 || strcmp(v, "high") == 0;
    if (strcmp(d->name, "pop3d_tls_ciphers") == 0)
        return strcmp(v, "medium") == 0 || strcmp(v, "high") == 0;
    if (strcmp(d->name, "smtpd_tls_security_level") == 0
        || strcmp(d->name, "pop3d_tls_security_level") == 0)
        return strcmp(v, "none") == 0 || strcmp(v, "may") == 0
               || strcmp(v, "encrypt") == 0;
    return true;
}

static const char *cfg_type_name(enum param_type t)
{
    switch (t) {
    case PARAM_INT: return "integer";
    case PARAM_TIME: return "time (s, m, h, d, w)";
    case PARAM_SIZE: return "size (bytes, k, m, g)";
    case PARAM_BOOL: return "yes or no";
    default: return "string";
    }
}

/* cfg_convert - typed value of table entry e; -1 with message in err */
static int cfg_convert(struct cfg *c, struct pent *e, const char *path,
                       union pval *out, buf_t *err)
{
    const struct param_def *d = e->def;
    buf_t why = BUF_INIT;
    const char *v = cfg_resolve(c, e, 0, &why);
    int rc = 0;
    if (v == NULL) {
        cfg_where(c, e, path, err);
        buf_printf(err, "%s: %s", e->name, buf_str(&why));
        buf_free(&why);
        return -1;
    }
    buf_free(&why);
    switch (d->type) {
    case PARAM_STR:
        rc = cfg_check_enum(d, v) ? 0 : -1;
        break;
    case PARAM_INT:
        rc = parse_long(v, d->min, d->max, &out->l);
        break;
    case PARAM_TIME:
        rc = parse_time(v, &out->l);
        break;
    case PARAM_SIZE:
        rc = parse_size(v, &out->l);
        break;
    case PARAM_BOOL:
        rc = parse_bool(v, &out->b);
        break;
    }
    if (rc == 0 && (d->type == PARAM_TIME || d->type == PARAM_SIZE))
        rc = out->l >= d->min && out->l <= d->max ? 0 : -1;
    if (rc < 0) {
        cfg_where(c, e, path, err);
        buf_printf(err, "bad value for %s: \"%.200s\"", e->name, v);
        if (d->type == PARAM_STR)
            buf_printf(err, " (%s)", d->desc);
        else if (d->type != PARAM_BOOL)
            buf_printf(err, " (expected %s from %ld to %ld)",
                       cfg_type_name(d->type), d->min, d->max);
        else
            buf_printf(err, " (expected %s)", cfg_type_name(d->type));
        return -1;
    }
    if (d->type == PARAM_STR)
        out->s = xstrdup(v);
    return 0;
}

/* cfg_commit - convert every table entry; on success install c */
static int cfg_commit(struct cfg *c, const char *path, buf_t *err)
{
    union pval *vals = xcalloc(param_count, sizeof(*vals));
    buf_t scratch = BUF_INIT;
    buf_t *e = err ? err : &scratch;
    size_t i;
    for (i = 0; i < param_count; i++)
        if (cfg_convert(c, &c->tab[i], path, &vals[i], e) < 0)
            break;
    if (i < param_count) {
        for (size_t j = 0; j < i; j++)
            if (param_table[j].type == PARAM_STR)
                free(vals[j].s);
        free(vals);
        buf_free(&scratch);
        cfg_destroy(c);
        return -1;
    }
    for (i = 0; i < param_count; i++) {
        const struct param_def *d = &param_table[i];
        if (d->type == PARAM_STR) {
            free(*(char **)d->var);
            *(char **)d->var = vals[i].s;
        } else if (d->type == PARAM_BOOL) {
            *(bool *)d->var = vals[i].b;
        } else {
            *(long *)d->var = vals[i].l;
        }
    }
    free(vals);
    buf_free(&scratch);
    cfg_destroy(cfg_cur);
    cfg_cur = c;
    return 0;
}

/* --- public interface ----------------------------------------------------- */
void config_init_defaults(void)
{
    buf_t err = BUF_INIT;
    if (cfg_commit(cfg_new(true), "(defaults)", &err) < 0)
        log_panic("built-in defaults do not convert: %s", buf_str(&err));
    buf_free(&err);
}

/* config_load_text - parse text as main.conf (named path in messages) */
int config_load_text(const char *text, size_t len, const char *path,
                     const char *config_dir, buf_t *err)
{
    struct cfg *c = cfg_new(false);
    if (config_dir) {   /* used as a value, so protect '$' from expansion */
        buf_t d = BUF_INIT;
        for (const char *q = config_dir; *q; q++)
            buf_puts(&d, *q == '$' ? "$$" : (char[2]){ *q, 0 });
        c->config_dir = buf_strdup(&d);
        buf_free(&d);
    }
    struct cfg_parse ps = { c, path, err };
    if (text && cfg_parse_text(&ps, text, len) < 0) {
        cfg_destroy(c);
        return -1;
    }
    cfg_apply_overrides(c, err);
    return cfg_commit(c, path, err);
}

int config_load(const char *config_dir, buf_t *err)
{
    buf_t scratch = BUF_INIT;
    buf_t *e = err ? err : &scratch;
    if (config_dir == NULL)
        config_dir = config_directory_default(NULL);
    struct stat st;
    if (stat(config_dir, &st) < 0) {
        buf_printf(e, "config directory %s: %s", config_dir, strerror(errno));
        buf_free(&scratch);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        buf_printf(e, "config directory %s: not a directory", config_dir);
        buf_free(&scratch);
        return -1;
    }
    buf_t path = BUF_INIT, text = BUF_INIT;
    bool missing;
    buf_printf(&path, "%s/main.conf", config_dir);
    int rc = cfg_read_file(buf_str(&path), &text, &missing, e);
    if (rc == 0)
        rc = config_load_text(missing ? NULL : buf_str(&text), text.len,
                              buf_str(&path), config_dir, err);
    buf_free(&path);
    buf_free(&text);
    buf_free(&scratch);
    return rc;
}

static const char *cfg_value_in(struct cfg *c, const char *name)
{
    struct pent *e = cfg_lookup(c, name, strlen(name));
    if (e == NULL || e->def == NULL)
        return NULL;
    buf_t why = BUF_INIT;
    const char *v = cfg_resolve(c, e, 0, &why);
    buf_free(&why);
    return v;
}

const char *config_value(const char *name)
{
    if (cfg_cur == NULL)
        config_init_defaults();
    return cfg_value_in(cfg_cur, name);
}

/* config_value_any - also names outside the table (main.conf, -o) */
const char *config_value_any(const char *name)
{
    struct pent *e;
    buf_t why = BUF_INIT;
    const char *v;

    if (cfg_cur == NULL)
        config_init_defaults();
    e = cfg_lookup(cfg_cur, name, strlen(name));
    if (e == NULL)
        return NULL;
    if (e->def == NULL && (cfg_cur->defaults_only
                           || (e->file_val == NULL && e->ovr_val == NULL)))
        return NULL;
    v = cfg_resolve(cfg_cur, e, 0, &why);
    buf_free(&why);
    return v;
}

const char *config_file_value(const char *name)
{
    if (cfg_cur == NULL || cfg_cur->defaults_only)
        return NULL;
    struct pent *e = cfg_lookup(cfg_cur, name, strlen(name));
    return e && e->def ? e->file_val : NULL;
}

const char *config_default_value(const char *name)
{
    if (cfg_dflt == NULL)
        cfg_dflt = cfg_new(true);
    return cfg_value_in(cfg_dflt, name);
}

const char *config_directory_default(const char *from_cmdline)
{
    if (from_cmdline && *from_cmdline)
        return from_cmdline;
    const char *env = getenv("MAIL_CONFIG");
    if (env && *env)
        return env;
    return TERN_DEFAULT_CONFIG_DIR;
}

const char *config_doc_default(const struct param_def *p)
{
    if (strcmp(p->name, "config_directory") == 0)
        return TERN_DOC_CONFIG_DIR;
    if (strcmp(p->name, "daemon_directory") == 0)
        return TERN_DOC_DAEMON_DIR;
    if (strcmp(p->name, "command_directory") == 0)
        return TERN_DOC_COMMAND_DIR;
    return p->defval;
}

bool config_dir_allowed_setgid(const char *cdir)
{
    buf_t err = BUF_INIT;
    bool listed = false;

    if (cdir == NULL || strcmp(cdir, TERN_DEFAULT_CONFIG_DIR) == 0
        || getegid() == getgid() || getuid() == 0)
        return true;
    /* no default main.conf: nothing is listed */
    if (config_load(TERN_DEFAULT_CONFIG_DIR, &err) == 0) {
        char **v;
        size_t n = str_split_list(var_alternate_config_directories, &v);

        for (size_t i = 0; i < n && !listed; i++)
            listed = strcmp(v[i], cdir) == 0;
        strv_free(v, n);
        config_free();
    }
    buf_free(&err);
    return listed;
}

void config_free(void)
{
    cfg_destroy(cfg_cur);
    cfg_cur = NULL;
    cfg_destroy(cfg_dflt);
    cfg_dflt = NULL;
    for (size_t i = 0; i < cfg_noverrides; i++)
        free(cfg_overrides[i]);
    free(cfg_overrides);
    cfg_overrides = NULL;
    cfg_noverrides = 0;
    for (size_t i = 0; i < param_count; i++) {
        const struct param_def *d = &param_table[i];
        if (d->type == PARAM_STR) {
            free(*(char **)d->var);
            *(char **)d->var = NULL;
        }
    }
}

void config_apply_logging(const char *program)
{
    log_init(var_syslog_name, program);
    if (var_syslog_facility && *var_syslog_facility
        && log_set_facility(var_syslog_facility) < 0)
        log_warning("unknown syslog_facility: %s", var_syslog_facility);
    if (var_maillog_file && log_set_file(var_maillog_file) < 0)
        log_warning("cannot open maillog_file %s: %s", var_maillog_file,
                    strerror(errno));
}

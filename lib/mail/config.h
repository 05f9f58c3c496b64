/*
 * config - main.conf: the one table of every parameter (name, type,
 * default, description) and the parser that fills the typed var_*
 * variables from it. The same table drives ternconf -d/-n and main.conf(5).
 *
 * Syntax (as Postfix main.cf): "name = value"; a line that starts with
 * whitespace continues the previous one; '#' at line start is a comment;
 * "$name", "${name}" and "$(name)" expand to another parameter's value
 * (recursively, with loop detection); "$$" is a literal '$'. Unknown names
 * are warned about with file:line (never silently ignored); malformed
 * lines and bad values are errors with file:line.
 *
 * Where the directory comes from: -c DIR on the command line, else the
 * MAIL_CONFIG environment variable, else TERN_DEFAULT_CONFIG_DIR.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

/* Installation paths: CMake passes the configured prefix's (so that
 * `ternconf -d` shows where this build is installed); the values below
 * are those of an installation in /usr, which main.conf(5) documents. */
#define TERN_DOC_CONFIG_DIR "/etc/tern"
#define TERN_DOC_DAEMON_DIR "/usr/libexec/tern"
#define TERN_DOC_COMMAND_DIR "/usr/sbin"
#ifndef TERN_DEFAULT_CONFIG_DIR
#define TERN_DEFAULT_CONFIG_DIR TERN_DOC_CONFIG_DIR
#endif
#ifndef TERN_DEFAULT_DAEMON_DIR
#define TERN_DEFAULT_DAEMON_DIR TERN_DOC_DAEMON_DIR
#endif
#ifndef TERN_DEFAULT_COMMAND_DIR
#define TERN_DEFAULT_COMMAND_DIR TERN_DOC_COMMAND_DIR
#endif

enum param_type {
    PARAM_STR,   /* char * */
    PARAM_INT,   /* long, bounds min..max */
    PARAM_BOOL,  /* bool */
    PARAM_TIME,  /* long seconds; value may carry s/m/h/d/w suffix */
    PARAM_SIZE,  /* long bytes */
};

struct param_def {
    const char *name;
    enum param_type type;
    const char *defval;     /* may contain $name; NULL = computed (see .c) */
    const char *desc;       /* one line, for ternconf and main.conf(5) */
    void *var;              /* char **, long *, or bool * */
    long min, max;          /* for INT/TIME/SIZE */
};

extern const struct param_def param_table[];
extern const size_t param_count;

/* --- the variables (one per parameter; names as in Postfix) -------------- */
extern char *var_config_directory;
extern char *var_queue_directory;
extern char *var_daemon_directory;
extern char *var_command_directory;
extern char *var_data_directory;
extern char *var_mail_owner;
extern char *var_setgid_group;
/* queue tools (issue 9) */
extern char *var_authorized_mailq_users;
extern char *var_authorized_flush_users;
extern char *var_alternate_config_directories;
extern char *var_local_login_sender_maps;
extern char *var_empty_address_local_login_sender_maps_lookup_key;
extern char *var_syslog_name;
extern char *var_syslog_facility;
extern char *var_maillog_file;
extern char *var_mail_name;
extern char *var_myhostname;
extern char *var_mydomain;
extern char *var_myorigin;
extern bool var_append_at_myorigin;
extern char *var_2bounce_notice_recipient;
extern char *var_mydestination;
extern char *var_mynetworks;
extern char *var_inet_interfaces;
extern char *var_relay_domains;
extern char *var_relayhost;
extern char *var_smtpd_banner;
extern char *var_smtpd_overload_reply; /* read by master: <command>_overload_reply */
extern char *var_smtpd_forbid_bare_newline;   /* normalize | reject | no */
extern char *var_alias_maps;
extern char *var_alias_database;
extern char *var_virtual_user_maps;
extern char *var_virtual_password_maps;
extern bool var_auth_system_users;
extern char *var_home_mailbox;
extern char *var_recipient_delimiter;
/* local: aliases, commands, forward (issue 7) */
extern char *var_allow_mail_to_commands;
extern char *var_allow_mail_to_files;
extern char *var_default_privs;
extern char *var_forward_path;
extern long var_command_time_limit;
extern char *var_local_command_shell;
extern char *var_mailbox_command;
extern char *var_prepend_delivered_header;
extern bool var_owner_request_special;
extern long var_message_size_limit;
extern long var_mailbox_size_limit;
/* local: mailboxes (issue 7) */
extern char *var_mail_spool_directory;
extern char *var_mailbox_delivery_lock;
extern long var_stale_lock_time;
extern long var_deliver_lock_attempts;
extern long var_deliver_lock_delay;
extern long var_line_length_limit;
extern long var_smtpd_recipient_limit;
extern long var_smtpd_timeout;
extern long var_smtpd_client_limit;
extern long var_smtpd_hard_error_limit;
extern long var_smtpd_junk_command_limit;
extern long var_smtpd_command_limit;
extern long var_smtpd_soft_error_limit;
extern long var_smtpd_error_sleep_time;
extern bool var_smtpd_helo_required;
extern bool var_smtpd_forbid_unauth_pipelining;
extern bool var_smtpd_per_request_deadline;
extern long var_smtpd_min_data_rate;
extern long var_smtpd_client_connection_count_limit;
extern long var_smtpd_client_connection_rate_limit;
extern char *var_smtpd_client_event_limit_exceptions;
extern char *var_smtpd_tls_cert_file;
extern char *var_smtpd_tls_key_file;
extern char *var_smtpd_tls_security_level;   /* none | may | encrypt */
extern bool var_smtpd_tls_wrappermode;
/* SMTP AUTH (smtpd_auth.c) */
extern bool var_smtpd_sasl_auth_enable;
extern bool var_smtpd_tls_auth_only;
extern bool var_smtpd_sasl_auth_required;
extern long var_smtpd_sasl_failure_limit;
extern bool var_smtpd_sasl_authenticated_header;
extern long var_smtpd_client_auth_rate_limit;
extern char *var_smtpd_client_restrictions;      /* mail/restriction.h */
extern char *var_smtpd_helo_restrictions;
extern char *var_smtpd_sender_restrictions;
extern char *var_smtpd_relay_restrictions;
extern char *var_smtpd_recipient_restrictions;
extern char *var_smtpd_data_restrictions;
extern char *var_smtpd_end_of_data_restrictions;
extern char *var_smtpd_sender_login_maps;
extern bool var_smtpd_reject_unlisted_recipient;
extern char *var_smtpd_tls_protocols;
extern char *var_smtpd_tls_mandatory_protocols;
extern char *var_smtpd_tls_ciphers;             /* medium | high */
extern char *var_smtpd_tls_mandatory_ciphers;   /* medium | high */
extern char *var_tls_high_cipherlist;
extern char *var_tls_medium_cipherlist;
extern char *var_smtpd_tls_chain_files;
extern char *var_tls_server_sni_maps;
extern long var_smtpd_tls_session_cache_timeout;
extern bool var_smtpd_tls_ask_ccert;
extern bool var_smtpd_tls_req_ccert;
extern char *var_smtpd_tls_CAfile;
/* POP3 (pop3-login, pop3d) */
extern char *var_login_user;
extern char *var_pop3d_banner;
extern long var_pop3d_timeout;
extern long var_pop3d_client_limit;
extern long var_pop3d_hard_error_limit;
extern long var_pop3d_auth_failure_delay;
extern long var_pop3d_sasl_failure_limit;
extern bool var_pop3d_tls_auth_only;
extern char *var_pop3d_tls_security_level;    /* none | may | encrypt */
extern bool var_pop3d_tls_wrappermode;
extern char *var_pop3d_tls_cert_file;
extern char *var_pop3d_tls_key_file;
extern char *var_pop3d_tls_chain_files;
extern char *var_pop3d_tls_protocols;
extern char *var_pop3d_tls_ciphers;           /* medium | high */
extern bool var_pop3d_mark_retrieved_seen;
extern bool var_smtpd_peername_lookup;
extern long var_smtpd_peername_lookup_timeout;
extern char *var_dns_forwarders;          /* "" = /etc/resolv.conf */
extern char *var_dns_hosts_file;          /* "" = none */
extern long var_anvil_rate_time_unit;
extern long var_queue_run_delay;
extern long var_minimal_backoff_time;
extern long var_maximal_backoff_time;
extern long var_maximal_queue_lifetime;
extern long var_delay_logging_resolution_limit;
extern long var_bounce_queue_lifetime;
/* notifications (issue 7) */
extern long var_delay_warning_time;       /* 0 = no delay warnings */
extern long var_bounce_size_limit;
extern long var_default_destination_concurrency_limit;
extern long var_local_destination_concurrency_limit;
extern long var_local_time_limit;
extern long var_duplicate_filter_limit;
/* virtual aliases, queue_minfree (issue 7) */
extern char *var_virtual_alias_maps;
extern char *var_virtual_alias_domains;
extern long var_virtual_alias_recursion_limit;
extern long var_virtual_alias_expansion_limit;
extern char *var_propagate_unmatched_extensions;
extern long var_queue_minfree;
extern long var_qmgr_message_active_limit;
/* routing and scheduling (issue 7) */
extern char *var_transport_maps;
extern char *var_sender_dependent_relayhost_maps;
extern char *var_empty_address_relayhost_maps_lookup_key;
extern char *var_local_transport;
extern char *var_relay_transport;
extern char *var_default_transport;
extern long var_default_destination_recipient_limit;
extern long var_local_destination_recipient_limit;
extern long var_initial_destination_concurrency;
extern long var_default_destination_concurrency_failed_cohort_limit;
extern long var_qmgr_message_recipient_limit;
extern long var_default_process_limit;
extern long var_max_use;
extern long var_max_idle;
extern long var_ipc_timeout;
extern long var_daemon_timeout;
/* proxymap (chroot) */
extern char *var_proxy_read_maps;
extern long var_proxymap_timeout;
extern long var_service_throttle_time;
/* issue 8, bench-master */
extern long var_event_server_process_min;
extern long var_local_recursion_limit;   /* alias expansion depth */
/* content inspection (cleanup) */
extern char *var_header_checks;
extern char *var_body_checks;
extern long var_body_checks_size_limit;
extern long var_header_size_limit;
/* smtp client (issue 7) */
extern char *var_smtp_helo_name;
extern char *var_known_tcp_ports;
extern char *var_inet_protocols;
extern char *var_smtp_address_preference;
extern long var_smtp_mx_address_limit;
extern long var_smtp_dns_timeout;
extern long var_smtp_connect_timeout;
extern long var_smtp_helo_timeout;
extern long var_smtp_starttls_timeout;
extern long var_smtp_mail_timeout;
extern long var_smtp_rcpt_timeout;
extern long var_smtp_data_init_timeout;
extern long var_smtp_data_xfer_timeout;
extern long var_smtp_data_done_timeout;
extern long var_smtp_quit_timeout;
extern long var_smtp_connection_cache_time_limit;
extern long var_smtp_connection_reuse_time_limit;
extern char *var_smtp_tls_security_level;
extern char *var_smtp_tls_CAfile;
extern char *var_smtp_tls_CApath;
extern char *var_smtp_tls_servername;
extern char *var_smtp_tls_protocols;
extern char *var_smtp_tls_mandatory_protocols;
extern char *var_smtp_tls_ciphers;
extern char *var_smtp_tls_policy_maps;

/* Set every variable to its default (expanding $name in defaults). */
void config_init_defaults(void);

/*
 * Load DIR/main.conf over the defaults, apply overrides (master.conf -o),
 * expand, convert to typed values. Returns 0; -1 with a message
 * ("main.conf:12: bad value for message_size_limit: ...") in *err.
 * Warnings (unknown parameter) are logged and also appended to *err
 * when err is non-NULL, one per line.
 */
int config_load(const char *config_dir, buf_t *err);

/*
 * Same as config_load() from text[0..len) (may hold NUL bytes, need not be
 * NUL-terminated; NULL = no file). path names the text in messages;
 * config_dir, if not NULL, becomes the effective config_directory.
 * Used by config_load() itself, by tests and by the fuzzer.
 */
int config_load_text(const char *text, size_t len, const char *path,
                     const char *config_dir, buf_t *err);

/* Record "-o name=value" before config_load(); 0 ok, -1 malformed. */
int config_add_override(const char *name_eq_value);

/* Effective value as a string after expansion, or NULL if unknown name. */
const char *config_value(const char *name);
/* As config_value(), and also for names outside the table that main.conf
   or -o set (per-transport parameters such as
   smtp_destination_concurrency_limit); NULL when unknown or unset. */
const char *config_value_any(const char *name);
/* The value as written in main.conf (unexpanded), or NULL if defaulted. */
const char *config_file_value(const char *name);
/* The default value (expanded), or NULL if unknown name. */
const char *config_default_value(const char *name);
const struct param_def *config_find(const char *name);

/* The config directory per -c / MAIL_CONFIG / default. */
const char *config_directory_default(const char *from_cmdline);
/* config_doc_default - p's default as main.conf(5) shows it: the /usr
 * installation's for the paths that follow the prefix, whatever this build's */
const char *config_doc_default(const struct param_def *p);

/* Point lib/log at the configured syslog_name (ident "$syslog_name/
   program"), syslog_facility and maillog_file; problems are warnings. */
void config_apply_logging(const char *program);

/* May a set-gid program (postdrop, ternqueue) load its configuration
   from cdir? Yes for the default directory (or NULL), for root, and when
   the program does not run set-gid (a developer instance); else only
   when the default main.conf lists cdir in $alternate_config_directories
   (a missing default main.conf lists nothing). Leaves no configuration
   loaded. */
bool config_dir_allowed_setgid(const char *cdir);

/* Free everything (for leak-clean unit tests). */
void config_free(void);

#endif

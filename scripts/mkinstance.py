#!/usr/bin/env python3
"""mkinstance - create a self-contained Tern instance in a directory.

Used by `make run` (./run) and by the integration tests (a temp dir).
Layout:
    DIR/etc/main.conf, master.conf, aliases(.lmdb), users(.lmdb),
                      passwords(.lmdb) (mode 0600: the auth service's table)
    DIR/USER.password the random password of each user (mode 0600)
    DIR/spool/        queue_directory (master creates the subdirectories)
    DIR/data/         data_directory
    DIR/home/USER/    home directories of the demo/test users (Maildir/)
    DIR/log/maillog   maillog_file
    DIR/etc/smtpd.pem, smtpd.key   self-signed certificate (with tls=True)

With tls=True (make run) smtpd offers STARTTLS (smtpd_tls_security_level
= may), and the ports "submission" (587 style: TLS required before mail)
and "smtps" (465 style: implicit TLS) get their own services; both offer
SMTP AUTH and refuse mail until it succeeded (log in as USER or
USER@localhost with the password in DIR/USER.password).

Run as root, the instance is privileged the way production is: daemons
drop to the `tern` user, and mailboxes belong to the `ternvmail` user
(created here if missing, like Dovecot's vmail). Run as a normal user,
every daemon runs as that user (the developer instance).
"""
import argparse
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import sys

SYSTEM_USERS = ("tern", "ternlogin", "ternvmail")
SYSTEM_GROUPS = ("ternpostdrop",)


def ensure_system_accounts():
    """Create the daemon accounts (root only); idempotent."""
    for g in SYSTEM_GROUPS:
        try:
            grp.getgrnam(g)
        except KeyError:
            subprocess.run(["groupadd", "--system", g], check=True)
    for u in SYSTEM_USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", u], check=True)


def mailbox_owner():
    """uid/gid that owns the demo mailboxes."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("ternvmail")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_certificate(etc, hostname):
    """A self-signed EC certificate and its key (0600) in etc, made with
    the openssl command; returns (cert, key), or None without openssl."""
    cert = os.path.join(etc, "smtpd.pem")
    key = os.path.join(etc, "smtpd.key")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        print("mkinstance: no openssl command: TLS is not configured",
              file=sys.stderr)
        return None
    old = os.umask(0o077)
    try:
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "3650",
                        "-subj", "/CN=" + hostname,
                        "-addext", "subjectAltName=DNS:" + hostname],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        os.umask(old)
    os.chmod(cert, 0o644)
    return cert, key


def create(directory, build, ports, main_extra=None, services_extra="",
           users=("demo",), aliases=None, hostname="localhost.localdomain",
           tls=False, chroot=None):
    """Create the instance; returns the config directory path. ports:
    {"smtp": N} and, with tls, optionally "submission" and "smtps";
    "pop3" (STLS with tls) and, with tls, "pop3s" (implicit TLS).
    chroot: smtpd and qmgr chrooted (None: when running as root)."""
    d = os.path.abspath(directory)
    build = os.path.abspath(build)
    root = os.geteuid() == 0
    if root:
        ensure_system_accounts()
    for sub in ("etc", "spool", "data", "home", "log"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    # daemons that dropped privileges must still reach files below here
    for p in (d, os.path.join(d, "etc"), os.path.join(d, "home")):
        os.chmod(p, 0o755)
    owner = "tern" if root else pwd.getpwuid(os.getuid()).pw_name
    etc = os.path.join(d, "etc")
    main = {
        "queue_directory": os.path.join(d, "spool"),
        "data_directory": os.path.join(d, "data"),
        "daemon_directory": os.path.join(build, "libexec"),
        "command_directory": os.path.join(build, "sbin"),
        "mail_owner": owner,
        "maillog_file": os.path.join(d, "log", "maillog"),
        "myhostname": hostname,
        "alias_maps": "lmdb:" + os.path.join(etc, "aliases"),
        "alias_database": "lmdb:" + os.path.join(etc, "aliases"),
        "virtual_user_maps": "lmdb:" + os.path.join(etc, "users"),
        "virtual_password_maps": "lmdb:" + os.path.join(etc, "passwords"),
        # no client name lookups against the machine's resolver: tests
        # that want them run their own DNS server (test_smtpd_dns.py)
        "smtpd_peername_lookup": "no",
        # nor MX lookups by the smtp client: a resolver that is not there
        # (loopback, the discard port) makes mail to other domains wait
        # in deferred/ instead of reaching outside DNS; tests that deliver
        # remotely pass their own dnsmasq (tests/integration/test_smtp.py)
        "dns_forwarders": "127.0.0.1@9",
        "dns_hosts_file": "",
        "smtp_dns_timeout": "3s",
    }
    cert = make_certificate(etc, hostname) if tls else None
    if cert:
        main["smtpd_tls_cert_file"] = cert[0]
        main["smtpd_tls_key_file"] = cert[1]
        main["smtpd_tls_security_level"] = "may"
    elif ports.get("pop3"):
        main["pop3d_tls_security_level"] = "none"
    main.update(main_extra or {})
    write(os.path.join(etc, "main.conf"),
          "# Tern instance created by scripts/mkinstance.py\n" +
          "".join("%s = %s\n" % kv for kv in main.items()))
    svc = ["# service type private unpriv chroot wakeup maxproc command + args"]
    # smtpd and qmgr run chrooted into the spool, as on Debian's Postfix;
    # only root can chroot, so a developer instance says n (master
    # refuses chroot=y when it is not root)
    jail = "y" if (root if chroot is None else chroot) else "n"
    smtp = ports.get("smtp")
    if smtp:
        svc.append("127.0.0.1:%d inet n - %s - - smtpd" % (smtp, jail))
    if cert and ports.get("submission"):
        svc.append("127.0.0.1:%d inet n - %s - - smtpd"
                   " -o smtpd_tls_security_level=encrypt"
                   " -o smtpd_sasl_auth_enable=yes"
                   " -o smtpd_sasl_auth_required=yes"
                   % (ports["submission"], jail))
    if cert and ports.get("smtps"):
        # master's overload reply would be plaintext: close instead
        svc.append("127.0.0.1:%d inet n - %s - - smtpd"
                   " -o smtpd_tls_wrappermode=yes -o smtpd_overload_reply="
                   " -o smtpd_sasl_auth_enable=yes"
                   " -o smtpd_sasl_auth_required=yes"
                   % (ports["smtps"], jail))
    # POP3: pop3-login (pre-auth, as ternlogin in its own chroot, the
    # spool's login/) hands logged-in clients to pop3d (as the user);
    # both reach auth and each other only through login/
    pop3, pop3s = ports.get("pop3"), ports.get("pop3s") if cert else None
    if pop3:
        svc.append("127.0.0.1:%d inet n - %s - - pop3-login" % (pop3, jail))
    if pop3s:
        svc.append("127.0.0.1:%d inet n - %s - - pop3-login"
                   " -o pop3d_tls_wrappermode=yes" % (pop3s, jail))
    if pop3 or pop3s:
        svc.append("login/auth unix - n n - - auth")
        svc.append("login/pop3d unix - n n - 1000 pop3d")
    svc.append("qmgr unix n - %s 300 1 qmgr" % jail)
    # local submissions (sendmail -> postdrop -> maildrop/)
    svc.append("pickup unix n - %s 60 1 pickup" % jail)
    svc.append("anvil unix - - n - 1 anvil")
    svc.append("local unix - n n - - local")
    svc.append("auth unix - n n - - auth")
    svc.append("proxymap unix - - n - - proxymap")
    # the outbound client, chrooted as smtpd and qmgr are
    svc.append("smtp unix - - %s - - smtp" % jail)
    svc.append("relay unix - - %s - - smtp" % jail)
    # queue listing for ternqueue/mailq, in public/ (set-gid ternqueue)
    svc.append("showq unix n - %s - - showq" % jail)
    write(os.path.join(etc, "master.conf"),
          "\n".join(svc) + "\n" + services_extra)

    uid, gid = mailbox_owner()
    lines = []
    for u in users:
        home = os.path.join(d, "home", u)
        os.makedirs(home, exist_ok=True)
        os.chown(home, uid, gid)
        lines.append("%s %d:%d:%s" % (u, uid, gid, home))
    write(os.path.join(etc, "users"), "\n".join(lines) + "\n")
    al = {"postmaster": users[0], "root": users[0], "mailer-daemon": users[0]}
    al.update(aliases or {})        # a None value removes a default alias
    write(os.path.join(etc, "aliases"),
          "".join("%s: %s\n" % kv for kv in al.items() if kv[1] is not None))
    env = dict(os.environ, MAIL_CONFIG=etc)
    sbin = os.path.join(build, "sbin")
    subprocess.run([os.path.join(sbin, "ternmap"), "-c", etc,
                    "lmdb:" + os.path.join(etc, "users")], check=True, env=env)
    subprocess.run([os.path.join(sbin, "newaliases"), "-c", etc],
                   check=True, env=env)
    for f in os.listdir(etc):
        # the password table stays private (ternuser creates it 0600, and
        # the LMDB inherits that)
        if f != "smtpd.key" and not f.startswith("passwords"):
            os.chmod(os.path.join(etc, f), 0o644)
    pwmaps = main["virtual_password_maps"]
    if pwmaps.startswith("lmdb:"):
        for u in users:
            pwfile = os.path.join(d, u + ".password")
            pw = read_password(pwfile) or secrets.token_urlsafe(12)
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pw + "\n")
            os.chmod(pwfile, 0o600)
            subprocess.run([os.path.join(sbin, "ternuser"), "-c", etc,
                            "passwd" if user_exists(pwmaps[5:], u) else "add",
                            u], input=pw + "\n", text=True, check=True,
                           env=env)
    return etc


def read_password(path):
    """The password an earlier run wrote (kept: make run again must not
    change the demo password), or None."""
    try:
        with open(path) as f:
            return f.readline().strip() or None
    except FileNotFoundError:
        return None


def user_exists(table, user):
    """Whether the password table source already has user (a re-run)."""
    try:
        with open(table) as f:
            return any(line.split(None, 1)[:1] == [user] for line in f)
    except FileNotFoundError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory")
    ap.add_argument("--build", required=True)
    ap.add_argument("--smtp-port", type=int, default=2525)
    ap.add_argument("--submission-port", type=int, default=0)
    ap.add_argument("--smtps-port", type=int, default=0)
    ap.add_argument("--pop3-port", type=int, default=0)
    ap.add_argument("--pop3s-port", type=int, default=0)
    ap.add_argument("--tls", action="store_true",
                    help="self-signed certificate, STARTTLS, submission, smtps")
    args = ap.parse_args()
    etc = create(args.directory, args.build,
                 {"smtp": args.smtp_port, "submission": args.submission_port,
                  "smtps": args.smtps_port, "pop3": args.pop3_port,
                  "pop3s": args.pop3s_port}, tls=args.tls)
    print(etc)


if __name__ == "__main__":
    sys.exit(main())

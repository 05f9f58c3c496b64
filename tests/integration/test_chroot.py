"""chroot=y for smtpd and qmgr (the default as root) with the proxymap
lookup service: each smtpd and qmgr process has the spool as its root
(/proc/PID/root), and still recipient validation (system users through
proxymap's getpwnam, virtual users and aliases through proxy: lookups
of the lmdb tables), TLS, AUTH on the submission port (the auth
service), the client's host name (PTR plus forward confirmation through
a dnsmasq of the test's own), delivery, logging and the local time zone
in Received: work. A user added to the virtual table after start is seen
(proxymap reopens the replaced lmdb file, which the jail could not);
proxymap refuses a table outside $proxy_read_maps; a hung proxymap
makes smtpd defer (451 4.3.0) and a new one takes over.

Root only: a normal user cannot chroot (master refuses chroot=y then).
"""
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import unittest

from ternlab import (BUILD, HAVE_DNSMASQ, WAIT, Dnsmasq, SmtpClient,
                     TernTestCase, wait_for, client_context)

ROOT = os.geteuid() == 0
HAVE_OPENSSL = shutil.which("openssl") is not None
KOLKATA = "/usr/share/zoneinfo/Asia/Kolkata"


def attr_encode(pairs):
    out = b""
    for name, value in pairs:
        out += name.encode() + b"\0" + value.encode() + b"\0"
    return out + b"\0"


def attr_read(sock):
    """One attribute list from sock, as a dict."""
    data = b""
    while True:
        parts = data.split(b"\0")
        # complete when an empty name follows whole name/value pairs
        items = []
        i = 0
        while i + 1 < len(parts) and parts[i] != b"":
            items.append((parts[i].decode(), parts[i + 1].decode()))
            i += 2
        if i < len(parts) - 1 and parts[i] == b"":
            return dict(items)
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("proxymap closed the connection: %r" % data)
        data += chunk


def root_of(pid):
    return os.readlink("/proc/%d/root" % pid)


def settled_root_of(pid, want):
    """The root of pid once it is want, or what it is after WAIT: a
    process master has just forked (one smtpd per CPU is started on
    demand) is still in its start-up, before its chroot."""
    try:
        wait_for(lambda: root_of(pid) == want, WAIT, 0.05,
                 "pid %d chrooted" % pid)
    except AssertionError:
        pass
    return root_of(pid)


@unittest.skipUnless(ROOT, "skipped: needs root (chroot)")
@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class ChrootTest(TernTestCase):

    def setUp(self):
        # the time zone in Received: must survive the chroot (glibc reads
        # the zone file once; after the chroot it would not be there)
        self.old_tz = os.environ.get("TZ")
        if os.path.exists(KOLKATA):
            os.environ["TZ"] = "Asia/Kolkata"
        self.addCleanup(self.restore_tz)
        self.inst = self.instance(
            tls=True, aliases={"info": "demo"}, users=("demo", "other"),
            main={"smtpd_error_sleep_time": "0", "proxymap_timeout": "2s",
                  "smtpd_soft_error_limit": "100000",
                  "smtpd_hard_error_limit": "100000"})
        self.inst.start()
        self.spool = os.path.realpath(self.inst.spool)

    def restore_tz(self):
        if self.old_tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = self.old_tz

    def rcpt(self, addr, port=None):
        """RCPT TO reply (code, text) on a fresh session."""
        with smtplib.SMTP("127.0.0.1", port or self.inst.smtp_port,
                          "client.test", timeout=WAIT) as s:
            s.ehlo()
            s.mail("sender@example.org")
            code, text = s.rcpt(addr)
            return code, text.decode(errors="replace")

    def send(self, rcpt, subject, starttls=False):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, "client.test",
                          timeout=WAIT) as s:
            if starttls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s.starttls(context=ctx)
            s.sendmail("sender@example.org", [rcpt],
                       "From: sender@example.org\r\nTo: %s\r\nSubject: %s\r\n"
                       "\r\nbody\r\n" % (rcpt, subject))

    def test_daemons_are_jailed(self):
        with self.inst.smtp() as s:
            s.noop()
            smtpds = wait_for(lambda: self.inst.child_pids("smtpd"), WAIT,
                              what="smtpd")
            for pid in smtpds:
                self.assertEqual(settled_root_of(pid, self.spool), self.spool)
        qmgrs = wait_for(lambda: self.inst.child_pids("qmgr"), WAIT,
                         what="qmgr")
        for pid in qmgrs:
            self.assertEqual(settled_root_of(pid, self.spool), self.spool)
        # a lookup starts proxymap: outside the jail, as tern
        self.assertEqual(self.rcpt("demo@localhost")[0], 250)
        prox = wait_for(lambda: self.inst.child_pids("proxymap"), WAIT,
                        what="proxymap")
        tern = pwd.getpwnam("tern").pw_uid
        for pid in prox:
            self.assertEqual(root_of(pid), "/")
            self.assertEqual(os.stat("/proc/%d" % pid).st_uid, tern)

    def assertJailed(self, what):
        """Every smtpd of the instance (the one serving the open session
        among them) has the spool as its root."""
        pids = wait_for(lambda: self.inst.child_pids("smtpd"), WAIT,
                        what="smtpd")
        for pid in pids:
            self.assertEqual(settled_root_of(pid, self.spool), self.spool, what)

    def test_auth_on_submission(self):
        with open(os.path.join(self.inst.dir, "demo.password")) as f:
            pw = f.read().strip()
        with smtplib.SMTP("127.0.0.1", self.inst.submission_port,
                          "client.test", timeout=WAIT) as s:
            s.starttls(context=client_context())
            s.ehlo()
            self.assertIn("PLAIN", s.esmtp_features.get("auth", ""))
            self.assertJailed("smtpd during AUTH")
            # login() tries PLAIN first (LOGIN after it)
            s.login("demo", pw)
            self.assertJailed("smtpd after AUTH")
            refused = s.sendmail("demo@localhost", ["demo@localhost"],
                                 "From: demo@localhost\r\nTo: demo@localhost"
                                 "\r\nSubject: submitted\r\n\r\nbody\r\n")
            self.assertEqual(refused, {})
        msg = self.inst.wait_messages("demo", 1)[0]
        self.assertIn(b"Subject: submitted", msg)
        self.assertIn(b"with ESMTPSA", msg)
        self.assertLogHas(self.inst, "sasl_method=PLAIN, sasl_username=demo")
        self.assertLogHas(self.inst, "status=sent")

    def test_recipients_and_delivery(self):
        self.assertEqual(self.rcpt("demo@localhost")[0], 250)
        self.assertEqual(self.rcpt("info@localhost")[0], 250)   # alias
        self.assertEqual(self.rcpt("postmaster@localhost")[0], 250)
        code, text = self.rcpt("nosuchuser@localhost")
        self.assertEqual(code, 550)
        self.assertIn("5.1.1", text)
        # a system user (not in the virtual table): passwd via proxymap
        self.assertEqual(self.rcpt("tern@localhost")[0], 250)
        self.send("demo@localhost", "direct")
        self.send("info@localhost", "via alias", starttls=True)
        msgs = self.inst.wait_messages("demo", 2)
        self.assertEqual(len(msgs), 2)
        tls_msg = [m for m in msgs if b"Subject: via alias" in m][0]
        self.assertIn(b"with ESMTPS", tls_msg)
        if os.environ.get("TZ") == "Asia/Kolkata":
            received = re.search(rb"^Received:.*?(?=^\S)", tls_msg,
                                 re.M | re.S).group(0)
            self.assertIn(b"+0530", received)
        # logging from inside the jail
        self.assertLogHas(self.inst, "tern/smtpd[")
        self.assertLogHas(self.inst, "tern/qmgr[")
        self.assertLogHas(self.inst, "status=sent")

    def session(self):
        """A raw session after MAIL FROM."""
        c = SmtpClient(self.inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(b"MAIL FROM:<sender@example.org>\r\n")
        self.assertTrue(c.reply()[0].startswith("250"))
        return c

    def rcpt_in(self, c, addr):
        c.send(b"RCPT TO:<%s>\r\n" % addr.encode())
        return c.reply()[0]

    def test_user_added_after_start(self):
        # one session, so one smtpd process, which opened its tables long
        # before the file is replaced
        c = self.session()
        self.assertTrue(self.rcpt_in(c, "late@localhost").startswith("550"))
        users = os.path.join(self.inst.etc, "users")
        home = os.path.join(self.inst.dir, "home", "late")
        os.makedirs(home)
        st = os.stat(os.path.join(self.inst.dir, "home", "demo"))
        os.chown(home, st.st_uid, st.st_gid)
        with open(users, "a") as f:
            f.write("late %d:%d:%s\n" % (st.st_uid, st.st_gid, home))
        subprocess.run([os.path.join(BUILD, "sbin", "ternmap"), "-c",
                        self.inst.etc, "lmdb:" + users], check=True,
                       env=dict(os.environ, MAIL_CONFIG=self.inst.etc))
        wait_for(lambda: self.rcpt_in(c, "late@localhost").startswith("250"),
                 WAIT, 0.2, "the new user to be accepted")

    def test_proxymap_refuses_other_tables(self):
        path = os.path.join(self.inst.spool, "private", "proxymap")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT)
            s.connect(path)
            s.sendall(attr_encode([
                ("request", "lookup"), ("version", "1"),
                ("table", "lmdb:" + os.path.join(self.inst.etc, "passwords")),
                ("key", "demo")]))
            self.assertEqual(attr_read(s), {"version": "1",
                                            "status": "denied"})
            # an allowed table on the same connection
            s.sendall(attr_encode([
                ("request", "lookup"), ("version", "1"),
                ("table", "lmdb:" + os.path.join(self.inst.etc, "aliases")),
                ("key", "info")]))
            self.assertEqual(attr_read(s), {"version": "1",
                                            "status": "found",
                                            "value": "demo"})
        self.assertLogHas(self.inst, "passwords, which is not in "
                          "proxy_read_maps: refused")

    def test_proxymap_failure(self):
        self.assertEqual(self.rcpt("demo@localhost")[0], 250)
        # killed: the next lookup reconnects to a new proxymap
        for pid in self.inst.child_pids("proxymap"):
            os.kill(pid, signal.SIGKILL)
        self.assertEqual(self.rcpt("demo@localhost")[0], 250)
        # hung: smtpd gives up after proxymap_timeout and defers
        c = self.session()
        # smtpd holds a proxymap connection now
        self.assertTrue(self.rcpt_in(c, "demo@localhost").startswith("250"))
        stopped = self.inst.child_pids("proxymap")
        self.assertTrue(stopped)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        self.addCleanup(self.kill_all, stopped)
        r = self.rcpt_in(c, "other@localhost")
        self.assertTrue(r.startswith("451 4.3.0"), r)
        self.assertLogHas(self.inst, "proxymap: timeout")
        # master starts another proxymap for the next lookup
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
        r = self.rcpt_in(c, "other@localhost")
        self.assertTrue(r.startswith("250"), r)

    def kill_all(self, pids):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# the client name zone: 127.0.0.2 is confirmed, 127.0.0.3's PTR name
# does not resolve back to it
DNSMASQ_CONF = """\
local=/in-addr.arpa/
local=/example.net/
ptr-record=2.0.0.127.in-addr.arpa,jailed.example.net
address=/jailed.example.net/127.0.0.2
ptr-record=3.0.0.127.in-addr.arpa,liar.example.net
address=/liar.example.net/127.0.0.99
"""


@unittest.skipUnless(ROOT, "skipped: needs root (chroot)")
@unittest.skipUnless(HAVE_DNSMASQ, "skipped: needs dnsmasq "
                     "(apt-get install dnsmasq-base)")
class ChrootClientNameTest(TernTestCase):
    """The client name lookup (libunbound, set up before the chroot)
    works from inside the jail, against a dnsmasq of our own, and
    reject_unknown_client_hostname sees its outcome."""

    def setUp(self):
        self.dns = Dnsmasq(DNSMASQ_CONF, probe="jailed.example.net")
        self.addCleanup(self.dns.stop)
        self.inst = self.instance(main={
            "smtpd_peername_lookup": "yes",
            "dns_forwarders": self.dns.forwarder,
            "dns_hosts_file": "",
            "smtpd_client_restrictions": "reject_unknown_client_hostname"})
        self.inst.start()
        self.spool = os.path.realpath(self.inst.spool)

    def test_confirmed_name_in_the_jail(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=WAIT,
                          source_address=("127.0.0.2", 0)) as s:
            s.ehlo("client.example")
            # the lookup has ended before EHLO is answered
            self.assertLogHas(self.inst,
                              "connect from jailed.example.net[127.0.0.2]")
            pids = self.inst.child_pids("smtpd")
            self.assertTrue(pids)
            for pid in pids:
                self.assertEqual(settled_root_of(pid, self.spool), self.spool)
            s.sendmail("sender@example.org", ["demo@localhost"],
                       "Subject: named\r\n\r\nbody\r\n")
        msg = self.inst.wait_messages("demo", 1)[0]
        self.assertIn(b"(jailed.example.net [127.0.0.2])", msg)
        self.assertLogHas(self.inst, "client=jailed.example.net[127.0.0.2]")
        self.assertIn("2.0.0.127.in-addr.arpa", self.dns.text())
        self.assertIn("jailed.example.net", self.dns.text())

    def test_forged_name_in_the_jail(self):
        with smtplib.SMTP("127.0.0.1", self.inst.smtp_port, timeout=WAIT,
                          source_address=("127.0.0.3", 0)) as s:
            s.ehlo("client.example")
            for pid in self.inst.child_pids("smtpd"):
                self.assertEqual(settled_root_of(pid, self.spool), self.spool)
            s.mail("sender@example.org")
            self.assertEqual(s.rcpt("demo@localhost"),
                             (450, b"4.7.25 Client host rejected: cannot "
                                   b"find your hostname, [127.0.0.3]"))
        self.assertLogHas(self.inst, "warning: hostname liar.example.net "
                          "does not resolve to address 127.0.0.3")
        self.assertLogHas(self.inst, "connect from unknown[127.0.0.3]")


@unittest.skipUnless(ROOT, "skipped: needs root (chroot)")
@unittest.skipIf(os.path.exists("/dev/log"),
                 "skipped: a syslog daemon owns /dev/log")
class ChrootSyslogTest(TernTestCase):
    """Without maillog_file, a chrooted smtpd logs to syslog over the
    /dev/log connection it made before the chroot (no /dev/log in the
    jail). The test plays syslogd on /dev/log."""

    def setUp(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("/dev/log")
        self.addCleanup(os.unlink, "/dev/log")
        self.addCleanup(self.sock.close)
        self.sock.settimeout(0.2)
        self.got = []

    def received(self):
        try:
            while True:
                self.got.append(self.sock.recv(65536).decode(
                    errors="replace"))
        except socket.timeout:
            pass
        return "\n".join(self.got)

    def test_smtpd_logs_to_syslog_from_the_jail(self):
        inst = self.instance(main={"maillog_file": ""})
        inst.start()
        with inst.smtp() as s:
            s.ehlo()
            s.mail("sender@example.org")
            self.assertEqual(s.rcpt("nosuchuser@localhost")[0], 550)
        for pid in inst.child_pids("smtpd"):
            self.assertEqual(root_of(pid), os.path.realpath(inst.spool))
        wait_for(lambda: re.search(r"tern/smtpd\[\d+\]: NOQUEUE: reject: "
                                   r"RCPT from", self.received()),
                 WAIT, 0.1, "smtpd's reject line in syslog")


if __name__ == "__main__":
    unittest.main()

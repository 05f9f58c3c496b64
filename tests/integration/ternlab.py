"""ternlab - start real Tern instances for integration tests.

    from ternlab import Instance, TernTestCase

    class T(TernTestCase):
        def test_x(self):
            inst = self.instance(main={"mynetworks": "192.0.2.0/24"})
            inst.start()                       # master -f, waits for SMTP
            with inst.smtp() as s:             # smtplib.SMTP, connected
                s.sendmail("a@example.org", ["demo@localhost"], b"...")
            msgs = inst.wait_messages("demo", 1)   # list of bytes
            self.assertIn(b"Return-Path:", msgs[0])

Each instance lives in a fresh temp directory with free loopback ports,
is built by scripts/mkinstance.py (the same code `make run` uses), runs
`master -f` from $TERN_BUILD, and is stopped (by PID, SIGTERM then
SIGKILL) and removed when the test ends. TERN_KEEP=1 keeps the directory.
Nothing here asks the machine's resolver or reaches any non-loopback
address (Dnsmasq is a DNS server of the test's own, on loopback).
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SRCDIR = os.environ.get("TERN_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TERN_BUILD") or os.path.join(SRCDIR, "build")
sys.path.insert(0, os.path.join(SRCDIR, "scripts"))
import mkinstance  # noqa: E402


# retries within seconds, for tests that defer or kill daemons
FAST_RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}


_ports_given = set()


def default_config_dir():
    """The build's compiled-in config_directory (follows the install
    prefix: /usr/local/etc/tern for a developer build)."""
    out = subprocess.run([os.path.join(BUILD, "sbin", "ternconf"), "-d",
                          "config_directory"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return out.split("=", 1)[1].strip()


def client_context():
    """A TLS client context that accepts the instance's self-signed
    certificate."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def free_port():
    """A loopback TCP port that was free a moment ago and that this test
    process has not handed out before: the kernel may offer a port it
    just freed again, and two services of one instance on one port make
    master's start-up fail."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def ternmap(etc, path, text):
    """Write text as the table source path and build lmdb:path with
    ternmap, both world-readable (chrooted daemons read it via proxymap)."""
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    subprocess.run([os.path.join(BUILD, "sbin", "ternmap"), "-c", etc,
                    "lmdb:" + path], check=True,
                   env=dict(os.environ, MAIL_CONFIG=etc))
    os.chmod(path + ".lmdb", 0o644)


def attr_encode(attrs):
    """A dict as an attribute list (lib/util/attr.h wire form)."""
    out = b""
    for k, v in attrs.items():
        out += k.encode() + b"\0" + str(v).encode() + b"\0"
    return out + b"\0"


def attr_decode(buf):
    """dict, or None while incomplete."""
    items, i = {}, 0
    while True:
        j = buf.find(b"\0", i)
        if j < 0:
            return None
        if j == i:
            return items
        k = buf.find(b"\0", j + 1)
        if k < 0:
            return None
        items[buf[i:j].decode()] = buf[j + 1:k].decode(errors="replace")
        i = k + 1


def agent_request(path, attrs, timeout=60):
    """One request to the delivery agent socket path (a dict of
    attributes); its reply as a dict. Fails if the agent hangs up."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(attr_encode(attrs))
        buf = b""
        while True:
            got = attr_decode(buf)
            if got is not None:
                return got
            chunk = s.recv(4096)
            if not chunk:
                raise AssertionError("%s closed the connection" % path)
            buf += chunk


def subject_of(msg):
    """The Subject: of a delivered message (bytes), or None."""
    m = re.search(rb"^Subject: (.*)$", msg, re.M)
    return m.group(1).decode() if m else None


def send_many(port, subjects, accepted, lock, errors,
              rcpts=("demo@localhost",), sender="sender@example.org"):
    """One SMTP connection sending one message per subject to rcpts;
    adds each subject that got 250 to accepted, failures to errors."""
    try:
        with smtplib.SMTP("127.0.0.1", port, "client.test", timeout=60) as s:
            for subj in subjects:
                body = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n"
                        "body of %s\r\n" % (sender, ", ".join(rcpts), subj,
                                              subj))
                try:
                    s.sendmail(sender, list(rcpts), body)
                except smtplib.SMTPException as e:
                    errors.append("%s: %r" % (subj, e))
                    continue
                with lock:
                    accepted.add(subj)
    except (OSError, smtplib.SMTPException) as e:
        errors.append("connection for %s...: %r" % (subjects[:1], e))


def run_senders(port, total, conns, prefix="message"):
    """Start conns threads sending total messages ("<prefix> NNNNN");
    returns (threads, accepted set, errors list), both filled live."""
    accepted, errors, lock = set(), [], threading.Lock()
    per = total // conns
    threads = [threading.Thread(
        target=send_many,
        args=(port, ["%s %05d" % (prefix, n) for n in range(i * per, (i + 1) * per)],
              accepted, lock, errors))
        for i in range(conns)]
    for t in threads:
        t.start()
    return threads, accepted, errors


def proc_children(pid):
    """PIDs whose parent is pid (from /proc)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Instance:
    def __init__(self, main=None, services_extra="", users=("demo",),
                 aliases=None, tls=False, chroot=None, pop3=False):
        """tls=True: a self-signed certificate, STARTTLS on smtp_port, and
        the services submission_port (TLS required) and smtps_port
        (implicit TLS), as `make run` has them. pop3=True: pop3-login on
        pop3_port (STLS with tls) and, with tls, pop3s_port (implicit
        TLS), with login/auth and login/pop3d."""
        self.dir = tempfile.mkdtemp(prefix="tern-it-")
        self.smtp_port = free_port()
        ports = {"smtp": self.smtp_port}
        self.submission_port = self.smtps_port = None
        if tls:
            self.submission_port = ports["submission"] = free_port()
            self.smtps_port = ports["smtps"] = free_port()
        self.pop3_port = self.pop3s_port = None
        if pop3:
            self.pop3_port = ports["pop3"] = free_port()
            if tls:
                self.pop3s_port = ports["pop3s"] = free_port()
        self.etc = mkinstance.create(
            self.dir, BUILD, ports, main_extra=main,
            services_extra=services_extra, users=users, aliases=aliases,
            tls=tls, chroot=chroot)
        # master.conf's chroot column of smtpd and qmgr (mkinstance: y
        # when root), for tests that edit those lines
        self.jail = "y" if (os.geteuid() == 0 if chroot is None
                            else chroot) else "n"
        self.spool = os.path.join(self.dir, "spool")
        self.logfile = os.path.join(self.dir, "log", "maillog")
        self.proc = None

    def edit_master_conf(self, old, new):
        """Replace the text old (which must be there) in master.conf;
        before start(), or followed by a reload."""
        path = os.path.join(self.etc, "master.conf")
        with open(path) as f:
            text = f.read()
        if old not in text:
            raise AssertionError("master.conf lacks %r:\n%s" % (old, text))
        with open(path, "w") as f:
            f.write(text.replace(old, new))

    # --- life cycle ------------------------------------------------------
    def start(self, wait=True):
        self.stdout = open(os.path.join(self.dir, "log", "master.out"), "ab")
        env = dict(os.environ, MAIL_CONFIG=self.etc)
        if "ASAN_OPTIONS" in env:
            # daemons exit at max_use/max_idle; leak checks belong to the
            # unit tests, memory errors are caught below (check_sanitizers)
            env["ASAN_OPTIONS"] += ":detect_leaks=0"
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "libexec", "master"), "-f", "-c", self.etc],
            stdin=subprocess.DEVNULL, stdout=self.stdout,
            stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for(self._smtp_ready, 60, what="SMTP port %d" % self.smtp_port)
        return self

    def _smtp_ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("master exited with %s; log:\n%s\n"
                                 "master output:\n%s"
                                 % (self.proc.returncode, self.log_text()[-3000:],
                                    self.master_output()[-3000:]))
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), 1) as s:
                s.settimeout(5)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def stop(self, timeout=15):
        if self.proc is None:
            return
        kids = proc_children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for k in kids:                 # never leave a daemon behind
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None
        self.stdout.close()

    def sanitizer_reports(self):
        """Sanitizer errors printed by master or any daemon."""
        out = self.master_output()
        bad = ("ERROR: AddressSanitizer", "runtime error:",
               "ERROR: LeakSanitizer")
        return out if any(b in out for b in bad) else ""

    def cleanup(self):
        self.stop()
        reports = self.sanitizer_reports()
        if os.environ.get("TERN_KEEP"):
            print("kept instance in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer report from a daemon:\n"
                                 + reports[-6000:])

    # --- observing -----------------------------------------------------------
    @property
    def master_pid(self):
        return self.proc.pid

    def child_pids(self, command):
        """PIDs of master's children running COMMAND (e.g. 'smtpd')."""
        out = []
        for pid in proc_children(self.proc.pid):
            argv = proc_cmdline(pid)
            if argv and os.path.basename(argv[0]).decode() == command:
                out.append(pid)
        return out

    def master_output(self):
        """What master wrote to stdout/stderr (-f mode)."""
        try:
            with open(os.path.join(self.dir, "log", "master.out"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_text(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def maildir(self, user):
        return os.path.join(self.dir, "home", user, "Maildir")

    def messages(self, user):
        """Contents of every message in the user's Maildir (new + cur)."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(user), sub)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
        return out

    def wait_messages(self, user, count, timeout=60):
        def enough():
            m = self.messages(user)
            return m if len(m) >= count else None
        try:
            return wait_for(enough, timeout, 0.1,
                            "%d messages for %s" % (count, user))
        except AssertionError:
            raise AssertionError("have %d of %d messages for %s; log tail:\n%s"
                                 % (len(self.messages(user)), count, user,
                                    self.log_text()[-4000:]))

    def queue_files(self, queue):
        """Names of the complete queue files in spool/QUEUE (hashed too)."""
        base = os.path.join(self.spool, queue)
        found = []
        for dirpath, _, files in os.walk(base):
            found += [f for f in files if not f.startswith("t.")]
        return found

    def wait_queue_empty(self, timeout=60):
        def empty():
            return not any(self.queue_files(q)
                           for q in ("incoming", "active", "deferred"))
        wait_for(empty, timeout, 0.1, "empty queue")

    def wait_quiet(self, users=("demo",), timeout=60):
        """Wait until no delivery is in flight: the queue is empty and no
        user's Maildir/tmp holds a half-written message. Every delivery,
        a duplicate too, starts from a queue file and sits in tmp/ until
        it is linked into new/; so once this holds, the Maildirs are
        final (what a settling sleep only hoped for)."""
        def tmp_empty():
            for user in users:
                d = os.path.join(self.maildir(user), "tmp")
                if os.path.isdir(d) and os.listdir(d):
                    return False
            return True
        self.wait_queue_empty(timeout)
        wait_for(tmp_empty, timeout, 0.1, "empty Maildir/tmp")
        self.wait_queue_empty(timeout)

    def smtp(self, timeout=30):
        return smtplib.SMTP("127.0.0.1", self.smtp_port, "client.test",
                            timeout=timeout)

    def password(self, user="demo"):
        """The user's password (mkinstance wrote it to DIR/USER.password)."""
        with open(os.path.join(self.dir, user + ".password")) as f:
            return f.read().strip()

    def deliver(self, user, subjects, body="body\r\n"):
        """Send one message per subject to user@localhost over SMTP and
        wait until all are in the Maildir (and nothing is in flight)."""
        before = len(self.messages(user))
        with self.smtp() as s:
            for subj in subjects:
                s.sendmail("sender@example.org", ["%s@localhost" % user],
                           ("From: sender@example.org\r\nTo: %s@localhost"
                            "\r\nSubject: %s\r\n\r\n%s"
                            % (user, subj, body)).encode())
        self.wait_messages(user, before + len(subjects))
        self.wait_quiet((user,))

    def pop3_ready(self):
        """Wait until pop3-login answers on pop3_port."""
        def ready():
            try:
                with socket.create_connection(("127.0.0.1", self.pop3_port),
                                              1) as s:
                    s.settimeout(5)
                    return s.recv(512).startswith(b"+OK")
            except OSError:
                return False
        wait_for(ready, 60, what="POP3 port %d" % self.pop3_port)


class TernTestCase(unittest.TestCase):
    """Gives self.instance(...), cleaned up after the test."""

    def instance(self, **kw):
        inst = Instance(**kw)
        self.addCleanup(inst.cleanup)
        return inst

    def remote_pair(self, **a_kw):
        """Two started instances: B, final destination for
        remote.example.org (user bob), and A, which sends mail for that
        domain to B over its smtp client (transport_maps, no DNS);
        a_kw go to A's Instance (main= is added to FAST_RETRY)."""
        b = self.instance(users=("bob",),
                          main={"myhostname": "mx.remote.example.org",
                                "mydestination":
                                "remote.example.org, $myhostname"})
        b.start()
        main = dict(FAST_RETRY, **a_kw.pop("main", {}))
        main["transport_maps"] = ("inline:{remote.example.org="
                                  "smtp:[127.0.0.1]:%d}" % b.smtp_port)
        a = self.instance(main=main, **a_kw)
        a.start()
        return a, b

    def assertDeliveredOnce(self, inst, subjects, timeout=120, user="demo"):
        """Every subject arrives in user's Maildir exactly once, nothing else
        (counted once nothing is in flight any more: Instance.wait_quiet)."""
        inst.wait_messages(user, len(subjects), timeout)
        inst.wait_quiet((user,), timeout)
        got = [subject_of(m) for m in inst.messages(user)]
        dups = sorted({s for s in got if got.count(s) > 1})
        self.assertEqual(dups, [], "delivered more than once")
        self.assertEqual(sorted(got), sorted(subjects))

    def assertLogHas(self, inst, text, timeout=30):
        try:
            wait_for(lambda: text in inst.log_text(), timeout, 0.1, repr(text))
        except AssertionError:
            self.fail("log lacks %r; tail:\n%s" % (text, inst.log_text()[-3000:]))



class SharedInstanceTestCase(TernTestCase):
    """Every test of the class talks to one instance, started once with
    the main.conf settings in MAIN (and TLS, POP3, USERS as Instance's
    tls, pop3, users)."""
    MAIN = None
    TLS = False
    POP3 = False
    USERS = ("demo",)

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(main=cls.MAIN, tls=cls.TLS, pop3=cls.POP3,
                            users=cls.USERS)
        try:
            cls.inst.start()
            if cls.POP3:
                cls.inst.pop3_ready()
        except Exception:
            cls.inst.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

# bound for socket reads and waits: reached only when the behaviour is
# broken (or the machine hangs); no test asserts a duration against it
WAIT = 30


class Pop3Client:
    """A raw POP3 connection: send bytes, read one line or a multi-line
    response; starttls() wraps the socket after +OK to STLS."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), WAIT)
        self.sock.settimeout(WAIT)
        if tls:
            self._wrap()
        self.buf = b""
        self.greeting = self.line()

    def _wrap(self):
        self.sock = client_context().wrap_socket(self.sock)

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        """One response line without CRLF (b"" at end of connection)."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multi(self):
        """The lines of a multi-line response after its +OK line, still
        dot-stuffed, up to (without) the terminating "."."""
        out = []
        while True:
            ln = self.line()
            if ln == b".":
                return out
            if ln == b"" and not self.buf:
                raise AssertionError("connection ended inside a response")
            out.append(ln)

    def starttls(self):
        self.buf = b""
        self._wrap()

    def closed(self, timeout=WAIT):
        """True once the server closed the connection (reads EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class SmtpClient:
    """A raw SMTP connection that returns whole replies."""

    def __init__(self, port, connect=True):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.buf = b""
        if connect:
            self.sock.connect(("127.0.0.1", port))

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def reply(self):
        """One reply: list of its lines (multi-line replies joined)."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def replies(self, n):
        return [self.reply()[-1] for _ in range(n)]

    def closed(self, timeout=WAIT):
        """True when the server closes the connection (no more data) or
        resets it; False if it sends more, or nothing within timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True


# --- a DNS server of our own (client name lookups) --------------------------
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
HAVE_DNSMASQ = os.access(DNSMASQ, os.X_OK)


def udp_port():
    """A loopback port free for UDP and TCP a moment ago (dnsmasq binds
    both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port")


def dns_query(qname, qtype, qid=0x1234):
    """A recursive query packet for qname (text), qtype (1 A, 12 PTR)."""
    labels = b"".join(bytes([len(l)]) + l.encode()
                      for l in qname.rstrip(".").split("."))
    return (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels
            + b"\0" + struct.pack("!HH", qtype, 1))


class Dnsmasq:
    """dnsmasq serving conf (dnsmasq.conf text) on 127.0.0.1:port, UDP
    and TCP, nothing from /etc (no resolv.conf, no hosts), every query
    logged (text()). An instance asks it with
    dns_forwarders = 127.0.0.1@PORT and dns_hosts_file empty.

        dns = Dnsmasq(conf, probe="good.example.net")   # answering now
        ...
        dns.stop()
    """

    def __init__(self, conf, probe):
        self.tmp = tempfile.mkdtemp(prefix="tern-dns-")
        self.proc = None
        self.out = None
        try:
            self._start(conf, probe)
        except Exception:
            self.stop()
            raise

    def _start(self, conf, probe):
        path = os.path.join(self.tmp, "dnsmasq.conf")
        with open(path, "w") as f:
            f.write(conf)
        os.chmod(self.tmp, 0o755)
        os.chmod(path, 0o644)
        self.port = udp_port()
        self.log = os.path.join(self.tmp, "dnsmasq.log")
        self.out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--no-daemon",
             "--port=%d" % self.port, "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--pid-file=", "--log-queries", "--log-facility=-",
             "--conf-file=" + path],
            stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited: " + self.text())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                s.sendto(dns_query(probe, 1), ("127.0.0.1", self.port))
                try:
                    return len(s.recv(4096)) > 12
                except socket.timeout:
                    return False
        wait_for(answers, WAIT, 0.1, "dnsmasq on port %d" % self.port)

    @property
    def forwarder(self):
        """The dns_forwarders value that reaches this server."""
        return "127.0.0.1@%d" % self.port

    def text(self):
        """dnsmasq's log (the queries it was asked) so far."""
        with open(self.log, "rb") as f:
            return f.read().decode("latin-1")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.out is not None:
            self.out.close()
            self.out = None
        shutil.rmtree(self.tmp, ignore_errors=True)

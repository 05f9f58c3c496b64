"""pop3d(8) alone, with this test as the login process: an instance's
configuration (scripts/mkinstance.py, master is not started), one pop3d
run by hand per session on a listening socket of ours (as master would
pass it, fd 4), the hand-over of login_handover.h sent with SCM_RIGHTS
(one end of a socket pair is the "client", Python's poplib drives it),
and a login token made with the key pop3d loaded from data_directory
(the HMAC that auth computes, login_token.h).

Checks: the whole TRANSACTION and UPDATE path on a real Maildir
(octets, CRLF conversion, byte-stuffing, UIDL stable across sessions,
deletion only at QUIT, seen flags), pipelined input in the hand-over,
refused hand-overs (bad token, unknown user), the [IN-USE] lock, and
as root the identity of the process that serves the session.
"""
import array
import base64
import hashlib
import hmac
import os
import poplib
import secrets
import socket
import subprocess
import time
import unittest

from ternlab import BUILD, Instance, attr_decode, attr_encode, wait_for

TOKEN_LIFETIME = 30


def crlf(data):
    """What RETR sends for a file: LF -> CRLF (CRLF kept), dot-stuffed."""
    out = []
    for line in data.split(b"\n"):
        out.append(line)
    if out and out[-1] == b"":
        out.pop()
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in out]
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                    for ln in lines)


class Pop3dSmoke(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users=("demo", "other"))
        self.addCleanup(self.inst.cleanup)
        self.procs = []
        self.addCleanup(self._stop_all)
        self.sock_path = os.path.join(self.inst.dir, "pop3d.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(8)
        self.addCleanup(self.listener.close)
        self.md = self.inst.maildir("demo")
        st = os.stat(os.path.dirname(self.md))
        self.owner = (st.st_uid, st.st_gid)
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.md, sub), exist_ok=True)
            os.chown(os.path.join(self.md, sub), *self.owner)
        os.chown(self.md, *self.owner)

    def _stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)

    # --- helpers ---------------------------------------------------------
    def deliver(self, name, data, sub="new"):
        """A message file as local(8) would name it (S= and W= sizes)."""
        w = len(data) + data.count(b"\n") - data.count(b"\r\n")
        fname = "%s,S=%d,W=%d" % (name, len(data), w)
        if sub == "cur":
            fname += ":2,"
        path = os.path.join(self.md, sub, fname)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, *self.owner)
        return path

    def start_pop3d(self, *opts):
        """One pop3d on our listener, as master starts it; opts: -o
        name=value overrides."""
        lfd = self.listener.fileno()
        args = []
        for o in opts:
            args += ["-o", o]

        def child():    # fd 4 is kept: it is in pass_fds
            os.dup2(lfd, 4)
        env = dict(os.environ, MAIL_CONFIG=self.inst.etc)
        p = subprocess.Popen(
            [os.path.join(BUILD, "libexec", "pop3d"), "-n", "login/pop3d",
             "-t", "unix", "-s", "1"] + args, pass_fds=(lfd, 4), preexec_fn=child,
            env=env, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        key = os.path.join(self.inst.dir, "data", "login_token.key")
        wait_for(lambda: os.path.exists(key) or p.poll() is not None, 30,
                 what="pop3d's token key")
        self.assertIsNone(p.poll(), "pop3d exited: %s" % self.inst.log_text())
        return p

    def token(self, user, service="pop3"):
        with open(os.path.join(self.inst.dir, "data", "login_token.key"),
                  "rb") as f:
            key = f.read()
        expiry = str(int(time.time()) + TOKEN_LIFETIME)
        nonce = secrets.token_hex(16)
        msg = b"\0".join(x.encode() for x in ("1", service, user, expiry,
                                                 nonce))
        mac = hmac.new(key, msg, hashlib.sha256).hexdigest()
        return "1.%s.%s.%s" % (expiry, nonce, mac)

    def handover(self, user="demo", token=None, pipelined=b"",
                 not_a_socket=False):
        """Send a hand-over; (reply dict, our end of the client pair)."""
        client, theirs = socket.socketpair()
        if not_a_socket:        # a file where the client should be
            theirs.close()
            theirs = open(os.devnull, "rb")
        attrs = {
            "request": "login", "version": 1, "service": "pop3",
            "user": user, "token": token or self.token(user),
            "mechanism": "PLAIN", "client_address": "192.0.2.7",
            "client_port": 40000, "local_address": "127.0.0.1",
            "local_port": 110, "tls": 0, "tls_info": "", "session": "T1",
            "input": base64.b64encode(pipelined).decode(),
        }
        ipc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ipc.settimeout(30)
        ipc.connect(self.sock_path)
        ipc.sendmsg([attr_encode(attrs)], [(socket.SOL_SOCKET,
                                           socket.SCM_RIGHTS,
                                           array.array("i", [theirs.fileno()]))])
        theirs.close()
        buf = b""
        while True:
            got = attr_decode(buf)
            if got is not None:
                break
            chunk = ipc.recv(4096)
            self.assertTrue(chunk, "pop3d closed without a reply")
            buf += chunk
        ipc.close()
        client.settimeout(30)
        self.addCleanup(client.close)
        return got, client

    def pop(self, client):
        """poplib on our end of the pair; welcome is pop3d's first line."""
        p = poplib.POP3.__new__(poplib.POP3)
        p.host, p.port, p._tls_established = "pair", 0, False
        p.sock = client
        p.file = client.makefile("rb")
        p._debugging = 0
        p.welcome = p._getresp()
        return p

    def session(self, user="demo", opts=()):
        self.start_pop3d(*opts)
        reply, client = self.handover(user)
        self.assertEqual(reply.get("status"), "ok", reply)
        p = self.pop(client)
        self.assertEqual(p.welcome, b"+OK Logged in.")
        return p

    def files(self):
        out = {}
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(self.md, sub)):
                out[n] = sub
        return out

    # --- tests -----------------------------------------------------------
    def test_transaction_and_update(self):
        m1 = b"Subject: one\n\nbody\n.starts with a dot\n"
        m2 = b"Subject: two\r\n\r\nalready CRLF\r\n"
        self.deliver("1700000001.M1P1.host", m1)
        self.deliver("1700000002.M2P2.host", m2)
        p = self.session()
        self.assertEqual(p.stat(), (2, len(crlf(m1)) + len(crlf(m2))
                                    - 1))   # stuffing is not counted
        resp, lines, _ = p.list()
        self.assertEqual(lines, [b"1 %d" % (len(crlf(m1)) - 1),
                                 b"2 %d" % len(crlf(m2))])
        uidl = p.uidl()[1]
        # the stable key: the name up to ":2,"
        self.assertEqual(uidl, [b"1 1700000001.M1P1.host,S=38,W=42",
                                b"2 1700000002.M2P2.host,S=30,W=30"])
        resp, lines, octets = p.retr(1)
        self.assertEqual(resp, b"+OK %d octets" % (len(crlf(m1)) - 1))
        self.assertEqual(lines, [b"Subject: one", b"", b"body",
                                 b".starts with a dot"])
        resp, lines, _ = p.retr(2)
        self.assertEqual(lines, [b"Subject: two", b"", b"already CRLF"])
        resp, lines, _ = p.top(1, 0)
        self.assertEqual(lines, [b"Subject: one", b""])
        p.dele(2)
        # nothing deleted before QUIT
        self.assertEqual(len(self.files()), 2)
        self.assertEqual(p.quit(), b"+OK Logging out, messages deleted.")
        f = self.files()
        self.assertEqual(len(f), 1)
        (name, sub), = f.items()
        self.assertEqual(sub, "cur")
        self.assertTrue(name.startswith("1700000001.M1P1.host,"), name)
        self.assertTrue(name.endswith(":2,S"), name)
        wait_for(lambda: "Disconnected: Logged out user=<demo> top=1/" in
                 self.inst.log_text(), 30, what="the log line")
        self.assertIn("retr=2/", self.inst.log_text())
        self.assertIn("del=1/2, size=", self.inst.log_text())

    def test_uidl_stable_and_drop_deletes_nothing(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        self.deliver("1700000002.B.host", b"Subject: b\n\nb\n")
        p = self.session()
        first = p.uidl()[1]
        p.dele(1)
        p.sock.shutdown(socket.SHUT_RDWR)      # no QUIT
        wait_for(lambda: "Disconnected: Connection closed user=<demo>" in
                 self.inst.log_text(), 30, what="the disconnect")
        self.assertEqual(len(self.files()), 2)
        p = self.session()
        self.assertEqual(p.uidl()[1], first)
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.assertEqual(len(self.files()), 2)

    def test_pipelined_input(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        self.start_pop3d()
        reply, client = self.handover(pipelined=b"STAT\r\nNOOP\r\n")
        self.assertEqual(reply.get("status"), "ok")
        p = self.pop(client)
        self.assertEqual(p.welcome, b"+OK Logged in.")
        self.assertEqual(p._getresp(), b"+OK 1 17")
        self.assertEqual(p._getresp(), b"+OK")
        self.assertEqual(p.quit(), b"+OK Logging out.")

    def test_bad_token_and_unknown_user(self):
        self.start_pop3d()
        tok = self.token("other")       # a token for someone else
        reply, client = self.handover("demo", token=tok)
        self.assertEqual(reply.get("status"), "fail")
        # the same process serves the next hand-over
        reply, client = self.handover("nobody-here")
        self.assertEqual(reply.get("status"), "fail")
        reply, client = self.handover("demo")
        self.assertEqual(reply.get("status"), "ok")
        p = self.pop(client)
        self.assertEqual(p.welcome, b"+OK Logged in.")
        p.quit()
        log = self.inst.log_text()
        self.assertIn("invalid login token", log)
        self.assertIn("no such user", log)

    def test_client_not_a_socket(self):
        self.start_pop3d()
        reply, client = self.handover(not_a_socket=True)
        self.assertEqual(reply.get("status"), "fail")
        wait_for(lambda: "the client is not a socket" in self.inst.log_text(),
                 30, what="the refusal in the log")

    def test_in_use(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session()
        self.start_pop3d()
        reply, client = self.handover()
        self.assertEqual(reply.get("status"), "ok")
        client.settimeout(30)
        data = client.makefile("rb").readline()
        self.assertEqual(data, b"-ERR [IN-USE] Mailbox is locked by "
                               b"another POP3 session\r\n")
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_big_retr(self):
        body = b"".join(b"%sline %d of a long message\n"
                        % (b"." if i % 5 == 0 else b"", i)
                        for i in range(50000))
        msg = b"Subject: big\n\n" + body
        self.deliver("1700000001.BIG.host", msg)
        p = self.session()
        resp, lines, octets = p.retr(1)
        w = len(msg) + msg.count(b"\n")
        self.assertEqual(resp, b"+OK %d octets" % w)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n",
                         msg.replace(b"\n", b"\r\n"))
        p.quit()

    def test_idle_timeout_deletes_nothing(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session(opts=("pop3d_timeout=1s",))
        p.dele(1)
        # silence: pop3d says goodbye and closes
        self.assertEqual(p.file.readline(),
                         b"-ERR Disconnected for inactivity.\r\n")
        self.assertEqual(p.file.readline(), b"")
        self.assertEqual(len(self.files()), 1)
        wait_for(lambda: "Disconnected: Inactivity user=<demo>" in
                 self.inst.log_text(), 30, what="the log line")

    def test_sigterm_deletes_nothing(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session()
        p.dele(1)
        self.procs[-1].terminate()
        self.assertEqual(p.file.readline(),
                         b"-ERR [SYS/TEMP] Server shutting down.\r\n")
        self.assertEqual(self.procs[-1].wait(30), 0)
        self.assertEqual(len(self.files()), 1)

    def test_not_a_maildir(self):
        self.start_pop3d("home_mailbox=Mailbox")
        reply, client = self.handover()
        self.assertEqual(reply.get("status"), "ok")
        self.assertEqual(client.makefile("rb").readline(),
                         b"-ERR [SYS/PERM] The mailbox is not a Maildir.\r\n")

    def test_no_maildir_yet(self):
        p = self.session("other")
        self.assertEqual(p.stat(), (0, 0))
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.assertFalse(os.path.exists(self.inst.maildir("other")))

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_identity(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session()
        pid = self.procs[-1].pid
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        uid, gid = self.owner
        self.assertEqual(status["Uid"].split(), [str(uid)] * 4)
        self.assertEqual(status["Gid"].split(), [str(gid)] * 4)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        for cap in ("CapEff", "CapPrm", "CapInh"):
            self.assertEqual(int(status[cap], 16), 0, cap)
        # the listening socket is closed: a user's process must not take
        # other users' hand-overs
        listening = set()
        with open("/proc/net/unix") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if len(cols) >= 8 and cols[7] == self.sock_path:
                    listening.add("socket:[%s]" % cols[6])
        self.assertTrue(listening)
        for fd in os.listdir("/proc/%d/fd" % pid):
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            self.assertNotIn(target, listening)
        self.assertEqual(p.quit(), b"+OK Logging out.")

class Pop3dUnderMaster(Pop3dSmoke):
    """The same, with master running pop3d as the login/pop3d service
    (master.conf as shipped: unpriv n, chroot n, maxproc 1000): master's
    socket in $queue_directory/login, one process per session."""

    def setUp(self):
        self.inst = Instance(users=("demo", "other"), services_extra=(
            "login/pop3d unix - n n - 1000 pop3d\n"))
        self.addCleanup(self.inst.cleanup)
        self.procs = []
        self.inst.start()
        self.sock_path = os.path.join(self.inst.spool, "login", "pop3d")
        wait_for(lambda: os.path.exists(self.sock_path), 30,
                 what="master's login/pop3d socket")
        self.md = self.inst.maildir("demo")
        st = os.stat(os.path.dirname(self.md))
        self.owner = (st.st_uid, st.st_gid)
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.md, sub), exist_ok=True)
            os.chown(os.path.join(self.md, sub), *self.owner)
        os.chown(self.md, *self.owner)

    def start_pop3d(self, *opts):
        """master starts pop3d on demand; options go into main.conf,
        read by every pop3d started afterwards (master itself needs no
        reload: it passes no pop3d parameter)."""
        if opts:
            with open(os.path.join(self.inst.etc, "main.conf"), "a") as f:
                f.write("".join(o.replace("=", " = ", 1) + "\n"
                                for o in opts))
        key = os.path.join(self.inst.dir, "data", "login_token.key")
        if not os.path.exists(key):
            # the first connection makes master start a pop3d, which
            # makes the key in pre_init; it then waits for our request
            self._early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._early.connect(self.sock_path)
            self.addCleanup(self._early.close)
            wait_for(lambda: os.path.exists(key), 30,
                     what="pop3d's token key")
        return None

    def session_pid(self):
        """The pop3d serving the session: the one holding the Maildir
        open (the developer instance runs every pop3d as one uid, so
        the uid alone cannot tell it from a pop3d waiting for work)."""
        for pid in self.inst.child_pids("pop3d"):
            fds = "/proc/%d/fd" % pid
            try:
                links = [os.readlink(os.path.join(fds, f))
                         for f in os.listdir(fds)]
            except OSError:
                continue
            if any(ln.rstrip("/").endswith("/Maildir") for ln in links):
                return pid
        return None

    def test_sigterm_deletes_nothing(self):
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session()
        p.dele(1)
        pid = wait_for(self.session_pid, 30, what="the session's pop3d")
        os.kill(pid, 15)
        self.assertEqual(p.file.readline(),
                         b"-ERR [SYS/TEMP] Server shutting down.\r\n")
        self.assertEqual(len(self.files()), 1)

    def test_identity(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.deliver("1700000001.A.host", b"Subject: a\n\na\n")
        p = self.session()
        pid = wait_for(self.session_pid, 30, what="the session's pop3d")
        with open("/proc/%d/status" % pid) as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        self.assertEqual(status["Gid"].split(), [str(self.owner[1])] * 4)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        for cap in ("CapEff", "CapPrm", "CapInh"):
            self.assertEqual(int(status[cap], 16), 0, cap)
        fds = [os.readlink("/proc/%d/fd/%s" % (pid, fd))
               for fd in os.listdir("/proc/%d/fd" % pid)]
        # no pipe to master (the status pipe) and no listening socket
        listening = set()
        with open("/proc/net/unix") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if len(cols) >= 8 and cols[7] == self.sock_path:
                    listening.add("socket:[%s]" % cols[6])
        for t in fds:
            self.assertNotIn(t, listening)
            self.assertFalse(t.startswith("pipe:"), fds)
        self.assertEqual(p.quit(), b"+OK Logging out.")


if __name__ == "__main__":
    unittest.main()

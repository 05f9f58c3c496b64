"""test_pop3_login - pop3-login (the pre-authentication half of POP3)
against a live instance, with a stand-in for the mail side: the test
itself listens on login/pop3d, takes the handover request with its
descriptor (SCM_RIGHTS), checks it (auth's login token verified with the
key in data_directory) and then speaks for pop3d on the descriptor it got
(plaintext: the client connection itself; TLS: a socketpair end that
pop3-login proxies). This tests the login side alone; the whole POP3
service (with the real pop3d) is the lead's test_pop3*.py.

Covered: greeting, CAPA before and after TLS, tls_auth_only ([AUTH]),
USER/PASS and AUTH PLAIN/LOGIN (initial response, "+ " challenges, "*"),
the failure delay and limit, unknown commands, commands that need a
login, overlong lines (the server stays), the error limit, STLS and the
STARTTLS injection, implicit TLS (pop3s), pipelined input after PASS
(input=), pop3d refusing (-ERR [SYS/TEMP]), and as root that pop3-login
runs as ternlogin chrooted into login/.
"""
import base64
import hashlib
import hmac
import os
import pwd
import socket
import ssl
import threading
import time
import unittest

from ternlab import (WAIT, TernTestCase, attr_decode, attr_encode, free_port,
                     wait_for)


def b64(data):
    return base64.b64encode(data).decode()


class FakeMailSide:
    """Listens on login/pop3d like pop3d; each accepted request is put in
    self.requests as (attrs, fd). answer: "ok" (then "+OK Logged in." and
    an echo service on the fd) or "fail"."""

    def __init__(self, spool):
        self.path = os.path.join(spool, "login", "pop3d")
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(8)
        self.requests = []
        self.answer = "ok"
        self.sent = 0           # bytes of BIG replies written so far
        self.delay = 0          # seconds before the answer
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(WAIT)
        buf, fds = b"", []
        while attr_decode(buf) is None:
            data, got, _, _ = socket.recv_fds(conn, 65536, 4)
            fds += got
            if not data:
                return
            buf += data
        attrs = attr_decode(buf)
        with self.lock:
            self.requests.append((attrs, len(fds)))
        if self.answer != "ok" or len(fds) != 1:
            conn.sendall(attr_encode({"status": "fail",
                                      "reason": "test says no"}))
            for f in fds:
                os.close(f)
            conn.close()
            return
        if self.delay:
            time.sleep(self.delay)  # a slow mail side, not a wait in a test
        conn.sendall(attr_encode({"status": "ok"}))
        conn.close()
        client = socket.socket(fileno=fds[0])
        client.settimeout(WAIT)
        self._echo(client, base64.b64decode(attrs["input"]))

    def _echo(self, client, pipelined):
        """+OK Logged in., then "+OK echo LINE" per line, QUIT ends"""
        try:
            client.sendall(b"+OK Logged in.\r\n")
            buf = pipelined
            while True:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.rstrip(b"\r")
                    if line.startswith(b"BIG "):
                        self._big(client, int(line[4:]))
                        continue
                    if line.upper() == b"QUIT":
                        client.sendall(b"+OK Logging out.\r\n")
                        client.close()
                        return
                    client.sendall(b"+OK echo " + line + b"\r\n")
                data = client.recv(65536)
                if not data:
                    client.close()
                    return
                buf += data
        except OSError:
            client.close()


    def _big(self, client, size):
        """size bytes in lines of 1000 (the last one shorter), then ".";
        self.sent counts what the socket took"""
        chunk = (b"x" * 998 + b"\r\n") * 64
        left = size
        while left > 0:
            part = chunk[:left]
            client.sendall(part)
            left -= len(part)
            self.sent += len(part)
        client.sendall(b".\r\n")


class Pop3:
    """A raw POP3 connection (optionally TLS from the start)."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), WAIT)
        self.sock.settimeout(WAIT)
        if tls:
            self.sock = self.context().wrap_socket(self.sock)
        self.buf = b""

    @staticmethod
    def context():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed; buffered %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multiline(self):
        lines = []
        while True:
            line = self.line()
            if line == ".":
                return lines
            lines.append(line)

    def stls(self):
        self.assertok(self.cmd("STLS"))
        self.sock = self.context().wrap_socket(self.sock)

    @staticmethod
    def assertok(line):
        if not line.startswith("+OK"):
            raise AssertionError(line)

    def closed(self):
        """True once the server closed the connection"""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (OSError, ssl.SSLError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def token_ok(key, service, user, token):
    """login_token.h's check, in Python"""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "1":
        return False
    msg = b"\0".join([b"1", service.encode(), user.encode(),
                      parts[1].encode(), parts[2].encode()])
    mac = hmac.new(key, msg, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts[3]) and int(parts[1]) > time.time()


class Pop3LoginTest(TernTestCase):
    MAIN = {"pop3d_auth_failure_delay": "1s", "pop3d_sasl_failure_limit": "2",
            "pop3d_hard_error_limit": "5"}

    def setUp(self):
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        self.plain_port = free_port()
        self.idle_port = free_port()
        jail = "y" if os.geteuid() == 0 else "n"
        extra = ("127.0.0.1:%d inet n - %s - - pop3-login\n"
                 "127.0.0.1:%d inet n - %s - - pop3-login"
                 " -o pop3d_tls_wrappermode=yes\n"
                 "127.0.0.1:%d inet n - %s - - pop3-login"
                 " -o pop3d_tls_auth_only=no\n"
                 "127.0.0.1:%d inet n - %s - - pop3-login"
                 " -o pop3d_timeout=1s -o pop3d_tls_auth_only=no\n"
                 "login/auth unix - n n - - auth\n"
                 % (self.pop3_port, jail, self.pop3s_port, jail,
                    self.plain_port, jail, self.idle_port, jail))
        self.inst = self.instance(main=self.MAIN, tls=True,
                                  services_extra=extra)
        self.inst.start()
        wait_for(lambda: os.path.exists(os.path.join(self.inst.spool, "login",
                                                     "auth")),
                 WAIT, what="login/auth")
        self.mail = FakeMailSide(self.inst.spool)
        self.addCleanup(self.mail.close)
        with open(os.path.join(self.inst.dir, "demo.password")) as f:
            self.password = f.read().strip()

    def client(self, port=None, tls=False):
        c = Pop3(port or self.pop3_port, tls=tls)
        self.addCleanup(c.close)
        return c

    def greeted(self, port=None, tls=False):
        c = self.client(port, tls)
        self.assertTrue(c.line().startswith("+OK "))
        return c

    def key(self):
        with open(os.path.join(self.inst.dir, "data",
                               "login_token.key"), "rb") as f:
            return f.read()

    def last_request(self):
        wait_for(lambda: self.mail.requests, WAIT, what="a handover")
        return self.mail.requests[-1]

    # --- before login ----------------------------------------------------
    def test_capa_before_and_after_tls(self):
        c = self.greeted()
        self.assertok(c.cmd("CAPA"))
        caps = c.multiline()
        for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                    "PIPELINING", "STLS", "IMPLEMENTATION Tern"):
            self.assertIn(cap, caps)
        self.assertNotIn("USER", caps)
        self.assertIn("SASL SCRAM-SHA-256", caps)
        c.stls()
        self.assertok(c.cmd("CAPA"))
        caps = c.multiline()
        self.assertIn("USER", caps)
        self.assertNotIn("STLS", caps)
        self.assertIn("SASL SCRAM-SHA-256 PLAIN LOGIN", caps)

    def assertok(self, line):
        self.assertTrue(line.startswith("+OK"), line)

    def test_plaintext_refused_before_tls(self):
        c = self.greeted()
        self.assertTrue(c.cmd("USER demo").startswith("-ERR [AUTH] "))
        self.assertTrue(c.cmd("PASS x").startswith("-ERR [AUTH] "))
        self.assertTrue(c.cmd("AUTH PLAIN " + b64(b"\0demo\0x"))
                        .startswith("-ERR [AUTH] "))
        self.assertTrue(c.cmd("AUTH LOGIN").startswith("-ERR [AUTH] "))
        self.assertEqual(self.mail.requests, [])

    def test_unknown_and_login_first(self):
        c = self.greeted()
        self.assertEqual(c.cmd("XYZZY"), "-ERR Unknown command.")
        self.assertEqual(c.cmd("STAT"), "-ERR [AUTH] Log in first.")
        self.assertEqual(c.cmd("RETR 1"), "-ERR [AUTH] Log in first.")
        # an overlong line is an error, the session goes on
        self.assertTrue(c.cmd("NOOP " + "x" * 5000).startswith("-ERR"))
        self.assertok(c.cmd("CAPA"))
        c.multiline()
        # the fifth error ends it
        self.assertTrue(c.cmd("XYZZY").startswith("-ERR"))
        self.assertTrue(c.line().startswith("-ERR Too many errors"))
        self.assertTrue(c.closed())

    def test_idle_timeout(self):
        c = self.greeted(self.idle_port)
        self.assertEqual(c.line(), "-ERR Disconnected for inactivity.")
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "Disconnected: Inactivity: "
                          "rip=127.0.0.1")

    def test_slow_mail_side_no_idle_goodbye(self):
        """while pop3d holds the client, pop3-login's idle timeout never
        writes on it (its -ERR would land in pop3d's session)"""
        self.mail.delay = 3
        c = self.greeted(self.idle_port)
        self.assertok(c.cmd("USER demo"))
        self.assertEqual(c.cmd("PASS " + self.password), "+OK Logged in.")
        self.assertEqual(c.cmd("STAT"), "+OK echo STAT")

    def test_quit(self):
        c = self.greeted()
        self.assertok(c.cmd("QUIT"))
        self.assertTrue(c.closed())

    def test_stls_injection(self):
        """STLS\\r\\nCAPA\\r\\n in one segment: CAPA is never answered"""
        c = self.greeted()
        c.send("STLS\r\nCAPA\r\n")
        self.assertok(c.line())
        c.sock = c.context().wrap_socket(c.sock)
        self.assertEqual(c.cmd("NOOP"), "-ERR [AUTH] Log in first.")
        self.assertEqual(c.buf, b"")
        self.assertLogHas(self.inst, "improper command pipelining after "
                          "STLS")

    # --- logins ----------------------------------------------------------
    def test_user_pass_tls_proxied(self):
        c = self.greeted()
        c.stls()
        self.assertok(c.cmd("USER demo"))
        self.assertEqual(c.cmd("PASS " + self.password), "+OK Logged in.")
        attrs, nfds = self.last_request()
        self.assertEqual(nfds, 1)
        self.assertEqual(attrs["user"], "demo")
        self.assertEqual(attrs["mechanism"], "USER")
        self.assertEqual(attrs["service"], "pop3")
        self.assertEqual(attrs["tls"], "1")
        self.assertTrue(attrs["tls_info"].startswith("TLSv1"))
        self.assertEqual(attrs["client_address"], "127.0.0.1")
        self.assertEqual(int(attrs["local_port"]), self.pop3_port)
        self.assertTrue(token_ok(self.key(), "pop3", "demo", attrs["token"]))
        # the proxy both ways, including a big reply
        self.assertEqual(c.cmd("STAT"), "+OK echo STAT")
        big = "A" * 200
        for i in range(300):
            c.send("NOOP %s%d\r\n" % (big, i))
        for i in range(300):
            self.assertEqual(c.line(), "+OK echo NOOP %s%d" % (big, i))
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "pop3-login[")
        self.assertLogHas(self.inst, "Login: user=<demo>, method=USER, "
                          "rip=127.0.0.1, lip=127.0.0.1, TLS")

    def test_proxy_backpressure(self):
        """a TLS client that does not read: pop3-login stops reading from
        pop3d (the stand-in's writes stall far short of the reply), and
        everything arrives once the client reads"""
        size = 64 * 1000 * 800          # 51.2 MB
        c = self.greeted(self.pop3s_port, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + b64(
            ("\0demo\0" + self.password).encode())), "+OK Logged in.")
        c.send("BIG %d\r\n" % size)
        wait_for(lambda: self.mail.sent > 0, WAIT, what="the big reply")
        last = [-1]

        def stalled():
            now, before = self.mail.sent, last[0]
            last[0] = now
            return now == before
        wait_for(stalled, WAIT * 4, interval=1.0, what="writes to stall")
        self.assertLess(self.mail.sent, size // 4)
        got = 0
        while True:
            data = c.sock.recv(1 << 20)
            self.assertTrue(data, "closed early")
            got += len(data)
            if got >= size + 3:
                break
        self.assertEqual(got, size + 3)
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")

    def test_hostile_soup_and_many_clients(self):
        """random bytes in random pieces, then 50 clients at once: the
        server answers every one"""
        import random
        rnd = random.Random(10)
        for _ in range(5):
            c = self.greeted()
            try:
                for _ in range(20):
                    junk = bytes(rnd.randrange(256)
                                 for _ in range(rnd.randrange(1, 400)))
                    c.send(junk.replace(b"\n", b"") + b"\r\n")
            except OSError:
                pass                    # closed at the error limit
            c.closed()
        clients = [self.greeted() for _ in range(50)]
        for c in clients:
            c.send("CAPA\r\n")
        for c in clients:
            self.assertTrue(c.line().startswith("+OK"))
            self.assertIn("IMPLEMENTATION Tern", c.multiline())
            self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")

    def test_plaintext_fd_passed_with_pipelining(self):
        c = self.greeted(self.plain_port)
        self.assertok(c.cmd("USER demo"))
        c.send("PASS %s\r\nSTAT\r\nLIST\r\n" % self.password)
        self.assertEqual(c.line(), "+OK Logged in.")
        self.assertEqual(c.line(), "+OK echo STAT")
        self.assertEqual(c.line(), "+OK echo LIST")
        attrs, nfds = self.last_request()
        self.assertEqual(attrs["tls"], "0")
        self.assertEqual(attrs["tls_info"], "")
        self.assertEqual(base64.b64decode(attrs["input"]),
                         b"STAT\r\nLIST\r\n")
        self.assertEqual(c.cmd("UIDL"), "+OK echo UIDL")
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "Login: user=<demo>, method=USER, "
                          "rip=127.0.0.1, lip=127.0.0.1\n")

    def test_auth_plain_and_login(self):
        c = self.greeted(self.pop3s_port, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + b64(
            ("\0demo\0" + self.password).encode())), "+OK Logged in.")
        self.assertEqual(self.last_request()[0]["mechanism"], "PLAIN")
        c2 = self.greeted(self.pop3s_port, tls=True)
        self.assertEqual(c2.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6")
        self.assertEqual(c2.cmd(b64(b"demo")), "+ UGFzc3dvcmQ6")
        self.assertEqual(c2.cmd(b64(self.password.encode())),
                         "+OK Logged in.")
        self.assertEqual(self.mail.requests[-1][0]["mechanism"], "LOGIN")
        # AUTH alone lists the mechanisms; "*" cancels
        c3 = self.greeted(self.pop3s_port, tls=True)
        self.assertok(c3.cmd("AUTH"))
        self.assertEqual(c3.multiline(), ["SCRAM-SHA-256", "PLAIN", "LOGIN"])
        self.assertEqual(c3.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(c3.cmd("*").startswith("-ERR"))
        self.assertEqual(c3.cmd("AUTH plain"), "+ ")
        self.assertTrue(c3.cmd("!!!!").startswith("-ERR"))
        self.assertTrue(c3.cmd("AUTH CRAM-MD5").startswith("-ERR"))
        # a failed AUTH PLAIN names the user it tried
        self.assertEqual(c3.cmd("AUTH PLAIN " + b64(b"\0someone\0wrong")),
                         "-ERR [AUTH] Authentication failed.")
        c3.cmd("QUIT")
        self.assertLogHas(self.inst, "Disconnected (auth failed, 1 "
                          "attempts): user=<someone>, method=PLAIN, "
                          "rip=127.0.0.1, lip=127.0.0.1, TLS")

    def test_scram_plaintext_allowed(self):
        """SCRAM-SHA-256 before TLS (it does not reveal the password),
        with and without an initial response; the token comes through"""
        from test_smtpd_auth import Scram
        for initial in (True, False):
            c = self.greeted()
            sc = Scram("demo", self.password)
            if initial:
                r = c.cmd("AUTH SCRAM-SHA-256 " + b64(sc.client_first()
                                                      .encode()))
            else:
                self.assertEqual(c.cmd("AUTH SCRAM-SHA-256"), "+ ")
                r = c.cmd(b64(sc.client_first().encode()))
            self.assertTrue(r.startswith("+ "), r)
            sf = base64.b64decode(r[2:]).decode()
            r = c.cmd(b64(sc.client_final(sf).encode()))
            self.assertTrue(r.startswith("+ "), r)
            self.assertEqual(base64.b64decode(r[2:]).decode(),
                             sc.server_final)
            self.assertEqual(c.cmd(""), "+OK Logged in.")
            attrs = self.mail.requests[-1][0]
            self.assertEqual(attrs["mechanism"], "SCRAM-SHA-256")
            self.assertEqual(attrs["tls"], "0")
            self.assertTrue(token_ok(self.key(), "pop3", "demo",
                                     attrs["token"]))
            self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        # a wrong proof: the same failure as a wrong password
        c = self.greeted()
        sc = Scram("demo", self.password + "x")
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64(sc.client_first().encode()))
        sf = base64.b64decode(r[2:]).decode()
        self.assertEqual(c.cmd(b64(sc.client_final(sf).encode())),
                         "-ERR [AUTH] Authentication failed.")

    def test_failures_delayed_then_disconnect(self):
        c = self.greeted(self.plain_port)
        self.assertok(c.cmd("USER demo"))
        self.assertEqual(c.cmd("PASS wrong"),
                         "-ERR [AUTH] Authentication failed.")
        # another session is served while one waits out its delay
        self.assertok(c.cmd("USER demo"))
        c.send("PASS wrong\r\n")
        other = self.greeted(self.plain_port)
        self.assertok(other.cmd("CAPA"))
        other.multiline()
        self.assertEqual(c.line(), "-ERR [AUTH] Authentication failed.")
        self.assertTrue(c.closed())
        self.assertEqual(self.mail.requests, [])
        self.assertLogHas(self.inst, "Disconnected (auth failed, 2 "
                          "attempts): user=<demo>, method=USER, "
                          "rip=127.0.0.1")
        self.assertLogHas(self.inst, "SASL PLAIN authentication failed")

    def test_mail_side_refuses(self):
        self.mail.answer = "fail"
        c = self.greeted(self.plain_port)
        self.assertok(c.cmd("USER demo"))
        self.assertTrue(c.cmd("PASS " + self.password)
                        .startswith("-ERR [SYS/TEMP] "))
        # the session is still ours
        self.assertok(c.cmd("CAPA"))
        c.multiline()
        self.assertLogHas(self.inst, "test says no")

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_runs_as_login_user_in_chroot(self):
        c = self.greeted()
        pids = self.inst.child_pids("pop3-login")
        self.assertTrue(pids)
        login = pwd.getpwnam("ternlogin")
        for pid in pids:
            with open("/proc/%d/status" % pid) as f:
                status = f.read()
            uids = [l for l in status.splitlines() if l.startswith("Uid:")][0]
            self.assertEqual(set(uids.split()[1:]), {str(login.pw_uid)})
            groups = [l for l in status.splitlines()
                      if l.startswith("Groups:")][0].split()[1:]
            self.assertEqual(groups, [str(login.pw_gid)])
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             os.path.join(self.inst.spool, "login"))
        st = os.stat(os.path.join(self.inst.spool, "login"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777),
                         (0, 0o750))
        self.assertEqual(st.st_gid, login.pw_gid)
        st = os.stat(os.path.join(self.inst.spool, "login", "auth"))
        self.assertEqual((st.st_gid, st.st_mode & 0o777),
                         (login.pw_gid, 0o660))
        c.cmd("QUIT")


class LoginDirTest(TernTestCase):
    """master makes login/ at start (and repairs its mode); a symlink in
    its place stops master before it does any path work there"""

    def test_mode_repaired(self):
        inst = self.instance()
        login = os.path.join(inst.spool, "login")
        os.makedirs(login)
        os.chmod(login, 0o777)
        inst.start()
        st = os.lstat(login)
        self.assertEqual(st.st_mode & 0o7777, 0o750)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_symlink_refused(self):
        inst = self.instance()
        target = os.path.join(inst.dir, "elsewhere")
        os.makedirs(target)
        os.chmod(target, 0o700)
        os.symlink(target, os.path.join(inst.spool, "login"))
        inst.start(wait=False)
        wait_for(lambda: inst.proc.poll() is not None, WAIT,
                 what="master to refuse")
        self.assertNotEqual(inst.proc.returncode, 0)
        self.assertIn("login", inst.master_output() + inst.log_text())
        self.assertEqual(os.stat(target).st_mode & 0o7777, 0o700)
        self.assertEqual(os.listdir(target), [])


if __name__ == "__main__":
    unittest.main()

"""test_auth - the auth service (auth(8)) over private/auth, spoken to
directly with a small attribute-list client: the virtual password table
that mkinstance fills for the demo user, identical replies for a wrong
password and an unknown user, malformed requests dropped and logged,
ternuser changes seen without a restart, and (as root) system users
through the shadow file."""
import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import unittest

from test_smtpd_auth import Scram
from ternlab import BUILD, WAIT, SharedInstanceTestCase, TernTestCase, wait_for

FAIL2BAN = re.compile(r"warning: [-._\w]+\[(?P<host>[^\]]+)\]: SASL "
                      r"(?:LOGIN|PLAIN) authentication failed: "
                      r"authentication failure, sasl_username=(?P<user>\S+)$")


def encode(attrs):
    out = b""
    for name, value in attrs:
        out += name.encode() + b"\0" + value.encode("utf-8", "surrogateescape") + b"\0"
    return out + b"\0"


class AuthClient:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_raw(self):
        """One reply's bytes, or b"" when the server closed first."""
        while True:
            fields, pos = [], 0
            while True:
                end = self.buf.find(b"\0", pos)
                if end < 0:
                    break
                fields.append(self.buf[pos:end])
                pos = end + 1
                if len(fields) % 2 == 1 and fields[-1] == b"":
                    raw, self.buf = self.buf[:pos], self.buf[pos:]
                    return raw
            data = self.sock.recv(4096)
            if not data:
                return b""
            self.buf += data

    def request(self, user, password, mechanism="PLAIN", service="smtp",
                address="192.0.2.7", name="unknown"):
        self.send_raw(encode([("request", "auth"), ("version", "1"),
                              ("mechanism", mechanism), ("service", service),
                              ("user", user), ("password", password),
                              ("client_address", address),
                              ("client_name", name)]))
        return self.read_raw()

    def scram_start(self, user, address="192.0.2.7"):
        self.send_raw(encode([("request", "scram-start"), ("version", "1"),
                              ("mechanism", "SCRAM-SHA-256"),
                              ("service", "smtp"), ("user", user),
                              ("client_address", address),
                              ("client_name", "unknown")]))
        return self.read_raw()

    def scram_finish(self, cfirst, sfirst, cfinal, address="192.0.2.7"):
        self.send_raw(encode([("request", "scram-finish"), ("version", "1"),
                              ("mechanism", "SCRAM-SHA-256"),
                              ("service", "smtp"), ("client_first", cfirst),
                              ("server_first", sfirst),
                              ("client_final", cfinal),
                              ("client_address", address),
                              ("client_name", "unknown")]))
        return self.read_raw()


def decode(raw):
    parts = raw.split(b"\0")[:-2]
    return {parts[i].decode(): parts[i + 1].decode()
            for i in range(0, len(parts), 2)}


class AuthTest(SharedInstanceTestCase):
    def setUp(self):
        self.path = os.path.join(self.inst.spool, "private", "auth")
        wait_for(lambda: os.path.exists(self.path), WAIT, what=self.path)
        with open(os.path.join(self.inst.dir, "demo.password")) as f:
            self.password = f.read().strip()

    def client(self):
        c = AuthClient(self.path)
        self.addCleanup(c.close)
        return c

    def test_right_password(self):
        r = decode(self.client().request("demo", self.password))
        self.assertEqual(r, {"version": "1", "status": "ok",
                             "reason": "authenticated", "user": "demo"})
        self.assertLogHas(self.inst, "unknown[192.0.2.7]: sasl_method=PLAIN, "
                          "sasl_username=demo, service=smtp")

    def test_case_and_login_mechanism(self):
        r = decode(self.client().request("DeMo", self.password, "LOGIN",
                                         "imap"))
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["user"], "demo")

    def test_address_in_a_local_domain(self):
        # a mail client's login is often the address: user@$mydestination
        # is the user; another domain is looked up whole (and unknown)
        c = self.client()
        for user in ("demo@localhost", "Demo@LOCALHOST"):
            r = decode(c.request(user, self.password))
            self.assertEqual((r["status"], r.get("user")), ("ok", "demo"))
        r = decode(c.request("demo@example.org", self.password))
        self.assertEqual(r["status"], "fail")

    def test_wrong_and_unknown_look_alike(self):
        c = self.client()
        wrong = c.request("demo", self.password + "x", address="192.0.2.8")
        unknown = c.request("nosuchuser", self.password, address="192.0.2.8")
        self.assertEqual(decode(wrong), {"version": "1", "status": "fail",
                                         "reason": "authentication failure"})
        self.assertEqual(wrong, unknown)
        # still usable after failures
        self.assertEqual(decode(c.request("demo", self.password))["status"], "ok")
        for user in ("demo", "nosuchuser"):
            wait_for(lambda: any(
                m and m.group("host") == "192.0.2.8" and m.group("user") == user
                for m in map(FAIL2BAN.search, self.inst.log_text().splitlines())),
                WAIT, what="fail2ban-readable line for " + user)

    def assertDropped(self, data, logged):
        c = self.client()
        c.send_raw(data)
        self.assertEqual(c.read_raw(), b"")
        self.assertLogHas(self.inst, logged)

    def scram(self, c, user, password, mangle=lambda sf: sf):
        """one SCRAM exchange straight to auth, smtpd's part done here"""
        r = decode(c.scram_start(user))
        self.assertEqual(set(r), {"version", "status", "reason", "salt",
                                  "iterations"})
        self.assertEqual(r["status"], "continue")
        sc = Scram(user, password)
        sf = mangle("r=%sSRV,s=%s,i=%s" % (sc.nonce, r["salt"],
                                          r["iterations"]))
        cfinal = sc.client_final(sf)
        return sc, r, decode(c.scram_finish(sc.client_first(), sf, cfinal))

    def test_scram(self):
        c = self.client()
        sc, start, r = self.scram(c, "demo", self.password)
        self.assertEqual(r, {"version": "1", "status": "ok",
                             "reason": "authenticated", "user": "demo",
                             "server_final": sc.server_final})
        self.assertEqual(start["iterations"], "4096")
        self.assertEqual(len(base64.b64decode(start["salt"])), 16)
        self.assertLogHas(self.inst, "unknown[192.0.2.7]: sasl_method="
                          "SCRAM-SHA-256, sasl_username=demo, service=smtp")

    def test_scram_wrong_unknown_and_forged(self):
        c = self.client()
        fail = {"version": "1", "status": "fail",
                "reason": "authentication failure"}
        _, s1, r = self.scram(c, "demo", self.password + "x")
        self.assertEqual(r, fail)
        _, s2, r = self.scram(c, "nobody-here", "x")
        self.assertEqual(r, fail)
        _, s3, r = self.scram(c, "nobody-here", "y")
        self.assertEqual(r, fail)
        # the fake secrets look like real ones and stay the same
        self.assertEqual(s2, s3)
        self.assertEqual(len(base64.b64decode(s1["salt"])),
                         len(base64.b64decode(s2["salt"])))
        self.assertEqual(s1["iterations"], s2["iterations"])
        # the right password, but a server-first auth did not make
        for mangle in (lambda sf: sf + ",x=1",
                       lambda sf: sf.replace("i=4096", "i=4097"),
                       lambda sf: "r=x" + sf[2:]):
            _, _, r = self.scram(c, "demo", self.password, mangle)
            self.assertEqual(r, fail)
        self.assertLogHas(self.inst, "SASL SCRAM-SHA-256 authentication "
                          "failed: authentication failure, "
                          "sasl_username=nobody-here")

    def test_scram_fake_salt_shared_by_processes(self):
        """two connections open at once are served by two auth processes
        (one client each); an unknown name gets the same fake salt from
        both, as a real user gets the same real one"""
        c1, c2 = self.client(), self.client()
        for user in ("nobody-here", "demo"):
            r1 = decode(c1.scram_start(user))
            r2 = decode(c2.scram_start(user))
            self.assertEqual(r1["status"], "continue")
            self.assertEqual(r1, r2, user)
        key = os.path.join(self.inst.dir, "data", "auth_scram.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(os.path.getsize(key), 32)

    def test_scram_malformed_dropped(self):
        c = self.client()
        c.send_raw(encode([("request", "scram-start"), ("version", "1"),
                           ("mechanism", "SCRAM-SHA-256"), ("service", "smtp"),
                           ("user", "demo"), ("password", "x"),
                           ("client_address", "192.0.2.7"),
                           ("client_name", "unknown")]))
        self.assertEqual(c.read_raw(), b"")

    def test_malformed_dropped(self):
        good = [("request", "auth"), ("version", "1"), ("mechanism", "PLAIN"),
                ("service", "smtp"), ("user", "demo"),
                ("password", self.password), ("client_address", "192.0.2.9"),
                ("client_name", "unknown")]
        self.assertDropped(encode(good[:5] + good[6:]),
                           "malformed request: missing attribute")
        self.assertDropped(encode(good + [("user", "root")]),
                           "malformed request: duplicate attribute")
        self.assertDropped(encode([("version", "2") if a[0] == "version" else a
                                   for a in good]),
                           "malformed request: unsupported protocol version")
        self.assertDropped(encode([("client_address", "1.2.3.4]: x")
                                   if a[0] == "client_address" else a
                                   for a in good]),
                           "malformed request: bad client_address")
        self.assertDropped(b"BAD NAME\0x\0\0", "auth client: ")
        # the password never reaches the log
        self.assertNotIn(self.password, self.inst.log_text())

    def test_files_private(self):
        for f in (os.path.join(self.inst.etc, "passwords"),
                  os.path.join(self.inst.etc, "passwords.lmdb"),
                  os.path.join(self.inst.dir, "demo.password")):
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o600, f)

    def test_ternuser_change_seen(self):
        new = secrets.token_urlsafe(9)
        env = dict(os.environ, MAIL_CONFIG=self.inst.etc)
        ternuser = os.path.join(BUILD, "sbin", "ternuser")
        subprocess.run([ternuser, "-c", self.inst.etc, "add", "carol"],
                       input=new + "\n", text=True, check=True, env=env)
        self.addCleanup(subprocess.run, [ternuser, "-c", self.inst.etc, "del",
                                         "carol"], env=env)
        out = subprocess.run([ternuser, "-c", self.inst.etc, "list"],
                             capture_output=True, text=True, check=True,
                             env=env).stdout.split()
        self.assertEqual(out, ["demo", "carol"])

        def ok():
            c = AuthClient(self.path)
            try:
                return decode(c.request("carol", new)).get("status") == "ok"
            finally:
                c.close()
        wait_for(ok, WAIT, what="carol authenticates after ternuser add")


class TernuserTest(unittest.TestCase):
    """ternuser on a table given with -f: file modes, exit codes, other
    lines kept, hashes of the preferred kind."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tern-ternuser-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.table = os.path.join(self.dir, "pw")

    def run_tu(self, *args, password=None):
        return subprocess.run([os.path.join(BUILD, "sbin", "ternuser"), "-f",
                               self.table] + list(args),
                              input=password, capture_output=True, text=True)

    def test_add_passwd_del(self):
        self.assertEqual(self.run_tu("add", "Alice", password="one\n").returncode, 0)
        for f in (self.table, self.table + ".lmdb"):
            self.assertEqual(stat.S_IMODE(os.stat(f).st_mode), 0o600, f)
        with open(self.table, "a") as f:
            f.write("# a comment\n")
        self.assertEqual(self.run_tu("add", "alice", password="x\n").returncode, 1)
        self.assertEqual(self.run_tu("passwd", "bob", password="x\n").returncode, 1)
        self.assertEqual(self.run_tu("del", "bob").returncode, 1)
        self.assertEqual(self.run_tu("add", "bob", password="two\n").returncode, 0)
        with open(self.table) as f:
            before = f.read()
        self.assertEqual(self.run_tu("passwd", "ALICE", password="three\n").returncode, 0)
        with open(self.table) as f:
            after = f.read()
        self.assertIn("# a comment\n", after)
        old = [l for l in before.splitlines() if l.startswith("alice ")]
        new = [l for l in after.splitlines() if l.startswith("alice ")]
        self.assertEqual(len(new), 1)
        self.assertNotEqual(old, new)
        self.assertRegex(new[0], r"^alice \$(y|6)\$\S+ scram-sha-256:\S+$")
        self.check_scram(new[0].split()[2], "three")
        self.assertEqual(self.run_tu("list").stdout.split(), ["bob", "alice"])
        self.assertEqual(self.run_tu("del", "alice").returncode, 0)
        self.assertEqual(self.run_tu("list").stdout.split(), ["bob"])

    def check_scram(self, entry, password):
        """entry holds RFC 5802 secrets of password: 4096 iterations, a
        16-byte salt, StoredKey and ServerKey"""
        m = re.fullmatch(r"scram-sha-256:(\d+):([A-Za-z0-9+/=]+):"
                         r"([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)", entry)
        self.assertIsNotNone(m, entry)
        self.assertEqual(m.group(1), "4096")
        salt = base64.b64decode(m.group(2), validate=True)
        self.assertEqual(len(salt), 16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
        ckey = hmac.new(salted, b"Client Key", "sha256").digest()
        self.assertEqual(base64.b64decode(m.group(3)),
                         hashlib.sha256(ckey).digest())
        self.assertEqual(base64.b64decode(m.group(4)),
                         hmac.new(salted, b"Server Key", "sha256").digest())
        self.assertNotIn(password, entry)

    def test_refusals(self):
        for name in ("a b", "-x", "#x", "a:b", "x" * 256, ""):
            self.assertEqual(self.run_tu("add", name, password="p\n").returncode,
                             2, name)
        self.assertEqual(self.run_tu("add", "u", password="").returncode, 2)
        self.assertEqual(self.run_tu("add", "u", password="\n").returncode, 2)
        self.assertEqual(self.run_tu("add", "u", password="p" * 300 + "\n")
                         .returncode, 2)
        self.assertEqual(self.run_tu("frob", "u").returncode, 2)
        self.assertFalse(os.path.exists(self.table))


class AuthTableTest(TernTestCase):
    """Table trouble: a table missing at start is a temporary failure
    until it appears; a value that is not a "$id$" hash (here one that
    traditional DES would have taken as a salt) fails like an unknown
    user."""

    def test_bad_hash_and_missing_table(self):
        inst = self.instance()
        src = os.path.join(inst.etc, "passwords")
        with open(src, "a") as f:
            f.write("broken not-a-crypt-hash\n")
            # traditional DES of "desbad": weak, never accepted
            f.write("oldhash abIExh6GxmeeY\n")
        subprocess.run([os.path.join(BUILD, "sbin", "ternmap"), "-c", inst.etc,
                        "lmdb:" + src], check=True,
                       env=dict(os.environ, MAIL_CONFIG=inst.etc))
        # a table that is not there (yet) when auth starts: tempfail
        lmdb = src + ".lmdb"
        os.rename(lmdb, lmdb + ".away")
        inst.start()
        path = os.path.join(inst.spool, "private", "auth")
        wait_for(lambda: os.path.exists(path), WAIT, what=path)
        c = AuthClient(path)
        self.addCleanup(c.close)
        self.assertEqual(decode(c.request("demo", "whatever")),
                         {"version": "1", "status": "tempfail",
                          "reason": "temporary failure"})
        self.assertLogHas(inst, "temporary failure: password table lookup "
                          "failed, sasl_username=demo")
        os.rename(lmdb + ".away", lmdb)
        wait_for(lambda: decode(c.request("demo", "whatever"))["status"]
                 == "fail", WAIT, what="the table is back")

        self.assertEqual(c.request("broken", "not-a-crypt-hash"),
                         c.request("nosuchuser", "not-a-crypt-hash"))
        self.assertEqual(decode(c.request("broken", "x"))["status"], "fail")
        self.assertEqual(c.request("oldhash", "desbad"),
                         c.request("nosuchuser", "desbad"))
        self.assertLogHas(inst, "unusable password hash")

    def test_hash_without_scram_secrets(self):
        """a value written by an older ternuser (the crypt hash alone,
        blanks around it) still authenticates PLAIN"""
        inst = self.instance()
        with open(os.path.join(inst.dir, "demo.password")) as f:
            password = f.read().strip()
        src = os.path.join(inst.etc, "passwords")
        with open(src) as f:
            lines = f.read().splitlines()
        demo = [l for l in lines if l.startswith("demo ")]
        self.assertEqual(len(demo), 1)
        self.assertIn(" scram-sha-256:", demo[0])
        lines = [l for l in lines if not l.startswith("demo ")]
        lines.append("demo   %s  " % demo[0].split()[1])
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run([os.path.join(BUILD, "sbin", "ternmap"), "-c", inst.etc,
                        "lmdb:" + src], check=True,
                       env=dict(os.environ, MAIL_CONFIG=inst.etc))
        inst.start()
        path = os.path.join(inst.spool, "private", "auth")
        wait_for(lambda: os.path.exists(path), WAIT, what=path)
        c = AuthClient(path)
        self.addCleanup(c.close)
        self.assertEqual(decode(c.request("demo", password))["status"], "ok")
        self.assertEqual(decode(c.request("demo", password + "x"))["status"],
                         "fail")


@unittest.skipUnless(os.geteuid() == 0, "system users need root")
class SystemUserTest(SharedInstanceTestCase):
    def setUp(self):
        self.path = os.path.join(self.inst.spool, "private", "auth")
        wait_for(lambda: os.path.exists(self.path), WAIT, what=self.path)
        self.user = "ternt" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(12)
        subprocess.run(["useradd", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin",
                        self.user], check=True)
        self.addCleanup(subprocess.run, ["userdel", self.user], check=False)
        subprocess.run(["chpasswd"], input="%s:%s\n" % (self.user, self.password),
                       text=True, check=True)

    def test_system_user(self):
        c = AuthClient(self.path)
        self.addCleanup(c.close)
        r = decode(c.request(self.user, self.password, service="pop3"))
        # a pop3 login carries auth's login token (mail/login_token.h)
        self.assertRegex(r.pop("token", ""), r"^1\.[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64}$")
        self.assertEqual(r, {"version": "1", "status": "ok",
                             "reason": "authenticated", "user": self.user})
        smtp = decode(c.request(self.user, self.password))
        self.assertEqual(smtp["status"], "ok")
        self.assertNotIn("token", smtp)
        wrong = c.request(self.user, "not-" + self.password)
        self.assertEqual(decode(wrong)["status"], "fail")
        self.assertEqual(wrong, c.request("nosuch" + self.user, self.password))

    def test_root_refused(self):
        c = AuthClient(self.path)
        self.addCleanup(c.close)
        self.assertEqual(decode(c.request("root", "anything"))["status"], "fail")


if __name__ == "__main__":
    unittest.main()

"""smtpd TLS: STARTTLS (RFC 3207) on the smtp port, TLS required on the
submission port, implicit TLS on the smtps port, against live instances
made like `make run` (self-signed certificate from scripts/mkinstance.py).
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from ternlab import (WAIT, SharedInstanceTestCase, SmtpClient, TernTestCase,
                     wait_for, client_context)

HAVE_OPENSSL = shutil.which("openssl") is not None


def demo_password(inst):
    """submission and smtps require AUTH (mkinstance)"""
    with open(inst.dir + "/demo.password") as f:
        return f.read().strip()
class Pki:
    """A test CA and certificates signed by it (or self-signed), made with
    the openssl command in a temporary directory."""

    def __init__(self, testcase):
        self.dir = tempfile.mkdtemp(prefix="tern-pki-")
        testcase.addCleanup(shutil.rmtree, self.dir, True)
        self.ca = self.path("ca.pem")
        self.ca_key = self.path("ca.key")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     self.ca_key, "-out", self.ca, "-days", "30", "-subj",
                     "/CN=Tern Test CA", "-addext",
                     "basicConstraints=critical,CA:TRUE", "-addext",
                     "keyUsage=critical,keyCertSign,cRLSign")

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True, timeout=60)

    def cert(self, cn, signed=True, client=False):
        """(cert path, key path, combined key+cert path) for cn."""
        cert, key = self.path(cn + ".pem"), self.path(cn + ".key")
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", cert, "-days", "30", "-subj", "/CN=" + cn,
                "-addext", "subjectAltName=DNS:" + cn, "-addext",
                "extendedKeyUsage=" + ("clientAuth" if client
                                       else "serverAuth"),
                "-addext", "basicConstraints=CA:FALSE"]
        if signed:
            args += ["-CA", self.ca, "-CAkey", self.ca_key]
        self.openssl(*args)
        combined = self.path(cn + ".chain")
        with open(combined, "w") as out:
            for f in (key, cert) + ((self.ca,) if signed else ()):
                with open(f) as src:
                    out.write(src.read())
        os.chmod(combined, 0o600)
        return cert, key, combined


def der(path):
    """The DER form of the first certificate of a PEM file."""
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def fingerprint(path):
    """SHA-256 of the certificate, as Postfix prints it (AB:CD:...)."""
    import hashlib
    d = hashlib.sha256(der(path)).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


def tls_version_context(version):
    """A client context that speaks exactly one TLS version."""
    ctx = client_context()
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def starttls_raw(port, ctx, server_hostname=None, session=None):
    """EHLO, STARTTLS, handshake; returns the TLS socket (the 220 and
    EHLO reply read)."""
    c = SmtpClient(port)
    assert c.reply()[0].startswith("220 ")
    c.send(b"EHLO client.test\r\n")
    assert c.reply()[-1].startswith("250 ")
    c.send(b"STARTTLS\r\n")
    assert c.replies(1) == ["220 2.0.0 Ready to start TLS"]
    t = ctx.wrap_socket(c.sock, server_hostname=server_hostname,
                        session=session)
    t.settimeout(WAIT)
    return t


def tls_command(t, line):
    """One command over TLS; its (last) reply line. Reading the reply
    also receives TLS 1.3 session tickets."""
    t.sendall(line + b"\r\n")
    buf = b""
    while True:
        chunk = t.recv(65536)
        if not chunk:
            return buf.decode("latin-1")
        buf += chunk
        lines = buf.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return lines[-2].decode("latin-1")


def message(subject):
    return ("From: a@example.org\r\nTo: demo@localhost\r\nSubject: %s\r\n"
            "\r\nbody\r\n" % subject)


def read_to_eof(sock):
    """Everything the server sends until it closes (or resets)."""
    sock.settimeout(WAIT)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except (ConnectionResetError, ssl.SSLError):
        return got


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsTest(SharedInstanceTestCase):
    TLS = True
    MAIN = {"smtpd_error_sleep_time": "0"}

    def raw(self, port=None, ehlo=True):
        c = SmtpClient(port or self.inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        if ehlo:
            c.send(b"EHLO client.test\r\n")
            self.assertTrue(c.reply()[-1].startswith("250 "))
        return c

    def smtp(self, port=None):
        s = smtplib.SMTP("127.0.0.1", port or self.inst.smtp_port,
                         "client.test", timeout=WAIT)
        self.addCleanup(s.close)
        return s

    def delivered(self, subject):
        def find():
            for m in self.inst.messages("demo"):
                if ("Subject: %s\n" % subject).encode() in m:
                    return m
            return None
        return wait_for(find, 60, 0.1, "message %r" % subject)

    def test_starttls_delivers(self):
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        code, text = s.starttls(context=client_context())
        self.assertEqual((code, text), (220, b"2.0.0 Ready to start TLS"))
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertTrue(s.has_extn("pipelining"))
        s.sendmail("a@example.org", ["demo@localhost"],
                   message("over starttls"))
        s.quit()
        m = self.delivered("over starttls")
        self.assertRegex(m, rb"(?m)^Received: from client\.test \(unknown "
                            rb"\[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] with "
                            rb"cipher \S+ \(\d+/\d+ bits\)\)\n\tby \S+ \(Tern\) "
                            rb"with ESMTPS id ")
        self.assertLogHas(self.inst, "Anonymous TLS connection established "
                          "from unknown[127.0.0.1]: TLSv1.")
        self.assertLogHas(self.inst, "ehlo=2 starttls=1 mail=1 rcpt=1 "
                          "data=1 quit=1 commands=7")

    def test_plaintext_session_unchanged(self):
        s = self.smtp()
        s.sendmail("a@example.org", ["demo@localhost"], message("plain"))
        s.quit()
        m = self.delivered("plain")
        self.assertNotIn(b"(using ", m)
        self.assertIn(b"with ESMTP id ", m)

    def test_starttls_with_rset_in_one_packet(self):
        """CVE-2011-0411: a command injected behind STARTTLS is never
        executed, neither in plaintext nor after the handshake."""
        c = self.raw()
        c.send(b"STARTTLS\r\nRSET\r\n")
        self.assertEqual(c.replies(1),
                         ["554 5.5.0 Error: SMTP protocol synchronization"])
        self.assertNotIn(b"250", c.buf + read_to_eof(c.sock))
        self.assertLogHas(self.inst, "improper command pipelining after "
                          "STARTTLS from unknown[127.0.0.1]: RSET")

    def test_plaintext_after_starttls_reply(self):
        """Plaintext where the ClientHello belongs ends the session: it
        is never read as a command."""
        c = self.raw()
        before = self.inst.log_text().count("SSL_accept error from")
        c.send(b"STARTTLS\r\n")
        self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
        c.send(b"RSET\r\nNOOP\r\n")
        self.assertNotIn(b"250", read_to_eof(c.sock))
        wait_for(lambda: self.inst.log_text().count("SSL_accept error from "
                                                    "unknown[127.0.0.1]: ")
                 > before, WAIT, 0.1, "an SSL_accept error line")

    def test_starttls_argument(self):
        c = self.raw()
        c.send(b"STARTTLS now\r\nNOOP\r\n")
        self.assertEqual(c.replies(2), ["501 5.5.4 Syntax: STARTTLS",
                                        "250 2.0.0 Ok"])

    def test_starttls_twice(self):
        """Postfix's reply to STARTTLS inside TLS."""
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_context())
        s.ehlo()
        self.assertEqual(s.docmd("STARTTLS"),
                         (554, b"5.5.1 Error: TLS already active"))
        self.assertEqual(s.noop()[0], 250)      # still talking TLS

    def test_tls12_and_tls13_accepted(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                              (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                t = starttls_raw(self.inst.smtp_port,
                                 tls_version_context(version))
                self.addCleanup(t.close)
                self.assertEqual(t.version(), name)
                self.assertTrue(tls_command(t, b"EHLO client.test")
                                .startswith("250 "))
                self.assertLogHas(self.inst, "TLS connection established "
                                  "from unknown[127.0.0.1]: %s with cipher"
                                  % name)

    def test_medium_grade_accepts_cbc(self):
        """smtpd_tls_ciphers=medium (the default) keeps AES-CBC for old
        TLS 1.2 peers."""
        ctx = tls_version_context(ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        t = starttls_raw(self.inst.smtp_port, ctx)
        self.addCleanup(t.close)
        self.assertEqual(t.cipher()[0], "ECDHE-ECDSA-AES128-SHA")

    def test_injection_bare_newlines(self):
        """STARTTLS and an injected command with bare LF line ends in one
        packet: the injected command never runs."""
        c = self.raw()
        c.send(b"STARTTLS\nRSET\n")
        got = c.buf + read_to_eof(c.sock)
        self.assertEqual(got, b"554 5.5.0 Error: SMTP protocol "
                              b"synchronization\r\n")

    def test_injection_split_writes(self):
        """STARTTLS in pieces and a command behind it, all written before
        the 220 could be read: the command is never executed, in
        plaintext or over TLS."""
        c = self.raw()
        for piece in (b"STAR", b"TTLS\r", b"\nRS", b"ET\r\n"):
            c.send(piece)
        got = c.buf + read_to_eof(c.sock)
        self.assertNotIn(b"250", got)
        self.assertLogHas(self.inst, "improper command pipelining after "
                          "STARTTLS from unknown[127.0.0.1]")

    def test_state_forgotten_after_starttls(self):
        """RFC 3207 4.2: MAIL given before STARTTLS does not survive it."""
        c = self.raw()
        c.send(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(c.replies(1), ["250 2.1.0 Ok"])
        c.send(b"STARTTLS\r\n")
        self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
        t = client_context().wrap_socket(c.sock)
        self.addCleanup(t.close)
        t.sendall(b"RCPT TO:<demo@localhost>\r\n")
        self.assertEqual(t.recv(4096), b"503 5.5.1 Error: need MAIL command\r\n")

    def test_handshake_garbage_then_others_served(self):
        c = self.raw()
        c.send(b"STARTTLS\r\n")
        self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
        c.send(b"\x16\x03\x01\x00\x10" + b"\xff" * 16)
        read_to_eof(c.sock)
        self.assertLogHas(self.inst, "SSL_accept error from unknown[127.0.0.1]")
        s = self.smtp()
        s.starttls(context=client_context())
        s.sendmail("a@example.org", ["demo@localhost"], message("after junk"))
        s.quit()
        self.delivered("after junk")

    def test_old_protocols_refused(self):
        ctx = client_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError) as e:
            self.skipTest("skipped: this OpenSSL cannot offer TLS 1.1: %s" % e)
        before = self.inst.log_text().count("SSL_accept error from")
        s = self.smtp()
        s.ehlo()
        with self.assertRaises((ssl.SSLError, OSError)):
            s.starttls(context=ctx)
        wait_for(lambda: self.inst.log_text().count("SSL_accept error from")
                 > before, WAIT, 0.1, "the server's SSL_accept error")

    def test_smtps_implicit_tls(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.inst.smtps_port, "client.test",
                             timeout=WAIT, context=client_context())
        self.addCleanup(s.close)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertEqual(s.docmd("STARTTLS")[0], 554)
        s.login("demo", demo_password(self.inst))
        self.assertEqual(s.docmd("STARTTLS")[0], 554)
        s.sendmail("a@example.org", ["demo@localhost"], message("over smtps"))
        s.quit()
        m = self.delivered("over smtps")
        self.assertRegex(m, rb"\(using TLSv1\.[23] with cipher [^\n]*\)\n"
                            rb"\tby \S+ \(Tern\) with ESMTPSA id ")

    def test_smtps_plaintext_client_gets_no_greeting(self):
        c = SmtpClient(self.inst.smtps_port)
        self.addCleanup(c.close)
        c.send(b"EHLO client.test\r\n")
        self.assertNotIn(b"220", read_to_eof(c.sock))

    def test_submission_requires_tls(self):
        s = self.smtp(self.inst.submission_port)
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        for cmd in ("MAIL FROM:<a@example.org>", "RCPT TO:<demo@localhost>",
                    "VRFY demo"):
            self.assertEqual(s.docmd(cmd), (530, b"5.7.0 Must issue a "
                                                 b"STARTTLS command first"))
        s.starttls(context=client_context())
        s.ehlo()
        s.login("demo", demo_password(self.inst))
        s.sendmail("a@example.org", ["demo@localhost"],
                   message("over submission"))
        s.quit()
        self.assertIn(b"with ESMTPSA id ", self.delivered("over submission"))

    @unittest.skipUnless(shutil.which("swaks"), "skipped: needs swaks")
    def test_swaks_tls(self):
        support = subprocess.run(["swaks", "--support"], capture_output=True,
                                 text=True).stdout
        if "TLS not available" in support:
            self.skipTest("skipped: swaks without TLS (Net::SSLeay)")
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d"
                            % self.inst.smtp_port, "--tls", "--to",
                            "demo@localhost", "--from", "a@example.org",
                            "--helo", "client.test",
                            "--header", "Subject: via swaks"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"with ESMTPS id ", self.delivered("via swaks"))


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsPolicyTest(TernTestCase):
    """Settings that need their own instance."""

    def test_injection_discarded_without_pipelining_check(self):
        """With smtpd_forbid_unauth_pipelining=no the TLS barrier alone
        throws the injected command away."""
        inst = self.instance(tls=True, main={
            "smtpd_forbid_unauth_pipelining": "no"})
        inst.start()
        for packet, n in ((b"STARTTLS\r\nHELP\r\n", 6),
                          (b"STARTTLS\nHELP\nRSET\n", 10)):
            c = SmtpClient(inst.smtp_port)
            self.addCleanup(c.close)
            c.reply()
            c.send(packet)
            self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
            t = client_context().wrap_socket(c.sock)
            self.addCleanup(t.close)
            t.sendall(b"NOOP\r\n")
            self.assertEqual(t.recv(4096), b"250 2.0.0 Ok\r\n")
            self.assertLogHas(inst, "improper command pipelining after "
                              "STARTTLS from unknown[127.0.0.1]: %d bytes "
                              "discarded" % n)

    def test_no_certificate(self):
        # STARTTLS asked for, but no certificate configured
        inst = self.instance(main={"smtpd_tls_security_level": "may"})
        inst.start()
        for _ in range(3):
            with inst.smtp() as s:
                s.ehlo()
                self.assertFalse(s.has_extn("starttls"))
                self.assertEqual(s.docmd("STARTTLS")[0], 454)
        self.assertLogHas(inst, "disconnect from unknown[127.0.0.1] ehlo=1 "
                          "starttls=0/1")
        text = inst.log_text()
        pids = re.findall(r"tern/smtpd\[(\d+)\]: warning: no server "
                          r"certificate \(smtpd_tls_cert_file is empty\): "
                          r"STARTTLS is not offered", text)
        self.assertTrue(pids, text[-3000:])
        self.assertEqual(len(pids), len(set(pids)), "said more than once")

    def test_level_none(self):
        inst = self.instance(tls=True, main={"smtpd_tls_security_level":
                                             "none"})
        inst.start()
        with inst.smtp() as s:
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.docmd("STARTTLS"),
                             (502, b"5.5.1 Error: command not implemented"))
        self.assertNotIn("no server certificate", inst.log_text())

    def test_handshake_deadline(self):
        """A client that never sends its ClientHello is cut off by
        smtpd_timeout."""
        inst = self.instance(tls=True, main={"smtpd_timeout": "2s"})
        inst.start()
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"STARTTLS\r\n")
        self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
        # half a ClientHello record header on the smtps port: stuck too
        w = socket.create_connection(("127.0.0.1", inst.smtps_port), WAIT)
        self.addCleanup(w.close)
        w.sendall(b"\x16\x03")
        # the stuck handshakes hold up nobody
        s = smtplib.SMTP("127.0.0.1", inst.smtp_port, "client.test",
                         timeout=WAIT)
        self.addCleanup(s.close)
        s.starttls(context=client_context())
        s.sendmail("a@example.org", ["demo@localhost"], message("beside"))
        s.quit()
        inst.wait_messages("demo", 1)
        self.assertEqual(read_to_eof(c.sock), b"")
        self.assertEqual(read_to_eof(w), b"")
        self.assertLogHas(inst, "timeout during TLS handshake from "
                          "unknown[127.0.0.1]")
        wait_for(lambda: inst.log_text().count("timeout during TLS "
                                               "handshake from") >= 2,
                 WAIT, 0.1, "two handshake timeouts")
        self.assertLogHas(inst, "disconnect from unknown[127.0.0.1] "
                          "starttls=1 commands=1")


def handshake_fails(port, ctx):
    """True when the STARTTLS handshake with ctx is refused."""
    try:
        t = starttls_raw(port, ctx)
    except (ssl.SSLError, OSError):
        return True
    t.close()
    return False


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsSettingsTest(TernTestCase):
    """Protocols, ciphers, certificates: each with its own instance."""

    def test_protocol_parameters(self):
        """smtpd_tls_protocols applies at level may (smtp), the mandatory
        variant at level encrypt (submission)."""
        inst = self.instance(tls=True, main={
            "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, "
                                   "!TLSv1.2",
            "smtpd_tls_mandatory_protocols": "<=TLSv1.2"})
        inst.start()
        v12 = tls_version_context(ssl.TLSVersion.TLSv1_2)
        v13 = tls_version_context(ssl.TLSVersion.TLSv1_3)
        self.assertTrue(handshake_fails(inst.smtp_port, v12))
        self.assertFalse(handshake_fails(inst.smtp_port, v13))
        self.assertTrue(handshake_fails(inst.submission_port, v13))
        self.assertFalse(handshake_fails(inst.submission_port, v12))

    def test_high_grade_refuses_cbc(self):
        inst = self.instance(tls=True, main={"smtpd_tls_ciphers": "high"})
        inst.start()
        cbc = tls_version_context(ssl.TLSVersion.TLSv1_2)
        cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        self.assertTrue(handshake_fails(inst.smtp_port, cbc))
        gcm = tls_version_context(ssl.TLSVersion.TLSv1_2)
        gcm.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertFalse(handshake_fails(inst.smtp_port, gcm))

    def test_bad_protocols_no_starttls(self):
        """A protocol list that cannot be honoured turns TLS off (loudly)
        rather than into OpenSSL's defaults."""
        inst = self.instance(tls=True, main={"smtpd_tls_protocols":
                                             "TLSv1.2, TLSv9"})
        inst.start()
        with inst.smtp() as s:
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.docmd("STARTTLS")[0], 454)
        self.assertLogHas(inst, 'smtpd_tls_protocols: unknown TLS protocol '
                          '"TLSv9"; STARTTLS is not offered')

    def test_sni_selects_certificate(self):
        pki = Pki(self)
        a = pki.cert("a.example")
        sub = pki.cert("wild.sub.example")
        bad = pki.path("broken.chain")
        with open(bad, "w") as f:
            f.write("not PEM\n")
        inst = self.instance(tls=True, main={
            # a list of tables: the first that has a name wins
            "tls_server_sni_maps": "inline:{a.example=%s, .sub.example=%s, "
                                   "broken.example=%s}, inline:{a.example=%s}"
                                   % (a[2], sub[2], bad, sub[2])})
        inst.start()
        default = der(os.path.join(inst.etc, "smtpd.pem"))
        for name, want in (("a.example", der(a[0])),
                           ("A.Example", der(a[0])),
                           ("x.sub.example", der(sub[0])),
                           ("y.x.sub.example", der(sub[0])),
                           ("sub.example", default),
                           ("b.example", default),
                           ("broken.example", default),
                           (None, default)):
            with self.subTest(name=name):
                for port in (inst.smtp_port, inst.smtps_port):
                    if port == inst.smtp_port:
                        t = starttls_raw(port, client_context(), name)
                    else:
                        t = client_context().wrap_socket(
                            socket.create_connection(("127.0.0.1", port),
                                                     WAIT),
                            server_hostname=name)
                    self.addCleanup(t.close)
                    self.assertEqual(t.getpeercert(binary_form=True), want)
        self.assertLogHas(inst, "SNI name broken.example: ")

    def test_sni_lmdb_table(self):
        ternmap = os.path.join(os.environ.get("TERN_BUILD") or
                               os.path.join(os.path.dirname(__file__), "..",
                                            "..", "build"), "sbin", "ternmap")
        if not os.path.exists(ternmap):
            self.skipTest("skipped: no ternmap")
        pki = Pki(self)
        b = pki.cert("b.example")
        table = pki.path("sni")
        with open(table, "w") as f:
            f.write("b.example %s\n" % b[2])
        inst = self.instance(tls=True, main={"tls_server_sni_maps":
                                             "lmdb:" + table})
        subprocess.run([ternmap, "-c", inst.etc, "lmdb:" + table],
                       check=True, capture_output=True, timeout=60)
        inst.start()
        t = starttls_raw(inst.smtp_port, client_context(), "b.example")
        self.addCleanup(t.close)
        self.assertEqual(t.getpeercert(binary_form=True), der(b[0]))

    def test_chain_files(self):
        """smtpd_tls_chain_files: key, certificate and CA in one file;
        the client verifies the chain against the CA."""
        pki = Pki(self)
        srv = pki.cert("mx.example")
        inst = self.instance(tls=True, main={"smtpd_tls_chain_files": srv[2]})
        inst.start()
        ctx = ssl.create_default_context(cafile=pki.ca)
        t = starttls_raw(inst.smtp_port, ctx, "mx.example")
        self.addCleanup(t.close)
        self.assertEqual(t.getpeercert(binary_form=True), der(srv[0]))


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsClientCertTest(TernTestCase):

    def setUp(self):
        self.pki = Pki(self)
        self.good = self.pki.cert("client.example", client=True)
        self.selfsigned = self.pki.cert("self.example", signed=False,
                                        client=True)

    def ctx(self, cert=None):
        ctx = client_context()
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        return ctx

    def test_ask_ccert(self):
        inst = self.instance(tls=True, main={
            "smtpd_tls_ask_ccert": "yes", "smtpd_tls_CAfile": self.pki.ca})
        inst.start()
        for cert, kind in ((self.good, "Trusted"),
                           (self.selfsigned, "Untrusted"), (None, "Anonymous")):
            with self.subTest(kind=kind):
                before = inst.log_text().count(kind + " TLS connection")
                t = starttls_raw(inst.smtp_port, self.ctx(cert))
                self.addCleanup(t.close)
                self.assertTrue(tls_command(t, b"EHLO client.test")
                                .startswith("250 "))
                wait_for(lambda: inst.log_text().count(
                    kind + " TLS connection established from "
                    "unknown[127.0.0.1]: TLSv1.") > before, WAIT, 0.1,
                    kind + " line")
                if cert:
                    self.assertLogHas(inst, "unknown[127.0.0.1]: subject_CN=%s,"
                                      " issuer=%s, fingerprint=%s" % (
                                          os.path.basename(cert[0])[:-4],
                                          "Tern Test CA" if cert is self.good
                                          else "self.example",
                                          fingerprint(cert[0])))
        self.assertLogHas(inst, "client certificate verification failed for "
                          "unknown[127.0.0.1]: ")

    def test_req_ccert(self):
        """Required at level encrypt (submission); only a warning at level
        may (smtp)."""
        inst = self.instance(tls=True, main={
            "smtpd_tls_req_ccert": "yes", "smtpd_tls_CAfile": self.pki.ca})
        inst.start()
        for cert, want in ((None, "No client certificate presented"),
                           (self.selfsigned, "Client certificate not trusted")):
            with self.subTest(want=want):
                t = starttls_raw(inst.submission_port, self.ctx(cert))
                self.addCleanup(t.close)
                got = t.recv(4096)
                self.assertEqual(got, ("421 4.7.1 localhost.localdomain "
                                       "Error: %s\r\n" % want).encode())
                self.assertLogHas(inst, "NOQUEUE: abort: TLS from "
                                  "unknown[127.0.0.1]: " + want)
        t = starttls_raw(inst.submission_port, self.ctx(self.good))
        self.addCleanup(t.close)
        self.assertTrue(tls_command(t, b"EHLO client.test").startswith("250 "))
        t = starttls_raw(inst.smtp_port, self.ctx(None))
        self.addCleanup(t.close)
        self.assertTrue(tls_command(t, b"EHLO client.test").startswith("250 "))
        self.assertLogHas(inst, "smtpd_tls_req_ccert applies only with "
                          "smtpd_tls_security_level=encrypt: ignored")


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsResumeTest(SharedInstanceTestCase):
    """Session resumption with tickets. max_use=1: every connection gets a
    new smtpd process, so resuming proves the ticket key is shared."""
    TLS = True
    MAIN = {"max_use": "1"}

    def first_session(self, version, wrapper=False):
        ctx = tls_version_context(version)
        t = self.connect(ctx, None, wrapper)
        tls_command(t, b"EHLO client.test")
        tls_command(t, b"NOOP")     # the TLS 1.3 tickets have arrived
        sess = t.session
        self.assertFalse(t.session_reused)
        tls_command(t, b"QUIT")
        t.close()
        return ctx, sess

    def connect(self, ctx, session, wrapper):
        if wrapper:
            t = ctx.wrap_socket(socket.create_connection(
                ("127.0.0.1", self.inst.smtps_port), WAIT), session=session)
            t.settimeout(WAIT)
            buf = b""
            while not buf.endswith(b"\r\n"):
                buf += t.recv(4096)
            self.assertTrue(buf.startswith(b"220 "))
        else:
            t = starttls_raw(self.inst.smtp_port, ctx, session=session)
        self.addCleanup(t.close)
        return t

    def resume(self, version, wrapper=False):
        ctx, sess = self.first_session(version, wrapper)
        self.assertIsNotNone(sess)
        before = self.inst.log_text().count("TLS connection reused from")
        t = self.connect(ctx, sess, wrapper)
        self.assertTrue(tls_command(t, b"EHLO client.test").startswith("250 "))
        self.assertTrue(t.session_reused)
        wait_for(lambda: self.inst.log_text().count(
            "Anonymous TLS connection reused from unknown[127.0.0.1]: ")
            > before, WAIT, 0.1, "the reused line")

    def test_resume_tls13_starttls(self):
        self.resume(ssl.TLSVersion.TLSv1_3)

    def test_resume_tls12_starttls(self):
        self.resume(ssl.TLSVersion.TLSv1_2)

    def test_resume_tls13_wrapper(self):
        self.resume(ssl.TLSVersion.TLSv1_3, wrapper=True)

    def test_resume_tls12_wrapper(self):
        self.resume(ssl.TLSVersion.TLSv1_2, wrapper=True)

    def test_ticket_key_file(self):
        path = os.path.join(self.inst.dir, "data", "smtpd_tls_ticket.key")
        st = wait_for(lambda: os.path.exists(path) and os.stat(path), WAIT,
                      0.1, path)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(st.st_uid, os.geteuid())
        self.assertEqual(st.st_size, 160)


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdTlsTicketKeyTest(TernTestCase):
    """The ticket key file: made once, rotated when old, never trusted
    when others could have written it."""

    def key_file(self, inst):
        return os.path.join(inst.dir, "data", "smtpd_tls_ticket.key")

    def read_key(self, inst):
        path = self.key_file(inst)
        wait_for(lambda: os.path.exists(path), WAIT, 0.1, path)
        with open(path, "rb") as f:
            return f.read()

    def handshake(self, inst):
        t = starttls_raw(inst.smtp_port, client_context())
        tls_command(t, b"NOOP")
        t.close()

    def test_rotation(self):
        inst = self.instance(tls=True, main={"max_use": "1"})
        inst.start()
        self.handshake(inst)
        first = self.read_key(inst)
        self.handshake(inst)
        self.assertEqual(self.read_key(inst), first)     # not rotated
        old = os.stat(self.key_file(inst)).st_mtime - 2 * 86400
        os.utime(self.key_file(inst), (old, old))
        # the next smtpd process rotates: new key first, the old one second
        wait_for(lambda: (self.handshake(inst), self.read_key(inst))[1]
                 != first, WAIT, 0.1, "a rotated key")
        rotated = self.read_key(inst)
        self.assertEqual(rotated[80:], first[:80])
        self.assertNotEqual(rotated[:80], first[:80])
        self.assertLogHas(inst, "new TLS session ticket key in ")

    def test_planted_key_not_used(self):
        """A key file others can read is replaced, not used."""
        inst = self.instance(tls=True)
        path = self.key_file(inst)
        planted = bytes(range(160))
        with open(path, "wb") as f:
            f.write(planted)
        os.chmod(path, 0o644)
        inst.start()
        self.handshake(inst)
        wait_for(lambda: self.read_key(inst) != planted, WAIT, 0.1,
                 "a new key")
        self.assertNotIn(planted[:80], self.read_key(inst))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_unsafe_directory(self):
        """data_directory writable by others: no shared key, a warning,
        TLS still works."""
        inst = self.instance(tls=True)
        os.chmod(os.path.join(inst.dir, "data"), 0o777)
        inst.start()
        self.handshake(inst)
        self.assertLogHas(inst, "TLS session ticket key %s: data_directory "
                          "must be a directory of ours, not writable by "
                          "group or others" % self.key_file(inst))
        self.assertFalse(os.path.exists(self.key_file(inst)))

    def test_timeout_zero_disables_resumption(self):
        inst = self.instance(tls=True, main={
            "smtpd_tls_session_cache_timeout": "0"})
        inst.start()
        ctx = tls_version_context(ssl.TLSVersion.TLSv1_2)
        t = starttls_raw(inst.smtp_port, ctx)
        tls_command(t, b"NOOP")
        sess = t.session
        t.close()
        t = starttls_raw(inst.smtp_port, ctx, session=sess)
        self.addCleanup(t.close)
        tls_command(t, b"NOOP")
        self.assertFalse(t.session_reused)


if __name__ == "__main__":
    unittest.main()

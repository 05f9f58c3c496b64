"""smtpd TLS: STARTTLS (RFC 3207) on the smtp port, TLS required on the
submission port, implicit TLS on the smtps port, against live instances
made like `make run` (self-signed certificate from scripts/mkinstance.py).
"""
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import unittest

from ternlab import (WAIT, SharedInstanceTestCase, SmtpClient, TernTestCase,
                     wait_for)

HAVE_OPENSSL = shutil.which("openssl") is not None


def client_context():
    """A client context that accepts the instance's self-signed cert."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def demo_password(inst):
    """submission and smtps require AUTH (mkinstance)"""
    with open(inst.dir + "/demo.password") as f:
        return f.read().strip()


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
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_context())
        s.ehlo()
        self.assertEqual(s.docmd("STARTTLS"),
                         (503, b"5.5.1 Error: TLS already active"))
        self.assertEqual(s.noop()[0], 250)      # still talking TLS

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
        self.assertEqual(s.docmd("STARTTLS")[0], 503)
        s.login("demo", demo_password(self.inst))
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
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"STARTTLS\r\nHELP\r\n")
        self.assertEqual(c.replies(1), ["220 2.0.0 Ready to start TLS"])
        t = client_context().wrap_socket(c.sock)
        self.addCleanup(t.close)
        t.sendall(b"NOOP\r\n")
        self.assertEqual(t.recv(4096), b"250 2.0.0 Ok\r\n")
        self.assertLogHas(inst, "improper command pipelining after STARTTLS "
                          "from unknown[127.0.0.1]: 6 bytes discarded")

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
        self.assertEqual(read_to_eof(c.sock), b"")
        self.assertLogHas(inst, "timeout during TLS handshake from "
                          "unknown[127.0.0.1]")
        self.assertLogHas(inst, "disconnect from unknown[127.0.0.1] "
                          "starttls=1 commands=1")


if __name__ == "__main__":
    unittest.main()

"""smtpd TLS under load: 200 clients in TLS sessions at the same time,
each STARTTLS and one message; every message is accepted and delivered
exactly once. Waits on conditions only (never on a duration)."""
import shutil
import socket
import ssl
import threading
import unittest

from ternlab import WAIT, SmtpClient, TernTestCase, client_context

CLIENTS = 200
# reached only when something is broken: the sessions wait for each other
# (a barrier), which under a sanitizer build on a busy machine takes long
LONG = 600


def tls_reply(t, buf):
    """(last line of the next reply, the rest of buf)"""
    while True:
        lines = buf.split(b"\r\n")
        for i, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" ":
                return line.decode("latin-1"), b"\r\n".join(lines[i + 1:])
        chunk = t.recv(65536)
        if not chunk:
            raise EOFError("closed; pending %r" % buf)
        buf += chunk


@unittest.skipUnless(shutil.which("openssl"), "skipped: needs openssl")
class SmtpdTlsLoadTest(TernTestCase):

    def session(self, n, barrier, results):
        subject = "tls load %03d" % n
        try:
            c = SmtpClient(self.inst.smtp_port)
            c.sock.settimeout(LONG)
            assert c.reply()[0].startswith("220 ")
            c.send(b"EHLO client%d.test\r\n" % n)
            assert c.reply()[-1].startswith("250 ")
            c.send(b"STARTTLS\r\n")
            assert c.replies(1) == ["220 2.0.0 Ready to start TLS"]
            t = client_context().wrap_socket(c.sock)
            t.settimeout(LONG)
            # every session is in TLS before any goes on
            barrier.wait(LONG)
            buf = b""
            msg = ("From: a@example.org\r\nTo: demo@localhost\r\n"
                   "Subject: %s\r\n\r\nbody %d\r\n.\r\n" % (subject, n))
            for cmd, want in ((b"EHLO client%d.test" % n, "250 "),
                              (b"MAIL FROM:<a@example.org>", "250 "),
                              (b"RCPT TO:<demo@localhost>", "250 "),
                              (b"DATA", "354 "), (msg.encode()[:-2], "250 "),
                              (b"QUIT", "221 ")):
                t.sendall(cmd + b"\r\n")
                line, buf = tls_reply(t, buf)
                if not line.startswith(want):
                    raise AssertionError("%s: %r after %r"
                                         % (subject, line, cmd[:20]))
            t.close()
            results[n] = subject
        except Exception as e:  # reported by the main thread
            barrier.abort()
            results[n] = e

    def test_200_concurrent_tls_sessions(self):
        self.inst = self.instance(tls=True, main={
            "smtpd_client_limit": "1000",
            "default_process_limit": "100",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_timeout": "600s",
            "smtpd_error_sleep_time": "0"})
        self.inst.start()
        barrier = threading.Barrier(CLIENTS)
        results = [None] * CLIENTS
        threads = [threading.Thread(target=self.session,
                                    args=(n, barrier, results))
                   for n in range(CLIENTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(2 * LONG)
        errors = [r for r in results if not isinstance(r, str)]
        self.assertEqual(errors[:5], [], "%d sessions failed" % len(errors))
        self.assertDeliveredOnce(self.inst, results, timeout=LONG)
        log = self.inst.log_text()
        self.assertGreaterEqual(log.count("Anonymous TLS connection "
                                          "established from"), CLIENTS)
        self.assertNotIn("too many connections", log)


if __name__ == "__main__":
    unittest.main()

"""test_smtp_sink - the smtp client against Postfix's smtp-sink (Debian's
postfix package; scripts/deps.sh installs it without a system Postfix):
4xx then success, a 5xx bounce, a refused connection then a retry, a
dead MX followed by a live one, TLS required but not offered.

Instance A asks the test's own dnsmasq (test_smtp.dns_conf) for MX and
A records; known_tcp_ports = smtp=<sink port> sends every MX delivery
to the sink on 127.0.0.1. Each message the sink takes is dumped to a
file of its own (-d), so the test sees what arrived.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from ternlab import HAVE_DNSMASQ, free_port, wait_for
from test_smtp import SmtpTestBase

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
HAVE_SINK = os.access(SMTP_SINK, os.X_OK)


class Sink:
    """smtp-sink on 127.0.0.1:port with extra options."""

    def __init__(self, port, *opts):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="tern-sink-")
        os.chmod(self.dir, 0o777)
        argv = [SMTP_SINK]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]        # required as root
        argv += list(opts) + ["-d", os.path.join(self.dir, "%M."),
                              "127.0.0.1:%d" % port, "16"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("smtp-sink exited: %s" % argv)
            try:
                with socket.create_connection(("127.0.0.1", port), 1) as s:
                    s.settimeout(5)
                    return s.recv(100).startswith(b"220")
            except OSError:
                return False
        wait_for(listening, 30, 0.1, "smtp-sink on %d" % port)

    def messages(self):
        out = []
        for f in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, f), "rb") as fh:
                out.append(fh.read())
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(HAVE_DNSMASQ and HAVE_SINK,
                     "skipped: needs dnsmasq and smtp-sink (postfix)")
class SmtpSinkTest(SmtpTestBase):
    def setUp(self):
        super().setUp()
        self.start_dns()

    def sink(self, port, *opts):
        s = Sink(port, *opts)
        self.addCleanup(s.stop)
        return s

    def test_4xx_then_success(self):
        port = free_port()
        soft = self.sink(port, "-r", "RCPT")
        a = self.sender_instance(port)
        self.submit(a, ["x@b.example.org"], "sink soft")
        line = self.status_line(a, "x@b.example.org", "deferred")
        self.assertRegex(line, r"dsn=4\.\d+\.\d+, status=deferred \(host "
                         r"mx\.b\.example\.org\[127\.0\.0\.1\] said: 4\d\d ")
        self.assertIn("(in reply to RCPT TO command)", line)
        soft.stop()
        ok = self.sink(port)
        line = self.status_line(a, "x@b.example.org", "sent")
        self.assertIn("relay=mx.b.example.org[127.0.0.1]:%d" % port, line)
        wait_for(lambda: ok.messages(), 30, 0.1, "the sink's dump")
        self.assertIn(b"Subject: sink soft", ok.messages()[0])

    def test_5xx_bounce(self):
        port = free_port()
        self.sink(port, "-f", "RCPT")
        a = self.sender_instance(port)
        self.submit(a, ["x@b.example.org"], "sink hard")
        line = self.status_line(a, "x@b.example.org", "bounced")
        self.assertRegex(line, r"dsn=5\.\d+\.\d+, status=bounced \(host "
                         r"mx\.b\.example\.org\[127\.0\.0\.1\] said: 5\d\d ")
        self.assertLogHas(a, "sender non-delivery notification")

    def test_connection_refused_then_retry(self):
        port = free_port()
        a = self.sender_instance(port)
        self.submit(a, ["x@b.example.org"], "sink later")
        line = self.status_line(a, "x@b.example.org", "deferred")
        self.assertIn("Connection refused", line)
        s = self.sink(port)
        self.status_line(a, "x@b.example.org", "sent")
        wait_for(lambda: s.messages(), 30, 0.1, "the sink's dump")

    def test_dead_mx_then_live_one(self):
        port = free_port()
        s = self.sink(port)
        a = self.sender_instance(port)
        self.submit(a, ["x@dead.example.org"], "sink second mx")
        line = self.status_line(a, "x@dead.example.org", "sent")
        self.assertIn("relay=mx2.dead.example.org[127.0.0.1]:%d" % port, line)
        wait_for(lambda: s.messages(), 30, 0.1, "the sink's dump")

    def test_tls_required_but_absent(self):
        port = free_port()
        s = self.sink(port)
        a = self.sender_instance(port, {"smtp_tls_security_level": "encrypt"})
        self.submit(a, ["x@b.example.org"], "sink no tls")
        line = self.status_line(a, "x@b.example.org", "deferred")
        self.assertIn("dsn=4.7.4", line)
        self.assertIn("TLS is required, but was not offered by host "
                      "mx.b.example.org[127.0.0.1]", line)
        self.assertEqual(s.messages(), [])


if __name__ == "__main__":
    unittest.main()

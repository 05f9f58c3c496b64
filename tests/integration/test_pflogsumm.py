"""Tern's log read by Debian's pflogsumm (--syslog-name=tern), as an admin
would: local, aliased and remote deliveries (a second instance over the
smtp client), a remote bounce and its report all counted, and no line
pflogsumm does not understand (its Warnings/Fatal/Panics sections stay
empty).
"""
import os
import re
import shutil
import subprocess
import unittest

from ternlab import TernTestCase, wait_for

PFLOGSUMM = shutil.which("pflogsumm") or "/usr/sbin/pflogsumm"


def total(report, what):
    m = re.search(r"^\s+(\d+)\s+%s\b" % re.escape(what), report, re.M)
    return int(m.group(1)) if m else None


@unittest.skipUnless(os.path.exists(PFLOGSUMM),
                     "pflogsumm is not installed (scripts/deps.sh test)")
class Pflogsumm(TernTestCase):
    def test_pflogsumm_reads_the_log(self):
        a, b = self.remote_pair(users=("demo",), aliases={"root": "demo"})
        with a.smtp() as s:
            s.sendmail("demo@localhost", ["demo@localhost"],
                       b"Subject: 1\r\n\r\nx\r\n")
            s.sendmail("demo@localhost", ["root@localhost",
                                          "bob@remote.example.org"],
                       b"Subject: 2\r\n\r\nx\r\n")
            s.sendmail("demo@localhost", ["nosuchuser@remote.example.org"],
                       b"Subject: 3\r\n\r\nx\r\n")
        b.wait_messages("bob", 1)
        # the three messages and the bounce report are all gone
        wait_for(lambda: a.log_text().count(": removed") >= 4, 60,
                 what="four messages removed")
        a.wait_queue_empty()
        log = a.log_text() + b.log_text()
        path = os.path.join(a.dir, "log", "both")
        with open(path, "w") as f:
            f.write(log)
        out = subprocess.run([PFLOGSUMM, "--syslog-name=tern",
                              "--verbose-msg-detail", path],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        report = out.stdout
        # A: 3 from smtpd; B: 1 from A's smtp client
        self.assertEqual(total(report, "received"), 4, report)
        # demo twice (once via root), bob, the report to demo: 4 + B's 1
        self.assertEqual(total(report, "delivered"), 5, report)
        self.assertEqual(total(report, "bounced"), 1, report)
        self.assertEqual(total(report, "deferred"), 0, report)
        self.assertRegex(report, r"127\.0\.0\.1\[127\.0\.0\.1\]:%d \(total: 1\)"
                         % b.smtp_port)
        for section in ("Warnings", "Fatal Errors", "Panics"):
            self.assertRegex(report, r"\n%s: none\n" % section, report)


if __name__ == "__main__":
    unittest.main()

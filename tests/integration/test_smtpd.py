"""smtpd protocol behaviour, driven over raw sockets against one instance.

The client (127.0.0.1) is outside mynetworks here, so relaying is denied.
"""
import os
import socket
import threading
import time
import unittest

from ternlab import WAIT, SharedInstanceTestCase, SmtpClient, wait_for

MAIN = {
    "mynetworks": "192.0.2.0/24",
    "message_size_limit": "100000",
    "smtpd_error_sleep_time": "0",
    "smtpd_hard_error_limit": "5",
}



class SmtpdTest(SharedInstanceTestCase):
    MAIN = MAIN

    def connect(self, ehlo=True):
        c = SmtpClient(self.inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        if ehlo:
            c.send(b"EHLO client.test\r\n")
            self.assertTrue(c.reply()[-1].startswith("250 "))
        return c

    def delivered(self, marker):
        """The message in demo's Maildir that contains marker."""
        def find():
            for m in self.inst.messages("demo"):
                if marker in m:
                    return m
            return None
        return wait_for(find, 60, 0.1, "message with %r" % marker)

    def test_ehlo_keywords(self):
        c = self.connect(ehlo=False)
        c.send(b"EHLO client.test\r\n")
        lines = c.reply()
        self.assertEqual([l[4:] for l in lines[1:]],
                         ["PIPELINING", "SIZE 100000", "VRFY",
                          "ENHANCEDSTATUSCODES", "8BITMIME", "BINARYMIME",
                          "CHUNKING", "DSN", "SMTPUTF8"])
        self.assertTrue(all(l.startswith("250-") for l in lines[:-1]))
        self.assertTrue(lines[-1].startswith("250 "))

    def test_pipelined_transaction(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<nosuch@localhost>\r\n"
               b"RCPT TO:<demo@localhost>\r\n"
               b"DATA\r\n"
               b"Subject: pipelined\r\n\r\n..dotted\r\nbody\r\n.\r\n"
               b"NOOP\r\nQUIT\r\n")
        r = c.replies(7)
        self.assertEqual([x[:3] for x in r],
                         ["250", "550", "250", "354", "250", "250", "221"])
        self.assertTrue(r[4].startswith("250 2.0.0 Ok: queued as "), r[4])
        self.assertTrue(c.closed())
        m = self.delivered(b"Subject: pipelined")
        self.assertIn(b"Subject: pipelined\n\n.dotted\nbody\n", m)
        self.assertLogHas(self.inst, "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 "
                       "rcpt=1/2 data=1 noop=1 quit=1 commands=6/7")

    def test_overlong_line(self):
        c = self.connect()
        c.send(b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\n")
        self.assertEqual(c.replies(2), ["500 5.5.2 Error: line too long",
                                        "250 2.0.0 Ok"])

    def test_unknown_command(self):
        c = self.connect()
        c.send(b"FROB x\r\n")
        self.assertEqual(c.replies(1),
                         ["502 5.5.2 Error: command not recognized"])

    def test_rcpt_before_mail(self):
        c = self.connect()
        c.send(b"RCPT TO:<demo@localhost>\r\n")
        self.assertEqual(c.replies(1), ["503 5.5.1 Error: need MAIL command"])

    def test_size_over_limit(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org> SIZE=100001\r\n"
               b"MAIL FROM:<a@example.org> SIZE=100000\r\n")
        self.assertEqual(c.replies(2),
                         ["552 5.3.4 Message size exceeds fixed limit",
                          "250 2.1.0 Ok"])

    def test_unknown_user(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nosuch@localhost>\r\n")
        r = c.replies(2)
        self.assertEqual(r[1], "550 5.1.1 <nosuch@localhost>: Recipient "
                         "address rejected: User unknown in local recipient "
                         "table")
        self.assertLogHas(self.inst, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 "
                       "5.1.1 <nosuch@localhost>: Recipient address "
                       "rejected: User unknown in local recipient table; "
                       "from=<a@example.org> to=<nosuch@localhost> "
                       "proto=ESMTP helo=<client.test>")

    def test_relay_denied(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\n")
        self.assertEqual(c.replies(2)[1],
                         "554 5.7.1 <x@elsewhere.example>: Relay access denied")

    def test_bare_lf_does_not_end_data(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"DATA\r\n")
        self.assertEqual([x[:3] for x in c.replies(3)], ["250", "250", "354"])
        c.send(b"Subject: smuggle\r\n\r\nbefore\n.\n"
               b"MAIL FROM:<evil@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA\r\nsmuggled\r\n\r\n.\n"
               b"\r\n.\r\nQUIT\r\n")
        r = c.replies(2)
        self.assertTrue(r[0].startswith("250 2.0.0 Ok: queued as "), r)
        self.assertEqual(r[1], "221 2.0.0 Bye")
        qid = r[0].split()[-1]
        m = self.delivered(b"Subject: smuggle")
        self.assertIn(b"before\n.\nMAIL FROM:<evil@example.org>\n", m)
        self.assertIn(b"smuggled\n\n.\n\n", m)
        self.assertIn(qid.encode(), m)

    def test_data_no_valid_recipients(self):
        c = self.connect()
        # DATA ends a pipelined group (RFC 2920): RSET waits for its reply
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nosuch@localhost>\r\n"
               b"DATA\r\n")
        r = c.replies(3)
        self.assertEqual(r[2], "554 5.5.1 Error: no valid recipients")
        c.send(b"RSET\r\n")
        self.assertEqual(c.replies(1)[0], "250 2.0.0 Ok")

    def test_command_arguments(self):
        c = self.connect()
        c.send(b"NOOP anything\r\nRSET x\r\nMAIL FROM:<a@example.org>\r\n"
               b"MAIL FROM:<b@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"DATA now\r\n")
        self.assertEqual(c.replies(6), [
            "250 2.0.0 Ok", "501 5.5.4 Syntax: RSET", "250 2.1.0 Ok",
            "503 5.5.1 Error: nested MAIL command", "250 2.1.5 Ok",
            "501 5.5.4 Syntax: DATA"])
        c.send(b"QUIT\r\n")          # after DATA's reply (RFC 2920)
        self.assertEqual(c.replies(1), ["221 2.0.0 Bye"])
        self.assertTrue(c.closed())

    def test_quit_with_pipelined_commands(self):
        c = self.connect()
        c.send(b"QUIT\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n")
        self.assertEqual(c.replies(1), ["221 2.0.0 Bye"])
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")

    @staticmethod
    def body_of_size(size, subject):
        """DATA content whose RFC 1870 size (CR LF line ends, dot-stuffing
        not counted) is exactly size; it has a dot-stuffed line."""
        head = b"Subject: " + subject + b"\r\n\r\n..dot\r\n"
        lines = [head]
        left = size - (len(head) - 1)
        assert left >= 2
        while left > 0:
            n = min(100, left)
            if left - n == 1:
                n -= 1
            lines.append(b"x" * (n - 2) + b"\r\n")
            left -= n
        return b"".join(lines)

    def test_message_size_limit_exact(self):
        """message_size_limit counts like SIZE= (RFC 1870): exactly the
        limit is accepted, one more byte is not, and the session goes on."""
        c = self.connect()
        for size, want in ((100000, "250 2.0.0 Ok: queued as "),
                           (100001, "552 5.3.4 Error: message file too big"),
                           (200, "250 2.0.0 Ok: queued as ")):
            body = self.body_of_size(size, b"size%d" % size)
            wire = len(body) - 1          # the stuffed dot is not counted
            self.assertEqual(wire, size)
            declared = b" SIZE=%d" % size if size <= 100000 else b""
            c.send(b"MAIL FROM:<a@example.org>%s\r\n"
                   b"RCPT TO:<demo@localhost>\r\nDATA\r\n" % declared)
            r = c.replies(3)
            self.assertEqual([x[:3] for x in r], ["250", "250", "354"], r)
            c.send(body + b".\r\n")
            r = c.replies(1)[0]
            self.assertTrue(r.startswith(want), (size, r))
        m = self.delivered(b"Subject: size100000")
        self.assertIn(b"\n\n.dot\n", m)

    def test_control_characters_not_logged(self):
        c = self.connect(ehlo=False)
        c.send(b"EHLO evil\x1b[31m\x07host\r\n")
        c.reply()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<nosuch@localhost>\r\n")
        c.replies(2)
        self.assertLogHas(self.inst, "helo=<evil?[31m?host>")
        self.assertNotIn("\x1b", self.inst.log_text())

    def test_hard_error_limit(self):
        c = self.connect()
        c.send(b"FROB\r\n" * 5)
        r = c.replies(6)
        self.assertEqual(r[:5], ["502 5.5.2 Error: command not recognized"] * 5)
        self.assertTrue(r[5].startswith("421 4.7.0 "), r[5])
        self.assertTrue(r[5].endswith(" Error: too many errors"), r[5])
        self.assertTrue(c.closed())



LIMITS = {
    "mynetworks": "192.0.2.0/24",
    "smtpd_timeout": "2s",
    "smtpd_error_sleep_time": "0",
    "smtpd_hard_error_limit": "20000",
    "smtpd_soft_error_limit": "20000",
    "smtpd_command_limit": "0",     # 20000 pipelined errors, not commands
}


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class SmtpdLimitsTest(SharedInstanceTestCase):
    """Timeouts, unread replies, and the last reply of a closing session."""
    # one smtpd for every session: test_unread_replies_bounded measures
    # the memory of the process that holds its session
    MAIN = dict(LIMITS, event_server_process_min="1")

    @classmethod
    def setUpClass(cls):
        # ASan's quarantine of freed memory would dominate VmRSS
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else "") \
            + "quarantine_size_mb=1"
        try:
            super().setUpClass()
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved

    def connect(self, rcvbuf=None):
        if rcvbuf is None:
            c = SmtpClient(self.inst.smtp_port)
        else:
            c = SmtpClient(self.inst.smtp_port, connect=False)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            c.sock.connect(("127.0.0.1", self.inst.smtp_port))
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        return c

    def test_idle_timeout(self):
        # smtpd_timeout is 2s: the 421 comes once the client has been idle
        # that long after its last command (a lower bound; a timeout that
        # never fires fails the read below)
        c = self.connect()
        t0 = time.monotonic()          # before smtpd can have read EHLO
        c.send(b"EHLO client.test\r\n")
        c.reply()
        r = c.replies(1)[0]
        self.assertGreaterEqual(time.monotonic() - t0, 2 - 0.05)
        self.assertTrue(r.startswith("421 4.4.2 "), r)
        self.assertTrue(r.endswith(" Error: timeout exceeded"), r)
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "timeout after EHLO from unknown[127.0.0.1]")

    def test_timeout_mid_data(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
        c.reply()
        self.assertEqual([x[:3] for x in c.replies(3)], ["250", "250", "354"])
        c.send(b"Subject: stalled\r\n\r\nhalf a li")
        r = c.replies(1)[0]
        self.assertTrue(r.startswith("421 4.4.2 "), r)
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "timeout after DATA from unknown[127.0.0.1]")
        wait_for(lambda: not self.inst.queue_files("incoming"), WAIT, 0.1,
                 "incoming/ without the stalled message")

    def test_pipelined_junk_still_gets_421(self):
        """The client pipelines far past the hard error limit and reads
        slowly through a small receive window: the 421 must arrive, not be
        lost to a RST from a close() with unread input."""
        c = self.connect(rcvbuf=4096)
        junk = b"FROB\r\n" * 20000 + (b"NOOP " + b"j" * 90 + b"\r\n") * 3000
        errors = []

        def pump():
            try:
                c.sock.sendall(junk)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=pump)
        t.start()
        got = b""
        try:
            while True:
                d = c.sock.recv(4096)
                if not d:
                    break
                got += d
                time.sleep(0.002)      # a slow reader is the point here
        except OSError as e:
            self.fail("%r after %d bytes of replies, sender: %r"
                      % (e, len(got), errors))
        finally:
            t.join(20)
        lines = got.split(b"\r\n")
        self.assertEqual(lines[-1], b"")
        self.assertEqual(len(lines), 20002, lines[-3:])
        self.assertTrue(lines[-2].startswith(b"421 4.7.0 "), lines[-2])

    def test_unread_replies_bounded(self):
        """64 MB of pipelined NOOPs and never a read: smtpd stops reading
        once its replies pile up, so its memory stays put."""
        c = self.connect()
        pids = self.inst.child_pids("smtpd")
        self.assertEqual(len(pids), 1, pids)
        before = vmrss_kb(pids[0])
        # more than the kernel can buffer on the way in, whatever the
        # autotuning does (tcp_rmem may let smtpd's receive buffer grow to
        # 32 MB while it still reads): a paused smtpd never lets it all in
        flood = b"NOOP\r\n" * (64 * 1024 * 1024 // 6)
        result = []

        def pump():
            try:
                c.sock.sendall(flood)
                result.append("all sent")
            except OSError as e:
                result.append(e)
        # "smtpd stopped reading" is a negative: sendall gives up after 5 s
        # without progress. It cannot flake: once smtpd has paused, only
        # our reading could unpause it, and we never read. (A 5 s stall
        # of smtpd's own can only end the flood early: memory is then read
        # no later than its real peak.) A smtpd that keeps reading lets
        # the whole flood in, however slowly: "all sent".
        c.sock.settimeout(5)
        t = threading.Thread(target=pump)
        t.start()
        t.join(300)
        self.assertFalse(t.is_alive())
        after = vmrss_kb(pids[0])
        self.assertNotEqual(result, ["all sent"])   # smtpd stopped reading
        self.assertLess(after - before, 16 * 1024, (before, after))
        d = SmtpClient(self.inst.smtp_port)          # and it still serves
        self.addCleanup(d.close)
        self.assertTrue(d.reply()[0].startswith("220 "))


if __name__ == "__main__":
    unittest.main()

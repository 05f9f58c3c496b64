"""smtpd under abuse: input out of turn (before the greeting, after a
refused DATA), clients that drip bytes, descriptor exhaustion.

Every client here is 127.0.0.1; MAIN keeps it outside mynetworks.
"""
import os
import resource
import signal
import socket
import time
import unittest

from ternlab import SharedInstanceTestCase, SmtpClient, TernTestCase, wait_for

MAIN = {
    "mynetworks": "192.0.2.0/24",
    "smtpd_error_sleep_time": "0",
}


def server_rx_queue(server_port, client_port):
    """Bytes the server side of 127.0.0.1:client_port -> :server_port has
    received but not read (from /proc/net/tcp), or None if not listed."""
    local = "0100007F:%04X" % server_port
    remote = "0100007F:%04X" % client_port
    with open("/proc/net/tcp") as f:
        for row in f.readlines()[1:]:
            fields = row.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[4].split(":")[1], 16)
    return None


class PipeliningTest(TernTestCase):
    """Input that arrives where the client must wait for a reply is never
    executed as commands."""

    def start(self, main=None):
        cfg = dict(MAIN)
        cfg.update(main or {})
        inst = self.instance(main=cfg)
        inst.start()
        return inst

    def connect(self, inst):
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        return c

    TRANSACTION = (b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<demo@localhost>\r\nDATA\r\n"
                   b"Subject: smuggled\r\n\r\nbody\r\n.\r\nQUIT\r\n")

    def test_pregreet(self):
        """A client that talks before the greeting gets 554 and its
        commands are not run."""
        inst = self.start()
        pids = inst.child_pids("smtpd")
        if not pids:
            self.connect(inst)
            pids = wait_for(lambda: inst.child_pids("smtpd"), what="smtpd")
        pid = pids[0]
        # with the (only, available) smtpd stopped, the connection and its
        # bytes wait in the kernel until smtpd accepts it
        os.kill(pid, signal.SIGSTOP)
        try:
            c = SmtpClient(inst.smtp_port)
            self.addCleanup(c.close)
            c.send(self.TRANSACTION)
            cport = c.sock.getsockname()[1]
            wait_for(lambda: (server_rx_queue(inst.smtp_port, cport) or 0)
                     >= len(self.TRANSACTION), what="data queued at smtpd")
        finally:
            os.kill(pid, signal.SIGCONT)
        r = c.reply()
        self.assertEqual(r, ["554 5.5.0 Error: SMTP protocol synchronization"])
        self.assertTrue(c.closed())
        self.assertLogHas(inst, "improper command pipelining after CONNECT "
                          "from unknown[127.0.0.1]: EHLO client.test")
        self.assertLogHas(inst, "disconnect from unknown[127.0.0.1] "
                          "commands=0")
        self.assertNotIn("client=unknown[127.0.0.1]", inst.log_text())

    def test_data_after_refused_data(self):
        """DATA is refused (no valid recipient) but the client already sent
        its message; commands inside that message never run."""
        inst = self.start()
        c = self.connect(inst)
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<no.such.user@localhost>\r\nDATA\r\n"
               b"Subject: outer\r\n\r\n"
               b"MAIL FROM:<b@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"DATA\r\nSubject: inner\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n")
        got = [r[:3] for r in c.replies(4)]
        self.assertEqual(got, ["250", "250", "550", "554"])
        self.assertEqual(c.reply(),
                         ["554 5.5.0 Error: SMTP protocol synchronization"])
        self.assertTrue(c.closed())
        self.assertLogHas(inst, "improper command pipelining after DATA "
                          "from unknown[127.0.0.1]: Subject: outer")
        self.assertLogHas(inst, "disconnect from unknown[127.0.0.1] ehlo=1 "
                          "mail=1 rcpt=0/1 data=0/1 commands=2/4")
        self.assertNotIn("client=unknown[127.0.0.1]", inst.log_text())

    def test_data_with_argument_and_body(self):
        """A DATA refused for its syntax is refused the same way."""
        inst = self.start()
        c = self.connect(inst)
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA now\r\n"
               b"RSET\r\nQUIT\r\n")
        got = [r[:3] for r in c.replies(4)]
        self.assertEqual(got, ["250", "250", "250", "501"])
        self.assertEqual(c.reply()[0][:10], "554 5.5.0 ")
        self.assertTrue(c.closed())
        self.assertLogHas(inst, "improper command pipelining after DATA "
                          "from unknown[127.0.0.1]: RSET")

    def test_pipelining_allowed_where_rfc2920_allows(self):
        """A refused DATA with nothing after it, then a new transaction,
        and a normal pipelined group all still work."""
        inst = self.start()
        c = self.connect(inst)
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<no.such.user@localhost>\r\n"
               b"DATA\r\n")
        self.assertEqual([r[:3] for r in c.replies(3)], ["250", "550", "554"])
        c.send(b"RSET\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
        self.assertEqual([r[:3] for r in c.replies(4)],
                         ["250", "250", "250", "354"])
        c.send(b"Subject: fine\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "221"])
        inst.wait_messages("demo", 1)


class ScrubTest(TernTestCase):
    def test_received_header_helo(self):
        """C1 controls, U+2028/U+2029 and broken UTF-8 in the HELO name
        never reach the Received: header raw (a mail reader or terminal
        would act on them)."""
        inst = self.instance(main=dict(MAIN))
        inst.start()
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        helo = ("evil\u0085x\u009b31m\u2028Received:\u2029y".encode()
                + b"\x9bz\xc3\xa9")
        c.send(b"EHLO " + helo + b"\r\n")
        c.reply()
        c.send(b"MAIL FROM:<a@example.org>\r\n")
        c.reply()
        c.send(b"RCPT TO:<demo@localhost>\r\n")
        c.reply()
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply()[0][:3], "354")
        c.send(b"Subject: scrub\r\n\r\nx\r\n.\r\nQUIT\r\n")
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "221"])
        msg = inst.wait_messages("demo", 1)[0]
        want = b"Received: from evil?x?31m?Received:?y?z\xc3\xa9 (unknown"
        self.assertIn(want, msg)
        for bad in (b"\xc2\x85", b"\xc2\x9b", b"\xe2\x80\xa8",
                    b"\xe2\x80\xa9", b"\x9bz"):
            self.assertNotIn(bad, msg)

    def test_received_header_for_clause(self):
        """A UTF-8 recipient with U+2028 and a C1 control (accepted for
        relaying from mynetworks) is shown scrubbed in Received: for."""
        inst = self.instance(main=dict(MAIN, mynetworks="127.0.0.0/8"))
        inst.start()
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        rcpt = "x\u2028y\u0085z@remote.example".encode()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(c.reply()[0][:3], "250")
        c.send(b"RCPT TO:<" + rcpt + b">\r\n")
        r = c.reply()[0]
        if not r.startswith("250"):
            self.skipTest("recipient refused: %s" % r)
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply()[0][:3], "354")
        c.send(b"Subject: for\r\n\r\nx\r\n.\r\nQUIT\r\n")
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "221"])

        def queued():
            for dirpath, _, files in os.walk(inst.spool):
                for f in files:
                    try:
                        with open(os.path.join(dirpath, f), "rb") as fh:
                            data = fh.read()
                    except OSError:
                        continue
                    if b"Received: from" in data:
                        return data
            return None
        data = wait_for(queued, what="the queue file")
        self.assertIn(b"\tfor <x?y?z@remote.example>;", data)


class DeadlineTest(SharedInstanceTestCase):
    """smtpd_timeout bounds a whole request, not the gap between bytes."""

    DRIP_INTERVAL = 0.4      # well below smtpd_timeout: an idle timer
    DRIP_MAX = 300           # would never fire (2 minutes of dripping)

    MAIN = dict(MAIN, smtpd_timeout="2s")

    def connect(self):
        c = SmtpClient(self.inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        return c

    def drip(self, c, data):
        """Send data one byte at a time, each after DRIP_INTERVAL of
        silence from the server; returns what the server sent once it
        closed (fails if it never does)."""
        got = b""
        for i in range(self.DRIP_MAX):
            c.sock.settimeout(self.DRIP_INTERVAL)
            try:
                d = c.sock.recv(4096)
                if not d:
                    return c.buf + got
                got += d
                continue
            except socket.timeout:
                pass
            except OSError:
                return c.buf + got
            try:
                c.sock.send(data[i % len(data):i % len(data) + 1])
            except OSError:
                return c.buf + got
        self.fail("still connected after %d dripped bytes; got %r"
                  % (self.DRIP_MAX, got))

    def test_command_line_deadline(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        got = self.drip(c, b"NOOP " + b"x" * 1000)
        self.assertRegex(got, rb"^421 4\.4\.2 \S+ Error: timeout exceeded\r\n$")
        self.assertLogHas(self.inst, "timeout after EHLO from unknown[127.0.0.1]")

    def test_data_deadline(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
        c.reply()
        self.assertEqual([x[:3] for x in c.replies(3)], ["250", "250", "354"])
        got = self.drip(c, b"Subject: drip\r\n\r\n" + b"y" * 60 + b"\r\n")
        self.assertRegex(got, rb"^421 4\.4\.2 \S+ Error: timeout exceeded\r\n$")
        self.assertLogHas(self.inst, "timeout after DATA from unknown[127.0.0.1]")
        wait_for(lambda: not self.inst.queue_files("incoming"), 10, 0.1,
                 "incoming/ without the dripped message")

    def test_steady_client_unaffected(self):
        """Many commands and a large message, each request quick: none
        runs into the deadline, however long the session is in total."""
        c = self.connect()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        for _ in range(50):
            c.send(b"NOOP\r\n")
            self.assertEqual(c.reply()[0][:3], "250")
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"DATA\r\n")
        self.assertEqual([x[:3] for x in c.replies(3)], ["250", "250", "354"])
        c.send(b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 2000
               + b".\r\nQUIT\r\n")
        self.assertEqual([x[:3] for x in c.replies(2)], ["250", "221"])


def prlimit_nofile(pid, limits=None):
    """resource.prlimit(pid, RLIMIT_NOFILE, limits) from a process with
    pid's user and group: without CAP_SYS_RESOURCE (a container's root)
    only the owner of a process may change its limits."""
    with open("/proc/%d/status" % pid) as f:
        st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    uid, gid = int(st["Uid"].split()[0]), int(st["Gid"].split()[0])
    if (uid, gid) == (os.getuid(), os.getgid()):
        return (resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
                if limits else resource.prlimit(pid, resource.RLIMIT_NOFILE))
    rd, wr = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(rd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            r = (resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
                 if limits else resource.prlimit(pid, resource.RLIMIT_NOFILE))
            os.write(wr, ("%d %d" % r).encode())
        finally:
            os._exit(0)
    os.close(wr)
    with os.fdopen(rd) as f:
        out = f.read()
    os.waitpid(child, 0)
    if not out:
        raise AssertionError("cannot change the limits of %d" % pid)
    soft, hard = out.split()
    return int(soft), int(hard)


def open_fds(pid):
    return {int(x) for x in os.listdir("/proc/%d/fd" % pid)}


def emfile_lines(inst, who):
    return [l for l in inst.log_text().splitlines()
            if who in l and "accept: Too many open files" in l]


class DescriptorExhaustionTest(TernTestCase):
    """accept() failing with EMFILE backs off instead of spinning with a
    log line per attempt, and service resumes once descriptors are free.
    Each test waits for the second (rate-limited) warning, which reports
    how many failures it did not log: proof that accept() kept failing
    meanwhile without flooding the log."""

    def client(self, port):
        c = SmtpClient(port)
        self.addCleanup(c.close)
        return c

    def wait_second_warning(self, inst, who):
        def second():
            lines = emfile_lines(inst, who)
            return len(lines) >= 2 and lines
        lines = wait_for(second, 60, 0.2, "a second EMFILE warning")
        self.assertLess(len(lines), 5, lines[:10])
        self.assertRegex(lines[1], r"\((\d+) more times since the last "
                         r"warning\)")
        return lines

    def test_smtpd_accept_emfile(self):
        # one smtpd holds every session, so its descriptors run out (a
        # second process would take the clients it cannot)
        inst = self.instance(main=dict(MAIN, event_server_process_min="1"))
        inst.start()
        first = self.client(inst.smtp_port)
        self.assertTrue(first.reply()[0].startswith("220 "))
        pid = inst.child_pids("smtpd")[0]
        fds = open_fds(pid)
        limit = max(fds) + 1 + 2
        _, hard = prlimit_nofile(pid)
        prlimit_nofile(pid, (limit, hard))
        held = [first]
        for _ in range(limit - len(fds)):
            c = self.client(inst.smtp_port)
            self.assertTrue(c.reply()[0].startswith("220 "))
            held.append(c)
        waiting = self.client(inst.smtp_port)     # no descriptor left for it
        self.wait_second_warning(inst, "tern/smtpd[%d]" % pid)
        for c in held:
            c.close()
        self.assertTrue(waiting.reply()[0].startswith("220 "))

    def test_master_reject_emfile(self):
        """smtpd at its process and client limit: master answers 421
        itself; with master out of descriptors it backs off too."""
        inst = self.instance(main=dict(MAIN, default_process_limit="1",
                                       smtpd_client_limit="1"))
        inst.start()
        def take_the_slot():
            # until the start-up probe's session is over, master answers
            c = self.client(inst.smtp_port)
            if c.reply()[0].startswith("220 "):
                return c
            c.close()
            return None
        busy = wait_for(take_the_slot, what="smtpd's only slot")
        c = self.client(inst.smtp_port)
        self.assertEqual(c.reply()[0][:10], "421 4.3.2 ")
        # master has closed that connection (its descriptor is free again)
        # before the descriptors are counted for the limit below
        self.assertTrue(c.closed())
        mpid = inst.master_pid
        fds = open_fds(mpid)
        lowest_free = min(set(range(len(fds) + 1)) - fds)
        soft, hard = prlimit_nofile(mpid)
        prlimit_nofile(mpid, (lowest_free, hard))
        try:
            waiting = self.client(inst.smtp_port)
            self.wait_second_warning(inst, "tern/master[%d]" % mpid)
        finally:
            prlimit_nofile(mpid, (soft, hard))
        self.assertEqual(waiting.reply()[0][:10], "421 4.3.2 ")


ANVIL = "anvil unix - - n - 1 anvil\n"


def open_sessions(inst):
    text = inst.log_text()
    return (text.count("]: connect from unknown[127.0.0.1]")
            - text.count("]: disconnect from unknown[127.0.0.1]"))


class ConnectionLimitTest(TernTestCase):
    """smtpd_client_connection_count_limit / _rate_limit, counted by anvil
    over all smtpd processes."""

    def start(self, **main):
        cfg = dict(MAIN, smtpd_client_event_limit_exceptions="")
        cfg.update(main)
        inst = self.instance(main=cfg)     # mkinstance runs anvil
        inst.start()
        wait_for(lambda: open_sessions(inst) == 0, what="probe finished")
        return inst

    def try_connect(self, inst):
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        return c, c.reply()[0]

    def assertTooMany(self, inst):
        c, r = self.try_connect(inst)
        self.assertRegex(r, r"^421 4\.7\.0 \S+ Error: too many connections "
                         r"from 127\.0\.0\.1$")
        self.assertTrue(c.closed())

    def test_count_limit_across_processes(self):
        inst = self.start(smtpd_client_connection_count_limit="3",
                          smtpd_client_limit="2")
        held = []
        for _ in range(3):
            c, r = self.try_connect(inst)
            self.assertTrue(r.startswith("220 "), r)
            held.append(c)
        # two per process: the three are spread over two smtpd processes
        self.assertGreaterEqual(len(inst.child_pids("smtpd")), 2)
        self.assertTooMany(inst)
        self.assertLogHas(inst, "warning: Connection concurrency limit "
                          "exceeded: 4 from unknown[127.0.0.1] for service")
        wait_for(lambda: open_sessions(inst) == 3, what="reject logged")
        held[0].close()
        wait_for(lambda: open_sessions(inst) == 2, what="first one gone")
        c, r = self.try_connect(inst)
        self.assertTrue(r.startswith("220 "), r)

    def test_rate_limit(self):
        inst = self.start(smtpd_client_connection_count_limit="0",
                          smtpd_client_connection_rate_limit="6",
                          anvil_rate_time_unit="1h")
        probes = inst.log_text().count("]: connect from unknown[127.0.0.1]")
        if probes >= 6:
            self.skipTest("start-up made %d connections" % probes)
        for _ in range(6 - probes):
            c, r = self.try_connect(inst)
            self.assertTrue(r.startswith("220 "), r)
            c.send(b"QUIT\r\n")
            self.assertTrue(c.reply()[0].startswith("221 "))
            self.assertTrue(c.closed())
        self.assertTooMany(inst)
        self.assertLogHas(inst, "warning: Connection rate limit exceeded: 7 "
                          "from unknown[127.0.0.1] for service")

    def test_exceptions(self):
        """$mynetworks (the default exception list) is not limited."""
        inst = self.instance(main=dict(MAIN, mynetworks="127.0.0.0/8",
                                       smtpd_client_connection_count_limit="1"))
        inst.start()
        for _ in range(3):
            c, r = self.try_connect(inst)
            self.assertTrue(r.startswith("220 "), r)

    def test_smtpd_crash_releases_counts(self):
        """A killed smtpd's connections no longer count."""
        inst = self.start(smtpd_client_connection_count_limit="2")
        for _ in range(2):
            c, r = self.try_connect(inst)
            self.assertTrue(r.startswith("220 "), r)
        self.assertTooMany(inst)
        for pid in inst.child_pids("smtpd"):
            os.kill(pid, signal.SIGKILL)

        def accepted():
            c, r = self.try_connect(inst)
            return r.startswith("220 ")
        wait_for(accepted, what="a connection accepted after the kill")
        c, r = self.try_connect(inst)
        self.assertTrue(r.startswith("220 "), r)

    def test_without_anvil(self):
        """No anvil service: limits are not enforced, and that is said."""
        inst = self.instance(main=dict(
            MAIN, smtpd_client_event_limit_exceptions="",
            smtpd_client_connection_count_limit="1"))
        inst.edit_master_conf(ANVIL, "")
        inst.start()
        for _ in range(3):
            c, r = self.try_connect(inst)
            self.assertTrue(r.startswith("220 "), r)
        self.assertLogHas(inst, "client connection limits are not enforced")


if __name__ == "__main__":
    unittest.main()

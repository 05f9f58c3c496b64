"""event_server_process_min: master spreads SMTP clients over several
smtpd processes, which share the listening socket.

With the value 2, a client that arrives while the only smtpd still has
room makes master fork a second one; two concurrent sessions end up in two
smtpd processes (checked from /proc: which process holds each session's
socket). With 1, one smtpd takes every client until its client limit.
Which process wins a race for accept() is the kernel's choice, so the
test stops the process that holds the first session (SIGSTOP) before the
second one connects: then only a second process can answer it.
"""
import os
import signal
import unittest

from ternlab import SmtpClient, TernTestCase, wait_for

WAIT = 30


def tcp_inode(local_port, remote_port):
    """Inode of the established loopback TCP socket local_port ->
    remote_port (the server's side), or None."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            if lport == local_port and rport == remote_port \
                    and fields[3] == "01":          # ESTABLISHED
                return fields[9]
    return None


def socket_owner(pids, inode):
    """The pid among pids that has socket:[inode] open, or None."""
    want = "socket:[%s]" % inode
    for pid in pids:
        fddir = "/proc/%d/fd" % pid
        try:
            names = os.listdir(fddir)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(os.path.join(fddir, name)) == want:
                    return pid
            except OSError:
                continue
    return None


class SpreadTest(TernTestCase):

    def start(self, process_min):
        inst = self.instance(main={"event_server_process_min":
                                   str(process_min)})
        inst.start()        # its readiness probe is served by a first smtpd
        return inst

    def session(self, inst):
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220"))
        return c

    def server_of(self, inst, client):
        """The smtpd process that holds client's session."""
        port = client.sock.getsockname()[1]

        def find():
            inode = tcp_inode(inst.smtp_port, port)
            return inode and socket_owner(inst.child_pids("smtpd"), inode)
        return wait_for(find, WAIT, what="the smtpd of port %d" % port)

    def stop_until_cleanup(self, pid):
        os.kill(pid, signal.SIGSTOP)

        def cont():
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        self.addCleanup(cont)

    def finish(self, c):
        c.send(b"EHLO client.test\r\n")
        self.assertTrue(c.reply()[-1].startswith("250"))
        c.send(b"QUIT\r\n")
        self.assertTrue(c.reply()[0].startswith("221"))

    def test_two_sessions_two_processes(self):
        inst = self.start(2)
        a = self.session(inst)
        pa = self.server_of(inst, a)
        # a's process has room for many more clients; master forks a
        # second smtpd for the next arrival anyway (or has already, when
        # a itself arrived after the readiness probe)
        self.stop_until_cleanup(pa)
        b = self.session(inst)          # only another smtpd can greet b
        pb = self.server_of(inst, b)
        os.kill(pa, signal.SIGCONT)
        self.assertNotEqual(pa, pb)
        self.assertEqual(sorted(inst.child_pids("smtpd")), sorted([pa, pb]))
        self.finish(a)
        self.finish(b)
        # and both deliver through the rest of the system
        for c in (self.session(inst), self.session(inst)):
            c.send(b"EHLO client.test\r\nMAIL FROM:<s@example.org>\r\n"
                   b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
            self.assertEqual([r[:3] for r in c.replies(4)],
                             ["250", "250", "250", "354"])
            c.send(b"Subject: spread\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            self.assertEqual([r[:3] for r in c.replies(2)], ["250", "221"])
        inst.wait_messages("demo", 2)
        self.assertLessEqual(len(inst.child_pids("smtpd")), 2)

    def test_one_means_one_process(self):
        inst = self.start(1)
        a = self.session(inst)
        b = self.session(inst)
        pa, pb = self.server_of(inst, a), self.server_of(inst, b)
        self.assertEqual(pa, pb)
        self.assertEqual(inst.child_pids("smtpd"), [pa])
        self.finish(a)
        self.finish(b)


if __name__ == "__main__":
    unittest.main()

"""POP3 under load and failure: 50 concurrent sessions of different
users, kill -9 of pop3d in the middle of RETR and after DELE (nothing
lost, nothing deleted without QUIT), and, as root, the privilege split
seen from /proc: pop3-login as ternlogin in its empty chroot, pop3d as
the mailbox owner."""
import os
import poplib
import pwd
import signal
import threading
import unittest

from ternlab import Pop3Client, TernTestCase, WAIT, client_context, wait_for

USERS = tuple("user%02d" % i for i in range(50))


def login(inst, user):
    p = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=WAIT)
    p.stls(client_context())
    p.user(user)
    p.pass_(inst.password(user))
    return p


def proc_ids(pid, field):
    """The four IDs of /proc/PID/status's Uid: or Gid: line."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:5]]
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


class Pop3ConcurrentTest(TernTestCase):
    def test_fifty_users_at_once(self):
        inst = self.instance(tls=True, pop3=True, users=USERS)
        inst.start()
        inst.pop3_ready()
        with inst.smtp() as s:
            for u in USERS:
                for i in range(2):
                    s.sendmail("sender@example.org", ["%s@localhost" % u],
                               ("Subject: %s-%d\r\n\r\nfor %s\r\n"
                                % (u, i, u)).encode())
        for u in USERS:
            inst.wait_messages(u, 2)
        inst.wait_quiet(USERS)
        barrier = threading.Barrier(len(USERS))
        seen, errors = {}, []

        def session(user):
            try:
                barrier.wait(WAIT)
                p = login(inst, user)
                n, _ = p.stat()
                got = []
                for i in range(1, n + 1):
                    got += [ln for ln in p.retr(i)[1]
                            if ln.startswith(b"Subject:")]
                    p.dele(i)
                p.quit()
                seen[user] = sorted(got)
            except Exception as e:  # reported below, with the user
                errors.append("%s: %r" % (user, e))

        threads = [threading.Thread(target=session, args=(u,)) for u in USERS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT * 4)
        self.assertEqual(errors, [])
        for u in USERS:
            self.assertEqual(seen[u], [b"Subject: %s-0" % u.encode(),
                                       b"Subject: %s-1" % u.encode()])
            self.assertEqual(inst.messages(u), [], u)


class Pop3KillTest(TernTestCase):
    def setUp(self):
        self.inst = self.instance(tls=True, pop3=True)
        self.inst.start()
        self.inst.pop3_ready()
        big = "".join("line %06d of a long message body\r\n" % i
                      for i in range(60000))
        self.inst.deliver("demo", ["kill-%d" % i for i in range(5)], body=big)
        self.names = self.maildir_names()

    def maildir_names(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.inst.maildir("demo"), sub)
            out += [n.split(":")[0] for n in os.listdir(d)]
        return sorted(out)

    def pop3d_pids(self):
        return wait_for(lambda: self.inst.child_pids("pop3d"), WAIT,
                        what="a pop3d process")

    def relist(self):
        """A new session sees every message (the killed one's lock is
        gone with it)."""
        def again():
            try:
                p = login(self.inst, "demo")
            except poplib.error_proto:
                return None
            n = p.stat()[0]
            p.quit()
            return n
        return wait_for(again, WAIT, what="mailbox free again")

    def raw_login(self):
        c = Pop3Client(self.inst.pop3_port)
        self.addCleanup(c.close)
        self.assertTrue(c.cmd("STLS").startswith(b"+OK"))
        c.starttls()
        c.cmd("USER demo")
        self.assertTrue(c.cmd("PASS " + self.inst.password()).startswith(b"+OK"))
        return c

    def test_kill_during_retr(self):
        c = self.raw_login()
        pids = self.pop3d_pids()
        c.send("RETR 1\r\n")
        self.assertTrue(c.line().startswith(b"+OK"))
        c.line()                       # the message is on its way
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.assertTrue(c.closed())
        self.assertEqual(self.relist(), 5)
        self.assertEqual(self.maildir_names(), self.names)

    def test_kill_after_dele(self):
        c = self.raw_login()
        pids = self.pop3d_pids()
        for i in range(1, 6):
            self.assertTrue(c.cmd("DELE %d" % i).startswith(b"+OK"))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.assertTrue(c.closed())
        self.assertEqual(self.relist(), 5)
        self.assertEqual(self.maildir_names(), self.names)
        self.assertEqual(len(self.inst.messages("demo")), 5)


@unittest.skipUnless(os.geteuid() == 0, "skipped: needs root")
class Pop3PrivilegeTest(TernTestCase):
    def test_processes_from_proc(self):
        inst = self.instance(tls=True, pop3=True)
        inst.start()
        inst.pop3_ready()
        inst.deliver("demo", ["priv"])
        login_pw = pwd.getpwnam("ternlogin")
        vmail = pwd.getpwnam("ternvmail")
        p = login(inst, "demo")
        self.addCleanup(p.sock.close)
        logins = wait_for(lambda: inst.child_pids("pop3-login"), WAIT,
                          what="pop3-login")
        for pid in logins:
            self.assertEqual(proc_ids(pid, "Uid"), [login_pw.pw_uid] * 4)
            self.assertEqual(proc_ids(pid, "Gid"), [login_pw.pw_gid] * 4)
            root = os.readlink("/proc/%d/root" % pid)
            self.assertEqual(root, os.path.join(inst.spool, "login"))
            # its whole world: the two sockets, nothing to read or write
            self.assertEqual(sorted(os.listdir("/proc/%d/root" % pid)),
                             ["auth", "pop3d"])
            st = os.stat(os.path.join(inst.spool, "login"))
            self.assertEqual(st.st_uid, 0)
            self.assertEqual(st.st_mode & 0o7777, 0o750)
        daemons = wait_for(lambda: inst.child_pids("pop3d"), WAIT,
                           what="pop3d")
        for pid in daemons:
            self.assertEqual(proc_ids(pid, "Uid"), [vmail.pw_uid] * 4)
            self.assertEqual(proc_ids(pid, "Gid"), [vmail.pw_gid] * 4)
            with open("/proc/%d/status" % pid) as f:
                groups = [ln for ln in f if ln.startswith("Groups:")][0]
            self.assertNotIn(" 0", " " + groups.split(":", 1)[1])
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_login_cannot_reach_spool_or_mail(self):
        """ternlogin itself (what a compromised pop3-login is) can open
        neither the spool's private parts nor the mailboxes."""
        inst = self.instance(tls=True, pop3=True)
        inst.start()
        inst.pop3_ready()
        inst.deliver("demo", ["private"])
        pw = pwd.getpwnam("ternlogin")
        targets = [os.path.join(inst.spool, d) for d in
                   ("incoming", "active", "deferred", "private")]
        targets.append(os.path.join(inst.maildir("demo"), "new"))
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
                for t in targets:
                    try:
                        os.listdir(t)
                        code = 1
                    except PermissionError:
                        pass
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0,
                         "ternlogin could list one of %s" % targets)


if __name__ == "__main__":
    unittest.main()

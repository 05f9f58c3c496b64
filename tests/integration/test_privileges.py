"""Privilege separation as root: who each process runs as, who owns what.

Skipped when not root (the developer instance runs everything as the
invoking user). CI runs as root.
"""
import grp
import os
import pwd
import unittest

from ternlab import TernTestCase, wait_for


def proc_ids(pid):
    """(real uid, effective uid, real gid, effective gid) from /proc."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:3]]
            elif line.startswith("Gid:"):
                gid = [int(x) for x in line.split()[1:3]]
    return uid[0], uid[1], gid[0], gid[1]


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class Privileges(TernTestCase):

    def test_daemons_drop_privileges(self):
        inst = self.instance().start()
        tern = pwd.getpwnam("tern")
        vmail = pwd.getpwnam("ternvmail")
        with inst.smtp() as s:
            # keep a session open so an smtpd exists while we look
            s.ehlo("client.test")
            s.sendmail("a@example.org", ["demo@localhost"], b"Subject: p\r\n\r\nx\r\n")
            msg_dir = os.path.join(inst.maildir("demo"), "new")
            inst.wait_messages("demo", 1)
            self.assertEqual(proc_ids(inst.master_pid)[:2], (0, 0))
            for cmd in ("smtpd", "qmgr"):
                pids = wait_for(lambda: inst.child_pids(cmd), 10, what=cmd)
                for pid in pids:
                    self.assertEqual(proc_ids(pid),
                                     (tern.pw_uid, tern.pw_uid, tern.pw_gid, tern.pw_gid),
                                     "%s pid %d" % (cmd, pid))
                    with open("/proc/%d/status" % pid) as f:
                        self.assertIn("NoNewPrivs:\t1", f.read())
        for pid in inst.child_pids("local"):
            self.assertEqual(proc_ids(pid)[0], 0)      # local stays root
        name = os.listdir(msg_dir)[0]
        st = os.stat(os.path.join(msg_dir, name))
        self.assertEqual((st.st_uid, st.st_gid), (vmail.pw_uid, vmail.pw_gid))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        for q in ("incoming", "active", "deferred"):
            st = os.stat(os.path.join(inst.spool, q))
            self.assertEqual(st.st_uid, tern.pw_uid, q)
            self.assertEqual(st.st_mode & 0o777, 0o700, q)
        # the pid file's directory is root's: master truncates what it opens
        st = os.lstat(os.path.join(inst.spool, "pid"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o755))
        # maildrop/ and public/ are reached through the set-gid group
        postdrop = grp.getgrnam("ternpostdrop").gr_gid
        for d, mode in (("maildrop", 0o1730), ("public", 0o2710)):
            st = os.lstat(os.path.join(inst.spool, d))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                             (tern.pw_uid, postdrop, mode), d)
        for sock, gid, mode in (("public/qmgr", postdrop, 0o666),
                                ("private/local", tern.pw_gid, 0o600)):
            st = os.lstat(os.path.join(inst.spool, sock))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                             (tern.pw_uid, gid, mode), sock)


if __name__ == "__main__":
    unittest.main()

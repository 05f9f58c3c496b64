"""mbox mailboxes (issue 7): home_mailbox without a trailing /, and
$mail_spool_directory/USER when home_mailbox is empty.

Real instances; a test holds the locks itself (fcntl via lockf, a
USER.lock dot lock). Checks that need root (ownership, mode, symlinks
and hard links in a root:mail 2775 spool, supplementary groups) skip
when not root.
"""
import fcntl
import grp
import os
import pwd
import re
import subprocess
import unittest

from ternlab import FAST_RETRY, TernTestCase, wait_for

FROM_LINE = re.compile(rb"^From (\S+)  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
LOCK_FAST = {"deliver_lock_attempts": "2", "deliver_lock_delay": "1s"}


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def split_mbox(data):
    """Messages of an mbox file: (From_ line, rest); every message must
    end with the empty line that separates it from the next."""
    out = []
    for part in re.split(rb"(?:^|(?<=\n)\n)(?=From )", data):
        if not part:
            continue
        line, _, rest = part.partition(b"\n")
        out.append((line, rest))
    return out


def status_lines(inst, status):
    return [l for l in inst.log_text().splitlines() if "status=%s" % status in l]


def wait_mbox(path, count, inst, timeout=60):
    def enough():
        msgs = split_mbox(read(path))
        return msgs if len(msgs) >= count else None
    try:
        return wait_for(enough, timeout, 0.1, "%d messages in %s" % (count, path))
    except AssertionError:
        raise AssertionError("log tail:\n" + inst.log_text()[-3000:])


class MboxDelivery(TernTestCase):

    def test_home_mbox_format_and_append(self):
        inst = self.instance(main={"home_mailbox": "Mailbox"}).start()
        mbox = os.path.join(inst.dir, "home", "demo", "Mailbox")
        with inst.smtp() as s:
            s.sendmail("alice@example.org", ["demo@localhost"],
                       b"Subject: one\r\n\r\nFrom the start\r\n>From quoted\r\n"
                       b"From\r\nlast line")
        wait_mbox(mbox, 1, inst)
        with inst.smtp() as s:
            s.sendmail("", ["demo+box@localhost"],
                       b"Subject: two\r\n\r\nbody two\r\n")
        msgs = wait_mbox(mbox, 2, inst)
        self.assertEqual(len(msgs), 2)
        (l1, m1), (l2, m2) = msgs
        self.assertRegex(l1, FROM_LINE)
        self.assertEqual(FROM_LINE.match(l1).group(1), b"alice@example.org")
        self.assertEqual(FROM_LINE.match(l2).group(1), b"MAILER-DAEMON")
        self.assertTrue(m1.startswith(b"Return-Path: <alice@example.org>\n"
                                      b"X-Original-To: demo@localhost\n"
                                      b"Delivered-To: demo@localhost\n"), m1)
        # From_ quoting of the body only where a line starts with "From "
        self.assertTrue(m1.endswith(b"\n\n>From the start\n>From quoted\nFrom\n"
                                    b"last line\n"), m1)
        self.assertTrue(m2.startswith(b"Return-Path: <>\n"
                                      b"X-Original-To: demo+box@localhost\n"
                                      b"Delivered-To: demo+box@localhost\n"), m2)
        self.assertTrue(read(mbox).endswith(b"\nbody two\n\n"))
        st = os.stat(mbox)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(st.st_uid, os.stat(os.path.dirname(mbox)).st_uid)
        # the dot lock goes right after the content is written: wait for it
        wait_for(lambda: not os.path.exists(mbox + ".lock"), 30,
                 what="the dot lock removed")
        self.assertLogHas(inst, "status=sent (delivered to mailbox)")
        inst.wait_queue_empty()

    def _spool(self, inst):
        spool = os.path.join(inst.dir, "varmail")
        os.mkdir(spool)
        if os.geteuid() == 0:
            os.chown(spool, 0, grp.getgrnam("mail").gr_gid)   # Debian's
            os.chmod(spool, 0o2775)
        return spool

    def test_mail_spool_directory(self):
        inst = self.instance(main=dict(FAST_RETRY, home_mailbox=""))
        spool = self._spool(inst)
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            f.write("mail_spool_directory = %s\n" % spool)
        inst.start()
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["demo@localhost"],
                       b"Subject: spool\r\n\r\nFrom spool\r\n")
        mbox = os.path.join(spool, "demo")
        msgs = wait_mbox(mbox, 1, inst)
        self.assertIn(b"\nSubject: spool\n\n>From spool\n", msgs[0][1])
        self.assertEqual(inst.messages("demo"), [])     # no Maildir
        st = os.lstat(mbox)
        self.assertEqual(st.st_mode & 0o7777, 0o600)
        owner = os.stat(os.path.join(inst.dir, "home", "demo")).st_uid
        self.assertEqual(st.st_uid, owner)              # the user's, not root's
        if os.geteuid() != 0:
            return
        # root: a hard link and a symlink in the spool are refused
        other = os.path.join(spool, "other")
        os.link(mbox, other)
        size = st.st_size
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["demo@localhost"], b"Subject: hl\r\n\r\nx\r\n")
        self.assertLogHas(inst, "hard links")
        self.assertEqual(os.stat(mbox).st_size, size)
        victim = os.path.join(inst.dir, "victim")
        with open(victim, "wb") as f:
            f.write(b"precious\n")
        os.unlink(mbox)
        os.unlink(other)
        os.symlink(victim, mbox)
        wait_for(lambda: "symbolic link" in inst.log_text(), 60, 0.1,
                 "the symlink refused")
        self.assertEqual(read(victim), b"precious\n")
        # once the symlink is gone the deferred message arrives
        os.unlink(mbox)
        msgs = wait_mbox(mbox, 1, inst)
        self.assertIn(b"Subject: hl\n", msgs[0][1])
        self.assertEqual(os.lstat(mbox).st_uid, owner)

    def test_locked_mailbox_defers_then_delivers(self):
        inst = self.instance(main=dict(FAST_RETRY, home_mailbox="Mailbox",
                                       **LOCK_FAST)).start()
        mbox = os.path.join(inst.dir, "home", "demo", "Mailbox")
        owner = os.stat(os.path.dirname(mbox))
        fd = os.open(mbox, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchown(fd, owner.st_uid, owner.st_gid)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)          # an fcntl lock, as a MUA holds
            with inst.smtp() as s:
                s.sendmail("a@example.org", ["demo@localhost"],
                           b"Subject: locked\r\n\r\nx\r\n")
            wait_for(lambda: any("dsn=4.2.0" in l and "cannot acquire lock" in l
                                 for l in status_lines(inst, "deferred")),
                     60, 0.1, "a 4.2.0 deferral")
            self.assertEqual(read(mbox), b"")
        finally:
            os.close(fd)                            # releases the lock
        msgs = wait_mbox(mbox, 1, inst)
        self.assertIn(b"Subject: locked\n", msgs[0][1])
        # now a dot lock
        lock = mbox + ".lock"
        with open(lock, "w") as f:
            f.write("12345\n")
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["demo@localhost"],
                       b"Subject: dotlocked\r\n\r\nx\r\n")
        wait_for(lambda: any("dsn=4.2.0" in l and "mailbox is locked" in l
                             for l in status_lines(inst, "deferred")),
                 60, 0.1, "a dot-lock deferral")
        self.assertEqual(len(split_mbox(read(mbox))), 1)
        os.unlink(lock)
        msgs = wait_mbox(mbox, 2, inst)
        self.assertIn(b"Subject: dotlocked\n", msgs[1][1])
        inst.wait_queue_empty()

    def test_mailbox_size_limit_bounces(self):
        inst = self.instance(main={"home_mailbox": "Mailbox",
                                   "mailbox_size_limit": "20000",
                                   "message_size_limit": "20000"}).start()
        mbox = os.path.join(inst.dir, "home", "demo", "Mailbox")
        owner = os.stat(os.path.dirname(mbox))
        with open(mbox, "wb") as f:
            f.write(b"x" * 19000 + b"\n")
        os.chown(mbox, owner.st_uid, owner.st_gid)
        os.chmod(mbox, 0o600)
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["demo@localhost"],
                       b"Subject: big\r\n\r\n" + b"y" * 3000 + b"\r\n")
        wait_for(lambda: any("dsn=5.2.2" in l and "mailbox full" in l
                             for l in status_lines(inst, "bounced")),
                 60, 0.1, "a 5.2.2 bounce")
        self.assertEqual(read(mbox), b"x" * 19000 + b"\n")   # cut back

    def test_supplementary_groups(self):
        # the mailbox is in a directory only a supplementary group of the
        # user may write: delivery works only with initgroups-style groups
        if os.geteuid() != 0:
            self.skipTest("needs root (a system user with a supplementary group)")
        user, group = "ternmbxtest", "ternmbxgrp"
        inst = self.instance(main={"home_mailbox": "shared/Mailbox"})
        home = os.path.join(inst.dir, "home", user)
        subprocess.run(["groupadd", group], check=False, capture_output=True)
        subprocess.run(["useradd", "--no-create-home", "--home-dir", home,
                        "--shell", "/usr/sbin/nologin", "-G", group, user],
                       check=False, capture_output=True)
        self.addCleanup(subprocess.run, ["groupdel", group], capture_output=True)
        self.addCleanup(subprocess.run, ["userdel", user], capture_output=True)
        pw = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid
        os.mkdir(home)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        shared = os.path.join(home, "shared")
        os.mkdir(shared)
        os.chown(shared, 0, gid)
        os.chmod(shared, 0o770)
        inst.start()
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["%s@localhost" % user],
                       b"Subject: groups\r\n\r\nx\r\n")
        mbox = os.path.join(shared, "Mailbox")
        msgs = wait_mbox(mbox, 1, inst)
        self.assertIn(b"Subject: groups\n", msgs[0][1])
        self.assertEqual(os.stat(mbox).st_uid, pw.pw_uid)


if __name__ == "__main__":
    unittest.main()

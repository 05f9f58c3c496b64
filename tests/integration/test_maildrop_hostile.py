"""maildrop/ is written by local users: pickup must survive whatever they
put there. Malformed, oversized and foreign files end in corrupt/ with a
log line, what cannot be moved safely (symbolic links, hard links,
FIFOs, directories) is removed by name with a log line, nothing is
delivered, nothing outside maildrop/ is touched, and pickup goes on
(a good file afterwards is delivered). As root, an ordinary user
submits through a set-gid copy of postdrop, and may not choose another
configuration directory through it.
"""
import grp
import os
import pwd
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import unittest

import ternlab
from ternlab import BUILD, TernTestCase, default_config_dir, wait_for

ROOT = os.geteuid() == 0
SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
CHUNK = 65536


def rec(t, data=b""):
    if isinstance(data, str):
        data = data.encode()
    return t.encode() + struct.pack(">I", len(data)) + data


def good(subject, rcpt="demo@localhost", sender="someone@example.org"):
    return (rec("V", "1") + rec("S", sender) + rec("R", rcpt)
            + rec("C", "Subject: %s\n\nbody\n" % subject) + rec("E"))


class Hostile(TernTestCase):
    def setUp(self):
        # a small limit makes "oversized" cheap (the file bound is about
        # 10 MB of envelope plus the limit)
        self.inst = self.instance(main={"message_size_limit": "20000"})
        self.inst.start()
        self.maildrop = os.path.join(self.inst.spool, "maildrop")
        self.corrupt = os.path.join(self.inst.spool, "corrupt")
        self.group = os.stat(self.maildrop).st_gid

    def plant(self, name, data, uid=None, gid=None):
        """A file in maildrop/ as postdrop would leave it (its group),
        renamed into place complete: pickup may look at any moment (and
        skips postdrop's t.* names)."""
        path = os.path.join(self.maildrop, name)
        temp = os.path.join(self.maildrop, "t.plant." + name)
        with open(temp, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o444)
        if ROOT:
            os.chown(temp, uid if uid is not None else 0,
                     gid if gid is not None else self.group)
        os.utime(temp)
        os.rename(temp, path)
        return path

    def trigger(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.path.join(self.inst.spool, "public", "pickup"))
            s.sendall(b"A")

    def wait_gone(self, names):
        wait_for(lambda: not any(os.path.lexists(os.path.join(self.maildrop, n))
                                 for n in names), 60, 0.1,
                 "maildrop/ to be emptied of %s" % names)

    def test_hostile_files(self):
        big = b"x" * CHUNK
        bad = {
            "truncated": good("truncated")[:-7],
            "empty": b"",
            "wrongtype": rec("V", "1") + rec("S", "") + rec("T", "1.0")
                         + rec("R", "demo@localhost") + rec("E"),
            "queuefile": rec("V", "1") + rec("T", "1.0") + rec("S", ""),
            "badorder": rec("V", "1") + rec("R", "demo@localhost")
                        + rec("S", "") + rec("E"),
            "ctlrcpt": rec("V", "1") + rec("S", "")
                       + rec("R", "demo@localhost\nR") + rec("E"),
            "hugelen": rec("V", "1") + rec("S", "") + b"R\xff\xff\xff\xff",
            "trailing": good("trailing") + b"junk",
            "toolarge": rec("V", "1") + rec("S", "") + rec("R", "demo@localhost")
                        + rec("C", big) + rec("E"),
            "uidattr": rec("V", "1") + rec("S", "") + rec("A", "uid=0")
                       + rec("R", "demo@localhost") + rec("E"),
            "norcpt": rec("V", "1") + rec("S", "") + rec("C", "To: x\n\n")
                      + rec("E"),
        }
        for name, data in bad.items():
            self.plant(name, data)
        # larger than any file a valid message can make: refused by size
        self.plant("oversized", rec("V", "1") + b"\0" * (11 * 1024 * 1024))
        removed = {}
        # a symbolic link to a file outside (must be neither read nor moved)
        target = os.path.join(self.inst.dir, "secret")
        with open(target, "wb") as f:
            f.write(good("via symlink"))
        os.symlink(target, os.path.join(self.maildrop, "symlink"))
        removed["symlink"] = "symbolic link: removed"
        # a hard link to a file elsewhere in the spool's file system
        other = os.path.join(self.inst.spool, "hardlink-target")
        with open(other, "wb") as f:
            f.write(good("via hard link"))
        if ROOT:
            os.chown(other, 0, self.group)
        os.link(other, os.path.join(self.maildrop, "hardlink"))
        removed["hardlink"] = "file has several links: removed"
        os.mkfifo(os.path.join(self.maildrop, "fifo"), 0o644)
        removed["fifo"] = "not a regular file: removed"
        os.mkdir(os.path.join(self.maildrop, "adir"))
        removed["adir"] = "a directory: removed"
        if ROOT:
            # not written through postdrop: not in maildrop/'s group
            nobody = pwd.getpwnam("nobody")
            self.plant("wrongowner", good("wrong owner"), uid=nobody.pw_uid,
                       gid=nobody.pw_gid)
            bad["wrongowner"] = None
        self.trigger()
        names = list(bad) + ["oversized"] + list(removed)
        self.wait_gone(names)
        for name in list(bad) + ["oversized"]:
            self.assertTrue(os.path.exists(os.path.join(self.corrupt, name)),
                            "%s not in corrupt/; log:\n%s"
                            % (name, self.inst.log_text()[-3000:]))
            self.assertRegex(self.inst.log_text(),
                             r"maildrop/%s: uid=\d+: .*: moved to corrupt/%s"
                             % (name, name))
        for name, why in removed.items():
            self.assertFalse(os.path.lexists(os.path.join(self.corrupt, name)))
            self.assertIn("maildrop/%s: %s" % (name, why), self.inst.log_text())
        self.assertIn("maildrop/toolarge: uid=", self.inst.log_text())
        self.assertRegex(self.inst.log_text(), r"toolarge: uid=\d+: message too large")
        self.assertRegex(self.inst.log_text(), r"oversized: uid=\d+: file too large")
        # what the links pointed at is untouched
        with open(target, "rb") as f:
            self.assertEqual(f.read(), good("via symlink"))
        self.assertEqual(os.stat(other).st_nlink, 1)
        # pickup is still there and works; nothing else was delivered
        self.plant("afterwards", good("afterwards"))
        self.trigger()
        self.assertDeliveredOnce(self.inst, ["afterwards"])
        self.assertNotRegex(self.inst.log_text(),
                            r"pickup.*(killed|signal|panic|fatal)")

    @unittest.skipUnless(ROOT, "needs root (privilege drop and chroot)")
    def test_pickup_confined(self):
        """pickup reads users' files as $mail_owner, inside the jail."""
        self.trigger()
        pids = wait_for(lambda: self.inst.child_pids("pickup"), 30, 0.1,
                        "a pickup process")
        tern = pwd.getpwnam("tern")
        for pid in pids:
            with open("/proc/%d/status" % pid) as f:
                ids = {l.split(":")[0]: l.split()[1:] for l in f
                       if l.startswith(("Uid:", "Gid:", "Groups:"))}
            self.assertEqual(set(ids["Uid"]), {str(tern.pw_uid)})
            self.assertEqual(set(ids["Gid"]), {str(tern.pw_gid)})
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             os.path.realpath(self.inst.spool))

    def test_stale_temporary_file(self):
        """postdrop's t.* files are left alone until a day old."""
        fresh = self.plant("t.1.0", good("fresh temp"))
        old = os.path.join(self.maildrop, "t.2.0")
        with open(old, "wb") as f:
            f.write(good("old temp"))
        os.utime(old, (1, 1))
        self.trigger()
        wait_for(lambda: not os.path.exists(old), 60, 0.1, "old t.* removed")
        self.assertTrue(os.path.exists(fresh))
        self.assertIn("maildrop/t.2.0: stale temporary file: removed",
                      self.inst.log_text())
        self.inst.wait_quiet()
        self.assertEqual(self.inst.messages("demo"), [])


class LoginSenderPickup(TernTestCase):
    """pickup checks local_login_sender_maps again on the file's owner:
    a file with a sender its owner may not use (it did not come through
    postdrop) is not delivered but moved to corrupt/, with a warning that
    names the file (its queue ID), the login and the address."""

    def setUp(self):
        me = pwd.getpwuid(os.geteuid()).pw_name
        self.me = me
        self.inst = self.instance(main={
            "local_login_sender_maps":
                "inline:{%s = %s@example.org, uid:4242 = <>}" % (me, me)})
        self.inst.start()
        self.maildrop = os.path.join(self.inst.spool, "maildrop")
        self.corrupt = os.path.join(self.inst.spool, "corrupt")
        self.group = os.stat(self.maildrop).st_gid

    plant = Hostile.plant
    trigger = Hostile.trigger
    wait_gone = Hostile.wait_gone

    def assertCorrupt(self, name, login, uid, sender):
        self.assertTrue(os.path.exists(os.path.join(self.corrupt, name)),
                        self.inst.log_text()[-3000:])
        self.assertIn('maildrop/%s: uid=%d: User %s(%d) is not allowed to use '
                      'sender address "%s": moved to corrupt/%s'
                      % (name, uid, login, uid, sender, name),
                      self.inst.log_text())

    def test_forged_sender(self):
        uid = os.geteuid()
        files = {"forged": good("forged", sender="boss@example.org"),
                 "nullforged": good("null forged", sender=""),
                 "own": good("own", sender="%s+x@example.org" % self.me)}
        if ROOT:
            # a uid without a passwd entry is looked up as uid:N
            files["nopasswd"] = good("no passwd", sender="")
            files["nopasswdforged"] = good("no passwd forged",
                                           sender="%s@example.org" % self.me)
        for name, data in files.items():
            self.plant(name, data,
                       uid=4242 if name.startswith("nopasswd") else None)
        self.trigger()
        self.wait_gone(list(files))
        self.assertCorrupt("forged", self.me, uid, "boss@example.org")
        self.assertCorrupt("nullforged", self.me, uid, "<>")
        delivered = ["own"]
        if ROOT:
            self.assertCorrupt("nopasswdforged", "uid:4242", 4242,
                               "%s@example.org" % self.me)
            delivered.append("no passwd")
        self.assertDeliveredOnce(self.inst, delivered)
        self.assertFalse(os.path.exists(os.path.join(self.corrupt, "own")))


TEST_USER = "terntestsubmit"


@unittest.skipUnless(ROOT, "needs root (a test user, a set-gid postdrop)")
class SetgidPostdrop(TernTestCase):
    """sendmail run by an ordinary user, with a set-gid copy of postdrop
    in a daemon_directory of its own (symbolic links to everything else
    in build/libexec)."""

    def setUp(self):
        try:
            pwd.getpwnam(TEST_USER)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin",
                            TEST_USER], check=True)
            self.addCleanup(subprocess.run, ["userdel", TEST_USER],
                            check=False)
        self.user = pwd.getpwnam(TEST_USER)
        self.libexec = tempfile.mkdtemp(prefix="tern-libexec-")
        self.addCleanup(shutil.rmtree, self.libexec, True)
        os.chmod(self.libexec, 0o755)
        src = os.path.join(BUILD, "libexec")
        for name in os.listdir(src):
            if name != "postdrop":
                os.symlink(os.path.join(src, name),
                           os.path.join(self.libexec, name))
        pd = os.path.join(self.libexec, "postdrop")
        shutil.copy(os.path.join(src, "postdrop"), pd)
        os.chown(pd, 0, grp.getgrnam("ternpostdrop").gr_gid)
        os.chmod(pd, 0o2755)
        self.inst = self.instance(main={"daemon_directory": self.libexec})
        self.inst.start()

    def as_user(self, args, data, env=None):
        u = self.user
        e = {"PATH": "/usr/bin:/bin"}
        e.update(env or {})

        def drop():
            os.setgroups([])
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
        return subprocess.run([SENDMAIL] + args, input=data, env=e,
                              capture_output=True, preexec_fn=drop,
                              timeout=60)

    def test_other_config_refused(self):
        """The set-gid postdrop refuses the instance's configuration
        directory for an ordinary user unless the default main.conf lists
        it in alternate_config_directories."""
        default = os.path.join(default_config_dir(), "main.conf")
        if os.path.exists(default):
            with open(default) as f:
                if self.inst.etc in f.read():
                    self.skipTest("%s lists this directory" % default)
        r = self.as_user(["-C", self.inst.etc, "demo"],
                         b"Subject: refused\n\nx\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"not listed in alternate_config_directories", r.stderr)
        r = self.as_user(["demo"], b"Subject: refused\n\nx\n",
                         env={"MAIL_CONFIG": self.inst.etc})
        self.assertIn(b"not listed in alternate_config_directories", r.stderr)
        self.assertEqual([f for f in os.listdir(os.path.join(
            self.inst.spool, "maildrop"))], [])

    def default_config(self):
        """The default main.conf (the build's $config_directory: ternconf
        -d says where) listing the instance's configuration directory in
        alternate_config_directories; written only when that directory
        does not exist, removed afterwards."""
        cdir = default_config_dir()
        if os.path.exists(cdir):
            self.skipTest("%s exists: not changing a real configuration"
                          % cdir)
        os.makedirs(cdir)
        self.addCleanup(shutil.rmtree, cdir, True)
        with open(os.path.join(cdir, "main.conf"), "w") as f:
            f.write("alternate_config_directories = %s\n" % self.inst.etc)
        os.chmod(os.path.join(cdir, "main.conf"), 0o644)

    def test_submit_as_user(self):
        """Through the default main.conf's alternate_config_directories."""
        self.default_config()
        r = self.as_user(["-C", self.inst.etc, "demo"],
                         b"Subject: from a user\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertDeliveredOnce(self.inst, ["from a user"])
        m = self.inst.messages("demo")[0]
        self.assertIn(b"Return-Path: <%s@localhost.localdomain>"
                      % TEST_USER.encode(), m)
        self.assertIn(b"from userid %d" % self.user.pw_uid, m)
        self.assertRegex(self.inst.log_text(), r"uid=%d from=<%s>"
                         % (self.user.pw_uid, TEST_USER))
        # -f is honoured (local_login_sender_maps = static:*, the
        # default) and the uid still logged
        r = self.as_user(["-C", self.inst.etc, "-f", "root@localhost", "demo"],
                         b"Subject: as root\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertDeliveredOnce(self.inst, ["from a user", "as root"])
        self.assertRegex(self.inst.log_text(), r"uid=%d from=<root@localhost>"
                         % self.user.pw_uid)

    def test_sender_restricted(self):
        """local_login_sender_maps restricting the user to its own
        addresses: the set-gid postdrop refuses -f root@localhost (77, the
        reason on stderr, nothing in maildrop/) and takes its own."""
        self.inst.stop()
        self.inst = self.instance(main={
            "daemon_directory": self.libexec,
            "local_login_sender_maps": "inline:{%s = %s %s@example.com}"
                                       % (TEST_USER, TEST_USER, TEST_USER)})
        self.inst.start()
        self.default_config()
        r = self.as_user(["-C", self.inst.etc, "-f", "root@localhost", "demo"],
                         b"Subject: forged\n\nx\n")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(b'postdrop: fatal: User %s(%d) is not allowed to use '
                      b'sender address "root@localhost"'
                      % (TEST_USER.encode(), self.user.pw_uid), r.stderr)
        self.assertEqual(os.listdir(os.path.join(self.inst.spool,
                                                 "maildrop")), [])
        for args, subject in ((["-f", "%s@example.com" % TEST_USER], "own"),
                              ([], "bare")):
            r = self.as_user(["-C", self.inst.etc] + args + ["demo"],
                             b"Subject: %s\n\nx\n" % subject.encode())
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertDeliveredOnce(self.inst, ["own", "bare"])
        self.assertRegex(self.inst.log_text(), r"uid=%d from=<%s@example.com>"
                         % (self.user.pw_uid, TEST_USER))


if __name__ == "__main__":
    unittest.main()

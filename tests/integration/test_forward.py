""".forward files (issue 7): forwarding to addresses, pipes run as the
user, "\\user", user+ext with .forward+ext, allow_mail_to_commands, and
(as root) the ownership and permission checks and the user's rights.
"""
import grp
import os
import pwd
import re
import subprocess
import unittest

from ternlab import FAST_RETRY, TernTestCase, wait_for
import mkinstance  # noqa: E402 (ternlab puts scripts/ on the path)
from test_local_command import outdir, parse, runs, script, wait_runs


def home(inst, user):
    return os.path.join(inst.dir, "home", user)


def forward(inst, user, text, name=".forward", mode=0o644, owner=None):
    path = os.path.join(home(inst, user), name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    uid, gid = owner if owner else mkinstance.mailbox_owner()
    os.chown(path, uid, gid)
    return path


class Forward(TernTestCase):

    def test_forward_to_address(self):
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice"))
        forward(inst, "demo", "# to alice\nalice\n")
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo@localhost"],
                       b"Subject: fwd\r\n\r\nx\r\n")
        msg = inst.wait_messages("alice", 1)[0]
        inst.wait_queue_empty()
        self.assertEqual(inst.messages("demo"), [])
        self.assertIn(b"Delivered-To: demo@localhost\n", msg)
        self.assertRegex(inst.log_text(), r"to=<demo@localhost>, relay=local, .*"
                                          r"status=sent \(forwarded as \w+\)")

    def test_forward_loop_bounces(self):
        # demo -> alice -> demo: the copy coming back carries
        # Delivered-To: demo and is not forwarded again
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice"))
        forward(inst, "demo", "alice\n")
        forward(inst, "alice", "demo\n")
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo@localhost"], b"Subject: l\r\n\r\nx\r\n")
        self.assertLogHas(inst, "status=bounced (mail forwarding loop for "
                                "demo@localhost)", timeout=60)

    def test_pipe_and_backslash_user(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "record.sh")
        forward(inst, "demo", '"|%s", \\demo\n' % path)
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo@localhost"],
                       b"Subject: pipe\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        info, env, stdin = parse(wait_runs(inst, 1)[0])
        uid, gid = mkinstance.mailbox_owner()
        self.assertEqual(int(info["uid"]), uid)
        self.assertEqual(int(info["gid"]), gid)
        self.assertEqual(info["cwd"], home(inst, "demo"))
        self.assertEqual(env["HOME"], home(inst, "demo"))
        self.assertEqual(env["USER"], "demo")
        self.assertIn("Subject: pipe\n", stdin)
        inst.wait_queue_empty()
        self.assertEqual(len(inst.messages("demo")), 1)
        self.assertEqual(len(runs(inst)), 1)

    def test_extension_forward(self):
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice"))
        forward(inst, "demo", "alice\n", name=".forward+lists")
        path = script(inst, "record.sh")
        forward(inst, "demo", '"|%s"\n' % path, name=".forward+pipe")
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo+lists@localhost"],
                       b"Subject: lists\r\n\r\nx\r\n")
            s.sendmail("x@example.org", ["demo+other@localhost"],
                       b"Subject: other\r\n\r\nx\r\n")
            s.sendmail("x@example.org", ["demo+pipe@localhost"],
                       b"Subject: piped\r\n\r\nx\r\n")
        self.assertIn(b"Subject: lists", inst.wait_messages("alice", 1)[0])
        self.assertIn(b"Subject: other", inst.wait_messages("demo", 1)[0])
        info, env, _ = parse(wait_runs(inst, 1)[0])
        self.assertEqual(env.get("EXTENSION"), "pipe")
        inst.wait_queue_empty()
        self.assertEqual(len(inst.messages("demo")), 1)
        self.assertEqual(len(inst.messages("alice")), 1)

    def test_alias_only_commands_refuse_forward_pipes(self):
        inst = self.instance(main=dict(FAST_RETRY, allow_mail_to_commands="alias"),
                             users=("demo",))
        path = script(inst, "record.sh")
        forward(inst, "demo", '"|%s"\n' % path)
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo@localhost"], b"Subject: r\r\n\r\nx\r\n")
        self.assertLogHas(inst, "dsn=5.7.1, status=bounced (mail to command is "
                                "restricted (forward))", timeout=60)
        self.assertEqual(runs(inst), [])

    def test_mailbox_command(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "lda.sh")
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            f.write('mailbox_command = %s -a "$EXTENSION"\n' % path)
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo+x@localhost"], b"Subject: m\r\n\r\nx\r\n")
        info, env, stdin = parse(wait_runs(inst, 1)[0])
        self.assertEqual(int(info["uid"]), mkinstance.mailbox_owner()[0])
        self.assertEqual(env.get("EXTENSION"), "x")
        self.assertIn("Subject: m\n", stdin)
        inst.wait_queue_empty()
        self.assertEqual(inst.messages("demo"), [])


@unittest.skipUnless(os.geteuid() == 0, "needs root (skipped)")
class RootForward(TernTestCase):

    USER = "terntfwd"
    GROUP = "terntfwdg"

    def test_pipe_runs_as_the_recipient(self):
        subprocess.run(["groupadd", "-f", self.GROUP], check=True)
        self.addCleanup(subprocess.run, ["groupdel", self.GROUP])
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        h = home(inst, self.USER)
        try:
            pwd.getpwnam(self.USER)
            # left over from an interrupted run: make it what we need
            subprocess.run(["usermod", "--home", h, "--shell", "/bin/sh",
                            "-G", self.GROUP, self.USER], check=True)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", h,
                            "--shell", "/bin/sh", "-G", self.GROUP, self.USER],
                           check=True)
        self.addCleanup(subprocess.run, ["userdel", self.USER])
        pw = pwd.getpwnam(self.USER)
        os.makedirs(h, exist_ok=True)
        os.chown(h, pw.pw_uid, pw.pw_gid)
        path = script(inst, "record.sh")
        forward(inst, self.USER, '"|%s"\n' % path, owner=(pw.pw_uid, pw.pw_gid))
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", [self.USER + "@localhost"],
                       b"Subject: sys\r\n\r\nx\r\n")
        info, env, _ = parse(wait_runs(inst, 1)[0])
        self.assertEqual(int(info["uid"]), pw.pw_uid)
        self.assertEqual(int(info["gid"]), pw.pw_gid)
        groups = info["groups"].split()
        self.assertIn(str(grp.getgrnam(self.GROUP).gr_gid), groups)
        self.assertNotIn("0", groups)
        self.assertEqual(info["cwd"], h)
        self.assertEqual(env["SHELL"], "/bin/sh")

    def test_unsafe_forward_files_refused(self):
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice", "bob"))
        path = script(inst, "record.sh")
        # writable by others: anybody could redirect demo's mail
        forward(inst, "demo", '"|%s"\n' % path, mode=0o666)
        # owned by somebody else than the user or root
        nobody = pwd.getpwnam("nobody")
        forward(inst, "alice", '"|%s"\n' % path, owner=(nobody.pw_uid, nobody.pw_gid))
        # a symlink to someone else's file
        os.symlink(os.path.join(home(inst, "demo"), ".forward"),
                   os.path.join(home(inst, "bob"), ".forward"))
        inst.start()
        with inst.smtp() as s:
            for u in ("demo", "alice", "bob"):
                s.sendmail("x@example.org", [u + "@localhost"],
                           b"Subject: " + u.encode() + b"\r\n\r\nx\r\n")
        self.assertLogHas(inst, "refusing to read %s/.forward: it is writable by "
                                "others" % home(inst, "demo"), timeout=60)
        self.assertLogHas(inst, "refusing to read %s/.forward: owned by uid %d"
                                % (home(inst, "alice"), nobody.pw_uid), timeout=60)
        self.assertLogHas(inst, "refusing to read %s/.forward: it is a symbolic "
                                "link" % home(inst, "bob"), timeout=60)
        self.assertEqual(runs(inst), [])


@unittest.skipUnless(os.geteuid() == 0, "needs root (skipped)")
class ForwardFileTargets(TernTestCase):
    """A user's .forward file targets are written with that user's rights:
    no symlink, hard link or ../ makes local write someone else's file."""

    OWNER, VICTIM = "terntffa", "terntffb"

    def system_user(self, inst, name):
        h = home(inst, name)
        try:
            pwd.getpwnam(name)
            subprocess.run(["usermod", "--home", h, "--shell", "/bin/sh",
                            name], check=True)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", h,
                            "--shell", "/bin/sh", name], check=True)
        self.addCleanup(subprocess.run, ["userdel", name])
        pw = pwd.getpwnam(name)
        os.makedirs(h, exist_ok=True)
        os.chown(h, pw.pw_uid, pw.pw_gid)
        os.chmod(h, 0o755)
        return pw, h

    def test_file_targets_keep_the_users_rights(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        a, ah = self.system_user(inst, self.OWNER)
        b, bh = self.system_user(inst, self.VICTIM)
        victim = os.path.join(bh, "victim")
        with open(victim, "w") as f:
            f.write("b's own\n")
        os.chown(victim, b.pw_uid, b.pw_gid)
        os.chmod(victim, 0o644)
        # a file anyone may write: a second name of it is still refused
        shared = os.path.join(bh, "shared")
        with open(shared, "w") as f:
            f.write("b's own\n")
        os.chown(shared, b.pw_uid, b.pw_gid)
        os.chmod(shared, 0o666)
        os.symlink(victim, os.path.join(ah, "link"))
        os.link(victim, os.path.join(ah, "hard"))
        os.link(shared, os.path.join(ah, "hard2"))
        targets = {
            "mine": os.path.join(ah, "mine"),           # the control
            "direct": victim,                           # not writable by a
            "sym": os.path.join(ah, "link"),
            "hard": os.path.join(ah, "hard"),
            "hard2": os.path.join(ah, "hard2"),
            "dotdot": os.path.join(ah, "..", self.VICTIM, "victim"),
        }
        for ext, target in targets.items():
            forward(inst, self.OWNER, "%s\n" % target,
                    name=".forward+" + ext, owner=(a.pw_uid, a.pw_gid))
        inst.start()
        with inst.smtp() as s:
            for ext in targets:
                s.sendmail("x@example.org",
                           ["%s+%s@localhost" % (self.OWNER, ext)],
                           b"Subject: " + ext.encode() + b"\r\n\r\nx\r\n")
        for ext in targets:
            wait_for(lambda: re.search(
                r"to=<%s\+%s@localhost>.*status=(sent|bounced|deferred)"
                % (self.OWNER, ext), inst.log_text()), 60,
                what="a result for +%s" % ext)
        log = inst.log_text()
        self.assertRegex(log, r"to=<%s\+mine@localhost>.*status=sent"
                         % self.OWNER)
        st = os.stat(targets["mine"])
        self.assertEqual((st.st_uid, st.st_mode & 0o777),
                         (a.pw_uid, 0o600))
        with open(targets["mine"], "rb") as f:
            self.assertIn(b"Subject: mine", f.read())
        for ext in ("direct", "sym", "hard", "hard2", "dotdot"):
            self.assertNotRegex(log, r"to=<%s\+%s@localhost>.*status=sent"
                                % (self.OWNER, ext))
        for path in (victim, shared):
            with open(path) as f:
                self.assertEqual(f.read(), "b's own\n")
        self.assertEqual(os.stat(victim).st_uid, b.pw_uid)


if __name__ == "__main__":
    unittest.main()

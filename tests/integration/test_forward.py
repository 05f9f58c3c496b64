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


if __name__ == "__main__":
    unittest.main()

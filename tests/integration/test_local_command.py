"""Delivery to |command targets of aliases and include files (issue 7).

The commands are small shell scripts written into the instance: each
records who it ran as (uid, gid, groups, cwd), its environment and its
standard input into a directory everybody may write, so the test can
read what local gave it. Root-only checks skip when not root.
"""
import grp
import os
import pwd
import re
import subprocess
import unittest

from ternlab import FAST_RETRY, TernTestCase, wait_for

RECORD = r"""#!/bin/sh
# record who we are, what we got, then exit with $1 (default 0)
d=%(out)s
t="$d/.tmp.$$"
{ echo "uid=$(id -u)"; echo "gid=$(id -g)"; echo "groups=$(id -G)";
  echo "cwd=$(pwd)"; echo "--env"; env; echo "--stdin"; cat; } > "$t"
mv "$t" "$d/out.$$"
%(tail)s
"""


def outdir(inst):
    d = os.path.join(inst.dir, "out")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o1777)
    return d


def script(inst, name, tail="exit 0"):
    """An executable script in the instance that records its run."""
    path = os.path.join(inst.dir, name)
    with open(path, "w") as f:
        f.write(RECORD % {"out": outdir(inst), "tail": tail})
    os.chmod(path, 0o755)
    return path


def runs(inst):
    d = outdir(inst)
    out = []
    for name in sorted(os.listdir(d)):
        if name.startswith("out."):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
    return out


def parse(run):
    head, _, rest = run.partition("--env\n")
    env, _, stdin = rest.partition("--stdin\n")
    info = dict(l.split("=", 1) for l in head.splitlines() if "=" in l)
    envd = dict(l.split("=", 1) for l in env.splitlines() if "=" in l)
    return info, envd, stdin


def wait_runs(inst, n, timeout=60):
    try:
        return wait_for(lambda: runs(inst) if len(runs(inst)) >= n else None,
                        timeout, 0.1, "%d command runs" % n)
    except AssertionError:
        raise AssertionError("log tail:\n" + inst.log_text()[-3000:])


def expected_uid(name="nobody"):
    """Who a command of a root-owned alias table runs as."""
    return pwd.getpwnam(name).pw_uid if os.geteuid() == 0 else os.getuid()


class AliasCommand(TernTestCase):

    def test_command_runs_with_clean_environment(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "record.sh")
        rebuild_aliases(inst, {"pipe": '"|%s"' % path})
        inst.start()
        os.environ["TERN_TEST_LEAK"] = "secret"   # must not reach the command
        self.addCleanup(os.environ.pop, "TERN_TEST_LEAK", None)
        with inst.smtp() as s:
            s.sendmail("boss@example.org", ["pipe+tag@localhost"],
                       b"Subject: to pipe\r\n\r\nFrom the body\r\n")
        run = wait_runs(inst, 1)[0]
        info, env, stdin = parse(run)
        self.assertEqual(int(info["uid"]), expected_uid())
        self.assertNotEqual(int(info["uid"]), 0)
        self.assertEqual(env.get("RECIPIENT"), "pipe+tag@localhost")
        self.assertEqual(env.get("ORIGINAL_RECIPIENT"), "pipe+tag@localhost")
        self.assertEqual(env.get("SENDER"), "boss@example.org")
        self.assertEqual(env.get("LOCAL"), "pipe+tag")
        self.assertEqual(env.get("DOMAIN"), "localhost")
        self.assertEqual(env.get("EXTENSION"), "tag")
        self.assertEqual(env.get("USER"), "pipe")
        self.assertEqual(env.get("LOGNAME"), "pipe")
        self.assertEqual(env.get("CLIENT_ADDRESS"), "127.0.0.1")
        self.assertIn("PATH", env)
        self.assertIn("HOME", env)
        for leaked in ("TERN_TEST_LEAK", "MAIL_CONFIG", "ASAN_OPTIONS",
                       "TERN_BUILD"):
            self.assertNotIn(leaked, env)
        allowed = {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LOCAL",
                   "DOMAIN", "EXTENSION", "RECIPIENT", "ORIGINAL_RECIPIENT",
                   "SENDER", "CLIENT_ADDRESS", "CLIENT_HOSTNAME",
                   "CLIENT_HELO", "CLIENT_PROTOCOL", "ENVID",
                   "PWD", "SHLVL", "_", "OLDPWD"}
        self.assertEqual(set(env) - allowed, set())
        self.assertTrue(stdin.startswith("From boss@example.org "), stdin[:200])
        self.assertIn("\nReturn-Path: <boss@example.org>\n", stdin)
        self.assertIn("\nDelivered-To: pipe+tag@localhost\n", stdin)
        self.assertIn("Subject: to pipe\n", stdin)
        self.assertIn("\nFrom the body\n", stdin)     # no >From quoting
        self.assertLogHas(inst, "status=sent (delivered to command: %s)" % path)
        inst.wait_queue_empty()

    def test_tempfail_defers_then_delivers_once(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        flag = os.path.join(outdir(inst), "flag")
        path = script(inst, "flaky.sh",
                      'if [ ! -e %s ]; then : > %s; rm -f "$d/out.$$"; '
                      'echo "try later"; exit 75; fi; exit 0' % (flag, flag))
        rebuild_aliases(inst, {"flaky": '"|%s"' % path})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["flaky@localhost"],
                       b"Subject: flaky\r\n\r\nx\r\n")
        self.assertLogHas(inst, "dsn=4.3.0, status=deferred (command failed "
                                "with exit status 75: try later)", timeout=60)
        wait_runs(inst, 1)
        inst.wait_queue_empty()
        self.assertEqual(len(runs(inst)), 1)
        self.assertEqual(len(re.findall(r"to=<flaky@localhost>.*status=sent",
                                        inst.log_text())), 1)

    def test_failing_command_bounces_with_output(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "fail.sh", 'echo "no such list here" >&2; exit 1')
        nouser = script(inst, "nouser.sh", "echo unknown; exit 67")
        rebuild_aliases(inst, {"fails": '"|%s"' % path,
                               "nouser": '"|%s"' % nouser})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["fails@localhost"],
                       b"Subject: fails\r\n\r\nx\r\n")
            s.sendmail("x@example.org", ["nouser@localhost"],
                       b"Subject: nouser\r\n\r\nx\r\n")
        self.assertLogHas(inst, "dsn=5.3.0, status=bounced (command failed with "
                                "exit status 1: no such list here)", timeout=60)
        self.assertLogHas(inst, "dsn=5.1.1, status=bounced (command failed with "
                                "exit status 67: unknown)", timeout=60)

    def test_owner_alias_gets_the_errors(self):
        # errors for "list" go to owner-list (demo), not to the sender
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice"))
        path = script(inst, "fail.sh", 'echo "list broken"; exit 1')
        rebuild_aliases(inst, {"list": '"|%s", alice' % path,
                               "owner-list": "demo"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["list@localhost"],
                       b"Subject: to the list\r\n\r\nx\r\n")
        inst.wait_messages("alice", 1)
        self.assertLogHas(inst, "from=<owner-list@localhost>", timeout=60)
        self.assertLogHas(inst, "status=bounced (command failed with exit "
                                "status 1: list broken)", timeout=60)
        bounce = inst.wait_messages("demo", 1)[0]
        self.assertIn(b"list broken", bounce)
        # alice's copy came with owner-list as its sender
        self.assertIn(b"Return-Path: <owner-list@localhost>", inst.messages("alice")[0])

    def test_include_file_checks(self):
        inst = self.instance(main=dict(FAST_RETRY,
                                       allow_mail_to_commands="alias, include"),
                             users=("demo", "alice"))
        path = script(inst, "record.sh")
        good = os.path.join(inst.dir, "good.list")
        bad = os.path.join(inst.dir, "bad.list")
        link = os.path.join(inst.dir, "link.list")
        for p in (good, bad):
            with open(p, "w") as f:
                f.write('alice\n"|%s"\n' % path)
        os.chmod(good, 0o644)
        os.chmod(bad, 0o666)
        os.symlink(good, link)
        rebuild_aliases(inst, {"good": ":include:" + good,
                               "bad": ":include:" + bad,
                               "link": ":include:" + link})
        inst.start()
        with inst.smtp() as s:
            for r in ("good", "bad", "link"):
                s.sendmail("x@example.org", [r + "@localhost"],
                           b"Subject: " + r.encode() + b"\r\n\r\nx\r\n")
        inst.wait_messages("alice", 1)
        run = wait_runs(inst, 1)[0]
        # root's include file: $default_privs; ours otherwise
        self.assertEqual(int(parse(run)[0]["uid"]), expected_uid())
        self.assertLogHas(inst, "refusing to read %s: it is writable by others" % bad)
        self.assertLogHas(inst, "refusing to read %s: it is a symbolic link" % link)
        self.assertEqual(len(inst.messages("alice")), 1)

    def test_commands_in_include_files_need_permission(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "record.sh")
        lst = os.path.join(inst.dir, "cmd.list")
        with open(lst, "w") as f:
            f.write('"|%s"\n' % path)
        rebuild_aliases(inst, {"inc": ":include:" + lst})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["inc@localhost"], b"Subject: i\r\n\r\nx\r\n")
        self.assertLogHas(inst, "dsn=5.7.1, status=bounced (mail to command is "
                                "restricted (include))", timeout=60)
        self.assertEqual(runs(inst), [])


def rebuild_aliases(inst, extra):
    """Rewrite the instance's aliases (the defaults plus extra) and run
    newaliases, before start()."""
    path = os.path.join(inst.etc, "aliases")
    with open(path) as f:
        lines = [l for l in f.read().splitlines()
                 if l.split(":", 1)[0] not in extra]
    lines += ["%s: %s" % kv for kv in extra.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    env = dict(os.environ, MAIL_CONFIG=inst.etc)
    subprocess.run([os.path.join(inst_build(), "sbin", "newaliases"), "-c",
                    inst.etc], check=True, env=env)
    for f in os.listdir(inst.etc):
        if f.startswith("aliases"):
            os.chmod(os.path.join(inst.etc, f), 0o644)


def inst_build():
    from ternlab import BUILD
    return BUILD


@unittest.skipUnless(os.geteuid() == 0, "needs root (skipped)")
class RootCommand(TernTestCase):
    """As root: an alias table owned by a user runs its commands as that
    user, with its groups; root's table as nobody; never root."""

    USER = "terntpipe"
    GROUP = "terntpipeg"

    def setUp(self):
        subprocess.run(["groupadd", "-f", self.GROUP], check=True)
        try:
            pwd.getpwnam(self.USER)
            # left over from an interrupted run: make it what we need
            subprocess.run(["usermod", "--home", "/nonexistent", "-G", self.GROUP,
                            self.USER], check=True)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/bin/sh", "-G", self.GROUP, self.USER],
                           check=True)
        self.addCleanup(subprocess.run, ["groupdel", self.GROUP])
        self.addCleanup(subprocess.run, ["userdel", self.USER])

    def test_user_owned_table_runs_as_owner(self):
        inst = self.instance(main=FAST_RETRY, users=("demo",))
        path = script(inst, "record.sh")
        pw = pwd.getpwnam(self.USER)
        table = os.path.join(inst.dir, "useraliases")
        with open(table, "w") as f:
            f.write('piper "|%s"\n' % path)
        env = dict(os.environ, MAIL_CONFIG=inst.etc)
        subprocess.run([os.path.join(inst_build(), "sbin", "ternmap"), "-c", inst.etc,
                        "lmdb:" + table], check=True, env=env)
        os.chown(table + ".lmdb", pw.pw_uid, pw.pw_gid)
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            f.write("alias_maps = lmdb:%s/aliases, lmdb:%s\n" % (inst.etc, table))
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["piper@localhost"], b"Subject: p\r\n\r\nx\r\n")
        info, env, _ = parse(wait_runs(inst, 1)[0])
        self.assertEqual(int(info["uid"]), pw.pw_uid)
        self.assertEqual(int(info["gid"]), pw.pw_gid)
        self.assertIn(str(grp.getgrnam(self.GROUP).gr_gid), info["groups"].split())
        self.assertNotIn("0", info["groups"].split())
        self.assertEqual(info["cwd"], "/")      # home unusable: /

    def test_root_default_privs_refused(self):
        inst = self.instance(main=dict(FAST_RETRY, default_privs="root"),
                             users=("demo",))
        path = script(inst, "record.sh")
        rebuild_aliases(inst, {"pipe": '"|%s"' % path})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["pipe@localhost"], b"Subject: p\r\n\r\nx\r\n")
        self.assertLogHas(inst, "status=deferred (default_privs must not be a "
                                "privileged account)", timeout=60)
        self.assertEqual(runs(inst), [])


if __name__ == "__main__":
    unittest.main()

"""ternctl, and master's life as an admin sees it: start waits until every
listener is bound and reports a start-up failure on stderr with a
non-zero exit (the port already taken), status/reload/stop, check finds
a wrong spool mode and set-permissions repairs it, flush retries
deferred mail at once."""
import os
import signal
import socket
import subprocess
import tempfile
import unittest

from ternlab import BUILD, TernTestCase, proc_cmdline, wait_for

TERNCTL = os.path.join(BUILD, "sbin", "ternctl")

# a systemd environment would make master keep its stderr (the journal):
# these tests look at the plain case (test_logging.py at the other)
SYSTEMD_VARS = ("JOURNAL_STREAM", "INVOCATION_ID")


def ctl_env(inst, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARS}
    env["MAIL_CONFIG"] = inst.etc
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":detect_leaks=0"   # as ternlab.start
    env.update(extra or {})
    return env


def ternctl(inst, *args, env=None):
    """Run `ternctl -c ETC args`; (returncode, stdout, stderr). Output goes
    through files: a master that keeps a pipe would keep us waiting."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        r = subprocess.run([TERNCTL, "-c", inst.etc] + list(args),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           env=env or ctl_env(inst), timeout=300)
        out.seek(0)
        err.seek(0)
        return (r.returncode, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))


def pid_file(inst):
    try:
        with open(os.path.join(inst.spool, "pid", "master.pid")) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def masters_of(inst):
    """PIDs of master processes of this instance (by their command line)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = proc_cmdline(int(name))
        if (argv and os.path.basename(argv[0]) == b"master"
                and inst.etc.encode() in argv and alive(int(name))):
            pids.append(int(name))
    return pids


class CtlTestCase(TernTestCase):

    def ctl_instance(self, **kw):
        """An instance that the test starts with ternctl; stopped (and
        anything left killed) at the end."""
        inst = self.instance(**kw)

        def stop():
            if masters_of(inst):
                ternctl(inst, "stop")
            for pid in masters_of(inst):
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(stop)
        return inst

    def smtp_banner(self, inst):
        with socket.create_connection(("127.0.0.1", inst.smtp_port), 30) as s:
            s.settimeout(30)
            return s.recv(512)


class StartStop(CtlTestCase):

    def test_round_trip(self):
        inst = self.ctl_instance()
        rc, out, err = ternctl(inst, "status")
        self.assertEqual(rc, 1, err)
        self.assertIn("the Tern mail system is not running", out)

        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err + inst.log_text()[-3000:])
        # start returned: every listener is bound already, no polling
        self.assertTrue(self.smtp_banner(inst).startswith(b"220"))
        pid = pid_file(inst)
        self.assertTrue(alive(pid))
        self.assertEqual(masters_of(inst), [pid])

        rc, out, err = ternctl(inst, "status")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "the Tern mail system is running: PID: %d\n"
                         % pid)

        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 1)
        self.assertIn("ternctl: fatal: the Tern mail system is already "
                      "running (pid %d)" % pid, err)

        rc, out, err = ternctl(inst, "reload")
        self.assertEqual(rc, 0, err)
        self.assertLogHas(inst, "tern/master[%d]: reload --" % pid)
        self.assertTrue(self.smtp_banner(inst).startswith(b"220"))

        rc, out, err = ternctl(inst, "stop")
        self.assertEqual(rc, 0, err)
        # stop returned: master let go of its lock, so it is gone
        rc, out, err = ternctl(inst, "status")
        self.assertEqual(rc, 1, out + err)
        wait_for(lambda: not alive(pid), 30, what="master %d gone" % pid)
        self.assertFalse(os.path.exists(os.path.join(inst.spool, "pid",
                                                     "master.pid")))
        rc, out, err = ternctl(inst, "stop")
        self.assertEqual(rc, 1)
        self.assertIn("ternctl: fatal: the Tern mail system is not running",
                      err)

    def test_start_with_the_smtp_port_taken_fails(self):
        inst = self.ctl_instance()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            busy.bind(("127.0.0.1", inst.smtp_port))
            busy.listen(1)
            rc, out, err = ternctl(inst, "start")
            self.assertNotEqual(rc, 0, err)
            self.assertIn("master: error: bind 127.0.0.1:%d: Address already "
                          "in use" % inst.smtp_port, err)
            self.assertIn("master: fatal: cannot start service", err)
            self.assertIn("ternctl: fatal: mail system start-up failed", err)
            self.assertEqual(masters_of(inst), [])
            rc, out, err = ternctl(inst, "status")
            self.assertEqual(rc, 1, out + err)
            # master -t finds it too, before any start
            r = subprocess.run([os.path.join(BUILD, "libexec", "master"),
                                "-t", "-c", inst.etc], capture_output=True,
                               env=ctl_env(inst), timeout=60)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"cannot bind 127.0.0.1:%d: Address already in use"
                          % inst.smtp_port, r.stderr)
        # the port is free again: start works
        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.smtp_banner(inst).startswith(b"220"))

    def test_master_detached_reports_a_bad_config(self):
        inst = self.ctl_instance()
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            f.write("message_size_limit = lots\n")
        r = subprocess.run([os.path.join(BUILD, "libexec", "master"), "-c",
                            inst.etc], capture_output=True,
                           env=ctl_env(inst), timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"master: fatal: ", r.stderr)
        self.assertIn(b"message_size_limit", r.stderr)
        self.assertEqual(masters_of(inst), [])


class CheckAndPermissions(CtlTestCase):

    def test_check_finds_a_wrong_maildrop_mode_and_set_permissions_repairs_it(self):
        inst = self.ctl_instance()
        rc, out, err = ternctl(inst, "set-permissions")
        self.assertEqual(rc, 0, err)
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 0, out + err)
        maildrop = os.path.join(inst.spool, "maildrop")
        self.assertEqual(os.stat(maildrop).st_mode & 0o7777, 0o1730)

        os.chmod(maildrop, 0o755)
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("ternctl: warning: %s: mode 0755" % maildrop, err)
        self.assertIn("should be mode 01730", err)

        rc, out, err = ternctl(inst, "set-permissions")
        self.assertEqual(rc, 0, err)
        self.assertEqual(os.stat(maildrop).st_mode & 0o7777, 0o1730)
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 0, out + err)

    def test_check_and_set_permissions_cover_login_dir(self):
        """login/, the login processes' chroot: root's (the caller's),
        0750, in $login_user's group."""
        inst = self.ctl_instance()
        self.assertEqual(ternctl(inst, "set-permissions")[0], 0)
        login = os.path.join(inst.spool, "login")
        st = os.stat(login)
        self.assertEqual(st.st_mode & 0o7777, 0o750)
        self.assertEqual(st.st_uid, os.geteuid())
        os.chmod(login, 0o777)
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s: mode 0777" % login, err)
        self.assertEqual(ternctl(inst, "set-permissions")[0], 0)
        self.assertEqual(os.stat(login).st_mode & 0o7777, 0o750)
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 0, out + err)

    def test_check_reports_a_bad_master_conf(self):
        inst = self.ctl_instance()
        inst.edit_master_conf("qmgr unix", "qmgr unixx")
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("master.conf", err)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_set_permissions_gives_queue_files_to_mail_owner(self):
        import pwd
        inst = self.ctl_instance()
        self.assertEqual(ternctl(inst, "set-permissions")[0], 0)
        tern = pwd.getpwnam("tern")
        hold = os.path.join(inst.spool, "hold")
        wrong = os.path.join(hold, "B0000000000Wrong")
        with open(wrong, "w") as f:
            f.write("x")
        os.chown(wrong, 0, 0)
        # a second name of a file root owns (a planted hard link) is
        # never chowned
        target = os.path.join(inst.dir, "root-only")
        with open(target, "w") as f:
            f.write("secret")
        os.link(target, os.path.join(hold, "B0000000000Linkd"))
        rc, out, err = ternctl(inst, "check")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s: owner 0, should be %d (tern)" % (wrong,
                                                           tern.pw_uid), err)
        rc, out, err = ternctl(inst, "set-permissions")
        self.assertEqual(os.stat(wrong).st_uid, tern.pw_uid)
        self.assertEqual(os.stat(target).st_uid, 0)
        self.assertEqual(rc, 1)         # the hard link is left, and said so
        self.assertIn("not a regular file with one link: left alone", err)


class Flush(CtlTestCase):

    def test_flush_moves_deferred_mail(self):
        # local delivery fails while demo's Maildir cannot be written: the
        # message is deferred, and only a flush retries it within the hour
        inst = self.ctl_instance(main={
            "minimal_backoff_time": "3600s", "maximal_backoff_time": "7200s",
            "queue_run_delay": "3600s"})
        home = os.path.join(inst.dir, "home", "demo")
        st = os.stat(home)
        maildir = inst.maildir("demo")
        os.mkdir(maildir, 0o700)
        os.chown(maildir, st.st_uid, st.st_gid)
        os.chmod(maildir, 0)
        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err)
        with inst.smtp() as s:
            s.sendmail("alice@example.org", ["demo@localhost"],
                       b"Subject: flushed\r\n\r\nbody\r\n")
        wait_for(lambda: inst.queue_files("deferred"), 60,
                 what="the message in deferred/")
        os.chmod(maildir, 0o700)
        rc, out, err = ternctl(inst, "flush")
        self.assertEqual(rc, 0, err)
        msgs = inst.wait_messages("demo", 1)
        self.assertIn(b"Subject: flushed", msgs[0])
        inst.wait_queue_empty()

    def test_flush_when_not_running(self):
        inst = self.ctl_instance()
        rc, out, err = ternctl(inst, "flush")
        self.assertEqual(rc, 1)
        self.assertIn("ternctl: fatal: the Tern mail system is not running",
                      err)

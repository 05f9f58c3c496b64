"""Where log lines go when syslog is the destination and there is no
syslog socket (a container, or journald without /dev/log): master says
so on stderr at start; started by systemd (JOURNAL_STREAM naming stderr,
or INVOCATION_ID) every process writes "<PRI>tern/NAME[pid]: text" to
the inherited stderr for the journal. maillog_file keeps working. And
commands print "PROGRAM: warning: ..." on stderr."""
import os
import re
import socket
import subprocess
import tempfile
import unittest

from ternlab import BUILD, proc_children, wait_for
from test_ternctl import CtlTestCase, ctl_env, ternctl, pid_file


def syslog_answers():
    """Does something listen on /dev/log (then these tests cannot fake
    its absence)?"""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            with socket.socket(socket.AF_UNIX, kind) as s:
                s.connect("/dev/log")
                return True
        except OSError:
            continue
    return False


NO_SYSLOG = not syslog_answers()
NO_SYSLOG_WHY = "a syslog daemon listens on /dev/log"


class NoSyslogSocket(CtlTestCase):

    def syslog_instance(self):
        return self.ctl_instance(main={"maillog_file": ""})

    def start_with_stderr_file(self, inst, env_of_file):
        """ternctl start with stderr going to a file (like the journal
        stream systemd gives a unit); env_of_file(stat) gives extra
        environment. Returns the file's path."""
        path = os.path.join(inst.dir, "log", "stderr")
        with open(path, "ab") as err:
            env = ctl_env(inst, env_of_file(os.fstat(err.fileno())))
            r = subprocess.run([os.path.join(BUILD, "sbin", "ternctl"), "-c",
                                inst.etc, "start"], stdin=subprocess.DEVNULL,
                               stdout=err, stderr=err, env=env, timeout=300)
        self.assertEqual(r.returncode, 0, self.read(path))
        return path

    def read(self, path):
        with open(path, errors="replace") as f:
            return f.read()

    def deliver_one(self, inst):
        with inst.smtp() as s:
            s.sendmail("alice@example.org", ["demo@localhost"],
                       b"Subject: logged\r\n\r\nbody\r\n")
        inst.wait_messages("demo", 1)

    @unittest.skipUnless(NO_SYSLOG, NO_SYSLOG_WHY)
    def test_warning_on_stderr_at_start(self):
        inst = self.syslog_instance()
        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err)
        self.assertIn("master: warning: no syslog socket at /dev/log: log "
                      "lines are lost; set maillog_file", err)
        self.assertEqual(err.count("no syslog socket"), 1, err)
        # master -f says it too
        r = subprocess.run([os.path.join(BUILD, "libexec", "master"), "-f",
                            "-c", inst.etc], capture_output=True,
                           env=ctl_env(inst), timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertIn(b"master: warning: no syslog socket at /dev/log",
                      r.stderr)
        self.assertIn(b"already running", r.stderr)

    def journal_checks(self, inst, path):
        text = self.read(path)
        self.assertIn("master: warning: no syslog socket at /dev/log: "
                      "logging to stderr (the systemd journal)", text)
        self.assertNotIn("log lines are lost", text)
        self.deliver_one(inst)
        wait_for(lambda: re.search(
            r"^<6>tern/local\[\d+\]: \w+: to=<demo@localhost>, relay=local,"
            r".* status=sent", self.read(path), re.M), 30,
            what="local's status=sent line on stderr")
        self.assertRegex(self.read(path),
                         r"(?m)^<6>tern/smtpd\[\d+\]: connect from ")
        pid = pid_file(inst)
        rc, out, err = ternctl(inst, "stop")
        self.assertEqual(rc, 0, err)
        self.assertIn("<6>tern/master[%d]: terminating on signal 15\n" % pid,
                      self.read(path))

    @unittest.skipUnless(NO_SYSLOG, NO_SYSLOG_WHY)
    def test_journal_stream_gets_the_lines(self):
        inst = self.syslog_instance()
        path = self.start_with_stderr_file(inst, lambda st: {
            "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.journal_checks(inst, path)

    @unittest.skipUnless(NO_SYSLOG, NO_SYSLOG_WHY)
    def test_invocation_id_gets_the_lines(self):
        inst = self.syslog_instance()
        path = self.start_with_stderr_file(inst, lambda st: {
            "INVOCATION_ID": "0123456789abcdef0123456789abcdef"})
        self.journal_checks(inst, path)

    @unittest.skipUnless(NO_SYSLOG, NO_SYSLOG_WHY)
    def test_journal_stream_of_another_file_is_not_ours(self):
        inst = self.syslog_instance()
        path = self.start_with_stderr_file(inst, lambda st: {
            "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino + 1)})
        text = self.read(path)
        self.assertIn("no syslog socket at /dev/log: log lines are lost",
                      text)
        self.assertNotIn("<6>", text)

    def test_maillog_file(self):
        inst = self.ctl_instance()
        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("no syslog socket", err)
        self.deliver_one(inst)
        self.assertLogHas(inst, "tern/master[%d]: daemon started"
                          % pid_file(inst))
        self.assertLogHas(inst, "status=sent (delivered to maildir)")
        self.assertRegex(inst.log_text(),
                         r"(?m)^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ "
                         r"tern/ternctl\[\d+\]: starting the Tern mail system$")


class Rotation(CtlTestCase):

    def test_reload_reopens_maillog_file(self):
        """What conf/tern.logrotate relies on: after the file is renamed,
        `ternctl reload` makes master and every daemon write to a new
        file of the configured name."""
        inst = self.ctl_instance()
        rc, out, err = ternctl(inst, "start")
        self.assertEqual(rc, 0, err)
        with inst.smtp() as s:
            s.sendmail("alice@example.org", ["demo@localhost"],
                       b"Subject: before\r\n\r\nbody\r\n")
        inst.wait_messages("demo", 1)
        master = pid_file(inst)
        old = proc_children(master)
        os.rename(inst.logfile, inst.logfile + ".1")
        rc, out, err = ternctl(inst, "reload")
        self.assertEqual(rc, 0, err)
        # the daemons of before finish and exit (master reaps them)
        wait_for(lambda: not set(old) & set(proc_children(master)), 60,
                 what="the daemons of before the reload gone")
        with inst.smtp() as s:
            s.sendmail("alice@example.org", ["demo@localhost"],
                       b"Subject: after\r\n\r\nbody\r\n")
        inst.wait_messages("demo", 2)
        self.assertLogHas(inst, "status=sent (delivered to maildir)")
        new = inst.log_text()
        for who in ("smtpd", "qmgr", "local"):
            self.assertRegex(new, r"tern/%s\[\d+\]: \w+: " % who)
        with open(inst.logfile + ".1") as f:
            self.assertIn("tern/master[%d]: reload --" % master, f.read())


class ErrorPrefixes(unittest.TestCase):

    def test_commands_say_program_colon_level(self):
        with tempfile.TemporaryDirectory() as etc:
            with open(os.path.join(etc, "main.conf"), "w") as f:
                f.write("no_such_parameter = 1\n")
            env = dict(os.environ, MAIL_CONFIG=etc)
            r = subprocess.run([os.path.join(BUILD, "sbin", "ternconf"), "-c",
                                etc, "myhostname"], capture_output=True,
                               env=env, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.decode(),
                             "ternconf: warning: %s/main.conf:1: unknown "
                             "parameter: no_such_parameter\n" % etc)
            # ternuser too: its config warnings reach the admin
            r = subprocess.run([os.path.join(BUILD, "sbin", "ternuser"), "-c",
                                etc, "list"], capture_output=True,
                               env=env, timeout=60)
            self.assertIn("ternuser: warning: %s/main.conf:1: unknown "
                          "parameter: no_such_parameter\n" % etc,
                          r.stderr.decode())
            with open(os.path.join(etc, "main.conf"), "a") as f:
                f.write("message_size_limit = lots\n")
            r = subprocess.run([os.path.join(BUILD, "sbin", "ternconf"), "-c",
                                etc], capture_output=True, env=env,
                               timeout=60)
            self.assertEqual(r.returncode, 1)
            lines = r.stderr.decode().splitlines()
            self.assertRegex(lines[0], r"^ternconf: warning: ")
            self.assertRegex(lines[-1], r"^ternconf: fatal: .*main.conf:2: ")
            r = subprocess.run([os.path.join(BUILD, "libexec", "master"),
                                "-c", etc], capture_output=True, env=env,
                               timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr.decode(),
                             r"(?m)^master: warning: .*unknown parameter")
            self.assertRegex(r.stderr.decode(),
                             r"(?m)^master: fatal: .*message_size_limit")

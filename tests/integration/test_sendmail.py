"""sendmail(1): every flag it takes, -t with To/Cc/Bcc, -bs, mail sent
while master is stopped, and bsd-mailx / s-nail sending through it.

The instance's own sendmail (build/sbin/sendmail -C ETC) hands each
message to postdrop, which queues it in maildrop/; pickup takes it from
there through cleanup. As root the message is root's (uid=0); as a
normal user it is that user's.
"""
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import unittest

import ternlab
from ternlab import BUILD, SharedInstanceTestCase, TernTestCase, wait_for

SENDMAIL = os.path.join(BUILD, "sbin", "sendmail")
ME = pwd.getpwuid(os.getuid()).pw_name


def run_sendmail(etc, args, data, env=None, use_C=True):
    """sendmail [-C etc] args < data; CompletedProcess (bytes)."""
    argv = [SENDMAIL] + (["-C", etc] if use_C else []) + list(args)
    e = dict(os.environ)
    e.pop("MAIL_CONFIG", None)
    e.update(env or {})
    if isinstance(data, str):
        data = data.encode()
    return subprocess.run(argv, input=data, capture_output=True, env=e,
                          timeout=60)


def header(msg, name):
    """Every value of header name in msg (bytes) as str, unfolded."""
    head = msg.split(b"\n\n", 1)[0].decode("latin-1")
    head = re.sub(r"\n[ \t]+", " ", head)
    return [line.split(":", 1)[1].strip() for line in head.split("\n")
            if line.lower().startswith(name.lower() + ":")]


class SendmailTest(SharedInstanceTestCase):
    MAIN = None

    @classmethod
    def setUpClass(cls):
        cls.inst = ternlab.Instance(users=("demo", "alice", "bob"))
        try:
            cls.inst.start()
        except Exception:
            cls.inst.cleanup()
            raise

    def send(self, args, data, **kw):
        r = run_sendmail(self.inst.etc, args, data, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def wait_subject(self, user, subject, count=1):
        """The messages of user with this Subject:, once count arrived."""
        def found():
            got = [m for m in self.inst.messages(user)
                   if ternlab.subject_of(m) == subject]
            return got if len(got) >= count else None
        try:
            return wait_for(found, 60, 0.1, "%s for %s" % (subject, user))
        except AssertionError:
            self.fail("no %r for %s; log:\n%s"
                      % (subject, user, self.inst.log_text()[-3000:]))

    def test_plain(self):
        self.send(["demo"], "Subject: plain\n\nhello\n")
        m = self.wait_subject("demo", "plain")[0]
        self.assertEqual(header(m, "Return-Path"),
                         ["<%s@localhost.localdomain>" % ME])
        self.assertEqual(len(header(m, "Message-ID")), 1)
        self.assertEqual(len(header(m, "Date")), 1)
        self.assertTrue(header(m, "From")[0].endswith(
            "%s@localhost.localdomain" % ME) or
            "<%s@localhost.localdomain>" % ME in header(m, "From")[0])
        self.assertIn("from userid %d" % os.getuid(),
                      " ".join(header(m, "Received")))
        self.assertTrue(m.endswith(b"\nhello\n"))
        self.assertRegex(self.inst.log_text(),
                         r"tern/pickup\[\d+\]: \w+: uid=%d from=<%s>"
                         % (os.getuid(), ME))

    def test_crlf_and_from_line(self):
        """CR LF becomes LF; a leading mbox "From " line is dropped."""
        self.send(["demo"], b"From someone Tue Dec  1 10:00:00 2026\r\n"
                  b"Subject: crlf\r\n\r\nline one\r\nline two\r\n")
        m = self.wait_subject("demo", "crlf")[0]
        self.assertNotIn(b"\r", m)
        self.assertNotIn(b"From someone", m)
        self.assertTrue(m.endswith(b"\nline one\nline two\n"))

    def test_nul_and_long_lines(self):
        """Bytes after a NUL and lines longer than any buffer arrive."""
        long_line = b"L" * 200000
        self.send(["demo"], b"Subject: nul\n\nbefore\0after\n" + long_line
                  + b"\n.\n")
        m = self.wait_subject("demo", "nul")[0]
        self.assertIn(b"before\0after\n", m)
        self.assertTrue(m.endswith(b"\n" + long_line + b"\n"))

    def test_dot_ends_input(self):
        self.send(["demo"], "Subject: dot\n\nbefore\n.\nafter\n")
        m = self.wait_subject("demo", "dot")[0]
        self.assertTrue(m.endswith(b"\nbefore\n"), m)
        self.assertNotIn(b"after", m)
        # -i and -oi: a lone dot is content
        for flag, subj in (("-i", "dot -i"), ("-oi", "dot -oi")):
            self.send([flag, "demo"], "Subject: %s\n\nbefore\n.\nafter\n" % subj)
            m = self.wait_subject("demo", subj)[0]
            self.assertTrue(m.endswith(b"\nbefore\n.\nafter\n"), m)

    def test_extract_to_cc_bcc(self):
        """-t: To, Cc and Bcc all get it, once; no copy shows Bcc."""
        self.send(["-t"], "To: demo@localhost\nCc: Alice <alice@localhost>\n"
                  "Bcc: bob@localhost\nSubject: extract\n\nbody\n")
        for user in ("demo", "alice", "bob"):
            m = self.wait_subject(user, "extract")
            self.assertEqual(len(m), 1)
            self.assertEqual(header(m[0], "Bcc"), [])
            self.assertNotIn(b"bob@localhost", m[0].split(b"\n\n")[0]
                             .replace(b"Delivered-To: bob@localhost", b""))
            self.assertEqual(header(m[0], "To"), ["demo@localhost"])

    def test_extract_plus_command_line(self):
        """-t adds the header recipients to those on the command line."""
        self.send(["-t", "alice@localhost"], "To: demo@localhost\n"
                  "Subject: extract plus\n\nbody\n")
        self.wait_subject("demo", "extract plus")
        self.wait_subject("alice", "extract plus")

    def test_extract_resent(self):
        """With Resent- headers only they are used (RFC 5322 3.6.6)."""
        self.send(["-t"], "To: demo@localhost\nResent-To: alice@localhost\n"
                  "Resent-Bcc: bob@localhost\nSubject: resent\n\nbody\n")
        self.wait_subject("alice", "resent")
        m = self.wait_subject("bob", "resent")[0]
        self.assertEqual(header(m, "Resent-Bcc"), [])
        self.inst.wait_quiet(("demo", "alice", "bob"))
        self.assertEqual([x for x in self.inst.messages("demo")
                          if ternlab.subject_of(x) == "resent"], [])

    def test_extract_none(self):
        r = run_sendmail(self.inst.etc, ["-t"], "Subject: nobody\n\nbody\n")
        self.assertEqual(r.returncode, 65)
        self.assertIn(b"no recipient addresses found in message header", r.stderr)
        r = run_sendmail(self.inst.etc, [], "Subject: nobody\n\nbody\n")
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"no recipients specified", r.stderr)

    def test_sender_and_full_name(self):
        self.send(["-f", "boss@example.org", "-F", "The Boss", "demo"],
                  "Subject: sender f\n\nbody\n")
        m = self.wait_subject("demo", "sender f")[0]
        self.assertEqual(header(m, "Return-Path"), ["<boss@example.org>"])
        self.assertEqual(header(m, "From"), ["The Boss <boss@example.org>"])
        # -r is -f; -fADDR in one word; <> around it
        self.send(["-r<chief@example.org>", "-FJ. Doe, Jr.", "demo"],
                  "Subject: sender r\n\nbody\n")
        m = self.wait_subject("demo", "sender r")[0]
        self.assertEqual(header(m, "Return-Path"), ["<chief@example.org>"])
        self.assertEqual(header(m, "From"), ['"J. Doe, Jr." <chief@example.org>'])
        # the uid is logged whatever -f says
        self.assertRegex(self.inst.log_text(),
                         r"uid=%d from=<chief@example.org>" % os.getuid())

    def test_own_from_kept(self):
        self.send(["-F", "Ignored", "demo"],
                  "From: Me <me@example.org>\nSubject: own from\n\nbody\n")
        m = self.wait_subject("demo", "own from")[0]
        self.assertEqual(header(m, "From"), ["Me <me@example.org>"])

    def test_dsn_flags(self):
        """-N success asks for a success notice (to the -f sender), -R
        and -V go with it: the notice names the envelope ID."""
        self.send(["-f", "alice@localhost", "-N", "success,failure", "-R",
                   "hdrs", "-V", "env-42", "demo"],
                  "Subject: dsn flags\n\nbody\n")
        self.wait_subject("demo", "dsn flags")

        def notice():
            for m in self.inst.messages("alice"):
                if b"env-42" in m and b"Action: delivered" in m:
                    return m
            return None
        wait_for(notice, 60, 0.1, "success notice for alice")
        # -N never: no notice at all (checked by its absence below)
        r = run_sendmail(self.inst.etc, ["-N", "bogus", "demo"], "x\n")
        self.assertEqual(r.returncode, 64)
        r = run_sendmail(self.inst.etc, ["-R", "most", "demo"], "x\n")
        self.assertEqual(r.returncode, 64)

    def test_body_type_and_verbose(self):
        self.send(["-B", "8BITMIME", "-v", "demo"],
                  "Subject: eightbit\n\nbody \xe9\n".encode("latin-1"))
        self.wait_subject("demo", "eightbit")
        r = run_sendmail(self.inst.etc, ["-B", "binary", "demo"], "x\n")
        self.assertEqual(r.returncode, 64)

    def test_ignored_options(self):
        """Options sendmail accepts and ignores, some with arguments."""
        self.send(["-oem", "-odb", "-oQ/tmp", "-o", "Xsomething", "-m", "-n",
                   "-U", "-G", "-h", "5", "-L", "label", "-O", "Opt=1",
                   "-X", "/nonexistent/trace", "-e", "-x", "-bm", "demo"],
                  "Subject: ignored\n\nbody\n")
        self.wait_subject("demo", "ignored")

    def test_mail_config_env(self):
        """MAIL_CONFIG selects the configuration as -C does."""
        self.send(["demo"], "Subject: env config\n\nbody\n",
                  env={"MAIL_CONFIG": self.inst.etc}, use_C=False)
        self.wait_subject("demo", "env config")

    def test_bs(self):
        """-bs: SMTP on stdin/stdout, two messages in one session."""
        script = ("EHLO client\r\nMAIL FROM:<smtp@example.org>\r\n"
                  "RCPT TO:<demo@localhost>\r\nRCPT TO:<alice@localhost>\r\n"
                  "DATA\r\nSubject: bs one\r\n\r\n..dot stuffed\r\n.\r\n"
                  "RSET\r\nNOOP\r\nRCPT TO:<demo@localhost>\r\n"
                  "MAIL FROM:<>\r\nDATA\r\nRCPT TO:<demo@localhost>\r\n"
                  "DATA\r\nSubject: bs two\r\n\r\nx\r\n.\r\nBOGUS\r\nQUIT\r\n")
        r = self.send(["-bs"], script)
        codes = [line[:3] for line in r.stdout.decode().split("\r\n")
                 if line and line[3:4] == " "]
        self.assertEqual(codes, ["220", "250", "250", "250", "250", "354",
                                 "250", "250", "250", "503", "250", "503",
                                 "250", "354", "250", "502", "221"])
        m = self.wait_subject("demo", "bs one")[0]
        self.assertEqual(header(m, "Return-Path"), ["<smtp@example.org>"])
        self.assertTrue(m.endswith(b"\n.dot stuffed\n"))
        self.wait_subject("alice", "bs one")
        m = self.wait_subject("demo", "bs two")[0]
        self.assertEqual(header(m, "Return-Path"), ["<>"])

    def test_bs_long_line(self):
        """-bs: an over-long command is refused whole; the last command
        may lack its line end."""
        r = self.send(["-bs"], b"NOOP\r\n" + b"X" * 70000 + b"\r\nQUIT")
        self.assertEqual([line[:3] for line in r.stdout.decode().split("\r\n")
                          if line], ["220", "250", "500", "221"])

    def test_too_large(self):
        r = run_sendmail(self.inst.etc, ["demo"],
                         b"Subject: big\n\n" + b"x" * 11000000 + b"\n")
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"message too large", r.stderr)
        maildrop = os.path.join(self.inst.spool, "maildrop")
        self.assertEqual([f for f in os.listdir(maildrop)
                          if f.startswith("t.")], [])

    def test_size_limit_edge(self):
        """What sendmail accepts, pickup queues: the limit counts as
        cleanup and smtpd do (RFC 1870: a line end is CR LF), and the
        headers pickup adds do not count. One byte more is refused."""
        def counted(b):
            return len(b) + b.count(b"\n")
        limit = 10240000
        head = b"Subject: at the limit\n\n"
        body = (b"y" * 99 + b"\n") * ((limit - 1000) // 101)
        body += b"z" * (limit - counted(head) - counted(body) - 2) + b"\n"
        msg = head + body
        self.assertEqual(counted(msg), limit)
        r = run_sendmail(self.inst.etc, ["-i", "demo"], msg + b"!")
        self.assertEqual(r.returncode, 65, r.stderr)
        self.send(["-i", "demo"], msg)
        m = self.wait_subject("demo", "at the limit")[0]
        self.assertTrue(m.endswith(body))
        self.assertEqual(os.listdir(os.path.join(self.inst.spool, "corrupt")),
                         [])

    def test_commands(self):
        """-bp/mailq, -q, -qR run ternqueue in $command_directory,
        -bi/newaliases newaliases in $daemon_directory (where the install
        keeps the Postfix-named programs); here stand-ins that record
        their argv."""
        tmp = tempfile.mkdtemp(prefix="tern-sm-")
        self.addCleanup(shutil.rmtree, tmp, True)
        etc = os.path.join(tmp, "etc")
        cmds = os.path.join(tmp, "cmds")
        os.makedirs(etc)
        os.makedirs(cmds)
        with open(os.path.join(self.inst.etc, "main.conf")) as f:
            conf = f.read()
        with open(os.path.join(etc, "main.conf"), "w") as f:
            f.write(conf + "command_directory = %s\ndaemon_directory = %s\n"
                    % (cmds, cmds))
        out = os.path.join(tmp, "argv")
        for name in ("ternqueue", "newaliases"):
            path = os.path.join(cmds, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho %s \"$@\" >> %s\n" % (name, out))
            os.chmod(path, 0o755)
        for link in ("mailq", "newaliases"):
            os.symlink(SENDMAIL, os.path.join(tmp, link))
        self.assertTrue(os.path.islink(os.path.join(BUILD, "sbin", "mailq")))
        runs = [([SENDMAIL, "-C", etc, "-bp"], "ternqueue -c %s -p" % etc),
                ([os.path.join(tmp, "mailq"), "-C", etc], "ternqueue -c %s -p" % etc),
                ([os.path.join(BUILD, "sbin", "mailq"), "-C", etc],
                 "ternqueue -c %s -p" % etc),
                ([SENDMAIL, "-C", etc, "-q"], "ternqueue -c %s -f" % etc),
                ([SENDMAIL, "-C", etc, "-qRexample.org"],
                 "ternqueue -c %s -s example.org" % etc),
                ([SENDMAIL, "-C", etc, "-qR", "example.net"],
                 "ternqueue -c %s -s example.net" % etc),
                ([SENDMAIL, "-C", etc, "-bi"], "newaliases -c %s" % etc),
                ([os.path.join(tmp, "newaliases"), "-C", etc],
                 "newaliases -c %s" % etc)]
        for argv, want in runs:
            if os.path.exists(out):
                os.unlink(out)
            r = subprocess.run(argv, capture_output=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, (argv, r.stderr))
            with open(out) as f:
                self.assertEqual(f.read().strip(), want, argv)

    @unittest.skipUnless(shutil.which("bsd-mailx"), "bsd-mailx not installed "
                         "(scripts/deps.sh test)")
    def test_bsd_mailx(self):
        """bsd-mailx, unmodified, pointed at this sendmail by its
        "sendmail" variable (a MAILRC file)."""
        rc = os.path.join(self.inst.dir, "mailrc")
        with open(rc, "w") as f:
            f.write("set sendmail=%s\n" % SENDMAIL)
        r = subprocess.run(["bsd-mailx", "-s", "via mailx", "demo@localhost"],
                           input=b"sent by bsd-mailx\n", capture_output=True,
                           timeout=60,
                           env=dict(os.environ, MAILRC=rc,
                                    MAIL_CONFIG=self.inst.etc))
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.wait_subject("demo", "via mailx")[0]
        self.assertIn(b"sent by bsd-mailx", m)

    @unittest.skipUnless(shutil.which("s-nail"), "s-nail not installed "
                         "(scripts/deps.sh test)")
    def test_s_nail(self):
        """s-nail, unmodified, with -S mta=this sendmail; a Bcc too."""
        r = subprocess.run(["s-nail", "-n", "-#", "-S", "mta=" + SENDMAIL,
                            "-s", "via s-nail", "-b", "bob@localhost",
                            "demo@localhost"],
                           input=b"sent by s-nail\n", capture_output=True,
                           timeout=60,
                           env=dict(os.environ, MAIL_CONFIG=self.inst.etc,
                                    HOME=self.inst.dir))
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.wait_subject("demo", "via s-nail")[0]
        self.assertIn(b"sent by s-nail", m)
        m = self.wait_subject("bob", "via s-nail")[0]
        self.assertEqual(header(m, "Bcc"), [])


class LoginSenderTest(TernTestCase):
    """local_login_sender_maps: postdrop refuses a sender the submitter's
    login may not use (exit 77, its reason on stderr, nothing left in
    maildrop/); the default allows any -f (SendmailTest does that)."""

    def restricted(self, value):
        inst = self.instance(main={"local_login_sender_maps":
                                   "inline:{%s = %s}" % (ME, value)})
        inst.start()
        return inst

    def assertRefused(self, inst, args, shown):
        r = run_sendmail(inst.etc, args + ["demo"], "Subject: refused\n\nx\n")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(('postdrop: fatal: User %s(%d) is not allowed to use '
                       'sender address "%s"' % (ME, os.getuid(), shown))
                      .encode(), r.stderr)
        self.assertEqual(os.listdir(os.path.join(inst.spool, "maildrop")), [])

    def test_restricted(self):
        inst = self.restricted("%s %s@example.com @example.net" % (ME, ME))
        self.assertRefused(inst, ["-f", "other@example.com"],
                           "other@example.com")
        self.assertRefused(inst, ["-f", "%s@example.com.evil" % ME],
                           "%s@example.com.evil" % ME)
        self.assertRefused(inst, ["-f", "<>"], "<>")
        ok = [(["-f", "%s+tag@Example.COM" % ME], "own address"),
              ([], "bare login"),
              (["-f", "anyone@example.net"], "domain pattern")]
        for args, subject in ok:
            r = run_sendmail(inst.etc, args + ["demo"],
                             "Subject: %s\n\nx\n" % subject)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertDeliveredOnce(inst, [s for _, s in ok])
        self.assertNotIn("refused", [ternlab.subject_of(m)
                                     for m in inst.messages("demo")])

    def test_bs(self):
        """-bs: a refused sender gets a permanent error after DATA (the
        client must not retry), and the session goes on"""
        inst = self.restricted("%s@example.com" % ME)
        script = ("HELO client\r\nMAIL FROM:<other@example.com>\r\n"
                  "RCPT TO:<demo@localhost>\r\nDATA\r\nSubject: refused\r\n"
                  "\r\nx\r\n.\r\nMAIL FROM:<%s@example.com>\r\nRCPT TO:<demo@localhost>"
                  "\r\nDATA\r\nSubject: bs own\r\n\r\nx\r\n.\r\nQUIT\r\n"
                  % ME)
        r = run_sendmail(inst.etc, ["-bs"], script)
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = [line for line in r.stdout.decode().split("\r\n")
                   if line and line[3:4] == " "]
        self.assertEqual([x[:3] for x in replies],
                         ["220", "250", "250", "250", "354", "553", "250",
                          "250", "354", "250", "221"])
        self.assertIn("5.7.1", replies[5])
        self.assertDeliveredOnce(inst, ["bs own"])

    def test_null_sender(self):
        """<> in the table allows the null sender and nothing else"""
        inst = self.restricted("<>")
        r = run_sendmail(inst.etc, ["-f", "<>", "demo"],
                         "Subject: null sender\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertDeliveredOnce(inst, ["null sender"])
        self.assertRefused(inst, [], ME)
        self.assertRefused(inst, ["-f", "%s@localhost" % ME], "%s@localhost" % ME)

    def test_unknown_login(self):
        """a login the tables do not know may use no sender at all"""
        inst = self.instance(main={"local_login_sender_maps":
                                   "inline:{nosuchlogin = *}"})
        inst.start()
        self.assertRefused(inst, [], ME)


class SendmailStoppedTest(TernTestCase):
    def test_no_spool(self):
        """Before master ever made the spool: a temporary failure (75),
        and postdrop says why."""
        inst = self.instance()
        r = run_sendmail(inst.etc, ["demo"], "Subject: too early\n\nx\n")
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn(b"postdrop: fatal:", r.stderr)
        self.assertIn(b"maildrop", r.stderr)

    def test_sent_while_stopped(self):
        """Mail submitted while master is stopped waits in maildrop/ and
        is delivered once master (and so pickup) starts."""
        inst = self.instance()
        inst.start()                # creates the spool
        inst.stop()
        r = run_sendmail(inst.etc, ["demo"], "Subject: while stopped\n\nx\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        maildrop = os.path.join(inst.spool, "maildrop")
        self.assertEqual(len(os.listdir(maildrop)), 1)
        self.assertEqual(inst.messages("demo"), [])
        inst.start()
        self.assertDeliveredOnce(inst, ["while stopped"])
        self.assertEqual(os.listdir(maildrop), [])


if __name__ == "__main__":
    unittest.main()

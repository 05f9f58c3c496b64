"""Real POP3 clients from Debian retrieving mail that Tern delivered:
fetchmail (STLS on the POP3 port, UIDL-based keep mode, then fetch and
delete) and getmail6 (POP3 over implicit TLS into a Maildir)."""
import os
import pwd
import shutil
import subprocess
import tempfile
import unittest

from ternlab import TernTestCase, subject_of

HAVE_FETCHMAIL = shutil.which("fetchmail") is not None
HAVE_GETMAIL = shutil.which("getmail") is not None


class Pop3ClientsTest(TernTestCase):
    def setUp(self):
        self.inst = self.instance(tls=True, pop3=True)
        self.inst.start()
        self.inst.pop3_ready()
        self.work = tempfile.mkdtemp(prefix="tern-pop3c-")
        os.chmod(self.work, 0o700)
        self.addCleanup(shutil.rmtree, self.work, True)

    def run_client(self, argv, env=None):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **(env or {})))
        return r

    def fetchmail(self, keep, fetchall=False):
        rc = os.path.join(self.work, "fetchmailrc")
        out = os.path.join(self.work, "out.mbox")
        with open(rc, "w") as f:
            f.write('poll 127.0.0.1 with proto POP3 port %d uidl\n'
                    '  user "demo" there with password "%s" is "%s" here\n'
                    '  options %s %s sslproto "TLS1.2+" no sslcertck\n'
                    '  mda "/bin/sh -c \'cat >> %s; echo ==END== >> %s\'"\n'
                    % (self.inst.pop3_port, self.inst.password(),
                       os.environ.get("USER", "root"),
                       "fetchall" if fetchall else "",
                       "keep" if keep else "nokeep", out, out))
        os.chmod(rc, 0o600)
        r = self.run_client(["fetchmail", "-f", rc, "-v", "--nosyslog",
                             "-N", "-d0"],
                            env={"FETCHMAILHOME": self.work,
                                 "HOME": self.work})
        text = ""
        if os.path.exists(out):
            with open(out) as f:
                text = f.read()
        return r, [m for m in text.split("==END==\n") if m.strip()]

    @unittest.skipUnless(HAVE_FETCHMAIL, "skipped: needs fetchmail")
    def test_fetchmail_keep_then_fetch(self):
        subjects = ["fm-%d" % i for i in range(3)]
        self.inst.deliver("demo", subjects)
        r, msgs = self.fetchmail(keep=True)
        self.assertIn(r.returncode, (0,), r.stdout + r.stderr)
        self.assertIn("STLS", r.stdout + r.stderr)
        self.assertEqual(sorted(subject_of(m.encode()) for m in msgs),
                         sorted(subjects))
        self.assertEqual(len(self.inst.messages("demo")), 3)
        # keep + uidl: a second run finds nothing new (fetchmail exits 1)
        r2, msgs2 = self.fetchmail(keep=True)
        self.assertEqual(r2.returncode, 1, r2.stdout + r2.stderr)
        self.assertEqual(len(msgs2), 3)     # nothing appended
        # and fetching for real deletes them on the server
        os.unlink(os.path.join(self.work, "out.mbox"))
        self.inst.deliver("demo", ["fm-new"])
        r3, msgs3 = self.fetchmail(keep=False, fetchall=True)
        self.assertEqual(r3.returncode, 0, r3.stdout + r3.stderr)
        self.assertEqual(len(msgs3), 4)       # fetchall
        self.assertEqual(self.inst.messages("demo"), [])

    @unittest.skipUnless(HAVE_GETMAIL, "skipped: needs getmail6")
    def test_getmail_pop3s_into_maildir(self):
        subjects = ["gm-%d" % i for i in range(3)]
        self.inst.deliver("demo", subjects,
                          body="a line\r\n.starts with a dot\r\nend\r\n")
        dest = os.path.join(self.work, "Maildir")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(dest, sub))
        owner = ""
        if os.geteuid() == 0:
            # getmail will not deliver as root: the Maildir belongs to
            # nobody, and getmail becomes nobody to write it
            os.chmod(self.work, 0o711)
            nobody = pwd.getpwnam("nobody")
            for dirpath, dirs, _ in os.walk(dest):
                os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
            owner = "user = nobody\n"
        rc = os.path.join(self.work, "getmailrc")
        with open(rc, "w") as f:
            f.write("[retriever]\ntype = SimplePOP3SSLRetriever\n"
                    "server = 127.0.0.1\nport = %d\nusername = demo\n"
                    "password = %s\n\n[destination]\ntype = Maildir\n"
                    "path = %s/\n%s\n[options]\ndelete = true\n"
                    "read_all = true\nverbose = 2\n"
                    % (self.inst.pop3s_port, self.inst.password(), dest,
                       owner))
        r = self.run_client(["getmail", "--rcfile", rc, "--getmaildir",
                             self.work])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = []
        for name in os.listdir(os.path.join(dest, "new")):
            with open(os.path.join(dest, "new", name), "rb") as f:
                data = f.read()
            got.append(subject_of(data))
            self.assertIn(b"\n.starts with a dot\n", data)
        self.assertEqual(sorted(got), sorted(subjects))
        self.assertEqual(self.inst.messages("demo"), [])


if __name__ == "__main__":
    unittest.main()

"""Queue tools end to end: ternqueue -p/-j/-f/-s/-i/-Q through showq,
ternsuper -d/-h/-H/-r, terncat, and mailq as an ordinary user through a
set-gid copy of ternqueue (authorized_mailq_users checked by ternqueue
and again by showq from the socket's credentials).

Mail stays queued because every remote recipient goes to a relayhost on
a loopback port where nothing listens (connection refused: deferred at
once, retried only after minimal_backoff_time, which the tests never
wait for unless they flush).
"""
import grp
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from ternlab import (BUILD, TernTestCase, attr_decode, attr_encode,
                     default_config_dir, free_port, wait_for)

ROOT = os.geteuid() == 0
SBIN = os.path.join(BUILD, "sbin")


def no_leak_check(env):
    """LeakSanitizer cannot stop the world of a process whose IDs changed
    (ternsuper's privs_become, a set-gid ternqueue: not dumpable), and
    fails it; as for the daemons (ternlab), leaks are the unit tests'."""
    env = dict(env)
    if "ASAN_OPTIONS" in os.environ:
        env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":detect_leaks=0"
    return env


def send(inst, sender, rcpts, subject):
    with inst.smtp() as s:
        s.sendmail(sender, rcpts,
                   ("Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))
                   .encode())


def queue_file_info(path):
    """(sender, pending recipients, content length) from the records of
    a queue file (format in lib/mail/queue.h)."""
    with open(path, "rb") as f:
        data = f.read()
    i, sender, rcpts, size = 0, None, [], None
    while i < len(data):
        t = chr(data[i])
        n = int.from_bytes(data[i + 1:i + 5], "big")
        body = data[i + 5:i + 5 + n]
        i += 5 + n
        if t == "S":
            sender = body.decode()
        elif t == "R":
            rcpts.append(body.decode())
        elif t == "M":
            size = int(body)
            i += size
        elif t == "E":
            break
    return sender, rcpts, size


class QueueTools(TernTestCase):

    def setUp(self):
        self.dead = free_port()     # nothing listens there
        self.inst = self.instance(main={
            "relayhost": "[127.0.0.1]:%d" % self.dead,
            "minimal_backoff_time": "1h", "maximal_backoff_time": "2h",
            "queue_run_delay": "1h"}).start()

    def tool(self, name, *args, stdin=None, check=True):
        env = os.environ
        if name == "ternsuper":
            env = no_leak_check(env)
        r = subprocess.run([os.path.join(SBIN, name), "-c", self.inst.etc]
                           + list(args), input=stdin, capture_output=True,
                           text=True, timeout=60, env=env)
        if check and r.returncode != 0:
            raise AssertionError("%s %s: exit %d: %s" % (name, args,
                                 r.returncode, r.stderr))
        return r

    def json_list(self):
        out = self.tool("ternqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines()]

    def queue_path(self, queue, qid):
        if queue == "deferred":
            return os.path.join(self.inst.spool, queue, qid[9], qid)
        return os.path.join(self.inst.spool, queue, qid)

    def attempts(self, rcpt):
        return self.inst.log_text().count("to=<%s>, relay=" % rcpt)

    def deferred(self, n):
        wait_for(lambda: len(self.inst.queue_files("deferred")) == n, 60,
                 what="%d files in deferred/" % n)
        # and each has its reason written (before the file was moved)
        return sorted(self.inst.queue_files("deferred"))

    # --- listing -----------------------------------------------------------
    def test_empty_queue(self):
        r = self.tool("ternqueue", "-p")
        self.assertEqual(r.stdout, "Mail queue is empty\n")
        self.assertEqual(self.tool("ternqueue", "-j").stdout, "")

    def test_json_matches_queue_files(self):
        t0 = int(time.time())
        send(self.inst, "alice@example.org",
             ["x1@far.example", "x2@far.example"], "one")
        send(self.inst, "", ["y@other.example"], "two")
        ids = self.deferred(2)
        t1 = int(time.time()) + 1
        entries = self.json_list()
        self.assertEqual(sorted(e["queue_id"] for e in entries), ids)
        for e in entries:
            self.assertEqual(e["queue_name"], "deferred")
            self.assertIs(e["forced_expire"], False)
            self.assertTrue(t0 <= e["arrival_time"] <= t1, e)
            sender, rcpts, size = queue_file_info(
                self.queue_path("deferred", e["queue_id"]))
            self.assertEqual(e["sender"], sender)
            self.assertEqual(e["message_size"], size)
            self.assertEqual([r["address"] for r in e["recipients"]], rcpts)
            for r in e["recipients"]:
                self.assertIn("127.0.0.1", r["delay_reason"])
                self.assertIn("Connection refused", r["delay_reason"])
        by_sender = {e["sender"]: e for e in entries}
        self.assertEqual([r["address"] for r in
                          by_sender["alice@example.org"]["recipients"]],
                         ["x1@far.example", "x2@far.example"])
        self.assertEqual([r["address"] for r in by_sender[""]["recipients"]],
                         ["y@other.example"])

    def test_mailq_format(self):
        send(self.inst, "alice@example.org",
             ["x1@far.example", "x2@far.example"], "one")
        send(self.inst, "", ["y@other.example"], "two")
        ids = self.deferred(2)
        out = self.tool("ternqueue", "-p").stdout
        lines = out.splitlines()
        self.assertEqual(lines[0], "-Queue ID-  --Size-- ----Arrival Time----"
                                   " -Sender/Recipient-------")
        sizes = {}
        for qid in ids:
            m = re.search(r"^%s  +(\d+) \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d +(\S+)$"
                          % qid, out, re.M)
            self.assertIsNotNone(m, out)
            sizes[qid] = int(m.group(1))
            self.assertEqual(sizes[qid], queue_file_info(
                self.queue_path("deferred", qid))[2])
        self.assertIn("MAILER-DAEMON\n", out)
        self.assertRegex(out, r"\n\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]"
                              r":%d: Connection refused\)\n {41}x1@far\.example\n"
                              r" {41}x2@far\.example\n\n" % self.dead)
        self.assertTrue(out.endswith("-- %d Kbytes in 2 Requests.\n"
                                     % (sum(sizes.values()) // 1024)), out)

    def test_listing_with_the_mail_system_down(self):
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        qid, = self.deferred(1)
        self.inst.stop()
        r = self.tool("ternqueue", "-j")
        self.assertIn("Mail system is down -- accessing queue directly",
                      r.stderr)
        self.assertEqual([json.loads(line)["queue_id"]
                          for line in r.stdout.splitlines()], [qid])
        r = self.tool("ternqueue", "-f", check=False)
        self.assertEqual(r.returncode, 69)
        self.assertIn("mail system is down", r.stderr)

    def test_qshape(self):
        send(self.inst, "a@example.org",
             ["x1@far.example", "x2@far.example"], "one")
        send(self.inst, "a@example.org", ["y@other.example"], "two")
        self.deferred(2)
        out = self.tool("ternqueue", "-Q").stdout.splitlines()
        self.assertEqual(out[0].split(), ["T", "5", "10", "20", "40", "80",
                                          "160", "320", "640", "1280", "1280+"])
        self.assertEqual(out[1].split(), ["TOTAL", "3", "3"] + ["0"] * 9)
        self.assertEqual(out[2].split(), ["far.example", "2", "2"] + ["0"] * 9)
        self.assertEqual(out[3].split(), ["other.example", "1", "1"] + ["0"] * 9)
        hold = self.tool("ternqueue", "-Q", "hold").stdout.splitlines()
        self.assertEqual(hold[1].split(), ["TOTAL", "0"] + ["0"] * 10)

    # --- flushes -------------------------------------------------------------
    def test_flush_site_and_message_and_all(self):
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        send(self.inst, "a@example.org", ["y@other.example"], "two")
        send(self.inst, "a@example.org", ["z@third.example"], "three")
        self.deferred(3)
        wait_for(lambda: all(self.attempts(r) == 1 for r in
                             ("x@far.example", "y@other.example",
                              "z@third.example")), 30, what="first attempts")
        self.tool("ternqueue", "-s", "FAR.example")
        wait_for(lambda: self.attempts("x@far.example") == 2, 60,
                 what="a retry of far.example")
        self.assertIn("flush site=FAR.example: 1 message made due",
                      self.inst.log_text())
        self.deferred(3)
        self.assertEqual(self.attempts("y@other.example"), 1)
        # one message by ID
        other = [e["queue_id"] for e in self.json_list()
                 if e["recipients"][0]["address"] == "y@other.example"][0]
        self.tool("ternqueue", "-i", other)
        wait_for(lambda: self.attempts("y@other.example") == 2, 60,
                 what="a retry of one message")
        self.assertEqual(self.attempts("z@third.example"), 1)
        r = self.tool("ternqueue", "-i", "4jfD4r71T61Txhr", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such message", r.stderr)
        # everything
        self.deferred(3)
        self.tool("ternqueue", "-f")
        wait_for(lambda: self.attempts("z@third.example") == 2, 60,
                 what="a retry after -f")

    # --- ternsuper ---------------------------------------------------------------
    def test_hold_release_requeue_delete(self):
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        send(self.inst, "a@example.org", ["y@far.example"], "two")
        send(self.inst, "a@example.org", ["z@far.example"], "three")
        a, b, c = self.deferred(3)
        defer_log = os.path.join(self.inst.spool, "defer", a[9], a)
        wait_for(lambda: os.path.exists(defer_log), 30, what="defer/ log")

        # hold: into hold/, listed with "!", never retried by qmgr
        r = self.tool("ternsuper", "-h", a)
        self.assertIn("ternsuper: Placed on hold: 1 message", r.stderr)
        self.assertTrue(os.path.exists(self.queue_path("hold", a)))
        by_id = {e["queue_id"]: e for e in self.json_list()}
        self.assertEqual(by_id[a]["queue_name"], "hold")
        self.assertIn("%s!" % a, self.tool("ternqueue", "-p").stdout)
        # the reasons stay with a held message
        self.assertIn("delay_reason", by_id[a]["recipients"][0])

        # release: back in deferred/, due now, retried
        before = self.attempts("x@far.example")
        r = self.tool("ternsuper", "-H", a)
        self.assertIn("ternsuper: Released from hold: 1 message", r.stderr)
        wait_for(lambda: self.attempts("x@far.example") == before + 1, 60,
                 what="the released message retried")
        self.deferred(3)

        # requeue: through incoming/, routed again, still one message
        before = self.attempts("y@far.example")
        r = self.tool("ternsuper", "-r", b)
        self.assertIn("ternsuper: Requeued: 1 message", r.stderr)
        wait_for(lambda: self.attempts("y@far.example") == before + 1, 60,
                 what="the requeued message retried")
        self.deferred(3)
        self.assertEqual(sorted(e["queue_id"] for e in self.json_list()),
                         sorted([a, b, c]))

        # delete one by ID, one from stdin; defer/ logs go too
        r = self.tool("ternsuper", "-d", a)
        self.assertIn("ternsuper: Deleted: 1 message", r.stderr)
        self.assertFalse(os.path.exists(defer_log))
        r = self.tool("ternsuper", "-d", "-", stdin=b + "\n")
        self.assertIn("ternsuper: Deleted: 1 message", r.stderr)
        self.assertEqual([e["queue_id"] for e in self.json_list()], [c])
        self.assertIn("%s: removed" % a, self.inst.log_text())

        # ALL with a queue name only touches that queue
        self.tool("ternsuper", "-h", c)
        r = self.tool("ternsuper", "-d", "ALL", "deferred")
        self.assertIn("ternsuper: Deleted: 0 messages", r.stderr)
        r = self.tool("ternsuper", "-d", "ALL")
        self.assertIn("ternsuper: Deleted: 1 message", r.stderr)
        self.assertEqual(self.tool("ternqueue", "-p").stdout,
                         "Mail queue is empty\n")

    def showq(self, attrs):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(os.path.join(self.inst.spool, "public", "showq"))
            s.sendall(attrs if isinstance(attrs, bytes)
                      else attr_encode(attrs))
            buf = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return buf
                buf += chunk

    def test_showq_refuses_malformed_requests(self):
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        self.deferred(1)
        for attrs in ({"request": "list", "format": "xml"},
                      {"request": "list", "format": "json", "queue": "../etc"},
                      {"request": "list", "format": "json", "queue": "corrupt"},
                      {"request": "list", "format": "json", "extra": "1"},
                      {"request": "flush_site", "site": "a/b"},
                      {"request": "flush_site", "site": ""},
                      {"request": "flush_id", "queue_id": "../../x"},
                      {"request": "rm", "path": "/etc/passwd"}):
            got = self.showq(attrs)
            reply = attr_decode(got)
            self.assertIsNotNone(reply, (attrs, got))
            self.assertEqual(reply.get("status"), "error", (attrs, got))
            self.assertNotIn(b"far.example", got)
        # garbage that breaks the codec: dropped without a reply
        self.assertEqual(self.showq(b"\xff" * 100 + b"\0\0"), b"")
        # and a good request still works
        got = self.showq({"request": "list", "format": "json"})
        self.assertIn(b"x@far.example", got)

    def test_planted_links_are_not_followed(self):
        # what a compromised $mail_owner could plant: a symlink and a
        # FIFO named like queue IDs in deferred/ and hold/, pointing at a
        # file with a message-like secret
        send(self.inst, "a@example.org", ["x@far.example"], "real")
        qid, = self.deferred(1)
        # inside the spool, so the link resolves in showq's jail too
        secret = os.path.join(self.inst.spool, "corrupt", "secret")
        with open(self.queue_path("deferred", qid), "rb") as f:
            data = f.read()
        with open(secret, "wb") as f:
            f.write(data.replace(b"x@far.example", b"s@secret.test"))
        fake = qid[:-1] + ("B" if qid[-1] != "B" else "C")
        os.symlink("../../corrupt/secret", self.queue_path("deferred", fake))
        with open(self.queue_path("deferred", fake), "rb") as f:
            self.assertIn(b"s@secret.test", f.read())   # it does resolve
        fifo = qid[:-1] + ("D" if qid[-1] != "D" else "F")
        os.mkfifo(self.queue_path("hold", fifo))
        before = os.stat(secret).st_mtime_ns
        entries = self.json_list()
        self.assertEqual([e["queue_id"] for e in entries], [qid])
        self.assertNotIn("secret.test", self.tool("ternqueue", "-p").stdout)
        self.tool("ternqueue", "-s", "secret.test")
        self.assertEqual(os.stat(secret).st_mtime_ns, before)
        # ternsuper: a release of the FIFO fails without blocking, a
        # delete removes the link, never its target
        r = self.tool("ternsuper", "-H", fifo)
        self.assertIn("Released from hold: 0 messages", r.stderr)
        r = self.tool("ternsuper", "-d", fake)
        self.assertTrue(os.path.exists(secret))
        self.assertFalse(os.path.lexists(self.queue_path("deferred", fake)))
        r = self.tool("terncat", "-q", fifo, check=False)
        self.assertEqual(r.returncode, 1)

    @unittest.skipUnless(ROOT, "needs root")
    def test_showq_runs_unprivileged_in_its_jail(self):
        self.tool("ternqueue", "-p")
        pids = self.inst.child_pids("showq")
        self.assertTrue(pids)
        tern = pwd.getpwnam("tern")
        for pid in pids:
            with open("/proc/%d/status" % pid) as f:
                uids = [line.split()[1:] for line in f
                        if line.startswith("Uid:")][0]
            self.assertEqual(set(uids), {str(tern.pw_uid)})
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             self.inst.spool)

    def test_ternsuper_refuses_bad_input(self):
        r = self.tool("ternsuper", "-d", "../../etc/passwd", check=False)
        self.assertIn("not a queue ID", r.stderr)
        r = self.tool("ternsuper", "-d", "ALL", "corrupt", check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_active_left_alone_while_running(self):
        # a file in active/ that qmgr is not delivering: while master
        # runs ternsuper must not touch it (it cannot know qmgr's state)
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        qid, = self.deferred(1)
        self.inst.stop()
        os.rename(self.queue_path("deferred", qid),
                  self.queue_path("active", qid))
        # with master stopped, active/ is fair game: hold it
        r = self.tool("ternsuper", "-h", qid)
        self.assertIn("Placed on hold: 1 message", r.stderr)
        os.rename(self.queue_path("hold", qid), self.queue_path("active", qid))
        # master running: qmgr recovers active/ after a grace period; a
        # run in between must leave the file where it is
        self.inst.start()
        r = self.tool("ternsuper", "-d", qid)
        if "Left alone in active/: 1 message" in r.stderr:
            self.assertTrue(os.path.exists(self.queue_path("active", qid))
                            or os.path.exists(self.queue_path("deferred",
                                                              qid)))
        else:
            # qmgr had taken it on and deferred it already: deleted there
            self.assertIn("Deleted: 1 message", r.stderr)

    def test_terncat(self):
        send(self.inst, "a@example.org", ["x@far.example"], "cat me")
        qid, = self.deferred(1)
        out = self.tool("terncat", "-q", qid).stdout
        self.assertIn("sender: a@example.org\n", out)
        self.assertIn("recipient: x@far.example\n", out)
        self.assertIn("Subject: cat me\n", out)
        self.assertIn("body of cat me\n", out)
        self.assertIn("*** MESSAGE FILE END", out)
        body = self.tool("terncat", "-b", "-q", qid).stdout
        self.assertNotIn("Subject:", body)
        self.assertIn("body of cat me\n", body)
        hdr = self.tool("terncat", "-h", "-q", qid).stdout
        self.assertIn("Subject: cat me\n", hdr)
        self.assertNotIn("body of cat me", hdr)
        # a damaged copy: shown up to the damage, which is named
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        bad = os.path.join(tmp, "bad")
        with open(self.queue_path("deferred", qid), "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[:40])
        r = self.tool("terncat", bad, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("*** CORRUPT", r.stdout)
        os.symlink(self.queue_path("deferred", qid), os.path.join(tmp, "ln"))
        r = self.tool("terncat", os.path.join(tmp, "ln"), check=False)
        self.assertEqual(r.returncode, 1)


@unittest.skipUnless(ROOT, "needs root (a test user and a set-gid copy)")
class QueueToolsAsUser(TernTestCase):
    """mailq for an ordinary user: a set-gid ($setgid_group) copy of
    ternqueue reaches public/showq; showq checks the peer's uid."""

    def setUp(self):
        self.user = "ternqt%d" % os.getpid()
        subprocess.run(["useradd", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin",
                        self.user], check=True)
        self.addCleanup(subprocess.run, ["userdel", self.user])
        self.pw = pwd.getpwnam(self.user)

    def start(self, **main):
        base = {"relayhost": "[127.0.0.1]:%d" % free_port(),
                "minimal_backoff_time": "1h", "queue_run_delay": "1h"}
        base.update(main)
        self.inst = self.instance(main=base).start()
        bindir = os.path.join(self.inst.dir, "bin")
        os.mkdir(bindir, 0o755)
        self.tq = os.path.join(bindir, "ternqueue")
        shutil.copy(os.path.join(SBIN, "ternqueue"), self.tq)
        os.chown(self.tq, 0, grp.getgrnam("ternpostdrop").gr_gid)
        os.chmod(self.tq, 0o2755)
        send(self.inst, "a@example.org", ["x@far.example"], "one")
        wait_for(lambda: len(self.inst.queue_files("deferred")) == 1, 60,
                 what="a deferred message")

    def as_user(self, argv, default_conf=None):
        """argv as the test user (no supplementary groups); with
        default_conf, inside a private mount namespace whose /etc has
        an overlay holding the build's default main.conf = default_conf."""
        cmd = ["setpriv", "--reuid=%d" % self.pw.pw_uid,
               "--regid=%d" % self.pw.pw_gid, "--clear-groups"] + argv
        if default_conf is not None:
            ov = tempfile.mkdtemp()
            self.addCleanup(shutil.rmtree, ov, True)
            etc = default_config_dir()
            parent = os.path.dirname(etc)
            if not os.path.isdir(parent):
                self.skipTest("no %s to lay an overlay on" % parent)
            script = ("set -e; mount --make-rprivate /; "
                      "mount -t tmpfs tmpfs %(o)s; mkdir %(o)s/u %(o)s/w; "
                      "mount -t overlay overlay -o lowerdir=%(p)s,upperdir="
                      "%(o)s/u,workdir=%(o)s/w %(p)s; mkdir -p %(e)s; "
                      "printf '%%s\\n' \"$CONF\" > %(e)s/main.conf; "
                      "exec \"$@\"" % {"o": ov, "p": parent, "e": etc})
            cmd = ["unshare", "-m", "sh", "-c", script, "sh"] + cmd
        env = no_leak_check({"PATH": "/usr/bin:/bin",
                             "CONF": default_conf or ""})
        return subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=60)

    def test_setgid_refuses_foreign_config_dir(self):
        self.start()
        r = self.as_user([self.tq, "-c", self.inst.etc, "-p"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("alternate_config_directories", r.stderr)
        r = subprocess.run(["setpriv", "--reuid=%d" % self.pw.pw_uid,
                            "--regid=%d" % self.pw.pw_gid, "--clear-groups",
                            self.tq, "-p"], capture_output=True, text=True,
                           env=no_leak_check({"MAIL_CONFIG": self.inst.etc}),
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("alternate_config_directories", r.stderr)

    def test_ordinary_user_with_the_mail_system_down(self):
        self.start()
        self.inst.stop()
        conf = "alternate_config_directories = %s" % self.inst.etc
        r = self.as_user([self.tq, "-c", self.inst.etc, "-p"], conf)
        if "mount" in r.stderr and r.returncode != 0:
            self.skipTest("no overlay mount here: %s" % r.stderr)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("Queue report unavailable - mail system is down",
                      r.stderr)
        self.assertNotIn("x@far.example", r.stdout)

    def test_ternsuper_refuses_ordinary_user(self):
        self.start()
        r = self.as_user([os.path.join(SBIN, "ternsuper"), "-c",
                          self.inst.etc, "-d", "ALL"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("must be run by root", r.stderr)
        self.assertEqual(len(self.inst.queue_files("deferred")), 1)

    def test_mailq_as_ordinary_user(self):
        self.start()
        conf = "alternate_config_directories = %s" % self.inst.etc
        r = self.as_user([self.tq, "-c", self.inst.etc, "-j"], conf)
        if "mount" in r.stderr and r.returncode != 0:
            self.skipTest("no overlay mount here: %s" % r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([e["queue_id"] for e in entries],
                         self.inst.queue_files("deferred"))
        r = self.as_user([self.tq, "-c", self.inst.etc, "-p"], conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("x@far.example", r.stdout)
        # the user cannot read the queue itself
        r = self.as_user(["ls", os.path.join(self.inst.spool, "deferred")])
        self.assertNotEqual(r.returncode, 0)

    def test_unauthorized_user_refused_by_ternqueue_and_showq(self):
        self.start(authorized_mailq_users="root")
        conf = "alternate_config_directories = %s" % self.inst.etc
        r = self.as_user([self.tq, "-c", self.inst.etc, "-p"], conf)
        if "mount" in r.stderr and r.returncode != 0:
            self.skipTest("no overlay mount here: %s" % r.stderr)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("authorized_mailq_users", r.stderr)
        self.assertNotIn("x@far.example", r.stdout)
        # showq itself: a client with the set-gid group's access to
        # public/ but the user's uid (what a modified ternqueue would be)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                os.setgroups([])
                os.setgid(grp.getgrnam("ternpostdrop").gr_gid)
                os.setuid(self.pw.pw_uid)
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(30)
                    s.connect(os.path.join(self.inst.spool, "public", "showq"))
                    s.sendall(attr_encode({"request": "list",
                                           "format": "json"}))
                    buf = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                os.write(wfd, buf)
            finally:
                os._exit(0)
        os.close(wfd)
        got = b""
        while True:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            got += chunk
        os.close(rfd)
        os.waitpid(pid, 0)
        reply = attr_decode(got)
        self.assertIsNotNone(reply, got)
        self.assertEqual(reply.get("status"), "denied", got)
        self.assertNotIn(b"far.example", got)
        self.assertRegex(self.inst.log_text(),
                         r"showq\[\d+\]: warning: uid=%d: queue listing "
                         r"refused" % self.pw.pw_uid)


if __name__ == "__main__":
    unittest.main()

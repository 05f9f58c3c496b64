"""Privilege boundaries (issue 5): what an attacker who controls the
`tern` account (say through an smtpd bug) can make the root processes do.

The rule: a root process never opens, creates, chmods or chowns a path
in a directory a less privileged user can write unless it refuses
symlinks, checks what it opened, or first becomes that user; a request
over IPC is a claim that the receiver checks against its own data.

Each test plays the attacker by hand: it plants files in the spool as
`tern` could, or talks to private/local directly as any `tern` process
can. Skipped when not root (nothing changes user then).
"""
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import unittest

from ternlab import (BUILD, TernTestCase, agent_request, attr_decode,
                     attr_encode, proc_children, wait_for)

QID_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
_qid_counter = [0]


def make_qid():
    """A syntactically valid queue ID nobody else will use."""
    _qid_counter[0] += 1
    n = os.getpid() * 1000 + _qid_counter[0]
    tail = ""
    while n:
        tail = QID_ALPHABET[n % 52] + tail
        n //= 52
    return "BBBBBBCCCC" + tail


def queue_file(sender, rcpts, content):
    """Bytes of a queue file (lib/mail/queue.h) and the offsets of its
    recipient records. rcpts: list of (type byte, address)."""
    out = bytearray()
    offsets = []

    def rec(t, data):
        out.extend(t + struct.pack(">I", len(data)) + data)
    rec(b"V", b"1")
    rec(b"T", b"1700000000.000001")
    rec(b"S", sender.encode())
    for t, addr in rcpts:
        offsets.append(len(out))
        rec(t, addr.encode())
    rec(b"M", b"%020d" % len(content))
    content_offset = len(out)
    out.extend(content)
    rec(b"E", b"")
    return bytes(out), offsets, content_offset


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class LocalRequests(TernTestCase):
    """private/local takes requests from any `tern` process: local (root)
    must only deliver what the queue file itself says."""

    def setUp(self):
        # no qmgr: these tests play qmgr themselves, and a real one would
        # take the files they plant in active/ (start-up recovery, the
        # active/ sweep) and quarantine them before the request is made
        self.inst = self.instance(users=("demo", "bob"))
        self.inst.edit_master_conf(
            "qmgr unix n - %s 300 1 qmgr\n" % self.inst.jail, "")
        self.inst.start()
        self.tern = pwd.getpwnam("tern")
        self.active = os.path.join(self.inst.spool, "active")

    def plant(self, data, name=None, uid=None, mode=0o600, where=None):
        """Write a file as `tern` would (into active/ unless where)."""
        name = name or make_qid()
        path = os.path.join(where or self.active, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, self.tern.pw_uid if uid is None else uid,
                 self.tern.pw_gid)
        os.chmod(path, mode)
        return name, path

    def request(self, qid, recipient, offset, sender="a@example.org",
                content=(0, 0)):
        attrs = {"request": "deliver", "queue_name": "active",
                 "queue_id": qid, "sender": sender, "rcpt_count": 1,
                 "recipient_0": recipient, "orig_recipient": recipient,
                 "rcpt_offset_0": offset,
                 "content_offset": content[0], "content_size": content[1],
                 "arrival_usec": 1700000000000001}
        return agent_request(os.path.join(self.inst.spool, "private", "local"),
                             attrs, 60)

    def assertRefused(self, reply, why):
        self.assertEqual(reply.get("status_0"), "4", reply)
        self.assertIn(why, reply.get("reason_0", ""))
        for u in ("demo", "bob"):
            self.assertEqual(self.inst.messages(u), [], u)

    def test_symlink_in_active_refused(self):
        data, offs, coff = queue_file("a@example.org",
                                      [(b"R", "demo@localhost")],
                                      b"Subject: secret\n\nTOPSECRET\n")
        # a well-formed queue file owned by tern, outside active/
        _, target = self.plant(data, "victim", where=self.inst.dir)
        qid = make_qid()
        os.symlink(target, os.path.join(self.active, qid))
        reply = self.request(qid, "demo@localhost", offs[0],
                             content=(coff, len(data) - coff - 5))
        self.assertRefused(reply, "Too many levels of symbolic links")
        with open(target, "rb") as f:
            self.assertEqual(f.read(), data)        # not marked done either
        # the classic: a symlink to a root-only file, bytes "copied out"
        qid = make_qid()
        os.symlink("/etc/shadow", os.path.join(self.active, qid))
        reply = self.request(qid, "demo@localhost", 0,
                             content=(0, os.path.getsize("/etc/shadow")))
        self.assertRefused(reply, "malformed")     # offset 0 is no recipient
        reply = self.request(qid, "demo@localhost", 5,
                             content=(0, os.path.getsize("/etc/shadow")))
        self.assertRefused(reply, "Too many levels of symbolic links")

    def test_hard_link_refused(self):
        data, offs, _ = queue_file("a@example.org", [(b"R", "demo@localhost")],
                                   b"Subject: h\n\nx\n")
        qid, path = self.plant(data)
        other = make_qid()
        os.link(path, os.path.join(self.active, other))
        for q in (qid, other):
            self.assertRefused(self.request(q, "demo@localhost", offs[0]),
                               "with one link")

    def test_foreign_owner_refused(self):
        data, offs, _ = queue_file("a@example.org", [(b"R", "demo@localhost")],
                                   b"Subject: o\n\nx\n")
        qid, _ = self.plant(data, uid=0, mode=0o666)
        self.assertRefused(self.request(qid, "demo@localhost", offs[0]),
                           "not a regular file owned by uid %d" % self.tern.pw_uid)

    def test_fifo_refused(self):
        qid = make_qid()
        path = os.path.join(self.active, qid)
        os.mkfifo(path, 0o600)
        os.chown(path, self.tern.pw_uid, self.tern.pw_gid)
        self.assertRefused(self.request(qid, "demo@localhost", 5),
                           "not a regular file")

    def test_bad_queue_name_or_id_refused(self):
        data, offs, _ = queue_file("a@example.org", [(b"R", "demo@localhost")],
                                   b"Subject: n\n\nx\n")
        qid, _ = self.plant(data, where=os.path.join(self.inst.spool, "hold"))
        path = os.path.join(self.inst.spool, "private", "local")
        for qname, q in (("hold", qid), ("../active", qid),
                         ("active", "../hold/" + qid)):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(60)
                s.connect(path)
                s.sendall(attr_encode({
                    "request": "deliver", "queue_name": qname, "queue_id": q,
                    "sender": "", "recipient": "demo@localhost",
                    "rcpt_offset": offs[0], "content_offset": 0,
                    "content_size": 0}))
                buf = b""
                while attr_decode(buf) is None:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk)
                    buf += chunk
                self.assertRefused(attr_decode(buf), "malformed")

    def test_recipient_must_match_the_file(self):
        data, offs, _ = queue_file(
            "a@example.org", [(b"R", "bob@localhost"), (b"D", "demo@localhost")],
            b"Subject: r\n\nx\n")
        qid, path = self.plant(data)
        # bob's record, but the request says demo
        self.assertRefused(self.request(qid, "demo@localhost", offs[0]),
                           "not the one requested")
        # an offset that is not a recipient record
        self.assertRefused(self.request(qid, "bob@localhost", offs[0] + 1),
                           "no recipient record")
        self.assertRefused(self.request(qid, "bob@localhost", 5),
                           "no recipient record")
        # a recipient that is already done
        self.assertRefused(self.request(qid, "demo@localhost", offs[1]),
                           "not pending")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)       # no record was touched

    def test_forged_request_fields_not_used(self):
        content = b"Subject: f\n\nbody\n"
        data, offs, _ = queue_file("real@example.org",
                                   [(b"R", "demo@localhost")], content)
        qid, path = self.plant(data)
        # forged sender, and content bounds that would expose the envelope
        reply = self.request(qid, "demo@localhost", offs[0],
                             sender="forged@evil.example",
                             content=(0, len(data)))
        self.assertEqual(reply.get("status_0"), "0", reply)
        msgs = self.inst.messages("demo")
        self.assertEqual(msgs, [b"Return-Path: <real@example.org>\n"
                                b"Delivered-To: demo@localhost\n" + content])
        with open(path, "rb") as f:
            self.assertEqual(f.read(offs[0] + 1)[-1:], b"D")


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class LocalForward(TernTestCase):

    def test_forward_written_as_mail_owner(self):
        """local (root) writes a forwarded copy into incoming/, which tern
        owns: it does so as tern, and qmgr can move the file."""
        inst = self.instance(aliases={"out": "friend@remote.example"}).start()
        tern = pwd.getpwnam("tern")
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["out@localhost"],
                       b"Subject: fwd\r\n\r\nx\r\n")
        self.assertLogHas(inst, "forwarded as ", timeout=60)
        qid = re.search(r"forwarded as (\w+)", inst.log_text()).group(1)
        wait_for(lambda: qid in inst.queue_files("deferred"), 60,
                 what="forwarded copy deferred by qmgr")
        for dirpath, _, files in os.walk(os.path.join(inst.spool, "deferred")):
            if qid in files:
                st = os.lstat(os.path.join(dirpath, qid))
                self.assertEqual((st.st_uid, st.st_gid),
                                 (tern.pw_uid, tern.pw_gid))


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class MasterFiles(TernTestCase):
    """master (root) in directories that `tern` owns or owned."""

    def test_pid_dir_is_roots(self):
        inst = self.instance().start()
        st = os.lstat(os.path.join(inst.spool, "pid"))
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o755))
        st = os.lstat(os.path.join(inst.spool, "pid", "master.pid"))
        self.assertEqual((st.st_uid, st.st_nlink), (0, 1))

    def test_planted_pid_file_not_used(self):
        for plant in (os.symlink, os.link):
            with self.subTest(plant=plant.__name__):
                self.check_planted_pid_file(plant)

    def check_planted_pid_file(self, plant):
        inst = self.instance()
        tern = pwd.getpwnam("tern")
        victim = os.path.join(inst.dir, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        # as an older master left it: pid/ owned by tern, who plants a
        # symlink or a hard link to a file of root's
        piddir = os.path.join(inst.spool, "pid")
        os.mkdir(piddir, 0o700)
        os.chown(piddir, tern.pw_uid, tern.pw_gid)
        plant(victim, os.path.join(piddir, "master.pid"))
        inst.start(wait=False)
        try:
            inst.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("master started over a planted pid file")
        self.assertNotEqual(inst.proc.returncode, 0)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(os.lstat(piddir).st_uid, 0)


    def test_wakeup_does_not_follow_a_planted_symlink(self):
        """master (root) wakes qmgr through public/qmgr; tern can put a
        symlink there pointing at a socket only root may reach."""
        inst = self.instance().start()
        qmgr = wait_for(lambda: inst.child_pids("qmgr"), 10, what="qmgr")[0]
        rootonly = os.path.join(inst.dir, "rootonly")
        os.mkdir(rootonly, 0o700)
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.bind(os.path.join(rootonly, "s"))
        lsock.listen(8)
        lsock.setblocking(False)
        pub = os.path.join(inst.spool, "public")
        os.rename(os.path.join(pub, "qmgr"), os.path.join(pub, "qmgr.away"))
        os.symlink(os.path.join(rootonly, "s"), os.path.join(pub, "qmgr"))
        os.kill(qmgr, signal.SIGKILL)      # master wakes qmgr at once

        def reached():
            try:
                c, _ = lsock.accept()
            except BlockingIOError:
                return None
            c.close()
            return "connected"
        got = wait_for(lambda: reached() or
                       ("wakeup public/qmgr" in inst.log_text() and "logged"),
                       30, what="master's wakeup attempt")
        self.assertEqual(got, "logged", "master connected to a root-only "
                         "socket through a symlink in public/")
        self.assertIn("wakeup public/qmgr: Permission denied", inst.log_text())

@unittest.skipUnless(os.geteuid() == 0, "needs root")
@unittest.skipUnless(shutil.which("strace"), "needs strace")
class MasterSockets(TernTestCase):

    def test_sockets_owned_without_path_chmod(self):
        inst = self.instance()
        tern = pwd.getpwnam("tern")
        out = os.path.join(inst.dir, "log", "strace")
        inst.stdout = open(os.path.join(inst.dir, "log", "master.out"), "ab")
        env = dict(os.environ, MAIL_CONFIG=inst.etc)
        if "ASAN_OPTIONS" in env:
            env["ASAN_OPTIONS"] += ":detect_leaks=0"
        # master only (no -f): it is the one that binds and sets owners
        inst.proc = subprocess.Popen(
            ["strace", "-qq", "-o", out, "-e",
             "trace=chmod,fchmodat,chown,lchown,fchownat",
             os.path.join(BUILD, "libexec", "master"), "-f", "-c", inst.etc],
            stdin=subprocess.DEVNULL, stdout=inst.stdout,
            stderr=subprocess.STDOUT, env=env)
        wait_for(inst._smtp_ready, 30, what="SMTP port")
        # public/ is set-gid $setgid_group: its sockets get that group
        postdrop = grp.getgrnam("ternpostdrop").gr_gid
        for sock, gid, mode in (("public/qmgr", postdrop, 0o666),
                                ("private/local", tern.pw_gid, 0o600)):
            st = os.lstat(os.path.join(inst.spool, sock))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                             (tern.pw_uid, gid, mode), sock)
        master = wait_for(lambda: proc_children(inst.proc.pid), 10,
                          what="master under strace")[0]
        os.kill(master, signal.SIGTERM)
        inst.proc.wait(30)
        with open(out) as f:
            trace = f.read()
        bad = [l for l in trace.splitlines()
               if re.search(r'"[^"]*(public|private)/', l)
               and "AT_SYMLINK_NOFOLLOW" not in l]
        self.assertEqual(bad, [], "path-based chmod/chown on a socket")


def fd_targets(pid):
    """What each open descriptor of pid points at (readlink of /proc)."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except OSError:
            pass
    return out


class MasterInheritedFds(TernTestCase):
    """master (root) keeps nothing its starter left open: a shell's pipe
    stayed open as fd 251 in master and every daemon it forked."""

    def leaked(self, pids, pipe_name):
        return {pid: fds for pid in pids
                for fds in [[n for n, t in fd_targets(pid).items()
                             if t == pipe_name or n == 251]] if fds}

    def start_with_pipe(self, inst, args):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        os.dup2(w, 251)
        os.close(w)
        self.addCleanup(os.close, 251)
        pipe_name = os.readlink("/proc/self/fd/251")
        inst.stdout = open(os.path.join(inst.dir, "log", "master.out"), "ab")
        env = dict(os.environ, MAIL_CONFIG=inst.etc)
        if "ASAN_OPTIONS" in env:
            env["ASAN_OPTIONS"] += ":detect_leaks=0"
        inst.proc = subprocess.Popen(
            [os.path.join(BUILD, "libexec", "master")] + args + ["-c", inst.etc],
            stdin=subprocess.DEVNULL, stdout=inst.stdout,
            stderr=subprocess.STDOUT, env=env, pass_fds=(251,))
        return pipe_name

    def test_foreground(self):
        inst = self.instance()
        pipe_name = self.start_with_pipe(inst, ["-f"])
        wait_for(inst._smtp_ready, 30, what="SMTP port")
        with inst.smtp() as s:       # an smtpd, a qmgr and a local exist
            s.sendmail("a@example.org", ["demo@localhost"], b"Subject: fd\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        kids = wait_for(lambda: len(inst.child_pids("local")) and
                        len(inst.child_pids("qmgr")) and
                        proc_children(inst.proc.pid), 30, what="daemons")
        self.assertEqual(self.leaked([inst.proc.pid] + kids, pipe_name), {})
        # 0-2 are kept in -f mode (the caller's terminal or log)
        fds = fd_targets(inst.proc.pid)
        self.assertEqual(fds[1], os.readlink("/proc/self/fd/%d" % inst.stdout.fileno()))

    def test_daemonized(self):
        inst = self.instance()
        pipe_name = self.start_with_pipe(inst, [])
        inst.proc.wait(30)           # the parent exits once master detached
        pidfile = os.path.join(inst.spool, "pid", "master.pid")

        def master_pid():
            try:
                with open(pidfile) as f:
                    pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                return None
            return pid if os.path.exists("/proc/%d" % pid) else None
        pid = wait_for(master_pid, 30, what="master.pid")
        self.addCleanup(lambda: os.path.exists("/proc/%d" % pid)
                        and os.kill(pid, signal.SIGTERM))
        def smtp_ready():
            try:
                with socket.create_connection(("127.0.0.1", inst.smtp_port), 1) as c:
                    c.settimeout(5)
                    return c.recv(512).startswith(b"220")
            except OSError:
                return False
        wait_for(smtp_ready, 30, what="SMTP port")
        kids = wait_for(lambda: proc_children(pid), 30, what="daemons")
        self.assertEqual(self.leaked([pid] + kids, pipe_name), {})
        for n in (0, 1, 2):
            self.assertEqual(fd_targets(pid)[n], "/dev/null")
        os.kill(pid, signal.SIGTERM)

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(") ")[1][0] == "Z"
            except OSError:
                return True
        wait_for(gone, 30, what="master to stop")


if __name__ == "__main__":
    unittest.main()
